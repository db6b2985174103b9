/*
 * The test HTTP/1.1 receiver: what is said on a connection. The listening
 * socket on 127.0.0.1:0, the accepting thread, one thread per connection and
 * the wake-up pipe that ends every wait (idle keep-alive, delay, HANG) at
 * stop are listener.h's.
 * Deliberately small: Content-Length bodies only, no TLS, no pipelining tricks.
 */
#include "http_receiver.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_BODY_BYTES (4 * 1024 * 1024)

struct script_item {
    enum vg_http_action action;
    int status;
    int retry_after_s;
    int delay_ms;
    char *body;     /* NULL: empty */
    char *location; /* NULL: default */
};

/* One connection, for the time it is served. */
struct conn {
    struct vg_http_receiver *r;
    int fd;
    size_t id;
};

struct vg_http_receiver {
    struct vg_test_listener ln;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* a request was recorded */
    struct vg_http_request *reqs;
    size_t n_reqs, cap_reqs;
    struct script_item *queue;
    size_t q_head, q_len, q_cap;
    struct script_item def;
};

/* A growable read buffer of one connection. */
struct rbuf {
    char *data;
    size_t len, cap;
};

static void item_from_behaviour(struct script_item *it, const struct vg_http_behaviour *b)
{
    it->action = b->action;
    it->status = b->status;
    it->retry_after_s = b->retry_after_s;
    it->delay_ms = b->delay_ms;
    it->body = b->body ? vg_strdup(b->body) : NULL;
    it->location = b->location ? vg_strdup(b->location) : NULL;
}

static void item_fini(struct script_item *it)
{
    vg_free(it->body);
    vg_free(it->location);
    memset(it, 0, sizeof(*it));
}

static void item_copy(struct script_item *dst, const struct script_item *src)
{
    *dst = *src;
    dst->body = src->body ? vg_strdup(src->body) : NULL;
    dst->location = src->location ? vg_strdup(src->location) : NULL;
}

static void request_fini(struct vg_http_request *req)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        vg_free(req->header_names[i]);
        vg_free(req->header_values[i]);
    }
    vg_free(req->header_names);
    vg_free(req->header_values);
    vg_free(req->method);
    vg_free(req->path);
    vg_free(req->body);
    memset(req, 0, sizeof(*req));
}

/* See vg_test_listener_wait: 1 ready, 0 timeout, -1 stopped. */
static int wait_fd(struct vg_http_receiver *r, int fd, short events, int timeout_ms)
{
    return vg_test_listener_wait(&r->ln, fd, events, timeout_ms);
}

/* Write all of `s`; false when the peer went away or we are stopping. */
static bool send_all(struct vg_http_receiver *r, int fd, const char *s, size_t n)
{
    while (n > 0) {
        if (wait_fd(r, fd, POLLOUT, -1) != 1) {
            return false;
        }
        /* MSG_DONTWAIT: never block outside poll, so stop() cannot hang on a full socket. */
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read more bytes into `b`. 1: got some, 0: EOF or error, -1: stopping. */
static int read_more(struct vg_http_receiver *r, int fd, struct rbuf *b)
{
    if (b->cap - b->len < 16 * 1024) {
        b->cap = b->cap ? b->cap * 2 : 32 * 1024;
        b->data = vg_realloc(b->data, b->cap + 1);
    }
    for (;;) {
        int rc = wait_fd(r, fd, POLLIN, -1);
        if (rc != 1) {
            return -1;
        }
        ssize_t n = recv(fd, b->data + b->len, b->cap - b->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        b->len += (size_t)n;
        b->data[b->len] = '\0';
        return 1;
    }
}

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } phrases[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {408, "Request Timeout"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < VG_ARRAY_LEN(phrases); i++) {
        if (phrases[i].status == status) {
            return phrases[i].reason;
        }
    }
    return "Status";
}

static bool send_response(struct vg_http_receiver *r, int fd, const struct script_item *it,
                          bool close_after)
{
    struct vg_buf out = {0};
    const char *body = it->body ? it->body : "";
    size_t body_len = strlen(body);
    bool ok;

    vg_buf_printf(&out, "HTTP/1.1 %d %s\r\n", it->status, reason_phrase(it->status));
    vg_buf_printf(&out, "Content-Length: %zu\r\nContent-Type: text/plain\r\n", body_len);
    if (it->retry_after_s > 0) {
        vg_buf_printf(&out, "Retry-After: %d\r\n", it->retry_after_s);
    }
    if (it->location) {
        vg_buf_printf(&out, "Location: %s\r\n", it->location);
    } else if (it->status >= 300 && it->status < 400) {
        vg_buf_puts(&out, "Location: /redirected\r\n");
    }
    if (close_after) {
        vg_buf_puts(&out, "Connection: close\r\n");
    }
    vg_buf_puts(&out, "\r\n");
    vg_buf_append(&out, body, body_len);
    ok = send_all(r, fd, out.data, out.len);
    vg_buf_fini(&out);
    return ok;
}

static bool send_simple(struct vg_http_receiver *r, int fd, int status)
{
    struct script_item it = {.action = VG_HTTP_ANSWER, .status = status};
    return send_response(r, fd, &it, true);
}

static char *find_crlfcrlf(const char *s, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n') {
            return (char *)s + i;
        }
    }
    return NULL;
}

static void header_add(struct vg_http_request *req, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    char *n = vg_strndup(name, name_len);

    for (char *p = n; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
    req->header_names = vg_realloc(req->header_names, (req->n_headers + 1) * sizeof(char *));
    req->header_values = vg_realloc(req->header_values, (req->n_headers + 1) * sizeof(char *));
    req->header_names[req->n_headers] = n;
    req->header_values[req->n_headers] = vg_strndup(value, value_len);
    req->n_headers++;
}

/* Parse the request line and headers in [head, head+len). False when malformed. */
static bool parse_head(struct vg_http_request *req, const char *head, size_t len, bool *http10)
{
    const char *end = head + len;
    const char *eol = head;

    while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n')) {
        eol++;
    }
    if (eol + 1 >= end) {
        return false;
    }
    const char *sp1 = memchr(head, ' ', (size_t)(eol - head));
    if (!sp1) {
        return false;
    }
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (!sp2 || sp1 == head || sp2 == sp1 + 1) {
        return false;
    }
    if ((size_t)(eol - sp2 - 1) < 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        return false;
    }
    *http10 = sp2[8] == '0';
    req->method = vg_strndup(head, (size_t)(sp1 - head));
    req->path = vg_strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));

    const char *line = eol + 2;
    while (line < end) {
        const char *le = line;
        while (le + 1 < end && !(le[0] == '\r' && le[1] == '\n')) {
            le++;
        }
        if (le + 1 >= end) {
            le = end;
        }
        if (le == line) {
            break;
        }
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line) {
            return false;
        }
        const char *v = colon + 1;
        const char *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t')) {
            v++;
        }
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        header_add(req, line, (size_t)(colon - line), v, (size_t)(ve - v));
        line = le + 2;
    }
    return true;
}

static void record(struct vg_http_receiver *r, struct vg_http_request *req,
                   struct script_item *behaviour)
{
    pthread_mutex_lock(&r->mu);
    if (r->q_len > 0) {
        *behaviour = r->queue[r->q_head];
        r->q_head = (r->q_head + 1) % r->q_cap;
        r->q_len--;
    } else {
        item_copy(behaviour, &r->def);
    }
    req->at_mono_ms = vg_mono_ms();
    req->answer_status = behaviour->action == VG_HTTP_ANSWER ? behaviour->status : 0;
    if (r->n_reqs == r->cap_reqs) {
        r->cap_reqs = r->cap_reqs ? r->cap_reqs * 2 : 16;
        r->reqs = vg_realloc(r->reqs, r->cap_reqs * sizeof(*r->reqs));
    }
    r->reqs[r->n_reqs++] = *req;
    memset(req, 0, sizeof(*req));
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

/* Serve requests on one connection until EOF, error, CLOSE, HANG or stop. */
static void serve(struct conn *c)
{
    struct vg_http_receiver *r = c->r;
    struct rbuf b = {0};

    for (;;) {
        char *hend;
        while (!(hend = find_crlfcrlf(b.data ? b.data : "", b.len))) {
            if (b.len > MAX_HEADER_BYTES) {
                send_simple(r, c->fd, 431);
                goto out;
            }
            if (read_more(r, c->fd, &b) != 1) {
                goto out;
            }
        }
        size_t head_len = (size_t)(hend - b.data) + 4;
        struct vg_http_request req = {.conn_id = c->id};
        bool http10 = false;
        if (!parse_head(&req, b.data, head_len - 2, &http10)) {
            request_fini(&req);
            send_simple(r, c->fd, 400);
            goto out;
        }
        const char *te = vg_http_request_header(&req, "transfer-encoding");
        if (te && strcasecmp(te, "identity") != 0) {
            /* Politely: libcurl never chunks a POSTFIELDS body, so nothing of ours needs it. */
            request_fini(&req);
            send_simple(r, c->fd, 501);
            goto out;
        }
        size_t body_len = 0;
        const char *cl = vg_http_request_header(&req, "content-length");
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || *end || cl[0] == '-') {
                request_fini(&req);
                send_simple(r, c->fd, 400);
                goto out;
            }
            if (v > MAX_BODY_BYTES) {
                request_fini(&req);
                send_simple(r, c->fd, 413);
                goto out;
            }
            body_len = (size_t)v;
        }
        const char *expect = vg_http_request_header(&req, "expect");
        if (expect && strcasecmp(expect, "100-continue") == 0 && b.len < head_len + body_len) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (!send_all(r, c->fd, cont, sizeof(cont) - 1)) {
                request_fini(&req);
                goto out;
            }
        }
        while (b.len < head_len + body_len) {
            if (read_more(r, c->fd, &b) != 1) {
                request_fini(&req);
                goto out;
            }
        }
        req.body = vg_strndup(b.data + head_len, body_len);
        req.body_len = body_len;

        const char *conn_hdr = vg_http_request_header(&req, "connection");
        bool close_after = http10 ? !(conn_hdr && strcasecmp(conn_hdr, "keep-alive") == 0)
                                  : (conn_hdr && strcasecmp(conn_hdr, "close") == 0);

        memmove(b.data, b.data + head_len + body_len, b.len - head_len - body_len);
        b.len -= head_len + body_len;
        b.data[b.len] = '\0';

        struct script_item it;
        record(r, &req, &it);

        if (it.delay_ms > 0 && wait_fd(r, -1, 0, it.delay_ms) != 0) {
            item_fini(&it);
            goto out;
        }
        if (it.action == VG_HTTP_CLOSE) {
            item_fini(&it);
            goto out;
        }
        if (it.action == VG_HTTP_HANG) {
            /* Never answer; leave when the client gives up (EOF) or at stop. */
            char scratch[4096];
            item_fini(&it);
            for (;;) {
                if (wait_fd(r, c->fd, POLLIN, -1) != 1) {
                    goto out;
                }
                ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (n == 0 ||
                    (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    goto out;
                }
            }
        }
        bool ok = send_response(r, c->fd, &it, close_after);
        item_fini(&it);
        if (!ok || close_after) {
            goto out;
        }
    }
out:
    vg_free(b.data);
}

static void serve_conn(void *server, int fd, size_t id)
{
    struct conn c = {.r = server, .fd = fd, .id = id};

    serve(&c);
}

struct vg_http_receiver *vg_http_receiver_start(void)
{
    struct vg_http_receiver *r = vg_calloc(1, sizeof(*r));
    pthread_condattr_t ca;

    r->def.action = VG_HTTP_ANSWER;
    r->def.status = 200;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!vg_test_listener_start(&r->ln, serve_conn, r)) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->mu);
        vg_free(r);
        return NULL;
    }
    return r;
}

void vg_http_receiver_stop(struct vg_http_receiver *r)
{
    if (!r) {
        return;
    }
    vg_test_listener_stop(&r->ln);
    for (size_t i = 0; i < r->n_reqs; i++) {
        request_fini(&r->reqs[i]);
    }
    vg_free(r->reqs);
    for (size_t i = 0; i < r->q_len; i++) {
        item_fini(&r->queue[(r->q_head + i) % r->q_cap]);
    }
    vg_free(r->queue);
    item_fini(&r->def);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    vg_free(r);
}

int vg_http_receiver_port(const struct vg_http_receiver *r)
{
    return r->ln.port;
}

char *vg_http_receiver_url(const struct vg_http_receiver *r, const char *path)
{
    return vg_asprintf("http://127.0.0.1:%d%s", r->ln.port, path ? path : "");
}

void vg_http_receiver_set_default(struct vg_http_receiver *r, const struct vg_http_behaviour *b)
{
    struct script_item it;

    item_from_behaviour(&it, b);
    pthread_mutex_lock(&r->mu);
    item_fini(&r->def);
    r->def = it;
    pthread_mutex_unlock(&r->mu);
}

void vg_http_receiver_push(struct vg_http_receiver *r, const struct vg_http_behaviour *b)
{
    struct script_item it;

    item_from_behaviour(&it, b);
    pthread_mutex_lock(&r->mu);
    if (r->q_len == r->q_cap) {
        size_t cap = r->q_cap ? r->q_cap * 2 : 8;
        struct script_item *q = vg_calloc(cap, sizeof(*q));
        for (size_t i = 0; i < r->q_len; i++) {
            q[i] = r->queue[(r->q_head + i) % r->q_cap];
        }
        vg_free(r->queue);
        r->queue = q;
        r->q_cap = cap;
        r->q_head = 0;
    }
    r->queue[(r->q_head + r->q_len) % r->q_cap] = it;
    r->q_len++;
    pthread_mutex_unlock(&r->mu);
}

size_t vg_http_receiver_count(struct vg_http_receiver *r)
{
    size_t n;

    pthread_mutex_lock(&r->mu);
    n = r->n_reqs;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t vg_http_receiver_connections(struct vg_http_receiver *r)
{
    return vg_test_listener_connections(&r->ln);
}

bool vg_http_receiver_wait(struct vg_http_receiver *r, size_t n, int timeout_ms)
{
    struct timespec deadline;
    bool ok;
    int scaled = vg_test_timeout(timeout_ms);

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += scaled / 1000;
    deadline.tv_nsec += (long)(scaled % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (r->n_reqs < n) {
        if (pthread_cond_timedwait(&r->cond, &r->mu, &deadline) != 0) {
            break;
        }
    }
    ok = r->n_reqs >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

struct vg_http_request *vg_http_receiver_request(struct vg_http_receiver *r, size_t i)
{
    struct vg_http_request *out = NULL;

    pthread_mutex_lock(&r->mu);
    if (i < r->n_reqs) {
        const struct vg_http_request *src = &r->reqs[i];
        out = vg_calloc(1, sizeof(*out));
        out->method = vg_strdup(src->method);
        out->path = vg_strdup(src->path);
        out->n_headers = src->n_headers;
        out->header_names = vg_calloc(src->n_headers + 1, sizeof(char *));
        out->header_values = vg_calloc(src->n_headers + 1, sizeof(char *));
        for (size_t k = 0; k < src->n_headers; k++) {
            out->header_names[k] = vg_strdup(src->header_names[k]);
            out->header_values[k] = vg_strdup(src->header_values[k]);
        }
        out->body = vg_malloc(src->body_len + 1);
        memcpy(out->body, src->body, src->body_len);
        out->body[src->body_len] = '\0';
        out->body_len = src->body_len;
        out->conn_id = src->conn_id;
        out->at_mono_ms = src->at_mono_ms;
        out->answer_status = src->answer_status;
    }
    pthread_mutex_unlock(&r->mu);
    return out;
}

void vg_http_request_free(struct vg_http_request *req)
{
    if (!req) {
        return;
    }
    request_fini(req);
    vg_free(req);
}

const char *vg_http_request_header(const struct vg_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->header_names[i], name) == 0) {
            return req->header_values[i];
        }
    }
    return NULL;
}
