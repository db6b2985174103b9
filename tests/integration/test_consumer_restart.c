/*
 * Stop and restart against the mock cluster: a consumer takes about half
 * the topic and stops; vg_consumer_destroy commits what was stored; more
 * is produced; a new consumer in the same group resumes right after the
 * last stored offset: no message missed, none repeated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kafka.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define N_FIRST 4000
#define N_SECOND 2000
#define N_TOTAL (N_FIRST + N_SECOND)
#define N_PARTS 4

struct run {
    struct vg_consumer *c;
    struct vg_test_deadline deadline;
    size_t stop_at;           /* stop once this many messages were accepted in total */
    struct vg_test_ledger *l; /* shared by both consumers */
};

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct run *run = opaque;

    for (size_t i = 0; i < n; i++) {
        vg_test_ledger_record(run->l, &msgs[i]);
    }
    if (run->l->total >= run->stop_at) {
        vg_consumer_stop(run->c);
    }
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct run *run = opaque;

    vg_test_deadline_check(&run->deadline);
}

/* auto_commit false: only vg_consumer_destroy's own commit can carry offsets over. */
static void consume(const struct vg_test_kafka *tk, struct vg_test_ledger *l, size_t stop_at,
                    bool auto_commit)
{
    static const char *const no_auto_commit[] = {"enable.auto.commit", "false", NULL};
    struct run run = {.stop_at = stop_at, .l = l};
    struct vg_consumer_handler h = {.opaque = &run, .batch = on_batch, .idle = on_idle};

    run.c = vg_test_kafka_consumer(tk, 300, 20, auto_commit ? NULL : no_auto_commit);
    assert_non_null(run.c);
    vg_test_deadline_arm(&run.deadline, run.c, 20000);
    assert_int_equal(vg_consumer_run(run.c, &h), VG_OK);
    vg_consumer_destroy(run.c);
    assert_false(run.deadline.passed);
}

static void test_restart(void **state)
{
    struct vg_test_kafka tk;
    struct vg_test_ledger l;
    size_t first;

    assert_true(vg_test_kafka_topic(&tk, *state, "restart", N_PARTS));
    assert_true(vg_test_kafka_produce(&tk, 0, N_FIRST, VG_TEST_KAFKA_KEYED));
    vg_test_ledger_init(&l, tk.topic, N_PARTS, N_TOTAL);

    /*
     * About half: the batch that crosses N_FIRST / 2 is accepted, then the
     * loop stops. No auto-commit (librdkafka would also commit on close):
     * what the next consumer sees is vg_consumer_destroy's commit.
     */
    consume(&tk, &l, N_FIRST / 2, false);
    first = l.total;
    assert_int_equal(l.errors, 0);
    assert_true(first >= N_FIRST / 2 && first < N_FIRST);

    assert_true(vg_test_kafka_produce(&tk, N_FIRST, N_TOTAL, VG_TEST_KAFKA_KEYED));
    assert_int_equal(vg_test_kafka_end(&tk), N_TOTAL);

    /* Same group, same ledger: offsets must continue where the first consumer stopped. */
    consume(&tk, &l, N_TOTAL, true);
    assert_int_equal(l.errors, 0);
    assert_int_equal(l.total, N_TOTAL);
    for (int i = 0; i < N_TOTAL; i++) {
        assert_int_equal(l.got[i], 1);
    }
    vg_test_ledger_fini(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
