/*
 * A page: one notification about one incident, addressed to one sink.
 * Its canonical serialisation is the webhook payload version "1"
 * (docs/webhook.md); the outbox stores that JSON and every sink renders
 * its own format from the parsed struct.
 */
#ifndef VIGIL_PAGE_H
#define VIGIL_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"
#include "vigil/event.h"

struct vg_page {
    char *id;   /* notification id: "<incident id>-<seq>", the idempotency key */
    char *sink; /* target sink name */
    char *pager;
    char *status; /* "firing" or "resolved" */
    struct {
        char *id;
        char *monitor;
        char *severity;
        char *summary;
        int64_t started_at_ms;
        int64_t resolved_at_ms; /* 0: null */
    } incident;
    struct {
        char *id;
        char *type;
        char *name;
        char *workspace;
        char *version;
        char *owner;
        char status[VG_VALUE_MAX];
        char runtime[VG_VALUE_MAX];
        char health[VG_VALUE_MAX];
    } resource;
    struct {
        char field[VG_VALUE_MAX];
        char from[VG_VALUE_MAX]; /* "" is rendered as null */
        char to[VG_VALUE_MAX];
        int64_t at_ms;
    } transition;
    /*
     * From rules/: status may also be "stale" or "deleted" (the two
     * other ways an incident ends). The fields below are rendered into the
     * body as incident.type, incident.labels, incident.description and
     * transition.reason/pod (NULL or empty: "" / {}).
     */
    char *incident_type;     /* the monitor's `incident` (DataOS incident type) */
    struct vg_label *labels; /* the incident's labels, sorted by key */
    size_t n_labels;
    char *description; /* the rendered description ("" when none) */
    char reason[VG_REASON_MAX];
    char pod[VG_POD_NAME_MAX];
    int64_t at_ms; /* when the notification was decided (the evaluation clock) */
    /*
     * Grouped pagers (group_by): non-NULL `group` sends this page to the
     * group buffer of (pager, sink, group) instead of the outbox; the buffer
     * is flushed group_wait_ms after its first page as one grouped body
     * (vg_page_group_to_json). `group` is the canonical key "k=v,k=v".
     */
    char *group;
    struct vg_label *group_labels;
    size_t n_group_labels;
    int64_t group_wait_ms;
};

void vg_page_fini(struct vg_page *pg);
/* A deep copy of `src` into `dst` (uninitialised). */
void vg_page_copy(struct vg_page *dst, const struct vg_page *src);

/* Render the webhook v1 JSON body (compact, keys in documented order). Caller frees. */
char *vg_page_to_json(const struct vg_page *pg);

/*
 * Parse a v1 body back (as stored in the outbox). `id`, `sink` and `pager`
 * are not part of the body and are left NULL. Returns VG_ERR_PARSE with
 * `errstr` on malformed input.
 */
vg_err_t vg_page_from_json(struct vg_page *pg, const char *json, size_t len, char *errstr,
                           size_t errstr_size);

/* A growable list of pages; owns them. */
struct vg_pages {
    struct vg_page *items;
    size_t n;
    size_t cap;
};
struct vg_page *vg_pages_push(struct vg_pages *pl); /* zeroed slot */
void vg_pages_clear(struct vg_pages *pl);           /* fini each, keep capacity */
void vg_pages_fini(struct vg_pages *pl);

/*
 * Grouped notification body (docs/webhook.md "Grouped pages"):
 *   {"version":"1","status":"firing"|"resolved","group":{"pager":P,"labels":{..}},
 *    "counts":{"firing":F,"resolved":R},"truncated":K,
 *    "incidents":[{"status","incident","resource","transition"}, ...]}
 * built from single-form bodies (`bodies[0..n)`, each vg_page_to_json
 * output). When more than `limit` (> 0) bodies are given, the `limit`
 * highest by vg_page_group_rank are listed; the listed ones are ordered by
 * incident.started_at then incident.id. `counts` in: the group's incidents
 * by state including those not given (0, 0: count the bodies); out: the
 * totals written (never fewer than the bodies show) and `listed`.
 * Truncated = firing + resolved - listed. Status is "firing" when any
 * incident is firing. Caller frees. NULL when a body is unreadable (never
 * the case for bodies vigil wrote).
 */
struct vg_group_counts {
    size_t firing; /* incidents whose latest notification is firing */
    size_t ended;  /* ... resolved, stale or deleted ("resolved" in the body) */
    size_t listed; /* out: incidents the body lists */
};
char *vg_page_group_build(const char *pager, const struct vg_label *labels, size_t n_labels,
                          const char *const *bodies, size_t n, size_t limit,
                          struct vg_group_counts *counts);
/* vg_page_group_build without a limit, counting the bodies. */
char *vg_page_group_to_json(const char *pager, const struct vg_label *labels, size_t n_labels,
                            const char *const *bodies, size_t n);
/*
 * The order in which a bounded grouped page chooses its incidents, highest
 * first: firing before ended, then the latest transition first. Exact in a
 * double (a Redis sorted-set score): below 2^47.
 */
#define VG_GROUP_RANK_FIRING (INT64_C(1) << 46)
int64_t vg_page_group_rank(bool firing, int64_t transition_at_ms);
/* True when `json` is a grouped body (has a "group" object). */
bool vg_page_json_is_group(const char *json, size_t len);
/*
 * Parse a grouped body into its pages (appended to `out`; each with the
 * group's pager in ->pager and ->group set to "k=v,..."). VG_ERR_PARSE when malformed.
 */
vg_err_t vg_page_group_from_json(struct vg_pages *out, const char *json, size_t len, char *errstr,
                                 size_t errstr_size);

/* ---- Incident records: the public view of an incident, in Redis ---- */

/*
 * One incident, updated in place as it changes (P:incident:<id>, see
 * docs/state.md). `state`: "firing", "resolved", "stale" or "deleted".
 * Owns its strings.
 */
struct vg_incident_record {
    char *id;
    char *monitor;
    char *resource; /* Resource id */
    char *severity;
    char *incident_type; /* "" when the monitor names none */
    char *state;
    struct vg_label *labels;
    size_t n_labels;
    char *summary;
    char *description;
    int64_t started_at_ms;
    int64_t ended_at_ms; /* 0 while firing */
    int64_t updated_at_ms;
    int seq;            /* notifications sent so far */
    bool silenced;      /* a silence held back its last notification */
    bool inhibited;     /* an inhibition held back its last notification */
    bool resolve_never; /* `resolve: never`: only `vigil incidents resolve` ends it */
    char *topic;        /* where the Resource's timers live (its Kafka partition) */
    int32_t partition;
};
void vg_incident_record_fini(struct vg_incident_record *r);
void vg_incident_record_copy(struct vg_incident_record *dst, const struct vg_incident_record *src);
/* Compact JSON (docs/state.md); caller frees. */
char *vg_incident_record_to_json(const struct vg_incident_record *r);
/* Parse; false (r zeroed) when unreadable. */
bool vg_incident_record_from_json(struct vg_incident_record *r, const char *json, size_t len);

struct vg_incident_records {
    struct vg_incident_record *items;
    size_t n;
    size_t cap;
};
/* Insert or replace the record with r->id (a copy). */
void vg_incident_records_put(struct vg_incident_records *l, const struct vg_incident_record *r);
void vg_incident_records_clear(struct vg_incident_records *l);
void vg_incident_records_fini(struct vg_incident_records *l);

/* ---- Durable timers ---- */

/*
 * A timer change: ZADD (due_ms > 0) or ZREM (due_ms == 0) of `member` in
 * the sorted set of Kafka partition topic/partition (P:timers:<topic>/<n>),
 * or, when topic is NULL, of the global group timers (P:timers:groups).
 * `nx`: ZADD only when not already scheduled (group_wait). Owns its strings.
 */
struct vg_timer {
    char *topic;
    int32_t partition;
    char *member;
    int64_t due_ms;
    bool nx;
};
struct vg_timers {
    struct vg_timer *items;
    size_t n;
    size_t cap;
};
void vg_timers_add(struct vg_timers *l, const char *topic, int32_t partition, const char *member,
                   int64_t due_ms, bool nx);
void vg_timers_clear(struct vg_timers *l);
void vg_timers_fini(struct vg_timers *l);

/* ---- Silences ---- */

/*
 * A silence: incidents matching every matcher ("key=glob": monitor,
 * resource, severity, incident, type, workspace, name, owner, labels.K)
 * between starts and ends are recorded but not paged. Owns its strings.
 */
struct vg_silence {
    char *id;
    char **matchers;
    size_t n_matchers;
    int64_t starts_at_ms;
    int64_t ends_at_ms;
    char *comment;
    char *created_by;
};
void vg_silence_fini(struct vg_silence *s);
char *vg_silence_to_json(const struct vg_silence *s);
bool vg_silence_from_json(struct vg_silence *s, const char *json, size_t len);
void vg_silences_free(struct vg_silence *v, size_t n);

#endif
