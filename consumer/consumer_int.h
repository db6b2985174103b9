/*
 * Private to consumer/: what consumer.c, producer.c and mock.c share about
 * librdkafka configuration (our log callback, property errors in one
 * format) and a small per-error-code rate limiter for noisy warnings.
 */
#ifndef VIGIL_CONSUMER_INT_H
#define VIGIL_CONSUMER_INT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/config.h"
#include "vigil/err.h"

/* librdkafka's log lines -> VG_LOG_* facility "kafka" (syslog levels mapped). */
void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/*
 * A new conf with our log callback and, when `bootstraps` is non-NULL,
 * bootstrap.servers set. NULL with errstr filled when bootstraps is rejected.
 */
rd_kafka_conf_t *consumer_conf_new(const char *bootstraps, char *errstr, size_t errstr_size);

/*
 * rd_kafka_conf_set(); on failure VG_ERR_INVALID with errstr
 * "<prefix><key>: <librdkafka's message>" (prefix may be "").
 */
vg_err_t consumer_conf_set(rd_kafka_conf_t *conf, const char *prefix, const char *key,
                           const char *value, char *errstr, size_t errstr_size);

/* Apply user properties (after our defaults); errors name "kafka.properties.<key>". */
vg_err_t consumer_conf_apply(rd_kafka_conf_t *conf, const struct vg_kv *props, size_t n,
                             char *errstr, size_t errstr_size);

/*
 * librdkafka's prefetch settings derived from a budget of kafka.prefetch_mb
 * MiB (docs/config.md has the formula). In 2.0.2 the high-level consumer's
 * per-partition fetch queues forward into one consumer queue, and both
 * queued.* limits are checked against that shared queue, whatever the
 * number of partitions: a partition is fetched while the whole queue holds
 * fewer than min_messages and fewer than kbytes KiB of payload, and one
 * fetch response (at most fetch_max_bytes) can land on top of that.
 */
struct consumer_prefetch {
    long kbytes;          /* queued.max.messages.kbytes */
    long min_messages;    /* queued.min.messages */
    long fetch_max_bytes; /* fetch.max.bytes */
};
void consumer_prefetch_derive(int budget_mb, struct consumer_prefetch *pf);

/*
 * Tests only: raise a fabricated fatal error on the consumer's handle
 * (rd_kafka_test_fatal_error), as a fenced or otherwise dead client would.
 */
struct vg_consumer;
void consumer_test_fatal(struct vg_consumer *c, const char *reason);
/*
 * Tests only: the largest fetch queue librdkafka reported (bytes of
 * payload, "fetchq_size" of its statistics, emitted when the properties set
 * statistics.interval.ms) and how many statistics it emitted. Thread-safe.
 */
int64_t consumer_test_prefetch_peak(struct vg_consumer *c, int *samples);

/* At most one log line per key per interval; not thread-safe (one owner thread). */
#define CONSUMER_RATELIMIT_SLOTS 16
struct consumer_ratelimit {
    int64_t interval_ms;
    int keys[CONSUMER_RATELIMIT_SLOTS];
    int64_t last_ms[CONSUMER_RATELIMIT_SLOTS];
    size_t n;
};

/* True when `key` was not let through in the last interval_ms (and records it). */
bool consumer_ratelimit_allow(struct consumer_ratelimit *rl, int key, int64_t now_ms);

/*
 * librdkafka's error for a metadata or offsets request, translated once:
 * a timeout, an unknown topic (the user's to fix), else the brokers.
 */
vg_err_t consumer_err_of(rd_kafka_resp_err_t rerr);
/* Milliseconds left until `deadline_ms` (vg_mono_ms), 0 once past. */
int consumer_left_ms(int64_t deadline_ms);
struct vg_kafka_range;
/*
 * Append the partitions of `topic` with their watermarks (start: low, end:
 * high) to *out (n used, cap allocated; vg_kafka_ranges_free), asking
 * through `rk` until `deadline` (vg_mono_ms). An error names the topic (and
 * the partition) in errstr, translated by consumer_err_of.
 */
vg_err_t consumer_topic_ranges(rd_kafka_t *rk, const char *topic, int64_t deadline,
                               struct vg_kafka_range **out, size_t *n, size_t *cap, char *errstr,
                               size_t errstr_size);

#endif
