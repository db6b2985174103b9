/*
 * The pipeline's side of include/vigil/state.h: connecting, the
 * per-connection Resource cache and resolve, the batch commit (one
 * MULTI/EXEC round trip: hashes, index sets, history streams, pod links,
 * outbox pages, applied offsets) and the applied offsets read back.
 * Elsewhere: the hash fields (state_resource.c), `vigil get`'s reads
 * (state_read.c), hiredis plumbing (state_redis.c), the outbox reader
 * (state_outbox.c), the redis-server child (state_child.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim: vg_state_cache_trim */
#endif

#include "state_cluster.h"
#include "state_int.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/util.h"

/*
 * A cached Resource and the Kafka partitions whose events it was lent for
 * since it was loaded (docs/state.md "The cache and `resolve`"): a
 * rebalance drops it when it loses one of them, and an event from a
 * partition not among them loads it again. No partition at all: loaded
 * for a timer (vg_state_resolve_ids), so any drop takes it.
 */
struct cache_src {
    const char *topic; /* interned in st->cache_topics; NULL: none */
    int32_t partition;
};

struct cache_entry {
    struct vg_resource *res;
    /* redis.layout partitioned: the scope it was read from (interned in st->cache_topics),
     * the only one it is written back to; NULL: the single layout, or the global scope */
    const char *scope;
    struct cache_src src;   /* the first partition (events keyed by id: the only one) */
    struct cache_src *more; /* further ones */
    size_t n_more;
    size_t cap_more;
};

static void free_entry(void *p)
{
    struct cache_entry *e = p;

    vg_resource_destroy(e->res);
    vg_free(e->more);
    vg_free(e);
}

/* The Resources set aside while commits were in flight (struct vg_state.aside), freed. */
static void aside_free(struct vg_state *st)
{
    for (size_t i = 0; i < st->n_aside; i++) {
        vg_resource_destroy(st->aside[i]);
    }
    st->n_aside = 0;
}

/*
 * An entry the cache replaces: freed, unless commits are in flight (a part of the batch
 * written, not finished), which with the batch's transitions may still point at its
 * Resource: that one waits in st->aside for the end of the batch.
 */
static void drop_entry(struct vg_state *st, struct cache_entry *e)
{
    if (state_commits_pending(st)) {
        *VG_ARRAY_PUSH(st->aside, st->n_aside, st->cap_aside) = e->res;
        e->res = NULL;
    }
    free_entry(e);
}

static struct cache_entry *cache_get(const struct vg_state *st, const char *id)
{
    return vg_map_get(st->cache, id);
}

/* `s` interned in st->cache_topics (topics and scopes: a topic name never holds '/'). */
static const char *cache_intern(struct vg_state *st, const char *s)
{
    const char *t = vg_map_get(st->cache_topics, s);

    if (!t) {
        t = vg_strdup(s);
        vg_map_put(st->cache_topics, s, (void *)t);
    }
    return t;
}

/*
 * The scope cached Resources are lent for now: with the partitioned layout a
 * Resource read in one partition's scope is written back in that scope
 * only, so an entry of another scope is a miss (read again in this one).
 */
static const char *cache_scope(struct vg_state *st)
{
    return st->scope ? cache_intern(st, st->scope) : NULL;
}

/* The entry of `id` read in `scope` (cache_scope), or NULL. */
static struct cache_entry *cache_get_in(const struct vg_state *st, const char *id,
                                        const char *scope)
{
    struct cache_entry *e = vg_map_get(st->cache, id);

    return e && e->scope == scope ? e : NULL;
}

/*
 * `res`, read in `scope`, cached under `id`. In place of a copy of the same
 * scope read again, it keeps that copy's partitions (still held, or a drop
 * would have taken it): it is newer than what they were lent; otherwise
 * (none, or another scope's copy, replaced) none yet.
 */
static struct cache_entry *cache_put(struct vg_state *st, const char *id, struct vg_resource *res,
                                     const char *scope)
{
    struct cache_entry *e = vg_calloc(1, sizeof(*e));
    struct cache_entry *old;

    e->res = res;
    e->scope = scope;
    old = vg_map_put(st->cache, id, e);
    if (old && old->scope != scope) {
        drop_entry(st, old);
    } else if (old) {
        e->src = old->src;
        e->more = old->more;
        e->n_more = old->n_more;
        e->cap_more = old->cap_more;
        old->more = NULL;
        drop_entry(st, old);
    }
    return e;
}

static bool src_is(const struct cache_src *s, const char *topic, int32_t partition)
{
    return s->topic && s->partition == partition && strcmp(s->topic, topic) == 0;
}

static bool entry_seen_on(const struct cache_entry *e, const char *topic, int32_t partition)
{
    if (src_is(&e->src, topic, partition)) {
        return true;
    }
    for (size_t i = 0; i < e->n_more; i++) {
        if (src_is(&e->more[i], topic, partition)) {
            return true;
        }
    }
    return false;
}

static void entry_add_src(struct vg_state *st, struct cache_entry *e, const char *topic,
                          int32_t partition)
{
    const char *t;
    struct cache_src *s;

    if (entry_seen_on(e, topic, partition)) {
        return;
    }
    t = cache_intern(st, topic);
    s = e->src.topic ? VG_ARRAY_PUSH(e->more, e->n_more, e->cap_more) : &e->src;
    s->topic = t;
    s->partition = partition;
}

/* ---- lifecycle -------------------------------------------------------- */

/*
 * On a cluster: point st->url at the primary that owns the tag's slot in
 * the map (loaded again first when `refresh`). `was` is the node before
 * (NULL at connect): a new owner is worth one INFO line.
 */
static vg_err_t cluster_route(struct vg_state *st, bool refresh, const char *was, char *errstr,
                              size_t errstr_size)
{
    struct state_cluster *cl = st->cluster;
    const struct state_cluster_node *nd;
    uint16_t idx;

    if (refresh) {
        vg_err_t err = state_cluster_refresh(cl, errstr, errstr_size);

        if (err != VG_OK) {
            return err;
        }
    }
    idx = cl->slots[st->tag_slot];
    if (idx == STATE_CLUSTER_NO_NODE) {
        state_set_err(errstr, errstr_size,
                      "redis cluster %s: slot %u of prefix {%s} has no primary in the map",
                      st->seed_redacted, (unsigned)st->tag_slot, st->tag);
        return VG_ERR_BACKEND;
    }
    nd = &cl->nodes[idx];
    st->node_idx = idx;
    if (was && strcmp(was, nd->addr) != 0) {
        VG_LOG_INFO("state", "redis cluster: slot %u of prefix {%s} is now served by %s",
                    (unsigned)st->tag_slot, st->tag, nd->addr);
    }
    vg_free(st->url.host);
    st->url.host = vg_strdup(nd->conn.url.host);
    st->url.port = nd->conn.url.port;
    snprintf(st->redacted, sizeof(st->redacted), "%s (slot owner %s)", st->seed_redacted, nd->addr);
    return VG_OK;
}

/* The cluster side of connecting: the tag, its slot, the map, the route. */
static vg_err_t cluster_connect(struct vg_state *st, const char *url, const char *prefix,
                                const struct vg_redis_config *rc, char *errstr, size_t errstr_size)
{
    const char *tag = rc->tag ? rc->tag : rc->prefix;
    size_t lt;
    vg_err_t err;

    /* A prefix that extends the configured one (<prefix>:replay:<ts>) keeps its tag, so a
     * replay's RENAMEs stay in one slot; any other prefix is its own tag. */
    lt = tag ? strlen(tag) : 0;
    if (!tag || strncmp(prefix, tag, lt) != 0 || (prefix[lt] != '\0' && prefix[lt] != ':')) {
        tag = prefix;
    }
    if (strpbrk(tag, "{} \t\r\n")) {
        state_set_err(errstr, errstr_size,
                      "redis prefix \"%s\": must not contain braces or whitespace", tag);
        return VG_ERR_INVALID;
    }
    st->tag = vg_strdup(tag);
    st->global_tag = vg_strdup(tag);
    st->tag_slot = state_cluster_keyslot(tag, strlen(tag));
    st->node_idx = STATE_CLUSTER_NO_NODE;
    st->seed_redacted = vg_strdup(st->redacted);
    err = state_cluster_new(&st->cluster, url, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    return cluster_route(st, false, NULL, errstr, errstr_size);
}

vg_err_t vg_state_connect_config(struct vg_state **stp, const char *url, const char *prefix,
                                 const struct vg_redis_config *rc, char *errstr, size_t errstr_size)
{
    struct vg_state *st;
    vg_err_t err;

    *stp = NULL;
    if (!prefix || prefix[0] == '\0') {
        prefix = "vigil";
    }
    if (strpbrk(prefix, "{} \t\r\n")) {
        state_set_err(errstr, errstr_size,
                      "redis prefix \"%s\": must not contain braces or whitespace", prefix);
        return VG_ERR_INVALID;
    }
    st = vg_calloc(1, sizeof(*st));
    err = state_url_parse(url, &st->url, errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(st);
        return err;
    }
    vg_redact_url(url, st->redacted, sizeof(st->redacted));
    st->cache = vg_map_new();
    st->cache_topics = vg_map_new();
    st->pending_cursor = vg_strdup("0");
    st->claim_cursor = vg_strdup("0-0");
    if (rc) {
        st->wait_replicas = rc->wait_replicas;
        st->wait_timeout_ms = rc->wait_timeout_ms;
    }
    if (rc && rc->cluster) {
        err = cluster_connect(st, url, prefix, rc, errstr, errstr_size);
        if (err != VG_OK) {
            vg_state_destroy(st);
            return err;
        }
    }
    st->name = vg_strdup(prefix);
    st->global = state_key_prefix(st, prefix);
    st->prefix = vg_strdup(st->global);
    st->partitioned = rc && rc->partitioned;
    st->n_lanes = 1; /* the pipeline's state asks for more: vg_state_commit_lanes_set */
    err = state_redis_open(st, errstr, errstr_size);
    if (err != VG_OK) {
        vg_state_destroy(st);
        return err;
    }
    *stp = st;
    return VG_OK;
}

vg_err_t vg_state_connect(struct vg_state **stp, const char *url, const char *prefix, char *errstr,
                          size_t errstr_size)
{
    return vg_state_connect_config(stp, url, prefix, NULL, errstr, errstr_size);
}

void vg_state_destroy(struct vg_state *st)
{
    if (!st) {
        return;
    }
    state_redis_close(st);
    for (size_t i = 0; i < st->n_parked; i++) {
        if (st->parked[i]) {
            state_commits_conn_lost(st, st->parked[i]);
            redisFree(st->parked[i]);
        }
    }
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        state_inflight_fini(&st->inflight[i]); /* never finished: nothing to mark */
    }
    vg_free(st->inflight);
    aside_free(st);
    vg_free(st->aside);
    vg_free(st->parked);
    vg_free(st->parked_fn);
    while (st->n_owed > 0) {
        state_wait_paid(st, st->n_owed - 1);
    }
    vg_free(st->owed);
    state_cluster_destroy(st->cluster);
    vg_map_destroy(st->cache, free_entry);
    vg_map_destroy(st->cache_topics, vg_free);
    state_url_fini(&st->url);
    vg_free(st->prefix);
    vg_free(st->name);
    vg_free(st->global);
    vg_free(st->scope);
    vg_free(st->global_tag);
    vg_free(st->pending_consumer);
    vg_free(st->pending_cursor);
    vg_free(st->claim_cursor);
    state_outbox_streams_free(st);
    vg_free(st->tag);
    vg_free(st->seed_redacted);
    vg_free(st);
}

/* ---- scopes: the partitioned layout (docs/state.md "Layouts") ------------- */

bool vg_state_partitioned(const struct vg_state *st)
{
    return st->partitioned;
}

/* Where the connection of (node, lane) is parked; on one Redis node is 0. */
static size_t parked_at(const struct vg_state *st, uint16_t node, uint16_t lane)
{
    return (size_t)node * st->n_lanes + lane;
}

/* st->ctx kept for the next scope on its (node, lane): its incident function flag with it. */
static void park_ctx(struct vg_state *st, uint16_t node)
{
    size_t at = parked_at(st, node, st->lane);

    if (at >= st->n_parked) {
        size_t n = at + 8;

        st->parked = vg_realloc(st->parked, n * sizeof(*st->parked));
        memset(st->parked + st->n_parked, 0, (n - st->n_parked) * sizeof(*st->parked));
        st->parked_fn = vg_realloc(st->parked_fn, n * sizeof(*st->parked_fn));
        memset(st->parked_fn + st->n_parked, 0, (n - st->n_parked) * sizeof(*st->parked_fn));
        st->n_parked = n;
    }
    if (st->parked[at]) {
        state_commits_conn_lost(st, st->parked[at]);
        redisFree(st->parked[at]);
    }
    st->parked[at] = st->ctx;
    /* the incident counts function is loaded per server: asked again on each node */
    st->parked_fn[at] = (struct state_parked_fn){.asked = st->incident_fn_asked,
                                                 .eval = st->incident_fn[0] == '\0'};
    st->ctx = NULL;
}

/* st->ctx taken back from the parked ones for (node, lane); false: none parked there. */
static bool unpark_ctx(struct vg_state *st, uint16_t node)
{
    size_t at = parked_at(st, node, st->lane);

    if (at >= st->n_parked || !st->parked[at]) {
        return false;
    }
    st->ctx = st->parked[at];
    st->parked[at] = NULL;
    state_incidents_conn_restore(st, st->parked_fn[at].asked, st->parked_fn[at].eval);
    return true;
}

/*
 * st->ctx to the scope's commit lane (st->scope_lane) of the primary of
 * st->tag_slot (on one Redis: of the server). The connection left is
 * parked, not closed: the next scope on its node and lane takes it back.
 */
static vg_err_t scope_route(struct vg_state *st, char *errstr, size_t errstr_size)
{
    struct state_cluster *cl = st->cluster;
    uint16_t lane = st->keep_lane ? st->lane : st->scope_lane;
    vg_err_t err;

    if (!cl) {
        if (lane == st->lane) {
            return VG_OK; /* (not connected: state_need_ctx says so, a reconnect opens it) */
        }
        if (st->ctx) {
            park_ctx(st, 0);
        }
        st->lane = lane;
        if (unpark_ctx(st, 0)) {
            return VG_OK;
        }
        return state_redis_open(st, errstr, errstr_size);
    }
    {
        uint16_t idx = cl->slots[st->tag_slot];
        uint16_t was = st->node_idx;

        if (idx != STATE_CLUSTER_NO_NODE && idx == was && lane == st->lane && st->ctx) {
            return VG_OK;
        }
        if (st->ctx && was != STATE_CLUSTER_NO_NODE) {
            park_ctx(st, was);
        }
    }
    err = cluster_route(st, false, NULL, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    st->lane = lane;
    if (unpark_ctx(st, st->node_idx)) {
        return VG_OK;
    }
    return state_redis_open(st, errstr, errstr_size);
}

/* In the scope already: on its lane too (a reader may have kept another, keep_lane). */
static vg_err_t scope_lane_check(struct vg_state *st, char *errstr, size_t errstr_size)
{
    if (st->keep_lane || st->lane == st->scope_lane) {
        return VG_OK;
    }
    return scope_route(st, errstr, errstr_size);
}

vg_err_t vg_state_scope(struct vg_state *st, const char *topic, int32_t partition, char *errstr,
                        size_t errstr_size)
{
    char *scope;

    if (!st->partitioned) {
        return VG_OK;
    }
    if (!topic) {
        if (!st->scope) {
            return scope_lane_check(st, errstr, errstr_size);
        }
        vg_free(st->scope);
        st->scope = NULL;
        st->scope_lane = 0;
        vg_free(st->prefix);
        st->prefix = vg_strdup(st->global);
        if (st->cluster) {
            vg_free(st->tag);
            st->tag = vg_strdup(st->global_tag);
        }
    } else {
        scope = vg_asprintf("%s/%d", topic, (int)partition);
        if (st->scope && strcmp(st->scope, scope) == 0) {
            vg_free(scope);
            return scope_lane_check(st, errstr, errstr_size);
        }
        vg_free(st->scope);
        st->scope = scope;
        st->scope_lane = (uint16_t)((uint32_t)partition % st->n_lanes);
        vg_free(st->prefix);
        st->prefix = vg_asprintf("%s:{%s}", st->name, scope);
        if (st->cluster) {
            vg_free(st->tag);
            st->tag = vg_strdup(scope);
        }
    }
    if (st->cluster) {
        st->tag_slot = state_cluster_keyslot(st->tag, strlen(st->tag));
    }
    return scope_route(st, errstr, errstr_size);
}

void vg_state_commit_lanes_set(struct vg_state *st, unsigned n)
{
    /* the parked connections are placed by (node, lane): the layout changes under them */
    VG_ASSERT(!st->scope && !state_commits_pending(st));
    if (!st->partitioned || n < 1) {
        n = 1;
    }
    if (n > VG_STATE_MAX_COMMIT_LANES) {
        n = VG_STATE_MAX_COMMIT_LANES;
    }
    if (n == st->n_lanes) {
        return;
    }
    for (size_t i = 0; i < st->n_parked; i++) {
        if (st->parked[i]) {
            redisFree(st->parked[i]); /* (nothing in flight: opened again when a scope needs it) */
            st->parked[i] = NULL;
        }
    }
    st->n_lanes = (uint16_t)n;
}

unsigned vg_state_commit_lanes(const struct vg_state *st)
{
    return st->n_lanes;
}

const char *vg_state_scope_now(const struct vg_state *st)
{
    return st->scope;
}

static int cmp_part(const void *a, const void *b)
{
    const struct vg_offset *pa = a;
    const struct vg_offset *pb = b;
    int c = strcmp(pa->topic, pb->topic);

    return c ? c : (pa->partition > pb->partition) - (pa->partition < pb->partition);
}

vg_err_t vg_state_scopes(struct vg_state *st, struct vg_offset **out, size_t *n, char *errstr,
                         size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err;
    struct vg_offset *v = NULL;
    size_t k = 0;

    *out = NULL;
    *n = 0;
    if (!st->partitioned) {
        return VG_OK;
    }
    state_cmd_str(&c, "SMEMBERS");
    state_cmd_fmt(&c, "%s:parts", st->global);
    err = state_scope_global_run(st, &c, "SMEMBERS", &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        v = vg_malloc(reply->elements * sizeof(*v));
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            const char *slash = e->type == REDIS_REPLY_STRING ? strrchr(e->str, '/') : NULL;
            int64_t p;

            if (!slash || slash == e->str || !vg_parse_i64(slash + 1, &p) || p < 0 ||
                p > INT32_MAX) {
                continue; /* not ours */
            }
            v[k].topic = vg_strndup(e->str, (size_t)(slash - e->str));
            v[k].partition = (int32_t)p;
            v[k].offset = -1;
            k++;
        }
    }
    freeReplyObject(reply);
    if (k > 1) {
        qsort(v, k, sizeof(*v), cmp_part);
    }
    *out = v;
    *n = k;
    return VG_OK;
}

void vg_state_scopes_free(struct vg_offset *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_free((char *)v[i].topic);
    }
    vg_free(v);
}

vg_err_t vg_state_scope_set(struct vg_state *st, const char *scope, char *errstr,
                            size_t errstr_size)
{
    const char *slash;
    char *topic;
    int64_t p = 0;
    vg_err_t err;

    if (!st->partitioned) {
        return VG_OK;
    }
    if (!scope) {
        return vg_state_scope(st, NULL, 0, errstr, errstr_size);
    }
    if (st->scope && strcmp(st->scope, scope) == 0) {
        return scope_lane_check(st, errstr, errstr_size);
    }
    slash = strrchr(scope, '/');
    if (!slash || slash == scope || !vg_parse_i64(slash + 1, &p) || p < 0 || p > INT32_MAX) {
        state_set_err(errstr, errstr_size, "scope \"%s\": expected <topic>/<partition>", scope);
        return VG_ERR_INVALID;
    }
    topic = vg_strndup(scope, (size_t)(slash - scope));
    err = vg_state_scope(st, topic, (int32_t)p, errstr, errstr_size);
    vg_free(topic);
    return err;
}

char *state_scope_save(const struct vg_state *st)
{
    return st->scope ? vg_strdup(st->scope) : NULL;
}

vg_err_t state_scope_restore(struct vg_state *st, char *saved, vg_err_t err, char *errstr,
                             size_t errstr_size)
{
    vg_err_t back =
        vg_state_scope_set(st, saved, err == VG_OK ? errstr : NULL, err == VG_OK ? errstr_size : 0);

    vg_free(saved);
    return err != VG_OK ? err : back;
}

vg_err_t state_scopes_each(struct vg_state *st, bool global,
                           vg_err_t (*fn)(struct vg_state *st, const char *scope, void *arg,
                                          char *errstr, size_t errstr_size),
                           void *arg, char *errstr, size_t errstr_size)
{
    struct vg_offset *parts = NULL;
    size_t n = 0;
    char *saved;
    vg_err_t err;

    if (!st->partitioned) {
        return fn(st, NULL, arg, errstr, errstr_size);
    }
    err = vg_state_scopes(st, &parts, &n, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    saved = state_scope_save(st);
    if (global) {
        err = vg_state_scope(st, NULL, 0, errstr, errstr_size);
        if (err == VG_OK) {
            err = fn(st, NULL, arg, errstr, errstr_size);
        }
    }
    for (size_t i = 0; i < n && err == VG_OK; i++) {
        err = vg_state_scope(st, parts[i].topic, parts[i].partition, errstr, errstr_size);
        if (err == VG_OK) {
            char *scope = vg_strdup(st->scope); /* fn may leave the scope */

            err = fn(st, scope, arg, errstr, errstr_size);
            vg_free(scope);
        }
    }
    vg_state_scopes_free(parts, n);
    return state_scope_restore(st, saved, err, errstr, errstr_size);
}

/*
 * Run `c` on the global scope's keys, whatever the scope now (on a cluster,
 * through the client: the global slot may be on another node).
 */
vg_err_t state_scope_global_run(struct vg_state *st, struct state_cmd *c, const char *what,
                                redisReply **reply, char *errstr, size_t errstr_size)
{
    char *saved;
    vg_err_t err;

    if (reply) {
        *reply = NULL;
    }
    if (!st->cluster || !st->scope) {
        return state_run(st, c, what, NULL, reply, errstr, errstr_size);
    }
    saved = state_scope_save(st);
    err = vg_state_scope(st, NULL, 0, errstr, errstr_size);
    if (err == VG_OK) {
        err = state_run(st, c, what, NULL, reply, errstr, errstr_size);
    } else {
        state_cmd_reset(c);
    }
    /* back to the partition's scope whatever the command did: the caller is still in it */
    err = state_scope_restore(st, saved, err, errstr, errstr_size);
    if (err != VG_OK && reply && *reply) {
        freeReplyObject(*reply); /* ran, but st could not go back: the caller sees a failure */
        *reply = NULL;
    }
    return err;
}

/*
 * With redis.wait_replicas: WAIT right after EXEC, in the same write. A
 * primary acknowledges a batch before its replicas have it, and a failover
 * loses what they lack; the Kafka offsets must move only after the
 * replicas hold the batch (docs/redis-cluster.md). Returns 1 when queued.
 */
static size_t append_wait(struct vg_state *st)
{
    struct state_cmd c = {0};

    if (st->wait_replicas <= 0) {
        return 0;
    }
    state_cmd_str(&c, "WAIT");
    state_cmd_i64(&c, st->wait_replicas);
    state_cmd_i64(&c, st->wait_timeout_ms);
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
    return 1;
}

/*
 * Read the `n` replies of an owed WAIT (settle_one): the mark's SET when
 * `n` is 2, then the WAIT, judged. Too few replicas is VG_ERR_BACKEND.
 */
static vg_err_t read_wait(struct vg_state *st, size_t n, char *errstr, size_t errstr_size)
{
    redisReply *replies[2] = {NULL, NULL};
    vg_err_t err = state_read_replies(st, n, replies, "WAIT", errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    if (n == 2 && replies[0]->type == REDIS_REPLY_ERROR) {
        err = state_reply_error(st, "SET wait-mark", replies[0], errstr, errstr_size);
    } else {
        err = state_judge_wait(st, st->redacted, replies[n - 1], errstr, errstr_size);
        if (err != VG_OK && errstr_size > 0) {
            size_t len = strlen(errstr);

            snprintf(errstr + len, errstr_size - len, " (owed by an earlier commit there)");
        }
    }
    state_replies_free(replies, n);
    return err;
}

/*
 * What st->owed[i] owes, proven on a connection to the primary that serves
 * its scope's slot now (on one Redis: the server). The connection that
 * wrote the commit proves it with WAIT alone; any other has written nothing
 * a WAIT would wait for, so it first writes P:wait-mark: the primary
 * replicates one ordered stream, and the mark's acknowledgement covers
 * everything written there before it (the commit included, if this primary
 * has it; if it is a promoted replica that never got it, the batch is not in
 * Redis and its retry writes it, with its WAIT). Never the epoch or the
 * offsets: a mark must not look like a claim or an applied batch.
 */
/*
 * How long a wait-mark stays. The WAIT behind it counts the replication
 * stream's offset, not the key: once the SET is in that stream the key's
 * expiry (itself replicated) cannot undo the proof, so the mark need not
 * outlive its WAIT (at most redis.wait_timeout_ms). A minute leaves it
 * readable by someone asking why a WAIT was owed; then it goes by itself,
 * instead of one key staying forever per scope that ever owed a WAIT.
 */
#define WAIT_MARK_TTL_MS 60000

static vg_err_t settle_one(struct vg_state *st, size_t i, char *errstr, size_t errstr_size)
{
    vg_err_t err = vg_state_scope_set(st, st->owed[i].scope, errstr, errstr_size);
    size_t n = 0;

    if (err == VG_OK) {
        /* in that scope already: the slot's primary may be another one now (the map) */
        err = st->cluster ? scope_route(st, errstr, errstr_size)
                          : (st->ctx ? VG_OK : state_redis_open(st, errstr, errstr_size));
    }
    if (err != VG_OK) {
        return err;
    }
    /* (routing may have closed connections: st->owed[i].ctx is NULL if its went) */
    if (!st->owed[i].ctx || st->owed[i].ctx != st->ctx) {
        struct state_cmd c = {0};

        state_cmd_str(&c, "SET");
        state_cmd_fmt(&c, "%s:wait-mark", st->prefix);
        state_cmd_i64(&c, vg_now_ms());
        state_cmd_str(&c, "PX");
        state_cmd_i64(&c, WAIT_MARK_TTL_MS);
        state_cmd_append(st, &c);
        state_cmd_fini(&c);
        n++;
    }
    n += append_wait(st);
    return read_wait(st, n, errstr, errstr_size);
}

vg_err_t state_wait_settle(struct vg_state *st, char *errstr, size_t errstr_size)
{
    char *saved;
    vg_err_t err = VG_OK;

    if (st->n_owed == 0) {
        return VG_OK;
    }
    saved = state_scope_save(st);
    while (st->n_owed > 0) {
        err = settle_one(st, 0, errstr, errstr_size);
        if (err != VG_OK) {
            break;
        }
        state_wait_paid(st, 0);
    }
    return state_scope_restore(st, saved, err, errstr, errstr_size);
}

vg_err_t vg_state_reconnect(struct vg_state *st, char *errstr, size_t errstr_size)
{
    char *was = NULL;
    vg_err_t err;

    /* The server may be a different one now (restarted, failed over):
     * re-check the consumer group on the next outbox read, and hand out
     * this consumer's pending entries again (a batch cut short by the
     * failure is still pending for us). */
    st->group_ready = false;
    st->pending_done = false;
    vg_free(st->pending_cursor);
    st->pending_cursor = vg_strdup("0");
    if (st->ctx && state_inflight_unread_on(st, st->ctx)) {
        /* replies still unread on it: nothing else can be read there (an owed WAIT neither) */
        state_redis_close(st);
    }
    if (!st->cluster) {
        /* one server: the other commit lanes' connections went with it, or will */
        for (size_t i = 0; i < st->n_parked; i++) {
            if (st->parked[i]) {
                state_commits_conn_lost(st, st->parked[i]);
                redisFree(st->parked[i]);
                st->parked[i] = NULL;
            }
        }
    }
    if (st->cluster) {
        /* Whatever failed (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a lost node), the map may
         * be old: load it again and go to the slot's primary now. */
        was = vg_asprintf("%s:%d", st->url.host, st->url.port);
        err = state_cluster_refresh(st->cluster, errstr, errstr_size);
        if (err != VG_OK) {
            vg_free(was);
            state_redis_close(st);
            return err;
        }
    }
    /* Before anything else, what a commit's WAIT left owed: the replicas of each node that
     * took one must have it before a retry may find it all replayed and move its offsets. */
    err = state_wait_settle(st, errstr, errstr_size);
    if (err == VG_OK && st->cluster) {
        err = cluster_route(st, false, was, errstr, errstr_size);
        if (err != VG_OK) {
            state_redis_close(st);
        }
    }
    vg_free(was);
    if (err != VG_OK) {
        return err;
    }
    return state_redis_open(st, errstr, errstr_size);
}

/*
 * /readyz's question: can this connection serve vigil's keys? On one Redis a
 * PING says so. On a cluster the node we are connected to answers PING
 * whatever slots it serves, so after a reshard or a failover it would say
 * yes while every command on our keys gets MOVED (or ASK during a
 * migration). EXISTS on a key of the prefix's tag is as cheap, creates
 * nothing, and is answered MOVED/ASK by a node that no longer serves the
 * slot: VG_ERR_BACKEND, so the caller reconnects (vg_state_reconnect or a
 * new connection loads the slot map again and goes to the new owner).
 */
vg_err_t vg_state_ping(struct vg_state *st)
{
    struct state_cmd c = {0};
    vg_err_t err;

    if (st->cluster) {
        /* The global scope's key, whatever scope st is in (the partitioned layout): the
         * connection that serves it is the one readiness is about. */
        state_cmd_str(&c, "EXISTS");
        state_cmd_fmt(&c, "%s:outbox", st->global);
        err = state_scope_global_run(st, &c, "EXISTS", NULL, NULL, 0);
    } else {
        state_cmd_str(&c, "PING");
        err = state_run(st, &c, "PING", NULL, NULL, NULL, 0);
    }
    state_cmd_fini(&c);
    return err;
}

void vg_state_cache_clear(struct vg_state *st)
{
    vg_map_clear(st->cache, free_entry);
    aside_free(st);
}

/* Whether entry `e` was lent for one of the partitions, or for none at all (a timer's load). */
static bool entry_in(const struct cache_entry *e, const char *const *topics,
                     const int32_t *partitions, size_t n)
{
    if (!e->src.topic) {
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (entry_seen_on(e, topics[i], partitions[i])) {
            return true;
        }
    }
    return false;
}

size_t vg_state_cache_drop_partitions(struct vg_state *st, const char *const *topics,
                                      const int32_t *partitions, size_t n)
{
    size_t iter = 0;
    const char *id;
    void *val;
    char **gone = NULL;
    size_t n_gone = 0;
    size_t cap_gone = 0;

    if (n == 0) {
        return 0;
    }
    while (vg_map_next(st->cache, &iter, &id, &val)) {
        if (entry_in(val, topics, partitions, n)) {
            *VG_ARRAY_PUSH(gone, n_gone, cap_gone) = vg_strdup(id);
        }
    }
    for (size_t i = 0; i < n_gone; i++) {
        free_entry(vg_map_remove(st->cache, gone[i]));
        vg_free(gone[i]);
    }
    vg_free(gone);
    return n_gone;
}

/* ---- the bounded cache ------------------------------------------------ */

void vg_state_cache_limit(struct vg_state *st, size_t max_resources)
{
    st->cache_max = max_resources;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

size_t vg_state_cache_trim(struct vg_state *st)
{
    size_t n = vg_map_count(st->cache);
    size_t keep = st->cache_max - st->cache_max / 8; /* room for the next batches' misses */
    size_t iter = 0;
    size_t k = 0;
    const char *id;
    void *val;
    uint64_t *uses;
    uint64_t cutoff;
    char **gone;
    size_t n_gone = 0;

    aside_free(st);
    if (st->cache_max == 0 || n <= st->cache_max) {
        return 0;
    }
    /* The least recently lent go, down to 7/8 of the bound (one sort per trim). */
    uses = vg_malloc(n * sizeof(*uses));
    while (vg_map_next(st->cache, &iter, &id, &val)) {
        uses[k++] = ((const struct cache_entry *)val)->res->cache_use;
    }
    qsort(uses, k, sizeof(*uses), cmp_u64);
    cutoff = uses[k - keep - 1];
    vg_free(uses);
    gone = vg_malloc((n - keep + 1) * sizeof(*gone));
    iter = 0;
    while (vg_map_next(st->cache, &iter, &id, &val)) {
        const struct vg_resource *res = ((const struct cache_entry *)val)->res;

        /* never one that waits for its write (dirty) */
        if (res->cache_use <= cutoff && !res->dirty && n_gone < n - keep) {
            gone[n_gone++] = vg_strdup(id);
        }
    }
    for (size_t i = 0; i < n_gone; i++) {
        free_entry(vg_map_remove(st->cache, gone[i]));
        vg_free(gone[i]);
    }
    vg_free(gone);
#ifdef __GLIBC__
    /* An eighth of the cache or more just went: hand its free pages back rather than keep them
     * resident beside the ones the next batches touch. */
    if (n_gone > 0) {
        malloc_trim(0);
    }
#endif
    return n_gone;
}

/* ---- resolve ---------------------------------------------------------- */

/*
 * The Resource in the HGETALL reply `r` (a non-empty array) of `id`'s hash:
 * NULL when it is unreadable or another id's (why says which).
 */
static struct vg_resource *resource_of_hash(const redisReply *r, const char *id, char *why,
                                            size_t why_size)
{
    struct vg_resource *res = state_resource_from_reply(r, why, why_size);

    if (res && strcmp(res->id, id) != 0) {
        vg_resource_destroy(res);
        res = NULL;
        snprintf(why, why_size, "id field differs from the key");
    }
    return res;
}

vg_err_t vg_state_resolve(struct vg_state *st, const struct vg_event *evs, size_t n,
                          struct vg_resource **out, char *errstr, size_t errstr_size)
{
    struct vg_map *seen = NULL;
    const struct vg_event **miss = NULL;
    redisReply **replies = NULL;
    size_t n_miss = 0;
    size_t cap_miss = 0;
    struct state_cmd c = {0};
    const char *scope = cache_scope(st);
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        const struct cache_entry *e = cache_get_in(st, evs[i].id, scope);

        /*
         * Lent before for this event's partition (held since, or a revoke would
         * have dropped it): current. Never lent for it: whoever held that
         * partition may have written the Resource since we loaded it, so it is
         * read again (unless it has changes not yet written: none between batches).
         */
        if (e && (!evs[i].pos.topic || e->res->dirty ||
                  entry_seen_on(e, evs[i].pos.topic, evs[i].pos.partition))) {
            continue;
        }
        if (!seen) {
            seen = vg_map_new();
        }
        if (!vg_map_get(seen, evs[i].id)) {
            vg_map_put(seen, evs[i].id, (void *)&evs[i]);
            *VG_ARRAY_PUSH(miss, n_miss, cap_miss) = &evs[i];
        }
    }
    if (n_miss > 0) {
        err = state_need_ctx(st, errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        /* Every miss in one pipelined round trip. */
        for (size_t j = 0; j < n_miss; j++) {
            state_resource_queue_read(st, &c, miss[j]->id);
        }
        replies = vg_calloc(n_miss, sizeof(*replies));
        err = state_read_checked(st, n_miss, replies, "HGETALL", errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        for (size_t j = 0; j < n_miss; j++) {
            const redisReply *r = replies[j];
            struct vg_resource *res = NULL;
            char why[128];

            if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
                res = resource_of_hash(r, miss[j]->id, why, sizeof(why));
                if (!res) {
                    VG_LOG_WARN("state",
                                "resource %s: stored hash unreadable (%s), starting "
                                "from the event",
                                miss[j]->id, why);
                }
            }
            if (res) {
                res->indexed = true;
            } else {
                /* Its first write is whole; with a DEL first unless Redis holds nothing. */
                res = vg_resource_new_from_event(miss[j]);
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
                    res->dirty_mask = VG_DIRTY_WHOLE;
                }
            }
            cache_put(st, miss[j]->id, res, scope); /* in place of a copy read again */
        }
        state_replies_free(replies, n_miss);
    }
out:
    if (err == VG_OK) {
        st->cache_use++;
        for (size_t i = 0; i < n; i++) {
            struct cache_entry *e = cache_get(st, evs[i].id);

            if (evs[i].pos.topic) {
                entry_add_src(st, e, evs[i].pos.topic, evs[i].pos.partition);
            }
            out[i] = e->res;
            out[i]->cache_use = st->cache_use;
        }
    }
    state_cmd_fini(&c);
    vg_free(replies);
    vg_free(miss);
    vg_map_destroy(seen, NULL);
    return err;
}

/*
 * Resources by id for fired timers. Like vg_state_resolve, but an
 * unknown (or unreadable) id stays NULL instead of being created.
 */
vg_err_t vg_state_resolve_ids(struct vg_state *st, const char *const *ids, size_t n,
                              struct vg_resource **out, char *errstr, size_t errstr_size)
{
    const char **miss = NULL;
    redisReply **replies = NULL;
    size_t n_miss = 0;
    size_t cap_miss = 0;
    struct state_cmd c = {0};
    const char *scope = cache_scope(st);
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        if (cache_get_in(st, ids[i], scope)) {
            continue;
        }
        for (size_t j = 0; j < n_miss && !dup; j++) {
            dup = strcmp(miss[j], ids[i]) == 0;
        }
        if (!dup) {
            *VG_ARRAY_PUSH(miss, n_miss, cap_miss) = ids[i];
        }
    }
    if (n_miss > 0) {
        err = state_need_ctx(st, errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        if (st->partitioned && !st->scope) {
            /* The partitioned layout and no partition known: every scope, the newest copy. */
            struct vg_resource **found = vg_calloc(n_miss, sizeof(*found));

            err = state_read_ids(st, miss, n_miss, found, errstr, errstr_size);
            for (size_t j = 0; j < n_miss; j++) {
                if (found[j] && err == VG_OK) {
                    cache_put(st, miss[j], found[j], NULL); /* no partition: any drop takes it */
                } else {
                    vg_resource_destroy(found[j]);
                }
            }
            vg_free(found);
            goto out;
        }
        for (size_t j = 0; j < n_miss; j++) {
            state_resource_queue_read(st, &c, miss[j]);
        }
        replies = vg_calloc(n_miss, sizeof(*replies));
        err = state_read_checked(st, n_miss, replies, "HGETALL", errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        for (size_t j = 0; j < n_miss; j++) {
            const redisReply *r = replies[j];
            struct vg_resource *res = NULL;
            char why[128];

            if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
                res = resource_of_hash(r, miss[j], why, sizeof(why));
                if (res) {
                    cache_put(st, miss[j], res, scope); /* no partition: any drop takes it */
                }
            }
        }
        state_replies_free(replies, n_miss);
    }
out:
    for (size_t i = 0; i < n; i++) {
        const struct cache_entry *e = err == VG_OK ? cache_get_in(st, ids[i], scope) : NULL;

        out[i] = e ? e->res : NULL;
        if (out[i]) {
            out[i]->cache_use = st->cache_use;
        }
    }
    state_cmd_fini(&c);
    vg_free(replies);
    vg_free(miss);
    return err;
}

/* ---- commit ----------------------------------------------------------- */

#define NO_NEXT ((size_t)-1)

static const struct vg_kafka_pos *trans_pos(const struct vg_transition *t)
{
    return t->ev ? &t->ev->pos : &t->res->pos;
}

static const char *trans_message(const struct vg_transition *t)
{
    return t->ev ? t->ev->message : t->res->message;
}

/* Whether `b` has the event time, Kafka position and message of `a` (the same event, mostly). */
static bool same_source(const struct vg_transition *a, const struct vg_transition *b)
{
    const struct vg_kafka_pos *pa = trans_pos(a);
    const struct vg_kafka_pos *pb = trans_pos(b);
    const char *ma = trans_message(a);
    const char *mb = trans_message(b);

    if (a->ev && a->ev == b->ev) {
        return true;
    }
    return a->at_ms == b->at_ms && pa->partition == pb->partition && pa->offset == pb->offset &&
           strcmp(pa->topic ? pa->topic : "", pb->topic ? pb->topic : "") == 0 &&
           (ma == mb || (ma && mb && strcmp(ma, mb) == 0));
}

/*
 * One XADD to the Resource's history holding the transitions trans[first],
 * trans[next[first]], ... in order. Each is one `t`; the event's source and
 * message follow it once per event: a transition without its own `s` shares
 * the previous one's (state_history.c reads it so).
 */
static void append_history(struct vg_state *st, struct state_cmd *c,
                           const struct vg_transition *trans, const size_t *next, size_t first)
{
    const struct vg_transition *prev = NULL;

    state_cmd_str(c, "XADD");
    state_cmd_key_res(c, st, "hist", trans[first].res->id);
    state_cmd_str(c, "MAXLEN");
    state_cmd_str(c, "~");
    state_cmd_str(c, STATE_HISTORY_MAXLEN);
    state_cmd_str(c, "*");
    for (size_t i = first; i != NO_NEXT; i = next[i]) {
        const struct vg_transition *t = &trans[i];

        state_history_transition(c, vg_field_name(t->field), t->from, t->to);
        if (!prev || !same_source(prev, t)) {
            state_history_source(c, t->at_ms, trans_pos(t), trans_message(t));
        }
        /* a runtime decided from pods says why, and which pod */
        if (t->reason[0]) {
            state_cmd_field(c, "reason", t->reason);
        }
        if (t->pod[0]) {
            state_cmd_field(c, "pod", t->pod);
        }
        prev = t;
    }
    state_cmd_append(st, c);
}

/* A late event or a Kubernetes Event's log line (struct vg_history_note). */
static void append_note(struct vg_state *st, struct state_cmd *c, const struct vg_history_note *nt)
{
    const struct vg_event *ev = nt->ev;

    state_cmd_str(c, "XADD");
    state_cmd_key_res(c, st, "hist", nt->id);
    state_cmd_str(c, "MAXLEN");
    state_cmd_str(c, "~");
    state_cmd_str(c, STATE_HISTORY_MAXLEN);
    state_cmd_str(c, "*");
    if (nt->late) {
        state_history_transition(c, vg_field_name(nt->field), nt->from, nt->to);
    }
    state_history_source(c, ev->time_ms, &ev->pos, ev->message);
    if (nt->late) {
        state_cmd_field(c, "late", "1");
        if (nt->reason[0]) {
            state_cmd_field(c, "reason", nt->reason);
        }
        if (ev->pod) {
            state_cmd_field(c, "pod", ev->pod->name);
        }
    } else {
        state_cmd_field(c, "reason", ev->log_reason ? ev->log_reason : "");
        state_cmd_field_i64(c, "count", ev->log_count);
        state_cmd_field(c, "type", ev->log_type ? ev->log_type : "");
        state_cmd_field(c, "pod", ev->log_pod ? ev->log_pod : "");
        state_cmd_field(c, "namespace", ev->log_ns ? ev->log_ns : "");
    }
    state_cmd_append(st, c);
}

static void append_pod_link(struct vg_state *st, struct state_cmd *c, const struct vg_pod_link *l)
{
    state_cmd_str(c, "SET");
    state_cmd_fmt(c, "%s:pod:%s/%s", st->prefix, l->ns, l->pod);
    state_cmd_str(c, l->id);
    if (l->deleted) {
        state_cmd_str(c, "EX");
        state_cmd_i64(c, VG_POD_LINK_TTL_S);
    }
    state_cmd_append(st, c);
}

/* vg_state_pod_lookup in the scope st is in. */
static vg_err_t pod_lookup_here(struct vg_state *st, const char *const *ns, const char *const *pods,
                                size_t n, char **out, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err;

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    if (n == 0) {
        return VG_OK;
    }
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        state_cmd_str(&c, "GET");
        state_cmd_fmt(&c, "%s:pod:%s/%s", st->prefix, ns[i], pods[i]);
        state_cmd_append(st, &c);
    }
    state_cmd_fini(&c);
    return state_read_strings(st, n, true, out, "GET pod", errstr, errstr_size);
}

/*
 * With the partitioned layout pod links live in the global scope, not in
 * a partition's: the Kubernetes Events that need them often come on
 * another topic (k8s.events) than the pods that wrote them, so no
 * partition's scope would be the Event's. They are written on their own
 * before the partition's commit (a SET is idempotent, and a link only
 * says which Resource a pod belongs to: true whether or not that commit
 * lands); on a cluster the global slot's primary holds them all.
 */
vg_err_t vg_state_pod_lookup(struct vg_state *st, const char *const *ns, const char *const *pods,
                             size_t n, char **out, char *errstr, size_t errstr_size)
{
    char *saved;
    vg_err_t err;

    if (!st->partitioned || !st->scope || n == 0) {
        return pod_lookup_here(st, ns, pods, n, out, errstr, errstr_size);
    }
    saved = state_scope_save(st);
    err = vg_state_scope(st, NULL, 0, errstr, errstr_size);
    if (err == VG_OK) {
        err = pod_lookup_here(st, ns, pods, n, out, errstr, errstr_size);
    }
    err = state_scope_restore(st, saved, err, errstr, errstr_size);
    if (err != VG_OK) {
        for (size_t i = 0; i < n; i++) {
            vg_free(out[i]);
            out[i] = NULL;
        }
    }
    return err;
}

/*
 * With the partitioned layout group buffers live in the global scope too
 * (P:grp:<member>, P:grp:idx:<member>, P:timers:groups): a group_by group
 * spans partitions, and one buffer per group makes one grouped page, as
 * with the single layout. A commit's grouped pages are written here, in
 * one pipelined round trip before the partition's MULTI/EXEC. That is
 * safe because a page is deterministic (its incident id and body follow
 * from the events): a retry, a replay, or another instance after a fence
 * loss writes the same HSET field with the same body, and the timer's NX
 * keeps the group's first due time. The page is in Redis before the
 * offsets move, so it is never lost; it may be buffered again by a
 * commit that then fails (at least once).
 */
/*
 * The partitioned layout's global writes of a commit (the pod links above
 * and the grouped pages), in one pipelined round trip in the global scope.
 */
static vg_err_t write_globals(struct vg_state *st, const struct vg_commit *cm, char *errstr,
                              size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply **replies;
    size_t n = 0;
    char *saved = state_scope_save(st);
    vg_err_t err = vg_state_scope(st, NULL, 0, errstr, errstr_size);

    if (err == VG_OK) {
        err = state_need_ctx(st, errstr, errstr_size);
    }
    if (err == VG_OK) {
        for (size_t i = 0; i < cm->n_pod_links; i++) {
            append_pod_link(st, &c, &cm->pod_links[i]);
            n++;
        }
        for (size_t i = 0; i < cm->n_pages; i++) {
            if (cm->pages[i].group) {
                n += state_append_group_page(st, &c, &cm->pages[i]);
            }
        }
        state_cmd_fini(&c);
        replies = vg_calloc(n, sizeof(*replies));
        err = state_read_checked(st, n, replies, "pod links and group pages", errstr, errstr_size);
        if (err == VG_OK) {
            state_replies_free(replies, n);
        }
        vg_free(replies);
    }
    return state_scope_restore(st, saved, err, errstr, errstr_size);
}

static bool has_group_pages(const struct vg_commit *cm)
{
    for (size_t i = 0; i < cm->n_pages; i++) {
        if (cm->pages[i].group) {
            return true;
        }
    }
    return false;
}

static void append_page(struct vg_state *st, struct state_cmd *c, const struct vg_page *pg)
{
    char *body = vg_page_to_json(pg);

    state_append_outbox_entry(st, c, pg->id, pg->sink, pg->pager, body, strlen(body), NULL);
    vg_free(body);
}

/*
 * HSET P:offsets:cluster for the offsets that carry a cluster id (only
 * when it changed: the pipeline sends it once per partition and load).
 * Returns the number of commands appended (0 or 1).
 */
static size_t append_offset_clusters(struct vg_state *st, struct state_cmd *c,
                                     const struct vg_offset *offsets, const char *const *clusters,
                                     size_t n)
{
    char *key;
    bool any = false;

    for (size_t i = 0; clusters && i < n && !any; i++) {
        any = clusters[i] != NULL;
    }
    if (!any) {
        return 0;
    }
    key = state_key(st, "offsets:cluster");
    state_cmd_str(c, "HSET");
    state_cmd_str(c, key);
    for (size_t i = 0; i < n; i++) {
        if (clusters[i]) {
            state_cmd_fmt(c, "%s/%d", offsets[i].topic, (int)offsets[i].partition);
            state_cmd_str(c, clusters[i]);
        }
    }
    state_cmd_append(st, c);
    vg_free(key);
    return 1;
}

/*
 * The history of a commit: one XADD per Resource holding all its
 * transitions, in order. A Resource with a late event or a log line in the
 * commit keeps one entry per transition and note, in Kafka order among
 * them, as before (notes are rare; their order with the transitions is
 * what matters). Returns the number of commands queued.
 */
static size_t append_histories(struct vg_state *st, struct state_cmd *c, const struct vg_commit *cm)
{
    size_t *next;
    size_t *last;                        /* of a Resource's first transition: its last one so far */
    bool *head;                          /* the first transition of a Resource's entry */
    struct vg_map *first = vg_map_new(); /* id -> its first transition + 1 */
    struct vg_map *noted = NULL;         /* ids with notes in this commit */
    size_t n = 0;

    if (cm->n_trans == 0 && cm->n_notes == 0) {
        vg_map_destroy(first, NULL);
        return 0;
    }
    next = vg_malloc((cm->n_trans + 1) * (2 * sizeof(size_t) + sizeof(bool)));
    last = next + cm->n_trans + 1;
    head = (bool *)(last + cm->n_trans + 1);
    for (size_t i = 0; i < cm->n_notes; i++) {
        if (!noted) {
            noted = vg_map_new();
        }
        vg_map_put(noted, cm->notes[i].id, (void *)1);
    }
    for (size_t i = 0; i < cm->n_trans; i++) {
        const char *id = cm->trans[i].res->id;
        size_t f = (size_t)(uintptr_t)vg_map_get(first, id);

        next[i] = NO_NEXT;
        head[i] = false;
        if (noted && vg_map_get(noted, id)) {
            continue; /* written below, one entry each, among its notes */
        }
        if (f == 0) {
            vg_map_put(first, id, (void *)(uintptr_t)(i + 1));
            head[i] = true;
            last[i] = i;
        } else {
            next[last[f - 1]] = i;
            last[f - 1] = i;
        }
    }
    for (size_t i = 0, note = 0; i <= cm->n_trans; i++) {
        /* late events and log lines, in Kafka order among their Resource's transitions */
        while (note < cm->n_notes && (cm->notes[note].before_trans <= i || i == cm->n_trans)) {
            append_note(st, c, &cm->notes[note++]);
            n++;
        }
        if (i < cm->n_trans && noted && vg_map_get(noted, cm->trans[i].res->id)) {
            append_history(st, c, cm->trans, next, i);
            n++;
        }
    }
    for (size_t i = 0; i < cm->n_trans; i++) {
        if (head[i]) {
            append_history(st, c, cm->trans, next, i);
            n++;
        }
    }
    vg_map_destroy(noted, NULL);
    vg_map_destroy(first, NULL);
    vg_free(next);
    return n;
}

static int cmp_by_type(const void *a, const void *b)
{
    const struct vg_resource *ra = *(const struct vg_resource *const *)a;
    const struct vg_resource *rb = *(const struct vg_resource *const *)b;

    return strcmp(ra->type, rb->type);
}

static int cmp_by_workspace(const void *a, const void *b)
{
    const struct vg_resource *ra = *(const struct vg_resource *const *)a;
    const struct vg_resource *rb = *(const struct vg_resource *const *)b;

    return strcmp(ra->workspace, rb->workspace);
}

/*
 * SADD <head><field of v[i]> with the ids of a run of `v` (sorted by that
 * field) that share it: one command per distinct type or workspace. Returns
 * the number of commands queued.
 */
static size_t append_sadd_runs(struct vg_state *st, struct state_cmd *c, const char *head,
                               const struct vg_resource **v, size_t n, bool by_type)
{
    size_t head_len = strlen(head);
    size_t cmds = 0;

    for (size_t i = 0; i < n;) {
        const char *field = by_type ? v[i]->type : v[i]->workspace;
        size_t j = i;

        state_cmd_str(c, "SADD");
        state_cmd_arg2(c, head, head_len, field, strlen(field));
        for (; j < n && strcmp(by_type ? v[j]->type : v[j]->workspace, field) == 0; j++) {
            state_cmd_str(c, v[j]->id);
        }
        state_cmd_append(st, c);
        cmds++;
        i = j;
    }
    return cmds;
}

/*
 * The index entries of the commit's Resources not known to be indexed
 * (new ones, mostly): one SADD P:idx:all and one ZADD P:idx:name for all of
 * them, one SADD per distinct type and per distinct workspace. A batch of
 * new Resources was four commands per Resource; each command inside a
 * MULTI costs Redis its dispatch, its propagation to the AOF and a +QUEUED
 * reply, whatever its number of members (docs/performance.md). Returns the
 * number of commands queued.
 */
static size_t append_indexes(struct vg_state *st, struct state_cmd *c, const struct vg_commit *cm)
{
    const struct vg_resource **v = NULL;
    size_t n = 0;
    size_t cmds = 0;
    char *key;

    for (size_t i = 0; i < cm->n_res; i++) {
        const struct vg_resource *res = cm->res[i];

        if (!res->dirty || res->indexed) {
            continue; /* not written, or a known Resource: its index entries are there already */
        }
        if (!v) {
            v = vg_malloc(cm->n_res * sizeof(*v));
        }
        /* the same Resource twice in cm->res would only repeat members: harmless */
        v[n++] = res;
    }
    if (n == 0) {
        return 0;
    }
    key = state_key(st, "idx:all");
    state_cmd_str(c, "SADD");
    state_cmd_str(c, key);
    for (size_t i = 0; i < n; i++) {
        state_cmd_str(c, v[i]->id);
    }
    state_cmd_append(st, c);
    vg_free(key);
    /*
     * ZADD P:idx:name 0 "<name>\0<id>" ...: lexicographic order is name then
     * id, the order `vigil get` prints, and a glob's literal prefix is a
     * ZRANGEBYLEX range. Names never contain NUL (the decoder rejects it),
     * and a Resource's name is part of its id, so a member never goes stale.
     */
    key = state_key(st, "idx:name");
    state_cmd_str(c, "ZADD");
    state_cmd_str(c, key);
    for (size_t i = 0; i < n; i++) {
        state_cmd_str(c, "0");
        state_cmd_arg2(c, v[i]->name, strlen(v[i]->name) + 1, v[i]->id, strlen(v[i]->id));
    }
    state_cmd_append(st, c);
    vg_free(key);
    cmds = 2;
    key = state_key(st, "idx:type:");
    qsort(v, n, sizeof(*v), cmp_by_type);
    cmds += append_sadd_runs(st, c, key, v, n, true);
    vg_free(key);
    key = state_key(st, "idx:ws:");
    qsort(v, n, sizeof(*v), cmp_by_workspace);
    cmds += append_sadd_runs(st, c, key, v, n, false);
    vg_free(key);
    vg_free(v);
    return cmds;
}

/* Queue MULTI ... EXEC for `cm`; returns the number of commands queued. */
static size_t append_commit(struct vg_state *st, struct state_cmd *c, const struct vg_commit *cm)
{
    size_t n = 0;

    state_cmd_str(c, "MULTI");
    state_cmd_append(st, c);
    n++;
    for (size_t i = 0; i < cm->n_res; i++) {
        const struct vg_resource *res = cm->res[i];

        if (!res->dirty) {
            continue;
        }
        n += state_resource_write(st, c, res);
    }
    n += append_indexes(st, c, cm);
    n += append_histories(st, c, cm);
    for (size_t i = 0; !st->partitioned && i < cm->n_pod_links; i++) {
        append_pod_link(st, c, &cm->pod_links[i]); /* partitioned: written before, globally */
        n++;
    }
    for (size_t i = 0; i < cm->n_pages; i++) {
        if (cm->pages[i].group) {
            /* a grouped pager's page waits in its group buffer
             * (partitioned: written before, globally) */
            if (!st->partitioned) {
                n += state_append_group_page(st, c, &cm->pages[i]);
            }
            continue;
        }
        append_page(st, c, &cm->pages[i]);
        n++;
    }
    if (cm->n_offsets > 0) {
        char *key = state_key(st, "offsets");

        state_cmd_str(c, "HSET");
        state_cmd_str(c, key);
        for (size_t i = 0; i < cm->n_offsets; i++) {
            state_cmd_fmt(c, "%s/%d", cm->offsets[i].topic, (int)cm->offsets[i].partition);
            state_cmd_i64(c, cm->offsets[i].offset);
        }
        state_cmd_append(st, c);
        vg_free(key);
        n++;
        n += append_offset_clusters(st, c, cm->offsets, cm->offset_clusters, cm->n_offsets);
    }
    /* incident records, then timers (a fired one is removed before it is re-set) */
    n += state_append_incidents(st, c, cm->incidents, cm->n_incidents);
    n += state_append_timers(st, c, cm->timers, cm->n_timers);
    state_cmd_str(c, "EXEC");
    state_cmd_append(st, c);
    n++;
    return n;
}

/*
 * Fencing (docs/state.md "Fencing"): each partition has a counter
 * P:epoch:{<topic>/<partition>} (its own hash tag, for Redis Cluster),
 * bumped by vg_state_partition_claim before the claimant reads the
 * applied offset. A commit carries the epochs it was built on; before
 * MULTI it WATCHes and reads them, and writes only if none moved: an
 * instance the group dropped while its batch was in flight can no longer
 * land that batch after the new owner read the applied offset.
 */
static void (*fenced_hook)(void *arg);
static void *fenced_hook_arg;

void state_test_on_fenced(void (*fn)(void *arg), void *arg)
{
    fenced_hook = fn;
    fenced_hook_arg = arg;
}

static char *epoch_key(const struct vg_state *st, const char *topic, int32_t partition)
{
    return vg_asprintf("%s:epoch:{%s/%d}", st->prefix, topic, (int)partition);
}

/* Queue "<verb> key..." over every fence's epoch key (WATCH, MGET). */
static void append_fence_keys(struct vg_state *st, struct state_cmd *c, const char *verb,
                              const struct vg_commit *cm)
{
    state_cmd_str(c, verb);
    for (size_t i = 0; i < cm->n_fences; i++) {
        char *key = epoch_key(st, cm->fences[i].topic, cm->fences[i].partition);

        state_cmd_str(c, key);
        vg_free(key);
    }
    state_cmd_append(st, c);
}

static size_t fence_moved(const struct vg_commit *cm, const redisReply *mget, int64_t *now)
{
    return state_fence_moved(cm->fences, cm->n_fences, mget, now);
}

static vg_err_t fence_conflict(const struct vg_commit *cm, size_t i, int64_t now, char *errstr,
                               size_t errstr_size)
{
    state_set_err(errstr, errstr_size,
                  "partition %s/%d was taken by another instance (epoch now %" PRId64
                  ", this batch was built on %" PRId64 ")",
                  cm->fences[i].topic, (int)cm->fences[i].partition, now, cm->fences[i].epoch);
    if (cm->fence_lost) {
        *cm->fence_lost = i;
    }
    return VG_ERR_CONFLICT;
}

static vg_err_t fence_verdict(struct vg_state *st, const struct vg_commit *cm, size_t moved,
                              int64_t now, char *errstr, size_t errstr_size);

/*
 * Before MULTI, one round trip: WATCH the fenced epochs (EXEC then fails
 * if one moves before it) and MGET them (one that moved already: nothing
 * is queued, UNWATCH, VG_ERR_CONFLICT).
 */
static vg_err_t fence_check(struct vg_state *st, const struct vg_commit *cm, char *errstr,
                            size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *replies[2] = {NULL, NULL};
    size_t moved;
    int64_t now = 0;
    vg_err_t err;

    append_fence_keys(st, &c, "WATCH", cm);
    append_fence_keys(st, &c, "MGET", cm);
    state_cmd_fini(&c);
    err = state_read_checked(st, 2, replies, "WATCH epochs", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    moved = fence_moved(cm, replies[1], &now);
    state_replies_free(replies, 2);
    return fence_verdict(st, cm, moved, now, errstr, errstr_size);
}

/* The fences read (moved: the first that moved, n_fences: none): a moved one UNWATCHes. */
static vg_err_t fence_verdict(struct vg_state *st, const struct vg_commit *cm, size_t moved,
                              int64_t now, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err = VG_OK;

    if (moved < cm->n_fences) {
        state_cmd_str(&c, "UNWATCH");
        err = state_run(st, &c, "UNWATCH", NULL, NULL, errstr, errstr_size);
        if (err == VG_OK) {
            err = fence_conflict(cm, moved, now, errstr, errstr_size);
        }
    }
    state_cmd_fini(&c);
    return err;
}

/* EXEC returned nil: a fenced epoch moved after the WATCH. Read them again to say which. */
static vg_err_t fence_explain(struct vg_state *st, const struct vg_commit *cm, char *errstr,
                              size_t errstr_size)
{
    /* (cm: only its fences and fence_lost) */
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    size_t moved = 0;
    int64_t now = -1;
    vg_err_t err;

    append_fence_keys(st, &c, "MGET", cm);
    err = state_read_checked(st, 1, &reply, "MGET epochs", errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    moved = fence_moved(cm, reply, &now);
    freeReplyObject(reply);
    if (moved == cm->n_fences) {
        moved = 0; /* epochs only grow: one moved, whichever it was */
        now = -1;
    }
    return fence_conflict(cm, moved, now, errstr, errstr_size);
}

/* Whether fences `a` (sent ahead) are the commit's `b`. */
static bool same_fences(const struct vg_fence *a, size_t na, const struct vg_fence *b, size_t nb)
{
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (a[i].partition != b[i].partition || a[i].epoch != b[i].epoch ||
            strcmp(a[i].topic, b[i].topic) != 0) {
            return false;
        }
    }
    return true;
}

vg_err_t vg_state_fence_ahead(struct vg_state *st, const struct vg_fence *fences, size_t n,
                              char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    const struct vg_commit cm = {.fences = fences, .n_fences = n};
    struct state_inflight *e;
    int done = 0;
    vg_err_t err;

    if (n == 0) {
        return VG_OK;
    }
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    /* UNWATCH first: a fence sent ahead for a part that then sent nothing is forgotten */
    state_cmd_str(&c, "UNWATCH");
    state_cmd_append(st, &c);
    append_fence_keys(st, &c, "WATCH", &cm);
    append_fence_keys(st, &c, "MGET", &cm);
    state_cmd_fini(&c);
    e = state_inflight_push(st);
    e->ctx = st->ctx;
    e->n = 3;
    e->fence_ahead = true;
    e->scope = st->scope ? vg_strdup(st->scope) : NULL;
    snprintf(e->redacted, sizeof(e->redacted), "%s", st->redacted);
    e->fences = vg_malloc(n * sizeof(*e->fences));
    for (size_t i = 0; i < n; i++) {
        e->fences[i] = fences[i];
        e->fences[i].topic = vg_strdup(fences[i].topic);
    }
    e->n_fences = n;
    while (!done && redisBufferWrite(st->ctx, &done) == REDIS_OK) {
    }
    return VG_OK;
}

/* The fence sent ahead on st->ctx that no commit took yet; NULL: none. */
static struct state_inflight *fence_ahead_on_ctx(struct vg_state *st)
{
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        struct state_inflight *e = &st->inflight[i];

        if (e->fence_ahead && !e->fence_used && e->ctx == st->ctx) {
            return e;
        }
    }
    return NULL;
}

/*
 * The commit `cm` about to be written on st->ctx, with a fence sent ahead
 * there: its verdict (read now if not yet) when it watched cm's fences;
 * any other is forgotten (UNWATCH) and cm's fences are checked as usual.
 */
static vg_err_t fence_take_ahead(struct vg_state *st, struct state_inflight *e,
                                 const struct vg_commit *cm, char *errstr, size_t errstr_size)
{
    char why[256];
    size_t at = (size_t)(e - st->inflight);
    vg_err_t err;

    e->fence_used = true;
    if (!same_fences(e->fences, e->n_fences, cm->fences, cm->n_fences)) {
        err = state_inflight_unwatch(st, e, errstr, errstr_size);
        if (err == VG_OK && cm->n_fences > 0) {
            err = fence_check(st, cm, errstr, errstr_size);
        }
        return err;
    }
    if (!e->read) {
        (void)state_inflight_drain(st, e->ctx, e, why, sizeof(why));
        e = &st->inflight[at]; /* (the FIFO does not move while draining) */
    }
    if (e->err != VG_OK) {
        state_set_err(errstr, errstr_size, "%s", e->errstr ? e->errstr : "WATCH epochs failed");
        return e->err;
    }
    return fence_verdict(st, cm, e->fence_moved, e->fence_now, errstr, errstr_size);
}

/*
 * The write half of a commit: everything up to MULTI..EXEC (and WAIT)
 * written to the socket, the replies left unread (a commit in flight). A
 * write that fails leaves the context's error set: vg_state_commit_finish
 * reports it, as the reply reading of a commit in one call would.
 */
vg_err_t vg_state_commit_send(struct vg_state *st, const struct vg_commit *cm, char *errstr,
                              size_t errstr_size)
{
    struct state_cmd c = {0};
    size_t n_dirty = 0;
    size_t n;
    size_t n_wait;
    int done = 0;
    vg_err_t err;

    for (size_t i = 0; i < cm->n_res; i++) {
        n_dirty += cm->res[i]->dirty ? 1 : 0;
    }
    if (n_dirty == 0 && cm->n_trans == 0 && cm->n_pages == 0 && cm->n_offsets == 0 &&
        cm->n_notes == 0 && cm->n_pod_links == 0 && cm->n_timers == 0 && cm->n_incidents == 0) {
        /* nothing to write: its finish is VG_OK, in its turn */
        state_inflight_push(st)->read = true;
        return VG_OK;
    }
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (st->partitioned && (cm->n_pod_links > 0 || has_group_pages(cm))) {
        err = write_globals(st, cm, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    if (cm->n_incidents > 0) {
        err = state_incidents_prepare(st, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    {
        struct state_inflight *ahead = fence_ahead_on_ctx(st);

        if (ahead) {
            err = fence_take_ahead(st, ahead, cm, errstr, errstr_size);
        } else {
            err = cm->n_fences > 0 ? fence_check(st, cm, errstr, errstr_size) : VG_OK;
        }
        if (err != VG_OK) {
            return err;
        }
    }
    if (cm->n_fences > 0) {
        if (fenced_hook) {
            fenced_hook(fenced_hook_arg);
        }
    }
    n = append_commit(st, &c, cm);
    n_wait = append_wait(st);
    state_cmd_fini(&c);
    state_inflight_record(st, cm, n, n_wait);
    while (!done && redisBufferWrite(st->ctx, &done) == REDIS_OK) {
    }
    return VG_OK;
}

/*
 * Entry e failed on its connection after it was judged: an EXEC refused
 * under the fences is explained (which partition), the counts function
 * flushed under us is noted, both in the scope the commit was written in.
 */
static vg_err_t inflight_explain(struct vg_state *st, const struct state_inflight *e, vg_err_t err,
                                 char *errstr, size_t errstr_size)
{
    char *saved;
    vg_err_t back;

    /* an error inside EXEC saying the counts function is not on the server */
    bool no_function = e->incidents && e->exec_ran && e->errstr &&
                       state_incidents_no_function(e->errstr, strlen(e->errstr));

    if (!no_function && !e->fenced_out) {
        return err;
    }
    saved = state_scope_save(st);
    back = vg_state_scope_set(st, e->scope, errstr, errstr_size);
    if (back == VG_OK) {
        back = state_need_ctx(st, errstr, errstr_size);
    }
    if (back != VG_OK) {
        vg_free(saved);
        return back;
    }
    if (no_function) {
        state_incidents_recount(st);
    }
    if (e->fenced_out) {
        /* VG_ERR_CONFLICT naming the partition (or the MGET's failure): nothing written */
        const struct vg_commit cm = {
            .fences = e->fences, .n_fences = e->n_fences, .fence_lost = e->fence_lost};

        err = fence_explain(st, &cm, errstr, errstr_size);
    }
    return state_scope_restore(st, saved, err, errstr, errstr_size);
}

vg_err_t vg_state_commit_finish(struct vg_state *st, char *errstr, size_t errstr_size)
{
    struct state_inflight e;
    vg_err_t err;

    vg_state_fences_ahead_drop(st, true);
    if (!state_commits_pending(st)) {
        return VG_OK;
    }
    if (!st->inflight[st->inflight_head].read) {
        char why[256];

        /* the commits before it on its connection are read first; a failure is its verdict */
        (void)state_inflight_drain(st, st->inflight[st->inflight_head].ctx,
                                   &st->inflight[st->inflight_head], why, sizeof(why));
    }
    e = st->inflight[st->inflight_head]; /* taken: the FIFO no longer holds it */
    memset(&st->inflight[st->inflight_head], 0, sizeof(e));
    st->inflight_head++;
    err = e.err;
    if (err != VG_OK) {
        state_set_err(errstr, errstr_size, "%s", e.errstr ? e.errstr : "commit failed");
        state_inflight_forget_function(st, e.ctx); /* whatever failed, ask the server again */
        err = inflight_explain(st, &e, err, errstr, errstr_size);
    }
    for (size_t i = 0; i < e.n_res; i++) {
        struct vg_resource *res = e.res[i];

        if (err == VG_OK) {
            res->indexed = true;
            vg_resource_clean(res);
        } else {
            /* Unknown what Redis holds of it now (the reply may have been
             * lost after EXEC ran, or one command failed inside it): its
             * next write is whole, unless the cache is reloaded first. */
            res->dirty_mask |= VG_DIRTY_REPLACE;
        }
    }
    state_inflight_fini(&e);
    return err;
}

void vg_state_fences_ahead_drop(struct vg_state *st, bool head_only)
{
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        struct state_inflight *e = &st->inflight[i];

        if (!e->fence_ahead) {
            if (head_only) {
                return;
            }
            continue;
        }
        if (!e->fence_used) {
            e->fence_used = true;
            (void)state_inflight_unwatch(st, e, NULL, 0); /* a failure closes its connection */
            e = &st->inflight[i];
        }
        if (i == st->inflight_head) {
            state_inflight_fini(e);
            st->inflight_head++;
        }
    }
}

vg_err_t vg_state_commit(struct vg_state *st, const struct vg_commit *cm, char *errstr,
                         size_t errstr_size)
{
    vg_err_t err;

    VG_ASSERT(!state_commits_pending(st)); /* one commit, start to end */
    err = vg_state_commit_send(st, cm, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    return vg_state_commit_finish(st, errstr, errstr_size);
}

vg_err_t vg_state_partition_claim(struct vg_state *st, const char *topic, int32_t partition,
                                  int64_t *epoch, int64_t *offset, char **cluster, char *errstr,
                                  size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *replies[3] = {NULL, NULL, NULL};
    char *key;
    vg_err_t err;

    *epoch = 0;
    *offset = -1;
    *cluster = NULL;
    /* A commit whose WAIT fell short (or went unanswered) and whose batch was not
     * reconnected after (a batch failed with a conflict of another part): its retry claims
     * again, may find it all replayed and send nothing, so its node's replicas prove they
     * have it first (nothing owed: no round trip). */
    err = state_wait_settle(st, errstr, errstr_size);
    if (err == VG_OK) {
        err = state_need_ctx(st, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    if (st->partitioned) {
        /* the registry the readers go through (vg_state_scopes), then the partition's keys */
        state_cmd_str(&c, "SADD");
        state_cmd_fmt(&c, "%s:parts", st->global);
        state_cmd_fmt(&c, "%s/%d", topic, (int)partition);
        err = state_scope_global_run(st, &c, "SADD", NULL, errstr, errstr_size);
        if (err == VG_OK) {
            err = vg_state_scope(st, topic, partition, errstr, errstr_size);
        }
        if (err != VG_OK) {
            state_cmd_fini(&c);
            return err;
        }
    }
    /* INCR first: from its reply on, a commit of an older claim is refused (see the fence) */
    key = epoch_key(st, topic, partition);
    state_cmd_str(&c, "INCR");
    state_cmd_str(&c, key);
    state_cmd_append(st, &c);
    vg_free(key);
    for (int i = 0; i < 2; i++) {
        key = state_key(st, i == 0 ? "offsets" : "offsets:cluster");
        state_cmd_str(&c, "HGET");
        state_cmd_str(&c, key);
        state_cmd_fmt(&c, "%s/%d", topic, (int)partition);
        state_cmd_append(st, &c);
        vg_free(key);
    }
    state_cmd_fini(&c);
    err = state_read_checked(st, 3, replies, "claim partition", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (replies[0]->type != REDIS_REPLY_INTEGER) {
        state_set_err(errstr, errstr_size, "redis %s: INCR epoch of %s/%d: not an integer reply",
                      st->redacted, topic, (int)partition);
        err = VG_ERR_INVALID;
    } else if (replies[1]->type == REDIS_REPLY_STRING && !vg_parse_i64(replies[1]->str, offset)) {
        state_set_err(errstr, errstr_size, "redis %s: offset of %s/%d is not a number: %.*s",
                      st->redacted, topic, (int)partition, (int)replies[1]->len, replies[1]->str);
        err = VG_ERR_INVALID;
    } else {
        *epoch = replies[0]->integer;
        if (replies[2]->type == REDIS_REPLY_STRING) {
            *cluster = vg_strndup(replies[2]->str, replies[2]->len);
        }
    }
    state_replies_free(replies, 3);
    if (err != VG_OK) {
        *epoch = 0;
        *offset = -1;
    }
    return err;
}

static vg_err_t applied_offset_here(struct vg_state *st, const char *topic, int32_t partition,
                                    int64_t *out, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    char *key;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    key = state_key(st, "offsets");
    state_cmd_str(&c, "HGET");
    state_cmd_str(&c, key);
    state_cmd_fmt(&c, "%s/%d", topic, (int)partition);
    err = state_run(st, &c, "HGET offsets", NULL, &reply, errstr, errstr_size);
    state_cmd_fini(&c);
    vg_free(key);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        if (!vg_parse_i64(reply->str, out)) {
            state_set_err(errstr, errstr_size, "redis %s: offset of %s/%d is not a number: %.*s",
                          st->redacted, topic, (int)partition, (int)reply->len, reply->str);
            err = VG_ERR_INVALID;
        }
    }
    freeReplyObject(reply);
    return err;
}

/* With the partitioned layout, read in the partition's scope; st returns to its own. */
vg_err_t vg_state_applied_offset(struct vg_state *st, const char *topic, int32_t partition,
                                 int64_t *out, char *errstr, size_t errstr_size)
{
    char *was;
    vg_err_t err;

    *out = -1;
    if (!st->partitioned) {
        return applied_offset_here(st, topic, partition, out, errstr, errstr_size);
    }
    was = st->scope ? vg_strdup(st->scope) : NULL;
    err = vg_state_scope(st, topic, partition, errstr, errstr_size);
    if (err == VG_OK) {
        err = applied_offset_here(st, topic, partition, out, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = vg_state_scope_set(st, was, errstr, errstr_size);
    }
    vg_free(was);
    return err;
}
