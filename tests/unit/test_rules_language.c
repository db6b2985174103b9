/*
 * The rules language of conditions over time at load time: every new key's mistakes
 * give their exact "file:line:col: message" (a table), `vigil check` mode
 * reports every error of every file (not only the first), and the
 * (field, value, type) index picks exactly the monitors a naive scan would.
 */
#include <unistd.h>

#include "rules_int.h"
#include "support.h"
#include "test_rules_sim.h"

#define MON(body) "monitors:\n  - name: m\n" body
#define WHEN "    when: {runtime: {to: failed}}\n"

static void test_errors(void **state)
{
    static const struct sim_load_error cases[] = {
        {MON("    when: {runtime: {is: pending}}\n    severity: high\n"),
         "t.yaml:3:21: \"runtime\": a held state needs both \"is\" and \"for\""},
        {MON("    when: {runtime: {is: pending, for: 10x}}\n    severity: high\n"),
         "t.yaml:3:40: \"for\": bad duration \"10x\" (expected e.g. 500ms, 30s, 10m, 4h, 1d or "
         "1h30m)"},
        {MON("    when: {runtime: {is: pending, for: 0s}}\n    severity: high\n"),
         "t.yaml:3:40: \"for\": must be longer than 0"},
        {MON("    when: {runtime: {is: pending, for: 1m, to: failed}}\n    severity: high\n"),
         "t.yaml:3:21: \"runtime\": \"is\"/\"for\" cannot be combined with from/to/count/within "
         "(write one monitor per condition)"},
        {MON("    when: {runtime: {is: pendng, for: 1m}}\n    severity: high\n"),
         "t.yaml:3:26: invalid runtime value \"pendng\" (did you mean \"pending\"? expected one "
         "of: pending, running, succeeded, failed)"},
        {MON("    when: {runtime: {to: failed, count: 3}}\n    severity: high\n"),
         "t.yaml:3:21: \"runtime\": flapping needs \"to\", \"count\" and \"within\""},
        {MON("    when: {runtime: {to: failed, count: 1, within: 1h}}\n    severity: high\n"),
         "t.yaml:3:41: \"count\": expected a whole number from 2 to 64 (a single arrival is a "
         "transition: {to: ...})"},
        {MON("    when: {runtime: {from: running, to: failed, count: 2, within: 1h}}\n"
             "    severity: high\n"),
         "t.yaml:3:28: \"runtime\": flapping counts arrivals in \"to\"; \"from\" is not allowed"},
        {MON("    when: {silent_for: soon}\n    severity: high\n"),
         "t.yaml:3:24: \"silent_for\": bad duration \"soon\" (expected e.g. 500ms, 30s, 10m, 4h, "
         "1d or 1h30m)"},
        {MON("    when: {silent_for: 1m, runtime: {to: failed}}\n    severity: high\n"),
         "t.yaml:3:28: \"when\": exactly one condition per monitor, got \"silent_for\" and "
         "\"runtime\" (write one monitor per condition)"},
        {MON(WHEN "    severity: high\n    resolve: sometimes\n"),
         "t.yaml:5:14: invalid resolve mode \"sometimes\" (expected one of: auto, never)"},
        {MON(WHEN "    severity: high\n    resolve: never\n    resolve_after: 1m\n"),
         "t.yaml:6:20: \"resolve_after\" cannot be combined with \"resolve: never\""},
        {MON("    when: {silent_for: 1m}\n    severity: high\n    stale_after: 1h\n"),
         "t.yaml:5:18: \"stale_after\" makes no sense for an absence condition"},
        {MON(WHEN "    severity: high\n    labels: {\"a b\": x}\n"),
         "t.yaml:5:14: invalid label name \"a b\" (use letters, digits, '.', '_', '-' and '/')"},
        {MON(WHEN "    severity: high\n    labels: {team: \"{{resource.nme}}\"}\n"),
         "t.yaml:5:20: unknown template path \"resource.nme\" (did you mean \"resource.name\"?)"},
        {MON(WHEN "    severity: high\n    incident: \"a b\"\n"),
         "t.yaml:5:15: invalid incident type \"a b\" (use letters, digits, '.', '_' and '-')"},
        {MON("    match: {type: job, not: {type: [job, x]}}\n" WHEN "    severity: high\n"),
         "t.yaml:3:12: condition can never match: match.type is excluded by match.not"},
        {MON("    match: {labels.: x}\n" WHEN "    severity: high\n"),
         "t.yaml:3:13: unknown key \"labels.\" (expected one of: type, workspace, name, owner, "
         "version, labels.<key>, not)"},
        {MON("    match: {not: {not: {type: x}}}\n" WHEN "    severity: high\n"),
         "t.yaml:3:19: unknown key \"not\" (expected one of: type, workspace, name, owner, "
         "version, labels.<key>)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_wait: 30s\n",
         "t.yaml:4:17: \"group_wait\" needs \"group_by\" (which incidents to group)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_limit: 20\n",
         "t.yaml:4:18: \"group_limit\" needs \"group_by\" (which incidents to group)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_by: [workspace]\n    group_limit: 0\n",
         "t.yaml:5:18: \"group_limit\" must be an integer from 1 to 10000, got \"0\""},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_by: [workspace]\n    group_limit: "
         "10001\n",
         "t.yaml:5:18: \"group_limit\" must be an integer from 1 to 10000, got \"10001\""},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_by: [workspace]\n    group_limit: many\n",
         "t.yaml:5:18: \"group_limit\" must be an integer from 1 to 10000, got \"many\""},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_by: [workspace]\n    group_limit: [1]\n",
         "t.yaml:5:18: \"group_limit\" must be an integer from 1 to 10000, got a sequence"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_by: [workspace]\n    group_limt: 5\n",
         "t.yaml:5:5: unknown key \"group_limt\" (did you mean \"group_limit\"?)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    group_by: [worksapce]\n",
         "t.yaml:4:16: unknown key \"worksapce\" (did you mean \"workspace\"?)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    repeat_interval: -1h\n",
         "t.yaml:4:22: \"repeat_interval\": bad duration \"-1h\" (expected e.g. 500ms, 30s, 10m, "
         "4h, 1d or 1h30m)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    mute: [{days: [saturday]}]\n",
         "t.yaml:4:20: invalid day \"saturday\" (expected one of: sun, mon, tue, wed, thu, fri, "
         "sat)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    mute: [{between: \"22-07\"}]\n",
         "t.yaml:4:22: \"between\": expected \"HH:MM-HH:MM\" (24-hour, start != end, e.g. "
         "\"22:00-07:00\"), got \"22-07\""},
        {"pagers:\n  - name: p\n    sinks: [a]\n    mute: [{tz: UTC}]\n",
         "t.yaml:4:12: \"mute\": each entry needs \"days\" and/or \"between\""},
        {"pagers:\n  - name: p\n    sinks: [a]\n    mute: [{between: \"22:00-07:00\", tz: "
         "Mars/Olympus}]\n",
         "t.yaml:4:41: \"tz\": unknown time zone \"Mars/Olympus\" "
         "(/usr/share/zoneinfo/Mars/Olympus: "
         "No such file or directory)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    mute: [{between: \"22:00-07:00\", tz: "
         "\"../etc/passwd\"}]\n",
         "t.yaml:4:41: \"tz\": invalid time zone name \"../etc/passwd\" (e.g. Europe/Berlin)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    send_resolved: sometimes\n",
         "t.yaml:4:20: expected true or false"},
        {"inhibit:\n  - target: {monitor: x}\n",
         "t.yaml:2:5: inhibit rule: missing required key \"source\""},
        {"inhibit:\n  - source: {monitor: x}\n    target: {monitor: y}\n    equal: [resourse]\n",
         "t.yaml:4:13: unknown key \"resourse\" (did you mean \"resource\"?)"},
        {"inhibit:\n  - source: {version: v1}\n    target: {monitor: y}\n",
         "t.yaml:2:14: match key \"version\" cannot be used here"},
    };

    (void)state;
    assert_int_equal(sim_load_errors(cases, VG_ARRAY_LEN(cases)), 0);
}

static void test_valid(void **state)
{
    struct vg_ruleset *rs = sim_load(
        "monitors:\n"
        "  - name: a\n    when: {runtime: {is: [pending, failed], for: 1h30m}}\n    severity: low\n"
        "  - name: b\n    when: {health: {to: unhealthy, count: 5, within: 1d}}\n    severity: "
        "info\n"
        "  - name: c\n    when: {silent_for: 500ms}\n    severity: info\n    resolve: auto\n"
        "  - name: d\n    match: {labels.app.kubernetes.io/name: x, not: {owner: \"\"}}\n"
        "    when: {status: {to: error}}\n    severity: high\n    resolve: never\n"
        "    labels: {team: \"{{resource.owner}}\", \"app.kubernetes.io/part-of\": vigil}\n"
        "pagers:\n"
        "  - name: p\n    match: {labels.team: x, incident: y, resource: \"*\", not: {monitor: "
        "a}}\n"
        "    sinks: [s]\n    group_by: [resource, labels.team, severity]\n    group_wait: 1s\n"
        "    repeat_interval: 1d\n    send_resolved: false\n    fallback: t\n"
        "    mute: [{days: [mon]}, {between: \"23:30-00:30\", tz: Etc/UTC, days: [sun, sat]}]\n"
        "inhibit:\n  - source: {severity: critical}\n    target: {severity: [low, info]}\n");

    (void)state;
    assert_int_equal(vg_rules_monitor_count(rs), 4);
    assert_int_equal(vg_rules_pager_count(rs), 1);
    /* an inhibit rule without equal: [resource] looks across Resources */
    assert_true(vg_rules_needs_firing(rs));
    vg_ruleset_destroy(rs);
}

/* `vigil check` mode: every error of every file, and what is valid still loads. */
static void test_check_collects_everything(void **state)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    struct vg_rules_diags d = {0};
    char *paths[] = {(char *)"tests/fixtures/rules-language/check-a",
                     (char *)"tests/fixtures/nope.yaml"};
    char *sinks[] = {(char *)"console", (char *)"slack"};
    static const char *const want[] = {
        "tests/fixtures/rules-language/check-a/a.yaml:4:5: unknown key \"sevrity\" (did you mean "
        "\"severity\"?)",
        "tests/fixtures/rules-language/check-a/a.yaml:8:40: \"for\": bad duration \"10 minutes\" "
        "(expected e.g. 500ms, 30s, 10m, 4h, 1d or 1h30m)",
        "tests/fixtures/rules-language/check-a/a.yaml:14:14: unknown template path "
        "\"resource.nam\" "
        "(did you mean \"resource.name\"?)",
        "tests/fixtures/rules-language/check-a/b.yaml:3:11: duplicate monitor name \"fine\" (first "
        "defined at tests/fixtures/rules-language/check-a/a.yaml:9:11)",
        "tests/fixtures/rules-language/check-a/b.yaml:7:19: invalid glob \"etl-[0-9\" in "
        "match.name "
        "(unbalanced brackets?)",
        "tests/fixtures/rules-language/check-a/b.yaml:12:16: condition can never match: runtime "
        "from "
        "\"failed\" to \"failed\" is not a change",
        "tests/fixtures/rules-language/check-a/c.yaml:1:1: unknown key \"monitor\" (did you mean "
        "\"monitors\"?)",
        "tests/fixtures/nope.yaml: No such file or directory",
        "tests/fixtures/rules-language/check-a/b.yaml:19:22: pager \"ops\": unknown sink \"slak\" "
        "(did "
        "you mean \"slack\"? configured sinks: console, slack)",
    };
    int failed = 0;

    (void)state;
    assert_int_equal(vg_rules_check_paths(rs, paths, 2, sinks, 2, &d), VG_ERR_INVALID);
    for (size_t i = 0; i < d.n || i < VG_ARRAY_LEN(want); i++) {
        char got[1024] = "(none)";

        if (i < d.n) {
            if (d.items[i].line) {
                snprintf(got, sizeof(got), "%s:%zu:%zu: %s", d.items[i].file, d.items[i].line,
                         d.items[i].col, d.items[i].message);
            } else {
                snprintf(got, sizeof(got), "%s: %s", d.items[i].file, d.items[i].message);
            }
        }
        if (i >= VG_ARRAY_LEN(want) || strcmp(got, want[i]) != 0) {
            print_error("diag %zu:\n  got  %s\n  want %s\n", i, got,
                        i < VG_ARRAY_LEN(want) ? want[i] : "(none)");
            failed++;
        }
    }
    /* the valid monitors and pager still loaded */
    assert_int_equal(vg_rules_monitor_count(rs), 2);
    assert_int_equal(vg_rules_pager_count(rs), 1);
    vg_rules_diags_fini(&d);
    vg_ruleset_destroy(rs);
    assert_int_equal(failed, 0);
}

/*
 * The index: for random monitors and transitions, the monitors evaluated
 * (those that open an incident) are exactly those a scan of every monitor
 * with its match and condition would pick.
 */
static void test_index_matches_scan(void **state)
{
    static const char *const types[] = {"job", "workflow", "service", "worker"};
    static const char *const runtimes[] = {"pending", "running", "succeeded", "failed"};
    struct vg_buf y = {0};
    struct vg_ruleset *rs;
    unsigned seed = 12345;
    int failed = 0;

    (void)state;
    vg_buf_puts(&y, "monitors:\n");
    for (int i = 0; i < 200; i++) {
        const char *type = types[(seed = seed * 1103515245 + 12345) >> 16 & 3];
        const char *to = runtimes[(seed = seed * 1103515245 + 12345) >> 16 & 3];
        int shape = (seed = seed * 1103515245 + 12345) >> 16 & 3;

        vg_buf_printf(&y, "  - name: m%d\n    severity: info\n", i);
        if (shape == 0) {
            vg_buf_printf(&y, "    match: {type: %s}\n    when: {runtime: {to: %s}}\n", type, to);
        } else if (shape == 1) {
            vg_buf_printf(&y, "    match: {type: \"%c*\"}\n    when: {runtime: {to: %s}}\n",
                          type[0], to);
        } else if (shape == 2) {
            vg_buf_printf(&y, "    when: {runtime: {from: %s}}\n", to);
        } else {
            vg_buf_printf(&y, "    match: {type: [%s, job]}\n    when: {runtime: {to: \"*\"}}\n",
                          type);
        }
    }
    rs = sim_load(y.data);
    for (int k = 0; k < 64; k++) {
        const char *type = types[k & 3];
        const char *from = runtimes[(k >> 2) & 3];
        const char *to = runtimes[(k >> 4) & 3];
        struct sim s;
        size_t opened = 0;
        size_t want = 0;

        if (!strcmp(from, to)) {
            continue;
        }
        memset(&s, 0, sizeof(s));
        s.rs = rs;
        s.type = type;
        s.name = "x";
        s.workspace = "w";
        s.offset = 1;
        s.now = T0;
        sim_event(&s, 0, NULL, from);
        for (size_t i = 0; i < s.res->n_incidents; i++) {
            vg_resource_remove_incident(s.res, s.res->incidents[i].monitor);
            i--;
        }
        sim_event(&s, 1, NULL, to);
        opened = s.res->n_incidents;
        for (size_t i = 0; i < rs->n_monitors; i++) {
            const struct rules_monitor *m = rs->monitors[i];
            struct rules_subject subj = {.res = s.res};

            if (rules_match_holds(&m->match, &subj) && rules_valueset_has(&m->cond.from, from) &&
                rules_valueset_has(&m->cond.to, to)) {
                want++;
            }
        }
        if (opened != want) {
            print_error("%s %s -> %s: %zu opened, a scan says %zu\n", type, from, to, opened, want);
            failed++;
        }
        s.rs = NULL;
        sim_fini(&s);
    }
    vg_ruleset_destroy(rs);
    vg_buf_fini(&y);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_check_collects_everything),
        cmocka_unit_test(test_index_matches_scan),
    };

    if (chdir(VIGIL_SOURCE_DIR) != 0) {
        perror(VIGIL_SOURCE_DIR);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
