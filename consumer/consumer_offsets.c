/*
 * Where a replay reads: each partition's watermarks, the first offset at
 * or after a time (rd_kafka_offsets_for_times), and committing start
 * offsets for a new consumer group, all through a temporary consumer
 * handle. The batch loop itself lives in consumer.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_int.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define RANGES_TIMEOUT_MS 15000

/* A consumer handle with the user's properties (security settings) and, if given, `group`. */
static rd_kafka_t *handle_new(const struct vg_kafka_config *kc, const char *bootstraps,
                              const char *group, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = consumer_conf_new(bootstraps, errstr, errstr_size);
    rd_kafka_t *rk;
    char msg[512];

    if (!conf) {
        return NULL;
    }
    /* a consumer handle never creates the topic it asks about (allow.auto.create.topics) */
    if (consumer_conf_apply(conf, kc->properties, kc->n_properties, errstr, errstr_size) ||
        consumer_conf_set(conf, "", "group.id", group ? group : "vigil-replay-probe", errstr,
                          errstr_size) ||
        consumer_conf_set(conf, "", "enable.auto.commit", "false", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "kafka: %s", msg);
    }
    return rk;
}

vg_err_t consumer_topic_ranges(rd_kafka_t *rk, const char *topic, int64_t deadline,
                               struct vg_kafka_range **out, size_t *n, size_t *cap, char *errstr,
                               size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t rerr;
    vg_err_t err = VG_OK;

    rerr = rd_kafka_metadata(rk, 0, rkt, &md, consumer_left_ms(deadline));
    if (!rerr && (md->topic_cnt != 1 || md->topics[0].err)) {
        rerr = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    }
    if (rerr) {
        snprintf(errstr, errstr_size, "metadata for %s: %s", topic, rd_kafka_err2str(rerr));
        err = consumer_err_of(rerr);
        goto out;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t part = md->topics[0].partitions[i].id;
        int64_t low;
        int64_t high;
        struct vg_kafka_range *r;

        rerr = rd_kafka_query_watermark_offsets(rk, topic, part, &low, &high,
                                                consumer_left_ms(deadline));
        if (rerr) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic, (int)part,
                     rd_kafka_err2str(rerr));
            err = consumer_err_of(rerr);
            goto out;
        }
        r = VG_ARRAY_PUSH(*out, *n, *cap);
        *r = (struct vg_kafka_range){
            .topic = vg_strdup(topic), .partition = part, .start = low, .end = high};
    }
out:
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return err;
}

/* Move each range's start to the first offset at or after from_ms (its end when none). */
static vg_err_t seek_time(rd_kafka_t *rk, struct vg_kafka_range *v, size_t n, int64_t from_ms,
                          int64_t deadline, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_resp_err_t rerr;
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(parts, v[i].topic, v[i].partition)->offset = from_ms;
    }
    rerr = rd_kafka_offsets_for_times(rk, parts, consumer_left_ms(deadline));
    if (rerr) {
        snprintf(errstr, errstr_size, "offsets for time: %s", rd_kafka_err2str(rerr));
        err = consumer_err_of(rerr);
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];

        if (tp->err) {
            snprintf(errstr, errstr_size, "offsets for time of %s [%d]: %s", tp->topic,
                     (int)tp->partition, rd_kafka_err2str(tp->err));
            err = consumer_err_of(tp->err);
            goto out;
        }
        for (size_t j = 0; j < n; j++) {
            if (v[j].partition == tp->partition && strcmp(v[j].topic, tp->topic) == 0) {
                /* -1: no message that late; a start past the end reads nothing */
                v[j].start = tp->offset >= 0 && tp->offset < v[j].end ? tp->offset : v[j].end;
            }
        }
    }
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return err;
}

vg_err_t vg_kafka_ranges(const struct vg_kafka_config *kc, const char *bootstraps, int64_t from_ms,
                         struct vg_kafka_range **out, size_t *n_out, char *errstr,
                         size_t errstr_size)
{
    int64_t deadline = vg_mono_ms() + RANGES_TIMEOUT_MS;
    struct vg_kafka_range *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    rd_kafka_t *rk;
    vg_err_t err = VG_OK;

    *out = NULL;
    *n_out = 0;
    rk = handle_new(kc, bootstraps, NULL, errstr, errstr_size);
    if (!rk) {
        return VG_ERR_INVALID;
    }
    for (size_t i = 0; i < kc->n_topics && err == VG_OK; i++) {
        err = consumer_topic_ranges(rk, kc->topics[i], deadline, &v, &n, &cap, errstr, errstr_size);
    }
    if (err == VG_OK && from_ms >= 0 && n > 0) {
        err = seek_time(rk, v, n, from_ms, deadline, errstr, errstr_size);
    }
    rd_kafka_destroy(rk);
    if (err != VG_OK) {
        vg_kafka_ranges_free(v, n);
        return err;
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}

vg_err_t vg_kafka_group_commit(const struct vg_kafka_config *kc, const char *bootstraps,
                               const char *group, const struct vg_kafka_range *v, size_t n,
                               char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_resp_err_t rerr;
    rd_kafka_t *rk;
    vg_err_t err = VG_OK;

    rk = handle_new(kc, bootstraps, group, errstr, errstr_size);
    if (!rk) {
        return VG_ERR_INVALID;
    }
    parts = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(parts, v[i].topic, v[i].partition)->offset = v[i].start;
    }
    /* not a member of the group: committed as a simple consumer (generation -1) */
    rerr = rd_kafka_commit(rk, parts, 0);
    for (int i = 0; !rerr && i < parts->cnt; i++) {
        rerr = parts->elems[i].err;
    }
    if (rerr) {
        snprintf(errstr, errstr_size, "commit start offsets of group %s: %s", group,
                 rd_kafka_err2str(rerr));
        err = consumer_err_of(rerr);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return err;
}

void vg_kafka_ranges_free(struct vg_kafka_range *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].topic);
    }
    free(v);
}
