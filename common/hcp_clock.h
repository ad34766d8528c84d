/*  hcp_clock — the business clock.

    Deadlines, rating windows and reminders are decided by this clock, never
    by PostgreSQL's now() or a bare time(): tests run weeks of the workflow
    in seconds by injecting the time.

    By default it is the system's real time. If the environment variable
    HCP_CLOCK_FILE names a file, the time is read from it on every call: a
    Unix time in milliseconds, or "YYYY-MM-DDTHH:MM:SS+08:00"/"...Z". Tests
    and drills write that file to move every service's clock at once.
*/
#ifndef HCP_CLOCK_H_INCLUDED
#define HCP_CLOCK_H_INCLUDED

#include <stdint.h>

//  Milliseconds since the Unix epoch, UTC.
int64_t hcp_clock_now_ms (void);

//  Sets (ms > 0) or clears (ms = 0) an in-process override that wins over
//  everything; for unit tests that drive the logic directly.
void hcp_clock_set_ms (int64_t ms);

//  Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS][.mmm](Z|+hh:mm|-hh:mm)" or
//  "YYYY-MM-DD HH:MM:SS" (no zone means Asia/Shanghai, UTC+8) into Unix
//  milliseconds. A bare date means 00:00 in Asia/Shanghai. Returns 0, or -1
//  when the text is not such a time.
int hcp_clock_parse (const char *text, int64_t *ms);

//  Formats Unix milliseconds as "YYYY-MM-DDTHH:MM:SS+08:00" (Asia/Shanghai)
//  into buf (at least 32 bytes). Returns buf.
char *hcp_clock_format (int64_t ms, char *buf);

//  Offset of Asia/Shanghai from UTC. China has kept UTC+8 without
//  daylight-saving time since 1991.
#define HCP_SHANGHAI_OFFSET_MS (8LL * 3600 * 1000)

#endif
