/*
 * The reference model of the event log (refmodel.h): generating it,
 * applying it by the documented rules, producing it, checking Redis.
 */
#include "refmodel.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static const char *const batch_types[] = {"workflow", "job", "cronjob", "batch"};
static const struct vg_health_config health_config = {(char **)batch_types, 4};
static const char *const statuses[] = {"active", "error", "deleted"};
static const char *const runtimes[] = {"pending", "running", "succeeded", "failed"};

int vg_ref_env_start(struct vg_test_env *e, const char *name, int partitions,
                     const char *rules_path, const char *sinks, const char *kafka_tuning)
{
    char *rules = vg_test_read_file(rules_path, NULL);
    struct vg_test_env_opts o = {
        .partitions = partitions,
        .rules = rules,
        .sinks = sinks,
        .kafka_tuning = kafka_tuning,
    };
    int rc;

    if (!rules) {
        fprintf(stderr, "cannot read %s\n", rules_path);
        memset(e, 0, sizeof(*e));
        return -1;
    }
    rc = vg_test_env_start(e, name, &o);
    e->opts.rules = NULL; /* freed below; rules.yaml is written */
    free(rules);
    return rc;
}

/* A small deterministic PRNG (rand() is shared state; this is ours). */
uint32_t vg_ref_rand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) & 0xffffff;
}

static void add_trans(struct vg_ref_res *r, enum vg_field f, const char *from, const char *to,
                      int64_t at)
{
    struct vg_ref_trans *t = VG_ARRAY_PUSH(r->trans, r->n_trans, r->cap_trans);

    t->field = f;
    snprintf(t->from, sizeof(t->from), "%s", from);
    snprintf(t->to, sizeof(t->to), "%s", to);
    t->at_ms = at;
}

/*
 * The reference: what docs/state.md and docs/events.md say applying an
 * event does, written out again here (not calling vg_resource_apply).
 */
static void reference_apply(struct vg_ref_res *r, const struct vg_ref_event *ev)
{
    size_t n_before = r->n_trans;
    enum vg_health h;

    if (ev->status && strcmp(ev->status, r->status) != 0) {
        add_trans(r, VG_FIELD_STATUS, r->status, ev->status, ev->time_ms);
        snprintf(r->status, sizeof(r->status), "%s", ev->status);
        r->status_since = ev->time_ms;
    }
    if (ev->runtime && strcmp(ev->runtime, r->runtime) != 0) {
        add_trans(r, VG_FIELD_RUNTIME, r->runtime, ev->runtime, ev->time_ms);
        snprintf(r->runtime, sizeof(r->runtime), "%s", ev->runtime);
        r->runtime_since = ev->time_ms;
    }
    h = vg_health_compute(&health_config, r->type, r->status, r->runtime);
    if (h != r->health) {
        add_trans(r, VG_FIELD_HEALTH, vg_health_name(r->health), vg_health_name(h), ev->time_ms);
        r->health = h;
        r->health_since = ev->time_ms;
    }
    /* an event that changes nothing is not written: updated_at is the last change */
    if (r->n_trans > n_before) {
        r->updated_at = ev->time_ms;
    }
}

/* The static string equal to `value` (events must not point into a Resource that changes). */
static const char *intern(const char *const *set, size_t n, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(set[i], value) == 0) {
            return set[i];
        }
    }
    VG_ASSERT(!"value outside the set");
    return NULL;
}

/* An empty log of named Resources (refmodel.h). */
void vg_ref_log_alloc(struct vg_ref_log *log, size_t n_res, size_t n_evs, const char *prefix,
                      size_t workflow_every)
{
    memset(log, 0, sizeof(*log));
    log->n_res = n_res;
    log->res = vg_calloc(n_res ? n_res : 1, sizeof(*log->res));
    log->evs = vg_calloc(n_evs ? n_evs : 1, sizeof(*log->evs));
    for (size_t i = 0; i < n_res; i++) {
        struct vg_ref_res *r = &log->res[i];
        char *id;

        snprintf(r->type, sizeof(r->type), "%s", i % workflow_every == 0 ? "workflow" : "service");
        snprintf(r->name, sizeof(r->name), "%s-%02zu", prefix, i);
        id = vg_resource_id(r->type, "v1", r->name, "ws");
        snprintf(r->id, sizeof(r->id), "%s", id);
        free(id);
    }
}

void vg_ref_log_append(struct vg_ref_log *log, const struct vg_ref_event *ev)
{
    log->evs[log->n_evs++] = *ev;
    reference_apply(&log->res[ev->res], ev);
}

/*
 * `n_evs` events over `n_res` Resources (services and workflows), each a
 * random walk: mostly the same values again (no transition), sometimes a
 * new status and/or runtime. Times never decrease.
 */
void vg_ref_log_make(struct vg_ref_log *log, size_t n_res, size_t n_evs, unsigned seed)
{
    vg_ref_log_alloc(log, n_res, n_evs, "res", 3);
    log->seed = seed;
    for (size_t i = 0; i < n_evs; i++) {
        struct vg_ref_event ev = {0};
        struct vg_ref_res *r;
        uint32_t roll;

        ev.res = (int)(vg_ref_rand(&seed) % n_res);
        r = &log->res[ev.res];
        /* Eight events share each second: a replayed message is then often not
         * older than the state, so only the applied-offset rule keeps it out. */
        ev.time_ms = VG_REF_T0 + (int64_t)(i / 8) * 1000;
        roll = vg_ref_rand(&seed) % 100;
        /* first event of a Resource: both values; then mostly repeats */
        if (r->updated_at == 0 || roll < 15) {
            ev.status = statuses[vg_ref_rand(&seed) % 3];
        } else if (roll < 60) {
            ev.status = intern(statuses, 3, r->status);
        }
        roll = vg_ref_rand(&seed) % 100;
        if (r->updated_at == 0 || roll < 25) {
            ev.runtime = runtimes[vg_ref_rand(&seed) % 4];
        } else if (roll < 60 || !ev.status) {
            ev.runtime = r->runtime[0] ? intern(runtimes, 4, r->runtime) : "pending";
        }
        vg_ref_log_append(log, &ev);
    }
}

void vg_ref_log_make_runtimes(struct vg_ref_log *log, const char *prefix, size_t n_res,
                              size_t n_evs, unsigned seed, unsigned stuck_pct)
{
    vg_ref_log_alloc(log, n_res, n_evs, prefix, 2);
    for (size_t i = 0; i < n_evs; i++) {
        struct vg_ref_event ev = {0};
        const struct vg_ref_res *r;
        uint32_t roll;

        ev.res = (int)(vg_ref_rand(&seed) % n_res);
        r = &log->res[ev.res];
        ev.time_ms = VG_REF_T0 + (int64_t)i;
        roll = vg_ref_rand(&seed) % 100;
        if (r->updated_at == 0 || roll < 10) {
            ev.status = roll % 4 == 0 ? "error" : "active";
        }
        roll = vg_ref_rand(&seed) % 100;
        if (r->updated_at == 0) {
            ev.runtime = "pending";
        } else if (strcmp(r->runtime, "pending") == 0 && roll < stuck_pct) {
            ev.runtime = "pending"; /* stuck: the same value again */
        } else if (roll < 70) {
            ev.runtime = runtimes[vg_ref_rand(&seed) % 4];
        } else if (!ev.status) {
            ev.runtime = intern(runtimes, 4, r->runtime); /* a repeat: no transition */
        }
        vg_ref_log_append(log, &ev);
    }
}

void vg_ref_log_fini(struct vg_ref_log *log)
{
    for (size_t i = 0; i < log->n_res; i++) {
        free(log->res[i].trans);
    }
    free(log->res);
    free(log->evs);
    memset(log, 0, sizeof(*log));
}

char *vg_ref_event_json(const struct vg_ref_log *log, const struct vg_ref_event *ev)
{
    const struct vg_ref_res *r = &log->res[ev->res];
    char t[40];

    vg_time_format_rfc3339(ev->time_ms, t, sizeof(t));
    return vg_asprintf("{\"resource\":{\"type\":\"%s\",\"name\":\"%s\",\"workspace\":\"ws\","
                       "\"owner\":\"ops\"}%s%s%s%s%s%s,\"time\":\"%s\"}",
                       r->type, r->name, ev->status ? ",\"status\":\"" : "",
                       ev->status ? ev->status : "", ev->status ? "\"" : "",
                       ev->runtime ? ",\"runtime\":\"" : "", ev->runtime ? ev->runtime : "",
                       ev->runtime ? "\"" : "", t);
}

bool vg_ref_produce(struct vg_producer *p, const char *topic, const struct vg_ref_log *log,
                    size_t from, size_t to)
{
    char errstr[256];

    for (size_t i = from; i < to; i++) {
        const struct vg_ref_event *ev = &log->evs[i];
        const char *key = log->res[ev->res].id;
        char *json = vg_ref_event_json(log, ev);
        vg_err_t err = vg_producer_send(p, topic, -1, key, strlen(key), json, strlen(json), errstr,
                                        sizeof(errstr));

        free(json);
        if (err != VG_OK) {
            fprintf(stderr, "produce: %s\n", errstr);
            return false;
        }
    }
    if (vg_producer_flush(p, vg_test_timeout(30000), errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "flush: %s\n", errstr);
        return false;
    }
    return true;
}

bool vg_ref_produce_env(struct vg_test_env *e, const struct vg_ref_log *log, size_t from, size_t to)
{
    if (!vg_ref_produce(e->producer, e->topic, log, from, to)) {
        return false;
    }
    e->produced += (long long)(to - from);
    return true;
}

/* Sum over partitions of (applied offset + 1): the messages Redis reflects. */
int64_t vg_ref_applied_total(struct vg_state *st, const char *topic, int partitions)
{
    char errstr[256];
    int64_t total = 0;

    for (int p = 0; p < partitions; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(st, topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return -1;
        }
        total += off + 1;
    }
    return total;
}

/*
 * Redis equals the reference: each Resource's state and since-times, and
 * its whole history, entry for entry (so no transition is missing and none
 * is there twice). Returns the number of mismatches, each printed.
 */
int vg_ref_check_redis(struct vg_state *st, const struct vg_ref_log *log)
{
    int bad = 0;
    char errstr[512];

    for (size_t i = 0; i < log->n_res; i++) {
        const struct vg_ref_res *r = &log->res[i];
        struct vg_resource *res = NULL;
        struct vg_history_entry *h = NULL;
        size_t n_h = 0;

        if (r->updated_at == 0) {
            continue; /* never had an event */
        }
        if (vg_state_get(st, r->id, &res, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "%s: %s\n", r->id, errstr);
            bad++;
            continue;
        }
        if (!res) {
            fprintf(stderr, "%s: missing in Redis\n", r->id);
            bad++;
            continue;
        }
        if (strcmp(res->status, r->status) != 0 || strcmp(res->runtime, r->runtime) != 0 ||
            res->health != r->health || res->status_since_ms != r->status_since ||
            res->runtime_since_ms != r->runtime_since || res->health_since_ms != r->health_since ||
            res->updated_at_ms != r->updated_at) {
            fprintf(stderr,
                    "%s: redis has %s/%s/%s since %lld/%lld/%lld updated %lld; reference "
                    "%s/%s/%s since %lld/%lld/%lld updated %lld\n",
                    r->id, res->status, res->runtime, vg_health_name(res->health),
                    (long long)res->status_since_ms, (long long)res->runtime_since_ms,
                    (long long)res->health_since_ms, (long long)res->updated_at_ms, r->status,
                    r->runtime, vg_health_name(r->health), (long long)r->status_since,
                    (long long)r->runtime_since, (long long)r->health_since,
                    (long long)r->updated_at);
            bad++;
        }
        vg_resource_destroy(res);
        if (vg_state_history(st, r->id, 0, &h, &n_h, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "%s: history: %s\n", r->id, errstr);
            bad++;
            continue;
        }
        if (n_h != r->n_trans) {
            fprintf(stderr, "%s: %zu history entries, reference has %zu transitions\n", r->id, n_h,
                    r->n_trans);
            bad++;
        }
        for (size_t k = 0; k < n_h && k < r->n_trans; k++) {
            const struct vg_ref_trans *t = &r->trans[k];

            if (!h[k].field || strcmp(h[k].field, vg_field_name(t->field)) != 0 ||
                strcmp(h[k].from, t->from) != 0 || strcmp(h[k].to, t->to) != 0 ||
                h[k].at_ms != t->at_ms) {
                fprintf(stderr,
                        "%s: history[%zu] is %s %s->%s at %lld, reference %s %s->%s at %lld\n",
                        r->id, k, h[k].field ? h[k].field : "(log)", h[k].from ? h[k].from : "",
                        h[k].to ? h[k].to : "", (long long)h[k].at_ms, vg_field_name(t->field),
                        t->from, t->to, (long long)t->at_ms);
                bad++;
                break;
            }
        }
        vg_history_free(h, n_h);
    }
    return bad;
}

struct applied_wait {
    struct vg_test_env *e;
    int64_t want;
};

static int64_t env_applied_total(struct vg_test_env *e)
{
    struct vg_state *st = vg_test_env_state(e);

    return st ? vg_ref_applied_total(st, e->topic, e->opts.partitions) : -1;
}

static bool applied_at_least(void *arg)
{
    struct applied_wait *w = arg;

    return env_applied_total(w->e) >= w->want;
}

bool vg_ref_wait_applied(struct vg_test_env *e, int64_t want, int timeout_ms)
{
    struct applied_wait w = {e, want};

    if (vg_test_wait_for(applied_at_least, &w, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "applied %lld of %lld\n", (long long)env_applied_total(e), (long long)want);
    vg_test_env_dump_logs(e);
    return false;
}

/* ---- pages ---- */

struct vg_map *vg_ref_expected_pages(const struct vg_ref_log *log)
{
    struct vg_map *m = vg_map_new();

    for (size_t i = 0; i < log->n_res; i++) {
        const struct vg_ref_res *r = &log->res[i];

        if (strcmp(r->type, "workflow") != 0) {
            continue;
        }
        for (size_t k = 0; k < r->n_trans; k++) {
            const struct vg_ref_trans *tr = &r->trans[k];
            const char *status = NULL;
            char at[40];
            char *key;

            if (tr->field != VG_FIELD_RUNTIME) {
                continue;
            }
            if (strcmp(tr->to, "failed") == 0) {
                status = "firing";
            } else if (strcmp(tr->from, "failed") == 0) {
                status = "resolved";
            } else {
                continue;
            }
            vg_time_format_rfc3339(tr->at_ms, at, sizeof(at));
            key = vg_asprintf("%s|%s|%s", r->id, status, at);
            vg_map_put(m, key, vg_calloc(1, sizeof(struct vg_ref_page)));
            free(key);
        }
    }
    return m;
}

void vg_ref_page_free(void *page)
{
    struct vg_ref_page *pg = page;

    if (pg) {
        free(pg->idem);
        free(pg);
    }
}

char *vg_ref_page_key(const struct vg_http_request *req)
{
    cJSON *doc = cJSON_ParseWithLength(req->body, req->body_len);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "resource");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(doc, "transition");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "id");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(tr, "at");
    char *key = NULL;

    if (cJSON_IsString(id) && cJSON_IsString(status) && cJSON_IsString(at)) {
        key = vg_asprintf("%s|%s|%s", id->valuestring, status->valuestring, at->valuestring);
    }
    cJSON_Delete(doc);
    return key;
}

void vg_ref_page_answered(struct vg_ref_page *page, const char *idem, int status)
{
    if (!page->idem && idem) {
        page->idem = vg_strdup(idem);
    }
    if (status >= 200 && status < 300) {
        page->delivered++;
    }
}
