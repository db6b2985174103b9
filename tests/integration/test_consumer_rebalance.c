/*
 * A rebalance while a batch waits for its retry: consumer A fails every
 * batch until it loses partitions to consumer B joining the group. The
 * revoke drops A's pending batch, A resumes (its new partitions must not
 * stay paused), and between them A and B accept every message.
 *
 * A message may legitimately arrive twice: when a slow member makes the
 * group rebalance again, the offsets committed at that revoke can be
 * refused ("rebalance in progress") and the next owner re-reads them
 * (at least once; vigil's applied offsets in Redis drop such repeats).
 * What must never happen is a member applying messages of a partition it
 * does not own at that moment: that is the stale batch this test is about.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

struct ledger {
    pthread_mutex_t lock;
    unsigned char got[N_MSGS];
    size_t distinct;
    size_t repeated;
    int errors;
    int64_t deadline_ms;
};

struct member {
    struct ledger *l;
    struct vg_consumer *c;
    bool owned[N_PARTS]; /* consumer thread only: assigned minus revoked */
    size_t stale;        /* messages applied from a partition not owned */
    bool fail_until_revoked;
    bool revoked;
    bool revoked_while_failing;
    atomic_int failed_calls; /* read by the test thread */
    size_t accepted;
    bool timed_out;
    vg_err_t run_err;
};

static void mark_owned(struct member *m, const struct vg_partition *parts, size_t n, bool owned)
{
    for (size_t i = 0; i < n; i++) {
        if (parts[i].partition >= 0 && parts[i].partition < N_PARTS) {
            m->owned[parts[i].partition] = owned;
        }
    }
}

static void on_assigned(void *opaque, const struct vg_partition *parts, size_t n)
{
    mark_owned(opaque, parts, n, true);
}

static void on_revoked(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct member *m = opaque;

    mark_owned(m, parts, n, false);
    if (m->failed_calls > 0 && !m->revoked) {
        m->revoked_while_failing = true;
    }
    m->revoked = true;
}

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct member *m = opaque;
    struct ledger *l = m->l;
    bool done;

    if (m->fail_until_revoked && !m->revoked) {
        atomic_fetch_add(&m->failed_calls, 1);
        return VG_ERR_BACKEND;
    }
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < n; i++) {
        char buf[16];
        int64_t idx;
        if (msgs[i].partition < 0 || msgs[i].partition >= N_PARTS || !m->owned[msgs[i].partition]) {
            m->stale++;
        }
        if (msgs[i].len == 0 || msgs[i].len >= sizeof(buf)) {
            l->errors++;
            continue;
        }
        memcpy(buf, msgs[i].payload, msgs[i].len);
        buf[msgs[i].len] = '\0';
        if (!vg_parse_i64(buf, &idx) || idx < 0 || idx >= N_MSGS) {
            l->errors++;
            continue;
        }
        if (l->got[idx]++) {
            l->repeated++;
        } else {
            l->distinct++;
        }
    }
    m->accepted += n;
    done = l->distinct == N_MSGS;
    pthread_mutex_unlock(&l->lock);
    if (done) {
        vg_consumer_stop(m->c);
    }
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct member *m = opaque;
    bool done;

    pthread_mutex_lock(&m->l->lock);
    done = m->l->distinct == N_MSGS;
    pthread_mutex_unlock(&m->l->lock);
    if (done) {
        vg_consumer_stop(m->c);
    } else if (vg_mono_ms() > m->l->deadline_ms) {
        m->timed_out = true;
        vg_consumer_stop(m->c);
    }
}

static void *run_member(void *arg)
{
    struct member *m = arg;
    struct vg_consumer_handler h = {.opaque = m,
                                    .assigned = on_assigned,
                                    .revoked = on_revoked,
                                    .batch = on_batch,
                                    .idle = on_idle};

    m->run_err = vg_consumer_run(m->c, &h);
    return NULL;
}

static bool is_failing(void *arg)
{
    struct member *m = arg;

    return atomic_load(&m->failed_calls) >= 2; /* paused, past at least one retry */
}

static struct vg_consumer *consumer(const char *bs, char *topic, char *group, const char *strategy)
{
    static char k_session[] = "session.timeout.ms";
    static char v_session[] = "6000";
    static char k_heartbeat[] = "heartbeat.interval.ms";
    static char v_heartbeat[] = "500";
    static char k_strategy[] = "partition.assignment.strategy";
    static char v_strategy[64];
    struct vg_kv props[] = {
        {k_session, v_session}, {k_heartbeat, v_heartbeat}, {k_strategy, v_strategy}};
    char *topics[1] = {topic};
    struct vg_kafka_config cfg = {
        .group = group,
        .topics = topics,
        .n_topics = 1,
        .properties = props,
        .n_properties = VG_ARRAY_LEN(props),
        /* One batch can hold the whole topic: any revoke takes part of A's failed batch. */
        .batch_size = N_MSGS,
        .batch_ms = 300,
    };
    struct vg_consumer *c;
    char errstr[512] = "";

    snprintf(v_strategy, sizeof(v_strategy), "%s", strategy);
    assert_int_equal(vg_consumer_new(&c, &cfg, bs, errstr, sizeof(errstr)), VG_OK);
    return c;
}

static void run_rebalance(struct vg_mock_kafka *mk, const char *name, const char *strategy)
{
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char errstr[512] = "";
    char topic[64];
    char group[64];
    struct ledger *l = vg_calloc(1, sizeof(*l));
    struct member a = {.l = l, .fail_until_revoked = true};
    struct member b = {.l = l};
    struct vg_producer *p;
    pthread_t ta;
    pthread_t tb;

    pthread_mutex_init(&l->lock, NULL);
    snprintf(topic, sizeof(topic), "%s-%d", name, (int)getpid());
    snprintf(group, sizeof(group), "%s-g-%d", name, (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_producer_new(&p, bs, NULL, 0, errstr, sizeof(errstr)), VG_OK);
    for (int i = 0; i < N_MSGS; i++) {
        char val[16];
        int vlen = snprintf(val, sizeof(val), "%d", i);
        assert_int_equal(vg_producer_send(p, topic, i % N_PARTS, NULL, 0, val, (size_t)vlen, errstr,
                                          sizeof(errstr)),
                         VG_OK);
    }
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);
    vg_producer_destroy(p);

    /* Generous: each rejoin can wait out the mock coordinator's join window (5 s here). */
    l->deadline_ms = vg_mono_ms() + vg_test_timeout(60000);
    a.c = consumer(bs, topic, group, strategy);
    assert_int_equal(pthread_create(&ta, NULL, run_member, &a), 0);
    /* Only once A holds a failed batch does B join and take partitions away. */
    assert_true(vg_test_wait_for(is_failing, &a, 60000));
    b.c = consumer(bs, topic, group, strategy);
    assert_int_equal(pthread_create(&tb, NULL, run_member, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    assert_int_equal(a.run_err, VG_OK);
    assert_int_equal(b.run_err, VG_OK);
    assert_false(a.timed_out);
    assert_false(b.timed_out);
    assert_int_equal(l->errors, 0);
    assert_true(a.revoked_while_failing);
    assert_int_equal(l->distinct, N_MSGS);
    /* A batch applied by a member that no longer owned its partitions. */
    fprintf(stderr, "stale %zu/%zu, re-read after a refused commit %zu\n", a.stale, b.stale,
            l->repeated);
    assert_int_equal(a.stale, 0);
    assert_int_equal(b.stale, 0);
    assert_true(b.accepted > 0);
    assert_true(a.accepted > 0); /* A resumed after its failed batch was revoked */
    vg_consumer_destroy(a.c);
    vg_consumer_destroy(b.c);
    pthread_mutex_destroy(&l->lock);
    vg_free(l);
}

static void test_rebalance_eager(void **state)
{
    run_rebalance(*state, "rebalance", "range,roundrobin");
}

/* Incremental: only the partitions B takes leave A's batch; A keeps retrying the rest. */
static void test_rebalance_cooperative(void **state)
{
    run_rebalance(*state, "rebalance-coop", "cooperative-sticky");
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

/* argv[1]: a test name pattern, so ctest runs the two ~10 s tests separately (in parallel). */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebalance_eager),
        cmocka_unit_test(test_rebalance_cooperative),
    };
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
