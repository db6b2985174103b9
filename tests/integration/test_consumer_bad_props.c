/*
 * Configuration errors surface from vg_consumer_new / vg_producer_new as
 * VG_ERR_INVALID with the offending key in errstr, before any connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/consumer.h"
#include "vigil/mem.h"

static char key_unknown[] = "no.such.property";
static char key_session[] = "session.timeout.ms";
static char key_store[] = "enable.auto.offset.store";
static char val_one[] = "1";
static char val_true[] = "true";
static char val_soon[] = "soon";
static char topic[] = "bad-props";
static char *topics[] = {topic};

static void test_consumer_props(void **state)
{
    static const struct {
        struct vg_kv kv;
        const char *want; /* in errstr */
    } cases[] = {
        {{key_unknown, val_one}, "kafka.properties.no.such.property: "},
        {{key_session, val_soon}, "kafka.properties.session.timeout.ms: "},
        /* Known and valid for librdkafka, but it would store offsets before the handler's OK. */
        {{key_store, val_true}, "kafka.properties.enable.auto.offset.store: "},
    };
    int failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_kv props[1] = {cases[i].kv};
        struct vg_kafka_config cfg = {.group = topic,
                                      .topics = topics,
                                      .n_topics = 1,
                                      .properties = props,
                                      .n_properties = 1};
        struct vg_consumer *c = NULL;
        char errstr[512] = "";
        vg_err_t err = vg_consumer_new(&c, &cfg, "127.0.0.1:9", errstr, sizeof(errstr));
        if (err != VG_ERR_INVALID || c != NULL || !strstr(errstr, cases[i].want)) {
            fprintf(stderr, "case %zu: %s \"%s\", want INVALID \"%s...\"\n", i, vg_err_name(err),
                    errstr, cases[i].want);
            failures++;
        }
        vg_consumer_destroy(c);
    }
    assert_int_equal(failures, 0);
}

static void test_consumer_no_topics(void **state)
{
    struct vg_kafka_config cfg = {.group = topic};
    struct vg_consumer *c = NULL;
    char errstr[512] = "";

    (void)state;
    assert_int_equal(vg_consumer_new(&c, &cfg, "127.0.0.1:9", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_null(c);
    assert_non_null(strstr(errstr, "kafka.topics"));
}

static void test_producer_props(void **state)
{
    struct vg_kv props[1] = {{key_unknown, val_one}};
    struct vg_producer *p = NULL;
    char errstr[512] = "";

    (void)state;
    assert_int_equal(vg_producer_new(&p, "127.0.0.1:9", props, 1, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_null(p);
    assert_non_null(strstr(errstr, "kafka.properties.no.such.property: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consumer_props),
        cmocka_unit_test(test_consumer_no_topics),
        cmocka_unit_test(test_producer_props),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
