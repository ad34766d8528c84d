/*  hcp_db — one PostgreSQL connection (libpq) that survives restarts.

    - conninfo may name several hosts ("host=a,b ... target_session_attrs=
      read-write"): libpq tries them in turn and keeps the writable one, so a
      fail-over is just a reconnect.
    - hcp_db_ensure reconnects with exponential backoff and jitter; every
      statement registered with hcp_db_prepare is prepared again on the new
      connection, so callers never see "prepared statement does not exist".
    - Business time is never the database's now(): services pass their clock
      (hcp_clock) as a parameter, so tests can run weeks in seconds.

    Not thread-safe: one hcp_db_t per thread.
*/
#ifndef HCP_DB_H_INCLUDED
#define HCP_DB_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct _hcp_db_t hcp_db_t;

//  Creates a handle; does not connect yet. application_name, if not NULL,
//  is set on every connection (shows in pg_stat_activity).
hcp_db_t *hcp_db_new (const char *conninfo, const char *application_name);

//  Closes the connection and frees the handle; nulls the pointer.
void hcp_db_destroy (hcp_db_t **self_p);

//  Makes sure the connection is up, reconnecting with backoff (100 ms
//  doubling to 5 s, with jitter) for at most max_wait_ms (-1: forever,
//  0: one try). Returns 0 when connected, -1 otherwise (see hcp_db_error).
//  Gives up early, returning -1, if *stop becomes true (stop may be NULL).
int hcp_db_ensure (hcp_db_t *self, int max_wait_ms, volatile int *stop);

//  The live connection, or NULL when down. Owned by self.
PGconn *hcp_db_conn (hcp_db_t *self);

//  Registers a named statement: prepared now if connected, and again after
//  every reconnect. Returns 0, or -1 if preparing failed (SQL error).
int hcp_db_prepare (hcp_db_t *self, const char *name, const char *sql);

//  Runs a registered statement with text parameters (NULL = SQL NULL).
//  Returns the result (caller frees with PQclear), or NULL if the
//  connection was lost before an answer came. A result whose status is an
//  error is returned as is, and its message is also kept in hcp_db_error.
PGresult *hcp_db_run (hcp_db_t *self, const char *name, int nparams,
                      const char *const *values);

//  Same with explicit lengths and formats (binary parameters).
PGresult *hcp_db_run_params (hcp_db_t *self, const char *name, int nparams,
                             const char *const *values, const int *lengths,
                             const int *formats);

//  Runs SQL text without parameters (BEGIN, COMMIT, LISTEN ...). Returns 0
//  if the command succeeded, -1 otherwise.
int hcp_db_exec (hcp_db_t *self, const char *sql);

//  True if the status of res is a success (COMMAND_OK or TUPLES_OK). When
//  it is not, the message is kept for hcp_db_error. res may be NULL.
bool hcp_db_ok (hcp_db_t *self, const PGresult *res);

//  True when the connection is gone (the caller should hcp_db_ensure and
//  retry its transaction).
bool hcp_db_lost (hcp_db_t *self);

//  The last error message, one line. Owned by self.
const char *hcp_db_error (hcp_db_t *self);

//  The SQLSTATE of the last error ("" if none), e.g. "40001", "23505".
const char *hcp_db_sqlstate (hcp_db_t *self);

//  Socket to poll for NOTIFY messages (after hcp_db_exec "LISTEN x"), or
//  -1 when down. Call hcp_db_drain_notifies after it is readable; it
//  returns how many notifications arrived.
int hcp_db_socket (hcp_db_t *self);
int hcp_db_drain_notifies (hcp_db_t *self);

//  Takes the next NOTIFY that has arrived, reading the socket first.
//  Returns 1 and sets *payload (malloc'd, caller frees) when there was one,
//  0 when none is waiting (or the connection is down).
int hcp_db_take_notify (hcp_db_t *self, char **payload);

#endif
