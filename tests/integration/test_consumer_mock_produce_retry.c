/*
 * A producer streaming to librdkafka 2.0.2's mock cluster while some of its
 * produce requests fail with a retriable error: every message it reports
 * delivered is in the topic, exactly once. The mock does not check an
 * idempotent producer's sequence numbers, so with several requests in
 * flight librdkafka took a later request's success as proof that an
 * earlier failed one had been written, reported that batch delivered and
 * never sent it again (the chaos suite once found an event missing from
 * its topic). The test producers' stream properties
 * (vg_test_kafka_stream_props) keep one request in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "kafka.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"

#define ROUNDS 10
#define PER_ROUND 100

static void test_failed_requests_are_sent_again(void **state)
{
    struct vg_mock_kafka *mk = *state;
    struct vg_test_kafka tk;
    /* one message per request, sent at once: many requests in flight unless held to one */
    struct vg_kv props[VG_TEST_KAFKA_N_STREAM_PROPS + 2] = {
        {(char *)"linger.ms", (char *)"0"},
        {(char *)"batch.num.messages", (char *)"1"},
    };
    struct vg_producer *p = NULL;
    char errstr[512] = "";
    int64_t end;

    for (size_t i = 0; i < VG_TEST_KAFKA_N_STREAM_PROPS; i++) {
        props[2 + i] = vg_test_kafka_stream_props[i];
    }
    assert_true(vg_test_kafka_topic(&tk, mk, "produce-retry", 1));
    assert_int_equal(
        vg_producer_new(&p, tk.bootstraps, props, VG_ARRAY_LEN(props), errstr, sizeof(errstr)),
        VG_OK);
    /*
     * Each round streams its messages, and one of its produce requests
     * fails (NOT_ENOUGH_REPLICAS: nothing written, librdkafka retries) while
     * the round's later requests are sent; the round's flush then waits
     * until every message is reported delivered.
     */
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            char val[16];
            int len = snprintf(val, sizeof(val), "%d", r * PER_ROUND + i);

            if (vg_producer_send(p, tk.topic, 0, NULL, 0, val, (size_t)len, errstr,
                                 sizeof(errstr)) != VG_OK) {
                fail_msg("send: %s", errstr);
            }
            if (i == PER_ROUND / 4) {
                vg_mock_kafka_fail_requests(mk, VG_MOCK_KAFKA_PRODUCE, 1);
            }
        }
        if (vg_producer_flush(p, vg_test_timeout(20000), errstr, sizeof(errstr)) != VG_OK) {
            fail_msg("round %d: flush: %s", r, errstr);
        }
    }
    /* every message was reported delivered: none may be missing, none written twice */
    end = vg_test_kafka_end(&tk);
    if (end != ROUNDS * PER_ROUND) {
        fail_msg("%d messages delivered, the topic holds %lld", ROUNDS * PER_ROUND, (long long)end);
    }
    vg_producer_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_requests_are_sent_again),
    };

    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
