/*  hcp-default-rater — the 7-natural-day default rating of Art. 11.

    Loop: follow the events (delivery.stored opens a window, rating.stored
    closes it), every sweep_ms apply the defaults of the windows whose end
    passed (business clock, hcp_clock), every catchup_ms open the windows
    that deliveries lack. Each step is its own transaction; SIGTERM lets the
    one in progress finish. See README.md.
*/
#include "rater.h"

#include "hcp_bus.h"
#include "hcp_clock.h"
#include "hcp_db.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const hcp_service_info_t s_info = {
    "default-rater",
    "stores the default rating (基本满意, Art. 11) when a delivery's rating window ends "
    "unrated",
    "  database.conninfo             PostgreSQL conninfo (default: libpq's PG* environment)\n"
    "  bus.subscribe                 hcp-bus XPUB endpoint "
    "(default " HCP_BUS_SUBSCRIBE_ENDPOINT ")\n"
    "  default_rater.stages          stages whose deliveries open a window (default\n"
    "                                [application, consultation, completion])\n"
    "  default_rater.window_days     natural days after the delivery day (default 7)\n"
    "  default_rater.sweep_ms        how often due windows are looked for (default 1000)\n"
    "  default_rater.batch           rows or events per transaction (default 1000)\n"
    "  default_rater.catchup_ms      how often deliveries without a window are looked for\n"
    "                                (safety net; default 300000, and at start)\n"};

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A subscriber that starts at the durable offset. NULL when the offset
//  cannot be read (database down): the caller retries.
static hcp_sub_t *
s_subscribe (hcp_db_t *db, const char *endpoint, const char *conninfo)
{
    uint64_t offset = 0;
    if (hcp_offset_load (db, HCP_RATER_CONSUMER, &offset) != 0)
        return NULL;
    hcp_sub_t *sub = hcp_sub_new (endpoint, conninfo, offset, "");
    if (sub)
        hcp_info ("following events after seq %" PRIu64, offset);
    return sub;
}

int
main (int argc, char **argv)
{
    hcp_config_t *config = hcp_service_start (&s_info, &argc, argv);
    if (argc > 1) {
        hcp_error ("unexpected argument '%s' (see --help)", argv[1]);
        hcp_config_destroy (&config);
        return 2;
    }
    hcp_rater_settings_t settings;
    char *error = NULL;
    if (hcp_rater_settings_load (config, &settings, &error) != 0) {
        hcp_error ("configuration: %s", error);
        free (error);
        hcp_config_destroy (&config);
        return 1;
    }
    const char *conninfo = hcp_service_conninfo (config);
    const char *endpoint = hcp_service_str (config, "bus.subscribe",
                                            HCP_BUS_SUBSCRIBE_ENDPOINT);
    int64_t sweep_ms = hcp_service_int (config, "default_rater.sweep_ms", 1000, 10, 3600000);
    int64_t catchup_ms = hcp_service_int (config, "default_rater.catchup_ms", 300000, 1000,
                                          86400000);
    char stages[64];
    hcp_info ("starting: stages %s, window %d natural days, sweep every %" PRId64
              " ms, batch %d",
              hcp_rater_stages_text (&settings, stages, sizeof stages), settings.window_days,
              sweep_ms, settings.batch);

    hcp_db_t *db = hcp_db_new (conninfo, "hcp-default-rater");
    volatile int *stop = hcp_service_stop_flag ();
    hcp_rater_t *rater = NULL;
    hcp_sub_t *sub = NULL;
    hcp_event_t **events = calloc ((size_t) settings.batch, sizeof *events);
    if (!events)
        abort ();
    int64_t next_sweep = 0, next_catchup = 0;
    uint64_t handled_seq = 0; //  through which seq our offset is known to be
    bool first_catchup = true;

    while (!hcp_service_stopping ()) {
        //  Connection: wait for it (with backoff) and rebuild what depends
        //  on it. The subscriber restarts from the durable offset, so
        //  events taken from it but not committed are read again.
        if (hcp_db_lost (db) || !rater || !sub) {
            hcp_sub_destroy (&sub);
            if (hcp_db_ensure (db, -1, stop) != 0)
                break;
            if (!rater)
                rater = hcp_rater_new (db, &settings);
            sub = s_subscribe (db, endpoint, conninfo);
            if (!sub) {
                //  The connection is up but the query failed (e.g. the
                //  schema is not migrated yet): try again in a second.
                hcp_warn ("cannot read the consumer offset: %s", hcp_db_error (db));
                for (int i = 0; i < 10 && !hcp_service_stopping (); i++)
                    zclock_sleep (100);
                continue;
            }
            handled_seq = hcp_sub_last_seq (sub);
        }
        int64_t mono = s_mono_ms ();

        //  1. Events: a batch per transaction. Wait for the first at most
        //  until the next sweep (and at most 1 s, as hcp_sub asks).
        int64_t wait = next_sweep - mono;
        wait = wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
        size_t count = 0;
        int got;
        while (count < (size_t) settings.batch
               && (got = hcp_sub_next (sub, count == 0 ? (int) wait : 0, &events[count]))
                      == 1) {
            const char *type = events[count]->type;
            if (!strcmp (type, "delivery.stored") || !strcmp (type, "rating.stored"))
                count++;
            else
                hcp_event_destroy (&events[count]);
        }
        uint64_t through = hcp_sub_last_seq (sub);
        if (through > handled_seq) {
            int rc = hcp_rater_handle_events (rater, events, count, through,
                                              hcp_clock_now_ms ());
            if (rc < 0)
                hcp_sub_destroy (&sub); //  re-read from the durable offset
            else
                handled_seq = through;
        }
        for (size_t i = 0; i < count; i++)
            hcp_event_destroy (&events[i]);
        if (!sub)
            continue;

        //  2. Defaults of the windows that ended, by the business clock.
        mono = s_mono_ms ();
        if (mono >= next_sweep) {
            next_sweep = mono + sweep_ms;
            int64_t now_ms = hcp_clock_now_ms ();
            long closed = 0;
            int rc;
            while (!hcp_service_stopping ()
                   && (rc = hcp_rater_apply_due (rater, now_ms)) > 0) {
                closed += rc;
                if (rc < settings.batch)
                    break;
            }
            if (closed > 0) {
                hcp_rater_totals_t totals = hcp_rater_totals (rater);
                hcp_info ("%ld windows ended; defaults stored so far %" PRIu64
                          ", rated before the end %" PRIu64,
                          closed, totals.defaults, totals.windows_rated);
            }
        }

        //  3. The safety net: deliveries without a window.
        if (mono >= next_catchup) {
            next_catchup = mono + catchup_ms;
            long opened = 0;
            int rc;
            while (!hcp_service_stopping ()
                   && (rc = hcp_rater_open_missing (rater, hcp_clock_now_ms ())) > 0) {
                opened += rc;
                if (rc < settings.batch)
                    break;
            }
            //  At start the events may simply not be read yet; later, it
            //  means events are not flowing: say so loudly.
            if (opened > 0 && first_catchup)
                hcp_info ("%ld windows opened by the safety net at start", opened);
            else if (opened > 0)
                hcp_warn ("%ld windows opened by the safety net (their delivery.stored "
                          "events were not handled: is hcp-relay running?)",
                          opened);
            first_catchup = false;
        }
    }
    if (rater) {
        hcp_rater_totals_t totals = hcp_rater_totals (rater);
        hcp_info ("stopping: %" PRIu64 " windows opened, %" PRIu64 " defaults stored, %" PRIu64
                  " windows rated in time, %" PRIu64 " rated late",
                  totals.windows_opened, totals.defaults, totals.windows_rated,
                  totals.windows_late);
    }
    else
        hcp_info ("stopping");
    free (events);
    hcp_sub_destroy (&sub);
    hcp_rater_destroy (&rater);
    hcp_db_destroy (&db);
    hcp_config_destroy (&config);
    return 0;
}
