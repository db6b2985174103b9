/*
 * A mock broker taken down and up (vg_mock_kafka_broker_set_down) while a
 * forked child of the test process is alive: the mock re-binds the downed
 * broker's port, which librdkafka 2.0.2 turns into an abort when a child
 * still holds the old listening socket. Also: the partitions the broker
 * led move to the brokers still up, and come back once it is up again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"
#include "vigil/consumer.h"

#define N_BROKERS 3
#define N_PARTS 6 /* two partitions led by each broker */

/* n messages on every partition, flushed within 15 s (scaled). */
static vg_err_t produce_all(struct vg_producer *p, const char *topic, int n, char *errstr,
                            size_t errstr_size)
{
    for (int i = 0; i < n * N_PARTS; i++) {
        vg_err_t err =
            vg_producer_send(p, topic, i % N_PARTS, NULL, 0, "v", 1, errstr, errstr_size);

        if (err != VG_OK) {
            return err;
        }
    }
    return vg_producer_flush(p, vg_test_timeout(15000), errstr, errstr_size);
}

static void test_down_up_with_forked_child(void **state)
{
    struct vg_mock_kafka *mk = NULL;
    struct vg_producer *p = NULL;
    char errstr[512] = "";
    char topic[64];
    int gate[2];
    pid_t child;
    int status = -1;
    int64_t end = -1;

    (void)state;
    snprintf(topic, sizeof(topic), "mock-down-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_start(&mk, N_BROKERS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(mk), NULL, 0, errstr, sizeof(errstr)), VG_OK);
    /* connections to every broker */
    assert_int_equal(produce_all(p, topic, 10, errstr, sizeof(errstr)), VG_OK);

    /*
     * A child that stays between fork and exec for as long as the broker is
     * down: before the fork guard it held the listening sockets, and the
     * mock's re-bind aborted this process.
     */
    assert_int_equal(pipe(gate), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char c;

        close(gate[1]);
        _exit(read(gate[0], &c, 1) == 0 ? 0 : 1);
    }
    close(gate[0]);

    vg_mock_kafka_broker_set_down(mk, 1, true);
    /* Broker 1 led partitions 0 and 3: delivered anyway, by the brokers that took them over. */
    assert_int_equal(produce_all(p, topic, 10, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(mk), topic, vg_test_timeout(10000),
                                        &end, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, 2 * 10 * N_PARTS);
    vg_mock_kafka_broker_set_down(mk, 1, true); /* again: nothing changes */

    vg_mock_kafka_broker_set_down(mk, 1, false);
    assert_int_equal(produce_all(p, topic, 10, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(mk), topic, vg_test_timeout(10000),
                                        &end, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, 3 * 10 * N_PARTS);

    /* the child was there all along, and leaves cleanly */
    close(gate[1]);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    vg_producer_destroy(p);
    vg_mock_kafka_stop(mk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_up_with_forked_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
