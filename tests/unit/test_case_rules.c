/*  Unit tests: the state machine of a bad-review case (case_rules). The
    same rules in SQL are compared with these in test_case_db. */
#include "../../services/case-router/case_rules.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

//  Every legal move, written out here a second time on purpose: a change of
//  the rules must be made in both places (and in 003_cases.sql), knowingly.
static const char *s_legal[][3] = {
    {NULL, "open", "awaiting_visit"},
    {"awaiting_visit", "visit", "visited"},
    {"visited", "visit", "visited"},
    {"visited", "file_form", "form_filed"},
    {"form_filed", "assign", "assigned"},
    {"assigned", "transfer", "assigned"},
    {"assigned", "respond_rectified_now", "rectified_now"},
    {"assigned", "respond_ledger", "in_ledger"},
    {"assigned", "respond_explained", "explained"},
    {"assigned", "appeal", "appealed"},
    {"appealed", "uphold_appeal", "not_adopted"},
    {"appealed", "reject_appeal", "appeal_rejected"},
    {"appeal_rejected", "respond_rectified_now", "rectified_now"},
    {"appeal_rejected", "respond_ledger", "in_ledger"},
    {"appeal_rejected", "respond_explained", "explained"},
    {"in_ledger", "extend", "ledger_extended"},
    {"in_ledger", "rectified", "ledger_rectified"},
    {"ledger_extended", "rectified", "ledger_rectified"},
    {"rectified_now", "close", "closed"},
    {"explained", "close", "closed"},
    {"ledger_rectified", "close", "closed"},
    {"not_adopted", "close", "closed"},
};
#define LEGAL_COUNT (sizeof s_legal / sizeof s_legal[0])

static void
test_every_legal_move (void **state)
{
    (void) state;
    size_t count;
    hcp_case_rules (&count);
    assert_int_equal (count, LEGAL_COUNT);
    for (size_t i = 0; i < LEGAL_COUNT; i++) {
        const hcp_case_rule_t *rule = hcp_case_rule_find (s_legal[i][0], s_legal[i][1]);
        assert_non_null (rule);
        assert_string_equal (rule->to_state, s_legal[i][2]);
        assert_non_null (hcp_case_state_find (rule->to_state));
        if (rule->from_state)
            assert_non_null (hcp_case_state_find (rule->from_state));
        assert_non_null (strstr (rule->article, "Art."));
    }
}

static bool
s_is_legal (const char *from, const char *action)
{
    for (size_t i = 0; i < LEGAL_COUNT; i++)
        if (((!from && !s_legal[i][0])
             || (from && s_legal[i][0] && !strcmp (from, s_legal[i][0])))
            && !strcmp (action, s_legal[i][1]))
            return true;
    return false;
}

//  Every (state, action) pair that is not in the list is refused: the
//  whole cross product, which includes every "sample" one could think of.
static void
test_every_other_move_is_refused (void **state)
{
    (void) state;
    size_t state_count, rule_count;
    const hcp_case_state_t *states = hcp_case_states (&state_count);
    const hcp_case_rule_t *rules = hcp_case_rules (&rule_count);
    int refused = 0;
    for (size_t s = 0; s <= state_count; s++) {
        const char *from = s < state_count ? states[s].state : NULL;
        for (size_t r = 0; r < rule_count; r++) {
            const char *action = rules[r].action;
            const hcp_case_rule_t *found = hcp_case_rule_find (from, action);
            if (s_is_legal (from, action))
                assert_non_null (found);
            else {
                assert_null (found);
                refused++;
            }
        }
    }
    assert_true (refused > 200);
    //  Named samples, for a reader.
    assert_null (hcp_case_rule_find ("awaiting_visit", "close"));
    assert_null (hcp_case_rule_find ("awaiting_visit", "file_form")); //  visit first
    assert_null (hcp_case_rule_find ("closed", "visit"));
    assert_null (hcp_case_rule_find ("ledger_extended", "extend")); //  one extension only
    assert_null (hcp_case_rule_find ("appeal_rejected", "appeal")); //  one appeal only
    assert_null (hcp_case_rule_find ("not_adopted", "reject_appeal"));
    assert_null (hcp_case_rule_find ("form_filed", "respond_ledger")); //  no unit yet
    assert_null (hcp_case_rule_find ("assigned", "open"));
    assert_null (hcp_case_rule_find (NULL, "visit"));
    assert_null (hcp_case_rule_find ("assigned", "nonsense"));
    assert_null (hcp_case_rule_find ("no_such_state", "close"));
    assert_null (hcp_case_rule_find ("assigned", NULL));
}

static void
test_states_are_consistent (void **state)
{
    (void) state;
    size_t count;
    const hcp_case_state_t *states = hcp_case_states (&count);
    assert_int_equal (count, 13);
    char buf[256];
    for (size_t i = 0; i < count; i++) {
        hcp_case_allowed_actions (states[i].state, buf, sizeof buf);
        //  Only the terminal state has no way out.
        if (states[i].terminal)
            assert_string_equal (buf, "none");
        else
            assert_string_not_equal (buf, "none");
        //  Every state can be reached from the opening.
        bool reached = false;
        size_t rule_count;
        const hcp_case_rule_t *rules = hcp_case_rules (&rule_count);
        for (size_t r = 0; r < rule_count && !reached; r++)
            reached = !strcmp (rules[r].to_state, states[i].state);
        assert_true (reached);
    }
    assert_null (hcp_case_state_find ("nonsense"));
    assert_null (hcp_case_state_find (NULL));
}

static void
test_allowed_actions_text (void **state)
{
    (void) state;
    char buf[256];
    assert_string_equal (hcp_case_allowed_actions ("visited", buf, sizeof buf),
                         "visit, file_form");
    assert_string_equal (hcp_case_allowed_actions ("assigned", buf, sizeof buf),
                         "transfer, respond_rectified_now, respond_ledger, respond_explained, "
                         "appeal");
    assert_string_equal (hcp_case_allowed_actions ("appealed", buf, sizeof buf),
                         "uphold_appeal, reject_appeal");
    assert_string_equal (hcp_case_allowed_actions ("closed", buf, sizeof buf), "none");
    assert_string_equal (hcp_case_allowed_actions (NULL, buf, sizeof buf), "open");
    //  A short buffer is cut at an action boundary, never overflowed.
    char small[12];
    hcp_case_allowed_actions ("assigned", small, sizeof small);
    assert_string_equal (small, "transfer");
    assert_true (hcp_case_action_known ("extend"));
    assert_true (hcp_case_action_known ("open"));
    assert_false (hcp_case_action_known ("respond"));
    assert_false (hcp_case_action_known (NULL));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_legal_move),
        cmocka_unit_test (test_every_other_move_is_refused),
        cmocka_unit_test (test_states_are_consistent),
        cmocka_unit_test (test_allowed_actions_text),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
