/*
 * A real HTTP/1.1 receiver on 127.0.0.1:<ephemeral port> for tests. It
 * records every request (method, path, headers, body) and answers
 * according to a script: a fixed status, or a queue of per-request
 * behaviours (status, Retry-After, delay, close without answering).
 */
#ifndef VIGIL_TEST_HTTP_RECEIVER_H
#define VIGIL_TEST_HTTP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_http_request {
    char *method;
    char *path;          /* includes the query string */
    char **header_names; /* lower-cased */
    char **header_values;
    size_t n_headers;
    char *body; /* NUL-terminated */
    size_t body_len;
    size_t conn_id; /* which TCP connection carried it: 1, 2, ... in accept order */
    /* When it was recorded (vg_mono_ms) and what it was answered. */
    int64_t at_mono_ms;
    int answer_status; /* the status sent; 0 for HANG or CLOSE */
};

enum vg_http_action { VG_HTTP_ANSWER = 0, VG_HTTP_HANG, VG_HTTP_CLOSE };

struct vg_http_behaviour {
    enum vg_http_action action;
    int status;           /* for ANSWER */
    int retry_after_s;    /* >0: add Retry-After */
    int delay_ms;         /* before answering */
    const char *body;     /* response body, NULL: empty */
    const char *location; /* Location header; NULL: "/redirected" for a 3xx, none otherwise */
};

struct vg_http_receiver;

/* Start on 127.0.0.1:0 with a default answer of 200. NULL on failure. */
struct vg_http_receiver *vg_http_receiver_start(void);
void vg_http_receiver_stop(struct vg_http_receiver *r);
int vg_http_receiver_port(const struct vg_http_receiver *r);
/* "http://127.0.0.1:<port><path>" into a new heap string. */
char *vg_http_receiver_url(const struct vg_http_receiver *r, const char *path);
/* The answer for requests when the script queue is empty. */
void vg_http_receiver_set_default(struct vg_http_receiver *r, const struct vg_http_behaviour *b);
/* Queue behaviours for the next requests, in order. */
void vg_http_receiver_push(struct vg_http_receiver *r, const struct vg_http_behaviour *b);
/* Requests recorded so far (thread-safe). */
size_t vg_http_receiver_count(struct vg_http_receiver *r);
/* A deep copy of request i; free with vg_http_request_free. NULL if out of range. */
struct vg_http_request *vg_http_receiver_request(struct vg_http_receiver *r, size_t i);
void vg_http_request_free(struct vg_http_request *req);
/* Header value (case-insensitive name) or NULL. */
const char *vg_http_request_header(const struct vg_http_request *req, const char *name);

/*
 * Notes on the implementation (tests/support/http_receiver.c): one thread
 * accepts, one thread per connection; keep-alive is honoured (a client may
 * send many requests on one connection); bodies need Content-Length
 * (chunked gets 501), at most 4 MiB (413). `Expect: 100-continue` is
 * answered. A request is recorded (and takes the next behaviour) as soon
 * as its body is complete, before any delay, HANG or CLOSE. The pushed
 * behaviour's strings are copied. vg_http_receiver_stop returns promptly
 * even with HANGing requests or idle keep-alive clients.
 */

/* TCP connections accepted so far. */
size_t vg_http_receiver_connections(struct vg_http_receiver *r);
/*
 * Wait until at least `n` requests are recorded, bounded by
 * vg_test_timeout(timeout_ms). Returns false on timeout.
 */
bool vg_http_receiver_wait(struct vg_http_receiver *r, size_t n, int timeout_ms);

#endif
