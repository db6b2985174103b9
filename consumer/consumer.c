/*
 * The group consumer and its batch loop: gather with rd_kafka_consumer_poll,
 * hand a batch to the handler, store offsets only after it says VG_OK,
 * pause and retry on retriable failures, and react to rebalances (eager
 * and cooperative). Commit and a bounded close live in vg_consumer_destroy.
 */
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

/* vg_consumer_stop() is called from signal handlers: the flag must be lock-free. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int must be lock-free");

#define POLL_MAX_MS 100
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define CLOSE_TIMEOUT_MS 5000
#define WARN_INTERVAL_MS 10000
#define DEFAULT_BATCH_SIZE 5000
#define DEFAULT_BATCH_MS 50

struct msgvec {
    rd_kafka_message_t **v;
    size_t n;
    size_t cap;
};

struct vg_consumer {
    rd_kafka_t *rk;
    int batch_size;
    int batch_ms;
    atomic_int stop;
    atomic_int fatal;
    /* Set only while vg_consumer_run runs: rebalances outside it (close) skip the handler. */
    const struct vg_consumer_handler *h;

    /* Polled, handed (or to be handed) to the handler, offsets not stored yet. */
    struct msgvec batch;
    /* Returned by poll while the batch waits for a retry: the next batch starts with them. */
    struct msgvec carry;
    struct vg_kafka_msg *views;
    size_t views_cap;

    bool paused;
    int failures; /* consecutive failed calls of the current batch */
    int backoff_ms;
    int64_t retry_at_ms;
    uint64_t rng;

    /* Our copy of the assignment, for lag/assigned_count from other threads. */
    pthread_mutex_t lock;
    rd_kafka_topic_partition_list_t *assignment;

    struct consumer_ratelimit warn_rl; /* consumer thread only */
    char *cluster_id;                  /* librdkafka's (rd_kafka_mem_free); NULL until known */
    /* From librdkafka's statistics, when enabled: for tests. */
    _Atomic int64_t prefetch_peak;
    atomic_int stats_samples;
};

static int64_t jitter(struct vg_consumer *c, int64_t ms)
{
    /* xorshift64: a private generator, so no shared rand() state between threads. */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return ms + (int64_t)(c->rng % (uint64_t)(ms / 4 + 1));
}

static void msgvec_push(struct msgvec *mv, rd_kafka_message_t *rkm)
{
    *VG_ARRAY_PUSH(mv->v, mv->n, mv->cap) = rkm;
}

static void msgvec_clear(struct msgvec *mv)
{
    for (size_t i = 0; i < mv->n; i++) {
        rd_kafka_message_destroy(mv->v[i]);
    }
    mv->n = 0;
}

static void msgvec_fini(struct msgvec *mv)
{
    msgvec_clear(mv);
    vg_free(mv->v);
    mv->v = NULL;
    mv->cap = 0;
}

static bool in_list(const rd_kafka_topic_partition_list_t *parts, const char *topic,
                    int32_t partition)
{
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == partition && strcmp(parts->elems[i].topic, topic) == 0) {
            return true;
        }
    }
    return false;
}

/* Drop (destroy) the messages of `parts`; the others keep their order. Returns how many. */
static size_t msgvec_drop(struct msgvec *mv, const rd_kafka_topic_partition_list_t *parts)
{
    size_t kept = 0;
    size_t dropped = 0;

    for (size_t i = 0; i < mv->n; i++) {
        rd_kafka_message_t *rkm = mv->v[i];
        if (in_list(parts, rd_kafka_topic_name(rkm->rkt), rkm->partition)) {
            rd_kafka_message_destroy(rkm);
            dropped++;
        } else {
            mv->v[kept++] = rkm;
        }
    }
    mv->n = kept;
    return dropped;
}

static rd_kafka_topic_partition_list_t *assignment_copy(struct vg_consumer *c)
{
    rd_kafka_topic_partition_list_t *copy;

    pthread_mutex_lock(&c->lock);
    copy = rd_kafka_topic_partition_list_copy(c->assignment);
    pthread_mutex_unlock(&c->lock);
    return copy;
}

static void assignment_add(struct vg_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < parts->cnt; i++) {
        if (!in_list(c->assignment, parts->elems[i].topic, parts->elems[i].partition)) {
            rd_kafka_topic_partition_list_add(c->assignment, parts->elems[i].topic,
                                              parts->elems[i].partition);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static void assignment_remove(struct vg_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_list_del(c->assignment, parts->elems[i].topic,
                                          parts->elems[i].partition);
    }
    pthread_mutex_unlock(&c->lock);
}

static void assignment_clear(struct vg_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    rd_kafka_topic_partition_list_destroy(c->assignment);
    c->assignment = rd_kafka_topic_partition_list_new(16);
    pthread_mutex_unlock(&c->lock);
}

static void call_handler_parts(struct vg_consumer *c, bool assigned,
                               const rd_kafka_topic_partition_list_t *parts)
{
    void (*fn)(void *, const struct vg_partition *, size_t);
    struct vg_partition *vp;

    if (!c->h || parts->cnt <= 0) {
        return;
    }
    fn = assigned ? c->h->assigned : c->h->revoked;
    if (!fn) {
        return;
    }
    vp = vg_calloc((size_t)parts->cnt, sizeof(*vp));
    for (int i = 0; i < parts->cnt; i++) {
        vp[i].topic = parts->elems[i].topic;
        vp[i].partition = parts->elems[i].partition;
    }
    fn(c->h->opaque, vp, (size_t)parts->cnt);
    vg_free(vp);
}

static void pause_resume(struct vg_consumer *c, rd_kafka_topic_partition_list_t *parts, bool pause)
{
    rd_kafka_resp_err_t rerr;

    if (parts->cnt == 0) {
        return;
    }
    rerr =
        pause ? rd_kafka_pause_partitions(c->rk, parts) : rd_kafka_resume_partitions(c->rk, parts);
    /* The call itself succeeds; a partition it could not (un)pause says so in its .err. */
    for (int i = 0; !rerr && i < parts->cnt; i++) {
        rerr = parts->elems[i].err;
    }
    if (rerr) {
        VG_LOG_WARN("consumer", "%s %d partitions: %s", pause ? "pausing" : "resuming", parts->cnt,
                    rd_kafka_err2str(rerr));
    }
}

static void on_assign(struct vg_consumer *c, rd_kafka_topic_partition_list_t *parts, bool coop)
{
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (coop) {
        rd_kafka_error_t *error = rd_kafka_incremental_assign(c->rk, parts);
        if (error) {
            VG_LOG_WARN("consumer", "incremental assign of %d partitions: %s", parts->cnt,
                        rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            return;
        }
    } else {
        rerr = rd_kafka_assign(c->rk, parts);
        if (rerr) {
            VG_LOG_WARN("consumer", "assign of %d partitions: %s", parts->cnt,
                        rd_kafka_err2str(rerr));
            return;
        }
    }
    assignment_add(c, parts);
    /*
     * The application pause flag is per partition object and may survive
     * an unassign; make each new partition match the loop's state (paused
     * while a batch waits for its retry) so none stays stuck.
     */
    pause_resume(c, parts, c->paused);
    if (parts->cnt > 0) { /* cooperative rebalances often assign nothing new */
        VG_LOG_INFO("consumer", "assigned %d partitions (%s), %s%s", parts->cnt,
                    coop ? "cooperative" : "eager", parts->elems[0].topic,
                    parts->cnt > 1 ? " ..." : "");
    }
    call_handler_parts(c, true, parts);
}

static void on_revoke(struct vg_consumer *c, rd_kafka_topic_partition_list_t *parts, bool coop)
{
    size_t dropped;
    bool lost = rd_kafka_assignment_lost(c->rk);

    call_handler_parts(c, false, parts);
    /*
     * Nothing of these partitions was stored past what the handler
     * acknowledged: whoever owns them next (us again, after an eager
     * rebalance) restarts from the committed offset.
     */
    dropped = msgvec_drop(&c->batch, parts) + msgvec_drop(&c->carry, parts);
    if (coop) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(c->rk, parts);
        if (error) {
            VG_LOG_WARN("consumer", "incremental unassign of %d partitions: %s", parts->cnt,
                        rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        assignment_remove(c, parts);
    } else {
        rd_kafka_resp_err_t rerr = rd_kafka_assign(c->rk, NULL);

        if (rerr) {
            VG_LOG_WARN("consumer", "unassign of %d partitions: %s", parts->cnt,
                        rd_kafka_err2str(rerr));
        }
        assignment_clear(c);
    }
    if (parts->cnt > 0) {
        VG_LOG_INFO("consumer", "revoked %d partitions (%s)%s, %zu unapplied messages dropped",
                    parts->cnt, coop ? "cooperative" : "eager", lost ? ", lost" : "", dropped);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct vg_consumer *c = opaque;
    const char *protocol = rd_kafka_rebalance_protocol(rk); /* NULL on error */
    bool coop = protocol && strcmp(protocol, "COOPERATIVE") == 0;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        on_assign(c, parts, coop);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        on_revoke(c, parts, coop);
        break;
    default: {
        rd_kafka_topic_partition_list_t *all = assignment_copy(c);
        VG_LOG_WARN("consumer", "rebalance failed: %s; dropping the assignment",
                    rd_kafka_err2str(err));
        on_revoke(c, all, coop);
        rd_kafka_topic_partition_list_destroy(all);
        break;
    }
    }
}

/* The consumer can't go on (e.g. fenced): the loop returns VG_ERR_FATAL. Logged once. */
static void on_fatal(struct vg_consumer *c)
{
    char fatal[512];
    rd_kafka_resp_err_t orig;

    if (atomic_exchange(&c->fatal, 1)) {
        return;
    }
    orig = rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal));
    VG_LOG_ERROR("consumer", "kafka fatal error, stopping: %s: %s", rd_kafka_err2name(orig), fatal);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct vg_consumer *c = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        on_fatal(c);
        return;
    }
    if (consumer_ratelimit_allow(&c->warn_rl, err, vg_mono_ms())) {
        VG_LOG_WARN("consumer", "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                    reason);
    }
}

/*
 * librdkafka 2.0.2 stops fetching for up to 1 s once its prefetch queue is
 * full, so the queue must hold more than a second of consumption, or the
 * pipeline starves (docs/performance.md, Memory); it is also most of what a
 * backlog costs in memory. Both come from one budget
 * (consumer_prefetch_derive); kafka.properties, applied after, still win.
 */
static vg_err_t set_prefetch(rd_kafka_conf_t *conf, int budget_mb, char *errstr, size_t errstr_size)
{
    struct consumer_prefetch pf;
    char kbytes[32];
    char min_messages[32];
    char fetch_max[32];

    consumer_prefetch_derive(budget_mb, &pf);
    snprintf(kbytes, sizeof(kbytes), "%ld", pf.kbytes);
    snprintf(min_messages, sizeof(min_messages), "%ld", pf.min_messages);
    snprintf(fetch_max, sizeof(fetch_max), "%ld", pf.fetch_max_bytes);
    if (consumer_conf_set(conf, "kafka.prefetch_mb: ", "queued.max.messages.kbytes", kbytes, errstr,
                          errstr_size) != VG_OK ||
        consumer_conf_set(conf, "kafka.prefetch_mb: ", "queued.min.messages", min_messages, errstr,
                          errstr_size) != VG_OK ||
        consumer_conf_set(conf, "kafka.prefetch_mb: ", "fetch.max.bytes", fetch_max, errstr,
                          errstr_size) != VG_OK) {
        return VG_ERR_INVALID;
    }
    return VG_OK;
}

/* The prefetch bound in effect (kafka.properties included), once at start. */
static void log_prefetch(const rd_kafka_conf_t *conf, int budget_mb)
{
    static const char *const keys[] = {"queued.max.messages.kbytes", "queued.min.messages",
                                       "fetch.max.bytes"};
    char vals[3][32];

    for (size_t i = 0; i < VG_ARRAY_LEN(keys); i++) {
        size_t size = sizeof(vals[i]);

        if (rd_kafka_conf_get(conf, keys[i], vals[i], &size) != RD_KAFKA_CONF_OK) {
            snprintf(vals[i], sizeof(vals[i]), "?");
        }
    }
    VG_LOG_INFO("consumer",
                "prefetch: kafka.prefetch_mb=%d; in effect (kafka.properties win) "
                "queued.max.messages.kbytes=%s queued.min.messages=%s fetch.max.bytes=%s, for "
                "the one consumer queue of all partitions",
                budget_mb, vals[0], vals[1], vals[2]);
}

/*
 * Statistics (only when kafka.properties sets statistics.interval.ms): the
 * largest "fetchq_size" of any partition. Each partition's fetch queue
 * forwards into the consumer queue, so each reports that shared queue.
 */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    static const char field[] = "\"fetchq_size\":";
    struct vg_consumer *c = opaque;
    int64_t peak = 0;

    (void)rk;
    (void)json_len;
    for (const char *p = strstr(json, field); p; p = strstr(p, field)) {
        char *end;
        long long v;

        p += sizeof(field) - 1;
        v = strtoll(p, &end, 10);
        if (end != p && v > peak) {
            peak = v;
        }
    }
    if (peak > atomic_load(&c->prefetch_peak)) {
        atomic_store(&c->prefetch_peak, peak);
    }
    atomic_fetch_add(&c->stats_samples, 1);
    return 0; /* librdkafka frees json */
}

vg_err_t vg_consumer_new(struct vg_consumer **out, const struct vg_kafka_config *cfg,
                         const char *bootstraps, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *key;
        const char *value;
    } defaults[] = {
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "10"},
    };
    struct vg_consumer *c;
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t rerr;
    char msg[512];
    vg_err_t err;

    *out = NULL;
    if (cfg->n_topics == 0) {
        snprintf(errstr, errstr_size, "kafka.topics: no topic to consume");
        return VG_ERR_INVALID;
    }
    conf = consumer_conf_new(bootstraps, errstr, errstr_size);
    if (!conf) {
        return VG_ERR_INVALID;
    }
    err = consumer_conf_set(conf, "", "group.id", cfg->group ? cfg->group : "vigil", errstr,
                            errstr_size);
    for (size_t i = 0; err == VG_OK && i < VG_ARRAY_LEN(defaults); i++) {
        err = consumer_conf_set(conf, "", defaults[i].key, defaults[i].value, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = set_prefetch(conf,
                           cfg->prefetch_mb > 0 ? cfg->prefetch_mb : VG_KAFKA_PREFETCH_MB_DEFAULT,
                           errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = consumer_conf_apply(conf, cfg->properties, cfg->n_properties, errstr, errstr_size);
    }
    for (size_t i = 0; err == VG_OK && i < cfg->n_properties; i++) {
        /* Offsets move only after the handler's VG_OK: never at poll time. */
        if (strcmp(cfg->properties[i].key, "enable.auto.offset.store") == 0 &&
            (!cfg->properties[i].value || strcmp(cfg->properties[i].value, "false") != 0)) {
            snprintf(errstr, errstr_size,
                     "kafka.properties.enable.auto.offset.store: must stay \"false\" (offsets are "
                     "stored once a batch is applied)");
            err = VG_ERR_INVALID;
        }
    }
    if (err != VG_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    log_prefetch(conf, cfg->prefetch_mb > 0 ? cfg->prefetch_mb : VG_KAFKA_PREFETCH_MB_DEFAULT);

    c = vg_calloc(1, sizeof(*c));
    c->batch_size = cfg->batch_size > 0 ? cfg->batch_size : DEFAULT_BATCH_SIZE;
    c->batch_ms = cfg->batch_ms > 0 ? cfg->batch_ms : DEFAULT_BATCH_MS;
    atomic_init(&c->stop, 0);
    atomic_init(&c->fatal, 0);
    atomic_init(&c->prefetch_peak, 0);
    atomic_init(&c->stats_samples, 0);
    c->rng = (uint64_t)vg_now_ms() * 0x9E3779B97F4A7C15ULL | 1;
    c->warn_rl.interval_ms = WARN_INTERVAL_MS;
    c->assignment = rd_kafka_topic_partition_list_new(16);
    pthread_mutex_init(&c->lock, NULL);

    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "kafka consumer: %s", msg);
        err = VG_ERR_INVALID;
        goto out_free;
    }
    /* error_cb and friends are then served by rd_kafka_consumer_poll, in our thread. */
    rd_kafka_poll_set_consumer(c->rk);

    topics = rd_kafka_topic_partition_list_new((int)cfg->n_topics);
    for (size_t i = 0; i < cfg->n_topics; i++) {
        rd_kafka_topic_partition_list_add(topics, cfg->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rerr = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        snprintf(errstr, errstr_size, "kafka subscribe: %s", rd_kafka_err2str(rerr));
        err = rerr == RD_KAFKA_RESP_ERR__INVALID_ARG ? VG_ERR_INVALID : VG_ERR_BACKEND;
        goto out_rk;
    }
    *out = c;
    return VG_OK;

out_rk:
    rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
out_free:
    rd_kafka_topic_partition_list_destroy(c->assignment);
    pthread_mutex_destroy(&c->lock);
    vg_free(c);
    return err;
}

static bool stopping(struct vg_consumer *c)
{
    return atomic_load(&c->stop) || atomic_load(&c->fatal);
}

/* Returns a message to keep, or NULL (nothing, or an error event already handled). */
static rd_kafka_message_t *poll_one(struct vg_consumer *c, int timeout_ms)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);

    if (!rkm) {
        return NULL;
    }
    if (rkm->err) {
        /* A consumer's fatal error arrives here, as a message, rather than via error_cb. */
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
            on_fatal(c);
        } else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                   consumer_ratelimit_allow(&c->warn_rl, rkm->err, vg_mono_ms())) {
            VG_LOG_WARN("consumer", "consume error topic=%s partition=%d: %s",
                        rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-", (int)rkm->partition,
                        rd_kafka_message_errstr(rkm));
        }
        rd_kafka_message_destroy(rkm);
        return NULL;
    }
    return rkm;
}

/*
 * Fill c->batch: carried messages first, then poll until it is full, until
 * batch_ms after its first message, or until no message is ready. A batch
 * never waits for messages that have not arrived: at a low rate each event
 * goes through at once (latency), and under a backlog the fetch queue is
 * never empty, so batches fill up to batch_size (throughput). batch_ms
 * bounds how long a steady trickle can keep a batch open.
 */
static void gather(struct vg_consumer *c)
{
    size_t room = c->batch.n < (size_t)c->batch_size ? (size_t)c->batch_size - c->batch.n : 0;
    size_t take = c->carry.n < room ? c->carry.n : room;
    int64_t first_ms = 0;

    for (size_t i = 0; i < take; i++) {
        msgvec_push(&c->batch, c->carry.v[i]);
    }
    if (take > 0) {
        memmove(c->carry.v, c->carry.v + take, (c->carry.n - take) * sizeof(*c->carry.v));
        c->carry.n -= take;
    }
    if (c->batch.n > 0) {
        first_ms = vg_mono_ms();
    }

    while (!stopping(c) && c->batch.n < (size_t)c->batch_size) {
        int timeout_ms = POLL_MAX_MS;
        rd_kafka_message_t *rkm;

        if (c->batch.n > 0) {
            int64_t left = first_ms + c->batch_ms - vg_mono_ms();
            if (left <= 0) {
                break;
            }
            timeout_ms = 0; /* take only what is ready */
        }
        rkm = poll_one(c, timeout_ms);
        if (!rkm) {
            break; /* nothing ready: close the batch (or, empty, let idle() run) */
        }
        if (c->batch.n == 0) {
            first_ms = vg_mono_ms();
        }
        msgvec_push(&c->batch, rkm);
    }
}

static void store_offsets(struct vg_consumer *c)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(16);
    rd_kafka_resp_err_t rerr;

    for (size_t i = 0; i < c->batch.n; i++) {
        const rd_kafka_message_t *rkm = c->batch.v[i];
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(offs, topic, rkm->partition);
        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(offs, topic, rkm->partition);
            tp->offset = rkm->offset + 1;
        } else if (rkm->offset + 1 > tp->offset) {
            tp->offset = rkm->offset + 1;
        }
    }
    rerr = rd_kafka_offsets_store(c->rk, offs);
    for (int i = 0; !rerr && i < offs->cnt; i++) {
        rerr = offs->elems[i].err;
    }
    if (rerr && consumer_ratelimit_allow(&c->warn_rl, rerr, vg_mono_ms())) {
        VG_LOG_WARN("consumer", "storing offsets of %d partitions: %s", offs->cnt,
                    rd_kafka_err2str(rerr));
    }
    rd_kafka_topic_partition_list_destroy(offs);
}

/*
 * The cached high watermark of the message's partition (from the fetch
 * that brought it or a later one; never a broker round trip), asked once
 * per run of messages of one partition. <= 0: unknown.
 */
static int64_t high_watermark(struct vg_consumer *c, const rd_kafka_message_t *rkm,
                              const rd_kafka_message_t *prev, int64_t prev_high)
{
    int64_t low;
    int64_t high = -1;

    if (prev && prev->rkt == rkm->rkt && prev->partition == rkm->partition) {
        return prev_high;
    }
    if (rd_kafka_get_watermark_offsets(c->rk, rd_kafka_topic_name(rkm->rkt), rkm->partition, &low,
                                       &high) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }
    return high;
}

static vg_err_t call_batch(struct vg_consumer *c)
{
    if (c->views_cap < c->batch.n) {
        vg_array_grow((void **)&c->views, &c->views_cap, c->batch.n, sizeof(*c->views));
    }
    if (!c->cluster_id) {
        /* Known from the first metadata reply on; 0: the cached value, never a wait. */
        c->cluster_id = rd_kafka_clusterid(c->rk, 0);
    }
    for (size_t i = 0; i < c->batch.n; i++) {
        const rd_kafka_message_t *rkm = c->batch.v[i];
        struct vg_kafka_msg *m = &c->views[i];
        m->high_watermark = high_watermark(c, rkm, i > 0 ? c->batch.v[i - 1] : NULL,
                                           i > 0 ? c->views[i - 1].high_watermark : -1);
        m->cluster_id = c->cluster_id;
        m->topic = rd_kafka_topic_name(rkm->rkt);
        m->partition = rkm->partition;
        m->offset = rkm->offset;
        m->key = rkm->key;
        m->key_len = rkm->key ? rkm->key_len : 0;
        m->payload = rkm->payload;
        m->len = rkm->payload ? rkm->len : 0;
        m->timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
    }
    return c->h->batch(c->h->opaque, c->views, c->batch.n);
}

static void set_paused(struct vg_consumer *c, bool paused)
{
    rd_kafka_topic_partition_list_t *parts = assignment_copy(c);

    c->paused = paused;
    pause_resume(c, parts, paused);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* One attempt at the pending batch. Returns VG_OK also when a retry is scheduled. */
static vg_err_t apply(struct vg_consumer *c)
{
    vg_err_t err = call_batch(c);

    if (err == VG_OK) {
        store_offsets(c);
        msgvec_clear(&c->batch);
        if (c->paused) {
            set_paused(c, false);
            VG_LOG_INFO("consumer", "resumed after %d failed attempts", c->failures);
        }
        c->failures = 0;
        return VG_OK;
    }
    if (!vg_err_is_retriable(err)) {
        return err;
    }
    c->failures++;
    if (!c->paused) {
        const char *reason = c->h->last_error ? c->h->last_error(c->h->opaque) : NULL;
        set_paused(c, true);
        VG_LOG_WARN("consumer", "apply failed, pausing %zu partitions: %s",
                    vg_consumer_assigned_count(c), reason ? reason : vg_err_name(err));
        c->backoff_ms = RETRY_MIN_MS;
    } else if (c->backoff_ms < RETRY_MAX_MS) {
        c->backoff_ms = c->backoff_ms * 2 < RETRY_MAX_MS ? c->backoff_ms * 2 : RETRY_MAX_MS;
    }
    c->retry_at_ms = vg_mono_ms() + jitter(c, c->backoff_ms);
    return VG_OK;
}

vg_err_t vg_consumer_run(struct vg_consumer *c, const struct vg_consumer_handler *h)
{
    vg_err_t err = VG_OK;

    c->h = h;
    while (!stopping(c)) {
        if (c->paused) {
            /* Paused partitions deliver nothing, but heartbeats and rebalances go on. */
            int64_t left = c->retry_at_ms - vg_mono_ms();
            rd_kafka_message_t *rkm;
            if (left < 0) {
                left = 0;
            } else if (left > POLL_MAX_MS) {
                left = POLL_MAX_MS;
            }
            rkm = poll_one(c, (int)left);
            if (rkm) {
                msgvec_push(&c->carry, rkm);
            }
        } else {
            gather(c);
        }
        if (h->idle) {
            h->idle(h->opaque);
        }
        if (stopping(c)) {
            /*
             * A stop (SIGTERM) finishes the batch in flight, once: its
             * effects and offsets are then committed on the way out. A
             * failing (paused) batch is left to the group to re-read.
             */
            if (!atomic_load(&c->fatal) && !c->paused && c->batch.n > 0) {
                err = apply(c);
            }
            break;
        }
        if (c->batch.n == 0) {
            if (c->paused) {
                /* A revoke took the whole batch: its partitions restart from the commit. */
                set_paused(c, false);
                c->failures = 0;
                VG_LOG_INFO("consumer", "resumed: the failed batch was revoked");
            }
            continue;
        }
        if (c->paused && vg_mono_ms() < c->retry_at_ms) {
            continue;
        }
        err = apply(c);
        if (err != VG_OK) {
            break;
        }
    }
    if (err == VG_OK && atomic_load(&c->fatal)) {
        err = VG_ERR_FATAL;
    }
    c->h = NULL;
    return err;
}

void vg_consumer_stop(struct vg_consumer *c)
{
    atomic_store(&c->stop, 1);
}

void consumer_test_fatal(struct vg_consumer *c, const char *reason)
{
    rd_kafka_test_fatal_error(c->rk, RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID, reason);
}

int64_t consumer_test_prefetch_peak(struct vg_consumer *c, int *samples)
{
    *samples = atomic_load(&c->stats_samples);
    return atomic_load(&c->prefetch_peak);
}

static void close_bounded(struct vg_consumer *c)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(c->rk, q);
    int64_t deadline = vg_mono_ms() + CLOSE_TIMEOUT_MS;
    bool closed;

    if (error) {
        /* After a fatal error the group can't be left: don't wait for it. */
        if (!atomic_load(&c->fatal)) {
            VG_LOG_WARN("consumer", "close: %s", rd_kafka_error_string(error));
        }
        rd_kafka_error_destroy(error);
        deadline = vg_mono_ms();
    }
    /*
     * rd_kafka_consumer_close() can hang forever after lost partitions in
     * 2.0.2; serving the close queue ourselves lets us give up. The final
     * revoke arrives here as an event, not through rebalance_cb, and the
     * group waits until it is acknowledged with an (incremental) unassign.
     * c->h is NULL by now: the handler is not told.
     */
    while (!(closed = rd_kafka_consumer_closed(c->rk)) && vg_mono_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, POLL_MAX_MS);
        if (!ev) {
            continue;
        }
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
            rebalance_cb(c->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         c);
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    if (closed) {
        rd_kafka_destroy(c->rk);
    } else {
        if (!atomic_load(&c->fatal)) {
            VG_LOG_WARN("consumer", "leaving the group timed out after %d ms", CLOSE_TIMEOUT_MS);
        }
        rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
}

void vg_consumer_destroy(struct vg_consumer *c)
{
    rd_kafka_resp_err_t rerr;

    if (!c) {
        return;
    }
    /* Unapplied messages: never stored, the next owner reads them again. */
    msgvec_fini(&c->batch);
    msgvec_fini(&c->carry);
    rerr = atomic_load(&c->fatal) ? RD_KAFKA_RESP_ERR__FATAL : rd_kafka_commit(c->rk, NULL, 0);
    if (rerr && rerr != RD_KAFKA_RESP_ERR__NO_OFFSET && rerr != RD_KAFKA_RESP_ERR__FATAL) {
        VG_LOG_WARN("consumer", "final commit: %s", rd_kafka_err2str(rerr));
    }
    close_bounded(c);
    rd_kafka_topic_partition_list_destroy(c->assignment);
    pthread_mutex_destroy(&c->lock);
    vg_free(c->views);
    if (c->cluster_id) {
        rd_kafka_mem_free(NULL, c->cluster_id);
    }
    vg_free(c);
}

int64_t vg_consumer_lag(struct vg_consumer *c)
{
    rd_kafka_topic_partition_list_t *parts = assignment_copy(c);
    int64_t lag = 0;

    if (parts->cnt == 0 || rd_kafka_position(c->rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        lag = -1;
    }
    for (int i = 0; lag >= 0 && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t low;
        int64_t high;
        if (rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &low, &high) ||
            high < 0) {
            lag = -1;
        } else if (tp->offset >= 0) {
            lag += high > tp->offset ? high - tp->offset : 0;
        } else if (high != 0) {
            lag = -1; /* nothing consumed yet from a non-empty partition */
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}

void vg_consumer_lag_each(struct vg_consumer *c,
                          void (*fn)(void *arg, const char *topic, int32_t partition, int64_t lag),
                          void *arg)
{
    rd_kafka_topic_partition_list_t *parts = assignment_copy(c);
    bool have_pos = parts->cnt > 0 && rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR;

    for (int i = 0; have_pos && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t low;
        int64_t high;
        int64_t lag = -1;
        if (rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &low, &high) == 0 &&
            high >= 0) {
            if (tp->offset >= 0) {
                lag = high > tp->offset ? high - tp->offset : 0;
            } else if (high == 0) {
                lag = 0;
            }
        }
        fn(arg, tp->topic, tp->partition, lag);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

vg_err_t vg_consumer_high_watermark(struct vg_consumer *c, const char *topic, int32_t partition,
                                    int64_t *high, char *errstr, size_t errstr_size)
{
    int64_t low = -1;
    rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(c->rk, topic, partition, &low, high,
                                                                VG_CONSUMER_WATERMARK_TIMEOUT_MS);

    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "kafka: high watermark of %s [%d]: %s", topic, (int)partition,
                 rd_kafka_err2str(rerr));
        /* retriable whatever the cause: the partition was just fetched from */
        return rerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? VG_ERR_TIMEOUT : VG_ERR_BACKEND;
    }
    return VG_OK;
}

size_t vg_consumer_assigned_count(struct vg_consumer *c)
{
    size_t n;

    pthread_mutex_lock(&c->lock);
    n = (size_t)c->assignment->cnt;
    pthread_mutex_unlock(&c->lock);
    return n;
}
