/*
 * Durable timers and group buffers. A timer is a member of a
 * sorted set scored by its due time: one set per Kafka partition
 * (P:timers:<topic>/<n>), so the instance owning a partition fires its
 * timers, plus P:timers:groups for grouped notifications. Timer changes
 * are queued inside vg_state_commit's MULTI with the writes they belong
 * to; flushing a group buffer is one WATCH (vg_state_group_read) and
 * one MULTI/EXEC (vg_state_group_commit), so two instances can never both
 * send it. A buffer's sorted index (P:grp:idx:<member>) ranks its incidents
 * so that a flush reads only the bodies the grouped page lists plus two
 * counts, whatever the buffer holds. What a buffer becomes is decided by
 * rules/ (rules_timers.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

char *state_timer_key(const struct vg_state *st, const char *topic, int32_t partition)
{
    if (!topic) {
        return vg_asprintf("%s:timers:groups", st->prefix);
    }
    return vg_asprintf("%s:timers:%s/%d", st->prefix, topic, (int)partition);
}

/* The ZADD (due_ms > 0) or ZREM of `t`, built in `c`. */
static void timer_cmd(const struct vg_state *st, struct state_cmd *c, const struct vg_timer *t,
                      bool only_earlier)
{
    char *key = state_timer_key(st, t->topic, t->partition);

    if (t->due_ms > 0) {
        state_cmd_str(c, "ZADD");
        state_cmd_str(c, key);
        if (only_earlier) {
            state_cmd_str(c, "XX");
            state_cmd_str(c, "LT");
        } else if (t->nx) {
            state_cmd_str(c, "NX");
        }
        state_cmd_i64(c, t->due_ms);
    } else {
        state_cmd_str(c, "ZREM");
        state_cmd_str(c, key);
    }
    state_cmd_str(c, t->member);
    vg_free(key);
}

static void append_timer(struct vg_state *st, struct state_cmd *c, const struct vg_timer *t,
                         bool only_earlier)
{
    timer_cmd(st, c, t, only_earlier);
    state_cmd_append(st, c);
}

size_t state_append_timers(struct vg_state *st, struct state_cmd *c, const struct vg_timer *v,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        append_timer(st, c, &v[i], false);
    }
    return n;
}

/* "<pager>|<sink>|<group>": the group timer member and the buffer's key suffix. */
static char *group_member(const struct vg_page *pg)
{
    return vg_asprintf("%s|%s|%s", pg->pager, pg->sink, pg->group);
}

static char *group_key(const struct vg_state *st, const char *member)
{
    return vg_asprintf("%s:grp:%s", st->prefix, member);
}

/*
 * The buffer's index: incident id scored by vg_page_group_rank. Pager
 * names never hold ':', so "idx:<member>" is never another buffer's key,
 * and it lives under P:grp: so whatever drops the buffers drops it too.
 */
static char *group_index_key(const struct vg_state *st, const char *member)
{
    return vg_asprintf("%s:grp:idx:%s", st->prefix, member);
}

static char *labels_json(const struct vg_label *v, size_t n)
{
    cJSON *obj = cJSON_CreateObject();
    char *json;

    if (!obj) {
        vg_oom("labels JSON");
    }
    for (size_t i = 0; i < n; i++) {
        if (!cJSON_AddStringToObject(obj, v[i].key, v[i].value ? v[i].value : "")) {
            vg_oom("labels JSON");
        }
    }
    json = cJSON_PrintUnformatted(obj);
    if (!json) {
        vg_oom("labels JSON");
    }
    cJSON_Delete(obj);
    return json;
}

size_t state_append_group_page(struct vg_state *st, struct state_cmd *c, const struct vg_page *pg)
{
    char *member = group_member(pg);
    char *key = group_key(st, member);
    char *idx = group_index_key(st, member);
    char *body = vg_page_to_json(pg);
    char *labels = labels_json(pg->group_labels, pg->n_group_labels);
    struct vg_timer t = {
        .topic = NULL, .member = member, .due_ms = pg->at_ms + pg->group_wait_ms, .nx = true};

    /* The latest notification of an incident replaces an earlier one still waiting. */
    state_cmd_str(c, "HSET");
    state_cmd_str(c, key);
    state_cmd_str(c, pg->incident.id);
    state_cmd_str(c, body);
    state_cmd_str(c, "_labels");
    state_cmd_str(c, labels);
    state_cmd_str(c, "_pager");
    state_cmd_str(c, pg->pager);
    state_cmd_str(c, "_sink");
    state_cmd_str(c, pg->sink);
    state_cmd_append(st, c);
    /* its rank moves with its latest page (firing -> resolved) */
    state_cmd_str(c, "ZADD");
    state_cmd_str(c, idx);
    state_cmd_i64(c, vg_page_group_rank(strcmp(pg->status, "firing") == 0, pg->transition.at_ms));
    state_cmd_str(c, pg->incident.id);
    state_cmd_append(st, c);
    /* group_wait counts from the first page of the group: NX keeps the earliest. */
    append_timer(st, c, &t, false);
    cJSON_free(labels);
    vg_free(body);
    vg_free(idx);
    vg_free(key);
    vg_free(member);
    return 3;
}

void vg_due_timers_free(struct vg_due_timer *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_free(v[i].topic);
        vg_free(v[i].member);
        vg_free(v[i].scope_topic);
    }
    vg_free(v);
}

/*
 * The key of timer set `i` of a due read: part i's timers, or (i >= n_parts)
 * the group timers, global whatever the layout; every key built in its
 * scope whatever scope st is in.
 */
static char *due_key(const struct vg_state *st, const struct vg_offset *parts, size_t n_parts,
                     size_t i)
{
    const struct vg_offset *p = i < n_parts ? &parts[i] : NULL;

    if (!p) {
        return vg_asprintf("%s:timers:groups", st->global);
    }
    if (!st->partitioned) {
        return state_timer_key(st, p->topic, p->partition);
    }
    return vg_asprintf("%s:{%s/%d}:timers:%s/%d", st->name, p->topic, (int)p->partition, p->topic,
                       (int)p->partition);
}

static void queue_due(struct vg_state *st, struct state_cmd *c, const char *key, int64_t now_ms,
                      size_t max)
{
    state_cmd_str(c, "ZRANGEBYSCORE");
    state_cmd_str(c, key);
    state_cmd_str(c, "-inf");
    state_cmd_i64(c, now_ms);
    state_cmd_str(c, "WITHSCORES");
    state_cmd_str(c, "LIMIT");
    state_cmd_str(c, "0");
    state_cmd_i64(c, (int64_t)max);
    state_cmd_append(st, c);
}

/* The due timers of reply `r` (timer set `i`, see due_key) pushed onto v. */
static void take_due(const struct vg_state *st, const redisReply *r, const struct vg_offset *parts,
                     size_t n_parts, size_t i, struct vg_due_timer **v, size_t *n, size_t *cap)
{
    const struct vg_offset *p = i < n_parts ? &parts[i] : NULL;

    if (r->type != REDIS_REPLY_ARRAY) {
        return;
    }
    for (size_t j = 0; j + 1 < r->elements; j += 2) {
        const redisReply *m = r->element[j];
        const redisReply *sc = r->element[j + 1];
        struct vg_due_timer *t;

        if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING) {
            continue;
        }
        t = VG_ARRAY_PUSH(*v, *n, *cap);
        memset(t, 0, sizeof(*t));
        t->topic = p ? vg_strdup(p->topic) : NULL;
        t->partition = p ? p->partition : 0;
        t->member = vg_strndup(m->str, m->len);
        t->due_ms = (int64_t)strtod(sc->str, NULL);
        if (st->partitioned && p) {
            t->scope_topic = vg_strdup(p->topic);
            t->scope_partition = p->partition;
        }
    }
}

/*
 * Read timer set `i` (see due_key) in its scope: part i's, or the global
 * scope for the group timers. On a cluster each scope's keys are on the
 * primary of its own slot: one round trip each.
 */
static vg_err_t due_in_scope(struct vg_state *st, const struct vg_offset *parts, size_t n_parts,
                             size_t i, int64_t now_ms, size_t max, struct vg_due_timer **v,
                             size_t *n, size_t *cap, char *errstr, size_t errstr_size)
{
    const struct vg_offset *p = i < n_parts ? &parts[i] : NULL;
    redisReply *reply = NULL;
    struct state_cmd c = {0};
    char *key;
    vg_err_t err;

    err = vg_state_scope(st, p ? p->topic : NULL, p ? p->partition : 0, errstr, errstr_size);
    if (err == VG_OK) {
        err = state_need_ctx(st, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    key = due_key(st, parts, n_parts, i);
    queue_due(st, &c, key, now_ms, max);
    vg_free(key);
    state_cmd_fini(&c);
    err = state_read_checked(st, 1, &reply, "ZRANGEBYSCORE timers", errstr, errstr_size);
    if (err == VG_OK) {
        take_due(st, reply, parts, n_parts, i, v, n, cap);
        state_replies_free(&reply, 1);
    }
    return err;
}

/*
 * On a cluster with the partitioned layout each partition's timers are on
 * the primary of its own slot, the group timers on the global slot's: one
 * round trip per scope; st goes back to the scope it was in.
 */
static vg_err_t due_by_scope(struct vg_state *st, const struct vg_offset *parts, size_t n_parts,
                             bool groups, int64_t now_ms, size_t max, struct vg_due_timer **v,
                             size_t *n, size_t *cap, char *errstr, size_t errstr_size)
{
    char *was = state_scope_save(st);
    vg_err_t err = VG_OK;

    for (size_t i = 0; err == VG_OK && i < n_parts + (groups ? 1 : 0); i++) {
        err = due_in_scope(st, parts, n_parts, i, now_ms, max, v, n, cap, errstr, errstr_size);
    }
    return state_scope_restore(st, was, err, errstr, errstr_size);
}

vg_err_t vg_state_timers_due(struct vg_state *st, const struct vg_offset *parts, size_t n_parts,
                             bool groups, int64_t now_ms, size_t max, struct vg_due_timer **out,
                             size_t *n_out, char *errstr, size_t errstr_size)
{
    /* the group timers are global, whatever the layout: one set */
    size_t n_cmds = n_parts + (groups ? 1 : 0);
    struct vg_due_timer *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    redisReply **replies;
    struct state_cmd c = {0};
    vg_err_t err;

    *out = NULL;
    *n_out = 0;
    if (n_cmds == 0) {
        return VG_OK;
    }
    if (st->partitioned && st->cluster) {
        err = due_by_scope(st, parts, n_parts, groups, now_ms, max, &v, &n, &cap, errstr,
                           errstr_size);
        if (err != VG_OK) {
            vg_due_timers_free(v, n);
            return err;
        }
        *out = v;
        *n_out = n;
        return VG_OK;
    }
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    /* one pipelined round trip, on one Redis whatever the layout */
    for (size_t i = 0; i < n_cmds; i++) {
        char *key = due_key(st, parts, n_parts, i);

        queue_due(st, &c, key, now_ms, max);
        vg_free(key);
    }
    state_cmd_fini(&c);
    replies = vg_calloc(n_cmds, sizeof(*replies));
    err = state_read_checked(st, n_cmds, replies, "ZRANGEBYSCORE timers", errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(replies);
        return err;
    }
    for (size_t i = 0; i < n_cmds; i++) {
        take_due(st, replies[i], parts, n_parts, i, &v, &n, &cap);
    }
    state_replies_free(replies, n_cmds);
    vg_free(replies);
    *out = v;
    *n_out = n;
    return VG_OK;
}

vg_err_t vg_state_timer_set(struct vg_state *st, const struct vg_timer *t, bool only_earlier,
                            char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err;

    timer_cmd(st, &c, t, only_earlier);
    err = state_run(st, &c, "ZADD timer", NULL, NULL, errstr, errstr_size);
    state_cmd_fini(&c);
    return err;
}

void vg_group_buffer_fini(struct vg_group_buffer *b)
{
    vg_free(b->pager);
    vg_free(b->sink);
    vg_labels_free(b->labels, b->n_labels);
    for (size_t i = 0; i < b->n_bodies; i++) {
        vg_free(b->bodies[i]);
    }
    vg_free(b->bodies);
    memset(b, 0, sizeof(*b));
}

/* The "_labels" field: a JSON object of the group's labels, in group_by order. */
static void parse_labels(struct vg_group_buffer *b, const char *json, size_t len)
{
    cJSON *obj = cJSON_ParseWithLength(json, len);
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
    {
        if (cJSON_IsString(it)) {
            b->labels = vg_realloc(b->labels, (b->n_labels + 1) * sizeof(*b->labels));
            b->labels[b->n_labels].key = vg_strdup(it->string);
            b->labels[b->n_labels].value = vg_strdup(it->valuestring);
            b->n_labels++;
        }
    }
    cJSON_Delete(obj);
}

/* HGETALL of a buffer: "_labels", "_pager", "_sink", and one body per incident id. */
static void parse_buffer(struct vg_group_buffer *b, const redisReply *all)
{
    b->bodies = vg_calloc(all->elements / 2 + 1, sizeof(*b->bodies));
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        const redisReply *k = all->element[i];
        const redisReply *v = all->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        if (strcmp(k->str, "_labels") == 0) {
            parse_labels(b, v->str, v->len);
        } else if (strcmp(k->str, "_pager") == 0) {
            vg_free(b->pager);
            b->pager = vg_strndup(v->str, v->len);
        } else if (strcmp(k->str, "_sink") == 0) {
            vg_free(b->sink);
            b->sink = vg_strndup(v->str, v->len);
        } else if (k->str[0] != '_') {
            b->bodies[b->n_bodies++] = vg_strndup(v->str, v->len);
        }
    }
}

static bool reply_is_str(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING;
}

/* HMGET's "_labels", "_pager", "_sink". */
static void parse_meta(struct vg_group_buffer *b, const redisReply *meta)
{
    if (meta->type != REDIS_REPLY_ARRAY || meta->elements != 3) {
        return;
    }
    if (reply_is_str(meta->element[0])) {
        parse_labels(b, meta->element[0]->str, meta->element[0]->len);
    }
    if (reply_is_str(meta->element[1])) {
        b->pager = vg_strndup(meta->element[1]->str, meta->element[1]->len);
    }
    if (reply_is_str(meta->element[2])) {
        b->sink = vg_strndup(meta->element[2]->str, meta->element[2]->len);
    }
}

/* One command's reply in `*out` (VG_OK), or the error that ends the read. */
static vg_err_t run_one(struct vg_state *st, struct state_cmd *c, const char *what,
                        redisReply **out, char *errstr, size_t errstr_size)
{
    return state_run(st, c, what, NULL, out, errstr, errstr_size);
}

/*
 * The listed part of an indexed buffer: the bodies of the `limit` highest
 * ranked incidents (one HMGET), the counts from the index (ZCARD, ZCOUNT).
 * A buffer with more bodies than its index names was written (partly) by
 * an older vigil: read whole (HGETALL), rules/ chooses and counts.
 */
static vg_err_t read_buffer(struct vg_state *st, const char *key, const char *idx, size_t limit,
                            struct vg_group_buffer *b, char *errstr, size_t errstr_size)
{
    enum { META, CARD, FIRING, TOP, LEN, N };
    struct state_cmd c = {0};
    redisReply *r[N] = {0};
    redisReply *bodies = NULL;
    const redisReply *top;
    bool have_r = false;
    vg_err_t err;

    state_cmd_str(&c, "HMGET");
    state_cmd_str(&c, key);
    state_cmd_str(&c, "_labels");
    state_cmd_str(&c, "_pager");
    state_cmd_str(&c, "_sink");
    state_cmd_append(st, &c);
    state_cmd_str(&c, "ZCARD");
    state_cmd_str(&c, idx);
    state_cmd_append(st, &c);
    state_cmd_str(&c, "ZCOUNT");
    state_cmd_str(&c, idx);
    state_cmd_i64(&c, VG_GROUP_RANK_FIRING);
    state_cmd_str(&c, "+inf");
    state_cmd_append(st, &c);
    state_cmd_str(&c, "ZREVRANGE");
    state_cmd_str(&c, idx);
    state_cmd_str(&c, "0");
    state_cmd_i64(&c, (int64_t)limit - 1);
    state_cmd_append(st, &c);
    state_cmd_str(&c, "HLEN");
    state_cmd_str(&c, key);
    state_cmd_append(st, &c);
    err = state_read_checked(st, N, r, "read group", errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    have_r = true;
    parse_meta(b, r[META]);
    top = r[TOP];
    /* more bodies than index entries: written (partly) by an older vigil, during an upgrade */
    if (r[CARD]->type == REDIS_REPLY_INTEGER && r[LEN]->type == REDIS_REPLY_INTEGER &&
        r[LEN]->integer - 3 > r[CARD]->integer) {
        vg_group_buffer_fini(b);
        state_cmd_str(&c, "HGETALL");
        state_cmd_str(&c, key);
        err = run_one(st, &c, "HGETALL group", &bodies, errstr, errstr_size);
        if (err == VG_OK && bodies->type == REDIS_REPLY_ARRAY) {
            parse_buffer(b, bodies);
        }
        goto out;
    }
    if (r[CARD]->type == REDIS_REPLY_INTEGER && r[FIRING]->type == REDIS_REPLY_INTEGER &&
        r[CARD]->integer >= r[FIRING]->integer && r[FIRING]->integer >= 0) {
        b->n_firing = (size_t)r[FIRING]->integer;
        b->n_ended = (size_t)(r[CARD]->integer - r[FIRING]->integer);
    }
    if (top->type != REDIS_REPLY_ARRAY || top->elements == 0 || !reply_is_str(top->element[0])) {
        goto out;
    }
    state_cmd_str(&c, "HMGET");
    state_cmd_str(&c, key);
    for (size_t i = 0; i < top->elements; i++) {
        if (reply_is_str(top->element[i])) {
            state_cmd_arg(&c, top->element[i]->str, top->element[i]->len);
        }
    }
    err = run_one(st, &c, "HMGET group", &bodies, errstr, errstr_size);
    if (err != VG_OK || bodies->type != REDIS_REPLY_ARRAY) {
        goto out;
    }
    b->bodies = vg_calloc(bodies->elements + 1, sizeof(*b->bodies));
    for (size_t i = 0; i < bodies->elements; i++) {
        /* nil: an index entry without a body, never written by vigil; not listed */
        if (reply_is_str(bodies->element[i])) {
            b->bodies[b->n_bodies++] = vg_strndup(bodies->element[i]->str, bodies->element[i]->len);
        }
    }
out:
    if (have_r) {
        state_replies_free(r, N);
    }
    if (bodies) {
        freeReplyObject(bodies);
    }
    state_cmd_fini(&c);
    return err;
}

vg_err_t vg_state_group_read(struct vg_state *st, const char *member, size_t limit,
                             struct vg_group_buffer *b, char *errstr, size_t errstr_size)
{
    char *key = group_key(st, member);
    char *idx = group_index_key(st, member);
    struct state_cmd c = {0};
    vg_err_t err;

    VG_ASSERT(limit > 0);
    memset(b, 0, sizeof(*b));
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    /* every page written to the buffer changes both keys in one MULTI */
    state_cmd_str(&c, "WATCH");
    state_cmd_str(&c, key);
    state_cmd_str(&c, idx);
    err = state_run(st, &c, "WATCH group", NULL, NULL, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    err = read_buffer(st, key, idx, limit, b, errstr, errstr_size);
    if (err != VG_OK && st->ctx) {
        /* Best effort: the error above is the one reported; a failed
         * UNWATCH leaves nothing behind that the next WATCH or EXEC would
         * not clear. */
        state_cmd_str(&c, "UNWATCH");
        (void)state_run(st, &c, "UNWATCH", NULL, NULL, NULL, 0);
    }
out:
    state_cmd_fini(&c);
    vg_free(idx);
    vg_free(key);
    return err;
}

/* MULTI, [XADD outbox], DEL buffer, ZREM timer, EXEC: returns the number of replies. */
static size_t queue_group_commit(struct vg_state *st, struct state_cmd *c, const char *member,
                                 const struct vg_group_page *gp)
{
    char *tkey = state_timer_key(st, NULL, 0);
    size_t n = 4;

    state_cmd_str(c, "MULTI");
    state_cmd_append(st, c);
    if (gp) {
        state_append_outbox_entry(st, c, gp->id, gp->sink, gp->pager, gp->body,
                                  gp->body ? strlen(gp->body) : 0, NULL);
        n++;
    }
    state_cmd_str(c, "DEL");
    state_cmd_fmt(c, "%s:grp:%s", st->prefix, member);
    state_cmd_fmt(c, "%s:grp:idx:%s", st->prefix, member);
    state_cmd_append(st, c);
    state_cmd_str(c, "ZREM");
    state_cmd_str(c, tkey);
    state_cmd_str(c, member);
    state_cmd_append(st, c);
    state_cmd_str(c, "EXEC");
    state_cmd_append(st, c);
    vg_free(tkey);
    return n;
}

/* EXEC's reply: an array (done), nil (the buffer changed since WATCH) or an error. */
static vg_err_t check_group_exec(struct vg_state *st, const redisReply *exec, bool *done,
                                 char *errstr, size_t errstr_size)
{
    if (exec->type == REDIS_REPLY_ERROR) {
        return state_reply_error(st, "group flush", exec, errstr, errstr_size);
    }
    if (exec->type != REDIS_REPLY_ARRAY) {
        return VG_OK; /* nil: the next round flushes it */
    }
    for (size_t i = 0; i < exec->elements; i++) {
        if (exec->element[i]->type == REDIS_REPLY_ERROR) {
            return state_reply_error(st, "group flush", exec->element[i], errstr, errstr_size);
        }
    }
    *done = true;
    return VG_OK;
}

vg_err_t vg_state_group_commit(struct vg_state *st, const char *member,
                               const struct vg_group_page *gp, bool *done, char *errstr,
                               size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply **replies;
    size_t n;
    vg_err_t err;

    *done = false;
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    n = queue_group_commit(st, &c, member, gp);
    state_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = state_read_replies(st, n, replies, "group flush", errstr, errstr_size);
    if (err == VG_OK) {
        err = check_group_exec(st, replies[n - 1], done, errstr, errstr_size);
        state_replies_free(replies, n);
    }
    vg_free(replies);
    return err;
}
