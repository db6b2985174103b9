/*
 * The embedded Kafka: librdkafka's in-process mock cluster on 127.0.0.1,
 * owned by an otherwise idle producer handle. Used by `vigil` when no
 * brokers are configured, and by the integration tests. The mock broker
 * keeps only ~5 MiB / 100k batches per partition and drops older data.
 */
#include <librdkafka/rdkafka.h> /* before rdkafka_mock.h, which needs it */
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>

#include "consumer_int.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"

/* The protocol's ApiKeys: rdkafka_mock.h takes raw keys. */
#define KAFKA_API_PRODUCE 0
#define KAFKA_API_FETCH 1
#define KAFKA_API_OFFSET_COMMIT 8
#define KAFKA_API_JOIN_GROUP 11

struct vg_mock_kafka {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char *bootstraps;
};

vg_err_t vg_mock_kafka_start(struct vg_mock_kafka **out, int brokers, char *errstr,
                             size_t errstr_size)
{
    struct vg_mock_kafka *mk;
    rd_kafka_conf_t *conf;
    char msg[512];

    *out = NULL;
    if (brokers < 1) {
        snprintf(errstr, errstr_size, "mock kafka: %d brokers", brokers);
        return VG_ERR_INVALID;
    }
    conf = consumer_conf_new(NULL, errstr, errstr_size);
    /* The owner never connects anywhere: hide its "no bootstrap.servers" notice. */
    if (!conf ||
        consumer_conf_set(conf, "mock kafka: ", "log_level", "4", errstr, errstr_size) != VG_OK) {
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        return VG_ERR_INVALID;
    }
    mk = vg_calloc(1, sizeof(*mk));
    mk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof(msg));
    if (!mk->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "mock kafka: %s", msg);
        vg_free(mk);
        return VG_ERR_INVALID;
    }
    mk->mc = rd_kafka_mock_cluster_new(mk->rk, brokers);
    if (!mk->mc) {
        snprintf(errstr, errstr_size, "mock kafka: cannot start %d brokers on 127.0.0.1", brokers);
        rd_kafka_destroy(mk->rk);
        vg_free(mk);
        return VG_ERR_IO;
    }
    mk->bootstraps = vg_strdup(rd_kafka_mock_cluster_bootstraps(mk->mc));
    *out = mk;
    return VG_OK;
}

vg_err_t vg_mock_kafka_create_topic(struct vg_mock_kafka *mk, const char *topic, int partitions,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rerr;

    if (partitions < 1) {
        snprintf(errstr, errstr_size, "mock kafka: topic %s: %d partitions", topic, partitions);
        return VG_ERR_INVALID;
    }
    rerr = rd_kafka_mock_topic_create(mk->mc, topic, partitions, 1);
    if (rerr) {
        snprintf(errstr, errstr_size, "mock kafka: topic %s: %s", topic, rd_kafka_err2str(rerr));
        return VG_ERR_INVALID;
    }
    return VG_OK;
}

const char *vg_mock_kafka_bootstraps(const struct vg_mock_kafka *mk)
{
    return mk->bootstraps;
}

void vg_mock_kafka_fail_produce(struct vg_mock_kafka *mk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /*
         * Not retriable, not one that makes the idempotent producer fatal,
         * and not about the message itself (a size refusal is handled
         * differently by the dead-letter path).
         */
        rd_kafka_mock_push_request_errors(mk->mc, KAFKA_API_PRODUCE, 1,
                                          RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    }
}

void vg_mock_kafka_refuse_size(struct vg_mock_kafka *mk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_mock_push_request_errors(mk->mc, KAFKA_API_PRODUCE, 1,
                                          RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    }
}

void vg_mock_kafka_stop(struct vg_mock_kafka *mk)
{
    if (!mk) {
        return;
    }
    rd_kafka_mock_cluster_destroy(mk->mc);
    rd_kafka_destroy(mk->rk);
    vg_free(mk->bootstraps);
    vg_free(mk);
}

void vg_mock_kafka_fail_requests(struct vg_mock_kafka *mk, enum vg_mock_kafka_request req, size_t n)
{
    int16_t api = KAFKA_API_FETCH;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;

    /* Errors a real broker answers while it moves leaders or coordinators: all retriable. */
    switch (req) {
    case VG_MOCK_KAFKA_FETCH:
        break;
    case VG_MOCK_KAFKA_OFFSET_COMMIT:
        api = KAFKA_API_OFFSET_COMMIT;
        rerr = RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
        break;
    case VG_MOCK_KAFKA_JOIN_GROUP:
        api = KAFKA_API_JOIN_GROUP;
        rerr = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
        break;
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_mock_push_request_errors(mk->mc, api, 1, rerr);
    }
}

void vg_mock_kafka_broker_set_down(struct vg_mock_kafka *mk, int32_t broker_id, bool down)
{
    if (down) {
        rd_kafka_mock_broker_set_down(mk->mc, broker_id);
    } else {
        rd_kafka_mock_broker_set_up(mk->mc, broker_id);
    }
}

vg_err_t vg_mock_kafka_move_coordinator(struct vg_mock_kafka *mk, const char *group,
                                        int32_t broker_id, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rerr = rd_kafka_mock_coordinator_set(mk->mc, "group", group, broker_id);

    if (rerr) {
        snprintf(errstr, errstr_size, "mock kafka: coordinator of %s to broker %d: %s", group,
                 (int)broker_id, rd_kafka_err2str(rerr));
        return VG_ERR_INVALID;
    }
    return VG_OK;
}
