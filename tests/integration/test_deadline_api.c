/*  Integration tests: hcp_deadline_open / meet / cancel / extend against a
    real PostgreSQL, the history they write (deadline_actions), the rules the
    database enforces itself, and the views deadline_status_at /
    deadline_status / deadline_provisional.

    The calendar is a temporary file with 2026 only (copied from
    reference/calendar-cn.yaml): 2027 is missing, so 2027 dates are
    provisional. Expected dates are counted by hand in
    tests/unit/test_deadline_compute.c.
*/
#include "test_deadline_fixture.h"

typedef struct {
    char *conninfo;
    PGconn *conn; //  for checks
    hcp_db_t *db; //  for the module under test
    char *dir;
} fixture_t;

static char *
s_format (hcp_date_t date)
{
    char buf[11];
    return strdup (hcp_date_format (date, buf));
}

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof *self);
    self->conninfo = hcp_test_db_create ("deadline_api");
    self->conn = hcp_test_connect (self->conninfo);
    self->db = hcp_db_new (self->conninfo, "test-deadline-api");
    assert_int_equal (hcp_db_ensure (self->db, 5000, NULL), 0);
    self->dir = hcp_test_tmpdir ("deadline-api");
    td_calendar_install (self->dir, "calendar.yaml", TD_CALENDAR_2026);
    hcp_deadline_set_warn_working_days (1);
    hcp_clock_set_ms (0);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
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

static void
test_open_computes_dates_and_records (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    int64_t opened_ms;
    hcp_clock_parse ("2026-02-12T10:00:00+08:00", &opened_ms);
    hcp_clock_set_ms (opened_ms);
    hcp_date_t due = 0;
    //  Form: 5 working days after Thu 2026-02-12, across the Spring
    //  Festival, counting the adjusted Saturday 02-14 → Thu 2026-02-26.
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"),
                                         HCP_DEADLINE_FORM_WORKING_DAYS, "working", &due),
                      0);
    char *text = s_format (due);
    assert_string_equal (text, "2026-02-26");
    free (text);
    //  due_at is 24:00 Asia/Shanghai of due_on; the reminder at 00:00 of
    //  the working day before.
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND kind = 'form' AND state = 'open'"
                                        "   AND due_on = '2026-02-26'"
                                        "   AND due_at = '2026-02-27 00:00+08'"
                                        "   AND warn_on = '2026-02-25'"
                                        "   AND warn_at = '2026-02-25 00:00+08'"
                                        "   AND NOT provisional AND period = 5"
                                        "   AND day_kind = 'working'"
                                        "   AND opened_at = '2026-02-12 10:00+08'",
                                        case_id),
                      1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_actions"
                                        " WHERE case_id = %lld AND action = 'opened'"
                                        "   AND due_on = '2026-02-26'"
                                        "   AND at = '2026-02-12 10:00+08'"
                                        "   AND actor = 'test-deadline-api'",
                                        case_id),
                      1);
    //  The answer deadline, 10 working days from the same day → 03-04.
    assert_int_equal (hcp_deadline_open (self->db, case_id, "answer", td_date ("2026-02-12"),
                                         HCP_DEADLINE_ANSWER_WORKING_DAYS, "working", &due),
                      0);
    text = s_format (due);
    assert_string_equal (text, "2026-03-04");
    free (text);
}

static void
test_open_is_idempotent (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    hcp_date_t due = 0;
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 5,
                                         "working", &due),
                      0);
    //  Opening again, even with other figures, leaves the open one as it
    //  is and answers its due date.
    hcp_date_t again = 0;
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-24"), 5,
                                         "working", &again),
                      0);
    assert_int_equal (again, due);
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      0);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld",
                                        case_id),
                      1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_actions"
                                        " WHERE case_id = %lld AND action = 'opened'",
                                        case_id),
                      1);
    //  Inside the caller's transaction: a rollback leaves nothing.
    long long other = td_case_create (self->conn, "2026-02-12");
    assert_int_equal (hcp_db_exec (self->db, "BEGIN"), 0);
    assert_int_equal (hcp_deadline_open (self->db, other, "form", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      0);
    assert_int_equal (hcp_db_exec (self->db, "ROLLBACK"), 0);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld",
                                        other),
                      0);
    //  The database refuses a second open deadline of a kind by itself.
    PGresult *res = PQexec (self->conn, "INSERT INTO deadlines (case_id, kind, starts_on,"
                                        " period, day_kind, due_on, warn_on, opened_at)"
                                        " SELECT case_id, kind, starts_on, period, day_kind,"
                                        " due_on, warn_on, opened_at FROM deadlines LIMIT 1");
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    assert_non_null (strstr (PQresultErrorMessage (res), "deadlines_one_open_per_kind"));
    PQclear (res);
}

static void
test_meet_and_cancel (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      0);
    int64_t met_ms;
    hcp_clock_parse ("2026-02-24T15:30:00+08:00", &met_ms);
    assert_int_equal (hcp_deadline_meet (self->db, case_id, "form", met_ms), 0);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                          "   AND state = 'met' AND met_at = '2026-02-24 15:30+08'",
                          case_id),
        1);
    //  Nothing open of the kind: 0 and nothing done.
    assert_int_equal (hcp_deadline_meet (self->db, case_id, "form", met_ms + 1000), 0);
    assert_int_equal (hcp_deadline_meet (self->db, case_id, "answer", met_ms), 0);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_actions"
                                        " WHERE case_id = %lld AND action = 'met'",
                                        case_id),
                      1);
    //  A met deadline is history: the database refuses to change it.
    PGresult *res = PQexec (self->conn, "UPDATE deadlines SET due_on = due_on + 1"
                                        " WHERE state = 'met'");
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    assert_non_null (strstr (PQresultErrorMessage (res), "can no longer change"));
    PQclear (res);

    //  Cancel one kind, then the rest.
    assert_int_equal (hcp_deadline_open (self->db, case_id, "answer", td_date ("2026-02-24"),
                                         10, "working", NULL),
                      0);
    assert_int_equal (hcp_deadline_open (self->db, case_id, "ledger", td_date ("2026-04-30"),
                                         0, "fixed", NULL),
                      0);
    assert_int_equal (hcp_deadline_cancel (self->db, case_id, "answer", met_ms), 0);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND state = 'open'",
                                        case_id),
                      1);
    assert_int_equal (hcp_deadline_cancel (self->db, case_id, NULL, met_ms), 0);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND state = 'cancelled'"
                                        "   AND cancelled_at = '2026-02-24 15:30+08'",
                                        case_id),
                      2);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_actions"
                                        " WHERE case_id = %lld AND action = 'cancelled'",
                                        case_id),
                      2);
    //  After a cancel, a new deadline of the kind can be opened (e.g. a
    //  transfer restarts the unit's 10 working days).
    assert_int_equal (hcp_deadline_open (self->db, case_id, "answer", td_date ("2026-02-26"),
                                         10, "working", NULL),
                      0);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND kind = 'answer'",
                                        case_id),
                      2);
    //  History is append-only.
    res = PQexec (self->conn, "DELETE FROM deadline_actions");
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    PQclear (res);
    res = PQexec (self->conn, "DELETE FROM deadlines");
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    PQclear (res);
}

static void
test_extend_ledger_once (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    hcp_date_t due = 0;
    //  A ledger date set by the unit: Tue 2026-03-31, reminder Mon 03-30.
    assert_int_equal (hcp_deadline_open (self->db, case_id, "ledger", td_date ("2026-03-31"),
                                         0, "fixed", &due),
                      0);
    assert_int_equal (due, td_date ("2026-03-31"));
    //  Pretend it was warned and missed; the extension resets that.
    hcp_test_sql_exec (
        self->conn,
        "UPDATE deadlines SET warned_at = '2026-03-30 00:00+08',"
        " overdue_at = '2026-04-01 00:00+08', escalated_at = '2026-04-01 00:00+08',"
        " escalated_to = 'GO' WHERE case_id = %lld",
        case_id);
    assert_int_equal (
        hcp_deadline_extend (self->db, case_id, "ledger", td_date ("2026-04-30")), 0);
    //  Thu 04-30, reminder Wed 04-29.
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND due_on = '2026-04-30' AND extended_to = due_on"
                                        "   AND warn_on = '2026-04-29' AND extended = 1"
                                        "   AND warned_at IS NULL AND overdue_at IS NULL"
                                        "   AND escalated_at IS NULL AND state = 'open'",
                                        case_id),
                      1);
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_actions"
                                        " WHERE case_id = %lld AND action = 'extended'"
                                        "   AND due_on = '2026-04-30'"
                                        "   AND previous_due_on = '2026-03-31'",
                                        case_id),
                      1);
    //  A second extension of a ledger deadline: refused by the database.
    assert_int_equal (
        hcp_deadline_extend (self->db, case_id, "ledger", td_date ("2026-05-29")), -1);
    assert_non_null (strstr (hcp_db_error (self->db), "deadlines_one_ledger_extension"));
    //  Nothing open to extend: -1 naming the case and kind.
    assert_int_equal (
        hcp_deadline_extend (self->db, case_id, "answer", td_date ("2026-05-29")), -1);
    assert_non_null (strstr (hcp_db_error (self->db), "no open answer deadline"));
    assert_string_equal (hcp_db_sqlstate (self->db), "HD003");
}

static void
test_provisional_in_2027 (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-12-30");
    hcp_date_t due = 0;
    //  Wed 2026-12-30 + 5 working days runs into 2027, which this calendar
    //  lacks: Monday-Friday → 2027-01-06, provisional.
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-12-30"), 5,
                                         "working", &due),
                      0);
    assert_int_equal (due, td_date ("2027-01-06"));
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_provisional"
                                        " WHERE case_id = %lld AND due_on = '2027-01-06'"
                                        "   AND due_year = 2027",
                                        case_id),
                      1);
    //  Natural and fixed dates are exact, never provisional.
    long long other = td_case_create (self->conn, "2026-12-30");
    assert_int_equal (hcp_deadline_open (self->db, other, "ledger", td_date ("2027-02-01"), 0,
                                         "fixed", NULL),
                      0);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadline_provisional WHERE case_id = %lld",
                          other),
        0);
}

static void
test_status_at_an_instant (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      0);
    const char *at[] = {"2026-02-24 23:59:59+08", "2026-02-25 00:00+08",
                        "2026-02-26 23:59:59.999+08", "2026-02-27 00:00+08"};
    const char *expected[] = {"due", "due_soon", "due_soon", "overdue"};
    for (int i = 0; i < 4; i++) {
        char *status = hcp_test_sql_text (self->conn,
                                          "SELECT status FROM deadline_status_at ('%s')"
                                          " WHERE case_id = %lld",
                                          at[i], case_id);
        assert_non_null (status);
        if (strcmp (status, expected[i]))
            fail_msg ("at %s: %s, expected %s", at[i], status, expected[i]);
        free (status);
    }
    //  The display view (database clock) shows every open deadline with
    //  its case's unit.
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadline_status"
                                        " WHERE case_id = %lld AND unit_code = 'LUM'"
                                        "   AND case_state = 'awaiting_visit'",
                                        case_id),
                      1);
    //  A met deadline leaves the status views.
    assert_int_equal (hcp_deadline_meet (self->db, case_id, "form", 1), 0);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM deadline_status_at ('2026-03-01')"
                          " WHERE case_id = %lld",
                          case_id),
        0);
}

static void
test_bad_arguments_are_refused_with_a_reason (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    assert_int_equal (hcp_deadline_open (self->db, case_id, "lunch", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      -1);
    assert_non_null (strstr (hcp_db_error (self->db), "deadlines_kind_check"));
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 0,
                                         "working", NULL),
                      -1);
    assert_non_null (strstr (hcp_db_error (self->db), "deadlines_period_needed"));
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 5,
                                         "weekly", NULL),
                      -1);
    assert_non_null (strstr (hcp_db_error (self->db), "day_kind"));
    //  Unknown case: the foreign key.
    assert_int_equal (hcp_deadline_open (self->db, 999999, "form", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      -1);
    assert_non_null (strstr (hcp_db_error (self->db), "foreign key"));
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld",
                                        case_id),
                      0);
}

static void
test_warn_distance_is_configurable (void **state)
{
    fixture_t *self = *state;
    long long case_id = td_case_create (self->conn, "2026-02-12");
    hcp_deadline_set_warn_working_days (2);
    assert_int_equal (hcp_deadline_open (self->db, case_id, "form", td_date ("2026-02-12"), 5,
                                         "working", NULL),
                      0);
    hcp_deadline_set_warn_working_days (1);
    //  Due Thu 02-26; two working days before: Tue 02-24.
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld"
                                        "   AND warn_on = '2026-02-24'",
                                        case_id),
                      1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_open_computes_dates_and_records, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_open_is_idempotent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_meet_and_cancel, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_extend_ledger_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_provisional_in_2027, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_status_at_an_instant, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_arguments_are_refused_with_a_reason, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_warn_distance_is_configurable, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
