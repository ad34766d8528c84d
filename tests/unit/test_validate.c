/*  Unit tests: hcp_validate, one rule at a time (no database, no sockets). */
#include "hcp_validate.h"

#include "hcp_uuid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const int64_t s_now = 1767225600000LL; //  2026-01-01T08:00:00+08:00
static hcp_validate_limits_t s_limits;

static hcp_item_state_t
s_catalog (void *arg, const char *code)
{
    (void) arg;
    if (!strcmp (code, "000119001000"))
        return HCP_ITEM_ACTIVE;
    if (!strcmp (code, "OLD-ITEM"))
        return HCP_ITEM_INACTIVE;
    return HCP_ITEM_UNKNOWN;
}

typedef struct {
    Hcp__V1__Submit submit;
    Hcp__V1__Rating rating;
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater rater;
} fixture_t;

static fixture_t s_f;

//  A valid rating in s_f.
static void
s_rating (void)
{
    static const fixture_t empty = {HCP__V1__SUBMIT__INIT, HCP__V1__RATING__INIT,
                                    HCP__V1__DELIVERY__INIT, HCP__V1__RATER__INIT};
    s_f = empty;
    s_f.rater.type = HCP__V1__RATER_TYPE__RATER_NATURAL_PERSON;
    s_f.rating.rating_id = (char *) "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f";
    s_f.rating.item_code = (char *) "000119001000";
    s_f.rating.channel = HCP__V1__CHANNEL__CHANNEL_WINDOW_QR;
    s_f.rating.stage = HCP__V1__STAGE__STAGE_CONSULTATION;
    s_f.rating.rating_count = 1;
    s_f.rating.rater = &s_f.rater;
    s_f.rating.rated_at_ms = s_now - 1000;
    s_f.rating.standardization = HCP__V1__GRADE__GRADE_SATISFIED;
    s_f.rating.comment = (char *) "很好";
    s_f.submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
    s_f.submit.rating = &s_f.rating;
}

//  A valid delivery in s_f.
static void
s_delivery (void)
{
    s_rating ();
    s_f.delivery.delivery_id = (char *) "BJ-2026-000001";
    s_f.delivery.item_code = (char *) "000119001000";
    s_f.delivery.stage = HCP__V1__STAGE__STAGE_APPLICATION;
    s_f.delivery.channel = HCP__V1__CHANNEL__CHANNEL_HALL_DEVICE;
    s_f.delivery.rater = &s_f.rater;
    s_f.delivery.delivered_at_ms = s_now - 3600000;
    s_f.submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
    s_f.submit.delivery = &s_f.delivery;
}

static void
s_accepted (void)
{
    hcp_rejection_t why;
    int rc = hcp_validate_submit (&s_f.submit, &s_limits, s_now, s_catalog, NULL, &why);
    if (rc != 0)
        fail_msg ("rejected %s/%s: %s", why.field, why.code, why.reason);
}

static void
s_rejected (const char *field, const char *code)
{
    hcp_rejection_t why;
    memset (&why, 0, sizeof why);
    int rc = hcp_validate_submit (&s_f.submit, &s_limits, s_now, s_catalog, NULL, &why);
    if (rc != -1)
        fail_msg ("expected %s/%s, was accepted", field, code);
    if (strcmp (why.field, field) || strcmp (why.code, code))
        fail_msg ("expected %s/%s, got %s/%s: %s", field, code, why.field, why.code,
                  why.reason);
    assert_true (strlen (why.reason) > 0);
    assert_true (hcp_validate_utf8 (why.reason, strlen (why.reason), NULL));
}

static int
s_setup (void **state)
{
    (void) state;
    hcp_validate_limits_default (&s_limits);
    return 0;
}

//  --------------------------------------------------------------------------

static void
test_utf8 (void **state)
{
    (void) state;
    size_t chars;
    assert_true (hcp_validate_utf8 ("", 0, &chars));
    assert_int_equal (chars, 0);
    assert_true (hcp_validate_utf8 ("abc", 3, &chars));
    assert_int_equal (chars, 3);
    assert_true (hcp_validate_utf8 ("好差评", 9, &chars));
    assert_int_equal (chars, 3);
    assert_true (hcp_validate_utf8 ("\xf0\x9f\x98\x80", 4, &chars)); //  an emoji
    assert_int_equal (chars, 1);
    assert_true (hcp_validate_utf8 ("\xf4\x8f\xbf\xbf", 4, NULL));  //  U+10FFFF
    assert_false (hcp_validate_utf8 ("a\0b", 3, NULL));             //  NUL
    assert_false (hcp_validate_utf8 ("\x80", 1, NULL));             //  lone continuation
    assert_false (hcp_validate_utf8 ("\xc0\xaf", 2, NULL));         //  overlong '/'
    assert_false (hcp_validate_utf8 ("\xe0\x80\xaf", 3, NULL));     //  overlong
    assert_false (hcp_validate_utf8 ("\xf0\x80\x80\xaf", 4, NULL)); //  overlong
    assert_false (hcp_validate_utf8 ("\xed\xa0\x80", 3, NULL));     //  surrogate
    assert_false (hcp_validate_utf8 ("\xf4\x90\x80\x80", 4, NULL)); //  beyond U+10FFFF
    assert_false (hcp_validate_utf8 ("\xe5\xa5", 2, NULL));         //  cut short
    assert_false (hcp_validate_utf8 ("\xe5\x41\x41", 3, NULL));     //  bad continuation
    assert_false (hcp_validate_utf8 ("\xff", 1, NULL));
}

static void
test_id_text (void **state)
{
    (void) state;
    assert_true (hcp_validate_id_text ("BJ-2026/0001#a"));
    assert_false (hcp_validate_id_text (""));
    assert_false (hcp_validate_id_text ("has space"));
    assert_false (hcp_validate_id_text ("tab\there"));
    assert_false (hcp_validate_id_text ("办件"));
    char id[80];
    memset (id, 'a', 64);
    id[64] = 0;
    assert_true (hcp_validate_id_text (id));
    id[64] = 'a';
    id[65] = 0;
    assert_false (hcp_validate_id_text (id));
}

static void
test_valid_rating_and_delivery (void **state)
{
    (void) state;
    s_rating ();
    s_accepted ();
    s_delivery ();
    s_accepted ();
    assert_string_equal (hcp_validate_fact_id (&s_f.submit), "BJ-2026-000001");
    s_rating ();
    assert_string_equal (hcp_validate_fact_id (&s_f.submit),
                         "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
    assert_string_equal (hcp_validate_fact_id (NULL), "");
}

static void
test_no_fact (void **state)
{
    (void) state;
    s_rating ();
    s_f.submit.fact_case = HCP__V1__SUBMIT__FACT__NOT_SET;
    s_rejected ("submit", "no_fact");
    assert_string_equal (hcp_validate_fact_id (&s_f.submit), "");
}

static void
test_rating_id (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.rating_id = (char *) "";
    s_rejected ("rating.rating_id", "missing");
    s_f.rating.rating_id = (char *) "12345";
    s_rejected ("rating.rating_id", "not_uuid");
    s_f.rating.rating_id = (char *) "0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0g";
    s_rejected ("rating.rating_id", "not_uuid");
    s_f.rating.rating_id =
        (char *) "0195F3C2-7A1B-7C3D-8E4F-5A6B7C8D9E0F"; //  upper case: a UUID
    s_accepted ();
}

static void
test_delivery_id (void **state)
{
    (void) state;
    s_delivery ();
    s_f.delivery.delivery_id = (char *) "";
    s_rejected ("delivery.delivery_id", "missing");
    s_f.delivery.delivery_id = (char *) "BJ 1";
    s_rejected ("delivery.delivery_id", "not_printable_ascii");
    char id[80];
    memset (id, 'x', 65);
    id[65] = 0;
    s_f.delivery.delivery_id = id;
    s_rejected ("delivery.delivery_id", "too_long");
    //  On a rating it is optional, but well formed when present.
    s_rating ();
    s_f.rating.delivery_id = (char *) "";
    s_accepted ();
    s_f.rating.delivery_id = (char *) "a\x7f";
    s_rejected ("rating.delivery_id", "not_printable_ascii");
}

static void
test_item (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.item_code = (char *) "";
    s_rejected ("rating.item_code", "missing");
    s_f.rating.item_code = (char *) "999";
    s_rejected ("rating.item_code", "unknown_item");
    s_f.rating.item_code = (char *) "OLD-ITEM";
    s_rejected ("rating.item_code", "inactive_item");
    s_delivery ();
    s_f.delivery.item_code = (char *) "999";
    s_rejected ("delivery.item_code", "unknown_item");
    //  No catalog at all: unknown.
    hcp_rejection_t why;
    s_rating ();
    assert_int_equal (hcp_validate_submit (&s_f.submit, &s_limits, s_now, NULL, NULL, &why),
                      -1);
    assert_string_equal (why.code, "unknown_item");
}

static void
test_enums (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.channel = HCP__V1__CHANNEL__CHANNEL_UNSPECIFIED;
    s_rejected ("rating.channel", "missing");
    s_f.rating.channel = (Hcp__V1__Channel) 8;
    s_rejected ("rating.channel", "out_of_range");
    s_f.rating.channel = (Hcp__V1__Channel) -3;
    s_rejected ("rating.channel", "out_of_range");
    s_f.rating.channel = HCP__V1__CHANNEL__CHANNEL_SOLICITATION;
    s_accepted ();
    s_f.rating.stage = (Hcp__V1__Stage) 4;
    s_rejected ("rating.stage", "out_of_range");
    s_f.rating.stage = HCP__V1__STAGE__STAGE_UNSPECIFIED;
    s_rejected ("rating.stage", "missing");
    s_rating ();
    s_f.rating.accuracy = (Hcp__V1__Grade) 6;
    s_rejected ("rating.accuracy", "out_of_range");
    s_f.rating.accuracy = (Hcp__V1__Grade) -1;
    s_rejected ("rating.accuracy", "out_of_range");
    s_rating ();
    s_f.rating.convenience = (Hcp__V1__Grade) 100;
    s_rejected ("rating.convenience", "out_of_range");
    s_delivery ();
    s_f.delivery.stage = (Hcp__V1__Stage) 7;
    s_rejected ("delivery.stage", "out_of_range");
    s_delivery ();
    s_f.delivery.channel = (Hcp__V1__Channel) 0;
    s_rejected ("delivery.channel", "missing");
}

static void
test_rating_count (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.rating_count = 0;
    s_rejected ("rating.rating_count", "out_of_range");
    s_f.rating.rating_count = 3;
    s_rejected ("rating.rating_count", "out_of_range");
    s_f.rating.rating_count = 2;
    s_accepted ();
}

static void
test_dimensions (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.standardization = HCP__V1__GRADE__GRADE_UNRATED;
    s_rejected ("rating", "no_dimension_rated");
    s_f.rating.accuracy = HCP__V1__GRADE__GRADE_VERY_DISSATISFIED;
    s_accepted ();
}

static void
test_rater (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.rater = NULL;
    s_rejected ("rating.rater.type", "missing");
    s_rating ();
    s_f.rater.type = HCP__V1__RATER_TYPE__RATER_TYPE_UNSPECIFIED;
    s_rejected ("rating.rater.type", "missing");
    s_f.rater.type = (Hcp__V1__RaterType) 7;
    s_rejected ("rating.rater.type", "out_of_range");
    s_rating ();
    s_f.rater.division_code = (char *) "11010A";
    s_rejected ("rating.rater.division_code", "not_digits");
    s_f.rater.division_code = (char *) "1101021230011"; //  13 digits
    s_rejected ("rating.rater.division_code", "not_digits");
    s_f.rater.division_code = (char *) "110102";
    s_accepted ();
    char text[1000];
    memset (text, 'k', 257);
    text[257] = 0;
    s_f.rater.key = text;
    s_rejected ("rating.rater.key", "too_long");
    s_rating ();
    for (int i = 0; i < 201; i++)
        memcpy (text + 3 * i, "张", 3);
    text[603] = 0;
    s_f.rater.name = text;
    s_rejected ("rating.rater.name", "too_long");
    text[600] = 0; //  200 characters: fine
    s_accepted ();
    s_f.rater.phone = (char *) "\xff";
    s_rejected ("rating.rater.phone", "invalid_utf8");
    s_delivery ();
    s_f.rater.type = (Hcp__V1__RaterType) 0;
    s_rejected ("delivery.rater.type", "missing");
}

static void
test_times (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.rated_at_ms = 0;
    s_rejected ("rating.rated_at_ms", "missing");
    s_f.rating.rated_at_ms = -5;
    s_rejected ("rating.rated_at_ms", "missing");
    s_f.rating.rated_at_ms = s_now + s_limits.clock_skew_ms;
    s_accepted ();
    s_f.rating.rated_at_ms = s_now + s_limits.clock_skew_ms + 1;
    s_rejected ("rating.rated_at_ms", "in_future");
    s_delivery ();
    s_f.delivery.delivered_at_ms = s_now + 86400000;
    s_rejected ("delivery.delivered_at_ms", "in_future");
    s_f.delivery.delivered_at_ms = 0;
    s_rejected ("delivery.delivered_at_ms", "missing");
}

static void
test_comment (void **state)
{
    (void) state;
    static char text[8000];
    s_rating ();
    for (int i = 0; i < 2000; i++)
        memcpy (text + 3 * i, "评", 3);
    text[6000] = 0;
    s_f.rating.comment = text; //  2000 characters, 6000 bytes: fine
    s_accepted ();
    memcpy (text + 6000, "!", 2);
    s_rejected ("rating.comment", "too_long");
    s_f.rating.comment = (char *) "ok \xe8\xaf";
    s_rejected ("rating.comment", "invalid_utf8");
    hcp_validate_limits_t tight = s_limits;
    tight.comment_max_chars = 3;
    s_f.rating.comment = (char *) "好差评";
    hcp_rejection_t why;
    assert_int_equal (hcp_validate_submit (&s_f.submit, &tight, s_now, s_catalog, NULL, &why),
                      0);
    s_f.rating.comment = (char *) "好差评!";
    assert_int_equal (hcp_validate_submit (&s_f.submit, &tight, s_now, s_catalog, NULL, &why),
                      -1);
    assert_string_equal (why.code, "too_long");
}

static void
test_rating_against_delivery (void **state)
{
    (void) state;
    s_rating ();
    s_f.rating.delivery_id = (char *) "BJ-1";
    hcp_rejection_t why;
    int64_t delivered = s_now - 7200000;
    assert_int_equal (hcp_validate_rating_delivery (&s_f.rating, false, NULL, 0, &why), -1);
    assert_string_equal (why.field, "rating.delivery_id");
    assert_string_equal (why.code, "unknown_delivery");
    assert_int_equal (
        hcp_validate_rating_delivery (&s_f.rating, true, "000119001000", delivered, &why), 0);
    assert_int_equal (
        hcp_validate_rating_delivery (&s_f.rating, true, "000119009000", delivered, &why), -1);
    assert_string_equal (why.code, "item_mismatch");
    s_f.rating.rated_at_ms = delivered - 1;
    assert_int_equal (
        hcp_validate_rating_delivery (&s_f.rating, true, "000119001000", delivered, &why), -1);
    assert_string_equal (why.field, "rating.rated_at_ms");
    assert_string_equal (why.code, "before_delivery");
    s_f.rating.rated_at_ms = delivered;
    assert_int_equal (
        hcp_validate_rating_delivery (&s_f.rating, true, "000119001000", delivered, &why), 0);
}

//  --------------------------------------------------------------------------
//  Wire level

static uint8_t *
s_pack (size_t *size)
{
    *size = hcp__v1__submit__get_packed_size (&s_f.submit);
    uint8_t *bytes = malloc (*size + 16);
    hcp__v1__submit__pack (&s_f.submit, bytes);
    return bytes;
}

static void
test_decode (void **state)
{
    (void) state;
    hcp_rejection_t why;
    Hcp__V1__Submit *submit;
    s_rating ();
    size_t size;
    uint8_t *bytes = s_pack (&size);
    assert_int_equal (hcp_validate_decode (bytes, size, &s_limits, &submit, &why), 0);
    assert_non_null (submit);
    assert_string_equal (submit->rating->comment, "很好");
    hcp__v1__submit__free_unpacked (submit, NULL);

    //  Over the limit: refused, but decoded so the reply can name the id.
    hcp_validate_limits_t small = s_limits;
    small.max_message_bytes = size - 1;
    assert_int_equal (hcp_validate_decode (bytes, size, &small, &submit, &why), -1);
    assert_string_equal (why.field, "message");
    assert_string_equal (why.code, "too_large");
    assert_non_null (submit);
    assert_string_equal (hcp_validate_fact_id (submit), s_f.rating.rating_id);
    hcp__v1__submit__free_unpacked (submit, NULL);

    //  Cut inside a field: does not decode.
    assert_int_equal (hcp_validate_decode (bytes, size - 2, &s_limits, &submit, &why), -1);
    assert_null (submit);
    assert_string_equal (why.code, "undecodable");
    free (bytes);

    //  Invalid UTF-8 in a nested string, found on the wire with its path.
    s_f.rater.name = (char *) "\xe5\xbc";
    bytes = s_pack (&size);
    assert_int_equal (hcp_validate_decode (bytes, size, &s_limits, &submit, &why), -1);
    assert_string_equal (why.field, "rating.rater.name");
    assert_string_equal (why.code, "invalid_utf8");
    hcp__v1__submit__free_unpacked (submit, NULL);
    free (bytes);

    //  A NUL byte inside a string (invisible once decoded as a C string).
    s_rating ();
    s_f.rating.comment = (char *) "abcdef";
    bytes = s_pack (&size);
    uint8_t *at = memmem (bytes, size, "abcdef", 6);
    assert_non_null (at);
    at[3] = 0;
    assert_int_equal (hcp_validate_decode (bytes, size, &s_limits, &submit, &why), -1);
    assert_string_equal (why.field, "rating.comment");
    assert_string_equal (why.code, "invalid_utf8");
    assert_string_equal (submit->rating->comment, "abc"); //  what protobuf-c made of it
    hcp__v1__submit__free_unpacked (submit, NULL);
    free (bytes);

    //  Unknown fields are tolerated (a newer adapter): field 99, varint 1.
    s_rating ();
    bytes = s_pack (&size);
    bytes[size] = 0x98;
    bytes[size + 1] = 0x06;
    bytes[size + 2] = 0x01;
    assert_int_equal (hcp_validate_decode (bytes, size + 3, &s_limits, &submit, &why), 0);
    hcp__v1__submit__free_unpacked (submit, NULL);
    free (bytes);

    //  The empty message decodes to a Submit without a fact.
    assert_int_equal (hcp_validate_decode ("", 0, &s_limits, &submit, &why), 0);
    assert_int_equal (hcp_validate_submit (submit, &s_limits, s_now, s_catalog, NULL, &why),
                      -1);
    assert_string_equal (why.code, "no_fact");
    hcp__v1__submit__free_unpacked (submit, NULL);
}

static void
test_rejection_reason_stays_utf8 (void **state)
{
    (void) state;
    hcp_rejection_t why;
    char long_text[1000];
    for (int i = 0; i < 300; i++)
        memcpy (long_text + 3 * i, "错", 3);
    long_text[900] = 0;
    hcp_rejection_set (&why, "f", "c", "x%s", long_text);
    assert_true (strlen (why.reason) < sizeof why.reason);
    assert_true (hcp_validate_utf8 (why.reason, strlen (why.reason), NULL));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_utf8),
        cmocka_unit_test (test_id_text),
        cmocka_unit_test (test_valid_rating_and_delivery),
        cmocka_unit_test (test_no_fact),
        cmocka_unit_test (test_rating_id),
        cmocka_unit_test (test_delivery_id),
        cmocka_unit_test (test_item),
        cmocka_unit_test (test_enums),
        cmocka_unit_test (test_rating_count),
        cmocka_unit_test (test_dimensions),
        cmocka_unit_test (test_rater),
        cmocka_unit_test (test_times),
        cmocka_unit_test (test_comment),
        cmocka_unit_test (test_rating_against_delivery),
        cmocka_unit_test (test_decode),
        cmocka_unit_test (test_rejection_reason_stays_utf8),
    };
    return cmocka_run_group_tests (tests, s_setup, NULL);
}
