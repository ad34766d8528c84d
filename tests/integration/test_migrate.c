/*  Integration tests: hcpctl migrate — from an empty database, safe to run
    twice, refuses a schema newer than it knows, and the schema documents
    itself (every table and column has a comment). */
#include "hcp_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char *s_conninfo;
static PGconn *s_conn;

static int
s_migrate (const char *extra)
{
    return hcp_test_shell ("HCP_DATABASE_CONNINFO='%s' '%s' migrate --dir '%s/deploy/sql' %s "
                           ">/dev/null 2>&1",
                           s_conninfo, hcp_test_bin ("hcpctl"), getenv ("HCP_ROOT"), extra);
}

static void
test_migrates_an_empty_database_and_reruns_safely (void **state)
{
    (void) state;
    assert_int_equal (s_migrate (""), 0);
    long long version = hcp_test_sql_int (s_conn,
                                          "SELECT max(version) FROM schema_migrations");
    assert_true (version >= 1);
    long long tables = hcp_test_sql_int (s_conn, "SELECT count(*) FROM pg_tables "
                                                 "WHERE schemaname = 'public'");
    assert_int_equal (s_migrate (""), 0);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT max(version) FROM schema_migrations"),
                      version);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM pg_tables "
                                                "WHERE schemaname = 'public'"),
                      tables);
}

static void
test_every_table_and_column_is_documented (void **state)
{
    (void) state;
    char *missing = hcp_test_sql_text (
        s_conn, "SELECT string_agg(c.relname || coalesce('.' || a.attname, ''), ', ') "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                "AND NOT a.attisdropped "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm') "
                "AND ((a.attname IS NULL AND obj_description(c.oid, 'pg_class') IS NULL) "
                "  OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))");
    if (missing)
        fail_msg ("undocumented (COMMENT ON missing): %s", missing);
}

//  Runs sql and returns the SQLSTATE it failed with ("" if it succeeded).
static char *
s_sqlstate (const char *sql)
{
    PGresult *res = PQexec (s_conn, sql);
    const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
    char *copy = strdup (state ? state : "");
    PQclear (res);
    return copy;
}

//  Asserts that sql fails with the SQLSTATE expected.
static void
s_assert_refused (const char *sql, const char *expected)
{
    char *sqlstate = s_sqlstate (sql);
    if (strcmp (sqlstate, expected) != 0)
        fail_msg ("%s: expected SQLSTATE %s, got '%s'", sql, expected, sqlstate);
    free (sqlstate);
}

static void
test_personal_data_is_closed_to_auditors_and_ratings_are_append_only (void **state)
{
    (void) state;
    hcp_test_sql_exec (s_conn, "INSERT INTO units (unit_code, name) VALUES ('U1', 'unit')");
    hcp_test_sql_exec (s_conn, "INSERT INTO service_items (item_code, name, unit_code) "
                               "VALUES ('I1', 'item', 'U1')");
    hcp_test_sql_exec (s_conn,
                       "INSERT INTO ratings (rating_id, item_code, channel, stage, "
                       "rating_count, rater_type, rated_at, accuracy, fingerprint) VALUES "
                       "(hcp_uuidv7(), 'I1', 1, 3, 1, 1, now(), 5, '\\x00')");
    hcp_test_sql_exec (s_conn, "INSERT INTO rater_pii (fact_kind, fact_id, name) "
                               "VALUES ('rating', 'x', '张三')");
    //  Even the owner cannot change or remove a rating: the trigger refuses.
    s_assert_refused ("UPDATE ratings SET comment = 'edited'", "42501");
    s_assert_refused ("DELETE FROM ratings", "42501");
    s_assert_refused ("TRUNCATE ratings CASCADE", "42501");
    //  The auditor reads ratings but not personal data.
    hcp_test_sql_exec (s_conn, "SET ROLE hcp_auditor");
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM ratings"), 1);
    s_assert_refused ("SELECT * FROM rater_pii", "42501");
    s_assert_refused ("SELECT excerpt FROM rejected_submissions", "42501");
    s_assert_refused ("INSERT INTO units (unit_code, name) VALUES ('U2', 'x')", "42501");
    hcp_test_sql_exec (s_conn, "RESET ROLE");
    hcp_test_sql_exec (s_conn, "SET ROLE hcp_pii");
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM rater_pii"), 1);
    hcp_test_sql_exec (s_conn, "RESET ROLE");
}

static void
test_refuses_a_newer_schema (void **state)
{
    (void) state;
    hcp_test_sql_exec (s_conn, "INSERT INTO schema_migrations (version, name, checksum) "
                               "VALUES (9999, '9999_future.sql', 'x')");
    assert_int_equal (s_migrate (""), 1);
    hcp_test_sql_exec (s_conn, "DELETE FROM schema_migrations WHERE version = 9999");
    assert_int_equal (s_migrate (""), 0);
}

int
main (void)
{
    //  An empty database, not the migrated template.
    PGconn *admin = hcp_test_connect ("dbname=postgres");
    char name[64];
    snprintf (name, sizeof name, "t_migrate_%d", (int) getpid ());
    hcp_test_sql_exec (admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    hcp_test_sql_exec (admin, "CREATE DATABASE %s", name);
    if (asprintf (&s_conninfo, "dbname=%s", name) < 0)
        abort ();
    s_conn = hcp_test_connect (s_conninfo);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_migrates_an_empty_database_and_reruns_safely),
        cmocka_unit_test (test_every_table_and_column_is_documented),
        cmocka_unit_test (
            test_personal_data_is_closed_to_auditors_and_ratings_are_append_only),
        cmocka_unit_test (test_refuses_a_newer_schema),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    PQfinish (s_conn);
    hcp_test_sql_exec (admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    PQfinish (admin);
    free (s_conninfo);
    return failed;
}
