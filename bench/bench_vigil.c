/*
 * The end-to-end benchmark behind `make bench` (bench/run.sh): kcat on the
 * same topic (the denominator), the Redis ceiling, vigil's engine end to
 * end on two stream shapes and 10 / 1,000 / 10,000 monitors, latency at a
 * fixed offered load, peak RSS with every event a cache miss, Redis
 * commands and bytes per event, and callgrind instructions per event.
 * Numbers only, never a pass/fail. docs/performance.md explains each row.
 *
 *   bench_vigil all OUTDIR       everything; rows appended to OUTDIR/bench.tsv
 *   bench_vigil engine CONFIG EXPECT RESULT
 *                                the engine in process until EXPECT events are
 *                                done (0: until SIGTERM); what it counted into RESULT
 *
 * The parent owns the mock Kafka cluster, the producer, the receiver and a
 * private redis-server per run; each engine run is a child process of its
 * own (`engine`), so its peak RSS and its callgrind profile are the
 * engine's alone. Knobs: the BENCH_* environment variables (main()).
 */
#define _DEFAULT_SOURCE /* wait4: the peak RSS of one child, not of all children */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <valgrind/callgrind.h>

#include "bench_receiver.h"
#include "redis_cluster.h"
#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/engine.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define EVENT_BYTES 485
/* BENCH_CLUSTER: the Redis Cluster of the cluster rows, and the engine processes of the
 * scale-out row (one consumer group) */
#define CLUSTER_PRIMARIES 3
#define CLUSTER_INSTANCES 3
#define MAX_INSTANCES 8

/* ------------------------------------------------------------------ knobs */

struct knobs {
    long events;     /* main streams */
    long partitions; /* of every topic */
    long resources;  /* distinct Resources of the main streams */
    long workspaces;
    double zipf; /* popularity exponent */
    long monitors[3];
    long lat_rates[2]; /* events/s offered in the latency runs (0: none) */
    long lat_rate;     /* the current latency run's */
    long lat_seconds;
    bool lat_cold;   /* BENCH_LATENCY_START has "cold": the run starts with no Resource known */
    bool lat_steady; /* ... "steady": one event per Resource applied first, then the load */
    bool lat_warm;   /* the current latency run is the steady one */
    bool lat_kafka;  /* BENCH_LATENCY_START has "kafka": the same load to a bare consumer */
    /* the current latency run's key part ("cold", "steady", "kafka") and label part */
    const char *lat_key;
    const char *lat_label;
    long rss_events;  /* events, every one a new Resource */
    long cg_events;   /* events of the callgrind run */
    long timeout_s;   /* bound of each engine run */
    bool keep;        /* BENCH_KEEP: leave the scratch dir (redis AOFs, engine logs) */
    bool cluster;     /* BENCH_CLUSTER: the 1,000-monitor rows also on a Redis Cluster */
    const char *only; /* BENCH_ONLY: comma list of parts to run; NULL: all */
};

static long env_long(const char *name, long def)
{
    const char *s = getenv(name);
    int64_t v;

    if (!s || !*s) {
        return def;
    }
    if (!vg_parse_i64(s, &v) || v < 0) {
        fprintf(stderr, "bench: %s=%s is not a count; using %ld\n", name, s, def);
        return def;
    }
    return (long)v;
}

static double env_double(const char *name, double def)
{
    const char *s = getenv(name);
    char *end;
    double v;

    if (!s || !*s) {
        return def;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || v < 0) {
        fprintf(stderr, "bench: %s=%s is not a number; using %g\n", name, s, def);
        return def;
    }
    return v;
}

static void knobs_load(struct knobs *k)
{
    bool quick = env_long("BENCH_QUICK", 0) != 0;

    k->events = env_long("BENCH_EVENTS", quick ? 50000 : 1000000);
    k->partitions = env_long("BENCH_PARTITIONS", quick ? 32 : 192);
    k->resources = env_long("BENCH_RESOURCES", quick ? 5000 : 50000);
    k->workspaces = env_long("BENCH_WORKSPACES", 10000);
    k->zipf = env_double("BENCH_ZIPF", 0.5);
    k->monitors[0] = 10;
    k->monitors[1] = 1000;
    k->monitors[2] = 10000;
    k->lat_rates[0] = env_long("BENCH_LATENCY_RATE", quick ? 2000 : 10000);
    /* a load this machine's vigil sustains today, so the latency is not a backlog's age */
    k->lat_rates[1] = env_long("BENCH_LATENCY_RATE_LOW", quick ? 500 : 1000);
    k->lat_seconds = env_long("BENCH_LATENCY_SECONDS", quick ? 3 : 10);
    {
        const char *start = getenv("BENCH_LATENCY_START");

        if (!start || !*start) {
            start = "kafka,cold,steady";
        }
        k->lat_cold = strstr(start, "cold") != NULL;
        k->lat_steady = strstr(start, "steady") != NULL;
        k->lat_kafka = strstr(start, "kafka") != NULL;
    }
    k->rss_events = env_long("BENCH_RSS_EVENTS", quick ? 50000 : 1000000);
    k->cg_events = env_long("BENCH_CALLGRIND_EVENTS", quick ? 5000 : 20000);
    k->timeout_s = env_long("BENCH_RUN_TIMEOUT_S", 1800);
    k->keep = env_long("BENCH_KEEP", 0) != 0;
    k->cluster = env_long("BENCH_CLUSTER", 0) != 0;
    k->only = getenv("BENCH_ONLY");
    if (k->only && !*k->only) {
        k->only = NULL;
    }
    if (k->resources < 1) {
        k->resources = 1;
    }
    if (k->workspaces < 1) {
        k->workspaces = 1;
    }
    if (k->partitions < 1) {
        k->partitions = 1;
    }
}

/* ---------------------------------------------------------------- results */

static FILE *tsv;

/* One row of the table: key, label, value, unit, ratio to kcat ("-": none). */
static void row(const char *key, const char *label, double value, const char *unit, double ratio)
{
    char r[32] = "-";

    if (ratio >= 0) {
        snprintf(r, sizeof(r), "%.3f", ratio);
    }
    fprintf(tsv, "%s\t%s\t%.2f\t%s\t%s\n", key, label, value, unit, r);
    fflush(tsv);
    printf("  %-58s %14.2f %-14s %s\n", label, value, unit, r);
    fflush(stdout);
}

/* -------------------------------------------------------------- the stream */

enum { RT_PENDING, RT_RUNNING, RT_SUCCEEDED, RT_FAILED };
enum { ST_ACTIVE, ST_ERROR, ST_DELETED };
static const char *const rt_names[] = {"pending", "running", "succeeded", "failed"};
static const char *const st_names[] = {"active", "error", "deleted"};

/* Per mille of events (of Resources already seen); the rest are runtime steps. */
struct mix {
    int heartbeat; /* repeats the current state and message: changes nothing */
    int status;    /* active <-> error */
    int deploy;    /* a new revision: runtime back to pending */
    int del;       /* status deleted; the next event re-creates it */
};
/* The transition-heavy stream: ~56 % runtime steps, ~38 % heartbeats. */
static const struct mix mix_realistic = {380, 30, 20, 10};
/* 90 % of events change nothing. */
static const struct mix mix_quiet = {900, 10, 5, 5};

struct gen {
    long resources;
    long workspaces;
    bool distinct; /* event i is about Resource i: every event a new Resource */
    struct mix mix;
    uint64_t rng;
    double *cdf; /* Zipf popularity, by rank */
    unsigned char *rt;
    unsigned char *st;
    unsigned char *seen;
    unsigned *rev;
    long to_failed; /* events that turn a runtime failed (a page each without grouping) */
};

static uint64_t next_rand(struct gen *g)
{
    /* splitmix64: fixed seed, the same stream in every run */
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double next_unit(struct gen *g)
{
    return (double)(next_rand(g) >> 11) / 9007199254740992.0;
}

static void gen_init(struct gen *g, long resources, long workspaces, double zipf,
                     const struct mix *mix, bool distinct)
{
    double sum = 0;

    memset(g, 0, sizeof(*g));
    g->resources = resources;
    g->workspaces = workspaces;
    g->distinct = distinct;
    g->mix = *mix;
    g->rng = 42;
    g->rt = vg_calloc((size_t)resources, 1);
    g->st = vg_calloc((size_t)resources, 1);
    g->seen = vg_calloc((size_t)resources, 1);
    g->rev = vg_calloc((size_t)resources, sizeof(unsigned));
    if (!distinct) {
        g->cdf = vg_calloc((size_t)resources, sizeof(double));
        for (long k = 0; k < resources; k++) {
            sum += 1.0 / pow((double)(k + 1), zipf);
            g->cdf[k] = sum;
        }
        for (long k = 0; k < resources; k++) {
            g->cdf[k] /= sum;
        }
    }
}

static void gen_fini(struct gen *g)
{
    vg_free(g->cdf);
    vg_free(g->rt);
    vg_free(g->st);
    vg_free(g->seen);
    vg_free(g->rev);
}

static long pick_resource(struct gen *g, long i)
{
    double u;
    long lo = 0;
    long hi = g->resources - 1;

    if (g->distinct) {
        return i % g->resources;
    }
    u = next_unit(g);
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;

        if (g->cdf[mid] < u) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    /* spread the popular ranks over workspaces and partitions */
    return (long)(((uint64_t)lo * 2654435761ULL) % (uint64_t)g->resources);
}

static void step_runtime(struct gen *g, long r)
{
    switch (g->rt[r]) {
    case RT_PENDING:
        g->rt[r] = RT_RUNNING;
        break;
    case RT_RUNNING:
        /* a run ends; one in five crashes */
        g->rt[r] = next_rand(g) % 5 == 0 ? RT_FAILED : RT_SUCCEEDED;
        break;
    case RT_SUCCEEDED:
        /* the next run */
        g->rt[r] = RT_PENDING;
        g->rev[r]++;
        break;
    default:
        /* the restart after a crash */
        g->rt[r] = RT_PENDING;
        break;
    }
}

static const char filler[] =
    "scheduler=default queue=batch-standard attempt=1 image=registry.example.com/platform/"
    "runner:2026.11.3 node-pool=general-purpose-4 zone=eu-west-1b cpu_request=500m "
    "memory_request=1Gi trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 "
    "labels=app.kubernetes.io/part-of=ingestion,app.kubernetes.io/managed-by=iamgroot "
    "annotations=checksum/config=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 "
    "the rest of a log line that pads the event to its size "
    ".......................................";

/*
 * An event about Resource r: its key and JSON (~EVENT_BYTES) into the buffers.
 * `mark` (may be NULL) goes first in the message: the latency run's produce time.
 */
static int gen_event(struct gen *g, long r, int64_t time_ms, const char *mark, char *key,
                     size_t key_size, char *json, size_t json_size)
{
    int u = (int)(next_rand(g) % 1000);
    unsigned char old_rt = g->rt[r];
    const char *type = r % 10 < 8 ? "workflow" : r % 10 == 8 ? "service" : "job";
    char name[32];
    char ws[32];
    char ts[40];
    char msg_head[160];
    int base;
    int pad;

    if (!g->seen[r] || g->st[r] == ST_DELETED) {
        g->seen[r] = 1;
        g->st[r] = ST_ACTIVE;
        g->rt[r] = RT_PENDING;
        g->rev[r]++;
    } else if (u < g->mix.heartbeat) {
        /* nothing changes */
    } else if (u < g->mix.heartbeat + g->mix.status) {
        g->st[r] = g->st[r] == ST_ACTIVE ? ST_ERROR : ST_ACTIVE;
    } else if (u < g->mix.heartbeat + g->mix.status + g->mix.deploy) {
        g->rt[r] = RT_PENDING;
        g->rev[r]++;
    } else if (u < g->mix.heartbeat + g->mix.status + g->mix.deploy + g->mix.del) {
        g->st[r] = ST_DELETED;
    } else {
        step_runtime(g, r);
    }
    if (g->rt[r] == RT_FAILED && old_rt != RT_FAILED) {
        g->to_failed++;
    }
    snprintf(name, sizeof(name), "%s-%06ld", type, r);
    snprintf(ws, sizeof(ws), "ws-%05ld", r % g->workspaces);
    vg_time_format_rfc3339(time_ms, ts, sizeof(ts));
    snprintf(key, key_size, "%s:v1:%s:%s", type, name, ws);
    /* The message depends on the state only, so a heartbeat repeats it. */
    snprintf(msg_head, sizeof(msg_head),
             "%s%srevision %u %s on node ip-10-%ld-%ld-%ld: ", mark ? mark : "", mark ? " " : "",
             g->rev[r], rt_names[g->rt[r]], r % 7, r % 251, r % 13);
    base = snprintf(json, json_size,
                    "{\"resource\":{\"type\":\"%s\",\"name\":\"%s\",\"workspace\":\"%s\","
                    "\"version\":\"v1\",\"owner\":\"team-%02ld\"},\"status\":\"%s\","
                    "\"runtime\":\"%s\",\"time\":\"%s\",\"message\":\"%s\"}",
                    type, name, ws, r % 40, st_names[g->st[r]], rt_names[g->rt[r]], ts, msg_head);
    pad = EVENT_BYTES - base;
    if (pad < 0) {
        pad = 0;
    }
    if (pad > (int)sizeof(filler) - 1) {
        pad = (int)sizeof(filler) - 1;
    }
    return snprintf(json, json_size,
                    "{\"resource\":{\"type\":\"%s\",\"name\":\"%s\",\"workspace\":\"%s\","
                    "\"version\":\"v1\",\"owner\":\"team-%02ld\"},\"status\":\"%s\","
                    "\"runtime\":\"%s\",\"time\":\"%s\",\"message\":\"%s%.*s\"}",
                    type, name, ws, r % 40, st_names[g->st[r]], rt_names[g->rt[r]], ts, msg_head,
                    pad, filler);
}

/* Event i of the stream: about a Resource picked by popularity (see gen_event). */
static int gen_next(struct gen *g, long i, int64_t time_ms, const char *mark, char *key,
                    size_t key_size, char *json, size_t json_size)
{
    return gen_event(g, pick_resource(g, i), time_ms, mark, key, key_size, json, json_size);
}

/* ------------------------------------------------------------ the engine */

struct child_run {
    long long expect;
    int64_t stall_us;     /* no progress this long after the first applied event: give up */
    long long last_done;  /* progress ... */
    int64_t last_move_us; /* ... and when it last moved */
    bool stalled;
    int64_t t_first_us;
    long long n_first;
    int64_t t_last_us;
    bool done;
};

static long long done_count(const struct vg_engine_stats *s)
{
    return s->applied + s->invalid + s->skipped;
}

static void on_idle(struct vg_engine *eng, void *arg)
{
    struct child_run *cr = arg;
    struct vg_engine_stats s;
    int64_t now = vg_bench_mono_us();

    vg_engine_stats(eng, &s);
    if (cr->t_first_us == 0 && s.applied > 0) {
        cr->t_first_us = now;
        cr->n_first = done_count(&s);
    }
    if (cr->expect > 0 && !cr->done && done_count(&s) >= cr->expect) {
        cr->t_last_us = now;
        cr->done = true;
        vg_engine_request_stop(eng);
    }
    if (done_count(&s) != cr->last_done || cr->t_first_us == 0) {
        cr->last_done = done_count(&s);
        cr->last_move_us = now;
    } else if (cr->expect > 0 && !cr->done && now - cr->last_move_us > cr->stall_us) {
        fprintf(stderr, "bench engine: stalled at %lld of %lld events for %lld s; stopping\n",
                cr->last_done, cr->expect, (long long)(cr->stall_us / 1000000));
        cr->stalled = true;
        cr->done = true;
        vg_engine_request_stop(eng);
    }
}

/*
 * This process's own peak RSS (VmHWM, kB; -1 when unknown). Not wait4's
 * ru_maxrss: Linux carries the forked copy of the bench (which holds the
 * produced events) through exec into it, so that measured the bench.
 */
static long own_peak_kb(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (fp && fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            char *end;

            kb = strtol(line + 6, &end, 10);
            if (end == line + 6) {
                kb = -1;
            }
            break;
        }
    }
    if (fp) {
        fclose(fp);
    }
    return kb;
}

/* `bench_vigil engine CONFIG EXPECT RESULT`: one engine run, in this process only. */
static int engine_main(int argc, char **argv)
{
    struct vg_engine_options opt = {.signals = true, .idle = on_idle};
    struct child_run cr = {0};
    struct vg_engine_stats s;
    struct vg_engine *eng = NULL;
    struct vg_config cfg;
    char errstr[1024];
    int64_t expect;
    vg_err_t err;
    FILE *fp;

    if (argc < 5 || !vg_parse_i64(argv[3], &expect)) {
        fprintf(stderr, "usage: bench_vigil engine CONFIG EXPECT RESULT\n");
        return 2;
    }
    cr.expect = expect;
    cr.stall_us = (int64_t)env_long("BENCH_STALL_S", 120) * 1000000;
    /* BENCH_DEBUG=consumer: the `--debug consumer` lines, in the run's engine.log (BENCH_KEEP) */
    if (getenv("BENCH_DEBUG") && *getenv("BENCH_DEBUG")) {
        if (vg_log_check_debug(getenv("BENCH_DEBUG"), errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench engine: BENCH_DEBUG: %s\n", errstr);
            return 2;
        }
        vg_log_enable_debug(getenv("BENCH_DEBUG"));
    }
    opt.idle_arg = &cr;
    vg_config_init(&cfg);
    if (vg_config_load_file(&cfg, argv[2], errstr, sizeof(errstr)) != VG_OK ||
        vg_engine_start(&eng, &cfg, &opt, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench engine: %s\n", errstr);
        vg_config_fini(&cfg);
        return 1;
    }
    /* Under callgrind (--instr-atstart=no): count the run, not the start-up. */
    CALLGRIND_START_INSTRUMENTATION;
    err = vg_engine_run(eng);
    CALLGRIND_STOP_INSTRUMENTATION;
    vg_engine_stats(eng, &s);
    vg_engine_destroy(eng);
    vg_config_fini(&cfg);
    fp = fopen(argv[4], "w");
    if (!fp) {
        perror(argv[4]);
        return 1;
    }
    fprintf(fp,
            "err %d\nconsumed %lld\napplied %lld\ninvalid %lld\nskipped %lld\ntransitions %lld\n"
            "pages %lld\ndelivered %lld\nn_first %lld\nt_first_us %lld\nt_last_us %lld\n"
            "stalled %d\ndone %lld\nhwm_kb %ld\n",
            (int)err, s.consumed, s.applied, s.invalid, s.skipped, s.transitions, s.pages,
            s.delivered, cr.n_first, (long long)cr.t_first_us, (long long)cr.t_last_us,
            cr.stalled ? 1 : 0, done_count(&s), own_peak_kb());
    fclose(fp);
    return err == VG_OK ? 0 : 1;
}

/* A "key value" line of a result file, -1 when absent. */
static double result_value(const char *text, const char *key)
{
    size_t kl = strlen(key);

    for (const char *p = text; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            return strtod(p + kl + 1, NULL);
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct vg_buf b = {0};
    char chunk[4096];
    size_t n;

    vg_buf_puts(&b, "");
    if (!fp) {
        return vg_buf_steal(&b);
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        vg_buf_append(&b, chunk, n);
    }
    fclose(fp);
    return vg_buf_steal(&b);
}

static bool write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (!fp) {
        return false;
    }
    if (fputs(text, fp) < 0) {
        fclose(fp);
        return false;
    }
    return fclose(fp) == 0;
}

/* ------------------------------------------------------------ the parent */

struct bench {
    struct knobs k;
    const char *outdir;
    char *self; /* this executable */
    char *dir;  /* scratch */
    int port;   /* the receiver */
    struct vg_mock_kafka *kafka;
    struct vg_producer *prod;
    char *topic;
    long produced;
    int run_no;
    redisContext *rc; /* the current engine run's redis-server (the latency warm-up reads it) */
    /* the steady latency run, after its warm-up: AOF size and rewrites, events applied */
    double warm_aof;
    double warm_rewrites;
    long long warm_applied;
    /* redis.layout of the engine runs now (NULL: vigil's default); the stream shapes run once
     * per layout of BENCH_LAYOUTS ("single,partitioned"; unset: the default only) */
    const char *layout;
    bool on_cluster; /* the engine runs now use a fresh Redis Cluster (BENCH_CLUSTER) */
    int instances;   /* engine processes per run, in one consumer group (1 but the scale-out row) */
};

/* Latency run: page arrival minus the produce time carried in the message ("t=<us>"). */
static int64_t *lat_us;
static size_t n_lat;
static size_t lat_cap;

static void on_page(void *arg, const char *head, size_t head_len, const char *body, size_t body_len,
                    int64_t at_us)
{
    static const char key[] = "\"summary\":\"t=";
    const char *p;

    (void)arg;
    (void)head;
    (void)head_len;
    (void)body_len;
    if (!lat_us) {
        return;
    }
    /* one page per incident (no grouping): its summary is the failing event's message */
    p = strstr(body, key);
    if (p) {
        int64_t sent = strtoll(p + sizeof(key) - 1, NULL, 10);

        if (sent > 0 && n_lat < lat_cap) {
            lat_us[n_lat++] = at_us - sent;
        }
    }
}

static vg_err_t kafka_start(struct bench *b, const char *name, char *errstr, size_t errstr_size)
{
    static const struct vg_kv props[] = {{(char *)"linger.ms", (char *)"1"}};
    vg_err_t err;

    vg_free(b->topic);
    b->topic = vg_asprintf("bench.%s", name);
    b->produced = 0;
    err = vg_mock_kafka_start(&b->kafka, 1, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_mock_kafka_create_topic(b->kafka, b->topic, (int)b->k.partitions, errstr,
                                         errstr_size);
    }
    if (err == VG_OK) {
        err = vg_mock_kafka_create_topic(b->kafka, "vigil.dlq", 1, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = vg_producer_new(&b->prod, vg_mock_kafka_bootstraps(b->kafka), props, 1, errstr,
                              errstr_size);
    }
    return err;
}

static void kafka_stop(struct bench *b)
{
    vg_producer_destroy(b->prod);
    b->prod = NULL;
    vg_mock_kafka_stop(b->kafka);
    b->kafka = NULL;
}

static bool produce(struct bench *b, struct gen *g, long n)
{
    char errstr[512];
    char key[160];
    char json[1024];
    int64_t t0 = vg_now_ms() - n; /* event times increase, end about now */
    int64_t started = vg_mono_ms();

    for (long i = 0; i < n; i++) {
        int len = gen_next(g, i, t0 + i, NULL, key, sizeof(key), json, sizeof(json));

        if (vg_producer_send(b->prod, b->topic, -1, key, strlen(key), json, (size_t)len, errstr,
                             sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: produce: %s\n", errstr);
            return false;
        }
    }
    if (vg_producer_flush(b->prod, 300000, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: produce: %s\n", errstr);
        return false;
    }
    b->produced += n;
    printf("  produced %ld events to %s (%ld partitions) in %.1f s\n", n, b->topic, b->k.partitions,
           (double)(vg_mono_ms() - started) / 1000.0);
    fflush(stdout);
    return true;
}

/*
 * kcat reading the whole topic (a simple consumer: no group, no join),
 * its offsets piped here. The rate runs from the first line to the line
 * `produced - tail`: the last few hundred lines sit in kcat's stdio
 * buffer until it exits, so they would count its shutdown. It also
 * proves the mock broker kept every message (it drops old data silently).
 */
static double kcat_once(struct bench *b)
{
    long tail = b->produced > 20000 ? 2000 : b->produced / 10;
    char *cmd = vg_asprintf("kcat -C -q -e -o beginning -b %s -t %s -f '%%o\\n' "
                            "-X queued.min.messages=1000000 "
                            "-X queued.max.messages.kbytes=1048576 -X fetch.wait.max.ms=10 "
                            "2>%s/kcat.err",
                            vg_mock_kafka_bootstraps(b->kafka), b->topic, b->dir);
    FILE *fp = popen(cmd, "r");
    char line[64];
    long n = 0;
    long n_cut = 0;
    int64_t t_first = 0;
    int64_t t_cut = 0;

    if (!fp) {
        fprintf(stderr, "bench: %s: %s\n", cmd, strerror(errno));
        vg_free(cmd);
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        n++;
        if (n == 1) {
            t_first = vg_bench_mono_us();
        }
        if (n <= b->produced - tail) {
            t_cut = vg_bench_mono_us();
            n_cut = n;
        }
    }
    if (pclose(fp) != 0 || n != b->produced) {
        fprintf(stderr,
                "bench: kcat read %ld of %ld messages (exit or retention: the mock broker keeps "
                "~5 MiB per partition; raise BENCH_PARTITIONS or lower BENCH_ZIPF)\n",
                n, b->produced);
        vg_free(cmd);
        return -1;
    }
    vg_free(cmd);
    if (t_cut <= t_first) {
        return -1;
    }
    return (double)(n_cut - 1) * 1e6 / (double)(t_cut - t_first);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/*
 * The denominator: the median of three kcat reads (a shared machine's
 * noise moves a single read by 2x); the spread goes into the table.
 */
static double kcat_rate(struct bench *b, double *spread_pct)
{
    double r[3];

    for (int i = 0; i < 3; i++) {
        r[i] = kcat_once(b);
        if (r[i] <= 0) {
            return -1;
        }
    }
    printf("  kcat reads: %.0f %.0f %.0f events/s\n", r[0], r[1], r[2]);
    qsort(r, 3, sizeof(double), cmp_double);
    *spread_pct = (r[2] - r[0]) * 100.0 / r[1];
    return r[1];
}

static redisContext *redis_connect(const struct vg_redis_child *rc)
{
    struct timeval tv = {.tv_sec = 30};
    redisContext *c = redisConnectUnixWithTimeout(vg_redis_child_url(rc) + strlen("unix://"), tv);

    if (!c || c->err) {
        fprintf(stderr, "bench: cannot connect to redis-server\n");
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    return c;
}

/* Commands executed (INFO excluded) and bytes received by redis-server so far. */
static void redis_counters(redisContext *c, double *cmds, double *bytes)
{
    redisReply *reply = redisCommand(c, "INFO commandstats");

    *cmds = 0;
    *bytes = 0;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        for (const char *p = strstr(reply->str, "cmdstat_"); p; p = strstr(p + 1, "cmdstat_")) {
            const char *calls = strstr(p, ":calls=");

            if (calls && strncmp(p, "cmdstat_info:", 13) != 0) {
                *cmds += strtod(calls + 7, NULL);
            }
        }
    }
    freeReplyObject(reply);
    reply = redisCommand(c, "INFO stats");
    if (reply && reply->type == REDIS_REPLY_STRING) {
        const char *p = strstr(reply->str, "total_net_input_bytes:");

        if (p) {
            *bytes = strtod(p + strlen("total_net_input_bytes:"), NULL);
        }
    }
    freeReplyObject(reply);
}

/* redis-server's CPU time so far (INFO cpu: user + sys of the whole process), in µs. */
static double redis_cpu_us(redisContext *c)
{
    redisReply *reply = redisCommand(c, "INFO cpu");
    double us = 0;

    if (reply && reply->type == REDIS_REPLY_STRING) {
        const char *u = strstr(reply->str, "used_cpu_user:");
        const char *s = strstr(reply->str, "used_cpu_sys:");

        if (u && s) {
            us = (strtod(u + strlen("used_cpu_user:"), NULL) +
                  strtod(s + strlen("used_cpu_sys:"), NULL)) *
                 1e6;
        }
    }
    freeReplyObject(reply);
    return us;
}

/*
 * Where Redis's time went, per command kind (INFO commandstats of the run's
 * fresh redis-server, so no "before" is needed beyond the few setup
 * commands): calls and µs per applied event and µs per call, printed under
 * the row. EXEC's and EVAL's µs include the commands they ran (which are
 * also counted under their own names), so the kinds do not add up.
 */
static void redis_commandstats_print(redisContext *c, double applied)
{
    redisReply *reply = redisCommand(c, "INFO commandstats");

    if (reply && reply->type == REDIS_REPLY_STRING && applied > 0) {
        printf("  Redis commandstats of the run (per applied event; EXEC and EVAL include what "
               "they ran):\n");
        for (const char *p = strstr(reply->str, "cmdstat_"); p; p = strstr(p + 1, "cmdstat_")) {
            const char *name = p + strlen("cmdstat_");
            const char *colon = strchr(name, ':');
            const char *calls = strstr(p, ":calls=");
            const char *usec = strstr(p, ",usec=");
            double n_calls;
            double n_usec;

            if (!colon || !calls || !usec) {
                break;
            }
            n_calls = strtod(calls + strlen(":calls="), NULL);
            n_usec = strtod(usec + strlen(",usec="), NULL);
            printf("    %-18.*s calls/event %8.4f  us/call %8.2f  us/event %8.2f\n",
                   (int)(colon - name), name, n_calls / applied, n_calls > 0 ? n_usec / n_calls : 0,
                   n_usec / applied);
        }
    }
    freeReplyObject(reply);
}

/*
 * BENCH_REDIS_CONFIG="appendfsync everysec;auto-aof-rewrite-percentage 0":
 * CONFIG SET on each run's redis-server before the engine starts, to
 * compare settings against the embedded defaults (state_child.c).
 */
static bool redis_config_set(redisContext *c, const char *list)
{
    char *copy;
    bool ok = true;

    if (!list || !*list) {
        return true;
    }
    copy = vg_strdup(list);
    for (char *item = copy; item && ok;) {
        char *next = strchr(item, ';');
        char *sp;
        redisReply *reply;

        if (next) {
            *next++ = '\0';
        }
        sp = strchr(item, ' ');
        if (!sp) {
            fprintf(stderr, "bench: BENCH_REDIS_CONFIG: \"%s\" is not \"name value\"\n", item);
            ok = false;
            break;
        }
        *sp = '\0';
        reply = redisCommand(c, "CONFIG SET %s %s", item, sp + 1);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "bench: CONFIG SET %s %s: %s\n", item, sp + 1,
                    reply ? reply->str : c->errstr);
            ok = false;
        }
        freeReplyObject(reply);
        item = next;
    }
    vg_free(copy);
    return ok;
}

/* The AOF's size and how many rewrites redis-server has done (INFO persistence). */
static void redis_aof(redisContext *c, double *size, double *rewrites)
{
    redisReply *reply = redisCommand(c, "INFO persistence");

    *size = 0;
    *rewrites = 0;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        const char *p = strstr(reply->str, "aof_current_size:");
        const char *q = strstr(reply->str, "aof_rewrites:");

        if (p) {
            *size = strtod(p + strlen("aof_current_size:"), NULL);
        }
        if (q) {
            *rewrites = strtod(q + strlen("aof_rewrites:"), NULL);
        }
    }
    freeReplyObject(reply);
}

/*
 * Redis's own latency monitor (latency runs: threshold 1 ms): the worst
 * `aof-fsync-always` and `command` events since the last LATENCY RESET,
 * in ms (0 when none passed the threshold).
 */
static void redis_latency_worst(redisContext *c, double *fsync_ms, double *command_ms)
{
    redisReply *reply = redisCommand(c, "LATENCY LATEST");

    *fsync_ms = 0;
    *command_ms = 0;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[3]->type != REDIS_REPLY_INTEGER) {
            continue;
        }
        if (strcmp(e->element[0]->str, "aof-fsync-always") == 0) {
            *fsync_ms = (double)e->element[3]->integer;
        } else if (strcmp(e->element[0]->str, "command") == 0) {
            *command_ms = (double)e->element[3]->integer;
        }
    }
    freeReplyObject(reply);
}

/*
 * The rules: two broad monitors (`runtime to failed`, `status to error`)
 * and the rest one workspace each; one pager with group_by: [monitor]
 * to the receiver. With `latency`: only `runtime to failed`, a pager
 * without grouping, summary = the event's message (its produce time).
 */
static char *write_rules(struct bench *b, long monitors, bool latency)
{
    char *path = vg_asprintf("%s/rules-%ld%s.yaml", b->dir, monitors, latency ? "-lat" : "");
    struct vg_buf y = {0};
    bool ok;

    vg_buf_puts(&y, "monitors:\n"
                    "  - name: runtime-failed\n"
                    "    when: {runtime: {to: failed}}\n"
                    "    severity: high\n");
    if (latency) {
        vg_buf_puts(&y, "    summary: \"{{resource.message}}\"\n"
                        "pagers:\n"
                        "  - name: now\n"
                        "    sinks: [hook]\n"
                        "    send_resolved: false\n");
    } else {
        vg_buf_puts(&y, "  - name: status-error\n"
                        "    when: {status: {to: error}}\n"
                        "    severity: critical\n");
        for (long i = 2; i < monitors; i++) {
            vg_buf_printf(&y,
                          "  - name: ws-%05ld-failed\n"
                          "    match: {workspace: ws-%05ld}\n"
                          "    when: {runtime: {to: failed}}\n"
                          "    severity: low\n",
                          i - 2, i - 2);
        }
        vg_buf_puts(&y, "pagers:\n"
                        "  - name: by-monitor\n"
                        "    sinks: [hook]\n"
                        "    group_by: [monitor]\n");
    }
    ok = write_text(path, y.data);
    vg_buf_fini(&y);
    if (!ok) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        vg_free(path);
        return NULL;
    }
    return path;
}

struct run_result {
    bool ok;
    double rate; /* events/s, first applied to last */
    double cmds_per_event;
    double bytes_per_event;
    double rss_mb; /* the engine process's peak */
    bool stalled;  /* stopped making progress: `done` of what was produced */
    double done;
    double pages;
    double transitions;
    double applied;
    double aof_growth; /* bytes; meaningless when aof_rewrites > 0 */
    double aof_rewrites;
    double aof_end; /* AOF size and rewrites at the end (INFO persistence) */
    double aof_rewrites_end;
    double fsync_max_ms;   /* LATENCY LATEST (latency runs): the slowest `appendfsync always` */
    double command_max_ms; /* ... and the slowest command */
    double redis_cpu_us_per_event; /* INFO cpu used_cpu_user + used_cpu_sys, all nodes */
    double redis_cpu_us_busiest;   /* ... of the node that spent the most */
    int nodes;                     /* Redis nodes of the run */
    int instances;                 /* engine processes in the group */
    double rate_window;            /* instances > 1: events/s from the first applied event */
    double t_all_us; /* instances > 1: from the first instance's first event to the last's */
};

/*
 * The Redis of one engine run: a fresh private redis-server (vg_redis_child: unix socket, the
 * embedded defaults), or with b->on_cluster a fresh Redis Cluster of CLUSTER_PRIMARIES
 * primaries on 127.0.0.1 (the tests' fixture, tests/support/redis_cluster.c), one raw
 * connection per node for the counters.
 */
struct backend {
    struct vg_redis_child *redis;
    struct vg_test_cluster cluster;
    bool is_cluster;
    size_t n; /* nodes, and connections in c[] */
    redisContext *c[VG_TEST_CLUSTER_MAX_NODES];
    char url[96];
};

/*
 * The persistence of the embedded redis-server (state/state_child.c starts it with these
 * flags), set on every cluster node so that the two kinds of run differ only in the cluster:
 * TCP instead of a unix socket, and the keys spread over the primaries.
 */
#define CLUSTER_PERSISTENCE                                                                        \
    "appendonly yes;appendfsync always;auto-aof-rewrite-min-size 536870912;"                       \
    "auto-aof-rewrite-percentage 100;aof-use-rdb-preamble yes"

static void backend_stop(struct backend *be)
{
    for (size_t i = 0; i < be->n; i++) {
        if (be->c[i]) {
            redisFree(be->c[i]);
        }
    }
    be->n = 0;
    vg_redis_child_stop(be->redis);
    be->redis = NULL;
    if (be->is_cluster) {
        vg_test_cluster_stop(&be->cluster);
        be->is_cluster = false;
    }
}

static bool backend_start(struct bench *b, struct backend *be, const char *rdir)
{
    char errstr[512];
    int64_t t0 = vg_bench_mono_us();

    memset(be, 0, sizeof(*be));
    if (!b->on_cluster) {
        if (vg_redis_child_start(&be->redis, rdir, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: redis-server in %s: %s\n", rdir, errstr);
            return false;
        }
        snprintf(be->url, sizeof(be->url), "%s", vg_redis_child_url(be->redis));
        be->c[0] = redis_connect(be->redis);
        be->n = 1;
        return be->c[0] != NULL;
    }
    if (vg_test_cluster_start(&be->cluster, "bench-cluster", CLUSTER_PRIMARIES, 0) != 0) {
        fprintf(stderr, "bench: the Redis Cluster did not start (above)\n");
        return false;
    }
    be->is_cluster = true;
    snprintf(be->url, sizeof(be->url), "%s", vg_test_cluster_url(&be->cluster, 0));
    for (size_t i = 0; i < be->cluster.n; i++) {
        be->c[i] = vg_test_cluster_connect(&be->cluster, i);
        be->n++;
        if (!be->c[i]) {
            fprintf(stderr, "bench: cluster node %zu does not answer\n", i);
            return false;
        }
        if (!redis_config_set(be->c[i], CLUSTER_PERSISTENCE)) {
            return false;
        }
    }
    printf("  Redis Cluster of %zu primaries on 127.0.0.1 up in %.1f s\n", be->n,
           (double)(vg_bench_mono_us() - t0) / 1e6);
    fflush(stdout);
    return true;
}

/* The counters below summed over every node of the run's Redis. */
static void backend_counters(const struct backend *be, double *cmds, double *bytes)
{
    *cmds = 0;
    *bytes = 0;
    for (size_t i = 0; i < be->n; i++) {
        double c;
        double by;

        redis_counters(be->c[i], &c, &by);
        *cmds += c;
        *bytes += by;
    }
}

static void backend_aof(const struct backend *be, double *size, double *rewrites)
{
    *size = 0;
    *rewrites = 0;
    for (size_t i = 0; i < be->n; i++) {
        double s;
        double r;

        redis_aof(be->c[i], &s, &r);
        *size += s;
        *rewrites += r;
    }
}

/* The CPU time of every node (per_node[i]) and their sum, in µs. */
static double backend_cpu_us(const struct backend *be, double *per_node)
{
    double sum = 0;

    for (size_t i = 0; i < be->n; i++) {
        per_node[i] = redis_cpu_us(be->c[i]);
        sum += per_node[i];
    }
    return sum;
}

/*
 * Where each partition's applied offset lives, to see the topic drained while several
 * engine processes share it: the `single` layout's one hash, or with `partitioned` one hash
 * per partition (`bench:{<topic>/<p>}:offsets`) on the node that owns its slot.
 */
struct offsets_map {
    long n;
    char **keys;
    char **fields;
    int *node;
};

static void offsets_map_init(struct offsets_map *om, const struct bench *b,
                             const struct backend *be)
{
    bool scoped = b->layout && strcmp(b->layout, "partitioned") == 0;

    memset(om, 0, sizeof(*om));
    om->n = b->k.partitions;
    om->keys = vg_calloc((size_t)om->n, sizeof(*om->keys));
    om->fields = vg_calloc((size_t)om->n, sizeof(*om->fields));
    om->node = vg_calloc((size_t)om->n, sizeof(*om->node));
    for (long p = 0; p < om->n; p++) {
        om->fields[p] = vg_asprintf("%s/%ld", b->topic, p);
        om->keys[p] = scoped ? vg_asprintf("bench:{%s/%ld}:offsets", b->topic, p)
                             : vg_strdup(be->is_cluster ? "{bench}:offsets" : "bench:offsets");
        om->node[p] = be->is_cluster ? vg_test_cluster_key_owner(&be->cluster, om->keys[p]) : 0;
    }
}

static void offsets_map_fini(struct offsets_map *om)
{
    for (long p = 0; p < om->n; p++) {
        vg_free(om->keys[p]);
        vg_free(om->fields[p]);
    }
    vg_free(om->keys);
    vg_free(om->fields);
    vg_free(om->node);
}

/*
 * Events applied in the run's Redis: the sum of (applied offset + 1) over the partitions,
 * one pipelined HGET per partition on its node; -1 when a node does not answer. *calls
 * grows by the commands sent, which the run's counters then leave out.
 */
static long long offsets_applied(const struct offsets_map *om, const struct backend *be,
                                 double *calls)
{
    long long total = 0;
    bool ok = true;

    for (size_t i = 0; i < be->n; i++) {
        for (long p = 0; p < om->n; p++) {
            if (om->node[p] == (int)i) {
                redisAppendCommand(be->c[i], "HGET %s %s", om->keys[p], om->fields[p]);
                *calls += 1;
            }
        }
        for (long p = 0; p < om->n; p++) {
            redisReply *reply = NULL;
            int64_t off;

            if (om->node[p] != (int)i) {
                continue;
            }
            if (redisGetReply(be->c[i], (void **)&reply) != REDIS_OK || !reply) {
                return -1; /* the context is dead: the run fails */
            }
            if (reply->type == REDIS_REPLY_STRING && vg_parse_i64(reply->str, &off)) {
                total += off + 1;
            } else if (reply->type != REDIS_REPLY_NIL) {
                ok = false;
            }
            freeReplyObject(reply);
        }
    }
    return ok ? total : -1;
}

/* Start one engine process on `cfg_path` (under callgrind when valgrind_out); its pid or -1. */
static pid_t engine_spawn(const struct bench *b, const char *cfg_path, long long expect,
                          const char *result_path, const char *log_path, const char *valgrind_out,
                          const char *instance)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        char nbuf[32];
        FILE *f = freopen(log_path, "w", stderr);

        (void)f;
        if (instance) {
            setenv("VIGIL_INSTANCE", instance, 1); /* the dispatcher's name in the outbox group */
        }
        snprintf(nbuf, sizeof(nbuf), "%lld", expect);
        if (valgrind_out) {
            char *out_opt = vg_asprintf("--callgrind-out-file=%s", valgrind_out);

            execlp("valgrind", "valgrind", "--tool=callgrind", "--instr-atstart=no", out_opt,
                   b->self, "engine", cfg_path, nbuf, result_path, (char *)NULL);
        } else {
            execl(b->self, b->self, "engine", cfg_path, nbuf, result_path, (char *)NULL);
        }
        _exit(127);
    }
    if (pid < 0) {
        perror("fork");
    }
    return pid;
}

/* Wait for `pid` until the run's deadline, then SIGKILL it; its status (-1: killed). */
static int engine_wait(const struct bench *b, pid_t pid, int64_t deadline_ms, struct rusage *ru,
                       const char *log_path)
{
    int status = 0;

    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, ru);

        if (w == pid) {
            return status;
        }
        if (vg_mono_ms() > deadline_ms) {
            fprintf(stderr, "bench: the engine run took more than %ld s; killed (see %s)\n",
                    b->k.timeout_s, log_path);
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, ru);
            return -1;
        }
        vg_bench_sleep_us(20000);
    }
}

static void engine_log_tail(const char *log_path, int status)
{
    char *log = read_text(log_path);
    size_t len = strlen(log);

    fprintf(stderr, "bench: the engine run failed (status %d); end of %s:\n%s\n", status, log_path,
            len > 3000 ? log + len - 3000 : log);
    vg_free(log);
}

/* Applied-events samples of a run with several engine processes (offsets_applied). */
struct drain_samples {
    size_t n;
    size_t cap;
    int64_t *t_us;
    long long *applied;
};

static void drain_add(struct drain_samples *ds, int64_t t_us, long long applied)
{
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? ds->cap * 2 : 1024;
        ds->t_us = vg_realloc(ds->t_us, ds->cap * sizeof(*ds->t_us));
        ds->applied = vg_realloc(ds->applied, ds->cap * sizeof(*ds->applied));
    }
    ds->t_us[ds->n] = t_us;
    ds->applied[ds->n] = applied;
    ds->n++;
}

/* Applied events at time t_us: the last sample at or before it (0 before the first). */
static long long drain_at(const struct drain_samples *ds, int64_t t_us)
{
    long long v = 0;

    for (size_t i = 0; i < ds->n && ds->t_us[i] <= t_us; i++) {
        v = ds->applied[i];
    }
    return v;
}

/*
 * b->instances engine processes in one consumer group (expect 0: until SIGTERM) on the
 * topic, polled every 50 ms through the applied offsets in Redis until every produced event
 * is applied; then SIGTERM. The times: the first sample that saw the topic drained, each
 * process's first applied event (its result file: CLOCK_MONOTONIC, the same clock here).
 * Returns false when a process failed or the run hit its bounds.
 */
static bool engine_run_group(struct bench *b, const struct backend *be,
                             const struct offsets_map *om, const char *cfg_path, const char *rdir,
                             struct run_result *res, char **texts, double *poll_calls)
{
    pid_t pids[MAX_INSTANCES] = {0};
    char *results[MAX_INSTANCES] = {0};
    char *logs[MAX_INSTANCES] = {0};
    struct drain_samples ds = {0};
    int64_t deadline = vg_mono_ms() + b->k.timeout_s * 1000;
    int64_t stall_us = (int64_t)env_long("BENCH_STALL_S", 120) * 1000000;
    int64_t t_end = 0;
    int64_t t_move = vg_bench_mono_us();
    long long last = -1;
    bool ok = true;
    int n = b->instances;

    for (int i = 0; i < n && ok; i++) {
        char name[32];

        snprintf(name, sizeof(name), "bench-i%d", i);
        results[i] = vg_asprintf("%s/result-%d", rdir, i);
        logs[i] = vg_asprintf("%s/engine-%d.log", rdir, i);
        pids[i] = engine_spawn(b, cfg_path, 0, results[i], logs[i], NULL, name);
        ok = pids[i] > 0;
    }
    while (ok && t_end == 0) {
        long long applied = offsets_applied(om, be, poll_calls);
        int64_t now = vg_bench_mono_us();

        if (applied < 0) {
            fprintf(stderr, "bench: cannot read the applied offsets\n");
            ok = false;
            break;
        }
        drain_add(&ds, now, applied);
        if (applied >= b->produced) {
            t_end = now;
            break;
        }
        if (applied != last) {
            last = applied;
            t_move = now;
        } else if (applied > 0 && now - t_move > stall_us) {
            fprintf(stderr, "bench: %d instances stalled at %lld of %ld events\n", n, applied,
                    b->produced);
            res->stalled = true;
            res->done = (double)applied;
            break;
        }
        for (int i = 0; i < n; i++) {
            int status;

            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                pids[i] = 0;
                engine_log_tail(logs[i], status);
                ok = false;
            }
        }
        if (vg_mono_ms() > deadline) {
            fprintf(stderr, "bench: %d instances took more than %ld s\n", n, b->k.timeout_s);
            ok = false;
        }
        vg_bench_sleep_us(50000);
    }
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], ok ? SIGTERM : SIGKILL);
        }
    }
    for (int i = 0; i < n; i++) {
        struct rusage ru;
        int status;

        if (pids[i] <= 0) {
            continue;
        }
        status = engine_wait(b, pids[i], vg_mono_ms() + 60000, &ru, logs[i]);
        if (status != 0 && ok) {
            engine_log_tail(logs[i], status);
            ok = false;
        }
        texts[i] = read_text(results[i]);
    }
    if (ok && t_end > 0) {
        int64_t t_first = 0;
        int64_t t_all = 0;

        for (int i = 0; i < n; i++) {
            int64_t t = (int64_t)result_value(texts[i], "t_first_us");

            if (t > 0 && (t_first == 0 || t < t_first)) {
                t_first = t;
            }
            if (t <= 0) {
                printf("  instance %d applied nothing\n", i);
            } else if (t > t_all) {
                t_all = t;
            }
        }
        res->t_all_us = t_all > 0 && t_all < t_end ? t_all - t_first : -1;
        if (t_first > 0 && t_first < t_end) {
            res->rate_window =
                (double)(b->produced - drain_at(&ds, t_first)) * 1e6 / (double)(t_end - t_first);
        }
        if (t_all > 0 && t_all < t_end) {
            res->rate =
                (double)(b->produced - drain_at(&ds, t_all)) * 1e6 / (double)(t_end - t_all);
        }
    }
    vg_free(ds.t_us);
    vg_free(ds.applied);
    for (int i = 0; i < n; i++) {
        vg_free(results[i]);
        vg_free(logs[i]);
    }
    return ok;
}

/*
 * One engine run on the current topic in a child process against a fresh
 * redis-server (or Redis Cluster): until every produced event is done
 * (expect), or with expect 0 until `during` returns and SIGTERM drains it.
 * With b->instances > 1: that many processes in one group until the topic is drained.
 */
static struct run_result engine_run(struct bench *b, const char *rules, long long expect,
                                    const char *valgrind_out, bool (*during)(struct bench *b))
{
    struct run_result res = {0};
    struct backend be = {0};
    char *rdir = vg_asprintf("%s/run-%d", b->dir, ++b->run_no);
    char *cfg_path = vg_asprintf("%s/vigil.yaml", rdir);
    char *result_path = vg_asprintf("%s/result", rdir);
    char *log_path = vg_asprintf("%s/engine.log", rdir);
    char *texts[MAX_INSTANCES] = {0};
    int n_texts = 1;
    char *cfg = NULL;
    double cmds0;
    double bytes0;
    double cmds1;
    double bytes1;
    double aof0;
    double aof1;
    double rewrites0;
    double rewrites1;
    double cpu0;
    double cpu1;
    double node_cpu0[VG_TEST_CLUSTER_MAX_NODES];
    double node_cpu1[VG_TEST_CLUSTER_MAX_NODES];
    double poll_calls = 0;
    struct offsets_map om = {0};
    struct rusage ru = {0};
    int status = 0;
    pid_t pid;

    VG_ASSERT(b->instances >= 1 && b->instances <= MAX_INSTANCES);
    VG_ASSERT(b->instances == 1 || (expect > 0 && !valgrind_out && !during));
    if (mkdir(rdir, 0700) != 0) {
        fprintf(stderr, "bench: mkdir %s: %s\n", rdir, strerror(errno));
        goto out;
    }
    if (!backend_start(b, &be, rdir)) {
        goto out;
    }
    for (size_t i = 0; i < be.n; i++) {
        if (!redis_config_set(be.c[i], getenv("BENCH_REDIS_CONFIG")) ||
            (during && !redis_config_set(be.c[i], "latency-monitor-threshold 1"))) {
            goto out;
        }
    }
    b->rc = be.c[0];
    cfg =
        vg_asprintf("kafka:\n"
                    "  brokers: %s\n"
                    "  group: bench-%d\n"
                    "  topics: [%s]\n"
                    /* vigil's own prefetch defaults (consumer_conf.c): what a user runs */
                    "  properties: %s\n"
                    "redis:\n"
                    "  url: \"%s\"\n"
                    "  prefix: bench\n"
                    "%s"
                    "%s%s%s"
                    "rules: [%s]\n"
                    "sinks:\n"
                    "  hook: {type: webhook, url: \"http://127.0.0.1:%d/hook\"}\n",
                    vg_mock_kafka_bootstraps(b->kafka), b->run_no, b->topic,
                    /* BENCH_KAFKA_PROPERTIES='{fetch.wait.max.ms: "1"}': an experiment */
                    getenv("BENCH_KAFKA_PROPERTIES") ? getenv("BENCH_KAFKA_PROPERTIES") : "{}",
                    be.url, be.is_cluster ? "  cluster: true\n" : "", b->layout ? "  layout: " : "",
                    b->layout ? b->layout : "", b->layout ? "\n" : "", rules, b->port);
    if (!write_text(cfg_path, cfg)) {
        fprintf(stderr, "bench: cannot write %s\n", cfg_path);
        goto out;
    }
    if (be.is_cluster || b->instances > 1) {
        /* before the counters: CLUSTER KEYSLOT and CLUSTER SLOTS are the bench's commands */
        offsets_map_init(&om, b, &be);
    }
    if (be.is_cluster) {
        int per_node[VG_TEST_CLUSTER_MAX_NODES] = {0};

        for (long p = 0; p < om.n; p++) {
            if (om.node[p] >= 0 && om.node[p] < (int)be.n) {
                per_node[om.node[p]]++;
            }
        }
        printf("  partitions per primary:");
        for (size_t i = 0; i < be.n; i++) {
            printf(" %d", per_node[i]);
        }
        printf(" (of %ld)\n", om.n);
    }
    backend_counters(&be, &cmds0, &bytes0);
    backend_aof(&be, &aof0, &rewrites0);
    cpu0 = backend_cpu_us(&be, node_cpu0);
    if (b->instances > 1) {
        n_texts = b->instances;
        if (!engine_run_group(b, &be, &om, cfg_path, rdir, &res, texts, &poll_calls)) {
            goto out;
        }
    } else {
        pid = engine_spawn(b, cfg_path, expect, result_path, log_path, valgrind_out, NULL);
        if (pid < 0) {
            goto out;
        }
        if (during && !during(b)) {
            kill(pid, SIGKILL);
        } else if (during) {
            kill(pid, SIGTERM);
        }
        status = engine_wait(b, pid, vg_mono_ms() + b->k.timeout_s * 1000, &ru, log_path);
        if (status != 0) {
            engine_log_tail(log_path, status);
            goto out;
        }
        texts[0] = read_text(result_path);
    }
    backend_counters(&be, &cmds1, &bytes1);
    backend_aof(&be, &aof1, &rewrites1);
    cpu1 = backend_cpu_us(&be, node_cpu1);
    cmds1 -= poll_calls;
    res.aof_growth = aof1 - aof0;
    res.aof_rewrites = rewrites1 - rewrites0;
    res.aof_end = aof1;
    res.aof_rewrites_end = rewrites1;
    if (during) {
        redis_latency_worst(be.c[0], &res.fsync_max_ms, &res.command_max_ms);
    }
    if (b->instances == 1) {
        const char *text = texts[0];
        double n_first = result_value(text, "n_first");
        double t_first = result_value(text, "t_first_us");
        double t_last = result_value(text, "t_last_us");

        if (expect > 0 && t_last > t_first) {
            res.rate = ((double)expect - n_first) * 1e6 / (t_last - t_first);
        }
        res.stalled = result_value(text, "stalled") > 0;
        res.done = result_value(text, "done");
    }
    if (res.stalled) {
        char *keep = vg_asprintf("%s/bench-engine-run-%d.log", b->outdir, b->run_no);
        char *cmd = vg_asprintf("cp %s %s", log_path, keep);

        if (b->instances == 1 && system(cmd) != 0) {
            fprintf(stderr, "bench: cannot keep %s\n", log_path);
        }
        vg_free(cmd);
        if (!be.is_cluster) {
            redisReply *reply = redisCommand(be.c[0], "HLEN bench:offsets");

            fprintf(stderr,
                    "bench: the engine stalled at %.0f of %lld events; %lld of %ld partitions "
                    "have an applied offset (log: %s)\n",
                    res.done, expect,
                    reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1,
                    b->k.partitions, keep);
            freeReplyObject(reply);
        }
        vg_free(keep);
    }
    res.rss_mb = -1;
    for (int i = 0; i < n_texts; i++) {
        double hwm = result_value(texts[i], "hwm_kb");

        res.transitions += result_value(texts[i], "transitions");
        res.pages += result_value(texts[i], "pages");
        res.applied += result_value(texts[i], "applied");
        if (hwm / 1024.0 > res.rss_mb) {
            res.rss_mb = hwm / 1024.0;
        }
    }
    if (res.rss_mb <= 0) {
        res.rss_mb = (double)ru.ru_maxrss / 1024.0;
    }
    if (res.applied > 0) {
        res.cmds_per_event = (cmds1 - cmds0) / res.applied;
        res.bytes_per_event = (bytes1 - bytes0) / res.applied;
        res.redis_cpu_us_per_event = (cpu1 - cpu0) / res.applied;
        for (size_t i = 0; i < be.n; i++) {
            double us = (node_cpu1[i] - node_cpu0[i]) / res.applied;

            if (us > res.redis_cpu_us_busiest) {
                res.redis_cpu_us_busiest = us;
            }
            if (be.n > 1) {
                printf("  cluster node %zu (127.0.0.1:%d):\n", i, be.cluster.nodes[i].port);
            }
            redis_commandstats_print(be.c[i], res.applied);
        }
    }
    res.nodes = (int)be.n;
    res.instances = b->instances;
    res.ok = true;
out:
    b->rc = NULL;
    if (om.keys) {
        offsets_map_fini(&om);
    }
    backend_stop(&be);
    for (int i = 0; i < MAX_INSTANCES; i++) {
        vg_free(texts[i]);
    }
    vg_free(cfg);
    vg_free(cfg_path);
    vg_free(result_path);
    vg_free(log_path);
    vg_free(rdir);
    return res;
}

/* redis-benchmark -P 64 on a redis-server like the engine's (unix socket, AOF everysec). */
static void redis_ceiling(struct bench *b)
{
    struct vg_redis_child *redis = NULL;
    char errstr[512];
    char *rdir = vg_asprintf("%s/redis-benchmark", b->dir);
    char *cmd;
    FILE *fp;
    char line[256];

    if (mkdir(rdir, 0700) != 0 ||
        vg_redis_child_start(&redis, rdir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: redis-server: %s\n", errstr);
        vg_free(rdir);
        return;
    }
    cmd = vg_asprintf("redis-benchmark -s %s -P 64 -n %ld -r 100000 -t set,hset --csv 2>&1",
                      vg_redis_child_url(redis) + strlen("unix://"),
                      b->k.events >= 1000000 ? 1000000L : 200000L);
    fp = popen(cmd, "r");
    while (fp && fgets(line, sizeof(line), fp)) {
        double rps;

        if (strncmp(line, "\"SET\",\"", 7) == 0) {
            rps = strtod(line + 7, NULL);
            row("redis.set_per_s", "Redis ceiling: redis-benchmark -P 64 SET", rps, "commands/s",
                -1);
        } else if (strncmp(line, "\"HSET\",\"", 8) == 0) {
            rps = strtod(line + 8, NULL);
            row("redis.hset_per_s", "Redis ceiling: redis-benchmark -P 64 HSET", rps, "commands/s",
                -1);
        }
    }
    if (!fp || pclose(fp) != 0) {
        fprintf(stderr, "bench: %s failed\n", cmd);
    }
    vg_free(cmd);
    vg_redis_child_stop(redis);
    vg_free(rdir);
}

static void report_run(const char *key, const char *label, const struct run_result *r, double kcat,
                       double spread)
{
    char k[160];
    char l[200];

    if (!r->ok) {
        return;
    }
    if (r->stalled) {
        snprintf(k, sizeof(k), "%s.stalled_at_events", key);
        snprintf(l, sizeof(l), "%s: STALLED, events done", label);
        row(k, l, r->done, "events", -1);
        return;
    }
    snprintf(k, sizeof(k), "%s.events_per_s", key);
    row(k, label, r->rate, "events/s", kcat > 0 ? r->rate / kcat : -1);
    snprintf(k, sizeof(k), "%s.kcat_events_per_s", key);
    row(k, "  kcat on the same topic right before (median of 3)", kcat, "events/s", 1.0);
    snprintf(k, sizeof(k), "%s.kcat_spread_pct", key);
    row(k, "  spread of those 3 kcat reads: (max - min) / median", spread, "%", -1);
    snprintf(k, sizeof(k), "%s.redis_commands_per_event", key);
    snprintf(l, sizeof(l), "  Redis commands per event");
    row(k, l, r->cmds_per_event, "commands", -1);
    snprintf(k, sizeof(k), "%s.redis_bytes_per_event", key);
    snprintf(l, sizeof(l), "  Redis bytes in per event");
    row(k, l, r->bytes_per_event, "bytes", -1);
    snprintf(k, sizeof(k), "%s.redis_cpu_us_per_event", key);
    snprintf(l, sizeof(l), "  Redis CPU per event (INFO cpu, user + sys)");
    row(k, l, r->redis_cpu_us_per_event, "us", -1);
    if (r->nodes > 1) {
        snprintf(k, sizeof(k), "%s.redis_cpu_us_per_event_busiest", key);
        snprintf(l, sizeof(l), "  Redis CPU per event on the busiest of the %d primaries",
                 r->nodes);
        row(k, l, r->redis_cpu_us_busiest, "us", -1);
    }
    snprintf(k, sizeof(k), "%s.peak_rss_mb", key);
    snprintf(l, sizeof(l), "  peak RSS of the engine process%s",
             r->instances > 1 ? " (the largest instance)" : "");
    row(k, l, r->rss_mb, "MB", -1);
    if (r->instances > 1) {
        snprintf(k, sizeof(k), "%s.events_per_s_from_first", key);
        snprintf(l, sizeof(l), "  the same from the first instance's first event (joins included)");
        row(k, l, r->rate_window, "events/s", kcat > 0 ? r->rate_window / kcat : -1);
        snprintf(k, sizeof(k), "%s.join_s", key);
        snprintf(l, sizeof(l), "  first instance's first event to the last instance's");
        row(k, l, r->t_all_us / 1e6, "s", -1);
    }
}

struct shape {
    const char *name;
    const char *label;
    const struct mix *mix;
};

/* Whether the comma list `list` has `item`. */
static bool list_has(const char *list, const char *item)
{
    size_t len = strlen(item);

    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, item, len) == 0 && (p[len] == ',' || p[len] == '\0')) {
            return true;
        }
    }
    return false;
}

/*
 * BENCH_CLUSTER, on the 1,000-monitor topic of a shape, against the kcat read for its row:
 * the partitioned layout on one Redis (unless BENCH_LAYOUTS ran it), the same on a fresh
 * Redis Cluster of CLUSTER_PRIMARIES primaries, and (`group`) CLUSTER_INSTANCES engine
 * processes in one consumer group on a fresh cluster until the topic is drained.
 */
static void run_cluster(struct bench *b, const struct shape *sh, bool group, const char *layouts,
                        const char *rules, double kcat, double spread)
{
    struct run_result r;
    char key[96];
    char label[200];

    b->layout = "partitioned";
    if (!list_has(layouts, "partitioned")) {
        r = engine_run(b, rules, b->produced, NULL, NULL);
        snprintf(key, sizeof(key), "vigil.%s.m1000.partitioned", sh->name);
        snprintf(label, sizeof(label), "vigil, %s, 1000 monitors, layout partitioned", sh->label);
        report_run(key, label, &r, kcat, spread);
    }
    b->on_cluster = true;
    r = engine_run(b, rules, b->produced, NULL, NULL);
    snprintf(key, sizeof(key), "vigil.%s.m1000.cluster", sh->name);
    snprintf(label, sizeof(label), "vigil, %s, 1000 monitors, %d-primary Redis Cluster", sh->label,
             CLUSTER_PRIMARIES);
    report_run(key, label, &r, kcat, spread);
    if (group) {
        b->instances = CLUSTER_INSTANCES;
        r = engine_run(b, rules, b->produced, NULL, NULL);
        snprintf(key, sizeof(key), "vigil.%s.m1000.cluster.instances%d", sh->name,
                 CLUSTER_INSTANCES);
        snprintf(label, sizeof(label),
                 "vigil x%d in one group, %s, 1000 monitors, %d-primary Redis Cluster",
                 CLUSTER_INSTANCES, sh->label, CLUSTER_PRIMARIES);
        report_run(key, label, &r, kcat, spread);
        b->instances = 1;
    }
    b->on_cluster = false;
    b->layout = NULL;
}

/*
 * The two stream shapes, each with 10 / 1,000 / 10,000 monitors; with `cluster_only`
 * (BENCH_ONLY=cluster) the 1,000-monitor rows only, and their cluster rows.
 */
static bool run_shapes(struct bench *b, bool cluster_only)
{
    static const struct shape shapes[] = {
        {"realistic", "transition-heavy", &mix_realistic},
        {"quiet", "90% change nothing", &mix_quiet},
    };
    char errstr[512];
    const char *layouts = getenv("BENCH_LAYOUTS") ? getenv("BENCH_LAYOUTS") : "";

    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        struct gen g;
        double kcat;
        double spread;
        char key[96];
        char label[160];

        printf("== stream %s: %ld events, %ld resources ==\n", shapes[s].name, b->k.events,
               b->k.resources);
        if (kafka_start(b, shapes[s].name, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: mock cluster: %s\n", errstr);
            return false;
        }
        gen_init(&g, b->k.resources, b->k.workspaces, b->k.zipf, shapes[s].mix, false);
        if (!produce(b, &g, b->k.events)) {
            gen_fini(&g);
            kafka_stop(b);
            return false;
        }
        gen_fini(&g);
        for (int m = 0; m < 3; m++) {
            char *rules;
            struct run_result r;

            if (cluster_only && b->k.monitors[m] != 1000) {
                continue;
            }
            rules = write_rules(b, b->k.monitors[m], false);
            /* the denominator of this row, read right before it: the load drifts */
            kcat = kcat_rate(b, &spread);
            if (!rules || kcat <= 0) {
                vg_free(rules);
                kafka_stop(b);
                return false;
            }
            if (s == 0 && (m == 0 || cluster_only)) {
                redis_ceiling(b);
            }
            for (const char *l = layouts; l; l = strchr(l, ',') ? strchr(l, ',') + 1 : NULL) {
                size_t len = strcspn(l, ",");
                char layout[32];

                snprintf(layout, sizeof(layout), "%.*s", (int)len, l);
                b->layout = layout[0] ? layout : NULL;
                r = engine_run(b, rules, b->produced, NULL, NULL);
                snprintf(key, sizeof(key), "vigil.%s.m%ld%s%s", shapes[s].name, b->k.monitors[m],
                         b->layout ? "." : "", b->layout ? b->layout : "");
                snprintf(label, sizeof(label), "vigil, %s, %ld monitors%s%s", shapes[s].label,
                         b->k.monitors[m], b->layout ? ", layout " : "",
                         b->layout ? b->layout : "");
                report_run(key, label, &r, kcat, spread);
                b->layout = NULL;
            }
            if (b->k.cluster && b->k.monitors[m] == 1000) {
                run_cluster(b, &shapes[s], s == 0, layouts, rules, kcat, spread);
            }
            vg_free(rules);
        }
        kafka_stop(b);
    }
    return true;
}

/* Peak RSS with every event a new Resource (and its rate beside its own kcat). */
static bool run_rss(struct bench *b)
{
    struct gen g;
    char errstr[512];
    char *rules;
    double kcat;
    double spread;
    struct run_result r;

    printf("== every event a new Resource: %ld events ==\n", b->k.rss_events);
    if (kafka_start(b, "distinct", errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: mock cluster: %s\n", errstr);
        return false;
    }
    gen_init(&g, b->k.rss_events, b->k.workspaces, 0, &mix_realistic, true);
    if (!produce(b, &g, b->k.rss_events)) {
        gen_fini(&g);
        kafka_stop(b);
        return false;
    }
    gen_fini(&g);
    kcat = kcat_rate(b, &spread);
    if (kcat <= 0) {
        kafka_stop(b);
        return false;
    }
    rules = write_rules(b, 1000, false);
    r = engine_run(b, rules, b->produced, NULL, NULL);
    vg_free(rules);
    report_run("vigil.distinct.m1000", "vigil, every event a new Resource, 1000 monitors", &r, kcat,
               spread);
    kafka_stop(b);
    return r.ok;
}

/*
 * A row of the current latency run: keys latency.<cold|steady|kafka>.r<rate>.<what>, labels
 * "latency at <rate>/s, cold (Resources first seen): ..." and the like.
 */
static void lat_row(struct bench *b, const char *what, const char *label, double value,
                    const char *unit)
{
    char k[80];
    char l[160];

    snprintf(k, sizeof(k), "latency.%s.r%ld.%s", b->k.lat_key, b->k.lat_rate, what);
    snprintf(l, sizeof(l), "latency at %ld/s, %s: %s", b->k.lat_rate, b->k.lat_label, label);
    row(k, l, value, unit, -1);
}

/* Paced producing during the latency run; pages counted by on_page. */
static long lat_expected_pages;
static long lat_base; /* receiver count before the run */

static bool lat_wait_page(void *arg)
{
    (void)arg;
    return vg_bench_receiver_count() > lat_base;
}

static bool wait_for(bool (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = vg_mono_ms() + timeout_ms;

    while (!pred(arg)) {
        if (vg_mono_ms() > deadline) {
            return false;
        }
        vg_bench_sleep_us(10000);
    }
    return true;
}

/* Events applied so far in the run's Redis: the sum of (applied offset + 1) over partitions. */
static long long applied_in_redis(redisContext *c)
{
    redisReply *reply = redisCommand(c, "HVALS bench:offsets");
    long long total = 0;

    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        int64_t off;

        if (e->type == REDIS_REPLY_STRING && vg_parse_i64(e->str, &off)) {
            total += off + 1;
        }
    }
    freeReplyObject(reply);
    return total;
}

static long long lat_warm_target;

static bool lat_warm_applied(void *arg)
{
    struct bench *b = arg;

    return applied_in_redis(b->rc) >= lat_warm_target;
}

/*
 * The steady run's warm-up: one event about every Resource (each one's
 * first: it creates it, no page), produced at once, then wait until Redis
 * has applied them all. The generator's random stream is put back, so the
 * paced load after it draws the same picks as the cold run's.
 */
static bool latency_warm_up(struct bench *b, struct gen *g)
{
    char errstr[512];
    char key[160];
    char json[1024];
    uint64_t rng = g->rng;
    int64_t t0 = vg_bench_mono_us();

    for (long r = 0; r < b->k.resources; r++) {
        int len = gen_event(g, r, vg_now_ms(), NULL, key, sizeof(key), json, sizeof(json));

        if (vg_producer_send(b->prod, b->topic, -1, key, strlen(key), json, (size_t)len, errstr,
                             sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: latency warm-up: %s\n", errstr);
            return false;
        }
    }
    if (vg_producer_flush(b->prod, 300000, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: latency warm-up: %s\n", errstr);
        return false;
    }
    g->rng = rng;
    g->to_failed = 0;
    lat_warm_target += b->k.resources; /* after the page's and the partitions' warm-up */
    if (!wait_for(lat_warm_applied, b, 600000)) {
        fprintf(stderr, "bench: latency warm-up: %lld of %lld events applied in 600 s\n",
                applied_in_redis(b->rc), lat_warm_target);
        return false;
    }
    printf("  warm-up: %ld events (one per Resource) applied in %.1f s\n", b->k.resources,
           (double)(vg_bench_mono_us() - t0) / 1e6);
    fflush(stdout);
    redis_aof(b->rc, &b->warm_aof, &b->warm_rewrites);
    b->warm_applied = applied_in_redis(b->rc);
    freeReplyObject(redisCommand(b->rc, "LATENCY RESET"));
    return true;
}

static bool lat_all_pages(void *arg)
{
    struct bench *b = arg;
    (void)b;
    return vg_bench_receiver_count() >= lat_base + lat_expected_pages + 1;
}

/*
 * One event to every partition of the topic (a Resource "warm-up-<p>" of
 * its own, running: no page). Until a partition has delivered once,
 * librdkafka may not fetch it yet (its start offset is being looked up):
 * a load started before that waits up to ~1 s on some partitions, which
 * is the consumer's start, not its steady latency.
 */
static bool warm_partitions(struct bench *b)
{
    char errstr[512];
    char key[96];
    char json[512];

    for (long p = 0; p < b->k.partitions; p++) {
        int len =
            snprintf(json, sizeof(json),
                     "{\"resource\":{\"type\":\"workflow\",\"name\":\"warm-up-%ld\","
                     "\"workspace\":\"ws-warm\"},\"runtime\":\"running\",\"message\":\"t=0\"}",
                     p);

        snprintf(key, sizeof(key), "workflow:v1:warm-up-%ld:ws-warm", p);
        if (vg_producer_send(b->prod, b->topic, (int32_t)p, key, strlen(key), json, (size_t)len,
                             errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: partition warm-up: %s\n", errstr);
            return false;
        }
    }
    if (vg_producer_flush(b->prod, 30000, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: partition warm-up: %s\n", errstr);
        return false;
    }
    return true;
}

/*
 * The latency runs' load: lat_rate events/s for lat_seconds, each message
 * starting with "t=<CLOCK_MONOTONIC us>" taken right before it is handed
 * to the producer.
 */
static bool produce_paced(struct bench *b, struct gen *g)
{
    char errstr[512];
    char key[160];
    char json[1024];
    char mark[40];
    long n = b->k.lat_rate * b->k.lat_seconds;
    int64_t start = vg_bench_mono_us();

    for (long i = 0; i < n; i++) {
        int64_t due = start + (int64_t)((double)i * 1e6 / (double)b->k.lat_rate);
        int64_t now = vg_bench_mono_us();
        int len;

        if (due > now) {
            vg_bench_sleep_us(due - now);
        }
        snprintf(mark, sizeof(mark), "t=%lld", (long long)vg_bench_mono_us());
        len = gen_next(g, i, vg_now_ms(), mark, key, sizeof(key), json, sizeof(json));
        if (vg_producer_send(b->prod, b->topic, -1, key, strlen(key), json, (size_t)len, errstr,
                             sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: latency produce: %s\n", errstr);
            return false;
        }
    }
    lat_row(b, "offered_events_per_s", "offered load (achieved)",
            (double)n * 1e6 / (double)(vg_bench_mono_us() - start), "events/s");
    return true;
}

static bool latency_during(struct bench *b)
{
    struct gen g;
    char errstr[512];
    char json[1024];
    bool ok;

    /* One page through first: the engine joined, the dispatcher connected. */
    {
        int len =
            snprintf(json, sizeof(json),
                     "{\"resource\":{\"type\":\"workflow\",\"name\":\"warm-up\","
                     "\"workspace\":\"ws-warm\"},\"runtime\":\"failed\",\"message\":\"t=0\"}");
        if (vg_producer_send(b->prod, b->topic, -1, "workflow:v1:warm-up:ws-warm", 27, json,
                             (size_t)len, errstr, sizeof(errstr)) != VG_OK ||
            vg_producer_flush(b->prod, 30000, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench: latency warm-up: %s\n", errstr);
            return false;
        }
    }
    if (!wait_for(lat_wait_page, NULL, 120000)) {
        fprintf(stderr, "bench: latency: no page for the warm-up event in 120 s\n");
        return false;
    }
    lat_warm_target = b->k.partitions + 1;
    if (!warm_partitions(b) || !wait_for(lat_warm_applied, b, 120000)) {
        fprintf(stderr, "bench: latency: the partitions' warm-up events not applied in 120 s\n");
        return false;
    }
    gen_init(&g, b->k.resources, b->k.workspaces, b->k.zipf, &mix_realistic, false);
    if (b->k.lat_warm && !latency_warm_up(b, &g)) {
        gen_fini(&g);
        return false;
    }
    ok = produce_paced(b, &g);
    lat_expected_pages = g.to_failed;
    gen_fini(&g);
    if (ok && !wait_for(lat_all_pages, b, 60000)) {
        fprintf(stderr, "bench: latency: %ld of %ld pages arrived within 60 s\n",
                vg_bench_receiver_count() - lat_base - 1, lat_expected_pages);
    }
    return ok;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * The Kafka-alone run: the same paced load read by a bare consumer
 * (vigil's own vg_consumer, its defaults, a handler that only notes the
 * time), no engine, no Redis. Produced -> handed to the batch handler is
 * the floor that the mock broker, the producer and the fetch set on this
 * machine, before vigil does anything.
 */
static atomic_long probe_consumed;

static vg_err_t probe_batch(void *opaque, const struct vg_kafka_msg *msgs, size_t n)
{
    static const char key[] = "\"message\":\"t=";
    int64_t now = vg_bench_mono_us();

    (void)opaque;
    for (size_t i = 0; i < n; i++) {
        const char *p = msgs[i].payload;
        size_t len = msgs[i].payload ? msgs[i].len : 0;

        for (size_t k = 0; k + sizeof(key) - 1 < len; k++) {
            if (memcmp(p + k, key, sizeof(key) - 1) == 0) {
                char num[24];
                size_t at = k + sizeof(key) - 1;
                size_t m = len - at < sizeof(num) - 1 ? len - at : sizeof(num) - 1;
                int64_t sent;

                memcpy(num, p + at, m);
                num[m] = '\0';
                sent = strtoll(num, NULL, 10);
                if (sent > 0 && n_lat < lat_cap) {
                    lat_us[n_lat++] = now - sent;
                }
                break;
            }
        }
    }
    atomic_fetch_add(&probe_consumed, (long)n);
    return VG_OK;
}

static void *probe_thread(void *arg)
{
    static const struct vg_consumer_handler h = {.batch = probe_batch};

    vg_consumer_run(arg, &h);
    return NULL;
}

static long probe_target;

static bool probe_caught_up(void *arg)
{
    (void)arg;
    return atomic_load(&probe_consumed) >= probe_target;
}

static bool probe_assigned(void *arg)
{
    return vg_consumer_assigned_count(arg) > 0;
}

static bool run_latency_kafka(struct bench *b, long rate)
{
    char errstr[512];
    char topic[48];
    char *yaml = NULL;
    struct vg_config cfg;
    struct vg_consumer *c = NULL;
    struct gen g;
    pthread_t th;
    bool ok = false;

    b->k.lat_rate = rate;
    b->k.lat_warm = false;
    b->k.lat_key = "kafka";
    b->k.lat_label = "Kafka alone (a bare consumer, no engine)";
    printf("== latency, Kafka alone: %ld events/s offered for %ld s to a bare consumer ==\n", rate,
           b->k.lat_seconds);
    snprintf(topic, sizeof(topic), "latency-kafka-%ld", rate);
    if (kafka_start(b, topic, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: mock cluster: %s\n", errstr);
        return false;
    }
    /* the engine runs' kafka: section (BENCH_KAFKA_PROPERTIES too), through vigil's config */
    yaml = vg_asprintf("kafka:\n  brokers: %s\n  group: bench-kafka-alone-%ld\n  topics: [%s]\n"
                       "  properties: %s\n",
                       vg_mock_kafka_bootstraps(b->kafka), rate, b->topic,
                       getenv("BENCH_KAFKA_PROPERTIES") ? getenv("BENCH_KAFKA_PROPERTIES") : "{}");
    vg_config_init(&cfg);
    if (vg_config_load_string(&cfg, "kafka-alone", yaml, strlen(yaml), errstr, sizeof(errstr)) !=
            VG_OK ||
        vg_consumer_new(&c, &cfg.kafka, cfg.kafka.brokers, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: kafka-alone consumer: %s\n", errstr);
        vg_config_fini(&cfg);
        vg_free(yaml);
        kafka_stop(b);
        return false;
    }
    lat_cap = (size_t)(rate * b->k.lat_seconds) + 16;
    lat_us = vg_calloc(lat_cap, sizeof(int64_t));
    n_lat = 0;
    atomic_store(&probe_consumed, 0);
    pthread_create(&th, NULL, probe_thread, c);
    gen_init(&g, b->k.resources, b->k.workspaces, b->k.zipf, &mix_realistic, false);
    probe_target = b->k.partitions;
    if (!wait_for(probe_assigned, c, 120000) || !warm_partitions(b) ||
        !wait_for(probe_caught_up, NULL, 120000)) {
        fprintf(stderr, "bench: kafka-alone consumer: not every partition delivered in 120 s\n");
    } else if (produce_paced(b, &g)) {
        probe_target += rate * b->k.lat_seconds;
        ok = wait_for(probe_caught_up, NULL, 60000);
        if (!ok) {
            fprintf(stderr, "bench: kafka-alone consumer: %ld of %ld events in 60 s\n",
                    atomic_load(&probe_consumed), probe_target);
        }
    }
    gen_fini(&g);
    vg_consumer_stop(c);
    pthread_join(th, NULL);
    vg_consumer_destroy(c);
    vg_config_fini(&cfg);
    vg_free(yaml);
    kafka_stop(b);
    if (n_lat > 0) {
        qsort(lat_us, n_lat, sizeof(int64_t), cmp_i64);
        lat_row(b, "consumed", "events consumed", (double)n_lat, "events");
        lat_row(b, "p50_ms", "produced -> handed to the batch handler p50", lat_us[n_lat / 2] / 1e3,
                "ms");
        lat_row(b, "p90_ms", "produced -> handed to the batch handler p90",
                lat_us[(n_lat * 9) / 10] / 1e3, "ms");
        lat_row(b, "p99_ms", "produced -> handed to the batch handler p99",
                lat_us[(n_lat * 99) / 100] / 1e3, "ms");
        lat_row(b, "max_ms", "produced -> handed to the batch handler max", lat_us[n_lat - 1] / 1e3,
                "ms");
    }
    vg_free(lat_us);
    lat_us = NULL;
    return ok && n_lat > 0;
}

/*
 * One latency run at `rate`: cold (a fresh Redis, the paced load's first
 * event about a Resource creates it) or `steady` (every Resource applied
 * once first, as in production after the first minutes).
 */
static bool run_latency(struct bench *b, long rate, bool steady)
{
    char errstr[512];
    char *rules;
    char topic[48];
    struct run_result r;
    double rewrites;
    double applied;

    b->k.lat_rate = rate;
    b->k.lat_warm = steady;
    b->k.lat_key = steady ? "steady" : "cold";
    b->k.lat_label = steady ? "steady (every Resource known)" : "cold (Resources first seen)";
    printf("== latency, %s: %ld events/s offered for %ld s ==\n",
           steady ? "steady (every Resource known first)" : "cold (Resources first seen)", rate,
           b->k.lat_seconds);
    snprintf(topic, sizeof(topic), "latency-%s-%ld", steady ? "steady" : "cold", rate);
    if (kafka_start(b, topic, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: mock cluster: %s\n", errstr);
        return false;
    }
    rules = write_rules(b, 1, true);
    lat_cap = (size_t)(rate * b->k.lat_seconds) + 16;
    lat_us = vg_calloc(lat_cap, sizeof(int64_t));
    n_lat = 0;
    lat_base = vg_bench_receiver_count();
    r = engine_run(b, rules, 0, NULL, latency_during);
    vg_free(rules);
    kafka_stop(b);
    if (n_lat > 0) {
        qsort(lat_us, n_lat, sizeof(int64_t), cmp_i64);
        lat_row(b, "pages", "pages received", (double)n_lat, "pages");
        lat_row(b, "expected_pages", "pages expected (runtime turned failed)",
                (double)lat_expected_pages, "pages");
        lat_row(b, "p50_ms", "produced -> webhook received p50", lat_us[n_lat / 2] / 1e3, "ms");
        lat_row(b, "p90_ms", "produced -> webhook received p90", lat_us[(n_lat * 9) / 10] / 1e3,
                "ms");
        lat_row(b, "p99_ms", "produced -> webhook received p99", lat_us[(n_lat * 99) / 100] / 1e3,
                "ms");
        lat_row(b, "max_ms", "produced -> webhook received max", lat_us[n_lat - 1] / 1e3, "ms");
    }
    /* the steady run's rows count from the end of its warm-up */
    rewrites = steady ? r.aof_rewrites_end - b->warm_rewrites : r.aof_rewrites;
    applied = steady ? r.applied - (double)b->warm_applied : r.applied;
    lat_row(b, "aof_rewrites", "Redis AOF rewrites during the run", rewrites, "rewrites");
    if (applied > 0 && rewrites == 0) {
        lat_row(b, "aof_bytes_per_event", "Redis AOF bytes per event",
                (steady ? r.aof_end - b->warm_aof : r.aof_growth) / applied, "bytes");
    }
    if (r.ok) {
        lat_row(b, "redis_fsync_max_ms", "Redis slowest fsync (LATENCY, appendfsync always)",
                r.fsync_max_ms, "ms");
        lat_row(b, "redis_command_max_ms", "Redis slowest command (LATENCY)", r.command_max_ms,
                "ms");
    }
    vg_free(lat_us);
    lat_us = NULL;
    return r.ok && n_lat > 0;
}

/* callgrind on a small run; the top functions by inclusive cost into OUTDIR. */
static bool run_callgrind(struct bench *b)
{
    struct gen g;
    char errstr[512];
    char *rules;
    char *out = vg_asprintf("%s/bench-callgrind.out", b->outdir);
    char *txt = vg_asprintf("%s/bench-callgrind.txt", b->outdir);
    char *text;
    const char *p;
    struct run_result r;
    double total = -1;

    printf("== callgrind: %ld events of the transition-heavy stream, 1000 monitors ==\n",
           b->k.cg_events);
    if (kafka_start(b, "callgrind", errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench: mock cluster: %s\n", errstr);
        return false;
    }
    gen_init(&g, b->k.resources, b->k.workspaces, b->k.zipf, &mix_realistic, false);
    if (!produce(b, &g, b->k.cg_events)) {
        gen_fini(&g);
        kafka_stop(b);
        return false;
    }
    gen_fini(&g);
    rules = write_rules(b, 1000, false);
    r = engine_run(b, rules, b->produced, out, NULL);
    vg_free(rules);
    kafka_stop(b);
    text = read_text(out);
    p = strstr(text, "\ntotals: ");
    if (!p) {
        p = strstr(text, "\nsummary: ");
    }
    if (p) {
        total = strtod(strchr(p, ':') + 1, NULL);
    }
    vg_free(text);
    if (r.ok && total > 0) {
        row("callgrind.instructions_per_event",
            "callgrind: instructions per event (engine process, run only)",
            total / (double)b->k.cg_events, "instructions", -1);
    }
    printf("  profile: %s (bench/run.sh writes its top functions to %s)\n", out, txt);
    vg_free(out);
    vg_free(txt);
    return r.ok && total > 0;
}

static char *self_path(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    return vg_strdup(buf);
}

/* Whether BENCH_ONLY (e.g. "latency,callgrind") asks for `part`. */
static bool wanted(const struct knobs *k, const char *part)
{
    size_t len = strlen(part);

    for (const char *p = k->only; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, part, len) == 0 && (p[len] == ',' || p[len] == '\0')) {
            return true;
        }
    }
    return k->only == NULL;
}

static int all_main(int argc, char **argv)
{
    struct bench b = {0};
    char *tsv_path;
    char *cmd;
    bool ok = true;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_vigil all OUTDIR\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    knobs_load(&b.k);
    b.outdir = argv[2];
    b.self = self_path();
    b.dir = vg_strdup("/tmp/vigil-bench-XXXXXX");
    if (!b.self || !mkdtemp(b.dir)) {
        perror("bench: setup");
        return 1;
    }
    tsv_path = vg_asprintf("%s/bench.tsv", b.outdir);
    tsv = fopen(tsv_path, "a");
    if (!tsv) {
        perror(tsv_path);
        return 1;
    }
    b.instances = 1;
    b.port = vg_bench_receiver_start(on_page, NULL);
    if (b.port < 0) {
        fprintf(stderr, "bench: receiver failed\n");
        return 1;
    }
    for (int i = 0; i < 2 && wanted(&b.k, "latency"); i++) {
        if (b.k.lat_rates[i] > 0 && b.k.lat_kafka) {
            ok = run_latency_kafka(&b, b.k.lat_rates[i]) && ok;
        }
        if (b.k.lat_rates[i] > 0 && b.k.lat_cold) {
            ok = run_latency(&b, b.k.lat_rates[i], false) && ok;
        }
        if (b.k.lat_rates[i] > 0 && b.k.lat_steady) {
            ok = run_latency(&b, b.k.lat_rates[i], true) && ok;
        }
    }
    if (wanted(&b.k, "shapes")) {
        ok = run_shapes(&b, false) && ok;
    } else if (b.k.only && list_has(b.k.only, "cluster")) {
        b.k.cluster = true;
        ok = run_shapes(&b, true) && ok;
    }
    if (wanted(&b.k, "rss")) {
        ok = run_rss(&b) && ok;
    }
    if (wanted(&b.k, "callgrind")) {
        ok = run_callgrind(&b) && ok;
    }
    fclose(tsv);
    if (b.k.keep) {
        fprintf(stderr, "bench: kept %s\n", b.dir);
    } else {
        cmd = vg_asprintf("rm -rf %s", b.dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench: cannot remove %s\n", b.dir);
        }
        vg_free(cmd);
    }
    vg_free(tsv_path);
    vg_free(b.topic);
    vg_free(b.self);
    vg_free(b.dir);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    vg_json_init();
    if (argc >= 2 && strcmp(argv[1], "engine") == 0) {
        return engine_main(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "all") == 0) {
        return all_main(argc, argv);
    }
    fprintf(stderr, "usage: bench_vigil all OUTDIR | bench_vigil engine CONFIG EXPECT RESULT\n");
    return 2;
}
