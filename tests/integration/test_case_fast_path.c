/*  The fast path of migration 006: a bad rating's case opens as soon as the
    rating commits (NOTIFY hcp_bad_ratings), without the relay, the bus or
    the sweep. Here no relay runs (no event is ever stamped, so the event
    path delivers nothing) and the sweep waits an hour after its start-up
    pass: only the notification can open these cases. */
#include "test_case_fixture.h"

static tc_services_t s_fx;

static void
test_cases_open_from_the_notification_alone (void **state)
{
    (void) state;
    tc_services_setup (&s_fx, "case_fast_path", 3600000);
    tc_start_router (&s_fx, 0, false);
    //  Up: connected, and its start-up sweep (which would open anything
    //  already there) is behind it.
    assert_int_equal (hcp_test_wait_int (s_fx.conn, 1, 30000,
                                         "SELECT count(*) FROM pg_stat_activity "
                                         "WHERE application_name LIKE 'case-router:%%'"),
                      1);
    hcp_test_sleep_ms (1500);
    int bad = tc_feed (s_fx.conn, "000119001000", "2026-03-02 10:00", 12, 3);
    assert_int_equal (bad, 4);
    assert_int_equal (hcp_test_wait_int (s_fx.conn, bad, 20000, "SELECT count(*) FROM cases"),
                      bad);
    //  Opened by the notification: nothing was stamped, so no event could
    //  have carried them, and each case is whole (history, deadline, event).
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM events "
                                                   "WHERE seq IS NOT NULL"),
                      0);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM cases c JOIN ratings "
                                                   "r USING (rating_id) WHERE NOT r.is_bad"),
                      0);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM case_history"), bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM deadlines "
                                                   "WHERE kind = 'form'"),
                      bad);
    assert_int_equal (
        hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM events WHERE type = 'case.opened'"),
        bad);
    //  The database restarts our session: the router listens again.
    hcp_test_sql_exec (s_fx.conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE application_name LIKE 'case-router:%%'");
    assert_int_equal (hcp_test_wait_int (s_fx.conn, 1, 30000,
                                         "SELECT count(*) FROM pg_stat_activity "
                                         "WHERE application_name LIKE 'case-router:%%'"),
                      1);
    hcp_test_sleep_ms (1500);
    bad += tc_feed (s_fx.conn, "000119003000", "2026-03-02 11:00", 6, 2);
    assert_int_equal (bad, 7);
    assert_int_equal (hcp_test_wait_int (s_fx.conn, bad, 20000, "SELECT count(*) FROM cases"),
                      bad);
    tc_services_teardown (&s_fx);
}

int
main (void)
{
    return TC_SERVICES_RUN (test_cases_open_from_the_notification_alone, &s_fx);
}
