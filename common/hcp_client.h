/*  hcp_client — the C library channel adapters use to hand deliveries and
    ratings to hcp (hcp-ingest).

    The contract in one paragraph: a submission is *received* by hcp when
    this library reports HCP_CLIENT_ACCEPTED (stored now) or
    HCP_CLIENT_DUPLICATE (stored before with the same content). Until then
    the adapter keeps it. The library resends the same bytes under the same
    id when no answer comes in time, with exponential backoff and jitter, up
    to a bounded number of attempts, then reports HCP_CLIENT_FAILED: keep
    the submission and send it again later — with the same id, never a new
    one — since storing is idempotent on the id. HCP_CLIENT_REJECTED is
    final for that content: field, code and reason say what to fix. A
    corrected rating is a new rating with a new id.

    Ids: a rating's id is a UUID chosen by the adapter (use hcp_uuid_v7 from
    hcp_uuid.h: time-ordered ids keep hcp fast); a delivery's id is the
    adapter's own case number (1..64 printable ASCII, e.g. the 办件编号).
    Send the delivery before the ratings that name it.

    Throughput: keep many submissions in flight. One at a time, each waits a
    full round trip (~0.1 ms plus ingest's group commit, a few ms); with 100
    in flight, ingest stores them in a handful of transactions.

    Example — pipelined submission of a batch of ratings:

        #include "hcp_client.h"
        #include "hcp_uuid.h"

        hcp_client_t *client = hcp_client_new ("tcp://ingest-a:5560,tcp://ingest-b:5560",
                                               NULL);   // NULL: default options
        for (size_t i = 0; i < count; i++) {
            Hcp__V1__Rater rater = HCP__V1__RATER__INIT;
            rater.type = HCP__V1__RATER_TYPE__RATER_NATURAL_PERSON;
            Hcp__V1__Rating rating = HCP__V1__RATING__INIT;
            rating.rating_id = rows[i].id;            // a UUIDv7 the adapter stored
            rating.item_code = "000119001000";
            rating.channel = HCP__V1__CHANNEL__CHANNEL_HALL_DEVICE;
            rating.stage = HCP__V1__STAGE__STAGE_COMPLETION;
            rating.rating_count = 1;
            rating.rater = &rater;
            rating.rated_at_ms = rows[i].at_ms;
            rating.standardization = HCP__V1__GRADE__GRADE_VERY_SATISFIED;
            hcp_client_send_rating (client, &rating, &rows[i]);   // copied: may go now
        }
        hcp_client_result_t result;
        while (hcp_client_wait (client, -1, &result) == 1) {      // -1: until all answered
            row_t *row = result.tag;
            if (result.status == HCP_CLIENT_ACCEPTED || result.status == HCP_CLIENT_DUPLICATE)
                mark_delivered (row);
            else if (result.status == HCP_CLIENT_REJECTED)
                report (row, result.field, result.code, result.reason);
            else
                keep_for_later (row);                         // HCP_CLIENT_FAILED
        }
        hcp_client_destroy (&client);

    Or one at a time: hcp_client_submit (client, &submit, &result) blocks
    until the final result.

    Threads: a client is used by one thread at a time; use one client per
    thread. Clients share one ZeroMQ context (one I/O thread) per process.
    The library installs no signal handler.
*/
#ifndef HCP_CLIENT_H_INCLUDED
#define HCP_CLIENT_H_INCLUDED

#include "hcp/v1/ingest.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct _hcp_client_t hcp_client_t;

//  The final outcome of one submission. The first three are ingest's
//  answer (same numbers as hcp.v1.AckStatus); FAILED is the library's.
typedef enum {
    HCP_CLIENT_ACCEPTED = 1,  //  stored now, durably (committed)
    HCP_CLIENT_DUPLICATE = 2, //  stored before with the same content: fine, nothing written
    HCP_CLIENT_REJECTED = 3,  //  refused: field, code, reason say why; do not resend as is
    HCP_CLIENT_FAILED = 4     //  no answer after every attempt: keep it, resend later, same id
} hcp_client_status_t;

//  One submission's outcome, filled by hcp_client_wait / hcp_client_submit.
//  Plain buffers: nothing to free.
typedef struct {
    char id[72]; //  the rating_id or delivery_id submitted
    hcp_client_status_t status;
    char field[64];     //  REJECTED: offending field, e.g. "rating.comment"
    char code[32];      //  REJECTED: machine code, e.g. "invalid_utf8";
                        //  FAILED: "no_answer"
    char reason[256];   //  REJECTED/FAILED: one line for people
    void *tag;          //  what the caller passed to hcp_client_send*
    int attempts;       //  how many times it was sent
    int64_t latency_us; //  first send to final answer, in microseconds
} hcp_client_result_t;

//  Tuning. Zero in a field means "the default".
typedef struct {
    int timeout_ms;     //  wait this long for an answer before resending (default 5000)
    int max_attempts;   //  sends before giving up with FAILED (default 8)
    int backoff_ms;     //  pause before the 2nd send; doubles each time (default 200)
    int backoff_max_ms; //  the pause never exceeds this (default 10000)
    int max_in_flight;  //  sent and unanswered at most; more wait in the client (default
                        //  100)
} hcp_client_options_t;

//  Fills options with the defaults above.
void hcp_client_options_default (hcp_client_options_t *options);

//  Creates a client connected to ingest: endpoints is one ZeroMQ endpoint
//  or several separated by commas ("tcp://10.0.0.5:5560,tcp://10.0.0.6:
//  5560"); submissions are spread over the endpoints that are up, and a
//  resend may go to another one. Connecting is asynchronous: this returns
//  at once even if no ingest is up yet. options may be NULL. Returns NULL if
//  an endpoint is malformed (errno is set).
hcp_client_t *hcp_client_new (const char *endpoints, const hcp_client_options_t *options);

//  Closes the connection and frees the client; submissions still waiting
//  for an answer are dropped without a result (the caller still has them).
//  Nulls the pointer; safe on NULL.
void hcp_client_destroy (hcp_client_t **self_p);

//  Queues one submission: it is encoded (copied) at once and sent as soon
//  as fewer than max_in_flight are unanswered; the caller may reuse its
//  message right away. tag is returned in the result. Never blocks; the
//  sending, resending and answering happen in hcp_client_wait. Returns 0,
//  or -1 with errno EINVAL when submit carries no fact or no id, or EEXIST
//  when a submission with the same id is still in this client (wait for its
//  result first).
int hcp_client_send (hcp_client_t *self, const Hcp__V1__Submit *submit, void *tag);

//  Shorthands wrapping one rating / one delivery in a Submit.
int hcp_client_send_rating (hcp_client_t *self, const Hcp__V1__Rating *rating, void *tag);
int hcp_client_send_delivery (hcp_client_t *self, const Hcp__V1__Delivery *delivery,
                              void *tag);

//  Drives the client — sends what is queued, reads answers, resends what
//  timed out — until one submission has its final result, which is copied
//  into *result. Waits at most timeout_ms (-1: no limit, 0: do not wait).
//  Returns 1 with a result, 0 if none came in time, -1 if the client holds
//  no submission at all (everything was answered).
int hcp_client_wait (hcp_client_t *self, int timeout_ms, hcp_client_result_t *result);

//  How many submissions the client holds (queued, in flight or waiting to
//  be resent), not yet reported by hcp_client_wait.
size_t hcp_client_pending (hcp_client_t *self);

//  Synchronous convenience: sends one submission and waits for its final
//  result (at most about max_attempts × (timeout_ms + backoff)). Results of
//  other submissions of this client that arrive meanwhile are kept for
//  hcp_client_wait. Returns 0 with *result filled (any status, including
//  FAILED), or -1 as hcp_client_send does.
int hcp_client_submit (hcp_client_t *self, const Hcp__V1__Submit *submit,
                       hcp_client_result_t *result);

//  "accepted", "duplicate", "rejected", "failed".
const char *hcp_client_status_name (hcp_client_status_t status);

//  Names used by configuration files, CSV files and hcpctl for the wire
//  enums, e.g. channel "hall-device", stage "completion", rater type
//  "natural-person". *_parse returns the enum number, or -1 for an unknown
//  name (a decimal number within range is accepted too); *_name returns the
//  name, or "unknown" for a number out of range.
int hcp_client_channel_parse (const char *name);
const char *hcp_client_channel_name (int channel);
int hcp_client_stage_parse (const char *name);
const char *hcp_client_stage_name (int stage);
int hcp_client_rater_type_parse (const char *name);
const char *hcp_client_rater_type_name (int rater_type);

//  Grades: 0 (or "" or "unrated") not rated, 1 "very-satisfied" 非常满意,
//  2 "satisfied" 满意, 3 "basically-satisfied" 基本满意, 4 "dissatisfied"
//  不满意, 5 "very-dissatisfied" 非常不满意. Returns -1 for anything else.
int hcp_client_grade_parse (const char *name);
const char *hcp_client_grade_name (int grade);

#endif
