/*  hcp_deadline — the deadlines of bad-review cases (Art. 21-23), stored in
    table deadlines (migration 005_deadlines.sql).

    case-router opens and closes deadlines inside its own transactions;
    deadline-watcher warns before they fall due, marks them overdue and
    escalates, and recomputes them when the calendar changes.

    Kinds and their periods (configurable by the caller, defaults here):
      form             5 working days after the rating day      (Art. 21)
      answer          10 working days after the form was received (Art. 23)
      appeal_decision 10 working days after the appeal was filed
      ledger          a date the unit set (day_kind "fixed")      (Art. 22)

    All functions run in the caller's open transaction on db and return 0,
    or -1 with hcp_db_error (db) telling why.
*/
#ifndef HCP_DEADLINE_H_INCLUDED
#define HCP_DEADLINE_H_INCLUDED

#include "hcp_calendar.h"
#include "hcp_config.h"
#include "hcp_db.h"

#include <stdbool.h>
#include <stdint.h>

#define HCP_DEADLINE_FORM_WORKING_DAYS   5
#define HCP_DEADLINE_ANSWER_WORKING_DAYS 10
#define HCP_DEADLINE_APPEAL_WORKING_DAYS 10

//  Opens (or, if that case already has an open deadline of that kind,
//  leaves as it is: idempotent) a deadline of n working ("working") or
//  natural ("natural") days after starts_on, or on the date starts_on
//  itself ("fixed", n ignored). Computes due_on with the current calendar,
//  the provisional flag, and warn_on (warn_working_days before due_on).
//  *due_on (may be NULL) receives the due date.
int hcp_deadline_open (hcp_db_t *db, int64_t case_id, const char *kind, hcp_date_t starts_on,
                       int n, const char *day_kind, hcp_date_t *due_on);

//  Marks the open deadline of that kind met at at_ms (the action that
//  satisfied it happened). No open deadline of the kind: 0, nothing done.
int hcp_deadline_meet (hcp_db_t *db, int64_t case_id, const char *kind, int64_t at_ms);

//  Cancels every open deadline of the case (e.g. a case closed or
//  transferred), or only those of one kind if kind is not NULL.
int hcp_deadline_cancel (hcp_db_t *db, int64_t case_id, const char *kind, int64_t at_ms);

//  Moves the open ledger deadline to new_due (one extension, Art. 22): the
//  caller has checked that it is the first. Resets its warning state.
//  (Also: no open deadline of the kind is -1, SQLSTATE HD003; a second
//  extension of a ledger deadline is refused by a CHECK constraint.)
int hcp_deadline_extend (hcp_db_t *db, int64_t case_id, const char *kind, hcp_date_t new_due);

//  ---- Additions (compatible) -------------------------------------------

//  Default number of working days before due_on on which the reminder
//  falls (config deadline_watcher.warn_working_days).
#define HCP_DEADLINE_WARN_WORKING_DAYS 1

//  The dates of a deadline, as hcp_deadline_compute gives them.
typedef struct {
    hcp_date_t due_on;  //  last day of the period (ends 24:00 Asia/Shanghai)
    hcp_date_t warn_on; //  reminder day: warn_working_days working days before due_on
    bool provisional;   //  due_on counted days of a year the calendar lacks
} hcp_deadline_dates_t;

//  Computes the dates of a deadline without touching the database: n
//  working or natural days after starts_on (starts_on itself not counted),
//  or starts_on itself for "fixed" (n ignored). warn_on is warn_working_days
//  (>= 0; 0 = on the due day) working days before due_on. provisional is set
//  only for working days counted in a year the calendar lacks (natural and
//  fixed dates are exact; their reminder day may be a Monday–Friday guess,
//  which deadline-watcher corrects on reload like any other date).
//  Returns 0, or -1 when day_kind is not working|natural|fixed or n < 1 for
//  a period (*dates is then untouched).
int hcp_deadline_compute (const hcp_calendar_t *calendar, hcp_date_t starts_on, int n,
                          const char *day_kind, int warn_working_days,
                          hcp_deadline_dates_t *dates);

//  The reminder distance used by hcp_deadline_open and _extend in this
//  process (default HCP_DEADLINE_WARN_WORKING_DAYS). hcp_deadline_configure
//  reads it from config key deadline_watcher.warn_working_days (0..10;
//  environment HCP_DEADLINE_WATCHER_WARN_WORKING_DAYS), so case-router and
//  deadline-watcher agree; returns 0, or -1 with *error set (malloc'd,
//  "file:line: key: why"; caller frees) and the setting unchanged.
int hcp_deadline_configure (hcp_config_t *config, char **error);
void hcp_deadline_set_warn_working_days (int n);
int hcp_deadline_warn_working_days (void);

#endif
