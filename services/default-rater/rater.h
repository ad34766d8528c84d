/*  hcp_rater — the rating windows of Art. 11 and the default rating.

    The logic of hcp-default-rater, apart from its loop, so that tests (and
    the benchmark) drive it directly with a chosen "now". Every function runs
    whole transactions of its own on db (it must not be inside one) and is
    safe with any number of instances over one database:

    - hcp_rater_handle_events: delivery.stored opens windows, rating.stored
      closes them; under the durable consumer offset (hcp_offset_claim).
    - hcp_rater_apply_due: claims open windows whose end has passed (FOR
      UPDATE SKIP LOCKED) and stores the defaults, their rating.defaulted
      events and the window states in one transaction.
    - hcp_rater_open_missing: the safety net, opens windows that deliveries
      of a configured stage lack (e.g. while the relay was down).

    See deploy/sql/004_windows.sql and README.md for the rules.
*/
#ifndef HCP_RATER_H_INCLUDED
#define HCP_RATER_H_INCLUDED

#include "hcp_bus.h"
#include "hcp_config.h"
#include "hcp_db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Name of the consumer in consumer_offsets.
#define HCP_RATER_CONSUMER "default-rater"

typedef struct {
    bool stages[4];  //  stages[1..3]: application, consultation, completion
    int window_days; //  natural days after the delivery day (Art. 11: 7)
    int batch;       //  rows (or events) per transaction
} hcp_rater_settings_t;

typedef struct _hcp_rater_t hcp_rater_t;

//  Reads default_rater.stages (a list of names — application, consultation,
//  completion — or numbers 1..3, or the same as a comma-separated text, as
//  HCP_DEFAULT_RATER_STAGES is), default_rater.window_days (1..365, default
//  7) and default_rater.batch (1..10000, default 1000). Returns 0, or -1
//  with *error set ("file:line: key: why", malloc'd, caller frees).
int hcp_rater_settings_load (hcp_config_t *config, hcp_rater_settings_t *settings,
                             char **error);

//  The settings as text for logs and --help ("application,completion").
//  Writes into buf and returns it.
char *hcp_rater_stages_text (const hcp_rater_settings_t *settings, char *buf, size_t size);

//  Creates the logic on a connection (owned by the caller, who keeps it up
//  with hcp_db_ensure). Registers its prepared statements.
hcp_rater_t *hcp_rater_new (hcp_db_t *db, const hcp_rater_settings_t *settings);

void hcp_rater_destroy (hcp_rater_t **self_p);

//  Handles events (any types; only delivery.stored and rating.stored do
//  anything) in one transaction that also advances the consumer offset to
//  through_seq (>= the seq of every event given, > 0). Returns 1 when done,
//  0 when another instance had already handled through_seq (nothing done),
//  -1 on a database error (nothing done; see hcp_db_error). now_ms: the
//  business time written as closed_at of windows closed now.
int hcp_rater_handle_events (hcp_rater_t *self, hcp_event_t *const *events, size_t count,
                             uint64_t through_seq, int64_t now_ms);

//  Applies the defaults of at most batch open windows that ended at or
//  before now_ms (business time), oldest first, in one transaction. A
//  window whose delivery the rater has rated (at any time) is closed
//  'rated' instead. Returns the number of windows closed (< batch: no more
//  are due now), or -1 on a database error (nothing done).
int hcp_rater_apply_due (hcp_rater_t *self, int64_t now_ms);

//  Opens the windows of at most batch deliveries of a configured stage that
//  have none, in one transaction. Returns how many were opened, or -1.
int hcp_rater_open_missing (hcp_rater_t *self, int64_t now_ms);

//  Totals since hcp_rater_new, for logs and tests.
typedef struct {
    uint64_t windows_opened; //  by events or the safety net
    uint64_t windows_rated;  //  closed by a rating before the default
    uint64_t windows_late;   //  rated after the default (rated_late)
    uint64_t defaults;       //  default ratings stored
} hcp_rater_totals_t;

hcp_rater_totals_t hcp_rater_totals (const hcp_rater_t *self);

#endif
