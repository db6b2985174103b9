/*
 * Durable timers follow their partition from instance to instance. Two
 * `vigil run` in one consumer group on a 2-partition topic: instance A
 * alone applies two workflows stuck `pending` (one per partition) under a
 * `for:` monitor, then B joins and takes one partition from A (a revoke),
 * then A is SIGKILLed before the deadline. B owns both partitions and
 * fires each timer once, not before its deadline: the receiver gets one
 * page per Resource, each incident is recorded once with one
 * notification. docs/scaling.md describes the hand-over.
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
#include "vigil/page.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define FOR_S 20 /* long enough for B's join (the mock holds it up to a session timeout) */

static struct vg_test_env E;
static pid_t A;
static pid_t B;

static const char rules[] = "monitors:\n"
                            "  - name: stuck-pending\n"
                            "    match: {type: workflow}\n"
                            "    when: {runtime: {is: pending, for: 20s}}\n"
                            "    severity: high\n"
                            "    summary: \"{{resource.name}} pending for {{duration}}\"\n"
                            "pagers:\n"
                            "  - name: ops\n"
                            "    sinks: [ops]\n";

static struct vg_test_instances_case C = {
    .env = {.env = &E,
            .name = "scaleout-timers",
            .opts = {.partitions = 2, .http = true, .rules = rules}},
    .pids = {&A, &B},
};

static bool two_timers(void *arg)
{
    (void)arg;
    return vg_test_env_timers(&E) == 2;
}

/* Due time (wall ms) of the timer on `partition`, -1 if none. */
static int64_t due_of(int32_t partition)
{
    struct vg_offset part = {.topic = E.topic, .partition = partition};
    struct vg_due_timer *v = NULL;
    size_t n = 0;
    char errstr[256];
    int64_t due = -1;

    if (vg_state_timers_due(E.st, &part, 1, true, INT64_MAX / 2, 100, &v, &n, errstr,
                            sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "timers: %s\n", errstr);
        return -1;
    }
    if (n == 1) {
        due = v[0].due_ms;
    }
    vg_due_timers_free(v, n);
    return due;
}

static void test_timer_fires_on_the_new_owner(void **state)
{
    int port_a = 0;
    int port_b = 0;
    int64_t due[2];
    struct vg_incident_record *recs = NULL;
    size_t n_recs = 0;
    char errstr[256];
    bool seen[2] = {false, false};

    (void)state;
    A = vg_test_env_spawn_instance(&E, "scaleout-a", &port_a);
    assert_true(A > 0);
    assert_true(vg_test_wait_http_ready(port_a, 60000));

    /* A owns both partitions: it applies both workflows and keeps their timers in Redis. */
    vg_test_env_produce_workflow_to(&E, 0, "stuck-0", "pending");
    vg_test_env_produce_workflow_to(&E, 1, "stuck-1", "pending");
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_wait_for(two_timers, NULL, 30000));
    due[0] = due_of(0);
    due[1] = due_of(1);
    assert_true(due[0] > 0 && due[1] > 0);

    /* B joins: the group takes one partition from A (a revoke) and gives it to B. */
    B = vg_test_env_spawn_instance(&E, "scaleout-b", &port_b);
    assert_true(B > 0);
    assert_true(vg_test_wait_http_ready(port_b, 60000));
    assert_true(vg_test_wait_http_ready(port_a, 30000)); /* A kept the other one */

    /* A dies before either deadline: nothing fired yet. */
    if (vg_now_ms() >= (due[0] < due[1] ? due[0] : due[1])) {
        fail_msg("the setup took longer than the %d s of the timers: the hand-over was not tested",
                 FOR_S);
    }
    assert_int_equal(vg_http_receiver_count(E.rcv), 0);
    assert_int_equal(vg_test_env_stop_instance(&E, A, SIGKILL), 128 + SIGKILL);
    A = 0;

    /* B takes A's partition once A's session expires, and fires both timers. */
    assert_true(vg_test_env_wait_requests(&E, 2, 90000));
    assert_true(vg_test_env_wait_quiet(&E, 60000));
    assert_true(vg_test_wait_http_ready(port_b, 30000));

    /* A later event on each partition is applied by B: it had every chance to fire twice. */
    vg_test_env_produce_workflow_to(&E, 0, "later-0", "running");
    vg_test_env_produce_workflow_to(&E, 1, "later-1", "running");
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);

    for (size_t i = 0; i < 2; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
        cJSON *body = cJSON_Parse(req->body);
        const cJSON *res = cJSON_GetObjectItem(body, "resource");
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(res, "id"));
        /* the receiver's clock is monotonic; the timers' due times are wall clock */
        int64_t at_wall = vg_now_ms() - (vg_mono_ms() - req->at_mono_ms);
        int k;

        assert_non_null(id);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(body, "status")), "firing");
        k = strcmp(id, "workflow:v1:stuck-0:public") == 0   ? 0
            : strcmp(id, "workflow:v1:stuck-1:public") == 0 ? 1
                                                            : -1;
        assert_true(k >= 0);
        assert_false(seen[k]);
        seen[k] = true;
        /* not early (10 ms: the two clocks read one after the other) */
        if (at_wall + 10 < due[k]) {
            fail_msg("page for %s at %lld, before its deadline %lld", id, (long long)at_wall,
                     (long long)due[k]);
        }
        cJSON_Delete(body);
        vg_http_request_free(req);
    }

    /* Each episode is recorded once, with one notification. */
    assert_int_equal(vg_state_incidents_list(E.st, 0, &recs, &n_recs, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(n_recs, 2);
    for (size_t i = 0; i < n_recs; i++) {
        assert_string_equal(recs[i].monitor, "stuck-pending");
        assert_string_equal(recs[i].state, "firing");
        assert_int_equal(recs[i].seq, 1);
    }
    vg_incident_records_free(recs, n_recs);

    assert_int_equal(vg_test_env_stop_instance(&E, B, SIGTERM), 0);
    B = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_timer_fires_on_the_new_owner,
                                                 vg_test_instances_setup,
                                                 vg_test_instances_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
