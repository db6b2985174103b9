/*
 * Partitions move between instances while events keep coming, and no
 * event is lost or applied twice across the move. Instance A consumes an
 * 8-partition topic alone while a thread produces a reference log
 * continuously; instance B joins the group (A's partitions are revoked
 * and shared with B: each finishes its batch in flight, commits, drops
 * the moved partitions' cache and timers, and the new owner starts at the
 * applied offsets); later A leaves with SIGTERM (its partitions move to
 * B). At the end every Resource's state and whole history in Redis equal
 * the reference model (tests/support/refmodel.h): no transition missing,
 * none recorded twice. docs/scaling.md describes the hand-over.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 8
#define N_RES 300
#define N_EVS 8000
#define PRODUCE_MS 24000 /* spread over both moves: each takes up to a session timeout (6 s) */
#define CHUNK 50

static struct vg_test_env E;
static pid_t A;
static pid_t B;

struct gen {
    const struct vg_ref_log *log;
    pthread_mutex_t mu;
    size_t produced; /* events produced and flushed so far */
    bool ok;
    bool done;
};

static struct vg_test_instances_case C = {
    .env = {.env = &E,
            .name = "scaleout-revoke",
            .opts =
                {
                    .partitions = PARTITIONS,
                    .http = true, /* readiness tells whether an instance holds partitions */
                    .sinks = "  ops: {type: console}\n",
                    .kafka_tuning = VG_REF_KAFKA_SMALL_BATCHES,
                }},
    .pids = {&A, &B},
};

/* The log, CHUNK events at a time, evenly over PRODUCE_MS. */
static void *generate(void *arg)
{
    struct gen *g = arg;
    int64_t t0 = vg_mono_ms();
    bool ok = true;

    for (size_t i = 0; ok && i < g->log->n_evs; i += CHUNK) {
        size_t to = i + CHUNK < g->log->n_evs ? i + CHUNK : g->log->n_evs;
        int64_t due = t0 + (int64_t)PRODUCE_MS * (int64_t)to / (int64_t)g->log->n_evs;

        ok = vg_ref_produce(E.producer, E.topic, g->log, i, to);
        pthread_mutex_lock(&g->mu);
        g->produced = to;
        pthread_mutex_unlock(&g->mu);
        while (ok && vg_mono_ms() < due) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    pthread_mutex_lock(&g->mu);
    g->ok = ok;
    g->done = true;
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static size_t produced(struct gen *g)
{
    size_t n;

    pthread_mutex_lock(&g->mu);
    n = g->produced;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static bool gen_done(void *arg)
{
    struct gen *g = arg;
    bool done;

    pthread_mutex_lock(&g->mu);
    done = g->done;
    pthread_mutex_unlock(&g->mu);
    return done;
}

/* The messages applied by the instance on `port` (its /metrics), -1 when not answered. */
static double applied_by(int port)
{
    char *series =
        vg_asprintf("vigil_events_consumed_total{topic=\"%s\",outcome=\"applied\"}", E.topic);
    double v = vg_test_metric_at(port, series);

    free(series);
    return v;
}

static void test_no_event_lost_or_doubled_across_moves(void **state)
{
    struct vg_ref_log log;
    struct gen g = {.ok = false};
    pthread_t th;
    unsigned seed;
    int port_a = 0;
    int port_b = 0;
    size_t mark;
    size_t at_join;
    size_t at_leave;
    int bad;

    (void)state;
    assert_true(vg_test_seed(&seed));
    vg_ref_log_make(&log, N_RES, N_EVS, seed);
    g.log = &log;
    pthread_mutex_init(&g.mu, NULL);

    A = vg_test_env_spawn_instance(&E, "scaleout-a", &port_a);
    assert_true(A > 0);
    assert_true(vg_test_wait_http_ready(port_a, 60000));
    assert_int_equal(pthread_create(&th, NULL, generate, &g), 0);

    /* B joins while events flow: the group revokes partitions from A and gives B its share. */
    while (vg_ref_applied_total(E.st, E.topic, PARTITIONS) < N_EVS / 10 && !gen_done(&g)) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    mark = vg_test_env_log_size(&E);
    at_join = produced(&g);
    B = vg_test_env_spawn_instance(&E, "scaleout-b", &port_b);
    assert_true(B > 0);
    assert_true(vg_test_wait_http_ready(port_b, 60000));
    assert_true(vg_test_wait_http_ready(port_a, 60000));
    /* A's partitions were revoked (not lost: A is alive) */
    assert_true(vg_test_env_log_count(&E, mark, "revoked ") >= 1);

    /* Both apply, then A leaves (SIGTERM: drain, commit, leave) and B takes all. */
    {
        double before = applied_by(port_b);

        while (applied_by(port_b) <= before && !gen_done(&g)) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    at_leave = produced(&g);
    assert_int_equal(vg_test_env_stop_instance(&E, A, SIGTERM), 0);
    A = 0;
    assert_true(vg_test_wait_for(gen_done, &g, 120000));
    pthread_join(th, NULL);
    assert_true(g.ok);
    fprintf(stderr, "B joined after %zu of %d events, A left after %zu\n", at_join, N_EVS,
            at_leave);
    /* Both moves happened while events were still coming. */
    assert_true(at_leave < N_EVS);

    E.produced = N_EVS;
    assert_true(vg_ref_wait_applied(&E, N_EVS, 120000));
    assert_true(applied_by(port_b) > 0);
    assert_int_equal(vg_test_env_stop_instance(&E, B, SIGTERM), 0);
    B = 0;
    assert_int_equal(vg_ref_applied_total(E.st, E.topic, PARTITIONS), N_EVS);

    bad = vg_ref_check_redis(E.st, &log);
    if (bad) {
        fprintf(stderr, "seed %u: %d mismatches\n", seed, bad);
    }
    assert_int_equal(bad, 0);
    pthread_mutex_destroy(&g.mu);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_no_event_lost_or_doubled_across_moves,
                                                 vg_test_instances_setup,
                                                 vg_test_instances_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
