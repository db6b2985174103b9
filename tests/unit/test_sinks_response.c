/*
 * The pieces of sinks/sinks_response.c that read what a receiver answers:
 * the body excerpt kept for a dead letter (whole when it fits, never cut
 * inside a character), secrets scrubbed within the buffer (also a secret
 * that "<redacted>" contains, and one at the very end of a full buffer),
 * and Retry-After (huge numbers, dates centuries ahead). Found by
 * fuzz_sink_response; no sockets, no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sinks_int.h"

static void test_excerpt(void **state)
{
    static const struct {
        const char *resp;
        size_t size;
        const char *want;
    } cases[] = {
        {"caf\xc3\xa9", 6, "caf\xc3\xa9"},               /* fits whole: the last character stays */
        {"caf\xc3\xa9", 5, "caf"},                       /* cut inside it: dropped */
        {"caf\xc3\xa9!", 6, "caf\xc3\xa9"},              /* cut after it: kept */
        {"\xe2\x82\xac\xe2\x82\xac", 6, "\xe2\x82\xac"}, /* cut after two bytes of three */
        {"a\x01"
         "b\x7f",
         8, "a b "}, /* control characters as spaces */
        {"line\n\ttab", 16, "line\n\ttab"},
        {"abc", 1, ""},
    };
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dst[64];

        sinks_response_excerpt(dst, cases[i].size, cases[i].resp, strlen(cases[i].resp));
        if (strcmp(dst, cases[i].want) != 0) {
            print_error("case %zu: got \"%s\", want \"%s\"\n", i, dst, cases[i].want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_scrub(void **state)
{
    static const struct {
        const char *secret;
        const char *msg;
        size_t size;
        const char *want;
    } cases[] = {
        {"s3cret", "a s3cret b s3cret", 64, "a <redacted> b <redacted>"},
        {"red", "the red token", 64, "the <redacted> token"}, /* inside "<redacted>": once */
        {"act", "act act", 64, "<redacted> <redacted>"},
        {"red", "the red token", 9, "the "}, /* no room for the marker: cut before it */
        {"s3cret", "xx s3cret", 10, "xx "},  /* at the end of a full buffer */
        {"s3cret", "s3cret tail", 14, "<redacted> ta"},
        {"aaa", "aaaaaaa", 64, "<redacted><redacted>a"},
    };
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[72]; /* room for the check that nothing past `size` is written */
        char *secrets[1];
        struct sink s;

        memset(&s, 0, sizeof(s));
        secrets[0] = (char *)cases[i].secret;
        s.secrets = secrets;
        s.n_secrets = 1;
        memset(buf, 'Z', sizeof(buf));
        snprintf(buf, cases[i].size, "%s", cases[i].msg);
        sinks_scrub(&s, buf, cases[i].size);
        if (strcmp(buf, cases[i].want) != 0 || buf[cases[i].size] != 'Z' ||
            strlen(buf) >= cases[i].size) {
            print_error("case %zu: got \"%s\", want \"%s\"\n", i, buf, cases[i].want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_retry_after(void **state)
{
    const time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */

    (void)state;
    assert_int_equal(sinks_retry_after_ms("120", now), 120000);
    assert_int_equal(sinks_retry_after_ms("0", now), 0);
    assert_int_equal(sinks_retry_after_ms("99999999999999999999", now), SINKS_RETRY_AFTER_MAX_MS);
    assert_int_equal(sinks_retry_after_ms("-1", now), -1);
    assert_int_equal(sinks_retry_after_ms("", now), -1);
    assert_int_equal(sinks_retry_after_ms("soon", now), -1);
    assert_int_equal(sinks_retry_after_ms("Wed, 21 Oct 2015 07:29:00 GMT", now), 60000);
    assert_int_equal(sinks_retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    assert_int_equal(sinks_retry_after_ms("Fri, 31 Dec 9999 23:59:59 GMT", now),
                     SINKS_RETRY_AFTER_MAX_MS);
    /* centuries ahead: capped, without overflowing in milliseconds */
    assert_int_equal(sinks_retry_after_ms("Fri, 31 Dec 999000009 23:59:59 GMT", now),
                     SINKS_RETRY_AFTER_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_excerpt),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
