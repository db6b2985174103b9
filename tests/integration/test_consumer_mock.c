/*
 * The embedded mock cluster and the producer helpers: bootstraps, topic
 * creation, explicit partitions, delivery failures reported by flush,
 * vg_kafka_topic_end, and the mock's habit of auto-creating any topic a
 * client names (so topics must be created before anything touches them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kafka.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"

static void test_start_stop(void **state)
{
    struct vg_mock_kafka *mk = NULL;
    char errstr[512] = "";
    const char *bs;

    (void)state;
    assert_int_equal(vg_mock_kafka_start(&mk, 0, errstr, sizeof(errstr)), VG_ERR_INVALID);
    assert_null(mk);
    assert_int_equal(vg_mock_kafka_start(&mk, 3, errstr, sizeof(errstr)), VG_OK);
    bs = vg_mock_kafka_bootstraps(mk);
    /* Three brokers, all on the loopback interface. */
    assert_int_equal(strncmp(bs, "127.0.0.1:", 10), 0);
    assert_non_null(strchr(bs, ','));
    assert_non_null(strchr(strchr(bs, ',') + 1, ','));
    assert_null(strchr(strchr(strchr(bs, ',') + 1, ',') + 1, ','));
    vg_mock_kafka_stop(mk);
    vg_mock_kafka_stop(NULL);
}

static void test_produce_and_topic_end(void **state)
{
    struct vg_mock_kafka *mk = *state;
    const char *bs = vg_mock_kafka_bootstraps(mk);
    struct vg_producer *p;
    char errstr[512] = "";
    char topic[64];
    int64_t end = -1;

    snprintf(topic, sizeof(topic), "mock-end-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, 3, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, 3, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_int_equal(vg_mock_kafka_create_topic(mk, "zero", 0, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_int_equal(
        vg_kafka_topic_end(bs, topic, vg_test_timeout(5000), &end, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(end, 0);

    assert_int_equal(vg_producer_new(&p, bs, NULL, 0, errstr, sizeof(errstr)), VG_OK);
    for (int i = 0; i < 30; i++) {
        /* Explicit partitions, NULL keys, and a tombstone. */
        assert_int_equal(vg_producer_send(p, topic, i % 3, NULL, 0, i == 0 ? NULL : "v",
                                          i == 0 ? 0 : 1, errstr, sizeof(errstr)),
                         VG_OK);
    }
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);

    /* Partition 7 of a 3-partition topic: refused when enqueued, nothing left to fail. */
    assert_int_equal(vg_producer_send(p, topic, 7, "k", 1, "v", 1, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_non_null(strstr(errstr, topic));
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);

    /* A failed delivery is reported by the next flush, once. */
    vg_mock_kafka_fail_produce(mk, 1);
    assert_int_equal(vg_producer_send(p, topic, 0, "k", 1, "lost", 4, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)),
                     VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "1 deliveries failed"));
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);
    vg_producer_destroy(p);

    assert_int_equal(
        vg_kafka_topic_end(bs, topic, vg_test_timeout(5000), &end, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(end, 30);
}

static void test_send_refused(void **state)
{
    struct vg_mock_kafka *mk = *state;
    const char *bs = vg_mock_kafka_bootstraps(mk);
    struct vg_producer *p;
    char errstr[512] = "";
    char topic[64];
    /* A message larger than the producer's message.max.bytes is refused when enqueued. */
    char k_max[] = "message.max.bytes";
    char v_max[] = "1000";
    struct vg_kv props[] = {{k_max, v_max}};
    char big[2000];

    snprintf(topic, sizeof(topic), "mock-fail-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, 1, errstr, sizeof(errstr)), VG_OK);
    memset(big, 'x', sizeof(big));
    assert_int_equal(vg_producer_new(&p, bs, props, VG_ARRAY_LEN(props), errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(
        vg_producer_send(p, topic, 0, "k", 1, big, sizeof(big), errstr, sizeof(errstr)),
        VG_ERR_INVALID);
    assert_non_null(strstr(errstr, topic));
    vg_producer_destroy(p);
}

/*
 * librdkafka 2.0.2's mock broker creates any unknown topic named in a
 * metadata request (producer, subscription, even a read-only query) with
 * 4 partitions; a later explicit create then fails.
 */
static void test_mock_auto_creates_topics(void **state)
{
    struct vg_mock_kafka *mk = *state;
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char errstr[512] = "";
    char topic[64];
    int64_t end = -1;

    snprintf(topic, sizeof(topic), "mock-auto-%d", (int)getpid());
    assert_int_equal(
        vg_kafka_topic_end(bs, topic, vg_test_timeout(5000), &end, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(end, 0);
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, 8, errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_non_null(strstr(errstr, topic));
}

/* A consumer that never ran: nothing assigned, lag unknown, and destroy neither blocks nor leaks.
 */
static void test_consumer_unused(void **state)
{
    struct vg_mock_kafka *mk = *state;
    char topic[64];
    char *topics[1] = {topic};
    struct vg_kafka_config cfg = {.topics = topics, .n_topics = 1};
    struct vg_consumer *c = NULL;
    char errstr[512] = "";

    snprintf(topic, sizeof(topic), "mock-unused-%d", (int)getpid());
    assert_int_equal(
        vg_consumer_new(&c, &cfg, vg_mock_kafka_bootstraps(mk), errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_consumer_assigned_count(c), 0);
    assert_int_equal(vg_consumer_lag(c), -1);
    vg_consumer_stop(c);
    vg_consumer_destroy(c);
    vg_consumer_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_stop),      cmocka_unit_test(test_produce_and_topic_end),
        cmocka_unit_test(test_send_refused),    cmocka_unit_test(test_mock_auto_creates_topics),
        cmocka_unit_test(test_consumer_unused),
    };
    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
