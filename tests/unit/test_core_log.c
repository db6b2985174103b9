/*
 * `--debug` lists (core/log.c): known facilities, "all", and the message
 * for an unknown one: its name, the closest known facility when it is
 * near, and every known facility. No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/log.h"
#include "vigil/mem.h"

static void test_check_debug(void **state)
{
    static const struct {
        const char *list;
        vg_err_t want;
        const char *want_text; /* a part of errstr when rejected */
    } cases[] = {
        {"consumer", VG_OK, NULL},
        {"consumer,rules,state", VG_OK, NULL},
        {"all", VG_OK, NULL},
        {"rules,all", VG_OK, NULL},
        {"api,cli,kafka,sinks", VG_OK, NULL},
        {"bogus", VG_ERR_INVALID,
         "unknown debug facility \"bogus\"; known: api, cli, consumer, "
         "kafka, rules, sinks, state, all"},
        {"rule", VG_ERR_INVALID, "\"rule\" (did you mean \"rules\"?)"},
        {"consumer,sate", VG_ERR_INVALID, "\"sate\" (did you mean \"state\"?)"},
        {"Consumer", VG_ERR_INVALID, "(did you mean \"consumer\"?)"},
        {"rules,", VG_ERR_INVALID, "unknown debug facility \"\""},
        {"", VG_ERR_INVALID, "unknown debug facility \"\""},
        {"rules,,state", VG_ERR_INVALID, "unknown debug facility \"\""},
        {"consumer rules", VG_ERR_INVALID, "\"consumer rules\""},
        {"redis", VG_ERR_INVALID, "unknown debug facility \"redis\"; known:"},
    };
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char errstr[512] = "";
        vg_err_t err = vg_log_check_debug(cases[i].list, errstr, sizeof(errstr));

        if (err != cases[i].want || (cases[i].want_text && !strstr(errstr, cases[i].want_text))) {
            fprintf(stderr, "case %zu \"%s\": got %s \"%s\", want %s \"%s\"\n", i, cases[i].list,
                    vg_err_name(err), errstr, vg_err_name(cases[i].want),
                    cases[i].want_text ? cases[i].want_text : "");
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Each listed facility is accepted alone, and no name is listed twice. */
static void test_facility_list(void **state)
{
    const char *const *f = vg_log_facilities();
    size_t n = 0;
    (void)state;

    for (; f[n]; n++) {
        char errstr[512];

        assert_int_equal(vg_log_check_debug(f[n], errstr, sizeof(errstr)), VG_OK);
        for (size_t j = 0; j < n; j++) {
            assert_string_not_equal(f[j], f[n]);
        }
    }
    assert_true(n >= 7);
}

/* An accepted list switches DEBUG on for exactly its facilities; "all" inside a list too. */
static void test_enable_debug(void **state)
{
    (void)state;
    vg_log_set_level(VG_LOG_LEVEL_INFO);
    assert_false(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "kafka"));
    vg_log_enable_debug("kafka,sinks");
    assert_true(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "kafka"));
    assert_true(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "sinks"));
    assert_false(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "state"));
    vg_log_enable_debug("state,all");
    assert_true(vg_log_enabled(VG_LOG_LEVEL_DEBUG, "api"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_debug),
        cmocka_unit_test(test_facility_list),
        cmocka_unit_test(test_enable_debug),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
