/*  hcp_test — what integration tests share: a fresh database per test, SQL
    one-liners, temporary folders for ipc:// endpoints, and spawning the
    real binaries.

    tests/run.sh sets the environment: PGHOST/PGPORT/PGUSER (the project's
    own cluster), HCP_BIN_DIR (the binaries under test) and HCP_ROOT. Every
    helper fails the test (cmocka fail_msg, or exit 1 outside cmocka) on an
    unexpected error: a test never continues on a broken fixture.
*/
#ifndef HCP_TEST_H_INCLUDED
#define HCP_TEST_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

//  Creates database t_<name>_<pid> from the migrated template (with the
//  shipped catalog loaded) and returns its conninfo ("dbname=..."); the
//  caller frees it. Any older database of that name is dropped first.
char *hcp_test_db_create (const char *name);

//  Drops the database made by hcp_test_db_create (terminating sessions).
void hcp_test_db_drop (const char *conninfo);

//  Connects or fails the test.
PGconn *hcp_test_connect (const char *conninfo);

//  Runs SQL and returns the first column of the first row as a number
//  (0 if there is no row). Fails the test on an SQL error.
long long hcp_test_sql_int (PGconn *conn, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Same, returning the text (caller frees; NULL for SQL NULL or no row).
char *hcp_test_sql_text (PGconn *conn, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Runs SQL that returns nothing; fails the test on an error.
void hcp_test_sql_exec (PGconn *conn, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Polls until the SQL number equals expected or timeout_ms passes.
//  Returns the last value seen.
long long hcp_test_wait_int (PGconn *conn, long long expected, int timeout_ms, const char *fmt,
                             ...) __attribute__ ((format (printf, 4, 5)));

//  A new private folder under /tmp (caller frees the string; the folder is
//  left for post-mortems when a test fails, removed by run.sh otherwise).
char *hcp_test_tmpdir (const char *name);

//  Full path of a binary under test, e.g. hcp_test_bin ("hcp-ingest").
//  Returns a static buffer, valid until the next call.
const char *hcp_test_bin (const char *name);

//  Starts binary (a name for hcp_test_bin) with argv (NULL-ended, argv[0]
//  included) and extra environment "KEY=value" strings (NULL-ended, may be
//  NULL). stdout and stderr go to log_path if not NULL (appended). Returns
//  the pid; fails the test if it cannot start.
pid_t hcp_test_spawn (const char *binary, const char *const *argv, const char *const *env,
                      const char *log_path);

//  Sends sig to pid and waits up to timeout_ms for it to exit (then
//  SIGKILL). Returns the exit status as waitpid gives it, or -1.
int hcp_test_stop (pid_t pid, int sig, int timeout_ms);

//  Runs a command line through /bin/sh and returns its exit code.
int hcp_test_shell (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

//  Monotonic milliseconds, and a sleep in milliseconds.
int64_t hcp_test_now_ms (void);
void hcp_test_sleep_ms (int ms);

#endif
