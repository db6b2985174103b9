/*
 * The consumer thread's batch: decode -> skip what Redis already has ->
 * resolve Resources (one round trip for cache misses) -> apply -> rules ->
 * one MULTI/EXEC with state, history, outbox pages and applied offsets.
 * Kafka offsets are stored by the consumer only after this returns VG_OK,
 * so nothing is lost; the applied offsets in Redis make replays no-ops,
 * so nothing is applied (or paged) twice.
 *
 * Each topic has a format (native, k8s-pod, k8s-event, auto);
 * what cannot be decoded goes to the dead-letter topic unchanged, and the
 * batch only succeeds once the DLQ has acknowledged it (so its offsets
 * never move past an undelivered poison message). Kubernetes Events are
 * mapped to their Resource through the pod links in Redis; late events
 * are recorded in history, marked late, without moving state.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "vigil/event.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/util.h"

/*
 * This instance's claim on a partition (vg_state_partition_claim): its
 * fencing epoch and the applied offset read right after taking it. Every
 * commit that writes for the partition carries the epoch; dropped with
 * the cache (rebalance, failed batch, refused commit) and claimed again on
 * next use.
 */
struct applied {
    char *topic;
    int32_t partition;
    int64_t epoch;     /* P:epoch:{topic/partition} as this claim set it */
    int64_t offset;    /* last applied in Redis; -1 none */
    int64_t batch_max; /* highest offset seen in the current batch; -1 none */
    int64_t high_now;  /* its high watermark as the broker told this claim; -1 not asked */
    char *cluster;     /* Kafka cluster id recorded with the offset in Redis; NULL none */
    char *cluster_new; /* the one to record with the next offset written; NULL: unchanged */
    bool cluster_checked;
    /* offsets started again (reset_from: the applied offset forgotten); logged once committed */
    char reset_why[256];
    int64_t reset_from;
};

/*
 * Message i of the batch in the decode step: a replay (not decoded), or
 * what decoding it gave. Filled by any thread, read in message order.
 */
struct decoded {
    bool replayed;
    bool ahead; /* decoded while the part before was committing (reason, ev, detail set) */
    enum vg_decode_reason reason;
    struct vg_event ev; /* reason OK: owned here until moved to the batch's events */
    char detail[256];
};

/* One poison message of the batch on its way to the dead-letter topic. */
struct dead_letter {
    size_t msg; /* index in the batch */
    enum vg_decode_reason reason;
    char detail[256];
    bool cut;     /* sent again cut to ENG_DLQ_CUT_BYTES */
    bool dropped; /* refused even cut: counted and logged, not in the DLQ */
};

/* A message's partition and place in its batch: sorting these groups a batch by partition. */
struct msg_place {
    const char *topic;
    int32_t partition;
    size_t i;
};

struct eng_pipeline {
    struct vg_state *st;
    /* Inputs and the dead-letter topic (all borrowed; dlq NULL: count and log only) */
    const struct vg_kafka_config *kc;
    const struct vg_decode_config *dc;
    struct vg_producer *dlq;
    struct vg_consumer *consumer; /* asked for a partition's current end (NULL: not asked) */
    int64_t last_skip_log_ms[VG_DECODE__COUNT];
    struct vg_event *state_evs; /* shallow copies of the native/pod events of evs, for resolve */
    size_t cap_state_evs;
    struct vg_history_note *notes;
    size_t cap_notes;
    struct vg_pod_link *links;
    size_t cap_links;
    const struct vg_ruleset *rs;
    const struct vg_health_config *hc;
    struct eng_report *report;
    struct vg_map *applied; /* "topic/partition" -> struct applied* */
    bool need_reconnect;
    char last_error[512]; /* why the last batch failed: the consumer logs it once */
    int64_t last_invalid_log_ms[VG_DECODE__COUNT];
    /* scratch, reused across batches */
    struct vg_event *evs;
    size_t cap_evs;
    struct vg_resource **res;
    size_t cap_res;
    struct vg_resource **dirty;
    size_t cap_dirty;
    struct vg_transition *trans;
    size_t cap_trans;
    struct vg_offset *offsets;
    size_t cap_offsets;
    const char **offset_clusters; /* parallel to offsets */
    size_t cap_offset_clusters;
    struct vg_pages pages;
    void (*idle_fn)(void *arg);
    void *idle_arg;
    /* What rules produced in this batch, and the timers' clock work */
    struct vg_rules_out out;
    struct eng_timers *timers;
    int64_t last_reconnect_mono;
    /* This batch's counts (GET /metrics), made to count only once it commits */
    struct vg_metrics_tally *tally;
    /* the batch's poison messages, their tags' generation, the last "dropped" ERROR line */
    struct dead_letter *dead;
    size_t cap_dead;
    uint64_t dlq_gen;
    int64_t last_dlq_drop_log_ms;
    /* The decode step: its workers, what each message of the batch gave, which ones to decode */
    struct eng_decode_pool *decode_pool;
    struct decoded *decoded;
    size_t cap_decoded;
    /* the slots of decoded the current part uses: decoded itself, or (the partitioned layout,
     * the whole batch decoded ahead) the part's place in it */
    struct decoded *dec;
    size_t *to_decode;
    size_t cap_to_decode;
    /* the batch's fences (one per partition it read), and when each partition's conflict
     * was last logged ("topic/partition" -> int64_t *) */
    struct vg_fence *fences;
    size_t cap_fences;
    struct vg_map *conflict_log_ms;
    /* the replay filter's claims by partition number, for one batch's first topic (mark_replays) */
    struct applied **part_claims;
    size_t cap_part_claims;
    const char *part_claims_topic; /* the topic part_claims is for */
    /* the next part's messages decoded ahead while a commit was in flight (NULL: none) */
    const struct vg_kafka_msg *ahead_msgs;
    size_t ahead_n;
    /* what a message has recently cost to apply, decode to EXEC (us; 0: not measured yet) */
    double part_us_per_msg;
    /* redis.layout partitioned: the batch's messages grouped by partition, Kafka order kept
     * within each (by_partition), and the order that sorts them (scratch) */
    struct vg_kafka_msg *grouped;
    size_t cap_grouped;
    struct msg_place *order;
    size_t cap_order;
};

static void applied_free(void *p)
{
    struct applied *a = p;
    free(a->topic);
    free(a->cluster);
    free(a->cluster_new);
    free(a);
}

static vg_err_t timers_claim(void *arg, const char *topic, int32_t partition, int64_t *epoch,
                             char *errstr, size_t errstr_size);
static void report_conflict(void *arg, const char *topic, int32_t partition, const char *why);

struct eng_pipeline *eng_pipeline_new(struct vg_state *st, const struct vg_ruleset *rs,
                                      const struct vg_health_config *hc, struct eng_report *report)
{
    struct eng_pipeline *pl = vg_calloc(1, sizeof(*pl));
    pl->st = st;
    pl->rs = rs;
    pl->hc = hc;
    pl->report = report;
    pl->applied = vg_map_new();
    pl->timers = eng_timers_new(st, report);
    pl->tally = vg_metrics_tally_new();
    pl->conflict_log_ms = vg_map_new();
    eng_timers_set_fences(
        pl->timers,
        &(struct eng_fences){.arg = pl, .claim = timers_claim, .lost = report_conflict});
    return pl;
}

const struct vg_ruleset *eng_pipeline_set_rules(struct eng_pipeline *pl,
                                                const struct vg_ruleset *rs)
{
    const struct vg_ruleset *old = pl->rs;

    pl->rs = rs;
    return old;
}

void eng_pipeline_destroy(struct eng_pipeline *pl)
{
    if (!pl) {
        return;
    }
    vg_map_destroy(pl->applied, applied_free);
    free(pl->evs);
    free(pl->res);
    free(pl->dirty);
    free(pl->trans);
    free(pl->offsets);
    free(pl->offset_clusters);
    free(pl->state_evs);
    free(pl->notes);
    free(pl->links);
    free(pl->dead);
    free(pl->fences);
    free(pl->part_claims);
    free(pl->grouped);
    free(pl->order);
    vg_map_destroy(pl->conflict_log_ms, free);
    vg_pages_fini(&pl->pages);
    vg_rules_out_fini(&pl->out);
    eng_timers_destroy(pl->timers);
    vg_metrics_tally_destroy(pl->tally);
    eng_decode_pool_stop(pl->decode_pool);
    free(pl->decoded);
    free(pl->to_decode);
    free(pl);
}

void eng_pipeline_set_input(struct eng_pipeline *pl, const struct vg_kafka_config *kc,
                            const struct vg_decode_config *dc, struct vg_producer *dlq,
                            struct vg_consumer *consumer)
{
    int threads = dc ? dc->threads : 0;

    pl->kc = kc;
    pl->dc = dc;
    pl->dlq = dlq;
    pl->consumer = consumer;
    eng_decode_pool_stop(pl->decode_pool);
    pl->decode_pool = eng_decode_pool_start(
        threads == VG_DECODE_THREADS_AUTO ? eng_decode_threads_default() : threads);
    VG_LOG_INFO("consumer", "decode workers: %d beside the pipeline thread (decode.threads)",
                eng_decode_pool_threads(pl->decode_pool));
}

/* Forget everything cached, and every claim: after a failed commit or a reconnect. */
static void forget(struct eng_pipeline *pl)
{
    vg_state_cache_clear(pl->st);
    vg_map_clear(pl->applied, applied_free);
}

/*
 * A rebalance moved `parts`: forget what was cached for them only (their
 * claims, and the Resources lent for one of them since loaded, see
 * vg_state_cache_drop_partitions); the partitions still held keep theirs,
 * so a cooperative rebalance costs the kept ones no HGETALL and no claim.
 * A Resource cached for a kept partition whose events now also come from
 * a new one is read again on that first event (vg_state_resolve). With
 * the eager assignor the revoke names every partition: all is dropped.
 * Revokes and assigns arrive between batches: nothing is dirty.
 */
static void forget_partitions(struct eng_pipeline *pl, const struct vg_partition *parts, size_t n)
{
    const char **topics = vg_calloc(n ? n : 1, sizeof(*topics));
    int32_t *partitions = vg_calloc(n ? n : 1, sizeof(*partitions));
    size_t dropped;

    for (size_t i = 0; i < n; i++) {
        char key[512];
        struct applied *a;

        topics[i] = parts[i].topic;
        partitions[i] = parts[i].partition;
        snprintf(key, sizeof(key), "%s/%d", parts[i].topic, (int)parts[i].partition);
        a = vg_map_remove(pl->applied, key);
        if (a) {
            applied_free(a);
        }
    }
    dropped = vg_state_cache_drop_partitions(pl->st, topics, partitions, n);
    VG_LOG_DEBUG("consumer", "%zu cached resource(s) of %zu moved partition(s) dropped", dropped,
                 n);
    free(topics);
    free(partitions);
}

static void on_assigned(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct eng_pipeline *pl = opaque;

    /* nothing of a partition not held can be cached (revokes drop it): only to be sure */
    forget_partitions(pl, parts, n);
    eng_timers_assigned(pl->timers, parts, n);
    /* consumer/ logs the one INFO summary of the rebalance; each partition only at DEBUG */
    for (size_t i = 0; i < n; i++) {
        VG_LOG_DEBUG("consumer", "assigned topic=%s partition=%d", parts[i].topic,
                     (int)parts[i].partition);
    }
}

static void on_revoked(void *opaque, const struct vg_partition *parts, size_t n)
{
    struct eng_pipeline *pl = opaque;

    forget_partitions(pl, parts, n);
    eng_timers_revoked(pl->timers, parts, n);
    for (size_t i = 0; i < n; i++) {
        VG_LOG_DEBUG("consumer", "revoked topic=%s partition=%d", parts[i].topic,
                     (int)parts[i].partition);
    }
}

/*
 * The claim on a partition, taken on first use: the fencing epoch bumped,
 * then the applied offset and its cluster id read (one round trip).
 */
static vg_err_t get_applied(struct eng_pipeline *pl, const char *topic, int32_t partition,
                            struct applied **out, char *errstr, size_t errstr_size)
{
    char key[512];
    struct applied *a;
    snprintf(key, sizeof(key), "%s/%d", topic, (int)partition);
    a = vg_map_get(pl->applied, key);
    if (!a) {
        int64_t epoch = 0;
        int64_t off = -1;
        char *cluster = NULL;
        vg_err_t err = vg_state_partition_claim(pl->st, topic, partition, &epoch, &off, &cluster,
                                                errstr, errstr_size);
        if (err) {
            return err;
        }
        a = vg_calloc(1, sizeof(*a));
        a->topic = vg_strdup(topic);
        a->partition = partition;
        a->epoch = epoch;
        a->offset = off;
        a->batch_max = -1;
        a->high_now = -1;
        a->cluster = cluster;
        vg_map_put(pl->applied, key, a);
    }
    *out = a;
    return VG_OK;
}

/* Timers commit under the same claims as batches (claimed here first when not yet held). */
static vg_err_t timers_claim(void *arg, const char *topic, int32_t partition, int64_t *epoch,
                             char *errstr, size_t errstr_size)
{
    struct applied *a;
    vg_err_t err = get_applied(arg, topic, partition, &a, errstr, errstr_size);

    *epoch = err == VG_OK ? a->epoch : 0;
    return err;
}

/*
 * A commit was refused because another instance claimed `topic`/`partition`
 * since (this one was dropped from the group, or is about to be): counted,
 * and one WARN per partition at most every CONFLICT_LOG_EVERY_MS. The caller
 * drops the claims (forget) and retries, which claims again and skips what
 * the other instance applied meanwhile.
 */
#define CONFLICT_LOG_EVERY_MS 10000
static void report_conflict(void *arg, const char *topic, int32_t partition, const char *why)
{
    struct eng_pipeline *pl = arg;
    char key[512];
    int64_t now = vg_mono_ms();
    int64_t *last;

    vg_metrics_add(pl->report->metrics, VG_M_COMMIT_CONFLICTS, (const char *const[]){topic}, 1);
    snprintf(key, sizeof(key), "%s/%d", topic, (int)partition);
    last = vg_map_get(pl->conflict_log_ms, key);
    if (!last) {
        last = vg_malloc(sizeof(*last));
        *last = now - CONFLICT_LOG_EVERY_MS;
        vg_map_put(pl->conflict_log_ms, key, last);
    }
    if (now - *last < CONFLICT_LOG_EVERY_MS) {
        return;
    }
    *last = now;
    VG_LOG_WARN("consumer",
                "commit refused topic=%s partition=%d: %s; claiming it again and retrying "
                "(further conflicts on it in the next %d s counted in %s, not logged)",
                topic, (int)partition, why, CONFLICT_LOG_EVERY_MS / 1000, VG_M_COMMIT_CONFLICTS);
}

/*
 * Offsets that started again: the applied offset in Redis belongs to
 * other messages than the ones Kafka now has under these offsets, so
 * skipping "replays" would drop every new event. Two signs: the cluster
 * id recorded with the applied offset is not this cluster's (a fresh
 * cluster, e.g. the embedded one, with Redis kept), or a message at or
 * below the applied offset comes from a partition whose high watermark is
 * at or below it too (the topic was deleted and created again). A normal
 * replay (restart, rebalance, offsets rewound) always has the high
 * watermark above the applied offset, so it stays a no-op. Then the
 * applied offset is forgotten and the commit records the new one.
 *
 * The watermark a message carries is as of this instance's last fetch of
 * the partition (none while it is paused for a retry), older than the
 * applied offset just claimed: another instance (the partition's new
 * owner, or an old one dropped from the group without knowing it) may
 * have applied messages this one has not fetched. So the broker is asked
 * for the partition's current end before offsets count as started again
 * (once per claim); a failed question fails the batch (retried).
 */
static vg_err_t check_offsets_reset(struct eng_pipeline *pl, struct applied *a,
                                    const struct vg_kafka_msg *m, bool *ask_failed, char *errstr,
                                    size_t errstr_size)
{
    char why[200] = "";
    int64_t high = m->high_watermark > a->high_now ? m->high_watermark : a->high_now;

    if (m->cluster_id && !a->cluster_checked) {
        a->cluster_checked = true;
        if (!a->cluster || strcmp(a->cluster, m->cluster_id) != 0) {
            free(a->cluster_new);
            a->cluster_new = vg_strdup(m->cluster_id);
        }
        if (a->cluster && a->offset >= 0 && strcmp(a->cluster, m->cluster_id) != 0) {
            snprintf(why, sizeof(why),
                     "kafka cluster id is now %s, the applied offsets were recorded on %s",
                     m->cluster_id, a->cluster);
        }
    }
    if (!why[0] && a->offset >= 0 && m->offset <= a->offset && high > 0 && high <= a->offset &&
        pl->consumer && a->high_now < 0) {
        vg_err_t err = vg_consumer_high_watermark(pl->consumer, m->topic, m->partition,
                                                  &a->high_now, errstr, errstr_size);

        if (err != VG_OK) {
            a->high_now = -1;
            *ask_failed = true;
            return err;
        }
        high = a->high_now > high ? a->high_now : high;
    }
    if (!why[0] && a->offset >= 0 && m->offset <= a->offset && high > 0 && high <= a->offset) {
        snprintf(why, sizeof(why),
                 "the partition ends at offset %" PRId64 ", at or below the applied offset "
                 "(topic deleted and created again?)",
                 high);
    }
    if (!why[0]) {
        return VG_OK;
    }
    snprintf(a->reset_why, sizeof(a->reset_why), "%s", why);
    a->reset_from = a->offset;
    a->offset = -1;
    a->batch_max = -1;
    return VG_OK;
}

/* After a commit: one WARN line and one count per partition whose offsets started again. */
static void report_offsets_reset(struct eng_pipeline *pl, struct applied *a)
{
    if (!a->reset_why[0]) {
        return;
    }
    VG_LOG_WARN("consumer",
                "offsets started again topic=%s partition=%d applied_offset=%" PRId64
                ": %s; its events are applied again from the start, not skipped as replays",
                a->topic, (int)a->partition, a->reset_from, a->reset_why);
    vg_metrics_add(pl->report->metrics, VG_M_OFFSET_RESETS, (const char *const[]){a->topic}, 1);
    a->reset_why[0] = '\0';
}

static void log_invalid(struct eng_pipeline *pl, const struct vg_kafka_msg *m,
                        enum vg_decode_reason r, const char *detail)
{
    int64_t now = vg_mono_ms();
    /* At most one line per reason per second: a poison flood must not flood the log. */
    if (now - pl->last_invalid_log_ms[r] < 1000) {
        return;
    }
    pl->last_invalid_log_ms[r] = now;
    VG_LOG_WARN("consumer",
                "invalid event topic=%s partition=%d offset=%" PRId64
                " reason=%s: %s (counted; further ones this second not logged)",
                m->topic, (int)m->partition, m->offset, vg_decode_reason_name(r), detail);
}

/* One consumed message of `topic` had `outcome` (counted when the batch commits). */
static void count_event(struct eng_pipeline *pl, const char *topic, const char *outcome,
                        double delta)
{
    vg_metrics_tally_add(pl->tally, VG_M_EVENTS_CONSUMED, (const char *const[]){topic, outcome}, 2,
                         delta);
}

/*
 * Consecutive messages counted alike (same topic string, same outcome) in
 * the decode step: one tally add per run instead of one per message.
 */
struct run_count {
    const char *topic;
    const char *outcome;
    double n;
};

static void run_count_flush(struct eng_pipeline *pl, struct run_count *rc)
{
    if (rc->n != 0) {
        count_event(pl, rc->topic, rc->outcome, rc->n);
    }
    rc->n = 0;
}

static void run_count_add(struct eng_pipeline *pl, struct run_count *rc, const char *topic,
                          const char *outcome)
{
    if (rc->n != 0 && rc->topic == topic && rc->outcome == outcome) {
        rc->n++;
        return;
    }
    run_count_flush(pl, rc);
    rc->topic = topic;
    rc->outcome = outcome;
    rc->n = 1;
}

/* Counted and skipped, never dead-lettered: at most one DEBUG line per reason per second. */
static void log_skipped(struct eng_pipeline *pl, const struct vg_kafka_msg *m,
                        enum vg_decode_reason r, const char *detail)
{
    int64_t now = vg_mono_ms();

    count_event(pl, m->topic, "skipped", 1);
    if (now - pl->last_skip_log_ms[r] < 1000) {
        return;
    }
    pl->last_skip_log_ms[r] = now;
    VG_LOG_DEBUG("consumer", "skipped topic=%s partition=%d offset=%" PRId64 " reason=%s: %s",
                 m->topic, (int)m->partition, m->offset, vg_decode_reason_name(r), detail);
}

/* The tag of the batch's dead letter `i`: this batch's generation, so late reports don't match. */
static uint64_t dead_tag(const struct eng_pipeline *pl, size_t i)
{
    return (pl->dlq_gen << 32) | (uint64_t)(i + 1);
}

/*
 * The message unchanged (payload and key) to the DLQ topic, with headers
 * vigil.error (the reason), vigil.topic, vigil.partition, vigil.offset,
 * vigil.detail; or, when `d->cut`, key and payload cut to their first
 * ENG_DLQ_CUT_BYTES with vigil.truncated and vigil.original_bytes added.
 * Only enqueued here: the batch flushes before it commits. VG_ERR_REJECTED:
 * too large to enqueue.
 */
static vg_err_t send_dead_letter(struct eng_pipeline *pl, const struct vg_kafka_msg *m,
                                 const struct dead_letter *d, uint64_t tag, char *errstr,
                                 size_t errstr_size)
{
    char partition[16];
    char offset[24];
    char original[24];
    const char *reason = vg_decode_reason_name(d->reason);
    const char *truncated = d->cut && m->len > ENG_DLQ_CUT_BYTES ? "true" : "false";
    size_t key_len = m->key_len;
    size_t len = m->len;
    struct vg_kafka_header h[7];

    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, m->offset);
    snprintf(original, sizeof(original), "%zu", m->len);
    h[0] = (struct vg_kafka_header){"vigil.error", reason, strlen(reason)};
    h[1] = (struct vg_kafka_header){"vigil.topic", m->topic, strlen(m->topic)};
    h[2] = (struct vg_kafka_header){"vigil.partition", partition, strlen(partition)};
    h[3] = (struct vg_kafka_header){"vigil.offset", offset, strlen(offset)};
    h[4] = (struct vg_kafka_header){"vigil.detail", d->detail, strlen(d->detail)};
    h[5] = (struct vg_kafka_header){"vigil.truncated", truncated, strlen(truncated)};
    h[6] = (struct vg_kafka_header){"vigil.original_bytes", original, strlen(original)};
    if (d->cut) {
        key_len = key_len > ENG_DLQ_CUT_BYTES ? ENG_DLQ_CUT_BYTES : key_len;
        len = len > ENG_DLQ_CUT_BYTES ? ENG_DLQ_CUT_BYTES : len;
    }
    return vg_producer_send_tagged(pl->dlq, pl->kc->dlq_topic, m->key, key_len, m->payload, len, h,
                                   d->cut ? 7 : 5, tag, errstr, errstr_size);
}

/*
 * Neither whole nor cut would the DLQ take it: the one way left that does
 * not stop the partition for good is to skip it, counted
 * (vigil_dead_letter_failures_total) and logged (ERROR, at most once a
 * second). Counted when the batch commits.
 */
static void drop_dead_letter(struct eng_pipeline *pl, const struct vg_kafka_msg *m,
                             struct dead_letter *d, const char *why_label, const char *why)
{
    int64_t now = vg_mono_ms();

    d->dropped = true;
    vg_metrics_tally_add(pl->tally, VG_M_DLQ_FAILURES, (const char *const[]){why_label}, 1, 1);
    if (now - pl->last_dlq_drop_log_ms < 1000) {
        return;
    }
    pl->last_dlq_drop_log_ms = now;
    VG_LOG_ERROR("consumer",
                 "poison message skipped topic=%s partition=%d offset=%" PRId64
                 " reason=%s bytes=%zu: dead-letter topic %s refused it whole and cut to %d "
                 "bytes: %s (counted in %s; further ones this second not logged)",
                 m->topic, (int)m->partition, m->offset, vg_decode_reason_name(d->reason), m->len,
                 pl->kc->dlq_topic, ENG_DLQ_CUT_BYTES, why, VG_M_DLQ_FAILURES);
}

/*
 * Enqueue dead letter `i` of the batch: whole, or cut when too large to
 * enqueue whole, or dropped when even that is refused. VG_OK also when
 * dropped; other errors fail the batch (retried).
 */
static vg_err_t dead_letter(struct eng_pipeline *pl, const struct vg_kafka_msg *msgs, size_t i,
                            char *errstr, size_t errstr_size)
{
    struct dead_letter *d = &pl->dead[i];
    const struct vg_kafka_msg *m = &msgs[d->msg];
    vg_err_t err = send_dead_letter(pl, m, d, dead_tag(pl, i), errstr, errstr_size);

    if (err == VG_ERR_REJECTED && !d->cut) {
        d->cut = true;
        err = send_dead_letter(pl, m, d, dead_tag(pl, i), errstr, errstr_size);
    }
    if (err == VG_ERR_REJECTED) {
        drop_dead_letter(pl, m, d, "too_large", errstr);
        err = VG_OK;
    }
    return err;
}

/*
 * Wait until the DLQ acknowledged the batch's `n` dead letters. What the
 * broker refused for the message itself (too large for the topic) is sent
 * once more cut, then dropped if refused again; any other failure
 * (broker down, timeout) fails the batch, retried as a whole (duplicates
 * in the DLQ are possible, loss is not). *n_dropped: how many were dropped.
 */
static vg_err_t flush_dead_letters(struct eng_pipeline *pl, const struct vg_kafka_msg *msgs,
                                   size_t n, size_t *n_dropped, char *errstr, size_t errstr_size)
{
    for (int round = 0; round < 2; round++) {
        struct vg_producer_refusal *refused = NULL;
        size_t n_refused = 0;
        size_t n_again = 0;
        vg_err_t err = vg_producer_flush_refused(pl->dlq, ENG_DLQ_FLUSH_MS, &refused, &n_refused,
                                                 errstr, errstr_size);

        if (err) {
            return err;
        }
        for (size_t k = 0; k < n_refused; k++) {
            size_t i = (size_t)(refused[k].tag & 0xffffffffu) - 1;
            struct dead_letter *d;

            if (refused[k].tag >> 32 != (pl->dlq_gen & 0xffffffffu) || i >= n) {
                continue; /* an earlier try of this batch: this try sent it again */
            }
            d = &pl->dead[i];
            if (d->cut || d->dropped) {
                char why[128];
                snprintf(why, sizeof(why), "broker: %s", refused[k].error);
                if (!d->dropped) {
                    drop_dead_letter(pl, &msgs[d->msg], d, refused[k].reason, why);
                }
                continue;
            }
            d->cut = true;
            err = send_dead_letter(pl, &msgs[d->msg], d, dead_tag(pl, i), errstr, errstr_size);
            if (err == VG_ERR_REJECTED) {
                drop_dead_letter(pl, &msgs[d->msg], d, "too_large", errstr);
                err = VG_OK;
            } else if (err == VG_OK) {
                n_again++;
            }
            if (err) {
                free(refused);
                return err;
            }
        }
        free(refused);
        if (n_again == 0) {
            break;
        }
    }
    *n_dropped = 0;
    for (size_t i = 0; i < n; i++) {
        *n_dropped += pl->dead[i].dropped ? 1 : 0;
    }
    return VG_OK;
}

/*
 * Give each Kubernetes Event without the pod's labels the Resource of its
 * pod: from a pod event earlier in this batch, else from the pod links in
 * Redis (one round trip). An Event for a pod never seen is skipped
 * (ev->id stays NULL).
 */
static vg_err_t map_k8s_events(struct eng_pipeline *pl, size_t from, size_t n_evs, char *errstr,
                               size_t errstr_size)
{
    struct vg_map *batch_links = vg_map_new();
    const char **ns = NULL;
    const char **pods = NULL;
    size_t *which = NULL;
    char **ids = NULL;
    size_t n = 0;
    size_t cap_ns = 0;
    size_t cap_pods = 0;
    size_t cap_which = 0;
    vg_err_t err = VG_OK;

    for (size_t i = from; i < n_evs; i++) {
        struct vg_event *ev = &pl->evs[i];
        const char *id;
        char *k;

        if (ev->kind == VG_EVENT_POD) {
            k = vg_asprintf("%s/%s", ev->pod->ns, ev->pod->name);
            vg_map_put(batch_links, k, ev->id);
            free(k);
            continue;
        }
        if (ev->kind != VG_EVENT_K8S_EVENT || ev->id) {
            continue;
        }
        k = vg_asprintf("%s/%s", ev->log_ns, ev->log_pod);
        id = vg_map_get(batch_links, k);
        free(k);
        if (id) {
            vg_event_set_identity(ev, id);
            continue;
        }
        vg_array_grow((void **)&ns, &cap_ns, n + 1, sizeof(*ns));
        vg_array_grow((void **)&pods, &cap_pods, n + 1, sizeof(*pods));
        vg_array_grow((void **)&which, &cap_which, n + 1, sizeof(*which));
        ns[n] = ev->log_ns;
        pods[n] = ev->log_pod;
        which[n] = i;
        n++;
    }
    if (n > 0) {
        ids = vg_calloc(n, sizeof(*ids));
        err = vg_state_pod_lookup(pl->st, ns, pods, n, ids, errstr, errstr_size);
        for (size_t j = 0; err == VG_OK && j < n; j++) {
            if (ids[j] && !vg_event_set_identity(&pl->evs[which[j]], ids[j])) {
                VG_LOG_WARN("state", "pod %s/%s: unreadable resource link \"%s\"", ns[j], pods[j],
                            ids[j]);
            }
            free(ids[j]);
        }
    }
    free(ids);
    free(ns);
    free(pods);
    free(which);
    vg_map_destroy(batch_links, NULL);
    return err;
}

static void reset_batch(struct eng_pipeline *pl, size_t n_evs)
{
    for (size_t i = 0; i < n_evs; i++) {
        vg_event_fini(&pl->evs[i]);
    }
    vg_pages_clear(&pl->pages);
    vg_rules_out_clear(&pl->out);
}

/* Distinct (field, to) pairs of a batch's transitions counted on the stack first. */
#define TRANS_KINDS_MAX 32

/*
 * The batch's transitions into the tally: counted per (field, to) here,
 * then one tally entry each (the tally finds its entry by comparing every
 * label: ~300 instructions an add, and a batch has a few kinds of
 * transition, thousands of times).
 */
static void tally_transitions(struct eng_pipeline *pl, size_t n_trans)
{
    struct {
        enum vg_field field;
        const char *to;
        double n;
    } kinds[TRANS_KINDS_MAX];
    size_t n_kinds = 0;
    size_t last = 0;

    for (size_t i = 0; i < n_trans; i++) {
        const struct vg_transition *t = &pl->trans[i];
        size_t k = last;

        if (k >= n_kinds || kinds[k].field != t->field || strcmp(kinds[k].to, t->to) != 0) {
            for (k = 0; k < n_kinds; k++) {
                if (kinds[k].field == t->field && strcmp(kinds[k].to, t->to) == 0) {
                    break;
                }
            }
        }
        if (k == n_kinds) {
            if (n_kinds == TRANS_KINDS_MAX) {
                vg_metrics_tally_add(pl->tally, VG_M_TRANSITIONS,
                                     (const char *const[]){vg_field_name(t->field), t->to}, 2, 1);
                continue;
            }
            kinds[n_kinds].field = t->field;
            kinds[n_kinds].to = t->to;
            kinds[n_kinds].n = 0;
            n_kinds++;
        }
        kinds[k].n++;
        last = k;
    }
    for (size_t k = 0; k < n_kinds; k++) {
        vg_metrics_tally_add(pl->tally, VG_M_TRANSITIONS,
                             (const char *const[]){vg_field_name(kinds[k].field), kinds[k].to}, 2,
                             kinds[k].n);
    }
}

/*
 * After a commit, what it changed counts (metrics) and is shown
 * (the event stream of the API): transitions, incident changes, latency.
 */
static void after_commit(struct eng_pipeline *pl, size_t n_trans, double t0)
{
    tally_transitions(pl, n_trans);
    vg_metrics_tally_flush(pl->tally, pl->report->metrics);
    vg_metrics_observe(pl->report->metrics, VG_M_BATCH_SECONDS, NULL, vg_metrics_now_s() - t0);
    vg_api_publish_transitions(pl->report->api, pl->trans, n_trans);
    vg_api_publish_incidents(pl->report->api, pl->out.records.items, pl->out.records.n);
}

/*
 * A batch failed on Redis, often on a connection that an earlier call
 * (a swallowed silences refresh) found dead: "not connected" says nothing.
 * Reconnect once now, so that the consumer's pause WARN names why Redis
 * cannot be reached (hiredis's reason and the redacted URL).
 */
static void recheck_redis(struct eng_pipeline *pl, const char *batch_err)
{
    char errstr[512];

    if (vg_state_reconnect(pl->st, errstr, sizeof(errstr)) != VG_OK) {
        snprintf(pl->last_error, sizeof(pl->last_error), "%s", errstr);
        return;
    }
    pl->need_reconnect = false;
    vg_metrics_add(pl->report->metrics, VG_M_REDIS_RECONNECTS, (const char *const[]){"pipeline"},
                   1);
    snprintf(pl->last_error, sizeof(pl->last_error), "%.490s (reconnected)", batch_err);
}

/* One batch in progress: what each step produced so far. */
struct batch_run {
    const struct vg_kafka_msg *msgs;
    size_t n;
    size_t n_evs; /* decoded events in pl->evs */
    size_t n_trans;
    size_t n_dirty;
    size_t n_offsets;
    size_t n_notes;
    size_t n_links;
    size_t n_dlq;     /* poison messages handed to the DLQ producer */
    size_t n_dropped; /* of them, refused even cut short (counted, skipped) */
    bool dlq_failed;  /* the failure is Kafka's (the DLQ), not Redis's */
    bool ask_failed;  /* the failure is Kafka's (asked for a watermark), not Redis's */
    size_t n_fences;
    size_t fence_lost; /* VG_ERR_CONFLICT: the index in pl->fences of the partition taken */
    /*
     * A part whose commit goes in flight with the batch's other parts (batch_in_flight):
     * the batch's arrays (events, transitions, dirty Resources, notes, pod links, offsets,
     * fences, and rules' pages, timers and records) accumulate over its parts, and this
     * part's share of each starts at from_*. Zero otherwise.
     */
    bool in_flight;
    size_t from_evs;
    size_t from_trans;
    size_t from_dirty;
    size_t from_offsets;
    size_t from_notes;
    size_t from_links;
    size_t from_fences;
    size_t from_pages;
    size_t from_timers;
    size_t from_records;
    double t0;
    int64_t start_ms; /* wall clock at its start: Kafka timestamps are wall clock */
    /* a part of a larger batch (kafka.batch_commit_ms): its number from 1 and the whole's size */
    size_t part;
    size_t whole;
    /* when each step ended (vg_metrics_now_s), for the per-batch DEBUG line */
    double t_decoded;
    double t_resolved;
    double t_applied;
    double t_committed;
    double ahead_s;                 /* of the commit's time, decoding the next part ahead */
    const struct vg_rules_env *env; /* the rules' environment (rules_env) */
    bool nothing_sent;              /* the part changed nothing: no commit */
    char errstr[512];
};

/* Redis was lost by an earlier batch: reconnect before anything else. */
static vg_err_t reconnect_if_needed(struct eng_pipeline *pl)
{
    char errstr[512];

    if (!pl->need_reconnect) {
        return VG_OK;
    }
    if (vg_state_reconnect(pl->st, errstr, sizeof(errstr)) != VG_OK) {
        /* the consumer's pause WARN names this (hiredis's reason, the redacted URL) */
        snprintf(pl->last_error, sizeof(pl->last_error), "%s", errstr);
        VG_LOG_DEBUG("state", "reconnect failed: %s", errstr);
        return VG_ERR_BACKEND;
    }
    pl->need_reconnect = false;
    VG_LOG_INFO("state", "redis reachable again");
    vg_metrics_add(pl->report->metrics, VG_M_REDIS_RECONNECTS, (const char *const[]){"pipeline"},
                   1);
    return VG_OK;
}

/* Scratch arrays sized for `n` messages (kept across batches). */
static void grow_scratch(struct eng_pipeline *pl, size_t n)
{
    vg_array_grow((void **)&pl->evs, &pl->cap_evs, n, sizeof(*pl->evs));
    vg_array_grow((void **)&pl->res, &pl->cap_res, n, sizeof(*pl->res));
    vg_array_grow((void **)&pl->trans, &pl->cap_trans, n * 3, sizeof(*pl->trans));
    vg_array_grow((void **)&pl->state_evs, &pl->cap_state_evs, n, sizeof(*pl->state_evs));
    vg_array_grow((void **)&pl->notes, &pl->cap_notes, n * 2, sizeof(*pl->notes));
    vg_array_grow((void **)&pl->links, &pl->cap_links, n, sizeof(*pl->links));
}

/*
 * Decode message `m` into `ev`; the reason it was refused otherwise. Any
 * thread: reads only the pipeline's input config.
 */
static enum vg_decode_reason decode_one(struct eng_pipeline *pl, const struct vg_kafka_msg *m,
                                        struct vg_event *ev, char *detail, size_t detail_size)
{
    enum vg_decode_reason r;

    r = vg_event_decode_ex(
        ev, pl->dc, pl->kc ? vg_config_topic_format(pl->kc, m->topic) : VG_FORMAT_AUTO, m->payload,
        m->payload ? m->len : 0, m->timestamp_ms, detail, detail_size);
    if (r == VG_DECODE_OK) {
        /* an event from the future would make every later one late: dead-letter it */
        r = vg_event_check_time(ev, pl->dc, vg_now_ms(), detail, detail_size);
        if (r != VG_DECODE_OK) {
            vg_event_fini(ev);
        }
    }
    return r;
}

/* Count, log and (with a DLQ) dead-letter message i, refused for `r`. */
static vg_err_t refuse(struct eng_pipeline *pl, struct batch_run *b, size_t i,
                       enum vg_decode_reason r, const char *detail)
{
    const struct vg_kafka_msg *m = &b->msgs[i];
    struct dead_letter *d;
    vg_err_t err;

    vg_metrics_tally_add(pl->tally, VG_M_DECODE_ERRORS,
                         (const char *const[]){vg_decode_reason_name(r)}, 1, 1);
    count_event(pl, m->topic, "invalid", 1);
    log_invalid(pl, m, r, detail);
    if (!pl->dlq) {
        return VG_OK;
    }
    d = VG_ARRAY_PUSH(pl->dead, b->n_dlq, pl->cap_dead);
    *d = (struct dead_letter){.msg = i, .reason = r};
    snprintf(d->detail, sizeof(d->detail), "%s", detail);
    err = dead_letter(pl, b->msgs, b->n_dlq - 1, b->errstr, sizeof(b->errstr));
    if (err) {
        b->dlq_failed = true;
    }
    return err;
}

/* A batch's decoding, handed to the workers: message to_decode[k] into its slot. */
struct decode_job {
    struct eng_pipeline *pl;
    const struct vg_kafka_msg *msgs;
    struct decoded *slots; /* slots[i] for msgs[i] */
};

static void decode_job_run(void *arg, size_t k)
{
    struct decode_job *job = arg;
    size_t i = job->pl->to_decode[k];
    struct decoded *d = &job->slots[i];

    d->reason = decode_one(job->pl, &job->msgs[i], &d->ev, d->detail, sizeof(d->detail));
}

/* Partitions numbered below this are looked up by number in the replay filter. */
#define PART_CLAIMS_MAX 65536

/*
 * Step 1a, in message order: the replay filter. Every message not yet
 * applied (above the applied offset) is marked to be decoded. The claim
 * of each partition is looked up by its number (for the batch's first
 * topic; others through get_applied's map): no key formatted or hashed
 * per message. The table lives for this step only, while no claim is
 * dropped.
 */
static vg_err_t mark_replays(struct eng_pipeline *pl, struct batch_run *b, size_t *n_to_decode)
{
    const char *topic = b->n > 0 ? b->msgs[0].topic : NULL;
    vg_err_t err;

    *n_to_decode = 0;
    pl->part_claims_topic = topic;
    if (pl->cap_part_claims > 0) {
        memset(pl->part_claims, 0, pl->cap_part_claims * sizeof(*pl->part_claims));
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct vg_kafka_msg *m = &b->msgs[i];
        bool by_number = m->partition >= 0 && m->partition < PART_CLAIMS_MAX &&
                         (m->topic == topic || strcmp(m->topic, topic) == 0);
        struct applied *a = NULL;

        if (by_number && (size_t)m->partition < pl->cap_part_claims) {
            a = pl->part_claims[m->partition];
        }
        if (!a) {
            err = get_applied(pl, m->topic, m->partition, &a, b->errstr, sizeof(b->errstr));
            if (err) {
                return err;
            }
            if (by_number) {
                /* grown zeroed */
                vg_array_grow((void **)&pl->part_claims, &pl->cap_part_claims,
                              (size_t)m->partition + 1, sizeof(*pl->part_claims));
                pl->part_claims[m->partition] = a;
            }
        }
        err = check_offsets_reset(pl, a, m, &b->ask_failed, b->errstr, sizeof(b->errstr));
        if (err) {
            return err;
        }
        if (m->offset > a->batch_max) {
            a->batch_max = m->offset;
        }
        pl->dec[i].replayed = m->offset <= a->offset;
        if (!pl->dec[i].replayed) {
            pl->to_decode[(*n_to_decode)++] = i;
        }
    }
    return VG_OK;
}

/* The decoded events of messages [from, n) that step 1c did not take (it stopped early). */
static void drop_decoded(struct eng_pipeline *pl, struct batch_run *b, size_t from)
{
    for (size_t i = from; i < b->n; i++) {
        struct decoded *d = &pl->dec[i];

        if (!d->replayed && d->reason == VG_DECODE_OK) {
            vg_event_fini(&d->ev);
        }
    }
}

/*
 * The next part's messages decoded while this part's commit is in flight
 * (kafka.batch_overlap_parts): decoding is pure (no state, no Redis), so
 * it runs while Redis executes and fsyncs the commit. Messages known to
 * be replays (at or below the applied offset before this part) are not
 * decoded; the replay filter of the next part runs after this part's
 * reply, on the applied offsets as they are then, and uses these decodes
 * for the messages it keeps.
 */
static void decode_ahead(struct eng_pipeline *pl, const struct vg_kafka_msg *msgs, size_t n)
{
    struct decode_job job = {.pl = pl, .msgs = msgs};
    size_t n_ahead = 0;

    VG_ASSERT(pl->ahead_msgs == NULL);
    vg_array_grow((void **)&pl->decoded, &pl->cap_decoded, n, sizeof(*pl->decoded));
    vg_array_grow((void **)&pl->to_decode, &pl->cap_to_decode, n, sizeof(*pl->to_decode));
    job.slots = pl->decoded;
    for (size_t i = 0; i < n; i++) {
        const struct vg_kafka_msg *m = &msgs[i];
        const struct applied *a = NULL;

        pl->decoded[i].ahead = false;
        if (pl->part_claims_topic && m->partition >= 0 &&
            (size_t)m->partition < pl->cap_part_claims &&
            (m->topic == pl->part_claims_topic || strcmp(m->topic, pl->part_claims_topic) == 0)) {
            a = pl->part_claims[m->partition];
        }
        if (a && m->offset <= a->offset) {
            continue; /* a replay */
        }
        pl->to_decode[n_ahead++] = i;
    }
    eng_decode_pool_run(n_ahead >= ENG_DECODE_PARALLEL_MIN ? pl->decode_pool : NULL, decode_job_run,
                        &job, n_ahead);
    for (size_t k = 0; k < n_ahead; k++) {
        pl->decoded[pl->to_decode[k]].ahead = true;
    }
    pl->ahead_msgs = msgs;
    pl->ahead_n = n;
}

/* What was decoded ahead and not taken: freed (a failed part, or a cut that changed). */
static void drop_ahead(struct eng_pipeline *pl)
{
    if (!pl->ahead_msgs) {
        return;
    }
    for (size_t i = 0; i < pl->ahead_n; i++) {
        struct decoded *d = &pl->decoded[i];

        if (d->ahead && d->reason == VG_DECODE_OK) {
            vg_event_fini(&d->ev);
        }
        d->ahead = false;
    }
    pl->ahead_msgs = NULL;
    pl->ahead_n = 0;
}

/*
 * After the replay filter: of the `n_to_decode` messages it kept, those
 * decoded ahead are done; returns how many are left to decode (to_decode
 * cut to them). A message decoded ahead that the filter found a replay
 * has its event freed.
 */
static size_t take_ahead(struct eng_pipeline *pl, struct batch_run *b, size_t n_to_decode)
{
    size_t left = 0;

    for (size_t k = 0; k < n_to_decode; k++) {
        size_t i = pl->to_decode[k];

        if (pl->dec[i].ahead) {
            pl->dec[i].ahead = false; /* taken: the steps below own it */
        } else {
            pl->to_decode[left++] = i;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        struct decoded *d = &pl->dec[i];

        if (d->ahead && d->replayed && d->reason == VG_DECODE_OK) {
            vg_event_fini(&d->ev);
        }
        d->ahead = false;
    }
    if (b->msgs + b->n == pl->ahead_msgs + pl->ahead_n) {
        /* the last part of what was decoded ahead (the later slots of a whole batch stay) */
        pl->ahead_msgs = NULL;
        pl->ahead_n = 0;
    }
    return left;
}

/*
 * Step 1: decode every message not yet applied (at or below the applied
 * offset: a replay, skipped), refuse what cannot be decoded, and the DLQ
 * has every poison message of this batch before anything commits: a
 * failed produce fails the batch (retried; duplicates in the DLQ are
 * possible, loss is not). Decoding is independent per message, so it runs
 * on the workers (with ENG_DECODE_PARALLEL_MIN messages or more); the
 * filter before it and the counting, skipping and dead-lettering after it
 * run on this thread in message order, so the outcome is the same
 * whatever the number of threads.
 */
static vg_err_t decode_batch(struct eng_pipeline *pl, struct batch_run *b)
{
    struct decode_job job = {.pl = pl, .msgs = b->msgs};
    struct run_count run = {0};
    /* decoded ahead: this cut (batch_overlap_parts), or a whole batch this part is in */
    bool covered = pl->ahead_msgs && (uintptr_t)b->msgs >= (uintptr_t)pl->ahead_msgs &&
                   (uintptr_t)(b->msgs + b->n) <= (uintptr_t)(pl->ahead_msgs + pl->ahead_n);
    size_t n_to_decode;
    vg_err_t err;

    if (!covered) {
        drop_ahead(pl); /* decoded ahead for another cut of the messages: not used */
    }
    vg_array_grow((void **)&pl->decoded, &pl->cap_decoded, covered ? pl->ahead_n : b->n,
                  sizeof(*pl->decoded));
    vg_array_grow((void **)&pl->to_decode, &pl->cap_to_decode, b->n, sizeof(*pl->to_decode));
    pl->dec = covered ? pl->decoded + (b->msgs - pl->ahead_msgs) : pl->decoded;
    job.slots = pl->dec;
    err = mark_replays(pl, b, &n_to_decode);
    if (err) {
        drop_ahead(pl);
        return err;
    }
    if (covered) {
        n_to_decode = take_ahead(pl, b, n_to_decode);
    }
    eng_decode_pool_run(n_to_decode >= ENG_DECODE_PARALLEL_MIN ? pl->decode_pool : NULL,
                        decode_job_run, &job, n_to_decode);
    for (size_t i = 0; i < b->n; i++) {
        const struct vg_kafka_msg *m = &b->msgs[i];
        struct decoded *d = &pl->dec[i];
        struct vg_event *ev;

        if (d->replayed) {
            run_count_add(pl, &run, m->topic, "replayed");
            continue;
        }
        if (vg_decode_reason_is_skip(d->reason)) {
            run_count_flush(pl, &run); /* counted in message order */
            log_skipped(pl, m, d->reason, d->detail);
            continue;
        }
        if (d->reason != VG_DECODE_OK) {
            run_count_flush(pl, &run);
            err = refuse(pl, b, i, d->reason, d->detail);
            if (err) {
                drop_decoded(pl, b, i + 1);
                return err;
            }
            continue;
        }
        ev = &pl->evs[b->n_evs];
        *ev = d->ev; /* moved: the batch's events own it now */
        ev->pos.topic = vg_strdup(m->topic);
        ev->pos.partition = m->partition;
        ev->pos.offset = m->offset;
        run_count_add(pl, &run, m->topic, "applied");
        b->n_evs++;
    }
    run_count_flush(pl, &run);
    if (b->n_dlq > 0) {
        err =
            flush_dead_letters(pl, b->msgs, b->n_dlq, &b->n_dropped, b->errstr, sizeof(b->errstr));
        if (err) {
            b->dlq_failed = true;
            return VG_ERR_BACKEND;
        }
    }
    return VG_OK;
}

/* Step 2: the current state of every Resource: cache, or one pipelined round trip for misses. */
static vg_err_t resolve_batch(struct eng_pipeline *pl, struct batch_run *b)
{
    size_t n_state = 0;

    for (size_t i = b->from_evs; i < b->n_evs; i++) {
        if (pl->evs[i].kind != VG_EVENT_K8S_EVENT) {
            pl->state_evs[n_state++] = pl->evs[i]; /* shallow: resolve reads the identity */
        }
    }
    if (n_state == 0) {
        return VG_OK;
    }
    return vg_state_resolve(pl->st, pl->state_evs, n_state, pl->res, b->errstr, sizeof(b->errstr));
}

/* A Kubernetes Event: a history line of its Resource (or skipped when its pod is unknown). */
static void note_k8s_event(struct eng_pipeline *pl, struct batch_run *b, const struct vg_event *ev)
{
    if (!ev->id) {
        struct vg_kafka_msg m = {
            .topic = ev->pos.topic, .partition = ev->pos.partition, .offset = ev->pos.offset};

        count_event(pl, ev->pos.topic, "applied", -1); /* log_skipped counts it */
        log_skipped(pl, &m, VG_DECODE_SKIP_UNKNOWN_POD, "no pod link in redis");
        return;
    }
    pl->notes[b->n_notes++] =
        (struct vg_history_note){.id = ev->id,
                                 .ev = ev,
                                 .before_trans = b->n_trans - b->from_trans, /* in the part's */
                                 .late = false};
}

/* An event older than the state: recorded in history, marked late, state unchanged. */
static void note_late(struct eng_pipeline *pl, struct batch_run *b, const struct vg_resource *res,
                      const struct vg_event *ev)
{
    enum vg_field fields[2];
    char values[2][VG_VALUE_MAX];
    char reason[VG_REASON_MAX];
    size_t nv = vg_event_late_values(ev, fields, values, reason);

    count_event(pl, ev->pos.topic, "applied", -1);
    count_event(pl, ev->pos.topic, "late", 1);
    for (size_t k = 0; k < nv; k++) {
        struct vg_history_note *note = &pl->notes[b->n_notes++];

        *note = (struct vg_history_note){.id = res->id,
                                         .ev = ev,
                                         .before_trans = b->n_trans - b->from_trans,
                                         .late = true,
                                         .field = fields[k]};
        snprintf(note->from, sizeof(note->from), "%s",
                 fields[k] == VG_FIELD_STATUS ? res->status : res->runtime);
        snprintf(note->to, sizeof(note->to), "%s", values[k]);
        snprintf(note->reason, sizeof(note->reason), "%s", reason);
    }
}

/* Step 3: apply in order, and evaluate the rules on each applied event and its transitions. */
static void apply_batch(struct eng_pipeline *pl, struct batch_run *b)
{
    const struct vg_rules_env *env = b->env;

    for (size_t i = b->from_evs, j = 0; i < b->n_evs; i++) {
        const struct vg_event *ev = &pl->evs[i];
        struct vg_resource *res;
        bool was_dirty;
        size_t nt;

        if (ev->kind == VG_EVENT_K8S_EVENT) {
            note_k8s_event(pl, b, ev);
            continue;
        }
        res = pl->res[j++];
        was_dirty = res->dirty;
        if (ev->kind == VG_EVENT_POD) {
            pl->links[b->n_links++] = (struct vg_pod_link){
                .ns = ev->pod->ns, .pod = ev->pod->name, .id = res->id, .deleted = ev->pod_deleted};
        }
        if (vg_resource_is_late(res, ev)) {
            note_late(pl, b, res, ev);
            continue;
        }
        nt = vg_resource_apply(pl->hc, res, ev, &pl->trans[b->n_trans]);
        vg_resource_set_labels(res, ev); /* rules match them as labels.<key> */
        /* every applied event, not only changes: absence and staleness watch them */
        vg_rules_eval_event(pl->rs, env, res, ev, &pl->trans[b->n_trans], nt, &pl->out);
        b->n_trans += nt;
        if (res->dirty && !was_dirty) {
            *VG_ARRAY_PUSH(pl->dirty, b->n_dirty, pl->cap_dirty) = res;
        }
    }
}

/*
 * Whether claim `a` is of the part's partition, for a part in flight: the
 * claims of the batch's earlier parts still show their moves (batch_max
 * above the offset) until the whole batch is committed, and are theirs.
 */
static bool claim_of_part(const struct batch_run *b, const struct applied *a)
{
    const struct vg_kafka_msg *m = &b->msgs[0];

    return !b->in_flight || (a->partition == m->partition &&
                             (a->topic == m->topic || strcmp(a->topic, m->topic) == 0));
}

/* Step 4: the applied offset of every partition the batch (the part in flight) moved. */
static void collect_offsets(struct eng_pipeline *pl, struct batch_run *b)
{
    size_t iter = 0;
    const char *key;
    void *val;

    while (vg_map_next(pl->applied, &iter, &key, &val)) {
        struct applied *a = val;
        struct vg_offset *o;

        if (a->batch_max <= a->offset || !claim_of_part(b, a)) {
            continue;
        }
        vg_array_grow((void **)&pl->offset_clusters, &pl->cap_offset_clusters, b->n_offsets + 1,
                      sizeof(*pl->offset_clusters));
        pl->offset_clusters[b->n_offsets] = a->cluster_new;
        o = VG_ARRAY_PUSH(pl->offsets, b->n_offsets, pl->cap_offsets);
        o->topic = a->topic;
        o->partition = a->partition;
        o->offset = a->batch_max;
    }
}

/*
 * The claims of every partition the batch read: its writes land only if no
 * other instance claimed one of them since (docs/state.md "Fencing").
 */
static void collect_fences(struct eng_pipeline *pl, struct batch_run *b)
{
    size_t iter = 0;
    const char *key;
    void *val;

    while (vg_map_next(pl->applied, &iter, &key, &val)) {
        const struct applied *a = val;

        if (a->batch_max < 0 || !claim_of_part(b, a)) {
            continue; /* claimed earlier, no message of it in this batch (or part) */
        }
        *VG_ARRAY_PUSH(pl->fences, b->n_fences, pl->cap_fences) =
            (struct vg_fence){.topic = a->topic, .partition = a->partition, .epoch = a->epoch};
    }
}

/*
 * Step 5: one atomic write of everything (nothing at all when the batch
 * changed nothing), written into `c` and sent; its replies are read by
 * vg_state_commit_finish (commit_finish).
 */
static vg_err_t commit_send(struct eng_pipeline *pl, struct batch_run *b, struct vg_commit *c,
                            size_t *fence_lost)
{
    /* the part's share of each array (all of it unless in flight) */
    *c = (struct vg_commit){
        .res = pl->dirty + b->from_dirty,
        .n_res = b->n_dirty - b->from_dirty,
        .trans = pl->trans + b->from_trans,
        .n_trans = b->n_trans - b->from_trans,
        .pages = pl->out.pages.items + b->from_pages,
        .n_pages = pl->out.pages.n - b->from_pages,
        .offsets = pl->offsets + b->from_offsets,
        .n_offsets = b->n_offsets - b->from_offsets,
        .offset_clusters = pl->offset_clusters + b->from_offsets,
        .notes = pl->notes + b->from_notes,
        .n_notes = b->n_notes - b->from_notes,
        .pod_links = pl->links + b->from_links,
        .n_pod_links = b->n_links - b->from_links,
        .timers = pl->out.timers.items + b->from_timers,
        .n_timers = pl->out.timers.n - b->from_timers,
        .incidents = pl->out.records.items + b->from_records,
        .n_incidents = pl->out.records.n - b->from_records,
        .fence_lost = fence_lost,
    };

    if (c->n_res == 0 && c->n_offsets == 0 && c->n_notes == 0 && c->n_pod_links == 0 &&
        c->n_pages == 0 && c->n_timers == 0 && c->n_incidents == 0) {
        b->nothing_sent = true;
        return VG_OK;
    }
    collect_fences(pl, b);
    c->fences = pl->fences + b->from_fences;
    c->n_fences = b->n_fences - b->from_fences;
    return vg_state_commit_send(pl->st, c, b->errstr, sizeof(b->errstr));
}

static vg_err_t commit_finish(struct eng_pipeline *pl, struct batch_run *b)
{
    if (b->nothing_sent) {
        return VG_OK;
    }
    return vg_state_commit_finish(pl->st, b->errstr, sizeof(b->errstr));
}

/*
 * Fire due timers. Redis trouble: reconnect first next time. A timer commit
 * refused by a fence (reported by report_conflict): drop the claims, the
 * next round claims again.
 */
static void run_timers(struct eng_pipeline *pl)
{
    vg_err_t err = eng_timers_run(pl->timers, pl->rs, false);

    if (err == VG_ERR_CONFLICT) {
        forget(pl);
    } else if (vg_err_is_retriable(err)) {
        pl->need_reconnect = true;
    }
}

/* Step 6: Redis has it: the applied offsets move, and it counts. */
static void batch_committed(struct eng_pipeline *pl, struct batch_run *b)
{
    size_t iter = 0;
    const char *key;
    void *val;

    while (vg_map_next(pl->applied, &iter, &key, &val)) {
        struct applied *a = val;

        if (a->batch_max > a->offset) {
            a->offset = a->batch_max;
            if (a->cluster_new) {
                free(a->cluster);
                a->cluster = a->cluster_new;
                a->cluster_new = NULL;
            }
        }
        a->batch_max = -1;
        report_offsets_reset(pl, a);
    }
    vg_metrics_tally_add(pl->tally, VG_M_DLQ_PRODUCED, NULL, 0, (double)(b->n_dlq - b->n_dropped));
    vg_metrics_tally_add(pl->tally, VG_M_NOTIFICATIONS_QUEUED, NULL, 0, (double)pl->out.pages.n);
    after_commit(pl, b->n_trans, b->t0);
    eng_log_pages(&pl->out.pages);
    eng_report_pages_queued(pl->report, pl->out.pages.n);
    reset_batch(pl, b->n_evs);
    /* timers due now (a failure here does not undo the batch: retried when idle) */
    run_timers(pl);
    /* nothing holds a Resource pointer now: keep the cache within redis.cache_resources */
    {
        size_t dropped = vg_state_cache_trim(pl->st);

        if (dropped > 0) {
            vg_metrics_add(pl->report->metrics, VG_M_CACHE_EVICTIONS, NULL, (double)dropped);
        }
    }
}

/*
 * The batch failed: nothing of it counts as applied. The cache holds state
 * Redis may not have, and an EXEC whose reply was lost may have applied
 * after all, so both caches are dropped and reloaded on retry.
 */
static void batch_failed(struct eng_pipeline *pl, struct batch_run *b, vg_err_t err)
{
    if (err == VG_ERR_CONFLICT && b->fence_lost < b->n_fences) {
        const struct vg_fence *f = &pl->fences[b->fence_lost];

        report_conflict(pl, f->topic, f->partition, b->errstr);
    }
    reset_batch(pl, b->n_evs);
    forget(pl); /* the claims too: the retry claims again and skips what the other one applied */
    vg_metrics_tally_flush(pl->tally, NULL); /* retried: counted when it commits */
    snprintf(pl->last_error, sizeof(pl->last_error), "%s", b->errstr);
    if (b->dlq_failed) {
        /* Kafka, not Redis: no reconnect. The consumer logs and retries the batch. */
        VG_LOG_DEBUG("consumer", "batch not applied: dead-letter topic: %s", b->errstr);
    } else if (b->ask_failed) {
        VG_LOG_DEBUG("consumer", "batch not applied: %s", b->errstr);
    } else if (err == VG_ERR_CONFLICT) {
        /* Redis is fine: no reconnect. Logged above; the consumer retries the batch. */
        VG_LOG_DEBUG("state", "batch not applied: %s", b->errstr);
    } else if (vg_err_is_retriable(err)) {
        pl->need_reconnect = true;
        vg_metrics_add(pl->report->metrics, VG_M_REDIS_ERRORS, (const char *const[]){"pipeline"},
                       1);
        VG_LOG_DEBUG("state", "batch not applied: %s", b->errstr);
        recheck_redis(pl, b->errstr);
    } else {
        VG_LOG_ERROR("state", "batch not applied: %s", b->errstr);
    }
}

/*
 * `--debug consumer`: where a committed batch's time went, and how old its
 * oldest message was when the batch started (Kafka's timestamp, so the
 * producer's clock): a latency spike shows as batches that grow and age
 * together, and the step that grew with them names the cause.
 */
static void log_batch_steps(const struct eng_pipeline *pl, const struct batch_run *b)
{
    int64_t oldest = -1;
    char part[64] = "";
    char ahead[96] = "";

    if (!vg_log_enabled(VG_LOG_LEVEL_DEBUG, "consumer")) {
        return;
    }
    if (b->part > 0) {
        snprintf(part, sizeof(part), " (part %zu of a batch of %zu)", b->part, b->whole);
    }
    if (b->ahead_s > 0) {
        snprintf(ahead, sizeof(ahead), " (%.1f ms of it decoding the next part while in flight)",
                 b->ahead_s * 1e3);
    }
    for (size_t i = 0; i < b->n; i++) {
        int64_t ts = b->msgs[i].timestamp_ms;

        if (ts > 0 && (oldest < 0 || ts < oldest)) {
            oldest = ts;
        }
    }
    VG_LOG_DEBUG("consumer",
                 "batch of %zu message(s)%s, oldest %lld ms old at its start: decode %.1f ms, "
                 "resolve %.1f ms, apply %.1f ms, commit %.1f ms%s; %zu page(s)",
                 b->n, part, oldest < 0 ? -1LL : (long long)(b->start_ms - oldest),
                 (b->t_decoded - b->t0) * 1e3, (b->t_resolved - b->t_decoded) * 1e3,
                 (b->t_applied - b->t_resolved) * 1e3, (b->t_committed - b->t_applied) * 1e3, ahead,
                 pl->out.pages.n);
}

/*
 * A part of at least this many messages: below it, a commit's fixed cost
 * (the fence check's round trip, EXEC, the fsync) would be a large share.
 */
#define PART_MIN_MESSAGES 256

/*
 * How many of the `left` messages of a batch of `whole` go into its next
 * part: all of them unless kafka.batch_commit_ms or
 * kafka.batch_overlap_parts is set. With batch_commit_ms, as many as the
 * recent cost per message says fit in it, at least PART_MIN_MESSAGES (and
 * PART_MIN_MESSAGES while nothing has been measured yet). With
 * batch_overlap_parts, at most a that-many'th of the batch, at least
 * PART_MIN_MESSAGES.
 */
static size_t part_size(const struct eng_pipeline *pl, size_t left, size_t whole)
{
    int bound_ms = pl->kc ? pl->kc->batch_commit_ms : 0;
    int parts = pl->kc ? pl->kc->batch_overlap_parts : 0;
    size_t k = left;

    if (left <= PART_MIN_MESSAGES) {
        return left;
    }
    if (bound_ms > 0) {
        double fit = pl->part_us_per_msg <= 0 ? 0 : (double)bound_ms * 1000.0 / pl->part_us_per_msg;

        if (fit < PART_MIN_MESSAGES) {
            k = PART_MIN_MESSAGES;
        } else if (fit < (double)left) {
            k = (size_t)fit;
        }
    }
    if (parts > 1) {
        size_t share = (whole + (size_t)parts - 1) / (size_t)parts;

        if (share < PART_MIN_MESSAGES) {
            share = PART_MIN_MESSAGES;
        }
        if (share < k) {
            k = share;
        }
    }
    return k;
}

/*
 * A committed part's time per message into the estimate (a moving
 * average). Only parts of PART_MIN_MESSAGES or more: in smaller ones the
 * fixed cost of a commit would pass for a cost per message. The time spent
 * decoding the next part while the commit was in flight is not this
 * part's.
 */
static void measure_part(struct eng_pipeline *pl, const struct batch_run *b)
{
    double us;

    if (b->n < PART_MIN_MESSAGES) {
        return;
    }
    us = (b->t_committed - b->t0 - b->ahead_s) * 1e6 / (double)b->n;
    pl->part_us_per_msg = pl->part_us_per_msg <= 0 ? us : 0.7 * pl->part_us_per_msg + 0.3 * us;
}

/*
 * The rules' environment for a part (silences, incidents firing elsewhere,
 * the clock), read before the part enters its scope (the silences are
 * global). Silences are checked once per Kafka batch: in the partitioned
 * layout a batch is one part or more per partition, and every part after
 * the first takes the silences the first one read.
 */
static const struct vg_rules_env *rules_env(struct eng_pipeline *pl, const struct batch_run *b)
{
    if (vg_state_partitioned(pl->st) && b->part > 1) {
        return eng_timers_env_now(pl->timers);
    }
    return eng_timers_env(pl->timers, pl->rs);
}

/*
 * Steps 1 to 5 of a part, in order: decoded, its rules' environment, its
 * partition's scope (partitioned layout), Kubernetes Events mapped,
 * resolved, applied, its offsets collected and its commit sent, not
 * waited for. The steps' times go into `b`.
 */
static vg_err_t part_prepare(struct eng_pipeline *pl, struct batch_run *b, struct vg_commit *c,
                             size_t *fence_lost)
{
    vg_err_t err;

    pl->dlq_gen++;
    err = decode_batch(pl, b);
    b->t_decoded = vg_metrics_now_s();
    if (err == VG_OK) {
        b->env = rules_env(pl, b);
    }
    if (err == VG_OK && vg_state_partitioned(pl->st)) {
        /* the claims switch scope as they go: the part's one partition now (by_partition) */
        err = vg_state_scope(pl->st, b->msgs[0].topic, b->msgs[0].partition, b->errstr,
                             sizeof(b->errstr));
    }
    if (err == VG_OK) {
        /* Kubernetes Events: find each one's Resource through its pod */
        err = map_k8s_events(pl, b->from_evs, b->n_evs, b->errstr, sizeof(b->errstr));
    }
    if (err == VG_OK) {
        err = resolve_batch(pl, b);
    }
    b->t_resolved = vg_metrics_now_s();
    if (err == VG_OK) {
        apply_batch(pl, b);
        collect_offsets(pl, b);
        b->t_applied = vg_metrics_now_s();
        err = commit_send(pl, b, c, fence_lost);
    }
    return err;
}

/*
 * One part of a batch (or all of it), its commit waited for. With `next`
 * (n_next messages, the part after this one), the next part is decoded
 * ahead while this part's commit is in flight.
 */
static vg_err_t batch_part(struct eng_pipeline *pl, const struct vg_kafka_msg *msgs, size_t n,
                           size_t part, size_t whole, const struct vg_kafka_msg *next,
                           size_t n_next)
{
    struct batch_run b = {.msgs = msgs,
                          .n = n,
                          .t0 = vg_metrics_now_s(),
                          .start_ms = vg_now_ms(),
                          .part = part,
                          .whole = whole};
    struct vg_commit c;
    vg_err_t err;

    err = reconnect_if_needed(pl);
    if (err) {
        drop_ahead(pl);
        return err;
    }
    grow_scratch(pl, n);
    err = part_prepare(pl, &b, &c, &b.fence_lost);
    if (err == VG_OK) {
        if (n_next > 0) {
            /* Redis runs the commit meanwhile: nothing here touches pl->st */
            decode_ahead(pl, next, n_next);
            b.ahead_s = vg_metrics_now_s() - b.t_applied;
        }
        err = commit_finish(pl, &b);
    }
    b.t_committed = vg_metrics_now_s();
    if (err) {
        /* the part decoded ahead was not applied: dropped, the batch is retried whole */
        drop_ahead(pl);
        batch_failed(pl, &b, err);
        return err;
    }
    log_batch_steps(pl, &b);
    measure_part(pl, &b);
    batch_committed(pl, &b);
    return VG_OK;
}

/* A part in flight: where its fences start, and which of them was lost (a conflict). */
struct part_sent {
    size_t from_fences;
    size_t fence_lost;
    bool sent; /* its commit is in flight: one vg_state_commit_finish owed */
};

/* The batch's counts so far into a part's run (its share starts there), and back. */
static void part_begin(struct eng_pipeline *pl, const struct batch_run *acc, struct batch_run *b)
{
    b->in_flight = true;
    b->n_evs = b->from_evs = acc->n_evs;
    b->n_trans = b->from_trans = acc->n_trans;
    b->n_dirty = b->from_dirty = acc->n_dirty;
    b->n_offsets = b->from_offsets = acc->n_offsets;
    b->n_notes = b->from_notes = acc->n_notes;
    b->n_links = b->from_links = acc->n_links;
    b->n_fences = b->from_fences = acc->n_fences;
    b->from_pages = pl->out.pages.n;
    b->from_timers = pl->out.timers.n;
    b->from_records = pl->out.records.n;
}

static void part_end(struct batch_run *acc, const struct batch_run *b)
{
    acc->n_evs = b->n_evs;
    acc->n_trans = b->n_trans;
    acc->n_dirty = b->n_dirty;
    acc->n_offsets = b->n_offsets;
    acc->n_notes = b->n_notes;
    acc->n_links = b->n_links;
    acc->n_fences = b->n_fences;
    acc->n_dlq += b->n_dlq;
    acc->n_dropped += b->n_dropped;
    acc->dlq_failed = acc->dlq_failed || b->dlq_failed;
    acc->ask_failed = acc->ask_failed || b->ask_failed;
}

/*
 * One partition's part of a batch in flight: decoded, resolved and applied
 * in its scope, its commit written (vg_state_commit_send) and not waited
 * for. Its share of the batch's arrays follows the earlier parts' (which
 * nothing here changes: Resources, incidents and records belong to one
 * partition's scope), so their commits, still in flight, stay as written.
 */
static vg_err_t part_send(struct eng_pipeline *pl, struct batch_run *acc,
                          const struct vg_kafka_msg *msgs, size_t n, size_t part,
                          struct part_sent *sp)
{
    struct batch_run b = {.msgs = msgs, .n = n, .part = part, .whole = acc->n};
    struct vg_commit c;
    vg_err_t err;

    part_begin(pl, acc, &b);
    sp->from_fences = b.from_fences;
    err = part_prepare(pl, &b, &c, &sp->fence_lost);
    sp->sent = err == VG_OK && !b.nothing_sent;
    part_end(acc, &b);
    if (err != VG_OK) {
        snprintf(acc->errstr, sizeof(acc->errstr), "%s", b.errstr);
        if (err == VG_ERR_CONFLICT) {
            acc->fence_lost = sp->from_fences + sp->fence_lost;
        }
    }
    return err;
}

/* The messages of msgs[from] and after that are in its partition (grouped by by_partition). */
static size_t partition_run(const struct vg_kafka_msg *msgs, size_t from, size_t n)
{
    const struct vg_kafka_msg *m = &msgs[from];
    size_t k = 1;

    while (from + k < n && msgs[from + k].partition == m->partition &&
           (msgs[from + k].topic == m->topic || strcmp(msgs[from + k].topic, m->topic) == 0)) {
        k++;
    }
    return k;
}

/* A part of a batch in flight: its messages and its partition's claim. */
struct part_plan {
    size_t from;
    size_t k;
    struct applied *a;
};

/*
 * Part `pp`'s fence sent ahead on its commit lane (vg_state_fence_ahead):
 * its commit, written later, finds the verdict there instead of waiting
 * for a WATCH of its own behind the lane's earlier commits.
 */
static vg_err_t fence_ahead(struct eng_pipeline *pl, const struct part_plan *pp, char *errstr,
                            size_t errstr_size)
{
    const struct vg_fence f = {
        .topic = pp->a->topic, .partition = pp->a->partition, .epoch = pp->a->epoch};
    vg_err_t err = vg_state_scope(pl->st, f.topic, f.partition, errstr, errstr_size);

    if (err == VG_OK) {
        err = vg_state_fence_ahead(pl->st, &f, 1, errstr, errstr_size);
    }
    return err;
}

/* The part after parts[i] on the same commit lane, or n_parts. */
static size_t next_on_lane(const struct part_plan *parts, size_t n_parts, size_t i, unsigned lanes)
{
    unsigned lane = (unsigned)parts[i].a->partition % lanes;

    for (size_t j = i + 1; j < n_parts; j++) {
        if ((unsigned)parts[j].a->partition % lanes == lane) {
            return j;
        }
    }
    return n_parts;
}

/*
 * redis.layout partitioned, a batch over several partitions (grouped by
 * by_partition): one part per partition, each committed in its scope, and
 * the commits in flight together. Every partition of the batch is claimed
 * first; then, with more than one commit lane (redis.commit_connections),
 * the first part of each lane has its fence sent ahead on its lane, so up
 * to that many parts' WATCHes and EXECs reach Redis in one turn and share
 * its fsync. Part i's commit is written (its fence's verdict taken from the
 * lane, or with one lane checked by its send), the fence of the next part
 * on its lane sent behind it, then part i+1 is resolved and applied while
 * Redis runs it (a read on a connection first takes the replies of the
 * commits before it there), and so on; then every commit is finished in
 * order. A claim breaks a WATCH already sent: no claim may follow a fence
 * sent ahead, hence the claims first.
 *
 * All landed: the batch commits once (applied offsets, counts, the API
 * stream, pages, timers, the cache trim). Any failed: the other commits in
 * flight are still finished (their replies read), and the batch fails with
 * the first failure in part order; the consumer retries it whole, and the
 * parts that landed are skipped as replays by their applied offsets.
 */
static vg_err_t batch_in_flight(struct eng_pipeline *pl, const struct vg_kafka_msg *msgs, size_t n)
{
    struct batch_run acc = {
        .msgs = msgs, .n = n, .t0 = vg_metrics_now_s(), .start_ms = vg_now_ms(), .whole = n};
    struct part_sent *sent;
    struct part_plan *parts;
    unsigned lanes = vg_state_commit_lanes(pl->st);
    size_t n_parts = 0;
    size_t n_sent = 0;
    size_t n_in_flight = 0;
    double t_sent;
    bool ahead;
    bool from_send;
    vg_err_t err;
    vg_err_t first;

    err = reconnect_if_needed(pl);
    if (err) {
        drop_ahead(pl);
        return err;
    }
    for (size_t done = 0; done < n; done += partition_run(msgs, done, n)) {
        n_parts++;
    }
    sent = vg_calloc(n_parts, sizeof(*sent)); /* fence_lost pointers into it stay put */
    parts = vg_calloc(n_parts, sizeof(*parts));
    for (size_t done = 0, i = 0; done < n && err == VG_OK; done += parts[i++].k) {
        parts[i].from = done;
        parts[i].k = partition_run(msgs, done, n);
        err = get_applied(pl, msgs[done].topic, msgs[done].partition, &parts[i].a, acc.errstr,
                          sizeof(acc.errstr));
    }
    if (lanes == 0) {
        lanes = 1;
    }
    /* One lane: each part's fence is checked by its own send (WATCH + MGET, one round trip),
     * as before lanes. Sent ahead it would wait behind the previous part's EXEC all the
     * same, and cost an UNWATCH more per part. */
    ahead = lanes > 1;
    for (size_t i = 0; i < n_parts && err == VG_OK && ahead; i++) {
        bool first_on_lane = true;

        for (size_t j = 0; j < i && first_on_lane; j++) {
            first_on_lane = parts[j].a->partition % lanes != parts[i].a->partition % lanes;
        }
        if (first_on_lane) {
            err = fence_ahead(pl, &parts[i], acc.errstr, sizeof(acc.errstr));
        }
    }
    grow_scratch(pl, n);
    for (size_t i = 0; i < n_parts && err == VG_OK; i++) {
        size_t next;

        err = part_send(pl, &acc, msgs + parts[i].from, parts[i].k, n_sent + 1, &sent[n_sent]);
        n_in_flight += sent[n_sent].sent ? 1 : 0;
        n_sent++;
        next = ahead ? next_on_lane(parts, n_parts, i, lanes) : n_parts;
        if (err == VG_OK && next < n_parts) {
            err = fence_ahead(pl, &parts[next], acc.errstr, sizeof(acc.errstr));
        }
    }
    vg_free(parts);
    t_sent = vg_metrics_now_s();
    /* A part that failed before its commit went out came after every part in flight: a
     * failure among those is the first one. */
    first = err;
    from_send = err != VG_OK;
    for (size_t i = 0; i < n_sent; i++) {
        char errstr[512];
        vg_err_t e;

        if (!sent[i].sent) {
            continue;
        }
        e = vg_state_commit_finish(pl->st, errstr, sizeof(errstr)); /* read, whatever came before */
        if (e != VG_OK && (first == VG_OK || from_send)) {
            first = e;
            from_send = false;
            snprintf(acc.errstr, sizeof(acc.errstr), "%s", errstr);
            acc.fence_lost =
                e == VG_ERR_CONFLICT ? sent[i].from_fences + sent[i].fence_lost : acc.n_fences;
        }
    }
    /* the fences sent ahead of parts that never committed (a failure, nothing to write) */
    vg_state_fences_ahead_drop(pl->st, false);
    vg_free(sent);
    if (first != VG_OK) {
        drop_ahead(pl);
        batch_failed(pl, &acc, first);
        return first;
    }
    VG_LOG_DEBUG("consumer",
                 "batch of %zu message(s) over %zu partition(s): %zu commit(s) in flight "
                 "together on %u lane(s); parts %.1f ms, finish %.1f ms; %zu page(s)",
                 n, n_parts, n_in_flight, lanes, (t_sent - acc.t0) * 1e3,
                 (vg_metrics_now_s() - t_sent) * 1e3, pl->out.pages.n);
    batch_committed(pl, &acc);
    return VG_OK;
}

/* By topic, partition, then place in the batch (which keeps Kafka order within a partition). */
static int cmp_place(const void *a, const void *b)
{
    const struct msg_place *pa = a;
    const struct msg_place *pb = b;
    int c = pa->topic == pb->topic ? 0 : strcmp(pa->topic, pb->topic);

    if (c == 0) {
        c = (pa->partition > pb->partition) - (pa->partition < pb->partition);
    }
    return c != 0 ? c : (pa->i > pb->i) - (pa->i < pb->i);
}

/*
 * redis.layout partitioned: each commit holds one partition's writes
 * (one hash tag, one slot on a cluster), so the batch is regrouped by
 * partition, Kafka order kept within each (a stable sort on the message
 * index), into pl->grouped. Returns the messages to apply: msgs itself
 * with the single layout or when it holds one partition.
 */
static const struct vg_kafka_msg *by_partition(struct eng_pipeline *pl,
                                               const struct vg_kafka_msg *msgs, size_t n)
{
    bool one = true;

    if (!vg_state_partitioned(pl->st)) {
        return msgs;
    }
    for (size_t i = 1; i < n && one; i++) {
        one = msgs[i].partition == msgs[0].partition &&
              (msgs[i].topic == msgs[0].topic || strcmp(msgs[i].topic, msgs[0].topic) == 0);
    }
    if (one) {
        return msgs;
    }
    vg_array_grow((void **)&pl->order, &pl->cap_order, n, sizeof(*pl->order));
    vg_array_grow((void **)&pl->grouped, &pl->cap_grouped, n, sizeof(*pl->grouped));
    for (size_t i = 0; i < n; i++) {
        pl->order[i] = (struct msg_place){msgs[i].topic, msgs[i].partition, i};
    }
    qsort(pl->order, n, sizeof(*pl->order), cmp_place);
    for (size_t i = 0; i < n; i++) {
        pl->grouped[i] = msgs[pl->order[i].i];
    }
    return pl->grouped;
}

/*
 * The next part's size from message `from` on (of `n`, a batch of
 * `whole`): part_size, cut where the partition changes in the
 * partitioned layout (messages grouped by by_partition).
 */
static size_t next_cut(const struct eng_pipeline *pl, const struct vg_kafka_msg *msgs, size_t from,
                       size_t n, size_t whole)
{
    size_t left = n - from;

    if (vg_state_partitioned(pl->st)) {
        const struct vg_kafka_msg *m = &msgs[from];

        left = 1;
        while (from + left < n && msgs[from + left].partition == m->partition &&
               (msgs[from + left].topic == m->topic ||
                strcmp(msgs[from + left].topic, m->topic) == 0)) {
            left++;
        }
    }
    return part_size(pl, left, whole);
}

/*
 * The consumer's batch handler. With kafka.batch_commit_ms or
 * kafka.batch_overlap_parts a large batch is applied in parts, each its
 * own commit with its own applied offsets: with batch_commit_ms, so the
 * pages of its first messages leave after one part's commit rather than
 * the whole batch's; with batch_overlap_parts, so the next part is decoded
 * while a part's commit is in flight (decode_ahead). With redis.layout
 * partitioned a part never holds two partitions: a batch over P
 * partitions is at least P parts, each committed in its partition's
 * scope; one part per partition (no batch_commit_ms, no
 * batch_overlap_parts) has their commits in flight together
 * (batch_in_flight). A part that fails fails the batch: the consumer
 * retries all of it, and the parts already in Redis are skipped as
 * replays (their applied offsets), as after a crash. Kafka offsets are
 * stored once, after the last part.
 */
static vg_err_t batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    struct eng_pipeline *pl = opaque;
    bool overlap = pl->kc && pl->kc->batch_overlap_parts > 1;
    size_t done = 0;
    size_t part = 0;
    size_t k;

    msgs = by_partition(pl, msgs, n);
    if (msgs == pl->grouped) {
        /*
         * One part per partition: parts this small would decode on this thread alone
         * (below ENG_DECODE_PARALLEL_MIN), so the whole batch is decoded ahead here, on the
         * workers too, and each part takes its share (take_ahead). No claim is consulted
         * (the table may hold claims dropped since): replays are decoded too, then freed.
         */
        pl->part_claims_topic = NULL;
        decode_ahead(pl, msgs, n);
        overlap = false;
        if (!pl->kc || (pl->kc->batch_commit_ms <= 0 && pl->kc->batch_overlap_parts <= 1)) {
            /* whole partitions as parts, none bounded in time: their commits in flight */
            return batch_in_flight(pl, msgs, n);
        }
    }
    k = next_cut(pl, msgs, 0, n, n);
    do {
        size_t k_next = 0;
        vg_err_t err;

        if (overlap && done + k < n) {
            k_next = next_cut(pl, msgs, done + k, n, n);
        }
        part = k < n || part > 0 ? part + 1 : 0;
        err = batch_part(pl, msgs + done, k, part, n, msgs + done + k, k_next);
        if (err) {
            return err;
        }
        done += k;
        /* the cut decoded ahead, or (no overlap) the estimate this part just updated */
        k = overlap ? k_next : (done < n ? next_cut(pl, msgs, done, n, n) : 0);
    } while (done < n);
    return VG_OK;
}

static void on_idle(void *opaque)
{
    struct eng_pipeline *pl = opaque;

    /* Durable timers fire here when no batch comes (reconnect at most once a second) */
    if (pl->need_reconnect && vg_mono_ms() - pl->last_reconnect_mono >= 1000) {
        char errstr[512];

        pl->last_reconnect_mono = vg_mono_ms();
        if (vg_state_reconnect(pl->st, errstr, sizeof(errstr)) == VG_OK) {
            pl->need_reconnect = false;
            vg_metrics_add(pl->report->metrics, VG_M_REDIS_RECONNECTS,
                           (const char *const[]){"pipeline"}, 1);
            forget(pl);
        }
    }
    if (!pl->need_reconnect) {
        run_timers(pl);
    }
    if (pl->idle_fn) {
        pl->idle_fn(pl->idle_arg);
    }
}

void eng_pipeline_on_idle(struct eng_pipeline *pl, void (*fn)(void *arg), void *arg)
{
    pl->idle_fn = fn;
    pl->idle_arg = arg;
}

static const char *last_error(void *opaque)
{
    struct eng_pipeline *pl = opaque;
    return pl->last_error[0] ? pl->last_error : NULL;
}

void eng_pipeline_handler(struct eng_pipeline *pl, struct vg_consumer_handler *h)
{
    memset(h, 0, sizeof(*h));
    h->opaque = pl;
    h->assigned = on_assigned;
    h->revoked = on_revoked;
    h->batch = batch;
    h->idle = on_idle;
    h->last_error = last_error;
}
