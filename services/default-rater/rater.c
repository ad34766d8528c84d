/*  hcp_rater — see rater.h.

    Why the work is split the way it is:
    - The default and everything that goes with it (the rating row, its
      rating.defaulted event, the window state) is one statement in one
      transaction: a crash leaves either all of it or none of it.
    - Windows are claimed with FOR UPDATE SKIP LOCKED in order of their end,
      so instances share the due windows without waiting on each other; the
      unique index ratings_one_default_per_delivery is the last guard.
    - Whether the rater rated is decided from the ratings table at claim
      time, not from the window state: a rating.stored event that has not
      been handled yet cannot cause a wrong default.
    - The event payload (hcp.v1.Rating) is built here, where the rating id
      is chosen (UUIDv7 of the window end), and sent with the batch as hex
      text; the database takes its SHA-256 as the rating's fingerprint.
*/
#include "rater.h"

#include "hcp/v1/ingest.pb-c.h"
#include "hcp_clock.h"
#include "hcp_log.h"
#include "hcp_uuid.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _hcp_rater_t {
    hcp_db_t *db;
    hcp_rater_settings_t settings;
    char stages_array[16]; //  "{1,2,3}"
    char window_days[16];
    char batch[16];
    hcp_rater_totals_t totals;
};

//  ---- Settings --------------------------------------------------------------

static const char *s_stage_names[] = {"", "application", "consultation", "completion"};

//  Parses one stage name or number; 0 if it is neither.
static int
s_stage_of (const char *text)
{
    for (int stage = 1; stage <= 3; stage++) {
        char digit[2] = {(char) ('0' + stage), 0};
        if (!strcmp (text, s_stage_names[stage]) || !strcmp (text, digit))
            return stage;
    }
    return 0;
}

//  Parses "application, completion" into settings->stages.
static int
s_stages_from_text (const char *text, hcp_rater_settings_t *settings, char *bad, size_t size)
{
    char *copy = strdup (text);
    if (!copy)
        abort ();
    int rc = 0;
    char *save = NULL;
    for (char *word = strtok_r (copy, ", \t", &save); word;
         word = strtok_r (NULL, ", \t", &save)) {
        int stage = s_stage_of (word);
        if (!stage) {
            snprintf (bad, size, "%s", word);
            rc = -1;
            break;
        }
        settings->stages[stage] = true;
    }
    free (copy);
    return rc;
}

int
hcp_rater_settings_load (hcp_config_t *config, hcp_rater_settings_t *settings, char **error)
{
    memset (settings, 0, sizeof *settings);
    *error = NULL;
    static const char *key = "default_rater.stages";
    char bad[80] = "";
    const char *env = getenv ("HCP_DEFAULT_RATER_STAGES");
    hcp_config_t *node = hcp_config_at (config, key);
    int failed = 0;
    if (env) {
        if (s_stages_from_text (env, settings, bad, sizeof bad) != 0) {
            if (asprintf (error,
                          "environment HCP_DEFAULT_RATER_STAGES: %s: unknown stage '%s' "
                          "(expected application, consultation, completion)",
                          key, bad)
                < 0)
                abort ();
            return -1;
        }
    }
    else if (!node) {
        //  Art. 13: ratings are taken after application, consultation and
        //  completion; by default each of them opens a window.
        settings->stages[1] = settings->stages[2] = settings->stages[3] = true;
    }
    else if (hcp_config_is_seq (node)) {
        for (size_t i = 0; i < hcp_config_size (node) && !failed; i++) {
            hcp_config_t *item = hcp_config_child (node, i);
            const char *value = hcp_config_value (item);
            int stage = value ? s_stage_of (value) : 0;
            if (!stage) {
                hcp_config_fail (config, item,
                                 "unknown stage '%.40s' (expected application, consultation, "
                                 "completion)",
                                 value ? value : "(a list or map)");
                failed = 1;
            }
            else
                settings->stages[stage] = true;
        }
    }
    else if (hcp_config_value (node)) {
        if (s_stages_from_text (hcp_config_value (node), settings, bad, sizeof bad) != 0) {
            hcp_config_fail (config, node,
                             "unknown stage '%s' (expected application, consultation, "
                             "completion)",
                             bad);
            failed = 1;
        }
    }
    else {
        hcp_config_fail (config, node,
                         "expected a list of stages, e.g. [application, "
                         "consultation, completion]");
        failed = 1;
    }
    long long value;
    if (!failed
        && hcp_config_int (config, "default_rater.window_days", 7, 1, 365, &value) != 0)
        failed = 1;
    settings->window_days = (int) value;
    if (!failed && hcp_config_int (config, "default_rater.batch", 1000, 1, 10000, &value) != 0)
        failed = 1;
    settings->batch = (int) value;
    if (failed) {
        *error = strdup (hcp_config_error (config));
        if (!*error)
            abort ();
        return -1;
    }
    return 0;
}

char *
hcp_rater_stages_text (const hcp_rater_settings_t *settings, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int stage = 1; stage <= 3; stage++)
        if (settings->stages[stage] && used < size)
            used += (size_t) snprintf (buf + used, size - used, "%s%s", used ? "," : "",
                                       s_stage_names[stage]);
    if (!used)
        snprintf (buf, size, "(none)");
    return buf;
}

//  ---- Text buffers for array parameters -------------------------------------

typedef struct {
    char *data;
    size_t size, alloc;
} buf_t;

static void
s_buf_add (buf_t *buf, const char *text, size_t len)
{
    if (buf->size + len + 1 > buf->alloc) {
        buf->alloc = (buf->size + len + 1) * 2;
        buf->data = realloc (buf->data, buf->alloc);
        if (!buf->data)
            abort ();
    }
    memcpy (buf->data + buf->size, text, len);
    buf->size += len;
    buf->data[buf->size] = 0;
}

static void
s_buf_reset (buf_t *buf)
{
    buf->size = 0;
    s_buf_add (buf, "{", 1);
}

//  Appends one element to a PostgreSQL array literal, quoted, with " and
//  \ escaped: delivery ids are free printable ASCII and may hold either.
static void
s_array_add (buf_t *buf, const char *text)
{
    if (buf->size > 1)
        s_buf_add (buf, ",", 1);
    s_buf_add (buf, "\"", 1);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            s_buf_add (buf, "\\", 1);
        s_buf_add (buf, p, 1);
    }
    s_buf_add (buf, "\"", 1);
}

//  Appends SQL NULL (for a NULL column copied through an array).
static void
s_array_add_null (buf_t *buf)
{
    if (buf->size > 1)
        s_buf_add (buf, ",", 1);
    s_buf_add (buf, "NULL", 4);
}

//  Appends the value of a result cell, or NULL.
static void
s_array_add_cell (buf_t *buf, const PGresult *res, int row, int column)
{
    if (PQgetisnull (res, row, column))
        s_array_add_null (buf);
    else
        s_array_add (buf, PQgetvalue (res, row, column));
}

static void
s_array_add_hex (buf_t *buf, const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    if (buf->size > 1)
        s_buf_add (buf, ",", 1);
    for (size_t i = 0; i < len; i++) {
        char pair[2] = {digits[data[i] >> 4], digits[data[i] & 15]};
        s_buf_add (buf, pair, 2);
    }
    if (len == 0)
        s_buf_add (buf, "\"\"", 2);
}

static void
s_array_end (buf_t *buf)
{
    s_buf_add (buf, "}", 1);
}

//  ---- Statements ----------------------------------------------------------------

//  Every transaction here touches a batch of rows of tables that grow
//  without end, through their primary keys: nested loops are right. The
//  planner, judging by statistics that may be stale (or, at mid sizes,
//  rightly for one batch but not for the next), would sometimes hash a
//  whole table per batch; and the large estimated costs of those plans
//  would make it JIT-compile every batch (measured: a fifth of the time).
#define S_BEGIN                                                                               \
    "BEGIN; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;"               \
    " SET LOCAL jit = off"

//  Opens windows for the given deliveries of the configured stages. A
//  delivery already rated (its rating.stored came first, or the window is
//  opened late by the safety net) gets a window that is 'rated' at once.
//  $1 delivery ids, $2 window days, $3 stages, $4 now.
#define S_OPEN "rater_open"
#define S_OPEN_SQL                                                                            \
    "INSERT INTO rating_windows (delivery_id, stage, ends_at, state, rating_id,"              \
    " closed_at) SELECT d.delivery_id, d.stage, hcp_rating_window_end"                        \
    " (d.delivered_at, $2::integer), CASE WHEN r.rating_id IS NULL THEN 'open'"               \
    " ELSE 'rated' END, r.rating_id, CASE WHEN r.rating_id IS NULL THEN NULL ELSE"            \
    " to_timestamp ($4::bigint / 1000.0) END"                                                 \
    " FROM deliveries d LEFT"                                                                 \
    " JOIN LATERAL (SELECT (SELECT o.rating_id"                                               \
    " FROM ratings o WHERE o.delivery_id = d.delivery_id AND o.origin = 'rater'"              \
    " ORDER BY o.rated_at, o.rating_id"                                                       \
    " LIMIT 1) AS rating_id) r ON true"                                                       \
    " WHERE d.delivery_id = ANY ($1::text[]) AND d.stage = ANY ($3::smallint[]) ON"           \
    " CONFLICT (delivery_id) DO NOTHING"

//  The safety net: deliveries of a configured stage without a window.
//  $1 limit, $2 window days, $3 stages, $4 now.
#define S_OPEN_MISSING "rater_open_missing"
#define S_OPEN_MISSING_SQL                                                                    \
    "INSERT INTO rating_windows (delivery_id, stage, ends_at, state, rating_id,"              \
    " closed_at) SELECT d.delivery_id, d.stage, hcp_rating_window_end"                        \
    " (d.delivered_at, $2::integer), CASE WHEN r.rating_id IS NULL THEN 'open'"               \
    " ELSE 'rated' END, r.rating_id, CASE WHEN r.rating_id IS NULL THEN NULL ELSE"            \
    " to_timestamp ($4::bigint / 1000.0) END"                                                 \
    " FROM (SELECT d.delivery_id, d.stage, d.delivered_at"                                    \
    " FROM deliveries d WHERE d.stage = ANY ($3::smallint[]) AND NOT EXISTS"                  \
    " (SELECT 1 FROM rating_windows w"                                                        \
    " WHERE w.delivery_id = d.delivery_id)"                                                   \
    " LIMIT $1::integer) d LEFT"                                                              \
    " JOIN LATERAL (SELECT (SELECT o.rating_id"                                               \
    " FROM ratings o WHERE o.delivery_id = d.delivery_id AND o.origin = 'rater'"              \
    " ORDER BY o.rated_at, o.rating_id"                                                       \
    " LIMIT 1) AS rating_id) r ON true ON CONFLICT (delivery_id) DO NOTHING"

//  rating.stored: an open window becomes 'rated'; a defaulted one
//  'rated_late' (the default stays, superseded in effective_ratings).
//  A window locked by a default being applied is waited for, then seen
//  'defaulted': the late rule applies, nothing is missed.
//  $1 rating ids, $2 now. Returns (late?) per window changed.
#define S_CLOSE "rater_close"
#define S_CLOSE_SQL                                                                           \
    "UPDATE rating_windows w"                                                                 \
    " SET state = CASE WHEN w.state = 'open' THEN 'rated' ELSE 'rated_late' END,"             \
    " rating_id = CASE WHEN w.state = 'open' THEN r.rating_id ELSE w.rating_id"               \
    " END, late_rating_id = CASE WHEN w.state = 'open' THEN NULL ELSE r.rating_id"            \
    " END, closed_at = to_timestamp ($2::bigint / 1000.0)"                                    \
    " FROM ratings r WHERE r.rating_id = ANY ($1::uuid[]) AND r.origin = 'rater'"             \
    " AND w.delivery_id = r.delivery_id AND w.state IN ('open', 'defaulted')"                 \
    " RETURNING w.state = 'rated_late'"

//  Claims and closes due windows in one statement: up to $2 open windows
//  whose end is at or before $1 (now), oldest end first, skipping those
//  another instance holds (FOR UPDATE SKIP LOCKED). Each becomes
//  - 'rated' if the rater has rated the delivery (at any time: the event
//    may not be handled yet), naming that rating (any one of them if there
//    are several: no sort per window on this hot path);
//  - else 'defaulted', naming a new id from $3 (UUIDv7s of now made by
//    the caller, one per window: the database's gen_random_uuid costs a
//    tenth of this statement), the id under which S_DEFAULT stores the
//    default in the same transaction. (If a
//    default exists already — it cannot, defaults are only written under
//    this lock, but the unique index is the last word — the window names
//    it and new_default is false: nothing more is written.)
//  Returns what the default needs, copied from the delivery. The row
//  locked is found again by its ctid (the version the lock returned; a
//  TID scan, not a second walk down the primary key).
#define S_CLOSE_DUE "rater_close_due"
#define S_CLOSE_DUE_SQL                                                                       \
    "UPDATE rating_windows w"                                                                 \
    " SET state = CASE WHEN x.rater_rating IS NULL THEN 'defaulted' ELSE 'rated'"             \
    " END, rating_id = coalesce (x.rater_rating, x.old_default,"                              \
    " ($3::uuid[])[due.n]), closed_at = to_timestamp ($1::bigint / 1000.0)"                   \
    " FROM (SELECT l.*, row_number () OVER () AS n"                                           \
    " FROM (SELECT u.ctid AS tid, u.delivery_id"                                              \
    " FROM rating_windows u"                                                                  \
    " WHERE u.state = 'open' AND u.ends_at <= to_timestamp ($1::bigint / 1000.0)"             \
    " ORDER BY u.ends_at LIMIT $2::integer FOR"                                               \
    " UPDATE SKIP LOCKED) l) due"                                                             \
    " JOIN deliveries d ON d.delivery_id = due.delivery_id"                                   \
    " CROSS JOIN LATERAL (SELECT (SELECT o.rating_id"                                         \
    " FROM ratings o WHERE o.delivery_id = due.delivery_id AND o.origin = 'rater'"            \
    " LIMIT 1) AS rater_rating, (SELECT o.rating_id"                                          \
    " FROM ratings o WHERE o.delivery_id = due.delivery_id AND o.origin ="                    \
    " 'default') AS old_default OFFSET 0) x"                                                  \
    " WHERE w.ctid = due.tid"                                                                 \
    " RETURNING w.delivery_id, floor (extract (epoch"                                         \
    " FROM w.ends_at) * 1000)::bigint, d.item_code, d.channel, d.stage,"                      \
    " d.rater_type, d.rater_key, d.division_code, w.rating_id, x.rater_rating IS"             \
    " NULL AND x.old_default IS NULL, w.state"

//  The defaults of the windows just closed 'defaulted': the rating rows
//  (copied from the delivery, rated_at = the window end) and their events.
//  Everything comes in as arrays, so the statement reaches no table but
//  the two it inserts into (no join the planner could turn into a scan).
//  $1 rating ids, $2 delivery ids, $3 payloads (hex), $4 window ends (ms),
//  $5 items, $6 channels, $7 stages, $8 rater types, $9 rater keys,
//  $10 divisions.
#define S_DEFAULT "rater_default"
#define S_DEFAULT_SQL                                                                         \
    "WITH t AS ( SELECT * FROM unnest ($1::uuid[], $2::text[], $3::text[],"                   \
    " $4::bigint[], $5::text[], $6::smallint[], $7::smallint[], $8::smallint[],"              \
    " $9::text[], $10::text[]) AS t (rating_id, delivery_id, payload, ends_ms,"               \
    " item_code, channel, stage, rater_type, rater_key, division_code)), ins AS ("            \
    " INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage,"                \
    " rating_count, rater_type, rater_key, division_code, rated_at,"                          \
    " standardization, convenience, accuracy, comment, origin, fingerprint)"                  \
    " SELECT t.rating_id, t.delivery_id, t.item_code, t.channel, t.stage, 1,"                 \
    " t.rater_type, t.rater_key, t.division_code, to_timestamp (t.ends_ms /"                  \
    " 1000.0), 3, 3, 3, '', 'default', sha256 (decode (t.payload, 'hex'))"                    \
    " FROM t RETURNING rating_id), ev AS ("                                                   \
    " INSERT INTO events (type, key, payload)"                                                \
    " SELECT 'rating.defaulted', t.rating_id::text, decode (t.payload, 'hex')"                \
    " FROM t RETURNING 1) SELECT (SELECT count(*)"                                            \
    " FROM ins), (SELECT count(*)"                                                            \
    " FROM ev)"

hcp_rater_t *
hcp_rater_new (hcp_db_t *db, const hcp_rater_settings_t *settings)
{
    assert (db);
    assert (settings);
    assert (settings->batch > 0 && settings->window_days > 0);
    hcp_rater_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->db = db;
    self->settings = *settings;
    size_t used = (size_t) snprintf (self->stages_array, sizeof self->stages_array, "{");
    for (int stage = 1; stage <= 3; stage++)
        if (settings->stages[stage])
            used += (size_t) snprintf (self->stages_array + used,
                                       sizeof self->stages_array - used, "%s%d",
                                       used > 1 ? "," : "", stage);
    snprintf (self->stages_array + used, sizeof self->stages_array - used, "}");
    snprintf (self->window_days, sizeof self->window_days, "%d", settings->window_days);
    snprintf (self->batch, sizeof self->batch, "%d", settings->batch);
    //  Registered now, prepared on every (re)connection by hcp_db.
    hcp_db_prepare (db, S_OPEN, S_OPEN_SQL);
    hcp_db_prepare (db, S_OPEN_MISSING, S_OPEN_MISSING_SQL);
    hcp_db_prepare (db, S_CLOSE, S_CLOSE_SQL);
    hcp_db_prepare (db, S_CLOSE_DUE, S_CLOSE_DUE_SQL);
    hcp_db_prepare (db, S_DEFAULT, S_DEFAULT_SQL);
    return self;
}

void
hcp_rater_destroy (hcp_rater_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

hcp_rater_totals_t
hcp_rater_totals (const hcp_rater_t *self)
{
    return self->totals;
}

//  Ends a failed transaction. The connection may be gone: then the server
//  rolled back already and the caller reconnects.
static int
s_fail (hcp_rater_t *self, const char *what)
{
    char error[512];
    snprintf (error, sizeof error, "%s", hcp_db_error (self->db));
    if (!hcp_db_lost (self->db))
        hcp_db_exec (self->db, "ROLLBACK");
    hcp_log_kv (HCP_LOG_WARN, "transaction failed, nothing of it was written; will retry",
                "step", what, "error", error, NULL);
    return -1;
}

//  Runs a statement and returns its affected-row count, or -1.
static long
s_run_count (hcp_rater_t *self, const char *name, int nparams, const char *const *values)
{
    PGresult *res = hcp_db_run (self->db, name, nparams, values);
    if (!hcp_db_ok (self->db, res)) {
        PQclear (res);
        return -1;
    }
    long count = atol (PQcmdTuples (res));
    PQclear (res);
    return count;
}

//  The rating id a rating.stored event is about: the payload's rating_id
//  (hcp.v1.Rating), else the key. NULL if neither is a UUID.
static const char *
s_rating_id_of (const hcp_event_t *event, char out[HCP_UUID_STR_LEN])
{
    if (event->payload_size > 0) {
        Hcp__V1__Rating *rating = hcp__v1__rating__unpack (NULL, event->payload_size,
                                                           event->payload);
        if (rating) {
            int ok = hcp_uuid_valid (rating->rating_id);
            if (ok)
                snprintf (out, HCP_UUID_STR_LEN, "%s", rating->rating_id);
            hcp__v1__rating__free_unpacked (rating, NULL);
            if (ok)
                return out;
        }
    }
    if (event->key && hcp_uuid_valid (event->key)) {
        snprintf (out, HCP_UUID_STR_LEN, "%s", event->key);
        return out;
    }
    return NULL;
}

int
hcp_rater_handle_events (hcp_rater_t *self, hcp_event_t *const *events, size_t count,
                         uint64_t through_seq, int64_t now_ms)
{
    assert (self);
    assert (through_seq > 0);
    buf_t deliveries = {0}, ratings = {0};
    s_buf_reset (&deliveries);
    s_buf_reset (&ratings);
    size_t delivery_count = 0, rating_count = 0;
    for (size_t i = 0; i < count; i++) {
        const hcp_event_t *event = events[i];
        assert (event->seq <= through_seq);
        if (!strcmp (event->type, "delivery.stored")) {
            s_array_add (&deliveries, event->key);
            delivery_count++;
        }
        else if (!strcmp (event->type, "rating.stored")) {
            char id[HCP_UUID_STR_LEN];
            if (s_rating_id_of (event, id)) {
                s_array_add (&ratings, id);
                rating_count++;
            }
            else {
                char seq[24];
                snprintf (seq, sizeof seq, "%" PRIu64, event->seq);
                hcp_log_kv (HCP_LOG_WARN, "rating.stored event without a rating id; ignored",
                            "seq", seq, "key", event->key, NULL);
            }
        }
    }
    s_array_end (&deliveries);
    s_array_end (&ratings);
    char now[24];
    snprintf (now, sizeof now, "%" PRId64, now_ms);

    int rc = -1;
    if (hcp_db_exec (self->db, S_BEGIN) != 0) {
        s_fail (self, "events: begin");
        goto done;
    }
    int claimed = hcp_offset_claim (self->db, HCP_RATER_CONSUMER, through_seq);
    if (claimed < 0) {
        s_fail (self, "events: offset");
        goto done;
    }
    if (claimed == 0) {
        //  Another instance handled these events already.
        hcp_db_exec (self->db, "ROLLBACK");
        rc = 0;
        goto done;
    }
    long opened = 0, late = 0, rated = 0;
    if (delivery_count > 0) {
        const char *values[] = {deliveries.data, self->window_days, self->stages_array, now};
        opened = s_run_count (self, S_OPEN, 4, values);
        if (opened < 0) {
            s_fail (self, "events: open windows");
            goto done;
        }
    }
    if (rating_count > 0) {
        const char *values[] = {ratings.data, now};
        PGresult *res = hcp_db_run (self->db, S_CLOSE, 2, values);
        if (!hcp_db_ok (self->db, res)) {
            PQclear (res);
            s_fail (self, "events: close windows");
            goto done;
        }
        for (int row = 0; row < PQntuples (res); row++)
            if (PQgetvalue (res, row, 0)[0] == 't')
                late++;
            else
                rated++;
        PQclear (res);
    }
    if (hcp_db_exec (self->db, "COMMIT") != 0) {
        s_fail (self, "events: commit");
        goto done;
    }
    self->totals.windows_opened += (uint64_t) opened;
    self->totals.windows_rated += (uint64_t) rated;
    self->totals.windows_late += (uint64_t) late;
    if (late > 0)
        hcp_info ("%ld rating(s) arrived after the default of their delivery: windows marked "
                  "rated_late, the defaults are superseded",
                  late);
    rc = 1;
done:
    free (deliveries.data);
    free (ratings.data);
    return rc;
}

//  Builds the rating.defaulted payload: the default rating as hcp.v1.Rating
//  (no personal data: a delivery has none in its row).
static size_t
s_default_payload (const char *rating_id, PGresult *res, int row, int64_t ends_ms,
                   uint8_t *out, size_t size)
{
    Hcp__V1__Rater rater = HCP__V1__RATER__INIT;
    rater.type = (Hcp__V1__RaterType) atoi (PQgetvalue (res, row, 5));
    rater.key = PQgetvalue (res, row, 6);
    rater.division_code = PQgetvalue (res, row, 7);
    Hcp__V1__Rating rating = HCP__V1__RATING__INIT;
    rating.rating_id = (char *) rating_id;
    rating.delivery_id = PQgetvalue (res, row, 0);
    rating.item_code = PQgetvalue (res, row, 2);
    rating.channel = (Hcp__V1__Channel) atoi (PQgetvalue (res, row, 3));
    rating.stage = (Hcp__V1__Stage) atoi (PQgetvalue (res, row, 4));
    rating.rating_count = 1;
    rating.rater = &rater;
    rating.rated_at_ms = ends_ms;
    rating.standardization = HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED;
    rating.convenience = HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED;
    rating.accuracy = HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED;
    size_t packed = hcp__v1__rating__get_packed_size (&rating);
    //  Bounded by the columns' limits (ids of 64 bytes, codes): far below.
    assert (packed <= size);
    return hcp__v1__rating__pack (&rating, out);
}

int
hcp_rater_apply_due (hcp_rater_t *self, int64_t now_ms)
{
    assert (self);
    char now[24];
    snprintf (now, sizeof now, "%" PRId64, now_ms);
    if (hcp_db_exec (self->db, S_BEGIN) != 0)
        return s_fail (self, "defaults: begin");
    //  The ids the defaults may take: time-ordered by when they are
    //  stored, which keeps the ratings primary key append-mostly.
    buf_t ids = {0};
    s_buf_reset (&ids);
    for (int i = 0; i < self->settings.batch; i++) {
        char id[HCP_UUID_STR_LEN];
        hcp_uuid_v7 (now_ms, id);
        s_array_add (&ids, id);
    }
    s_array_end (&ids);
    const char *close_values[] = {now, self->batch, ids.data};
    PGresult *res = hcp_db_run (self->db, S_CLOSE_DUE, 3, close_values);
    free (ids.data);
    if (!hcp_db_ok (self->db, res)) {
        PQclear (res);
        return s_fail (self, "defaults: close due windows");
    }
    int rows = PQntuples (res);
    if (rows == 0) {
        PQclear (res);
        hcp_db_exec (self->db, "COMMIT");
        return 0;
    }
    //  Columns of the defaults, as array literals (see S_DEFAULT).
    enum {
        C_ID,
        C_DELIVERY,
        C_PAYLOAD,
        C_ENDS,
        C_ITEM,
        C_CHANNEL,
        C_STAGE,
        C_TYPE,
        C_KEY,
        C_DIVISION,
        C_COUNT
    };
    buf_t column[C_COUNT] = {{0}};
    for (int c = 0; c < C_COUNT; c++)
        s_buf_reset (&column[c]);
    int defaults = 0, rated = 0, existing = 0;
    for (int row = 0; row < rows; row++) {
        const char *delivery_id = PQgetvalue (res, row, 0);
        const char *rating_id = PQgetvalue (res, row, 8);
        bool new_default = PQgetvalue (res, row, 9)[0] == 't';
        if (!new_default) {
            //  The rater rated (the window is 'rated'), or a default was
            //  there already (counted as rows - defaults - rated, logged).
            if (!strcmp (PQgetvalue (res, row, 10), "rated"))
                rated++;
            continue;
        }
        int64_t ends_ms = strtoll (PQgetvalue (res, row, 1), NULL, 10);
        uint8_t payload[1024];
        size_t size = s_default_payload (rating_id, res, row, ends_ms, payload,
                                         sizeof payload);
        s_array_add (&column[C_ID], rating_id);
        s_array_add (&column[C_DELIVERY], delivery_id);
        s_array_add_hex (&column[C_PAYLOAD], payload, size);
        s_array_add (&column[C_ENDS], PQgetvalue (res, row, 1));
        s_array_add (&column[C_ITEM], PQgetvalue (res, row, 2));
        s_array_add (&column[C_CHANNEL], PQgetvalue (res, row, 3));
        s_array_add (&column[C_STAGE], PQgetvalue (res, row, 4));
        s_array_add (&column[C_TYPE], PQgetvalue (res, row, 5));
        s_array_add_cell (&column[C_KEY], res, row, 6);
        s_array_add_cell (&column[C_DIVISION], res, row, 7);
        defaults++;
    }
    PQclear (res);
    for (int c = 0; c < C_COUNT; c++)
        s_array_end (&column[c]);
    int rc = -1;
    if (defaults > 0) {
        const char *values[C_COUNT];
        for (int c = 0; c < C_COUNT; c++)
            values[c] = column[c].data;
        res = hcp_db_run (self->db, S_DEFAULT, C_COUNT, values);
        if (!hcp_db_ok (self->db, res) || PQntuples (res) != 1) {
            PQclear (res);
            s_fail (self, "defaults: store");
            goto done;
        }
        long stored = atol (PQgetvalue (res, 0, 0));
        PQclear (res);
        //  A second default would have been refused by the unique index
        //  with an error (everything rolled back), so this cannot differ.
        if (stored != defaults)
            hcp_error ("defaults: %d to store but %ld stored", defaults, stored);
    }
    if (hcp_db_exec (self->db, "COMMIT") != 0) {
        s_fail (self, "defaults: commit");
        goto done;
    }
    existing = rows - defaults - rated;
    if (existing > 0)
        hcp_warn ("defaults: %d window(s) had a default already (written by something other "
                  "than hcp-default-rater?); recorded it, stored none",
                  existing);
    self->totals.defaults += (uint64_t) defaults;
    self->totals.windows_rated += (uint64_t) rated;
    rc = rows;
done:
    for (int c = 0; c < C_COUNT; c++)
        free (column[c].data);
    return rc;
}

int
hcp_rater_open_missing (hcp_rater_t *self, int64_t now_ms)
{
    assert (self);
    char now[24];
    snprintf (now, sizeof now, "%" PRId64, now_ms);
    const char *values[] = {self->batch, self->window_days, self->stages_array, now};
    if (hcp_db_exec (self->db, "BEGIN; SET LOCAL jit = off") != 0)
        return s_fail (self, "safety net: begin");
    long opened = s_run_count (self, S_OPEN_MISSING, 4, values);
    if (opened < 0)
        return s_fail (self, "safety net: open windows");
    if (hcp_db_exec (self->db, "COMMIT") != 0)
        return s_fail (self, "safety net: commit");
    self->totals.windows_opened += (uint64_t) opened;
    return (int) opened;
}
