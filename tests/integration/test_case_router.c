/*  hcp-case-router as a real process, driven by hcpctl as staff would: a
    bad rating arrives with its rating.stored event (bus + relay), the case
    opens from the event, every hcpctl case command moves it or is refused
    with a reason and exit status 1, the form is printed and compared with
    tests/integration/expected/form_e2e.{txt,html}. The business clock of
    the router and hcpctl is a file (HCP_CLOCK_FILE). */
#include "hcp/v1/case.pb-c.h"
#include "test_case_fixture.h"

#include <czmq.h>

static tc_services_t s_fx;

static void
s_expect (int rc, int expected, const char *args)
{
    if (rc != expected) {
        char *out = tc_read (&s_fx, "out"), *err = tc_read (&s_fx, "err");
        fail_msg ("hcpctl case %s: exit %d, expected %d\nstdout: %s\nstderr: %s", args, rc,
                  expected, out, err);
    }
}

#define HCPCTL(expected, ...)                                                                 \
    do {                                                                                      \
        char args_[2048];                                                                     \
        snprintf (args_, sizeof args_, __VA_ARGS__);                                          \
        s_expect (tc_hcpctl (&s_fx, args_), expected, args_);                                 \
    } while (0)

static void
s_contains (const char *file, const char *needle)
{
    char *text = tc_read (&s_fx, file);
    if (!strstr (text, needle))
        fail_msg ("%s lacks '%s':\n%s", file, needle, text);
    free (text);
}

//  Sends one raw CaseCommand on a DEALER and returns the reply (caller
//  frees), for what hcpctl does not show: a retry under the same id.
static Hcp__V1__CaseReply *
s_raw (const char *request_id, const char *action, int64_t case_id)
{
    zsock_t *dealer = zsock_new_dealer (s_fx.router_endpoint[0]);
    assert_non_null (dealer);
    Hcp__V1__CaseCommand command = HCP__V1__CASE_COMMAND__INIT;
    command.request_id = (char *) request_id;
    command.actor = (char *) "raw client";
    command.action = (char *) action;
    command.case_id = case_id;
    size_t size = hcp__v1__case_command__get_packed_size (&command);
    zframe_t *frame = zframe_new (NULL, size);
    hcp__v1__case_command__pack (&command, zframe_data (frame));
    zframe_send (&frame, dealer, 0);
    zsock_set_rcvtimeo (dealer, 20000);
    zframe_t *answer = zframe_recv (dealer);
    assert_non_null (answer);
    Hcp__V1__CaseReply *reply = hcp__v1__case_reply__unpack (NULL, zframe_size (answer),
                                                             zframe_data (answer));
    zframe_destroy (&answer);
    zsock_destroy (&dealer);
    assert_non_null (reply);
    return reply;
}

static void
test_staff_move_a_case_with_hcpctl (void **state)
{
    (void) state;
    tc_services_setup (&s_fx, "case_router", 600000);
    tc_services_clock (&s_fx, "2026-03-02 10:20");
    tc_start_bus_relay (&s_fx);
    tc_start_router (&s_fx, 0, true);
    //  The router is up when it answers (a refusal is an answer).
    assert_int_equal (
        hcp_test_wait_int (s_fx.conn, 1, 30000,
                           "SELECT (count(*) > 0)::int FROM pg_stat_activity WHERE "
                           "application_name LIKE 'case-router:%%'"),
        1);

    //  A bad rating, and a good one, arrive as ingest stores them.
    hcp_test_sql_exec (
        s_fx.conn, "WITH r AS (INSERT INTO ratings (rating_id, item_code, channel, stage, "
                   "rating_count, rater_type, rated_at, standardization, convenience, "
                   "accuracy, comment, fingerprint) VALUES "
                   "('019cac6b-5a78-7000-8000-000000000001', '000119001000', 1, 3, 1, 1, "
                   "'2026-03-02 10:15+08', 4, NULL, 5, '窗口等候时间太长', '\\x00'), "
                   "('019cac6b-5a78-7000-8000-000000000002', '000119001000', 1, 3, 1, 1, "
                   "'2026-03-02 10:16+08', 1, 1, 1, '', '\\x00') RETURNING rating_id) "
                   "INSERT INTO events (type, key) SELECT 'rating.stored', rating_id::text "
                   "FROM r");
    assert_int_equal (hcp_test_wait_int (s_fx.conn, 1, 30000, "SELECT count(*) FROM cases"),
                      1);
    long long id = hcp_test_sql_int (s_fx.conn, "SELECT case_id FROM cases");
    //  Opened from the event: the consumer's offset moved past it.
    assert_int_equal (
        hcp_test_wait_int (s_fx.conn, 1, 30000,
                           "SELECT count(*) FROM consumer_offsets WHERE consumer "
                           "= 'case-router' AND last_seq >= (SELECT max(seq) FROM "
                           "events WHERE type = 'rating.stored')"),
        1);

    //  Refusals: a reason, and exit status 1.
    HCPCTL (1, "close %lld", id);
    s_contains ("err", "refused (illegal_transition)");
    s_contains ("err", "state awaiting_visit");
    s_contains ("err", "Allowed: visit");
    HCPCTL (1, "visit %lld --cause 'x' --reached 'y'", id);
    s_contains ("err", "refused (missing_field)");
    s_contains ("err", "'method'");
    HCPCTL (1, "visit 999999 --cause c --reached r --method m");
    s_contains ("err", "refused (not_found)");
    HCPCTL (2, "visit %lld --due 2026-01-01", id); //  an option visit does not take
    HCPCTL (2, "respond %lld sideways --text t", id);
    HCPCTL (2, "frobnicate %lld", id);

    //  The whole way, as the hall, the General Office and the unit.
    tc_services_clock (&s_fx, "2026-03-03 09:30");
    HCPCTL (0,
            "visit %lld --cause '材料清单与指南不一致' --reached '评价人本人' --method 电话 "
            "--actor 'hall: 王芳'",
            id);
    s_contains ("out", "awaiting_visit → visited");
    tc_services_clock (&s_fx, "2026-03-03 16:00");
    HCPCTL (0, "file-form %lld --actor 'hall: 王芳'", id);
    s_contains ("out", "form 2026-000001");
    tc_services_clock (&s_fx, "2026-03-04 09:00");
    HCPCTL (0, "assign %lld --actor 'GO: 李强'", id);
    HCPCTL (0, "form %lld --text -o '%s/form.txt'", id, s_fx.dir);
    HCPCTL (0, "form %lld -o '%s/form.html'", id, s_fx.dir);
    char *text = tc_read (&s_fx, "form.txt"), *html = tc_read (&s_fx, "form.html");
    tc_expect_file ("form_e2e.txt", text);
    tc_expect_file ("form_e2e.html", html);
    free (text);
    free (html);
    tc_services_clock (&s_fx, "2026-03-10 11:00");
    HCPCTL (1, "respond %lld ledger --text 'rewrite the guide' --due 2026-03-09", id);
    s_contains ("err", "must be after today");
    HCPCTL (0,
            "respond %lld ledger --text '重写办事指南' --due 2026-04-30 --actor 'LUM: 赵敏'",
            id);
    HCPCTL (0, "list --state in_ledger");
    s_contains ("out", "in_ledger");
    s_contains ("out", "ledger 2026-04-30 due");
    tc_services_clock (&s_fx, "2026-04-28 10:00");
    HCPCTL (0, "list --overdue");
    s_contains ("out", "(0 cases)");
    HCPCTL (0, "extend %lld --due 2026-05-29 --reason '供应商延期' --actor 'GO: 李强'", id);
    HCPCTL (1, "extend %lld --due 2026-06-30 --reason again", id);
    s_contains ("err", "state ledger_extended");
    tc_services_clock (&s_fx, "2026-06-01 10:00");
    HCPCTL (0, "list --overdue");
    s_contains ("out", "ledger 2026-05-29 overdue");
    HCPCTL (0, "rectified %lld --text '指南已重写并发布' --actor 'LUM: 赵敏'", id);
    HCPCTL (0, "close %lld --text '已核实' --actor 'GO: 李强'", id);
    s_contains ("out", "ledger_rectified → closed");

    HCPCTL (0, "show %lld", id);
    s_contains ("out", "closed");
    s_contains ("out", "form       2026-000001");
    s_contains ("out", "Deadlines:");
    s_contains ("out", "ledger");
    s_contains ("out", "(late)"); //  rectified after the extended date
    s_contains ("out", "History:");
    s_contains ("out", "GO: 李强");
    s_contains ("out", "reason: 供应商延期");
    HCPCTL (0, "list --all --state closed");
    s_contains ("out", "(1 case)");

    //  A command sent twice under one request id is applied once.
    long long before = hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM case_history");
    Hcp__V1__CaseReply *first = s_raw ("raw-1", "close", id);
    Hcp__V1__CaseReply *again = s_raw ("raw-1", "close", id);
    assert_int_equal (first->status, HCP__V1__CASE_STATUS__CASE_REFUSED);
    assert_string_equal (first->code, "illegal_transition");
    assert_false (first->replayed);
    assert_true (again->replayed);
    assert_string_equal (again->message, first->message);
    hcp__v1__case_reply__free_unpacked (first, NULL);
    hcp__v1__case_reply__free_unpacked (again, NULL);
    assert_int_equal (hcp_test_sql_int (s_fx.conn, "SELECT count(*) FROM case_history"),
                      before);

    //  A router that is not there: retries, then a clear failure.
    int rc = hcp_test_shell (
        "USER=tester HCP_DATABASE_CONNINFO='%s' %s case close %lld --endpoint "
        "'ipc://%s/nobody' --timeout-ms 200 --retries 2 >'%s/out' "
        "2>'%s/err'",
        s_fx.conninfo, hcp_test_bin ("hcpctl"), id, s_fx.dir, s_fx.dir, s_fx.dir);
    assert_int_equal (rc, 1);
    s_contains ("err", "no answer from case-router");

    tc_services_teardown (&s_fx);
}

int
main (void)
{
    return TC_SERVICES_RUN (test_staff_move_a_case_with_hcpctl, &s_fx);
}
