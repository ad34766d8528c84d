/*  case_store — see case_store.h. */
#include "case_store.h"

#include "case_form.h"
#include "case_rules.h"
#include "hcp/v1/case.pb-c.h"
#include "hcp/v1/ingest.pb-c.h"
#include "hcp_bus.h"
#include "hcp_calendar.h"
#include "hcp_deadline.h"
#include "hcp_log.h"
#include "hcp_uuid.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Longest text a field may carry (bytes). Long enough for a visit report,
//  short enough that a pasted file is refused rather than stored.
#define FIELD_MAX_BYTES 4000
//  A ledger deadline further away than this is most likely a typing error.
#define LEDGER_MAX_DAYS 365

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

struct _hcp_case_command_t {
    char *request_id;
    char *actor;
    char *action;
    int64_t case_id;
    int64_t expected_version;
    size_t field_count;
    char **keys;
    char **values;
};

static char *
s_strdup (const char *text)
{
    char *copy = strdup (text ? text : "");
    if (!copy)
        abort ();
    return copy;
}

hcp_case_command_t *
hcp_case_command_new (const char *request_id, const char *actor, const char *action,
                      int64_t case_id)
{
    hcp_case_command_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->request_id = s_strdup (request_id);
    self->actor = s_strdup (actor);
    self->action = s_strdup (action);
    self->case_id = case_id;
    return self;
}

void
hcp_case_command_destroy (hcp_case_command_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_case_command_t *self = *self_p;
    for (size_t i = 0; i < self->field_count; i++) {
        free (self->keys[i]);
        free (self->values[i]);
    }
    free (self->keys);
    free (self->values);
    free (self->request_id);
    free (self->actor);
    free (self->action);
    free (self);
    *self_p = NULL;
}

void
hcp_case_command_set (hcp_case_command_t *self, const char *key, const char *value)
{
    assert (self && key);
    for (size_t i = 0; i < self->field_count; i++)
        if (strcmp (self->keys[i], key) == 0) {
            free (self->values[i]);
            self->values[i] = s_strdup (value);
            return;
        }
    self->keys = realloc (self->keys, (self->field_count + 1) * sizeof *self->keys);
    self->values = realloc (self->values, (self->field_count + 1) * sizeof *self->values);
    if (!self->keys || !self->values)
        abort ();
    self->keys[self->field_count] = s_strdup (key);
    self->values[self->field_count] = s_strdup (value);
    self->field_count++;
}

void
hcp_case_command_expect_version (hcp_case_command_t *self, int64_t version)
{
    assert (self);
    self->expected_version = version;
}

const char *
hcp_case_command_request_id (const hcp_case_command_t *self)
{
    return self->request_id;
}

const char *
hcp_case_command_actor (const hcp_case_command_t *self)
{
    return self->actor;
}

const char *
hcp_case_command_action (const hcp_case_command_t *self)
{
    return self->action;
}

int64_t
hcp_case_command_case_id (const hcp_case_command_t *self)
{
    return self->case_id;
}

int64_t
hcp_case_command_expected_version (const hcp_case_command_t *self)
{
    return self->expected_version;
}

size_t
hcp_case_command_field_count (const hcp_case_command_t *self)
{
    return self->field_count;
}

const char *
hcp_case_command_field_key (const hcp_case_command_t *self, size_t index)
{
    return index < self->field_count ? self->keys[index] : NULL;
}

const char *
hcp_case_command_field_value (const hcp_case_command_t *self, size_t index)
{
    return index < self->field_count ? self->values[index] : NULL;
}

const char *
hcp_case_command_get (const hcp_case_command_t *self, const char *key)
{
    for (size_t i = 0; i < self->field_count; i++)
        if (strcmp (self->keys[i], key) == 0)
            return self->values[i];
    return NULL;
}

// ---------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------

//  The case of a bad rating; its rating day is the Asia/Shanghai civil date
//  of rated_at (Art. 21 counts from "the day of the rating").
#define SQL_OPEN                                                                              \
    "INSERT INTO cases (rating_id, state, item_code, unit_code, rating_day, opened_at, "      \
    "last_action, last_actor, last_at, last_details) "                                        \
    "SELECT r.rating_id, 'awaiting_visit', r.item_code, i.unit_code, "                        \
    "(r.rated_at AT TIME ZONE 'Asia/Shanghai')::date, to_timestamp($2::bigint / "             \
    "1000.0), 'open', $3, to_timestamp($2::bigint / 1000.0), "                                \
    "jsonb_build_object('rating_id', r.rating_id, 'rated_at', r.rated_at, "                   \
    "'origin', "                                                                              \
    "r.origin, 'channel', r.channel) "                                                        \
    "FROM ratings r JOIN service_items i ON i.item_code = r.item_code "                       \
    "WHERE r.rating_id = $1::uuid AND r.is_bad "                                              \
    "ON CONFLICT (rating_id) DO NOTHING "                                                     \
    "RETURNING case_id, rating_day - date '1970-01-01', coalesce(unit_code, "                 \
    "''), item_code, "                                                                        \
    "version"

//  Bad ratings without a case. ratings_bad (rated_at) WHERE is_bad keeps it
//  to the bad ratings of the period; the anti-join uses cases' unique index.
#define SQL_SWEEP                                                                             \
    "SELECT r.rating_id FROM ratings r WHERE r.is_bad AND r.rated_at >= "                     \
    "to_timestamp($1::bigint / 1000.0) AND NOT EXISTS (SELECT 1 FROM cases c WHERE "          \
    "c.rating_id = r.rating_id) "                                                             \
    "ORDER BY r.rated_at LIMIT $2"

#define SQL_LOCK                                                                              \
    "SELECT state, version, coalesce(unit_code, ''), item_code, "                             \
    "coalesce(ledger_due_on - date '1970-01-01', 0), coalesce(form_number, ''), "             \
    "rating_id::text FROM cases WHERE case_id = $1 FOR UPDATE"

#define SQL_UNIT_EXISTS "SELECT name FROM units WHERE unit_code = $1"

//  One counter row per year, advanced in the filing transaction: a
//  rollback gives the number back, so numbers are gapless.
#define SQL_FORM_NEXT                                                                         \
    "INSERT INTO form_counters (year, last_number) VALUES ($1, 1) "                           \
    "ON CONFLICT (year) DO UPDATE SET last_number = form_counters.last_number + 1 "           \
    "RETURNING last_number"

#define SQL_REQUEST_CLAIM                                                                     \
    "INSERT INTO case_requests (request_id, case_id, action, actor, ok, at) "                 \
    "VALUES ($1, $2, $3, $4, false, to_timestamp($5::bigint / 1000.0)) ON CONFLICT "          \
    "(request_id) DO NOTHING "                                                                \
    "RETURNING 1"

#define SQL_REQUEST_DONE                                                                      \
    "UPDATE case_requests SET ok = true, message = $2, state = $3, version = $4 "             \
    "WHERE request_id = $1"

#define SQL_REQUEST_REFUSED                                                                   \
    "INSERT INTO case_requests (request_id, case_id, action, actor, ok, code, message, "      \
    "state, version, at) VALUES ($1, $2, $3, $4, false, $5, $6, nullif($7, ''), "             \
    "$8, to_timestamp($9::bigint / 1000.0)) ON CONFLICT (request_id) DO NOTHING "             \
    "RETURNING 1"

#define SQL_REQUEST_GET                                                                       \
    "SELECT q.ok, q.code, q.message, coalesce(q.state, ''), coalesce(q.version, 0), "         \
    "coalesce(q.case_id, 0), coalesce(c.form_number, ''), q.action, q.case_id "               \
    "FROM case_requests q LEFT JOIN cases c ON c.case_id = q.case_id WHERE "                  \
    "q.request_id = $1"

//  Every transition: $1 case, $2 new state, $3 action, $4 actor, $5 time
//  (ms), $6 reason, $7 details (JSON), $8 the version read under FOR UPDATE;
//  the action's own columns from $9.
#define SQL_SET                                                                               \
    "UPDATE cases SET state = $2, version = version + 1, last_action = $3, last_actor "       \
    "= $4, "                                                                                  \
    "last_at = to_timestamp($5::bigint / 1000.0), last_reason = $6, last_details = "          \
    "$7::jsonb"
#define SQL_WHERE                                                                             \
    " WHERE case_id = $1 AND version = $8 "                                                   \
    "RETURNING version, coalesce(form_number, ''), coalesce(unit_code, ''), item_code, "      \
    "rating_id::text"

typedef struct {
    const char *action;
    const char *statement;
    const char *sql;
    const char *required[4]; //  fields that must be given (NULL-ended)
    const char *optional[3]; //  fields that may be given (NULL-ended)
} action_spec_t;

static const action_spec_t s_actions[] = {
    {"visit",
     "case_visit",
     SQL_SET ", visited_at = to_timestamp($5::bigint / 1000.0), visit_cause = $9, "
             "visit_reached = $10, "
             "visit_method = $11" SQL_WHERE,
     {"cause", "reached", "method", NULL},
     {NULL}},
    {"file_form",
     "case_file_form",
     SQL_SET ", form_number = $9, form_filed_at = to_timestamp($5::bigint / 1000.0)" SQL_WHERE,
     {NULL},
     {"text", NULL}},
    {"assign",
     "case_assign",
     SQL_SET ", unit_code = $9, assigned_at = to_timestamp($5::bigint / 1000.0)" SQL_WHERE,
     {NULL},
     {"unit", NULL}},
    {"transfer",
     "case_transfer",
     SQL_SET ", unit_code = $9, assigned_at = to_timestamp($5::bigint / 1000.0), "
             "transfers = transfers + 1" SQL_WHERE,
     {"unit", "reason", NULL},
     {NULL}},
    {"respond_rectified_now",
     "case_respond",
     SQL_SET ", response = $9, response_text = $10, responded_at = "
             "to_timestamp($5::bigint / 1000.0), ledger_due_on = $11::date" SQL_WHERE,
     {"text", NULL},
     {NULL}},
    {"respond_ledger", "case_respond", NULL, {"text", "due", NULL}, {NULL}},
    {"respond_explained", "case_respond", NULL, {"text", NULL}, {NULL}},
    {"appeal",
     "case_appeal",
     SQL_SET ", appealed_at = to_timestamp($5::bigint / 1000.0), appeal_kind = $9, "
             "appeal_text = $10" SQL_WHERE,
     {"kind", "reason", NULL},
     {NULL}},
    {"uphold_appeal",
     "case_uphold",
     SQL_SET ", appeal_decision = 'upheld', appeal_decided_at = to_timestamp($5::bigint "
             "/ 1000.0), rating_adopted = false" SQL_WHERE,
     {"reason", NULL},
     {NULL}},
    {"reject_appeal",
     "case_reject",
     SQL_SET ", appeal_decision = 'rejected', appeal_decided_at = "
             "to_timestamp($5::bigint / 1000.0)" SQL_WHERE,
     {"reason", NULL},
     {NULL}},
    {"extend",
     "case_extend",
     SQL_SET ", ledger_due_on = $9::date, ledger_extended = true" SQL_WHERE,
     {"due", "reason", NULL},
     {NULL}},
    {"rectified",
     "case_rectified",
     SQL_SET
     ", rectified_at = to_timestamp($5::bigint / 1000.0), rectified_text = $9" SQL_WHERE,
     {"text", NULL},
     {NULL}},
    {"close",
     "case_close",
     SQL_SET ", closed_at = to_timestamp($5::bigint / 1000.0), close_note = $9" SQL_WHERE,
     {NULL},
     {"text", NULL}},
};

#define ACTION_COUNT (sizeof s_actions / sizeof s_actions[0])

static const action_spec_t *
s_action_spec (const char *action)
{
    for (size_t i = 0; i < ACTION_COUNT; i++)
        if (strcmp (s_actions[i].action, action) == 0)
            return &s_actions[i];
    return NULL;
}

int
hcp_case_store_prepare (hcp_db_t *db)
{
    assert (db);
    int rc = 0;
    rc |= hcp_db_prepare (db, "case_open", SQL_OPEN);
    rc |= hcp_db_prepare (db, "case_sweep", SQL_SWEEP);
    rc |= hcp_db_prepare (db, "case_lock", SQL_LOCK);
    rc |= hcp_db_prepare (db, "case_unit_exists", SQL_UNIT_EXISTS);
    rc |= hcp_db_prepare (db, "case_form_next", SQL_FORM_NEXT);
    rc |= hcp_db_prepare (db, "case_request_claim", SQL_REQUEST_CLAIM);
    rc |= hcp_db_prepare (db, "case_request_done", SQL_REQUEST_DONE);
    rc |= hcp_db_prepare (db, "case_request_refused", SQL_REQUEST_REFUSED);
    rc |= hcp_db_prepare (db, "case_request_get", SQL_REQUEST_GET);
    for (size_t i = 0; i < ACTION_COUNT; i++)
        if (s_actions[i].sql)
            rc |= hcp_db_prepare (db, s_actions[i].statement, s_actions[i].sql);
    return rc ? -1 : 0;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

//  JSON text of the command's fields plus extra pairs (NULL-ended key,
//  value list). Strings are escaped per RFC 8259; the result is data, passed
//  as a parameter, never spliced into SQL.
static void
s_json_string (FILE *out, const char *text)
{
    fputc ('"', out);
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf (out, "\\%c", *p);
        else if (*p == '\n')
            fputs ("\\n", out);
        else if (*p == '\r')
            fputs ("\\r", out);
        else if (*p == '\t')
            fputs ("\\t", out);
        else if (*p < 0x20)
            fprintf (out, "\\u%04x", *p);
        else
            fputc (*p, out);
    }
    fputc ('"', out);
}

static char *
s_details_json (const hcp_case_command_t *command, ...)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        abort ();
    fputc ('{', out);
    int first = 1;
    for (size_t i = 0; i < command->field_count; i++) {
        if (!first)
            fputc (',', out);
        first = 0;
        s_json_string (out, command->keys[i]);
        fputc (':', out);
        s_json_string (out, command->values[i]);
    }
    va_list args;
    va_start (args, command);
    const char *key;
    while ((key = va_arg (args, const char *)) != NULL) {
        const char *value = va_arg (args, const char *);
        if (!value)
            continue;
        if (!first)
            fputc (',', out);
        first = 0;
        s_json_string (out, key);
        fputc (':', out);
        s_json_string (out, value);
    }
    va_end (args);
    fputc ('}', out);
    fclose (out);
    return text;
}

//  True if text is well-formed UTF-8 (no overlongs, no surrogates).
static bool
s_utf8_valid (const char *text)
{
    const unsigned char *p = (const unsigned char *) text;
    while (*p) {
        unsigned char c = *p;
        int n = c < 0x80         ? 0
                : (c >> 5) == 6  ? 1
                : (c >> 4) == 14 ? 2
                : (c >> 3) == 30 ? 3
                                 : -1;
        if (n < 0 || (n == 1 && c < 0xc2) || (n == 3 && c > 0xf4))
            return false;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        if (n == 2 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)))
            return false;
        if (n == 3 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f)))
            return false;
        p += n + 1;
    }
    return true;
}

static bool
s_blank (const char *text)
{
    if (!text)
        return true;
    for (; *text; text++)
        if (*text != ' ' && *text != '\t' && *text != '\n' && *text != '\r')
            return false;
    return true;
}

static void s_refuse (hcp_case_reply_t *reply, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_refuse (hcp_case_reply_t *reply, const char *code, const char *fmt, ...)
{
    reply->status = HCP_CASE_REFUSED;
    snprintf (reply->code, sizeof reply->code, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (reply->message, sizeof reply->message, fmt, args);
    va_end (args);
}

static void
s_unavailable (hcp_case_reply_t *reply, hcp_db_t *db)
{
    reply->status = HCP_CASE_UNAVAILABLE;
    snprintf (reply->code, sizeof reply->code, "unavailable");
    snprintf (reply->message, sizeof reply->message,
              "the case database is unreachable (%s); retry with the same request id",
              hcp_db_error (db));
}

static void
s_rollback (hcp_db_t *db)
{
    if (!hcp_db_lost (db))
        hcp_db_exec (db, "ROLLBACK");
}

static void
s_i64 (int64_t value, char *buf, size_t size)
{
    snprintf (buf, size, "%" PRId64, value);
}

//  Writes the event case.<action> (case.opened for the opening).
static int
s_emit (hcp_db_t *db, int64_t case_id, const char *rating_id, const char *action,
        const char *from_state, const char *to_state, int64_t version, const char *actor,
        int64_t at_ms, const char *unit_code, const char *item_code, const char *form_number)
{
    Hcp__V1__CaseEvent event = HCP__V1__CASE_EVENT__INIT;
    event.case_id = case_id;
    event.rating_id = (char *) rating_id;
    event.action = (char *) action;
    event.from_state = (char *) (from_state ? from_state : "");
    event.to_state = (char *) to_state;
    event.version = version;
    event.actor = (char *) actor;
    event.at_ms = at_ms;
    event.unit_code = (char *) (unit_code ? unit_code : "");
    event.item_code = (char *) (item_code ? item_code : "");
    event.form_number = (char *) (form_number ? form_number : "");
    size_t size = hcp__v1__case_event__get_packed_size (&event);
    uint8_t *buffer = malloc (size ? size : 1);
    if (!buffer)
        abort ();
    hcp__v1__case_event__pack (&event, buffer);
    char type[64], key[32];
    snprintf (type, sizeof type, "case.%s", strcmp (action, "open") == 0 ? "opened" : action);
    s_i64 (case_id, key, sizeof key);
    int rc = hcp_event_emit (db, type, key, buffer, size);
    free (buffer);
    return rc;
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

int
hcp_case_open (hcp_db_t *db, const char *rating_id, int64_t now_ms, const char *actor,
               int64_t *case_id_p)
{
    assert (db && actor);
    if (!rating_id || !hcp_uuid_valid (rating_id))
        return 0; //  not a rating id: no rating, nothing to open
    char now[32];
    s_i64 (now_ms, now, sizeof now);
    const char *params[] = {rating_id, now, actor};
    PGresult *res = hcp_db_run (db, "case_open", 3, params);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        return -1;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        return 0;
    }
    int64_t case_id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    hcp_date_t rating_day = (hcp_date_t) atoi (PQgetvalue (res, 0, 1));
    char *unit_code = strdup (PQgetvalue (res, 0, 2));
    char *item_code = strdup (PQgetvalue (res, 0, 3));
    int64_t version = strtoll (PQgetvalue (res, 0, 4), NULL, 10);
    PQclear (res);
    //  Art. 21: the form is due within 5 working days from the rating day.
    int rc = hcp_deadline_open (db, case_id, "form", rating_day,
                                HCP_DEADLINE_FORM_WORKING_DAYS, "working", NULL);
    if (rc == 0)
        rc = s_emit (db, case_id, rating_id, "open", NULL, "awaiting_visit", version, actor,
                     now_ms, unit_code, item_code, NULL);
    free (unit_code);
    free (item_code);
    if (rc != 0)
        return -1;
    if (case_id_p)
        *case_id_p = case_id;
    return 1;
}

int
hcp_case_on_event (hcp_db_t *db, uint64_t seq, const char *type, const char *key,
                   int64_t now_ms)
{
    assert (db && type && key);
    if (hcp_db_exec (db, "BEGIN") != 0)
        return -1;
    int rc = hcp_offset_claim (db, HCP_CASE_CONSUMER, seq);
    //  rating.stored opens cases; rating.defaulted is never bad (基本满意)
    //  but costs one indexed lookup to be sure.
    if (rc == 1 && strncmp (type, "rating.", 7) == 0)
        rc = hcp_case_open (db, key, now_ms, HCP_CASE_CONSUMER, NULL);
    else if (rc == 1)
        rc = 0;
    if (rc < 0 || hcp_db_exec (db, "COMMIT") != 0) {
        s_rollback (db);
        return -1;
    }
    return rc;
}

//  False when the payload is a Rating of this id with no grade >= 4: it
//  cannot open a case. True when it may (or when the payload says nothing:
//  then the database decides).
static bool
s_may_be_bad (const hcp_event_t *event)
{
    if (!event->payload || event->payload_size == 0)
        return true;
    Hcp__V1__Rating *rating = hcp__v1__rating__unpack (NULL, event->payload_size,
                                                       event->payload);
    if (!rating)
        return true;
    bool may = strcmp (rating->rating_id, event->key) != 0 || rating->standardization >= 4
               || rating->convenience >= 4 || rating->accuracy >= 4;
    hcp__v1__rating__free_unpacked (rating, NULL);
    return may;
}

//  Begins a transaction for opening cases from events or notifications,
//  whose commit does not wait for the disk flush: if PostgreSQL crashes
//  before it, the cases, their events and the offset are lost together and
//  are redone from the stored offset (or by the start-up sweep). Nobody has
//  been told anything meanwhile: the relay's own synchronous commit that
//  publishes case.opened flushes the WAL up to and including this one. It
//  takes a disk flush off the path from a bad rating to its case. Staff
//  commands (hcp_case_execute) keep synchronous commits: their reply
//  promises that the action is stored. Returns 0, or -1 (rolled back).
static int
s_begin_unflushed (hcp_db_t *db)
{
    if (hcp_db_exec (db, "BEGIN") != 0
        || hcp_db_exec (db, "SET LOCAL synchronous_commit = off") != 0) {
        s_rollback (db);
        return -1;
    }
    return 0;
}

int
hcp_case_on_events (hcp_db_t *db, hcp_event_t *const *events, size_t count, int64_t now_ms)
{
    assert (db && (events || count == 0));
    if (count == 0)
        return 0;
    if (s_begin_unflushed (db) != 0)
        return -1;
    int opened = 0;
    int rc = hcp_offset_claim (db, HCP_CASE_CONSUMER, events[count - 1]->seq);
    for (size_t i = 0; rc == 1 && i < count; i++) {
        const hcp_event_t *event = events[i];
        if (strncmp (event->type, "rating.", 7) != 0 || !s_may_be_bad (event))
            continue;
        int one = hcp_case_open (db, event->key, now_ms, HCP_CASE_CONSUMER, NULL);
        if (one < 0)
            rc = -1;
        else
            opened += one;
    }
    if (rc < 0 || hcp_db_exec (db, "COMMIT") != 0) {
        s_rollback (db);
        return -1;
    }
    return opened;
}

int
hcp_case_open_listed (hcp_db_t *db, const char *ids, int64_t now_ms, const char *actor)
{
    assert (db && ids && actor);
    if (!*ids)
        return 0;
    if (s_begin_unflushed (db) != 0)
        return -1;
    int opened = 0;
    const char *start = ids;
    while (*start) {
        size_t len = strcspn (start, ",");
        char rating_id[HCP_UUID_STR_LEN];
        if (len == HCP_UUID_STR_LEN - 1) {
            memcpy (rating_id, start, len);
            rating_id[len] = 0;
            //  hcp_case_open checks the id and that the rating is bad.
            int one = hcp_case_open (db, rating_id, now_ms, actor, NULL);
            if (one < 0) {
                s_rollback (db);
                return -1;
            }
            opened += one;
        }
        start += len;
        if (*start == ',')
            start++;
    }
    if (hcp_db_exec (db, "COMMIT") != 0) {
        s_rollback (db);
        return -1;
    }
    return opened;
}

int
hcp_case_sweep (hcp_db_t *db, int64_t since_ms, int limit, int64_t now_ms, const char *actor)
{
    assert (db && actor && limit > 0);
    char since[32], count[16];
    s_i64 (since_ms, since, sizeof since);
    snprintf (count, sizeof count, "%d", limit);
    const char *params[] = {since, count};
    PGresult *res = hcp_db_run (db, "case_sweep", 2, params);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        return -1;
    }
    int opened = 0;
    for (int row = 0; row < PQntuples (res); row++) {
        const char *rating_id = PQgetvalue (res, row, 0);
        int64_t case_id = 0;
        if (hcp_db_exec (db, "BEGIN") != 0) {
            opened = -1;
            break;
        }
        int rc = hcp_case_open (db, rating_id, now_ms, actor, &case_id);
        if (rc < 0 || hcp_db_exec (db, "COMMIT") != 0) {
            hcp_warn ("sweep: cannot open the case of rating %s: %s", rating_id,
                      hcp_db_error (db));
            s_rollback (db);
            opened = -1;
            break;
        }
        if (rc == 1) {
            hcp_log_kv (HCP_LOG_INFO, "case opened by the sweep", "rating_id", rating_id,
                        NULL);
            opened++;
        }
    }
    PQclear (res);
    return opened;
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

typedef enum { STEP_DONE, STEP_REFUSED, STEP_RETRY, STEP_UNAVAILABLE } step_t;

typedef struct {
    char state[32];
    int64_t version;
    char unit_code[72];
    char item_code[72];
    hcp_date_t ledger_due; //  0 when none
    char form_number[16];
    char rating_id[40];
} case_row_t;

//  Classifies a failed statement: lost connection, a retryable conflict,
//  the trigger's refusal, or an unexpected error (a bug or a schema
//  problem: logged, refused, not stored).
static step_t
s_db_failed (hcp_db_t *db, hcp_case_reply_t *reply, const char *what)
{
    const char *state = hcp_db_sqlstate (db);
    if (hcp_db_lost (db)) {
        s_unavailable (reply, db);
        return STEP_UNAVAILABLE;
    }
    if (!strcmp (state, "40001") || !strcmp (state, "40P01"))
        return STEP_RETRY;
    if (!strcmp (state, "HC001"))
        s_refuse (reply, "illegal_transition", "%s", hcp_db_error (db));
    else if (!strcmp (state, "HC002"))
        s_refuse (reply, "version_conflict", "%s", hcp_db_error (db));
    else if (!strcmp (state, "HC003"))
        s_refuse (reply, "invalid_field", "%s", hcp_db_error (db));
    else {
        hcp_log_kv (HCP_LOG_ERROR, "case command failed in the database", "step", what,
                    "sqlstate", state, "error", hcp_db_error (db), NULL);
        s_refuse (reply, "internal_error", "%s failed: %s", what, hcp_db_error (db));
    }
    return STEP_REFUSED;
}

//  Checks the fields of a command against its action: required ones
//  present and not blank, no unknown ones, text valid UTF-8 and not too
//  long. Returns 0, or -1 with the refusal in reply.
static int
s_check_fields (const hcp_case_command_t *command, const action_spec_t *spec,
                hcp_case_reply_t *reply)
{
    for (int i = 0; spec->required[i]; i++)
        if (s_blank (hcp_case_command_get (command, spec->required[i]))) {
            s_refuse (reply, "missing_field", "action %s needs field '%s'", spec->action,
                      spec->required[i]);
            return -1;
        }
    for (size_t f = 0; f < command->field_count; f++) {
        const char *key = command->keys[f];
        bool known = false;
        for (int i = 0; spec->required[i] && !known; i++)
            known = strcmp (spec->required[i], key) == 0;
        for (int i = 0; spec->optional[i] && !known; i++)
            known = strcmp (spec->optional[i], key) == 0;
        if (!known) {
            char takes[128] = "";
            for (int i = 0; spec->required[i]; i++)
                snprintf (takes + strlen (takes), sizeof takes - strlen (takes), "%s%s",
                          *takes ? ", " : "", spec->required[i]);
            for (int i = 0; spec->optional[i]; i++)
                snprintf (takes + strlen (takes), sizeof takes - strlen (takes), "%s[%s]",
                          *takes ? ", " : "", spec->optional[i]);
            s_refuse (reply, "invalid_field",
                      "action %s does not take field '%s' (it takes: %s)", spec->action, key,
                      *takes ? takes : "no fields");
            return -1;
        }
        const char *value = command->values[f];
        if (strlen (value) > FIELD_MAX_BYTES || !s_utf8_valid (value)) {
            s_refuse (reply, "invalid_field",
                      "field '%s' must be UTF-8 text of at most %d bytes", key,
                      FIELD_MAX_BYTES);
            return -1;
        }
    }
    return 0;
}

//  Reads a YYYY-MM-DD field into *date, or refuses.
static int
s_date_field (const hcp_case_command_t *command, const char *key, hcp_date_t *date,
              hcp_case_reply_t *reply)
{
    const char *text = hcp_case_command_get (command, key);
    if (!text || hcp_date_parse (text, date) != 0) {
        s_refuse (reply, "invalid_field", "field '%s' must be a date YYYY-MM-DD (got '%s')",
                  key, text ? text : "");
        return -1;
    }
    return 0;
}

//  The deadlines a transition meets, opens, moves or cancels (hcp_deadline,
//  in this transaction). today is the business date of the action.
static int
s_deadlines (hcp_db_t *db, const char *action, int64_t case_id, int64_t now_ms,
             hcp_date_t today, hcp_date_t due)
{
    if (!strcmp (action, "file_form")) //  Art. 21: the form reached the General Office
        return hcp_deadline_meet (db, case_id, "form", now_ms);
    if (!strcmp (action, "assign")) //  Art. 23: 10 working days from receiving the form
        return hcp_deadline_open (db, case_id, "answer", today,
                                  HCP_DEADLINE_ANSWER_WORKING_DAYS, "working", NULL);
    if (!strcmp (action, "transfer")) //  the new unit receives the form today
        return hcp_deadline_cancel (db, case_id, "answer", now_ms)
               || hcp_deadline_open (db, case_id, "answer", today,
                                     HCP_DEADLINE_ANSWER_WORKING_DAYS, "working", NULL);
    if (!strcmp (action, "respond_rectified_now") || !strcmp (action, "respond_explained"))
        return hcp_deadline_meet (db, case_id, "answer", now_ms);
    if (!strcmp (action, "respond_ledger")) //  Art. 22: the deadline the unit set
        return hcp_deadline_meet (db, case_id, "answer", now_ms)
               || hcp_deadline_open (db, case_id, "ledger", due, 0, "fixed", NULL);
    if (!strcmp (action, "appeal")) //  the appeal is the unit's answer in time (Art. 23)
        return hcp_deadline_meet (db, case_id, "answer", now_ms)
               || hcp_deadline_open (db, case_id, "appeal_decision", today,
                                     HCP_DEADLINE_APPEAL_WORKING_DAYS, "working", NULL);
    if (!strcmp (action, "uphold_appeal"))
        return hcp_deadline_meet (db, case_id, "appeal_decision", now_ms);
    if (!strcmp (action, "reject_appeal")) //  the unit answers within 10 working days
        return hcp_deadline_meet (db, case_id, "appeal_decision", now_ms)
               || hcp_deadline_open (db, case_id, "answer", today,
                                     HCP_DEADLINE_ANSWER_WORKING_DAYS, "working", NULL);
    if (!strcmp (action, "extend"))
        return hcp_deadline_extend (db, case_id, "ledger", due);
    if (!strcmp (action, "rectified"))
        return hcp_deadline_meet (db, case_id, "ledger", now_ms);
    if (!strcmp (action,
                 "close")) //  nothing should be open; if anything is, it ends here
        return hcp_deadline_cancel (db, case_id, NULL, now_ms);
    return 0;
}

//  Reads the stored answer of a request id into reply. Returns 0, -1 when
//  there is none (or on a database error, with reply set unavailable).
static int
s_replay (hcp_db_t *db, const char *request_id, hcp_case_reply_t *reply)
{
    const char *params[] = {request_id};
    PGresult *res = hcp_db_run (db, "case_request_get", 1, params);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        s_unavailable (reply, db);
        return -1;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        return -1;
    }
    memset (reply, 0, sizeof *reply);
    reply->status = PQgetvalue (res, 0, 0)[0] == 't' ? HCP_CASE_OK : HCP_CASE_REFUSED;
    snprintf (reply->code, sizeof reply->code, "%s", PQgetvalue (res, 0, 1));
    snprintf (reply->message, sizeof reply->message, "%s", PQgetvalue (res, 0, 2));
    snprintf (reply->state, sizeof reply->state, "%s", PQgetvalue (res, 0, 3));
    reply->version = strtoll (PQgetvalue (res, 0, 4), NULL, 10);
    reply->case_id = strtoll (PQgetvalue (res, 0, 5), NULL, 10);
    snprintf (reply->form_number, sizeof reply->form_number, "%s", PQgetvalue (res, 0, 6));
    reply->replayed = true;
    PQclear (res);
    return 0;
}

//  Stores a refusal under the request id (autocommit), so that a retry gets
//  the same answer; if another answer is already stored (a concurrent
//  retry won), that one is returned instead.
static void
s_store_refusal (hcp_db_t *db, const hcp_case_command_t *command, int64_t now_ms,
                 hcp_case_reply_t *reply)
{
    char case_id[32], version[32], at[32];
    s_i64 (command->case_id, case_id, sizeof case_id);
    s_i64 (reply->version, version, sizeof version);
    s_i64 (now_ms, at, sizeof at);
    const char *params[] = {command->request_id,
                            case_id,
                            command->action,
                            command->actor,
                            reply->code,
                            reply->message,
                            reply->state,
                            reply->version ? version : NULL,
                            at};
    PGresult *res = hcp_db_run (db, "case_request_refused", 9, params);
    bool ok = hcp_db_ok (db, res);
    bool inserted = ok && PQntuples (res) == 1;
    PQclear (res);
    if (!ok)
        hcp_warn ("cannot store the refusal of request %s: %s", command->request_id,
                  hcp_db_error (db));
    else if (!inserted)
        s_replay (db, command->request_id, reply);
}

static step_t
s_execute_once (hcp_db_t *db, const hcp_case_command_t *command, int64_t now_ms,
                hcp_case_reply_t *reply)
{
    const action_spec_t *spec = s_action_spec (command->action);
    const char *action = command->action;
    char case_id[32], now[32];
    s_i64 (command->case_id, case_id, sizeof case_id);
    s_i64 (now_ms, now, sizeof now);
    hcp_date_t today = hcp_date_from_ms (now_ms);

    if (hcp_db_exec (db, "BEGIN") != 0) {
        s_unavailable (reply, db);
        return STEP_UNAVAILABLE;
    }
    //  1. The request id: a second answer for it is never produced. An
    //  identical request in flight elsewhere makes this INSERT wait for its
    //  commit, then find the row.
    const char *claim[] = {command->request_id, case_id, action, command->actor, now};
    PGresult *res = hcp_db_run (db, "case_request_claim", 5, claim);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        step_t step = s_db_failed (db, reply, "storing the request id");
        s_rollback (db);
        return step;
    }
    bool claimed = PQntuples (res) == 1;
    PQclear (res);
    if (!claimed) {
        s_rollback (db);
        if (s_replay (db, command->request_id, reply) != 0
            && reply->status != HCP_CASE_UNAVAILABLE)
            return STEP_RETRY; //  stored, then gone: cannot happen (append-mostly); try
                               //  again
        return reply->status == HCP_CASE_UNAVAILABLE ? STEP_UNAVAILABLE : STEP_DONE;
    }

    //  2. The case, locked: concurrent commands on one case queue here.
    const char *lock[] = {case_id};
    res = hcp_db_run (db, "case_lock", 1, lock);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        step_t step = s_db_failed (db, reply, "reading the case");
        s_rollback (db);
        return step;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        s_rollback (db);
        s_refuse (reply, "not_found", "there is no case %s", case_id);
        return STEP_REFUSED;
    }
    case_row_t row;
    memset (&row, 0, sizeof row);
    snprintf (row.state, sizeof row.state, "%s", PQgetvalue (res, 0, 0));
    row.version = strtoll (PQgetvalue (res, 0, 1), NULL, 10);
    snprintf (row.unit_code, sizeof row.unit_code, "%s", PQgetvalue (res, 0, 2));
    snprintf (row.item_code, sizeof row.item_code, "%s", PQgetvalue (res, 0, 3));
    row.ledger_due = (hcp_date_t) atoi (PQgetvalue (res, 0, 4));
    snprintf (row.form_number, sizeof row.form_number, "%s", PQgetvalue (res, 0, 5));
    snprintf (row.rating_id, sizeof row.rating_id, "%s", PQgetvalue (res, 0, 6));
    PQclear (res);
    snprintf (reply->state, sizeof reply->state, "%s", row.state);
    reply->version = row.version;
    snprintf (reply->form_number, sizeof reply->form_number, "%s", row.form_number);

    //  3. The rules: the version the client saw, the transition, the fields.
    if (command->expected_version && command->expected_version != row.version) {
        s_rollback (db);
        s_refuse (reply, "version_conflict",
                  "case %s changed since you read it (version %" PRId64
                  " now, you expected %" PRId64 "; state %s): read it again",
                  case_id, row.version, command->expected_version, row.state);
        return STEP_REFUSED;
    }
    const hcp_case_rule_t *rule = hcp_case_rule_find (row.state, action);
    if (!rule) {
        s_rollback (db);
        hcp_case_allowed_actions (row.state, reply->allowed, sizeof reply->allowed);
        const hcp_case_state_t *state = hcp_case_state_find (row.state);
        s_refuse (reply, "illegal_transition",
                  "case %s is in state %s (%s); action %s is not allowed there. Allowed: %s",
                  case_id, row.state, state ? state->label : "?", action, reply->allowed);
        return STEP_REFUSED;
    }
    if (s_check_fields (command, spec, reply) != 0) {
        s_rollback (db);
        return STEP_REFUSED;
    }

    //  4. The action's own values.
    const char *reason = hcp_case_command_get (command, "reason");
    const char *text = hcp_case_command_get (command, "text");
    char form_number[HCP_CASE_FORM_NUMBER_LEN] = "";
    char unit[72] = "";
    char due_text[11] = "";
    hcp_date_t due = 0;
    if (!strcmp (action, "assign") || !strcmp (action, "transfer")) {
        const char *given = hcp_case_command_get (command, "unit");
        //  谁办理、谁负责 (Art. 20): by default the unit that handles the item.
        snprintf (unit, sizeof unit, "%s", given ? given : row.unit_code);
        if (!strcmp (action, "transfer") && !strcmp (unit, row.unit_code)) {
            s_rollback (db);
            s_refuse (reply, "invalid_field",
                      "case %s is already with unit %s: transfer to "
                      "another unit",
                      case_id, unit);
            return STEP_REFUSED;
        }
        const char *unit_params[] = {unit};
        res = hcp_db_run (db, "case_unit_exists", 1, unit_params);
        if (!hcp_db_ok (db, res)) {
            PQclear (res);
            step_t step = s_db_failed (db, reply, "reading the unit");
            s_rollback (db);
            return step;
        }
        bool exists = PQntuples (res) == 1;
        PQclear (res);
        if (!exists) {
            s_rollback (db);
            s_refuse (reply, "invalid_field",
                      "unit '%s' is not in the catalog (hcpctl catalog "
                      "list shows the units)",
                      unit);
            return STEP_REFUSED;
        }
    }
    if (!strcmp (action, "respond_ledger") || !strcmp (action, "extend")) {
        if (s_date_field (command, "due", &due, reply) != 0) {
            s_rollback (db);
            return STEP_REFUSED;
        }
        hcp_date_format (due, due_text);
        char today_text[11], limit_text[11];
        hcp_date_format (today, today_text);
        if (!strcmp (action, "respond_ledger")) {
            if (due <= today || due > today + LEDGER_MAX_DAYS) {
                hcp_date_format (today + LEDGER_MAX_DAYS, limit_text);
                s_rollback (db);
                s_refuse (reply, "invalid_field",
                          "ledger deadline %s must be after today (%s) and at the latest %s",
                          due_text, today_text, limit_text);
                return STEP_REFUSED;
            }
        }
        else {
            char current[11];
            hcp_date_format (row.ledger_due, current);
            if (due <= row.ledger_due || due <= today || due > today + LEDGER_MAX_DAYS) {
                hcp_date_format (today + LEDGER_MAX_DAYS, limit_text);
                s_rollback (db);
                s_refuse (reply, "invalid_field",
                          "the extended deadline %s must be after the current one (%s) and "
                          "today (%s), and at the latest %s",
                          due_text, current, today_text, limit_text);
                return STEP_REFUSED;
            }
        }
    }
    if (!strcmp (action, "appeal")) {
        const char *kind = hcp_case_command_get (command, "kind");
        if (strcmp (kind, "mistaken") != 0 && strcmp (kind, "malicious") != 0) {
            s_rollback (db);
            s_refuse (reply, "invalid_field",
                      "field 'kind' must be mistaken (误评) or malicious (恶意差评), not '%s'",
                      kind);
            return STEP_REFUSED;
        }
    }
    if (!strcmp (action, "file_form")) {
        //  The number of the year of filing, in this transaction: gapless.
        char year[8];
        snprintf (year, sizeof year, "%d", hcp_date_year (today));
        const char *year_params[] = {year};
        res = hcp_db_run (db, "case_form_next", 1, year_params);
        if (!hcp_db_ok (db, res)) {
            PQclear (res);
            step_t step = s_db_failed (db, reply, "numbering the form");
            s_rollback (db);
            return step;
        }
        int number = atoi (PQgetvalue (res, 0, 0));
        PQclear (res);
        if (hcp_case_form_number (hcp_date_year (today), number, form_number) != 0) {
            s_rollback (db);
            s_refuse (reply, "internal_error", "no form number left for %s", year);
            return STEP_REFUSED;
        }
    }

    //  5. The transition (the trigger checks it again and writes history).
    char *details = s_details_json (command, "form_number", *form_number ? form_number : NULL,
                                    "unit", *unit ? unit : NULL, NULL);
    char version[32];
    s_i64 (row.version, version, sizeof version);
    const char *params[12] = {case_id, rule->to_state, action,  command->actor,
                              now,     reason,         details, version};
    int nparams = 8;
    if (!strcmp (action, "visit")) {
        params[8] = hcp_case_command_get (command, "cause");
        params[9] = hcp_case_command_get (command, "reached");
        params[10] = hcp_case_command_get (command, "method");
        nparams = 11;
    }
    else if (!strcmp (action, "file_form"))
        params[nparams++] = form_number;
    else if (!strcmp (action, "assign") || !strcmp (action, "transfer"))
        params[nparams++] = unit;
    else if (!strncmp (action, "respond_", 8)) {
        params[8] = action + 8; //  rectified_now, ledger, explained
        params[9] = text;
        params[10] = *due_text ? due_text : NULL;
        nparams = 11;
    }
    else if (!strcmp (action, "appeal")) {
        params[8] = hcp_case_command_get (command, "kind");
        params[9] = reason;
        nparams = 10;
    }
    else if (!strcmp (action, "extend"))
        params[nparams++] = due_text;
    else if (!strcmp (action, "rectified") || !strcmp (action, "close"))
        params[nparams++] = text;
    res = hcp_db_run (db, spec->statement, nparams, params);
    free (details);
    if (!hcp_db_ok (db, res) || PQntuples (res) != 1) {
        step_t step = PQntuples (res) == 0 && hcp_db_ok (db, res)
                          ? STEP_RETRY //  version moved under our lock: cannot happen
                          : s_db_failed (db, reply, "the transition");
        PQclear (res);
        s_rollback (db);
        return step;
    }
    int64_t new_version = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    snprintf (reply->form_number, sizeof reply->form_number, "%s", PQgetvalue (res, 0, 1));
    char new_unit[72];
    snprintf (new_unit, sizeof new_unit, "%s", PQgetvalue (res, 0, 2));
    PQclear (res);

    //  6. Deadlines and the event, in the same transaction.
    if (s_deadlines (db, action, command->case_id, now_ms, today, due) != 0) {
        step_t step = s_db_failed (db, reply, "updating the deadlines");
        s_rollback (db);
        return step;
    }
    if (s_emit (db, command->case_id, row.rating_id, action, row.state, rule->to_state,
                new_version, command->actor, now_ms, new_unit, row.item_code,
                reply->form_number)
        != 0) {
        step_t step = s_db_failed (db, reply, "writing the event");
        s_rollback (db);
        return step;
    }

    //  7. The answer, stored under the request id, then commit.
    reply->status = HCP_CASE_OK;
    reply->code[0] = 0;
    snprintf (reply->state, sizeof reply->state, "%s", rule->to_state);
    reply->version = new_version;
    if (*form_number)
        snprintf (reply->message, sizeof reply->message, "case %s: %s → %s, form %s", case_id,
                  row.state, rule->to_state, form_number);
    else if (*unit)
        snprintf (reply->message, sizeof reply->message, "case %s: %s → %s, unit %s", case_id,
                  row.state, rule->to_state, unit);
    else if (*due_text)
        snprintf (reply->message, sizeof reply->message, "case %s: %s → %s, due %s", case_id,
                  row.state, rule->to_state, due_text);
    else
        snprintf (reply->message, sizeof reply->message, "case %s: %s → %s", case_id,
                  row.state, rule->to_state);
    char new_version_text[32];
    s_i64 (new_version, new_version_text, sizeof new_version_text);
    const char *done[] = {command->request_id, reply->message, reply->state, new_version_text};
    res = hcp_db_run (db, "case_request_done", 4, done);
    bool ok = hcp_db_ok (db, res);
    PQclear (res);
    if (!ok || hcp_db_exec (db, "COMMIT") != 0) {
        step_t step = s_db_failed (db, reply, "committing");
        s_rollback (db);
        return step;
    }
    return STEP_DONE;
}

void
hcp_case_execute (hcp_db_t *db, const hcp_case_command_t *command, int64_t now_ms,
                  hcp_case_reply_t *reply)
{
    assert (db && command && reply);
    memset (reply, 0, sizeof *reply);
    reply->case_id = command->case_id;
    //  Malformed commands are answered, not stored: without a valid request
    //  id there is nothing to store them under.
    if (s_blank (command->request_id) || strlen (command->request_id) > 128) {
        s_refuse (reply, "invalid_command",
                  "a command needs a request id of 1 to 128 characters");
        return;
    }
    if (s_blank (command->actor) || strlen (command->actor) > 128
        || !s_utf8_valid (command->actor)) {
        s_refuse (reply, "invalid_command",
                  "a command needs an actor (who acts), 1 to 128 "
                  "characters of UTF-8");
        return;
    }
    if (command->case_id <= 0) {
        s_refuse (reply, "invalid_command", "a command needs a case number (got %" PRId64 ")",
                  command->case_id);
        return;
    }
    if (!s_action_spec (command->action)) {
        char actions[512] = "";
        for (size_t i = 0; i < ACTION_COUNT; i++)
            snprintf (actions + strlen (actions), sizeof actions - strlen (actions), "%s%s",
                      i ? ", " : "", s_actions[i].action);
        s_refuse (reply, "unknown_action", "unknown action '%s' (actions: %s)",
                  command->action, actions);
        return;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        hcp_case_reply_t fresh;
        memset (&fresh, 0, sizeof fresh);
        fresh.case_id = command->case_id;
        step_t step = s_execute_once (db, command, now_ms, &fresh);
        *reply = fresh;
        if (step == STEP_RETRY)
            continue;
        //  Store a refusal (not an internal error: a retry may succeed).
        if (step == STEP_REFUSED && strcmp (reply->code, "internal_error") != 0)
            s_store_refusal (db, command, now_ms, reply);
        return;
    }
    s_refuse (reply, "internal_error", "the command kept conflicting with others; try again");
}
