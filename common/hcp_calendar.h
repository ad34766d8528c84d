/*  hcp_calendar — working days in Asia/Shanghai, from a YAML calendar.

    The calendar file has, per year, the statutory holidays and the adjusted
    working days (weekend days that are working days, 调休):

        years:
          2026:
            holidays: [2026-01-01, ...]
            workdays: [2026-01-04, ...]

    A date is a working day iff (Monday–Friday and not a holiday) or an
    adjusted working day. For a year the file lacks, the answer is computed
    on Monday–Friday and flagged *provisional*: callers store the flag,
    operators see it (log, metric), and the answer is recomputed when the
    calendar is updated.

    Periods (Chinese administrative practice): the day on which a period
    starts is not counted; a period ends at 24:00 Asia/Shanghai of its last
    day. "N working days after D" is the N-th working day after D.
    "N natural days after D" is D + N.

    Dates are hcp_date_t: days since 1970-01-01 (the civil date in
    Asia/Shanghai, UTC+8, no DST).
*/
#ifndef HCP_CALENDAR_H_INCLUDED
#define HCP_CALENDAR_H_INCLUDED

#include "hcp_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t hcp_date_t;
typedef struct _hcp_calendar_t hcp_calendar_t;

//  Loads a calendar file. On failure returns NULL and sets *error (malloc'd,
//  "file:line: key: why"; caller frees). Checks: dates valid and inside
//  their year; no date both holiday and workday; workdays are weekend days.
hcp_calendar_t *hcp_calendar_load (const char *path, char **error);

//  Same from YAML text (name used in messages).
hcp_calendar_t *hcp_calendar_parse (const char *text, const char *name, char **error);

void hcp_calendar_destroy (hcp_calendar_t **self_p);

//  True if the file has data for year.
bool hcp_calendar_has_year (const hcp_calendar_t *self, int year);

//  True if date is a working day. *provisional (may be NULL) is set when the
//  year is missing from the calendar.
bool hcp_calendar_is_workday (const hcp_calendar_t *self, hcp_date_t date, bool *provisional);

//  The N-th working day after from (from itself not counted; n >= 1).
//  *provisional is set if any day counted lies in a missing year.
hcp_date_t hcp_calendar_add_working_days (const hcp_calendar_t *self, hcp_date_t from, int n,
                                          bool *provisional);

//  The working day n working days before date (n >= 1), e.g. the day a
//  reminder is due. *provisional as above.
hcp_date_t hcp_calendar_sub_working_days (const hcp_calendar_t *self, hcp_date_t date, int n,
                                          bool *provisional);

//  from + n (natural days; never provisional).
hcp_date_t hcp_date_add_days (hcp_date_t from, int n);

//  Conversions. parse: "YYYY-MM-DD" → 0, else -1. format: writes
//  "YYYY-MM-DD" into buf (11 bytes) and returns buf. from_ms: the
//  Asia/Shanghai civil date of a Unix time in ms. start_ms / end_ms: 00:00
//  and 24:00 (= next day's 00:00) Asia/Shanghai of date, in Unix ms.
//  year_of / weekday (1 = Monday .. 7 = Sunday).
int hcp_date_parse (const char *text, hcp_date_t *date);
char *hcp_date_format (hcp_date_t date, char buf[11]);
hcp_date_t hcp_date_from_ms (int64_t unix_ms);
int64_t hcp_date_start_ms (hcp_date_t date);
int64_t hcp_date_end_ms (hcp_date_t date);
int hcp_date_year (hcp_date_t date);
int hcp_date_weekday (hcp_date_t date);

//  The calendar in force for this process: loaded from config key
//  calendar.file (default: deploy/config/calendar-cn.yaml found like the
//  migrations, or /usr/share/hcp/calendar-cn.yaml). hcp_calendar_reload
//  reloads it if the file changed (mtime/size) and returns 1 when it did,
//  0 when unchanged, -1 on an error (the old calendar stays, the error is
//  logged). Services call reload on SIGHUP and from their periodic sweep.
//  Without hcp_calendar_configure / use_file, the first call to current
//  loads HCP_CALENDAR_FILE or the default file; if there is none, or it is
//  broken, it logs an error and returns an empty calendar (every answer
//  provisional), never NULL. A pointer returned by current stays valid
//  until the process exits (a reload installs a new calendar and keeps the
//  old one), so callers may use it across a reload. Thread-safe.
hcp_calendar_t *hcp_calendar_current (void);
int hcp_calendar_use_file (const char *path, char **error);
int hcp_calendar_reload (void);

//  ---- Additions (compatible) -------------------------------------------

//  Why a date is or is not a working day, for explanations (hcpctl
//  calendar --explain) and reports.
typedef enum {
    HCP_DAY_WORKDAY = 0,      //  Monday–Friday, not a holiday
    HCP_DAY_ADJUSTED_WORKDAY, //  a Saturday or Sunday that is a working day (调休)
    HCP_DAY_WEEKEND,          //  a Saturday or Sunday, not a working day
    HCP_DAY_HOLIDAY           //  a statutory holiday (any day of the week)
} hcp_day_kind_t;

//  The kind of date; *provisional (may be NULL) as for is_workday.
hcp_day_kind_t hcp_calendar_day_kind (const hcp_calendar_t *self, hcp_date_t date,
                                      bool *provisional);

//  "working day", "adjusted working day", "weekend", "holiday".
const char *hcp_day_kind_name (hcp_day_kind_t kind);

//  The file (or name) the calendar was loaded from. Owned by self.
const char *hcp_calendar_name (const hcp_calendar_t *self);

//  Every *provisional flag above, when set, is written as true or false
//  (never left untouched), so callers need not initialise it.
//
//  How many answers this process gave that were provisional (a year
//  missing from the calendar), for metrics. Each such year is also logged
//  once per process as a warning.
uint64_t hcp_calendar_provisional_count (void);

//  Sets the process calendar from config key calendar.file (environment
//  HCP_CALENDAR_FILE), else the default file (see
//  hcp_calendar_default_path). Services call it at start-up and stop if it
//  fails: returns 0, or -1 with *error set (malloc'd; caller frees).
int hcp_calendar_configure (hcp_config_t *config, char **error);

//  The default calendar file: deploy/config/calendar-cn.yaml relative to
//  the working directory or to the binary (up to four folders up), else
//  /usr/share/hcp/calendar-cn.yaml. Writes the path into buf and returns
//  buf, or NULL when none exists.
char *hcp_calendar_default_path (char *buf, size_t size);

#endif
