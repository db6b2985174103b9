/*
 * Loading rules: the examples and every example of docs/rules.md load,
 * each class of mistake gives its exact "file:line:col: message", paths
 * (files, directories, globs) expand as documented, and pager sinks are
 * cross-checked against the configured ones. Runs from the source dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "test_rules_sim.h"
#include "vigil/mem.h"
#include "vigil/rules.h"

#define BROKEN "tests/fixtures/rules/broken/"

/*
 * Load `path` (a file, directory or glob) into a fresh ruleset and return it,
 * or print case `i` and return NULL when it fails or the counts differ.
 */
static struct vg_ruleset *load_path_counting(size_t i, const char *path, size_t monitors,
                                             size_t pagers)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";
    char *paths[] = {(char *)path};
    vg_err_t err = vg_rules_load_paths(rs, paths, 1, errstr, sizeof(errstr));

    if (err != VG_OK || vg_rules_monitor_count(rs) != monitors ||
        vg_rules_pager_count(rs) != pagers) {
        print_error("case %zu (%s): err %d (%s), %zu monitors, %zu pagers, want %zu and %zu\n", i,
                    path, err, errstr, vg_rules_monitor_count(rs), vg_rules_pager_count(rs),
                    monitors, pagers);
        vg_ruleset_destroy(rs);
        return NULL;
    }
    return rs;
}

static void test_examples_load(void **state)
{
    static const struct {
        const char *path;
        size_t monitors, pagers;
    } cases[] = {
        {"examples/rules", 8, 3},
        {"examples/rules/resources.yaml", 3, 1},
        {"tests/fixtures/rules/docs/match.yaml", 2, 0},
        {"tests/fixtures/rules/docs/conditions.yaml", 4, 0},
        {"tests/fixtures/rules/docs/templates.yaml", 1, 0},
        {"tests/fixtures/rules/docs/routing.yaml", 0, 3},
        {"tests/fixtures/rules/docs", 7, 3},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_ruleset *rs =
            load_path_counting(i, cases[i].path, cases[i].monitors, cases[i].pagers);

        if (!rs) {
            failed++;
        }
        vg_ruleset_destroy(rs);
    }
    assert_int_equal(failed, 0);
}

/* The demo config has one sink, "console": the shipped examples must pass its check. */
static void test_examples_check_sinks(void **state)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";
    char *paths[] = {(char *)"examples/rules"};
    char *sinks[] = {(char *)"console"};

    (void)state;
    assert_int_equal(vg_rules_load_paths(rs, paths, 1, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_rules_check_sinks(rs, sinks, 1, errstr, sizeof(errstr)), VG_OK);
    vg_ruleset_destroy(rs);
}

/* Broken files on disk (tests/fixtures/rules/broken), one per error class. */
static void test_file_errors(void **state)
{
    static const struct {
        const char *paths[2];
        vg_err_t want_err;
        const char *want;
    } cases[] = {
        {{BROKEN "unknown-key.yaml"},
         VG_ERR_INVALID,
         BROKEN "unknown-key.yaml:5:5: unknown key \"sevrity\" (did you mean \"severity\"?)"},
        {{BROKEN "unknown-top.yaml"},
         VG_ERR_INVALID,
         BROKEN "unknown-top.yaml:1:1: unknown key \"monitor\" (did you mean \"monitors\"?)"},
        {{BROKEN "wrong-type.yaml"},
         VG_ERR_INVALID,
         BROKEN "wrong-type.yaml:5:7: \"when\": expected a mapping, got a sequence"},
        {{BROKEN "bad-severity.yaml"},
         VG_ERR_INVALID,
         BROKEN "bad-severity.yaml:4:15: invalid severity \"urgent\" (expected one of: info, "
                "low, medium, high, critical)"},
        {{BROKEN "bad-value.yaml"},
         VG_ERR_INVALID,
         BROKEN "bad-value.yaml:4:50: invalid runtime value \"crashed\" (expected one of: "
                "pending, running, succeeded, failed, or \"*\" for any)"},
        {{BROKEN "dup-a.yaml", BROKEN "dup-b.yaml"},
         VG_ERR_INVALID,
         BROKEN "dup-b.yaml:5:11: duplicate monitor name \"job-failed\" (first defined at " BROKEN
                "dup-a.yaml:2:11)"},
        {{BROKEN "missing-sinks.yaml"},
         VG_ERR_INVALID,
         BROKEN "missing-sinks.yaml:2:5: pager \"ops\": missing required key \"sinks\""},
        {{BROKEN "bad-glob.yaml"},
         VG_ERR_INVALID,
         BROKEN "bad-glob.yaml:3:40: invalid glob \"etl-[0-9\" in match.name (unbalanced "
                "brackets?)"},
        {{BROKEN "bad-template-path.yaml"},
         VG_ERR_INVALID,
         BROKEN "bad-template-path.yaml:6:14: unknown template path \"resource.nme\" (did you "
                "mean \"resource.name\"?)"},
        {{BROKEN "never-matches.yaml"},
         VG_ERR_INVALID,
         BROKEN "never-matches.yaml:5:16: condition can never match: runtime from \"failed\" to "
                "\"failed\" is not a change"},
        {{"tests/fixtures/rules/missing.yaml"},
         VG_ERR_IO,
         "tests/fixtures/rules/missing.yaml: No such file or directory"},
        {{"tests/fixtures/rules/nothing-*.yaml"},
         VG_ERR_IO,
         "tests/fixtures/rules/nothing-*.yaml: no files match"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_ruleset *rs = vg_ruleset_new();
        char errstr[512] = "";
        char *paths[2] = {(char *)cases[i].paths[0], (char *)cases[i].paths[1]};
        size_t n = paths[1] ? 2 : 1;
        vg_err_t err = vg_rules_load_paths(rs, paths, n, errstr, sizeof(errstr));

        if (err != cases[i].want_err || strcmp(errstr, cases[i].want) != 0) {
            print_error("case %zu: got %d \"%s\"\n          want %d \"%s\"\n", i, err, errstr,
                        cases[i].want_err, cases[i].want);
            failed++;
        }
        vg_ruleset_destroy(rs);
    }
    assert_int_equal(failed, 0);
}

/* Malformed YAML is core's to describe; we only promise the file name and PARSE. */
static void test_yaml_syntax_error(void **state)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";

    (void)state;
    assert_int_equal(vg_rules_load_file(rs, BROKEN "bad-yaml.yaml", errstr, sizeof(errstr)),
                     VG_ERR_PARSE);
    assert_true(strncmp(errstr, BROKEN "bad-yaml.yaml:", strlen(BROKEN "bad-yaml.yaml:")) == 0);
    vg_ruleset_destroy(rs);
}

#define MON(body) "monitors:\n  - name: m\n" body
#define OK_WHEN "    when: {runtime: {to: failed}}\n"

/* Smaller mistakes, from memory: each message names t.yaml:line:col. */
static void test_string_errors(void **state)
{
    static const struct sim_load_error cases[] = {
        {"- a\n", "t.yaml:1:1: expected a mapping with \"monitors\" and/or \"pagers\", got a "
                  "sequence"},
        {"monitors: {a: 1}\n", "t.yaml:1:11: \"monitors\": expected a sequence, got a mapping"},
        {"pagers: x\n", "t.yaml:1:9: \"pagers\": expected a sequence, got a scalar"},
        {"monitors: [x]\n", "t.yaml:1:12: \"monitors[]\": expected a mapping, got a scalar"},
        {"monitors:\n  - severity: high\n", "t.yaml:2:5: monitor: missing required key \"name\""},
        {"monitors:\n  - name: [a]\n", "t.yaml:2:11: \"name\": expected a string, got a sequence"},
        {"monitors:\n  - name: a b\n",
         "t.yaml:2:11: invalid monitor name \"a b\" (use letters, digits, '.', '_' and '-')"},
        {MON("    severity: high\n"), "t.yaml:2:5: monitor \"m\": missing required key \"when\""},
        {MON(OK_WHEN), "t.yaml:2:5: monitor \"m\": missing required key \"severity\""},
        {MON("    when: {}\n    severity: high\n"),
         "t.yaml:3:11: \"when\": needs one of status, runtime, health, silent_for"},
        {MON("    when: {runtme: {to: failed}}\n    severity: high\n"),
         "t.yaml:3:12: unknown key \"runtme\" (did you mean \"runtime\"?)"},
        {MON("    when: {runtime: {to: failed}, status: {to: error}}\n    severity: high\n"),
         "t.yaml:3:35: \"when\": exactly one condition per monitor, got \"runtime\" and "
         "\"status\" (write one monitor per condition)"},
        {MON("    when: {runtime: failed}\n    severity: high\n"),
         "t.yaml:3:21: \"runtime\": expected a mapping, got a scalar"},
        {MON("    when: {runtime: {}}\n    severity: high\n"),
         "t.yaml:3:21: \"runtime\": needs \"from\" and/or \"to\" (a transition), \"is\" and "
         "\"for\" (a held state) or \"to\", \"count\" and \"within\" (flapping)"},
        {MON("    when: {runtime: {too: failed}}\n    severity: high\n"),
         "t.yaml:3:22: unknown key \"too\" (did you mean \"to\"?)"},
        {MON("    when: {runtime: {to: []}}\n    severity: high\n"),
         "t.yaml:3:26: \"to\": empty list"},
        {MON("    when: {runtime: {from: {a: b}}}\n    severity: high\n"),
         "t.yaml:3:28: \"from\": expected a string or a list of strings, got a mapping"},
        {MON("    when: {runtime: {to: [failed, [x]]}}\n    severity: high\n"),
         "t.yaml:3:35: \"to\": expected a string, got a sequence"},
        {MON("    when: {status: {to: failed}}\n    severity: high\n"),
         "t.yaml:3:25: invalid status value \"failed\" (expected one of: active, error, "
         "deleted, or \"*\" for any)"},
        {MON("    when: {health: {from: ok}}\n    severity: high\n"),
         "t.yaml:3:27: invalid health value \"ok\" (expected one of: healthy, progressing, "
         "unhealthy, or \"*\" for any)"},
        {MON("    when: {runtime: {from: [failed, failed], to: failed}}\n    severity: high\n"),
         "t.yaml:3:21: condition can never match: runtime from \"failed\" to \"failed\" is not "
         "a change"},
        {MON(OK_WHEN "    severity: [high]\n"),
         "t.yaml:4:15: \"severity\": expected a string, got a sequence"},
        {MON(OK_WHEN "    severity: High\n"),
         "t.yaml:4:15: invalid severity \"High\" (did you mean \"high\"? expected one of: info, "
         "low, medium, high, critical)"},
        {MON("    match: [job]\n" OK_WHEN "    severity: high\n"),
         "t.yaml:3:12: \"match\": expected a mapping, got a sequence"},
        {MON("    match: {severity: high}\n" OK_WHEN "    severity: high\n"),
         "t.yaml:3:13: match key \"severity\" cannot be used in a monitor"},
        {MON("    match: {tpye: job}\n" OK_WHEN "    severity: high\n"),
         "t.yaml:3:13: unknown key \"tpye\" (did you mean \"type\"?)"},
        {MON("    match: {type: {a: b}}\n" OK_WHEN "    severity: high\n"),
         "t.yaml:3:19: \"type\": expected a string or a list of strings, got a mapping"},
        {MON("    match: {type: []}\n" OK_WHEN "    severity: high\n"),
         "t.yaml:3:19: \"type\": empty list"},
        {MON("    match: {name: \"[x\"}\n" OK_WHEN "    severity: high\n"),
         "t.yaml:3:19: invalid glob \"[x\" in match.name (unbalanced brackets?)"},
        {MON(OK_WHEN "    severity: high\n    summary: [a]\n"),
         "t.yaml:5:14: \"summary\": expected a string, got a sequence"},
        {MON(OK_WHEN "    severity: high\n    summary: \"{{resource.name\"\n"),
         "t.yaml:5:14: unterminated \"{{\" in template (missing \"}}\")"},
        {MON(OK_WHEN "    severity: high\n    summary: \"{{foo}}\"\n"),
         "t.yaml:5:14: unknown template path \"foo\""},
        {MON(OK_WHEN "    severity: high\n    summary: \"{{}}\"\n"),
         "t.yaml:5:14: bad template expression \"{{}}\" (expected {{ path }} or {{ path | "
         "default \"text\" }})"},
        {MON(OK_WHEN "    severity: high\n    summary: \"{{ monitor name }}\"\n"),
         "t.yaml:5:14: bad template expression \"{{ monitor name }}\" (expected {{ path }} or "
         "{{ path | default \"text\" }})"},
        {MON(OK_WHEN "    severity: high\n    summary: \"{{monitor | upper}}\"\n"),
         "t.yaml:5:14: unknown template filter \"upper\" (expected default \"text\")"},
        {MON(OK_WHEN "    severity: high\n    summary: \"{{monitor | default x}}\"\n"),
         "t.yaml:5:14: template filter default needs a quoted text: {{ monitor | default "
         "\"text\" }}"},
        {MON(OK_WHEN "    severity: high\n    summary: '{{monitor | default \"x\" y}}'\n"),
         "t.yaml:5:14: bad template expression \"{{monitor | default \"x\" y}}\": unexpected "
         "text after the default value"},
        {MON(OK_WHEN "    severity: high\n    description: \"{{resource.nam}}\"\n"),
         "t.yaml:5:18: unknown template path \"resource.nam\" (did you mean \"resource.name\"?)"},
        {MON(OK_WHEN "    severity: high\n  - name: m\n" OK_WHEN "    severity: low\n"),
         "t.yaml:5:11: duplicate monitor name \"m\" (first defined at t.yaml:2:11)"},
        {"pagers:\n  - name: p\n    sinks: []\n", "t.yaml:3:12: \"sinks\": empty list"},
        {"pagers:\n  - name: p\n    sinks: [a, \"\"]\n", "t.yaml:3:16: \"sinks\": empty sink name"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    continue: maybe\n",
         "t.yaml:4:15: expected true or false"},
        {"pagers:\n  - name: p\n    match: {severity: hgh}\n    sinks: [a]\n",
         "t.yaml:3:23: invalid severity \"hgh\" (did you mean \"high\"? expected one of: info, "
         "low, medium, high, critical)"},
        {"pagers:\n  - name: p\n    match: {version: v1}\n    sinks: [a]\n",
         "t.yaml:3:13: match key \"version\" cannot be used here"},
        {"pagers:\n  - name: p\n    sinks: [a]\n    sink: [b]\n",
         "t.yaml:4:5: unknown key \"sink\" (did you mean \"sinks\"?)"},
        {"pagers:\n  - name: p\n    sinks: [a]\n  - name: p\n    sinks: [b]\n",
         "t.yaml:4:11: duplicate pager name \"p\" (first defined at t.yaml:2:11)"},
        {"pagers:\n  - name: p/q\n    sinks: [a]\n",
         "t.yaml:2:11: invalid pager name \"p/q\" (use letters, digits, '.', '_' and '-')"},
    };

    (void)state;
    assert_int_equal(sim_load_errors(cases, VG_ARRAY_LEN(cases)), 0);
}

/* Accepted spellings: scalars for lists, "*" alongside values, empty sections. */
static void test_string_valid(void **state)
{
    static const struct {
        const char *yaml;
        size_t monitors, pagers;
    } cases[] = {
        {"", 0, 0},
        {"monitors:\npagers:\n", 0, 0},
        {"monitors: []\npagers: []\n", 0, 0},
        {MON("    when: {runtime: {from: running}}\n    severity: info\n"), 1, 0},
        {MON("    when: {runtime: {from: failed, to: \"*\"}}\n    severity: low\n"), 1, 0},
        {MON("    when: {runtime: {from: [failed, running], to: failed}}\n    severity: low\n"), 1,
         0},
        {MON("    match: {}\n    when: {health: {to: unhealthy}}\n    severity: medium\n"), 1, 0},
        {MON("    match: {owner: \"\", version: \"v*\"}\n" OK_WHEN "    severity: critical\n"), 1,
         0},
        {"pagers:\n  - name: p\n    sinks: a\n    continue: true\n", 0, 1},
        {"pagers:\n  - name: p\n    match: {severity: \"*\", monitor: \"db-*\"}\n"
         "    sinks: [a]\n",
         0, 1},
        {"monitors:\n  - name: a.b_c-9\n" OK_WHEN "    severity: high\npagers:\n"
         "  - name: a.b_c-9\n    sinks: [x]\n",
         1, 1},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_ruleset *rs = vg_ruleset_new();
        char errstr[512] = "";
        vg_err_t err = vg_rules_load_string(rs, "t.yaml", cases[i].yaml, strlen(cases[i].yaml),
                                            errstr, sizeof(errstr));

        if (err != VG_OK || vg_rules_monitor_count(rs) != cases[i].monitors ||
            vg_rules_pager_count(rs) != cases[i].pagers) {
            print_error("case %zu: err %d \"%s\", %zu monitors, %zu pagers\n", i, err, errstr,
                        vg_rules_monitor_count(rs), vg_rules_pager_count(rs));
            failed++;
        }
        vg_ruleset_destroy(rs);
    }
    assert_int_equal(failed, 0);
}

/* A name is unique across files, and across load calls on the same ruleset. */
static void test_duplicate_across_loads(void **state)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    const char *a = "pagers:\n  - name: ops\n    sinks: [x]\n";
    const char *b = "pagers:\n  - name: other\n    sinks: [x]\n  - name: ops\n    sinks: [y]\n";
    char errstr[512] = "";

    (void)state;
    assert_int_equal(vg_rules_load_string(rs, "a.yaml", a, strlen(a), errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(vg_rules_load_string(rs, "b.yaml", b, strlen(b), errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_string_equal(errstr,
                        "b.yaml:4:11: duplicate pager name \"ops\" (first defined at a.yaml:2:11)");
    assert_int_equal(vg_rules_pager_count(rs), 1); /* b.yaml left no trace */
    vg_ruleset_destroy(rs);
}

/*
 * A directory loads its *.yaml and *.yml sorted (a.yml before b.yaml), skipping
 * other files, hidden files and subdirectories; the first unknown sink in load
 * order proves the order.
 */
static void test_paths(void **state)
{
    static const struct {
        const char *path;
        size_t monitors, pagers;
        const char *first_sink_error;
    } cases[] = {
        {"tests/fixtures/rules/dir", 1, 2,
         "tests/fixtures/rules/dir/a.yml:7:13: pager \"from-a\": unknown sink \"a\" (configured "
         "sinks: none)"},
        {"tests/fixtures/rules/dir/", 1, 2,
         "tests/fixtures/rules/dir/a.yml:7:13: pager \"from-a\": unknown sink \"a\" (configured "
         "sinks: none)"},
        {"tests/fixtures/rules/dir/b.*", 0, 1,
         "tests/fixtures/rules/dir/b.yaml:3:13: pager \"from-b\": unknown sink \"b\" "
         "(configured sinks: none)"},
        {"tests/fixtures/rules/dir/[ab].y*ml", 1, 2,
         "tests/fixtures/rules/dir/a.yml:7:13: pager \"from-a\": unknown sink \"a\" (configured "
         "sinks: none)"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_ruleset *rs =
            load_path_counting(i, cases[i].path, cases[i].monitors, cases[i].pagers);
        char errstr[512] = "";

        if (!rs) {
            failed++;
        } else if (vg_rules_check_sinks(rs, NULL, 0, errstr, sizeof(errstr)) != VG_ERR_INVALID ||
                   strcmp(errstr, cases[i].first_sink_error) != 0) {
            print_error("case %zu: got \"%s\"\n          want \"%s\"\n", i, errstr,
                        cases[i].first_sink_error);
            failed++;
        }
        vg_ruleset_destroy(rs);
    }
    assert_int_equal(failed, 0);
}

static void test_check_sinks(void **state)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";
    char *only_console[] = {(char *)"console"};
    char *both[] = {(char *)"pagerduty", (char *)"console"};
    char *other[] = {(char *)"console", (char *)"slack"};

    (void)state;
    assert_int_equal(vg_rules_load_file(rs, BROKEN "unknown-sink.yaml", errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(vg_rules_check_sinks(rs, only_console, 1, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_string_equal(errstr, BROKEN "unknown-sink.yaml:4:22: pager \"ops\": unknown sink "
                                       "\"pagerduty\" (configured sinks: console)");
    assert_int_equal(vg_rules_check_sinks(rs, other, 2, errstr, sizeof(errstr)), VG_ERR_INVALID);
    assert_string_equal(errstr, BROKEN "unknown-sink.yaml:4:22: pager \"ops\": unknown sink "
                                       "\"pagerduty\" (configured sinks: console, slack)");
    assert_int_equal(vg_rules_check_sinks(rs, both, 2, errstr, sizeof(errstr)), VG_OK);
    vg_ruleset_destroy(rs);
}

/* The next ``` block's body after `from`, or NULL; *lang receives the fence's language. */
static char *next_block(const char **from, char *lang, size_t lang_size)
{
    const char *open = strstr(*from, "\n```");
    const char *body;
    const char *close;
    size_t n = 0;

    if (!open) {
        return NULL;
    }
    open += 4;
    while (open[n] && open[n] != '\n' && n + 1 < lang_size) {
        lang[n] = open[n];
        n++;
    }
    lang[n] = '\0';
    body = strchr(open, '\n');
    VG_ASSERT(body);
    body++;
    close = strstr(body, "\n```");
    VG_ASSERT(close);
    *from = close + 4;
    return vg_strndup(body, (size_t)(close - body) + 1);
}

/*
 * Every ```yaml block of docs/rules.md starts with "# <path>"; that file holds
 * exactly the block and loads (or, under broken/, fails with the message of
 * the ```text block that follows it).
 */
static void test_doc_examples(void **state)
{
    char *doc = vg_test_read_file("docs/rules.md", NULL);
    const char *p = doc;
    char lang[32];
    char *block;
    int yaml_blocks = 0;
    int failed = 0;

    (void)state;
    assert_non_null(doc);
    while ((block = next_block(&p, lang, sizeof(lang))) != NULL) {
        char path[256];
        char errstr[512] = "";
        char *file;
        struct vg_ruleset *rs;
        vg_err_t err;

        if (strcmp(lang, "yaml") != 0) {
            vg_free(block);
            continue;
        }
        yaml_blocks++;
        if (sscanf(block, "# %255s", path) != 1) {
            print_error("yaml block %d does not start with \"# <path>\"\n", yaml_blocks);
            failed++;
            vg_free(block);
            continue;
        }
        file = vg_test_read_file(path, NULL);
        if (!file || strcmp(file, block) != 0) {
            print_error("%s: %s\n", path, file ? "differs from docs/rules.md" : "missing");
            failed++;
        }
        if (strstr(path, "/tests/") || strstr(path, "vigil.yaml")) {
            /* a `vigil test` file or a config: the same text, not a rules file */
            vg_free(file);
            vg_free(block);
            continue;
        }
        rs = vg_ruleset_new();
        err = vg_rules_load_file(rs, path, errstr, sizeof(errstr));
        if (strstr(path, "/broken/")) {
            char *want = next_block(&p, lang, sizeof(lang));

            if (err == VG_OK || !want || strncmp(want, errstr, strlen(errstr)) != 0 ||
                want[strlen(errstr)] != '\n') {
                print_error("%s: got \"%s\", doc says \"%s\"\n", path, errstr,
                            want ? want : "(no text block)");
                failed++;
            }
            vg_free(want);
        } else if (err != VG_OK) {
            print_error("%s: %s\n", path, errstr);
            failed++;
        }
        vg_ruleset_destroy(rs);
        vg_free(file);
        vg_free(block);
    }
    vg_free(doc);
    assert_true(yaml_blocks >= 5);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_load),
        cmocka_unit_test(test_examples_check_sinks),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_string_errors),
        cmocka_unit_test(test_string_valid),
        cmocka_unit_test(test_duplicate_across_loads),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_check_sinks),
        cmocka_unit_test(test_doc_examples),
    };

    if (chdir(VIGIL_SOURCE_DIR) != 0) {
        perror(VIGIL_SOURCE_DIR);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
