/*  case_rules — see case_rules.h. Keep in step with table case_rules in
    deploy/sql/003_cases.sql: tests/integration/test_case_db.c compares them. */
#include "case_rules.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const hcp_case_state_t s_states[] = {
    {"awaiting_visit", false, "hall", "awaiting the follow-up visit"},
    {"visited", false, "hall", "visited, form to be filed"},
    {"form_filed", false, "general_office", "form filed, unit to be designated"},
    {"assigned", false, "unit", "with the unit, answer or appeal due"},
    {"appealed", false, "general_office", "appeal to be decided"},
    {"appeal_rejected", false, "unit", "appeal rejected, answer due"},
    {"rectified_now", false, "general_office", "rectified at once, to be closed"},
    {"in_ledger", false, "unit", "in the ledger, rectification due"},
    {"ledger_extended", false, "unit", "in the ledger, deadline extended"},
    {"ledger_rectified", false, "general_office", "ledger item rectified, to be closed"},
    {"explained", false, "general_office", "explained to the rater, to be closed"},
    {"not_adopted", false, "general_office", "appeal upheld, rating not adopted"},
    {"closed", true, "nobody", "closed"},
};

static const hcp_case_rule_t s_rules[] = {
    {NULL, "open", "awaiting_visit", "case_router", "Art. 21"},
    {"awaiting_visit", "visit", "visited", "hall", "Art. 21"},
    {"visited", "visit", "visited", "hall", "Art. 21"},
    {"visited", "file_form", "form_filed", "hall", "Art. 21, Annex"},
    {"form_filed", "assign", "assigned", "general_office", "Art. 20, 21"},
    {"assigned", "transfer", "assigned", "general_office", "Art. 20"},
    {"assigned", "respond_rectified_now", "rectified_now", "unit", "Art. 22, 23"},
    {"assigned", "respond_ledger", "in_ledger", "unit", "Art. 22, 23"},
    {"assigned", "respond_explained", "explained", "unit", "Art. 22, 23"},
    {"assigned", "appeal", "appealed", "unit", "Art. 23"},
    {"appealed", "uphold_appeal", "not_adopted", "general_office", "Art. 23"},
    {"appealed", "reject_appeal", "appeal_rejected", "general_office", "Art. 23"},
    {"appeal_rejected", "respond_rectified_now", "rectified_now", "unit", "Art. 22, 23"},
    {"appeal_rejected", "respond_ledger", "in_ledger", "unit", "Art. 22, 23"},
    {"appeal_rejected", "respond_explained", "explained", "unit", "Art. 22, 23"},
    {"in_ledger", "extend", "ledger_extended", "general_office", "Art. 22"},
    {"in_ledger", "rectified", "ledger_rectified", "unit", "Art. 22"},
    {"ledger_extended", "rectified", "ledger_rectified", "unit", "Art. 22"},
    {"rectified_now", "close", "closed", "general_office", "Art. 20"},
    {"explained", "close", "closed", "general_office", "Art. 20"},
    {"ledger_rectified", "close", "closed", "general_office", "Art. 20"},
    {"not_adopted", "close", "closed", "general_office", "Art. 23"},
};

#define RULE_COUNT  (sizeof s_rules / sizeof s_rules[0])
#define STATE_COUNT (sizeof s_states / sizeof s_states[0])

const hcp_case_rule_t *
hcp_case_rules (size_t *count)
{
    assert (count);
    *count = RULE_COUNT;
    return s_rules;
}

const hcp_case_state_t *
hcp_case_states (size_t *count)
{
    assert (count);
    *count = STATE_COUNT;
    return s_states;
}

const hcp_case_state_t *
hcp_case_state_find (const char *state)
{
    if (!state)
        return NULL;
    for (size_t i = 0; i < STATE_COUNT; i++)
        if (strcmp (s_states[i].state, state) == 0)
            return &s_states[i];
    return NULL;
}

//  Two states are the same, NULL (no case yet) included.
static bool
s_same_state (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

const hcp_case_rule_t *
hcp_case_rule_find (const char *from_state, const char *action)
{
    if (!action)
        return NULL;
    for (size_t i = 0; i < RULE_COUNT; i++)
        if (s_same_state (s_rules[i].from_state, from_state)
            && strcmp (s_rules[i].action, action) == 0)
            return &s_rules[i];
    return NULL;
}

bool
hcp_case_action_known (const char *action)
{
    if (!action)
        return false;
    for (size_t i = 0; i < RULE_COUNT; i++)
        if (strcmp (s_rules[i].action, action) == 0)
            return true;
    return false;
}

char *
hcp_case_allowed_actions (const char *from_state, char *buf, size_t size)
{
    assert (buf && size > 0);
    buf[0] = 0;
    size_t used = 0;
    for (size_t i = 0; i < RULE_COUNT; i++) {
        if (!s_same_state (s_rules[i].from_state, from_state))
            continue;
        int n = snprintf (buf + used, size - used, "%s%s", used ? ", " : "",
                          s_rules[i].action);
        if (n < 0 || (size_t) n >= size - used) {
            buf[used] = 0; //  cut at the last whole action
            break;
        }
        used += (size_t) n;
    }
    if (used == 0)
        snprintf (buf, size, "none");
    return buf;
}
