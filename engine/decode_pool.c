/*
 * The decode workers: a fixed set of threads (decode.threads) that run the
 * independent part of a batch's decoding beside the pipeline thread, which
 * takes its share too and returns only when every item is done. Knows
 * nothing of events: it runs fn(arg, i) for i in [0, n). The order of
 * results is the caller's business (one slot per item).
 */
#define _GNU_SOURCE /* pthread_setname_np: the workers show as vg-decode in top -H */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"
#include "vigil/log.h"
#include "vigil/mem.h"

/* Each takes a quarter of its fair share at a time: few lock rounds, and the ends come together. */
#define DECODE_CHUNKS_PER_THREAD 4

struct eng_decode_pool {
    pthread_t *threads;
    int n_threads; /* started */
    /*
     * The job in progress, all under `lock`: items [next, n) are still to
     * be taken, `in_flight` chunks are taken and not finished. A worker
     * reads fn/arg in the same hold in which it takes a chunk, so it never
     * runs a finished job's function.
     */
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was posted, or stop */
    pthread_cond_t done; /* the last chunk of the job finished */
    void (*fn)(void *arg, size_t i);
    void *arg;
    size_t n;
    size_t next;
    size_t chunk;
    size_t in_flight;
    bool stop;
};

int eng_decode_threads_default(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (cpus < 2) {
        return 1;
    }
    return cpus - 1 > ENG_DECODE_THREADS_MAX_DEFAULT ? ENG_DECODE_THREADS_MAX_DEFAULT
                                                     : (int)(cpus - 1);
}

/* Take the next chunk of the job and run it unlocked; false when nothing is left. Holds `lock`. */
static bool run_chunk(struct eng_decode_pool *dp)
{
    void (*fn)(void *arg, size_t i) = dp->fn;
    void *arg = dp->arg;
    size_t from = dp->next;
    size_t to;

    if (from >= dp->n) {
        return false;
    }
    to = dp->n - from > dp->chunk ? from + dp->chunk : dp->n;
    dp->next = to;
    dp->in_flight++;
    pthread_mutex_unlock(&dp->lock);
    for (size_t i = from; i < to; i++) {
        fn(arg, i);
    }
    pthread_mutex_lock(&dp->lock);
    dp->in_flight--;
    if (dp->in_flight == 0 && dp->next >= dp->n) {
        pthread_cond_signal(&dp->done);
    }
    return true;
}

static void *worker_main(void *opaque)
{
    struct eng_decode_pool *dp = opaque;

    pthread_mutex_lock(&dp->lock);
    while (!dp->stop) {
        if (!run_chunk(dp)) {
            pthread_cond_wait(&dp->work, &dp->lock);
        }
    }
    pthread_mutex_unlock(&dp->lock);
    return NULL;
}

struct eng_decode_pool *eng_decode_pool_start(int n_threads)
{
    struct eng_decode_pool *dp = vg_calloc(1, sizeof(*dp));

    pthread_mutex_init(&dp->lock, NULL);
    pthread_cond_init(&dp->work, NULL);
    pthread_cond_init(&dp->done, NULL);
    if (n_threads > 0) {
        dp->threads = vg_calloc((size_t)n_threads, sizeof(*dp->threads));
    }
    for (int i = 0; i < n_threads; i++) {
        int rc = pthread_create(&dp->threads[i], NULL, worker_main, dp);

        if (rc != 0) {
            /* fewer workers only cost speed: the pipeline thread decodes what they don't */
            VG_LOG_WARN("consumer", "decode workers: %d of %d started: pthread_create: %s", i,
                        n_threads, strerror(rc));
            break;
        }
        pthread_setname_np(dp->threads[i], "vg-decode");
        dp->n_threads++;
    }
    return dp;
}

void eng_decode_pool_stop(struct eng_decode_pool *dp)
{
    if (!dp) {
        return;
    }
    pthread_mutex_lock(&dp->lock);
    dp->stop = true;
    pthread_cond_broadcast(&dp->work);
    pthread_mutex_unlock(&dp->lock);
    for (int i = 0; i < dp->n_threads; i++) {
        pthread_join(dp->threads[i], NULL);
    }
    pthread_cond_destroy(&dp->done);
    pthread_cond_destroy(&dp->work);
    pthread_mutex_destroy(&dp->lock);
    free(dp->threads);
    free(dp);
}

int eng_decode_pool_threads(const struct eng_decode_pool *dp)
{
    return dp ? dp->n_threads : 0;
}

void eng_decode_pool_run(struct eng_decode_pool *dp, void (*fn)(void *arg, size_t i), void *arg,
                         size_t n)
{
    size_t parts;

    if (!dp || dp->n_threads == 0) {
        for (size_t i = 0; i < n; i++) {
            fn(arg, i);
        }
        return;
    }
    parts = (size_t)(dp->n_threads + 1) * DECODE_CHUNKS_PER_THREAD;
    pthread_mutex_lock(&dp->lock);
    VG_ASSERT(dp->next >= dp->n && dp->in_flight == 0); /* one job at a time */
    dp->fn = fn;
    dp->arg = arg;
    dp->n = n;
    dp->next = 0;
    dp->chunk = n / parts > 0 ? n / parts : 1;
    pthread_cond_broadcast(&dp->work);
    while (run_chunk(dp)) {
    }
    while (dp->in_flight > 0) {
        pthread_cond_wait(&dp->done, &dp->lock);
    }
    dp->fn = NULL;
    dp->arg = NULL;
    pthread_mutex_unlock(&dp->lock);
}
