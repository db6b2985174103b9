/*
 * The read side of a Resource's history stream P:hist:{ID}:
 * `vigil history ID` and the detail view of `vigil get ID`. A stream entry
 * holds one or more transitions (a commit writes all of a Resource's
 * transitions of its batch in one XADD): each `field` key starts the next
 * one, and a transition without its own `at` shares the previous one's
 * event time, position and message. Writing is part of the commit in
 * state.c, so that a history entry exists exactly when its state change does.
 */
#include <stdarg.h>
#include <stdio.h>
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
        if (name_is(k, "field") && e->field) {
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
        if (name_is(k, "field")) {
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

vg_err_t vg_state_history(struct vg_state *st, const char *id, size_t max,
                          struct vg_history_entry **out, size_t *n_out, char *errstr,
                          size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    struct vg_history_entry *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    char *key;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    /* Newest first with a COUNT, so a long history costs only what is shown
     * (an entry holds at least one transition: `max` entries are enough). */
    key = state_key_res(st, "hist", id);
    state_cmd_str(&c, "XREVRANGE");
    state_cmd_str(&c, key);
    state_cmd_str(&c, "+");
    state_cmd_str(&c, "-");
    if (max > 0) {
        state_cmd_str(&c, "COUNT");
        state_cmd_i64(&c, (int64_t)max);
    }
    err = state_run(st, &c, "XREVRANGE history", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    vg_free(key);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        state_set_err(errstr, errstr_size, "redis %s: XREVRANGE history: unexpected reply type %d",
                      st->redacted, reply->type);
        err = VG_ERR_INVALID;
        goto out;
    }
    /* The reply is newest first: fill from the back so the result is oldest first. */
    for (size_t i = reply->elements; i-- > 0;) {
        const char *why = NULL;

        if (!entry_from_reply(reply->element[i], &v, &n, &cap, &why)) {
            VG_LOG_WARN("state", "resource %s: unreadable history entry skipped: %s", id, why);
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
out:
    freeReplyObject(reply);
    return err;
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
