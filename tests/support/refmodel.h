/*
 * A reference model of vigil's event log, for the end-to-end tests of the
 * state in Redis: a random log over a few Resources, the state and the
 * transitions that applying it must leave, computed here independently of
 * vigil (from docs/state.md and docs/events.md, not by calling
 * vg_resource_apply), producing it, and comparing Redis with it (current
 * state and every history entry).
 */
#ifndef VIGIL_TEST_REFMODEL_H
#define VIGIL_TEST_REFMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "vigil/consumer.h"
#include "vigil/event.h"
#include "vigil/state.h"

#define VG_REF_T0 1795860000000LL /* 2026-11-28T10:00:00Z: the first event's time */

struct vg_ref_trans {
    enum vg_field field;
    char from[VG_VALUE_MAX];
    char to[VG_VALUE_MAX];
    int64_t at_ms;
};

/* One Resource of the log and what vigil must end up with. */
struct vg_ref_res {
    char type[16];
    char name[32];
    char id[64];
    char status[VG_VALUE_MAX];
    char runtime[VG_VALUE_MAX];
    enum vg_health health;
    int64_t status_since, runtime_since, health_since, updated_at;
    struct vg_ref_trans *trans;
    size_t n_trans, cap_trans;
};

struct vg_ref_event {
    int res;             /* index into vg_ref_log.res */
    const char *status;  /* NULL: absent */
    const char *runtime; /* NULL: absent */
    int64_t time_ms;
};

struct vg_ref_log {
    struct vg_ref_res *res; /* n_res of them (heap) */
    size_t n_res;
    struct vg_ref_event *evs;
    size_t n_evs;
    unsigned seed;
};

/*
 * Start `e` for a reference-model run: `partitions` partitions, the rules
 * in the file `rules_path`, `sinks` and `kafka_tuning` (see
 * vg_test_env_opts; NULL: the environment's). 0 or -1, as vg_test_env_start.
 */
int vg_ref_env_start(struct vg_test_env *e, const char *name, int partitions,
                     const char *rules_path, const char *sinks, const char *kafka_tuning);
/* A small deterministic PRNG (rand() is shared state; this is ours). */
uint32_t vg_ref_rand(unsigned *state);
/*
 * `n_evs` events over `n_res` Resources (services and workflows), each a
 * random walk: mostly the same values again (no transition), sometimes a
 * new status and/or runtime. Times never decrease.
 */
void vg_ref_log_make(struct vg_ref_log *log, size_t n_res, size_t n_evs, unsigned seed);
void vg_ref_log_fini(struct vg_ref_log *log);
/*
 * A log for the tests of pages: `n_evs` events over `n_res` Resources
 * named "<prefix>-<i>" (every second a workflow), each a runtime mostly
 * moving on (pending, running, succeeded or failed, a failure followed by
 * a retry), a pending one left pending (the same value again) `stuck_pct`
 * percent of the time, the status now and then active <-> error. Never
 * "deleted", so a runtime monitor's pages follow from the runtime alone;
 * times strictly increase, 1 ms apart, so every transition has its own.
 */
void vg_ref_log_make_runtimes(struct vg_ref_log *log, const char *prefix, size_t n_res,
                              size_t n_evs, unsigned seed, unsigned stuck_pct);
/*
 * For other generators (the chaos suite): an empty log of `n_res`
 * Resources named "<prefix>-<i>" (every `workflow_every`-th a workflow,
 * the others services) with room for `n_evs` events (n_evs stays 0); then
 * vg_ref_log_append for each event, in log order.
 */
void vg_ref_log_alloc(struct vg_ref_log *log, size_t n_res, size_t n_evs, const char *prefix,
                      size_t workflow_every);
/* Append `ev` to the log and apply it to its Resource by the documented rules. */
void vg_ref_log_append(struct vg_ref_log *log, const struct vg_ref_event *ev);
/* Event `ev` as native JSON (caller frees). */
char *vg_ref_event_json(const struct vg_ref_log *log, const struct vg_ref_event *ev);
/* Produce events [from, to) keyed by Resource id (one Resource stays in one partition), flushed. */
bool vg_ref_produce(struct vg_producer *p, const char *topic, const struct vg_ref_log *log,
                    size_t from, size_t to);
/* The same to the environment's event topic (counted in e->produced). */
bool vg_ref_produce_env(struct vg_test_env *e, const struct vg_ref_log *log, size_t from,
                        size_t to);
/* Sum over partitions of (applied offset + 1): the messages Redis reflects; -1 on error. */
int64_t vg_ref_applied_total(struct vg_state *st, const char *topic, int partitions);
/*
 * Wait until vg_ref_applied_total over the event topic of `e` (its
 * vg_test_env_state, so the embedded Redis too) is at least `want`; on a
 * timeout print how far it got and vigil's logs.
 */
bool vg_ref_wait_applied(struct vg_test_env *e, int64_t want, int timeout_ms);

/* Small batches and the mock cluster's quick rejoin: vg_test_env_opts.kafka_tuning. */
#define VG_REF_KAFKA_SMALL_BATCHES                                                                 \
    "  batch_size: 50\n"                                                                           \
    "  batch_ms: 5\n"                                                                              \
    "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}\n"
/*
 * Redis equals the reference: each Resource's state and since-times, and
 * its whole history, entry for entry (so no transition is missing and none
 * is there twice). Returns the number of mismatches, each printed.
 */
int vg_ref_check_redis(struct vg_state *st, const struct vg_ref_log *log);

struct vg_map;

/* What a receiver did with one page the model expects. */
struct vg_ref_page {
    size_t delivered; /* 2xx answers */
    char *idem;       /* the first Idempotency-Key */
};
/*
 * The pages of a monitor on a workflow's runtime (to failed: firing, from
 * failed: resolved): "<resource id>|<firing or resolved>|<transition
 * time>" -> a zeroed struct vg_ref_page for each; free the map with
 * vg_map_destroy(m, vg_ref_page_free).
 */
struct vg_map *vg_ref_expected_pages(const struct vg_ref_log *log);
void vg_ref_page_free(void *page);
/* The same key of a page (v1 JSON body) the receiver got; NULL when it is none. Caller frees. */
char *vg_ref_page_key(const struct vg_http_request *req);
/* One answer the receiver gave to `page`: its first Idempotency-Key kept, a 2xx counted. */
void vg_ref_page_answered(struct vg_ref_page *page, const char *idem, int status);

#endif
