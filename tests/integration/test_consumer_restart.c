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
#include <unistd.h>

#include <cmocka.h>

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
    int64_t deadline_ms;
    bool timed_out;
    size_t stop_at; /* stop once this many messages were accepted in total */
};

struct ledger {
    unsigned char got[N_TOTAL]; /* times each produced message was accepted */
    int64_t next[N_PARTS];
    size_t total;
    int errors;
    struct run *run;
};

static void note_error(struct ledger *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_error(struct ledger *l, const char *fmt, ...)
{
    if (l->errors++ < 10) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

static vg_err_t on_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct ledger *l = opaque;

    for (size_t i = 0; i < n; i++) {
        const struct vg_kafka_msg *m = &msgs[i];
        char buf[16];
        int64_t idx;

        if (m->partition < 0 || m->partition >= N_PARTS || m->len == 0 || m->len >= sizeof(buf)) {
            note_error(l, "unexpected message [%d] len %zu", (int)m->partition, m->len);
            continue;
        }
        if (m->offset != l->next[m->partition]) {
            note_error(l, "[%d] offset %lld, expected %lld", (int)m->partition,
                       (long long)m->offset, (long long)l->next[m->partition]);
        }
        l->next[m->partition] = m->offset + 1;
        memcpy(buf, m->payload, m->len);
        buf[m->len] = '\0';
        if (!vg_parse_i64(buf, &idx) || idx < 0 || idx >= N_TOTAL) {
            note_error(l, "bad payload %s", buf);
            continue;
        }
        if (l->got[idx]++) {
            note_error(l, "message %lld accepted twice", (long long)idx);
        }
        l->total++;
    }
    if (l->total >= l->run->stop_at) {
        vg_consumer_stop(l->run->c);
    }
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct ledger *l = opaque;

    if (vg_mono_ms() > l->run->deadline_ms) {
        l->run->timed_out = true;
        vg_consumer_stop(l->run->c);
    }
}

static void produce(const char *bs, const char *topic, int from, int to)
{
    struct vg_producer *p;
    char errstr[512] = "";

    assert_int_equal(vg_producer_new(&p, bs, NULL, 0, errstr, sizeof(errstr)), VG_OK);
    for (int i = from; i < to; i++) {
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

/* auto_commit false: only vg_consumer_destroy's own commit can carry offsets over. */
static void consume(const char *bs, char *topic, char *group, struct ledger *l, size_t stop_at,
                    bool auto_commit)
{
    /* Short group timeouts: the mock coordinator holds each rejoin for session.timeout.ms. */
    static char k_session[] = "session.timeout.ms";
    static char v_session[] = "6000";
    static char k_heartbeat[] = "heartbeat.interval.ms";
    static char v_heartbeat[] = "500";
    static char k_commit[] = "enable.auto.commit";
    static char v_false[] = "false";
    struct vg_kv props[] = {
        {k_session, v_session}, {k_heartbeat, v_heartbeat}, {k_commit, v_false}};
    char *topics[1] = {topic};
    struct vg_kafka_config cfg = {
        .group = group,
        .topics = topics,
        .n_topics = 1,
        .properties = props,
        .n_properties = auto_commit ? 2 : 3,
        .batch_size = 300,
        .batch_ms = 20,
    };
    struct run run = {.stop_at = stop_at};
    struct vg_consumer_handler h = {.opaque = l, .batch = on_batch, .idle = on_idle};
    char errstr[512] = "";

    l->run = &run;
    assert_int_equal(vg_consumer_new(&run.c, &cfg, bs, errstr, sizeof(errstr)), VG_OK);
    run.deadline_ms = vg_mono_ms() + vg_test_timeout(20000);
    assert_int_equal(vg_consumer_run(run.c, &h), VG_OK);
    vg_consumer_destroy(run.c);
    l->run = NULL;
    assert_false(run.timed_out);
}

static void test_restart(void **state)
{
    struct vg_mock_kafka *mk = *state;
    const char *bs = vg_mock_kafka_bootstraps(mk);
    char errstr[512] = "";
    char topic[64];
    char group[64];
    struct ledger *l = vg_calloc(1, sizeof(*l));
    size_t first;
    int64_t end = 0;

    snprintf(topic, sizeof(topic), "restart-%d", (int)getpid());
    snprintf(group, sizeof(group), "restart-g-%d", (int)getpid());
    assert_int_equal(vg_mock_kafka_create_topic(mk, topic, N_PARTS, errstr, sizeof(errstr)), VG_OK);
    produce(bs, topic, 0, N_FIRST);

    /*
     * About half: the batch that crosses N_FIRST / 2 is accepted, then the
     * loop stops. No auto-commit (librdkafka would also commit on close):
     * what the next consumer sees is vg_consumer_destroy's commit.
     */
    consume(bs, topic, group, l, N_FIRST / 2, false);
    first = l->total;
    assert_int_equal(l->errors, 0);
    assert_true(first >= N_FIRST / 2 && first < N_FIRST);

    produce(bs, topic, N_FIRST, N_TOTAL);
    assert_int_equal(
        vg_kafka_topic_end(bs, topic, vg_test_timeout(5000), &end, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(end, N_TOTAL);

    /* Same group, same ledger: offsets must continue where the first consumer stopped. */
    consume(bs, topic, group, l, N_TOTAL, true);
    assert_int_equal(l->errors, 0);
    assert_int_equal(l->total, N_TOTAL);
    for (int i = 0; i < N_TOTAL; i++) {
        assert_int_equal(l->got[i], 1);
    }
    vg_free(l);
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
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
