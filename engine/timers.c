/*
 * The pipeline's clock work (issue 5): the rules environment (wall clock,
 * silences, incidents firing elsewhere), the partitions this instance
 * owns, and firing durable timers. Runs on the consumer thread, after each
 * batch and when idle. A fired Resource timer is re-evaluated by rules/
 * and its removal, the Resource state, incident records, pages and new
 * timers go into one MULTI/EXEC (vg_state_commit): a crash before it
 * leaves the timer in Redis, a crash after it leaves nothing to repeat.
 * Group buffers are flushed by state/ in their own WATCH/MULTI/EXEC.
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
    struct eng_stats *stats;
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
    struct vg_rules_out out;
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

struct eng_timers *eng_timers_new(struct vg_state *st, struct eng_stats *stats)
{
    struct eng_timers *t = vg_calloc(1, sizeof(*t));

    t->st = st;
    t->stats = stats;
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
    vg_rules_out_fini(&t->out);
    vg_free(t);
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
        if (vg_state_timer_set(t->st, &tm, true, errstr, sizeof(errstr)) != VG_OK) {
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

const struct vg_rules_env *eng_timers_env(struct eng_timers *t, const struct vg_ruleset *rs)
{
    int64_t now = vg_now_ms();

    refresh(t, rs, now, true);
    t->env.now_ms = now;
    t->env.silences = t->silences;
    t->env.n_silences = t->n_silences;
    t->env.firing = t->firing;
    t->env.n_firing = t->n_firing;
    return &t->env;
}

void eng_log_pages(const struct vg_pages *pages)
{
    for (size_t i = 0; i < pages->n; i++) {
        const struct vg_page *pg = &pages->items[i];

        VG_LOG_INFO("rules", "page %s incident=%s monitor=%s resource=%s sink=%s%s%s", pg->status,
                    pg->incident.id, pg->incident.monitor, pg->resource.id, pg->sink,
                    pg->group ? " group=" : "", pg->group ? pg->group : "");
    }
}

/* Fire the due timers of Resources. */
static vg_err_t fire_resources(struct eng_timers *t, const struct vg_ruleset *rs,
                               const struct vg_due_timer *due, size_t n, char *errstr,
                               size_t errstr_size)
{
    const struct vg_rules_env *env;
    char **ids = vg_calloc(n + 1, sizeof(*ids));
    size_t *which = vg_calloc(n + 1, sizeof(*which));
    struct vg_resource **res = vg_calloc(n + 1, sizeof(*res));
    struct vg_resource **dirty = vg_calloc(n + 1, sizeof(*dirty));
    struct vg_timers timers = {0};
    size_t n_dirty = 0;
    size_t n_ids = 0;
    struct vg_commit c;
    vg_err_t err;

    refresh(t, rs, vg_now_ms(), false);
    t->env.now_ms = vg_now_ms();
    t->env.silences = t->silences;
    t->env.n_silences = t->n_silences;
    t->env.firing = t->firing;
    t->env.n_firing = t->n_firing;
    env = &t->env;
    vg_rules_out_clear(&t->out);
    for (size_t i = 0; i < n; i++) {
        if (!due[i].topic) {
            continue;
        }
        /* Every fired member is removed first; a re-scheduled one is added back after. */
        vg_timers_add(&timers, due[i].topic, due[i].partition, due[i].member, 0, false);
        if (vg_rules_timer_resource(due[i].member, &ids[n_ids])) {
            which[n_ids++] = i;
        }
    }
    err = vg_state_resolve_ids(t->st, (const char *const *)ids, n_ids, res, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    for (size_t j = 0; j < n_ids; j++) {
        struct vg_resource *r = res[j];
        bool was_dirty;
        bool listed = false;

        if (!r) {
            continue; /* the Resource is gone: the timer is just removed */
        }
        was_dirty = r->dirty;
        vg_rules_fire(rs, env, r, due[which[j]].member, &t->out);
        for (size_t k = 0; k < n_dirty && !listed; k++) {
            listed = dirty[k] == r;
        }
        if (r->dirty && !was_dirty && !listed) {
            dirty[n_dirty++] = r;
        }
    }
    for (size_t i = 0; i < t->out.timers.n; i++) {
        const struct vg_timer *tm = &t->out.timers.items[i];

        vg_timers_add(&timers, tm->topic, tm->partition, tm->member, tm->due_ms, tm->nx);
    }
    c = (struct vg_commit){
        .res = dirty,
        .n_res = n_dirty,
        .pages = t->out.pages.items,
        .n_pages = t->out.pages.n,
        .timers = timers.items,
        .n_timers = timers.n,
        .incidents = t->out.records.items,
        .n_incidents = t->out.records.n,
    };
    err = vg_state_commit(t->st, &c, errstr, errstr_size);
    if (err == VG_OK) {
        atomic_fetch_add(&t->stats->pages, (long long)t->out.pages.n);
        eng_log_pages(&t->out.pages);
        /* incidents opened or ended by a timer reach the API's event stream too */
        vg_api_publish_incidents(t->stats->api, t->out.records.items, t->out.records.n);
    } else {
        /* The cache may hold what Redis does not: reload on the next round. */
        vg_state_cache_clear(t->st);
    }
out:
    for (size_t i = 0; i < n_ids; i++) {
        vg_free(ids[i]);
    }
    vg_free(ids);
    vg_free(which);
    vg_free(res);
    vg_free(dirty);
    vg_timers_fini(&timers);
    return err;
}

vg_err_t eng_timers_run(struct eng_timers *t, const struct vg_ruleset *rs, bool force)
{
    int64_t mono = vg_mono_ms();
    struct vg_offset *parts;
    struct vg_due_timer *due = NULL;
    size_t n_due = 0;
    size_t n_parts = 0;
    size_t iter = 0;
    const char *key;
    void *val;
    char errstr[512];
    int64_t now;
    vg_err_t err;

    if (!force && mono - t->last_run_mono < TIMERS_EVERY_MS) {
        return VG_OK;
    }
    t->last_run_mono = mono;
    now = vg_now_ms();
    refresh(t, rs, now, false);
    parts = vg_calloc(vg_map_count(t->owned) + 1, sizeof(*parts));
    while (vg_map_next(t->owned, &iter, &key, &val)) {
        const struct owned_part *o = val;

        parts[n_parts].topic = o->topic;
        parts[n_parts].partition = o->partition;
        n_parts++;
    }
    /* Group buffers are global: WATCH makes their flush safe with several instances. */
    err = vg_state_timers_due(t->st, parts, n_parts, true, now, TIMERS_MAX_PER_ROUND, &due, &n_due,
                              errstr, sizeof(errstr));
    vg_free(parts);
    if (err != VG_OK) {
        VG_LOG_DEBUG("rules", "reading timers: %s", errstr);
        return err;
    }
    if (n_due > 0) {
        bool any_resource = false;

        for (size_t i = 0; i < n_due; i++) {
            any_resource = any_resource || due[i].topic;
        }
        if (any_resource) {
            err = fire_resources(t, rs, due, n_due, errstr, sizeof(errstr));
            if (err != VG_OK) {
                VG_LOG_WARN("rules", "firing timers failed (retried): %s", errstr);
            }
        }
        for (size_t i = 0; i < n_due && err == VG_OK; i++) {
            bool flushed = false;
            char *page_id = NULL;
            size_t n_inc = 0;

            if (due[i].topic) {
                continue;
            }
            err = vg_state_group_flush(t->st, due[i].member, &flushed, &page_id, &n_inc, errstr,
                                       sizeof(errstr));
            if (err != VG_OK) {
                VG_LOG_WARN("rules", "flushing group %s failed (retried): %s", due[i].member,
                            errstr);
            } else if (flushed) {
                atomic_fetch_add(&t->stats->pages, 1);
                VG_LOG_INFO("rules", "page grouped id=%s group=%s incidents=%zu", page_id,
                            due[i].member, n_inc);
            }
            vg_free(page_id);
        }
    }
    vg_due_timers_free(due, n_due);
    return err;
}
