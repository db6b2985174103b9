/*
 * Every bad-input class, per format: the reason (the DLQ's
 * vigil.error), that `ev` is left zeroed, and the configurable limits and
 * value sets (decode.limits, decode.status_values/runtime_values),
 * including their YAML form in vigil.yaml and kafka.topics entries.
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
#include "vigil/event.h"
#include "vigil/json.h"
#include "vigil/mem.h"

#define RES "\"resource\":{\"type\":\"workflow\",\"name\":\"a\",\"workspace\":\"w\"}"
#define META "\"metadata\":{\"name\":\"p-1\",\"labels\":{\"app.kubernetes.io/name\":\"a\"}}"

static enum vg_decode_reason decode(const struct vg_decode_config *dc, enum vg_event_format fmt,
                                    const char *json, size_t len)
{
    static const struct vg_event zero;
    struct vg_event ev;
    char detail[256];
    char *buf = malloc(len ? len : 1);
    enum vg_decode_reason r;

    assert_non_null(buf);
    memcpy(buf, json, len);
    r = vg_event_decode_ex(&ev, dc, fmt, buf, len, 1, detail, sizeof(detail));
    free(buf);
    if (r == VG_DECODE_OK) {
        vg_event_fini(&ev);
    } else {
        assert_memory_equal(&ev, &zero, sizeof(ev));
        assert_true(detail[0] != '\0' || vg_decode_reason_is_skip(r));
    }
    return r;
}

static void test_classes(void **state)
{
    static const struct {
        enum vg_event_format fmt;
        const char *json;
        enum vg_decode_reason want;
    } cases[] = {
        /* every format: the envelope */
        {VG_FORMAT_AUTO, "", VG_DECODE_BAD_JSON},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\"", VG_DECODE_BAD_JSON},
        {VG_FORMAT_K8S_POD, "{} x", VG_DECODE_BAD_JSON},
        {VG_FORMAT_K8S_EVENT, "[1,2]", VG_DECODE_NOT_OBJECT},
        {VG_FORMAT_AUTO, "\"Pod\"", VG_DECODE_NOT_OBJECT},
        {VG_FORMAT_K8S_POD, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"\xc3\x28\"}}",
         VG_DECODE_NOT_UTF8},
        {VG_FORMAT_K8S_EVENT, "{\"message\":\"\xed\xa0\x80\"}", VG_DECODE_NOT_UTF8},
        /* native */
        {VG_FORMAT_NATIVE, "{\"status\":\"active\"}", VG_DECODE_NO_RESOURCE},
        {VG_FORMAT_AUTO, "{" RES "}", VG_DECODE_NO_SIGNAL},
        {VG_FORMAT_AUTO, "{" RES ",\"status\":\"paused\"}", VG_DECODE_BAD_STATUS},
        {VG_FORMAT_AUTO, "{" RES ",\"runtime\":\"exploded\"}", VG_DECODE_BAD_RUNTIME},
        {VG_FORMAT_AUTO, "{" RES ",\"runtime\":7}", VG_DECODE_BAD_RUNTIME},
        {VG_FORMAT_AUTO, "{" RES ",\"status\":\"active\",\"time\":\"yesterday\"}",
         VG_DECODE_BAD_TIME},
        {VG_FORMAT_AUTO,
         "{\"resource\":{\"type\":\"workflow\",\"name\":\"a:b\",\"workspace\":\"w\"},"
         "\"status\":\"active\"}",
         VG_DECODE_BAD_FIELD},
        /* pods */
        {VG_FORMAT_K8S_POD, "{\"kind\":\"Deployment\"," META "}", VG_DECODE_BAD_KIND},
        {VG_FORMAT_K8S_POD, "{\"kind\":\"Event\"," META "}", VG_DECODE_BAD_KIND},
        {VG_FORMAT_K8S_POD, "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\"}}",
         VG_DECODE_BAD_KIND},
        {VG_FORMAT_K8S_POD, "{\"kind\":\"Pod\"}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\",\"metadata\":7}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\",\"metadata\":{\"labels\":{}}}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p:1\"}}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":[]}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{\"app.kubernetes.io/name\":"
         "3}}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{\"app.kubernetes.io/name\":"
         "\"a:b\"}}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\"," META ",\"status\":{\"phase\":\"Exploded\"}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\"," META ",\"status\":[]}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\"," META ",\"status\":{\"containerStatuses\":{\"name\":\"m\"}}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\"," META ",\"status\":{\"containerStatuses\":[{\"name\":\"m\","
         "\"restartCount\":-1}]}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\"," META ",\"status\":{\"containerStatuses\":[{\"name\":\"m\","
         "\"ready\":\"yes\"}]}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\"," META ",\"status\":{\"containerStatuses\":[{\"name\":\"m\","
         "\"state\":{\"terminated\":{\"exitCode\":\"x\"}}}]}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"kind\":\"Pod\"," META ",\"status\":{\"startTime\":\"soon\"}}",
         VG_DECODE_BAD_TIME},
        {VG_FORMAT_AUTO,
         "{\"kind\":\"Pod\"," META ",\"status\":{\"conditions\":[{\"type\":\"Ready\","
         "\"lastTransitionTime\":17}]}}",
         VG_DECODE_BAD_TIME},
        {VG_FORMAT_AUTO, "{\"type\":\"UPSERTED\",\"object\":{\"kind\":\"Pod\"," META "}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_AUTO, "{\"object\":{\"kind\":\"Pod\"," META "}}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_K8S_POD, "{\"type\":\"ADDED\",\"object\":[]}", VG_DECODE_BAD_FIELD},
        /* Events */
        {VG_FORMAT_K8S_EVENT, "{\"kind\":\"Pod\"}", VG_DECODE_BAD_KIND},
        {VG_FORMAT_K8S_EVENT, "{\"kind\":\"Event\"}", VG_DECODE_BAD_FIELD},
        {VG_FORMAT_K8S_EVENT, "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\"}}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_K8S_EVENT,
         "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},\"count\":"
         "\"five\"}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_K8S_EVENT,
         "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},\"count\":-2}",
         VG_DECODE_BAD_FIELD},
        {VG_FORMAT_K8S_EVENT,
         "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},"
         "\"lastTimestamp\":\"10:00\"}",
         VG_DECODE_BAD_TIME},
        {VG_FORMAT_K8S_EVENT,
         "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},\"message\":"
         "7}",
         VG_DECODE_BAD_FIELD},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        enum vg_decode_reason r = decode(NULL, cases[i].fmt, cases[i].json, strlen(cases[i].json));
        if (r != cases[i].want) {
            fprintf(stderr, "case %zu (%s): got %s, want %s\n", i, cases[i].json,
                    vg_decode_reason_name(r), vg_decode_reason_name(cases[i].want));
            bad++;
        }
        assert_false(vg_decode_reason_is_skip(cases[i].want));
    }
    assert_int_equal(bad, 0);
}

/*
 * Hostile input in the Kubernetes formats: raw control characters, the
 * same key twice (a label, the watch type), numbers no field can hold,
 * label maps far over the limit. Explicit lengths: NULs are possible.
 */
static void test_hostile(void **state)
{
#define H(f, s, r)                                                                                 \
    {                                                                                              \
        f, s, sizeof(s) - 1, r                                                                     \
    }
#define CS(x)                                                                                      \
    "{\"kind\":\"Pod\"," META ",\"status\":{\"containerStatuses\":[{\"name\":\"m\"," x "}]}}"
    static const struct {
        enum vg_event_format fmt;
        const char *json;
        size_t len;
        enum vg_decode_reason want;
    } cases[] = {
        /* raw control characters in strings */
        H(VG_FORMAT_AUTO,
          "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"labels\":{"
          "\"app.kubernetes.io/name\":\"api\0evil\"}}}",
          VG_DECODE_CONTROL_CHAR),
        H(VG_FORMAT_K8S_POD, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\x01\"}}",
          VG_DECODE_CONTROL_CHAR),
        H(VG_FORMAT_K8S_EVENT,
          "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},"
          "\"message\":\"two\nlines\"}",
          VG_DECODE_CONTROL_CHAR),
        /* the same key twice */
        H(VG_FORMAT_AUTO,
          "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"labels\":{"
          "\"app.kubernetes.io/name\":\"api\",\"app.kubernetes.io/name\":\"evil\"}}}",
          VG_DECODE_DUPLICATE_KEY),
        H(VG_FORMAT_AUTO,
          "{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\"," META "}}",
          VG_DECODE_DUPLICATE_KEY),
        H(VG_FORMAT_K8S_POD, "{\"kind\":\"Pod\",\"kind\":\"Pod\"," META "}",
          VG_DECODE_DUPLICATE_KEY),
        H(VG_FORMAT_AUTO,
          CS("\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"},"
             "\"waiting\":{\"reason\":\"ContainerCreating\"}}"),
          VG_DECODE_DUPLICATE_KEY),
        H(VG_FORMAT_K8S_EVENT,
          "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\",\"name\":"
          "\"q\"}}",
          VG_DECODE_DUPLICATE_KEY),
        /* numbers: too large, infinite, negative zero */
        H(VG_FORMAT_AUTO, CS("\"restartCount\":1e999"), VG_DECODE_BAD_FIELD),
        H(VG_FORMAT_AUTO, CS("\"restartCount\":18446744073709551616"), VG_DECODE_BAD_FIELD),
        H(VG_FORMAT_AUTO, CS("\"restartCount\":2147483648"), VG_DECODE_BAD_FIELD),
        H(VG_FORMAT_AUTO, CS("\"restartCount\":-0"), VG_DECODE_OK),
        H(VG_FORMAT_AUTO, CS("\"state\":{\"terminated\":{\"exitCode\":-1e999}}"),
          VG_DECODE_BAD_FIELD),
        H(VG_FORMAT_AUTO, CS("\"state\":{\"terminated\":{\"exitCode\":9223372036854775808}}"),
          VG_DECODE_BAD_FIELD),
        H(VG_FORMAT_K8S_EVENT,
          "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},\"count\":"
          "1e999}",
          VG_DECODE_BAD_FIELD),
        H(VG_FORMAT_K8S_EVENT,
          "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},\"count\":"
          "-0}",
          VG_DECODE_OK),
        /* an overlong encoding in a label key, an encoded surrogate in a namespace */
        H(VG_FORMAT_AUTO,
          "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{\"\xc0\xaf\":\"v\"}}}",
          VG_DECODE_NOT_UTF8),
        H(VG_FORMAT_AUTO,
          "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"\xed\xa0\x80\"}}",
          VG_DECODE_NOT_UTF8),
    };
#undef CS
#undef H
    struct vg_buf b = {0};
    char *json;
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        enum vg_decode_reason r = decode(NULL, cases[i].fmt, cases[i].json, cases[i].len);
        if (r != cases[i].want) {
            fprintf(stderr, "case %zu (%.120s): got %s, want %s\n", i, cases[i].json,
                    vg_decode_reason_name(r), vg_decode_reason_name(cases[i].want));
            bad++;
        }
    }
    assert_int_equal(bad, 0);

    /* an enormous label map (60000 labels, under the 1 MiB message limit): refused at the 65th */
    vg_buf_puts(&b, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{");
    for (int i = 0; i < 60000; i++) {
        vg_buf_printf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
    }
    vg_buf_puts(&b, "}}}");
    json = vg_buf_steal(&b);
    assert_true(strlen(json) < VG_MAX_EVENT_BYTES);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_TOO_MANY_LABELS);
    free(json);
}

/*
 * Pods and Events are bounded by the time vigil orders them by: a pod's
 * newest timestamp (whichever field it is in), an Event's lastTimestamp
 * (else eventTime, firstTimestamp, creationTimestamp). A pod's
 * deletionTimestamp lies in the future by design and is not used.
 */
static void test_future_time_k8s(void **state)
{
#define NOW INT64_C(1795860000000) /* 2026-11-28T10:00:00Z */
#define EVT "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},"
    static const struct {
        const char *json;
        enum vg_decode_reason want;
    } cases[] = {
        {"{\"kind\":\"Pod\"," META ",\"status\":{\"phase\":\"Running\",\"startTime\":"
         "\"2026-11-28T10:04:00Z\"}}",
         VG_DECODE_OK},
        {"{\"kind\":\"Pod\"," META ",\"status\":{\"phase\":\"Running\",\"startTime\":"
         "\"2999-01-01T00:00:00Z\"}}",
         VG_DECODE_FUTURE_TIME},
        {"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"creationTimestamp\":"
         "\"2026-11-28T10:06:00Z\",\"labels\":{\"app.kubernetes.io/name\":\"a\"}}}",
         VG_DECODE_FUTURE_TIME},
        /* a container's last state, long ago in the future */
        {"{\"kind\":\"Pod\"," META ",\"status\":{\"startTime\":\"2026-11-28T09:00:00Z\","
         "\"containerStatuses\":[{\"name\":\"m\",\"lastState\":{\"terminated\":{"
         "\"reason\":\"OOMKilled\",\"finishedAt\":\"2999-01-01T00:00:00Z\"}}}]}}",
         VG_DECODE_FUTURE_TIME},
        {"{\"kind\":\"Pod\"," META ",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
         "\"True\",\"lastTransitionTime\":\"2027-01-01T00:00:00Z\"}]}}",
         VG_DECODE_FUTURE_TIME},
        {"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"deletionTimestamp\":"
         "\"2026-11-28T10:30:00Z\",\"creationTimestamp\":\"2026-11-28T09:00:00Z\",\"labels\":{"
         "\"app.kubernetes.io/name\":\"a\"}}}",
         VG_DECODE_OK},
        /* Events: the timestamp vigil uses decides */
        {EVT "\"lastTimestamp\":\"2999-01-01T00:00:00Z\"}", VG_DECODE_FUTURE_TIME},
        {EVT "\"eventTime\":\"2026-11-28T10:05:01Z\"}", VG_DECODE_FUTURE_TIME},
        {EVT "\"eventTime\":\"2026-11-28T10:05:00Z\"}", VG_DECODE_OK},
        {EVT "\"lastTimestamp\":\"2026-11-28T09:00:00Z\",\"firstTimestamp\":"
             "\"2999-01-01T00:00:00Z\"}",
         VG_DECODE_OK},
    };
#undef EVT
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event ev;
        char detail[256] = "";
        enum vg_decode_reason r =
            vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, cases[i].json, strlen(cases[i].json), NOW,
                               detail, sizeof(detail));
        if (r == VG_DECODE_OK) {
            r = vg_event_check_time(&ev, NULL, NOW, detail, sizeof(detail));
            vg_event_fini(&ev);
        }
        if (r != cases[i].want) {
            fprintf(stderr, "case %zu (%.160s): got %s (%s), want %s\n", i, cases[i].json,
                    vg_decode_reason_name(r), detail, vg_decode_reason_name(cases[i].want));
            bad++;
        }
    }
    assert_int_equal(bad, 0);
#undef NOW
}

static char *repeat(char c, size_t n)
{
    char *s = vg_malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Limits: defaults, then lowered through struct vg_decode_config. */
static void test_limits(void **state)
{
    struct vg_decode_config dc;
    char *big_name = repeat('n', 4097);
    char *big_msg = repeat('m', 64 * 1024 + 1);
    char *deep = NULL;
    char *json;
    struct vg_buf b = {0};
    (void)state;

    /* default limits */
    json = vg_asprintf("{\"resource\":{\"type\":\"w\",\"name\":\"%s\",\"workspace\":\"w\"},"
                       "\"status\":\"active\"}",
                       big_name);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_FIELD);
    free(json);
    json = vg_asprintf("{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\"},"
                       "\"message\":\"%s\"}",
                       big_msg);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_FIELD);
    free(json);
    /* a pod name over 253 bytes (a DNS subdomain) */
    json = vg_asprintf("{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%.254s\"}}", big_name);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_FIELD);
    free(json);
    for (int i = 0; i < 33; i++) {
        vg_buf_puts(&b, "{\"a\":");
    }
    vg_buf_puts(&b, "1");
    for (int i = 0; i < 33; i++) {
        vg_buf_putc(&b, '}');
    }
    deep = vg_buf_steal(&b);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, deep, strlen(deep)), VG_DECODE_TOO_DEEP);
    /* 65 labels */
    vg_buf_puts(&b, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{");
    for (int i = 0; i < 65; i++) {
        vg_buf_printf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
    }
    vg_buf_puts(&b, "}}}");
    json = vg_buf_steal(&b);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_TOO_MANY_LABELS);

    /* configured lower */
    vg_decode_config_init(&dc);
    dc.max_labels = 64;
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_TOO_MANY_LABELS);
    dc.max_labels = 100;
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_SKIP_NO_NAME_LABEL);
    free(json);
    dc.max_message_bytes = 40;
    json = vg_strdup("{" RES ",\"status\":\"active\"}");
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_TOO_LARGE);
    dc.max_message_bytes = strlen(json);
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_OK);
    free(json);
    dc.max_message_bytes = VG_MAX_EVENT_BYTES;
    dc.max_depth = 2;
    json = vg_strdup("{" RES ",\"status\":\"active\",\"x\":{\"y\":{}}}");
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_TOO_DEEP);
    free(json);
    dc.max_depth = 32;
    dc.max_name_bytes = 3;
    json = vg_strdup("{\"resource\":{\"type\":\"svc\",\"name\":\"abcd\",\"workspace\":\"w\"},"
                     "\"status\":\"active\"}");
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_FIELD);
    free(json);
    dc.max_name_bytes = 4096;
    dc.max_message_text_bytes = 4;
    json = vg_strdup("{" RES ",\"status\":\"active\",\"message\":\"hello\"}");
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_FIELD);
    free(json);
    vg_decode_config_fini(&dc);
    /* exactly 1 MiB passes the size check (then fails as JSON); one more byte does not */
    json = repeat(' ', VG_MAX_EVENT_BYTES);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, VG_MAX_EVENT_BYTES), VG_DECODE_BAD_JSON);
    free(json);
    json = repeat(' ', VG_MAX_EVENT_BYTES + 1);
    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, VG_MAX_EVENT_BYTES + 1),
                     VG_DECODE_TOO_LARGE);
    free(json);
    free(deep);
    free(big_name);
    free(big_msg);
}

/* Extra status/runtime values are accepted when configured, and count as progressing. */
static void test_value_sets(void **state)
{
    static const char *const status[] = {"active", "error", "deleted", "paused"};
    static const char *const runtime[] = {"pending", "running", "succeeded", "failed",
                                          "hibernating"};
    static const char *const batch[] = {"workflow"};
    struct vg_health_config hc = {(char **)batch, 1};
    struct vg_decode_config dc;
    struct vg_event ev;
    const char *json = "{" RES ",\"status\":\"paused\",\"runtime\":\"hibernating\"}";
    (void)state;

    assert_int_equal(decode(NULL, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_STATUS);
    vg_decode_config_init(&dc);
    vg_decode_config_set_values(&dc.status_values, &dc.n_status_values, status, 4);
    vg_decode_config_set_values(&dc.runtime_values, &dc.n_runtime_values, runtime, 5);
    assert_int_equal(vg_event_decode_ex(&ev, &dc, VG_FORMAT_AUTO, json, strlen(json), 1, NULL, 0),
                     VG_DECODE_OK);
    assert_string_equal(ev.status, "paused");
    assert_string_equal(ev.runtime, "hibernating");
    assert_int_equal(vg_health_compute(&hc, ev.type, ev.status, ev.runtime), VG_HEALTH_PROGRESSING);
    vg_event_fini(&ev);
    /* a set without "error": error is now unknown */
    vg_decode_config_set_values(&dc.status_values, &dc.n_status_values, status, 1);
    json = "{" RES ",\"status\":\"error\"}";
    assert_int_equal(decode(&dc, VG_FORMAT_AUTO, json, strlen(json)), VG_DECODE_BAD_STATUS);
    vg_decode_config_fini(&dc);
}

static vg_err_t load(struct vg_config *cfg, const char *yaml, char *errstr, size_t size)
{
    char *dir = vg_test_mkdtemp("events-config");
    char *path = vg_asprintf("%s/vigil.yaml", dir);
    vg_err_t err;

    assert_true(vg_test_write_file(path, yaml, strlen(yaml)));
    vg_config_init(cfg);
    err = vg_config_load_file(cfg, path, errstr, size);
    vg_test_rmrf(dir);
    free(path);
    free(dir);
    return err;
}

static void test_config(void **state)
{
    static const struct {
        const char *yaml;
        const char *error; /* NULL: loads */
    } bad[] = {
        {"kafka:\n  topics: [{name: a, format: xml}]\n", "unknown format \"xml\""},
        {"kafka:\n  topics: [{format: native}]\n", "needs \"name\""},
        {"kafka:\n  topics: [{name: a, fromat: native}]\n", "unknown key \"fromat\""},
        {"kafka:\n  topics: [a, {name: a}]\n", "listed twice"},
        {"kafka:\n  topics: []\n", "at least one topic"},
        {"decode:\n  limits: {max_depth: 0}\n", "vigil.yaml:2:"},
        {"decode:\n  limits: {max_lables: 3}\n", "unknown key \"max_lables\""},
        {"decode:\n  limits: {max_clock_skew_ms: -1}\n", "out of range"},
        {"decode:\n  limits: {max_clock_skew_ms: 5m}\n", "vigil.yaml:2:"},
        {"decode:\n  status_values: []\n", "at least one value"},
        {"decode:\n  runtime_values: [pending, "
         "a-value-that-is-longer-than-thirty-one-bytes]\n",
         "1..31 bytes"},
        {"decode:\n  status_values: [active, \"on\\x1fhold\"]\n", "vigil.yaml:2:"},
        {"decode:\n  runtime_values: [pending, \"run\\tning\"]\n", "no control characters"},
        {"decode:\n  kubernetes: {labels: {name: ''}}\n", "must not be empty"},
        {"decode:\n  kubernetes: {labels: {team: x}}\n", "unknown key \"team\""},
        {"decode:\n  kubernetes: {default_type: 'a:b'}\n", "must not contain ':'"},
        {"decode:\n  kubernetes: [1]\n", "expected a mapping"},
    };
    struct vg_config cfg;
    char errstr[512];
    const char *good =
        "kafka:\n"
        "  topics:\n"
        "    - vigil.events\n"
        "    - {name: k8s.pods, format: k8s-pod}\n"
        "    - {name: k8s.events, format: k8s-event}\n"
        "    - {name: legacy, format: native}\n"
        "    - {name: mixed, format: auto}\n"
        "decode:\n"
        "  limits: {max_message_bytes: 2048, max_depth: 16, max_name_bytes: 256,\n"
        "           max_message_text_bytes: 1024, max_labels: 8, max_clock_skew_ms: 60000}\n"
        "  status_values: [active, error, deleted, paused]\n"
        "  runtime_values: [pending, running, succeeded, failed, hibernating]\n"
        "  kubernetes:\n"
        "    labels: {type: vigil.io/type, name: vigil.io/name, version: vigil.io/version,\n"
        "             owner: vigil.io/owner}\n"
        "    workspace_from: vigil.io/workspace\n"
        "    default_type: deployment\n";
    (void)state;

    /* defaults */
    vg_config_init(&cfg);
    assert_int_equal(cfg.decode.max_message_bytes, 1024 * 1024);
    assert_int_equal(cfg.decode.max_depth, 32);
    assert_int_equal(cfg.decode.max_name_bytes, 4096);
    assert_int_equal(cfg.decode.max_message_text_bytes, 64 * 1024);
    assert_int_equal(cfg.decode.max_labels, 64);
    assert_int_equal(cfg.decode.max_clock_skew_ms, 300000);
    assert_int_equal(cfg.decode.n_status_values, 3);
    assert_int_equal(cfg.decode.n_runtime_values, 4);
    assert_string_equal(cfg.decode.label_type, "app.kubernetes.io/component");
    assert_string_equal(cfg.decode.label_name, "app.kubernetes.io/name");
    assert_string_equal(cfg.decode.label_version, "app.kubernetes.io/version");
    assert_string_equal(cfg.decode.label_owner, "app.kubernetes.io/managed-by");
    assert_string_equal(cfg.decode.workspace_from, "namespace");
    assert_int_equal(vg_config_topic_format(&cfg.kafka, "vigil.events"), VG_FORMAT_AUTO);
    vg_config_fini(&cfg);

    assert_int_equal(load(&cfg, good, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(cfg.kafka.n_topics, 5);
    assert_string_equal(cfg.kafka.topics[1], "k8s.pods");
    assert_null(cfg.kafka.topics[5]);
    assert_int_equal(vg_config_topic_format(&cfg.kafka, "vigil.events"), VG_FORMAT_AUTO);
    assert_int_equal(vg_config_topic_format(&cfg.kafka, "k8s.pods"), VG_FORMAT_K8S_POD);
    assert_int_equal(vg_config_topic_format(&cfg.kafka, "k8s.events"), VG_FORMAT_K8S_EVENT);
    assert_int_equal(vg_config_topic_format(&cfg.kafka, "legacy"), VG_FORMAT_NATIVE);
    assert_int_equal(vg_config_topic_format(&cfg.kafka, "mixed"), VG_FORMAT_AUTO);
    assert_int_equal(cfg.decode.max_message_bytes, 2048);
    assert_int_equal(cfg.decode.max_depth, 16);
    assert_int_equal(cfg.decode.max_name_bytes, 256);
    assert_int_equal(cfg.decode.max_message_text_bytes, 1024);
    assert_int_equal(cfg.decode.max_labels, 8);
    assert_int_equal(cfg.decode.max_clock_skew_ms, 60000);
    assert_int_equal(cfg.decode.n_status_values, 4);
    assert_string_equal(cfg.decode.status_values[3], "paused");
    assert_string_equal(cfg.decode.runtime_values[4], "hibernating");
    assert_string_equal(cfg.decode.label_name, "vigil.io/name");
    assert_string_equal(cfg.decode.label_owner, "vigil.io/owner");
    assert_string_equal(cfg.decode.workspace_from, "vigil.io/workspace");
    assert_string_equal(cfg.decode.default_type, "deployment");
    vg_config_fini(&cfg);

    /* a single topic as a plain string still works */
    assert_int_equal(load(&cfg, "kafka:\n  topics: events\n", errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(cfg.kafka.n_topics, 1);
    assert_string_equal(cfg.kafka.topics[0], "events");
    vg_config_fini(&cfg);

    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        vg_err_t err = load(&cfg, bad[i].yaml, errstr, sizeof(errstr));
        if (err == VG_OK || !strstr(errstr, bad[i].error)) {
            fprintf(stderr, "bad case %zu: err=%d errstr=%s (want %s)\n", i, (int)err, errstr,
                    bad[i].error);
        }
        assert_int_not_equal(err, VG_OK);
        assert_non_null(strstr(errstr, bad[i].error));
        vg_config_fini(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_hostile),    cmocka_unit_test(test_future_time_k8s),
        cmocka_unit_test(test_value_sets), cmocka_unit_test(test_config),
    };
    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
