/*
 * A zombie commit, end to end: the real `vigil run` owns the one partition
 * and has applied offset 0. Then another instance (the test, through its
 * own vg_state) claims the partition and applies offset 1, as the group's
 * new owner would while vigil was dropped from the group without knowing
 * it. vigil's next batch (offsets 1 and 2), built on its old claim, is
 * refused by the fence: counted in vigil_commit_conflicts_total, one WARN,
 * retried on a new claim that skips offset 1 as a replay. The history
 * holds each runtime change once.
 *
 * Then an owner ahead of what vigil has fetched: vigil holds messages 1
 * and 2 for a retry (Redis is down, its partitions paused) while another
 * instance applies 1 to 3. The high watermark vigil cached with its fetch
 * (3) is then at or below the applied offset it claims again (3), as after
 * a recreated topic; but the partition really ends at 4, so these are
 * replays, not offsets that started again.
 */
#include <hiredis/hiredis.h>
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
#include "state_redis.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define NAME "etl"
#define ID "workflow:v1:etl:w"
#define T1_MS 1795860001000LL /* 2026-11-28T10:00:01Z */

static struct vg_test_env E;

static int setup(void **state)
{
    struct vg_test_env_opts o = {.partitions = 1, .http = true};

    (void)state;
    return vg_test_env_start(&E, "engine-fence", &o);
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/*
 * Another instance, with a claim of its own, applies what vigil has not:
 * offsets after the applied one up to `last`, from `runtimes` (one per
 * offset, time T1_MS + 1 s per offset after 1). Its claim's epoch and the
 * applied offset it read go to *epoch and *applied (each may be NULL).
 */
static void other_instance_applies_to(int64_t last, const char *const *runtimes, int64_t *epoch,
                                      int64_t *applied)
{
    struct vg_state *st = NULL;
    int64_t claim_epoch = 0;
    int64_t claim_applied = -2;
    char *cluster = NULL;
    char errstr[512];

    assert_int_equal(
        vg_state_connect(&st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)),
        VG_OK);
    assert_int_equal(vg_state_partition_claim(st, E.topic, 0, &claim_epoch, &claim_applied,
                                              &cluster, errstr, sizeof(errstr)),
                     VG_OK);
    for (int64_t off = claim_applied + 1; off <= last; off++) {
        struct vg_event ev;

        vg_test_event_make(&ev, &(struct vg_test_event){.type = "workflow",
                                                        .name = NAME,
                                                        .workspace = "w",
                                                        .runtime = runtimes[off],
                                                        .time_ms = T1_MS + (off - 1) * 1000,
                                                        .topic = E.topic,
                                                        .partition = 0,
                                                        .offset = off});
        assert_int_equal(vg_test_state_apply_one_fenced(st, &vg_test_hc_workflow, &ev, claim_epoch,
                                                        cluster, NULL, errstr, sizeof(errstr)),
                         VG_OK);
        vg_event_fini(&ev);
    }
    free(cluster);
    vg_state_destroy(st);
    if (epoch) {
        *epoch = claim_epoch;
    }
    if (applied) {
        *applied = claim_applied;
    }
}

/* History entries of ID changing `field` to `to`. */
static int history_count(const char *field, const char *to)
{
    struct vg_history_entry *h = NULL;
    size_t n = 0;
    char errstr[512];
    int count = 0;

    assert_int_equal(vg_state_history(E.st, ID, 0, &h, &n, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < n; i++) {
        count += h[i].field && strcmp(h[i].field, field) == 0 && strcmp(h[i].to, to) == 0;
    }
    vg_history_free(h, n);
    return count;
}

static void test_zombie_commit_refused(void **state)
{
    static const char *const runtimes[] = {"running", "failed"};
    char *series = vg_asprintf("vigil_commit_conflicts_total{topic=\"%s\"}", E.topic);
    char *warn = vg_asprintf("WARN consumer: commit refused topic=%s partition=0: partition %s/0 "
                             "was taken by another instance",
                             E.topic, E.topic);
    struct vg_resource *res = NULL;
    char errstr[512];
    size_t mark;
    int64_t epoch;
    int64_t applied;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", NAME, "w", "active", "running", "2026-11-28T10:00:00Z",
                        NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    /* no conflict yet (the series is declared per topic once one happens) */
    assert_true(vg_test_env_metric(&E, series) <= 0);

    /* the partition's new owner claims it after vigil and commits message 1 (runtime failed) */
    other_instance_applies_to(1, runtimes, &epoch, &applied);
    assert_true(epoch >= 2); /* vigil claimed before */
    assert_int_equal(applied, 0);
    mark = vg_test_env_log_size(&E);
    vg_test_env_produce(&E, "workflow", NAME, "w", NULL, "failed", "2026-11-28T10:00:01Z", NULL);
    vg_test_env_produce(&E, "workflow", NAME, "w", NULL, "succeeded", "2026-11-28T10:00:02Z", NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));

    /* vigil's retry claimed again and skipped offset 1: each change is in the history once */
    assert_int_equal(history_count("runtime", "running"), 1);
    assert_int_equal(history_count("runtime", "failed"), 1);
    assert_int_equal(history_count("runtime", "succeeded"), 1);
    /* vigil's batch built on its old claim was refused (before its retry), counted and logged once
     */
    assert_true(vg_test_env_wait_metric(&E, series, 1, 10000));
    assert_true(vg_test_env_wait_log_count(&E, mark, warn, 1, 10000));
    assert_int_equal(vg_state_get(E.st, ID, &res, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(res);
    assert_string_equal(res->runtime, "succeeded");
    assert_int_equal(res->pos.offset, 2);
    vg_resource_destroy(res);
    assert_true(vg_test_env_running(&E));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    free(series);
    free(warn);
}

static void test_owner_ahead_of_fetch(void **state)
{
    static const char *const runtimes[] = {"running", "failed", "succeeded", "running"};
    char *replayed =
        vg_asprintf("vigil_events_consumed_total{topic=\"%s\",outcome=\"replayed\"}", E.topic);
    struct vg_resource *res = NULL;
    char errstr[512];
    int64_t applied = -1;
    size_t mark;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", NAME, "w", "active", "running", "2026-11-28T10:00:00Z",
                        NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));

    /* Redis down: vigil reads 1 and 2 (its high watermark now 3), fails, pauses, retries */
    vg_test_env_redis_kill(&E, SIGKILL);
    mark = vg_test_env_log_size(&E);
    vg_test_env_produce(&E, "workflow", NAME, "w", NULL, "failed", "2026-11-28T10:00:01Z", NULL);
    vg_test_env_produce(&E, "workflow", NAME, "w", NULL, "succeeded", "2026-11-28T10:00:02Z", NULL);
    assert_true(vg_test_env_flush(&E));
    assert_true(vg_test_env_wait_log_count(&E, mark, "apply failed, pausing", 1, 20000));

    /* held still (well within its session timeout) while the other instance gets ahead */
    assert_int_equal(kill(E.vigil, SIGSTOP), 0);
    assert_true(vg_test_env_redis_restart(&E));
    vg_test_env_produce(&E, "workflow", NAME, "w", NULL, "running", "2026-11-28T10:00:03Z", NULL);
    assert_true(vg_test_env_flush(&E));
    other_instance_applies_to(3, runtimes, NULL, NULL);
    assert_int_equal(kill(E.vigil, SIGCONT), 0);

    /* vigil's retry claims again (applied offset 3): 1 and 2 are replays, and so is 3 */
    assert_true(vg_test_env_wait_metric(&E, replayed, 3, 30000));
    assert_int_equal(vg_state_applied_offset(E.st, E.topic, 0, &applied, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(applied, 3);
    vg_test_env_produce(&E, "workflow", NAME, "w", "error", NULL, "2026-11-28T10:00:04Z", NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    assert_int_equal(vg_test_env_log_count(&E, mark, "offsets started again"), 0);
    /* nothing applied again (a second apply would add late entries) */
    assert_int_equal(history_count("runtime", "failed"), 1);
    assert_int_equal(history_count("runtime", "succeeded"), 1);
    assert_int_equal(history_count("runtime", "running"), 2);
    assert_int_equal(vg_state_get(E.st, ID, &res, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(res);
    assert_string_equal(res->runtime, "running");
    assert_string_equal(res->status, "error");
    assert_int_equal(res->pos.offset, 4);
    vg_resource_destroy(res);
    assert_true(vg_test_env_running(&E));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    free(replayed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zombie_commit_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_ahead_of_fetch, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
