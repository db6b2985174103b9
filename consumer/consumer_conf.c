/*
 * librdkafka configuration shared by the consumer, the producer and the
 * mock cluster's owner handle: the log callback into facility "kafka",
 * property errors phrased once, and the warning rate limiter.
 */
#include <stdio.h>
#include <string.h>

#include "consumer_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /*
     * librdkafka uses syslog levels. Its LOG_ERR lines ("1/1 brokers are
     * down") are transient and repeated by error_cb, so they are WARN
     * here; INFO (6) and DEBUG (7) are per-connection chatter.
     */
    enum vg_log_level lvl;

    if (level <= 2) {
        lvl = VG_LOG_LEVEL_ERROR;
    } else if (level <= 4) {
        lvl = VG_LOG_LEVEL_WARN;
    } else if (level == 5) {
        lvl = VG_LOG_LEVEL_INFO;
    } else {
        lvl = VG_LOG_LEVEL_DEBUG;
    }
    VG_LOG_AT(lvl, "kafka", "%s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

rd_kafka_conf_t *consumer_conf_new(const char *bootstraps, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
    if (bootstraps && consumer_conf_set(conf, "", "bootstrap.servers", bootstraps, errstr,
                                        errstr_size) != VG_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

vg_err_t consumer_conf_set(rd_kafka_conf_t *conf, const char *prefix, const char *key,
                           const char *value, char *errstr, size_t errstr_size)
{
    char msg[512];

    if (rd_kafka_conf_set(conf, key, value, msg, sizeof(msg)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "%s%s: %s", prefix, key, msg);
        return VG_ERR_INVALID;
    }
    return VG_OK;
}

vg_err_t consumer_conf_apply(rd_kafka_conf_t *conf, const struct vg_kv *props, size_t n,
                             char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        vg_err_t err = consumer_conf_set(conf, "kafka.properties.", props[i].key,
                                         props[i].value ? props[i].value : "", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    return VG_OK;
}

/*
 * librdkafka's queue counts payload bytes only; each queued message also
 * costs it an op with the message header and a share of its fetch buffer
 * (about as much again as a ~500-byte event: docs/performance.md, Memory).
 * queued.min.messages caps the count, so that small messages cannot hold
 * several times the budget in that overhead.
 */
#define PREFETCH_BYTES_PER_MSG 512
#define PREFETCH_FETCH_MIN (1L << 20)
#define PREFETCH_FETCH_MAX (50L << 20) /* librdkafka's default fetch.max.bytes */
/* A fetch response may end with one whole batch past fetch.max.bytes: Kafka's default size cap. */
#define PREFETCH_BATCH_MAX (1L << 20)
/*
 * The share of the budget one fetch response may take. What feeds the
 * batch loop through librdkafka's pause of up to 1 s is what is queued
 * when fetching stops (queued.max.messages.kbytes); the response that lands
 * on top of it costs memory without adding to that, so it gets a sixteenth
 * (3 MiB of the default 48): at ~37 MB/s of events that is ~12 fetches a
 * second, and the one fetch in flight per broker still carries 3 MiB.
 */
#define PREFETCH_FETCH_SHARE 16

void consumer_prefetch_derive(int budget_mb, struct consumer_prefetch *pf)
{
    long budget = (long)budget_mb << 20;
    long fetch = budget / PREFETCH_FETCH_SHARE;

    /*
     * A fetch starts while the queue is under queued.max.messages.kbytes and
     * lands on top of it: a sixteenth of the budget for its fetch.max.bytes
     * and room for the one batch it may end with, the rest queued.
     */
    if (fetch < PREFETCH_FETCH_MIN) {
        fetch = PREFETCH_FETCH_MIN;
    } else if (fetch > PREFETCH_FETCH_MAX) {
        fetch = PREFETCH_FETCH_MAX;
    }
    pf->fetch_max_bytes = fetch;
    pf->kbytes = (budget - fetch - PREFETCH_BATCH_MAX) >> 10;
    if (pf->kbytes < 1024) {
        pf->kbytes = 1024;
    }
    pf->min_messages = budget / PREFETCH_BYTES_PER_MSG;
}

bool consumer_ratelimit_allow(struct consumer_ratelimit *rl, int key, int64_t now_ms)
{
    size_t oldest = 0;

    for (size_t i = 0; i < rl->n; i++) {
        if (rl->keys[i] == key) {
            if (now_ms - rl->last_ms[i] < rl->interval_ms) {
                return false;
            }
            rl->last_ms[i] = now_ms;
            return true;
        }
        if (rl->last_ms[i] < rl->last_ms[oldest]) {
            oldest = i;
        }
    }
    if (rl->n < CONSUMER_RATELIMIT_SLOTS) {
        oldest = rl->n++;
    }
    rl->keys[oldest] = key;
    rl->last_ms[oldest] = now_ms;
    return true;
}

vg_err_t consumer_err_of(rd_kafka_resp_err_t rerr)
{
    if (rerr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        return VG_ERR_TIMEOUT;
    }
    if (rerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        rerr == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        return VG_ERR_INVALID;
    }
    return VG_ERR_BACKEND;
}

int consumer_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - vg_mono_ms();

    return left > 0 ? (int)left : 0;
}
