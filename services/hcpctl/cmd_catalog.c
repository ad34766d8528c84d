/*  hcpctl catalog load FILE | list — the service-item and unit catalog.

    load: upserts units and items from YAML in one transaction; items no
    longer in the file are marked inactive (history keeps referring to
    them, so nothing is deleted). Each error names file, line and key.
*/
#include "hcpctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_usage (void)
{
    printf (
        "Usage: hcpctl catalog load FILE   load units and items (YAML) in one transaction\n"
        "       hcpctl catalog list        print the catalog\n\n"
        "FILE has 'units' (code, name, contact, phone) and 'items' (code, name, unit,\n"
        "disclosable). See deploy/config/catalog.yaml.\n");
    return 0;
}

//  Returns the scalar text of key under entry, or NULL (with an error in
//  the tree's error text) if required and missing or not text.
static const char *
s_field (hcp_config_t *root, hcp_config_t *entry, const char *key, int required)
{
    hcp_config_t *node = hcp_config_at (entry, key);
    if (!node) {
        if (required)
            hcp_config_fail (root, entry, "missing '%s'", key);
        return NULL;
    }
    const char *value = hcp_config_value (node);
    if (!value)
        hcp_config_fail (root, node, "expected text");
    return value;
}

static int
s_load (hcp_config_t *config, const char *path)
{
    char *error = NULL;
    hcp_config_t *catalog = hcp_config_load (path, &error);
    if (!catalog) {
        fprintf (stderr, "hcpctl catalog: %s\n", error);
        free (error);
        return 1;
    }
    hcp_config_t *units = hcp_config_at (catalog, "units");
    hcp_config_t *items = hcp_config_at (catalog, "items");
    if (!hcp_config_is_seq (units) || !hcp_config_is_seq (items)) {
        fprintf (stderr, "hcpctl catalog: %s: needs lists 'units' and 'items'\n", path);
        hcp_config_destroy (&catalog);
        return 1;
    }
    hcp_db_t *db = hcpctl_connect (config);
    if (!db) {
        hcp_config_destroy (&catalog);
        return 1;
    }
    int rc = 1;
    hcp_db_prepare (
        db, "unit_upsert",
        "INSERT INTO units (unit_code, name, contact, phone) VALUES ($1,$2,$3,$4) "
        "ON CONFLICT (unit_code) DO UPDATE SET name = $2, contact = $3, phone = $4, "
        "updated_at = now()");
    hcp_db_prepare (
        db, "item_upsert",
        "INSERT INTO service_items (item_code, name, unit_code, disclosable, active) "
        "VALUES ($1,$2,$3,$4,true) ON CONFLICT (item_code) DO UPDATE SET name = $2, "
        "unit_code = $3, disclosable = $4, active = true, updated_at = now()");
    if (hcp_db_exec (db, "BEGIN") != 0
        || hcp_db_exec (db, "CREATE TEMP TABLE loaded_items (item_code text) ON COMMIT DROP")
               != 0)
        goto fail_db;
    hcp_db_prepare (db, "item_loaded", "INSERT INTO loaded_items VALUES ($1)");
    for (size_t i = 0; i < hcp_config_size (units); i++) {
        hcp_config_t *unit = hcp_config_child (units, i);
        const char *row[4] = {
            s_field (catalog, unit, "code", 1), s_field (catalog, unit, "name", 1),
            s_field (catalog, unit, "contact", 0), s_field (catalog, unit, "phone", 0)};
        if (!row[0] || !row[1])
            goto fail_file;
        PGresult *res = hcp_db_run (db, "unit_upsert", 4, row);
        int ok = hcp_db_ok (db, res);
        PQclear (res);
        if (!ok) {
            hcp_config_fail (catalog, unit, "%s", hcp_db_error (db));
            goto fail_file;
        }
    }
    for (size_t i = 0; i < hcp_config_size (items); i++) {
        hcp_config_t *item = hcp_config_child (items, i);
        bool disclosable = true;
        hcp_config_t *flag = hcp_config_at (item, "disclosable");
        if (flag) {
            const char *value = hcp_config_value (flag);
            if (!value || (strcmp (value, "true") && strcmp (value, "false"))) {
                hcp_config_fail (catalog, flag, "expected true or false");
                goto fail_file;
            }
            disclosable = !strcmp (value, "true");
        }
        const char *row[4] = {s_field (catalog, item, "code", 1),
                              s_field (catalog, item, "name", 1),
                              s_field (catalog, item, "unit", 1), disclosable ? "t" : "f"};
        if (!row[0] || !row[1] || !row[2])
            goto fail_file;
        PGresult *res = hcp_db_run (db, "item_upsert", 4, row);
        int ok = hcp_db_ok (db, res);
        PQclear (res);
        res = ok ? hcp_db_run (db, "item_loaded", 1, row) : NULL;
        ok = ok && hcp_db_ok (db, res);
        PQclear (res);
        if (!ok) {
            hcp_config_fail (catalog, item, "%s", hcp_db_error (db));
            goto fail_file;
        }
    }
    PGresult *res = PQexec (hcp_db_conn (db),
                            "UPDATE service_items SET active = false, updated_at = now() "
                            "WHERE active AND item_code NOT IN (SELECT item_code FROM "
                            "loaded_items)");
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        goto fail_db;
    }
    const char *withdrawn = PQcmdTuples (res);
    printf ("catalog: %zu units, %zu items loaded; %s item(s) no longer listed marked "
            "inactive\n",
            hcp_config_size (units), hcp_config_size (items), withdrawn);
    PQclear (res);
    if (hcp_db_exec (db, "COMMIT") != 0)
        goto fail_db;
    rc = 0;
    goto done;
fail_file:
    fprintf (stderr, "hcpctl catalog: %s\nNothing was loaded.\n", hcp_config_error (catalog));
    hcp_db_exec (db, "ROLLBACK");
    goto done;
fail_db:
    fprintf (stderr, "hcpctl catalog: %s\nNothing was loaded.\n", hcp_db_error (db));
    hcp_db_exec (db, "ROLLBACK");
done:
    hcp_db_destroy (&db);
    hcp_config_destroy (&catalog);
    return rc;
}

static int
s_list (hcp_config_t *config)
{
    hcp_db_t *db = hcpctl_connect (config);
    if (!db)
        return 1;
    PGresult *res = PQexec (
        hcp_db_conn (db), "SELECT i.item_code, i.unit_code, u.name, i.active, i.disclosable, "
                          "i.name FROM service_items i JOIN units u USING (unit_code) "
                          "ORDER BY i.item_code");
    int rc = 1;
    if (hcp_db_ok (db, res)) {
        printf ("%-14s %-6s %-8s %-11s %s\n", "item", "unit", "active", "disclosable", "name");
        for (int row = 0; row < PQntuples (res); row++)
            printf ("%-14s %-6s %-8s %-11s %s\n", PQgetvalue (res, row, 0),
                    PQgetvalue (res, row, 1), PQgetvalue (res, row, 3),
                    PQgetvalue (res, row, 4), PQgetvalue (res, row, 5));
        rc = 0;
    }
    else
        fprintf (stderr, "hcpctl catalog: %s\n", hcp_db_error (db));
    PQclear (res);
    hcp_db_destroy (&db);
    return rc;
}

int
hcpctl_catalog (hcp_config_t *config, int argc, char **argv)
{
    if (argc < 2 || !strcmp (argv[1], "--help"))
        return argc < 2 ? (s_usage (), 2) : s_usage ();
    if (!strcmp (argv[1], "load") && argc == 3)
        return s_load (config, argv[2]);
    if (!strcmp (argv[1], "list") && argc == 2)
        return s_list (config);
    fprintf (stderr, "hcpctl catalog: expected 'load FILE' or 'list' (see --help)\n");
    return 2;
}
