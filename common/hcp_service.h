/*  hcp_service — the skeleton every hcp binary shares.

    parse args → load config → set up logging → (connect, loop) → stop on
    SIGTERM/SIGINT. A reader who knows one service knows them all:

        static const hcp_service_info_t s_info = {
            "ingest", "stores ratings and deliveries from channel adapters",
            "  ingest.bind            endpoint adapters connect to (default tcp://127.0.0.1:5560)\n"};
        int main (int argc, char **argv) {
            hcp_config_t *config = hcp_service_start (&s_info, argc, argv);
            ...
            while (!hcp_service_stopping ()) { ... }
        }

    Common options: -c/--config FILE (or HCP_CONFIG), -h/--help, --version,
    --log-level LEVEL, --log-format text|json. Unknown options are an error.
    Options after "--" or not starting with '-' are left in *argc/argv for
    the program (hcp_service_start rewrites them).
*/
#ifndef HCP_SERVICE_H_INCLUDED
#define HCP_SERVICE_H_INCLUDED

#include "hcp_config.h"

#include <stdbool.h>

#define HCP_VERSION "0.1.0"

typedef struct {
    const char *name;        //  service name, e.g. "ingest"; the binary is hcp-<name>
    const char *summary;     //  one line: what it does
    const char *config_help; //  lines describing its config keys, for --help
} hcp_service_info_t;

//  Handles the common options and loads the configuration. Prints help
//  and exits 0 for --help; exits 2 on a usage error and 1 when the config
//  file cannot be loaded, with a message saying what to do. Installs
//  SIGTERM/SIGINT handlers. Returns the configuration (caller destroys).
//  Leaves unhandled positional arguments in argv[1..*argc-1].
hcp_config_t *hcp_service_start (const hcp_service_info_t *info, int *argc, char **argv);

//  True once SIGTERM or SIGINT arrived.
bool hcp_service_stopping (void);

//  The stop flag itself, for hcp_db_ensure (..., stop).
volatile int *hcp_service_stop_flag (void);

//  Asks the loop to stop (as a signal would).
void hcp_service_request_stop (void);

//  The PostgreSQL conninfo: config database.conninfo, overridden by
//  HCP_DATABASE_CONNINFO; the default "" lets libpq use PGHOST, PGPORT,
//  PGDATABASE... Exits 1 with a message if the config value is malformed.
const char *hcp_service_conninfo (hcp_config_t *config);

//  Reads a config value or exits 1 with the config's error message: for
//  settings read at start-up, where a bad value must stop the service
//  before it does anything.
const char *hcp_service_str (hcp_config_t *config, const char *path, const char *deflt);
long long hcp_service_int (hcp_config_t *config, const char *path, long long deflt,
                           long long min, long long max);
bool hcp_service_bool (hcp_config_t *config, const char *path, bool deflt);

#endif
