/*  hcp_service — see hcp_service.h. */
#include "hcp_service.h"

#include "hcp_log.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int s_stop = 0;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

bool
hcp_service_stopping (void)
{
    return s_stop != 0;
}

volatile int *
hcp_service_stop_flag (void)
{
    return &s_stop;
}

void
hcp_service_request_stop (void)
{
    s_stop = 1;
}

static void
s_usage (const hcp_service_info_t *info, FILE *out)
{
    const char *bin = strcmp (info->name, "hcpctl") == 0 ? "" : "hcp-";
    fprintf (out,
             "%s%s — %s\n\n"
             "Usage: %s%s [options]\n\n"
             "Options:\n"
             "  -c, --config FILE     YAML configuration (default: $HCP_CONFIG, else built-in "
             "defaults)\n"
             "      --log-level L     debug, info, warn or error (config log.level; default "
             "info)\n"
             "      --log-format F    text or json (config log.format; default text)\n"
             "  -h, --help            this help\n"
             "      --version         print the version\n\n"
             "Every config key can be overridden by the environment: HCP_ and the key in "
             "capitals\nwith dots as underscores (database.conninfo → "
             "HCP_DATABASE_CONNINFO).\n",
             bin, info->name, info->summary, bin, info->name);
    if (info->config_help && *info->config_help)
        fprintf (out, "\nConfig keys:\n%s", info->config_help);
}

hcp_config_t *
hcp_service_start (const hcp_service_info_t *info, int *argc, char **argv)
{
    const char *config_path = getenv ("HCP_CONFIG");
    const char *log_level = NULL;
    const char *log_format = NULL;
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        const char *arg = argv[i];
        if (!strcmp (arg, "-h") || !strcmp (arg, "--help")) {
            s_usage (info, stdout);
            exit (0);
        }
        else if (!strcmp (arg, "--version")) {
            printf ("%s %s\n", info->name, HCP_VERSION);
            exit (0);
        }
        else if ((!strcmp (arg, "-c") || !strcmp (arg, "--config")
                  || !strcmp (arg, "--log-level") || !strcmp (arg, "--log-format"))) {
            if (i + 1 >= *argc) {
                fprintf (stderr, "%s: option %s needs a value (see --help)\n", info->name,
                         arg);
                exit (2);
            }
            const char *value = argv[++i];
            if (arg[1] == 'c' || !strcmp (arg, "--config"))
                config_path = value;
            else if (!strcmp (arg, "--log-level"))
                log_level = value;
            else
                log_format = value;
        }
        else if (!strncmp (arg, "--config=", 9))
            config_path = arg + 9;
        else if (!strcmp (arg, "--")) {
            for (i++; i < *argc; i++)
                argv[kept++] = argv[i];
        }
        else
            argv[kept++] = argv[i];
    }
    *argc = kept;
    argv[kept] = NULL;

    char *error = NULL;
    hcp_config_t *config = hcp_config_load (config_path && *config_path ? config_path : NULL,
                                            &error);
    if (!config) {
        fprintf (stderr,
                 "%s: %s\nFix the file, or start without --config to use the defaults.\n",
                 info->name, error);
        free (error);
        exit (1);
    }
    if (!log_level && hcp_config_str (config, "log.level", "info", &log_level) != 0) {
        fprintf (stderr, "%s: %s\n", info->name, hcp_config_error (config));
        exit (1);
    }
    if (!log_format && hcp_config_str (config, "log.format", "text", &log_format) != 0) {
        fprintf (stderr, "%s: %s\n", info->name, hcp_config_error (config));
        exit (1);
    }
    if (hcp_log_setup (info->name, log_level, log_format) != 0) {
        fprintf (stderr,
                 "%s: log level must be debug|info|warn|error and format text|json "
                 "(got '%s', '%s')\n",
                 info->name, log_level, log_format);
        exit (2);
    }
    //  Our handler, not czmq's: czmq would only set zsys_interrupted, and
    //  every hcp loop looks at hcp_service_stopping ().
    zsys_handler_set (NULL);
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    return config;
}

const char *
hcp_service_str (hcp_config_t *config, const char *path, const char *deflt)
{
    const char *value;
    if (hcp_config_str (config, path, deflt, &value) != 0) {
        hcp_error ("configuration: %s", hcp_config_error (config));
        exit (1);
    }
    return value;
}

long long
hcp_service_int (hcp_config_t *config, const char *path, long long deflt, long long min,
                 long long max)
{
    long long value;
    if (hcp_config_int (config, path, deflt, min, max, &value) != 0) {
        hcp_error ("configuration: %s", hcp_config_error (config));
        exit (1);
    }
    return value;
}

bool
hcp_service_bool (hcp_config_t *config, const char *path, bool deflt)
{
    bool value;
    if (hcp_config_bool (config, path, deflt, &value) != 0) {
        hcp_error ("configuration: %s", hcp_config_error (config));
        exit (1);
    }
    return value;
}

const char *
hcp_service_conninfo (hcp_config_t *config)
{
    return hcp_service_str (config, "database.conninfo", "");
}
