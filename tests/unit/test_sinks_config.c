/*
 * vg_sinks_new validation (names, types, urls, headers, limits) and the
 * webhook status-code table. No sockets: building a webhook sink only
 * creates its libcurl handle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sinks_int.h"
#include "vigil/mem.h"
#include "vigil/sinks.h"

#define SECRET "s3cr3t-T0KEN"

#define S(x) ((char *)(x))

static void test_validation_table(void **state)
{
    static struct vg_kv good_hdr[] = {{S("Authorization"), S("Bearer " SECRET)},
                                      {S("X-Empty"), S("")}};
    static struct vg_kv crlf_hdr[] = {{S("X-A"), S("ok\r\nX-Injected: " SECRET)}};
    static struct vg_kv space_hdr[] = {{S("Bad Name"), S("v")}};
    static struct vg_kv idem_hdr[] = {{S("idempotency-key"), S("mine")}};
    static struct vg_kv host_hdr[] = {{S("Host"), S("elsewhere")}};
    static struct vg_kv ct_hdr[] = {{S("Content-Type"), S("application/cloudevents+json")}};
    static char *to[] = {S("oncall@example.com"), NULL};
    static char *bad_to[] = {S("oncall@example.com>\r\nBcc: x@evil.example"), NULL};
/* One sink config (its fields), and what vg_sinks_new must answer. */
#define ONE(want, in_errstr, ...)                                                                  \
    {                                                                                              \
        {{__VA_ARGS__}}, 1, want, in_errstr                                                        \
    }
#define HOOK(want, in_errstr, ...)                                                                 \
    ONE(want, in_errstr, .name = S("w"), .type = S("webhook"), __VA_ARGS__)
#define MAIL(want, in_errstr, ...)                                                                 \
    ONE(want, in_errstr, .name = S("m"), .type = S("email"), __VA_ARGS__)
#define FROM_TO(rcpt) .from = S("vigil@example.com"), .to = rcpt, .n_to = 1
    static const struct {
        struct vg_sink_config cfgs[2];
        size_t n;
        vg_err_t want;
        const char *want_in_errstr;
    } cases[] = {
        ONE(VG_OK, NULL, .name = S("c"), .type = S("console")),
        HOOK(VG_OK, NULL, .url = S("https://h.example/" SECRET)),
        HOOK(VG_OK, NULL, .url = S("http://127.0.0.1:9/x"), .headers = good_hdr, .n_headers = 2),
        HOOK(VG_OK, NULL, .url = S("http://h/x"), .headers = ct_hdr, .n_headers = 1),
        {{{.name = S("a"), .type = S("console")}, {.name = S("a"), .type = S("console")}},
         2,
         VG_ERR_INVALID,
         "duplicate"},
        ONE(VG_ERR_INVALID, "name", .name = S(""), .type = S("console")),
        ONE(VG_ERR_INVALID, "name", .name = NULL, .type = S("console")),
        ONE(VG_ERR_INVALID, "unknown type", .name = S("x"), .type = S("carrier-pigeon")),
        /* teams, email, pagerduty */
        ONE(VG_OK, NULL, .name = S("t"), .type = S("teams"),
            .url = S("https://h.example/wf/" SECRET)),
        ONE(VG_ERR_INVALID, "url", .name = S("t"), .type = S("teams")),
        ONE(VG_ERR_INVALID, "http or https", .name = S("t"), .type = S("teams"),
            .url = S("smtp://h.example/" SECRET)),
        ONE(VG_OK, NULL, .name = S("p"), .type = S("pagerduty"), .routing_key = S(SECRET)),
        ONE(VG_ERR_INVALID, "routing_key", .name = S("p"), .type = S("pagerduty")),
        ONE(VG_ERR_INVALID, "url", .name = S("p"), .type = S("pagerduty"), .routing_key = S(SECRET),
            .url = S("events.example/" SECRET)),
        MAIL(VG_OK, NULL, .url = S("smtp://mail.example:587"), FROM_TO(to), .username = S("u"),
             .password = S(SECRET)),
        MAIL(VG_ERR_INVALID, "from and to", .url = S("smtp://mail.example:587")),
        MAIL(VG_ERR_INVALID, "smtp://", .url = S("https://mail.example/" SECRET), FROM_TO(to)),
        MAIL(VG_ERR_INVALID, "not an address", .url = S("smtp://mail.example"), FROM_TO(bad_to)),
        MAIL(VG_ERR_INVALID, "not an address", .url = S("smtp://mail.example"), .from = S("vigil"),
             .to = to, .n_to = 1),
        MAIL(VG_ERR_INVALID, "go together", .url = S("smtp://mail.example"), FROM_TO(to),
             .password = S(SECRET)),
        MAIL(VG_ERR_INVALID, "starttls", .url = S("smtp://mail.example"), FROM_TO(to),
             .starttls = S("sometimes")),
        ONE(VG_ERR_INVALID, "webhook_url", .name = S("x"), .type = S("slack")),
        ONE(VG_ERR_INVALID, "type", .name = S("x"), .type = NULL),
        ONE(VG_ERR_INVALID, "url", .name = S("w"), .type = S("webhook")),
        HOOK(VG_ERR_INVALID, "url", .url = S("")),
        HOOK(VG_ERR_INVALID, "http or https", .url = S("ftp://h.example/" SECRET)),
        HOOK(VG_ERR_INVALID, "url", .url = S("file:///etc/" SECRET)),
        HOOK(VG_ERR_INVALID, "url", .url = S("h.example/" SECRET)),
        HOOK(VG_ERR_INVALID, "url", .url = S("https:///" SECRET)),
        HOOK(VG_ERR_INVALID, "X-A", .url = S("http://h/x"), .headers = crlf_hdr, .n_headers = 1),
        HOOK(VG_ERR_INVALID, "token", .url = S("http://h/x"), .headers = space_hdr, .n_headers = 1),
        HOOK(VG_ERR_INVALID, "set by vigil", .url = S("http://h/x"), .headers = idem_hdr,
             .n_headers = 1),
        HOOK(VG_ERR_INVALID, "set by vigil", .url = S("http://h/x"), .headers = host_hdr,
             .n_headers = 1),
        HOOK(VG_ERR_INVALID, "timeout", .url = S("http://h/x"), .timeout_ms = -1),
        HOOK(VG_ERR_INVALID, "max_attempts", .url = S("http://h/x"), .max_attempts = -2),
    };
#undef FROM_TO
#undef MAIL
#undef HOOK
#undef ONE
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_sinks *sk = (struct vg_sinks *)&failures; /* must be reset to NULL on error */
        char errstr[256] = "";
        vg_err_t err = vg_sinks_new(&sk, cases[i].cfgs, cases[i].n, NULL, errstr, sizeof(errstr));
        if (err != cases[i].want) {
            print_error("case %zu: got %s want %s (%s)\n", i, vg_err_name(err),
                        vg_err_name(cases[i].want), errstr);
            failures++;
        } else if (err != VG_OK && sk != NULL) {
            print_error("case %zu: *out not NULL on error\n", i);
            failures++;
        } else if (cases[i].want_in_errstr && !strstr(errstr, cases[i].want_in_errstr)) {
            print_error("case %zu: errstr \"%s\" lacks \"%s\"\n", i, errstr,
                        cases[i].want_in_errstr);
            failures++;
        }
        if (strstr(errstr, SECRET)) {
            print_error("case %zu: errstr leaks a secret: %s\n", i, errstr);
            failures++;
        }
        if (err == VG_OK) {
            vg_sinks_destroy(sk);
        }
    }
    assert_int_equal(failures, 0);
}

static void test_defaults(void **state)
{
    struct vg_sink_config cfgs[] = {
        {.name = S("w0"), .type = S("webhook"), .url = S("http://h/x")},
        {.name = S("w7"), .type = S("webhook"), .url = S("http://h/x"), .max_attempts = 7},
        {.name = S("c"), .type = S("console"), .max_attempts = 9},
    };
    struct vg_sinks *sk = NULL;
    char errstr[256];

    (void)state;
    assert_int_equal(vg_sinks_new(&sk, cfgs, VG_ARRAY_LEN(cfgs), NULL, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(vg_sinks_max_attempts(sk, "w0"), 5);
    assert_int_equal(vg_sinks_max_attempts(sk, "w7"), 7);
    assert_int_equal(vg_sinks_max_attempts(sk, "c"), 1);
    assert_int_equal(vg_sinks_retry_after_ms(sk, "w0"), -1);
    assert_int_equal(vg_sinks_retry_after_ms(sk, "zz"), -1);
    assert_int_equal(vg_sinks_deliver(sk, "zz", "id-1", "{}", 2, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_non_null(strstr(errstr, "zz"));
    vg_sinks_destroy(sk);
    vg_sinks_destroy(NULL);

    /* No sinks at all is a valid (if quiet) configuration. */
    assert_int_equal(vg_sinks_new(&sk, NULL, 0, NULL, errstr, sizeof(errstr)), VG_OK);
    vg_sinks_destroy(sk);
}

static void test_status_table(void **state)
{
    static const struct {
        long status;
        vg_err_t want;
    } cases[] = {
        {200, VG_OK},           {201, VG_OK},           {202, VG_OK},
        {204, VG_OK},           {299, VG_OK},           {301, VG_ERR_REJECTED},
        {302, VG_ERR_REJECTED}, {304, VG_ERR_REJECTED}, {307, VG_ERR_REJECTED},
        {308, VG_ERR_REJECTED}, {400, VG_ERR_REJECTED}, {401, VG_ERR_REJECTED},
        {403, VG_ERR_REJECTED}, {404, VG_ERR_REJECTED}, {405, VG_ERR_REJECTED},
        {408, VG_ERR_BACKEND},  {409, VG_ERR_REJECTED}, {410, VG_ERR_REJECTED},
        {413, VG_ERR_REJECTED}, {422, VG_ERR_REJECTED}, {429, VG_ERR_BACKEND},
        {499, VG_ERR_REJECTED}, {500, VG_ERR_BACKEND},  {502, VG_ERR_BACKEND},
        {503, VG_ERR_BACKEND},  {504, VG_ERR_BACKEND},  {599, VG_ERR_BACKEND},
        {0, VG_ERR_BACKEND},    {100, VG_ERR_BACKEND},  {600, VG_ERR_BACKEND},
    };
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        vg_err_t got = sinks_classify_status(cases[i].status);
        if (got != cases[i].want) {
            print_error("HTTP %ld: got %s want %s\n", cases[i].status, vg_err_name(got),
                        vg_err_name(cases[i].want));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_table),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_status_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
