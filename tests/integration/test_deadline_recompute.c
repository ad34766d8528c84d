/*  Integration test: a running hcp-deadline-watcher recomputes stored
    provisional deadlines when the calendar file gains the missing year —
    without a restart, both when the file changes (mtime/size) and on SIGHUP.

    The calendar starts with 2026 only. A form deadline from Wed 2026-12-30
    runs into 2027, so it is computed Monday-Friday and stored provisional:
    12-31 (1), 2027-01-01 Fri (2), 01-04 (3), 01-05 (4), 01-06 (5). The new
    file adds 2027 with 01-01 .. 01-03 as holidays: 12-31 (1), 01-04 (2),
    01-05 (3), 01-06 (4), 01-07 (5) → due 2027-01-07, no longer provisional.
*/
#include "test_deadline_fixture.h"

static const char *s_calendar_2027 = "years:\n" TD_YEAR_2026 "  2027:\n"
                                     "    holidays: [2027-01-01, 2027-01-02, 2027-01-03]\n"
                                     "    workdays: []\n";

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

static void
test_reload_recomputes_provisional_deadlines (void **state)
{
    (void) state;
    td_procs_t fx;
    td_procs_setup (&fx, "deadline-recompute", TD_CALENDAR_2026, "2026-12-30T12:00:00+08:00");
    PGconn *conn = fx.conn;
    char old_calendar[512], log[512];
    snprintf (old_calendar, sizeof old_calendar, "%s/calendar-old.yaml", fx.dir);
    snprintf (log, sizeof log, "%s/watcher.log", fx.dir);
    td_write_file (old_calendar, TD_CALENDAR_2026);

    //  case-router's side, with the same (2026-only) calendar.
    td_calendar_use (old_calendar);
    hcp_db_t *db = hcp_db_new (fx.conninfo, "case-router");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    long long first = td_case_create (conn, "2026-12-30");
    hcp_date_t starts_on, due;
    hcp_date_parse ("2026-12-30", &starts_on);
    assert_int_equal (hcp_deadline_open (db, first, "form", starts_on, 5, "working", &due), 0);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM deadline_provisional"
                                        " WHERE case_id = %lld AND due_on = '2027-01-06'",
                                        first),
                      1);

    //  recompute_ms 0: only the start, a calendar change or SIGHUP
    //  recompute — so this test sees which one did.
    const char *env[] = {fx.env_conninfo,
                         fx.env_clock,
                         fx.env_calendar,
                         "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                         "HCP_DEADLINE_WATCHER_RECOMPUTE_MS=0",
                         NULL};
    pid_t pid = td_spawn (env, log);
    //  Operators are told, loudly, in every sweep's log line.
    assert_true (s_log_wait (log, "open deadlines are provisional", 20000));
    assert_true (s_log_wait (log, "count=1", 1000));

    //  The 2027 notice arrives: the file changes, no signal.
    td_write_file (fx.calendar, s_calendar_2027);
    assert_int_equal (hcp_test_wait_int (conn, 1, 20000,
                                         "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                         "   AND due_on = '2027-01-07' AND NOT provisional",
                                         first),
                      1);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM events WHERE type ="
                                        " 'deadline.recomputed' AND key = '%lld'",
                                        first),
                      1);
    assert_int_equal (hcp_test_sql_int (conn,
                                        "SELECT count(*) FROM deadline_actions WHERE case_id ="
                                        " %lld AND action = 'recomputed'"
                                        "   AND previous_due_on = '2027-01-06'"
                                        "   AND due_on = '2027-01-07'"
                                        "   AND at = '2026-12-30 12:00+08'",
                                        first),
                      1);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_provisional"), 0);
    assert_true (s_log_wait (log, "no provisional deadline left", 5000));
    assert_int_equal (kill (pid, 0), 0); //  same process: no restart

    //  A process with an outdated calendar (the old file) opens another
    //  provisional deadline. The watcher's calendar did not change, and
    //  periodic recomputation is off: it stays until SIGHUP.
    long long second = td_case_create (conn, "2026-12-30");
    assert_int_equal (hcp_deadline_open (db, second, "form", starts_on, 5, "working", &due),
                      0);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_provisional"), 1);
    hcp_test_sleep_ms (300); //  ~15 sweeps: a negative check needs some time
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_provisional"), 1);
    assert_int_equal (kill (pid, SIGHUP), 0);
    assert_int_equal (hcp_test_wait_int (conn, 1, 20000,
                                         "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                         "   AND due_on = '2027-01-07' AND NOT provisional",
                                         second),
                      1);
    assert_true (s_log_wait (log, "SIGHUP: recomputing every open deadline", 5000));
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM events"
                                              " WHERE type = 'deadline.recomputed'"),
                      2);

    int status = td_stop (pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    //  A restart recomputes at start, and changes nothing: the dates are
    //  right. (At debug level the pass logs "changed=0".)
    const char *debug_env[] = {fx.env_conninfo,
                               fx.env_clock,
                               fx.env_calendar,
                               "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                               "HCP_DEADLINE_WATCHER_RECOMPUTE_MS=0",
                               "HCP_LOG_LEVEL=debug",
                               NULL};
    pid = td_spawn (debug_env, log);
    assert_true (s_log_wait (log, "changed=0", 20000));
    status = td_stop (pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM events"
                                              " WHERE type = 'deadline.recomputed'"),
                      2);

    hcp_db_destroy (&db);
    td_procs_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_reload_recomputes_provisional_deadlines, td_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
