/*
 * Redis AUTH and DB index end to end, against a private
 * redis-server started with requirepass and a 127.0.0.1 TCP port
 * (vg_redis_child_start_opts): `vigil run` applies events from the mock
 * Kafka cluster into db 5 through redis://:PASSWORD@127.0.0.1:PORT/5,
 * `vigil get` reads them back there and only there; an ACL user works;
 * a wrong or missing password and an unreachable server exit 2 naming the
 * URL with the password redacted and the reason; `vigil check` warns
 * (exit 0) about a rediss:// URL. The password never appears in output.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define PASSWORD "s3cr3t-Pw-42"
#define PARTITIONS 2

struct fixture {
    char *dir;
    struct vg_redis_child *rc;
    struct vg_mock_kafka *kafka;
    int port;
    char *url_db5; /* redis://:PASSWORD@127.0.0.1:PORT/5 */
    char *topic;
    char *prefix;
    pid_t vigil;
};

static struct fixture fx;

/* A free port on 127.0.0.1 (bound, read, released: redis-server takes it next). */
static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int setup(void **state)
{
    struct vg_redis_child_opts opts = {PASSWORD, 0};
    char errstr[512];

    (void)state;
    memset(&fx, 0, sizeof(fx));
    signal(SIGPIPE, SIG_IGN);
    fx.dir = vg_test_mkdtemp("state3-auth");
    fx.port = free_port();
    opts.tcp_port = fx.port;
    if (vg_redis_child_start_opts(&fx.rc, fx.dir, &opts, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    fx.url_db5 = vg_asprintf("redis://:%s@127.0.0.1:%d/5", PASSWORD, fx.port);
    fx.topic = vg_asprintf("auth.events.%d", (int)getpid());
    fx.prefix = vg_asprintf("auth%d", (int)getpid());
    if (vg_mock_kafka_start(&fx.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(fx.kafka, fx.topic, PARTITIONS, errstr, sizeof(errstr)) !=
            VG_OK ||
        vg_mock_kafka_create_topic(fx.kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.vigil > 0) {
        vg_test_stop(fx.vigil, SIGTERM, 15000);
    }
    vg_mock_kafka_stop(fx.kafka);
    vg_redis_child_stop(fx.rc);
    vg_test_rmrf(fx.dir);
    free(fx.dir);
    free(fx.url_db5);
    free(fx.topic);
    free(fx.prefix);
    return 0;
}

/* Run vigil with the given arguments; returns the exit code, stdout and stderr in out and err. */
static int run(char **out, char **err, ...)
{
    char *argv[24];
    size_t argc = 0;
    const char *a;
    va_list ap;

    argv[argc++] = (char *)vg_test_vigil_bin();
    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return vg_test_run(argv, out, err);
}

static void assert_no_password(const char *text)
{
    if (strstr(text, PASSWORD)) {
        fprintf(stderr, "the password leaked:\n%s\n", text);
    }
    assert_null(strstr(text, PASSWORD));
}

static void produce(struct vg_producer *p, const char *name, const char *status,
                    const char *runtime, const char *time)
{
    char errstr[256];
    char *key = vg_asprintf("service:v1:%s:prod", name);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"%s\",\"workspace\":"
                             "\"prod\",\"owner\":\"ops\"},\"status\":\"%s\",\"runtime\":\"%s\","
                             "\"time\":\"%s\"}",
                             name, status, runtime, time);

    assert_int_equal(vg_producer_send(p, fx.topic, -1, key, strlen(key), json, strlen(json), errstr,
                                      sizeof(errstr)),
                     VG_OK);
    free(key);
    free(json);
}

struct applied_arg {
    struct vg_state *st;
    int64_t want;
};

static bool all_applied(void *arg)
{
    struct applied_arg *a = arg;
    char errstr[256];
    int64_t total = 0;

    for (int p = 0; p < PARTITIONS; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(a->st, fx.topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return false;
        }
        total += off + 1;
    }
    return total == a->want;
}

static void test_run_and_get_with_auth_and_db(void **state)
{
    struct vg_producer *p = NULL;
    struct vg_state *st = NULL;
    struct applied_arg arg;
    char errstr[512];
    char *config;
    char *cfg_path;
    char *log_path;
    char *out_path;
    char *out = NULL;
    char *err = NULL;
    char *url_db0;
    cJSON *arr;
    int rc;
    (void)state;

    /* A wrong password on connect is a config error, named without the password. */
    {
        char *bad = vg_asprintf("redis://:wrong-%s@127.0.0.1:%d/5", PASSWORD, fx.port);

        assert_int_equal(vg_state_connect(&st, bad, fx.prefix, errstr, sizeof(errstr)),
                         VG_ERR_INVALID);
        assert_no_password(errstr);
        free(bad);
    }

    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(fx.kafka), NULL, 0, errstr, sizeof(errstr)),
        VG_OK);
    produce(p, "api", "active", "running", "2026-11-28T10:00:00Z");
    produce(p, "db", "active", "pending", "2026-11-28T10:00:00Z");
    produce(p, "api", "error", "running", "2026-11-28T10:05:00Z");
    assert_int_equal(vg_producer_flush(p, 10000, errstr, sizeof(errstr)), VG_OK);
    vg_producer_destroy(p);

    config = vg_asprintf("kafka:\n"
                         "  brokers: %s\n"
                         "  group: auth-%d\n"
                         "  topics: [%s]\n"
                         "  batch_ms: 20\n"
                         "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                         "\"500\"}\n"
                         "redis:\n"
                         "  url: \"${AUTH_REDIS_URL}\"\n"
                         "  prefix: %s\n"
                         "rules: [%s/e2e/rules.yaml]\n"
                         "sinks:\n"
                         "  ops: {type: console}\n",
                         vg_mock_kafka_bootstraps(fx.kafka), (int)getpid(), fx.topic, fx.prefix,
                         VG_FIXTURES);
    setenv("AUTH_REDIS_URL", fx.url_db5, 1);
    cfg_path = vg_asprintf("%s/vigil.yaml", fx.dir);
    assert_true(vg_test_write_file(cfg_path, config, strlen(config)));
    log_path = vg_asprintf("%s/vigil.err", fx.dir);
    out_path = vg_asprintf("%s/vigil.out", fx.dir);
    {
        char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", cfg_path, NULL};

        fx.vigil = vg_test_spawn(argv, out_path, log_path);
        assert_true(fx.vigil > 0);
    }

    /* vigil wrote into db 5 of the password-protected server. */
    assert_int_equal(vg_state_connect(&st, fx.url_db5, fx.prefix, errstr, sizeof(errstr)), VG_OK);
    arg.st = st;
    arg.want = 3;
    if (!vg_test_wait_for(all_applied, &arg, 30000)) {
        char *text = vg_test_read_file(log_path, NULL);

        fprintf(stderr, "vigil did not apply; its log:\n%s\n", text ? text : "");
        free(text);
        fail();
    }
    assert_int_equal(vg_test_stop(fx.vigil, SIGTERM, 20000), 0);
    fx.vigil = 0;

    rc = run(&out, &err, "get", "--redis", fx.url_db5, "--prefix", fx.prefix, "-o", "json", NULL);
    if (rc != 0) {
        fprintf(stderr, "get: %s\n", err);
    }
    assert_int_equal(rc, 0);
    arr = cJSON_Parse(out);
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "id")->valuestring,
                        "service:v1:api:prod");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "status")->valuestring,
                        "error");
    cJSON_Delete(arr);
    free(out);
    free(err);

    /* The same config read through `get -c`, and history over AUTH. */
    rc = run(&out, &err, "history", "-c", cfg_path, "-o", "json", "service:v1:api:prod", NULL);
    assert_int_equal(rc, 0);
    arr = cJSON_Parse(out);
    /* status ""->active, runtime ""->running, health ""->healthy, status active->error,
     * health healthy->unhealthy */
    assert_int_equal(cJSON_GetArraySize(arr), 5);
    cJSON_Delete(arr);
    free(out);
    free(err);

    /* db 0 of the same server holds nothing of ours: the db index was honoured. */
    url_db0 = vg_asprintf("redis://:%s@127.0.0.1:%d/0", PASSWORD, fx.port);
    rc = run(&out, &err, "get", "--redis", url_db0, "--prefix", fx.prefix, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    assert_string_equal(err, "No resources found.\n");
    free(out);
    free(err);
    free(url_db0);

    /* The unix socket URL of the child carries the password; db 5 as a parameter. */
    {
        char *unix_url = vg_asprintf("%s&db=5", vg_redis_child_url(fx.rc));

        assert_non_null(strstr(unix_url, "?password="));
        rc = run(&out, &err, "get", "--redis", unix_url, "--prefix", fx.prefix, "-o", "json", NULL);
        assert_int_equal(rc, 0);
        arr = cJSON_Parse(out);
        assert_int_equal(cJSON_GetArraySize(arr), 2);
        cJSON_Delete(arr);
        free(out);
        free(err);
        free(unix_url);
    }

    /* Secrets never in vigil's own output. */
    {
        char *text = vg_test_read_file(log_path, NULL);
        char *stdout_text = vg_test_read_file(out_path, NULL);

        assert_non_null(text);
        assert_no_password(text);
        assert_no_password(stdout_text ? stdout_text : "");
        free(text);
        free(stdout_text);
    }
    vg_state_destroy(st);
    free(config);
    free(cfg_path);
    free(log_path);
    free(out_path);
}

static void test_acl_user(void **state)
{
    redisContext *raw;
    redisReply *reply;
    char *url;
    char *out = NULL;
    char *err = NULL;
    int rc;
    (void)state;

    raw = redisConnect("127.0.0.1", fx.port);
    assert_non_null(raw);
    assert_int_equal(raw->err, 0);
    reply = redisCommand(raw, "AUTH %s", PASSWORD);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    reply = redisCommand(raw, "ACL SETUSER reader on >r3ader-pw ~* +@all");
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(raw);

    /* user:password (%-encoded '@' in the password is fine too). */
    url = vg_asprintf("redis://reader:r3ader-pw@127.0.0.1:%d/5", fx.port);
    rc = run(&out, &err, "get", "--redis", url, "--prefix", fx.prefix, "-o", "json", NULL);
    if (rc != 0) {
        fprintf(stderr, "get as reader: %s\n", err);
    }
    assert_int_equal(rc, 0);
    {
        cJSON *arr = cJSON_Parse(out);

        assert_int_equal(cJSON_GetArraySize(arr), 2);
        cJSON_Delete(arr);
    }
    assert_null(strstr(err, "r3ader-pw"));
    free(out);
    free(err);
    free(url);
}

static void test_refused(void **state)
{
    char *out = NULL;
    char *err = NULL;
    char *url;
    int rc;
    (void)state;

    /* Nobody listens on port 1. */
    rc = run(&out, &err, "get", "--redis", "redis://:pw@127.0.0.1:1/0", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "redis://:<redacted>@127.0.0.1:1/0"));
    assert_non_null(strstr(err, "Connection refused"));
    assert_null(strstr(err, ":pw@"));
    assert_string_equal(out, "");
    free(out);
    free(err);

    rc = run(&out, &err, "history", "--redis", "redis://:pw@127.0.0.1:1/0", "a:b", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "redis://:<redacted>@127.0.0.1:1/0"));
    free(out);
    free(err);

    /* Wrong password and no password: exit 2 with the server's reason. */
    url = vg_asprintf("redis://:not-%s@127.0.0.1:%d/5", PASSWORD, fx.port);
    rc = run(&out, &err, "get", "--redis", url, NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "WRONGPASS"));
    assert_no_password(err);
    free(out);
    free(err);
    free(url);
    url = vg_asprintf("redis://127.0.0.1:%d/5", fx.port);
    rc = run(&out, &err, "get", "--redis", url, NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "NOAUTH"));
    free(out);
    free(err);
    free(url);
}

static void test_check_warns_about_tls(void **state)
{
    char *cfg_path = vg_asprintf("%s/tls.yaml", fx.dir);
    char *config = vg_asprintf("redis:\n"
                               "  url: rediss://:%s@redis.example.com:6380/0\n"
                               "rules: [%s/e2e/rules.yaml]\n"
                               "sinks:\n"
                               "  ops: {type: console}\n",
                               PASSWORD, VG_FIXTURES);
    char *out = NULL;
    char *err = NULL;
    int rc;
    (void)state;

    assert_true(vg_test_write_file(cfg_path, config, strlen(config)));
    rc = run(&out, &err, "check", "-c", cfg_path, NULL);
    if (rc != 0) {
        fprintf(stderr, "check: %s\n", err);
    }
    assert_int_equal(rc, 0); /* a warning, not an error */
    assert_non_null(strstr(err, "warning"));
    assert_non_null(strstr(err, "TLS"));
    assert_non_null(strstr(err, "stunnel"));
    assert_non_null(strstr(err, "docs/state.md"));
    assert_non_null(strstr(out, "ok:"));
    assert_no_password(err);
    free(out);
    free(err);

    /* A plain URL: no warning. */
    free(config);
    config = vg_asprintf("redis:\n"
                         "  url: redis://127.0.0.1:6379/0\n"
                         "rules: [%s/e2e/rules.yaml]\n"
                         "sinks:\n"
                         "  ops: {type: console}\n",
                         VG_FIXTURES);
    assert_true(vg_test_write_file(cfg_path, config, strlen(config)));
    rc = run(&out, &err, "check", "-c", cfg_path, NULL);
    assert_int_equal(rc, 0);
    assert_null(strstr(err, "warning"));
    free(out);
    free(err);
    free(config);
    free(cfg_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_and_get_with_auth_and_db),
        cmocka_unit_test(test_acl_user),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_check_warns_about_tls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
