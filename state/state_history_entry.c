/*
 * A history entry of P:hist:{ID}, both ways: the packed pairs a commit
 * writes (state.c) and one XRANGE entry read back as transitions
 * (state_history.c; docs/state.md, "P:hist:{ID} entries"). An entry holds
 * one or more transitions (a commit writes all of a Resource's transitions
 * of its batch in one XADD): each `t` (field, from and to, joined by
 * STATE_PIECE_SEP) starts the next one, and a transition without its own
 * `s` (at, partition, offset and topic, joined so) shares the previous
 * one's event time, position and message. Entries written before the
 * packed pairs (`field`, `from`, `to`, `at`, `topic`, `partition`,
 * `offset`, each its own pair) read the same.
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/util.h"

/* ---- writing: the packed pairs ---- */

void state_history_transition(struct state_cmd *c, const char *field, const char *from,
                              const char *to)
{
    const struct state_piece p[3] = {
        {field, strlen(field), 0},
        {from, strlen(from), 0},
        {to, strlen(to), 0},
    };

    state_cmd_field_pieces(c, "t", 1, p, 3);
}

void state_history_source(struct state_cmd *c, int64_t at_ms, const struct vg_kafka_pos *pos,
                          const char *message)
{
    const char *topic = pos->topic ? pos->topic : "";
    const struct state_piece p[4] = {
        {NULL, 0, at_ms},
        {NULL, 0, pos->partition},
        {NULL, 0, pos->offset},
        {topic, strlen(topic), 0},
    };

    state_cmd_field_pieces(c, "s", 1, p, 4);
    if (message) {
        state_cmd_field(c, "message", message);
    }
}

/* ---- reading: one XRANGE entry ---- */

void state_history_entry_fini(struct vg_history_entry *e)
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

bool state_history_entry_read(const redisReply *r, struct vg_history_entry **v, size_t *n,
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
        if ((state_reply_is(k, "field") || state_reply_is(k, "t")) && e->field) {
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
        if (state_reply_is(k, "t")) {
            bool ok = transition_parse(e, text);

            vg_free(text);
            if (!ok) {
                *why = "malformed transition";
                goto fail;
            }
            continue;
        } else if (state_reply_is(k, "s")) {
            bool ok = source_parse(e, text);

            vg_free(text);
            if (!ok) {
                *why = "malformed source";
                goto fail;
            }
            has_at = true;
            continue;
        } else if (state_reply_is(k, "field")) {
            slot = &e->field;
        } else if (state_reply_is(k, "from")) {
            slot = &e->from;
        } else if (state_reply_is(k, "to")) {
            slot = &e->to;
        } else if (state_reply_is(k, "topic")) {
            slot = text[0] ? &e->pos.topic : NULL;
        } else if (state_reply_is(k, "message")) {
            slot = &e->message;
        } else if (state_reply_is(k, "at") || state_reply_is(k, "partition") ||
                   state_reply_is(k, "offset")) {
            bool ok = vg_parse_i64(text, &val);

            if (ok && state_reply_is(k, "at")) {
                e->at_ms = val;
                has_at = true;
            } else if (ok && state_reply_is(k, "partition") && val >= -1 && val <= INT32_MAX) {
                e->pos.partition = (int32_t)val;
            } else if (ok && state_reply_is(k, "offset")) {
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
        state_history_entry_fini(&(*v)[--*n]);
    }
    return false;
}

void vg_history_free(struct vg_history_entry *v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        state_history_entry_fini(&v[i]);
    }
    vg_free(v);
}
