/*
 * Evaluation: one applied event (or one fired timer) of one Resource in;
 * incidents opened, held, ended inside the Resource's state; pages, timer
 * changes and incident records out. Pure: no I/O, no clock (env->now_ms is
 * passed in), no logging per event. The same inputs at the same Kafka
 * position always yield the same incident ids and pages (replay-safe).
 *
 * Each (monitor, Resource) has at most one entry in res->incidents: its
 * phase (inc->state: pending, firing, or ended with a notification still
 * owed) and a private JSON blob (inc->data) with deadlines, flapping hits
 * and what each pager was told. Every evaluation reconciles all entries of
 * the Resource: deadlines that passed, the condition against the current
 * state, then what each routed pager should be told now (firing, repeat,
 * ended) given silences, inhibition and mute windows. The next deadline of
 * an entry is its one durable timer "m|<monitor>|<resource id>".
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"
#include "vigil/json.h"

enum phase { PH_PENDING = 0, PH_FIRING, PH_ENDED };
enum sent { SENT_NONE = 0, SENT_FIRING, SENT_ENDED };

/* A transition kept in an entry (the one that started it, or ended it). */
struct tr {
    bool set;
    int field;
    char from[VG_VALUE_MAX];
    char to[VG_VALUE_MAX];
    int64_t at;
    char reason[VG_REASON_MAX];
    char pod[VG_POD_NAME_MAX];
};

/* What one pager was told about the entry's incident. */
struct pstate {
    char *pager;
    int sent;
    int64_t last_ms;
};

/* The private state of one entry (inc->data). */
struct ent {
    int phase;
    char why[16];                 /* ended: resolved, stale, deleted */
    struct tr trig;               /* what started it */
    struct tr endt;               /* what ended it (or made the good state start) */
    int64_t since;                /* pending: watched since; firing: fired at (evaluation clock) */
    int64_t due;                  /* held: fire at */
    int64_t good;                 /* firing: the condition stopped holding at (resolve_after) */
    int64_t lev;                  /* last event on the Resource (stale_after, absence) */
    int64_t hits[RULES_MAX_HITS]; /* flapping: arrivals in `to` (evaluation clock) */
    size_t n_hits;
    int64_t lhit;
    int64_t ended; /* reported end: the event time of the ending change, else the clock */
    int64_t endn;  /* the evaluation clock at the end */
    bool sil, inh;
    struct pstate *ps;
    size_t n_ps;
    char *tk; /* the scheduled timer: topic ("" none), partition, due */
    int32_t tp;
    int64_t td;
    char sig[17]; /* fingerprint of the public record view last written */
};

/* One entry being evaluated. */
struct work {
    const struct rules_monitor *m;
    char id[17];
    int64_t started;
    int seq;
    bool existed;
    bool remove;
    bool opened_now;
    bool owes; /* ended: a notification is still owed (muted) */
    struct ent e;
    /* derived this pass */
    struct vg_label *labels;
    size_t n_labels;
};

struct pass {
    const struct vg_ruleset *rs;
    const struct vg_rules_env *env;
    struct vg_resource *res;
    const struct vg_event *ev; /* NULL for a timer */
    const struct vg_transition *trans;
    size_t n_trans;
    struct vg_rules_out *out;
    struct work *w;
    size_t n_w, cap_w;
    int64_t now;
};

/* ---- small helpers ------------------------------------------------------- */

/* snprintf(dst, size, "%s", src) without the formatting machinery (this runs per entry and event).
 */
static void copy_str(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size - 1);

    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void copy_value(char dst[VG_VALUE_MAX], const char *src)
{
    copy_str(dst, VG_VALUE_MAX, src ? src : "");
}

static char *dup_or_empty(const char *s)
{
    return vg_strdup(s ? s : "");
}

static const char *field_value(const struct vg_resource *res, int field)
{
    switch (field) {
    case VG_FIELD_STATUS:
        return res->status;
    case VG_FIELD_RUNTIME:
        return res->runtime;
    default:
        return vg_health_name(res->health);
    }
}

static void tr_from(struct tr *dst, const struct vg_transition *t)
{
    memset(dst, 0, sizeof(*dst));
    dst->set = true;
    dst->field = (int)t->field;
    copy_value(dst->from, t->from);
    copy_value(dst->to, t->to);
    dst->at = t->at_ms;
    copy_str(dst->reason, sizeof(dst->reason), t->reason);
    copy_str(dst->pod, sizeof(dst->pod), t->pod);
}

/* A struct vg_transition view of a stored one (res borrowed). */
static void tr_to(struct vg_transition *t, const struct tr *src, struct vg_resource *res)
{
    memset(t, 0, sizeof(*t));
    t->field = (enum vg_field)src->field;
    copy_value(t->from, src->from);
    copy_value(t->to, src->to);
    t->at_ms = src->at;
    copy_str(t->reason, sizeof(t->reason), src->reason);
    copy_str(t->pod, sizeof(t->pod), src->pod);
    t->res = res;
}

/*
 * The incident id: a fingerprint of the monitor, the Resource and the
 * Kafka position of the event that started the episode. A replay of the
 * same message yields the same id, so sinks can deduplicate on "<id>-<seq>".
 */
static void incident_id(char out[17], const struct rules_monitor *m, const struct vg_resource *res,
                        const struct vg_event *ev)
{
    char partition[16];
    char offset[24];
    const char *topic = "";
    const char *parts[5];

    partition[0] = '\0';
    offset[0] = '\0';
    if (ev) {
        topic = ev->pos.topic ? ev->pos.topic : "";
        snprintf(partition, sizeof(partition), "%" PRId32, ev->pos.partition);
        snprintf(offset, sizeof(offset), "%" PRId64, ev->pos.offset);
    }
    parts[0] = m->name;
    parts[1] = res->id;
    parts[2] = topic;
    parts[3] = partition;
    parts[4] = offset;
    vg_fingerprint(out, parts, VG_ARRAY_LEN(parts));
}

static int64_t min_due(int64_t a, int64_t b)
{
    if (a <= 0) {
        return b;
    }
    if (b <= 0) {
        return a;
    }
    return a < b ? a : b;
}

static const char *phase_name(const struct ent *e)
{
    switch (e->phase) {
    case PH_PENDING:
        return "pending";
    case PH_FIRING:
        return "firing";
    default:
        return e->why[0] ? e->why : "resolved";
    }
}

/* ---- entry state <-> JSON -------------------------------------------------- */

static void ent_fini(struct ent *e)
{
    for (size_t i = 0; i < e->n_ps; i++) {
        vg_free(e->ps[i].pager);
    }
    vg_free(e->ps);
    vg_free(e->tk);
    memset(e, 0, sizeof(*e));
}

/* A number of the state as int64 (0 when absent, not a number, or beyond what JSON's doubles
 * hold exactly: converting a double outside int64 is undefined behaviour). */
static int64_t jnum_of(const cJSON *it)
{
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= -9.0e15 && it->valuedouble <= 9.0e15)) {
        return 0;
    }
    return (int64_t)it->valuedouble;
}

static int64_t jnum(const cJSON *o, const char *k)
{
    return jnum_of(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(it) ? it->valuestring : "";
}

static void tr_load(struct tr *t, const cJSON *o)
{
    memset(t, 0, sizeof(*t));
    if (!cJSON_IsObject(o)) {
        return;
    }
    t->set = true;
    t->field = (int)jnum(o, "f");
    if (t->field < 0 || t->field >= RULES_N_FIELDS) {
        t->field = 0;
    }
    copy_value(t->from, jstr(o, "fr"));
    copy_value(t->to, jstr(o, "to"));
    t->at = jnum(o, "at");
    copy_str(t->reason, sizeof(t->reason), jstr(o, "rs"));
    copy_str(t->pod, sizeof(t->pod), jstr(o, "pd"));
}

static void ent_load(struct ent *e, const struct vg_open_incident *inc)
{
    cJSON *o = inc->data ? cJSON_Parse(inc->data) : NULL;
    const cJSON *arr;
    const cJSON *it;

    memset(e, 0, sizeof(*e));
    if (!inc->state || strcmp(inc->state, "firing") == 0) {
        e->phase = PH_FIRING;
    } else if (strcmp(inc->state, "pending") == 0) {
        e->phase = PH_PENDING;
    } else {
        e->phase = PH_ENDED;
        copy_str(e->why, sizeof(e->why), inc->state);
    }
    if (!o) {
        /* Written before timers existed (or unreadable): a firing incident whose pagers were told.
         */
        e->since = inc->started_at_ms;
        e->lev = inc->started_at_ms;
        return;
    }
    tr_load(&e->trig, cJSON_GetObjectItemCaseSensitive(o, "trig"));
    tr_load(&e->endt, cJSON_GetObjectItemCaseSensitive(o, "endt"));
    e->since = jnum(o, "since");
    e->due = jnum(o, "due");
    e->good = jnum(o, "good");
    e->lev = jnum(o, "lev");
    e->lhit = jnum(o, "lhit");
    e->ended = jnum(o, "ended");
    e->endn = jnum(o, "endn");
    e->sil = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sil"));
    e->inh = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "inh"));
    arr = cJSON_GetObjectItemCaseSensitive(o, "hits");
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsNumber(it) && e->n_hits < RULES_MAX_HITS) {
            e->hits[e->n_hits++] = jnum_of(it);
        }
    }
    arr = cJSON_GetObjectItemCaseSensitive(o, "ps");
    cJSON_ArrayForEach(it, arr)
    {
        struct pstate *p;

        if (!cJSON_IsObject(it) || !jstr(it, "p")[0]) {
            continue;
        }
        e->ps = vg_realloc(e->ps, (e->n_ps + 1) * sizeof(*e->ps));
        p = &e->ps[e->n_ps++];
        p->pager = vg_strdup(jstr(it, "p"));
        p->sent = (int)jnum(it, "s");
        p->last_ms = jnum(it, "l");
    }
    e->tk = vg_strdup(jstr(o, "tk"));
    e->tp = (int32_t)jnum(o, "tp");
    e->td = jnum(o, "td");
    copy_str(e->sig, sizeof(e->sig), jstr(o, "sig"));
    cJSON_Delete(o);
}

/* Decimal `v`, as "%" PRId64 would print it. */
static void put_i64(struct vg_buf *b, int64_t v)
{
    char digits[24];
    size_t i = sizeof(digits);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        digits[--i] = '-';
    }
    vg_buf_append(b, digits + i, sizeof(digits) - i);
}

static void put_num(struct vg_buf *b, const char *k, int64_t v)
{
    if (v != 0) {
        vg_buf_puts(b, ",\"");
        vg_buf_puts(b, k);
        vg_buf_puts(b, "\":");
        put_i64(b, v);
    }
}

static void put_tr(struct vg_buf *b, const char *k, const struct tr *t)
{
    if (!t->set) {
        return;
    }
    vg_buf_puts(b, ",\"");
    vg_buf_puts(b, k);
    vg_buf_puts(b, "\":{\"f\":");
    put_i64(b, t->field);
    vg_buf_puts(b, ",\"fr\":");
    vg_json_append_string(b, t->from);
    vg_buf_puts(b, ",\"to\":");
    vg_json_append_string(b, t->to);
    vg_buf_puts(b, ",\"at\":");
    put_i64(b, t->at);
    if (t->reason[0]) {
        vg_buf_puts(b, ",\"rs\":");
        vg_json_append_string(b, t->reason);
    }
    if (t->pod[0]) {
        vg_buf_puts(b, ",\"pd\":");
        vg_json_append_string(b, t->pod);
    }
    vg_buf_putc(b, '}');
}

static char *ent_json(const struct ent *e)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "{\"v\":1");
    put_tr(&b, "trig", &e->trig);
    put_tr(&b, "endt", &e->endt);
    put_num(&b, "since", e->since);
    put_num(&b, "due", e->due);
    put_num(&b, "good", e->good);
    put_num(&b, "lev", e->lev);
    put_num(&b, "lhit", e->lhit);
    put_num(&b, "ended", e->ended);
    put_num(&b, "endn", e->endn);
    if (e->sil) {
        vg_buf_puts(&b, ",\"sil\":true");
    }
    if (e->inh) {
        vg_buf_puts(&b, ",\"inh\":true");
    }
    if (e->n_hits) {
        vg_buf_puts(&b, ",\"hits\":[");
        for (size_t i = 0; i < e->n_hits; i++) {
            if (i) {
                vg_buf_putc(&b, ',');
            }
            put_i64(&b, e->hits[i]);
        }
        vg_buf_putc(&b, ']');
    }
    if (e->n_ps) {
        vg_buf_puts(&b, ",\"ps\":[");
        for (size_t i = 0; i < e->n_ps; i++) {
            vg_buf_puts(&b, i ? ",{\"p\":" : "{\"p\":");
            vg_json_append_string(&b, e->ps[i].pager);
            vg_buf_puts(&b, ",\"s\":");
            put_i64(&b, e->ps[i].sent);
            vg_buf_puts(&b, ",\"l\":");
            put_i64(&b, e->ps[i].last_ms);
            vg_buf_putc(&b, '}');
        }
        vg_buf_putc(&b, ']');
    }
    if (e->td) {
        vg_buf_puts(&b, ",\"tk\":");
        vg_json_append_string(&b, e->tk ? e->tk : "");
        vg_buf_puts(&b, ",\"tp\":");
        put_i64(&b, e->tp);
        vg_buf_puts(&b, ",\"td\":");
        put_i64(&b, e->td);
    }
    if (e->sig[0]) {
        vg_buf_puts(&b, ",\"sig\":");
        vg_json_append_string(&b, e->sig);
    }
    vg_buf_putc(&b, '}');
    return vg_buf_steal(&b);
}

/* ---- the work list ---------------------------------------------------------- */

/*
 * A zeroed entry at the end of the work list. Not VG_ARRAY_PUSH: that zeroes
 * eight entries (~10 KB) on the first push of every pass.
 */
static struct work *push_work(struct pass *ps)
{
    struct work *w;

    if (ps->n_w == ps->cap_w) {
        ps->cap_w = ps->cap_w ? 2 * ps->cap_w : 2;
        ps->w = vg_realloc(ps->w, ps->cap_w * sizeof(*ps->w));
    }
    w = &ps->w[ps->n_w++];
    memset(w, 0, sizeof(*w));
    return w;
}

static struct work *find_work(struct pass *ps, const struct rules_monitor *m)
{
    for (size_t i = 0; i < ps->n_w; i++) {
        if (ps->w[i].m == m) {
            return &ps->w[i];
        }
    }
    return NULL;
}

static void load_work(struct pass *ps)
{
    struct vg_resource *res = ps->res;

    for (size_t i = 0; i < res->n_incidents; i++) {
        const struct vg_open_incident *inc = &res->incidents[i];
        const struct rules_monitor *m = vg_map_get(ps->rs->monitor_names, inc->monitor);
        struct work *w;

        if (!m) {
            continue; /* a monitor no longer loaded: its entry is left alone */
        }
        w = push_work(ps);
        w->m = m;
        copy_str(w->id, sizeof(w->id), inc->id ? inc->id : "");
        w->started = inc->started_at_ms;
        w->seq = inc->seq;
        w->existed = true;
        ent_load(&w->e, inc);
    }
}

/* A new entry for `m` (replacing an ended one, whose owed notifications are dropped). */
static struct work *new_work(struct pass *ps, const struct rules_monitor *m, struct work *old)
{
    struct work *w = old;

    if (w) {
        bool existed = w->existed;
        char *tk = w->e.tk;
        int32_t tp = w->e.tp;
        int64_t td = w->e.td;

        w->e.tk = NULL;
        ent_fini(&w->e);
        vg_labels_free(w->labels, w->n_labels);
        memset(w, 0, sizeof(*w));
        w->existed = existed;
        /* keep the scheduled timer so it is moved or removed, not leaked */
        w->e.tk = tk;
        w->e.tp = tp;
        w->e.td = td;
    } else {
        w = push_work(ps);
    }
    w->m = m;
    w->opened_now = true;
    w->e.lev = ps->now;
    return w;
}

/* The transition of `field` in this event, or NULL. */
static const struct vg_transition *cur_tr(const struct pass *ps, int field)
{
    for (size_t i = 0; i < ps->n_trans; i++) {
        if ((int)ps->trans[i].field == field) {
            return &ps->trans[i];
        }
    }
    return NULL;
}

/* ---- conditions -------------------------------------------------------------- */

static bool transition_matches(const struct rules_cond *c, const struct vg_transition *t)
{
    return rules_valueset_has(&c->from, t->from) && rules_valueset_has(&c->to, t->to);
}

/* May `m` open on a deleted Resource? Only a status monitor that names "deleted" (or "*"). */
static bool opens_when_deleted(const struct rules_monitor *m)
{
    const struct rules_valueset *vs;

    if (m->cond.kind == RULES_ABSENCE || m->cond.field->field != VG_FIELD_STATUS) {
        return false;
    }
    vs = m->cond.kind == RULES_HELD ? &m->cond.is : &m->cond.to;
    return !vs->given || vs->any || rules_valueset_has(vs, "deleted");
}

static bool m_kind_keeps_since(const struct work *w)
{
    return w->m->cond.kind == RULES_HELD;
}

static void fire(struct pass *ps, struct work *w, int64_t started)
{
    w->e.phase = PH_FIRING;
    if (m_kind_keeps_since(w)) {
        /* held: {{duration}} counts from when the state began to be watched */
    } else {
        w->e.since = ps->now;
    }
    w->e.good = 0;
    w->e.lev = w->e.lev ? w->e.lev : ps->now;
    w->started = started;
}

static void end_entry(struct pass *ps, struct work *w, const char *why,
                      const struct vg_transition *t)
{
    w->e.phase = PH_ENDED;
    w->e.endn = ps->now;
    copy_str(w->e.why, sizeof(w->e.why), why);
    if (t) {
        tr_from(&w->e.endt, t);
        w->e.ended = t->at_ms;
    } else {
        if (!w->e.endt.set && w->e.trig.set) {
            w->e.endt = w->e.trig;
        }
        w->e.ended = ps->now;
    }
}

static bool res_deleted(const struct vg_resource *res)
{
    return strcmp(res->status, "deleted") == 0;
}

/* A transition of the monitor's field: start watching or fire. */
static void on_transition(struct pass *ps, const struct rules_monitor *m,
                          const struct vg_transition *t)
{
    struct work *w = find_work(ps, m);
    const struct rules_cond *c = &m->cond;
    bool fresh = !w || w->e.phase == PH_ENDED;

    if (res_deleted(ps->res) && !opens_when_deleted(m)) {
        return;
    }
    switch (c->kind) {
    case RULES_TRANSITION:
        if (!fresh || !transition_matches(c, t)) {
            return;
        }
        w = new_work(ps, m, w);
        tr_from(&w->e.trig, t);
        incident_id(w->id, m, ps->res, t->ev);
        fire(ps, w, t->at_ms);
        return;
    case RULES_HELD:
        if (!fresh || !rules_valueset_has(&c->is, t->to)) {
            return;
        }
        w = new_work(ps, m, w);
        w->e.phase = PH_PENDING;
        tr_from(&w->e.trig, t);
        incident_id(w->id, m, ps->res, t->ev);
        w->started = t->at_ms;
        w->e.since = ps->now;
        w->e.due = ps->now + c->for_ms;
        return;
    case RULES_FLAPPING:
        if (!rules_valueset_has(&c->to, t->to)) {
            return;
        }
        if (fresh) {
            w = new_work(ps, m, w);
            w->e.phase = PH_PENDING;
            w->e.since = ps->now;
        }
        if (w->e.n_hits == RULES_MAX_HITS) {
            memmove(w->e.hits, w->e.hits + 1, (RULES_MAX_HITS - 1) * sizeof(w->e.hits[0]));
            w->e.n_hits--;
        }
        w->e.hits[w->e.n_hits++] = ps->now;
        w->e.lhit = ps->now;
        if (w->e.phase == PH_PENDING) {
            size_t k = 0;

            for (size_t i = 0; i < w->e.n_hits; i++) {
                if (w->e.hits[i] > ps->now - c->within_ms) {
                    w->e.hits[k++] = w->e.hits[i];
                }
            }
            w->e.n_hits = k;
            if ((int)w->e.n_hits >= c->count) {
                tr_from(&w->e.trig, t);
                incident_id(w->id, m, ps->res, t->ev);
                fire(ps, w, t->at_ms);
            }
        }
        return;
    case RULES_ABSENCE:
        return;
    }
}

/* ---- which monitors an event concerns ------------------------------------------ */

#define MERGE_MAX 16 /* lists merged at once; more are folded */

/* Merge the lists `in[0..n)` (each in load order, disjoint) into `out`, in load order. */
static void merge_lists(const struct rules_mlist *const *in, size_t n, struct rules_mlist *out)
{
    size_t pos[MERGE_MAX];

    VG_ASSERT(n <= MERGE_MAX);
    memset(pos, 0, n * sizeof(pos[0]));
    for (;;) {
        size_t best = n;

        for (size_t i = 0; i < n; i++) {
            if (pos[i] < in[i]->n &&
                (best == n || in[i]->v[pos[i]]->index < in[best]->v[pos[best]]->index)) {
                best = i;
            }
        }
        if (best == n) {
            break;
        }
        *VG_ARRAY_PUSH(out->v, out->n, out->cap) = in[best]->v[pos[best]++];
    }
}

/*
 * The monitors whose match may hold on the Resource, in load order: the
 * index's buckets for the Resource's values, and the monitors it cannot
 * file. Linear: every monitor. A single list (the usual case: one bucket,
 * or only the monitors the index cannot file) is returned as it is, without
 * a copy; only lists merged from several go into `buf` (the caller frees
 * buf->v). Valid while the ruleset is.
 */
static const struct rules_mlist *match_candidates(const struct pass *ps, struct rules_mlist *view,
                                                  struct rules_mlist *buf)
{
    const struct rules_index *ix = ps->rs->idx;
    struct rules_subject subj = {
        .res = ps->res, .labels = ps->res->labels, .n_labels = ps->res->n_labels};
    const struct rules_mlist *lists[MERGE_MAX];
    struct rules_mlist acc = {0};
    size_t n = 0;

    if (ix->linear) {
        view->v = ps->rs->monitors;
        view->n = ps->rs->n_monitors;
        view->cap = 0;
        return view;
    }
    if (ix->always.n) {
        lists[n++] = &ix->always;
    }
    for (size_t i = 0; i < ix->n_keys; i++) {
        const struct rules_ikey *k = &ix->keys[i];
        const struct rules_mlist *l = vg_map_get(k->buckets, k->key->get(&subj, k->label));

        if (!l || l->n == 0) {
            continue;
        }
        if (n == MERGE_MAX) {
            /* many match keys: fold the lists so far into one and go on */
            struct rules_mlist tmp = {0};

            merge_lists(lists, n, &tmp);
            vg_free(acc.v);
            acc = tmp;
            lists[0] = &acc;
            n = 1;
        }
        lists[n++] = l;
    }
    if (n == 0) {
        *view = (struct rules_mlist){0};
        return view;
    }
    if (n == 1 && lists[0] != &acc) {
        return lists[0];
    }
    buf->n = 0;
    merge_lists(lists, n, buf);
    vg_free(acc.v);
    return buf;
}

/* A monitor that names exact types looks only at Resources of those types. */
static bool type_allows(const struct pass *ps, const struct rules_monitor *m)
{
    const struct rules_match_term *types = ps->rs->idx->types[m->index];
    const char *type = ps->res->type ? ps->res->type : "";

    if (!types) {
        return true;
    }
    for (size_t j = 0; j < types->n; j++) {
        if (strcmp(types->patterns[j], type) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * May transition `t` start or advance `m`? Only a change of its field to
 * a value it starts on (held: `is`; otherwise `to`) does; everything else
 * an entry needs (deadlines, resolving, staleness) happens in finish().
 */
static bool watches_transition(const struct pass *ps, const struct rules_monitor *m,
                               const struct vg_transition *t)
{
    const struct rules_cond *c = &m->cond;

    return c->kind != RULES_ABSENCE && c->field->field == t->field &&
           rules_valueset_has(c->kind == RULES_HELD ? &c->is : &c->to, t->to) && type_allows(ps, m);
}

static int cmp_monitor_index(const void *a, const void *b)
{
    const struct rules_monitor *x = *(const struct rules_monitor *const *)a;
    const struct rules_monitor *y = *(const struct rules_monitor *const *)b;

    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * `cand` and the monitors with an entry on the Resource (an open entry
 * follows its course even when the match no longer holds), in load order:
 * `cand` itself when the Resource has no entry (the usual case), else
 * merged into `out`. `own` is scratch.
 */
static const struct rules_mlist *with_entries(const struct pass *ps, const struct rules_mlist *cand,
                                              struct rules_mlist *own, struct rules_mlist *out)
{
    size_t i = 0;
    size_t j = 0;

    if (ps->n_w == 0) {
        return cand;
    }
    own->n = 0;
    out->n = 0;
    for (size_t k = 0; k < ps->n_w; k++) {
        *VG_ARRAY_PUSH(own->v, own->n, own->cap) = (struct rules_monitor *)ps->w[k].m;
    }
    if (own->n > 1) {
        qsort(own->v, own->n, sizeof(own->v[0]), cmp_monitor_index);
    }
    while (i < cand->n || j < own->n) {
        struct rules_monitor *m;

        if (j == own->n || (i < cand->n && cand->v[i]->index <= own->v[j]->index)) {
            m = cand->v[i++];
        } else {
            m = own->v[j++];
        }
        if (out->n == 0 || out->v[out->n - 1] != m) {
            *VG_ARRAY_PUSH(out->v, out->n, out->cap) = m;
        }
    }
    return out;
}

static void on_event_absence(struct pass *ps, const struct rules_monitor *m)
{
    struct work *w = find_work(ps, m);
    bool running = strcmp(ps->res->runtime, "running") == 0 && !res_deleted(ps->res);

    if (w && w->e.phase == PH_FIRING) {
        end_entry(ps, w, "resolved", NULL);
        w->e.ended = ps->ev ? ps->ev->time_ms : ps->now;
        return;
    }
    if (!running) {
        if (w && w->e.phase == PH_PENDING) {
            w->remove = true;
        }
        return;
    }
    if (!w || w->e.phase == PH_ENDED) {
        w = new_work(ps, m, w);
        w->e.phase = PH_PENDING;
        w->e.since = ps->now;
        incident_id(w->id, m, ps->res, ps->ev);
    }
    w->e.lev = ps->now;
    w->e.trig.set = true;
    w->e.trig.field = VG_FIELD_RUNTIME;
    copy_value(w->e.trig.from, "running");
    copy_value(w->e.trig.to, "running");
    w->e.trig.at = ps->ev ? ps->ev->time_ms : ps->now;
}

/* Deadlines that passed and the condition against the current state. */
static void reconcile(struct pass *ps, struct work *w)
{
    const struct rules_monitor *m = w->m;
    const struct rules_cond *c = &m->cond;
    const struct vg_transition *t = c->field ? cur_tr(ps, (int)c->field->field) : NULL;
    int64_t now = ps->now;

    if (w->remove) {
        return;
    }
    if (w->e.phase == PH_PENDING) {
        switch (c->kind) {
        case RULES_HELD:
            if (!rules_valueset_has(&c->is, field_value(ps->res, (int)c->field->field))) {
                w->remove = true;
            } else if (now >= w->e.due) {
                fire(ps, w, w->started);
            }
            break;
        case RULES_FLAPPING: {
            size_t k = 0;

            for (size_t i = 0; i < w->e.n_hits; i++) {
                if (w->e.hits[i] > now - c->within_ms) {
                    w->e.hits[k++] = w->e.hits[i];
                }
            }
            w->e.n_hits = k;
            w->remove = k == 0;
            break;
        }
        case RULES_ABSENCE:
            if (now >= w->e.lev + c->silent_ms) {
                fire(ps, w, now);
            }
            break;
        case RULES_TRANSITION:
            w->remove = true; /* never pending */
            break;
        }
        return;
    }
    if (w->e.phase != PH_FIRING || m->resolve_never || w->opened_now) {
        return;
    }
    switch (c->kind) {
    case RULES_TRANSITION:
    case RULES_HELD: {
        bool holds;

        if (c->kind == RULES_HELD) {
            holds = rules_valueset_has(&c->is, field_value(ps->res, (int)c->field->field));
        } else if (!t) {
            holds = w->e.good == 0; /* no change of the field: as before */
        } else if (c->to.given) {
            holds = rules_valueset_has(&c->to, t->to);
        } else {
            holds = !rules_valueset_has(&c->from, t->to);
        }
        if (holds) {
            w->e.good = 0;
            memset(&w->e.endt, 0, sizeof(w->e.endt));
        } else if (m->resolve_after_ms == 0) {
            end_entry(ps, w, "resolved", t);
            return;
        } else if (w->e.good == 0) {
            w->e.good = now;
            if (t) {
                tr_from(&w->e.endt, t);
            }
        }
        if (w->e.good && now >= w->e.good + m->resolve_after_ms) {
            end_entry(ps, w, "resolved", NULL);
            return;
        }
        break;
    }
    case RULES_FLAPPING:
        if (now >= w->e.lhit + c->within_ms) {
            end_entry(ps, w, "resolved", NULL);
            return;
        }
        break;
    case RULES_ABSENCE:
        break;
    }
    if (m->stale_after_ms && now >= w->e.lev + m->stale_after_ms) {
        end_entry(ps, w, "stale", NULL);
    }
}

/* ---- notifications ------------------------------------------------------------ */

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct vg_label *)a)->key, ((const struct vg_label *)b)->key);
}

/* The incident's labels: the Resource's, then the monitor's (rendered) over them. */
static void render_labels(struct pass *ps, struct work *w)
{
    const struct rules_monitor *m = w->m;
    struct vg_resource *res = ps->res;
    struct vg_label *v = vg_labels_copy(res->labels, res->n_labels);
    size_t n = res->n_labels;
    struct vg_transition t;
    struct rules_tpl_ctx ctx = {.monitor = m->name,
                                .severity = m->severity,
                                .incident_id = w->id,
                                .incident_type = m->incident_type,
                                .state = phase_name(&w->e),
                                .res = res,
                                .t = NULL,
                                .duration_ms = ps->now - w->e.since,
                                .labels = res->labels,
                                .n_labels = res->n_labels};

    if (w->e.trig.set) {
        tr_to(&t, &w->e.trig, res);
        ctx.t = &t;
    }
    for (size_t i = 0; i < m->n_labels; i++) {
        char *value = rules_tpl_render(&m->labels[i].value, &ctx);
        bool replaced = false;

        for (size_t j = 0; j < n && !replaced; j++) {
            if (strcmp(v[j].key, m->labels[i].key) == 0) {
                vg_free(v[j].value);
                v[j].value = value;
                replaced = true;
            }
        }
        if (!replaced) {
            v = vg_realloc(v, (n + 1) * sizeof(*v));
            v[n].key = vg_strdup(m->labels[i].key);
            v[n].value = value;
            n++;
        }
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_label);
    }
    vg_labels_free(w->labels, w->n_labels);
    w->labels = v;
    w->n_labels = n;
}

static void incident_subject(const struct pass *ps, const struct work *w, struct rules_subject *s)
{
    memset(s, 0, sizeof(*s));
    s->res = ps->res;
    s->monitor = w->m->name;
    s->severity = w->m->severity;
    s->incident_type = w->m->incident_type;
    s->labels = w->labels;
    s->n_labels = w->n_labels;
}

static bool keys_equal(const struct rules_key_ref *keys, size_t n, const struct rules_subject *a,
                       const struct rules_subject *b)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].key->get(a, keys[i].label), keys[i].key->get(b, keys[i].label)) != 0) {
            return false;
        }
    }
    return true;
}

/* A subject for a record of an incident on another Resource (id type:version:name:workspace). */
static void record_subject(const struct vg_incident_record *r, struct rules_subject *s, char *buf,
                           size_t buf_size)
{
    char *parts[4] = {NULL, NULL, NULL, NULL};
    char *p;

    memset(s, 0, sizeof(*s));
    copy_str(buf, buf_size, r->resource ? r->resource : "");
    p = buf;
    for (int i = 0; i < 4 && p; i++) {
        char *colon = i < 3 ? strchr(p, ':') : NULL;

        parts[i] = p;
        if (colon) {
            *colon = '\0';
            p = colon + 1;
        } else {
            p = NULL;
        }
    }
    s->resource_id = r->resource;
    s->type = parts[0];
    s->version = parts[1];
    s->name = parts[2];
    s->workspace = parts[3];
    s->owner = "";
    s->monitor = r->monitor;
    s->severity = r->severity;
    s->incident_type = r->incident_type;
    s->labels = r->labels;
    s->n_labels = r->n_labels;
}

/* Is `w` muted by an incident firing on the same Resource, or (cross) elsewhere? */
static bool inhibited(const struct pass *ps, const struct work *w, bool *cross)
{
    struct rules_subject target;

    *cross = false;
    incident_subject(ps, w, &target);
    for (size_t i = 0; i < ps->n_w; i++) {
        const struct work *o = &ps->w[i];
        struct rules_subject source;

        if (o == w || o->remove || o->e.phase != PH_FIRING) {
            continue;
        }
        /* By default a higher severity on the same Resource mutes the lower ones. */
        if (o->m->rank > w->m->rank) {
            return true;
        }
        incident_subject(ps, o, &source);
        for (size_t k = 0; k < ps->rs->n_inhibits; k++) {
            const struct rules_inhibit *ih = ps->rs->inhibits[k];

            if (rules_match_holds(&ih->source, &source) &&
                rules_match_holds(&ih->target, &target) &&
                keys_equal(ih->equal, ih->n_equal, &source, &target)) {
                return true;
            }
        }
    }
    if (!ps->rs->cross_inhibit || !ps->env->firing) {
        return false;
    }
    for (size_t i = 0; i < ps->env->n_firing; i++) {
        const struct vg_incident_record *r = &ps->env->firing[i];
        struct rules_subject source;
        char buf[1024];

        if (strcmp(r->state ? r->state : "", "firing") != 0 ||
            strcmp(r->resource ? r->resource : "", ps->res->id) == 0) {
            continue;
        }
        record_subject(r, &source, buf, sizeof(buf));
        for (size_t k = 0; k < ps->rs->n_inhibits; k++) {
            const struct rules_inhibit *ih = ps->rs->inhibits[k];

            if (!ih->same_resource && rules_match_holds(&ih->source, &source) &&
                rules_match_holds(&ih->target, &target) &&
                keys_equal(ih->equal, ih->n_equal, &source, &target)) {
                *cross = true;
                return true;
            }
        }
    }
    return false;
}

/* "key=glob" against the subject; an unusable matcher never matches. */
static bool matcher_holds(const char *matcher, const struct rules_subject *s)
{
    const char *eq = strchr(matcher, '=');
    const struct rules_match_key *key;
    const char *label = NULL;
    char name[256];
    const char *v;

    if (!eq || eq == matcher || (size_t)(eq - matcher) >= sizeof(name)) {
        return false;
    }
    memcpy(name, matcher, (size_t)(eq - matcher));
    name[eq - matcher] = '\0';
    key = rules_find_match_key(name, &label);
    if (!key) {
        return false;
    }
    v = key->get(s, label);
    return vg_is_glob(eq + 1) ? vg_glob_match(eq + 1, v) : strcmp(eq + 1, v) == 0;
}

/* Silenced at now? *until_ms: when the last matching silence ends. */
static bool silenced(const struct pass *ps, const struct work *w, int64_t *until_ms)
{
    struct rules_subject s;
    bool any = false;

    incident_subject(ps, w, &s);
    *until_ms = 0;
    for (size_t i = 0; i < ps->env->n_silences; i++) {
        const struct vg_silence *si = &ps->env->silences[i];
        bool all = si->n_matchers > 0;

        if (ps->now < si->starts_at_ms || ps->now >= si->ends_at_ms) {
            continue;
        }
        for (size_t j = 0; j < si->n_matchers && all; j++) {
            all = matcher_holds(si->matchers[j], &s);
        }
        if (all) {
            any = true;
            if (si->ends_at_ms > *until_ms) {
                *until_ms = si->ends_at_ms;
            }
        }
    }
    return any;
}

static bool mute_holds(const struct rules_mute *mu, int64_t t_ms)
{
    int wday;
    int minute;

    rules_local_time(mu->tz, t_ms, &wday, &minute);
    if (mu->has_between) {
        bool in = mu->from_min < mu->to_min ? minute >= mu->from_min && minute < mu->to_min
                                            : minute >= mu->from_min || minute < mu->to_min;

        if (!in) {
            return false;
        }
        /* An overnight window belongs to the day it started on. */
        if (mu->days && mu->from_min > mu->to_min && minute < mu->to_min) {
            wday = (wday + 6) % 7;
        }
    }
    return mu->days == 0 || (mu->days & (1u << wday));
}

static bool muted_at(const struct rules_pager *p, int64_t t_ms)
{
    for (size_t i = 0; i < p->n_mute; i++) {
        if (mute_holds(&p->mute[i], t_ms)) {
            return true;
        }
    }
    return false;
}

bool rules_pager_muted(const struct rules_pager *p, int64_t now_ms, int64_t *until_ms)
{
    int64_t t;

    *until_ms = 0;
    if (p->n_mute == 0 || !muted_at(p, now_ms)) {
        return false;
    }
    /* Walk forward to the next minute boundary that is not muted (at most 8 days). */
    t = (now_ms / 60000 + 1) * 60000;
    for (int i = 0; i < 8 * 24 * 60 && muted_at(p, t); i++) {
        t += 60000;
    }
    *until_ms = t;
    return true;
}

static struct pstate *pager_state(struct ent *e, const char *pager)
{
    for (size_t i = 0; i < e->n_ps; i++) {
        if (strcmp(e->ps[i].pager, pager) == 0) {
            return &e->ps[i];
        }
    }
    e->ps = vg_realloc(e->ps, (e->n_ps + 1) * sizeof(*e->ps));
    memset(&e->ps[e->n_ps], 0, sizeof(e->ps[0]));
    e->ps[e->n_ps].pager = vg_strdup(pager);
    return &e->ps[e->n_ps++];
}

/* The group key "k=v,k=v" of `p` for incident subject `s`. */
static void group_of(const struct rules_pager *p, const struct rules_subject *s, struct vg_page *pg)
{
    struct vg_buf key = {0};

    pg->group_labels = vg_calloc(p->n_group_by ? p->n_group_by : 1, sizeof(struct vg_label));
    for (size_t i = 0; i < p->n_group_by; i++) {
        const struct rules_key_ref *k = &p->group_by[i];
        const char *v = k->key->get(s, k->label);
        char *name = k->label ? vg_asprintf("labels.%s", k->label) : vg_strdup(k->key->name);

        vg_buf_printf(&key, "%s%s=%s", i ? "," : "", name, v);
        pg->group_labels[i].key = name;
        pg->group_labels[i].value = vg_strdup(v);
    }
    pg->n_group_labels = p->n_group_by;
    pg->group = vg_buf_steal(&key);
    pg->group_wait_ms = p->group_wait_ms;
    vg_buf_fini(&key);
}

/* One notification round of `w`: the pages to send now. */
struct round {
    const char *status;
    char *summary;
    char *description;
    struct vg_transition t;
    bool seq_bumped;
    size_t first; /* index in out->pages of the round's first page */
};

static void emit(struct pass *ps, struct work *w, struct round *r, const struct rules_pager *p,
                 const struct rules_subject *s)
{
    struct vg_resource *res = ps->res;

    for (size_t j = 0; j < p->n_sinks; j++) {
        const char *sink = p->sinks[j].name;
        struct vg_page *pg;
        bool seen = false;

        for (size_t k = r->first; k < ps->out->pages.n && !seen; k++) {
            seen = strcmp(ps->out->pages.items[k].sink, sink) == 0 &&
                   strcmp(ps->out->pages.items[k].incident.id, w->id) == 0;
        }
        if (seen) {
            continue; /* a sink named by several matching pagers gets the page once */
        }
        if (!r->seq_bumped) {
            w->seq++;
            r->seq_bumped = true;
        }
        pg = vg_pages_push(&ps->out->pages);
        pg->id = vg_asprintf("%s-%d", w->id, w->seq);
        pg->sink = vg_strdup(sink);
        pg->pager = vg_strdup(p->name);
        pg->status = vg_strdup(r->status);
        pg->incident.id = vg_strdup(w->id);
        pg->incident.monitor = vg_strdup(w->m->name);
        pg->incident.severity = vg_strdup(w->m->severity);
        pg->incident.summary = vg_strdup(r->summary);
        pg->incident.started_at_ms = w->started;
        pg->incident.resolved_at_ms = w->e.phase == PH_ENDED ? w->e.ended : 0;
        pg->resource.id = dup_or_empty(res->id);
        pg->resource.type = dup_or_empty(res->type);
        pg->resource.name = dup_or_empty(res->name);
        pg->resource.workspace = dup_or_empty(res->workspace);
        pg->resource.version = dup_or_empty(res->version);
        pg->resource.owner = dup_or_empty(res->owner);
        copy_value(pg->resource.status, res->status);
        copy_value(pg->resource.runtime, res->runtime);
        copy_value(pg->resource.health, vg_health_name(res->health));
        copy_value(pg->transition.field, vg_field_name(r->t.field));
        copy_value(pg->transition.from, r->t.from);
        copy_value(pg->transition.to, r->t.to);
        pg->transition.at_ms = r->t.at_ms;
        copy_str(pg->reason, sizeof(pg->reason), r->t.reason);
        copy_str(pg->pod, sizeof(pg->pod), r->t.pod);
        pg->incident_type = vg_strdup(w->m->incident_type);
        pg->labels = vg_labels_copy(w->labels, w->n_labels);
        pg->n_labels = w->n_labels;
        pg->description = vg_strdup(r->description ? r->description : "");
        pg->at_ms = ps->now;
        if (p->grouped) {
            group_of(p, s, pg);
        }
    }
}

static void render_round(struct pass *ps, struct work *w, struct round *r)
{
    const struct tr *src = (w->e.phase == PH_ENDED && w->e.endt.set) ? &w->e.endt : &w->e.trig;
    /* {{duration}} on the evaluation clock: how long the condition held (absence: the silence). */
    int64_t end = w->e.phase == PH_ENDED && w->e.endn ? w->e.endn : ps->now;
    int64_t start = w->m->cond.kind == RULES_ABSENCE ? w->e.lev : w->e.since;
    struct rules_tpl_ctx ctx;

    tr_to(&r->t, src, ps->res);
    ctx = (struct rules_tpl_ctx){.monitor = w->m->name,
                                 .severity = w->m->severity,
                                 .incident_id = w->id,
                                 .incident_type = w->m->incident_type,
                                 .state = phase_name(&w->e),
                                 .res = ps->res,
                                 .t = &r->t,
                                 .duration_ms = end > start ? end - start : 0,
                                 .labels = w->labels,
                                 .n_labels = w->n_labels};
    r->summary = rules_tpl_render(&w->m->summary, &ctx);
    r->description = w->m->has_description ? rules_tpl_render(&w->m->description, &ctx) : NULL;
}

/* What each routed pager should be told now; returns the next notification deadline. */
static int64_t notify(struct pass *ps, struct work *w)
{
    const struct vg_ruleset *rs = ps->rs;
    struct rules_subject s;
    struct round rf = {.status = "firing", .first = ps->out->pages.n};
    bool rendered = false;
    int64_t next = 0;
    int64_t sil_until = 0;
    bool cross = false;
    bool is_sil = false;
    bool is_inh = false;

    w->owes = false;
    if (w->e.phase == PH_PENDING || w->remove) {
        return 0;
    }
    incident_subject(ps, w, &s);
    if (w->e.phase == PH_FIRING) {
        is_sil = silenced(ps, w, &sil_until);
        is_inh = inhibited(ps, w, &cross);
    } else {
        rf.status = w->e.why[0] ? w->e.why : "resolved";
    }
    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *p = rs->pagers[i];
        struct pstate *st;
        int64_t mute_until = 0;
        bool muted;
        bool send = false;

        if (!rules_match_holds(&p->match, &s)) {
            continue;
        }
        st = pager_state(&w->e, p->name);
        muted = rules_pager_muted(p, ps->now, &mute_until);
        if (w->e.phase == PH_FIRING) {
            if (is_sil || is_inh) {
                if (is_sil) {
                    next = min_due(next, sil_until);
                }
                if (cross) {
                    next = min_due(next, ps->now + RULES_INHIBIT_RECHECK_MS);
                }
            } else if (muted) {
                next = min_due(next, mute_until);
            } else if (st->sent != SENT_FIRING) {
                send = true;
            } else if (p->repeat_ms && ps->now >= st->last_ms + p->repeat_ms) {
                send = true;
            }
            if (send) {
                st->sent = SENT_FIRING;
                st->last_ms = ps->now;
            }
            if (p->repeat_ms && st->sent == SENT_FIRING && !is_sil && !is_inh && !muted) {
                next = min_due(next, st->last_ms + p->repeat_ms);
            }
        } else if (st->sent == SENT_FIRING && p->send_resolved) {
            if (muted) {
                next = min_due(next, mute_until);
                w->owes = true;
            } else {
                send = true;
                st->sent = SENT_ENDED;
                st->last_ms = ps->now;
            }
        } else {
            st->sent = SENT_ENDED;
        }
        if (send) {
            if (!rendered) {
                render_round(ps, w, &rf);
                rendered = true;
            }
            emit(ps, w, &rf, p, &s);
        }
        if (!p->cont) {
            break;
        }
    }
    if (w->e.phase == PH_FIRING) {
        w->e.sil = is_sil;
        w->e.inh = is_inh;
    }
    vg_free(rf.summary);
    vg_free(rf.description);
    return next;
}

/* ---- records, timers, write-back ----------------------------------------------- */

static void emit_record(struct pass *ps, struct work *w)
{
    struct vg_incident_record r;
    struct round rd = {0};
    char sig[17];
    char seq[16];
    char started[24];
    char ended[24];
    const char *parts[7];

    snprintf(seq, sizeof(seq), "%d", w->seq);
    snprintf(started, sizeof(started), "%" PRId64, w->started);
    snprintf(ended, sizeof(ended), "%" PRId64, w->e.phase == PH_ENDED ? w->e.ended : 0);
    parts[0] = phase_name(&w->e);
    parts[1] = seq;
    parts[2] = w->e.sil ? "s" : "";
    parts[3] = w->e.inh ? "i" : "";
    parts[4] = started;
    parts[5] = ended;
    parts[6] = w->id;
    vg_fingerprint(sig, parts, VG_ARRAY_LEN(parts));
    if (strcmp(sig, w->e.sig) == 0) {
        return;
    }
    copy_str(w->e.sig, sizeof(w->e.sig), sig);
    render_round(ps, w, &rd);
    memset(&r, 0, sizeof(r));
    r.id = w->id;
    r.monitor = w->m->name;
    r.resource = ps->res->id;
    r.severity = (char *)w->m->severity;
    r.incident_type = w->m->incident_type;
    r.state = (char *)phase_name(&w->e);
    r.labels = w->labels;
    r.n_labels = w->n_labels;
    r.summary = rd.summary;
    r.description = rd.description ? rd.description : (char *)"";
    r.started_at_ms = w->started;
    r.ended_at_ms = w->e.phase == PH_ENDED ? w->e.ended : 0;
    r.updated_at_ms = ps->now;
    r.seq = w->seq;
    r.silenced = w->e.sil;
    r.inhibited = w->e.inh;
    r.resolve_never = w->m->resolve_never;
    r.topic = ps->res->pos.topic ? ps->res->pos.topic : (char *)"";
    r.partition = ps->res->pos.partition < 0 ? 0 : ps->res->pos.partition;
    vg_incident_records_put(&ps->out->records, &r);
    vg_free(rd.summary);
    vg_free(rd.description);
}

/* Move the entry's one timer to `due` (0: none), where the Resource's events are. */
static void schedule(struct pass *ps, struct work *w, int64_t due)
{
    const char *topic = ps->res->pos.topic ? ps->res->pos.topic : "";
    int32_t part = ps->res->pos.partition < 0 ? 0 : ps->res->pos.partition;
    bool moved = w->e.td && (strcmp(w->e.tk ? w->e.tk : "", topic) != 0 || w->e.tp != part);
    char *member;

    if (due == w->e.td && !moved) {
        return;
    }
    member = vg_rules_timer_member('m', w->m->name, ps->res->id);
    if (w->e.td && (moved || due == 0)) {
        vg_timers_add(&ps->out->timers, w->e.tk ? w->e.tk : "", w->e.tp, member, 0, false);
    }
    if (due) {
        vg_timers_add(&ps->out->timers, topic, part, member, due, false);
    }
    vg_free(member);
    vg_free(w->e.tk);
    w->e.tk = vg_strdup(due ? topic : "");
    w->e.tp = due ? part : 0;
    w->e.td = due;
}

static int64_t deadline(const struct pass *ps, const struct work *w)
{
    const struct rules_monitor *m = w->m;
    int64_t d = 0;

    (void)ps;
    if (w->e.phase == PH_PENDING) {
        if (m->cond.kind == RULES_HELD) {
            d = w->e.due;
        } else if (m->cond.kind == RULES_ABSENCE) {
            d = w->e.lev + m->cond.silent_ms;
        }
        return d;
    }
    if (w->e.phase != PH_FIRING) {
        return 0;
    }
    if (w->e.good && m->resolve_after_ms) {
        d = min_due(d, w->e.good + m->resolve_after_ms);
    }
    if (m->cond.kind == RULES_FLAPPING) {
        d = min_due(d, w->e.lhit + m->cond.within_ms);
    }
    if (m->stale_after_ms && !m->resolve_never) {
        d = min_due(d, w->e.lev + m->stale_after_ms);
    }
    return d;
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Write the work list back into res->incidents, marking `res` dirty on any change. */
static void write_back(struct pass *ps)
{
    struct vg_resource *res = ps->res;

    for (size_t i = 0; i < ps->n_w; i++) {
        struct work *w = &ps->w[i];
        struct vg_open_incident *inc = vg_resource_find_incident(res, w->m->name);
        char *data;
        const char *state;

        if (w->remove) {
            if (inc) {
                vg_resource_remove_incident(res, w->m->name); /* marks it dirty */
            }
            continue;
        }
        data = ent_json(&w->e);
        state = phase_name(&w->e);
        if (inc && str_eq(inc->id, w->id) && inc->started_at_ms == w->started &&
            inc->seq == w->seq && str_eq(inc->state ? inc->state : "firing", state) &&
            str_eq(inc->data, data) && str_eq(inc->severity, w->m->severity)) {
            vg_free(data);
            continue;
        }
        if (!inc) {
            inc = vg_resource_add_incident(res, w->m->name, w->id, w->m->severity, w->started);
        } else {
            vg_free(inc->id);
            inc->id = vg_strdup(w->id);
            vg_free(inc->severity);
            inc->severity = vg_strdup(w->m->severity);
            inc->started_at_ms = w->started;
        }
        inc->seq = w->seq;
        vg_free(inc->state);
        inc->state = vg_strdup(state);
        vg_free(inc->data);
        inc->data = data;
        vg_resource_touch_named(res, VG_DIRTY_INCIDENT, w->m->name);
    }
}

static void finish(struct pass *ps)
{
    /* Phases first (every entry), then notifications (inhibition sees the new phases). */
    for (size_t i = 0; i < ps->n_w; i++) {
        reconcile(ps, &ps->w[i]);
    }
    for (size_t i = 0; i < ps->n_w; i++) {
        struct work *w = &ps->w[i];

        if (!w->remove && w->e.phase != PH_PENDING) {
            render_labels(ps, w);
        }
    }
    for (size_t i = 0; i < ps->n_w; i++) {
        struct work *w = &ps->w[i];
        int64_t next = notify(ps, w);

        if (!w->remove && w->e.phase != PH_PENDING) {
            emit_record(ps, w);
        }
        if (w->e.phase == PH_ENDED && !w->owes) {
            w->remove = true;
        }
        if (!w->remove) {
            next = min_due(next, deadline(ps, w));
        } else {
            next = 0;
        }
        schedule(ps, w, next);
    }
    /* An absence watch that just ended starts watching again on this event. */
    if (ps->ev) {
        for (size_t i = 0; i < ps->n_w; i++) {
            struct work *w = &ps->w[i];

            if (w->m->cond.kind == RULES_ABSENCE && w->remove && w->e.phase == PH_ENDED &&
                strcmp(ps->res->runtime, "running") == 0 && !res_deleted(ps->res)) {
                const struct rules_monitor *m = w->m;

                w = new_work(ps, m, w);
                w->existed = true;
                w->e.phase = PH_PENDING;
                w->e.since = ps->now;
                incident_id(w->id, m, ps->res, ps->ev);
                on_event_absence(ps, m);
                schedule(ps, w, deadline(ps, w));
            }
        }
    }
    write_back(ps);
}

static void pass_fini(struct pass *ps)
{
    for (size_t i = 0; i < ps->n_w; i++) {
        ent_fini(&ps->w[i].e);
        vg_labels_free(ps->w[i].labels, ps->w[i].n_labels);
    }
    vg_free(ps->w);
}

static bool moved_to_deleted(const struct pass *ps, const struct vg_transition **t)
{
    for (size_t i = 0; i < ps->n_trans; i++) {
        if (ps->trans[i].field == VG_FIELD_STATUS && strcmp(ps->trans[i].to, "deleted") == 0) {
            *t = &ps->trans[i];
            return true;
        }
    }
    return false;
}

void vg_rules_eval_event(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                         struct vg_resource *res, const struct vg_event *ev,
                         const struct vg_transition *trans, size_t n, struct vg_rules_out *out)
{
    struct pass ps = {.rs = rs,
                      .env = env,
                      .res = res,
                      .ev = ev,
                      .trans = trans,
                      .n_trans = n,
                      .out = out,
                      .now = env->now_ms};
    struct rules_subject subj = {.res = res, .labels = res->labels, .n_labels = res->n_labels};
    struct rules_mlist cand_view;
    struct rules_mlist cand_buf = {0};
    struct rules_mlist own = {0};
    struct rules_mlist look_buf = {0};
    const struct rules_mlist *cand;
    const struct rules_mlist *look;
    const struct vg_transition *del = NULL;

    load_work(&ps);
    cand = match_candidates(&ps, &cand_view, &cand_buf);
    for (size_t i = 0; i < n; i++) {
        VG_ASSERT(trans[i].res == res);
        look = with_entries(&ps, cand, &own, &look_buf);
        for (size_t j = 0; j < look->n; j++) {
            const struct rules_monitor *m = look->v[j];
            struct work *w;

            if (!watches_transition(&ps, m, &trans[i])) {
                continue;
            }
            /* An open entry follows its own course; a new one needs the match. */
            w = find_work(&ps, m);
            if ((w && w->e.phase != PH_ENDED) || rules_match_holds(&m->match, &subj)) {
                on_transition(&ps, m, &trans[i]);
            }
        }
    }
    /* Absence: any event restarts the watch of a running Resource. */
    look = with_entries(&ps, cand, &own, &look_buf);
    for (size_t j = 0; j < look->n; j++) {
        const struct rules_monitor *m = look->v[j];

        if (m->cond.kind != RULES_ABSENCE || !type_allows(&ps, m)) {
            continue;
        }
        if (find_work(&ps, m) || rules_match_holds(&m->match, &subj)) {
            on_event_absence(&ps, m);
        }
    }
    vg_free(cand_buf.v);
    vg_free(own.v);
    vg_free(look_buf.v);
    for (size_t i = 0; i < ps.n_w; i++) {
        struct work *w = &ps.w[i];

        if (w->m->stale_after_ms && w->e.phase == PH_FIRING) {
            w->e.lev = ps.now;
        }
    }
    /* The Resource was deleted: that ends what it had, unless it is what a monitor watches. */
    if (moved_to_deleted(&ps, &del)) {
        for (size_t i = 0; i < ps.n_w; i++) {
            struct work *w = &ps.w[i];

            if (w->e.phase == PH_PENDING && !opens_when_deleted(w->m)) {
                w->remove = true;
            } else if (w->e.phase == PH_FIRING && !w->opened_now && !w->m->resolve_never &&
                       !opens_when_deleted(w->m)) {
                end_entry(&ps, w, "deleted", del);
            }
        }
    }
    finish(&ps);
    pass_fini(&ps);
}

void vg_rules_fire(const struct vg_ruleset *rs, const struct vg_rules_env *env,
                   struct vg_resource *res, const char *member, struct vg_rules_out *out)
{
    struct pass ps = {.rs = rs, .env = env, .res = res, .out = out, .now = env->now_ms};
    char *id = NULL;

    if (!vg_rules_timer_resource(member, &id) || strcmp(id, res->id) != 0) {
        vg_free(id);
        return;
    }
    vg_free(id);
    load_work(&ps);
    if (member[0] == 'x') {
        /* `vigil incidents resolve`: "x|<monitor>|<id>" */
        const char *name = member + 2;
        size_t len = (size_t)(strchr(name, '|') - name);

        for (size_t i = 0; i < ps.n_w; i++) {
            struct work *w = &ps.w[i];

            if (strlen(w->m->name) == len && memcmp(w->m->name, name, len) == 0 &&
                w->e.phase == PH_FIRING) {
                end_entry(&ps, w, "resolved", NULL);
            }
        }
    }
    finish(&ps);
    pass_fini(&ps);
}

void vg_rules_out_clear(struct vg_rules_out *o)
{
    vg_pages_clear(&o->pages);
    vg_timers_clear(&o->timers);
    vg_incident_records_clear(&o->records);
}

void vg_rules_out_fini(struct vg_rules_out *o)
{
    vg_pages_fini(&o->pages);
    vg_timers_fini(&o->timers);
    vg_incident_records_fini(&o->records);
}

size_t vg_rules_eval(const struct vg_ruleset *rs, struct vg_resource *res,
                     const struct vg_transition *trans, size_t n, struct vg_pages *out)
{
    struct vg_rules_out o = {0};
    struct vg_rules_env env = {0};
    size_t pages;

    for (size_t i = 0; i < n; i++) {
        if (trans[i].at_ms > env.now_ms) {
            env.now_ms = trans[i].at_ms;
        }
    }
    vg_rules_eval_event(rs, &env, res, n ? trans[0].ev : NULL, trans, n, &o);
    pages = o.pages.n;
    for (size_t i = 0; i < o.pages.n; i++) {
        /* move, do not copy: the strings change owner */
        *vg_pages_push(out) = o.pages.items[i];
    }
    o.pages.n = 0;
    vg_rules_out_fini(&o);
    return pages;
}
