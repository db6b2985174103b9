/*
 * Retriable handler failures against the mock cluster: the consumer
 * pauses, keeps polling, backs off and hands over the very same messages
 * again; nothing is lost across pause/resume, and no offset moves (not
 * even through auto-commit) until the handler says VG_OK.
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

#define N_MSGS 2000
#define N_PARTS 4
#define BATCH_SIZE 100
#define MAX_CALLS 64

struct rec {
    struct vg_consumer *c;
    struct vg_test_deadline deadline;
    int fail_calls;      /* calls to fail (VG_ERR_BACKEND) after ok_before successes */
    int ok_before;       /* successful calls before the failures start */
    int stop_after_call; /* >0: stop during that call */
    int calls;
    int64_t call_ms[MAX_CALLS];
    size_t idle_calls;
    size_t idle_at_call[MAX_CALLS];
    /* The batch of the first failed call, to compare with its retries. */
    int32_t *first_part;
    int64_t *first_off;
    size_t first_n;
    int retry_mismatch;
    /* Accepted (VG_OK) messages; ledger.start: the expected first offset per partition. */
    struct vg_test_ledger ledger;
    size_t want;
};

static struct rec *rec_new(const char *topic)
{
    struct rec *r = vg_calloc(1, sizeof(*r));

    vg_test_ledger_init(&r->ledger, topic, N_PARTS, N_MSGS);
    return r;
}

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct rec *r = opaque;
    int call = r->calls++;
    bool fail = call >= r->ok_before && call < r->ok_before + r->fail_calls;

    if (call < MAX_CALLS) {
        r->call_ms[call] = vg_mono_ms();
        r->idle_at_call[call] = r->idle_calls;
    }
    if (call == r->ok_before) {
        r->first_part = vg_calloc(n, sizeof(*r->first_part));
        r->first_off = vg_calloc(n, sizeof(*r->first_off));
        r->first_n = n;
        for (size_t i = 0; i < n; i++) {
            r->first_part[i] = msgs[i].partition;
            r->first_off[i] = msgs[i].offset;
        }
    } else if (call > r->ok_before && call <= r->ok_before + r->fail_calls) {
        /* A retry (or the successful call after the failures): the same messages. */
        bool same = n == r->first_n;
        for (size_t i = 0; same && i < n; i++) {
            same = msgs[i].partition == r->first_part[i] && msgs[i].offset == r->first_off[i];
        }
        if (!same) {
            r->retry_mismatch++;
            vg_test_ledger_error(&r->ledger,
                                 "call %d: %zu messages, not the %zu of the failed batch", call, n,
                                 r->first_n);
        }
    }
    if (r->stop_after_call > 0 && call + 1 >= r->stop_after_call) {
        vg_consumer_stop(r->c);
    }
    if (fail) {
        return VG_ERR_BACKEND;
    }
    for (size_t i = 0; i < n; i++) {
        vg_test_ledger_record(&r->ledger, &msgs[i]);
    }
    if (r->ledger.total >= r->want) {
        vg_consumer_stop(r->c);
    }
    return VG_OK;
}

static const char *on_last_error(void *opaque)
{
    (void)opaque;
    return "test backend down";
}

static void on_idle(void *opaque)
{
    struct rec *r = opaque;

    r->idle_calls++;
    vg_test_deadline_check(&r->deadline);
}

static void rec_free(struct rec *r)
{
    vg_free(r->first_part);
    vg_free(r->first_off);
    vg_test_ledger_fini(&r->ledger);
    vg_free(r);
}

/* A consumer of tk's topic and group; offsets auto-committed every 100 ms. */
static struct vg_consumer *consumer(const struct vg_test_kafka *tk)
{
    static const char *const props[] = {"auto.commit.interval.ms", "100", NULL};
    struct vg_consumer *c = vg_test_kafka_consumer(tk, BATCH_SIZE, 20, props);

    assert_non_null(c);
    return c;
}

static void test_retry_same_messages(void **state)
{
    struct vg_test_kafka tk;
    struct rec *r;
    struct vg_consumer_handler h;

    assert_true(vg_test_kafka_topic(&tk, *state, "retry-same", N_PARTS));
    assert_true(vg_test_kafka_produce(&tk, 0, N_MSGS, VG_TEST_KAFKA_KEYED));
    r = rec_new(tk.topic);
    h = (struct vg_consumer_handler){
        .opaque = r, .batch = on_batch, .idle = on_idle, .last_error = on_last_error};

    r->fail_calls = 3;
    r->want = N_MSGS;
    r->c = consumer(&tk);
    vg_test_deadline_arm(&r->deadline, r->c, 25000);
    assert_int_equal(vg_consumer_run(r->c, &h), VG_OK);

    assert_false(r->deadline.passed);
    assert_int_equal(r->ledger.errors, 0);
    assert_int_equal(r->retry_mismatch, 0);
    assert_true(r->first_n > 0);
    assert_int_equal(r->ledger.total, N_MSGS);
    for (int i = 0; i < 3; i++) {
        /* Backoff doubles from 100 ms; polling (idle) goes on in between. */
        assert_true(r->call_ms[i + 1] - r->call_ms[i] >= 100 << i);
        assert_true(r->idle_at_call[i + 1] > r->idle_at_call[i]);
    }
    vg_consumer_destroy(r->c);
    rec_free(r);
}

static void test_retry_no_store(void **state)
{
    struct vg_test_kafka tk;
    struct rec *a;
    struct rec *b;
    struct vg_consumer_handler ha;
    struct vg_consumer_handler hb;

    assert_true(vg_test_kafka_topic(&tk, *state, "retry-store", N_PARTS));
    assert_true(vg_test_kafka_produce(&tk, 0, N_MSGS, VG_TEST_KAFKA_KEYED));
    a = rec_new(tk.topic);
    b = rec_new(tk.topic);
    ha = (struct vg_consumer_handler){.opaque = a, .batch = on_batch, .idle = on_idle};
    hb = (struct vg_consumer_handler){.opaque = b, .batch = on_batch, .idle = on_idle};

    /*
     * A: the first batch succeeds, then every call fails; A gives up during
     * the 4th failure, after ~700 ms of backoff (several auto-commit rounds
     * at 100 ms), and is destroyed (a final commit of stored offsets).
     */
    a->ok_before = 1;
    a->fail_calls = MAX_CALLS;
    a->stop_after_call = 1 + 4;
    a->want = N_MSGS;
    a->c = consumer(&tk);
    vg_test_deadline_arm(&a->deadline, a->c, 20000);
    assert_int_equal(vg_consumer_run(a->c, &ha), VG_OK);
    assert_false(a->deadline.passed);
    assert_int_equal(a->calls, 5);
    assert_int_equal(a->ledger.errors, 0);
    assert_int_equal(a->retry_mismatch, 0);
    assert_true(a->ledger.total > 0 && a->ledger.total < N_MSGS);
    vg_consumer_destroy(a->c);

    /* B, same group: starts exactly after what A acknowledged, nothing skipped. */
    for (int i = 0; i < N_PARTS; i++) {
        b->ledger.start[i] = a->ledger.any[i] ? a->ledger.next[i] : 0;
    }
    b->want = N_MSGS - a->ledger.total;
    b->c = consumer(&tk);
    vg_test_deadline_arm(&b->deadline, b->c, 25000);
    assert_int_equal(vg_consumer_run(b->c, &hb), VG_OK);
    assert_false(b->deadline.passed);
    assert_int_equal(b->ledger.errors, 0);
    assert_int_equal(b->ledger.total, N_MSGS - a->ledger.total);
    vg_consumer_destroy(b->c);
    rec_free(a);
    rec_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_same_messages),
        cmocka_unit_test(test_retry_no_store),
    };
    return cmocka_run_group_tests(tests, vg_test_kafka_setup, vg_test_kafka_teardown);
}
