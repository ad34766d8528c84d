/*  hcp_bus — see hcp_bus.h.

    The subscriber is a small state machine over three sources of truth of
    decreasing speed and increasing authority:

      - the live stream from hcp-bus (fast, may drop, may duplicate after a
        catch-up, may be absent while the bus or the relay is down);
      - heartbeats from the relay (tell the highest committed seq, so a
        subscriber notices losses even when no new event flows);
      - the events table (the truth: every stamped event, gapless).

    It delivers an event only when its seq is exactly last + 1; anything
    else is either a duplicate (dropped) or proof of a gap, which switches
    the subscriber to reading pages from PostgreSQL until it has caught up.
    If nothing at all arrives for a while (bus or relay down), it also
    looks at the table, so a dead bus delays events but never hides them.
*/
#include "hcp_bus.h"

#include "hcp_log.h"
#include "hcp/v1/event.pb-c.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Rows per catch-up read: big enough to amortise the round trip, small
//  enough to keep memory flat when a subscriber is millions behind.
#define S_PAGE_ROWS 1000

//  No message at all (not even a heartbeat, which comes every second) for
//  this long means the bus or relay is down: read the table instead.
#define S_QUIET_MS 3000

//  Back-off between attempts to reach PostgreSQL for a catch-up.
#define S_RETRY_MIN_MS 250
#define S_RETRY_MAX_MS 5000

//  Receive high-water mark: a burst of live events should queue, not drop
//  (a drop is recovered from the table, but costs a catch-up).
#define S_RCVHWM 50000

// ---------------------------------------------------------------------------
//  Events

void
hcp_event_destroy (hcp_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_event_t *self = *self_p;
    free (self->type);
    free (self->key);
    free (self->payload);
    free (self);
    *self_p = NULL;
}

static hcp_event_t *
s_event_new (uint64_t seq, const char *type, const char *key, int64_t at_ms,
             const void *payload, size_t payload_size)
{
    hcp_event_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->seq = seq;
    self->type = strdup (type ? type : "");
    self->key = strdup (key ? key : "");
    self->at_ms = at_ms;
    //  Always a buffer (maybe of size 0), so callers never test for NULL.
    self->payload = malloc (payload_size ? payload_size : 1);
    if (!self->type || !self->key || !self->payload)
        abort ();
    if (payload_size)
        memcpy (self->payload, payload, payload_size);
    self->payload_size = payload_size;
    return self;
}

// ---------------------------------------------------------------------------
//  Outbox

//  Named statements on the caller's connection. hcp_db_prepare ignores a
//  second registration of the same name, so we register lazily on each
//  call instead of asking callers to initialise anything.
#define S_EMIT     "hcp_bus_emit"
#define S_EMIT_SQL "INSERT INTO events (type, key, payload) VALUES ($1, $2, $3)"

int
hcp_event_emit (hcp_db_t *db, const char *type, const char *key, const void *payload,
                size_t payload_size)
{
    assert (db);
    assert (type && *type);
    assert (key);
    assert (payload || payload_size == 0);
    if (hcp_db_prepare (db, S_EMIT, S_EMIT_SQL) != 0)
        return -1;
    //  The payload goes as a binary parameter: no escaping, no copy.
    const char *values[3] = {type, key, payload_size ? (const char *) payload : ""};
    const int lengths[3] = {0, 0, (int) payload_size};
    const int formats[3] = {0, 0, 1};
    PGresult *res = hcp_db_run_params (db, S_EMIT, 3, values, lengths, formats);
    int rc = hcp_db_ok (db, res) ? 0 : -1;
    PQclear (res);
    return rc;
}

// ---------------------------------------------------------------------------
//  Consumer offsets

#define S_OFFSET_LOAD     "hcp_bus_offset_load"
#define S_OFFSET_LOAD_SQL "SELECT last_seq FROM consumer_offsets WHERE consumer = $1"

//  One statement for "create the row if missing, lock it, advance it if
//  below": ON CONFLICT DO UPDATE locks the existing row and evaluates its
//  WHERE on the newest committed version, so a second instance that
//  waited on the lock sees the first one's offset and gets no row back.
#define S_OFFSET_CLAIM "hcp_bus_offset_claim"
#define S_OFFSET_CLAIM_SQL                                                                    \
    "INSERT INTO consumer_offsets AS o (consumer, last_seq) VALUES ($1, $2::bigint)"          \
    " ON CONFLICT (consumer) DO UPDATE SET last_seq = excluded.last_seq, updated_at = "       \
    "now()"                                                                                   \
    " WHERE o.last_seq < excluded.last_seq RETURNING 1"

int
hcp_offset_load (hcp_db_t *db, const char *consumer, uint64_t *last_seq)
{
    assert (db);
    assert (consumer && *consumer);
    assert (last_seq);
    if (hcp_db_prepare (db, S_OFFSET_LOAD, S_OFFSET_LOAD_SQL) != 0)
        return -1;
    const char *values[1] = {consumer};
    PGresult *res = hcp_db_run (db, S_OFFSET_LOAD, 1, values);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        return -1;
    }
    *last_seq = PQntuples (res) > 0 ? strtoull (PQgetvalue (res, 0, 0), NULL, 10) : 0;
    PQclear (res);
    return 0;
}

int
hcp_offset_claim (hcp_db_t *db, const char *consumer, uint64_t seq)
{
    assert (db);
    assert (consumer && *consumer);
    assert (seq > 0);
    if (hcp_db_prepare (db, S_OFFSET_CLAIM, S_OFFSET_CLAIM_SQL) != 0)
        return -1;
    char seq_text[24];
    snprintf (seq_text, sizeof seq_text, "%" PRIu64, seq);
    const char *values[2] = {consumer, seq_text};
    PGresult *res = hcp_db_run (db, S_OFFSET_CLAIM, 2, values);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        return -1;
    }
    int claimed = PQntuples (res) > 0 ? 1 : 0;
    PQclear (res);
    return claimed;
}

// ---------------------------------------------------------------------------
//  Wire format

//  Sends two frames; the body is packed into a stack buffer when small.
static int
s_send_two (void *socket, const char *topic, const ProtobufCMessage *message)
{
    void *handle = zsock_resolve (socket);
    assert (handle);
    uint8_t small[1024];
    size_t size = protobuf_c_message_get_packed_size (message);
    uint8_t *body = size <= sizeof small ? small : malloc (size);
    if (!body)
        abort ();
    protobuf_c_message_pack (message, body);
    int rc = -1;
    if (zmq_send (handle, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
        && zmq_send (handle, body, size, ZMQ_DONTWAIT) >= 0)
        rc = 0;
    if (body != small)
        free (body);
    return rc;
}

int
hcp_bus_send_event (void *socket, uint64_t seq, const char *type, const char *key,
                    int64_t at_ms, const void *payload, size_t payload_size)
{
    assert (socket);
    assert (type && *type);
    Hcp__V1__Event event = HCP__V1__EVENT__INIT;
    event.seq = seq;
    event.type = (char *) type;
    event.key = (char *) (key ? key : "");
    event.at_ms = at_ms;
    event.payload.data = (uint8_t *) payload;
    event.payload.len = payload_size;
    return s_send_two (socket, type, &event.base);
}

int
hcp_bus_send_heartbeat (void *socket, uint64_t last_seq, int64_t at_ms)
{
    assert (socket);
    Hcp__V1__Heartbeat heartbeat = HCP__V1__HEARTBEAT__INIT;
    heartbeat.last_seq = last_seq;
    heartbeat.at_ms = at_ms;
    return s_send_two (socket, HCP_BUS_HEARTBEAT_TOPIC, &heartbeat.base);
}

int
hcp_bus_decode (const void *topic, size_t topic_size, const void *body, size_t body_size,
                hcp_event_t **event_p, uint64_t *heartbeat_seq)
{
    assert (event_p);
    assert (heartbeat_seq);
    *event_p = NULL;
    *heartbeat_seq = 0;
    if (topic_size == strlen (HCP_BUS_HEARTBEAT_TOPIC)
        && memcmp (topic, HCP_BUS_HEARTBEAT_TOPIC, topic_size) == 0) {
        Hcp__V1__Heartbeat *heartbeat = hcp__v1__heartbeat__unpack (NULL, body_size,
                                                                    (const uint8_t *) body);
        if (!heartbeat)
            return -1;
        *heartbeat_seq = heartbeat->last_seq;
        hcp__v1__heartbeat__free_unpacked (heartbeat, NULL);
        return 0;
    }
    Hcp__V1__Event *event = hcp__v1__event__unpack (NULL, body_size, (const uint8_t *) body);
    if (!event)
        return -1;
    //  The topic is the type, so that SUB-side filtering would work; a
    //  message whose two disagree is not ours.
    int rc = -1;
    if (event->seq > 0 && event->type && strlen (event->type) == topic_size
        && memcmp (event->type, topic, topic_size) == 0) {
        *event_p = s_event_new (event->seq, event->type, event->key, event->at_ms,
                                event->payload.data, event->payload.len);
        rc = 1;
    }
    hcp__v1__event__free_unpacked (event, NULL);
    return rc;
}

hcp_bus_verdict_t
hcp_bus_verdict (uint64_t last_seq, uint64_t seq)
{
    if (seq <= last_seq)
        return HCP_BUS_DUPLICATE;
    if (seq == last_seq + 1)
        return HCP_BUS_NEXT;
    return HCP_BUS_GAP;
}

bool
hcp_bus_type_matches (const char *type_prefix, const char *type)
{
    if (!type_prefix || !*type_prefix)
        return true;
    return type && strncmp (type, type_prefix, strlen (type_prefix)) == 0;
}

// ---------------------------------------------------------------------------
//  Subscriber

#define S_PAGE "hcp_bus_sub_page"
//  at_ms is computed exactly as hcp_relay_stamp() computes it, so an event
//  reads the same whether it came live or from the table. Payloads of
//  events the filter would skip are not transferred.
#define S_PAGE_SQL                                                                            \
    "SELECT seq, type, key, hcp_event_at_ms(created_at),"                                     \
    " CASE WHEN starts_with(type, $3) THEN payload ELSE ''::bytea END"                        \
    " FROM events WHERE seq > $1::bigint ORDER BY seq LIMIT $2"

struct _hcp_sub_t {
    zsock_t *socket;       //  SUB to the XPUB side of hcp-bus
    hcp_db_t *db;          //  our own connection, for catch-up reads
    char *type_prefix;     //  "" for all
    uint64_t last_seq;     //  last delivered or filtered out
    uint64_t head_seq;     //  highest seq we know was committed
    bool catchup;          //  the table must be read before going live again
    bool db_failed;        //  the last catch-up attempt could not reach the table
    int64_t db_retry_at;   //  no new attempt before this (monotonic ms)
    int retry_ms;          //  current back-off
    int64_t last_news_at;  //  last message of any kind on the socket
    int64_t last_check_at; //  last time the table said we were complete
    hcp_sub_stats_t stats;
    bool reading; //  in a run of pages read from the table
    //  A page read from the table, delivered before anything else.
    hcp_event_t **queue;
    size_t queue_head;
    size_t queue_size;
    size_t queue_alloc;
};

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

hcp_sub_t *
hcp_sub_new (const char *bus_endpoint, const char *conninfo, uint64_t after_seq,
             const char *type_prefix)
{
    assert (bus_endpoint && *bus_endpoint);
    hcp_sub_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->socket = zsock_new (ZMQ_SUB);
    assert (self->socket);
    zsock_set_rcvhwm (self->socket, S_RCVHWM);
    zsock_set_linger (self->socket, 0);
    zsock_set_subscribe (self->socket, "");
    //  connect() is asynchronous: it succeeds while the bus is down, and
    //  ZeroMQ reconnects by itself whenever the bus comes back.
    if (zsock_connect (self->socket, "%s", bus_endpoint) != 0) {
        hcp_error ("bus: bad subscribe endpoint '%s'", bus_endpoint);
        zsock_destroy (&self->socket);
        free (self);
        return NULL;
    }
    self->db = hcp_db_new (conninfo, "hcp-bus-subscriber");
    hcp_db_prepare (self->db, S_PAGE, S_PAGE_SQL);
    self->type_prefix = strdup (type_prefix ? type_prefix : "");
    self->last_seq = after_seq;
    self->head_seq = after_seq;
    //  Whatever the bus says, the table comes first (Clone: snapshot,
    //  then updates).
    self->catchup = true;
    self->retry_ms = S_RETRY_MIN_MS;
    self->last_news_at = s_mono_ms ();
    return self;
}

static void
s_queue_clear (hcp_sub_t *self)
{
    while (self->queue_head < self->queue_size)
        hcp_event_destroy (&self->queue[self->queue_head++]);
    self->queue_head = self->queue_size = 0;
}

void
hcp_sub_destroy (hcp_sub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_sub_t *self = *self_p;
    s_queue_clear (self);
    free (self->queue);
    zsock_destroy (&self->socket);
    hcp_db_destroy (&self->db);
    free (self->type_prefix);
    free (self);
    *self_p = NULL;
}

uint64_t
hcp_sub_last_seq (hcp_sub_t *self)
{
    assert (self);
    return self->last_seq;
}

void
hcp_sub_stats (hcp_sub_t *self, hcp_sub_stats_t *stats)
{
    assert (self);
    assert (stats);
    *stats = self->stats;
}

void *
hcp_sub_socket (hcp_sub_t *self)
{
    assert (self);
    return self->socket;
}

//  Reads the next page after last_seq into the queue. Returns the number
//  of rows (0: the table has nothing newer), or -1 if PostgreSQL cannot be
//  reached or refused the query.
static int
s_read_page (hcp_sub_t *self)
{
    if (hcp_db_ensure (self->db, 0, NULL) != 0)
        return -1;
    char after[24], limit[16];
    snprintf (after, sizeof after, "%" PRIu64, self->last_seq);
    snprintf (limit, sizeof limit, "%d", S_PAGE_ROWS);
    const char *values[3] = {after, limit, self->type_prefix};
    PGresult *res = hcp_db_run (self->db, S_PAGE, 3, values);
    if (!hcp_db_ok (self->db, res)) {
        PQclear (res);
        return -1;
    }
    int rows = PQntuples (res);
    if (self->queue_alloc < (size_t) rows) {
        free (self->queue);
        self->queue = calloc ((size_t) rows, sizeof *self->queue);
        if (!self->queue)
            abort ();
        self->queue_alloc = (size_t) rows;
    }
    self->queue_head = 0;
    self->queue_size = 0;
    for (int row = 0; row < rows; row++) {
        size_t payload_size = 0;
        unsigned char *payload = PQunescapeBytea (
            (const unsigned char *) PQgetvalue (res, row, 4), &payload_size);
        if (!payload)
            abort ();
        self->queue[self->queue_size++] = s_event_new (
            strtoull (PQgetvalue (res, row, 0), NULL, 10), PQgetvalue (res, row, 1),
            PQgetvalue (res, row, 2), strtoll (PQgetvalue (res, row, 3), NULL, 10), payload,
            payload_size);
        PQfreemem (payload);
    }
    PQclear (res);
    return rows;
}

//  Accepts an event whose seq is last + 1 (or comes from the table, which
//  is authoritative). Returns true if the caller should get it; false if
//  the type filter skips it (destroyed here).
static bool
s_accept (hcp_sub_t *self, hcp_event_t **event_p, bool live)
{
    hcp_event_t *event = *event_p;
    self->last_seq = event->seq;
    if (live)
        self->stats.live++;
    else
        self->stats.from_table++;
    if (event->seq > self->head_seq)
        self->head_seq = event->seq;
    if (hcp_bus_type_matches (self->type_prefix, event->type))
        return true;
    hcp_event_destroy (event_p);
    return false;
}

//  Handles one message from the socket. Returns 1 and sets *event_p when
//  it is the next event for the caller, else 0.
static int
s_handle_message (hcp_sub_t *self, zmq_msg_t *topic, zmq_msg_t *body, hcp_event_t **event_p)
{
    self->last_news_at = s_mono_ms ();
    hcp_event_t *event = NULL;
    uint64_t heartbeat_seq = 0;
    int kind = hcp_bus_decode (zmq_msg_data (topic), zmq_msg_size (topic), zmq_msg_data (body),
                               zmq_msg_size (body), &event, &heartbeat_seq);
    if (kind < 0) {
        hcp_warn ("bus: ignoring a message that is not an hcp.v1 event or heartbeat");
        return 0;
    }
    if (kind == 0) {
        //  The relay has committed up to heartbeat_seq: if we are behind,
        //  we lost messages (or never got them: slow joiner, bus restart).
        if (heartbeat_seq > self->head_seq)
            self->head_seq = heartbeat_seq;
        if (heartbeat_seq > self->last_seq)
            self->catchup = true;
        return 0;
    }
    //  A page from the table may still be queued: the live stream waits.
    hcp_bus_verdict_t verdict = self->queue_head < self->queue_size
                                    ? (event->seq <= self->last_seq ? HCP_BUS_DUPLICATE
                                                                    : HCP_BUS_GAP)
                                    : hcp_bus_verdict (self->last_seq, event->seq);
    if (verdict == HCP_BUS_NEXT && s_accept (self, &event, true)) {
        *event_p = event;
        return 1;
    }
    if (verdict == HCP_BUS_GAP) {
        //  Not lost: the relay publishes only committed seqs, so the table
        //  has everything up to this one.
        if (event->seq > self->head_seq)
            self->head_seq = event->seq;
        self->catchup = true;
    }
    hcp_event_destroy (&event);
    return 0;
}

//  Receives and handles one message if one is waiting. Returns 1 with
//  *event_p set, 0 if a message was handled without an event for the
//  caller, -1 if no message was waiting.
static int
s_receive_one (hcp_sub_t *self, hcp_event_t **event_p)
{
    void *handle = zsock_resolve (self->socket);
    zmq_msg_t topic, body;
    zmq_msg_init (&topic);
    if (zmq_msg_recv (&topic, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&topic);
        return -1;
    }
    int rc = 0;
    zmq_msg_init (&body);
    if (!zmq_msg_more (&topic) || zmq_msg_recv (&body, handle, 0) < 0)
        hcp_warn ("bus: ignoring a message with one frame");
    else {
        //  A message of more than two frames is not ours: read the rest
        //  (it is already here, messages arrive whole) and drop it.
        bool more = zmq_msg_more (&body);
        if (more)
            hcp_warn ("bus: ignoring a message with more than two frames");
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init (&extra);
            more = zmq_msg_recv (&extra, handle, 0) >= 0 && zmq_msg_more (&extra);
            zmq_msg_close (&extra);
        }
        if (zmq_msg_more (&body) == 0)
            rc = s_handle_message (self, &topic, &body, event_p);
    }
    zmq_msg_close (&topic);
    zmq_msg_close (&body);
    return rc;
}

int
hcp_sub_next (hcp_sub_t *self, int timeout_ms, hcp_event_t **event_p)
{
    assert (self);
    assert (event_p);
    *event_p = NULL;
    int64_t deadline = s_mono_ms () + (timeout_ms > 0 ? timeout_ms : 0);
    while (1) {
        //  1. A page from the table goes first, in order.
        while (self->queue_head < self->queue_size) {
            hcp_event_t *event = self->queue[self->queue_head];
            self->queue[self->queue_head++] = NULL;
            if (event->seq <= self->last_seq) {
                hcp_event_destroy (&event);
                continue;
            }
            if (event->seq != self->last_seq + 1)
                //  Cannot happen with a healthy relay (seq is gapless); the
                //  table is the truth, so go on rather than wait forever.
                hcp_error ("bus: events table jumps from seq %" PRIu64 " to %" PRIu64,
                           self->last_seq, event->seq);
            if (s_accept (self, &event, false)) {
                *event_p = event;
                return 1;
            }
        }
        int64_t now = s_mono_ms ();
        //  2. Silence for too long: the bus or relay may be down; look.
        if (!self->catchup && now - self->last_news_at >= S_QUIET_MS
            && now - self->last_check_at >= S_QUIET_MS)
            self->catchup = true;
        //  3. Catch up from the table, one page at a time.
        if (self->catchup && now >= self->db_retry_at) {
            int rows = s_read_page (self);
            if (rows >= 0) {
                if (rows > 0 && !self->reading)
                    self->stats.catchups++;
                self->db_failed = false;
                self->retry_ms = S_RETRY_MIN_MS;
                //  A short page holds everything committed when it was
                //  read: the catch-up is over. Anything newer shows on the
                //  socket (an event, a heartbeat) or after a quiet period.
                self->reading = rows == S_PAGE_ROWS;
                if (rows < S_PAGE_ROWS) {
                    self->catchup = false;
                    self->last_check_at = now;
                }
                if (rows > 0)
                    continue;
            }
            else {
                if (!self->db_failed)
                    hcp_warn ("bus: cannot catch up from the events table after seq %" PRIu64
                              ": %s",
                              self->last_seq, hcp_db_error (self->db));
                self->db_failed = true;
                self->db_retry_at = now + self->retry_ms;
                self->retry_ms = self->retry_ms * 2 > S_RETRY_MAX_MS ? S_RETRY_MAX_MS
                                                                     : self->retry_ms * 2;
            }
        }
        //  4. The live stream.
        int got = s_receive_one (self, event_p);
        if (got == 1)
            return 1;
        if (got == 0)
            continue;
        now = s_mono_ms ();
        if (now >= deadline)
            return self->catchup && self->db_failed ? -1 : 0;
        //  5. Wait for news, but not past the next thing we must do.
        int64_t wake = deadline;
        if (self->catchup && self->db_retry_at < wake)
            wake = self->db_retry_at;
        if (!self->catchup) {
            int64_t quiet = (self->last_news_at > self->last_check_at ? self->last_news_at
                                                                      : self->last_check_at)
                            + S_QUIET_MS;
            if (quiet < wake)
                wake = quiet;
        }
        long wait = wake > now ? (long) (wake - now) : 0;
        zmq_pollitem_t item = {zsock_resolve (self->socket), 0, ZMQ_POLLIN, 0};
        zmq_poll (&item, 1, wait);
    }
}
