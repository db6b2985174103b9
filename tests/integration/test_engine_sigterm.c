/*
 * Stopping `vigil run` with SIGTERM, under load: it stops consuming,
 * finishes the batch and the deliveries in flight, commits and exits 0
 * within 10 s; and a second SIGTERM ends it at once, after which a
 * restart shows nothing lost (Redis equals the reference model of the
 * log, the page that was in flight is delivered under its first id).
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 24
#define N_EVS 4000

static struct vg_test_env E;

struct exit_wait {
    pid_t pid;
    int status; /* exit status, or 128 + signal */
};

static bool exited(void *arg)
{
    struct exit_wait *x = arg;
    int status;

    if (waitpid(x->pid, &status, WNOHANG) != x->pid) {
        return false;
    }
    x->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
}

static bool applied_some(void *arg)
{
    int64_t want = *(const int64_t *)arg;

    return vg_ref_applied_total(E.st, E.topic, PARTITIONS) >= want;
}

static int setup_env(void **state)
{
    struct vg_test_env_opts o = {
        .partitions = PARTITIONS,
        .sinks = "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", max_attempts: 1000, "
                 "timeout: 60s}\n",
        /* small batches: a stop lands in the middle of many commits */
        .kafka_tuning = "  batch_size: 50\n"
                        "  batch_ms: 5\n"
                        "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                        "\"500\"}\n",
    };

    (void)state;
    return vg_test_env_start(&E, "sigterm", &o);
}

static int teardown_env(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/* Restart and check that Redis equals the reference and every page went out. */
static void restart_and_check(const struct vg_ref_log *log)
{
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_test_env_wait_applied(&E, 120000));
    assert_int_equal(vg_ref_check_redis(E.st, log), 0);
    assert_true(vg_test_env_wait_quiet(&E, 60000));
}

/*
 * SIGTERM under load, with a delivery in flight (the receiver answers
 * after 1.5 s): exit status 0, within 10 s.
 */
static void test_sigterm_drains_within_bound(void **state)
{
    struct vg_http_behaviour slow = {.action = VG_HTTP_ANSWER, .status = 200, .delay_ms = 1500};
    struct vg_ref_log log;
    struct exit_wait x;
    int64_t quarter = N_EVS / 4;
    int64_t t0;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &slow);
    vg_ref_log_make(&log, N_RES, N_EVS, 1313u);
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_ref_produce_env(&E, &log, 0, N_EVS));
    assert_true(vg_test_wait_for(applied_some, &quarter, 60000));
    assert_true(vg_test_env_wait_requests(&E, 1, 30000));
    x.pid = E.vigil;
    t0 = vg_mono_ms();
    kill(E.vigil, SIGTERM);
    /* the bound itself, not scaled: the deadline is the contract */
    assert_true(vg_test_wait_for(exited, &x, 10000));
    E.vigil = 0;
    printf("sigterm: exited %d after %lld ms\n", x.status, (long long)(vg_mono_ms() - t0));
    assert_int_equal(x.status, 0);
    slow.delay_ms = 0;
    vg_http_receiver_set_default(E.rcv, &slow);
    restart_and_check(&log);
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    vg_ref_log_fini(&log);
}

/* Whether request i of the receiver was answered 2xx under Idempotency-Key `idem`. */
static bool delivered_as(const char *idem)
{
    size_t n = vg_http_receiver_count(E.rcv);
    bool found = false;

    for (size_t i = 0; i < n && !found; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
        const char *k = vg_http_request_header(req, "Idempotency-Key");

        found = req->answer_status == 200 && k && strcmp(k, idem) == 0;
        vg_http_request_free(req);
    }
    return found;
}

static bool in_flight_delivered(void *arg)
{
    return delivered_as(arg);
}

/*
 * A second SIGTERM while the first one drains (a delivery hangs, so the
 * drain would wait up to 5 s for it): the process ends within 2 s, and a
 * restart finds every event applied once and delivers the hung page under
 * the same id.
 */
static void test_second_sigterm_exits_at_once(void **state)
{
    struct vg_http_behaviour hang = {.action = VG_HTTP_HANG};
    struct vg_http_behaviour ok = {.action = VG_HTTP_ANSWER, .status = 200};
    struct vg_http_request *first;
    struct vg_ref_log log;
    struct exit_wait x;
    int64_t quarter = N_EVS / 4;
    char *idem;
    int64_t t0;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &hang);
    vg_ref_log_make(&log, N_RES, N_EVS, 2727u);
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_ref_produce_env(&E, &log, 0, N_EVS));
    assert_true(vg_test_wait_for(applied_some, &quarter, 60000));
    assert_true(vg_test_env_wait_requests(&E, 1, 30000));
    first = vg_http_receiver_request(E.rcv, vg_http_receiver_count(E.rcv) - 1);
    assert_non_null(first);
    idem = vg_strdup(vg_http_request_header(first, "Idempotency-Key"));
    vg_http_request_free(first);
    x.pid = E.vigil;
    t0 = vg_mono_ms();
    kill(E.vigil, SIGTERM);
    /* the first one drains: the hung delivery holds it (up to 5 s) */
    assert_true(vg_test_env_wait_log(&E, "stopping:", 5000));
    kill(E.vigil, SIGTERM);
    assert_true(vg_test_wait_for(exited, &x, 2000));
    E.vigil = 0;
    printf("sigterm: second signal, exited %d after %lld ms\n", x.status,
           (long long)(vg_mono_ms() - t0));
    assert_int_equal(x.status, 128 + SIGTERM);
    vg_http_receiver_set_default(E.rcv, &ok);
    restart_and_check(&log);
    assert_true(vg_test_wait_for(in_flight_delivered, idem, 30000));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    free(idem);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm_drains_within_bound, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_second_sigterm_exits_at_once, setup_env, teardown_env),
    };
    vg_test_no_proxy();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
