/*  Integration: duplicates and conflicts. Resends answered duplicate and
    stored once; the same id with other content rejected; two copies of one
    id inside one batch (one stored, one duplicate); a delivery and a rating
    for it in one batch; personal data kept out of events. The in-batch
    cases drive ingest_store directly on a real database, so the batch is
    exactly the one under test; the others go through the real hcp-ingest.
*/
#include "test_ingest_support.h"

#include "../../services/ingest/ingest_store.h"
#include "hcp_db.h"
#include "hcp_validate.h"

#include <ctype.h>

//  --------------------------------------------------------------------------
//  Through hcp-ingest

static void
test_resend_is_duplicate (void **state)
{
    (void) state;
    test_rating_t valid;
    Hcp__V1__Rating *rating = s_test_rating (&valid);
    const char *id = valid.id;
    rating->rater->name = (char *) "李四";
    rating->rater->phone = (char *) "13900000000";
    ingest_t *ingest = s_ingest_start ("ingest_dup", NULL);
    zsock_t *socket = s_dealer (ingest);
    int expected[] = {HCP__V1__ACK_STATUS__ACK_ACCEPTED, HCP__V1__ACK_STATUS__ACK_DUPLICATE,
                      HCP__V1__ACK_STATUS__ACK_DUPLICATE};
    for (int i = 0; i < 3; i++) {
        Hcp__V1__SubmitReply *reply = s_call (socket, s_encode (rating, NULL));
        assert_int_equal (reply->status, expected[i]);
        assert_string_equal (reply->id, id);
        hcp__v1__submit_reply__free_unpacked (reply, NULL);
    }
    //  The same UUID in capitals is the same rating: a duplicate.
    char upper[HCP_UUID_STR_LEN];
    for (int i = 0; i < HCP_UUID_STR_LEN; i++)
        upper[i] = (char) toupper ((unsigned char) id[i]);
    rating->rating_id = upper;
    Hcp__V1__SubmitReply *reply = s_call (socket, s_encode (rating, NULL));
    assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_DUPLICATE);
    assert_string_equal (reply->id, upper); //  answered under the id as sent
    hcp__v1__submit_reply__free_unpacked (reply, NULL);

    PGconn *conn = ingest->conn;
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM ratings"), 1);
    assert_int_equal (
        hcp_test_sql_int (conn,
                          "SELECT count(*) FROM events WHERE type = 'rating.stored' "
                          "AND key = '%s'",
                          id),
        1);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM rater_pii WHERE fact_id = "
                                        "'%s' AND name = '李四' AND phone = '13900000000'",
                                        id),
                      1);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM rejected_submissions"), 0);
    //  The event payload is the rating without personal data.
    char *hex = hcp_test_sql_text (conn, "SELECT encode(payload, 'hex') FROM events");
    size_t size = strlen (hex) / 2;
    uint8_t *payload = malloc (size);
    for (size_t i = 0; i < size; i++)
        sscanf (hex + 2 * i, "%2hhx", &payload[i]);
    Hcp__V1__Rating *stored = hcp__v1__rating__unpack (NULL, size, payload);
    assert_non_null (stored);
    assert_string_equal (stored->rating_id, id);
    assert_string_equal (stored->rater->name, "");
    assert_string_equal (stored->rater->phone, "");
    assert_string_equal (stored->rater->key, "acct-1");
    assert_string_equal (stored->comment, "办理顺利");
    hcp__v1__rating__free_unpacked (stored, NULL);
    free (payload);
    free (hex);
    zsock_destroy (&socket);
    s_ingest_destroy (&ingest);
}

//  Many copies of one id sent at once, without waiting (they share
//  batches): exactly one accepted, every other one duplicate.
static void
test_burst_of_copies (void **state)
{
    (void) state;
    ingest_t *ingest = s_ingest_start ("ingest_burst", NULL);
    zsock_t *socket = s_dealer (ingest);
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater delivery_rater;
    s_delivery (&delivery, &delivery_rater, "D-BURST");
    test_rating_t valid;
    s_test_rating (&valid)->delivery_id = (char *) "D-BURST";
    //  The delivery and its ratings in one burst: deliveries go first in a
    //  batch, so the rating finds its delivery.
    zframe_t *frame = s_encode (NULL, &delivery);
    zframe_send (&frame, socket, 0);
    for (int i = 0; i < 50; i++) {
        frame = s_encode (&valid.rating, NULL);
        zframe_send (&frame, socket, 0);
    }
    int counts[4] = {0};
    for (int i = 0; i < 51; i++) {
        Hcp__V1__SubmitReply *reply = s_reply (socket);
        if (!strcmp (reply->id, valid.id))
            counts[reply->status]++;
        else
            assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_ACCEPTED);
        hcp__v1__submit_reply__free_unpacked (reply, NULL);
    }
    assert_int_equal (counts[HCP__V1__ACK_STATUS__ACK_ACCEPTED], 1);
    assert_int_equal (counts[HCP__V1__ACK_STATUS__ACK_DUPLICATE], 49);
    assert_int_equal (hcp_test_sql_int (ingest->conn, "SELECT count(*) FROM events"), 2);
    zsock_destroy (&socket);
    s_ingest_destroy (&ingest);
}

//  --------------------------------------------------------------------------
//  ingest_store on its own: the batch is exactly what the test builds

typedef struct {
    hcp_db_t *db;
    ingest_store_t *store;
    char *conninfo;
    PGconn *conn;
    ingest_fact_t facts[8];
    ingest_fact_t *list[8];
    size_t count;
} batch_t;

static batch_t *
s_batch_new (const char *name)
{
    batch_t *self = calloc (1, sizeof *self);
    self->conninfo = hcp_test_db_create (name);
    self->conn = hcp_test_connect (self->conninfo);
    self->db = hcp_db_new (self->conninfo, "test");
    assert_int_equal (hcp_db_ensure (self->db, 10000, NULL), 0);
    self->store = ingest_store_new (self->db);
    assert_non_null (self->store);
    return self;
}

//  Adds a fact to the batch, as ingest would after validation.
static void
s_batch_add (batch_t *self, const Hcp__V1__Rating *rating, const Hcp__V1__Delivery *delivery)
{
    zframe_t *frame = s_encode (rating, delivery);
    ingest_fact_t *fact = &self->facts[self->count];
    memset (fact, 0, sizeof *fact);
    fact->submit = hcp__v1__submit__unpack (NULL, zframe_size (frame), zframe_data (frame));
    zframe_destroy (&frame);
    assert_int_equal (ingest_fact_prepare (fact), 0);
    self->list[self->count] = fact;
    self->count++;
}

static void
s_batch_commit (batch_t *self)
{
    assert_int_equal (ingest_store_commit (self->store, self->list, self->count), 0);
}

static void
s_batch_clear (batch_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        ingest_fact_clear (&self->facts[i]);
    self->count = 0;
}

static void
s_batch_destroy (batch_t **self_p)
{
    batch_t *self = *self_p;
    s_batch_clear (self);
    ingest_store_destroy (&self->store);
    hcp_db_destroy (&self->db);
    PQfinish (self->conn);
    hcp_test_db_drop (self->conninfo);
    free (self->conninfo);
    free (self);
    *self_p = NULL;
}

static void
test_two_copies_in_one_batch (void **state)
{
    (void) state;
    batch_t *batch = s_batch_new ("ingest_batch_copies");
    test_rating_t valid;
    Hcp__V1__Rating *rating = s_test_rating (&valid);
    s_batch_add (batch, rating, NULL);
    s_batch_add (batch, rating, NULL);
    s_batch_commit (batch);
    //  The first stored, the second a duplicate of it, in the same batch.
    assert_int_equal (batch->facts[0].outcome, INGEST_ACCEPTED);
    assert_int_equal (batch->facts[1].outcome, INGEST_DUPLICATE);
    assert_int_equal (hcp_test_sql_int (batch->conn, "SELECT count(*) FROM ratings"), 1);
    assert_int_equal (hcp_test_sql_int (batch->conn, "SELECT count(*) FROM events"), 1);
    s_batch_clear (batch);

    //  Two copies with different content in one batch: one conflict.
    s_test_rating (&valid);
    s_batch_add (batch, rating, NULL);
    rating->comment = (char *) "改过的内容";
    s_batch_add (batch, rating, NULL);
    s_batch_commit (batch);
    assert_int_equal (batch->facts[0].outcome, INGEST_ACCEPTED);
    assert_int_equal (batch->facts[1].outcome, INGEST_REJECTED);
    assert_string_equal (batch->facts[1].rejection.code, "conflict");
    assert_string_equal (batch->facts[1].rejection.field, "rating.rating_id");
    s_batch_clear (batch);

    //  Two copies of a rating whose delivery is unknown: the first refused,
    //  the second left for the next batch (the delivery may come by then).
    s_test_rating (&valid)->delivery_id = (char *) "D-LATER";
    s_batch_add (batch, rating, NULL);
    s_batch_add (batch, rating, NULL);
    s_batch_commit (batch);
    assert_int_equal (batch->facts[0].outcome, INGEST_REJECTED);
    assert_string_equal (batch->facts[0].rejection.code, "unknown_delivery");
    assert_int_equal (batch->facts[1].outcome, INGEST_DEFERRED);
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater delivery_rater;
    s_delivery (&delivery, &delivery_rater, "D-LATER");
    s_batch_add (batch, NULL, &delivery);
    batch->facts[1].outcome = INGEST_PENDING;
    ingest_fact_t *next[2] = {&batch->facts[1], &batch->facts[2]};
    assert_int_equal (ingest_store_commit (batch->store, next, 2), 0);
    assert_int_equal (batch->facts[1].outcome, INGEST_ACCEPTED);
    assert_int_equal (batch->facts[2].outcome, INGEST_ACCEPTED);
    s_batch_destroy (&batch);
}

static void
test_delivery_and_rating_in_one_batch (void **state)
{
    (void) state;
    batch_t *batch = s_batch_new ("ingest_batch_pair");
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater delivery_rater;
    s_delivery (&delivery, &delivery_rater, "D-PAIR");
    delivery_rater.id_number = (char *) "110101199001011234";
    Hcp__V1__Rating rating, early;
    Hcp__V1__Rater rater, early_rater;
    char id[HCP_UUID_STR_LEN], early_id[HCP_UUID_STR_LEN];
    s_rating (&rating, &rater, id);
    rating.delivery_id = (char *) "D-PAIR";
    s_rating (&early, &early_rater, early_id);
    early.delivery_id = (char *) "D-PAIR";
    early.rated_at_ms = delivery.delivered_at_ms - 1000;
    //  The ratings come first in the batch; the delivery is stored first.
    s_batch_add (batch, &rating, NULL);
    s_batch_add (batch, &early, NULL);
    s_batch_add (batch, NULL, &delivery);
    s_batch_commit (batch);
    assert_int_equal (batch->facts[0].outcome, INGEST_ACCEPTED);
    assert_int_equal (batch->facts[1].outcome, INGEST_REJECTED);
    assert_string_equal (batch->facts[1].rejection.code, "before_delivery");
    assert_int_equal (batch->facts[2].outcome, INGEST_ACCEPTED);
    PGconn *conn = batch->conn;
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM ratings WHERE delivery_id "
                                              "= 'D-PAIR'"),
                      1);
    //  Events in the order facts were stored: the delivery first.
    char *types = hcp_test_sql_text (conn,
                                     "SELECT string_agg(type, ',' ORDER BY id) FROM events");
    assert_string_equal (types, "delivery.stored,rating.stored");
    free (types);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM rater_pii WHERE fact_kind = "
                                        "'delivery' AND id_number = '110101199001011234'"),
                      1);
    //  Store the rejection as ingest does: its own statement.
    batch->facts[1].raw = (const uint8_t *) "raw bytes";
    batch->facts[1].raw_size = 9;
    snprintf (batch->facts[1].peer, sizeof batch->facts[1].peer, "00aabbcc");
    assert_int_equal (ingest_store_record_rejections (batch->store, batch->list, batch->count),
                      0);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM rejected_submissions WHERE "
                                        "fact_id = '%s' AND code = 'before_delivery' AND "
                                        "peer = '00aabbcc' AND excerpt = 'raw bytes'",
                                        early_id),
                      1);
    s_batch_clear (batch);

    //  The whole batch again (an adapter's retry after a lost ack): every
    //  fact a duplicate, nothing written.
    s_batch_add (batch, &rating, NULL);
    s_batch_add (batch, NULL, &delivery);
    s_batch_commit (batch);
    assert_int_equal (batch->facts[0].outcome, INGEST_DUPLICATE);
    assert_int_equal (batch->facts[1].outcome, INGEST_DUPLICATE);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM events"), 2);
    s_batch_destroy (&batch);
}

//  A connection lost in the middle: the commit reports -1, leaves the facts
//  pending, and after a reconnect the same batch stores them once.
static void
test_connection_lost_then_retried (void **state)
{
    (void) state;
    test_rating_t valid;
    s_test_rating (&valid);
    batch_t *batch = s_batch_new ("ingest_batch_lost");
    s_batch_add (batch, &valid.rating, NULL);
    hcp_test_sql_exec (batch->conn,
                       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND application_name = 'test'");
    hcp_test_sleep_ms (100);
    assert_int_equal (ingest_store_commit (batch->store, batch->list, batch->count), -1);
    assert_int_equal (batch->facts[0].outcome, INGEST_PENDING);
    assert_true (hcp_db_lost (batch->db));
    assert_int_equal (hcp_db_ensure (batch->db, 10000, NULL), 0);
    s_batch_commit (batch);
    assert_int_equal (batch->facts[0].outcome, INGEST_ACCEPTED);
    assert_int_equal (hcp_test_sql_int (batch->conn, "SELECT count(*) FROM ratings"), 1);
    s_batch_destroy (&batch);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_resend_is_duplicate),
        cmocka_unit_test (test_burst_of_copies),
        cmocka_unit_test (test_two_copies_in_one_batch),
        cmocka_unit_test (test_delivery_and_rating_in_one_batch),
        cmocka_unit_test (test_connection_lost_then_retried),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
