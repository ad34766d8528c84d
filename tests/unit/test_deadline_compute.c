/*  Unit tests: hcp_deadline_compute — due dates and reminder days of case
    deadlines across the 2026 holidays, without a database.

    The calendar below is copied from reference/calendar-cn.yaml (State
    Council notices for 2025 and 2026); 2027 is deliberately missing. Every
    expected date was counted by hand; the count is written next to it.
    Weekdays used: 2026-01-01 Thu, 2026-02-12 Thu, 2026-04-30 Thu,
    2026-09-18 Fri, 2026-09-29 Tue, 2026-12-30 Wed, 2027-01-01 Fri.
*/
#include "../integration/test_deadline_fixture.h"

static const char *s_calendar_yaml =
    "years:\n"
    "  2025:\n"
    "    holidays: [2025-01-01, 2025-01-28, 2025-01-29, 2025-01-30, 2025-01-31, "
    "2025-02-01, "
    "2025-02-02, 2025-02-03, 2025-02-04, 2025-04-04, 2025-04-05, 2025-04-06, 2025-05-01, "
    "2025-05-02, 2025-05-03, 2025-05-04, 2025-05-05, 2025-05-31, 2025-06-01, 2025-06-02, "
    "2025-10-01, 2025-10-02, 2025-10-03, 2025-10-04, 2025-10-05, 2025-10-06, 2025-10-07, "
    "2025-10-08]\n"
    "    workdays: [2025-01-26, 2025-02-08, 2025-04-27, 2025-09-28, "
    "2025-10-11]\n" TD_YEAR_2026;

static hcp_calendar_t *s_calendar;

static int
s_setup (void **state)
{
    (void) state;
    char *error = NULL;
    s_calendar = hcp_calendar_parse (s_calendar_yaml, "test-calendar", &error);
    if (!s_calendar) {
        fprintf (stderr, "calendar: %s\n", error);
        free (error);
        return -1;
    }
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    hcp_calendar_destroy (&s_calendar);
    return 0;
}

//  Computes and checks due_on, warn_on and provisional.
static void
s_check (const char *starts_on, int n, const char *day_kind, int warn_days, const char *due_on,
         const char *warn_on, bool provisional)
{
    hcp_deadline_dates_t dates;
    assert_int_equal (
        hcp_deadline_compute (s_calendar, td_date (starts_on), n, day_kind, warn_days, &dates),
        0);
    char due[11], warn[11];
    hcp_date_format (dates.due_on, due);
    hcp_date_format (dates.warn_on, warn);
    if (strcmp (due, due_on) || strcmp (warn, warn_on) || dates.provisional != provisional)
        fail_msg ("%s + %d %s: got due %s warn %s%s, expected due %s warn %s%s", starts_on, n,
                  day_kind, due, warn, dates.provisional ? " provisional" : "", due_on,
                  warn_on, provisional ? " provisional" : "");
}

static void
test_form_across_spring_festival (void **state)
{
    (void) state;
    //  A rating on Thu 2026-02-12; the form is due 5 working days later
    //  (Art. 21; the rating day is not counted):
    //    02-13 Fri (1), 02-14 Sat adjusted working day (2),
    //    02-15 .. 02-23 Spring Festival holidays (not counted),
    //    02-24 Tue (3), 02-25 Wed (4), 02-26 Thu (5)  → due 2026-02-26,
    //  reminder 1 working day before → 2026-02-25.
    s_check ("2026-02-12", HCP_DEADLINE_FORM_WORKING_DAYS, "working", 1, "2026-02-26",
             "2026-02-25", false);
    //  The answer, 10 working days from the same day: … 02-26 (5),
    //  02-27 Fri (6), 02-28 Sat adjusted working day (7), 03-02 Mon (8),
    //  03-03 (9), 03-04 (10) → 2026-03-04, reminder 03-03.
    s_check ("2026-02-12", HCP_DEADLINE_ANSWER_WORKING_DAYS, "working", 1, "2026-03-04",
             "2026-03-03", false);
    //  From Tue 02-24: 02-25 (1), 02-26 (2), 02-27 (3), 02-28 Sat (4),
    //  03-02 Mon (5) → 03-02; the reminder falls on the adjusted Saturday.
    s_check ("2026-02-24", 5, "working", 1, "2026-03-02", "2026-02-28", false);
    //  From Fri 02-13, one working day: the adjusted Saturday 02-14.
    s_check ("2026-02-13", 1, "working", 1, "2026-02-14", "2026-02-13", false);
    //  Starting inside the holiday (Wed 02-18): 02-24 (1) … 02-28 (5).
    s_check ("2026-02-18", 5, "working", 1, "2026-02-28", "2026-02-27", false);
}

static void
test_labour_day_mid_autumn_national_day (void **state)
{
    (void) state;
    //  Thu 04-30; 05-01 .. 05-05 Labour Day: 05-06 (1), 05-07 (2), 05-08 (3),
    //  05-09 Sat adjusted (4), 05-11 Mon (5); reminder on Sat 05-09.
    s_check ("2026-04-30", 5, "working", 1, "2026-05-11", "2026-05-09", false);
    //  Fri 09-18: 09-19 Sat no, 09-20 Sun adjusted (1), 09-21 (2), 09-22 (3),
    //  09-23 (4), 09-24 Thu (5).
    s_check ("2026-09-18", 5, "working", 1, "2026-09-24", "2026-09-23", false);
    //  Tue 09-29: 09-30 (1), 10-01 .. 10-07 National Day, 10-08 Thu (2),
    //  10-09 (3), 10-10 Sat adjusted (4), 10-12 Mon (5); reminder 10-10.
    s_check ("2026-09-29", 5, "working", 1, "2026-10-12", "2026-10-10", false);
    //  Thu 09-24, 10 working days: 09-25 .. 09-27 Mid-Autumn, 09-28 (1),
    //  09-29 (2), 09-30 (3), 10-08 (4), 10-09 (5), 10-10 (6), 10-12 (7),
    //  10-13 (8), 10-14 (9), 10-15 (10).
    s_check ("2026-09-24", 10, "working", 1, "2026-10-15", "2026-10-14", false);
}

static void
test_year_boundaries_and_missing_year (void **state)
{
    (void) state;
    //  Mon 2025-12-29: 12-30 (1), 12-31 (2), 2026-01-01 .. 01-03 New Year,
    //  01-04 Sun adjusted (3), 01-05 (4), 01-06 (5).
    s_check ("2025-12-29", 5, "working", 1, "2026-01-06", "2026-01-05", false);
    //  Wed 2026-12-30: 12-31 Thu (1), then 2027, missing from the calendar:
    //  counted Monday-Friday and flagged — 2027-01-01 Fri (2), 01-04 (3),
    //  01-05 (4), 01-06 (5). (With the real 2027 notice 01-01 is a holiday
    //  and the date becomes 01-07: test_deadline_recompute checks that.)
    s_check ("2026-12-30", 5, "working", 1, "2027-01-06", "2027-01-05", true);
    //  Entirely in 2027 (Mon 03-01 + 5 → Mon 03-08).
    s_check ("2027-03-01", 5, "working", 1, "2027-03-08", "2027-03-05", true);
    //  Natural days are never provisional.
    s_check ("2026-12-30", 7, "natural", 0, "2027-01-06", "2027-01-06", false);
}

static void
test_natural_and_fixed (void **state)
{
    (void) state;
    //  7 natural days from 02-12 → 02-19 (inside the holiday: natural days
    //  do not care); the reminder, 1 working day before, is the last working
    //  day before it: the adjusted Saturday 02-14.
    s_check ("2026-02-12", 7, "natural", 1, "2026-02-19", "2026-02-14", false);
    //  A ledger date set by the unit: Thu 10-08, reminder the working day
    //  before it, 09-30 (National Day in between).
    s_check ("2026-10-08", 0, "fixed", 1, "2026-10-08", "2026-09-30", false);
    //  n is ignored for fixed dates.
    s_check ("2026-10-08", 99, "fixed", 1, "2026-10-08", "2026-09-30", false);
}

static void
test_reminder_distance (void **state)
{
    (void) state;
    //  Due 02-26: 2 working days before is 02-24; 3 is 02-14 (the holiday
    //  is skipped); 0 means on the due day.
    s_check ("2026-02-12", 5, "working", 2, "2026-02-26", "2026-02-24", false);
    s_check ("2026-02-12", 5, "working", 3, "2026-02-26", "2026-02-14", false);
    s_check ("2026-02-12", 5, "working", 0, "2026-02-26", "2026-02-26", false);
}

static void
test_refuses_impossible_periods (void **state)
{
    (void) state;
    hcp_deadline_dates_t dates = {1, 2, true};
    assert_int_equal (
        hcp_deadline_compute (s_calendar, td_date ("2026-02-12"), 0, "working", 1, &dates),
        -1);
    assert_int_equal (
        hcp_deadline_compute (s_calendar, td_date ("2026-02-12"), -3, "natural", 1, &dates),
        -1);
    assert_int_equal (
        hcp_deadline_compute (s_calendar, td_date ("2026-02-12"), 5, "weekly", 1, &dates), -1);
    assert_int_equal (
        hcp_deadline_compute (s_calendar, td_date ("2026-02-12"), 5, NULL, 1, &dates), -1);
    //  Untouched on failure.
    assert_int_equal (dates.due_on, 1);
    assert_int_equal (dates.warn_on, 2);
}

static void
test_configure_reads_warn_working_days (void **state)
{
    (void) state;
    hcp_config_t *config = hcp_config_parse ("deadline_watcher:\n  warn_working_days: 3\n",
                                             "hcp.yaml", NULL);
    assert_non_null (config);
    char *error = NULL;
    assert_int_equal (hcp_deadline_configure (config, &error), 0);
    assert_int_equal (hcp_deadline_warn_working_days (), 3);
    hcp_config_destroy (&config);

    config = hcp_config_parse ("deadline_watcher:\n  warn_working_days: 40\n", "hcp.yaml",
                               NULL);
    assert_int_equal (hcp_deadline_configure (config, &error), -1);
    assert_non_null (error);
    assert_non_null (strstr (error, "deadline_watcher.warn_working_days"));
    free (error);
    assert_int_equal (hcp_deadline_warn_working_days (), 3); //  unchanged
    hcp_config_destroy (&config);

    assert_int_equal (hcp_deadline_configure (NULL, NULL), 0);
    assert_int_equal (hcp_deadline_warn_working_days (), HCP_DEADLINE_WARN_WORKING_DAYS);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_form_across_spring_festival),
        cmocka_unit_test (test_labour_day_mid_autumn_national_day),
        cmocka_unit_test (test_year_boundaries_and_missing_year),
        cmocka_unit_test (test_natural_and_fixed),
        cmocka_unit_test (test_reminder_distance),
        cmocka_unit_test (test_refuses_impossible_periods),
        cmocka_unit_test (test_configure_reads_warn_working_days),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
