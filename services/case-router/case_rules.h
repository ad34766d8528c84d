/*  case_rules — the state machine of a bad-review case (Art. 20-23), as C
    data: the same (from_state, action, to_state) rows as table case_rules
    of deploy/sql/003_cases.sql (a test checks they are identical).

    case-router checks a command against these rules first, so that people
    get a clear refusal ("case 12 is in state assigned; allowed: appeal,
    respond_explained, ..."); the trigger on table cases checks the same
    rules again, so nothing that bypasses the service can break them.

    States, in workflow order:
      awaiting_visit → visited → form_filed → assigned → (appealed →
      not_adopted | appeal_rejected) | rectified_now | in_ledger
      (→ ledger_extended) → ledger_rectified | explained → closed
*/
#ifndef HCP_CASE_RULES_H_INCLUDED
#define HCP_CASE_RULES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *from_state; //  NULL: the opening of a case
    const char *action;
    const char *to_state;
    const char *performed_by; //  case_router, hall, general_office, unit
    const char *article;
} hcp_case_rule_t;

typedef struct {
    const char *state;
    bool terminal;
    const char *waiting_for; //  hall, general_office, unit, nobody
    const char *label;       //  a few words, for people
} hcp_case_state_t;

//  Every rule, in a fixed order; *count receives how many.
const hcp_case_rule_t *hcp_case_rules (size_t *count);

//  Every state, in workflow order; *count receives how many.
const hcp_case_state_t *hcp_case_states (size_t *count);

//  The state description, or NULL if state is not a state name.
const hcp_case_state_t *hcp_case_state_find (const char *state);

//  The rule that action follows from from_state (NULL for the opening), or
//  NULL when the action is not allowed there.
const hcp_case_rule_t *hcp_case_rule_find (const char *from_state, const char *action);

//  True if action is the name of an action of some rule ("open" included).
bool hcp_case_action_known (const char *action);

//  Writes the actions allowed in from_state, comma-separated in rule order
//  ("none" for a terminal state), into buf of size bytes. Returns buf.
char *hcp_case_allowed_actions (const char *from_state, char *buf, size_t size);

#endif
