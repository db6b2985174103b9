/*
 * The outbox reader: consumer group "dispatch" on P:outbox. A read returns
 * the consumer's own entries left pending by a previous run, then entries
 * idle too long for any consumer (XAUTOCLAIM, Redis >= 7), then new ones.
 * Acknowledging deletes the entry, so P:outbox holds exactly the backlog.
 * Pages are written by vg_state_commit (state.c), never here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "state_int.h"
#include "vigil/util.h"

/* Collected entries of one read, plus deleted ids to acknowledge. */
struct read_acc {
    struct vg_outbox_entry *v;
    size_t n;
    size_t cap;
    size_t max;
    char **ack;
    size_t n_ack;
    size_t cap_ack;
};

static bool reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);

    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

static bool acc_has(const struct read_acc *acc, const redisReply *id)
{
    for (size_t i = 0; i < acc->n; i++) {
        if (strlen(acc->v[i].stream_id) == id->len &&
            memcmp(acc->v[i].stream_id, id->str, id->len) == 0) {
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
    struct vg_outbox_entry *out;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    id = e->element[0];
    fields = e->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) {
        *VG_ARRAY_PUSH(acc->ack, acc->n_ack, acc->cap_ack) = vg_strndup(id->str, id->len);
        return;
    }
    if (acc_has(acc, id) || acc->n >= acc->max) {
        return;
    }
    out = VG_ARRAY_PUSH(acc->v, acc->n, acc->cap);
    memset(out, 0, sizeof(*out));
    out->stream_id = vg_strndup(id->str, id->len);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        char **dst = NULL;

        if (v->type != REDIS_REPLY_STRING) {
            continue;
        }
        if (reply_is(k, "id")) {
            dst = &out->id;
        } else if (reply_is(k, "sink")) {
            dst = &out->sink;
        } else if (reply_is(k, "pager")) {
            dst = &out->pager;
        } else if (reply_is(k, "body")) {
            dst = &out->body;
            out->body_len = v->len;
        } else if (reply_is(k, "origin")) {
            dst = &out->origin;
        }
        if (dst) {
            vg_free(*dst);
            *dst = vg_strndup(v->str, v->len);
        }
    }
    /* Missing fields read as "": the dispatcher dead-letters what it cannot parse. */
    out->id = out->id ? out->id : vg_strdup("");
    out->sink = out->sink ? out->sink : vg_strdup("");
    out->pager = out->pager ? out->pager : vg_strdup("");
    out->body = out->body ? out->body : vg_strdup("");
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

static vg_err_t read_new(struct vg_state *st, const char *key, const char *consumer, int block_ms,
                         struct read_acc *acc, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    /* A long BLOCK must not trip the command timeout. */
    bool long_block = block_ms > 0 && (int64_t)block_ms + 1000 > STATE_COMMAND_TIMEOUT_MS;
    vg_err_t err;

    state_cmd_str(&c, "XREADGROUP");
    state_cmd_str(&c, "GROUP");
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    state_cmd_str(&c, consumer);
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, (int64_t)(acc->max - acc->n));
    if (block_ms > 0) {
        /* Never BLOCK 0: that would wait forever. */
        state_cmd_str(&c, "BLOCK");
        state_cmd_i64(&c, block_ms);
    }
    state_cmd_str(&c, "STREAMS");
    state_cmd_str(&c, key);
    state_cmd_str(&c, ">");
    if (long_block && redisSetTimeout(st->ctx, ms_to_tv((int64_t)block_ms +
                                                        STATE_COMMAND_TIMEOUT_MS)) != REDIS_OK) {
        state_cmd_fini(&c);
        return state_ctx_failed(st, "XREADGROUP: set timeout", errstr, errstr_size);
    }
    err = state_run(st, &c, "XREADGROUP", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    /* nil: BLOCK timed out with nothing new. */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        acc_entries(acc, reply->element[0]->element[1]);
    }
    freeReplyObject(reply);
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
    key = state_key(st, "outbox");
    err = read_once(st, key, consumer, block_ms, claim_idle_ms, &acc, errstr, errstr_size);
    if (err != VG_OK && !st->group_ready && st->ctx && acc.n == 0) {
        /* NOGROUP: the group was lost under us; recreate it and try once more. */
        err = read_once(st, key, consumer, block_ms, claim_idle_ms, &acc, errstr, errstr_size);
    }
    vg_free(key);
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

vg_err_t vg_state_outbox_backlog(struct vg_state *st, int64_t *out, char *errstr,
                                 size_t errstr_size)
{
    /* Acknowledged entries are deleted (vg_state_outbox_commit), so the
     * length of the stream is exactly pending + never read, whether or not
     * the group exists yet, on any Redis >= 5 (XINFO GROUPS "lag" needs 7
     * and goes unknown after an XDEL ahead of the group). */
    return stream_len(st, "outbox", out, errstr, errstr_size);
}

vg_err_t vg_state_dead_depth(struct vg_state *st, int64_t *out, char *errstr, size_t errstr_size)
{
    return stream_len(st, "outbox:dead", out, errstr, errstr_size);
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
    }
    vg_free(v);
}
