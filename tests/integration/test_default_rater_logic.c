/*  default-rater logic against a real PostgreSQL, driven directly with a
    chosen "now" (no process, no clock file): which stages open windows, the
    exact instant of the default, what the default row and its event hold,
    a rating inside the window, the late-rating rule, the safety net, and
    the database's own refusal of illegal window changes.

    Times: a delivery on 2026-02-13 (any hour, Asia/Shanghai) opens a window
    whose 7 natural days are 02-14 .. 02-20 (the delivery day is not
    counted); it ends at 24:00 of 02-20 = 2026-02-21T00:00:00+08:00.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hcp/v1/ingest.pb-c.h"
#include "hcp_bus.h"
#include "hcp_calendar.h"
#include "hcp_db.h"
#include "../../services/default-rater/rater.h"
#include "test_default_rater_fixture.h"

#define END_MS_TEXT "2026-02-21T00:00:00+08:00"

typedef struct {
    char *conninfo;
    PGconn *conn;
    hcp_db_t *db;
    hcp_rater_t *rater;
    uint64_t seq; //  events handed to the rater so far
} fixture_t;

static fixture_t *
s_fixture (void **state, const char *name, const char *stages)
{
    fixture_t *self = calloc (1, sizeof *self);
    self->conninfo = hcp_test_db_create (name);
    self->conn = hcp_test_connect (self->conninfo);
    self->db = hcp_db_new (self->conninfo, "test");
    assert_int_equal (hcp_db_ensure (self->db, 10000, NULL), 0);
    hcp_config_t *config = hcp_config_parse (stages, "test.yaml", NULL);
    assert_non_null (config);
    hcp_rater_settings_t settings;
    char *error = NULL;
    if (hcp_rater_settings_load (config, &settings, &error) != 0)
        fail_msg ("%s", error);
    hcp_config_destroy (&config);
    self->rater = hcp_rater_new (self->db, &settings);
    *state = self;
    return self;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    if (!self)
        return 0;
    hcp_rater_destroy (&self->rater);
    hcp_db_destroy (&self->db);
    PQfinish (self->conn);
    hcp_test_db_drop (self->conninfo);
    free (self->conninfo);
    free (self);
    return 0;
}

//  Hands one event to the rater, as the service loop would.
static void
s_event (fixture_t *self, const char *type, const char *key, int64_t now_ms)
{
    hcp_event_t event = {++self->seq, (char *) type, (char *) key, now_ms, NULL, 0};
    hcp_event_t *events[] = {&event};
    assert_int_equal (hcp_rater_handle_events (self->rater, events, 1, self->seq, now_ms), 1);
}

static char *
s_text (fixture_t *self, const char *sql)
{
    return hcp_test_sql_text (self->conn, "%s", sql);
}

static void
test_settings (void **state)
{
    (void) state;
    hcp_rater_settings_t settings;
    char *error = NULL;
    char buf[64];
    hcp_config_t *config = hcp_config_parse ("log: {level: info}\n", "a.yaml", NULL);
    assert_int_equal (hcp_rater_settings_load (config, &settings, &error), 0);
    assert_string_equal (hcp_rater_stages_text (&settings, buf, sizeof buf),
                         "application,consultation,completion");
    assert_int_equal (settings.window_days, 7);
    assert_int_equal (settings.batch, 1000);
    hcp_config_destroy (&config);

    config = hcp_config_parse (
        "default_rater:\n  stages: [completion, 1]\n  window_days: 10\n", "b.yaml", NULL);
    assert_int_equal (hcp_rater_settings_load (config, &settings, &error), 0);
    assert_string_equal (hcp_rater_stages_text (&settings, buf, sizeof buf),
                         "application,completion");
    assert_int_equal (settings.window_days, 10);
    hcp_config_destroy (&config);

    config = hcp_config_parse ("default_rater:\n  stages: [application, approval]\n", "c.yaml",
                               NULL);
    assert_int_equal (hcp_rater_settings_load (config, &settings, &error), -1);
    assert_non_null (
        strstr (error, "c.yaml:2: default_rater.stages.1: unknown stage 'approval'"));
    free (error);
    hcp_config_destroy (&config);

    config = hcp_config_parse ("default_rater:\n  stages: []\n", "d.yaml", NULL);
    assert_int_equal (hcp_rater_settings_load (config, &settings, &error), 0);
    assert_string_equal (hcp_rater_stages_text (&settings, buf, sizeof buf), "(none)");
    hcp_config_destroy (&config);

    config = hcp_config_parse ("default_rater:\n  window_days: 0\n", "e.yaml", NULL);
    assert_int_equal (hcp_rater_settings_load (config, &settings, &error), -1);
    assert_non_null (strstr (error, "e.yaml:2: default_rater.window_days"));
    free (error);
    hcp_config_destroy (&config);

    setenv ("HCP_DEFAULT_RATER_STAGES", "consultation", 1);
    config = hcp_config_parse ("log: {level: info}\n", "f.yaml", NULL);
    assert_int_equal (hcp_rater_settings_load (config, &settings, &error), 0);
    assert_string_equal (hcp_rater_stages_text (&settings, buf, sizeof buf), "consultation");
    unsetenv ("HCP_DEFAULT_RATER_STAGES");
    hcp_config_destroy (&config);
}

static void
test_windows_open_for_configured_stages_only (void **state)
{
    fixture_t *self = s_fixture (state, "dr_stages",
                                 "default_rater:\n  stages: [application, completion]\n");
    //  One delivery of each stage, at the last second of 2026-02-13.
    fx_deliveries (self->conn, "app-", 1, 1, "2026-02-13 23:59:59+08", 0);
    fx_deliveries (self->conn, "con-", 1, 2, "2026-02-13 23:59:59+08", 0);
    fx_deliveries (self->conn, "com-", 1, 3, "2026-02-13 23:59:59+08", 0);
    int64_t now = fx_ms ("2026-02-14T00:00:05+08:00");
    s_event (self, "delivery.stored", "app-1", now);
    s_event (self, "delivery.stored", "con-1", now);
    s_event (self, "delivery.stored", "com-1", now);
    s_event (self, "case.opened", "42", now); //  other types: nothing
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM rating_windows"), 2);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM rating_windows "
                                                    "WHERE delivery_id = 'con-1'"),
                      0);
    //  The end: 24:00 of 02-13 + 7 = 02-21 00:00 Shanghai, for both.
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM rating_windows WHERE ends_at = "
                                        "'2026-02-21T00:00:00+08' AND state = 'open'"),
                      2);
    //  The offset followed the events.
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT last_seq FROM consumer_offsets "
                                                    "WHERE consumer = 'default-rater'"),
                      4);
    //  Replaying an event (a restart before the offset was read) is harmless:
    //  the offset says it was handled.
    hcp_event_t event = {2, (char *) "delivery.stored", (char *) "app-1", now, NULL, 0};
    hcp_event_t *events[] = {&event};
    assert_int_equal (hcp_rater_handle_events (self->rater, events, 1, 2, now), 0);
    //  The safety net finds nothing more to open (con-1 is not configured).
    assert_int_equal (hcp_rater_open_missing (self->rater, now), 0);
    //  A delivery whose event was never handled: the safety net opens it.
    fx_deliveries (self->conn, "late-", 3, 3, "2026-02-14 08:00:00+08", 0);
    assert_int_equal (hcp_rater_open_missing (self->rater, now), 3);
    assert_int_equal (hcp_rater_open_missing (self->rater, now), 0);
    assert_int_equal (
        hcp_test_sql_int (self->conn,
                          "SELECT count(*) FROM rating_windows WHERE ends_at = "
                          "'2026-02-22T00:00:00+08' AND delivery_id LIKE 'late-%%'"),
        3);
    assert_int_equal (hcp_rater_totals (self->rater).windows_opened, 5);
}

static void
test_default_at_the_right_instant_exactly_once (void **state)
{
    fixture_t *self = s_fixture (state, "dr_instant", "log: {level: info}\n");
    fx_deliveries (self->conn, "d-", 1, 3, "2026-02-13 09:30:00+08", 0);
    s_event (self, "delivery.stored", "d-1", fx_ms ("2026-02-13T09:30:01+08:00"));
    int64_t end = fx_ms (END_MS_TEXT);
    //  One millisecond before 24:00 of day D+7: still open.
    assert_int_equal (hcp_rater_apply_due (self->rater, end - 1), 0);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings"), 0);
    //  At 24:00 the window has ended.
    assert_int_equal (hcp_rater_apply_due (self->rater, end), 1);
    //  Later sweeps, and a restart (a new rater on a new connection) find
    //  nothing more to do.
    assert_int_equal (hcp_rater_apply_due (self->rater, end + 86400000), 0);
    hcp_db_t *db2 = hcp_db_new (self->conninfo, "test2");
    assert_int_equal (hcp_db_ensure (db2, 10000, NULL), 0);
    hcp_rater_settings_t settings = {{false, true, true, true}, 7, 1000};
    hcp_rater_t *rater2 = hcp_rater_new (db2, &settings);
    assert_int_equal (hcp_rater_apply_due (rater2, end + 2 * 86400000), 0);
    hcp_rater_destroy (&rater2);
    hcp_db_destroy (&db2);

    //  The row: a default, 基本满意 (3) on every dimension, rated at the end,
    //  copied from the delivery.
    char *row = s_text (self, "SELECT concat_ws ('|', origin, standardization, convenience, "
                              "accuracy, rating_count, rated_at = '" END_MS_TEXT "', channel, "
                              "stage, rater_type, rater_key, division_code, is_bad, comment) "
                              "FROM ratings WHERE delivery_id = 'd-1'");
    assert_string_equal (row, "default|3|3|3|1|t|2|3|2|rk-1|110105|f|");
    free (row);
    //  Its id is a UUIDv7 of the moment it was stored (the sweep's "now",
    //  here the window end): the first 48 bits are those milliseconds.
    char *id = s_text (self, "SELECT rating_id FROM ratings WHERE delivery_id = 'd-1'");
    char hex[13];
    snprintf (hex, sizeof hex, "%.8s%.4s", id, id + 9);
    assert_int_equal (strtoll (hex, NULL, 16), end);
    assert_int_equal (id[14], '7');
    //  The window records it.
    char *window = s_text (self,
                           "SELECT concat_ws ('|', state, rating_id, closed_at = '" END_MS_TEXT
                           "') FROM rating_windows");
    char expected[128];
    snprintf (expected, sizeof expected, "defaulted|%s|t", id);
    assert_string_equal (window, expected);
    free (window);
    //  Exactly one event, rating.defaulted, keyed by the rating id, whose
    //  payload is the rating (hcp.v1.Rating).
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM events"), 1);
    char *payload_hex = hcp_test_sql_text (
        self->conn,
        "SELECT encode (payload, 'hex') FROM events WHERE type = 'rating.defaulted' "
        "AND key = '%s'",
        id);
    assert_non_null (payload_hex);
    size_t size = strlen (payload_hex) / 2;
    uint8_t *payload = malloc (size + 1);
    for (size_t i = 0; i < size; i++) {
        unsigned byte;
        sscanf (payload_hex + 2 * i, "%2x", &byte);
        payload[i] = (uint8_t) byte;
    }
    Hcp__V1__Rating *rating = hcp__v1__rating__unpack (NULL, size, payload);
    assert_non_null (rating);
    assert_string_equal (rating->rating_id, id);
    assert_string_equal (rating->delivery_id, "d-1");
    assert_int_equal (rating->rated_at_ms, end);
    assert_int_equal (rating->standardization, HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED);
    assert_int_equal (rating->convenience, HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED);
    assert_int_equal (rating->accuracy, HCP__V1__GRADE__GRADE_BASICALLY_SATISFIED);
    assert_int_equal (rating->rating_count, 1);
    assert_int_equal (rating->stage, HCP__V1__STAGE__STAGE_COMPLETION);
    assert_int_equal (rating->channel, HCP__V1__CHANNEL__CHANNEL_WINDOW_QR);
    assert_non_null (rating->rater);
    assert_string_equal (rating->rater->key, "rk-1");
    assert_string_equal (rating->rater->name, "");
    //  The rating's fingerprint is the SHA-256 of that payload.
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM ratings r JOIN events e ON "
                                        "e.key = r.rating_id::text WHERE r.fingerprint = "
                                        "sha256 (e.payload)"),
                      1);
    hcp__v1__rating__free_unpacked (rating, NULL);
    free (payload);
    free (payload_hex);
    free (id);
    assert_int_equal (hcp_rater_totals (self->rater).defaults, 1);
    fx_check_invariants (self->conn);
}

static void
test_rating_inside_the_window_prevents_the_default (void **state)
{
    fixture_t *self = s_fixture (state, "dr_inside", "log: {level: info}\n");
    fx_deliveries (self->conn, "d-", 3, 1, "2026-02-13 09:30:00+08", 0);
    int64_t now = fx_ms ("2026-02-13T09:31:00+08:00");
    for (int i = 1; i <= 3; i++) {
        char key[16];
        snprintf (key, sizeof key, "d-%d", i);
        s_event (self, "delivery.stored", key, now);
    }
    //  d-1: rated on day 7, event handled → window 'rated' at once.
    fx_rating (self->conn, "01900000-0000-7000-8000-000000000001", "d-1",
               "2026-02-20 23:59:00+08", 2, 0);
    s_event (self, "rating.stored", "01900000-0000-7000-8000-000000000001",
             fx_ms ("2026-02-20T23:59:01+08:00"));
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM rating_windows "
                                                    "WHERE state = 'rated' AND delivery_id = "
                                                    "'d-1' AND rating_id = "
                                                    "'01900000-0000-7000-8000-000000000001'"),
                      1);
    //  d-2: rated in time but its rating.stored not handled yet when the
    //  window ends (relay lag): the sweep sees the rating, no default.
    fx_rating (self->conn, "01900000-0000-7000-8000-000000000002", "d-2",
               "2026-02-15 10:00:00+08", 5, 0);
    //  d-3: never rated → default.
    assert_int_equal (hcp_rater_apply_due (self->rater, fx_ms (END_MS_TEXT)), 2);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM rating_windows "
                                                    "WHERE state = 'rated' AND delivery_id = "
                                                    "'d-2'"),
                      1);
    assert_int_equal (
        hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings WHERE origin = 'default'"),
        1);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings WHERE "
                                                    "origin = 'default' AND delivery_id = "
                                                    "'d-3'"),
                      1);
    //  The late rating.stored of d-2 changes nothing now.
    s_event (self, "rating.stored", "01900000-0000-7000-8000-000000000002",
             fx_ms ("2026-02-21T00:10:00+08:00"));
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM rating_windows "
                                                    "WHERE state = 'rated'"),
                      2);
    hcp_rater_totals_t totals = hcp_rater_totals (self->rater);
    assert_int_equal (totals.windows_rated, 2);
    assert_int_equal (totals.defaults, 1);
    fx_check_invariants (self->conn);
}

static void
test_late_rating_supersedes_the_default (void **state)
{
    fixture_t *self = s_fixture (state, "dr_late", "log: {level: info}\n");
    fx_deliveries (self->conn, "d-", 2, 3, "2026-02-13 09:30:00+08", 1);
    fx_stamp (self->conn);
    assert_int_equal (
        hcp_rater_open_missing (self->rater, fx_ms ("2026-02-13T10:00:00+08:00")), 2);
    assert_int_equal (hcp_rater_apply_due (self->rater, fx_ms ("2026-02-22T03:00:00+08:00")),
                      2);
    //  A very dissatisfied rating for d-1 arrives a week late: stored like
    //  any rating (ingest's part; here written directly), and its event
    //  marks the window rated_late.
    fx_rating (self->conn, "01900000-0000-7000-8000-0000000000aa", "d-1",
               "2026-02-28 10:00:00+08", 5, 0);
    s_event (self, "rating.stored", "01900000-0000-7000-8000-0000000000aa",
             fx_ms ("2026-02-28T10:00:01+08:00"));
    char *window = s_text (self, "SELECT concat_ws ('|', w.state, w.late_rating_id, "
                                 "r.origin) FROM rating_windows w JOIN ratings r ON "
                                 "r.rating_id = w.rating_id WHERE w.delivery_id = 'd-1'");
    assert_string_equal (window, "rated_late|01900000-0000-7000-8000-0000000000aa|default");
    free (window);
    //  Nothing lost: both rows are there, the default unchanged.
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings WHERE "
                                                    "delivery_id = 'd-1'"),
                      2);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings WHERE "
                                                    "delivery_id = 'd-1' AND is_bad"),
                      1);
    //  Statistics (effective_ratings, 003_cases.sql) count the rater's
    //  rating, not the superseded default; d-2 keeps its default.
    char *effective = s_text (self, "SELECT string_agg (delivery_id || ':' || origin, ',' "
                                    "ORDER BY delivery_id) FROM effective_ratings");
    assert_string_equal (effective, "d-1:rater,d-2:default");
    free (effective);
    //  The same event again (replay) or a second late rating: no change.
    fx_rating (self->conn, "01900000-0000-7000-8000-0000000000ab", "d-1",
               "2026-03-01 10:00:00+08", 1, 0);
    s_event (self, "rating.stored", "01900000-0000-7000-8000-0000000000ab",
             fx_ms ("2026-03-01T10:00:01+08:00"));
    assert_int_equal (hcp_test_sql_int (self->conn,
                                        "SELECT count(*) FROM rating_windows WHERE "
                                        "late_rating_id = "
                                        "'01900000-0000-7000-8000-0000000000aa'"),
                      1);
    //  A late rating whose event is handled before the sweep reached the
    //  window (sweep behind): no default at all, the same statistics.
    fx_deliveries (self->conn, "e-", 1, 3, "2026-02-13 09:30:00+08", 0);
    assert_int_equal (
        hcp_rater_open_missing (self->rater, fx_ms ("2026-02-13T10:00:00+08:00")), 1);
    fx_rating (self->conn, "01900000-0000-7000-8000-0000000000ac", "e-1",
               "2026-02-25 10:00:00+08", 4, 0);
    s_event (self, "rating.stored", "01900000-0000-7000-8000-0000000000ac",
             fx_ms ("2026-02-25T10:00:01+08:00"));
    assert_int_equal (hcp_rater_apply_due (self->rater, fx_ms ("2026-02-26T00:00:00+08:00")),
                      0);
    assert_int_equal (hcp_test_sql_int (self->conn, "SELECT count(*) FROM ratings WHERE "
                                                    "delivery_id = 'e-1' AND origin = "
                                                    "'default'"),
                      0);
    assert_int_equal (hcp_rater_totals (self->rater).windows_late, 1);
    fx_check_invariants (self->conn);
}

static void
test_database_refuses_illegal_window_changes (void **state)
{
    fixture_t *self = s_fixture (state, "dr_guard", "log: {level: info}\n");
    fx_deliveries (self->conn, "d-", 2, 3, "2026-02-13 09:30:00+08", 0);
    assert_int_equal (
        hcp_rater_open_missing (self->rater, fx_ms ("2026-02-13T10:00:00+08:00")), 2);
    assert_int_equal (hcp_rater_apply_due (self->rater, fx_ms (END_MS_TEXT)), 2);
    static const char *refused[] = {
        "UPDATE rating_windows SET state = 'open', closed_at = NULL WHERE delivery_id = 'd-1'",
        "UPDATE rating_windows SET state = 'rated' WHERE delivery_id = 'd-1'",
        "UPDATE rating_windows SET ends_at = ends_at + interval '1 day' WHERE delivery_id = "
        "'d-1'",
        "DELETE FROM rating_windows WHERE delivery_id = 'd-1'", "TRUNCATE rating_windows",
        //  A second default for a delivery (the unique index of 001).
        "INSERT INTO ratings (rating_id, delivery_id, item_code, channel, stage, "
        "rating_count, "
        "rater_type, rated_at, standardization, origin, fingerprint) SELECT hcp_uuidv7 (), "
        "delivery_id, item_code, channel, stage, 1, rater_type, now (), 3, 'default', '\\x00' "
        "FROM deliveries WHERE delivery_id = 'd-1'",
        NULL};
    for (int i = 0; refused[i]; i++) {
        PGresult *res = PQexec (self->conn, refused[i]);
        if (PQresultStatus (res) == PGRES_COMMAND_OK)
            fail_msg ("accepted: %s", refused[i]);
        PQclear (res);
    }
    //  The legal late transition keeps the default's id.
    PGresult *res = PQexec (self->conn, "UPDATE rating_windows SET state = 'rated_late', "
                                        "rating_id = NULL, late_rating_id = rating_id WHERE "
                                        "delivery_id = 'd-1'");
    assert_int_not_equal (PQresultStatus (res), PGRES_COMMAND_OK);
    PQclear (res);
    fx_check_invariants (self->conn);
}

static void
test_window_end_in_sql_matches_the_calendar (void **state)
{
    fixture_t *self = s_fixture (state, "dr_ends", "log: {level: info}\n");
    //  Same instant → same end in SQL (hcp_rating_window_end) and in C
    //  (hcp_calendar: day of the instant + 7, 24:00): around midnight
    //  Shanghai, across a month and a year.
    static const char *instants[] = {"2026-02-13T15:59:59.999Z",  "2026-02-13T16:00:00Z",
                                     "2026-12-28T00:00:00+08:00", "2026-12-31T23:59:59+08:00",
                                     "2024-02-22T12:00:00+08:00", NULL};
    static const char *ends[] = {"2026-02-21T00:00:00+08:00", "2026-02-22T00:00:00+08:00",
                                 "2027-01-05T00:00:00+08:00", "2027-01-08T00:00:00+08:00",
                                 "2024-03-01T00:00:00+08:00"}; //  2024 is a leap year
    for (int i = 0; instants[i]; i++) {
        long long sql_end = hcp_test_sql_int (
            self->conn,
            "SELECT floor (extract (epoch FROM hcp_rating_window_end ('%s', 7)) * 1000)",
            instants[i]);
        assert_int_equal (sql_end, fx_ms (ends[i]));
        hcp_date_t day = hcp_date_from_ms (fx_ms (instants[i]));
        assert_int_equal (hcp_date_end_ms (hcp_date_add_days (day, 7)), fx_ms (ends[i]));
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_settings),
        cmocka_unit_test_teardown (test_windows_open_for_configured_stages_only, s_teardown),
        cmocka_unit_test_teardown (test_default_at_the_right_instant_exactly_once, s_teardown),
        cmocka_unit_test_teardown (test_rating_inside_the_window_prevents_the_default,
                                   s_teardown),
        cmocka_unit_test_teardown (test_late_rating_supersedes_the_default, s_teardown),
        cmocka_unit_test_teardown (test_database_refuses_illegal_window_changes, s_teardown),
        cmocka_unit_test_teardown (test_window_end_in_sql_matches_the_calendar, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
