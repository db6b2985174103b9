/*
 * `vigil sink test` against a real receiver: the test notification goes
 * through the sink as a page would (v1 body marked as a test, signed,
 * Idempotency-Key), status and latency are printed, a 503 is retried,
 * --all tries each sink and fails when one does, an unknown sink is a
 * usage error. Nothing of the daemon runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"

#define SINKS                                                                                      \
    "  ops:\n"                                                                                     \
    "    type: webhook\n"                                                                          \
    "    url: \"${VIGIL_TEST_HOOK_URL}\"\n"                                                        \
    "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"                                         \
    "    max_attempts: 3\n"                                                                        \
    "  down:\n"                                                                                    \
    "    type: webhook\n"                                                                          \
    "    url: http://127.0.0.1:1/nobody-listens\n"                                                 \
    "    max_attempts: 2\n"                                                                        \
    "    connect_timeout: 2s\n"

static void expect_in(const char *what, const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle)) {
        fail_msg("%s: \"%s\" not in:\n%s", what, needle, hay ? hay : "(null)");
    }
}

static void test_sink_test(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.sinks = SINKS};
    struct vg_http_behaviour unavailable = {.status = 503};
    struct vg_http_request *req;
    char *out = NULL;
    char *err = NULL;
    int rc;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "cli_sink", &o), 0);

    /* one sink: one signed request, marked as a test, status and latency printed */
    rc = vg_test_env_cli(&e, &out, &err,
                         (const char *const[]){"sink", "test", "--severity", "high", "ops", NULL});
    if (rc != 0) {
        fail_msg("exit %d: %s%s", rc, out, err);
    }
    expect_in("stdout", out, "sink ops: ok: HTTP 200 in ");
    expect_in("stdout", out, " ms (attempt 1 of 3)");
    assert_int_equal(vg_http_receiver_count(e.rcv), 1);
    req = vg_http_receiver_request(e.rcv, 0);
    assert_string_equal(req->method, "POST");
    assert_string_equal(req->path, "/hook");
    expect_in("body", req->body, "\"monitor\":\"vigil-sink-test\"");
    expect_in("body", req->body, "\"severity\":\"high\"");
    expect_in("body", req->body, "TEST notification");
    assert_non_null(vg_http_request_header(req, "webhook-signature"));
    assert_non_null(vg_http_request_header(req, "idempotency-key"));
    vg_http_request_free(req);
    free(out);
    free(err);

    /* a 503 is retried, like the dispatcher does */
    vg_http_receiver_push(e.rcv, &unavailable);
    rc = vg_test_env_cli(&e, &out, &err, (const char *const[]){"sink", "test", "ops", NULL});
    assert_int_equal(rc, 0);
    expect_in("stdout", out, "sink ops: attempt 1 of 3 failed: ");
    expect_in("stdout", out, "(HTTP 503, ");
    expect_in("stdout", out, "sink ops: ok: HTTP 200 in ");
    expect_in("stdout", out, "(attempt 2 of 3)");
    assert_int_equal(vg_http_receiver_count(e.rcv), 3);
    free(out);
    free(err);

    /* --all: each sink; one that cannot be reached fails the run */
    rc = vg_test_env_cli(&e, &out, &err, (const char *const[]){"sink", "test", "--all", NULL});
    assert_int_equal(rc, 1);
    expect_in("stdout", out, "sink ops: ok: HTTP 200");
    expect_in("stdout", out, "sink down: attempt 2 of 2 failed");
    expect_in("stdout", out, "sink down: failed: no attempts left");
    assert_int_equal(vg_http_receiver_count(e.rcv), 4);
    free(out);
    free(err);

    /* an unknown sink is a usage error naming the configured ones */
    rc = vg_test_env_cli(&e, &out, &err, (const char *const[]){"sink", "test", "opps", NULL});
    assert_int_equal(rc, 2);
    expect_in("stderr", err, "unknown sink \"opps\" (configured: ops, down)");
    assert_int_equal(vg_http_receiver_count(e.rcv), 4);
    free(out);
    free(err);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sink_test)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
