/*
 * The consumer thread's batch: decode -> skip what Redis already has ->
 * resolve Resources (one round trip for cache misses) -> apply -> rules ->
 * one MULTI/EXEC with state, history, outbox pages and applied offsets.
 * Kafka offsets are stored by the consumer only after this returns VG_OK,
 * so nothing is lost; the applied offsets in Redis make replays no-ops,
 * so nothing is applied (or paged) twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vigil/event.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/util.h"

struct applied {
    char *topic;
    int32_t partition;
    int64_t offset; /* last applied in Redis; -1 none */
    int64_t batch_max; /* highest offset seen in the current batch; -1 none */
};

struct cli_pipeline {
    struct vg_state *st;
    const struct vg_ruleset *rs;
    const struct vg_health_config *hc;
    struct cli_stats *stats;
    struct vg_map *applied; /* "topic/partition" -> struct applied* */
    bool need_reconnect;
    int64_t last_invalid_log_ms[VG_DECODE__COUNT];
    /* scratch, reused across batches */
    struct vg_event *evs;
    size_t cap_evs;
    struct vg_resource **res;
    size_t cap_res;
    struct vg_resource **dirty;
    size_t cap_dirty;
    struct vg_transition *trans;
    size_t cap_trans;
    struct vg_offset *offsets;
    size_t cap_offsets;
    struct vg_pages pages;
    void (*idle_fn)(void *arg);
    void *idle_arg;
};

static void applied_free(void *p)
{
    struct applied *a = p;
    free(a->topic);
    free(a);
}

struct cli_pipeline *cli_pipeline_new(struct vg_state *st, const struct vg_ruleset *rs,
                                      const struct vg_health_config *hc, struct cli_stats *stats)
{
    struct cli_pipeline *pl = vg_calloc(1, sizeof(*pl));
    pl->st = st;
    pl->rs = rs;
    pl->hc = hc;
    pl->stats = stats;
    pl->applied = vg_map_new();
    return pl;
}

void cli_pipeline_destroy(struct cli_pipeline *pl)
{
    if (!pl) {
        return;
    }
    vg_map_destroy(pl->applied, applied_free);
    free(pl->evs);
    free(pl->res);
    free(pl->dirty);
    free(pl->trans);
    free(pl->offsets);
    vg_pages_fini(&pl->pages);
    free(pl);
}

/* Forget everything cached: after a rebalance or a failed commit. */
static void forget(struct cli_pipeline *pl)
{
    vg_state_cache_clear(pl->st);
    vg_map_clear(pl->applied, applied_free);
}

static void on_assigned(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct cli_pipeline *pl = opaque;
    forget(pl);
    for (size_t i = 0; i < n; i++) {
        VG_LOG_INFO("consumer", "assigned topic=%s partition=%d", parts[i].topic,
                    (int)parts[i].partition);
    }
}

static void on_revoked(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct cli_pipeline *pl = opaque;
    forget(pl);
    VG_LOG_INFO("consumer", "revoked %zu partitions", n);
    (void)parts;
}

/* The applied-offset record of a partition, loaded from Redis on first use. */
static vg_err_t get_applied(struct cli_pipeline *pl, const char *topic, int32_t partition,
                            struct applied **out, char *errstr, size_t errstr_size)
{
    char key[512];
    struct applied *a;
    snprintf(key, sizeof(key), "%s/%d", topic, (int)partition);
    a = vg_map_get(pl->applied, key);
    if (!a) {
        int64_t off = -1;
        vg_err_t err = vg_state_applied_offset(pl->st, topic, partition, &off, errstr,
                                               errstr_size);
        if (err) {
            return err;
        }
        a = vg_calloc(1, sizeof(*a));
        a->topic = vg_strdup(topic);
        a->partition = partition;
        a->offset = off;
        a->batch_max = -1;
        vg_map_put(pl->applied, key, a);
    }
    *out = a;
    return VG_OK;
}

static void log_invalid(struct cli_pipeline *pl, const struct vg_kafka_msg *m,
                        enum vg_decode_reason r, const char *detail)
{
    int64_t now = vg_mono_ms();
    /* At most one line per reason per second: a poison flood must not flood the log. */
    if (now - pl->last_invalid_log_ms[r] < 1000) {
        return;
    }
    pl->last_invalid_log_ms[r] = now;
    VG_LOG_WARN("consumer", "invalid event topic=%s partition=%d offset=%" PRId64
                " reason=%s: %s (counted; further ones this second not logged)",
                m->topic, (int)m->partition, m->offset, vg_decode_reason_name(r), detail);
}

static void reset_batch(struct cli_pipeline *pl, size_t n_evs)
{
    for (size_t i = 0; i < n_evs; i++) {
        vg_event_fini(&pl->evs[i]);
    }
    vg_pages_clear(&pl->pages);
}

static vg_err_t batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct cli_pipeline *pl = opaque;
    char errstr[512];
    size_t n_evs = 0;
    size_t n_trans = 0;
    size_t n_dirty = 0;
    size_t n_offsets = 0;
    size_t iter;
    const char *key;
    void *val;
    struct vg_commit c;
    vg_err_t err;

    if (pl->need_reconnect) {
        err = vg_state_reconnect(pl->st, errstr, sizeof(errstr));
        if (err) {
            VG_LOG_DEBUG("state", "reconnect failed: %s", errstr);
            return err;
        }
        pl->need_reconnect = false;
        VG_LOG_INFO("state", "redis reachable again");
    }
    vg_array_grow((void **)&pl->evs, &pl->cap_evs, n, sizeof(*pl->evs));
    vg_array_grow((void **)&pl->res, &pl->cap_res, n, sizeof(*pl->res));
    vg_array_grow((void **)&pl->trans, &pl->cap_trans, n * 3, sizeof(*pl->trans));

    /* 1. decode; skip what Redis already has */
    for (size_t i = 0; i < n; i++) {
        const struct vg_kafka_msg *m = &msgs[i];
        struct applied *a;
        char detail[256];
        enum vg_decode_reason r;

        err = get_applied(pl, m->topic, m->partition, &a, errstr, sizeof(errstr));
        if (err) {
            goto fail;
        }
        if (m->offset > a->batch_max) {
            a->batch_max = m->offset;
        }
        if (m->offset <= a->offset) {
            atomic_fetch_add(&pl->stats->skipped, 1);
            continue;
        }
        r = vg_event_decode(&pl->evs[n_evs], m->payload, m->payload ? m->len : 0,
                            m->timestamp_ms, detail, sizeof(detail));
        if (r != VG_DECODE_OK) {
            atomic_fetch_add(&pl->stats->invalid, 1);
            log_invalid(pl, m, r, detail);
            continue;
        }
        pl->evs[n_evs].pos.topic = vg_strdup(m->topic);
        pl->evs[n_evs].pos.partition = m->partition;
        pl->evs[n_evs].pos.offset = m->offset;
        n_evs++;
    }

    /* 2. resolve current state: cache, or one pipelined round trip for the misses */
    if (n_evs > 0) {
        err = vg_state_resolve(pl->st, pl->evs, n_evs, pl->res, errstr, sizeof(errstr));
        if (err) {
            goto fail;
        }
    }

    /* 3. apply in order, evaluate rules on the transitions of each event */
    for (size_t i = 0; i < n_evs; i++) {
        struct vg_resource *res = pl->res[i];
        bool was_dirty = res->dirty;
        size_t nt = vg_resource_apply(pl->hc, res, &pl->evs[i], &pl->trans[n_trans]);
        if (nt > 0) {
            vg_rules_eval(pl->rs, res, &pl->trans[n_trans], nt, &pl->pages);
        }
        n_trans += nt;
        if (res->dirty && !was_dirty) {
            struct vg_resource **slot = VG_ARRAY_PUSH(pl->dirty, n_dirty, pl->cap_dirty);
            *slot = res;
        }
    }

    /* 4. the applied offset of every partition in the batch */
    iter = 0;
    while (vg_map_next(pl->applied, &iter, &key, &val)) {
        struct applied *a = val;
        if (a->batch_max > a->offset) {
            struct vg_offset *o = VG_ARRAY_PUSH(pl->offsets, n_offsets, pl->cap_offsets);
            o->topic = a->topic;
            o->partition = a->partition;
            o->offset = a->batch_max;
        }
    }

    /* 5. one atomic write */
    if (n_dirty > 0 || n_offsets > 0) {
        c = (struct vg_commit){
            .res = pl->dirty,
            .n_res = n_dirty,
            .trans = pl->trans,
            .n_trans = n_trans,
            .pages = pl->pages.items,
            .n_pages = pl->pages.n,
            .offsets = pl->offsets,
            .n_offsets = n_offsets,
        };
        err = vg_state_commit(pl->st, &c, errstr, sizeof(errstr));
        if (err) {
            goto fail;
        }
    }
    iter = 0;
    while (vg_map_next(pl->applied, &iter, &key, &val)) {
        struct applied *a = val;
        if (a->batch_max > a->offset) {
            a->offset = a->batch_max;
        }
        a->batch_max = -1;
    }
    atomic_fetch_add(&pl->stats->consumed, (long long)n);
    atomic_fetch_add(&pl->stats->applied, (long long)n_evs);
    atomic_fetch_add(&pl->stats->transitions, (long long)n_trans);
    atomic_fetch_add(&pl->stats->pages, (long long)pl->pages.n);
    for (size_t i = 0; i < pl->pages.n; i++) {
        VG_LOG_INFO("rules", "page %s incident=%s monitor=%s resource=%s sink=%s",
                    pl->pages.items[i].status, pl->pages.items[i].incident.id,
                    pl->pages.items[i].incident.monitor, pl->pages.items[i].resource.id,
                    pl->pages.items[i].sink);
    }
    reset_batch(pl, n_evs);
    return VG_OK;

fail:
    /*
     * Nothing of this batch counts as applied: the cache holds state Redis
     * may not have, and an EXEC whose reply was lost may have applied after
     * all, so both caches are dropped and reloaded on retry.
     */
    reset_batch(pl, n_evs);
    forget(pl);
    if (vg_err_is_retriable(err)) {
        pl->need_reconnect = true;
        VG_LOG_DEBUG("state", "batch not applied: %s", errstr);
    } else {
        VG_LOG_ERROR("state", "batch not applied: %s", errstr);
    }
    return err;
}

static void on_idle(void *opaque)
{
    struct cli_pipeline *pl = opaque;
    if (pl->idle_fn) {
        pl->idle_fn(pl->idle_arg);
    }
}

void cli_pipeline_on_idle(struct cli_pipeline *pl, void (*fn)(void *arg), void *arg)
{
    pl->idle_fn = fn;
    pl->idle_arg = arg;
}

void cli_pipeline_handler(struct cli_pipeline *pl, struct vg_consumer_handler *h)
{
    memset(h, 0, sizeof(*h));
    h->opaque = pl;
    h->assigned = on_assigned;
    h->revoked = on_revoked;
    h->batch = batch;
    h->idle = on_idle;
}
