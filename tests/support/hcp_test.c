/*  hcp_test — see hcp_test.h. */
#include "hcp_test.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define S_FAIL(...)                                                                           \
    do {                                                                                      \
        char s_message[8192];                                                                 \
        snprintf (s_message, sizeof s_message, __VA_ARGS__);                                  \
        fail_msg ("%s", s_message);                                                           \
    } while (0)

static char *
s_vformat (const char *fmt, va_list args)
{
    char *text;
    if (vasprintf (&text, fmt, args) < 0)
        abort ();
    return text;
}

static PGconn *
s_admin (void)
{
    PGconn *conn = PQconnectdb ("dbname=postgres");
    if (PQstatus (conn) != CONNECTION_OK)
        S_FAIL ("cannot reach the test PostgreSQL (run via tests/run.sh): %s",
                PQerrorMessage (conn));
    return conn;
}

char *
hcp_test_db_create (const char *name)
{
    char *dbname;
    if (asprintf (&dbname, "t_%s_%d", name, (int) getpid ()) < 0)
        abort ();
    for (char *p = dbname; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    const char *template = getenv ("HCP_TEST_TEMPLATE");
    if (!template)
        template = "hcp_template";
    PGconn *admin = s_admin ();
    hcp_test_sql_exec (admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    hcp_test_sql_exec (admin, "CREATE DATABASE %s TEMPLATE %s", dbname, template);
    PQfinish (admin);
    char *conninfo;
    if (asprintf (&conninfo, "dbname=%s", dbname) < 0)
        abort ();
    free (dbname);
    return conninfo;
}

void
hcp_test_db_drop (const char *conninfo)
{
    const char *dbname = strstr (conninfo, "dbname=");
    if (!dbname)
        return;
    PGconn *admin = s_admin ();
    hcp_test_sql_exec (admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname + 7);
    PQfinish (admin);
}

PGconn *
hcp_test_connect (const char *conninfo)
{
    PGconn *conn = PQconnectdb (conninfo);
    if (PQstatus (conn) != CONNECTION_OK)
        S_FAIL ("cannot connect to %s: %s", conninfo, PQerrorMessage (conn));
    return conn;
}

static PGresult *
s_query (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        char message[2048];
        snprintf (message, sizeof message, "SQL failed: %s\n  %s", PQresultErrorMessage (res),
                  sql);
        PQclear (res);
        fail_msg ("%s", message);
    }
    return res;
}

long long
hcp_test_sql_int (PGconn *conn, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *sql = s_vformat (fmt, args);
    va_end (args);
    PGresult *res = s_query (conn, sql);
    long long value = 0;
    if (PQntuples (res) > 0 && !PQgetisnull (res, 0, 0))
        value = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    free (sql);
    return value;
}

char *
hcp_test_sql_text (PGconn *conn, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *sql = s_vformat (fmt, args);
    va_end (args);
    PGresult *res = s_query (conn, sql);
    char *value = NULL;
    if (PQntuples (res) > 0 && !PQgetisnull (res, 0, 0))
        value = strdup (PQgetvalue (res, 0, 0));
    PQclear (res);
    free (sql);
    return value;
}

void
hcp_test_sql_exec (PGconn *conn, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *sql = s_vformat (fmt, args);
    va_end (args);
    PQclear (s_query (conn, sql));
    free (sql);
}

long long
hcp_test_wait_int (PGconn *conn, long long expected, int timeout_ms, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *sql = s_vformat (fmt, args);
    va_end (args);
    int64_t deadline = hcp_test_now_ms () + timeout_ms;
    long long value;
    while (1) {
        PGresult *res = s_query (conn, sql);
        value = PQntuples (res) > 0 && !PQgetisnull (res, 0, 0)
                    ? strtoll (PQgetvalue (res, 0, 0), NULL, 10)
                    : 0;
        PQclear (res);
        if (value == expected || hcp_test_now_ms () > deadline)
            break;
        hcp_test_sleep_ms (20);
    }
    free (sql);
    return value;
}

char *
hcp_test_tmpdir (const char *name)
{
    char *path;
    if (asprintf (&path, "/tmp/hcp-%s-XXXXXX", name) < 0)
        abort ();
    if (!mkdtemp (path))
        S_FAIL ("mkdtemp %s: %s", path, strerror (errno));
    return path;
}

const char *
hcp_test_bin (const char *name)
{
    static char path[4096];
    const char *dir = getenv ("HCP_BIN_DIR");
    snprintf (path, sizeof path, "%s/%s", dir ? dir : "build/bin", name);
    return path;
}

pid_t
hcp_test_spawn (const char *binary, const char *const *argv, const char *const *env,
                const char *log_path)
{
    char path[4096];
    snprintf (path, sizeof path, "%s", strchr (binary, '/') ? binary : hcp_test_bin (binary));
    if (access (path, X_OK) != 0)
        S_FAIL ("cannot run %s: %s", path, strerror (errno));
    pid_t pid = fork ();
    if (pid < 0)
        S_FAIL ("fork: %s", strerror (errno));
    if (pid == 0) {
        //  The child dies with the test (even one killed by its timeout): no
        //  orphaned services holding sockets for the next test.
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () == 1)
            _exit (127);
        for (int i = 0; env && env[i]; i++)
            putenv ((char *) env[i]);
        if (log_path) {
            int fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2 (fd, STDOUT_FILENO);
                dup2 (fd, STDERR_FILENO);
                close (fd);
            }
        }
        execv (path, (char *const *) argv);
        fprintf (stderr, "exec %s: %s\n", path, strerror (errno));
        _exit (127);
    }
    return pid;
}

int
hcp_test_stop (pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill (pid, sig);
    int64_t deadline = hcp_test_now_ms () + timeout_ms;
    int status;
    while (hcp_test_now_ms () < deadline) {
        pid_t done = waitpid (pid, &status, WNOHANG);
        if (done == pid)
            return status;
        if (done < 0)
            return -1;
        hcp_test_sleep_ms (10);
    }
    kill (pid, SIGKILL);
    if (waitpid (pid, &status, 0) == pid)
        return status;
    return -1;
}

int
hcp_test_shell (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *command = s_vformat (fmt, args);
    va_end (args);
    int status = system (command);
    free (command);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

int64_t
hcp_test_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
hcp_test_sleep_ms (int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}
