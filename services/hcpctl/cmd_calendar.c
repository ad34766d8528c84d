/*  hcpctl calendar — ask the working-day calendar, check a calendar file.

    The same module (common/hcp_calendar) decides every deadline in the
    services, so what this command prints is what they compute.
*/
#include "hcpctl.h"

#include "hcp_calendar.h"
#include "hcp_clock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_weekdays[] = {"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

static void
s_help (void)
{
    printf (
        "Usage:\n"
        "  hcpctl calendar is-workday DATE [--explain] [--calendar FILE]\n"
        "  hcpctl calendar deadline --from DATE (--natural-days N | --working-days N)\n"
        "                           [--explain] [--calendar FILE]\n"
        "  hcpctl calendar check [FILE]\n\n"
        "DATE is YYYY-MM-DD (a civil date in Asia/Shanghai) or 'today' (business clock).\n\n"
        "is-workday prints 'DATE yes' or 'DATE no', followed by ' provisional' when the\n"
        "calendar has no data for that year (then Monday-Friday is assumed).\n"
        "deadline prints the last day of the period as YYYY-MM-DD (plus ' provisional'):\n"
        "the day of DATE is not counted; the period ends at 24:00 Asia/Shanghai of that\n"
        "day. --working-days N gives the N-th working day after DATE (weekends and\n"
        "holidays skipped, adjusted working days counted); --natural-days N gives DATE+N.\n"
        "--explain adds, after the answer, one line per day counted or skipped and why.\n"
        "check loads FILE (default: the calendar in force) and lists its years; use it\n"
        "before installing a new year's calendar (docs/calendar.md).\n\n"
        "Options:\n"
        "  --calendar FILE   use FILE instead of config calendar.file / the default\n"
        "                    deploy/config/calendar-cn.yaml\n\n"
        "Exit codes (for scripts):\n"
        "  is-workday: 0 a working day, 1 not a working day;\n"
        "  deadline, check: 0 done;\n"
        "  all: 2 usage error, 3 the calendar file cannot be loaded.\n"
        "A provisional answer keeps these codes; look for the word 'provisional'.\n");
}

//  Loads the calendar: --calendar FILE, else config calendar.file / the
//  default. Returns the calendar in force or NULL (message printed).
static hcp_calendar_t *
s_calendar (hcp_config_t *config, const char *file)
{
    char *error = NULL;
    int rc = file ? hcp_calendar_use_file (file, &error)
                  : hcp_calendar_configure (config, &error);
    if (rc != 0) {
        fprintf (stderr, "hcpctl calendar: %s\n", error);
        free (error);
        return NULL;
    }
    return hcp_calendar_current ();
}

static int
s_parse_date (const char *text, hcp_date_t *date)
{
    if (!strcmp (text, "today")) {
        *date = hcp_date_from_ms (hcp_clock_now_ms ());
        return 0;
    }
    if (hcp_date_parse (text, date) != 0) {
        fprintf (stderr, "hcpctl calendar: '%s' is not a date (expected YYYY-MM-DD)\n", text);
        return -1;
    }
    return 0;
}

static int
s_parse_count (const char *option, const char *text, int *n)
{
    char *end = NULL;
    errno = 0;
    long value = strtol (text, &end, 10);
    //  36500 days is a century: far past any period the measures define.
    if (end == text || *end || errno || value < 1 || value > 36500) {
        fprintf (stderr,
                 "hcpctl calendar: %s expects a whole number from 1 to 36500, got '%s'\n",
                 option, text);
        return -1;
    }
    *n = (int) value;
    return 0;
}

static void
s_explain_day (hcp_calendar_t *calendar, hcp_date_t date, int counted)
{
    char buf[11];
    bool provisional;
    hcp_day_kind_t kind = hcp_calendar_day_kind (calendar, date, &provisional);
    if (counted > 0)
        printf ("  %s %s  counted %-3d %s%s\n", hcp_date_format (date, buf),
                s_weekdays[hcp_date_weekday (date)], counted, hcp_day_kind_name (kind),
                provisional ? " (provisional: year not in the calendar)" : "");
    else
        printf ("  %s %s  skipped     %s%s\n", hcp_date_format (date, buf),
                s_weekdays[hcp_date_weekday (date)], hcp_day_kind_name (kind),
                provisional ? " (provisional: year not in the calendar)" : "");
}

static int
s_is_workday (hcp_calendar_t *calendar, hcp_date_t date, int explain)
{
    char buf[11];
    bool provisional;
    hcp_day_kind_t kind = hcp_calendar_day_kind (calendar, date, &provisional);
    bool yes = kind == HCP_DAY_WORKDAY || kind == HCP_DAY_ADJUSTED_WORKDAY;
    printf ("%s %s%s\n", hcp_date_format (date, buf), yes ? "yes" : "no",
            provisional ? " provisional" : "");
    if (explain) {
        printf ("  %s %s, %s", buf, s_weekdays[hcp_date_weekday (date)],
                hcp_day_kind_name (kind));
        if (provisional)
            printf (" (provisional: %d is not in %s; Monday-Friday assumed)",
                    hcp_date_year (date), hcp_calendar_name (calendar));
        printf ("\n");
    }
    return yes ? 0 : 1;
}

static int
s_deadline (hcp_calendar_t *calendar, hcp_date_t from, int n, int working, int explain)
{
    char buf[11], end[40];
    bool provisional = false;
    hcp_date_t due = working ? hcp_calendar_add_working_days (calendar, from, n, &provisional)
                             : hcp_date_add_days (from, n);
    printf ("%s%s\n", hcp_date_format (due, buf), provisional ? " provisional" : "");
    if (!explain)
        return 0;
    printf ("  from %s %s, %d %s day%s; the day of start is not counted\n",
            hcp_date_format (from, buf), s_weekdays[hcp_date_weekday (from)], n,
            working ? "working" : "natural", n == 1 ? "" : "s");
    int counted = 0;
    for (hcp_date_t date = from + 1; date <= due; date++) {
        if (!working) {
            printf ("  %s %s  counted %-3d natural day\n", hcp_date_format (date, buf),
                    s_weekdays[hcp_date_weekday (date)], ++counted);
            continue;
        }
        bool ignored;
        if (hcp_calendar_is_workday (calendar, date, &ignored))
            s_explain_day (calendar, date, ++counted);
        else
            s_explain_day (calendar, date, 0);
    }
    printf ("  ends %s (24:00 of %s, Asia/Shanghai)\n",
            hcp_clock_format (hcp_date_end_ms (due), end), hcp_date_format (due, buf));
    if (provisional)
        printf ("  provisional: a year on the way is missing from %s; the date will be "
                "recomputed when the calendar is updated\n",
                hcp_calendar_name (calendar));
    return 0;
}

static int
s_check (hcp_config_t *config, const char *file)
{
    char *error = NULL;
    hcp_calendar_t *calendar = NULL;
    char buf[PATH_MAX];
    if (!file) {
        const char *configured = NULL;
        if (hcp_config_str (config, "calendar.file", NULL, &configured) != 0) {
            fprintf (stderr, "hcpctl calendar: %s\n", hcp_config_error (config));
            return 3;
        }
        file = configured && *configured ? configured
                                         : hcp_calendar_default_path (buf, sizeof buf);
        if (!file) {
            fprintf (stderr, "hcpctl calendar: no calendar file found (set calendar.file)\n");
            return 3;
        }
    }
    calendar = hcp_calendar_load (file, &error);
    if (!calendar) {
        fprintf (stderr, "hcpctl calendar: %s\n", error);
        free (error);
        return 3;
    }
    printf ("%s: ok\n", file);
    for (int year = 1970; year <= 9999; year++) {
        if (!hcp_calendar_has_year (calendar, year))
            continue;
        hcp_date_t first, last;
        char text[24];
        snprintf (text, sizeof text, "%04d-01-01", year);
        hcp_date_parse (text, &first);
        snprintf (text, sizeof text, "%04d-12-31", year);
        hcp_date_parse (text, &last);
        int holidays = 0, adjusted = 0, working = 0;
        for (hcp_date_t date = first; date <= last; date++) {
            hcp_day_kind_t kind = hcp_calendar_day_kind (calendar, date, NULL);
            holidays += kind == HCP_DAY_HOLIDAY;
            adjusted += kind == HCP_DAY_ADJUSTED_WORKDAY;
            working += kind == HCP_DAY_WORKDAY || kind == HCP_DAY_ADJUSTED_WORKDAY;
        }
        printf ("  %d: %d holidays, %d adjusted working days, %d working days\n", year,
                holidays, adjusted, working);
    }
    int this_year = hcp_date_year (hcp_date_from_ms (hcp_clock_now_ms ()));
    for (int year = this_year; year <= this_year + 1; year++)
        if (!hcp_calendar_has_year (calendar, year))
            printf ("  warning: %d is missing: its working days are provisional "
                    "(Monday-Friday) until it is added\n",
                    year);
    hcp_calendar_destroy (&calendar);
    return 0;
}

int
hcpctl_calendar (hcp_config_t *config, int argc, char **argv)
{
    if (argc < 2 || hcpctl_wants_help (argc, argv)) {
        s_help ();
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1];
    const char *file = NULL, *from_text = NULL, *date_text = NULL;
    int explain = 0, natural = 0, working = 0, n = 0;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp (arg, "--explain"))
            explain = 1;
        else if (!strcmp (arg, "--calendar") && has_value)
            file = argv[++i];
        else if (!strcmp (arg, "--from") && has_value)
            from_text = argv[++i];
        else if (!strcmp (arg, "--natural-days") && has_value) {
            if (s_parse_count (arg, argv[++i], &n) != 0)
                return 2;
            natural = 1;
        }
        else if (!strcmp (arg, "--working-days") && has_value) {
            if (s_parse_count (arg, argv[++i], &n) != 0)
                return 2;
            working = 1;
        }
        else if (arg[0] != '-' && !date_text)
            date_text = arg;
        else {
            fprintf (stderr, "hcpctl calendar: unexpected argument '%s' (see --help)\n", arg);
            return 2;
        }
    }
    if (!strcmp (action, "check")) {
        if (from_text || natural || working || explain || (file && date_text)) {
            fprintf (stderr, "hcpctl calendar check: takes only a FILE (see --help)\n");
            return 2;
        }
        return s_check (config, file ? file : date_text);
    }
    if (!strcmp (action, "is-workday")) {
        hcp_date_t date;
        if (!date_text || from_text || natural || working) {
            fprintf (stderr, "hcpctl calendar is-workday: give one DATE (see --help)\n");
            return 2;
        }
        if (s_parse_date (date_text, &date) != 0)
            return 2;
        hcp_calendar_t *calendar = s_calendar (config, file);
        return calendar ? s_is_workday (calendar, date, explain) : 3;
    }
    if (!strcmp (action, "deadline")) {
        hcp_date_t from;
        if (!from_text || date_text || natural + working != 1) {
            fprintf (stderr, "hcpctl calendar deadline: give --from DATE and one of "
                             "--natural-days N or --working-days N (see --help)\n");
            return 2;
        }
        if (s_parse_date (from_text, &from) != 0)
            return 2;
        hcp_calendar_t *calendar = s_calendar (config, file);
        return calendar ? s_deadline (calendar, from, n, working, explain) : 3;
    }
    fprintf (stderr, "hcpctl calendar: unknown action '%s' (is-workday, deadline, check)\n",
             action);
    return 2;
}
