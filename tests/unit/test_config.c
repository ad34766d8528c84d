/*  Unit tests: hcp_config (YAML, line numbers, env overrides) and hcp_clock. */
#include "hcp_clock.h"
#include "hcp_config.h"
#include "hcp_uuid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *s_yaml = "# sample\n"
                            "database:\n"
                            "  conninfo: \"dbname=hcp\"\n"
                            "ingest:\n"
                            "  batch_max: 512\n"
                            "  bad_number: 12x\n"
                            "  flag: yes\n"
                            "list: [a, b, c]\n";

static void
test_lookup_and_types (void **state)
{
    (void) state;
    char *error = NULL;
    hcp_config_t *config = hcp_config_parse (s_yaml, "hcp.yaml", &error);
    assert_non_null (config);
    const char *text;
    assert_int_equal (hcp_config_str (config, "database.conninfo", "", &text), 0);
    assert_string_equal (text, "dbname=hcp");
    long long number;
    assert_int_equal (hcp_config_int (config, "ingest.batch_max", 1, 1, 100000, &number), 0);
    assert_int_equal (number, 512);
    assert_int_equal (hcp_config_int (config, "ingest.missing", 7, 1, 10, &number), 0);
    assert_int_equal (number, 7);
    bool flag;
    assert_int_equal (hcp_config_bool (config, "ingest.flag", false, &flag), 0);
    assert_true (flag);
    hcp_config_t *list = hcp_config_at (config, "list");
    assert_true (hcp_config_is_seq (list));
    assert_int_equal (hcp_config_size (list), 3);
    assert_string_equal (hcp_config_value (hcp_config_child (list, 2)), "c");
    hcp_config_destroy (&config);
    assert_null (config);
}

static void
test_errors_name_file_line_and_key (void **state)
{
    (void) state;
    hcp_config_t *config = hcp_config_parse (s_yaml, "hcp.yaml", NULL);
    long long number;
    assert_int_equal (hcp_config_int (config, "ingest.bad_number", 1, 1, 10, &number), -1);
    assert_non_null (strstr (hcp_config_error (config), "hcp.yaml:6: ingest.bad_number"));
    assert_int_equal (hcp_config_int (config, "ingest.batch_max", 1, 1, 10, &number), -1);
    assert_non_null (strstr (hcp_config_error (config), "from 1 to 10"));
    hcp_config_destroy (&config);

    char *error = NULL;
    config = hcp_config_parse ("a: 1\nb: [1, 2\n", "broken.yaml", &error);
    assert_null (config);
    assert_non_null (error);
    assert_non_null (strstr (error, "broken.yaml:"));
    free (error);

    config = hcp_config_parse ("a: 1\na: 2\n", "dup.yaml", &error);
    assert_null (config);
    assert_non_null (strstr (error, "duplicate key"));
    free (error);
}

static void
test_environment_overrides (void **state)
{
    (void) state;
    hcp_config_t *config = hcp_config_parse (s_yaml, "hcp.yaml", NULL);
    setenv ("HCP_INGEST_BATCH_MAX", "64", 1);
    long long number;
    assert_int_equal (hcp_config_int (config, "ingest.batch_max", 1, 1, 100000, &number), 0);
    assert_int_equal (number, 64);
    setenv ("HCP_INGEST_BATCH_MAX", "lots", 1);
    assert_int_equal (hcp_config_int (config, "ingest.batch_max", 1, 1, 100000, &number), -1);
    assert_non_null (strstr (hcp_config_error (config), "HCP_INGEST_BATCH_MAX"));
    unsetenv ("HCP_INGEST_BATCH_MAX");
    hcp_config_destroy (&config);
}

static void
test_missing_file_is_a_clear_error (void **state)
{
    (void) state;
    char *error = NULL;
    assert_null (hcp_config_load ("/nonexistent/hcp.yaml", &error));
    assert_non_null (strstr (error, "/nonexistent/hcp.yaml: cannot open"));
    free (error);
    hcp_config_t *defaults = hcp_config_load (NULL, &error);
    assert_non_null (defaults);
    hcp_config_destroy (&defaults);
}

static void
test_clock_parse_and_format (void **state)
{
    (void) state;
    int64_t ms;
    assert_int_equal (hcp_clock_parse ("2026-02-14", &ms), 0);
    char buf[40];
    assert_string_equal (hcp_clock_format (ms, buf), "2026-02-14T00:00:00+08:00");
    assert_int_equal (hcp_clock_parse ("2026-02-13T16:00:00Z", &ms), 0);
    assert_string_equal (hcp_clock_format (ms, buf), "2026-02-14T00:00:00+08:00");
    assert_int_equal (hcp_clock_parse ("2026-12-31 23:59:59", &ms), 0);
    assert_string_equal (hcp_clock_format (ms, buf), "2026-12-31T23:59:59+08:00");
    assert_int_equal (hcp_clock_parse ("2026-02-30", &ms), -1);
    assert_int_equal (hcp_clock_parse ("2026-02-01T25:00", &ms), -1);
    assert_int_equal (hcp_clock_parse ("yesterday", &ms), -1);
    hcp_clock_set_ms (1767225600000LL);
    assert_int_equal (hcp_clock_now_ms (), 1767225600000LL);
    hcp_clock_set_ms (0);
}

static void
test_uuid_v7_is_time_ordered (void **state)
{
    (void) state;
    char a[HCP_UUID_STR_LEN], b[HCP_UUID_STR_LEN];
    hcp_uuid_v7 (1767225600000LL, a);
    hcp_uuid_v7 (1767225600001LL, b);
    assert_true (hcp_uuid_valid (a));
    assert_true (strcmp (a, b) < 0);
    assert_int_equal (a[14], '7');
    assert_false (hcp_uuid_valid ("not-a-uuid"));
    assert_false (hcp_uuid_valid ("0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0g"));
    char c[HCP_UUID_STR_LEN], d[HCP_UUID_STR_LEN];
    hcp_uuid_from_name ("hcp:suggestion-box", "SB-2026-0042", c);
    hcp_uuid_from_name ("hcp:suggestion-box", "SB-2026-0042", d);
    assert_string_equal (c, d);
    hcp_uuid_from_name ("hcp:suggestion-box", "SB-2026-0043", d);
    assert_string_not_equal (c, d);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_lookup_and_types),
        cmocka_unit_test (test_errors_name_file_line_and_key),
        cmocka_unit_test (test_environment_overrides),
        cmocka_unit_test (test_missing_file_is_a_clear_error),
        cmocka_unit_test (test_clock_parse_and_format),
        cmocka_unit_test (test_uuid_v7_is_time_ordered),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
