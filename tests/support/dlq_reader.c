/*
 * The dead-letter topic read back with a plain librdkafka consumer
 * (dlq_reader.h).
 */
#include "dlq_reader.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

/* Copy one message into `d`. */
static void keep(struct vg_test_dead_letter *d, const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;

    memset(d, 0, sizeof(*d));
    d->len = rkm->len;
    d->payload = vg_malloc(rkm->len + 1);
    memcpy(d->payload, rkm->payload, rkm->len);
    d->payload[rkm->len] = '\0';
    if (rkm->key) {
        d->key = vg_strndup(rkm->key, rkm->key_len);
    }
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    for (size_t i = 0; d->n_headers < VG_TEST_DEAD_LETTER_HEADERS; i++) {
        const char *name;
        const void *v;
        size_t vlen;

        if (rd_kafka_header_get_all(hdrs, i, &name, &v, &vlen) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            break;
        }
        d->header_names[d->n_headers] = vg_strdup(name);
        d->header_values[d->n_headers] = vg_strndup(v ? v : "", v ? vlen : 0);
        d->n_headers++;
    }
}

static rd_kafka_t *new_reader(struct vg_test_env *e)
{
    char msg[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", vg_mock_kafka_bootstraps(e->kafka), msg,
                          sizeof(msg)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", msg, sizeof(msg)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "dlq-reader", msg, sizeof(msg)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "dlq reader: %s\n", msg);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    if (!rk) {
        fprintf(stderr, "dlq reader: %s\n", msg);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "vigil.dlq", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "dlq reader: assign failed\n");
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

bool vg_test_env_read_dlq(struct vg_test_env *e, struct vg_test_dead_letter **out, size_t *n_out)
{
    rd_kafka_t *rk = new_reader(e);
    struct vg_test_dead_letter *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    bool ok = false;
    int64_t deadline = vg_mono_ms() + vg_test_timeout(20000);

    *out = NULL;
    *n_out = 0;
    if (!rk) {
        return false;
    }
    while (vg_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);

        if (!rkm) {
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rkm);
            ok = true;
            break;
        }
        if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "dlq reader: %s\n", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            break;
        }
        keep(VG_ARRAY_PUSH(v, n, cap), rkm);
        rd_kafka_message_destroy(rkm);
    }
    if (!ok) {
        fprintf(stderr, "dlq reader: vigil.dlq not read to its end (%zu messages)\n", n);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = v;
    *n_out = n;
    return ok;
}

void vg_test_dead_letters_free(struct vg_test_dead_letter *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].payload);
        free(v[i].key);
        for (size_t h = 0; h < v[i].n_headers; h++) {
            free(v[i].header_names[h]);
            free(v[i].header_values[h]);
        }
    }
    free(v);
}

const char *vg_test_dead_letter_header(const struct vg_test_dead_letter *d, const char *name)
{
    const char *found = NULL;

    for (size_t h = 0; h < d->n_headers; h++) {
        if (!strcmp(d->header_names[h], name)) {
            found = d->header_values[h];
        }
    }
    return found;
}

bool vg_test_dead_letter_header_is(const struct vg_test_dead_letter *d, const char *name,
                                   const char *value)
{
    const char *v = vg_test_dead_letter_header(d, name);

    return v && !strcmp(v, value);
}
