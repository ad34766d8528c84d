/*  Fixtures shared by the default-rater tests (integration, fault, bench):
    deliveries, ratings and events written straight into a test database, the
    relay's stamping step, and the invariants that must hold whatever
    happened (crashes, two instances).

    Included by one .c per binary: everything here is static.
*/
#ifndef TEST_DEFAULT_RATER_FIXTURE_H_INCLUDED
#define TEST_DEFAULT_RATER_FIXTURE_H_INCLUDED

#include "hcp_clock.h"
#include "hcp_test.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Any active item of the shipped catalog (the template has it loaded).
static __attribute__ ((unused)) char *
fx_item (PGconn *conn)
{
    char *item = hcp_test_sql_text (conn, "SELECT item_code FROM service_items WHERE active "
                                          "ORDER BY item_code LIMIT 1");
    if (!item)
        fail_msg ("the template database has no catalog");
    return item;
}

//  Inserts n deliveries <prefix>1..<prefix>n of a stage, delivered at
//  delivered_at (text, e.g. '2026-02-13 10:00:00+08'), with their
//  delivery.stored events when events is true (as ingest would write them,
//  unstamped: fx_stamp plays the relay).
static __attribute__ ((unused)) void
fx_deliveries (PGconn *conn, const char *prefix, int n, int stage, const char *delivered_at,
               int events)
{
    //  Spread over the catalog's items, as real traffic is (the first
    //  delivery gets the first item, for tests that look at one).
    char *item = fx_item (conn);
    hcp_test_sql_exec (
        conn,
        "INSERT INTO deliveries (delivery_id, item_code, stage, channel, "
        "rater_type, rater_key, division_code, delivered_at, fingerprint) "
        "SELECT '%s' || g, i.items[1 + (g - 1) %% cardinality (i.items)], %d, 2, "
        "2, 'rk-' || g, '110105', '%s'::timestamptz, '\\x00'::bytea "
        "FROM generate_series (1, %d) g, (SELECT array_agg (item_code ORDER BY "
        "item_code) AS items FROM service_items WHERE active) i",
        prefix, stage, delivered_at, n);
    if (events)
        hcp_test_sql_exec (
            conn,
            "INSERT INTO events (type, key) SELECT 'delivery.stored', '%s' || g "
            "FROM generate_series (1, %d) g",
            prefix, n);
    free (item);
}

//  Stores a rating of the rater for a delivery (grade on all three
//  dimensions), with its rating.stored event if events is true.
static __attribute__ ((unused)) void
fx_rating (PGconn *conn, const char *rating_id, const char *delivery_id, const char *rated_at,
           int grade, int events)
{
    hcp_test_sql_exec (
        conn,
        "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
        "rating_count, rater_type, rater_key, rated_at, standardization, "
        "convenience, accuracy, fingerprint) "
        "SELECT '%s', d.delivery_id, d.item_code, d.channel, d.stage, 1, "
        "d.rater_type, d.rater_key, '%s'::timestamptz, %d, %d, %d, '\\x01' "
        "FROM deliveries d WHERE d.delivery_id = '%s'",
        rating_id, rated_at, grade, grade, grade, delivery_id);
    if (events)
        hcp_test_sql_exec (
            conn, "INSERT INTO events (type, key) VALUES ('rating.stored', '%s')", rating_id);
}

//  The relay's step: stamps every committed event with its seq.
static __attribute__ ((unused)) long long
fx_stamp (PGconn *conn)
{
    return hcp_test_sql_int (conn, "SELECT count(*) FROM hcp_relay_stamp (1000000)");
}

//  Unix ms of a time text ("2026-02-21T00:00:00+08:00").
static __attribute__ ((unused)) int64_t
fx_ms (const char *text)
{
    int64_t ms;
    if (hcp_clock_parse (text, &ms) != 0)
        fail_msg ("bad time in test: %s", text);
    return ms;
}

//  Writes the business time for spawned services (HCP_CLOCK_FILE).
static __attribute__ ((unused)) void
fx_set_clock (const char *path, const char *text)
{
    char tmp[4200];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    if (!file)
        fail_msg ("cannot write %s", tmp);
    fprintf (file, "%s\n", text);
    fclose (file);
    if (rename (tmp, path) != 0)
        fail_msg ("cannot rename %s", tmp);
}

//  What must hold at any moment, even right after a kill -9: a default
//  exists exactly for the windows marked defaulted (or rated_late), each
//  with its one rating.defaulted event, each window naming its default.
static __attribute__ ((unused)) void
fx_check_invariants (PGconn *conn)
{
    long long defaults = hcp_test_sql_int (
        conn, "SELECT count(*) FROM ratings WHERE origin = 'default'");
    long long marked = hcp_test_sql_int (
        conn,
        "SELECT count(*) FROM rating_windows WHERE state IN ('defaulted', 'rated_late')");
    long long events = hcp_test_sql_int (
        conn, "SELECT count(*) FROM events WHERE type = 'rating.defaulted'");
    long long distinct_events = hcp_test_sql_int (
        conn, "SELECT count(DISTINCT key) FROM events WHERE type = 'rating.defaulted'");
    //  Windows naming their delivery's default (a join on the primary key).
    long long matching = hcp_test_sql_int (
        conn,
        "SELECT count(*) FROM rating_windows w JOIN ratings r ON r.rating_id = w.rating_id"
        " AND r.origin = 'default' AND r.delivery_id = w.delivery_id"
        " WHERE w.state IN ('defaulted', 'rated_late')");
    //  Events whose key is not a default (with equal, distinct counts: one
    //  event per default). A set difference, not a join: events.key has no
    //  index, and a nested loop over it is quadratic.
    long long stray = hcp_test_sql_int (
        conn, "SELECT count(*) FROM (SELECT key FROM events WHERE type = 'rating.defaulted'"
              " EXCEPT SELECT rating_id::text FROM ratings WHERE origin = 'default') x");
    long long per_delivery = hcp_test_sql_int (
        conn, "SELECT coalesce (max (n), 0) FROM (SELECT count(*) AS n FROM ratings"
              " WHERE origin = 'default' GROUP BY delivery_id) x");
    if (defaults != marked || events != defaults || distinct_events != events
        || matching != defaults || stray != 0 || per_delivery > 1)
        fail_msg ("invariants broken: %lld defaults, %lld windows defaulted, %lld events "
                  "(%lld distinct, %lld not a default), %lld matching, max %lld defaults per "
                  "delivery",
                  defaults, marked, events, distinct_events, stray, matching, per_delivery);
}

#endif
