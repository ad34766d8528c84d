/*  Fault test: kill -9 of hcp-deadline-watcher in the middle of its work,
    then a restart, several times: nothing lost, nothing doubled.

    2,000 deadlines fall due for their reminder at once, then for escalation
    at once; the watcher handles them 5 per transaction, so a kill lands in
    the middle of the work (usually inside a transaction). After each kill,
    before the restart, the history and the outbox must agree row for row
    (the action and its event commit together or not at all); at the end
    each deadline has exactly one reminder and one escalation.
*/
#include "../integration/test_deadline_fixture.h"

#define S_DEADLINES 2000
#define S_KILLS     3

typedef struct {
    PGconn *conn;
    const char *const *env;
    char log[512];
} run_t;

//  The outbox and the history agree: every action row has its event.
static void
s_check_agree (PGconn *conn, const char *action, const char *type)
{
    long long actions = td_count_actions (conn, action);
    long long events = hcp_test_sql_int (conn, "SELECT count(*) FROM events WHERE type = '%s'",
                                         type);
    if (actions != events)
        fail_msg ("%lld '%s' actions but %lld %s events", actions, action, events, type);
    long long distinct = hcp_test_sql_int (
        conn, "SELECT count(DISTINCT deadline_id) FROM deadline_actions WHERE action = '%s'",
        action);
    if (distinct != actions)
        fail_msg ("%lld '%s' actions for %lld deadlines: doubled", actions, action, distinct);
}

//  Starts the watcher, waits until it has done some of the step's work
//  beyond `done`, kills it with SIGKILL, and checks that what committed is
//  consistent. Returns the count at the kill.
static long long
s_kill_mid_work (run_t *run, const char *action, const char *type, long long done)
{
    pid_t pid = td_spawn (run->env, run->log);
    int64_t deadline = hcp_test_now_ms () + 60000;
    long long now = done;
    while (now <= done + 50 && now < S_DEADLINES && hcp_test_now_ms () < deadline) {
        hcp_test_sleep_ms (5);
        now = td_count_actions (run->conn, action);
    }
    td_stop (pid, SIGKILL);
    long long after = td_count_actions (run->conn, action);
    printf ("# %s: %lld done before the start, %lld when killed (of %d)\n", action, done,
            after, S_DEADLINES);
    assert_true (after > done || after == S_DEADLINES);
    s_check_agree (run->conn, action, type);
    return after;
}

static void
s_finish (run_t *run, const char *action, const char *type)
{
    pid_t pid = td_spawn (run->env, run->log);
    assert_int_equal (hcp_test_wait_int (run->conn, S_DEADLINES, 60000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = '%s'",
                                         action),
                      S_DEADLINES);
    int status = td_stop (pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    s_check_agree (run->conn, action, type);
    assert_int_equal (td_count_actions (run->conn, action), S_DEADLINES);
}

static void
test_kill_and_restart_lose_and_double_nothing (void **state)
{
    (void) state;
    td_procs_t fx;
    td_procs_setup (&fx, "deadline-kill", TD_CALENDAR_2026, "2026-02-20T09:00:00+08:00");
    td_calendar_use (fx.calendar);
    PGconn *conn = fx.conn;

    td_cases_create (conn, S_DEADLINES, "2026-02-12", "2026-02-12");
    td_forms_open (fx.conninfo, conn);

    const char *env[] = {fx.env_conninfo,
                         fx.env_clock,
                         fx.env_calendar,
                         "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                         "HCP_DEADLINE_WATCHER_BATCH=5",
                         NULL};
    run_t run = {conn, env, ""};
    snprintf (run.log, sizeof run.log, "%s/watcher.log", fx.dir);

    //  Reminders (due Thu 02-26, reminder Wed 02-25).
    td_write_file (fx.clock, "2026-02-25T09:00:00+08:00");
    long long done = 0;
    for (int i = 0; i < S_KILLS; i++)
        done = s_kill_mid_work (&run, "warned", "deadline.warned", done);
    s_finish (&run, "warned", "deadline.warned");

    //  Escalations.
    td_write_file (fx.clock, "2026-02-27T09:00:00+08:00");
    done = 0;
    for (int i = 0; i < S_KILLS; i++)
        done = s_kill_mid_work (&run, "escalated", "deadline.escalated", done);
    s_finish (&run, "escalated", "deadline.escalated");
    s_check_agree (conn, "overdue", "deadline.overdue");
    assert_int_equal (td_count_actions (conn, "overdue"), S_DEADLINES);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadlines"
                                              " WHERE warned_at IS NOT NULL"
                                              "   AND overdue_at IS NOT NULL"
                                              "   AND escalated_at IS NOT NULL"),
                      S_DEADLINES);
    //  Nothing stamped twice: one reminder per deadline.
    assert_int_equal (td_count_actions (conn, "warned"), S_DEADLINES);

    td_procs_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_kill_and_restart_lose_and_double_nothing, td_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
