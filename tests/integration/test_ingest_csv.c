/*  Integration: hcpctl submit — one rating or delivery from flags, and CSV
    files for the paper channels (tests/data/ingest_*.csv): quoted fields
    with commas, quotes and line breaks, a BOM, Chinese grade names, ids
    derived from letter numbers (importing again stores nothing twice), bad
    lines reported with field and reason, exit codes 0 / 1 / 2, and a large
    file answered in file order. Real hcp-ingest and hcpctl binaries.
*/
#include "test_ingest_support.h"

static ingest_t *s_ingest;
static char s_out[600], s_err[600];

static int
s_setup (void **state)
{
    (void) state;
    s_ingest = s_ingest_start ("ingest_csv", NULL);
    snprintf (s_out, sizeof s_out, "%s/out.txt", s_ingest->dir);
    snprintf (s_err, sizeof s_err, "%s/err.txt", s_ingest->dir);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    s_ingest_destroy (&s_ingest);
    return 0;
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    rewind (file);
    char *text = malloc ((size_t) size + 1);
    assert_int_equal (fread (text, 1, (size_t) size, file), (size_t) size);
    text[size] = 0;
    fclose (file);
    return text;
}

//  Runs "hcpctl submit ARGS" against the test's ingest; stdout in s_out.
static int
s_hcpctl (const char *args)
{
    char bin[4096];
    snprintf (bin, sizeof bin, "%s", hcp_test_bin ("hcpctl"));
    return hcp_test_shell ("%s submit %s --endpoint '%s' --timeout 20000 >%s 2>%s", bin, args,
                           s_ingest->endpoint, s_out, s_err);
}

static const char *
s_data (const char *name)
{
    static char path[1024];
    const char *root = getenv ("HCP_ROOT");
    snprintf (path, sizeof path, "%s/tests/data/%s", root ? root : ".", name);
    return path;
}

static void
s_expect_output (const char *needle)
{
    char *text = s_read (s_out);
    if (!strstr (text, needle))
        fail_msg ("expected '%s' in the output:\n%s", needle, text);
    free (text);
}

//  --------------------------------------------------------------------------

static void
test_flags (void **state)
{
    (void) state;
    int rc = s_hcpctl ("delivery --id FLAG-D-1 --item 000119001000 --channel online --stage "
                       "completion --rater-type enterprise --at '2026-01-02 10:00:00'");
    assert_int_equal (rc, 0);
    s_expect_output ("accepted FLAG-D-1");
    rc = s_hcpctl ("rating --delivery FLAG-D-1 --item 000119001000 --channel online --stage "
                   "completion --rater-type enterprise --standardization 5 --comment '太慢' "
                   "--id 0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f --at 1767400000000");
    assert_int_equal (rc, 0);
    s_expect_output ("accepted 0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT count(*) FROM ratings WHERE rating_id = "
                                        "'0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f' AND is_bad "
                                        "AND comment = '太慢' AND delivery_id = 'FLAG-D-1'"),
                      1);
    //  The same again: duplicate, still success.
    rc = s_hcpctl ("rating --delivery FLAG-D-1 --item 000119001000 --channel online --stage "
                   "completion --rater-type enterprise --standardization 5 --comment '太慢' "
                   "--id 0195f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f --at 1767400000000");
    assert_int_equal (rc, 0);
    s_expect_output ("duplicate 0195f3c2");
    //  Rejected by ingest: exit 1 with the field and the reason.
    rc = s_hcpctl ("rating --item 000119001000 --channel online --stage completion "
                   "--rater-type enterprise");
    assert_int_equal (rc, 1);
    s_expect_output ("field=rating code=no_dimension_rated");
    //  Refused by hcpctl itself: a usage error.
    rc = s_hcpctl ("rating --item 000119001000 --channel pigeon --stage completion");
    assert_int_equal (rc, 2);
    rc = s_hcpctl ("rating --no-such-flag 1");
    assert_int_equal (rc, 2);
}

static void
test_csv_good_then_again (void **state)
{
    (void) state;
    char args[2048];
    snprintf (args, sizeof args, "csv %s --kind delivery", s_data ("ingest_deliveries.csv"));
    assert_int_equal (s_hcpctl (args), 0);
    s_expect_output ("line 2: accepted CSV-D-001");
    s_expect_output ("line 4: accepted CSV-D-003");
    s_expect_output ("summary: 3 records, 3 accepted, 0 duplicate, 0 rejected, 0 failed");

    snprintf (args, sizeof args, "csv %s --kind rating", s_data ("ingest_ratings_good.csv"));
    assert_int_equal (s_hcpctl (args), 0);
    //  Line numbers are those where each record starts (one spans two).
    char id[HCP_UUID_STR_LEN];
    hcp_uuid_from_name ("hcp:rating:suggestion-box", "SB-2026-0001", id);
    char line[200];
    snprintf (line, sizeof line, "line 2: accepted %s", id);
    s_expect_output (line);
    s_expect_output ("line 5: accepted");
    s_expect_output ("line 7: accepted");
    s_expect_output ("summary: 5 records, 5 accepted, 0 duplicate, 0 rejected, 0 failed");
    PGconn *conn = s_ingest->conn;
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM ratings WHERE rating_id = '%s' "
                                        "AND comment = '很好，谢谢' AND accuracy IS NULL "
                                        "AND channel = 6",
                                        id),
                      1);
    //  Quotes, a comma and a line break inside a quoted field, kept as is.
    hcp_uuid_from_name ("hcp:rating:suggestion-box", "SB-2026-0002", id);
    char *comment = hcp_test_sql_text (
        conn, "SELECT comment FROM ratings WHERE rating_id = '%s'", id);
    assert_non_null (comment);
    assert_string_equal (comment, "窗口人员说：\"材料不全\"，\n让我第二天再来, 来回跑了三趟");
    free (comment);
    //  Chinese grade names; SQL text stored as data.
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM ratings WHERE "
                                              "standardization = 4 AND convenience = 2 AND "
                                              "accuracy = 1 AND rating_count = 2"),
                      1);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM ratings WHERE comment = "
                                              "'''); DROP TABLE ratings; --'"),
                      1);
    assert_int_equal (
        hcp_test_sql_int (conn, "SELECT count(*) FROM rater_pii WHERE name = '王五'"), 1);

    //  Importing the same file again stores nothing twice.
    long long events = hcp_test_sql_int (conn, "SELECT count(*) FROM events");
    assert_int_equal (s_hcpctl (args), 0);
    s_expect_output ("summary: 5 records, 0 accepted, 5 duplicate, 0 rejected, 0 failed");
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM events"), events);
}

static void
test_csv_bad_lines (void **state)
{
    (void) state;
    long long before = hcp_test_sql_int (s_ingest->conn,
                                         "SELECT count(*) FROM rejected_submissions");
    char args[2048];
    snprintf (args, sizeof args, "csv %s --kind rating", s_data ("ingest_ratings_bad.csv"));
    assert_int_equal (s_hcpctl (args), 1);
    s_expect_output ("line 2: rejected");
    s_expect_output ("field=rating.item_code code=unknown_item");
    s_expect_output ("line 3: rejected - field=channel code=bad_value");
    s_expect_output ("line 4: rejected - field=ref code=missing");
    s_expect_output ("field=rating.rated_at_ms code=in_future");
    s_expect_output ("field=rating code=no_dimension_rated");
    s_expect_output ("line 7: accepted");
    s_expect_output ("field=standardization code=bad_value");
    s_expect_output ("field=rating.rater.type code=missing");
    s_expect_output ("line 10: rejected - field=line code=bad_value");
    s_expect_output ("line 11: rejected - field=rated_at code=bad_value");
    s_expect_output ("line 12: rejected - field=comment code=invalid_utf8");
    s_expect_output ("GB18030");
    s_expect_output ("summary: 11 records, 1 accepted, 0 duplicate, 10 rejected, 0 failed");
    //  Those ingest refused are on record; those hcpctl refused never left.
    assert_int_equal (
        hcp_test_sql_int (s_ingest->conn, "SELECT count(*) FROM rejected_submissions"),
        before + 4);
}

static void
test_csv_usage_errors (void **state)
{
    (void) state;
    char args[2048];
    snprintf (args, sizeof args, "csv %s --kind rating",
              s_data ("ingest_ratings_unknown_column.csv"));
    assert_int_equal (s_hcpctl (args), 2);
    char *err = s_read (s_err);
    assert_non_null (strstr (err, "unknown column 'item'"));
    free (err);
    assert_int_equal (s_hcpctl ("csv /nonexistent.csv --kind rating"), 2);
    snprintf (args, sizeof args, "csv %s", s_data ("ingest_deliveries.csv"));
    assert_int_equal (s_hcpctl (args), 2); //  no --kind
}

//  A large file: pipelined, answered in file order, counted right.
static void
test_csv_large_file_in_order (void **state)
{
    (void) state;
    char path[700];
    snprintf (path, sizeof path, "%s/large.csv", s_ingest->dir);
    FILE *file = fopen (path, "w");
    fprintf (file,
             "ref,item_code,channel,stage,rater_type,rated_at,standardization,comment\n");
    const int count = 20000;
    for (int i = 0; i < count; i++)
        fprintf (file,
                 "BIG-%06d,000119005000,solicitation,completion,other,"
                 "2026-01-10 10:00:00,%d,\"第%d封函询\"\n",
                 i, 1 + i % 5, i);
    fclose (file);
    char args[2048];
    snprintf (args, sizeof args, "csv %s --kind rating", path);
    assert_int_equal (s_hcpctl (args), 0);
    char *text = s_read (s_out);
    long expected_line = 2;
    for (char *line = text; *line;) {
        if (!strncmp (line, "line ", 5)) {
            assert_int_equal (strtol (line + 5, NULL, 10), expected_line);
            expected_line++;
        }
        char *end = strchr (line, '\n');
        if (!end)
            break;
        line = end + 1;
    }
    assert_int_equal (expected_line, count + 2);
    assert_non_null (strstr (text, "summary: 20000 records, 20000 accepted"));
    free (text);
    assert_int_equal (hcp_test_sql_int (s_ingest->conn,
                                        "SELECT count(*) FROM ratings WHERE item_code = "
                                        "'000119005000' AND channel = 7"),
                      count);
    //  --quiet prints only what went wrong: here nothing but the summary.
    snprintf (args, sizeof args, "csv %s --kind rating --quiet", path);
    assert_int_equal (s_hcpctl (args), 0);
    text = s_read (s_out);
    assert_null (strstr (text, "line "));
    assert_non_null (strstr (text, "0 accepted, 20000 duplicate"));
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_flags),
        cmocka_unit_test (test_csv_good_then_again),
        cmocka_unit_test (test_csv_bad_lines),
        cmocka_unit_test (test_csv_usage_errors),
        cmocka_unit_test (test_csv_large_file_in_order),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
