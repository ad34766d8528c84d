/*  ingest_array — see ingest_array.h. */
#include "ingest_array.h"

#include <stdlib.h>
#include <string.h>

//  ndim, flags, element OID, one dimension's length and lower bound.
#define S_HEADER 20

//  Seconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 UTC.
#define S_PG_EPOCH_MS 946684800000LL

static void
s_reserve (ingest_array_t *self, size_t more)
{
    if (self->size + more <= self->capacity)
        return;
    size_t capacity = self->capacity ? self->capacity : 4096;
    while (capacity < self->size + more)
        capacity *= 2;
    self->data = realloc (self->data, capacity);
    if (!self->data)
        abort ();
    self->capacity = capacity;
}

static void
s_put32 (uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t) (value >> 24);
    p[1] = (uint8_t) (value >> 16);
    p[2] = (uint8_t) (value >> 8);
    p[3] = (uint8_t) value;
}

void
ingest_array_init (ingest_array_t *self, uint32_t element_oid)
{
    memset (self, 0, sizeof *self);
    self->element_oid = element_oid;
    ingest_array_reset (self);
}

void
ingest_array_reset (ingest_array_t *self)
{
    s_reserve (self, S_HEADER);
    self->size = S_HEADER;
    self->count = 0;
    self->has_null = 0;
}

void
ingest_array_free (ingest_array_t *self)
{
    free (self->data);
    memset (self, 0, sizeof *self);
}

void
ingest_array_add (ingest_array_t *self, const void *bytes, int length)
{
    s_reserve (self, 4 + (length > 0 ? (size_t) length : 0));
    if (length < 0) {
        s_put32 (self->data + self->size, 0xffffffffu);
        self->size += 4;
        self->has_null = 1;
    }
    else {
        s_put32 (self->data + self->size, (uint32_t) length);
        self->size += 4;
        if (length > 0)
            memcpy (self->data + self->size, bytes, (size_t) length);
        self->size += (size_t) length;
    }
    self->count++;
}

void
ingest_array_add_text (ingest_array_t *self, const char *text, int empty_is_null)
{
    if (!text || (empty_is_null && !*text))
        ingest_array_add (self, NULL, -1);
    else
        ingest_array_add (self, text, (int) strlen (text));
}

void
ingest_array_add_int2 (ingest_array_t *self, int value)
{
    uint8_t bytes[2] = {(uint8_t) ((unsigned) value >> 8), (uint8_t) value};
    ingest_array_add (self, bytes, 2);
}

void
ingest_array_add_int4 (ingest_array_t *self, int32_t value)
{
    uint8_t bytes[4];
    s_put32 (bytes, (uint32_t) value);
    ingest_array_add (self, bytes, 4);
}

void
ingest_array_add_int8 (ingest_array_t *self, int64_t value)
{
    uint8_t bytes[8];
    s_put32 (bytes, (uint32_t) ((uint64_t) value >> 32));
    s_put32 (bytes + 4, (uint32_t) value);
    ingest_array_add (self, bytes, 8);
}

void
ingest_array_add_timestamptz_ms (ingest_array_t *self, int64_t ms)
{
    ingest_array_add_int8 (self, (ms - S_PG_EPOCH_MS) * 1000);
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
ingest_array_add_uuid (ingest_array_t *self, const char *text)
{
    uint8_t bytes[16];
    int filled = 0;
    for (const char *p = text; *p && filled < 16; p++) {
        if (*p == '-')
            continue;
        int high = s_hex (p[0]);
        int low = p[1] ? s_hex (p[1]) : -1;
        if (high < 0 || low < 0)
            return -1;
        bytes[filled++] = (uint8_t) (high << 4 | low);
        p++;
    }
    if (filled != 16)
        return -1;
    ingest_array_add (self, bytes, 16);
    return 0;
}

const char *
ingest_array_finish (ingest_array_t *self, int *length)
{
    uint8_t *p = self->data;
    if (self->count == 0) {
        //  An empty array has no dimensions: 12 bytes of header only.
        s_put32 (p, 0);
        s_put32 (p + 4, 0);
        s_put32 (p + 8, self->element_oid);
        *length = 12;
        return (const char *) p;
    }
    s_put32 (p, 1);
    s_put32 (p + 4, (uint32_t) self->has_null);
    s_put32 (p + 8, self->element_oid);
    s_put32 (p + 12, (uint32_t) self->count);
    s_put32 (p + 16, 1);
    *length = (int) self->size;
    return (const char *) p;
}
