/*
 * Redis AUTH and DB index end to end, against a private
 * redis-server started with requirepass and a 127.0.0.1 TCP port (the
 * environment of tests/support/env.h): `vigil run` applies events from the mock
 * Kafka cluster into db 5 through redis://:PASSWORD@127.0.0.1:PORT/5,
 * `vigil get` reads them back there and only there; an ACL user works;
 * a wrong or missing password and an unreachable server exit 2 naming the
 * URL with the password redacted and the reason; `vigil check` warns
 * (exit 0) about a rediss:// URL. The password never appears in output.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define PASSWORD "s3cr3t-Pw-42"
#define PARTITIONS 2

static const char *const secrets[] = {PASSWORD, NULL};
static struct vg_test_env E;
/* redis://:PASSWORD@127.0.0.1:PORT/5 for vigil and for E.st. */
static struct vg_test_env_case C = {
    &E,
    "state-auth",
    {
        .partitions = PARTITIONS,
        .redis_password = PASSWORD,
        .redis_tcp = true,
        .redis_db = 5,
        .secrets = secrets,
        .rules_file = VG_FIXTURES "/e2e/rules.yaml",
        .sinks = "  ops: {type: console}\n",
    },
};

/* One environment for the whole group. */
static int setup(void **state)
{
    *state = &C;
    return vg_test_env_setup(state);
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

static void test_run_and_get_with_auth_and_db(void **state)
{
    struct vg_state *st = NULL;
    char errstr[512];
    char *out = NULL;
    char *err = NULL;
    char *url_db0;
    cJSON *arr;
    int rc;
    (void)state;

    /* A wrong password on connect is a config error, named without the password. */
    {
        char *bad = vg_asprintf("redis://:wrong-%s@127.0.0.1:%d/5", PASSWORD, E.redis_port);

        assert_int_equal(vg_state_connect(&st, bad, E.prefix, errstr, sizeof(errstr)),
                         VG_ERR_INVALID);
        assert_no_password(errstr);
        free(bad);
    }

    vg_test_env_produce(&E, "service", "api", "prod", "active", "running", "2026-11-28T10:00:00Z",
                        NULL);
    vg_test_env_produce(&E, "service", "db", "prod", "active", "pending", "2026-11-28T10:00:00Z",
                        NULL);
    vg_test_env_produce(&E, "service", "api", "prod", "error", "running", "2026-11-28T10:05:00Z",
                        NULL);
    assert_true(vg_test_env_spawn(&E));

    /* vigil wrote into db 5 of the password-protected server (E.st reads db 5). */
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);

    rc = run(&out, &err, "get", "--redis", E.redis_url, "--prefix", E.prefix, "-o", "json", NULL);
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
    rc = run(&out, &err, "history", "-c", E.config, "-o", "json", "service:v1:api:prod", NULL);
    assert_int_equal(rc, 0);
    arr = cJSON_Parse(out);
    /* status ""->active, runtime ""->running, health ""->healthy, status active->error,
     * health healthy->unhealthy */
    assert_int_equal(cJSON_GetArraySize(arr), 5);
    cJSON_Delete(arr);
    free(out);
    free(err);

    /* db 0 of the same server holds nothing of ours: the db index was honoured. */
    url_db0 = vg_asprintf("redis://:%s@127.0.0.1:%d/0", PASSWORD, E.redis_port);
    rc = run(&out, &err, "get", "--redis", url_db0, "--prefix", E.prefix, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    assert_string_equal(err, "No resources found.\n");
    free(out);
    free(err);
    free(url_db0);

    /* The unix socket URL of the child carries the password; db 5 as a parameter. */
    {
        char *unix_url = vg_asprintf("%s&db=5", vg_redis_child_url(E.redis));

        assert_non_null(strstr(unix_url, "?password="));
        rc = run(&out, &err, "get", "--redis", unix_url, "--prefix", E.prefix, "-o", "json", NULL);
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
        char *out_path = vg_asprintf("%s/vigil-%d.out", E.dir, E.runs);
        char *text = vg_test_env_logs(&E);
        char *stdout_text = vg_test_read_file(out_path, NULL);

        assert_non_null(text);
        assert_no_password(text);
        assert_no_password(stdout_text ? stdout_text : "");
        free(text);
        free(stdout_text);
        free(out_path);
    }
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

    raw = redisConnect("127.0.0.1", E.redis_port);
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
    url = vg_asprintf("redis://reader:r3ader-pw@127.0.0.1:%d/5", E.redis_port);
    rc = run(&out, &err, "get", "--redis", url, "--prefix", E.prefix, "-o", "json", NULL);
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
    url = vg_asprintf("redis://:not-%s@127.0.0.1:%d/5", PASSWORD, E.redis_port);
    rc = run(&out, &err, "get", "--redis", url, NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "WRONGPASS"));
    assert_no_password(err);
    free(out);
    free(err);
    free(url);
    url = vg_asprintf("redis://127.0.0.1:%d/5", E.redis_port);
    rc = run(&out, &err, "get", "--redis", url, NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "NOAUTH"));
    free(out);
    free(err);
    free(url);
}

static void test_check_warns_about_tls(void **state)
{
    char *cfg_path = vg_asprintf("%s/tls.yaml", E.dir);
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
    return cmocka_run_group_tests(tests, setup, vg_test_env_teardown);
}
