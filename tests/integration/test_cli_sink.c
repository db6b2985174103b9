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
#include "vigil/mem.h"

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

/* The Teams and PagerDuty sinks take the same path: a card and an Events API v2 trigger. */
static void test_sink_test_teams_pagerduty(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {0};
    struct vg_http_request *req;
    char *sinks;
    char *teams;
    char *pd;
    char *out = NULL;
    char *err = NULL;
    int rc;

    (void)state;
    /* the receiver's port is known only once it runs: start, then write the sinks */
    assert_int_equal(vg_test_env_start(&e, "cli_sink_more", &o), 0);
    teams = vg_http_receiver_url(e.rcv, "/teams");
    pd = vg_http_receiver_url(e.rcv, "/pd");
    setenv("VIGIL_TEST_PD_KEY", "R0ut1ngKeyF0rT3sts", 1);
    sinks = vg_asprintf("  teams: {type: teams, url: \"%s\", max_attempts: 2}\n"
                        "  pd: {type: pagerduty, routing_key: \"${VIGIL_TEST_PD_KEY}\", url: "
                        "\"%s\", max_attempts: 2}\n",
                        teams, pd);
    e.opts.sinks = sinks;
    vg_test_env_write_config(&e);

    rc = vg_test_env_cli(&e, &out, &err, (const char *const[]){"sink", "test", "teams", NULL});
    if (rc != 0) {
        fail_msg("teams: exit %d: %s%s", rc, out, err);
    }
    expect_in("stdout", out, "sink teams: ok: HTTP 200 in ");
    req = vg_http_receiver_request(e.rcv, 0);
    assert_non_null(req);
    assert_string_equal(req->path, "/teams");
    expect_in("teams body", req->body, "AdaptiveCard");
    expect_in("teams body", req->body, "vigil-sink-test");
    vg_http_request_free(req);
    free(out);
    free(err);

    rc = vg_test_env_cli(&e, &out, &err, (const char *const[]){"sink", "test", "pd", NULL});
    if (rc != 0) {
        fail_msg("pagerduty: exit %d: %s%s", rc, out, err);
    }
    expect_in("stdout", out, "sink pd: ok: HTTP ");
    /* the routing key is a secret: in the request, never in what vigil prints */
    assert_null(strstr(out, "R0ut1ngKeyF0rT3sts"));
    assert_null(strstr(err, "R0ut1ngKeyF0rT3sts"));
    req = vg_http_receiver_request(e.rcv, 1);
    assert_non_null(req);
    assert_string_equal(req->path, "/pd");
    expect_in("pagerduty body", req->body, "\"event_action\":\"trigger\"");
    expect_in("pagerduty body", req->body, "\"routing_key\":\"R0ut1ngKeyF0rT3sts\"");
    vg_http_request_free(req);
    free(out);
    free(err);
    assert_int_equal(vg_http_receiver_count(e.rcv), 2);
    assert_int_equal(vg_test_env_stop(&e), 0);
    free(sinks);
    free(teams);
    free(pd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sink_test),
                                       cmocka_unit_test(test_sink_test_teams_pagerduty)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
