/*
 * The outbox reader: consumer group "dispatch" on P:outbox. A read returns
 * the consumer's own entries left pending by a previous run, then entries
 * idle too long for any consumer (XAUTOCLAIM, Redis >= 7), then new ones.
 * Acknowledging deletes the entry, so P:outbox holds exactly the backlog.
 * With the partitioned layout there is one such stream per scope, all read
 * by one call (each entry says its scope). Pages are written by
 * vg_state_commit (state.c) and the dispatcher's commits (state_audit.c),
 * never on their own here; the one writer of an entry's fields,
 * state_append_outbox_entry, is here next to their reader.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "state_cluster.h"
#include "state_int.h"
#include "vigil/util.h"

/* The partitioned layout: how often the registry of partitions is read again, how often the
 * streams are searched for a dead instance's entries, how long a cluster read waits when no
 * stream had anything (it cannot BLOCK on several slots), and the least per-stream COUNT. */
#define STREAMS_REFRESH_MS 1000
#define STREAMS_CLAIM_MS 1000
#define STREAMS_CLUSTER_WAIT_MS 10
#define STREAMS_MIN_COUNT 16

/* Collected entries of one read, plus deleted ids to acknowledge. */
struct read_acc {
    struct vg_outbox_entry *v;
    size_t n;
    size_t cap;
    size_t max;
    char **ack;
    size_t n_ack;
    size_t cap_ack;
    /* the partitioned layout: the stream being taken from; each ack's stream */
    const struct state_outbox_stream *stream;
    size_t stream_idx;
    bool soft_max; /* a multi-stream read: keep what came (it is pending for us now) */
    size_t *ack_stream;
    size_t cap_ack_stream;
};

/* An outbox entry's fields (vg_state_commit writes them). */
enum { ENTRY_ID, ENTRY_SINK, ENTRY_PAGER, ENTRY_BODY, ENTRY_ORIGIN, ENTRY_N };
static const char *const entry_fields[ENTRY_N] = {"id", "sink", "pager", "body", "origin"};

void state_append_outbox_entry(struct vg_state *st, struct state_cmd *c, const char *id,
                               const char *sink, const char *pager, const char *body,
                               size_t body_len, const char *origin)
{
    state_cmd_str(c, "XADD");
    state_cmd_fmt(c, "%s:outbox", st->prefix);
    state_cmd_str(c, "*");
    state_cmd_field(c, "id", id);
    state_cmd_field(c, "sink", sink);
    state_cmd_field(c, "pager", pager);
    state_cmd_str(c, "body");
    state_cmd_arg(c, body ? body : "", body ? body_len : 0);
    if (origin) {
        state_cmd_field(c, "origin", origin);
    }
    state_cmd_append(st, c);
}

static bool same_scope(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool acc_has(const struct read_acc *acc, const redisReply *id)
{
    const char *scope = acc->stream ? acc->stream->scope : NULL;

    for (size_t i = 0; i < acc->n; i++) {
        if (strlen(acc->v[i].stream_id) == id->len &&
            memcmp(acc->v[i].stream_id, id->str, id->len) == 0 &&
            same_scope(acc->v[i].scope, scope)) {
            return true;
        }
    }
    return false;
}

/*
 * Take one [id, [field, value, ...]] element. A deleted entry still
 * pending comes back as [id, nil]: it is queued for XACK and skipped.
 */
static void acc_entry(struct read_acc *acc, const redisReply *e)
{
    const redisReply *id;
    const redisReply *fields;
    const redisReply *f[ENTRY_N];
    struct vg_outbox_entry *out;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    id = e->element[0];
    fields = e->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) {
        if (acc->stream) {
            size_t n = acc->n_ack;

            *VG_ARRAY_PUSH(acc->ack_stream, n, acc->cap_ack_stream) = acc->stream_idx;
        }
        *VG_ARRAY_PUSH(acc->ack, acc->n_ack, acc->cap_ack) = vg_strndup(id->str, id->len);
        return;
    }
    if (acc_has(acc, id) || (acc->n >= acc->max && !acc->soft_max)) {
        return;
    }
    out = VG_ARRAY_PUSH(acc->v, acc->n, acc->cap);
    memset(out, 0, sizeof(*out));
    out->stream_id = vg_strndup(id->str, id->len);
    if (acc->stream && acc->stream->scope) {
        out->scope = vg_strdup(acc->stream->scope);
    }
    state_stream_fields(fields, entry_fields, ENTRY_N, f);
    /* Missing fields read as "": the dispatcher dead-letters what it cannot parse. */
    out->id = state_reply_str(f[ENTRY_ID], "");
    out->sink = state_reply_str(f[ENTRY_SINK], "");
    out->pager = state_reply_str(f[ENTRY_PAGER], "");
    out->body = state_reply_str(f[ENTRY_BODY], "");
    out->body_len =
        f[ENTRY_BODY] && f[ENTRY_BODY]->type == REDIS_REPLY_STRING ? f[ENTRY_BODY]->len : 0;
    out->origin = state_reply_str(f[ENTRY_ORIGIN], NULL);
}

static void acc_entries(struct read_acc *acc, const redisReply *list)
{
    if (list->type != REDIS_REPLY_ARRAY) {
        return;
    }
    for (size_t i = 0; i < list->elements; i++) {
        acc_entry(acc, list->element[i]);
    }
}

static vg_err_t ensure_group(struct vg_state *st, const char *key, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err;

    if (st->group_ready) {
        return VG_OK;
    }
    state_cmd_str(&c, "XGROUP");
    state_cmd_str(&c, "CREATE");
    state_cmd_str(&c, key);
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    state_cmd_str(&c, "0");
    state_cmd_str(&c, "MKSTREAM");
    /* BUSYGROUP: it exists already, which is all we wanted. */
    err = state_run(st, &c, "XGROUP CREATE", "BUSYGROUP", NULL, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err == VG_OK) {
        st->group_ready = true;
    }
    return err;
}

/* The consumer's own pending entries, once per consumer name per vg_state. */
static vg_err_t read_own_pending(struct vg_state *st, const char *key, const char *consumer,
                                 struct read_acc *acc, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    size_t want = acc->max - acc->n;
    size_t got = 0;
    vg_err_t err;

    state_cmd_str(&c, "XREADGROUP");
    state_cmd_str(&c, "GROUP");
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    state_cmd_str(&c, consumer);
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, (int64_t)want);
    state_cmd_str(&c, "STREAMS");
    state_cmd_str(&c, key);
    state_cmd_str(&c, st->pending_cursor);
    err = state_run(st, &c, "XREADGROUP pending", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        const redisReply *list = reply->element[0]->element[1];

        acc_entries(acc, list);
        if (list->type == REDIS_REPLY_ARRAY) {
            got = list->elements;
            if (got > 0) {
                const redisReply *last = list->element[got - 1];

                if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 &&
                    last->element[0]->type == REDIS_REPLY_STRING) {
                    vg_free(st->pending_cursor);
                    st->pending_cursor = vg_strndup(last->element[0]->str, last->element[0]->len);
                }
            }
        }
    }
    if (got < want) {
        st->pending_done = true;
    }
    freeReplyObject(reply);
    return VG_OK;
}

static vg_err_t autoclaim(struct vg_state *st, const char *key, const char *consumer,
                          int64_t claim_idle_ms, struct read_acc *acc, char *errstr,
                          size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err;

    state_cmd_str(&c, "XAUTOCLAIM");
    state_cmd_str(&c, key);
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    state_cmd_str(&c, consumer);
    state_cmd_i64(&c, claim_idle_ms);
    state_cmd_str(&c, st->claim_cursor);
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, (int64_t)(acc->max - acc->n));
    err = state_run(st, &c, "XAUTOCLAIM", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    /* [next cursor, entries, deleted ids]: deleted ones are already out of the PEL. */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) {
        if (reply->element[0]->type == REDIS_REPLY_STRING) {
            vg_free(st->claim_cursor);
            st->claim_cursor = vg_strndup(reply->element[0]->str, reply->element[0]->len);
        }
        acc_entries(acc, reply->element[1]);
    }
    freeReplyObject(reply);
    return VG_OK;
}

static struct timeval ms_to_tv(int64_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

/* "XREADGROUP GROUP <group> <consumer> COUNT <count> [BLOCK <ms>] STREAMS": keys and ">"s follow.
 */
static void xreadgroup_head(struct state_cmd *c, const char *consumer, int64_t count, int block_ms)
{
    state_cmd_str(c, "XREADGROUP");
    state_cmd_str(c, "GROUP");
    state_cmd_str(c, STATE_OUTBOX_GROUP);
    state_cmd_str(c, consumer);
    state_cmd_str(c, "COUNT");
    state_cmd_i64(c, count);
    if (block_ms > 0) {
        /* Never BLOCK 0: that would wait forever. */
        state_cmd_str(c, "BLOCK");
        state_cmd_i64(c, block_ms);
    }
    state_cmd_str(c, "STREAMS");
}

/*
 * Run the XREADGROUP in c, which BLOCKs up to block_ms (0: not at all). *reply
 * is the caller's whenever the command ran, even when the result is an error.
 */
static vg_err_t run_blocking(struct vg_state *st, struct state_cmd *c, int block_ms,
                             redisReply **reply, char *errstr, size_t errstr_size)
{
    /* A long BLOCK must not trip the command timeout. */
    bool long_block = block_ms > 0 && (int64_t)block_ms + 1000 > STATE_COMMAND_TIMEOUT_MS;
    vg_err_t err;

    *reply = NULL;
    if (long_block && redisSetTimeout(st->ctx, ms_to_tv((int64_t)block_ms +
                                                        STATE_COMMAND_TIMEOUT_MS)) != REDIS_OK) {
        return state_ctx_failed(st, "XREADGROUP: set timeout", errstr, errstr_size);
    }
    err = state_run(st, c, "XREADGROUP", NULL, reply, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    /*
     * A context left with the long timeout would let a hung server hold any
     * later command that long: drop it instead (the next call reconnects);
     * the entries just read are pending for us and handed back all the same.
     */
    if (long_block && redisSetTimeout(st->ctx, ms_to_tv(STATE_COMMAND_TIMEOUT_MS)) != REDIS_OK) {
        return state_ctx_failed(st, "XREADGROUP: reset timeout", errstr, errstr_size);
    }
    return VG_OK;
}

static vg_err_t read_new(struct vg_state *st, const char *key, const char *consumer, int block_ms,
                         struct read_acc *acc, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err;

    xreadgroup_head(&c, consumer, (int64_t)(acc->max - acc->n), block_ms);
    state_cmd_str(&c, key);
    state_cmd_str(&c, ">");
    err = run_blocking(st, &c, block_ms, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (!reply) {
        return err;
    }
    /* nil: BLOCK timed out with nothing new. */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        acc_entries(acc, reply->element[0]->element[1]);
    }
    freeReplyObject(reply);
    return err;
}

static vg_err_t ack_deleted(struct vg_state *st, const char *key, struct read_acc *acc,
                            char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err;

    state_cmd_str(&c, "XACK");
    state_cmd_str(&c, key);
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    for (size_t i = 0; i < acc->n_ack; i++) {
        state_cmd_str(&c, acc->ack[i]);
    }
    err = state_run(st, &c, "XACK", NULL, NULL, errstr, errstr_size);
    state_cmd_fini(&c);
    return err;
}

static void acc_free_acks(struct read_acc *acc)
{
    for (size_t i = 0; i < acc->n_ack; i++) {
        vg_free(acc->ack[i]);
    }
    vg_free(acc->ack);
    acc->ack = NULL;
    acc->n_ack = 0;
    acc->cap_ack = 0;
    vg_free(acc->ack_stream);
    acc->ack_stream = NULL;
    acc->cap_ack_stream = 0;
}

static vg_err_t read_once(struct vg_state *st, const char *key, const char *consumer, int block_ms,
                          int64_t claim_idle_ms, struct read_acc *acc, char *errstr,
                          size_t errstr_size)
{
    vg_err_t err = ensure_group(st, key, errstr, errstr_size);

    if (err == VG_OK && !st->pending_done && acc->n < acc->max) {
        err = read_own_pending(st, key, consumer, acc, errstr, errstr_size);
    }
    if (err == VG_OK && claim_idle_ms >= 0 && acc->n < acc->max) {
        err = autoclaim(st, key, consumer, claim_idle_ms, acc, errstr, errstr_size);
    }
    if (err == VG_OK && acc->n < acc->max) {
        /* Block only when there is nothing to hand back yet. */
        err = read_new(st, key, consumer, acc->n == 0 ? block_ms : 0, acc, errstr, errstr_size);
    }
    if (err == VG_OK && acc->n_ack > 0) {
        err = ack_deleted(st, key, acc, errstr, errstr_size);
    }
    acc_free_acks(acc);
    return err;
}

/* ---- the partitioned layout: one stream per scope ------------------------------------------ */

static void stream_fini(struct state_outbox_stream *s)
{
    vg_free(s->scope);
    vg_free(s->key);
    vg_free(s->pending_cursor);
    vg_free(s->claim_cursor);
}

void state_outbox_streams_free(struct vg_state *st)
{
    for (size_t i = 0; i < st->n_streams; i++) {
        stream_fini(&st->streams[i]);
    }
    vg_free(st->streams);
    st->streams = NULL;
    st->n_streams = 0;
    st->cap_streams = 0;
}

static void stream_add(struct vg_state *st, const char *scope)
{
    struct state_outbox_stream *s = VG_ARRAY_PUSH(st->streams, st->n_streams, st->cap_streams);

    memset(s, 0, sizeof(*s));
    s->scope = scope ? vg_strdup(scope) : NULL;
    s->key = scope ? vg_asprintf("%s:{%s}:outbox", st->name, scope)
                   : vg_asprintf("%s:outbox", st->global);
    s->pending_cursor = vg_strdup("0");
    s->claim_cursor = vg_strdup("0-0");
}

/*
 * The streams to read: the global scope's (pages written before the layout
 * changed, or by hand) and every registered partition's. The registry only
 * grows; a new partition's pages wait at most STREAMS_REFRESH_MS for it.
 */
static vg_err_t streams_refresh(struct vg_state *st, char *errstr, size_t errstr_size)
{
    struct vg_offset *v = NULL;
    size_t n = 0;
    int64_t now = vg_mono_ms();
    vg_err_t err;

    if (st->n_streams == 0) {
        stream_add(st, NULL);
    } else if (now - st->streams_listed_ms < STREAMS_REFRESH_MS) {
        return VG_OK;
    }
    err = vg_state_scopes(st, &v, &n, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    st->streams_listed_ms = now;
    for (size_t i = 0; i < n; i++) {
        char *scope = vg_asprintf("%s/%d", v[i].topic, (int)v[i].partition);
        bool known = false;

        for (size_t k = 1; k < st->n_streams && !known; k++) {
            known = strcmp(st->streams[k].scope, scope) == 0;
        }
        if (!known) {
            stream_add(st, scope);
        }
        vg_free(scope);
    }
    vg_state_scopes_free(v, n);
    return VG_OK;
}

/* Builds stream s's command into c. */
typedef void (*stream_cmd_fn)(struct vg_state *st, struct state_cmd *c,
                              const struct state_outbox_stream *s, const void *arg);

/* The node that serves stream s's slot on a cluster (the map as loaded); 0 on one Redis. */
static uint16_t stream_node(const struct vg_state *st, const struct state_outbox_stream *s)
{
    const char *tag = s->scope ? s->scope : st->global_tag;

    return st->cluster ? st->cluster->slots[state_cluster_keyslot(tag, strlen(tag))] : 0;
}

/*
 * One command per stream of idx[0..n), pipelined per node: on one Redis
 * all in one round trip, on a cluster one round trip per node that serves
 * some of them (entering the first one's scope routes st to that node). An
 * error reply whose first word is `allow` is handed back; any other fails
 * the lot (a NOGROUP also marks that stream's group for re-creation).
 * replies[i] belongs to idx[i]; free with state_replies_free.
 */
static vg_err_t streams_run(struct vg_state *st, const size_t *idx, size_t n, stream_cmd_fn build,
                            const void *arg, const char *what, const char *allow,
                            redisReply **replies, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    uint16_t *node = vg_calloc(n + 1, sizeof(*node));
    bool *done = vg_calloc(n + 1, sizeof(*done));
    size_t *ord = vg_calloc(n + 1, sizeof(*ord));
    redisReply **got = vg_calloc(n + 1, sizeof(*got));
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        node[i] = stream_node(st, &st->streams[idx[i]]);
        replies[i] = NULL;
    }
    for (size_t i = 0; i < n && err == VG_OK; i++) {
        size_t m = 0;

        if (done[i]) {
            continue;
        }
        if (st->cluster) {
            err = vg_state_scope_set(st, st->streams[idx[i]].scope, errstr, errstr_size);
        }
        if (err == VG_OK) {
            err = state_need_ctx(st, errstr, errstr_size);
        }
        if (err != VG_OK) {
            break;
        }
        for (size_t k = i; k < n; k++) {
            if (!done[k] && node[k] == node[i]) {
                build(st, &c, &st->streams[idx[k]], arg);
                state_cmd_append(st, &c);
                ord[m++] = k;
            }
        }
        err = state_read_replies(st, m, got, what, errstr, errstr_size);
        if (err != VG_OK) {
            break;
        }
        for (size_t x = 0; x < m; x++) {
            replies[ord[x]] = got[x];
            done[ord[x]] = true;
        }
        for (size_t x = 0; x < m && err == VG_OK; x++) {
            if (got[x]->type != REDIS_REPLY_ERROR || (allow && state_error_is(got[x], allow))) {
                continue;
            }
            if (state_error_is(got[x], "NOGROUP")) {
                st->group_ready = false;
                st->streams[idx[ord[x]]].group_ready = false;
            }
            err = state_reply_error(st, what, got[x], errstr, errstr_size);
        }
    }
    state_cmd_fini(&c);
    if (err != VG_OK) {
        for (size_t i = 0; i < n; i++) {
            if (replies[i]) {
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
        }
    }
    vg_free(node);
    vg_free(done);
    vg_free(ord);
    vg_free(got);
    return err;
}

static void build_group_create(struct vg_state *st, struct state_cmd *c,
                               const struct state_outbox_stream *s, const void *arg)
{
    (void)st;
    (void)arg;
    state_cmd_str(c, "XGROUP");
    state_cmd_str(c, "CREATE");
    state_cmd_str(c, s->key);
    state_cmd_str(c, STATE_OUTBOX_GROUP);
    state_cmd_str(c, "0");
    state_cmd_str(c, "MKSTREAM");
}

struct read_args {
    const char *consumer;
    int64_t count;
    int64_t claim_idle_ms;
};

static void build_pending(struct vg_state *st, struct state_cmd *c,
                          const struct state_outbox_stream *s, const void *arg)
{
    const struct read_args *a = arg;

    (void)st;
    xreadgroup_head(c, a->consumer, a->count, 0);
    state_cmd_str(c, s->key);
    state_cmd_str(c, s->pending_cursor);
}

static void build_autoclaim(struct vg_state *st, struct state_cmd *c,
                            const struct state_outbox_stream *s, const void *arg)
{
    const struct read_args *a = arg;

    (void)st;
    state_cmd_str(c, "XAUTOCLAIM");
    state_cmd_str(c, s->key);
    state_cmd_str(c, STATE_OUTBOX_GROUP);
    state_cmd_str(c, a->consumer);
    state_cmd_i64(c, a->claim_idle_ms);
    state_cmd_str(c, s->claim_cursor);
    state_cmd_str(c, "COUNT");
    state_cmd_i64(c, a->count);
}

static void build_new(struct vg_state *st, struct state_cmd *c, const struct state_outbox_stream *s,
                      const void *arg)
{
    const struct read_args *a = arg;

    (void)st;
    xreadgroup_head(c, a->consumer, a->count, 0);
    state_cmd_str(c, s->key);
    state_cmd_str(c, ">");
}

struct ack_args {
    const struct read_acc *acc;
};

static void build_ack(struct vg_state *st, struct state_cmd *c, const struct state_outbox_stream *s,
                      const void *arg)
{
    const struct read_acc *acc = ((const struct ack_args *)arg)->acc;
    size_t si = (size_t)(s - st->streams);

    state_cmd_str(c, "XACK");
    state_cmd_str(c, s->key);
    state_cmd_str(c, STATE_OUTBOX_GROUP);
    for (size_t i = 0; i < acc->n_ack; i++) {
        if (acc->ack_stream[i] == si) {
            state_cmd_str(c, acc->ack[i]);
        }
    }
}

static size_t stream_by_key(const struct vg_state *st, const redisReply *key)
{
    for (size_t i = 0; key->type == REDIS_REPLY_STRING && i < st->n_streams; i++) {
        if (strlen(st->streams[i].key) == key->len &&
            memcmp(st->streams[i].key, key->str, key->len) == 0) {
            return i;
        }
    }
    return st->n_streams;
}

/*
 * An XREADGROUP reply, [[key, entries], ...] (nil: nothing), into acc,
 * each entry with its stream's scope. `pending`: the own-pending read of
 * the streams in idx (count each): move their cursors, and mark a stream
 * done once it returned fewer than asked.
 */
static bool take_streams(struct vg_state *st, const redisReply *reply, struct read_acc *acc,
                         bool pending, int64_t count)
{
    bool any = false;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return false;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *kv = reply->element[i];
        const redisReply *list;
        size_t si;

        if (kv->type != REDIS_REPLY_ARRAY || kv->elements != 2) {
            continue;
        }
        si = stream_by_key(st, kv->element[0]);
        list = kv->element[1];
        if (si == st->n_streams || list->type != REDIS_REPLY_ARRAY) {
            continue;
        }
        any = true;
        acc->stream = &st->streams[si];
        acc->stream_idx = si;
        acc_entries(acc, list);
        if (pending) {
            struct state_outbox_stream *s = &st->streams[si];

            if (list->elements > 0) {
                const redisReply *last = list->element[list->elements - 1];

                if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 &&
                    last->element[0]->type == REDIS_REPLY_STRING) {
                    vg_free(s->pending_cursor);
                    s->pending_cursor = vg_strndup(last->element[0]->str, last->element[0]->len);
                }
            }
            if ((int64_t)list->elements < count) {
                s->pending_done = true;
            }
        }
    }
    acc->stream = NULL;
    return any;
}

/* One XREADGROUP over every stream (one Redis: the keys may span slots), blocking. */
static vg_err_t read_new_all(struct vg_state *st, const char *consumer, int64_t count, int block_ms,
                             struct read_acc *acc, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err;

    xreadgroup_head(&c, consumer, count, block_ms);
    for (size_t i = 0; i < st->n_streams; i++) {
        state_cmd_str(&c, st->streams[i].key);
    }
    for (size_t i = 0; i < st->n_streams; i++) {
        state_cmd_str(&c, ">");
    }
    err = run_blocking(st, &c, block_ms, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (reply) {
        take_streams(st, reply, acc, false, count);
        freeReplyObject(reply);
    }
    return err;
}

static void nap_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

    nanosleep(&ts, NULL);
}

static vg_err_t read_streams(struct vg_state *st, const char *consumer, int block_ms,
                             int64_t claim_idle_ms, struct read_acc *acc, char *errstr,
                             size_t errstr_size)
{
    size_t *idx = vg_calloc(st->n_streams, sizeof(*idx));
    redisReply **replies = vg_calloc(st->n_streams, sizeof(*replies));
    size_t n = 0;
    struct read_args a = {.consumer = consumer, .claim_idle_ms = claim_idle_ms};
    size_t per;
    vg_err_t err = VG_OK;

    /* COUNT is per stream: a share of what is wanted, but never so little that one busy
     * partition drains a few entries a round trip. */
    per = (acc->max + st->n_streams - 1) / st->n_streams;
    per = per < STREAMS_MIN_COUNT ? STREAMS_MIN_COUNT : per;
    per = per > acc->max ? acc->max : per;
    a.count = (int64_t)per;
    acc->soft_max = true;

    if (!st->group_ready) {
        for (size_t i = 0; i < st->n_streams; i++) {
            st->streams[i].group_ready = false;
        }
        st->group_ready = true;
    }
    if (!st->pending_done) {
        for (size_t i = 0; i < st->n_streams; i++) {
            st->streams[i].pending_done = false;
            vg_free(st->streams[i].pending_cursor);
            st->streams[i].pending_cursor = vg_strdup("0");
        }
        st->pending_done = true;
    }
    /* XGROUP CREATE ... MKSTREAM where not done yet: "group ready" is per stream. */
    for (size_t i = 0; i < st->n_streams; i++) {
        if (!st->streams[i].group_ready) {
            idx[n++] = i;
        }
    }
    if (n > 0) {
        err = streams_run(st, idx, n, build_group_create, NULL, "XGROUP CREATE", "BUSYGROUP",
                          replies, errstr, errstr_size);
        if (err == VG_OK) {
            for (size_t i = 0; i < n; i++) {
                st->streams[idx[i]].group_ready = true;
            }
            state_replies_free(replies, n);
        }
    }
    /* Own pending entries left by a previous run of this consumer name. */
    n = 0;
    for (size_t i = 0; err == VG_OK && i < st->n_streams; i++) {
        if (!st->streams[i].pending_done) {
            idx[n++] = i;
        }
    }
    if (err == VG_OK && n > 0) {
        err = streams_run(st, idx, n, build_pending, &a, "XREADGROUP pending", NULL, replies,
                          errstr, errstr_size);
        if (err == VG_OK) {
            for (size_t i = 0; i < n; i++) {
                if (!take_streams(st, replies[i], acc, true, a.count)) {
                    st->streams[idx[i]].pending_done = true; /* nil: nothing pending */
                }
            }
            state_replies_free(replies, n);
        }
    }
    /* A dead instance's entries: one pass over the streams a second, or on while one had more. */
    n = 0;
    if (err == VG_OK && claim_idle_ms >= 0) {
        bool due = vg_mono_ms() - st->streams_claimed_ms >= STREAMS_CLAIM_MS;

        for (size_t i = 0; i < st->n_streams; i++) {
            if (due || strcmp(st->streams[i].claim_cursor, "0-0") != 0) {
                idx[n++] = i;
            }
        }
        if (due) {
            st->streams_claimed_ms = vg_mono_ms();
        }
    }
    if (err == VG_OK && n > 0) {
        err = streams_run(st, idx, n, build_autoclaim, &a, "XAUTOCLAIM", NULL, replies, errstr,
                          errstr_size);
        for (size_t i = 0; err == VG_OK && i < n; i++) {
            const redisReply *r = replies[i];
            struct state_outbox_stream *s = &st->streams[idx[i]];

            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
                if (r->element[0]->type == REDIS_REPLY_STRING) {
                    vg_free(s->claim_cursor);
                    s->claim_cursor = vg_strndup(r->element[0]->str, r->element[0]->len);
                }
                acc->stream = s;
                acc->stream_idx = idx[i];
                acc_entries(acc, r->element[1]);
                acc->stream = NULL;
            }
        }
        if (err == VG_OK) {
            state_replies_free(replies, n);
        }
    }
    /* New entries. */
    if (err == VG_OK && acc->n < acc->max) {
        if (!st->cluster) {
            err = read_new_all(st, consumer, a.count, acc->n == 0 ? block_ms : 0, acc, errstr,
                               errstr_size);
        } else {
            for (size_t i = 0; i < st->n_streams; i++) {
                idx[i] = i;
            }
            n = st->n_streams;
            err = streams_run(st, idx, n, build_new, &a, "XREADGROUP", NULL, replies, errstr,
                              errstr_size);
            if (err == VG_OK) {
                for (size_t i = 0; i < n; i++) {
                    take_streams(st, replies[i], acc, false, a.count);
                }
                state_replies_free(replies, n);
                /* No BLOCK across slots: a short wait instead, so an idle dispatcher
                 * costs one XREADGROUP per stream every STREAMS_CLUSTER_WAIT_MS. */
                if (acc->n == 0 && block_ms > 0) {
                    nap_ms(block_ms < STREAMS_CLUSTER_WAIT_MS ? block_ms : STREAMS_CLUSTER_WAIT_MS);
                }
            }
        }
    }
    /* Entries deleted while pending: acknowledged in their stream. */
    if (err == VG_OK && acc->n_ack > 0) {
        n = 0;
        for (size_t i = 0; i < st->n_streams; i++) {
            for (size_t k = 0; k < acc->n_ack; k++) {
                if (acc->ack_stream[k] == i) {
                    idx[n++] = i;
                    break;
                }
            }
        }
        {
            struct ack_args aa = {acc};

            err =
                streams_run(st, idx, n, build_ack, &aa, "XACK", NULL, replies, errstr, errstr_size);
        }
        if (err == VG_OK) {
            state_replies_free(replies, n);
        }
    }
    acc_free_acks(acc);
    vg_free(idx);
    vg_free(replies);
    return err;
}

vg_err_t vg_state_outbox_read(struct vg_state *st, const char *consumer, size_t max, int block_ms,
                              int64_t claim_idle_ms, struct vg_outbox_entry **out, size_t *n_out,
                              char *errstr, size_t errstr_size)
{
    struct read_acc acc = {0};
    char *key;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK || max == 0) {
        return err;
    }
    if (!st->pending_consumer || strcmp(st->pending_consumer, consumer) != 0) {
        vg_free(st->pending_consumer);
        vg_free(st->pending_cursor);
        st->pending_consumer = vg_strdup(consumer);
        st->pending_cursor = vg_strdup("0");
        st->pending_done = false;
    }
    acc.max = max;
    if (st->partitioned) {
        err = streams_refresh(st, errstr, errstr_size);
        if (err == VG_OK) {
            err = read_streams(st, consumer, block_ms, claim_idle_ms, &acc, errstr, errstr_size);
        }
        if (err != VG_OK && !st->group_ready && st->ctx && acc.n == 0) {
            err = read_streams(st, consumer, block_ms, claim_idle_ms, &acc, errstr, errstr_size);
        }
    } else {
        key = state_key(st, "outbox");
        err = read_once(st, key, consumer, block_ms, claim_idle_ms, &acc, errstr, errstr_size);
        if (err != VG_OK && !st->group_ready && st->ctx && acc.n == 0) {
            /* NOGROUP: the group was lost under us; recreate it and try once more. */
            err = read_once(st, key, consumer, block_ms, claim_idle_ms, &acc, errstr, errstr_size);
        }
        vg_free(key);
    }
    if (err != VG_OK && acc.n > 0) {
        /* Hand back what was read: those entries are pending for us now, and
         * the failure shows again on the next call. */
        err = VG_OK;
    }
    if (err != VG_OK) {
        vg_outbox_entries_free(acc.v, acc.n);
        return err;
    }
    *out = acc.v;
    *n_out = acc.n;
    return VG_OK;
}

/*
 * Kept for the tests and tools that finish one entry at a time; the
 * dispatcher finishes its entries with their audit records in
 * vg_state_outbox_commit, which these are a case of.
 */
vg_err_t vg_state_outbox_ack(struct vg_state *st, const char *stream_id, char *errstr,
                             size_t errstr_size)
{
    const struct vg_outbox_entry e = {.stream_id = (char *)stream_id};
    const struct vg_outbox_finish f = {.e = &e};

    return vg_state_outbox_commit(st, &f, 1, NULL, 0, errstr, errstr_size);
}

vg_err_t vg_state_outbox_dead(struct vg_state *st, const struct vg_outbox_entry *e,
                              const char *reason, char *errstr, size_t errstr_size)
{
    const struct vg_outbox_finish f = {.e = e, .dead = true, .reason = reason ? reason : ""};

    return vg_state_outbox_commit(st, &f, 1, NULL, 0, errstr, errstr_size);
}

/* XLEN of P:<suffix>; 0 when the stream does not exist. */
static vg_err_t stream_len(struct vg_state *st, const char *suffix, int64_t *out, char *errstr,
                           size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err;

    *out = 0;
    state_cmd_str(&c, "XLEN");
    state_cmd_fmt(&c, "%s:%s", st->prefix, suffix);
    err = state_run(st, &c, "XLEN", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_INTEGER) {
        *out = reply->integer;
    }
    freeReplyObject(reply);
    return VG_OK;
}

struct sum_len_arg {
    const char *suffix;
    int64_t total;
};

static vg_err_t sum_len_scope(struct vg_state *st, const char *scope, void *arg, char *errstr,
                              size_t errstr_size)
{
    struct sum_len_arg *a = arg;
    int64_t len = 0;
    vg_err_t err = stream_len(st, a->suffix, &len, errstr, errstr_size);

    (void)scope;
    a->total += len;
    return err;
}

/*
 * XLEN of P:<suffix> summed over every scope: on one Redis in one round
 * trip, on a cluster scope by scope (each its slot's node).
 */
static vg_err_t sum_len(struct vg_state *st, const char *suffix, int64_t *out, char *errstr,
                        size_t errstr_size)
{
    struct vg_offset *v = NULL;
    size_t k = 0;
    size_t n;
    struct state_cmd c = {0};
    redisReply **replies;
    vg_err_t err;

    *out = 0;
    if (!st->partitioned || st->cluster) {
        struct sum_len_arg a = {suffix, 0};

        err = state_scopes_each(st, true, sum_len_scope, &a, errstr, errstr_size);
        *out = a.total;
        return err;
    }
    err = vg_state_scopes(st, &v, &k, errstr, errstr_size);
    if (err == VG_OK) {
        err = state_need_ctx(st, errstr, errstr_size);
    }
    if (err != VG_OK) {
        vg_state_scopes_free(v, k);
        return err;
    }
    /* the global scope's stream, then each partition's */
    n = k + 1;
    state_cmd_str(&c, "XLEN");
    state_cmd_fmt(&c, "%s:%s", st->global, suffix);
    state_cmd_append(st, &c);
    for (size_t i = 0; i < k; i++) {
        state_cmd_str(&c, "XLEN");
        state_cmd_fmt(&c, "%s:{%s/%d}:%s", st->name, v[i].topic, (int)v[i].partition, suffix);
        state_cmd_append(st, &c);
    }
    state_cmd_fini(&c);
    vg_state_scopes_free(v, k);
    replies = vg_calloc(n, sizeof(*replies));
    err = state_read_checked(st, n, replies, "XLEN", errstr, errstr_size);
    for (size_t i = 0; err == VG_OK && i < n; i++) {
        *out += replies[i]->type == REDIS_REPLY_INTEGER ? replies[i]->integer : 0;
    }
    if (err == VG_OK) {
        state_replies_free(replies, n);
    }
    vg_free(replies);
    return err;
}

vg_err_t vg_state_outbox_backlog(struct vg_state *st, int64_t *out, char *errstr,
                                 size_t errstr_size)
{
    /* Acknowledged entries are deleted (vg_state_outbox_commit), so the
     * length of the stream is exactly pending + never read, whether or not
     * the group exists yet, on any Redis >= 5 (XINFO GROUPS "lag" needs 7
     * and goes unknown after an XDEL ahead of the group). */
    return sum_len(st, "outbox", out, errstr, errstr_size);
}

vg_err_t vg_state_dead_depth(struct vg_state *st, int64_t *out, char *errstr, size_t errstr_size)
{
    return sum_len(st, "outbox:dead", out, errstr, errstr_size);
}

void vg_outbox_entries_free(struct vg_outbox_entry *v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vg_free(v[i].stream_id);
        vg_free(v[i].id);
        vg_free(v[i].sink);
        vg_free(v[i].pager);
        vg_free(v[i].body);
        vg_free(v[i].origin);
        vg_free(v[i].scope);
    }
    vg_free(v);
}
