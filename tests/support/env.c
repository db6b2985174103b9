/*
 * The integration-test environment (env.h): backends, config, vigil as a
 * child or in process, producing, bounded waits, logs, an HTTP client.
 */
#include "env.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static int stop_more(struct vg_test_env *e);
static int write_first_rules(struct vg_test_env *e);
static int start_redis(struct vg_test_env *e, const struct vg_redis_child_opts *ro);
static const char *redis_url(const struct vg_test_env *e);
static const char *redis_location(const struct vg_test_env *e);
static vg_err_t env_state_connect(struct vg_test_env *e, char *errstr, size_t errstr_size);

/* The mock cluster with the event topics and vigil.dlq, and the test's producer for it. */
static int start_cluster(struct vg_test_env *e)
{
    char errstr[512];

    if (vg_mock_kafka_start(&e->kafka, e->opts.brokers > 0 ? e->opts.brokers : 1, errstr,
                            sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(e->kafka, e->topic, e->opts.partitions, errstr,
                                   sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(e->kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: mock cluster: %s\n", errstr);
        return -1;
    }
    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        const struct vg_test_env_topic *t = &e->opts.more_topics[i];

        if (e->more_topic[i] && vg_mock_kafka_create_topic(e->kafka, e->more_topic[i],
                                                           t->partitions > 0 ? t->partitions : 1,
                                                           errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "env: mock cluster: %s\n", errstr);
            return -1;
        }
    }
    if (vg_producer_new(&e->producer, vg_mock_kafka_bootstraps(e->kafka), e->opts.producer_props,
                        e->opts.n_producer_props, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: producer: %s\n", errstr);
        return -1;
    }
    return 0;
}

int vg_test_env_start(struct vg_test_env *e, const char *name, const struct vg_test_env_opts *o)
{
    struct vg_redis_child_opts ro = {0};
    char errstr[512];

    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    if (o) {
        e->opts = *o;
    }
    if (e->opts.partitions <= 0) {
        e->opts.partitions = 2;
    }
    e->name = vg_strdup(name);
    e->dir = vg_test_mkdtemp(name);
    e->topic = vg_asprintf("%s.events", name);
    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        if (e->opts.more_topics[i].suffix) {
            e->more_topic[i] = vg_asprintf("%s.%s", name, e->opts.more_topics[i].suffix);
        }
    }
    e->prefix = vg_asprintf("%s%d", name, (int)getpid());
    e->group = vg_asprintf("%s-%d", name, (int)getpid());
    e->config = vg_asprintf("%s/vigil.yaml", e->dir);
    e->rules = vg_asprintf("%s/rules.yaml", e->dir);
    ro.password = e->opts.redis_password;
    if (start_redis(e, &ro) != 0) {
        return -1;
    }
    if (start_cluster(e) != 0) {
        return -1;
    }
    e->rcv = vg_http_receiver_start();
    if (!e->rcv) {
        fprintf(stderr, "env: cannot start the HTTP receiver\n");
        return -1;
    }
    e->hook_url = vg_http_receiver_url(e->rcv, e->opts.hook_path ? e->opts.hook_path : "/hook");
    if (!e->opts.embedded_redis && env_state_connect(e, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: %s\n", errstr);
        return -1;
    }
    /* Secrets reach vigil through the environment, as in production. */
    setenv("VIGIL_TEST_HOOK_URL", e->hook_url, 1);
    setenv("VIGIL_TEST_REDIS_URL", redis_url(e), 1);
    if (e->opts.http_token) {
        setenv("VIGIL_TEST_HTTP_TOKEN", e->opts.http_token, 1);
    }
    if (write_first_rules(e) != 0) {
        return -1;
    }
    vg_test_env_write_config(e);
    return 0;
}

void vg_test_env_write_rules(struct vg_test_env *e, const char *yaml)
{
    if (!vg_test_write_file(e->rules, yaml, strlen(yaml))) {
        fprintf(stderr, "env: cannot write %s\n", e->rules);
    }
}

/* A killed consumer's rejoin waits session.timeout.ms on the mock cluster. */
#define KAFKA_TUNING                                                                               \
    "  batch_ms: 20\n"                                                                             \
    "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}\n"

/* The `topics:` of the kafka section: a flow list, or a block list when formats are given. */
static void write_topics(struct vg_test_env *e, struct vg_buf *b)
{
    bool block = e->opts.topic_format != NULL;

    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        block = block || e->more_topic[i];
    }
    if (!block) {
        vg_buf_printf(b, "  topics: [%s]\n", e->topic);
        return;
    }
    vg_buf_printf(b, "  topics:\n    - {name: %s", e->topic);
    if (e->opts.topic_format) {
        vg_buf_printf(b, ", format: %s", e->opts.topic_format);
    }
    vg_buf_printf(b, "}\n");
    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        if (!e->more_topic[i]) {
            continue;
        }
        vg_buf_printf(b, "    - {name: %s", e->more_topic[i]);
        if (e->opts.more_topics[i].format) {
            vg_buf_printf(b, ", format: %s", e->opts.more_topics[i].format);
        }
        vg_buf_printf(b, "}\n");
    }
}

void vg_test_env_write_config(struct vg_test_env *e)
{
    struct vg_buf b = {0};

    vg_buf_printf(&b,
                  "kafka:\n"
                  "  brokers: %s\n"
                  "  group: %s\n",
                  vg_mock_kafka_bootstraps(e->kafka), e->group);
    write_topics(e, &b);
    vg_buf_printf(&b,
                  "%s"
                  "%s"
                  "redis:\n"
                  "%s"
                  "  prefix: %s\n"
                  "%s"
                  "%s%s%s"
                  "%s"
                  "rules: [%s]\n"
                  "sinks:\n%s",
                  e->opts.kafka_tuning ? e->opts.kafka_tuning : KAFKA_TUNING,
                  e->opts.kafka_extra ? e->opts.kafka_extra : "", redis_location(e), e->prefix,
                  e->opts.redis_cluster_url ? "  cluster: true\n  wait_replicas: 1\n" : "",
                  e->opts.layout ? "  layout: " : "", e->opts.layout ? e->opts.layout : "",
                  e->opts.layout ? "\n" : "", e->opts.redis_extra ? e->opts.redis_extra : "",
                  e->rules,
                  e->opts.sinks ? e->opts.sinks
                                : "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", "
                                  "max_attempts: 20}\n");
    if (e->opts.http) {
        vg_buf_printf(&b, "http:\n  listen: 127.0.0.1:0\n");
        if (e->opts.http_token) {
            vg_buf_printf(&b, "  token: \"${VIGIL_TEST_HTTP_TOKEN}\"\n");
        }
        if (e->opts.http_extra) {
            vg_buf_printf(&b, "%s", e->opts.http_extra);
        }
    }
    if (e->opts.extra) {
        vg_buf_printf(&b, "%s", e->opts.extra);
    }
    if (!vg_test_write_file(e->config, b.data, b.len)) {
        fprintf(stderr, "env: cannot write %s\n", e->config);
    }
    vg_buf_fini(&b);
}

/* -- Consumer groups (state tests) -- */

void vg_test_env_set_group(struct vg_test_env *e, const char *suffix)
{
    free(e->group);
    e->group = vg_asprintf("%s-%s-%d", e->name, suffix, (int)getpid());
    vg_test_env_write_config(e);
}

char *vg_test_env_log_path(const struct vg_test_env *e, int run)
{
    return vg_asprintf("%s/vigil-%d.err", e->dir, run);
}

char *vg_test_env_logs(const struct vg_test_env *e)
{
    struct vg_buf b = {0};

    vg_buf_printf(&b, "%s", "");
    for (int i = 1; i <= e->runs; i++) {
        char *path = vg_test_env_log_path(e, i);
        char *text = vg_test_read_file(path, NULL);

        if (text) {
            vg_buf_printf(&b, "%s", text);
        }
        free(text);
        free(path);
    }
    return vg_buf_steal(&b);
}

void vg_test_env_dump_logs(const struct vg_test_env *e)
{
    char *logs = vg_test_env_logs(e);

    fprintf(stderr, "---- vigil's log (%d runs) ----\n%s\n---------------------\n", e->runs, logs);
    free(logs);
}

struct log_wait {
    struct vg_test_env *e;
    const char *needle;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;
    char *logs = vg_test_env_logs(w->e);
    bool ok = strstr(logs, w->needle) != NULL;

    free(logs);
    return ok;
}

bool vg_test_env_wait_log(struct vg_test_env *e, const char *needle, int timeout_ms)
{
    struct log_wait w = {e, needle};

    if (vg_test_wait_for(log_has, &w, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "env: the log never said \"%s\"\n", needle);
    vg_test_env_dump_logs(e);
    return false;
}

/* "listening on http://127.0.0.1:PORT/" in run `run`'s log: *port set when it is there. */
static void log_port(const struct vg_test_env *e, int run, int *port)
{
    static const char mark[] = "listening on http://127.0.0.1:";
    char *path = vg_test_env_log_path(e, run);
    char *text = vg_test_read_file(path, NULL);
    const char *p = text ? strstr(text, mark) : NULL;
    int64_t v = 0;

    if (p) {
        char num[8] = "";

        p += strlen(mark);
        snprintf(num, sizeof(num), "%.*s", (int)strspn(p, "0123456789"), p);
        if (vg_parse_i64(num, &v)) {
            *port = (int)v;
        }
    }
    free(text);
    free(path);
}

/* The current run's port in its log. */
static bool have_port(void *arg)
{
    struct vg_test_env *e = arg;

    log_port(e, e->runs, &e->port);
    return e->port > 0;
}

static bool is_ready(void *arg)
{
    const struct vg_test_env *e = arg;

    return vg_test_http_ready(e->port);
}

#define RUN_ARGV 7

/* `vigil run -c CONFIG [--debug MODULES]`, NULL-terminated, into argv[RUN_ARGV]. */
static void run_argv(const struct vg_test_env *e, char *argv[RUN_ARGV])
{
    argv[0] = (char *)vg_test_vigil_bin();
    argv[1] = (char *)"run";
    argv[2] = (char *)"-c";
    argv[3] = e->config;
    argv[4] = (char *)(e->opts.debug ? "--debug" : NULL);
    argv[5] = (char *)e->opts.debug;
    argv[6] = NULL;
}

bool vg_test_env_spawn(struct vg_test_env *e)
{
    char *argv[RUN_ARGV];
    char *out = vg_asprintf("%s/vigil-%d.out", e->dir, e->runs + 1);
    char *err = vg_test_env_log_path(e, e->runs + 1);

    run_argv(e, argv);
    e->runs++;
    e->port = 0;
    e->vigil = vg_test_spawn(argv, out, err);
    free(out);
    free(err);
    if (e->vigil <= 0) {
        return false;
    }
    if (!e->opts.http) {
        return true;
    }
    if (!vg_test_wait_for(have_port, e, 30000) || !vg_test_wait_for(is_ready, e, 30000)) {
        fprintf(stderr, "env: vigil never served a ready HTTP API\n");
        vg_test_env_dump_logs(e);
        return false;
    }
    return true;
}

int vg_test_env_kill(struct vg_test_env *e, int sig)
{
    int status;
    char *path;
    char *text;

    if (e->vigil <= 0) {
        return -1;
    }
    status = vg_test_stop(e->vigil, sig, 20000);
    e->vigil = 0;
    path = vg_test_env_log_path(e, e->runs);
    text = vg_test_read_file(path, NULL);
    /* A sanitizer report fails the test whatever the signal. */
    if (text && (strstr(text, "runtime error:") || strstr(text, "Sanitizer"))) {
        e->failed = true;
    }
    if (sig != SIGKILL && status != 0 && !e->unclean_exit_ok) {
        e->failed = true;
    }
    free(text);
    free(path);
    return status;
}

static void *engine_main(void *arg)
{
    struct vg_test_env *e = arg;

    e->engine_err = vg_engine_run(e->engine);
    return NULL;
}

bool vg_test_env_engine_start(struct vg_test_env *e)
{
    struct vg_engine_options opt = {0};
    char errstr[1024];

    vg_config_init(&e->engine_cfg);
    if (vg_config_load_file(&e->engine_cfg, e->config, errstr, sizeof(errstr)) != VG_OK ||
        vg_engine_start(&e->engine, &e->engine_cfg, &opt, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: engine: %s\n", errstr);
        vg_config_fini(&e->engine_cfg);
        return false;
    }
    if (pthread_create(&e->engine_thread, NULL, engine_main, e) != 0) {
        vg_engine_destroy(e->engine);
        e->engine = NULL;
        vg_config_fini(&e->engine_cfg);
        return false;
    }
    return true;
}

vg_err_t vg_test_env_engine_stop(struct vg_test_env *e)
{
    if (!e->engine) {
        return VG_OK;
    }
    vg_engine_request_stop(e->engine);
    pthread_join(e->engine_thread, NULL);
    vg_engine_destroy(e->engine);
    e->engine = NULL;
    vg_config_fini(&e->engine_cfg);
    return e->engine_err;
}

int vg_test_env_stop(struct vg_test_env *e)
{
    int rc = 0;

    if (e->vigil > 0) {
        vg_test_env_kill(e, SIGTERM);
    }
    vg_test_env_engine_stop(e);
    if (e->failed) {
        fprintf(stderr, "env: a run of vigil exited uncleanly or reported a sanitizer error\n");
        vg_test_env_dump_logs(e);
        rc = -1;
    }
    if (stop_more(e) != 0) {
        rc = -1;
    }
    vg_producer_destroy(e->producer);
    vg_state_destroy(e->st);
    vg_http_receiver_stop(e->rcv);
    vg_mock_kafka_stop(e->kafka);
    vg_redis_child_stop(e->redis);
    if (e->dir) {
        vg_test_rmrf(e->dir);
    }
    free(e->name);
    free(e->dir);
    free(e->topic);
    free(e->prefix);
    free(e->group);
    free(e->config);
    free(e->rules);
    free(e->hook_url);
    free(e->redis_url);
    free(e->data_dir);
    memset(e, 0, sizeof(*e));
    return rc;
}

void vg_test_env_produce(struct vg_test_env *e, const char *type, const char *name, const char *ws,
                         const char *status, const char *runtime, const char *time,
                         const char *message)
{
    char *key = vg_asprintf("%s:v1:%s:%s", type, name, ws);
    struct vg_buf b = {0};

    vg_buf_printf(&b,
                  "{\"resource\":{\"type\":\"%s\",\"name\":\"%s\",\"workspace\":\"%s\","
                  "\"owner\":\"iamgroot\"}",
                  type, name, ws);
    if (status) {
        vg_buf_printf(&b, ",\"status\":\"%s\"", status);
    }
    if (runtime) {
        vg_buf_printf(&b, ",\"runtime\":\"%s\"", runtime);
    }
    if (message) {
        vg_buf_printf(&b, ",\"message\":\"%s\"", message);
    }
    /* NULL time: absent (vigil takes the time of receipt). */
    if (time) {
        vg_buf_printf(&b, ",\"time\":\"%s\"", time);
    }
    vg_buf_printf(&b, "}");
    vg_test_env_produce_raw(e, -1, key, b.data, b.len);
    vg_buf_fini(&b);
    free(key);
}

void vg_test_env_produce_workflow_to(struct vg_test_env *e, int32_t partition, const char *name,
                                     const char *runtime)
{
    char *key = vg_asprintf("workflow:v1:%s:public", name);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"workflow\",\"name\":\"%s\","
                             "\"workspace\":\"public\"},\"status\":\"active\",\"runtime\":\"%s\"}",
                             name, runtime);

    vg_test_env_produce_raw(e, partition, key, json, strlen(json));
    free(json);
    free(key);
}

void vg_test_env_produce_raw(struct vg_test_env *e, int32_t partition, const char *key,
                             const void *payload, size_t len)
{
    char errstr[256];

    if (vg_producer_send(e->producer, e->topic, partition, key, key ? strlen(key) : 0, payload, len,
                         errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: produce: %s\n", errstr);
        return;
    }
    e->produced++;
}

static bool applied_all(void *arg)
{
    struct vg_test_env *e = arg;
    char errstr[256];
    int64_t total = 0;

    for (int p = 0; p < e->opts.partitions; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(e->st, e->topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return false;
        }
        total += off + 1;
    }
    return total >= e->produced;
}

bool vg_test_env_wait_applied(struct vg_test_env *e, int timeout_ms)
{
    char errstr[256];

    if (vg_producer_flush(e->producer, vg_test_timeout(10000), errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: flush: %s\n", errstr);
        return false;
    }
    if (vg_test_wait_for(applied_all, e, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "env: vigil did not apply the %lld messages produced\n", e->produced);
    vg_test_env_dump_logs(e);
    return false;
}

bool vg_test_env_wait_requests(struct vg_test_env *e, size_t n, int timeout_ms)
{
    if (vg_http_receiver_wait(e->rcv, n, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "env: the receiver got %zu requests, not %zu\n", vg_http_receiver_count(e->rcv),
            n);
    vg_test_env_dump_logs(e);
    return false;
}

/* -- Timers, the outbox and pages (rules tests) -- */

long vg_test_env_timers(struct vg_test_env *e)
{
    struct vg_offset parts[64];
    struct vg_due_timer *v = NULL;
    size_t n = 0;
    char errstr[256];
    int n_parts = e->opts.partitions < 64 ? e->opts.partitions : 64;

    for (int p = 0; p < n_parts; p++) {
        parts[p].topic = e->topic;
        parts[p].partition = p;
        parts[p].offset = 0;
    }
    if (vg_state_timers_due(e->st, parts, (size_t)n_parts, true, INT64_MAX / 2, 100000, &v, &n,
                            errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: timers: %s\n", errstr);
        return -1;
    }
    vg_due_timers_free(v, n);
    return (long)n;
}

static bool quiet(void *arg)
{
    struct vg_test_env *e = arg;
    char errstr[256];
    int64_t backlog = -1;

    return vg_test_env_timers(e) == 0 &&
           vg_state_outbox_backlog(e->st, &backlog, errstr, sizeof(errstr)) == VG_OK &&
           backlog == 0;
}

bool vg_test_env_wait_quiet(struct vg_test_env *e, int timeout_ms)
{
    if (vg_test_wait_for(quiet, e, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "env: %ld timers left or the outbox not empty\n", vg_test_env_timers(e));
    vg_test_env_dump_logs(e);
    return false;
}

struct cJSON *vg_test_env_request_json(struct vg_test_env *e, size_t i)
{
    struct vg_http_request *req = vg_http_receiver_request(e->rcv, i);
    cJSON *body = req ? cJSON_Parse(req->body) : NULL;

    vg_http_request_free(req);
    return body;
}

int vg_test_env_cli(struct vg_test_env *e, char **out, char **err, const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    int rc;

    argv[n++] = (char *)vg_test_vigil_bin();
    for (size_t i = 0; args[i] && n < VG_ARRAY_LEN(argv) - 3; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n++] = (char *)"-c";
    argv[n++] = e->config;
    argv[n] = NULL;
    rc = vg_test_run(argv, out, err);
    return rc;
}

struct vg_test_http_reply vg_test_http(int port, const char *method, const char *path,
                                       const char *extra_headers, const char *body)
{
    struct vg_buf req = {0};
    struct vg_test_http_reply r;

    vg_buf_printf(&req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s", method, path, port,
                  extra_headers ? extra_headers : "");
    if (body) {
        vg_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    } else {
        vg_buf_printf(&req, "\r\n");
    }
    r = vg_test_http_raw(port, req.data, req.len);
    vg_buf_fini(&req);
    return r;
}

void vg_test_http_reply_free(struct vg_test_http_reply *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- More of the environment: secrets, the HTTP API, metrics, logs, topics -------------- */

void vg_test_env_opts_secured(struct vg_test_env_opts *o)
{
    /* The token in the hook URL is its path without the leading '/'. */
    static const char *const secrets[] = {VG_TEST_ENV_TOKEN, VG_TEST_ENV_HOOK_PATH + 1,
                                          VG_TEST_ENV_REDIS_PASSWORD, NULL};

    o->http = true;
    o->http_token = VG_TEST_ENV_TOKEN;
    o->redis_password = VG_TEST_ENV_REDIS_PASSWORD;
    o->hook_path = VG_TEST_ENV_HOOK_PATH;
    o->secrets = secrets;
}

/* The rules of opts.rules_file, opts.rules or VG_TEST_ENV_RULES into rules.yaml. */
static int write_first_rules(struct vg_test_env *e)
{
    char *text;

    if (!e->opts.rules_file) {
        vg_test_env_write_rules(e, e->opts.rules ? e->opts.rules : VG_TEST_ENV_RULES);
        return 0;
    }
    text = vg_test_read_file(e->opts.rules_file, NULL);
    if (!text) {
        fprintf(stderr, "env: cannot read %s\n", e->opts.rules_file);
        return -1;
    }
    vg_test_env_write_rules(e, text);
    free(text);
    return 0;
}

bool vg_test_env_up(struct vg_test_env *e, const char *name, const struct vg_test_env_opts *o)
{
    if (vg_test_env_start(e, name, o) == 0 && vg_test_env_spawn(e)) {
        return true;
    }
    vg_test_env_stop(e);
    return false;
}

bool vg_test_env_leaks(struct vg_test_env *e, const char *text, const char *what)
{
    for (size_t i = 0; text && e->opts.secrets && e->opts.secrets[i]; i++) {
        if (strstr(text, e->opts.secrets[i])) {
            fprintf(stderr, "env: %s contains the secret \"%s\":\n%s\n", what, e->opts.secrets[i],
                    text);
            e->leaked = true;
            return true;
        }
    }
    return false;
}

/* Every run's stderr and stdout, checked for secrets; the raw connection closed. */
static int stop_more(struct vg_test_env *e)
{
    for (int i = 1; i <= e->runs; i++) {
        static const char *const ext[] = {"err", "out"};

        for (size_t k = 0; k < VG_ARRAY_LEN(ext); k++) {
            char *path = vg_asprintf("%s/vigil-%d.%s", e->dir, i, ext[k]);
            char *text = vg_test_read_file(path, NULL);

            (void)vg_test_env_leaks(e, text, path);
            free(text);
            free(path);
        }
    }
    vg_test_env_redis_close(e);
    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        free(e->more_topic[i]);
        e->more_topic[i] = NULL;
    }
    return e->leaked ? -1 : 0;
}

struct vg_test_http_reply vg_test_http_raw(int port, const char *raw, size_t len)
{
    struct vg_test_http_reply r = {.status = -1};
    struct sockaddr_in sa;
    struct timeval tv = {.tv_sec = 20, .tv_usec = 0};
    struct vg_buf resp = {0};
    char chunk[8192];
    char *sep;
    ssize_t got;
    size_t sent = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return r;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return r;
    }
    while (sent < len) {
        ssize_t w = send(fd, raw + sent, len - sent, MSG_NOSIGNAL);

        if (w <= 0) {
            break; /* refused before the end: the answer may already be there */
        }
        sent += (size_t)w;
    }
    while ((got = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
        vg_buf_append(&resp, chunk, (size_t)got);
    }
    close(fd);
    vg_buf_printf(&resp, "%s", "");
    if (sscanf(resp.data, "HTTP/1.%*d %d", &r.status) != 1) {
        r.status = -1;
        vg_buf_fini(&resp);
        return r;
    }
    sep = strstr(resp.data, "\r\n\r\n");
    if (sep) {
        *sep = '\0';
        r.headers = vg_strdup(resp.data);
        r.body_len = resp.len - (size_t)(sep + 4 - resp.data);
        r.body = vg_malloc(r.body_len + 1);
        memcpy(r.body, sep + 4, r.body_len);
        r.body[r.body_len] = '\0';
    } else {
        r.headers = vg_strdup(resp.data);
        r.body = vg_strdup("");
    }
    vg_buf_fini(&resp);
    return r;
}

/* The reply must hold no secret: headers and body. */
static void check_reply(struct vg_test_env *e, const struct vg_test_http_reply *r, const char *what)
{
    if (!vg_test_env_leaks(e, r->headers, what)) {
        (void)vg_test_env_leaks(e, r->body, what);
    }
}

struct vg_test_http_reply vg_test_env_http(struct vg_test_env *e, const char *method,
                                           const char *path, const char *extra_headers,
                                           const char *body)
{
    struct vg_test_http_reply r = vg_test_http(e->port, method, path, extra_headers, body);
    char *what = vg_asprintf("the reply to %s %.80s", method, path);

    check_reply(e, &r, what);
    free(what);
    return r;
}

struct vg_test_http_reply vg_test_env_http_raw(struct vg_test_env *e, const char *raw, size_t len)
{
    struct vg_test_http_reply r = vg_test_http_raw(e->port, raw, len);
    char *what = vg_asprintf("the reply to %.60s", raw);

    check_reply(e, &r, what);
    free(what);
    return r;
}

int vg_test_env_run_cli(struct vg_test_env *e, char **out, char **err, const char *arg, ...)
{
    const char *args[16];
    size_t n = 0;
    va_list ap;

    va_start(ap, arg);
    for (const char *a = arg; a && n < VG_ARRAY_LEN(args) - 1; a = va_arg(ap, const char *)) {
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return vg_test_env_cli(e, out, err, args);
}

const char *vg_test_http_header(const struct vg_test_http_reply *r, const char *name)
{
    static char value[1024];
    size_t nl = strlen(name);

    /* Each header line starts after a "\r\n"; the status line comes first. */
    for (const char *p = r->headers ? strstr(r->headers, "\r\n") : NULL; p;
         p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;

        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            line += nl + 1;
            line += strspn(line, " ");
            snprintf(value, sizeof(value), "%.*s", (int)strcspn(line, "\r\n"), line);
            return value;
        }
    }
    return NULL;
}

int vg_test_env_dial(struct vg_test_env *e, const char *src)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    if (src) {
        struct sockaddr_in me;

        memset(&me, 0, sizeof(me));
        me.sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
            close(fd);
            return -1;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)e->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

double vg_test_metric_sample(const char *text, const char *series)
{
    size_t sl = strlen(series);

    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');

        if (!strncmp(p, series, sl) && p[sl] == ' ') {
            return strtod(p + sl + 1, NULL);
        }
        p = eol ? eol + 1 : NULL;
    }
    return -1;
}

double vg_test_env_metric(struct vg_test_env *e, const char *series)
{
    struct vg_test_http_reply r = vg_test_env_http(e, "GET", "/metrics", NULL, NULL);
    double v = r.status == 200 ? vg_test_metric_sample(r.body, series) : -1;

    vg_test_http_reply_free(&r);
    return v;
}

double vg_test_metric_at(int port, const char *series)
{
    struct vg_test_http_reply r = vg_test_http(port, "GET", "/metrics", NULL, NULL);
    double v = r.status == 200 ? vg_test_metric_sample(r.body, series) : -1;

    vg_test_http_reply_free(&r);
    return v;
}

struct metric_wait {
    struct vg_test_env *e;
    const char *series;
    double min;
};

static bool metric_reached(void *arg)
{
    struct metric_wait *w = arg;

    return vg_test_env_metric(w->e, w->series) >= w->min;
}

bool vg_test_env_wait_metric(struct vg_test_env *e, const char *series, double min, int timeout_ms)
{
    struct metric_wait w = {e, series, min};
    struct vg_test_http_reply r;

    if (vg_test_wait_for(metric_reached, &w, timeout_ms)) {
        return true;
    }
    r = vg_test_env_http(e, "GET", "/metrics", NULL, NULL);
    fprintf(stderr, "env: %s never reached %g; /metrics:\n%s\n", series, min,
            r.body ? r.body : "(no answer)");
    vg_test_http_reply_free(&r);
    return false;
}

char *vg_test_env_page_string(struct vg_test_env *e, size_t i, const char *object, const char *key,
                              int timeout_ms)
{
    struct vg_http_request *req;
    cJSON *body;
    const cJSON *v;
    char *out = NULL;

    if (!vg_test_env_wait_requests(e, i + 1, timeout_ms)) {
        return NULL;
    }
    req = vg_http_receiver_request(e->rcv, i);
    body = req ? cJSON_Parse(req->body) : NULL;
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, object), key);
    if (cJSON_IsString(v)) {
        out = vg_strdup(v->valuestring);
    } else {
        fprintf(stderr, "env: request %zu has no %s.%s: %s\n", i, object, key,
                req ? req->body : "(none)");
    }
    cJSON_Delete(body);
    vg_http_request_free(req);
    return out;
}

bool vg_test_env_page_is(struct vg_test_env *e, size_t i, const char *object, const char *key,
                         const char *want, int timeout_ms)
{
    char *got = vg_test_env_page_string(e, i, object, key, timeout_ms);
    bool ok = got && !strcmp(got, want);

    if (got && !ok) {
        fprintf(stderr, "env: request %zu has %s.%s \"%s\", not \"%s\"\n", i, object, key, got,
                want);
    }
    free(got);
    return ok;
}

bool vg_test_env_log_has(struct vg_test_env *e, const char *needle)
{
    struct log_wait w = {e, needle};

    return log_has(&w);
}

char *vg_test_env_run_log(const struct vg_test_env *e)
{
    char *path = vg_test_env_log_path(e, e->runs);
    char *text = vg_test_read_file(path, NULL);

    free(path);
    return text ? text : vg_strdup("");
}

bool vg_test_env_spawn_with(struct vg_test_env *e, const char *rules, const char *sinks)
{
    vg_test_env_write_rules(e, rules);
    e->opts.sinks = sinks;
    vg_test_env_write_config(e);
    return vg_test_env_spawn(e);
}

void vg_test_env_produce_to(struct vg_test_env *e, const char *topic, int32_t partition,
                            const char *key, const void *payload, size_t len)
{
    char errstr[256];
    long long *count = &e->produced;

    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        if (e->more_topic[i] && !strcmp(topic, e->more_topic[i])) {
            count = &e->more_produced[i];
        }
    }
    if (vg_producer_send(e->producer, topic, partition, key, key ? strlen(key) : 0, payload, len,
                         errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: produce: %s\n", errstr);
        return;
    }
    (*count)++;
}

bool vg_test_env_flush(struct vg_test_env *e)
{
    char errstr[256];

    if (vg_producer_flush(e->producer, vg_test_timeout(10000), errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: flush: %s\n", errstr);
        return false;
    }
    return true;
}

/* Sum of (applied offset + 1) over the partitions of `topic`; -1 when Redis does not answer. */
static int64_t applied_total(struct vg_test_env *e, const char *topic, int partitions)
{
    char errstr[256];
    int64_t total = 0;

    for (int p = 0; p < partitions; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(e->st, topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return -1;
        }
        total += off + 1;
    }
    return total;
}

static bool applied_exactly(void *arg)
{
    struct vg_test_env *e = arg;

    if (applied_total(e, e->topic, e->opts.partitions) != e->produced) {
        return false;
    }
    for (int i = 0; i < VG_TEST_ENV_MORE_TOPICS; i++) {
        const struct vg_test_env_topic *t = &e->opts.more_topics[i];

        if (e->more_topic[i] &&
            applied_total(e, e->more_topic[i], t->partitions > 0 ? t->partitions : 1) !=
                e->more_produced[i]) {
            return false;
        }
    }
    return true;
}

bool vg_test_env_wait_applied_exact(struct vg_test_env *e, int timeout_ms)
{
    if (!vg_test_env_flush(e)) {
        return false;
    }
    if (vg_test_wait_for(applied_exactly, e, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "env: the applied offsets of %s are not exactly the %lld messages produced\n",
            e->topic, e->produced);
    vg_test_env_dump_logs(e);
    return false;
}

bool vg_test_env_new_cluster(struct vg_test_env *e)
{
    vg_producer_destroy(e->producer);
    e->producer = NULL;
    vg_mock_kafka_stop(e->kafka);
    e->kafka = NULL;
    e->produced = 0;
    memset(e->more_produced, 0, sizeof(e->more_produced));
    if (start_cluster(e) != 0) {
        return false;
    }
    vg_test_env_write_config(e);
    return true;
}

/* ---- State tests: Redis over TCP, restarts, counting log lines, the embedded Redis ---- */

/* The environment's redis-server (none with opts.embedded_redis) and the URL vigil is given. */
static int start_redis(struct vg_test_env *e, const struct vg_redis_child_opts *ro)
{
    struct vg_redis_child_opts o = *ro;
    char errstr[512];

    if (e->opts.embedded_redis) {
        e->data_dir = vg_asprintf("%s/data", e->dir);
        e->redis_url = vg_asprintf("unix://%s/redis.sock", e->data_dir);
        return 0;
    }
    if (e->opts.redis_cluster_url) {
        e->redis_url = vg_strdup(e->opts.redis_cluster_url);
        return 0;
    }
    if (e->opts.redis_tcp) {
        e->redis_port = vg_test_free_port();
        o.tcp_port = e->redis_port;
    }
    if (vg_redis_child_start_opts(&e->redis, e->dir, &o, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: redis-server: %s\n", errstr);
        return -1;
    }
    if (e->opts.redis_tcp) {
        e->redis_url = vg_asprintf("redis://%s%s%s127.0.0.1:%d/%d", o.password ? ":" : "",
                                   o.password ? o.password : "", o.password ? "@" : "",
                                   e->redis_port, e->opts.redis_db);
    }
    return 0;
}

static const char *redis_url(const struct vg_test_env *e)
{
    return e->redis_url ? e->redis_url : vg_redis_child_url(e->redis);
}

/* The redis section's line that says where Redis is (a static buffer). */
static const char *redis_location(const struct vg_test_env *e)
{
    static char line[1024];

    if (e->opts.embedded_redis) {
        snprintf(line, sizeof(line), "  data_dir: %s\n", e->data_dir);
    } else {
        snprintf(line, sizeof(line), "  url: \"${VIGIL_TEST_REDIS_URL}\"\n");
    }
    return line;
}

struct vg_state *vg_test_env_state(struct vg_test_env *e)
{
    char errstr[512];

    if (!e->st) {
        if (env_state_connect(e, errstr, sizeof(errstr)) != VG_OK) {
            return NULL;
        }
        return e->st;
    }
    /* On a cluster PING answers on a node that lost vigil's slot: follow the slot always. */
    if ((e->opts.redis_cluster_url || vg_state_ping(e->st) != VG_OK) &&
        vg_state_reconnect(e->st, errstr, sizeof(errstr)) != VG_OK) {
        return NULL;
    }
    return e->st;
}

struct redis_gone {
    struct vg_test_env *e;
};

static bool redis_exited(void *arg)
{
    struct redis_gone *g = arg;
    char how[128];

    return vg_redis_child_exited(g->e->redis, how, sizeof(how));
}

void vg_test_env_redis_kill(struct vg_test_env *e, int sig)
{
    struct redis_gone g = {e};

    vg_test_env_redis_close(e);
    if (kill(vg_redis_child_pid(e->redis), sig) != 0 ||
        !vg_test_wait_for(redis_exited, &g, 10000)) {
        fprintf(stderr, "env: redis-server pid %d did not go away\n", vg_redis_child_pid(e->redis));
    }
}

bool vg_test_env_redis_restart(struct vg_test_env *e)
{
    char errstr[512];

    if (vg_redis_child_restart(e->redis, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_reconnect(e->st, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "env: redis restart: %s\n", errstr);
        return false;
    }
    return true;
}

size_t vg_test_env_log_size(const struct vg_test_env *e)
{
    char *logs = vg_test_env_logs(e);
    size_t len = strlen(logs);

    free(logs);
    return len;
}

int vg_test_env_log_count(const struct vg_test_env *e, size_t from, const char *needle)
{
    char *logs = vg_test_env_logs(e);
    int n = 0;

    for (const char *p = from < strlen(logs) ? logs + from : NULL; p && (p = strstr(p, needle));
         p += strlen(needle)) {
        n++;
    }
    free(logs);
    return n;
}

char *vg_test_env_log_line(const struct vg_test_env *e, size_t from, const char *needle)
{
    char *logs = vg_test_env_logs(e);
    char *hit = from < strlen(logs) ? strstr(logs + from, needle) : NULL;
    char *line = NULL;

    if (hit) {
        char *bol = hit;
        char *eol = strchr(hit, '\n');

        while (bol > logs && bol[-1] != '\n') {
            bol--;
        }
        line = vg_asprintf("%.*s", (int)(eol ? eol - bol : (ptrdiff_t)strlen(bol)), bol);
    }
    free(logs);
    return line;
}

struct log_count_wait {
    struct vg_test_env *e;
    size_t from;
    const char *needle;
    int want;
};

static bool log_count_reached(void *arg)
{
    struct log_count_wait *w = arg;

    return vg_test_env_log_count(w->e, w->from, w->needle) >= w->want;
}

bool vg_test_env_wait_log_count(struct vg_test_env *e, size_t from, const char *needle, int want,
                                int timeout_ms)
{
    struct log_count_wait w = {e, from, needle, want};

    if (vg_test_wait_for(log_count_reached, &w, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "env: the log never said \"%s\" %d times\n", needle, want);
    vg_test_env_dump_logs(e);
    return false;
}

bool vg_test_env_running(struct vg_test_env *e)
{
    int status;

    return e->vigil > 0 && waitpid(e->vigil, &status, WNOHANG) == 0;
}

/* ---- cmocka fixtures ---- */

int vg_test_env_setup(void **state)
{
    struct vg_test_env_case *c = *state;

    return vg_test_env_start(c->env, c->name, &c->opts);
}

int vg_test_env_teardown(void **state)
{
    struct vg_test_env_case *c = *state;

    return vg_test_env_stop(c->env);
}

/* ---- Scale-out: more instances of vigil in one group, process memory ---- */

struct instance_port {
    struct vg_test_env *e;
    int run;
    int port;
};

/* The port in run `run`'s log. */
static bool instance_has_port(void *arg)
{
    struct instance_port *ip = arg;

    log_port(ip->e, ip->run, &ip->port);
    return ip->port > 0;
}

pid_t vg_test_env_spawn_instance(struct vg_test_env *e, const char *instance, int *port_out)
{
    char *argv[RUN_ARGV];
    struct instance_port ip = {e, 0, 0};
    char *out;
    char *err;
    pid_t pid;

    run_argv(e, argv);
    e->runs++;
    ip.run = e->runs;
    out = vg_asprintf("%s/vigil-%d.out", e->dir, e->runs);
    err = vg_test_env_log_path(e, e->runs);
    setenv("VIGIL_INSTANCE", instance, 1);
    pid = vg_test_spawn(argv, out, err);
    unsetenv("VIGIL_INSTANCE");
    free(out);
    free(err);
    if (port_out) {
        *port_out = 0;
    }
    if (pid <= 0) {
        fprintf(stderr, "env: cannot spawn instance %s\n", instance);
        return -1;
    }
    if (e->opts.http) {
        if (!vg_test_wait_for(instance_has_port, &ip, 30000)) {
            fprintf(stderr, "env: instance %s never served its HTTP API\n", instance);
            vg_test_env_dump_logs(e);
            vg_test_stop(pid, SIGKILL, 5000);
            return -1;
        }
        if (port_out) {
            *port_out = ip.port;
        }
    }
    return pid;
}

int vg_test_env_stop_instance(struct vg_test_env *e, pid_t pid, int sig)
{
    int status = vg_test_stop(pid, sig, 20000);
    char *logs = vg_test_env_logs(e);

    /* A sanitizer report in any run's log fails the test whatever the signal. */
    if (strstr(logs, "runtime error:") || strstr(logs, "Sanitizer")) {
        e->failed = true;
    }
    free(logs);
    if (sig != SIGKILL && status != 0 && !e->unclean_exit_ok) {
        fprintf(stderr, "env: instance pid %d exited with %d after signal %d\n", (int)pid, status,
                sig);
        e->failed = true;
    }
    return status;
}

bool vg_test_http_ready(int port)
{
    struct vg_test_http_reply r = vg_test_http(port, "GET", "/readyz", NULL, NULL);
    bool ok = r.status == 200;

    vg_test_http_reply_free(&r);
    return ok;
}

static bool http_ready(void *arg)
{
    return vg_test_http_ready(*(const int *)arg);
}

bool vg_test_wait_http_ready(int port, int timeout_ms)
{
    return vg_test_wait_for(http_ready, &port, timeout_ms);
}

int vg_test_instances_setup(void **state)
{
    struct vg_test_instances_case *c = *state;

    vg_test_no_proxy();
    return vg_test_env_start(c->env.env, c->env.name, &c->env.opts);
}

int vg_test_instances_teardown(void **state)
{
    struct vg_test_instances_case *c = *state;

    c->env.env->unclean_exit_ok = true; /* the SIGKILLs below */
    for (size_t i = 0; i < VG_TEST_CASE_INSTANCES; i++) {
        pid_t *pid = c->pids[i];

        if (pid && *pid > 0) {
            vg_test_env_stop_instance(c->env.env, *pid, SIGKILL);
        }
        if (pid) {
            *pid = 0;
        }
    }
    return vg_test_env_stop(c->env.env);
}

long vg_test_proc_kb(pid_t pid, const char *field)
{
    char path[64];
    char *text;
    const char *p;
    long kb = -1;
    size_t fl = strlen(field);

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    text = vg_test_read_file(path, NULL);
    for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
            const char *v = p + fl + 1 + strspn(p + fl + 1, " \t");
            char num[24] = "";
            int64_t x;

            snprintf(num, sizeof(num), "%.*s", (int)strspn(v, "0123456789"), v);
            if (vg_parse_i64(num, &x)) {
                kb = (long)x;
            }
            break;
        }
    }
    free(text);
    return kb;
}

/* ---- A Redis Cluster ---- */

/* e->st as vigil connects: on a cluster and in the layout of the redis section vigil is given. */
static vg_err_t env_state_connect(struct vg_test_env *e, char *errstr, size_t errstr_size)
{
    struct vg_redis_config rc = {0};

    rc.prefix = e->prefix;
    rc.cluster = e->opts.redis_cluster_url != NULL;
    rc.partitioned = e->opts.layout && strcmp(e->opts.layout, "partitioned") == 0;
    return vg_state_connect_config(&e->st, redis_url(e), e->prefix, &rc, errstr, errstr_size);
}
