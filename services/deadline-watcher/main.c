/*  hcp-deadline-watcher — reminders, overdue marks and escalations of case
    deadlines, and their recomputation when the working-day calendar changes.

    The loop: every deadline_watcher.sweep_ms it reads the business clock
    (hcp_clock: HCP_CLOCK_FILE moves it in tests and drills), checks whether
    the calendar file changed, and sweeps (deadline_watcher.c). PostgreSQL
    holds all the state, so any number of instances may run and any of them
    may be killed at any time: see README.md.
*/
#include "deadline_watcher.h"

#include "hcp_calendar.h"
#include "hcp_clock.h"
#include "hcp_deadline.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const hcp_service_info_t s_info = {
    "deadline-watcher",
    "warns before case deadlines fall due, marks them overdue and escalates them to the "
    "General Office; recomputes them when the calendar changes",
    "  database.conninfo                     PostgreSQL conninfo (default \"\": PGHOST, "
    "PGDATABASE...)\n"
    "  deadline_watcher.sweep_ms             how often to look for due work (default "
    "1000)\n"
    "  deadline_watcher.warn_working_days    reminder this many working days before the "
    "due "
    "day (default 1)\n"
    "  deadline_watcher.batch                deadlines per transaction (default 100)\n"
    "  deadline_watcher.escalate_to          unit code of the General Office (default "
    "GO)\n"
    "  deadline_watcher.recompute_ms         also recompute every open deadline this "
    "often, "
    "0 = only at\n"
    "                                        start, on SIGHUP and when the calendar file "
    "changes (default 300000)\n"
    "  deadline_watcher.provisional_log_ms   repeat the provisional-deadline warning "
    "this "
    "often,\n"
    "                                        0 = every sweep (default 60000)\n"
    "  calendar.file                         working-day calendar (default "
    "deploy/config/calendar-cn.yaml,\n"
    "                                        else /usr/share/hcp/calendar-cn.yaml); "
    "reloaded when it changes\n"
    "\nSignals: SIGHUP reloads the calendar and recomputes every open deadline; "
    "SIGTERM/SIGINT stop\nafter the current transaction.\n"
    "\nTimes come from the business clock (HCP_CLOCK_FILE in tests and drills).\n"};

static volatile sig_atomic_t s_reload = 0;

static void
s_on_sighup (int signum)
{
    (void) signum;
    s_reload = 1;
}

static int64_t
s_monotonic_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Warns at start-up when the unit escalations go to is not in the catalog:
//  escalations still happen (the code is recorded), but nobody may read them.
static void
s_check_unit (hcp_db_t *db, const char *unit_code)
{
    if (hcp_db_prepare (db, "dw_unit_exists", "SELECT 1 FROM units WHERE unit_code = $1"))
        return;
    const char *values[] = {unit_code};
    PGresult *res = hcp_db_run (db, "dw_unit_exists", 1, values);
    if (hcp_db_ok (db, res) && PQntuples (res) == 0)
        hcp_log_kv (HCP_LOG_WARN,
                    "deadline_watcher.escalate_to is not a unit of the catalog; escalations "
                    "are recorded under that code anyway",
                    "escalate_to", unit_code, NULL);
    PQclear (res);
}

int
main (int argc, char **argv)
{
    hcp_config_t *config = hcp_service_start (&s_info, &argc, argv);
    if (argc > 1) {
        fprintf (stderr, "hcp-deadline-watcher: unexpected argument '%s' (see --help)\n",
                 argv[1]);
        hcp_config_destroy (&config);
        return 2;
    }
    const char *conninfo = hcp_service_conninfo (config);
    int sweep_ms = (int) hcp_service_int (config, "deadline_watcher.sweep_ms", 1000, 10,
                                          3600000);
    int batch = (int) hcp_service_int (config, "deadline_watcher.batch", 100, 1, 10000);
    const char *escalate_to = hcp_service_str (config, "deadline_watcher.escalate_to", "GO");
    int64_t recompute_ms = hcp_service_int (config, "deadline_watcher.recompute_ms", 300000, 0,
                                            86400000);
    int64_t provisional_log_ms = hcp_service_int (
        config, "deadline_watcher.provisional_log_ms", 60000, 0, 86400000);
    char *error = NULL;
    if (hcp_deadline_configure (config, &error) || hcp_calendar_configure (config, &error)) {
        hcp_error ("configuration: %s", error ? error : "unknown error");
        free (error);
        hcp_config_destroy (&config);
        return 1;
    }
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_sighup;
    sigemptyset (&action.sa_mask);
    sigaction (SIGHUP, &action, NULL);

    char host[128] = "";
    gethostname (host, sizeof host - 1);
    char instance[192];
    snprintf (instance, sizeof instance, "deadline-watcher@%s:%d", host, (int) getpid ());
    char sweep_text[16], batch_text[16], warn_text[16];
    snprintf (sweep_text, sizeof sweep_text, "%d", sweep_ms);
    snprintf (batch_text, sizeof batch_text, "%d", batch);
    snprintf (warn_text, sizeof warn_text, "%d", hcp_deadline_warn_working_days ());
    hcp_log_kv (HCP_LOG_INFO, "starting", "instance", instance, "sweep_ms", sweep_text,
                "batch", batch_text, "warn_working_days", warn_text, "escalate_to",
                escalate_to, "calendar", hcp_calendar_name (hcp_calendar_current ()), NULL);

    hcp_db_t *db = hcp_db_new (conninfo, "deadline-watcher");
    volatile int *stop = hcp_service_stop_flag ();
    if (hcp_db_ensure (db, -1, stop) == 0)
        s_check_unit (db, escalate_to);
    hcp_deadline_watcher_options_t options = {batch, hcp_deadline_warn_working_days (),
                                              escalate_to, instance, stop};
    hcp_deadline_watcher_t *watcher = hcp_deadline_watcher_new (db, &options);

    //  Recompute once at start: the calendar may have changed while no
    //  watcher ran, or another process may have used an older one.
    bool recompute_due = true;
    bool log_provisional = true;
    int64_t next_recompute_ms = 0;
    int64_t next_provisional_log_ms = 0;
    long last_provisional = -1;
    while (!hcp_service_stopping ()) {
        if (hcp_db_lost (db)) {
            hcp_warn ("database connection lost: reconnecting");
            if (hcp_db_ensure (db, -1, stop))
                break;
        }
        if (s_reload) {
            s_reload = 0;
            int rc = hcp_calendar_reload ();
            hcp_log_kv (HCP_LOG_INFO, "SIGHUP: recomputing every open deadline", "calendar",
                        rc == 1   ? "reloaded"
                        : rc == 0 ? "unchanged"
                                  : "reload failed, kept",
                        NULL);
            recompute_due = true;
            log_provisional = true;
        }
        else if (hcp_calendar_reload () == 1) {
            hcp_info ("calendar file changed: recomputing every open deadline");
            recompute_due = true;
            log_provisional = true;
        }
        if (recompute_ms > 0 && s_monotonic_ms () >= next_recompute_ms)
            recompute_due = true;
        if (recompute_due) {
            hcp_deadline_watcher_stats_t stats = {0};
            if (hcp_deadline_watcher_recompute (watcher, hcp_calendar_current (),
                                                hcp_clock_now_ms (), log_provisional, &stats)
                == 0) {
                recompute_due = false;
                log_provisional = false;
                next_recompute_ms = s_monotonic_ms () + recompute_ms;
                char examined[24], changed[24], provisional[24];
                snprintf (examined, sizeof examined, "%ld", stats.examined);
                snprintf (changed, sizeof changed, "%ld", stats.recomputed);
                snprintf (provisional, sizeof provisional, "%ld", stats.provisional);
                hcp_log_kv (stats.recomputed ? HCP_LOG_WARN : HCP_LOG_DEBUG,
                            "open deadlines recomputed with the calendar", "examined",
                            examined, "changed", changed, "provisional", provisional, NULL);
            }
            else {
                hcp_log_kv (hcp_db_lost (db) ? HCP_LOG_WARN : HCP_LOG_ERROR,
                            "recomputing deadlines failed, will retry", "error",
                            hcp_db_error (db), NULL);
                if (hcp_db_lost (db))
                    continue; //  reconnect first (top of the loop)
            }
        }
        hcp_deadline_watcher_stats_t stats = {0};
        if (hcp_deadline_watcher_sweep (watcher, hcp_clock_now_ms (), &stats))
            hcp_log_kv (hcp_db_lost (db) ? HCP_LOG_WARN : HCP_LOG_ERROR,
                        "sweep failed, will retry", "error", hcp_db_error (db), NULL);

        long provisional = 0;
        char first_due[11] = "";
        if (hcp_deadline_watcher_provisional (watcher, &provisional, first_due) == 0) {
            int64_t now = s_monotonic_ms ();
            if (provisional > 0
                && (provisional != last_provisional || now >= next_provisional_log_ms)) {
                char count[24];
                snprintf (count, sizeof count, "%ld", provisional);
                hcp_log_kv (HCP_LOG_WARN,
                            "open deadlines are provisional (calendar year missing): add the "
                            "year to the calendar file, then SIGHUP or just save it",
                            "count", count, "earliest_due_on", first_due, "calendar",
                            hcp_calendar_name (hcp_calendar_current ()), NULL);
                next_provisional_log_ms = now + provisional_log_ms;
            }
            else if (provisional == 0 && last_provisional > 0)
                hcp_info ("no provisional deadline left");
            last_provisional = provisional;
        }
        if (!hcp_service_stopping () && !s_reload)
            poll (NULL, 0, sweep_ms); //  a signal ends the wait early
    }
    hcp_info ("stopped");
    hcp_deadline_watcher_destroy (&watcher);
    hcp_db_destroy (&db);
    hcp_config_destroy (&config);
    return 0;
}
