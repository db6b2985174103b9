/*
 * Failures of libcurl's multi interface, against a real receiver on
 * 127.0.0.1: curl_multi_perform, curl_multi_poll and curl_multi_add_handle
 * are wrapped at link time (-Wl,--wrap) so a test can make them fail. An
 * attempt in flight then finishes as a retriable failure instead of
 * hanging, a handle the multi refuses is a retriable failure too (never a
 * page given up on), a poll that keeps failing backs off instead of
 * spinning and is logged once, and the next attempt is delivered again.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_receiver.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/sinks.h"
#include "vigil/util.h"

#define BODY "{\"status\":\"firing\"}"

/* What the wrapped calls return instead of doing their work; CURLM_OK: the real call. */
static CURLMcode fail_perform;
static CURLMcode fail_poll;
static CURLMcode fail_add;
static int n_poll_calls;

CURLMcode __real_curl_multi_perform(CURLM *m, int *running);
CURLMcode __real_curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
                                 int *numfds);
CURLMcode __real_curl_multi_add_handle(CURLM *m, CURL *e);
CURLMcode __wrap_curl_multi_perform(CURLM *m, int *running);
CURLMcode __wrap_curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
                                 int *numfds);
CURLMcode __wrap_curl_multi_add_handle(CURLM *m, CURL *e);

CURLMcode __wrap_curl_multi_perform(CURLM *m, int *running)
{
    return fail_perform != CURLM_OK ? fail_perform : __real_curl_multi_perform(m, running);
}

CURLMcode __wrap_curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
                                 int *numfds)
{
    n_poll_calls++;
    if (fail_poll != CURLM_OK) {
        return fail_poll; /* at once, as a broken wakeup pipe would */
    }
    return __real_curl_multi_poll(m, extra, n, timeout_ms, numfds);
}

CURLMcode __wrap_curl_multi_add_handle(CURLM *m, CURL *e)
{
    return fail_add != CURLM_OK ? fail_add : __real_curl_multi_add_handle(m, e);
}

struct fixture {
    struct vg_http_receiver *r;
    struct vg_sinks *sk;
    uint64_t next_tag;
};

static int setup(void **state)
{
    struct fixture *f = vg_calloc(1, sizeof(*f));
    char errstr[512] = "";
    char *url;
    struct vg_sink_config cfg = {
        .name = (char *)"ops",
        .type = (char *)"webhook",
        /* Far longer than the test's deadlines: only a multi failure can end a hanging attempt. */
        .timeout_ms = 600000,
        .connect_timeout_ms = 60000,
    };

    vg_test_no_proxy();
    fail_perform = fail_poll = fail_add = CURLM_OK;
    f->r = vg_http_receiver_start();
    assert_non_null(f->r);
    url = vg_http_receiver_url(f->r, "/hook");
    cfg.url = url;
    if (vg_sinks_new(&f->sk, &cfg, 1, NULL, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    vg_free(url);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    fail_perform = fail_poll = fail_add = CURLM_OK;
    vg_sinks_destroy(f->sk);
    vg_http_receiver_stop(f->r);
    vg_free(f);
    return 0;
}

/* Acquire a slot and start one attempt; returns its tag. */
static uint64_t start(struct fixture *f)
{
    char errstr[512] = "";
    int64_t wait_ms;
    struct vg_sink_job job = {
        .tag = ++f->next_tag,
        .sink = "ops",
        .id = "0123456789abcdef-1",
        .body = BODY,
        .body_len = strlen(BODY),
    };

    assert_int_equal(vg_sinks_acquire(f->sk, "ops", vg_mono_ms(), &wait_ms), VG_SINK_GO);
    if (vg_sinks_start(f->sk, &job, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vg_sinks_start: %s\n", errstr);
        fail();
    }
    return job.tag;
}

/* Poll until one result arrives or the deadline passes (then fail). */
static void wait_result(struct fixture *f, struct vg_sink_result *out)
{
    int64_t deadline = vg_mono_ms() + vg_test_timeout(60000);

    while (vg_mono_ms() < deadline) {
        if (vg_sinks_poll(f->sk, 100, out, 1) == 1) {
            return;
        }
    }
    fail_msg("no result within the deadline");
}

static void test_perform_failure_finishes_attempts_in_flight(void **state)
{
    struct fixture *f = *state;
    struct vg_http_behaviour hang = {.action = VG_HTTP_HANG};
    struct vg_sink_result r;
    int64_t deadline = vg_mono_ms() + vg_test_timeout(60000);
    uint64_t tag;

    vg_http_receiver_set_default(f->r, &hang);
    tag = start(f);
    /* Until the request is on the wire: the attempt is in flight, waiting for an answer. */
    while (vg_http_receiver_count(f->r) < 1) {
        assert_true(vg_mono_ms() < deadline);
        assert_int_equal(vg_sinks_poll(f->sk, 50, &r, 1), 0);
    }
    assert_int_equal(vg_sinks_in_flight(f->sk), 1);

    fail_perform = CURLM_INTERNAL_ERROR;
    wait_result(f, &r);
    assert_int_equal(r.tag, tag);
    assert_int_equal(r.err, VG_ERR_BACKEND); /* retriable: the dispatcher tries again */
    assert_non_null(strstr(r.detail, "curl_multi_perform"));
    assert_int_equal(vg_sinks_in_flight(f->sk), 0);
    vg_sink_result_fini(&r);

    /* The handle was rebuilt: the next attempt is delivered. */
    fail_perform = CURLM_OK;
    vg_http_receiver_set_default(
        f->r, &(struct vg_http_behaviour){.action = VG_HTTP_ANSWER, .status = 200});
    tag = start(f);
    wait_result(f, &r);
    assert_int_equal(r.tag, tag);
    assert_int_equal(r.err, VG_OK);
    assert_int_equal(r.status, 200);
    vg_sink_result_fini(&r);
}

static void test_refused_handle_is_retried_not_given_up(void **state)
{
    struct fixture *f = *state;
    struct vg_sink_result r;
    uint64_t tag;

    vg_http_receiver_set_default(
        f->r, &(struct vg_http_behaviour){.action = VG_HTTP_ANSWER, .status = 200});
    fail_add = CURLM_OUT_OF_MEMORY;
    tag = start(f); /* VG_OK: not the page's fault, so nothing for the dispatcher to give up */
    wait_result(f, &r);
    assert_int_equal(r.tag, tag);
    assert_int_equal(r.err, VG_ERR_BACKEND);
    assert_non_null(strstr(r.detail, "curl_multi_add_handle"));
    vg_sink_result_fini(&r);

    fail_add = CURLM_OK;
    tag = start(f);
    wait_result(f, &r);
    assert_int_equal(r.tag, tag);
    assert_int_equal(r.err, VG_OK);
    vg_sink_result_fini(&r);
    assert_int_equal(vg_http_receiver_count(f->r), 1);
}

static int count_in(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

static void test_failing_poll_backs_off_and_logs_once(void **state)
{
    struct fixture *f = *state;
    struct vg_sink_result r;
    char *dir = vg_test_mkdtemp("sinks-multi");
    char *log_path = vg_asprintf("%s/stderr", dir);
    char *text;
    int saved = dup(STDERR_FILENO);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int64_t t0;
    int64_t elapsed;
    uint64_t tag;

    assert_true(saved >= 0 && fd >= 0);
    vg_http_receiver_set_default(
        f->r, &(struct vg_http_behaviour){.action = VG_HTTP_ANSWER, .status = 200});
    fflush(stderr);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);

    /*
     * Every poll fails at once. Three polls that may each wait 1 ms would
     * return in microseconds if the failure were ignored; backing off
     * (100, 200, 400 ms) they take at least 700 ms.
     */
    fail_poll = CURLM_INTERNAL_ERROR;
    n_poll_calls = 0;
    t0 = vg_mono_ms();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(vg_sinks_poll(f->sk, 1, &r, 1), 0);
    }
    elapsed = vg_mono_ms() - t0;
    assert_int_equal(n_poll_calls, 3); /* libcurl was asked each time: nothing hidden */

    /* Back to normal: the next attempt is delivered and the recovery logged. */
    fail_poll = CURLM_OK;
    tag = start(f);
    wait_result(f, &r);
    assert_int_equal(r.tag, tag);
    assert_int_equal(r.err, VG_OK);
    vg_sink_result_fini(&r);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fd);
    text = vg_test_read_file(log_path, NULL);
    assert_non_null(text);
    fprintf(stderr, "polls took %lld ms; log:\n%s", (long long)elapsed, text);
    assert_true(elapsed >= 700);
    assert_int_equal(count_in(text, "multi interface failed"), 1);
    assert_non_null(strstr(text, "curl_multi_poll"));
    assert_int_equal(count_in(text, "multi interface works again"), 1);
    free(text);
    vg_test_rmrf(dir);
    vg_free(log_path);
    vg_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_perform_failure_finishes_attempts_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_handle_is_retried_not_given_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_poll_backs_off_and_logs_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
