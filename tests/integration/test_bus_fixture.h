/*  test_bus_fixture — what the bus and relay tests share (header only, each
    test is its own binary): a fresh database, a private folder with ipc://
    endpoints, the real hcp-bus and hcp-relay binaries, event writers, and
    a collector that follows a subscriber and checks that it saw every
    event exactly once, in order.
*/
#ifndef TEST_BUS_FIXTURE_H_INCLUDED
#define TEST_BUS_FIXTURE_H_INCLUDED

#include "hcp_bus.h"
#include "hcp_test.h"

#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#define FX_MAX_RELAYS 2

typedef struct {
    char *conninfo;
    char *dir;
    char publish[512];   //  XSUB side (relay → bus)
    char subscribe[512]; //  XPUB side (bus → subscribers)
    char log[600];
    char env_conninfo[600];
    char env_publish[600];
    char env_subscribe[600];
    char env_heartbeat[64];
    const char *relay_env; //  one more KEY=value for relays started after (or NULL)
    pid_t bus;
    pid_t relay[FX_MAX_RELAYS];
    PGconn *conn;
} fx_t;

//  Every service this process started and has not stopped yet. A failed
//  test leaves its fixture behind (cmocka jumps out of it): the next
//  fx_setup and the process's exit kill whatever is left, so no service
//  outlives its test binary looking for a dropped database.
#define FX_MAX_CHILDREN 64
static pid_t fx_children[FX_MAX_CHILDREN];

static inline void
fx_kill_children (void)
{
    for (int i = 0; i < FX_MAX_CHILDREN; i++)
        if (fx_children[i] > 0) {
            hcp_test_stop (fx_children[i], SIGKILL, 5000);
            fx_children[i] = 0;
        }
}

static inline pid_t
fx_track (pid_t pid)
{
    for (int i = 0; i < FX_MAX_CHILDREN; i++)
        if (fx_children[i] == 0) {
            fx_children[i] = pid;
            break;
        }
    return pid;
}

static inline void
fx_untrack (pid_t pid)
{
    for (int i = 0; i < FX_MAX_CHILDREN; i++)
        if (fx_children[i] == pid)
            fx_children[i] = 0;
}

static inline void
fx_setup (fx_t *fx, const char *name)
{
    static bool registered = false;
    if (!registered) {
        atexit (fx_kill_children);
        registered = true;
    }
    fx_kill_children ();
    memset (fx, 0, sizeof *fx);
    fx->conninfo = hcp_test_db_create (name);
    fx->dir = hcp_test_tmpdir (name);
    snprintf (fx->publish, sizeof fx->publish, "ipc://%s/publish", fx->dir);
    snprintf (fx->subscribe, sizeof fx->subscribe, "ipc://%s/subscribe", fx->dir);
    snprintf (fx->log, sizeof fx->log, "%s/services.log", fx->dir);
    snprintf (fx->env_conninfo, sizeof fx->env_conninfo, "HCP_DATABASE_CONNINFO=%s",
              fx->conninfo);
    snprintf (fx->env_publish, sizeof fx->env_publish, "HCP_BUS_PUBLISH=%s", fx->publish);
    snprintf (fx->env_subscribe, sizeof fx->env_subscribe, "HCP_BUS_SUBSCRIBE=%s",
              fx->subscribe);
    //  Faster than the default so that tests of recovery stay short.
    snprintf (fx->env_heartbeat, sizeof fx->env_heartbeat, "HCP_RELAY_HEARTBEAT_MS=300");
    fx->conn = hcp_test_connect (fx->conninfo);
    printf ("fixture: db %s, services log %s\n", fx->conninfo, fx->log);
}

static inline void
fx_start_bus (fx_t *fx)
{
    const char *argv[] = {"hcp-bus", NULL};
    const char *env[] = {fx->env_publish, fx->env_subscribe, NULL};
    fx->bus = fx_track (hcp_test_spawn ("hcp-bus", argv, env, fx->log));
}

static inline void
fx_start_relay (fx_t *fx, int index)
{
    assert_true (index >= 0 && index < FX_MAX_RELAYS);
    const char *argv[] = {"hcp-relay", NULL};
    const char *env[] = {fx->env_conninfo,  fx->env_publish,
                         fx->env_heartbeat, "HCP_RELAY_STANDBY_RETRY_MS=200",
                         fx->relay_env,     NULL};
    fx->relay[index] = fx_track (hcp_test_spawn ("hcp-relay", argv, env, fx->log));
}

//  Stops a service; a clean SIGTERM must end it with status 0.
static inline void
fx_stop (pid_t *pid)
{
    if (*pid <= 0)
        return;
    int status = hcp_test_stop (*pid, SIGTERM, 10000);
    fx_untrack (*pid);
    *pid = 0;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

static inline void
fx_kill (pid_t *pid)
{
    if (*pid <= 0)
        return;
    hcp_test_stop (*pid, SIGKILL, 10000);
    fx_untrack (*pid);
    *pid = 0;
}

static inline void
fx_teardown (fx_t *fx)
{
    fx_stop (&fx->bus);
    for (int i = 0; i < FX_MAX_RELAYS; i++)
        fx_stop (&fx->relay[i]);
    PQfinish (fx->conn);
    hcp_test_db_drop (fx->conninfo);
    //  Reached only when the test passed: a failed test keeps its folder
    //  (services.log) for the post-mortem.
    hcp_test_shell ("rm -rf '%s'", fx->dir);
    free (fx->conninfo);
    free (fx->dir);
}

//  Inserts count events of type "test.event" with keys prefix-0, prefix-1,
//  ... in one transaction.
static inline void
fx_insert (PGconn *conn, const char *prefix, int first, int count)
{
    hcp_test_sql_exec (conn,
                       "INSERT INTO events (type, key, payload)"
                       " SELECT 'test.event', '%s-' || g, convert_to('payload ' || g, 'UTF8')"
                       " FROM generate_series(%d, %d) g",
                       prefix, first, first + count - 1);
}

//  The table itself is consistent: nothing left unstamped, seq exactly
//  1..count, and relay_state agrees.
static inline void
fx_check_table (fx_t *fx, long long expected)
{
    assert_int_equal (hcp_test_wait_int (fx->conn, 0, 30000,
                                         "SELECT count(*) FROM events WHERE seq IS NULL"),
                      0);
    assert_int_equal (hcp_test_sql_int (fx->conn, "SELECT count(*) FROM events"), expected);
    assert_int_equal (hcp_test_sql_int (fx->conn, "SELECT count(DISTINCT seq) FROM events"),
                      expected);
    assert_int_equal (hcp_test_sql_int (fx->conn, "SELECT coalesce(min(seq), 1) FROM events"),
                      1);
    assert_int_equal (hcp_test_sql_int (fx->conn, "SELECT coalesce(max(seq), 0) FROM events"),
                      expected);
    assert_int_equal (hcp_test_sql_int (fx->conn, "SELECT last_seq FROM relay_state"),
                      expected);
}

//  Follows a subscriber, checking order as it goes.
typedef struct {
    hcp_sub_t *sub;
    uint64_t last;     //  last seq received
    uint64_t received; //  events received
    uint64_t errors;   //  out of order or duplicates (must stay 0)
    int db_errors;     //  hcp_sub_next returned -1
    char **keys;       //  keys[seq] (seq from 1), to compare with the table
    size_t keys_alloc;
} fx_collector_t;

static inline void
fx_collector_init (fx_collector_t *collector, fx_t *fx)
{
    memset (collector, 0, sizeof *collector);
    collector->sub = hcp_sub_new (fx->subscribe, fx->conninfo, 0, NULL);
    assert_non_null (collector->sub);
}

//  Receives for up to ms milliseconds or until the collector reached seq
//  until (0: just for ms). Returns the last seq.
static inline uint64_t
fx_collect (fx_collector_t *collector, uint64_t until, int ms)
{
    int64_t deadline = hcp_test_now_ms () + ms;
    while (hcp_test_now_ms () < deadline && (until == 0 || collector->last < until)) {
        hcp_event_t *event = NULL;
        int rc = hcp_sub_next (collector->sub, 100, &event);
        if (rc < 0)
            collector->db_errors++;
        if (rc != 1)
            continue;
        if (event->seq != collector->last + 1) {
            collector->errors++;
            printf ("collector: got seq %llu after %llu\n", (unsigned long long) event->seq,
                    (unsigned long long) collector->last);
        }
        if (event->seq > collector->last)
            collector->last = event->seq;
        collector->received++;
        if (event->seq >= collector->keys_alloc) {
            size_t alloc = collector->keys_alloc ? collector->keys_alloc : 1024;
            while (alloc <= event->seq)
                alloc *= 2;
            collector->keys = realloc (collector->keys, alloc * sizeof *collector->keys);
            memset (collector->keys + collector->keys_alloc, 0,
                    (alloc - collector->keys_alloc) * sizeof *collector->keys);
            collector->keys_alloc = alloc;
        }
        if (!collector->keys[event->seq])
            collector->keys[event->seq] = strdup (event->key);
        hcp_event_destroy (&event);
    }
    return collector->last;
}

//  Every event of the table was received once, in order, with its key.
static inline void
fx_collector_check (fx_collector_t *collector, fx_t *fx, long long expected)
{
    assert_int_equal (collector->errors, 0);
    assert_int_equal (collector->last, expected);
    assert_int_equal (collector->received, expected);
    PGresult *res = PQexec (fx->conn, "SELECT seq, key FROM events ORDER BY seq");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), expected);
    for (int row = 0; row < PQntuples (res); row++) {
        uint64_t seq = strtoull (PQgetvalue (res, row, 0), NULL, 10);
        assert_true (seq < collector->keys_alloc);
        assert_non_null (collector->keys[seq]);
        assert_string_equal (collector->keys[seq], PQgetvalue (res, row, 1));
    }
    PQclear (res);
}

static inline void
fx_collector_destroy (fx_collector_t *collector)
{
    for (size_t i = 0; i < collector->keys_alloc; i++)
        free (collector->keys[i]);
    free (collector->keys);
    hcp_sub_destroy (&collector->sub);
}

#endif
