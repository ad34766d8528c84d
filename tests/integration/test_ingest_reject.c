/*  Integration: every kind of bad input gets its rejection — the right
    field and code in the reply, a row in rejected_submissions — and a valid
    rating sent right after it is accepted: ingest keeps serving. Real
    hcp-ingest on an ipc:// endpoint, real PostgreSQL.
*/
#include "test_ingest_support.h"

static ingest_t *s_ingest;
static zsock_t *s_socket;

static int
s_setup (void **state)
{
    (void) state;
    //  An item withdrawn from the catalog before ingest starts.
    s_ingest = s_ingest_start ("ingest_reject", NULL);
    hcp_test_sql_exec (s_ingest->conn,
                       "UPDATE service_items SET active = false WHERE item_code = '%s'",
                       S_ITEM2);
    s_ingest_stop (s_ingest);
    s_ingest_spawn (s_ingest);
    s_socket = s_dealer (s_ingest);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    zsock_destroy (&s_socket);
    s_ingest_destroy (&s_ingest);
    return 0;
}

//  A valid rating is accepted and stored.
static void
s_valid_rating_accepted (void)
{
    test_rating_t valid;
    Hcp__V1__SubmitReply *reply = s_call (s_socket, s_encode (s_test_rating (&valid), NULL));
    assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_ACCEPTED);
    assert_string_equal (reply->id, valid.id);
    hcp__v1__submit_reply__free_unpacked (reply, NULL);
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT count(*) FROM ratings WHERE rating_id = '%s'",
                                        valid.id),
                      1);
}

//  Sends frame, expects REJECTED with field and code, a new row in
//  rejected_submissions saying the same, then a valid rating accepted.
static void
s_expect_rejected (zframe_t *frame, const char *field, const char *code)
{
    long long before = hcp_test_sql_int (s_ingest->conn,
                                         "SELECT count(*) FROM rejected_submissions "
                                         "WHERE field = '%s' AND code = '%s'",
                                         field, code);
    size_t size = zframe_size (frame);
    Hcp__V1__SubmitReply *reply = s_call (s_socket, frame);
    if (reply->status != HCP__V1__ACK_STATUS__ACK_REJECTED || strcmp (reply->field, field)
        || strcmp (reply->code, code))
        fail_msg ("expected rejected %s/%s, got status %d %s/%s: %s", field, code,
                  reply->status, reply->field, reply->code, reply->reason);
    assert_true (strlen (reply->reason) > 10);
    hcp__v1__submit_reply__free_unpacked (reply, NULL);
    //  Recorded before the reply was sent.
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT count(*) FROM rejected_submissions "
                                        "WHERE field = '%s' AND code = '%s'",
                                        field, code),
                      before + 1);
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT size_bytes FROM rejected_submissions "
                                        "ORDER BY id DESC LIMIT 1"),
                      (long long) size);
    assert_true (hcp_test_sql_int (s_ingest->conn,
                                   "SELECT length(excerpt) FROM rejected_submissions "
                                   "ORDER BY id DESC LIMIT 1")
                 <= 1024);
    s_valid_rating_accepted ();
}

//  The rating a test spoils: s_fresh makes it valid again, the test changes
//  one field, s_spoilt_rejected sends it and expects the rejection.
static test_rating_t s_spoilt;

static Hcp__V1__Rating *
s_fresh (void)
{
    return s_test_rating (&s_spoilt);
}

static void
s_spoilt_rejected (const char *field, const char *code)
{
    s_expect_rejected (s_encode (&s_spoilt.rating, NULL), field, code);
}

//  Sends s_spoilt (after a test changed it) and expects it accepted.
static void
s_spoilt_accepted (void)
{
    s_call_accepted (s_socket, s_encode (&s_spoilt.rating, NULL));
}

//  --------------------------------------------------------------------------
//  The message itself

static void
test_too_large (void **state)
{
    (void) state;
    char *comment = malloc (70 * 1024 + 1);
    memset (comment, 'x', 70 * 1024);
    comment[70 * 1024] = 0;
    s_fresh ()->comment = comment;
    zframe_t *frame = s_encode (&s_spoilt.rating, NULL);
    free (comment);
    //  The reply names the id, so the adapter can tell which one it was.
    assert_int_equal (zframe_send (&frame, s_socket, 0), 0);
    Hcp__V1__SubmitReply *reply = s_reply (s_socket);
    assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_REJECTED);
    assert_string_equal (reply->field, "message");
    assert_string_equal (reply->code, "too_large");
    assert_string_equal (reply->id, s_spoilt.id);
    hcp__v1__submit_reply__free_unpacked (reply, NULL);
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT count(*) FROM rejected_submissions WHERE "
                                        "code = 'too_large' AND length(excerpt) = 1024"),
                      1);
    s_valid_rating_accepted ();
}

static void
test_undecodable (void **state)
{
    (void) state;
    static const char garbage[] = "\xff\xff\xff\xff\x0f not protobuf";
    s_expect_rejected (zframe_new (garbage, sizeof garbage - 1), "message", "undecodable");
    //  Truncated in the middle of a field.
    zframe_t *whole = s_encode (s_fresh (), NULL);
    zframe_t *cut = zframe_new (zframe_data (whole), zframe_size (whole) - 3);
    zframe_destroy (&whole);
    s_expect_rejected (cut, "message", "undecodable");
}

static void
test_several_frames (void **state)
{
    (void) state;
    zmsg_t *message = zmsg_new ();
    zmsg_addstr (message, "one");
    zmsg_addstr (message, "two");
    assert_int_equal (zmsg_send (&message, s_socket), 0);
    Hcp__V1__SubmitReply *reply = s_reply (s_socket);
    assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_REJECTED);
    assert_string_equal (reply->code, "undecodable");
    hcp__v1__submit_reply__free_unpacked (reply, NULL);
    s_valid_rating_accepted ();
}

static void
test_no_fact (void **state)
{
    (void) state;
    s_expect_rejected (zframe_new ("", 0), "submit", "no_fact");
}

//  --------------------------------------------------------------------------
//  Ids

static void
test_ids (void **state)
{
    (void) state;
    s_fresh ()->rating_id = (char *) "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0"; //  one digit short
    s_spoilt_rejected ("rating.rating_id", "not_uuid");
    s_fresh ()->rating_id = (char *) "";
    s_spoilt_rejected ("rating.rating_id", "missing");
    s_fresh ()->delivery_id = (char *) "D 1";
    s_spoilt_rejected ("rating.delivery_id", "not_printable_ascii");
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater rater;
    char long_id[80];
    memset (long_id, 'A', 65);
    long_id[65] = 0;
    s_delivery (&delivery, &rater, long_id);
    s_expect_rejected (s_encode (NULL, &delivery), "delivery.delivery_id", "too_long");
    s_delivery (&delivery, &rater, "");
    s_expect_rejected (s_encode (NULL, &delivery), "delivery.delivery_id", "missing");
    s_delivery (&delivery, &rater, "D-\xe5\x8a\x9e");
    s_expect_rejected (s_encode (NULL, &delivery), "delivery.delivery_id",
                       "not_printable_ascii");
}

//  --------------------------------------------------------------------------
//  Catalog

static void
test_catalog (void **state)
{
    (void) state;
    s_fresh ()->item_code = (char *) "NO-SUCH-ITEM";
    s_spoilt_rejected ("rating.item_code", "unknown_item");
    s_fresh ()->item_code = (char *) S_ITEM2;
    s_spoilt_rejected ("rating.item_code", "inactive_item");
}

//  An item added after ingest started is found once the cache is refreshed
//  on a miss (at most every 5 s).
static void
test_new_item_found_after_refresh (void **state)
{
    (void) state;
    hcp_test_sql_exec (s_ingest->conn,
                       "INSERT INTO service_items (item_code, name, unit_code) "
                       "SELECT 'NEW-ITEM-1', 'new', unit_code FROM service_items LIMIT 1");
    int64_t deadline = hcp_test_now_ms () + 20000;
    int status = 0;
    while (hcp_test_now_ms () < deadline) {
        s_fresh ()->item_code = (char *) "NEW-ITEM-1";
        Hcp__V1__SubmitReply *reply = s_call (s_socket, s_encode (&s_spoilt.rating, NULL));
        status = reply->status;
        hcp__v1__submit_reply__free_unpacked (reply, NULL);
        if (status == HCP__V1__ACK_STATUS__ACK_ACCEPTED)
            break;
        hcp_test_sleep_ms (500);
    }
    assert_int_equal (status, HCP__V1__ACK_STATUS__ACK_ACCEPTED);
}

//  --------------------------------------------------------------------------
//  Enums and numbers

static void
test_enums_and_numbers (void **state)
{
    (void) state;
    s_fresh ()->channel = (Hcp__V1__Channel) 99;
    s_spoilt_rejected ("rating.channel", "out_of_range");
    s_fresh ()->channel = HCP__V1__CHANNEL__CHANNEL_UNSPECIFIED;
    s_spoilt_rejected ("rating.channel", "missing");
    s_fresh ()->stage = (Hcp__V1__Stage) 4;
    s_spoilt_rejected ("rating.stage", "out_of_range");
    s_fresh ()->accuracy = (Hcp__V1__Grade) 7;
    s_spoilt_rejected ("rating.accuracy", "out_of_range");
    s_fresh ()->convenience = (Hcp__V1__Grade) -1;
    s_spoilt_rejected ("rating.convenience", "out_of_range");
    s_fresh ()->rater->type = (Hcp__V1__RaterType) 9;
    s_spoilt_rejected ("rating.rater.type", "out_of_range");
    s_fresh ()->rating_count = 3;
    s_spoilt_rejected ("rating.rating_count", "out_of_range");
    s_fresh ()->rating_count = 0;
    s_spoilt_rejected ("rating.rating_count", "out_of_range");
    Hcp__V1__Rating *none = s_fresh ();
    none->standardization = none->convenience = none->accuracy = HCP__V1__GRADE__GRADE_UNRATED;
    s_spoilt_rejected ("rating", "no_dimension_rated");
}

//  One dimension rated is enough; the others are stored as unrated.
static void
test_partial_dimensions_stored_as_unrated (void **state)
{
    (void) state;
    Hcp__V1__Rating *rating = s_fresh ();
    rating->standardization = HCP__V1__GRADE__GRADE_UNRATED;
    rating->accuracy = HCP__V1__GRADE__GRADE_UNRATED;
    rating->convenience = HCP__V1__GRADE__GRADE_VERY_DISSATISFIED;
    s_spoilt_accepted ();
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT count(*) FROM ratings WHERE rating_id = '%s' "
                                        "AND standardization IS NULL AND accuracy IS NULL "
                                        "AND convenience = 5 AND is_bad",
                                        s_spoilt.id),
                      1);
}

//  --------------------------------------------------------------------------
//  Times

static void
test_times (void **state)
{
    (void) state;
    s_fresh ()->rated_at_ms = 0;
    s_spoilt_rejected ("rating.rated_at_ms", "missing");
    s_fresh ()->rated_at_ms = hcp_clock_now_ms () + 3600 * 1000;
    s_spoilt_rejected ("rating.rated_at_ms", "in_future");
    //  Within the skew (300 s): accepted.
    s_fresh ()->rated_at_ms = hcp_clock_now_ms () + 60 * 1000;
    s_spoilt_accepted ();
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater rater;
    s_delivery (&delivery, &rater, "D-FUTURE");
    delivery.delivered_at_ms = hcp_clock_now_ms () + 86400 * 1000;
    s_expect_rejected (s_encode (NULL, &delivery), "delivery.delivered_at_ms", "in_future");
}

static void
test_rating_and_its_delivery (void **state)
{
    (void) state;
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater delivery_rater;
    s_delivery (&delivery, &delivery_rater, "D-REJECT-1");
    s_call_accepted (s_socket, s_encode (NULL, &delivery));

    //  Rated before it was delivered.
    Hcp__V1__Rating *rating = s_fresh ();
    rating->delivery_id = (char *) "D-REJECT-1";
    rating->rated_at_ms = delivery.delivered_at_ms - 1;
    s_spoilt_rejected ("rating.rated_at_ms", "before_delivery");
    //  A delivery never received: submit the delivery first.
    s_fresh ()->delivery_id = (char *) "D-NEVER-SENT";
    s_spoilt_rejected ("rating.delivery_id", "unknown_delivery");
    //  Another item than the delivery's.
    rating = s_fresh ();
    rating->delivery_id = (char *) "D-REJECT-1";
    rating->item_code = (char *) "000119003000";
    s_spoilt_rejected ("rating.item_code", "item_mismatch");
    //  At the very moment of delivery: fine.
    rating = s_fresh ();
    rating->delivery_id = (char *) "D-REJECT-1";
    rating->rated_at_ms = delivery.delivered_at_ms;
    s_spoilt_accepted ();
}

//  --------------------------------------------------------------------------
//  Text

static char s_text[8000];

//  s_text holding chars times the three-byte character 评.
static char *
s_comment_of (int chars)
{
    for (int i = 0; i < chars; i++)
        memcpy (s_text + 3 * i, "评", 3);
    s_text[3 * chars] = 0;
    return s_text;
}

static void
test_text (void **state)
{
    (void) state;
    s_fresh ()->comment = s_comment_of (2001);
    s_spoilt_rejected ("rating.comment", "too_long");
    s_fresh ()->comment = (char *) "good start \xe8\xaf then broken";
    s_spoilt_rejected ("rating.comment", "invalid_utf8");
    s_fresh ()->rater->name = (char *) "\xc0\xaf overlong slash";
    s_spoilt_rejected ("rating.rater.name", "invalid_utf8");
    memset (s_text, 'k', 300);
    s_text[300] = 0;
    s_fresh ()->rater->key = s_text;
    s_spoilt_rejected ("rating.rater.key", "too_long");
    //  2000 characters is the limit, not over it.
    s_fresh ()->comment = s_comment_of (2000);
    s_spoilt_accepted ();
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT char_length(comment) FROM ratings "
                                        "WHERE rating_id = '%s'",
                                        s_spoilt.id),
                      2000);
}

//  A NUL byte inside a string would silently cut a C string: it must be
//  refused on the wire. Built by hand: the comment field (12) of a rating.
static void
test_nul_byte (void **state)
{
    (void) state;
    Hcp__V1__Rating *rating = s_fresh ();
    rating->comment = (char *) "";
    size_t size = hcp__v1__rating__get_packed_size (rating);
    uint8_t buffer[1024];
    hcp__v1__rating__pack (rating, buffer + 3);
    static const uint8_t comment[] = {0x62, 8, 'a', 'b', 'c', 0, 'D', 'R', 'O', 'P'};
    memcpy (buffer + 3 + size, comment, sizeof comment);
    size += sizeof comment;
    //  Submit field 2 (rating), length-delimited, with a two-byte length.
    buffer[0] = 0x12;
    buffer[1] = (uint8_t) (0x80 | (size & 0x7f));
    buffer[2] = (uint8_t) (size >> 7);
    s_expect_rejected (zframe_new (buffer, size + 3), "rating.comment", "invalid_utf8");
}

static void
test_rater (void **state)
{
    (void) state;
    s_fresh ()->rater->type = HCP__V1__RATER_TYPE__RATER_TYPE_UNSPECIFIED;
    s_spoilt_rejected ("rating.rater.type", "missing");
    s_fresh ()->rater = NULL;
    s_spoilt_rejected ("rating.rater.type", "missing");
}

//  The same id with other content: a conflict, not a duplicate.
static void
test_conflict (void **state)
{
    (void) state;
    s_fresh ();
    s_spoilt_accepted ();
    s_spoilt.rating.accuracy = HCP__V1__GRADE__GRADE_VERY_DISSATISFIED;
    s_spoilt_rejected ("rating.rating_id", "conflict");
    //  The stored rating is the first one.
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT accuracy FROM ratings WHERE rating_id = '%s'",
                                        s_spoilt.id),
                      3);
}

//  SQL in a field is data: stored verbatim, nothing executed.
static void
test_sql_text_is_data (void **state)
{
    (void) state;
    static const char *evil = "x'); DROP TABLE ratings; --\\\" $1 \\x00";
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater delivery_rater;
    s_delivery (&delivery, &delivery_rater, "D-';DROP-TABLE-ratings;--");
    delivery_rater.name = (char *) evil;
    s_call_accepted (s_socket, s_encode (NULL, &delivery));
    Hcp__V1__Rating *rating = s_fresh ();
    rating->comment = (char *) evil;
    rating->delivery_id = (char *) "D-';DROP-TABLE-ratings;--";
    rating->rater->key = (char *) evil;
    s_spoilt_accepted ();
    char *stored = hcp_test_sql_text (s_ingest->conn,
                                      "SELECT comment || '|' || rater_key FROM ratings "
                                      "WHERE rating_id = '%s'",
                                      s_spoilt.id);
    char expected[200];
    snprintf (expected, sizeof expected, "%s|%s", evil, evil);
    assert_string_equal (stored, expected);
    free (stored);
    assert_true (hcp_test_sql_int (s_ingest->conn, "SELECT count(*) FROM ratings") > 0);
}

//  A REQ client sends an empty delimiter frame first: it gets its reply.
static void
test_req_client (void **state)
{
    (void) state;
    zsock_t *req = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (req, 20000);
    zsock_set_linger (req, 0);
    assert_int_equal (zsock_connect (req, "%s", s_ingest->endpoint), 0);
    Hcp__V1__SubmitReply *reply = s_call (req, s_encode (s_fresh (), NULL));
    assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_ACCEPTED);
    assert_string_equal (reply->id, s_spoilt.id);
    hcp__v1__submit_reply__free_unpacked (reply, NULL);
    zsock_destroy (&req);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_too_large),
        cmocka_unit_test (test_undecodable),
        cmocka_unit_test (test_several_frames),
        cmocka_unit_test (test_no_fact),
        cmocka_unit_test (test_ids),
        cmocka_unit_test (test_catalog),
        cmocka_unit_test (test_enums_and_numbers),
        cmocka_unit_test (test_partial_dimensions_stored_as_unrated),
        cmocka_unit_test (test_times),
        cmocka_unit_test (test_rating_and_its_delivery),
        cmocka_unit_test (test_text),
        cmocka_unit_test (test_nul_byte),
        cmocka_unit_test (test_rater),
        cmocka_unit_test (test_conflict),
        cmocka_unit_test (test_sql_text_is_data),
        cmocka_unit_test (test_req_client),
        cmocka_unit_test (test_new_item_found_after_refresh),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
