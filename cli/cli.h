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

#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/err.h"
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
};

struct cli_pipeline;
struct cli_pipeline *cli_pipeline_new(struct vg_state *st, const struct vg_ruleset *rs,
                                      const struct vg_health_config *hc, struct cli_stats *stats);
void cli_pipeline_destroy(struct cli_pipeline *pl);
/* The handler to pass to vg_consumer_run (opaque = pl). */
void cli_pipeline_handler(struct cli_pipeline *pl, struct vg_consumer_handler *h);
/* Called from the consumer thread after every poll round. */
void cli_pipeline_on_idle(struct cli_pipeline *pl, void (*fn)(void *arg), void *arg);

/* The dispatcher: its own thread and Redis connection, outbox -> sinks. */
struct cli_dispatch;
vg_err_t cli_dispatch_start(struct cli_dispatch **out, const char *redis_url, const char *prefix,
                            struct vg_sinks *sk, struct cli_stats *stats, char *errstr,
                            size_t errstr_size);
/* Ask to stop; the current delivery finishes (bounded), undelivered pages stay in the outbox. */
void cli_dispatch_stop(struct cli_dispatch *d);

/* The daemon, shared by `run` and `demo`. */
struct cli_daemon {
    struct vg_config *cfg;
    struct cli_embedded em;
    struct vg_ruleset *rs;
    struct vg_sinks *sk;
    struct vg_state *st;
    struct vg_consumer *consumer;
    struct cli_pipeline *pl;
    struct cli_dispatch *dispatch;
    struct cli_stats stats;
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

/* Rendering of Resources for `get` (table and JSON). */
void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color);
void cli_print_json(FILE *out, struct vg_resource **v, size_t n);

#endif
