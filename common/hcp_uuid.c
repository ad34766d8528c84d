/*  hcp_uuid — see hcp_uuid.h. */
#include "hcp_uuid.h"

#include "hcp_clock.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

void
hcp_uuid_v7 (int64_t ms, char out[HCP_UUID_STR_LEN])
{
    if (ms <= 0)
        ms = hcp_clock_now_ms ();
    uuid_t bytes;
    if (getrandom (bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes)
        uuid_generate_random (bytes);
    uint64_t stamp = (uint64_t) ms;
    for (int i = 0; i < 6; i++)
        bytes[i] = (unsigned char) (stamp >> (40 - 8 * i));
    bytes[6] = (unsigned char) (0x70 | (bytes[6] & 0x0f)); //  version 7
    bytes[8] = (unsigned char) (0x80 | (bytes[8] & 0x3f)); //  variant 10
    uuid_unparse_lower (bytes, out);
}

void
hcp_uuid_from_name (const char *namespace_text, const char *name, char out[HCP_UUID_STR_LEN])
{
    //  The namespace is itself derived from its text under the URL
    //  namespace, so callers can use readable names ("hcp:suggestion-box").
    uuid_t ns, id;
    uuid_generate_sha1 (ns, *uuid_get_template ("url"), namespace_text,
                        strlen (namespace_text));
    uuid_generate_sha1 (id, ns, name, strlen (name));
    uuid_unparse_lower (id, out);
}

bool
hcp_uuid_valid (const char *text)
{
    if (!text || strlen (text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
        }
        else if (!isxdigit ((unsigned char) text[i]))
            return false;
    }
    return true;
}
