/*
 * What `vigil run` logs at INFO in everyday use, read from the real
 * binary's stderr: one line per page delivered (not one when decided and
 * another when sent), one summary line per rebalance (not one per
 * partition); and with `log.format: json` every line is a JSON object
 * with ts, level, module, msg and the message's key=value pairs as keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"

/* Lines of `text` that contain every one of `a` and `b` (b may be NULL). */
static size_t count_lines(const char *text, const char *a, const char *b)
{
    size_t n = 0;

    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);

        if (strstr(copy, a) && (!b || strstr(copy, b))) {
            n++;
        }
        free(copy);
        line = end ? end + 1 : NULL;
    }
    return n;
}

struct sent_wait {
    struct vg_test_env *e;
    const char *needle;
    size_t want;
};

static bool sent_enough(void *arg)
{
    struct sent_wait *w = arg;
    char *logs = vg_test_env_logs(w->e);
    bool ok = count_lines(logs, w->needle, NULL) >= w->want;

    free(logs);
    return ok;
}

static void produce_failures(struct vg_test_env *e, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%d", i);
        vg_test_env_produce(e, "workflow", name, "public", "active", "running",
                            "2026-11-28T10:00:00Z", NULL);
        vg_test_env_produce(e, "workflow", name, "public", NULL, "failed", "2026-11-28T10:00:01Z",
                            NULL);
    }
}

static void test_info_lines(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.partitions = 4};
    struct sent_wait w;
    char *logs;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "cli_logging", &o), 0);
    assert_true(vg_test_env_spawn(&e));
    assert_true(vg_test_env_wait_log(&e, "INFO consumer: assigned 4 partitions", 30000));
    produce_failures(&e, 0, 5);
    assert_true(vg_test_env_wait_applied(&e, 30000));
    assert_true(vg_test_env_wait_requests(&e, 5, 30000));
    /* every page delivered has been logged: any other line about them came before */
    w = (struct sent_wait){&e, "INFO sinks: page sent ", 5};
    if (!vg_test_wait_for(sent_enough, &w, 30000)) {
        vg_test_env_dump_logs(&e);
        fail_msg("five \"page sent\" lines never appeared");
    }
    logs = vg_test_env_logs(&e);
    if (count_lines(logs, " INFO ", "page ") != 5 || count_lines(logs, " INFO ", "assign") != 1) {
        vg_test_env_dump_logs(&e);
        fail_msg("want 5 INFO lines about pages and 1 about the assignment: %zu and %zu",
                 count_lines(logs, " INFO ", "page "), count_lines(logs, " INFO ", "assign"));
    }
    free(logs);
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);

    /* log.format: json (and level from the config): one object per line */
    e.opts.extra = "log:\n  format: json\n  level: info\n";
    vg_test_env_write_config(&e);
    assert_true(vg_test_env_spawn(&e));
    produce_failures(&e, 5, 1);
    assert_true(vg_test_env_wait_applied(&e, 30000));
    assert_true(vg_test_env_wait_requests(&e, 6, 30000));
    w = (struct sent_wait){&e, "\"msg\":\"page sent ", 1};
    if (!vg_test_wait_for(sent_enough, &w, 30000)) {
        vg_test_env_dump_logs(&e);
        fail_msg("no JSON \"page sent\" line");
    }
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);
    {
        char *path = vg_test_env_log_path(&e, e.runs);
        char *text = vg_test_read_file(path, NULL);
        size_t n_lines = 0;
        bool saw_sent = false;

        assert_non_null(text);
        for (char *line = text; line && *line;) {
            char *end = strchr(line, '\n');
            cJSON *j;

            if (end) {
                *end = '\0';
            }
            j = cJSON_Parse(line);
            if (!j || !cJSON_IsString(cJSON_GetObjectItem(j, "ts")) ||
                !cJSON_IsString(cJSON_GetObjectItem(j, "level")) ||
                !cJSON_IsString(cJSON_GetObjectItem(j, "module")) ||
                !cJSON_IsString(cJSON_GetObjectItem(j, "msg"))) {
                fail_msg("not a JSON log line with ts, level, module, msg: %s", line);
            }
            if (!strncmp(cJSON_GetObjectItem(j, "msg")->valuestring, "page sent ", 10)) {
                assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "info");
                assert_string_equal(cJSON_GetObjectItem(j, "module")->valuestring, "sinks");
                assert_string_equal(cJSON_GetObjectItem(j, "sink")->valuestring, "ops");
                assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "attempt")));
                assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "id")));
                saw_sent = true;
            }
            cJSON_Delete(j);
            n_lines++;
            line = end ? end + 1 : NULL;
        }
        assert_true(saw_sent);
        assert_true(n_lines > 1);
        free(text);
        free(path);
    }
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_info_lines)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
