/*
 * The prefetch budget against librdkafka's mock cluster: a backlog several
 * times kafka.prefetch_mb over 16 partitions is drained by the real batch
 * loop, librdkafka's own statistics (fetchq_size of the consumer queue)
 * never report more queued than the budget, and every message arrives
 * once, in order per partition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "consumer_int.h"
#include "kafka.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define N_PARTS 16
#define N_MSGS 24000
#define PAYLOAD_BYTES 1000 /* 24 MB of backlog, 1.5 MB a partition (the mock keeps 5 MiB) */
#define BUDGET_MB 4
#define BATCH_SIZE 500

struct drain {
    struct vg_consumer *c;
    struct vg_test_deadline deadline;
    struct vg_test_ledger ledger;
    int samples_at_first; /* statistics emitted before the first batch */
    int samples_at_half;  /* ... and before half the backlog was handed over */
};

/* Payloads are "<number>|" and padding; the ledger reads the number. */
static bool produce_backlog(const struct vg_test_kafka *tk)
{
    struct vg_producer *p;
    char errstr[512] = "";
    char val[PAYLOAD_BYTES];
    bool ok = true;

    if (vg_producer_new(&p, tk->bootstraps, NULL, 0, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "producer: %s\n", errstr);
        return false;
    }
    memset(val, 'x', sizeof(val));
    for (int i = 0; ok && i < N_MSGS; i++) {
        int n = snprintf(val, sizeof(val), "%d|", i);

        val[n] = 'x'; /* snprintf's terminator: padding again */
        ok = vg_producer_send(p, tk->topic, i % N_PARTS, NULL, 0, val, sizeof(val), errstr,
                              sizeof(errstr)) == VG_OK;
    }
    if (ok) {
        ok = vg_producer_flush(p, vg_test_timeout(30000), errstr, sizeof(errstr)) == VG_OK;
    }
    if (!ok) {
        fprintf(stderr, "produce to %s: %s\n", tk->topic, errstr);
    }
    vg_producer_destroy(p);
    return ok;
}

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct drain *d = opaque;
    /* An apply slower than the fetcher, as a busy Redis makes it: the backlog piles up in front. */
    const struct timespec apply_cost = {.tv_sec = 0, .tv_nsec = 60 * 1000 * 1000};

    if (d->samples_at_first < 0) {
        consumer_test_prefetch_peak(d->c, &d->samples_at_first);
    }

    for (size_t i = 0; i < n; i++) {
        struct vg_kafka_msg m = msgs[i];
        const char *bar = m.payload ? memchr(m.payload, '|', m.len) : NULL;

        if (!bar || m.len != PAYLOAD_BYTES) {
            vg_test_ledger_error(&d->ledger, "[%d] offset %lld: payload of %zu bytes",
                                 (int)m.partition, (long long)m.offset, m.len);
            continue;
        }
        m.len = (size_t)(bar - m.payload);
        vg_test_ledger_record(&d->ledger, &m);
    }
    if (d->samples_at_half < 0 && d->ledger.distinct >= N_MSGS / 2) {
        consumer_test_prefetch_peak(d->c, &d->samples_at_half);
    }
    if (d->ledger.distinct == N_MSGS) {
        vg_consumer_stop(d->c);
    }
    nanosleep(&apply_cost, NULL);
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct drain *d = opaque;

    vg_test_deadline_check(&d->deadline);
}

static void test_prefetch_budget(void **state)
{
    struct vg_test_kafka tk;
    struct drain *d = vg_calloc(1, sizeof(*d));
    struct vg_consumer_handler h = {.opaque = d, .batch = on_batch, .idle = on_idle};
    struct vg_kv kv[] = {
        {(char *)"session.timeout.ms", (char *)"6000"},
        {(char *)"heartbeat.interval.ms", (char *)"500"},
        {(char *)"statistics.interval.ms", (char *)"100"},
    };
    char *topics[1];
    struct vg_kafka_config cfg = {
        .n_topics = 1,
        .properties = kv,
        .n_properties = VG_ARRAY_LEN(kv),
        .batch_size = BATCH_SIZE,
        .batch_ms = 50,
        .prefetch_mb = BUDGET_MB,
    };
    char errstr[512] = "";
    int samples = 0;
    int64_t peak;

    assert_true(vg_test_kafka_topic(&tk, *state, "prefetch", N_PARTS));
    assert_true(produce_backlog(&tk));
    assert_int_equal(vg_test_kafka_end(&tk), N_MSGS);
    topics[0] = tk.topic;
    cfg.topics = topics;
    cfg.group = tk.group;

    if (vg_consumer_new(&d->c, &cfg, tk.bootstraps, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("consumer: %s", errstr);
    }
    vg_test_ledger_init(&d->ledger, tk.topic, N_PARTS, N_MSGS);
    d->samples_at_first = -1;
    d->samples_at_half = -1;
    vg_test_deadline_arm(&d->deadline, d->c, 90000); /* a bound on a hang, not a speed check */
    assert_int_equal(vg_consumer_run(d->c, &h), VG_OK);
    peak = consumer_test_prefetch_peak(d->c, &samples);
    printf("prefetch peak %lld bytes over %d statistics (%d from the first batch to half the "
           "backlog)\n",
           (long long)peak, samples, d->samples_at_half - d->samples_at_first);

    assert_false(d->deadline.passed);
    /* Nothing lost, repeated or reordered per partition. */
    assert_int_equal(d->ledger.errors, 0);
    assert_int_equal(d->ledger.distinct, N_MSGS);
    for (int i = 0; i < N_PARTS; i++) {
        assert_int_equal(d->ledger.next[i], N_MSGS / N_PARTS);
    }
    /*
     * librdkafka measured its queue while the backlog was being drained (so
     * the bound was put to the test), the queue did fill up with a backlog
     * six times the budget waiting, and it never held more than the budget.
     */
    assert_true(d->samples_at_half - d->samples_at_first >= 3);
    assert_true(peak >= ((int64_t)BUDGET_MB << 20) / 8);
    assert_true(peak <= (int64_t)BUDGET_MB << 20);
    vg_consumer_destroy(d->c);
    vg_test_ledger_fini(&d->ledger);
    vg_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_budget),
    };
    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
