/*  Unit tests: hcp_calendar (working days, periods, the loader, reload).

    Every expected date below was worked out by hand from
    deploy/config/calendar-cn.yaml (= shared/reference/calendar-cn.yaml) and
    the weekdays of 2026 (2026-01-01 is a Thursday); the comment beside each
    expectation shows the count, so a reviewer can check it without running
    anything. Notation: "(k)" is the k-th working day counted, "skip" a day
    passed over and why.

    2026 in the file: holidays 01-01..03, 02-15..23, 04-04..06, 05-01..05,
    06-19..21, 09-25..27, 10-01..07; adjusted working days 01-04 (Sun),
    02-14 (Sat), 02-28 (Sat), 05-09 (Sat), 09-20 (Sun), 10-10 (Sat).
    The file has 2024..2026; 2023 and 2027 are missing.
*/
#include "hcp_calendar.h"
#include "hcp_clock.h"
#include "hcp_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static hcp_calendar_t *s_cal;

//  The shipped calendar, found the way services find it.
static int
s_setup (void **state)
{
    (void) state;
    char path[4096];
    assert_non_null (hcp_calendar_default_path (path, sizeof path));
    char *error = NULL;
    s_cal = hcp_calendar_load (path, &error);
    if (!s_cal)
        fail_msg ("cannot load %s: %s", path, error);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    hcp_calendar_destroy (&s_cal);
    return 0;
}

static hcp_date_t
D (const char *text)
{
    hcp_date_t date;
    if (hcp_date_parse (text, &date) != 0)
        fail_msg ("bad date in test: %s", text);
    return date;
}

//  Asserts from + n working days == expected, with the provisional flag.
#define ASSERT_ADD(from, n, expected, prov)                                                   \
    do {                                                                                      \
        bool p_ = !(prov);                                                                    \
        char b_[11];                                                                          \
        hcp_date_t got_ = hcp_calendar_add_working_days (s_cal, D (from), (n), &p_);          \
        assert_string_equal (hcp_date_format (got_, b_), (expected));                         \
        assert_int_equal (p_, (prov));                                                        \
    } while (0)

#define ASSERT_SUB(from, n, expected, prov)                                                   \
    do {                                                                                      \
        bool p_ = !(prov);                                                                    \
        char b_[11];                                                                          \
        hcp_date_t got_ = hcp_calendar_sub_working_days (s_cal, D (from), (n), &p_);          \
        assert_string_equal (hcp_date_format (got_, b_), (expected));                         \
        assert_int_equal (p_, (prov));                                                        \
    } while (0)

#define ASSERT_WORKDAY(date, yes, prov)                                                       \
    do {                                                                                      \
        bool p_ = !(prov);                                                                    \
        assert_int_equal (hcp_calendar_is_workday (s_cal, D (date), &p_), (yes));             \
        assert_int_equal (p_, (prov));                                                        \
    } while (0)

static void
test_dates_and_weekdays (void **state)
{
    (void) state;
    char buf[11];
    assert_int_equal (D ("1970-01-01"), 0);
    assert_int_equal (hcp_date_weekday (D ("1970-01-01")), 4); //  a Thursday
    assert_int_equal (hcp_date_weekday (D ("2026-01-01")), 4); //  Thursday
    assert_int_equal (hcp_date_weekday (D ("2026-01-04")), 7); //  Sunday
    assert_int_equal (hcp_date_weekday (D ("2026-02-14")), 6); //  Saturday
    assert_int_equal (hcp_date_weekday (D ("2026-10-10")), 6); //  Saturday
    assert_int_equal (hcp_date_weekday (D ("2026-09-20")), 7); //  Sunday
    assert_int_equal (hcp_date_weekday (D ("1969-12-31")), 3); //  Wednesday
    assert_int_equal (hcp_date_year (D ("2026-12-31")), 2026);
    assert_int_equal (hcp_date_year (D ("2027-01-01")), 2027);
    assert_string_equal (hcp_date_format (D ("2024-02-29"), buf), "2024-02-29");
    assert_string_equal (hcp_date_format (hcp_date_add_days (D ("2026-02-27"), 2), buf),
                         "2026-03-01"); //  2026 is not a leap year
    assert_string_equal (hcp_date_format (hcp_date_add_days (D ("2024-02-27"), 2), buf),
                         "2024-02-29"); //  2024 is
    hcp_date_t date;
    assert_int_equal (hcp_date_parse ("2026-02-29", &date), -1);
    assert_int_equal (hcp_date_parse ("2026-13-01", &date), -1);
    assert_int_equal (hcp_date_parse ("2026-1-01", &date), -1);
    assert_int_equal (hcp_date_parse ("2026-01-01x", &date), -1);
    assert_int_equal (hcp_date_parse ("", &date), -1);
    assert_int_equal (hcp_date_parse ("2026/01/01", &date), -1);
}

static void
test_shanghai_time (void **state)
{
    (void) state;
    //  2026-01-01 00:00 in Shanghai is 2025-12-31 16:00 UTC = 1767196800 s.
    assert_int_equal (hcp_date_start_ms (D ("2026-01-01")), 1767196800000LL);
    //  24:00 of the last day is the start of the next day.
    assert_int_equal (hcp_date_end_ms (D ("2025-12-31")), 1767196800000LL);
    assert_int_equal (hcp_date_end_ms (D ("2026-02-20")),
                      hcp_date_start_ms (D ("2026-02-21")));
    //  One millisecond before midnight Shanghai is still the old day.
    assert_int_equal (hcp_date_from_ms (1767196800000LL - 1), D ("2025-12-31"));
    assert_int_equal (hcp_date_from_ms (1767196800000LL), D ("2026-01-01"));
    //  16:00 UTC on 2026-02-13 is 00:00 on 2026-02-14 in Shanghai.
    int64_t ms;
    assert_int_equal (hcp_clock_parse ("2026-02-13T16:00:00Z", &ms), 0);
    assert_int_equal (hcp_date_from_ms (ms), D ("2026-02-14"));
    assert_int_equal (hcp_clock_parse ("2026-02-13T15:59:59.999Z", &ms), 0);
    assert_int_equal (hcp_date_from_ms (ms), D ("2026-02-13"));
    //  Before 1970 the floor division still gives the right date.
    assert_int_equal (hcp_date_from_ms (-1), D ("1970-01-01")); //  08:00 - 1 ms local
    assert_int_equal (hcp_date_from_ms (-8LL * 3600 * 1000 - 1), D ("1969-12-31"));
}

static void
test_workdays_2026 (void **state)
{
    (void) state;
    ASSERT_WORKDAY ("2026-01-01", false, false); //  Thu, New Year holiday
    ASSERT_WORKDAY ("2026-01-03", false, false); //  Sat, holiday
    ASSERT_WORKDAY ("2026-01-04", true, false);  //  Sun, adjusted working day
    ASSERT_WORKDAY ("2026-01-05", true, false);  //  Mon
    ASSERT_WORKDAY ("2026-01-10", false, false); //  Sat
    ASSERT_WORKDAY ("2026-02-14", true, false);  //  Sat, adjusted (Spring Festival)
    ASSERT_WORKDAY ("2026-02-16", false, false); //  Mon, holiday
    ASSERT_WORKDAY ("2026-02-21", false, false); //  Sat, inside the holiday
    ASSERT_WORKDAY ("2026-02-23", false, false); //  Mon, last holiday
    ASSERT_WORKDAY ("2026-02-24", true, false);  //  Tue
    ASSERT_WORKDAY ("2026-02-28", true, false);  //  Sat, adjusted
    ASSERT_WORKDAY ("2026-03-01", false, false); //  Sun
    ASSERT_WORKDAY ("2026-05-05", false, false); //  Tue, Labour Day holiday
    ASSERT_WORKDAY ("2026-05-09", true, false);  //  Sat, adjusted
    ASSERT_WORKDAY ("2026-09-20", true, false);  //  Sun, adjusted
    ASSERT_WORKDAY ("2026-10-07", false, false); //  Wed, National Day holiday
    ASSERT_WORKDAY ("2026-10-10", true, false);  //  Sat, adjusted
    assert_int_equal (hcp_calendar_day_kind (s_cal, D ("2026-02-14"), NULL),
                      HCP_DAY_ADJUSTED_WORKDAY);
    assert_int_equal (hcp_calendar_day_kind (s_cal, D ("2026-02-21"), NULL), HCP_DAY_HOLIDAY);
    assert_int_equal (hcp_calendar_day_kind (s_cal, D ("2026-03-01"), NULL), HCP_DAY_WEEKEND);
    assert_int_equal (hcp_calendar_day_kind (s_cal, D ("2026-03-02"), NULL), HCP_DAY_WORKDAY);
    assert_true (hcp_calendar_has_year (s_cal, 2024));
    assert_true (hcp_calendar_has_year (s_cal, 2026));
    assert_false (hcp_calendar_has_year (s_cal, 2027));
}

static void
test_spring_festival_2026 (void **state)
{
    (void) state;
    //  From Fri 02-13: Sat 02-14 adjusted (1).
    ASSERT_ADD ("2026-02-13", 1, "2026-02-14", false);
    //  From Fri 02-13: 02-14 Sat adj (1); skip 02-15..23 holidays; 02-24 Tue (2).
    ASSERT_ADD ("2026-02-13", 2, "2026-02-24", false);
    //  From Thu 02-12: 13 Fri (1), 14 Sat adj (2), skip 15..23, 24 (3), 25 (4), 26 Thu (5).
    ASSERT_ADD ("2026-02-12", 5, "2026-02-26", false);
    //  Art. 21 form for a rating on holiday Fri 02-20: skip 21..23; 24 (1), 25 (2),
    //  26 (3), 27 Fri (4), 28 Sat adj (5).
    ASSERT_ADD ("2026-02-20", 5, "2026-02-28", false);
    //  From Tue 02-10: 11 (1), 12 (2), 13 (3), 14 Sat adj (4), skip 15..23, 24 (5),
    //  25 (6), 26 (7), 27 (8), 28 Sat adj (9), skip Sun 03-01, Mon 03-02 (10).
    ASSERT_ADD ("2026-02-10", 10, "2026-03-02", false);
    //  From Sat 02-14 (the start is never counted, even a working day):
    //  skip 15..23, 24 (1).
    ASSERT_ADD ("2026-02-14", 1, "2026-02-24", false);
    //  Backwards from Tue 02-24: skip 23..15, 14 Sat adj (1); 13 Fri (2).
    ASSERT_SUB ("2026-02-24", 1, "2026-02-14", false);
    ASSERT_SUB ("2026-02-24", 2, "2026-02-13", false);
    //  Backwards from Mon 03-02: skip Sun 03-01, 02-28 Sat adj (1).
    ASSERT_SUB ("2026-03-02", 1, "2026-02-28", false);
}

static void
test_labour_day_2026 (void **state)
{
    (void) state;
    //  From Thu 04-30: skip 05-01 Fri..05-05 Tue holidays; 05-06 Wed (1).
    ASSERT_ADD ("2026-04-30", 1, "2026-05-06", false);
    //  05-06 (1), 07 Thu (2), 08 Fri (3), 09 Sat adj (4).
    ASSERT_ADD ("2026-04-30", 4, "2026-05-09", false);
    //  ... 09 Sat adj (4), skip Sun 05-10, Mon 05-11 (5).
    ASSERT_ADD ("2026-04-30", 5, "2026-05-11", false);
    //  From Wed 04-29: 04-30 Thu (1).
    ASSERT_ADD ("2026-04-29", 1, "2026-04-30", false);
    //  Backwards from Wed 05-06: skip 05-05..05-01; 04-30 (1).
    ASSERT_SUB ("2026-05-06", 1, "2026-04-30", false);
}

static void
test_dragon_boat_and_mid_autumn_2026 (void **state)
{
    (void) state;
    //  Dragon Boat: from Thu 06-18: skip 06-19 Fri..06-21 Sun holidays; 06-22 Mon (1).
    ASSERT_ADD ("2026-06-18", 1, "2026-06-22", false);
    //  Mid-Autumn: from Fri 09-18: skip Sat 09-19, 09-20 Sun adjusted (1).
    ASSERT_ADD ("2026-09-18", 1, "2026-09-20", false);
    //  From Thu 09-24: skip 09-25 Fri..09-27 Sun holidays; 09-28 Mon (1).
    ASSERT_ADD ("2026-09-24", 1, "2026-09-28", false);
    //  From Fri 09-18: 20 Sun adj (1), 21 (2), 22 (3), 23 (4), 24 Thu (5),
    //  skip 25..27, 28 Mon (6).
    ASSERT_ADD ("2026-09-18", 6, "2026-09-28", false);
}

static void
test_national_day_2026 (void **state)
{
    (void) state;
    //  From Wed 09-30: skip 10-01 Thu..10-07 Wed; 10-08 Thu (1).
    ASSERT_ADD ("2026-09-30", 1, "2026-10-08", false);
    //  10-08 (1), 09 Fri (2), 10 Sat adjusted (3).
    ASSERT_ADD ("2026-09-30", 3, "2026-10-10", false);
    //  ... 10 Sat adj (3), skip Sun 10-11, 12 Mon (4).
    ASSERT_ADD ("2026-09-30", 4, "2026-10-12", false);
    //  Art. 23: 10 working days after Mon 09-28: 29 (1), 30 (2), skip 10-01..07,
    //  08 (3), 09 (4), 10 Sat adj (5), skip Sun 11, 12 (6), 13 (7), 14 (8), 15 (9),
    //  16 Fri (10).
    ASSERT_ADD ("2026-09-28", 10, "2026-10-16", false);
    //  Backwards from Thu 10-08: skip 10-07..10-01; 09-30 Wed (1).
    ASSERT_SUB ("2026-10-08", 1, "2026-09-30", false);
    //  Backwards from Mon 10-12: skip Sun 10-11; 10-10 Sat adj (1).
    ASSERT_SUB ("2026-10-12", 1, "2026-10-10", false);
}

static void
test_month_and_year_boundaries (void **state)
{
    (void) state;
    //  Month: from Fri 01-30: skip Sat 01-31, Sun 02-01; Mon 02-02 (1).
    ASSERT_ADD ("2026-01-30", 1, "2026-02-02", false);
    //  2025 → 2026, both in the file: from Wed 2025-12-31: skip 01-01 Thu..01-03 Sat
    //  holidays; 01-04 Sun adjusted (1).
    ASSERT_ADD ("2025-12-31", 1, "2026-01-04", false);
    //  ... 01-04 (1), 01-05 Mon (2).
    ASSERT_ADD ("2025-12-31", 2, "2026-01-05", false);
    //  Backwards across the boundary: from Sun 2026-01-04: skip 01-03..01-01;
    //  2025-12-31 Wed (1).
    ASSERT_SUB ("2026-01-04", 1, "2025-12-31", false);
    //  2026 → 2027 (missing): from Wed 2026-12-30: 12-31 Thu (1) only 2026 seen.
    ASSERT_ADD ("2026-12-30", 1, "2026-12-31", false);
    //  12-31 (1), 2027-01-01 Fri counted Monday-Friday (2) — provisional;
    //  skip Sat 01-02, Sun 01-03; Mon 01-04 (3).
    ASSERT_ADD ("2026-12-30", 3, "2027-01-04", true);
    //  Backwards from 2027-01-04 (missing year) into 2026: 2027-01-01 Fri (1),
    //  2026-12-31 (2) — provisional because 2027 was consulted.
    ASSERT_SUB ("2027-01-04", 2, "2026-12-31", true);
    //  Natural days cross years without a calendar: 2026-12-28 + 7 = 2027-01-04.
    char buf[11];
    assert_string_equal (hcp_date_format (hcp_date_add_days (D ("2026-12-28"), 7), buf),
                         "2027-01-04");
    //  2024 → 2023 (missing): from Tue 2024-01-02: skip 01-01 holiday;
    //  2023-12-29 Fri (1) as Monday-Friday... 2023-12-31 Sun, 12-30 Sat skipped.
    ASSERT_SUB ("2024-01-02", 1, "2023-12-29", true);
}

static void
test_missing_year (void **state)
{
    (void) state;
    uint64_t before = hcp_calendar_provisional_count ();
    ASSERT_WORKDAY ("2027-03-01", true, true);  //  Mon, Monday-Friday guess
    ASSERT_WORKDAY ("2027-03-06", false, true); //  Sat
    //  2027-10-01 is a Friday: surely a holiday, but the file does not say so.
    ASSERT_WORKDAY ("2027-10-01", true, true);
    //  From Thu 2027-09-30: 10-01 Fri (1) — provisional.
    ASSERT_ADD ("2027-09-30", 1, "2027-10-01", true);
    //  Four provisional answers were counted (three is_workday, one add).
    assert_int_equal (hcp_calendar_provisional_count () - before, 4);
    //  A non-provisional answer is not counted.
    ASSERT_WORKDAY ("2026-03-02", true, false);
    assert_int_equal (hcp_calendar_provisional_count () - before, 4);
    //  A calendar with no years: everything provisional, Monday-Friday.
    hcp_calendar_t *empty = hcp_calendar_parse ("years: {}\n", "empty.yaml", NULL);
    assert_non_null (empty);
    //  Mon 2026-02-16 is a Spring Festival holiday, but this calendar does
    //  not know it: a working day, provisional.
    bool provisional = false;
    assert_true (hcp_calendar_is_workday (empty, D ("2026-02-16"), &provisional));
    assert_true (provisional);
    //  Without the file, Spring Festival is invisible: Fri 02-13 + 1 = Mon 02-16.
    char buf[11];
    assert_string_equal (
        hcp_date_format (hcp_calendar_add_working_days (empty, D ("2026-02-13"), 1, NULL),
                         buf),
        "2026-02-16");
    hcp_calendar_destroy (&empty);
}

//  Each loader error names the file, the line and the key.
static void
s_expect_error (const char *yaml, const char *expected)
{
    char *error = NULL;
    hcp_calendar_t *calendar = hcp_calendar_parse (yaml, "cal.yaml", &error);
    if (calendar)
        fail_msg ("accepted, expected error '%s'", expected);
    assert_non_null (error);
    if (!strstr (error, expected))
        fail_msg ("error '%s' does not contain '%s'", error, expected);
    free (error);
}

static void
test_loader_errors (void **state)
{
    (void) state;
    s_expect_error ("a: 1\n", "cal.yaml:1: years: missing");
    s_expect_error ("years: [2026]\n", "cal.yaml:1: years: expected a map of years");
    s_expect_error ("years:\n  20x6: {holidays: [], workdays: []}\n",
                    "cal.yaml:2: years.20x6: not a year");
    s_expect_error ("years:\n  2026: [2026-01-01]\n",
                    "cal.yaml:2: years.2026: expected a map with holidays and workdays");
    s_expect_error ("years:\n  2026:\n    holidays: []\n    workday: []\n",
                    "cal.yaml:4: years.2026.workday: unknown key");
    s_expect_error ("years:\n  2026:\n    holidays: [2026-01-01]\n",
                    "cal.yaml:3: years.2026: missing workdays");
    s_expect_error ("years:\n  2026:\n    workdays: []\n",
                    "cal.yaml:3: years.2026: missing holidays");
    s_expect_error ("years:\n  2026:\n    holidays: 2026-01-01\n    workdays: []\n",
                    "cal.yaml:3: years.2026.holidays: expected a list of dates");
    //  Invalid date.
    s_expect_error ("years:\n  2026:\n    holidays: [2026-01-01,\n      2026-02-30]\n"
                    "    workdays: []\n",
                    "cal.yaml:4: years.2026.holidays.1: '2026-02-30' is not a valid date");
    s_expect_error ("years:\n  2026:\n    holidays: [Jan 1]\n    workdays: []\n",
                    "cal.yaml:3: years.2026.holidays.0: 'Jan 1' is not a valid date");
    //  Date outside its year.
    s_expect_error ("years:\n  2026:\n    holidays: [2025-10-01]\n    workdays: []\n",
                    "cal.yaml:3: years.2026.holidays.0: 2025-10-01 is outside its year 2026");
    //  Duplicate.
    s_expect_error (
        "years:\n  2026:\n    holidays:\n      - 2026-05-01\n      - 2026-05-01\n"
        "    workdays: []\n",
        "cal.yaml:5: years.2026.holidays.1: 2026-05-01 is listed twice in holidays "
        "(first at line 4)");
    s_expect_error (
        "years:\n  2026:\n    holidays: []\n    workdays: [2026-02-14, 2026-02-14]\n",
        "2026-02-14 is listed twice in workdays");
    //  Both holiday and workday.
    s_expect_error (
        "years:\n  2026:\n    holidays: [2026-02-14]\n    workdays: [2026-02-14]\n",
        "cal.yaml:4: years.2026.workdays.0: 2026-02-14 is both a holiday and a "
        "workday (the other at line 3)");
    //  A workday that is not a weekend day.
    s_expect_error (
        "years:\n  2026:\n    holidays: []\n    workdays: [2026-02-13]\n",
        "cal.yaml:4: years.2026.workdays.0: 2026-02-13 is a Friday: workdays lists "
        "only Saturdays and Sundays");
    //  Duplicate year (the YAML loader's check).
    s_expect_error ("years:\n  2026: {holidays: [], workdays: []}\n"
                    "  2026: {holidays: [], workdays: []}\n",
                    "duplicate key");
    //  YAML syntax.
    s_expect_error ("years:\n  2026: {holidays: [2026-01-01\n", "cal.yaml:");
    //  A file that does not exist.
    char *error = NULL;
    assert_null (hcp_calendar_load ("/nonexistent/cal.yaml", &error));
    assert_non_null (strstr (error, "/nonexistent/cal.yaml: cannot open"));
    free (error);
    //  A missing list is reported at the first line of the year's map.
    //  A holiday on a weekend is fine (holiday spans include weekends), and
    //  years may come in any order.
    hcp_calendar_t *ok = hcp_calendar_parse ("years:\n  2026:\n    holidays: [2026-02-21]\n"
                                             "    workdays: []\n  2025: {holidays: [], "
                                             "workdays: []}\n",
                                             "ok.yaml", &error);
    assert_non_null (ok);
    assert_true (hcp_calendar_has_year (ok, 2025));
    assert_string_equal (hcp_calendar_name (ok), "ok.yaml");
    hcp_calendar_destroy (&ok);
}

static void
s_write (const char *path, const char *text)
{
    //  Write to a temporary name and rename, as an operator's editor or a
    //  deployment would: readers never see half a file.
    char tmp[4200];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (rename (tmp, path), 0);
}

static void
test_reload (void **state)
{
    (void) state;
    char dir[] = "/tmp/hcp-calendar-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path[4096];
    snprintf (path, sizeof path, "%s/cal.yaml", dir);
    s_write (path, "years:\n  2026:\n    holidays: [2026-02-16]\n    workdays: []\n");
    char *error = NULL;
    assert_int_equal (hcp_calendar_use_file (path, &error), 0);
    hcp_calendar_t *first = hcp_calendar_current ();
    assert_true (hcp_calendar_has_year (first, 2026));
    assert_false (hcp_calendar_has_year (first, 2027));
    //  Unchanged file: nothing to do.
    assert_int_equal (hcp_calendar_reload (), 0);
    assert_ptr_equal (hcp_calendar_current (), first);
    //  2027 from Thu 2026-12-31: Fri 2027-01-01 (1), provisional.
    bool provisional = false;
    char buf[11];
    hcp_date_t due = hcp_calendar_add_working_days (first, D ("2026-12-31"), 1, &provisional);
    assert_string_equal (hcp_date_format (due, buf), "2027-01-01");
    assert_true (provisional);
    //  The operator adds 2027 with New Year on 01-01: reload picks it up.
    s_write (path, "years:\n  2026:\n    holidays: [2026-02-16]\n    workdays: []\n"
                   "  2027:\n    holidays: [2027-01-01]\n    workdays: []\n");
    assert_int_equal (hcp_calendar_reload (), 1);
    hcp_calendar_t *second = hcp_calendar_current ();
    assert_ptr_not_equal (second, first);
    assert_true (hcp_calendar_has_year (second, 2027));
    //  Recomputed: skip Fri 2027-01-01 holiday, Sat, Sun; Mon 01-04 (1), final.
    due = hcp_calendar_add_working_days (second, D ("2026-12-31"), 1, &provisional);
    assert_string_equal (hcp_date_format (due, buf), "2027-01-04");
    assert_false (provisional);
    //  The old pointer is still usable (kept until exit).
    assert_false (hcp_calendar_has_year (first, 2027));
    //  A broken edit: reported once (-1), the calendar in force stays.
    s_write (path, "years:\n  2027:\n    holidays: [2027-02-30]\n    workdays: []\n");
    assert_int_equal (hcp_calendar_reload (), -1);
    assert_ptr_equal (hcp_calendar_current (), second);
    assert_int_equal (hcp_calendar_reload (), 0); //  same broken file: not again
    //  Fixed: loaded.
    s_write (path, "years:\n  2027:\n    holidays: [2027-02-10]\n    workdays: []\n");
    assert_int_equal (hcp_calendar_reload (), 1);
    assert_false (hcp_calendar_has_year (hcp_calendar_current (), 2026));
    //  The file vanishes: error, calendar kept.
    unlink (path);
    assert_int_equal (hcp_calendar_reload (), -1);
    assert_true (hcp_calendar_has_year (hcp_calendar_current (), 2027));
    //  use_file on a broken file fails and changes nothing.
    s_write (path, "years: 3\n");
    assert_int_equal (hcp_calendar_use_file (path, &error), -1);
    assert_non_null (strstr (error, "years: expected a map"));
    free (error);
    assert_true (hcp_calendar_has_year (hcp_calendar_current (), 2027));
    unlink (path);
    rmdir (dir);
}

static void
test_configure (void **state)
{
    (void) state;
    char *error = NULL;
    hcp_config_t *config = hcp_config_parse ("calendar:\n  file: /nonexistent/c.yaml\n",
                                             "hcp.yaml", NULL);
    assert_int_equal (hcp_calendar_configure (config, &error), -1);
    assert_non_null (strstr (error, "/nonexistent/c.yaml: cannot open"));
    free (error);
    hcp_config_destroy (&config);
    //  No key: the shipped default file.
    config = hcp_config_parse ("log: {level: info}\n", "hcp.yaml", NULL);
    assert_int_equal (hcp_calendar_configure (config, &error), 0);
    assert_true (hcp_calendar_has_year (hcp_calendar_current (), 2026));
    assert_non_null (strstr (hcp_calendar_name (hcp_calendar_current ()),
                             "deploy/config/calendar-cn.yaml"));
    hcp_config_destroy (&config);
}

//  Runs hcpctl with args; returns its exit code and its stdout (caller
//  frees) in *out.
static int
s_hcpctl (char **out, const char *args)
{
    char path[] = "/tmp/hcp-calendar-out-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    close (fd);
    int rc = hcp_test_shell ("'%s' calendar %s >%s 2>/dev/null", hcp_test_bin ("hcpctl"), args,
                             path);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char *text = calloc (1, 65536);
    size_t got = fread (text, 1, 65535, file);
    text[got] = 0;
    fclose (file);
    unlink (path);
    *out = text;
    return rc;
}

static void
test_hcpctl_calendar (void **state)
{
    (void) state;
    char *out;
    //  Exit codes: 0 working day, 1 day off, 2 usage, 3 calendar unusable.
    assert_int_equal (s_hcpctl (&out, "is-workday 2026-02-14"), 0);
    assert_string_equal (out, "2026-02-14 yes\n");
    free (out);
    assert_int_equal (s_hcpctl (&out, "is-workday 2026-02-16"), 1);
    assert_string_equal (out, "2026-02-16 no\n");
    free (out);
    assert_int_equal (s_hcpctl (&out, "is-workday 2027-03-06"), 1);
    assert_string_equal (out, "2027-03-06 no provisional\n");
    free (out);
    assert_int_equal (s_hcpctl (&out, "is-workday 2026-02-30"), 2);
    free (out);
    assert_int_equal (s_hcpctl (&out, "is-workday 2026-02-14 --calendar /nonexistent.yaml"),
                      3);
    free (out);
    //  Same count as test_spring_festival_2026.
    assert_int_equal (s_hcpctl (&out, "deadline --from 2026-02-12 --working-days 5"), 0);
    assert_string_equal (out, "2026-02-26\n");
    free (out);
    assert_int_equal (s_hcpctl (&out, "deadline --from 2026-12-30 --working-days 3"), 0);
    assert_string_equal (out, "2027-01-04 provisional\n");
    free (out);
    assert_int_equal (s_hcpctl (&out, "deadline --from 2026-12-28 --natural-days 7"), 0);
    assert_string_equal (out, "2027-01-04\n");
    free (out);
    assert_int_equal (s_hcpctl (&out, "deadline --from 2026-02-12"), 2);
    free (out);
    assert_int_equal (
        s_hcpctl (&out, "deadline --from 2026-02-12 --working-days 1 --natural-days 1"), 2);
    free (out);
    //  --explain: the days counted and skipped, and why.
    assert_int_equal (s_hcpctl (&out, "deadline --from 2026-02-13 --working-days 2 --explain"),
                      0);
    assert_non_null (strstr (out, "2026-02-24\n"));
    assert_non_null (strstr (out, "2026-02-14 Sat  counted 1   adjusted working day"));
    assert_non_null (strstr (out, "2026-02-15 Sun  skipped     holiday"));
    assert_non_null (strstr (out, "2026-02-24 Tue  counted 2   working day"));
    assert_non_null (strstr (out, "ends 2026-02-25T00:00:00+08:00"));
    free (out);
    assert_int_equal (s_hcpctl (&out, "deadline --from 2026-02-27 --working-days 2 --explain"),
                      0);
    assert_non_null (strstr (out, "2026-03-01 Sun  skipped     weekend"));
    free (out);
    assert_int_equal (s_hcpctl (&out, "check"), 0);
    assert_non_null (strstr (out, "2026: 33 holidays, 6 adjusted working days"));
    free (out);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_dates_and_weekdays),
        cmocka_unit_test (test_shanghai_time),
        cmocka_unit_test (test_workdays_2026),
        cmocka_unit_test (test_spring_festival_2026),
        cmocka_unit_test (test_labour_day_2026),
        cmocka_unit_test (test_dragon_boat_and_mid_autumn_2026),
        cmocka_unit_test (test_national_day_2026),
        cmocka_unit_test (test_month_and_year_boundaries),
        cmocka_unit_test (test_missing_year),
        cmocka_unit_test (test_loader_errors),
        cmocka_unit_test (test_reload),
        cmocka_unit_test (test_configure),
        cmocka_unit_test (test_hcpctl_calendar),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
