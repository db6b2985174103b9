/*
 * The metrics registry (core/metrics.c): the one place where the daemon's
 * threads count (the pipeline, the timers, the dispatcher, the HTTP
 * server), read by the engine (vg_engine_stats) and rendered by api/ as
 * GET /metrics (docs/api.md lists the families).
 */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/mem.h"

enum vg_metric_type { VG_METRIC_COUNTER = 0, VG_METRIC_GAUGE, VG_METRIC_HISTOGRAM };

/*
 * A registry of metric families, each with fixed label names, and their
 * series (one per combination of label values). Thread-safe (one mutex).
 * Every function accepts m == NULL and then does nothing, so code that
 * counts works without a registry (tests, `vigil demo`).
 */
struct vg_metrics;
struct vg_metrics *vg_metrics_new(void);
void vg_metrics_destroy(struct vg_metrics *m);
/*
 * Declare family `name` (vigil_*; counters end in _total) once, before use:
 * its HELP text, its `n_labels` label names, and for histograms the upper
 * bounds of its buckets (ascending; +Inf is implicit). All copied.
 * Families render in declaration order.
 */
void vg_metrics_declare(struct vg_metrics *m, const char *name, enum vg_metric_type type,
                        const char *help, const char *const *label_names, size_t n_labels,
                        const double *buckets, size_t n_buckets);
/* Counter or gauge += delta for the series of `values` (as many as the family has labels). */
void vg_metrics_add(struct vg_metrics *m, const char *name, const char *const *values,
                    double delta);
/* Counter or gauge = v (a counter kept elsewhere, copied at scrape time, or a gauge). */
void vg_metrics_set(struct vg_metrics *m, const char *name, const char *const *values, double v);
/* One observation of a histogram. */
void vg_metrics_observe(struct vg_metrics *m, const char *name, const char *const *values,
                        double v);
/* Forget every series of `name` (gauges rebuilt at each scrape, e.g. lag per partition). */
void vg_metrics_clear(struct vg_metrics *m, const char *name);
/* The value of a counter or gauge series (histograms: the count); 0 when absent. */
double vg_metrics_value(struct vg_metrics *m, const char *name, const char *const *values);

/*
 * Increments gathered by one thread without locking and applied to the
 * registry at once (vg_metrics_tally_flush) or dropped: the pipeline
 * counts a batch's events as it goes and makes them count only once the
 * batch is committed (a retried batch is not counted twice).
 */
struct vg_metrics_tally;
struct vg_metrics_tally *vg_metrics_tally_new(void);
void vg_metrics_tally_destroy(struct vg_metrics_tally *t);
/* As vg_metrics_add, deferred; `n_values` label values (copied). */
void vg_metrics_tally_add(struct vg_metrics_tally *t, const char *name, const char *const *values,
                          size_t n_values, double delta);
/* Apply and zero every pending increment. m NULL: just zero them. */
void vg_metrics_tally_flush(struct vg_metrics_tally *t, struct vg_metrics *m);

/* Seconds from a monotonic clock, for latencies. */
double vg_metrics_now_s(void);

/*
 * vigil's metric families (docs/api.md), with their labels. Declared by
 * vg_metrics_declare_vigil; updated where the events happen (engine/).
 */
#define VG_M_EVENTS_CONSUMED "vigil_events_consumed_total"           /* topic, outcome */
#define VG_M_DECODE_ERRORS "vigil_decode_errors_total"               /* reason */
#define VG_M_DLQ_PRODUCED "vigil_dlq_produced_total"                 /* (none) */
#define VG_M_CONSUMER_LAG "vigil_consumer_lag_messages"              /* topic, partition */
#define VG_M_BATCH_SECONDS "vigil_batch_apply_duration_seconds"      /* (none) */
#define VG_M_TRANSITIONS "vigil_transitions_total"                   /* field, value */
#define VG_M_INCIDENTS_FIRING "vigil_incidents_firing"               /* monitor, severity */
#define VG_M_NOTIFICATIONS "vigil_notifications_total"               /* sink, outcome */
#define VG_M_DELIVERY_SECONDS "vigil_delivery_duration_seconds"      /* sink */
#define VG_M_OUTBOX_DEPTH "vigil_outbox_depth"                       /* (none) */
#define VG_M_DEAD_DEPTH "vigil_dead_letter_depth"                    /* (none) */
#define VG_M_REDIS_ERRORS "vigil_redis_errors_total"                 /* component */
#define VG_M_REDIS_RECONNECTS "vigil_redis_reconnects_total"         /* component */
#define VG_M_RULES_LOADED "vigil_rules_loaded"                       /* kind: monitor, pager */
#define VG_M_RULES_RELOADS "vigil_rules_reloads_total"               /* outcome: ok, error */
#define VG_M_STREAM_CLIENTS "vigil_stream_clients"                   /* (none) */
#define VG_M_BUILD_INFO "vigil_build_info"                           /* version */
#define VG_M_SINK_UP "vigil_sink_up"                                 /* sink, state */
#define VG_M_HTTP_REJECTED "vigil_http_rejected_total"               /* reason */
#define VG_M_NOTIFICATIONS_QUEUED "vigil_notifications_queued_total" /* (none) */
#define VG_M_DLQ_FAILURES "vigil_dead_letter_failures_total"         /* reason */
#define VG_M_OFFSET_RESETS "vigil_offset_resets_total"               /* topic */
#define VG_M_CACHE_EVICTIONS "vigil_cache_evictions_total"           /* (none) */
#define VG_M_COMMIT_CONFLICTS "vigil_commit_conflicts_total"         /* topic */
void vg_metrics_declare_vigil(struct vg_metrics *m);

/*
 * The sum of family `name`'s series whose label `label` has `value` (label
 * NULL: every series). 0 for an unknown family. Thread-safe.
 */
double vg_metrics_sum(struct vg_metrics *m, const char *name, const char *label, const char *value);

/* A read-only view of one family, for renderers (valid during the callback). */
struct vg_metric_series_view {
    const char *const *values; /* n_labels label values */
    double value;              /* counter, gauge */
    const uint64_t *buckets;   /* histogram: per-bucket counts (not cumulative), n_bounds + 1 */
    double sum;
    uint64_t count;
};
struct vg_metric_family_view {
    const char *name;
    enum vg_metric_type type;
    const char *help;
    const char *const *labels;
    size_t n_labels;
    const double *bounds;
    size_t n_bounds;
    const struct vg_metric_series_view *series; /* sorted by label values */
    size_t n_series;
};
/* Call `fn` for every family in declaration order, under the registry's lock. */
void vg_metrics_visit(struct vg_metrics *m,
                      void (*fn)(const struct vg_metric_family_view *f, void *arg), void *arg);

#endif
