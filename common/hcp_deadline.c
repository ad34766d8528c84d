/*  hcp_deadline — see hcp_deadline.h.

    Each function is one or two named prepared statements run in the
    caller's transaction. A data-modifying CTE changes table deadlines and
    appends the matching deadline_actions row in the same statement, so the
    history cannot miss a change even if a caller forgets a step.

    Dates travel as "YYYY-MM-DD" text and instants as Unix milliseconds
    (to_timestamp (ms / 1000.0)): the business clock is ours, never the
    database's now().
*/
#include "hcp_deadline.h"

#include "hcp_clock.h"
#include "hcp_log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int s_warn_working_days = HCP_DEADLINE_WARN_WORKING_DAYS;

//  Opens a deadline unless one of that kind is already open for the case
//  (partial unique index deadlines_one_open_per_kind), and records the
//  opening. No row back means it already existed.
#define S_OPEN "hcp_deadline_open"
#define S_OPEN_SQL                                                                            \
    "WITH opened AS ("                                                                        \
    "  INSERT INTO deadlines (case_id, kind, starts_on, period, day_kind,"                    \
    "                         due_on, warn_on, provisional, opened_at)"                       \
    "  VALUES ($1::bigint, $2, $3::date, $4::integer, $5, $6::date, $7::date,"                \
    "          $8::boolean, to_timestamp ($9::bigint / 1000.0))"                              \
    "  ON CONFLICT (case_id, kind) WHERE state = 'open' DO NOTHING"                           \
    "  RETURNING deadline_id, case_id, kind, due_on, provisional, opened_at),"                \
    " logged AS ("                                                                            \
    "  INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at,"                 \
    "                                due_on, provisional)"                                    \
    "  SELECT deadline_id, case_id, kind, 'opened', opened_at, due_on,"                       \
    "         provisional FROM opened)"                                                       \
    " SELECT deadline_id, due_on::text FROM opened"

//  The deadline that made the open a no-op. A separate statement: it sees
//  rows committed by a concurrent opener that the INSERT waited for.
#define S_EXISTING "hcp_deadline_existing"
#define S_EXISTING_SQL                                                                        \
    "SELECT deadline_id, due_on::text FROM deadlines"                                         \
    " WHERE case_id = $1::bigint AND kind = $2 AND state = 'open'"

#define S_MEET "hcp_deadline_meet"
#define S_MEET_SQL                                                                            \
    "WITH met AS ("                                                                           \
    "  UPDATE deadlines SET state = 'met', met_at = to_timestamp ($3::bigint / 1000.0)"       \
    "   WHERE case_id = $1::bigint AND kind = $2 AND state = 'open'"                          \
    "  RETURNING deadline_id, case_id, kind, due_on, provisional, met_at)"                    \
    " INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at, due_on,"          \
    "                               provisional)"                                             \
    " SELECT deadline_id, case_id, kind, 'met', met_at, due_on, provisional FROM met"

//  $2 NULL: every open deadline of the case.
#define S_CANCEL "hcp_deadline_cancel"
#define S_CANCEL_SQL                                                                          \
    "WITH cancelled AS ("                                                                     \
    "  UPDATE deadlines SET state = 'cancelled',"                                             \
    "         cancelled_at = to_timestamp ($3::bigint / 1000.0)"                              \
    "   WHERE case_id = $1::bigint AND ($2::text IS NULL OR kind = $2)"                       \
    "     AND state = 'open'"                                                                 \
    "  RETURNING deadline_id, case_id, kind, due_on, provisional, cancelled_at)"              \
    " INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at, due_on,"          \
    "                               provisional)"                                             \
    " SELECT deadline_id, case_id, kind, 'cancelled', cancelled_at, due_on,"                  \
    "        provisional FROM cancelled"

//  An extension sets a new date and clears the reminder and overdue marks:
//  the new date gets its own reminder and, if missed, its own escalation
//  (the earlier ones stay in deadline_actions).
#define S_EXTEND "hcp_deadline_extend"
#define S_EXTEND_SQL                                                                          \
    "WITH old AS ("                                                                           \
    "  SELECT deadline_id, due_on FROM deadlines"                                             \
    "   WHERE case_id = $1::bigint AND kind = $2 AND state = 'open' FOR UPDATE),"             \
    " extended AS ("                                                                          \
    "  UPDATE deadlines d SET due_on = $3::date, extended_to = $3::date,"                     \
    "         warn_on = $4::date, provisional = false, extended = d.extended + 1,"            \
    "         warned_at = NULL, overdue_at = NULL, escalated_at = NULL,"                      \
    "         escalated_to = NULL"                                                            \
    "    FROM old WHERE d.deadline_id = old.deadline_id"                                      \
    "  RETURNING d.deadline_id, d.case_id, d.kind, d.due_on,"                                 \
    "            old.due_on AS previous_due_on),"                                             \
    " logged AS ("                                                                            \
    "  INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at,"                 \
    "                                due_on, previous_due_on, provisional)"                   \
    "  SELECT deadline_id, case_id, kind, 'extended',"                                        \
    "         to_timestamp ($5::bigint / 1000.0), due_on, previous_due_on, false"             \
    "    FROM extended)"                                                                      \
    " SELECT deadline_id, previous_due_on::text FROM extended"

#define S_MISSING     "hcp_deadline_missing"
#define S_MISSING_SQL "SELECT hcp_deadline_missing ($1::bigint, $2)"

//  Registers the statements on db (a no-op after the first time: hcp_db
//  keeps them and prepares them again after a reconnect).
static int
s_prepare (hcp_db_t *db)
{
    if (hcp_db_prepare (db, S_OPEN, S_OPEN_SQL)
        || hcp_db_prepare (db, S_EXISTING, S_EXISTING_SQL)
        || hcp_db_prepare (db, S_MEET, S_MEET_SQL)
        || hcp_db_prepare (db, S_CANCEL, S_CANCEL_SQL)
        || hcp_db_prepare (db, S_EXTEND, S_EXTEND_SQL)
        || hcp_db_prepare (db, S_MISSING, S_MISSING_SQL))
        return -1;
    return 0;
}

//  Runs a statement and keeps its result when it succeeded; -1 otherwise
//  (hcp_db_error says why).
static int
s_run (hcp_db_t *db, const char *name, int nparams, const char *const *values,
       PGresult **res_p)
{
    PGresult *res = hcp_db_run (db, name, nparams, values);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        return -1;
    }
    if (res_p)
        *res_p = res;
    else
        PQclear (res);
    return 0;
}

static bool
s_is_kind (const char *kind)
{
    return kind
           && (!strcmp (kind, "form") || !strcmp (kind, "answer")
               || !strcmp (kind, "appeal_decision") || !strcmp (kind, "ledger"));
}

static hcp_date_t
s_warn_on (const hcp_calendar_t *calendar, hcp_date_t due_on, int warn_working_days)
{
    if (warn_working_days <= 0)
        return due_on;
    bool provisional;
    return hcp_calendar_sub_working_days (calendar, due_on, warn_working_days, &provisional);
}

int
hcp_deadline_compute (const hcp_calendar_t *calendar, hcp_date_t starts_on, int n,
                      const char *day_kind, int warn_working_days, hcp_deadline_dates_t *dates)
{
    assert (calendar);
    assert (dates);
    hcp_deadline_dates_t result = {0, 0, false};
    if (!day_kind)
        return -1;
    if (!strcmp (day_kind, "working")) {
        if (n < 1)
            return -1;
        result.due_on = hcp_calendar_add_working_days (calendar, starts_on, n,
                                                       &result.provisional);
    }
    else if (!strcmp (day_kind, "natural")) {
        if (n < 1)
            return -1;
        result.due_on = hcp_date_add_days (starts_on, n);
    }
    else if (!strcmp (day_kind, "fixed"))
        result.due_on = starts_on;
    else
        return -1;
    result.warn_on = s_warn_on (calendar, result.due_on, warn_working_days);
    *dates = result;
    return 0;
}

int
hcp_deadline_configure (hcp_config_t *config, char **error)
{
    long long value = HCP_DEADLINE_WARN_WORKING_DAYS;
    if (config
        && hcp_config_int (config, "deadline_watcher.warn_working_days",
                           HCP_DEADLINE_WARN_WORKING_DAYS, 0, 10, &value)
               != 0) {
        if (error)
            *error = strdup (hcp_config_error (config));
        return -1;
    }
    hcp_deadline_set_warn_working_days ((int) value);
    return 0;
}

void
hcp_deadline_set_warn_working_days (int n)
{
    assert (n >= 0);
    atomic_store (&s_warn_working_days, n);
}

int
hcp_deadline_warn_working_days (void)
{
    return atomic_load (&s_warn_working_days);
}

int
hcp_deadline_open (hcp_db_t *db, int64_t case_id, const char *kind, hcp_date_t starts_on,
                   int n, const char *day_kind, hcp_date_t *due_on)
{
    assert (db);
    if (s_prepare (db))
        return -1;
    const hcp_calendar_t *calendar = hcp_calendar_current ();
    hcp_deadline_dates_t dates;
    if (hcp_deadline_compute (calendar, starts_on, n, day_kind,
                              hcp_deadline_warn_working_days (), &dates)
        != 0) {
        //  Let the table's CHECK constraints give the reason in
        //  hcp_db_error: an impossible period reaches the INSERT and is
        //  refused there (deadlines_period_needed, day_kind, kind).
        dates.due_on = starts_on;
        dates.warn_on = starts_on;
        dates.provisional = false;
    }
    char case_text[24], starts_text[11], n_text[16], due_text[11], warn_text[11], at_text[24];
    snprintf (case_text, sizeof case_text, "%" PRId64, case_id);
    hcp_date_format (starts_on, starts_text);
    snprintf (n_text, sizeof n_text, "%d", day_kind && !strcmp (day_kind, "fixed") ? 0 : n);
    hcp_date_format (dates.due_on, due_text);
    hcp_date_format (dates.warn_on, warn_text);
    snprintf (at_text, sizeof at_text, "%" PRId64, hcp_clock_now_ms ());
    const char *values[] = {
        case_text, kind,     starts_text, n_text,
        day_kind,  due_text, warn_text,   dates.provisional ? "true" : "false",
        at_text};
    PGresult *res;
    if (s_run (db, S_OPEN, 9, values, &res))
        return -1;
    bool inserted = PQntuples (res) == 1;
    if (!inserted) {
        PQclear (res);
        if (s_run (db, S_EXISTING, 2, values, &res))
            return -1;
        if (PQntuples (res) != 1) {
            //  Only under REPEATABLE READ or SERIALIZABLE, where the
            //  conflicting row is invisible: the caller retries.
            PQclear (res);
            hcp_log_kv (HCP_LOG_ERROR,
                        "deadline open conflicted with a row this transaction cannot see "
                        "(use READ COMMITTED)",
                        "case", case_text, "kind", kind, NULL);
            return -1;
        }
    }
    hcp_date_t stored = dates.due_on;
    hcp_date_parse (PQgetvalue (res, 0, 1), &stored);
    if (inserted && dates.provisional) {
        //  Loud on purpose: a provisional date is a guess until the
        //  calendar has that year (deadline-watcher recomputes it then).
        char year_text[8];
        snprintf (year_text, sizeof year_text, "%d", hcp_date_year (dates.due_on));
        hcp_log_kv (HCP_LOG_WARN,
                    "provisional deadline: the calendar lacks a year it needs, working days "
                    "counted Monday-Friday; add the year to the calendar file",
                    "case", case_text, "kind", kind, "due_on", due_text, "year", year_text,
                    "deadline", PQgetvalue (res, 0, 0), NULL);
    }
    PQclear (res);
    if (due_on)
        *due_on = stored;
    return 0;
}

//  Runs statement (S_MEET or S_CANCEL: both take case, kind, at and close
//  the matching open deadlines) for one case at at_ms.
static int
s_close (hcp_db_t *db, const char *statement, int64_t case_id, const char *kind, int64_t at_ms)
{
    assert (db);
    if (s_prepare (db))
        return -1;
    char case_text[24], at_text[24];
    snprintf (case_text, sizeof case_text, "%" PRId64, case_id);
    snprintf (at_text, sizeof at_text, "%" PRId64, at_ms);
    const char *values[] = {case_text, kind, at_text};
    return s_run (db, statement, 3, values, NULL);
}

int
hcp_deadline_meet (hcp_db_t *db, int64_t case_id, const char *kind, int64_t at_ms)
{
    return s_close (db, S_MEET, case_id, kind, at_ms);
}

int
hcp_deadline_cancel (hcp_db_t *db, int64_t case_id, const char *kind, int64_t at_ms)
{
    return s_close (db, S_CANCEL, case_id, kind, at_ms);
}

int
hcp_deadline_extend (hcp_db_t *db, int64_t case_id, const char *kind, hcp_date_t new_due)
{
    assert (db);
    if (s_prepare (db))
        return -1;
    const hcp_calendar_t *calendar = hcp_calendar_current ();
    hcp_date_t warn_on = s_warn_on (calendar, new_due, hcp_deadline_warn_working_days ());
    char case_text[24], due_text[11], warn_text[11], at_text[24];
    snprintf (case_text, sizeof case_text, "%" PRId64, case_id);
    hcp_date_format (new_due, due_text);
    hcp_date_format (warn_on, warn_text);
    snprintf (at_text, sizeof at_text, "%" PRId64, hcp_clock_now_ms ());
    const char *values[] = {case_text, s_is_kind (kind) ? kind : "", due_text, warn_text,
                            at_text};
    PGresult *res;
    if (s_run (db, S_EXTEND, 5, values, &res))
        return -1;
    int found = PQntuples (res);
    if (found == 1)
        hcp_log_kv (HCP_LOG_INFO, "deadline extended", "case", case_text, "kind", kind, "from",
                    PQgetvalue (res, 0, 1), "to", due_text, NULL);
    PQclear (res);
    if (found == 1)
        return 0;
    //  Nothing to extend: raise HD003 so that hcp_db_error names the case
    //  and the kind, and the caller's transaction does not record an
    //  extension that did not happen.
    s_run (db, S_MISSING, 2, values, NULL);
    return -1;
}
