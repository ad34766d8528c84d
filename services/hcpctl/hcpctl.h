/*  hcpctl — the operators' and staff's command line. Each sub-command lives
    in its own cmd_<name>.c with an entry point of this shape:

        int hcpctl_<name> (hcp_config_t *config, int argc, char **argv);

    argv[0] is the sub-command name; the common options (--config, --help,
    --log-level) were already taken out by hcp_service_start. Return the
    process exit code: 0 success, 1 failure, 2 usage error.
*/
#ifndef HCPCTL_H_INCLUDED
#define HCPCTL_H_INCLUDED

#include "hcp_config.h"
#include "hcp_db.h"

int hcpctl_migrate (hcp_config_t *config, int argc, char **argv);
int hcpctl_catalog (hcp_config_t *config, int argc, char **argv);
int hcpctl_uuid (hcp_config_t *config, int argc, char **argv);
int hcpctl_submit (hcp_config_t *config, int argc, char **argv);
int hcpctl_sample (hcp_config_t *config, int argc, char **argv);

//  The ingest endpoint(s) for hcpctl's submissions: flag if given, else
//  config ingest.endpoint, else ingest.bind ("*" read as 127.0.0.1), else
//  tcp://127.0.0.1:5560. Returns a string valid until the next call.
const char *hcpctl_ingest_endpoint (hcp_config_t *config, const char *flag);
int hcpctl_calendar (hcp_config_t *config, int argc, char **argv);
int hcpctl_case (hcp_config_t *config, int argc, char **argv);

//  Connects to the configured database (database.conninfo or libpq's PG*
//  environment), trying for up to 10 s. Prints what to do and returns NULL
//  when it cannot.
hcp_db_t *hcpctl_connect (hcp_config_t *config);

//  True if argv holds "-h" or "--help" (sub-command help).
int hcpctl_wants_help (int argc, char **argv);

#endif
