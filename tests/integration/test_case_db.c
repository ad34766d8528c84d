/*  Integration tests of case_store against a real PostgreSQL: opening
    cases, every refusal, idempotent request ids, gapless form numbers,
    concurrent commands, and what PostgreSQL itself refuses (the trigger on
    cases, the append-only history), whatever the service does. */
#include "../../services/case-router/case_rules.h"
#include "hcp/v1/ingest.pb-c.h"
#include "hcp_calendar.h"
#include "test_case_fixture.h"

#include <pthread.h>

static char *s_conninfo;
static PGconn *s_conn;
static hcp_db_t *s_db;

static int
s_setup (void **state)
{
    (void) state;
    s_conninfo = hcp_test_db_create ("case_db");
    s_conn = hcp_test_connect (s_conninfo);
    s_db = hcp_db_new (s_conninfo, "test_case_db");
    assert_int_equal (hcp_db_ensure (s_db, 10000, NULL), 0);
    assert_int_equal (hcp_case_store_prepare (s_db), 0);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    hcp_db_destroy (&s_db);
    PQfinish (s_conn);
    hcp_test_db_drop (s_conninfo);
    free (s_conninfo);
    return 0;
}

//  Opens the case of rating id at now, in a transaction of its own.
static int64_t
s_open (const char *rating_id, const char *now)
{
    assert_int_equal (hcp_db_exec (s_db, "BEGIN"), 0);
    int64_t case_id = 0;
    int rc = hcp_case_open (s_db, rating_id, tc_ms (now), "case-router", &case_id);
    if (rc < 0)
        fail_msg ("open failed: %s", hcp_db_error (s_db));
    assert_int_equal (hcp_db_exec (s_db, "COMMIT"), 0);
    return rc == 1 ? case_id : 0;
}

//  A bad rating and its case, at "YYYY-MM-DD HH:MM".
static int64_t
s_new_case (const char *rated)
{
    char id[HCP_UUID_STR_LEN];
    tc_rating (s_conn, "000119001000", rated, 4, 2, 0, "slow", id);
    int64_t case_id = s_open (id, rated);
    assert_true (case_id > 0);
    return case_id;
}

//  Runs SQL expecting an error; returns its SQLSTATE (caller frees).
static char *
s_sqlstate (const char *sql)
{
    PGresult *res = PQexec (s_conn, sql);
    char *state = NULL;
    if (PQresultStatus (res) == PGRES_FATAL_ERROR)
        state = strdup (PQresultErrorField (res, PG_DIAG_SQLSTATE));
    else
        fail_msg ("expected an error from: %s", sql);
    PQclear (res);
    return state;
}

#define ASSERT_SQLSTATE(expected, ...)                                                        \
    do {                                                                                      \
        char sql_[2048];                                                                      \
        snprintf (sql_, sizeof sql_, __VA_ARGS__);                                            \
        char *state_ = s_sqlstate (sql_);                                                     \
        if (strcmp (state_, expected) != 0)                                                   \
            fail_msg ("%s: SQLSTATE %s, expected %s", sql_, state_, expected);                \
        free (state_);                                                                        \
    } while (0)

static char *
s_deadline (int64_t case_id, const char *kind, const char *state)
{
    return hcp_test_sql_text (s_conn,
                              "SELECT due_on::text FROM deadlines WHERE case_id = %lld AND "
                              "kind = '%s' AND state = '%s' ORDER BY deadline_id DESC LIMIT 1",
                              (long long) case_id, kind, state);
}

#define ASSERT_DEADLINE(case_id, kind, state, due)                                            \
    do {                                                                                      \
        char *due_ = s_deadline (case_id, kind, state);                                       \
        if (!due_ || strcmp (due_, due) != 0)                                                 \
            fail_msg ("case %lld: %s deadline (%s) due %s, expected %s", (long long) case_id, \
                      kind, state, due_ ? due_ : "none", due);                                \
        free (due_);                                                                          \
    } while (0)

// ---------------------------------------------------------------------------

static void
test_rules_match_the_database (void **state)
{
    (void) state;
    size_t count;
    const hcp_case_rule_t *rules = hcp_case_rules (&count);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM case_rules"), count);
    for (size_t i = 0; i < count; i++) {
        char *to = hcp_test_sql_text (
            s_conn,
            "SELECT to_state FROM case_rules WHERE from_state IS NOT "
            "DISTINCT FROM %s%s%s AND action = '%s'",
            rules[i].from_state ? "'" : "", rules[i].from_state ? rules[i].from_state : "NULL",
            rules[i].from_state ? "'" : "", rules[i].action);
        if (!to || strcmp (to, rules[i].to_state))
            fail_msg ("rule %s/%s: SQL says %s, C says %s", rules[i].from_state,
                      rules[i].action, to ? to : "nothing", rules[i].to_state);
        free (to);
    }
    const hcp_case_state_t *states = hcp_case_states (&count);
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM case_states"), count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal (
            hcp_test_sql_int (s_conn,
                              "SELECT count(*) FROM case_states WHERE state = '%s' "
                              "AND terminal = %s AND waiting_for = '%s'",
                              states[i].state, states[i].terminal ? "true" : "false",
                              states[i].waiting_for),
            1);
}

static void
test_a_bad_rating_opens_one_case (void **state)
{
    (void) state;
    char bad[HCP_UUID_STR_LEN], good[HCP_UUID_STR_LEN];
    //  Monday 2 March 2026; the form is due 5 working days later: 9 March.
    tc_rating (s_conn, "000119003000", "2026-03-02 10:15", 2, 5, 1, "", bad);
    tc_rating (s_conn, "000119003000", "2026-03-02 10:16", 1, 2, 3, "", good);
    int64_t case_id = s_open (bad, "2026-03-02 10:20");
    assert_true (case_id > 0);
    assert_int_equal (s_open (bad, "2026-03-02 10:21"), 0);  //  twice: one case
    assert_int_equal (s_open (good, "2026-03-02 10:21"), 0); //  not bad: none
    char unknown[HCP_UUID_STR_LEN];
    hcp_uuid_v7 (0, unknown);
    assert_int_equal (s_open (unknown, "2026-03-02 10:21"), 0);
    assert_int_equal (s_open ("not-a-uuid", "2026-03-02 10:21"), 0);

    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM cases WHERE rating_id = "
                                        "'%s'",
                                        bad),
                      1);
    char *row = hcp_test_sql_text (
        s_conn,
        "SELECT state || ' ' || unit_code || ' ' || rating_day || ' ' "
        "|| version FROM cases WHERE case_id = %lld",
        (long long) case_id);
    assert_string_equal (row, "awaiting_visit MRM 2026-03-02 1");
    free (row);
    ASSERT_DEADLINE (case_id, "form", "open", "2026-03-09");
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM events WHERE type = 'case.opened' "
                          "AND key = '%lld'",
                          (long long) case_id),
        1);
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM case_history WHERE case_id = %lld "
                          "AND version = 1 AND action = 'open' AND from_state IS "
                          "NULL AND to_state = 'awaiting_visit'",
                          (long long) case_id),
        1);
}

static void
test_postgresql_refuses_what_the_rules_do_not_allow (void **state)
{
    (void) state;
    int64_t id = s_new_case ("2026-03-03 09:00");
    //  An illegal state, with everything else right.
    ASSERT_SQLSTATE ("HC001",
                     "UPDATE cases SET state = 'closed', version = version + 1, last_action = "
                     "'close', closed_at = now() WHERE case_id = %lld",
                     (long long) id);
    //  A legal move under a wrong action name.
    ASSERT_SQLSTATE (
        "HC001",
        "UPDATE cases SET state = 'visited', version = version + 1, last_action = "
        "'file_form' WHERE case_id = %lld",
        (long long) id);
    //  A state that does not exist (the rules refuse it before the foreign key would).
    ASSERT_SQLSTATE ("HC001",
                     "UPDATE cases SET state = 'lost', version = version + 1, last_action = "
                     "'visit' WHERE case_id = %lld",
                     (long long) id);
    //  A legal move without the version step.
    ASSERT_SQLSTATE (
        "HC002",
        "UPDATE cases SET state = 'visited', last_action = 'visit' WHERE case_id = "
        "%lld",
        (long long) id);
    //  A legal move that also rewrites what may never change.
    ASSERT_SQLSTATE (
        "HC003",
        "UPDATE cases SET state = 'visited', version = version + 1, last_action = "
        "'visit', opened_at = opened_at - interval '1 day' WHERE case_id = %lld",
        (long long) id);
    ASSERT_SQLSTATE (
        "HC003",
        "UPDATE cases SET state = 'visited', version = version + 1, last_action = "
        "'visit', rating_adopted = false WHERE case_id = %lld",
        (long long) id);
    //  A case is opened only as the opening.
    char other[HCP_UUID_STR_LEN];
    tc_rating (s_conn, "000119001000", "2026-03-03 09:05", 5, 0, 0, "", other);
    ASSERT_SQLSTATE (
        "HC001",
        "INSERT INTO cases (rating_id, state, item_code, rating_day, opened_at, "
        "last_action, last_actor, last_at) VALUES ('%s', 'closed', '000119001000', "
        "'2026-03-03', now(), 'close', 'x', now())",
        other);
    //  Never deleted; history never changed.
    ASSERT_SQLSTATE ("42501", "DELETE FROM cases WHERE case_id = %lld", (long long) id);
    ASSERT_SQLSTATE ("42501",
                     "UPDATE case_history SET actor = 'someone else' WHERE case_id = "
                     "%lld",
                     (long long) id);
    ASSERT_SQLSTATE ("42501", "DELETE FROM case_history WHERE case_id = %lld", (long long) id);
    ASSERT_SQLSTATE ("42501", "TRUNCATE case_history");
    ASSERT_SQLSTATE ("42501", "TRUNCATE cases CASCADE");
    //  The services' role cannot write history by hand, nor delete cases.
    hcp_test_sql_exec (s_conn, "SET ROLE hcp_service");
    ASSERT_SQLSTATE (
        "42501",
        "INSERT INTO case_history (case_id, version, at, actor, action, to_state) "
        "VALUES (%lld, 99, now(), 'forger', 'close', 'closed')",
        (long long) id);
    ASSERT_SQLSTATE ("42501", "DELETE FROM cases WHERE case_id = %lld", (long long) id);
    //  ... but a legal transition in plain SQL works, and is recorded.
    hcp_test_sql_exec (
        s_conn,
        "UPDATE cases SET state = 'visited', version = version + 1, last_action = "
        "'visit', last_actor = 'sql user', last_at = now() WHERE case_id = %lld",
        (long long) id);
    hcp_test_sql_exec (s_conn, "RESET ROLE");
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM case_history WHERE case_id = %lld "
                          "AND version = 2 AND actor = 'sql user' AND from_state "
                          "= 'awaiting_visit' AND to_state = 'visited'",
                          (long long) id),
        1);
}

static void
test_commands_walk_and_refusals (void **state)
{
    (void) state;
    int64_t id = s_new_case ("2026-03-04 11:00"); //  Wednesday
    hcp_case_reply_t reply = tc_command (s_db, id, "close", "2026-03-04 12:00", NULL);
    assert_int_equal (reply.status, HCP_CASE_REFUSED);
    assert_string_equal (reply.code, "illegal_transition");
    assert_string_equal (reply.allowed, "visit");
    assert_string_equal (reply.state, "awaiting_visit");
    assert_non_null (strstr (reply.message, "state awaiting_visit"));
    assert_non_null (strstr (reply.message, "Allowed: visit"));

    reply = tc_command (s_db, id, "visit", "2026-03-04 12:00", "cause", "x", "reached",
                        "rater", NULL);
    assert_string_equal (reply.code, "missing_field");
    assert_non_null (strstr (reply.message, "'method'"));
    reply = tc_command (s_db, id, "visit", "2026-03-04 12:00", "cause", "x", "reached",
                        "rater", "method", "phone", "mood", "angry", NULL);
    assert_string_equal (reply.code, "invalid_field");
    assert_non_null (strstr (reply.message, "'mood'"));
    reply = tc_command (s_db, id, "respond", "2026-03-04 12:00", NULL);
    assert_string_equal (reply.code, "unknown_action");
    reply = tc_command (s_db, 99999999, "visit", "2026-03-04 12:00", "cause", "x", "reached",
                        "rater", "method", "phone", NULL);
    assert_string_equal (reply.code, "not_found");
    reply = tc_command (s_db, id, "visit", "2026-03-04 12:00", "cause", "\xff\xfe", "reached",
                        "rater", "method", "phone", NULL);
    assert_string_equal (reply.code, "invalid_field");
    //  Nothing of that changed the case.
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT version FROM cases WHERE case_id = %lld",
                                        (long long) id),
                      1);

    TC_OK (s_db, id, "visit", "2026-03-04 15:00", "visited", "cause", "材料清单不一致",
           "reached", "评价人本人", "method", "电话", NULL);
    //  Optimistic check: a client that saw version 1 is refused.
    char request_id[HCP_UUID_STR_LEN];
    hcp_uuid_v7 (0, request_id);
    hcp_case_command_t *stale = hcp_case_command_new (request_id, "tester", "file_form", id);
    hcp_case_command_expect_version (stale, 1);
    hcp_case_execute (s_db, stale, tc_ms ("2026-03-04 15:01"), &reply);
    hcp_case_command_destroy (&stale);
    assert_string_equal (reply.code, "version_conflict");

    TC_OK (s_db, id, "file_form", "2026-03-05 09:00", "form_filed", NULL);
    ASSERT_DEADLINE (id, "form", "met", "2026-03-11");
    char *number = hcp_test_sql_text (s_conn,
                                      "SELECT form_number FROM cases WHERE case_id = "
                                      "%lld",
                                      (long long) id);
    assert_non_null (number);
    assert_int_equal (strncmp (number, "2026-", 5), 0);
    free (number);

    reply = tc_command (s_db, id, "assign", "2026-03-05 10:00", "unit", "NOPE", NULL);
    assert_string_equal (reply.code, "invalid_field");
    assert_non_null (strstr (reply.message, "NOPE"));
    //  谁办理谁负责: by default the unit that handles the item.
    TC_OK (s_db, id, "assign", "2026-03-05 10:00", "assigned", NULL);
    char *unit = hcp_test_sql_text (s_conn, "SELECT unit_code FROM cases WHERE case_id = %lld",
                                    (long long) id);
    assert_string_equal (unit, "LUM");
    free (unit);
    //  10 working days after Thursday 5 March: 19 March.
    ASSERT_DEADLINE (id, "answer", "open", "2026-03-19");

    reply = tc_command (s_db, id, "transfer", "2026-03-06 10:00", "unit", "LUM", "reason", "r",
                        NULL);
    assert_string_equal (reply.code, "invalid_field");
    reply = tc_command (s_db, id, "transfer", "2026-03-06 10:00", "unit", "MRM", NULL);
    assert_string_equal (reply.code, "missing_field");
    TC_OK (s_db, id, "transfer", "2026-03-09 10:00", "assigned", "unit", "MRM", "reason",
           "the item's mining part is MRM's");
    ASSERT_DEADLINE (id, "answer", "cancelled", "2026-03-19");
    ASSERT_DEADLINE (id, "answer", "open", "2026-03-23"); //  from Monday 9 March

    reply = tc_command (s_db, id, "respond_ledger", "2026-03-10 10:00", "text", "t", "due",
                        "2026-03-10", NULL);
    assert_string_equal (reply.code, "invalid_field"); //  not after today
    reply = tc_command (s_db, id, "respond_ledger", "2026-03-10 10:00", "text", "t", "due",
                        "2026-13-01", NULL);
    assert_string_equal (reply.code, "invalid_field");
    TC_OK (s_db, id, "respond_ledger", "2026-03-10 10:00", "in_ledger", "text",
           "rewrite the guide", "due", "2026-04-30", NULL);
    ASSERT_DEADLINE (id, "answer", "met", "2026-03-23");
    ASSERT_DEADLINE (id, "ledger", "open", "2026-04-30");
    reply = tc_command (s_db, id, "extend", "2026-04-20 10:00", "due", "2026-04-29", "reason",
                        "r", NULL);
    assert_string_equal (reply.code, "invalid_field"); //  earlier than the current one
    TC_OK (s_db, id, "extend", "2026-04-20 10:00", "ledger_extended", "due", "2026-05-29",
           "reason", "supplier late", NULL);
    ASSERT_DEADLINE (id, "ledger", "open", "2026-05-29");
    reply = tc_command (s_db, id, "extend", "2026-05-20 10:00", "due", "2026-06-29", "reason",
                        "again", NULL);
    assert_string_equal (reply.code, "illegal_transition"); //  one extension only
    TC_OK (s_db, id, "rectified", "2026-05-25 10:00", "ledger_rectified", "text",
           "guide "
           "rewritten",
           NULL);
    ASSERT_DEADLINE (id, "ledger", "met", "2026-05-29");
    TC_OK (s_db, id, "close", "2026-05-26 10:00", "closed", NULL);
    reply = tc_command (s_db, id, "visit", "2026-05-27 10:00", "cause", "x", "reached", "x",
                        "method", "x", NULL);
    assert_string_equal (reply.code, "illegal_transition");
    assert_non_null (strstr (reply.message, "none"));

    //  One history row per version, in order; one event per transition.
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT version FROM cases WHERE case_id = %lld",
                                        (long long) id),
                      9);
    assert_int_equal (
        hcp_test_sql_int (s_conn, "SELECT count(*) FROM case_history WHERE case_id = %lld",
                          (long long) id),
        9);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM events WHERE key = '%lld' AND "
                                        "type LIKE 'case.%%'",
                                        (long long) id),
                      9);
    char *actions = hcp_test_sql_text (s_conn,
                                       "SELECT string_agg(action, ',' ORDER BY version) FROM "
                                       "case_history WHERE case_id = %lld",
                                       (long long) id);
    assert_string_equal (actions, "open,visit,file_form,assign,transfer,respond_ledger,extend,"
                                  "rectified,close");
    free (actions);
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM deadlines WHERE case_id = %lld AND "
                          "state = 'open'",
                          (long long) id),
        0);
}

static void
test_a_request_id_is_applied_once (void **state)
{
    (void) state;
    int64_t id = s_new_case ("2026-03-05 11:00");
    hcp_case_command_t *command = hcp_case_command_new ("req-visit-1", "tester", "visit", id);
    hcp_case_command_set (command, "cause", "c");
    hcp_case_command_set (command, "reached", "r");
    hcp_case_command_set (command, "method", "m");
    hcp_case_reply_t first, again;
    hcp_case_execute (s_db, command, tc_ms ("2026-03-05 12:00"), &first);
    hcp_case_execute (s_db, command, tc_ms ("2026-03-05 12:01"), &again);
    hcp_case_command_destroy (&command);
    assert_int_equal (first.status, HCP_CASE_OK);
    assert_false (first.replayed);
    assert_int_equal (again.status, HCP_CASE_OK);
    assert_true (again.replayed);
    assert_string_equal (again.state, "visited");
    assert_int_equal (again.version, first.version);
    //  visited → visit is legal, so a second application would have shown.
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT version FROM cases WHERE case_id = %lld",
                                        (long long) id),
                      2);

    //  A refusal is answered the same way again, even once it would pass.
    command = hcp_case_command_new ("req-assign-1", "tester", "assign", id);
    hcp_case_execute (s_db, command, tc_ms ("2026-03-05 12:02"), &first);
    assert_string_equal (first.code, "illegal_transition");
    TC_OK (s_db, id, "file_form", "2026-03-05 12:03", "form_filed", NULL);
    hcp_case_execute (s_db, command, tc_ms ("2026-03-05 12:04"), &again);
    hcp_case_command_destroy (&command);
    assert_int_equal (again.status, HCP_CASE_REFUSED);
    assert_true (again.replayed);
    assert_string_equal (again.code, "illegal_transition");
    assert_string_equal (again.message, first.message);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM case_requests WHERE "
                                        "request_id IN ('req-visit-1', 'req-assign-1')"),
                      2);
}

static void
test_form_numbers_are_gapless_per_year (void **state)
{
    (void) state;
    int last = (int) hcp_test_sql_int (
        s_conn, "SELECT coalesce(max(last_number), 0) FROM form_counters "
                "WHERE year = 2026");
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = s_new_case ("2026-03-06 09:00");
        TC_OK (s_db, ids[i], "visit", "2026-03-06 10:00", "visited", "cause", "c", "reached",
               "r", "method", "m", NULL);
    }
    TC_OK (s_db, ids[0], "file_form", "2026-03-06 11:00", "form_filed", NULL);
    //  A filing that rolls back after taking its number gives it back.
    hcp_test_sql_exec (s_conn, "BEGIN");
    hcp_test_sql_exec (s_conn, "UPDATE form_counters SET last_number = last_number + 1 WHERE "
                               "year = 2026");
    hcp_test_sql_exec (s_conn, "ROLLBACK");
    TC_OK (s_db, ids[1], "file_form", "2026-03-06 11:01", "form_filed", NULL);
    //  A refused filing takes none.
    hcp_case_reply_t reply = tc_command (s_db, ids[0], "file_form", "2026-03-06 11:02", NULL);
    assert_int_equal (reply.status, HCP_CASE_REFUSED);
    TC_OK (s_db, ids[2], "file_form", "2026-03-06 11:03", "form_filed", NULL);
    for (int i = 0; i < 3; i++) {
        char expected[32];
        snprintf (expected, sizeof expected, "2026-%06d", last + 1 + i);
        char *number = hcp_test_sql_text (s_conn,
                                          "SELECT form_number FROM cases WHERE case_id "
                                          "= %lld",
                                          (long long) ids[i]);
        assert_string_equal (number, expected);
        free (number);
    }
    //  A new year starts at 1, by the business date (Asia/Shanghai).
    int64_t late = s_new_case ("2026-12-30 09:00");
    TC_OK (s_db, late, "visit", "2026-12-31 10:00", "visited", "cause", "c", "reached", "r",
           "method", "m", NULL);
    TC_OK (s_db, late, "file_form", "2027-01-01 00:30", "form_filed", NULL);
    char *number = hcp_test_sql_text (s_conn,
                                      "SELECT form_number FROM cases WHERE case_id = "
                                      "%lld",
                                      (long long) late);
    assert_string_equal (number, "2027-000001");
    free (number);
    //  And no two cases share a number, whatever the year.
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) - count(DISTINCT form_number) "
                                        "FROM cases WHERE form_number IS NOT NULL"),
                      0);
}

// ---------------------------------------------------------------------------
//  Two staff members act on the same cases at the same moment.

typedef struct {
    int64_t *ids;
    int count;
    const char *unit;
    int ok;
    int refused;
} racer_t;

static void *
s_racer (void *arg)
{
    racer_t *racer = arg;
    hcp_db_t *db = hcp_db_new (s_conninfo, "racer");
    if (hcp_db_ensure (db, 10000, NULL) != 0 || hcp_case_store_prepare (db) != 0)
        return NULL;
    for (int i = 0; i < racer->count; i++) {
        char request_id[HCP_UUID_STR_LEN];
        hcp_uuid_v7 (0, request_id);
        hcp_case_command_t *command = hcp_case_command_new (request_id, racer->unit, "assign",
                                                            racer->ids[i]);
        hcp_case_command_set (command, "unit", racer->unit);
        hcp_case_reply_t reply;
        hcp_case_execute (db, command, hcp_clock_now_ms (), &reply);
        hcp_case_command_destroy (&command);
        if (reply.status == HCP_CASE_OK)
            racer->ok++;
        else if (!strcmp (reply.code, "illegal_transition"))
            racer->refused++;
    }
    hcp_db_destroy (&db);
    return NULL;
}

static void
test_concurrent_commands_serialise (void **state)
{
    (void) state;
    enum { N = 30 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = s_new_case ("2026-03-09 09:00");
        TC_OK (s_db, ids[i], "visit", "2026-03-09 10:00", "visited", "cause", "c", "reached",
               "r", "method", "m", NULL);
        TC_OK (s_db, ids[i], "file_form", "2026-03-09 10:00", "form_filed", NULL);
    }
    hcp_clock_set_ms (tc_ms ("2026-03-09 11:00"));
    racer_t a = {ids, N, "LUM", 0, 0}, b = {ids, N, "MRM", 0, 0};
    pthread_t ta, tb;
    pthread_create (&ta, NULL, s_racer, &a);
    pthread_create (&tb, NULL, s_racer, &b);
    pthread_join (ta, NULL);
    pthread_join (tb, NULL);
    hcp_clock_set_ms (0);
    //  Each case assigned exactly once; the loser was told why.
    assert_int_equal (a.ok + b.ok, N);
    assert_int_equal (a.refused + b.refused, N);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM case_history WHERE action = "
                                        "'assign' AND case_id BETWEEN %lld AND %lld",
                                        (long long) ids[0], (long long) ids[N - 1]),
                      N);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM deadlines WHERE kind = 'answer' "
                                        "AND case_id BETWEEN %lld AND %lld",
                                        (long long) ids[0], (long long) ids[N - 1]),
                      N);
}

static void
test_effective_ratings (void **state)
{
    (void) state;
    //  An upheld appeal takes the rating out; a rejected one does not.
    int64_t upheld = s_new_case ("2026-03-10 09:00");
    int64_t rejected = s_new_case ("2026-03-10 09:01");
    int64_t ids[2] = {upheld, rejected};
    for (int i = 0; i < 2; i++) {
        TC_OK (s_db, ids[i], "visit", "2026-03-10 10:00", "visited", "cause", "c", "reached",
               "r", "method", "m", NULL);
        TC_OK (s_db, ids[i], "file_form", "2026-03-10 11:00", "form_filed", NULL);
        TC_OK (s_db, ids[i], "assign", "2026-03-11 09:00", "assigned", NULL);
        TC_OK (s_db, ids[i], "appeal", "2026-03-12 09:00", "appealed", "kind", "malicious",
               "reason", "the rater never applied", NULL);
    }
    hcp_case_reply_t reply = tc_command (s_db, upheld, "appeal", "2026-03-12 09:00", "kind",
                                         "bored", "reason", "x", NULL);
    assert_string_equal (reply.code, "illegal_transition");
    TC_OK (s_db, upheld, "uphold_appeal", "2026-03-13 09:00", "not_adopted", "reason",
           "verified: no such application", NULL);
    TC_OK (s_db, rejected, "reject_appeal", "2026-03-13 09:00", "appeal_rejected", "reason",
           "the application exists", NULL);
    ASSERT_DEADLINE (rejected, "answer", "open", "2026-03-27");
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM effective_ratings e JOIN cases c "
                          "USING (rating_id) WHERE c.case_id = %lld",
                          (long long) upheld),
        0);
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM effective_ratings e JOIN cases c "
                          "USING (rating_id) WHERE c.case_id = %lld",
                          (long long) rejected),
        1);
    //  Still stored, still auditable.
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM ratings r JOIN cases c USING "
                                        "(rating_id) WHERE c.case_id = %lld AND NOT "
                                        "c.rating_adopted",
                                        (long long) upheld),
                      1);
    //  A default rating superseded by the rater's own (late) rating.
    hcp_test_sql_exec (
        s_conn, "INSERT INTO deliveries (delivery_id, item_code, stage, channel, "
                "rater_type, delivered_at, fingerprint) VALUES ('D-EFF-1', '000119001000', "
                "3, 3, 1, '2026-03-01 10:00+08', '\\x00'), ('D-EFF-2', '000119001000', 3, "
                "3, 1, '2026-03-01 10:00+08', '\\x00')");
    hcp_test_sql_exec (
        s_conn, "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
                "rating_count, rater_type, rated_at, standardization, convenience, "
                "accuracy, origin, fingerprint) SELECT hcp_uuidv7(), d, '000119001000', "
                "3, 3, 1, 1, '2026-03-09 00:00+08', 3, 3, 3, 'default', '\\x00' FROM "
                "unnest (ARRAY['D-EFF-1', 'D-EFF-2']) AS d");
    hcp_test_sql_exec (
        s_conn, "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
                "rating_count, rater_type, rated_at, standardization, fingerprint) VALUES "
                "(hcp_uuidv7(), 'D-EFF-1', '000119001000', 3, 3, 1, 1, "
                "'2026-03-10 00:00+08', 1, '\\x00')");
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM effective_ratings WHERE "
                                                "delivery_id = 'D-EFF-1'"),
                      1); //  the rater's own only
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM effective_ratings WHERE "
                                        "delivery_id = 'D-EFF-1' AND origin = 'rater'"),
                      1);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM effective_ratings WHERE "
                                        "delivery_id = 'D-EFF-2' AND origin = 'default'"),
                      1);
}

static void
test_the_sweep_opens_what_was_missed (void **state)
{
    (void) state;
    char ids[5][HCP_UUID_STR_LEN];
    for (int i = 0; i < 5; i++)
        tc_rating (s_conn, "000119006000", "2026-03-11 08:00", i % 2 ? 1 : 5, 0, 0, "",
                   ids[i]);
    int before = (int) hcp_test_sql_int (s_conn, "SELECT count(*) FROM cases");
    //  Ratings before since_ms are left to the start-up sweep.
    assert_int_equal (hcp_case_sweep (s_db, tc_ms ("2026-03-12 00:00"), 100,
                                      tc_ms ("2026-03-12 09:00"), "sweeper"),
                      0);
    int opened = 0;
    for (int round = 0; round < 10; round++) {
        int rc = hcp_case_sweep (s_db, tc_ms ("2026-03-11 00:00"), 2,
                                 tc_ms ("2026-03-12 09:00"), "sweeper");
        assert_true (rc >= 0);
        opened += rc;
        if (rc == 0)
            break;
    }
    assert_int_equal (opened, 3); //  the three bad ones
    assert_int_equal (hcp_test_sql_int (s_conn, "SELECT count(*) FROM cases"), before + 3);
    //  The start-up sweep (since 0) catches anything older too; then nothing is left.
    assert_true (hcp_case_sweep (s_db, 0, 100, tc_ms ("2026-03-12 09:00"), "sweeper") >= 0);
    assert_int_equal (hcp_case_sweep (s_db, 0, 100, tc_ms ("2026-03-12 09:00"), "sweeper"), 0);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM ratings r WHERE is_bad AND "
                                        "NOT EXISTS (SELECT 1 FROM cases c WHERE "
                                        "c.rating_id = r.rating_id)"),
                      0);
}

//  Events as the bus delivers them: one run, one transaction, the offset
//  claimed up to its last seq; a good rating's payload saves the query.
static void
test_events_open_cases_once (void **state)
{
    (void) state;
    char bad[HCP_UUID_STR_LEN], bad_no_payload[HCP_UUID_STR_LEN], good[HCP_UUID_STR_LEN];
    tc_rating (s_conn, "000119007000", "2026-03-13 09:00", 5, 0, 0, "", bad);
    tc_rating (s_conn, "000119007000", "2026-03-13 09:01", 0, 4, 0, "", bad_no_payload);
    tc_rating (s_conn, "000119007000", "2026-03-13 09:02", 1, 0, 0, "", good);
    uint64_t offset = 0;
    assert_int_equal (hcp_offset_load (s_db, HCP_CASE_CONSUMER, &offset), 0);
    //  Payloads: the bad one says bad, the good one says good (no query).
    uint8_t payloads[2][256];
    size_t sizes[2];
    const char *ids[2] = {bad, good};
    for (int i = 0; i < 2; i++) {
        Hcp__V1__Rating rating = HCP__V1__RATING__INIT;
        rating.rating_id = (char *) ids[i];
        rating.standardization = i == 0 ? HCP__V1__GRADE__GRADE_VERY_DISSATISFIED
                                        : HCP__V1__GRADE__GRADE_VERY_SATISFIED;
        sizes[i] = hcp__v1__rating__pack (&rating, payloads[i]);
    }
    hcp_event_t events[4] = {
        {offset + 1, (char *) "rating.stored", bad, 0, payloads[0], sizes[0]},
        {offset + 2, (char *) "delivery.stored", (char *) "D-1", 0, NULL, 0},
        {offset + 3, (char *) "rating.stored", bad_no_payload, 0, NULL, 0},
        {offset + 4, (char *) "rating.stored", good, 0, payloads[1], sizes[1]},
    };
    hcp_event_t *run[4] = {&events[0], &events[1], &events[2], &events[3]};
    assert_int_equal (hcp_case_on_events (s_db, run, 4, tc_ms ("2026-03-13 09:05")), 2);
    uint64_t after = 0;
    assert_int_equal (hcp_offset_load (s_db, HCP_CASE_CONSUMER, &after), 0);
    assert_int_equal (after, offset + 4);
    //  The same run again (a second instance, a replay): nothing twice.
    assert_int_equal (hcp_case_on_events (s_db, run, 4, tc_ms ("2026-03-13 09:06")), 0);
    //  A run that overlaps what was handled: claimed, nothing doubled.
    events[3].seq = offset + 5;
    assert_int_equal (hcp_case_on_events (s_db, run, 4, tc_ms ("2026-03-13 09:07")), 0);
    assert_int_equal (hcp_test_sql_int (s_conn,
                                        "SELECT count(*) FROM cases WHERE rating_id IN ('%s', "
                                        "'%s', '%s')",
                                        bad, bad_no_payload, good),
                      2);
    assert_int_equal (
        hcp_test_sql_int (s_conn,
                          "SELECT count(*) FROM events e JOIN cases c ON e.key = "
                          "c.case_id::text WHERE e.type = 'case.opened' AND "
                          "c.rating_id IN ('%s', '%s')",
                          bad, bad_no_payload),
        2);
    //  The single-event form.
    char one[HCP_UUID_STR_LEN];
    tc_rating (s_conn, "000119007000", "2026-03-13 09:10", 4, 0, 0, "", one);
    assert_int_equal (
        hcp_case_on_event (s_db, offset + 6, "rating.stored", one, tc_ms ("2026-03-13 09:11")),
        1);
    assert_int_equal (
        hcp_case_on_event (s_db, offset + 6, "rating.stored", one, tc_ms ("2026-03-13 09:11")),
        0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rules_match_the_database),
        cmocka_unit_test (test_a_bad_rating_opens_one_case),
        cmocka_unit_test (test_postgresql_refuses_what_the_rules_do_not_allow),
        cmocka_unit_test (test_commands_walk_and_refusals),
        cmocka_unit_test (test_a_request_id_is_applied_once),
        cmocka_unit_test (test_form_numbers_are_gapless_per_year),
        cmocka_unit_test (test_concurrent_commands_serialise),
        cmocka_unit_test (test_effective_ratings),
        cmocka_unit_test (test_the_sweep_opens_what_was_missed),
        cmocka_unit_test (test_events_open_cases_once),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
