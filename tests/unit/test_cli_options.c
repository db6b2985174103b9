/*
 * The flags the commands that work on Redis share (cli/options.c, compiled
 * into this test): -c/--config, --redis, --prefix, -o/--output, -h with a
 * command's own flags, in any order and in every getopt spelling; output
 * formats checked; operands left over; and finding the first operand
 * without parsing (how `incidents ... show ...` is routed). No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "options.h"
#include "vigil/mem.h"

/* A command like `get`: -t TYPE, -a, --owner O (long only), --fail (its callback refuses). */
struct own {
    const char *type;
    const char *owner;
    int all;
    int calls;
};

static FILE *usage_to;

static void test_usage(FILE *out)
{
    usage_to = out;
}

static int own_flag(void *ctx, int opt, const char *arg)
{
    struct own *o = ctx;

    o->calls++;
    switch (opt) {
    case 't':
        o->type = arg;
        return CLI_CONTINUE;
    case CLI_LONG_ONLY('O'):
        o->owner = arg;
        return CLI_CONTINUE;
    case 'a':
        o->all++;
        return CLI_CONTINUE;
    default:
        return CLI_EXIT_USAGE;
    }
}

static const char *const outputs[] = {"table", "wide", "json", NULL};
static const struct option own_opts[] = {{"type", required_argument, NULL, 't'},
                                         {"owner", required_argument, NULL, CLI_LONG_ONLY('O')},
                                         {"all", no_argument, NULL, 'a'},
                                         {"fail", no_argument, NULL, CLI_LONG_ONLY('F')},
                                         {NULL, 0, NULL, 0}};

static struct cli_readonly_cmd command(struct own *o)
{
    struct cli_readonly_cmd cmd = {"get", outputs, test_usage, own_opts, NULL, own_flag, o};
    return cmd;
}

#define MAX_ARGS 16

/* Parse a NULL-terminated argv literal (copied: getopt permutes it). */
static int parse(struct own *o, struct cli_readonly *ro, char **store, const char *const *args)
{
    struct cli_readonly_cmd cmd = command(o);
    int argc = 0;

    memset(o, 0, sizeof(*o));
    usage_to = NULL;
    while (args[argc]) {
        store[argc] = (char *)args[argc];
        argc++;
    }
    store[argc] = NULL;
    return cli_readonly_parse(&cmd, argc, store, ro);
}

static void test_shared_and_own_flags(void **state)
{
    static const char *const args[] = {
        "get",  "-c", "x.yaml", "--redis", "redis://h:1/0", "--prefix", "p",  "-o",
        "wide", "ID", "-t",     "svc",     "--owner",       "me",       "-a", NULL};
    char *store[MAX_ARGS];
    struct own o;
    struct cli_readonly ro;
    (void)state;

    assert_int_equal(parse(&o, &ro, store, args), CLI_CONTINUE);
    assert_string_equal(ro.config_path, "x.yaml");
    assert_string_equal(ro.redis_url, "redis://h:1/0");
    assert_string_equal(ro.prefix, "p");
    assert_string_equal(ro.output, "wide");
    assert_string_equal(o.type, "svc");
    assert_string_equal(o.owner, "me");
    assert_int_equal(o.all, 1);
    assert_int_equal(ro.n_args, 1); /* operands are gathered after the flags */
    assert_string_equal(ro.args[0], "ID");
    assert_null(usage_to);
}

/* Every spelling getopt_long takes, and defaults; each parse starts afresh. */
static void test_spellings(void **state)
{
    static const struct {
        const char *args[8];
        const char *output;
        const char *config;
        int n_args;
    } cases[] = {
        {{"get", NULL}, "table", NULL, 0},
        {{"get", "-ojson", NULL}, "json", NULL, 0},
        {{"get", "--output=json", "A", "B", NULL}, "json", NULL, 2},
        {{"get", "--out", "wide", NULL}, "wide", NULL, 0},
        {{"get", "-cfile.yaml", "-ao", "json", NULL}, "json", "file.yaml", 0},
        {{"get", "--config=c.yaml", "--", "-o", NULL}, "table", "c.yaml", 1},
        {{"get", "A", "--conf", "c.yaml", "B", NULL}, "table", "c.yaml", 2},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char *store[MAX_ARGS];
        struct own o;
        struct cli_readonly ro;
        int rc = parse(&o, &ro, store, cases[i].args);

        if (rc != CLI_CONTINUE || strcmp(ro.output, cases[i].output) != 0 ||
            (cases[i].config ? !ro.config_path || strcmp(ro.config_path, cases[i].config) != 0
                             : ro.config_path != NULL) ||
            ro.n_args != cases[i].n_args) {
            fprintf(stderr, "case %zu: rc %d output %s config %s operands %d\n", i, rc, ro.output,
                    ro.config_path ? ro.config_path : "(none)", ro.n_args);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Read what `fn` writes to stderr. */
static char *capture_stderr(int (*fn)(void *), void *arg, int *rc)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    char *text = vg_calloc(1, 1024);
    size_t n;

    assert_non_null(tmp);
    fflush(stderr);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    *rc = fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    n = fread(text, 1, 1023, tmp);
    text[n] = '\0';
    fclose(tmp);
    return text;
}

static int parse_bad_output(void *arg)
{
    static const char *const args[] = {"get", "-o", "yaml", NULL};
    char *store[MAX_ARGS];
    struct own o;

    return parse(&o, arg, store, args);
}

static void test_refusals(void **state)
{
    static const char *const help[] = {"get", "-t", "x", "-h", "-o", "bogus", NULL};
    static const char *const unknown[] = {"get", "--bogus", NULL};
    static const char *const short_unknown[] = {"get", "-r", "redis://h", NULL};
    static const char *const missing[] = {"get", "-o", NULL};
    static const char *const refused[] = {"get", "--fail", "-t", "late", NULL};
    char *store[MAX_ARGS];
    struct own o;
    struct cli_readonly ro;
    char *err;
    int rc;
    (void)state;

    /* -h: usage on stdout, exit 0, before the bad output format is looked at */
    assert_int_equal(parse(&o, &ro, store, help), CLI_EXIT_OK);
    assert_ptr_equal(usage_to, stdout);
    /* unknown flags (--redis has no short form), a missing value: usage on stderr, exit 2 */
    assert_int_equal(parse(&o, &ro, store, unknown), CLI_EXIT_USAGE);
    assert_ptr_equal(usage_to, stderr);
    assert_int_equal(parse(&o, &ro, store, short_unknown), CLI_EXIT_USAGE);
    assert_ptr_equal(usage_to, stderr);
    assert_int_equal(parse(&o, &ro, store, missing), CLI_EXIT_USAGE);
    /* the command's own refusal stops the parse */
    assert_int_equal(parse(&o, &ro, store, refused), CLI_EXIT_USAGE);
    assert_int_equal(o.calls, 1);
    assert_null(o.type);
    /* an output format the command does not have: named, with the ones it has */
    err = capture_stderr(parse_bad_output, &ro, &rc);
    assert_int_equal(rc, CLI_EXIT_USAGE);
    assert_string_equal(err, "vigil get: unknown output format \"yaml\" (table, wide or json)\n");
    free(err);
}

static void test_first_operand(void **state)
{
    static const struct {
        const char *args[10];
        int want;
    } cases[] = {
        {{"incidents", NULL}, 1},
        {{"incidents", "show", "ID", NULL}, 1},
        {{"incidents", "-c", "x.yaml", "--redis", "u", "show", NULL}, 5},
        {{"incidents", "-ojson", "--config=x", "-a", "show", NULL}, 4},
        {{"incidents", "-ao", "json", "--owner", "me", "show", NULL}, 5},
        {{"incidents", "--conf", "x", "show", NULL}, 3},
        {{"incidents", "--", "-c", NULL}, 2},
        {{"incidents", "-", NULL}, 1},
        {{"incidents", "-o", NULL}, 2},
        {{"incidents", "-a", "--all", "-t", NULL}, 5},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct own o;
        struct cli_readonly_cmd cmd = command(&o);
        int argc = 0;
        int got;

        while (cases[i].args[argc]) {
            argc++;
        }
        got = cli_readonly_first_operand(&cmd, argc, (char **)cases[i].args);
        if (got != (cases[i].want < argc ? cases[i].want : argc)) {
            fprintf(stderr, "case %zu: first operand %d, want %d\n", i, got, cases[i].want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_and_own_flags),
        cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_first_operand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
