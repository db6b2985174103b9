/*
 * The pipeline's clock work: the rules environment (wall clock, silences,
 * incidents firing elsewhere), the partitions this instance owns, and
 * firing durable timers. Runs on the consumer thread, after each batch and
 * when idle. What a due timer does is decided by rules/
 * (vg_rules_timers_fire, the same code `vigil test` runs); this file is
 * its storage in Redis: a round's fired Resource timers, their removal,
 * Resource state, incident records, pages and new timers go into one
 * MULTI/EXEC (vg_state_commit): a crash before it leaves the timers in
 * Redis, a crash after it leaves nothing to repeat. Each group buffer is
 * flushed in its own WATCH/MULTI/EXEC (vg_state_group_read/_commit).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "vigil/api.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/util.h"

#define TIMERS_EVERY_MS 100
#define TIMERS_MAX_PER_ROUND 256
#define SILENCES_EVERY_MS 1000
#define FIRING_EVERY_MS 5000

struct eng_timers {
    struct vg_state *st;
    struct eng_report *report;
    struct vg_map *owned; /* "topic/partition" -> struct vg_offset * (topic owned by the key) */
    struct vg_rules_env env;
    struct vg_silence *silences;
    size_t n_silences;
    int64_t silences_version;
    int64_t silences_checked_mono;
    struct vg_incident_record *firing;
    size_t n_firing;
    int64_t firing_checked_mono;
    int64_t last_run_mono;
    struct eng_fences fences; /* the pipeline's partition claims (claim NULL: none) */
};

struct owned_part {
    char *topic;
    int32_t partition;
};

static void owned_free(void *p)
{
    struct owned_part *o = p;

    vg_free(o->topic);
    vg_free(o);
}

struct eng_timers *eng_timers_new(struct vg_state *st, struct eng_report *report)
{
    struct eng_timers *t = vg_calloc(1, sizeof(*t));

    t->st = st;
    t->report = report;
    t->owned = vg_map_new();
    t->silences_version = -1;
    t->silences_checked_mono = -SILENCES_EVERY_MS;
    t->firing_checked_mono = -FIRING_EVERY_MS;
    return t;
}

void eng_timers_destroy(struct eng_timers *t)
{
    if (!t) {
        return;
    }
    vg_map_destroy(t->owned, owned_free);
    vg_silences_free(t->silences, t->n_silences);
    vg_incident_records_free(t->firing, t->n_firing);
    vg_free(t);
}

void eng_timers_set_fences(struct eng_timers *t, const struct eng_fences *f)
{
    t->fences = *f;
}

void eng_timers_assigned(struct eng_timers *t, const struct vg_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *key = vg_asprintf("%s/%d", parts[i].topic, (int)parts[i].partition);
        struct owned_part *o = vg_calloc(1, sizeof(*o));
        struct owned_part *old;

        o->topic = vg_strdup(parts[i].topic);
        o->partition = parts[i].partition;
        old = vg_map_put(t->owned, key, o);
        if (old) {
            owned_free(old);
        }
        vg_free(key);
    }
}

void eng_timers_revoked(struct eng_timers *t, const struct vg_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *key = vg_asprintf("%s/%d", parts[i].topic, (int)parts[i].partition);
        struct owned_part *o = vg_map_remove(t->owned, key);

        if (o) {
            owned_free(o);
        }
        vg_free(key);
    }
}

/*
 * Silences changed (added, expired early): wake the silenced incidents now
 * instead of at the silence's original end, so "page when the silence
 * ends" holds for `vigil silence expire` too.
 */
static void wake_silenced(struct eng_timers *t, int64_t now)
{
    struct vg_incident_record *v = NULL;
    size_t n = 0;
    char errstr[512];

    if (vg_state_incidents_list(t->st, now - VG_INCIDENT_RETENTION_MS, &v, &n, errstr,
                                sizeof(errstr)) != VG_OK) {
        VG_LOG_DEBUG("rules", "listing incidents to wake: %s", errstr);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct vg_timer tm = {0};

        if (!v[i].silenced || strcmp(v[i].state, "firing") != 0) {
            continue;
        }
        tm.topic = v[i].topic;
        tm.partition = v[i].partition;
        tm.member = vg_rules_timer_member('m', v[i].monitor, v[i].resource);
        tm.due_ms = now;
        /* the partitioned layout: the timer set is in its partition's scope */
        if ((v[i].topic &&
             vg_state_scope(t->st, v[i].topic, v[i].partition, errstr, sizeof(errstr)) != VG_OK) ||
            vg_state_timer_set(t->st, &tm, true, errstr, sizeof(errstr)) != VG_OK) {
            VG_LOG_DEBUG("rules", "waking incident %s: %s", v[i].id, errstr);
        }
        vg_free(tm.member);
    }
    vg_incident_records_free(v, n);
}

static void refresh(struct eng_timers *t, const struct vg_ruleset *rs, int64_t now, bool force)
{
    int64_t mono = vg_mono_ms();
    char errstr[512];

    /*
     * The silence version is one GET: checked for every batch, so a silence
     * added before an event is produced always applies to it; idle rounds
     * check it at most once a second.
     */
    if (force || mono - t->silences_checked_mono >= SILENCES_EVERY_MS) {
        int64_t version = 0;

        t->silences_checked_mono = mono;
        if (vg_state_silences_version(t->st, &version, errstr, sizeof(errstr)) == VG_OK &&
            version != t->silences_version) {
            struct vg_silence *v = NULL;
            size_t n = 0;

            if (vg_state_silences_list(t->st, &v, &n, errstr, sizeof(errstr)) == VG_OK) {
                bool first = t->silences_version < 0;

                vg_silences_free(t->silences, t->n_silences);
                t->silences = v;
                t->n_silences = n;
                t->silences_version = version;
                VG_LOG_INFO("rules", "silences loaded: %zu", n);
                if (!first) {
                    wake_silenced(t, now);
                }
            }
        }
    }
    if (vg_rules_needs_firing(rs) && mono - t->firing_checked_mono >= FIRING_EVERY_MS) {
        struct vg_incident_record *v = NULL;
        size_t n = 0;

        t->firing_checked_mono = mono;
        if (vg_state_incidents_list(t->st, now - VG_INCIDENT_RETENTION_MS, &v, &n, errstr,
                                    sizeof(errstr)) == VG_OK) {
            size_t k = 0;

            for (size_t i = 0; i < n; i++) {
                if (strcmp(v[i].state, "firing") == 0) {
                    if (k != i) {
                        v[k] = v[i];
                        memset(&v[i], 0, sizeof(v[i]));
                    }
                    k++;
                } else {
                    vg_incident_record_fini(&v[i]);
                }
            }
            vg_incident_records_free(t->firing, t->n_firing);
            t->firing = v;
            t->n_firing = k;
        }
    }
}

static void set_env(struct eng_timers *t, int64_t now)
{
    t->env.now_ms = now;
    t->env.silences = t->silences;
    t->env.n_silences = t->n_silences;
    t->env.firing = t->firing;
    t->env.n_firing = t->n_firing;
}

const struct vg_rules_env *eng_timers_env(struct eng_timers *t, const struct vg_ruleset *rs)
{
    int64_t now = vg_now_ms();

    refresh(t, rs, now, true);
    set_env(t, now);
    return &t->env;
}

const struct vg_rules_env *eng_timers_env_now(struct eng_timers *t)
{
    set_env(t, vg_now_ms());
    return &t->env;
}

void eng_log_pages(const struct vg_pages *pages)
{
    for (size_t i = 0; i < pages->n; i++) {
        const struct vg_page *pg = &pages->items[i];

        /* DEBUG: at INFO a page has one line, the dispatcher's "page sent" when delivered */
        VG_LOG_DEBUG("rules", "page %s incident=%s monitor=%s resource=%s sink=%s%s%s", pg->status,
                     pg->incident.id, pg->incident.monitor, pg->resource.id, pg->sink,
                     pg->group ? " group=" : "", pg->group ? pg->group : "");
    }
}

/* ---- the Redis storage behind rules/' timer firing (struct vg_rules_store) ---- */

/* One round of vg_rules_timers_fire: the engine, and the group buffer being flushed. */
struct redis_round {
    struct eng_timers *t;
    struct vg_group_buffer buf;
};

static vg_err_t redis_load_resources(void *ctx, const char *const *ids, size_t n,
                                     struct vg_resource **res, char *errstr, size_t errstr_size)
{
    struct redis_round *rr = ctx;

    return vg_state_resolve_ids(rr->t->st, ids, n, res, errstr, errstr_size);
}

/* Add the claim of topic/partition to `f` (once per partition). */
static vg_err_t add_fence(struct eng_timers *t, struct vg_fence **f, size_t *n, size_t *cap,
                          const char *topic, int32_t partition, char *errstr, size_t errstr_size)
{
    int64_t epoch = 0;
    vg_err_t err;

    if (!topic) {
        return VG_OK; /* a group timer: global, flushed under its own WATCH */
    }
    for (size_t i = 0; i < *n; i++) {
        if ((*f)[i].partition == partition && strcmp((*f)[i].topic, topic) == 0) {
            return VG_OK;
        }
    }
    err = t->fences.claim(t->fences.arg, topic, partition, &epoch, errstr, errstr_size);
    if (err == VG_OK) {
        *VG_ARRAY_PUSH(*f, *n, *cap) =
            (struct vg_fence){.topic = topic, .partition = partition, .epoch = epoch};
    }
    return err;
}

/*
 * The claims a round's commit is built on: every partition whose timers or
 * incidents it writes (a zombie instance must not fire what the partition's
 * new owner fires too). Caller frees *out.
 */
static vg_err_t round_fences(struct eng_timers *t, const struct vg_rules_out *out,
                             struct vg_fence **f, size_t *n, char *errstr, size_t errstr_size)
{
    size_t cap = 0;
    vg_err_t err = VG_OK;

    *f = NULL;
    *n = 0;
    if (!t->fences.claim) {
        return VG_OK;
    }
    for (size_t i = 0; err == VG_OK && i < out->timers.n; i++) {
        err = add_fence(t, f, n, &cap, out->timers.items[i].topic, out->timers.items[i].partition,
                        errstr, errstr_size);
    }
    for (size_t i = 0; err == VG_OK && i < out->records.n; i++) {
        err = add_fence(t, f, n, &cap, out->records.items[i].topic, out->records.items[i].partition,
                        errstr, errstr_size);
    }
    return err;
}

/* The round's one MULTI/EXEC: a crash before it leaves the timers due, after it nothing. */
static vg_err_t redis_commit(void *ctx, const struct vg_rules_fired *fx, char *errstr,
                             size_t errstr_size)
{
    struct redis_round *rr = ctx;
    struct eng_timers *t = rr->t;
    const struct vg_rules_out *out = fx->out;
    struct vg_fence *fences = NULL;
    size_t n_fences = 0;
    size_t lost = 0;
    vg_err_t err;
    struct vg_commit c = {
        .res = (struct vg_resource **)fx->res,
        .n_res = fx->n_res,
        .pages = out->pages.items,
        .n_pages = out->pages.n,
        .timers = out->timers.items,
        .n_timers = out->timers.n,
        .incidents = out->records.items,
        .n_incidents = out->records.n,
        .fence_lost = &lost,
    };

    err = round_fences(t, out, &fences, &n_fences, errstr, errstr_size);
    if (err == VG_OK) {
        c.fences = fences;
        c.n_fences = n_fences;
        err = vg_state_commit(t->st, &c, errstr, errstr_size);
    }
    if (err == VG_ERR_CONFLICT && lost < n_fences) {
        t->fences.lost(t->fences.arg, fences[lost].topic, fences[lost].partition, errstr);
    }
    vg_free(fences);
    if (err != VG_OK) {
        /* The cache may hold what Redis does not: reload on the next round. */
        vg_state_cache_clear(t->st);
        return err;
    }
    vg_metrics_add(t->report->metrics, VG_M_NOTIFICATIONS_QUEUED, NULL, (double)out->pages.n);
    eng_log_pages(&out->pages);
    eng_report_pages_queued(t->report, out->pages.n);
    /* incidents opened or ended by a timer reach the API's event stream too */
    vg_api_publish_incidents(t->report->api, out->records.items, out->records.n);
    return VG_OK;
}

static vg_err_t redis_load_group(void *ctx, const char *member, size_t limit,
                                 struct vg_rules_group *g, char *errstr, size_t errstr_size)
{
    struct redis_round *rr = ctx;
    vg_err_t err;

    vg_group_buffer_fini(&rr->buf);
    err = vg_state_group_read(rr->t->st, member, limit, &rr->buf, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    *g = (struct vg_rules_group){.pager = rr->buf.pager,
                                 .sink = rr->buf.sink,
                                 .labels = rr->buf.labels,
                                 .n_labels = rr->buf.n_labels,
                                 .bodies = (const char *const *)rr->buf.bodies,
                                 .n_bodies = rr->buf.n_bodies,
                                 .n_firing = rr->buf.n_firing,
                                 .n_ended = rr->buf.n_ended};
    return VG_OK;
}

/* Group buffers are global: vg_state_group_read's WATCH makes this safe across instances. */
static vg_err_t redis_commit_group(void *ctx, const char *member, const struct vg_rules_grouped *gp,
                                   char *errstr, size_t errstr_size)
{
    struct redis_round *rr = ctx;
    struct vg_group_page page = {
        .id = gp->id, .sink = gp->sink, .pager = gp->pager, .body = gp->body};
    bool done = false;
    vg_err_t err;

    if (!gp->body && gp->n_incidents > 0) {
        VG_LOG_WARN("rules", "group %s: unreadable pages, dropped", member);
    }
    err = vg_state_group_commit(rr->t->st, member, gp->body ? &page : NULL, &done, errstr,
                                errstr_size);
    vg_group_buffer_fini(&rr->buf);
    if (err == VG_OK && done && gp->body) {
        vg_metrics_add(rr->t->report->metrics, VG_M_NOTIFICATIONS_QUEUED, NULL, 1);
        eng_report_pages_queued(rr->t->report, 1);
        VG_LOG_DEBUG("rules", "page grouped id=%s group=%s incidents=%zu listed=%zu", gp->id,
                     member, gp->n_incidents, gp->n_listed);
    }
    return err;
}

/*
 * Fire one round of due timers (Resource timers, then group buffers) through rules/.
 * With the partitioned layout `due` are one partition's, fired in its scope,
 * or the group timers, fired in the global scope.
 */
static vg_err_t fire(struct eng_timers *t, const struct vg_ruleset *rs,
                     const struct vg_due_timer *due, size_t n, char *errstr, size_t errstr_size)
{
    struct redis_round rr = {.t = t};
    const struct vg_rules_store store = {.ctx = &rr,
                                         .load_resources = redis_load_resources,
                                         .commit = redis_commit,
                                         .load_group = redis_load_group,
                                         .commit_group = redis_commit_group};
    struct vg_rules_due *v = vg_calloc(n + 1, sizeof(*v));
    vg_err_t err;

    for (size_t i = 0; i < n; i++) {
        v[i] = (struct vg_rules_due){
            .topic = due[i].topic, .partition = due[i].partition, .member = due[i].member};
    }
    refresh(t, rs, vg_now_ms(), false);
    set_env(t, vg_now_ms());
    /* after refresh: its readers may go through other scopes. No scope: the
     * group timers, global (with the single layout, everything: a no-op) */
    err = vg_state_scope(t->st, due[0].scope_topic, due[0].scope_partition, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_rules_timers_fire(rs, &t->env, &store, v, n, errstr, errstr_size);
    }
    vg_group_buffer_fini(&rr.buf);
    vg_free(v);
    return err;
}

/* The partitions this instance owns (topics borrowed from t->owned). */
static struct vg_offset *owned_parts(const struct eng_timers *t, size_t *n_parts)
{
    struct vg_offset *parts = vg_calloc(vg_map_count(t->owned) + 1, sizeof(*parts));
    size_t iter = 0;
    const char *key;
    void *val;

    *n_parts = 0;
    while (vg_map_next(t->owned, &iter, &key, &val)) {
        const struct owned_part *o = val;

        parts[*n_parts].topic = o->topic;
        parts[*n_parts].partition = o->partition;
        (*n_parts)++;
    }
    return parts;
}

/* Whether two due timers are fired in one round: always with the single layout. */
static bool same_scope(const struct vg_due_timer *a, const struct vg_due_timer *b)
{
    if (!a->scope_topic || !b->scope_topic) {
        return a->scope_topic == b->scope_topic;
    }
    return a->scope_partition == b->scope_partition && strcmp(a->scope_topic, b->scope_topic) == 0;
}

vg_err_t eng_timers_run(struct eng_timers *t, const struct vg_ruleset *rs, bool force)
{
    int64_t mono = vg_mono_ms();
    struct vg_offset *parts;
    struct vg_due_timer *due = NULL;
    size_t n_due = 0;
    size_t n_parts = 0;
    char errstr[512];
    int64_t now;
    vg_err_t err;

    if (!force && mono - t->last_run_mono < TIMERS_EVERY_MS) {
        return VG_OK;
    }
    t->last_run_mono = mono;
    now = vg_now_ms();
    refresh(t, rs, now, false);
    parts = owned_parts(t, &n_parts);
    /*
     * Claim before reading: what another instance committed for a partition
     * before the claim is seen here, what it commits after is refused. The
     * pipeline's claims are reused (a round trip only after they were dropped).
     */
    err = VG_OK;
    for (size_t i = 0; t->fences.claim && err == VG_OK && i < n_parts; i++) {
        int64_t epoch;

        err = t->fences.claim(t->fences.arg, parts[i].topic, parts[i].partition, &epoch, errstr,
                              sizeof(errstr));
    }
    if (err == VG_OK) {
        err = vg_state_timers_due(t->st, parts, n_parts, true, now, TIMERS_MAX_PER_ROUND, &due,
                                  &n_due, errstr, sizeof(errstr));
    }
    vg_free(parts);
    if (err != VG_OK) {
        VG_LOG_DEBUG("rules", "reading timers: %s", errstr);
        return err;
    }
    /* partitioned layout: one round per partition, in its scope, then one for the group
     * timers in the global scope (due come grouped by scope) */
    for (size_t i = 0; err == VG_OK && i < n_due;) {
        size_t k = 1;

        while (i + k < n_due && same_scope(&due[i], &due[i + k])) {
            k++;
        }
        err = fire(t, rs, due + i, k, errstr, sizeof(errstr));
        if (err != VG_OK && err != VG_ERR_CONFLICT) { /* a conflict: the pipeline reports it */
            VG_LOG_WARN("rules", "firing timers failed (retried): %s", errstr);
        }
        i += k;
    }
    vg_due_timers_free(due, n_due);
    return err;
}
