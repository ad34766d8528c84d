/*  Integration test: two hcp-deadline-watcher processes over one database
    never warn or escalate a deadline twice.

    Both run the real binary with a fast sweep (20 ms) and small batches, so
    they race on every step; the business clock is a file (HCP_CLOCK_FILE)
    that the test moves forward day by day. Afterwards every deadline has
    exactly one reminder, one overdue mark and one escalation — counted in
    deadline_actions and, separately, in the events outbox.
*/
#include "test_deadline_fixture.h"

//  Half the deadlines are due Thu 2026-02-26 (from 02-12), half Fri 02-27
//  (from 02-13: 02-14 (1), 02-24 (2), 02-25 (3), 02-26 (4), 02-27 (5)).
#define S_HALF 150

static void
test_two_watchers_never_double (void **state)
{
    (void) state;
    td_procs_t fx;
    td_procs_setup (&fx, "deadline-two", TD_CALENDAR_2026, "2026-02-20T09:00:00+08:00");
    td_calendar_use (fx.calendar);
    PGconn *conn = fx.conn;
    char log[2][512];

    //  The cases and their form deadlines, as case-router would open them.
    td_cases_create (conn, 2 * S_HALF, "2026-02-12", "2026-02-13");
    assert_int_equal (td_forms_open (fx.conninfo, conn), 2 * S_HALF);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadlines"
                                              " WHERE due_on = '2026-02-26'"),
                      S_HALF);

    const char *env[] = {fx.env_conninfo,
                         fx.env_clock,
                         fx.env_calendar,
                         "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                         "HCP_DEADLINE_WATCHER_BATCH=7",
                         NULL};
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        snprintf (log[i], sizeof log[i], "%s/watcher-%d.log", fx.dir, i);
        pid[i] = td_spawn (env, log[i]);
    }

    //  Day by day. Each wait ends at the exact figure; the counts are
    //  checked again at the end, after both instances swept many more times.
    td_write_file (fx.clock, "2026-02-25T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'warned'"),
                      S_HALF);
    td_write_file (fx.clock, "2026-02-26T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, 2 * S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'warned'"),
                      2 * S_HALF);
    td_write_file (fx.clock, "2026-02-27T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'escalated'"),
                      S_HALF);
    td_write_file (fx.clock, "2026-03-02T09:00:00+08:00");
    assert_int_equal (hcp_test_wait_int (conn, 2 * S_HALF, 30000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = 'escalated'"),
                      2 * S_HALF);
    //  A bounded pause for a negative check: ~75 more sweeps of each
    //  instance, in which a double would show.
    hcp_test_sleep_ms (1500);

    for (int i = 0; i < 2; i++) {
        int status = td_stop (pid[i], SIGTERM);
        assert_true (WIFEXITED (status));
        assert_int_equal (WEXITSTATUS (status), 0);
    }
    assert_int_equal (td_count_actions (conn, "warned"), 2 * S_HALF);
    assert_int_equal (td_count_actions (conn, "overdue"), 2 * S_HALF);
    assert_int_equal (td_count_actions (conn, "escalated"), 2 * S_HALF);
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
    long long workers = hcp_test_sql_int (conn, "SELECT count(DISTINCT actor)"
                                                " FROM deadline_actions"
                                                " WHERE action IN ('warned', 'escalated')");
    printf ("# instances that did work: %lld of 2\n", workers);
    assert_true (workers >= 1 && workers <= 2);

    td_procs_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_two_watchers_never_double, td_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
