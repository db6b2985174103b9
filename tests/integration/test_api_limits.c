/*
 * Slow and greedy HTTP clients against the real `vigil run`: connections
 * that trickle a byte at a time and idle sockets, from one address and from
 * several, must not keep /healthz and /metrics from answering; a request
 * trickled past http.request_timeout_ms is cut (408) whether it trickles its
 * head or its body; each refusal is counted in vigil_http_rejected_total and
 * logged with its reason and the client address.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "env.h"
#include "support.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define N_TRICKLE_IPS 6
#define TRICKLE_PER_IP 16 /* 96 trickling connections in all */
#define N_IDLE 20

/* A connected socket to vigil's API from source address `src` ("127.0.0.2"; NULL: any). */
static int dial(struct vg_test_env *e, const char *src)
{
    int fd = vg_test_env_dial(e, src);

    assert_true(fd >= 0);
    return fd;
}

/* ---- many slow clients ------------------------------------------------------------- */

static void test_slow_clients_leave_room_for_health(void **state)
{
    static const char head[] = "GET /api/v1/resources HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    struct vg_test_env e;
    int trickle[N_TRICKLE_IPS * TRICKLE_PER_IP];
    int idle[N_IDLE];
    int64_t t0;
    int64_t took_ms;
    struct vg_test_http_reply r;
    struct vg_test_env_opts o = {0};
    (void)state;

    vg_test_env_opts_secured(&o);
    assert_true(vg_test_env_up(&e, "api-limits", &o));
    /* Every trickling connection has sent part of a head, and more keeps coming. */
    for (int i = 0; i < N_TRICKLE_IPS * TRICKLE_PER_IP; i++) {
        char src[32];
        snprintf(src, sizeof(src), "127.0.0.%d", 1 + i / TRICKLE_PER_IP);
        trickle[i] = dial(&e, src);
        (void)!send(trickle[i], head, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    for (int i = 0; i < N_IDLE; i++) {
        idle[i] = dial(&e, "127.0.0.1");
    }
    for (size_t k = 1; k < 4; k++) {
        for (int i = 0; i < N_TRICKLE_IPS * TRICKLE_PER_IP; i++) {
            (void)!send(trickle[i], head + k, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    }

    /*
     * Health and metrics from the busiest address still answer, well before
     * the slow clients' own deadline (10 s) would have made room.
     */
    t0 = vg_mono_ms();
    r = vg_test_env_http(&e, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    vg_test_http_reply_free(&r);
    r = vg_test_env_http(&e, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "vigil_http_rejected_total{reason=\"per_ip_limit\"}"));
    vg_test_http_reply_free(&r);
    r = vg_test_env_http(&e, "GET", "/readyz", NULL, NULL);
    assert_int_equal(r.status, 200);
    vg_test_http_reply_free(&r);
    took_ms = vg_mono_ms() - t0;
    if (took_ms >= 10000) {
        vg_test_env_dump_logs(&e);
    }
    assert_true(took_ms < 10000);

    /* The limits were hit, counted and logged with the client's address. */
    assert_true(vg_test_env_metric(&e, "vigil_http_rejected_total{reason=\"per_ip_limit\"}") > 0);
    assert_true(
        vg_test_env_metric(&e, "vigil_http_rejected_total{reason=\"too_many_connections\"}") > 0);
    if (!vg_test_env_log_has(&e, "refused reason=per_ip_limit client=127.0.0.1") ||
        !vg_test_env_log_has(&e, "refused reason=too_many_connections client=127.0.0.")) {
        vg_test_env_dump_logs(&e);
        fail_msg("no WARN line names the limit and the client");
    }

    for (int i = 0; i < N_TRICKLE_IPS * TRICKLE_PER_IP; i++) {
        close(trickle[i]);
    }
    for (int i = 0; i < N_IDLE; i++) {
        close(idle[i]);
    }
    /* Once they are gone, ordinary requests are served again. */
    r = vg_test_env_http(&e, "GET", "/api/v1/resources", NULL, NULL);
    assert_int_equal(r.status, 200);
    vg_test_http_reply_free(&r);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

/* ---- the whole-request deadline ------------------------------------------------------- */

/*
 * Send `req` one byte every 100 ms until vigil answers or closes (true) or
 * everything was sent and nothing came back within 3 s more (false). The
 * answer, if any, lands in `got`.
 */
static bool trickle_until_cut(int fd, const char *req, struct vg_buf *got)
{
    size_t len = strlen(req);
    int64_t quiet_until = 0;

    for (size_t i = 0;; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char chunk[4096];
        if (i < len && send(fd, req + i, 1, MSG_NOSIGNAL) != 1) {
            break; /* cut while sending */
        }
        if (i == len) {
            quiet_until = vg_mono_ms() + vg_test_timeout(3000);
        }
        if (poll(&p, 1, 100) > 0) {
            ssize_t n;
            while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
                vg_buf_append(got, chunk, (size_t)n);
            }
            return true; /* an answer, then EOF or a reset */
        }
        if (i >= len && vg_mono_ms() > quiet_until) {
            return false;
        }
    }
    return true;
}

/* If vigil managed to answer before closing, the answer is a JSON 408. */
static void expect_408_if_any(const struct vg_buf *got)
{
    const char *body;
    cJSON *j;

    if (!got->data) {
        return;
    }
    assert_true(!strncmp(got->data, "HTTP/1.1 408 ", 13));
    body = strstr(got->data, "\r\n\r\n");
    assert_non_null(body);
    assert_true(vg_utf8_valid(body + 4, strlen(body + 4)));
    j = cJSON_Parse(body + 4);
    assert_non_null(j);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
}

static void test_trickled_request_is_cut(void **state)
{
    /* At 10 bytes a second, each takes about 8 s: far beyond the 1.5 s allowed. */
    static const char slow_head[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "X-Padding: abcdefghijklmnopqrstuvwxyz\r\n\r\n";
    static const char body_head[] = "POST /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "Authorization: Bearer " VG_TEST_ENV_TOKEN "\r\n"
                                    "Content-Type: application/json\r\nContent-Length: 80\r\n\r\n";
    static const char slow_body[] = "{\"matchers\": [\"monitor=x\"], \"duration\": \"1h\", "
                                    "\"comment\": \"trickled..........\"}  ";
    struct vg_test_env e;
    struct vg_test_env_opts o = {0};
    struct vg_buf got = {0};
    struct vg_test_http_reply r;
    int fd;
    (void)state;

    assert_int_equal(strlen(slow_body), 80);
    vg_test_env_opts_secured(&o);
    o.http_extra = "  request_timeout_ms: 1500\n";
    assert_true(vg_test_env_up(&e, "api-deadline", &o));

    /* A head trickled byte by byte: each byte used to reset the idle timer. */
    fd = dial(&e, NULL);
    assert_true(trickle_until_cut(fd, slow_head, &got));
    expect_408_if_any(&got);
    close(fd);
    vg_buf_fini(&got);

    /* A whole head at once, then a trickled body. */
    fd = dial(&e, NULL);
    assert_int_equal(send(fd, body_head, strlen(body_head), MSG_NOSIGNAL), strlen(body_head));
    assert_true(trickle_until_cut(fd, slow_body, &got));
    expect_408_if_any(&got);
    close(fd);
    vg_buf_fini(&got);

    /* No silence was created from the cut body; the server still serves. */
    r = vg_test_env_http(&e, "GET", "/api/v1/silences", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"count\": 0"));
    vg_test_http_reply_free(&r);
    assert_true(vg_test_env_metric(&e, "vigil_http_rejected_total{reason=\"timeout\"}") >= 2);
    if (!vg_test_env_log_has(&e, "refused reason=timeout client=127.0.0.1")) {
        vg_test_env_dump_logs(&e);
        fail_msg("no WARN line for the deadline");
    }
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_clients_leave_room_for_health),
        cmocka_unit_test(test_trickled_request_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
