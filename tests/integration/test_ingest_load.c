/*  Integration: 4 adapters × 5,000 ratings at once, 10 % of them resent
    after their answer. Each rating is stored exactly once, each resend is
    answered duplicate, and the counts reconcile in SQL (ratings rows,
    rating.stored events, no rejection). Real hcp-ingest, real PostgreSQL.
*/
#include "test_ingest_support.h"

#define S_ADAPTERS 4
#define S_RATINGS  5000

static void
test_four_adapters_with_resends (void **state)
{
    (void) state;
    ingest_t *ingest = s_ingest_start ("ingest_load", NULL);
    load_adapter_t adapters[S_ADAPTERS];
    pthread_t threads[S_ADAPTERS];
    memset (adapters, 0, sizeof adapters);
    for (int a = 0; a < S_ADAPTERS; a++) {
        adapters[a].endpoint = ingest->endpoint;
        adapters[a].index = a;
        adapters[a].count = S_RATINGS;
        adapters[a].resend_every = 10;
        adapters[a].timeout_ms = 30000; //  no resend by timeout: every resend is ours
        adapters[a].attempts = 3;
        pthread_create (&threads[a], NULL, s_load_adapter, &adapters[a]);
    }
    for (int a = 0; a < S_ADAPTERS; a++)
        pthread_join (threads[a], NULL);
    for (int a = 0; a < S_ADAPTERS; a++) {
        load_adapter_t *adapter = &adapters[a];
        if (adapter->accepted != S_RATINGS || adapter->resent_duplicate != S_RATINGS / 10)
            fail_msg (
                "adapter %d: %d accepted, %d duplicate, %d rejected, %d failed; %d of %d "
                "resends duplicate; last problem: %s",
                a, adapter->accepted, adapter->duplicate, adapter->rejected, adapter->failed,
                adapter->resent_duplicate, adapter->resent, adapter->last_problem);
        assert_int_equal (adapter->resent, S_RATINGS / 10);
    }
    s_load_reconcile (ingest->conn, adapters, S_ADAPTERS);
    //  Ingest said so too, in its stats line at the stop.
    s_ingest_stop (ingest);
    for (int a = 0; a < S_ADAPTERS; a++)
        free (adapters[a].ids);
    s_ingest_destroy (&ingest);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_four_adapters_with_resends),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
