/*  ingest_store — see ingest_store.h. */
#include "ingest_store.h"

#include "ingest_array.h"

#include "hcp_log.h"

#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Statements. Each takes arrays of equal length, one element per fact, and
//  works on the whole batch at once. Only newly stored rows (RETURNING of
//  the ON CONFLICT DO NOTHING insert) get personal data and an event.

static const char *s_sql_deliveries =
    "WITH input AS ("
    "  SELECT * FROM unnest ($1::text[], $2::text[], $3::int2[], $4::int2[], $5::int2[],"
    "                        $6::text[], $7::text[], $8::timestamptz[], $9::bytea[],"
    "                        $10::bytea[], $11::text[], $12::text[], $13::text[])"
    "    WITH ORDINALITY AS t (delivery_id, item_code, stage, channel, rater_type, "
    "rater_key,"
    "                          division_code, delivered_at, canonical, payload, name, "
    "phone,"
    "                          id_number, ord)"
    "), stored AS ("
    "  INSERT INTO deliveries (delivery_id, item_code, stage, channel, rater_type, "
    "rater_key,"
    "                          division_code, delivered_at, fingerprint)"
    "  SELECT delivery_id, item_code, stage, channel, rater_type, rater_key, "
    "division_code,"
    "         delivered_at, sha256 (canonical)"
    "    FROM input ORDER BY ord"
    "  ON CONFLICT (delivery_id) DO NOTHING"
    "  RETURNING delivery_id"
    "), pii AS ("
    "  INSERT INTO rater_pii (fact_kind, fact_id, name, phone, id_number)"
    "  SELECT 'delivery', i.delivery_id, i.name, i.phone, i.id_number"
    "    FROM input i JOIN stored USING (delivery_id)"
    "   WHERE num_nonnulls (i.name, i.phone, i.id_number) > 0"
    "  ON CONFLICT DO NOTHING"
    "), event AS ("
    "  INSERT INTO events (type, key, payload)"
    "  SELECT 'delivery.stored', i.delivery_id, i.payload"
    "    FROM input i JOIN stored USING (delivery_id) ORDER BY i.ord"
    ")"
    "SELECT i.ord FROM input i JOIN stored USING (delivery_id)";

static const char *s_sql_delivery_fingerprints =
    "SELECT t.ord, d.fingerprint = sha256 (t.canonical)"
    "  FROM unnest ($1::text[], $2::bytea[]) WITH ORDINALITY AS t (delivery_id, "
    "canonical, ord)"
    "  JOIN deliveries d USING (delivery_id)";

//  What a rating needs to know of the delivery it names. Runs after this
//  batch's deliveries were inserted, so it sees them too.
static const char *s_sql_delivery_lookup =
    "SELECT delivery_id, item_code, (extract (epoch FROM delivered_at) * 1000)::int8"
    "  FROM deliveries WHERE delivery_id = ANY ($1::text[])";

static const char *s_sql_ratings =
    "WITH input AS ("
    "  SELECT * FROM unnest ($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::int2[],"
    "                        $6::int2[], $7::int2[], $8::text[], $9::text[],"
    "                        $10::timestamptz[], $11::int2[], $12::int2[], $13::int2[],"
    "                        $14::text[], $15::bytea[], $16::bytea[], $17::text[],"
    "                        $18::text[], $19::text[])"
    "    WITH ORDINALITY AS t (rating_id, delivery_id, item_code, channel, stage,"
    "                          rating_count, rater_type, rater_key, division_code, "
    "rated_at,"
    "                          standardization, convenience, accuracy, comment, "
    "canonical,"
    "                          payload, name, phone, id_number, ord)"
    "), stored AS ("
    "  INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
    "rating_count,"
    "                       rater_type, rater_key, division_code, rated_at, "
    "standardization,"
    "                       convenience, accuracy, comment, fingerprint)"
    "  SELECT rating_id, delivery_id, item_code, channel, stage, rating_count, "
    "rater_type,"
    "         rater_key, division_code, rated_at, standardization, convenience, accuracy,"
    "         comment, sha256 (canonical)"
    "    FROM input ORDER BY ord"
    "  ON CONFLICT (rating_id) DO NOTHING"
    "  RETURNING rating_id"
    "), pii AS ("
    "  INSERT INTO rater_pii (fact_kind, fact_id, name, phone, id_number)"
    "  SELECT 'rating', i.rating_id::text, i.name, i.phone, i.id_number"
    "    FROM input i JOIN stored USING (rating_id)"
    "   WHERE num_nonnulls (i.name, i.phone, i.id_number) > 0"
    "  ON CONFLICT DO NOTHING"
    "), event AS ("
    "  INSERT INTO events (type, key, payload)"
    "  SELECT 'rating.stored', i.rating_id::text, i.payload"
    "    FROM input i JOIN stored USING (rating_id) ORDER BY i.ord"
    ")"
    "SELECT i.ord FROM input i JOIN stored USING (rating_id)";

static const char *s_sql_rating_fingerprints =
    "SELECT t.ord, r.fingerprint = sha256 (t.canonical)"
    "  FROM unnest ($1::uuid[], $2::bytea[]) WITH ORDINALITY AS t (rating_id, canonical, "
    "ord)"
    "  JOIN ratings r USING (rating_id)";

static const char *s_sql_rejections =
    "INSERT INTO rejected_submissions (fact_id, field, code, reason, peer, size_bytes, "
    "excerpt)"
    "  SELECT * FROM unnest ($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    "                        $6::int4[], $7::bytea[])";

//  Longest excerpt of a refused message kept for diagnosis.
#define S_EXCERPT_MAX 1024

enum {
    D_ID,
    D_ITEM,
    D_STAGE,
    D_CHANNEL,
    D_RATER_TYPE,
    D_RATER_KEY,
    D_DIVISION,
    D_AT,
    D_CANONICAL,
    D_PAYLOAD,
    D_NAME,
    D_PHONE,
    D_ID_NUMBER,
    D_COLUMNS
};

enum {
    R_ID,
    R_DELIVERY,
    R_ITEM,
    R_CHANNEL,
    R_STAGE,
    R_RATING_COUNT,
    R_RATER_TYPE,
    R_RATER_KEY,
    R_DIVISION,
    R_AT,
    R_STANDARDIZATION,
    R_CONVENIENCE,
    R_ACCURACY,
    R_COMMENT,
    R_CANONICAL,
    R_PAYLOAD,
    R_NAME,
    R_PHONE,
    R_ID_NUMBER,
    R_COLUMNS
};

enum { X_FACT_ID, X_FIELD, X_CODE, X_REASON, X_PEER, X_SIZE, X_EXCERPT, X_COLUMNS };

//  How a transaction attempt ended.
typedef enum { S_DONE = 0, S_RETRY = -1, S_DATA = -2 } s_result_t;

typedef struct {
    ingest_fact_t *fact;
    size_t position; //  arrival order in the batch
} s_entry_t;

struct _ingest_store_t {
    hcp_db_t *db;
    ingest_array_t deliveries[D_COLUMNS];
    ingest_array_t ratings[R_COLUMNS];
    ingest_array_t rejections[X_COLUMNS];
    ingest_array_t lookup[2]; //  ids for lookups, and their canonical encodings
    s_entry_t *entries;       //  the pending facts of one attempt, sorted
    size_t entries_capacity;
    ingest_fact_t **subset; //  the deliveries or ratings of one statement, in order
    size_t subset_capacity;
};

//  --------------------------------------------------------------------------
//  Facts

static bool
s_has_pii (const Hcp__V1__Rater *rater)
{
    return rater
           && ((rater->name && *rater->name) || (rater->phone && *rater->phone)
               || (rater->id_number && *rater->id_number));
}

//  Packs message into a new buffer.
static uint8_t *
s_pack (const ProtobufCMessage *message, size_t *size)
{
    *size = protobuf_c_message_get_packed_size (message);
    uint8_t *buffer = malloc (*size ? *size : 1);
    if (!buffer)
        abort ();
    protobuf_c_message_pack (message, buffer);
    return buffer;
}

//  Canonical and payload encodings of a message whose (copied) rater is
//  given: the rater's personal data is cleared for the payload.
static void
s_encode (ingest_fact_t *fact, ProtobufCMessage *message, Hcp__V1__Rater *rater)
{
    fact->canonical = s_pack (message, &fact->canonical_size);
    if (s_has_pii (rater)) {
        rater->name = (char *) "";
        rater->phone = (char *) "";
        rater->id_number = (char *) "";
        fact->payload = s_pack (message, &fact->payload_size);
    }
    else {
        fact->payload = fact->canonical;
        fact->payload_size = fact->canonical_size;
    }
}

int
ingest_fact_prepare (ingest_fact_t *fact)
{
    const Hcp__V1__Submit *submit = fact->submit;
    if (!submit)
        return -1;
    //  Unknown fields are not part of a fact: drop them (shallow copies, so
    //  the decoded message keeps what it owns).
    static const Hcp__V1__Rater no_rater = HCP__V1__RATER__INIT;
    if (submit->fact_case == HCP__V1__SUBMIT__FACT_RATING && submit->rating) {
        Hcp__V1__Rating rating = *submit->rating;
        Hcp__V1__Rater rater = rating.rater ? *rating.rater : no_rater;
        rating.base.n_unknown_fields = 0;
        rating.base.unknown_fields = NULL;
        rater.base.n_unknown_fields = 0;
        rater.base.unknown_fields = NULL;
        //  A UUID is the same id in either case: store and fingerprint it in
        //  the lower-case form PostgreSQL prints.
        size_t i;
        for (i = 0; rating.rating_id[i] && i < sizeof fact->key - 1; i++)
            fact->key[i] = (char) tolower ((unsigned char) rating.rating_id[i]);
        fact->key[i] = 0;
        rating.rating_id = fact->key;
        rating.rater = rating.rater ? &rater : NULL;
        s_encode (fact, &rating.base, &rater);
        fact->kind = HCP__V1__SUBMIT__FACT_RATING;
    }
    else if (submit->fact_case == HCP__V1__SUBMIT__FACT_DELIVERY && submit->delivery) {
        Hcp__V1__Delivery delivery = *submit->delivery;
        Hcp__V1__Rater rater = delivery.rater ? *delivery.rater : no_rater;
        delivery.base.n_unknown_fields = 0;
        delivery.base.unknown_fields = NULL;
        rater.base.n_unknown_fields = 0;
        rater.base.unknown_fields = NULL;
        snprintf (fact->key, sizeof fact->key, "%s", delivery.delivery_id);
        delivery.rater = delivery.rater ? &rater : NULL;
        s_encode (fact, &delivery.base, &rater);
        fact->kind = HCP__V1__SUBMIT__FACT_DELIVERY;
    }
    else
        return -1;
    fact->outcome = INGEST_PENDING;
    return 0;
}

void
ingest_fact_reject (ingest_fact_t *fact, const hcp_rejection_t *rejection)
{
    fact->outcome = INGEST_REJECTED;
    fact->rejection = *rejection;
}

void
ingest_fact_clear (ingest_fact_t *fact)
{
    if (fact->payload != fact->canonical)
        free (fact->payload);
    free (fact->canonical);
    if (fact->submit)
        hcp__v1__submit__free_unpacked (fact->submit, NULL);
    memset (fact, 0, sizeof *fact);
}

const char *
ingest_fact_id (const ingest_fact_t *fact)
{
    const char *id = hcp_validate_fact_id (fact->submit);
    size_t length = strlen (id);
    if (length == 0 || length > 128 || !hcp_validate_utf8 (id, length, NULL))
        return NULL;
    return id;
}

//  --------------------------------------------------------------------------
//  Store

ingest_store_t *
ingest_store_new (hcp_db_t *db)
{
    const char *statements[][2] = {
        {"ingest_deliveries", s_sql_deliveries},
        {"ingest_delivery_fingerprints", s_sql_delivery_fingerprints},
        {"ingest_delivery_lookup", s_sql_delivery_lookup},
        {"ingest_ratings", s_sql_ratings},
        {"ingest_rating_fingerprints", s_sql_rating_fingerprints},
        {"ingest_rejections", s_sql_rejections}};
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++)
        if (hcp_db_prepare (db, statements[i][0], statements[i][1]) != 0)
            return NULL;

    ingest_store_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->db = db;
    static const uint32_t delivery_types[D_COLUMNS] = {
        INGEST_OID_TEXT,  INGEST_OID_TEXT,  INGEST_OID_INT2, INGEST_OID_INT2,
        INGEST_OID_INT2,  INGEST_OID_TEXT,  INGEST_OID_TEXT, INGEST_OID_TIMESTAMPTZ,
        INGEST_OID_BYTEA, INGEST_OID_BYTEA, INGEST_OID_TEXT, INGEST_OID_TEXT,
        INGEST_OID_TEXT};
    static const uint32_t rating_types[R_COLUMNS] = {
        INGEST_OID_UUID, INGEST_OID_TEXT,        INGEST_OID_TEXT,  INGEST_OID_INT2,
        INGEST_OID_INT2, INGEST_OID_INT2,        INGEST_OID_INT2,  INGEST_OID_TEXT,
        INGEST_OID_TEXT, INGEST_OID_TIMESTAMPTZ, INGEST_OID_INT2,  INGEST_OID_INT2,
        INGEST_OID_INT2, INGEST_OID_TEXT,        INGEST_OID_BYTEA, INGEST_OID_BYTEA,
        INGEST_OID_TEXT, INGEST_OID_TEXT,        INGEST_OID_TEXT};
    static const uint32_t rejection_types[X_COLUMNS] = {
        INGEST_OID_TEXT, INGEST_OID_TEXT, INGEST_OID_TEXT, INGEST_OID_TEXT,
        INGEST_OID_TEXT, INGEST_OID_INT4, INGEST_OID_BYTEA};
    for (int i = 0; i < D_COLUMNS; i++)
        ingest_array_init (&self->deliveries[i], delivery_types[i]);
    for (int i = 0; i < R_COLUMNS; i++)
        ingest_array_init (&self->ratings[i], rating_types[i]);
    for (int i = 0; i < X_COLUMNS; i++)
        ingest_array_init (&self->rejections[i], rejection_types[i]);
    ingest_array_init (&self->lookup[0], INGEST_OID_TEXT);
    ingest_array_init (&self->lookup[1], INGEST_OID_BYTEA);
    return self;
}

void
ingest_store_destroy (ingest_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingest_store_t *self = *self_p;
    for (int i = 0; i < D_COLUMNS; i++)
        ingest_array_free (&self->deliveries[i]);
    for (int i = 0; i < R_COLUMNS; i++)
        ingest_array_free (&self->ratings[i]);
    for (int i = 0; i < X_COLUMNS; i++)
        ingest_array_free (&self->rejections[i]);
    ingest_array_free (&self->lookup[0]);
    ingest_array_free (&self->lookup[1]);
    free (self->entries);
    free (self->subset);
    free (self);
    *self_p = NULL;
}

//  Runs a prepared statement whose parameters are the given arrays.
static PGresult *
s_run (ingest_store_t *self, const char *name, ingest_array_t *arrays, int count)
{
    const char *values[R_COLUMNS];
    int lengths[R_COLUMNS];
    int formats[R_COLUMNS];
    assert (count <= R_COLUMNS);
    for (int i = 0; i < count; i++) {
        values[i] = ingest_array_finish (&arrays[i], &lengths[i]);
        formats[i] = 1;
    }
    return hcp_db_run_params (self->db, name, count, values, lengths, formats);
}

//  Classifies a failed statement and ends the transaction.
static s_result_t
s_failed (ingest_store_t *self, PGresult *res, const char *what)
{
    PQclear (res);
    if (hcp_db_lost (self->db)) {
        hcp_warn ("database connection lost while %s: %s", what, hcp_db_error (self->db));
        return S_RETRY;
    }
    const char *state = hcp_db_sqlstate (self->db);
    hcp_log_kv (HCP_LOG_ERROR, "batch statement failed", "step", what, "sqlstate", state,
                "error", hcp_db_error (self->db), NULL);
    hcp_db_exec (self->db, "ROLLBACK");
    //  Class 22 (data exception) and 23 (integrity constraint) come from
    //  the values themselves: retrying the same values cannot succeed.
    if (!strncmp (state, "22", 2) || !strncmp (state, "23", 2))
        return S_DATA;
    return S_RETRY;
}

static void
s_subset_reserve (ingest_store_t *self, size_t count)
{
    if (count <= self->subset_capacity)
        return;
    self->subset = realloc (self->subset, count * sizeof *self->subset);
    if (!self->subset)
        abort ();
    self->subset_capacity = count;
}

static void
s_set_conflict (ingest_fact_t *fact)
{
    const char *field = fact->kind == HCP__V1__SUBMIT__FACT_RATING ? "rating.rating_id"
                                                                   : "delivery.delivery_id";
    hcp_rejection_set (&fact->rejection, field, "conflict",
                       "%s %s was stored before with other content; a correction is a new "
                       "fact with a new id",
                       field, fact->key);
    fact->outcome = INGEST_REJECTED;
}

//  For the facts of subset not stored by the insert: same fingerprint as
//  the stored row → duplicate, else conflict.
static s_result_t
s_fingerprints (ingest_store_t *self, ingest_fact_t **subset, size_t count,
                const char *statement, bool uuid_keys)
{
    ingest_array_t *keys = &self->lookup[0];
    ingest_array_t *canonical = &self->lookup[1];
    ingest_array_reset (keys);
    ingest_array_reset (canonical);
    keys->element_oid = uuid_keys ? INGEST_OID_UUID : INGEST_OID_TEXT;
    ingest_fact_t **asked = subset; //  reused in place: asked[k] is the k-th looked up
    size_t asked_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (subset[i]->outcome != INGEST_PENDING)
            continue;
        ingest_fact_t *fact = subset[i];
        if (uuid_keys)
            ingest_array_add_uuid (keys, fact->key);
        else
            ingest_array_add_text (keys, fact->key, 0);
        ingest_array_add (canonical, fact->canonical, (int) fact->canonical_size);
        asked[asked_count++] = fact;
    }
    if (asked_count == 0)
        return S_DONE;
    PGresult *res = s_run (self, statement, self->lookup, 2);
    if (!hcp_db_ok (self->db, res))
        return s_failed (self, res, statement);
    for (int row = 0; row < PQntuples (res); row++) {
        long ord = strtol (PQgetvalue (res, row, 0), NULL, 10);
        if (ord < 1 || (size_t) ord > asked_count)
            continue;
        ingest_fact_t *fact = asked[ord - 1];
        if (PQgetvalue (res, row, 1)[0] == 't')
            fact->outcome = INGEST_DUPLICATE;
        else
            s_set_conflict (fact);
    }
    PQclear (res);
    for (size_t i = 0; i < asked_count; i++)
        if (asked[i]->outcome == INGEST_PENDING) {
            //  Not inserted, yet not found: cannot happen under READ
            //  COMMITTED (ON CONFLICT waits for the other writer). Retry
            //  rather than guess.
            hcp_error ("%s: id %s neither stored nor found; retrying the batch", statement,
                       asked[i]->key);
            hcp_db_exec (self->db, "ROLLBACK");
            return S_RETRY;
        }
    return S_DONE;
}

//  Marks the subset members whose ord came back from an insert as accepted.
static void
s_mark_stored (PGresult *res, ingest_fact_t **subset, size_t count)
{
    for (int row = 0; row < PQntuples (res); row++) {
        long ord = strtol (PQgetvalue (res, row, 0), NULL, 10);
        if (ord >= 1 && (size_t) ord <= count)
            subset[ord - 1]->outcome = INGEST_ACCEPTED;
    }
}

static const char *
s_or_null (const char *text)
{
    return text && *text ? text : NULL;
}

static s_result_t
s_store_deliveries (ingest_store_t *self, ingest_fact_t **subset, size_t count)
{
    ingest_array_t *a = self->deliveries;
    for (int i = 0; i < D_COLUMNS; i++)
        ingest_array_reset (&a[i]);
    for (size_t i = 0; i < count; i++) {
        const ingest_fact_t *fact = subset[i];
        const Hcp__V1__Delivery *d = fact->submit->delivery;
        const Hcp__V1__Rater *rater = d->rater;
        ingest_array_add_text (&a[D_ID], fact->key, 0);
        ingest_array_add_text (&a[D_ITEM], d->item_code, 0);
        ingest_array_add_int2 (&a[D_STAGE], (int) d->stage);
        ingest_array_add_int2 (&a[D_CHANNEL], (int) d->channel);
        ingest_array_add_int2 (&a[D_RATER_TYPE], (int) rater->type);
        ingest_array_add_text (&a[D_RATER_KEY], s_or_null (rater->key), 1);
        ingest_array_add_text (&a[D_DIVISION], s_or_null (rater->division_code), 1);
        ingest_array_add_timestamptz_ms (&a[D_AT], d->delivered_at_ms);
        ingest_array_add (&a[D_CANONICAL], fact->canonical, (int) fact->canonical_size);
        ingest_array_add (&a[D_PAYLOAD], fact->payload, (int) fact->payload_size);
        ingest_array_add_text (&a[D_NAME], s_or_null (rater->name), 1);
        ingest_array_add_text (&a[D_PHONE], s_or_null (rater->phone), 1);
        ingest_array_add_text (&a[D_ID_NUMBER], s_or_null (rater->id_number), 1);
    }
    PGresult *res = s_run (self, "ingest_deliveries", a, D_COLUMNS);
    if (!hcp_db_ok (self->db, res))
        return s_failed (self, res, "storing deliveries");
    s_mark_stored (res, subset, count);
    PQclear (res);
    return s_fingerprints (self, subset, count, "ingest_delivery_fingerprints", false);
}

//  Applies the rules between ratings and the deliveries they name.
static s_result_t
s_check_deliveries (ingest_store_t *self, ingest_fact_t **subset, size_t count)
{
    ingest_array_t *keys = &self->lookup[0];
    ingest_array_reset (keys);
    keys->element_oid = INGEST_OID_TEXT;
    for (size_t i = 0; i < count; i++)
        if (*subset[i]->submit->rating->delivery_id)
            ingest_array_add_text (keys, subset[i]->submit->rating->delivery_id, 0);
    if (keys->count == 0)
        return S_DONE;
    PGresult *res = s_run (self, "ingest_delivery_lookup", keys, 1);
    if (!hcp_db_ok (self->db, res))
        return s_failed (self, res, "looking up deliveries");
    zhashx_t *rows = zhashx_new ();
    for (int row = 0; row < PQntuples (res); row++)
        zhashx_insert (rows, PQgetvalue (res, row, 0), (void *) (intptr_t) (row + 1));
    for (size_t i = 0; i < count; i++) {
        ingest_fact_t *fact = subset[i];
        const Hcp__V1__Rating *rating = fact->submit->rating;
        if (!*rating->delivery_id)
            continue;
        int row = (int) (intptr_t) zhashx_lookup (rows, rating->delivery_id) - 1;
        const char *item = row >= 0 ? PQgetvalue (res, row, 1) : NULL;
        int64_t at_ms = row >= 0 ? strtoll (PQgetvalue (res, row, 2), NULL, 10) : 0;
        if (hcp_validate_rating_delivery (rating, row >= 0, item, at_ms, &fact->rejection))
            fact->outcome = INGEST_REJECTED;
    }
    zhashx_destroy (&rows);
    PQclear (res);
    return S_DONE;
}

static s_result_t
s_store_ratings (ingest_store_t *self, ingest_fact_t **subset, size_t count)
{
    s_result_t rc = s_check_deliveries (self, subset, count);
    if (rc != S_DONE)
        return rc;
    //  Keep only the ratings still pending, in order.
    size_t kept = 0;
    for (size_t i = 0; i < count; i++)
        if (subset[i]->outcome == INGEST_PENDING)
            subset[kept++] = subset[i];
    if (kept == 0)
        return S_DONE;
    ingest_array_t *a = self->ratings;
    for (int i = 0; i < R_COLUMNS; i++)
        ingest_array_reset (&a[i]);
    for (size_t i = 0; i < kept; i++) {
        const ingest_fact_t *fact = subset[i];
        const Hcp__V1__Rating *r = fact->submit->rating;
        const Hcp__V1__Rater *rater = r->rater;
        if (ingest_array_add_uuid (&a[R_ID], fact->key) != 0)
            abort (); //  validated as a UUID: a bug if not
        ingest_array_add_text (&a[R_DELIVERY], s_or_null (r->delivery_id), 1);
        ingest_array_add_text (&a[R_ITEM], r->item_code, 0);
        ingest_array_add_int2 (&a[R_CHANNEL], (int) r->channel);
        ingest_array_add_int2 (&a[R_STAGE], (int) r->stage);
        ingest_array_add_int2 (&a[R_RATING_COUNT], (int) r->rating_count);
        ingest_array_add_int2 (&a[R_RATER_TYPE], (int) rater->type);
        ingest_array_add_text (&a[R_RATER_KEY], s_or_null (rater->key), 1);
        ingest_array_add_text (&a[R_DIVISION], s_or_null (rater->division_code), 1);
        ingest_array_add_timestamptz_ms (&a[R_AT], r->rated_at_ms);
        //  Grade 0 is "not rated": NULL, never an invented grade.
        int grades[3] = {(int) r->standardization, (int) r->convenience, (int) r->accuracy};
        for (int g = 0; g < 3; g++)
            if (grades[g])
                ingest_array_add_int2 (&a[R_STANDARDIZATION + g], grades[g]);
            else
                ingest_array_add (&a[R_STANDARDIZATION + g], NULL, -1);
        ingest_array_add_text (&a[R_COMMENT], r->comment ? r->comment : "", 0);
        ingest_array_add (&a[R_CANONICAL], fact->canonical, (int) fact->canonical_size);
        ingest_array_add (&a[R_PAYLOAD], fact->payload, (int) fact->payload_size);
        ingest_array_add_text (&a[R_NAME], s_or_null (rater->name), 1);
        ingest_array_add_text (&a[R_PHONE], s_or_null (rater->phone), 1);
        ingest_array_add_text (&a[R_ID_NUMBER], s_or_null (rater->id_number), 1);
    }
    PGresult *res = s_run (self, "ingest_ratings", a, R_COLUMNS);
    if (!hcp_db_ok (self->db, res))
        return s_failed (self, res, "storing ratings");
    s_mark_stored (res, subset, kept);
    PQclear (res);
    return s_fingerprints (self, subset, kept, "ingest_rating_fingerprints", true);
}

static int
s_compare_entries (const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    if (x->fact->kind != y->fact->kind)
        return x->fact->kind == HCP__V1__SUBMIT__FACT_DELIVERY ? -1 : 1;
    int order = strcmp (x->fact->key, y->fact->key);
    if (order)
        return order;
    return x->position < y->position ? -1 : x->position > y->position;
}

//  One transaction over the pending facts of facts[0..count).
static s_result_t
s_commit (ingest_store_t *self, ingest_fact_t **facts, size_t count)
{
    if (count > self->entries_capacity) {
        self->entries = realloc (self->entries, count * sizeof *self->entries);
        if (!self->entries)
            abort ();
        self->entries_capacity = count;
    }
    size_t pending = 0;
    for (size_t i = 0; i < count; i++)
        if (facts[i]->outcome == INGEST_PENDING)
            self->entries[pending++] = (s_entry_t){facts[i], i};
    if (pending == 0)
        return S_DONE;
    //  Deliveries first (a rating may name one of this batch), each kind in
    //  key order: UUIDv7 keys in time order keep the index append-mostly,
    //  and concurrent ingest instances lock rows in the same order.
    qsort (self->entries, pending, sizeof *self->entries, s_compare_entries);
    s_subset_reserve (self, pending);
    size_t deliveries = 0, ratings = 0;
    for (size_t i = 0; i < pending; i++) {
        ingest_fact_t *fact = self->entries[i].fact;
        if (i > 0 && self->entries[i - 1].fact->kind == fact->kind
            && !strcmp (self->entries[i - 1].fact->key, fact->key)) {
            fact->outcome = INGEST_DEFERRED;
            continue;
        }
        if (fact->kind == HCP__V1__SUBMIT__FACT_DELIVERY)
            self->subset[deliveries++] = fact;
    }
    if (hcp_db_exec (self->db, "BEGIN") != 0)
        return s_failed (self, NULL, "beginning the batch");
    s_result_t rc = S_DONE;
    if (deliveries > 0)
        rc = s_store_deliveries (self, self->subset, deliveries);
    if (rc == S_DONE) {
        for (size_t i = 0; i < pending; i++) {
            ingest_fact_t *fact = self->entries[i].fact;
            if (fact->kind == HCP__V1__SUBMIT__FACT_RATING && fact->outcome == INGEST_PENDING)
                self->subset[ratings++] = fact;
        }
        if (ratings > 0)
            rc = s_store_ratings (self, self->subset, ratings);
    }
    if (rc == S_DONE && hcp_db_exec (self->db, "COMMIT") != 0)
        rc = s_failed (self, NULL, "committing the batch");
    if (rc != S_DONE) {
        //  Rolled back: nothing of this attempt holds.
        for (size_t i = 0; i < pending; i++)
            self->entries[i].fact->outcome = INGEST_PENDING;
        return rc;
    }
    //  Later copies of an id are judged against the first copy, whose
    //  content is now what is stored when it was accepted or a duplicate.
    //  Only when that is unknown (the first was refused for another reason)
    //  do they wait for the next batch.
    ingest_fact_t *leader = NULL;
    for (size_t i = 0; i < pending; i++) {
        ingest_fact_t *fact = self->entries[i].fact;
        if (fact->outcome != INGEST_DEFERRED) {
            leader = fact;
            continue;
        }
        bool same = fact->canonical_size == leader->canonical_size
                    && !memcmp (fact->canonical, leader->canonical, fact->canonical_size);
        if (leader->outcome == INGEST_ACCEPTED || leader->outcome == INGEST_DUPLICATE) {
            if (same)
                fact->outcome = INGEST_DUPLICATE;
            else
                s_set_conflict (fact);
        }
        else if (leader->outcome == INGEST_REJECTED && same
                 && !strcmp (leader->rejection.code, "conflict"))
            s_set_conflict (fact);
    }
    return S_DONE;
}

int
ingest_store_commit (ingest_store_t *self, ingest_fact_t **facts, size_t count)
{
    s_result_t rc = s_commit (self, facts, count);
    if (rc != S_DATA)
        return rc == S_DONE ? 0 : -1;
    //  Some value was refused by the database although it passed
    //  validation. Store one fact per transaction to find it, so that one
    //  bad fact does not hold up the others.
    size_t isolated = 0;
    for (size_t i = 0; i < count; i++) {
        if (facts[i]->outcome != INGEST_PENDING)
            continue;
        rc = s_commit (self, &facts[i], 1);
        if (rc == S_RETRY)
            return -1; //  those decided so far keep their outcome
        if (rc == S_DATA) {
            hcp_rejection_set (&facts[i]->rejection, "message", "storage_refused",
                               "the database refused this %s: %s",
                               facts[i]->kind == HCP__V1__SUBMIT__FACT_RATING ? "rating"
                                                                              : "delivery",
                               hcp_db_error (self->db));
            facts[i]->outcome = INGEST_REJECTED;
            isolated++;
        }
    }
    if (isolated == 0)
        hcp_warn ("a batch failed on data but every fact stored alone: transient");
    return 0;
}

int
ingest_store_record_rejections (ingest_store_t *self, ingest_fact_t **facts, size_t count)
{
    ingest_array_t *a = self->rejections;
    for (int i = 0; i < X_COLUMNS; i++)
        ingest_array_reset (&a[i]);
    for (size_t i = 0; i < count; i++) {
        const ingest_fact_t *fact = facts[i];
        if (fact->outcome != INGEST_REJECTED)
            continue;
        ingest_array_add_text (&a[X_FACT_ID], ingest_fact_id (fact), 1);
        ingest_array_add_text (&a[X_FIELD], fact->rejection.field, 0);
        ingest_array_add_text (&a[X_CODE], fact->rejection.code, 0);
        ingest_array_add_text (&a[X_REASON], fact->rejection.reason, 0);
        ingest_array_add_text (&a[X_PEER], fact->peer, 1);
        ingest_array_add_int4 (&a[X_SIZE], (int32_t) fact->raw_size);
        size_t excerpt = fact->raw_size < S_EXCERPT_MAX ? fact->raw_size : S_EXCERPT_MAX;
        ingest_array_add (&a[X_EXCERPT], fact->raw ? fact->raw : (const uint8_t *) "",
                          fact->raw ? (int) excerpt : 0);
    }
    if (a[X_FIELD].count == 0)
        return 0;
    PGresult *res = s_run (self, "ingest_rejections", a, X_COLUMNS);
    if (hcp_db_ok (self->db, res)) {
        PQclear (res);
        return 0;
    }
    PQclear (res);
    if (hcp_db_lost (self->db))
        return -1;
    hcp_log_kv (HCP_LOG_ERROR, "cannot record rejections (they are in this log)", "sqlstate",
                hcp_db_sqlstate (self->db), "error", hcp_db_error (self->db), NULL);
    return 0;
}
