/*
 * The daemon as a library: what `vigil run` and `vigil demo` run, and what
 * tests and benchmarks start in process. It wires consumer/, state/,
 * rules/, sinks/ and api/ together and owns the threads: the consumer loop
 * (the thread that calls vg_engine_run: poll batch -> decode -> state ->
 * rules -> MULTI/EXEC -> offsets), the outbox dispatcher, the HTTP server,
 * and the embedded mock Kafka and private redis-server for what the config
 * leaves unset. docs/architecture.md has the tour.
 */
#ifndef VIGIL_ENGINE_H
#define VIGIL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/config.h"
#include "vigil/err.h"

struct vg_engine;
struct vg_state;
struct vg_redis_child;
struct vg_metrics;

struct vg_engine_options {
    bool http; /* serve http.listen (the API, /metrics, the console) */
    /*
     * SIGINT/SIGTERM drain (a second one ends the process at once, by the
     * signal's default action), SIGHUP reloads rules (one engine per process).
     */
    bool signals;
    FILE *console_out; /* where console sinks print; NULL: stdout */
    /*
     * No outbox dispatcher: pages are written to the outbox as usual (the
     * incidents and their counts stay exact) but nothing delivers them
     * (`vigil replay` without --page, which then deletes them).
     */
    bool hold_pages;
    /* Called on the consumer thread after every poll round (may be NULL). */
    void (*idle)(struct vg_engine *eng, void *arg);
    void *idle_arg;
};

/* What the engine counted so far (a snapshot; any thread). */
struct vg_engine_stats {
    long long consumed; /* messages polled */
    long long applied;  /* events applied to state */
    long long invalid;  /* dead-lettered or counted as invalid */
    long long skipped;  /* at or below a partition's applied offset */
    long long transitions;
    long long pages;         /* notifications written to the outbox */
    long long delivered;     /* notifications a sink confirmed */
    long long dead;          /* notifications given up on */
    long long dead_lettered; /* messages produced to kafka.dlq_topic */
    long long late;          /* older than the state: history only */
};

/*
 * Start everything but the consumer loop: rules, sinks, the embedded stack,
 * Redis, the dispatcher thread, the consumer (joins the group on
 * vg_engine_run), the dead-letter producer and, with opt->http, the HTTP
 * server. `cfg` is borrowed and must outlive the engine.
 *
 * Returns VG_OK with *out set; VG_ERR_INVALID for a configuration the user
 * must fix (rules, sinks, Kafka properties, the HTTP address); another
 * error when a backend cannot be reached or started. errstr says why. On
 * failure *out is NULL and everything started is stopped.
 */
vg_err_t vg_engine_start(struct vg_engine **out, struct vg_config *cfg,
                         const struct vg_engine_options *opt, char *errstr, size_t errstr_size);

/*
 * Run the consumer loop on this thread until vg_engine_request_stop (or a
 * signal with opt.signals). Returns VG_OK on a requested stop, else the
 * error that stopped the consumer (logged).
 */
vg_err_t vg_engine_run(struct vg_engine *eng);

/* Ask vg_engine_run to drain and return: the in-flight batch commits. Any thread. */
void vg_engine_request_stop(struct vg_engine *eng);

/*
 * Stop and free everything: the HTTP server, the dispatcher (an in-flight
 * delivery finishes, up to 5 s; undelivered pages stay in the outbox) and,
 * meanwhile, the consumer (stored offsets committed, group left, up to
 * 5 s), then Redis, the embedded stack.
 * Accepts NULL.
 */
void vg_engine_destroy(struct vg_engine *eng);

void vg_engine_stats(const struct vg_engine *eng, struct vg_engine_stats *out);
/* Kafka bootstrap servers in use (the embedded cluster's when brokers are unset). */
const char *vg_engine_bootstraps(const struct vg_engine *eng);
/* The Redis URL in use (the private redis-server's when redis.url is unset). */
const char *vg_engine_redis_url(const struct vg_engine *eng);
/* The consumer thread's state handle: use it only from that thread (e.g. in `idle`). */
struct vg_state *vg_engine_state(struct vg_engine *eng);
/* The metrics registry every thread of the engine counts into (include/vigil/metrics.h). */
struct vg_metrics *vg_engine_metrics(struct vg_engine *eng);

/*
 * For read-only commands: the Redis URL to use. With an embedded Redis,
 * connect to the socket of a running `vigil run` in data_dir, or start a
 * private redis-server on the existing data_dir (*child set).
 */
vg_err_t vg_engine_redis_for_reading(const struct vg_config *cfg, const char *override_url,
                                     char **url_out, struct vg_redis_child **child, char *errstr,
                                     size_t errstr_size);

#endif
