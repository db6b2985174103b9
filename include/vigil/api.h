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
#include "vigil/metrics.h"
#include "vigil/page.h"

/* ---- GET /metrics (api_metrics.c) --------------------------------------- */

/* The Prometheus text exposition format (0.0.4) of the registry, appended to `out`. */
void vg_metrics_render(struct vg_metrics *m, struct vg_buf *out);

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
    const struct vg_redis_config *redis; /* borrowed for the server's lifetime; NULL: one Redis */
    struct vg_metrics *metrics;          /* borrowed; may be NULL (then /metrics is empty) */
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
/* "host:port" the server listens on (the port chosen when it was 0). */
const char *vg_api_address(const struct vg_api *api);
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
