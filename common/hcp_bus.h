/*  hcp_bus — events: write them (outbox), follow them (subscriber), and
    remember how far a consumer got (offsets).

    The event bus is an XSUB/XPUB proxy (hcp-bus): the relay (hcp-relay)
    publishes committed events in sequence order to its XSUB side; every
    subscriber connects a SUB socket to its XPUB side. Frames:
    [type][hcp.v1.Event], and heartbeats [“$hb”][hcp.v1.Heartbeat].

    ZeroMQ PUB/SUB drops messages (slow joiner, high-water mark, a bus
    restart), so it only carries news quickly: the events table is the
    truth. A subscriber follows the ZeroMQ guide's Clone pattern: it knows
    the last sequence number it delivered; when a message or heartbeat
    shows a higher number than the next expected one, it reads the missing
    events from PostgreSQL (WHERE seq > last ORDER BY seq) before going on.
    The caller therefore sees every event exactly once, in order.
*/
#ifndef HCP_BUS_H_INCLUDED
#define HCP_BUS_H_INCLUDED

#include "hcp_db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Default endpoints of hcp-bus (config bus.publish / bus.subscribe).
#define HCP_BUS_PUBLISH_ENDPOINT   "tcp://127.0.0.1:5561" //  XSUB: the relay connects here
#define HCP_BUS_SUBSCRIBE_ENDPOINT "tcp://127.0.0.1:5562" //  XPUB: subscribers connect here

//  Name of the PostgreSQL NOTIFY channel raised when events are inserted
//  (a statement trigger on events does it): the relay LISTENs on it.
#define HCP_EVENTS_CHANNEL "hcp_events"

typedef struct {
    uint64_t seq;
    char *type;
    char *key;
    int64_t at_ms;
    uint8_t *payload;
    size_t payload_size;
} hcp_event_t;

void hcp_event_destroy (hcp_event_t **self_p);

//  Writes an event into the outbox, in the caller's open transaction on db
//  (the same transaction as the state change it reports). payload may be
//  NULL. Returns 0, or -1 (see hcp_db_error).
int hcp_event_emit (hcp_db_t *db, const char *type, const char *key, const void *payload,
                    size_t payload_size);

typedef struct _hcp_sub_t hcp_sub_t;

//  Creates a subscriber that will deliver every event with seq > after_seq,
//  in order. bus_endpoint: the XPUB side of hcp-bus. conninfo: PostgreSQL,
//  for catch-up reads (its own connection). type_prefix: deliver only
//  events whose type starts with it ("" or NULL: all); sequence tracking
//  still covers every event. Returns NULL only on a programming error (or
//  a malformed endpoint, which is logged). Neither the bus nor PostgreSQL
//  need be up: the subscriber connects and catches up when they are.
hcp_sub_t *hcp_sub_new (const char *bus_endpoint, const char *conninfo, uint64_t after_seq,
                        const char *type_prefix);

void hcp_sub_destroy (hcp_sub_t **self_p);

//  Waits up to timeout_ms for the next event. Returns 1 and sets *event_p
//  (caller destroys) when one is delivered, 0 on timeout, -1 when the
//  database is unreachable for catch-up (the subscriber keeps its place;
//  call again later).
int hcp_sub_next (hcp_sub_t *self, int timeout_ms, hcp_event_t **event_p);

//  The last sequence number delivered (or skipped by the type filter).
uint64_t hcp_sub_last_seq (hcp_sub_t *self);

//  Counters since hcp_sub_new, for metrics and tests.
typedef struct {
    uint64_t live;       //  events taken from the live stream (delivered or filtered)
    uint64_t from_table; //  events read from the events table
    uint64_t catchups;   //  runs of reading the table (the start-up one included)
} hcp_sub_stats_t;
void hcp_sub_stats (hcp_sub_t *self, hcp_sub_stats_t *stats);

//  The subscriber's ZeroMQ socket (a zsock_t, owned by self), so a service
//  can wait on it in its zpoller together with its other sockets. The
//  socket only says "news may have come": some work never shows on it (a
//  page read from the table, a catch-up after a quiet bus). So, whenever
//  the poller returns — readable or timed out — call hcp_sub_next (self,
//  0, &event) until it returns 0 (or -1), and keep the poller's timeout at
//  one second or less. Never read the socket directly.
void *hcp_sub_socket (hcp_sub_t *self);

//  Durable consumer offsets (table consumer_offsets), for a service that
//  acts on events: in its transaction it calls hcp_offset_claim, does the
//  work only if the answer is 1, and commits — the work and the new offset
//  land together, so a crash replays nothing and loses nothing, and two
//  instances never both act on one event.
//
//  hcp_offset_load: reads the stored offset (0 if none) into *last_seq.
//  hcp_offset_claim: locks the consumer's row (FOR UPDATE) and, if its
//  offset is below seq, sets it to seq and returns 1; returns 0 if the
//  event was already handled (offset >= seq), -1 on error.
int hcp_offset_load (hcp_db_t *db, const char *consumer, uint64_t *last_seq);
int hcp_offset_claim (hcp_db_t *db, const char *consumer, uint64_t seq);

//  --- Wire format and sequencing rules (used by hcp-relay and the
//  subscriber; public so that they are unit-tested in one place) ---

//  Topic of heartbeat messages.
#define HCP_BUS_HEARTBEAT_TOPIC "$hb"

//  Sends [type][hcp.v1.Event] on socket (a zsock_t or libzmq PUB socket),
//  without blocking: a full queue drops the message, as PUB does anyway
//  (subscribers recover it from the table). Returns 0, -1 if ZeroMQ
//  refused it.
int hcp_bus_send_event (void *socket, uint64_t seq, const char *type, const char *key,
                        int64_t at_ms, const void *payload, size_t payload_size);

//  Sends ["$hb"][hcp.v1.Heartbeat{last_seq, at_ms}]. Returns 0 or -1.
int hcp_bus_send_heartbeat (void *socket, uint64_t last_seq, int64_t at_ms);

//  Decodes a two-frame bus message. Returns 1 and sets *event_p (caller
//  destroys) for an event; 0 and sets *heartbeat_seq for a heartbeat; -1
//  for anything else (bad protobuf, seq 0, a topic that is not the type).
int hcp_bus_decode (const void *topic, size_t topic_size, const void *body, size_t body_size,
                    hcp_event_t **event_p, uint64_t *heartbeat_seq);

//  What a subscriber that delivered last_seq does with a live event seq.
typedef enum {
    HCP_BUS_NEXT,      //  seq == last_seq + 1: deliver it
    HCP_BUS_DUPLICATE, //  seq <= last_seq: drop it
    HCP_BUS_GAP        //  seq > last_seq + 1: events were missed, read the table
} hcp_bus_verdict_t;
hcp_bus_verdict_t hcp_bus_verdict (uint64_t last_seq, uint64_t seq);

//  True if type starts with type_prefix (NULL or "" matches everything).
bool hcp_bus_type_matches (const char *type_prefix, const char *type);

#endif
