/*
 * Golden output of the read-only commands: Resources are written through
 * vg_state_resolve/vg_resource_apply/vg_state_commit with fixed event
 * times into a private redis-server, then the real `vigil` binary prints
 * them with --redis URL (or a config that names it), and stdout must
 * equal the files in tests/fixtures/golden/ byte for byte. SINCE is relative to "now":
 * VIGIL_NOW_MS pins it. The names include German (ß, ü), CJK (wide: two
 * columns each) and a 150-character name; one message holds control
 * characters. VIGIL_UPDATE_GOLDEN=1 rewrites the files instead (review the
 * diff before committing). The YAML output is also parsed back (libyaml,
 * through core/yaml.c) and must say exactly what the JSON says. The
 * read-only commands also run with a config whose sink secrets cannot be
 * resolved on this machine.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "state_redis.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

#define T0 1795860000000LL /* 2026-11-28T10:00:00Z */
#define MIN 60000LL
#define NOW (T0 + 3 * 60 * MIN + 5 * MIN + 30000) /* T0 + 3h5m30s */

static const char *const batch_types[] = {"workflow", "job", "cronjob", "batch"};
static const struct vg_health_config hc = {(char **)batch_types, 4};

struct fixture {
    struct vg_test_redis redis;
    const char *url;
    int64_t offset;
    bool use_config; /* the command line carries its own -c */
};

static struct fixture fx;

static const char *long_name(void)
{
    static char name[151];

    if (!name[0]) {
        const char *part = "customer-360-refresh-";

        for (size_t i = 0; i < 150; i++) {
            name[i] = part[i % strlen(part)];
        }
        name[150] = '\0';
    }
    return name;
}

/* Apply one event (fixed time, the next offset) and commit it with its transitions. */
static void apply(const char *type, const char *version, const char *name, const char *ws,
                  const char *owner, const char *status, const char *runtime, int64_t t,
                  const char *message)
{
    struct vg_event ev;
    char errstr[512];

    vg_test_event_make(&ev, &(struct vg_test_event){.type = type,
                                                    .version = version,
                                                    .name = name,
                                                    .workspace = ws,
                                                    .owner = owner,
                                                    .status = status,
                                                    .runtime = runtime,
                                                    .time_ms = t,
                                                    .topic = "golden.events",
                                                    .partition = (int32_t)(fx.offset % 3),
                                                    .offset = fx.offset++,
                                                    .message = message});
    if (vg_test_state_apply_one(fx.redis.st, &hc, &ev, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "commit: %s\n", errstr);
        fail();
    }
    vg_event_fini(&ev);
}

static void populate(void)
{
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_commit cm = {0};
    char errstr[512];
    redisReply *reply;
    char *key;

    apply("workflow", "v1", "ingestion-delivery-events", "public", "iamgroot", "active", "pending",
          T0, NULL);
    apply("workflow", "v1", "ingestion-delivery-events", "public", "iamgroot", "", "running",
          T0 + 1 * MIN, "started by scheduler");
    apply("workflow", "v1", "ingestion-delivery-events", "public", "iamgroot", "", "succeeded",
          T0 + 42 * MIN, "3 steps, 0 retries");
    apply("service", "v2", "orders-api", "sandbox", "team-orders", "active", "running",
          T0 + 5 * MIN, NULL);
    apply("service", "v2", "orders-api", "sandbox", "team-orders", "error", "", T0 + 185 * MIN,
          "readiness probe failed\n\033[31mconnection refused\033[0m");
    apply("workflow", "v1", "daten-fluß-ü", "öffentlich", "jörg", "active", "running", T0 + 2 * MIN,
          NULL);
    apply("depot", "v1", "数据管道-北京", "生产", "王伟", "active", "", T0 + 10 * MIN, NULL);
    apply("workflow", "v3", long_name(), "public", "iamgroot", "active", "failed",
          T0 - 2 * 24 * 60 * MIN, "step 3 of 3 failed: OOMKilled");
    apply("job", "v1", "true", "yes", "on", "deleted", "", T0 + 185 * MIN + 20000, NULL);

    /* An open incident on orders-api, as the rules would leave it. */
    memset(&ev, 0, sizeof(ev));
    ev.id = vg_resource_id("service", "v2", "orders-api", "sandbox");
    assert_int_equal(vg_state_resolve(fx.redis.st, &ev, 1, &res, errstr, sizeof(errstr)), VG_OK);
    vg_resource_add_incident(res, "resource-error", "8c3f0a5e2b7d4c19", "critical", T0 + 185 * MIN)
        ->seq = 1;
    res->dirty = true;
    cm.res = &res;
    cm.n_res = 1;
    assert_int_equal(vg_state_commit(fx.redis.st, &cm, errstr, sizeof(errstr)), VG_OK);
    free(ev.id);

    /* A log line without a transition, as Kubernetes Events are attached. */
    key = vg_asprintf("golden:hist:{%s}", "service:v2:orders-api:sandbox");
    reply = redisCommand(fx.redis.raw,
                         "XADD %s * at %lld topic golden.events partition 1 offset 99 "
                         "message %s kind log reason BackOff",
                         key, (long long)(T0 + 186 * MIN), "Back-off restarting failed container");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    freeReplyObject(reply);
    free(key);
}

static int setup(void **state)
{
    char now[32];

    (void)state;
    memset(&fx, 0, sizeof(fx));
    if (vg_test_redis_start(&fx.redis, "state-golden", "golden", true) != 0) {
        return -1;
    }
    fx.url = vg_test_redis_url(&fx.redis);
    snprintf(now, sizeof(now), "%lld", (long long)NOW);
    setenv("VIGIL_NOW_MS", now, 1);
    unsetenv("NO_COLOR");
    fx.offset = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vg_test_redis_stop(&fx.redis);
    return 0;
}

/*
 * Run `vigil <args...> --redis URL --prefix golden` (or only the args when
 * fx.use_config); returns stdout (heap), asserts the exit code.
 */
static char *run_vigil(int want_rc, char **err_out, ...)
{
    char *argv[24];
    size_t argc = 0;
    char *out = NULL;
    char *err = NULL;
    const char *a;
    va_list ap;
    int rc;

    argv[argc++] = (char *)vg_test_vigil_bin();
    va_start(ap, err_out);
    while ((a = va_arg(ap, const char *)) != NULL) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    if (!fx.use_config) {
        argv[argc++] = (char *)"--redis";
        argv[argc++] = (char *)fx.url;
        argv[argc++] = (char *)"--prefix";
        argv[argc++] = (char *)"golden";
    }
    argv[argc] = NULL;
    rc = vg_test_run(argv, &out, &err);
    if (rc != want_rc) {
        fprintf(stderr, "vigil %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", argv[1], rc,
                want_rc, out, err);
    }
    assert_int_equal(rc, want_rc);
    if (err_out) {
        *err_out = err;
    } else {
        free(err);
    }
    return out;
}

/* Compare `got` with tests/fixtures/golden/<name> (or rewrite it under VIGIL_UPDATE_GOLDEN). */
static void golden(const char *name, const char *got)
{
    char *path = vg_asprintf("%s/golden/%s", VG_FIXTURES, name);
    const char *update = getenv("VIGIL_UPDATE_GOLDEN");
    char *want;

    if (update && strcmp(update, "1") == 0) {
        assert_true(vg_test_write_file(path, got, strlen(got)));
        free(path);
        return;
    }
    want = vg_test_read_file(path, NULL);
    if (!want) {
        fprintf(stderr, "missing golden file %s (run with VIGIL_UPDATE_GOLDEN=1)\n", path);
        fail();
    }
    if (strcmp(want, got) != 0) {
        fprintf(stderr, "%s differs.\n--- want\n%s--- got\n%s---\n", path, want, got);
    }
    assert_string_equal(want, got);
    free(want);
    free(path);
}

/*
 * History stream ids are Redis's clock at XADD time: replace their digits
 * with 'N' ("stream_id": "N-N") so the golden files stay stable.
 */
static char *mask_stream_ids(char *text)
{
    static const char *const keys[] = {"\"stream_id\": \"", "stream_id: \""};

    for (size_t k = 0; k < 2; k++) {
        for (char *p = strstr(text, keys[k]); p; p = strstr(p, keys[k])) {
            char *q;
            char *w;

            p += strlen(keys[k]);
            for (q = p, w = p; *q && *q != '"'; q++) {
                if (*q >= '0' && *q <= '9') {
                    if (w == p || w[-1] != 'N') {
                        *w++ = 'N';
                    }
                } else {
                    *w++ = *q;
                }
            }
            memmove(w, q, strlen(q) + 1);
        }
    }
    return text;
}

/* The YAML list must carry exactly the JSON list's fields and values. */
static void assert_yaml_matches_json(const char *yaml, const char *json)
{
    struct vg_ydoc doc;
    char errstr[512];
    cJSON *arr = cJSON_Parse(json);
    cJSON *it;
    size_t i = 0;

    assert_true(cJSON_IsArray(arr));
    if (vg_yaml_load_string(&doc, "get.yaml", yaml, strlen(yaml), 0, errstr, sizeof(errstr)) !=
        VG_OK) {
        fprintf(stderr, "yaml output does not parse: %s\n", errstr);
        fail();
    }
    assert_non_null(doc.root);
    assert_int_equal(doc.root->kind, VG_YNODE_SEQ);
    assert_int_equal(doc.root->n, (size_t)cJSON_GetArraySize(arr));
    cJSON_ArrayForEach(it, arr)
    {
        const struct vg_ynode *m = doc.root->items[i++];
        const cJSON *field;
        size_t k = 0;

        assert_int_equal(m->kind, VG_YNODE_MAP);
        assert_int_equal(m->n, (size_t)cJSON_GetArraySize(it));
        cJSON_ArrayForEach(field, it)
        {
            const struct vg_ypair *p = &m->pairs[k++];

            assert_string_equal(p->key, field->string);
            if (cJSON_IsNull(field)) {
                assert_int_equal(p->value->kind, VG_YNODE_NULL);
            } else {
                assert_int_equal(p->value->kind, VG_YNODE_SCALAR);
                assert_string_equal(p->value->str, field->valuestring);
                /* A plain scalar must not be one a YAML reader would type. */
                if (!p->value->quoted) {
                    const char *s = p->value->str;

                    assert_false(s[0] >= '0' && s[0] <= '9');
                    assert_false(!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") ||
                                 !strcmp(s, "null") || !strcmp(s, ""));
                }
            }
        }
    }
    vg_ydoc_fini(&doc);
    cJSON_Delete(arr);
}

static void test_get_golden(void **state)
{
    char *out;
    char *json;
    char *err;
    (void)state;

    populate();

    out = run_vigil(0, NULL, "get", NULL);
    golden("get_table.txt", out);
    free(out);
    out = run_vigil(0, NULL, "get", "-o", "wide", NULL);
    golden("get_wide.txt", out);
    free(out);
    json = run_vigil(0, NULL, "get", "-o", "json", NULL);
    golden("get_json.json", json);
    {
        /* The same through a config file's redis.url and redis.prefix. */
        char *cfg_path = vg_asprintf("%s/vigil.yaml", fx.redis.dir);
        char *cfg = vg_asprintf("redis: {url: \"%s\", prefix: golden}\n", fx.url);

        assert_true(vg_test_write_file(cfg_path, cfg, strlen(cfg)));
        fx.use_config = true;
        out = run_vigil(0, NULL, "get", "-c", cfg_path, "-o", "json", NULL);
        fx.use_config = false;
        assert_string_equal(out, json);
        free(out);
        free(cfg);
        free(cfg_path);
    }
    out = run_vigil(0, NULL, "get", "-o", "yaml", NULL);
    golden("get_yaml.yaml", out);
    assert_yaml_matches_json(out, json);
    free(out);
    free(json);

    /* Filters through the indexes: type, workspace, name glob (with and without a literal prefix).
     */
    out = run_vigil(0, NULL, "get", "-t", "workflow", "-n", "*-*", "-o", "wide", NULL);
    golden("get_filtered_wide.txt", out);
    free(out);
    out = run_vigil(0, NULL, "get", "-w", "生产", "-a", NULL);
    golden("get_cjk_table.txt", out);
    free(out);
    out = run_vigil(0, NULL, "get", "-n", "daten-*", "-o", "json", NULL);
    golden("get_name_json.json", out);
    free(out);
    out = run_vigil(0, NULL, "get", "--owner", "team-orders", "-o", "yaml", NULL);
    golden("get_owner_yaml.yaml", out);
    free(out);

    /* Nothing matches: "No resources found." on stderr, exit 0. */
    out = run_vigil(0, &err, "get", "-t", "nosuchtype", NULL);
    assert_string_equal(out, "");
    assert_string_equal(err, "No resources found.\n");
    free(out);
    free(err);
    out = run_vigil(0, &err, "get", "-n", "zzz*", "-o", "json", NULL);
    assert_string_equal(out, "[]\n");
    assert_string_equal(err, "No resources found.\n");
    free(out);
    free(err);

    /* One Resource in full. */
    out = run_vigil(0, NULL, "get", "service:v2:orders-api:sandbox", NULL);
    golden("get_detail.txt", out);
    free(out);
    out = run_vigil(0, NULL, "get", "-o", "json", "service:v2:orders-api:sandbox", NULL);
    golden("get_detail.json", out);
    {
        cJSON *obj = cJSON_Parse(out);

        assert_non_null(obj);
        assert_string_equal(cJSON_GetObjectItem(obj, "health_since")->valuestring,
                            "2026-11-28T13:05:00Z");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(obj, "incidents")), 1);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(obj, "pods")), 0);
        cJSON_Delete(obj);
    }
    free(out);
    out = run_vigil(0, NULL, "get", "-o", "yaml", "depot:v1:数据管道-北京:生产", NULL);
    golden("get_detail_cjk.yaml", out);
    free(out);
    out = run_vigil(1, &err, "get", "service:v9:nope:nowhere", NULL);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "service:v9:nope:nowhere"));
    free(out);
    free(err);

    /* History, newest last, with a log line. */
    out = run_vigil(0, NULL, "history", "service:v2:orders-api:sandbox", NULL);
    golden("history.txt", out);
    free(out);
    out = run_vigil(0, NULL, "history", "-o", "json", "service:v2:orders-api:sandbox", NULL);
    golden("history.json", mask_stream_ids(out));
    free(out);
    out = run_vigil(0, NULL, "history", "-n", "2", "-o", "yaml",
                    "workflow:v1:ingestion-delivery-events:public", NULL);
    golden("history_n2.yaml", mask_stream_ids(out));
    free(out);
    out = run_vigil(1, &err, "history", "service:v9:nope:nowhere", NULL);
    assert_non_null(strstr(err, "not found"));
    free(out);
    free(err);

    /* Data from a vigil without the name index: name search falls back to the id sets. */
    {
        redisReply *reply = redisCommand(
            fx.redis.raw, "ZREM golden:idx:name %b", "orders-api\0service:v2:orders-api:sandbox",
            strlen("orders-api") + 1 + strlen("service:v2:orders-api:sandbox"));
        assert_non_null(reply);
        assert_int_equal(reply->integer, 1);
        freeReplyObject(reply);
    }
    out = run_vigil(0, NULL, "get", "-n", "daten-*", "-o", "json", NULL);
    golden("get_name_json.json", out);
    free(out);
    out = run_vigil(0, NULL, "get", "-n", "orders-*", "--owner", "team-orders", "-o", "yaml", NULL);
    golden("get_owner_yaml.yaml", out);
    free(out);
}

/* Write `text` to <fx.redis.dir>/<name>; returns the path (heap). */
static char *write_config(const char *name, const char *text)
{
    char *path = vg_asprintf("%s/%s", fx.redis.dir, name);

    assert_true(vg_test_write_file(path, text, strlen(text)));
    return path;
}

/* Neither output of a command shows the secret. */
static void assert_no_secret(const char *out, const char *err)
{
    assert_null(strstr(out ? out : "", "s3cret"));
    assert_null(strstr(err ? err : "", "s3cret"));
}

/*
 * The commands that only read Redis need only the config's `redis:`: a
 * webhook URL whose ${VAR} is unset here, a Kafka section that cannot
 * resolve either and rules that do not exist do not stop them. Commands
 * that write or deliver (check, dlq retry, silence add) still resolve
 * everything and name the variable, never a secret's value.
 */
static void test_readonly_without_sink_secrets(void **state)
{
    char *cfg;
    char *text;
    char *out;
    char *err;
    (void)state;

    populate();
    unsetenv("VG_TEST_UNSET_WEBHOOK");
    unsetenv("VG_TEST_UNSET_BROKERS");
    setenv("VG_TEST_SLACK_TOKEN", "xoxb-s3cret-token", 1);
    text =
        vg_asprintf("redis: {url: \"%s\", prefix: golden}\n"
                    "sinks:\n"
                    "  ops: {type: webhook, url: \"https://hooks.example.com/"
                    "${VG_TEST_UNSET_WEBHOOK}\"}\n"
                    "  chat: {type: slack, token: \"${VG_TEST_SLACK_TOKEN}\", channel: \"#ops\"}\n"
                    "  signed: {type: webhook, url: \"https://x.example.com/h\", secret: "
                    "\"file:/nonexistent/whsec\"}\n"
                    "kafka: {brokers: \"${VG_TEST_UNSET_BROKERS}\"}\n"
                    "rules: [/nonexistent/rules]\n",
                    fx.url);
    cfg = write_config("vigil.yaml", text);
    fx.use_config = true;

    out = run_vigil(0, &err, "get", "-c", cfg, NULL);
    golden("get_table.txt", out);
    assert_no_secret(out, err);
    free(out);
    free(err);
    out = run_vigil(0, &err, "history", "-c", cfg, "service:v2:orders-api:sandbox", NULL);
    golden("history.txt", out);
    free(out);
    free(err);
    out = run_vigil(0, &err, "incidents", "-c", cfg, "-o", "json", NULL);
    assert_string_equal(out, "[]\n");
    free(out);
    free(err);
    out = run_vigil(0, &err, "incidents", "show", "-c", cfg, "8c3f0a5e2b7d4c19", NULL);
    assert_non_null(strstr(err, "No notifications recorded"));
    free(out);
    free(err);
    out = run_vigil(0, &err, "dlq", "-c", cfg, "list", "-o", "json", NULL);
    assert_string_equal(out, "[]\n");
    free(out);
    free(err);
    out = run_vigil(0, &err, "silence", "list", "-c", cfg, "-o", "json", NULL);
    assert_string_equal(out, "[]\n");
    free(out);
    free(err);

    /* Commands that deliver or write resolve every secret: the variable named, no value. */
    out = run_vigil(1, &err, "check", "-c", cfg, NULL);
    assert_non_null(strstr(err, "environment variable VG_TEST_UNSET_WEBHOOK is not set"));
    assert_no_secret(out, err);
    free(out);
    free(err);
    out = run_vigil(2, &err, "dlq", "-c", cfg, "retry", "1-0", NULL);
    assert_non_null(strstr(err, "environment variable VG_TEST_UNSET_WEBHOOK is not set"));
    assert_no_secret(out, err);
    free(out);
    free(err);
    out = run_vigil(2, &err, "silence", "add", "-c", cfg, "--match", "monitor=x", "--for", "1h",
                    "--comment", "c", NULL);
    assert_non_null(strstr(err, "environment variable VG_TEST_UNSET_WEBHOOK is not set"));
    free(out);
    free(err);
    free(cfg);
    free(text);

    /* What they do read is still checked: YAML syntax with file:line:col, and redis: itself. */
    cfg = write_config("broken.yaml", "redis:\n  prefix: golden\nsinks: [unclosed\n");
    out = run_vigil(2, &err, "get", "-c", cfg, NULL);
    text = vg_asprintf("vigil: %s:4:1: ", cfg);
    if (!strstr(err, text)) {
        fprintf(stderr, "want \"%s\" in: %s\n", text, err);
    }
    assert_non_null(strstr(err, text));
    free(out);
    free(err);
    free(cfg);
    free(text);
    cfg = write_config("unset-redis.yaml", "redis: {url: \"${VG_TEST_UNSET_REDIS_URL}\"}\n");
    unsetenv("VG_TEST_UNSET_REDIS_URL");
    out = run_vigil(2, &err, "get", "-c", cfg, NULL);
    assert_non_null(strstr(err, "environment variable VG_TEST_UNSET_REDIS_URL is not set"));
    free(out);
    free(err);
    free(cfg);
    fx.use_config = false;
    unsetenv("VG_TEST_SLACK_TOKEN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_golden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_without_sink_secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
