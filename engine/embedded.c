/*
 * The embedded defaults: librdkafka's mock cluster in process when no
 * brokers are configured, a private redis-server child when no Redis URL
 * is, and the small supervisor thread that starts that child again when
 * it dies. Also how read-only commands find the embedded Redis. The mock
 * cluster's address is random, so startup logs a ready-to-paste kcat line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine_int.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define WATCH_POLL_MS 100
#define RESTART_MIN_MS 250
#define RESTART_MAX_MS 5000
#define RESTART_ERROR_EVERY_MS 5000

/*
 * The supervisor of the private redis-server. It only restarts the
 * child: the pipeline and the dispatcher notice the lost connection and
 * reconnect on their own (same socket, so the same URL). Its own thread,
 * so that a restart (up to 10 s of waiting for PING) never blocks the
 * consumer loop; the restarted child's PR_SET_PDEATHSIG is therefore
 * bound to this thread, which lives until eng_embedded_stop.
 */
struct eng_redis_watch {
    pthread_t thread;
    atomic_int stop;
    struct vg_redis_child *rc; /* borrowed from struct eng_embedded */
};

static void sleep_ms(int ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void *watch_main(void *arg)
{
    struct eng_redis_watch *w = arg;
    bool down = false;
    int attempts = 0;
    int unreported = 0;
    int backoff_ms = RESTART_MIN_MS;
    int64_t down_since = 0;
    int64_t next_at = 0;
    int64_t reported_at = 0;

    while (!atomic_load(&w->stop)) {
        char errstr[1024];
        int64_t now;

        sleep_ms(WATCH_POLL_MS);
        if (atomic_load(&w->stop)) {
            break;
        }
        now = vg_mono_ms();
        if (!down) {
            int pid = vg_redis_child_pid(w->rc);
            char how[64];

            if (!vg_redis_child_exited(w->rc, how, sizeof(how))) {
                continue;
            }
            VG_LOG_WARN("state", "embedded redis-server pid %d %s; restarting", pid, how);
            down = true;
            attempts = 0;
            unreported = 0;
            backoff_ms = RESTART_MIN_MS;
            down_since = now;
            next_at = now;
        }
        if (now < next_at) {
            continue;
        }
        attempts++;
        if (vg_redis_child_restart(w->rc, errstr, sizeof(errstr)) == VG_OK) {
            VG_LOG_INFO("state",
                        "embedded redis-server pid %d on %s (restarted: %d attempt(s), down "
                        "%lld ms)",
                        vg_redis_child_pid(w->rc), vg_redis_child_url(w->rc), attempts,
                        (long long)(vg_mono_ms() - down_since));
            down = false;
            continue;
        }
        /* A human must act (data dir gone, socket taken, binary missing): say why, not too often.
         */
        now = vg_mono_ms();
        if (attempts == 1 || now - reported_at >= RESTART_ERROR_EVERY_MS) {
            VG_LOG_ERROR("state",
                         "embedded redis-server did not restart (attempt %d, %d not reported, "
                         "next in %d ms): %s",
                         attempts, unreported, backoff_ms, errstr);
            reported_at = now;
            unreported = 0;
        } else {
            unreported++;
        }
        next_at = now + backoff_ms;
        backoff_ms = backoff_ms * 2 < RESTART_MAX_MS ? backoff_ms * 2 : RESTART_MAX_MS;
    }
    return NULL;
}

static vg_err_t watch_start(struct eng_embedded *em, char *errstr, size_t errstr_size)
{
    struct eng_redis_watch *w = vg_calloc(1, sizeof(*w));
    int rc;

    w->rc = em->redis;
    atomic_init(&w->stop, 0);
    rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "redis-server supervisor thread: %s", strerror(rc));
        vg_free(w);
        return VG_ERR_IO;
    }
    em->watch = w;
    return VG_OK;
}

static void watch_stop(struct eng_redis_watch *w)
{
    if (!w) {
        return;
    }
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    vg_free(w);
}

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
            /* The port is random: hand people a command they can paste as is (one JSON
             * event per line on stdin; topic names need no shell quoting). kcat sends no
             * key, so its lines would be spread over the partitions and a Resource's events
             * could apply out of order: -p 0 keeps them all in one, in order. */
            for (size_t i = 0; i < cfg->kafka.n_topics; i++) {
                VG_LOG_INFO("kafka", "produce events with: kcat -P -b %s -t %s -p 0",
                            em->bootstraps, cfg->kafka.topics[i]);
            }
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
        err = watch_start(em, errstr, errstr_size);
        if (err) {
            eng_embedded_stop(em);
            return err;
        }
    }
    return VG_OK;
}

void eng_embedded_stop(struct eng_embedded *em)
{
    /* first: it must not restart the child that is being stopped */
    watch_stop(em->watch);
    em->watch = NULL;
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
