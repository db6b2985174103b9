/*
 * The Kubernetes decoders over realistic fixtures in
 * tests/fixtures/k8s/ (Pods as `kubectl get pod -o json` prints them,
 * watch events, core/v1 Events): identity from labels, the tracked pod
 * state, the runtime that pod alone would give, event times, skips.
 * Also: format sniffing, label/workspace configuration, the pod's JSON
 * round trip. Payloads are copied into exact-size heap buffers (no NUL)
 * so ASan catches over-reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vigil/event.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define KTS INT64_C(1700000000000)
#define ID "workflow:v1:ingestion-delivery-events:public"
#define POD "ingestion-delivery-events-7d9f-x2"

static char *fixture(const char *name, size_t *len)
{
    char *path = vg_asprintf("%s/k8s/%s", VG_FIXTURES, name);
    char *text = vg_test_read_file(path, len);

    if (!text) {
        fprintf(stderr, "missing fixture %s\n", path);
    }
    assert_non_null(text);
    free(path);
    return text;
}

static enum vg_decode_reason decode_buf(struct vg_event *ev, const struct vg_decode_config *dc,
                                        enum vg_event_format fmt, const char *json, size_t len,
                                        char *detail, size_t detail_size)
{
    char *buf = malloc(len ? len : 1);
    enum vg_decode_reason r;

    assert_non_null(buf);
    memcpy(buf, json, len);
    r = vg_event_decode_ex(ev, dc, fmt, buf, len, KTS, detail, detail_size);
    free(buf);
    return r;
}

static int64_t t(const char *s)
{
    int64_t ms = 0;
    assert_true(vg_time_parse_rfc3339(s, strlen(s), &ms));
    return ms;
}

static void test_pods(void **state)
{
    static const struct {
        const char *file;
        enum vg_event_format fmt;
        const char *pod;
        const char *phase;
        bool ready;
        int restarts;
        size_t containers;
        bool deleted;
        const char *runtime; /* of this pod alone */
        const char *reason;
        const char *time;
    } cases[] = {
        {"pod-running-multi.json", VG_FORMAT_AUTO, POD, "Running", true, 0, 2, false, "running", "",
         "2026-11-28T10:00:09Z"},
        {"pod-running-multi.json", VG_FORMAT_K8S_POD, POD, "Running", true, 0, 2, false, "running",
         "", "2026-11-28T10:00:09Z"},
        {"watch-added-pending.json", VG_FORMAT_AUTO, POD, "Pending", false, 0, 1, false, "pending",
         "ContainerCreating", "2026-11-28T10:00:02Z"},
        {"pod-init-running.json", VG_FORMAT_K8S_POD, POD, "Pending", false, 0, 2, false, "pending",
         "PodInitializing", "2026-11-28T10:00:03Z"},
        {"pod-init-crashloop.json", VG_FORMAT_AUTO, POD, "Pending", false, 3, 2, false, "failed",
         "CrashLoopBackOff", "2026-11-28T10:01:10Z"},
        {"watch-modified-crashloop.json", VG_FORMAT_K8S_POD, POD, "Running", false, 5, 2, false,
         "failed", "CrashLoopBackOff", "2026-11-28T10:05:00Z"},
        {"watch-modified-oomkilled.json", VG_FORMAT_AUTO, POD, "Running", false, 1, 2, false,
         "failed", "OOMKilled", "2026-11-28T10:06:00Z"},
        {"pod-evicted.json", VG_FORMAT_AUTO, POD, "Failed", false, 0, 1, false, "failed", "Evicted",
         "2026-11-28T10:07:00Z"},
        {"pod-imagepull.json", VG_FORMAT_AUTO, POD, "Pending", false, 0, 1, false, "failed",
         "ImagePullBackOff", "2026-11-28T10:00:02Z"},
        {"pod-errimagepull.json", VG_FORMAT_AUTO, POD, "Pending", false, 0, 1, false, "failed",
         "ErrImagePull", "2026-11-28T10:00:02Z"},
        {"pod-configerror.json", VG_FORMAT_AUTO, POD, "Pending", false, 0, 1, false, "failed",
         "CreateContainerConfigError", "2026-11-28T10:00:02Z"},
        {"pod-failed-error.json", VG_FORMAT_AUTO, POD, "Failed", false, 0, 1, false, "failed",
         "Error", "2026-11-28T10:08:00Z"},
        {"pod-succeeded.json", VG_FORMAT_AUTO, "ingestion-delivery-events-job-5k2lq", "Succeeded",
         false, 0, 1, false, "succeeded", "", "2026-11-28T10:08:01Z"},
        {"watch-deleted.json", VG_FORMAT_K8S_POD, POD, "Running", false, 0, 1, true, "pending", "",
         "2026-11-28T10:09:00Z"},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event ev;
        char detail[256];
        char reason[VG_REASON_MAX];
        size_t len;
        char *json = fixture(cases[i].file, &len);
        enum vg_decode_reason r =
            decode_buf(&ev, NULL, cases[i].fmt, json, len, detail, sizeof(detail));
        const char *runtime;

        if (r != VG_DECODE_OK) {
            fprintf(stderr, "case %zu (%s): %s: %s\n", i, cases[i].file, vg_decode_reason_name(r),
                    detail);
            bad++;
            free(json);
            continue;
        }
        runtime = vg_pods_runtime(ev.pod, 1, NULL, reason);
        if (ev.kind != VG_EVENT_POD || strcmp(ev.id, ID) != 0 ||
            strcmp(ev.owner, "iamgroot") != 0 || strcmp(ev.pod->name, cases[i].pod) != 0 ||
            strcmp(ev.pod->ns, "public") != 0 || strcmp(ev.pod->phase, cases[i].phase) != 0 ||
            ev.pod->ready != cases[i].ready || ev.pod->restarts != cases[i].restarts ||
            ev.pod->n_containers != cases[i].containers || ev.pod_deleted != cases[i].deleted ||
            strcmp(runtime, cases[i].runtime) != 0 || strcmp(reason, cases[i].reason) != 0 ||
            ev.time_ms != t(cases[i].time) || ev.pod->time_ms != ev.time_ms || ev.status[0] ||
            ev.runtime[0]) {
            fprintf(stderr,
                    "case %zu (%s): kind=%d id=%s pod=%s phase=%s ready=%d restarts=%d "
                    "containers=%zu deleted=%d runtime=%s reason=%s time=%lld\n",
                    i, cases[i].file, (int)ev.kind, ev.id, ev.pod->name, ev.pod->phase,
                    (int)ev.pod->ready, (int)ev.pod->restarts, ev.pod->n_containers,
                    (int)ev.pod_deleted, runtime, reason, (long long)ev.time_ms);
            bad++;
        }
        vg_event_fini(&ev);
        free(json);
    }
    assert_int_equal(bad, 0);
}

/* Init containers are tracked (flagged init) before the regular ones. */
static void test_init_containers(void **state)
{
    struct vg_event ev;
    size_t len;
    char *json = fixture("pod-init-crashloop.json", &len);
    (void)state;

    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_AUTO, json, len, NULL, 0), VG_DECODE_OK);
    assert_int_equal(ev.pod->n_containers, 2);
    assert_string_equal(ev.pod->containers[0].name, "migrate");
    assert_true(ev.pod->containers[0].init);
    assert_string_equal(ev.pod->containers[0].state, "waiting");
    assert_string_equal(ev.pod->containers[0].reason, "CrashLoopBackOff");
    assert_int_equal(ev.pod->containers[0].restarts, 3);
    assert_string_equal(ev.pod->containers[1].name, "main");
    assert_false(ev.pod->containers[1].init);
    vg_event_fini(&ev);
    free(json);
}

static void test_skips(void **state)
{
    static const struct {
        const char *file;
        enum vg_event_format fmt;
        enum vg_decode_reason want;
    } cases[] = {
        {"pod-no-name-label.json", VG_FORMAT_AUTO, VG_DECODE_SKIP_NO_NAME_LABEL},
        {"pod-no-name-label.json", VG_FORMAT_K8S_POD, VG_DECODE_SKIP_NO_NAME_LABEL},
        {"event-node.json", VG_FORMAT_AUTO, VG_DECODE_SKIP_IGNORED},
        {"event-node.json", VG_FORMAT_K8S_EVENT, VG_DECODE_SKIP_IGNORED},
    };
    static const char *const inline_cases[] = {
        "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":"
        "\"12\"}}}",
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}",
        "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\","
        "\"name\":\"p\"}}}",
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event ev;
        static const struct vg_event zero;
        size_t len;
        char *json = fixture(cases[i].file, &len);
        enum vg_decode_reason r = decode_buf(&ev, NULL, cases[i].fmt, json, len, NULL, 0);

        if (r != cases[i].want || !vg_decode_reason_is_skip(r) ||
            memcmp(&ev, &zero, sizeof(ev)) != 0) {
            fprintf(stderr, "case %zu: got %s want %s\n", i, vg_decode_reason_name(r),
                    vg_decode_reason_name(cases[i].want));
            bad++;
        }
        free(json);
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(inline_cases); i++) {
        struct vg_event ev;
        enum vg_decode_reason r = decode_buf(&ev, NULL, VG_FORMAT_AUTO, inline_cases[i],
                                             strlen(inline_cases[i]), NULL, 0);
        if (r != VG_DECODE_SKIP_IGNORED) {
            fprintf(stderr, "inline case %zu: got %s\n", i, vg_decode_reason_name(r));
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_k8s_events(void **state)
{
    struct vg_event ev;
    char detail[256];
    size_t len;
    char *json = fixture("event-backoff.json", &len);
    (void)state;

    /* no pod labels on the Event: the identity comes later, through the pod link */
    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_AUTO, json, len, detail, sizeof(detail)),
                     VG_DECODE_OK);
    assert_int_equal(ev.kind, VG_EVENT_K8S_EVENT);
    assert_null(ev.id);
    assert_string_equal(ev.log_pod, POD);
    assert_string_equal(ev.log_ns, "public");
    assert_string_equal(ev.log_reason, "BackOff");
    assert_string_equal(ev.log_type, "Warning");
    assert_int_equal(ev.log_count, 5);
    assert_non_null(strstr(ev.message, "Back-off restarting failed container main"));
    assert_int_equal(ev.time_ms, t("2026-11-28T10:05:01Z"));
    assert_true(vg_event_set_identity(&ev, ID));
    assert_string_equal(ev.type, "workflow");
    assert_string_equal(ev.version, "v1");
    assert_string_equal(ev.name, "ingestion-delivery-events");
    assert_string_equal(ev.workspace, "public");
    assert_false(vg_event_set_identity(&ev, "a:b:c"));
    vg_event_fini(&ev);
    /* the same as k8s-event format */
    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_K8S_EVENT, json, len, NULL, 0), VG_DECODE_OK);
    vg_event_fini(&ev);
    free(json);

    /* a watch-wrapped Event that carries the pod's labels maps directly */
    json = fixture("watch-event-oomkilling.json", &len);
    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_AUTO, json, len, NULL, 0), VG_DECODE_OK);
    assert_int_equal(ev.kind, VG_EVENT_K8S_EVENT);
    assert_string_equal(ev.id, ID);
    assert_string_equal(ev.log_reason, "OOMKilling");
    assert_int_equal(ev.log_count, 1);
    vg_event_fini(&ev);
    free(json);
}

/* AUTO sniffs; an explicit format never does. */
static void test_sniff(void **state)
{
    static const char *native = "{\"resource\":{\"type\":\"workflow\",\"name\":\"a\","
                                "\"workspace\":\"w\"},\"runtime\":\"running\"}";
    static const char *bare_pod = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{"
                                  "\"app.kubernetes.io/name\":\"a\"}},\"status\":{\"phase\":"
                                  "\"Running\"}}";
    static const char *kindless_watch = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":"
                                        "\"p\",\"namespace\":\"w\",\"labels\":{"
                                        "\"app.kubernetes.io/name\":\"a\"}}}}";
    static const struct {
        const char *json;
        enum vg_event_format fmt;
        enum vg_decode_reason want;
        enum vg_event_kind kind;
        const char *id;
    } cases[] = {
        {NULL, VG_FORMAT_AUTO, VG_DECODE_OK, VG_EVENT_NATIVE, "workflow:v1:a:w"},
        {NULL, VG_FORMAT_NATIVE, VG_DECODE_OK, VG_EVENT_NATIVE, "workflow:v1:a:w"},
        {NULL, VG_FORMAT_K8S_POD, VG_DECODE_BAD_FIELD, 0, NULL},
        {NULL, VG_FORMAT_K8S_EVENT, VG_DECODE_BAD_FIELD, 0, NULL},
    };
    int bad = 0;
    struct vg_event ev;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        enum vg_decode_reason r =
            decode_buf(&ev, NULL, cases[i].fmt, native, strlen(native), NULL, 0);
        if (r != cases[i].want ||
            (r == VG_DECODE_OK && (ev.kind != cases[i].kind || strcmp(ev.id, cases[i].id) != 0))) {
            fprintf(stderr, "case %zu: %s\n", i, vg_decode_reason_name(r));
            bad++;
        }
        vg_event_fini(&ev);
    }
    assert_int_equal(bad, 0);
    /* a bare Pod on a native topic is not a native event */
    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_NATIVE, bare_pod, strlen(bare_pod), NULL, 0),
                     VG_DECODE_NO_RESOURCE);
    /* ... and on an auto topic it is a pod of "service" a in namespace default */
    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_AUTO, bare_pod, strlen(bare_pod), NULL, 0),
                     VG_DECODE_OK);
    assert_string_equal(ev.id, "service:v1:a:default");
    assert_true(ev.pod->ready == false); /* no Ready condition, no containers */
    assert_int_equal(ev.time_ms, KTS);   /* no timestamps: the Kafka one */
    vg_event_fini(&ev);
    assert_int_equal(
        decode_buf(&ev, NULL, VG_FORMAT_AUTO, kindless_watch, strlen(kindless_watch), NULL, 0),
        VG_DECODE_OK);
    assert_int_equal(ev.kind, VG_EVENT_POD);
    assert_string_equal(ev.id, "service:v1:a:w");
    assert_string_equal(ev.pod->phase, "");
    vg_event_fini(&ev);
}

/* decode.kubernetes: other label keys, workspace from a label, a default type. */
static void test_label_config(void **state)
{
    struct vg_decode_config dc;
    struct vg_event ev;
    size_t len;
    char *json = fixture("pod-running-multi.json", &len);
    (void)state;

    vg_decode_config_init(&dc);
    free(dc.label_name);
    dc.label_name = vg_strdup("pod-template-hash");
    free(dc.label_type);
    dc.label_type = vg_strdup("no.such/label");
    free(dc.workspace_from);
    dc.workspace_from = vg_strdup("app.kubernetes.io/component");
    free(dc.default_type);
    dc.default_type = vg_strdup("deployment");
    assert_int_equal(decode_buf(&ev, &dc, VG_FORMAT_AUTO, json, len, NULL, 0), VG_DECODE_OK);
    assert_string_equal(ev.id, "deployment:v1:7d9f:workflow");
    vg_event_fini(&ev);
    /* a workspace label the pod lacks: the namespace */
    free(dc.workspace_from);
    dc.workspace_from = vg_strdup("team");
    assert_int_equal(decode_buf(&ev, &dc, VG_FORMAT_AUTO, json, len, NULL, 0), VG_DECODE_OK);
    assert_string_equal(ev.id, "deployment:v1:7d9f:public");
    vg_event_fini(&ev);
    /* a name label nobody sets: skipped */
    free(dc.label_name);
    dc.label_name = vg_strdup("vigil.io/resource");
    assert_int_equal(decode_buf(&ev, &dc, VG_FORMAT_AUTO, json, len, NULL, 0),
                     VG_DECODE_SKIP_NO_NAME_LABEL);
    vg_decode_config_fini(&dc);
    free(json);
}

static void test_pod_json_roundtrip(void **state)
{
    struct vg_event ev;
    struct vg_pod back;
    char *json1;
    char *json2;
    size_t len;
    char *text = fixture("pod-init-crashloop.json", &len);
    (void)state;

    assert_int_equal(decode_buf(&ev, NULL, VG_FORMAT_AUTO, text, len, NULL, 0), VG_DECODE_OK);
    json1 = vg_pod_to_json(ev.pod);
    assert_true(vg_pod_from_json(&back, ev.pod->name, json1, strlen(json1)));
    json2 = vg_pod_to_json(&back);
    assert_string_equal(json1, json2);
    assert_string_equal(back.name, POD);
    assert_int_equal(back.n_containers, 2);
    assert_true(back.containers[0].init);
    assert_int_equal(back.last_transition_ms, ev.pod->last_transition_ms);
    vg_pod_fini(&back);
    assert_false(vg_pod_from_json(&back, "x", "[1]", 3));
    assert_false(vg_pod_from_json(&back, "x", "{\"restarts\":\"many\"}", 19));
    assert_false(vg_pod_from_json(&back, "x", "{", 1));
    vg_pod_fini(&back);
    free(json1);
    free(json2);
    vg_event_fini(&ev);
    free(text);
}

/* Every example in examples/events/ decodes (auto format), one object per line in .jsonl. */
static void test_examples(void **state)
{
    static const struct {
        const char *file;
        bool lines;
        size_t want;
    } files[] = {
        {"native.jsonl", true, 3},
        {"pod-watch.jsonl", true, 4},
        {"pod.json", false, 1},
        {"k8s-event.json", false, 1},
    };
    (void)state;

    for (size_t f = 0; f < VG_ARRAY_LEN(files); f++) {
        char *path = vg_asprintf("%s/../../examples/events/%s", VG_FIXTURES, files[f].file);
        size_t len;
        char *text = vg_test_read_file(path, &len);
        size_t n = 0;
        char *p = text;

        assert_non_null(text);
        while (p < text + len) {
            char *end = files[f].lines ? strchr(p, '\n') : text + len;
            struct vg_event ev;
            char detail[256];
            enum vg_decode_reason r;

            if (!end) {
                end = text + len;
            }
            if (end > p) {
                r = decode_buf(&ev, NULL, VG_FORMAT_AUTO, p, (size_t)(end - p), detail,
                               sizeof(detail));
                if (r != VG_DECODE_OK) {
                    fprintf(stderr, "%s line %zu: %s: %s\n", files[f].file, n + 1,
                            vg_decode_reason_name(r), detail);
                }
                assert_int_equal(r, VG_DECODE_OK);
                vg_event_fini(&ev);
                n++;
            }
            p = end + 1;
        }
        if (files[f].want) {
            assert_int_equal(n, files[f].want);
        }
        free(text);
        free(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pods),
        cmocka_unit_test(test_init_containers),
        cmocka_unit_test(test_skips),
        cmocka_unit_test(test_k8s_events),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_label_config),
        cmocka_unit_test(test_pod_json_roundtrip),
        cmocka_unit_test(test_examples),
    };
    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
