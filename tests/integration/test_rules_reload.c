/*
 * SIGHUP reloads the rules of a running `vigil run`: an invalid rule set is
 * rejected with its file:line:col message in the log and the old rules
 * keep paging; a valid one is swapped in between batches.
 */
#include "test_rules5_env.h"

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

static int setup(void **state)
{
    (void)state;
    return r5_setup("r5reload", rules_v1);
}

static int teardown(void **state)
{
    (void)state;
    r5_teardown();
    return 0;
}

static void write_rules(const char *yaml)
{
    char *path = vg_asprintf("%s/rules.yaml", E.dir);

    assert_true(vg_test_write_file(path, yaml, strlen(yaml)));
    free(path);
}

static const char *log_needle;

static bool log_has(void *arg)
{
    char *path = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs - 1);
    char *text = vg_test_read_file(path, NULL);
    bool found = text && strstr(text, log_needle);

    (void)arg;
    free(text);
    free(path);
    return found;
}

static const char *last_monitor(void)
{
    static char monitor[64];
    cJSON *body = r5_body(vg_http_receiver_count(E.rcv) - 1);

    snprintf(monitor, sizeof(monitor), "%s",
             cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "monitor")->valuestring);
    cJSON_Delete(body);
    return monitor;
}

static void test_sighup(void **state)
{
    struct r5_count want = {1};

    (void)state;
    r5_start_vigil();
    r5_produce("job", "a", "prod", "active", "failed");
    r5_flush();
    r5_wait(r5_have_requests, &want, 60000, "the first page");

    /* An invalid file: rejected, logged with its position; the old rules page on. */
    write_rules(rules_bad);
    log_needle = "loaded";
    r5_wait(log_has, NULL, 30000, "startup log");
    assert_int_equal(kill(E.vigil, SIGHUP), 0);
    log_needle = "reload rejected, the previous rules stay active: ";
    r5_wait(log_has, NULL, 30000, "the rejection in the log");
    log_needle = "rules.yaml:4:5: unknown key \"sevrity\" (did you mean \"severity\"?)";
    assert_true(log_has(NULL));
    r5_produce("job", "b", "prod", "active", "failed");
    r5_flush();
    want.want = 2;
    r5_wait(r5_have_requests, &want, 30000, "a page from the old rules");
    assert_string_equal(last_monitor(), "job-failed");

    /* A valid file: swapped in. */
    write_rules(rules_v2);
    assert_int_equal(kill(E.vigil, SIGHUP), 0);
    log_needle = "rules: reloaded: 1 monitors and 1 pagers";
    r5_wait(log_has, NULL, 30000, "the reload in the log");
    r5_produce("job", "c", "prod", "active", "failed");
    r5_produce("job", "d", "prod", "active", "succeeded");
    r5_flush();
    want.want = 3;
    r5_wait(r5_have_requests, &want, 30000, "a page from the new rules");
    r5_wait(r5_applied, NULL, 30000, "all applied");
    r5_wait(r5_no_timers_no_backlog, NULL, 30000, "quiet");
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
    assert_string_equal(last_monitor(), "job-succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sighup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
