/*
 * Reading the partitioned key layout (redis.layout: partitioned): Resources
 * and incident records committed in four partitions' scopes, one Resource
 * in three of them with different updated_at, are read back whole by the
 * state readers (list with filters, get, history, incident pages, the
 * firing counts, incident by id), by the real `vigil get`, `vigil history`
 * and `vigil incidents`, and by the HTTP API of a running `vigil run`
 * (resources paged with limit and cursor, one Resource, incidents, the
 * /metrics firing counts); `vigil incidents resolve` writes its timer in
 * the incident's partition scope; silences stay in the global scope; a
 * reader leaves st in the scope it found it in. Once on one redis-server,
 * once on a real Redis Cluster (three primaries) with the scopes spread
 * over several of them.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_common.h"
#include "env.h"
#include "state_cluster.h"
#include "state_redis.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define TOPIC "seeded"
#define N_PARTS 4
#define N_RES 12
#define N_INC 5 /* incident records per partition */
#define T0 1767225600000LL
#define DUP_ID "workflow:v1:dup:ws-0"

static const struct vg_health_config hc = {0};

/* ---- writing the scopes --------------------------------------------------------------- */

static void claim(struct vg_state *st, int32_t p)
{
    assert_true(vg_test_state_claim(st, TOPIC, p, NULL) > 0);
}

/* One event committed in partition p's scope (claimed first: the scope is entered). */
static void apply(struct vg_state *st, int32_t p, const char *type, const char *name,
                  const char *ws, const char *owner, const char *runtime, int64_t at_ms,
                  int64_t offset)
{
    struct vg_event ev;
    char errstr[512];

    claim(st, p);
    vg_test_event_make(&ev, &(struct vg_test_event){.type = type,
                                                    .name = name,
                                                    .workspace = ws,
                                                    .owner = owner,
                                                    .status = "active",
                                                    .runtime = runtime,
                                                    .time_ms = at_ms,
                                                    .topic = TOPIC,
                                                    .partition = p,
                                                    .offset = offset});
    if (vg_test_state_apply_one(st, &hc, &ev, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("commit %s in %d: %s", name, (int)p, errstr);
    }
    vg_event_fini(&ev);
}

static const char *res_type(int i)
{
    return i % 4 == 3 ? "job" : "workflow";
}

/*
 * wf-00 .. wf-11 in partition i % 4 (workspace ws-(i % 3), type job when
 * i % 4 == 3), the even ones failed later; and "dup" in partitions 1, 3 and
 * 2 (committed in that order, times increasing): running, succeeded, then
 * the newest, failed, in partition 2, neither the first nor the last scope;
 * owned by ann in the older two, by bob in the newest.
 */
static void seed_resources(struct vg_state *st)
{
    int64_t offset[N_PARTS] = {0};
    char errstr[512];

    for (int i = 0; i < N_RES; i++) {
        char name[16];
        char ws[16];
        int32_t p = i % N_PARTS;

        snprintf(name, sizeof(name), "wf-%02d", i);
        snprintf(ws, sizeof(ws), "ws-%d", i % 3);
        apply(st, p, res_type(i), name, ws, NULL, "running", T0 + i, offset[p]++);
        if (i % 2 == 0) {
            apply(st, p, res_type(i), name, ws, NULL, "failed", T0 + 100 + i, offset[p]++);
        }
    }
    /* The cache would carry the Resource from one scope into the next: read each afresh. */
    vg_state_cache_clear(st);
    apply(st, 1, "workflow", "dup", "ws-0", "ann", "running", T0 + 500, offset[1]++);
    vg_state_cache_clear(st);
    apply(st, 3, "workflow", "dup", "ws-0", "ann", "succeeded", T0 + 600, offset[3]++);
    vg_state_cache_clear(st);
    apply(st, 2, "workflow", "dup", "ws-0", "bob", "failed", T0 + 900, offset[2]++);
    vg_state_cache_clear(st);
    assert_int_equal(vg_state_scope(st, NULL, 0, errstr, sizeof(errstr)), VG_OK);
}

static struct vg_state *connect_partitioned(const char *url, const char *prefix, bool cluster);

/*
 * N_INC records per partition p: "inc-<p>-<j>", monitor m(j % 2), firing
 * for j < 3 and resolved after, updated at T0 + 1000 + 10 j + p (the
 * partitions interleave in time). Each partition by a connection of its
 * own: the counts function is loaded once per connection, on the node it
 * first commits to.
 */
static void seed_incidents(const char *url, const char *prefix, bool cluster)
{
    char errstr[512];

    for (int32_t p = 0; p < N_PARTS; p++) {
        struct vg_state *st = connect_partitioned(url, prefix, cluster);
        struct vg_incident_record v[N_INC];
        struct vg_commit cm = {0};

        claim(st, p);
        for (int j = 0; j < N_INC; j++) {
            struct vg_incident_record *r = &v[j];
            char buf[64];

            memset(r, 0, sizeof(*r));
            snprintf(buf, sizeof(buf), "inc-%d-%d", (int)p, j);
            r->id = vg_strdup(buf);
            snprintf(buf, sizeof(buf), "m%d", j % 2);
            r->monitor = vg_strdup(buf);
            snprintf(buf, sizeof(buf), "workflow:v1:wf-%02d:ws-%d", (int)p, (int)p % 3);
            r->resource = vg_strdup(buf);
            r->severity = vg_strdup("high");
            r->incident_type = vg_strdup("");
            r->state = vg_strdup(j < 3 ? "firing" : "resolved");
            r->summary = vg_strdup("failed");
            r->description = vg_strdup("");
            r->topic = vg_strdup(TOPIC);
            r->partition = p;
            r->started_at_ms = T0 + 1000;
            r->updated_at_ms = T0 + 1000 + 10 * j + p;
            r->ended_at_ms = j < 3 ? 0 : r->updated_at_ms;
            r->seq = 1;
        }
        cm.incidents = v;
        cm.n_incidents = N_INC;
        if (vg_state_commit(st, &cm, errstr, sizeof(errstr)) != VG_OK) {
            fail_msg("commit incidents of %d: %s", (int)p, errstr);
        }
        for (int j = 0; j < N_INC; j++) {
            vg_incident_record_fini(&v[j]);
        }
        vg_state_destroy(st);
    }
}

/* The newest incident ids, all partitions together (status firing: j < 3 only). */
static void newest_ids(bool firing_only, size_t n, char out[][16])
{
    size_t k = 0;

    for (int j = N_INC - 1; j >= 0 && k < n; j--) {
        for (int p = N_PARTS - 1; p >= 0 && k < n; p--) {
            if (!firing_only || j < 3) {
                snprintf(out[k++], 16, "inc-%d-%d", p, j);
            }
        }
    }
}

static struct vg_state *connect_partitioned(const char *url, const char *prefix, bool cluster)
{
    struct vg_redis_config rc = {0};
    struct vg_state *st;

    rc.prefix = (char *)prefix;
    rc.cluster = cluster;
    rc.partitioned = true;
    st = vg_test_state_connect_config(url, prefix, &rc);
    assert_non_null(st);
    return st;
}

/* ---- the readers in process ------------------------------------------------------------ */

/* inc (n records, freed here) is exactly the newest want_n incidents of all scopes (the
 * firing ones only), newest first. */
static void expect_newest(struct vg_incident_record *inc, size_t n, bool firing_only, size_t want_n)
{
    char want[8][16];

    assert_true(want_n <= 8);
    newest_ids(firing_only, want_n, want);
    assert_int_equal(n, want_n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(inc[i].id, want[i]);
    }
    vg_incident_records_free(inc, n);
}

static void expect_scope(struct vg_state *st, const char *want)
{
    const char *now = vg_state_scope_now(st);

    if (!now || strcmp(now, want) != 0) {
        fail_msg("st is in scope %s after a read, not %s", now ? now : "global", want);
    }
}

static size_t list_count(struct vg_state *st, const struct vg_state_filter *f)
{
    struct vg_resource **v = NULL;
    size_t n = 0;
    char errstr[512];

    if (vg_state_list(st, f, &v, &n, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("list: %s", errstr);
    }
    vg_resources_free(v, n);
    return n;
}

static void check_readers(struct vg_state *st)
{
    struct vg_resource **v = NULL;
    struct vg_resource *res = NULL;
    struct vg_history_entry *h = NULL;
    struct vg_incident_record *inc = NULL;
    struct vg_incident_count *counts = NULL;
    struct vg_incident_query q = {0};
    struct vg_incident_record r;
    char errstr[512];
    const char *runtimes[3];
    size_t n_runtimes = 0;
    size_t n = 0;
    bool found = false;
    int64_t version = -1;

    /* a reader started in a partition's scope leaves st there */
    assert_int_equal(vg_state_scope(st, TOPIC, 2, errstr, sizeof(errstr)), VG_OK);

    /* every scope, one per id, sorted by name; dup is its newest copy */
    assert_int_equal(vg_state_list(st, NULL, &v, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, N_RES + 1);
    assert_string_equal(v[0]->id, DUP_ID);
    assert_string_equal(v[0]->runtime, "failed");
    for (size_t i = 1; i < n; i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%02d", (int)(i - 1));
        assert_string_equal(v[i]->name, name);
    }
    vg_resources_free(v, n);
    expect_scope(st, TOPIC "/2");
    assert_int_equal(list_count(st, &(struct vg_state_filter){.workspace = "ws-1"}), 4);
    assert_int_equal(list_count(st, &(struct vg_state_filter){.type = "job"}), 3);
    assert_int_equal(list_count(st, &(struct vg_state_filter){.name_glob = "wf-0*"}), 10);
    assert_int_equal(
        list_count(st, &(struct vg_state_filter){.type = "workflow", .name_glob = "wf-1*"}), 1);
    /* owners change: matched on the newest copy only, never on an older one */
    assert_int_equal(list_count(st, &(struct vg_state_filter){.owner = "bob"}), 1);
    assert_int_equal(list_count(st, &(struct vg_state_filter){.owner = "ann"}), 0);
    assert_int_equal(list_count(st, &(struct vg_state_filter){.owner = "ann", .workspace = "ws-0"}),
                     0);

    /* by id: the newest of the three */
    assert_int_equal(vg_state_get(st, DUP_ID, &res, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(res);
    assert_string_equal(res->runtime, "failed");
    assert_int_equal(res->updated_at_ms, T0 + 900);
    vg_resource_destroy(res);
    assert_int_equal(vg_state_get(st, "workflow:v1:wf-05:ws-2", &res, errstr, sizeof(errstr)),
                     VG_OK);
    assert_non_null(res);
    assert_string_equal(res->runtime, "running");
    vg_resource_destroy(res);
    assert_int_equal(vg_state_get(st, "workflow:v1:nope:ws-0", &res, errstr, sizeof(errstr)),
                     VG_OK);
    assert_null(res);

    /* by ids with no partition known (fired timers read them so): every scope, the newest */
    {
        const char *ids[3] = {DUP_ID, "workflow:v1:wf-05:ws-2", "workflow:v1:nope:ws-0"};
        struct vg_resource *got[3] = {NULL, NULL, NULL};

        assert_int_equal(vg_state_scope(st, NULL, 0, errstr, sizeof(errstr)), VG_OK);
        vg_state_cache_clear(st);
        assert_int_equal(vg_state_resolve_ids(st, ids, 3, got, errstr, sizeof(errstr)), VG_OK);
        assert_non_null(got[0]);
        assert_string_equal(got[0]->runtime, "failed");
        assert_non_null(got[1]);
        assert_string_equal(got[1]->runtime, "running");
        assert_null(got[2]);
        assert_null(vg_state_scope_now(st));
        vg_state_cache_clear(st);
        assert_int_equal(vg_state_scope(st, TOPIC, 2, errstr, sizeof(errstr)), VG_OK);
    }

    /* history: the three scopes' entries, oldest first */
    assert_int_equal(vg_state_history(st, DUP_ID, 0, &h, &n, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < n; i++) {
        if (h[i].field && !strcmp(h[i].field, "runtime") && n_runtimes < 3) {
            runtimes[n_runtimes++] = h[i].to;
        }
    }
    assert_int_equal(n_runtimes, 3);
    assert_string_equal(runtimes[0], "running");
    assert_string_equal(runtimes[1], "succeeded");
    assert_string_equal(runtimes[2], "failed");
    vg_history_free(h, n);
    assert_int_equal(vg_state_history(st, DUP_ID, 1, &h, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].at_ms, T0 + 900);
    vg_history_free(h, n);
    expect_scope(st, TOPIC "/2");

    /* incident pages: exactly the newest `limit` of all scopes */
    q.limit = 7;
    assert_int_equal(vg_state_incidents_page(st, &q, &inc, &n, errstr, sizeof(errstr)), VG_OK);
    expect_newest(inc, n, false, 7);
    q.status = "firing";
    q.limit = 5;
    assert_int_equal(vg_state_incidents_page(st, &q, &inc, &n, errstr, sizeof(errstr)), VG_OK);
    expect_newest(inc, n, true, 5);
    q.status = "resolved";
    q.limit = 3;
    assert_int_equal(vg_state_incidents_page(st, &q, &inc, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(inc[0].id, "inc-3-4");
    assert_string_equal(inc[1].id, "inc-2-4");
    assert_string_equal(inc[2].id, "inc-1-4");
    vg_incident_records_free(inc, n);
    /* one Resource's: its own index, in its partition's scope only */
    q.status = NULL;
    q.limit = 0;
    q.resource = "workflow:v1:wf-02:ws-2";
    assert_int_equal(vg_state_incidents_page(st, &q, &inc, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, N_INC);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(inc[i].partition, 2);
    }
    vg_incident_records_free(inc, n);
    assert_int_equal(vg_state_incidents_list(st, 0, &inc, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, N_PARTS * N_INC);
    vg_incident_records_free(inc, n);
    /* since: j 3 and 4 of every partition, newest first */
    assert_int_equal(vg_state_incidents_list(st, T0 + 1030, &inc, &n, errstr, sizeof(errstr)),
                     VG_OK);
    expect_newest(inc, n, false, 8);

    /* by id: in whichever scope holds it */
    assert_int_equal(vg_state_incident_get(st, "inc-1-4", &r, &found, errstr, sizeof(errstr)),
                     VG_OK);
    assert_true(found);
    assert_int_equal(r.partition, 1);
    assert_string_equal(r.state, "resolved");
    vg_incident_record_fini(&r);
    assert_int_equal(vg_state_incident_get(st, "inc-9-9", &r, &found, errstr, sizeof(errstr)),
                     VG_OK);
    assert_false(found);

    /* firing counts: every scope's summed (m0: j 0 and 2, m1: j 1, per partition) */
    assert_int_equal(vg_state_incidents_firing_counts(st, &counts, &n, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(counts[i].severity, "high");
        assert_int_equal(counts[i].firing, !strcmp(counts[i].monitor, "m0") ? 8 : 4);
    }
    vg_incident_counts_free(counts, n);
    expect_scope(st, TOPIC "/2");

    /* silences are global, whatever scope st is in */
    {
        char *matchers[1] = {vg_strdup("monitor=m0")};
        struct vg_silence s = {0};
        struct vg_silence *all = NULL;

        s.id = vg_strdup("s1");
        s.matchers = matchers;
        s.n_matchers = 1;
        s.starts_at_ms = T0;
        s.ends_at_ms = vg_now_ms() + 3600000;
        s.created_by = vg_strdup("test");
        s.comment = vg_strdup("partitioned");
        assert_int_equal(vg_state_silence_add(st, &s, errstr, sizeof(errstr)), VG_OK);
        vg_free(matchers[0]);
        vg_free(s.id);
        vg_free(s.created_by);
        vg_free(s.comment);
        expect_scope(st, TOPIC "/2");
        assert_int_equal(vg_state_silences_version(st, &version, errstr, sizeof(errstr)), VG_OK);
        assert_int_equal(version, 1);
        assert_int_equal(vg_state_scope(st, TOPIC, 0, errstr, sizeof(errstr)), VG_OK);
        assert_int_equal(vg_state_silences_list(st, &all, &n, errstr, sizeof(errstr)), VG_OK);
        assert_int_equal(n, 1);
        assert_string_equal(all[0].id, "s1");
        vg_silences_free(all, n);
        expect_scope(st, TOPIC "/0");
    }
    assert_int_equal(vg_state_scope(st, NULL, 0, errstr, sizeof(errstr)), VG_OK);
}

/* ---- the real binary ------------------------------------------------------------------ */

static cJSON *cli_json(struct vg_test_env *e, const char *const *args)
{
    char *out = NULL;
    char *err = NULL;
    int rc = vg_test_env_cli(e, &out, &err, args);
    cJSON *j;

    if (rc != 0) {
        fail_msg("vigil %s %s: exit %d: %s%s", args[0], args[1] ? args[1] : "", rc, out, err);
    }
    j = cJSON_Parse(out);
    if (!j) {
        fail_msg("vigil %s: not JSON: %s", args[0], out);
    }
    free(out);
    free(err);
    return j;
}

static void check_cli(struct vg_test_env *e)
{
    cJSON *j;
    const cJSON *it;
    char *out = NULL;
    char *err = NULL;
    size_t n_dup = 0;
    const char *last = NULL;
    int rc;

    j = cli_json(e, (const char *const[]){"get", "-o", "json", NULL});
    assert_int_equal(cJSON_GetArraySize(j), N_RES + 1);
    cJSON_ArrayForEach(it, j)
    {
        if (!strcmp(cJSON_GetObjectItem(it, "id")->valuestring, DUP_ID)) {
            n_dup++;
            assert_string_equal(cJSON_GetObjectItem(it, "runtime")->valuestring, "failed");
        }
    }
    assert_int_equal(n_dup, 1);
    cJSON_Delete(j);

    rc = vg_test_env_cli(e, &out, &err, (const char *const[]){"get", NULL});
    if (rc != 0 || !strstr(out, "wf-11") || !strstr(out, "wf-00") || !strstr(out, "dup")) {
        fail_msg("vigil get: exit %d: %s%s", rc, out, err);
    }
    free(out);
    free(err);

    j = cli_json(e, (const char *const[]){"get", DUP_ID, "-o", "json", NULL});
    assert_string_equal(cJSON_GetObjectItem(j, "runtime")->valuestring, "failed");
    cJSON_Delete(j);

    j = cli_json(e, (const char *const[]){"history", DUP_ID, "-o", "json", NULL});
    cJSON_ArrayForEach(it, j)
    {
        const cJSON *field = cJSON_GetObjectItem(it, "field");

        if (cJSON_IsString(field) && !strcmp(field->valuestring, "runtime")) {
            last = cJSON_GetObjectItem(it, "to")->valuestring;
            if (!strcmp(last, "running")) {
                n_dup = 10; /* the oldest scope's entry is there */
            }
        }
    }
    assert_int_equal(n_dup, 10);
    assert_non_null(last);
    assert_string_equal(last, "failed");
    cJSON_Delete(j);

    j = cli_json(e, (const char *const[]){"incidents", "--all", "-o", "json", NULL});
    assert_int_equal(cJSON_GetArraySize(j), N_PARTS * N_INC);
    cJSON_Delete(j);
}

/* `vigil incidents resolve` of an incident of partition 2: its timer is in that scope. */
static void check_resolve(struct vg_test_env *e, struct redisContext *ctx)
{
    char *out = NULL;
    char *err = NULL;
    redisReply *r;
    int rc = vg_test_env_cli(e, &out, &err,
                             (const char *const[]){"incidents", "resolve", "inc-2-1", NULL});

    if (rc != 0) {
        fail_msg("vigil incidents resolve: exit %d: %s%s", rc, out, err);
    }
    free(out);
    free(err);
    r = redisCommand(ctx, "ZRANGE %s:{" TOPIC "/2}:timers:" TOPIC "/2 0 -1", e->prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->str, "workflow:v1:wf-02:ws-2"));
    assert_int_equal(r->element[0]->str[0], 'x');
    freeReplyObject(r);
    r = redisCommand(ctx, "EXISTS %s:timers:" TOPIC "/2", e->prefix);
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* ---- the HTTP API of a running vigil -------------------------------------------------- */

static cJSON *api_json(struct vg_test_env *e, const char *path)
{
    struct vg_test_http_reply r = vg_test_env_http(e, "GET", path, NULL, NULL);
    cJSON *j = r.status == 200 ? cJSON_Parse(r.body) : NULL;

    if (!j) {
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    }
    vg_test_http_reply_free(&r);
    return j;
}

static void check_api(struct vg_test_env *e)
{
    char *path = vg_strdup("/api/v1/resources?limit=5");
    char seen[N_RES + 1][64];
    size_t n_seen = 0;
    char want[8][16];
    const cJSON *items;
    cJSON *j;

    /* pages of 5 with the cursor: every Resource once, in name order */
    while (path) {
        const cJSON *next;
        const cJSON *it;

        j = api_json(e, path);
        free(path);
        path = NULL;
        assert_int_equal(cJSON_GetObjectItem(j, "total")->valueint, N_RES + 1);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "items"))
        {
            assert_true(n_seen < N_RES + 1);
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s",
                     cJSON_GetObjectItem(it, "name")->valuestring);
        }
        next = cJSON_GetObjectItem(j, "next_cursor");
        if (cJSON_IsString(next)) {
            path = vg_asprintf("/api/v1/resources?limit=5&cursor=%s", next->valuestring);
        }
        cJSON_Delete(j);
    }
    assert_int_equal(n_seen, N_RES + 1);
    assert_string_equal(seen[0], "dup");
    for (size_t i = 1; i < n_seen; i++) {
        assert_true(strcmp(seen[i - 1], seen[i]) < 0);
    }

    j = api_json(e, "/api/v1/resources/" DUP_ID);
    assert_string_equal(cJSON_GetObjectItem(j, "runtime")->valuestring, "failed");
    cJSON_Delete(j);
    j = api_json(e, "/api/v1/resources/" DUP_ID "/history");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(j, "items")) >= 3);
    cJSON_Delete(j);

    j = api_json(e, "/api/v1/incidents?limit=7");
    items = cJSON_GetObjectItem(j, "items");
    newest_ids(false, 7, want);
    assert_int_equal(cJSON_GetArraySize(items), 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "id")->valuestring,
                            want[i]);
    }
    cJSON_Delete(j);

    assert_true(vg_test_env_metric(e, "vigil_incidents_firing{monitor=\"m0\",severity=\"high\"}") ==
                8);
    assert_true(vg_test_env_metric(e, "vigil_incidents_firing{monitor=\"m1\",severity=\"high\"}") ==
                4);
}

/* ---- one redis-server ------------------------------------------------------------------ */

static struct vg_test_env E;

/* Commands Redis has run so far, INFO itself left out. */
static long long commands_run(redisContext *ctx)
{
    long long n = vg_test_redis_commands_run(ctx);

    assert_true(n >= 0);
    return n;
}

/*
 * What a /metrics scrape's firing counts and a lookup by id cost: the
 * registry, then a fixed number of commands per scope, never per record.
 */
static void check_costs(struct vg_state *st, redisContext *ctx)
{
    struct vg_incident_count *counts = NULL;
    struct vg_resource *res = NULL;
    char errstr[512];
    size_t n = 0;
    long long before = commands_run(ctx);

    assert_int_equal(vg_state_incidents_firing_counts(st, &counts, &n, errstr, sizeof(errstr)),
                     VG_OK);
    vg_incident_counts_free(counts, n);
    /* SMEMBERS of the registry, then EXISTS of the marker and HGETALL of the counts per scope */
    assert_int_equal(commands_run(ctx) - before, 1 + 2 * N_PARTS);
    before = commands_run(ctx);
    assert_int_equal(vg_state_get(st, DUP_ID, &res, errstr, sizeof(errstr)), VG_OK);
    vg_resource_destroy(res);
    assert_int_equal(commands_run(ctx) - before, 1 + N_PARTS);

    /* one scope's counts lost (a new Redis, an older vigil): rebuilt from its records */
    freeReplyObject(redisCommand(
        ctx, "DEL %s:{" TOPIC "/1}:incidents:indexed %s:{" TOPIC "/1}:incidents:counts", E.prefix,
        E.prefix));
    assert_int_equal(vg_state_incidents_firing_counts(st, &counts, &n, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(counts[i].firing, !strcmp(counts[i].monitor, "m0") ? 8 : 4);
    }
    vg_incident_counts_free(counts, n);
    assert_null(vg_state_scope_now(st));
}

static void test_partitioned_one_redis(void **state)
{
    const char *url = vg_redis_child_url(E.redis);
    struct vg_state *st = E.st; /* the test's own connection, in vigil's layout */
    redisContext *ctx;
    redisReply *r;
    (void)state;

    seed_resources(st);
    seed_incidents(url, E.prefix, false);
    /* the partitioned keys are where the layout puts them, none under the bare prefix */
    ctx = redisConnectUnix(url + strlen("unix://"));
    assert_non_null(ctx);
    r = redisCommand(ctx, "EXISTS %s:{" TOPIC "/2}:res:{" DUP_ID "}", E.prefix);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(ctx, "EXISTS %s:idx:all", E.prefix);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    check_readers(st);
    check_costs(st, ctx);
    check_cli(&E);
    check_resolve(&E, ctx);

    /* the daemon's API; the silence is in the global scope (the API lists it) */
    assert_true(vg_test_env_spawn(&E));
    check_api(&E);
    {
        cJSON *j = api_json(&E, "/api/v1/silences");

        assert_int_equal(cJSON_GetObjectItem(j, "count")->valueint, 1);
        cJSON_Delete(j);
    }
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    redisFree(ctx);
}

/* ---- a Redis Cluster ----------------------------------------------------------------- */

static struct cluster_test C;

static void test_partitioned_cluster(void **state)
{
    struct vg_test_env *e = &C.e;
    struct vg_state *st = e->st; /* the test's own connection, in vigil's layout */
    bool on[8] = {false};
    int n_nodes = 0;
    (void)state;

    seed_resources(st);
    seed_incidents(e->opts.redis_cluster_url, e->prefix, true);
    /* the scopes are on several primaries, each Resource's hash on its scope's */
    for (int p = 0; p < N_PARTS; p++) {
        char tag[32];
        int slot;
        int owner;
        redisContext *ctx;
        redisReply *r;

        snprintf(tag, sizeof(tag), TOPIC "/%d", p);
        slot = state_cluster_keyslot(tag, strlen(tag));
        owner = vg_test_cluster_owner(&C.rc, 0, slot);
        assert_true(owner >= 0 && owner < 8);
        n_nodes += !on[owner];
        on[owner] = true;
        ctx = vg_test_cluster_connect(&C.rc, (size_t)owner);
        assert_non_null(ctx);
        r = redisCommand(ctx, "EXISTS %s:{%s}:res:{%s:v1:wf-%02d:ws-%d}", e->prefix, tag,
                         res_type(p), p, p % 3);
        assert_non_null(r);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        redisFree(ctx);
    }
    fprintf(stderr, "the %d scopes are on %d primaries\n", N_PARTS, n_nodes);
    assert_true(n_nodes >= 2);

    check_readers(st);
    check_cli(e);
}

int main(void)
{
    struct vg_test_env_case one = {
        .env = &E,
        .name = "partitioned-read",
        .opts = {.http = true, .layout = "partitioned"},
    };
    struct cluster_test_case cl = {.t = &C, .name = "partitioned-read-cluster", .partitions = 2};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_partitioned_one_redis, vg_test_env_setup,
                                                 vg_test_env_teardown, &one),
        cmocka_unit_test_prestate_setup_teardown(
            test_partitioned_cluster, cluster_test_setup_partitioned, cluster_test_teardown, &cl),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
