/*
 * What a cached Resource costs: the struct carries no fixed buffers for
 * what most Resources never have (the pod and reason that decided a
 * runtime are heap strings, NULL when none), and its identity is one
 * allocation. The pipeline keeps up to redis.cache_resources of them, so
 * their size is most of the engine's memory beside librdkafka's queue
 * (docs/performance.md, "Memory").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/mem.h"

/* 320 bytes on x86-64 today; it was 624 with the fixed runtime_reason/runtime_pod arrays. */
#define RESOURCE_BYTES_MAX 384

static void test_struct_size(void **state)
{
    (void)state;
    if (sizeof(struct vg_resource) > RESOURCE_BYTES_MAX) {
        fail_msg("sizeof(struct vg_resource) = %zu, more than %d", sizeof(struct vg_resource),
                 RESOURCE_BYTES_MAX);
    }
}

static struct vg_resource *new_resource(void)
{
    struct vg_event ev = {0};

    ev.id = (char *)"workflow:v1:ingest:public";
    ev.type = (char *)"workflow";
    ev.version = (char *)"v1";
    ev.name = (char *)"ingest";
    ev.workspace = (char *)"public";
    return vg_resource_new_from_event(&ev);
}

/* The identity is one block owned through `id`: the other four point into it. */
static void test_identity_one_block(void **state)
{
    struct vg_resource *res = new_resource();
    const char *end;
    (void)state;

    assert_string_equal(res->id, "workflow:v1:ingest:public");
    assert_string_equal(res->type, "workflow");
    assert_string_equal(res->name, "ingest");
    assert_string_equal(res->workspace, "public");
    assert_string_equal(res->version, "v1");
    assert_ptr_equal(res->type, res->id + strlen(res->id) + 1);
    assert_ptr_equal(res->name, res->type + strlen(res->type) + 1);
    assert_ptr_equal(res->workspace, res->name + strlen(res->name) + 1);
    assert_ptr_equal(res->version, res->workspace + strlen(res->workspace) + 1);
    end = res->version + strlen(res->version);
    assert_int_equal(*end, '\0');
    /* set again: the old block goes (LeakSanitizer would say otherwise) */
    vg_resource_set_identity(res, "job:v2:b:w", "job", "v2", "b", "w");
    assert_string_equal(res->id, "job:v2:b:w");
    assert_string_equal(res->type, "job");
    assert_string_equal(res->version, "v2");
    assert_string_equal(res->name, "b");
    assert_string_equal(res->workspace, "w");
    vg_resource_destroy(res);
}

static void test_runtime_from_table(void **state)
{
    char long_reason[VG_REASON_MAX + 10];
    char long_pod[VG_POD_NAME_MAX + 10];
    static struct {
        const char *reason;
        const char *pod;
        bool want_changed;
        const char *want_reason; /* NULL: none */
        const char *want_pod;
    } cases[] = {
        {NULL, NULL, false, NULL, NULL},
        {"", "", false, NULL, NULL},
        {"OOMKilled", "api-1", true, "OOMKilled", "api-1"},
        {"OOMKilled", "api-1", false, "OOMKilled", "api-1"},
        {"", "api-1", true, NULL, "api-1"},
        {"Evicted", "api-2", true, "Evicted", "api-2"},
        {NULL, NULL, true, NULL, NULL},
    };
    struct vg_resource *res = new_resource();
    int failures = 0;
    (void)state;

    assert_null(res->runtime_reason);
    assert_null(res->runtime_pod);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool changed = vg_resource_set_runtime_from(res, cases[i].reason, cases[i].pod);
        bool ok = changed == cases[i].want_changed;

        ok = ok && (cases[i].want_reason ? res->runtime_reason && strcmp(res->runtime_reason,
                                                                         cases[i].want_reason) == 0
                                         : res->runtime_reason == NULL);
        ok = ok && (cases[i].want_pod
                        ? res->runtime_pod && strcmp(res->runtime_pod, cases[i].want_pod) == 0
                        : res->runtime_pod == NULL);
        if (!ok) {
            fprintf(stderr, "case %zu: changed %d (want %d) reason %s pod %s\n", i, changed,
                    cases[i].want_changed, res->runtime_reason ? res->runtime_reason : "(null)",
                    res->runtime_pod ? res->runtime_pod : "(null)");
            failures++;
        }
    }
    /* cut at the bounds the fixed buffers had */
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    memset(long_pod, 'p', sizeof(long_pod) - 1);
    long_pod[sizeof(long_pod) - 1] = '\0';
    assert_true(vg_resource_set_runtime_from(res, long_reason, long_pod));
    assert_int_equal(strlen(res->runtime_reason), VG_REASON_MAX - 1);
    assert_int_equal(strlen(res->runtime_pod), VG_POD_NAME_MAX - 1);
    assert_false(vg_resource_set_runtime_from(res, long_reason, long_pod));
    vg_resource_destroy(res);
    assert_int_equal(failures, 0);
}

/* A native runtime after a pod-decided one forgets the pod and reason (NULL, not ""). */
static void test_native_runtime_clears(void **state)
{
    struct vg_health_config hc = {0};
    struct vg_resource *res = new_resource();
    struct vg_event ev = {0};
    struct vg_transition out[3];
    (void)state;

    vg_resource_set_runtime_from(res, "OOMKilled", "api-1");
    ev.id = res->id;
    ev.type = res->type;
    ev.version = res->version;
    ev.name = res->name;
    ev.workspace = res->workspace;
    snprintf(ev.runtime, sizeof(ev.runtime), "%s", "running");
    ev.time_ms = 1000;
    vg_resource_clean(res);
    assert_int_equal(vg_resource_apply(&hc, res, &ev, out) > 0, true);
    assert_null(res->runtime_reason);
    assert_null(res->runtime_pod);
    assert_true(res->dirty_mask & VG_DIRTY_RUNTIME_FROM);
    vg_resource_destroy(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_size),
        cmocka_unit_test(test_identity_one_block),
        cmocka_unit_test(test_runtime_from_table),
        cmocka_unit_test(test_native_runtime_clears),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
