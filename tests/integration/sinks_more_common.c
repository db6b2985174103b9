/* Helpers of the teams, email and pagerduty sink tests (sinks_more_common.h). */
#include "sinks_more_common.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "vigil/mem.h"

char *sm_rules(const char *sink)
{
    return vg_asprintf("monitors:\n"
                       "  - name: workflow-failed\n"
                       "    match: {type: [workflow]}\n"
                       "    when: {runtime: {to: failed}}\n"
                       "    severity: high\n"
                       "    summary: \"{{resource.name}} failed in {{resource.workspace}}\"\n"
                       "pagers:\n"
                       "  - name: oncall\n"
                       "    sinks: [%s]\n",
                       sink);
}

char *sm_rules_grouped(const char *sink)
{
    return vg_asprintf("monitors:\n"
                       "  - name: workflow-failed\n"
                       "    match: {type: [workflow]}\n"
                       "    when: {runtime: {to: failed}}\n"
                       "    severity: high\n"
                       "pagers:\n"
                       "  - name: oncall\n"
                       "    sinks: [%s]\n"
                       "    group_by: [workspace]\n"
                       "    group_wait: 1s\n",
                       sink);
}

struct cJSON *sm_dlq(struct vg_test_env *e)
{
    char *out = NULL;
    cJSON *j;

    assert_int_equal(
        vg_test_env_cli(e, &out, NULL, (const char *const[]){"dlq", "list", "-o", "json", NULL}),
        0);
    j = cJSON_Parse(out);
    free(out);
    assert_true(cJSON_IsArray(j));
    return j;
}

struct dlq_wait {
    struct vg_test_env *e;
    int n;
};

static bool dlq_has(void *arg)
{
    struct dlq_wait *w = arg;
    char *out = NULL;
    cJSON *j;
    bool ok;

    if (vg_test_env_cli(w->e, &out, NULL,
                        (const char *const[]){"dlq", "list", "-o", "json", NULL}) != 0) {
        free(out);
        return false;
    }
    j = cJSON_Parse(out);
    ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) >= w->n;
    cJSON_Delete(j);
    free(out);
    return ok;
}

bool sm_wait_dlq(struct vg_test_env *e, int n, int timeout_ms)
{
    struct dlq_wait w = {e, n};

    if (vg_test_wait_for(dlq_has, &w, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "the dead letters never held %d entries\n", n);
    vg_test_env_dump_logs(e);
    return false;
}

static void assert_absent(const char *where, const char *text, const char *secret)
{
    if (text && strstr(text, secret)) {
        fail_msg("a secret appears in %s:\n%s", where, text);
    }
}

void sm_assert_hidden(struct vg_test_env *e, const char *secret)
{
    char *logs = vg_test_env_logs(e);
    char *out = NULL;
    char *err = NULL;

    assert_true(strlen(secret) >= 3);
    assert_absent("vigil's log", logs, secret);
    free(logs);
    vg_test_env_cli(e, &out, &err, (const char *const[]){"check", NULL});
    assert_absent("vigil check's output", out, secret);
    assert_absent("vigil check's errors", err, secret);
    free(out);
    free(err);
    out = err = NULL;
    vg_test_env_cli(e, &out, &err, (const char *const[]){"dlq", "list", "-o", "json", NULL});
    assert_absent("vigil dlq list", out, secret);
    assert_absent("vigil dlq list's errors", err, secret);
    free(out);
    free(err);
    if (e->opts.http && e->port > 0) {
        static const char *const paths[] = {"/metrics", "/readyz", "/api/v1/dlq", "/healthz"};

        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            struct vg_test_http_reply r = vg_test_http(e->port, "GET", paths[i], NULL, NULL);

            assert_true(r.status > 0);
            assert_absent(paths[i], r.body, secret);
            assert_absent(paths[i], r.headers, secret);
            vg_test_http_reply_free(&r);
        }
    }
}
