/*  The relay dies: kill -9 in the middle of a stream, restarts, a second
    relay taking over, and events committed-and-stamped but never published
    (a crash between the stamping commit and the publish). Afterwards seq is
    gapless and unique, nothing is left unstamped, and a subscriber that
    followed all along has every event exactly once, in order. */
#include "../integration/test_bus_fixture.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    const char *conninfo;
    atomic_int stop;
    atomic_llong committed;
    unsigned int seed;
} writer_t;

//  Commits transactions of 1..200 events, as fast as it can with a short
//  pause, until told to stop.
static void *
s_writer (void *args)
{
    writer_t *writer = args;
    PGconn *conn = PQconnectdb (writer->conninfo);
    while (!atomic_load (&writer->stop) && PQstatus (conn) == CONNECTION_OK) {
        int size = 1 + (int) (rand_r (&writer->seed) % 200);
        long long first = atomic_load (&writer->committed);
        char sql[256];
        snprintf (sql, sizeof sql,
                  "INSERT INTO events (type, key) SELECT 'test.event', 'k-' || g"
                  " FROM generate_series(%lld, %lld) g",
                  first, first + size - 1);
        PGresult *res = PQexec (conn, sql);
        if (PQresultStatus (res) == PGRES_COMMAND_OK)
            atomic_fetch_add (&writer->committed, size);
        PQclear (res);
        hcp_test_sleep_ms (2);
    }
    PQfinish (conn);
    return NULL;
}

//  The pid of the relay process that holds the lead (0 if none).
static pid_t
s_leader (fx_t *fx)
{
    char *name = hcp_test_sql_text (fx->conn, "SELECT string_agg(application_name, ',')"
                                              " FROM hcp_relay_leader");
    pid_t pid = 0;
    if (name && strncmp (name, "hcp-relay:", 10) == 0 && !strchr (name, ','))
        pid = (pid_t) atoi (name + 10);
    free (name);
    return pid;
}

static void
s_finish (fx_t *fx, fx_collector_t *collector, writer_t *writer, pthread_t thread)
{
    atomic_store (&writer->stop, 1);
    pthread_join (thread, NULL);
    long long total = atomic_load (&writer->committed);
    printf ("committed %lld events\n", total);
    assert_true (total > 1000);
    assert_int_equal (
        hcp_test_wait_int (fx->conn, total, 60000, "SELECT last_seq FROM relay_state"), total);
    fx_collect (collector, (uint64_t) total, 60000);
    fx_collect (collector, 0, 500);
    fx_check_table (fx, total);
    fx_collector_check (collector, fx, total);
    assert_int_equal (hcp_test_sql_int (fx->conn, "SELECT count(DISTINCT key) FROM events"),
                      total);
}

static void
test_kill_and_restart_mid_stream (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "relay_kill");
    fx_start_bus (&fx);
    fx_start_relay (&fx, 0);
    fx_collector_t collector;
    fx_collector_init (&collector, &fx);
    writer_t writer = {.conninfo = fx.conninfo, .seed = (unsigned) getpid ()};
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_writer, &writer), 0);

    for (int round = 0; round < 4; round++) {
        fx_collect (&collector, 0, 700);
        fx_kill (&fx.relay[0]);
        //  While no relay runs, commits pile up unstamped.
        assert_true (hcp_test_wait_int (fx.conn, 1, 10000,
                                        "SELECT (count(*) > 0)::int FROM events"
                                        " WHERE seq IS NULL")
                     == 1);
        if (round % 2 == 1) {
            //  The crash between commit and publish, exactly: stamped and
            //  committed, never sent. Only the heartbeat and the table can
            //  tell the subscriber.
            hcp_test_sql_exec (fx.conn, "SELECT count(*) FROM hcp_relay_stamp(300)");
        }
        fx_collect (&collector, 0, 300);
        fx_start_relay (&fx, 0);
    }
    s_finish (&fx, &collector, &writer, thread);
    fx_collector_destroy (&collector);
    fx_teardown (&fx);
}

static void
test_two_relays_take_over (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "relay_two");
    fx_start_bus (&fx);
    fx_start_relay (&fx, 0);
    fx_start_relay (&fx, 1);
    fx_collector_t collector;
    fx_collector_init (&collector, &fx);
    writer_t writer = {.conninfo = fx.conninfo, .seed = (unsigned) getpid () + 1};
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_writer, &writer), 0);

    for (int round = 0; round < 4; round++) {
        //  Exactly one leader, one of ours.
        int64_t deadline = hcp_test_now_ms () + 15000;
        pid_t leader = 0;
        while (hcp_test_now_ms () < deadline) {
            leader = s_leader (&fx);
            if (leader == fx.relay[0] || leader == fx.relay[1])
                break;
            fx_collect (&collector, 0, 50);
        }
        int index = leader == fx.relay[0] ? 0 : leader == fx.relay[1] ? 1 : -1;
        printf ("round %d: leader is relay %d (pid %d)\n", round, index, (int) leader);
        assert_true (index >= 0);
        assert_int_equal (hcp_test_sql_int (fx.conn, "SELECT count(*) FROM hcp_relay_leader"),
                          1);
        fx_collect (&collector, 0, 500);
        //  Kill the leader: the standby must take over, and the stream go on.
        fx_kill (&fx.relay[index]);
        long long stamped = hcp_test_sql_int (fx.conn, "SELECT last_seq FROM relay_state");
        deadline = hcp_test_now_ms () + 15000;
        while (hcp_test_now_ms () < deadline && s_leader (&fx) != fx.relay[1 - index])
            fx_collect (&collector, 0, 50);
        assert_int_equal (s_leader (&fx), fx.relay[1 - index]);
        assert_true (hcp_test_wait_int (fx.conn, 1, 15000,
                                        "SELECT (last_seq > %lld)::int FROM relay_state",
                                        stamped)
                     == 1);
        //  The killed one comes back as the standby.
        fx_start_relay (&fx, index);
    }
    s_finish (&fx, &collector, &writer, thread);
    fx_collector_destroy (&collector);
    fx_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_kill_and_restart_mid_stream),
        cmocka_unit_test (test_two_relays_take_over),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
