/*  hcpctl uuid [N] — prints N (default 1) new UUIDv7 ids, one a line. */
#include "hcpctl.h"

#include "hcp_uuid.h"

#include <stdio.h>
#include <stdlib.h>

int
hcpctl_uuid (hcp_config_t *config, int argc, char **argv)
{
    (void) config;
    if (hcpctl_wants_help (argc, argv)) {
        printf (
            "Usage: hcpctl uuid [N]\n\nPrints N (default 1) new time-ordered ids (UUIDv7), "
            "one a line:\nthe rating_id column for paper-channel CSV files.\n");
        return 0;
    }
    long count = argc > 1 ? strtol (argv[1], NULL, 10) : 1;
    if (count < 1 || count > 1000000) {
        fprintf (stderr, "hcpctl uuid: N must be from 1 to 1000000\n");
        return 2;
    }
    for (long i = 0; i < count; i++) {
        char id[HCP_UUID_STR_LEN];
        hcp_uuid_v7 (0, id);
        puts (id);
    }
    return 0;
}
