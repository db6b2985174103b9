/*
 * The alertmanager sink against a REAL Alertmanager (Debian's
 * prometheus-alertmanager, started here on 127.0.0.1 with a 1 s
 * group_wait) that routes to a test receiver: vigil POSTs
 * /api/v2/alerts, Alertmanager groups and forwards its own webhook. The
 * firing arrives with vigil's labels and annotations; the resolved notice
 * ends the same alert (status resolved, endsAt). A missing binary fails.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "env.h"
#include "outbox.h"
#include "page_body.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define AM_BIN "/usr/bin/prometheus-alertmanager"

static struct vg_test_env E;
static struct vg_http_receiver *R; /* E.rcv: Alertmanager's webhook receiver */
static pid_t am_pid;
static int am_port;

static bool am_ready(void *arg)
{
    char *url = vg_asprintf("http://127.0.0.1:%d/-/ready", am_port);
    char *argv[] = {(char *)"/usr/bin/curl", (char *)"-sf", (char *)"-o",
                    (char *)"/dev/null",     url,           NULL};
    int rc = vg_test_run(argv, NULL, NULL);

    (void)arg;
    vg_free(url);
    return rc == 0;
}

static int setup(void **state)
{
    char *cfg;
    char *path;
    char *url;
    char *storage;
    char *listen;
    char *cfg_arg;
    char *log;

    (void)state;
    if (access(AM_BIN, X_OK) != 0) {
        fprintf(stderr, "%s is missing: run scripts/deps.sh\n", AM_BIN);
        return -1;
    }
    vg_test_no_proxy();
    if (vg_test_env_start(&E, "sinks-alertmanager", NULL) != 0) {
        return -1;
    }
    R = E.rcv;
    url = vg_http_receiver_url(R, "/from-am");
    cfg = vg_asprintf("route:\n"
                      "  receiver: rcv\n"
                      "  group_by: [alertname, incident]\n"
                      "  group_wait: 1s\n"
                      "  group_interval: 1s\n"
                      "  repeat_interval: 1h\n"
                      "receivers:\n"
                      "  - name: rcv\n"
                      "    webhook_configs:\n"
                      "      - url: %s\n"
                      "        send_resolved: true\n",
                      url);
    path = vg_asprintf("%s/alertmanager.yml", E.dir);
    if (!vg_test_write_file(path, cfg, strlen(cfg))) {
        return -1;
    }
    am_port = vg_test_free_port();
    storage = vg_asprintf("--storage.path=%s/am-data", E.dir);
    listen = vg_asprintf("--web.listen-address=127.0.0.1:%d", am_port);
    cfg_arg = vg_asprintf("--config.file=%s", path);
    log = vg_asprintf("%s/alertmanager.log", E.dir);
    {
        char *argv[] = {(char *)AM_BIN,
                        cfg_arg,
                        storage,
                        listen,
                        (char *)"--cluster.listen-address=",
                        (char *)"--log.level=warn",
                        NULL};
        am_pid = vg_test_spawn(argv, log, log);
    }
    vg_free(cfg);
    vg_free(path);
    vg_free(url);
    vg_free(storage);
    vg_free(listen);
    vg_free(cfg_arg);
    vg_free(log);
    if (am_port <= 0 || am_pid <= 0 || !vg_test_wait_for(am_ready, NULL, 20000)) {
        fprintf(stderr, "alertmanager did not become ready\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (am_pid > 0) {
        vg_test_stop(am_pid, SIGTERM, 10000);
        am_pid = 0;
    }
    R = NULL;
    return vg_test_env_stop(&E);
}

/* The receiver's request that carries an Alertmanager notification with `status`, or NULL. */
static cJSON *find_notification(const char *status)
{
    for (size_t i = 0; i < vg_http_receiver_count(R); i++) {
        struct vg_http_request *q = vg_http_receiver_request(R, i);
        cJSON *j = cJSON_Parse(q->body);
        vg_http_request_free(q);
        if (j && cJSON_IsString(cJSON_GetObjectItem(j, "status")) &&
            !strcmp(cJSON_GetObjectItem(j, "status")->valuestring, status)) {
            return j;
        }
        cJSON_Delete(j);
    }
    return NULL;
}

static bool have(void *arg)
{
    cJSON *j = find_notification(arg);
    bool ok = j != NULL;

    cJSON_Delete(j);
    return ok;
}

/* Notice `id` of incident abcdefabcdef0001 on workflow am-wf, to sink am. */
static void put(const char *id, const char *status)
{
    char *b = vg_test_page_body("abcdefabcdef0001", status, "am-wf");
    char *sid = vg_test_outbox_put(&E, id, "am", "oncall", b);

    assert_non_null(sid);
    vg_free(sid);
    vg_free(b);
}

static void test_end_to_end(void **state)
{
    static const char rules_yaml[] = "monitors:\n"
                                     "  - name: workflow-failed\n"
                                     "    when: {runtime: {to: failed}}\n"
                                     "    severity: high\n";
    char *sinks = vg_asprintf("  am: {type: alertmanager, url: \"http://127.0.0.1:%d\", "
                              "console_url: \"http://console.example:8080\"}\n",
                              am_port);
    cJSON *j;
    cJSON *a;
    cJSON *l;

    (void)state;
    assert_true(vg_test_env_spawn_with(&E, rules_yaml, sinks));
    put("abcdefabcdef0001-1", "firing");
    if (!vg_test_wait_for(have, (void *)"firing", 30000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("no firing notification from alertmanager");
    }
    assert_true(vg_test_outbox_wait_drained(&E, 10000));
    j = find_notification("firing");
    assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, "4");
    a = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0);
    l = cJSON_GetObjectItem(a, "labels");
    assert_string_equal(cJSON_GetObjectItem(l, "alertname")->valuestring, "workflow-failed");
    assert_string_equal(cJSON_GetObjectItem(l, "severity")->valuestring, "high");
    assert_string_equal(cJSON_GetObjectItem(l, "resource")->valuestring,
                        "workflow:v1:am-wf:public");
    assert_string_equal(cJSON_GetObjectItem(l, "workspace")->valuestring, "public");
    assert_string_equal(cJSON_GetObjectItem(l, "owner")->valuestring, "iamgroot");
    assert_string_equal(cJSON_GetObjectItem(l, "pager")->valuestring, "oncall");
    assert_string_equal(cJSON_GetObjectItem(l, "incident")->valuestring, "abcdefabcdef0001");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a, "annotations"), "summary")->valuestring,
        "am-wf failed in public");
    assert_string_equal(cJSON_GetObjectItem(a, "startsAt")->valuestring,
                        "2026-11-28T10:00:00.123Z");
    assert_string_equal(cJSON_GetObjectItem(a, "generatorURL")->valuestring,
                        "http://console.example:8080/resources/workflow:v1:am-wf:public");
    cJSON_Delete(j);

    /* the resolved notice ends the same alert */
    put("abcdefabcdef0001-2", "resolved");
    if (!vg_test_wait_for(have, (void *)"resolved", 30000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("no resolved notification from alertmanager");
    }
    j = find_notification("resolved");
    a = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0);
    assert_string_equal(cJSON_GetObjectItem(a, "status")->valuestring, "resolved");
    assert_string_equal(cJSON_GetObjectItem(a, "endsAt")->valuestring, "2026-11-28T10:05:00Z");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a, "labels"), "incident")->valuestring,
        "abcdefabcdef0001");
    cJSON_Delete(j);
    vg_free(sinks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_end_to_end, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
