/*  hcp_log — see hcp_log.h. */
#include "hcp_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char s_program[64] = "hcp";
static hcp_log_level_t s_level = HCP_LOG_INFO;
static int s_json = 0;

static const char *s_level_names[] = {"debug", "info", "warn", "error"};

int
hcp_log_setup (const char *program, const char *level, const char *format)
{
    int new_level = s_level;
    int new_json = s_json;
    if (level) {
        new_level = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp (level, s_level_names[i]) == 0)
                new_level = i;
        if (new_level < 0)
            return -1;
    }
    if (format) {
        if (strcmp (format, "json") == 0)
            new_json = 1;
        else if (strcmp (format, "text") == 0)
            new_json = 0;
        else
            return -1;
    }
    if (program)
        snprintf (s_program, sizeof s_program, "%s", program);
    s_level = (hcp_log_level_t) new_level;
    s_json = new_json;
    return 0;
}

//  Appends src to buf at *len, JSON-escaped when json is set; truncates
//  quietly at the end of the buffer (a log line is never worth a crash).
static void
s_append (char *buf, size_t size, size_t *len, const char *src, int json)
{
    for (const unsigned char *p = (const unsigned char *) src; *p && *len + 7 < size; p++) {
        if (json && (*p == '"' || *p == '\\')) {
            buf[(*len)++] = '\\';
            buf[(*len)++] = (char) *p;
        }
        else if (*p < 0x20) {
            *len += (size_t) snprintf (buf + *len, size - *len, json ? "\\u%04x" : "\\x%02x",
                                       *p);
        }
        else
            buf[(*len)++] = (char) *p;
    }
    buf[*len] = 0;
}

static void
s_write (hcp_log_level_t level, const char *msg, va_list *pairs)
{
    if (level < s_level)
        return;
    char buf[8192];
    size_t len = 0;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char when[40];
    size_t stamp = strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (when + stamp, sizeof when - stamp, ".%03dZ", (int) (ts.tv_nsec / 1000000));
    if (s_json) {
        len = (size_t) snprintf (
            buf, sizeof buf,
            "{\"time\":\"%s\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%d,"
            "\"msg\":\"",
            when, s_level_names[level], s_program, (int) getpid ());
        s_append (buf, sizeof buf, &len, msg, 1);
        s_append (buf, sizeof buf, &len, "\"", 0);
    }
    else {
        len = (size_t) snprintf (buf, sizeof buf, "%s %-5s %s[%d]: ", when,
                                 s_level_names[level], s_program, (int) getpid ());
        s_append (buf, sizeof buf, &len, msg, 0);
    }
    if (pairs) {
        const char *key;
        while ((key = va_arg (*pairs, const char *)) != NULL) {
            const char *value = va_arg (*pairs, const char *);
            if (!value)
                value = "";
            if (s_json) {
                s_append (buf, sizeof buf, &len, ",\"", 0);
                s_append (buf, sizeof buf, &len, key, 1);
                s_append (buf, sizeof buf, &len, "\":\"", 0);
                s_append (buf, sizeof buf, &len, value, 1);
                s_append (buf, sizeof buf, &len, "\"", 0);
            }
            else {
                s_append (buf, sizeof buf, &len, " ", 0);
                s_append (buf, sizeof buf, &len, key, 0);
                s_append (buf, sizeof buf, &len, "=", 0);
                int quote = strchr (value, ' ') != NULL || *value == 0;
                if (quote)
                    s_append (buf, sizeof buf, &len, "\"", 0);
                s_append (buf, sizeof buf, &len, value, 0);
                if (quote)
                    s_append (buf, sizeof buf, &len, "\"", 0);
            }
        }
    }
    if (s_json)
        s_append (buf, sizeof buf, &len, "}", 0);
    if (len + 1 < sizeof buf)
        buf[len++] = '\n';
    else
        buf[sizeof buf - 1] = '\n';
    ssize_t rc = write (STDERR_FILENO, buf, len);
    (void) rc;
}

void
hcp_log (hcp_log_level_t level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char msg[4096];
    va_list args;
    va_start (args, fmt);
    vsnprintf (msg, sizeof msg, fmt, args);
    va_end (args);
    s_write (level, msg, NULL);
}

void
hcp_log_kv (hcp_log_level_t level, const char *msg, ...)
{
    va_list args;
    va_start (args, msg);
    s_write (level, msg, &args);
    va_end (args);
}
