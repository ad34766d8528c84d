/*  relay — see relay.h. */
#include "relay.h"

#include "hcp_bus.h"
#include "hcp_clock.h"
#include "hcp_db.h"
#include "hcp_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_TRY_LOCK     "hcp_relay_try_lock"
#define S_TRY_LOCK_SQL "SELECT pg_try_advisory_lock(" HCP_RELAY_LOCK_KEY ")"
#define S_LAST_SEQ     "hcp_relay_last_seq"
#define S_LAST_SEQ_SQL "SELECT last_seq FROM relay_state WHERE singleton"
#define S_STAMP        "hcp_relay_stamp"
#define S_STAMP_SQL    "SELECT seq, type, key, at_ms, payload FROM hcp_relay_stamp($1::integer)"

//  The wake-up hint (see relay_wakeup in 002_bus.sql). An UNLOGGED row:
//  changing it costs no WAL flush.
#define S_AWAKE "hcp_relay_awake"
#define S_AWAKE_SQL                                                                           \
    "INSERT INTO relay_wakeup (awake) VALUES ($1::boolean) ON CONFLICT (singleton)"           \
    " DO UPDATE SET awake = excluded.awake, updated_at = now()"

//  True when no writer that skipped its NOTIFY is still committing: they
//  hold this advisory lock shared until they commit (hcp_events_notify).
//  Transaction-level, in autocommit: released as soon as it is taken.
#define S_SETTLED     "hcp_relay_settled"
#define S_SETTLED_SQL "SELECT pg_try_advisory_xact_lock(" HCP_RELAY_WAKEUP_KEY ")"

struct _hcp_relay_t {
    hcp_relay_options_t options;
    char *conninfo;
    char *publish_endpoint;
    hcp_db_t *db;
    zsock_t *pub;
    bool leader;
    bool hint_broken; //  relay_wakeup cannot be written: not used any more
    uint64_t last_seq;
    uint64_t published; //  events published since start (for the log)
};

void
hcp_relay_options_default (hcp_relay_options_t *options)
{
    assert (options);
    options->conninfo = "";
    options->publish_endpoint = HCP_BUS_PUBLISH_ENDPOINT;
    options->batch_max = 5000;
    options->poll_ms = 250;
    options->heartbeat_ms = 1000;
    options->standby_retry_ms = 1000;
    options->send_hwm = 100000;
}

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

hcp_relay_t *
hcp_relay_new (const hcp_relay_options_t *options)
{
    assert (options);
    assert (options->batch_max > 0);
    assert (options->poll_ms > 0 && options->heartbeat_ms > 0);
    hcp_relay_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->options = *options;
    self->conninfo = strdup (options->conninfo ? options->conninfo : "");
    self->publish_endpoint = strdup (options->publish_endpoint);
    self->options.conninfo = self->conninfo;
    self->options.publish_endpoint = self->publish_endpoint;
    self->pub = zsock_new (ZMQ_PUB);
    assert (self->pub);
    zsock_set_sndhwm (self->pub, options->send_hwm);
    //  On shutdown give what was published a moment to reach the bus.
    zsock_set_linger (self->pub, 1000);
    if (zsock_connect (self->pub, "%s", self->publish_endpoint) != 0) {
        hcp_error ("relay: bad bus.publish endpoint '%s'", self->publish_endpoint);
        hcp_relay_destroy (&self);
        return NULL;
    }
    //  The pid in application_name tells operators (and the fault tests)
    //  which relay process holds the lead: see the view hcp_relay_leader.
    char application_name[64];
    snprintf (application_name, sizeof application_name, "hcp-relay:%d", (int) getpid ());
    self->db = hcp_db_new (self->conninfo, application_name);
    hcp_db_prepare (self->db, S_TRY_LOCK, S_TRY_LOCK_SQL);
    hcp_db_prepare (self->db, S_LAST_SEQ, S_LAST_SEQ_SQL);
    hcp_db_prepare (self->db, S_STAMP, S_STAMP_SQL);
    hcp_db_prepare (self->db, S_AWAKE, S_AWAKE_SQL);
    hcp_db_prepare (self->db, S_SETTLED, S_SETTLED_SQL);
    return self;
}

void
hcp_relay_destroy (hcp_relay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_relay_t *self = *self_p;
    //  Closing the session releases the advisory lock: a standby takes over.
    hcp_db_destroy (&self->db);
    zsock_destroy (&self->pub);
    free (self->conninfo);
    free (self->publish_endpoint);
    free (self);
    *self_p = NULL;
}

bool
hcp_relay_lost (hcp_relay_t *self)
{
    return hcp_db_lost (self->db);
}

uint64_t
hcp_relay_last_seq (hcp_relay_t *self)
{
    return self->last_seq;
}

bool
hcp_relay_is_leader (hcp_relay_t *self)
{
    return self->leader;
}

//  Network-order 8 bytes of a binary int8 result column.
static uint64_t
s_int8 (const char *value)
{
    uint32_t high, low;
    memcpy (&high, value, 4);
    memcpy (&low, value + 4, 4);
    return ((uint64_t) ntohl (high) << 32) | ntohl (low);
}

int
hcp_relay_step (hcp_relay_t *self)
{
    assert (self);
    PGconn *conn = hcp_db_conn (self->db);
    if (!conn)
        return -1;
    char limit[16];
    snprintf (limit, sizeof limit, "%d", self->options.batch_max);
    const char *values[1] = {limit};
    //  Binary results: the payload arrives as bytes, not hex text. This
    //  goes to libpq directly because hcp_db_run asks for text.
    PGresult *res = PQexecPrepared (conn, S_STAMP, 1, values, NULL, NULL, 1);
    if (!hcp_db_ok (self->db, res)) {
        //  An error with the connection up is a real fault (a missing
        //  migration, a permission); with it down, the commit may or may
        //  not have happened: either way publishing nothing is right,
        //  subscribers read whatever was committed from the table.
        if (!hcp_db_lost (self->db))
            hcp_error ("relay: stamping failed: %s", hcp_db_error (self->db));
        PQclear (res);
        return -1;
    }
    //  Committed (autocommit): publish in seq order, as returned.
    int rows = PQntuples (res);
    for (int row = 0; row < rows; row++) {
        uint64_t seq = s_int8 (PQgetvalue (res, row, 0));
        //  A full queue drops the message, exactly as a lost packet would:
        //  the next heartbeat makes subscribers read it from the table.
        hcp_bus_send_event (self->pub, seq, PQgetvalue (res, row, 1), PQgetvalue (res, row, 2),
                            (int64_t) s_int8 (PQgetvalue (res, row, 3)),
                            PQgetvalue (res, row, 4), (size_t) PQgetlength (res, row, 4));
        self->last_seq = seq;
    }
    self->published += (uint64_t) rows;
    PQclear (res);
    return rows;
}

//  Reads relay_state.last_seq (what a new leader announces first).
static int
s_load_last_seq (hcp_relay_t *self)
{
    PGresult *res = hcp_db_run (self->db, S_LAST_SEQ, 0, NULL);
    int rc = -1;
    if (hcp_db_ok (self->db, res) && PQntuples (res) == 1) {
        self->last_seq = strtoull (PQgetvalue (res, 0, 0), NULL, 10);
        rc = 0;
    }
    PQclear (res);
    return rc;
}

//  Tries to become the leader. Returns 1 if we are, 0 if another relay is,
//  -1 on a database error.
static int
s_try_lead (hcp_relay_t *self)
{
    PGresult *res = hcp_db_run (self->db, S_TRY_LOCK, 0, NULL);
    int rc = -1;
    if (hcp_db_ok (self->db, res) && PQntuples (res) == 1)
        rc = strcmp (PQgetvalue (res, 0, 0), "t") == 0 ? 1 : 0;
    PQclear (res);
    if (rc != 1)
        return rc;
    //  LISTEN before the first step: an event committed after that step
    //  then always wakes us (and one before it is found by the step).
    if (hcp_db_exec (self->db, "LISTEN " HCP_EVENTS_CHANNEL) != 0
        || s_load_last_seq (self) != 0)
        return -1;
    return 1;
}

//  Sleeps up to ms, waking early when the database socket has something
//  (a notification) or a stop is requested. Returns true if notified.
static bool
s_wait (hcp_relay_t *self, int ms, volatile int *stop)
{
    int fd = hcp_db_socket (self->db);
    int64_t until = s_mono_ms () + ms;
    while (!*stop) {
        int64_t left = until - s_mono_ms ();
        if (left <= 0)
            return false;
        //  Slices of at most 100 ms so a signal is noticed promptly even
        //  where it does not interrupt the poll.
        zmq_pollitem_t item = {NULL, fd, ZMQ_POLLIN, 0};
        int ready = zmq_poll (&item, fd >= 0 ? 1 : 0, left < 100 ? (long) left : 100);
        if (ready > 0 && fd >= 0) {
            //  Consuming input also notices a closed connection.
            hcp_db_drain_notifies (self->db);
            return true;
        }
    }
    return false;
}

//  Tells writers whether they must NOTIFY us (awake false) or may skip it
//  (awake true: we will look again anyway). Returns 0 or -1.
static int
s_set_awake (hcp_relay_t *self, bool awake)
{
    //  Without the hint writers always notify: slower commits, same facts.
    if (self->hint_broken)
        return 0;
    const char *values[1] = {awake ? "true" : "false"};
    PGresult *res = hcp_db_run (self->db, S_AWAKE, 1, values);
    int rc = hcp_db_ok (self->db, res) ? 0 : -1;
    PQclear (res);
    if (rc && !hcp_db_lost (self->db)) {
        hcp_error ("relay: cannot update relay_wakeup, writers will always notify: %s",
                   hcp_db_error (self->db));
        self->hint_broken = true;
    }
    return rc;
}

//  Returns 1 when no writer that skipped its NOTIFY is still in flight, 0
//  when one is, -1 on an error (then the caller just sleeps: the poll
//  period bounds any delay).
static int
s_writers_settled (hcp_relay_t *self)
{
    if (self->hint_broken)
        return 1;
    PGresult *res = hcp_db_run (self->db, S_SETTLED, 0, NULL);
    int rc = -1;
    if (hcp_db_ok (self->db, res) && PQntuples (res) == 1)
        rc = strcmp (PQgetvalue (res, 0, 0), "t") == 0 ? 1 : 0;
    PQclear (res);
    return rc;
}

//  The leader's loop. Returns when stopping or when the connection is lost.
//
//  Under sustained work (two rounds in a row that stamped something) it
//  raises relay_wakeup.awake so that writers skip their NOTIFY, which
//  would serialise their commits, and stamps round after round. When a
//  round finds nothing it lowers the flag, waits (in 2 ms steps) until no
//  writer that skipped its NOTIFY is still committing, looks once more,
//  and only then waits for a NOTIFY, the poll period or the next
//  heartbeat. A trickle of events never raises the flag: one round to
//  stamp, one to find nothing, back to sleep. See 002_bus.sql.
static void
s_lead (hcp_relay_t *self, volatile int *stop)
{
    hcp_info ("relay: leader (advisory lock %s), last seq %" PRIu64 ", publishing to %s",
              HCP_RELAY_LOCK_KEY, self->last_seq, self->publish_endpoint);
    int64_t heartbeat_at = 0;
    //  Up at first: whatever a previous leader left there, we look now and
    //  settle before sleeping.
    bool awake = true;
    s_set_awake (self, true);
    bool settled = false; //  flag down, no skipping writer in flight, looked since
    int busy = 0;         //  rounds in a row that stamped something
    while (!*stop) {
        int stamped = hcp_relay_step (self);
        if (stamped < 0 && hcp_relay_lost (self))
            return;
        int64_t now = s_mono_ms ();
        if (now >= heartbeat_at) {
            hcp_bus_send_heartbeat (self->pub, self->last_seq, hcp_clock_now_ms ());
            heartbeat_at = now + self->options.heartbeat_ms;
        }
        if (stamped > 0) {
            if (++busy >= 2 && !awake) {
                s_set_awake (self, true);
                awake = true;
                settled = false;
            }
            continue;
        }
        busy = 0;
        if (stamped == 0 && awake) {
            //  Whether the hint could be written or not, go on towards
            //  sleeping (the poll period bounds the cost of a broken hint).
            s_set_awake (self, false);
            awake = false;
            if (hcp_relay_lost (self))
                return;
        }
        if (stamped == 0 && !settled) {
            int clear = s_writers_settled (self);
            if (hcp_relay_lost (self))
                return;
            if (clear != 0) {
                settled = true;
                continue; //  the last look
            }
            //  A writer saw us awake and is still committing: its events
            //  will be there in a moment (a NOTIFY may come sooner).
            s_wait (self, 2, stop);
            if (hcp_relay_lost (self))
                return;
            continue;
        }
        int wait = self->options.poll_ms;
        if (heartbeat_at - now < wait)
            wait = (int) (heartbeat_at - now);
        //  After an SQL error, don't spin: wait a whole poll period.
        if (stamped < 0)
            wait = self->options.poll_ms;
        s_wait (self, wait > 0 ? wait : 0, stop);
        if (hcp_relay_lost (self))
            return;
    }
    //  Stopping: without us, writers should notify (a standby may lead).
    s_set_awake (self, false);
}

int
hcp_relay_run (hcp_relay_t *self, volatile int *stop)
{
    assert (self);
    assert (stop);
    bool standby_logged = false;
    while (!*stop) {
        if (hcp_db_ensure (self->db, -1, stop) != 0)
            break;
        int lead = s_try_lead (self);
        if (lead == 1) {
            self->leader = true;
            standby_logged = false;
            s_lead (self, stop);
            self->leader = false;
            if (!*stop)
                hcp_warn ("relay: lost the database connection, leadership given up: %s",
                          hcp_db_error (self->db));
            continue;
        }
        if (lead == 0 && !standby_logged) {
            hcp_info ("relay: standby, another relay holds the lock; retrying every %d ms",
                      self->options.standby_retry_ms);
            standby_logged = true;
        }
        if (lead < 0 && !hcp_db_lost (self->db))
            hcp_error ("relay: cannot take the lead: %s", hcp_db_error (self->db));
        s_wait (self, self->options.standby_retry_ms, stop);
        //  A notification of a LISTEN we no longer hold is harmless.
    }
    hcp_info ("relay: stopping after publishing %" PRIu64 " events, last seq %" PRIu64,
              self->published, self->last_seq);
    return 0;
}
