/*  hcpctl submit — hand deliveries and ratings to ingest from the command
    line: one from flags, or many from a CSV file (the paper channels: the
    suggestion box and solicitation letters, typed in by hall staff).

    Built on hcp_client like any adapter: pipelined, resent with the same id
    on timeout, every line answered accepted / duplicate / rejected.
*/
#include "hcpctl.h"

#include "hcp_client.h"
#include "hcp_clock.h"
#include "hcp_service.h"
#include "hcp_uuid.h"
#include "hcp_validate.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

//  Every value a delivery or rating can take from a flag or a CSV column.
typedef enum {
    C_REF,
    C_RATING_ID,
    C_DELIVERY_ID,
    C_ITEM,
    C_CHANNEL,
    C_STAGE,
    C_RATING_COUNT,
    C_RATER_TYPE,
    C_RATER_KEY,
    C_RATER_NAME,
    C_RATER_PHONE,
    C_RATER_ID_NUMBER,
    C_DIVISION,
    C_RATED_AT,
    C_DELIVERED_AT,
    C_STANDARDIZATION,
    C_CONVENIENCE,
    C_ACCURACY,
    C_COMMENT,
    C_COUNT
} column_t;

enum { K_RATING = 1, K_DELIVERY = 2 };

typedef struct {
    const char *column; //  CSV header name
    const char *flag;   //  command-line flag (without --)
    int kinds;          //  K_RATING | K_DELIVERY
} column_info_t;

static const column_info_t s_columns[C_COUNT] = {
    {"ref", "ref", K_RATING | K_DELIVERY},
    {"rating_id", "id", K_RATING},
    {"delivery_id", "delivery", K_RATING | K_DELIVERY},
    {"item_code", "item", K_RATING | K_DELIVERY},
    {"channel", "channel", K_RATING | K_DELIVERY},
    {"stage", "stage", K_RATING | K_DELIVERY},
    {"rating_count", "count", K_RATING},
    {"rater_type", "rater-type", K_RATING | K_DELIVERY},
    {"rater_key", "rater-key", K_RATING | K_DELIVERY},
    {"rater_name", "rater-name", K_RATING | K_DELIVERY},
    {"rater_phone", "rater-phone", K_RATING | K_DELIVERY},
    {"rater_id_number", "rater-id-number", K_RATING | K_DELIVERY},
    {"division_code", "division", K_RATING | K_DELIVERY},
    {"rated_at", "at", K_RATING},
    {"delivered_at", "at", K_DELIVERY},
    {"standardization", "standardization", K_RATING},
    {"convenience", "convenience", K_RATING},
    {"accuracy", "accuracy", K_RATING},
    {"comment", "comment", K_RATING},
};

static const char *s_help =
    "Usage:\n"
    "  hcpctl submit rating   --item CODE --channel C --stage S --rater-type T "
    "[options]\n"
    "  hcpctl submit delivery --id ID --item CODE --channel C --stage S --rater-type T "
    "[options]\n"
    "  hcpctl submit csv FILE --kind rating|delivery [defaults] [--quiet]\n"
    "\n"
    "Hands submissions to hcp-ingest and prints, for each, accepted (stored now),\n"
    "duplicate (stored before: fine) or rejected (with the field and the reason).\n"
    "Exit code: 0 if everything was stored, 1 if anything was rejected or got no\n"
    "answer, 2 on a usage or file error.\n"
    "\n"
    "Rating / delivery options:\n"
    "  --id ID                rating: a UUID (default: a new UUIDv7, or derived from "
    "--ref);\n"
    "                         delivery: the delivery id (办件编号), 1-64 printable "
    "ASCII\n"
    "  --ref REF              paper reference (letter number): the id is derived from "
    "it,\n"
    "                         so sending the same letter twice is a duplicate\n"
    "  --delivery ID          rating: the delivery rated (optional)\n"
    "  --item CODE            service item code from the catalog\n"
    "  --channel C            hall-device, window-qr, online, mobile-app, hotline,\n"
    "                         suggestion-box, solicitation\n"
    "  --stage S              application, consultation, completion\n"
    "  --count N              rating: 1 first rating (default), 2 second rating\n"
    "  --rater-type T         natural-person, enterprise, public-institution,\n"
    "                         social-organisation, administrative-organ, other\n"
    "  --rater-key K          adapter's pseudonymous key of the rater\n"
    "  --rater-name/--rater-phone/--rater-id-number   personal data (kept apart)\n"
    "  --division CODE        administrative division code (digits)\n"
    "  --at TIME              when rated/delivered: 2026-02-14 10:30:00 (Beijing time),\n"
    "                         2026-02-14T02:30:00Z, or Unix ms (default: now)\n"
    "  --standardization G, --convenience G, --accuracy G\n"
    "                         grades 1 非常满意 very-satisfied, 2 满意 satisfied,\n"
    "                         3 基本满意 basically-satisfied, 4 不满意 dissatisfied,\n"
    "                         5 非常不满意 very-dissatisfied; 0 or absent: not rated\n"
    "  --comment TEXT         the rater's words (UTF-8)\n"
    "\n"
    "CSV files (UTF-8, comma-separated, a header row, quotes for fields holding commas,\n"
    "quotes or line breaks; a UTF-8 BOM is skipped). Columns, in any order:\n"
    "  rating:   ref, rating_id, delivery_id, item_code, channel, stage, rating_count,\n"
    "            rater_type, rater_key, rater_name, rater_phone, rater_id_number,\n"
    "            division_code, rated_at, standardization, convenience, accuracy, "
    "comment\n"
    "  delivery: ref, delivery_id, item_code, channel, stage, rater_type, rater_key,\n"
    "            rater_name, rater_phone, rater_id_number, division_code, delivered_at\n"
    "Each rating needs rating_id or ref (a letter number: the id is derived from the\n"
    "channel and ref, so importing a file again stores nothing twice); a delivery needs\n"
    "delivery_id or ref (used as the delivery id). Values as for the flags above.\n"
    "The flags --item, --channel, --stage, --count, --rater-type give a value for\n"
    "columns that are absent or empty. One line is printed per record, in file order\n"
    "(--quiet: only rejected and failed ones), then a summary; a progress line goes to\n"
    "stderr every few seconds for large files.\n"
    "\n"
    "Connection options:\n"
    "  --endpoint E           ingest endpoint(s), comma-separated (default: config\n"
    "                         ingest.endpoint, else ingest.bind, else "
    "tcp://127.0.0.1:5560)\n"
    "  --timeout MS           wait for an answer before resending (default 5000)\n"
    "  --attempts N           sends before giving up (default 8)\n"
    "  --window N             submissions in flight (default 200)\n";

//  --------------------------------------------------------------------------
//  Options

typedef struct {
    const char *values[C_COUNT]; //  from flags
    const char *endpoint;
    const char *kind;
    int timeout_ms, attempts, window;
    bool quiet;
    const char *file;
} options_t;

static int
s_int_option (const char *name, const char *value, int min, int max, int *out)
{
    char *end;
    long number = strtol (value, &end, 10);
    if (*end || end == value || number < min || number > max) {
        fprintf (stderr, "hcpctl submit: --%s must be a number from %d to %d\n", name, min,
                 max);
        return -1;
    }
    *out = (int) number;
    return 0;
}

//  Parses the flags after the mode word. Returns 0, or 2 on a usage error.
static int
s_parse_options (int argc, char **argv, options_t *options)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp (arg, "--", 2) != 0) {
            if (!options->file) {
                options->file = arg;
                continue;
            }
            fprintf (stderr, "hcpctl submit: unexpected argument '%s' (see --help)\n", arg);
            return 2;
        }
        char name[64];
        const char *value = NULL;
        const char *equals = strchr (arg, '=');
        if (equals) {
            snprintf (name, sizeof name, "%.*s", (int) (equals - arg - 2), arg + 2);
            value = equals + 1;
        }
        else
            snprintf (name, sizeof name, "%s", arg + 2);
        if (!strcmp (name, "quiet")) {
            options->quiet = true;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                fprintf (stderr, "hcpctl submit: --%s needs a value\n", name);
                return 2;
            }
            value = argv[++i];
        }
        if (!strcmp (name, "endpoint"))
            options->endpoint = value;
        else if (!strcmp (name, "kind"))
            options->kind = value;
        else if (!strcmp (name, "timeout")) {
            if (s_int_option (name, value, 10, 3600000, &options->timeout_ms))
                return 2;
        }
        else if (!strcmp (name, "attempts")) {
            if (s_int_option (name, value, 1, 1000, &options->attempts))
                return 2;
        }
        else if (!strcmp (name, "window")) {
            if (s_int_option (name, value, 1, 10000, &options->window))
                return 2;
        }
        else {
            int found = 0;
            for (int c = 0; c < C_COUNT; c++)
                if (!strcmp (name, s_columns[c].flag)) {
                    options->values[c] = value;
                    found = 1;
                }
            if (!found) {
                fprintf (stderr, "hcpctl submit: unknown option --%s (see --help)\n", name);
                return 2;
            }
        }
    }
    return 0;
}

const char *
hcpctl_ingest_endpoint (hcp_config_t *config, const char *flag)
{
    static char endpoint[512];
    if (flag && *flag)
        return flag;
    const char *value = hcp_service_str (config, "ingest.endpoint", "");
    if (*value)
        return value;
    //  ingest.bind is where ingest listens; "*" (all interfaces) is
    //  reached through the loopback address on this machine.
    value = hcp_service_str (config, "ingest.bind", "tcp://127.0.0.1:5560");
    const char *star = strstr (value, "://*");
    if (star)
        snprintf (endpoint, sizeof endpoint, "%.*s://127.0.0.1%s", (int) (star - value), value,
                  star + 4);
    else
        snprintf (endpoint, sizeof endpoint, "%s", value);
    return endpoint;
}

//  --------------------------------------------------------------------------
//  Building submissions from values (flags or a CSV record)

typedef struct {
    Hcp__V1__Submit submit;
    Hcp__V1__Rating rating;
    Hcp__V1__Delivery delivery;
    Hcp__V1__Rater rater;
    char id[72];
} built_t;

//  A value: the record's, else the flag's default, else "".
static const char *
s_value (const char **record, const options_t *options, column_t column)
{
    if (record && record[column] && *record[column])
        return record[column];
    if (options->values[column])
        return options->values[column];
    return "";
}

static int
s_time (const char *text, int64_t *ms)
{
    if (!*text) {
        *ms = 0;
        return 0;
    }
    char *end;
    long long number = strtoll (text, &end, 10);
    if (!*end && number > 0) {
        *ms = number;
        return 0;
    }
    return hcp_clock_parse (text, ms);
}

//  Fills *built from the values. Returns 0, or -1 with *why set when a
//  value cannot even be put in a message (an unknown channel name, a
//  missing id in a file...). Everything else is ingest's to judge.
static int
s_build (int kind, const char **record, const options_t *options, bool from_file,
         built_t *built, hcp_rejection_t *why)
{
    static const Hcp__V1__Submit submit_init = HCP__V1__SUBMIT__INIT;
    static const Hcp__V1__Rating rating_init = HCP__V1__RATING__INIT;
    static const Hcp__V1__Delivery delivery_init = HCP__V1__DELIVERY__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    built->submit = submit_init;
    built->rating = rating_init;
    built->delivery = delivery_init;
    built->rater = rater_init;

    //  Text that is not UTF-8 is most often a file saved as GB18030.
    for (int c = 0; record && c < C_COUNT; c++)
        if (record[c] && !hcp_validate_utf8 (record[c], strlen (record[c]), NULL)) {
            hcp_rejection_set (
                why, s_columns[c].column, "invalid_utf8",
                "column %s is not UTF-8 text; if the file was saved as GB18030, "
                "convert it: iconv -f GB18030 -t UTF-8",
                s_columns[c].column);
            return -1;
        }
    const char *text;
    int channel = 0, stage = 0, rater_type = 0;
    if (*(text = s_value (record, options, C_CHANNEL))
        && (channel = hcp_client_channel_parse (text)) < 0) {
        hcp_rejection_set (
            why, "channel", "bad_value",
            "unknown channel '%.40s' (hall-device, window-qr, online, mobile-app, "
            "hotline, suggestion-box, solicitation)",
            text);
        return -1;
    }
    if (*(text = s_value (record, options, C_STAGE))
        && (stage = hcp_client_stage_parse (text)) < 0) {
        hcp_rejection_set (why, "stage", "bad_value",
                           "unknown stage '%.40s' (application, consultation, completion)",
                           text);
        return -1;
    }
    if (*(text = s_value (record, options, C_RATER_TYPE))
        && (rater_type = hcp_client_rater_type_parse (text)) < 0) {
        hcp_rejection_set (why, "rater_type", "bad_value",
                           "unknown rater type '%.40s' (natural-person, enterprise, "
                           "public-institution, social-organisation, administrative-organ, "
                           "other)",
                           text);
        return -1;
    }
    Hcp__V1__Rater *rater = &built->rater;
    rater->type = (Hcp__V1__RaterType) rater_type;
    rater->key = (char *) s_value (record, options, C_RATER_KEY);
    rater->name = (char *) s_value (record, options, C_RATER_NAME);
    rater->phone = (char *) s_value (record, options, C_RATER_PHONE);
    rater->id_number = (char *) s_value (record, options, C_RATER_ID_NUMBER);
    rater->division_code = (char *) s_value (record, options, C_DIVISION);
    const char *ref = s_value (record, options, C_REF);
    int64_t at_ms;
    const char *at = s_value (record, options, kind == K_RATING ? C_RATED_AT : C_DELIVERED_AT);
    if (s_time (at, &at_ms) != 0) {
        hcp_rejection_set (
            why, kind == K_RATING ? "rated_at" : "delivered_at", "bad_value",
            "'%.40s' is not a time (2026-02-14 10:30:00, 2026-02-14T02:30:00Z or "
            "Unix milliseconds)",
            at);
        return -1;
    }
    if (!*at && !from_file)
        at_ms = hcp_clock_now_ms ();

    if (kind == K_DELIVERY) {
        Hcp__V1__Delivery *delivery = &built->delivery;
        const char *id = s_value (record, options, C_DELIVERY_ID);
        if (!*id)
            id = ref;
        if (!*id) {
            hcp_rejection_set (why, "delivery_id", "missing",
                               "a delivery needs delivery_id (or ref)");
            return -1;
        }
        snprintf (built->id, sizeof built->id, "%s", id);
        delivery->delivery_id = built->id;
        delivery->item_code = (char *) s_value (record, options, C_ITEM);
        delivery->stage = (Hcp__V1__Stage) stage;
        delivery->channel = (Hcp__V1__Channel) channel;
        delivery->rater = rater;
        delivery->delivered_at_ms = at_ms;
        built->submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
        built->submit.delivery = delivery;
        return 0;
    }

    Hcp__V1__Rating *rating = &built->rating;
    const char *id = s_value (record, options, C_RATING_ID);
    if (*id)
        snprintf (built->id, sizeof built->id, "%s", id);
    else if (*ref) {
        //  The same letter of the same channel always gets the same id.
        char namespace_text[64];
        snprintf (namespace_text, sizeof namespace_text, "hcp:rating:%s",
                  hcp_client_channel_name (channel));
        hcp_uuid_from_name (namespace_text, ref, built->id);
    }
    else if (from_file) {
        hcp_rejection_set (
            why, "ref", "missing",
            "each line needs rating_id or ref, so that importing the file again "
            "never stores it twice");
        return -1;
    }
    else
        hcp_uuid_v7 (0, built->id);
    rating->rating_id = built->id;
    rating->delivery_id = (char *) s_value (record, options, C_DELIVERY_ID);
    rating->item_code = (char *) s_value (record, options, C_ITEM);
    rating->channel = (Hcp__V1__Channel) channel;
    rating->stage = (Hcp__V1__Stage) stage;
    text = s_value (record, options, C_RATING_COUNT);
    rating->rating_count = 1;
    if (*text) {
        char *end;
        long count = strtol (text, &end, 10);
        if (*end || count < 0 || count > 100) {
            hcp_rejection_set (why, "rating_count", "bad_value",
                               "rating_count '%.20s' is not 1 or 2", text);
            return -1;
        }
        rating->rating_count = (uint32_t) count;
    }
    rating->rater = rater;
    rating->rated_at_ms = at_ms;
    column_t grades[3] = {C_STANDARDIZATION, C_CONVENIENCE, C_ACCURACY};
    Hcp__V1__Grade *targets[3] = {&rating->standardization, &rating->convenience,
                                  &rating->accuracy};
    for (int g = 0; g < 3; g++) {
        text = s_value (record, options, grades[g]);
        int grade = hcp_client_grade_parse (text);
        if (grade < 0) {
            hcp_rejection_set (why, s_columns[grades[g]].column, "bad_value",
                               "%s '%.40s' is not a grade (1-5, 0 not rated, or 非常满意 ... "
                               "非常不满意)",
                               s_columns[grades[g]].column, text);
            return -1;
        }
        *targets[g] = (Hcp__V1__Grade) grade;
    }
    rating->comment = (char *) s_value (record, options, C_COMMENT);
    built->submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
    built->submit.rating = rating;
    return 0;
}

static void
s_print_result (FILE *out, long line, const hcp_client_result_t *result)
{
    if (line > 0)
        fprintf (out, "line %ld: ", line);
    if (result->status == HCP_CLIENT_REJECTED)
        fprintf (out, "rejected %s field=%s code=%s: %s\n", *result->id ? result->id : "-",
                 result->field, result->code, result->reason);
    else if (result->status == HCP_CLIENT_FAILED)
        fprintf (out, "failed %s: %s\n", result->id, result->reason);
    else
        fprintf (out, "%s %s\n", hcp_client_status_name (result->status), result->id);
}

static hcp_client_t *
s_client (hcp_config_t *config, const options_t *options)
{
    hcp_client_options_t client_options;
    hcp_client_options_default (&client_options);
    if (options->timeout_ms)
        client_options.timeout_ms = options->timeout_ms;
    if (options->attempts)
        client_options.max_attempts = options->attempts;
    client_options.max_in_flight = options->window ? options->window : 200;
    const char *endpoint = hcpctl_ingest_endpoint (config, options->endpoint);
    hcp_client_t *client = hcp_client_new (endpoint, &client_options);
    if (!client)
        fprintf (stderr, "hcpctl submit: bad ingest endpoint '%s': %s\n", endpoint,
                 strerror (errno));
    return client;
}

//  --------------------------------------------------------------------------
//  One submission from flags

static int
s_submit_one (hcp_config_t *config, int kind, options_t *options)
{
    built_t built;
    hcp_rejection_t why;
    if (s_build (kind, NULL, options, false, &built, &why) != 0) {
        fprintf (stderr, "hcpctl submit: --%s: %s\n", why.field, why.reason);
        return 2;
    }
    hcp_client_t *client = s_client (config, options);
    if (!client)
        return 2;
    hcp_client_result_t result;
    int rc = hcp_client_submit (client, &built.submit, &result);
    hcp_client_destroy (&client);
    if (rc != 0) {
        fprintf (stderr, "hcpctl submit: cannot send: %s\n", strerror (errno));
        return 2;
    }
    s_print_result (stdout, 0, &result);
    return result.status == HCP_CLIENT_ACCEPTED || result.status == HCP_CLIENT_DUPLICATE ? 0
                                                                                         : 1;
}

//  --------------------------------------------------------------------------
//  CSV files

//  Results are printed in file order: each record has a slot in a ring;
//  reading pauses when the oldest unprinted record is a full ring behind.
#define S_RING 4096

typedef struct {
    bool used, done;
    long line;
    hcp_client_result_t result;
} slot_t;

typedef struct {
    hcp_config_t *config;
    options_t *options;
    int kind;
    hcp_client_t *client;
    //  parsing
    struct csv_parser parser;
    char *fields[64];
    size_t field_count;
    int header[64]; //  column of each field, -1 until the header is read
    size_t header_count;
    bool header_done;
    int fatal;        //  2: unusable header
    long line;        //  current physical line
    long record_line; //  line where the current record began
    //  results
    slot_t *ring;
    long next_record, next_print; //  record numbers (0-based)
    long counts[5];               //  by hcp_client_status_t
    long records;
    //  progress
    long answered;
    int64_t started_ms, progress_ms;
    long long bytes_read, bytes_total;
} csv_state_t;

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_flush_printed (csv_state_t *state)
{
    while (state->next_print < state->next_record) {
        slot_t *slot = &state->ring[state->next_print % S_RING];
        if (!slot->done)
            break;
        hcp_client_status_t status = slot->result.status;
        if (!state->options->quiet || status == HCP_CLIENT_REJECTED
            || status == HCP_CLIENT_FAILED)
            s_print_result (stdout, slot->line, &slot->result);
        state->counts[status]++;
        slot->used = slot->done = false;
        state->next_print++;
    }
}

static void
s_progress (csv_state_t *state, bool last)
{
    int64_t now = s_mono_ms ();
    if (!last && now - state->progress_ms < 2000)
        return;
    if (now - state->started_ms < 2000)
        return; //  small files print no progress
    state->progress_ms = now;
    double seconds = (double) (now - state->started_ms) / 1000.0;
    bool tty = isatty (STDERR_FILENO);
    if (state->bytes_total > 0)
        fprintf (stderr, "%shcpctl submit: %ld lines read (%d%%), %ld answered, %.0f/s%s",
                 tty ? "\r" : "", state->line,
                 (int) (100 * state->bytes_read / state->bytes_total), state->answered,
                 (double) state->answered / seconds, tty && !last ? "" : "\n");
    else
        fprintf (stderr, "%shcpctl submit: %ld lines read, %ld answered, %.0f/s%s",
                 tty ? "\r" : "", state->line, state->answered,
                 (double) state->answered / seconds, tty && !last ? "" : "\n");
    fflush (stderr);
}

//  Takes one result from the client into its slot.
static void
s_take_result (csv_state_t *state, const hcp_client_result_t *result)
{
    long record = (long) (intptr_t) result->tag;
    slot_t *slot = &state->ring[record % S_RING];
    slot->result = *result;
    slot->done = true;
    state->answered++;
    s_flush_printed (state);
    s_progress (state, false);
}

//  Waits for results until fewer than limit submissions are pending.
static void
s_drain (csv_state_t *state, size_t limit)
{
    hcp_client_result_t result;
    while (hcp_client_pending (state->client) > limit
           && hcp_client_wait (state->client, -1, &result) == 1)
        s_take_result (state, &result);
}

static void
s_read_header (csv_state_t *state)
{
    int kind_mask = state->kind;
    for (size_t i = 0; i < state->field_count && i < 64; i++) {
        char name[64];
        size_t n = 0;
        for (const char *p = state->fields[i]; *p && n < sizeof name - 1; p++)
            if (*p != ' ')
                name[n++] = (char) tolower ((unsigned char) *p);
        name[n] = 0;
        int column = -1;
        for (int c = 0; c < C_COUNT; c++)
            if ((s_columns[c].kinds & kind_mask) && !strcmp (name, s_columns[c].column))
                column = c;
        if (column < 0) {
            fprintf (stderr,
                     "hcpctl submit: %s: unknown column '%s' in the header (see hcpctl submit "
                     "--help for the columns of a %s file)\n",
                     state->options->file, name,
                     state->kind == K_RATING ? "rating" : "delivery");
            state->fatal = 2;
            return;
        }
        for (size_t j = 0; j < i; j++)
            if (state->header[j] == column) {
                fprintf (stderr, "hcpctl submit: %s: column '%s' appears twice\n",
                         state->options->file, name);
                state->fatal = 2;
                return;
            }
        state->header[i] = column;
    }
    state->header_count = state->field_count;
    state->header_done = true;
}

static void
s_record (csv_state_t *state)
{
    long record = state->next_record;
    //  Keep the ring from overtaking the oldest unprinted record.
    while (record - state->next_print >= S_RING - 1) {
        hcp_client_result_t result;
        if (hcp_client_wait (state->client, -1, &result) != 1)
            break;
        s_take_result (state, &result);
    }
    slot_t *slot = &state->ring[record % S_RING];
    memset (slot, 0, sizeof *slot);
    slot->used = true;
    slot->line = state->record_line;
    state->next_record++;
    state->records++;

    const char *values[C_COUNT] = {0};
    built_t built;
    built.id[0] = 0;
    hcp_rejection_t why;
    int rc = 0;
    if (state->field_count != state->header_count) {
        hcp_rejection_set (&why, "line", "bad_value",
                           "the line has %zu fields, the header %zu", state->field_count,
                           state->header_count);
        rc = -1;
    }
    else {
        for (size_t i = 0; i < state->field_count; i++)
            values[state->header[i]] = state->fields[i];
        rc = s_build (state->kind, values, state->options, true, &built, &why);
    }
    if (rc == 0
        && hcp_client_send (state->client, &built.submit, (void *) (intptr_t) record)) {
        if (errno == EEXIST)
            hcp_rejection_set (&why, state->kind == K_RATING ? "rating_id" : "delivery_id",
                               "repeated",
                               "the same id appears on an earlier line still in "
                               "flight; the file repeats a record");
        else
            hcp_rejection_set (&why, "line", "bad_value", "cannot send: %s", strerror (errno));
        rc = -1;
    }
    if (rc != 0) {
        //  Refused here: reported like an ingest rejection, in order.
        slot->done = true;
        slot->result.status = HCP_CLIENT_REJECTED;
        snprintf (slot->result.id, sizeof slot->result.id, "%s", built.id);
        snprintf (slot->result.field, sizeof slot->result.field, "%s", why.field);
        snprintf (slot->result.code, sizeof slot->result.code, "%s", why.code);
        snprintf (slot->result.reason, sizeof slot->result.reason, "%s", why.reason);
        s_flush_printed (state);
    }
    //  Keep the pipeline full but bounded.
    s_drain (state, (size_t) (state->options->window ? state->options->window : 200) * 2);
}

static void
s_on_field (void *data, size_t size, void *arg)
{
    csv_state_t *state = arg;
    if (state->field_count >= 64)
        return;
    char *text = malloc (size + 1);
    if (!text)
        abort ();
    memcpy (text, data ? data : "", size);
    text[size] = 0;
    //  A NUL byte would cut the text short unseen: make it fail the UTF-8
    //  check instead (0xff is never valid UTF-8).
    if (memchr (text, 0, size))
        text[0] = (char) 0xff;
    state->fields[state->field_count++] = text;
}

static void
s_on_record_end (int terminator, void *arg)
{
    csv_state_t *state = arg;
    if (!state->fatal) {
        if (!state->header_done)
            s_read_header (state);
        else
            s_record (state);
    }
    for (size_t i = 0; i < state->field_count; i++)
        free (state->fields[i]);
    state->field_count = 0;
}

static int
s_submit_csv (hcp_config_t *config, options_t *options)
{
    int kind = 0;
    if (options->kind && !strcmp (options->kind, "rating"))
        kind = K_RATING;
    else if (options->kind && !strcmp (options->kind, "delivery"))
        kind = K_DELIVERY;
    if (!options->file || !kind) {
        fprintf (stderr, "hcpctl submit csv FILE --kind rating|delivery (see --help)\n");
        return 2;
    }
    FILE *file = strcmp (options->file, "-") ? fopen (options->file, "rb") : stdin;
    if (!file) {
        fprintf (stderr, "hcpctl submit: cannot open %s: %s\n", options->file,
                 strerror (errno));
        return 2;
    }
    csv_state_t *state = calloc (1, sizeof *state);
    if (!state)
        abort ();
    state->config = config;
    state->options = options;
    state->kind = kind;
    state->ring = calloc (S_RING, sizeof *state->ring);
    if (!state->ring)
        abort ();
    state->client = s_client (config, options);
    if (!state->client) {
        if (file != stdin)
            fclose (file);
        free (state->ring);
        free (state);
        return 2;
    }
    if (file != stdin && fseek (file, 0, SEEK_END) == 0) {
        state->bytes_total = ftell (file);
        rewind (file);
    }
    state->started_ms = s_mono_ms ();
    csv_init (&state->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int rc = 0;
    while (!state->fatal && (length = getline (&line, &capacity, file)) > 0) {
        state->line++;
        state->bytes_read += length;
        const char *data = line;
        if (state->line == 1 && length >= 3 && !memcmp (line, "\xef\xbb\xbf", 3)) {
            data += 3; //  the byte-order mark some spreadsheets write
            length -= 3;
        }
        //  libcsv's parser state 0 is "no record begun": a record that
        //  starts now starts on this line (quoted fields may span lines).
        if (state->parser.pstate == 0)
            state->record_line = state->line;
        if (csv_parse (&state->parser, data, (size_t) length, s_on_field, s_on_record_end,
                       state)
            != (size_t) length) {
            fprintf (stderr, "hcpctl submit: %s:%ld: CSV syntax error (%s); stopping here\n",
                     options->file, state->line, csv_strerror (csv_error (&state->parser)));
            rc = 1;
            break;
        }
    }
    if (!rc && !state->fatal
        && csv_fini (&state->parser, s_on_field, s_on_record_end, state) != 0) {
        fprintf (stderr, "hcpctl submit: %s: CSV syntax error at the end (%s)\n",
                 options->file, csv_strerror (csv_error (&state->parser)));
        rc = 1;
    }
    for (size_t i = 0; i < state->field_count; i++)
        free (state->fields[i]);
    csv_free (&state->parser);
    free (line);
    if (file != stdin)
        fclose (file);
    if (!state->header_done && !state->fatal) {
        fprintf (stderr, "hcpctl submit: %s: no header row\n", options->file);
        state->fatal = 2;
    }
    s_drain (state, 0);
    s_flush_printed (state);
    s_progress (state, true);
    long *counts = state->counts;
    if (!state->fatal)
        printf ("summary: %ld records, %ld accepted, %ld duplicate, %ld rejected, %ld "
                "failed\n",
                state->records, counts[HCP_CLIENT_ACCEPTED], counts[HCP_CLIENT_DUPLICATE],
                counts[HCP_CLIENT_REJECTED], counts[HCP_CLIENT_FAILED]);
    if (state->fatal)
        rc = state->fatal;
    else if (counts[HCP_CLIENT_REJECTED] || counts[HCP_CLIENT_FAILED])
        rc = 1;
    hcp_client_destroy (&state->client);
    free (state->ring);
    free (state);
    return rc;
}

int
hcpctl_submit (hcp_config_t *config, int argc, char **argv)
{
    if (argc < 2 || hcpctl_wants_help (argc, argv)) {
        fputs (s_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    options_t options;
    memset (&options, 0, sizeof options);
    const char *mode = argv[1];
    if (s_parse_options (argc - 2, argv + 2, &options) != 0)
        return 2;
    if (!strcmp (mode, "csv"))
        return s_submit_csv (config, &options);
    if (options.file) {
        fprintf (stderr, "hcpctl submit: unexpected argument '%s' (see --help)\n",
                 options.file);
        return 2;
    }
    if (!strcmp (mode, "rating"))
        return s_submit_one (config, K_RATING, &options);
    if (!strcmp (mode, "delivery")) {
        //  For a delivery, --id is its delivery id.
        if (options.values[C_RATING_ID] && !options.values[C_DELIVERY_ID])
            options.values[C_DELIVERY_ID] = options.values[C_RATING_ID];
        return s_submit_one (config, K_DELIVERY, &options);
    }
    fprintf (stderr, "hcpctl submit: unknown mode '%s': rating, delivery or csv\n", mode);
    return 2;
}
