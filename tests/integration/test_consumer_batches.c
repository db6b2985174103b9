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
#include <unistd.h>

#include <cmocka.h>

#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define N_MSGS 20000
#define N_PARTS 8
#define BATCH_SIZE 1000

struct seen {
    struct vg_consumer *c;
    const char *topic;
    int64_t deadline_ms;
    bool timed_out;
    bool assigned[N_PARTS];
    int64_t next[N_PARTS]; /* next expected offset */
    unsigned char got[N_MSGS];
    size_t total;
    size_t batches;
    size_t max_batch;
    int errors; /* first few are printed */
};

static void note_error(struct seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct seen *s, const char *fmt, ...)
{
    if (s->errors++ < 10) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

static void on_assigned(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct seen *s = opaque;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(parts[i].topic, s->topic) == 0 && parts[i].partition >= 0 &&
            parts[i].partition < N_PARTS) {
            s->assigned[parts[i].partition] = true;
        } else {
            note_error(s, "assigned unexpected %s [%d]", parts[i].topic, (int)parts[i].partition);
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
        char buf[32];
        int64_t idx;

        if (m->partition < 0 || m->partition >= N_PARTS || strcmp(m->topic, s->topic) != 0) {
            note_error(s, "unexpected %s [%d]", m->topic, (int)m->partition);
            continue;
        }
        if (!s->assigned[m->partition]) {
            note_error(s, "message of [%d] before assigned()", (int)m->partition);
        }
        if (m->offset != s->next[m->partition]) {
            note_error(s, "[%d] offset %lld, expected %lld", (int)m->partition,
                       (long long)m->offset, (long long)s->next[m->partition]);
        }
        s->next[m->partition] = m->offset + 1;
        if (m->len == 0 || m->len >= sizeof(buf) || !m->key || m->key_len == 0) {
            note_error(s, "[%d] offset %lld: bad key or payload", (int)m->partition,
                       (long long)m->offset);
            continue;
        }
        memcpy(buf, m->payload, m->len);
        buf[m->len] = '\0';
        if (!vg_parse_i64(buf, &idx) || idx < 0 || idx >= N_MSGS) {
            note_error(s, "bad payload %s", buf);
            continue;
        }
        if (s->got[idx]++) {
            note_error(s, "message %lld delivered twice", (long long)idx);
        } else {
            s->total++;
        }
    }
    if (s->total == N_MSGS) {
        vg_consumer_stop(s->c);
    }
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct seen *s = opaque;

    if (vg_mono_ms() > s->deadline_ms) {
        s->timed_out = true;
        vg_consumer_stop(s->c);
    }
}

/* `strategy`: NULL for librdkafka's default (eager) assignors, else partition.assignment.strategy.
 */
static void run_batches(struct vg_mock_kafka *mk, const char *name, const char *strategy)
{
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char errstr[512] = "";
    char topic[64];
    char group[64];
    char *topics[1] = {topic};
    char k_session[] = "session.timeout.ms";
    char v_session[] = "6000";
    char k_heartbeat[] = "heartbeat.interval.ms";
    char v_heartbeat[] = "500";
    char k_strategy[] = "partition.assignment.strategy";
    char *v_strategy = vg_strdup(strategy ? strategy : "");
    struct vg_kv props[] = {
        {k_session, v_session}, {k_heartbeat, v_heartbeat}, {k_strategy, v_strategy}};
    struct vg_kafka_config cfg = {
        .group = group,
        .topics = topics,
        .n_topics = 1,
        .properties = props,
        .n_properties = strategy ? 3 : 2,
        .batch_size = BATCH_SIZE,
        .batch_ms = 50,
    };
    struct vg_producer *p;
    struct seen *s = vg_calloc(1, sizeof(*s));
    struct vg_consumer_handler h = {
        .opaque = s,
        .assigned = on_assigned,
        .revoked = on_revoked,
        .batch = on_batch,
        .idle = on_idle,
    };
    int64_t end = 0;
    int64_t sum = 0;

    snprintf(topic, sizeof(topic), "%s-%d", name, (int)getpid());
    snprintf(group, sizeof(group), "%s-g-%d", name, (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);

    assert_int_equal(vg_producer_new(&p, bs, NULL, 0, errstr, sizeof(errstr)), VG_OK);
    for (int i = 0; i < N_MSGS; i++) {
        char key[16];
        char val[16];
        int klen = snprintf(key, sizeof(key), "key-%d", i % 997);
        int vlen = snprintf(val, sizeof(val), "%d", i);
        assert_int_equal(vg_producer_send(p, topic, -1, key, (size_t)klen, val, (size_t)vlen,
                                          errstr, sizeof(errstr)),
                         VG_OK);
    }
    assert_int_equal(vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)), VG_OK);
    vg_producer_destroy(p);
    assert_int_equal(
        vg_kafka_topic_end(bs, topic, vg_test_timeout(5000), &end, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(end, N_MSGS);

    assert_int_equal(vg_consumer_new(&s->c, &cfg, bs, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_consumer_assigned_count(s->c), 0);
    assert_int_equal(vg_consumer_lag(s->c), -1);
    s->topic = topic;
    s->deadline_ms = vg_mono_ms() + vg_test_timeout(25000);
    assert_int_equal(vg_consumer_run(s->c, &h), VG_OK);

    assert_false(s->timed_out);
    assert_int_equal(s->errors, 0);
    assert_int_equal(s->total, N_MSGS);
    for (int i = 0; i < N_PARTS; i++) {
        assert_true(s->next[i] > 0); /* keyed messages reached every partition */
        sum += s->next[i];
    }
    assert_int_equal(sum, N_MSGS);
    assert_true(s->max_batch <= BATCH_SIZE);
    assert_true(s->batches >= N_MSGS / BATCH_SIZE);
    assert_int_equal(vg_consumer_assigned_count(s->c), N_PARTS);
    /* Everything up to each partition's high watermark was consumed. */
    assert_int_equal(vg_consumer_lag(s->c), 0);
    vg_consumer_destroy(s->c);
    vg_free(s);
    vg_free(v_strategy);
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
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_batches_cooperative),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
