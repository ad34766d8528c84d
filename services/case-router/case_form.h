/*  case_form — the bad-review handling form (政务服务"差评"处理单, Annex of
    the measures): its yearly number and its printable rendering.

    The number is YYYY-NNNNNN (e.g. 2026-000123): unique and gapless per
    year, taken from table form_counters in the transaction that files the
    form (case_store), so a rolled-back filing gives its number back.

    The form is rendered from a hcp_case_form_t record, loaded from the
    database by hcp_case_form_load or filled by hand (tests), as plain text
    (UTF-8, for terminals and e-mail) or as a self-contained HTML page with
    print styles (A4). Every field of the Annex is filled: number, the
    addressed unit, the item and the review, the two options, the 10 working
    days (with the due date when the answer deadline is known), the unit's
    contact person and telephone, the General Office and the date. The
    rater's personal data is never on the form.
*/
#ifndef HCP_CASE_FORM_H_INCLUDED
#define HCP_CASE_FORM_H_INCLUDED

#include "hcp_calendar.h"
#include "hcp_db.h"

#include <stdbool.h>
#include <stdint.h>

#define HCP_CASE_FORM_NUMBER_LEN 12 //  "YYYY-NNNNNN" and the NUL

//  A filled form. Strings are owned by the record (hcp_case_form_destroy
//  frees them); NULL is printed as an empty field.
typedef struct {
    int64_t case_id;
    char number[HCP_CASE_FORM_NUMBER_LEN];
    char *unit_code;
    char *unit_name;
    char *unit_contact;
    char *unit_phone;
    bool unit_proposed; //  not yet designated: the item's unit, as proposed
    char *item_code;
    char *item_name;
    int64_t rated_at_ms;
    int channel;   //  1..7 (common.proto Channel)
    int stage;     //  1..3 (common.proto Stage)
    int grades[3]; //  standardization, convenience, accuracy: 1..5, 0 unrated
    char *comment;
    int64_t visited_at_ms; //  0: no visit recorded
    char *visit_cause;
    char *visit_reached;
    char *visit_method;
    int answer_working_days; //  10 (Art. 23)
    bool answer_due_known;
    hcp_date_t answer_due;
    bool answer_due_provisional;
    hcp_date_t form_date; //  the date the General Office signs: sent to the unit (or filed)
} hcp_case_form_t;

//  Formats a form number. Returns 0, or -1 (buf set to "") when year is
//  not 1000..9999 or number not 1..999999.
int hcp_case_form_number (int year, int number, char buf[HCP_CASE_FORM_NUMBER_LEN]);

//  Parses "YYYY-NNNNNN". Returns 0 and sets *year, *number, else -1.
int hcp_case_form_number_parse (const char *text, int *year, int *number);

//  Loads the form of a case that has one (state form_filed or later).
//  Returns a new record (caller destroys), or NULL with *error set
//  (malloc'd, caller frees): no such case, no form filed yet, or a
//  database error.
hcp_case_form_t *hcp_case_form_load (hcp_db_t *db, int64_t case_id, char **error);

//  Frees a record from hcp_case_form_load (or one whose strings were
//  malloc'd) and nulls the pointer. Safe on NULL.
void hcp_case_form_destroy (hcp_case_form_t **self_p);

//  Renders the form as plain text (UTF-8, lines end in \n) or as an HTML
//  document. Returns a malloc'd string (caller frees).
char *hcp_case_form_text (const hcp_case_form_t *form);
char *hcp_case_form_html (const hcp_case_form_t *form);

//  Names for people (Chinese, as printed on the form): channel 1..7,
//  stage 1..3, grade 1..5 (0: 未评价). Unknown values give "未知".
const char *hcp_case_channel_name (int channel);
const char *hcp_case_stage_name (int stage);
const char *hcp_case_grade_name (int grade);

#endif
