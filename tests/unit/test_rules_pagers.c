/*
 * Pagers: match keys (monitor, incident, severity, identity,
 * resource, labels.*, not:), grouping (group key and labels, group_wait),
 * repeat_interval, send_resolved, mute windows in a time zone, silences
 * (matchers, start/end, page when the silence ends), and inhibition
 * (default by severity, explicit same-Resource and across Resources).
 */
#include "rules_int.h"
#include "test_rules_sim.h"

#define MON_FAILED(name, sev)                                                                      \
    "  - name: " name "\n    when: {runtime: {to: failed}}\n    severity: " sev "\n"

static void test_pager_match_keys(void **state)
{
    static const struct {
        const char *match;
        bool want;
    } cases[] = {
        {"{monitor: down}", true},
        {"{monitor: \"d*\"}", true},
        {"{monitor: up}", false},
        {"{incident: api-down}", true},
        {"{incident: other}", false},
        {"{severity: [high, critical]}", true},
        {"{severity: low}", false},
        {"{type: service, workspace: prod, name: api, owner: team-a}", true},
        {"{resource: \"service:*:api:prod\"}", true},
        {"{resource: \"job:*\"}", false},
        {"{labels.team: data}", true},
        {"{labels.tier: gold}", true},
        {"{labels.team: web}", false},
        {"{labels.missing: \"*\"}", true},
        {"{not: {workspace: prod}}", false},
        {"{not: {workspace: dev}, labels.team: data}", true},
        {"{not: {labels.team: [web, data]}}", false},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char *yaml = vg_asprintf("monitors:\n"
                                 "  - name: down\n"
                                 "    when: {runtime: {to: failed}}\n"
                                 "    severity: high\n"
                                 "    incident: api-down\n"
                                 "    labels: {tier: gold}\n"
                                 "pagers:\n"
                                 "  - name: p\n"
                                 "    match: %s\n"
                                 "    sinks: [a]\n",
                                 cases[i].match);
        struct vg_label l = {(char *)"team", (char *)"data"};
        struct sim s;

        sim_init(&s, yaml, "service", "api", "prod");
        sim_event(&s, 0, "active", "running");
        s.res->labels = vg_labels_copy(&l, 1);
        s.res->n_labels = 1;
        sim_event(&s, MIN, NULL, "failed");
        if ((s.mem.pages.n == 1) != cases[i].want) {
            print_error("case %zu: match %s: %zu pages, want %d\n", i, cases[i].match,
                        s.mem.pages.n, cases[i].want);
            failed++;
        }
        sim_fini(&s);
        vg_free(yaml);
    }
    assert_int_equal(failed, 0);
}

static void test_monitor_labels_match(void **state)
{
    struct sim s;
    struct vg_label l = {(char *)"app", (char *)"ingest"};

    (void)state;
    sim_init(&s,
             "monitors:\n"
             "  - name: m\n"
             "    match: {labels.app: \"ing*\", not: {name: \"tmp-*\"}}\n"
             "    when: {runtime: {to: failed}}\n"
             "    severity: high\n"
             "pagers:\n  - name: p\n    sinks: [a]\n",
             "service", "api", "prod");
    sim_event(&s, 0, "active", "running");
    sim_event(&s, MIN, NULL, "failed"); /* no labels yet: no match */
    sim_event(&s, 2 * MIN, NULL, "running");
    s.res->labels = vg_labels_copy(&l, 1);
    s.res->n_labels = 1;
    sim_event(&s, 3 * MIN, NULL, "failed");
    sim_expect_pages(&s, "firing m @180");
    sim_fini(&s);
}

static void test_grouping(void **state)
{
    struct sim s;
    const struct vg_page *pg;

    (void)state;
    sim_init(
        &s,
        "monitors:\n" MON_FAILED("down", "high") "pagers:\n"
                                                 "  - name: team\n"
                                                 "    sinks: [a, b]\n"
                                                 "    group_by: [workspace, monitor, labels.team]\n"
                                                 "    group_wait: 45s\n",
        "workflow", "etl", "public");
    sim_event(&s, 0, "active", "failed");
    assert_int_equal(s.mem.pages.n, 2);
    pg = &s.mem.pages.items[0];
    assert_string_equal(pg->group, "workspace=public,monitor=down,labels.team=");
    assert_int_equal(pg->n_group_labels, 3);
    assert_string_equal(pg->group_labels[0].key, "workspace");
    assert_string_equal(pg->group_labels[0].value, "public");
    assert_string_equal(pg->group_labels[2].key, "labels.team");
    assert_int_equal(pg->group_wait_ms, 45 * SEC);
    assert_int_equal(pg->at_ms, T0);
    sim_fini(&s);

    /* group_by alone: group_wait defaults to 30s */
    sim_init(&s,
             "monitors:\n" MON_FAILED(
                 "down", "high") "pagers:\n"
                                 "  - name: team\n    sinks: [a]\n    group_by: [workspace]\n",
             "workflow", "etl", "public");
    sim_event(&s, 0, "active", "failed");
    assert_int_equal(s.mem.pages.items[0].group_wait_ms, 30 * SEC);
    sim_fini(&s);
}

static void test_repeat_and_send_resolved(void **state)
{
    struct sim s;

    (void)state;
    sim_init(
        &s,
        "monitors:\n" MON_FAILED("down", "high") "pagers:\n"
                                                 "  - name: loud\n    sinks: [a]\n    "
                                                 "repeat_interval: 1h\n    send_resolved: false\n",
        "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_advance(&s, T0 + 150 * MIN);
    sim_event(&s, 150 * MIN, NULL, "running");
    sim_advance(&s, T0 + 5 * HOUR);
    /* fired, repeated at 1h and 2h, no resolved page */
    sim_expect_pages(&s, "firing down @0, firing down @3600, firing down @7200");
    assert_string_equal(s.mem.pages.items[0].id + 17, "1");
    assert_string_equal(s.mem.pages.items[1].id + 17, "2");
    assert_string_equal(s.mem.pages.items[2].id + 17, "3");
    assert_string_equal(sim_record(&s, "down")->state, "resolved");
    sim_fini(&s);
}

/* Mute windows through the pager of a loaded ruleset (private header). */
static void test_mute_windows(void **state)
{
    static const struct {
        const char *mute;
        const char *now; /* UTC */
        bool muted;
        const char *until; /* UTC, when muted */
    } cases[] = {
        /* 2026-01-06 is a Tuesday; Berlin is UTC+1 in January, UTC+2 in July */
        {"[{between: \"22:00-07:00\", tz: Europe/Berlin}]", "2026-01-06T20:59:00Z", false, NULL},
        {"[{between: \"22:00-07:00\", tz: Europe/Berlin}]", "2026-01-06T21:00:00Z", true,
         "2026-01-07T06:00:00Z"},
        {"[{between: \"22:00-07:00\", tz: Europe/Berlin}]", "2026-01-07T05:59:30Z", true,
         "2026-01-07T06:00:00Z"},
        {"[{between: \"22:00-07:00\", tz: Europe/Berlin}]", "2026-07-07T20:30:00Z", true,
         "2026-07-08T05:00:00Z"},
        {"[{between: \"22:00-07:00\", tz: Europe/Berlin}]", "2026-07-07T19:59:00Z", false, NULL},
        {"[{between: \"09:00-17:00\", tz: America/New_York}]", "2026-01-06T14:00:00Z", true,
         "2026-01-06T22:00:00Z"},
        {"[{between: \"09:00-17:00\", tz: America/New_York}]", "2026-01-06T13:59:00Z", false, NULL},
        {"[{days: [sat, sun]}]", "2026-01-10T00:00:00Z", true, "2026-01-12T00:00:00Z"},
        {"[{days: [sat, sun]}]", "2026-01-09T23:59:00Z", false, NULL},
        {"[{days: [sat, sun], tz: Asia/Tokyo}]", "2026-01-09T15:00:00Z", true,
         "2026-01-11T15:00:00Z"},
        /* overnight windows belong to the day they start on */
        {"[{days: [fri], between: \"22:00-02:00\"}]", "2026-01-10T01:00:00Z", true,
         "2026-01-10T02:00:00Z"},
        {"[{days: [fri], between: \"22:00-02:00\"}]", "2026-01-11T01:00:00Z", false, NULL},
        /* two entries chain */
        {"[{days: [sat, sun]}, {between: \"00:00-08:00\"}]", "2026-01-11T23:00:00Z", true,
         "2026-01-12T08:00:00Z"},
        {"[{between: \"12:00-13:00\", tz: Australia/Sydney}]", "2026-01-06T01:30:00Z", true,
         "2026-01-06T02:00:00Z"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char *yaml =
            vg_asprintf("pagers:\n  - name: p\n    sinks: [a]\n    mute: %s\n", cases[i].mute);
        struct vg_ruleset *rs = sim_load(yaml);
        int64_t now = 0;
        int64_t until = 0;
        int64_t want_until = 0;
        bool muted;

        assert_true(vg_time_parse_rfc3339(cases[i].now, strlen(cases[i].now), &now));
        if (cases[i].until) {
            assert_true(vg_time_parse_rfc3339(cases[i].until, strlen(cases[i].until), &want_until));
        }
        muted = rules_pager_muted(rs->pagers[0], now, &until);
        if (muted != cases[i].muted || (muted && until != want_until)) {
            char got[40];

            vg_time_format_rfc3339(until, got, sizeof(got));
            print_error("case %zu: %s at %s: muted %d until %s, want %d until %s\n", i,
                        cases[i].mute, cases[i].now, muted, got, cases[i].muted,
                        cases[i].until ? cases[i].until : "-");
            failed++;
        }
        vg_ruleset_destroy(rs);
        vg_free(yaml);
    }
    assert_int_equal(failed, 0);
}

/* A muted notification is sent when the window ends (a resolved one too). */
static void test_mute_defers(void **state)
{
    struct sim s;

    (void)state;
    /* T0 is Monday 10:00Z */
    sim_init(
        &s,
        "monitors:\n" MON_FAILED(
            "down", "high") "pagers:\n"
                            "  - name: p\n    sinks: [a]\n    mute: [{between: \"10:00-11:00\"}]\n",
        "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_advance(&s, T0 + HOUR - 1);
    sim_expect_pages(&s, "");
    sim_advance(&s, T0 + HOUR);
    sim_expect_pages(&s, "firing down @3600");
    sim_fini(&s);
}

static void add_silence(struct sim *s, const char *m1, const char *m2, int64_t from, int64_t to)
{
    struct vg_silence *si;

    s->silences = vg_realloc(s->silences, (s->n_silences + 1) * sizeof(*s->silences));
    si = &s->silences[s->n_silences++];
    memset(si, 0, sizeof(*si));
    si->id = vg_asprintf("s%zu", s->n_silences);
    si->matchers = vg_calloc(3, sizeof(char *));
    si->matchers[si->n_matchers++] = vg_strdup(m1);
    if (m2) {
        si->matchers[si->n_matchers++] = vg_strdup(m2);
    }
    si->starts_at_ms = from;
    si->ends_at_ms = to;
}

static void test_silences(void **state)
{
    static const struct {
        const char *m1, *m2;
        bool silenced;
    } cases[] = {
        {"monitor=down", NULL, true},
        {"monitor=up", NULL, false},
        {"resource=service:*:api:*", NULL, true},
        {"monitor=down", "workspace=dev", false},
        {"severity=high", "name=a*", true},
        {"labels.tier=gold", NULL, true},
        {"incident=api-down", NULL, true},
        {"bogus", NULL, false},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct sim s;

        sim_init(&s,
                 "monitors:\n"
                 "  - name: down\n"
                 "    when: {runtime: {to: failed}}\n"
                 "    severity: high\n"
                 "    incident: api-down\n"
                 "    labels: {tier: gold}\n"
                 "pagers:\n  - name: p\n    sinks: [a]\n",
                 "service", "api", "prod");
        add_silence(&s, cases[i].m1, cases[i].m2, T0, T0 + HOUR);
        sim_event(&s, MIN, "active", "failed");
        if ((s.mem.pages.n == 0) != cases[i].silenced ||
            sim_record(&s, "down")->silenced != cases[i].silenced) {
            print_error("case %zu: %s %s: %zu pages\n", i, cases[i].m1,
                        cases[i].m2 ? cases[i].m2 : "", s.mem.pages.n);
            failed++;
        }
        /* when the silence ends, a still-firing incident pages */
        sim_advance(&s, T0 + 2 * HOUR);
        if (cases[i].silenced && (s.mem.pages.n != 1 || s.mem.pages.items[0].at_ms != T0 + HOUR)) {
            print_error("case %zu: %zu pages after the silence\n", i, s.mem.pages.n);
            failed++;
        }
        vg_silences_free(s.silences, s.n_silences);
        sim_fini(&s);
    }
    assert_int_equal(failed, 0);
}

static void test_silence_window(void **state)
{
    struct sim s;

    (void)state;
    sim_init(&s, "monitors:\n" MON_FAILED("down", "high") "pagers:\n  - name: p\n    sinks: [a]\n",
             "service", "api", "prod");
    /* a silence that starts later, and one that ended: neither applies now */
    add_silence(&s, "monitor=down", NULL, T0 + HOUR, T0 + 2 * HOUR);
    add_silence(&s, "monitor=down", NULL, T0 - 2 * HOUR, T0 - HOUR);
    sim_event(&s, 0, "active", "failed");
    sim_expect_pages(&s, "firing down @0");
    vg_silences_free(s.silences, s.n_silences);
    sim_fini(&s);
}

/* `vigil silence add -m` checks a matcher as POST /api/v1/silences does (api_matcher_ok). */
static void test_silence_matcher_valid(void **state)
{
    static const struct {
        const char *matcher;
        bool ok;
    } cases[] = {
        {"monitor=workflow-*", true},
        {"labels.team=data-eng", true},
        {"name=[!x]*", true},
        {"name=", false},           /* empty: held only by an empty value */
        {"labels.team=", false},    /* likewise */
        {"name=ingest-[ab", false}, /* unclosed bracket */
        {"version=v1", true},       /* docs/rules.md lists it */
        {"state=firing", false},    /* not a key */
        {"=x", false},
    };
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char errstr[256] = "";

        if (vg_rules_matcher_valid(cases[i].matcher, errstr, sizeof(errstr)) != cases[i].ok ||
            (!cases[i].ok && !errstr[0])) {
            print_error("case %zu \"%s\": want %s (%s)\n", i, cases[i].matcher,
                        cases[i].ok ? "valid" : "invalid", errstr);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_inhibition(void **state)
{
    struct sim s;
    struct vg_incident_record src;

    (void)state;
    /* default: a higher severity on the same Resource mutes lower ones; equal ones both page */
    sim_init(&s,
             "monitors:\n" MON_FAILED("a-crit", "critical") MON_FAILED("b-high", "high")
                 MON_FAILED("c-crit", "critical") "pagers:\n  - name: p\n    sinks: [x]\n",
             "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_expect_pages(&s, "firing a-crit @0, firing c-crit @0");
    assert_true(sim_record(&s, "b-high")->inhibited);
    sim_fini(&s);

    /* explicit, same Resource; the target pages when the source ends */
    sim_init(&s,
             "monitors:\n"
             "  - name: wf-failed\n    when: {runtime: {to: failed}}\n    severity: low\n"
             "  - name: unhealthy\n    when: {health: {to: unhealthy}}\n    severity: low\n"
             "    resolve_after: 10m\n"
             "pagers:\n  - name: p\n    sinks: [x]\n"
             "inhibit:\n"
             "  - source: {monitor: wf-failed}\n"
             "    target: {monitor: unhealthy}\n"
             "    equal: [resource]\n",
             "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    sim_expect_pages(&s, "firing wf-failed @0");
    sim_event(&s, MIN, NULL, "running");
    /* wf-failed resolved; unhealthy still firing (resolve_after): it pages now */
    sim_expect_pages(&s, "firing wf-failed @0, resolved wf-failed @60, firing unhealthy @60");
    sim_fini(&s);

    /* across Resources: a source firing elsewhere in the same workspace */
    sim_init(&s,
             "monitors:\n" MON_FAILED("down", "high") "pagers:\n  - name: p\n    sinks: [x]\n"
                                                      "inhibit:\n"
                                                      "  - source: {monitor: cluster-down}\n"
                                                      "    target: {type: service}\n"
                                                      "    equal: [workspace]\n",
             "service", "api", "prod");
    memset(&src, 0, sizeof(src));
    src.id = (char *)"0123456789abcdef";
    src.monitor = (char *)"cluster-down";
    src.resource = (char *)"cluster:v1:c1:prod";
    src.severity = (char *)"critical";
    src.incident_type = (char *)"";
    src.state = (char *)"firing";
    s.firing = &src;
    s.n_firing = 1;
    assert_true(vg_rules_needs_firing(s.rs));
    sim_event(&s, 0, "active", "failed");
    sim_expect_pages(&s, "");
    assert_true(sim_record(&s, "down")->inhibited);
    /* re-checked on a timer: the source ended, the target pages */
    src.state = (char *)"resolved";
    sim_advance(&s, T0 + MIN);
    sim_expect_pages(&s, "firing down @15");
    sim_fini(&s);
}

static void test_routing_continue_and_dedupe(void **state)
{
    struct sim s;

    (void)state;
    sim_init(&s,
             "monitors:\n" MON_FAILED(
                 "down", "high") "pagers:\n"
                                 "  - name: first\n    sinks: [a, b]\n    continue: true\n"
                                 "  - name: second\n    sinks: [b, c]\n"
                                 "  - name: third\n    sinks: [d]\n",
             "service", "api", "prod");
    sim_event(&s, 0, "active", "failed");
    assert_int_equal(s.mem.pages.n, 3);
    assert_string_equal(s.mem.pages.items[0].sink, "a");
    assert_string_equal(s.mem.pages.items[1].sink, "b");
    assert_string_equal(s.mem.pages.items[1].pager, "first");
    assert_string_equal(s.mem.pages.items[2].sink, "c");
    assert_string_equal(s.mem.pages.items[2].pager, "second");
    sim_fini(&s);
}

/* The grouped body: built from single-form bodies, ordered, parsed back (core/page.c). */
static void test_group_json(void **state)
{
    struct sim s;
    char *bodies[2];
    struct vg_label gl = {(char *)"workspace", (char *)"public"};
    struct vg_pages back = {0};
    char errstr[256];
    char *json;

    (void)state;
    sim_init(&s,
             "monitors:\n" MON_FAILED(
                 "down", "high") "  - name: up\n"
                                 "    when: {runtime: {to: running}}\n    severity: high\n"
                                 "pagers:\n  - name: p\n    sinks: [a]\n",
             "service", "api", "public");
    sim_event(&s, 0, "active", "running");
    sim_event(&s, MIN, NULL, "failed");
    assert_int_equal(s.mem.pages.n, 3);
    /* the later incident first: the group orders by started_at */
    bodies[0] = vg_page_to_json(&s.mem.pages.items[2]);
    bodies[1] = vg_page_to_json(&s.mem.pages.items[0]);
    json = vg_page_group_to_json("p", &gl, 1, (const char *const *)bodies, 2);
    assert_non_null(json);
    assert_true(vg_page_json_is_group(json, strlen(json)));
    assert_false(vg_page_json_is_group(bodies[0], strlen(bodies[0])));
    assert_non_null(strstr(json,
                           "{\"version\":\"1\",\"status\":\"firing\",\"group\":{\"pager\":"
                           "\"p\",\"labels\":{\"workspace\":\"public\"}},\"counts\":{\"firing\":2,"
                           "\"resolved\":0},\"truncated\":0,\"incidents\":[{"
                           "\"status\":"));
    assert_int_equal(vg_page_group_from_json(&back, json, strlen(json), errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.items[0].incident.monitor, "up");
    assert_string_equal(back.items[0].status, "firing");
    assert_string_equal(back.items[1].status, "firing");
    assert_string_equal(back.items[1].incident.monitor, "down");
    assert_string_equal(back.items[1].pager, "p");
    assert_string_equal(back.items[1].group, "workspace=public");
    assert_int_equal(vg_page_group_from_json(&back, "{}", 2, errstr, sizeof(errstr)), VG_ERR_PARSE);
    vg_pages_fini(&back);
    vg_free(json);
    vg_free(bodies[0]);
    vg_free(bodies[1]);
    sim_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pager_match_keys), cmocka_unit_test(test_monitor_labels_match),
        cmocka_unit_test(test_grouping),         cmocka_unit_test(test_repeat_and_send_resolved),
        cmocka_unit_test(test_mute_windows),     cmocka_unit_test(test_mute_defers),
        cmocka_unit_test(test_silences),         cmocka_unit_test(test_silence_window),
        cmocka_unit_test(test_inhibition),       cmocka_unit_test(test_routing_continue_and_dedupe),
        cmocka_unit_test(test_group_json),       cmocka_unit_test(test_silence_matcher_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
