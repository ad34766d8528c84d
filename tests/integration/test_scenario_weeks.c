/*  Weeks of the bad-review workflow (Art. 11, 20-23), from Monday 2 March
    to Thursday 30 April 2026, on an injected business clock — no sleeping.

    Every six business hours the periodic work runs as the services would:
    default-rater (open windows, apply the defaults of Art. 11), the
    case-router sweep (a case per bad rating), the deadline-watcher sweep
    (warn, overdue, escalate). Between them, staff act on nine cases through
    case_store, one per path of the state machine:

      A  rectified at once                 F  appeal rejected, then explained
      B  ledger, rectified in time         G  transferred, rectified at once
      C  ledger, extended, rectified late  H  form deadline missed, then handled
      D  explained                         I  answer deadline missed, ledger
      E  appeal upheld (not adopted)

    Then: every case closed along its own path, each deadline met, warned,
    missed and escalated exactly as the calendar says, the handling form of
    H as expected (tests/integration/expected/form_scenario_H.txt), and the
    statistics (effective_ratings) without E's rating and without the
    default that a late rating superseded. */
#include "../../services/case-router/case_form.h"
#include "../../services/deadline-watcher/deadline_watcher.h"
#include "../../services/default-rater/rater.h"
#include "hcp_deadline.h"
#include "test_case_fixture.h"

typedef struct {
    char label;
    const char *delivery;
    const char *item;
    char rating_id[HCP_UUID_STR_LEN];
    int64_t case_id;
    const char *path; //  expected history
} scenario_case_t;

static scenario_case_t s_cases[] = {
    {'A', "D-A", "000119001000", "", 0,
     "open,visit,file_form,assign,respond_rectified_now,close"},
    {'B', "D-B", "000119003000", "", 0,
     "open,visit,file_form,assign,respond_ledger,rectified,close"},
    {'C', "D-C", "000119001000", "", 0,
     "open,visit,file_form,assign,respond_ledger,extend,rectified,close"},
    {'D', "D-D", "000119006000", "", 0, "open,visit,file_form,assign,respond_explained,close"},
    {'E', "D-E", "000119003000", "", 0,
     "open,visit,file_form,assign,appeal,uphold_appeal,close"},
    {'F', "D-F", "000119001000", "", 0,
     "open,visit,file_form,assign,appeal,reject_appeal,respond_explained,close"},
    {'G', "D-G", "000119001000", "", 0,
     "open,visit,file_form,assign,transfer,respond_rectified_now,close"},
    {'H', "D-H", "000119006000", "", 0,
     "open,visit,file_form,assign,respond_rectified_now,close"},
    {'I', "D-I", "000119003000", "", 0,
     "open,visit,file_form,assign,respond_ledger,rectified,close"},
};
#define CASE_COUNT (sizeof s_cases / sizeof s_cases[0])

static char *s_conninfo;
static PGconn *s_conn;
static hcp_db_t *s_db;         //  case-router's connection
static hcp_db_t *s_rater_db;   //  default-rater's
static hcp_db_t *s_watcher_db; //  deadline-watcher's
static hcp_rater_t *s_rater;
static hcp_deadline_watcher_t *s_watcher;
static int64_t s_now; //  business time of the last step
static int s_steps;

static int64_t
s_case (char label)
{
    for (size_t i = 0; i < CASE_COUNT; i++)
        if (s_cases[i].label == label)
            return s_cases[i].case_id;
    fail_msg ("no case %c", label);
    return 0;
}

//  The periodic work of the three services at business time now.
static void
s_services (int64_t now)
{
    hcp_clock_set_ms (now);
    assert_true (hcp_rater_open_missing (s_rater, now) >= 0);
    int applied;
    while ((applied = hcp_rater_apply_due (s_rater, now)) >= 100)
        ;
    assert_true (applied >= 0);
    assert_true (hcp_case_sweep (s_db, 0, 500, now, HCP_CASE_CONSUMER) >= 0);
    hcp_deadline_watcher_stats_t stats = {0};
    assert_int_equal (hcp_deadline_watcher_sweep (s_watcher, now, &stats), 0);
    s_steps++;
}

//  Moves the business clock to when ("YYYY-MM-DD HH:MM"), running the
//  services every six hours on the way and once at when.
static const char *
s_at (const char *when)
{
    int64_t target = tc_ms (when);
    assert_true (target >= s_now);
    const int64_t step = 6 * 3600 * 1000LL;
    for (int64_t t = (s_now / step + 1) * step; t < target; t += step)
        s_services (t);
    s_now = target;
    s_services (target);
    return when;
}

//  A staff command at the current business time; fails unless applied.
#define DO(label, action, to_state, ...)                                                      \
    do {                                                                                      \
        char now_[32];                                                                        \
        hcp_clock_format (s_now, now_);                                                       \
        TC_OK (s_db, s_case (label), action, now_, to_state, __VA_ARGS__);                    \
    } while (0)

static void
s_deliver_and_rate (void)
{
    //  Twelve completions on Monday morning, and what their raters said.
    const char *extra[] = {"D-J", "D-K", "D-L"};
    for (size_t i = 0; i < CASE_COUNT + 3; i++) {
        const char *delivery = i < CASE_COUNT ? s_cases[i].delivery : extra[i - CASE_COUNT];
        const char *item = i < CASE_COUNT ? s_cases[i].item : "000119001000";
        hcp_test_sql_exec (
            s_conn,
            "INSERT INTO deliveries (delivery_id, item_code, stage, channel, "
            "rater_type, delivered_at, fingerprint) VALUES ('%s', '%s', 3, 1, 1, "
            "'2026-03-02 09:00+08', '\\x00')",
            delivery, item);
    }
    for (size_t i = 0; i < CASE_COUNT; i++) {
        hcp_uuid_v7 (tc_ms ("2026-03-02 10:00") + (int64_t) i, s_cases[i].rating_id);
        hcp_test_sql_exec (s_conn,
                           "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, "
                           "stage, rating_count, rater_type, rated_at, standardization, "
                           "convenience, accuracy, comment, fingerprint) VALUES ('%s', '%s', "
                           "'%s', 1, 3, 1, 1, '2026-03-02 10:%02d+08', %d, 2, %s, '差评 %c', "
                           "'\\x00')",
                           s_cases[i].rating_id, s_cases[i].delivery, s_cases[i].item, (int) i,
                           i % 2 ? 4 : 5, i % 3 ? "NULL" : "4", s_cases[i].label);
    }
    //  Two good ratings; D-L is not rated and gets the default of Art. 11.
    hcp_test_sql_exec (
        s_conn, "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
                "rating_count, rater_type, rated_at, standardization, convenience, "
                "accuracy, fingerprint) SELECT hcp_uuidv7('2026-03-02 11:00+08'), d, "
                "'000119001000', 1, 3, 1, 1, '2026-03-02 11:00+08', 1, 2, 1, '\\x00' "
                "FROM unnest(ARRAY['D-J', 'D-K']) d");
}

static int
s_setup (void **state)
{
    (void) state;
    s_conninfo = hcp_test_db_create ("scenario_weeks");
    s_conn = hcp_test_connect (s_conninfo);
    s_db = hcp_db_new (s_conninfo, "case-router");
    s_rater_db = hcp_db_new (s_conninfo, "default-rater");
    s_watcher_db = hcp_db_new (s_conninfo, "deadline-watcher");
    assert_int_equal (hcp_db_ensure (s_db, 10000, NULL), 0);
    assert_int_equal (hcp_db_ensure (s_rater_db, 10000, NULL), 0);
    assert_int_equal (hcp_db_ensure (s_watcher_db, 10000, NULL), 0);
    assert_int_equal (hcp_case_store_prepare (s_db), 0);
    hcp_rater_settings_t settings = {{false, true, true, true}, 7, 100};
    s_rater = hcp_rater_new (s_rater_db, &settings);
    assert_non_null (s_rater);
    hcp_deadline_set_warn_working_days (1);
    hcp_deadline_watcher_options_t options = {50, 1, "GO", "scenario-watcher", NULL};
    s_watcher = hcp_deadline_watcher_new (s_watcher_db, &options);
    assert_non_null (s_watcher);
    s_now = tc_ms ("2026-03-02 08:00");
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    hcp_clock_set_ms (0);
    hcp_deadline_watcher_destroy (&s_watcher);
    hcp_rater_destroy (&s_rater);
    hcp_db_destroy (&s_watcher_db);
    hcp_db_destroy (&s_rater_db);
    hcp_db_destroy (&s_db);
    PQfinish (s_conn);
    hcp_test_db_drop (s_conninfo);
    free (s_conninfo);
    return 0;
}

//  How many deadline_actions of a kind a case's deadlines of kind had.
static long long
s_actions (char label, const char *kind, const char *action)
{
    return hcp_test_sql_int (s_conn,
                             "SELECT count(*) FROM deadline_actions WHERE case_id = %lld AND "
                             "kind = '%s' AND action = '%s'",
                             (long long) s_case (label), kind, action);
}

static void
s_visit_file_assign (char label, const char *unit)
{
    DO (label, "visit", "visited", "cause", "办事指南材料清单有误", "reached", "评价人本人",
        "method", "电话", NULL);
    DO (label, "file_form", "form_filed", NULL);
    if (unit)
        DO (label, "assign", "assigned", "unit", unit, NULL);
    else
        DO (label, "assign", "assigned", NULL);
}

static void
test_weeks_of_cases (void **state)
{
    (void) state;
    s_at ("2026-03-02 09:30");
    s_deliver_and_rate ();
    //  The sweep opens every bad rating's case; nothing for good ones.
    s_at ("2026-03-02 12:00");
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM cases"), CASE_COUNT);
    for (size_t i = 0; i < CASE_COUNT; i++) {
        s_cases[i].case_id = hcp_test_sql_int (s_conn,
                                               "SELECT case_id FROM cases WHERE "
                                               "rating_id = '%s'",
                                               s_cases[i].rating_id);
        assert_true (s_cases[i].case_id > 0);
    }
    //  Art. 21: the form of a rating of Monday 2 March is due Monday 9 March.
    assert_int_equal (
        hcp_test_sql_int (s_conn, "SELECT count(*) FROM deadlines WHERE kind = 'form' AND "
                                  "due_on = '2026-03-09'"),
        CASE_COUNT);

    //  Tuesday: the hall visits and files the forms of everything but H.
    s_at ("2026-03-03 09:30");
    for (size_t i = 0; i < CASE_COUNT; i++)
        if (s_cases[i].label != 'H')
            DO (s_cases[i].label, "visit", "visited", "cause", "办事指南材料清单有误",
                "reached", "评价人本人", "method", "电话", NULL);
    s_at ("2026-03-03 15:00");
    DO ('A', "file_form", "form_filed", NULL);
    s_at ("2026-03-04 09:00");
    for (size_t i = 0; i < CASE_COUNT; i++)
        if (s_cases[i].label != 'H' && s_cases[i].label != 'A')
            DO (s_cases[i].label, "file_form", "form_filed", NULL);
    //  Wednesday: the General Office designates the units.
    s_at ("2026-03-04 14:00");
    for (size_t i = 0; i < CASE_COUNT; i++)
        if (s_cases[i].label != 'H' && s_cases[i].label != 'C')
            DO (s_cases[i].label, "assign", "assigned", NULL);
    s_at ("2026-03-05 09:00");
    DO ('C', "assign", "assigned", NULL);
    DO ('A', "respond_rectified_now", "rectified_now", "text", "当场更正材料清单", NULL);
    s_at ("2026-03-06 10:00");
    DO ('A', "close", "closed", NULL);
    DO ('D', "respond_explained", "explained", "text", "申请事项无法定依据，已向评价人解释",
        NULL);
    DO ('G', "transfer", "assigned", "unit", "MRM", "reason", "问题属于矿业权审批环节");
    //  H's form is due on Monday 9 March: the reminder came on Friday 6.
    assert_int_equal (s_actions ('H', "form", "warned"), 1);
    s_at ("2026-03-09 10:00");
    DO ('D', "close", "closed", NULL);
    DO ('E', "appeal", "appealed", "kind", "malicious", "reason", "评价人并未办理该事项");
    DO ('F', "appeal", "appealed", "kind", "mistaken", "reason", "评价人误选了事项");
    s_at ("2026-03-10 10:00");
    //  H's form deadline passed at 24:00 on 9 March: overdue, escalated.
    assert_int_equal (s_actions ('H', "form", "overdue"), 1);
    assert_int_equal (s_actions ('H', "form", "escalated"), 1);
    DO ('B', "respond_ledger", "in_ledger", "text", "修订办事指南", "due", "2026-04-15", NULL);
    DO ('G', "respond_rectified_now", "rectified_now", "text", "已补充告知", NULL);
    //  The default of Art. 11 for D-L, 7 natural days after 2 March.
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM ratings WHERE "
                                                "delivery_id = 'D-L' AND origin = 'default'"),
                      1);
    s_at ("2026-03-11 09:00");
    DO ('G', "close", "closed", NULL);
    DO ('E', "uphold_appeal", "not_adopted", "reason", "经核实为恶意差评", NULL);
    //  H, late: visited, filed (the form deadline is met, late), assigned.
    s_visit_file_assign ('H', NULL);
    s_at ("2026-03-12 09:00");
    DO ('E', "close", "closed", NULL);
    DO ('F', "reject_appeal", "appeal_rejected", "reason", "评价内容与办件相符", NULL);
    DO ('C', "respond_ledger", "in_ledger", "text", "升级叫号系统", "due", "2026-03-31", NULL);
    //  D-L's rater rates after all: the default no longer counts.
    hcp_test_sql_exec (
        s_conn, "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
                "rating_count, rater_type, rated_at, standardization, fingerprint) VALUES "
                "(hcp_uuidv7('2026-03-12 09:00+08'), 'D-L', '000119001000', 3, 3, 1, 1, "
                "'2026-03-12 09:00+08', 2, '\\x00')");
    s_at ("2026-03-13 09:00");
    DO ('H', "respond_rectified_now", "rectified_now", "text", "已更正", NULL);
    s_at ("2026-03-16 09:00");
    DO ('H', "close", "closed", NULL);
    //  I's unit stays silent: its answer (due 18 March) is warned on the
    //  17th, overdue and escalated on the 19th.
    s_at ("2026-03-17 12:00");
    assert_int_equal (s_actions ('I', "answer", "warned"), 1);
    assert_int_equal (s_actions ('I', "answer", "overdue"), 0);
    s_at ("2026-03-19 09:00");
    assert_int_equal (s_actions ('I', "answer", "overdue"), 1);
    assert_int_equal (s_actions ('I', "answer", "escalated"), 1);
    s_at ("2026-03-20 09:00");
    DO ('I', "respond_ledger", "in_ledger", "text", "优化审批流程", "due", "2026-04-30", NULL);
    DO ('F', "respond_explained", "explained", "text", "已向评价人说明", NULL);
    s_at ("2026-03-23 09:00");
    DO ('F', "close", "closed", NULL);
    s_at ("2026-03-27 09:00");
    DO ('C', "extend", "ledger_extended", "due", "2026-04-20", "reason", "设备供货延迟", NULL);
    s_at ("2026-04-10 09:00");
    DO ('B', "rectified", "ledger_rectified", "text", "指南已修订发布", NULL);
    s_at ("2026-04-13 09:00");
    DO ('B', "close", "closed", NULL);
    //  C's extended deadline, 20 April: warned on the 17th, missed, escalated.
    s_at ("2026-04-17 12:00");
    assert_int_equal (s_actions ('C', "ledger", "warned"), 1);
    s_at ("2026-04-24 09:00");
    assert_int_equal (s_actions ('C', "ledger", "overdue"), 1);
    assert_int_equal (s_actions ('C', "ledger", "escalated"), 1);
    DO ('C', "rectified", "ledger_rectified", "text", "叫号系统已升级", NULL);
    s_at ("2026-04-27 09:00");
    DO ('C', "close", "closed", NULL);
    DO ('I', "rectified", "ledger_rectified", "text", "流程已优化", NULL);
    s_at ("2026-04-28 09:00");
    DO ('I', "close", "closed", NULL);
    s_at ("2026-04-30 18:00");
    printf ("scenario: %d service steps over %.0f business days\n", s_steps,
            (double) (s_now - tc_ms ("2026-03-02 08:00")) / 86400000.0);

    //  Every case closed, along its own path, one history row per version.
    for (size_t i = 0; i < CASE_COUNT; i++) {
        char *path = hcp_test_sql_text (s_conn,
                                        "SELECT string_agg(action, ',' ORDER BY version) FROM "
                                        "case_history WHERE case_id = %lld",
                                        (long long) s_cases[i].case_id);
        if (strcmp (path, s_cases[i].path) != 0)
            fail_msg ("case %c: %s, expected %s", s_cases[i].label, path, s_cases[i].path);
        free (path);
        assert_int_equal (hcp_test_sql_int (s_conn,
                                            "SELECT count(*) FROM cases WHERE case_id = %lld "
                                            "AND state = 'closed' AND version = (SELECT "
                                            "count(*) FROM case_history WHERE case_id = %lld)",
                                            (long long) s_cases[i].case_id,
                                            (long long) s_cases[i].case_id),
                          1);
    }
    //  Nothing left open; exactly the three missed deadlines were warned,
    //  overdue and escalated, once each; everything else was met in time.
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM deadlines WHERE state = "
                                                "'open'"),
                      0);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM deadline_actions WHERE "
                                                "action = 'warned'"),
                      3);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM deadline_actions WHERE "
                                                "action = 'overdue'"),
                      3);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM deadline_actions WHERE "
                                                "action = 'escalated'"),
                      3);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM events WHERE type = "
                                                "'deadline.escalated'"),
                      3);
    char *late = hcp_test_sql_text (s_conn,
                                    "SELECT string_agg(c.label || ':' || d.kind, ',' ORDER BY "
                                    "c.label) FROM deadlines d JOIN (VALUES (%lld, 'C'), "
                                    "(%lld, 'H'), (%lld, 'I')) c (case_id, label) USING "
                                    "(case_id) WHERE d.met_at > d.due_at",
                                    (long long) s_case ('C'), (long long) s_case ('H'),
                                    (long long) s_case ('I'));
    assert_string_equal (late, "C:ledger,H:form,I:answer");
    free (late);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM deadlines WHERE met_at > "
                                        "due_at"),
                      3);
    //  The deadlines the calendar gives, for the record.
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld "
                                        "AND kind = 'answer' AND due_on = '2026-03-26'",
                                        (long long) s_case ('F')),
                      1); //  10 working days after the rejection on 12 March
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM deadlines WHERE case_id = %lld "
                                        "AND kind = 'answer' AND state = 'cancelled'",
                                        (long long) s_case ('G')),
                      1); //  the first unit's, cancelled by the transfer

    //  Statistics count effective ratings: E's is not adopted, and D-L's
    //  default gave way to its rater's late rating.
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM ratings"), 13);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM effective_ratings"), 11);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FILTER (WHERE is_bad) FROM "
                                                "effective_ratings"),
                      CASE_COUNT - 1);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM effective_ratings WHERE "
                                        "rating_id = '%s'",
                                        s_cases[4].rating_id),
                      0);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM effective_ratings WHERE "
                                                "delivery_id = 'D-L' AND origin = 'rater'"),
                      1);
    //  Bad reviews per unit of the item (谁办理谁负责), as a report would count them.
    char *per_unit = hcp_test_sql_text (
        s_conn, "SELECT string_agg(unit_code || '=' || n, ' ' ORDER BY "
                "unit_code) FROM (SELECT i.unit_code, count(*) n FROM "
                "effective_ratings e JOIN service_items i USING "
                "(item_code) WHERE e.is_bad GROUP BY i.unit_code) s");
    assert_string_equal (per_unit, "LUM=4 MRM=2 SGI=2");
    free (per_unit);

    //  The form of H, filed late and printed as the unit received it.
    char *error = NULL;
    hcp_case_form_t *form = hcp_case_form_load (s_db, s_case ('H'), &error);
    if (!form)
        fail_msg ("form: %s", error);
    char *text = hcp_case_form_text (form);
    hcp_case_form_destroy (&form);
    //  The case number depends on the order the sweep saw the ratings in.
    char *line = strstr (text, "案件编号：");
    assert_non_null (line);
    char expected_line[64];
    snprintf (expected_line, sizeof expected_line, "案件编号：%lld\n",
              (long long) s_case ('H'));
    assert_int_equal (strncmp (line, expected_line, strlen (expected_line)), 0);
    memmove (line + strlen ("案件编号："), line + strlen (expected_line) - 1,
             strlen (line + strlen (expected_line) - 1) + 1);
    tc_expect_file ("form_scenario_H.txt", text);
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_weeks_of_cases),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
