/*  test_ingest_support — what the ingest integration and fault tests share
    (header only: static helpers, included by each test binary).

    s_ingest_start makes a fresh database and runs the real hcp-ingest on an
    ipc:// endpoint in a private folder; s_rating fills a valid rating that
    tests then spoil one field at a time; s_raw_call sends raw bytes on a
    plain DEALER and returns the decoded reply.
*/
#ifndef TEST_INGEST_SUPPORT_H_INCLUDED
#define TEST_INGEST_SUPPORT_H_INCLUDED

#include "hcp/v1/ingest.pb-c.h"
#include "hcp_clock.h"
#include "hcp_test.h"
#include "hcp_uuid.h"

#include <czmq.h>
#include <errno.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

//  Helpers a test binary may not use.
#define S_UNUSED __attribute__ ((unused))

#define S_ITEM  "000119001000" //  an active item of deploy/config/catalog.yaml
#define S_ITEM2 "000119002000"

typedef struct {
    char *conninfo;
    char *dir;
    char endpoint[512];
    char log[512];
    pid_t pid;
    PGconn *conn;
    char env[8][600]; //  environment for the ingest process
    int env_count;
} ingest_t;

//  Ingest processes still running, killed at exit: a test that fails in
//  a group setup never reaches its teardown, and an ingest left behind
//  would wait forever for its dropped database.
static pid_t s_spawned[16];

static void
s_kill_spawned (void)
{
    for (int i = 0; i < 16; i++)
        if (s_spawned[i] > 0)
            hcp_test_stop (s_spawned[i], SIGKILL, 5000);
}

static S_UNUSED void
s_track (pid_t pid, bool running)
{
    static bool registered = false;
    if (!registered) {
        atexit (s_kill_spawned);
        registered = true;
    }
    for (int i = 0; i < 16; i++)
        if (running ? s_spawned[i] == 0 : s_spawned[i] == pid) {
            s_spawned[i] = running ? pid : 0;
            return;
        }
}

//  Starts hcp-ingest (again, if it ran before) and waits until it serves.
static S_UNUSED void
s_ingest_spawn (ingest_t *self)
{
    const char *argv[] = {"hcp-ingest", NULL};
    const char *env[10];
    for (int i = 0; i < self->env_count; i++)
        env[i] = self->env[i];
    env[self->env_count] = NULL;
    char socket_path[600];
    snprintf (socket_path, sizeof socket_path, "%s/ingest", self->dir);
    unlink (socket_path);
    self->pid = hcp_test_spawn ("hcp-ingest", argv, env, self->log);
    s_track (self->pid, true);
    //  The socket file appears when ingest binds, after the catalog loaded.
    int64_t deadline = hcp_test_now_ms () + 30000;
    struct stat info;
    while (stat (socket_path, &info) != 0) {
        if (hcp_test_now_ms () > deadline)
            fail_msg ("hcp-ingest did not bind within 30 s (log %s)", self->log);
        hcp_test_sleep_ms (20);
    }
}

//  A fresh database named after name, and ingest on it. extra: more
//  "KEY=value" settings (NULL-ended, may be NULL).
static S_UNUSED ingest_t *
s_ingest_start (const char *name, const char *const *extra)
{
    ingest_t *self = calloc (1, sizeof *self);
    self->conninfo = hcp_test_db_create (name);
    self->dir = hcp_test_tmpdir (name);
    snprintf (self->endpoint, sizeof self->endpoint, "ipc://%s/ingest", self->dir);
    snprintf (self->log, sizeof self->log, "%s/ingest.log", self->dir);
    snprintf (self->env[self->env_count++], 600, "HCP_DATABASE_CONNINFO=%s", self->conninfo);
    snprintf (self->env[self->env_count++], 600, "HCP_INGEST_BIND=%s", self->endpoint);
    snprintf (self->env[self->env_count++], 600, "HCP_INGEST_STATS_SECONDS=5");
    for (int i = 0; extra && extra[i] && self->env_count < 8; i++)
        snprintf (self->env[self->env_count++], 600, "%s", extra[i]);
    self->conn = hcp_test_connect (self->conninfo);
    s_ingest_spawn (self);
    return self;
}

//  Stops ingest with SIGTERM and checks it exited cleanly.
static S_UNUSED void
s_ingest_stop (ingest_t *self)
{
    int status = hcp_test_stop (self->pid, SIGTERM, 15000);
    s_track (self->pid, false);
    self->pid = 0;
    if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0))
        fail_msg ("hcp-ingest did not exit cleanly (status %d, log %s)", status, self->log);
}

static S_UNUSED void
s_ingest_destroy (ingest_t **self_p)
{
    ingest_t *self = *self_p;
    if (self->pid)
        s_ingest_stop (self);
    PQfinish (self->conn);
    hcp_test_db_drop (self->conninfo);
    free (self->conninfo);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  A valid rating for item S_ITEM, rated a minute ago; id is filled with a
//  new UUIDv7 and rater with a natural person.
static S_UNUSED void
s_rating (Hcp__V1__Rating *rating, Hcp__V1__Rater *rater, char id[HCP_UUID_STR_LEN])
{
    static const Hcp__V1__Rating rating_init = HCP__V1__RATING__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    *rating = rating_init;
    *rater = rater_init;
    hcp_uuid_v7 (0, id);
    rater->type = HCP__V1__RATER_TYPE__RATER_NATURAL_PERSON;
    rater->key = (char *) "acct-1";
    rating->rating_id = id;
    rating->item_code = (char *) S_ITEM;
    rating->channel = HCP__V1__CHANNEL__CHANNEL_HALL_DEVICE;
    rating->stage = HCP__V1__STAGE__STAGE_COMPLETION;
    rating->rating_count = 1;
    rating->rater = rater;
    rating->rated_at_ms = hcp_clock_now_ms () - 60000;
    rating->standardization = HCP__V1__GRADE__GRADE_VERY_SATISFIED;
    rating->convenience = HCP__V1__GRADE__GRADE_SATISFIED;
    rating->accuracy = HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED;
    rating->comment = (char *) "办理顺利";
}

//  A valid delivery of item S_ITEM delivered an hour ago.
static S_UNUSED void
s_delivery (Hcp__V1__Delivery *delivery, Hcp__V1__Rater *rater, const char *id)
{
    static const Hcp__V1__Delivery delivery_init = HCP__V1__DELIVERY__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    *delivery = delivery_init;
    *rater = rater_init;
    rater->type = HCP__V1__RATER_TYPE__RATER_ENTERPRISE;
    delivery->delivery_id = (char *) id;
    delivery->item_code = (char *) S_ITEM;
    delivery->stage = HCP__V1__STAGE__STAGE_APPLICATION;
    delivery->channel = HCP__V1__CHANNEL__CHANNEL_ONLINE;
    delivery->rater = rater;
    delivery->delivered_at_ms = hcp_clock_now_ms () - 3600000;
}

//  Encodes a Submit holding rating (or delivery when rating is NULL).
static S_UNUSED zframe_t *
s_encode (const Hcp__V1__Rating *rating, const Hcp__V1__Delivery *delivery)
{
    Hcp__V1__Submit submit = HCP__V1__SUBMIT__INIT;
    if (rating) {
        submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
        submit.rating = (Hcp__V1__Rating *) rating;
    }
    else if (delivery) {
        submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
        submit.delivery = (Hcp__V1__Delivery *) delivery;
    }
    zframe_t *frame = zframe_new (NULL, hcp__v1__submit__get_packed_size (&submit));
    hcp__v1__submit__pack (&submit, zframe_data (frame));
    return frame;
}

//  A plain DEALER connected to ingest, with a receive timeout.
static S_UNUSED zsock_t *
s_dealer (const ingest_t *ingest)
{
    zsock_t *socket = zsock_new (ZMQ_DEALER);
    assert_non_null (socket);
    zsock_set_rcvtimeo (socket, 20000);
    zsock_set_linger (socket, 0);
    assert_int_equal (zsock_connect (socket, "%s", ingest->endpoint), 0);
    return socket;
}

//  Receives one reply (failing the test after the timeout).
static S_UNUSED Hcp__V1__SubmitReply *
s_reply (zsock_t *socket)
{
    zframe_t *frame = zframe_recv (socket);
    if (!frame)
        fail_msg ("no reply from hcp-ingest within the timeout");
    Hcp__V1__SubmitReply *reply = hcp__v1__submit_reply__unpack (NULL, zframe_size (frame),
                                                                 zframe_data (frame));
    zframe_destroy (&frame);
    assert_non_null (reply);
    return reply;
}

//  Sends one frame (taking it) and returns the reply.
static S_UNUSED Hcp__V1__SubmitReply *
s_call (zsock_t *socket, zframe_t *frame)
{
    assert_int_equal (zframe_send (&frame, socket, 0), 0);
    return s_reply (socket);
}

//  Sends raw bytes as one frame and returns the reply.
static S_UNUSED Hcp__V1__SubmitReply *
s_raw_call (zsock_t *socket, const void *bytes, size_t size)
{
    return s_call (socket, zframe_new (bytes, size));
}

//  Sends one frame (taking it) and checks that ingest accepted it.
static S_UNUSED void
s_call_accepted (zsock_t *socket, zframe_t *frame)
{
    Hcp__V1__SubmitReply *reply = s_call (socket, frame);
    assert_int_equal (reply->status, HCP__V1__ACK_STATUS__ACK_ACCEPTED);
    hcp__v1__submit_reply__free_unpacked (reply, NULL);
}

//  A rating with the rater and id it points to, so a test needs one
//  variable, not three. Never copied: rating points into the struct.
typedef struct {
    Hcp__V1__Rating rating;
    Hcp__V1__Rater rater;
    char id[HCP_UUID_STR_LEN];
} test_rating_t;

//  Fills self with a new valid rating (s_rating) and returns the rating.
static S_UNUSED Hcp__V1__Rating *
s_test_rating (test_rating_t *self)
{
    s_rating (&self->rating, &self->rater, self->id);
    return &self->rating;
}

//  --------------------------------------------------------------------------
//  Load: adapters (threads, each its own hcp_client) sending ratings, and
//  resending some of them once they were answered.

#include "hcp_client.h"

#include <pthread.h>

typedef struct {
    const char *endpoint;
    int index;                 //  adapter number: ids and contents differ per adapter
    int count;                 //  ratings to send
    int resend_every;          //  resend every n-th rating after its answer (10: 10 %)
    int timeout_ms;            //  hcp_client timeout per attempt
    int attempts;              //  hcp_client max attempts
    volatile int *acked_total; //  shared: first answers counted (for the fault tests)
    //  results
    char (*ids)[HCP_UUID_STR_LEN];
    int accepted, duplicate, rejected, failed; //  first sends
    int resent, resent_duplicate;              //  resends, and those answered duplicate
    char last_problem[700];
} load_adapter_t;

//  The rating number i of an adapter: always the same content.
static S_UNUSED void
s_load_rating (load_adapter_t *self, int i, Hcp__V1__Rating *rating, Hcp__V1__Rater *rater)
{
    static const Hcp__V1__Rating rating_init = HCP__V1__RATING__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    static const char *comments[] = {"很满意", "等了很久", "", "材料一次告知"};
    *rating = rating_init;
    *rater = rater_init;
    rater->type = (Hcp__V1__RaterType) (1 + i % 6);
    rating->rating_id = self->ids[i];
    rating->item_code = (char *) (i % 2 ? S_ITEM : "000119006000");
    rating->channel = (Hcp__V1__Channel) (1 + (i + self->index) % 7);
    rating->stage = (Hcp__V1__Stage) (1 + i % 3);
    rating->rating_count = 1 + (i % 17 == 0);
    rating->rater = rater;
    rating->rated_at_ms = 1767225600000LL + (int64_t) self->index * 10000000 + i;
    rating->standardization = (Hcp__V1__Grade) (1 + i % 5);
    rating->convenience = (Hcp__V1__Grade) (i % 4);
    rating->comment = (char *) comments[i % 4];
}

static S_UNUSED void *
s_load_adapter (void *arg)
{
    load_adapter_t *self = arg;
    self->ids = calloc ((size_t) self->count, HCP_UUID_STR_LEN);
    for (int i = 0; i < self->count; i++)
        hcp_uuid_v7 (1767225600000LL + i, self->ids[i]);
    hcp_client_options_t options;
    hcp_client_options_default (&options);
    options.timeout_ms = self->timeout_ms;
    options.max_attempts = self->attempts;
    options.backoff_ms = 100;
    options.backoff_max_ms = 1000;
    hcp_client_t *client = hcp_client_new (self->endpoint, &options);
    int next = 0;
    hcp_client_result_t result;
    while (next < self->count || hcp_client_pending (client) > 0) {
        while (next < self->count && hcp_client_pending (client) < 300) {
            Hcp__V1__Rating rating;
            Hcp__V1__Rater rater;
            s_load_rating (self, next, &rating, &rater);
            hcp_client_send_rating (client, &rating, (void *) (intptr_t) (next << 1));
            next++;
        }
        if (hcp_client_wait (client, -1, &result) != 1)
            continue;
        int tag = (int) (intptr_t) result.tag;
        int i = tag >> 1;
        if (tag & 1) {
            self->resent_duplicate += result.status == HCP_CLIENT_DUPLICATE;
            if (result.status != HCP_CLIENT_DUPLICATE)
                snprintf (self->last_problem, sizeof self->last_problem,
                          "resend of %s answered %s %s", result.id,
                          hcp_client_status_name (result.status), result.reason);
            continue;
        }
        if (self->acked_total)
            __atomic_add_fetch (self->acked_total, 1, __ATOMIC_RELAXED);
        switch (result.status) {
        case HCP_CLIENT_ACCEPTED:
            self->accepted++;
            break;
        case HCP_CLIENT_DUPLICATE:
            self->duplicate++;
            break;
        case HCP_CLIENT_REJECTED:
            self->rejected++;
            break;
        case HCP_CLIENT_FAILED:
            self->failed++;
            break;
        }
        if (result.status != HCP_CLIENT_ACCEPTED)
            snprintf (self->last_problem, sizeof self->last_problem, "%s answered %s %s %s",
                      result.id, hcp_client_status_name (result.status), result.code,
                      result.reason);
        //  Once stored, resend some: an adapter that lost the ack does so.
        if ((result.status == HCP_CLIENT_ACCEPTED || result.status == HCP_CLIENT_DUPLICATE)
            && i % self->resend_every == 0) {
            Hcp__V1__Rating rating;
            Hcp__V1__Rater rater;
            s_load_rating (self, i, &rating, &rater);
            hcp_client_send_rating (client, &rating, (void *) (intptr_t) (tag | 1));
            self->resent++;
        }
    }
    hcp_client_destroy (&client);
    return NULL;
}

//  Every id every adapter sent is stored exactly once, with exactly one
//  rating.stored event; nothing else was stored or rejected.
static S_UNUSED void
s_load_reconcile (PGconn *conn, load_adapter_t *adapters, int count)
{
    long long total = 0;
    for (int a = 0; a < count; a++)
        total += adapters[a].count;
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM ratings"), total);
    assert_int_equal (
        hcp_test_sql_int (conn, "SELECT count(*) FROM events WHERE type = 'rating.stored'"),
        total);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM (SELECT key FROM events "
                                              "GROUP BY key HAVING count(*) > 1) doubled"),
                      0);
    assert_int_equal (hcp_test_sql_int (conn, "SELECT count(*) FROM rejected_submissions"), 0);
    //  Each id sent, by name.
    for (int a = 0; a < count; a++) {
        size_t size = (size_t) adapters[a].count * 40 + 64;
        char *list = malloc (size);
        size_t used = 0;
        for (int i = 0; i < adapters[a].count; i++)
            used += (size_t) snprintf (list + used, size - used, "%s%s", i ? "," : "",
                                       adapters[a].ids[i]);
        assert_int_equal (hcp_test_sql_int (conn,
                                            "SELECT count(*) FROM ratings r JOIN events e ON "
                                            "e.key = r.rating_id::text WHERE r.rating_id = "
                                            "ANY ('{%s}'::uuid[])",
                                            list),
                          adapters[a].count);
        free (list);
    }
}

#endif
