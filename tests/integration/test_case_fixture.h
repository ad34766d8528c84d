/*  What the case tests share (header-only, static): ratings made with SQL,
    commands run through case_store with an injected business time, and
    comparison with the expected files in tests/integration/expected/.

    Expected files: HCP_UPDATE_EXPECTED=1 writes them instead of comparing
    (then read the diff in git before you keep them).
*/
#ifndef TEST_CASE_FIXTURE_H_INCLUDED
#define TEST_CASE_FIXTURE_H_INCLUDED

#include "../../services/case-router/case_store.h"
#include "hcp_clock.h"
#include "hcp_test.h"
#include "hcp_uuid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

//  Unix ms of a local (Asia/Shanghai) time "YYYY-MM-DD HH:MM".
static inline int64_t
tc_ms (const char *text)
{
    int64_t ms = 0;
    if (hcp_clock_parse (text, &ms) != 0)
        fail_msg ("bad time in test: %s", text);
    return ms;
}

//  Inserts a rating of item at rated ("YYYY-MM-DD HH:MM", Shanghai) with
//  grades (0 = unrated) and writes its id into id. The ids are UUIDv7 of
//  the rating time, as an adapter would choose them.
static inline void
tc_rating (PGconn *conn, const char *item, const char *rated, int standardization,
           int convenience, int accuracy, const char *comment, char id[HCP_UUID_STR_LEN])
{
    hcp_uuid_v7 (tc_ms (rated), id);
    char grades[3][8];
    int values[3] = {standardization, convenience, accuracy};
    for (int i = 0; i < 3; i++)
        snprintf (grades[i], sizeof grades[i], values[i] ? "%d" : "NULL", values[i]);
    hcp_test_sql_exec (
        conn,
        "INSERT INTO ratings (rating_id, item_code, channel, stage, rating_count, "
        "rater_type, rated_at, standardization, convenience, accuracy, comment, "
        "fingerprint) VALUES ('%s', '%s', 1, 3, 1, 1, '%s+08', %s, %s, %s, "
        "$$%s$$, '\\x00')",
        id, item, rated, grades[0], grades[1], grades[2], comment ? comment : "");
}

//  Runs a command at business time now (Shanghai "YYYY-MM-DD HH:MM"), with
//  fields given as key, value pairs ended by NULL. A fresh request id each
//  time. Returns the reply (by value).
static inline hcp_case_reply_t
tc_command (hcp_db_t *db, int64_t case_id, const char *action, const char *now, ...)
{
    char request_id[HCP_UUID_STR_LEN];
    hcp_uuid_v7 (0, request_id);
    hcp_case_command_t *command = hcp_case_command_new (request_id, "tester", action, case_id);
    va_list args;
    va_start (args, now);
    const char *key;
    while ((key = va_arg (args, const char *)) != NULL)
        hcp_case_command_set (command, key, va_arg (args, const char *));
    va_end (args);
    hcp_case_reply_t reply;
    hcp_case_execute (db, command, tc_ms (now), &reply);
    hcp_case_command_destroy (&command);
    return reply;
}

//  Same, and fails the test unless the command was applied and led to
//  the expected state.
#define TC_OK(db, case_id, action, now, to_state, ...)                                        \
    do {                                                                                      \
        hcp_case_reply_t tc_reply_ = tc_command (db, case_id, action, now, __VA_ARGS__,       \
                                                 NULL);                                       \
        if (tc_reply_.status != HCP_CASE_OK)                                                  \
            fail_msg ("case %lld %s refused: %s: %s", (long long) (case_id), action,          \
                      tc_reply_.code, tc_reply_.message);                                     \
        assert_string_equal (tc_reply_.state, to_state);                                      \
    } while (0)

//  Compares text with tests/integration/expected/name (or writes it when
//  HCP_UPDATE_EXPECTED=1). On a difference, writes the actual text next to
//  a temporary copy and shows `diff -u`.
static inline void
tc_expect_file (const char *name, const char *text)
{
    const char *root = getenv ("HCP_ROOT");
    char path[1024];
    snprintf (path, sizeof path, "%s/tests/integration/expected/%s", root ? root : ".", name);
    const char *update = getenv ("HCP_UPDATE_EXPECTED");
    if (update && !strcmp (update, "1")) {
        FILE *file = fopen (path, "w");
        assert_non_null (file);
        fputs (text, file);
        fclose (file);
        return;
    }
    FILE *file = fopen (path, "rb");
    if (!file)
        fail_msg ("missing expected file %s (HCP_UPDATE_EXPECTED=1 writes it)", path);
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    rewind (file);
    char *expected = calloc (1, (size_t) size + 1);
    assert_int_equal (fread (expected, 1, (size_t) size, file), (size_t) size);
    fclose (file);
    if (strcmp (expected, text) != 0) {
        char actual[1100];
        snprintf (actual, sizeof actual, "/tmp/hcp-actual-%d-%s", (int) getpid (), name);
        FILE *out = fopen (actual, "w");
        if (out) {
            fputs (text, out);
            fclose (out);
        }
        hcp_test_shell ("diff -u '%s' '%s' | head -60", path, actual);
        free (expected);
        fail_msg ("%s differs from %s (diff above)", actual, path);
    }
    free (expected);
}

// ---------------------------------------------------------------------------
//  Real services: hcp-bus, hcp-relay and hcp-case-router instances on ipc://
//  endpoints in a private folder, one database per test binary.

#define TC_MAX_ROUTERS 2

typedef struct {
    char *conninfo;
    char *dir;
    char log[560];
    char env_conninfo[600];
    char env_publish[700];
    char env_subscribe[700];
    char env_clock[700];
    char clock_file[560];
    char router_endpoint[TC_MAX_ROUTERS][560];
    char env_router_bind[TC_MAX_ROUTERS][700];
    char env_sweep[64];
    pid_t bus;
    pid_t relay;
    pid_t router[TC_MAX_ROUTERS];
    PGconn *conn;
} tc_services_t;

//  sweep_ms: case_router.sweep_interval_ms of the routers started later.
static inline void
tc_services_setup (tc_services_t *fx, const char *name, int sweep_ms)
{
    memset (fx, 0, sizeof *fx);
    fx->conninfo = hcp_test_db_create (name);
    fx->dir = hcp_test_tmpdir (name);
    snprintf (fx->log, sizeof fx->log, "%s/services.log", fx->dir);
    snprintf (fx->env_conninfo, sizeof fx->env_conninfo, "HCP_DATABASE_CONNINFO=%s",
              fx->conninfo);
    snprintf (fx->env_publish, sizeof fx->env_publish, "HCP_BUS_PUBLISH=ipc://%s/publish",
              fx->dir);
    snprintf (fx->env_subscribe, sizeof fx->env_subscribe,
              "HCP_BUS_SUBSCRIBE=ipc://%s/subscribe", fx->dir);
    snprintf (fx->clock_file, sizeof fx->clock_file, "%s/clock", fx->dir);
    snprintf (fx->env_clock, sizeof fx->env_clock, "HCP_CLOCK_FILE=%s", fx->clock_file);
    for (int i = 0; i < TC_MAX_ROUTERS; i++) {
        snprintf (fx->router_endpoint[i], sizeof fx->router_endpoint[i], "ipc://%s/router-%d",
                  fx->dir, i);
        snprintf (fx->env_router_bind[i], sizeof fx->env_router_bind[i],
                  "HCP_CASE_ROUTER_BIND=ipc://%s/router-%d", fx->dir, i);
    }
    snprintf (fx->env_sweep, sizeof fx->env_sweep, "HCP_CASE_ROUTER_SWEEP_INTERVAL_MS=%d",
              sweep_ms);
    fx->conn = hcp_test_connect (fx->conninfo);
    printf ("fixture: db %s, services log %s\n", fx->conninfo, fx->log);
}

//  Sets the business clock of the services (and of hcpctl run by
//  tc_hcpctl): a local time "YYYY-MM-DD HH:MM" (Asia/Shanghai).
static inline void
tc_services_clock (tc_services_t *fx, const char *now)
{
    FILE *file = fopen (fx->clock_file, "w");
    assert_non_null (file);
    fprintf (file, "%s:00+08:00\n", now);
    fclose (file);
}

static inline void
tc_start_bus_relay (tc_services_t *fx)
{
    const char *bus_argv[] = {"hcp-bus", NULL};
    const char *bus_env[] = {fx->env_publish, fx->env_subscribe, NULL};
    fx->bus = hcp_test_spawn ("hcp-bus", bus_argv, bus_env, fx->log);
    const char *relay_argv[] = {"hcp-relay", NULL};
    const char *relay_env[] = {fx->env_conninfo, fx->env_publish, "HCP_RELAY_HEARTBEAT_MS=300",
                               NULL};
    fx->relay = hcp_test_spawn ("hcp-relay", relay_argv, relay_env, fx->log);
}

//  Starts router instance i; with_clock: it uses the clock file.
static inline void
tc_start_router (tc_services_t *fx, int i, bool with_clock)
{
    assert_true (i >= 0 && i < TC_MAX_ROUTERS);
    const char *argv[] = {"hcp-case-router", NULL};
    const char *env[] = {fx->env_conninfo,
                         fx->env_subscribe,
                         fx->env_router_bind[i],
                         fx->env_sweep,
                         with_clock ? fx->env_clock : NULL,
                         NULL};
    fx->router[i] = hcp_test_spawn ("hcp-case-router", argv, env, fx->log);
}

//  Stops a service with SIGTERM; it must exit 0.
static inline void
tc_stop (pid_t *pid)
{
    if (*pid <= 0)
        return;
    int status = hcp_test_stop (*pid, SIGTERM, 15000);
    *pid = 0;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

static inline void
tc_kill (pid_t *pid)
{
    if (*pid <= 0)
        return;
    hcp_test_stop (*pid, SIGKILL, 10000);
    *pid = 0;
}

static inline void
tc_services_teardown (tc_services_t *fx)
{
    for (int i = 0; i < TC_MAX_ROUTERS; i++)
        tc_stop (&fx->router[i]);
    tc_stop (&fx->relay);
    tc_stop (&fx->bus);
    PQfinish (fx->conn);
    fx->conn = NULL;
    hcp_test_db_drop (fx->conninfo);
    hcp_test_shell ("rm -rf '%s'", fx->dir);
    free (fx->conninfo);
    free (fx->dir);
    fx->conninfo = fx->dir = NULL;
}

//  For cmocka's teardown, which runs even when the test failed half-way:
//  kills whatever is still running (a failed test must not leave services
//  behind) and keeps the folder with services.log for the post-mortem.
static inline int
tc_services_cleanup (tc_services_t *fx)
{
    for (int i = 0; i < TC_MAX_ROUTERS; i++)
        tc_kill (&fx->router[i]);
    tc_kill (&fx->relay);
    tc_kill (&fx->bus);
    if (fx->conn)
        PQfinish (fx->conn);
    fx->conn = NULL;
    if (fx->dir)
        fprintf (stderr, "services log kept: %s/services.log\n", fx->dir);
    free (fx->conninfo);
    free (fx->dir);
    fx->conninfo = fx->dir = NULL;
    return 0;
}

//  cmocka teardown for a test whose initial state is its tc_services_t:
//  tc_services_cleanup of that fixture.
static inline int
tc_services_cleanup_state (void **state)
{
    return tc_services_cleanup (*state);
}

//  The main of a service test binary: runs the one test with fx as its
//  initial state and tc_services_cleanup as its teardown, so a test that
//  fails half-way leaves no service running. Use TC_SERVICES_RUN, which
//  names the test after its function.
static inline int
tc_services_run (const char *name, CMUnitTestFunction test, tc_services_t *fx)
{
    const struct CMUnitTest tests[] = {
        {.name = name,
         .test_func = test,
         .teardown_func = tc_services_cleanup_state,
         .initial_state = fx},
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

#define TC_SERVICES_RUN(test, fx) tc_services_run (#test, test, fx)

//  Inserts count ratings of item rated at rated (Shanghai "YYYY-MM-DD
//  HH:MM"), every bad_every-th one bad (1: all), each with its
//  rating.stored event in the same transaction, as ingest does. Returns
//  how many were bad.
static inline int
tc_feed (PGconn *conn, const char *item, const char *rated, int count, int bad_every)
{
    hcp_test_sql_exec (
        conn,
        "WITH r AS (INSERT INTO ratings (rating_id, item_code, channel, stage, "
        "rating_count, rater_type, rated_at, standardization, convenience, "
        "fingerprint) SELECT hcp_uuidv7('%s+08'), '%s', 1, 3, 1, 1, '%s+08', "
        "CASE WHEN g %% %d = 0 THEN 5 ELSE 2 END, 1, '\\x00' FROM "
        "generate_series(1, %d) g RETURNING rating_id) "
        "INSERT INTO events (type, key) SELECT 'rating.stored', rating_id::text "
        "FROM r",
        rated, item, rated, bad_every, count);
    return count / bad_every;
}

//  Runs hcpctl with the services' database and clock; stdout and stderr go
//  to files out and err in the fixture folder (read with tc_read). Returns
//  its exit code.
static inline int
tc_hcpctl (tc_services_t *fx, const char *args)
{
    char bin[4096];
    snprintf (bin, sizeof bin, "%s", hcp_test_bin ("hcpctl"));
    return hcp_test_shell ("HCP_DATABASE_CONNINFO='%s' HCP_CLOCK_FILE='%s' "
                           "HCP_CASE_ROUTER_CONNECT='%s' USER=tester %s case %s >'%s/out' "
                           "2>'%s/err'",
                           fx->conninfo, fx->clock_file, fx->router_endpoint[0], bin, args,
                           fx->dir, fx->dir);
}

//  The content of a file in the fixture folder (caller frees).
static inline char *
tc_read (tc_services_t *fx, const char *name)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/%s", fx->dir, name);
    FILE *file = fopen (path, "rb");
    if (!file)
        return strdup ("");
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    rewind (file);
    char *text = calloc (1, (size_t) size + 1);
    if (fread (text, 1, (size_t) size, file) != (size_t) size)
        text[0] = 0;
    fclose (file);
    return text;
}

#endif
