/*  How the relay is woken. With the poll period set long (5 s), an event
    committed while the relay sleeps is stamped at once, so the NOTIFY
    woke it; a writer that saw the relay "awake" (relay_wakeup) skips its
    NOTIFY, and its event is still stamped by the next poll (at most 5 s
    here): a delay, bounded, never a loss. And the stamping function itself, called by
    racing callers without any relay, stays gapless. */
#include "test_bus_fixture.h"

#include <pthread.h>

//  Milliseconds until every event is stamped (or -1 after timeout_ms).
static long long
s_time_to_stamp (fx_t *fx, int timeout_ms)
{
    int64_t started = hcp_test_now_ms ();
    if (hcp_test_wait_int (fx->conn, 0, timeout_ms,
                           "SELECT count(*) FROM events WHERE seq IS NULL")
        != 0)
        return -1;
    return hcp_test_now_ms () - started;
}

static void
test_notify_wakes_a_sleeping_relay (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "relay_wakeup");
    //  Neither the poll nor the heartbeat (which also makes it look) come
    //  within 5 s: only a NOTIFY can wake it sooner.
    fx.relay_env = "HCP_RELAY_POLL_MS=5000";
    snprintf (fx.env_heartbeat, sizeof fx.env_heartbeat, "HCP_RELAY_HEARTBEAT_MS=5000");
    fx_start_relay (&fx, 0);
    //  The relay has looked, found nothing, and gone to sleep.
    assert_int_equal (hcp_test_wait_int (fx.conn, 1, 10000,
                                         "SELECT count(*) FROM relay_wakeup WHERE NOT awake"),
                      1);
    for (int i = 0; i < 3; i++) {
        fx_insert (fx.conn, "woken", i, 1);
        long long ms = s_time_to_stamp (&fx, 10000);
        printf ("stamped %lld ms after the commit\n", ms);
        assert_true (ms >= 0 && ms < 2500); //  the NOTIFY, not the 5 s timers
        //  Wait for it to fall asleep again.
        assert_int_equal (hcp_test_wait_int (fx.conn, 1, 10000,
                                             "SELECT count(*) FROM relay_wakeup"
                                             " WHERE NOT awake"),
                          1);
        hcp_test_sleep_ms (100);
    }

    //  A stale hint: the row says awake while the relay sleeps (a writer
    //  read it just before the relay lowered it). No NOTIFY is sent; the
    //  poll still finds the event.
    hcp_test_sql_exec (fx.conn, "UPDATE relay_wakeup SET awake = true");
    fx_insert (fx.conn, "unannounced", 0, 1);
    long long ms = s_time_to_stamp (&fx, 15000);
    printf ("unannounced event stamped after %lld ms\n", ms);
    assert_true (ms >= 0); //  (a timer found it: when depends on the timers' phase)
    fx_check_table (&fx, 4);
    fx_teardown (&fx);
}

//  The race the lock closes: a writer inserts while the relay is busy (so it
//  skips its NOTIFY) and commits only after the relay ran out of work. The
//  relay must not go to sleep for its 5 s timers: it waits for that writer
//  and stamps its event right after the commit.
static void
test_late_committer_is_not_left_for_the_poll (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "relay_late");
    fx.relay_env = "HCP_RELAY_POLL_MS=5000";
    snprintf (fx.env_heartbeat, sizeof fx.env_heartbeat, "HCP_RELAY_HEARTBEAT_MS=5000");
    fx_start_relay (&fx, 0);
    PGconn *writer = hcp_test_connect (fx.conninfo);
    bool skipped = false;
    for (int attempt = 0; attempt < 5 && !skipped; attempt++) {
        //  Keep the relay busy (awake) for a while.
        hcp_test_sql_exec (fx.conn,
                           "INSERT INTO events (type, key) SELECT 'test.backlog', 'b' || g"
                           " FROM generate_series(1, 50000) g");
        assert_int_equal (hcp_test_wait_int (fx.conn, 1, 10000,
                                             "SELECT count(*) FROM relay_wakeup WHERE awake"),
                          1);
        hcp_test_sql_exec (writer, "BEGIN");
        hcp_test_sql_exec (
            writer, "INSERT INTO events (type, key) VALUES ('test.late', 'l%d')", attempt);
        //  Did the trigger take the skip path (it then holds the lock)?
        skipped = hcp_test_sql_int (writer,
                                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                    " AND objid = 1919249527 AND pid = pg_backend_pid()")
                  == 1;
        if (!skipped) {
            hcp_test_sql_exec (writer, "ROLLBACK");
            continue;
        }
        //  The relay finishes the backlog and wants to sleep, but waits.
        assert_int_equal (hcp_test_wait_int (fx.conn, 0, 30000,
                                             "SELECT count(*) FROM events WHERE seq IS NULL"),
                          0);
        assert_int_equal (hcp_test_wait_int (fx.conn, 1, 10000,
                                             "SELECT count(*) FROM relay_wakeup"
                                             " WHERE NOT awake"),
                          1);
        hcp_test_sleep_ms (300);
        hcp_test_sql_exec (writer, "COMMIT");
        long long ms = s_time_to_stamp (&fx, 15000);
        printf ("late committer stamped %lld ms after its commit\n", ms);
        assert_true (ms >= 0 && ms < 2500); //  not the 5 s timers
    }
    assert_true (skipped);
    PQfinish (writer);
    fx_teardown (&fx);
}

typedef struct {
    const char *conninfo;
    int calls;
    int stamped;
    int failures;
} stamper_t;

//  Calls hcp_relay_stamp() in a loop, as a runaway second relay would.
static void *
s_stamper (void *args)
{
    stamper_t *stamper = args;
    PGconn *conn = PQconnectdb (stamper->conninfo);
    for (int i = 0; i < 300 && PQstatus (conn) == CONNECTION_OK; i++) {
        PGresult *res = PQexec (conn, "SELECT count(*) FROM hcp_relay_stamp(37)");
        if (PQresultStatus (res) == PGRES_TUPLES_OK)
            stamper->stamped += atoi (PQgetvalue (res, 0, 0));
        else
            stamper->failures++;
        stamper->calls++;
        PQclear (res);
    }
    PQfinish (conn);
    return NULL;
}

static void
test_racing_stampers_stay_gapless (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "relay_race");
    //  No relay: four callers of the stamping function race each other
    //  while events are committed.
    stamper_t stampers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        stampers[i] = (stamper_t){fx.conninfo, 0, 0, 0};
        assert_int_equal (pthread_create (&threads[i], NULL, s_stamper, &stampers[i]), 0);
    }
    for (int i = 0; i < 100; i++)
        fx_insert (fx.conn, "race", i * 50, 50);
    int stamped = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join (threads[i], NULL);
        assert_int_equal (stampers[i].failures, 0);
        stamped += stampers[i].stamped;
    }
    //  Whatever the racing left, one more call finishes.
    hcp_test_sql_exec (fx.conn, "SELECT count(*) FROM hcp_relay_stamp(100000)");
    printf ("racing stampers stamped %d of 5000\n", stamped);
    fx_check_table (&fx, 5000);
    fx_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_notify_wakes_a_sleeping_relay),
        cmocka_unit_test (test_late_committer_is_not_left_for_the_poll),
        cmocka_unit_test (test_racing_stampers_stay_gapless),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
