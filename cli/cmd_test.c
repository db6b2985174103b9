/*
 * `vigil test FILE...`: rule unit tests (the `promtool test rules` of
 * vigil). A test file names rule files and cases; each case feeds events
 * at relative times on a fake clock through the real decoder, apply and
 * rules evaluation, keeps Resources, timers, group buffers and incident
 * records in rules/' in-memory store (struct vg_rules_mem), whose timers
 * fire through the same code as `vigil run`'s (vg_rules_timers_fire), and
 * compares the pages (and incidents) that happen against the expected ones. Prints "ok" or
 * "FAIL" per case with expected vs got; exit 1 on any failure, 2 when a
 * file cannot be used. Format: docs/rules.md, "Testing rules".
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

#define DEFAULT_START "2026-01-05T00:00:00Z" /* a Monday */
#define MAX_TIMER_ROUNDS 200000
#define TEST_TOPIC "test"

static const char *const file_keys[] = {"rules", "start", "tests", NULL};
static const char *const case_keys[] = {"name",  "start",  "events", "silences",
                                        "until", "expect", NULL};
static const char *const expect_keys[] = {"pages", "incidents", NULL};
static const char *const page_keys[] = {
    "at",      "pager",    "sink",  "status",    "monitor",     "resource", "severity",
    "summary", "incident", "group", "incidents", "description", NULL};
static const char *const inc_keys[] = {"at",       "monitor",  "resource",  "state",
                                       "severity", "silenced", "inhibited", "summary",
                                       "incident", "seq",      NULL};
static const char *const silence_keys[] = {"match", "at", "for", "comment", NULL};

/* One page that happened. */
struct got {
    int64_t at; /* relative to the start */
    struct vg_page pg;
    bool grouped;
    char *group_labels; /* "k=v,k=v" */
    size_t n_incidents;
    char *status; /* grouped: firing|resolved */
    bool matched;
};

/* One case being run: the rules under test and what `vigil run` would keep in Redis. */
struct sim {
    const struct vg_ruleset *rs;
    const struct vg_health_config *hc;
    int64_t start;
    struct vg_rules_mem mem;
    struct got *got; /* from mem.sent, once the case has run */
    size_t n_got, cap_got;
    struct vg_silence *silences;
    size_t n_silences;
    struct vg_rules_out out;
    int64_t offset;
};

/* ---- small helpers ---------------------------------------------------------- */

static void fmt_rel(int64_t ms, char *out, size_t size)
{
    static const struct {
        int64_t ms;
        char unit;
    } units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
    size_t len = 0;
    bool neg = ms < 0;

    if (neg) {
        ms = -ms;
    }
    out[0] = '\0';
    if (neg) {
        out[len++] = '-';
        out[len] = '\0';
    }
    if (ms == 0) {
        snprintf(out + len, size - len, "0s");
        return;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(units); i++) {
        int64_t q = ms / units[i].ms;

        if (q > 0) {
            int w = snprintf(out + len, size - len, "%" PRId64 "%c", q, units[i].unit);

            if (w < 0 || (size_t)w >= size - len) {
                return;
            }
            len += (size_t)w;
            ms -= q * units[i].ms;
        }
    }
    if (ms > 0) {
        snprintf(out + len, size - len, "%" PRId64 "ms", ms);
    }
}

static vg_err_t node_duration(const struct vg_ynode *n, const char *what, int64_t *out,
                              char *errstr, size_t errstr_size)
{
    if (n->kind != VG_YNODE_SCALAR || !vg_duration_parse(n->str, out)) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "\"%s\": expected a duration from the start (0s, 90s, 10m, 1h30m)",
                              what);
    }
    return VG_OK;
}

static const char *node_str(const struct vg_ynode *map, const char *key)
{
    const struct vg_ynode *n = vg_ynode_get(map, key);

    return n && n->kind == VG_YNODE_SCALAR ? n->str : NULL;
}

static bool looks_literal(const char *s)
{
    char *end;

    if (!*s) {
        return false;
    }
    if (!strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "null")) {
        return true;
    }
    (void)strtod(s, &end);
    return *end == '\0' && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'));
}

/* A YAML node as JSON (unquoted numbers, booleans and null stay literals). */
static void to_json(struct vg_buf *b, const struct vg_ynode *n, const char *const *skip)
{
    switch (n->kind) {
    case VG_YNODE_MAP: {
        bool first = true;

        vg_buf_putc(b, '{');
        for (size_t i = 0; i < n->n; i++) {
            bool skipped = false;

            for (size_t k = 0; skip && skip[k] && !skipped; k++) {
                skipped = strcmp(skip[k], n->pairs[i].key) == 0;
            }
            if (skipped) {
                continue;
            }
            if (!first) {
                vg_buf_putc(b, ',');
            }
            first = false;
            vg_json_append_string(b, n->pairs[i].key);
            vg_buf_putc(b, ':');
            to_json(b, n->pairs[i].value, NULL);
        }
        vg_buf_putc(b, '}');
        break;
    }
    case VG_YNODE_SEQ:
        vg_buf_putc(b, '[');
        for (size_t i = 0; i < n->n; i++) {
            if (i) {
                vg_buf_putc(b, ',');
            }
            to_json(b, n->items[i], NULL);
        }
        vg_buf_putc(b, ']');
        break;
    case VG_YNODE_SCALAR:
        if (!n->quoted && looks_literal(n->str)) {
            vg_buf_puts(b, n->str);
        } else {
            vg_json_append_string(b, n->str);
        }
        break;
    case VG_YNODE_NULL:
        vg_buf_puts(b, "null");
        break;
    }
}

/* ---- the simulated Redis ---------------------------------------------------- */

static void sim_fini(struct sim *s)
{
    vg_rules_mem_fini(&s->mem);
    for (size_t i = 0; i < s->n_got; i++) {
        vg_page_fini(&s->got[i].pg);
        vg_free(s->got[i].group_labels);
        vg_free(s->got[i].status);
    }
    vg_free(s->got);
    vg_silences_free(s->silences, s->n_silences);
    vg_rules_out_fini(&s->out);
}

/* Fire every timer due at or before `t`, as `vigil run` would. */
static vg_err_t run_timers(struct sim *s, int64_t t, char *errstr, size_t errstr_size)
{
    return vg_rules_mem_run_until(&s->mem, s->rs, t, MAX_TIMER_ROUNDS, errstr, errstr_size);
}

/* A grouped page as the receiver reads it: its status and group labels from the body. */
static void got_grouped(struct got *g, const struct vg_rules_sent *e)
{
    struct vg_pages incs = {0};
    char errstr[256];
    bool firing = false;

    g->grouped = true;
    g->n_incidents = e->n_incidents;
    if (vg_page_group_from_json(&incs, e->group_body, strlen(e->group_body), errstr,
                                sizeof(errstr)) == VG_OK &&
        incs.n > 0) {
        g->group_labels = vg_strdup(incs.items[0].group);
    } else {
        g->group_labels = vg_strdup("");
    }
    for (size_t i = 0; i < incs.n; i++) {
        firing = firing || strcmp(incs.items[i].status, "firing") == 0;
    }
    g->status = vg_strdup(firing ? "firing" : "resolved");
    vg_pages_fini(&incs);
}

/* The outbox of the case, as pages to compare. */
static void collect_got(struct sim *s)
{
    for (size_t i = 0; i < s->mem.n_sent; i++) {
        const struct vg_rules_sent *e = &s->mem.sent[i];
        struct got *g = VG_ARRAY_PUSH(s->got, s->n_got, s->cap_got);

        memset(g, 0, sizeof(*g));
        g->at = e->at_ms - s->start;
        vg_page_copy(&g->pg, &e->pg);
        if (e->group_body) {
            got_grouped(g, e);
        }
    }
}

/* ---- cases -------------------------------------------------------------------- */

struct step {
    int64_t at;
    int kind; /* 0 event, 1 check */
    size_t order;
    const struct vg_ynode *node;
};

static int cmp_step(const void *a, const void *b)
{
    const struct step *x = a;
    const struct step *y = b;

    if (x->at != y->at) {
        return x->at < y->at ? -1 : 1;
    }
    if (x->kind != y->kind) {
        return x->kind - y->kind;
    }
    return x->order < y->order ? -1 : (x->order > y->order);
}

static vg_err_t do_event(struct sim *s, const struct vg_ynode *n, int64_t now, char *errstr,
                         size_t errstr_size)
{
    static const char *const skip[] = {"at", "labels", "json", "resolve", NULL};
    const struct vg_ynode *resolve = vg_ynode_get(n, "resolve");
    const struct vg_ynode *raw = vg_ynode_get(n, "json");
    const struct vg_ynode *labels = vg_ynode_get(n, "labels");
    struct vg_event ev;
    struct vg_buf json = {0};
    struct vg_resource *res;
    struct vg_transition tr[3];
    struct vg_rules_env env;
    char detail[256];
    enum vg_decode_reason r;
    size_t nt;

    if (resolve) {
        const char *monitor = node_str(resolve, "monitor");
        const char *id = node_str(resolve, "resource");

        if (!monitor || !id) {
            return vg_ynode_error(resolve, errstr, errstr_size,
                                  "\"resolve\": needs monitor and resource (a Resource id)");
        }
        res = vg_rules_mem_resource(&s->mem, id);
        if (res) {
            /* as `vigil incidents resolve`: a timer due now where the Resource's timers are */
            struct vg_timer tm = {.topic = res->pos.topic,
                                  .partition = res->pos.partition,
                                  .member = vg_rules_timer_member('x', monitor, id),
                                  .due_ms = now};

            vg_rules_mem_set_timer(&s->mem, &tm);
            vg_free(tm.member);
            return run_timers(s, now, errstr, errstr_size);
        }
        return VG_OK;
    }
    if (raw) {
        if (raw->kind != VG_YNODE_SCALAR) {
            return vg_ynode_error(raw, errstr, errstr_size, "\"json\": expected a string");
        }
        vg_buf_puts(&json, raw->str);
    } else {
        char ts[40];

        to_json(&json, n, skip);
        if (!vg_ynode_get(n, "time")) {
            /* the event time is the fake clock's, unless the event says otherwise */
            vg_time_format_rfc3339(now, ts, sizeof(ts));
            json.len--;
            json.data[json.len] = '\0';
            vg_buf_printf(&json, "%s\"time\":\"%s\"}", json.len > 1 ? "," : "", ts);
        }
    }
    memset(&ev, 0, sizeof(ev));
    r = vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, json.data, json.len, now, detail,
                           sizeof(detail));
    if (r != VG_DECODE_OK) {
        vg_err_t err = vg_ynode_error(n, errstr, errstr_size, "event not accepted (%s): %s",
                                      vg_decode_reason_name(r), detail);

        vg_buf_fini(&json);
        return vg_decode_reason_is_skip(r) ? VG_OK : err;
    }
    vg_buf_fini(&json);
    if (ev.kind == VG_EVENT_K8S_EVENT || !ev.id) {
        vg_event_fini(&ev);
        return VG_OK; /* a log line: history only */
    }
    ev.pos.topic = vg_strdup(TEST_TOPIC);
    ev.pos.partition = 0;
    ev.pos.offset = s->offset++;
    if (labels) {
        if (labels->kind != VG_YNODE_MAP) {
            vg_event_fini(&ev);
            return vg_ynode_error(labels, errstr, errstr_size, "\"labels\": expected a mapping");
        }
        vg_labels_free(ev.labels, ev.n_labels);
        ev.labels = vg_calloc(labels->n ? labels->n : 1, sizeof(*ev.labels));
        ev.n_labels = 0;
        for (size_t i = 0; i < labels->n; i++) {
            const struct vg_ynode *v = labels->pairs[i].value;

            ev.labels[ev.n_labels].key = vg_strdup(labels->pairs[i].key);
            ev.labels[ev.n_labels].value = vg_strdup(v->kind == VG_YNODE_SCALAR ? v->str : "");
            ev.n_labels++;
        }
        vg_labels_sort(ev.labels, ev.n_labels);
    }
    res = vg_rules_mem_resource(&s->mem, ev.id);
    if (!res) {
        res = vg_resource_new_from_event(&ev);
        vg_rules_mem_put_resource(&s->mem, res);
    }
    if (vg_resource_is_late(res, &ev)) {
        vg_event_fini(&ev);
        return VG_OK;
    }
    nt = vg_resource_apply(s->hc, res, &ev, tr);
    vg_resource_set_labels(res, &ev);
    s->mem.now_ms = now;
    env = vg_rules_mem_env(&s->mem);
    vg_rules_eval_event(s->rs, &env, res, &ev, tr, nt, &s->out);
    vg_rules_mem_apply(&s->mem, &s->out);
    vg_rules_out_clear(&s->out);
    res->dirty = false;
    vg_event_fini(&ev);
    return VG_OK;
}

static bool bool_of(const char *s)
{
    return s && (!strcmp(s, "true") || !strcmp(s, "yes"));
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Does got page `g` satisfy expected `e`? */
static bool page_matches(const struct vg_ynode *e, const struct got *g, int64_t at)
{
    const char *v;
    const struct vg_ynode *grp;

    if (g->at != at) {
        return false;
    }
    if ((v = node_str(e, "pager")) && strcmp(v, or_empty(g->pg.pager)) != 0) {
        return false;
    }
    if ((v = node_str(e, "sink")) && strcmp(v, or_empty(g->pg.sink)) != 0) {
        return false;
    }
    if ((v = node_str(e, "status")) &&
        strcmp(v, g->grouped ? g->status : or_empty(g->pg.status)) != 0) {
        return false;
    }
    grp = vg_ynode_get(e, "group");
    if (grp || vg_ynode_get(e, "incidents")) {
        if (!g->grouped) {
            return false;
        }
        if ((v = node_str(e, "incidents")) && strtoull(v, NULL, 10) != g->n_incidents) {
            return false;
        }
        if (grp && grp->kind == VG_YNODE_MAP) {
            struct vg_buf want = {0};
            bool eq;

            for (size_t i = 0; i < grp->n; i++) {
                vg_buf_printf(
                    &want, "%s%s=%s", i ? "," : "", grp->pairs[i].key,
                    grp->pairs[i].value->kind == VG_YNODE_SCALAR ? grp->pairs[i].value->str : "");
            }
            eq = strcmp(want.data ? want.data : "", g->group_labels) == 0;
            vg_buf_fini(&want);
            if (!eq) {
                return false;
            }
        }
        return true;
    }
    if ((v = node_str(e, "monitor")) && strcmp(v, or_empty(g->pg.incident.monitor)) != 0) {
        return false;
    }
    if ((v = node_str(e, "resource")) && strcmp(v, or_empty(g->pg.resource.id)) != 0) {
        return false;
    }
    if ((v = node_str(e, "severity")) && strcmp(v, or_empty(g->pg.incident.severity)) != 0) {
        return false;
    }
    if ((v = node_str(e, "summary")) && strcmp(v, or_empty(g->pg.incident.summary)) != 0) {
        return false;
    }
    if ((v = node_str(e, "description")) && strcmp(v, or_empty(g->pg.description)) != 0) {
        return false;
    }
    if ((v = node_str(e, "incident")) && strcmp(v, or_empty(g->pg.incident_type)) != 0) {
        return false;
    }
    return !g->grouped;
}

static void describe_got(struct vg_buf *b, const struct got *g)
{
    char at[32];

    fmt_rel(g->at, at, sizeof(at));
    if (g->grouped) {
        vg_buf_printf(b, "at %s %s grouped {%s} %zu incident%s pager=%s sink=%s", at, g->status,
                      g->group_labels, g->n_incidents, g->n_incidents == 1 ? "" : "s", g->pg.pager,
                      g->pg.sink);
        return;
    }
    vg_buf_printf(b, "at %s %s monitor=%s resource=%s severity=%s pager=%s sink=%s summary=\"%s\"",
                  at, g->pg.status, g->pg.incident.monitor, g->pg.resource.id,
                  g->pg.incident.severity, g->pg.pager, g->pg.sink, g->pg.incident.summary);
}

static void describe_expected(struct vg_buf *b, const struct vg_ynode *e)
{
    bool first = true;

    for (size_t i = 0; i < e->n; i++) {
        const struct vg_ynode *v = e->pairs[i].value;

        if (v->kind == VG_YNODE_MAP) {
            vg_buf_printf(b, "%s%s={", first ? "" : " ", e->pairs[i].key);
            for (size_t j = 0; j < v->n; j++) {
                vg_buf_printf(b, "%s%s=%s", j ? "," : "", v->pairs[j].key,
                              v->pairs[j].value->kind == VG_YNODE_SCALAR ? v->pairs[j].value->str
                                                                         : "?");
            }
            vg_buf_putc(b, '}');
        } else if (strcmp(e->pairs[i].key, "summary") == 0 && v->kind == VG_YNODE_SCALAR) {
            vg_buf_printf(b, "%ssummary=\"%s\"", first ? "" : " ", v->str);
        } else {
            vg_buf_printf(b, "%s%s=%s", first ? "" : " ", e->pairs[i].key,
                          v->kind == VG_YNODE_SCALAR ? v->str : "?");
        }
        first = false;
    }
}

static bool record_matches(const struct vg_ynode *e, const struct vg_incident_record *r)
{
    const char *v;

    if ((v = node_str(e, "monitor")) && strcmp(v, r->monitor) != 0) {
        return false;
    }
    if ((v = node_str(e, "resource")) && strcmp(v, r->resource) != 0) {
        return false;
    }
    if ((v = node_str(e, "severity")) && strcmp(v, r->severity) != 0) {
        return false;
    }
    if ((v = node_str(e, "incident")) && strcmp(v, r->incident_type) != 0) {
        return false;
    }
    if ((v = node_str(e, "summary")) && strcmp(v, r->summary) != 0) {
        return false;
    }
    if ((v = node_str(e, "silenced")) && bool_of(v) != r->silenced) {
        return false;
    }
    if ((v = node_str(e, "inhibited")) && bool_of(v) != r->inhibited) {
        return false;
    }
    if ((v = node_str(e, "seq")) && strtol(v, NULL, 10) != r->seq) {
        return false;
    }
    v = node_str(e, "state");
    return !v || strcmp(v, "none") == 0 || strcmp(v, r->state) == 0;
}

static void describe_record(struct vg_buf *b, const struct vg_incident_record *r)
{
    vg_buf_printf(b, "monitor=%s resource=%s state=%s severity=%s seq=%d%s%s summary=\"%s\"",
                  r->monitor, r->resource, r->state, r->severity, r->seq,
                  r->silenced ? " silenced=true" : "", r->inhibited ? " inhibited=true" : "",
                  r->summary);
}

/* An incident expectation at its time: a record matches (state: none: no record does). */
static bool check_incident(struct sim *s, const struct vg_ynode *e, struct vg_buf *diff)
{
    const char *state = node_str(e, "state");
    bool none = state && strcmp(state, "none") == 0;
    bool found = false;
    const struct vg_incident_records *records = &s->mem.records;

    for (size_t i = 0; i < records->n && !found; i++) {
        found = record_matches(e, &records->items[i]) &&
                (!none || strcmp(records->items[i].state, "firing") == 0);
    }
    if (found != none) {
        return true;
    }
    vg_buf_puts(diff, none ? "    unexpected incident: " : "    missing incident: ");
    describe_expected(diff, e);
    vg_buf_puts(diff, "\n      incidents then:\n");
    if (records->n == 0) {
        vg_buf_puts(diff, "        (none)\n");
    }
    for (size_t i = 0; i < records->n; i++) {
        vg_buf_puts(diff, "        ");
        describe_record(diff, &records->items[i]);
        vg_buf_putc(diff, '\n');
    }
    return false;
}

struct file_ctx {
    const char *path;
    struct vg_ruleset *rs;
    const struct vg_health_config *hc;
    int64_t start;
    bool verbose;
};

static vg_err_t parse_silences(struct sim *s, const struct vg_ynode *n, int64_t start, char *errstr,
                               size_t errstr_size)
{
    vg_err_t err;

    if (n->kind != VG_YNODE_SEQ) {
        return vg_ynode_error(n, errstr, errstr_size, "\"silences\": expected a sequence");
    }
    s->silences = vg_calloc(n->n + 1, sizeof(*s->silences));
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ynode *e = n->items[i];
        const struct vg_ynode *m;
        const struct vg_ynode *v;
        struct vg_silence *si = &s->silences[s->n_silences];
        int64_t at = 0;
        int64_t dur = 0;

        err = vg_ynode_check_keys(e, silence_keys, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        m = vg_ynode_get(e, "match");
        v = vg_ynode_get(e, "for");
        if (!m || m->kind != VG_YNODE_MAP || m->n == 0 || !v) {
            return vg_ynode_error(e, errstr, errstr_size,
                                  "a silence needs \"match\" (a mapping) and \"for\"");
        }
        if (vg_ynode_get(e, "at")) {
            err = node_duration(vg_ynode_get(e, "at"), "at", &at, errstr, errstr_size);
            if (err != VG_OK) {
                return err;
            }
        }
        err = node_duration(v, "for", &dur, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        si->id = vg_asprintf("test-%zu", i + 1);
        si->matchers = vg_calloc(m->n + 1, sizeof(char *));
        for (size_t j = 0; j < m->n; j++) {
            char why[256];
            const struct vg_ynode *mv = m->pairs[j].value;
            char *matcher =
                vg_asprintf("%s=%s", m->pairs[j].key, mv->kind == VG_YNODE_SCALAR ? mv->str : "");

            if (!vg_rules_matcher_valid(matcher, why, sizeof(why))) {
                vg_free(matcher);
                s->n_silences++;
                return vg_ypair_error(m, &m->pairs[j], errstr, errstr_size, "%s", why);
            }
            si->matchers[si->n_matchers++] = matcher;
        }
        si->starts_at_ms = start + at;
        si->ends_at_ms = start + at + dur;
        si->comment = vg_strdup(or_empty(node_str(e, "comment")));
        si->created_by = vg_strdup("vigil test");
        s->n_silences++;
    }
    return VG_OK;
}

/* What a case does, in time order: events and incident checks, and where the clock ends. */
struct plan {
    struct step *steps;
    size_t n, cap;
    int64_t until;
    bool has_until;
};

static void plan_until(struct plan *p, int64_t at)
{
    if (!p->has_until && at > p->until) {
        p->until = at;
    }
}

/* The case's own settings: start, until, silences. */
static vg_err_t case_setup(struct sim *s, const struct vg_ynode *c, struct plan *p, char *errstr,
                           size_t errstr_size)
{
    const struct vg_ynode *expect = vg_ynode_get(c, "expect");
    const struct vg_ynode *v;
    vg_err_t err = vg_ynode_check_keys(c, case_keys, errstr, errstr_size);

    if (err == VG_OK && expect) {
        err = vg_ynode_check_keys(expect, expect_keys, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    v = vg_ynode_get(c, "start");
    if (v &&
        (v->kind != VG_YNODE_SCALAR || !vg_time_parse_rfc3339(v->str, strlen(v->str), &s->start))) {
        return vg_ynode_error(v, errstr, errstr_size, "\"start\": expected an RFC 3339 time");
    }
    s->mem.now_ms = s->start;
    v = vg_ynode_get(c, "until");
    if (v) {
        err = node_duration(v, "until", &p->until, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        p->has_until = true;
    }
    v = vg_ynode_get(c, "silences");
    if (v) {
        err = parse_silences(s, v, s->start, errstr, errstr_size);
        s->mem.silences = s->silences;
        s->mem.n_silences = s->n_silences;
    }
    return err;
}

/* Steps of `kind` (0 events, 1 incident checks) from sequence `n`, each with "at". */
static vg_err_t plan_steps(struct plan *p, const struct vg_ynode *n, int kind, char *errstr,
                           size_t errstr_size)
{
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ynode *e = n->items[i];
        struct step *st;
        vg_err_t err;

        if (kind == 0 && (e->kind != VG_YNODE_MAP || !vg_ynode_get(e, "at"))) {
            return vg_ynode_error(e, errstr, errstr_size, "an event needs \"at\" (e.g. at: 5m)");
        }
        if (kind == 1) {
            err = e->kind == VG_YNODE_MAP
                      ? vg_ynode_check_keys(e, inc_keys, errstr, errstr_size)
                      : vg_ynode_error(e, errstr, errstr_size, "an expected incident is a mapping");
            if (err == VG_OK && !vg_ynode_get(e, "at")) {
                err = vg_ynode_error(e, errstr, errstr_size,
                                     "an expected incident needs \"at\" (when to look)");
            }
            if (err != VG_OK) {
                return err;
            }
        }
        st = VG_ARRAY_PUSH(p->steps, p->n, p->cap);
        st->kind = kind;
        st->order = i;
        st->node = e;
        err = node_duration(vg_ynode_get(e, "at"), "at", &st->at, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        plan_until(p, st->at);
    }
    return VG_OK;
}

/* Expected pages are checked at the end; the clock runs at least to the last one. */
static vg_err_t plan_pages(struct plan *p, const struct vg_ynode *pages, char *errstr,
                           size_t errstr_size)
{
    if (pages->kind != VG_YNODE_SEQ && pages->kind != VG_YNODE_NULL) {
        return vg_ynode_error(pages, errstr, errstr_size, "\"pages\": expected a sequence");
    }
    for (size_t i = 0; i < pages->n && pages->kind == VG_YNODE_SEQ; i++) {
        const struct vg_ynode *e = pages->items[i];
        int64_t at = 0;
        vg_err_t err =
            e->kind == VG_YNODE_MAP
                ? vg_ynode_check_keys(e, page_keys, errstr, errstr_size)
                : vg_ynode_error(e, errstr, errstr_size, "an expected page is a mapping");

        if (err == VG_OK && !vg_ynode_get(e, "at")) {
            err = vg_ynode_error(e, errstr, errstr_size, "an expected page needs \"at\"");
        }
        if (err == VG_OK) {
            err = node_duration(vg_ynode_get(e, "at"), "at", &at, errstr, errstr_size);
        }
        if (err != VG_OK) {
            return err;
        }
        plan_until(p, at);
    }
    return VG_OK;
}

static vg_err_t plan_case(const struct vg_ynode *c, struct plan *p, char *errstr,
                          size_t errstr_size)
{
    const struct vg_ynode *events = vg_ynode_get(c, "events");
    const struct vg_ynode *expect = vg_ynode_get(c, "expect");
    const struct vg_ynode *pages = expect ? vg_ynode_get(expect, "pages") : NULL;
    const struct vg_ynode *incs = expect ? vg_ynode_get(expect, "incidents") : NULL;
    vg_err_t err;

    if (!events || events->kind != VG_YNODE_SEQ) {
        return vg_ynode_error(events ? events : c, errstr, errstr_size,
                              "a test case needs \"events\" (a sequence)");
    }
    err = plan_steps(p, events, 0, errstr, errstr_size);
    if (err == VG_OK && pages) {
        err = plan_pages(p, pages, errstr, errstr_size);
    }
    if (err == VG_OK && incs) {
        err = incs->kind == VG_YNODE_SEQ
                  ? plan_steps(p, incs, 1, errstr, errstr_size)
                  : vg_ynode_error(incs, errstr, errstr_size, "\"incidents\": expected a sequence");
    }
    if (err == VG_OK) {
        qsort(p->steps, p->n, sizeof(*p->steps), cmp_step);
    }
    return err;
}

/* Run the plan on the fake clock; 0, 1 (an incident check failed) or 2 (errstr). */
static int run_plan(struct sim *s, const struct plan *p, struct vg_buf *diff, char *errstr,
                    size_t errstr_size)
{
    int rc = 0;

    for (size_t i = 0; i < p->n; i++) {
        int64_t now = s->start + p->steps[i].at;

        if (run_timers(s, now, errstr, errstr_size) != VG_OK) {
            return 2;
        }
        if (p->steps[i].kind == 0) {
            if (do_event(s, p->steps[i].node, now, errstr, errstr_size) != VG_OK) {
                return 2;
            }
        } else if (!check_incident(s, p->steps[i].node, diff)) {
            rc = 1;
        }
    }
    if (run_timers(s, s->start + p->until, errstr, errstr_size) != VG_OK) {
        return 2;
    }
    return rc;
}

/* Every expected page happened, and (when `pages` is given) nothing else. */
static int compare_pages(struct sim *s, const struct vg_ynode *pages, struct vg_buf *diff)
{
    int rc = 0;

    for (size_t i = 0; pages->kind == VG_YNODE_SEQ && i < pages->n; i++) {
        const struct vg_ynode *e = pages->items[i];
        int64_t at = 0;
        bool found = false;

        vg_duration_parse(vg_ynode_get(e, "at")->str, &at);
        for (size_t j = 0; j < s->n_got && !found; j++) {
            if (!s->got[j].matched && page_matches(e, &s->got[j], at)) {
                s->got[j].matched = true;
                found = true;
            }
        }
        if (!found) {
            vg_buf_puts(diff, "    - expected: ");
            describe_expected(diff, e);
            vg_buf_putc(diff, '\n');
            rc = 1;
        }
    }
    for (size_t j = 0; j < s->n_got; j++) {
        if (!s->got[j].matched) {
            vg_buf_puts(diff, "    + unexpected: ");
            describe_got(diff, &s->got[j]);
            vg_buf_putc(diff, '\n');
            rc = 1;
        }
    }
    return rc;
}

static void describe_all(const struct sim *s, struct vg_buf *got_text)
{
    for (size_t j = 0; j < s->n_got; j++) {
        vg_buf_puts(got_text, "      ");
        describe_got(got_text, &s->got[j]);
        vg_buf_putc(got_text, '\n');
    }
    if (s->n_got == 0) {
        vg_buf_puts(got_text, "      (no pages)\n");
    }
}

/* Run one case; returns 0 ok, 1 failed, 2 unusable (message in errstr). */
static int run_case(const struct file_ctx *fc, const struct vg_ynode *c, char *errstr,
                    size_t errstr_size, struct vg_buf *diff, struct vg_buf *got_text)
{
    const struct vg_ynode *expect = vg_ynode_get(c, "expect");
    const struct vg_ynode *pages = expect ? vg_ynode_get(expect, "pages") : NULL;
    struct sim s = {.rs = fc->rs, .hc = fc->hc, .start = fc->start};
    struct plan p = {0};
    int rc = 2;

    if (case_setup(&s, c, &p, errstr, errstr_size) == VG_OK &&
        plan_case(c, &p, errstr, errstr_size) == VG_OK) {
        rc = run_plan(&s, &p, diff, errstr, errstr_size);
    }
    if (rc != 2) {
        collect_got(&s);
        if (pages && compare_pages(&s, pages, diff) != 0) {
            rc = 1;
        }
        describe_all(&s, got_text);
    }
    vg_free(p.steps);
    sim_fini(&s);
    return rc;
}

/* Rule paths relative to the test file's directory. */
static char **rule_paths(const char *file, const struct vg_ynode *n, size_t *n_out, char *errstr,
                         size_t errstr_size)
{
    char **v = NULL;
    const char *slash = strrchr(file, '/');
    size_t dlen = slash ? (size_t)(slash - file) : 0;

    if (vg_ynode_strings(n, &v, n_out, errstr, errstr_size) != VG_OK) {
        return NULL;
    }
    for (size_t i = 0; i < *n_out; i++) {
        if (v[i][0] != '/' && slash) {
            char *p = vg_asprintf("%.*s/%s", (int)dlen, file, v[i]);

            vg_free(v[i]);
            v[i] = p;
        }
    }
    return v;
}

/* Run every case of one file; returns 0 ok, 1 a case failed, 2 unusable. */
static int run_file(const char *path, bool verbose, size_t *n_ok, size_t *n_fail)
{
    struct vg_ydoc doc = {0};
    struct vg_config cfg;
    struct file_ctx fc = {.path = path, .verbose = verbose};
    const struct vg_ynode *root;
    const struct vg_ynode *tests;
    const struct vg_ynode *v;
    char errstr[1024];
    char **paths = NULL;
    size_t n_paths = 0;
    int rc = 0;

    vg_config_init(&cfg);
    fc.hc = &cfg.health;
    if (vg_yaml_load_file(&doc, path, 0, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        vg_config_fini(&cfg);
        return 2;
    }
    root = doc.root;
    if (!root || root->kind != VG_YNODE_MAP) {
        fprintf(stderr, "%s: expected a mapping with \"rules\" and \"tests\"\n", path);
        rc = 2;
        goto out;
    }
    if (vg_ynode_check_keys(root, file_keys, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        rc = 2;
        goto out;
    }
    v = vg_ynode_get(root, "rules");
    if (!v) {
        fprintf(stderr, "%s: missing \"rules\" (the rule files under test)\n", path);
        rc = 2;
        goto out;
    }
    paths = rule_paths(path, v, &n_paths, errstr, sizeof(errstr));
    if (!paths) {
        fprintf(stderr, "%s\n", errstr);
        rc = 2;
        goto out;
    }
    fc.rs = vg_ruleset_new();
    if (vg_rules_load_paths(fc.rs, paths, n_paths, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        rc = 2;
        goto out;
    }
    if (vg_time_parse_rfc3339(DEFAULT_START, strlen(DEFAULT_START), &fc.start)) {
        v = vg_ynode_get(root, "start");
        if (v && (v->kind != VG_YNODE_SCALAR ||
                  !vg_time_parse_rfc3339(v->str, strlen(v->str), &fc.start))) {
            vg_ynode_error(v, errstr, sizeof(errstr), "\"start\": expected an RFC 3339 time");
            fprintf(stderr, "%s\n", errstr);
            rc = 2;
            goto out;
        }
    }
    tests = vg_ynode_get(root, "tests");
    if (!tests || tests->kind != VG_YNODE_SEQ || tests->n == 0) {
        fprintf(stderr, "%s: \"tests\" must be a non-empty sequence of cases\n", path);
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < tests->n; i++) {
        const struct vg_ynode *c = tests->items[i];
        const char *name = c->kind == VG_YNODE_MAP ? node_str(c, "name") : NULL;
        struct vg_buf diff = {0};
        struct vg_buf got = {0};
        char label[64];
        int crc;

        snprintf(label, sizeof(label), "case %zu", i + 1);
        if (c->kind != VG_YNODE_MAP) {
            vg_ynode_error(c, errstr, sizeof(errstr), "a test case is a mapping");
            crc = 2;
        } else {
            errstr[0] = '\0';
            crc = run_case(&fc, c, errstr, sizeof(errstr), &diff, &got);
        }
        if (crc == 0) {
            printf("ok   %s: %s\n", path, name ? name : label);
            (*n_ok)++;
            if (verbose) {
                printf("    got pages:\n%s", got.data ? got.data : "");
            }
        } else if (crc == 1) {
            printf("FAIL %s: %s\n%s    got pages:\n%s", path, name ? name : label,
                   diff.data ? diff.data : "", got.data ? got.data : "");
            (*n_fail)++;
            rc = rc ? rc : 1;
        } else {
            printf("FAIL %s: %s: cannot run: %s\n", path, name ? name : label, errstr);
            (*n_fail)++;
            rc = 2;
        }
        vg_buf_fini(&diff);
        vg_buf_fini(&got);
    }
out:
    vg_strv_free(paths);
    vg_ruleset_destroy(fc.rs);
    vg_ydoc_fini(&doc);
    vg_config_fini(&cfg);
    return rc;
}

static void usage(FILE *out)
{
    fputs("usage: vigil test [-v] TEST-FILE...\n"
          "\n"
          "Rule unit tests: send each case's events on a fake clock through the rules\n"
          "the test file names and compare the pages and incidents (docs/rules.md).\n"
          "\n"
          "  -v, --verbose  also print the pages of the cases that pass\n"
          "  -h, --help     this help\n"
          "\n"
          "Exit: 0 all passed, 1 a case failed, 2 bad usage or an unusable test file.\n",
          out);
}

int cli_cmd_test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct cli_flags flags = {.shortopts = "vh", .opts = opts, .usage = usage};
    bool verbose = false;
    size_t n_ok = 0;
    size_t n_fail = 0;
    int worst = 0;
    int opt;

    while ((opt = cli_flags_next(&flags, argc, argv)) != -1) {
        switch (opt) {
        case 'v':
            verbose = true;
            break;
        }
    }
    if (flags.stop) {
        return flags.exit_code;
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        int rc = run_file(argv[i], verbose, &n_ok, &n_fail);

        worst = rc > worst ? rc : worst;
    }
    printf("%zu passed, %zu failed\n", n_ok, n_fail);
    if (worst == 2 && n_fail == 0 && n_ok == 0) {
        return CLI_EXIT_USAGE;
    }
    return n_fail || worst ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
