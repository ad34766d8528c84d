/*  ingest_catalog — ingest's cached copy of the service-item catalog.

    Every submission names an item code; asking PostgreSQL for each would
    cost a round trip per message, so ingest keeps the codes in memory and
    refreshes them: at start, every ingest.catalog_refresh_seconds, and —
    rate-limited — when a submission names a code the cache does not know
    (an operator may just have loaded a new catalog).
*/
#ifndef INGEST_CATALOG_H_INCLUDED
#define INGEST_CATALOG_H_INCLUDED

#include "hcp_db.h"
#include "hcp_validate.h"

#include <stddef.h>

typedef struct _ingest_catalog_t ingest_catalog_t;

//  An empty catalog (every code unknown until the first load).
ingest_catalog_t *ingest_catalog_new (void);

//  Frees it and nulls the pointer. Safe on NULL.
void ingest_catalog_destroy (ingest_catalog_t **self_p);

//  Reads every item code and whether it is active from service_items and
//  replaces the cache. Returns the number of active items, or -1 when the
//  query failed (the previous cache is kept; see hcp_db_error).
int ingest_catalog_load (ingest_catalog_t *self, hcp_db_t *db);

//  The state of one code. Matches hcp_item_lookup_fn (arg is the catalog),
//  and counts the unknown codes seen, for ingest_catalog_misses.
hcp_item_state_t ingest_catalog_lookup (void *self, const char *item_code);

//  How many lookups answered unknown or inactive since the last load.
size_t ingest_catalog_misses (ingest_catalog_t *self);

#endif
