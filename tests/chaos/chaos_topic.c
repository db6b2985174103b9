/*
 * The chaos suite's event topic read back (chaos_topic.h): watermarks
 * first, then every message from the first offset up to the end, through
 * a consumer that assigns the partitions itself (no group, no commits).
 */
#include "chaos_topic.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static rd_kafka_t *new_reader(const char *bootstraps)
{
    static const char *const props[][2] = {
        {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},
        {"group.id", "chaos-topic-reader"},
    };
    char msg[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, msg, sizeof(msg)) !=
        RD_KAFKA_CONF_OK) {
        goto fail;
    }
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], msg, sizeof(msg)) !=
            RD_KAFKA_CONF_OK) {
            goto fail;
        }
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    if (rk) {
        return rk;
    }
fail:
    fprintf(stderr, "chaos topic reader: %s\n", msg);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void keep(struct chaos_partition *cp, const rd_kafka_message_t *rkm)
{
    struct chaos_msg *m = VG_ARRAY_PUSH(cp->msgs, cp->n, cp->cap);

    m->offset = rkm->offset;
    m->key = vg_strndup(rkm->key ? rkm->key : "", rkm->key ? rkm->key_len : 0);
    m->payload = vg_strndup(rkm->payload ? rkm->payload : "", rkm->payload ? rkm->len : 0);
}

/* Each partition's watermarks; false (printed) when a query fails. */
static bool read_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                            struct chaos_topic *out)
{
    for (int p = 0; p < out->partitions; p++) {
        struct chaos_partition *cp = &out->part[p];
        rd_kafka_resp_err_t rerr =
            rd_kafka_query_watermark_offsets(rk, topic, p, &cp->low, &cp->high, timeout_ms);

        if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "chaos topic reader: watermarks of %s/%d: %s\n", topic, p,
                    rd_kafka_err2str(rerr));
            return false;
        }
    }
    return true;
}

bool chaos_topic_read(const char *bootstraps, const char *topic, int partitions, int timeout_ms,
                      struct chaos_topic *out)
{
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    bool done[CHAOS_TOPIC_MAX_PARTITIONS] = {false};
    int n_done = 0;
    int64_t deadline = vg_mono_ms() + vg_test_timeout(timeout_ms);
    bool ok = false;

    VG_ASSERT(partitions > 0 && partitions <= CHAOS_TOPIC_MAX_PARTITIONS);
    memset(out, 0, sizeof(*out));
    out->partitions = partitions;
    rk = new_reader(bootstraps);
    if (!rk) {
        return false;
    }
    if (!read_watermarks(rk, topic, vg_test_timeout(10000), out)) {
        goto out_rk;
    }
    parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "chaos topic reader: assign failed\n");
        rd_kafka_topic_partition_list_destroy(parts);
        goto out_rk;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    while (n_done < partitions && vg_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        int p;

        if (!rkm) {
            continue;
        }
        p = rkm->partition;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* the topic no longer grows: its end is the high watermark read before */
            if (p >= 0 && p < partitions && !done[p] && rkm->offset >= out->part[p].high) {
                done[p] = true;
                n_done++;
            }
        } else if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "chaos topic reader: %s\n", rd_kafka_message_errstr(rkm));
        } else if (p >= 0 && p < partitions) {
            keep(&out->part[p], rkm);
        }
        rd_kafka_message_destroy(rkm);
    }
    ok = n_done == partitions;
    if (!ok) {
        fprintf(stderr, "chaos topic reader: %s not read to its end (%d of %d partitions)\n", topic,
                n_done, partitions);
    }
out_rk:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok;
}

void chaos_topic_fini(struct chaos_topic *t)
{
    for (int p = 0; p < t->partitions; p++) {
        struct chaos_partition *cp = &t->part[p];

        for (size_t i = 0; i < cp->n; i++) {
            free(cp->msgs[i].key);
            free(cp->msgs[i].payload);
        }
        free(cp->msgs);
    }
    memset(t, 0, sizeof(*t));
}
