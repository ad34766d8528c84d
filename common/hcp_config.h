/*  hcp_config — YAML configuration (libyaml) with line numbers and
    environment overrides.

    A loaded file is a tree of nodes: maps, sequences and scalars, each
    remembering the file and line it came from, so that every error can say
    "hcp.yaml:12: ingest.batch_max: expected an integer from 1 to 100000".

    Typed getters take a dotted path ("ingest.batch_max"). For deployment,
    an environment variable overrides any scalar: the path upper-cased with
    dots as underscores, prefixed HCP_ (HCP_INGEST_BATCH_MAX). A missing key
    gives the default: defaults must work out of the box.

    The same tree serves the data files (service catalog, calendar).
*/
#ifndef HCP_CONFIG_H_INCLUDED
#define HCP_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _hcp_config_t hcp_config_t;

//  Loads a YAML file. path may be NULL: an empty configuration (all
//  defaults). On failure returns NULL and, if error is not NULL, sets
//  *error to a malloc'd "file:line:column: what" message for the caller
//  to free.
hcp_config_t *hcp_config_load (const char *path, char **error);

//  Parses YAML text; name is used in messages in place of a file name.
hcp_config_t *hcp_config_parse (const char *text, const char *name, char **error);

//  Frees a tree returned by load/parse and nulls the pointer. Safe on NULL.
void hcp_config_destroy (hcp_config_t **self_p);

//  The node at a dotted path under self (which must be a map), or NULL.
//  Nodes are owned by the tree.
hcp_config_t *hcp_config_at (hcp_config_t *self, const char *path);

//  Node accessors. value: the scalar text (NULL for maps and sequences);
//  key: this node's key in its parent map (NULL otherwise); size and child:
//  entries of a map or sequence, in file order.
bool hcp_config_is_map (const hcp_config_t *node);
bool hcp_config_is_seq (const hcp_config_t *node);
const char *hcp_config_value (const hcp_config_t *node);
const char *hcp_config_key (const hcp_config_t *node);
size_t hcp_config_size (const hcp_config_t *node);
hcp_config_t *hcp_config_child (const hcp_config_t *node, size_t index);
int hcp_config_line (const hcp_config_t *node);
const char *hcp_config_file (const hcp_config_t *node);

//  Typed getters, environment first, then the tree, then the default.
//  A present value of the wrong type or out of range is an error: they
//  return -1 and hcp_config_error (self) tells file, line, key and why
//  (the value in *out is then the default). Otherwise 0.
int hcp_config_str (hcp_config_t *self, const char *path, const char *deflt, const char **out);
int hcp_config_int (hcp_config_t *self, const char *path, long long deflt, long long min,
                    long long max, long long *out);
int hcp_config_bool (hcp_config_t *self, const char *path, bool deflt, bool *out);

//  The last getter error, or "" when there was none. Owned by self.
const char *hcp_config_error (hcp_config_t *self);

//  Sets the error text of self (printf-style), for callers that validate
//  a node themselves and want the same "file:line: key: why" shape.
void hcp_config_fail (hcp_config_t *self, const hcp_config_t *node, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
