/*
 * vigil.yaml as `vigil check` loads it (core/config.c): every error
 * reported in one pass, in file order, sinks marked broken; the webhook
 * template paths agree with the v1 body that core/page.c renders; the
 * `log:` keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/page.h"

struct seen {
    char *lines[32];
    size_t n;
};

static void collect(void *ctx, const char *message)
{
    struct seen *s = ctx;

    assert_true(s->n < 32);
    s->lines[s->n++] = vg_strdup(message);
}

static void seen_fini(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->lines[i]);
    }
}

/* Write `yaml` to a temp file; returns its path (caller unlinks and frees). */
static char *write_tmp(const char *yaml)
{
    char *path = vg_test_write_tmp("config-check", yaml);

    assert_non_null(path);
    return path;
}

static void test_every_error(void **state)
{
    static const char yaml[] = "kafka:\n"                                 /* 1 */
                               "  brokrs: x\n"                            /* 2 */
                               "  batch_size: abc\n"                      /* 3 */
                               "redis: {prefx: y}\n"                      /* 4 */
                               "sinks:\n"                                 /* 5 */
                               "  ops: {type: webhok, url: http://h/x}\n" /* 6 */
                               "  good: {type: console}\n"                /* 7 */
                               "  tpl:\n"                                 /* 8 */
                               "    type: webhook\n"                      /* 9 */
                               "    url: http://h/x\n"                    /* 10 */
                               "    template: '{{resource.nme}}'\n"       /* 11 */
                               "log: {format: jsn, level: debug}\n"       /* 12 */
                               "colour: true\n";                          /* 13 */
    static const char *const want[] = {
        ":2:3: unknown key \"brokrs\" (did you mean \"brokers\"?)",
        ":3:15: expected an integer, got \"abc\"",
        ":4:9: unknown key \"prefx\" (did you mean \"prefix\"?)",
        ":6:15: unknown sink type \"webhok\" (did you mean \"webhook\"? expected webhook, "
        "slack, alertmanager, kafka, console, teams, email or pagerduty)",
        ":11:15: sink tpl: template: unknown path \"resource.nme\" (did you mean "
        "\"resource.name\"?)",
        ":12:15: log.format: unknown value \"jsn\" (did you mean \"json\"?); expected text or json",
        ":13:1: unknown key \"colour\"",
    };
    char *path = write_tmp(yaml);
    struct vg_config cfg;
    struct seen seen = {0};
    size_t failures = 0;

    (void)state;
    vg_config_init(&cfg);
    assert_int_equal(vg_config_check(&cfg, path, collect, &seen), VG_ERR_INVALID);
    for (size_t i = 0; i < VG_ARRAY_LEN(want); i++) {
        if (i >= seen.n || strncmp(seen.lines[i], path, strlen(path)) != 0 ||
            strncmp(seen.lines[i] + strlen(path), want[i], strlen(want[i])) != 0) {
            print_error("error %zu: want \"%s%s...\", got \"%s\"\n", i, path, want[i],
                        i < seen.n ? seen.lines[i] : "(none)");
            failures++;
        }
    }
    if (seen.n != VG_ARRAY_LEN(want)) {
        print_error("want %zu errors, got %zu\n", VG_ARRAY_LEN(want), seen.n);
        failures++;
    }
    assert_int_equal(cfg.n_sinks, 3);
    assert_true(cfg.sinks[0].broken);
    assert_false(cfg.sinks[1].broken);
    assert_true(cfg.sinks[2].broken);
    assert_int_equal(cfg.sinks[1].line, 7);
    assert_int_equal(cfg.sinks[1].col, 3);
    assert_int_equal(cfg.log.level, VG_LOG_LEVEL_DEBUG);
    assert_int_equal(failures, 0);
    seen_fini(&seen);
    vg_config_fini(&cfg);
    unlink(path);
    free(path);
}

/* vg_config_load_file still stops nothing but reports the first error. */
static void test_first_error(void **state)
{
    char *path = write_tmp("redis: {prefx: y}\nkafka: {batch_size: abc}\n");
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_file(&cfg, path, errstr, sizeof(errstr)), VG_ERR_INVALID);
    assert_non_null(strstr(errstr, ":1:9: unknown key \"prefx\""));
    vg_config_fini(&cfg);
    unlink(path);
    free(path);
}

/* A template that uses only known paths loads; the log keys default to text/info. */
static void test_template_ok(void **state)
{
    char *path = write_tmp("sinks:\n  t:\n    type: webhook\n    url: http://h/x\n"
                           "    template: '{{ incident.labels.team }} {{group.pager}} {{count}} "
                           "{{resource.name}} {{id}}'\n"
                           "log: {format: json, level: warn}\n");
    struct vg_config cfg;
    char errstr[512] = "";

    (void)state;
    vg_config_init(&cfg);
    assert_false(cfg.log.json);
    assert_int_equal(cfg.log.level, VG_LOG_LEVEL_INFO);
    if (vg_config_load_file(&cfg, path, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("%s", errstr);
    }
    assert_true(cfg.log.json);
    assert_int_equal(cfg.log.level, VG_LOG_LEVEL_WARN);
    vg_config_fini(&cfg);
    unlink(path);
    free(path);
}

/* The dotted paths of the string/null leaves under `obj`, an object of `*` for a label map. */
static void flatten(const cJSON *obj, const char *prefix, char **out, size_t *n, size_t max)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        char *path = prefix[0] ? vg_asprintf("%s.%s", prefix, c->string) : vg_strdup(c->string);

        if (!strcmp(c->string, "labels")) {
            char *star = vg_asprintf("%s.*", path);

            free(path);
            path = star;
        } else if (cJSON_IsObject(c)) {
            flatten(c, path, out, n, max);
            free(path);
            continue;
        } else if (cJSON_IsArray(c)) {
            free(path);
            continue;
        }
        assert_true(*n < max);
        out[(*n)++] = path;
    }
}

static bool in_list(const char *path, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v[i], path)) {
            return true;
        }
    }
    return false;
}

static const char body[] =
    "{\"version\":\"1\",\"status\":\"firing\",\"incident\":{\"id\":\"8c0f6a1e2b3d4c5f\","
    "\"monitor\":\"m\",\"severity\":\"high\",\"summary\":\"s\",\"started_at\":"
    "\"2026-11-28T10:00:00.123Z\",\"resolved_at\":null,\"type\":\"\",\"labels\":{\"team\":\"d\"},"
    "\"description\":\"\"},\"resource\":{\"id\":\"workflow:v1:x:public\",\"type\":\"workflow\","
    "\"name\":\"x\",\"workspace\":\"public\",\"version\":\"v1\",\"owner\":\"o\",\"status\":"
    "\"active\",\"runtime\":\"failed\",\"health\":\"unhealthy\"},\"transition\":{\"field\":"
    "\"runtime\",\"from\":\"running\",\"to\":\"failed\",\"at\":\"2026-11-28T10:00:00.123Z\","
    "\"reason\":null,\"pod\":null}}";

/* Every leaf of a rendered single and grouped body is a template path, and every path a leaf. */
static void test_template_paths_match_body(void **state)
{
    static const char *const not_in_body[] = {"id", "sink", "count"};
    struct vg_page pg;
    char errstr[256];
    char *leaves[128];
    size_t n = 0;
    char *single;
    char *group;
    const char *bodies[1];
    cJSON *j;
    size_t failures = 0;

    (void)state;
    assert_int_equal(vg_page_from_json(&pg, body, strlen(body), errstr, sizeof(errstr)), VG_OK);
    single = vg_page_to_json(&pg);
    bodies[0] = single;
    group = vg_page_group_to_json("oncall", NULL, 0, bodies, 1);
    assert_non_null(group);
    j = cJSON_Parse(single);
    flatten(j, "", leaves, &n, VG_ARRAY_LEN(leaves));
    cJSON_Delete(j);
    j = cJSON_Parse(group);
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!strcmp(c->string, "group")) {
            flatten(c, "group", leaves, &n, VG_ARRAY_LEN(leaves));
        }
    }
    cJSON_Delete(j);
    for (const char *const *p = vg_config_template_paths(); *p; p++) {
        bool special = false;

        for (size_t i = 0; i < VG_ARRAY_LEN(not_in_body); i++) {
            special = special || !strcmp(*p, not_in_body[i]);
        }
        if (!special && !in_list(*p, leaves, n)) {
            print_error("template path %s is not in the body\n", *p);
            failures++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool listed = false;

        for (const char *const *p = vg_config_template_paths(); *p; p++) {
            listed = listed || !strcmp(*p, leaves[i]);
        }
        if (!listed) {
            print_error("body field %s is not a template path\n", leaves[i]);
            failures++;
        }
        free(leaves[i]);
    }
    assert_int_equal(failures, 0);
    free(single);
    free(group);
    vg_page_fini(&pg);
}

/* VIGIL_<KEY PATH> over the file: scalars, lists, map entries, a sink's keys; errors name it. */
static void test_env_overrides(void **state)
{
    char *path = write_tmp("kafka:\n  brokers: file:9092\n  properties:\n"
                           "    security.protocol: PLAINTEXT\n"
                           "redis: {prefix: fromfile}\n"
                           "sinks:\n  ops: {type: webhook, url: http://file/x}\n");
    struct vg_config cfg;
    char errstr[512] = "";

    (void)state;
    setenv("VIGIL_KAFKA_BROKERS", "env1:9092,env2:9092", 1);
    setenv("VIGIL_KAFKA_TOPICS", "a, b", 1);
    setenv("VIGIL_KAFKA_PROPERTIES_SECURITY_PROTOCOL", "SASL_SSL", 1);
    setenv("VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD", "pw", 1);
    setenv("VIGIL_REDIS_URL", "redis://env:6379/2", 1);
    setenv("VIGIL_SINKS_OPS_URL", "http://env/hook", 1);
    setenv("VIGIL_HTTP_CONSOLE", "false", 1);
    setenv("VIGIL_LOG_LEVEL", "debug", 1);
    vg_config_init(&cfg);
    if (vg_config_load_file(&cfg, path, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("%s", errstr);
    }
    assert_string_equal(cfg.kafka.brokers, "env1:9092,env2:9092");
    assert_int_equal(cfg.kafka.n_topics, 2);
    assert_string_equal(cfg.kafka.topics[1], "b");
    assert_int_equal(cfg.kafka.n_properties, 2);
    assert_string_equal(cfg.kafka.properties[0].key, "security.protocol");
    assert_string_equal(cfg.kafka.properties[0].value, "SASL_SSL");
    assert_string_equal(cfg.kafka.properties[1].key, "sasl.password");
    assert_string_equal(cfg.redis.url, "redis://env:6379/2");
    assert_string_equal(cfg.redis.prefix, "fromfile");
    assert_string_equal(cfg.sinks[0].url, "http://env/hook");
    assert_false(cfg.http.console);
    assert_int_equal(cfg.log.level, VG_LOG_LEVEL_DEBUG);
    vg_config_fini(&cfg);

    /* without a file, and for the commands that read only redis: */
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load(&cfg, NULL, errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(cfg.redis.url, "redis://env:6379/2");
    assert_string_equal(cfg.kafka.brokers, "env1:9092,env2:9092");
    vg_config_fini(&cfg);
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_redis(&cfg, path, errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(cfg.redis.url, "redis://env:6379/2");
    vg_config_fini(&cfg);

    /* a bad value names the variable */
    setenv("VIGIL_KAFKA_BATCH_SIZE", "lots", 1);
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load(&cfg, path, errstr, sizeof(errstr)), VG_ERR_INVALID);
    assert_string_equal(errstr, "$VIGIL_KAFKA_BATCH_SIZE: expected an integer, got \"lots\"");
    vg_config_fini(&cfg);

    unsetenv("VIGIL_KAFKA_BATCH_SIZE");
    unsetenv("VIGIL_KAFKA_BROKERS");
    unsetenv("VIGIL_KAFKA_TOPICS");
    unsetenv("VIGIL_KAFKA_PROPERTIES_SECURITY_PROTOCOL");
    unsetenv("VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD");
    unsetenv("VIGIL_REDIS_URL");
    unsetenv("VIGIL_SINKS_OPS_URL");
    unsetenv("VIGIL_HTTP_CONSOLE");
    unsetenv("VIGIL_LOG_LEVEL");
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error),   cmocka_unit_test(test_first_error),
        cmocka_unit_test(test_template_ok),   cmocka_unit_test(test_template_paths_match_body),
        cmocka_unit_test(test_env_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
