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
#define VG_TEST_ENV_MORE_TOPICS 2

struct redisContext;

struct vg_test_env_opts {
    int partitions;             /* of the event topic; 0: 2 */
    int brokers;                /* of the mock cluster (leaders spread over them); 0: 1 */
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
    /*
     * redis.layout (docs/state.md "Layouts"): "single" or "partitioned" is
     * written into vigil.yaml, and e->st (vg_test_env_state) is connected
     * with the same layout; NULL: no layout key (vigil's default) and e->st
     * on the single layout.
     */
    const char *layout;
    /* ---- More of the environment: secrets, more topics, more config ---- */
    /* Path of the receiver URL the default sink posts to; NULL: "/hook". */
    const char *hook_path;
    /*
     * NULL-terminated: strings that no HTTP reply (vg_test_env_http) and no
     * log of vigil may contain; a reply that does marks the env failed at
     * once, a log is checked at vg_test_env_stop.
     */
    const char *const *secrets;
    const char *http_extra;   /* more lines under `http:` ("  max_connections: 4\n") */
    const char *kafka_extra;  /* more lines under `kafka:` ("  batch_size: 10\n") */
    const char *topic_format; /* `format:` of the event topic (auto, native...); NULL: none */
    /* More event topics, <name>.<suffix>, consumed too; suffix NULL: unused. */
    struct vg_test_env_topic {
        const char *suffix;
        int partitions; /* 0: 1 */
        const char *format;
    } more_topics[VG_TEST_ENV_MORE_TOPICS];
    const char *debug;      /* `vigil run --debug` facilities ("sinks"); NULL: none */
    const char *rules_file; /* a file (a fixture) whose text is the rules; wins over rules */
    /* Properties of the test's producer (message.max.bytes for large messages). */
    const struct vg_kv *producer_props;
    size_t n_producer_props;

    /* ---- State tests: Redis over TCP, a database index, the embedded Redis ---- */
    /*
     * redis-server also listens on a free 127.0.0.1 port (e->redis_port);
     * vigil and e->st then reach it at redis://[:password@]127.0.0.1:PORT/redis_db.
     */
    bool redis_tcp;
    int redis_db; /* with redis_tcp: the database index */
    /*
     * No redis-server of the environment's own and no redis.url: vigil
     * starts its embedded one on <dir>/data (redis.data_dir), and
     * vg_test_env_state connects to it once vigil has started it.
     */
    bool embedded_redis;

    /* ---- A Redis Cluster (tests/support/redis_cluster.h, started by the test) ---- */
    /*
     * The URL of one node of the cluster: no redis-server of the environment's
     * own; vigil is given this URL with `cluster: true` and `wait_replicas: 1`,
     * and e->st (vg_test_env_state) reaches the cluster the same way.
     */
    const char *redis_cluster_url;
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
    /* ---- More of the environment ---- */
    char *more_topic[VG_TEST_ENV_MORE_TOPICS]; /* names of opts.more_topics; NULL: unused */
    long long more_produced[VG_TEST_ENV_MORE_TOPICS];
    bool leaked;                    /* a reply or a log held one of opts.secrets */
    struct redisContext *redis_raw; /* vg_test_env_redis's connection (outbox.h) */
    /* ---- State tests ---- */
    int redis_port;  /* opts.redis_tcp: the 127.0.0.1 port of redis-server */
    char *redis_url; /* the URL vigil is given (opts.redis_tcp, opts.embedded_redis) */
    char *data_dir;  /* opts.embedded_redis: vigil's redis.data_dir */
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
/* A native event of workflow `name` in workspace public (status active, `runtime`), keyed by
 * its Resource id, to `partition` of the event topic. */
void vg_test_env_produce_workflow_to(struct vg_test_env *e, int32_t partition, const char *name,
                                     const char *runtime);
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

/* ---- More of the environment: secrets, the HTTP API, metrics, logs, topics ---- */

/* The secrets of vg_test_env_opts_secured, and the header that carries the token. */
#define VG_TEST_ENV_TOKEN "tok-7f3a9c2e41d8b6"
#define VG_TEST_ENV_HOOK_PATH "/hook/s3cr3t-h00k-p4th"
#define VG_TEST_ENV_REDIS_PASSWORD "r3dis-pa55w0rd-x9"
#define VG_TEST_ENV_AUTH "Authorization: Bearer " VG_TEST_ENV_TOKEN "\r\n"

/*
 * Options for a daemon whose config holds every kind of secret (an API
 * token, a Redis password, a token in the webhook URL), each one in
 * opts.secrets, with its HTTP API served (opts.http).
 */
void vg_test_env_opts_secured(struct vg_test_env_opts *o);
/* vg_test_env_start, then vg_test_env_spawn; on a failure everything is stopped again. */
bool vg_test_env_up(struct vg_test_env *e, const char *name, const struct vg_test_env_opts *o);
/* True (and the env marked failed, the text printed) when `text` holds one of opts.secrets. */
bool vg_test_env_leaks(struct vg_test_env *e, const char *text, const char *what);

/* vg_test_http to the running vigil's API (e->port); the reply is checked for secrets. */
struct vg_test_http_reply vg_test_env_http(struct vg_test_env *e, const char *method,
                                           const char *path, const char *extra_headers,
                                           const char *body);
/* Send `raw` (a whole request, any bytes) to 127.0.0.1:port and read the reply until EOF. */
struct vg_test_http_reply vg_test_http_raw(int port, const char *raw, size_t len);
/* vg_test_http_raw to the running vigil's API, checked for secrets. */
struct vg_test_http_reply vg_test_env_http_raw(struct vg_test_env *e, const char *raw, size_t len);
/* vg_test_env_cli with the arguments listed, NULL-terminated: ("dlq", "list", NULL). */
int vg_test_env_run_cli(struct vg_test_env *e, char **out, char **err, const char *arg, ...);
/* A header's value (name case-insensitive) in a static buffer, valid until the next call. */
const char *vg_test_http_header(const struct vg_test_http_reply *r, const char *name);
/* A socket connected to vigil's API from source address `src` ("127.0.0.2"; NULL: any); -1. */
int vg_test_env_dial(struct vg_test_env *e, const char *src);

/* The value of sample `series` (name{labels} exactly) in /metrics text; -1 when absent. */
double vg_test_metric_sample(const char *text, const char *series);
/* The same, scraped from the running vigil's /metrics; -1 when absent or not answered. */
double vg_test_env_metric(struct vg_test_env *e, const char *series);
/* The same from the /metrics of a vigil listening on 127.0.0.1:`port` (a second instance). */
double vg_test_metric_at(int port, const char *series);
/* Wait until vg_test_env_metric(series) >= min; prints /metrics on a timeout. */
bool vg_test_env_wait_metric(struct vg_test_env *e, const char *series, double min, int timeout_ms);

/*
 * Wait until the receiver has request i (0-based) and return the string at
 * `object`.`key` of its JSON body ("resource", "id"); heap, NULL when the
 * request never came or has no such string (printed).
 */
char *vg_test_env_page_string(struct vg_test_env *e, size_t i, const char *object, const char *key,
                              int timeout_ms);

/* vg_test_env_page_string is `want` (a mismatch is printed). */
bool vg_test_env_page_is(struct vg_test_env *e, size_t i, const char *object, const char *key,
                         const char *want, int timeout_ms);

/* True when the logs of all runs contain `needle` (no wait). */
bool vg_test_env_log_has(struct vg_test_env *e, const char *needle);
/* The current run's log (heap, "" when none). */
char *vg_test_env_run_log(const struct vg_test_env *e);
/* Rewrite the rules and the `sinks:` body (e->opts.sinks), then spawn vigil. */
bool vg_test_env_spawn_with(struct vg_test_env *e, const char *rules, const char *sinks);

/* Produce raw bytes to `topic` (the event topic or one of more_topic), counted for it. */
void vg_test_env_produce_to(struct vg_test_env *e, const char *topic, int32_t partition,
                            const char *key, const void *payload, size_t len);
/* Wait until everything produced so far is acknowledged by the cluster. */
bool vg_test_env_flush(struct vg_test_env *e);
/*
 * Wait until every topic's applied offsets add up to exactly what was
 * produced to it (vg_test_env_wait_applied accepts more: offsets left
 * from an earlier cluster).
 */
bool vg_test_env_wait_applied_exact(struct vg_test_env *e, int timeout_ms);
/*
 * A fresh mock cluster (its topics empty, offsets from 0) in place of the
 * current one, with the same Redis; the config is rewritten for it.
 */
bool vg_test_env_new_cluster(struct vg_test_env *e);

/*
 * One raw Redis command on the test's own hiredis connection (opened on
 * first use, closed by vg_test_env_stop), hiredis's format. Returns the
 * reply (free with freeReplyObject) or NULL when Redis did not answer.
 */
struct redisReply *vg_test_env_redis(struct vg_test_env *e, const char *fmt, ...);
/* The same command's reply read as a number (vg_test_reply_int, support.h). */
long long vg_test_env_int(struct vg_test_env *e, const char *fmt, ...);
void vg_test_env_redis_close(struct vg_test_env *e);
/* Commands Redis has run so far (INFO commandstats, INFO itself left out) as `ctx` sees them;
 * -1 when it does not answer (printed). */
long long vg_test_redis_commands_run(struct redisContext *ctx);

/* ---- State tests: Redis restarts, counting log lines, the embedded Redis ---- */

/*
 * The test's vg_state (e->st); with opts.embedded_redis connected on first
 * use, and reconnected when the last call found Redis gone. NULL while
 * Redis does not answer.
 */
struct vg_state *vg_test_env_state(struct vg_test_env *e);
/* Send `sig` to the environment's redis-server and reap it (it stays down). */
void vg_test_env_redis_kill(struct vg_test_env *e, int sig);
/* Start it again on the same directory and options (the AOF brings the data back); reconnect e->st.
 */
bool vg_test_env_redis_restart(struct vg_test_env *e);
/* Bytes of all runs' logs so far: a mark for the _from functions below. */
size_t vg_test_env_log_size(const struct vg_test_env *e);
/* Occurrences of `needle` in the logs of all runs from byte `from` (0: all) on. */
int vg_test_env_log_count(const struct vg_test_env *e, size_t from, const char *needle);
/* The first whole line holding `needle` at or after byte `from` (heap), or NULL. */
char *vg_test_env_log_line(const struct vg_test_env *e, size_t from, const char *needle);
/* Wait until the logs from byte `from` on hold `needle` `want` times (dumps them on failure). */
bool vg_test_env_wait_log_count(struct vg_test_env *e, size_t from, const char *needle, int want,
                                int timeout_ms);
/* The spawned vigil still runs (not reaped; a test that sees false fails). */
bool vg_test_env_running(struct vg_test_env *e);

/* ---- cmocka fixtures: one environment per test, from the test's options ---- */

/*
 * A test's environment, its name and options. Pass its address as the
 * initial state of cmocka_unit_test_prestate_setup_teardown(test,
 * vg_test_env_setup, vg_test_env_teardown, &c): setup starts `env` with
 * vg_test_env_start, teardown stops it (failing when vg_test_env_stop does).
 */
struct vg_test_env_case {
    struct vg_test_env *env;
    const char *name;
    struct vg_test_env_opts opts;
};
int vg_test_env_setup(void **state);
int vg_test_env_teardown(void **state);

/* ---- Scale-out: more instances of vigil in one group, process memory ---- */

/*
 * Spawn another `vigil run -c config` beside (or instead of) e->vigil, as
 * consumer-group member `instance` (VIGIL_INSTANCE, also its outbox
 * consumer name), logging to the next run's files. With opts.http, wait
 * for its port (*port_out; 0 without http) but not for readiness: a
 * member without partitions is not ready. Returns the pid, or -1.
 */
pid_t vg_test_env_spawn_instance(struct vg_test_env *e, const char *instance, int *port_out);
/*
 * Send `sig` to an instance of vg_test_env_spawn_instance and reap it
 * (bounded). Returns the exit status; a status other than 0 after a
 * signal other than SIGKILL, or a sanitizer report in any run's log,
 * marks the environment failed.
 */
int vg_test_env_stop_instance(struct vg_test_env *e, pid_t pid, int sig);
/* GET /readyz on 127.0.0.1:port answers 200. */
bool vg_test_http_ready(int port);
/* Wait up to timeout_ms (scaled) until vg_test_http_ready(port). */
bool vg_test_wait_http_ready(int port, int timeout_ms);

/*
 * The cmocka fixture of a test that spawns instances: pass its address as
 * the initial state of cmocka_unit_test_prestate_setup_teardown(test,
 * vg_test_instances_setup, vg_test_instances_teardown, &c). Setup unsets
 * the proxy variables (the instances are asked on 127.0.0.1) and starts
 * `env` as vg_test_env_setup does. Teardown SIGKILLs each instance the
 * test left running (a failed assertion does) through the test's pid
 * variables in `pids` (NULL entries ignored; each set to 0), then stops
 * the environment with unclean exits allowed.
 */
#define VG_TEST_CASE_INSTANCES 2
struct vg_test_instances_case {
    struct vg_test_env_case env;
    pid_t *pids[VG_TEST_CASE_INSTANCES];
};
int vg_test_instances_setup(void **state);
int vg_test_instances_teardown(void **state);
/* A field of /proc/<pid>/status in kB ("VmHWM", "VmRSS"); -1 when absent. */
long vg_test_proc_kb(pid_t pid, const char *field);

#endif
