/*  test_deadline_fixture — what the deadline tests share (header only,
    static inline; each test is its own binary): the reference 2026 calendar,
    cases made with SQL (case-router is not under test), calendar and clock
    files, and real hcp-deadline-watcher processes that a failed test does
    not leave running.

    Included by tests/integration, tests/fault and tests/unit: from the two
    other folders as "../integration/test_deadline_fixture.h".
*/
#ifndef TEST_DEADLINE_FIXTURE_H_INCLUDED
#define TEST_DEADLINE_FIXTURE_H_INCLUDED

#include "hcp_calendar.h"
#include "hcp_clock.h"
#include "hcp_db.h"
#include "hcp_deadline.h"
#include "hcp_test.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

//  The 2026 holidays and adjusted workdays of reference/calendar-cn.yaml
//  (State Council notice), as YAML list items without the brackets, so
//  that a test can add a day to a copy of the year.
#define TD_2026_HOLIDAYS                                                                      \
    "2026-01-01, 2026-01-02, 2026-01-03, 2026-02-15, 2026-02-16, 2026-02-17, "                \
    "2026-02-18, 2026-02-19, 2026-02-20, 2026-02-21, 2026-02-22, 2026-02-23, "                \
    "2026-04-04, 2026-04-05, 2026-04-06, 2026-05-01, 2026-05-02, 2026-05-03, "                \
    "2026-05-04, 2026-05-05, 2026-06-19, 2026-06-20, 2026-06-21, 2026-09-25, "                \
    "2026-09-26, 2026-09-27, 2026-10-01, 2026-10-02, 2026-10-03, 2026-10-04, "                \
    "2026-10-05, 2026-10-06, 2026-10-07"
#define TD_2026_WORKDAYS                                                                      \
    "2026-01-04, 2026-02-14, 2026-02-28, 2026-05-09, 2026-09-20, 2026-10-10"

//  The year 2026 as an entry of the calendar file's `years:` map.
#define TD_YEAR_2026                                                                          \
    "  2026:\n"                                                                               \
    "    holidays: [" TD_2026_HOLIDAYS "]\n"                                                  \
    "    workdays: [" TD_2026_WORKDAYS "]\n"

//  A calendar file with 2026 only: 2027 dates are provisional.
#define TD_CALENDAR_2026 "years:\n" TD_YEAR_2026

static inline hcp_date_t
td_date (const char *text)
{
    hcp_date_t date;
    assert_int_equal (hcp_date_parse (text, &date), 0);
    return date;
}

static inline int64_t
td_ms (const char *text)
{
    int64_t ms;
    assert_int_equal (hcp_clock_parse (text, &ms), 0);
    return ms;
}

//  Writes text to path. Write and rename: a reader (a running watcher
//  polling its calendar or clock file) never sees half a file.
static inline void
td_write_file (const char *path, const char *text)
{
    char tmp[600];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (rename (tmp, path), 0);
}

//  Makes the calendar file at path this process's calendar, or fails.
static inline void
td_calendar_use (const char *path)
{
    char *error = NULL;
    if (hcp_calendar_use_file (path, &error))
        fail_msg ("calendar: %s", error);
}

//  Writes text as dir/name and makes it this process's calendar.
static inline void
td_calendar_install (const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    td_write_file (path, text);
    td_calendar_use (path);
}

//  A bad rating at 10:00 of rating_day ("YYYY-MM-DD", Shanghai) and its
//  case awaiting the visit. Returns the case id.
static inline long long
td_case_create (PGconn *conn, const char *rating_day)
{
    return hcp_test_sql_int (
        conn,
        "WITH r AS ("
        "  INSERT INTO ratings (rating_id, item_code, channel, stage, rating_count, "
        "rater_type,"
        "                       rated_at, standardization, fingerprint)"
        "  VALUES (gen_random_uuid (), '000119001000', 1, 3, 1, 1, '%s 10:00+08', 5, "
        "'\\x00')"
        "  RETURNING rating_id, item_code, rated_at)"
        " INSERT INTO cases (rating_id, state, item_code, unit_code, rating_day, "
        "opened_at,"
        "                    last_action, last_actor, last_at)"
        " SELECT rating_id, 'awaiting_visit', item_code, 'LUM', '%s', rated_at, 'open', "
        "'test',"
        "        rated_at FROM r RETURNING case_id",
        rating_day, rating_day);
}

//  count bad ratings and their cases in one statement: the even ones rated
//  at 10:00 of even_day, the odd ones at 10:00 of odd_day ("YYYY-MM-DD",
//  Shanghai; the same day twice for one day).
static inline void
td_cases_create (PGconn *conn, int count, const char *even_day, const char *odd_day)
{
    hcp_test_sql_exec (
        conn,
        "WITH r AS ("
        "  INSERT INTO ratings (rating_id, item_code, channel, stage, rating_count, "
        "rater_type,"
        "                       rated_at, standardization, fingerprint)"
        "  SELECT gen_random_uuid (), '000119001000', 1, 3, 1, 1,"
        "         CASE WHEN i %% 2 = 0 THEN '%s 10:00+08'::timestamptz"
        "              ELSE '%s 10:00+08' END, 5, '\\x00'"
        "    FROM generate_series (1, %d) AS i"
        "  RETURNING rating_id, item_code, rated_at)"
        " INSERT INTO cases (rating_id, state, item_code, unit_code, rating_day, "
        "opened_at,"
        "                    last_action, last_actor, last_at)"
        " SELECT rating_id, 'awaiting_visit', item_code, 'LUM',"
        "        (rated_at AT TIME ZONE 'Asia/Shanghai')::date, rated_at, 'open', 'test',"
        "        rated_at FROM r",
        even_day, odd_day, count);
}

//  Opens the form deadline (5 working days from the rating day) of every
//  case in the database in one transaction, as case-router would, with
//  this process's calendar. Returns how many cases there were.
static inline int
td_forms_open (const char *conninfo, PGconn *conn)
{
    hcp_db_t *db = hcp_db_new (conninfo, "case-router");
    assert_int_equal (hcp_db_ensure (db, 5000, NULL), 0);
    PGresult *res = PQexec (conn, "SELECT case_id, rating_day FROM cases ORDER BY case_id");
    int cases = PQntuples (res);
    assert_int_equal (hcp_db_exec (db, "BEGIN"), 0);
    for (int i = 0; i < cases; i++) {
        hcp_date_t rating_day;
        assert_int_equal (hcp_date_parse (PQgetvalue (res, i, 1), &rating_day), 0);
        assert_int_equal (hcp_deadline_open (db, strtoll (PQgetvalue (res, i, 0), NULL, 10),
                                             "form", rating_day, 5, "working", NULL),
                          0);
    }
    assert_int_equal (hcp_db_exec (db, "COMMIT"), 0);
    PQclear (res);
    hcp_db_destroy (&db);
    return cases;
}

static inline long long
td_count_actions (PGconn *conn, const char *action)
{
    return hcp_test_sql_int (conn, "SELECT count(*) FROM deadline_actions WHERE action = '%s'",
                             action);
}

// ---------------------------------------------------------------------------
//  Real hcp-deadline-watcher processes: a database, a private folder with
//  the calendar and clock files the processes read, and their environment.

typedef struct {
    char *conninfo;
    PGconn *conn;
    char *dir;
    char calendar[512]; //  dir/calendar.yaml
    char clock[512];    //  dir/clock (HCP_CLOCK_FILE)
    char env_conninfo[256];
    char env_clock[600];
    char env_calendar[600];
} td_procs_t;

//  Creates the database and folder (both named after name) and writes the
//  calendar and the clock (an ISO 8601 time) files. Does not load the
//  calendar into this process (td_calendar_use does).
static inline void
td_procs_setup (td_procs_t *fx, const char *name, const char *calendar, const char *clock)
{
    memset (fx, 0, sizeof *fx);
    fx->conninfo = hcp_test_db_create (name);
    fx->conn = hcp_test_connect (fx->conninfo);
    fx->dir = hcp_test_tmpdir (name);
    snprintf (fx->calendar, sizeof fx->calendar, "%s/calendar.yaml", fx->dir);
    snprintf (fx->clock, sizeof fx->clock, "%s/clock", fx->dir);
    td_write_file (fx->calendar, calendar);
    td_write_file (fx->clock, clock);
    snprintf (fx->env_conninfo, sizeof fx->env_conninfo, "HCP_DATABASE_CONNINFO=%s",
              fx->conninfo);
    snprintf (fx->env_clock, sizeof fx->env_clock, "HCP_CLOCK_FILE=%s", fx->clock);
    snprintf (fx->env_calendar, sizeof fx->env_calendar, "HCP_CALENDAR_FILE=%s", fx->calendar);
}

static inline void
td_procs_teardown (td_procs_t *fx)
{
    PQfinish (fx->conn);
    hcp_test_db_drop (fx->conninfo);
    hcp_test_shell ("rm -rf '%s'", fx->dir);
    free (fx->dir);
    free (fx->conninfo);
    memset (fx, 0, sizeof *fx);
}

//  Every watcher this test started, so that a failing test (cmocka jumps
//  out of it) does not leave them running: td_teardown kills them.
#define TD_MAX_PIDS 16
static pid_t td_pids[TD_MAX_PIDS];

//  Starts hcp-deadline-watcher with env (NULL-terminated KEY=value list),
//  its output appended to log.
static inline pid_t
td_spawn (const char *const *env, const char *log)
{
    const char *argv[] = {"hcp-deadline-watcher", NULL};
    pid_t pid = hcp_test_spawn ("hcp-deadline-watcher", argv, env, log);
    for (int i = 0; i < TD_MAX_PIDS; i++)
        if (td_pids[i] == 0) {
            td_pids[i] = pid;
            break;
        }
    return pid;
}

//  Stops a watcher with sig and returns its wait status.
static inline int
td_stop (pid_t pid, int sig)
{
    for (int i = 0; i < TD_MAX_PIDS; i++)
        if (td_pids[i] == pid)
            td_pids[i] = 0;
    return hcp_test_stop (pid, sig, 15000);
}

//  cmocka teardown: kills the watchers a failed test left running.
static inline int
td_teardown (void **state)
{
    (void) state;
    for (int i = 0; i < TD_MAX_PIDS; i++)
        if (td_pids[i] > 0) {
            hcp_test_stop (td_pids[i], SIGKILL, 5000);
            td_pids[i] = 0;
        }
    return 0;
}

#endif
