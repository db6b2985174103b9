/*
 * Decode cost: vg_event_decode_ex on a native event of ~485 bytes and on
 * a Kubernetes Pod watch event (a fixture, compacted), in a loop. Prints
 * ns per event; instructions per event come from callgrind, which counts
 * only inside the loop functions:
 *
 *   valgrind --tool=callgrind --toggle-collect=decode_loop bench_decode native 20000
 *
 * (then Ir / events). Numbers only, never a pass/fail.
 *
 *   bench_decode [native|pod|all] [events]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/event.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

/* A workflow run changing runtime, as the transition-heavy stream carries it: 485 bytes. */
static const char native_event[] =
    "{\"resource\":{\"type\":\"workflow\",\"name\":\"ingestion-delivery-events-000042\","
    "\"workspace\":\"ws-payments-eu-west-1\",\"version\":\"v3\",\"owner\":\"team-data-platform\"},"
    "\"status\":\"active\",\"runtime\":\"running\",\"time\":\"2026-11-28T10:00:00.123Z\","
    "\"message\":\"run 1843 started on worker pool eu-west-1b after scheduler admission; "
    "previous run 1842 succeeded in 41.2 s, queue depth 12345, image "
    "registry.example.com/ingest:1.4.2, attempt 1 of 3\","
    "\"source\":\"scheduler\",\"source_id\":\"sched-7d9f-x2\",\"seq\":1842130}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drop the whitespace outside strings: a Pod as a watch stream carries it on Kafka. */
static size_t compact(char *s, size_t len)
{
    size_t o = 0;
    int in_str = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && i + 1 < len) {
                s[o++] = c;
                c = s[++i];
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        } else if (c == '"') {
            in_str = 1;
        }
        s[o++] = c;
    }
    return o;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct vg_buf b = {0};
    char chunk[4096];
    size_t n;

    if (!fp) {
        perror(path);
        exit(1);
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        vg_buf_append(&b, chunk, n);
    }
    fclose(fp);
    *len = b.len;
    return vg_buf_steal(&b);
}

/* The measured loop (callgrind --toggle-collect=decode_loop): decode and finish `n` times. */
__attribute__((noinline)) long decode_loop(const char *json, size_t len, long n);
__attribute__((noinline)) long decode_loop(const char *json, size_t len, long n)
{
    long ok = 0;

    for (long i = 0; i < n; i++) {
        struct vg_event ev;
        char detail[256];

        if (vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, json, len, 1795860000000, detail,
                               sizeof(detail)) == VG_DECODE_OK) {
            ok++;
        }
        vg_event_fini(&ev);
    }
    return ok;
}

static void run(const char *what, const char *json, size_t len, long n)
{
    /* a heap copy of exactly `len` bytes, as a Kafka payload (not NUL-terminated) */
    char *payload = vg_malloc(len);
    double t0, t1;
    long ok;

    memcpy(payload, json, len);
    for (long i = 0; i < n / 10 + 1; i++) { /* warm up, outside the measured loop */
        struct vg_event ev;

        vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, payload, len, 1795860000000, NULL, 0);
        vg_event_fini(&ev);
    }
    t0 = now_s();
    ok = decode_loop(payload, len, n);
    t1 = now_s();
    if (ok != n) {
        fprintf(stderr, "%s: %ld of %ld decoded\n", what, ok, n);
        exit(1);
    }
    printf("%-7s %6zu bytes  %8ld events  %8.0f ns/event  %9.0f events/s\n", what, len, n,
           (t1 - t0) * 1e9 / (double)n, (double)n / (t1 - t0));
    free(payload);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "all";
    long n = 200000;
    int64_t v;

    if (argc > 2 && vg_parse_i64(argv[2], &v) && v > 0) {
        n = (long)v;
    }
    vg_json_init();
    if (strcmp(which, "native") == 0 || strcmp(which, "all") == 0) {
        run("native", native_event, sizeof(native_event) - 1, n);
    }
    if (strcmp(which, "pod") == 0 || strcmp(which, "all") == 0) {
        size_t len;
        char *pod =
            read_file(VIGIL_SOURCE_DIR "/tests/fixtures/k8s/watch-modified-crashloop.json", &len);

        len = compact(pod, len);
        run("pod", pod, len, n / 10 > 0 ? n / 10 : 1);
        free(pod);
    }
    return 0;
}
