/*  ingest_store — group commit of validated facts into PostgreSQL.

    A batch of facts (deliveries and ratings from many adapters) goes into
    one transaction of a few multi-row statements, whatever its size:

        BEGIN
          deliveries: INSERT ... SELECT FROM unnest (arrays) ON CONFLICT DO
                      NOTHING, with rater_pii and a delivery.stored event per
                      newly stored row (one statement, data-modifying CTEs)
          ratings:    look up the deliveries they name (stored before or in
                      this batch), then the same INSERT for ratings with
                      rating.stored events
          ids not stored: compare fingerprints → duplicate or conflict
        COMMIT

    The fingerprint is the SHA-256 (PostgreSQL sha256()) of the canonical
    encoding of the fact: re-encoded by protobuf-c (deterministic field
    order, defaults omitted, unknown fields dropped) with a rating id in
    lower case. The same content under the same id is a duplicate, other
    content a conflict. Event payloads are the same encoding with the
    rater's name, phone and id_number cleared: no personal data on the bus.

    Two copies of one id in one batch: the first goes to the database, the
    later ones are judged against it once it is decided — duplicate (same
    content) or conflict. Only when the first was refused for another reason
    (its delivery unknown, say) are they marked INGEST_DEFERRED, for the
    caller to put into the next batch.

    Statements are prepared through hcp_db, so they survive reconnects.
    Nothing is built from input: every value is a binary array parameter.
*/
#ifndef INGEST_STORE_H_INCLUDED
#define INGEST_STORE_H_INCLUDED

#include "hcp/v1/ingest.pb-c.h"
#include "hcp_db.h"
#include "hcp_validate.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    INGEST_PENDING = 0,   //  valid, not yet stored
    INGEST_ACCEPTED = 1,  //  stored by this batch (values match hcp.v1.AckStatus)
    INGEST_DUPLICATE = 2, //  stored before with the same content
    INGEST_REJECTED = 3,  //  refused; rejection says why
    INGEST_DEFERRED = 4   //  same id as an earlier, refused fact of the batch: next batch
} ingest_outcome_t;

//  One submission on its way through ingest. The caller fills raw, size,
//  peer and submit; ingest_fact_prepare and the store fill the rest.
typedef struct {
    const uint8_t *raw;      //  the message as received (not owned), for the excerpt
    size_t raw_size;         //  its size in bytes
    char peer[24];           //  routing id of the sender, hex (for rejected_submissions)
    Hcp__V1__Submit *submit; //  decoded message, or NULL; owned (freed by ingest_fact_clear)
    int kind;                //  HCP__V1__SUBMIT__FACT_DELIVERY / _RATING once prepared
    char key[72];            //  canonical id: lower-case rating UUID, or delivery_id
    uint8_t *canonical;      //  canonical encoding (fingerprint input), owned
    size_t canonical_size;
    uint8_t *payload;    //  event payload (canonical without personal data), owned
    size_t payload_size; //  (payload may equal canonical: see ingest_fact_clear)
    ingest_outcome_t outcome;
    hcp_rejection_t rejection; //  when outcome is INGEST_REJECTED
} ingest_fact_t;

typedef struct _ingest_store_t ingest_store_t;

//  Computes the canonical key, the canonical encoding and the event
//  payload of a validated fact (submit must have passed hcp_validate_submit).
//  Sets outcome to INGEST_PENDING. Returns 0, or -1 if submit has no fact.
int ingest_fact_prepare (ingest_fact_t *fact);

//  Marks the fact rejected with the given reason.
void ingest_fact_reject (ingest_fact_t *fact, const hcp_rejection_t *rejection);

//  Frees what the fact owns (submit, encodings) and zeroes it.
void ingest_fact_clear (ingest_fact_t *fact);

//  The id to record for a fact in rejected_submissions and the log: its
//  rating_id or delivery_id when that is short printable text, else NULL.
const char *ingest_fact_id (const ingest_fact_t *fact);

//  Registers the statements with db (prepared now if connected, and after
//  every reconnect). Returns NULL if a statement does not prepare against
//  the schema (a migration missing): the message is in hcp_db_error.
ingest_store_t *ingest_store_new (hcp_db_t *db);

//  Frees the store (not the db) and nulls the pointer. Safe on NULL.
void ingest_store_destroy (ingest_store_t **self_p);

//  Stores the facts whose outcome is INGEST_PENDING in one transaction and
//  sets each one's outcome: ACCEPTED, DUPLICATE, REJECTED (conflict, or a
//  rating whose delivery is unknown or later) or DEFERRED. Returns 0 once
//  committed. Returns -1 when nothing could be committed for a reason worth
//  retrying (connection lost, deadlock, disk full, ...): the pending facts
//  are left PENDING, and the caller reconnects or waits and calls again —
//  safe, since every insert is idempotent. A fact the database refuses as
//  data (an SQLSTATE of class 22 or 23, which validation should prevent) is
//  isolated by storing the batch one fact at a time and rejected with code
//  "storage_refused"; the others are stored.
int ingest_store_commit (ingest_store_t *self, ingest_fact_t **facts, size_t count);

//  Records the REJECTED facts among facts in rejected_submissions (one
//  statement, its own transaction; excerpt = the first 1 KiB of the raw
//  message). Returns 0, or -1 if the connection was lost (call again after
//  reconnecting). Any other database error is logged and the rejections
//  are dropped from the table (they were logged already) so that a broken
//  table never stops the service: returns 0 then.
int ingest_store_record_rejections (ingest_store_t *self, ingest_fact_t **facts, size_t count);

#endif
