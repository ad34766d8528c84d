/*  hcp_deadline_watcher — see deadline_watcher.h. */
#include "deadline_watcher.h"

#include "hcp_bus.h"
#include "hcp_deadline.h"
#include "hcp_log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _hcp_deadline_watcher_t {
    hcp_db_t *db;
    int batch;
    int warn_working_days;
    char *escalate_to;
    char *instance;
    volatile int *stop;
};

//  $1 now (Unix ms), $2 batch, $3 unit escalated to, $4 actor.
//  Overdue and escalation happen together: a missed deadline goes to the
//  General Office at once (Art. 20). SKIP LOCKED: rows another instance
//  (or case-router, meeting the deadline) holds are left for the next
//  sweep; the UPDATE repeats the conditions so that a row that changed
//  since it was read is not marked twice.
#define S_OVERDUE "dw_overdue"
#define S_OVERDUE_SQL                                                                         \
    "WITH claimed AS ("                                                                       \
    "  SELECT deadline_id FROM deadlines"                                                     \
    "   WHERE state = 'open' AND overdue_at IS NULL"                                          \
    "     AND due_at <= to_timestamp ($1::bigint / 1000.0)"                                   \
    "   ORDER BY due_at LIMIT $2::integer FOR UPDATE SKIP LOCKED),"                           \
    " marked AS ("                                                                            \
    "  UPDATE deadlines d SET overdue_at = to_timestamp ($1::bigint / 1000.0),"               \
    "         escalated_at = to_timestamp ($1::bigint / 1000.0), escalated_to = $3"           \
    "    FROM claimed c"                                                                      \
    "   WHERE d.deadline_id = c.deadline_id AND d.state = 'open'"                             \
    "     AND d.overdue_at IS NULL"                                                           \
    "  RETURNING d.deadline_id, d.case_id, d.kind, d.due_on, d.provisional,"                  \
    "            d.overdue_at),"                                                              \
    " logged AS ("                                                                            \
    "  INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at,"                 \
    "                                due_on, provisional, escalated_to, actor)"               \
    "  SELECT m.deadline_id, m.case_id, m.kind, a.action, m.overdue_at, m.due_on,"            \
    "         m.provisional, CASE WHEN a.action = 'escalated' THEN $3 END, $4"                \
    "    FROM marked m"                                                                       \
    "   CROSS JOIN (VALUES ('overdue'), ('escalated')) AS a (action))"                        \
    " SELECT deadline_id, case_id, kind, due_on::text FROM marked"                            \
    "  ORDER BY deadline_id"

//  $1 now, $2 batch, $3 actor. Only deadlines not yet due: one already
//  overdue gets the escalation instead (the overdue pass runs first).
#define S_WARN "dw_warn"
#define S_WARN_SQL                                                                            \
    "WITH claimed AS ("                                                                       \
    "  SELECT deadline_id FROM deadlines"                                                     \
    "   WHERE state = 'open' AND warned_at IS NULL AND overdue_at IS NULL"                    \
    "     AND warn_at <= to_timestamp ($1::bigint / 1000.0)"                                  \
    "     AND due_at > to_timestamp ($1::bigint / 1000.0)"                                    \
    "   ORDER BY warn_at LIMIT $2::integer FOR UPDATE SKIP LOCKED),"                          \
    " marked AS ("                                                                            \
    "  UPDATE deadlines d SET warned_at = to_timestamp ($1::bigint / 1000.0)"                 \
    "    FROM claimed c"                                                                      \
    "   WHERE d.deadline_id = c.deadline_id AND d.state = 'open'"                             \
    "     AND d.warned_at IS NULL AND d.overdue_at IS NULL"                                   \
    "  RETURNING d.deadline_id, d.case_id, d.kind, d.due_on, d.provisional,"                  \
    "            d.warned_at),"                                                               \
    " logged AS ("                                                                            \
    "  INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at,"                 \
    "                                due_on, provisional, actor)"                             \
    "  SELECT deadline_id, case_id, kind, 'warned', warned_at, due_on,"                       \
    "         provisional, $3 FROM marked)"                                                   \
    " SELECT deadline_id, case_id, kind, due_on::text FROM marked"                            \
    "  ORDER BY deadline_id"

//  Keyset pagination over the open deadlines: $1 last deadline_id seen.
#define S_OPEN_PAGE "dw_open_page"
#define S_OPEN_PAGE_SQL                                                                       \
    "SELECT deadline_id, case_id, kind, starts_on::text, period, day_kind,"                   \
    "       extended_to::text, due_on::text, warn_on::text, provisional"                      \
    "  FROM deadlines WHERE state = 'open' AND deadline_id > $1::bigint"                      \
    " ORDER BY deadline_id LIMIT $2::integer"

//  $1 id, $2 new due_on, $3 new warn_on, $4 new provisional, $5 clear the
//  reminder, $6 clear overdue/escalation, $7..$9 the old dates (the row is
//  only changed if nobody changed it since it was read), $10 now, $11 actor.
#define S_RECOMPUTE "dw_recompute"
#define S_RECOMPUTE_SQL                                                                       \
    "WITH moved AS ("                                                                         \
    "  UPDATE deadlines SET due_on = $2::date, warn_on = $3::date,"                           \
    "         provisional = $4::boolean, recomputed = recomputed + 1,"                        \
    "         warned_at = CASE WHEN $5::boolean THEN NULL ELSE warned_at END,"                \
    "         overdue_at = CASE WHEN $6::boolean THEN NULL ELSE overdue_at END,"              \
    "         escalated_at = CASE WHEN $6::boolean THEN NULL ELSE escalated_at END,"          \
    "         escalated_to = CASE WHEN $6::boolean THEN NULL ELSE escalated_to END"           \
    "   WHERE deadline_id = $1::bigint AND state = 'open' AND due_on = $7::date"              \
    "     AND warn_on = $8::date AND provisional = $9::boolean"                               \
    "  RETURNING deadline_id, case_id, kind, due_on, provisional),"                           \
    " logged AS ("                                                                            \
    "  INSERT INTO deadline_actions (deadline_id, case_id, kind, action, at,"                 \
    "                                due_on, previous_due_on, provisional, actor)"            \
    "  SELECT deadline_id, case_id, kind, 'recomputed',"                                      \
    "         to_timestamp ($10::bigint / 1000.0), due_on, $7::date, provisional,"            \
    "         $11 FROM moved)"                                                                \
    " SELECT deadline_id, case_id FROM moved"

#define S_PROVISIONAL "dw_provisional"
#define S_PROVISIONAL_SQL                                                                     \
    "SELECT count(*), min(due_on)::text FROM deadlines"                                       \
    " WHERE state = 'open' AND provisional"

static int
s_prepare (hcp_db_t *db)
{
    if (hcp_db_prepare (db, S_OVERDUE, S_OVERDUE_SQL)
        || hcp_db_prepare (db, S_WARN, S_WARN_SQL)
        || hcp_db_prepare (db, S_OPEN_PAGE, S_OPEN_PAGE_SQL)
        || hcp_db_prepare (db, S_RECOMPUTE, S_RECOMPUTE_SQL)
        || hcp_db_prepare (db, S_PROVISIONAL, S_PROVISIONAL_SQL))
        return -1;
    return 0;
}

hcp_deadline_watcher_t *
hcp_deadline_watcher_new (hcp_db_t *db, const hcp_deadline_watcher_options_t *options)
{
    assert (db);
    assert (options);
    assert (options->batch >= 1);
    assert (options->warn_working_days >= 0);
    hcp_deadline_watcher_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->db = db;
    self->batch = options->batch;
    self->warn_working_days = options->warn_working_days;
    self->escalate_to = strdup (options->escalate_to ? options->escalate_to : "GO");
    self->instance = strdup (options->instance ? options->instance : "deadline-watcher");
    self->stop = options->stop;
    if (!self->escalate_to || !self->instance)
        abort ();
    return self;
}

void
hcp_deadline_watcher_destroy (hcp_deadline_watcher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_deadline_watcher_t *self = *self_p;
    free (self->escalate_to);
    free (self->instance);
    free (self);
    *self_p = NULL;
}

static bool
s_stopping (hcp_deadline_watcher_t *self)
{
    return self->stop && *self->stop;
}

//  Ends a failed transaction; the connection may be gone already.
static void
s_rollback (hcp_deadline_watcher_t *self)
{
    if (!hcp_db_lost (self->db))
        hcp_db_exec (self->db, "ROLLBACK");
}

//  One batch of one step: claim, record, emit, commit. Returns how many
//  deadlines it handled, or -1.
static int
s_step (hcp_deadline_watcher_t *self, bool overdue, int64_t now_ms)
{
    char now_text[24], batch_text[16];
    snprintf (now_text, sizeof now_text, "%" PRId64, now_ms);
    snprintf (batch_text, sizeof batch_text, "%d", self->batch);
    if (hcp_db_exec (self->db, "BEGIN"))
        return -1;
    PGresult *res;
    if (overdue) {
        const char *values[] = {now_text, batch_text, self->escalate_to, self->instance};
        res = hcp_db_run (self->db, S_OVERDUE, 4, values);
    }
    else {
        const char *values[] = {now_text, batch_text, self->instance};
        res = hcp_db_run (self->db, S_WARN, 3, values);
    }
    if (!hcp_db_ok (self->db, res)) {
        PQclear (res);
        s_rollback (self);
        return -1;
    }
    int rows = PQntuples (res);
    for (int i = 0; i < rows; i++) {
        const char *case_id = PQgetvalue (res, i, 1);
        int rc = overdue
                     ? hcp_event_emit (self->db, HCP_DEADLINE_EVENT_OVERDUE, case_id, NULL, 0)
                           || hcp_event_emit (self->db, HCP_DEADLINE_EVENT_ESCALATED, case_id,
                                              NULL, 0)
                     : hcp_event_emit (self->db, HCP_DEADLINE_EVENT_WARNED, case_id, NULL, 0);
        if (rc) {
            PQclear (res);
            s_rollback (self);
            return -1;
        }
    }
    if (hcp_db_exec (self->db, "COMMIT")) {
        //  Unknown outcome if the connection dropped during COMMIT: either
        //  way the conditional UPDATE keeps the next sweep from doubling.
        PQclear (res);
        s_rollback (self);
        return -1;
    }
    for (int i = 0; i < rows; i++) {
        if (overdue)
            hcp_log_kv (HCP_LOG_WARN, "deadline overdue: escalated to the General Office",
                        "deadline", PQgetvalue (res, i, 0), "case", PQgetvalue (res, i, 1),
                        "kind", PQgetvalue (res, i, 2), "due_on", PQgetvalue (res, i, 3),
                        "escalated_to", self->escalate_to, NULL);
        else
            hcp_log_kv (HCP_LOG_INFO, "deadline due soon: reminder sent", "deadline",
                        PQgetvalue (res, i, 0), "case", PQgetvalue (res, i, 1), "kind",
                        PQgetvalue (res, i, 2), "due_on", PQgetvalue (res, i, 3), NULL);
    }
    PQclear (res);
    return rows;
}

int
hcp_deadline_watcher_sweep (hcp_deadline_watcher_t *self, int64_t now_ms,
                            hcp_deadline_watcher_stats_t *stats)
{
    assert (self);
    if (s_prepare (self->db))
        return -1;
    //  Overdue first, so that a deadline past both its reminder and its
    //  due time is escalated, not reminded.
    for (int pass = 0; pass < 2; pass++) {
        bool overdue = pass == 0;
        while (!s_stopping (self)) {
            int rows = s_step (self, overdue, now_ms);
            if (rows < 0)
                return -1;
            if (stats) {
                if (overdue)
                    stats->overdue += rows;
                else
                    stats->warned += rows;
            }
            if (rows < self->batch)
                break;
        }
    }
    return 0;
}

typedef struct {
    char id[24];
    char case_id[24];
    char kind[24];
    char due_on[11], warn_on[11];
    bool provisional;
    char new_due[11], new_warn[11];
    bool new_provisional;
    bool reset_warn, reset_overdue;
} change_t;

//  Reads one page of open deadlines after *after_id, computes their dates
//  with calendar, and appends the ones that differ to changes. Returns the
//  number of rows read, or -1.
static int
s_read_page (hcp_deadline_watcher_t *self, const hcp_calendar_t *calendar, int64_t now_ms,
             bool log_provisional, int64_t *after_id, change_t *changes, int *change_count,
             hcp_deadline_watcher_stats_t *stats)
{
    char after_text[24], batch_text[16];
    snprintf (after_text, sizeof after_text, "%" PRId64, *after_id);
    snprintf (batch_text, sizeof batch_text, "%d", self->batch);
    const char *values[] = {after_text, batch_text};
    PGresult *res = hcp_db_run (self->db, S_OPEN_PAGE, 2, values);
    if (!hcp_db_ok (self->db, res)) {
        PQclear (res);
        return -1;
    }
    int rows = PQntuples (res);
    for (int i = 0; i < rows; i++) {
        *after_id = strtoll (PQgetvalue (res, i, 0), NULL, 10);
        hcp_date_t starts_on, due_on, warn_on;
        if (hcp_date_parse (PQgetvalue (res, i, 3), &starts_on)
            || hcp_date_parse (PQgetvalue (res, i, 7), &due_on)
            || hcp_date_parse (PQgetvalue (res, i, 8), &warn_on)) {
            hcp_log_kv (HCP_LOG_ERROR, "deadline with unreadable dates left alone", "deadline",
                        PQgetvalue (res, i, 0), NULL);
            continue;
        }
        int period = atoi (PQgetvalue (res, i, 4));
        const char *day_kind = PQgetvalue (res, i, 5);
        bool extended = !PQgetisnull (res, i, 6);
        bool provisional = PQgetvalue (res, i, 9)[0] == 't';
        hcp_deadline_dates_t dates;
        if (extended) {
            //  The extended date is a fixed date someone chose: only its
            //  reminder day depends on the calendar.
            hcp_date_t extended_to;
            hcp_date_parse (PQgetvalue (res, i, 6), &extended_to);
            hcp_deadline_compute (calendar, extended_to, 0, "fixed", self->warn_working_days,
                                  &dates);
        }
        else if (hcp_deadline_compute (calendar, starts_on, period, day_kind,
                                       self->warn_working_days, &dates)
                 != 0) {
            hcp_log_kv (HCP_LOG_ERROR, "deadline with an impossible period left alone",
                        "deadline", PQgetvalue (res, i, 0), "day_kind", day_kind, NULL);
            continue;
        }
        if (stats) {
            stats->examined++;
            stats->provisional += dates.provisional;
        }
        char due_text[11];
        hcp_date_format (dates.due_on, due_text);
        if (dates.provisional && log_provisional) {
            char year_text[8];
            snprintf (year_text, sizeof year_text, "%d", hcp_date_year (dates.due_on));
            hcp_log_kv (
                HCP_LOG_WARN,
                "provisional deadline: the calendar lacks a year, working days counted "
                "Monday-Friday; add the year to the calendar file",
                "deadline", PQgetvalue (res, i, 0), "case", PQgetvalue (res, i, 1), "kind",
                PQgetvalue (res, i, 2), "due_on", due_text, "year", year_text, "calendar",
                hcp_calendar_name (calendar), NULL);
        }
        if (dates.due_on == due_on && dates.warn_on == warn_on
            && dates.provisional == provisional)
            continue;
        change_t *change = &changes[(*change_count)++];
        snprintf (change->id, sizeof change->id, "%s", PQgetvalue (res, i, 0));
        snprintf (change->case_id, sizeof change->case_id, "%s", PQgetvalue (res, i, 1));
        snprintf (change->kind, sizeof change->kind, "%s", PQgetvalue (res, i, 2));
        snprintf (change->due_on, sizeof change->due_on, "%s", PQgetvalue (res, i, 7));
        snprintf (change->warn_on, sizeof change->warn_on, "%s", PQgetvalue (res, i, 8));
        change->provisional = provisional;
        hcp_date_format (dates.due_on, change->new_due);
        hcp_date_format (dates.warn_on, change->new_warn);
        change->new_provisional = dates.provisional;
        //  A reminder for a day still to come is sent (again) on that day;
        //  a deadline whose end moved into the future is no longer overdue.
        change->reset_warn = hcp_date_start_ms (dates.warn_on) > now_ms;
        change->reset_overdue = hcp_date_end_ms (dates.due_on) > now_ms;
    }
    PQclear (res);
    return rows;
}

//  Stores a page of changes in one transaction. Returns how many rows
//  changed (another instance may have stored some first), or -1.
static int
s_store_changes (hcp_deadline_watcher_t *self, change_t *changes, int count, int64_t now_ms)
{
    if (count == 0)
        return 0;
    char now_text[24];
    snprintf (now_text, sizeof now_text, "%" PRId64, now_ms);
    if (hcp_db_exec (self->db, "BEGIN"))
        return -1;
    int changed = 0;
    bool *done = calloc ((size_t) count, sizeof *done);
    if (!done)
        abort ();
    for (int i = 0; i < count; i++) {
        change_t *change = &changes[i];
        const char *values[] = {change->id,
                                change->new_due,
                                change->new_warn,
                                change->new_provisional ? "true" : "false",
                                change->reset_warn ? "true" : "false",
                                change->reset_overdue ? "true" : "false",
                                change->due_on,
                                change->warn_on,
                                change->provisional ? "true" : "false",
                                now_text,
                                self->instance};
        PGresult *res = hcp_db_run (self->db, S_RECOMPUTE, 11, values);
        if (!hcp_db_ok (self->db, res)) {
            PQclear (res);
            free (done);
            s_rollback (self);
            return -1;
        }
        done[i] = PQntuples (res) == 1;
        PQclear (res);
        if (done[i]) {
            if (hcp_event_emit (self->db, HCP_DEADLINE_EVENT_RECOMPUTED, change->case_id, NULL,
                                0)) {
                free (done);
                s_rollback (self);
                return -1;
            }
            changed++;
        }
    }
    if (hcp_db_exec (self->db, "COMMIT")) {
        free (done);
        s_rollback (self);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (!done[i])
            continue;
        change_t *change = &changes[i];
        hcp_log_kv (HCP_LOG_WARN, "deadline recomputed after a calendar change", "deadline",
                    change->id, "case", change->case_id, "kind", change->kind, "due_on_was",
                    change->due_on, "due_on", change->new_due, "warn_on", change->new_warn,
                    "provisional_was", change->provisional ? "true" : "false", "provisional",
                    change->new_provisional ? "true" : "false", NULL);
    }
    free (done);
    return changed;
}

int
hcp_deadline_watcher_recompute (hcp_deadline_watcher_t *self, const hcp_calendar_t *calendar,
                                int64_t now_ms, bool log_provisional,
                                hcp_deadline_watcher_stats_t *stats)
{
    assert (self);
    assert (calendar);
    if (s_prepare (self->db))
        return -1;
    change_t *changes = calloc ((size_t) self->batch, sizeof *changes);
    if (!changes)
        abort ();
    int64_t after_id = 0;
    int rc = 0;
    while (!s_stopping (self)) {
        int change_count = 0;
        int rows = s_read_page (self, calendar, now_ms, log_provisional, &after_id, changes,
                                &change_count, stats);
        if (rows < 0) {
            rc = -1;
            break;
        }
        int changed = s_store_changes (self, changes, change_count, now_ms);
        if (changed < 0) {
            rc = -1;
            break;
        }
        if (stats)
            stats->recomputed += changed;
        if (rows < self->batch)
            break;
    }
    free (changes);
    return rc;
}

int
hcp_deadline_watcher_provisional (hcp_deadline_watcher_t *self, long *count,
                                  char first_due[11])
{
    assert (self);
    assert (count);
    if (s_prepare (self->db))
        return -1;
    PGresult *res = hcp_db_run (self->db, S_PROVISIONAL, 0, NULL);
    if (!hcp_db_ok (self->db, res) || PQntuples (res) != 1) {
        PQclear (res);
        return -1;
    }
    *count = strtol (PQgetvalue (res, 0, 0), NULL, 10);
    if (first_due)
        snprintf (first_due, 11, "%s", PQgetisnull (res, 0, 1) ? "" : PQgetvalue (res, 0, 1));
    PQclear (res);
    return 0;
}
