/*  kill -9 of hcp-case-router in the middle of its work, then a restart:
    no bad rating is left without its case, none gets two, no case.opened
    event is doubled; and a staff command whose answer was lost in the
    crash, retried under its request id, is applied once. */
#include "hcp/v1/case.pb-c.h"
#include "../integration/test_case_fixture.h"

#include <czmq.h>

static tc_services_t s_fx;

//  Sends a command to router 0 and waits up to ms for its answer. Returns
//  the reply (caller frees) or NULL on timeout.
static Hcp__V1__CaseReply *
s_command (const char *request_id, const char *action, long long case_id, const char *key,
           const char *value, int ms)
{
    zsock_t *dealer = zsock_new_dealer (s_fx.router_endpoint[0]);
    Hcp__V1__CaseCommand command = HCP__V1__CASE_COMMAND__INIT;
    command.request_id = (char *) request_id;
    command.actor = (char *) "fault test";
    command.action = (char *) action;
    command.case_id = case_id;
    Hcp__V1__CaseField field = HCP__V1__CASE_FIELD__INIT;
    Hcp__V1__CaseField *fields[1] = {&field};
    if (key) {
        field.key = (char *) key;
        field.value = (char *) value;
        command.n_fields = 1;
        command.fields = fields;
    }
    size_t size = hcp__v1__case_command__get_packed_size (&command);
    zframe_t *frame = zframe_new (NULL, size);
    hcp__v1__case_command__pack (&command, zframe_data (frame));
    zframe_send (&frame, dealer, 0);
    zsock_set_rcvtimeo (dealer, ms);
    zframe_t *answer = zframe_recv (dealer);
    Hcp__V1__CaseReply *reply = NULL;
    if (answer)
        reply = hcp__v1__case_reply__unpack (NULL, zframe_size (answer), zframe_data (answer));
    zframe_destroy (&answer);
    zsock_destroy (&dealer);
    return reply;
}

static void
test_kill_nine_loses_and_doubles_nothing (void **state)
{
    (void) state;
    tc_services_setup (&s_fx, "case_router_kill", 1000);
    tc_start_bus_relay (&s_fx);
    tc_start_router (&s_fx, 0, false);
    int bad = 0;
    for (int round = 0; round < 6; round++) {
        //  Feed while the router works, then kill it mid-stream.
        for (int batch = 0; batch < 10; batch++)
            bad += tc_feed (s_fx.conn, "000119001000", "2026-03-02 10:00", 20, 2);
        hcp_test_sleep_ms (30 + round * 40);
        long long done = hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM cases");
        tc_kill (&s_fx.router[0]);
        printf ("round %d: killed with %lld of %d cases opened\n", round, done, bad);
        //  Ratings keep arriving while it is down.
        bad += tc_feed (s_fx.conn, "000119003000", "2026-03-02 11:00", 20, 2);
        tc_start_router (&s_fx, 0, false);
    }
    printf ("bad ratings fed: %d\n", bad);
    assert_int_equal (hcp_test_wait_int (s_fx.conn, bad, 90000, "SELECT count(*) FROM cases"),
                      bad);
    hcp_test_sleep_ms (1500); //  another sweep or two: still nothing doubled
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM cases"), bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn,
                                        "SELECT count(*) FROM ratings r WHERE is_bad AND NOT "
                                        "EXISTS (SELECT 1 FROM cases c WHERE c.rating_id = "
                                        "r.rating_id)"),
                      0);
    assert_int_equal (
        hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM events WHERE type = 'case.opened'"),
        bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(DISTINCT key) FROM events "
                                                   "WHERE type = 'case.opened'"),
                      bad);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM deadlines WHERE kind "
                                                   "= 'form'"),
                      bad);

    //  A command, then a crash before the client saw the answer (we do
    //  not read it), then a restart and the retry under the same id.
    long long id = hcp_test_sql_int (s_fx.conn, "SELECT min(case_id) FROM cases");
    Hcp__V1__CaseReply *reply = s_command ("kill-visit-1", "visit", id, NULL, NULL, 30000);
    assert_non_null (reply); //  refused: visit needs fields; a refusal is stored too
    assert_string_equal (reply->code, "missing_field");
    hcp__v1__case_reply__free_unpacked (reply, NULL);
    //  Send a valid command and kill the router right away.
    zsock_t *dealer = zsock_new_dealer (s_fx.router_endpoint[0]);
    Hcp__V1__CaseCommand command = HCP__V1__CASE_COMMAND__INIT;
    command.request_id = (char *) "kill-file-1";
    command.actor = (char *) "fault test";
    command.action = (char *) "visit";
    command.case_id = id;
    Hcp__V1__CaseField fields[3] = {HCP__V1__CASE_FIELD__INIT, HCP__V1__CASE_FIELD__INIT,
                                    HCP__V1__CASE_FIELD__INIT};
    Hcp__V1__CaseField *field_ptrs[3] = {&fields[0], &fields[1], &fields[2]};
    fields[0].key = (char *) "cause";
    fields[0].value = (char *) "c";
    fields[1].key = (char *) "reached";
    fields[1].value = (char *) "r";
    fields[2].key = (char *) "method";
    fields[2].value = (char *) "m";
    command.n_fields = 3;
    command.fields = field_ptrs;
    size_t size = hcp__v1__case_command__get_packed_size (&command);
    zframe_t *frame = zframe_new (NULL, size);
    hcp__v1__case_command__pack (&command, zframe_data (frame));
    zframe_send (&frame, dealer, 0);
    hcp_test_sleep_ms (20);
    tc_kill (&s_fx.router[0]);
    zsock_destroy (&dealer);
    tc_start_router (&s_fx, 0, false);
    //  The retry, as hcpctl does it: same id, whatever happened before.
    zsock_t *retry = zsock_new_dealer (s_fx.router_endpoint[0]);
    frame = zframe_new (NULL, size);
    hcp__v1__case_command__pack (&command, zframe_data (frame));
    zframe_send (&frame, retry, 0);
    zsock_set_rcvtimeo (retry, 30000);
    zframe_t *answer = zframe_recv (retry);
    assert_non_null (answer);
    reply = hcp__v1__case_reply__unpack (NULL, zframe_size (answer), zframe_data (answer));
    zframe_destroy (&answer);
    zsock_destroy (&retry);
    assert_non_null (reply);
    assert_int_equal (reply->status, HCP__V1__CASE_STATUS__CASE_OK);
    assert_string_equal (reply->state, "visited");
    hcp__v1__case_reply__free_unpacked (reply, NULL);
    assert_int_equal (
        hcp_test_sql_int (s_fx.conn,
                          "SELECT count(*) FROM case_history WHERE case_id = %lld "
                          "AND action = 'visit'",
                          id),
        1);
    assert_int_equal (
        hcp_test_sql_int (s_fx.conn,
                          "SELECT count(*) FROM events WHERE type = 'case.visit' "
                          "AND key = '%lld'",
                          id),
        1);
    tc_services_teardown (&s_fx);
}

int
main (void)
{
    return TC_SERVICES_RUN (test_kill_nine_loses_and_doubles_nothing, &s_fx);
}
