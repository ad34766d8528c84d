/*  kill -9 of hcp-default-rater in the middle of its work, then a restart:
    nothing lost, nothing doubled.

    30,000 deliveries whose windows are all due, events stamped, and more
    deliveries (with events) arriving between the kills, so that a kill
    lands while defaults are being stored or while events are being handled.
    After every kill the invariants must hold at once (a default exists
    exactly for each window marked defaulted, with one event each); at the
    end every window is closed exactly once and the consumer offset has
    reached the last event.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../integration/test_default_rater_fixture.h"

static char *s_conninfo;
static PGconn *s_conn;
static char *s_dir;
static char s_clock[4096];
static pid_t s_pids[4];

static pid_t
s_start (int slot)
{
    static char env[6][4300];
    snprintf (env[0], sizeof env[0], "HCP_DATABASE_CONNINFO=%s", s_conninfo);
    snprintf (env[1], sizeof env[1], "HCP_CLOCK_FILE=%s", s_clock);
    snprintf (env[2], sizeof env[2], "HCP_BUS_SUBSCRIBE=ipc://%s/bus-xpub", s_dir);
    snprintf (env[3], sizeof env[3], "HCP_DEFAULT_RATER_SWEEP_MS=10");
    snprintf (env[4], sizeof env[4], "HCP_DEFAULT_RATER_BATCH=500");
    snprintf (env[5], sizeof env[5], "HCP_DEFAULT_RATER_CATCHUP_MS=2000");
    const char *envp[] = {env[0], env[1], env[2], env[3], env[4], env[5], NULL};
    const char *argv[] = {"hcp-default-rater", NULL};
    char log[4200];
    snprintf (log, sizeof log, "%s/rater-%d.log", s_dir, slot);
    s_pids[slot] = hcp_test_spawn ("hcp-default-rater", argv, envp, log);
    return s_pids[slot];
}

static void
s_kill (int slot)
{
    hcp_test_stop (s_pids[slot], SIGKILL, 5000);
    s_pids[slot] = 0;
}

static long long
s_defaults (void)
{
    return hcp_test_sql_int (s_conn, "SELECT count(*) FROM ratings WHERE origin = 'default'");
}

//  Waits until at least n defaults exist (the instance is busy), or fails.
static void
s_wait_defaults_above (long long n)
{
    int64_t deadline = hcp_test_now_ms () + 60000;
    while (s_defaults () <= n) {
        if (hcp_test_now_ms () > deadline)
            fail_msg ("no progress past %lld defaults in 60 s (logs in %s)", n, s_dir);
        hcp_test_sleep_ms (5);
    }
}

//  The events the offset says were handled did their work: every
//  delivery.stored at or below it has its window.
static void
s_check_offset (void)
{
    long long missing = hcp_test_sql_int (
        s_conn, "SELECT count(*) FROM events e JOIN consumer_offsets o ON o.consumer = "
                "'default-rater' WHERE e.type = 'delivery.stored' AND e.seq <= o.last_seq "
                "AND NOT EXISTS (SELECT 1 FROM rating_windows w WHERE w.delivery_id = e.key)");
    if (missing != 0)
        fail_msg ("%lld delivery.stored events at or below the offset have no window",
                  missing);
}

static long long
s_offset (void)
{
    return hcp_test_sql_int (s_conn, "SELECT coalesce (max (last_seq), 0) FROM "
                                     "consumer_offsets WHERE consumer = 'default-rater'");
}

static int
s_teardown (void **state)
{
    (void) state;
    for (int i = 0; i < 4; i++)
        if (s_pids[i] > 0)
            hcp_test_stop (s_pids[i], SIGKILL, 5000);
    if (s_conn)
        PQfinish (s_conn);
    if (s_conninfo)
        hcp_test_db_drop (s_conninfo);
    free (s_conninfo);
    free (s_dir);
    return 0;
}

static void
test_kill_9_mid_work_then_restart (void **state)
{
    (void) state;
    s_conninfo = hcp_test_db_create ("dr_kill");
    s_conn = hcp_test_connect (s_conninfo);
    s_dir = hcp_test_tmpdir ("dr_kill");
    snprintf (s_clock, sizeof s_clock, "%s/clock", s_dir);
    fx_set_clock (s_clock, "2026-03-01T12:00:00+08:00");
    fx_deliveries (s_conn, "a-", 30000, 3, "2026-02-13 10:00:00+08", 1);
    fx_stamp (s_conn);
    int expected = 30000;

    //  Kill 1: while the first defaults are being stored.
    s_start (0);
    s_wait_defaults_above (1000);
    s_kill (0);
    fx_check_invariants (s_conn);
    s_check_offset ();
    long long after_first = s_defaults ();
    print_message ("killed after %lld defaults\n", after_first);

    //  New deliveries while it is down: the restart handles their events
    //  (and is killed again while doing so, or while storing defaults).
    for (int round = 0; round < 3; round++) {
        char prefix[16];
        snprintf (prefix, sizeof prefix, "b%d-", round);
        fx_deliveries (s_conn, prefix, 2000, 1, "2026-02-20 10:00:00+08", 1);
        fx_stamp (s_conn);
        expected += 2000;
        long long before = s_defaults ();
        long long offset = s_offset ();
        s_start (0);
        if (round == 1) {
            //  As soon as the first batch of events is committed: the
            //  next batches (500 events each) are in flight.
            int64_t deadline = hcp_test_now_ms () + 60000;
            while (s_offset () == offset && hcp_test_now_ms () < deadline)
                hcp_test_sleep_ms (1);
            if (s_offset () == offset)
                fail_msg ("the events were not handled within 60 s (logs in %s)", s_dir);
        }
        else {
            s_wait_defaults_above (before + 500 + round * 1500);
            //  Random-ish moment inside the next transaction.
            hcp_test_sleep_ms (7 * round);
        }
        s_kill (0);
        fx_check_invariants (s_conn);
        s_check_offset ();
        print_message ("killed after %lld defaults\n", s_defaults ());
    }

    //  Restart two instances and let them finish.
    s_start (0);
    s_start (1);
    long long got = hcp_test_wait_int (s_conn, expected, 120000,
                                       "SELECT count(*) FROM rating_windows WHERE state = "
                                       "'defaulted'");
    if (got != expected)
        fail_msg ("%lld of %d windows defaulted after the restarts (logs in %s)", got,
                  expected, s_dir);
    //  Every event (including the rating.defaulted ones) handled.
    fx_stamp (s_conn);
    long long head = hcp_test_sql_int (s_conn, "SELECT max (seq) FROM events");
    got = hcp_test_wait_int (s_conn, head, 60000,
                             "SELECT last_seq FROM consumer_offsets WHERE consumer = "
                             "'default-rater'");
    assert_int_equal (got, head);
    assert_int_equal (hcp_test_stop (s_pids[0], SIGTERM, 10000), 0);
    assert_int_equal (hcp_test_stop (s_pids[1], SIGTERM, 10000), 0);
    s_pids[0] = s_pids[1] = 0;
    fx_check_invariants (s_conn);
    s_check_offset ();
    assert_int_equal (s_defaults (), expected);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM rating_windows"),
                      expected);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM deliveries d WHERE NOT "
                                                "EXISTS (SELECT 1 FROM ratings r WHERE "
                                                "r.delivery_id = d.delivery_id)"),
                      0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_kill_9_mid_work_then_restart, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
