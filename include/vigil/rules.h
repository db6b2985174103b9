/*
 * Rules (libyaml lives here and in core/config.c): monitors say what is
 * wrong, pagers say who is told. Loading reports `file:line:col: message`;
 * evaluation is pure (no I/O, no clock): it opens and closes incidents
 * inside the Resource's state and emits pages. docs/rules.md.
 */
#ifndef VIGIL_RULES_H
#define VIGIL_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/err.h"
#include "vigil/event.h"
#include "vigil/page.h"

struct vg_ruleset;

struct vg_ruleset *vg_ruleset_new(void);
void vg_ruleset_destroy(struct vg_ruleset *rs);

/*
 * Load monitors and pagers from each of `paths` (files, directories: every
 * *.yaml / *.yml inside, sorted; or globs) into `rs`. Stops at the first
 * error: errstr "file:line:col: message". A monitor name must be unique
 * across all files.
 */
vg_err_t vg_rules_load_paths(struct vg_ruleset *rs, char *const *paths, size_t n_paths,
                             char *errstr, size_t errstr_size);
/* Load one file. */
vg_err_t vg_rules_load_file(struct vg_ruleset *rs, const char *path, char *errstr,
                            size_t errstr_size);
/* Load from memory (`name` used in messages); for tests and fuzzing. */
vg_err_t vg_rules_load_string(struct vg_ruleset *rs, const char *name, const char *buf,
                              size_t len, char *errstr, size_t errstr_size);

/*
 * Cross-checks against the config: every pager sink in `sink_names` exists.
 * errstr names the file:line:col of the offending sink reference.
 */
vg_err_t vg_rules_check_sinks(const struct vg_ruleset *rs, char *const *sink_names,
                              size_t n_sinks, char *errstr, size_t errstr_size);

size_t vg_rules_monitor_count(const struct vg_ruleset *rs);
size_t vg_rules_pager_count(const struct vg_ruleset *rs);
/*
 * Issue 7 (GET /api/v1/rules, rules_json.c): the loaded monitors (name,
 * severity, kind, field, incident_type, file, line) and pagers (name,
 * sinks, continue, grouped, file, line) as JSON. Caller frees.
 */
char *vg_rules_describe_json(const struct vg_ruleset *rs);

/*
 * Evaluate the transitions of one Resource from one event (`trans[0..n)`,
 * all with the same `res`). For each monitor whose match and condition
 * hold and that has no open incident on `res`: open one (added to
 * res->incidents, id = fingerprint of monitor, resource id and the Kafka
 * position of the triggering event, so a replay yields the same id) and
 * emit a "firing" page per (routed pager, sink). For each open incident
 * whose condition no longer holds (the watched field left the `to`
 * values): close it and emit "resolved" pages. Appends to `out`.
 * Returns the number of pages appended. Marks `res` dirty on any change.
 */
size_t vg_rules_eval(const struct vg_ruleset *rs, struct vg_resource *res,
                     const struct vg_transition *trans, size_t n, struct vg_pages *out);

/* ---- Issue 5: conditions over time, durable timers, incidents ---------- */

/*
 * What evaluation may know besides the Resource. Evaluation stays pure:
 * the clock is passed in (the wall clock in `vigil run`, a fake one in
 * `vigil test`), and so are the silences and, for inhibit rules that
 * look across Resources, the incidents firing elsewhere.
 */
struct vg_rules_env {
    int64_t now_ms;
    const struct vg_silence *silences; /* all known; checked against now_ms */
    size_t n_silences;
    const struct vg_incident_record *firing; /* may be NULL */
    size_t n_firing;
};

/* What evaluation produces, appended to (caller-owned; clear between batches). */
struct vg_rules_out {
    struct vg_pages pages;              /* page->group set: to a group buffer */
    struct vg_timers timers;            /* in order */
    struct vg_incident_records records; /* one per changed incident (latest wins) */
};
void vg_rules_out_clear(struct vg_rules_out *o);
void vg_rules_out_fini(struct vg_rules_out *o);

/*
 * Evaluate one applied event `ev` on `res` with its transitions
 * `trans[0..n)` (n may be 0: absence and staleness watch every event).
 * Opens, updates and ends incidents inside res->incidents (marking `res`
 * dirty on any change), and appends pages, timer changes and incident
 * records to `out`. Thread: any (the ruleset is read-only).
 */
void vg_rules_eval_event(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                         struct vg_resource *res, const struct vg_event *ev,
                         const struct vg_transition *trans, size_t n, struct vg_rules_out *out);

/*
 * A timer of `res` fired (member from vg_state_timers_due): re-evaluate
 * the incidents of `res` at env->now_ms. A member this ruleset does not
 * know (a removed monitor, a stale episode) changes nothing. The caller
 * removes the fired member in the same commit, before out->timers.
 */
void vg_rules_fire(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                   struct vg_resource *res, const char *member, struct vg_rules_out *out);

/*
 * Timer members (the Redis sorted-set members): "m|<monitor>|<resource id>"
 * (the next deadline of that monitor on that Resource) and
 * "x|<monitor>|<resource id>" (a manual resolve, `vigil incidents resolve`).
 * The Resource id of a member into *id (heap), false when it is not a
 * Resource timer.
 */
bool vg_rules_timer_resource(const char *member, char **id);
/* A new member string of `kind` ('m' or 'x'). */
char *vg_rules_timer_member(char kind, const char *monitor, const char *resource_id);

/* True when an inhibit rule compares incidents across Resources (needs env->firing). */
bool vg_rules_needs_firing(const struct vg_ruleset *rs);

/*
 * A silence matcher "key=glob" (keys: monitor, resource, severity,
 * incident, type, workspace, name, owner, version, labels.<key>). False with
 * a message naming the problem (and the closest key) when unusable.
 */
bool vg_rules_matcher_valid(const char *matcher, char *errstr, size_t errstr_size);

/* ---- `vigil check`: every error, not only the first ---- */

struct vg_rules_diag {
    char *file; /* "" when unknown */
    size_t line, col; /* 0 when unknown */
    char *message; /* without the position */
};
struct vg_rules_diags {
    struct vg_rules_diag *items;
    size_t n;
    size_t cap;
};
void vg_rules_diags_fini(struct vg_rules_diags *d);

/*
 * Load every path like vg_rules_load_paths but keep going: each bad
 * monitor, pager or inhibit rule, each unloadable file, and (when
 * `sink_names` is not NULL) each unknown sink is one diagnostic. What is
 * valid is loaded into `rs`. Returns VG_OK when there is no diagnostic.
 */
vg_err_t vg_rules_check_paths(struct vg_ruleset *rs, char *const *paths, size_t n_paths,
                              char *const *sink_names, size_t n_sinks,
                              struct vg_rules_diags *out);
/* Split "file:line:col: message" into a diagnostic (appended). */
void vg_rules_diags_add_text(struct vg_rules_diags *d, const char *text);

/*
 * Issue 6: the pagers that name a `fallback` sink. *pagers and *sinks get
 * new NULL-terminated heap arrays of heap strings (pager i falls back to
 * sink i); the caller frees them. Returns the count.
 */
size_t vg_rules_fallbacks(const struct vg_ruleset *rs, char ***pagers, char ***sinks);

#endif
