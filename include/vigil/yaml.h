/*
 * A small YAML document tree with source positions, built with libyaml
 * by core/yaml.c, so config and rules can report `file:line:col: message`.
 * Hazards handled at load: size limit, duplicate keys, aliases (rejected),
 * multiple documents, and optional ${ENV} substitution in scalars.
 */
#ifndef VIGIL_YAML_H
#define VIGIL_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"

#define VG_YAML_MAX_BYTES (4 * 1024 * 1024)
#define VG_YAML_MAX_DEPTH 64

enum vg_ynode_kind { VG_YNODE_SCALAR, VG_YNODE_MAP, VG_YNODE_SEQ, VG_YNODE_NULL };

struct vg_ynode;

struct vg_ypair {
    char *key;
    size_t line, col; /* of the key, 1-based */
    struct vg_ynode *value;
};

struct vg_ynode {
    enum vg_ynode_kind kind;
    size_t line, col;        /* 1-based */
    const char *file;        /* borrowed from the document */
    char *str;               /* SCALAR: the value after ${ENV} substitution */
    bool quoted;             /* SCALAR: was quoted in the source */
    struct vg_ypair *pairs;  /* MAP, in source order */
    struct vg_ynode **items; /* SEQ */
    size_t n;                /* pairs or items */
};

struct vg_ydoc {
    char *file;
    struct vg_ynode *root; /* NULL for an empty document */
};

enum {
    VG_YAML_ENV = 1 << 0, /* substitute ${NAME} in scalars; unset NAME is an error */
};

/* Load a file. On error fills errstr as "file:line:col: message". */
vg_err_t vg_yaml_load_file(struct vg_ydoc *doc, const char *path, int flags, char *errstr,
                           size_t errstr_size);
/* Load from memory; `name` is used as the file name in messages. */
vg_err_t vg_yaml_load_string(struct vg_ydoc *doc, const char *name, const char *buf, size_t len,
                             int flags, char *errstr, size_t errstr_size);
void vg_ydoc_fini(struct vg_ydoc *doc);

/*
 * Building a tree by hand (config overrides from the environment): a new
 * node of `kind` (SCALAR: a copy of `str`) at file:line:col, `file`
 * borrowed (line 0: messages name the file alone); vg_ynode_set puts
 * `value` (owned from now on) under `key` of MAP `map`, freeing the old one.
 */
struct vg_ynode *vg_ynode_new(enum vg_ynode_kind kind, const char *file, size_t line,
                              const char *str);
void vg_ynode_set(struct vg_ynode *map, const char *key, struct vg_ynode *value);
void vg_ynode_free(struct vg_ynode *n);

/* MAP lookup; NULL when absent or `map` is not a MAP. */
struct vg_ynode *vg_ynode_get(const struct vg_ynode *map, const char *key);
const char *vg_ynode_kind_name(enum vg_ynode_kind k); /* "scalar", "mapping", ... */

/* snprintf "file:line:col: <fmt>" for `node` into errstr. Returns VG_ERR_INVALID. */
vg_err_t vg_ynode_error(const struct vg_ynode *node, char *errstr, size_t errstr_size,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same, at a key's position. */
vg_err_t vg_ypair_error(const struct vg_ynode *map, const struct vg_ypair *pair, char *errstr,
                        size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Check that every key of `map` is in `allowed` (NULL-terminated). On an
 * unknown key: `file:line:col: unknown key "sevrity" (did you mean "severity"?)`.
 */
vg_err_t vg_ynode_check_keys(const struct vg_ynode *map, const char *const *allowed, char *errstr,
                             size_t errstr_size);

/*
 * The entry of `known` (NULL-terminated) closest to `word` within two
 * edits, for "did you mean"; NULL when none is that close.
 */
const char *vg_yaml_suggest(const char *word, const char *const *known);

/* Typed getters: on a type mismatch, fill errstr with position and return VG_ERR_INVALID. */
vg_err_t vg_ynode_string(const struct vg_ynode *n, const char **out, char *errstr,
                         size_t errstr_size);
vg_err_t vg_ynode_int(const struct vg_ynode *n, int64_t min, int64_t max, int64_t *out,
                      char *errstr, size_t errstr_size);
vg_err_t vg_ynode_bool(const struct vg_ynode *n, bool *out, char *errstr, size_t errstr_size);
vg_err_t vg_ynode_duration(const struct vg_ynode *n, int64_t *out_ms, char *errstr,
                           size_t errstr_size);
/* A scalar or a sequence of scalars -> a new NULL-terminated heap array of heap strings. */
vg_err_t vg_ynode_strings(const struct vg_ynode *n, char ***out, size_t *n_out, char *errstr,
                          size_t errstr_size);
void vg_strv_free(char **v);

#endif
