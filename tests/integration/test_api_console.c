/*
 * Issue 7: the web console in a real browser. Starts the daemon
 * (test_api_harness.c), feeds it the seed's events (examples/events/
 * demo.jsonl, keyed by Resource), then runs tests/browser/console.test.mjs
 * (playwright-core driving /usr/bin/chromium headless). That script makes a
 * runtime fail by producing to the mock cluster with kcat. Screenshots go
 * to VG_SCREENSHOT_DIR (under build/). Chromium, node or playwright-core
 * missing: the test fails, it never skips.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"
#include "test_api_harness.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static struct api_env E;

static int setup(void **state)
{
    (void)state;
    return api_env_setup(&E, "api7ui");
}

static int teardown(void **state)
{
    (void)state;
    return api_env_teardown(&E);
}

/* Produce each line of the seed, keyed by its Resource id so that each Resource keeps its order. */
static void produce_seed(void)
{
    char *path = vg_asprintf("%s/examples/events/demo.jsonl", VG_SOURCE_DIR);
    char *text = vg_test_read_file(path, NULL);
    char errstr[256];

    assert_non_null(text);
    for (char *line = text; line && *line;) {
        char *eol = strchr(line, '\n');
        cJSON *ev;
        const cJSON *res;
        char *key;

        if (eol) {
            *eol = '\0';
        }
        ev = cJSON_Parse(line);
        res = cJSON_GetObjectItem(ev, "resource");
        key = vg_asprintf("%s:%s:%s:%s",
                          cJSON_GetStringValue(cJSON_GetObjectItem(res, "type"))
                              ? cJSON_GetStringValue(cJSON_GetObjectItem(res, "type"))
                              : "",
                          cJSON_GetStringValue(cJSON_GetObjectItem(res, "version"))
                              ? cJSON_GetStringValue(cJSON_GetObjectItem(res, "version"))
                              : "v1",
                          cJSON_GetStringValue(cJSON_GetObjectItem(res, "name"))
                              ? cJSON_GetStringValue(cJSON_GetObjectItem(res, "name"))
                              : "",
                          cJSON_GetStringValue(cJSON_GetObjectItem(res, "workspace"))
                              ? cJSON_GetStringValue(cJSON_GetObjectItem(res, "workspace"))
                              : "");
        assert_int_equal(vg_producer_send(E.producer, E.topic, -1, key, strlen(key), line,
                                          strlen(line), errstr, sizeof(errstr)),
                         VG_OK);
        E.produced++;
        free(key);
        cJSON_Delete(ev);
        line = eol ? eol + 1 : NULL;
    }
    free(text);
    free(path);
    api_env_wait_applied(&E);
}

static void test_console_in_chromium(void **state)
{
    char *script = vg_asprintf("%s/tests/browser/console.test.mjs", VG_SOURCE_DIR);
    char *out = NULL;
    char *err = NULL;
    int rc;
    (void)state;

    produce_seed();
    setenv("VIGIL_URL", E.base, 1);
    setenv("KAFKA_BOOTSTRAPS", vg_mock_kafka_bootstraps(E.kafka), 1);
    setenv("VIGIL_TOPIC", E.topic, 1);
    setenv("SCREENSHOT_DIR", VG_SCREENSHOT_DIR, 1);
    setenv("NODE_PATH", VG_SOURCE_DIR "/tests/browser/node_modules", 1);
    /* vg_test_run needs a path: find node on PATH through the shell */
    {
        char *cmd = vg_asprintf("exec node '%s'", script);
        char *sh[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
        rc = vg_test_run(sh, &out, &err);
        free(cmd);
    }
    fprintf(stderr, "%s%s", out ? out : "", err ? err : "");
    if (rc != 0) {
        api_env_dump_log(&E);
    }
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    free(script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_in_chromium, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
