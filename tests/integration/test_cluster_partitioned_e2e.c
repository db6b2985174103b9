/*
 * vigil on a Redis Cluster with `layout: partitioned`, end to end: a real
 * cluster (three primaries, one replica each) and the real `vigil run`
 * given a replica's address with `cluster: true` on a 12-partition topic;
 * a generated log over 200 Resources is applied (state and every history
 * equal the reference model), every page the monitor asks for reaches the
 * HTTP receiver, `vigil get` lists every Resource, and the partitions'
 * keys are spread over the primaries (each partition's in its own slot).
 * `vigil replay` then rebuilds the state and swaps it in, partition by
 * partition, on every primary.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster_common.h"
#include "support.h"
#include "vigil/mem.h"

#define PARTITIONS 12
#define N_RES 200
#define N_EVS 2000

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-pe2e", PARTITIONS};

/* `vigil get -o json` names every Resource of the log that had an event. */
static void assert_get_lists_all(const struct vg_ref_log *log)
{
    char *out = NULL;
    char *err = NULL;
    size_t missing = 0;

    assert_int_equal(vg_test_env_run_cli(&T.e, &out, &err, "get", "-o", "json", NULL), 0);
    for (size_t i = 0; i < log->n_res; i++) {
        char quoted[64];

        if (log->res[i].updated_at == 0) {
            continue;
        }
        snprintf(quoted, sizeof(quoted), "\"%s\"", log->res[i].name);
        if (!strstr(out, quoted)) {
            fprintf(stderr, "cluster: vigil get does not list %s\n", log->res[i].name);
            missing++;
        }
    }
    free(out);
    free(err);
    assert_int_equal(missing, 0);
}

/* The partitions' keys on at least two primaries, each partition's in its own slot. */
static void assert_spread(void)
{
    size_t primaries = 0;
    long long n = cluster_scope_keys(&T, &primaries);

    fprintf(stderr, "cluster: %lld keys in partition scopes on %zu primaries\n", n, primaries);
    assert_true(n > 2 * N_RES);
    assert_true(primaries >= 2);
}

static void test_partitioned_e2e_on_a_cluster(void **state)
{
    struct vg_ref_log log;
    size_t expected = 0;
    char *out = NULL;
    char *err = NULL;
    char *pattern;
    int bad;
    (void)state;

    vg_ref_log_make_runtimes(&log, "pc", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(vg_test_env_spawn(&T.e));
    assert_true(vg_ref_produce_env(&T.e, &log, 0, N_EVS));
    assert_true(cluster_wait_applied(&T, N_EVS, 120000));

    /* the state and the whole history of every Resource, read across the scopes */
    bad = vg_ref_check_redis(vg_test_env_state(&T.e), &log);
    assert_int_equal(bad, 0);
    /* every page, delivered by the dispatcher from every partition's outbox */
    assert_int_equal(cluster_check_pages(&T.e, &log, &expected, 60000), 0);
    assert_true(expected > 0);
    assert_get_lists_all(&log);
    assert_spread();
    assert_int_equal(vg_test_env_kill(&T.e, SIGTERM), 0);

    /* `vigil replay` rebuilds under <prefix>:replay:<ts>:{t/p} and renames it in */
    assert_int_equal(vg_test_env_run_cli(&T.e, &out, &err, "replay", "--from-beginning", NULL), 0);
    fprintf(stderr, "%s", out);
    free(out);
    free(err);
    bad = vg_ref_check_redis(vg_test_env_state(&T.e), &log);
    assert_int_equal(bad, 0);
    assert_get_lists_all(&log);
    assert_spread();
    /* nothing left of the replay: its partitions' keys nor its global ones */
    pattern = vg_asprintf("%s:replay:*", T.e.prefix);
    assert_int_equal(vg_test_cluster_count_everywhere(&T.rc, pattern, NULL), 0);
    free(pattern);
    pattern = vg_asprintf("{%s}:replay:*", T.e.prefix);
    assert_int_equal(vg_test_cluster_count_everywhere(&T.rc, pattern, NULL), 0);
    free(pattern);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_partitioned_e2e_on_a_cluster,
                                                 cluster_test_setup_partitioned,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
