/*  hcp_db — see hcp_db.h. */
#include "hcp_db.h"

#include "hcp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct {
    char *name;
    char *sql;
} statement_t;

struct _hcp_db_t {
    char *conninfo;
    char *application_name;
    PGconn *conn;
    statement_t *statements;
    size_t statement_count;
    char error[1024];
    char sqlstate[6];
};

static void
s_set_error (hcp_db_t *self, const char *message, const char *sqlstate)
{
    snprintf (self->error, sizeof self->error, "%s", message ? message : "unknown error");
    //  libpq messages end in a newline; logs want one line.
    for (char *p = self->error; *p; p++)
        if (*p == '\n')
            *p = (p[1] ? ' ' : 0);
    snprintf (self->sqlstate, sizeof self->sqlstate, "%s", sqlstate ? sqlstate : "");
}

hcp_db_t *
hcp_db_new (const char *conninfo, const char *application_name)
{
    hcp_db_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->conninfo = strdup (conninfo ? conninfo : "");
    self->application_name = application_name ? strdup (application_name) : NULL;
    return self;
}

void
hcp_db_destroy (hcp_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_db_t *self = *self_p;
    if (self->conn)
        PQfinish (self->conn);
    for (size_t i = 0; i < self->statement_count; i++) {
        free (self->statements[i].name);
        free (self->statements[i].sql);
    }
    free (self->statements);
    free (self->conninfo);
    free (self->application_name);
    free (self);
    *self_p = NULL;
}

static int
s_prepare_on_conn (hcp_db_t *self, const statement_t *statement)
{
    PGresult *res = PQprepare (self->conn, statement->name, statement->sql, 0, NULL);
    int rc = hcp_db_ok (self, res) ? 0 : -1;
    if (rc)
        hcp_error ("cannot prepare statement %s: %s", statement->name, self->error);
    PQclear (res);
    return rc;
}

static int
s_connect_once (hcp_db_t *self)
{
    if (self->conn) {
        PQfinish (self->conn);
        self->conn = NULL;
    }
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *values[] = {self->conninfo, self->application_name, "10", NULL};
    if (!self->application_name) {
        keys[1] = "connect_timeout";
        values[1] = "10";
        keys[2] = NULL;
    }
    //  expand_dbname=1: the first "dbname" value is a full conninfo string.
    self->conn = PQconnectdbParams (keys, values, 1);
    if (PQstatus (self->conn) != CONNECTION_OK) {
        s_set_error (self, PQerrorMessage (self->conn), "08006");
        PQfinish (self->conn);
        self->conn = NULL;
        return -1;
    }
    for (size_t i = 0; i < self->statement_count; i++)
        if (s_prepare_on_conn (self, &self->statements[i])) {
            PQfinish (self->conn);
            self->conn = NULL;
            return -1;
        }
    return 0;
}

static long
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
hcp_db_ensure (hcp_db_t *self, int max_wait_ms, volatile int *stop)
{
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK)
        return 0;
    long started = s_now_ms ();
    long backoff = 100;
    int attempt = 0;
    while (1) {
        if (s_connect_once (self) == 0) {
            if (attempt > 0)
                hcp_info ("database connection restored after %d attempts", attempt + 1);
            return 0;
        }
        attempt++;
        long waited = s_now_ms () - started;
        if (max_wait_ms >= 0 && waited >= max_wait_ms)
            return -1;
        if (stop && *stop)
            return -1;
        if (attempt == 1 || attempt % 10 == 0)
            hcp_warn ("database unreachable (attempt %d), retrying: %s", attempt, self->error);
        //  Full jitter: sleep a random time up to the current backoff.
        unsigned int random = 0;
        if (getrandom (&random, sizeof random, 0) != sizeof random)
            random = (unsigned int) started;
        long sleep_ms = backoff / 2 + (long) (random % (unsigned long) (backoff / 2 + 1));
        if (max_wait_ms >= 0 && waited + sleep_ms > max_wait_ms)
            sleep_ms = max_wait_ms - waited;
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        nanosleep (&ts, NULL);
        if (backoff < 5000)
            backoff *= 2;
    }
}

PGconn *
hcp_db_conn (hcp_db_t *self)
{
    return self->conn && PQstatus (self->conn) == CONNECTION_OK ? self->conn : NULL;
}

int
hcp_db_prepare (hcp_db_t *self, const char *name, const char *sql)
{
    for (size_t i = 0; i < self->statement_count; i++)
        if (strcmp (self->statements[i].name, name) == 0)
            return 0;
    self->statements = realloc (self->statements,
                                (self->statement_count + 1) * sizeof *self->statements);
    if (!self->statements)
        abort ();
    statement_t *statement = &self->statements[self->statement_count++];
    statement->name = strdup (name);
    statement->sql = strdup (sql);
    if (hcp_db_conn (self))
        return s_prepare_on_conn (self, statement);
    return 0;
}

PGresult *
hcp_db_run_params (hcp_db_t *self, const char *name, int nparams, const char *const *values,
                   const int *lengths, const int *formats)
{
    if (!hcp_db_conn (self)) {
        s_set_error (self, "not connected to the database", "08003");
        return NULL;
    }
    PGresult *res = PQexecPrepared (self->conn, name, nparams, values, lengths, formats, 0);
    if (!res || PQstatus (self->conn) != CONNECTION_OK) {
        s_set_error (self, PQerrorMessage (self->conn), "08006");
        PQclear (res);
        return NULL;
    }
    hcp_db_ok (self, res);
    return res;
}

PGresult *
hcp_db_run (hcp_db_t *self, const char *name, int nparams, const char *const *values)
{
    return hcp_db_run_params (self, name, nparams, values, NULL, NULL);
}

int
hcp_db_exec (hcp_db_t *self, const char *sql)
{
    if (!hcp_db_conn (self)) {
        s_set_error (self, "not connected to the database", "08003");
        return -1;
    }
    PGresult *res = PQexec (self->conn, sql);
    int rc = hcp_db_ok (self, res) ? 0 : -1;
    if (!res)
        s_set_error (self, PQerrorMessage (self->conn), "08006");
    PQclear (res);
    return rc;
}

bool
hcp_db_ok (hcp_db_t *self, const PGresult *res)
{
    if (!res)
        return false;
    ExecStatusType status = PQresultStatus (res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return true;
    s_set_error (self, PQresultErrorMessage (res), PQresultErrorField (res, PG_DIAG_SQLSTATE));
    return false;
}

bool
hcp_db_lost (hcp_db_t *self)
{
    return !self->conn || PQstatus (self->conn) != CONNECTION_OK;
}

const char *
hcp_db_error (hcp_db_t *self)
{
    return self->error;
}

const char *
hcp_db_sqlstate (hcp_db_t *self)
{
    return self->sqlstate;
}

int
hcp_db_socket (hcp_db_t *self)
{
    return hcp_db_conn (self) ? PQsocket (self->conn) : -1;
}

int
hcp_db_drain_notifies (hcp_db_t *self)
{
    if (!hcp_db_conn (self))
        return 0;
    PQconsumeInput (self->conn);
    int count = 0;
    PGnotify *notify;
    while ((notify = PQnotifies (self->conn)) != NULL) {
        count++;
        PQfreemem (notify);
    }
    return count;
}

int
hcp_db_take_notify (hcp_db_t *self, char **payload)
{
    *payload = NULL;
    if (!hcp_db_conn (self))
        return 0;
    PQconsumeInput (self->conn);
    PGnotify *notify = PQnotifies (self->conn);
    if (!notify)
        return 0;
    *payload = strdup (notify->extra ? notify->extra : "");
    PQfreemem (notify);
    return 1;
}
