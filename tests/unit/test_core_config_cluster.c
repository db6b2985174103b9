/*
 * The redis section's Redis Cluster keys as `vigil check` and `vigil run`
 * load them (core/config.c): cluster, wait_replicas, wait_timeout_ms, layout, their
 * defaults and bounds, and `cluster: true` refused, naming the key, with
 * a URL that cannot reach a cluster (a unix socket, the embedded Redis, a
 * db other than 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "vigil/config.h"
#include "vigil/mem.h"

/* Write `yaml` to a temp file; returns its path (caller unlinks and frees). */
static char *write_tmp(const char *yaml)
{
    char *path = vg_test_write_tmp("config-cluster", yaml);

    assert_non_null(path);
    return path;
}

/*
 * Load `yaml` into *cfg (initialized here; the caller finis it): 0 when it
 * gives `want` and, on an error, `in_error` is in the message; else 1, said.
 */
static int load_case(const char *what, size_t i, const char *yaml, vg_err_t want,
                     const char *in_error, struct vg_config *cfg)
{
    char errstr[512] = "";
    char *path = write_tmp(yaml);
    vg_err_t err;
    int bad = 0;

    vg_config_init(cfg);
    err = vg_config_load_file(cfg, path, errstr, sizeof(errstr));
    if (err != want || (in_error && !strstr(errstr, in_error))) {
        fprintf(stderr, "%s case %zu: want %d \"%s\", got %d \"%s\"\n", what, i, (int)want,
                in_error ? in_error : "", (int)err, errstr);
        bad = 1;
    }
    unlink(path);
    free(path);
    return bad;
}

static void test_defaults(void **state)
{
    struct vg_config cfg;
    (void)state;

    vg_config_init(&cfg);
    assert_false(cfg.redis.cluster);
    assert_int_equal(cfg.redis.wait_replicas, 0);
    assert_int_equal(cfg.redis.wait_timeout_ms, 1000);
    assert_null(cfg.redis.tag);
    assert_false(cfg.redis.partitioned);
    vg_config_fini(&cfg);
}

/*
 * redis.layout: single by default on one Redis, partitioned by default with
 * `cluster: true`, either when named; anything else is refused at its place.
 */
static void test_layout(void **state)
{
    static const struct {
        const char *yaml;
        vg_err_t want;
        bool partitioned;
        const char *in_error;
    } cases[] = {
        {"redis: {url: \"redis://10.0.0.5:6379\"}\n", VG_OK, false, NULL},
        {"redis: {url: \"redis://10.0.0.5:6379\", layout: partitioned}\n", VG_OK, true, NULL},
        {"redis: {url: \"redis://10.0.0.5:6379\", cluster: true}\n", VG_OK, true, NULL},
        {"redis: {layout: single, url: \"redis://10.0.0.5:6379\", cluster: true}\n", VG_OK, false,
         NULL},
        {"redis: {url: \"redis://10.0.0.5:6379\", cluster: true, layout: partitioned}\n", VG_OK,
         true, NULL},
        {"redis:\n  url: \"redis://10.0.0.5:6379\"\n  layout: sharded\n", VG_ERR_INVALID, false,
         ":3:11: redis.layout: expected single or partitioned"},
    };
    int failures = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vg_config cfg;
        int bad = load_case("layout", i, cases[i].yaml, cases[i].want, cases[i].in_error, &cfg);

        failures += bad;
        if (!bad && cases[i].want == VG_OK && cfg.redis.partitioned != cases[i].partitioned) {
            fprintf(stderr, "layout case %zu: partitioned %d, want %d\n", i,
                    (int)cfg.redis.partitioned, (int)cases[i].partitioned);
            failures++;
        }
        vg_config_fini(&cfg);
    }
    assert_int_equal(failures, 0);
}

static void test_cluster_keys(void **state)
{
    static const struct {
        const char *yaml;
        vg_err_t want;
        const char *in_error; /* a substring of the error; NULL: loads */
    } cases[] = {
        {"redis: {url: \"redis://10.0.0.5:6379\", cluster: true, wait_replicas: 1, "
         "wait_timeout_ms: 500}\n",
         VG_OK, NULL},
        {"redis: {url: \"redis://:pw@10.0.0.5:6379/0\", cluster: true}\n", VG_OK, NULL},
        {"redis: {url: \"unix:///tmp/r.sock\", cluster: false}\n", VG_OK, NULL},
        {"redis: {cluster: true, url: \"unix:///tmp/r.sock\"}\n", VG_ERR_INVALID,
         "redis.cluster: needs a redis://host:port URL"},
        {"redis: {url: \"redis://10.0.0.5:6379/2\", cluster: true}\n", VG_ERR_INVALID,
         "redis.cluster: a cluster has only db 0"},
        {"redis: {cluster: true}\n", VG_ERR_INVALID, "redis.cluster: needs redis.url"},
        {"redis: {cluster: maybe}\n", VG_ERR_INVALID, ":1:"},
        {"redis: {wait_replicas: -1}\n", VG_ERR_INVALID, ":1:"},
        {"redis: {wait_timeout_ms: 0}\n", VG_ERR_INVALID, ":1:"},
        {"redis: {wait_timeout_ms: 60000}\n", VG_ERR_INVALID, ":1:"},
    };
    int failures = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vg_config cfg;
        int bad = load_case("cluster", i, cases[i].yaml, cases[i].want, cases[i].in_error, &cfg);

        failures += bad;
        if (i == 0 && !bad &&
            (!cfg.redis.cluster || cfg.redis.wait_replicas != 1 ||
             cfg.redis.wait_timeout_ms != 500)) {
            fprintf(stderr, "case 0: the values did not load\n");
            failures++;
        }
        vg_config_fini(&cfg);
    }
    assert_int_equal(failures, 0);
}

/* The environment overrides them like every redis key (VIGIL_REDIS_CLUSTER...). */
static void test_env(void **state)
{
    struct vg_config cfg;
    char errstr[512];
    char *path = write_tmp("redis: {url: \"redis://10.0.0.5:6379\"}\n");
    (void)state;

    setenv("VIGIL_REDIS_CLUSTER", "true", 1);
    setenv("VIGIL_REDIS_WAIT_REPLICAS", "2", 1);
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_file(&cfg, path, errstr, sizeof(errstr)), VG_OK);
    assert_true(cfg.redis.cluster);
    assert_int_equal(cfg.redis.wait_replicas, 2);
    vg_config_fini(&cfg);
    unsetenv("VIGIL_REDIS_CLUSTER");
    unsetenv("VIGIL_REDIS_WAIT_REPLICAS");
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_cluster_keys),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
