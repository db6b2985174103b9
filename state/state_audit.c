/*
 * The dispatcher's side of the outbox: finishing entries
 * (acknowledge, dead-letter, queue a fallback copy, remember a Slack
 * message ts) together with the audit trail of every attempt in one
 * MULTI/EXEC; the cross-instance helpers (foreign pending entries, idle
 * refresh); the dead-letter stream behind `vigil dlq`; and reading an
 * incident's notification history for `vigil incidents show`.
 * Reading the outbox itself is state_outbox.c. With the partitioned layout
 * the dispatcher's helpers work in the scope st is in (the entry's), while
 * the dead letters and the audit history are read across every scope.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/util.h"

#define AUDIT_MAXLEN "200"
#define AUDIT_TTL_S (30LL * 24 * 3600)
#define FOREIGN_MAX 1000

/* The fields of an outbox entry, then those a dead one adds (vg_state_outbox_commit). */
enum {
    ENTRY_ID,
    ENTRY_SINK,
    ENTRY_PAGER,
    ENTRY_BODY,
    ENTRY_ORIGIN,
    ENTRY_REASON,
    ENTRY_RESPONSE,
    ENTRY_STATUS,
    ENTRY_ATTEMPTS,
    ENTRY_FAILED_AT,
    ENTRY_N
};
static const char *const entry_fields[ENTRY_N] = {"id",       "sink",     "pager",    "body",
                                                  "origin",   "reason",   "response", "status",
                                                  "attempts", "failed_at"};

/* The fields of an audit record (append_audit). */
enum {
    AUDIT_AT,
    AUDIT_ID,
    AUDIT_SINK,
    AUDIT_ATTEMPT,
    AUDIT_OUTCOME,
    AUDIT_STATUS,
    AUDIT_LATENCY,
    AUDIT_DETAIL,
    AUDIT_N
};
static const char *const audit_fields[AUDIT_N] = {"at",      "id",     "sink",       "attempt",
                                                  "outcome", "status", "latency_ms", "detail"};

static size_t append_audit(struct vg_state *st, struct state_cmd *c,
                           const struct vg_outbox_audit *a)
{
    char *key;

    if (!a->incident || !a->incident[0]) {
        return 0;
    }
    key = state_key_res(st, "audit", a->incident);
    state_cmd_str(c, "XADD");
    state_cmd_str(c, key);
    state_cmd_str(c, "MAXLEN");
    state_cmd_str(c, "~");
    state_cmd_str(c, AUDIT_MAXLEN);
    state_cmd_str(c, "*");
    state_cmd_field_i64(c, "at", a->at_ms);
    state_cmd_field(c, "id", a->id);
    state_cmd_field(c, "sink", a->sink);
    state_cmd_field_i64(c, "attempt", a->attempt);
    state_cmd_field(c, "outcome", a->outcome);
    state_cmd_field_i64(c, "status", a->status);
    state_cmd_field_i64(c, "latency_ms", a->latency_ms);
    state_cmd_field(c, "detail", a->detail);
    state_cmd_append(st, c);
    state_cmd_str(c, "EXPIRE");
    state_cmd_str(c, key);
    state_cmd_i64(c, AUDIT_TTL_S);
    state_cmd_append(st, c);
    vg_free(key);
    return 2;
}

static size_t append_finish(struct vg_state *st, struct state_cmd *c, const char *outbox,
                            const struct vg_outbox_finish *f)
{
    const struct vg_outbox_entry *e = f->e;
    size_t n = 0;

    if (f->dead) {
        state_cmd_str(c, "XADD");
        state_cmd_fmt(c, "%s:outbox:dead", st->prefix);
        state_cmd_str(c, "*");
        state_cmd_field(c, "id", e->id);
        state_cmd_field(c, "sink", e->sink);
        state_cmd_field(c, "pager", e->pager);
        state_cmd_str(c, "body");
        state_cmd_arg(c, e->body ? e->body : "", e->body ? e->body_len : 0);
        state_cmd_field(c, "reason", f->reason);
        state_cmd_field_i64(c, "status", f->status);
        state_cmd_field(c, "response", f->response);
        state_cmd_field_i64(c, "attempts", f->attempts);
        state_cmd_field_i64(c, "failed_at", vg_now_ms());
        if (e->origin) {
            state_cmd_field(c, "origin", e->origin);
        }
        state_cmd_append(st, c);
        n++;
        if (f->fallback_sink && !e->origin) {
            state_append_outbox_entry(st, c, e->id, f->fallback_sink, e->pager, e->body,
                                      e->body_len, e->sink ? e->sink : "");
            n++;
        }
    }
    if (f->memo_key && f->memo) {
        char *key = state_key_res(st, "notif", f->memo_key);
        state_cmd_str(c, "HSET");
        state_cmd_str(c, key);
        state_cmd_str(c, e->sink);
        state_cmd_str(c, f->memo);
        state_cmd_append(st, c);
        state_cmd_str(c, "EXPIRE");
        state_cmd_str(c, key);
        state_cmd_i64(c, AUDIT_TTL_S);
        state_cmd_append(st, c);
        vg_free(key);
        n += 2;
    }
    state_cmd_str(c, "XACK");
    state_cmd_str(c, outbox);
    state_cmd_str(c, STATE_OUTBOX_GROUP);
    state_cmd_str(c, e->stream_id);
    state_cmd_append(st, c);
    /* Delete once acknowledged: the stream stays as long as the backlog. */
    state_cmd_str(c, "XDEL");
    state_cmd_str(c, outbox);
    state_cmd_str(c, e->stream_id);
    state_cmd_append(st, c);
    return n + 2;
}

vg_err_t vg_state_outbox_commit(struct vg_state *st, const struct vg_outbox_finish *f, size_t n_f,
                                const struct vg_outbox_audit *a, size_t n_a, char *errstr,
                                size_t errstr_size)
{
    struct state_cmd c = {0};
    size_t n = 0;
    char *outbox;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    if (err != VG_OK || (n_f == 0 && n_a == 0)) {
        return err;
    }
    outbox = state_key(st, "outbox");
    state_cmd_str(&c, "MULTI");
    state_cmd_append(st, &c);
    n++;
    for (size_t i = 0; i < n_f; i++) {
        n += append_finish(st, &c, outbox, &f[i]);
    }
    for (size_t i = 0; i < n_a; i++) {
        n += append_audit(st, &c, &a[i]);
    }
    state_cmd_str(&c, "EXEC");
    state_cmd_append(st, &c);
    n++;
    state_cmd_fini(&c);
    vg_free(outbox);
    return state_read_exec(st, n, "outbox commit", errstr, errstr_size);
}

vg_err_t vg_state_outbox_memos(struct vg_state *st, const char *const *keys,
                               const char *const *sinks, size_t n, char **out, char *errstr,
                               size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    if (err != VG_OK || n == 0) {
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        char *key = state_key_res(st, "notif", keys[i]);
        state_cmd_str(&c, "HGET");
        state_cmd_str(&c, key);
        state_cmd_str(&c, sinks[i]);
        state_cmd_append(st, &c);
        vg_free(key);
    }
    state_cmd_fini(&c);
    /* an error reply reads as no memo */
    return state_read_strings(st, n, false, out, "HGET memo", errstr, errstr_size);
}

vg_err_t vg_state_outbox_foreign(struct vg_state *st, const char *consumer,
                                 struct vg_outbox_entry **out, size_t *n_out, char *errstr,
                                 size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    char *outbox;
    char **ids = NULL;
    size_t n_ids = 0;
    size_t cap_ids = 0;
    struct vg_outbox_entry *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    outbox = state_key(st, "outbox");
    /* The summary first: [count, min, max, [[consumer, n], ...]]. Usually we are alone. */
    state_cmd_str(&c, "XPENDING");
    state_cmd_str(&c, outbox);
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    /* NOGROUP: no group yet, so nothing is pending anywhere. */
    err = state_run(st, &c, "XPENDING", "NOGROUP", &reply, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    {
        bool others = false;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
            reply->element[3]->type == REDIS_REPLY_ARRAY) {
            const redisReply *cs = reply->element[3];
            for (size_t i = 0; i < cs->elements && !others; i++) {
                others = cs->element[i]->type == REDIS_REPLY_ARRAY &&
                         cs->element[i]->elements >= 1 &&
                         !state_reply_is(cs->element[i]->element[0], consumer);
            }
        }
        freeReplyObject(reply);
        reply = NULL;
        if (!others) {
            goto out;
        }
    }
    state_cmd_str(&c, "XPENDING");
    state_cmd_str(&c, outbox);
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    state_cmd_str(&c, "-");
    state_cmd_str(&c, "+");
    state_cmd_i64(&c, FOREIGN_MAX);
    err = state_run(st, &c, "XPENDING", "NOGROUP", &reply, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_ARRAY && e->elements >= 2 &&
                e->element[0]->type == REDIS_REPLY_STRING &&
                !state_reply_is(e->element[1], consumer)) {
                *VG_ARRAY_PUSH(ids, n_ids, cap_ids) = state_reply_str(e->element[0], "");
            }
        }
    }
    freeReplyObject(reply);
    reply = NULL;
    for (size_t i = 0; i < n_ids; i++) {
        state_cmd_str(&c, "XRANGE");
        state_cmd_str(&c, outbox);
        state_cmd_str(&c, ids[i]);
        state_cmd_str(&c, ids[i]);
        state_cmd_append(st, &c);
    }
    if (n_ids > 0) {
        redisReply **replies = vg_calloc(n_ids, sizeof(*replies));
        err = state_read_replies(st, n_ids, replies, "XRANGE", errstr, errstr_size);
        for (size_t i = 0; err == VG_OK && i < n_ids; i++) {
            const redisReply *r = replies[i];
            const redisReply *f[ENTRY_N];
            struct vg_outbox_entry *e;

            if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
                r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
                r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
                continue;
            }
            state_stream_fields(r->element[0]->element[1], entry_fields, ENTRY_N, f);
            e = VG_ARRAY_PUSH(v, n, cap);
            memset(e, 0, sizeof(*e));
            e->stream_id = vg_strdup(ids[i]);
            e->id = state_reply_str(f[ENTRY_ID], "");
            e->sink = state_reply_str(f[ENTRY_SINK], "");
            e->pager = state_reply_str(f[ENTRY_PAGER], "");
            e->body = vg_strdup("");
        }
        if (err == VG_OK) {
            state_replies_free(replies, n_ids);
        }
        vg_free(replies);
    }
out:
    for (size_t i = 0; i < n_ids; i++) {
        vg_free(ids[i]);
    }
    vg_free(ids);
    state_cmd_fini(&c);
    vg_free(outbox);
    if (err != VG_OK) {
        vg_outbox_entries_free(v, n);
        return err;
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}

vg_err_t vg_state_outbox_touch(struct vg_state *st, const char *consumer, char *const *stream_ids,
                               size_t n, int64_t min_idle_ms, bool *kept, char *errstr,
                               size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    char *outbox;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    for (size_t i = 0; i < n; i++) {
        kept[i] = true;
    }
    if (err != VG_OK || n == 0) {
        return err;
    }
    outbox = state_key(st, "outbox");
    state_cmd_str(&c, "XCLAIM");
    state_cmd_str(&c, outbox);
    state_cmd_str(&c, STATE_OUTBOX_GROUP);
    state_cmd_str(&c, consumer);
    state_cmd_i64(&c, min_idle_ms);
    for (size_t i = 0; i < n; i++) {
        state_cmd_str(&c, stream_ids[i]);
    }
    state_cmd_str(&c, "JUSTID");
    err = state_run(st, &c, "XCLAIM", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    vg_free(outbox);
    if (err != VG_OK) {
        return err;
    }
    /*
     * Only entries idle for at least min_idle_ms are taken (and refreshed):
     * one another instance claimed from us just now is left alone. Called
     * every claim_idle/3, our own never get idle enough to be claimed.
     */
    if (reply->type == REDIS_REPLY_ARRAY && min_idle_ms == 0) {
        for (size_t i = 0; i < n; i++) {
            bool found = false;
            for (size_t k = 0; k < reply->elements && !found; k++) {
                found = state_reply_is(reply->element[k], stream_ids[i]);
            }
            kept[i] = found;
        }
    }
    freeReplyObject(reply);
    return VG_OK;
}

/* ---------------------------------------------------------------- dead letters */

static void dead_from_fields(struct vg_dead_entry *d, const redisReply *id,
                             const redisReply *fields)
{
    const redisReply *f[ENTRY_N];
    int64_t num = 0;

    state_stream_fields(fields, entry_fields, ENTRY_N, f);
    memset(d, 0, sizeof(*d));
    d->stream_id = state_reply_str(id, "");
    d->id = state_reply_str(f[ENTRY_ID], "");
    d->sink = state_reply_str(f[ENTRY_SINK], "");
    d->pager = state_reply_str(f[ENTRY_PAGER], "");
    d->reason = state_reply_str(f[ENTRY_REASON], "");
    d->response = state_reply_str(f[ENTRY_RESPONSE], "");
    d->origin = state_reply_str(f[ENTRY_ORIGIN], NULL);
    d->body = state_reply_str(f[ENTRY_BODY], "");
    d->body_len =
        f[ENTRY_BODY] && f[ENTRY_BODY]->type == REDIS_REPLY_STRING ? f[ENTRY_BODY]->len : 0;
    if (state_reply_i64(f[ENTRY_STATUS], &num)) {
        d->status = (long)num;
    }
    if (state_reply_i64(f[ENTRY_ATTEMPTS], &num)) {
        d->attempts = (int)num;
    }
    (void)state_reply_i64(f[ENTRY_FAILED_AT], &d->failed_at_ms);
    if (d->failed_at_ms == 0) {
        /* Entries written by vg_state_outbox_dead: the stream id has the time. */
        (void)vg_parse_i64(d->stream_id, &d->failed_at_ms);
        char *dash = strchr(d->stream_id, '-');
        if (dash) {
            char *ms = vg_strndup(d->stream_id, (size_t)(dash - d->stream_id));
            (void)vg_parse_i64(ms, &d->failed_at_ms);
            vg_free(ms);
        }
    }
}

/* XRANGE of the dead stream from `start`: up to `count` entries appended to *v. */
static vg_err_t dead_range(struct vg_state *st, const char *start, const char *end, size_t count,
                           struct vg_dead_entry **v, size_t *n, size_t *cap, char *errstr,
                           size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err;

    state_cmd_str(&c, "XRANGE");
    state_cmd_fmt(&c, "%s:outbox:dead", st->prefix);
    state_cmd_str(&c, start);
    state_cmd_str(&c, end);
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, (int64_t)count);
    err = state_run(st, &c, "XRANGE dead", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
                e->element[1]->type == REDIS_REPLY_ARRAY) {
                dead_from_fields(VG_ARRAY_PUSH(*v, *n, *cap), e->element[0], e->element[1]);
            }
        }
    }
    freeReplyObject(reply);
    return err;
}

static void dead_entries_free_tail(struct vg_dead_entry *v, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        vg_free(v[i].stream_id);
        vg_free(v[i].id);
        vg_free(v[i].sink);
        vg_free(v[i].pager);
        vg_free(v[i].reason);
        vg_free(v[i].response);
        vg_free(v[i].origin);
        vg_free(v[i].body);
        vg_free(v[i].scope);
    }
}

/* Stream ids compare as (ms, seq): the order entries were written in, across streams. */
static int stream_id_cmp(const char *a, const char *b)
{
    const char *ad = strchr(a, '-');
    const char *bd = strchr(b, '-');
    size_t al = ad ? (size_t)(ad - a) : strlen(a);
    size_t bl = bd ? (size_t)(bd - b) : strlen(b);
    int c;

    /* no leading zeros: a longer number is a bigger one */
    if (al != bl) {
        return al < bl ? -1 : 1;
    }
    c = strncmp(a, b, al);
    if (c != 0 || !ad || !bd) {
        return c;
    }
    al = strlen(ad + 1);
    bl = strlen(bd + 1);
    if (al != bl) {
        return al < bl ? -1 : 1;
    }
    return strcmp(ad + 1, bd + 1);
}

static int dead_cmp(const void *a, const void *b)
{
    return stream_id_cmp(((const struct vg_dead_entry *)a)->stream_id,
                         ((const struct vg_dead_entry *)b)->stream_id);
}

/* The dead entries v[from..*n) are scope's. */
static void dead_mark_scope(struct vg_dead_entry *v, size_t from, size_t n, const char *scope)
{
    for (size_t i = from; scope && i < n; i++) {
        v[i].scope = vg_strdup(scope);
    }
}

/* vg_state_dlq_list's walk: the oldest `max` of each scope, appended and marked with it. */
struct dead_list {
    size_t max;
    struct vg_dead_entry **v;
    size_t *n;
    size_t cap;
};

static vg_err_t dead_list_scope(struct vg_state *st, const char *scope, void *arg, char *errstr,
                                size_t errstr_size)
{
    struct dead_list *dl = arg;
    size_t from = *dl->n;
    vg_err_t err = dead_range(st, "-", "+", dl->max, dl->v, dl->n, &dl->cap, errstr, errstr_size);

    dead_mark_scope(*dl->v, from, *dl->n, scope);
    return err;
}

vg_err_t vg_state_dlq_list(struct vg_state *st, size_t max, struct vg_dead_entry **out,
                           size_t *n_out, char *errstr, size_t errstr_size)
{
    struct dead_list dl = {max, out, n_out, 0};
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    /* The oldest `max` of each scope, merged: the oldest `max` of all. */
    err = state_scopes_each(st, true, dead_list_scope, &dl, errstr, errstr_size);
    if (err == VG_OK && st->partitioned && *n_out > 1) {
        qsort(*out, *n_out, sizeof(**out), dead_cmp);
    }
    if (err == VG_OK && *n_out > max) {
        dead_entries_free_tail(*out, max, *n_out);
        *n_out = max;
    }
    if (err != VG_OK) {
        vg_dead_entries_free(*out, *n_out);
        *out = NULL;
        *n_out = 0;
    }
    return err;
}

static bool looks_like_stream_id(const char *s)
{
    const char *dash = strchr(s, '-');

    if (!dash || dash == s || !dash[1]) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (p != dash && (*p < '0' || *p > '9')) {
            return false;
        }
    }
    return true;
}

/* Every dead entry whose stream id or notification id is `id`. */
static vg_err_t dead_find(struct vg_state *st, const char *id, struct vg_dead_entry **v, size_t *n,
                          char *errstr, size_t errstr_size)
{
    struct vg_dead_entry *all = NULL;
    size_t n_all = 0;
    size_t cap = 0;
    size_t keep_cap = 0;
    vg_err_t err;

    *v = NULL;
    *n = 0;
    if (looks_like_stream_id(id)) {
        return dead_range(st, id, id, 1, v, n, &keep_cap, errstr, errstr_size);
    }
    /* A notification id: the dead stream is small (an operator empties it), scan it. */
    err = dead_range(st, "-", "+", 100000, &all, &n_all, &cap, errstr, errstr_size);
    for (size_t i = 0; err == VG_OK && i < n_all; i++) {
        if (!strcmp(all[i].id, id)) {
            *VG_ARRAY_PUSH(*v, *n, keep_cap) = all[i];
            memset(&all[i], 0, sizeof(all[i]));
        }
    }
    vg_dead_entries_free(all, n_all);
    return err;
}

/* In the scope st is in: the dead entries matching `id` back to its outbox, or dropped. */
static vg_err_t dlq_apply_here(struct vg_state *st, const char *id, bool retry, size_t *n_done,
                               char *errstr, size_t errstr_size)
{
    struct vg_dead_entry *v = NULL;
    size_t n = 0;
    struct state_cmd c = {0};
    size_t queued = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *n_done = 0;
    if (err != VG_OK) {
        return err;
    }
    err = dead_find(st, id, &v, &n, errstr, errstr_size);
    if (err != VG_OK || n == 0) {
        vg_dead_entries_free(v, n);
        return err;
    }
    state_cmd_str(&c, "MULTI");
    state_cmd_append(st, &c);
    queued++;
    for (size_t i = 0; i < n; i++) {
        if (retry) {
            state_append_outbox_entry(st, &c, v[i].id, v[i].sink, v[i].pager, v[i].body,
                                      v[i].body_len, v[i].origin);
            queued++;
        }
        state_cmd_str(&c, "XDEL");
        state_cmd_fmt(&c, "%s:outbox:dead", st->prefix);
        state_cmd_str(&c, v[i].stream_id);
        state_cmd_append(st, &c);
        queued++;
    }
    state_cmd_str(&c, "EXEC");
    state_cmd_append(st, &c);
    queued++;
    state_cmd_fini(&c);
    err = state_read_exec(st, queued, retry ? "dlq retry" : "dlq drop", errstr, errstr_size);
    if (err == VG_OK) {
        *n_done = n;
    }
    vg_dead_entries_free(v, n);
    return err;
}

struct dlq_apply_arg {
    const char *id;
    bool retry;
    size_t n_done;
};

static vg_err_t dlq_apply_scope(struct vg_state *st, const char *scope, void *arg, char *errstr,
                                size_t errstr_size)
{
    struct dlq_apply_arg *a = arg;
    size_t done = 0;
    vg_err_t err = dlq_apply_here(st, a->id, a->retry, &done, errstr, errstr_size);

    (void)scope;
    a->n_done += done;
    return err;
}

/* Every scope's matching entries, each scope in its own MULTI/EXEC (its slot). */
static vg_err_t dlq_apply(struct vg_state *st, const char *id, bool retry, size_t *n_done,
                          char *errstr, size_t errstr_size)
{
    struct dlq_apply_arg a = {id, retry, 0};
    vg_err_t err = state_scopes_each(st, true, dlq_apply_scope, &a, errstr, errstr_size);

    *n_done = a.n_done;
    return err;
}

vg_err_t vg_state_dlq_retry(struct vg_state *st, const char *id, size_t *n_done, char *errstr,
                            size_t errstr_size)
{
    return dlq_apply(st, id, true, n_done, errstr, errstr_size);
}

vg_err_t vg_state_dlq_drop(struct vg_state *st, const char *id, size_t *n_done, char *errstr,
                           size_t errstr_size)
{
    return dlq_apply(st, id, false, n_done, errstr, errstr_size);
}

void vg_dead_entries_free(struct vg_dead_entry *v, size_t n)
{
    if (!v) {
        return;
    }
    dead_entries_free_tail(v, 0, n);
    vg_free(v);
}

/* ---------------------------------------------------------------- audit */

/* The incident's audit stream in the scope st is in: up to `max` appended to *v. */
static vg_err_t audit_read_here(struct vg_state *st, const char *incident, size_t max,
                                struct vg_audit_record **vp, size_t *np, size_t *capp, char *errstr,
                                size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    struct vg_audit_record *v = *vp;
    size_t n = *np;
    size_t cap = *capp;
    char *key;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    key = state_key_res(st, "audit", incident);
    state_cmd_str(&c, "XRANGE");
    state_cmd_str(&c, key);
    state_cmd_str(&c, "-");
    state_cmd_str(&c, "+");
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, (int64_t)max);
    err = state_run(st, &c, "XRANGE audit", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    vg_free(key);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            const redisReply *f[AUDIT_N];
            struct vg_audit_record *a;
            int64_t num = 0;

            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[1]->type != REDIS_REPLY_ARRAY) {
                continue;
            }
            state_stream_fields(e->element[1], audit_fields, AUDIT_N, f);
            a = VG_ARRAY_PUSH(v, n, cap);
            memset(a, 0, sizeof(*a));
            a->stream_id = state_reply_str(e->element[0], "");
            a->id = state_reply_str(f[AUDIT_ID], "");
            a->sink = state_reply_str(f[AUDIT_SINK], "");
            a->outcome = state_reply_str(f[AUDIT_OUTCOME], "");
            a->detail = state_reply_str(f[AUDIT_DETAIL], "");
            (void)state_reply_i64(f[AUDIT_AT], &a->at_ms);
            if (state_reply_i64(f[AUDIT_ATTEMPT], &num)) {
                a->attempt = (int)num;
            }
            if (state_reply_i64(f[AUDIT_STATUS], &num)) {
                a->status = (long)num;
            }
            (void)state_reply_i64(f[AUDIT_LATENCY], &a->latency_ms);
        }
    }
    freeReplyObject(reply);
    *vp = v;
    *np = n;
    *capp = cap;
    return VG_OK;
}

static int audit_cmp(const void *a, const void *b)
{
    const struct vg_audit_record *x = a;
    const struct vg_audit_record *y = b;

    if (x->at_ms != y->at_ms) {
        return x->at_ms < y->at_ms ? -1 : 1;
    }
    return stream_id_cmp(x->stream_id, y->stream_id);
}

static void audit_records_free_tail(struct vg_audit_record *v, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        vg_free(v[i].stream_id);
        vg_free(v[i].id);
        vg_free(v[i].sink);
        vg_free(v[i].outcome);
        vg_free(v[i].detail);
    }
}

/* vg_state_audit_read's walk: each scope's records appended. */
struct audit_read {
    const char *incident;
    size_t max;
    struct vg_audit_record *v;
    size_t n;
    size_t cap;
};

static vg_err_t audit_read_scope(struct vg_state *st, const char *scope, void *arg, char *errstr,
                                 size_t errstr_size)
{
    struct audit_read *ar = arg;

    (void)scope;
    return audit_read_here(st, ar->incident, ar->max, &ar->v, &ar->n, &ar->cap, errstr,
                           errstr_size);
}

vg_err_t vg_state_audit_read(struct vg_state *st, const char *incident, size_t max,
                             struct vg_audit_record **out, size_t *n_out, char *errstr,
                             size_t errstr_size)
{
    struct audit_read ar = {incident, max, NULL, 0, 0};
    struct vg_audit_record *v;
    size_t n;
    vg_err_t err;

    *out = NULL;
    *n_out = 0;
    /* With the partitioned layout an incident's notices are recorded in the scope of the
     * page's partition; which one is not known here, so every scope's stream is read and
     * merged by time. */
    err = state_scopes_each(st, true, audit_read_scope, &ar, errstr, errstr_size);
    v = ar.v;
    n = ar.n;
    if (err == VG_OK && st->partitioned && n > 1) {
        qsort(v, n, sizeof(*v), audit_cmp);
    }
    if (err == VG_OK && n > max) {
        audit_records_free_tail(v, max, n);
        n = max;
    }
    if (err != VG_OK) {
        vg_audit_records_free(v, n);
        return err;
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}

void vg_audit_records_free(struct vg_audit_record *v, size_t n)
{
    if (!v) {
        return;
    }
    audit_records_free_tail(v, 0, n);
    vg_free(v);
}
