/*
 * The HTTP side of `vigil run` (libmicrohttpd lives only in api/,
 * docs/api.md): /healthz, /readyz, /metrics, the JSON API under /api/v1,
 * the Server-Sent Events stream and the web console. Also the registry of
 * Prometheus metrics that the daemon's threads update, and the bounded ring
 * of live events the pipeline publishes into after each commit.
 *
 * The server has its own threads (an acceptor that holds connections until
 * their request headers are complete, then one per connection, bounded) and its
 * own Redis connections (a small pool: a hiredis context is used by one
 * thread at a time). Everything here may be called from any thread.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/config.h"
#include "vigil/err.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/page.h"

/* ---- metrics (api_metrics.c) ------------------------------------------ */

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
/* The Prometheus text exposition format (0.0.4) of everything, appended to `out`. */
void vg_metrics_render(struct vg_metrics *m, struct vg_buf *out);

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
 * vg_metrics_declare_vigil; updated where the events happen (cli/).
 */
#define VG_M_EVENTS_CONSUMED "vigil_events_consumed_total"      /* topic, outcome */
#define VG_M_DECODE_ERRORS "vigil_decode_errors_total"          /* reason */
#define VG_M_DLQ_PRODUCED "vigil_dlq_produced_total"            /* (none) */
#define VG_M_CONSUMER_LAG "vigil_consumer_lag_messages"         /* topic, partition */
#define VG_M_BATCH_SECONDS "vigil_batch_apply_duration_seconds" /* (none) */
#define VG_M_TRANSITIONS "vigil_transitions_total"              /* field, value */
#define VG_M_INCIDENTS_FIRING "vigil_incidents_firing"          /* monitor, severity */
#define VG_M_NOTIFICATIONS "vigil_notifications_total"          /* sink, outcome */
#define VG_M_DELIVERY_SECONDS "vigil_delivery_duration_seconds" /* sink */
#define VG_M_OUTBOX_DEPTH "vigil_outbox_depth"                  /* (none) */
#define VG_M_DEAD_DEPTH "vigil_dead_letter_depth"               /* (none) */
#define VG_M_REDIS_ERRORS "vigil_redis_errors_total"            /* component */
#define VG_M_REDIS_RECONNECTS "vigil_redis_reconnects_total"    /* component */
#define VG_M_RULES_LOADED "vigil_rules_loaded"                  /* kind: monitor, pager */
#define VG_M_RULES_RELOADS "vigil_rules_reloads_total"          /* outcome: ok, error */
#define VG_M_STREAM_CLIENTS "vigil_stream_clients"              /* (none) */
#define VG_M_BUILD_INFO "vigil_build_info"                      /* version */
#define VG_M_SINK_UP "vigil_sink_up"                            /* sink, state */
#define VG_M_HTTP_REJECTED "vigil_http_rejected_total"          /* reason */
void vg_metrics_declare_vigil(struct vg_metrics *m);

/* ---- the server (api.c) ----------------------------------------------- */

/* What api/ asks of the daemon (cli/ provides it). Callbacks may be NULL. */
struct vg_api_hooks {
    void *opaque;
    /*
     * Readiness of what api/ cannot see itself (Kafka partitions assigned,
     * rules loaded). Returns true, or false with a one-line reason.
     * Called from server threads.
     */
    bool (*ready)(void *opaque, char *reason, size_t reason_size);
    /* Refresh metrics kept elsewhere, just before /metrics renders. Server threads, serialised. */
    void (*collect)(void *opaque, struct vg_metrics *m);
    /* The body of GET /api/v1/rules (JSON, heap; no secrets). NULL: 501. Server threads. */
    char *(*rules_json)(void *opaque);
    /*
     * While ready: false with a one-line detail when vigil copes but is
     * degraded (a sink down or disabled). /readyz stays 200 and shows it.
     */
    bool (*healthy)(void *opaque, char *detail, size_t detail_size);
};

struct vg_api_options {
    const struct vg_http_config *http; /* borrowed for the server's lifetime */
    const char *redis_url;             /* copied; the server opens its own connections */
    const char *prefix;
    struct vg_metrics *metrics; /* borrowed; may be NULL (then /metrics is empty) */
    struct vg_api_hooks hooks;
    /*
     * Strings that must never appear in a response (sink URLs and tokens,
     * the Redis password, http.token): replaced by "<redacted>" if they
     * ever do. Copied; strings shorter than 4 bytes are ignored.
     */
    const char *const *secrets;
    size_t n_secrets;
};

struct vg_api;
/*
 * Listen on opts->http->listen ("host:port"; port 0 picks one) and serve.
 * Errors: VG_ERR_INVALID (a malformed listen address), VG_ERR_IO (cannot
 * bind: errstr says why, e.g. "127.0.0.1:8089: Address already in use").
 * Does not wait for Redis: requests that need it answer 503 until it is
 * reachable. Thread: any; the server runs on its own threads.
 */
vg_err_t vg_api_start(struct vg_api **out, const struct vg_api_options *opts, char *errstr,
                      size_t errstr_size);
/* Close the stream connections, stop the threads, free. Accepts NULL. */
void vg_api_stop(struct vg_api *api);

/* ---- live events (api_stream.c) ---------------------------------------- */

/*
 * The stream (GET /api/v1/stream) reads a bounded in-process ring: the
 * newest VG_API_RING_SIZE events; a client that falls further behind is
 * told to reload ("event: reset"). Publishing never blocks on a client.
 */
#define VG_API_RING_SIZE 4096
/*
 * "transition" events: the change and the Resource after it (id, name,
 * version, type, workspace, owner, status, runtime, health, since). Call
 * after the commit that made them durable.
 */
void vg_api_publish_transitions(struct vg_api *api, const struct vg_transition *t, size_t n);
/* "incident" events from incident records (the rules' incidents). */
void vg_api_publish_incidents(struct vg_api *api, const struct vg_incident_record *r, size_t n);

#endif
