/*
 * The pure parts of `vigil get` (cli/render.c and cli/cmd_get.c, compiled
 * into this test): kubectl-style ages, display width of unicode text, YAML
 * scalars, the dataos-ctl grid (alignment with wide characters, control
 * characters neutralised) and the seed's table kept byte for byte. No
 * sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "render.h"
#include "vigil/mem.h"

#define S 1000LL
#define M (60 * S)
#define H (60 * M)
#define D (24 * H)

static void test_age(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {-5 * S, "<invalid>"},
        {-1500, "0s"},
        {0, "0s"},
        {999, "0s"},
        {45 * S, "45s"},
        {119 * S, "119s"},
        {2 * M, "2m"},
        {5 * M + 30 * S, "5m30s"},
        {9 * M + 59 * S, "9m59s"},
        {12 * M, "12m"},
        {12 * M + 30 * S, "12m"},
        {179 * M, "179m"},
        {3 * H, "3h"},
        {3 * H + 5 * M, "3h5m"},
        {7 * H + 59 * M, "7h59m"},
        {8 * H, "8h"},
        {47 * H, "47h"},
        {2 * D, "2d"},
        {2 * D + 3 * H, "2d3h"},
        {8 * D, "8d"},
        {400 * D, "400d"},
        {730 * D, "2y"},
        {731 * D, "2y1d"},
        {9 * 365 * D, "9y"},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[32];

        cli_format_age(cases[i].ms, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0) {
            fprintf(stderr, "case %zu: %lld ms -> \"%s\", want \"%s\"\n", i, (long long)cases[i].ms,
                    got, cases[i].want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_width(void **state)
{
    static const struct {
        const char *s;
        size_t want;
    } cases[] = {
        {"", 0},
        {"orders-api", 10},
        {"daten-fluß-ü", 12},
        {"数据管道-北京", 13}, /* six wide characters and a hyphen */
        {"e\xcc\x81", 1},      /* e + combining acute */
        {"\xff", 1},           /* invalid byte: one column */
        {"ｆｕｌｌ", 8},       /* fullwidth forms */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cli_display_width(cases[i].s) != cases[i].want) {
            fprintf(stderr, "case %zu: \"%s\" width %zu, want %zu\n", i, cases[i].s,
                    cli_display_width(cases[i].s), cases[i].want);
        }
        assert_int_equal(cli_display_width(cases[i].s), cases[i].want);
    }
}

static void test_yaml_scalar(void **state)
{
    static const struct {
        const char *s;
        const char *want;
    } cases[] = {
        {"orders-api", "orders-api"},
        {"service:v2:orders-api:sandbox", "service:v2:orders-api:sandbox"},
        {"", "\"\""},
        {"true", "\"true\""},
        {"Yes", "\"Yes\""},
        {"on", "\"on\""},
        {"null", "\"null\""},
        {"n", "\"n\""},
        {"2026-11-28T10:00:00Z", "\"2026-11-28T10:00:00Z\""},
        {"1.5", "\"1.5\""},
        {"-x", "\"-x\""},
        {"a: b", "\"a: b\""},
        {"ends:", "\"ends:\""},
        {"#x", "\"#x\""},
        {"a b", "\"a b\""},
        {"daten-fluß-ü", "daten-fluß-ü"},
        {"数据管道-北京", "数据管道-北京"},
        {"x\xc2\x85y", "\"x\\u0085y\""},   /* NEL: a line break to YAML 1.1 */
        {"a\xe2\x80\xa8", "\"a\\u2028\""}, /* LINE SEPARATOR */
        {"\xef\xbb\xbf"
         "bom",
         "\"\\ufeffbom\""}, /* BOM */
        {"tab\there", "\"tab\\there\""},
        {"esc\033", "\"esc\\u001b\""},
        {"say \"hi\"\n", "\"say \\\"hi\\\"\\n\""},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vg_buf b = {0};

        cli_yaml_scalar(&b, cases[i].s);
        if (strcmp(b.data, cases[i].want) != 0) {
            fprintf(stderr, "case %zu: %s -> %s, want %s\n", i, cases[i].s, b.data, cases[i].want);
        }
        assert_string_equal(b.data, cases[i].want);
        vg_buf_fini(&b);
    }
    {
        struct vg_buf b = {0};

        cli_yaml_scalar(&b, NULL);
        assert_string_equal(b.data, "null");
        vg_buf_fini(&b);
    }
}

static char *render_grid(const char *const *headers, size_t ncols, const char *const *cells,
                         const char *const *colors, size_t nrows)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);

    assert_non_null(fp);
    cli_print_grid(fp, headers, ncols, cells, colors, nrows);
    fclose(fp);
    return buf;
}

static void test_grid(void **state)
{
    static const char *const headers[] = {"NAME", "OWNER"};
    static const char *const cells[] = {"数据", "王", "a\033[2Jb\n", NULL};
    static const char *const colors[] = {NULL, "\033[32m", NULL, NULL};
    char *out;
    (void)state;

    out = render_grid(headers, 2, cells, NULL, 2);
    /* "数据" is 4 columns wide (6 bytes); ESC and newline print as '?'. */
    assert_string_equal(out, "  NAME   | OWNER\n"
                             "---------|-------\n"
                             " 数据    | 王\n"
                             " a?[2Jb? | \n");
    free(out);
    out = render_grid(headers, 2, cells, colors, 1);
    assert_string_equal(out, " NAME | OWNER\n"
                             "------|-------\n"
                             " 数据 | \033[32m王\033[0m\n");
    free(out);
}

/* The seed's table, exactly as the demo test and users' scripts see it. */
static void test_table_unchanged(void **state)
{
    struct vg_resource a = {0};
    struct vg_resource b = {0};
    struct vg_resource *v[2] = {&a, &b};
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    (void)state;

    a.name = (char *)"customer-360-refresh";
    a.version = (char *)"v1";
    a.type = (char *)"workflow";
    a.workspace = (char *)"public";
    snprintf(a.status, sizeof(a.status), "active");
    snprintf(a.runtime, sizeof(a.runtime), "failed");
    a.owner = (char *)"iamgroot";
    b.name = (char *)"orders-api";
    b.version = (char *)"v2";
    b.type = (char *)"service";
    b.workspace = (char *)"sandbox";
    snprintf(b.status, sizeof(b.status), "error");
    snprintf(b.runtime, sizeof(b.runtime), "running");
    b.owner = (char *)"";
    assert_non_null(fp);
    cli_print_table(fp, v, 2, true);
    fclose(fp);
    assert_string_equal(buf,
                        "         NAME         | VERSION |   TYPE   | WORKSPACE | STATUS | "
                        "RUNTIME |  OWNER\n"
                        "----------------------|---------|----------|-----------|--------|-----"
                        "----|----------\n"
                        " customer-360-refresh | v1      | workflow | public    | "
                        "\033[32mactive\033[0m | \033[31mfailed\033[0m  | iamgroot\n"
                        " orders-api           | v2      | service  | sandbox   | "
                        "\033[31merror\033[0m  | \033[32mrunning\033[0m | \n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_width),
        cmocka_unit_test(test_yaml_scalar),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_table_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
