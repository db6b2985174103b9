/*
 * The embedded redis-server dies under a running `vigil run` (no redis.url:
 * vigil starts it itself, on DIR/data with AOF on). The test SIGKILLs that
 * child while events keep arriving on the mock cluster: vigil logs one WARN
 * naming the signal, starts it again on the same directory and applies
 * every event, nothing lost or doubled (read back with `vigil get -o json`
 * and the histories in Redis). Then the data dir is moved away before the
 * next kill, so the restart cannot work: vigil logs why (rate-limited
 * ERROR lines), pauses with a WARN that names the Redis and the reason,
 * keeps running, and recovers once the directory is back.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "env.h"
#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 8
#define N_EVS 600
#define RESTART_ERROR_EVERY_MS 5000 /* engine/embedded.c: at most one ERROR per 5 s */

static struct vg_test_env E;
/* No redis.url: vigil starts (and must restart) its own redis-server in E.data_dir. */
static struct vg_test_env_case C = {
    &E,
    "embedded-restart",
    {
        .partitions = PARTITIONS,
        .embedded_redis = true,
        .http = true,
        .rules_file = VG_FIXTURES "/e2e/rules.yaml",
        .sinks = "  ops: {type: console}\n",
        .kafka_tuning = VG_REF_KAFKA_SMALL_BATCHES,
    },
};

/* The pid in the last "embedded redis-server pid N on ..." line (start or restart), or -1. */
static int logged_redis_pid(void)
{
    static const char needle[] = "embedded redis-server pid ";
    char *text = vg_test_env_logs(&E);
    int pid = -1;

    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) {
        char *end;
        long v = strtol(p + strlen(needle), &end, 10);

        if (end != p + strlen(needle) && strncmp(end, " on ", 4) == 0 && v > 0) {
            pid = (int)v;
        }
    }
    free(text);
    return pid;
}

struct pid_wait {
    int not ; /* wait for a logged pid other than this one */
};

static bool redis_pid_logged(void *arg)
{
    struct pid_wait *w = arg;
    int pid = logged_redis_pid();

    return pid > 0 && pid != w->not ;
}

/* vg_ref_wait_applied reconnects to the embedded Redis as needed. */
static void wait_applied(int64_t want)
{
    assert_true(vg_ref_wait_applied(&E, want, 40000));
}

static void wait_log(size_t from, const char *needle, int want)
{
    assert_true(vg_test_env_wait_log_count(&E, from, needle, want, 30000));
}

/* `vigil get -o json` through the running vigil: every Resource as the reference says. */
static void check_get_json(const struct vg_ref_log *log)
{
    char *out = NULL;
    char *err = NULL;
    int rc = vg_test_env_run_cli(&E, &out, &err, "get", "-o", "json", NULL);
    cJSON *arr;
    size_t want = 0;
    if (rc != 0) {
        fprintf(stderr, "vigil get exited %d: %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    arr = cJSON_Parse(out);
    assert_non_null(arr);
    for (size_t i = 0; i < log->n_res; i++) {
        const struct vg_ref_res *r = &log->res[i];
        const cJSON *item;
        bool found = false;

        if (r->updated_at == 0) {
            continue;
        }
        want++;
        cJSON_ArrayForEach(item, arr)
        {
            const cJSON *id = cJSON_GetObjectItem(item, "id");

            if (!cJSON_IsString(id) || strcmp(id->valuestring, r->id) != 0) {
                continue;
            }
            found = true;
            assert_string_equal(cJSON_GetObjectItem(item, "status")->valuestring, r->status);
            assert_string_equal(cJSON_GetObjectItem(item, "runtime")->valuestring, r->runtime);
            assert_string_equal(cJSON_GetObjectItem(item, "health")->valuestring,
                                vg_health_name(r->health));
        }
        if (!found) {
            fprintf(stderr, "vigil get has no %s:\n%s\n", r->id, out);
        }
        assert_true(found);
    }
    assert_int_equal((size_t)cJSON_GetArraySize(arr), want);
    cJSON_Delete(arr);
    free(out);
    free(err);
}

static void test_embedded_redis_killed_and_restarted(void **state)
{
    struct vg_ref_log log;
    struct pid_wait pw = {-1};
    char *line;
    char *needle;
    int pid1;
    int pid2;
    size_t mark;
    int64_t outage_start;
    int64_t outage_ms;
    int errors;
    char *away_dir;
    (void)state;

    vg_ref_log_make(&log, N_RES, N_EVS, (unsigned)getpid());
    away_dir = vg_asprintf("%s.away", E.data_dir);
    assert_true(vg_ref_produce_env(&E, &log, 0, N_EVS / 3));
    assert_true(vg_test_env_spawn(&E));
    if (!vg_test_wait_for(redis_pid_logged, &pw, 30000)) {
        vg_test_env_dump_logs(&E);
        fail();
    }
    pid1 = logged_redis_pid();
    wait_applied(N_EVS / 3);

    /* 1. The child is SIGKILLed while events keep coming: one WARN naming the signal, restart. */
    mark = vg_test_env_log_size(&E);
    assert_int_equal(kill(pid1, SIGKILL), 0);
    needle =
        vg_asprintf("embedded redis-server pid %d killed by signal %d; restarting", pid1, SIGKILL);
    assert_true(vg_ref_produce_env(&E, &log, N_EVS / 3, 2 * N_EVS / 3));
    wait_log(mark, needle, 1);
    pw.not = pid1;
    if (!vg_test_wait_for(redis_pid_logged, &pw, 30000)) {
        vg_test_env_dump_logs(&E);
        fail();
    }
    pid2 = logged_redis_pid();
    wait_applied(2 * N_EVS / 3);
    assert_int_equal(vg_test_env_log_count(&E, 0, needle), 1);
    line = vg_test_env_log_line(&E, mark, needle);
    assert_non_null(strstr(line, " WARN state: "));
    fprintf(stderr, "%s\n", line);
    free(line);
    free(needle);

    /*
     * 2. The restart cannot work (the data dir is gone): ERROR lines say why,
     * rate-limited; the pause WARN names the Redis and the reason; vigil
     * keeps running and keeps trying.
     */
    mark = vg_test_env_log_size(&E);
    assert_int_equal(rename(E.data_dir, away_dir), 0);
    outage_start = vg_mono_ms();
    assert_int_equal(kill(pid2, SIGKILL), 0);
    wait_log(mark, "did not restart", 2);
    assert_true(vg_ref_produce_env(&E, &log, 2 * N_EVS / 3, N_EVS));
    wait_log(mark, "apply failed, pausing", 1);
    assert_true(vg_test_env_running(&E));
    line = vg_test_env_log_line(&E, mark, "did not restart");
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, " ERROR state: "));
    assert_non_null(strstr(line, "No such file or directory"));
    assert_non_null(strstr(line, E.data_dir));
    free(line);
    line = vg_test_env_log_line(&E, mark, "apply failed, pausing");
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, "redis unix://"));
    assert_non_null(strstr(line, "No such file or directory"));
    free(line);
    assert_int_equal(rename(away_dir, E.data_dir), 0);
    outage_ms = vg_mono_ms() - outage_start;
    wait_applied(N_EVS);
    errors = vg_test_env_log_count(&E, mark, "did not restart");
    fprintf(stderr, "%d ERROR lines in a %lld ms outage\n", errors, (long long)outage_ms);
    assert_true(errors <= 2 + (int)(outage_ms / RESTART_ERROR_EVERY_MS));

    /* Nothing lost, nothing doubled: `vigil get` and every history equal the reference. */
    check_get_json(&log);
    assert_int_equal(vg_ref_check_redis(vg_test_env_state(&E), &log), 0);
    assert_int_equal(vg_ref_applied_total(vg_test_env_state(&E), E.topic, PARTITIONS), N_EVS);
    assert_true(vg_test_env_running(&E));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    vg_ref_log_fini(&log);
    free(away_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_embedded_redis_killed_and_restarted,
                                                 vg_test_env_setup, vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
