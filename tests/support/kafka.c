/*
 * The mock cluster, numbered messages, a consumer and a ledger for the
 * tests of consumer/ (kafka.h).
 */
#include "kafka.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

int vg_test_kafka_setup(void **state)
{
    struct vg_mock_kafka *mk;
    char errstr[512];

    if (vg_mock_kafka_start(&mk, 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "mock cluster: %s\n", errstr);
        return -1;
    }
    *state = mk;
    return 0;
}

int vg_test_kafka_teardown(void **state)
{
    vg_mock_kafka_stop(*state);
    return 0;
}

bool vg_test_kafka_topic(struct vg_test_kafka *tk, struct vg_mock_kafka *mk, const char *name,
                         int partitions)
{
    char errstr[512];

    memset(tk, 0, sizeof(*tk));
    tk->mk = mk;
    tk->bootstraps = vg_mock_kafka_bootstraps(mk);
    tk->partitions = partitions;
    snprintf(tk->topic, sizeof(tk->topic), "%s-%d", name, (int)getpid());
    snprintf(tk->group, sizeof(tk->group), "%s-g-%d", name, (int)getpid());
    if (vg_mock_kafka_create_topic(mk, tk->topic, partitions, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "create %s: %s\n", tk->topic, errstr);
        return false;
    }
    return true;
}

bool vg_test_kafka_produce(const struct vg_test_kafka *tk, int from, int to,
                           enum vg_test_kafka_spread spread)
{
    struct vg_producer *p;
    char errstr[512] = "";
    bool ok = true;

    if (vg_producer_new(&p, tk->bootstraps, NULL, 0, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "producer: %s\n", errstr);
        return false;
    }
    for (int i = from; ok && i < to; i++) {
        char key[16];
        char val[16];
        int klen = snprintf(key, sizeof(key), "k%d", i % 101);
        int vlen = snprintf(val, sizeof(val), "%d", i);
        bool keyed = spread == VG_TEST_KAFKA_KEYED;

        ok = vg_producer_send(p, tk->topic, keyed ? -1 : i % tk->partitions, keyed ? key : NULL,
                              keyed ? (size_t)klen : 0, val, (size_t)vlen, errstr,
                              sizeof(errstr)) == VG_OK;
    }
    if (ok) {
        ok = vg_producer_flush(p, vg_test_timeout(10000), errstr, sizeof(errstr)) == VG_OK;
    }
    if (!ok) {
        fprintf(stderr, "produce to %s: %s\n", tk->topic, errstr);
    }
    vg_producer_destroy(p);
    return ok;
}

const struct vg_kv vg_test_kafka_stream_props[VG_TEST_KAFKA_N_STREAM_PROPS] = {
    {(char *)"max.in.flight.requests.per.connection", (char *)"1"},
};

int64_t vg_test_kafka_end(const struct vg_test_kafka *tk)
{
    char errstr[512] = "";
    int64_t end = -1;

    if (vg_kafka_topic_end(tk->bootstraps, tk->topic, vg_test_timeout(5000), &end, errstr,
                           sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "end of %s: %s\n", tk->topic, errstr);
        return -1;
    }
    return end;
}

struct vg_consumer *vg_test_kafka_consumer(const struct vg_test_kafka *tk, int batch_size,
                                           int batch_ms, const char *const *props)
{
    struct vg_kv kv[16] = {
        {(char *)"session.timeout.ms", (char *)"6000"},
        {(char *)"heartbeat.interval.ms", (char *)"500"},
    };
    size_t n_kv = 2;
    char *topics[1] = {(char *)tk->topic};
    struct vg_kafka_config cfg = {
        .group = (char *)tk->group,
        .topics = topics,
        .n_topics = 1,
        .properties = kv,
        .batch_size = batch_size,
        .batch_ms = batch_ms,
    };
    struct vg_consumer *c = NULL;
    char errstr[512] = "";

    for (size_t i = 0; props && props[i] && props[i + 1]; i += 2) {
        VG_ASSERT(n_kv < VG_ARRAY_LEN(kv));
        kv[n_kv].key = (char *)props[i];
        kv[n_kv].value = (char *)props[i + 1];
        n_kv++;
    }
    cfg.n_properties = n_kv;
    if (vg_consumer_new(&c, &cfg, tk->bootstraps, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "consumer of %s: %s\n", tk->topic, errstr);
        return NULL;
    }
    return c;
}

void vg_test_deadline_arm(struct vg_test_deadline *d, struct vg_consumer *c, int timeout_ms)
{
    d->c = c;
    d->at_ms = vg_mono_ms() + vg_test_timeout(timeout_ms);
    d->passed = false;
}

bool vg_test_deadline_check(struct vg_test_deadline *d)
{
    if (!d->passed && vg_mono_ms() > d->at_ms) {
        d->passed = true;
        vg_consumer_stop(d->c);
    }
    return d->passed;
}

void vg_test_ledger_init(struct vg_test_ledger *l, const char *topic, int partitions, size_t n_msgs)
{
    VG_ASSERT(partitions > 0 && partitions <= VG_TEST_MAX_PARTS);
    memset(l, 0, sizeof(*l));
    l->topic = topic;
    l->partitions = partitions;
    l->n_msgs = n_msgs;
    l->got = vg_calloc(n_msgs ? n_msgs : 1, 1);
}

void vg_test_ledger_fini(struct vg_test_ledger *l)
{
    vg_free(l->got);
    memset(l, 0, sizeof(*l));
}

void vg_test_ledger_error(struct vg_test_ledger *l, const char *fmt, ...)
{
    if (l->errors++ < 10) {
        va_list ap;

        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

int64_t vg_test_ledger_record(struct vg_test_ledger *l, const struct vg_kafka_msg *m)
{
    int32_t p = m->partition;
    char buf[24];
    int64_t idx;

    if (p < 0 || p >= l->partitions || (l->topic && strcmp(m->topic, l->topic) != 0)) {
        vg_test_ledger_error(l, "unexpected %s [%d]", m->topic, (int)p);
        return -1;
    }
    if (!l->unordered) {
        int64_t want = l->any[p] ? l->next[p] : l->start[p];

        if (m->offset != want) {
            vg_test_ledger_error(l, "[%d] offset %lld, expected %lld (lost or repeated)", (int)p,
                                 (long long)m->offset, (long long)want);
        }
    }
    l->any[p] = true;
    l->next[p] = m->offset + 1;
    l->total++;
    if (m->len == 0 || m->len >= sizeof(buf)) {
        vg_test_ledger_error(l, "[%d] offset %lld: payload of %zu bytes", (int)p,
                             (long long)m->offset, m->len);
        return -1;
    }
    memcpy(buf, m->payload, m->len);
    buf[m->len] = '\0';
    if (!vg_parse_i64(buf, &idx) || idx < 0 || (size_t)idx >= l->n_msgs) {
        vg_test_ledger_error(l, "bad payload %s", buf);
        return -1;
    }
    if (l->got[idx]++ == 0) {
        l->distinct++;
    } else if (l->repeats_ok) {
        l->repeated++;
    } else {
        vg_test_ledger_error(l, "message %lld delivered twice", (long long)idx);
    }
    return idx;
}
