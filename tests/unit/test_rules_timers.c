/*
 * The shared timer engine (rules/rules_timers.c) on a fake clock, through
 * the in-memory store (rules/rules_mem.c) that `vigil test` uses: each
 * timer kind fires when due and not before (for, silent_for,
 * resolve_after, stale_after, flapping's within, repeat_interval, a mute
 * window's and a silence's end, group_wait, a manual resolve), and what a
 * round does: Resource timers before group buffers, fired members removed,
 * a gone Resource only loses its timer, a group buffer keeps the latest
 * notification per incident and gets a stable page id, and a failed commit
 * leaves everything due.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"
#include "vigil/util.h"

#define T0 INT64_C(1767607200000) /* 2026-01-05T10:00:00Z, a Monday */
#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static char batch_workflow[] = "workflow";
static char *batch_types[] = {batch_workflow};
static const struct vg_health_config hc = {batch_types, 1};

/* Rules, the in-memory store, and the Kafka offset of the next event. */
struct world {
    struct vg_ruleset *rs;
    struct vg_rules_mem mem;
    struct vg_rules_out out;
    int64_t offset;
};

static void world_init(struct world *w, const char *yaml)
{
    char errstr[512] = "";

    memset(w, 0, sizeof(*w));
    w->rs = vg_ruleset_new();
    if (vg_rules_load_string(w->rs, "t.yaml", yaml, strlen(yaml), errstr, sizeof(errstr)) !=
        VG_OK) {
        fail_msg("%s\n%s", errstr, yaml);
    }
    w->mem.now_ms = T0;
    w->offset = 1;
}

static void world_fini(struct world *w)
{
    vg_ruleset_destroy(w->rs);
    vg_rules_mem_fini(&w->mem);
    vg_rules_out_fini(&w->out);
}

static void run_to(struct world *w, int64_t at)
{
    char errstr[256] = "";

    assert_int_equal(vg_rules_mem_run_until(&w->mem, w->rs, T0 + at, 10000, errstr, sizeof(errstr)),
                     VG_OK);
}

/* At T0 + at, an event of workflow `name` in workspace w (status/runtime NULL: absent). */
static void event(struct world *w, int64_t at, const char *name, const char *status,
                  const char *runtime)
{
    struct vg_event ev;
    struct vg_transition tr[3];
    struct vg_rules_env env;
    struct vg_resource *res;
    size_t nt;

    run_to(w, at);
    memset(&ev, 0, sizeof(ev));
    ev.type = vg_strdup("workflow");
    ev.name = vg_strdup(name);
    ev.workspace = vg_strdup("w");
    ev.version = vg_strdup("v1");
    ev.owner = vg_strdup("o");
    ev.id = vg_resource_id("workflow", "v1", name, "w");
    snprintf(ev.status, sizeof(ev.status), "%s", status ? status : "");
    snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtime ? runtime : "");
    ev.time_ms = T0 + at;
    ev.pos.topic = vg_strdup("events");
    ev.pos.partition = 0;
    ev.pos.offset = w->offset++;
    res = vg_rules_mem_resource(&w->mem, ev.id);
    if (!res) {
        res = vg_resource_new_from_event(&ev);
        vg_rules_mem_put_resource(&w->mem, res);
    }
    nt = vg_resource_apply(&hc, res, &ev, tr);
    env = vg_rules_mem_env(&w->mem);
    vg_rules_eval_event(w->rs, &env, res, &ev, tr, nt, &w->out);
    vg_rules_mem_apply(&w->mem, &w->out);
    vg_rules_out_clear(&w->out);
    res->dirty = false;
    vg_event_fini(&ev);
}

/* The outbox: "<status> <monitor>@<seconds>" or "group(<n>)@<seconds>", comma-separated. */
static char *outbox(const struct world *w)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "");
    for (size_t i = 0; i < w->mem.n_sent; i++) {
        const struct vg_rules_sent *e = &w->mem.sent[i];
        long long at = (long long)((e->at_ms - T0) / SEC);

        if (e->group_body) {
            vg_buf_printf(&b, "%sgroup(%zu)@%lld", i ? ", " : "", e->n_incidents, at);
        } else {
            vg_buf_printf(&b, "%s%s %s@%lld", i ? ", " : "", e->pg.status, e->pg.incident.monitor,
                          at);
        }
    }
    return vg_buf_steal(&b);
}

#define PAGER "pagers:\n  - name: p\n    sinks: [console]\n"

/* ---- each timer kind fires when due, and not a millisecond before ---- */

struct step {
    int64_t at;
    const char *name;
    const char *status;
    const char *runtime;
};

static const struct {
    const char *kind;
    const char *rules;
    struct step steps[4];
    int64_t due;      /* when the timer fires (relative to T0) */
    const char *want; /* the outbox at `due` (one millisecond before: without the last page) */
    const char *before;
} kinds[] = {
    {"for",
     "monitors:\n  - name: m\n    when: {runtime: {is: pending, for: 10m}}\n    severity: "
     "high\n" PAGER,
     {{0, "a", "active", "pending"}},
     10 * MIN,
     "firing m@600",
     ""},
    {"silent_for",
     "monitors:\n  - name: m\n    when: {silent_for: 30m}\n    severity: high\n" PAGER,
     {{0, "a", "active", "running"}},
     30 * MIN,
     "firing m@1800",
     ""},
    {"resolve_after",
     "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
     "    resolve_after: 2m\n" PAGER,
     {{0, "a", "active", "running"}, {MIN, "a", NULL, "failed"}, {2 * MIN, "a", NULL, "running"}},
     4 * MIN,
     "firing m@60, resolved m@240",
     "firing m@60"},
    {"stale_after",
     "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
     "    stale_after: 1h\n" PAGER,
     {{0, "a", "active", "failed"}},
     HOUR,
     "firing m@0, stale m@3600",
     "firing m@0"},
    {"flapping within",
     "monitors:\n  - name: m\n    when: {runtime: {to: failed, count: 2, within: 10m}}\n"
     "    severity: high\n" PAGER,
     {{0, "a", "active", "failed"}, {MIN, "a", NULL, "running"}, {2 * MIN, "a", NULL, "failed"}},
     12 * MIN,
     "firing m@120, resolved m@720",
     "firing m@120"},
    {"repeat_interval",
     "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
     "pagers:\n  - name: p\n    sinks: [console]\n    repeat_interval: 1h\n",
     {{0, "a", "active", "failed"}},
     HOUR,
     "firing m@0, firing m@3600",
     "firing m@0"},
    {"mute window end",
     "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
     "pagers:\n  - name: p\n    sinks: [console]\n    mute: [{between: \"09:00-11:00\"}]\n",
     {{0, "a", "active", "failed"}},
     HOUR, /* T0 is 10:00 UTC */
     "firing m@3600",
     ""},
    {"group_wait",
     "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
     "pagers:\n  - name: p\n    sinks: [console]\n    group_by: [workspace]\n"
     "    group_wait: 45s\n",
     {{0, "a", "active", "failed"}, {10 * SEC, "b", "active", "failed"}},
     45 * SEC,
     "group(2)@45",
     ""},
};

static void test_each_kind(void **state)
{
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(kinds); i++) {
        struct world w;
        char *before;
        char *at;

        world_init(&w, kinds[i].rules);
        for (size_t k = 0; k < VG_ARRAY_LEN(kinds[i].steps) && kinds[i].steps[k].name; k++) {
            const struct step *s = &kinds[i].steps[k];

            event(&w, s->at, s->name, s->status, s->runtime);
        }
        run_to(&w, kinds[i].due - 1);
        before = outbox(&w);
        run_to(&w, kinds[i].due);
        at = outbox(&w);
        if (strcmp(before, kinds[i].before) != 0 || strcmp(at, kinds[i].want) != 0) {
            print_error("%s: before \"%s\" (want \"%s\"), at due \"%s\" (want \"%s\")\n",
                        kinds[i].kind, before, kinds[i].before, at, kinds[i].want);
            failed++;
        }
        vg_free(before);
        vg_free(at);
        world_fini(&w);
    }
    assert_int_equal(failed, 0);
}

/* A silence's end and a manual resolve are timers too. */
static void test_silence_end_and_manual_resolve(void **state)
{
    struct world w;
    char *matchers[] = {(char *)"monitor=m"};
    struct vg_silence si = {.id = (char *)"s1",
                            .matchers = matchers,
                            .n_matchers = 1,
                            .starts_at_ms = T0,
                            .ends_at_ms = T0 + 20 * MIN};
    struct vg_timer x = {.topic = (char *)"events", .partition = 0, .due_ms = T0 + HOUR};
    char *got;

    (void)state;
    world_init(&w, "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n"
                   "    severity: high\n    resolve: never\n" PAGER);
    w.mem.silences = &si;
    w.mem.n_silences = 1;
    event(&w, 0, "a", "active", "failed");
    run_to(&w, 20 * MIN - 1);
    assert_int_equal(w.mem.n_sent, 0);
    run_to(&w, 20 * MIN);
    got = outbox(&w);
    assert_string_equal(got, "firing m@1200");
    vg_free(got);
    /* `vigil incidents resolve`: an "x" timer due now, where the Resource's timers are */
    x.member = vg_rules_timer_member('x', "m", "workflow:v1:a:w");
    vg_rules_mem_set_timer(&w.mem, &x);
    vg_free(x.member);
    run_to(&w, 2 * HOUR);
    got = outbox(&w);
    assert_string_equal(got, "firing m@1200, resolved m@3600");
    vg_free(got);
    assert_int_equal(w.mem.timers.n, 0);
    world_fini(&w);
}

/* ---- what one round does ---- */

/*
 * A Resource timer and a group buffer's timer due at the same instant:
 * the Resource timer fires first, so its page is in the grouped page.
 */
static void test_resource_timers_before_groups(void **state)
{
    struct world w;
    char *got;

    (void)state;
    world_init(&w, "monitors:\n"
                   "  - name: failed\n    when: {runtime: {to: failed}}\n    severity: high\n"
                   "  - name: stuck\n    when: {runtime: {is: pending, for: 30s}}\n"
                   "    severity: high\n"
                   "pagers:\n  - name: p\n    sinks: [console]\n    group_by: [workspace]\n");
    event(&w, 0, "a", "active", "failed");  /* into the buffer: flushed at 30s */
    event(&w, 0, "b", "active", "pending"); /* its timer: also due at 30s */
    assert_int_equal(w.mem.timers.n, 2);
    run_to(&w, 5 * MIN);
    got = outbox(&w);
    assert_string_equal(got, "group(2)@30");
    vg_free(got);
    assert_int_equal(w.mem.timers.n, 0);
    assert_int_equal(w.mem.n_groups, 0);
    world_fini(&w);
}

/*
 * A buffer holds the latest notification of each incident, its timer is
 * its first page's, and the same buffer always gives the same page id.
 */
static void test_group_buffer(void **state)
{
    static const char *const yaml =
        "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
        "pagers:\n  - name: p\n    sinks: [console]\n    group_by: [workspace]\n"
        "    group_wait: 1m\n    send_resolved: true\n";
    struct world w1;
    struct world w2;
    struct vg_pages incs = {0};
    char errstr[256];

    (void)state;
    world_init(&w1, yaml);
    world_init(&w2, yaml);
    event(&w1, 0, "a", "active", "failed");
    event(&w1, 20 * SEC, "a", NULL, "running"); /* resolved: replaces the firing one */
    event(&w1, 40 * SEC, "b", "active", "failed");
    assert_int_equal(w1.mem.timers.n, 1);
    assert_int_equal(w1.mem.timers.items[0].due_ms, T0 + MIN); /* NX: the first page's */
    run_to(&w1, 2 * MIN);
    assert_int_equal(w1.mem.n_sent, 1);
    assert_int_equal(w1.mem.sent[0].at_ms, T0 + MIN);
    assert_int_equal(w1.mem.sent[0].n_incidents, 2);
    assert_string_equal(w1.mem.sent[0].pg.sink, "console");
    assert_string_equal(w1.mem.sent[0].pg.pager, "p");
    assert_int_equal(vg_page_group_from_json(&incs, w1.mem.sent[0].group_body,
                                             strlen(w1.mem.sent[0].group_body), errstr,
                                             sizeof(errstr)),
                     VG_OK);
    assert_int_equal(incs.n, 2);
    assert_string_equal(incs.items[0].status, "resolved"); /* a: its latest notification */
    assert_string_equal(incs.items[1].status, "firing");
    assert_string_equal(incs.items[0].group, "workspace=w");
    vg_pages_fini(&incs);
    /* the same buffer built again: the same idempotency key */
    event(&w2, 0, "a", "active", "failed");
    event(&w2, 20 * SEC, "a", NULL, "running");
    event(&w2, 40 * SEC, "b", "active", "failed");
    run_to(&w2, 2 * MIN);
    assert_int_equal(w2.mem.n_sent, 1);
    assert_string_equal(w1.mem.sent[0].pg.id, w2.mem.sent[0].pg.id);
    assert_string_equal(w1.mem.sent[0].group_body, w2.mem.sent[0].group_body);
    assert_non_null(strstr(w1.mem.sent[0].pg.id, "-g"));
    world_fini(&w1);
    world_fini(&w2);
}

/*
 * group_limit: the page lists that many incidents, firing before ended and
 * then the latest transition first, and counts them all; n_incidents (what
 * `vigil test` checks) is the group's total.
 */
static void test_group_limit(void **state)
{
    static const char *const yaml =
        "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n"
        "pagers:\n  - name: p\n    sinks: [console]\n    group_by: [workspace]\n"
        "    group_wait: 1m\n    group_limit: 2\n";
    static const char *const names[] = {"a", "b", "c", "d", "e"};
    struct world w;
    struct vg_pages incs = {0};
    char errstr[256];
    cJSON *body;

    (void)state;
    world_init(&w, yaml);
    for (int i = 0; i < 5; i++) {
        event(&w, i * SEC, names[i], "active", "failed");
    }
    /* the two latest failures end: the two latest still firing are c and b */
    event(&w, 10 * SEC, "e", NULL, "running");
    event(&w, 11 * SEC, "d", NULL, "running");
    run_to(&w, 2 * MIN);
    assert_int_equal(w.mem.n_sent, 1);
    assert_int_equal(w.mem.sent[0].n_incidents, 5);
    body = cJSON_Parse(w.mem.sent[0].group_body);
    assert_non_null(body);
    assert_int_equal(cJSON_GetObjectItem(body, "truncated")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "counts"), "firing")->valueint,
                     3);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "counts"), "resolved")->valueint,
                     2);
    assert_string_equal(cJSON_GetObjectItem(body, "status")->valuestring, "firing");
    cJSON_Delete(body);
    assert_int_equal(vg_page_group_from_json(&incs, w.mem.sent[0].group_body,
                                             strlen(w.mem.sent[0].group_body), errstr,
                                             sizeof(errstr)),
                     VG_OK);
    assert_int_equal(incs.n, 2);
    /* listed in started_at order */
    assert_string_equal(incs.items[0].resource.name, "b");
    assert_string_equal(incs.items[1].resource.name, "c");
    assert_string_equal(incs.items[0].status, "firing");
    assert_string_equal(incs.items[1].status, "firing");
    vg_pages_fini(&incs);
    world_fini(&w);
}

/* Fired members are removed; a gone Resource, an empty buffer, a foreign member: only that. */
static void test_leftovers_only_lose_their_timer(void **state)
{
    struct world w;
    struct vg_timer t[] = {
        {.topic = (char *)"events", .member = (char *)"m|m|workflow:v1:gone:w", .due_ms = T0},
        {.topic = (char *)"events", .member = (char *)"garbage", .due_ms = T0},
        {.topic = NULL, .member = (char *)"p|console|workspace=w", .due_ms = T0},
    };

    (void)state;
    world_init(&w, "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n"
                   "    severity: high\n" PAGER);
    for (size_t i = 0; i < VG_ARRAY_LEN(t); i++) {
        vg_rules_mem_set_timer(&w.mem, &t[i]);
    }
    assert_int_equal(w.mem.timers.n, 3);
    run_to(&w, 0);
    assert_int_equal(w.mem.timers.n, 0);
    assert_int_equal(w.mem.n_sent, 0);
    assert_int_equal(w.mem.records.n, 0);
    world_fini(&w);
}

/* A store whose commit fails: the in-memory one, but `fail` commits fail. */
struct failing {
    struct vg_rules_mem *mem;
    const struct vg_rules_store *inner;
    int fail;
    int group_loads;
};

static vg_err_t failing_load_resources(void *ctx, const char *const *ids, size_t n,
                                       struct vg_resource **res, char *errstr, size_t errstr_size)
{
    struct failing *f = ctx;

    for (size_t i = 0; i < n; i++) {
        res[i] = vg_rules_mem_resource(f->mem, ids[i]);
    }
    (void)errstr;
    (void)errstr_size;
    return VG_OK;
}

static vg_err_t failing_commit(void *ctx, const struct vg_rules_fired *fx, char *errstr,
                               size_t errstr_size)
{
    struct failing *f = ctx;

    (void)fx;
    if (f->fail > 0) {
        f->fail--;
        snprintf(errstr, errstr_size, "redis unavailable");
        return VG_ERR_BACKEND;
    }
    vg_rules_mem_apply(f->mem, fx->out);
    return VG_OK;
}

static vg_err_t failing_load_group(void *ctx, const char *member, size_t limit,
                                   struct vg_rules_group *g, char *errstr, size_t errstr_size)
{
    struct failing *f = ctx;

    (void)member;
    (void)limit;
    (void)errstr;
    (void)errstr_size;
    f->group_loads++;
    memset(g, 0, sizeof(*g));
    return VG_OK;
}

static vg_err_t failing_commit_group(void *ctx, const char *member,
                                     const struct vg_rules_grouped *gp, char *errstr,
                                     size_t errstr_size)
{
    (void)ctx;
    (void)member;
    (void)gp;
    (void)errstr;
    (void)errstr_size;
    return VG_OK;
}

static void test_failed_commit_leaves_everything_due(void **state)
{
    struct world w;
    struct failing f = {.fail = 1};
    const struct vg_rules_store store = {.ctx = &f,
                                         .load_resources = failing_load_resources,
                                         .commit = failing_commit,
                                         .load_group = failing_load_group,
                                         .commit_group = failing_commit_group};
    struct vg_rules_due due[2];
    struct vg_rules_env env;
    char errstr[256] = "";

    (void)state;
    world_init(&w, "monitors:\n  - name: m\n    when: {runtime: {is: pending, for: 10m}}\n"
                   "    severity: high\n" PAGER);
    f.mem = &w.mem;
    event(&w, 0, "a", "active", "pending");
    assert_int_equal(w.mem.timers.n, 1);
    /* a group timer listed first still waits for the Resource timers */
    due[0] = (struct vg_rules_due){.topic = NULL, .member = "p|console|workspace=w"};
    due[1] = (struct vg_rules_due){.topic = w.mem.timers.items[0].topic,
                                   .partition = w.mem.timers.items[0].partition,
                                   .member = w.mem.timers.items[0].member};
    w.mem.now_ms = T0 + 10 * MIN;
    env = vg_rules_mem_env(&w.mem);
    assert_int_equal(vg_rules_timers_fire(w.rs, &env, &store, due, 2, errstr, sizeof(errstr)),
                     VG_ERR_BACKEND);
    assert_string_equal(errstr, "redis unavailable");
    assert_int_equal(f.group_loads, 0); /* the round stopped at the first error */
    assert_int_equal(w.mem.timers.n, 1);
    assert_int_equal(w.mem.n_sent, 0);
    world_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_kind),
        cmocka_unit_test(test_silence_end_and_manual_resolve),
        cmocka_unit_test(test_resource_timers_before_groups),
        cmocka_unit_test(test_group_buffer),
        cmocka_unit_test(test_group_limit),
        cmocka_unit_test(test_leftovers_only_lose_their_timer),
        cmocka_unit_test(test_failed_commit_leaves_everything_due),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
