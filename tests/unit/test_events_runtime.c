/*
 * The runtime-from-pods table (docs/events.md): sets of pods built by hand,
 * the runtime they give, the deciding pod and reason. Then the same
 * through vg_resource_apply: the pod set, DELETED, the empty set keeping
 * the last runtime, and reason + pod travelling with the transitions.
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

/* A pod spec: "name phase ready [container-state:reason[:init]]..." */
struct spec {
    const char *name;
    const char *phase;
    bool ready;
    const char *reason;        /* status.reason */
    const char *containers[3]; /* "waiting:CrashLoopBackOff", "terminated:OOMKilled:init", ... */
};

static void make_pod(struct vg_pod *p, const struct spec *s)
{
    memset(p, 0, sizeof(*p));
    p->name = vg_strdup(s->name);
    p->ns = vg_strdup("public");
    snprintf(p->phase, sizeof(p->phase), "%s", s->phase);
    snprintf(p->reason, sizeof(p->reason), "%s", s->reason ? s->reason : "");
    p->ready = s->ready;
    p->containers = vg_calloc(3, sizeof(*p->containers));
    for (size_t i = 0; i < 3 && s->containers[i]; i++) {
        struct vg_container *c = &p->containers[p->n_containers++];
        char buf[96];
        char *reason;
        char *init;

        snprintf(buf, sizeof(buf), "%s", s->containers[i]);
        reason = strchr(buf, ':');
        *reason++ = '\0';
        init = strchr(reason, ':');
        if (init) {
            *init = '\0';
            c->init = true;
        }
        c->name = vg_asprintf("c%zu", i);
        snprintf(c->state, sizeof(c->state), "%.15s", buf);
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
    }
}

static void test_table(void **state)
{
    static const struct {
        struct spec pods[3];
        const char *want;
        const char *pod;
        const char *reason;
    } cases[] = {
        /* failed: phase Failed, eviction, the four waiting reasons, OOMKilled (also init) */
        {{{"a", "Failed", false, NULL, {"terminated:Error"}}}, "failed", "a", "Error"},
        {{{"a", "Failed", false, NULL, {NULL}}}, "failed", "a", "Failed"},
        {{{"a", "Failed", false, "Evicted", {"terminated:Error"}}}, "failed", "a", "Evicted"},
        {{{"a", "Running", true, "Evicted", {NULL}}}, "failed", "a", "Evicted"},
        {{{"a", "Running", false, NULL, {"waiting:CrashLoopBackOff"}}},
         "failed",
         "a",
         "CrashLoopBackOff"},
        {{{"a", "Pending", false, NULL, {"waiting:ImagePullBackOff"}}},
         "failed",
         "a",
         "ImagePullBackOff"},
        {{{"a", "Pending", false, NULL, {"waiting:ErrImagePull"}}}, "failed", "a", "ErrImagePull"},
        {{{"a", "Pending", false, NULL, {"waiting:CreateContainerConfigError"}}},
         "failed",
         "a",
         "CreateContainerConfigError"},
        {{{"a", "Running", false, NULL, {"running:", "terminated:OOMKilled"}}},
         "failed",
         "a",
         "OOMKilled"},
        {{{"a",
           "Pending",
           false,
           NULL,
           {"waiting:CrashLoopBackOff:init", "waiting:PodInitializing"}}},
         "failed",
         "a",
         "CrashLoopBackOff"},
        /* one failing pod among healthy ones fails the Resource, and is named */
        {{{"a", "Running", true, NULL, {"running:"}},
          {"b", "Running", false, NULL, {"terminated:OOMKilled"}},
          {"c", "Running", true, NULL, {"running:"}}},
         "failed",
         "b",
         "OOMKilled"},
        /* terminated with another reason is not failed by itself */
        {{{"a", "Running", false, NULL, {"terminated:Error"}}}, "pending", "a", ""},
        /* running: any pod Running and ready */
        {{{"a", "Running", true, NULL, {"running:"}}}, "running", "a", ""},
        {{{"a", "Pending", false, NULL, {"waiting:ContainerCreating"}},
          {"b", "Running", true, NULL, {"running:"}}},
         "running",
         "b",
         ""},
        {{{"a", "Succeeded", false, NULL, {"terminated:Completed"}},
          {"b", "Running", true, NULL, {"running:"}}},
         "running",
         "b",
         ""},
        /* running but not ready is pending */
        {{{"a", "Running", false, NULL, {"running:"}}}, "pending", "a", ""},
        /* succeeded: all of them */
        {{{"a", "Succeeded", false, NULL, {"terminated:Completed"}},
          {"b", "Succeeded", false, NULL, {"terminated:Completed"}}},
         "succeeded",
         "b",
         ""},
        {{{"a", "Succeeded", false, NULL, {NULL}}, {"b", "Pending", false, NULL, {NULL}}},
         "pending",
         "a",
         ""},
        /* pending names why, when a container says */
        {{{"a", "Pending", false, NULL, {"waiting:ContainerCreating"}}},
         "pending",
         "a",
         "ContainerCreating"},
        {{{"a", "Unknown", false, NULL, {NULL}}}, "pending", "a", ""},
        {{{"a", "", false, NULL, {NULL}}}, "pending", "a", ""},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_pod pods[3];
        size_t n = 0;
        const struct vg_pod *decider = NULL;
        char reason[VG_REASON_MAX];
        const char *got;

        while (n < 3 && cases[i].pods[n].name) {
            make_pod(&pods[n], &cases[i].pods[n]);
            n++;
        }
        got = vg_pods_runtime(pods, n, &decider, reason);
        if (strcmp(got, cases[i].want) != 0 || !decider ||
            strcmp(decider->name, cases[i].pod) != 0 || strcmp(reason, cases[i].reason) != 0) {
            fprintf(stderr, "case %zu: got %s pod=%s reason=%s, want %s pod=%s reason=%s\n", i, got,
                    decider ? decider->name : "(none)", reason, cases[i].want, cases[i].pod,
                    cases[i].reason);
            bad++;
        }
        for (size_t j = 0; j < n; j++) {
            vg_pod_fini(&pods[j]);
        }
    }
    assert_int_equal(bad, 0);
}

static struct vg_event pod_event(const struct spec *s, int64_t time_ms, int64_t offset,
                                 bool deleted)
{
    struct vg_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = VG_EVENT_POD;
    ev.type = vg_strdup("service");
    ev.name = vg_strdup("orders-api");
    ev.workspace = vg_strdup("public");
    ev.version = vg_strdup("v1");
    ev.owner = vg_strdup("wanda");
    ev.id = vg_resource_id(ev.type, ev.version, ev.name, ev.workspace);
    ev.time_ms = time_ms;
    ev.pos.topic = vg_strdup("pods");
    ev.pos.offset = offset;
    ev.pod = vg_calloc(1, sizeof(*ev.pod));
    make_pod(ev.pod, s);
    ev.pod->time_ms = time_ms;
    ev.pod_deleted = deleted;
    return ev;
}

static void test_apply(void **state)
{
    static const char *const batch[] = {"workflow"};
    struct vg_health_config hc = {(char **)batch, 1};
    static const struct spec a_pending = {
        "orders-api-1", "Pending", false, NULL, {"waiting:ContainerCreating"}};
    static const struct spec a_running = {"orders-api-1", "Running", true, NULL, {"running:"}};
    static const struct spec b_running = {"orders-api-2", "Running", true, NULL, {"running:"}};
    static const struct spec b_oom = {
        "orders-api-2", "Running", false, NULL, {"terminated:OOMKilled"}};
    struct vg_transition tr[3];
    struct vg_event evs[7];
    struct vg_resource *res;
    size_t n;
    (void)state;

    evs[0] = pod_event(&a_pending, 1000, 0, false);
    evs[1] = pod_event(&a_running, 2000, 1, false);
    evs[2] = pod_event(&b_running, 3000, 2, false);
    evs[3] = pod_event(&b_oom, 4000, 3, false);
    evs[4] = pod_event(&b_oom, 5000, 4, true);     /* b deleted: a is running */
    evs[5] = pod_event(&a_running, 6000, 5, true); /* a deleted: the set is empty */
    evs[6] = pod_event(&a_pending, 7000, 6, false);
    res = vg_resource_new_from_event(&evs[0]);

    n = vg_resource_apply(&hc, res, &evs[0], tr);
    assert_int_equal(n, 2); /* runtime "" -> pending, health "" -> progressing */
    assert_string_equal(tr[0].to, "pending");
    assert_string_equal(tr[0].reason, "ContainerCreating");
    assert_string_equal(tr[0].pod, "orders-api-1");
    assert_string_equal(res->owner, "wanda");
    assert_int_equal(res->n_pods, 1);

    n = vg_resource_apply(&hc, res, &evs[1], tr);
    assert_int_equal(n, 1); /* health stays progressing: status is unknown */
    assert_string_equal(tr[0].from, "pending");
    assert_string_equal(tr[0].to, "running");
    assert_string_equal(tr[0].reason, "");
    assert_string_equal(tr[0].pod, "orders-api-1");

    n = vg_resource_apply(&hc, res, &evs[2], tr);
    assert_int_equal(n, 0);
    assert_int_equal(res->n_pods, 2);
    assert_string_equal(res->pods[0].name, "orders-api-1");
    assert_string_equal(res->pods[1].name, "orders-api-2");

    n = vg_resource_apply(&hc, res, &evs[3], tr);
    assert_int_equal(n, 2); /* runtime failed, health unhealthy: both say why */
    assert_string_equal(tr[0].to, "failed");
    assert_string_equal(tr[0].reason, "OOMKilled");
    assert_string_equal(tr[0].pod, "orders-api-2");
    assert_int_equal(tr[1].field, VG_FIELD_HEALTH);
    assert_string_equal(tr[1].to, "unhealthy");
    assert_string_equal(tr[1].reason, "OOMKilled");
    assert_string_equal(tr[1].pod, "orders-api-2");
    assert_string_equal(res->runtime_reason, "OOMKilled");
    assert_string_equal(res->runtime_pod, "orders-api-2");

    n = vg_resource_apply(&hc, res, &evs[4], tr);
    assert_int_equal(n, 2);
    assert_string_equal(tr[0].to, "running");
    assert_int_equal(res->n_pods, 1);

    n = vg_resource_apply(&hc, res, &evs[5], tr);
    assert_int_equal(n, 0); /* empty set: the last runtime stays */
    assert_int_equal(res->n_pods, 0);
    assert_string_equal(res->runtime, "running");

    n = vg_resource_apply(&hc, res, &evs[6], tr);
    assert_int_equal(n, 1);
    assert_string_equal(tr[0].to, "pending");
    assert_int_equal(res->n_pods, 1);

    vg_resource_destroy(res);
    for (size_t i = 0; i < VG_ARRAY_LEN(evs); i++) {
        vg_event_fini(&evs[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
