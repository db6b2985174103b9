/*
 * Private to api/: the server object, the request and response shapes the
 * handlers share, the Redis connection pool, the JSON renderings shared by
 * the API and the console, and the event ring behind the stream.
 */
#ifndef VIGIL_API_INT_H
#define VIGIL_API_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "vigil/api.h"
#include "vigil/err.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/state.h"

#define API_MAX_BODY_BYTES (64 * 1024) /* POST bodies; more is 413 */
#define API_MAX_URI_BYTES 8192         /* the request target; more is 414 */
#define API_MAX_HEADER_BYTES 16384     /* request line and headers; more is 431 */
#define API_MAX_HEADERS 64             /* header lines; more is 431 */
#define API_MAX_QUERY_PARAMS 32        /* query parameters; more is 400 */
#define API_MAX_JSON_DEPTH 32          /* nesting of a request body; deeper is 400 */
#define API_RESERVED_SLOTS 8           /* beyond http.max_connections, for health and metrics */
#define API_MAX_STREAMS 32             /* concurrent /api/v1/stream clients; more is 503 */
#define API_POOL_MAX 8                 /* Redis connections of the server */
#define API_POOL_WAIT_MS 5000          /* wait for a free one, then 503 */
#define API_CONNECTION_TIMEOUT_S 60    /* idle connections are closed; also a response's bound */
#define API_STREAM_KEEPALIVE_MS 15000  /* a comment line this often on a quiet stream */
#define API_DEFAULT_LIMIT 100
#define API_MAX_LIMIT 1000
#define API_HISTORY_DEFAULT 200
#define API_HISTORY_MAX 1000
#define API_RECENT_MS (24LL * 3600 * 1000) /* "recently resolved" incidents */

struct api_ring_slot {
    uint64_t seq;
    char *event;
    char *data;
};

struct api_ring {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct api_ring_slot *slots; /* VG_API_RING_SIZE */
    uint64_t next_seq;           /* seq of the next event published; the first is 1 */
};

struct api_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct vg_state *idle[API_POOL_MAX];
    size_t n_idle;
    size_t n_open;  /* idle + lent out */
    bool had_error; /* the last connection failed: the next successful one is a reconnect */
};

/* Why a connection or request was refused: the `reason` label of VG_M_HTTP_REJECTED. */
enum api_reason {
    API_REASON_NONE = 0,
    API_REASON_HOST,
    API_REASON_TOO_MANY,
    API_REASON_PER_IP,
    API_REASON_TIMEOUT,
    API_REASON_TOO_LARGE,
    API_REASON_BAD_REQUEST,
    API_REASON_UNAUTHORIZED,
    API_REASON_COUNT
};

/* A connection handed to libmicrohttpd (api_gate.c); lives in api_gate.conns. */
struct api_conn {
    int fd;
    char ip[64];
    int64_t deadline_ms; /* monotonic: cut when reached (0: none, a stream) */
    bool reserve;        /* a health or metrics request served beyond max_connections */
    bool received;       /* the whole request is in: its deadline no longer applies */
    bool cut;            /* the deadline closed it already */
};

/* A connection still sending its request line and headers (no thread yet). */
struct api_pending {
    int fd;
    struct sockaddr_storage *addr;
    unsigned addr_len;
    char ip[64];
    int64_t accepted_ms; /* monotonic */
    size_t seen;         /* bytes of the request already in the socket buffer */
};

/*
 * The acceptor (api_gate.c): accepts on the listening socket, holds each
 * connection until its request headers are complete, enforces the limits,
 * hands good requests to libmicrohttpd and cuts those past their deadline.
 */
struct api_gate {
    pthread_t thread;
    bool started;
    int listen_fd;
    int wake[2]; /* a pipe: a byte wakes the thread (stop) */
    int max_connections;
    int max_per_ip;
    int request_timeout_ms;
    struct api_pending *pending; /* max_connections of them */
    size_t n_pending;
    char *peek;           /* API_MAX_HEADER_BYTES + 1, and a NUL */
    pthread_mutex_t lock; /* conns: the acceptor, libmicrohttpd's threads */
    struct api_conn **conns;
    size_t n_conns;
    size_t cap_conns;
};

/* Warnings of one rejection reason: at most one line a second. */
struct api_warn {
    int64_t last_ms;
    uint64_t suppressed;
};

struct vg_api {
    struct MHD_Daemon *mhd;
    int listen_fd;
    char address[96];
    char *token; /* NULL: writes refused */
    bool console;
    char *redis_url;
    char *prefix;
    const struct vg_redis_config *redis; /* cluster and WAIT options (borrowed); NULL: none */
    struct vg_metrics *metrics;
    struct vg_api_hooks hooks;
    pthread_mutex_t collect_lock;
    char **secrets;
    size_t n_secrets;
    struct api_pool pool;
    struct api_ring ring;
    atomic_int streams;
    int max_streams;
    atomic_int stopping;
    char **allowed_hosts; /* lower case; NULL entry ends; "*" accepts any */
    struct api_gate gate;
    pthread_mutex_t warn_lock;
    struct api_warn warn[API_REASON_COUNT];
};

/* One request as the handlers see it. */
struct api_ctx {
    struct vg_api *api;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *body; /* POST/DELETE body ("" when none), body_len bytes */
    size_t body_len;
};

/* A response being built. */
struct api_resp {
    unsigned status;
    const char *ctype; /* NULL: application/json */
    struct vg_buf body;
    bool html;
    const char *allow;      /* 405: the Allow header */
    bool www_auth;          /* 401: WWW-Authenticate: Bearer */
    void *stream;           /* set by api_stream_open: the body is the event stream */
    enum api_reason reason; /* a refusal counted under this reason (NONE: from the status) */
};

/* ---- api.c ---- */
/* A query parameter; NULL when absent or empty. */
const char *api_arg(const struct api_ctx *c, const char *name);
/* A request header (case-insensitive); NULL when absent. */
const char *api_header(const struct api_ctx *c, const char *name);
/* Set r to {"error": message} with `status`. */
void api_error(struct api_resp *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Count a refused connection or request in VG_M_HTTP_REJECTED and log a WARN
 * naming the reason and the client address, at most once a second per reason.
 */
void api_reject(struct vg_api *api, enum api_reason reason, const char *client, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
const char *api_reason_name(enum api_reason reason);
/* Bearer token check of a write endpoint: true when allowed, else r is the 401/403. */
bool api_authorized(const struct api_ctx *c, struct api_resp *r);
/*
 * Borrow a Redis connection (api_state_put it back). False with r set to a
 * 503 when Redis cannot be reached.
 */
bool api_state_get(struct vg_api *api, struct vg_state **st, struct api_resp *r);
/* Return it; `err` is the result of its last call (a BACKEND error closes it). */
void api_state_put(struct vg_api *api, struct vg_state *st, vg_err_t err);
/*
 * After the last call on a borrowed connection: api_state_put it back and,
 * when `err` is not VG_OK, answer with it (503 for BACKEND/TIMEOUT, else
 * 500 naming errstr). True when err is VG_OK.
 */
bool api_state_done(struct vg_api *api, struct vg_state *st, vg_err_t err, const char *errstr,
                    struct api_resp *r);

/* Set VG_M_INCIDENTS_FIRING from the incident records in Redis (api_v1.c). */
vg_err_t api_collect_incidents(struct vg_api *api, struct vg_state *st, char *errstr,
                               size_t errstr_size);

/* ---- api_json.c: the JSON of the API, shared with the console ---- */
/* RFC 3339 or "" for 0. Needs 40 bytes. */
void api_time(int64_t ms, char *out, size_t out_size);
/* The later of the status and runtime since-times (the SINCE column). */
int64_t api_since_ms(const struct vg_resource *res);
/* "healthy" ... or "unknown" for VG_HEALTH_UNKNOWN. */
const char *api_health_name(enum vg_health h);
/* A JSON string, or null for NULL. */
void api_json_str(struct vg_buf *b, const char *s);
/* "key": value pairs, with a leading comma unless `first`. */
void api_json_kv(struct vg_buf *b, const char *key, const char *value, bool first);
void api_json_kt(struct vg_buf *b, const char *key, int64_t ms); /* a time or null */
/* The `vigil get -o json` object of a Resource, plus the since-times. */
void api_json_resource(struct vg_buf *b, const struct vg_resource *res);
/* The `vigil get ID -o json` object: the above plus message, position, incidents, pods, labels. */
void api_json_resource_detail(struct vg_buf *b, const struct vg_resource *res);
void api_json_history_entry(struct vg_buf *b, const struct vg_history_entry *e);
void api_json_incident(struct vg_buf *b, const struct vg_incident_record *r, int64_t now_ms);
void api_json_silence(struct vg_buf *b, const struct vg_silence *s, int64_t now_ms);

/* ---- api_v1.c ---- */
/* Route /api/v1/... (path without the prefix). */
void api_v1(struct api_ctx *c, struct api_resp *r, const char *sub);
/*
 * Resources matching the query parameters type, workspace, q (name, case-
 * insensitive substring), health; sorted by name then id. On false, r is
 * the 400/503. Caller frees with vg_resources_free. `ignore_health`: the
 * health filter is not applied (counts per health).
 */
bool api_query_resources(struct api_ctx *c, struct api_resp *r, bool ignore_health,
                         struct vg_resource ***out, size_t *n_out);
bool api_health_matches(const struct vg_resource *res, const char *health);

/* ---- api_parse.c: what a client sends, parsed without libmicrohttpd or Redis ---- */
enum api_head_verdict { API_HEAD_WAIT, API_HEAD_OK, API_HEAD_REFUSED };
struct api_head {
    unsigned status;        /* REFUSED: the answer's status */
    enum api_reason reason; /* REFUSED: the refusal's reason */
    char message[160];      /* REFUSED: why, for the JSON error */
    bool health;            /* OK: a bodiless /healthz, /readyz or /metrics (reserved slots) */
};
/*
 * Check the request line and headers in h[0..n) (as peeked; h[n] is a
 * NUL): API_HEAD_OK when complete and within the rules, API_HEAD_WAIT
 * when more is needed, API_HEAD_REFUSED with `out` saying how to answer.
 */
enum api_head_verdict api_head_check(const char *h, size_t n, struct api_head *out);
/*
 * The request target as sent: the path and each query parameter must decode
 * to valid UTF-8 without control characters (libmicrohttpd would cut a value
 * at %00 silently), at most API_MAX_QUERY_PARAMS parameters. True when it
 * breaks a rule, with the 400's message appended to `why` (*too_many: it
 * was the parameter count).
 */
bool api_uri_problem(const char *uri, struct vg_buf *why, bool *too_many);
/*
 * A request body (JSON): valid UTF-8, nesting within API_MAX_JSON_DEPTH, and
 * no control character in a string, raw or escaped (\u0000 would end a C
 * string early: "a\u0000b" must not become "a"), no lone surrogate.
 * Returns what is wrong, or NULL.
 */
const char *api_body_problem(const char *s, size_t n);
bool api_health_filter_ok(const char *health);
/* `q` a case-insensitive substring of `name`. */
bool api_name_matches(const char *name, const char *q);
/* "*<q>*" with each letter as [xX] and glob characters escaped, for the name index. Caller frees.
 */
char *api_q_glob(const char *q);
/* The cursor of a page ending at (name, id): hex of "name\x1fid". Caller frees. */
char *api_cursor_encode(const char *name, const char *id);
/* A cursor back into new heap strings; false when `hex` is not one. */
bool api_cursor_decode(const char *hex, char **name, char **id);
/* The longest key of a silence matcher, NUL included (as the CLI's). */
#define API_MATCHER_KEY_MAX 256
/* "key=glob" with a key a silence may match on and a valid, non-empty glob. */
bool api_matcher_ok(const char *m);
/*
 * The body of POST /api/v1/silences (body[0..len), not NUL-terminated) into
 * `s` (zeroed first; vg_silence_fini it either way), times checked against
 * `now` (ms); false with the 400's message appended to `why`. `s->id` is
 * left NULL.
 */
bool api_silence_parse(const char *body, size_t len, int64_t now, struct vg_silence *s,
                       struct vg_buf *why);

/* ---- api_stream.c ---- */
void api_ring_init(struct api_ring *ring);
void api_ring_fini(struct api_ring *ring);
/* Wake every stream (shutdown). */
void api_ring_wake(struct api_ring *ring);
/* GET /api/v1/stream: r->stream is set (or r is a 503). */
void api_stream_open(struct api_ctx *c, struct api_resp *r);
/* The MHD response of r->stream (called by api.c). */
struct MHD_Response *api_stream_response(struct vg_api *api, void *stream);

/* ---- api_gate.c ---- */
/* Start the acceptor on api->gate.listen_fd (owned from now on). */
vg_err_t api_gate_start(struct vg_api *api, char *errstr, size_t errstr_size);
/* Stop accepting, close held connections, join the thread. */
void api_gate_stop(struct vg_api *api);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION: ties its connections to api_conn records. */
void api_gate_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe);
/* The record of a connection (NULL when unknown), valid until the connection closes. */
struct api_conn *api_gate_conn(struct MHD_Connection *conn);
/* The whole request on `ac` is in (ac NULL: no-op): the handler runs without a deadline. */
void api_gate_received(struct vg_api *api, struct api_conn *ac);
/* Its response is queued: API_CONNECTION_TIMEOUT_S to deliver it (a stream: no bound). */
void api_gate_responding(struct vg_api *api, struct api_conn *ac, bool stream);
/* The bytes of a JSON error response written straight to a socket (gate rejections). */
void api_gate_reply(int fd, unsigned status, const char *message);

/* ---- api_console.c ---- */
/* Console pages and assets; false when `path` is not one. */
bool api_console(struct api_ctx *c, struct api_resp *r);
/* &, <, >, ", ' escaped. */
void api_html(struct vg_buf *b, const char *s);

/* ---- console_assets.c (generated from api/console/ at build time) ---- */
struct api_asset {
    const char *path; /* "/console/app.js" */
    const char *ctype;
    const unsigned char *data;
    size_t len;
};
extern const struct api_asset api_assets[];
extern const size_t api_n_assets;

#endif
