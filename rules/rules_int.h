/*
 * Private declarations of rules/: the compiled form of monitors and
 * pagers, the tables that define the language (match keys, watched fields,
 * template paths) and the helpers shared by loading, templates and eval.
 * The language grows by adding rows to those tables, not by new branches.
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

#define RULES_N_FIELDS 3 /* enum vg_field: status, runtime, health */

/* Where something was written, for messages. `file` is owned by the holder. */
struct rules_loc {
    char *file;
    size_t line, col;
};

/* What match keys look at: the Resource, and for pagers the incident. */
struct rules_subject {
    const struct vg_resource *res;
    const char *monitor;  /* NULL for monitor matches */
    const char *severity; /* NULL for monitor matches */
};

enum {
    RULES_SCOPE_MONITOR = 1 << 0,
    RULES_SCOPE_PAGER = 1 << 1,
};

/* One row of the match-key table (in rules_load.c). */
struct rules_match_key {
    const char *name;
    unsigned scopes;
    const char *(*get)(const struct rules_subject *s); /* never NULL result */
    const char *const *values; /* NULL: free-form; else the valid non-glob values */
};

/* `key: pattern` or `key: [patterns]`: any pattern matches (glob or exact). */
struct rules_match_term {
    const struct rules_match_key *key;
    char **patterns;
    size_t n;
};

/* All terms must hold; no terms: always holds. */
struct rules_match {
    struct rules_match_term *terms;
    size_t n;
    size_t cap;
};

/* One row of the watched-field table: `when: {<name>: ...}`. */
struct rules_field {
    const char *name;
    enum vg_field field;
    const char *const *values; /* NULL-terminated valid values */
};

/* `from:` or `to:`. Not given, or "*" among the values: any value. */
struct rules_valueset {
    bool given;
    bool any;
    char **values;
    size_t n;
};

struct rules_cond {
    const struct rules_field *field;
    struct rules_valueset from;
    struct rules_valueset to;
};

/* Template: literal text and {{ path | default "x" }} parts. */
struct rules_tpl_ctx {
    const char *monitor;
    const char *severity;
    const char *incident_id;
    const struct vg_resource *res;
    const struct vg_transition *t;
};

struct rules_tpl_path {
    const char *name;
    /* The value, possibly written into `scratch` (64 bytes); "" when unknown. */
    const char *(*get)(const struct rules_tpl_ctx *c, char *scratch, size_t scratch_size);
};

struct rules_tpl_part {
    const struct rules_tpl_path *path; /* NULL: literal */
    char *text;                        /* literal text, or the default value (NULL: none) */
};

struct rules_tpl {
    struct rules_tpl_part *parts;
    size_t n;
    size_t cap;
};

struct rules_monitor {
    char *name;
    struct rules_loc loc; /* of the name */
    struct rules_match match;
    struct rules_cond cond;
    const char *severity; /* static, from the severity table */
    struct rules_tpl summary;
    struct rules_tpl description;
    bool has_description;
};

struct rules_sink_ref {
    char *name;
    size_t line, col;
};

struct rules_pager {
    char *name;
    struct rules_loc loc; /* of the name; loc.file is also the file of the sink refs */
    struct rules_match match;
    struct rules_sink_ref *sinks;
    size_t n_sinks;
    bool cont;
};

struct vg_ruleset {
    struct rules_monitor **monitors; /* load order */
    size_t n_monitors, cap_monitors;
    struct rules_pager **pagers; /* load order: routing order */
    size_t n_pagers, cap_pagers;
    struct vg_map *monitor_names; /* name -> struct rules_monitor * */
    struct vg_map *pager_names;   /* name -> struct rules_pager * */
    /* Monitors by watched field, load order: a transition only looks at its own field. */
    struct rules_monitor **by_field[RULES_N_FIELDS];
    size_t n_by_field[RULES_N_FIELDS], cap_by_field[RULES_N_FIELDS];
};

/* rules_load.c: parse one document into `rs` (all of it or, on error, none of it). */
vg_err_t rules_load_doc(struct vg_ruleset *rs, const struct vg_ydoc *doc, char *errstr,
                        size_t errstr_size);
void rules_monitor_destroy(struct rules_monitor *m);
void rules_pager_destroy(struct rules_pager *p);
bool rules_match_holds(const struct rules_match *m, const struct rules_subject *s);
bool rules_valueset_has(const struct rules_valueset *vs, const char *v);

/* rules_template.c */
vg_err_t rules_tpl_compile(struct rules_tpl *tpl, const struct vg_ynode *node, const char *src,
                           char *errstr, size_t errstr_size);
char *rules_tpl_render(const struct rules_tpl *tpl, const struct rules_tpl_ctx *c);
void rules_tpl_fini(struct rules_tpl *tpl);

/* rules.c: the closest of `names[0..n)` within 2 edits (for "did you mean"), or NULL. */
const char *rules_closest(const char *word, const char *const *names, size_t n);

#endif
