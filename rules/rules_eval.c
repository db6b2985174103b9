/*
 * Evaluation: transitions of one Resource in, incidents opened or closed
 * inside the Resource's state, pages out. Pure: no I/O, no clock, no
 * logging per event; the same transitions at the same Kafka position
 * always yield the same incident ids and pages (replay-safe).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

static void copy_value(char dst[VG_VALUE_MAX], const char *src)
{
    snprintf(dst, VG_VALUE_MAX, "%s", src ? src : "");
}

static char *dup_or_empty(const char *s)
{
    return vg_strdup(s ? s : "");
}

/*
 * The incident id: a fingerprint of the monitor, the Resource and the
 * Kafka position of the triggering event. A replay of the same message
 * yields the same id, so sinks can deduplicate on "<id>-<seq>".
 */
static void incident_id(char out[17], const struct rules_monitor *m, const struct vg_resource *res,
                        const struct vg_transition *t)
{
    char partition[16];
    char offset[24];
    const char *topic = "";
    const char *parts[5];

    partition[0] = '\0';
    offset[0] = '\0';
    if (t->ev) {
        topic = t->ev->pos.topic ? t->ev->pos.topic : "";
        snprintf(partition, sizeof(partition), "%" PRId32, t->ev->pos.partition);
        snprintf(offset, sizeof(offset), "%" PRId64, t->ev->pos.offset);
    }
    parts[0] = m->name;
    parts[1] = res->id;
    parts[2] = topic;
    parts[3] = partition;
    parts[4] = offset;
    vg_fingerprint(out, parts, VG_ARRAY_LEN(parts));
}

static void fill_page(struct vg_page *pg, const struct vg_open_incident *inc,
                      const struct rules_pager *pager, const char *sink, const char *status,
                      const char *summary, const struct vg_resource *res,
                      const struct vg_transition *t)
{
    pg->id = vg_asprintf("%s-%d", inc->id, inc->seq);
    pg->sink = vg_strdup(sink);
    pg->pager = vg_strdup(pager->name);
    pg->status = vg_strdup(status);
    pg->incident.id = vg_strdup(inc->id);
    pg->incident.monitor = vg_strdup(inc->monitor);
    pg->incident.severity = vg_strdup(inc->severity);
    pg->incident.summary = vg_strdup(summary);
    pg->incident.started_at_ms = inc->started_at_ms;
    pg->incident.resolved_at_ms = strcmp(status, "resolved") == 0 ? t->at_ms : 0;
    pg->resource.id = dup_or_empty(res->id);
    pg->resource.type = dup_or_empty(res->type);
    pg->resource.name = dup_or_empty(res->name);
    pg->resource.workspace = dup_or_empty(res->workspace);
    pg->resource.version = dup_or_empty(res->version);
    pg->resource.owner = dup_or_empty(res->owner);
    copy_value(pg->resource.status, res->status);
    copy_value(pg->resource.runtime, res->runtime);
    copy_value(pg->resource.health, vg_health_name(res->health));
    copy_value(pg->transition.field, vg_field_name(t->field));
    copy_value(pg->transition.from, t->from);
    copy_value(pg->transition.to, t->to);
    pg->transition.at_ms = t->at_ms;
}

/*
 * Route one notification of `inc`: pagers in load order, the first match
 * wins unless it says `continue`; a sink named by several matching pagers
 * receives the page once (from the first of them). Returns the pages appended.
 */
static size_t route(const struct vg_ruleset *rs, const struct rules_monitor *m,
                    const struct vg_open_incident *inc, const char *status, struct vg_resource *res,
                    const struct vg_transition *t, struct vg_pages *out)
{
    struct rules_subject subj = {.res = res, .monitor = inc->monitor, .severity = inc->severity};
    struct rules_tpl_ctx ctx = {.monitor = inc->monitor,
                                .severity = inc->severity,
                                .incident_id = inc->id,
                                .res = res,
                                .t = t};
    size_t first = out->n;
    char *summary = NULL;

    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *pager = rs->pagers[i];

        if (!rules_match_holds(&pager->match, &subj)) {
            continue;
        }
        for (size_t j = 0; j < pager->n_sinks; j++) {
            const char *sink = pager->sinks[j].name;
            bool seen = false;

            for (size_t k = first; k < out->n && !seen; k++) {
                seen = strcmp(out->items[k].sink, sink) == 0;
            }
            if (seen) {
                continue;
            }
            if (!summary) {
                summary = rules_tpl_render(&m->summary, &ctx);
            }
            fill_page(vg_pages_push(out), inc, pager, sink, status, summary, res, t);
        }
        if (!pager->cont) {
            break;
        }
    }
    vg_free(summary);
    return out->n - first;
}

static bool cond_holds(const struct rules_cond *c, const struct vg_transition *t)
{
    return rules_valueset_has(&c->from, t->from) && rules_valueset_has(&c->to, t->to);
}

/* The incident's condition no longer holds: the field left the `to` set, or went back to `from`. */
static bool cond_resolved(const struct rules_cond *c, const struct vg_transition *t)
{
    if (c->to.given) {
        return !rules_valueset_has(&c->to, t->to);
    }
    return rules_valueset_has(&c->from, t->to);
}

static size_t eval_one(const struct vg_ruleset *rs, const struct rules_monitor *m,
                       struct vg_resource *res, const struct vg_transition *t, struct vg_pages *out)
{
    struct vg_open_incident *inc = vg_resource_find_incident(res, m->name);
    struct rules_subject subj = {.res = res};
    char id[17];
    size_t n;

    if (inc) {
        if (!cond_resolved(&m->cond, t)) {
            return 0; /* still firing: one page per incident, not per event */
        }
        inc->seq++;
        n = route(rs, m, inc, "resolved", res, t, out);
        vg_resource_remove_incident(res, m->name);
        res->dirty = true;
        return n;
    }
    if (!cond_holds(&m->cond, t) || !rules_match_holds(&m->match, &subj)) {
        return 0;
    }
    incident_id(id, m, res, t);
    inc = vg_resource_add_incident(res, m->name, id, m->severity, t->at_ms);
    inc->seq = 1;
    res->dirty = true;
    return route(rs, m, inc, "firing", res, t, out);
}

size_t vg_rules_eval(const struct vg_ruleset *rs, struct vg_resource *res,
                     const struct vg_transition *trans, size_t n, struct vg_pages *out)
{
    size_t pages = 0;

    for (size_t i = 0; i < n; i++) {
        const struct vg_transition *t = &trans[i];
        size_t f = (size_t)t->field;

        VG_ASSERT(t->res == res);
        VG_ASSERT(f < RULES_N_FIELDS);
        for (size_t j = 0; j < rs->n_by_field[f]; j++) {
            pages += eval_one(rs, rs->by_field[f][j], res, t, out);
        }
    }
    return pages;
}
