/*
 * `vigil run` at DEBUG (log.level debug, or --debug consumer): one line per
 * committed batch saying where its time went (decode, resolve, apply,
 * commit), how old its oldest message was when it started, and how many
 * pages it queued. Read from the real binary's stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"

/* The batch line that queued a page: the failing event's batch. */
static bool batch_line_with_page(const char *logs)
{
    for (const char *line = logs; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        bool ok = strstr(copy, " DEBUG consumer: batch of ") &&
                  strstr(copy, " ms old at its start: decode ") && strstr(copy, " ms, resolve ") &&
                  strstr(copy, " ms, apply ") && strstr(copy, " ms, commit ") &&
                  strstr(copy, "; 1 page(s)");

        free(copy);
        if (ok) {
            return true;
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

static bool logged(void *arg)
{
    struct vg_test_env *e = arg;
    char *logs = vg_test_env_logs(e);
    bool ok = batch_line_with_page(logs);

    free(logs);
    return ok;
}

static void test_batch_steps_line(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.partitions = 1, .extra = "log:\n  level: debug\n"};

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "engine_batch_log", &o), 0);
    assert_true(vg_test_env_spawn(&e));
    assert_true(vg_test_env_wait_log(&e, "INFO consumer: assigned 1 partitions", 30000));
    vg_test_env_produce(&e, "workflow", "wf-1", "public", "active", "running",
                        "2026-11-28T10:00:00Z", NULL);
    assert_true(vg_test_env_wait_applied(&e, 30000));
    vg_test_env_produce(&e, "workflow", "wf-1", "public", NULL, "failed", "2026-11-28T10:00:01Z",
                        NULL);
    assert_true(vg_test_env_wait_applied(&e, 30000));
    assert_true(vg_test_env_wait_requests(&e, 1, 30000));
    if (!vg_test_wait_for(logged, &e, 30000)) {
        vg_test_env_dump_logs(&e);
        fail_msg("no DEBUG line for the batch that queued the page");
    }
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_batch_steps_line)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
