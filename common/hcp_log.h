/*  hcp_log — structured logging for every hcp binary.

    One line per record on stderr, either "text" (for people at a terminal)
    or "json" (one object per line, for log collectors). Every record has a
    time, a level, the program name and a message; callers add key=value
    context with hcp_log_kv ("field", "rating.comment", ...).

    Thread-safe: each record is formatted in a local buffer and written with
    one write(2).
*/
#ifndef HCP_LOG_H_INCLUDED
#define HCP_LOG_H_INCLUDED

#include <stdarg.h>

typedef enum {
    HCP_LOG_DEBUG = 0,
    HCP_LOG_INFO = 1,
    HCP_LOG_WARN = 2,
    HCP_LOG_ERROR = 3
} hcp_log_level_t;

//  Sets the program name shown in every record, the least level written
//  and the format ("text" or "json"). Returns 0, or -1 if level or format
//  is not known (the settings are then unchanged).
int hcp_log_setup (const char *program, const char *level, const char *format);

//  Writes one record. fmt is printf-style.
void hcp_log (hcp_log_level_t level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Writes one record with context: pairs of (key, value) strings ended by
//  NULL, e.g. hcp_log_kv (HCP_LOG_WARN, "rejected", "field", "rating.id",
//  "reason", "not a UUID", NULL). Values are escaped for the format.
void hcp_log_kv (hcp_log_level_t level, const char *msg, ...);

#define hcp_debug(...) hcp_log (HCP_LOG_DEBUG, __VA_ARGS__)
#define hcp_info(...)  hcp_log (HCP_LOG_INFO, __VA_ARGS__)
#define hcp_warn(...)  hcp_log (HCP_LOG_WARN, __VA_ARGS__)
#define hcp_error(...) hcp_log (HCP_LOG_ERROR, __VA_ARGS__)

#endif
