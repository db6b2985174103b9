/*
 * The read side of a Resource's history stream P:hist:{ID}:
 * `vigil history ID` and the detail view of `vigil get ID`. A stream entry
 * holds one or more transitions (a commit writes all of a Resource's
 * transitions of its batch in one XADD): each `t` (field, from and to,
 * joined by STATE_PIECE_SEP) starts the next one, and a transition without
 * its own `s` (at, partition, offset and topic, joined so) shares the previous
 * one's event time, position and message. Entries written before the
 * packed pairs (`field`, `from`, `to`, `at`, `topic`, `partition`,
 * `offset`, each its own pair) read the same. Writing is part of the commit in
 * state.c, so that a history entry exists exactly when its state change does.
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

static bool name_is(const redisReply *k, const char *s)
{
    size_t n = strlen(s);

    return k->len == n && memcmp(k->str, s, n) == 0;
}

static void entry_fini(struct vg_history_entry *e)
{
    vg_free(e->stream_id);
    vg_free(e->field);
    vg_free(e->from);
    vg_free(e->to);
    vg_free(e->pos.topic);
    vg_free(e->message);
    for (size_t i = 0; i < e->n_extra * 2; i++) {
        vg_free(e->extra[i]);
    }
    vg_free(e->extra);
    memset(e, 0, sizeof(*e));
}

/* A copy of a string value; NULL (entry rejected) when it holds a NUL byte. */
static char *copy_text(const redisReply *v)
{
    if (memchr(v->str, '\0', v->len)) {
        return NULL;
    }
    return vg_strndup(v->str, v->len);
}

/* Move whatever part of a transition `e` has into `extra`: it is a log line. */
static void parts_to_extra(struct vg_history_entry *e, size_t *cap_extra)
{
    static const char *const names[3] = {"field", "from", "to"};
    char **parts[3] = {&e->field, &e->from, &e->to};

    for (size_t j = 0; j < 3; j++) {
        if (*parts[j]) {
            vg_array_grow((void **)&e->extra, cap_extra, (e->n_extra + 1) * 2, sizeof(*e->extra));
            e->extra[e->n_extra * 2] = vg_strdup(names[j]);
            e->extra[e->n_extra * 2 + 1] = *parts[j];
            *parts[j] = NULL;
            e->n_extra++;
        }
    }
}

/*
 * Finish transition `e` of an entry: a transition has a field and a `to`,
 * anything else is a log line; one without its own `at` (a later
 * transition of the same event) takes the time, position and message of
 * `prev` (NULL: the entry's first).
 */
static void entry_finish(struct vg_history_entry *e, bool has_at,
                         const struct vg_history_entry *prev, size_t *cap_extra)
{
    if (!has_at && prev) {
        e->at_ms = prev->at_ms;
        if (!e->pos.topic && prev->pos.topic) {
            e->pos.topic = vg_strdup(prev->pos.topic);
        }
        if (e->pos.partition == -1) {
            e->pos.partition = prev->pos.partition;
        }
        if (e->pos.offset == -1) {
            e->pos.offset = prev->pos.offset;
        }
        if (!e->message && prev->message) {
            e->message = vg_strdup(prev->message);
        }
    }
    if (e->field && e->to) {
        if (!e->from) {
            e->from = vg_strdup("");
        }
    } else {
        parts_to_extra(e, cap_extra);
    }
}

/*
 * The piece of `*p` up to the next STATE_PIECE_SEP (or the end when `last`),
 * copied; *p moves past it. NULL when the separator is missing, or is there
 * after the last piece.
 */
static char *piece_take(const char **p, bool last)
{
    const char *sep = strchr(*p, STATE_PIECE_SEP);
    char *out;

    if (last != (sep == NULL)) {
        return NULL;
    }
    if (last) {
        out = vg_strdup(*p);
        *p += strlen(*p);
    } else {
        out = vg_strndup(*p, (size_t)(sep - *p));
        *p = sep + 1;
    }
    return out;
}

/* A packed transition `t` (field, from, to joined by STATE_PIECE_SEP) into e; false if bad. */
static bool transition_parse(struct vg_history_entry *e, const char *v)
{
    char *parts[3];

    for (size_t i = 0; i < 3; i++) {
        parts[i] = piece_take(&v, i == 2);
        if (!parts[i]) {
            while (i-- > 0) {
                vg_free(parts[i]);
            }
            return false;
        }
    }
    vg_free(e->field);
    vg_free(e->from);
    vg_free(e->to);
    e->field = parts[0];
    e->from = parts[1];
    e->to = parts[2];
    return e->field[0] != '\0' && e->to[0] != '\0';
}

/* A packed source `s` (at, partition, offset, topic, joined so) into e; false when malformed. */
static bool source_parse(struct vg_history_entry *e, const char *v)
{
    int64_t num[3];
    char *topic;

    for (size_t i = 0; i < 3; i++) {
        char *piece = piece_take(&v, false);
        bool ok = piece && vg_parse_i64(piece, &num[i]);

        vg_free(piece);
        if (!ok) {
            return false;
        }
    }
    if (num[1] < -1 || num[1] > INT32_MAX || strchr(v, STATE_PIECE_SEP)) {
        return false;
    }
    topic = v[0] ? vg_strdup(v) : NULL;
    e->at_ms = num[0];
    e->pos.partition = (int32_t)num[1];
    e->pos.offset = num[2];
    vg_free(e->pos.topic);
    e->pos.topic = topic;
    return true;
}

static struct vg_history_entry *entry_start(struct vg_history_entry **v, size_t *n, size_t *cap,
                                            const redisReply *id)
{
    struct vg_history_entry *e = VG_ARRAY_PUSH(*v, *n, *cap);

    memset(e, 0, sizeof(*e));
    e->pos.partition = -1;
    e->pos.offset = -1;
    e->stream_id = vg_strndup(id->str, id->len);
    return e;
}

/*
 * One XRANGE entry: [id, [name, value, ...]], appended to v[*n..] as one
 * history entry per transition it holds (a log line: one). False (with
 * `why`) when it is not one of ours; then nothing is appended.
 */
static bool entry_from_reply(const redisReply *r, struct vg_history_entry **v, size_t *n,
                             size_t *cap, const char **why)
{
    const redisReply *fields;
    size_t first = *n;
    size_t cap_extra = 0;
    bool has_at = false;
    struct vg_history_entry *e;
    int64_t val;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        *why = "not a stream entry";
        return false;
    }
    fields = r->element[1];
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0) {
        *why = "odd number of fields";
        return false;
    }
    e = entry_start(v, n, cap, r->element[0]);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        const redisReply *vr = fields->element[i + 1];
        char **slot = NULL;
        char *text;

        if (k->type != REDIS_REPLY_STRING || vr->type != REDIS_REPLY_STRING) {
            *why = "non-string field";
            goto fail;
        }
        if ((name_is(k, "field") || name_is(k, "t")) && e->field) {
            /* the next transition of the same entry */
            entry_finish(e, has_at, *n - 1 > first ? &(*v)[*n - 2] : NULL, &cap_extra);
            e = entry_start(v, n, cap, r->element[0]);
            cap_extra = 0;
            has_at = false;
        }
        text = copy_text(vr);
        if (!text) {
            *why = "NUL byte in a value";
            goto fail;
        }
        if (name_is(k, "t")) {
            bool ok = transition_parse(e, text);

            vg_free(text);
            if (!ok) {
                *why = "malformed transition";
                goto fail;
            }
            continue;
        } else if (name_is(k, "s")) {
            bool ok = source_parse(e, text);

            vg_free(text);
            if (!ok) {
                *why = "malformed source";
                goto fail;
            }
            has_at = true;
            continue;
        } else if (name_is(k, "field")) {
            slot = &e->field;
        } else if (name_is(k, "from")) {
            slot = &e->from;
        } else if (name_is(k, "to")) {
            slot = &e->to;
        } else if (name_is(k, "topic")) {
            slot = text[0] ? &e->pos.topic : NULL;
        } else if (name_is(k, "message")) {
            slot = &e->message;
        } else if (name_is(k, "at") || name_is(k, "partition") || name_is(k, "offset")) {
            bool ok = vg_parse_i64(text, &val);

            if (ok && name_is(k, "at")) {
                e->at_ms = val;
                has_at = true;
            } else if (ok && name_is(k, "partition") && val >= -1 && val <= INT32_MAX) {
                e->pos.partition = (int32_t)val;
            } else if (ok && name_is(k, "offset")) {
                e->pos.offset = val;
            } else {
                vg_free(text);
                *why = "malformed number";
                goto fail;
            }
        } else {
            char **pair;

            vg_array_grow((void **)&e->extra, &cap_extra, (e->n_extra + 1) * 2, sizeof(*e->extra));
            pair = &e->extra[e->n_extra * 2];
            pair[0] = copy_text(k);
            if (!pair[0]) {
                vg_free(text);
                *why = "NUL byte in a field name";
                goto fail;
            }
            pair[1] = text;
            e->n_extra++;
            continue;
        }
        if (slot) {
            vg_free(*slot);
            *slot = text;
        } else {
            vg_free(text);
        }
    }
    entry_finish(e, has_at, *n - 1 > first ? &(*v)[*n - 2] : NULL, &cap_extra);
    return true;
fail:
    while (*n > first) {
        entry_fini(&(*v)[--*n]);
    }
    return false;
}

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

        if (!entry_from_reply(reply->element[i], v, n, cap, &why)) {
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
            entry_fini(&v[i]);
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

void vg_history_free(struct vg_history_entry *v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        entry_fini(&v[i]);
    }
    vg_free(v);
}
