/*  Integration tests: hcp_db against the real PostgreSQL — reconnect with
    backoff after the server drops the session, prepared statements prepared
    again on the new connection, multi-host conninfo with
    target_session_attrs=read-write, and clear errors. */
#include "hcp_db.h"
#include "hcp_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *s_conninfo;

static void
test_prepared_statements_survive_a_reconnect (void **state)
{
    (void) state;
    hcp_db_t *db = hcp_db_new (s_conninfo, "test_db");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    assert_int_equal (hcp_db_prepare (db, "add", "SELECT $1::int + 1"), 0);
    const char *one[] = {"41"};
    PGresult *res = hcp_db_run (db, "add", 1, one);
    assert_true (hcp_db_ok (db, res));
    assert_string_equal (PQgetvalue (res, 0, 0), "42");
    PQclear (res);

    //  The server ends our session, as a restart or fail-over would.
    PGconn *admin = hcp_test_connect (s_conninfo);
    int pid = PQbackendPID (hcp_db_conn (db));
    hcp_test_sql_exec (admin, "SELECT pg_terminate_backend(%d)", pid);
    PQfinish (admin);

    res = hcp_db_run (db, "add", 1, one);
    assert_null (res);
    assert_true (hcp_db_lost (db));
    assert_int_equal (hcp_db_ensure (db, 10000, NULL), 0);
    assert_int_not_equal (PQbackendPID (hcp_db_conn (db)), pid);
    res = hcp_db_run (db, "add", 1, one);
    assert_true (hcp_db_ok (db, res));
    assert_string_equal (PQgetvalue (res, 0, 0), "42");
    PQclear (res);
    hcp_db_destroy (&db);
    assert_null (db);
}

static void
test_sql_errors_keep_the_connection_and_say_why (void **state)
{
    (void) state;
    hcp_db_t *db = hcp_db_new (s_conninfo, "test_db");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    assert_int_equal (hcp_db_exec (db, "SELECT * FROM no_such_table"), -1);
    assert_string_equal (hcp_db_sqlstate (db), "42P01");
    assert_non_null (strstr (hcp_db_error (db), "no_such_table"));
    assert_null (strchr (hcp_db_error (db), '\n'));
    assert_false (hcp_db_lost (db));
    //  Text is a parameter, never SQL.
    assert_int_equal (hcp_db_prepare (db, "echo", "SELECT $1::text"), 0);
    const char *evil[] = {"'); DROP TABLE ratings; --"};
    PGresult *res = hcp_db_run (db, "echo", 1, evil);
    assert_true (hcp_db_ok (db, res));
    assert_string_equal (PQgetvalue (res, 0, 0), evil[0]);
    PQclear (res);
    hcp_db_destroy (&db);
}

static void
test_multi_host_conninfo_finds_the_writable_server (void **state)
{
    (void) state;
    //  The first host does not exist; libpq moves on to the real one and
    //  keeps it only if it accepts writes.
    const char *host = getenv ("PGHOST");
    const char *port = getenv ("PGPORT");
    assert_non_null (host);
    char conninfo[1024];
    snprintf (conninfo, sizeof conninfo,
              "%s host=/nonexistent-hcp-socket-dir,%s port=%s,%s "
              "target_session_attrs=read-write",
              s_conninfo, host, port, port);
    hcp_db_t *db = hcp_db_new (conninfo, "test_db");
    assert_int_equal (hcp_db_ensure (db, 10000, NULL), 0);
    assert_int_equal (hcp_db_exec (db, "CREATE TEMP TABLE t (x int)"), 0);
    hcp_db_destroy (&db);
}

static void
test_unreachable_database_gives_up_after_max_wait (void **state)
{
    (void) state;
    hcp_db_t *db = hcp_db_new ("host=/nonexistent-hcp-socket-dir port=1 dbname=x", NULL);
    int64_t started = hcp_test_now_ms ();
    assert_int_equal (hcp_db_ensure (db, 600, NULL), -1);
    int64_t waited = hcp_test_now_ms () - started;
    assert_true (waited >= 300); //  it retried with backoff...
    assert_true (waited < 5000); //  ...and gave up on time
    assert_non_null (strstr (hcp_db_error (db), "nonexistent-hcp-socket-dir"));
    assert_null (hcp_db_conn (db));
    hcp_db_destroy (&db);
}

int
main (void)
{
    s_conninfo = hcp_test_db_create ("db");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_prepared_statements_survive_a_reconnect),
        cmocka_unit_test (test_sql_errors_keep_the_connection_and_say_why),
        cmocka_unit_test (test_multi_host_conninfo_finds_the_writable_server),
        cmocka_unit_test (test_unreachable_database_gives_up_after_max_wait),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    hcp_test_db_drop (s_conninfo);
    free (s_conninfo);
    return failed;
}
