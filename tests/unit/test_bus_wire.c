/*  Unit tests: the bus wire format (hcp_bus_send_event / _heartbeat /
    hcp_bus_decode) and the sequencing rules of a subscriber
    (hcp_bus_verdict, hcp_bus_type_matches). No database, no services. */
#include "hcp_bus.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void
test_verdict (void **state)
{
    (void) state;
    assert_int_equal (hcp_bus_verdict (0, 1), HCP_BUS_NEXT);
    assert_int_equal (hcp_bus_verdict (41, 42), HCP_BUS_NEXT);
    assert_int_equal (hcp_bus_verdict (42, 42), HCP_BUS_DUPLICATE);
    assert_int_equal (hcp_bus_verdict (42, 7), HCP_BUS_DUPLICATE);
    assert_int_equal (hcp_bus_verdict (42, 0), HCP_BUS_DUPLICATE);
    assert_int_equal (hcp_bus_verdict (42, 44), HCP_BUS_GAP);
    assert_int_equal (hcp_bus_verdict (0, 2), HCP_BUS_GAP);
    assert_int_equal (hcp_bus_verdict (UINT64_MAX - 1, UINT64_MAX), HCP_BUS_NEXT);
}

static void
test_type_matches (void **state)
{
    (void) state;
    assert_true (hcp_bus_type_matches (NULL, "rating.stored"));
    assert_true (hcp_bus_type_matches ("", "rating.stored"));
    assert_true (hcp_bus_type_matches ("rating.", "rating.stored"));
    assert_true (hcp_bus_type_matches ("rating.stored", "rating.stored"));
    assert_false (hcp_bus_type_matches ("rating.", "delivery.stored"));
    assert_false (hcp_bus_type_matches ("rating.stored.more", "rating.stored"));
    assert_false (hcp_bus_type_matches ("case.", NULL));
}

//  Sends with the encoder and reads back the two frames.
static zmsg_t *
s_roundtrip (zsock_t *writer, zsock_t *reader)
{
    (void) writer;
    zmsg_t *msg = zmsg_recv (reader);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 2);
    return msg;
}

static int
s_decode (zmsg_t *msg, hcp_event_t **event, uint64_t *heartbeat)
{
    zframe_t *topic = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    return hcp_bus_decode (zframe_data (topic), zframe_size (topic), zframe_data (body),
                           zframe_size (body), event, heartbeat);
}

static void
test_event_roundtrip (void **state)
{
    (void) state;
    zsock_t *reader = zsock_new_pair ("@inproc://wire");
    zsock_t *writer = zsock_new_pair (">inproc://wire");
    assert_non_null (reader);
    assert_non_null (writer);

    const unsigned char payload[] = {0, 1, 2, 3, 0xfe, 0xff};
    assert_int_equal (hcp_bus_send_event (writer, 12345, "rating.stored", "0190abcd",
                                          1700000000123LL, payload, sizeof payload),
                      0);
    zmsg_t *msg = s_roundtrip (writer, reader);
    assert_true (zframe_streq (zmsg_first (msg), "rating.stored"));
    hcp_event_t *event = NULL;
    uint64_t heartbeat = 99;
    assert_int_equal (s_decode (msg, &event, &heartbeat), 1);
    assert_int_equal (heartbeat, 0);
    assert_non_null (event);
    assert_int_equal (event->seq, 12345);
    assert_string_equal (event->type, "rating.stored");
    assert_string_equal (event->key, "0190abcd");
    assert_int_equal (event->at_ms, 1700000000123LL);
    assert_int_equal (event->payload_size, sizeof payload);
    assert_memory_equal (event->payload, payload, sizeof payload);
    hcp_event_destroy (&event);
    assert_null (event);
    hcp_event_destroy (&event); //  safe twice
    zmsg_destroy (&msg);

    //  A big payload (beyond the encoder's stack buffer), and an empty one.
    size_t big_size = 100000;
    unsigned char *big = malloc (big_size);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (unsigned char) (i * 7);
    assert_int_equal (hcp_bus_send_event (writer, 1, "x", "", 0, big, big_size), 0);
    msg = s_roundtrip (writer, reader);
    assert_int_equal (s_decode (msg, &event, &heartbeat), 1);
    assert_int_equal (event->payload_size, big_size);
    assert_memory_equal (event->payload, big, big_size);
    assert_string_equal (event->key, "");
    hcp_event_destroy (&event);
    zmsg_destroy (&msg);
    free (big);
    assert_int_equal (hcp_bus_send_event (writer, 2, "y", "k", 5, NULL, 0), 0);
    msg = s_roundtrip (writer, reader);
    assert_int_equal (s_decode (msg, &event, &heartbeat), 1);
    assert_int_equal (event->payload_size, 0);
    assert_non_null (event->payload);
    hcp_event_destroy (&event);
    zmsg_destroy (&msg);

    //  Heartbeat.
    assert_int_equal (hcp_bus_send_heartbeat (writer, 777, 1700000000000LL), 0);
    msg = s_roundtrip (writer, reader);
    assert_true (zframe_streq (zmsg_first (msg), HCP_BUS_HEARTBEAT_TOPIC));
    assert_int_equal (s_decode (msg, &event, &heartbeat), 0);
    assert_null (event);
    assert_int_equal (heartbeat, 777);
    zmsg_destroy (&msg);

    zsock_destroy (&writer);
    zsock_destroy (&reader);
}

static void
test_decode_rejects_garbage (void **state)
{
    (void) state;
    hcp_event_t *event = NULL;
    uint64_t heartbeat = 0;
    //  Not protobuf.
    const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    assert_int_equal (hcp_bus_decode ("a", 1, junk, sizeof junk, &event, &heartbeat), -1);
    assert_null (event);
    assert_int_equal (hcp_bus_decode ("$hb", 3, junk, sizeof junk, &event, &heartbeat), -1);

    //  A valid event whose topic is not its type, and one with seq 0.
    zsock_t *reader = zsock_new_pair ("@inproc://garbage");
    zsock_t *writer = zsock_new_pair (">inproc://garbage");
    assert_int_equal (hcp_bus_send_event (writer, 5, "rating.stored", "k", 0, NULL, 0), 0);
    zmsg_t *msg = s_roundtrip (writer, reader);
    zframe_t *body = zmsg_last (msg);
    assert_int_equal (hcp_bus_decode ("case.opened", 11, zframe_data (body),
                                      zframe_size (body), &event, &heartbeat),
                      -1);
    assert_null (event);
    zmsg_destroy (&msg);
    assert_int_equal (hcp_bus_send_event (writer, 0, "rating.stored", "k", 0, NULL, 0), 0);
    msg = s_roundtrip (writer, reader);
    assert_int_equal (s_decode (msg, &event, &heartbeat), -1);
    assert_null (event);
    zmsg_destroy (&msg);
    zsock_destroy (&writer);
    zsock_destroy (&reader);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_verdict),
        cmocka_unit_test (test_type_matches),
        cmocka_unit_test (test_event_roundtrip),
        cmocka_unit_test (test_decode_rejects_garbage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
