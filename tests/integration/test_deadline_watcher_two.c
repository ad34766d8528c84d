/*  Integration test: two hcp-deadline-watcher processes over one database
    never warn or escalate a deadline twice.

    Both run the real binary with a fast sweep (20 ms) and small batches, so
    they race on every step; the business clock is a file (HCP_CLOCK_FILE)
    that the test moves forward day by day. Afterwards every deadline has
    exactly one reminder, one overdue mark and one escalation — counted in
    deadline_actions and, separately, in the events outbox.
*/
#include "hcp_calendar.h"
#include "hcp_clock.h"
#include "hcp_db.h"
#include "hcp_deadline.h"
#include "hcp_test.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

//  Half the deadlines are due Thu 2026-02-26 (from 02-12), half Fri 02-27
//  (from 02-13: 02-14 (1), 02-24 (2), 02-25 (3), 02-26 (4), 02-27 (5)).
#define S_HALF 150

static const char *s_calendar_2026 =
    "years:\n"
    "  2026:\n"
    "    holidays: [2026-01-01, 2026-01-02, 2026-01-03, 2026-02-15, 2026-02-16, "
    "2026-02-17, "
    "2026-02-18, 2026-02-19, 2026-02-20, 2026-02-21, 2026-02-22, 2026-02-23, 2026-04-04, "
    "2026-04-05, 2026-04-06, 2026-05-01, 2026-05-02, 2026-05-03, 2026-05-04, 2026-05-05, "
    "2026-06-19, 2026-06-20, 2026-06-21, 2026-09-25, 2026-09-26, 2026-09-27, 2026-10-01, "
    "2026-10-02, 2026-10-03, 2026-10-04, 2026-10-05, 2026-10-06, 2026-10-07]\n"
    "    workdays: [2026-01-04, 2026-02-14, 2026-02-28, 2026-05-09, 2026-09-20, "
    "2026-10-10]\n";

//  Every watcher this test started, so that a failing test (cmocka jumps
//  out of it) does not leave them running: the teardown kills them.
static pid_t s_pids[16];

static pid_t
s_spawn (const char *const *argv, const char *const *env, const char *log)
{
    pid_t pid = hcp_test_spawn ("hcp-deadline-watcher", argv, env, log);
    for (size_t i = 0; i < sizeof s_pids / sizeof s_pids[0]; i++)
        if (s_pids[i] == 0) {
            s_pids[i] = pid;
            break;
        }
    return pid;
}

//  Stops a watcher and returns its wait status.
static int
s_stop (pid_t pid, int sig)
{
    for (size_t i = 0; i < sizeof s_pids / sizeof s_pids[0]; i++)
        if (s_pids[i] == pid)
            s_pids[i] = 0;
    return hcp_test_stop (pid, sig, 15000);
}

static int
s_teardown (void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof s_pids / sizeof s_pids[0]; i++)
        if (s_pids[i] > 0) {
            hcp_test_stop (s_pids[i], SIGKILL, 5000);
            s_pids[i] = 0;
        }
    return 0;
}

static void
s_write_file (const char *path, const char *text)
{
    //  Write and rename: a reader never sees half a file.
    char tmp[600];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (rename (tmp, path), 0);
}

static long long
s_count (PGconn *conn, const char *action)
{
    return hcp_test_sql_int (
        conn, "SELECT count(*) FROM deadline_actions WHERE action = '%s'", action);
}

static void
test_two_watchers_never_double (void **state)
{
    (void) state;
    char *conninfo = hcp_test_db_create ("deadline_two");
    PGconn *conn = hcp_test_connect (conninfo);
    char *dir = hcp_test_tmpdir ("deadline-two");
    char calendar[512], clock[512], log[2][512];
    snprintf (calendar, sizeof calendar, "%s/calendar.yaml", dir);
    snprintf (clock, sizeof clock, "%s/clock", dir);
    s_write_file (calendar, s_calendar_2026);
    s_write_file (clock, "2026-02-20T09:00:00+08:00");
    char *error = NULL;
    if (hcp_calendar_use_file (calendar, &error))
        fail_msg ("calendar: %s", error);

    //  The cases and their form deadlines, as case-router would open them.
    hcp_test_sql_exec (
        conn,
        "WITH r AS ("
        "  INSERT INTO ratings (rating_id, item_code, channel, stage, rating_count, "
        "rater_type,"
        "                       rated_at, standardization, fingerprint)"
        "  SELECT gen_random_uuid (), '000119001000', 1, 3, 1, 1,"
        "         CASE WHEN i %% 2 = 0 THEN '2026-02-12 10:00+08'::timestamptz"
        "              ELSE '2026-02-13 10:00+08' END, 5, '\\x00'"
        "    FROM generate_series (1, %d) AS i"
        "  RETURNING rating_id, item_code, rated_at)"
        " INSERT INTO cases (rating_id, state, item_code, unit_code, rating_day, "
        "opened_at,"
        "                    last_action, last_actor, last_at)"
        " SELECT rating_id, 'awaiting_visit', item_code, 'LUM',"
        "        (rated_at AT TIME ZONE 'Asia/Shanghai')::date, rated_at, 'open', 'test',"
        "        rated_at FROM r",
        2 * S_HALF);
    hcp_db_t *db = hcp_db_new (conninfo, "case-router");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    PGresult *res =
        PQexec (conn, "SELECT case_id, rating_day FROM cases ORDER BY case_id");
    assert_int_equal (PQntuples (res), 2 * S_HALF);
    assert_int_equal (hcp_db_exec (db, "BEGIN"), 0);
    for (int i = 0; i < PQntuples (res); i++) {
        hcp_date_t rating_day;
        assert_int_equal (hcp_date_parse (PQgetvalue (res, i, 1), &rating_day), 0);
        assert_int_equal (hcp_deadline_open (db,
                                             strtoll (PQgetvalue (res, i, 0), NULL, 10),
                                             "form", rating_day, 5, "working", NULL),
                          0);
    }
    assert_int_equal (hcp_db_exec (db, "COMMIT"), 0);
    PQclear (res);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadlines"
                                              " WHERE due_on = '2026-02-26'"),
                      S_HALF);

    char env_conninfo[256], env_clock[600], env_calendar[600];
    snprintf (env_conninfo, sizeof env_conninfo, "HCP_DATABASE_CONNINFO=%s", conninfo);
    snprintf (env_clock, sizeof env_clock, "HCP_CLOCK_FILE=%s", clock);
    snprintf (env_calendar, sizeof env_calendar, "HCP_CALENDAR_FILE=%s", calendar);
    const char *env[] = {env_conninfo,
                         env_clock,
                         env_calendar,
                         "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                         "HCP_DEADLINE_WATCHER_BATCH=7",
                         NULL};
    const char *argv[] = {"hcp-deadline-watcher", NULL};
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        snprintf (log[i], sizeof log[i], "%s/watcher-%d.log", dir, i);
        pid[i] = s_spawn (argv, env, log[i]);
    }

    //  Day by day. Each wait ends at the exact figure; the counts are
    //  checked again at the end, after both instances swept many more times.
    s_write_file (clock, "2026-02-25T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'warned'"),
                      S_HALF);
    s_write_file (clock, "2026-02-26T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, 2 * S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'warned'"),
                      2 * S_HALF);
    s_write_file (clock, "2026-02-27T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'escalated'"),
                      S_HALF);
    s_write_file (clock, "2026-03-02T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, 2 * S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'escalated'"),
                      2 * S_HALF);
    //  A bounded pause for a negative check: ~75 more sweeps of each
    //  instance, in which a double would show.
    hcp_test_sleep_ms (1500);

    for (int i = 0; i < 2; i++) {
        int status = s_stop (pid[i], SIGTERM);
        assert_true (WIFEXITED (status));
        assert_int_equal (WEXITSTATUS (status), 0);
    }
    assert_int_equal (s_count (conn, "warned"), 2 * S_HALF);
    assert_int_equal (s_count (conn, "overdue"), 2 * S_HALF);
    assert_int_equal (s_count (conn, "escalated"), 2 * S_HALF);
    const char *types[] = {"deadline.warned", "deadline.overdue", "deadline.escalated"};
    for (int i = 0; i < 3; i++) {
        long long events = hcp_test_sql_int (
            conn, "SELECT count(*) FROM events WHERE type = '%s'", types[i]);
        if (events != 2 * S_HALF)
            fail_msg ("%lld %s events, expected %d", events, types[i], 2 * S_HALF);
        //  One per case (key = case id).
        assert_int_equal (hcp_test_sql_int (conn,
                                            "SELECT count(DISTINCT key) FROM events"
                                            " WHERE type = '%s'",
                                            types[i]),
                          2 * S_HALF);
    }
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadlines"
                                              " WHERE warned_at IS NOT NULL"
                                              "   AND escalated_at IS NOT NULL"),
                      2 * S_HALF);
    //  No reminder after the due time (the overdue step wins).
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadlines"
                                              " WHERE warned_at > due_at"),
                      0);
    long long workers =
        hcp_test_sql_int (conn, "SELECT count(DISTINCT actor)"
                                " FROM deadline_actions"
                                " WHERE action IN ('warned', 'escalated')");
    printf ("# instances that did work: %lld of 2\n", workers);
    assert_true (workers >= 1 && workers <= 2);

    hcp_db_destroy (&db);
    PQfinish (conn);
    hcp_test_db_drop (conninfo);
    hcp_test_shell ("rm -rf '%s'", dir);
    free (dir);
    free (conninfo);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_two_watchers_never_double, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
