/*
 * The running daemon behind the HTTP API tests (test_api_harness.h): real
 * redis-server (password set), mock Kafka, a webhook receiver, the real
 * vigil binary, and a raw HTTP/1.0 client that checks every reply for
 * the configured secrets.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "support.h"
#include "test_api_harness.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static const char *const secrets[] = {API_TEST_TOKEN, API_TEST_HOOK_PATH + 1,
                                      API_TEST_REDIS_PASSWORD};

static const char rules_yaml[] =
    "monitors:\n"
    "  - name: workflow-failed\n"
    "    match: {type: [workflow]}\n"
    "    when: {runtime: {to: failed}}\n"
    "    severity: high\n"
    "    summary: \"{{resource.name}} failed in {{resource.workspace}}\"\n"
    "pagers:\n"
    "  - name: ops\n"
    "    match: {severity: [high, critical]}\n"
    "    sinks: [ops]\n";

void api_env_dump_log(struct api_env *e)
{
    char *log = vg_asprintf("%s/vigil.err", e->dir);
    char *text = vg_test_read_file(log, NULL);

    fprintf(stderr, "---- vigil's log ----\n%s\n---------------------\n", text ? text : "(none)");
    free(text);
    free(log);
}

/* "listening on http://127.0.0.1:PORT/" in vigil's log. */
static bool have_port(void *arg)
{
    struct api_env *e = arg;
    char *log = vg_asprintf("%s/vigil.err", e->dir);
    char *text = vg_test_read_file(log, NULL);
    const char *p = text ? strstr(text, "listening on http://127.0.0.1:") : NULL;
    int64_t port = 0;

    if (p) {
        char num[8] = "";
        p += strlen("listening on http://127.0.0.1:");
        snprintf(num, sizeof(num), "%.*s", (int)strspn(p, "0123456789"), p);
        if (vg_parse_i64(num, &port)) {
            e->port = (int)port;
        }
    }
    free(text);
    free(log);
    return e->port > 0;
}

static bool is_ready(void *arg)
{
    struct api_env *e = arg;
    struct api_reply r = api_http(e, "GET", "/readyz", NULL, NULL);
    bool ok = r.status == 200;

    api_reply_free(&r);
    return ok;
}

int api_env_setup(struct api_env *e, const char *name)
{
    return api_env_setup_with(e, name, NULL);
}

int api_env_setup_with(struct api_env *e, const char *name, const char *http_extra)
{
    struct vg_redis_child_opts ro = {.password = API_TEST_REDIS_PASSWORD};
    char errstr[512];
    char *url;
    char *cfg;

    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    e->partitions = 2;
    e->dir = vg_test_mkdtemp(name);
    e->topic = vg_asprintf("%s.events.%d", name, (int)getpid());
    e->prefix = vg_asprintf("%s%d", name, (int)getpid());
    if (vg_redis_child_start_opts(&e->redis, e->dir, &ro, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&e->kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(e->kafka, e->topic, e->partitions, errstr, sizeof(errstr)) !=
            VG_OK ||
        vg_mock_kafka_create_topic(e->kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    e->rcv = vg_http_receiver_start();
    if (!e->rcv) {
        return -1;
    }
    if (vg_producer_new(&e->producer, vg_mock_kafka_bootstraps(e->kafka), NULL, 0, errstr,
                        sizeof(errstr)) != VG_OK ||
        vg_state_connect(&e->st, vg_redis_child_url(e->redis), e->prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    e->rules = vg_asprintf("%s/rules.yaml", e->dir);
    vg_test_write_file(e->rules, rules_yaml, strlen(rules_yaml));
    url = vg_http_receiver_url(e->rcv, API_TEST_HOOK_PATH);
    setenv("API7_HOOK_URL", url, 1);
    setenv("API7_REDIS_URL", vg_redis_child_url(e->redis), 1);
    setenv("API7_TOKEN", API_TEST_TOKEN, 1);
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: %s-%d\n"
                      "  topics: [%s]\n"
                      "  batch_ms: 20\n"
                      "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                      "\"500\"}\n"
                      "redis:\n"
                      "  url: \"${API7_REDIS_URL}\"\n"
                      "  prefix: %s\n"
                      "rules: [%s]\n"
                      "sinks:\n"
                      "  ops: {type: webhook, url: \"${API7_HOOK_URL}\", max_attempts: 2}\n"
                      "http:\n"
                      "  listen: 127.0.0.1:0\n"
                      "  token: \"${API7_TOKEN}\"\n"
                      "%s",
                      vg_mock_kafka_bootstraps(e->kafka), name, (int)getpid(), e->topic, e->prefix,
                      e->rules, http_extra ? http_extra : "");
    e->config = vg_asprintf("%s/vigil.yaml", e->dir);
    vg_test_write_file(e->config, cfg, strlen(cfg));
    free(url);
    free(cfg);
    {
        char *out = vg_asprintf("%s/vigil.out", e->dir);
        char *err = vg_asprintf("%s/vigil.err", e->dir);
        char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", e->config, NULL};
        e->vigil = vg_test_spawn(argv, out, err);
        free(out);
        free(err);
    }
    if (e->vigil <= 0 || !vg_test_wait_for(have_port, e, 20000)) {
        fprintf(stderr, "vigil did not start its HTTP server\n");
        api_env_dump_log(e);
        return -1;
    }
    snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%d", e->port);
    if (!vg_test_wait_for(is_ready, e, 30000)) {
        fprintf(stderr, "vigil never became ready\n");
        api_env_dump_log(e);
        return -1;
    }
    return 0;
}

int api_env_teardown(struct api_env *e)
{
    int rc = 0;

    if (e->vigil > 0) {
        int status = vg_test_stop(e->vigil, SIGTERM, 15000);
        char *log = vg_asprintf("%s/vigil.err", e->dir);
        char *text = vg_test_read_file(log, NULL);

        /* A sanitizer report in the daemon fails the test, as does an unclean exit. */
        if ((text && (strstr(text, "runtime error:") || strstr(text, "Sanitizer"))) ||
            (status != 0 && !e->unclean_exit_ok)) {
            fprintf(stderr, "vigil exited with %d\n", status);
            api_env_dump_log(e);
            rc = -1;
        }
        free(text);
        free(log);
    }
    vg_producer_destroy(e->producer);
    vg_state_destroy(e->st);
    vg_http_receiver_stop(e->rcv);
    vg_mock_kafka_stop(e->kafka);
    vg_redis_child_stop(e->redis);
    vg_test_rmrf(e->dir);
    free(e->dir);
    free(e->topic);
    free(e->prefix);
    free(e->config);
    free(e->rules);
    memset(e, 0, sizeof(*e));
    return rc;
}

void api_env_produce(struct api_env *e, const char *type, const char *name, const char *ws,
                     const char *status, const char *runtime, const char *time, const char *message)
{
    char errstr[256];
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
    vg_buf_printf(&b, ",\"time\":\"%s\"}", time);
    assert_int_equal(vg_producer_send(e->producer, e->topic, -1, key, strlen(key), b.data, b.len,
                                      errstr, sizeof(errstr)),
                     VG_OK);
    e->produced++;
    vg_buf_fini(&b);
    free(key);
}

void api_env_produce_raw(struct api_env *e, const char *payload)
{
    char errstr[256];

    assert_int_equal(vg_producer_send(e->producer, e->topic, 0, NULL, 0, payload, strlen(payload),
                                      errstr, sizeof(errstr)),
                     VG_OK);
    e->produced++;
}

static bool applied_all(void *arg)
{
    struct api_env *e = arg;
    char errstr[256];
    int64_t total = 0;

    for (int p = 0; p < e->partitions; p++) {
        int64_t off = -1;
        if (vg_state_applied_offset(e->st, e->topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return false;
        }
        total += off + 1;
    }
    return total == e->produced;
}

void api_env_wait_applied(struct api_env *e)
{
    char errstr[256];

    assert_int_equal(vg_producer_flush(e->producer, 10000, errstr, sizeof(errstr)), VG_OK);
    if (!vg_test_wait_for(applied_all, e, 30000)) {
        api_env_dump_log(e);
        fail_msg("vigil did not apply the %lld events produced", e->produced);
    }
}

bool api_env_log_has(struct api_env *e, const char *needle)
{
    char *log = vg_asprintf("%s/vigil.err", e->dir);
    char *text = vg_test_read_file(log, NULL);
    bool found = text && strstr(text, needle);

    free(text);
    free(log);
    return found;
}

double api_env_metric(struct api_env *e, const char *series)
{
    struct api_reply r = api_http(e, "GET", "/metrics", NULL, NULL);
    size_t sl = strlen(series);
    double v = -1;

    assert_int_equal(r.status, 200);
    for (const char *p = r.body; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncmp(p, series, sl) && p[sl] == ' ') {
            v = strtod(p + sl + 1, NULL);
            break;
        }
        p = eol ? eol + 1 : NULL;
    }
    api_reply_free(&r);
    return v;
}

/* ---- the HTTP client --------------------------------------------------------------- */

struct api_reply api_http(struct api_env *e, const char *method, const char *path,
                          const char *extra, const char *body)
{
    struct api_reply r = {0};
    struct sockaddr_in sa;
    struct timeval tv = {.tv_sec = 20, .tv_usec = 0};
    struct vg_buf req = {0};
    struct vg_buf resp = {0};
    char chunk[8192];
    char *sep;
    ssize_t got;
    size_t sent = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)e->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        r.status = -1;
        return r;
    }
    vg_buf_printf(&req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s", method, path, e->port,
                  extra ? extra : "");
    if (body) {
        vg_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    }
    vg_buf_puts(&req, "\r\n");
    if (body) {
        vg_buf_puts(&req, body);
    }
    while (sent < req.len) {
        ssize_t w = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);
        if (w <= 0) {
            break;
        }
        sent += (size_t)w;
    }
    while ((got = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
        vg_buf_append(&resp, chunk, (size_t)got);
    }
    close(fd);
    vg_buf_fini(&req);
    if (!resp.data || sscanf(resp.data, "HTTP/1.%*d %d", &r.status) != 1) {
        r.status = -1;
        vg_buf_fini(&resp);
        return r;
    }
    sep = strstr(resp.data, "\r\n\r\n");
    assert_non_null(sep);
    r.headers = vg_strndup(resp.data, (size_t)(sep - resp.data) + 2);
    for (char *p = r.headers; *p; p++) {
        /* lower-case the names (up to each ':') so lookups are simple */
        char *colon = strchr(p, ':');
        char *eol = strstr(p, "\r\n");
        if (!eol) {
            break;
        }
        for (char *q = p; colon && q < colon && q < eol; q++) {
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        }
        p = eol + 1;
    }
    r.body = vg_strdup(sep + 4);
    for (size_t i = 0; i < VG_ARRAY_LEN(secrets); i++) {
        if (strstr(resp.data, secrets[i])) {
            fail_msg("%s %s: the response contains the secret \"%s\":\n%s", method, path,
                     secrets[i], resp.data);
        }
    }
    vg_buf_fini(&resp);
    return r;
}

void api_reply_free(struct api_reply *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

const char *api_reply_header(const struct api_reply *r, const char *name)
{
    static char value[1024];
    char *needle = vg_asprintf("\r\n%s:", name);
    const char *p = r->headers ? strstr(r->headers, needle) : NULL;

    free(needle);
    if (!p) {
        return NULL;
    }
    p += strlen(name) + 3;
    while (*p == ' ') {
        p++;
    }
    snprintf(value, sizeof(value), "%.*s", (int)strcspn(p, "\r\n"), p);
    return value;
}
