/*
 * The one integration-test environment, like Redis's `start_server`: a
 * private redis-server, librdkafka's mock cluster with a topic, a real
 * HTTP receiver, a vigil.yaml that ties them together, and vigil itself,
 * either the real binary as a child process (`vg_test_env_spawn`) or the
 * engine in process on a thread (`vg_test_env_engine_start`). Waits are
 * conditions with deadlines ("everything produced is applied", "the log
 * says X"); logs are dumped when a wait fails.
 */
#ifndef VIGIL_TEST_ENV_H
#define VIGIL_TEST_ENV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http_receiver.h"
#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/engine.h"
#include "vigil/state.h"

struct cJSON;

struct vg_test_env_opts {
    int partitions;             /* of the event topic; 0: 2 */
    const char *redis_password; /* requirepass of the redis-server; NULL: none */
    /* Rules YAML written to <dir>/rules.yaml; NULL: VG_TEST_ENV_RULES. */
    const char *rules;
    /* The `sinks:` section's body (indented 2); NULL: `ops`, a webhook to the receiver. */
    const char *sinks;
    /* More top-level YAML appended to the config (decode:, kafka-free keys...). */
    const char *extra;
    /* Serve http on 127.0.0.1:0; vg_test_env_spawn then waits for the port and /readyz. */
    bool http;
    const char *http_token; /* http.token; NULL: none */

    /* -- Kafka tuning (state tests) -- */
    /* Replaces the kafka section's batch_ms and properties lines (each indented 2); NULL: keep. */
    const char *kafka_tuning;

    /* -- Redis section -- */
    /* More lines of the redis section (each indented 2, e.g. cache_resources); NULL: none. */
    const char *redis_extra;
};

/* A monitor paging `ops` when a workflow's runtime turns failed. */
#define VG_TEST_ENV_RULES                                                                          \
    "monitors:\n"                                                                                  \
    "  - name: workflow-failed\n"                                                                  \
    "    match: {type: [workflow]}\n"                                                              \
    "    when: {runtime: {to: failed}}\n"                                                          \
    "    severity: high\n"                                                                         \
    "    summary: \"{{resource.name}} failed in {{resource.workspace}}\"\n"                        \
    "pagers:\n"                                                                                    \
    "  - name: ops\n"                                                                              \
    "    match: {severity: [high, critical]}\n"                                                    \
    "    sinks: [ops]\n"

struct vg_test_env {
    struct vg_test_env_opts opts;
    char *name;
    char *dir;
    char *topic;
    char *prefix;
    char *group;
    char *config; /* path of vigil.yaml */
    char *rules;  /* path of rules.yaml */
    char *hook_url;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_http_receiver *rcv;
    struct vg_producer *producer;
    struct vg_state *st; /* the test's own connection, prefix as vigil's */
    long long produced;  /* messages produced to the event topic */
    /* The binary. */
    pid_t vigil;
    int runs; /* spawns so far; run i logs to <dir>/vigil-<i>.err */
    int port; /* HTTP port of the current run (opts.http) */
    bool unclean_exit_ok;
    bool failed; /* a run exited uncleanly or reported a sanitizer error */
    /* The engine in process. */
    struct vg_engine *engine;
    struct vg_config engine_cfg;
    pthread_t engine_thread;
    vg_err_t engine_err;
};

/* Start redis-server, the mock cluster, the receiver and write the config. 0 or -1. */
int vg_test_env_start(struct vg_test_env *e, const char *name, const struct vg_test_env_opts *o);
/*
 * Stop whatever runs (vigil with SIGTERM, the engine) and everything else;
 * remove the directory. Returns -1 when a run of vigil exited uncleanly
 * (unless unclean_exit_ok) or printed a sanitizer report, else 0.
 */
int vg_test_env_stop(struct vg_test_env *e);

/* Rewrite vigil.yaml with the options now in e->opts (e.g. other rules). */
void vg_test_env_write_config(struct vg_test_env *e);
/* -- Consumer groups (state tests) -- */
/* Consume as group "<name>-<suffix>-<pid>" from now on (rewrites vigil.yaml): a fresh group. */
void vg_test_env_set_group(struct vg_test_env *e, const char *suffix);

/* Rewrite rules.yaml (a SIGHUP or a restart picks it up). */
void vg_test_env_write_rules(struct vg_test_env *e, const char *yaml);

/* Spawn `vigil run -c config` (with opts.http: wait for the port and /readyz). */
bool vg_test_env_spawn(struct vg_test_env *e);
/* Send `sig` to the running vigil and wait for it (bounded). Returns the exit status. */
int vg_test_env_kill(struct vg_test_env *e, int sig);
/* Path of run `run`'s stderr (caller frees); vigil's log. */
char *vg_test_env_log_path(const struct vg_test_env *e, int run);
/* Every run's log concatenated (caller frees). */
char *vg_test_env_logs(const struct vg_test_env *e);
void vg_test_env_dump_logs(const struct vg_test_env *e);
/* Wait until the logs contain `needle`. */
bool vg_test_env_wait_log(struct vg_test_env *e, const char *needle, int timeout_ms);

/* Start the engine in process on a thread, from the same vigil.yaml. */
bool vg_test_env_engine_start(struct vg_test_env *e);
/* Ask it to drain, join the thread, destroy it. Returns what vg_engine_run returned. */
vg_err_t vg_test_env_engine_stop(struct vg_test_env *e);

/* Produce a native event keyed by its Resource id (NULL status/runtime/time/message: absent). */
void vg_test_env_produce(struct vg_test_env *e, const char *type, const char *name, const char *ws,
                         const char *status, const char *runtime, const char *time,
                         const char *message);
/* Produce raw bytes to `partition` (-1: by key) of the event topic. */
void vg_test_env_produce_raw(struct vg_test_env *e, int32_t partition, const char *key,
                             const void *payload, size_t len);
/* Wait until every message produced so far has an applied offset in Redis. */
bool vg_test_env_wait_applied(struct vg_test_env *e, int timeout_ms);
/* The HTTP receiver recorded at least n requests. */
bool vg_test_env_wait_requests(struct vg_test_env *e, size_t n, int timeout_ms);

/* -- Timers, the outbox and pages (rules tests) -- */
/* Durable timers of every partition and group timers, whatever their due time; -1 on error. */
long vg_test_env_timers(struct vg_test_env *e);
/* Wait until no timer is left and the outbox is empty (dumps the logs on failure). */
bool vg_test_env_wait_quiet(struct vg_test_env *e, int timeout_ms);
/* The body of the receiver's request i, parsed (cJSON_Delete it); NULL if none or not JSON. */
struct cJSON *vg_test_env_request_json(struct vg_test_env *e, size_t i);

/*
 * Run `vigil ARGS... -c config` to completion (args NULL-terminated).
 * Returns the exit status; stdout and stderr into *out and *err (heap,
 * may be NULL).
 */
int vg_test_env_cli(struct vg_test_env *e, char **out, char **err, const char *const *args);

/* One HTTP/1.0 request to 127.0.0.1:port. */
struct vg_test_http_reply {
    int status; /* -1: no connection */
    char *headers;
    char *body;
    size_t body_len;
};
struct vg_test_http_reply vg_test_http(int port, const char *method, const char *path,
                                       const char *extra_headers, const char *body);
void vg_test_http_reply_free(struct vg_test_http_reply *r);

#endif
