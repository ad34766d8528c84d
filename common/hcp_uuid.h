/*  hcp_uuid — time-ordered identifiers (UUIDv7, RFC 9562).

    Rating ids are chosen by adapters; UUIDv7 keeps the primary-key index
    append-mostly, which keeps ingest fast once tables outgrow memory.
*/
#ifndef HCP_UUID_H_INCLUDED
#define HCP_UUID_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define HCP_UUID_STR_LEN 37 //  36 characters and the terminating NUL

//  Writes a new UUIDv7 for time ms (Unix milliseconds; 0 = now) into out,
//  in canonical lower-case form.
void hcp_uuid_v7 (int64_t ms, char out[HCP_UUID_STR_LEN]);

//  Writes a name-based UUID (version 5, SHA-1) derived from namespace text
//  and name; the same inputs always give the same id. Used for ids of
//  paper-channel records that carry only a reference number.
void hcp_uuid_from_name (const char *namespace_text, const char *name,
                         char out[HCP_UUID_STR_LEN]);

//  True if text is a UUID in canonical 8-4-4-4-12 hexadecimal form.
bool hcp_uuid_valid (const char *text);

#endif
