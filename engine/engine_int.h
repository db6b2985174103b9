/*
 * Private to engine/: the parts of the daemon and the struct they share.
 * pipeline.c (consumer thread: decode -> state -> rules -> commit),
 * timers.c (durable timers and group buffers), dispatch.c (outbox ->
 * sinks, its own thread), embedded.c (mock Kafka, private redis-server),
 * http.c (the API's hooks) and engine.c (start, run, drain, stop).
 */
#ifndef VIGIL_ENGINE_INT_H
#define VIGIL_ENGINE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/api.h"
#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/engine.h"
#include "vigil/err.h"
#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/sinks.h"
#include "vigil/state.h"

/* The embedded stack: started only for what the config leaves unset. */
struct eng_embedded {
    struct vg_mock_kafka *kafka;
    struct vg_redis_child *redis;
    /* restarts `redis` when it dies (NULL with redis.url) */
    struct eng_redis_watch *watch;
    char *bootstraps; /* Kafka bootstrap servers in use (owned) */
    char *redis_url;  /* Redis URL in use (owned) */
};
vg_err_t eng_embedded_start(struct eng_embedded *em, const struct vg_config *cfg, bool want_kafka,
                            char *errstr, size_t errstr_size);
void eng_embedded_stop(struct eng_embedded *em);

/*
 * Where the engine's threads report: the metrics registry (every count:
 * vg_engine_stats reads it too), the server whose event stream the
 * pipeline publishes to after each commit, and the dispatcher to wake when
 * a commit queued pages. All NULL-safe; set before the threads start.
 */
struct eng_report {
    struct vg_metrics *metrics;
    struct vg_api *api;
    struct eng_dispatch *dispatch;
};
/*
 * `n` pages were just committed to the outbox (0: nothing to do): wake this
 * process's dispatcher so they leave at once. Any thread.
 */
void eng_report_pages_queued(const struct eng_report *report, size_t n);

/* The batch pipeline (pipeline.c). Consumer thread only. */
struct eng_pipeline;
struct eng_pipeline *eng_pipeline_new(struct vg_state *st, const struct vg_ruleset *rs,
                                      const struct vg_health_config *hc, struct eng_report *report);
void eng_pipeline_destroy(struct eng_pipeline *pl);
/* The handler to pass to vg_consumer_run (opaque = pl). */
void eng_pipeline_handler(struct eng_pipeline *pl, struct vg_consumer_handler *h);
/*
 * Decode each topic in its kafka.topics format under `dc`, and dead-letter
 * what cannot be decoded to kc->dlq_topic through `dlq` (all borrowed; dlq
 * NULL: invalid input is only counted and logged). A batch with dead
 * letters succeeds only after vg_producer_flush (bounded by
 * ENG_DLQ_FLUSH_MS) acknowledged them; otherwise it is retried. `consumer`
 * (borrowed; NULL: never asked) is asked for a partition's current end
 * before its offsets count as started again.
 */
#define ENG_DLQ_FLUSH_MS 10000
/*
 * A poison message too large for the DLQ (librdkafka's message.max.bytes
 * or the broker's) is sent again with key and payload cut to this many
 * bytes plus vigil.truncated and vigil.original_bytes; refused again, it
 * is skipped, counted in VG_M_DLQ_FAILURES and logged (ERROR). The DLQ
 * producer takes decode.limits.max_message_bytes + ENG_DLQ_HEADROOM_BYTES
 * (key and headers) whole.
 */
#define ENG_DLQ_CUT_BYTES 1024
#define ENG_DLQ_HEADROOM_BYTES (64 * 1024)
void eng_pipeline_set_input(struct eng_pipeline *pl, const struct vg_kafka_config *kc,
                            const struct vg_decode_config *dc, struct vg_producer *dlq,
                            struct vg_consumer *consumer);
/* Called from the consumer thread after every poll round. */
void eng_pipeline_on_idle(struct eng_pipeline *pl, void (*fn)(void *arg), void *arg);
/*
 * Use `rs` from the next batch on (SIGHUP reload; consumer thread, between
 * batches). Returns the previous ruleset (caller frees).
 */
const struct vg_ruleset *eng_pipeline_set_rules(struct eng_pipeline *pl,
                                                const struct vg_ruleset *rs);

/*
 * The pipeline's clock work (timers.c): the rules environment, the
 * partitions owned, and firing durable timers and group buffers.
 * Consumer thread only.
 */
struct eng_timers;
struct eng_timers *eng_timers_new(struct vg_state *st, struct eng_report *report);
void eng_timers_destroy(struct eng_timers *t);
void eng_timers_assigned(struct eng_timers *t, const struct vg_partition *parts, size_t n);
void eng_timers_revoked(struct eng_timers *t, const struct vg_partition *parts, size_t n);
/* The environment at the wall clock now (silences and firing incidents refreshed when stale). */
const struct vg_rules_env *eng_timers_env(struct eng_timers *t, const struct vg_ruleset *rs);
/* The same, with the clock moved only: silences and firing incidents as last refreshed. */
const struct vg_rules_env *eng_timers_env_now(struct eng_timers *t);
/*
 * Fire what is due (at most every 100 ms unless `force`). VG_ERR_BACKEND:
 * Redis trouble. VG_ERR_CONFLICT: a partition's claim was lost (reported
 * through the fences' `lost`; drop the claims).
 */
vg_err_t eng_timers_run(struct eng_timers *t, const struct vg_ruleset *rs, bool force);
/*
 * The pipeline's partition claims, for timer commits (docs/state.md
 * "Fencing"): `claim` gives this instance's epoch of topic/partition,
 * claiming it first when it holds none; `lost` reports a timer commit
 * refused because another instance claimed the partition since (`why`:
 * the commit's errstr). Without fences (unset) timer commits are unfenced.
 */
struct eng_fences {
    void *arg;
    vg_err_t (*claim)(void *arg, const char *topic, int32_t partition, int64_t *epoch, char *errstr,
                      size_t errstr_size);
    void (*lost)(void *arg, const char *topic, int32_t partition, const char *why);
};
void eng_timers_set_fences(struct eng_timers *t, const struct eng_fences *f);
/* One INFO line per page. */
void eng_log_pages(const struct vg_pages *pages);

/* The dispatcher (dispatch.c): its own thread and Redis connection, outbox -> sinks. */
struct eng_dispatch;
/* `dc`: dispatch.claim_idle and idle_poll_ms (copied). */
vg_err_t eng_dispatch_start(struct eng_dispatch **out, const char *redis_url,
                            const struct vg_redis_config *redis,
                            const struct vg_dispatch_config *dc, struct vg_sinks *sk,
                            struct eng_report *report, char *errstr, size_t errstr_size);
/*
 * Ask to stop without waiting (the thread lets deliveries in flight finish
 * for up to DISPATCH_STOP_GRACE_MS, records them and ends). NULL-safe.
 */
void eng_dispatch_request_stop(struct eng_dispatch *d);
/*
 * Ask to stop (if not yet) and wait: the current delivery finishes
 * (bounded), undelivered pages stay in the outbox. NULL-safe.
 */
void eng_dispatch_stop(struct eng_dispatch *d);
/*
 * Pages were committed to the outbox: a dispatcher that polls (the
 * partitioned layout on a cluster) reads at once instead of after its idle
 * wait; one that BLOCKs in Redis sees them anyway. Thread-safe; NULL-safe.
 */
void eng_dispatch_wake(struct eng_dispatch *d);
/*
 * Pager name -> fallback sink (copied; replaces the previous map). What a
 * pager's sink gives up on is also queued for its fallback. Thread-safe.
 */
void eng_dispatch_set_fallbacks(struct eng_dispatch *d, const struct vg_kv *pager_sink, size_t n);

/* The daemon. */
struct vg_engine {
    struct vg_config *cfg; /* borrowed */
    struct vg_engine_options opt;
    struct eng_embedded em;
    struct vg_ruleset *rs;
    struct vg_sinks *sk;
    struct vg_state *st;
    struct vg_consumer *consumer;
    struct vg_producer *dlq; /* the dead-letter producer */
    struct eng_pipeline *pl;
    struct eng_dispatch *dispatch;
    struct eng_report report;
    struct vg_api *api; /* NULL when off or the default address was taken */
    struct vg_metrics *metrics;
    struct eng_http *http_state;
};

/*
 * The HTTP server (http.c) on cfg->http.listen. A bind failure is an error
 * only when http.listen was set in the file (the default address may be
 * held by another vigil: WARN, off).
 */
vg_err_t eng_http_start(struct vg_engine *eng, char *errstr, size_t errstr_size);
void eng_http_stop(struct vg_engine *eng);
/* The ruleset changed (start, reload): refresh GET /api/v1/rules and vigil_rules_loaded. */
void eng_http_rules_changed(struct vg_engine *eng, const struct vg_ruleset *rs);
/* Count a rules reload (vigil_rules_reloads_total{outcome}). */
void eng_http_note_reload(struct vg_engine *eng, bool ok);

/*
 * The decode workers (decode_pool.c): decode.threads threads that run a
 * batch's independent decoding beside the pipeline thread. Owned by the
 * pipeline: started with it (eng_pipeline_set_input), joined when it is
 * destroyed. Pipeline thread only, one job at a time.
 */
struct eng_decode_pool;
/* decode.threads when not set: online CPUs minus one, at least 1, at most this. */
#define ENG_DECODE_THREADS_MAX_DEFAULT 8
/*
 * A batch with fewer messages to decode than this decodes on the pipeline
 * thread alone: waking the workers would cost more than it saves.
 */
#define ENG_DECODE_PARALLEL_MIN 64
int eng_decode_threads_default(void);
/* Start `n_threads` workers (0: none; fewer when the system refuses threads: WARN). */
struct eng_decode_pool *eng_decode_pool_start(int n_threads);
/* Wake the workers, join them, free. Accepts NULL. */
void eng_decode_pool_stop(struct eng_decode_pool *dp);
/* Workers running (0 for NULL). */
int eng_decode_pool_threads(const struct eng_decode_pool *dp);
/*
 * Run fn(arg, i) once for every i in [0, n), on the workers and the
 * calling thread, in any order and concurrently; returns when all are
 * done (their writes visible to the caller). NULL or no workers: in
 * order on the calling thread.
 */
void eng_decode_pool_run(struct eng_decode_pool *dp, void (*fn)(void *arg, size_t i), void *arg,
                         size_t n);

#endif
