/*  hcp_clock — see hcp_clock.h. */
#include "hcp_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t s_override_ms = 0;

void
hcp_clock_set_ms (int64_t ms)
{
    s_override_ms = ms;
}

int64_t
hcp_clock_now_ms (void)
{
    if (s_override_ms > 0)
        return s_override_ms;
    const char *path = getenv ("HCP_CLOCK_FILE");
    if (path && *path) {
        FILE *file = fopen (path, "r");
        if (file) {
            char text[64] = "";
            size_t got = fread (text, 1, sizeof text - 1, file);
            fclose (file);
            text[got] = 0;
            text[strcspn (text, "\r\n")] = 0;
            int64_t ms;
            if (hcp_clock_parse (text, &ms) == 0)
                return ms;
        }
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian).
static int64_t
s_days_from_civil (int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

int
hcp_clock_parse (const char *text, int64_t *ms)
{
    if (!text || !*text)
        return -1;
    //  A bare number is Unix milliseconds.
    char *end;
    long long number = strtoll (text, &end, 10);
    if (*end == 0 && end - text > 8) {
        *ms = number;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, s = 0, frac = 0, n = 0;
    if (sscanf (text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > month_days[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    const char *p = text + 10;
    int64_t offset_ms = HCP_SHANGHAI_OFFSET_MS;
    if (*p == 'T' || *p == ' ') {
        int m = 0;
        if (sscanf (p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
            return -1;
        p += 1 + m;
        if (*p == ':') {
            if (sscanf (p + 1, "%2d%n", &s, &m) != 1 || m != 2)
                return -1;
            p += 3;
            if (*p == '.') {
                int digits = 0;
                p++;
                while (*p >= '0' && *p <= '9') {
                    if (digits < 3)
                        frac = frac * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return -1;
                for (; digits < 3; digits++)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || s > 60)
            return -1;
        if (*p == 'Z') {
            offset_ms = 0;
            p++;
        }
        else if (*p == '+' || *p == '-') {
            int oh, om;
            if (sscanf (p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
                return -1;
            offset_ms = ((int64_t) oh * 60 + om) * 60000 * (*p == '-' ? -1 : 1);
            p += 6;
        }
    }
    if (*p)
        return -1;
    int64_t days = s_days_from_civil (y, (unsigned) mo, (unsigned) d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000LL + s * 1000LL + frac - offset_ms;
    return 0;
}

char *
hcp_clock_format (int64_t ms, char *buf)
{
    time_t seconds = (time_t) ((ms + HCP_SHANGHAI_OFFSET_MS) / 1000);
    if ((ms + HCP_SHANGHAI_OFFSET_MS) % 1000 < 0)
        seconds--;
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (buf, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    return buf;
}
