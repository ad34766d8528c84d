/*  hcpctl migrate — applies deploy/sql/NNN_name.sql in order.

    Each migration runs in its own transaction together with its row in
    schema_migrations, under an advisory lock, so running it twice (or from
    two machines at once) is safe. A database whose schema is newer than the
    migrations this hcpctl knows is refused: an old binary must not run
    against a new schema. An applied migration whose file has changed since
    is reported: migrations are history and are never edited.
*/
#include "hcpctl.h"

#include "hcp_log.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Advisory lock key: "hcp-migrate" (any constant shared by all hcpctl).
#define MIGRATE_LOCK "7312505317"

typedef struct {
    int version;
    char name[256];
    char path[PATH_MAX + 512];
} migration_t;

static int
s_is_dir (const char *path)
{
    DIR *dir = opendir (path);
    if (dir)
        closedir (dir);
    return dir != NULL;
}

//  Where the migrations are: --dir, config database.migrations, then
//  deploy/sql next to the working directory or to the binary, then the
//  installed copy.
static const char *
s_find_dir (hcp_config_t *config, const char *given, char *buf, size_t size)
{
    if (given)
        return given;
    const char *configured = NULL;
    if (hcp_config_str (config, "database.migrations", NULL, &configured) == 0 && configured)
        return configured;
    if (s_is_dir ("deploy/sql"))
        return "deploy/sql";
    char exe[PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        //  build/bin/hcpctl or build/asan/bin/hcpctl → project root
        char *dir = dirname (exe);
        for (int up = 0; up < 4; up++) {
            snprintf (buf, size, "%s/deploy/sql", dir);
            if (s_is_dir (buf))
                return buf;
            dir = dirname (dir);
        }
    }
    if (s_is_dir ("/usr/share/hcp/sql"))
        return "/usr/share/hcp/sql";
    return NULL;
}

static int
s_compare (const void *a, const void *b)
{
    return ((const migration_t *) a)->version - ((const migration_t *) b)->version;
}

static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    rewind (file);
    char *text = malloc ((size_t) size + 1);
    if (text && fread (text, 1, (size_t) size, file) != (size_t) size) {
        free (text);
        text = NULL;
    }
    if (text)
        text[size] = 0;
    fclose (file);
    return text;
}

static int
s_list (const char *dir_path, migration_t **list_p, int *count_p)
{
    DIR *dir = opendir (dir_path);
    if (!dir) {
        fprintf (stderr, "hcpctl migrate: cannot read %s: %s\n", dir_path, strerror (errno));
        return -1;
    }
    migration_t *list = NULL;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL) {
        int version, used = 0;
        size_t len = strlen (entry->d_name);
        if (len < 5 || strcmp (entry->d_name + len - 4, ".sql") != 0)
            continue;
        if (sscanf (entry->d_name, "%d_%n", &version, &used) != 1 || used == 0 || version <= 0)
            continue;
        list = realloc (list, (size_t) (count + 1) * sizeof *list);
        migration_t *migration = &list[count++];
        migration->version = version;
        snprintf (migration->name, sizeof migration->name, "%s", entry->d_name);
        snprintf (migration->path, sizeof migration->path, "%s/%s", dir_path, entry->d_name);
    }
    closedir (dir);
    qsort (list, (size_t) count, sizeof *list, s_compare);
    for (int i = 1; i < count; i++)
        if (list[i].version == list[i - 1].version) {
            fprintf (stderr, "hcpctl migrate: two migrations with version %d: %s and %s\n",
                     list[i].version, list[i - 1].name, list[i].name);
            free (list);
            return -1;
        }
    *list_p = list;
    *count_p = count;
    return 0;
}

static double
s_seconds (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

int
hcpctl_migrate (hcp_config_t *config, int argc, char **argv)
{
    const char *given = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--help")) {
            printf (
                "Usage: hcpctl migrate [--dir DIR] [--status]\n\n"
                "Applies the numbered migrations (NNN_name.sql) that the database lacks, "
                "each in its own\ntransaction. Safe to run again. Refuses a database whose "
                "schema is newer than DIR.\n\n"
                "  --dir DIR   migrations folder (default: config database.migrations, "
                "else deploy/sql)\n"
                "  --status    show applied and pending migrations, change nothing\n");
            return 0;
        }
        else if (!strcmp (argv[i], "--dir") && i + 1 < argc)
            given = argv[++i];
        else if (!strcmp (argv[i], "--status"))
            check_only = 1;
        else {
            fprintf (stderr, "hcpctl migrate: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    char buf[PATH_MAX];
    const char *dir = s_find_dir (config, given, buf, sizeof buf);
    if (!dir) {
        fprintf (stderr, "hcpctl migrate: no migrations folder found; give --dir DIR\n");
        return 1;
    }
    migration_t *list = NULL;
    int count = 0;
    if (s_list (dir, &list, &count) != 0)
        return 1;
    if (count == 0) {
        fprintf (stderr, "hcpctl migrate: no NNN_name.sql files in %s\n", dir);
        free (list);
        return 1;
    }
    hcp_db_t *db = hcpctl_connect (config);
    if (!db) {
        free (list);
        return 1;
    }
    int rc = 1;
    PGresult *res = NULL;
    if (hcp_db_exec (db, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")") != 0
        || hcp_db_exec (db, "SET client_min_messages = warning") != 0
        || hcp_db_exec (
               db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version integer PRIMARY KEY, name text NOT NULL,"
                   " checksum text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now());"
                   "COMMENT ON TABLE schema_migrations IS 'Migrations applied by hcpctl "
                   "migrate: the schema version is the highest version here.';"
                   "COMMENT ON COLUMN schema_migrations.version IS 'NNN of NNN_name.sql.';"
                   "COMMENT ON COLUMN schema_migrations.name IS 'File name applied.';"
                   "COMMENT ON COLUMN schema_migrations.checksum IS 'md5 of the file as "
                   "applied: an edited migration is reported.';"
                   "COMMENT ON COLUMN schema_migrations.applied_at IS 'When it was "
                   "applied.';")
               != 0) {
        fprintf (stderr, "hcpctl migrate: %s\n", hcp_db_error (db));
        goto done;
    }
    res = PQexec (hcp_db_conn (db), "SELECT version, name, checksum FROM schema_migrations "
                                    "ORDER BY version");
    if (!hcp_db_ok (db, res)) {
        fprintf (stderr, "hcpctl migrate: %s\n", hcp_db_error (db));
        goto done;
    }
    int known = list[count - 1].version;
    int applied_max = 0;
    for (int row = 0; row < PQntuples (res); row++) {
        int version = atoi (PQgetvalue (res, row, 0));
        if (version > applied_max)
            applied_max = version;
    }
    if (applied_max > known) {
        fprintf (stderr,
                 "hcpctl migrate: the database schema is at version %d, newer than the "
                 "migrations in %s (up to %d).\nRefusing to touch it: use the hcpctl and "
                 "migrations of the release that made it.\n",
                 applied_max, dir, known);
        goto done;
    }
    int applied_now = 0;
    for (int i = 0; i < count; i++) {
        migration_t *migration = &list[i];
        char *text = s_read_file (migration->path);
        if (!text) {
            fprintf (stderr, "hcpctl migrate: cannot read %s\n", migration->path);
            goto done;
        }
        const char *applied_sum = NULL;
        for (int row = 0; row < PQntuples (res); row++)
            if (atoi (PQgetvalue (res, row, 0)) == migration->version)
                applied_sum = PQgetvalue (res, row, 2);
        const char *params[] = {text};
        PGresult *sum = PQexecParams (hcp_db_conn (db), "SELECT md5($1)", 1, NULL, params,
                                      NULL, NULL, 0);
        char checksum[40] = "";
        if (hcp_db_ok (db, sum))
            snprintf (checksum, sizeof checksum, "%s", PQgetvalue (sum, 0, 0));
        PQclear (sum);
        if (applied_sum) {
            if (strcmp (applied_sum, checksum) != 0)
                fprintf (stderr,
                         "hcpctl migrate: warning: %s was changed after it was applied "
                         "(checksum %s, now %s); migrations must not be edited\n",
                         migration->name, applied_sum, checksum);
            free (text);
            continue;
        }
        if (check_only) {
            printf ("pending  %s\n", migration->name);
            free (text);
            continue;
        }
        printf ("applying %s ... ", migration->name);
        fflush (stdout);
        double started = s_seconds ();
        char version[16];
        snprintf (version, sizeof version, "%d", migration->version);
        const char *row[] = {version, migration->name, checksum};
        int ok = hcp_db_exec (db, "BEGIN") == 0 && hcp_db_exec (db, text) == 0;
        if (ok) {
            PGresult *insert = PQexecParams (hcp_db_conn (db),
                                             "INSERT INTO schema_migrations (version, name, "
                                             "checksum) VALUES ($1, $2, $3)",
                                             3, NULL, row, NULL, NULL, 0);
            ok = hcp_db_ok (db, insert);
            PQclear (insert);
        }
        ok = ok && hcp_db_exec (db, "COMMIT") == 0;
        free (text);
        if (!ok) {
            printf ("failed\n");
            fprintf (stderr,
                     "hcpctl migrate: %s: %s\nNothing of this migration was applied.\n",
                     migration->name, hcp_db_error (db));
            hcp_db_exec (db, "ROLLBACK");
            goto done;
        }
        printf ("done (%.2f s)\n", s_seconds () - started);
        applied_now++;
    }
    //  Auditors read the schema version too (the role exists once 001 ran).
    if (!check_only
        && hcp_db_exec (db, "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                            "'hcp_auditor') THEN GRANT SELECT ON schema_migrations TO "
                            "hcp_auditor, hcp_service; END IF; END $$")
               != 0)
        fprintf (stderr, "hcpctl migrate: warning: %s\n", hcp_db_error (db));
    if (check_only)
        printf ("schema version %d; migrations known up to %d\n", applied_max, known);
    else if (applied_now == 0)
        printf ("schema is up to date (version %d)\n", known);
    else
        printf ("schema is now at version %d (%d migration%s applied)\n", known, applied_now,
                applied_now == 1 ? "" : "s");
    rc = 0;
done:
    PQclear (res);
    hcp_db_exec (db, "SELECT pg_advisory_unlock_all()");
    hcp_db_destroy (&db);
    free (list);
    return rc;
}
