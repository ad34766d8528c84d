/*  hcpctl — command line for operators, staff and adapters' paper channels.

    hcpctl [--config FILE] COMMAND [ARGS]; hcpctl COMMAND --help for each.
*/
#include "hcpctl.h"

#include "hcp_log.h"
#include "hcp_service.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run) (hcp_config_t *config, int argc, char **argv);
    const char *summary;
} command_t;

static const command_t s_commands[] = {
    {"migrate", hcpctl_migrate, "apply the database migrations in deploy/sql (safe to rerun)"},
    {"catalog", hcpctl_catalog, "load or list the service-item and unit catalog (YAML)"},
    {"uuid", hcpctl_uuid,
     "print new time-ordered ids (UUIDv7) for adapters and paper records"},
    {"submit", hcpctl_submit, "send a rating or delivery, or a CSV file of them, to ingest"},
    {"sample", hcpctl_sample, "send realistic sample traffic (all channels, good and bad)"},
    {"calendar", hcpctl_calendar, "working days: is a date a working day, when is a deadline"},
    {"case", hcpctl_case,
     "bad-review cases: list, show, the handling form, and staff actions"},
    {NULL, NULL, NULL}};

static void
s_commands_help (void)
{
    printf ("\nCommands:\n");
    for (const command_t *command = s_commands; command->name; command++)
        printf ("  %-10s %s\n", command->name, command->summary);
    printf ("\nRun 'hcpctl COMMAND --help' for a command's options.\n");
}

int
main (int argc, char **argv)
{
    static const hcp_service_info_t info = {
        "hcpctl", "command line for hcp operators, staff and paper channels",
        "  database.conninfo      PostgreSQL conninfo (default: libpq's PG* environment)\n"};
    //  "hcpctl --help" lists the commands; "hcpctl CMD --help" is the
    //  command's own, so only a --help before the command is ours.
    if (argc < 2 || !strcmp (argv[1], "-h") || !strcmp (argv[1], "--help")) {
        printf ("hcpctl — command line for hcp operators, staff and paper channels\n\n"
                "Usage: hcpctl [-c FILE] COMMAND [ARGS]\n");
        s_commands_help ();
        return argc < 2 ? 2 : 0;
    }
    int command_help = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help")) {
            command_help = 1;
            argv[i] = (char *) "--sub-help";
        }
    hcp_config_t *config = hcp_service_start (&info, &argc, argv);
    if (command_help)
        for (int i = 1; i < argc; i++)
            if (!strcmp (argv[i], "--sub-help"))
                argv[i] = (char *) "--help";
    int rc = 2;
    if (argc < 2) {
        fprintf (stderr, "hcpctl: which command? (hcpctl --help lists them)\n");
    }
    else {
        const command_t *command = s_commands;
        while (command->name && strcmp (command->name, argv[1]) != 0)
            command++;
        if (command->name)
            rc = command->run (config, argc - 1, argv + 1);
        else
            fprintf (stderr, "hcpctl: unknown command '%s' (hcpctl --help lists them)\n",
                     argv[1]);
    }
    hcp_config_destroy (&config);
    return rc;
}
