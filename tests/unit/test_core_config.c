/*
 * vigil.yaml loading (core/config.c over core/yaml.c): defaults, the
 * full reference file, "embedded" endpoints, ${ENV} substitution,
 * relative paths, and one fixture per class of mistake with its exact
 * "file:line:col: message" (positions counted by hand in
 * tests/fixtures/config/). Every load is followed by vg_config_fini so
 * LeakSanitizer checks the error paths too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/yaml.h"

#define DIR VG_FIXTURES "/config"

static bool strv_equal(char *const *got, size_t n, const char *const *want, size_t n_want)
{
    if (n != n_want || !got || got[n] != NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!got[i] || strcmp(got[i], want[i]) != 0) {
            return false;
        }
    }
    return true;
}

static void print_strv(const char *what, char *const *v, size_t n)
{
    print_error("%s (%zu):", what, n);
    for (size_t i = 0; v && i < n; i++) {
        print_error(" \"%s\"", v[i] ? v[i] : "(null)");
    }
    print_error("\n");
}

#define ASSERT_STRV(got, n, ...)                                                                   \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        if (!strv_equal((got), (n), want_, VG_ARRAY_LEN(want_))) {                                 \
            print_strv(#got, (got), (n));                                                          \
            fail_msg("%s differs", #got);                                                          \
        }                                                                                          \
    } while (0)

static void assert_kv(const struct vg_kv *kv, size_t n, size_t i, const char *key,
                      const char *value)
{
    assert_true(i < n);
    assert_string_equal(kv[i].key, key);
    assert_string_equal(kv[i].value, value);
}

/* Load `name` from the fixtures over defaults; returns the error, errstr filled. */
static vg_err_t load(struct vg_config *cfg, const char *name, char *errstr, size_t errstr_size)
{
    char *path = vg_asprintf("%s/%s", DIR, name);
    vg_err_t err;
    vg_config_init(cfg);
    errstr[0] = '\0';
    err = vg_config_load_file(cfg, path, errstr, errstr_size);
    free(path);
    return err;
}

static void assert_defaults_except_path(const struct vg_config *cfg)
{
    assert_null(cfg->kafka.brokers);
    assert_string_equal(cfg->kafka.group, "vigil");
    ASSERT_STRV(cfg->kafka.topics, cfg->kafka.n_topics, "vigil.events");
    assert_string_equal(cfg->kafka.dlq_topic, "vigil.dlq");
    assert_int_equal(cfg->kafka.n_properties, 0);
    assert_int_equal(cfg->kafka.partitions, 4);
    assert_int_equal(cfg->kafka.batch_size, 5000);
    assert_int_equal(cfg->kafka.batch_ms, 50);
    assert_int_equal(cfg->kafka.prefetch_mb, VG_KAFKA_PREFETCH_MB_DEFAULT);
    assert_int_equal(cfg->dispatch.claim_idle_ms, VG_DISPATCH_CLAIM_IDLE_MS_DEFAULT);
    assert_null(cfg->redis.url);
    assert_string_equal(cfg->redis.prefix, "vigil");
    assert_string_equal(cfg->redis.data_dir, ".vigil");
    ASSERT_STRV(cfg->rules, cfg->n_rules, "examples/rules");
    assert_int_equal(cfg->n_sinks, 1);
    assert_string_equal(cfg->sinks[0].name, "console");
    assert_string_equal(cfg->sinks[0].type, "console");
    assert_null(cfg->sinks[0].url);
    assert_int_equal(cfg->sinks[0].n_headers, 0);
    ASSERT_STRV(cfg->health.batch_types, cfg->health.n_batch_types, "workflow", "job", "cronjob",
                "batch");
}

static void test_defaults(void **state)
{
    struct vg_config cfg;

    (void)state;
    vg_config_init(&cfg);
    assert_null(cfg.path);
    assert_defaults_except_path(&cfg);
    assert_ptr_equal(vg_config_find_sink(&cfg, "console"), &cfg.sinks[0]);
    assert_null(vg_config_find_sink(&cfg, "ops"));
    vg_config_fini(&cfg);
    vg_config_fini(&cfg); /* fini leaves it zeroed: twice is harmless */
}

static void test_empty_files_keep_defaults(void **state)
{
    static const char *const files[] = {"empty.yaml"};
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(files); i++) {
        assert_int_equal(load(&cfg, files[i], errstr, sizeof(errstr)), VG_OK);
        assert_string_equal(cfg.path, DIR "/empty.yaml");
        assert_defaults_except_path(&cfg);
        vg_config_fini(&cfg);
    }
}

/* "kafka:" and "redis:" with nothing under: defaults; "sinks: {}" no sinks; "rules:" none. */
static void test_null_sections(void **state)
{
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    assert_int_equal(load(&cfg, "null-sections.yaml", errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(cfg.kafka.group, "vigil");
    assert_string_equal(cfg.redis.prefix, "vigil");
    assert_int_equal(cfg.n_sinks, 0);
    assert_int_equal(cfg.n_rules, 0);
    assert_non_null(cfg.rules);
    assert_null(cfg.rules[0]);
    vg_config_fini(&cfg);
}

static void test_full_example(void **state)
{
    struct vg_config cfg;
    char errstr[512];
    const struct vg_sink_config *s;

    (void)state;
    setenv("OPS_HOOK_TOKEN", "t0k3n", 1);
    setenv("OPS_API_TOKEN", "api-s3cret", 1);
    assert_int_equal(load(&cfg, "full.yaml", errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(errstr, "");
    assert_string_equal(cfg.path, DIR "/full.yaml");

    assert_string_equal(cfg.kafka.brokers, "kafka-1:9092,kafka-2:9092");
    assert_string_equal(cfg.kafka.group, "vigil-prod");
    ASSERT_STRV(cfg.kafka.topics, cfg.kafka.n_topics, "resources.events", "jobs.events");
    assert_string_equal(cfg.kafka.dlq_topic, "resources.dlq");
    assert_int_equal(cfg.kafka.n_properties, 3);
    assert_kv(cfg.kafka.properties, cfg.kafka.n_properties, 0, "security.protocol", "SASL_SSL");
    assert_kv(cfg.kafka.properties, cfg.kafka.n_properties, 1, "sasl.mechanism", "PLAIN");
    assert_kv(cfg.kafka.properties, cfg.kafka.n_properties, 2, "queued.max.messages.kbytes",
              "65536");
    assert_int_equal(cfg.kafka.partitions, 8);
    assert_int_equal(cfg.kafka.batch_size, 1000);
    assert_int_equal(cfg.kafka.batch_ms, 20);

    assert_string_equal(cfg.redis.url, "redis://:s3cret@redis.internal:6379/2");
    assert_string_equal(cfg.redis.prefix, "vigil-prod");
    assert_string_equal(cfg.redis.data_dir, "/var/lib/vigil");

    ASSERT_STRV(cfg.rules, cfg.n_rules, "/etc/vigil/rules", "/etc/vigil/extra/*.yaml");

    /* the file's sinks replace the default console sink, in file order */
    assert_int_equal(cfg.n_sinks, 3);
    assert_string_equal(cfg.sinks[0].name, "ops");
    assert_string_equal(cfg.sinks[1].name, "slow");
    assert_string_equal(cfg.sinks[2].name, "console");

    s = vg_config_find_sink(&cfg, "ops");
    assert_ptr_equal(s, &cfg.sinks[0]);
    assert_string_equal(s->type, "webhook");
    assert_string_equal(s->url, "https://hooks.example.com/vigil/t0k3n");
    assert_int_equal(s->n_headers, 1);
    assert_kv(s->headers, s->n_headers, 0, "Authorization", "Bearer api-s3cret");
    assert_int_equal(s->timeout_ms, 10000);
    assert_int_equal(s->connect_timeout_ms, 5000);
    assert_int_equal(s->max_attempts, 5);

    s = vg_config_find_sink(&cfg, "slow");
    assert_non_null(s);
    assert_string_equal(s->type, "webhook");
    assert_string_equal(s->url, "http://127.0.0.1:8080/hook");
    assert_int_equal(s->n_headers, 2);
    assert_kv(s->headers, s->n_headers, 0, "X-Team", "data");
    assert_kv(s->headers, s->n_headers, 1, "X-Env", "prod");
    assert_int_equal(s->timeout_ms, 90000);
    assert_int_equal(s->connect_timeout_ms, 500);
    assert_int_equal(s->max_attempts, 2);

    s = vg_config_find_sink(&cfg, "console");
    assert_non_null(s);
    assert_string_equal(s->type, "console");
    assert_null(s->url);
    assert_int_equal(s->n_headers, 0);
    assert_int_equal(s->timeout_ms, 10000);
    assert_int_equal(s->connect_timeout_ms, 5000);
    assert_int_equal(s->max_attempts, 1);

    assert_null(vg_config_find_sink(&cfg, "Ops"));
    ASSERT_STRV(cfg.health.batch_types, cfg.health.n_batch_types, "workflow", "job", "etl");
    vg_config_fini(&cfg);
    unsetenv("OPS_HOOK_TOKEN");
    unsetenv("OPS_API_TOKEN");
}

static void test_embedded(void **state)
{
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    assert_int_equal(load(&cfg, "embedded.yaml", errstr, sizeof(errstr)), VG_OK);
    assert_null(cfg.kafka.brokers);
    assert_null(cfg.redis.url);
    vg_config_fini(&cfg);

    /* an empty value is embedded too; "batch_types:" with nothing means none */
    assert_int_equal(load(&cfg, "embedded-null.yaml", errstr, sizeof(errstr)), VG_OK);
    assert_null(cfg.kafka.brokers);
    assert_string_equal(cfg.kafka.group, "g");
    assert_null(cfg.redis.url);
    assert_int_equal(cfg.health.n_batch_types, 0);
    assert_non_null(cfg.health.batch_types);
    assert_null(cfg.health.batch_types[0]);
    vg_config_fini(&cfg);
}

static void test_env(void **state)
{
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    setenv("VG_TEST_KAFKA_HOST", "kafka.internal", 1);
    setenv("VG_TEST_KAFKA_PORT", "9093", 1);
    setenv("VG_TEST_TOPIC", "events-from-env", 1);
    setenv("VG_TEST_TOKEN", "tok/${NOT_EXPANDED_AGAIN}", 1);
    assert_int_equal(load(&cfg, "env.yaml", errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(cfg.kafka.brokers, "kafka.internal:9093");
    assert_string_equal(cfg.kafka.group, "literal-${NOT_A_VAR}");
    ASSERT_STRV(cfg.kafka.topics, cfg.kafka.n_topics, "events-from-env", "static");
    assert_int_equal(cfg.n_sinks, 1);
    assert_string_equal(cfg.sinks[0].url, "https://hooks.example.com/tok/${NOT_EXPANDED_AGAIN}");
    assert_kv(cfg.sinks[0].headers, cfg.sinks[0].n_headers, 0, "Authorization",
              "Bearer tok/${NOT_EXPANDED_AGAIN}");
    vg_config_fini(&cfg);
    unsetenv("VG_TEST_KAFKA_HOST");
    unsetenv("VG_TEST_KAFKA_PORT");
    unsetenv("VG_TEST_TOPIC");
    unsetenv("VG_TEST_TOKEN");
}

/* Each fixture and its exact error: "<path>:" + `want`. */
static void test_errors(void **state)
{
    static const struct {
        const char *file;
        vg_err_t err;
        const char *want;
    } cases[] = {
        /* environment */
        {"env-unset.yaml", VG_ERR_PARSE,
         "4:10: environment variable VG_TEST_SURELY_UNSET is not set"},
        {"env-empty.yaml", VG_ERR_INVALID, "2:10: must not be empty"},
        {"env-unterminated.yaml", VG_ERR_PARSE, "2:11: unterminated ${ in value"},
        /* unknown keys */
        {"unknown-key.yaml", VG_ERR_INVALID,
         "2:3: unknown key \"brokesr\" (did you mean \"brokers\"?)"},
        {"unknown-top.yaml", VG_ERR_INVALID, "3:1: unknown key \"sink\" (did you mean \"sinks\"?)"},
        {"unknown-far.yaml", VG_ERR_INVALID, "3:1: unknown key \"frobnicate\""},
        {"unknown-sink-key.yaml", VG_ERR_INVALID,
         "5:5: unknown key \"tiemout\" (did you mean \"timeout\"?)"},
        /* wrong types and values */
        {"wrong-type-topics.yaml", VG_ERR_INVALID,
         "2:11: expected a string or a list of strings, got a mapping"},
        {"wrong-type-section.yaml", VG_ERR_INVALID, "1:8: expected a mapping, got a sequence"},
        {"wrong-type-group.yaml", VG_ERR_INVALID, "3:5: expected a string, got a mapping"},
        {"wrong-type-int.yaml", VG_ERR_INVALID, "2:15: expected an integer, got \"many\""},
        {"out-of-range.yaml", VG_ERR_INVALID, "3:15: 0 is out of range [1, 1000]"},
        {"empty-topics.yaml", VG_ERR_INVALID, "2:11: at least one topic is needed"},
        {"wrong-type-headers.yaml", VG_ERR_INVALID, "5:14: expected a mapping, got a sequence"},
        {"root-seq.yaml", VG_ERR_INVALID, "1:1: expected a mapping, got a sequence"},
        /* sinks */
        {"bad-sink-type.yaml", VG_ERR_INVALID,
         "3:11: unknown sink type \"carrier-pigeon\" (expected webhook, slack, alertmanager, "
         "kafka, console, teams, email or pagerduty)"},
        {"sink-not-map.yaml", VG_ERR_INVALID, "2:8: sink ops: expected a mapping, got a scalar"},
        {"sink-no-type.yaml", VG_ERR_INVALID, "3:5: sink ops: missing key \"type\""},
        {"webhook-no-url.yaml", VG_ERR_INVALID, "5:5: sink ops: a webhook needs \"url\""},
        {"webhook-bad-url.yaml", VG_ERR_INVALID,
         "4:10: sink ops: url must start with http:// or https://"},
        {"bad-duration.yaml", VG_ERR_INVALID,
         "5:14: expected a duration like 500ms, 30s, 10m, 4h or 1h30m, got \"10\""},
        {"bad-duration-neg.yaml", VG_ERR_INVALID,
         "5:22: expected a duration like 500ms, 30s, 10m, 4h or 1h30m, got \"-5s\""},
        /* redis */
        {"bad-redis-url.yaml", VG_ERR_INVALID,
         "3:8: expected redis://host:port/db, unix:///path or embedded"},
        /* YAML hazards */
        {"duplicate-key.yaml", VG_ERR_PARSE, "4:3: duplicate key \"group\" (first at line 2)"},
        {"duplicate-top.yaml", VG_ERR_PARSE, "5:1: duplicate key \"redis\" (first at line 1)"},
        {"alias.yaml", VG_ERR_PARSE, "3:14: aliases (*name) are not supported"},
        {"merge-key.yaml", VG_ERR_PARSE, "5:9: aliases (*name) are not supported"},
        {"two-docs.yaml", VG_ERR_PARSE, "3:1: only one YAML document per file"},
        /* the root mapping is level 1, so the 64th '[' (column 8 + 63) is level 65 */
        {"nesting.yaml", VG_ERR_PARSE, "1:71: nesting deeper than 64 levels"},
        {"syntax.yaml", VG_ERR_PARSE,
         "3:6: did not find expected ',' or ']' while parsing a flow sequence"},
    };
    int failed = 0;

    (void)state;
    unsetenv("VG_TEST_SURELY_UNSET");
    setenv("VG_TEST_EMPTY", "", 1);
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_config cfg;
        char errstr[512];
        char *want = vg_asprintf("%s/%s:%s", DIR, cases[i].file, cases[i].want);
        vg_err_t err = load(&cfg, cases[i].file, errstr, sizeof(errstr));
        if (err != cases[i].err || strcmp(errstr, want) != 0) {
            print_error("case %zu %s:\n want %s %s\n got  %s %s\n", i, cases[i].file,
                        vg_err_name(cases[i].err), want, vg_err_name(err), errstr);
            failed++;
        }
        /* secrets in the failing files never reach the message */
        if (strstr(errstr, "s3cret")) {
            print_error("case %zu %s: secret in \"%s\"\n", i, cases[i].file, errstr);
            failed++;
        }
        vg_config_fini(&cfg);
        free(want);
    }
    unsetenv("VG_TEST_EMPTY");
    assert_int_equal(failed, 0);
}

/*
 * vg_config_load_redis: only `redis:` is read (its ${NAME} substituted);
 * unset variables, file: secrets and bad values elsewhere are not looked
 * at, while YAML errors, unknown top-level keys and redis errors are
 * reported exactly as vg_config_load_file reports them.
 */
static vg_err_t load_redis_only(struct vg_config *cfg, const char *name, char *errstr,
                                size_t errstr_size)
{
    char *path = vg_asprintf("%s/%s", DIR, name);
    vg_err_t err;

    vg_config_init(cfg);
    errstr[0] = '\0';
    err = vg_config_load_redis(cfg, path, errstr, errstr_size);
    free(path);
    return err;
}

static void test_redis_only(void **state)
{
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    unsetenv("VG_TEST_RO_UNSET");
    setenv("VG_TEST_RO_REDIS", "redis://:pw@redis.internal:6380/2", 1);
    setenv("VG_TEST_RO_PREFIX", "env", 1);
    setenv("VG_TEST_RO_SECRET", "xoxb-s3cret", 1);
    assert_int_equal(load_redis_only(&cfg, "redis-only.yaml", errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(cfg.redis.url, "redis://:pw@redis.internal:6380/2");
    assert_string_equal(cfg.redis.prefix, "p-${literal}-env");
    assert_string_equal(cfg.redis.data_dir, DIR "/state");
    assert_string_equal(cfg.path, DIR "/redis-only.yaml");
    /* everything else: the defaults, nothing resolved */
    free(cfg.redis.url);
    cfg.redis.url = NULL;
    free(cfg.redis.prefix);
    cfg.redis.prefix = vg_strdup("vigil");
    free(cfg.redis.data_dir);
    cfg.redis.data_dir = vg_strdup(".vigil");
    assert_defaults_except_path(&cfg);
    assert_null(cfg.http.token);
    vg_config_fini(&cfg);

    /* The full load of the same file stops at the first unset variable, naming only it. */
    assert_int_equal(load(&cfg, "redis-only.yaml", errstr, sizeof(errstr)), VG_ERR_PARSE);
    assert_string_equal(errstr, DIR
                        "/redis-only.yaml:2:12: environment variable VG_TEST_RO_UNSET is not set");
    vg_config_fini(&cfg);

    /* An unset variable in redis: itself is an error that names it and prints no value. */
    assert_int_equal(load_redis_only(&cfg, "redis-only-unset.yaml", errstr, sizeof(errstr)),
                     VG_ERR_PARSE);
    assert_string_equal(errstr, DIR "/redis-only-unset.yaml:4:8: environment variable "
                                    "VG_TEST_RO_UNSET is not set");
    vg_config_fini(&cfg);
    unsetenv("VG_TEST_RO_REDIS");
    unsetenv("VG_TEST_RO_PREFIX");
    unsetenv("VG_TEST_RO_SECRET");
}

/* Each fixture loaded for reading Redis: the same error as the full load, or none. */
static void test_redis_only_errors(void **state)
{
    static const struct {
        const char *file;
        vg_err_t err; /* VG_OK: the full load fails, this one must not */
    } cases[] = {
        /* what only other sections get wrong is not looked at */
        {"env-unset.yaml", VG_OK},
        {"webhook-no-url.yaml", VG_OK},
        {"webhook-bad-url.yaml", VG_OK},
        {"bad-sink-type.yaml", VG_OK},
        {"wrong-type-int.yaml", VG_OK},
        {"unknown-key.yaml", VG_OK},
        {"unknown-sink-key.yaml", VG_OK},
        /* YAML, the top level and redis: as in test_errors */
        {"env-unterminated.yaml", VG_ERR_PARSE},
        {"bad-redis-url.yaml", VG_ERR_INVALID},
        {"unknown-top.yaml", VG_ERR_INVALID},
        {"unknown-far.yaml", VG_ERR_INVALID},
        {"root-seq.yaml", VG_ERR_INVALID},
        {"duplicate-top.yaml", VG_ERR_PARSE},
        {"alias.yaml", VG_ERR_PARSE},
        {"two-docs.yaml", VG_ERR_PARSE},
        {"nesting.yaml", VG_ERR_PARSE},
        {"syntax.yaml", VG_ERR_PARSE},
    };
    int failed = 0;

    (void)state;
    unsetenv("VG_TEST_SURELY_UNSET");
    unsetenv("VG_TEST_TOPIC");
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_config cfg;
        char full_err[512];
        char errstr[512];
        vg_err_t full = load(&cfg, cases[i].file, full_err, sizeof(full_err));
        vg_err_t err;

        vg_config_fini(&cfg);
        err = load_redis_only(&cfg, cases[i].file, errstr, sizeof(errstr));
        vg_config_fini(&cfg);
        if (full == VG_OK || err != cases[i].err ||
            (err != VG_OK && (full != err || strcmp(errstr, full_err) != 0))) {
            print_error("case %zu %s:\n full %s %s\n redis-only %s %s (want %s)\n", i,
                        cases[i].file, vg_err_name(full), full_err, vg_err_name(err), errstr,
                        vg_err_name(cases[i].err));
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_missing_file(void **state)
{
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    assert_int_equal(load(&cfg, "no-such-file.yaml", errstr, sizeof(errstr)), VG_ERR_IO);
    assert_string_equal(errstr, DIR "/no-such-file.yaml: No such file or directory");
    vg_config_fini(&cfg);
}

static void test_relative_paths(void **state)
{
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    assert_int_equal(load(&cfg, "relative-rules.yaml", errstr, sizeof(errstr)), VG_OK);
    ASSERT_STRV(cfg.rules, cfg.n_rules, DIR "/rules/ops.yaml", "/etc/vigil/rules",
                DIR "/more/*.yaml", DIR "/./local");
    assert_string_equal(cfg.redis.data_dir, DIR "/state");
    vg_config_fini(&cfg);

    /* a single string is a list of one */
    assert_int_equal(load(&cfg, "rules-scalar.yaml", errstr, sizeof(errstr)), VG_OK);
    ASSERT_STRV(cfg.rules, cfg.n_rules, DIR "/team.yaml");
    vg_config_fini(&cfg);
}

/* From memory (vg_config_load_string): the buffer need not end in a NUL, `name` is the file. */
static void test_from_memory(void **state)
{
    static const char text[] = "kafka:\n  brokers: \"${VG_TEST_MEM_HOST}:9092\"\n"
                               "rules: [ops.yaml]\nXX";
    static const char bad[] = "kafka:\n  partitions: many\n";
    struct vg_config cfg;
    char errstr[512];

    (void)state;
    setenv("VG_TEST_MEM_HOST", "kafka.internal", 1);
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_string(&cfg, "/etc/vigil/vigil.yaml", text, sizeof(text) - 3,
                                           errstr, sizeof(errstr)),
                     VG_OK);
    assert_string_equal(cfg.kafka.brokers, "kafka.internal:9092");
    ASSERT_STRV(cfg.rules, cfg.n_rules, "/etc/vigil/ops.yaml");
    vg_config_fini(&cfg);
    unsetenv("VG_TEST_MEM_HOST");

    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_string(&cfg, "/etc/vigil/vigil.yaml", text, sizeof(text) - 3,
                                           errstr, sizeof(errstr)),
                     VG_ERR_PARSE);
    assert_non_null(strstr(errstr, "/etc/vigil/vigil.yaml:2:"));
    assert_non_null(strstr(errstr, "VG_TEST_MEM_HOST"));
    vg_config_fini(&cfg);

    vg_config_init(&cfg);
    assert_int_not_equal(
        vg_config_load_string(&cfg, "mem.yaml", bad, strlen(bad), errstr, sizeof(errstr)), VG_OK);
    assert_non_null(strstr(errstr, "mem.yaml:2:"));
    vg_config_fini(&cfg);
}

/* Over VG_YAML_MAX_BYTES: refused before parsing. */
static void test_too_large(void **state)
{
    char path[] = "/tmp/vigil-test-core-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *fp;
    struct vg_config cfg;
    char errstr[512];
    char *want;
    static char line[1024];

    (void)state;
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    memset(line, '#', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    for (size_t i = 0; i < VG_YAML_MAX_BYTES / sizeof(line); i++) {
        assert_int_equal(fwrite(line, 1, sizeof(line), fp), sizeof(line));
    }
    fputs("kafka: {}\n", fp); /* the limit is passed by this line */
    fclose(fp);

    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_file(&cfg, path, errstr, sizeof(errstr)), VG_ERR_INVALID);
    want = vg_asprintf("%s: larger than %d bytes", path, VG_YAML_MAX_BYTES);
    assert_string_equal(errstr, want);
    free(want);
    vg_config_fini(&cfg);
    unlink(path);
}

/* A bare file name: paths stay relative to the current directory, which is the file's. */
static void test_path_without_directory(void **state)
{
    struct vg_config cfg;
    char errstr[512];
    int cwd = open(".", O_RDONLY | O_DIRECTORY);

    (void)state;
    assert_true(cwd >= 0);
    assert_int_equal(chdir(DIR), 0);
    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_file(&cfg, "relative-rules.yaml", errstr, sizeof(errstr)),
                     VG_OK);
    ASSERT_STRV(cfg.rules, cfg.n_rules, "rules/ops.yaml", "/etc/vigil/rules", "more/*.yaml",
                "./local");
    assert_string_equal(cfg.redis.data_dir, "state");
    vg_config_fini(&cfg);

    vg_config_init(&cfg);
    assert_int_equal(vg_config_load_file(&cfg, "unknown-key.yaml", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_string_equal(
        errstr, "unknown-key.yaml:2:3: unknown key \"brokesr\" (did you mean \"brokers\"?)");
    vg_config_fini(&cfg);
    assert_int_equal(fchdir(cwd), 0);
    close(cwd);
}

/* A dispatch setting's case: the file, the environment variable's value, what comes out. */
struct dispatch_case {
    const char *yaml;
    const char *env; /* the setting's variable, NULL: unset */
    vg_err_t err;
    int64_t want_ms;  /* when VG_OK */
    const char *want; /* the message otherwise */
};

/* Load each case with $`env_name` set as it says; `field` reads the setting. */
static void run_dispatch_cases(const struct dispatch_case *cases, size_t n, const char *env_name,
                               int64_t (*field)(const struct vg_config *cfg))
{
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        struct vg_config cfg;
        char errstr[512] = "";
        vg_err_t err;

        if (cases[i].env) {
            setenv(env_name, cases[i].env, 1);
        } else {
            unsetenv(env_name);
        }
        vg_config_init(&cfg);
        err = vg_config_load_string(&cfg, "mem.yaml", cases[i].yaml, strlen(cases[i].yaml), errstr,
                                    sizeof(errstr));
        if (err != cases[i].err || (err == VG_OK && field(&cfg) != cases[i].want_ms) ||
            (err != VG_OK && strcmp(errstr, cases[i].want) != 0)) {
            print_error("case %zu %s:\n want %s %lld %s\n got  %s %lld %s\n", i, cases[i].yaml,
                        vg_err_name(cases[i].err), (long long)cases[i].want_ms,
                        cases[i].want ? cases[i].want : "", vg_err_name(err),
                        (long long)field(&cfg), errstr);
            failed++;
        }
        vg_config_fini(&cfg);
    }
    unsetenv(env_name);
    assert_int_equal(failed, 0);
}

static int64_t claim_idle_ms(const struct vg_config *cfg)
{
    return cfg->dispatch.claim_idle_ms;
}

static int64_t idle_poll_ms(const struct vg_config *cfg)
{
    return cfg->dispatch.idle_poll_ms;
}

/*
 * dispatch.claim_idle: a duration from 1s to 1h (default 60s), from the
 * file or $VIGIL_DISPATCH_CLAIM_IDLE; mistakes as "file:line:col: message".
 */
static void test_dispatch_claim_idle(void **state)
{
    static const struct dispatch_case cases[] = {
        {"kafka: {}\n", NULL, VG_OK, VG_DISPATCH_CLAIM_IDLE_MS_DEFAULT, NULL},
        {"dispatch:\n", NULL, VG_OK, VG_DISPATCH_CLAIM_IDLE_MS_DEFAULT, NULL},
        {"dispatch:\n  claim_idle: 30s\n", NULL, VG_OK, 30000, NULL},
        {"dispatch:\n  claim_idle: 2m\n", NULL, VG_OK, 120000, NULL},
        {"dispatch: {claim_idle: 1s}\n", NULL, VG_OK, 1000, NULL},
        {"dispatch:\n  claim_idle: 1h\n", NULL, VG_OK, 3600000, NULL},
        {"dispatch:\n  claim_idle: 30s\n", "3s", VG_OK, 3000, NULL},
        {"kafka: {}\n", "90s", VG_OK, 90000, NULL},
        {"dispatch:\n  claim_idle: 500ms\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:15: dispatch.claim_idle: 500ms is out of range [1s, 1h]"},
        {"dispatch:\n  claim_idle: 1h1s\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:15: dispatch.claim_idle: 1h1s is out of range [1s, 1h]"},
        {"dispatch:\n  claim_idle: 30\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:15: expected a duration like 500ms, 30s, 10m, 4h or 1h30m, got \"30\""},
        {"dispatch:\n  claim_idle: [30s]\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:15: expected a duration like 500ms, 30s, 10m, 4h or 1h30m, got a sequence"},
        {"dispatch: 30s\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:1:11: expected a mapping, got a scalar"},
        {"dispatch:\n  claim_idel: 30s\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:3: unknown key \"claim_idel\" (did you mean \"claim_idle\"?)"},
        {"kafka: {}\n", "soon", VG_ERR_INVALID, 0,
         "$VIGIL_DISPATCH_CLAIM_IDLE: expected a duration like 500ms, 30s, 10m, 4h or 1h30m, "
         "got \"soon\""},
    };
    (void)state;
    run_dispatch_cases(cases, VG_ARRAY_LEN(cases), "VIGIL_DISPATCH_CLAIM_IDLE", claim_idle_ms);
}

/*
 * dispatch.idle_poll_ms: milliseconds from 10 to 3600000 (default 1000),
 * from the file or $VIGIL_DISPATCH_IDLE_POLL_MS; mistakes as
 * "file:line:col: message".
 */
static void test_dispatch_idle_poll(void **state)
{
    static const struct dispatch_case cases[] = {
        {"kafka: {}\n", NULL, VG_OK, VG_DISPATCH_IDLE_POLL_MS_DEFAULT, NULL},
        {"dispatch:\n  claim_idle: 30s\n", NULL, VG_OK, VG_DISPATCH_IDLE_POLL_MS_DEFAULT, NULL},
        {"dispatch:\n  idle_poll_ms: 250\n", NULL, VG_OK, 250, NULL},
        {"dispatch: {idle_poll_ms: 10}\n", NULL, VG_OK, 10, NULL},
        {"dispatch:\n  idle_poll_ms: 3600000\n", NULL, VG_OK, 3600000, NULL},
        {"dispatch:\n  idle_poll_ms: 250\n", "5000", VG_OK, 5000, NULL},
        {"dispatch:\n  idle_poll_ms: 9\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:17: 9 is out of range [10, 3600000]"},
        {"dispatch:\n  idle_poll_ms: 3600001\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:17: 3600001 is out of range [10, 3600000]"},
        {"dispatch:\n  idle_poll_ms: 1s\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:17: expected an integer, got \"1s\""},
        {"dispatch:\n  idle_pol_ms: 100\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:3: unknown key \"idle_pol_ms\" (did you mean \"idle_poll_ms\"?)"},
        {"kafka: {}\n", "often", VG_ERR_INVALID, 0,
         "$VIGIL_DISPATCH_IDLE_POLL_MS: expected an integer, got \"often\""},
    };
    (void)state;
    run_dispatch_cases(cases, VG_ARRAY_LEN(cases), "VIGIL_DISPATCH_IDLE_POLL_MS", idle_poll_ms);
}

static int64_t commit_connections(const struct vg_config *cfg)
{
    return cfg->redis.commit_connections;
}

/*
 * redis.commit_connections: an integer from 1 to 64 (default 4), from the
 * file or $VIGIL_REDIS_COMMIT_CONNECTIONS; mistakes as "file:line:col: message"
 * (the dispatch settings' runner serves any integer setting).
 */
static void test_redis_commit_connections(void **state)
{
    static const struct dispatch_case cases[] = {
        {"kafka: {}\n", NULL, VG_OK, VG_REDIS_COMMIT_CONNECTIONS_DEFAULT, NULL},
        {"redis:\n  layout: partitioned\n", NULL, VG_OK, VG_REDIS_COMMIT_CONNECTIONS_DEFAULT, NULL},
        {"redis:\n  commit_connections: 1\n", NULL, VG_OK, 1, NULL},
        {"redis: {layout: partitioned, commit_connections: 64}\n", NULL, VG_OK, 64, NULL},
        {"redis:\n  commit_connections: 8\n", "2", VG_OK, 2, NULL},
        {"redis:\n  commit_connections: 0\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:23: 0 is out of range [1, 64]"},
        {"redis:\n  commit_connections: 65\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:23: 65 is out of range [1, 64]"},
        {"redis:\n  commit_connections: four\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:23: expected an integer, got \"four\""},
        {"redis:\n  commit_connection: 4\n", NULL, VG_ERR_INVALID, 0,
         "mem.yaml:2:3: unknown key \"commit_connection\" (did you mean "
         "\"commit_connections\"?)"},
        {"kafka: {}\n", "many", VG_ERR_INVALID, 0,
         "$VIGIL_REDIS_COMMIT_CONNECTIONS: expected an integer, got \"many\""},
        {"kafka: {}\n", "0", VG_ERR_INVALID, 0,
         "$VIGIL_REDIS_COMMIT_CONNECTIONS: 0 is out of range [1, 64]"},
    };
    (void)state;
    run_dispatch_cases(cases, VG_ARRAY_LEN(cases), "VIGIL_REDIS_COMMIT_CONNECTIONS",
                       commit_connections);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_files_keep_defaults),
        cmocka_unit_test(test_null_sections),
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_redis_only),
        cmocka_unit_test(test_redis_only_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_from_memory),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_path_without_directory),
        cmocka_unit_test(test_dispatch_claim_idle),
        cmocka_unit_test(test_dispatch_idle_poll),
        cmocka_unit_test(test_redis_commit_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
