/*  Integration tests: the deadline-watcher's work (services/deadline-watcher/
    deadline_watcher.c) driven in-process with an injected business time:
    reminders once before the due day, overdue + escalation once after it,
    met deadlines never warned, batches, and recomputation after a calendar
    change (a missing year added, a holiday added to an existing year).

    Counts are always checked twice: in deadline_actions and in the events
    outbox, which the watcher writes in the same transaction.
*/
#include "../../services/deadline-watcher/deadline_watcher.h"
#include "test_deadline_fixture.h"

//  The same with 2027 added (New Year's Day a holiday).
static const char *s_calendar_2027 = "years:\n" TD_YEAR_2026 "  2027:\n"
                                     "    holidays: [2027-01-01, 2027-01-02, 2027-01-03]\n"
                                     "    workdays: []\n";

//  2026 with an extra holiday on Wed 2026-02-25 (the ministry amends a year
//  already in force).
static const char *s_calendar_amended = "years:\n"
                                        "  2026:\n"
                                        "    holidays: [" TD_2026_HOLIDAYS ", 2026-02-25]\n"
                                        "    workdays: [" TD_2026_WORKDAYS "]\n";

typedef struct {
    char *conninfo;
    PGconn *conn;
    hcp_db_t *db; //  for hcp_deadline (the case-router's side)
    hcp_db_t *watcher_db;
    hcp_deadline_watcher_t *watcher;
    char *dir;
} fixture_t;

static long long
s_opened (fixture_t *self, const char *rating_day)
{
    long long case_id = td_case_create (self->conn, rating_day);
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date (rating_day),
                                         HCP_DEADLINE_FORM_WORKING_DAYS, "working", NULL),
                      0);
    return case_id;
}

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof *self);
    self->conninfo = hcp_test_db_create ("deadline_watcher");
    self->conn = hcp_test_connect (self->conninfo);
    self->db = hcp_db_new (self->conninfo, "case-router");
    self->watcher_db = hcp_db_new (self->conninfo, "deadline-watcher");
    assert_int_equal (hcp_db_ensure (self->db, 5000, NULL), 0);
    assert_int_equal (hcp_db_ensure (self->watcher_db, 5000, NULL), 0);
    self->dir = hcp_test_tmpdir ("deadline-watcher");
    td_calendar_install (self->dir, "calendar-2026.yaml", TD_CALENDAR_2026);
    hcp_deadline_set_warn_working_days (1);
    //  A small batch, so that every test crosses transaction boundaries.
    hcp_deadline_watcher_options_t options = {2, 1, "GO", "test-watcher", NULL};
    self->watcher = hcp_deadline_watcher_new (self->watcher_db, &options);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    hcp_deadline_watcher_destroy (&self->watcher);
    hcp_db_destroy (&self->watcher_db);
    hcp_db_destroy (&self->db);
    PQfinish (self->conn);
    hcp_test_db_drop (self->conninfo);
    hcp_test_shell ("rm -rf '%s'", self->dir);
    free (self->dir);
    free (self->conninfo);
    free (self);
    hcp_clock_set_ms (0);
    return 0;
}

static long long
s_actions (fixture_t *self, const char *action)
{
    return td_count_actions (self->conn, action);
}

static long long
s_events (fixture_t *self, const char *type)
{
    return hcp_test_sql_int (self->conn, "SELECT count(*) FROM events WHERE type = '%s'",
                             type);
}

static void
s_sweep (fixture_t *self, const char *at, hcp_deadline_watcher_stats_t *stats)
{
    assert_int_equal (hcp_deadline_watcher_sweep (self->watcher, td_ms (at), stats), 0);
}

static void
test_warned_once_then_overdue_and_escalated_once (void **state)
{
    fixture_t *self = *state;
    //  Form due Thu 2026-02-26 (24:00), reminder from Wed 02-25 00:00.
    long long case_id = s_opened (self, "2026-02-12");
    hcp_deadline_watcher_stats_t stats = {0};
    s_sweep (self, "2026-02-24T23:59:59+08:00", &stats);
    assert_int_equal (stats.warned + stats.overdue, 0);
    s_sweep (self, "2026-02-25T00:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 1);
    for (int i = 0; i < 3; i++)
        s_sweep (self, "2026-02-26T23:59:59+08:00", &stats);
    assert_int_equal (stats.warned, 1);
    assert_int_equal (stats.overdue, 0);
    assert_int_equal (s_actions (self, "warned"), 1);
    assert_int_equal (s_events (self, "deadline.warned"), 1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM events WHERE type ="
                                        " 'deadline.warned' AND key = '%lld'",
                                        case_id),
                      1);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM deadlines"
                                                    " WHERE warned_at = '2026-02-25 00:00+08'"
                                                    "   AND overdue_at IS NULL"),
                      1);
    //  24:00 of the due day: overdue and escalated, once.
    s_sweep (self, "2026-02-27T00:00:00+08:00", &stats);
    for (int i = 0; i < 3; i++)
        s_sweep (self, "2026-03-10T12:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 1);
    assert_int_equal (stats.warned, 1);
    assert_int_equal (s_actions (self, "overdue"), 1);
    assert_int_equal (s_actions (self, "escalated"), 1);
    assert_int_equal (s_events (self, "deadline.overdue"), 1);
    assert_int_equal (s_events (self, "deadline.escalated"), 1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_escalations"
                                        " WHERE case_id = %lld AND escalated_to = 'GO'"
                                        "   AND escalated_at = '2026-02-27 00:00+08'"
                                        "   AND actor = 'test-watcher'"
                                        "   AND deadline_state = 'open'",
                                        case_id),
                      1);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadline_status_at ('2026-03-10')"
                          " WHERE status = 'overdue' AND escalated_at IS NOT NULL"),
        1);
    //  Met late: it stays on record as escalated, and leaves the status.
    assert_int_equal (hcp_deadline_meet (self->db, case_id, "form", td_ms ("2026-03-11")), 0);
    s_sweep (self, "2026-03-12T00:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 1);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM deadline_escalations"
                                                    " WHERE deadline_state = 'met'"),
                      1);
}

static void
test_met_deadlines_are_never_warned (void **state)
{
    fixture_t *self = *state;
    long long early = s_opened (self, "2026-02-12");
    long long warned = s_opened (self, "2026-02-12");
    //  Met before its reminder day: never warned, never overdue.
    assert_int_equal (
        hcp_deadline_meet (self->db, early, "form", td_ms ("2026-02-24T10:00:00Z")), 0);
    hcp_deadline_watcher_stats_t stats = {0};
    s_sweep (self, "2026-02-25T09:00:00+08:00", &stats);
    //  Met after the reminder, before the due time: never overdue.
    assert_int_equal (
        hcp_deadline_meet (self->db, warned, "form", td_ms ("2026-02-26T17:00:00+08:00")), 0);
    s_sweep (self, "2026-02-27T09:00:00+08:00", &stats);
    s_sweep (self, "2026-04-01T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 1);
    assert_int_equal (stats.overdue, 0);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadline_actions WHERE case_id ="
                          " %lld AND action IN ('warned', 'overdue', 'escalated')",
                          early),
        0);
    assert_int_equal (
        hcp_test_sql_int (self->conn, "SELECT count(*) FROM events WHERE key = '%lld'", early),
        0);
    assert_int_equal (s_events (self, "deadline.warned"), 1);
    assert_int_equal (s_events (self, "deadline.overdue"), 0);
    //  A cancelled deadline neither.
    long long cancelled = s_opened (self, "2026-09-29");
    assert_int_equal (hcp_deadline_cancel (self->db, cancelled, NULL, td_ms ("2026-09-30")),
                      0);
    s_sweep (self, "2026-12-01T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned + stats.overdue, 1);
}

static void
test_first_seen_overdue_is_escalated_not_warned (void **state)
{
    fixture_t *self = *state;
    //  The watcher was down for a week: the deadline is past both times.
    s_opened (self, "2026-02-12");
    hcp_deadline_watcher_stats_t stats = {0};
    s_sweep (self, "2026-03-05T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 0);
    assert_int_equal (stats.overdue, 1);
    assert_int_equal (s_events (self, "deadline.warned"), 0);
    assert_int_equal (s_events (self, "deadline.escalated"), 1);
}

static void
test_batches_handle_everything_once (void **state)
{
    fixture_t *self = *state;
    //  25 deadlines, batches of 2: 13 transactions per step.
    for (int i = 0; i < 25; i++)
        s_opened (self, "2026-02-12");
    hcp_deadline_watcher_stats_t stats = {0};
    s_sweep (self, "2026-02-25T08:00:00+08:00", &stats);
    s_sweep (self, "2026-02-25T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 25);
    s_sweep (self, "2026-02-27T08:00:00+08:00", &stats);
    s_sweep (self, "2026-02-28T08:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 25);
    assert_int_equal (s_actions (self, "warned"), 25);
    assert_int_equal (s_events (self, "deadline.warned"), 25);
    assert_int_equal (s_actions (self, "escalated"), 25);
    assert_int_equal (s_events (self, "deadline.escalated"), 25);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(DISTINCT deadline_id) FROM deadline_actions"
                          " WHERE action = 'overdue'"),
        25);
}

static void
test_recompute_when_the_missing_year_arrives (void **state)
{
    fixture_t *self = *state;
    //  Wed 2026-12-30 + 5 working days with 2027 missing: 2027-01-06,
    //  provisional (2027-01-01 counted as a Friday working day).
    long long case_id = s_opened (self, "2026-12-30");
    //  A natural deadline is exact and stays as it is.
    long long natural = td_case_create (self->conn, "2026-12-30");
    assert_int_equal (hcp_deadline_open (self->db, natural, "answer", td_date ("2026-12-30"),
                                         7, "natural", NULL),
                      0);
    assert_int_equal (
        hcp_test_sql_int (self->conn, "SELECT count(*) FROM deadline_provisional"), 1);
    hcp_deadline_watcher_stats_t stats = {0};
    //  Same calendar: nothing changes.
    assert_int_equal (hcp_deadline_watcher_recompute (self->watcher, hcp_calendar_current (),
                                                      td_ms ("2026-12-30T12:00:00+08:00"),
                                                      true, &stats),
                      0);
    assert_int_equal (stats.examined, 2);
    assert_int_equal (stats.recomputed, 0);
    assert_int_equal (stats.provisional, 1);
    long provisional = 0;
    char first_due[11];
    assert_int_equal (
        hcp_deadline_watcher_provisional (self->watcher, &provisional, first_due), 0);
    assert_int_equal (provisional, 1);
    assert_string_equal (first_due, "2027-01-06");

    //  The 2027 notice arrives: 01-01 .. 01-03 holidays. Now Thu 12-31 (1),
    //  Mon 01-04 (2), 01-05 (3), 01-06 (4), Thu 01-07 (5): due 2027-01-07,
    //  reminder Wed 01-06 (the old one was Tue 01-05).
    td_calendar_install (self->dir, "calendar-2027.yaml", s_calendar_2027);
    memset (&stats, 0, sizeof stats);
    assert_int_equal (hcp_deadline_watcher_recompute (self->watcher, hcp_calendar_current (),
                                                      td_ms ("2026-12-30T12:00:00+08:00"),
                                                      true, &stats),
                      0);
    assert_int_equal (stats.recomputed, 1);
    assert_int_equal (stats.provisional, 0);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                          "   AND due_on = '2027-01-07' AND warn_on = '2027-01-06'"
                          "   AND due_at = '2027-01-08 00:00+08'"
                          "   AND NOT provisional AND recomputed = 1",
                          case_id),
        1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_actions WHERE case_id ="
                                        " %lld AND action = 'recomputed'"
                                        "   AND previous_due_on = '2027-01-06'"
                                        "   AND due_on = '2027-01-07' AND NOT provisional",
                                        case_id),
                      1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM events WHERE type ="
                                        " 'deadline.recomputed' AND key = '%lld'",
                                        case_id),
                      1);
    assert_int_equal (
        hcp_test_sql_int (self->conn, "SELECT count(*) FROM deadline_provisional"), 0);
    //  Again with the same calendar: idempotent, no second event.
    memset (&stats, 0, sizeof stats);
    assert_int_equal (hcp_deadline_watcher_recompute (self->watcher, hcp_calendar_current (),
                                                      td_ms ("2026-12-30T12:00:00+08:00"),
                                                      false, &stats),
                      0);
    assert_int_equal (stats.recomputed, 0);
    assert_int_equal (s_events (self, "deadline.recomputed"), 1);
}

static void
test_recompute_when_a_holiday_is_added_to_a_known_year (void **state)
{
    fixture_t *self = *state;
    //  Due Thu 02-26, reminder Wed 02-25 (not provisional).
    long long warned = s_opened (self, "2026-02-12");
    //  An extended ledger deadline keeps its chosen date.
    long long ledger = td_case_create (self->conn, "2026-02-12");
    assert_int_equal (hcp_deadline_open (self->db, ledger, "ledger", td_date ("2026-02-20"), 0,
                                         "fixed", NULL),
                      0);
    assert_int_equal (hcp_deadline_extend (self->db, ledger, "ledger", td_date ("2026-02-27")),
                      0);
    hcp_deadline_watcher_stats_t stats = {0};
    s_sweep (self, "2026-02-24T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 0);

    //  The ministry adds Wed 02-25 as a holiday. The form: 02-13 (1),
    //  02-14 (2), 02-24 (3), 02-26 (4), 02-27 (5) → Fri 02-27, reminder
    //  Thu 02-26. The ledger stays due 02-27; its reminder moves from
    //  Thu 02-26 (unchanged: 1 working day before 02-27 is still 02-26).
    td_calendar_install (self->dir, "calendar-amended.yaml", s_calendar_amended);
    assert_int_equal (hcp_deadline_watcher_recompute (self->watcher, hcp_calendar_current (),
                                                      td_ms ("2026-02-24T09:00:00+08:00"),
                                                      true, &stats),
                      0);
    assert_int_equal (stats.recomputed, 1);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                          "   AND due_on = '2026-02-27' AND warn_on = '2026-02-26'",
                          warned),
        1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND due_on = '2026-02-27' AND recomputed = 0",
                                        ledger),
                      1);
    //  The old reminder day passes quietly; the new one warns.
    s_sweep (self, "2026-02-25T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 0);
    s_sweep (self, "2026-02-26T09:00:00+08:00", &stats);
    assert_int_equal (stats.warned, 2);
    s_sweep (self, "2026-02-27T23:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 0);
    s_sweep (self, "2026-02-28T00:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 2);
}

static void
test_recompute_after_escalation_moves_due_into_future (void **state)
{
    fixture_t *self = *state;
    //  Escalated at 02-27 00:00 (due 02-26); then the calendar gains a
    //  holiday on 02-25, moving the due date to 02-27 — which has not
    //  ended yet: the deadline is running again, and will be escalated
    //  again if missed. The first escalation stays in deadline_actions.
    s_opened (self, "2026-02-12");
    hcp_deadline_watcher_stats_t stats = {0};
    s_sweep (self, "2026-02-27T00:00:01+08:00", &stats);
    assert_int_equal (stats.overdue, 1);
    td_calendar_install (self->dir, "calendar-amended.yaml", s_calendar_amended);
    assert_int_equal (hcp_deadline_watcher_recompute (self->watcher, hcp_calendar_current (),
                                                      td_ms ("2026-02-27T08:00:00+08:00"),
                                                      false, &stats),
                      0);
    assert_int_equal (stats.recomputed, 1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE due_on ="
                                        " '2026-02-27' AND overdue_at IS NULL"
                                        "   AND escalated_at IS NULL"),
                      1);
    s_sweep (self, "2026-02-27T09:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 1);
    s_sweep (self, "2026-02-28T00:00:00+08:00", &stats);
    assert_int_equal (stats.overdue, 2);
    assert_int_equal (s_actions (self, "escalated"), 2);
    assert_int_equal (s_events (self, "deadline.escalated"), 2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_warned_once_then_overdue_and_escalated_once,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_met_deadlines_are_never_warned, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_first_seen_overdue_is_escalated_not_warned,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_batches_handle_everything_once, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_recompute_when_the_missing_year_arrives, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (
            test_recompute_when_a_holiday_is_added_to_a_known_year, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_recompute_after_escalation_moves_due_into_future,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
