/*
 * The web console in a real browser. Starts the daemon
 * (tests/support/env.h), feeds it the seed's events (examples/events/
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

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static struct vg_test_env E;

static int setup(void **state)
{
    struct vg_test_env_opts o = {0};

    (void)state;
    vg_test_env_opts_secured(&o);
    return vg_test_env_up(&E, "api-console", &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/* Produce each line of the seed, keyed by its Resource id so that each Resource keeps its order. */
static void produce_seed(void)
{
    char *path = vg_asprintf("%s/examples/events/demo.jsonl", VG_SOURCE_DIR);
    char *text = vg_test_read_file(path, NULL);

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
        vg_test_env_produce_raw(&E, -1, key, line, strlen(line));
        free(key);
        cJSON_Delete(ev);
        line = eol ? eol + 1 : NULL;
    }
    free(text);
    free(path);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
}

static void test_console_in_chromium(void **state)
{
    char *script = vg_asprintf("%s/tests/browser/console.test.mjs", VG_SOURCE_DIR);
    char *out = NULL;
    char *err = NULL;
    char *base = vg_asprintf("http://127.0.0.1:%d", E.port);
    int rc;
    (void)state;

    produce_seed();
    setenv("VIGIL_URL", base, 1);
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
        vg_test_env_dump_logs(&E);
    }
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    free(script);
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_in_chromium, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
