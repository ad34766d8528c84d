/*  Unit tests: the wire contract (proto/hcp/v1) round trips through
    protobuf-c, unknown enum numbers survive decoding (so validation must
    check them), truncated bytes never crash the decoder; ingest's canonical
    encoding (the fingerprint input) and its binary array parameters. */
#include "hcp/v1/event.pb-c.h"
#include "hcp/v1/ingest.pb-c.h"
#include "../../services/ingest/ingest_array.h"
#include "../../services/ingest/ingest_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint8_t *
s_pack (const ProtobufCMessage *message, size_t *size)
{
    *size = protobuf_c_message_get_packed_size (message);
    uint8_t *bytes = malloc (*size + 1);
    assert_int_equal (protobuf_c_message_pack (message, bytes), *size);
    return bytes;
}

static void
s_full_rating (Hcp__V1__Rating *rating, Hcp__V1__Rater *rater)
{
    static const Hcp__V1__Rating rating_init = HCP__V1__RATING__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    *rating = rating_init;
    *rater = rater_init;
    rater->type = HCP__V1__RATER_TYPE__RATER_ENTERPRISE;
    rater->key = (char *) "acct-42";
    rater->name = (char *) "某某科技有限公司";
    rater->phone = (char *) "010-12345678";
    rater->id_number = (char *) "91110000100000000X";
    rater->division_code = (char *) "110102";
    rating->rating_id = (char *) "0195F3C2-7A1B-7C3D-8E4F-5A6B7C8D9E0F";
    rating->delivery_id = (char *) "BJ-2026-1";
    rating->item_code = (char *) "000119001000";
    rating->channel = HCP__V1__CHANNEL__CHANNEL_MOBILE_APP;
    rating->stage = HCP__V1__STAGE__STAGE_COMPLETION;
    rating->rating_count = 2;
    rating->rater = rater;
    rating->rated_at_ms = 1767225600123LL;
    rating->standardization = HCP__V1__GRADE__GRADE_VERY_SATISFIED;
    rating->convenience = HCP__V1__GRADE__GRADE_DISSATISFIED;
    rating->accuracy = HCP__V1__GRADE__GRADE_UNRATED;
    rating->comment = (char *) "材料一次性告知，但等候太久";
}

//  Packs a Submit holding rating (or delivery when rating is NULL).
static uint8_t *
s_pack_submit (Hcp__V1__Rating *rating, Hcp__V1__Delivery *delivery, size_t *size)
{
    Hcp__V1__Submit submit = HCP__V1__SUBMIT__INIT;
    if (rating) {
        submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
        submit.rating = rating;
    }
    else {
        submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
        submit.delivery = delivery;
    }
    return s_pack (&submit.base, size);
}

//  A delivery with only its id, item and rater (of type) set.
static void
s_bare_delivery (Hcp__V1__Delivery *delivery, Hcp__V1__Rater *rater, const char *id,
                 const char *item_code, Hcp__V1__RaterType type)
{
    *rater = (Hcp__V1__Rater) HCP__V1__RATER__INIT;
    rater->type = type;
    *delivery = (Hcp__V1__Delivery) HCP__V1__DELIVERY__INIT;
    delivery->delivery_id = (char *) id;
    delivery->item_code = (char *) item_code;
    delivery->rater = rater;
}

//  The rating tests' fixture (cmocka state): s_full_rating packed in a
//  Submit by the setup, freed by the teardown.
typedef struct {
    Hcp__V1__Rating rating;
    Hcp__V1__Rater rater;
    uint8_t *bytes; //  the packed Submit
    size_t size;
} packed_t;

static int
s_packed_setup (void **state)
{
    packed_t *self = calloc (1, sizeof *self);
    s_full_rating (&self->rating, &self->rater);
    self->bytes = s_pack_submit (&self->rating, NULL, &self->size);
    *state = self;
    return 0;
}

static int
s_packed_teardown (void **state)
{
    packed_t *self = *state;
    free (self->bytes);
    free (self);
    return 0;
}

//  Packs the fixture's rating again, after a test changed it.
static void
s_repack (packed_t *self)
{
    free (self->bytes);
    self->bytes = s_pack_submit (&self->rating, NULL, &self->size);
}

static void
test_rating_round_trip (void **state)
{
    packed_t *full = *state;
    Hcp__V1__Submit *decoded = hcp__v1__submit__unpack (NULL, full->size, full->bytes);
    assert_non_null (decoded);
    assert_int_equal (decoded->fact_case, HCP__V1__SUBMIT__FACT_RATING);
    Hcp__V1__Rating *r = decoded->rating;
    assert_string_equal (r->rating_id, full->rating.rating_id);
    assert_string_equal (r->delivery_id, "BJ-2026-1");
    assert_string_equal (r->item_code, "000119001000");
    assert_int_equal (r->channel, HCP__V1__CHANNEL__CHANNEL_MOBILE_APP);
    assert_int_equal (r->stage, HCP__V1__STAGE__STAGE_COMPLETION);
    assert_int_equal (r->rating_count, 2);
    assert_int_equal (r->rated_at_ms, 1767225600123LL);
    assert_int_equal (r->standardization, 1);
    assert_int_equal (r->convenience, 4);
    assert_int_equal (r->accuracy, 0); //  unrated stays unrated
    assert_string_equal (r->comment, full->rating.comment);
    assert_int_equal (r->rater->type, HCP__V1__RATER_TYPE__RATER_ENTERPRISE);
    assert_string_equal (r->rater->name, "某某科技有限公司");
    assert_string_equal (r->rater->id_number, "91110000100000000X");
    assert_string_equal (r->rater->division_code, "110102");
    //  Encoding again gives the same bytes: the encoding is deterministic.
    size_t again_size;
    uint8_t *again = s_pack (&decoded->base, &again_size);
    assert_int_equal (again_size, full->size);
    assert_memory_equal (again, full->bytes, full->size);
    free (again);
    hcp__v1__submit__free_unpacked (decoded, NULL);
}

static void
test_delivery_and_reply_round_trip (void **state)
{
    (void) state;
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater rater;
    s_bare_delivery (&delivery, &rater, "D-1", "000119002000",
                     HCP__V1__RATER_TYPE__RATER_OTHER);
    delivery.stage = HCP__V1__STAGE__STAGE_CONSULTATION;
    delivery.channel = HCP__V1__CHANNEL__CHANNEL_HOTLINE;
    delivery.delivered_at_ms = 1;
    size_t size;
    uint8_t *bytes = s_pack_submit (NULL, &delivery, &size);
    Hcp__V1__Submit *decoded = hcp__v1__submit__unpack (NULL, size, bytes);
    assert_non_null (decoded);
    assert_int_equal (decoded->fact_case, HCP__V1__SUBMIT__FACT_DELIVERY);
    assert_string_equal (decoded->delivery->delivery_id, "D-1");
    assert_int_equal (decoded->delivery->channel, HCP__V1__CHANNEL__CHANNEL_HOTLINE);
    assert_int_equal (decoded->delivery->delivered_at_ms, 1);
    hcp__v1__submit__free_unpacked (decoded, NULL);
    free (bytes);

    Hcp__V1__SubmitReply reply = HCP__V1__SUBMIT_REPLY__INIT;
    reply.id = (char *) "D-1";
    reply.status = HCP__V1__ACK_STATUS__ACK_REJECTED;
    reply.field = (char *) "delivery.item_code";
    reply.code = (char *) "unknown_item";
    reply.reason = (char *) "item code '000119002000' is not in the service-item catalog";
    bytes = s_pack (&reply.base, &size);
    Hcp__V1__SubmitReply *back = hcp__v1__submit_reply__unpack (NULL, size, bytes);
    assert_non_null (back);
    assert_int_equal (back->status, HCP__V1__ACK_STATUS__ACK_REJECTED);
    assert_string_equal (back->field, "delivery.item_code");
    assert_string_equal (back->code, "unknown_item");
    assert_string_equal (back->reason, reply.reason);
    hcp__v1__submit_reply__free_unpacked (back, NULL);
    free (bytes);
}

static void
test_event_round_trip (void **state)
{
    (void) state;
    uint8_t payload[] = {1, 2, 3, 0, 255};
    Hcp__V1__Event event = HCP__V1__EVENT__INIT;
    event.seq = 18446744073709551000ULL;
    event.type = (char *) "rating.stored";
    event.key = (char *) "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f";
    event.at_ms = 1767225600000LL;
    event.payload.data = payload;
    event.payload.len = sizeof payload;
    size_t size;
    uint8_t *bytes = s_pack (&event.base, &size);
    Hcp__V1__Event *back = hcp__v1__event__unpack (NULL, size, bytes);
    assert_non_null (back);
    assert_true (back->seq == event.seq);
    assert_string_equal (back->type, "rating.stored");
    assert_int_equal (back->payload.len, sizeof payload);
    assert_memory_equal (back->payload.data, payload, sizeof payload);
    hcp__v1__event__free_unpacked (back, NULL);
    free (bytes);
    Hcp__V1__Heartbeat heartbeat = HCP__V1__HEARTBEAT__INIT;
    heartbeat.last_seq = 42;
    heartbeat.at_ms = 7;
    bytes = s_pack (&heartbeat.base, &size);
    Hcp__V1__Heartbeat *beat = hcp__v1__heartbeat__unpack (NULL, size, bytes);
    assert_non_null (beat);
    assert_int_equal (beat->last_seq, 42);
    assert_int_equal (beat->at_ms, 7);
    hcp__v1__heartbeat__free_unpacked (beat, NULL);
    free (bytes);
}

//  Enum numbers the contract does not define decode as they are: the
//  decoder does not check them, so hcp_validate must.
static void
test_unknown_enum_values_survive (void **state)
{
    (void) state;
    Hcp__V1__Rating rating;
    Hcp__V1__Rater rater;
    s_full_rating (&rating, &rater);
    rating.channel = (Hcp__V1__Channel) 42;
    rating.stage = (Hcp__V1__Stage) -7;
    rating.accuracy = (Hcp__V1__Grade) 9;
    rater.type = (Hcp__V1__RaterType) 1000;
    size_t size;
    uint8_t *bytes = s_pack (&rating.base, &size);
    Hcp__V1__Rating *back = hcp__v1__rating__unpack (NULL, size, bytes);
    assert_non_null (back);
    assert_int_equal (back->channel, 42);
    assert_true ((int) back->stage == -7);
    assert_int_equal (back->accuracy, 9);
    assert_int_equal (back->rater->type, 1000);
    hcp__v1__rating__free_unpacked (back, NULL);
    free (bytes);
}

//  Every prefix of a valid message either decodes (cut between fields) or
//  is refused: never a crash or an overread (the ASan build checks).
static void
test_truncated_bytes (void **state)
{
    packed_t *full = *state;
    int refused = 0;
    for (size_t cut = 1; cut < full->size; cut++) {
        //  A copy of exactly cut bytes, so ASan sees any read beyond it.
        uint8_t *prefix = malloc (cut);
        memcpy (prefix, full->bytes, cut);
        Hcp__V1__Submit *decoded = hcp__v1__submit__unpack (NULL, cut, prefix);
        if (decoded)
            hcp__v1__submit__free_unpacked (decoded, NULL);
        else
            refused++;
        free (prefix);
    }
    //  The rating is one length-delimited field of the Submit: every cut
    //  lands inside it.
    assert_int_equal (refused, (int) full->size - 1);
}

//  --------------------------------------------------------------------------
//  Canonical encoding (ingest_fact_prepare)

static ingest_fact_t
s_prepared (const uint8_t *bytes, size_t size)
{
    ingest_fact_t fact;
    memset (&fact, 0, sizeof fact);
    fact.submit = hcp__v1__submit__unpack (NULL, size, bytes);
    assert_non_null (fact.submit);
    assert_int_equal (ingest_fact_prepare (&fact), 0);
    return fact;
}

static void
test_canonical_encoding (void **state)
{
    packed_t *full = *state;
    Hcp__V1__Rating *rating = &full->rating;
    ingest_fact_t a = s_prepared (full->bytes, full->size);
    assert_int_equal (a.kind, HCP__V1__SUBMIT__FACT_RATING);
    //  The id in lower case: the same UUID in either case is one fact.
    assert_string_equal (a.key, "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
    Hcp__V1__Rating *canonical = hcp__v1__rating__unpack (NULL, a.canonical_size, a.canonical);
    assert_string_equal (canonical->rating_id, a.key);
    assert_string_equal (canonical->rater->name, "某某科技有限公司");
    hcp__v1__rating__free_unpacked (canonical, NULL);
    //  The payload (events) carries no personal data, and the rest.
    Hcp__V1__Rating *payload = hcp__v1__rating__unpack (NULL, a.payload_size, a.payload);
    assert_string_equal (payload->rater->name, "");
    assert_string_equal (payload->rater->phone, "");
    assert_string_equal (payload->rater->id_number, "");
    assert_string_equal (payload->rater->key, "acct-42");
    assert_string_equal (payload->comment, rating->comment);
    assert_int_equal (payload->convenience, 4);
    hcp__v1__rating__free_unpacked (payload, NULL);

    //  Same content with the id in lower case and an unknown field added
    //  (a newer adapter): the same canonical bytes, hence a duplicate. A
    //  small rating, so that its length fits one byte.
    rating->comment = (char *) "";
    rating->delivery_id = (char *) "";
    rating->rater->name = rating->rater->phone = rating->rater->id_number = (char *) "";
    s_repack (full);
    ingest_fact_clear (&a);
    a = s_prepared (full->bytes, full->size);
    rating->rating_id = (char *) "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f";
    s_repack (full);
    assert_true (full->size < 120);
    uint8_t *extended = malloc (full->size + 3);
    memcpy (extended, full->bytes, full->size);
    extended[1] = (uint8_t) (extended[1] + 3); //  the rating's length
    extended[full->size] = 0x98;               //  field 99, varint 1
    extended[full->size + 1] = 0x06;
    extended[full->size + 2] = 0x01;
    ingest_fact_t b = s_prepared (extended, full->size + 3);
    assert_int_equal (b.canonical_size, a.canonical_size);
    assert_memory_equal (b.canonical, a.canonical, a.canonical_size);
    //  Other content: other canonical bytes.
    rating->accuracy = HCP__V1__GRADE__GRADE_SATISFIED;
    s_repack (full);
    ingest_fact_t c = s_prepared (full->bytes, full->size);
    assert_false (c.canonical_size == a.canonical_size
                  && !memcmp (c.canonical, a.canonical, a.canonical_size));
    ingest_fact_clear (&a);
    ingest_fact_clear (&b);
    ingest_fact_clear (&c);
    assert_null (a.submit);
    free (extended);
}

static void
test_canonical_without_pii_shares_payload (void **state)
{
    (void) state;
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater rater;
    s_bare_delivery (&delivery, &rater, "D-Upper-Case-Kept", "000119001000",
                     HCP__V1__RATER_TYPE__RATER_NATURAL_PERSON);
    size_t size;
    uint8_t *bytes = s_pack_submit (NULL, &delivery, &size);
    ingest_fact_t fact = s_prepared (bytes, size);
    assert_int_equal (fact.kind, HCP__V1__SUBMIT__FACT_DELIVERY);
    assert_string_equal (fact.key,
                         "D-Upper-Case-Kept"); //  delivery ids are case-sensitive
    assert_ptr_equal (fact.payload, fact.canonical);
    assert_string_equal (ingest_fact_id (&fact), "D-Upper-Case-Kept");
    ingest_fact_clear (&fact);
    free (bytes);
}

//  --------------------------------------------------------------------------
//  Binary array parameters (PostgreSQL array_recv layout)

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void
test_binary_arrays (void **state)
{
    (void) state;
    ingest_array_t array;
    ingest_array_init (&array, INGEST_OID_TEXT);
    int length;
    const uint8_t *p = (const uint8_t *) ingest_array_finish (&array, &length);
    assert_int_equal (length, 12); //  empty: no dimension
    assert_int_equal (s_get32 (p), 0);
    assert_int_equal (s_get32 (p + 8), INGEST_OID_TEXT);
    ingest_array_add_text (&array, "ab", 0);
    ingest_array_add_text (&array, "", 1); //  NULL
    ingest_array_add_text (&array, "", 0); //  empty string
    p = (const uint8_t *) ingest_array_finish (&array, &length);
    assert_int_equal (length, 20 + (4 + 2) + 4 + 4);
    assert_int_equal (s_get32 (p), 1);      //  one dimension
    assert_int_equal (s_get32 (p + 4), 1);  //  has a NULL
    assert_int_equal (s_get32 (p + 12), 3); //  three elements
    assert_int_equal (s_get32 (p + 16), 1); //  lower bound 1
    assert_int_equal (s_get32 (p + 20), 2);
    assert_memory_equal (p + 24, "ab", 2);
    assert_int_equal (s_get32 (p + 26), 0xffffffffu);
    assert_int_equal (s_get32 (p + 30), 0);
    ingest_array_reset (&array);
    ingest_array_finish (&array, &length);
    assert_int_equal (length, 12);
    ingest_array_free (&array);

    ingest_array_init (&array, INGEST_OID_UUID);
    assert_int_equal (ingest_array_add_uuid (&array, "0195F3C2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"),
                      0);
    assert_int_equal (ingest_array_add_uuid (&array, "0195f3c2-7a1b"), -1);
    p = (const uint8_t *) ingest_array_finish (&array, &length);
    assert_int_equal (length, 20 + 4 + 16);
    assert_int_equal (p[24], 0x01);
    assert_int_equal (p[25], 0x95);
    assert_int_equal (p[39], 0x0f);
    ingest_array_free (&array);

    //  2000-01-01T00:00:00.001Z is 1000 µs after PostgreSQL's epoch.
    ingest_array_init (&array, INGEST_OID_TIMESTAMPTZ);
    ingest_array_add_timestamptz_ms (&array, 946684800001LL);
    ingest_array_add_int8 (&array, -2);
    p = (const uint8_t *) ingest_array_finish (&array, &length);
    assert_int_equal (s_get32 (p + 24), 0);
    assert_int_equal (s_get32 (p + 28), 1000);
    assert_int_equal (s_get32 (p + 36), 0xffffffffu);
    assert_int_equal (s_get32 (p + 40), 0xfffffffeu);
    ingest_array_free (&array);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_rating_round_trip, s_packed_setup,
                                         s_packed_teardown),
        cmocka_unit_test (test_delivery_and_reply_round_trip),
        cmocka_unit_test (test_event_round_trip),
        cmocka_unit_test (test_unknown_enum_values_survive),
        cmocka_unit_test_setup_teardown (test_truncated_bytes, s_packed_setup,
                                         s_packed_teardown),
        cmocka_unit_test_setup_teardown (test_canonical_encoding, s_packed_setup,
                                         s_packed_teardown),
        cmocka_unit_test (test_canonical_without_pii_shares_payload),
        cmocka_unit_test (test_binary_arrays),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
