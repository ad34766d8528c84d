/*  hcp-relay — stamps committed events with their gapless sequence number
    and publishes them on the bus. See README.md and relay.h. */
#include "relay.h"

#include "hcp_bus.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <stdlib.h>

static const hcp_service_info_t s_info = {
    "relay", "stamps committed events in commit order and publishes them on the event bus",
    "  database.conninfo      PostgreSQL conninfo (default \"\": libpq's PG* variables)\n"
    "  bus.publish            XSUB side of hcp-bus to publish to "
    "(default " HCP_BUS_PUBLISH_ENDPOINT ")\n"
    "  relay.batch_max        events stamped per transaction (default 5000)\n"
    "  relay.poll_ms          look for events this often even without NOTIFY (default "
    "250)\n"
    "  relay.heartbeat_ms     heartbeat period, so subscribers see what they missed "
    "(default 1000)\n"
    "  relay.standby_retry_ms a standby relay tries to take the lead this often "
    "(default 1000)\n"
    "  relay.send_hwm         messages queued towards the bus before dropping "
    "(default 100000)\n"};

int
main (int argc, char **argv)
{
    hcp_config_t *config = hcp_service_start (&s_info, &argc, argv);
    hcp_relay_options_t options;
    hcp_relay_options_default (&options);
    options.conninfo = hcp_service_conninfo (config);
    options.publish_endpoint = hcp_service_str (config, "bus.publish",
                                                HCP_BUS_PUBLISH_ENDPOINT);
    options.batch_max = (int) hcp_service_int (config, "relay.batch_max", 5000, 1, 1000000);
    options.poll_ms = (int) hcp_service_int (config, "relay.poll_ms", 250, 1, 60000);
    options.heartbeat_ms = (int) hcp_service_int (config, "relay.heartbeat_ms", 1000, 10,
                                                  60000);
    options.standby_retry_ms = (int) hcp_service_int (config, "relay.standby_retry_ms", 1000,
                                                      10, 60000);
    options.send_hwm = (int) hcp_service_int (config, "relay.send_hwm", 100000, 1, 100000000);

    hcp_relay_t *relay = hcp_relay_new (&options);
    if (!relay) {
        hcp_config_destroy (&config);
        return 1;
    }
    hcp_relay_run (relay, hcp_service_stop_flag ());
    hcp_relay_destroy (&relay);
    hcp_config_destroy (&config);
    return 0;
}
