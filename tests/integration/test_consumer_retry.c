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
#include <unistd.h>

#include <cmocka.h>

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
    int64_t deadline_ms;
    bool timed_out;
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
    /* Accepted (VG_OK) messages. */
    int64_t start[N_PARTS]; /* expected first offset per partition */
    int64_t next[N_PARTS];
    bool any[N_PARTS];
    size_t accepted;
    size_t want;
    int errors;
};

static void note_error(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct rec *r, const char *fmt, ...)
{
    if (r->errors++ < 10) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

static void accept_batch(struct rec *r, const struct vg_kafka_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t p = msgs[i].partition;
        if (p < 0 || p >= N_PARTS) {
            note_error(r, "unexpected partition %d", (int)p);
            continue;
        }
        if (!r->any[p] && msgs[i].offset != r->start[p]) {
            note_error(r, "[%d] starts at %lld, expected %lld", (int)p, (long long)msgs[i].offset,
                       (long long)r->start[p]);
        } else if (r->any[p] && msgs[i].offset != r->next[p]) {
            note_error(r, "[%d] offset %lld, expected %lld (lost or repeated)", (int)p,
                       (long long)msgs[i].offset, (long long)r->next[p]);
        }
        r->any[p] = true;
        r->next[p] = msgs[i].offset + 1;
        r->accepted++;
    }
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
            note_error(r, "call %d: %zu messages, not the %zu of the failed batch", call, n,
                       r->first_n);
        }
    }
    if (r->stop_after_call > 0 && call + 1 >= r->stop_after_call) {
        vg_consumer_stop(r->c);
    }
    if (fail) {
        return VG_ERR_BACKEND;
    }
    accept_batch(r, msgs, n);
    if (r->accepted >= r->want) {
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
    if (vg_mono_ms() > r->deadline_ms) {
        r->timed_out = true;
        vg_consumer_stop(r->c);
    }
}

static void rec_free(struct rec *r)
{
    vg_free(r->first_part);
    vg_free(r->first_off);
    vg_free(r);
}

static void produce(const char *bs, const char *topic, int n)
{
    struct vg_producer *p;
    char errstr[512] = "";

    assert_int_equal(vg_producer_new(&p, bs, NULL, 0, errstr, sizeof(errstr)), VG_OK);
    for (int i = 0; i < n; i++) {
        char key[16];
        char val[16];
        int klen = snprintf(key, sizeof(key), "k%d", i % 101);
        int vlen = snprintf(val, sizeof(val), "%d", i);
        assert_int_equal(vg_producer_send(p, topic, -1, key, (size_t)klen, val, (size_t)vlen,
                                          errstr, sizeof(errstr)),
                         VG_OK);
    }
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);
    vg_producer_destroy(p);
}

/* A consumer of `topic` in `group` with short group timeouts (the mock holds rejoins). */
static struct vg_consumer *consumer(const char *bs, char *topic, char *group)
{
    static char k_session[] = "session.timeout.ms";
    static char v_session[] = "6000";
    static char k_heartbeat[] = "heartbeat.interval.ms";
    static char v_heartbeat[] = "500";
    static char k_commit[] = "auto.commit.interval.ms";
    static char v_commit[] = "100";
    struct vg_kv props[] = {
        {k_session, v_session}, {k_heartbeat, v_heartbeat}, {k_commit, v_commit}};
    char *topics[1] = {topic};
    struct vg_kafka_config cfg = {
        .group = group,
        .topics = topics,
        .n_topics = 1,
        .properties = props,
        .n_properties = VG_ARRAY_LEN(props),
        .batch_size = BATCH_SIZE,
        .batch_ms = 20,
    };
    struct vg_consumer *c;
    char errstr[512] = "";

    assert_int_equal(vg_consumer_new(&c, &cfg, bs, errstr, sizeof(errstr)), VG_OK);
    return c;
}

static void test_retry_same_messages(void **state)
{
    struct vg_mock_kafka *mk = *state;
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char errstr[512] = "";
    char topic[64];
    char group[64];
    struct rec *r = vg_calloc(1, sizeof(*r));
    struct vg_consumer_handler h = {
        .opaque = r, .batch = on_batch, .idle = on_idle, .last_error = on_last_error};

    snprintf(topic, sizeof(topic), "retry-same-%d", (int)getpid());
    snprintf(group, sizeof(group), "retry-same-g-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    produce(bs, topic, N_MSGS);

    r->fail_calls = 3;
    r->want = N_MSGS;
    r->c = consumer(bs, topic, group);
    r->deadline_ms = vg_mono_ms() + vg_test_timeout(25000);
    assert_int_equal(vg_consumer_run(r->c, &h), VG_OK);

    assert_false(r->timed_out);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->retry_mismatch, 0);
    assert_true(r->first_n > 0);
    assert_int_equal(r->accepted, N_MSGS);
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
    struct vg_mock_kafka *mk = *state;
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char errstr[512] = "";
    char topic[64];
    char group[64];
    struct rec *a = vg_calloc(1, sizeof(*a));
    struct rec *b = vg_calloc(1, sizeof(*b));
    struct vg_consumer_handler ha = {.opaque = a, .batch = on_batch, .idle = on_idle};
    struct vg_consumer_handler hb = {.opaque = b, .batch = on_batch, .idle = on_idle};

    snprintf(topic, sizeof(topic), "retry-store-%d", (int)getpid());
    snprintf(group, sizeof(group), "retry-store-g-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    produce(bs, topic, N_MSGS);

    /*
     * A: the first batch succeeds, then every call fails; A gives up during
     * the 4th failure, after ~700 ms of backoff (several auto-commit rounds
     * at 100 ms), and is destroyed (a final commit of stored offsets).
     */
    a->ok_before = 1;
    a->fail_calls = MAX_CALLS;
    a->stop_after_call = 1 + 4;
    a->want = N_MSGS;
    a->c = consumer(bs, topic, group);
    a->deadline_ms = vg_mono_ms() + vg_test_timeout(20000);
    assert_int_equal(vg_consumer_run(a->c, &ha), VG_OK);
    assert_false(a->timed_out);
    assert_int_equal(a->calls, 5);
    assert_int_equal(a->errors, 0);
    assert_int_equal(a->retry_mismatch, 0);
    assert_true(a->accepted > 0 && a->accepted < N_MSGS);
    vg_consumer_destroy(a->c);

    /* B, same group: starts exactly after what A acknowledged, nothing skipped. */
    for (int i = 0; i < N_PARTS; i++) {
        b->start[i] = a->any[i] ? a->next[i] : 0;
    }
    b->want = N_MSGS - a->accepted;
    b->c = consumer(bs, topic, group);
    b->deadline_ms = vg_mono_ms() + vg_test_timeout(25000);
    assert_int_equal(vg_consumer_run(b->c, &hb), VG_OK);
    assert_false(b->timed_out);
    assert_int_equal(b->errors, 0);
    assert_int_equal(b->accepted, N_MSGS - a->accepted);
    vg_consumer_destroy(b->c);
    rec_free(a);
    rec_free(b);
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
        cmocka_unit_test(test_retry_same_messages),
        cmocka_unit_test(test_retry_no_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
