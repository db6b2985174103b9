/*
 * Apply throughput against a real redis-server: events/s through
 * vg_state_resolve + vg_resource_apply + vg_state_commit, batched (one
 * MULTI/EXEC per batch, as `vigil run` does) and with one commit per
 * event, printed beside `redis-benchmark -P 64 -t hset` on the same
 * server in the same run: the ceiling of plain pipelined writes. Never a
 * pass/fail: numbers only.
 *
 *   bench_apply [events] [resources] [batch]      (defaults 200000 5000 1000)
 *
 * The server is a private redis-server child as `vigil run` embeds it
 * (unix socket, appendonly yes, appendfsync everysec). Events are a
 * random status/runtime walk; each batch carries its transitions (to the
 * history streams) and the applied offsets of 8 partitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define PARTITIONS 8

static const char *const batch_types[] = {"workflow", "job", "cronjob", "batch"};
static const struct vg_health_config hc = {(char **)batch_types, 4};
static const char *const statuses[] = {"active", "error", "deleted"};
static const char *const runtimes[] = {"pending", "running", "succeeded", "failed"};

static long arg_or(int argc, char **argv, int i, long def)
{
    int64_t v;

    if (argc > i && vg_parse_i64(argv[i], &v) && v > 0) {
        return (long)v;
    }
    return def;
}

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

/* `n` events over `n_res` Resources; owned strings (vg_event_fini). */
static struct vg_event *make_events(long n, long n_res)
{
    struct vg_event *evs = vg_calloc((size_t)n, sizeof(*evs));
    uint32_t seed = 12345;
    int64_t t0 = vg_now_ms();

    for (long i = 0; i < n; i++) {
        struct vg_event *ev = &evs[i];
        long r = (long)(next_rand(&seed) % (uint32_t)n_res);
        char name[32];

        snprintf(name, sizeof(name), "res-%06ld", r);
        ev->type = vg_strdup(r % 3 == 0 ? "workflow" : "service");
        ev->name = vg_strdup(name);
        ev->workspace = vg_strdup("bench");
        ev->version = vg_strdup("v1");
        ev->owner = vg_strdup("ops");
        ev->id = vg_resource_id(ev->type, ev->version, ev->name, ev->workspace);
        if (next_rand(&seed) % 100 < 20) {
            snprintf(ev->status, sizeof(ev->status), "%s", statuses[next_rand(&seed) % 3]);
        } else {
            snprintf(ev->status, sizeof(ev->status), "active");
        }
        snprintf(ev->runtime, sizeof(ev->runtime), "%s", runtimes[next_rand(&seed) % 4]);
        ev->time_ms = t0 + i;
        ev->pos.topic = vg_strdup("bench.events");
        ev->pos.partition = (int32_t)(r % PARTITIONS);
        ev->pos.offset = i;
    }
    return evs;
}

struct result {
    double secs;
    long commits;
    long transitions;
};

/* Apply evs[0..n) in batches of `batch` under `prefix`; returns false on a Redis error. */
static bool run_apply(const char *url, const char *prefix, const struct vg_event *evs, long n,
                      long batch, struct result *out)
{
    struct vg_state *st = NULL;
    struct vg_resource **res = vg_calloc((size_t)batch, sizeof(*res));
    struct vg_resource **dirty = vg_calloc((size_t)batch, sizeof(*dirty));
    struct vg_transition *trans = vg_calloc((size_t)batch * 3, sizeof(*trans));
    struct vg_offset offs[PARTITIONS];
    char errstr[512];
    int64_t start;
    bool ok = true;

    memset(out, 0, sizeof(*out));
    if (vg_state_connect(&st, url, prefix, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench_apply: %s\n", errstr);
        return false;
    }
    start = vg_mono_ms();
    for (long i = 0; i < n && ok; i += batch) {
        long m = n - i < batch ? n - i : batch;
        size_t n_trans = 0;
        size_t n_dirty = 0;
        size_t n_offs = 0;
        int64_t max_off[PARTITIONS];
        struct vg_commit cm = {0};

        for (int p = 0; p < PARTITIONS; p++) {
            max_off[p] = -1;
        }
        if (vg_state_resolve(st, &evs[i], (size_t)m, res, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench_apply: resolve: %s\n", errstr);
            ok = false;
            break;
        }
        for (long k = 0; k < m; k++) {
            bool was_dirty = res[k]->dirty;

            n_trans += vg_resource_apply(&hc, res[k], &evs[i + k], &trans[n_trans]);
            if (res[k]->dirty && !was_dirty) {
                dirty[n_dirty++] = res[k];
            }
            max_off[evs[i + k].pos.partition] = evs[i + k].pos.offset;
        }
        for (int p = 0; p < PARTITIONS; p++) {
            if (max_off[p] >= 0) {
                offs[n_offs++] = (struct vg_offset){"bench.events", p, max_off[p]};
            }
        }
        cm.res = dirty;
        cm.n_res = n_dirty;
        cm.trans = trans;
        cm.n_trans = n_trans;
        cm.offsets = offs;
        cm.n_offsets = n_offs;
        if (vg_state_commit(st, &cm, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "bench_apply: commit: %s\n", errstr);
            ok = false;
        }
        out->commits++;
        out->transitions += (long)n_trans;
    }
    out->secs = (double)(vg_mono_ms() - start) / 1000.0;
    vg_state_destroy(st);
    vg_free(res);
    vg_free(dirty);
    vg_free(trans);
    return ok;
}

/* `redis-benchmark -s SOCK -P 64 -n N -q -t hset`: its requests/s, or -1. */
static double redis_benchmark_hset(const char *sock, long n)
{
    char *cmd = vg_asprintf("redis-benchmark -s '%s' -P 64 -n %ld -q -t hset 2>/dev/null", sock, n);
    FILE *fp = popen(cmd, "r");
    char line[512];
    double rps = -1;

    vg_free(cmd);
    if (!fp) {
        return -1;
    }
    /* "HSET: 1234567.00 requests per second, p50=0.231 msec"; -q may print \r progress first. */
    while (fgets(line, sizeof(line), fp)) {
        for (char *p = strstr(line, "HSET: "); p; p = strstr(p + 6, "HSET: ")) {
            char *end;
            double v = strtod(p + 6, &end);

            if (end != p + 6) {
                rps = v; /* the progress lines say "HSET: rps=...": not a number here */
            }
        }
    }
    pclose(fp);
    return rps;
}

int main(int argc, char **argv)
{
    long events = arg_or(argc, argv, 1, 200000);
    long resources = arg_or(argc, argv, 2, 5000);
    long batch = arg_or(argc, argv, 3, 1000);
    long single_events = events / 10 < 20000 ? events / 10 : 20000;
    const char *tmp = getenv("TMPDIR");
    char *dir = vg_asprintf("%s/vigil-bench-apply-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    struct vg_redis_child *rc = NULL;
    struct vg_event *evs;
    struct result batched;
    struct result single;
    char errstr[512];
    char *rm;
    const char *sock;
    double hset;
    int status = 0;

    if (single_events < 1) {
        single_events = events;
    }
    if (vg_redis_child_start(&rc, dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench_apply: %s\n", errstr);
        return 1;
    }
    sock = vg_redis_child_url(rc) + strlen("unix://");
    evs = make_events(events, resources);

    printf("== apply throughput: vg_state_resolve + vg_resource_apply + vg_state_commit ==\n");
    printf("redis-server on a unix socket, appendonly yes, appendfsync everysec; %ld events over "
           "%ld Resources\n",
           events, resources);
    if (!run_apply(vg_redis_child_url(rc), "bench-batched", evs, events, batch, &batched) ||
        !run_apply(vg_redis_child_url(rc), "bench-single", evs, single_events, 1, &single)) {
        status = 1;
        goto out;
    }
    hset = redis_benchmark_hset(sock, 1000000);
    printf("  batched, %4ld events per MULTI/EXEC : %10.0f events/s  (%ld events, %ld commits, "
           "%ld transitions, %.2f s)\n",
           batch, (double)events / batched.secs, events, batched.commits, batched.transitions,
           batched.secs);
    printf("  one MULTI/EXEC per event           : %10.0f events/s  (%ld events, %.2f s)\n",
           (double)single_events / single.secs, single_events, single.secs);
    if (hset > 0) {
        printf("  redis-benchmark -P 64 -t hset      : %10.0f requests/s  (the ceiling: one "
               "small HSET per request, same server)\n",
               hset);
    } else {
        printf("  redis-benchmark -P 64 -t hset      : (redis-benchmark not found or failed)\n");
    }
out:
    for (long i = 0; i < events; i++) {
        vg_event_fini(&evs[i]);
    }
    vg_free(evs);
    vg_redis_child_stop(rc);
    rm = vg_asprintf("rm -rf '%s'", dir);
    if (system(rm) != 0) {
        fprintf(stderr, "bench_apply: could not remove %s\n", dir);
    }
    vg_free(rm);
    vg_free(dir);
    return status;
}
