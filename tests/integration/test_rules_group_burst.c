/*
 * A burst of 500 failing workflows in one workspace, routed to a pager
 * with group_by: [workspace]: one grouped request, not 500 requests,
 * listing at most the pager's group_limit incidents (firing ones first)
 * and counting the rest. A workflow in another workspace is its own group.
 * The default bound applies when group_limit is not set.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/state.h"

static struct vg_test_env E;

#define BURST 500
#define RESOLVED 10 /* of the burst, back to succeeded before the group goes out */
#define LIMIT 20
#define DEFAULT_LIMIT 100 /* group_limit when not set (docs/rules.md) */
#define DEFAULT_BURST 150

#define RULES(extra)                                                                               \
    "monitors:\n"                                                                                  \
    "  - name: workflow-failed\n"                                                                  \
    "    match: {type: workflow}\n"                                                                \
    "    when: {runtime: {to: failed}}\n"                                                          \
    "    severity: high\n"                                                                         \
    "pagers:\n"                                                                                    \
    "  - name: oncall\n"                                                                           \
    "    sinks: [ops]\n"                                                                           \
    "    group_by: [workspace]\n"                                                                  \
    "    group_wait: 8s\n" extra

static struct vg_test_env_case C = {&E, "rules-burst", {.rules = RULES("    group_limit: 20\n")}};
static struct vg_test_env_case C_DEFAULT = {&E, "rules-burst-default", {.rules = RULES("")}};

static size_t json_size(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);

    assert_true(cJSON_IsNumber(v));
    return (size_t)v->valuedouble;
}

static void test_burst_is_one_grouped_page(void **state)
{
    size_t want = 2;
    cJSON *bodies[2];
    int public_i = -1;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    for (int i = 0; i < BURST; i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%03d", i);
        vg_test_env_produce(&E, "workflow", name, "public", "active", "failed", NULL, NULL);
    }
    for (int i = 0; i < RESOLVED; i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%03d", i);
        vg_test_env_produce(&E, "workflow", name, "public", "active", "succeeded", NULL, NULL);
    }
    vg_test_env_produce(&E, "workflow", "lonely", "sandbox", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_requests(&E, want, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);
    for (int i = 0; i < 2; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, (size_t)i);
        const char *key = vg_http_request_header(req, "idempotency-key");
        cJSON *group;

        bodies[i] = cJSON_Parse(req->body);
        assert_non_null(bodies[i]);
        assert_non_null(key);
        assert_non_null(strstr(key, "-g"));
        group = cJSON_GetObjectItem(bodies[i], "group");
        assert_true(cJSON_IsObject(group));
        assert_string_equal(cJSON_GetObjectItem(group, "pager")->valuestring, "oncall");
        if (!strcmp(
                cJSON_GetObjectItem(cJSON_GetObjectItem(group, "labels"), "workspace")->valuestring,
                "public")) {
            public_i = i;
        }
        vg_http_request_free(req);
    }
    assert_true(public_i >= 0);
    {
        cJSON *pub = bodies[public_i];
        cJSON *other = bodies[1 - public_i];
        cJSON *incs = cJSON_GetObjectItem(pub, "incidents");
        cJSON *first = cJSON_GetArrayItem(incs, 0);

        assert_string_equal(cJSON_GetObjectItem(pub, "version")->valuestring, "1");
        assert_string_equal(cJSON_GetObjectItem(pub, "status")->valuestring, "firing");
        cJSON *counts = cJSON_GetObjectItem(pub, "counts");
        const cJSON *it;

        /* LIMIT listed, all of them firing (firing before ended), the rest counted */
        assert_int_equal(cJSON_GetArraySize(incs), LIMIT);
        assert_int_equal(json_size(pub, "truncated"), BURST - LIMIT);
        assert_int_equal(json_size(counts, "firing"), BURST - RESOLVED);
        assert_int_equal(json_size(counts, "resolved"), RESOLVED);
        cJSON_ArrayForEach(it, incs)
        {
            assert_string_equal(cJSON_GetObjectItem(it, "status")->valuestring, "firing");
        }
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(first, "incident"), "monitor")->valuestring,
            "workflow-failed");
        assert_true(cJSON_IsObject(cJSON_GetObjectItem(first, "resource")));
        assert_true(cJSON_IsObject(cJSON_GetObjectItem(first, "transition")));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(other, "incidents")), 1);
        assert_int_equal(json_size(other, "truncated"), 0);
        assert_int_equal(json_size(cJSON_GetObjectItem(other, "counts"), "firing"), 1);
    }
    cJSON_Delete(bodies[0]);
    cJSON_Delete(bodies[1]);
}

static void test_default_limit(void **state)
{
    struct vg_http_request *req;
    cJSON *body;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    for (int i = 0; i < DEFAULT_BURST; i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%03d", i);
        vg_test_env_produce(&E, "workflow", name, "public", "active", "failed", NULL, NULL);
    }
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_requests(&E, 1, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 1);
    req = vg_http_receiver_request(E.rcv, 0);
    body = cJSON_Parse(req->body);
    assert_non_null(body);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(body, "incidents")), DEFAULT_LIMIT);
    assert_int_equal(json_size(body, "truncated"), DEFAULT_BURST - DEFAULT_LIMIT);
    assert_int_equal(json_size(cJSON_GetObjectItem(body, "counts"), "firing"), DEFAULT_BURST);
    assert_int_equal(json_size(cJSON_GetObjectItem(body, "counts"), "resolved"), 0);
    cJSON_Delete(body);
    vg_http_request_free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_burst_is_one_grouped_page, vg_test_env_setup,
                                                 vg_test_env_teardown, &C),
        cmocka_unit_test_prestate_setup_teardown(test_default_limit, vg_test_env_setup,
                                                 vg_test_env_teardown, &C_DEFAULT),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
