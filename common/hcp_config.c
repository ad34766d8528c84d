/*  hcp_config — see hcp_config.h. */
#include "hcp_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef enum { NODE_SCALAR, NODE_MAP, NODE_SEQ } node_kind_t;

struct _hcp_config_t {
    node_kind_t kind;
    char *key;        //  key in the parent map, or NULL
    char *path;       //  dotted path from the root ("" for the root)
    char *value;      //  scalar text
    int line;         //  1-based line in the file
    const char *file; //  owned by the root
    hcp_config_t **children;
    size_t size, capacity;
    //  Root only
    char *file_owned;
    char error[512];
};

static hcp_config_t *
s_node_new (node_kind_t kind, const char *file, int line)
{
    hcp_config_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->kind = kind;
    self->file = file;
    self->line = line;
    return self;
}

static void
s_node_free (hcp_config_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        s_node_free (self->children[i]);
    free (self->children);
    free (self->key);
    free (self->path);
    free (self->value);
    free (self->file_owned);
    free (self);
}

static void
s_node_add (hcp_config_t *parent, hcp_config_t *child)
{
    if (parent->size == parent->capacity) {
        parent->capacity = parent->capacity ? parent->capacity * 2 : 8;
        parent->children = realloc (parent->children,
                                    parent->capacity * sizeof *parent->children);
        if (!parent->children)
            abort ();
    }
    parent->children[parent->size++] = child;
}

static char *
s_join (const char *path, const char *key)
{
    char *joined;
    if (asprintf (&joined, "%s%s%s", path, *path ? "." : "", key) < 0)
        abort ();
    return joined;
}

static char *
s_error (const char *file, const yaml_mark_t *mark, const char *what)
{
    char *error;
    if (asprintf (&error, "%s:%zu:%zu: %s", file, mark->line + 1, mark->column + 1, what) < 0)
        abort ();
    return error;
}

//  Parses the node that starts with event first (already taken from the
//  parser). Returns the node, or NULL with *error set.
static hcp_config_t *
s_parse_node (yaml_parser_t *parser, yaml_event_t *first, const char *file, const char *path,
              char **error)
{
    int line = (int) first->start_mark.line + 1;
    if (first->type == YAML_SCALAR_EVENT) {
        hcp_config_t *node = s_node_new (NODE_SCALAR, file, line);
        node->value = strndup ((const char *) first->data.scalar.value,
                               first->data.scalar.length);
        node->path = strdup (path);
        return node;
    }
    if (first->type == YAML_ALIAS_EVENT) {
        *error = s_error (file, &first->start_mark, "YAML aliases are not supported here");
        return NULL;
    }
    int is_map = first->type == YAML_MAPPING_START_EVENT;
    if (!is_map && first->type != YAML_SEQUENCE_START_EVENT) {
        *error = s_error (file, &first->start_mark, "unexpected YAML event");
        return NULL;
    }
    hcp_config_t *node = s_node_new (is_map ? NODE_MAP : NODE_SEQ, file, line);
    node->path = strdup (path);
    while (1) {
        yaml_event_t event;
        if (!yaml_parser_parse (parser, &event)) {
            *error = s_error (file, &parser->problem_mark,
                              parser->problem ? parser->problem : "YAML syntax error");
            s_node_free (node);
            return NULL;
        }
        if (event.type == YAML_MAPPING_END_EVENT || event.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete (&event);
            return node;
        }
        char *key = NULL;
        if (is_map) {
            if (event.type != YAML_SCALAR_EVENT) {
                *error = s_error (file, &event.start_mark, "a map key must be a plain scalar");
                yaml_event_delete (&event);
                s_node_free (node);
                return NULL;
            }
            key = strndup ((const char *) event.data.scalar.value, event.data.scalar.length);
            for (size_t i = 0; i < node->size; i++)
                if (strcmp (node->children[i]->key, key) == 0) {
                    char what[300];
                    snprintf (what, sizeof what, "%.200s: duplicate key (first at line %d)",
                              key, node->children[i]->line);
                    *error = s_error (file, &event.start_mark, what);
                    free (key);
                    yaml_event_delete (&event);
                    s_node_free (node);
                    return NULL;
                }
            yaml_event_delete (&event);
            if (!yaml_parser_parse (parser, &event)) {
                *error = s_error (file, &parser->problem_mark,
                                  parser->problem ? parser->problem : "YAML syntax error");
                free (key);
                s_node_free (node);
                return NULL;
            }
        }
        char index[32];
        snprintf (index, sizeof index, "%zu", node->size);
        char *child_path = s_join (path, key ? key : index);
        hcp_config_t *child = s_parse_node (parser, &event, file, child_path, error);
        free (child_path);
        yaml_event_delete (&event);
        if (!child) {
            free (key);
            s_node_free (node);
            return NULL;
        }
        child->key = key;
        s_node_add (node, child);
    }
}

hcp_config_t *
hcp_config_parse (const char *text, const char *name, char **error)
{
    char *local_error = NULL;
    if (!error)
        error = &local_error;
    *error = NULL;
    hcp_config_t *root = NULL;
    char *file = strdup (name ? name : "<config>");
    yaml_parser_t parser;
    yaml_parser_initialize (&parser);
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, strlen (text));
    yaml_event_t event;
    int done = 0;
    while (!done && !*error) {
        if (!yaml_parser_parse (&parser, &event)) {
            *error = s_error (file, &parser.problem_mark,
                              parser.problem ? parser.problem : "YAML syntax error");
            break;
        }
        switch (event.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            if (root) {
                *error = s_error (file, &event.start_mark,
                                  "only one YAML document is allowed");
                break;
            }
            root = s_parse_node (&parser, &event, file, "", error);
            if (root && root->kind != NODE_MAP) {
                *error = s_error (file, &event.start_mark, "the top level must be a map");
            }
        }
        yaml_event_delete (&event);
    }
    yaml_parser_delete (&parser);
    if (*error) {
        s_node_free (root);
        free (file);
        free (local_error);
        return NULL;
    }
    if (!root) {
        root = s_node_new (NODE_MAP, file, 1);
        root->path = strdup ("");
    }
    root->file_owned = file;
    //  Children point at the root's copy of the file name.
    return root;
}

hcp_config_t *
hcp_config_load (const char *path, char **error)
{
    if (error)
        *error = NULL;
    if (!path) {
        hcp_config_t *root = s_node_new (NODE_MAP, NULL, 0);
        root->file_owned = strdup ("<defaults>");
        root->file = root->file_owned;
        root->path = strdup ("");
        return root;
    }
    FILE *file = fopen (path, "rb");
    if (!file) {
        if (error && asprintf (error, "%s: cannot open: %s", path, strerror (errno)) < 0)
            abort ();
        return NULL;
    }
    size_t size = 0, capacity = 4096;
    char *text = malloc (capacity);
    size_t got;
    while (text && (got = fread (text + size, 1, capacity - size - 1, file)) > 0) {
        size += got;
        if (size + 1 == capacity)
            text = realloc (text, capacity *= 2);
    }
    fclose (file);
    if (!text)
        abort ();
    text[size] = 0;
    hcp_config_t *root = hcp_config_parse (text, path, error);
    free (text);
    return root;
}

void
hcp_config_destroy (hcp_config_t **self_p)
{
    if (self_p && *self_p) {
        s_node_free (*self_p);
        *self_p = NULL;
    }
}

hcp_config_t *
hcp_config_at (hcp_config_t *self, const char *path)
{
    hcp_config_t *node = self;
    const char *start = path;
    while (node && *start) {
        const char *dot = strchr (start, '.');
        size_t len = dot ? (size_t) (dot - start) : strlen (start);
        hcp_config_t *next = NULL;
        if (node->kind == NODE_MAP) {
            for (size_t i = 0; i < node->size; i++)
                if (strlen (node->children[i]->key) == len
                    && strncmp (node->children[i]->key, start, len) == 0)
                    next = node->children[i];
        }
        node = next;
        start = dot ? dot + 1 : start + len;
    }
    return node;
}

bool
hcp_config_is_map (const hcp_config_t *node)
{
    return node && node->kind == NODE_MAP;
}

bool
hcp_config_is_seq (const hcp_config_t *node)
{
    return node && node->kind == NODE_SEQ;
}

const char *
hcp_config_value (const hcp_config_t *node)
{
    return node && node->kind == NODE_SCALAR ? node->value : NULL;
}

const char *
hcp_config_key (const hcp_config_t *node)
{
    return node ? node->key : NULL;
}

size_t
hcp_config_size (const hcp_config_t *node)
{
    return node && node->kind != NODE_SCALAR ? node->size : 0;
}

hcp_config_t *
hcp_config_child (const hcp_config_t *node, size_t index)
{
    return node && index < hcp_config_size (node) ? node->children[index] : NULL;
}

int
hcp_config_line (const hcp_config_t *node)
{
    return node ? node->line : 0;
}

const char *
hcp_config_file (const hcp_config_t *node)
{
    return node && node->file ? node->file : "<config>";
}

const char *
hcp_config_error (hcp_config_t *self)
{
    return self->error;
}

void
hcp_config_fail (hcp_config_t *self, const hcp_config_t *node, const char *fmt, ...)
{
    char what[400];
    va_list args;
    va_start (args, fmt);
    vsnprintf (what, sizeof what, fmt, args);
    va_end (args);
    if (node)
        snprintf (self->error, sizeof self->error, "%s:%d: %s: %s", hcp_config_file (node),
                  node->line, *node->path ? node->path : "(top)", what);
    else
        snprintf (self->error, sizeof self->error, "%s", what);
}

//  The environment variable that overrides path: HCP_ + upper-cased path
//  with dots (and dashes) as underscores.
static void
s_env_name (const char *path, char *name, size_t size)
{
    size_t len = (size_t) snprintf (name, size, "HCP_");
    for (const char *p = path; *p && len + 1 < size; p++)
        name[len++] = (*p == '.' || *p == '-') ? '_' : (char) toupper ((unsigned char) *p);
    name[len] = 0;
}

//  Finds the text for path: environment, then tree. *where gets a
//  description of the source for messages.
static const char *
s_lookup (hcp_config_t *self, const char *path, char *where, size_t where_size, int *bad)
{
    char env[200];
    s_env_name (path, env, sizeof env);
    *bad = 0;
    const char *value = getenv (env);
    if (value) {
        snprintf (where, where_size, "environment %s: %s", env, path);
        return value;
    }
    hcp_config_t *node = hcp_config_at (self, path);
    if (!node)
        return NULL;
    snprintf (where, where_size, "%s:%d: %s", hcp_config_file (node), node->line, path);
    if (node->kind != NODE_SCALAR) {
        *bad = 1;
        return NULL;
    }
    return node->value;
}

int
hcp_config_str (hcp_config_t *self, const char *path, const char *deflt, const char **out)
{
    char where[300];
    int bad;
    const char *value = s_lookup (self, path, where, sizeof where, &bad);
    *out = value ? value : deflt;
    if (bad) {
        snprintf (self->error, sizeof self->error,
                  "%s: expected a text value, not a map or list", where);
        return -1;
    }
    return 0;
}

int
hcp_config_int (hcp_config_t *self, const char *path, long long deflt, long long min,
                long long max, long long *out)
{
    char where[300];
    int bad;
    const char *value = s_lookup (self, path, where, sizeof where, &bad);
    *out = deflt;
    if (!value && !bad)
        return 0;
    char *end = NULL;
    errno = 0;
    long long number = value ? strtoll (value, &end, 10) : 0;
    if (bad || !value || end == value || *end || errno || number < min || number > max) {
        snprintf (self->error, sizeof self->error,
                  "%s: expected a whole number from %lld to %lld, got '%.60s'", where, min,
                  max, value ? value : "(map or list)");
        return -1;
    }
    *out = number;
    return 0;
}

int
hcp_config_bool (hcp_config_t *self, const char *path, bool deflt, bool *out)
{
    char where[300];
    int bad;
    const char *value = s_lookup (self, path, where, sizeof where, &bad);
    *out = deflt;
    if (!value && !bad)
        return 0;
    if (value
        && (!strcmp (value, "true") || !strcmp (value, "yes") || !strcmp (value, "on")
            || !strcmp (value, "1"))) {
        *out = true;
        return 0;
    }
    if (value
        && (!strcmp (value, "false") || !strcmp (value, "no") || !strcmp (value, "off")
            || !strcmp (value, "0"))) {
        *out = false;
        return 0;
    }
    snprintf (self->error, sizeof self->error, "%s: expected true or false, got '%.60s'",
              where, value ? value : "(map or list)");
    return -1;
}
