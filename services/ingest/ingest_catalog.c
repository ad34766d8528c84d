/*  ingest_catalog — see ingest_catalog.h. */
#include "ingest_catalog.h"

#include <czmq.h>

struct _ingest_catalog_t {
    zhashx_t *items; //  item_code → HCP_ITEM_ACTIVE / HCP_ITEM_INACTIVE (as a pointer)
    size_t misses;
};

//  The catalog query, registered once per connection (hcp_db re-prepares it).
static const char *s_sql_catalog = "SELECT item_code, active FROM service_items";

ingest_catalog_t *
ingest_catalog_new (void)
{
    ingest_catalog_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->items = zhashx_new ();
    return self;
}

void
ingest_catalog_destroy (ingest_catalog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy (&(*self_p)->items);
    free (*self_p);
    *self_p = NULL;
}

int
ingest_catalog_load (ingest_catalog_t *self, hcp_db_t *db)
{
    if (hcp_db_prepare (db, "ingest_catalog", s_sql_catalog) != 0)
        return -1;
    PGresult *res = hcp_db_run (db, "ingest_catalog", 0, NULL);
    if (!hcp_db_ok (db, res)) {
        PQclear (res);
        return -1;
    }
    zhashx_t *items = zhashx_new ();
    int active = 0;
    for (int row = 0; row < PQntuples (res); row++) {
        bool is_active = PQgetvalue (res, row, 1)[0] == 't';
        active += is_active;
        zhashx_insert (items, PQgetvalue (res, row, 0),
                       (void *) (intptr_t) (is_active ? HCP_ITEM_ACTIVE : HCP_ITEM_INACTIVE));
    }
    PQclear (res);
    zhashx_destroy (&self->items);
    self->items = items;
    self->misses = 0;
    return active;
}

hcp_item_state_t
ingest_catalog_lookup (void *arg, const char *item_code)
{
    ingest_catalog_t *self = arg;
    hcp_item_state_t state = (hcp_item_state_t) (intptr_t) zhashx_lookup (self->items,
                                                                          item_code);
    if (state != HCP_ITEM_ACTIVE)
        self->misses++;
    return state;
}

size_t
ingest_catalog_misses (ingest_catalog_t *self)
{
    return self->misses;
}
