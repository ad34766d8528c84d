/*  hcpctl — helpers shared by the sub-commands. */
#include "hcpctl.h"

#include "hcp_service.h"

#include <stdio.h>
#include <string.h>

hcp_db_t *
hcpctl_connect (hcp_config_t *config)
{
    hcp_db_t *db = hcp_db_new (hcp_service_conninfo (config), "hcpctl");
    if (hcp_db_ensure (db, 10000, hcp_service_stop_flag ()) != 0) {
        fprintf (
            stderr,
            "hcpctl: cannot connect to PostgreSQL: %s\n"
            "Set database.conninfo in the config (or HCP_DATABASE_CONNINFO, or PGHOST/"
            "PGPORT/PGDATABASE);\nfor the local cluster: eval \"$(deploy/scripts/pg-local.sh "
            "env)\".\n",
            hcp_db_error (db));
        hcp_db_destroy (&db);
    }
    return db;
}

int
hcpctl_wants_help (int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help"))
            return 1;
    return 0;
}
