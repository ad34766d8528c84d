/*  ingest_server — see ingest_server.h.

    Two threads, talking by messages. The main thread owns the socket: it
    receives requests, validates each one as it arrives (with the catalog
    and its own database connection for catalog reloads), and replies. The
    writer thread (a czmq actor) owns the writing connection: it takes one
    batch at a time, stores it (ingest_store: one transaction, retried until
    it holds) and records its rejections, then hands it back. While the
    writer commits batch N, the main thread collects and validates batch
    N+1, so the work of ingest and the work of PostgreSQL overlap instead of
    taking turns. A batch is handed over whole and handed back whole: no
    request is touched by both threads at once.
*/
#include "ingest_server.h"

#include "ingest_catalog.h"
#include "ingest_store.h"

#include "hcp_clock.h"
#include "hcp_db.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <czmq.h>
#include <errno.h>
#include <time.h>

//  One request: transport details and the fact on its way.
typedef struct {
    ingest_fact_t fact;
    zmq_msg_t body;
    uint8_t routing_id[256];
    size_t routing_id_size;
    bool delimiter; //  the client is a REQ socket: echo the empty frame
} s_request_t;

//  A batch: collected by the main thread, stored by the writer.
typedef struct {
    s_request_t *requests; //  room for 2 × batch_max (deferred ones carried over)
    ingest_fact_t **facts;
    size_t count;
    int rc;           //  writer: 0 stored and recorded, -1 gave up (stopping)
    uint64_t retries; //  writer: attempts that failed and were retried
    int64_t store_us; //  writer: time spent
} s_batch_t;

typedef struct {
    uint64_t accepted, duplicate, rejected, batches, facts, retries;
    int64_t store_us;
    size_t largest;
} s_stats_t;

struct _ingest_server_t {
    ingest_settings_t settings;
    hcp_db_t *db;         //  the writer's connection
    hcp_db_t *catalog_db; //  the main thread's, for catalog reloads
    ingest_store_t *store;
    ingest_catalog_t *catalog;
    zsock_t *router;
    void *handle; //  the libzmq socket behind router
    zactor_t *writer;
    s_batch_t batches[2];
    s_batch_t *collecting; //  being filled by the main thread
    s_batch_t *writing;    //  with the writer, or NULL
    int64_t catalog_loaded_us;
    int64_t stats_at_us;
    s_stats_t period, total;
};

//  A submission naming an unknown item refreshes the catalog at most this
//  often: an operator may just have loaded new items, but a stream of bad
//  codes must not turn into a stream of queries.
#define S_CATALOG_MISS_REFRESH_US (5 * 1000000LL)

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
s_sleep_ms (long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep (&ts, NULL);
}

void
ingest_settings_default (ingest_settings_t *settings)
{
    settings->bind = "tcp://127.0.0.1:5560";
    settings->conninfo = "";
    settings->batch_max = 500;
    hcp_validate_limits_default (&settings->limits);
    settings->catalog_refresh_s = 60;
    settings->stats_s = 60;
}

static int
s_load_catalog (ingest_server_t *self)
{
    int active = -1;
    if (hcp_db_ensure (self->catalog_db, 0, NULL) == 0)
        active = ingest_catalog_load (self->catalog, self->catalog_db);
    self->catalog_loaded_us = s_now_us ();
    if (active < 0)
        hcp_warn ("cannot refresh the catalog, keeping the cached one: %s",
                  hcp_db_error (self->catalog_db));
    else
        hcp_debug ("catalog loaded: %d active items", active);
    return active;
}

//  --------------------------------------------------------------------------
//  The writer thread

//  Runs step (commit or record) until it succeeds, reconnecting when the
//  connection is gone. Returns 0, or -1 when asked to stop before it could.
static int
s_until_stored (ingest_server_t *self, s_batch_t *batch,
                int (*step) (ingest_store_t *, ingest_fact_t **, size_t))
{
    long backoff_ms = 100;
    int failures = 0;
    while (step (self->store, batch->facts, batch->count) != 0) {
        failures++;
        batch->retries++;
        if (hcp_db_lost (self->db)) {
            if (hcp_db_ensure (self->db, -1, hcp_service_stop_flag ()) != 0)
                return -1;
        }
        else {
            //  Up but refusing (deadlock, disk full, ...): wait and retry;
            //  when stopping, give up after a few tries.
            if (hcp_service_stopping () && failures >= 3)
                return -1;
            s_sleep_ms (backoff_ms / 2 + rand () % (backoff_ms / 2 + 1));
            if (backoff_ms < 5000)
                backoff_ms *= 2;
        }
    }
    return 0;
}

static void
s_writer (zsock_t *pipe, void *args)
{
    ingest_server_t *self = args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        s_batch_t *batch = NULL;
        if (zsock_recv (pipe, "sp", &command, &batch) != 0)
            break; //  interrupted
        bool term = !command || streq (command, "$TERM");
        free (command);
        if (term)
            break;
        if (!batch)
            continue;
        int64_t started = s_now_us ();
        for (size_t i = 0; i < batch->count; i++)
            batch->facts[i] = &batch->requests[i].fact;
        batch->rc = s_until_stored (self, batch, ingest_store_commit) == 0
                            && s_until_stored (self, batch, ingest_store_record_rejections)
                                   == 0
                        ? 0
                        : -1;
        batch->store_us = s_now_us () - started;
        zsock_send (pipe, "sp", "DONE", batch);
    }
}

//  --------------------------------------------------------------------------
//  Lifecycle

ingest_server_t *
ingest_server_new (const ingest_settings_t *settings)
{
    ingest_server_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->settings = *settings;
    self->db = hcp_db_new (settings->conninfo, "hcp-ingest");
    self->catalog_db = hcp_db_new (settings->conninfo, "hcp-ingest-catalog");
    self->catalog = ingest_catalog_new ();
    for (int i = 0; i < 2; i++) {
        s_batch_t *batch = &self->batches[i];
        batch->requests = calloc (2 * (size_t) settings->batch_max, sizeof *batch->requests);
        batch->facts = calloc (2 * (size_t) settings->batch_max, sizeof *batch->facts);
        if (!batch->requests || !batch->facts)
            abort ();
    }
    self->collecting = &self->batches[0];

    //  The catalog must be loaded before the first submission is judged,
    //  or every item would look unknown: wait for the database first.
    if (hcp_db_ensure (self->db, -1, hcp_service_stop_flag ()) != 0
        || hcp_db_ensure (self->catalog_db, -1, hcp_service_stop_flag ()) != 0) {
        hcp_error ("stopped before the database answered");
        ingest_server_destroy (&self);
        return NULL;
    }
    self->store = ingest_store_new (self->db);
    if (!self->store) {
        hcp_error ("the database schema lacks what ingest needs (run hcpctl migrate): %s",
                   hcp_db_error (self->db));
        ingest_server_destroy (&self);
        return NULL;
    }
    int active = s_load_catalog (self);
    if (active < 0) {
        ingest_server_destroy (&self);
        return NULL;
    }
    if (active == 0)
        hcp_warn ("the catalog has no active service item: every submission will be rejected "
                  "(load one with hcpctl catalog load)");

    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router)
        abort ();
    //  Messages far over the limit are cut off by libzmq itself (the peer
    //  is disconnected); those up to 16× are received and answered
    //  "too_large" so the adapter learns why.
    zsock_set_maxmsgsize (self->router,
                          (int) (settings->limits.max_message_bytes * 16 + 1024));
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_linger (self->router, 2000);
    if (zsock_attach (self->router, settings->bind, true) != 0) {
        hcp_error ("cannot bind ingest.bind '%s': %s", settings->bind,
                   zmq_strerror (zmq_errno ()));
        ingest_server_destroy (&self);
        return NULL;
    }
    self->handle = zsock_resolve (self->router);
    self->writer = zactor_new (s_writer, self);
    self->stats_at_us = s_now_us ();
    hcp_log_kv (HCP_LOG_INFO, "ingest ready", "bind", settings->bind, NULL);
    return self;
}

void
ingest_server_destroy (ingest_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingest_server_t *self = *self_p;
    //  The writer finishes the batch it holds before it reads $TERM.
    zactor_destroy (&self->writer);
    for (int i = 0; i < 2; i++) {
        s_batch_t *batch = &self->batches[i];
        for (size_t r = 0; batch->requests && r < batch->count; r++) {
            ingest_fact_clear (&batch->requests[r].fact);
            zmq_msg_close (&batch->requests[r].body);
        }
        free (batch->requests);
        free (batch->facts);
    }
    zsock_destroy (&self->router);
    ingest_store_destroy (&self->store);
    ingest_catalog_destroy (&self->catalog);
    hcp_db_destroy (&self->db);
    hcp_db_destroy (&self->catalog_db);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Receiving and validating (main thread)

static void
s_validate (ingest_server_t *self, s_request_t *request, int64_t now_ms)
{
    ingest_fact_t *fact = &request->fact;
    hcp_rejection_t why;
    if (!fact->submit) {
        if (hcp_validate_decode (fact->raw, fact->raw_size, &self->settings.limits,
                                 &fact->submit, &why)) {
            ingest_fact_reject (fact, &why);
            return;
        }
    }
    if (hcp_validate_submit (fact->submit, &self->settings.limits, now_ms,
                             ingest_catalog_lookup, self->catalog, &why))
        ingest_fact_reject (fact, &why);
    else
        ingest_fact_prepare (fact);
}

//  Reads one request without waiting into the collecting batch and
//  validates it. Returns 1 if one was added, 0 if none was waiting.
static int
s_receive (ingest_server_t *self)
{
    s_batch_t *batch = self->collecting;
    s_request_t *request = &batch->requests[batch->count];
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, self->handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frame);
        return 0;
    }
    memset (request, 0, sizeof *request);
    request->routing_id_size = zmq_msg_size (&frame);
    if (request->routing_id_size > sizeof request->routing_id)
        request->routing_id_size = sizeof request->routing_id;
    memcpy (request->routing_id, zmq_msg_data (&frame), request->routing_id_size);
    int more = zmq_msg_more (&frame);
    zmq_msg_close (&frame);
    zmq_msg_init (&request->body);
    //  The rest of a multipart message is already here: blocking reads.
    if (more && zmq_msg_recv (&request->body, self->handle, 0) >= 0) {
        more = zmq_msg_more (&request->body);
        if (more && zmq_msg_size (&request->body) == 0) {
            request->delimiter = true;
            zmq_msg_close (&request->body);
            zmq_msg_init (&request->body);
            if (zmq_msg_recv (&request->body, self->handle, 0) < 0)
                more = 0;
            else
                more = zmq_msg_more (&request->body);
        }
    }
    int extra = 0;
    while (more) {
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->handle, 0) < 0)
            break;
        extra++;
        more = zmq_msg_more (&frame);
        zmq_msg_close (&frame);
    }
    batch->count++;
    ingest_fact_t *fact = &request->fact;
    fact->raw = zmq_msg_data (&request->body);
    fact->raw_size = zmq_msg_size (&request->body);
    for (size_t i = 0; i < request->routing_id_size && i < (sizeof fact->peer - 1) / 2; i++)
        snprintf (fact->peer + 2 * i, 3, "%02x", request->routing_id[i]);
    if (extra) {
        hcp_rejection_set (&fact->rejection, "message", "undecodable",
                           "a request is one frame holding an hcp.v1.Submit; got %d more",
                           extra);
        fact->outcome = INGEST_REJECTED;
    }
    else
        s_validate (self, request, hcp_clock_now_ms ());
    return 1;
}

static bool
s_is_catalog_miss (const ingest_fact_t *fact)
{
    return fact->outcome == INGEST_REJECTED
           && (!strcmp (fact->rejection.code, "unknown_item")
               || !strcmp (fact->rejection.code, "inactive_item"));
}

//  Before a batch goes to the writer: an unknown item code may be a new
//  item, so look again (at most every few seconds) and judge once more.
static void
s_recheck_catalog_misses (ingest_server_t *self, s_batch_t *batch)
{
    size_t misses = 0;
    for (size_t i = 0; i < batch->count; i++)
        misses += s_is_catalog_miss (&batch->requests[i].fact);
    if (!misses || s_now_us () - self->catalog_loaded_us <= S_CATALOG_MISS_REFRESH_US
        || s_load_catalog (self) < 0)
        return;
    int64_t now_ms = hcp_clock_now_ms ();
    for (size_t i = 0; i < batch->count; i++)
        if (s_is_catalog_miss (&batch->requests[i].fact))
            s_validate (self, &batch->requests[i], now_ms);
}

//  Hands the collected batch to the writer and starts a new one.
static void
s_dispatch (ingest_server_t *self)
{
    s_batch_t *batch = self->collecting;
    s_recheck_catalog_misses (self, batch);
    batch->rc = 0;
    batch->retries = 0;
    batch->store_us = 0;
    self->writing = batch;
    self->collecting = batch == &self->batches[0] ? &self->batches[1] : &self->batches[0];
    zsock_send (self->writer, "sp", "BATCH", batch);
}

//  --------------------------------------------------------------------------
//  Replying (main thread)

static void
s_reply (ingest_server_t *self, s_request_t *request)
{
    const ingest_fact_t *fact = &request->fact;
    Hcp__V1__SubmitReply reply = HCP__V1__SUBMIT_REPLY__INIT;
    reply.id = (char *) hcp_validate_fact_id (fact->submit);
    reply.status = (Hcp__V1__AckStatus) fact->outcome;
    if (fact->outcome == INGEST_REJECTED) {
        reply.field = (char *) fact->rejection.field;
        reply.code = (char *) fact->rejection.code;
        reply.reason = (char *) fact->rejection.reason;
    }
    size_t size = hcp__v1__submit_reply__get_packed_size (&reply);
    zmq_msg_t message;
    zmq_msg_init_size (&message, size);
    hcp__v1__submit_reply__pack (&reply, zmq_msg_data (&message));
    //  A peer that went away meanwhile is simply not answered (ROUTER
    //  drops messages to unknown routing ids).
    zmq_send (self->handle, request->routing_id, request->routing_id_size, ZMQ_SNDMORE);
    if (request->delimiter)
        zmq_send (self->handle, "", 0, ZMQ_SNDMORE);
    if (zmq_msg_send (&message, self->handle, 0) < 0)
        zmq_msg_close (&message);
}

static void
s_log_rejection (const ingest_fact_t *fact)
{
    const char *id = ingest_fact_id (fact);
    char size[24];
    snprintf (size, sizeof size, "%zu", fact->raw_size);
    hcp_log_kv (HCP_LOG_WARN, "submission rejected", "id", id ? id : "-", "field",
                fact->rejection.field, "code", fact->rejection.code, "reason",
                fact->rejection.reason, "peer", fact->peer, "bytes", size, NULL);
}

//  Moves a request into batch (deferred: it goes again with the next one).
static void
s_carry (s_batch_t *batch, s_request_t *from)
{
    s_request_t *to = &batch->requests[batch->count++];
    *to = *from;
    //  A small zmq_msg_t holds its bytes inline: move it properly and point
    //  raw at its new place.
    zmq_msg_init (&to->body);
    zmq_msg_move (&to->body, &from->body);
    zmq_msg_close (&from->body);
    to->fact.raw = zmq_msg_data (&to->body);
    to->fact.outcome = INGEST_PENDING;
}

//  A batch came back from the writer: answer it. Returns 0, or -1 when it
//  could not be stored before a stop (nothing answered).
static int
s_complete (ingest_server_t *self)
{
    s_batch_t *batch = self->writing;
    self->writing = NULL;
    self->period.retries += batch->retries;
    if (batch->rc != 0) {
        hcp_warn ("stopping with %zu submissions not stored and not answered (adapters resend "
                  "them)",
                  batch->count);
        return -1;
    }
    self->period.store_us += batch->store_us;
    self->period.batches++;
    self->period.facts += batch->count;
    if (batch->count > self->period.largest)
        self->period.largest = batch->count;
    for (size_t i = 0; i < batch->count; i++) {
        s_request_t *request = &batch->requests[i];
        ingest_fact_t *fact = &request->fact;
        if (fact->outcome == INGEST_DEFERRED) {
            s_carry (self->collecting, request);
            continue;
        }
        if (fact->outcome == INGEST_ACCEPTED)
            self->period.accepted++;
        else if (fact->outcome == INGEST_DUPLICATE)
            self->period.duplicate++;
        else {
            self->period.rejected++;
            s_log_rejection (fact);
        }
        s_reply (self, request);
        ingest_fact_clear (fact);
        zmq_msg_close (&request->body);
    }
    batch->count = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Periodic work

static void
s_log_stats (ingest_server_t *self)
{
    s_stats_t *p = &self->period;
    s_stats_t *t = &self->total;
    t->accepted += p->accepted;
    t->duplicate += p->duplicate;
    t->rejected += p->rejected;
    t->batches += p->batches;
    t->facts += p->facts;
    t->retries += p->retries;
    if (p->batches || p->retries) {
        char values[9][32];
        snprintf (values[0], 32, "%llu", (unsigned long long) p->accepted);
        snprintf (values[1], 32, "%llu", (unsigned long long) p->duplicate);
        snprintf (values[2], 32, "%llu", (unsigned long long) p->rejected);
        snprintf (values[3], 32, "%llu", (unsigned long long) p->batches);
        snprintf (values[4], 32, "%.1f",
                  p->batches ? (double) p->facts / (double) p->batches : 0);
        snprintf (values[5], 32, "%zu", p->largest);
        snprintf (values[6], 32, "%.2f",
                  p->batches ? (double) p->store_us / (double) p->batches / 1000.0 : 0);
        snprintf (values[7], 32, "%llu", (unsigned long long) p->retries);
        snprintf (values[8], 32, "%llu",
                  (unsigned long long) (t->accepted + t->duplicate + t->rejected));
        hcp_log_kv (HCP_LOG_INFO, "stats", "accepted", values[0], "duplicate", values[1],
                    "rejected", values[2], "batches", values[3], "avg_batch", values[4],
                    "max_batch", values[5], "avg_store_ms", values[6], "db_retries", values[7],
                    "answered_total", values[8], NULL);
    }
    memset (p, 0, sizeof *p);
}

static void
s_periodic (ingest_server_t *self)
{
    int64_t now = s_now_us ();
    if (now - self->stats_at_us >= (int64_t) self->settings.stats_s * 1000000) {
        s_log_stats (self);
        self->stats_at_us = now;
    }
    if (now - self->catalog_loaded_us >= (int64_t) self->settings.catalog_refresh_s * 1000000)
        s_load_catalog (self);
}

int
ingest_server_run (ingest_server_t *self)
{
    int rc = 0;
    size_t batch_max = (size_t) self->settings.batch_max;
    zsock_t *writer_pipe = zactor_sock (self->writer);
    while (true) {
        bool stopping = hcp_service_stopping ();
        //  On a stop, what was received is still stored and answered; then
        //  the loop ends.
        if (stopping && !self->writing && self->collecting->count == 0)
            break;
        if (!self->writing && self->collecting->count > 0)
            s_dispatch (self);
        //  Read requests while the collecting batch has room; listen to the
        //  writer while it holds a batch.
        zmq_pollitem_t items[2];
        int count = 0;
        int router_item = -1, writer_item = -1;
        if (!stopping && self->collecting->count < batch_max) {
            items[count] = (zmq_pollitem_t){self->handle, 0, ZMQ_POLLIN, 0};
            router_item = count++;
        }
        if (self->writing) {
            items[count] = (zmq_pollitem_t){zsock_resolve (writer_pipe), 0, ZMQ_POLLIN, 0};
            writer_item = count++;
        }
        if (count == 0)
            break;
        if (zmq_poll (items, count, 1000) < 0 && zmq_errno () != EINTR)
            break;
        if (writer_item >= 0 && (items[writer_item].revents & ZMQ_POLLIN)) {
            char *command = NULL;
            void *batch = NULL;
            if (zsock_recv (writer_pipe, "sp", &command, &batch) == 0 && batch == self->writing
                && s_complete (self) != 0) {
                free (command);
                rc = 1;
                break;
            }
            free (command);
        }
        //  Group commit: everything already waiting, up to batch_max.
        if (router_item >= 0 && (items[router_item].revents & ZMQ_POLLIN))
            while (self->collecting->count < batch_max && s_receive (self))
                ;
        s_periodic (self);
    }
    s_log_stats (self);
    hcp_info ("ingest stopped");
    return rc;
}
