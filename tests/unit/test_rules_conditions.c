/*
 * Conditions over time, one test per kind, on a fake clock: held
 * state {is, for}, flapping {to, count, within}, absence {silent_for};
 * and how incidents end: resolve_after, stale_after, a deleted Resource,
 * resolve: never with a manual resolve. Also the durable timer members and
 * due times rules ask for, incident records, and replay-stable ids.
 */
#include "test_rules_sim.h"

#define PAGER "pagers:\n  - name: ops\n    sinks: [a]\n"

static void test_held(void **state)
{
    struct sim s;
    const struct vg_incident_record *r;
    char *member;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: stuck\n"
             "    when: {runtime: {is: [pending, failed], for: 10m}}\n"
             "    severity: medium\n"
             "    summary: \"{{resource.name}} {{resource.runtime}} for {{duration}}\"\n" PAGER,
             "workflow", "etl", "prod");
    sim_event(&s, 0, "active", "pending");
    /* pending: one timer at +10m, on the Resource's partition; not an incident yet */
    assert_int_equal(s.mem.timers.n, 1);
    member = vg_rules_timer_member('m', "stuck", "workflow:v1:etl:prod");
    assert_string_equal(s.mem.timers.items[0].member, member);
    vg_free(member);
    assert_string_equal(s.mem.timers.items[0].topic, "vigil.events");
    assert_int_equal(s.mem.timers.items[0].partition, 1);
    assert_int_equal(s.mem.timers.items[0].due_ms, T0 + 10 * MIN);
    assert_string_equal(vg_resource_find_incident(s.res, "stuck")->state, "pending");
    assert_int_equal(s.mem.records.n, 0);
    /* moving within the `is` set keeps the watch (and the deadline) */
    sim_event(&s, 5 * MIN, NULL, "failed");
    assert_int_equal(s.mem.timers.items[0].due_ms, T0 + 10 * MIN);
    sim_advance(&s, T0 + 10 * MIN - 1);
    sim_expect_pages(&s, "");
    sim_advance(&s, T0 + 10 * MIN);
    sim_expect_pages(&s, "firing stuck @600");
    assert_string_equal(s.mem.pages.items[0].incident.summary, "etl failed for 10m");
    assert_string_equal(s.mem.pages.items[0].transition.to, "pending");
    r = sim_record(&s, "stuck");
    assert_non_null(r);
    assert_string_equal(r->state, "firing");
    assert_int_equal(r->seq, 1);
    assert_int_equal(s.mem.timers.n, 0);
    /* leaving the set resolves it */
    sim_event(&s, 12 * MIN, NULL, "running");
    sim_expect_pages(&s, "firing stuck @600, resolved stuck @720");
    assert_string_equal(sim_record(&s, "stuck")->state, "resolved");
    assert_null(vg_resource_find_incident(s.res, "stuck"));
    sim_fini(&s);

    /* leaving before the deadline cancels the timer: nothing ever fires */
    sim_init(&s,
             "monitors:\n"
             "  - name: stuck\n"
             "    when: {runtime: {is: pending, for: 10m}}\n"
             "    severity: medium\n" PAGER,
             "workflow", "etl", "prod");
    sim_event(&s, 0, "active", "pending");
    sim_event(&s, 9 * MIN, NULL, "running");
    assert_int_equal(s.mem.timers.n, 0);
    assert_null(vg_resource_find_incident(s.res, "stuck"));
    sim_advance(&s, T0 + 2 * HOUR);
    sim_expect_pages(&s, "");
    sim_fini(&s);
}

static void test_flapping(void **state)
{
    struct sim s;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: flap\n"
             "    when: {runtime: {to: failed, count: 3, within: 1h}}\n"
             "    severity: high\n" PAGER,
             "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_event(&s, 1 * MIN, NULL, "running");
    sim_event(&s, 30 * MIN, NULL, "failed");
    sim_event(&s, 31 * MIN, NULL, "running");
    /* the first failure left the window: still two */
    sim_event(&s, 61 * MIN, NULL, "failed");
    sim_event(&s, 62 * MIN, NULL, "running");
    sim_expect_pages(&s, "");
    assert_string_equal(vg_resource_find_incident(s.res, "flap")->state, "pending");
    sim_event(&s, 70 * MIN, NULL, "failed");
    sim_expect_pages(&s, "firing flap @4200");
    /* recovering does not resolve it; a quiet hour does */
    sim_event(&s, 71 * MIN, NULL, "running");
    sim_advance(&s, T0 + 130 * MIN - 1);
    sim_expect_pages(&s, "firing flap @4200");
    sim_advance(&s, T0 + 130 * MIN);
    sim_expect_pages(&s, "firing flap @4200, resolved flap @7800");
    sim_fini(&s);
}

static void test_absence(void **state)
{
    struct sim s;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: silent\n"
             "    when: {silent_for: 30m}\n"
             "    severity: low\n" PAGER,
             "service", "api", "prod");
    /* not running: not watched */
    sim_event(&s, 0, "active", "pending");
    assert_int_equal(s.mem.timers.n, 0);
    sim_event(&s, 1 * MIN, NULL, "running");
    assert_int_equal(s.mem.timers.n, 1);
    assert_int_equal(s.mem.timers.items[0].due_ms, T0 + 31 * MIN);
    /* any event restarts the wait, even one that changes nothing */
    sim_event(&s, 20 * MIN, NULL, "running");
    assert_int_equal(s.mem.timers.items[0].due_ms, T0 + 50 * MIN);
    sim_advance(&s, T0 + 50 * MIN);
    sim_expect_pages(&s, "firing silent @3000");
    assert_string_equal(s.mem.pages.items[0].incident.summary,
                        "silent: service api in prod: no event for 30m");
    /* the next event resolves it, and the watch starts again */
    sim_event(&s, 70 * MIN, NULL, "running");
    sim_expect_pages(&s, "firing silent @3000, resolved silent @4200");
    assert_int_equal(s.mem.timers.n, 1);
    assert_int_equal(s.mem.timers.items[0].due_ms, T0 + 100 * MIN);
    /* a failed Resource is not expected to talk */
    sim_event(&s, 80 * MIN, NULL, "failed");
    assert_int_equal(s.mem.timers.n, 0);
    sim_advance(&s, T0 + 10 * HOUR);
    sim_expect_pages(&s, "firing silent @3000, resolved silent @4200");
    sim_fini(&s);
}

static void test_resolve_after(void **state)
{
    struct sim s;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: down\n"
             "    when: {runtime: {to: failed}}\n"
             "    severity: high\n"
             "    resolve_after: 2m\n" PAGER,
             "service", "api", "prod");
    sim_event(&s, 0, "active", "running");
    sim_event(&s, 1 * MIN, NULL, "failed");
    sim_event(&s, 2 * MIN, NULL, "running"); /* good since 2m */
    sim_event(&s, 3 * MIN, NULL, "failed");  /* bad again: no new page */
    sim_event(&s, 4 * MIN, NULL, "running"); /* good since 4m */
    sim_advance(&s, T0 + 6 * MIN - 1);
    sim_expect_pages(&s, "firing down @60");
    sim_advance(&s, T0 + 6 * MIN);
    sim_expect_pages(&s, "firing down @60, resolved down @360");
    /* the resolved page carries the change that made it good */
    assert_string_equal(s.mem.pages.items[1].transition.from, "failed");
    assert_string_equal(s.mem.pages.items[1].transition.to, "running");
    assert_int_equal(s.mem.pages.items[1].incident.resolved_at_ms, T0 + 6 * MIN);
    sim_fini(&s);
}

static void test_stale_and_deleted(void **state)
{
    struct sim s;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: down\n"
             "    when: {runtime: {to: failed}}\n"
             "    severity: high\n"
             "    stale_after: 1h\n" PAGER,
             "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_event(&s, 30 * MIN, "active", NULL); /* heard of: the hour starts again */
    sim_advance(&s, T0 + 90 * MIN - 1);
    sim_expect_pages(&s, "firing down @0");
    sim_advance(&s, T0 + 90 * MIN);
    sim_expect_pages(&s, "firing down @0, stale down @5400");
    assert_string_equal(sim_record(&s, "down")->state, "stale");
    assert_null(vg_resource_find_incident(s.res, "down"));
    sim_fini(&s);

    sim_init(&s,
             "monitors:\n"
             "  - name: down\n"
             "    when: {runtime: {to: failed}}\n"
             "    severity: high\n"
             "  - name: gone\n"
             "    when: {status: {to: deleted}}\n"
             "    severity: info\n" PAGER,
             "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_event(&s, MIN, "deleted", NULL);
    /* "down" ends as deleted; "gone" watches deletion itself and opens */
    sim_expect_pages(&s, "firing down @0, deleted down @60, firing gone @60");
    assert_string_equal(s.mem.pages.items[1].transition.field, "status");
    assert_string_equal(s.mem.pages.items[1].transition.to, "deleted");
    assert_string_equal(sim_record(&s, "down")->state, "deleted");
    sim_fini(&s);
}

static void test_resolve_never(void **state)
{
    struct sim s;
    struct vg_rules_env env;
    char *member;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: manual\n"
             "    when: {status: {to: error}}\n"
             "    severity: critical\n"
             "    resolve: never\n"
             "    stale_after: 1m\n" PAGER,
             "cluster", "c1", "prod");
    sim_event(&s, 0, "error", NULL);
    sim_event(&s, MIN, "active", NULL);
    sim_advance(&s, T0 + 5 * HOUR);
    sim_expect_pages(&s, "firing manual @0");
    assert_true(sim_record(&s, "manual")->resolve_never);
    /* `vigil incidents resolve`: the "x|" member */
    member = vg_rules_timer_member('x', "manual", "cluster:v1:c1:prod");
    s.now = T0 + 6 * HOUR;
    env = sim_env(&s);
    vg_rules_fire(s.rs, &env, s.res, member, &s.out);
    sim_apply_out(&s);
    vg_free(member);
    sim_expect_pages(&s, "firing manual @0, resolved manual @21600");
    assert_string_equal(sim_record(&s, "manual")->state, "resolved");
    sim_fini(&s);
}

static void test_timer_of_unknown_monitor(void **state)
{
    struct sim s;
    struct vg_rules_env env;

    (void)state;
    sim_init(&s, "monitors:\n  - name: m\n    when: {runtime: {to: failed}}\n    severity: high\n",
             "job", "j", "prod");
    sim_event(&s, 0, NULL, "running");
    env = sim_env(&s);
    vg_rules_fire(s.rs, &env, s.res, "m|gone|job:v1:j:prod", &s.out);
    vg_rules_fire(s.rs, &env, s.res, "m|m|job:v1:other:prod", &s.out);
    vg_rules_fire(s.rs, &env, s.res, "garbage", &s.out);
    assert_int_equal(s.out.pages.n, 0);
    assert_int_equal(s.out.timers.n, 0);
    assert_int_equal(s.out.records.n, 0);
    sim_fini(&s);
}

/* The same messages replayed into a fresh state yield the same ids and pages. */
static void test_replay(void **state)
{
    const char *yaml = "monitors:\n"
                       "  - name: stuck\n"
                       "    when: {runtime: {is: pending, for: 10m}}\n"
                       "    severity: medium\n" PAGER;
    struct sim a;
    struct sim b;

    (void)state;
    sim_init(&a, yaml, "job", "j", "prod");
    sim_init(&b, yaml, "job", "j", "prod");
    sim_event(&a, 0, "active", "pending");
    sim_event(&b, 0, "active", "pending");
    sim_advance(&a, T0 + HOUR);
    sim_advance(&b, T0 + HOUR);
    assert_int_equal(a.mem.pages.n, 1);
    assert_int_equal(b.mem.pages.n, 1);
    assert_string_equal(a.mem.pages.items[0].id, b.mem.pages.items[0].id);
    assert_string_equal(a.mem.pages.items[0].incident.id, b.mem.pages.items[0].incident.id);
    sim_fini(&a);
    sim_fini(&b);
}

static void test_templates(void **state)
{
    struct sim s;
    struct vg_label labels[] = {{(char *)"app.kubernetes.io/name", (char *)"api"},
                                {(char *)"team", (char *)"data"}};
    const struct vg_page *pg;

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: m\n"
             "    when: {runtime: {to: failed}}\n"
             "    severity: high\n"
             "    incident: api-down\n"
             "    labels: {team: \"{{labels.team}}-oncall\", tier: gold}\n"
             "    summary: \"{{labels.team}}/{{labels.tier}} {{labels.app.kubernetes.io/name}} "
             "{{incident.type}} {{reason | default \\\"-\\\"}} {{pod | default \\\"-\\\"}} "
             "{{labels.nope | default \\\"none\\\"}} {{incident.state}}\"\n"
             "    description: \"{{resource.message | default \\\"no message\\\"}}\"\n" PAGER,
             "service", "api", "prod");
    sim_event(&s, 0, "active", "running");
    s.res->labels = vg_labels_copy(labels, 2);
    s.res->n_labels = 2;
    sim_event(&s, MIN, NULL, "failed");
    assert_int_equal(s.mem.pages.n, 1);
    pg = &s.mem.pages.items[0];
    assert_string_equal(pg->incident.summary, "data-oncall/gold api api-down - - none firing");
    assert_string_equal(pg->description, "no message");
    assert_string_equal(pg->incident_type, "api-down");
    assert_int_equal(pg->n_labels, 3);
    assert_string_equal(pg->labels[0].key, "app.kubernetes.io/name");
    assert_string_equal(pg->labels[1].key, "team");
    assert_string_equal(pg->labels[1].value, "data-oncall");
    assert_string_equal(pg->labels[2].key, "tier");
    sim_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held),
        cmocka_unit_test(test_flapping),
        cmocka_unit_test(test_absence),
        cmocka_unit_test(test_resolve_after),
        cmocka_unit_test(test_stale_and_deleted),
        cmocka_unit_test(test_resolve_never),
        cmocka_unit_test(test_timer_of_unknown_monitor),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
