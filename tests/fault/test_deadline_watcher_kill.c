/*  Fault test: kill -9 of hcp-deadline-watcher in the middle of its work,
    then a restart, several times: nothing lost, nothing doubled.

    2,000 deadlines fall due for their reminder at once, then for escalation
    at once; the watcher handles them 5 per transaction, so a kill lands in
    the middle of the work (usually inside a transaction). After each kill,
    before the restart, the history and the outbox must agree row for row
    (the action and its event commit together or not at all); at the end
    each deadline has exactly one reminder and one escalation.
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

#define S_DEADLINES 2000
#define S_KILLS     3

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
    char tmp[600];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (rename (tmp, path), 0);
}

typedef struct {
    PGconn *conn;
    const char *const *env;
    char log[512];
} run_t;

static long long
s_count (PGconn *conn, const char *action)
{
    return hcp_test_sql_int (
        conn, "SELECT count(*) FROM deadline_actions WHERE action = '%s'", action);
}

//  The outbox and the history agree: every action row has its event.
static void
s_check_agree (PGconn *conn, const char *action, const char *type)
{
    long long actions = s_count (conn, action);
    long long events =
        hcp_test_sql_int (conn, "SELECT count(*) FROM events WHERE type = '%s'", type);
    if (actions != events)
        fail_msg ("%lld '%s' actions but %lld %s events", actions, action, events, type);
    long long distinct = hcp_test_sql_int (
        conn,
        "SELECT count(DISTINCT deadline_id) FROM deadline_actions WHERE action = '%s'",
        action);
    if (distinct != actions)
        fail_msg ("%lld '%s' actions for %lld deadlines: doubled", actions, action,
                  distinct);
}

//  Starts the watcher, waits until it has done some of the step's work
//  beyond `done`, kills it with SIGKILL, and checks that what committed is
//  consistent. Returns the count at the kill.
static long long
s_kill_mid_work (run_t *run, const char *action, const char *type, long long done)
{
    const char *argv[] = {"hcp-deadline-watcher", NULL};
    pid_t pid = s_spawn (argv, run->env, run->log);
    int64_t deadline = hcp_test_now_ms () + 60000;
    long long now = done;
    while (now <= done + 50 && now < S_DEADLINES && hcp_test_now_ms () < deadline) {
        hcp_test_sleep_ms (5);
        now = s_count (run->conn, action);
    }
    s_stop (pid, SIGKILL);
    long long after = s_count (run->conn, action);
    printf ("# %s: %lld done before the start, %lld when killed (of %d)\n", action, done,
            after, S_DEADLINES);
    assert_true (after > done || after == S_DEADLINES);
    s_check_agree (run->conn, action, type);
    return after;
}

static void
s_finish (run_t *run, const char *action, const char *type)
{
    const char *argv[] = {"hcp-deadline-watcher", NULL};
    pid_t pid = s_spawn (argv, run->env, run->log);
    assert_int_equal (hcp_test_wait_int (run->conn, S_DEADLINES, 60000,
                                         "SELECT count(*) FROM deadline_actions"
                                         " WHERE action = '%s'",
                                         action),
                      S_DEADLINES);
    int status = s_stop (pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    s_check_agree (run->conn, action, type);
    assert_int_equal (s_count (run->conn, action), S_DEADLINES);
}

static void
test_kill_and_restart_lose_and_double_nothing (void **state)
{
    (void) state;
    char *conninfo = hcp_test_db_create ("deadline_kill");
    PGconn *conn = hcp_test_connect (conninfo);
    char *dir = hcp_test_tmpdir ("deadline-kill");
    char calendar[512], clock[512];
    snprintf (calendar, sizeof calendar, "%s/calendar.yaml", dir);
    snprintf (clock, sizeof clock, "%s/clock", dir);
    s_write_file (calendar, s_calendar_2026);
    s_write_file (clock, "2026-02-20T09:00:00+08:00");
    char *error = NULL;
    if (hcp_calendar_use_file (calendar, &error))
        fail_msg ("calendar: %s", error);

    hcp_test_sql_exec (conn,
                       "WITH r AS ("
                       "  INSERT INTO ratings (rating_id, item_code, channel, stage, "
                       "rating_count, rater_type,"
                       "                       rated_at, standardization, fingerprint)"
                       "  SELECT gen_random_uuid (), '000119001000', 1, 3, 1, 1, "
                       "'2026-02-12 10:00+08', 5,"
                       "         '\\x00' FROM generate_series (1, %d)"
                       "  RETURNING rating_id, item_code, rated_at)"
                       " INSERT INTO cases (rating_id, state, item_code, unit_code, "
                       "rating_day, opened_at,"
                       "                    last_action, last_actor, last_at)"
                       " SELECT rating_id, 'awaiting_visit', item_code, 'LUM', "
                       "'2026-02-12', rated_at, 'open',"
                       "        'test', rated_at FROM r",
                       S_DEADLINES);
    hcp_db_t *db = hcp_db_new (conninfo, "case-router");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    PGresult *res = PQexec (conn, "SELECT case_id FROM cases ORDER BY case_id");
    hcp_date_t rating_day;
    hcp_date_parse ("2026-02-12", &rating_day);
    assert_int_equal (hcp_db_exec (db, "BEGIN"), 0);
    for (int i = 0; i < PQntuples (res); i++)
        assert_int_equal (hcp_deadline_open (db,
                                             strtoll (PQgetvalue (res, i, 0), NULL, 10),
                                             "form", rating_day, 5, "working", NULL),
                          0);
    assert_int_equal (hcp_db_exec (db, "COMMIT"), 0);
    PQclear (res);
    hcp_db_destroy (&db);

    char env_conninfo[256], env_clock[600], env_calendar[600];
    snprintf (env_conninfo, sizeof env_conninfo, "HCP_DATABASE_CONNINFO=%s", conninfo);
    snprintf (env_clock, sizeof env_clock, "HCP_CLOCK_FILE=%s", clock);
    snprintf (env_calendar, sizeof env_calendar, "HCP_CALENDAR_FILE=%s", calendar);
    const char *env[] = {env_conninfo,
                         env_clock,
                         env_calendar,
                         "HCP_DEADLINE_WATCHER_SWEEP_MS=20",
                         "HCP_DEADLINE_WATCHER_BATCH=5",
                         NULL};
    run_t run = {conn, env, ""};
    snprintf (run.log, sizeof run.log, "%s/watcher.log", dir);

    //  Reminders (due Thu 02-26, reminder Wed 02-25).
    s_write_file (clock, "2026-02-25T09:00:00+08:00");
    long long done = 0;
    for (int i = 0; i < S_KILLS; i++)
        done = s_kill_mid_work (&run, "warned", "deadline.warned", done);
    s_finish (&run, "warned", "deadline.warned");

    //  Escalations.
    s_write_file (clock, "2026-02-27T09:00:00+08:00");
    done = 0;
    for (int i = 0; i < S_KILLS; i++)
        done = s_kill_mid_work (&run, "escalated", "deadline.escalated", done);
    s_finish (&run, "escalated", "deadline.escalated");
    s_check_agree (conn, "overdue", "deadline.overdue");
    assert_int_equal (s_count (conn, "overdue"), S_DEADLINES);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM deadlines"
                                              " WHERE warned_at IS NOT NULL"
                                              "   AND overdue_at IS NOT NULL"
                                              "   AND escalated_at IS NOT NULL"),
                      S_DEADLINES);
    //  Nothing stamped twice: one reminder per deadline.
    assert_int_equal (s_count (conn, "warned"), S_DEADLINES);

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
        cmocka_unit_test_teardown (test_kill_and_restart_lose_and_double_nothing,
                                   s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
