/*
 * Dispatcher throughput and latency: notifications/s through
 * `vigil run`'s dispatcher to a local webhook receiver that answers 200 at
 * once, and the delivery latency (p50/p99) from the outbox write to the
 * receiver. The bench writes pages straight into P:outbox (as the
 * pipeline's MULTI/EXEC would) on a private redis-server, and its receiver
 * (a small keep-alive HTTP/1.1 server here, one thread per connection)
 * notes when each notification id arrived. Numbers only, never asserts.
 *
 *   bench_dispatch VIGIL_BIN [burst-pages] [paced-rate-per-s] [paced-seconds] [results.tsv]
 *
 * With results.tsv, the numbers are also appended there as rows of
 * bench/run.sh's table (key, label, value, unit, ratio).
 *
 * burst: all pages written at once, time to the last arrival (throughput);
 * paced: a steady rate, latency without a queue in front of the sink.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_receiver.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define MAX_PAGES 200000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *written_us; /* by page number */
static int64_t *arrived_us;
static long n_arrived;

static int64_t mono_us(void)
{
    return vg_bench_mono_us();
}

static void sleep_us(int64_t us)
{
    vg_bench_sleep_us(us);
}

/* "Idempotency-Key: bench<n>-1" (n in hex) -> n, or -1. */
static long page_number(const char *head, size_t len)
{
    static const char key[] = "\r\nIdempotency-Key: bench";
    const char *p = NULL;

    for (size_t i = 0; i + sizeof(key) - 1 < len; i++) {
        if (memcmp(head + i, key, sizeof(key) - 1) == 0) {
            p = head + i + sizeof(key) - 1;
            break;
        }
    }
    if (!p) {
        return -1;
    }
    return strtol(p, NULL, 16);
}

static void on_request(void *arg, const char *head, size_t head_len, const char *body,
                       size_t body_len, int64_t at_us)
{
    long n = page_number(head, head_len);

    (void)arg;
    (void)body;
    (void)body_len;
    if (n >= 0 && n < MAX_PAGES) {
        pthread_mutex_lock(&mu);
        if (arrived_us[n] == 0) {
            arrived_us[n] = at_us;
            n_arrived++;
        }
        pthread_mutex_unlock(&mu);
    }
}

static char *page_body(long n)
{
    struct vg_page pg;
    char *json;

    memset(&pg, 0, sizeof(pg));
    pg.status = vg_strdup("firing");
    pg.incident.id = vg_asprintf("%016lx", n);
    pg.incident.monitor = vg_strdup("workflow-failed");
    pg.incident.severity = vg_strdup("high");
    pg.incident.summary = vg_asprintf("workflow w%ld failed in public", n);
    pg.incident.started_at_ms = 1795860000000;
    pg.resource.id = vg_asprintf("workflow:v1:w%ld:public", n);
    pg.resource.type = vg_strdup("workflow");
    pg.resource.name = vg_asprintf("w%ld", n);
    pg.resource.workspace = vg_strdup("public");
    pg.resource.version = vg_strdup("v1");
    pg.resource.owner = vg_strdup("");
    snprintf(pg.resource.runtime, sizeof(pg.resource.runtime), "failed");
    snprintf(pg.transition.field, sizeof(pg.transition.field), "runtime");
    snprintf(pg.transition.to, sizeof(pg.transition.to), "failed");
    pg.transition.at_ms = 1795860000000;
    json = vg_page_to_json(&pg);
    vg_page_fini(&pg);
    return json;
}

/* XADD pages [from, to) in one pipeline; note each write time. */
static void write_pages(redisContext *rc, const char *prefix, long from, long to)
{
    int64_t now = mono_us(); /* before the write: its round trip counts as latency */

    for (long n = from; n < to; n++) {
        char *body = page_body(n);
        char id[48];
        snprintf(id, sizeof(id), "bench%lx-1", n);
        redisAppendCommand(rc, "XADD %s:outbox * id %s sink hook pager bench body %s", prefix, id,
                           body);
        vg_free(body);
    }
    for (long n = from; n < to; n++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "bench_dispatch: redis write failed\n");
            exit(1);
        }
        freeReplyObject(r);
    }
    pthread_mutex_lock(&mu);
    for (long n = from; n < to; n++) {
        written_us[n] = now;
    }
    pthread_mutex_unlock(&mu);
}

static FILE *tsv;

static void tsv_row(const char *key, const char *label, double value, const char *unit)
{
    if (tsv) {
        fprintf(tsv, "%s\t%s\t%.2f\t%s\t-\n", key, label, value, unit);
        fflush(tsv);
    }
}

static long arrived(void)
{
    long n;

    pthread_mutex_lock(&mu);
    n = n_arrived;
    pthread_mutex_unlock(&mu);
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, const char *key, long from, long to)
{
    size_t n = 0;
    int64_t *lat = vg_calloc((size_t)(to - from) + 1, sizeof(int64_t));

    pthread_mutex_lock(&mu);
    for (long i = from; i < to; i++) {
        if (arrived_us[i]) {
            lat[n++] = arrived_us[i] - written_us[i];
        }
    }
    pthread_mutex_unlock(&mu);
    qsort(lat, n, sizeof(int64_t), cmp_i64);
    if (n > 0) {
        printf("%s: delivery latency outbox write -> receiver: p50 %.2f ms, p99 %.2f ms, max "
               "%.2f ms (%zu pages)\n",
               what, (double)lat[n / 2] / 1000.0, (double)lat[(n * 99) / 100] / 1000.0,
               (double)lat[n - 1] / 1000.0, n);
        if (key) {
            char k[96];

            snprintf(k, sizeof(k), "%s_p50_ms", key);
            tsv_row(k, "dispatch latency outbox -> receiver p50 (paced)",
                    (double)lat[n / 2] / 1000.0, "ms");
            snprintf(k, sizeof(k), "%s_p99_ms", key);
            tsv_row(k, "dispatch latency outbox -> receiver p99 (paced)",
                    (double)lat[(n * 99) / 100] / 1000.0, "ms");
        }
    }
    vg_free(lat);
}

int main(int argc, char **argv)
{
    long burst = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
    long rate = argc > 3 ? strtol(argv[3], NULL, 10) : 500;
    long secs = argc > 4 ? strtol(argv[4], NULL, 10) : 5;
    char errstr[512];
    char dir[] = "/tmp/vigil-bench-dispatch-XXXXXX";
    struct vg_redis_child *redis = NULL;
    redisContext *rc;
    struct timeval tv = {.tv_sec = 30};
    char *cfg_path;
    char *cfg;
    char *log;
    pid_t pid;
    int port;
    int64_t t0;
    int64_t t_last;
    long total;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_dispatch VIGIL_BIN [burst-pages] [paced-rate] [seconds]\n");
        return 2;
    }
    if (burst < 1 || rate < 1 || secs < 1 || burst + rate * secs > MAX_PAGES) {
        fprintf(stderr, "bench_dispatch: at most %d pages in all\n", MAX_PAGES);
        return 2;
    }
    if (argc > 5) {
        tsv = fopen(argv[5], "a");
        if (!tsv) {
            perror(argv[5]);
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    vg_json_init();
    written_us = vg_calloc(MAX_PAGES, sizeof(int64_t));
    arrived_us = vg_calloc(MAX_PAGES, sizeof(int64_t));
    if (!mkdtemp(dir) || vg_redis_child_start(&redis, dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench_dispatch: redis: %s\n", errstr);
        return 1;
    }
    port = vg_bench_receiver_start(on_request, NULL);
    if (port < 0) {
        fprintf(stderr, "bench_dispatch: receiver failed\n");
        return 1;
    }
    rc = redisConnectUnixWithTimeout(vg_redis_child_url(redis) + strlen("unix://"), tv);
    if (!rc || rc->err) {
        fprintf(stderr, "bench_dispatch: redis connect failed\n");
        return 1;
    }
    cfg_path = vg_asprintf("%s/vigil.yaml", dir);
    cfg = vg_asprintf("redis: {url: \"%s\", prefix: bench}\n"
                      "rules: []\n"
                      "sinks:\n"
                      "  hook: {type: webhook, url: \"http://127.0.0.1:%d/hook\"}\n",
                      vg_redis_child_url(redis), port);
    {
        FILE *fp = fopen(cfg_path, "w");
        if (!fp || fputs(cfg, fp) < 0 || fclose(fp) != 0) {
            fprintf(stderr, "bench_dispatch: cannot write %s\n", cfg_path);
            return 1;
        }
    }
    log = vg_asprintf("%s/vigil.log", dir);
    pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execl(argv[1], argv[1], "run", "-c", cfg_path, (char *)NULL);
        _exit(127);
    }
    /* Let vigil start (embedded Kafka, dispatcher): one page through first. */
    write_pages(rc, "bench", MAX_PAGES - 1, MAX_PAGES);
    t0 = vg_mono_ms();
    while (arrived() < 1 && vg_mono_ms() - t0 < 60000) {
        sleep_us(10000);
    }
    if (arrived() < 1) {
        fprintf(stderr, "bench_dispatch: vigil delivered nothing; see %s\n", log);
        kill(pid, SIGKILL);
        return 1;
    }

    /* Burst: throughput. */
    t0 = mono_us();
    write_pages(rc, "bench", 0, burst);
    while (arrived() < burst + 1 && mono_us() - t0 < 300 * 1000000LL) {
        sleep_us(1000);
    }
    t_last = 0;
    for (long i = 0; i < burst; i++) {
        t_last = arrived_us[i] > t_last ? arrived_us[i] : t_last;
    }
    total = arrived() - 1;
    printf("burst: %ld of %ld notifications delivered in %.2f s: %.0f notifications/s\n", total,
           burst, (double)(t_last - t0) / 1e6, (double)total / ((double)(t_last - t0) / 1e6));
    report("burst", NULL, 0, burst);
    tsv_row("dispatch.notifications_per_s", "dispatcher notifications/s to one receiver (burst)",
            (double)total / ((double)(t_last - t0) / 1e6), "notifications/s");

    /* Paced: latency at a steady rate. */
    {
        long from = burst;
        long n = rate * secs;
        int64_t start = mono_us();
        for (long i = 0; i < n; i++) {
            int64_t due = start + (int64_t)((double)i * 1e6 / (double)rate);
            int64_t now = mono_us();
            if (due > now) {
                sleep_us(due - now);
            }
            write_pages(rc, "bench", from + i, from + i + 1);
        }
        t0 = mono_us();
        while (arrived() < burst + n + 1 && mono_us() - t0 < 60 * 1000000LL) {
            sleep_us(1000);
        }
        char what[64];
        snprintf(what, sizeof(what), "paced %ld/s for %ld s", rate, secs);
        report(what, "dispatch.latency", from, from + n);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    redisFree(rc);
    vg_redis_child_stop(redis);
    {
        char *cmd[] = {(char *)"rm", (char *)"-rf", dir, NULL};
        pid_t rm = fork();
        if (rm == 0) {
            execvp(cmd[0], cmd);
            _exit(127);
        }
        waitpid(rm, NULL, 0);
    }
    vg_free(cfg_path);
    vg_free(cfg);
    vg_free(log);
    vg_free(written_us);
    vg_free(arrived_us);
    if (tsv) {
        fclose(tsv);
    }
    return 0;
}
