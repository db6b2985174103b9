/*
 * Private declarations of rules/: the compiled form of monitors, pagers and
 * inhibit rules, the tables that define the language (match keys, watched
 * fields, template paths) and the helpers shared by loading, templates,
 * time zones and evaluation. The language grows by adding rows to those
 * tables, not by new branches.
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

#define RULES_N_FIELDS 3 /* enum vg_field: status, runtime, health */
#define RULES_N_SEVERITIES 5
/* Inhibition by an incident on another Resource is re-checked this often. */
#define RULES_INHIBIT_RECHECK_MS 15000
#define RULES_DEFAULT_GROUP_WAIT_MS 30000
#define RULES_DEFAULT_GROUP_LIMIT 100 /* incidents a grouped page lists */
#define RULES_MAX_GROUP_LIMIT 10000
/* Flapping remembers at most this many hits per incident. */
#define RULES_MAX_HITS 64

/* Where something was written, for messages. `file` is owned by the holder. */
struct rules_loc {
    char *file;
    size_t line, col;
};

/*
 * What match keys look at: the Resource, and for pagers, silences and
 * inhibit rules the incident (monitor, severity, type, labels).
 */
struct rules_subject {
    const struct vg_resource *res;
    const char *resource_id; /* overrides res->id when res is NULL (records) */
    const char *type, *workspace, *name, *owner, *version; /* used when res is NULL */
    const char *monitor;                                   /* NULL for monitor matches */
    const char *severity;                                  /* NULL for monitor matches */
    const char *incident_type;                             /* NULL for monitor matches */
    const struct vg_label *labels; /* incident labels; monitor matches: the Resource's */
    size_t n_labels;
};

enum {
    RULES_SCOPE_MONITOR = 1 << 0,
    RULES_SCOPE_PAGER = 1 << 1, /* also silences, inhibit rules, group_by */
};

/* One row of the match-key table (in rules_load.c). */
struct rules_match_key {
    const char *name; /* "labels" for labels.<key> */
    unsigned scopes;
    /* never NULL; `label` is the key after "labels." */
    const char *(*get)(const struct rules_subject *s, const char *label);
    const char *const *values; /* NULL: free-form; else the valid non-glob values */
};
const struct rules_match_key *rules_find_match_key(const char *name, const char **label);
/* The value of `key` (a match-key table row) for `s`. */
const char *rules_subject_get(const struct rules_subject *s, const struct rules_match_key *key,
                              const char *label);

/* `key: pattern` or `key: [patterns]`: any pattern matches (glob or exact); `negate`: none may. */
struct rules_match_term {
    const struct rules_match_key *key;
    char *label; /* labels.<label>; NULL otherwise */
    bool negate;
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

/* `from:`, `to:` or `is:`. Not given, or "*" among the values: any value. */
struct rules_valueset {
    bool given;
    bool any;
    char **values;
    size_t n;
};

enum rules_kind {
    RULES_TRANSITION = 0, /* {field: {from, to}} */
    RULES_HELD,           /* {field: {is, for}} */
    RULES_FLAPPING,       /* {field: {to, count, within}} */
    RULES_ABSENCE,        /* {silent_for} */
};

struct rules_cond {
    enum rules_kind kind;
    const struct rules_field *field; /* NULL for absence */
    struct rules_valueset from;
    struct rules_valueset to;
    struct rules_valueset is;
    int64_t for_ms;
    int count;
    int64_t within_ms;
    int64_t silent_ms;
};

/* Template context. */
struct rules_tpl_ctx {
    const char *monitor;
    const char *severity;
    const char *incident_id;
    const char *incident_type;
    const char *state; /* firing, resolved, stale, deleted, pending */
    const struct vg_resource *res;
    const struct vg_transition *t;
    int64_t duration_ms;
    const struct vg_label *labels; /* incident labels (in label templates: the Resource's) */
    size_t n_labels;
};

struct rules_tpl_path {
    const char *name; /* "labels." rows match any labels.<key> */
    /* The value, possibly written into `scratch` (64 bytes); "" or NULL when unknown. */
    const char *(*get)(const struct rules_tpl_ctx *c, const char *arg, char *scratch,
                       size_t scratch_size);
};

struct rules_tpl_part {
    const struct rules_tpl_path *path; /* NULL: literal */
    char *arg;                         /* labels.<arg> */
    char *text;                        /* literal text, or the default value (NULL: none) */
};

struct rules_tpl {
    struct rules_tpl_part *parts;
    size_t n;
    size_t cap;
};

struct rules_label_tpl {
    char *key;
    struct rules_tpl value;
};

struct rules_monitor {
    char *name;
    struct rules_loc loc; /* of the name */
    size_t index;         /* load order */
    struct rules_match match;
    struct rules_cond cond;
    const char *severity; /* static, from the severity table */
    int rank;             /* 0 info .. 4 critical */
    char *incident_type;  /* "" when none */
    struct rules_label_tpl *labels;
    size_t n_labels;
    struct rules_tpl summary;
    struct rules_tpl description;
    bool has_description;
    int64_t resolve_after_ms;
    bool resolve_never;
    int64_t stale_after_ms;
};

struct rules_sink_ref {
    char *name;
    size_t line, col;
};

/* A time zone: UTC offsets from a TZif file (rules_tz.c). */
struct rules_tz;

/* One `mute:` entry: all given parts must hold. */
struct rules_mute {
    unsigned days; /* bit 0 = Sunday .. 6 = Saturday; 0: any day */
    bool has_between;
    int from_min, to_min;      /* minutes of the local day; from > to wraps midnight */
    const struct rules_tz *tz; /* owned by the ruleset; NULL: UTC */
};

/* A `group_by` or `equal` key. */
struct rules_key_ref {
    const struct rules_match_key *key;
    char *label;
};

struct rules_pager {
    char *name;
    struct rules_loc loc; /* of the name; loc.file is also the file of the sink refs */
    struct rules_match match;
    struct rules_sink_ref *sinks;
    size_t n_sinks;
    bool cont;
    bool grouped;
    struct rules_key_ref *group_by;
    size_t n_group_by;
    int64_t group_wait_ms;
    size_t group_limit; /* grouped: incidents a grouped page lists at most */
    int64_t repeat_ms;  /* 0: never */
    bool send_resolved;
    struct rules_mute *mute;
    size_t n_mute;
    struct rules_sink_ref fallback; /* name NULL: none (used by the sink fallback) */
};

struct rules_inhibit {
    struct rules_loc loc;
    struct rules_match source;
    struct rules_match target;
    struct rules_key_ref *equal;
    size_t n_equal;
    bool same_resource; /* equal names `resource`: only incidents on the same Resource */
};

/* A list of monitors in load order. */
struct rules_mlist {
    struct rules_monitor **v;
    size_t n;
    size_t cap;
};

struct vg_ruleset {
    struct rules_monitor **monitors; /* load order */
    size_t n_monitors, cap_monitors;
    struct rules_pager **pagers; /* load order: routing order */
    size_t n_pagers, cap_pagers;
    struct rules_inhibit **inhibits;
    size_t n_inhibits, cap_inhibits;
    struct vg_map *monitor_names; /* name -> struct rules_monitor * */
    struct vg_map *pager_names;   /* name -> struct rules_pager * */
    struct vg_map *tzs;           /* name -> struct rules_tz * (owned) */
    struct rules_index *idx;      /* which monitors an event can concern (docs/rules.md, "Scale") */
    bool cross_inhibit;
    /* `vigil check`: collect every error here instead of stopping (NULL: stop). */
    struct vg_rules_diags *diags;
};

/* ---- The monitor index: built at load (rules_load.c), read by evaluation ---- */

/* The buckets of one match key: exact value -> struct rules_mlist * (load order). */
struct rules_ikey {
    const struct rules_match_key *key;
    char *label; /* labels.<label>; NULL otherwise */
    struct vg_map *buckets;
};

/*
 * Each monitor is filed once: under the exact values of one positive match
 * term (a Resource must have one of them for the match to hold), or, when
 * it has no such term (only globs, only `not:`, no match), in `always`. An
 * event's candidates are the buckets of its Resource's values plus
 * `always`, merged in load order: a superset of the monitors whose match
 * holds. Among terms, the one whose values are shared by the fewest
 * monitors is chosen.
 */
struct rules_index {
    struct rules_ikey *keys;
    size_t n_keys, cap_keys;
    struct rules_mlist always;
    /* by monitor index: its one positive exact `type` term, or NULL (gates transitions) */
    const struct rules_match_term **types;
    bool linear; /* look at every monitor instead (tests compare the two) */
};
/* (Re)build rs->idx over all loaded monitors. */
void rules_index_build(struct vg_ruleset *rs);
void rules_index_destroy(struct rules_index *ix);
/* Evaluate against every monitor, ignoring the index (for tests); kept across loads. */
void rules_index_set_linear(struct vg_ruleset *rs, bool linear);

/* rules_load.c: parse one document into `rs` (all of it or, on error, none of it). */
vg_err_t rules_load_doc(struct vg_ruleset *rs, const struct vg_ydoc *doc, char *errstr,
                        size_t errstr_size);
void rules_monitor_destroy(struct rules_monitor *m);
void rules_pager_destroy(struct rules_pager *p);
void rules_inhibit_destroy(struct rules_inhibit *ih);
bool rules_match_holds(const struct rules_match *m, const struct rules_subject *s);
bool rules_valueset_has(const struct rules_valueset *vs, const char *v);
extern const char *const rules_severities[];

/* rules_template.c */
vg_err_t rules_tpl_compile(struct rules_tpl *tpl, const struct vg_ynode *node, const char *src,
                           char *errstr, size_t errstr_size);
char *rules_tpl_render(const struct rules_tpl *tpl, const struct rules_tpl_ctx *c);
void rules_tpl_fini(struct rules_tpl *tpl);
/* "1h30m", "45s", "0s" into out (32 bytes). */
void rules_format_duration(int64_t ms, char *out, size_t out_size);

/* rules_tz.c: load /usr/share/zoneinfo/<name> (or $TZDIR); NULL + errstr when unknown. */
struct rules_tz *rules_tz_load(const char *name, char *errstr, size_t errstr_size);
void rules_tz_destroy(struct rules_tz *tz);
/* UTC offset in seconds at `utc_s` (NULL tz: 0). Pure. */
int32_t rules_tz_offset(const struct rules_tz *tz, int64_t utc_s);
/* Local weekday (0 Sunday) and minute of the day at `utc_ms`. */
void rules_local_time(const struct rules_tz *tz, int64_t utc_ms, int *wday, int *minute);
/* Parse a POSIX TZ string (the TZif footer), for tests. NULL when malformed. */
struct rules_tz *rules_tz_from_posix(const char *spec);

/* rules_mute (rules_eval.c): muted at now? *until_ms gets the end of the mute. */
bool rules_pager_muted(const struct rules_pager *p, int64_t now_ms, int64_t *until_ms);

/* rules.c: the closest of `names[0..n)` within 2 edits (for "did you mean"), or NULL. */
const char *rules_closest(const char *word, const char *const *names, size_t n);
/* Record a load error for `vigil check` (rs->diags) from "file:line:col: message". */
void rules_diag(struct vg_ruleset *rs, const char *errstr);

#endif
