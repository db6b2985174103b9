/*
 * core/ utilities: RFC 3339 parse/format, durations, globs, fingerprints,
 * strict integers, URL redaction, the string map, vg_buf, UTF-8
 * validation and error names. Pure and table-driven: every table loop
 * reports the failing index and both values, then counts it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/err.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

/* Copy `s` into a heap buffer of exactly its length (no NUL) so ASan sees over-reads. */
static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

static bool parse_time_exact(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    char *buf = exact_copy(s, len);
    bool ok = vg_time_parse_rfc3339(buf, len, out);
    free(buf);
    return ok;
}

/* A string and what an int64 parser makes of it (`want` only when `ok`). */
struct i64_case {
    const char *s;
    bool ok;
    int64_t want;
};

/* Run `parse` over every case; print each mismatch by index and input. */
static void run_i64_cases(const struct i64_case *cases, size_t n,
                          bool (*parse)(const char *s, int64_t *out))
{
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t got = -7;
        bool ok = parse(cases[i].s, &got);
        if (ok != cases[i].ok || (ok && got != cases[i].want)) {
            print_error("case %zu \"%s\": want %s %lld, got %s %lld\n", i, cases[i].s,
                        cases[i].ok ? "ok" : "invalid", (long long)cases[i].want,
                        ok ? "ok" : "invalid", (long long)got);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_time_parse(void **state)
{
    static const struct i64_case cases[] = {
        {"2026-11-28T10:00:00Z", true, 1795860000000},
        {"2026-11-28T10:00:00.123Z", true, 1795860000123},
        {"2026-11-28T10:00:00.1Z", true, 1795860000100},
        {"2026-11-28T10:00:00.12Z", true, 1795860000120},
        {"2026-11-28T10:00:00.123456789Z", true, 1795860000123}, /* truncated to ms */
        {"2026-11-28t10:00:00z", true, 1795860000000},
        {"2026-11-28 10:00:00Z", true, 1795860000000},
        {"2026-11-28T12:00:00+02:00", true, 1795860000000},
        {"2026-11-28T05:30:00-04:30", true, 1795860000000},
        {"2026-11-28T10:00:00+00:00", true, 1795860000000},
        {"2026-11-28T10:00:00-00:00", true, 1795860000000},
        {"2026-11-28T12:00:00.123+02:00", true, 1795860000123},
        {"2026-11-29T00:30:00+14:30", true, 1795860000000},
        {"1970-01-01T00:00:00Z", true, 0},
        {"1969-12-31T23:59:59Z", true, -1000},
        {"2024-02-29T00:00:00Z", true, 1709164800000},
        {"2000-02-29T23:59:59Z", true, 951868799000},
        {"2038-01-19T03:14:08Z", true, 2147483648000},
        {"2100-03-01T00:00:00Z", true, 4107542400000},
        {"2026-11-28T10:00:60Z", true, 1795860059000}, /* leap second clamped */
        /* invalid */
        {"", false, 0},
        {"2026-11-28", false, 0},
        {"2026-11-28T10:00:00", false, 0},     /* missing zone */
        {"2026-11-28T10:00:00.123", false, 0}, /* missing zone */
        {"2026-02-30T00:00:00Z", false, 0},
        {"2026-04-31T00:00:00Z", false, 0},
        {"2026-13-01T00:00:00Z", false, 0},
        {"2026-00-01T00:00:00Z", false, 0},
        {"2026-11-00T00:00:00Z", false, 0},
        {"2026-11-28T24:00:00Z", false, 0},
        {"2026-11-28T10:60:00Z", false, 0},
        {"2026-11-28T10:00:61Z", false, 0},
        {"2026-11-28X10:00:00Z", false, 0},
        {"2026/11/28T10:00:00Z", false, 0},
        {"26-11-28T10:00:00Z", false, 0},
        {"2026-1-28T10:00:00Z", false, 0},
        {"2026-11-28T10:00:00.Z", false, 0},
        {"2026-11-28T10:00:00.", false, 0},
        {"2026-11-28T10:00:00+0200", false, 0},
        {"2026-11-28T10:00:00+02", false, 0},
        {"2026-11-28T10:00:00+24:00", false, 0},
        {"2026-11-28T10:00:00+02:60", false, 0},
        {"2026-11-28T10:00:00ZZ", false, 0},
        {"2026-11-28T10:00:00Z ", false, 0},
        {" 2026-11-28T10:00:00Z", false, 0},
        {"2026-11-28T10:00:00UTC", false, 0},
        {"yesterday at noon, roughly", false, 0},
        {"1795860000", false, 0},
    };

    (void)state;
    run_i64_cases(cases, VG_ARRAY_LEN(cases), parse_time_exact);
}

/* Only the first `len` bytes count: a valid time followed by junk past len parses. */
static void test_time_parse_uses_len(void **state)
{
    const char *s = "2026-11-28T10:00:00Zjunk";
    int64_t got = 0;

    (void)state;
    assert_true(vg_time_parse_rfc3339(s, 20, &got));
    assert_int_equal(got, 1795860000000);
    assert_false(vg_time_parse_rfc3339(s, 19, &got));
    assert_false(vg_time_parse_rfc3339(s, 0, &got));
}

/*
 * Regression (core/util.c, vg_time_parse_rfc3339): the day check uses a fixed
 * table with 29 days for February, so 29 February of a non-leap year
 * (2026-02-29, 1900-02-29, 2100-02-29) is accepted instead of rejected
 * (RFC 3339 section 5.7: date-mday 29 only in leap years).
 */
static void test_time_parse_feb29_non_leap_regression(void **state)
{
    static const char *const cases[] = {
        "2026-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        int64_t got = 0;
        if (parse_time_exact(cases[i], &got)) {
            print_error("case %zu \"%s\": want invalid, got ok %lld\n", i, cases[i],
                        (long long)got);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* Days since the epoch of a date, both sides of it and across leap rules (RFC 3339 and the time
 * zones share it). */
static void test_days_from_civil(void **state)
{
    static const struct {
        int64_t y;
        int m;
        int d;
        int64_t want;
    } cases[] = {
        {1970, 1, 1, 0},       {1969, 12, 31, -1},    {1970, 3, 1, 59},
        {2000, 2, 29, 11016},  {2000, 3, 1, 11017},   {1900, 3, 1, -25508},
        {2026, 11, 28, 20785}, {1600, 1, 1, -135140}, {2100, 3, 1, 47541},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = vg_days_from_civil(cases[i].y, cases[i].m, cases[i].d);

        if (got != cases[i].want) {
            fprintf(stderr, "case %zu: %lld-%d-%d: got %lld, want %lld\n", i, (long long)cases[i].y,
                    cases[i].m, cases[i].d, (long long)got, (long long)cases[i].want);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_time_format(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1795860000000, "2026-11-28T10:00:00Z"},
        {1795860000123, "2026-11-28T10:00:00.123Z"},
        {1795860000005, "2026-11-28T10:00:00.005Z"},
        {1795860000100, "2026-11-28T10:00:00.100Z"},
        {1709164800000, "2024-02-29T00:00:00Z"},
        {2147483648000, "2038-01-19T03:14:08Z"},
        {-1000, "1969-12-31T23:59:59Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char out[32];
        int64_t back = 0;
        memset(out, 'x', sizeof(out));
        vg_time_format_rfc3339(cases[i].ms, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0) {
            print_error("case %zu %lld: want \"%s\", got \"%.32s\"\n", i, (long long)cases[i].ms,
                        cases[i].want, out);
            failed++;
            continue;
        }
        /* and it parses back to the same instant */
        if (!parse_time_exact(out, &back) || back != cases[i].ms) {
            print_error("case %zu: \"%s\" parses back to %lld\n", i, out, (long long)back);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_duration_parse(void **state)
{
    static const struct i64_case cases[] = {
        {"500ms", true, 500},
        {"30s", true, 30000},
        {"10m", true, 600000},
        {"4h", true, 14400000},
        {"1d", true, 86400000},
        {"1h30m", true, 5400000},
        {"1m30s", true, 90000},
        {"1s500ms", true, 1500},
        {"2h0m", true, 7200000},
        {"0s", true, 0},
        {"0ms", true, 0},
        {"1000ms", true, 1000},
        {"106751991167d", true, INT64_C(106751991167) * 86400000},
        /* invalid */
        {"", false, 0},
        {"10", false, 0},
        {"m", false, 0},
        {"ms", false, 0},
        {"-1s", false, 0},
        {"+1s", false, 0},
        {"1.5s", false, 0},
        {" 1s", false, 0},
        {"1s ", false, 0},
        {"1 s", false, 0},
        {"1x", false, 0},
        {"1S", false, 0},
        {"1hh", false, 0},
        {"1h30", false, 0},
        {"s1", false, 0},
        {"99999999999999999999ms", false, 0},     /* digits overflow int64 */
        {"9223372036854775807s", false, 0},       /* value * unit overflows */
        {"106751991168d", false, 0},              /* just past INT64_MAX ms */
        {"106751991167d106751991167d", false, 0}, /* the sum overflows */
    };

    (void)state;
    run_i64_cases(cases, VG_ARRAY_LEN(cases), vg_duration_parse);
}

static void test_glob(void **state)
{
    static const struct {
        const char *pattern, *s;
        bool match;
    } matches[] = {
        {"*.yaml", "ops.yaml", true},   {"*.yaml", "ops.yml", false}, {"ws-*", "ws-1", true},
        {"ws-*", "ws", false},          {"a?c", "abc", true},         {"a?c", "ac", false},
        {"[ab]x", "bx", true},          {"[ab]x", "cx", false},       {"[!a]x", "ax", false},
        {"[!a]x", "bx", true},          {"[a-c]*", "cat", true},      {"*", "", true},
        {"*", "anything/at:all", true}, {"*/x", "a/x", true}, /* no FNM_PATHNAME: '*' crosses '/' */
        {"abc", "abc", true},           {"abc", "abd", false},        {"abc", "ABC", false},
        {"a\\*", "a*", true},           {"a\\*", "ab", false},
    };
    static const struct {
        const char *pattern;
        bool valid, is_glob;
    } valid[] = {
        {"abc", true, false},  {"", true, false},   {"a*", true, true},    {"a?", true, true},
        {"[abc]", true, true}, {"[]]", true, true}, {"[!]]x", true, true}, {"a\\*", true, true},
        {"[abc", false, true}, {"a[", false, true}, {"[!", false, true},   {"a\\", false, false},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(matches); i++) {
        bool got = vg_glob_match(matches[i].pattern, matches[i].s);
        if (got != matches[i].match) {
            print_error("match %zu \"%s\" vs \"%s\": want %d, got %d\n", i, matches[i].pattern,
                        matches[i].s, matches[i].match, got);
            failed++;
        }
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(valid); i++) {
        bool got = vg_glob_valid(valid[i].pattern);
        bool g = vg_is_glob(valid[i].pattern);
        if (got != valid[i].valid || g != valid[i].is_glob) {
            print_error("valid %zu \"%s\": want valid=%d is_glob=%d, got %d %d\n", i,
                        valid[i].pattern, valid[i].valid, valid[i].is_glob, got, g);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_fingerprint(void **state)
{
    static const struct {
        const char *parts[5];
        size_t n;
        const char *want;
    } cases[] = {
        /* FNV-1a 64 reference values (computed independently) */
        {{NULL}, 0, "cbf29ce484222325"},
        {{"a"}, 1, "af63dc4c8601ec8c"},
        {{"a", "b"}, 2, "e5beb1190415e670"},
        {{"ab"}, 1, "089c4407b545986a"},
        {{"workflow-failed", "workflow:v1:ingestion-x:public", "vigil.events", "3", "42"},
         5,
         "2a4cbbd67232fb99"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char out[17];
        char again[17];
        memset(out, 'x', sizeof(out));
        vg_fingerprint(out, cases[i].parts, cases[i].n);
        vg_fingerprint(again, cases[i].parts, cases[i].n);
        if (memchr(out, '\0', sizeof(out)) == NULL || strcmp(out, cases[i].want) != 0 ||
            strcmp(out, again) != 0) {
            print_error("case %zu: want %s, got %.17s then %.17s\n", i, cases[i].want, out, again);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_parse_i64(void **state)
{
    static const struct i64_case cases[] = {
        {"0", true, 0},
        {"42", true, 42},
        {"-42", true, -42},
        {"007", true, 7},
        {"9223372036854775807", true, INT64_MAX},
        {"-9223372036854775808", true, INT64_MIN},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"99999999999999999999999", false, 0},
        {"", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1a", false, 0},
        {"1.0", false, 0},
        {"0x10", false, 0},
        {"abc", false, 0},
        {"-", false, 0},
        {"1e3", false, 0},
    };

    (void)state;
    run_i64_cases(cases, VG_ARRAY_LEN(cases), vg_parse_i64);
}

static void test_redact_url(void **state)
{
    /* `want` NULL: only check that `secret` is gone and `prefix` kept. */
    static const struct {
        const char *url;
        const char *want;
        const char *secret;
        const char *prefix;
    } cases[] = {
        {"redis://:pass@host:6379/0", "redis://:<redacted>@host:6379/0", "pass", NULL},
        {"redis://user:pass@h/0", "redis://user:<redacted>@h/0", "pass", NULL},
        {"redis://:p@ss@host/0", "redis://:<redacted>@host/0", "ss", NULL},
        /* a '/' in the password: the parser reads it as part of the password */
        {"redis://:pa/ss@host/0", "redis://:<redacted>@host/0", "pa", NULL},
        {"redis://user:s3/cr/et@host:6379", "redis://user:<redacted>@host:6379", "cr", NULL},
        {"redis://:pa?ss@host/0", "redis://:<redacted>@host/0", "pa", NULL},
        {"redis://:pa#ss@host", "redis://:<redacted>@host", "pa", NULL},
        {"redis://host:6379/0", "redis://host:6379/0", NULL, NULL},
        {"redis://host:6379", "redis://host:6379", NULL, NULL},
        {"redis://127.0.0.1:6379/12", "redis://127.0.0.1:6379/12", NULL, NULL},
        {"https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com/<redacted>", "services",
         NULL},
        {"https://hooks.example.com/vigil/s3cret-token", "https://hooks.example.com/<redacted>",
         "s3cret", NULL},
        {"https://user:pw@host/path", "https://user:<redacted>@host/<redacted>", "pw@", NULL},
        {"https://token@host", "https://<redacted>@host", "token", NULL},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080", NULL, NULL},
        {"unix:///tmp/x.sock", "unix:///tmp/x.sock", NULL, NULL},
        {"unix:///tmp/x.sock?password=s3cret", "unix:///tmp/x.sock?<redacted>", "s3cret", NULL},
        {"not a url s3cret", "<redacted>", "s3cret", NULL},
        /* query strings */
        {"https://example.com/hook?token=s3cret", NULL, "s3cret", "https://example.com"},
        {"https://example.com?token=s3cret", NULL, "s3cret", "https://example.com"},
        {"redis://:pw@host:6379/0?password=s3cret", NULL, "s3cret", "redis://:<redacted>@host"},
        {"redis://host:6379/0?password=s3cret", NULL, "s3cret", "redis://host:6379"},
        {"https://example.com#s3cret", NULL, "s3cret", "https://example.com"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char out[256];
        memset(out, 'x', sizeof(out));
        vg_redact_url(cases[i].url, out, sizeof(out));
        if (!memchr(out, '\0', sizeof(out))) {
            print_error("case %zu: not NUL-terminated\n", i);
            failed++;
            continue;
        }
        if ((cases[i].want && strcmp(out, cases[i].want) != 0) ||
            (cases[i].secret && strstr(out, cases[i].secret)) ||
            (cases[i].prefix && strncmp(out, cases[i].prefix, strlen(cases[i].prefix)) != 0) ||
            (!cases[i].want && !strstr(out, "<redacted>"))) {
            print_error("case %zu \"%s\": want \"%s\" (no \"%s\", prefix \"%s\"), got \"%s\"\n", i,
                        cases[i].url, cases[i].want ? cases[i].want : "?",
                        cases[i].secret ? cases[i].secret : "",
                        cases[i].prefix ? cases[i].prefix : "", out);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_redact_url_truncates(void **state)
{
    char out[10];
    char one[1] = {'x'};

    (void)state;
    memset(out, 'x', sizeof(out));
    vg_redact_url("redis://:pass@host:6379/0", out, sizeof(out));
    assert_string_equal(out, "redis://:");
    vg_redact_url("redis://:pass@host:6379/0", one, sizeof(one));
    assert_int_equal(one[0], '\0');
}

static void count_free(void *v)
{
    (*(int *)v)++;
}

static void test_map_basic(void **state)
{
    struct vg_map *m = vg_map_new();
    int a = 1, b = 2, c = 3;
    size_t iter = 0;
    const char *key;
    void *value;
    int seen_a = 0, seen_c = 0;

    (void)state;
    assert_int_equal(vg_map_count(m), 0);
    assert_null(vg_map_get(m, "a"));
    assert_null(vg_map_remove(m, "a"));
    assert_false(vg_map_next(m, &iter, &key, &value));

    assert_null(vg_map_put(m, "a", &a));
    assert_null(vg_map_put(m, "", &c)); /* the empty key is a key */
    assert_ptr_equal(vg_map_get(m, "a"), &a);
    assert_ptr_equal(vg_map_get(m, ""), &c);
    assert_int_equal(vg_map_count(m), 2);

    /* replace returns the previous value and keeps the count */
    assert_ptr_equal(vg_map_put(m, "a", &b), &a);
    assert_ptr_equal(vg_map_get(m, "a"), &b);
    assert_int_equal(vg_map_count(m), 2);

    /* keys are copied */
    {
        char k[8];
        snprintf(k, sizeof(k), "%s", "tmp");
        assert_null(vg_map_put(m, k, &a));
        k[0] = 'X';
        assert_ptr_equal(vg_map_get(m, "tmp"), &a);
        assert_null(vg_map_get(m, "Xmp"));
        assert_ptr_equal(vg_map_remove(m, "tmp"), &a);
        assert_null(vg_map_get(m, "tmp"));
        assert_null(vg_map_remove(m, "tmp"));
    }

    iter = 0;
    while (vg_map_next(m, &iter, &key, &value)) {
        if (strcmp(key, "a") == 0 && value == &b) {
            seen_a++;
        } else if (strcmp(key, "") == 0 && value == &c) {
            seen_c++;
        } else {
            fail_msg("unexpected key \"%s\"", key);
        }
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_c, 1);

    /* destroy calls free_value once per live value */
    {
        int x = 0, y = 0;
        vg_map_put(m, "x", &x);
        vg_map_put(m, "y", &y);
        vg_map_remove(m, "a");
        vg_map_remove(m, "");
        vg_map_destroy(m, count_free);
        assert_int_equal(x, 1);
        assert_int_equal(y, 1);
    }
    vg_map_destroy(NULL, NULL);
}

static void test_map_grow(void **state)
{
    enum { N = 10000 };
    struct vg_map *m = vg_map_new();
    char key[32];
    size_t iter = 0;
    const char *k;
    void *v;
    unsigned char *seen = calloc(N, 1);
    int failed = 0;

    (void)state;
    assert_non_null(seen);
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "workflow:v1:name-%lu:ws", (unsigned long)i);
        assert_null(vg_map_put(m, key, (void *)(i + 1)));
    }
    assert_int_equal(vg_map_count(m), N);
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "workflow:v1:name-%lu:ws", (unsigned long)i);
        if (vg_map_get(m, key) != (void *)(i + 1)) {
            failed++;
        }
    }
    assert_int_equal(failed, 0);

    /* every key exactly once through the iterator */
    while (vg_map_next(m, &iter, &k, &v)) {
        uintptr_t i = (uintptr_t)v - 1;
        char want[32];
        assert_true(i < N);
        snprintf(want, sizeof(want), "workflow:v1:name-%lu:ws", (unsigned long)i);
        assert_string_equal(k, want);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
    }
    for (size_t i = 0; i < N; i++) {
        failed += !seen[i];
    }
    assert_int_equal(failed, 0);

    /* remove the even ones, then churn inserts/removes through the tombstones */
    for (uintptr_t i = 0; i < N; i += 2) {
        snprintf(key, sizeof(key), "workflow:v1:name-%lu:ws", (unsigned long)i);
        assert_ptr_equal(vg_map_remove(m, key), (void *)(i + 1));
    }
    assert_int_equal(vg_map_count(m), N / 2);
    for (int round = 0; round < 3; round++) {
        for (uintptr_t i = 0; i < N; i += 2) {
            snprintf(key, sizeof(key), "churn-%d-%lu", round, (unsigned long)i);
            assert_null(vg_map_put(m, key, (void *)(i + 1)));
        }
        for (uintptr_t i = 0; i < N; i += 2) {
            snprintf(key, sizeof(key), "churn-%d-%lu", round, (unsigned long)i);
            assert_ptr_equal(vg_map_remove(m, key), (void *)(i + 1));
        }
    }
    assert_int_equal(vg_map_count(m), N / 2);
    for (uintptr_t i = 0; i < N; i++) {
        void *want = (i % 2) ? (void *)(i + 1) : NULL;
        snprintf(key, sizeof(key), "workflow:v1:name-%lu:ws", (unsigned long)i);
        if (vg_map_get(m, key) != want) {
            failed++;
        }
    }
    assert_int_equal(failed, 0);

    vg_map_clear(m, NULL);
    assert_int_equal(vg_map_count(m), 0);
    iter = 0;
    assert_false(vg_map_next(m, &iter, &k, &v));
    assert_null(vg_map_put(m, "again", (void *)1));
    assert_ptr_equal(vg_map_get(m, "again"), (void *)1);
    vg_map_destroy(m, NULL);
    free(seen);
}

static void test_buf(void **state)
{
    struct vg_buf b = {0};
    char *s;
    char big[300];

    (void)state;
    /* stealing an empty buffer gives "" (never NULL) */
    s = vg_buf_steal(&b);
    assert_string_equal(s, "");
    free(s);

    vg_buf_puts(&b, "abc");
    vg_buf_putc(&b, '-');
    vg_buf_append(&b, "xyz123", 3);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "abc-xyz");
    vg_buf_printf(&b, " %d %s", 42, "ok");
    assert_string_equal(b.data, "abc-xyz 42 ok");
    assert_int_equal(b.len, strlen("abc-xyz 42 ok"));

    /* a formatted piece longer than the spare room takes the second vsnprintf pass */
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    vg_buf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, 13 + 2 + 299);
    assert_int_equal(b.data[13], '[');
    assert_int_equal(b.data[13 + 1 + 298], 'q');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_true(b.cap > b.len);

    /* embedded NUL bytes are kept by append */
    vg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    vg_buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);

    s = vg_buf_steal(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_memory_equal(s, "a\0b", 4);
    free(s);

    /* many small appends */
    for (int i = 0; i < 10000; i++) {
        vg_buf_putc(&b, (char)('a' + i % 26));
    }
    assert_int_equal(b.len, 10000);
    assert_int_equal(strlen(b.data), 10000);
    assert_int_equal(b.data[9999], 'a' + 9999 % 26);
    vg_buf_fini(&b);
    assert_null(b.data);
    vg_buf_fini(&b);

    s = vg_asprintf("%s:%s:%d", "job", "v1", 7);
    assert_string_equal(s, "job:v1:7");
    free(s);
    s = vg_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = vg_strndup("ab", 10);
    assert_string_equal(s, "ab");
    free(s);
}

static void test_utf8_valid(void **state)
{
    static const struct {
        const char *s;
        size_t len; /* 0: strlen */
        bool valid;
    } cases[] = {
        {"", 0, true},
        {"plain ascii", 0, true},
        {"\xc3\xa9", 0, true},         /* é */
        {"\xe2\x82\xac", 0, true},     /* € */
        {"\xf0\x9f\x98\x80", 0, true}, /* 😀 */
        {"\xef\xbf\xbf", 0, true},     /* U+FFFF */
        {"\xf4\x8f\xbf\xbf", 0, true}, /* U+10FFFF */
        {"\xed\x9f\xbf", 0, true},     /* U+D7FF, just below the surrogates */
        {"\xee\x80\x80", 0, true},     /* U+E000, just above */
        {"\xc2\x80", 0, true},         /* U+0080, smallest 2-byte */
        {"\xe0\xa0\x80", 0, true},     /* U+0800, smallest 3-byte */
        {"\xf0\x90\x80\x80", 0, true}, /* U+10000, smallest 4-byte */
        {"a\0b", 3, true},             /* NUL is valid UTF-8 */
        /* overlong */
        {"\xc0\x80", 0, false},
        {"\xc0\xaf", 0, false},
        {"\xc1\xbf", 0, false},
        {"\xe0\x80\x80", 0, false},
        {"\xe0\x9f\xbf", 0, false},
        {"\xf0\x80\x80\x80", 0, false},
        {"\xf0\x8f\xbf\xbf", 0, false},
        /* lone / stray continuation bytes */
        {"\x80", 0, false},
        {"a\xbf"
         "b",
         0, false},
        {"\xc3\xa9\xa9", 0, false},
        /* truncated sequences */
        {"\xc3", 0, false},
        {"a\xe2\x82", 0, false},
        {"\xf0\x9f\x98", 0, false},
        {"\xc3"
         "a",
         0, false},
        /* surrogates */
        {"\xed\xa0\x80", 0, false},
        {"\xed\xbf\xbf", 0, false},
        {"\xed\xa0\xbd\xed\xb8\x80", 0, false}, /* CESU-8 pair */
        /* beyond U+10FFFF and invalid lead bytes */
        {"\xf4\x90\x80\x80", 0, false},
        {"\xf5\x80\x80\x80", 0, false},
        {"\xf8\x88\x80\x80\x80", 0, false},
        {"\xfe", 0, false},
        {"\xff", 0, false},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
        char *buf = exact_copy(cases[i].s, len);
        bool got = vg_utf8_valid(buf, len);
        free(buf);
        if (got != cases[i].valid) {
            print_error("case %zu: want %s, got %s\n", i, cases[i].valid ? "valid" : "invalid",
                        got ? "valid" : "invalid");
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_json_depth(void **state)
{
    static const struct {
        const char *json;
        int limit;
        int want;
    } cases[] = {
        {"1", 32, 0},
        {"{}", 32, 1},
        {"{\"a\":[{}]}", 32, 3},
        {"{\"a\":\"[[[[{{{{\"}", 32, 1}, /* brackets in strings don't count */
        {"{\"a\":\"\\\"[[[\"}", 32, 1},  /* nor after an escaped quote */
        {"[[[[[[", 3, 4},                /* stops counting at limit + 1 */
        {"[][][][]", 32, 1},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        size_t len = strlen(cases[i].json);
        char *buf = exact_copy(cases[i].json, len);
        int got = vg_json_depth(buf, len, cases[i].limit);
        free(buf);
        if (got != cases[i].want) {
            print_error("case %zu %s: want %d, got %d\n", i, cases[i].json, cases[i].want, got);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_err_names(void **state)
{
    static const struct {
        vg_err_t err;
        const char *name;
        bool retriable;
    } cases[] = {
        {VG_OK, "OK", false},
        {VG_ERR_INVALID, "INVALID", false},
        {VG_ERR_PARSE, "PARSE", false},
        {VG_ERR_IO, "IO", false},
        {VG_ERR_BACKEND, "BACKEND", true},
        {VG_ERR_TIMEOUT, "TIMEOUT", true},
        {VG_ERR_REJECTED, "REJECTED", false},
        {VG_ERR_FATAL, "FATAL", false},
        {VG_ERR_CONFLICT, "CONFLICT", true},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        if (strcmp(vg_err_name(cases[i].err), cases[i].name) != 0 ||
            vg_err_is_retriable(cases[i].err) != cases[i].retriable) {
            print_error("case %zu: want %s/%d, got %s/%d\n", i, cases[i].name, cases[i].retriable,
                        vg_err_name(cases[i].err), vg_err_is_retriable(cases[i].err));
            failed++;
        }
    }
    assert_int_equal(failed, 0);
    assert_string_equal(vg_err_name((vg_err_t)-99), "UNKNOWN");
}

/* Log levels, per-facility DEBUG, and the one-line record format on stderr. */
static void test_log(void **state)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    char line[256] = "";
    char *sp;
    int64_t before = vg_now_ms();
    int64_t ts = 0;

    (void)state;
    assert_non_null(tmp);
    assert_true(saved >= 0);

    vg_log_set_level(VG_LOG_LEVEL_INFO);
    assert_true(vg_log_enabled(VG_LOG_LEVEL_ERROR, "state"));
    assert_true(vg_log_enabled(VG_LOG_LEVEL_WARN, "state"));
    assert_true(vg_log_enabled(VG_LOG_LEVEL_INFO, "state"));
    assert_false(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "state"));
    vg_log_enable_debug("consumer,rules");
    assert_true(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "consumer"));
    assert_true(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "rules"));
    assert_false(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "state"));
    assert_false(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "cons"));
    assert_false(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "rule"));
    vg_log_set_level(VG_LOG_LEVEL_ERROR);
    assert_false(vg_log_enabled(VG_LOG_LEVEL_WARN, "state"));
    assert_true(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "consumer"));

    /* one record, one line: "<RFC 3339> LEVEL facility: message" */
    fflush(stderr);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    VG_LOG_WARN("state", "not shown %d", 1);
    VG_LOG_ERROR("state", "redis unavailable, retry in %d ms: %s", 200, "boom");
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    vg_log_set_level(VG_LOG_LEVEL_INFO);

    rewind(tmp);
    assert_non_null(fgets(line, sizeof(line), tmp));
    sp = strchr(line, ' ');
    assert_non_null(sp);
    assert_string_equal(sp, " ERROR state: redis unavailable, retry in 200 ms: boom\n");
    assert_true(vg_time_parse_rfc3339(line, (size_t)(sp - line), &ts));
    assert_true(ts >= before - 1000 && ts <= vg_now_ms() + 1000);
    assert_null(fgets(line, sizeof(line), tmp)); /* the WARN was filtered out */
    fclose(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_parse_uses_len),
        cmocka_unit_test(test_time_parse_feb29_non_leap_regression),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_days_from_civil),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_redact_url_truncates),
        cmocka_unit_test(test_map_basic),
        cmocka_unit_test(test_map_grow),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
