/*
 * vg_health_compute: every status x runtime combination (including ""
 * for "not known yet") for batch types (healthy = active + succeeded)
 * and long-running types (healthy = active + running), with the default
 * and a custom batch_types list. Also health/field names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/mem.h"

#define H VG_HEALTH_HEALTHY
#define P VG_HEALTH_PROGRESSING
#define U VG_HEALTH_UNHEALTHY

static const char *const statuses[] = {"", "active", "error", "deleted"};
static const char *const runtimes[] = {"", "pending", "running", "succeeded", "failed"};

/* [status][runtime], in the order of the arrays above. */
static const enum vg_health want_long_running[4][5] = {
    /*            ""  pending running succeeded failed */
    /* ""      */ {P, P, P, P, U},
    /* active  */ {P, P, H, P, U},
    /* error   */ {U, U, U, U, U},
    /* deleted */ {U, U, U, U, U},
};
static const enum vg_health want_batch[4][5] = {
    /*            ""  pending running succeeded failed */
    /* ""      */ {P, P, P, P, U},
    /* active  */ {P, P, P, H, U},
    /* error   */ {U, U, U, U, U},
    /* deleted */ {U, U, U, U, U},
};

/* Check every combination for `type` against `want`; returns the number of mismatches. */
static int check_matrix(const struct vg_health_config *hc, const char *type,
                        const enum vg_health want[4][5])
{
    int failed = 0;
    for (size_t s = 0; s < VG_ARRAY_LEN(statuses); s++) {
        for (size_t r = 0; r < VG_ARRAY_LEN(runtimes); r++) {
            enum vg_health got = vg_health_compute(hc, type, statuses[s], runtimes[r]);
            if (got != want[s][r]) {
                print_error("type %s status \"%s\" runtime \"%s\": want %s, got %s\n", type,
                            statuses[s], runtimes[r], vg_health_name(want[s][r]),
                            vg_health_name(got));
                failed++;
            }
        }
    }
    return failed;
}

static void test_default_types(void **state)
{
    char *batch[] = {(char *)"workflow", (char *)"job"};
    struct vg_health_config hc = {batch, 2};
    static const struct {
        const char *type;
        bool batch;
    } types[] = {
        {"workflow", true},   {"job", true},      {"service", false},
        {"worker", false},    {"cluster", false}, {"Workflow", false}, /* case-sensitive */
        {"workflows", false}, {"", false},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(types); i++) {
        failed += check_matrix(&hc, types[i].type, types[i].batch ? want_batch : want_long_running);
    }
    assert_int_equal(failed, 0);
}

static void test_custom_batch_types(void **state)
{
    char *batch[] = {(char *)"etl", (char *)"backup"};
    struct vg_health_config custom = {batch, 2};
    struct vg_health_config none = {NULL, 0};
    int failed = 0;

    (void)state;
    failed += check_matrix(&custom, "etl", want_batch);
    failed += check_matrix(&custom, "backup", want_batch);
    /* no longer batch once the list is replaced */
    failed += check_matrix(&custom, "workflow", want_long_running);
    failed += check_matrix(&custom, "job", want_long_running);
    failed += check_matrix(&custom, "service", want_long_running);
    /* an empty list: everything is long-running */
    failed += check_matrix(&none, "workflow", want_long_running);
    failed += check_matrix(&none, "etl", want_long_running);
    assert_int_equal(failed, 0);
}

static void test_names(void **state)
{
    static const struct {
        enum vg_health h;
        const char *name;
    } cases[] = {
        {VG_HEALTH_UNKNOWN, ""},
        {VG_HEALTH_HEALTHY, "healthy"},
        {VG_HEALTH_PROGRESSING, "progressing"},
        {VG_HEALTH_UNHEALTHY, "unhealthy"},
    };

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        assert_string_equal(vg_health_name(cases[i].h), cases[i].name);
        assert_int_equal(vg_health_parse(cases[i].name), cases[i].h);
    }
    assert_int_equal(vg_health_parse("Healthy"), VG_HEALTH_UNKNOWN);
    assert_int_equal(vg_health_parse("bogus"), VG_HEALTH_UNKNOWN);
    assert_string_equal(vg_field_name(VG_FIELD_STATUS), "status");
    assert_string_equal(vg_field_name(VG_FIELD_RUNTIME), "runtime");
    assert_string_equal(vg_field_name(VG_FIELD_HEALTH), "health");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_types),
        cmocka_unit_test(test_custom_batch_types),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
