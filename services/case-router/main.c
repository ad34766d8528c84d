/*  hcp-case-router — opens a case for every bad rating and applies the
    staff's commands to cases (Art. 20-23). See README.md.

    One thread, one database connection, one zpoller over:
      - the ROUTER socket of staff commands (CaseCommand → CaseReply);
      - the bus subscriber (rating.* events), each handled in a transaction
        that also advances the durable offset;
    and, on a timer, the sweep that opens the case of any bad rating that
    has none (the safety net, and the only path while the bus is down).
*/
#include "case_store.h"
#include "hcp/v1/case.pb-c.h"
#include "hcp_bus.h"
#include "hcp_calendar.h"
#include "hcp_clock.h"
#include "hcp_deadline.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BIND "tcp://127.0.0.1:5570"

static const hcp_service_info_t s_info = {
    "case-router", "opens a case for every bad rating and applies staff commands to cases",
    "  database.conninfo              PostgreSQL conninfo (default: libpq's PG* "
    "environment)\n"
    "  bus.subscribe                  XPUB endpoint of hcp-bus "
    "(default " HCP_BUS_SUBSCRIBE_ENDPOINT ")\n"
    "  case_router.bind               endpoint for staff commands, ROUTER "
    "(default " DEFAULT_BIND ")\n"
    "  case_router.events             follow rating events on the bus (default true; "
    "false:\n"
    "                                 the sweep alone opens cases)\n"
    "  case_router.sweep_interval_ms  how often the safety-net sweep runs (default "
    "30000)\n"
    "  case_router.sweep_lookback_days  bad ratings of the last N days are swept "
    "(default 60;\n"
    "                                 the sweep at start-up covers all of them)\n"
    "  case_router.sweep_batch        cases opened per sweep round at most (default "
    "500)\n"
    "  calendar.file                  working-day calendar (default deploy/config/"
    "calendar-cn.yaml)\n"
    "  deadline_watcher.warn_working_days  reminder distance written on new deadlines "
    "(default 1)\n"};

typedef struct {
    hcp_db_t *db;
    const char *conninfo;
    const char *bus_endpoint;
    bool events;
    hcp_sub_t *sub;
    zsock_t *router;
    int64_t sweep_interval_ms;
    int sweep_lookback_days;
    int sweep_batch;
    int64_t next_sweep_ms; //  monotonic
    bool swept_all;        //  the full sweep done since start (or since a reconnect)
    int notify_fd;         //  the database socket, polled for NOTIFY hcp_bad_ratings
    bool notify_polled;    //  notify_fd is in the poller
} router_t;

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

static Hcp__V1__CaseStatus
s_status (hcp_case_status_t status)
{
    return status == HCP_CASE_OK        ? HCP__V1__CASE_STATUS__CASE_OK
           : status == HCP_CASE_REFUSED ? HCP__V1__CASE_STATUS__CASE_REFUSED
                                        : HCP__V1__CASE_STATUS__CASE_UNAVAILABLE;
}

//  Splits "a, b, c" into the reply's allowed_actions (pointers into buf,
//  which is modified).
static size_t
s_split_allowed (char *buf, char **items, size_t max)
{
    size_t count = 0;
    for (char *token = strtok (buf, ", "); token && count < max; token = strtok (NULL, ", "))
        if (strcmp (token, "none") != 0)
            items[count++] = token;
    return count;
}

static zframe_t *
s_encode_reply (const char *request_id, const hcp_case_reply_t *reply)
{
    Hcp__V1__CaseReply message = HCP__V1__CASE_REPLY__INIT;
    message.request_id = (char *) request_id;
    message.status = s_status (reply->status);
    message.code = (char *) reply->code;
    message.message = (char *) reply->message;
    message.case_id = reply->case_id;
    message.state = (char *) reply->state;
    message.version = reply->version;
    message.form_number = (char *) reply->form_number;
    message.replayed = reply->replayed;
    char allowed[sizeof reply->allowed];
    snprintf (allowed, sizeof allowed, "%s", reply->allowed);
    char *items[32];
    message.n_allowed_actions = s_split_allowed (allowed, items, 32);
    message.allowed_actions = items;
    size_t size = hcp__v1__case_reply__get_packed_size (&message);
    zframe_t *frame = zframe_new (NULL, size);
    hcp__v1__case_reply__pack (&message, zframe_data (frame));
    return frame;
}

//  One request: [identity][envelope...][CaseCommand] →
//  [identity][envelope...][CaseReply]. A REQ client's empty delimiter is part of the
//  envelope and comes back.
static void
s_handle_command (router_t *self, zmsg_t *msg)
{
    zframe_t *body = zmsg_last (msg);
    if (!body || zmsg_size (msg) < 2) {
        zmsg_destroy (&msg);
        return;
    }
    hcp_case_reply_t reply;
    memset (&reply, 0, sizeof reply);
    const char *request_id = "";
    Hcp__V1__CaseCommand *command = hcp__v1__case_command__unpack (NULL, zframe_size (body),
                                                                   zframe_data (body));
    if (!command) {
        reply.status = HCP_CASE_REFUSED;
        snprintf (reply.code, sizeof reply.code, "invalid_command");
        snprintf (reply.message, sizeof reply.message,
                  "the message is not a hcp.v1.CaseCommand (%zu bytes)", zframe_size (body));
    }
    else {
        request_id = command->request_id;
        hcp_case_command_t *cmd = hcp_case_command_new (command->request_id, command->actor,
                                                        command->action, command->case_id);
        hcp_case_command_expect_version (cmd, command->expected_version);
        for (size_t i = 0; i < command->n_fields; i++)
            hcp_case_command_set (cmd, command->fields[i]->key, command->fields[i]->value);
        int64_t started = zclock_usecs ();
        hcp_case_execute (self->db, cmd, hcp_clock_now_ms (), &reply);
        char case_id[32], elapsed[32];
        snprintf (case_id, sizeof case_id, "%" PRId64, command->case_id);
        snprintf (elapsed, sizeof elapsed, "%.1f", (zclock_usecs () - started) / 1000.0);
        hcp_log_kv (reply.status == HCP_CASE_OK ? HCP_LOG_INFO : HCP_LOG_WARN,
                    reply.status == HCP_CASE_OK        ? "case command applied"
                    : reply.status == HCP_CASE_REFUSED ? "case command refused"
                                                       : "case command not applied now",
                    "request_id", command->request_id, "actor", command->actor, "action",
                    command->action, "case_id", case_id, "code", reply.code, "message",
                    reply.message, "replayed", reply.replayed ? "true" : "false", "ms",
                    elapsed, NULL);
        hcp_case_command_destroy (&cmd);
    }
    zframe_t *answer = s_encode_reply (request_id, &reply);
    if (command)
        hcp__v1__case_command__free_unpacked (command, NULL);
    //  Replace the body by the answer; identity and envelope stay.
    zmsg_remove (msg, body);
    zframe_destroy (&body);
    zmsg_append (msg, &answer);
    zmsg_send (&msg, self->router);
}

// ---------------------------------------------------------------------------
// Events and sweep
// ---------------------------------------------------------------------------

static void
s_subscribe (router_t *self)
{
    hcp_sub_destroy (&self->sub);
    if (!self->events)
        return;
    uint64_t last_seq = 0;
    if (hcp_offset_load (self->db, HCP_CASE_CONSUMER, &last_seq) != 0) {
        hcp_warn ("cannot read the consumer offset (%s); the sweep covers until it can",
                  hcp_db_error (self->db));
        return;
    }
    self->sub = hcp_sub_new (self->bus_endpoint, self->conninfo, last_seq, "rating.");
    hcp_info ("following rating events on %s after seq %" PRIu64, self->bus_endpoint,
              last_seq);
}

//  Drains what the subscriber has. On a database error the subscriber is
//  rebuilt from the stored offset once the database is back, so the event
//  that failed is handled again.
static void
s_drain_events (router_t *self)
{
    if (!self->sub)
        return;
    //  What has arrived is handled in runs of up to 500 events, one
    //  transaction each: one commit per event would not keep up with
    //  1,000 ratings a second.
    enum { RUN = 500 };
    hcp_event_t *events[RUN];
    for (int round = 0; round < 20 && !hcp_service_stopping (); round++) {
        size_t count = 0;
        while (count < RUN && hcp_sub_next (self->sub, 0, &events[count]) == 1)
            count++;
        if (count == 0)
            return;
        int opened = hcp_case_on_events (self->db, events, count, hcp_clock_now_ms ());
        if (opened < 0)
            hcp_warn ("events %" PRIu64 "..%" PRIu64 " not handled: %s; resubscribing",
                      events[0]->seq, events[count - 1]->seq, hcp_db_error (self->db));
        else if (opened > 0)
            hcp_debug ("%d case(s) opened from events %" PRIu64 "..%" PRIu64, opened,
                       events[0]->seq, events[count - 1]->seq);
        for (size_t i = 0; i < count; i++)
            hcp_event_destroy (&events[i]);
        if (opened < 0) {
            //  The subscriber went past them: start again from the offset.
            hcp_sub_destroy (&self->sub);
            return;
        }
        if (count < RUN)
            return;
    }
}

static void
s_sweep (router_t *self)
{
    int64_t now_ms = hcp_clock_now_ms ();
    //  At start-up (and after the database came back) every bad rating is
    //  checked; later only the recent ones, which keeps the sweep cheap as
    //  the ratings table grows for years.
    int64_t since_ms = self->swept_all ? now_ms - self->sweep_lookback_days * 86400000LL : 0;
    int total = 0;
    while (!hcp_service_stopping ()) {
        int opened = hcp_case_sweep (self->db, since_ms, self->sweep_batch, now_ms,
                                     HCP_CASE_CONSUMER);
        if (opened < 0) {
            hcp_warn ("sweep failed: %s", hcp_db_error (self->db));
            return;
        }
        total += opened;
        if (opened < self->sweep_batch)
            break;
    }
    if (total > 0)
        hcp_info ("sweep opened %d case(s) that no event had opened", total);
    self->swept_all = true;
    if (hcp_calendar_reload () == 1)
        hcp_info ("calendar reloaded: new deadlines use it");
}

//  The fast path (migration 006): LISTEN for the ids of bad ratings as they
//  commit, so a case opens without waiting for the relay's stamp. Called
//  after every (re)connect: a new connection listens to nothing. Puts the
//  database socket in the poller (replacing the old one).
static void
s_listen (router_t *self, zpoller_t *poller)
{
    if (self->notify_polled)
        zpoller_remove (poller, &self->notify_fd);
    self->notify_polled = false;
    self->notify_fd = -1;
    if (hcp_db_exec (self->db, "LISTEN hcp_bad_ratings") != 0) {
        hcp_warn ("cannot LISTEN hcp_bad_ratings (%s); cases open from events only",
                  hcp_db_error (self->db));
        return;
    }
    self->notify_fd = hcp_db_socket (self->db);
    //  czmq polls a plain file descriptor given by its address.
    if (self->notify_fd >= 0 && zpoller_add (poller, &self->notify_fd) == 0)
        self->notify_polled = true;
}

//  Opens the cases of the bad ratings the notifications name.
static void
s_drain_notifies (router_t *self)
{
    char *ids;
    int total = 0;
    while (hcp_db_take_notify (self->db, &ids) == 1) {
        int opened = hcp_case_open_listed (self->db, ids, hcp_clock_now_ms (),
                                           HCP_CASE_CONSUMER);
        free (ids);
        if (opened < 0) {
            //  Not lost: the event path and the sweep open them.
            hcp_warn ("fast path: %s", hcp_db_error (self->db));
            return;
        }
        total += opened;
    }
    if (total > 0)
        hcp_debug ("fast path opened %d case(s)", total);
}

// ---------------------------------------------------------------------------

int
main (int argc, char **argv)
{
    hcp_config_t *config = hcp_service_start (&s_info, &argc, argv);
    router_t self;
    memset (&self, 0, sizeof self);
    self.conninfo = hcp_service_conninfo (config);
    self.bus_endpoint = hcp_service_str (config, "bus.subscribe", HCP_BUS_SUBSCRIBE_ENDPOINT);
    const char *bind = hcp_service_str (config, "case_router.bind", DEFAULT_BIND);
    self.events = hcp_service_bool (config, "case_router.events", true);
    self.sweep_interval_ms = hcp_service_int (config, "case_router.sweep_interval_ms", 30000,
                                              100, 86400000);
    self.sweep_lookback_days = (int) hcp_service_int (
        config, "case_router.sweep_lookback_days", 60, 1, 3660);
    self.sweep_batch = (int) hcp_service_int (config, "case_router.sweep_batch", 500, 1,
                                              100000);
    char *error = NULL;
    if (hcp_calendar_configure (config, &error) != 0
        || hcp_deadline_configure (config, &error) != 0) {
        hcp_error ("configuration: %s", error);
        free (error);
        hcp_config_destroy (&config);
        return 1;
    }

    self.router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (self.router, 1000);
    //  A reply to a client that went away is dropped, not an error.
    zsock_set_router_mandatory (self.router, 0);
    if (zsock_bind (self.router, "%s", bind) < 0) {
        hcp_error ("cannot bind case_router.bind %s: %s (another instance on this address? "
                   "give each instance its own endpoint)",
                   bind, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self.router);
        hcp_config_destroy (&config);
        return 1;
    }

    char name[64];
    snprintf (name, sizeof name, "case-router:%d", (int) getpid ());
    self.db = hcp_db_new (self.conninfo, name);
    if (hcp_db_ensure (self.db, -1, hcp_service_stop_flag ()) != 0) {
        zsock_destroy (&self.router);
        hcp_db_destroy (&self.db);
        hcp_config_destroy (&config);
        return hcp_service_stopping () ? 0 : 1;
    }
    if (hcp_case_store_prepare (self.db) != 0) {
        hcp_error ("the database schema lacks the cases tables (run hcpctl migrate): %s",
                   hcp_db_error (self.db));
        zsock_destroy (&self.router);
        hcp_db_destroy (&self.db);
        hcp_config_destroy (&config);
        return 1;
    }
    hcp_info ("case-router %s: commands on %s, events %s", HCP_VERSION, bind,
              self.events ? self.bus_endpoint : "off (sweep only)");
    s_subscribe (&self);
    s_sweep (&self);
    self.next_sweep_ms = zclock_mono () + self.sweep_interval_ms;

    zpoller_t *poller = zpoller_new (self.router, NULL);
    s_listen (&self, poller);
    void *sub_socket = self.sub ? hcp_sub_socket (self.sub) : NULL;
    if (sub_socket)
        zpoller_add (poller, sub_socket);
    while (!hcp_service_stopping ()) {
        //  The subscriber's socket only hints that news came: poll at most
        //  every 200 ms and always ask the subscriber (hcp_bus.h).
        void *which = zpoller_wait (poller, 200);
        if (hcp_service_stopping ())
            break;
        if (hcp_db_lost (self.db)) {
            hcp_warn ("database connection lost; reconnecting");
            if (hcp_db_ensure (self.db, -1, hcp_service_stop_flag ()) != 0)
                break;
            self.swept_all = false; //  anything may have happened meanwhile
            self.next_sweep_ms = 0;
            s_listen (&self, poller);
        }
        s_drain_notifies (&self);
        if (which == self.router)
            for (int i = 0; i < 100; i++) {
                zmsg_t *msg = zmsg_recv_nowait (self.router);
                if (!msg)
                    break;
                s_handle_command (&self, msg);
            }
        if (self.events && !self.sub && !hcp_db_lost (self.db)) {
            if (sub_socket)
                zpoller_remove (poller, sub_socket);
            s_subscribe (&self);
            sub_socket = self.sub ? hcp_sub_socket (self.sub) : NULL;
            if (sub_socket)
                zpoller_add (poller, sub_socket);
        }
        void *before = self.sub;
        s_drain_events (&self);
        if (before && !self.sub && sub_socket) {
            zpoller_remove (poller, sub_socket);
            sub_socket = NULL;
        }
        if (zclock_mono () >= self.next_sweep_ms) {
            s_sweep (&self);
            self.next_sweep_ms = zclock_mono () + self.sweep_interval_ms;
        }
    }
    hcp_info ("stopping: the command in progress was finished");
    zpoller_destroy (&poller);
    hcp_sub_destroy (&self.sub);
    zsock_destroy (&self.router);
    hcp_db_destroy (&self.db);
    hcp_config_destroy (&config);
    return 0;
}
