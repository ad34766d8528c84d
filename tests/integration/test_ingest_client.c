/*  Integration: hcp_client, the adapters' library — a bounded, clearly
    reported failure when no ingest answers; submissions sent before ingest
    is up are delivered once it is; several endpoints with one of them dead;
    the same id twice in flight refused; enum names.
*/
#include "test_ingest_support.h"

static void
test_no_ingest_fails_clearly (void **state)
{
    (void) state;
    char *dir = hcp_test_tmpdir ("client_none");
    char endpoint[600];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/nobody", dir);
    hcp_client_options_t options = {.timeout_ms = 100, .max_attempts = 3, .backoff_ms = 20};
    hcp_client_t *client = hcp_client_new (endpoint, &options);
    assert_non_null (client);
    Hcp__V1__Rating rating;
    Hcp__V1__Rater rater;
    char id[HCP_UUID_STR_LEN];
    s_rating (&rating, &rater, id);
    Hcp__V1__Submit submit = HCP__V1__SUBMIT__INIT;
    submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
    submit.rating = &rating;
    hcp_client_result_t result;
    int64_t started = hcp_test_now_ms ();
    assert_int_equal (hcp_client_submit (client, &submit, &result), 0);
    int64_t took = hcp_test_now_ms () - started;
    assert_int_equal (result.status, HCP_CLIENT_FAILED);
    assert_string_equal (result.code, "no_answer");
    assert_string_equal (result.id, id);
    assert_int_equal (result.attempts, 3);
    assert_non_null (strstr (result.reason, "same id"));
    assert_true (took >= 300 && took < 10000);
    assert_int_equal (hcp_client_pending (client), 0);
    assert_int_equal (hcp_client_wait (client, 0, &result), -1); //  nothing held
    hcp_client_destroy (&client);
    assert_null (client);
    hcp_client_destroy (&client); //  safe twice
    free (dir);
}

static void
test_bad_arguments (void **state)
{
    (void) state;
    assert_null (hcp_client_new ("not-an-endpoint", NULL));
    assert_null (hcp_client_new ("", NULL));
    hcp_client_t *client = hcp_client_new ("tcp://127.0.0.1:1", NULL);
    assert_non_null (client);
    Hcp__V1__Submit empty = HCP__V1__SUBMIT__INIT;
    assert_int_equal (hcp_client_send (client, &empty, NULL), -1);
    assert_int_equal (errno, EINVAL);
    Hcp__V1__Rating rating;
    Hcp__V1__Rater rater;
    char id[HCP_UUID_STR_LEN];
    s_rating (&rating, &rater, id);
    assert_int_equal (hcp_client_send_rating (client, &rating, NULL), 0);
    assert_int_equal (hcp_client_send_rating (client, &rating, NULL), -1);
    assert_int_equal (errno, EEXIST);
    assert_int_equal (hcp_client_pending (client), 1);
    hcp_client_destroy (&client);
}

static void
test_names (void **state)
{
    (void) state;
    assert_int_equal (hcp_client_channel_parse ("hall-device"), 1);
    assert_int_equal (hcp_client_channel_parse ("SUGGESTION_BOX"), 6);
    assert_int_equal (hcp_client_channel_parse ("7"), 7);
    assert_int_equal (hcp_client_channel_parse ("8"), -1);
    assert_int_equal (hcp_client_channel_parse ("pigeon"), -1);
    assert_string_equal (hcp_client_channel_name (5), "hotline");
    assert_string_equal (hcp_client_channel_name (0), "unknown");
    assert_int_equal (hcp_client_stage_parse ("completion"), 3);
    assert_string_equal (hcp_client_stage_name (1), "application");
    assert_int_equal (hcp_client_rater_type_parse ("administrative-organ"), 5);
    assert_string_equal (hcp_client_rater_type_name (6), "other");
    assert_int_equal (hcp_client_grade_parse ("非常不满意"), 5);
    assert_int_equal (hcp_client_grade_parse ("基本满意"), 3);
    assert_int_equal (hcp_client_grade_parse ("very-satisfied"), 1);
    assert_int_equal (hcp_client_grade_parse (""), 0);
    assert_int_equal (hcp_client_grade_parse ("0"), 0);
    assert_int_equal (hcp_client_grade_parse ("6"), -1);
    assert_string_equal (hcp_client_grade_name (4), "dissatisfied");
    assert_string_equal (hcp_client_status_name (HCP_CLIENT_DUPLICATE), "duplicate");
}

//  Sent while no ingest listens; ingest starts; the resend is answered.
//  Then a second endpoint that nobody serves does not lose submissions.
static void
test_late_ingest_and_dead_endpoint (void **state)
{
    (void) state;
    char *dir = hcp_test_tmpdir ("client_late");
    char dead[600];
    snprintf (dead, sizeof dead, "ipc://%s/dead", dir);
    //  The database and the endpoint first, ingest a little later.
    ingest_t *ingest = s_ingest_start ("ingest_client", NULL);
    s_ingest_stop (ingest);
    hcp_client_options_t options = {
        .timeout_ms = 500, .max_attempts = 40, .backoff_ms = 50, .backoff_max_ms = 200};
    char endpoints[1300];
    snprintf (endpoints, sizeof endpoints, "%s, %s", dead, ingest->endpoint);
    hcp_client_t *client = hcp_client_new (endpoints, &options);
    assert_non_null (client);
    char ids[50][HCP_UUID_STR_LEN];
    for (int i = 0; i < 50; i++) {
        Hcp__V1__Rating rating;
        Hcp__V1__Rater rater;
        s_rating (&rating, &rater, ids[i]);
        assert_int_equal (hcp_client_send_rating (client, &rating, (void *) (intptr_t) i), 0);
    }
    hcp_client_result_t result;
    assert_int_equal (hcp_client_wait (client, 300, &result), 0); //  nobody answers yet
    s_ingest_spawn (ingest);
    int accepted = 0;
    while (hcp_client_wait (client, 30000, &result) == 1) {
        if (result.status != HCP_CLIENT_ACCEPTED)
            fail_msg ("%s: %s %s", result.id, hcp_client_status_name (result.status),
                      result.reason);
        assert_string_equal (result.id, ids[(intptr_t) result.tag]);
        assert_true (result.latency_us > 0);
        accepted++;
    }
    assert_int_equal (accepted, 50);
    assert_int_equal (hcp_test_sql_int (ingest->conn, "SELECT count(*) FROM ratings"), 50);
    hcp_client_destroy (&client);
    s_ingest_destroy (&ingest);
    free (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_no_ingest_fails_clearly),
        cmocka_unit_test (test_bad_arguments),
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_late_ingest_and_dead_endpoint),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
