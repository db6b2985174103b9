/*
 * End-to-end throughput: events/s from Kafka to Redis through `vigil run`,
 * reported beside the baseline of `kcat` consuming the same topic from the
 * same broker in the same run. Never a pass/fail: numbers only.
 *
 *   bench_e2e VIGIL_BIN [events] [resources] [partitions] [change-percent] [rules-path]
 *
 * change-percent: how many events change a Resource's runtime (100: every
 * event is a transition; 10: nine in ten are refreshes of
 * the current state, as pod watch streams mostly are).
 *
 * The mock broker keeps only ~5 MiB per partition: the topic is spread
 * over enough partitions and the watermarks are checked before measuring.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vigil/consumer.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

/* A run cycle; one cycle in a hundred ends in failed instead of succeeded (a page). */
static const char *const runtimes[] = {"pending", "running", "succeeded"};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long arg_or(int argc, char **argv, int i, long def)
{
    int64_t v;
    if (argc > i && vg_parse_i64(argv[i], &v) && v > 0) {
        return (long)v;
    }
    return def;
}

static int64_t applied_total(struct vg_state *st, const char *topic, int partitions)
{
    char errstr[256];
    int64_t total = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t off = -1;
        if (vg_state_applied_offset(st, topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return -1;
        }
        total += off + 1;
    }
    return total;
}

int main(int argc, char **argv)
{
    const char *vigil_bin;
    long events = arg_or(argc, argv, 2, 400000);
    long resources = arg_or(argc, argv, 3, 20000);
    int partitions = (int)arg_or(argc, argv, 4, 32);
    long change_pct = arg_or(argc, argv, 5, 100);
    /* bench/rules: transition monitors only; pass examples/rules to include durable timers */
    const char *rules_path = argc > 6 ? argv[6] : VIGIL_SOURCE_DIR "/bench/rules";
    long *step_of = NULL;
    char errstr[512];
    char *dir;
    char *topic = vg_asprintf("bench.events");
    struct vg_redis_child *redis = NULL;
    struct vg_mock_kafka *kafka = NULL;
    struct vg_producer *prod = NULL;
    struct vg_state *st = NULL;
    int64_t end = 0;
    int64_t t0, t1;
    double kcat_rate, vigil_rate;
    char *cmd;
    char *cfg;
    char *cfg_path;
    char *log_path;
    FILE *fp;
    pid_t pid;
    int64_t first_seen = -1, first_count = 0, last_count = 0, last_t = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_e2e VIGIL_BIN [events] [resources] [partitions]\n");
        return 2;
    }
    vigil_bin = argv[1];
    vg_json_init();
    dir = vg_asprintf("/tmp/vigil-bench-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (vg_redis_child_start(&redis, dir, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_start(&kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(kafka, topic, partitions, errstr, sizeof(errstr)) != VG_OK ||
        vg_producer_new(&prod, vg_mock_kafka_bootstraps(kafka), NULL, 0, errstr,
                        sizeof(errstr)) != VG_OK ||
        vg_state_connect(&st, vg_redis_child_url(redis), "bench", errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "setup: %s\n", errstr);
        return 1;
    }

    /* Produce: each Resource cycles pending -> running -> succeeded -> failed; an event
     * moves it one step with probability change_pct, else repeats its current runtime. */
    step_of = vg_calloc((size_t)resources, sizeof(*step_of));
    srand(42);
    for (long i = 0; i < events; i++) {
        long r = i % resources;
        long step;
        if (i >= resources && rand() % 100 < change_pct) {
            step_of[r]++;
        }
        step = step_of[r];
        char key[128];
        char json[512];
        char ts[40];
        int n;
        snprintf(key, sizeof(key), "workflow:v1:wf-%06ld:ws-%02ld", r, r % 16);
        vg_time_format_rfc3339(1795000000000LL + i, ts, sizeof(ts));
        n = snprintf(json, sizeof(json),
                     "{\"resource\":{\"type\":\"workflow\",\"name\":\"wf-%06ld\","
                     "\"workspace\":\"ws-%02ld\",\"version\":\"v1\",\"owner\":\"team-%ld\"},"
                     "\"status\":\"active\",\"runtime\":\"%s\",\"time\":\"%s\"}",
                     r, r % 16, r % 7,
                     step % 3 == 2 && (step * 7919 + r) % 100 == 0 ? "failed" : runtimes[step % 3],
                     ts);
        if (vg_producer_send(prod, topic, -1, key, strlen(key), json, (size_t)n, errstr,
                             sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "produce: %s\n", errstr);
            return 1;
        }
    }
    if (vg_producer_flush(prod, 120000, errstr, sizeof(errstr)) != VG_OK ||
        vg_kafka_topic_end(vg_mock_kafka_bootstraps(kafka), topic, 10000, &end, errstr,
                           sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "produce: %s\n", errstr);
        return 1;
    }
    if (end != events) {
        fprintf(stderr, "the mock broker holds %lld of %ld events: use more partitions\n",
                (long long)end, events);
        return 1;
    }

    /* Baseline: kcat consuming the whole topic. */
    cmd = vg_asprintf("kcat -C -q -e -o beginning -b %s -t %s -f '%%s\\n' > /dev/null",
                      vg_mock_kafka_bootstraps(kafka), topic);
    t0 = vg_mono_ms();
    if (system(cmd) != 0) {
        fprintf(stderr, "kcat failed (is kcat installed?)\n");
        return 1;
    }
    t1 = vg_mono_ms();
    kcat_rate = (double)events * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1);
    free(cmd);

    /* vigil run against the same broker and a real redis-server. */
    cfg_path = vg_asprintf("%s/vigil.yaml", dir);
    log_path = vg_asprintf("%s/vigil.log", dir);
    cfg = vg_asprintf("kafka:\n  brokers: %s\n  group: bench\n  topics: [%s]\n"
                      "redis:\n  url: %s\n  prefix: bench\n"
                      "rules: [%s]\nsinks:\n  console: {type: console}\n",
                      vg_mock_kafka_bootstraps(kafka), topic, vg_redis_child_url(redis),
                      rules_path);
    fp = fopen(cfg_path, "w");
    fputs(cfg, fp);
    fclose(fp);
    pid = fork();
    if (pid == 0) {
        freopen(log_path, "w", stderr);
        freopen("/dev/null", "w", stdout);
        execl(vigil_bin, vigil_bin, "run", "-c", cfg_path, (char *)NULL);
        _exit(127);
    }
    t0 = vg_mono_ms();
    for (;;) {
        int64_t now = vg_mono_ms();
        int64_t n = applied_total(st, topic, partitions);
        if (n > 0 && first_seen < 0) {
            first_seen = now;
            first_count = n;
        }
        if (n >= events) {
            last_count = n;
            last_t = now;
            break;
        }
        if (now - t0 > 600000) {
            fprintf(stderr, "vigil did not finish in 10 min (%lld applied)\n", (long long)n);
            kill(pid, SIGKILL);
            return 1;
        }
        sleep_ms(20);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* Where Redis spent its time: microseconds per command kind, per event applied. */
    {
        const char *sock = vg_redis_child_url(redis) + strlen("unix://");
        char *stats = vg_asprintf("redis-cli -s %s info commandstats | tr -d '\\r' | "
                                  "awk -F'[:,=]' '/^cmdstat_/ {u+=$5; printf \"    redis %%-10s "
                                  "%%9d calls %%8.2f us/call\\n\", substr($1,9), $3, $7} "
                                  "END {printf \"    redis total %%.2f us per event\\n\", u/%ld}'",
                                  sock, events);
        printf("  redis-server time (INFO commandstats):\n");
        fflush(stdout);
        if (system(stats) != 0) {
            fprintf(stderr, "redis-cli failed\n");
        }
        free(stats);
    }
    vigil_rate = (double)(last_count - first_count) * 1000.0 /
                 (double)(last_t - first_seen > 0 ? last_t - first_seen : 1);

    printf("bench_e2e: %ld events, %ld resources, %d partitions, %ld%% of events change "
           "the runtime\n",
           events, resources, partitions, change_pct);
    printf("  kcat consume (baseline)   %10.0f events/s\n", kcat_rate);
    printf("  vigil run (Kafka->Redis)  %10.0f events/s  (%.2fx of kcat; startup %lld ms "
           "excluded)\n",
           vigil_rate, vigil_rate / kcat_rate, (long long)(first_seen - t0));

    vg_state_destroy(st);
    vg_producer_destroy(prod);
    vg_mock_kafka_stop(kafka);
    vg_redis_child_stop(redis);
    cmd = vg_asprintf("rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup of %s failed\n", dir);
    }
    free(cmd);
    free(cfg);
    free(cfg_path);
    free(log_path);
    free(topic);
    free(dir);
    free(step_of);
    return 0;
}
