/*
 * The HTTP server (libmicrohttpd, one thread per connection, bounded):
 * listening, the checks every request passes (Host, the request target,
 * bodies: bounded, valid UTF-8, no control characters), routing, the
 * bearer-token check of write endpoints, security headers, the secret
 * scrubber every response passes through, the count and the log line of
 * each refusal, the pool of Redis connections, and /healthz /readyz
 * /metrics. Connections reach libmicrohttpd through the acceptor in
 * api_gate.c; the /api/v1 handlers are in api_v1.c, the console in
 * api_console.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

/* What the console's pages may load: only our own scripts and styles, nothing inline. */
#define CSP_HTML                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#define CSP_OTHER "default-src 'none'; frame-ancestors 'none'"

/* Per-request state (MHD's con_cls), made by on_uri when the request line is in. */
struct api_req {
    char *uri; /* as sent: before libmicrohttpd decodes it */
    bool started;
    struct vg_buf body;
    bool too_large;
};

static const char *const reason_names[API_REASON_COUNT] = {
    [API_REASON_NONE] = "none",
    [API_REASON_HOST] = "host",
    [API_REASON_TOO_MANY] = "too_many_connections",
    [API_REASON_PER_IP] = "per_ip_limit",
    [API_REASON_TIMEOUT] = "timeout",
    [API_REASON_TOO_LARGE] = "too_large",
    [API_REASON_BAD_REQUEST] = "bad_request",
    [API_REASON_UNAUTHORIZED] = "unauthorized",
};

/* ---- small helpers ------------------------------------------------------ */

const char *api_arg(const struct api_ctx *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && v[0] ? v : NULL;
}

const char *api_header(const struct api_ctx *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80             ? 1
                 : (p[0] & 0xe0) == 0xc0 ? 2
                 : (p[0] & 0xf0) == 0xe0 ? 3
                 : (p[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    return len && len <= n && vg_utf8_valid((const char *)p, len) ? len : 0;
}

/*
 * Make `b` valid UTF-8: each byte that starts no valid sequence becomes
 * U+FFFD. Echoed input (a path, a parameter) may be anything; the JSON we
 * answer with must still parse.
 */
static void utf8_repair(struct vg_buf *b)
{
    struct vg_buf out = {0};
    const unsigned char *p = (const unsigned char *)b->data;

    if (!b->data || vg_utf8_valid(b->data, b->len)) {
        return;
    }
    for (size_t i = 0; i < b->len;) {
        size_t k = utf8_seq(p + i, b->len - i);
        if (k) {
            vg_buf_append(&out, (const char *)p + i, k);
            i += k;
        } else {
            vg_buf_puts(&out, "\xef\xbf\xbd");
            i++;
        }
    }
    vg_buf_fini(b);
    *b = out;
}

void api_error(struct api_resp *r, unsigned status, const char *fmt, ...)
{
    struct vg_buf msg = {0};
    va_list ap;

    va_start(ap, fmt);
    vg_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    utf8_repair(&msg);
    r->status = status;
    r->ctype = NULL;
    r->html = false;
    vg_buf_reset(&r->body);
    vg_buf_puts(&r->body, "{\"error\": ");
    vg_json_append_string(&r->body, msg.data ? msg.data : "");
    vg_buf_puts(&r->body, "}\n");
    vg_buf_fini(&msg);
}

const char *api_reason_name(enum api_reason reason)
{
    return reason > API_REASON_NONE && reason < API_REASON_COUNT ? reason_names[reason] : "none";
}

void api_reject(struct vg_api *api, enum api_reason reason, const char *client, const char *fmt,
                ...)
{
    struct api_warn *w = &api->warn[reason];
    int64_t now = vg_mono_ms();
    uint64_t suppressed = 0;
    struct vg_buf msg = {0};
    bool say;
    va_list ap;

    VG_ASSERT(reason > API_REASON_NONE && reason < API_REASON_COUNT);
    vg_metrics_add(api->metrics, VG_M_HTTP_REJECTED, (const char *const[]){reason_names[reason]},
                   1);
    pthread_mutex_lock(&api->warn_lock);
    say = w->last_ms == 0 || now - w->last_ms >= 1000;
    if (say) {
        suppressed = w->suppressed;
        w->suppressed = 0;
        w->last_ms = now;
    } else {
        w->suppressed++;
    }
    pthread_mutex_unlock(&api->warn_lock);
    if (!say) {
        return;
    }
    va_start(ap, fmt);
    vg_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    /* What a client sent stays printable in our log. */
    for (size_t i = 0; i < msg.len; i++) {
        unsigned char ch = (unsigned char)msg.data[i];
        if (ch < 0x20 || ch >= 0x7f) {
            msg.data[i] = '?';
        }
    }
    if (msg.len > 300) {
        msg.data[300] = '\0';
    }
    if (suppressed) {
        VG_LOG_WARN("api", "refused reason=%s client=%s: %s (%" PRIu64 " more since the last line)",
                    reason_names[reason], client, msg.data, suppressed);
    } else {
        VG_LOG_WARN("api", "refused reason=%s client=%s: %s", reason_names[reason], client,
                    msg.data);
    }
    vg_buf_fini(&msg);
}

/* Compare without an early exit, so the time taken says nothing about the token. */
static bool same_secret(const char *a, size_t la, const char *b, size_t lb)
{
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++) {
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    }
    return diff == 0 && lb > 0;
}

bool api_authorized(const struct api_ctx *c, struct api_resp *r)
{
    const char *h;
    const char *tok;

    if (!c->api->token) {
        api_error(r, 403, "write endpoints are disabled: no http.token is configured");
        return false;
    }
    h = api_header(c, "Authorization");
    if (!h || !h[0]) {
        api_error(r, 401, "this endpoint needs Authorization: Bearer <http.token>");
        r->www_auth = true;
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        api_error(r, 401, "expected Authorization: Bearer <http.token>");
        r->www_auth = true;
        return false;
    }
    tok = h + 7;
    while (*tok == ' ') {
        tok++;
    }
    if (!same_secret(tok, strlen(tok), c->api->token, strlen(c->api->token))) {
        api_error(r, 403, "wrong token");
        return false;
    }
    return true;
}

/* ---- the Redis pool ------------------------------------------------------ */

static void pool_init(struct api_pool *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
}

static void pool_fini(struct api_pool *p)
{
    for (size_t i = 0; i < p->n_idle; i++) {
        vg_state_destroy(p->idle[i]);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

static void count_redis(struct vg_api *api, const char *family)
{
    vg_metrics_add(api->metrics, family, (const char *const[]){"api"}, 1);
}

bool api_state_get(struct vg_api *api, struct vg_state **st, struct api_resp *r)
{
    struct api_pool *p = &api->pool;
    struct timespec deadline;
    char errstr[512];
    bool reconnect;
    vg_err_t err;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += API_POOL_WAIT_MS / 1000;
    pthread_mutex_lock(&p->lock);
    while (p->n_idle == 0 && p->n_open >= API_POOL_MAX) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            api_error(r, 503, "busy: every Redis connection of the server is in use");
            return false;
        }
    }
    if (p->n_idle > 0) {
        *st = p->idle[--p->n_idle];
        pthread_mutex_unlock(&p->lock);
        return true;
    }
    p->n_open++;
    pthread_mutex_unlock(&p->lock);

    /* Connect outside the lock: a slow Redis must not stall the other threads. */
    err = vg_state_connect_config(st, api->redis_url, api->prefix, api->redis, errstr,
                                  sizeof(errstr));
    pthread_mutex_lock(&p->lock);
    if (err) {
        p->n_open--;
        p->had_error = true;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        count_redis(api, VG_M_REDIS_ERRORS);
        VG_LOG_DEBUG("api", "redis: %s", errstr);
        api_error(r, 503, "redis unreachable: %s", errstr);
        return false;
    }
    reconnect = p->had_error;
    p->had_error = false;
    pthread_mutex_unlock(&p->lock);
    if (reconnect) {
        count_redis(api, VG_M_REDIS_RECONNECTS);
    }
    return true;
}

void api_state_put(struct vg_api *api, struct vg_state *st, vg_err_t err)
{
    struct api_pool *p = &api->pool;

    pthread_mutex_lock(&p->lock);
    if (vg_err_is_retriable(err)) {
        /* The context is dead after a NULL reply: close it, the next request opens a new one. */
        p->n_open--;
        p->had_error = true;
        pthread_mutex_unlock(&p->lock);
        vg_state_destroy(st);
        count_redis(api, VG_M_REDIS_ERRORS);
        pthread_mutex_lock(&p->lock);
    } else {
        p->idle[p->n_idle++] = st;
    }
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

bool api_state_done(struct vg_api *api, struct vg_state *st, vg_err_t err, const char *errstr,
                    struct api_resp *r)
{
    api_state_put(api, st, err);
    if (err == VG_OK) {
        return true;
    }
    if (vg_err_is_retriable(err)) {
        api_error(r, 503, "redis: %s", errstr);
    } else {
        VG_LOG_WARN("api", "request failed: %s", errstr);
        api_error(r, 500, "%s", errstr);
    }
    return false;
}

/* ---- the built-in endpoints ----------------------------------------------- */

static void healthz(struct api_resp *r)
{
    r->status = 200;
    vg_buf_puts(&r->body, "{\"status\": \"ok\"}\n");
}

static void readyz(struct api_ctx *c, struct api_resp *r)
{
    struct vg_api *api = c->api;
    struct vg_buf why = {0};
    char reason[256] = "";
    struct vg_state *st;
    struct api_resp tmp = {0};

    if (api->hooks.ready && !api->hooks.ready(api->hooks.opaque, reason, sizeof(reason))) {
        vg_buf_puts(&why, reason[0] ? reason : "not ready");
    }
    if (api_state_get(api, &st, &tmp)) {
        vg_err_t err = vg_state_ping(st);
        api_state_put(api, st, err);
        if (err) {
            vg_buf_printf(&why, "%sredis: not answering PING (%s)", why.len ? "; " : "",
                          vg_err_name(err));
        }
    } else {
        vg_buf_printf(&why, "%sredis: unreachable", why.len ? "; " : "");
    }
    vg_buf_fini(&tmp.body);
    if (why.len) {
        r->status = 503;
        vg_buf_puts(&r->body, "{\"status\": \"not ready\", \"error\": ");
        vg_json_append_string(&r->body, why.data);
        vg_buf_puts(&r->body, "}\n");
    } else if (api->hooks.healthy &&
               !api->hooks.healthy(api->hooks.opaque, reason, sizeof(reason))) {
        r->status = 200;
        vg_buf_puts(&r->body, "{\"status\": \"ready\", \"degraded\": ");
        vg_json_append_string(&r->body, reason);
        vg_buf_puts(&r->body, "}\n");
    } else {
        r->status = 200;
        vg_buf_puts(&r->body, "{\"status\": \"ready\"}\n");
    }
    vg_buf_fini(&why);
}

/* Gauges the server reads from Redis itself at scrape time. */
static void collect_redis(struct vg_api *api)
{
    struct vg_state *st;
    struct api_resp tmp = {0};
    char errstr[256];
    int64_t depth;
    vg_err_t err;

    if (!api_state_get(api, &st, &tmp)) {
        vg_buf_fini(&tmp.body);
        return;
    }
    err = vg_state_outbox_backlog(st, &depth, errstr, sizeof(errstr));
    if (!err) {
        vg_metrics_set(api->metrics, VG_M_OUTBOX_DEPTH, NULL, (double)depth);
        err = vg_state_dead_depth(st, &depth, errstr, sizeof(errstr));
    }
    if (!err) {
        vg_metrics_set(api->metrics, VG_M_DEAD_DEPTH, NULL, (double)depth);
        err = api_collect_incidents(api, st, errstr, sizeof(errstr));
    }
    if (err) {
        VG_LOG_DEBUG("api", "metrics from redis: %s", errstr);
    }
    api_state_put(api, st, err);
}

static void metrics(struct api_ctx *c, struct api_resp *r)
{
    struct vg_api *api = c->api;

    pthread_mutex_lock(&api->collect_lock);
    if (api->hooks.collect) {
        api->hooks.collect(api->hooks.opaque, api->metrics);
    }
    vg_metrics_set(api->metrics, VG_M_STREAM_CLIENTS, NULL, (double)atomic_load(&api->streams));
    collect_redis(api);
    vg_metrics_render(api->metrics, &r->body);
    pthread_mutex_unlock(&api->collect_lock);
    r->status = 200;
    r->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- routing ---------------------------------------------------------------- */

static bool method_is(const struct api_ctx *c, const char *m)
{
    return strcmp(c->method, m) == 0 || (strcmp(m, "GET") == 0 && !strcmp(c->method, "HEAD"));
}

static void route(struct api_ctx *c, struct api_resp *r)
{
    const char *p = c->path;

    if (!strcmp(p, "/healthz") || !strcmp(p, "/readyz") || !strcmp(p, "/metrics")) {
        if (!method_is(c, "GET")) {
            api_error(r, 405, "%s: only GET", p);
            r->allow = "GET, HEAD";
        } else if (p[1] == 'h') {
            healthz(r);
        } else if (p[1] == 'r') {
            readyz(c, r);
        } else {
            metrics(c, r);
        }
        return;
    }
    if (!strncmp(p, "/api/v1/", 8)) {
        api_v1(c, r, p + 7);
        return;
    }
    if (c->api->console && api_console(c, r)) {
        return;
    }
    api_error(r, 404, "not found: %s", p);
}

/* ---- responses ----------------------------------------------------------------- */

/* Replace every secret in `b` by "<redacted>" (defence in depth: none should be there). */
static void scrub(const struct vg_api *api, struct vg_buf *b)
{
    for (size_t i = 0; i < api->n_secrets && b->data; i++) {
        const char *s = api->secrets[i];
        size_t sl = strlen(s);
        char *hit = strstr(b->data, s);
        struct vg_buf out = {0};
        const char *from = b->data;

        if (!hit) {
            continue;
        }
        while (hit) {
            vg_buf_append(&out, from, (size_t)(hit - from));
            vg_buf_puts(&out, "<redacted>");
            from = hit + sl;
            hit = strstr(from, s);
        }
        vg_buf_puts(&out, from);
        vg_buf_fini(b);
        *b = out;
        VG_LOG_WARN("api", "a response contained a configured secret; it was redacted");
    }
}

static enum MHD_Result send_resp(struct vg_api *api, struct MHD_Connection *conn,
                                 struct api_resp *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (r->stream) {
        resp = api_stream_response(api, r->stream);
    } else {
        scrub(api, &r->body);
        if (!r->ctype) {
            utf8_repair(&r->body); /* JSON must parse, whatever a handler echoed */
        }
        resp = MHD_create_response_from_buffer(
            r->body.len, r->body.data ? r->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    }
    if (!resp) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            r->ctype ? r->ctype : "application/json; charset=utf-8");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /*
     * One request per connection: the acceptor (api_gate.c) checks and
     * times each request head before libmicrohttpd sees it, which a second
     * request on a kept-alive connection would bypass.
     */
    MHD_add_response_header(resp, "Connection", "close");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy", r->html ? CSP_HTML : CSP_OTHER);
    if (r->html) {
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    }
    if (r->allow) {
        MHD_add_response_header(resp, "Allow", r->allow);
    }
    if (r->www_auth) {
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"vigil\"");
    }
    ret = MHD_queue_response(conn, r->status ? r->status : 500, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- the checks every request passes --------------------------------------------- */

/* The request target (api_uri_problem): else r is the 400. */
static bool uri_ok(const char *uri, struct api_resp *r)
{
    struct vg_buf why = {0};
    bool too_many = false;
    bool ok = !api_uri_problem(uri, &why, &too_many);

    if (!ok) {
        api_error(r, 400, "%s", why.data);
        r->reason = too_many ? API_REASON_TOO_LARGE : API_REASON_NONE;
    }
    vg_buf_fini(&why);
    return ok;
}

/*
 * The Host header names an allowed host (DNS rebinding: a page from another
 * site that resolves its own name to 127.0.0.1 must not read the API).
 */
static bool host_ok(const struct vg_api *api, const char *host, const char *version,
                    struct api_resp *r)
{
    char name[256];
    size_t len;

    if (!host && version && !strcmp(version, "HTTP/1.0")) {
        return true; /* no browser sends HTTP/1.0 without Host: not a rebinding vector */
    }
    if (!host || !host[0]) {
        api_error(r, 400, "a Host header is required");
        return false;
    }
    len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
    if (len > strlen(host) || len >= sizeof(name)) {
        len = 0;
    }
    snprintf(name, sizeof(name), "%.*s", (int)len, host);
    for (char *p = name; *p; p++) {
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    }
    if (len > 1 && name[len - 1] == '.') { /* "localhost." is localhost */
        name[len - 1] = '\0';
    }
    for (size_t i = 0; api->allowed_hosts[i]; i++) {
        if (!strcmp(api->allowed_hosts[i], "*") || !strcmp(api->allowed_hosts[i], name)) {
            return true;
        }
    }
    api_error(r, 421, "Host \"%s\" is not served here (http.allowed_hosts)", host);
    return false;
}

/* The reason a response counts under, or NONE when it is no refusal. */
static enum api_reason reason_of(const struct api_resp *r)
{
    if (r->reason != API_REASON_NONE) {
        return r->reason;
    }
    switch (r->status) {
    case 400:
    case 411:
    case 505:
        return API_REASON_BAD_REQUEST;
    case 401:
    case 403:
        return API_REASON_UNAUTHORIZED;
    case 408:
        return API_REASON_TIMEOUT;
    case 413:
    case 414:
    case 431:
        return API_REASON_TOO_LARGE;
    case 421:
        return API_REASON_HOST;
    default:
        return API_REASON_NONE;
    }
}

/* The checks of the request head, on the first call: false with r set to the refusal. */
static bool head_ok(struct vg_api *api, struct MHD_Connection *conn, const char *version,
                    const struct api_req *rq, struct api_resp *r)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    int64_t len;

    if (!host_ok(api, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host"), version, r)) {
        return false;
    }
    if (rq->uri && !uri_ok(rq->uri, r)) {
        return false;
    }
    if (cl && vg_parse_i64(cl, &len) && len > API_MAX_BODY_BYTES) {
        api_error(r, 413, "request body larger than %d bytes", API_MAX_BODY_BYTES);
        return false;
    }
    return true;
}

static enum MHD_Result answer(struct vg_api *api, struct MHD_Connection *conn, struct api_conn *ac,
                              const char *method, const char *url, struct api_resp *r)
{
    enum api_reason reason = reason_of(r);
    enum MHD_Result ret;

    if (reason != API_REASON_NONE) {
        api_reject(api, reason, ac ? ac->ip : "?", "%s %.200s -> %u", method, url, r->status);
    }
    VG_LOG_DEBUG("api", "%s %s -> %u", method, url, r->status);
    ret = send_resp(api, conn, r);
    api_gate_responding(api, ac, r->stream != NULL);
    vg_buf_fini(&r->body);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct vg_api *api = cls;
    struct api_req *rq = *con_cls;
    struct api_conn *ac = api_gate_conn(conn);
    const char *why;
    struct api_ctx c;
    struct api_resp r;

    memset(&r, 0, sizeof(r));
    if (!rq) {
        rq = vg_calloc(1, sizeof(*rq));
        *con_cls = rq;
    }
    if (!rq->started) {
        /* Refuse on the headers alone, before any body is read. */
        rq->started = true;
        if (!head_ok(api, conn, version, rq, &r)) {
            api_gate_received(api, ac);
            return answer(api, conn, ac, method, url, &r);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (rq->body.len + *upload_data_size > API_MAX_BODY_BYTES) {
            rq->too_large = true; /* keep reading (and dropping) so the 413 can be sent */
        } else {
            vg_buf_append(&rq->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    api_gate_received(api, ac);
    c = (struct api_ctx){.api = api,
                         .conn = conn,
                         .method = method,
                         .path = url,
                         .body = rq->body.data ? rq->body.data : "",
                         .body_len = rq->body.len};
    if (rq->too_large) {
        api_error(&r, 413, "request body larger than %d bytes", API_MAX_BODY_BYTES);
    } else if (atomic_load(&api->stopping)) {
        api_error(&r, 503, "shutting down");
    } else if (rq->body.len && (why = api_body_problem(rq->body.data, rq->body.len)) != NULL) {
        api_error(&r, 400, "%s", why);
    } else {
        route(&c, &r);
    }
    return answer(api, conn, ac, method, url, &r);
}

/* libmicrohttpd's MHD_OPTION_URI_LOG_CALLBACK: the request target before decoding. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct api_req *rq = vg_calloc(1, sizeof(*rq));

    (void)cls;
    (void)conn;
    rq->uri = vg_strdup(uri ? uri : "");
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_req *rq = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (rq) {
        vg_buf_fini(&rq->body);
        free(rq->uri);
        free(rq);
        *con_cls = NULL;
    }
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct vg_buf b = {0};

    (void)cls;
    vg_buf_vprintf(&b, fmt, ap);
    while (b.len > 0 && b.data[b.len - 1] == '\n') {
        b.data[--b.len] = '\0';
    }
    VG_LOG_DEBUG("api", "libmicrohttpd: %s", b.data ? b.data : "");
    vg_buf_fini(&b);
}

/* ---- start and stop ---------------------------------------------------------- */

/* "host:port" or "[v6]:port" -> a listening socket; fills api->address. */
static vg_err_t listen_on(struct vg_api *api, const char *listen_addr, bool *v6, char *errstr,
                          size_t errstr_size)
{
    const char *colon = strrchr(listen_addr, ':');
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[256];
    char shown[INET6_ADDRSTRLEN];
    int64_t port;
    size_t hl;
    int one = 1;
    int rc;
    int fd;

    if (!colon || !vg_parse_i64(colon + 1, &port) || port < 0 || port > 65535) {
        snprintf(errstr, errstr_size, "http.listen: expected host:port, got \"%s\"", listen_addr);
        return VG_ERR_INVALID;
    }
    hl = (size_t)(colon - listen_addr);
    if (hl >= 2 && listen_addr[0] == '[' && listen_addr[hl - 1] == ']') {
        snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), listen_addr + 1);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)hl, listen_addr);
    }
    if (!host[0]) {
        snprintf(errstr, errstr_size,
                 "http.listen: \"%s\" has no host: name the address to bind (0.0.0.0 for all)",
                 listen_addr);
        return VG_ERR_INVALID;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(errstr, errstr_size, "http.listen: %s: %s", listen_addr, gai_strerror(rc));
        return VG_ERR_INVALID;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "http.listen: socket: %s", strerror(errno));
        freeaddrinfo(ai);
        return VG_ERR_IO;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(errstr, errstr_size, "http.listen: cannot listen on %s: %s", listen_addr,
                 strerror(errno));
        close(fd);
        freeaddrinfo(ai);
        return VG_ERR_IO;
    }
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof(shown));
        snprintf(api->address, sizeof(api->address), "[%s]:%d", shown, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof(shown));
        snprintf(api->address, sizeof(api->address), "%s:%d", shown, ntohs(s4->sin_port));
    }
    api->listen_fd = fd;
    return VG_OK;
}

/* A secret and the forms it would take inside JSON or HTML. */
static void add_secret(struct vg_api *api, const char *s, size_t *cap)
{
    struct vg_buf b = {0};

    if (!s || strlen(s) < 4) {
        return;
    }
    *VG_ARRAY_PUSH(api->secrets, api->n_secrets, *cap) = vg_strdup(s);
    vg_json_append_string(&b, s);
    b.data[b.len - 1] = '\0'; /* drop the quotes */
    if (strcmp(b.data + 1, s) != 0) {
        *VG_ARRAY_PUSH(api->secrets, api->n_secrets, *cap) = vg_strdup(b.data + 1);
    }
    vg_buf_reset(&b);
    api_html(&b, s);
    if (strcmp(b.data, s) != 0) {
        *VG_ARRAY_PUSH(api->secrets, api->n_secrets, *cap) = vg_strdup(b.data);
    }
    vg_buf_fini(&b);
}

/* http.allowed_hosts, or the loopback names plus the host of `listen`. */
static void set_allowed_hosts(struct vg_api *api, const struct vg_http_config *h,
                              const char *listen_addr)
{
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    size_t n = 0;
    size_t cap = 0;

    if (h->allowed_hosts) {
        for (size_t i = 0; i < h->n_allowed_hosts; i++) {
            *VG_ARRAY_PUSH(api->allowed_hosts, n, cap) = vg_strdup(h->allowed_hosts[i]);
        }
    } else {
        const char *colon = strrchr(listen_addr, ':');
        char *own = vg_strndup(listen_addr, colon ? (size_t)(colon - listen_addr) : 0);
        for (size_t i = 0; i < VG_ARRAY_LEN(loopback); i++) {
            *VG_ARRAY_PUSH(api->allowed_hosts, n, cap) = vg_strdup(loopback[i]);
        }
        for (char *p = own; *p; p++) {
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        }
        if (!strcmp(own, "0.0.0.0") || !strcmp(own, "[::]")) {
            VG_LOG_WARN("api",
                        "http.listen is %s but http.allowed_hosts is not set: requests must "
                        "name localhost, 127.0.0.1 or [::1] in their Host header (421 otherwise)",
                        listen_addr);
        }
        if (own[0]) {
            *VG_ARRAY_PUSH(api->allowed_hosts, n, cap) = own;
        } else {
            free(own);
        }
    }
    *VG_ARRAY_PUSH(api->allowed_hosts, n, cap) = NULL;
}

vg_err_t vg_api_start(struct vg_api **out, const struct vg_api_options *opts, char *errstr,
                      size_t errstr_size)
{
    struct vg_api *api = vg_calloc(1, sizeof(*api));
    const struct vg_http_config *h = opts->http;
    const char *listen_addr = h->listen ? h->listen : VG_HTTP_DEFAULT_LISTEN;
    /*
     * Thread per connection (handlers block on Redis and streams wait on the
     * ring); no listening socket: the acceptor (api_gate.c) accepts and hands
     * over complete request heads with MHD_add_connection, which needs ITC.
     * poll, not select: descriptors may exceed FD_SETSIZE.
     */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_POLL;
    size_t cap_secrets = 0;
    bool v6 = false;
    vg_err_t err;

    api->listen_fd = -1;
    api->gate.listen_fd = -1;
    api->gate.wake[0] = api->gate.wake[1] = -1;
    err = listen_on(api, listen_addr, &v6, errstr, errstr_size);
    if (err) {
        free(api);
        return err;
    }
    api->token = h->token && h->token[0] ? vg_strdup(h->token) : NULL;
    api->console = h->console;
    api->redis_url = vg_strdup(opts->redis_url);
    api->prefix = vg_strdup(opts->prefix ? opts->prefix : "vigil");
    api->redis = opts->redis;
    api->metrics = opts->metrics;
    api->hooks = opts->hooks;
    pthread_mutex_init(&api->collect_lock, NULL);
    pthread_mutex_init(&api->warn_lock, NULL);
    pthread_mutex_init(&api->gate.lock, NULL);
    for (size_t i = 0; i < opts->n_secrets; i++) {
        add_secret(api, opts->secrets[i], &cap_secrets);
    }
    add_secret(api, api->token, &cap_secrets);
    set_allowed_hosts(api, h, listen_addr);
    api->gate.max_connections =
        h->max_connections > 0 ? h->max_connections : VG_HTTP_DEFAULT_MAX_CONNECTIONS;
    api->gate.max_per_ip = h->max_connections_per_ip > 0 ? h->max_connections_per_ip
                                                         : VG_HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP;
    api->gate.request_timeout_ms =
        h->request_timeout_ms > 0 ? h->request_timeout_ms : VG_HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    api->max_streams = api->gate.max_connections / 2 < API_MAX_STREAMS
                           ? (api->gate.max_connections / 2 > 0 ? api->gate.max_connections / 2 : 1)
                           : API_MAX_STREAMS;
    for (int i = API_REASON_NONE + 1; i < API_REASON_COUNT; i++) {
        vg_metrics_add(api->metrics, VG_M_HTTP_REJECTED,
                       (const char *const[]){api_reason_name((enum api_reason)i)}, 0);
    }
    pool_init(&api->pool);
    api_ring_init(&api->ring);
    atomic_init(&api->streams, 0);
    atomic_init(&api->stopping, 0);
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    api->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(api->gate.max_connections + API_RESERVED_SLOTS), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)API_CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_NOTIFY_CONNECTION,
        api_gate_notify, api, MHD_OPTION_URI_LOG_CALLBACK, on_uri, api, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, api, MHD_OPTION_END);
    if (!api->mhd) {
        snprintf(errstr, errstr_size, "http: libmicrohttpd did not start on %s", api->address);
        vg_api_stop(api);
        return VG_ERR_IO;
    }
    api->gate.listen_fd = api->listen_fd; /* the acceptor's now */
    api->listen_fd = -1;
    err = api_gate_start(api, errstr, errstr_size);
    if (err) {
        vg_api_stop(api);
        return err;
    }
    VG_LOG_INFO("api",
                "listening on http://%s/ (console %s, write endpoints %s, at most %d connections, "
                "%d per client, %d ms per request)",
                api->address, api->console ? "on" : "off",
                api->token ? "need the token" : "disabled", api->gate.max_connections,
                api->gate.max_per_ip, api->gate.request_timeout_ms);
    *out = api;
    return VG_OK;
}

const char *vg_api_address(const struct vg_api *api)
{
    return api->address;
}

void vg_api_stop(struct vg_api *api)
{
    if (!api) {
        return;
    }
    atomic_store(&api->stopping, 1);
    api_ring_wake(&api->ring);
    api_gate_stop(api); /* nothing new reaches libmicrohttpd */
    if (api->mhd) {
        MHD_stop_daemon(api->mhd); /* closes its connections: their records go */
    }
    for (size_t i = 0; i < api->gate.n_conns; i++) {
        free(api->gate.conns[i]);
    }
    free(api->gate.conns);
    free(api->gate.pending);
    free(api->gate.peek);
    for (int i = 0; i < 2; i++) {
        if (api->gate.wake[i] >= 0) {
            close(api->gate.wake[i]);
        }
    }
    if (api->gate.listen_fd >= 0) {
        close(api->gate.listen_fd);
    }
    if (api->listen_fd >= 0) {
        close(api->listen_fd);
    }
    api_ring_fini(&api->ring);
    pool_fini(&api->pool);
    pthread_mutex_destroy(&api->collect_lock);
    pthread_mutex_destroy(&api->warn_lock);
    pthread_mutex_destroy(&api->gate.lock);
    for (size_t i = 0; i < api->n_secrets; i++) {
        free(api->secrets[i]);
    }
    free(api->secrets);
    for (size_t i = 0; api->allowed_hosts && api->allowed_hosts[i]; i++) {
        free(api->allowed_hosts[i]);
    }
    free(api->allowed_hosts);
    free(api->token);
    free(api->redis_url);
    free(api->prefix);
    free(api);
}
