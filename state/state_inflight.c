/*
 * Commits in flight (docs/state.md "Commits in flight"): the FIFO of commits
 * vg_state_commit_send wrote and vg_state_commit_finish has not taken yet,
 * how their replies are read and judged on their own connection before any
 * other read there (state_commits_drain), and what a lost connection does to
 * them. Writing a commit and finishing it stay in state.c.
 */
#include <stdio.h>
#include <string.h>

#include "state_int.h"
#include "vigil/mem.h"
#include "vigil/util.h"

/* Whether a commit in flight on `ctx` has replies not read yet. */
bool state_inflight_unread_on(const struct vg_state *st, const redisContext *ctx)
{
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        if (st->inflight[i].ctx == ctx && !st->inflight[i].read) {
            return true;
        }
    }
    return false;
}

vg_err_t state_judge_wait(const struct vg_state *st, const char *redacted, const redisReply *reply,
                          char *errstr, size_t errstr_size)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        return state_error_text_at(redacted, "WAIT", reply->str, reply->len, errstr, errstr_size);
    }
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < st->wait_replicas) {
        state_set_err(errstr, errstr_size,
                      "redis %s: batch replicated to %lld of %d replicas within %d ms", redacted,
                      reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0LL, st->wait_replicas,
                      st->wait_timeout_ms);
        return VG_ERR_BACKEND;
    }
    return VG_OK;
}

void state_wait_owe(struct vg_state *st, const redisContext *ctx, const char *scope)
{
    struct state_wait_owed *o;

    if (!st->cluster) {
        scope = NULL; /* one server: whatever the scope, the same replication stream */
    }
    for (size_t i = 0; i < st->n_owed; i++) {
        o = &st->owed[i];
        if ((!o->scope && !scope) || (o->scope && scope && strcmp(o->scope, scope) == 0)) {
            /* a WAIT on one of two connections proves nothing about the other's writes
             * if they reach different primaries: a mark decides */
            if (o->ctx != ctx) {
                o->ctx = NULL;
            }
            return;
        }
    }
    o = VG_ARRAY_PUSH(st->owed, st->n_owed, st->cap_owed);
    o->scope = scope ? vg_strdup(scope) : NULL;
    o->ctx = ctx;
}

void state_wait_paid(struct vg_state *st, size_t i)
{
    vg_free(st->owed[i].scope);
    memmove(&st->owed[i], &st->owed[i + 1], (st->n_owed - i - 1) * sizeof(*st->owed));
    st->n_owed--;
}

size_t state_fence_moved(const struct vg_fence *fences, size_t n, const redisReply *mget,
                         int64_t *now)
{
    for (size_t i = 0; i < n; i++) {
        const redisReply *r =
            mget->type == REDIS_REPLY_ARRAY && i < mget->elements ? mget->element[i] : NULL;
        int64_t v = 0;

        if (!r) {
            v = -1;
        } else if (r->type == REDIS_REPLY_STRING) {
            if (!vg_parse_i64(r->str, &v)) {
                v = -1;
            }
        } else if (r->type != REDIS_REPLY_NIL) {
            v = -1;
        }
        if (v != fences[i].epoch) {
            *now = v;
            return i;
        }
    }
    return n;
}

/* Judge the replies of MULTI, the queued commands and EXEC (last). */
static vg_err_t check_commit_replies(const char *redacted, const struct state_exec_reply *er,
                                     char *errstr, size_t errstr_size)
{
    if (er->err_at == 0) {
        return state_error_text_at(redacted, "MULTI", er->err, er->err_len, errstr, errstr_size);
    }
    if (er->exec_type == REDIS_REPLY_ARRAY) {
        /* Errors inside EXEC (WRONGTYPE: a foreign key under our prefix)
         * mean the other commands did run: report, never mark clean. */
        if (er->elem_err) {
            return state_error_text_at(redacted, "EXEC", er->elem_err, er->elem_err_len, errstr,
                                       errstr_size);
        }
        return VG_OK;
    }
    /* EXEC refused (EXECABORT after a queueing error such as OOM) or nil:
     * nothing was applied. Name the first queueing error if any (else
     * the first error is EXEC's own). */
    if (er->err_at < er->n) {
        state_set_err(errstr, errstr_size, "redis %s: commit aborted: %.*s", redacted,
                      (int)er->err_len, er->err);
    } else {
        state_set_err(errstr, errstr_size, "redis %s: commit aborted: EXEC returned nil", redacted);
    }
    return VG_ERR_BACKEND;
}

void state_inflight_fini(struct state_inflight *e)
{
    vg_free(e->errstr);
    vg_free(e->res);
    for (size_t i = 0; i < e->n_fences; i++) {
        vg_free((char *)e->fences[i].topic);
    }
    vg_free(e->fences);
    vg_free(e->scope);
    memset(e, 0, sizeof(*e));
}

static void inflight_verdict(struct state_inflight *e, vg_err_t err, const char *errstr)
{
    e->read = true;
    e->err = err;
    vg_free(e->errstr);
    e->errstr = err != VG_OK ? vg_strdup(errstr) : NULL;
}

/*
 * `ctx` failed or goes away: every commit in flight on it that is not judged
 * yet fails with `why`, unread, and forgets the connection.
 */
static void inflight_lost(struct vg_state *st, const redisContext *ctx, const char *why)
{
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        struct state_inflight *e = &st->inflight[i];
        char msg[700];

        if (e->ctx != ctx) {
            continue;
        }
        e->ctx = NULL;
        if (!e->read) {
            snprintf(msg, sizeof(msg), "redis %s: connection lost with the commit in flight%s%s",
                     e->redacted, why ? ": " : "", why ? why : "");
            inflight_verdict(e, VG_ERR_BACKEND, msg);
            if (e->n_wait > 0) {
                /* it may have run there, its WAIT never answered */
                state_wait_owe(st, NULL, e->scope);
            }
        }
    }
    /* what a node owes outlives its connection: a new one proves it with a mark */
    for (size_t i = 0; i < st->n_owed; i++) {
        if (st->owed[i].ctx == ctx) {
            st->owed[i].ctx = NULL;
        }
    }
}

void state_commits_conn_lost(struct vg_state *st, const redisContext *ctx)
{
    inflight_lost(st, ctx, NULL);
}

/* Where `ctx` is kept: st->ctx, or a parked connection (NULL: neither). */
static redisContext **conn_slot(struct vg_state *st, const redisContext *ctx)
{
    if (st->ctx == ctx) {
        return &st->ctx;
    }
    for (size_t i = 0; i < st->n_parked; i++) {
        if (st->parked[i] == ctx) {
            return &st->parked[i];
        }
    }
    return NULL;
}

/* A commit failed on the connection `ctx`: ask that server again about the counts function. */
void state_inflight_forget_function(struct vg_state *st, const redisContext *ctx)
{
    if (!ctx) {
        return; /* gone: a new connection asks anyway */
    }
    if (st->ctx == ctx) {
        st->incident_fn_asked = false;
        return;
    }
    for (size_t i = 0; i < st->n_parked; i++) {
        if (st->parked[i] == ctx) {
            st->parked_fn[i].asked = false;
        }
    }
}

/*
 * A fence sent ahead: the replies of UNWATCH, WATCH and MGET. Its verdict: VG_OK with
 * fence_moved/fence_now saying whether an epoch moved, or an error reply's class.
 * VG_ERR_BACKEND: the connection failed (ctx->errstr).
 */
static vg_err_t fence_ahead_read(struct state_inflight *e, char *errstr, size_t errstr_size)
{
    static const char *const what[3] = {"UNWATCH", "WATCH epochs", "MGET epochs"};
    redisReply *replies[3] = {NULL, NULL, NULL};
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < 3; i++) {
        void *r = NULL;

        if (redisGetReply(e->ctx, &r) != REDIS_OK || !r) {
            for (size_t k = 0; k < i; k++) {
                freeReplyObject(replies[k]);
            }
            return VG_ERR_BACKEND;
        }
        replies[i] = r;
    }
    e->fence_moved = e->n_fences;
    for (size_t i = 0; i < 3 && err == VG_OK; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            err = state_error_text_at(e->redacted, what[i], replies[i]->str, replies[i]->len,
                                      errstr, errstr_size);
        }
    }
    if (err == VG_OK) {
        e->fence_moved = state_fence_moved(e->fences, e->n_fences, replies[2], &e->fence_now);
    }
    for (size_t i = 0; i < 3; i++) {
        freeReplyObject(replies[i]);
    }
    inflight_verdict(e, err, errstr);
    return VG_OK;
}

/*
 * Read and judge entry e's replies on its connection (the entries before it on
 * that connection are judged already). The connection failing fails e and every
 * entry after it there, and closes it: VG_ERR_BACKEND, with its error in *why.
 */
static vg_err_t inflight_read(struct vg_state *st, struct state_inflight *e, char *why,
                              size_t why_size)
{
    redisContext *ctx = e->ctx;
    struct state_exec_reply er;
    char errstr[700] = "";
    vg_err_t err;

    if (e->fence_ahead) {
        if (fence_ahead_read(e, errstr, sizeof(errstr)) != VG_OK) {
            goto lost;
        }
        return VG_OK;
    }
    if (state_conn_read_exec(ctx, e->n, &er) != VG_OK) {
        goto lost;
    }
    e->fenced_out = e->n_fences > 0 && er.exec_type == REDIS_REPLY_NIL;
    e->exec_ran = er.exec_type == REDIS_REPLY_ARRAY;
    err = check_commit_replies(e->redacted, &er, errstr, sizeof(errstr));
    state_exec_reply_fini(&er);
    if (e->n_wait > 0) {
        /* read whatever the commit said: the WAIT's reply is next on the connection */
        void *r = NULL;
        char wait_errstr[700] = "";
        vg_err_t wait_err;

        if (redisGetReply(ctx, &r) != REDIS_OK || !r) {
            goto lost;
        }
        wait_err = state_judge_wait(st, e->redacted, r, wait_errstr, sizeof(wait_errstr));
        freeReplyObject(r);
        if (wait_err != VG_OK && e->exec_ran) {
            /* its writes are on the primary, perhaps not on the replicas: a retry that finds
             * them all replayed sends no WAIT, so the node owes one (state_wait_settle) */
            state_wait_owe(st, ctx, e->scope);
        }
        if (err == VG_OK && wait_err != VG_OK) {
            err = wait_err;
            snprintf(errstr, sizeof(errstr), "%s", wait_errstr);
        }
    }
    inflight_verdict(e, err, errstr);
    return VG_OK;
lost:
    if (ctx->err == REDIS_ERR_OOM) {
        vg_oom("hiredis");
    }
    e->fenced_out = false; /* the connection's failure is the verdict: nothing to explain */
    e->exec_ran = false;
    snprintf(why, why_size, "%s", ctx->errstr[0] ? ctx->errstr : "connection failed");
    snprintf(errstr, sizeof(errstr), "redis %s: commit: %s", e->redacted, why);
    inflight_verdict(e, VG_ERR_BACKEND, errstr);
    if (e->n_wait > 0) {
        state_wait_owe(st, NULL, e->scope); /* it may have run, its WAIT never answered */
    }
    {
        redisContext **slot = conn_slot(st, ctx);

        inflight_lost(st, ctx, why);
        if (slot) {
            redisFree(*slot);
            *slot = NULL;
        }
    }
    return VG_ERR_BACKEND;
}

/* Judge the commits in flight on `ctx`, oldest first, up to `upto` (NULL: all of them). */
vg_err_t state_inflight_drain(struct vg_state *st, const redisContext *ctx,
                              const struct state_inflight *upto, char *why, size_t why_size)
{
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        struct state_inflight *e = &st->inflight[i];

        if (e->ctx == ctx && !e->read) {
            vg_err_t err = inflight_read(st, e, why, why_size);

            if (err != VG_OK) {
                return err;
            }
        }
        if (e == upto) {
            break;
        }
    }
    return VG_OK;
}

vg_err_t state_commits_drain(struct vg_state *st, const char *what, char *errstr,
                             size_t errstr_size)
{
    char why[256];

    if (!st->ctx || state_inflight_drain(st, st->ctx, NULL, why, sizeof(why)) == VG_OK) {
        return VG_OK;
    }
    state_set_err(errstr, errstr_size, "redis %s: %s: %s", st->redacted, what, why);
    return VG_ERR_BACKEND;
}

vg_err_t state_inflight_unwatch(struct vg_state *st, struct state_inflight *e, char *errstr,
                                size_t errstr_size)
{
    redisContext *ctx = e->ctx;
    char why[256];
    void *r = NULL;

    if (!ctx) {
        return VG_OK; /* its connection is gone, and its WATCH with it */
    }
    if (state_inflight_drain(st, ctx, NULL, why, sizeof(why)) != VG_OK) {
        state_set_err(errstr, errstr_size, "redis %s: UNWATCH: %s", e->redacted, why);
        return VG_ERR_BACKEND;
    }
    if (redisAppendCommand(ctx, "UNWATCH") != REDIS_OK || redisGetReply(ctx, &r) != REDIS_OK ||
        !r) {
        redisContext **slot = conn_slot(st, ctx);

        if (ctx->err == REDIS_ERR_OOM) {
            vg_oom("hiredis");
        }
        snprintf(why, sizeof(why), "%s", ctx->errstr[0] ? ctx->errstr : "connection failed");
        state_set_err(errstr, errstr_size, "redis %s: UNWATCH: %s", e->redacted, why);
        inflight_lost(st, ctx, why);
        if (slot) {
            redisFree(*slot);
            *slot = NULL;
        }
        return VG_ERR_BACKEND;
    }
    freeReplyObject(r); /* (UNWATCH answers OK) */
    return VG_OK;
}

/* A new entry at the end of the FIFO (zeroed). */
struct state_inflight *state_inflight_push(struct vg_state *st)
{
    struct state_inflight *e;

    if (st->inflight_head == st->n_inflight) {
        st->inflight_head = 0;
        st->n_inflight = 0;
    }
    e = VG_ARRAY_PUSH(st->inflight, st->n_inflight, st->cap_inflight);
    memset(e, 0, sizeof(*e));
    return e;
}

/* What finishing the commit `cm` just written on st->ctx (n replies) takes, copied. */
void state_inflight_record(struct vg_state *st, const struct vg_commit *cm, size_t n, size_t n_wait)
{
    struct state_inflight *e = state_inflight_push(st);

    e->ctx = st->ctx;
    e->n = n;
    e->n_wait = n_wait;
    e->incidents = cm->n_incidents > 0;
    e->fence_lost = cm->fence_lost;
    e->scope = st->scope ? vg_strdup(st->scope) : NULL;
    snprintf(e->redacted, sizeof(e->redacted), "%s", st->redacted);
    for (size_t i = 0; i < cm->n_res; i++) {
        if (cm->res[i]->dirty) {
            if (!e->res) {
                e->res = vg_malloc(cm->n_res * sizeof(*e->res));
            }
            e->res[e->n_res++] = cm->res[i];
        }
    }
    if (cm->n_fences > 0) {
        e->fences = vg_malloc(cm->n_fences * sizeof(*e->fences));
        for (size_t i = 0; i < cm->n_fences; i++) {
            e->fences[i] = cm->fences[i];
            e->fences[i].topic = vg_strdup(cm->fences[i].topic);
        }
        e->n_fences = cm->n_fences;
    }
}
