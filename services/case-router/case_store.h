/*  case_store — the transactions of case-router: opening a case for a bad
    rating, and applying a staff command to a case.

    Each transition is one PostgreSQL transaction that does everything or
    nothing: the check, the UPDATE of cases (whose trigger checks the rules
    again and writes the case_history row), the deadlines (meet the old
    ones, open the new ones: hcp_deadline), the event case.<action>
    (hcp_event_emit), and the request id of the command (case_requests),
    so that a retried command is answered, never applied twice.

    Business time is a parameter (now_ms, from hcp_clock_now_ms in the
    service), so tests drive weeks of the workflow without sleeping.

    Commands and their fields (docs/state-machine.md has the full table):
      visit                  cause, reached, method
      file_form              -
      assign                 [unit]  (default: the unit that handles the item)
      transfer               unit, reason
      respond_rectified_now  text
      respond_ledger         text, due (YYYY-MM-DD, after today, within 365 days)
      respond_explained      text
      appeal                 kind (mistaken|malicious), reason
      uphold_appeal          reason
      reject_appeal          reason
      extend                 due (after the current ledger due date), reason
      rectified              text
      close                  [text]
*/
#ifndef HCP_CASE_STORE_H_INCLUDED
#define HCP_CASE_STORE_H_INCLUDED

#include "hcp_bus.h"
#include "hcp_db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The name case-router consumes events under (consumer_offsets).
#define HCP_CASE_CONSUMER "case-router"

typedef struct _hcp_case_command_t hcp_case_command_t;

//  A new command. request_id, actor and action are copied (NULL is kept as
//  "", which is refused by hcp_case_execute with a clear reason).
hcp_case_command_t *hcp_case_command_new (const char *request_id, const char *actor,
                                          const char *action, int64_t case_id);
void hcp_case_command_destroy (hcp_case_command_t **self_p);

//  Sets a field (replacing one of the same key). Both strings are copied.
void hcp_case_command_set (hcp_case_command_t *self, const char *key, const char *value);

//  Optimistic check: refuse (version_conflict) unless the case is still at
//  this version. 0 (the default) means any version.
void hcp_case_command_expect_version (hcp_case_command_t *self, int64_t version);

//  Accessors.
const char *hcp_case_command_request_id (const hcp_case_command_t *self);
const char *hcp_case_command_actor (const hcp_case_command_t *self);
const char *hcp_case_command_action (const hcp_case_command_t *self);
int64_t hcp_case_command_case_id (const hcp_case_command_t *self);
int64_t hcp_case_command_expected_version (const hcp_case_command_t *self);
size_t hcp_case_command_field_count (const hcp_case_command_t *self);
const char *hcp_case_command_field_key (const hcp_case_command_t *self, size_t index);
const char *hcp_case_command_field_value (const hcp_case_command_t *self, size_t index);
//  The value of key, or NULL.
const char *hcp_case_command_get (const hcp_case_command_t *self, const char *key);

typedef enum {
    HCP_CASE_OK = 1,         //  applied (replayed: applied earlier under this request id)
    HCP_CASE_REFUSED = 2,    //  not applied; code and message say why
    HCP_CASE_UNAVAILABLE = 3 //  not applied now (database down): retry, same request id
} hcp_case_status_t;

typedef struct {
    hcp_case_status_t status;
    char code[32];      //  refusal code: illegal_transition, not_found, missing_field,
                        //  invalid_field, version_conflict, unknown_action,
                        //  invalid_command, rejected_by_database
    char message[1024]; //  one line for people
    int64_t case_id;
    char state[32]; //  state after the command (current state when refused)
    int64_t version;
    char allowed[256]; //  for illegal_transition: allowed actions, comma-separated
    char form_number[16];
    bool replayed;
} hcp_case_reply_t;

//  Registers the prepared statements of this module on db (hcp_db_prepare:
//  prepared again after every reconnect). Call once after hcp_db_new.
//  Returns 0, or -1 when a statement does not prepare (schema too old).
int hcp_case_store_prepare (hcp_db_t *db);

//  Opens the case of a bad rating, in the caller's open transaction: the
//  case row (ON CONFLICT (rating_id) DO NOTHING), its form deadline (5
//  working days after the rating day, Art. 21) and the event case.opened;
//  the history row comes from the trigger. actor names the opener (e.g.
//  "case-router"). Returns 1 when a case was opened (*case_id set if not
//  NULL), 0 when there was nothing to do (the rating is not bad, unknown,
//  or already has its case), -1 on a database error (the caller rolls
//  back; hcp_db_error tells why).
int hcp_case_open (hcp_db_t *db, const char *rating_id, int64_t now_ms, const char *actor,
                   int64_t *case_id);

//  Handles one event from the bus in its own transaction: claims it in
//  consumer_offsets (hcp_offset_claim, consumer HCP_CASE_CONSUMER) and, if
//  this instance is the first to handle it and it is a rating.* event,
//  opens the case of the rating (the event's key). The case and the new
//  offset commit together: a crash replays nothing and loses nothing, and
//  of several instances only one acts. Returns 1 when a case was opened, 0
//  when there was nothing to do, -1 on a database error (rolled back; the
//  caller resubscribes from the stored offset, the sweep is the net).
int hcp_case_on_event (hcp_db_t *db, uint64_t seq, const char *type, const char *key,
                       int64_t now_ms);

//  Same for a run of consecutive events (seq ascending) in ONE transaction,
//  claimed up to the last one's seq: at 1,000 ratings/s a commit per event
//  would be the bottleneck. An event already handled by another instance
//  (its offset lay inside the run) opens nothing twice: the case insert is
//  ON CONFLICT (rating_id) DO NOTHING. A rating.* event whose payload is a
//  hcp.v1.Rating with no bad grade is skipped without a query. Returns the
//  number of cases opened (>= 0), or -1 on a database error (rolled back).
int hcp_case_on_events (hcp_db_t *db, hcp_event_t *const *events, size_t count,
                        int64_t now_ms);

//  Fast path: opens the cases of the ratings named in ids (comma-separated
//  rating ids, as sent by NOTIFY hcp_bad_ratings, migration 006), in one
//  transaction that does not wait for the disk flush (a crash loses only
//  work the event path and the sweep redo). Unknown, good or already-cased
//  ratings are skipped. Returns the number of cases opened, or -1 on a
//  database error (rolled back).
int hcp_case_open_listed (hcp_db_t *db, const char *ids, int64_t now_ms, const char *actor);

//  Safety net: opens the case of every bad rating rated at or after
//  since_ms (0: all) that has none, at most limit of them, each in its own
//  transaction. Safe with several instances (the unique rating_id decides).
//  Returns the number of cases opened, or -1 on a database error.
int hcp_case_sweep (hcp_db_t *db, int64_t since_ms, int limit, int64_t now_ms,
                    const char *actor);

//  Applies a staff command in its own transaction(s) and fills *reply.
//  Never applies a request id twice: a retry gets the stored answer with
//  replayed set. A refusal is stored too (the same request id always gets
//  the same answer). On a lost connection the status is
//  HCP_CASE_UNAVAILABLE and nothing was stored.
void hcp_case_execute (hcp_db_t *db, const hcp_case_command_t *command, int64_t now_ms,
                       hcp_case_reply_t *reply);

#endif
