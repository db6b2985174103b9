/*
 * A `for: 2s` timer is durable: vigil run applies the event that starts
 * it, is SIGKILLed before the 2 s are up, and the restarted instance fires
 * it: exactly one page, the timer gone, the incident recorded once. A
 * second Resource that leaves the state before 2 s never pages (its timer
 * was cancelled in the same commit as the state change).
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

static const char rules[] = "monitors:\n"
                            "  - name: stuck-pending\n"
                            "    match: {type: workflow}\n"
                            "    when: {runtime: {is: pending, for: 2s}}\n"
                            "    severity: high\n"
                            "    summary: \"{{resource.name}} pending for {{duration}}\"\n"
                            "pagers:\n"
                            "  - name: ops\n"
                            "    sinks: [ops]\n";

static struct vg_test_env_case C = {&E, "rules-timer", {.rules = rules}};

static bool has_a_timer(void *arg)
{
    (void)arg;
    return vg_test_env_timers(&E) >= 1;
}

static void test_for_timer_survives_sigkill(void **state)
{
    size_t want = 1;
    struct vg_incident_record *recs = NULL;
    size_t n_recs = 0;
    char errstr[256];
    cJSON *body;
    cJSON *inc;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "stuck", "public", "active", "pending", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "quick", "public", "active", "pending", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "quick", "public", NULL, "running", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    /* The timer of "stuck" is in Redis; "quick"'s was removed with its change. */
    assert_true(vg_test_wait_for(has_a_timer, NULL, 60000));
    assert_int_equal(vg_test_env_timers(&E), 1);
    assert_int_equal(vg_test_env_kill(&E, SIGKILL), 128 + SIGKILL);
    /* Not fired by the killed instance: nothing was sent. */
    assert_int_equal(vg_http_receiver_count(E.rcv), 0);

    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_test_env_wait_requests(&E, want, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    assert_int_equal(vg_http_receiver_count(E.rcv), 1);
    body = vg_test_env_request_json(&E, 0);
    assert_non_null(body);
    inc = cJSON_GetObjectItem(body, "incident");
    assert_string_equal(cJSON_GetObjectItem(body, "status")->valuestring, "firing");
    assert_string_equal(cJSON_GetObjectItem(inc, "monitor")->valuestring, "stuck-pending");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "resource"), "id")->valuestring,
        "workflow:v1:stuck:public");
    cJSON_Delete(body);

    /* The incident record: firing, one notification. */
    assert_int_equal(vg_state_incidents_list(E.st, 0, &recs, &n_recs, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(n_recs, 1);
    assert_string_equal(recs[0].state, "firing");
    assert_string_equal(recs[0].monitor, "stuck-pending");
    assert_int_equal(recs[0].seq, 1);
    vg_incident_records_free(recs, n_recs);

    /* A third run changes nothing: the episode fired once. */
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "other", "public", "active", "running", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_for_timer_survives_sigkill, vg_test_env_setup,
                                                 vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
