/*
 * struct vg_rules_mem: what `vigil run` keeps in Redis for rules (state/:
 * Resources, timer sorted sets, group buffers, incident records, the
 * outbox), kept in memory with the same semantics, and a fake clock. It
 * is the storage behind rules_timers.c for `vigil test` and the unit
 * tests, so they fire timers and flush groups exactly as the daemon does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* One group buffer, P:grp:<member>: the latest body per incident. */
struct vg_rules_mem_group {
    char *member; /* "<pager>|<sink>|<group>" */
    char *pager;
    char *sink;
    struct vg_label *labels;
    size_t n_labels;
    char **incidents; /* incident ids */
    char **bodies;    /* bodies[i]: the latest single-form body of incidents[i] */
    size_t n, cap;
};

static void group_fini(struct vg_rules_mem_group *g)
{
    vg_free(g->member);
    vg_free(g->pager);
    vg_free(g->sink);
    vg_labels_free(g->labels, g->n_labels);
    for (size_t i = 0; i < g->n; i++) {
        vg_free(g->incidents[i]);
        vg_free(g->bodies[i]);
    }
    vg_free(g->incidents);
    vg_free(g->bodies);
}

static void free_resource(void *p)
{
    vg_resource_destroy(p);
}

void vg_rules_mem_fini(struct vg_rules_mem *m)
{
    vg_map_destroy(m->res, free_resource);
    vg_timers_fini(&m->timers);
    vg_incident_records_fini(&m->records);
    vg_pages_fini(&m->pages);
    for (size_t i = 0; i < m->n_sent; i++) {
        vg_page_fini(&m->sent[i].pg);
        vg_free(m->sent[i].group_body);
    }
    vg_free(m->sent);
    for (size_t i = 0; i < m->n_groups; i++) {
        group_fini(&m->groups[i]);
    }
    vg_free(m->groups);
    memset(m, 0, sizeof(*m));
}

struct vg_resource *vg_rules_mem_resource(const struct vg_rules_mem *m, const char *id)
{
    return m->res ? vg_map_get(m->res, id) : NULL;
}

void vg_rules_mem_put_resource(struct vg_rules_mem *m, struct vg_resource *res)
{
    struct vg_resource *old;

    if (!m->res) {
        m->res = vg_map_new();
    }
    old = vg_map_put(m->res, res->id, res);
    if (old && old != res) {
        vg_resource_destroy(old);
    }
}

struct vg_rules_env vg_rules_mem_env(const struct vg_rules_mem *m)
{
    struct vg_rules_env env = {.now_ms = m->now_ms,
                               .silences = m->silences,
                               .n_silences = m->n_silences,
                               .firing = m->firing ? m->firing : m->records.items,
                               .n_firing = m->firing ? m->n_firing : m->records.n};
    return env;
}

/* ---- the timer sorted sets ------------------------------------------------------ */

static bool same_set(const struct vg_timer *a, const struct vg_timer *b)
{
    if (!a->topic || !b->topic) {
        return !a->topic && !b->topic;
    }
    return strcmp(a->topic, b->topic) == 0 && a->partition == b->partition;
}

static struct vg_timer *find_timer(struct vg_rules_mem *m, const struct vg_timer *t)
{
    for (size_t i = 0; i < m->timers.n; i++) {
        struct vg_timer *c = &m->timers.items[i];

        if (same_set(c, t) && strcmp(c->member, t->member) == 0) {
            return c;
        }
    }
    return NULL;
}

static void remove_timer(struct vg_rules_mem *m, struct vg_timer *t)
{
    size_t i = (size_t)(t - m->timers.items);

    vg_free(t->topic);
    vg_free(t->member);
    memmove(t, t + 1, (m->timers.n - i - 1) * sizeof(*t));
    m->timers.n--;
}

void vg_rules_mem_set_timer(struct vg_rules_mem *m, const struct vg_timer *t)
{
    struct vg_timer *c = find_timer(m, t);

    if (t->due_ms == 0) {
        if (c) {
            remove_timer(m, c);
        }
    } else if (!c) {
        vg_timers_add(&m->timers, t->topic, t->partition, t->member, t->due_ms, false);
    } else if (!t->nx) {
        c->due_ms = t->due_ms;
    }
}

/* ---- group buffers and the outbox ------------------------------------------------ */

static struct vg_rules_mem_group *find_group(struct vg_rules_mem *m, const char *member)
{
    for (size_t i = 0; i < m->n_groups; i++) {
        if (strcmp(m->groups[i].member, member) == 0) {
            return &m->groups[i];
        }
    }
    return NULL;
}

static void remove_group(struct vg_rules_mem *m, struct vg_rules_mem_group *g)
{
    size_t i = (size_t)(g - m->groups);

    group_fini(g);
    memmove(g, g + 1, (m->n_groups - i - 1) * sizeof(*g));
    m->n_groups--;
}

/* HSET P:grp:<member> <incident id> <body> ... plus the group timer (NX: the first page's). */
static void buffer_page(struct vg_rules_mem *m, const struct vg_page *pg)
{
    char *member = vg_asprintf("%s|%s|%s", pg->pager, pg->sink, pg->group);
    struct vg_rules_mem_group *g = find_group(m, member);
    struct vg_timer t = {.member = member, .due_ms = pg->at_ms + pg->group_wait_ms, .nx = true};
    size_t i;

    if (!g) {
        g = VG_ARRAY_PUSH(m->groups, m->n_groups, m->cap_groups);
        memset(g, 0, sizeof(*g));
        g->member = vg_strdup(member);
        g->pager = vg_strdup(pg->pager);
        g->sink = vg_strdup(pg->sink);
        g->labels = vg_labels_copy(pg->group_labels, pg->n_group_labels);
        g->n_labels = pg->n_group_labels;
    }
    for (i = 0; i < g->n && strcmp(g->incidents[i], pg->incident.id) != 0; i++) {
    }
    if (i == g->n) {
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 4;
            g->incidents = vg_realloc(g->incidents, g->cap * sizeof(*g->incidents));
            g->bodies = vg_realloc(g->bodies, g->cap * sizeof(*g->bodies));
        }
        g->incidents[g->n] = vg_strdup(pg->incident.id);
        g->bodies[g->n++] = vg_page_to_json(pg);
    } else {
        vg_free(g->bodies[i]);
        g->bodies[i] = vg_page_to_json(pg);
    }
    vg_rules_mem_set_timer(m, &t);
    vg_free(member);
}

static struct vg_rules_sent *push_sent(struct vg_rules_mem *m)
{
    struct vg_rules_sent *s = VG_ARRAY_PUSH(m->sent, m->n_sent, m->cap_sent);

    memset(s, 0, sizeof(*s));
    s->at_ms = m->now_ms;
    return s;
}

void vg_rules_mem_apply(struct vg_rules_mem *m, const struct vg_rules_out *out)
{
    for (size_t i = 0; i < out->pages.n; i++) {
        const struct vg_page *pg = &out->pages.items[i];

        vg_page_copy(vg_pages_push(&m->pages), pg);
        if (pg->group) {
            buffer_page(m, pg);
        } else {
            vg_page_copy(&push_sent(m)->pg, pg);
        }
    }
    for (size_t i = 0; i < out->records.n; i++) {
        vg_incident_records_put(&m->records, &out->records.items[i]);
    }
    for (size_t i = 0; i < out->timers.n; i++) {
        vg_rules_mem_set_timer(m, &out->timers.items[i]);
    }
}

/* ---- the storage interface ------------------------------------------------------- */

static vg_err_t mem_load_resources(void *ctx, const char *const *ids, size_t n,
                                   struct vg_resource **res, char *errstr, size_t errstr_size)
{
    const struct vg_rules_mem *m = ctx;

    (void)errstr;
    (void)errstr_size;
    for (size_t i = 0; i < n; i++) {
        res[i] = vg_rules_mem_resource(m, ids[i]);
    }
    return VG_OK;
}

static vg_err_t mem_commit(void *ctx, const struct vg_rules_fired *fx, char *errstr,
                           size_t errstr_size)
{
    struct vg_rules_mem *m = ctx;

    (void)errstr;
    (void)errstr_size;
    vg_rules_mem_apply(m, fx->out);
    for (size_t i = 0; i < fx->n_res; i++) {
        fx->res[i]->dirty = false;
    }
    return VG_OK;
}

/* Every body of the buffer: rules/ chooses the `limit` it lists. */
static vg_err_t mem_load_group(void *ctx, const char *member, size_t limit,
                               struct vg_rules_group *out, char *errstr, size_t errstr_size)
{
    struct vg_rules_mem *m = ctx;
    const struct vg_rules_mem_group *g = find_group(m, member);

    (void)limit;
    (void)errstr;
    (void)errstr_size;
    memset(out, 0, sizeof(*out));
    if (g) {
        *out = (struct vg_rules_group){.pager = g->pager,
                                       .sink = g->sink,
                                       .labels = g->labels,
                                       .n_labels = g->n_labels,
                                       .bodies = (const char *const *)g->bodies,
                                       .n_bodies = g->n};
    }
    return VG_OK;
}

static vg_err_t mem_commit_group(void *ctx, const char *member, const struct vg_rules_grouped *gp,
                                 char *errstr, size_t errstr_size)
{
    struct vg_rules_mem *m = ctx;
    struct vg_rules_mem_group *g = find_group(m, member);
    struct vg_timer t = {.member = (char *)member};
    struct vg_timer *c = find_timer(m, &t);

    (void)errstr;
    (void)errstr_size;
    if (gp->body) {
        struct vg_rules_sent *s = push_sent(m);

        s->pg.id = vg_strdup(gp->id);
        s->pg.pager = vg_strdup(gp->pager);
        s->pg.sink = vg_strdup(gp->sink);
        s->group_body = vg_strdup(gp->body);
        s->n_incidents = gp->n_incidents;
    }
    if (g) {
        remove_group(m, g);
    }
    if (c) {
        remove_timer(m, c);
    }
    return VG_OK;
}

/* ---- the clock ------------------------------------------------------------------- */

/* The earliest due time at or before `until`; false when none. */
static bool next_due(const struct vg_rules_mem *m, int64_t until, int64_t *at)
{
    bool any = false;

    for (size_t i = 0; i < m->timers.n; i++) {
        int64_t d = m->timers.items[i].due_ms;

        if (d <= until && (!any || d < *at)) {
            *at = d;
            any = true;
        }
    }
    return any;
}

static int cmp_timer(const void *a, const void *b)
{
    const struct vg_timer *x = a;
    const struct vg_timer *y = b;

    if (x->due_ms != y->due_ms) {
        return x->due_ms < y->due_ms ? -1 : 1;
    }
    return strcmp(x->member, y->member); /* a sorted set's order among equal scores */
}

/* The timers due at the clock, in ZRANGEBYSCORE order (copies: firing changes the sets). */
static void due_now(const struct vg_rules_mem *m, struct vg_timers *due)
{
    for (size_t i = 0; i < m->timers.n; i++) {
        const struct vg_timer *t = &m->timers.items[i];

        if (t->due_ms <= m->now_ms) {
            vg_timers_add(due, t->topic, t->partition, t->member, t->due_ms, false);
        }
    }
    qsort(due->items, due->n, sizeof(*due->items), cmp_timer);
}

static vg_err_t fire_round(struct vg_rules_mem *m, const struct vg_ruleset *rs, char *errstr,
                           size_t errstr_size)
{
    const struct vg_rules_store store = {.ctx = m,
                                         .load_resources = mem_load_resources,
                                         .commit = mem_commit,
                                         .load_group = mem_load_group,
                                         .commit_group = mem_commit_group};
    struct vg_timers due = {0};
    struct vg_rules_due *v;
    struct vg_rules_env env = vg_rules_mem_env(m);
    vg_err_t err;

    due_now(m, &due);
    v = vg_calloc(due.n + 1, sizeof(*v));
    for (size_t i = 0; i < due.n; i++) {
        v[i] = (struct vg_rules_due){.topic = due.items[i].topic,
                                     .partition = due.items[i].partition,
                                     .member = due.items[i].member};
    }
    err = vg_rules_timers_fire(rs, &env, &store, v, due.n, errstr, errstr_size);
    vg_free(v);
    vg_timers_fini(&due);
    return err;
}

vg_err_t vg_rules_mem_run_until(struct vg_rules_mem *m, const struct vg_ruleset *rs, int64_t until,
                                size_t max_rounds, char *errstr, size_t errstr_size)
{
    int64_t at = 0;

    for (size_t rounds = 0; next_due(m, until, &at); rounds++) {
        vg_err_t err;

        if (rounds >= max_rounds) {
            snprintf(errstr, errstr_size, "more than %zu timer rounds: a timer loop", max_rounds);
            return VG_ERR_INVALID;
        }
        if (at > m->now_ms) {
            m->now_ms = at;
        }
        err = fire_round(m, rs, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    if (until > m->now_ms) {
        m->now_ms = until;
    }
    return VG_OK;
}
