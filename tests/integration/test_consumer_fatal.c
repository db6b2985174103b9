/*
 * What ends vg_consumer_run with an error: a fatal librdkafka error (a
 * fabricated one: the mock cannot fence a static member) yields
 * VG_ERR_FATAL, and a non-retriable handler error is returned as is,
 * without a retry. Destroy stays bounded afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "consumer_int.h"
#include "kafka.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

struct rec {
    struct vg_consumer *c;
    vg_err_t answer;
    bool fatal_on_first;
    int calls;
    struct vg_test_deadline deadline;
};

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct rec *r = opaque;

    (void)msgs;
    (void)n;
    if (r->calls++ == 0 && r->fatal_on_first) {
        consumer_test_fatal(r->c, "consumer test");
    }
    return r->answer;
}

static void on_idle(void *opaque)
{
    struct rec *r = opaque;

    vg_test_deadline_check(&r->deadline);
}

static struct vg_consumer *consumer_for(struct vg_mock_kafka *mk, const char *name)
{
    struct vg_test_kafka tk;
    struct vg_consumer *c;

    assert_true(vg_test_kafka_topic(&tk, mk, name, 2));
    assert_true(vg_test_kafka_produce(&tk, 0, 100, VG_TEST_KAFKA_KEYED));
    c = vg_test_kafka_consumer(&tk, 10, 20, NULL);
    assert_non_null(c);
    return c;
}

static void test_fatal(void **state)
{
    struct rec r = {.answer = VG_OK, .fatal_on_first = true};
    struct vg_consumer_handler h = {.opaque = &r, .batch = on_batch, .idle = on_idle};

    r.c = consumer_for(*state, "fatal");
    vg_test_deadline_arm(&r.deadline, r.c, 20000);
    assert_int_equal(vg_consumer_run(r.c, &h), VG_ERR_FATAL);
    assert_false(r.deadline.passed);
    assert_true(r.calls >= 1);
    vg_consumer_destroy(r.c);
}

static void test_non_retriable(void **state)
{
    struct rec r = {.answer = VG_ERR_INVALID};
    struct vg_consumer_handler h = {.opaque = &r, .batch = on_batch, .idle = on_idle};

    r.c = consumer_for(*state, "nonretriable");
    vg_test_deadline_arm(&r.deadline, r.c, 20000);
    assert_int_equal(vg_consumer_run(r.c, &h), VG_ERR_INVALID);
    assert_false(r.deadline.passed);
    assert_int_equal(r.calls, 1);
    vg_consumer_destroy(r.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fatal),
        cmocka_unit_test(test_non_retriable),
    };
    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
