/*  hcp-default-rater as a process: the events it follows (stamped by the
    relay's step, read from the table as its subscriber catches up), its
    clock injected through HCP_CLOCK_FILE, a clean stop on SIGTERM; and two
    instances over one database never storing a default twice.

    No hcp-bus runs here: the subscriber reads the events table when the bus
    is quiet, which is the path that must never lose anything.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test_default_rater_fixture.h"

typedef struct {
    char *conninfo;
    PGconn *conn;
    char *dir;
    char clock[4096];
    pid_t pids[4]; //  running instances, stopped by the teardown if a test fails
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof *self);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    for (int i = 0; i < 4; i++)
        if (self->pids[i] > 0)
            hcp_test_stop (self->pids[i], SIGKILL, 5000);
    if (self->conn)
        PQfinish (self->conn);
    if (self->conninfo)
        hcp_test_db_drop (self->conninfo);
    free (self->conninfo);
    free (self->dir);
    free (self);
    return 0;
}

static void
s_prepare (fixture_t *self, const char *name)
{
    self->conninfo = hcp_test_db_create (name);
    self->conn = hcp_test_connect (self->conninfo);
    self->dir = hcp_test_tmpdir (name);
    snprintf (self->clock, sizeof self->clock, "%s/clock", self->dir);
}

//  Starts one instance; its log is <dir>/<label>.log.
static pid_t
s_start (fixture_t *self, const char *label, const char *batch, const char *catchup_ms)
{
    static char env[8][4300];
    snprintf (env[0], sizeof env[0], "HCP_DATABASE_CONNINFO=%s", self->conninfo);
    snprintf (env[1], sizeof env[1], "HCP_CLOCK_FILE=%s", self->clock);
    snprintf (env[2], sizeof env[2], "HCP_BUS_SUBSCRIBE=ipc://%s/bus-xpub", self->dir);
    snprintf (env[3], sizeof env[3], "HCP_DEFAULT_RATER_SWEEP_MS=20");
    snprintf (env[4], sizeof env[4], "HCP_DEFAULT_RATER_BATCH=%s", batch);
    snprintf (env[5], sizeof env[5], "HCP_DEFAULT_RATER_CATCHUP_MS=%s", catchup_ms);
    snprintf (env[6], sizeof env[6], "HCP_LOG_LEVEL=info");
    const char *envp[] = {env[0], env[1], env[2], env[3], env[4], env[5], env[6], NULL};
    const char *argv[] = {"hcp-default-rater", NULL};
    char log[4200];
    snprintf (log, sizeof log, "%s/%s.log", self->dir, label);
    pid_t pid = hcp_test_spawn ("hcp-default-rater", argv, envp, log);
    for (int i = 0; i < 4; i++)
        if (self->pids[i] <= 0) {
            self->pids[i] = pid;
            break;
        }
    return pid;
}

//  Stops an instance (and forgets it).
static int
s_stop (fixture_t *self, pid_t pid, int sig)
{
    for (int i = 0; i < 4; i++)
        if (self->pids[i] == pid)
            self->pids[i] = 0;
    return hcp_test_stop (pid, sig, 10000);
}

//  The "N defaults stored" an instance reported when it stopped.
static long
s_reported_defaults (fixture_t *self, const char *label)
{
    char path[4200];
    snprintf (path, sizeof path, "%s/%s.log", self->dir, label);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char line[2048];
    long defaults = -1;
    while (fgets (line, sizeof line, file)) {
        const char *at = strstr (line, "windows opened, ");
        if (at)
            defaults = atol (at + strlen ("windows opened, "));
    }
    fclose (file);
    if (defaults < 0)
        fail_msg ("%s did not report its totals when stopping (see %s)", label, path);
    return defaults;
}

static void
s_wait (fixture_t *self, long long expected, const char *sql)
{
    long long got = hcp_test_wait_int (self->conn, expected, 60000, "%s", sql);
    if (got != expected)
        fail_msg ("waited 60 s for %s = %lld, got %lld (logs in %s)", sql, expected, got,
                  self->dir);
}

static void
test_follows_events_and_the_injected_clock (void **state)
{
    fixture_t *self = *state;
    s_prepare (self, "dr_service");
    fx_set_clock (self->clock, "2026-02-13T10:00:00+08:00");
    //  The safety net only at start: windows below must come from events.
    pid_t pid = s_start (self, "rater", "1000", "86400000");
    hcp_test_sleep_ms (300);
    fx_deliveries (self->conn, "d-", 10, 3, "2026-02-13 10:00:00+08", 1);
    fx_deliveries (self->conn, "a-", 2, 1, "2026-02-13 10:00:00+08", 1);
    long long stamped = fx_stamp (self->conn);
    assert_int_equal (stamped, 12);
    s_wait (self, 12, "SELECT count(*) FROM rating_windows WHERE state = 'open'");
    s_wait (self, 12,
            "SELECT last_seq FROM consumer_offsets WHERE consumer = 'default-rater'");
    //  d-1 rated in time: its event closes the window.
    fx_rating (self->conn, "01900000-0000-7000-8000-000000000001", "d-1",
               "2026-02-15 10:00:00+08", 1, 1);
    fx_stamp (self->conn);
    s_wait (self, 1, "SELECT count(*) FROM rating_windows WHERE state = 'rated'");
    //  One millisecond before 24:00 of day D+7: many sweeps, no default.
    fx_set_clock (self->clock, "2026-02-20T23:59:59.999+08:00");
    hcp_test_sleep_ms (1000);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings WHERE "
                                                    "origin = 'default'"),
                      0);
    //  24:00: the other 11 get their default.
    fx_set_clock (self->clock, "2026-02-21T00:00:00+08:00");
    s_wait (self, 11,
            "SELECT count(*) FROM ratings WHERE origin = 'default' AND rated_at = "
            "'2026-02-21T00:00:00+08'");
    s_wait (self, 11, "SELECT count(*) FROM rating_windows WHERE state = 'defaulted'");
    //  A bad rating for d-2 a week late: the window shows rated_late.
    fx_set_clock (self->clock, "2026-02-28T09:00:00+08:00");
    fx_rating (self->conn, "01900000-0000-7000-8000-000000000002", "d-2",
               "2026-02-28 09:00:00+08", 5, 1);
    fx_stamp (self->conn);
    s_wait (self, 1,
            "SELECT count(*) FROM rating_windows WHERE state = 'rated_late' AND "
            "late_rating_id = '01900000-0000-7000-8000-000000000002'");
    //  Its own rating.defaulted events went past it too: the offset keeps up.
    fx_stamp (self->conn);
    long long head = hcp_test_sql_int (self->conn, "SELECT max (seq) FROM events");
    s_wait (self, head,
            "SELECT last_seq FROM consumer_offsets WHERE consumer = "
            "'default-rater'");
    //  SIGTERM: a clean stop, exit 0.
    int status = s_stop (self, pid, SIGTERM);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (s_reported_defaults (self, "rater"), 11);
    fx_check_invariants (self->conn);
}

static void
test_two_instances_never_default_twice (void **state)
{
    fixture_t *self = *state;
    s_prepare (self, "dr_two");
    //  Every window below is due at once.
    fx_set_clock (self->clock, "2026-03-01T12:00:00+08:00");
    fx_deliveries (self->conn, "a-", 3000, 3, "2026-02-13 10:00:00+08", 1);
    fx_stamp (self->conn);
    //  Small batches, frequent sweeps and the safety net every second: the
    //  two instances contend on every path (events, sweep, safety net).
    pid_t one = s_start (self, "one", "50", "1000");
    pid_t two = s_start (self, "two", "50", "1000");
    //  More work while they run: deliveries with events, some without
    //  (the safety net's), and rater ratings racing with the defaults.
    for (int round = 0; round < 5; round++) {
        char prefix[16];
        snprintf (prefix, sizeof prefix, "b%d-", round);
        fx_deliveries (self->conn, prefix, 300, 1 + round % 3, "2026-02-14 10:00:00+08",
                       round != 2);
        for (int i = 1; i <= 40; i++) {
            char rating[40], delivery[32];
            snprintf (rating, sizeof rating, "01900000-0000-7000-8000-%012d", round * 100 + i);
            snprintf (delivery, sizeof delivery, "a-%d", round * 500 + i);
            fx_rating (self->conn, rating, delivery, "2026-03-01 11:00:00+08", 2 + i % 4, 1);
        }
        fx_stamp (self->conn);
        hcp_test_sleep_ms (100);
    }
    //  All 4500 windows closed, and every event handled.
    s_wait (self, 4500, "SELECT count(*) FROM rating_windows WHERE state <> 'open'");
    fx_stamp (self->conn);
    long long head = hcp_test_sql_int (self->conn, "SELECT max (seq) FROM events");
    s_wait (self, head,
            "SELECT last_seq FROM consumer_offsets WHERE consumer = "
            "'default-rater'");
    s_wait (self, 0, "SELECT count(*) FROM rating_windows WHERE state = 'open'");
    assert_int_equal (s_stop (self, one, SIGTERM), 0);
    assert_int_equal (s_stop (self, two, SIGTERM), 0);
    fx_check_invariants (self->conn);
    //  Exactly one outcome per window: 200 rated by the rater (before the
    //  default or after it: rated or rated_late), a default for each of
    //  the others; together the instances reported exactly the defaults
    //  in the table (neither believed it stored one the other stored).
    long long defaults = hcp_test_sql_int (
        self->conn, "SELECT count(*) FROM ratings WHERE origin = 'default'");
    long long rated = hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM rating_windows WHERE "
                                        "state IN ('rated', 'rated_late')");
    assert_int_equal (rated, 200);
    assert_int_equal (defaults
                          + hcp_test_sql_int (self->conn,
                                              "SELECT count(*) FROM rating_windows "
                                              "WHERE state = 'rated'"),
                      4500);
    long one_reported = s_reported_defaults (self, "one");
    long two_reported = s_reported_defaults (self, "two");
    print_message ("defaults stored: instance one %ld, instance two %ld, table %lld\n",
                   one_reported, two_reported, defaults);
    assert_int_equal (one_reported + two_reported, defaults);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_follows_events_and_the_injected_clock, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_two_instances_never_default_twice, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
