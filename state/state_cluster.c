/*
 * A Redis Cluster client on hiredis 0.14 (state_cluster.h): key slots, the
 * slot map, routing, and what to do with each refusal a cluster can answer.
 * Connections are opened, authenticated and translated by state_redis.c;
 * this file only decides where a command goes and whether it may be sent
 * again (docs/redis-cluster.md). It knows nothing about vigil's keys.
 */
#include "state_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "vigil/log.h"
#include "vigil/util.h"

/* ---- key slots ---------------------------------------------------------- */

/* CRC16-XMODEM (poly 0x1021, init 0), the variant the cluster spec names. */
static uint16_t crc16(const char *s, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)s[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t state_cluster_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);

        /* "{}" (an empty tag) hashes the whole key, as the server does. */
        if (close && close > key + from) {
            return crc16(key + from, (size_t)(close - (key + from))) & (STATE_CLUSTER_SLOTS - 1);
        }
    }
    return crc16(key, len) & (STATE_CLUSTER_SLOTS - 1);
}

/* ---- batches ------------------------------------------------------------ */

static void resp_header(struct vg_buf *b, char kind, size_t n)
{
    vg_buf_printf(b, "%c%zu\r\n", kind, n);
}

static void batch_end_command(struct state_cluster_batch *b)
{
    *(size_t *)VG_ARRAY_PUSH(b->ends, b->n, b->cap) = b->resp.len;
}

void state_cluster_batch_add(struct state_cluster_batch *b, int argc, const char *const *argv,
                             const size_t *argvlen)
{
    VG_ASSERT(argc > 0);
    resp_header(&b->resp, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        resp_header(&b->resp, '$', argvlen[i]);
        vg_buf_append(&b->resp, argv[i], argvlen[i]);
        vg_buf_append(&b->resp, "\r\n", 2);
    }
    batch_end_command(b);
}

void state_cluster_batch_add_cmd(struct state_cluster_batch *b, struct state_cmd *c)
{
    VG_ASSERT(c->n > 0);
    resp_header(&b->resp, '*', c->n);
    /* the arguments are RESP already, after the room kept for the header */
    vg_buf_append(&b->resp, c->buf + STATE_CMD_HEAD, c->len - STATE_CMD_HEAD);
    batch_end_command(b);
    state_cmd_reset(c);
}

void state_cluster_batch_reset(struct state_cluster_batch *b)
{
    vg_buf_reset(&b->resp);
    b->n = 0;
}

void state_cluster_batch_fini(struct state_cluster_batch *b)
{
    vg_buf_fini(&b->resp);
    vg_free(b->ends);
    memset(b, 0, sizeof(*b));
}

static size_t batch_start(const struct state_cluster_batch *b, size_t i)
{
    return i == 0 ? 0 : b->ends[i - 1];
}

/* ---- nodes -------------------------------------------------------------- */

static size_t node_find(struct state_cluster *cl, const char *host, int port)
{
    struct state_cluster_node *nd;

    for (size_t i = 0; i < cl->n_nodes; i++) {
        nd = &cl->nodes[i];
        if (nd->conn.url.port == port && strcmp(nd->conn.url.host, host) == 0) {
            return i;
        }
    }
    /* Nodes are never removed: the map only ever names a few dozen, and a
     * node that left costs one failed connect when it is tried for a map. */
    VG_ASSERT(cl->n_nodes < STATE_CLUSTER_NO_NODE);
    nd = VG_ARRAY_PUSH(cl->nodes, cl->n_nodes, cl->cap_nodes);
    memset(nd, 0, sizeof(*nd));
    nd->addr = vg_asprintf("%s:%d", host, port);
    nd->conn.url.host = vg_strdup(host);
    nd->conn.url.port = port;
    nd->conn.url.user = cl->seed.user ? vg_strdup(cl->seed.user) : NULL;
    nd->conn.url.pass = cl->seed.pass ? vg_strdup(cl->seed.pass) : NULL;
    snprintf(nd->conn.redacted, sizeof(nd->conn.redacted), "%s", nd->addr);
    return cl->n_nodes - 1;
}

/* "host:port" (a redirection's or CLUSTER SLOTS' address) -> node index; false when malformed. */
static bool node_from_addr(struct state_cluster *cl, const char *s, size_t len, size_t *out)
{
    const char *colon = NULL;
    char host[256];
    char port_s[8];
    int64_t port;

    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host) ||
        (size_t)(s + len - colon - 1) >= sizeof(port_s) || s + len == colon + 1) {
        return false;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memcpy(port_s, colon + 1, (size_t)(s + len - colon - 1));
    port_s[s + len - colon - 1] = '\0';
    if (!vg_parse_i64(port_s, &port) || port < 1 || port > 65535) {
        return false;
    }
    *out = node_find(cl, host, (int)port);
    return true;
}

static vg_err_t node_connect(struct state_cluster *cl, size_t idx, char *errstr, size_t errstr_size)
{
    struct state_cluster_node *nd = &cl->nodes[idx];
    vg_err_t err;

    if (nd->conn.ctx) {
        return VG_OK;
    }
    err = state_redis_open(&nd->conn, errstr, errstr_size);
    if (err != VG_OK) {
        cl->stats.conn_errors++;
    }
    return err;
}

static void node_lost(struct state_cluster *cl, size_t idx)
{
    state_redis_close(&cl->nodes[idx].conn);
    cl->stats.conn_errors++;
    cl->map_stale = true;
}

/*
 * Write `len` bytes to the node ourselves, not through hiredis' output
 * buffer, to know how much reached the socket when the write fails: a
 * command the server did not receive whole was not run.
 */
static bool node_write(struct state_cluster_node *nd, const char *buf, size_t len, size_t *written)
{
    *written = 0;
    while (*written < len) {
        ssize_t w = send(nd->conn.ctx->fd, buf + *written, len - *written, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            snprintf(nd->conn.ctx->errstr, sizeof(nd->conn.ctx->errstr), "write: %s",
                     w < 0 ? strerror(errno) : "connection closed");
            return false;
        }
        *written += (size_t)w;
    }
    return true;
}

/* Read one reply; NULL when the connection failed (errstr filled, context closed). */
static redisReply *node_read(struct state_cluster *cl, size_t idx, char *errstr, size_t errstr_size)
{
    struct state_cluster_node *nd = &cl->nodes[idx];
    redisReply *reply = NULL;

    if (state_read_replies(&nd->conn, 1, &reply, "read", errstr, errstr_size) != VG_OK) {
        cl->stats.conn_errors++;
        cl->map_stale = true;
        return NULL;
    }
    return reply;
}

/* ---- the slot map ------------------------------------------------------- */

static bool reply_int(const redisReply *r, long long min, long long max, long long *out)
{
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < min || r->integer > max) {
        return false;
    }
    *out = r->integer;
    return true;
}

/*
 * One node entry of CLUSTER SLOTS ([ip, port, id, ...]) -> node index. An
 * empty or "?" endpoint means "the node you asked" (Redis 7 when the
 * endpoint is unknown): use the address we reached it at.
 */
static bool slots_node(struct state_cluster *cl, size_t asked, const redisReply *e, size_t *out)
{
    long long port;
    char host[256];

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        !reply_int(e->element[1], 1, 65535, &port)) {
        return false;
    }
    if (e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len > 0 &&
        e->element[0]->len < sizeof(host) && strcmp(e->element[0]->str, "?") != 0) {
        memcpy(host, e->element[0]->str, e->element[0]->len);
        host[e->element[0]->len] = '\0';
    } else if (e->element[0]->type == REDIS_REPLY_STRING ||
               e->element[0]->type == REDIS_REPLY_NIL) {
        snprintf(host, sizeof(host), "%s", cl->nodes[asked].conn.url.host);
    } else {
        return false;
    }
    *out = node_find(cl, host, (int)port);
    return true;
}

static vg_err_t load_slots(struct state_cluster *cl, size_t idx, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    uint16_t *map;
    vg_err_t err;

    err = node_connect(cl, idx, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    state_cmd_str(&c, "CLUSTER");
    state_cmd_str(&c, "SLOTS");
    err = state_run(&cl->nodes[idx].conn, &c, "CLUSTER SLOTS", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        if (!cl->nodes[idx].conn.ctx) {
            cl->stats.conn_errors++;
        }
        return err;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        state_set_err(errstr, errstr_size, "redis %s: CLUSTER SLOTS: not an array",
                      cl->nodes[idx].addr);
        freeReplyObject(reply);
        return VG_ERR_BACKEND;
    }
    map = vg_malloc(sizeof(cl->slots));
    for (size_t s = 0; s < STATE_CLUSTER_SLOTS; s++) {
        map[s] = STATE_CLUSTER_NO_NODE;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        long long start;
        long long end;
        size_t owner;

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            !reply_int(r->element[0], 0, STATE_CLUSTER_SLOTS - 1, &start) ||
            !reply_int(r->element[1], start, STATE_CLUSTER_SLOTS - 1, &end) ||
            !slots_node(cl, idx, r->element[2], &owner)) {
            state_set_err(errstr, errstr_size, "redis %s: CLUSTER SLOTS: malformed range %zu",
                          cl->nodes[idx].addr, i);
            vg_free(map);
            freeReplyObject(reply);
            return VG_ERR_BACKEND;
        }
        for (long long s = start; s <= end; s++) {
            map[s] = (uint16_t)owner;
        }
        /* Replicas are remembered as nodes: more places to ask for a map after a failover. */
        for (size_t k = 3; k < r->elements; k++) {
            size_t replica;

            (void)slots_node(cl, idx, r->element[k], &replica);
        }
    }
    memcpy(cl->slots, map, sizeof(cl->slots));
    vg_free(map);
    freeReplyObject(reply);
    cl->map_stale = false;
    cl->refreshed_ms = vg_mono_ms();
    cl->stats.refreshes++;
    return VG_OK;
}

vg_err_t state_cluster_refresh(struct state_cluster *cl, char *errstr, size_t errstr_size)
{
    vg_err_t err = VG_ERR_BACKEND;

    /* Connected nodes first: no connect to a node that may be the one that died. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < cl->n_nodes; i++) {
            if ((cl->nodes[i].conn.ctx != NULL) != (pass == 0)) {
                continue;
            }
            err = load_slots(cl, i, errstr, errstr_size);
            if (err == VG_OK || err == VG_ERR_INVALID) {
                return err;
            }
        }
    }
    return err;
}

/* Refresh a map a redirection or failure said is old, at most every 100 ms. */
static void refresh_if_stale(struct state_cluster *cl, uint16_t slot, char *errstr,
                             size_t errstr_size)
{
    bool no_owner = cl->slots[slot] == STATE_CLUSTER_NO_NODE;

    if ((cl->map_stale || no_owner) &&
        vg_mono_ms() - cl->refreshed_ms >= 10 * STATE_CLUSTER_BACKOFF_MIN_MS) {
        (void)state_cluster_refresh(cl, errstr, errstr_size);
    }
}

/* ---- the cluster's refusals --------------------------------------------- */

enum refusal {
    REFUSAL_NONE,
    REFUSAL_MOVED,
    REFUSAL_ASK,
    REFUSAL_TRYAGAIN,
    REFUSAL_CLUSTERDOWN,
};

/*
 * Which refusal an error reply is; for MOVED and ASK also the slot and the
 * node named. "-EXECABORT Transaction discarded because of: <error>" is
 * judged by the error it carries (EXEC itself was refused).
 */
static enum refusal refusal_of(struct state_cluster *cl, const redisReply *r, size_t *node,
                               long long *slot)
{
    const char *msg;
    size_t len;
    static const char because[] = "because of: ";

    if (!r || r->type != REDIS_REPLY_ERROR) {
        return REFUSAL_NONE;
    }
    msg = r->str;
    len = r->len;
    if (len > 10 && memcmp(msg, "EXECABORT ", 10) == 0) {
        const char *p = strstr(msg, because);

        if (!p) {
            return REFUSAL_NONE;
        }
        p += sizeof(because) - 1;
        len -= (size_t)(p - msg);
        msg = p;
    }
    if ((len > 6 && memcmp(msg, "MOVED ", 6) == 0) || (len > 4 && memcmp(msg, "ASK ", 4) == 0)) {
        bool moved = msg[0] == 'M';
        const char *p = msg + (moved ? 6 : 4);
        const char *sp = memchr(p, ' ', len - (size_t)(p - msg));
        char num[8];
        int64_t v;

        if (!sp || (size_t)(sp - p) >= sizeof(num)) {
            return REFUSAL_NONE;
        }
        memcpy(num, p, (size_t)(sp - p));
        num[sp - p] = '\0';
        if (!vg_parse_i64(num, &v) || v < 0 || v >= STATE_CLUSTER_SLOTS ||
            !node_from_addr(cl, sp + 1, len - (size_t)(sp + 1 - msg), node)) {
            return REFUSAL_NONE;
        }
        *slot = v;
        return moved ? REFUSAL_MOVED : REFUSAL_ASK;
    }
    if (len >= 8 && memcmp(msg, "TRYAGAIN", 8) == 0 && (len == 8 || msg[8] == ' ')) {
        return REFUSAL_TRYAGAIN;
    }
    if (len >= 11 && memcmp(msg, "CLUSTERDOWN", 11) == 0 && (len == 11 || msg[11] == ' ')) {
        return REFUSAL_CLUSTERDOWN;
    }
    return REFUSAL_NONE;
}

/* Count a refusal and update the map; true when the caller should back off before retrying. */
static bool note_refusal(struct state_cluster *cl, enum refusal what, size_t node, long long slot)
{
    switch (what) {
    case REFUSAL_MOVED:
        /* The spec: take the new owner for this slot now; a MOVED usually means more
         * slots moved (a reshard, a failover), so the whole map is reloaded soon. */
        cl->stats.moved++;
        cl->slots[slot] = (uint16_t)node;
        cl->map_stale = true;
        return false;
    case REFUSAL_ASK:
        cl->stats.ask++;
        return false;
    case REFUSAL_TRYAGAIN:
        cl->stats.tryagain++;
        return true;
    case REFUSAL_CLUSTERDOWN:
        cl->stats.clusterdown++;
        cl->map_stale = true;
        return true;
    case REFUSAL_NONE:
        break;
    }
    return false;
}

/* ---- retrying within the deadline --------------------------------------- */

struct attempt {
    int64_t deadline_ms;
    int backoff_ms;
    char last[256]; /* why the last try failed, for the message at the deadline */
};

static void attempt_init(struct attempt *a, const struct state_cluster *cl)
{
    a->deadline_ms = vg_mono_ms() + cl->deadline_ms;
    a->backoff_ms = STATE_CLUSTER_BACKOFF_MIN_MS;
    snprintf(a->last, sizeof(a->last), "no answer");
}

/* Sleep the next backoff (bounded by the deadline); false when the deadline has passed. */
static bool attempt_wait(struct attempt *a)
{
    int64_t left = a->deadline_ms - vg_mono_ms();
    int64_t ms = a->backoff_ms < left ? a->backoff_ms : left;
    struct timespec ts;

    if (left <= 0) {
        return false;
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    a->backoff_ms = a->backoff_ms * 2 > STATE_CLUSTER_BACKOFF_MAX_MS ? STATE_CLUSTER_BACKOFF_MAX_MS
                                                                     : a->backoff_ms * 2;
    return vg_mono_ms() < a->deadline_ms;
}

static vg_err_t attempt_give_up(const struct state_cluster *cl, const struct attempt *a,
                                char *errstr, size_t errstr_size)
{
    state_set_err(errstr, errstr_size, "redis cluster %s: gave up after %d ms: %s",
                  cl->seed_redacted, cl->deadline_ms, a->last);
    return VG_ERR_BACKEND;
}

static void refusal_text(struct attempt *a, const char *addr, const redisReply *r)
{
    snprintf(a->last, sizeof(a->last), "%s: %.*s", addr, (int)r->len, r->str);
}

/* ---- pipelines outside a transaction ------------------------------------ */

/* Where each unanswered command of a pipeline goes next. */
struct route {
    size_t node; /* STATE_CLUSTER_NO_NODE: the slot's owner */
    bool asking; /* an ASK sent it there: ASKING goes first */
};

static const char asking_resp[] = "*1\r\n$6\r\nASKING\r\n";

static vg_err_t unknown_outcome(struct state_cluster *cl, size_t node, redisReply **replies,
                                size_t n, const char *why, char *errstr, size_t errstr_size)
{
    state_replies_free(replies, n);
    state_set_err(errstr, errstr_size,
                  "redis cluster %s: node %s: %s after the command was sent: outcome unknown",
                  cl->seed_redacted, cl->nodes[node].addr, why);
    return VG_ERR_BACKEND;
}

static vg_err_t pipeline_plain(struct state_cluster *cl, uint16_t slot,
                               const struct state_cluster_batch *b, enum state_cluster_mode mode,
                               redisReply **replies, char *errstr, size_t errstr_size)
{
    struct route *rt = vg_malloc(b->n * sizeof(*rt));
    size_t *sel = vg_malloc(b->n * sizeof(*sel));
    size_t *sel_end = vg_malloc(b->n * sizeof(*sel_end));
    struct vg_buf out = {0};
    struct attempt a;
    int idle_rounds = 0;
    bool need_wait = false;
    vg_err_t err = VG_OK;

    attempt_init(&a, cl);
    for (size_t i = 0; i < b->n; i++) {
        replies[i] = NULL;
        rt[i].node = STATE_CLUSTER_NO_NODE;
        rt[i].asking = false;
    }
    for (;;) {
        size_t first = b->n;
        size_t target;
        size_t n_sel = 0;
        size_t written;
        size_t got = 0;
        bool wait = false;
        bool lost = false;

        for (size_t i = 0; i < b->n && first == b->n; i++) {
            if (!replies[i]) {
                first = i;
            }
        }
        if (first == b->n) {
            break;
        }
        if ((need_wait && !attempt_wait(&a)) || vg_mono_ms() >= a.deadline_ms) {
            state_replies_free(replies, b->n);
            err = attempt_give_up(cl, &a, errstr, errstr_size);
            break;
        }
        refresh_if_stale(cl, slot, a.last, sizeof(a.last));
        target = rt[first].node != STATE_CLUSTER_NO_NODE ? rt[first].node : cl->slots[slot];
        if (target == STATE_CLUSTER_NO_NODE) {
            cl->stats.clusterdown++;
            snprintf(a.last, sizeof(a.last), "slot %u has no owner in the map", slot);
            need_wait = true;
            continue;
        }
        if (node_connect(cl, target, a.last, sizeof(a.last)) != VG_OK) {
            cl->map_stale = true;
            need_wait = true;
            continue;
        }
        /* Every unanswered command for `target`, in order, in one write. */
        vg_buf_reset(&out);
        for (size_t i = first; i < b->n; i++) {
            size_t to = rt[i].node != STATE_CLUSTER_NO_NODE ? rt[i].node : cl->slots[slot];

            if (replies[i] || to != target) {
                continue;
            }
            if (rt[i].asking) {
                vg_buf_append(&out, asking_resp, sizeof(asking_resp) - 1);
            }
            vg_buf_append(&out, b->resp.data + batch_start(b, i), b->ends[i] - batch_start(b, i));
            sel[n_sel] = i;
            sel_end[n_sel++] = out.len;
        }
        if (!node_write(&cl->nodes[target], out.data, out.len, &written)) {
            snprintf(a.last, sizeof(a.last), "%s: %s", cl->nodes[target].addr,
                     cl->nodes[target].conn.ctx->errstr);
            node_lost(cl, target);
            if (mode == STATE_CLUSTER_ONCE && n_sel > 0 && sel_end[0] <= written) {
                err =
                    unknown_outcome(cl, target, replies, b->n, "write failed", errstr, errstr_size);
                break;
            }
            need_wait = true;
            continue;
        }
        for (size_t k = 0; k < n_sel; k++) {
            size_t i = sel[k];
            redisReply *r;
            enum refusal why;
            size_t node = 0;
            long long moved_slot = 0;

            if (rt[i].asking) {
                r = node_read(cl, target, a.last, sizeof(a.last));
                if (!r) {
                    lost = true;
                    break;
                }
                freeReplyObject(r);
            }
            r = node_read(cl, target, a.last, sizeof(a.last));
            if (!r) {
                lost = true;
                break;
            }
            why = refusal_of(cl, r, &node, &moved_slot);
            if (why == REFUSAL_NONE) {
                replies[i] = r;
                got++;
                continue;
            }
            refusal_text(&a, cl->nodes[target].addr, r);
            freeReplyObject(r);
            wait |= note_refusal(cl, why, node, moved_slot);
            rt[i].asking = why == REFUSAL_ASK;
            rt[i].node = why == REFUSAL_ASK ? node : STATE_CLUSTER_NO_NODE;
        }
        if (lost && mode == STATE_CLUSTER_ONCE) {
            err =
                unknown_outcome(cl, target, replies, b->n, "connection lost", errstr, errstr_size);
            break;
        }
        if (lost) {
            /* The context is closed: the commands not answered go again (idempotent). */
            for (size_t i = 0; i < b->n; i++) {
                if (!replies[i]) {
                    rt[i].node = STATE_CLUSTER_NO_NODE;
                    rt[i].asking = false;
                }
            }
            wait = true;
        }
        /* A redirection is followed at once; a second round in a row without
         * an answer (redirections back and forth) waits too. */
        if (got > 0) {
            idle_rounds = 0;
            a.backoff_ms = STATE_CLUSTER_BACKOFF_MIN_MS;
        } else {
            idle_rounds++;
        }
        need_wait = wait || idle_rounds >= 2;
    }
    vg_buf_fini(&out);
    vg_free(sel_end);
    vg_free(sel);
    vg_free(rt);
    return err;
}

/* ---- single-slot transactions ------------------------------------------- */

/* A queued command was refused: EXEC aborts, nothing of the transaction runs. */
static bool queued_refused(redisReply **replies, size_t n_read)
{
    for (size_t i = 1; i < n_read; i++) {
        if (replies[i] && replies[i]->type == REDIS_REPLY_ERROR) {
            return true;
        }
    }
    return false;
}

static vg_err_t pipeline_tx(struct state_cluster *cl, uint16_t slot,
                            const struct state_cluster_batch *b, redisReply **replies, char *errstr,
                            size_t errstr_size)
{
    struct attempt a;
    bool first_try = true;
    int refused = 0;

    VG_ASSERT(b->n >= 2);
    attempt_init(&a, cl);
    for (size_t i = 0; i < b->n; i++) {
        replies[i] = NULL;
    }
    for (;;) {
        size_t target;
        size_t written;
        size_t n_read = 0;
        const redisReply *exec;
        bool wait = false;
        bool redirected = false;

        if (!first_try && vg_mono_ms() >= a.deadline_ms) {
            return attempt_give_up(cl, &a, errstr, errstr_size);
        }
        first_try = false;
        refresh_if_stale(cl, slot, a.last, sizeof(a.last));
        target = cl->slots[slot];
        if (target == STATE_CLUSTER_NO_NODE) {
            cl->stats.clusterdown++;
            snprintf(a.last, sizeof(a.last), "slot %u has no owner in the map", slot);
            if (!attempt_wait(&a)) {
                return attempt_give_up(cl, &a, errstr, errstr_size);
            }
            continue;
        }
        if (node_connect(cl, target, a.last, sizeof(a.last)) != VG_OK) {
            cl->map_stale = true;
            if (!attempt_wait(&a)) {
                return attempt_give_up(cl, &a, errstr, errstr_size);
            }
            continue;
        }
        if (!node_write(&cl->nodes[target], b->resp.data, b->resp.len, &written)) {
            /* EXEC is the last byte written: a failed write never delivered it whole. */
            snprintf(a.last, sizeof(a.last), "%s: %s", cl->nodes[target].addr,
                     cl->nodes[target].conn.ctx->errstr);
            node_lost(cl, target);
            if (!attempt_wait(&a)) {
                return attempt_give_up(cl, &a, errstr, errstr_size);
            }
            continue;
        }
        for (; n_read < b->n; n_read++) {
            replies[n_read] = node_read(cl, target, a.last, sizeof(a.last));
            if (!replies[n_read]) {
                break;
            }
        }
        if (n_read < b->n) {
            /* EXEC was written. Unless a queued command was refused (then EXEC
             * aborted), the transaction may have run: the caller decides. */
            bool aborted = queued_refused(replies, n_read);

            state_replies_free(replies, n_read);
            if (!aborted) {
                return unknown_outcome(cl, target, replies, 0, "connection lost", errstr,
                                       errstr_size);
            }
            if (!attempt_wait(&a)) {
                return attempt_give_up(cl, &a, errstr, errstr_size);
            }
            continue;
        }
        exec = replies[b->n - 1];
        if (exec->type == REDIS_REPLY_ARRAY) {
            return VG_OK;
        }
        /* Refused unapplied: find the cluster's reason among the queued replies and EXEC. */
        for (size_t i = 0; i < b->n; i++) {
            size_t node = 0;
            long long moved_slot = 0;
            enum refusal why = refusal_of(cl, replies[i], &node, &moved_slot);

            if (why == REFUSAL_NONE) {
                continue;
            }
            refusal_text(&a, cl->nodes[target].addr, replies[i]);
            wait |= note_refusal(cl, why, node, moved_slot);
            /* ASK inside a transaction is not followed: the slot is being migrated
             * and its keys are split between two nodes; ASKING on the target could
             * create a key the source still holds. Wait for the migration to end. */
            wait |= why == REFUSAL_ASK;
            redirected = true;
            break;
        }
        if (!redirected) {
            vg_err_t err;

            if (exec->type == REDIS_REPLY_NIL) {
                state_set_err(errstr, errstr_size, "redis %s: EXEC returned nil",
                              cl->nodes[target].addr);
                err = VG_ERR_BACKEND;
            } else {
                const redisReply *bad = exec;

                for (size_t i = 0; i < b->n; i++) {
                    if (replies[i]->type == REDIS_REPLY_ERROR) {
                        bad = replies[i];
                        break;
                    }
                }
                err = state_reply_error(&cl->nodes[target].conn, "transaction", bad, errstr,
                                        errstr_size);
            }
            state_replies_free(replies, b->n);
            return err;
        }
        state_replies_free(replies, b->n);
        cl->stats.tx_retries++;
        /* A MOVED is followed at once; the second refusal in a row (redirections back and
         * forth while the map settles) waits too. */
        refused++;
        if ((wait || refused >= 2) && !attempt_wait(&a)) {
            return attempt_give_up(cl, &a, errstr, errstr_size);
        }
    }
}

vg_err_t state_cluster_pipeline(struct state_cluster *cl, uint16_t slot,
                                const struct state_cluster_batch *b, enum state_cluster_mode mode,
                                redisReply **replies, char *errstr, size_t errstr_size)
{
    VG_ASSERT(slot < STATE_CLUSTER_SLOTS);
    VG_ASSERT(b->n > 0);
    if (mode == STATE_CLUSTER_TX) {
        return pipeline_tx(cl, slot, b, replies, errstr, errstr_size);
    }
    return pipeline_plain(cl, slot, b, mode, replies, errstr, errstr_size);
}

vg_err_t state_cluster_run(struct state_cluster *cl, uint16_t slot, enum state_cluster_mode mode,
                           int argc, const char *const *argv, const size_t *argvlen,
                           redisReply **reply, char *errstr, size_t errstr_size)
{
    struct state_cluster_batch b = {0};
    redisReply *r = NULL;
    vg_err_t err;

    VG_ASSERT(mode != STATE_CLUSTER_TX);
    if (reply) {
        *reply = NULL;
    }
    state_cluster_batch_add(&b, argc, argv, argvlen);
    err = state_cluster_pipeline(cl, slot, &b, mode, &r, errstr, errstr_size);
    state_cluster_batch_fini(&b);
    if (err != VG_OK) {
        return err;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        state_set_err(errstr, errstr_size, "redis cluster %s: %.*s: %.*s", cl->seed_redacted,
                      (int)argvlen[0], argv[0], (int)r->len, r->str);
        err = state_error_class(r->str, r->len);
        freeReplyObject(r);
        return err;
    }
    if (reply) {
        *reply = r;
    } else {
        freeReplyObject(r);
    }
    return VG_OK;
}

vg_err_t state_cluster_each_primary(struct state_cluster *cl,
                                    vg_err_t (*fn)(void *arg, uint16_t slot, const char *addr),
                                    void *arg, char *errstr, size_t errstr_size)
{
    bool *seen;
    vg_err_t err = VG_OK;

    if (cl->map_stale) {
        (void)state_cluster_refresh(cl, errstr, errstr_size);
    }
    seen = vg_calloc(cl->n_nodes, sizeof(*seen));
    for (size_t s = 0; s < STATE_CLUSTER_SLOTS && err == VG_OK; s++) {
        size_t nd = cl->slots[s];

        if (nd == STATE_CLUSTER_NO_NODE || seen[nd]) {
            continue;
        }
        seen[nd] = true;
        err = fn(arg, (uint16_t)s, cl->nodes[nd].addr);
    }
    vg_free(seen);
    return err;
}

/* ---- lifecycle ---------------------------------------------------------- */

vg_err_t state_cluster_new(struct state_cluster **out, const char *url, char *errstr,
                           size_t errstr_size)
{
    struct state_cluster *cl = vg_calloc(1, sizeof(*cl));
    vg_err_t err;

    *out = NULL;
    err = state_url_parse(url, &cl->seed, errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(cl);
        return err;
    }
    vg_redact_url(url, cl->seed_redacted, sizeof(cl->seed_redacted));
    if (cl->seed.is_unix || cl->seed.db != 0) {
        state_set_err(errstr, errstr_size,
                      "redis URL \"%s\": a cluster wants redis://host:port of one node, db 0",
                      cl->seed_redacted);
        state_cluster_destroy(cl);
        return VG_ERR_INVALID;
    }
    cl->deadline_ms = STATE_CLUSTER_DEADLINE_MS;
    for (size_t s = 0; s < STATE_CLUSTER_SLOTS; s++) {
        cl->slots[s] = STATE_CLUSTER_NO_NODE;
    }
    (void)node_find(cl, cl->seed.host, cl->seed.port);
    err = load_slots(cl, 0, errstr, errstr_size);
    if (err != VG_OK) {
        if (err == VG_ERR_INVALID && strstr(errstr, "cluster support disabled")) {
            state_set_err(errstr, errstr_size,
                          "redis %s: not in cluster mode (cluster-enabled no): drop "
                          "`cluster: true` or name a cluster node",
                          cl->seed_redacted);
        }
        state_cluster_destroy(cl);
        return err;
    }
    *out = cl;
    return VG_OK;
}

void state_cluster_destroy(struct state_cluster *cl)
{
    if (!cl) {
        return;
    }
    for (size_t i = 0; i < cl->n_nodes; i++) {
        state_redis_close(&cl->nodes[i].conn);
        state_url_fini(&cl->nodes[i].conn.url);
        vg_free(cl->nodes[i].addr);
    }
    vg_free(cl->nodes);
    state_url_fini(&cl->seed);
    vg_free(cl);
}
