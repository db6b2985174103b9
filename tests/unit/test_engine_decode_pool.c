/*
 * The decode workers of engine/ (decode_pool.c, engine_int.h): every item
 * of a job runs exactly once whatever the number of threads and items,
 * jobs follow each other on the same workers, the workers really take a
 * share (the caller's first item waits until a second thread shows up),
 * the default size follows the machine, and stopping joins them all. And
 * the config key decode.threads: its default, its bounds, its variable.
 * The decoders themselves on four workers at once (cJSON's trees in each
 * thread's arena) give what they give on one thread: the target to run
 * under ThreadSanitizer (the tsan preset), which librdkafka's threads
 * keep out of the engine's integration tests.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_int.h"
#include "vigil/config.h"
#include "vigil/event.h"
#include "vigil/json.h"

/* Threads of this process named vg-decode. */
static int decode_threads_running(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;

    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        char path[300];
        char comm[32] = "";
        FILE *fp;

        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        fp = fopen(path, "r");
        if (!fp) {
            continue; /* the thread ended meanwhile */
        }
        n += fgets(comm, sizeof(comm), fp) && !strcmp(comm, "vg-decode\n") ? 1 : 0;
        fclose(fp);
    }
    closedir(dir);
    return n;
}

struct count_job {
    atomic_int *hits;
};

static void count_item(void *arg, size_t i)
{
    struct count_job *job = arg;

    atomic_fetch_add(&job->hits[i], 1);
}

static void every_item_once(void **state)
{
    static const int threads[] = {0, 1, 4};
    static const size_t sizes[] = {0, 1, 2, 7, 63, 64, 65, 1000, 5000};
    (void)state;

    for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        struct eng_decode_pool *dp = eng_decode_pool_start(threads[t]);

        assert_int_equal(eng_decode_pool_threads(dp), threads[t]);
        assert_int_equal(decode_threads_running(), threads[t]);
        for (int round = 0; round < 20; round++) {
            for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                size_t n = sizes[s];
                atomic_int *hits = calloc(n ? n : 1, sizeof(*hits));
                struct count_job job = {hits};

                eng_decode_pool_run(dp, count_item, &job, n);
                for (size_t i = 0; i < n; i++) {
                    if (atomic_load(&hits[i]) != 1) {
                        fprintf(stderr, "threads %d, %zu items: item %zu ran %d times\n",
                                threads[t], n, i, atomic_load(&hits[i]));
                        fail();
                    }
                }
                free(hits);
            }
        }
        eng_decode_pool_stop(dp);
        assert_int_equal(decode_threads_running(), 0);
    }
    /* NULL: everything on the caller */
    {
        atomic_int hits[3] = {0};
        struct count_job job = {hits};

        eng_decode_pool_run(NULL, count_item, &job, 3);
        assert_int_equal(atomic_load(&hits[2]), 1);
        eng_decode_pool_stop(NULL);
    }
}

/* Items that wait (bounded) until a second thread has run one: only a worker can release them. */
struct meet_job {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t first;
    int threads_seen;
    struct timespec deadline; /* one for the whole job: a failure costs 10 s, not 10 s an item */
};

static void meet_item(void *arg, size_t i)
{
    struct meet_job *job = arg;
    (void)i;

    pthread_mutex_lock(&job->lock);
    if (job->threads_seen == 0) {
        job->first = pthread_self();
        job->threads_seen = 1;
    } else if (job->threads_seen == 1 && !pthread_equal(job->first, pthread_self())) {
        job->threads_seen = 2;
        pthread_cond_broadcast(&job->cond);
    }
    while (job->threads_seen < 2) {
        if (pthread_cond_timedwait(&job->cond, &job->lock, &job->deadline) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&job->lock);
}

static void workers_take_part(void **state)
{
    struct eng_decode_pool *dp = eng_decode_pool_start(2);
    struct meet_job job = {.threads_seen = 0};
    (void)state;

    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.cond, NULL);
    clock_gettime(CLOCK_REALTIME, &job.deadline);
    job.deadline.tv_sec += 10;
    eng_decode_pool_run(dp, meet_item, &job, ENG_DECODE_PARALLEL_MIN);
    assert_int_equal(job.threads_seen, 2);
    pthread_cond_destroy(&job.cond);
    pthread_mutex_destroy(&job.lock);
    eng_decode_pool_stop(dp);
}

static void default_follows_the_machine(void **state)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long want = cpus - 1;
    (void)state;

    want = want < 1                                ? 1
           : want > ENG_DECODE_THREADS_MAX_DEFAULT ? ENG_DECODE_THREADS_MAX_DEFAULT
                                                   : want;
    assert_int_equal(eng_decode_threads_default(), want);
}

/* Payloads of every kind: valid native events and pods, skipped ones, poison. */
static const char *const payloads[] = {
    "{\"resource\":{\"type\":\"workflow\",\"name\":\"a\",\"workspace\":\"w\"},"
    "\"status\":\"active\",\"runtime\":\"running\",\"time\":\"2026-11-28T10:00:00Z\","
    "\"message\":\"started\",\"labels\":{\"team\":\"data\",\"tier\":\"1\"}}",
    "{\"resource\":{\"type\":\"service\",\"name\":\"b\",\"workspace\":\"w\",\"owner\":\"o\"},"
    "\"runtime\":\"failed\",\"time\":\"2026-11-28T10:00:01Z\"}",
    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"namespace\":\"ns\",\"labels\":"
    "{\"app.kubernetes.io/name\":\"api\"}},\"status\":{\"phase\":\"Running\","
    "\"containerStatuses\":[{\"name\":\"main\",\"ready\":true,\"restartCount\":2,"
    "\"state\":{\"running\":{}}}]}}",
    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-2\",\"namespace\":\"ns\"}}",
    "{\"this is\": not json",
    "[1,2,3]",
    "{\"status\":\"active\"}",
    "{\"a\":\"x\",\"a\":\"y\"}",
    "{\"a\":\"\xc3\x28\"}",
    "{\"a\":\"x\x01y\"}",
    "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"status\":\"paused\"}",
    "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"time\":\"noon\","
    "\"status\":\"active\"}",
    "{\"resource\":{\"type\":\"w\",\"name\":\"x\\u0000y\",\"workspace\":\"w\"},"
    "\"status\":\"active\"}",
};

struct decode_slot {
    enum vg_decode_reason reason;
    char detail[256];
    struct vg_event ev;
};

struct decode_job {
    struct decode_slot *slots;
};

static void decode_item(void *arg, size_t i)
{
    struct decode_job *job = arg;
    const char *p = payloads[i % (sizeof(payloads) / sizeof(payloads[0]))];
    struct decode_slot *d = &job->slots[i];

    d->reason = vg_event_decode_ex(&d->ev, NULL, VG_FORMAT_AUTO, p, strlen(p), 1795860000000LL,
                                   d->detail, sizeof(d->detail));
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static void decode_on_workers_as_alone(void **state)
{
    const size_t n = 4000;
    struct decode_job alone = {calloc(n, sizeof(struct decode_slot))};
    struct decode_job workers = {calloc(n, sizeof(struct decode_slot))};
    struct eng_decode_pool *dp = eng_decode_pool_start(4);
    size_t differ = 0;
    bool seen[VG_DECODE__COUNT] = {false};
    size_t kinds = 0;
    size_t pods = 0;
    (void)state;

    eng_decode_pool_run(NULL, decode_item, &alone, n);
    eng_decode_pool_run(dp, decode_item, &workers, n);
    for (size_t i = 0; i < n; i++) {
        const struct decode_slot *a = &alone.slots[i];
        const struct decode_slot *w = &workers.slots[i];

        if (a->reason != w->reason || strcmp(a->detail, w->detail) != 0 ||
            !same_str(a->ev.id, w->ev.id) || strcmp(a->ev.status, w->ev.status) != 0 ||
            strcmp(a->ev.runtime, w->ev.runtime) != 0 || a->ev.time_ms != w->ev.time_ms ||
            !same_str(a->ev.message, w->ev.message) || a->ev.n_labels != w->ev.n_labels ||
            (a->ev.pod && (!w->ev.pod || a->ev.pod->n_containers != w->ev.pod->n_containers))) {
            if (differ++ < 5) {
                fprintf(stderr, "message %zu: %s (%s) alone, %s (%s) on the workers\n", i,
                        vg_decode_reason_name(a->reason), a->detail,
                        vg_decode_reason_name(w->reason), w->detail);
            }
        }
        kinds += seen[a->reason] ? 0 : 1;
        seen[a->reason] = true;
        pods += a->ev.pod ? 1 : 0;
        vg_event_fini(&alone.slots[i].ev);
        vg_event_fini(&workers.slots[i].ev);
    }
    eng_decode_pool_stop(dp);
    free(alone.slots);
    free(workers.slots);
    assert_int_equal(differ, 0);
    /* the table is what it says: events, pods, a skip and poison of many kinds */
    assert_true(seen[VG_DECODE_OK] && seen[VG_DECODE_SKIP_NO_NAME_LABEL] && pods > 0);
    assert_int_equal(kinds, 11);
}

/* decode.threads from `yaml` (NULL: no file); VG_OK or the error, errstr filled. */
static vg_err_t load_threads(const char *yaml, int *threads, char *errstr, size_t errstr_size)
{
    char path[] = "/tmp/vigil-decode-threads-XXXXXX";
    struct vg_config cfg;
    vg_err_t err;
    int fd = -1;

    if (yaml) {
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
        close(fd);
    }
    vg_config_init(&cfg);
    err = vg_config_load(&cfg, yaml ? path : NULL, errstr, errstr_size);
    *threads = cfg.decode.threads;
    vg_config_fini(&cfg);
    if (yaml) {
        unlink(path);
    }
    return err;
}

static void threads_config(void **state)
{
    static const struct {
        const char *yaml;
        const char *env; /* VIGIL_DECODE_THREADS; NULL: unset */
        vg_err_t err;
        int threads;
    } cases[] = {
        {NULL, NULL, VG_OK, VG_DECODE_THREADS_AUTO},
        {"decode:\n  limits: {max_depth: 8}\n", NULL, VG_OK, VG_DECODE_THREADS_AUTO},
        {"decode:\n  threads: 0\n", NULL, VG_OK, 0},
        {"decode:\n  threads: 3\n", NULL, VG_OK, 3},
        {"decode:\n  threads: 64\n", NULL, VG_OK, 64},
        {"decode:\n  threads: 65\n", NULL, VG_ERR_INVALID, 0},
        {"decode:\n  threads: -1\n", NULL, VG_ERR_INVALID, 0},
        {"decode:\n  threads: two\n", NULL, VG_ERR_INVALID, 0},
        {"decode:\n  threads: 3\n", "0", VG_OK, 0},
        {NULL, "2", VG_OK, 2},
    };
    int failed = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char errstr[256] = "";
        int threads = 0;
        vg_err_t err;

        if (cases[i].env) {
            setenv("VIGIL_DECODE_THREADS", cases[i].env, 1);
        } else {
            unsetenv("VIGIL_DECODE_THREADS");
        }
        err = load_threads(cases[i].yaml, &threads, errstr, sizeof(errstr));
        if (err != cases[i].err || (err == VG_OK && threads != cases[i].threads)) {
            fprintf(stderr, "case %zu: got %s threads %d (%s), want %s threads %d\n", i,
                    vg_err_name(err), threads, errstr, vg_err_name(cases[i].err), cases[i].threads);
            failed++;
        }
    }
    unsetenv("VIGIL_DECODE_THREADS");
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_item_once),
        cmocka_unit_test(workers_take_part),
        cmocka_unit_test(default_follows_the_machine),
        cmocka_unit_test(threads_config),
        cmocka_unit_test(decode_on_workers_as_alone),
    };

    vg_json_init(); /* as the binary does: cJSON's trees in each thread's arena */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
