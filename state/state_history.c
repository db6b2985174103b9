/*
 * The read side of a Resource's history stream P:hist:{ID}:
 * `vigil history ID` and the detail view of `vigil get ID`: the stream read
 * newest first with a COUNT, its entries split into transitions by
 * state_history_entry.c. Writing is part of the commit in state.c, so that
 * a history entry exists exactly when its state change does.
 * With redis.layout partitioned every scope's stream is read and the entries
 * merged by stream id (a Resource whose partition changed has history in both).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

/* Queue XREVRANGE P:hist:{ID} + - [COUNT max] in st's scope. */
static void history_queue(struct vg_state *st, const char *id, size_t max)
{
    struct state_cmd c = {0};

    /* Newest first with a COUNT, so a long history costs only what is shown
     * (an entry holds at least one transition: `max` entries are enough). */
    state_cmd_str(&c, "XREVRANGE");
    state_cmd_key_res(&c, st, "hist", id);
    state_cmd_str(&c, "+");
    state_cmd_str(&c, "-");
    if (max > 0) {
        state_cmd_str(&c, "COUNT");
        state_cmd_i64(&c, (int64_t)max);
    }
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
}

/* The entries of an XREVRANGE reply appended oldest first to (*v, *n, *cap). */
static vg_err_t history_take(struct vg_state *st, const char *id, const redisReply *reply,
                             struct vg_history_entry **v, size_t *n, size_t *cap, char *errstr,
                             size_t errstr_size)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        return state_reply_error(st, "XREVRANGE history", reply, errstr, errstr_size);
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        state_set_err(errstr, errstr_size, "redis %s: XREVRANGE history: unexpected reply type %d",
                      st->redacted, reply->type);
        return VG_ERR_INVALID;
    }
    /* The reply is newest first: fill from the back so the result is oldest first. */
    for (size_t i = reply->elements; i-- > 0;) {
        const char *why = NULL;

        if (!state_history_entry_read(reply->element[i], v, n, cap, &why)) {
            VG_LOG_WARN("state", "resource %s: unreadable history entry skipped: %s", id, why);
        }
    }
    return VG_OK;
}

/* The history of one id in every scope (the partitioned layout), appended to (v, n, cap). */
struct history_read {
    const char *id;
    size_t max;
    struct vg_history_entry *v;
    size_t n;
    size_t cap;
};

static size_t history_queue_scope(struct vg_state *st, size_t k, void *arg)
{
    const struct history_read *hr = arg;

    (void)k;
    history_queue(st, hr->id, hr->max);
    return 1;
}

static vg_err_t history_take_scope(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                   void *arg, char *errstr, size_t errstr_size)
{
    struct history_read *hr = arg;

    (void)k;
    (void)n;
    return history_take(st, hr->id, replies[0], &hr->v, &hr->n, &hr->cap, errstr, errstr_size);
}

/* A stream id "<ms>-<seq>" as two numbers; unreadable ones sort first. */
static void stream_id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    char *end = NULL;

    *ms = strtoull(s, &end, 10);
    *seq = end && *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

struct history_key {
    uint64_t ms;
    uint64_t seq;
    int64_t at_ms; /* equal ids in two streams (written in the same ms): by event time */
    size_t at;     /* position before sorting: keeps an entry's transitions, and scopes, in order */
};

static int cmp_history_key(const void *a, const void *b)
{
    const struct history_key *x = a;
    const struct history_key *y = b;

    if (x->ms != y->ms) {
        return x->ms < y->ms ? -1 : 1;
    }
    if (x->seq != y->seq) {
        return x->seq < y->seq ? -1 : 1;
    }
    if (x->at_ms != y->at_ms) {
        return x->at_ms < y->at_ms ? -1 : 1;
    }
    return (x->at > y->at) - (x->at < y->at);
}

/*
 * Entries of several scopes (each oldest first) in one order, oldest first
 * by stream id: a Resource whose partition changed has its history in both.
 */
static void history_sort(struct vg_history_entry *v, size_t n)
{
    struct history_key *keys;
    struct vg_history_entry *sorted;

    if (n < 2) {
        return;
    }
    keys = vg_malloc(n * sizeof(*keys));
    sorted = vg_malloc(n * sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        stream_id_parse(v[i].stream_id, &keys[i].ms, &keys[i].seq);
        keys[i].at_ms = v[i].at_ms;
        keys[i].at = i;
    }
    qsort(keys, n, sizeof(*keys), cmp_history_key);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = v[keys[i].at];
    }
    memcpy(v, sorted, n * sizeof(*v));
    vg_free(sorted);
    vg_free(keys);
}

vg_err_t vg_state_history(struct vg_state *st, const char *id, size_t max,
                          struct vg_history_entry **out, size_t *n_out, char *errstr,
                          size_t errstr_size)
{
    redisReply *reply = NULL;
    struct vg_history_entry *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    if (st->partitioned) {
        /* Every scope's stream in one round trip (per node on a cluster), merged. */
        struct history_read hr = {.id = id, .max = max};
        struct state_scopes_read rd = {"XREVRANGE history", history_queue_scope, history_take_scope,
                                       &hr};
        struct vg_offset *scopes = NULL;
        size_t n_scopes = 0;

        err = vg_state_scopes(st, &scopes, &n_scopes, errstr, errstr_size);
        if (err == VG_OK) {
            err = state_scopes_read(st, scopes, n_scopes, &rd, errstr, errstr_size);
        }
        vg_state_scopes_free(scopes, n_scopes);
        v = hr.v;
        n = hr.n;
        if (err != VG_OK) {
            vg_history_free(v, n);
            return err;
        }
        history_sort(v, n);
    } else {
        history_queue(st, id, max);
        err = state_read_replies(st, 1, &reply, "XREVRANGE history", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        err = history_take(st, id, reply, &v, &n, &cap, errstr, errstr_size);
        freeReplyObject(reply);
        if (err != VG_OK) {
            vg_history_free(v, n);
            return err;
        }
    }
    if (max > 0 && n > max) {
        /* the oldest entry read held more transitions than asked for */
        for (size_t i = 0; i < n - max; i++) {
            state_history_entry_fini(&v[i]);
        }
        memmove(v, v + (n - max), max * sizeof(*v));
        n = max;
    }
    if (n == 0) {
        vg_free(v);
        v = NULL;
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}
