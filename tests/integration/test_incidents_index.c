/*
 * Incident counts and pages from indexes, against a real redis-server:
 * the firing counts in /metrics are kept by the commits that open and end
 * incidents (exact after 20,000 incidents, each rewritten while firing,
 * some ended, some pending, equal to a recount of the records), a page of
 * GET /api/v1/incidents is the newest records from an index, and neither
 * issues more Redis commands with 20,000 incidents than with 10 (INFO
 * commandstats around a request to an in-process API that is Redis's only
 * other client). The real `vigil run` then serves the same numbers; data
 * written without counts is rebuilt once (logged); ended records leave the
 * indexes after the retention while old firing ones stay.
 * Scrape and page times are printed, never asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "support.h"
#include "vigil/api.h"
#include "vigil/config.h"
#include "vigil/page.h"
#include "vigil/state.h"

#define N_MONITORS 7
#define N_SEVERITIES 2
#define N_RESOURCES 500
#define BIG 20000
#define SMALL 10
#define PER_COMMIT 500

static const char *const severities[N_SEVERITIES] = {"high", "critical"};

/* What the test wrote, to check Redis against. */
struct model {
    int64_t base_ms;
    size_t n;                              /* incidents created so far */
    long firing[N_MONITORS][N_SEVERITIES]; /* expected firing counts */
    char **state;                          /* final state of incident i */
    int64_t *updated;                      /* final updated_at of incident i */
};

/* ---- helpers ----------------------------------------------------------------------------- */

static redisContext *redis_raw(struct vg_test_env *e)
{
    const char *url = vg_redis_child_url(e->redis);
    redisContext *ctx;

    assert_true(strncmp(url, "unix://", 7) == 0);
    ctx = redisConnectUnix(url + 7);
    assert_non_null(ctx);
    assert_int_equal(ctx->err, 0);
    return ctx;
}

static long long redis_int(redisContext *ctx, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -1;

    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r->type == REDIS_REPLY_NIL) {
        v = -1;
    } else if (r->type == REDIS_REPLY_STRING) {
        v = strtoll(r->str, NULL, 10);
    } else {
        fprintf(stderr, "unexpected reply type %d to %s\n", r->type, fmt);
        fail();
    }
    freeReplyObject(r);
    return v;
}

/* Commands Redis has run so far, INFO itself left out. */
static long long commands_run(redisContext *ctx)
{
    long long n = vg_test_redis_commands_run(ctx);

    assert_true(n >= 0);
    return n;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *inc_id(size_t i)
{
    char *id = malloc(17);

    snprintf(id, 17, "%016zx", i + 0x100000);
    return id;
}

static void record_init(struct vg_incident_record *r, const struct model *m, size_t i,
                        const char *state, int seq, const char *severity)
{
    char res[64];

    memset(r, 0, sizeof(*r));
    snprintf(res, sizeof(res), "workflow:v1:r%zu:public", i % N_RESOURCES);
    r->id = inc_id(i);
    r->monitor = malloc(16);
    snprintf(r->monitor, 16, "m%zu", i % N_MONITORS);
    r->resource = strdup(res);
    r->severity = strdup(severity ? severity : severities[i % N_SEVERITIES]);
    r->incident_type = strdup("");
    r->state = strdup(state);
    r->summary = strdup("something failed");
    r->description = strdup("");
    r->topic = strdup("");
    r->started_at_ms = m->base_ms + (int64_t)i * 10;
    r->updated_at_ms = r->started_at_ms + seq;
    r->ended_at_ms = strcmp(state, "firing") && strcmp(state, "pending") ? r->updated_at_ms : 0;
    r->seq = seq;
}

static void commit_records(struct vg_test_env *e, struct vg_incident_record *v, size_t n)
{
    struct vg_commit cm = {0};
    char errstr[512];

    cm.incidents = v;
    cm.n_incidents = n;
    if (vg_state_commit(e->st, &cm, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "commit: %s\n", errstr);
        fail();
    }
    for (size_t i = 0; i < n; i++) {
        vg_incident_record_fini(&v[i]);
    }
}

/*
 * Incidents [m->n, to): each opens firing; then by i % 10: 0-5 are notified
 * again (seq 2, still firing: must not count twice), 6-7 resolve, 8 goes
 * stale, 9 is a pending one that never fired.
 */
static void grow(struct vg_test_env *e, struct model *m, size_t to)
{
    struct vg_incident_record *v = calloc(PER_COMMIT, sizeof(*v));
    size_t k = 0;

    m->state = realloc(m->state, to * sizeof(*m->state));
    m->updated = realloc(m->updated, to * sizeof(*m->updated));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = m->n; i < to; i++) {
            int kind = (int)(i % 10);
            const char *state;

            if (pass == 0) {
                state = kind == 9 ? "pending" : "firing";
            } else {
                state = kind <= 5 ? "firing" : kind <= 7 ? "resolved" : kind == 8 ? "stale" : NULL;
            }
            if (!state) {
                continue;
            }
            record_init(&v[k++], m, i, state, pass + 1, NULL);
            m->state[i] = (char *)state;
            m->updated[i] = m->base_ms + (int64_t)i * 10 + pass + 1;
            if (k == PER_COMMIT) {
                commit_records(e, v, k);
                k = 0;
            }
        }
    }
    if (k) {
        commit_records(e, v, k);
    }
    for (size_t i = m->n; i < to; i++) {
        if (!strcmp(m->state[i], "firing")) {
            m->firing[i % N_MONITORS][i % N_SEVERITIES]++;
        }
    }
    m->n = to;
    free(v);
}

/* The value of the sample line `series` (exactly), or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t sl = strlen(series);

    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncmp(p, series, sl) && p[sl] == ' ') {
            return strtod(p + sl + 1, NULL);
        }
        p = eol ? eol + 1 : NULL;
    }
    return -1;
}

static size_t count_lines(const char *text, const char *prefix)
{
    size_t n = 0;
    size_t pl = strlen(prefix);

    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        n += strncmp(p, prefix, pl) == 0;
        p = eol ? eol + 1 : NULL;
    }
    return n;
}

static char *get_body(int port, const char *path, double *secs)
{
    double t0 = now_s();
    struct vg_test_http_reply r = vg_test_http(port, "GET", path, NULL, NULL);
    char *body;

    if (secs) {
        *secs = now_s() - t0;
    }
    if (r.status != 200) {
        fprintf(stderr, "GET %s: %d %s\n", path, r.status, r.body ? r.body : "");
    }
    assert_int_equal(r.status, 200);
    body = r.body;
    r.body = NULL;
    vg_test_http_reply_free(&r);
    return body;
}

/* /metrics firing counts equal the model and a recount of the records in Redis. */
static void check_counts(struct vg_test_env *e, const struct model *m, int port)
{
    char *text = get_body(port, "/metrics", NULL);
    struct vg_incident_record *v = NULL;
    long recount[N_MONITORS][N_SEVERITIES] = {{0}};
    size_t n = 0;
    size_t series = 0;
    char errstr[512];

    assert_int_equal(vg_state_incidents_list(e->st, 0, &v, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, m->n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v[i].state, "firing")) {
            long mi = strtol(v[i].monitor + 1, NULL, 10);

            assert_true(mi >= 0 && mi < N_MONITORS);
            recount[mi][strcmp(v[i].severity, "high") == 0 ? 0 : 1]++;
        }
    }
    vg_incident_records_free(v, n);
    for (int mi = 0; mi < N_MONITORS; mi++) {
        for (int si = 0; si < N_SEVERITIES; si++) {
            char s[128];

            snprintf(s, sizeof(s), "vigil_incidents_firing{monitor=\"m%d\",severity=\"%s\"}", mi,
                     severities[si]);
            double got = sample(text, s);

            /* Nothing firing: no series at all (counted below). */
            assert_int_equal(got < 0 ? 0 : (long)got, m->firing[mi][si]);
            assert_int_equal(recount[mi][si], m->firing[mi][si]);
            series += m->firing[mi][si] > 0;
        }
    }
    assert_int_equal(count_lines(text, "vigil_incidents_firing{"), series);
    free(text);
}

static bool state_wanted(const char *state, const char *status)
{
    if (!strcmp(status, "all")) {
        return true;
    }
    if (!strcmp(status, "resolved")) {
        return strcmp(state, "firing") != 0 && strcmp(state, "pending") != 0;
    }
    return !strcmp(state, status);
}

/* GET /api/v1/incidents?status=S[&resource=R]&limit=L: the newest matches of the model, in order.
 */
static void check_page(const struct model *m, int port, const char *status, size_t resource,
                       size_t limit, double *secs)
{
    char path[256];
    char res[64] = "";
    char *body;
    cJSON *root;
    const cJSON *items;
    const cJSON *it;
    size_t k = 0;
    size_t i = m->n;

    if (resource != (size_t)-1) {
        snprintf(res, sizeof(res), "workflow:v1:r%zu:public", resource);
    }
    snprintf(path, sizeof(path), "/api/v1/incidents?status=%s&limit=%zu%s%s", status, limit,
             res[0] ? "&resource=" : "", res);
    body = get_body(port, path, secs);
    root = cJSON_Parse(body);
    assert_non_null(root);
    items = cJSON_GetObjectItemCaseSensitive(root, "items");
    assert_true(cJSON_IsArray(items));
    /* updated_at grows with i in the model (rewrites add 1 or 2 ms to i * 10) */
    cJSON_ArrayForEach(it, items)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        char *want = NULL;

        while (i > 0) {
            i--;
            if (state_wanted(m->state[i], status) && (!res[0] || i % N_RESOURCES == resource)) {
                want = inc_id(i);
                break;
            }
        }
        assert_non_null(want);
        assert_true(cJSON_IsString(id));
        if (strcmp(id->valuestring, want) != 0) {
            fprintf(stderr, "%s: item %zu is %s, expected %s\n", path, k, id->valuestring, want);
            fail();
        }
        free(want);
        k++;
    }
    /* A short page only when nothing else matches. */
    if (k < limit) {
        while (i > 0) {
            i--;
            assert_false(state_wanted(m->state[i], status) &&
                         (!res[0] || i % N_RESOURCES == resource));
        }
    }
    assert_int_equal(k, (size_t)cJSON_GetObjectItemCaseSensitive(root, "count")->valueint);
    cJSON_Delete(root);
    free(body);
}

/* The HTTP API alone, in process, on the env's redis-server: Redis's only other client. */
struct inproc {
    struct vg_config cfg;
    struct vg_metrics *metrics;
    struct vg_api *api;
    int port;
};

static void inproc_start(struct inproc *p, struct vg_test_env *e)
{
    char errstr[512];
    struct vg_api_options o;
    const char *addr;

    vg_config_init(&p->cfg);
    free(p->cfg.http.listen);
    p->cfg.http.listen = strdup("127.0.0.1:0");
    p->metrics = vg_metrics_new();
    vg_metrics_declare_vigil(p->metrics);
    memset(&o, 0, sizeof(o));
    o.http = &p->cfg.http;
    o.redis_url = vg_redis_child_url(e->redis);
    o.prefix = e->prefix;
    o.metrics = p->metrics;
    if (vg_api_start(&p->api, &o, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "api: %s\n", errstr);
        fail();
    }
    addr = vg_api_address(p->api);
    p->port = (int)strtol(strrchr(addr, ':') + 1, NULL, 10);
}

static void inproc_stop(struct inproc *p)
{
    vg_api_stop(p->api);
    vg_metrics_destroy(p->metrics);
    vg_config_fini(&p->cfg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Redis commands one GET of `path` costs; *secs: the median of 9 (printed, not asserted). */
static long long commands_of(redisContext *ctx, int port, const char *path, double *secs)
{
    double t[9];
    long long before = commands_run(ctx);
    long long n;

    free(get_body(port, path, &t[0]));
    n = commands_run(ctx) - before;
    for (size_t i = 1; secs && i < 9; i++) {
        free(get_body(port, path, &t[i]));
    }
    if (secs) {
        qsort(t, 9, sizeof(t[0]), cmp_double);
        *secs = t[4];
    }
    return n;
}

static void model_fini(struct model *m)
{
    free(m->state);
    free(m->updated);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void counts_and_pages_cost_the_same_with_10_or_20000(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.http = true};
    struct model m = {.base_ms = (int64_t)time(NULL) * 1000 - 3600 * 1000};
    struct inproc p;
    redisContext *ctx;
    long long scrape_small;
    long long page_small;
    long long firing_small;
    long long scrape_big;
    long long page_big;
    long long firing_big;
    double t_scrape_small;
    double t_page_small;
    double t_scrape_big;
    double t_page_big;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "incidents_index", &o), 0);
    ctx = redis_raw(&e);
    inproc_start(&p, &e);

    grow(&e, &m, SMALL);
    /* The first read rebuilds the (empty) indexes once and opens the pool's connection. */
    free(get_body(p.port, "/metrics", NULL));
    free(get_body(p.port, "/api/v1/incidents?limit=50", NULL));
    check_counts(&e, &m, p.port);
    check_page(&m, p.port, "all", (size_t)-1, 50, NULL);
    scrape_small = commands_of(ctx, p.port, "/metrics", &t_scrape_small);
    page_small = commands_of(ctx, p.port, "/api/v1/incidents?limit=50", &t_page_small);
    firing_small = commands_of(ctx, p.port, "/api/v1/incidents?status=firing&limit=50", NULL);

    grow(&e, &m, BIG);
    check_counts(&e, &m, p.port);
    scrape_big = commands_of(ctx, p.port, "/metrics", &t_scrape_big);
    page_big = commands_of(ctx, p.port, "/api/v1/incidents?limit=50", &t_page_big);
    firing_big = commands_of(ctx, p.port, "/api/v1/incidents?status=firing&limit=50", NULL);
    printf("# /metrics scrape: %d incidents %.2f ms, %lld redis commands; %d incidents %.2f ms, "
           "%lld redis commands\n",
           SMALL, t_scrape_small * 1e3, scrape_small, BIG, t_scrape_big * 1e3, scrape_big);
    printf("# /api/v1/incidents?limit=50: %d incidents %.2f ms, %lld redis commands; %d "
           "incidents %.2f ms, %lld redis commands\n",
           SMALL, t_page_small * 1e3, page_small, BIG, t_page_big * 1e3, page_big);
    assert_int_equal(scrape_big, scrape_small);
    assert_int_equal(page_big, page_small);
    assert_int_equal(firing_big, firing_small);
    inproc_stop(&p);

    /* The daemon serves the same: counts, and the first pages of each filter. */
    assert_true(vg_test_env_spawn(&e));
    check_counts(&e, &m, e.port);
    check_page(&m, e.port, "all", (size_t)-1, 50, NULL);
    (void)commands_of(ctx, e.port, "/metrics", &t_scrape_big);
    (void)commands_of(ctx, e.port, "/api/v1/incidents?limit=50", &t_page_big);
    printf("# vigil run, %d incidents: /metrics %.2f ms, /api/v1/incidents?limit=50 %.2f ms\n", BIG,
           t_scrape_big * 1e3, t_page_big * 1e3);
    check_page(&m, e.port, "firing", (size_t)-1, 50, NULL);
    check_page(&m, e.port, "resolved", (size_t)-1, 30, NULL);
    check_page(&m, e.port, "stale", (size_t)-1, 20, NULL);
    check_page(&m, e.port, "deleted", (size_t)-1, 20, NULL);
    check_page(&m, e.port, "all", 7, 1000, NULL);
    check_page(&m, e.port, "firing", 13, 5, NULL);
    check_page(&m, e.port, "all", 1000 + N_RESOURCES, 10, NULL);

    redisFree(ctx);
    model_fini(&m);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void counts_rebuilt_once_for_records_without_them(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.http = true};
    struct model m = {.base_ms = (int64_t)time(NULL) * 1000 - 3600 * 1000};
    struct vg_incident_record r;
    redisContext *ctx;
    redisReply *reply;
    char *logs;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "incidents_rebuild", &o), 0);
    ctx = redis_raw(&e);
    /* As a vigil that kept no counts wrote them: the record and P:incidents only. */
    m.state = calloc(30, sizeof(*m.state));
    m.updated = calloc(30, sizeof(*m.updated));
    for (size_t i = 0; i < 30; i++) {
        const char *st = i % 3 == 0 ? "resolved" : "firing";
        char *json;

        record_init(&r, &m, i, st, 1, NULL);
        json = vg_incident_record_to_json(&r);
        reply = redisCommand(ctx, "SET %s:incident:%s %s", e.prefix, r.id, json);
        freeReplyObject(reply);
        reply = redisCommand(ctx, "ZADD %s:incidents %lld %s", e.prefix, (long long)r.updated_at_ms,
                             r.id);
        freeReplyObject(reply);
        m.state[i] = (char *)st;
        m.updated[i] = r.updated_at_ms;
        if (!strcmp(st, "firing")) {
            m.firing[i % N_MONITORS][i % N_SEVERITIES]++;
        }
        free(json);
        vg_incident_record_fini(&r);
    }
    m.n = 30;
    /* An expired record still in the old index. */
    reply = redisCommand(ctx, "ZADD %s:incidents 1 ffffffffffffffff", e.prefix);
    freeReplyObject(reply);

    assert_true(vg_test_env_spawn(&e));
    check_counts(&e, &m, e.port);
    check_page(&m, e.port, "firing", (size_t)-1, 50, NULL);
    assert_true(vg_test_env_wait_log(&e, "rebuilt from 30 incident records", 10000));
    assert_int_equal(redis_int(ctx, "ZSCORE %s:incidents ffffffffffffffff", e.prefix), -1);

    /* Counted from now on by the commits: incident 1 resolves. */
    record_init(&r, &m, 1, "resolved", 2, NULL);
    commit_records(&e, &r, 1);
    m.state[1] = (char *)"resolved";
    m.firing[1 % N_MONITORS][1 % N_SEVERITIES]--;
    check_counts(&e, &m, e.port);
    check_page(&m, e.port, "resolved", (size_t)-1, 50, NULL);
    logs = vg_test_env_logs(&e);
    assert_int_equal(occurrences(logs, "rebuilt from"), 1);
    free(logs);

    redisFree(ctx);
    model_fini(&m);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

static long long firing_count(struct vg_test_env *e, const char *monitor, const char *severity)
{
    struct vg_incident_count *v = NULL;
    size_t n = 0;
    long long found = 0;
    char errstr[512];

    assert_int_equal(vg_state_incidents_firing_counts(e->st, &v, &n, errstr, sizeof(errstr)),
                     VG_OK);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v[i].monitor, monitor) && !strcmp(v[i].severity, severity)) {
            found = v[i].firing;
        }
    }
    vg_incident_counts_free(v, n);
    return found;
}

static void ended_records_leave_the_indexes_old_firing_ones_stay(void **state)
{
    struct vg_test_env e;
    struct model m = {.base_ms = 1000000000000LL};
    struct vg_incident_record r[2];
    redisContext *ctx;
    char *a = inc_id(1);
    char *b = inc_id(2);
    char *c = inc_id(3);

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "incidents_trim", NULL), 0);
    ctx = redis_raw(&e);
    /* a fires (m1/critical, r1) and is never updated again; b (r2) resolves. */
    record_init(&r[0], &m, 1, "firing", 1, NULL);
    record_init(&r[1], &m, 2, "resolved", 1, NULL);
    commit_records(&e, r, 2);
    assert_int_equal(firing_count(&e, "m1", "critical"), 1);
    assert_int_equal(redis_int(ctx, "ZCARD %s:incidents", e.prefix), 2);
    /* c resolves a retention later: b has expired by then, a still fires. */
    m.base_ms += VG_INCIDENT_RETENTION_MS;
    record_init(&r[0], &m, 3, "resolved", 1, NULL);
    commit_records(&e, r, 1);
    assert_int_equal(redis_int(ctx, "ZSCORE %s:incidents %s", e.prefix, b), -1);
    assert_int_equal(redis_int(ctx, "ZSCORE %s:incidents:ended %s", e.prefix,
                               "0000000000100002 workflow:v1:r2:public"),
                     -1);
    assert_int_equal(redis_int(ctx, "ZCARD %s:incidents:res:{workflow:v1:r2:public}", e.prefix), 0);
    assert_true(redis_int(ctx, "ZSCORE %s:incidents %s", e.prefix, a) > 0);
    assert_true(redis_int(ctx, "ZSCORE %s:incidents:firing %s", e.prefix, a) > 0);
    assert_true(redis_int(ctx, "ZSCORE %s:incidents:res:{workflow:v1:r1:public} %s", e.prefix, a) >
                0);
    assert_true(redis_int(ctx, "ZSCORE %s:incidents %s", e.prefix, c) > 0);
    {
        /* Through the API of state/: everything firing (no limit), and since a time. */
        const struct vg_incident_query firing = {.status = "firing"};
        const struct vg_incident_query recent = {.since_ms = m.base_ms, .limit = 10};
        struct vg_incident_record *v = NULL;
        size_t n = 0;
        char errstr[512];

        assert_int_equal(vg_state_incidents_page(e.st, &firing, &v, &n, errstr, sizeof(errstr)),
                         VG_OK);
        assert_int_equal(n, 1);
        assert_string_equal(v[0].id, a);
        vg_incident_records_free(v, n);
        assert_int_equal(vg_state_incidents_page(e.st, &recent, &v, &n, errstr, sizeof(errstr)),
                         VG_OK);
        assert_int_equal(n, 1);
        assert_string_equal(v[0].id, c);
        vg_incident_records_free(v, n);
    }

    /* A rules reload changed a's severity while it fires: the count moves with it. */
    m.base_ms -= VG_INCIDENT_RETENTION_MS;
    record_init(&r[0], &m, 1, "firing", 2, "high");
    commit_records(&e, r, 1);
    assert_int_equal(firing_count(&e, "m1", "critical"), 0);
    assert_int_equal(firing_count(&e, "m1", "high"), 1);
    record_init(&r[0], &m, 1, "firing", 3, "high");
    commit_records(&e, r, 1);
    assert_int_equal(firing_count(&e, "m1", "high"), 1);
    record_init(&r[0], &m, 1, "deleted", 4, "high");
    commit_records(&e, r, 1);
    assert_int_equal(firing_count(&e, "m1", "high"), 0);
    assert_int_equal(redis_int(ctx, "EXISTS %s:incidents:counts", e.prefix), 0);
    assert_int_equal(redis_int(ctx, "ZCARD %s:incidents:firing", e.prefix), 0);

    free(a);
    free(b);
    free(c);
    redisFree(ctx);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ended_records_leave_the_indexes_old_firing_ones_stay),
        cmocka_unit_test(counts_rebuilt_once_for_records_without_them),
        cmocka_unit_test(counts_and_pages_cost_the_same_with_10_or_20000),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
