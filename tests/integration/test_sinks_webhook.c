/*
 * The webhook sink against a real HTTP/1.1 receiver on 127.0.0.1
 * (tests/support/http_receiver.c): request shape and headers, the
 * status-code classification, redirects, timeouts, dropped connections,
 * a dead port, connection reuse, and that errstr never leaks the url.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_receiver.h"
#include "page_body.h"
#include "support.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/sinks.h"
#include "vigil/util.h"

/* A token-like path segment: it must never show up in an error message. */
#define SECRET "T0KEN-s3cr3t-9f8e7d6c5b4a"
#define HOOK_PATH "/hooks/" SECRET "/x"
#define PAGE_ID "0123456789abcdef-1"

struct fixture {
    struct vg_http_receiver *r;
    struct vg_sinks *sk;
    char *body;
    size_t body_len;
};

static struct vg_sinks *new_sinks(const char *url, int64_t timeout_ms)
{
    struct vg_kv headers[] = {
        {.key = (char *)"Authorization", .value = (char *)"Bearer abc123"},
        {.key = (char *)"X-Team", .value = (char *)"data platform"},
    };
    struct vg_sink_config cfg = {
        .name = (char *)"ops",
        .type = (char *)"webhook",
        .url = (char *)url,
        .headers = headers,
        .n_headers = VG_ARRAY_LEN(headers),
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = 2000,
        .max_attempts = 3,
    };
    struct vg_sinks *sk = NULL;
    char errstr[256] = "";

    if (vg_sinks_new(&sk, &cfg, 1, NULL, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("vg_sinks_new: %s", errstr);
    }
    return sk;
}

static int setup(void **state)
{
    struct fixture *f = vg_calloc(1, sizeof(*f));
    char *url;

    vg_test_no_proxy();
    f->r = vg_http_receiver_start();
    assert_non_null(f->r);
    url = vg_http_receiver_url(f->r, HOOK_PATH);
    f->sk = new_sinks(url, 5000);
    vg_free(url);
    f->body = vg_test_page_body("0123456789abcdef", "firing", "ingestion-x");
    f->body_len = strlen(f->body);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    vg_sinks_destroy(f->sk);
    vg_http_receiver_stop(f->r);
    vg_free(f->body);
    vg_free(f);
    return 0;
}

/* One delivery; every error message is checked for the secret. */
static vg_err_t deliver_to(struct vg_sinks *sk, const struct fixture *f, char *errstr,
                           size_t errstr_size)
{
    vg_err_t err;

    errstr[0] = '\0';
    err = vg_sinks_deliver(sk, "ops", PAGE_ID, f->body, f->body_len, errstr, errstr_size);
    if (strstr(errstr, SECRET) || strstr(errstr, "/hooks/")) {
        fail_msg("errstr leaks the url: %s", errstr);
    }
    if (err != VG_OK && !strstr(errstr, "sink ops: ")) {
        fail_msg("errstr does not name the sink: \"%s\"", errstr);
    }
    return err;
}

static vg_err_t deliver(struct fixture *f, char *errstr, size_t errstr_size)
{
    return deliver_to(f->sk, f, errstr, errstr_size);
}

static void push_status(struct fixture *f, int status, int retry_after_s)
{
    struct vg_http_behaviour b = {
        .action = VG_HTTP_ANSWER, .status = status, .retry_after_s = retry_after_s};
    vg_http_receiver_push(f->r, &b);
}

static void test_ok_request_shape(void **state)
{
    struct fixture *f = *state;
    char errstr[256];
    struct vg_http_request *req;

    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_http_receiver_count(f->r), 1);
    req = vg_http_receiver_request(f->r, 0);
    assert_non_null(req);
    assert_string_equal(req->method, "POST");
    assert_string_equal(req->path, HOOK_PATH);
    assert_int_equal(req->body_len, f->body_len);
    assert_memory_equal(req->body, f->body, f->body_len);
    assert_string_equal(vg_http_request_header(req, "content-type"), "application/json");
    assert_string_equal(vg_http_request_header(req, "user-agent"), "vigil/" VIGIL_VERSION);
    assert_string_equal(vg_http_request_header(req, "idempotency-key"), PAGE_ID);
    assert_string_equal(vg_http_request_header(req, "webhook-id"), PAGE_ID);
    assert_string_equal(vg_http_request_header(req, "authorization"), "Bearer abc123");
    assert_string_equal(vg_http_request_header(req, "x-team"), "data platform");
    assert_null(vg_http_request_header(req, "expect"));
    assert_null(vg_http_request_header(req, "transfer-encoding"));
    vg_http_request_free(req);
    assert_int_equal(vg_sinks_max_attempts(f->sk, "ops"), 3);
    assert_int_equal(vg_sinks_retry_after_ms(f->sk, "ops"), -1);
}

static void test_retriable_statuses(void **state)
{
    static const struct {
        int status;
        int retry_after_s;
    } cases[] = {{500, 0}, {502, 0}, {503, 0}, {504, 0}, {429, 7}, {408, 0}, {503, 2}};
    struct fixture *f = *state;
    char errstr[256];
    char want[64];

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        push_status(f, cases[i].status, cases[i].retry_after_s);
        vg_err_t err = deliver(f, errstr, sizeof(errstr));
        if (err != VG_ERR_BACKEND) {
            fail_msg("case %zu (HTTP %d): got %s, want BACKEND (%s)", i, cases[i].status,
                     vg_err_name(err), errstr);
        }
        snprintf(want, sizeof(want), "sink ops: HTTP %d", cases[i].status);
        if (strncmp(errstr, want, strlen(want)) != 0) {
            fail_msg("case %zu: errstr \"%s\", want it to start with \"%s\"", i, errstr, want);
        }
        int64_t ra = vg_sinks_retry_after_ms(f->sk, "ops");
        assert_int_equal(ra, cases[i].retry_after_s > 0 ? cases[i].retry_after_s * 1000 : -1);
    }
    assert_int_equal(vg_http_receiver_count(f->r), VG_ARRAY_LEN(cases));
}

static void test_rejected_statuses(void **state)
{
    static const int cases[] = {400, 401, 403, 404, 410, 422};
    struct fixture *f = *state;
    char errstr[256];
    char want[64];

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        push_status(f, cases[i], 0);
        vg_err_t err = deliver(f, errstr, sizeof(errstr));
        if (err != VG_ERR_REJECTED) {
            fail_msg("case %zu (HTTP %d): got %s, want REJECTED (%s)", i, cases[i],
                     vg_err_name(err), errstr);
        }
        snprintf(want, sizeof(want), "sink ops: HTTP %d", cases[i]);
        assert_string_equal(errstr, want);
    }
}

static void test_redirect_not_followed(void **state)
{
    static const int cases[] = {301, 302, 307, 308};
    struct fixture *f = *state;
    char errstr[256];

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        push_status(f, cases[i], 0);
        assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_ERR_REJECTED);
        assert_non_null(strstr(errstr, "redirect not followed"));
    }
    /* One more request: had a Location been followed, it would be recorded before this one. */
    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_http_receiver_count(f->r), VG_ARRAY_LEN(cases) + 1);
    for (size_t i = 0; i < VG_ARRAY_LEN(cases) + 1; i++) {
        struct vg_http_request *req = vg_http_receiver_request(f->r, i);
        assert_string_equal(req->path, HOOK_PATH);
        vg_http_request_free(req);
    }
}

static void test_hang_times_out(void **state)
{
    struct fixture *f = *state;
    struct vg_http_behaviour hang = {.action = VG_HTTP_HANG};
    char *url = vg_http_receiver_url(f->r, HOOK_PATH);
    struct vg_sinks *fast = new_sinks(url, 300);
    char errstr[256];
    int64_t t0;
    int64_t elapsed;
    vg_err_t err;

    vg_http_receiver_set_default(f->r, &hang);
    t0 = vg_mono_ms();
    err = deliver_to(fast, f, errstr, sizeof(errstr));
    elapsed = vg_mono_ms() - t0;
    if (err != VG_ERR_TIMEOUT) {
        fail_msg("got %s, want TIMEOUT (%s)", vg_err_name(err), errstr);
    }
    assert_true(vg_err_is_retriable(err));
    if (elapsed < 250 || elapsed > vg_test_timeout(5000)) {
        fail_msg("timed out after %lld ms, want about 300", (long long)elapsed);
    }
    /* The request did arrive: it was the answer that never came. */
    assert_int_equal(vg_http_receiver_count(f->r), 1);
    vg_sinks_destroy(fast);
    vg_free(url);
}

static void test_slow_answer_within_timeout(void **state)
{
    struct fixture *f = *state;
    struct vg_http_behaviour slow = {.action = VG_HTTP_ANSWER, .status = 202, .delay_ms = 100};
    char errstr[256];

    vg_http_receiver_push(f->r, &slow);
    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
}

static void test_close_without_answer(void **state)
{
    struct fixture *f = *state;
    /* As the default: libcurl re-sends once on a fresh connection when a reused one dies. */
    struct vg_http_behaviour close_it = {.action = VG_HTTP_CLOSE};
    char errstr[256];
    vg_err_t err;

    vg_http_receiver_set_default(f->r, &close_it);
    err = deliver(f, errstr, sizeof(errstr));
    if (err != VG_ERR_BACKEND) {
        fail_msg("got %s, want BACKEND (%s)", vg_err_name(err), errstr);
    }
    assert_true(vg_http_receiver_count(f->r) >= 1);
}

static void test_dead_port(void **state)
{
    struct fixture *f = *state;
    struct vg_http_receiver *gone = vg_http_receiver_start();
    char *url;
    struct vg_sinks *sk;
    char errstr[256];
    vg_err_t err;

    assert_non_null(gone);
    url = vg_http_receiver_url(gone, HOOK_PATH);
    vg_http_receiver_stop(gone); /* nothing listens on that port any more */
    sk = new_sinks(url, 2000);
    err = deliver_to(sk, f, errstr, sizeof(errstr));
    if (err != VG_ERR_BACKEND) {
        fail_msg("got %s, want BACKEND (%s)", vg_err_name(err), errstr);
    }
    assert_true(strlen(errstr) > strlen("sink ops: "));
    vg_sinks_destroy(sk);
    vg_free(url);
}

static void test_connection_reuse(void **state)
{
    struct fixture *f = *state;
    char errstr[256];
    struct vg_http_request *a;
    struct vg_http_request *b;

    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_http_receiver_count(f->r), 2);
    a = vg_http_receiver_request(f->r, 0);
    b = vg_http_receiver_request(f->r, 1);
    assert_int_equal(a->conn_id, b->conn_id);
    assert_int_equal(vg_http_receiver_connections(f->r), 1);
    vg_http_request_free(a);
    vg_http_request_free(b);
}

static void test_large_response_bounded(void **state)
{
    struct fixture *f = *state;
    size_t big = 200 * 1024;
    char *huge = vg_malloc(big + 1);
    char errstr[256];

    memset(huge, 'x', big);
    huge[big] = '\0';
    {
        struct vg_http_behaviour ok = {.action = VG_HTTP_ANSWER, .status = 200, .body = huge};
        struct vg_http_behaviour bad = {.action = VG_HTTP_ANSWER, .status = 500, .body = huge};
        vg_http_receiver_push(f->r, &ok);
        vg_http_receiver_push(f->r, &bad);
    }
    vg_free(huge);
    /* We stop reading after 64 KiB, and the status line still decides. */
    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_ERR_BACKEND);
    assert_string_equal(errstr, "sink ops: HTTP 500");
    /* And the sink still works afterwards. */
    assert_int_equal(deliver(f, errstr, sizeof(errstr)), VG_OK);
}

static void test_unknown_sink_and_bad_page_id(void **state)
{
    struct fixture *f = *state;
    char errstr[256];

    assert_int_equal(
        vg_sinks_deliver(f->sk, "nope", PAGE_ID, f->body, f->body_len, errstr, sizeof(errstr)),
        VG_ERR_INVALID);
    /* A page id is a header value: a line break would inject headers. */
    assert_int_equal(vg_sinks_deliver(f->sk, "ops", "abc\r\nX-Evil: 1", f->body, f->body_len,
                                      errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_int_equal(vg_http_receiver_count(f->r), 0);
}

/* A raw client socket to the receiver, with a bounded receive timeout. */
static int raw_connect(struct vg_http_receiver *r)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = vg_test_timeout(5000) / 1000};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_port = htons((uint16_t)vg_http_receiver_port(r));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

static bool three_connections(void *arg)
{
    return vg_http_receiver_connections(arg) >= 3;
}

/* The receiver itself: chunked bodies get a polite 501, and stop() never waits for clients. */
static void test_receiver_chunked_and_stop(void **state)
{
    struct fixture *f = *state;
    struct vg_http_behaviour hang = {.action = VG_HTTP_HANG};
    char buf[256] = "";
    int chunked = raw_connect(f->r);
    int hanging;
    int idle;
    ssize_t n;
    int64_t t0;

    raw_send(chunked, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\n{}\r\n0\r\n\r\n");
    n = recv(chunked, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    assert_int_equal(strncmp(buf, "HTTP/1.1 501 ", 13), 0);
    close(chunked);

    vg_http_receiver_push(f->r, &hang);
    hanging = raw_connect(f->r);
    raw_send(hanging, "POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    assert_true(vg_http_receiver_wait(f->r, 1, 5000));
    idle = raw_connect(f->r); /* connected, never sends a byte */
    /* Accepted, so a connection thread waits on it (not just queued in the backlog). */
    assert_true(vg_test_wait_for(three_connections, f->r, 5000));

    t0 = vg_mono_ms();
    vg_http_receiver_stop(f->r);
    f->r = NULL;
    if (vg_mono_ms() - t0 > vg_test_timeout(2000)) {
        fail_msg("stop took %lld ms with a hanging and an idle client",
                 (long long)(vg_mono_ms() - t0));
    }
    /* Both were closed without an answer. */
    n = recv(hanging, buf, sizeof(buf), 0);
    if (n != 0) {
        fail_msg("recv on the hanging client: %zd (%s)", n, strerror(errno));
    }
    n = recv(idle, buf, sizeof(buf), 0);
    if (n != 0) {
        fail_msg("recv on the idle client: %zd (%s)", n, strerror(errno));
    }
    close(hanging);
    close(idle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ok_request_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retriable_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_answer_within_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_without_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_response_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_sink_and_bad_page_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_chunked_and_stop, setup, teardown),
    };

    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
