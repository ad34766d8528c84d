/*  bench_bus — the event relay and bus, measured with the real binaries.

    1. Backlog: N events (300-byte payloads) are committed while no relay
       runs; then hcp-relay starts. Rate at which it stamps and publishes
       them, and at which a subscriber receives them through hcp-bus.
    2. Live: writer threads insert events as fast as they can (transactions
       of 500) for a few seconds while the relay runs: insert rate, stamp
       rate, and the largest backlog seen.
    3. Latency: one writer commits one event per transaction every 5 ms;
       time from COMMIT returning to a subscriber receiving it (p50, p99,
       max), on an idle system and again with background writers.

    Prints a table. Exits 1 if it could not run or counted wrong.
    Run: make bench (tests/bench/run.sh), or by hand after
    eval "$(deploy/scripts/pg-local.sh env)": HCP_BIN_DIR=build/bin
    HCP_TEST_TEMPLATE=hcp_template build/bench/bench_bus
*/
#include "hcp_bus.h"
#include "hcp_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG_EVENTS 200000
#define LIVE_SECONDS   5
#define LIVE_WRITERS   2
#define LIVE_TX_EVENTS 500
#define LATENCY_EVENTS 1000

typedef struct {
    char *conninfo;
    char *dir;
    char publish[512], subscribe[512], log[600];
    char env_conninfo[600], env_publish[600], env_subscribe[600];
    pid_t bus, relay;
    PGconn *conn;
} bench_t;

//  The services we started, killed at exit whatever happens, so none
//  outlives the benchmark.
static pid_t s_children[2];

static void
s_kill_children (void)
{
    for (int i = 0; i < 2; i++)
        if (s_children[i] > 0)
            hcp_test_stop (s_children[i], SIGKILL, 5000);
}

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
s_start_relay (bench_t *b)
{
    const char *argv[] = {"hcp-relay", NULL};
    const char *env[] = {b->env_conninfo, b->env_publish, "HCP_LOG_LEVEL=warn", NULL};
    b->relay = s_children[1] = hcp_test_spawn ("hcp-relay", argv, env, b->log);
}

static void
s_die (const char *what)
{
    fprintf (stderr, "bench_bus: %s\n", what);
    exit (1);
}

// --- 1. backlog --------------------------------------------------------------

typedef struct {
    bench_t *b;
    uint64_t until;
    int64_t done_us;
    uint64_t received;
    int errors;
} drain_t;

static void *
s_drain (void *args)
{
    drain_t *drain = args;
    hcp_sub_t *sub = hcp_sub_new (drain->b->subscribe, drain->b->conninfo, 0, NULL);
    uint64_t last = 0;
    int64_t deadline = s_now_us () + 300 * 1000000LL;
    while (last < drain->until && s_now_us () < deadline) {
        hcp_event_t *event;
        if (hcp_sub_next (sub, 200, &event) == 1) {
            if (event->seq != last + 1)
                drain->errors++;
            last = event->seq;
            drain->received++;
            hcp_event_destroy (&event);
        }
    }
    drain->done_us = s_now_us ();
    hcp_sub_destroy (&sub);
    return NULL;
}

// --- 2. live writers -----------------------------------------------------------

typedef struct {
    const char *conninfo;
    atomic_int *stop;
    long long inserted;
    int rate; //  events per second to aim at (0: as fast as possible)
} writer_t;

static void *
s_writer (void *args)
{
    writer_t *writer = args;
    PGconn *conn = PQconnectdb (writer->conninfo);
    char sql[256];
    snprintf (sql, sizeof sql,
              "INSERT INTO events (type, key, payload) SELECT 'bench.event', 'w' || g,"
              " convert_to(repeat('x', 300), 'UTF8') FROM generate_series(1, %d) g",
              LIVE_TX_EVENTS);
    int64_t started = s_now_us ();
    while (!atomic_load (writer->stop) && PQstatus (conn) == CONNECTION_OK) {
        PGresult *res = PQexec (conn, sql);
        if (PQresultStatus (res) == PGRES_COMMAND_OK)
            writer->inserted += LIVE_TX_EVENTS;
        PQclear (res);
        if (writer->rate > 0) {
            //  Sleep until the schedule says the next transaction is due.
            int64_t due = started + writer->inserted * 1000000LL / writer->rate;
            int64_t ahead = due - s_now_us ();
            if (ahead > 0)
                hcp_test_sleep_ms ((int) (ahead / 1000));
        }
    }
    PQfinish (conn);
    return NULL;
}

// --- 4. the cost of the NOTIFY trigger on small commits ----------------------

#define SMALL_WRITERS 4
#define SMALL_SECONDS 3

typedef struct {
    const char *conninfo;
    atomic_int *stop;
    long long commits;
} small_t;

static void *
s_small_writer (void *args)
{
    small_t *small = args;
    PGconn *conn = PQconnectdb (small->conninfo);
    while (!atomic_load (small->stop) && PQstatus (conn) == CONNECTION_OK) {
        PGresult *res = PQexec (conn,
                                "INSERT INTO events (type, key) VALUES ('small.commit', 'k')");
        if (PQresultStatus (res) == PGRES_COMMAND_OK)
            small->commits++;
        PQclear (res);
    }
    PQfinish (conn);
    return NULL;
}

//  Commits per second of SMALL_WRITERS connections inserting one event per
//  transaction.
static double
s_small_commits (bench_t *b)
{
    atomic_int stop = 0;
    small_t smalls[SMALL_WRITERS];
    pthread_t threads[SMALL_WRITERS];
    int64_t started = s_now_us ();
    for (int i = 0; i < SMALL_WRITERS; i++) {
        smalls[i] = (small_t){b->conninfo, &stop, 0};
        pthread_create (&threads[i], NULL, s_small_writer, &smalls[i]);
    }
    hcp_test_sleep_ms (SMALL_SECONDS * 1000);
    atomic_store (&stop, 1);
    long long commits = 0;
    for (int i = 0; i < SMALL_WRITERS; i++) {
        pthread_join (threads[i], NULL);
        commits += smalls[i].commits;
    }
    return commits / ((s_now_us () - started) / 1e6);
}

// --- 3. latency ------------------------------------------------------------------

typedef struct {
    bench_t *b;
    uint64_t after;     //  subscribe after this seq
    int64_t *commit_us; //  [i]: when COMMIT of event i returned
    int64_t *recv_us;   //  [i]: when the subscriber got it
    atomic_int received;
    atomic_int ready;
} latency_t;

static void *
s_latency_sub (void *args)
{
    latency_t *lat = args;
    hcp_sub_t *sub = hcp_sub_new (lat->b->subscribe, lat->b->conninfo, lat->after, "lat.");
    //  Catch up to the present before the writer starts.
    hcp_event_t *event;
    while (hcp_sub_next (sub, 300, &event) == 1)
        hcp_event_destroy (&event);
    atomic_store (&lat->ready, 1);
    int64_t deadline = s_now_us () + 120 * 1000000LL;
    while (atomic_load (&lat->received) < LATENCY_EVENTS && s_now_us () < deadline) {
        if (hcp_sub_next (sub, 200, &event) != 1)
            continue;
        int64_t now = s_now_us ();
        int index = atoi (event->key);
        if (index >= 0 && index < LATENCY_EVENTS && lat->recv_us[index] == 0) {
            lat->recv_us[index] = now;
            atomic_fetch_add (&lat->received, 1);
        }
        hcp_event_destroy (&event);
    }
    hcp_sub_destroy (&sub);
    return NULL;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Runs the latency measure; fills p50/p99/max in microseconds.
static void
s_latency (bench_t *b, const char *tag, int64_t *p50, int64_t *p99, int64_t *max)
{
    latency_t lat = {.b = b};
    lat.after = (uint64_t) hcp_test_sql_int (b->conn, "SELECT last_seq FROM relay_state");
    lat.commit_us = calloc (LATENCY_EVENTS, sizeof (int64_t));
    lat.recv_us = calloc (LATENCY_EVENTS, sizeof (int64_t));
    pthread_t thread;
    pthread_create (&thread, NULL, s_latency_sub, &lat);
    while (!atomic_load (&lat.ready))
        hcp_test_sleep_ms (10);
    PGconn *conn = hcp_test_connect (b->conninfo);
    for (int i = 0; i < LATENCY_EVENTS; i++) {
        hcp_test_sql_exec (conn, "BEGIN");
        hcp_test_sql_exec (conn, "INSERT INTO events (type, key) VALUES ('lat.%s', '%d')", tag,
                           i);
        hcp_test_sql_exec (conn, "COMMIT");
        lat.commit_us[i] = s_now_us ();
        hcp_test_sleep_ms (5);
    }
    PQfinish (conn);
    pthread_join (thread, NULL);
    if (atomic_load (&lat.received) != LATENCY_EVENTS)
        s_die ("latency: the subscriber did not receive every event");
    int64_t *delays = calloc (LATENCY_EVENTS, sizeof (int64_t));
    for (int i = 0; i < LATENCY_EVENTS; i++) {
        //  The relay may publish before COMMIT has returned to the writer.
        int64_t delay = lat.recv_us[i] - lat.commit_us[i];
        delays[i] = delay > 0 ? delay : 0;
    }
    qsort (delays, LATENCY_EVENTS, sizeof *delays, s_compare);
    *p50 = delays[LATENCY_EVENTS / 2];
    *p99 = delays[LATENCY_EVENTS * 99 / 100];
    *max = delays[LATENCY_EVENTS - 1];
    free (delays);
    free (lat.commit_us);
    free (lat.recv_us);
}

int
main (void)
{
    bench_t b = {0};
    b.conninfo = hcp_test_db_create ("bench_bus");
    b.dir = hcp_test_tmpdir ("bench_bus");
    snprintf (b.publish, sizeof b.publish, "ipc://%s/publish", b.dir);
    snprintf (b.subscribe, sizeof b.subscribe, "ipc://%s/subscribe", b.dir);
    snprintf (b.log, sizeof b.log, "%s/services.log", b.dir);
    snprintf (b.env_conninfo, sizeof b.env_conninfo, "HCP_DATABASE_CONNINFO=%s", b.conninfo);
    snprintf (b.env_publish, sizeof b.env_publish, "HCP_BUS_PUBLISH=%s", b.publish);
    snprintf (b.env_subscribe, sizeof b.env_subscribe, "HCP_BUS_SUBSCRIBE=%s", b.subscribe);
    b.conn = hcp_test_connect (b.conninfo);
    const char *bus_argv[] = {"hcp-bus", NULL};
    const char *bus_env[] = {b.env_publish, b.env_subscribe, "HCP_LOG_LEVEL=warn", NULL};
    atexit (s_kill_children);
    b.bus = s_children[0] = hcp_test_spawn ("hcp-bus", bus_argv, bus_env, b.log);

    // 1. Backlog.
    hcp_test_sql_exec (
        b.conn,
        "INSERT INTO events (type, key, payload) SELECT 'bench.event', 'b' || g,"
        " convert_to(repeat('x', 300), 'UTF8')"
        " FROM generate_series(1, %d) g",
        BACKLOG_EVENTS);
    hcp_test_sql_exec (b.conn, "VACUUM ANALYZE events");
    drain_t drain = {.b = &b, .until = BACKLOG_EVENTS};
    pthread_t drain_thread;
    //  The subscriber is already connected (and caught up on nothing) when
    //  the relay starts, so it receives live rather than from the table.
    pthread_create (&drain_thread, NULL, s_drain, &drain);
    hcp_test_sleep_ms (500);
    int64_t started = s_now_us ();
    s_start_relay (&b);
    if (hcp_test_wait_int (b.conn, BACKLOG_EVENTS, 300000, "SELECT last_seq FROM relay_state")
        != BACKLOG_EVENTS)
        s_die ("backlog: the relay did not stamp every event");
    int64_t stamped_us = s_now_us () - started;
    pthread_join (drain_thread, NULL);
    if (drain.received != BACKLOG_EVENTS || drain.errors)
        s_die ("backlog: the subscriber did not get every event exactly once in order");
    int64_t drained_us = drain.done_us - started;

    // 2. Live writers.
    atomic_int stop = 0;
    writer_t writers[LIVE_WRITERS];
    pthread_t writer_threads[LIVE_WRITERS];
    long long before = hcp_test_sql_int (b.conn, "SELECT last_seq FROM relay_state");
    long long max_backlog = 0;
    started = s_now_us ();
    for (int i = 0; i < LIVE_WRITERS; i++) {
        writers[i] = (writer_t){b.conninfo, &stop, 0, 0};
        pthread_create (&writer_threads[i], NULL, s_writer, &writers[i]);
    }
    while (s_now_us () - started < LIVE_SECONDS * 1000000LL) {
        long long backlog = hcp_test_sql_int (b.conn,
                                              "SELECT count(*) FROM events WHERE seq IS NULL");
        if (backlog > max_backlog)
            max_backlog = backlog;
        hcp_test_sleep_ms (100);
    }
    atomic_store (&stop, 1);
    long long inserted = 0;
    for (int i = 0; i < LIVE_WRITERS; i++) {
        pthread_join (writer_threads[i], NULL);
        inserted += writers[i].inserted;
    }
    int64_t live_us = s_now_us () - started;
    long long stamped_live = hcp_test_sql_int (b.conn, "SELECT last_seq FROM relay_state")
                             - before;
    long long total = hcp_test_sql_int (b.conn, "SELECT count(*) FROM events");
    if (hcp_test_wait_int (b.conn, total, 120000, "SELECT last_seq FROM relay_state") != total)
        s_die ("live: the relay did not catch up");
    int64_t caught_up_us = s_now_us () - started;

    // 3. Latency, idle and with background writers at fixed rates.
    int64_t lat[3][3];
    char stamp_lat[3][64];
    double rates[3] = {0, 0, 0};
    const int targets[3] = {0, 10000, 20000};
    for (int run = 0; run < 3; run++) {
        writer_t background = {b.conninfo, &stop, 0, targets[run]};
        pthread_t background_thread;
        atomic_store (&stop, 0);
        int64_t load_started = s_now_us ();
        if (targets[run])
            pthread_create (&background_thread, NULL, s_writer, &background);
        char tag[16];
        snprintf (tag, sizeof tag, "r%d", run);
        s_latency (&b, tag, &lat[run][0], &lat[run][1], &lat[run][2]);
        char *stamp = hcp_test_sql_text (
            b.conn,
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
            " stamped_at - created_at))::numeric * 1000, 1) || ' / ' ||"
            " round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM"
            " stamped_at - created_at))::numeric * 1000, 1)"
            " FROM events WHERE type = 'lat.%s'",
            tag);
        snprintf (stamp_lat[run], sizeof stamp_lat[run], "%s", stamp ? stamp : "?");
        free (stamp);
        atomic_store (&stop, 1);
        if (targets[run]) {
            pthread_join (background_thread, NULL);
            rates[run] = background.inserted / ((s_now_us () - load_started) / 1e6);
        }
    }

    // 4. Small commits with and without the wake-up trigger.
    double with_notify = s_small_commits (&b);
    hcp_test_sql_exec (b.conn, "ALTER TABLE events DISABLE TRIGGER events_notify");
    double without_notify = s_small_commits (&b);
    hcp_test_sql_exec (b.conn, "ALTER TABLE events ENABLE TRIGGER events_notify");

    // Integrity after all that.
    total = hcp_test_sql_int (b.conn, "SELECT count(*) FROM events");
    if (hcp_test_wait_int (b.conn, total, 120000, "SELECT last_seq FROM relay_state") != total
        || hcp_test_sql_int (b.conn, "SELECT count(DISTINCT seq) FROM events") != total)
        s_die ("integrity: seq is not gapless and unique at the end");

    char value[64];
    printf (
        "\nbench_bus — hcp-relay + hcp-bus (real binaries, ipc://, 300-byte payloads)\n\n");
    printf ("| %-58s | %-26s |\n", "measure", "value");
    printf ("|%.60s|%.28s|\n", "------------------------------------------------------------",
            "----------------------------");
#define S_ROW(label, ...)                                                                     \
    do {                                                                                      \
        snprintf (value, sizeof value, __VA_ARGS__);                                          \
        printf ("| %-58s | %-26s |\n", label, value);                                         \
    } while (0)
    S_ROW ("backlog of 200k events: stamped + published by the relay", "%.0f events/s",
           BACKLOG_EVENTS / (stamped_us / 1e6));
    S_ROW ("backlog: received in order by a subscriber via hcp-bus", "%.0f events/s",
           BACKLOG_EVENTS / (drained_us / 1e6));
    S_ROW ("live: 2 writers, 500-event transactions, inserted", "%.0f events/s",
           inserted / (live_us / 1e6));
    S_ROW ("live: stamped + published meanwhile", "%.0f events/s",
           stamped_live / (live_us / 1e6));
    S_ROW ("live: largest unstamped backlog seen", "%lld events", max_backlog);
    S_ROW ("live: relay caught up after", "%.2f s", caught_up_us / 1e6);
    for (int run = 0; run < 3; run++) {
        char label[80];
        if (run == 0)
            snprintf (label, sizeof label, "latency commit -> subscriber, idle: p50/p99/max");
        else
            snprintf (label, sizeof label, "latency, writers at %.0f events/s: p50/p99/max",
                      rates[run]);
        S_ROW (label, "%.1f / %.1f / %.1f ms", lat[run][0] / 1e3, lat[run][1] / 1e3,
               lat[run][2] / 1e3);
        S_ROW ("  of which writer's transaction start -> stamped: p50/p99", "%s ms",
               stamp_lat[run]);
    }
    S_ROW ("4 connections, 1-event commits, NOTIFY trigger on", "%.0f commits/s", with_notify);
    S_ROW ("same with the trigger disabled (relay polls only)", "%.0f commits/s",
           without_notify);
    printf ("\n");

    hcp_test_stop (b.relay, SIGTERM, 10000);
    hcp_test_stop (b.bus, SIGTERM, 10000);
    s_children[0] = s_children[1] = 0;
    PQfinish (b.conn);
    hcp_test_db_drop (b.conninfo);
    hcp_test_shell ("rm -rf '%s'", b.dir);
    free (b.conninfo);
    free (b.dir);
    return 0;
}
