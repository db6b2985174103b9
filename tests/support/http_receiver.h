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

struct vg_http_request {
    char *method;
    char *path; /* includes the query string */
    char **header_names; /* lower-cased */
    char **header_values;
    size_t n_headers;
    char *body; /* NUL-terminated */
    size_t body_len;
};

enum vg_http_action { VG_HTTP_ANSWER = 0, VG_HTTP_HANG, VG_HTTP_CLOSE };

struct vg_http_behaviour {
    enum vg_http_action action;
    int status;           /* for ANSWER */
    int retry_after_s;    /* >0: add Retry-After */
    int delay_ms;         /* before answering */
    const char *body;     /* response body, NULL: empty */
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

#endif
