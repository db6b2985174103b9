/*
 * A small idempotent producer (acks=all) for demo replay, tests, the DLQ
 * and the Kafka sink, plus vg_kafka_topic_end(): the sum of a topic's high
 * watermarks through a temporary handle. Tagged sends let the DLQ learn
 * which of its messages the broker refused for their size.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_int.h"
#include "vigil/consumer.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define QUEUE_FULL_TIMEOUT_MS 30000
#define DESTROY_FLUSH_MS 1000

struct vg_producer {
    rd_kafka_t *rk;
    /* Deliveries that failed since the last flush, and the last reason. */
    atomic_long failed;
    atomic_int last_err;
    /* Tagged messages refused for themselves since the last flush (under lock). */
    pthread_mutex_t lock;
    struct vg_producer_refusal *refused;
    size_t n_refused;
    size_t cap_refused;
};

/* The broker refused the message itself: sending it again unchanged cannot help. */
static const char *refusal_reason(rd_kafka_resp_err_t rerr)
{
    switch (rerr) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return "too_large";
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return "invalid_record";
    default:
        return NULL;
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct vg_producer *p = opaque;
    const char *reason;

    (void)rk;
    if (!rkm->err) {
        return;
    }
    reason = refusal_reason(rkm->err);
    if (rkm->_private && reason) {
        pthread_mutex_lock(&p->lock);
        *VG_ARRAY_PUSH(p->refused, p->n_refused, p->cap_refused) = (struct vg_producer_refusal){
            .tag = (uint64_t)(uintptr_t)rkm->_private,
            .reason = reason,
            .error = rd_kafka_err2name(rkm->err),
        };
        pthread_mutex_unlock(&p->lock);
        return;
    }
    atomic_fetch_add(&p->failed, 1);
    atomic_store(&p->last_err, (int)rkm->err);
}

/*
 * message.max.bytes at least `min_bytes` (librdkafka's upper bound is
 * 1000000000), whatever the properties said: the dead-letter topic must
 * take what the decoder refuses.
 */
static vg_err_t raise_max_message_bytes(rd_kafka_conf_t *conf, size_t min_bytes, char *errstr,
                                        size_t errstr_size)
{
    char value[32];
    size_t value_size = sizeof(value);
    char *end = NULL;
    unsigned long long cur = 0;

    if (min_bytes > 1000000000) {
        min_bytes = 1000000000;
    }
    if (rd_kafka_conf_get(conf, "message.max.bytes", value, &value_size) == RD_KAFKA_CONF_OK) {
        errno = 0;
        cur = strtoull(value, &end, 10);
        if (errno || end == value || *end) {
            cur = 0;
        }
    }
    if (cur >= min_bytes) {
        return VG_OK;
    }
    snprintf(value, sizeof(value), "%zu", min_bytes);
    return consumer_conf_set(conf, "", "message.max.bytes", value, errstr, errstr_size);
}

static vg_err_t producer_new(struct vg_producer **out, const char *bootstraps,
                             const struct vg_kv *props, size_t n_props, size_t min_message_bytes,
                             char *errstr, size_t errstr_size)
{
    static const struct {
        const char *key;
        const char *value;
    } defaults[] = {
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
    };
    struct vg_producer *p;
    rd_kafka_conf_t *conf;
    char msg[512];
    vg_err_t err = VG_OK;

    *out = NULL;
    conf = consumer_conf_new(bootstraps, errstr, errstr_size);
    if (!conf) {
        return VG_ERR_INVALID;
    }
    for (size_t i = 0; err == VG_OK && i < VG_ARRAY_LEN(defaults); i++) {
        err = consumer_conf_set(conf, "", defaults[i].key, defaults[i].value, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = consumer_conf_apply(conf, props, n_props, errstr, errstr_size);
    }
    if (err == VG_OK && min_message_bytes > 0) {
        err = raise_max_message_bytes(conf, min_message_bytes, errstr, errstr_size);
    }
    if (err != VG_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    p = vg_calloc(1, sizeof(*p));
    atomic_init(&p->failed, 0);
    atomic_init(&p->last_err, 0);
    pthread_mutex_init(&p->lock, NULL);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof(msg));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "kafka producer: %s", msg);
        pthread_mutex_destroy(&p->lock);
        vg_free(p);
        return VG_ERR_INVALID;
    }
    *out = p;
    return VG_OK;
}

vg_err_t vg_producer_new(struct vg_producer **out, const char *bootstraps,
                         const struct vg_kv *props, size_t n_props, char *errstr,
                         size_t errstr_size)
{
    return producer_new(out, bootstraps, props, n_props, 0, errstr, errstr_size);
}

vg_err_t vg_producer_new_dlq(struct vg_producer **out, const char *bootstraps,
                             const struct vg_kv *props, size_t n_props, size_t min_message_bytes,
                             char *errstr, size_t errstr_size)
{
    return producer_new(out, bootstraps, props, n_props, min_message_bytes, errstr, errstr_size);
}

static vg_err_t produce_err(rd_kafka_resp_err_t rerr)
{
    switch (rerr) {
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return VG_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__FATAL:
        return VG_ERR_FATAL;
    default:
        return VG_ERR_BACKEND;
    }
}

/*
 * After rd_kafka_producev refused `topic` with `rerr`: VG_OK when it was
 * the local queue, full, and there is time left until `deadline` (after
 * serving the queue for 100 ms: produce again); else the error, in errstr.
 */
static vg_err_t wait_queue(struct vg_producer *p, rd_kafka_resp_err_t rerr, const char *topic,
                           int64_t deadline, char *errstr, size_t errstr_size)
{
    if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        snprintf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(rerr));
        return produce_err(rerr);
    }
    if (vg_mono_ms() >= deadline) {
        snprintf(errstr, errstr_size, "produce to %s: local queue full for %d ms", topic,
                 QUEUE_FULL_TIMEOUT_MS);
        return VG_ERR_TIMEOUT;
    }
    rd_kafka_poll(p->rk, 100);
    return VG_OK;
}

vg_err_t vg_producer_send(struct vg_producer *p, const char *topic, int32_t partition,
                          const char *key, size_t key_len, const char *payload, size_t len,
                          char *errstr, size_t errstr_size)
{
    int64_t deadline = vg_mono_ms() + QUEUE_FULL_TIMEOUT_MS;

    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, key ? key_len : 0),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)payload, payload ? len : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        vg_err_t err;

        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_poll(p->rk, 0); /* serve delivery reports */
            return VG_OK;
        }
        err = wait_queue(p, rerr, topic, deadline, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
}

vg_err_t vg_producer_send_tagged(struct vg_producer *p, const char *topic, const char *key,
                                 size_t key_len, const char *payload, size_t len,
                                 const struct vg_kafka_header *headers, size_t n_headers,
                                 uint64_t tag, char *errstr, size_t errstr_size)
{
    int64_t deadline = vg_mono_ms() + QUEUE_FULL_TIMEOUT_MS;

    VG_ASSERT(tag != 0);
    for (;;) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n_headers);
        rd_kafka_resp_err_t rerr;
        vg_err_t err;

        for (size_t i = 0; i < n_headers; i++) {
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].len);
        }
        rerr = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                 RD_KAFKA_V_KEY(key, key ? key_len : 0),
                                 RD_KAFKA_V_VALUE((void *)(uintptr_t)payload, payload ? len : 0),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_poll(p->rk, 0);
            return VG_OK;
        }
        rd_kafka_headers_destroy(hdrs);
        if (rerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            snprintf(errstr, errstr_size, "produce to %s: %zu bytes: %s", topic,
                     len + (key ? key_len : 0), rd_kafka_err2str(rerr));
            return VG_ERR_REJECTED;
        }
        err = wait_queue(p, rerr, topic, deadline, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
}

/* The refusals gathered since the last flush (heap or NULL), and forget them. */
static struct vg_producer_refusal *take_refused(struct vg_producer *p, size_t *n_out)
{
    struct vg_producer_refusal *r;

    pthread_mutex_lock(&p->lock);
    r = p->refused;
    *n_out = p->n_refused;
    p->refused = NULL;
    p->n_refused = 0;
    p->cap_refused = 0;
    pthread_mutex_unlock(&p->lock);
    return r;
}

vg_err_t vg_producer_flush_refused(struct vg_producer *p, int timeout_ms,
                                   struct vg_producer_refusal **out, size_t *n_out, char *errstr,
                                   size_t errstr_size)
{
    rd_kafka_resp_err_t rerr = rd_kafka_flush(p->rk, timeout_ms);
    struct vg_producer_refusal *refused;
    size_t n_refused;
    long failed;

    *out = NULL;
    *n_out = 0;
    if (rerr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        snprintf(errstr, errstr_size, "flush: %d messages still unacknowledged after %d ms",
                 rd_kafka_outq_len(p->rk), timeout_ms);
        return VG_ERR_TIMEOUT;
    }
    if (rerr) {
        snprintf(errstr, errstr_size, "flush: %s", rd_kafka_err2str(rerr));
        return VG_ERR_BACKEND;
    }
    refused = take_refused(p, &n_refused);
    failed = atomic_exchange(&p->failed, 0);
    if (failed > 0) {
        vg_free(refused);
        snprintf(errstr, errstr_size, "%ld deliveries failed, last: %s", failed,
                 rd_kafka_err2str((rd_kafka_resp_err_t)atomic_load(&p->last_err)));
        return VG_ERR_BACKEND;
    }
    *out = refused;
    *n_out = n_refused;
    return VG_OK;
}

vg_err_t vg_producer_flush(struct vg_producer *p, int timeout_ms, char *errstr, size_t errstr_size)
{
    struct vg_producer_refusal *refused;
    size_t n_refused;
    vg_err_t err =
        vg_producer_flush_refused(p, timeout_ms, &refused, &n_refused, errstr, errstr_size);

    if (err == VG_OK && n_refused > 0) {
        /* Here a refusal is a failed delivery like any other. */
        snprintf(errstr, errstr_size, "%zu deliveries failed, last: %s", n_refused,
                 refused[n_refused - 1].error);
        err = VG_ERR_BACKEND;
    }
    vg_free(refused);
    return err;
}

void vg_producer_destroy(struct vg_producer *p)
{
    if (!p) {
        return;
    }
    /* Whatever is still queued is given a short chance, then dropped by destroy. */
    if (rd_kafka_flush(p->rk, DESTROY_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VG_LOG_WARN("consumer", "producer closed with %d messages undelivered after %d ms",
                    rd_kafka_outq_len(p->rk), DESTROY_FLUSH_MS);
    }
    rd_kafka_destroy(p->rk);
    pthread_mutex_destroy(&p->lock);
    vg_free(p->refused);
    vg_free(p);
}

vg_err_t vg_kafka_topic_end(const char *bootstraps, const char *topic, int timeout_ms,
                            int64_t *out_total, char *errstr, size_t errstr_size)
{
    int64_t deadline = vg_mono_ms() + timeout_ms;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    struct vg_kafka_range *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    char msg[512];
    vg_err_t err = VG_OK;

    *out_total = 0;
    conf = consumer_conf_new(bootstraps, errstr, errstr_size);
    if (!conf) {
        return VG_ERR_INVALID;
    }
    /* A read-only question must not create the topic it asks about. */
    err = consumer_conf_set(conf, "", "allow.auto.create.topics", "false", errstr, errstr_size);
    if (err != VG_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof(msg));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "kafka: %s", msg);
        return VG_ERR_INVALID;
    }
    err = consumer_topic_ranges(rk, topic, deadline, &v, &n, &cap, errstr, errstr_size);
    for (size_t i = 0; err == VG_OK && i < n; i++) {
        *out_total += v[i].end;
    }
    vg_kafka_ranges_free(v, n);
    rd_kafka_destroy(rk);
    return err;
}
