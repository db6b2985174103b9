/*
 * The outbox dispatcher: its own thread and Redis connection. Reads pages
 * from the outbox stream (consumer group), delivers each to its sink with
 * retries and exponential backoff, acknowledges only after the sink
 * confirmed, and moves what it gives up on to the dead-letter stream.
 * Pages left unacknowledged by a crash are re-read on the next start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define DISPATCH_BATCH 64
#define DISPATCH_BLOCK_MS 200
#define DISPATCH_CLAIM_IDLE_MS 60000
#define RETRY_BASE_MS 200
#define RETRY_MAX_MS 10000

struct cli_dispatch {
    pthread_t thread;
    struct vg_state *st;
    struct vg_sinks *sk;
    struct cli_stats *stats;
    char consumer[128];
    atomic_int stop;
};

/* Sleep up to `ms`, waking early when asked to stop. Returns false when stopping. */
static bool nap(struct cli_dispatch *d, int64_t ms)
{
    int64_t end = vg_mono_ms() + ms;
    while (!atomic_load(&d->stop)) {
        int64_t left = end - vg_mono_ms();
        struct timespec ts;
        if (left <= 0) {
            return true;
        }
        if (left > 50) {
            left = 50;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Deliver one entry; returns false only when stopping or Redis failed (entry stays pending). */
static bool deliver(struct cli_dispatch *d, const struct vg_outbox_entry *e)
{
    char errstr[512];
    int max = vg_sinks_max_attempts(d->sk, e->sink);
    int64_t delay = RETRY_BASE_MS;
    vg_err_t err = VG_OK;

    for (int attempt = 1; attempt <= max; attempt++) {
        err = vg_sinks_deliver(d->sk, e->sink, e->id, e->body, e->body_len, errstr,
                               sizeof(errstr));
        if (err == VG_OK) {
            if (vg_state_outbox_ack(d->st, e->stream_id, errstr, sizeof(errstr)) != VG_OK) {
                VG_LOG_WARN("sinks", "delivered page %s but could not ack it (it may be sent "
                            "again; receivers drop repeats by id): %s", e->id, errstr);
                return false;
            }
            atomic_fetch_add(&d->stats->delivered, 1);
            VG_LOG_INFO("sinks", "page sent id=%s sink=%s attempt=%d", e->id, e->sink, attempt);
            return true;
        }
        if (!vg_err_is_retriable(err)) {
            break;
        }
        if (attempt < max) {
            int64_t jitter = delay / 4 > 0 ? (int64_t)(rand() % (int)(delay / 4 + 1)) : 0;
            VG_LOG_WARN("sinks", "page %s to %s failed (attempt %d/%d, retry in %lld ms): %s",
                        e->id, e->sink, attempt, max, (long long)(delay + jitter), errstr);
            if (!nap(d, delay + jitter)) {
                return false; /* stays pending: re-read on the next start */
            }
            delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
        }
    }
    VG_LOG_ERROR("sinks", "giving up on page %s to %s: %s (moved to the dead-letter stream)",
                 e->id, e->sink, errstr);
    if (vg_state_outbox_dead(d->st, e, errstr, errstr, sizeof(errstr)) != VG_OK) {
        VG_LOG_WARN("sinks", "could not dead-letter page %s: %s", e->id, errstr);
        return false;
    }
    atomic_fetch_add(&d->stats->dead, 1);
    return true;
}

static void *dispatch_main(void *arg)
{
    struct cli_dispatch *d = arg;
    char errstr[512];
    bool redis_down = false;

    while (!atomic_load(&d->stop)) {
        struct vg_outbox_entry *v = NULL;
        size_t n = 0;
        vg_err_t err;

        if (redis_down) {
            if (vg_state_reconnect(d->st, errstr, sizeof(errstr)) != VG_OK) {
                nap(d, 1000);
                continue;
            }
            VG_LOG_INFO("sinks", "dispatcher reconnected to redis");
            redis_down = false;
        }
        err = vg_state_outbox_read(d->st, d->consumer, DISPATCH_BATCH, DISPATCH_BLOCK_MS,
                                   DISPATCH_CLAIM_IDLE_MS, &v, &n, errstr, sizeof(errstr));
        if (err) {
            VG_LOG_WARN("sinks", "outbox read failed, retrying: %s", errstr);
            redis_down = true;
            nap(d, 500);
            continue;
        }
        for (size_t i = 0; i < n && !atomic_load(&d->stop); i++) {
            if (!deliver(d, &v[i])) {
                redis_down = !atomic_load(&d->stop);
                break;
            }
        }
        vg_outbox_entries_free(v, n);
    }
    return NULL;
}

vg_err_t cli_dispatch_start(struct cli_dispatch **out, const char *redis_url, const char *prefix,
                            struct vg_sinks *sk, struct cli_stats *stats, char *errstr,
                            size_t errstr_size)
{
    struct cli_dispatch *d = vg_calloc(1, sizeof(*d));
    const char *inst = getenv("VIGIL_INSTANCE");
    char host[64] = "localhost";
    vg_err_t err = vg_state_connect(&d->st, redis_url, prefix, errstr, errstr_size);
    if (err) {
        free(d);
        return err;
    }
    gethostname(host, sizeof(host) - 1);
    /* A stable name: a restarted instance re-reads its own unacknowledged pages at once. */
    snprintf(d->consumer, sizeof(d->consumer), "%s", inst && *inst ? inst : host);
    d->sk = sk;
    d->stats = stats;
    atomic_init(&d->stop, 0);
    if (pthread_create(&d->thread, NULL, dispatch_main, d) != 0) {
        vg_state_destroy(d->st);
        free(d);
        snprintf(errstr, errstr_size, "pthread_create: %s", strerror(errno));
        return VG_ERR_FATAL;
    }
    *out = d;
    return VG_OK;
}

void cli_dispatch_stop(struct cli_dispatch *d)
{
    if (!d) {
        return;
    }
    atomic_store(&d->stop, 1);
    pthread_join(d->thread, NULL);
    vg_state_destroy(d->st);
    free(d);
}
