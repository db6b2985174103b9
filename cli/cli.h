/*
 * Private to cli/: the subcommands, the embedded stack, the batch
 * pipeline (decode -> state -> rules -> commit) and the outbox
 * dispatcher. Only cli/ wires modules together.
 */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/api.h"
#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/err.h"
#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/sinks.h"
#include "vigil/state.h"

/* Exit codes. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

int cli_cmd_run(int argc, char **argv);
int cli_cmd_get(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_demo(int argc, char **argv);

/* Load `path` (NULL: defaults) into cfg, printing the error. Returns an exit code. */
int cli_load_config(struct vg_config *cfg, const char *path);

/* The embedded stack: started only for what the config leaves unset. */
struct cli_embedded {
    struct vg_mock_kafka *kafka;
    struct vg_redis_child *redis;
    char *bootstraps; /* Kafka bootstrap servers in use (owned) */
    char *redis_url;  /* Redis URL in use (owned) */
};
vg_err_t cli_embedded_start(struct cli_embedded *em, const struct vg_config *cfg, bool want_kafka,
                            char *errstr, size_t errstr_size);
void cli_embedded_stop(struct cli_embedded *em);
/*
 * For read-only commands: the Redis URL to use. With an embedded Redis,
 * connect to the socket of a running `vigil run` in data_dir, or start a
 * private redis-server on the existing data_dir (*child set).
 */
vg_err_t cli_redis_for_reading(const struct vg_config *cfg, const char *override_url,
                               char **url_out, struct vg_redis_child **child, char *errstr,
                               size_t errstr_size);

/* Counters of the pipeline (read by other threads: atomics). */
struct cli_stats {
    atomic_llong consumed;
    atomic_llong applied;
    atomic_llong invalid;
    atomic_llong skipped; /* at or below the applied offset */
    atomic_llong transitions;
    atomic_llong pages;
    atomic_llong delivered;
    atomic_llong dead;
    /* issue 4: inputs */
    atomic_llong dead_lettered; /* produced to kafka.dlq_topic (and acknowledged) */
    atomic_llong skipped_input; /* counted and skipped: no name label, ignored, unknown pod */
    atomic_llong late;          /* older than the state: recorded in history, not applied */
    atomic_llong by_reason[VG_DECODE__COUNT]; /* invalid and skipped, by decode reason */
    /*
     * Issue 7: the labelled metrics (GET /metrics), counted where things
     * happen, and the server whose event stream the pipeline publishes to
     * after each commit. Both NULL-safe; set before the threads start.
     */
    struct vg_metrics *metrics;
    struct vg_api *api;
};

struct cli_pipeline;
struct cli_pipeline *cli_pipeline_new(struct vg_state *st, const struct vg_ruleset *rs,
                                      const struct vg_health_config *hc, struct cli_stats *stats);
void cli_pipeline_destroy(struct cli_pipeline *pl);
/* The handler to pass to vg_consumer_run (opaque = pl). */
void cli_pipeline_handler(struct cli_pipeline *pl, struct vg_consumer_handler *h);
/*
 * Issue 4: decode each topic in its kafka.topics format under `dc`, and
 * dead-letter what cannot be decoded to kc->dlq_topic through `dlq` (all
 * borrowed; dlq NULL: invalid input is only counted and logged). A batch
 * with dead letters succeeds only after vg_producer_flush (bounded by
 * CLI_DLQ_FLUSH_MS) acknowledged them; otherwise it is retried.
 */
#define CLI_DLQ_FLUSH_MS 10000
void cli_pipeline_set_input(struct cli_pipeline *pl, const struct vg_kafka_config *kc,
                            const struct vg_decode_config *dc, struct vg_producer *dlq);
/* Called from the consumer thread after every poll round. */
void cli_pipeline_on_idle(struct cli_pipeline *pl, void (*fn)(void *arg), void *arg);
/*
 * Issue 5: use `rs` from the next batch on (SIGHUP reload; consumer
 * thread, between batches). Returns the previous ruleset (caller frees).
 */
const struct vg_ruleset *cli_pipeline_set_rules(struct cli_pipeline *pl,
                                                const struct vg_ruleset *rs);

/*
 * Issue 5: the pipeline's clock work (cli/pipeline_timers.c): the rules
 * environment, the partitions owned, and firing durable timers and group
 * buffers. Consumer thread only.
 */
struct cli_timers;
struct cli_timers *cli_timers_new(struct vg_state *st, struct cli_stats *stats);
void cli_timers_destroy(struct cli_timers *t);
void cli_timers_assigned(struct cli_timers *t, const struct vg_partition *parts, size_t n);
void cli_timers_revoked(struct cli_timers *t, const struct vg_partition *parts, size_t n);
/* The environment at the wall clock now (silences and firing incidents refreshed when stale). */
const struct vg_rules_env *cli_timers_env(struct cli_timers *t, const struct vg_ruleset *rs);
/* Fire what is due (at most every 100 ms unless `force`). VG_ERR_BACKEND: Redis trouble. */
vg_err_t cli_timers_run(struct cli_timers *t, const struct vg_ruleset *rs, bool force);
/* One INFO line per page. */
void cli_log_pages(const struct vg_pages *pages);

/* Issue 5: `vigil test`, `vigil incidents`, `vigil silence`. */
int cli_cmd_test(int argc, char **argv);
int cli_cmd_incidents(int argc, char **argv);
int cli_cmd_silence(int argc, char **argv);

/* The dispatcher: its own thread and Redis connection, outbox -> sinks. */
struct cli_dispatch;
vg_err_t cli_dispatch_start(struct cli_dispatch **out, const char *redis_url, const char *prefix,
                            struct vg_sinks *sk, struct cli_stats *stats, char *errstr,
                            size_t errstr_size);
/* Ask to stop; the current delivery finishes (bounded), undelivered pages stay in the outbox. */
void cli_dispatch_stop(struct cli_dispatch *d);
/*
 * Issue 6: pager name -> fallback sink (copied; replaces the previous
 * map). What a pager's sink gives up on is also queued for its fallback.
 * Thread-safe.
 */
void cli_dispatch_set_fallbacks(struct cli_dispatch *d, const struct vg_kv *pager_sink, size_t n);
/* Issue 6: `vigil dlq list|retry ID|drop ID` and `vigil incidents show ID`. */
int cli_cmd_dlq(int argc, char **argv);
int cli_cmd_incidents_show(int argc, char **argv);

/* The daemon, shared by `run` and `demo`. */
struct cli_daemon {
    struct vg_config *cfg;
    struct cli_embedded em;
    struct vg_ruleset *rs;
    struct vg_sinks *sk;
    struct vg_state *st;
    struct vg_consumer *consumer;
    struct vg_producer *dlq; /* issue 4: the dead-letter producer */
    struct cli_pipeline *pl;
    struct cli_dispatch *dispatch;
    struct cli_stats stats;
    /* Issue 7: the HTTP server (cli/http.c); `http` asks for it (vigil run, not demo). */
    bool http;
    struct vg_api *api; /* NULL when off or the default address was taken */
    struct vg_metrics *metrics;
    struct cli_http *http_state;
    FILE *console_out;
    /* Called from the consumer thread after every poll round (may be NULL). */
    void (*idle)(struct cli_daemon *d);
    void *idle_arg;
};
/* Start everything but the consumer loop. Returns an exit code. */
int cli_daemon_start(struct cli_daemon *d, struct vg_config *cfg);
/* Run the consumer loop until a signal or cli_daemon_request_stop. Returns an exit code. */
int cli_daemon_run(struct cli_daemon *d);
void cli_daemon_request_stop(struct cli_daemon *d);
void cli_daemon_stop(struct cli_daemon *d);

/*
 * Issue 7 (cli/http.c): start the HTTP server on cfg->http.listen. Returns
 * an exit code: a bind failure is fatal only when http.listen was set in
 * the file (the default address may be held by another vigil: WARN, off).
 */
int cli_http_start(struct cli_daemon *d);
void cli_http_stop(struct cli_daemon *d);
/* The ruleset changed (start, reload): refresh GET /api/v1/rules and vigil_rules_loaded. */
void cli_http_rules_changed(struct cli_daemon *d, const struct vg_ruleset *rs);
/* Count a rules reload (vigil_rules_reloads_total{outcome}). */
void cli_http_note_reload(struct cli_daemon *d, bool ok);

/*
 * The read-only commands (cmd_history.c), and the views of Resources that
 * `get` prints (cmd_get.c; `demo` prints the table too): table, JSON,
 * YAML, and `-o wide` with HEALTH | SINCE | UPDATED, SINCE measured
 * against `now_ms`. Their shared flags and session are in options.h, how
 * they print in render.h.
 */
int cli_cmd_history(int argc, char **argv);
void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color);
void cli_print_json(FILE *out, struct vg_resource **v, size_t n);
void cli_print_wide(FILE *out, struct vg_resource **v, size_t n, bool color, int64_t now_ms);
void cli_print_yaml(FILE *out, struct vg_resource **v, size_t n);
/* `vigil get ID`: one Resource in full (text, JSON object, YAML mapping). */
void cli_print_detail(FILE *out, const struct vg_resource *res, int64_t now_ms, bool color);
void cli_print_detail_json(FILE *out, const struct vg_resource *res, int64_t now_ms);
void cli_print_detail_yaml(FILE *out, const struct vg_resource *res, int64_t now_ms);

#endif
