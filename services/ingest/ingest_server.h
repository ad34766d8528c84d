/*  ingest_server — the hcp-ingest loop: receive, validate, group-commit,
    acknowledge.

    One ROUTER socket; each request is one frame holding an hcp.v1.Submit
    (after the routing id, and after an empty delimiter frame when the
    client is a REQ socket); each reply is one hcp.v1.SubmitReply frame to
    the same routing id. Whatever requests are waiting (up to batch_max)
    form one batch: validated one by one, stored in one transaction
    (ingest_store), recorded in rejected_submissions when refused, and only
    then answered. A reply therefore means "committed" (or "refused and
    recorded"): an adapter that gets no reply resends the same id, which is
    safe because storing is idempotent.

    The main thread receives, validates and replies; a writer thread (czmq
    actor) stores one batch at a time, so the next batch is collected and
    validated while the previous one commits.

    When PostgreSQL is unreachable nothing is acknowledged: the server keeps
    its batch, reconnects with backoff (hcp_db_ensure) and retries it; new
    requests wait in the socket. On SIGTERM it finishes the batch it holds
    and returns; requests not yet read are never answered (adapters resend
    them to the next ingest).
*/
#ifndef INGEST_SERVER_H_INCLUDED
#define INGEST_SERVER_H_INCLUDED

#include "hcp_validate.h"

typedef struct {
    const char *bind;             //  ingest.bind: endpoint(s), comma-separated
    const char *conninfo;         //  database.conninfo ("" = libpq's PG* environment)
    int batch_max;                //  ingest.batch_max: most requests per transaction
    hcp_validate_limits_t limits; //  message size, clock skew, comment length
    int catalog_refresh_s;        //  ingest.catalog_refresh_seconds
    int stats_s;                  //  ingest.stats_seconds: period of the stats log line
} ingest_settings_t;

typedef struct _ingest_server_t ingest_server_t;

//  Fills settings with the defaults (bind tcp://127.0.0.1:5560, batch 500,
//  64 KiB, 300 s skew, 2000 characters, catalog every 60 s, stats every
//  60 s).
void ingest_settings_default (ingest_settings_t *settings);

//  Connects to PostgreSQL (waiting, with backoff, until it answers or a
//  stop is requested), loads the catalog, prepares the statements, and
//  binds the socket. Returns NULL on a fatal error, logged: the endpoint
//  cannot be bound, or the schema lacks what ingest needs.
ingest_server_t *ingest_server_new (const ingest_settings_t *settings);

//  Serves until hcp_service_stopping (). Returns 0 after a clean stop, 1 if
//  it stopped while a batch could not be stored (the database was down).
int ingest_server_run (ingest_server_t *self);

//  Closes the socket and the connection; nulls the pointer. Safe on NULL.
void ingest_server_destroy (ingest_server_t **self_p);

#endif
