/*
 * Kafka (librdkafka lives only in consumer/): the group consumer and its
 * batch loop, a producer (the dead-letter topic, the kafka sink, demo
 * replay, tests), and the embedded mock cluster used when no brokers are
 * configured (and by the tests).
 *
 * The batch loop never stores an offset before the handler says the
 * batch's effects are in Redis: enable.auto.offset.store=false, and
 * rd_kafka_offsets_store only after handler->batch returned VG_OK.
 */
#ifndef VIGIL_CONSUMER_H
#define VIGIL_CONSUMER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/config.h"
#include "vigil/err.h"

/* One consumed message; all pointers valid only during the handler call. */
struct vg_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key; /* may be NULL */
    size_t key_len;
    const char *payload; /* may be NULL (tombstone) */
    size_t len;
    int64_t timestamp_ms; /* -1 when unknown */
    /*
     * Where the offsets come from, to notice offsets that started again:
     * the partition's high watermark as of the last fetch (<= 0 when
     * unknown) and the Kafka cluster id (NULL when unknown yet).
     */
    int64_t high_watermark;
    const char *cluster_id;
};

struct vg_partition {
    const char *topic;
    int32_t partition;
};

struct vg_consumer_handler {
    void *opaque;
    /*
     * Partitions were assigned (`n` > 0) or revoked. Called from the
     * consumer thread inside the loop, before any message of a newly
     * assigned partition is delivered. May be NULL.
     */
    void (*assigned)(void *opaque, const struct vg_partition *parts, size_t n);
    void (*revoked)(void *opaque, const struct vg_partition *parts, size_t n);
    /*
     * Apply a batch (in partition order as received). VG_OK: offsets are
     * stored for every message. A retriable error: the consumer pauses
     * its partitions, keeps polling (heartbeats, rebalances), and calls
     * batch again with the same messages after a capped exponential
     * backoff (100 ms .. 5 s) until VG_OK, a revoke (the batch is dropped;
     * the new owner re-reads from the committed offsets), or stop. Other
     * errors: the loop returns that error.
     */
    vg_err_t (*batch)(void *opaque, const struct vg_kafka_msg *msgs, size_t n);
    /* Called after each poll round, batch or not (timers, housekeeping). May be NULL. */
    void (*idle)(void *opaque);
    /*
     * May be NULL. A one-line reason for the last failed batch call, used
     * in the consumer's single "apply failed, pausing" WARN line (the
     * consumer decides to retry, so it logs; the handler only returns).
     * Valid until the next call on the handler.
     */
    const char *(*last_error)(void *opaque);
};

struct vg_consumer;

/*
 * Create a group consumer on `bootstraps` subscribed to cfg->topics, with
 * cfg->properties applied last (they override our defaults). Our
 * defaults: enable.auto.offset.store=false, auto.offset.reset=earliest,
 * queued.max.messages.kbytes, queued.min.messages and fetch.max.bytes
 * derived from cfg->prefetch_mb (<= 0: VG_KAFKA_PREFETCH_MB_DEFAULT; the
 * formula is in docs/config.md, the values are logged once),
 * librdkafka logs routed to facility "kafka".
 * Also enable.auto.commit=true (commits what was stored, periodically) and
 * fetch.wait.max.ms=10. cfg->group NULL means "vigil"; batch_size and
 * batch_ms <= 0 mean 5000 and 50. Errors: VG_ERR_INVALID with errstr
 * "kafka.properties.<key>: <librdkafka's message>" (also for
 * enable.auto.offset.store set to anything but "false"), or "kafka.topics"
 * when there is none. Does not wait for the brokers.
 */
vg_err_t vg_consumer_new(struct vg_consumer **out, const struct vg_kafka_config *cfg,
                         const char *bootstraps, char *errstr, size_t errstr_size);

/*
 * Run the batch loop until vg_consumer_stop() or a fatal error. Batches
 * are gathered with rd_kafka_consumer_poll (not the batch APIs, which can
 * lose messages during rebalances in 2.0.2): up to cfg->batch_size
 * messages or cfg->batch_ms. Returns VG_OK after a stop; a stop during a
 * batch's gathering ends the gathering and hands what was gathered to
 * handler->batch once (stored on VG_OK; a batch waiting for a retry is
 * not tried again).
 * Also returns VG_ERR_FATAL after a fatal librdkafka error (logged), or a
 * non-retriable error of handler->batch as is (that batch stays unstored
 * and pending: a later vg_consumer_run offers it again). `h` must stay
 * valid until this returns. Thread: one thread at a time per consumer.
 */
vg_err_t vg_consumer_run(struct vg_consumer *c, const struct vg_consumer_handler *h);
/* Async-signal-safe and thread-safe: ask the loop to return. */
void vg_consumer_stop(struct vg_consumer *c);
/*
 * Commit stored offsets, leave the group (bounded by a 5 s timeout), free.
 * Unapplied messages are dropped (the group re-reads them). The final
 * revoke is not passed to any handler. Accepts NULL.
 */
void vg_consumer_destroy(struct vg_consumer *c);

/*
 * Sum over assigned partitions of (high watermark - position); -1 when
 * unknown (nothing assigned, or a partition has no cached watermark or
 * position yet). Never blocks: uses librdkafka's cached values.
 * Thread-safe (callable from a metrics thread while vg_consumer_run runs).
 */
int64_t vg_consumer_lag(struct vg_consumer *c);
/* (The daemon reports lag per partition, vg_consumer_lag_each; the total stays for tests.) */
/*
 * The current high watermark of `topic`/`partition`, asked of its leader
 * (one round trip, bounded by VG_CONSUMER_WATERMARK_TIMEOUT_MS), unlike the
 * cached value a message carries (as of the consumer's last fetch of the
 * partition, stale while it is paused). VG_ERR_BACKEND/VG_ERR_TIMEOUT
 * (errstr says why) when Kafka does not answer. Thread: the consumer's.
 */
#define VG_CONSUMER_WATERMARK_TIMEOUT_MS 5000
vg_err_t vg_consumer_high_watermark(struct vg_consumer *c, const char *topic, int32_t partition,
                                    int64_t *high, char *errstr, size_t errstr_size);
/* Number of partitions currently assigned. Thread-safe. */
size_t vg_consumer_assigned_count(struct vg_consumer *c);
/*
 * For /metrics: call fn once per assigned partition with its lag
 * (high watermark - position; -1 when not known yet), from librdkafka's
 * cached values. Never blocks. Thread-safe, as vg_consumer_lag.
 */
void vg_consumer_lag_each(struct vg_consumer *c,
                          void (*fn)(void *arg, const char *topic, int32_t partition, int64_t lag),
                          void *arg);

/* A simple producer (acks=all, idempotent). */
struct vg_producer;
vg_err_t vg_producer_new(struct vg_producer **out, const char *bootstraps,
                         const struct vg_kv *props, size_t n_props, char *errstr,
                         size_t errstr_size);
/* Enqueue one message; partition chosen by key hash (or -1 for random/explicit via partition). */
vg_err_t vg_producer_send(struct vg_producer *p, const char *topic, int32_t partition,
                          const char *key, size_t key_len, const char *payload, size_t len,
                          char *errstr, size_t errstr_size);
/* A message header (e.g. the DLQ's vigil.error, vigil.topic, ...). `value` is `len` bytes. */
struct vg_kafka_header {
    const char *name;
    const char *value;
    size_t len;
};
/* Wait until everything is acknowledged (or timeout: VG_ERR_TIMEOUT); delivery errors ->
 * VG_ERR_BACKEND. */
vg_err_t vg_producer_flush(struct vg_producer *p, int timeout_ms, char *errstr, size_t errstr_size);

/*
 * The dead-letter producer: vg_producer_new, with message.max.bytes at
 * least `min_message_bytes` (the decode limit plus room for key and
 * headers) even when `props` set less, so that whatever the decoder may
 * refuse for its size can still be dead-lettered whole.
 */
vg_err_t vg_producer_new_dlq(struct vg_producer **out, const char *bootstraps,
                             const struct vg_kv *props, size_t n_props, size_t min_message_bytes,
                             char *errstr, size_t errstr_size);
/*
 * vg_producer_send, with `headers` (copied) and any partition, for a
 * message whose fate the caller decides alone: `tag` (non-zero) names it
 * in vg_producer_flush_refused. VG_ERR_REJECTED when librdkafka refuses it
 * for its size before sending (over message.max.bytes); other errors as
 * vg_producer_send.
 */
vg_err_t vg_producer_send_tagged(struct vg_producer *p, const char *topic, const char *key,
                                 size_t key_len, const char *payload, size_t len,
                                 const struct vg_kafka_header *headers, size_t n_headers,
                                 uint64_t tag, char *errstr, size_t errstr_size);
/* A tagged message the broker refused for good because of the message itself. */
struct vg_producer_refusal {
    uint64_t tag;
    const char *reason; /* "too_large" or "invalid_record" (static) */
    const char *error;  /* librdkafka's error name, e.g. "MSG_SIZE_TOO_LARGE" (static) */
};
/*
 * vg_producer_flush, except that tagged messages the broker refused
 * because of the message itself (MSG_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
 * INVALID_RECORD: resending them unchanged cannot help) are no error:
 * they are listed in *out (heap, *n_out entries, NULL when none; caller
 * frees). Any other failed delivery (broker down, timeout): as
 * vg_producer_flush, and *out is NULL. Thread: the producer's one user.
 */
vg_err_t vg_producer_flush_refused(struct vg_producer *p, int timeout_ms,
                                   struct vg_producer_refusal **out, size_t *n_out, char *errstr,
                                   size_t errstr_size);
void vg_producer_destroy(struct vg_producer *p);

/* One partition of a replay: where reading starts and where it ends. */
struct vg_kafka_range {
    char *topic; /* owned */
    int32_t partition;
    int64_t start; /* first offset to read */
    int64_t end;   /* the high watermark when asked: one past the last message */
};
/*
 * Every partition of kc->topics with its watermarks (start = the low one)
 * or, with from_ms >= 0, start = the first offset whose timestamp is at or
 * after from_ms (end when there is none), through a temporary consumer
 * handle with kc->properties (bounded, 15 s). *out is heap
 * (vg_kafka_ranges_free). VG_ERR_INVALID: an unknown topic or a bad
 * property; VG_ERR_BACKEND/TIMEOUT: the cluster did not answer.
 */
vg_err_t vg_kafka_ranges(const struct vg_kafka_config *kc, const char *bootstraps, int64_t from_ms,
                         struct vg_kafka_range **out, size_t *n_out, char *errstr,
                         size_t errstr_size);
/*
 * Commit each range's start as consumer group `group`'s offset, so that
 * a consumer of that group starts there. The group must have no members
 * (a new group): the commit is a simple consumer's.
 */
vg_err_t vg_kafka_group_commit(const struct vg_kafka_config *kc, const char *bootstraps,
                               const char *group, const struct vg_kafka_range *v, size_t n,
                               char *errstr, size_t errstr_size);
void vg_kafka_ranges_free(struct vg_kafka_range *v, size_t n);

/*
 * Sum of high watermarks over all partitions of `topic` (bounded by timeout),
 * through a temporary handle: how tests and tools know when everything
 * produced has been consumed. VG_ERR_TIMEOUT, VG_ERR_INVALID (no such
 * topic on a real cluster), VG_ERR_BACKEND otherwise.
 */
vg_err_t vg_kafka_topic_end(const char *bootstraps, const char *topic, int timeout_ms,
                            int64_t *out_total, char *errstr, size_t errstr_size);

/*
 * librdkafka's mock cluster, in process, on 127.0.0.1 (`brokers` brokers,
 * ids 1..brokers). vg_mock_kafka_create_topic creates a topic with
 * `partitions` partitions, partition p led by broker 1 + p % brokers.
 * bootstraps is "127.0.0.1:port,...". Thread-safe to use from other
 * threads/processes. While a mock cluster lives, every fork() of this
 * process closes the mock's sockets in the child before fork returns in
 * the parent (pthread_atfork; see vg_mock_kafka_broker_set_down).
 */
struct vg_mock_kafka;
vg_err_t vg_mock_kafka_start(struct vg_mock_kafka **out, int brokers, char *errstr,
                             size_t errstr_size);
vg_err_t vg_mock_kafka_create_topic(struct vg_mock_kafka *mk, const char *topic, int partitions,
                                    char *errstr, size_t errstr_size);
const char *vg_mock_kafka_bootstraps(const struct vg_mock_kafka *mk);
/* Accepts NULL. Destroy the cluster's clients first (they would keep reconnecting). */
void vg_mock_kafka_stop(struct vg_mock_kafka *mk);
/*
 * Notes on librdkafka 2.0.2's mock broker:
 * - It creates any unknown topic a client names in a metadata request
 *   (producing, subscribing, even vg_kafka_topic_end) with 4 partitions,
 *   after which vg_mock_kafka_create_topic fails (VG_ERR_INVALID, "already
 *   exists"): create topics before any client touches them.
 * - It keeps only ~5 MiB and 100k batches per partition and silently drops
 *   older data: big topics need many partitions (check vg_kafka_topic_end).
 * - Its group coordinator holds every rejoin for session.timeout.ms (45 s by
 *   default): consumers that stop and restart should set session.timeout.ms
 *   (e.g. 6000) and heartbeat.interval.ms (e.g. 500) through properties.
 * - It checks producer sequence numbers only for transactional producers.
 *   An idempotent producer with several requests of a partition in flight
 *   takes a later one's success as proof that an earlier one that failed
 *   with a retriable error (as requests do while brokers go down and
 *   leaders move) was written after all, and reports its messages
 *   delivered without sending them again: true on a real broker, which
 *   would have refused the later request, but the mock wrote it, and the
 *   earlier batch is lost. A producer that streams to the mock while its
 *   requests fail keeps one request in flight
 *   (max.in.flight.requests.per.connection 1). A request written whose
 *   answer was lost (a broker going down) is still written twice.
 */

/*
 * Tests: the next `n` produce requests to the cluster fail with a
 * permanent broker error that is not about the message (topic
 * authorization failed), so those deliveries fail (vg_producer_flush and
 * vg_producer_flush_refused report VG_ERR_BACKEND).
 */
void vg_mock_kafka_fail_produce(struct vg_mock_kafka *mk, size_t n);
/*
 * Tests: the next `n` produce requests are refused as too large
 * (MSG_SIZE_TOO_LARGE), as a broker whose max.message.bytes is smaller
 * than the message would (vg_producer_flush_refused lists them).
 */
void vg_mock_kafka_refuse_size(struct vg_mock_kafka *mk, size_t n);

/* Faults for the chaos tests: requests of one kind that fail. */
enum vg_mock_kafka_request {
    VG_MOCK_KAFKA_FETCH, /* NOT_LEADER_FOR_PARTITION: the consumer refreshes and refetches */
    VG_MOCK_KAFKA_OFFSET_COMMIT, /* COORDINATOR_NOT_AVAILABLE: the commit is retried or redone */
    VG_MOCK_KAFKA_JOIN_GROUP,    /* COORDINATOR_LOAD_IN_PROGRESS: the join is retried */
    VG_MOCK_KAFKA_PRODUCE,       /* NOT_ENOUGH_REPLICAS: nothing written, the producer retries */
};
/*
 * Tests: the next `n` requests of kind `req` (from any client) fail with
 * the retriable error above, as a broker that moves leaders or
 * coordinators answers. Thread-safe.
 */
void vg_mock_kafka_fail_requests(struct vg_mock_kafka *mk, enum vg_mock_kafka_request req,
                                 size_t n);
/*
 * Tests: broker `broker_id` (1..brokers) goes down (its connections are
 * closed, new ones refused) or comes back up; setting the state it is
 * already in does nothing. The partitions of topics created with
 * vg_mock_kafka_create_topic move as in a cluster with replicas: away to
 * the next broker that is up while their broker is down, back once it is
 * up (topics the mock created on its own stay, unreachable while down).
 * The group coordinator does not move (vg_mock_kafka_move_coordinator
 * does). Safe while children are forked: librdkafka 2.0.2 re-binds the
 * broker's port when it goes down and aborts if a child still holds the
 * old listener, which the fork guard rules out (children started with
 * posix_spawn/vfork are not covered). Thread-safe.
 */
void vg_mock_kafka_broker_set_down(struct vg_mock_kafka *mk, int32_t broker_id, bool down);
/*
 * Tests: make broker `broker_id` the coordinator of consumer group
 * `group` (members find out from NOT_COORDINATOR answers and look it up
 * again). VG_ERR_INVALID (errstr) when the mock refuses. Thread-safe.
 */
vg_err_t vg_mock_kafka_move_coordinator(struct vg_mock_kafka *mk, const char *group,
                                        int32_t broker_id, char *errstr, size_t errstr_size);

#endif
