/*  Two hcp-case-router processes over one database, both following the
    bus and both sweeping often: every bad rating gets exactly one case and
    one case.opened event, however the work was shared. */
#include "test_case_fixture.h"

static tc_services_t s_fx;

static void
test_two_routers_never_open_a_case_twice (void **state)
{
    (void) state;
    //  A sweep every 300 ms in each instance, racing the event path.
    tc_services_setup (&s_fx, "case_two_routers", 300);
    tc_start_bus_relay (&s_fx);
    tc_start_router (&s_fx, 0, false);
    tc_start_router (&s_fx, 1, false);
    int bad = 0;
    //  Ratings arrive in many small transactions while both run: 600
    //  ratings, every third one bad.
    for (int batch = 0; batch < 30; batch++) {
        bad += tc_feed (s_fx.conn, batch % 2 ? "000119003000" : "000119001000",
                        "2026-03-02 10:00", 21, 3);
        hcp_test_sleep_ms (20);
    }
    assert_int_equal (bad, 210);
    assert_int_equal (hcp_test_wait_int (s_fx.conn, bad, 60000, "SELECT count(*) FROM cases"),
                      bad);
    //  Give both a few more sweeps and events to do something twice.
    hcp_test_sleep_ms (1500);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM cases"), bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn,
                                        "SELECT count(*) FROM ratings r WHERE is_bad AND "
                                        "(SELECT count(*) FROM cases c WHERE c.rating_id = "
                                        "r.rating_id) <> 1"),
                      0);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM cases c JOIN ratings "
                                                   "r USING (rating_id) WHERE NOT r.is_bad"),
                      0);
    assert_int_equal (
        hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM events WHERE type = 'case.opened'"),
        bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(DISTINCT key) FROM events "
                                                   "WHERE type = 'case.opened'"),
                      bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM case_history"), bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM deadlines WHERE kind "
                                                   "= 'form'"),
                      bad);
    //  Every event was consumed: the offset reached the last rating event.
    assert_int_equal (
        hcp_test_wait_int (s_fx.conn, 1, 30000,
                           "SELECT count(*) FROM consumer_offsets WHERE consumer "
                           "= 'case-router' AND last_seq >= (SELECT max(seq) FROM "
                           "events WHERE type = 'rating.stored')"),
        1);
    printf ("cases opened by the event path and the sweeps of two instances: %d\n", bad);
    tc_services_teardown (&s_fx);
}

int
main (void)
{
    return TC_SERVICES_RUN (test_two_routers_never_open_a_case_twice, &s_fx);
}
