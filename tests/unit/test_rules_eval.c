/*
 * Evaluating rules: match keys (exact, glob, list), conditions (from, to,
 * "*"), templates, the incident lifecycle (firing, no repeat while open,
 * resolved with seq 2), replay-stable ids, and routing (first match,
 * continue, sink dedupe). Resources and transitions come from core's
 * vg_resource_new_from_event and vg_resource_apply, as in the pipeline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/util.h"

#define T0_MS INT64_C(1764324000000) /* 2025-11-28T10:00:00Z */
#define MAX_EVENTS 16

static char batch_workflow[] = "workflow";
static char batch_job[] = "job";
static char *batch_types[] = {batch_workflow, batch_job};
static const struct vg_health_config hc = {batch_types, 2};

/* One Resource and the events applied to it (kept: transitions point at them). */
struct world {
    const char *type, *name, *workspace, *owner, *version;
    struct vg_resource *res;
    struct vg_event evs[MAX_EVENTS];
    size_t n_evs;
    int64_t offset; /* Kafka offset of the next event */
    struct vg_transition tr[3];
    size_t n_tr;
};

static void world_init(struct world *w, const char *type, const char *name, const char *workspace,
                       const char *owner, const char *version)
{
    memset(w, 0, sizeof(*w));
    w->type = type;
    w->name = name;
    w->workspace = workspace;
    w->owner = owner;
    w->version = version;
    w->offset = 100;
}

/* Apply an event setting status and/or runtime ("" or NULL: absent); transitions in w->tr. */
static size_t world_apply(struct world *w, const char *status, const char *runtime, int64_t at_ms)
{
    struct vg_event *ev;

    VG_ASSERT(w->n_evs < MAX_EVENTS);
    ev = &w->evs[w->n_evs++];
    ev->type = vg_strdup(w->type);
    ev->name = vg_strdup(w->name);
    ev->workspace = vg_strdup(w->workspace);
    ev->version = vg_strdup(w->version);
    ev->owner = vg_strdup(w->owner);
    ev->id = vg_resource_id(w->type, w->version, w->name, w->workspace);
    snprintf(ev->status, sizeof(ev->status), "%s", status ? status : "");
    snprintf(ev->runtime, sizeof(ev->runtime), "%s", runtime ? runtime : "");
    ev->time_ms = at_ms;
    ev->pos.topic = vg_strdup("vigil.events");
    ev->pos.partition = 2;
    ev->pos.offset = w->offset++;
    if (!w->res) {
        w->res = vg_resource_new_from_event(ev);
    }
    w->n_tr = vg_resource_apply(&hc, w->res, ev, w->tr);
    return w->n_tr;
}

static void world_fini(struct world *w)
{
    for (size_t i = 0; i < w->n_evs; i++) {
        vg_event_fini(&w->evs[i]);
    }
    vg_resource_destroy(w->res);
}

/* Evaluate the transitions of the last event applied. */
static size_t world_eval(struct world *w, const struct vg_ruleset *rs, struct vg_pages *out)
{
    return vg_rules_eval(rs, w->res, w->tr, w->n_tr, out);
}

static struct vg_ruleset *load(const char *yaml)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";

    if (vg_rules_load_string(rs, "t.yaml", yaml, strlen(yaml), errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("%s\n%s", errstr, yaml);
    }
    return rs;
}

/* One event of a case: status and runtime (NULL: absent). */
struct step {
    const char *status, *runtime;
};

/*
 * Load monitor "m" (severity high, `when`, and `match` unless NULL), apply
 * `first` at T0 (unless NULL) and `last` at T0 + 1s to the Resource of `w`,
 * evaluate the transitions of `last` and say whether "m" has an incident open.
 * `w` stays for the caller to inspect and fini; `w->res->dirty` tells whether
 * the evaluation marked the Resource.
 */
static bool last_event_opens(struct world *w, const char *match, const char *when,
                             const struct step *first, struct step last)
{
    char *yaml =
        match ? vg_asprintf("monitors:\n  - name: m\n    match: %s\n"
                            "    when: %s\n    severity: high\n",
                            match, when)
              : vg_asprintf("monitors:\n  - name: m\n    when: %s\n    severity: high\n", when);
    struct vg_ruleset *rs = load(yaml);
    struct vg_pages pages = {0};
    bool open;

    if (first) {
        world_apply(w, first->status, first->runtime, T0_MS);
    }
    world_apply(w, last.status, last.runtime, T0_MS + 1000);
    w->res->dirty = false;
    world_eval(w, rs, &pages);
    open = vg_resource_find_incident(w->res, "m") != NULL;
    vg_pages_fini(&pages);
    vg_ruleset_destroy(rs);
    vg_free(yaml);
    return open;
}

/* Monitor `m` with match `match` on runtime -> failed; does running -> failed open it? */
static void test_match(void **state)
{
    static const struct {
        const char *match;
        const char *type, *name, *workspace, *owner, *version;
        bool want;
    } cases[] = {
        {"{}", "job", "etl", "prod", "", "v1", true},
        {"{type: job}", "job", "etl", "prod", "", "v1", true},
        {"{type: job}", "workflow", "etl", "prod", "", "v1", false},
        {"{type: [job, workflow]}", "workflow", "etl", "prod", "", "v1", true},
        {"{type: [job, workflow]}", "service", "etl", "prod", "", "v1", false},
        {"{name: \"etl-*\"}", "job", "etl-daily", "prod", "", "v1", true},
        {"{name: \"etl-*\"}", "job", "xetl-daily", "prod", "", "v1", false},
        {"{name: \"etl-[0-9]*\"}", "job", "etl-7x", "prod", "", "v1", true},
        {"{name: \"etl-[0-9]*\"}", "job", "etl-x7", "prod", "", "v1", false},
        {"{name: [\"a-*\", \"b-?\"]}", "job", "b-1", "prod", "", "v1", true},
        {"{name: [\"a-*\", \"b-?\"]}", "job", "b-12", "prod", "", "v1", false},
        {"{workspace: prod}", "job", "etl", "prod", "", "v1", true},
        {"{workspace: prod}", "job", "etl", "prod-2", "", "v1", false},
        {"{owner: team-a}", "job", "etl", "prod", "team-a", "v1", true},
        {"{owner: team-a}", "job", "etl", "prod", "", "v1", false},
        {"{owner: \"*\"}", "job", "etl", "prod", "", "v1", true},
        {"{owner: \"\"}", "job", "etl", "prod", "", "v1", true},
        {"{owner: \"\"}", "job", "etl", "prod", "team-a", "v1", false},
        {"{version: v2}", "job", "etl", "prod", "", "v1", false},
        {"{version: \"v*\"}", "job", "etl", "prod", "", "v1", true},
        {"{type: job, workspace: prod}", "job", "etl", "dev", "", "v1", false},
        {"{type: job, workspace: [dev, prod], name: etl}", "job", "etl", "dev", "", "v1", true},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        static const struct step running = {NULL, "running"};
        struct world w;
        bool open;

        world_init(&w, cases[i].type, cases[i].name, cases[i].workspace, cases[i].owner,
                   cases[i].version);
        open = last_event_opens(&w, cases[i].match, "{runtime: {to: failed}}", &running,
                                (struct step){NULL, "failed"});
        if (open != cases[i].want) {
            print_error("case %zu: match %s on %s: open %d, want %d\n", i, cases[i].match,
                        w.res->id, open, cases[i].want);
            failed++;
        }
        world_fini(&w);
    }
    assert_int_equal(failed, 0);
}

/*
 * Condition `when` against the transition `from` -> `to` of `field` (runtime
 * or status; "" from: the first value ever). Only the last event is evaluated.
 */
static void test_conditions(void **state)
{
    static const struct {
        const char *when;
        const char *field; /* "runtime" or "status" */
        const char *from, *to;
        bool want;
    } cases[] = {
        {"{runtime: {to: failed}}", "runtime", "", "failed", true},
        {"{runtime: {to: failed}}", "runtime", "running", "failed", true},
        {"{runtime: {to: failed}}", "runtime", "running", "succeeded", false},
        {"{runtime: {to: [failed, succeeded]}}", "runtime", "running", "succeeded", true},
        {"{runtime: {from: running, to: failed}}", "runtime", "running", "failed", true},
        {"{runtime: {from: running, to: failed}}", "runtime", "pending", "failed", false},
        {"{runtime: {from: running, to: failed}}", "runtime", "", "failed", false},
        {"{runtime: {from: \"*\", to: failed}}", "runtime", "", "failed", true},
        {"{runtime: {from: \"*\", to: failed}}", "runtime", "pending", "failed", true},
        {"{runtime: {from: running}}", "runtime", "running", "failed", true},
        {"{runtime: {from: running}}", "runtime", "running", "succeeded", true},
        {"{runtime: {from: running}}", "runtime", "pending", "running", false},
        {"{runtime: {from: running}}", "runtime", "", "running", false},
        {"{runtime: {from: [pending, running], to: \"*\"}}", "runtime", "pending", "running", true},
        {"{runtime: {from: [pending, running], to: \"*\"}}", "runtime", "succeeded", "running",
         false},
        {"{runtime: {to: \"*\"}}", "runtime", "", "pending", true},
        {"{status: {to: error}}", "status", "active", "error", true},
        {"{status: {to: [error, deleted]}}", "status", "", "deleted", true},
        {"{status: {to: error}}", "runtime", "running", "failed", false},
        {"{runtime: {to: failed}}", "status", "active", "error", false},
        {"{status: {from: \"*\", to: \"*\"}}", "runtime", "running", "failed", false},
        {"{runtime: {to: \"*\"}}", "status", "active", "error", false},
        {"{status: {from: active}}", "status", "active", "deleted", true},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        bool is_status = strcmp(cases[i].field, "status") == 0;
        struct step from = {is_status ? cases[i].from : NULL, is_status ? NULL : cases[i].from};
        struct step to = {is_status ? cases[i].to : NULL, is_status ? NULL : cases[i].to};
        struct world w;
        bool open;

        world_init(&w, "service", "api", "prod", "", "v1");
        open = last_event_opens(&w, NULL, cases[i].when, cases[i].from[0] ? &from : NULL, to);
        if (open != cases[i].want || w.res->dirty != cases[i].want) {
            print_error("case %zu: %s on %s \"%s\" -> \"%s\": open %d dirty %d, want %d\n", i,
                        cases[i].when, cases[i].field, cases[i].from, cases[i].to, open,
                        w.res->dirty, cases[i].want);
            failed++;
        }
        world_fini(&w);
    }
    assert_int_equal(failed, 0);
}

/* Health transitions come from status and runtime (service: long-running). */
static void test_health_conditions(void **state)
{
    static const struct {
        const char *when;
        const char *status1, *runtime1; /* NULL status1: no first event */
        const char *status2, *runtime2;
        bool want;
    } cases[] = {
        {"{health: {to: unhealthy}}", "active", "running", NULL, "failed", true},
        {"{health: {from: healthy, to: unhealthy}}", "active", "running", NULL, "failed", true},
        {"{health: {from: healthy, to: unhealthy}}", NULL, NULL, "active", "failed", false},
        {"{health: {from: \"*\", to: unhealthy}}", NULL, NULL, "active", "failed", true},
        {"{health: {from: progressing}}", "active", "pending", NULL, "running", true},
        {"{health: {to: healthy}}", "active", "pending", NULL, "failed", false},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct step first = {cases[i].status1, cases[i].runtime1};
        struct world w;
        bool open;

        world_init(&w, "service", "api", "prod", "", "v1");
        open = last_event_opens(&w, NULL, cases[i].when, cases[i].status1 ? &first : NULL,
                                (struct step){cases[i].status2, cases[i].runtime2});
        if (open != cases[i].want) {
            print_error("case %zu: %s: open %d, want %d\n", i, cases[i].when, open, cases[i].want);
            failed++;
        }
        world_fini(&w);
    }
    assert_int_equal(failed, 0);
}

/*
 * Summary templates rendered on the firing page of job "etl" in "prod"
 * (owner team-a, or none), runtime running -> failed at T0.
 * "%ID%" in `want` stands for the incident id.
 */
static void test_templates(void **state)
{
    static const struct {
        const char *summary; /* YAML scalar as written; NULL: the default summary */
        const char *owner;
        bool first_event_only; /* "" -> failed instead of running -> failed */
        const char *want;
    } cases[] = {
        {"\"{{resource.name}} failed in {{resource.workspace}}\"", "team-a", false,
         "etl failed in prod"},
        {"\"{{monitor}}/{{severity}}\"", "team-a", false, "m/high"},
        {"\"{{ resource.id }}\"", "team-a", false, "job:v1:etl:prod"},
        {"\"{{resource.type}} {{resource.version}} {{resource.owner}}\"", "team-a", false,
         "job v1 team-a"},
        {"\"[{{resource.status}}|{{resource.runtime}}|{{resource.health}}]\"", "team-a", false,
         "[|failed|unhealthy]"},
        {"'{{resource.status | default \"unknown\"}}'", "team-a", false, "unknown"},
        {"'{{resource.owner | default \"nobody\"}}'", "", false, "nobody"},
        {"'{{resource.owner | default \"nobody\"}}'", "team-a", false, "team-a"},
        {"\"{{transition.field}}: {{transition.from}} -> {{transition.to}} at "
         "{{transition.at}}\"",
         "team-a", false, "runtime: running -> failed at 2025-11-28T10:00:00Z"},
        {"\"from {{transition.from}}.\"", "team-a", true, "from ."},
        {"'from {{transition.from|default \"nowhere\"}}.'", "team-a", true, "from nowhere."},
        {"'{{resource.owner | default \"a \\\"b\\\" }}\"}}'", "", false, "a \"b\" }}"},
        {"\"{{incident.id}}\"", "team-a", false, "%ID%"},
        {"\"plain text, no braces\"", "team-a", false, "plain text, no braces"},
        {"\"{single} }} braces\"", "team-a", false, "{single} }} braces"},
        {NULL, "team-a", false, "m: job etl in prod: runtime running -> failed"},
        {NULL, "team-a", true, "m: job etl in prod: runtime (none) -> failed"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char *yaml =
            vg_asprintf("monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n"
                        "    severity: high\n%s%s%s"
                        "pagers:\n  - name: p\n    sinks: [s]\n",
                        cases[i].summary ? "    summary: " : "",
                        cases[i].summary ? cases[i].summary : "", cases[i].summary ? "\n" : "");
        struct vg_ruleset *rs = load(yaml);
        struct world w;
        struct vg_pages pages = {0};
        const char *want = cases[i].want;

        world_init(&w, "job", "etl", "prod", cases[i].owner, "v1");
        if (!cases[i].first_event_only) {
            world_apply(&w, NULL, "running", T0_MS - 60000);
        }
        world_apply(&w, NULL, "failed", T0_MS);
        if (world_eval(&w, rs, &pages) != 1) {
            print_error("case %zu: %zu pages\n", i, pages.n);
            failed++;
        } else {
            if (strcmp(want, "%ID%") == 0) {
                want = pages.items[0].incident.id;
            }
            if (strcmp(pages.items[0].incident.summary, want) != 0) {
                print_error("case %zu: %s\n  got  \"%s\"\n  want \"%s\"\n", i,
                            cases[i].summary ? cases[i].summary : "(default)",
                            pages.items[0].incident.summary, want);
                failed++;
            }
        }
        vg_pages_fini(&pages);
        world_fini(&w);
        vg_ruleset_destroy(rs);
        vg_free(yaml);
    }
    assert_int_equal(failed, 0);
}

static const struct vg_page *page_for_sink(const struct vg_pages *pages, const char *sink)
{
    for (size_t i = 0; i < pages->n; i++) {
        if (strcmp(pages->items[i].sink, sink) == 0) {
            return &pages->items[i];
        }
    }
    return NULL;
}

/*
 * One incident from firing to resolved: `from: running` (no `to`) opens on
 * running -> failed, stays open through failed -> pending (no second page),
 * resolves on pending -> running with seq 2, then a new failure opens a new one.
 */
static void test_lifecycle(void **state)
{
    struct vg_ruleset *rs = load("monitors:\n"
                                 "  - name: stopped\n"
                                 "    match: {type: service}\n"
                                 "    when: {runtime: {from: running}}\n"
                                 "    severity: high\n"
                                 "    summary: \"{{resource.name}} is {{resource.runtime}}\"\n"
                                 "  - name: error\n"
                                 "    when: {status: {to: error}}\n"
                                 "    severity: low\n"
                                 "pagers:\n"
                                 "  - name: ops\n"
                                 "    sinks: [a, b]\n");
    struct world w;
    struct vg_pages pages = {0};
    const struct vg_page *pg;
    struct vg_open_incident *inc;
    char inc_id[17];
    char want_id[32];
    char first_id[17];

    (void)state;
    world_init(&w, "service", "api", "prod", "team-a", "v1");
    world_apply(&w, "active", "running", T0_MS);
    assert_int_equal(world_eval(&w, rs, &pages), 0);
    assert_null(vg_resource_find_incident(w.res, "stopped"));

    /* running -> failed: one firing page per sink. */
    world_apply(&w, NULL, "failed", T0_MS + 1000);
    w.res->dirty = false;
    assert_int_equal(world_eval(&w, rs, &pages), 2);
    assert_true(w.res->dirty);
    inc = vg_resource_find_incident(w.res, "stopped");
    assert_non_null(inc);
    assert_int_equal(inc->seq, 1);
    assert_int_equal(inc->started_at_ms, T0_MS + 1000);
    assert_string_equal(inc->severity, "high");
    snprintf(inc_id, sizeof(inc_id), "%s", inc->id);
    snprintf(want_id, sizeof(want_id), "%s-1", inc_id);
    assert_int_equal(pages.n, 2);
    assert_string_equal(pages.items[0].sink, "a");
    assert_string_equal(pages.items[1].sink, "b");
    for (size_t i = 0; i < pages.n; i++) {
        pg = &pages.items[i];
        assert_string_equal(pg->id, want_id);
        assert_string_equal(pg->pager, "ops");
        assert_string_equal(pg->status, "firing");
        assert_string_equal(pg->incident.id, inc_id);
        assert_string_equal(pg->incident.monitor, "stopped");
        assert_string_equal(pg->incident.severity, "high");
        assert_string_equal(pg->incident.summary, "api is failed");
        assert_int_equal(pg->incident.started_at_ms, T0_MS + 1000);
        assert_int_equal(pg->incident.resolved_at_ms, 0);
        assert_string_equal(pg->resource.id, "service:v1:api:prod");
        assert_string_equal(pg->resource.type, "service");
        assert_string_equal(pg->resource.name, "api");
        assert_string_equal(pg->resource.workspace, "prod");
        assert_string_equal(pg->resource.version, "v1");
        assert_string_equal(pg->resource.owner, "team-a");
        assert_string_equal(pg->resource.status, "active");
        assert_string_equal(pg->resource.runtime, "failed");
        assert_string_equal(pg->resource.health, "unhealthy");
        assert_string_equal(pg->transition.field, "runtime");
        assert_string_equal(pg->transition.from, "running");
        assert_string_equal(pg->transition.to, "failed");
        assert_int_equal(pg->transition.at_ms, T0_MS + 1000);
    }
    vg_pages_clear(&pages);

    /* The same transitions again (a retried batch): still open, nothing new. */
    assert_int_equal(world_eval(&w, rs, &pages), 0);
    /* failed -> pending: not back to running, the incident stays open, no page. */
    world_apply(&w, NULL, "pending", T0_MS + 2000);
    w.res->dirty = false;
    assert_int_equal(world_eval(&w, rs, &pages), 0);
    assert_false(w.res->dirty);
    assert_int_equal(vg_resource_find_incident(w.res, "stopped")->seq, 1);

    /* pending -> running: resolved, seq 2, same routing, incident removed. */
    world_apply(&w, NULL, "running", T0_MS + 3000);
    w.res->dirty = false;
    assert_int_equal(world_eval(&w, rs, &pages), 2);
    assert_true(w.res->dirty);
    assert_null(vg_resource_find_incident(w.res, "stopped"));
    snprintf(want_id, sizeof(want_id), "%s-2", inc_id);
    for (size_t i = 0; i < pages.n; i++) {
        pg = &pages.items[i];
        assert_string_equal(pg->id, want_id);
        assert_string_equal(pg->status, "resolved");
        assert_string_equal(pg->incident.id, inc_id);
        assert_int_equal(pg->incident.started_at_ms, T0_MS + 1000);
        assert_int_equal(pg->incident.resolved_at_ms, T0_MS + 3000);
        assert_string_equal(pg->incident.summary, "api is running");
        assert_string_equal(pg->transition.from, "pending");
        assert_string_equal(pg->transition.to, "running");
        assert_string_equal(pg->resource.health, "healthy");
    }
    assert_non_null(page_for_sink(&pages, "a"));
    assert_non_null(page_for_sink(&pages, "b"));
    vg_pages_clear(&pages);

    /* A new failure is a new incident, with a new id (another Kafka position). */
    snprintf(first_id, sizeof(first_id), "%s", inc_id);
    world_apply(&w, NULL, "failed", T0_MS + 4000);
    assert_int_equal(world_eval(&w, rs, &pages), 2);
    assert_string_equal(pages.items[0].status, "firing");
    assert_string_not_equal(pages.items[0].incident.id, first_id);
    assert_int_equal(vg_resource_find_incident(w.res, "stopped")->seq, 1);
    /* The other monitor never fired. */
    assert_null(vg_resource_find_incident(w.res, "error"));

    vg_pages_fini(&pages);
    world_fini(&w);
    vg_ruleset_destroy(rs);
}

/* `to` given: the incident resolves as soon as the field leaves the `to` set. */
static void test_resolve_on_leaving_to(void **state)
{
    struct vg_ruleset *rs = load("monitors:\n"
                                 "  - name: broken\n"
                                 "    when: {status: {to: [error, deleted]}}\n"
                                 "    severity: critical\n"
                                 "pagers:\n"
                                 "  - name: ops\n"
                                 "    sinks: [a]\n");
    struct world w;
    struct vg_pages pages = {0};

    (void)state;
    world_init(&w, "cluster", "c1", "prod", "", "v1");
    world_apply(&w, "error", NULL, T0_MS);
    assert_int_equal(world_eval(&w, rs, &pages), 1);
    world_apply(&w, "deleted", NULL, T0_MS + 1000); /* still in the to-set */
    assert_int_equal(world_eval(&w, rs, &pages), 0);
    world_apply(&w, "active", NULL, T0_MS + 2000);
    assert_int_equal(world_eval(&w, rs, &pages), 1);
    assert_int_equal(pages.n, 2);
    assert_string_equal(pages.items[1].status, "resolved");
    assert_string_equal(pages.items[1].transition.from, "deleted");
    assert_null(vg_resource_find_incident(w.res, "broken"));
    vg_pages_fini(&pages);
    world_fini(&w);
    vg_ruleset_destroy(rs);
}

/*
 * The incident id is a fingerprint of monitor, resource id and the Kafka
 * position of the triggering event: a replay of the same messages (a fresh
 * Resource, same positions) yields the same ids, another position another id.
 */
static void test_replay_same_fingerprint(void **state)
{
    struct vg_ruleset *rs = load("monitors:\n"
                                 "  - name: wf-failed\n"
                                 "    when: {runtime: {to: failed}}\n"
                                 "    severity: high\n"
                                 "pagers:\n"
                                 "  - name: ops\n"
                                 "    sinks: [a]\n");
    struct world w1, w2, w3;
    struct vg_pages p1 = {0}, p2 = {0}, p3 = {0};
    const char *parts[] = {"wf-failed", "workflow:v1:nightly:prod", "vigil.events", "2", "101"};
    char want[17];

    (void)state;
    vg_fingerprint(want, parts, VG_ARRAY_LEN(parts));
    world_init(&w1, "workflow", "nightly", "prod", "", "v1");
    world_init(&w2, "workflow", "nightly", "prod", "", "v1");
    world_init(&w3, "workflow", "nightly", "prod", "", "v1");
    w3.offset = 500;
    world_apply(&w1, NULL, "running", T0_MS);
    world_apply(&w2, NULL, "running", T0_MS);
    world_apply(&w3, NULL, "running", T0_MS);
    world_apply(&w1, NULL, "failed", T0_MS + 1000); /* offset 101 */
    world_apply(&w2, NULL, "failed", T0_MS + 1000);
    world_apply(&w3, NULL, "failed", T0_MS + 1000); /* offset 501 */
    assert_int_equal(world_eval(&w1, rs, &p1), 1);
    assert_int_equal(world_eval(&w2, rs, &p2), 1);
    assert_int_equal(world_eval(&w3, rs, &p3), 1);
    assert_string_equal(p1.items[0].incident.id, want);
    assert_string_equal(p1.items[0].id, p2.items[0].id);
    assert_string_not_equal(p1.items[0].incident.id, p3.items[0].incident.id);
    vg_pages_fini(&p1);
    vg_pages_fini(&p2);
    vg_pages_fini(&p3);
    world_fini(&w1);
    world_fini(&w2);
    world_fini(&w3);
    vg_ruleset_destroy(rs);
}

/*
 * Routing: which (pager, sink) pairs get a page for monitor `monitor` of
 * severity `severity`. Pagers in load order; the first match wins unless it
 * says continue; a sink receives one page even if several pagers name it.
 */
static void test_routing(void **state)
{
    static const char *const pagers =
        "pagers:\n"
        "  - name: oncall\n"
        "    match: {severity: critical}\n"
        "    sinks: [x]\n"
        "    continue: true\n"
        "  - name: db\n"
        "    match: {monitor: \"db-*\"}\n"
        "    sinks: [y, x, y]\n"
        "  - name: prod\n"
        "    match: {workspace: prod, type: [service, job], owner: \"*\", name: \"api*\"}\n"
        "    sinks: [p]\n"
        "  - name: rest\n"
        "    match: {severity: [high, critical]}\n"
        "    sinks: [z]\n";
    static const struct {
        const char *monitor, *severity, *workspace;
        const char *want; /* "pager:sink" joined by spaces, in page order */
    } cases[] = {
        {"db-down", "critical", "prod", "oncall:x db:y"},
        {"db-slow", "low", "prod", "db:y db:x"},
        {"web-down", "critical", "dev", "oncall:x rest:z"},
        {"web-down", "critical", "prod", "oncall:x prod:p"},
        {"web-down", "high", "dev", "rest:z"},
        {"web-down", "low", "dev", ""},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char *yaml = vg_asprintf("monitors:\n  - name: %s\n    when: {runtime: {to: failed}}\n"
                                 "    severity: %s\n%s",
                                 cases[i].monitor, cases[i].severity, pagers);
        struct vg_ruleset *rs = load(yaml);
        struct world w;
        struct vg_pages pages = {0};
        struct vg_buf got = {0};
        size_t n;

        world_init(&w, "service", "api", cases[i].workspace, "", "v1");
        world_apply(&w, NULL, "failed", T0_MS);
        n = world_eval(&w, rs, &pages);
        vg_buf_puts(&got, "");
        for (size_t j = 0; j < pages.n; j++) {
            vg_buf_printf(&got, "%s%s:%s", j ? " " : "", pages.items[j].pager, pages.items[j].sink);
        }
        if (n != pages.n || strcmp(got.data, cases[i].want) != 0 ||
            !vg_resource_find_incident(w.res, cases[i].monitor)) {
            print_error("case %zu: got \"%s\" (%zu), want \"%s\"\n", i, got.data, n, cases[i].want);
            failed++;
        }
        vg_buf_fini(&got);
        vg_pages_fini(&pages);
        world_fini(&w);
        vg_ruleset_destroy(rs);
        vg_free(yaml);
    }
    assert_int_equal(failed, 0);
}

/*
 * Several monitors on one transition: one incident each, ids differ. Only
 * the highest severity pages: by default an incident on a Resource mutes
 * the lower-severity ones on the same Resource (inhibition).
 */
static void test_two_monitors(void **state)
{
    struct vg_ruleset *rs = load("monitors:\n"
                                 "  - name: one\n"
                                 "    when: {runtime: {to: failed}}\n"
                                 "    severity: high\n"
                                 "  - name: two\n"
                                 "    when: {runtime: {from: \"*\", to: [failed]}}\n"
                                 "    severity: low\n"
                                 "  - name: health\n"
                                 "    when: {health: {to: unhealthy}}\n"
                                 "    severity: medium\n"
                                 "pagers:\n"
                                 "  - name: ops\n"
                                 "    sinks: [a]\n");
    struct world w;
    struct vg_pages pages = {0};

    (void)state;
    world_init(&w, "worker", "w1", "prod", "", "v1");
    world_apply(&w, "active", "failed", T0_MS); /* status, runtime and health transitions */
    assert_int_equal(w.n_tr, 3);
    assert_int_equal(world_eval(&w, rs, &pages), 1);
    assert_int_equal(w.res->n_incidents, 3);
    assert_string_equal(pages.items[0].incident.monitor, "one");
    assert_string_not_equal(vg_resource_find_incident(w.res, "one")->id,
                            vg_resource_find_incident(w.res, "two")->id);
    assert_string_not_equal(vg_resource_find_incident(w.res, "two")->id,
                            vg_resource_find_incident(w.res, "health")->id);
    vg_pages_fini(&pages);
    world_fini(&w);
    vg_ruleset_destroy(rs);
}

/*
 * No matching pager: the incident is still recorded (no page). Incidents of
 * monitors that are no longer loaded are left alone.
 */
static void test_unrouted_and_unknown_monitors(void **state)
{
    struct vg_ruleset *rs = load("monitors:\n"
                                 "  - name: quiet\n"
                                 "    when: {runtime: {to: failed}}\n"
                                 "    severity: info\n"
                                 "pagers:\n"
                                 "  - name: loud\n"
                                 "    match: {severity: critical}\n"
                                 "    sinks: [a]\n");
    struct world w;
    struct vg_pages pages = {0};

    (void)state;
    world_init(&w, "job", "j", "prod", "", "v1");
    world_apply(&w, NULL, "running", T0_MS);
    vg_resource_add_incident(w.res, "removed-monitor", "0123456789abcdef", "high", T0_MS);
    world_apply(&w, NULL, "failed", T0_MS + 1000);
    w.res->dirty = false;
    assert_int_equal(world_eval(&w, rs, &pages), 0);
    assert_true(w.res->dirty);
    assert_non_null(vg_resource_find_incident(w.res, "quiet"));
    world_apply(&w, NULL, "running", T0_MS + 2000);
    assert_int_equal(world_eval(&w, rs, &pages), 0);
    assert_null(vg_resource_find_incident(w.res, "quiet"));
    assert_non_null(vg_resource_find_incident(w.res, "removed-monitor"));
    assert_int_equal(pages.n, 0);
    vg_pages_fini(&pages);
    world_fini(&w);
    vg_ruleset_destroy(rs);
}

/* The shipped demo rules route failures and errors to the console. */
static void test_demo_rules(void **state)
{
    static const struct {
        const char *type, *status, *runtime;
        const char *want_monitor; /* NULL: no page */
        const char *want_summary;
    } cases[] = {
        {"workflow", NULL, "failed", "workflow-failed", "nightly failed in prod"},
        {"job", NULL, "failed", "workflow-failed", "nightly failed in prod"},
        {"worker", NULL, "failed", "service-failed", "worker nightly failed in prod"},
        {"batch", NULL, "failed", NULL, NULL},
        {"service", "deleted", NULL, "resource-error", "service nightly is deleted in prod"},
        {"job", NULL, "succeeded", NULL, NULL},
    };
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";
    char *paths[] = {(char *)VIGIL_SOURCE_DIR "/examples/rules"};
    int failed = 0;

    (void)state;
    assert_int_equal(vg_rules_load_paths(rs, paths, 1, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct world w;
        struct vg_pages pages = {0};

        world_init(&w, cases[i].type, "nightly", "prod", "", "v1");
        world_apply(&w, cases[i].status, cases[i].runtime, T0_MS);
        world_eval(&w, rs, &pages);
        if (cases[i].want_monitor
                ? (pages.n != 1 || strcmp(pages.items[0].sink, "console") != 0 ||
                   strcmp(pages.items[0].incident.monitor, cases[i].want_monitor) != 0 ||
                   strcmp(pages.items[0].incident.summary, cases[i].want_summary) != 0)
                : pages.n != 0) {
            print_error("case %zu: %zu pages, first %s \"%s\"\n", i, pages.n,
                        pages.n ? pages.items[0].incident.monitor : "-",
                        pages.n ? pages.items[0].incident.summary : "");
            failed++;
        }
        vg_pages_fini(&pages);
        world_fini(&w);
    }
    vg_ruleset_destroy(rs);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_health_conditions),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_resolve_on_leaving_to),
        cmocka_unit_test(test_replay_same_fingerprint),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_two_monitors),
        cmocka_unit_test(test_unrouted_and_unknown_monitors),
        cmocka_unit_test(test_demo_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
