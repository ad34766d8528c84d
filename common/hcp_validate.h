/*  hcp_validate — the rules a submission must pass before ingest stores it.

    Pure functions, no database and no sockets, so every rule is unit-tested
    on its own (tests/unit/test_validate.c). ingest calls them in order:

        hcp_rejection_t why;
        Hcp__V1__Submit *submit = NULL;
        if (hcp_validate_decode (bytes, size, &limits, &submit, &why) == 0
            && hcp_validate_submit (submit, &limits, hcp_clock_now_ms (),
                                    lookup, catalog, &why) == 0)
            ... store it ...
        else
            ... reply ACK_REJECTED with why.field, why.code, why.reason ...
        hcp__v1__submit__free_unpacked (submit, NULL);

    The rules that need stored data (the delivery a rating names, an id
    stored before with other content) are applied by ingest with the data
    it reads; hcp_validate_rating_delivery holds the comparison.

    Every rejection names the offending field as a path from the Submit
    ("rating.comment", "delivery.rater.type"; "message" when the bytes do
    not decode, "submit" when no fact is set), a stable machine code and a
    one-line reason for people. Codes (the contract adapters may branch on):

        too_large            message over ingest.max_message_bytes
        undecodable          not an hcp.v1.Submit
        no_fact              Submit carries neither a delivery nor a rating
        missing              required field empty or zero
        not_uuid             rating_id is not a UUID (8-4-4-4-12 hex)
        too_long             text longer than allowed
        not_printable_ascii  an id with characters outside 0x21..0x7e
        invalid_utf8         text is not valid UTF-8 (or holds a NUL byte)
        not_digits           division_code is not 1..12 decimal digits
        unknown_item         item code not in the catalog
        inactive_item        item withdrawn from the catalog
        out_of_range         enum or number outside its defined values
        no_dimension_rated   none of the three dimensions was graded
        in_future            time later than the business clock + skew
        unknown_delivery     rating names a delivery never received
        before_delivery      rated before the delivery it rates
        item_mismatch        rating's item differs from its delivery's item
        conflict             id stored before with other content (ingest)
*/
#ifndef HCP_VALIDATE_H_INCLUDED
#define HCP_VALIDATE_H_INCLUDED

#include "hcp/v1/ingest.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Why a submission was refused: what goes back to the adapter, into the
//  log and into rejected_submissions. Fixed buffers: no ownership to track.
typedef struct {
    char field[64];   //  e.g. "rating.comment"
    char code[32];    //  e.g. "invalid_utf8" (see the list above)
    char reason[256]; //  one line for people
} hcp_rejection_t;

//  Limits from the ingest configuration.
typedef struct {
    size_t max_message_bytes; //  ingest.max_message_bytes (default 65536)
    int64_t clock_skew_ms;    //  ingest.clock_skew_seconds × 1000 (default 300 s)
    size_t comment_max_chars; //  ingest.comment_max_chars (default 2000 characters)
} hcp_validate_limits_t;

//  Longest ids and texts accepted (bytes unless said otherwise).
#define HCP_VALIDATE_ID_MAX    64  //  delivery_id: printable ASCII
#define HCP_VALIDATE_KEY_MAX   256 //  rater.key
#define HCP_VALIDATE_NAME_MAX  200 //  rater.name, in characters
#define HCP_VALIDATE_PHONE_MAX 32  //  rater.phone, in characters
#define HCP_VALIDATE_IDNUM_MAX 32  //  rater.id_number, in characters
#define HCP_VALIDATE_DIVISION_MAX                                                             \
    12 //  division_code digits (6 county, 9 township, 12 village)

//  What the catalog says of an item code.
typedef enum {
    HCP_ITEM_UNKNOWN = 0,
    HCP_ITEM_ACTIVE = 1,
    HCP_ITEM_INACTIVE = 2
} hcp_item_state_t;

//  Catalog lookup supplied by the caller (ingest's cached catalog).
typedef hcp_item_state_t (hcp_item_lookup_fn) (void *arg, const char *item_code);

//  Fills limits with the defaults above.
void hcp_validate_limits_default (hcp_validate_limits_t *limits);

//  Sets a rejection: field, code and a printf-style reason (cut to fit).
void hcp_rejection_set (hcp_rejection_t *self, const char *field, const char *code,
                        const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

//  Decodes one request frame into *submit_p and checks what protobuf-c does
//  not: size, UTF-8 validity of every string field (and no NUL byte, which
//  would silently cut a C string). Returns 0 when the message is well
//  formed; -1 with *rejection filled otherwise. *submit_p is set whenever
//  the bytes decode — even when -1 is returned (too large, bad UTF-8) — so
//  the caller can name the fact's id in its reply; the caller frees it with
//  hcp__v1__submit__free_unpacked. A message far over the limit (over 16 ×
//  max_message_bytes) is not decoded at all.
int hcp_validate_decode (const void *data, size_t size, const hcp_validate_limits_t *limits,
                         Hcp__V1__Submit **submit_p, hcp_rejection_t *rejection);

//  Applies the content rules to a decoded submission: ids, catalog, enums,
//  rating count, rater, times against now_ms (the business clock), grades,
//  comment length and UTF-8 of every string. lookup (with lookup_arg) tells
//  whether an item code is in the catalog. Returns 0 if the submission may
//  be stored, -1 with *rejection filled at the first rule broken.
int hcp_validate_submit (const Hcp__V1__Submit *submit, const hcp_validate_limits_t *limits,
                         int64_t now_ms, hcp_item_lookup_fn *lookup, void *lookup_arg,
                         hcp_rejection_t *rejection);

//  The rules between a rating and the delivery it names, given what ingest
//  knows of that delivery: found false when it was never received (then
//  "unknown_delivery": submit the delivery first), else its item code and
//  delivery time (the rating may not be earlier). Returns 0 or -1 with
//  *rejection filled.
int hcp_validate_rating_delivery (const Hcp__V1__Rating *rating, bool found,
                                  const char *delivery_item_code, int64_t delivered_at_ms,
                                  hcp_rejection_t *rejection);

//  The fact's id (rating_id or delivery_id), or "" when the submission has
//  no fact. Owned by submit (may be NULL: then "").
const char *hcp_validate_fact_id (const Hcp__V1__Submit *submit);

//  True if size bytes of text are valid UTF-8 with no NUL byte and no
//  surrogate or overlong form; if chars is not NULL it receives the number
//  of characters (code points).
bool hcp_validate_utf8 (const void *text, size_t size, size_t *chars);

//  True if text is 1..HCP_VALIDATE_ID_MAX printable ASCII characters
//  (0x21..0x7e), the form of a delivery_id.
bool hcp_validate_id_text (const char *text);

#endif
