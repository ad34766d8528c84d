/*  hcp-ingest — stores deliveries and ratings from every channel adapter.

    See README.md in this folder: what it owns, its config keys, how it
    behaves when PostgreSQL or an adapter misbehaves. The work is done by
    ingest_server (loop), ingest_store (group commit), ingest_catalog
    (item cache) and common/hcp_validate (the rules).
*/
#include "ingest_server.h"

#include "hcp_config.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <stdio.h>

static const hcp_service_info_t s_info = {
    "ingest",
    "stores deliveries and ratings from channel adapters (DEALER → ROUTER, protobuf)",
    "  database.conninfo               PostgreSQL conninfo (default \"\": libpq's PG* "
    "environment)\n"
    "  ingest.bind                     endpoint(s) adapters connect to, comma-separated\n"
    "                                  (default tcp://127.0.0.1:5560)\n"
    "  ingest.batch_max                most submissions stored in one transaction "
    "(default "
    "500)\n"
    "  ingest.max_message_bytes        larger submissions are rejected (default 65536)\n"
    "  ingest.clock_skew_seconds       how far in the future a time may be (default "
    "300)\n"
    "  ingest.comment_max_chars        longest rating comment, in characters (default "
    "2000)\n"
    "  ingest.catalog_refresh_seconds  reload the service-item catalog this often "
    "(default "
    "60)\n"
    "  ingest.stats_seconds            period of the stats log line (default 60)\n"};

int
main (int argc, char **argv)
{
    hcp_config_t *config = hcp_service_start (&s_info, &argc, argv);
    if (argc > 1) {
        fprintf (stderr, "hcp-ingest: unexpected argument '%s' (see --help)\n", argv[1]);
        hcp_config_destroy (&config);
        return 2;
    }
    ingest_settings_t settings;
    ingest_settings_default (&settings);
    settings.conninfo = hcp_service_conninfo (config);
    settings.bind = hcp_service_str (config, "ingest.bind", settings.bind);
    settings.batch_max = (int) hcp_service_int (config, "ingest.batch_max", 500, 1, 100000);
    settings.limits.max_message_bytes = (size_t) hcp_service_int (
        config, "ingest.max_message_bytes", 65536, 1024, 16 << 20);
    settings.limits.clock_skew_ms =
        hcp_service_int (config, "ingest.clock_skew_seconds", 300, 0, 86400) * 1000;
    settings.limits.comment_max_chars = (size_t) hcp_service_int (
        config, "ingest.comment_max_chars", 2000, 0, 100000);
    settings.catalog_refresh_s = (int) hcp_service_int (
        config, "ingest.catalog_refresh_seconds", 60, 1, 86400);
    settings.stats_s = (int) hcp_service_int (config, "ingest.stats_seconds", 60, 1, 86400);

    ingest_server_t *server = ingest_server_new (&settings);
    int rc = 1;
    if (server) {
        rc = ingest_server_run (server);
        ingest_server_destroy (&server);
    }
    hcp_config_destroy (&config);
    return rc;
}
