/*  hcp_validate — see hcp_validate.h. */
#include "hcp_validate.h"

#include "hcp_uuid.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
hcp_validate_limits_default (hcp_validate_limits_t *limits)
{
    limits->max_message_bytes = 64 * 1024;
    limits->clock_skew_ms = 300 * 1000;
    limits->comment_max_chars = 2000;
}

void
hcp_rejection_set (hcp_rejection_t *self, const char *field, const char *code, const char *fmt,
                   ...)
{
    snprintf (self->field, sizeof self->field, "%s", field);
    snprintf (self->code, sizeof self->code, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->reason, sizeof self->reason, fmt, args);
    va_end (args);
    //  The reason may have been cut inside a multi-byte character: it is
    //  stored as text, so cut back to the last whole character.
    size_t length = strlen (self->reason);
    while (length > 0 && !hcp_validate_utf8 (self->reason, length, NULL))
        self->reason[--length] = 0;
}

bool
hcp_validate_utf8 (const void *text, size_t size, size_t *chars)
{
    const unsigned char *p = text;
    const unsigned char *end = p + size;
    size_t count = 0;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == 0)
                return false;
            p++;
        }
        else {
            size_t need;
            unsigned int code;
            if (c >= 0xc2 && c <= 0xdf) {
                need = 1;
                code = c & 0x1f;
            }
            else if (c >= 0xe0 && c <= 0xef) {
                need = 2;
                code = c & 0x0f;
            }
            else if (c >= 0xf0 && c <= 0xf4) {
                need = 3;
                code = c & 0x07;
            }
            else
                return false; //  continuation byte first, 0xc0/0xc1 overlong, or > 0xf4
            if ((size_t) (end - p) <= need)
                return false;
            for (size_t i = 1; i <= need; i++) {
                if ((p[i] & 0xc0) != 0x80)
                    return false;
                code = (code << 6) | (p[i] & 0x3f);
            }
            if ((need == 2 && code < 0x800) || (need == 3 && code < 0x10000)
                || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)
                return false; //  overlong, surrogate, beyond Unicode
            p += need + 1;
        }
        count++;
    }
    if (chars)
        *chars = count;
    return true;
}

bool
hcp_validate_id_text (const char *text)
{
    size_t length = 0;
    for (const char *p = text; *p; p++, length++)
        if (*p < 0x21 || *p > 0x7e || length >= HCP_VALIDATE_ID_MAX)
            return false;
    return length > 0;
}

const char *
hcp_validate_fact_id (const Hcp__V1__Submit *submit)
{
    if (!submit)
        return "";
    if (submit->fact_case == HCP__V1__SUBMIT__FACT_RATING && submit->rating)
        return submit->rating->rating_id ? submit->rating->rating_id : "";
    if (submit->fact_case == HCP__V1__SUBMIT__FACT_DELIVERY && submit->delivery)
        return submit->delivery->delivery_id ? submit->delivery->delivery_id : "";
    return "";
}

//  --------------------------------------------------------------------------
//  Wire-level check of string fields. protobuf-c copies string bytes as
//  they come: no UTF-8 check, and an embedded NUL silently shortens the C
//  string (so "abc\0DROP" would be stored as "abc" and look valid). We walk
//  the encoded message with its descriptor and check every string field's
//  bytes. Called only on bytes that protobuf-c decoded, so the structure is
//  known to be sound; the walker is defensive anyway.

static int
s_varint (const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        value |= (uint64_t) (byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return 0;
        }
    }
    return -1;
}

static int
s_walk (const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t size,
        const char *path, int depth, hcp_rejection_t *rejection)
{
    const uint8_t *p = data;
    const uint8_t *end = data + size;
    if (depth > 8)
        return 0; //  our messages nest two deep; unknown deeper data is not ours to judge
    while (p < end) {
        uint64_t tag;
        if (s_varint (&p, end, &tag))
            return 0;
        unsigned int number = (unsigned int) (tag >> 3);
        unsigned int wire_type = (unsigned int) (tag & 7);
        uint64_t value;
        switch (wire_type) {
        case 0:
            if (s_varint (&p, end, &value))
                return 0;
            break;
        case 1:
            if (end - p < 8)
                return 0;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return 0;
            p += 4;
            break;
        case 2: {
            if (s_varint (&p, end, &value) || value > (uint64_t) (end - p))
                return 0;
            const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field (
                descriptor, number);
            if (field) {
                char child[64];
                snprintf (child, sizeof child, "%s%s%s", path, *path ? "." : "", field->name);
                if (field->type == PROTOBUF_C_TYPE_STRING
                    && !hcp_validate_utf8 (p, (size_t) value, NULL)) {
                    hcp_rejection_set (rejection, child, "invalid_utf8",
                                       "%s is not valid UTF-8 text (or holds a NUL byte)",
                                       child);
                    return -1;
                }
                if (field->type == PROTOBUF_C_TYPE_MESSAGE
                    && s_walk (field->descriptor, p, (size_t) value, child, depth + 1,
                               rejection))
                    return -1;
            }
            p += value;
            break;
        }
        default:
            return 0; //  groups are not used by proto3
        }
    }
    return 0;
}

int
hcp_validate_decode (const void *data, size_t size, const hcp_validate_limits_t *limits,
                     Hcp__V1__Submit **submit_p, hcp_rejection_t *rejection)
{
    *submit_p = NULL;
    bool too_large = size > limits->max_message_bytes;
    //  Decoding an oversized message only serves to name its id in the
    //  reply; beyond 16 × the limit it is not worth the memory.
    if (!too_large || size <= 16 * limits->max_message_bytes)
        *submit_p = hcp__v1__submit__unpack (NULL, size, data);
    if (too_large) {
        hcp_rejection_set (
            rejection, "message", "too_large",
            "message is %zu bytes, over the limit of %zu (ingest.max_message_bytes)", size,
            limits->max_message_bytes);
        return -1;
    }
    if (!*submit_p) {
        hcp_rejection_set (rejection, "message", "undecodable",
                           "%zu bytes that do not decode as an hcp.v1.Submit protobuf", size);
        return -1;
    }
    return s_walk (&hcp__v1__submit__descriptor, data, size, "", 0, rejection);
}

//  --------------------------------------------------------------------------
//  Content rules

//  Field path "<kind>.<name>" into buf.
static const char *
s_path (char *buf, size_t size, const char *kind, const char *name)
{
    snprintf (buf, size, "%s.%s", kind, name);
    return buf;
}

static int
s_text (const char *kind, const char *name, const char *text, size_t max_chars,
        hcp_rejection_t *rejection)
{
    char path[64];
    size_t chars;
    if (!hcp_validate_utf8 (text, strlen (text), &chars)) {
        hcp_rejection_set (rejection, s_path (path, sizeof path, kind, name), "invalid_utf8",
                           "%s is not valid UTF-8 text", path);
        return -1;
    }
    if (chars > max_chars) {
        hcp_rejection_set (rejection, s_path (path, sizeof path, kind, name), "too_long",
                           "%s has %zu characters, more than the %zu allowed", path, chars,
                           max_chars);
        return -1;
    }
    return 0;
}

static int
s_item (const char *kind, const char *code, hcp_item_lookup_fn *lookup, void *lookup_arg,
        hcp_rejection_t *rejection)
{
    char path[64];
    s_path (path, sizeof path, kind, "item_code");
    if (!*code) {
        hcp_rejection_set (rejection, path, "missing", "%s is required", path);
        return -1;
    }
    if (s_text (kind, "item_code", code, 64, rejection))
        return -1;
    hcp_item_state_t state = lookup ? lookup (lookup_arg, code) : HCP_ITEM_UNKNOWN;
    if (state == HCP_ITEM_UNKNOWN) {
        hcp_rejection_set (rejection, path, "unknown_item",
                           "item code '%.64s' is not in the service-item catalog", code);
        return -1;
    }
    if (state == HCP_ITEM_INACTIVE) {
        hcp_rejection_set (rejection, path, "inactive_item",
                           "item '%.64s' was withdrawn from the catalog: no new submissions",
                           code);
        return -1;
    }
    return 0;
}

//  An enum that must be set (1..max).
static int
s_enum (const char *kind, const char *name, int value, int max, hcp_rejection_t *rejection)
{
    char path[64];
    s_path (path, sizeof path, kind, name);
    if (value == 0) {
        hcp_rejection_set (rejection, path, "missing", "%s is required", path);
        return -1;
    }
    if (value < 0 || value > max) {
        hcp_rejection_set (rejection, path, "out_of_range",
                           "%s is %d; defined values are 1 to %d", path, value, max);
        return -1;
    }
    return 0;
}

static int
s_rater (const char *kind, const Hcp__V1__Rater *rater, hcp_rejection_t *rejection)
{
    char path[64];
    snprintf (path, sizeof path, "%s.rater.type", kind);
    if (!rater || rater->type == HCP__V1__RATER_TYPE__RATER_TYPE_UNSPECIFIED) {
        hcp_rejection_set (rejection, path, "missing",
                           "%s is required (natural person, enterprise, ...)", path);
        return -1;
    }
    if ((int) rater->type < 0 || (int) rater->type > HCP__V1__RATER_TYPE__RATER_OTHER) {
        hcp_rejection_set (rejection, path, "out_of_range",
                           "%s is %d; defined values are 1 to %d", path, (int) rater->type,
                           HCP__V1__RATER_TYPE__RATER_OTHER);
        return -1;
    }
    char sub[32];
    snprintf (sub, sizeof sub, "%s.rater", kind);
    //  key is opaque (account id, hashed certificate): bytes, not characters.
    if (s_text (sub, "key", rater->key, HCP_VALIDATE_KEY_MAX, rejection))
        return -1;
    if (strlen (rater->key) > HCP_VALIDATE_KEY_MAX) {
        hcp_rejection_set (rejection, s_path (path, sizeof path, sub, "key"), "too_long",
                           "%s is longer than %d bytes", path, HCP_VALIDATE_KEY_MAX);
        return -1;
    }
    if (s_text (sub, "name", rater->name, HCP_VALIDATE_NAME_MAX, rejection)
        || s_text (sub, "phone", rater->phone, HCP_VALIDATE_PHONE_MAX, rejection)
        || s_text (sub, "id_number", rater->id_number, HCP_VALIDATE_IDNUM_MAX, rejection))
        return -1;
    const char *division = rater->division_code;
    size_t digits = strspn (division, "0123456789");
    if (*division && (division[digits] || digits > HCP_VALIDATE_DIVISION_MAX)) {
        hcp_rejection_set (rejection, s_path (path, sizeof path, sub, "division_code"),
                           "not_digits",
                           "%s must be an administrative division code of 1 to %d digits",
                           path, HCP_VALIDATE_DIVISION_MAX);
        return -1;
    }
    return 0;
}

//  A time that must be set and not in the future beyond the skew.
static int
s_time (const char *kind, const char *name, int64_t ms, const hcp_validate_limits_t *limits,
        int64_t now_ms, hcp_rejection_t *rejection)
{
    char path[64];
    s_path (path, sizeof path, kind, name);
    if (ms <= 0) {
        hcp_rejection_set (rejection, path, "missing",
                           "%s is required (Unix time in milliseconds)", path);
        return -1;
    }
    if (ms > now_ms + limits->clock_skew_ms) {
        hcp_rejection_set (rejection, path, "in_future",
                           "%s is %lld s ahead of the server clock (allowed skew %lld s)",
                           path, (long long) ((ms - now_ms) / 1000),
                           (long long) (limits->clock_skew_ms / 1000));
        return -1;
    }
    return 0;
}

static int
s_delivery_id (const char *kind, const char *id, bool required, hcp_rejection_t *rejection)
{
    char path[64];
    s_path (path, sizeof path, kind, "delivery_id");
    if (!*id) {
        if (!required)
            return 0;
        hcp_rejection_set (rejection, path, "missing", "%s is required", path);
        return -1;
    }
    if (strlen (id) > HCP_VALIDATE_ID_MAX) {
        hcp_rejection_set (rejection, path, "too_long", "%s is longer than %d characters",
                           path, HCP_VALIDATE_ID_MAX);
        return -1;
    }
    if (!hcp_validate_id_text (id)) {
        hcp_rejection_set (rejection, path, "not_printable_ascii",
                           "%s may hold only printable ASCII (0x21-0x7e), no spaces", path);
        return -1;
    }
    return 0;
}

static int
s_delivery (const Hcp__V1__Delivery *delivery, const hcp_validate_limits_t *limits,
            int64_t now_ms, hcp_item_lookup_fn *lookup, void *lookup_arg,
            hcp_rejection_t *rejection)
{
    const char *kind = "delivery";
    if (s_delivery_id (kind, delivery->delivery_id, true, rejection)
        || s_item (kind, delivery->item_code, lookup, lookup_arg, rejection)
        || s_enum (kind, "stage", (int) delivery->stage, HCP__V1__STAGE__STAGE_COMPLETION,
                   rejection)
        || s_enum (kind, "channel", (int) delivery->channel,
                   HCP__V1__CHANNEL__CHANNEL_SOLICITATION, rejection)
        || s_rater (kind, delivery->rater, rejection)
        || s_time (kind, "delivered_at_ms", delivery->delivered_at_ms, limits, now_ms,
                   rejection))
        return -1;
    return 0;
}

static int
s_grade (const char *name, int grade, hcp_rejection_t *rejection)
{
    if (grade < 0 || grade > HCP__V1__GRADE__GRADE_VERY_DISSATISFIED) {
        char path[64];
        hcp_rejection_set (rejection, s_path (path, sizeof path, "rating", name),
                           "out_of_range",
                           "%s is %d; grades are 1 (very satisfied) to 5 (very dissatisfied), "
                           "0 for not rated",
                           path, grade);
        return -1;
    }
    return 0;
}

static int
s_rating (const Hcp__V1__Rating *rating, const hcp_validate_limits_t *limits, int64_t now_ms,
          hcp_item_lookup_fn *lookup, void *lookup_arg, hcp_rejection_t *rejection)
{
    const char *kind = "rating";
    if (!*rating->rating_id) {
        hcp_rejection_set (rejection, "rating.rating_id", "missing",
                           "rating.rating_id is required (a UUID, UUIDv7 recommended)");
        return -1;
    }
    if (!hcp_uuid_valid (rating->rating_id)) {
        hcp_rejection_set (rejection, "rating.rating_id", "not_uuid",
                           "rating.rating_id must be a UUID in 8-4-4-4-12 hexadecimal form");
        return -1;
    }
    if (s_delivery_id (kind, rating->delivery_id, false, rejection)
        || s_item (kind, rating->item_code, lookup, lookup_arg, rejection)
        || s_enum (kind, "channel", (int) rating->channel,
                   HCP__V1__CHANNEL__CHANNEL_SOLICITATION, rejection)
        || s_enum (kind, "stage", (int) rating->stage, HCP__V1__STAGE__STAGE_COMPLETION,
                   rejection))
        return -1;
    if (rating->rating_count != 1 && rating->rating_count != 2) {
        hcp_rejection_set (rejection, "rating.rating_count", "out_of_range",
                           "rating.rating_count is %u; it must be 1 (first rating) or 2 "
                           "(second rating)",
                           rating->rating_count);
        return -1;
    }
    if (s_rater (kind, rating->rater, rejection)
        || s_time (kind, "rated_at_ms", rating->rated_at_ms, limits, now_ms, rejection)
        || s_grade ("standardization", (int) rating->standardization, rejection)
        || s_grade ("convenience", (int) rating->convenience, rejection)
        || s_grade ("accuracy", (int) rating->accuracy, rejection))
        return -1;
    if (rating->standardization == HCP__V1__GRADE__GRADE_UNRATED
        && rating->convenience == HCP__V1__GRADE__GRADE_UNRATED
        && rating->accuracy == HCP__V1__GRADE__GRADE_UNRATED) {
        hcp_rejection_set (rejection, "rating", "no_dimension_rated",
                           "no dimension was graded: at least one of standardization, "
                           "convenience, accuracy must be 1 to 5");
        return -1;
    }
    return s_text (kind, "comment", rating->comment, limits->comment_max_chars, rejection);
}

int
hcp_validate_submit (const Hcp__V1__Submit *submit, const hcp_validate_limits_t *limits,
                     int64_t now_ms, hcp_item_lookup_fn *lookup, void *lookup_arg,
                     hcp_rejection_t *rejection)
{
    if (submit->fact_case == HCP__V1__SUBMIT__FACT_DELIVERY && submit->delivery)
        return s_delivery (submit->delivery, limits, now_ms, lookup, lookup_arg, rejection);
    if (submit->fact_case == HCP__V1__SUBMIT__FACT_RATING && submit->rating)
        return s_rating (submit->rating, limits, now_ms, lookup, lookup_arg, rejection);
    hcp_rejection_set (rejection, "submit", "no_fact",
                       "the Submit carries neither a delivery nor a rating");
    return -1;
}

int
hcp_validate_rating_delivery (const Hcp__V1__Rating *rating, bool found,
                              const char *delivery_item_code, int64_t delivered_at_ms,
                              hcp_rejection_t *rejection)
{
    if (!found) {
        hcp_rejection_set (rejection, "rating.delivery_id", "unknown_delivery",
                           "delivery '%.64s' was never received: submit the delivery first, "
                           "then send the rating again",
                           rating->delivery_id);
        return -1;
    }
    if (delivery_item_code && strcmp (delivery_item_code, rating->item_code) != 0) {
        hcp_rejection_set (rejection, "rating.item_code", "item_mismatch",
                           "rating.item_code '%.64s' differs from item '%.64s' of delivery "
                           "'%.64s'",
                           rating->item_code, delivery_item_code, rating->delivery_id);
        return -1;
    }
    if (rating->rated_at_ms < delivered_at_ms) {
        hcp_rejection_set (rejection, "rating.rated_at_ms", "before_delivery",
                           "rating.rated_at_ms is %lld s before the delivery it rates",
                           (long long) ((delivered_at_ms - rating->rated_at_ms + 999) / 1000));
        return -1;
    }
    return 0;
}
