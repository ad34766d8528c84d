/*  hcpctl case … — bad-review cases for hall staff, the General Office and
    the responsible units (Art. 20-23).

    Read-only commands (list, show, form) read PostgreSQL directly. Every
    command that changes a case goes to hcp-case-router, the one owner of
    the rules, as a hcp.v1.CaseCommand over ZeroMQ (DEALER): with a timeout
    and retries under the same request id, so a lost answer never applies
    a command twice. A refusal is printed with its reason and the command
    exits 1.
*/
#include "hcpctl.h"

#include "../case-router/case_form.h"
#include "../case-router/case_rules.h"
#include "hcp/v1/case.pb-c.h"
#include "hcp_clock.h"
#include "hcp_service.h"
#include "hcp_uuid.h"

#include <czmq.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"

static int
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: hcpctl case COMMAND [CASE] [OPTIONS]\n\n"
             "Reading (from PostgreSQL):\n"
             "  list [--state S] [--unit U] [--overdue] [--all] [--limit N]\n"
             "                                 open cases (--all: closed ones too)\n"
             "  show N                         a case, its deadlines and its full history\n"
             "  form N [--text|--html] [-o FILE]\n"
             "                                 the handling form (差评处理单), printable\n\n"
             "Hall staff (政务大厅, Art. 21):\n"
             "  visit N --cause TEXT --reached WHO --method HOW\n"
             "                                 record the follow-up visit (回访)\n"
             "  file-form N [--text NOTE]      file the handling form to the General "
             "Office\n\n"
             "General Office (办公厅, Art. 20-23):\n"
             "  assign N [--unit CODE]         designate the responsible unit (default: the\n"
             "                                 unit that handles the item)\n"
             "  transfer N --unit CODE --reason TEXT\n"
             "  decide-appeal N uphold|reject --reason TEXT\n"
             "                                 uphold: the rating is not adopted\n"
             "  extend N --due YYYY-MM-DD --reason TEXT\n"
             "                                 move a ledger deadline (once)\n"
             "  close N [--text NOTE]\n\n"
             "Responsible units (Art. 22-23, within 10 working days of the form):\n"
             "  respond N rectified-now --text TEXT     rectified at once (立行立改)\n"
             "  respond N ledger --due YYYY-MM-DD --text TEXT\n"
             "                                          entered in the ledger (台账)\n"
             "  respond N explained --text TEXT         explained to the rater\n"
             "  appeal N --kind mistaken|malicious --reason TEXT\n"
             "  rectified N --text TEXT                 the ledger item was rectified\n\n"
             "Options of the commands that change a case:\n"
             "  --actor NAME          who acts, recorded in the history (default $USER)\n"
             "  --endpoint ADDR       case-router (default config case_router.connect, else\n"
             "                        case_router.bind, else " DEFAULT_ENDPOINT ")\n"
             "  --expect-version V    refuse if the case changed since version V\n"
             "  --timeout-ms MS       wait for each answer (default 5000)\n"
             "  --retries N           tries with the same request id (default 3)\n\n"
             "Exit status: 0 done, 1 refused or failed (the reason is printed), 2 usage.\n"
             "docs/state-machine.md shows the states and which command each allows.\n");
    return out == stdout ? 0 : 2;
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

typedef struct {
    const char *name;  //  "--cause"
    const char *value; //  NULL if not given; "1" for flags
    bool flag;
} option_t;

//  Parses argv[from..] into options (each known one takes a value unless it
//  is a flag) and positionals. Returns 0, or -1 after printing the error.
static int
s_parse (int argc, char **argv, int from, option_t *options, const char **positionals,
         int *positional_count, int positional_max)
{
    *positional_count = 0;
    for (int i = from; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp (arg, "--", 2) != 0 && strcmp (arg, "-o") != 0) {
            if (*positional_count >= positional_max) {
                fprintf (stderr, "hcpctl case: unexpected argument '%s'\n", arg);
                return -1;
            }
            positionals[(*positional_count)++] = arg;
            continue;
        }
        option_t *option = options;
        while (option->name && strcmp (option->name, arg) != 0)
            option++;
        if (!option->name) {
            fprintf (stderr, "hcpctl case: unknown option '%s' (hcpctl case --help)\n", arg);
            return -1;
        }
        if (option->flag)
            option->value = "1";
        else {
            if (i + 1 >= argc) {
                fprintf (stderr, "hcpctl case: option %s needs a value\n", arg);
                return -1;
            }
            option->value = argv[++i];
        }
    }
    return 0;
}

static const char *
s_opt (const option_t *options, const char *name)
{
    for (const option_t *option = options; option->name; option++)
        if (!strcmp (option->name, name))
            return option->value;
    return NULL;
}

static int
s_case_id (const char *text, int64_t *case_id)
{
    char *end = NULL;
    long long value = text ? strtoll (text, &end, 10) : 0;
    if (!text || !*text || *end || value <= 0) {
        fprintf (stderr, "hcpctl case: expected a case number, got '%s'\n", text ? text : "");
        return -1;
    }
    *case_id = value;
    return 0;
}

// ---------------------------------------------------------------------------
// Talking to case-router
// ---------------------------------------------------------------------------

typedef struct {
    const char *action;
    const char *fields[6]; //  key, option pairs: {"cause", "--cause", ...}, NULL-ended
} mapping_t;

//  Sends a command and waits for its answer, retrying with the same request
//  id. Prints the outcome. Returns the exit code.
static int
s_send (hcp_config_t *config, const option_t *options, const char *action, int64_t case_id,
        const char *const *keys, const char *const *values, size_t count)
{
    const char *endpoint = s_opt (options, "--endpoint");
    if (!endpoint) {
        const char *bind = NULL;
        hcp_config_str (config, "case_router.bind", DEFAULT_ENDPOINT, &bind);
        hcp_config_str (config, "case_router.connect", bind, &endpoint);
    }
    const char *actor = s_opt (options, "--actor");
    if (!actor)
        actor = getenv ("USER");
    if (!actor || !*actor) {
        struct passwd *user = getpwuid (getuid ());
        actor = user ? user->pw_name : NULL;
    }
    if (!actor || !*actor) {
        fprintf (stderr,
                 "hcpctl case: who acts? give --actor NAME (recorded in the history)\n");
        return 2;
    }
    long timeout_ms = s_opt (options, "--timeout-ms") ? atol (s_opt (options, "--timeout-ms"))
                                                      : 5000;
    long retries = s_opt (options, "--retries") ? atol (s_opt (options, "--retries")) : 3;
    if (timeout_ms < 1 || retries < 1) {
        fprintf (stderr, "hcpctl case: --timeout-ms and --retries must be positive\n");
        return 2;
    }
    char request_id[HCP_UUID_STR_LEN];
    hcp_uuid_v7 (0, request_id);

    Hcp__V1__CaseCommand command = HCP__V1__CASE_COMMAND__INIT;
    command.request_id = request_id;
    command.actor = (char *) actor;
    command.action = (char *) action;
    command.case_id = case_id;
    command.expected_version = s_opt (options, "--expect-version")
                                   ? atoll (s_opt (options, "--expect-version"))
                                   : 0;
    Hcp__V1__CaseField fields[8];
    Hcp__V1__CaseField *field_ptrs[8];
    for (size_t i = 0; i < count && i < 8; i++) {
        hcp__v1__case_field__init (&fields[i]);
        fields[i].key = (char *) keys[i];
        fields[i].value = (char *) values[i];
        field_ptrs[i] = &fields[i];
    }
    command.n_fields = count;
    command.fields = field_ptrs;
    size_t size = hcp__v1__case_command__get_packed_size (&command);
    uint8_t *buffer = malloc (size ? size : 1);
    hcp__v1__case_command__pack (&command, buffer);

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        fprintf (stderr, "hcpctl case: cannot connect to case-router at '%s'\n", endpoint);
        zsock_destroy (&dealer);
        free (buffer);
        return 1;
    }
    int rc = 1;
    Hcp__V1__CaseReply *reply = NULL;
    for (long attempt = 1; attempt <= retries && !reply; attempt++) {
        zframe_t *frame = zframe_new (buffer, size);
        zframe_send (&frame, dealer, 0);
        int64_t deadline = zclock_mono () + timeout_ms;
        while (!reply) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0)
                break;
            zmq_pollitem_t item = {zsock_resolve (dealer), 0, ZMQ_POLLIN, 0};
            if (zmq_poll (&item, 1, (long) left) <= 0)
                continue;
            zframe_t *answer = zframe_recv (dealer);
            if (!answer)
                continue;
            Hcp__V1__CaseReply *candidate = hcp__v1__case_reply__unpack (
                NULL, zframe_size (answer), zframe_data (answer));
            zframe_destroy (&answer);
            //  An answer to an earlier try of another command is ignored.
            if (candidate && !strcmp (candidate->request_id, request_id))
                reply = candidate;
            else if (candidate)
                hcp__v1__case_reply__free_unpacked (candidate, NULL);
        }
        if (reply && reply->status == HCP__V1__CASE_STATUS__CASE_UNAVAILABLE
            && attempt < retries) {
            fprintf (stderr, "hcpctl case: %s; retrying\n", reply->message);
            hcp__v1__case_reply__free_unpacked (reply, NULL);
            reply = NULL;
            zclock_sleep (500);
        }
        else if (!reply && attempt < retries)
            fprintf (stderr,
                     "hcpctl case: no answer from case-router at %s within %ld ms; "
                     "retrying (request %s)\n",
                     endpoint, timeout_ms, request_id);
    }
    if (!reply)
        fprintf (stderr,
                 "hcpctl case: no answer from case-router at %s after %ld tries; the command "
                 "may not have been applied (request %s). Is hcp-case-router running?\n",
                 endpoint, retries, request_id);
    else if (reply->status == HCP__V1__CASE_STATUS__CASE_OK) {
        printf ("%s%s\n", reply->message, reply->replayed ? " (applied earlier)" : "");
        rc = 0;
    }
    else if (reply->status == HCP__V1__CASE_STATUS__CASE_REFUSED) {
        fprintf (stderr, "hcpctl case: refused (%s): %s\n", reply->code, reply->message);
        if (reply->n_allowed_actions > 0 && !strstr (reply->message, "Allowed:")) {
            fprintf (stderr, "allowed now:");
            for (size_t i = 0; i < reply->n_allowed_actions; i++)
                fprintf (stderr, " %s", reply->allowed_actions[i]);
            fprintf (stderr, "\n");
        }
    }
    else
        fprintf (stderr, "hcpctl case: not applied: %s\n", reply->message);
    if (reply)
        hcp__v1__case_reply__free_unpacked (reply, NULL);
    zsock_destroy (&dealer);
    free (buffer);
    return rc;
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

//  Open deadlines come from deadline_status_at (005_deadlines.sql) at the
//  business time, so "overdue" means what deadline-watcher means by it.
#define SQL_LIST                                                                              \
    "WITH s AS (SELECT DISTINCT ON (case_id) case_id, kind, due_on, status, "                 \
    "provisional "                                                                            \
    "FROM deadline_status_at(to_timestamp($4::bigint / 1000.0)) ORDER BY case_id, "           \
    "due_on), "                                                                               \
    "o AS (SELECT DISTINCT case_id FROM deadline_status_at(to_timestamp($4::bigint / "        \
    "1000.0)) "                                                                               \
    "WHERE status = 'overdue') "                                                              \
    "SELECT c.case_id, c.state, coalesce(c.unit_code, '-'), c.item_code, "                    \
    "coalesce(c.form_number, '-'), to_char(c.opened_at AT TIME ZONE 'Asia/Shanghai', "        \
    "'YYYY-MM-DD'), coalesce(s.kind || ' ' || s.due_on || ' ' || s.status || "                \
    "CASE WHEN s.provisional THEN ' (provisional)' ELSE '' END, '-') "                        \
    "FROM cases c LEFT JOIN s ON s.case_id = c.case_id "                                      \
    "WHERE ($1 = '' OR c.state = $1) AND ($2 = '' OR c.unit_code = $2) "                      \
    "AND (NOT $3::boolean OR c.case_id IN (SELECT case_id FROM o)) "                          \
    "AND ($5::boolean OR c.state <> 'closed') ORDER BY c.case_id LIMIT $6"

static int
s_list (hcp_config_t *config, int argc, char **argv)
{
    option_t options[] = {{"--state", NULL, false},  {"--unit", NULL, false},
                          {"--overdue", NULL, true}, {"--all", NULL, true},
                          {"--limit", NULL, false},  {NULL, NULL, false}};
    const char *positionals[1];
    int count;
    if (s_parse (argc, argv, 2, options, positionals, &count, 0) != 0)
        return 2;
    const char *state = s_opt (options, "--state");
    if (state && !hcp_case_state_find (state)) {
        fprintf (stderr, "hcpctl case list: no state '%s' (see docs/state-machine.md)\n",
                 state);
        return 2;
    }
    hcp_db_t *db = hcpctl_connect (config);
    if (!db)
        return 1;
    char now[32];
    snprintf (now, sizeof now, "%" PRId64, hcp_clock_now_ms ());
    const char *params[] = {state ? state : "",
                            s_opt (options, "--unit") ? s_opt (options, "--unit") : "",
                            s_opt (options, "--overdue") ? "true" : "false",
                            now,
                            (s_opt (options, "--all") || state) ? "true" : "false",
                            s_opt (options, "--limit") ? s_opt (options, "--limit") : "1000"};
    int rc = 1;
    if (hcp_db_prepare (db, "case_list", SQL_LIST) == 0) {
        PGresult *res = hcp_db_run (db, "case_list", 6, params);
        if (hcp_db_ok (db, res)) {
            printf ("%-7s %-17s %-6s %-13s %-12s %-10s %s\n", "CASE", "STATE", "UNIT", "ITEM",
                    "FORM", "OPENED", "NEXT DEADLINE");
            for (int row = 0; row < PQntuples (res); row++)
                printf ("%-7s %-17s %-6s %-13s %-12s %-10s %s\n", PQgetvalue (res, row, 0),
                        PQgetvalue (res, row, 1), PQgetvalue (res, row, 2),
                        PQgetvalue (res, row, 3), PQgetvalue (res, row, 4),
                        PQgetvalue (res, row, 5), PQgetvalue (res, row, 6));
            printf ("(%d case%s)\n", PQntuples (res), PQntuples (res) == 1 ? "" : "s");
            rc = 0;
        }
        PQclear (res);
    }
    if (rc)
        fprintf (stderr, "hcpctl case list: %s\n", hcp_db_error (db));
    hcp_db_destroy (&db);
    return rc;
}

#define SQL_SHOW                                                                              \
    "SELECT c.case_id, c.state, c.version, c.rating_id, "                                     \
    "to_char(r.rated_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), "                \
    "r.channel, "                                                                             \
    "coalesce(r.standardization, 0), coalesce(r.convenience, 0), coalesce(r.accuracy, "       \
    "0), "                                                                                    \
    "r.comment, c.item_code, i.name, coalesce(c.unit_code, ''), coalesce(u.name, ''), "       \
    "coalesce(u.contact, ''), coalesce(u.phone, ''), coalesce(c.form_number, ''), "           \
    "coalesce(c.visit_cause, ''), coalesce(c.visit_reached, ''), "                            \
    "coalesce(c.visit_method, ''), "                                                          \
    "coalesce(c.response, ''), coalesce(c.response_text, ''), "                               \
    "coalesce(c.ledger_due_on::text, ''), c.ledger_extended, "                                \
    "coalesce(c.appeal_kind, ''), coalesce(c.appeal_text, ''), "                              \
    "coalesce(c.appeal_decision, ''), "                                                       \
    "c.rating_adopted, coalesce(c.rectified_text, ''), coalesce(c.close_note, ''), "          \
    "c.rating_day, c.transfers "                                                              \
    "FROM cases c JOIN ratings r ON r.rating_id = c.rating_id "                               \
    "JOIN service_items i ON i.item_code = c.item_code "                                      \
    "LEFT JOIN units u ON u.unit_code = c.unit_code WHERE c.case_id = $1"

#define SQL_SHOW_DEADLINES                                                                    \
    "SELECT d.kind, d.starts_on, d.period, d.day_kind, d.due_on, d.state, "                   \
    "d.provisional, "                                                                         \
    "coalesce(to_char(d.met_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), "         \
    "''), "                                                                                   \
    "CASE WHEN d.state <> 'open' THEN '' "                                                    \
    "WHEN to_timestamp($2::bigint / 1000.0) >= d.due_at THEN 'OVERDUE' "                      \
    "WHEN to_timestamp($2::bigint / 1000.0) >= d.warn_at THEN 'due soon' ELSE '' END, "       \
    "coalesce(d.met_at > d.due_at, false), d.escalated_at IS NOT NULL "                       \
    "FROM deadlines d WHERE d.case_id = $1 ORDER BY d.deadline_id"

#define SQL_SHOW_HISTORY                                                                      \
    "SELECT version, to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), "        \
    "actor, "                                                                                 \
    "action, coalesce(from_state, '-'), to_state, coalesce(reason, ''), details::text "       \
    "FROM case_history WHERE case_id = $1 ORDER BY version"

static void
s_line (const char *label, const char *value)
{
    if (value && *value)
        printf ("  %-10s %s\n", label, value);
}

static int
s_show (hcp_config_t *config, int argc, char **argv)
{
    int64_t case_id;
    if (argc != 3 || s_case_id (argv[2], &case_id) != 0) {
        fprintf (stderr, "Usage: hcpctl case show N\n");
        return 2;
    }
    hcp_db_t *db = hcpctl_connect (config);
    if (!db)
        return 1;
    char id[32], now[32];
    snprintf (id, sizeof id, "%" PRId64, case_id);
    snprintf (now, sizeof now, "%" PRId64, hcp_clock_now_ms ());
    const char *params[] = {id, now};
    int rc = 1;
    if (hcp_db_prepare (db, "case_show", SQL_SHOW) != 0
        || hcp_db_prepare (db, "case_show_deadlines", SQL_SHOW_DEADLINES) != 0
        || hcp_db_prepare (db, "case_show_history", SQL_SHOW_HISTORY) != 0) {
        fprintf (stderr, "hcpctl case show: %s\n", hcp_db_error (db));
        hcp_db_destroy (&db);
        return 1;
    }
    PGresult *res = hcp_db_run (db, "case_show", 1, params);
    if (!hcp_db_ok (db, res))
        fprintf (stderr, "hcpctl case show: %s\n", hcp_db_error (db));
    else if (PQntuples (res) == 0)
        fprintf (stderr, "hcpctl case show: there is no case %s\n", id);
    else {
        const char *state = PQgetvalue (res, 0, 1);
        const hcp_case_state_t *info = hcp_case_state_find (state);
        char allowed[256], text[1024];
        printf ("Case %s — %s (%s), version %s\n", id, state, info ? info->label : "?",
                PQgetvalue (res, 0, 2));
        snprintf (text, sizeof text, "%s, rated %s (rating day %s), %s",
                  PQgetvalue (res, 0, 3), PQgetvalue (res, 0, 4), PQgetvalue (res, 0, 30),
                  hcp_case_channel_name (atoi (PQgetvalue (res, 0, 5))));
        s_line ("rating", text);
        snprintf (text, sizeof text, "服务规范性 %s · 服务便捷性 %s · 服务准确性 %s",
                  hcp_case_grade_name (atoi (PQgetvalue (res, 0, 6))),
                  hcp_case_grade_name (atoi (PQgetvalue (res, 0, 7))),
                  hcp_case_grade_name (atoi (PQgetvalue (res, 0, 8))));
        s_line ("grades", text);
        s_line ("comment", PQgetvalue (res, 0, 9));
        snprintf (text, sizeof text, "%s %s", PQgetvalue (res, 0, 10),
                  PQgetvalue (res, 0, 11));
        s_line ("item", text);
        snprintf (text, sizeof text, "%s %s (contact %s %s)%s%s", PQgetvalue (res, 0, 12),
                  PQgetvalue (res, 0, 13), PQgetvalue (res, 0, 14), PQgetvalue (res, 0, 15),
                  strcmp (PQgetvalue (res, 0, 31), "0") ? ", transfers: " : "",
                  strcmp (PQgetvalue (res, 0, 31), "0") ? PQgetvalue (res, 0, 31) : "");
        s_line ("unit", text);
        s_line ("form", PQgetvalue (res, 0, 16));
        if (*PQgetvalue (res, 0, 17)) {
            snprintf (text, sizeof text, "%s; reached %s by %s", PQgetvalue (res, 0, 17),
                      PQgetvalue (res, 0, 18), PQgetvalue (res, 0, 19));
            s_line ("visit", text);
        }
        if (*PQgetvalue (res, 0, 20)) {
            snprintf (text, sizeof text, "%s: %s%s%s%s", PQgetvalue (res, 0, 20),
                      PQgetvalue (res, 0, 21), *PQgetvalue (res, 0, 22) ? " (due " : "",
                      PQgetvalue (res, 0, 22),
                      *PQgetvalue (res, 0, 22)
                          ? (PQgetvalue (res, 0, 23)[0] == 't' ? ", extended)" : ")")
                          : "");
            s_line ("response", text);
        }
        if (*PQgetvalue (res, 0, 24)) {
            snprintf (text, sizeof text, "%s: %s%s%s", PQgetvalue (res, 0, 24),
                      PQgetvalue (res, 0, 25), *PQgetvalue (res, 0, 26) ? " — " : "",
                      PQgetvalue (res, 0, 26));
            s_line ("appeal", text);
        }
        if (PQgetvalue (res, 0, 27)[0] == 'f')
            s_line ("rating", "NOT ADOPTED (appeal upheld): excluded from every statistic");
        s_line ("rectified", PQgetvalue (res, 0, 28));
        s_line ("closing", PQgetvalue (res, 0, 29));
        s_line ("next", hcp_case_allowed_actions (state, allowed, sizeof allowed));
        rc = 0;
    }
    PQclear (res);
    if (rc == 0) {
        res = hcp_db_run (db, "case_show_deadlines", 2, params);
        if (hcp_db_ok (db, res)) {
            printf ("\nDeadlines:\n");
            if (PQntuples (res) == 0)
                printf ("  (none)\n");
            for (int row = 0; row < PQntuples (res); row++) {
                char period[64];
                if (!strcmp (PQgetvalue (res, row, 3), "fixed"))
                    snprintf (period, sizeof period, "set by the unit");
                else
                    snprintf (period, sizeof period, "%s %s days after %s",
                              PQgetvalue (res, row, 2), PQgetvalue (res, row, 3),
                              PQgetvalue (res, row, 1));
                printf ("  %-16s due %s%s  %-9s %s%s%s%s%s\n", PQgetvalue (res, row, 0),
                        PQgetvalue (res, row, 4),
                        PQgetvalue (res, row, 6)[0] == 't' ? " (provisional)" : "",
                        PQgetvalue (res, row, 5), period,
                        *PQgetvalue (res, row, 7) ? ", met " : "", PQgetvalue (res, row, 7),
                        PQgetvalue (res, row, 9)[0] == 't' ? " (late)" : "",
                        *PQgetvalue (res, row, 8) ? "  " : "");
                if (*PQgetvalue (res, row, 8) || PQgetvalue (res, row, 10)[0] == 't')
                    printf ("  %16s %s%s\n", "", PQgetvalue (res, row, 8),
                            PQgetvalue (res, row, 10)[0] == 't' ? " escalated to the General "
                                                                  "Office"
                                                                : "");
            }
        }
        PQclear (res);
        res = hcp_db_run (db, "case_show_history", 1, params);
        if (hcp_db_ok (db, res)) {
            printf ("\nHistory:\n");
            for (int row = 0; row < PQntuples (res); row++) {
                printf ("  v%-3s %s  %-24s %-22s %s → %s\n", PQgetvalue (res, row, 0),
                        PQgetvalue (res, row, 1), PQgetvalue (res, row, 2),
                        PQgetvalue (res, row, 3), PQgetvalue (res, row, 4),
                        PQgetvalue (res, row, 5));
                if (*PQgetvalue (res, row, 6))
                    printf ("        reason: %s\n", PQgetvalue (res, row, 6));
                if (strcmp (PQgetvalue (res, row, 7), "{}") != 0)
                    printf ("        %s\n", PQgetvalue (res, row, 7));
            }
        }
        else
            rc = 1;
        PQclear (res);
    }
    hcp_db_destroy (&db);
    return rc;
}

static int
s_form (hcp_config_t *config, int argc, char **argv)
{
    option_t options[] = {{"--text", NULL, true},
                          {"--html", NULL, true},
                          {"-o", NULL, false},
                          {"--output", NULL, false},
                          {NULL, NULL, false}};
    const char *positionals[1];
    int count;
    int64_t case_id;
    if (s_parse (argc, argv, 2, options, positionals, &count, 1) != 0 || count != 1
        || s_case_id (positionals[0], &case_id) != 0) {
        fprintf (stderr, "Usage: hcpctl case form N [--text|--html] [-o FILE]\n");
        return 2;
    }
    if (s_opt (options, "--text") && s_opt (options, "--html")) {
        fprintf (stderr, "hcpctl case form: --text or --html, not both\n");
        return 2;
    }
    const char *path = s_opt (options, "-o") ? s_opt (options, "-o")
                                             : s_opt (options, "--output");
    bool html = s_opt (options, "--html") != NULL;
    //  -o form.html without --html: the extension decides.
    if (!html && !s_opt (options, "--text") && path && strlen (path) > 5
        && !strcmp (path + strlen (path) - 5, ".html"))
        html = true;
    hcp_db_t *db = hcpctl_connect (config);
    if (!db)
        return 1;
    char *error = NULL;
    hcp_case_form_t *form = hcp_case_form_load (db, case_id, &error);
    hcp_db_destroy (&db);
    if (!form) {
        fprintf (stderr, "hcpctl case form: %s\n", error);
        free (error);
        return 1;
    }
    char *text = html ? hcp_case_form_html (form) : hcp_case_form_text (form);
    hcp_case_form_destroy (&form);
    int rc = 0;
    if (path) {
        FILE *file = fopen (path, "w");
        if (!file || fputs (text, file) < 0 || fclose (file) != 0) {
            fprintf (stderr, "hcpctl case form: cannot write %s\n", path);
            rc = 1;
        }
        else
            fprintf (stderr, "form of case %" PRId64 " written to %s\n", case_id, path);
    }
    else
        fputs (text, stdout);
    free (text);
    return rc;
}

// ---------------------------------------------------------------------------
// Changing
// ---------------------------------------------------------------------------

//  Each mutating command: its sub-command word(s), the action, and how its
//  options map onto the command's fields.
typedef struct {
    const char *command;
    const char *variant; //  respond's and decide-appeal's second word, or NULL
    const char *action;
    const char *fields[5]; //  field names, each given as --<field>
} verb_t;

static const verb_t s_verbs[] = {
    {"visit", NULL, "visit", {"cause", "reached", "method", NULL}},
    {"file-form", NULL, "file_form", {"text", NULL}},
    {"assign", NULL, "assign", {"unit", NULL}},
    {"transfer", NULL, "transfer", {"unit", "reason", NULL}},
    {"respond", "rectified-now", "respond_rectified_now", {"text", NULL}},
    {"respond", "ledger", "respond_ledger", {"due", "text", NULL}},
    {"respond", "explained", "respond_explained", {"text", NULL}},
    {"appeal", NULL, "appeal", {"kind", "reason", NULL}},
    {"decide-appeal", "uphold", "uphold_appeal", {"reason", NULL}},
    {"decide-appeal", "reject", "reject_appeal", {"reason", NULL}},
    {"extend", NULL, "extend", {"due", "reason", NULL}},
    {"rectified", NULL, "rectified", {"text", NULL}},
    {"close", NULL, "close", {"text", NULL}},
    {NULL, NULL, NULL, {NULL}}};

static int
s_change (hcp_config_t *config, int argc, char **argv)
{
    const char *word = argv[1];
    const verb_t *verb = NULL;
    bool has_variants = false;
    for (const verb_t *v = s_verbs; v->command; v++)
        if (!strcmp (v->command, word))
            has_variants = v->variant != NULL;
    //  CASE first, then the variant word: "respond 12 ledger --due ...".
    option_t options[16] = {{"--actor", NULL, false},
                            {"--endpoint", NULL, false},
                            {"--expect-version", NULL, false},
                            {"--timeout-ms", NULL, false},
                            {"--retries", NULL, false}};
    int option_count = 5;
    const char *positionals[2];
    int count = 0;
    //  Every field option of the command word is accepted at parse time;
    //  the variant then decides which must be there.
    const char *names[] = {"--cause", "--reached", "--method", "--text",
                           "--unit",  "--reason",  "--due",    "--kind"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        options[option_count++] = (option_t){names[i], NULL, false};
    options[option_count] = (option_t){NULL, NULL, false};
    if (s_parse (argc, argv, 2, options, positionals, &count, has_variants ? 2 : 1) != 0)
        return 2;
    int64_t case_id;
    if (count < 1 || s_case_id (positionals[0], &case_id) != 0) {
        fprintf (stderr, "hcpctl case %s: which case? (hcpctl case --help)\n", word);
        return 2;
    }
    const char *variant = count > 1 ? positionals[1] : NULL;
    for (const verb_t *v = s_verbs; v->command && !verb; v++)
        if (!strcmp (v->command, word)
            && (!v->variant || (variant && !strcmp (v->variant, variant))))
            verb = v;
    if (!verb) {
        fprintf (stderr, "hcpctl case %s: say which: ", word);
        for (const verb_t *v = s_verbs; v->command; v++)
            if (!strcmp (v->command, word))
                fprintf (stderr, "%s ", v->variant);
        fprintf (stderr, "(got '%s')\n", variant ? variant : "");
        return 2;
    }
    const char *keys[8], *values[8];
    size_t field_count = 0;
    for (int i = 0; verb->fields[i]; i++) {
        char name[32];
        snprintf (name, sizeof name, "--%s", verb->fields[i]);
        const char *value = s_opt (options, name);
        if (value) {
            keys[field_count] = verb->fields[i];
            values[field_count++] = value;
        }
    }
    //  An option the action does not use is a mistake worth saying.
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!s_opt (options, names[i]))
            continue;
        bool used = false;
        for (int f = 0; verb->fields[f] && !used; f++)
            used = !strcmp (verb->fields[f], names[i] + 2);
        if (!used) {
            fprintf (
                stderr, "hcpctl case %s%s%s: option %s does not apply (hcpctl case --help)\n",
                word, verb->variant ? " " : "", verb->variant ? verb->variant : "", names[i]);
            return 2;
        }
    }
    //  Missing required fields are left to case-router, which names them.
    return s_send (config, options, verb->action, case_id, keys, values, field_count);
}

int
hcpctl_case (hcp_config_t *config, int argc, char **argv)
{
    if (argc < 2 || !strcmp (argv[1], "--help") || !strcmp (argv[1], "-h"))
        return s_usage (argc < 2 ? stderr : stdout);
    if (hcpctl_wants_help (argc, argv))
        return s_usage (stdout);
    const char *word = argv[1];
    if (!strcmp (word, "list"))
        return s_list (config, argc, argv);
    if (!strcmp (word, "show"))
        return s_show (config, argc, argv);
    if (!strcmp (word, "form"))
        return s_form (config, argc, argv);
    for (const verb_t *v = s_verbs; v->command; v++)
        if (!strcmp (v->command, word))
            return s_change (config, argc, argv);
    fprintf (stderr, "hcpctl case: unknown command '%s' (hcpctl case --help)\n", word);
    return 2;
}
