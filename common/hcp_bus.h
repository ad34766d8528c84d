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
//  still covers every event. Returns NULL only on a programming error.
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

#endif
