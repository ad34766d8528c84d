/*  The subscriber's sequencing, driven message by message: the test plays
    the relay (an XPUB socket the subscriber connects to directly) and
    stamps events in a real database, then sends exactly the duplicates,
    gaps, heartbeats and silences it wants. */
#include "test_bus_fixture.h"

#include <czmq.h>

typedef struct {
    fx_t fx;
    zsock_t *xpub; //  the fake relay + bus
} seq_t;

//  Inserts count events of the given type and stamps them (as the relay
//  would, but publishing nothing).
static void
s_stamp (seq_t *t, const char *type, int count)
{
    hcp_test_sql_exec (t->fx.conn,
                       "INSERT INTO events (type, key, payload) SELECT '%s', 'k' || g,"
                       " '\\x00ff' FROM generate_series(1, %d) g",
                       type, count);
    hcp_test_sql_exec (t->fx.conn, "SELECT count(*) FROM hcp_relay_stamp(1000)");
}

//  Publishes event seq as the relay would (reading it back from the table).
static void
s_publish (seq_t *t, int seq)
{
    char *type = hcp_test_sql_text (t->fx.conn, "SELECT type FROM events WHERE seq = %d", seq);
    char *key = hcp_test_sql_text (t->fx.conn, "SELECT key FROM events WHERE seq = %d", seq);
    long long at_ms = hcp_test_sql_int (
        t->fx.conn, "SELECT hcp_event_at_ms(created_at) FROM events WHERE seq = %d", seq);
    assert_non_null (type);
    const unsigned char payload[] = {0, 0xff};
    assert_int_equal (hcp_bus_send_event (t->xpub, (uint64_t) seq, type, key, at_ms, payload,
                                          sizeof payload),
                      0);
    free (type);
    free (key);
}

//  Waits until a subscriber is connected and subscribed (XPUB sees its
//  subscription), so nothing we publish falls into the slow-joiner hole.
static void
s_wait_subscription (seq_t *t, hcp_sub_t *sub)
{
    zpoller_t *poller = zpoller_new (t->xpub, NULL);
    int64_t deadline = hcp_test_now_ms () + 10000;
    bool subscribed = false;
    while (!subscribed && hcp_test_now_ms () < deadline) {
        //  Let the subscriber do its start-up catch-up meanwhile.
        hcp_event_t *event = NULL;
        assert_int_not_equal (hcp_sub_next (sub, 0, &event), 1);
        if (zpoller_wait (poller, 50)) {
            zframe_t *frame = zframe_recv (t->xpub);
            subscribed = frame && zframe_size (frame) >= 1 && zframe_data (frame)[0] == 1;
            zframe_destroy (&frame);
        }
    }
    zpoller_destroy (&poller);
    assert_true (subscribed);
}

static void
s_setup (seq_t *t, const char *name)
{
    fx_setup (&t->fx, name);
    t->xpub = zsock_new (ZMQ_XPUB);
    assert_non_null (t->xpub);
    zsock_set_xpub_verbose (t->xpub, 1);
    assert_int_equal (zsock_bind (t->xpub, "%s", t->fx.subscribe), 0);
}

static void
s_teardown (seq_t *t)
{
    zsock_destroy (&t->xpub);
    fx_teardown (&t->fx);
}

//  Expects the next delivered event to be seq, within ms.
static void
s_expect (hcp_sub_t *sub, int seq, int ms)
{
    hcp_event_t *event = NULL;
    int rc = hcp_sub_next (sub, ms, &event);
    if (rc != 1)
        fail_msg ("expected seq %d, hcp_sub_next returned %d (last %llu)", seq, rc,
                  (unsigned long long) hcp_sub_last_seq (sub));
    assert_int_equal (event->seq, seq);
    assert_int_equal (event->payload_size, 2);
    hcp_event_destroy (&event);
}

static void
s_expect_nothing (hcp_sub_t *sub, int ms)
{
    hcp_event_t *event = NULL;
    int rc = hcp_sub_next (sub, ms, &event);
    if (rc == 1)
        fail_msg ("expected nothing, got seq %llu", (unsigned long long) event->seq);
    assert_int_equal (rc, 0);
}

static void
test_duplicates_gaps_heartbeats (void **state)
{
    (void) state;
    seq_t t;
    s_setup (&t, "bus_seq");
    //  Five events exist before the subscriber: it reads them first.
    s_stamp (&t, "test.a", 5);
    hcp_sub_t *sub = hcp_sub_new (t.fx.subscribe, t.fx.conninfo, 0, NULL);
    for (int seq = 1; seq <= 5; seq++)
        s_expect (sub, seq, 5000);
    s_wait_subscription (&t, sub);
    s_expect_nothing (sub, 200);

    //  Live, with a duplicate: delivered once each.
    s_stamp (&t, "test.a", 2);
    s_publish (&t, 6);
    s_publish (&t, 6);
    s_publish (&t, 5);
    s_publish (&t, 7);
    int64_t started = hcp_test_now_ms ();
    s_expect (sub, 6, 2000);
    s_expect (sub, 7, 2000);
    s_expect_nothing (sub, 200);
    //  (Live means fast: not the 3 s quiet-period fallback.)
    assert_true (hcp_test_now_ms () - started < 1500);

    //  A gap: only 10 is published; 8 and 9 come from the table first.
    s_stamp (&t, "test.a", 3);
    s_publish (&t, 10);
    started = hcp_test_now_ms ();
    s_expect (sub, 8, 2000);
    s_expect (sub, 9, 2000);
    s_expect (sub, 10, 2000);
    assert_true (hcp_test_now_ms () - started < 1500);

    //  Nothing published, but a heartbeat says 12: read from the table.
    s_stamp (&t, "test.a", 2);
    hcp_bus_send_heartbeat (t.xpub, 12, 0);
    started = hcp_test_now_ms ();
    s_expect (sub, 11, 2000);
    s_expect (sub, 12, 2000);
    assert_true (hcp_test_now_ms () - started < 1500);
    //  A heartbeat at or behind us changes nothing; nor do old events.
    hcp_bus_send_heartbeat (t.xpub, 12, 0);
    hcp_bus_send_heartbeat (t.xpub, 3, 0);
    s_publish (&t, 3);
    s_publish (&t, 12);
    //  Nor garbage.
    zstr_sendx (t.xpub, "test.a", "not protobuf \xff\xff\xff", NULL);
    zstr_send (t.xpub, "one frame only");
    zstr_sendx (t.xpub, "a", "b", "c", NULL);
    s_expect_nothing (sub, 300);
    assert_int_equal (hcp_sub_last_seq (sub), 12);

    //  Total silence (bus or relay down): the quiet-period fallback reads
    //  the table after about 3 s.
    s_stamp (&t, "test.a", 1);
    started = hcp_test_now_ms ();
    s_expect (sub, 13, 10000);
    printf ("silent event found after %lld ms\n", (long long) (hcp_test_now_ms () - started));
    s_expect_nothing (sub, 200);
    //  Live: 6 and 7. From the table: 1-5 (start), 8-10 (the gap: 10
    //  itself is read again in order), 11-12 (heartbeat), 13 (silence):
    //  four runs.
    hcp_sub_stats_t stats;
    hcp_sub_stats (sub, &stats);
    assert_int_equal (stats.live, 2);
    assert_int_equal (stats.from_table, 11);
    assert_int_equal (stats.catchups, 4);
    hcp_sub_destroy (&sub);
    s_teardown (&t);
}

static void
test_type_filter_walks_every_seq (void **state)
{
    (void) state;
    seq_t t;
    s_setup (&t, "bus_seq_filter");
    s_stamp (&t, "other.x", 3);     //  1..3
    s_stamp (&t, "case.opened", 1); //  4
    s_stamp (&t, "other.x", 2);     //  5..6
    hcp_sub_t *sub = hcp_sub_new (t.fx.subscribe, t.fx.conninfo, 0, "case.");
    s_expect (sub, 4, 5000);
    s_expect_nothing (sub, 300);
    assert_int_equal (hcp_sub_last_seq (sub), 6);
    s_wait_subscription (&t, sub);
    //  Live: filtered events still advance the sequence, so the next
    //  matching one is not mistaken for a gap.
    s_stamp (&t, "other.x", 1);     //  7
    s_stamp (&t, "case.closed", 1); //  8
    s_publish (&t, 7);
    s_publish (&t, 8);
    int64_t started = hcp_test_now_ms ();
    s_expect (sub, 8, 2000);
    assert_true (hcp_test_now_ms () - started < 1500);
    assert_int_equal (hcp_sub_last_seq (sub), 8);
    hcp_sub_destroy (&sub);
    s_teardown (&t);
}

static void
test_database_unreachable_keeps_place (void **state)
{
    (void) state;
    seq_t t;
    s_setup (&t, "bus_seq_nodb");
    s_stamp (&t, "test.a", 3);
    //  The subscriber's database does not exist: catch-up is impossible.
    hcp_sub_t *sub = hcp_sub_new (t.fx.subscribe, "dbname=hcp_no_such_database", 0, NULL);
    hcp_event_t *event = NULL;
    assert_int_equal (hcp_sub_next (sub, 300, &event), -1);
    assert_null (event);
    s_wait_subscription (&t, sub);
    //  The next event live is still delivered (it needs no catch-up)...
    s_publish (&t, 1);
    int rc = -1;
    int64_t deadline = hcp_test_now_ms () + 5000;
    while (rc != 1 && hcp_test_now_ms () < deadline)
        rc = hcp_sub_next (sub, 100, &event);
    assert_int_equal (rc, 1);
    assert_int_equal (event->seq, 1);
    hcp_event_destroy (&event);
    //  ...but after a gap it waits, reporting -1, and keeps its place.
    s_publish (&t, 3);
    assert_int_equal (hcp_sub_next (sub, 500, &event), -1);
    assert_int_equal (hcp_sub_next (sub, 0, &event), -1);
    assert_int_equal (hcp_sub_last_seq (sub), 1);
    hcp_sub_destroy (&sub);
    s_teardown (&t);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_duplicates_gaps_heartbeats),
        cmocka_unit_test (test_type_filter_walks_every_seq),
        cmocka_unit_test (test_database_unreachable_keeps_place),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
