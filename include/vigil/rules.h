/*
 * Rules: monitors say what is wrong, pagers say who is told. Loading
 * reports `file:line:col: message`; evaluation is pure (no I/O, no clock):
 * it opens and closes incidents inside the Resource's state and emits
 * pages. Firing due timers and flushing group buffers is decided here too,
 * once for `vigil run` and `vigil test`, over a storage interface.
 * docs/rules.md.
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
vg_err_t vg_rules_load_string(struct vg_ruleset *rs, const char *name, const char *buf, size_t len,
                              char *errstr, size_t errstr_size);

/*
 * Cross-checks against the config: every pager sink in `sink_names` exists.
 * errstr names the file:line:col of the offending sink reference.
 */
vg_err_t vg_rules_check_sinks(const struct vg_ruleset *rs, char *const *sink_names, size_t n_sinks,
                              char *errstr, size_t errstr_size);

size_t vg_rules_monitor_count(const struct vg_ruleset *rs);
size_t vg_rules_pager_count(const struct vg_ruleset *rs);
/*
 * For GET /api/v1/rules (rules_json.c): the loaded monitors (name,
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

/* ---- Conditions over time, durable timers, incidents ------------------- */

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

/* ---- Firing timers: one implementation for `vigil run` and `vigil test` ---------------- */

/*
 * When timers come due, rules_timers.c decides what happens, the same for
 * `vigil run` (storage: Redis, engine/timers.c) and for `vigil test` and
 * the unit tests (storage: memory, struct vg_rules_mem below):
 *
 *   - The Resource timers of a round fire first, in the order given: each
 *     fired member is removed, its Resource re-evaluated by vg_rules_fire
 *     at env->now_ms (a Resource that is gone just loses the timer), and
 *     the removals, the changed Resources, pages, incident records and new
 *     timers are committed at once.
 *   - Then each due group buffer is flushed in its own commit: one grouped
 *     page (vg_page_group_build of the latest notification of each
 *     incident in it, at most the pager's group_limit of them listed, the
 *     rest counted) to the buffer's sink, the buffer and its timer gone.
 *     An empty buffer only loses its timer.
 *
 * The first error stops the round; what was not committed stays due.
 */

struct vg_map;

/* One due timer as the storage lists it: topic NULL for a group buffer's timer. */
struct vg_rules_due {
    const char *topic;
    int32_t partition;
    const char *member; /* "m|..." / "x|..." (vg_rules_timer_member), or "<pager>|<sink>|<group>" */
};

/*
 * A group buffer as stored: the latest single-form body (vg_page_to_json)
 * of each incident, or only the first `limit` of them by
 * vg_page_group_rank (a store that reads a bounded part of the buffer),
 * plus the counts of all of them.
 */
struct vg_rules_group {
    const char *pager;
    const char *sink;              /* NULL or "": not a buffer vigil wrote (flushed as empty) */
    const struct vg_label *labels; /* the group's labels, in group_by order */
    size_t n_labels;
    const char *const *bodies;
    size_t n_bodies;
    size_t n_firing; /* incidents of the buffer whose latest page is firing (0, 0: count bodies) */
    size_t n_ended;  /* ... and ended (resolved, stale, deleted) */
};

/* What flushing a group buffer sends: one outbox entry, or nothing when body is NULL. */
struct vg_rules_grouped {
    char id[24];       /* "<fingerprint of member and bodies>-g": the same buffer, the same id */
    const char *pager; /* the group's */
    const char *sink;
    char *body;         /* the grouped body; owned by vg_rules_timers_fire, valid during the call */
    size_t n_incidents; /* incidents in the buffer, listed or not (also when body is NULL) */
    size_t n_listed;    /* incidents the body lists: at most the pager's group_limit */
};

/* The effects of one round of Resource timers, committed at once. */
struct vg_rules_fired {
    struct vg_resource *const *res; /* the Resources that changed: written whole, marked clean */
    size_t n_res;
    /*
     * Pages (grouped ones to their buffer), incident records, then the
     * timer changes in order: the fired members' removals come first.
     */
    const struct vg_rules_out *out;
};

/*
 * How timer firing reaches storage. Every function returns VG_OK or an
 * error with errstr (VG_ERR_BACKEND and VG_ERR_TIMEOUT: retried later).
 *   load_resources: the Resources with ids[0..n) into res[i] (NULL: gone),
 *     owned by the storage and valid until commit returns.
 *   commit: write `fx` atomically (nothing of it on error).
 *   load_group: the group buffer named `member` into *g (zeroed: none),
 *     valid until commit_group; each successful load_group is followed by
 *     one commit_group of the same member. Only `limit` bodies are needed
 *     (the highest by vg_page_group_rank); a store may return them all.
 *   commit_group: send gp->body (when not NULL) to gp->sink, delete the
 *     buffer and its timer, at once, and only if the buffer did not change
 *     since load_group (otherwise nothing: a later round flushes it).
 */
struct vg_rules_store {
    void *ctx;
    vg_err_t (*load_resources)(void *ctx, const char *const *ids, size_t n,
                               struct vg_resource **res, char *errstr, size_t errstr_size);
    vg_err_t (*commit)(void *ctx, const struct vg_rules_fired *fx, char *errstr,
                       size_t errstr_size);
    vg_err_t (*load_group)(void *ctx, const char *member, size_t limit, struct vg_rules_group *g,
                           char *errstr, size_t errstr_size);
    vg_err_t (*commit_group)(void *ctx, const char *member, const struct vg_rules_grouped *gp,
                             char *errstr, size_t errstr_size);
};

/*
 * Fire the timers due[0..n) (all due at env->now_ms) through `store`, as
 * described above. Returns VG_OK or the store's first error. Thread: any
 * (the ruleset is read-only; the store is the caller's).
 */
vg_err_t vg_rules_timers_fire(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                              const struct vg_rules_store *store, const struct vg_rules_due *due,
                              size_t n, char *errstr, size_t errstr_size);

/* ---- An in-memory storage with Redis's semantics, and a fake clock ---- */

/* One outbox entry of struct vg_rules_mem. */
struct vg_rules_sent {
    int64_t at_ms;
    struct vg_page pg;  /* a single page; for a grouped one only id, pager and sink */
    char *group_body;   /* a flushed group buffer's body; NULL for a single page */
    size_t n_incidents; /* grouped: incidents of the group, listed or not */
};

struct vg_rules_mem_group;

/*
 * What `vigil run` keeps in Redis for rules, kept in memory for `vigil
 * test` and the unit tests: Resources, the timer sorted sets (ZADD, NX,
 * ZREM; one per topic/partition, topic NULL for group timers), group
 * buffers, incident records and the outbox. A zeroed struct is an empty
 * store; the fields are read-only outside rules/ except the clock and the
 * evaluation inputs.
 */
struct vg_rules_mem {
    struct vg_map *res;                 /* Resource id -> struct vg_resource * (owned) */
    struct vg_timers timers;            /* scheduled (nx unused) */
    struct vg_incident_records records; /* latest per incident id */
    struct vg_pages pages;              /* every page rules produced, in order (grouped ones too) */
    struct vg_rules_sent *sent;         /* the outbox, in order */
    size_t n_sent, cap_sent;
    struct vg_rules_mem_group *groups;
    size_t n_groups, cap_groups;
    int64_t now_ms;                    /* the fake clock */
    const struct vg_silence *silences; /* evaluation inputs, not owned */
    size_t n_silences;
    const struct vg_incident_record *firing; /* NULL: `records` (as `vigil run` reads them) */
    size_t n_firing;
};
void vg_rules_mem_fini(struct vg_rules_mem *m);
/* The Resource with `id` (NULL when unknown); put: takes `res` (replacing one with its id). */
struct vg_resource *vg_rules_mem_resource(const struct vg_rules_mem *m, const char *id);
void vg_rules_mem_put_resource(struct vg_rules_mem *m, struct vg_resource *res);
/* The evaluation environment at the clock. Valid until the store changes. */
struct vg_rules_env vg_rules_mem_env(const struct vg_rules_mem *m);
/*
 * What vg_state_commit does with rules' output at the clock: pages to the
 * outbox or to their group buffer (latest per incident; the group timer
 * at page->at_ms + group_wait_ms unless already set), incident records,
 * then timer changes in order.
 */
void vg_rules_mem_apply(struct vg_rules_mem *m, const struct vg_rules_out *out);
/* Schedule (due_ms > 0, NX when t->nx) or remove one timer, as vg_state_timer_set. */
void vg_rules_mem_set_timer(struct vg_rules_mem *m, const struct vg_timer *t);
/*
 * Run the clock to `until`, as `vigil run` would: at each due time, the
 * timers due then fire as one round (vg_rules_timers_fire). The clock
 * never goes back and ends at `until` when later. VG_ERR_INVALID (errstr:
 * "a timer loop") after `max_rounds` rounds.
 */
vg_err_t vg_rules_mem_run_until(struct vg_rules_mem *m, const struct vg_ruleset *rs, int64_t until,
                                size_t max_rounds, char *errstr, size_t errstr_size);

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
    char *file;       /* "" when unknown */
    size_t line, col; /* 0 when unknown */
    char *message;    /* without the position */
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
                              char *const *sink_names, size_t n_sinks, struct vg_rules_diags *out);
/* Split "file:line:col: message" into a diagnostic (appended). */
void vg_rules_diags_add_text(struct vg_rules_diags *d, const char *text);

/*
 * Sink fallback: the pagers that name a `fallback` sink. *pagers and *sinks get
 * new NULL-terminated heap arrays of heap strings (pager i falls back to
 * sink i); the caller frees them. Returns the count.
 */
size_t vg_rules_fallbacks(const struct vg_ruleset *rs, char ***pagers, char ***sinks);

#endif
