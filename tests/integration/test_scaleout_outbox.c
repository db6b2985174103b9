/*
 * The outbox entries of a dead instance are claimed by the living. Instance
 * A writes a page to the outbox and its dispatcher reads it, but the
 * receiver answers 500; A is SIGKILLed with the page pending under its
 * consumer name. The receiver recovers and instance B (another name, so
 * it cannot re-read A's entries as its own) starts: once the entry has
 * been idle for dispatch.claim_idle (3 s here, 60 s by default:
 * docs/sinks.md) B claims it (XAUTOCLAIM) and delivers it, well before the
 * default would let it. The receiver gets exactly one 2xx answer for the
 * page, and every attempt, A's and B's, carries the same idempotency id.
 * docs/scaling.md describes the hand-over.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

/* dispatch.claim_idle of both instances; B must deliver within CLAIM_DEADLINE_MS of starting,
 * which the 60 s default could not. */
#define CLAIM_IDLE "3s"
#define CLAIM_DEADLINE_MS 30000

static struct vg_test_env E;
static pid_t A;
static pid_t B;

static struct vg_test_instances_case C = {
    .env =
        {.env = &E,
         .name = "scaleout-outbox",
         .opts =
             {
                 .partitions = 2,
                 .http = true,
                 /* A retries for as long as the test runs: the page must not be dead-lettered */
                 .sinks =
                     "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", max_attempts: 1000, "
                     "timeout: 2s}\n",
                 /* a short claim interval: the hand-over in seconds, not a minute */
                 .extra = "dispatch:\n  claim_idle: " CLAIM_IDLE "\n",
             }},
    .pids = {&A, &B},
};

/* The outbox's pending entries of consumer `name` (XPENDING summary); -1 on error. */
static long long pending_of(const char *name)
{
    redisReply *r = vg_test_env_redis(&E, "XPENDING %s:outbox dispatch", E.prefix);
    long long n = -1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        const redisReply *owners = r->element[3];

        n = 0;
        for (size_t i = 0; owners->type == REDIS_REPLY_ARRAY && i < owners->elements; i++) {
            const redisReply *o = owners->element[i];

            if (o->type == REDIS_REPLY_ARRAY && o->elements == 2 &&
                strcmp(o->element[0]->str, name) == 0) {
                int64_t x = 0;

                n = vg_parse_i64(o->element[1]->str, &x) ? x : -1;
            }
        }
    }
    if (r) {
        freeReplyObject(r);
    }
    return n;
}

static size_t answered_2xx(void)
{
    size_t n = vg_http_receiver_count(E.rcv);
    size_t ok = 0;

    for (size_t i = 0; i < n; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);

        if (req->answer_status >= 200 && req->answer_status < 300) {
            ok++;
        }
        vg_http_request_free(req);
    }
    return ok;
}

static bool delivered(void *arg)
{
    (void)arg;
    return answered_2xx() >= 1;
}

static void test_living_instance_claims_the_dead_ones_page(void **state)
{
    struct vg_http_behaviour fail = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour ok = {.action = VG_HTTP_ANSWER, .status = 200};
    int port_a = 0;
    int port_b = 0;
    size_t by_a;
    size_t n;
    char *idem = NULL;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &fail);
    A = vg_test_env_spawn_instance(&E, "scaleout-a", &port_a);
    assert_true(A > 0);
    assert_true(vg_test_wait_http_ready(port_a, 60000));

    /* A page A cannot deliver: it stays pending under A's consumer name. */
    vg_test_env_produce(&E, "workflow", "broken", "public", "active", "running", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "broken", "public", NULL, "failed", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_requests(&E, 1, 60000));
    assert_int_equal(pending_of("scaleout-a"), 1);

    assert_int_equal(vg_test_env_stop_instance(&E, A, SIGKILL), 128 + SIGKILL);
    A = 0;
    by_a = vg_http_receiver_count(E.rcv);
    assert_int_equal(answered_2xx(), 0);
    assert_int_equal(pending_of("scaleout-a"), 1);

    /* The receiver recovers; B, another instance, claims A's entry and delivers it. */
    vg_http_receiver_set_default(E.rcv, &ok);
    B = vg_test_env_spawn_instance(&E, "scaleout-b", &port_b);
    assert_true(B > 0);
    if (!vg_test_wait_for(delivered, NULL, CLAIM_DEADLINE_MS)) {
        vg_test_env_dump_logs(&E);
        fail_msg("B did not deliver A's page within %d ms (claim_idle %s; %zu requests)",
                 vg_test_timeout(CLAIM_DEADLINE_MS), CLAIM_IDLE, vg_http_receiver_count(E.rcv));
    }
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(pending_of("scaleout-a"), 0);
    assert_int_equal(pending_of("scaleout-b"), 0);

    /* Quiet (outbox empty, no timer): nothing is left that could be sent again. */
    n = vg_http_receiver_count(E.rcv);
    assert_true(n > by_a);
    assert_int_equal(answered_2xx(), 1);
    for (size_t i = 0; i < n; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
        const char *key = vg_http_request_header(req, "Idempotency-Key");
        const char *wid = vg_http_request_header(req, "webhook-id");

        assert_non_null(key);
        assert_non_null(wid);
        assert_string_equal(key, wid);
        if (!idem) {
            idem = vg_strdup(key);
        }
        assert_string_equal(key, idem); /* A's attempts and B's delivery: one notification */
        if (i < by_a) {
            assert_int_equal(req->answer_status, 500);
        }
        vg_http_request_free(req);
    }
    free(idem);

    assert_int_equal(vg_test_env_stop_instance(&E, B, SIGTERM), 0);
    B = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_living_instance_claims_the_dead_ones_page,
                                                 vg_test_instances_setup,
                                                 vg_test_instances_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
