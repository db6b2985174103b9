/*
 * A `for: 2s` timer is durable: vigil run applies the event that starts
 * it, is SIGKILLed before the 2 s are up, and the restarted instance fires
 * it: exactly one page, the timer gone, the incident recorded once. A
 * second Resource that leaves the state before 2 s never pages (its timer
 * was cancelled in the same commit as the state change).
 */
#include "test_rules5_env.h"

static const char rules[] = "monitors:\n"
                            "  - name: stuck-pending\n"
                            "    match: {type: workflow}\n"
                            "    when: {runtime: {is: pending, for: 2s}}\n"
                            "    severity: high\n"
                            "    summary: \"{{resource.name}} pending for {{duration}}\"\n"
                            "pagers:\n"
                            "  - name: ops\n"
                            "    sinks: [ops]\n";

static int setup(void **state)
{
    (void)state;
    return r5_setup("r5timer", rules);
}

static int teardown(void **state)
{
    (void)state;
    r5_teardown();
    return 0;
}

static bool has_two_timers(void *arg)
{
    (void)arg;
    return r5_timers() >= 1;
}

static void test_for_timer_survives_sigkill(void **state)
{
    struct r5_count want = {1};
    struct vg_incident_record *recs = NULL;
    size_t n_recs = 0;
    char errstr[256];
    cJSON *body;
    cJSON *inc;

    (void)state;
    r5_start_vigil();
    r5_produce("workflow", "stuck", "public", "active", "pending");
    r5_produce("workflow", "quick", "public", "active", "pending");
    r5_produce("workflow", "quick", "public", NULL, "running");
    r5_flush();
    r5_wait(r5_applied, NULL, 60000, "the events to be applied");
    /* The timer of "stuck" is in Redis; "quick"'s was removed with its change. */
    assert_true(vg_test_wait_for(has_two_timers, NULL, 1000));
    assert_int_equal(r5_timers(), 1);
    assert_int_equal(vg_test_stop(E.vigil, SIGKILL, 5000), 128 + SIGKILL);
    E.vigil = 0;
    /* Not fired by the killed instance: nothing was sent. */
    assert_int_equal(vg_http_receiver_count(E.rcv), 0);

    r5_start_vigil();
    r5_wait(r5_have_requests, &want, 60000, "the page of the durable timer");
    r5_wait(r5_no_timers_no_backlog, NULL, 30000, "the timer to be gone");
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
    assert_int_equal(vg_http_receiver_count(E.rcv), 1);
    body = r5_body(0);
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
    r5_start_vigil();
    r5_produce("workflow", "other", "public", "active", "running");
    r5_flush();
    r5_wait(r5_applied, NULL, 60000, "the third run to catch up");
    r5_wait(r5_no_timers_no_backlog, NULL, 30000, "no timers");
    assert_int_equal(vg_http_receiver_count(E.rcv), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_for_timer_survives_sigkill, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
