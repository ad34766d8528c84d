/*  hcp_calendar — see hcp_calendar.h.

    A calendar is a sorted array of years; each year holds one byte per day
    of the year (0 = as the weekday says, 1 = holiday, 2 = adjusted working
    day) and the line each date came from, for messages. The process
    calendar is a global pointer guarded by a mutex; replaced calendars are
    kept (not freed) so that a pointer a caller got from
    hcp_calendar_current stays valid across a reload. Reloads happen only
    when the file changed, so this costs a few KB per edit of the file.
*/
#include "hcp_calendar.h"

#include "hcp_clock.h"
#include "hcp_log.h"

#include <assert.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_PLAIN   0
#define DAY_HOLIDAY 1
#define DAY_WORKDAY 2
#define YEAR_MIN    1970
#define YEAR_MAX    9999

typedef struct {
    int year;
    uint8_t day[366]; //  by day of year (0-based)
    int line[366];    //  line of the date in the file, 0 if not listed
} year_t;

struct _hcp_calendar_t {
    char *name;
    year_t *years; //  sorted by year
    size_t count;
};

//  ---- Civil dates ----------------------------------------------------------
//  Howard Hinnant's algorithms (proleptic Gregorian), exact for any int32
//  day number.

static int32_t
s_days_from_civil (int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days (int32_t z, int *y_p, int *m_p, int *d_p)
{
    int64_t zz = (int64_t) z + 719468;
    int64_t era = (zz >= 0 ? zz : zz - 146096) / 146097;
    int64_t doe = zz - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *y_p = (int) (y + (m <= 2));
    *m_p = (int) m;
    *d_p = (int) d;
}

static int
s_is_leap (int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
hcp_date_parse (const char *text, hcp_date_t *date)
{
    if (!text || strlen (text) != 10 || text[4] != '-' || text[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9'))
            return -1;
    int y = atoi (text), m = atoi (text + 5), d = atoi (text + 8);
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1]
        || (m == 2 && d == 29 && !s_is_leap (y)))
        return -1;
    *date = s_days_from_civil (y, m, d);
    return 0;
}

char *
hcp_date_format (hcp_date_t date, char buf[11])
{
    int y, m, d;
    s_civil_from_days (date, &y, &m, &d);
    //  Years outside 0..9999 cannot be written in 10 bytes; they never
    //  occur in business dates, so clamp the text rather than overflow.
    if (y < 0 || y > 9999)
        snprintf (buf, 11, "%s", y < 0 ? "0000-01-01" : "9999-12-31");
    else
        snprintf (buf, 11, "%04d-%02d-%02d", y, m, d);
    return buf;
}

hcp_date_t
hcp_date_add_days (hcp_date_t from, int n)
{
    return from + n;
}

hcp_date_t
hcp_date_from_ms (int64_t unix_ms)
{
    int64_t local = unix_ms + HCP_SHANGHAI_OFFSET_MS;
    int64_t day = 86400000LL;
    //  Floor division: a time before 1970 still maps to its own date.
    return (hcp_date_t) (local >= 0 ? local / day : -((-local + day - 1) / day));
}

int64_t
hcp_date_start_ms (hcp_date_t date)
{
    return (int64_t) date * 86400000LL - HCP_SHANGHAI_OFFSET_MS;
}

int64_t
hcp_date_end_ms (hcp_date_t date)
{
    return hcp_date_start_ms (date + 1);
}

int
hcp_date_year (hcp_date_t date)
{
    int y, m, d;
    s_civil_from_days (date, &y, &m, &d);
    return y;
}

int
hcp_date_weekday (hcp_date_t date)
{
    //  1970-01-01 was a Thursday (4).
    int r = (int) (((int64_t) date + 3) % 7);
    if (r < 0)
        r += 7;
    return r + 1;
}

//  ---- Provisional answers: counted and logged -------------------------------

static atomic_uint_fast64_t s_provisional_count;
static pthread_mutex_t s_warn_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_warned_years[64];
static int s_warned_count;

uint64_t
hcp_calendar_provisional_count (void)
{
    return (uint64_t) atomic_load (&s_provisional_count);
}

//  Counts one provisional answer and, the first time a year is missing in
//  this process, says so loudly: the operator must add that year.
static void
s_note_provisional (const hcp_calendar_t *self, int year)
{
    atomic_fetch_add (&s_provisional_count, 1);
    pthread_mutex_lock (&s_warn_lock);
    int seen = 0;
    for (int i = 0; i < s_warned_count; i++)
        if (s_warned_years[i] == year)
            seen = 1;
    if (!seen && s_warned_count < (int) (sizeof s_warned_years / sizeof s_warned_years[0]))
        s_warned_years[s_warned_count++] = year;
    pthread_mutex_unlock (&s_warn_lock);
    if (!seen) {
        char year_text[16];
        snprintf (year_text, sizeof year_text, "%d", year);
        hcp_log_kv (HCP_LOG_WARN,
                    "calendar has no data for this year: working days computed on "
                    "Monday-Friday and marked provisional; add the year to the calendar file",
                    "year", year_text, "calendar", self->name, NULL);
    }
}

//  ---- Queries ------------------------------------------------------------------

static const year_t *
s_year (const hcp_calendar_t *self, int year)
{
    size_t low = 0, high = self->count;
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (self->years[mid].year == year)
            return &self->years[mid];
        if (self->years[mid].year < year)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

bool
hcp_calendar_has_year (const hcp_calendar_t *self, int year)
{
    assert (self);
    return s_year (self, year) != NULL;
}

//  The kind of date without counting or logging; *missing tells whether
//  the year is absent from the calendar.
static hcp_day_kind_t
s_kind (const hcp_calendar_t *self, hcp_date_t date, int *year_p, bool *missing)
{
    int y, m, d;
    s_civil_from_days (date, &y, &m, &d);
    *year_p = y;
    int weekend = hcp_date_weekday (date) >= 6;
    const year_t *year = s_year (self, y);
    *missing = year == NULL;
    if (year) {
        int doy = date - s_days_from_civil (y, 1, 1);
        if (year->day[doy] == DAY_HOLIDAY)
            return HCP_DAY_HOLIDAY;
        if (year->day[doy] == DAY_WORKDAY)
            return HCP_DAY_ADJUSTED_WORKDAY;
    }
    return weekend ? HCP_DAY_WEEKEND : HCP_DAY_WORKDAY;
}

hcp_day_kind_t
hcp_calendar_day_kind (const hcp_calendar_t *self, hcp_date_t date, bool *provisional)
{
    assert (self);
    int year;
    bool missing;
    hcp_day_kind_t kind = s_kind (self, date, &year, &missing);
    if (missing)
        s_note_provisional (self, year);
    if (provisional)
        *provisional = missing;
    return kind;
}

const char *
hcp_day_kind_name (hcp_day_kind_t kind)
{
    switch (kind) {
    case HCP_DAY_WORKDAY:
        return "working day";
    case HCP_DAY_ADJUSTED_WORKDAY:
        return "adjusted working day";
    case HCP_DAY_WEEKEND:
        return "weekend";
    case HCP_DAY_HOLIDAY:
        return "holiday";
    }
    return "?";
}

static bool
s_is_working (hcp_day_kind_t kind)
{
    return kind == HCP_DAY_WORKDAY || kind == HCP_DAY_ADJUSTED_WORKDAY;
}

bool
hcp_calendar_is_workday (const hcp_calendar_t *self, hcp_date_t date, bool *provisional)
{
    return s_is_working (hcp_calendar_day_kind (self, date, provisional));
}

//  Walks step (+1 or -1) days from date until n working days were passed.
//  Every day examined whose year is missing makes the answer provisional:
//  its classification was guessed, so the count may be off.
static hcp_date_t
s_walk (const hcp_calendar_t *self, hcp_date_t date, int n, int step, bool *provisional)
{
    assert (self);
    bool any_missing = false;
    int missing_year = 0;
    while (n > 0) {
        date += step;
        int year;
        bool missing;
        if (s_is_working (s_kind (self, date, &year, &missing)))
            n--;
        if (missing && !any_missing) {
            any_missing = true;
            missing_year = year;
        }
    }
    if (any_missing)
        s_note_provisional (self, missing_year);
    if (provisional)
        *provisional = any_missing;
    return date;
}

hcp_date_t
hcp_calendar_add_working_days (const hcp_calendar_t *self, hcp_date_t from, int n,
                               bool *provisional)
{
    //  n < 0 counts backwards, n == 0 is the date itself (never
    //  provisional): both are outside the contract, but harmless.
    if (n < 0)
        return s_walk (self, from, -n, -1, provisional);
    return s_walk (self, from, n, +1, provisional);
}

hcp_date_t
hcp_calendar_sub_working_days (const hcp_calendar_t *self, hcp_date_t date, int n,
                               bool *provisional)
{
    if (n < 0)
        return s_walk (self, date, -n, +1, provisional);
    return s_walk (self, date, n, -1, provisional);
}

const char *
hcp_calendar_name (const hcp_calendar_t *self)
{
    assert (self);
    return self->name;
}

//  ---- Loading ------------------------------------------------------------------

void
hcp_calendar_destroy (hcp_calendar_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->name);
        free ((*self_p)->years);
        free (*self_p);
        *self_p = NULL;
    }
}

static int
s_year_compare (const void *a, const void *b)
{
    return ((const year_t *) a)->year - ((const year_t *) b)->year;
}

static const char *s_weekday_names[] = {"",         "Monday", "Tuesday",  "Wednesday",
                                        "Thursday", "Friday", "Saturday", "Sunday"};

//  Reads one list (holidays or workdays) of a year into year->day. Returns
//  0, or -1 with the error set on root.
static int
s_load_list (hcp_config_t *root, hcp_config_t *list, year_t *year, int mark)
{
    const char *what = mark == DAY_HOLIDAY ? "holidays" : "workdays";
    if (!hcp_config_is_seq (list)) {
        hcp_config_fail (root, list, "expected a list of dates [YYYY-MM-DD, ...]");
        return -1;
    }
    hcp_date_t jan1 = s_days_from_civil (year->year, 1, 1);
    int days = s_is_leap (year->year) ? 366 : 365;
    for (size_t i = 0; i < hcp_config_size (list); i++) {
        hcp_config_t *item = hcp_config_child (list, i);
        const char *text = hcp_config_value (item);
        hcp_date_t date;
        if (!text || hcp_date_parse (text, &date) != 0) {
            hcp_config_fail (root, item, "'%.40s' is not a valid date (expected YYYY-MM-DD)",
                             text ? text : "(a list or map)");
            return -1;
        }
        int doy = date - jan1;
        if (doy < 0 || doy >= days) {
            hcp_config_fail (root, item, "%s is outside its year %d", text, year->year);
            return -1;
        }
        if (year->day[doy] == mark) {
            hcp_config_fail (root, item, "%s is listed twice in %s (first at line %d)", text,
                             what, year->line[doy]);
            return -1;
        }
        if (year->day[doy] != DAY_PLAIN) {
            hcp_config_fail (root, item,
                             "%s is both a holiday and a workday (the other at line %d)", text,
                             year->line[doy]);
            return -1;
        }
        int weekday = hcp_date_weekday (date);
        if (mark == DAY_WORKDAY && weekday < 6) {
            hcp_config_fail (root, item,
                             "%s is a %s: workdays lists only Saturdays and Sundays that are "
                             "working days (调休)",
                             text, s_weekday_names[weekday]);
            return -1;
        }
        year->day[doy] = (uint8_t) mark;
        year->line[doy] = hcp_config_line (item);
    }
    return 0;
}

//  Builds a calendar from a parsed tree. Returns NULL with *error set.
static hcp_calendar_t *
s_from_tree (hcp_config_t *root, const char *name, char **error)
{
    hcp_config_t *years = hcp_config_at (root, "years");
    if (!hcp_config_is_map (years)) {
        if (asprintf (error, "%s:%d: years: %s", name, years ? hcp_config_line (years) : 1,
                      years ? "expected a map of years (2026: {holidays: [...], workdays: "
                              "[...]})"
                            : "missing: the calendar needs a 'years:' map")
            < 0)
            abort ();
        return NULL;
    }
    hcp_calendar_t *self = calloc (1, sizeof *self);
    size_t count = hcp_config_size (years);
    self->years = calloc (count ? count : 1, sizeof *self->years);
    self->name = strdup (name);
    if (!self->years || !self->name)
        abort ();
    int failed = 0;
    for (size_t i = 0; i < count && !failed; i++) {
        hcp_config_t *entry = hcp_config_child (years, i);
        const char *key = hcp_config_key (entry);
        char *end = NULL;
        long number = strtol (key, &end, 10);
        if (strlen (key) != 4 || *end || number < YEAR_MIN || number > YEAR_MAX) {
            hcp_config_fail (root, entry, "not a year (expected %d..%d)", YEAR_MIN, YEAR_MAX);
            failed = 1;
            break;
        }
        year_t *year = &self->years[self->count++];
        year->year = (int) number;
        if (!hcp_config_is_map (entry)) {
            hcp_config_fail (root, entry, "expected a map with holidays and workdays");
            failed = 1;
            break;
        }
        for (size_t k = 0; k < hcp_config_size (entry); k++) {
            hcp_config_t *field = hcp_config_child (entry, k);
            const char *field_key = hcp_config_key (field);
            if (strcmp (field_key, "holidays") != 0 && strcmp (field_key, "workdays") != 0) {
                hcp_config_fail (root, field, "unknown key (expected holidays, workdays)");
                failed = 1;
                break;
            }
        }
        //  Both lists are required: a missing one is more likely a typo
        //  than a year without holidays; "workdays: []" says it outright.
        for (int mark = DAY_HOLIDAY; mark <= DAY_WORKDAY && !failed; mark++) {
            const char *field_key = mark == DAY_HOLIDAY ? "holidays" : "workdays";
            hcp_config_t *list = NULL;
            for (size_t k = 0; k < hcp_config_size (entry); k++)
                if (!strcmp (hcp_config_key (hcp_config_child (entry, k)), field_key))
                    list = hcp_config_child (entry, k);
            if (!list) {
                hcp_config_fail (root, entry, "missing %s (write '%s: []' if there are none)",
                                 field_key, field_key);
                failed = 1;
            }
            else if (s_load_list (root, list, year, mark) != 0)
                failed = 1;
        }
    }
    if (failed) {
        *error = strdup (hcp_config_error (root));
        if (!*error)
            abort ();
        hcp_calendar_destroy (&self);
        return NULL;
    }
    //  Duplicate year keys are refused by the YAML loader already.
    qsort (self->years, self->count, sizeof *self->years, s_year_compare);
    return self;
}

hcp_calendar_t *
hcp_calendar_parse (const char *text, const char *name, char **error)
{
    char *local = NULL;
    if (!error)
        error = &local;
    *error = NULL;
    if (!name)
        name = "<calendar>";
    hcp_config_t *root = hcp_config_parse (text, name, error);
    hcp_calendar_t *self = root ? s_from_tree (root, name, error) : NULL;
    hcp_config_destroy (&root);
    free (local);
    return self;
}

hcp_calendar_t *
hcp_calendar_load (const char *path, char **error)
{
    char *local = NULL;
    if (!error)
        error = &local;
    *error = NULL;
    hcp_config_t *root = hcp_config_load (path, error);
    hcp_calendar_t *self = root ? s_from_tree (root, path, error) : NULL;
    hcp_config_destroy (&root);
    free (local);
    return self;
}

//  ---- The process calendar ---------------------------------------------------

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static hcp_calendar_t *s_current;
static char *s_path;       //  file behind s_current (or the one that failed)
static struct stat s_stat; //  of s_path when last looked at
static int s_stat_valid;
static hcp_calendar_t **s_retired; //  replaced calendars, kept valid
static size_t s_retired_count;

static void
s_free_all (void)
{
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_retired_count; i++)
        hcp_calendar_destroy (&s_retired[i]);
    free (s_retired);
    s_retired = NULL;
    s_retired_count = 0;
    hcp_calendar_destroy (&s_current);
    free (s_path);
    s_path = NULL;
    pthread_mutex_unlock (&s_lock);
}

//  Installs calendar as current (lock held), retiring the old one.
static void
s_install (hcp_calendar_t *calendar, const char *path, const struct stat *st)
{
    static int registered = 0;
    if (!registered) {
        registered = 1;
        atexit (s_free_all);
    }
    if (s_current) {
        s_retired = realloc (s_retired, (s_retired_count + 1) * sizeof *s_retired);
        if (!s_retired)
            abort ();
        s_retired[s_retired_count++] = s_current;
    }
    s_current = calendar;
    if (path != s_path) {
        free (s_path);
        s_path = path ? strdup (path) : NULL;
    }
    s_stat_valid = st != NULL;
    if (st)
        s_stat = *st;
}

static int
s_is_file (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

char *
hcp_calendar_default_path (char *buf, size_t size)
{
    static const char *relative = "deploy/config/calendar-cn.yaml";
    if (s_is_file (relative)) {
        snprintf (buf, size, "%s", relative);
        return buf;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        //  build/bin/hcp-x, build/asan/bin/hcp-x, build/tests/unit/t → project root
        char *dir = dirname (exe);
        for (int up = 0; up < 4; up++) {
            snprintf (buf, size, "%s/%s", dir, relative);
            if (s_is_file (buf))
                return buf;
            dir = dirname (dir);
        }
    }
    if (s_is_file ("/usr/share/hcp/calendar-cn.yaml")) {
        snprintf (buf, size, "%s", "/usr/share/hcp/calendar-cn.yaml");
        return buf;
    }
    return NULL;
}

int
hcp_calendar_use_file (const char *path, char **error)
{
    char *local = NULL;
    if (!error)
        error = &local;
    *error = NULL;
    struct stat st;
    int have_stat = stat (path, &st) == 0;
    hcp_calendar_t *calendar = hcp_calendar_load (path, error);
    if (!calendar) {
        free (local);
        return -1;
    }
    pthread_mutex_lock (&s_lock);
    s_install (calendar, path, have_stat ? &st : NULL);
    pthread_mutex_unlock (&s_lock);
    hcp_info ("calendar loaded from %s (%zu years)", path, calendar->count);
    free (local);
    return 0;
}

int
hcp_calendar_configure (hcp_config_t *config, char **error)
{
    //  Without a config tree, the environment override alone (the same
    //  variable hcp_config_str would read).
    const char *path = config ? NULL : getenv ("HCP_CALENDAR_FILE");
    if (config && hcp_config_str (config, "calendar.file", NULL, &path) != 0) {
        *error = strdup (hcp_config_error (config));
        return -1;
    }
    char buf[PATH_MAX];
    if (!path || !*path)
        path = hcp_calendar_default_path (buf, sizeof buf);
    if (!path) {
        if (asprintf (error,
                      "no calendar file: set calendar.file (HCP_CALENDAR_FILE), or install "
                      "deploy/config/calendar-cn.yaml as /usr/share/hcp/calendar-cn.yaml")
            < 0)
            abort ();
        return -1;
    }
    return hcp_calendar_use_file (path, error);
}

hcp_calendar_t *
hcp_calendar_current (void)
{
    pthread_mutex_lock (&s_lock);
    hcp_calendar_t *current = s_current;
    pthread_mutex_unlock (&s_lock);
    if (current)
        return current;
    //  First use without configure: the environment override or the
    //  default file. Two threads racing here both load; the second install
    //  retires the first calendar, which stays valid.
    char *error = NULL;
    hcp_calendar_configure (NULL, &error);
    pthread_mutex_lock (&s_lock);
    if (!s_current) {
        hcp_log_kv (HCP_LOG_ERROR,
                    "no usable calendar: every working-day answer is provisional "
                    "(Monday-Friday) until the calendar file is fixed",
                    "error", error ? error : "unknown", NULL);
        hcp_calendar_t *empty = calloc (1, sizeof *empty);
        empty->name = strdup ("<no calendar>");
        empty->years = calloc (1, sizeof *empty->years);
        if (!empty->name || !empty->years)
            abort ();
        //  Keep the path that failed, so a reload picks the file up once
        //  it is fixed (its stat is unknown: the next reload tries it).
        const char *retry = getenv ("HCP_CALENDAR_FILE");
        char buf[PATH_MAX];
        if (!retry || !*retry)
            retry = hcp_calendar_default_path (buf, sizeof buf);
        s_install (empty, retry, NULL);
    }
    current = s_current;
    pthread_mutex_unlock (&s_lock);
    free (error);
    return current;
}

int
hcp_calendar_reload (void)
{
    pthread_mutex_lock (&s_lock);
    if (!s_path) {
        pthread_mutex_unlock (&s_lock);
        return 0;
    }
    char *path = strdup (s_path);
    struct stat st;
    int found = stat (path, &st) == 0;
    int unchanged = found && s_stat_valid && st.st_ino == s_stat.st_ino
                    && st.st_size == s_stat.st_size
                    && st.st_mtim.tv_sec == s_stat.st_mtim.tv_sec
                    && st.st_mtim.tv_nsec == s_stat.st_mtim.tv_nsec;
    pthread_mutex_unlock (&s_lock);
    int rc = 0;
    if (!found) {
        //  Logged every time: a vanished calendar file needs an operator.
        hcp_log_kv (HCP_LOG_ERROR, "calendar file is gone; keeping the calendar in force",
                    "file", path, "error", strerror (errno), NULL);
        rc = -1;
    }
    else if (!unchanged) {
        char *error = NULL;
        hcp_calendar_t *calendar = hcp_calendar_load (path, &error);
        pthread_mutex_lock (&s_lock);
        if (calendar) {
            s_install (calendar, s_path, &st);
            rc = 1;
        }
        else {
            //  Remember the broken file's stat: it is reported once, and
            //  tried again when it changes.
            s_stat = st;
            s_stat_valid = 1;
            rc = -1;
        }
        pthread_mutex_unlock (&s_lock);
        if (calendar)
            hcp_info ("calendar reloaded from %s (%zu years)", path, calendar->count);
        else
            hcp_log_kv (HCP_LOG_ERROR,
                        "calendar file changed but cannot be loaded; keeping the calendar "
                        "in force",
                        "error", error, NULL);
        free (error);
    }
    free (path);
    return rc;
}
