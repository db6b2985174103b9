/*
 * The hiredis edge of state/: redis URL parsing, connecting (AUTH,
 * SELECT, timeouts), translating hiredis failures and server error
 * replies into vg_err_t, and the binary-safe argv builder used for every
 * pipelined command. Nothing here knows about Resources or the outbox.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

void state_set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (!errstr || errstr_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* ---- URL parsing ------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* %XX-decode s[0..len) into a new string; NULL when malformed or it would contain NUL. */
static char *percent_decode(const char *s, size_t len)
{
    char *out = vg_malloc(len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int hi;
        int lo;

        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            vg_free(out);
            return NULL;
        }
        hi = hex_value(s[i + 1]);
        lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            vg_free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* Parse s[0..len) as a decimal integer in [min, max]. */
static bool parse_int_range(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    char tmp[24];
    int64_t v;

    if (len == 0 || len >= sizeof(tmp)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (!vg_parse_i64(tmp, &v) || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static vg_err_t url_invalid(struct state_url *out, const char *url, const char *why, char *errstr,
                            size_t errstr_size)
{
    char redacted[STATE_URL_REDACTED_MAX];

    state_url_fini(out);
    vg_redact_url(url, redacted, sizeof(redacted));
    state_set_err(errstr, errstr_size, "redis URL \"%s\": %s", redacted, why);
    return VG_ERR_INVALID;
}

static vg_err_t parse_unix(const char *url, const char *rest, struct state_url *out, char *errstr,
                           size_t errstr_size)
{
    const char *q = strchr(rest, '?');
    size_t path_len = q ? (size_t)(q - rest) : strlen(rest);
    struct sockaddr_un sun;

    out->is_unix = true;
    if (path_len < 2 || rest[0] != '/') {
        return url_invalid(out, url, "want unix:///absolute/path.sock", errstr, errstr_size);
    }
    if (path_len >= sizeof(sun.sun_path)) {
        return url_invalid(out, url, "socket path too long", errstr, errstr_size);
    }
    out->path = vg_strndup(rest, path_len);
    while (q && *q) {
        const char *p = q + 1;
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        int64_t v;

        if (plen > 3 && strncmp(p, "db=", 3) == 0) {
            if (!parse_int_range(p + 3, plen - 3, 0, INT32_MAX, &v)) {
                return url_invalid(out, url, "bad db number", errstr, errstr_size);
            }
            out->db = (int)v;
        } else if (plen > 9 && strncmp(p, "password=", 9) == 0) {
            vg_free(out->pass);
            out->pass = percent_decode(p + 9, plen - 9);
            if (!out->pass) {
                return url_invalid(out, url, "bad %-encoding in password", errstr, errstr_size);
            }
        } else if (plen > 5 && strncmp(p, "user=", 5) == 0) {
            vg_free(out->user);
            out->user = percent_decode(p + 5, plen - 5);
            if (!out->user) {
                return url_invalid(out, url, "bad %-encoding in user", errstr, errstr_size);
            }
        } else {
            return url_invalid(out, url, "unknown parameter (want db=N, user=, password=)", errstr,
                               errstr_size);
        }
        q = amp;
    }
    if (out->user && !out->pass) {
        return url_invalid(out, url, "user given without password", errstr, errstr_size);
    }
    return VG_OK;
}

static vg_err_t parse_tcp(const char *url, const char *rest, struct state_url *out, char *errstr,
                          size_t errstr_size)
{
    const char *at = strrchr(rest, '@');
    const char *hp = at ? at + 1 : rest;
    const char *slash = strchr(hp, '/');
    size_t auth_len = slash ? (size_t)(slash - hp) : strlen(hp);
    const char *port_s = NULL;
    size_t port_len = 0;
    int64_t v;

    out->is_unix = false;
    out->port = STATE_REDIS_DEFAULT_PORT;
    if (strpbrk(hp, "?#")) {
        return url_invalid(out, url, "query strings are not supported", errstr, errstr_size);
    }
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));

        if (!colon) {
            return url_invalid(out, url,
                               "user given without password (redis://:password@host for a "
                               "password alone)",
                               errstr, errstr_size);
        }
        if (colon > rest) {
            out->user = percent_decode(rest, (size_t)(colon - rest));
            if (!out->user) {
                return url_invalid(out, url, "bad %-encoding in user", errstr, errstr_size);
            }
        }
        out->pass = percent_decode(colon + 1, (size_t)(at - colon - 1));
        if (!out->pass) {
            return url_invalid(out, url, "bad %-encoding in password", errstr, errstr_size);
        }
        if (out->pass[0] == '\0') {
            return url_invalid(out, url, "empty password", errstr, errstr_size);
        }
    }
    if (auth_len > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', auth_len);

        if (!close || close == hp + 1) {
            return url_invalid(out, url, "bad IPv6 literal", errstr, errstr_size);
        }
        out->host = vg_strndup(hp + 1, (size_t)(close - hp - 1));
        if (close + 1 < hp + auth_len) {
            if (close[1] != ':') {
                return url_invalid(out, url, "junk after IPv6 literal", errstr, errstr_size);
            }
            port_s = close + 2;
            port_len = (size_t)(hp + auth_len - port_s);
        }
    } else {
        const char *colon = memchr(hp, ':', auth_len);
        size_t host_len = colon ? (size_t)(colon - hp) : auth_len;

        if (host_len == 0) {
            return url_invalid(out, url, "missing host", errstr, errstr_size);
        }
        out->host = vg_strndup(hp, host_len);
        if (colon) {
            port_s = colon + 1;
            port_len = (size_t)(hp + auth_len - port_s);
        }
    }
    if (port_s) {
        if (!parse_int_range(port_s, port_len, 1, 65535, &v)) {
            return url_invalid(out, url, "bad port", errstr, errstr_size);
        }
        out->port = (int)v;
    }
    if (slash && slash[1] != '\0') {
        if (!parse_int_range(slash + 1, strlen(slash + 1), 0, INT32_MAX, &v)) {
            return url_invalid(out, url, "bad db number", errstr, errstr_size);
        }
        out->db = (int)v;
    }
    return VG_OK;
}

vg_err_t state_url_parse(const char *url, struct state_url *out, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "redis://", 8) == 0) {
        return parse_tcp(url, url + 8, out, errstr, errstr_size);
    }
    if (strncmp(url, "unix://", 7) == 0) {
        return parse_unix(url, url + 7, out, errstr, errstr_size);
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        return url_invalid(out, url,
                           "TLS is not supported by hiredis 0.14: terminate TLS in a sidecar "
                           "(stunnel) and use redis://",
                           errstr, errstr_size);
    }
    return url_invalid(out, url, "want redis://[user:pass@]host[:port][/db] or unix:///path",
                       errstr, errstr_size);
}

void state_url_fini(struct state_url *u)
{
    vg_free(u->host);
    vg_free(u->path);
    vg_free(u->user);
    if (u->pass) {
        memset(u->pass, 0, strlen(u->pass));
    }
    vg_free(u->pass);
    memset(u, 0, sizeof(*u));
}

/* ---- errors ----------------------------------------------------------- */

vg_err_t state_error_class(const char *msg, size_t len)
{
    /* MOVED and ASK: a Redis Cluster moved (or is moving) the slot of vigil's keys; the
     * caller reconnects, and vg_state_reconnect follows the slot to its new primary. */
    static const char *const transient[] = {
        "LOADING", "MASTERDOWN", "BUSY",       "TRYAGAIN",  "CLUSTERDOWN", "READONLY",
        "MISCONF", "OOM",        "NOREPLICAS", "EXECABORT", "MOVED",       "ASK",
    };
    size_t word = 0;

    while (word < len && msg[word] != ' ') {
        word++;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(transient); i++) {
        if (strlen(transient[i]) == word && memcmp(msg, transient[i], word) == 0) {
            return VG_ERR_BACKEND;
        }
    }
    return VG_ERR_INVALID;
}

bool state_error_is(const redisReply *reply, const char *code)
{
    size_t n = strlen(code);

    return reply && reply->type == REDIS_REPLY_ERROR && reply->len >= n &&
           memcmp(reply->str, code, n) == 0 && (reply->len == n || reply->str[n] == ' ');
}

vg_err_t state_error_text_at(const char *redacted, const char *what, const char *msg, size_t len,
                             char *errstr, size_t errstr_size)
{
    state_set_err(errstr, errstr_size, "redis %s: %s: %.*s", redacted, what, (int)len, msg);
    return state_error_class(msg, len);
}

vg_err_t state_error_text(const struct vg_state *st, const char *what, const char *msg, size_t len,
                          char *errstr, size_t errstr_size)
{
    return state_error_text_at(st->redacted, what, msg, len, errstr, errstr_size);
}

vg_err_t state_reply_error(const struct vg_state *st, const char *what, const redisReply *reply,
                           char *errstr, size_t errstr_size)
{
    return state_error_text(st, what, reply->str, reply->len, errstr, errstr_size);
}

vg_err_t state_need_ctx(struct vg_state *st, char *errstr, size_t errstr_size)
{
    if (st->ctx) {
        return VG_OK;
    }
    state_set_err(errstr, errstr_size, "redis %s: not connected", st->redacted);
    return VG_ERR_BACKEND;
}

vg_err_t state_ctx_failed(struct vg_state *st, const char *what, char *errstr, size_t errstr_size)
{
    if (st->ctx->err == REDIS_ERR_OOM) {
        vg_oom("hiredis");
    }
    state_set_err(errstr, errstr_size, "redis %s: %s: %s", st->redacted, what,
                  st->ctx->errstr[0] ? st->ctx->errstr : "connection failed");
    state_redis_close(st);
    return VG_ERR_BACKEND;
}

void state_replies_free(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i]) {
            freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
    }
}

vg_err_t state_read_replies(struct vg_state *st, size_t n, redisReply **replies, const char *what,
                            char *errstr, size_t errstr_size)
{
    if (state_commits_pending(st)) {
        /* the replies of commits written before these come first on the connection */
        vg_err_t err = state_commits_drain(st, what, errstr, errstr_size);

        if (err != VG_OK) {
            return err;
        }
    }
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;

        if (redisGetReply(st->ctx, &r) != REDIS_OK || !r) {
            state_replies_free(replies, i);
            return state_ctx_failed(st, what, errstr, errstr_size);
        }
        replies[i] = r;
    }
    return VG_OK;
}

vg_err_t state_read_checked(struct vg_state *st, size_t n, redisReply **replies, const char *what,
                            char *errstr, size_t errstr_size)
{
    vg_err_t err = state_read_replies(st, n, replies, what, errstr, errstr_size);

    for (size_t i = 0; err == VG_OK && i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            err = state_reply_error(st, what, replies[i], errstr, errstr_size);
            state_replies_free(replies, n);
        }
    }
    return err;
}

void state_stream_fields(const redisReply *fields, const char *const *names, size_t n,
                         const redisReply **vals)
{
    for (size_t j = 0; j < n; j++) {
        vals[j] = NULL;
    }
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        for (size_t j = 0; j < n; j++) {
            if (state_reply_is(fields->element[i], names[j])) {
                vals[j] = fields->element[i + 1];
                break;
            }
        }
    }
}

char *state_reply_str(const redisReply *v, const char *absent)
{
    if (v && v->type == REDIS_REPLY_STRING) {
        return vg_strndup(v->str, v->len);
    }
    return absent ? vg_strdup(absent) : NULL;
}

bool state_reply_i64(const redisReply *v, int64_t *out)
{
    char *s;
    bool ok;

    if (!v || v->type != REDIS_REPLY_STRING) {
        return false;
    }
    s = vg_strndup(v->str, v->len);
    ok = vg_parse_i64(s, out);
    vg_free(s);
    return ok;
}

vg_err_t state_read_strings(struct vg_state *st, size_t n, bool checked, char **out,
                            const char *what, char *errstr, size_t errstr_size)
{
    redisReply **replies = vg_calloc(n ? n : 1, sizeof(*replies));
    vg_err_t err = checked ? state_read_checked(st, n, replies, what, errstr, errstr_size)
                           : state_read_replies(st, n, replies, what, errstr, errstr_size);

    if (err == VG_OK) {
        for (size_t i = 0; i < n; i++) {
            out[i] = replies[i]->type == REDIS_REPLY_STRING
                         ? vg_strndup(replies[i]->str, replies[i]->len)
                         : NULL;
        }
        state_replies_free(replies, n);
    }
    vg_free(replies); /* on failure none are left allocated */
    return err;
}

vg_err_t state_run(struct vg_state *st, struct state_cmd *c, const char *what, const char *allow,
                   redisReply **out, char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    vg_err_t err;

    if (out) {
        *out = NULL;
    }
    if (!st->ctx) {
        state_cmd_reset(c);
        return state_need_ctx(st, errstr, errstr_size);
    }
    state_cmd_append(st, c);
    err = state_read_replies(st, 1, &reply, what, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (state_error_is(reply, "NOGROUP")) {
            /* The outbox stream or its group vanished (FLUSHALL, a new server): recreate. */
            st->group_ready = false;
        }
        if (!allow || !state_error_is(reply, allow)) {
            err = state_reply_error(st, what, reply, errstr, errstr_size);
            freeReplyObject(reply);
            return err;
        }
    }
    if (out) {
        *out = reply;
    } else {
        freeReplyObject(reply);
    }
    return VG_OK;
}

/* ---- connecting ------------------------------------------------------- */

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return tv;
}

vg_err_t state_redis_open(struct vg_state *st, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisContext *ctx;
    vg_err_t err = VG_OK;

    state_redis_close(st);
    if (st->url.is_unix) {
        ctx = redisConnectUnixWithTimeout(st->url.path, ms_to_tv(STATE_CONNECT_TIMEOUT_MS));
    } else {
        ctx =
            redisConnectWithTimeout(st->url.host, st->url.port, ms_to_tv(STATE_CONNECT_TIMEOUT_MS));
    }
    if (!ctx) {
        vg_oom("redis context");
    }
    if (ctx->err) {
        state_set_err(errstr, errstr_size, "redis %s: connect: %s", st->redacted, ctx->errstr);
        redisFree(ctx);
        return VG_ERR_BACKEND;
    }
    if (redisSetTimeout(ctx, ms_to_tv(STATE_COMMAND_TIMEOUT_MS)) != REDIS_OK) {
        state_set_err(errstr, errstr_size, "redis %s: set timeout: %s", st->redacted,
                      ctx->errstr[0] ? ctx->errstr : strerror(errno));
        redisFree(ctx);
        return VG_ERR_BACKEND;
    }
    st->ctx = ctx;
    /* a new connection may reach another server: ask again whether it has our function */
    st->incident_fn_asked = false;
    if (st->url.pass) {
        state_cmd_str(&c, "AUTH");
        if (st->url.user) {
            state_cmd_str(&c, st->url.user);
        }
        state_cmd_str(&c, st->url.pass);
        err = state_run(st, &c, "AUTH", NULL, NULL, errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
    }
    if (st->url.db != 0) {
        state_cmd_str(&c, "SELECT");
        state_cmd_i64(&c, st->url.db);
        err = state_run(st, &c, "SELECT", NULL, NULL, errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
    }
    /* Without AUTH or SELECT nothing has talked to the server yet: a PING
     * turns NOAUTH and LOADING into errors at connect time. */
    state_cmd_str(&c, "PING");
    err = state_run(st, &c, "PING", NULL, NULL, errstr, errstr_size);
out:
    state_cmd_fini(&c);
    if (err != VG_OK) {
        state_redis_close(st);
    }
    return err;
}

void state_redis_close(struct vg_state *st)
{
    if (st->ctx) {
        state_commits_conn_lost(st, st->ctx);
        redisFree(st->ctx);
        st->ctx = NULL;
    }
}

/* ---- command building ------------------------------------------------- */

/*
 * Per argument, per event: one capacity check, the length written by hand,
 * one memcpy. (Gathering the arguments first and formatting RESP in
 * state_cmd_append cost three copies and a dozen calls per argument: the
 * largest part of a commit's instructions.)
 */

/* The buffer grown to hold `need` bytes (the rare path, out of line). */
static __attribute__((noinline)) void cmd_grow(struct state_cmd *c, size_t need)
{
    size_t ncap = c->cap ? c->cap * 2 : 256;

    while (ncap < need) {
        ncap *= 2;
    }
    c->buf = vg_realloc(c->buf, ncap);
    c->cap = ncap;
}

/* Room for `extra` more bytes; the header's room is taken by the first argument. */
static inline char *cmd_room(struct state_cmd *c, size_t extra)
{
    if (c->len == 0) {
        c->len = STATE_CMD_HEAD;
    }
    if (c->len + extra > c->cap) {
        cmd_grow(c, c->len + extra);
    }
    return c->buf + c->len;
}

/* "00" "01" ... "99": integers are written two digits per division. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static const uint64_t pow10_u64[20] = {1u,
                                       10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u,
                                       1000000000000000000u,
                                       10000000000000000000u};

/* How many decimal digits u has (1 for 0): from its bit length, without a loop. */
static inline size_t u64_digits(uint64_t u)
{
    /* bits * log10(2), as 1233/4096: one short from 10^d on (u | 1: 0 has one digit) */
    size_t d = ((size_t)(64 - __builtin_clzll(u | 1)) * 1233) >> 12;

    return d + ((u | 1) >= pow10_u64[d] ? 1 : 0);
}

/* The n (u64_digits(u)) decimal digits of u at p; returns the end. */
static inline char *put_u64_n(char *p, uint64_t u, size_t n)
{
    char *end = p + n;
    char *q = end;

    while (u >= 100) {
        uint64_t r = u % 100;

        u /= 100;
        q -= 2;
        memcpy(q, digit_pairs + 2 * r, 2);
    }
    if (u >= 10) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * u, 2);
    } else {
        *--q = (char)('0' + u);
    }
    return end;
}

static char *put_u64(char *p, uint64_t u)
{
    return put_u64_n(p, u, u64_digits(u));
}

/* "$<len>\r\n" at p; returns the end. */
static inline char *put_bulk_len(char *p, size_t len)
{
    *p++ = '$';
    if (len < 10) {
        *p++ = (char)('0' + len);
    } else if (len < 100) {
        memcpy(p, digit_pairs + 2 * len, 2);
        p += 2;
    } else {
        p = put_u64(p, len);
    }
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Bytes the "$<len>\r\n" prefix and the "\r\n" suffix of an argument take at most. */
#define CMD_ARG_FRAME 26

/* One bulk argument at p (room already made); returns the end. */
static inline char *put_arg(char *p, const char *s, size_t len)
{
    p = put_bulk_len(p, len);
    if (len > 0) {
        memcpy(p, s, len);
        p += len;
    }
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* The integer v as one bulk argument at p (room for CMD_ARG_FRAME + 20 made); returns the end. */
static inline char *put_arg_i64(char *p, int64_t v)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = u64_digits(u);

    p = put_bulk_len(p, n + (v < 0 ? 1 : 0));
    if (v < 0) {
        *p++ = '-';
    }
    p = put_u64_n(p, u, n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

void state_cmd_arg(struct state_cmd *c, const char *s, size_t len)
{
    char *p = cmd_room(c, len + CMD_ARG_FRAME);

    p = put_arg(p, s, len);
    c->len = (size_t)(p - c->buf);
    c->n++;
}

void state_cmd_arg2(struct state_cmd *c, const char *a, size_t alen, const char *b, size_t blen)
{
    char *p = cmd_room(c, alen + blen + CMD_ARG_FRAME);

    p = put_bulk_len(p, alen + blen);
    memcpy(p, a, alen);
    p += alen;
    memcpy(p, b, blen);
    p += blen;
    *p++ = '\r';
    *p++ = '\n';
    c->len = (size_t)(p - c->buf);
    c->n++;
}

void state_cmd_field_pieces(struct state_cmd *c, const char *name, size_t name_len,
                            const struct state_piece *pieces, size_t n)
{
    size_t len = n > 0 ? n - 1 : 0; /* the separators */
    char *p;

    for (size_t i = 0; i < n; i++) {
        const struct state_piece *pc = &pieces[i];

        if (pc->s) {
            len += pc->len;
        } else {
            len += u64_digits(pc->i < 0 ? (uint64_t)0 - (uint64_t)pc->i : (uint64_t)pc->i) +
                   (pc->i < 0 ? 1 : 0);
        }
    }
    p = cmd_room(c, name_len + len + 2 * CMD_ARG_FRAME);
    p = put_arg(p, name, name_len);
    p = put_bulk_len(p, len);
    for (size_t i = 0; i < n; i++) {
        const struct state_piece *pc = &pieces[i];

        if (i > 0) {
            *p++ = STATE_PIECE_SEP;
        }
        if (pc->s) {
            if (pc->len > 0) {
                memcpy(p, pc->s, pc->len);
                p += pc->len;
            }
        } else {
            uint64_t u = pc->i < 0 ? (uint64_t)0 - (uint64_t)pc->i : (uint64_t)pc->i;

            if (pc->i < 0) {
                *p++ = '-';
            }
            p = put_u64(p, u);
        }
    }
    *p++ = '\r';
    *p++ = '\n';
    c->len = (size_t)(p - c->buf);
    c->n += 2;
}

void state_cmd_i64(struct state_cmd *c, int64_t v)
{
    char *p = cmd_room(c, CMD_ARG_FRAME + 21);

    p = put_arg_i64(p, v);
    c->len = (size_t)(p - c->buf);
    c->n++;
}

/* A field name and its value: one capacity check for both arguments. */
void state_cmd_field_n(struct state_cmd *c, const char *name, size_t name_len, const char *value)
{
    size_t value_len = value ? strlen(value) : 0;
    char *p = cmd_room(c, name_len + value_len + 2 * CMD_ARG_FRAME);

    p = put_arg(p, name, name_len);
    p = put_arg(p, value, value_len);
    c->len = (size_t)(p - c->buf);
    c->n += 2;
}

void state_cmd_field_i64_n(struct state_cmd *c, const char *name, size_t name_len, int64_t value)
{
    char *p = cmd_room(c, name_len + 2 * CMD_ARG_FRAME + 21);

    p = put_arg(p, name, name_len);
    p = put_arg_i64(p, value);
    c->len = (size_t)(p - c->buf);
    c->n += 2;
}

/*
 * The formats commands use are literal text, %s and %d (keys such as
 * "%s:idx:name" or "%s/%d"): those are written straight into the command
 * by format_simple; anything else (a width, another conversion) is left to
 * vsnprintf. Returns false, having written nothing, for such a format.
 */
static bool format_simple(struct state_cmd *c, const char *fmt, va_list ap)
{
    const char *strs[8];
    size_t lens[8];
    int ints[8];
    size_t n_conv = 0;
    size_t total = 0;
    char *start;
    char *p;

    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            total++;
            continue;
        }
        if (n_conv == VG_ARRAY_LEN(strs) || (f[1] != 's' && f[1] != 'd')) {
            return false;
        }
        if (f[1] == 's') {
            strs[n_conv] = va_arg(ap, const char *);
            if (!strs[n_conv]) {
                return false; /* printf's "(null)" */
            }
            lens[n_conv] = strlen(strs[n_conv]);
        } else {
            strs[n_conv] = NULL;
            ints[n_conv] = va_arg(ap, int);
            lens[n_conv] = 11; /* at most: "-2147483648" */
        }
        total += lens[n_conv++];
        f++;
    }
    p = cmd_room(c, total + 2 * CMD_ARG_FRAME);
    /* the argument's bytes first, its "$<len>\r\n" frame once the length is known */
    start = p + CMD_ARG_FRAME;
    p = start;
    n_conv = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            *p++ = *f;
            continue;
        }
        if (strs[n_conv]) {
            memcpy(p, strs[n_conv], lens[n_conv]);
            p += lens[n_conv];
        } else {
            int v = ints[n_conv];

            if (v < 0) {
                *p++ = '-';
            }
            p = put_u64(p, v < 0 ? (uint64_t)0 - (uint64_t)(int64_t)v : (uint64_t)v);
        }
        n_conv++;
        f++;
    }
    {
        size_t len = (size_t)(p - start);
        char *dst = c->buf + c->len;

        dst = put_bulk_len(dst, len);
        memmove(dst, start, len);
        dst += len;
        *dst++ = '\r';
        *dst++ = '\n';
        c->len = (size_t)(dst - c->buf);
        c->n++;
    }
    return true;
}

void state_cmd_fmt(struct state_cmd *c, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;
    bool done;

    va_start(ap, fmt);
    done = format_simple(c, fmt, ap);
    va_end(ap);
    if (done) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    VG_ASSERT(n >= 0);
    if ((size_t)n < sizeof(tmp)) {
        state_cmd_arg(c, tmp, (size_t)n);
    } else {
        char *big = vg_malloc((size_t)n + 1);

        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        state_cmd_arg(c, big, (size_t)n);
        vg_free(big);
    }
}

void state_cmd_append(struct vg_state *st, struct state_cmd *c)
{
    char head[STATE_CMD_HEAD];
    char *p = head;
    size_t hlen;

    VG_ASSERT(st->ctx != NULL);
    VG_ASSERT(c->n > 0 && c->n <= INT_MAX);
    *p++ = '*';
    p = put_u64(p, c->n);
    *p++ = '\r';
    *p++ = '\n';
    hlen = (size_t)(p - head);
    /* The header goes right in front of the arguments: one contiguous command. */
    memcpy(c->buf + STATE_CMD_HEAD - hlen, head, hlen);
    /* In a blocking context appending only buffers: it fails on OOM alone. */
    if (redisAppendFormattedCommand(st->ctx, c->buf + STATE_CMD_HEAD - hlen,
                                    c->len - (STATE_CMD_HEAD - hlen)) != REDIS_OK) {
        vg_oom("hiredis command buffer");
    }
    state_cmd_reset(c);
}

void state_cmd_reset(struct state_cmd *c)
{
    c->n = 0;
    c->len = 0;
}

void state_cmd_fini(struct state_cmd *c)
{
    vg_free(c->buf);
    memset(c, 0, sizeof(*c));
}

/* ---- keys ------------------------------------------------------------- */

char *state_key_prefix(const struct vg_state *st, const char *prefix)
{
    size_t lt;

    if (!st->cluster || prefix[0] == '{') {
        return vg_strdup(prefix);
    }
    lt = strlen(st->global_tag);
    if (strncmp(prefix, st->global_tag, lt) == 0 && (prefix[lt] == '\0' || prefix[lt] == ':')) {
        return vg_asprintf("{%s}%s", st->global_tag, prefix + lt);
    }
    return vg_asprintf("{%s}", prefix);
}

char *state_key(const struct vg_state *st, const char *suffix)
{
    return vg_asprintf("%s:%s", st->prefix, suffix);
}

/*
 * "<prefix>:<kind>:{<id>}" at p, without a NUL (lp, lk, li: the lengths of
 * the three); returns its end. Per Resource per commit: no printf.
 */
static char *put_key_res(char *p, const char *prefix, size_t lp, const char *kind, size_t lk,
                         const char *id, size_t li)
{
    memcpy(p, prefix, lp);
    p += lp;
    *p++ = ':';
    memcpy(p, kind, lk);
    p += lk;
    *p++ = ':';
    *p++ = '{';
    memcpy(p, id, li);
    p += li;
    *p++ = '}';
    return p;
}

void state_cmd_key_res(struct state_cmd *c, const struct vg_state *st, const char *kind,
                       const char *id)
{
    size_t lp = strlen(st->prefix);
    size_t lk = strlen(kind);
    size_t li = strlen(id);
    size_t len = lp + lk + li + 4;
    char *p = cmd_room(c, len + CMD_ARG_FRAME);

    /* as state_key_res, straight into the command */
    p = put_bulk_len(p, len);
    p = put_key_res(p, st->prefix, lp, kind, lk, id, li);
    *p++ = '\r';
    *p++ = '\n';
    c->len = (size_t)(p - c->buf);
    c->n++;
}

char *state_key_res(const struct vg_state *st, const char *kind, const char *id)
{
    /* The braces are a Redis Cluster hash tag: all keys of one Resource
     * share a slot (docs/state.md). On a cluster the prefix starts with
     * vigil's one tag, which comes first and so wins. */
    size_t lp = strlen(st->prefix);
    size_t lk = strlen(kind);
    size_t li = strlen(id);
    char *key = vg_malloc(lp + lk + li + 5);
    char *end = put_key_res(key, st->prefix, lp, kind, lk, id, li);

    *end = '\0';
    return key;
}

/* ---- reading a MULTI/EXEC pipeline ------------------------------------ */

/*
 * While a pipeline ending in EXEC is read, hiredis's reader builds no
 * reply objects: these functions note in the state_exec_reply (the
 * reader's privdata, reached from the top-level task) only what judging
 * the pipeline takes, and hand hiredis that struct as every "object"
 * (hiredis wants one that is not NULL; none is ever freed). A commit
 * otherwise allocated a reply (and its string) per +QUEUED and per EXEC
 * element.
 */
static struct state_exec_reply *exec_reply_of(const redisReadTask *task)
{
    while (task->parent) {
        task = task->parent;
    }
    return task->privdata;
}

static void *exec_reply_note(const redisReadTask *task, int type, const char *str, size_t len)
{
    struct state_exec_reply *er = exec_reply_of(task);

    if (!task->parent) {
        size_t i = er->n_read++;

        if (i + 1 == er->n) {
            er->exec_type = type;
        }
        if (type == REDIS_REPLY_ERROR && er->err_at == er->n) {
            er->err_at = i;
            er->err = vg_strndup(str, len);
            er->err_len = len;
        }
    } else if (!task->parent->parent && er->n_read == er->n && type == REDIS_REPLY_ERROR &&
               !er->elem_err) {
        /* one of EXEC's own elements (not deeper) */
        er->elem_err = vg_strndup(str, len);
        er->elem_err_len = len;
    }
    return er;
}

static void *exec_reply_string(const redisReadTask *task, char *str, size_t len)
{
    /* bulk strings, status and error replies: task->type says which */
    return exec_reply_note(task, task->type, str, len);
}

static void *exec_reply_array(const redisReadTask *task, int elements)
{
    (void)elements;
    return exec_reply_note(task, REDIS_REPLY_ARRAY, NULL, 0);
}

static void *exec_reply_integer(const redisReadTask *task, long long value)
{
    (void)value;
    return exec_reply_note(task, REDIS_REPLY_INTEGER, NULL, 0);
}

static void *exec_reply_nil(const redisReadTask *task)
{
    /* a nil bulk string or a nil array ("*-1", EXEC after a WATCHed key moved) */
    return exec_reply_note(task, REDIS_REPLY_NIL, NULL, 0);
}

static void exec_reply_free(void *obj)
{
    (void)obj; /* the state_exec_reply itself: its caller owns it */
}

static redisReplyObjectFunctions exec_reply_fns = {
    .createString = exec_reply_string,
    .createArray = exec_reply_array,
    .createInteger = exec_reply_integer,
    .createNil = exec_reply_nil,
    .freeObject = exec_reply_free,
};

/*
 * The "+QUEUED\r\n" replies that are next in the reader's buffer, at most
 * `max` of them, consumed without the parser: most replies of a
 * pipelined MULTI/EXEC are those nine bytes. Only between two replies
 * (ridx -1: no reply half parsed); anything else is left to hiredis.
 */
static size_t skip_queued(redisReader *reader, size_t max)
{
    static const char queued[] = "+QUEUED\r\n";
    const size_t qlen = sizeof(queued) - 1;
    size_t k = 0;

    if (reader->ridx != -1) {
        return 0;
    }
    while (k < max && reader->len - reader->pos >= qlen &&
           memcmp(reader->buf + reader->pos, queued, qlen) == 0) {
        reader->pos += qlen;
        k++;
    }
    return k;
}

vg_err_t state_conn_read_exec(redisContext *ctx, size_t n, struct state_exec_reply *er)
{
    redisReader *reader = ctx->reader;
    redisReplyObjectFunctions *fn = reader->fn;
    void *privdata = reader->privdata;
    vg_err_t err = VG_OK;

    VG_ASSERT(n > 0);
    memset(er, 0, sizeof(*er));
    er->n = n;
    er->err_at = n;
    reader->fn = &exec_reply_fns;
    reader->privdata = er;
    while (er->n_read < n) {
        void *r = NULL;
        /* after MULTI's reply and before EXEC's: the queued commands' */
        size_t k = er->n_read > 0 ? skip_queued(reader, n - 1 - er->n_read) : 0;

        if (k > 0) {
            er->n_read += k;
            continue;
        }
        if (redisGetReply(ctx, &r) != REDIS_OK || !r) {
            /* a reply cut short is made of ours: nothing for hiredis to free with its own */
            reader->reply = NULL;
            err = VG_ERR_BACKEND;
            break;
        }
    }
    reader->fn = fn;
    reader->privdata = privdata;
    if (err != VG_OK) {
        if (ctx->err == REDIS_ERR_OOM) {
            vg_oom("hiredis");
        }
        state_exec_reply_fini(er);
    }
    return err;
}

vg_err_t state_read_exec_reply(struct vg_state *st, size_t n, struct state_exec_reply *er,
                               const char *what, char *errstr, size_t errstr_size)
{
    if (state_commits_pending(st)) {
        vg_err_t err = state_commits_drain(st, what, errstr, errstr_size);

        if (err != VG_OK) {
            memset(er, 0, sizeof(*er));
            return err;
        }
    }
    if (state_conn_read_exec(st->ctx, n, er) != VG_OK) {
        return state_ctx_failed(st, what, errstr, errstr_size);
    }
    return VG_OK;
}

void state_exec_reply_fini(struct state_exec_reply *er)
{
    vg_free(er->err);
    vg_free(er->elem_err);
    er->err = NULL;
    er->elem_err = NULL;
}

vg_err_t state_read_exec(struct vg_state *st, size_t n, const char *what, char *errstr,
                         size_t errstr_size)
{
    struct state_exec_reply er;
    vg_err_t err = state_read_exec_reply(st, n, &er, what, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    if (er.err_at < n) {
        /* the first error reply among them all, as state_read_checked */
        err = state_error_text(st, what, er.err, er.err_len, errstr, errstr_size);
    } else if (er.exec_type != REDIS_REPLY_ARRAY) {
        state_set_err(errstr, errstr_size, "redis %s: %s: EXEC returned nil", st->redacted, what);
        err = VG_ERR_BACKEND;
    } else if (er.elem_err) {
        err = state_error_text(st, what, er.elem_err, er.elem_err_len, errstr, errstr_size);
    }
    state_exec_reply_fini(&er);
    return err;
}
