/*  hcp-bus — the event bus: an XSUB/XPUB proxy. Publishers (hcp-relay)
    connect PUB sockets to its XSUB side; subscribers connect SUB sockets
    to its XPUB side; subscriptions flow up, messages flow down.

    It keeps no state: events live in PostgreSQL, and a subscriber that
    lost messages (because this process restarted, say) reads them from the
    events table (see hcp_bus.h). So it can be killed and restarted at any
    time. See README.md.

    Our own loop rather than zmq_proxy(): it returns on SIGTERM without a
    control socket, and logs what it forwarded.
*/
#include "hcp_bus.h"
#include "hcp_log.h"
#include "hcp_service.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>

static const hcp_service_info_t s_info = {
    "bus", "the event bus: XSUB/XPUB proxy between the relay and event subscribers",
    "  bus.publish            XSUB endpoint to bind, publishers connect here "
    "(default " HCP_BUS_PUBLISH_ENDPOINT ")\n"
    "  bus.subscribe          XPUB endpoint to bind, subscribers connect here "
    "(default " HCP_BUS_SUBSCRIBE_ENDPOINT ")\n"
    "  bus.hwm                messages queued per peer before dropping (default "
    "200000)\n"};

//  Messages moved per wake-up before looking at the other side again: a
//  flood of events must not starve subscriptions (or the stop flag).
#define S_BURST 1000

//  Moves up to S_BURST whole (multi-frame) messages from one socket to the
//  other without blocking. Returns how many.
static uint64_t
s_forward (void *from, void *to)
{
    uint64_t count = 0;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    while (count < S_BURST) {
        if (zmq_msg_recv (&frame, from, ZMQ_DONTWAIT) < 0)
            break;
        while (1) {
            int more = zmq_msg_more (&frame);
            //  XPUB drops for a slow subscriber and never blocks; XSUB sends
            //  subscriptions upstream. A refused frame is dropped, like
            //  any PUB/SUB message may be: the events table is the truth.
            if (zmq_msg_send (&frame, to, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                zmq_msg_init (&frame);
            }
            if (!more)
                break;
            if (zmq_msg_recv (&frame, from, 0) < 0)
                break;
        }
        count++;
    }
    zmq_msg_close (&frame);
    return count;
}

int
main (int argc, char **argv)
{
    hcp_config_t *config = hcp_service_start (&s_info, &argc, argv);
    const char *publish = hcp_service_str (config, "bus.publish", HCP_BUS_PUBLISH_ENDPOINT);
    const char *subscribe = hcp_service_str (config, "bus.subscribe",
                                             HCP_BUS_SUBSCRIBE_ENDPOINT);
    int hwm = (int) hcp_service_int (config, "bus.hwm", 50000, 1, 100000000);

    zsock_t *xsub = zsock_new (ZMQ_XSUB);
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    assert (xsub && xpub);
    zsock_set_rcvhwm (xsub, hwm);
    zsock_set_sndhwm (xpub, hwm);
    zsock_set_linger (xsub, 0);
    zsock_set_linger (xpub, 0);
    int rc = 0;
    if (zsock_bind (xsub, "%s", publish) < 0) {
        hcp_error ("bus: cannot bind bus.publish %s: %s", publish,
                   zmq_strerror (zmq_errno ()));
        rc = 1;
    }
    else if (zsock_bind (xpub, "%s", subscribe) < 0) {
        hcp_error ("bus: cannot bind bus.subscribe %s: %s", subscribe,
                   zmq_strerror (zmq_errno ()));
        rc = 1;
    }
    uint64_t events = 0, subscriptions = 0;
    if (rc == 0) {
        hcp_info ("bus: publishers connect to %s, subscribers to %s", publish, subscribe);
        zmq_pollitem_t items[2] = {{zsock_resolve (xsub), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve (xpub), 0, ZMQ_POLLIN, 0}};
        while (!hcp_service_stopping ()) {
            if (zmq_poll (items, 2, 200) < 0 && zmq_errno () != EINTR) {
                hcp_error ("bus: poll failed: %s", zmq_strerror (zmq_errno ()));
                rc = 1;
                break;
            }
            if (items[0].revents & ZMQ_POLLIN)
                events += s_forward (items[0].socket, items[1].socket);
            if (items[1].revents & ZMQ_POLLIN)
                subscriptions += s_forward (items[1].socket, items[0].socket);
        }
        hcp_info ("bus: stopping after forwarding %" PRIu64 " messages and %" PRIu64
                  " subscription changes",
                  events, subscriptions);
    }
    zsock_destroy (&xpub);
    zsock_destroy (&xsub);
    hcp_config_destroy (&config);
    return rc;
}
