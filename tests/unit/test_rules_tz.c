/*
 * Time zones for mute windows (rules/rules_tz.c): UTC offsets from the
 * system's TZif files against known instants (both sides of DST changes,
 * northern and southern hemispheres, far future via the POSIX footer
 * rule), POSIX TZ strings parsed directly, and local weekday/minute.
 */
#include <stdlib.h>

#include "rules_int.h"
#include "support.h"
#include "test_rules_sim.h"

static int64_t at(const char *s)
{
    int64_t ms = 0;

    assert_true(vg_time_parse_rfc3339(s, strlen(s), &ms));
    return ms / 1000;
}

static void test_tzif_offsets(void **state)
{
    static const struct {
        const char *zone;
        const char *utc;
        int32_t offset;
    } cases[] = {
        {"Europe/Berlin", "2026-01-06T12:00:00Z", 3600},
        {"Europe/Berlin", "2026-07-06T12:00:00Z", 7200},
        /* 2026-03-29 01:00Z: CET -> CEST */
        {"Europe/Berlin", "2026-03-29T00:59:59Z", 3600},
        {"Europe/Berlin", "2026-03-29T01:00:00Z", 7200},
        /* 2026-10-25 01:00Z: CEST -> CET */
        {"Europe/Berlin", "2026-10-25T00:59:59Z", 7200},
        {"Europe/Berlin", "2026-10-25T01:00:00Z", 3600},
        {"America/New_York", "2026-01-06T12:00:00Z", -5 * 3600},
        {"America/New_York", "2026-07-06T12:00:00Z", -4 * 3600},
        {"America/New_York", "2026-03-08T06:59:59Z", -5 * 3600},
        {"America/New_York", "2026-03-08T07:00:00Z", -4 * 3600},
        {"Australia/Sydney", "2026-01-06T12:00:00Z", 11 * 3600},
        {"Australia/Sydney", "2026-07-06T12:00:00Z", 10 * 3600},
        {"Asia/Kolkata", "2026-07-06T12:00:00Z", 5 * 3600 + 1800},
        {"Asia/Tokyo", "2026-07-06T12:00:00Z", 9 * 3600},
        {"UTC", "2026-07-06T12:00:00Z", 0},
        /* beyond the file's transitions: the footer rule */
        {"Europe/Berlin", "2090-07-06T12:00:00Z", 7200},
        {"Europe/Berlin", "2090-12-06T12:00:00Z", 3600},
        {"Australia/Sydney", "2090-01-06T12:00:00Z", 11 * 3600},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char errstr[256] = "";
        struct rules_tz *tz = rules_tz_load(cases[i].zone, errstr, sizeof(errstr));
        int32_t got;

        if (!tz) {
            print_error("case %zu: %s: %s\n", i, cases[i].zone, errstr);
            failed++;
            continue;
        }
        got = rules_tz_offset(tz, at(cases[i].utc));
        if (got != cases[i].offset) {
            print_error("case %zu: %s at %s: offset %d, want %d\n", i, cases[i].zone, cases[i].utc,
                        (int)got, (int)cases[i].offset);
            failed++;
        }
        rules_tz_destroy(tz);
    }
    assert_int_equal(failed, 0);
}

static void test_posix_rules(void **state)
{
    static const struct {
        const char *spec;
        const char *utc;
        int32_t offset;
    } cases[] = {
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2030-03-31T00:59:59Z", 3600},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "2030-03-31T01:00:00Z", 7200},
        {"EST5EDT,M3.2.0,M11.1.0", "2030-11-03T05:59:59Z", -4 * 3600},
        {"EST5EDT,M3.2.0,M11.1.0", "2030-11-03T06:00:00Z", -5 * 3600},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-06-01T00:00:00Z", 10 * 3600},
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-12-01T00:00:00Z", 11 * 3600},
        {"<+0530>-5:30", "2030-06-01T00:00:00Z", 5 * 3600 + 1800},
        {"JST-9", "2030-06-01T00:00:00Z", 9 * 3600},
        {"XXX3YYY,J60,J300", "2031-03-02T12:00:00Z", -2 * 3600},
        {"XXX3YYY,J60,J300", "2031-02-28T12:00:00Z", -3 * 3600},
    };
    static const char *const bad[] = {"",
                                      "C",
                                      "CET",
                                      "CET-1CEST",
                                      "CET-1CEST,M13.5.0,M10.5.0",
                                      "CET-1CEST,M3.5.0",
                                      "<+05",
                                      "CET-1CEST,M3.5.0,M10.5.0/3x"};
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct rules_tz *tz = rules_tz_from_posix(cases[i].spec);
        int32_t got;

        if (!tz) {
            print_error("%s: not parsed\n", cases[i].spec);
            failed++;
            continue;
        }
        got = rules_tz_offset(tz, at(cases[i].utc));
        if (got != cases[i].offset) {
            print_error("%s at %s: %d, want %d\n", cases[i].spec, cases[i].utc, (int)got,
                        (int)cases[i].offset);
            failed++;
        }
        rules_tz_destroy(tz);
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        struct rules_tz *tz = rules_tz_from_posix(bad[i]);

        if (tz) {
            print_error("\"%s\" parsed\n", bad[i]);
            rules_tz_destroy(tz);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_local_time(void **state)
{
    char errstr[256];
    struct rules_tz *tz = rules_tz_load("Europe/Berlin", errstr, sizeof(errstr));
    int wday;
    int minute;

    (void)state;
    assert_non_null(tz);
    /* Tuesday 23:30Z = Wednesday 00:30 in Berlin */
    rules_local_time(tz, at("2026-01-06T23:30:00Z") * 1000, &wday, &minute);
    assert_int_equal(wday, 3);
    assert_int_equal(minute, 30);
    rules_local_time(NULL, at("2026-01-06T23:30:00Z") * 1000, &wday, &minute);
    assert_int_equal(wday, 2);
    assert_int_equal(minute, 23 * 60 + 30);
    /* before 1970 */
    rules_local_time(NULL, at("1969-12-31T23:59:00Z") * 1000, &wday, &minute);
    assert_int_equal(wday, 3);
    assert_int_equal(minute, 23 * 60 + 59);
    rules_tz_destroy(tz);
}

static void test_not_a_tzif(void **state)
{
    char errstr[256];
    char *dir = vg_test_mkdtemp("tz");
    char *path = vg_asprintf("%s/Bad", dir);
    struct rules_tz *tz;

    (void)state;
    assert_true(vg_test_write_file(path, "TZif2 but truncated", 19));
    setenv("TZDIR", dir, 1);
    tz = rules_tz_load("Bad", errstr, sizeof(errstr));
    unsetenv("TZDIR");
    assert_null(tz);
    assert_non_null(strstr(errstr, "is not a TZif file"));
    vg_test_rmrf(dir);
    vg_free(path);
    vg_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tzif_offsets),
        cmocka_unit_test(test_posix_rules),
        cmocka_unit_test(test_local_time),
        cmocka_unit_test(test_not_a_tzif),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
