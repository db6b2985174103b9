/*
 * The read side of Resources, for `vigil get` and the HTTP API: one
 * Resource by id, and lists filtered by type, workspace, owner and name
 * glob, found through the index sets and the name index (never SCAN).
 * Nothing here touches the pipeline's cache; history reads are in
 * state_history.c. With redis.layout partitioned every registered scope is
 * read (state_scopes_read: one round trip per node) and merged, one
 * Resource per id, the newest updated_at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_cluster.h"
#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

/*
 * HGETALL each of `ids` in one round trip. out[i] is NULL for a missing
 * or unreadable hash (`strict`: unreadable is VG_ERR_INVALID instead).
 */
static vg_err_t load_many(struct vg_state *st, const char *const *ids, size_t n, bool strict,
                          struct vg_resource **out, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply **replies;
    vg_err_t err;

    if (n == 0) {
        return VG_OK;
    }
    for (size_t i = 0; i < n; i++) {
        state_resource_queue_read(st, &c, ids[i]);
    }
    state_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = state_read_checked(st, n, replies, "HGETALL", errstr, errstr_size);
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    for (size_t i = 0; i < n && err == VG_OK; i++) {
        const redisReply *r = replies[i];
        char why[128];

        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            out[i] = state_resource_from_reply(r, why, sizeof(why));
            if (!out[i] && strict) {
                state_set_err(errstr, errstr_size, "redis %s: resource %s: unreadable hash: %s",
                              st->redacted, ids[i], why);
                err = VG_ERR_INVALID;
            } else if (!out[i]) {
                VG_LOG_WARN("state", "resource %s: unreadable hash skipped: %s", ids[i], why);
            }
        }
    }
    if (err != VG_OK) {
        for (size_t i = 0; i < n; i++) {
            vg_resource_destroy(out[i]);
            out[i] = NULL;
        }
    }
    state_replies_free(replies, n);
    vg_free(replies);
    return err;
}

static int cmp_resource(const void *a, const void *b)
{
    const struct vg_resource *ra = *(const struct vg_resource *const *)a;
    const struct vg_resource *rb = *(const struct vg_resource *const *)b;
    int d = strcmp(ra->name, rb->name);

    return d != 0 ? d : strcmp(ra->id, rb->id);
}

static bool filter_match(const struct vg_state_filter *f, const struct vg_resource *res)
{
    if (!f) {
        return true;
    }
    return (!f->type || strcmp(f->type, res->type) == 0) &&
           (!f->workspace || strcmp(f->workspace, res->workspace) == 0) &&
           (!f->owner || strcmp(f->owner, res->owner) == 0) &&
           (!f->name_glob || vg_glob_match(f->name_glob, res->name));
}

/* Queue the index-set query for `f`'s type/workspace (SMEMBERS P:idx:all when neither). */
static void append_set_query(struct vg_state *st, struct state_cmd *c, const char *type,
                             const char *ws)
{
    if (type && ws) {
        state_cmd_str(c, "SINTER");
        state_cmd_fmt(c, "%s:idx:type:%s", st->prefix, type);
        state_cmd_fmt(c, "%s:idx:ws:%s", st->prefix, ws);
    } else if (type) {
        state_cmd_str(c, "SMEMBERS");
        state_cmd_fmt(c, "%s:idx:type:%s", st->prefix, type);
    } else if (ws) {
        state_cmd_str(c, "SMEMBERS");
        state_cmd_fmt(c, "%s:idx:ws:%s", st->prefix, ws);
    } else {
        state_cmd_str(c, "SMEMBERS");
        state_cmd_fmt(c, "%s:idx:all", st->prefix);
    }
    state_cmd_append(st, c);
}

/* ZRANGEBYLEX P:idx:name over the members whose name starts with the glob's literal prefix. */
static void append_name_query(struct vg_state *st, struct state_cmd *c, const char *glob)
{
    size_t lit = strcspn(glob, "*?[\\");

    state_cmd_str(c, "ZRANGEBYLEX");
    state_cmd_fmt(c, "%s:idx:name", st->prefix);
    if (lit == 0) {
        state_cmd_str(c, "-");
        state_cmd_str(c, "+");
    } else {
        /* [prefix .. (prefix\xff: UTF-8 text never holds a 0xff byte, so every
         * member starting with the prefix sorts below prefix\xff. */
        state_cmd_fmt(c, "[%.*s", (int)lit, glob);
        state_cmd_fmt(c, "(%.*s\xff", (int)lit, glob);
    }
    state_cmd_append(st, c);
}

static bool reply_is_array(const struct vg_state *st, const redisReply *r, const char *what,
                           vg_err_t *err, char *errstr, size_t errstr_size)
{
    if (r->type == REDIS_REPLY_ERROR) {
        *err = state_reply_error(st, what, r, errstr, errstr_size);
        return false;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        state_set_err(errstr, errstr_size, "redis %s: %s: unexpected reply type %d", st->redacted,
                      what, r->type);
        *err = VG_ERR_INVALID;
        return false;
    }
    return true;
}

/* Queue the index queries of `f`; returns how many replies (state_list_ids reads them). */
static size_t list_queue(struct vg_state *st, const struct vg_state_filter *f, struct state_cmd *c)
{
    const char *type = f ? f->type : NULL;
    const char *ws = f ? f->workspace : NULL;
    const char *glob = f ? f->name_glob : NULL;
    size_t n_replies = 0;

    if (type || ws || !glob) {
        append_set_query(st, c, type, ws);
        n_replies++;
    }
    if (glob) {
        append_name_query(st, c, glob);
        state_cmd_str(c, "ZCARD");
        state_cmd_fmt(c, "%s:idx:name", st->prefix);
        state_cmd_append(st, c);
        state_cmd_str(c, "SCARD");
        state_cmd_fmt(c, "%s:idx:all", st->prefix);
        state_cmd_append(st, c);
        n_replies += 3;
    }
    return n_replies;
}

/*
 * The ids in the replies of list_queue (the set's when `by_set`, the name
 * index's matched against `glob` when non-NULL, intersected when both),
 * pushed onto (*ids, *n, *cap) as owned strings.
 */
static vg_err_t ids_from_replies(struct vg_state *st, bool by_set, const char *glob,
                                 redisReply **replies, char ***ids, size_t *n, size_t *cap,
                                 char *errstr, size_t errstr_size)
{
    struct vg_map *in_set = NULL;
    vg_err_t err = VG_OK;

    if (by_set) {
        const redisReply *r = replies[0];

        if (!reply_is_array(st, r, "index", &err, errstr, errstr_size)) {
            return err;
        }
        if (glob) {
            in_set = vg_map_new();
        }
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }
            if (in_set) {
                vg_map_put(in_set, r->element[i]->str, (void *)1);
            } else {
                *VG_ARRAY_PUSH(*ids, *n, *cap) = vg_strndup(r->element[i]->str, r->element[i]->len);
            }
        }
    }
    if (glob) {
        const redisReply *r = replies[by_set ? 1 : 0];

        if (!reply_is_array(st, r, "name index", &err, errstr, errstr_size)) {
            goto out;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *m = r->element[i];
            const char *nul;
            char *name;
            bool match;

            if (m->type != REDIS_REPLY_STRING) {
                continue;
            }
            nul = memchr(m->str, '\0', m->len);
            if (!nul || nul == m->str + m->len - 1) {
                continue; /* not one of ours */
            }
            name = vg_strndup(m->str, (size_t)(nul - m->str));
            match = vg_glob_match(glob, name);
            vg_free(name);
            if (match && (!in_set || vg_map_get(in_set, nul + 1))) {
                *VG_ARRAY_PUSH(*ids, *n, *cap) =
                    vg_strndup(nul + 1, m->len - (size_t)(nul + 1 - m->str));
            }
        }
    }
out:
    vg_map_destroy(in_set, NULL);
    return err;
}

static void ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_free(ids[i]);
    }
    vg_free(ids);
}

/*
 * The candidate ids of `f`, from the indexes alone (never SCAN): the
 * type/workspace sets, and for a name glob the name index P:idx:name
 * narrowed by the glob's literal prefix and matched on the name part.
 * If the name index holds fewer members than P:idx:all (Resources written
 * by a vigil before the index existed), the sets are used alone and the
 * name is matched after loading. Each id appears once in *ids (owned
 * strings, freed by the caller).
 */
static vg_err_t list_ids(struct vg_state *st, const struct vg_state_filter *f, char ***ids_out,
                         size_t *n_out, char *errstr, size_t errstr_size)
{
    const char *glob = f ? f->name_glob : NULL;
    bool by_set = (f && (f->type || f->workspace)) || !glob;
    struct state_cmd c = {0};
    redisReply *replies[4] = {NULL, NULL, NULL, NULL};
    size_t n_replies = list_queue(st, f, &c);
    char **ids = NULL;
    size_t n = 0;
    size_t cap = 0;
    vg_err_t err = VG_OK;

    state_cmd_fini(&c);
    err = state_read_replies(st, n_replies, replies, "index", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (glob) {
        const redisReply *zcard = replies[n_replies - 2];
        const redisReply *scard = replies[n_replies - 1];

        if (zcard->type == REDIS_REPLY_INTEGER && scard->type == REDIS_REPLY_INTEGER &&
            zcard->integer < scard->integer) {
            /* An index older than this vigil: fall back to the sets. */
            if (!by_set) {
                state_replies_free(replies, n_replies);
                append_set_query(st, &c, NULL, NULL);
                state_cmd_fini(&c);
                n_replies = 1;
                err = state_read_replies(st, 1, replies, "index", errstr, errstr_size);
                if (err != VG_OK) {
                    return err;
                }
                by_set = true;
            }
            glob = NULL;
        }
    }
    err = ids_from_replies(st, by_set, glob, replies, &ids, &n, &cap, errstr, errstr_size);
    state_replies_free(replies, n_replies);
    if (err != VG_OK) {
        ids_free(ids, n);
        return err;
    }
    *ids_out = ids;
    *n_out = n;
    return VG_OK;
}

/* Keep those of res[0..n) that match `f` (the others destroyed), sorted; the new count. */
static size_t keep_matching(const struct vg_state_filter *f, struct vg_resource **res, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (res[i] && filter_match(f, res[i])) {
            res[k++] = res[i];
        } else {
            vg_resource_destroy(res[i]);
        }
    }
    qsort(res, k, sizeof(*res), cmp_resource);
    return k;
}

/* ---- the partitioned layout: every scope read, then merged ----------------------- */

bool state_resource_newer(const struct vg_resource *a, const struct vg_resource *b)
{
    return a->updated_at_ms > b->updated_at_ms;
}

/* The node that serves scope k's slot on a cluster; 0 on one Redis (one node). */
static uint16_t scope_node(const struct vg_state *st, const struct vg_offset *scope)
{
    char tag[512];
    int len;

    if (!st->cluster) {
        return 0;
    }
    len = snprintf(tag, sizeof(tag), "%s/%d", scope->topic, (int)scope->partition);
    if (len < 0 || (size_t)len >= sizeof(tag)) {
        return STATE_CLUSTER_NO_NODE; /* its own group: vg_state_scope routes it */
    }
    return st->cluster->slots[state_cluster_keyslot(tag, (size_t)len)];
}

static vg_err_t read_group_on(struct vg_state *st, const struct vg_offset *scopes,
                              const size_t *order, size_t from, size_t to, size_t *counts,
                              const struct state_scopes_read *rd, size_t *total, char *errstr,
                              size_t errstr_size);

/* Queue and read one group of scopes (order[from..to)), all served by st->ctx's node. */
static vg_err_t read_group(struct vg_state *st, const struct vg_offset *scopes, const size_t *order,
                           size_t from, size_t to, size_t *counts,
                           const struct state_scopes_read *rd, char *errstr, size_t errstr_size)
{
    redisReply **replies;
    size_t total = 0;
    size_t off = 0;
    bool kept = st->keep_lane;
    vg_err_t err = VG_OK;

    /* every scope of the group on the first one's connection (commit lanes aside) */
    st->keep_lane = true;
    err = read_group_on(st, scopes, order, from, to, counts, rd, &total, errstr, errstr_size);
    if (err == VG_OK && total > 0) {
        replies = vg_calloc(total, sizeof(*replies));
        err = state_read_replies(st, total, replies, rd->what, errstr, errstr_size);
        for (size_t j = from; j < to && err == VG_OK; j++) {
            const struct vg_offset *s = &scopes[order[j]];

            err = vg_state_scope(st, s->topic, s->partition, errstr, errstr_size);
            if (err == VG_OK) {
                err = rd->take(st, order[j], replies + off, counts[order[j]], rd->arg, errstr,
                               errstr_size);
            }
            off += counts[order[j]];
        }
        state_replies_free(replies, total);
        vg_free(replies);
    }
    st->keep_lane = kept;
    return err;
}

/* Queue the group's commands (read_group), their counts in counts[], their sum in *total. */
static vg_err_t read_group_on(struct vg_state *st, const struct vg_offset *scopes,
                              const size_t *order, size_t from, size_t to, size_t *counts,
                              const struct state_scopes_read *rd, size_t *total, char *errstr,
                              size_t errstr_size)
{
    vg_err_t err = VG_OK;

    for (size_t j = from; j < to && err == VG_OK; j++) {
        const struct vg_offset *s = &scopes[order[j]];

        /* the first enters the node (on a cluster); the others only change the keys */
        err = vg_state_scope(st, s->topic, s->partition, errstr, errstr_size);
        if (err == VG_OK) {
            err = state_need_ctx(st, errstr, errstr_size);
        }
        if (err == VG_OK) {
            counts[order[j]] = rd->queue(st, order[j], rd->arg);
            *total += counts[order[j]];
        }
    }
    if (err != VG_OK && *total > 0) {
        state_redis_close(st); /* commands queued and never read: the connection is unusable */
    }
    return err;
}

vg_err_t state_scopes_read(struct vg_state *st, const struct vg_offset *scopes, size_t n,
                           const struct state_scopes_read *rd, char *errstr, size_t errstr_size)
{
    char *mark;
    size_t *order;
    uint16_t *node;
    size_t *counts;
    vg_err_t err = VG_OK;

    if (n == 0) {
        return VG_OK;
    }
    mark = state_scope_save(st);
    order = vg_malloc(n * sizeof(*order));
    node = vg_malloc(n * sizeof(*node));
    counts = vg_calloc(n, sizeof(*counts));
    for (size_t i = 0; i < n; i++) {
        size_t j = i;

        /* insertion by node, stable: the scopes of one node are read together, in order */
        node[i] = scope_node(st, &scopes[i]);
        while (j > 0 && node[order[j - 1]] > node[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t g = 0; g < n && err == VG_OK;) {
        size_t end = g + 1;

        while (end < n && node[order[end]] == node[order[g]] &&
               node[order[g]] != STATE_CLUSTER_NO_NODE) {
            end++;
        }
        err = read_group(st, scopes, order, g, end, counts, rd, errstr, errstr_size);
        g = end;
    }
    vg_free(order);
    vg_free(node);
    vg_free(counts);
    return state_scope_restore(st, mark, err, errstr, errstr_size);
}

/* vg_state_list over every scope: ids per scope, then their hashes per scope. */
struct list_read {
    const struct vg_state_filter *f;
    char ***ids; /* per scope */
    size_t *n_ids;
    struct vg_resource ***res; /* per scope: n_ids[k] each */
    bool strict;               /* an unreadable hash is VG_ERR_INVALID (a lookup by id) */
};

static size_t list_queue_scope(struct vg_state *st, size_t k, void *arg)
{
    struct list_read *lr = arg;
    struct state_cmd c = {0};
    size_t n = list_queue(st, lr->f, &c);

    (void)k;
    state_cmd_fini(&c);
    return n;
}

static vg_err_t list_take_scope(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                void *arg, char *errstr, size_t errstr_size)
{
    struct list_read *lr = arg;
    const char *glob = lr->f ? lr->f->name_glob : NULL;
    bool by_set = (lr->f && (lr->f->type || lr->f->workspace)) || !glob;
    size_t cap = 0;

    /* No fallback for a short name index: the partitioned layout is only ever
     * written by vigils that keep it. */
    (void)n;
    return ids_from_replies(st, by_set, glob, replies, &lr->ids[k], &lr->n_ids[k], &cap, errstr,
                            errstr_size);
}

static size_t load_queue_scope(struct vg_state *st, size_t k, void *arg)
{
    struct list_read *lr = arg;
    struct state_cmd c = {0};

    for (size_t i = 0; i < lr->n_ids[k]; i++) {
        state_resource_queue_read(st, &c, lr->ids[k][i]);
    }
    state_cmd_fini(&c);
    return lr->n_ids[k];
}

static vg_err_t load_take_scope(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                void *arg, char *errstr, size_t errstr_size)
{
    struct list_read *lr = arg;
    vg_err_t err = VG_OK;

    lr->res[k] = vg_calloc(n ? n : 1, sizeof(**lr->res));
    for (size_t i = 0; i < n && err == VG_OK; i++) {
        const redisReply *r = replies[i];
        char why[128];

        if (r->type == REDIS_REPLY_ERROR) {
            err = state_reply_error(st, "HGETALL", r, errstr, errstr_size);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            lr->res[k][i] = state_resource_from_reply(r, why, sizeof(why));
            if (!lr->res[k][i] && lr->strict) {
                state_set_err(errstr, errstr_size, "redis %s: resource %s: unreadable hash: %s",
                              st->redacted, lr->ids[k][i], why);
                err = VG_ERR_INVALID;
            } else if (!lr->res[k][i]) {
                VG_LOG_WARN("state", "resource %s: unreadable hash skipped in %s: %s",
                            lr->ids[k][i], st->scope ? st->scope : "global", why);
            }
        }
    }
    return err;
}

static void list_read_fini(struct list_read *lr, size_t n_scopes)
{
    for (size_t k = 0; k < n_scopes; k++) {
        if (lr->res[k]) {
            for (size_t i = 0; i < lr->n_ids[k]; i++) {
                vg_resource_destroy(lr->res[k][i]);
            }
            vg_free(lr->res[k]);
        }
        ids_free(lr->ids[k], lr->n_ids[k]);
    }
    vg_free(lr->ids);
    vg_free(lr->n_ids);
    vg_free(lr->res);
}

/*
 * The Resources of every scope into one array (*out, *n_out): one per id,
 * the newest updated_at when an id is in several scopes (a topic's
 * partition count changed). Moved out of lr.
 */
static void merge_scopes(struct list_read *lr, size_t n_scopes, struct vg_resource ***out,
                         size_t *n_out)
{
    struct vg_map *by_id = vg_map_new();
    struct vg_resource **v = NULL;
    size_t n = 0;
    size_t cap = 0;

    for (size_t k = 0; k < n_scopes; k++) {
        for (size_t i = 0; lr->res[k] && i < lr->n_ids[k]; i++) {
            struct vg_resource *res = lr->res[k][i];
            void *at;

            if (!res) {
                continue;
            }
            lr->res[k][i] = NULL;
            at = vg_map_get(by_id, res->id);
            if (!at) {
                *VG_ARRAY_PUSH(v, n, cap) = res;
                vg_map_put(by_id, res->id, (void *)(uintptr_t)n); /* index + 1 */
            } else if (state_resource_newer(res, v[(uintptr_t)at - 1])) {
                vg_resource_destroy(v[(uintptr_t)at - 1]);
                v[(uintptr_t)at - 1] = res;
            } else {
                vg_resource_destroy(res);
            }
        }
    }
    vg_map_destroy(by_id, NULL);
    *out = v;
    *n_out = n;
}

/*
 * vg_state_list and the lookups by id with the partitioned layout: ids ==
 * NULL lists by `f`, else each of the n_ids ids is looked up in every scope
 * (`strict`: an unreadable hash is an error).
 */
static vg_err_t read_scopes(struct vg_state *st, const struct vg_state_filter *f,
                            const char *const *ids, size_t n_ids, bool strict,
                            struct vg_resource ***out, size_t *n_out, char *errstr,
                            size_t errstr_size)
{
    struct vg_offset *scopes = NULL;
    size_t n_scopes = 0;
    struct list_read lr = {.f = f, .strict = strict};
    struct state_scopes_read by_index = {"index", list_queue_scope, list_take_scope, &lr};
    struct state_scopes_read by_hash = {"HGETALL", load_queue_scope, load_take_scope, &lr};
    vg_err_t err = vg_state_scopes(st, &scopes, &n_scopes, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK || n_scopes == 0) {
        vg_state_scopes_free(scopes, n_scopes);
        return err;
    }
    lr.ids = vg_calloc(n_scopes, sizeof(*lr.ids));
    lr.n_ids = vg_calloc(n_scopes, sizeof(*lr.n_ids));
    lr.res = vg_calloc(n_scopes, sizeof(*lr.res));
    if (ids) {
        for (size_t k = 0; k < n_scopes; k++) {
            lr.ids[k] = vg_malloc((n_ids ? n_ids : 1) * sizeof(*lr.ids[k]));
            for (size_t i = 0; i < n_ids; i++) {
                lr.ids[k][i] = vg_strdup(ids[i]);
            }
            lr.n_ids[k] = n_ids;
        }
    } else {
        err = state_scopes_read(st, scopes, n_scopes, &by_index, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = state_scopes_read(st, scopes, n_scopes, &by_hash, errstr, errstr_size);
    }
    if (err == VG_OK) {
        merge_scopes(&lr, n_scopes, out, n_out);
    }
    list_read_fini(&lr, n_scopes);
    vg_state_scopes_free(scopes, n_scopes);
    return err;
}

vg_err_t vg_state_list(struct vg_state *st, const struct vg_state_filter *f,
                       struct vg_resource ***out, size_t *n_out, char *errstr, size_t errstr_size)
{
    char **ids = NULL;
    struct vg_resource **res = NULL;
    size_t n_ids = 0;
    size_t n = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    if (st->partitioned) {
        err = read_scopes(st, f, NULL, 0, false, &res, &n, errstr, errstr_size);
        if (err == VG_OK) {
            if (!res) {
                res = vg_calloc(1, sizeof(*res));
            }
            *out = res;
            *n_out = keep_matching(f, res, n);
        }
        return err;
    }
    err = list_ids(st, f, &ids, &n_ids, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    res = vg_calloc(n_ids ? n_ids : 1, sizeof(*res));
    err = load_many(st, (const char *const *)ids, n_ids, false, res, errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(res);
        goto out_ids;
    }
    *out = res;
    *n_out = keep_matching(f, res, n_ids);
out_ids:
    ids_free(ids, n_ids);
    return err;
}

vg_err_t vg_state_get(struct vg_state *st, const char *id, struct vg_resource **out, char *errstr,
                      size_t errstr_size)
{
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    if (err != VG_OK) {
        return err;
    }
    if (st->partitioned) {
        /* Every scope's hash in one round trip (per node on a cluster): the newest wins. */
        struct vg_resource **v = NULL;
        size_t n = 0;

        err = read_scopes(st, NULL, &id, 1, true, &v, &n, errstr, errstr_size);
        if (err == VG_OK && n > 0) {
            *out = v[0];
        }
        vg_free(v);
        return err;
    }
    return load_many(st, &id, 1, true, out, errstr, errstr_size);
}

vg_err_t state_read_ids(struct vg_state *st, const char *const *ids, size_t n,
                        struct vg_resource **out, char *errstr, size_t errstr_size)
{
    struct vg_resource **v = NULL;
    struct vg_map *at;
    size_t n_found = 0;
    vg_err_t err;

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    err = read_scopes(st, NULL, ids, n, false, &v, &n_found, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    at = vg_map_new();
    for (size_t i = 0; i < n; i++) {
        vg_map_put(at, ids[i], (void *)(uintptr_t)(i + 1));
    }
    for (size_t j = 0; j < n_found; j++) {
        uintptr_t i = (uintptr_t)vg_map_get(at, v[j]->id);

        if (i > 0 && !out[i - 1]) {
            out[i - 1] = v[j];
        } else {
            vg_resource_destroy(v[j]);
        }
    }
    vg_map_destroy(at, NULL);
    vg_free(v);
    return VG_OK;
}

void vg_resources_free(struct vg_resource **v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vg_resource_destroy(v[i]);
    }
    vg_free(v);
}
