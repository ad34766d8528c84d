/*  Fault: hcp-ingest killed with SIGKILL in the middle of 4 adapters ×
    5,000 ratings (10 % resent), then restarted; the adapters' clients time
    out and resend the same ids. Afterwards nothing is missing and nothing
    doubled: every id sent is stored once with one event, whatever answer
    came first (an ack lost with the process comes back as duplicate).
    Also: the database connection cut under load (ingest reconnects and
    retries its batch), and SIGTERM under load (ingest finishes its batch
    and exits 0).
*/
#include "../integration/test_ingest_support.h"

#define S_ADAPTERS 4
#define S_RATINGS  5000

typedef enum { CUT_KILL, CUT_DATABASE, CUT_TERM } cut_t;

static void
s_load_with_cut (const char *name, cut_t cut)
{
    ingest_t *ingest = s_ingest_start (name, NULL);
    load_adapter_t adapters[S_ADAPTERS];
    pthread_t threads[S_ADAPTERS];
    memset (adapters, 0, sizeof adapters);
    volatile int acked = 0;
    for (int a = 0; a < S_ADAPTERS; a++) {
        adapters[a].endpoint = ingest->endpoint;
        adapters[a].index = a;
        adapters[a].count = S_RATINGS;
        adapters[a].resend_every = 10;
        adapters[a].timeout_ms = 1500;
        adapters[a].attempts = 40;
        adapters[a].acked_total = &acked;
        pthread_create (&threads[a], NULL, s_load_adapter, &adapters[a]);
    }
    //  Strike in the middle of the load.
    int64_t deadline = hcp_test_now_ms () + 120000;
    while (__atomic_load_n (&acked, __ATOMIC_RELAXED) < S_ADAPTERS * S_RATINGS / 3
           && hcp_test_now_ms () < deadline)
        hcp_test_sleep_ms (1);
    int at = __atomic_load_n (&acked, __ATOMIC_RELAXED);
    assert_true (at < S_ADAPTERS * S_RATINGS); //  really in the middle
    if (cut == CUT_KILL) {
        hcp_test_stop (ingest->pid, SIGKILL, 5000);
        s_track (ingest->pid, false);
        hcp_test_sleep_ms (300);
        s_ingest_spawn (ingest);
    }
    else if (cut == CUT_TERM) {
        //  A clean stop: the batch in hand is finished, exit code 0.
        s_ingest_stop (ingest);
        hcp_test_sleep_ms (300);
        s_ingest_spawn (ingest);
    }
    else {
        //  Cut ingest's database connection three times.
        for (int i = 0; i < 3; i++) {
            hcp_test_sql_exec (ingest->conn,
                               "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() "
                               "AND application_name = 'hcp-ingest'");
            hcp_test_sleep_ms (200);
        }
    }
    for (int a = 0; a < S_ADAPTERS; a++)
        pthread_join (threads[a], NULL);
    int stored_first = 0;
    for (int a = 0; a < S_ADAPTERS; a++) {
        load_adapter_t *adapter = &adapters[a];
        //  First answers: accepted, or duplicate when the first ack was lost.
        if (adapter->failed || adapter->rejected
            || adapter->accepted + adapter->duplicate != S_RATINGS
            || adapter->resent_duplicate != adapter->resent)
            fail_msg (
                "adapter %d: %d accepted, %d duplicate, %d rejected, %d failed; %d of %d "
                "resends duplicate; last problem: %s",
                a, adapter->accepted, adapter->duplicate, adapter->rejected, adapter->failed,
                adapter->resent_duplicate, adapter->resent, adapter->last_problem);
        assert_int_equal (adapter->resent, S_RATINGS / 10);
        stored_first += adapter->accepted;
    }
    fprintf (stderr, "cut after %d answers; %d first answers accepted, %d duplicate\n", at,
             stored_first, S_ADAPTERS * S_RATINGS - stored_first);
    s_load_reconcile (ingest->conn, adapters, S_ADAPTERS);
    if (cut == CUT_DATABASE) {
        //  The cut was noticed (not slept through): ingest says so.
        FILE *log = fopen (ingest->log, "r");
        char line[2048];
        int noticed = 0;
        while (log && fgets (line, sizeof line, log))
            noticed += strstr (line, "database connection lost") != NULL;
        if (log)
            fclose (log);
        assert_true (noticed > 0);
    }
    for (int a = 0; a < S_ADAPTERS; a++)
        free (adapters[a].ids);
    s_ingest_destroy (&ingest);
}

static void
test_kill_9_and_restart (void **state)
{
    (void) state;
    s_load_with_cut ("ingest_kill", CUT_KILL);
}

static void
test_database_connection_cut (void **state)
{
    (void) state;
    s_load_with_cut ("ingest_dbcut", CUT_DATABASE);
}

static void
test_sigterm_finishes_batch (void **state)
{
    (void) state;
    s_load_with_cut ("ingest_term", CUT_TERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_kill_9_and_restart),
        cmocka_unit_test (test_database_connection_cut),
        cmocka_unit_test (test_sigterm_finishes_batch),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
