/*
 * SIGHUP reloads the rules of a running `vigil run`: an invalid rule set is
 * rejected with its file:line:col message in the log and the old rules
 * keep paging; a valid one is swapped in between batches.
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

static const char rules_v1[] = "monitors:\n"
                               "  - name: job-failed\n"
                               "    match: {type: job}\n"
                               "    when: {runtime: {to: failed}}\n"
                               "    severity: high\n"
                               "pagers:\n"
                               "  - name: ops\n"
                               "    sinks: [ops]\n";

static const char rules_bad[] = "monitors:\n"
                                "  - name: job-failed\n"
                                "    when: {runtime: {to: failed}}\n"
                                "    sevrity: high\n";

static const char rules_v2[] = "monitors:\n"
                               "  - name: job-succeeded\n"
                               "    match: {type: job}\n"
                               "    when: {runtime: {to: succeeded}}\n"
                               "    severity: info\n"
                               "pagers:\n"
                               "  - name: ops\n"
                               "    sinks: [ops]\n";

static struct vg_test_env_case C = {&E, "rules-reload", {.rules = rules_v1}};

static const char *last_monitor(void)
{
    static char monitor[64];
    cJSON *body = vg_test_env_request_json(&E, vg_http_receiver_count(E.rcv) - 1);

    assert_non_null(body);
    snprintf(monitor, sizeof(monitor), "%s",
             cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "monitor")->valuestring);
    cJSON_Delete(body);
    return monitor;
}

static void test_sighup(void **state)
{
    size_t want = 1;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "job", "a", "prod", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_requests(&E, want, 60000));

    /* An invalid file: rejected, logged with its position; the old rules page on. */
    vg_test_env_write_rules(&E, rules_bad);
    assert_true(vg_test_env_wait_log(&E, "loaded", 30000));
    assert_int_equal(kill(E.vigil, SIGHUP), 0);
    assert_true(
        vg_test_env_wait_log(&E, "reload rejected, the previous rules stay active: ", 30000));
    assert_true(vg_test_env_log_has(
        &E, "rules.yaml:4:5: unknown key \"sevrity\" (did you mean \"severity\"?)"));
    vg_test_env_produce(&E, "job", "b", "prod", "active", "failed", NULL, NULL);
    want = 2;
    assert_true(vg_test_env_wait_requests(&E, want, 30000));
    assert_string_equal(last_monitor(), "job-failed");

    /* A valid file: swapped in. */
    vg_test_env_write_rules(&E, rules_v2);
    assert_int_equal(kill(E.vigil, SIGHUP), 0);
    assert_true(vg_test_env_wait_log(&E, "rules: reloaded: 1 monitors and 1 pagers", 30000));
    vg_test_env_produce(&E, "job", "c", "prod", "active", "failed", NULL, NULL);
    vg_test_env_produce(&E, "job", "d", "prod", "active", "succeeded", NULL, NULL);
    want = 3;
    assert_true(vg_test_env_wait_requests(&E, want, 30000));
    assert_true(vg_test_env_wait_applied(&E, 30000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
    assert_string_equal(last_monitor(), "job-succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_sighup, vg_test_env_setup,
                                                 vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
