/*
 * Decoding on worker threads changes nothing but where the work runs. The
 * same stream goes through the engine in process twice, with
 * decode.threads 0 (the pipeline thread alone) and 4: native events with
 * transitions that page, Kubernetes pods and an Event mapped through its
 * pod, a late event, poison of every reason, skipped messages, and, on a
 * second start under a fresh consumer group, every message again
 * (replays) followed by new ones. Redis (every key under the prefix, with
 * history and outbox entries in order), the dead-letter topic (in order,
 * headers and bytes) and the counters must be the same byte for byte.
 * Hundreds of messages wait before each start, so batches are large enough
 * for the workers to take part; they run only while the engine does.
 */
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dlq_reader.h"
#include "env.h"
#include "outbox.h"
#include "support.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/metrics.h"
#include "vigil/util.h"

#define T0_S 1795860000LL /* 2026-11-28T10:00:00Z */
#define MSGS_PER_PHASE 400
#define WORKERS 4

/* One message of the stream. */
struct msg {
    int32_t partition;
    char *key;
    char *payload;
    size_t len;
};

struct stream {
    struct msg *v;
    size_t n;
    size_t cap;
};

static void add(struct stream *s, int32_t partition, const char *key, const char *payload,
                size_t len)
{
    struct msg *m = VG_ARRAY_PUSH(s->v, s->n, s->cap);

    m->partition = partition;
    m->key = key ? vg_strdup(key) : NULL;
    m->payload = vg_malloc(len + 1);
    memcpy(m->payload, payload, len);
    m->payload[len] = '\0';
    m->len = len;
}

static void add_str(struct stream *s, int32_t partition, const char *key, const char *payload)
{
    add(s, partition, key, payload, strlen(payload));
}

static void add_fixture(struct stream *s, int32_t partition, const char *name)
{
    char *path = vg_asprintf("%s/k8s/%s", VG_FIXTURES, name);
    size_t len;
    char *text = vg_test_read_file(path, &len);

    assert_non_null(text);
    add(s, partition, "pod", text, len);
    free(text);
    free(path);
}

static void stream_free(struct stream *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].payload);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* A native event of Resource `r` at T0 + `sec` (time NULL: absent, the Kafka timestamp). */
static void add_native(struct stream *s, int r, const char *status, const char *runtime, long sec)
{
    char when[40];
    char key[64];
    struct vg_buf b = {0};
    const char *type = r % 3 == 0 ? "service" : "workflow";

    vg_time_format_rfc3339((T0_S + sec) * 1000, when, sizeof(when));
    snprintf(key, sizeof(key), "%s:v1:r-%d:w-%d", type, r, r % 4);
    vg_buf_printf(&b, "{\"resource\":{\"type\":\"%s\",\"name\":\"r-%d\",\"workspace\":\"w-%d\"}",
                  type, r, r % 4);
    if (status) {
        vg_buf_printf(&b, ",\"status\":\"%s\"", status);
    }
    if (runtime) {
        vg_buf_printf(&b, ",\"runtime\":\"%s\"", runtime);
    }
    vg_buf_printf(&b, ",\"time\":\"%s\",\"message\":\"step %ld\"}", when, sec);
    add_str(s, r % 2, key, b.data);
    vg_buf_fini(&b);
}

/* Poison message number `k`, one reason after the other. */
static void add_poison(struct stream *s, int k)
{
    static const char *const small[] = {
        "{\"this is\": not json",
        "[1,2,3]",
        "{\"status\":\"active\"}",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p:1\"}}",
        "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"}}",
        "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"status\":\"paused\"}",
        "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"runtime\":\"boom\"}",
        "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"status\":\"active\","
        "\"time\":\"noon\"}",
        "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\"}}",
        "{\"a\":\"x\",\"a\":\"y\"}",
        "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"status\":\"active\","
        "\"time\":\"2999-01-01T00:00:00Z\"}",
    };
    const size_t n_small = VG_ARRAY_LEN(small);
    const size_t kinds = n_small + 5;
    size_t which = (size_t)k % kinds;
    char key[32];
    struct vg_buf b = {0};

    snprintf(key, sizeof(key), "poison-%d", k);
    if (which < n_small) {
        add_str(s, k % 2, key, small[which]);
        return;
    }
    switch (which - n_small) {
    case 0: /* not_utf8 */
        add(s, k % 2, key, "{\"a\":\"\xc3\x28\"}", 10);
        return;
    case 1: /* control_char */
        add_str(s, k % 2, key, "{\"a\":\"x\x01y\"}");
        return;
    case 2: /* too_large: decode.limits.max_message_bytes is 16384 */
        vg_buf_puts(&b, "{\"x\":\"");
        for (int i = 0; i < 20000; i++) {
            vg_buf_putc(&b, 'a');
        }
        vg_buf_puts(&b, "\"}");
        break;
    case 3: /* too_deep */
        for (int i = 0; i < 40; i++) {
            vg_buf_puts(&b, "{\"a\":");
        }
        vg_buf_puts(&b, "1");
        for (int i = 0; i < 40; i++) {
            vg_buf_putc(&b, '}');
        }
        break;
    default: /* too_many_labels: decode.limits.max_labels is 16 */
        vg_buf_puts(&b, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"labels\":{");
        for (int i = 0; i < 17; i++) {
            vg_buf_printf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
        }
        vg_buf_puts(&b, "}}}");
        break;
    }
    add(s, k % 2, key, b.data, b.len);
    vg_buf_fini(&b);
}

/*
 * `n` messages from step `from` on: mostly native events walking 40
 * Resources through their runtimes (failures page), every 7th poison,
 * every 11th skipped (a pod without its name label, an Event not about a
 * pod), every 13th late, and the pod fixtures with an Event about the pod.
 */
static void make_stream(struct stream *s, long from, size_t n)
{
    static const char *const runtimes[] = {"pending", "running", "succeeded", "running", "failed"};
    static const char *const pods[] = {"watch-added-pending.json", "pod-running-multi.json",
                                       "event-backoff.json", "watch-modified-oomkilled.json"};
    size_t n_pods = 0;

    for (long k = from; s->n < n; k++) {
        int r = (int)(k % 40);

        if (k % 7 == 3) {
            add_poison(s, (int)(k / 7));
        } else if (k % 11 == 5) {
            add_fixture(s, (int)(k % 2), k % 2 ? "pod-no-name-label.json" : "event-node.json");
        } else if (k % 13 == 6) {
            add_native(s, r, NULL, "failed", k - 5000); /* older than its Resource's state */
        } else if (k % 50 == 20 && n_pods < VG_ARRAY_LEN(pods)) {
            add_fixture(s, 0, pods[n_pods++]);
        } else {
            add_native(s, r, k % 17 == 0 ? "error" : "active", runtimes[(k / 40) % 5], k);
        }
    }
}

/* ---- snapshots: what a run left, as text -------------------------------------- */

/* `len` bytes, control bytes (the NUL of P:idx:name members) and backslashes escaped. */
static void put_bytes(struct vg_buf *b, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c < 0x20 || c == 0x7f || c == '\\') {
            vg_buf_printf(b, "\\x%02x", c);
        } else {
            vg_buf_putc(b, (char)c);
        }
    }
}

static void put_reply(struct vg_buf *b, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) {
        vg_buf_putc(b, '"');
        put_bytes(b, reply->str, reply->len);
        vg_buf_putc(b, '"');
    } else if (reply->type == REDIS_REPLY_INTEGER) {
        vg_buf_printf(b, "%lld", reply->integer);
    } else if (reply->type == REDIS_REPLY_NIL) {
        vg_buf_puts(b, "nil");
    } else {
        vg_buf_printf(b, "[type %d]", reply->type);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The elements of an array reply as strings, sorted (pairs joined first when `pairs`). */
static void put_sorted(struct vg_buf *b, const redisReply *reply, bool pairs)
{
    size_t step = pairs ? 2 : 1;
    size_t n = reply->elements / step;
    char **v = vg_calloc(n ? n : 1, sizeof(*v));

    for (size_t i = 0; i < n; i++) {
        struct vg_buf one = {0};

        for (size_t j = 0; j < step; j++) {
            vg_buf_puts(&one, j ? " = " : "");
            put_reply(&one, reply->element[i * step + j]);
        }
        v[i] = vg_buf_steal(&one);
    }
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0; i < n; i++) {
        vg_buf_printf(b, "  %s\n", v[i]);
        free(v[i]);
    }
    free(v);
}

/* Every key under the prefix, sorted, with its whole content (stream entry ids left out). */
static void snapshot_redis(struct vg_test_env *e, struct vg_buf *b)
{
    redisReply *keys = vg_test_env_redis(e, "KEYS %s:*", e->prefix);
    size_t plen = strlen(e->prefix);
    char **names;

    assert_non_null(keys);
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    names = vg_calloc(keys->elements ? keys->elements : 1, sizeof(*names));
    for (size_t i = 0; i < keys->elements; i++) {
        names[i] = vg_strdup(keys->element[i]->str);
    }
    qsort(names, keys->elements, sizeof(*names), cmp_str);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = names[i];
        redisReply *type;
        redisReply *r = NULL;

        if (!strncmp(k + plen, ":audit:", 7)) {
            free(names[i]); /* deliveries: the dispatcher's timing, not the pipeline's doing */
            continue;
        }
        type = vg_test_env_redis(e, "TYPE %s", k);
        assert_non_null(type);
        vg_buf_printf(b, "%s (%s)\n", k + plen, type->str);
        if (!strcmp(k + plen, ":offsets:cluster")) {
            /* the mock cluster's id: each run has its own cluster */
        } else if (!strcmp(type->str, "string")) {
            r = vg_test_env_redis(e, "GET %s", k);
            vg_buf_puts(b, "  ");
            put_reply(b, r);
            vg_buf_putc(b, '\n');
        } else if (!strcmp(type->str, "hash")) {
            r = vg_test_env_redis(e, "HGETALL %s", k);
            put_sorted(b, r, true);
        } else if (!strcmp(type->str, "set")) {
            r = vg_test_env_redis(e, "SMEMBERS %s", k);
            put_sorted(b, r, false);
        } else if (!strncmp(k + plen, ":incidents", 10) && !strcmp(type->str, "zset")) {
            /* scored by the wall clock of the commit that updated them: members only */
            r = vg_test_env_redis(e, "ZRANGE %s 0 -1", k);
            put_sorted(b, r, false);
        } else if (!strcmp(type->str, "zset")) {
            r = vg_test_env_redis(e, "ZRANGE %s 0 -1 WITHSCORES", k);
            for (size_t j = 0; j < r->elements; j++) {
                vg_buf_puts(b, j % 2 ? " " : "  ");
                put_reply(b, r->element[j]);
                vg_buf_puts(b, j % 2 ? "\n" : "");
            }
        } else if (!strcmp(type->str, "stream")) {
            r = vg_test_env_redis(e, "XRANGE %s - +", k);
            for (size_t j = 0; j < r->elements; j++) {
                const redisReply *fields = r->element[j]->element[1];

                vg_buf_puts(b, " ");
                for (size_t f = 0; f < fields->elements; f++) {
                    vg_buf_putc(b, ' ');
                    put_reply(b, fields->element[f]);
                }
                vg_buf_putc(b, '\n');
            }
        } else {
            vg_buf_puts(b, "  (not compared)\n");
        }
        freeReplyObject(r);
        freeReplyObject(type);
        free(names[i]);
    }
    free(names);
    freeReplyObject(keys);
}

/*
 * What the rules and incident records stamp with the wall clock of the
 * commit (incident updated_at, firing since, ...), not with event times:
 * masked, and so is how far ahead of it an event from the future is.
 * Event times of the stream lie days before `since_ms`, so a
 * millisecond count from `since_ms` to now, or an RFC 3339 time on the
 * days the test ran, is the wall clock.
 */
static void mask_wall_clock(char *text, int64_t since_ms)
{
    int64_t now_ms = vg_now_ms();
    char days[2][40];

    vg_time_format_rfc3339(since_ms, days[0], sizeof(days[0]));
    vg_time_format_rfc3339(now_ms, days[1], sizeof(days[1]));
    days[0][11] = days[1][11] = '\0'; /* "2026-12-04T" */
    for (char *p = strstr(text, " s ahead of the clock"); p; p = strstr(p + 1, " s ahead of")) {
        for (char *q = p - 1; q > text && *q >= '0' && *q <= '9'; q--) {
            *q = '*'; /* future_time's detail: how far ahead of the clock of the decode */
        }
    }
    for (char *p = text; *p; p++) {
        size_t len = 0;

        if (!strncmp(p, days[0], 11) || !strncmp(p, days[1], 11)) {
            for (; *p && *p != '"'; p++) {
                *p = '*';
            }
            if (!*p) {
                break;
            }
            continue;
        }
        while (p[len] >= '0' && p[len] <= '9') {
            len++;
        }
        if (len == 13 && (p == text || p[-1] < '0' || p[-1] > '9')) {
            int64_t v = strtoll(p, NULL, 10);

            if (v >= since_ms && v <= now_ms) {
                memset(p, '*', len);
            }
        }
        p += len > 0 ? len - 1 : 0;
    }
}

/*
 * The dead-letter topic: headers and bytes of each message, in the order
 * of the DLQ within each source partition. (How a batch interleaves the
 * partitions is the fetch's timing, different from one run to the next.)
 */
static void snapshot_dlq(struct vg_test_env *e, struct vg_buf *b)
{
    static const char *const partitions[] = {"0", "1"};
    struct vg_test_dead_letter *dead;
    size_t n;
    size_t shown = 0;

    assert_true(vg_test_env_read_dlq(e, &dead, &n));
    vg_buf_printf(b, "dlq: %zu messages\n", n);
    for (size_t p = 0; p < VG_ARRAY_LEN(partitions); p++) {
        for (size_t i = 0; i < n; i++) {
            if (!vg_test_dead_letter_header_is(&dead[i], "vigil.partition", partitions[p])) {
                continue;
            }
            shown++;
            vg_buf_printf(b, "key %s len %zu\n", dead[i].key ? dead[i].key : "(none)", dead[i].len);
            for (size_t h = 0; h < dead[i].n_headers; h++) {
                vg_buf_printf(b, "  %s: %s\n", dead[i].header_names[h], dead[i].header_values[h]);
            }
            put_bytes(b, dead[i].payload, dead[i].len);
            vg_buf_putc(b, '\n');
        }
    }
    assert_int_equal(shown, n);
    vg_test_dead_letters_free(dead, n);
}

/* Only the counts that follow from the stream (not delivery, timing or lag). */
static void put_family(const struct vg_metric_family_view *f, void *arg)
{
    static const char *const compared[] = {
        VG_M_EVENTS_CONSUMED, VG_M_DECODE_ERRORS,        VG_M_DLQ_PRODUCED, VG_M_TRANSITIONS,
        VG_M_DLQ_FAILURES,    VG_M_NOTIFICATIONS_QUEUED, VG_M_OFFSET_RESETS};
    struct vg_buf *b = arg;
    bool want = false;

    for (size_t i = 0; i < VG_ARRAY_LEN(compared); i++) {
        want = want || !strcmp(f->name, compared[i]);
    }
    for (size_t i = 0; want && i < f->n_series; i++) {
        vg_buf_printf(b, "%s", f->name);
        for (size_t j = 0; j < f->n_labels; j++) {
            vg_buf_printf(b, " %s=%s", f->labels[j], f->series[i].values[j]);
        }
        vg_buf_printf(b, " %.0f\n", f->series[i].value);
    }
}

struct counted {
    struct vg_test_env *e;
    double want;
};

static bool all_counted(void *arg)
{
    struct counted *c = arg;

    return vg_metrics_sum(vg_engine_metrics(c->e->engine), VG_M_EVENTS_CONSUMED, NULL, NULL) >=
           c->want;
}

/* Threads of this process named vg-decode (the workers). */
static int decode_workers(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;

    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        char *path;
        char *comm;

        if (de->d_name[0] == '.') {
            continue;
        }
        path = vg_asprintf("/proc/self/task/%s/comm", de->d_name);
        comm = vg_test_read_file(path, NULL);
        n += comm && !strcmp(comm, "vg-decode\n") ? 1 : 0;
        free(comm);
        free(path);
    }
    closedir(dir);
    return n;
}

/*
 * One engine run until it has counted `want` consumed messages and Redis
 * has every offset: its counters into `b`; the workers present while it
 * runs, gone after.
 */
static void run_engine(struct vg_test_env *e, int threads, double want, struct vg_buf *b)
{
    struct counted c = {e, want};

    assert_true(vg_test_env_engine_start(e));
    assert_int_equal(decode_workers(), threads);
    assert_true(vg_test_env_wait_applied_exact(e, 60000));
    assert_true(vg_test_wait_for(all_counted, &c, 30000));
    assert_true(vg_test_outbox_wait_drained(e, 30000)); /* pages delivered: the outbox is empty */
    vg_metrics_visit(vg_engine_metrics(e->engine), put_family, b);
    assert_int_equal(vg_test_env_engine_stop(e), VG_OK);
    assert_int_equal(decode_workers(), 0);
}

static void produce(struct vg_test_env *e, const struct stream *s)
{
    for (size_t i = 0; i < s->n; i++) {
        vg_test_env_produce_raw(e, s->v[i].partition, s->v[i].key, s->v[i].payload, s->v[i].len);
    }
    assert_true(vg_test_env_flush(e));
}

/* The whole scenario with decode.threads `threads`: what it left, as text (heap). */
static char *scenario(int threads)
{
    struct vg_test_env e;
    struct stream first = {0};
    struct stream second = {0};
    struct vg_buf b = {0};
    int64_t since_ms = vg_now_ms();
    char *extra = vg_asprintf("decode:\n  threads: %d\n"
                              "  limits: {max_message_bytes: 16384, max_labels: 16}\n",
                              threads);
    struct vg_test_env_opts o = {
        .partitions = 2,
        .topic_format = "auto",
        .extra = extra,
        .rules_file = VG_FIXTURES "/k8s/rules.yaml",
    };

    make_stream(&first, 0, MSGS_PER_PHASE);
    make_stream(&second, MSGS_PER_PHASE, MSGS_PER_PHASE);
    assert_int_equal(vg_test_env_start(&e, "decode-workers", &o), 0);

    /* everything waits before the start: the first batches hold hundreds of messages */
    produce(&e, &first);
    vg_buf_puts(&b, "-- counters, first run\n");
    run_engine(&e, threads, (double)first.n, &b);

    /* a fresh group reads everything again: the first messages are replays, then new ones */
    produce(&e, &second);
    vg_test_env_set_group(&e, "again");
    vg_buf_puts(&b, "-- counters, second run\n");
    run_engine(&e, threads, (double)(first.n + second.n), &b);

    vg_buf_puts(&b, "-- redis\n");
    snapshot_redis(&e, &b);
    vg_buf_puts(&b, "-- dead letters\n");
    snapshot_dlq(&e, &b);
    mask_wall_clock(b.data, since_ms);
    assert_int_equal(vg_test_env_stop(&e), 0);
    stream_free(&first);
    stream_free(&second);
    free(extra);
    return vg_buf_steal(&b);
}

/* Print the first line where `a` and `b` differ. */
static void print_difference(const char *a, const char *b)
{
    size_t line = 1;
    const char *bol_a = a;
    const char *bol_b = b;

    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            bol_a = a + 1;
            bol_b = b + 1;
        }
        a++;
        b++;
    }
    fprintf(stderr, "first difference at line %zu:\n  threads 0: %.200s\n  threads %d: %.200s\n",
            line, bol_a, WORKERS, bol_b);
}

static size_t count_lines(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void same_outcome_with_workers(void **state)
{
    char *alone;
    char *workers;
    (void)state;

    alone = scenario(0);
    workers = scenario(WORKERS);
    if (strcmp(alone, workers) != 0) {
        print_difference(alone, workers);
        if (getenv("DECODE_WORKERS_DUMP")) { /* a directory: both snapshots for diff(1) */
            char *p0 = vg_asprintf("%s/threads-0.txt", getenv("DECODE_WORKERS_DUMP"));
            char *p1 = vg_asprintf("%s/threads-%d.txt", getenv("DECODE_WORKERS_DUMP"), WORKERS);

            vg_test_write_file(p0, alone, strlen(alone));
            vg_test_write_file(p1, workers, strlen(workers));
            free(p0);
            free(p1);
        }
    }
    assert_string_equal(alone, workers);
    /* and the stream did what it is meant to: replays, skips, every poison reason, pages */
    assert_non_null(strstr(alone, "outcome=replayed"));
    assert_non_null(strstr(alone, "outcome=skipped"));
    assert_non_null(strstr(alone, "outcome=late"));
    assert_int_equal(count_lines(alone, VG_M_DECODE_ERRORS " reason="), 2 * 16);
    assert_non_null(strstr(alone, ":incident:"));
    assert_non_null(strstr(alone, "vigil.error: future_time"));
    free(alone);
    free(workers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_outcome_with_workers),
    };

    vg_json_init(); /* as the binary does: cJSON's trees in each thread's arena */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
