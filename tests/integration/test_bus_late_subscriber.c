/*  A subscriber that starts late — after thousands of events were stamped
    and published to nobody — still gets every event exactly once, in
    order: first from the table, then live, without a seam. */
#include "test_bus_fixture.h"

static void
test_late_subscriber_gets_everything (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "bus_late");
    fx_start_bus (&fx);
    fx_start_relay (&fx, 0);

    //  5,000 events in transactions of 100, published while nobody listens.
    for (int i = 0; i < 50; i++)
        fx_insert (fx.conn, "early", i * 100, 100);
    assert_int_equal (
        hcp_test_wait_int (fx.conn, 5000, 30000, "SELECT last_seq FROM relay_state"), 5000);

    fx_collector_t collector;
    fx_collector_init (&collector, &fx);
    //  Receive part of the backlog, then write more while it catches up:
    //  the live stream and the catch-up overlap.
    fx_collect (&collector, 1500, 30000);
    for (int i = 0; i < 20; i++)
        fx_insert (fx.conn, "live", i * 100, 100);
    fx_collect (&collector, 7000, 60000);
    //  And once caught up, a little more purely live.
    fx_insert (fx.conn, "tail", 0, 10);
    fx_collect (&collector, 7010, 30000);
    //  Nothing more arrives (no duplicates trickling in).
    fx_collect (&collector, 0, 1000);

    fx_check_table (&fx, 7010);
    fx_collector_check (&collector, &fx, 7010);
    assert_int_equal (hcp_sub_last_seq (collector.sub), 7010);
    fx_collector_destroy (&collector);
    fx_teardown (&fx);
}

//  A type prefix filters what is delivered, yet the subscriber still walks
//  every seq (hcp_sub_last_seq), and a subscriber that starts after a
//  stored offset gets only what follows.
static void
test_prefix_and_after_seq (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "bus_prefix");
    fx_start_bus (&fx);
    fx_start_relay (&fx, 0);
    hcp_test_sql_exec (fx.conn, "INSERT INTO events (type, key) SELECT"
                                " CASE WHEN g %% 3 = 0 THEN 'rating.stored'"
                                " ELSE 'delivery.stored' END, 'k' || g"
                                " FROM generate_series(1, 300) g");
    assert_int_equal (
        hcp_test_wait_int (fx.conn, 300, 30000, "SELECT last_seq FROM relay_state"), 300);
    hcp_sub_t *sub = hcp_sub_new (fx.subscribe, fx.conninfo, 150, "rating.");
    assert_non_null (sub);
    int got = 0;
    int64_t deadline = hcp_test_now_ms () + 30000;
    while (hcp_sub_last_seq (sub) < 300 && hcp_test_now_ms () < deadline) {
        hcp_event_t *event;
        if (hcp_sub_next (sub, 100, &event) == 1) {
            assert_string_equal (event->type, "rating.stored");
            assert_true (event->seq > 150);
            got++;
            hcp_event_destroy (&event);
        }
    }
    assert_int_equal (hcp_sub_last_seq (sub), 300);
    //  Keys k1..k300 were stamped in id order (one transaction): seq = g.
    assert_int_equal (got, 50);
    hcp_sub_destroy (&sub);
    fx_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_late_subscriber_gets_everything),
        cmocka_unit_test (test_prefix_and_after_seq),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
