/*
 * The batch loop against librdkafka's mock cluster: 20 000 keyed messages
 * over 8 partitions arrive exactly once, in order per partition, within
 * batch_size, and only after assigned() announced their partition.
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

#define N_MSGS 20000
#define N_PARTS 8
#define BATCH_SIZE 1000

struct seen {
    struct vg_consumer *c;
    struct vg_test_deadline deadline;
    struct vg_test_ledger ledger;
    bool assigned[N_PARTS];
    size_t batches;
    size_t max_batch;
};

static void on_assigned(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct seen *s = opaque;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(parts[i].topic, s->ledger.topic) == 0 && parts[i].partition >= 0 &&
            parts[i].partition < N_PARTS) {
            s->assigned[parts[i].partition] = true;
        } else {
            vg_test_ledger_error(&s->ledger, "assigned unexpected %s [%d]", parts[i].topic,
                                 (int)parts[i].partition);
        }
    }
}

static void on_revoked(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct seen *s = opaque;

    for (size_t i = 0; i < n; i++) {
        if (parts[i].partition >= 0 && parts[i].partition < N_PARTS) {
            s->assigned[parts[i].partition] = false;
        }
    }
}

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct seen *s = opaque;

    s->batches++;
    if (n > s->max_batch) {
        s->max_batch = n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct vg_kafka_msg *m = &msgs[i];

        if (m->partition >= 0 && m->partition < N_PARTS && !s->assigned[m->partition]) {
            vg_test_ledger_error(&s->ledger, "message of [%d] before assigned()",
                                 (int)m->partition);
        }
        if (!m->key || m->key_len == 0) {
            vg_test_ledger_error(&s->ledger, "[%d] offset %lld: no key", (int)m->partition,
                                 (long long)m->offset);
        }
        vg_test_ledger_record(&s->ledger, m);
    }
    if (s->ledger.distinct == N_MSGS) {
        vg_consumer_stop(s->c);
    }
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct seen *s = opaque;

    vg_test_deadline_check(&s->deadline);
}

/* `strategy`: NULL for librdkafka's default (eager) assignors, else partition.assignment.strategy.
 */
static void run_batches(struct vg_mock_kafka *mk, const char *name, const char *strategy)
{
    struct vg_test_kafka tk;
    const char *props[] = {"partition.assignment.strategy", strategy, NULL};
    struct seen *s = vg_calloc(1, sizeof(*s));
    struct vg_consumer_handler h = {
        .opaque = s,
        .assigned = on_assigned,
        .revoked = on_revoked,
        .batch = on_batch,
        .idle = on_idle,
    };
    int64_t sum = 0;

    assert_true(vg_test_kafka_topic(&tk, mk, name, N_PARTS));
    assert_true(vg_test_kafka_produce(&tk, 0, N_MSGS, VG_TEST_KAFKA_KEYED));
    assert_int_equal(vg_test_kafka_end(&tk), N_MSGS);

    s->c = vg_test_kafka_consumer(&tk, BATCH_SIZE, 50, strategy ? props : NULL);
    assert_non_null(s->c);
    assert_int_equal(vg_consumer_assigned_count(s->c), 0);
    assert_int_equal(vg_consumer_lag(s->c), -1);
    vg_test_ledger_init(&s->ledger, tk.topic, N_PARTS, N_MSGS);
    vg_test_deadline_arm(&s->deadline, s->c, 90000); /* a bound on a hang, not a speed check */
    assert_int_equal(vg_consumer_run(s->c, &h), VG_OK);

    assert_false(s->deadline.passed);
    assert_int_equal(s->ledger.errors, 0);
    assert_int_equal(s->ledger.distinct, N_MSGS);
    for (int i = 0; i < N_PARTS; i++) {
        assert_true(s->ledger.next[i] > 0); /* keyed messages reached every partition */
        sum += s->ledger.next[i];
    }
    assert_int_equal(sum, N_MSGS);
    assert_true(s->max_batch <= BATCH_SIZE);
    assert_true(s->batches >= N_MSGS / BATCH_SIZE);
    assert_int_equal(vg_consumer_assigned_count(s->c), N_PARTS);
    /* Everything up to each partition's high watermark was consumed. */
    assert_int_equal(vg_consumer_lag(s->c), 0);
    vg_consumer_destroy(s->c);
    vg_test_ledger_fini(&s->ledger);
    vg_free(s);
}

static void test_batches(void **state)
{
    run_batches(*state, "batches", NULL);
}

/* A user's partition.assignment.strategy=cooperative-sticky: incremental assign/unassign. */
static void test_batches_cooperative(void **state)
{
    run_batches(*state, "batches-coop", "cooperative-sticky");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_batches_cooperative),
    };
    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
