/*
 * The embedded defaults: librdkafka's mock cluster in process when no
 * brokers are configured, a private redis-server child when no Redis URL
 * is. Also how read-only commands find the embedded Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_int.h"
#include "vigil/log.h"
#include "vigil/mem.h"

vg_err_t eng_embedded_start(struct eng_embedded *em, const struct vg_config *cfg, bool want_kafka,
                            char *errstr, size_t errstr_size)
{
    vg_err_t err;
    memset(em, 0, sizeof(*em));
    if (want_kafka) {
        if (cfg->kafka.brokers) {
            em->bootstraps = vg_strdup(cfg->kafka.brokers);
        } else {
            err = vg_mock_kafka_start(&em->kafka, 1, errstr, errstr_size);
            if (err) {
                return err;
            }
            for (size_t i = 0; i < cfg->kafka.n_topics; i++) {
                err = vg_mock_kafka_create_topic(em->kafka, cfg->kafka.topics[i],
                                                 cfg->kafka.partitions, errstr, errstr_size);
                if (err) {
                    eng_embedded_stop(em);
                    return err;
                }
            }
            err =
                vg_mock_kafka_create_topic(em->kafka, cfg->kafka.dlq_topic, 1, errstr, errstr_size);
            if (err) {
                eng_embedded_stop(em);
                return err;
            }
            em->bootstraps = vg_strdup(vg_mock_kafka_bootstraps(em->kafka));
            VG_LOG_INFO("kafka",
                        "embedded mock Kafka cluster on %s (topics created with %d "
                        "partitions)",
                        em->bootstraps, cfg->kafka.partitions);
        }
    }
    if (cfg->redis.url) {
        em->redis_url = vg_strdup(cfg->redis.url);
    } else {
        err = vg_redis_child_start(&em->redis, cfg->redis.data_dir, errstr, errstr_size);
        if (err) {
            eng_embedded_stop(em);
            return err;
        }
        em->redis_url = vg_strdup(vg_redis_child_url(em->redis));
        VG_LOG_INFO("state", "embedded redis-server pid %d on %s", vg_redis_child_pid(em->redis),
                    em->redis_url);
    }
    return VG_OK;
}

void eng_embedded_stop(struct eng_embedded *em)
{
    vg_redis_child_stop(em->redis);
    em->redis = NULL;
    if (em->kafka) {
        vg_mock_kafka_stop(em->kafka);
        em->kafka = NULL;
    }
    free(em->bootstraps);
    free(em->redis_url);
    em->bootstraps = NULL;
    em->redis_url = NULL;
}

vg_err_t vg_engine_redis_for_reading(const struct vg_config *cfg, const char *override_url,
                                     char **url_out, struct vg_redis_child **child, char *errstr,
                                     size_t errstr_size)
{
    struct stat sb;
    char *sock;
    struct vg_state *probe = NULL;
    char probe_err[256];

    *child = NULL;
    *url_out = NULL;
    if (override_url) {
        *url_out = vg_strdup(override_url);
        return VG_OK;
    }
    if (cfg->redis.url) {
        *url_out = vg_strdup(cfg->redis.url);
        return VG_OK;
    }
    if (stat(cfg->redis.data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(errstr, errstr_size,
                 "no embedded state in %s: start `vigil run` first, or pass --redis URL",
                 cfg->redis.data_dir);
        return VG_ERR_BACKEND;
    }
    sock = vg_asprintf("unix://%s%s/redis.sock", cfg->redis.data_dir[0] == '/' ? "" : "./",
                       cfg->redis.data_dir);
    if (cfg->redis.data_dir[0] != '/') {
        /* unix:// URLs need an absolute path */
        char cwd[4096];
        free(sock);
        if (!getcwd(cwd, sizeof(cwd))) {
            snprintf(errstr, errstr_size, "getcwd: %s", strerror(errno));
            return VG_ERR_IO;
        }
        sock = vg_asprintf("unix://%s/%s/redis.sock", cwd, cfg->redis.data_dir);
    }
    if (vg_state_connect(&probe, sock, cfg->redis.prefix, probe_err, sizeof(probe_err)) == VG_OK) {
        vg_state_destroy(probe);
        *url_out = sock;
        return VG_OK;
    }
    free(sock);
    /* No running vigil: serve the persisted state with a private redis-server. */
    if (vg_redis_child_start(child, cfg->redis.data_dir, errstr, errstr_size) != VG_OK) {
        return VG_ERR_BACKEND;
    }
    *url_out = vg_strdup(vg_redis_child_url(*child));
    return VG_OK;
}
