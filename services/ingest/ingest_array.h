/*  ingest_array — one-dimensional PostgreSQL arrays in binary wire format.

    ingest sends a whole batch as one statement whose parameters are arrays
    ("INSERT ... SELECT FROM unnest ($1::uuid[], $2::text[], ...)"). Binary
    format needs no quoting or escaping at all — text from adapters goes to
    the server byte for byte, as data — and costs the server no parsing.

    Layout (PostgreSQL array_recv): int32 ndim, int32 has-null flag, uint32
    element type OID, then per dimension int32 length and int32 lower bound,
    then per element int32 byte length (-1 for NULL) and the bytes. All
    integers big-endian.

        ingest_array_t ids;
        ingest_array_init (&ids, INGEST_OID_TEXT);
        ingest_array_add_text (&ids, "D-1");
        int length;
        const char *value = ingest_array_finish (&ids, &length);
        ... PQexecPrepared with format 1 (binary) ...
        ingest_array_free (&ids);
*/
#ifndef INGEST_ARRAY_H_INCLUDED
#define INGEST_ARRAY_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Element type OIDs (pg_type), stable across PostgreSQL versions.
#define INGEST_OID_BYTEA       17
#define INGEST_OID_INT8        20
#define INGEST_OID_INT2        21
#define INGEST_OID_INT4        23
#define INGEST_OID_TEXT        25
#define INGEST_OID_TIMESTAMPTZ 1184
#define INGEST_OID_UUID        2950

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    uint32_t element_oid;
    int32_t count;
    int has_null;
} ingest_array_t;

//  Prepares an empty array of elements of type element_oid.
void ingest_array_init (ingest_array_t *self, uint32_t element_oid);

//  Empties the array, keeping its memory for the next batch.
void ingest_array_reset (ingest_array_t *self);

//  Frees the memory.
void ingest_array_free (ingest_array_t *self);

//  Appends one element of length bytes (length < 0: SQL NULL).
void ingest_array_add (ingest_array_t *self, const void *bytes, int length);

//  Appends text (NULL or, when empty_is_null, "" → SQL NULL).
void ingest_array_add_text (ingest_array_t *self, const char *text, int empty_is_null);

//  Appends an int2 / int4 / int8.
void ingest_array_add_int2 (ingest_array_t *self, int value);
void ingest_array_add_int4 (ingest_array_t *self, int32_t value);
void ingest_array_add_int8 (ingest_array_t *self, int64_t value);

//  Appends a timestamptz given in Unix milliseconds (exact: the server
//  keeps microseconds since 2000-01-01).
void ingest_array_add_timestamptz_ms (ingest_array_t *self, int64_t ms);

//  Appends a uuid from its canonical text (the caller validated it).
//  Returns 0, or -1 (nothing appended) if text is not a UUID.
int ingest_array_add_uuid (ingest_array_t *self, const char *text);

//  Writes the header and returns the bytes to pass as a binary parameter,
//  with their length in *length. Valid until the next change to self.
const char *ingest_array_finish (ingest_array_t *self, int *length);

#endif
