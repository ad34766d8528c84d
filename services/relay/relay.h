/*  relay — the engine of hcp-relay: stamps committed events with their
    public, gapless sequence number and publishes them on the bus.

    Only one relay is active at a time: the one that holds a session-level
    PostgreSQL advisory lock (HCP_RELAY_LOCK_KEY). Others wait as standbys
    and try again every standby_retry_ms, so a second relay is both safe
    and a hot spare: when the leader dies its session ends, the lock is
    released, and a standby takes over within about a second.

    Stamping is one call of hcp_relay_stamp(n) (deploy/sql/002_bus.sql) in
    its own transaction: it locks relay_state, stamps the committed,
    unstamped events, advances relay_state.last_seq, and returns them.
    After the commit the relay publishes them in seq order, frames
    [type][hcp.v1.Event]. A crash between the commit and the publish loses
    nothing: the heartbeat ["$hb"][hcp.v1.Heartbeat{last_seq}] that the
    next leader sends tells every subscriber to read the table.

    The leader wakes on NOTIFY hcp_events (a trigger raises it on an
    INSERT into events unless relay_wakeup says the relay is awake and will
    look again anyway), and polls every poll_ms in case a notification was
    missed (they are not durable: one sent while we reconnected is gone).
*/
#ifndef HCP_RELAY_H_INCLUDED
#define HCP_RELAY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

//  The advisory lock key the relays compete for (see the view
//  hcp_relay_leader in 002_bus.sql, which names it too).
#define HCP_RELAY_LOCK_KEY "1919249529"

//  The advisory lock key of the wake-up hint (relay_wakeup in 002_bus.sql):
//  writers that skip their NOTIFY hold it shared until they commit.
#define HCP_RELAY_WAKEUP_KEY "1919249527"

typedef struct {
    const char *conninfo;         //  PostgreSQL ("" = libpq defaults)
    const char *publish_endpoint; //  the XSUB side of hcp-bus (bus.publish)
    int batch_max;                //  events per stamping transaction (relay.batch_max)
    int poll_ms;                  //  fallback poll when no NOTIFY comes (relay.poll_ms)
    int heartbeat_ms;             //  heartbeat period (relay.heartbeat_ms)
    int standby_retry_ms;         //  a standby tries the lock this often
    int send_hwm;                 //  PUB high-water mark (messages queued to the bus)
} hcp_relay_options_t;

//  Defaults that work out of the box (endpoints as in hcp_bus.h).
void hcp_relay_options_default (hcp_relay_options_t *options);

typedef struct _hcp_relay_t hcp_relay_t;

//  Creates a relay: connects its PUB socket to the bus (asynchronous: the
//  bus may come later) but not yet to PostgreSQL. The options are copied.
//  Returns NULL if the endpoint is malformed.
hcp_relay_t *hcp_relay_new (const hcp_relay_options_t *options);

//  Closes everything (releasing the leadership, if held); nulls the pointer.
void hcp_relay_destroy (hcp_relay_t **self_p);

//  Runs until *stop becomes non-zero: (re)connects, competes for the lock,
//  and while leader stamps, publishes and heartbeats. A lost connection
//  makes it a candidate again. Work in progress (one stamping transaction
//  and its publishing) is always finished before it returns. Returns 0.
int hcp_relay_run (hcp_relay_t *self, volatile int *stop);

//  One stamping step, for the loop and for tests: stamps up to batch_max
//  events in one transaction and publishes them. Returns how many were
//  stamped (0: nothing to do), or -1 on a database error (see
//  hcp_relay_lost). Does not check leadership: callers that are not the
//  leader are still correct (stamping is serialised by relay_state), but
//  two would compete for nothing.
int hcp_relay_step (hcp_relay_t *self);

//  True if the database connection was lost (leadership is then lost too).
bool hcp_relay_lost (hcp_relay_t *self);

//  Highest seq this relay knows to be stamped (relay_state.last_seq as of
//  its last step), as sent in heartbeats.
uint64_t hcp_relay_last_seq (hcp_relay_t *self);

//  True while this relay holds the leader lock.
bool hcp_relay_is_leader (hcp_relay_t *self);

#endif
