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
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

struct rec {
    struct vg_consumer *c;
    vg_err_t answer;
    bool fatal_on_first;
    int calls;
    int64_t deadline_ms;
    bool timed_out;
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

    if (vg_mono_ms() > r->deadline_ms) {
        r->timed_out = true;
        vg_consumer_stop(r->c);
    }
}

static struct vg_consumer *consumer_for(struct vg_mock_kafka *mk, const char *name)
{
    static char k_session[] = "session.timeout.ms";
    static char v_session[] = "6000";
    static char k_heartbeat[] = "heartbeat.interval.ms";
    static char v_heartbeat[] = "500";
    struct vg_kv props[] = {{k_session, v_session}, {k_heartbeat, v_heartbeat}};
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char topic[64];
    char group[64];
    char *topics[1] = {topic};
    struct vg_kafka_config cfg = {
        .group = group,
        .topics = topics,
        .n_topics = 1,
        .properties = props,
        .n_properties = VG_ARRAY_LEN(props),
        .batch_size = 10,
        .batch_ms = 20,
    };
    struct vg_producer *p;
    struct vg_consumer *c;
    char errstr[512] = "";

    snprintf(topic, sizeof(topic), "%s-%d", name, (int)getpid());
    snprintf(group, sizeof(group), "%s-g-%d", name, (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, 2, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_producer_new(&p, bs, NULL, 0, errstr, sizeof(errstr)), VG_OK);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(vg_producer_send(p, topic, -1, "k", 1, "v", 1, errstr, sizeof(errstr)),
                         VG_OK);
    }
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);
    vg_producer_destroy(p);
    assert_int_equal(vg_consumer_new(&c, &cfg, bs, errstr, sizeof(errstr)), VG_OK);
    return c;
}

static void test_fatal(void **state)
{
    struct rec r = {.answer = VG_OK, .fatal_on_first = true};
    struct vg_consumer_handler h = {.opaque = &r, .batch = on_batch, .idle = on_idle};

    r.c = consumer_for(*state, "fatal");
    r.deadline_ms = vg_mono_ms() + vg_test_timeout(20000);
    assert_int_equal(vg_consumer_run(r.c, &h), VG_ERR_FATAL);
    assert_false(r.timed_out);
    assert_true(r.calls >= 1);
    vg_consumer_destroy(r.c);
}

static void test_non_retriable(void **state)
{
    struct rec r = {.answer = VG_ERR_INVALID};
    struct vg_consumer_handler h = {.opaque = &r, .batch = on_batch, .idle = on_idle};

    r.c = consumer_for(*state, "nonretriable");
    r.deadline_ms = vg_mono_ms() + vg_test_timeout(20000);
    assert_int_equal(vg_consumer_run(r.c, &h), VG_ERR_INVALID);
    assert_false(r.timed_out);
    assert_int_equal(r.calls, 1);
    vg_consumer_destroy(r.c);
}

static int setup(void **state)
{
    struct vg_mock_kafka *mk;
    char errstr[512];

    if (vg_mock_kafka_start(&mk, 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    *state = mk;
    return 0;
}

static int teardown(void **state)
{
    vg_mock_kafka_stop(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fatal),
        cmocka_unit_test(test_non_retriable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
