/*  Integration test: a running hcp-deadline-watcher recomputes stored
    provisional deadlines when the calendar file gains the missing year —
    without a restart, both when the file changes (mtime/size) and on SIGHUP.

    The calendar starts with 2026 only. A form deadline from Wed 2026-12-30
    runs into 2027, so it is computed Monday-Friday and stored provisional:
    12-31 (1), 2027-01-01 Fri (2), 01-04 (3), 01-05 (4), 01-06 (5). The new
    file adds 2027 with 01-01 .. 01-03 as holidays: 12-31 (1), 01-04 (2),
    01-05 (3), 01-06 (4), 01-07 (5) → due 2027-01-07, no longer provisional.
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

#define S_2026                                                                           \
    "  2026:\n"                                                                          \
    "    holidays: [2026-01-01, 2026-01-02, 2026-01-03, 2026-02-15, 2026-02-16, "        \
    "2026-02-17, "                                                                       \
    "2026-02-18, 2026-02-19, 2026-02-20, 2026-02-21, 2026-02-22, 2026-02-23, "           \
    "2026-04-04, "                                                                       \
    "2026-04-05, 2026-04-06, 2026-05-01, 2026-05-02, 2026-05-03, 2026-05-04, "           \
    "2026-05-05, "                                                                       \
    "2026-06-19, 2026-06-20, 2026-06-21, 2026-09-25, 2026-09-26, 2026-09-27, "           \
    "2026-10-01, "                                                                       \
    "2026-10-02, 2026-10-03, 2026-10-04, 2026-10-05, 2026-10-06, 2026-10-07]\n"          \
    "    workdays: [2026-01-04, 2026-02-14, 2026-02-28, 2026-05-09, 2026-09-20, "        \
    "2026-10-10]\n"

static const char *s_calendar_2026 = "years:\n" S_2026;
static const char *s_calendar_2027 =
    "years:\n" S_2026 "  2027:\n"
    "    holidays: [2027-01-01, 2027-01-02, 2027-01-03]\n"
    "    workdays: []\n";

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
    char tmp[600];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (rename (tmp, path), 0);
}

//  Waits until the log file contains text. Returns true if it did.
static bool
s_log_wait (const char *path, const char *text, int timeout_ms)
{
    int64_t deadline = hcp_test_now_ms () + timeout_ms;
    while (hcp_test_now_ms () < deadline) {
        FILE *file = fopen (path, "r");
        if (file) {
            char line[4096];
            while (fgets (line, sizeof line, file))
                if (strstr (line, text)) {
                    fclose (file);
                    return true;
                }
            fclose (file);
        }
        hcp_test_sleep_ms (20);
    }
    return false;
}

static long long
s_case_create (PGconn *conn)
{
    return hcp_test_sql_int (
        conn, "WITH r AS ("
              "  INSERT INTO ratings (rating_id, item_code, channel, stage, "
              "rating_count, rater_type,"
              "                       rated_at, standardization, fingerprint)"
              "  VALUES (gen_random_uuid (), '000119001000', 1, 3, 1, 1, '2026-12-30 "
              "10:00+08', 5,"
              "          '\\x00')"
              "  RETURNING rating_id, item_code, rated_at)"
              " INSERT INTO cases (rating_id, state, item_code, unit_code, rating_day, "
              "opened_at,"
              "                    last_action, last_actor, last_at)"
              " SELECT rating_id, 'awaiting_visit', item_code, 'LUM', '2026-12-30', "
              "rated_at, 'open',"
              "        'test', rated_at FROM r RETURNING case_id");
}

static void
test_reload_recomputes_provisional_deadlines (void **state)
{
    (void) state;
    char *conninfo = hcp_test_db_create ("deadline_recompute");
    PGconn *conn = hcp_test_connect (conninfo);
    char *dir = hcp_test_tmpdir ("deadline-recompute");
    char calendar[512], old_calendar[512], clock[512], log[512];
    snprintf (calendar, sizeof calendar, "%s/calendar.yaml", dir);
    snprintf (old_calendar, sizeof old_calendar, "%s/calendar-old.yaml", dir);
    snprintf (clock, sizeof clock, "%s/clock", dir);
    snprintf (log, sizeof log, "%s/watcher.log", dir);
    s_write_file (calendar, s_calendar_2026);
    s_write_file (old_calendar, s_calendar_2026);
    s_write_file (clock, "2026-12-30T12:00:00+08:00");

    //  case-router's side, with the same (2026-only) calendar.
    char *error = NULL;
    if (hcp_calendar_use_file (old_calendar, &error))
        fail_msg ("calendar: %s", error);
    hcp_db_t *db = hcp_db_new (conninfo, "case-router");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    long long first = s_case_create (conn);
    hcp_date_t starts_on, due;
    hcp_date_parse ("2026-12-30", &starts_on);
    assert_int_equal (
        hcp_deadline_open (db, first, "form", starts_on, 5, "working", &due), 0);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM deadline_provisional"
                                        " WHERE case_id = %lld AND due_on = '2027-01-06'",
                                        first),
                      1);

    char env_conninfo[256], env_clock[600], env_calendar[600];
    snprintf (env_conninfo, sizeof env_conninfo, "HCP_DATABASE_CONNINFO=%s", conninfo);
    snprintf (env_clock, sizeof env_clock, "HCP_CLOCK_FILE=%s", clock);
    snprintf (env_calendar, sizeof env_calendar, "HCP_CALENDAR_FILE=%s", calendar);
    //  recompute_ms 0: only the start, a calendar change or SIGHUP
    //  recompute — so this test sees which one did.
    const char *env[] = {env_conninfo,
                         env_clock,
                         env_calendar,
                         "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                         "HCP_DEADLINE_WATCHER_RECOMPUTE_MS=0",
                         NULL};
    const char *argv[] = {"hcp-deadline-watcher", NULL};
    pid_t pid = s_spawn (argv, env, log);
    //  Operators are told, loudly, in every sweep's log line.
    assert_true (s_log_wait (log, "open deadlines are provisional", 20000));
    assert_true (s_log_wait (log, "count=1", 1000));

    //  The 2027 notice arrives: the file changes, no signal.
    s_write_file (calendar, s_calendar_2027);
    assert_int_equal (
        hcp_test_wait_int (conn, 1, 20000,
                           "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                           "   AND due_on = '2027-01-07' AND NOT provisional",
                           first),
        1);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM events WHERE type ="
                                        " 'deadline.recomputed' AND key = '%lld'",
                                        first),
                      1);
    assert_int_equal (
        hcp_test_sql_int (conn,
                          "SELECT count(*) FROM deadline_actions WHERE case_id ="
                          " %lld AND action = 'recomputed'"
                          "   AND previous_due_on = '2027-01-06'"
                          "   AND due_on = '2027-01-07'"
                          "   AND at = '2026-12-30 12:00+08'",
                          first),
        1);
    assert_int_equal (
        hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_provisional"), 0);
    assert_true (s_log_wait (log, "no provisional deadline left", 5000));
    assert_int_equal (kill (pid, 0), 0); //  same process: no restart

    //  A process with an outdated calendar (the old file) opens another
    //  provisional deadline. The watcher's calendar did not change, and
    //  periodic recomputation is off: it stays until SIGHUP.
    long long second = s_case_create (conn);
    assert_int_equal (
        hcp_deadline_open (db, second, "form", starts_on, 5, "working", &due), 0);
    assert_int_equal (
        hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_provisional"), 1);
    hcp_test_sleep_ms (300); //  ~15 sweeps: a negative check needs some time
    assert_int_equal (
        hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_provisional"), 1);
    assert_int_equal (kill (pid, SIGHUP), 0);
    assert_int_equal (
        hcp_test_wait_int (conn, 1, 20000,
                           "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                           "   AND due_on = '2027-01-07' AND NOT provisional",
                           second),
        1);
    assert_true (s_log_wait (log, "SIGHUP: recomputing every open deadline", 5000));
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM events"
                                              " WHERE type = 'deadline.recomputed'"),
                      2);

    int status = s_stop (pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    //  A restart recomputes at start, and changes nothing: the dates are
    //  right. (At debug level the pass logs "changed=0".)
    const char *debug_env[] = {env_conninfo,
                               env_clock,
                               env_calendar,
                               "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                               "HCP_DEADLINE_WATCHER_RECOMPUTE_MS=0",
                               "HCP_LOG_LEVEL=debug",
                               NULL};
    pid = s_spawn (argv, debug_env, log);
    assert_true (s_log_wait (log, "changed=0", 20000));
    status = s_stop (pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM events"
                                              " WHERE type = 'deadline.recomputed'"),
                      2);

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
        cmocka_unit_test_teardown (test_reload_recomputes_provisional_deadlines,
                                   s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
