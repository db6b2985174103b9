/*
 * Firing durable timers and flushing group buffers: the one implementation
 * behind `vigil run` (engine/timers.c, storage in Redis), `vigil test` and
 * the unit tests (rules_mem.c, storage in memory). It decides the order of
 * a round, what a fired member removes, which Resources changed and what a
 * group buffer becomes; struct vg_rules_store does the reading and the
 * atomic writing. Pure: no I/O of its own, the clock is env->now_ms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* Scratch of one round of Resource timers. */
struct round {
    char **ids;    /* Resource ids of the fired members that name one */
    size_t *which; /* ids[j] comes from due[which[j]] */
    size_t n_ids;
    struct vg_resource **res;   /* loaded: res[j] for ids[j] */
    struct vg_resource **dirty; /* changed by this round, each once */
    size_t n_dirty;
    struct vg_rules_out out;
};

static void round_init(struct round *r, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->ids = vg_calloc(n + 1, sizeof(*r->ids));
    r->which = vg_calloc(n + 1, sizeof(*r->which));
    r->res = vg_calloc(n + 1, sizeof(*r->res));
    r->dirty = vg_calloc(n + 1, sizeof(*r->dirty));
}

static void round_fini(struct round *r)
{
    for (size_t i = 0; i < r->n_ids; i++) {
        vg_free(r->ids[i]);
    }
    vg_free(r->ids);
    vg_free(r->which);
    vg_free(r->res);
    vg_free(r->dirty);
    vg_rules_out_fini(&r->out);
}

/*
 * Every fired member is removed first (a re-scheduled one is added back
 * after it, in the same commit), and the Resource timers name their
 * Resource.
 */
static void collect(struct round *r, const struct vg_rules_due *due, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!due[i].topic) {
            continue;
        }
        vg_timers_add(&r->out.timers, due[i].topic, due[i].partition, due[i].member, 0, false);
        if (vg_rules_timer_resource(due[i].member, &r->ids[r->n_ids])) {
            r->which[r->n_ids++] = i;
        }
    }
}

static void mark_dirty(struct round *r, struct vg_resource *res)
{
    for (size_t k = 0; k < r->n_dirty; k++) {
        if (r->dirty[k] == res) {
            return;
        }
    }
    r->dirty[r->n_dirty++] = res;
}

/* Re-evaluate each loaded Resource for its fired member(s), in the order given. */
static void fire_loaded(struct round *r, const struct vg_ruleset *rs,
                        const struct vg_rules_env *env, const struct vg_rules_due *due)
{
    for (size_t j = 0; j < r->n_ids; j++) {
        struct vg_resource *res = r->res[j];

        if (!res) {
            continue; /* the Resource is gone: its timer is just removed */
        }
        vg_rules_fire(rs, env, res, due[r->which[j]].member, &r->out);
        if (res->dirty) {
            mark_dirty(r, res);
        }
    }
}

static vg_err_t fire_resources(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                               const struct vg_rules_store *store, const struct vg_rules_due *due,
                               size_t n, char *errstr, size_t errstr_size)
{
    struct round r;
    struct vg_rules_fired fx;
    vg_err_t err;

    round_init(&r, n);
    collect(&r, due, n);
    if (r.out.timers.n == 0) {
        round_fini(&r);
        return VG_OK;
    }
    err = store->load_resources(store->ctx, (const char *const *)r.ids, r.n_ids, r.res, errstr,
                                errstr_size);
    if (err == VG_OK) {
        fire_loaded(&r, rs, env, due);
        fx = (struct vg_rules_fired){.res = r.dirty, .n_res = r.n_dirty, .out = &r.out};
        err = store->commit(store->ctx, &fx, errstr, errstr_size);
    }
    round_fini(&r);
    return err;
}

/*
 * A deterministic page id: the same buffer always gives the same body, and
 * so the same idempotency key.
 */
static void grouped_id(const char *member, const char *body, char *id, size_t id_size)
{
    const char *parts[2] = {member, body};
    char fp[17];

    vg_fingerprint(fp, parts, 2);
    snprintf(id, id_size, "%s-g", fp);
}

/* The group_limit of the pager named by group timer `member` ("<pager>|<sink>|<group>"). */
static size_t group_limit(const struct vg_ruleset *rs, const char *member)
{
    size_t len = strcspn(member, "|");

    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *p = rs->pagers[i];

        if (p->grouped && strlen(p->name) == len && strncmp(p->name, member, len) == 0) {
            return p->group_limit;
        }
    }
    /* a pager removed by a reload: its last buffer still goes out, bounded */
    return RULES_DEFAULT_GROUP_LIMIT;
}

/* What buffer `g` becomes: nothing when empty or not one of ours, else one grouped page. */
static void grouped_page(const char *member, const struct vg_rules_group *g, size_t limit,
                         struct vg_rules_grouped *gp)
{
    struct vg_group_counts counts = {.firing = g->n_firing, .ended = g->n_ended};

    memset(gp, 0, sizeof(*gp));
    gp->pager = g->pager ? g->pager : "";
    gp->sink = g->sink ? g->sink : "";
    gp->n_incidents =
        g->n_firing + g->n_ended > g->n_bodies ? g->n_firing + g->n_ended : g->n_bodies;
    if (g->n_bodies == 0 || !gp->sink[0]) {
        gp->n_incidents = 0;
        return;
    }
    /* NULL only for a body vigil did not write: the buffer is dropped without a page */
    gp->body = vg_page_group_build(gp->pager, g->labels, g->n_labels, g->bodies, g->n_bodies, limit,
                                   &counts);
    if (gp->body) {
        gp->n_incidents = counts.firing + counts.ended;
        gp->n_listed = counts.listed;
        grouped_id(member, gp->body, gp->id, sizeof(gp->id));
    }
}

static vg_err_t flush_group(const struct vg_ruleset *rs, const struct vg_rules_store *store,
                            const char *member, char *errstr, size_t errstr_size)
{
    size_t limit = group_limit(rs, member);
    struct vg_rules_group g;
    struct vg_rules_grouped gp;
    vg_err_t err;

    memset(&g, 0, sizeof(g));
    err = store->load_group(store->ctx, member, limit, &g, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    grouped_page(member, &g, limit, &gp);
    err = store->commit_group(store->ctx, member, &gp, errstr, errstr_size);
    vg_free(gp.body);
    return err;
}

vg_err_t vg_rules_timers_fire(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                              const struct vg_rules_store *store, const struct vg_rules_due *due,
                              size_t n, char *errstr, size_t errstr_size)
{
    /* Resource timers first: a page they add to a buffer due now goes out with it. */
    vg_err_t err = fire_resources(rs, env, store, due, n, errstr, errstr_size);

    for (size_t i = 0; i < n && err == VG_OK; i++) {
        if (!due[i].topic) {
            err = flush_group(rs, store, due[i].member, errstr, errstr_size);
        }
    }
    return err;
}
