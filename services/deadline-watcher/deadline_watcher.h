/*  hcp_deadline_watcher — the work of hcp-deadline-watcher, without its
    loop: one sweep (warn, mark overdue, escalate) and one recomputation
    pass (after a calendar change). main.c calls them on a timer; tests call
    them directly with an injected clock.

    Exactly once, with any number of instances and after any crash: every
    step claims its rows with SELECT … FOR UPDATE SKIP LOCKED and a
    conditional UPDATE (warned_at IS NULL, overdue_at IS NULL, or the old
    dates for a recomputation), and writes the deadline_actions row and the
    event in the same transaction. A step that did not commit left no trace;
    a step that committed is never repeated.
*/
#ifndef HCP_DEADLINE_WATCHER_H_INCLUDED
#define HCP_DEADLINE_WATCHER_H_INCLUDED

#include "hcp_calendar.h"
#include "hcp_db.h"

#include <stdint.h>

//  Event types written by the watcher (events.type). key: the case id.
#define HCP_DEADLINE_EVENT_WARNED     "deadline.warned"
#define HCP_DEADLINE_EVENT_OVERDUE    "deadline.overdue"
#define HCP_DEADLINE_EVENT_ESCALATED  "deadline.escalated"
#define HCP_DEADLINE_EVENT_RECOMPUTED "deadline.recomputed"

typedef struct {
    int batch;               //  rows per transaction (deadline_watcher.batch), >= 1
    int warn_working_days;   //  reminder distance used when recomputing (>= 0)
    const char *escalate_to; //  unit code of the General Office (deadline_watcher.escalate_to)
    const char
        *instance;      //  actor written in deadline_actions, e.g. deadline-watcher@host:1234
    volatile int *stop; //  may be NULL: when it becomes true, work stops between batches
} hcp_deadline_watcher_options_t;

typedef struct {
    long warned;      //  reminders sent (deadline.warned)
    long overdue;     //  deadlines marked overdue and escalated (one of each event)
    long examined;    //  open deadlines looked at by a recomputation pass
    long recomputed;  //  deadlines whose dates a recomputation changed
    long provisional; //  open provisional deadlines seen by a recomputation pass
} hcp_deadline_watcher_stats_t;

typedef struct _hcp_deadline_watcher_t hcp_deadline_watcher_t;

//  Creates a watcher working on db (not owned; one watcher per db). The
//  option strings are copied. Returns NULL only on a programming error.
hcp_deadline_watcher_t *
hcp_deadline_watcher_new (hcp_db_t *db, const hcp_deadline_watcher_options_t *options);

//  Frees the watcher and nulls the pointer. Safe on NULL.
void hcp_deadline_watcher_destroy (hcp_deadline_watcher_t **self_p);

//  One sweep at business time now_ms: first every open deadline whose
//  due_at has passed is marked overdue and escalated (deadline.overdue +
//  deadline.escalated, once each), then every open deadline whose warn_at
//  has passed but not its due_at is warned (deadline.warned, once). A
//  deadline already overdue when first seen is not warned: the escalation
//  says more. Works in transactions of options.batch rows until nothing is
//  left. Adds to *stats (may be NULL). Returns 0, or -1 on a database error
//  (the failed batch was rolled back; hcp_db_lost tells whether to
//  reconnect). Expects db to be connected and outside a transaction.
int hcp_deadline_watcher_sweep (hcp_deadline_watcher_t *self, int64_t now_ms,
                                hcp_deadline_watcher_stats_t *stats);

//  Recomputes the dates of every open deadline with calendar (due_on of
//  working-day deadlines that were not extended; warn_on of all), and
//  stores those that changed: due_on, warn_on, provisional, recomputed + 1,
//  a deadline_actions row and a deadline.recomputed event, once even with
//  several instances (the UPDATE names the old dates). A moved reminder
//  that now lies in the future is sent again; a deadline whose new due_at
//  lies in the future is no longer overdue. log_provisional: also log a
//  warning for each deadline that stays provisional. Adds to *stats.
//  Returns 0, or -1 on a database error (what committed stays; run again).
int hcp_deadline_watcher_recompute (hcp_deadline_watcher_t *self,
                                    const hcp_calendar_t *calendar, int64_t now_ms,
                                    bool log_provisional, hcp_deadline_watcher_stats_t *stats);

//  Counts the open provisional deadlines into *count and writes the earliest
//  due date of one into first_due (11 bytes, "" when none). Returns 0 or -1.
int hcp_deadline_watcher_provisional (hcp_deadline_watcher_t *self, long *count,
                                      char first_due[11]);

#endif
