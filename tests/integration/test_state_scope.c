/*
 * The partitioned layout's scopes (redis.layout partitioned, docs/state.md
 * "Layouts") on one real redis-server and on a real Redis Cluster (three
 * primaries, one replica each): a partition's keys under
 * "<prefix>:{<topic>/<partition>}:...", the registry P:parts, scopes of 12
 * partitions spread over the primaries with one single-slot commit each,
 * connections to other primaries parked and taken back, a global command
 * from inside a partition's scope, a reconnect after the scope's primary
 * died; and the replay's swap of a partitioned state (every scope moved,
 * on every primary, the registry swapped, the silences kept).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "redis_cluster.h"
#include "state_cluster.h"
#include "state_int.h"
#include "state_redis.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define T0 1764323400000LL
#define N_PARTS 12

static struct vg_test_redis fx;     /* one redis-server */
static struct vg_test_cluster g_rc; /* the cluster */

/* Where the test looks: the one redis-server, or the cluster. */
static bool on_cluster;

/* ---- helpers ---- */

static struct vg_state *connect_as(const char *url, const char *prefix, const char *tag,
                                   bool cluster, bool partitioned)
{
    struct vg_redis_config rc = {0};
    struct vg_state *st;

    rc.prefix = (char *)(tag ? tag : prefix);
    rc.tag = tag;
    rc.cluster = cluster;
    rc.partitioned = partitioned;
    st = vg_test_state_connect_config(url, prefix, &rc);
    assert_non_null(st);
    return st;
}

static void claim(struct vg_state *st, const char *topic, int32_t partition)
{
    assert_true(vg_test_state_claim(st, topic, partition, NULL) > 0);
}

static void enter(struct vg_state *st, const char *topic, int32_t partition)
{
    assert_true(vg_test_state_enter(st, topic, partition));
}

/* One event of workflow `name` at `offset` of topic/partition, committed in that partition's
 * scope (entered first); *id (may be NULL) gets its Resource id (heap). */
static void apply_in(struct vg_state *st, const char *topic, int32_t partition, int64_t offset,
                     const char *name, char **id)
{
    struct vg_event ev;
    char errstr[512] = "";
    vg_err_t err;

    enter(st, topic, partition);
    vg_test_event_workflow(&ev, name, "ws", "running", topic, partition, offset, T0 + offset);
    err = vg_test_state_apply_one(st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("commit %s in %s/%d: %s: %s", name, topic, (int)partition, vg_err_name(err),
                 errstr);
    }
    if (id) {
        *id = vg_strdup(ev.id);
    }
    vg_event_fini(&ev);
}

/* A raw connection that holds `key`: the one redis-server's, or its primary's on the cluster. */
static redisContext *raw_for(const char *key)
{
    redisContext *ctx = on_cluster ? vg_test_cluster_connect_key(&g_rc, key) : fx.raw;

    assert_non_null(ctx);
    return ctx;
}

static void raw_done(redisContext *ctx)
{
    if (ctx != fx.raw) {
        redisFree(ctx);
    }
}

/* A command on `key` (its first argument after the verb, given again in fmt); the reply. */
static redisReply *raw_cmd(const char *key, const char *fmt, ...)
{
    redisContext *ctx = raw_for(key);
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    raw_done(ctx);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) {
        fail_msg("%s: %s", fmt, r->str);
    }
    return r;
}

static long long raw_int(const char *verb, const char *key)
{
    redisReply *r = raw_cmd(key, "%s %s", verb, key);
    long long n;

    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

/* A write of the test's own: `cmd_fmt` (its one %s the key) on `key` (freed here), on the raw
 * connection that holds it. */
static void seed(char *key, const char *cmd_fmt)
{
    freeReplyObject(raw_cmd(key, cmd_fmt, key));
    free(key);
}

/* "<topic>/<partition>" in a static buffer: what vg_state_scope_now says. */
static const char *scope_name(const char *topic, int32_t partition)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s/%d", topic, (int)partition);
    return buf;
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...)
{
    va_list ap;
    char key[512];
    long long n;

    va_start(ap, fmt);
    vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    n = raw_int("EXISTS", key);
    return n == 1;
}

/* Keys matching `pattern` anywhere (every primary of the cluster). */
static long long count_keys(const char *pattern, size_t *primaries_with)
{
    long long n = 0;

    if (on_cluster) {
        n = vg_test_cluster_count_everywhere(&g_rc, pattern, primaries_with);
    } else {
        char cursor[32] = "0";

        do {
            redisReply *r = redisCommand(fx.raw, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);

            assert_non_null(r);
            assert_int_equal(r->type, REDIS_REPLY_ARRAY);
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            n += (long long)r->element[1]->elements;
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
        if (primaries_with) {
            *primaries_with = n > 0;
        }
    }
    assert_true(n >= 0);
    return n;
}

/* ---- one redis-server ---- */

static int redis_setup(void **state)
{
    *state = &fx;
    on_cluster = false;
    return vg_test_redis_start(&fx, "state-scope", NULL, false);
}

/* Every key a commit writes is in its partition's scope; the registry lists the partitions. */
static void scopes_on_one_redis(void **state)
{
    static const int32_t parts[] = {10, 2, 0, 1}; /* claimed out of order */
    char *prefix = vg_asprintf("scope-%d", (int)getpid());
    struct vg_state *st = connect_as(vg_test_redis_url(&fx), prefix, NULL, false, true);
    const char *topic = "t.events";
    struct vg_offset *v = NULL;
    size_t n = 0;
    char *ids[VG_ARRAY_LEN(parts)];
    char errstr[512] = "";
    char *pattern;
    (void)state;

    assert_true(vg_state_partitioned(st));
    assert_null(vg_state_scope_now(st));
    for (size_t i = 0; i < VG_ARRAY_LEN(parts); i++) {
        claim(st, topic, parts[i]);
        assert_string_equal(vg_state_scope_now(st), scope_name(topic, parts[i]));
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(parts); i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%d", (int)parts[i]);
        apply_in(st, topic, parts[i], 5 + (int64_t)i, name, &ids[i]);
    }
    /* the keys: each Resource in its partition's scope, its offsets there too */
    for (size_t i = 0; i < VG_ARRAY_LEN(parts); i++) {
        assert_true(exists("%s:{%s/%d}:res:{%s}", prefix, topic, (int)parts[i], ids[i]));
        assert_false(exists("%s:res:{%s}", prefix, ids[i]));
        for (size_t j = 0; j < VG_ARRAY_LEN(parts); j++) {
            if (j != i) {
                assert_false(exists("%s:{%s/%d}:res:{%s}", prefix, topic, (int)parts[j], ids[i]));
            }
        }
        enter(st, topic, parts[i]);
        assert_int_equal(vg_test_state_applied(st, topic, parts[i]), 5 + (int64_t)i);
        free(ids[i]);
    }
    /* nothing of a partition in the global scope: only the registry */
    pattern = vg_asprintf("%s:*", prefix);
    {
        long long all = count_keys(pattern, NULL);
        char *scoped = vg_asprintf("%s:{%s/*", prefix, topic);

        assert_int_equal(all, count_keys(scoped, NULL) + 1);
        free(scoped);
    }
    free(pattern);
    {
        char *parts_key = vg_asprintf("%s:parts", prefix);

        assert_int_equal(raw_int("SCARD", parts_key), VG_ARRAY_LEN(parts));
        free(parts_key);
    }
    /* the registry, sorted by partition number */
    assert_int_equal(vg_state_scopes(st, &v, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, VG_ARRAY_LEN(parts));
    assert_int_equal(v[0].partition, 0);
    assert_int_equal(v[1].partition, 1);
    assert_int_equal(v[2].partition, 2);
    assert_int_equal(v[3].partition, 10);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].topic, topic);
    }
    vg_state_scopes_free(v, n);
    /* back to the global scope */
    enter(st, NULL, 0);
    assert_null(vg_state_scope_now(st));
    vg_state_destroy(st);
    free(prefix);
}

/* The single layout: vg_state_scope does nothing, every key under the prefix. */
static void single_layout_has_no_scopes(void **state)
{
    char *prefix = vg_asprintf("single-%d", (int)getpid());
    struct vg_state *st = connect_as(vg_test_redis_url(&fx), prefix, NULL, false, false);
    struct vg_offset *v = NULL;
    size_t n = 1;
    char errstr[512] = "";
    char *id = NULL;
    (void)state;

    assert_false(vg_state_partitioned(st));
    claim(st, "t.events", 3);
    assert_null(vg_state_scope_now(st));
    apply_in(st, "t.events", 3, 7, "wf-single", &id);
    assert_null(vg_state_scope_now(st));
    assert_true(exists("%s:res:{%s}", prefix, id));
    assert_false(exists("%s:parts", prefix));
    assert_int_equal(vg_state_scopes(st, &v, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, 0);
    vg_state_scopes_free(v, n);
    free(id);
    vg_state_destroy(st);
    free(prefix);
}

/*
 * vigil replay's swap of a partitioned state (state_replay.c), on the one
 * redis-server or the cluster: the fresh state under L:replay:<ts> (with
 * held pages and a group buffer to drop) replaces the live one under L,
 * which goes to L:old:<ts>; every partition's keys move, the registry is
 * the fresh one, the silences stay; the old state can be deleted whole.
 */
static void swap_scenario(const char *url, const char *topic)
{
    char *live = vg_asprintf("swap-%d", (int)getpid());
    char *fresh = vg_asprintf("%s:replay:123", live);
    char *old = vg_asprintf("%s:old:123", live);
    /* the global scope's prefixes: "{L}..." on a cluster */
    char *live_g = on_cluster ? vg_asprintf("{%s}", live) : vg_strdup(live);
    char *fresh_g = vg_asprintf("%s:replay:123", live_g);
    char *old_g = vg_asprintf("%s:old:123", live_g);
    struct vg_state *lst = connect_as(url, live, NULL, on_cluster, true);
    struct vg_state *fst = connect_as(url, fresh, live, on_cluster, true);
    struct vg_state_replay_counts counts;
    char *skip_replay = vg_asprintf("%s:replay:", live);
    char *skip_old = vg_asprintf("%s:old:", live);
    const char *const skip[] = {skip_replay, skip_old, NULL};
    char errstr[512] = "";
    long long n = 0;
    long long dropped = 0;
    size_t primaries = 0;
    char *old_a;
    char *old_b;
    char *new_a;
    char *new_c;
    char *key;
    redisReply *r;

    /* the live state: two partitions; a silence and its version in the global scope */
    claim(lst, topic, 0);
    claim(lst, topic, 1);
    apply_in(lst, topic, 0, 3, "old-a", &old_a);
    apply_in(lst, topic, 1, 4, "old-b", &old_b);
    seed(vg_asprintf("%s:silences", live_g), "HSET %s s1 kept");
    seed(vg_asprintf("%s:silences:version", live_g), "SET %s 7");
    /* and a group buffer with its timer, global as well */
    seed(vg_asprintf("%s:grp:g3", live_g), "SET %s x");
    seed(vg_asprintf("%s:timers:groups", live_g), "ZADD %s 1 g3");

    /* the replayed state: three partitions, held pages in two of them, a group buffer */
    claim(fst, topic, 0);
    claim(fst, topic, 1);
    claim(fst, topic, 2);
    apply_in(fst, topic, 0, 10, "new-a", &new_a);
    apply_in(fst, topic, 2, 12, "new-c", &new_c);
    seed(vg_asprintf("%s:{%s/0}:outbox", fresh, topic), "XADD %s * page 1");
    seed(vg_asprintf("%s:{%s/0}:outbox", fresh, topic), "XADD %s * page 2");
    seed(vg_asprintf("%s:{%s/1}:outbox", fresh, topic), "XADD %s * page 3");
    seed(vg_asprintf("%s:{%s/2}:grp:idx:g1", fresh, topic), "SET %s x");
    seed(vg_asprintf("%s:{%s/2}:grp:g1", fresh, topic), "SET %s x");
    /* a global group buffer (the partitioned layout's) with its index and timer */
    seed(vg_asprintf("%s:grp:idx:g2", fresh_g), "SET %s x");
    seed(vg_asprintf("%s:grp:g2", fresh_g), "SET %s x");
    seed(vg_asprintf("%s:timers:groups", fresh_g), "ZADD %s 1 g2");
    enter(fst, NULL, 0);
    if (on_cluster) {
        /* the move must visit every primary to find them all */
        key = vg_asprintf("%s:{*", fresh);
        (void)count_keys(key, &primaries);
        free(key);
        assert_true(primaries >= 2);
    }

    /* the summary's counts add up the scopes; st is back in its scope after */
    assert_int_equal(vg_state_replay_counts(fst, &counts, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(counts.resources, 2);
    assert_int_equal(counts.outbox, 3);
    assert_null(vg_state_scope_now(fst));
    /* held pages dropped in every scope: 3 pages and 2 group buffers (one global) */
    assert_int_equal(vg_state_drop_pages(fst, &dropped, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(dropped, 5);
    assert_null(vg_state_scope_now(fst));
    assert_false(exists("%s:{%s/0}:outbox", fresh, topic));
    assert_false(exists("%s:{%s/1}:outbox", fresh, topic));
    assert_false(exists("%s:{%s/2}:grp:g1", fresh, topic));
    assert_false(exists("%s:{%s/2}:grp:idx:g1", fresh, topic));
    assert_false(exists("%s:grp:g2", fresh_g));
    assert_false(exists("%s:grp:idx:g2", fresh_g));
    assert_false(exists("%s:timers:groups", fresh_g));
    assert_int_equal(vg_state_replay_counts(fst, &counts, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(counts.outbox, 0);

    /* the swap, as vigil replay does it */
    assert_int_equal(vg_state_move_prefix(fst, live, old, skip, &n, errstr, sizeof(errstr)), VG_OK);
    assert_true(n > 4);
    assert_int_equal(vg_state_move_prefix(fst, fresh, live, NULL, &n, errstr, sizeof(errstr)),
                     VG_OK);
    assert_true(n > 4);
    vg_state_destroy(fst);
    vg_state_destroy(lst);

    /* the replayed Resources are live, each in its partition's scope */
    assert_true(exists("%s:{%s/0}:res:{%s}", live, topic, new_a));
    assert_true(exists("%s:{%s/2}:res:{%s}", live, topic, new_c));
    assert_false(exists("%s:{%s/0}:res:{%s}", live, topic, old_a));
    assert_false(exists("%s:{%s/1}:res:{%s}", live, topic, old_b));
    /* the previous ones are under L:old:<ts>, same scopes */
    assert_true(exists("%s:{%s/0}:res:{%s}", old, topic, old_a));
    assert_true(exists("%s:{%s/1}:res:{%s}", old, topic, old_b));
    /* the registry is the replay's, the old one went with the old state */
    key = vg_asprintf("%s:parts", live_g);
    assert_int_equal(raw_int("SCARD", key), 3);
    free(key);
    key = vg_asprintf("%s:parts", old_g);
    assert_int_equal(raw_int("SCARD", key), 2);
    free(key);
    /* the silences stayed */
    key = vg_asprintf("%s:silences", live_g);
    r = raw_cmd(key, "HGET %s s1", key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "kept");
    freeReplyObject(r);
    free(key);
    assert_true(exists("%s:silences:version", live_g));
    assert_false(exists("%s:silences", old_g));
    /* the live group buffer and its timer went aside with the old state */
    assert_true(exists("%s:grp:g3", old_g));
    assert_true(exists("%s:timers:groups", old_g));
    assert_false(exists("%s:grp:g3", live_g));
    assert_false(exists("%s:timers:groups", live_g));
    /* nothing left under the replay's prefix */
    key = vg_asprintf("%s:*", fresh);
    assert_int_equal(count_keys(key, NULL), 0);
    free(key);
    key = vg_asprintf("%s:*", fresh_g);
    assert_int_equal(count_keys(key, NULL), 0);
    free(key);

    /* a new connection reads the swapped state through the registry */
    lst = connect_as(url, live, NULL, on_cluster, true);
    {
        struct vg_offset *v = NULL;
        size_t nv = 0;

        assert_int_equal(vg_state_scopes(lst, &v, &nv, errstr, sizeof(errstr)), VG_OK);
        assert_int_equal(nv, 3);
        vg_state_scopes_free(v, nv);
    }
    enter(lst, topic, 2);
    assert_int_equal(vg_test_state_applied(lst, topic, 2), 12);
    enter(lst, topic, 0);
    assert_int_equal(vg_test_state_applied(lst, topic, 0), 10);
    vg_state_destroy(lst);

    /* the old state deleted whole, on every primary; the live state and the silences stay */
    lst = connect_as(url, live, NULL, on_cluster, true);
    assert_int_equal(vg_state_delete_prefix(lst, old, &n, errstr, sizeof(errstr)), VG_OK);
    assert_true(n > 4);
    key = vg_asprintf("%s:*", old);
    assert_int_equal(count_keys(key, NULL), 0);
    free(key);
    key = vg_asprintf("%s:*", old_g);
    assert_int_equal(count_keys(key, NULL), 0);
    free(key);
    assert_true(exists("%s:{%s/0}:res:{%s}", live, topic, new_a));
    assert_true(exists("%s:silences", live_g));
    vg_state_destroy(lst);

    free(old_a);
    free(old_b);
    free(new_a);
    free(new_c);
    free(skip_replay);
    free(skip_old);
    free(live_g);
    free(fresh_g);
    free(old_g);
    free(live);
    free(fresh);
    free(old);
}

static void replay_swap_on_one_redis(void **state)
{
    (void)state;
    swap_scenario(vg_test_redis_url(&fx), "t.events");
}

/* ---- the cluster ---- */

static char *g_topic;         /* partitions 0..N_PARTS-1 over all three primaries */
static char *g_prefix;        /* of g_st */
static struct vg_state *g_st; /* partitioned, on the cluster */
static int g_global_owner;    /* the primary of the global scope's slot */

static int cluster_setup(void **state)
{
    (void)state;
    on_cluster = true;
    return vg_test_cluster_start(&g_rc, "state-scope", 3, 1);
}

static int cluster_teardown(void **state)
{
    (void)state;
    vg_state_destroy(g_st);
    free(g_topic);
    free(g_prefix);
    vg_test_cluster_stop(&g_rc);
    return 0;
}

static int owner_of_scope(const char *prefix, const char *topic, int32_t p)
{
    char *key = vg_asprintf("%s:{%s/%d}:offsets", prefix, topic, (int)p);
    int owner = vg_test_cluster_key_owner(&g_rc, key);

    free(key);
    assert_true(owner >= 0);
    return owner;
}

/* 12 partitions, one commit each (single-slot: no CROSSSLOT), spread over the primaries. */
static void scopes_spread_over_primaries(void **state)
{
    bool seen[VG_TEST_CLUSTER_MAX_NODES] = {false};
    size_t distinct = 0;
    char *key;
    (void)state;

    g_topic = vg_test_cluster_topic_spread(&g_rc, "spread", N_PARTS, 3);
    assert_non_null(g_topic);
    g_prefix = vg_asprintf("scope-%d", (int)getpid());
    g_st = connect_as(vg_test_cluster_url(&g_rc, 0), g_prefix, NULL, true, true);
    key = vg_asprintf("{%s}:parts", g_prefix);
    g_global_owner = vg_test_cluster_key_owner(&g_rc, key);
    free(key);
    for (int32_t p = 0; p < N_PARTS; p++) {
        claim(g_st, g_topic, p);
    }
    for (int32_t p = 0; p < N_PARTS; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%d", (int)p);
        apply_in(g_st, g_topic, p, 100 + p, name, NULL);
    }
    for (int32_t p = 0; p < N_PARTS; p++) {
        int owner = owner_of_scope(g_prefix, g_topic, p);
        char *pattern = vg_asprintf("%s:\\{%s/%d\\}:*", g_prefix, g_topic, (int)p);
        long long on_owner = vg_test_cluster_scan_count(&g_rc, (size_t)owner, pattern);
        long long everywhere = count_keys(pattern, NULL);
        char *tag = vg_asprintf("%s/%d", g_topic, (int)p);
        redisContext *ctx = vg_test_cluster_connect(&g_rc, (size_t)owner);
        redisReply *r = redisCommand(ctx, "CLUSTER COUNTKEYSINSLOT %d",
                                     (int)state_cluster_keyslot(tag, strlen(tag)));

        /* the scope's keys (the Resource, its history, indexes, offsets, epoch) are all on the
         * primary of its slot, and all in that slot */
        assert_true(on_owner >= 4);
        assert_int_equal(on_owner, everywhere);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, on_owner);
        freeReplyObject(r);
        redisFree(ctx);
        free(tag);
        free(pattern);
        enter(g_st, g_topic, p);
        assert_int_equal(vg_test_state_applied(g_st, g_topic, p), 100 + p);
        if (!seen[owner]) {
            seen[owner] = true;
            distinct++;
        }
    }
    fprintf(stderr, "scope: %d partitions' keys on %zu primaries\n", N_PARTS, distinct);
    assert_int_equal(distinct, 3);
    /* the registry, on the global slot's primary */
    key = vg_asprintf("{%s}:parts", g_prefix);
    assert_int_equal(raw_int("SCARD", key), N_PARTS);
    free(key);
    /* nothing else in the global scope */
    key = vg_asprintf("\\{%s\\}:*", g_prefix);
    assert_int_equal(count_keys(key, NULL), 1);
    free(key);
}

/* The ids of the connections on every primary whose last command was `cmd` (CLIENT LIST). */
static char *conn_ids(const char *cmd)
{
    struct vg_buf b = {0};
    char *needle = vg_asprintf(" cmd=%s ", cmd);
    char *out;

    for (size_t i = 0; i < g_rc.n; i++) {
        redisContext *ctx;
        redisReply *r;

        if (g_rc.nodes[i].pid == 0 || !vg_test_cluster_is_primary(&g_rc, i)) {
            continue;
        }
        ctx = vg_test_cluster_connect(&g_rc, i);
        assert_non_null(ctx);
        r = redisCommand(ctx, "CLIENT LIST");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        for (char *line = r->str; line && *line;) {
            char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            char *one = vg_strndup(line, len);

            if (strstr(one, needle)) {
                const char *id = strstr(one, "id=");
                int64_t v = 0;
                char num[32];
                size_t k = 0;

                for (id += 3; id[k] >= '0' && id[k] <= '9' && k + 1 < sizeof(num); k++) {
                    num[k] = id[k];
                }
                num[k] = '\0';
                assert_true(vg_parse_i64(num, &v));
                vg_buf_printf(&b, "%zu:%lld ", i, (long long)v);
            }
            free(one);
            line = end ? end + 1 : NULL;
        }
        freeReplyObject(r);
        redisFree(ctx);
    }
    free(needle);
    out = vg_strndup(b.data ? b.data : "", b.len);
    vg_buf_fini(&b);
    return out;
}

static size_t words(const char *s)
{
    size_t n = 0;

    for (const char *p = s; *p; p++) {
        n += *p == ' ';
    }
    return n;
}

/* Going round the 12 scopes again and again opens no new connection: the parked ones serve. */
static void parked_connections_are_reused(void **state)
{
    char *first;
    char *later;
    size_t parked = 0;
    (void)state;

    assert_non_null(g_st);
    /* HGET (the applied offset) in every scope: the connections that ran it are st's */
    for (int32_t p = 0; p < N_PARTS; p++) {
        enter(g_st, g_topic, p);
        assert_true(vg_test_state_applied(g_st, g_topic, p) >= -1);
    }
    first = conn_ids("hget");
    fprintf(stderr, "scope: connections after one round: %s\n", first);
    /* one connection per primary: the one in use and the parked ones */
    assert_int_equal(words(first), 3);
    for (size_t i = 0; i < g_st->n_parked; i++) {
        parked += g_st->parked[i] != NULL;
    }
    assert_int_equal(parked, 2);
    for (int round = 0; round < 3; round++) {
        for (int32_t p = 0; p < N_PARTS; p++) {
            enter(g_st, g_topic, (p * 5 + round) % N_PARTS);
            assert_true(vg_test_state_applied(g_st, g_topic, (p * 5 + round) % N_PARTS) >= -1);
        }
        enter(g_st, NULL, 0);
    }
    later = conn_ids("hget");
    fprintf(stderr, "scope: connections after four rounds: %s\n", later);
    assert_string_equal(first, later);
    free(first);
    free(later);
}

/* A partition of g_topic whose slot's primary is not the global scope's. */
static int32_t partition_away_from_global(void)
{
    for (int32_t p = 0; p < N_PARTS; p++) {
        if (owner_of_scope(g_prefix, g_topic, p) != g_global_owner) {
            return p;
        }
    }
    fail_msg("every partition is on the global scope's primary");
    return -1;
}

/* Global-scope commands from inside a partition's scope; st is back in it after, even after
 * a command that failed. */
static void global_commands_from_a_partition_scope(void **state)
{
    int32_t p = partition_away_from_global();
    char *scope = vg_asprintf("%s/%d", g_topic, (int)p);
    char *scope_prefix = vg_asprintf("%s:{%s}", g_prefix, scope);
    struct vg_offset *v = NULL;
    size_t n = 0;
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    char errstr[512] = "";
    (void)state;

    enter(g_st, g_topic, p);
    assert_int_equal(vg_state_scopes(g_st, &v, &n, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n, N_PARTS);
    vg_state_scopes_free(v, n);
    assert_string_equal(vg_state_scope_now(g_st), scope);
    assert_int_equal(vg_test_state_applied(g_st, g_topic, p), 100 + p);

    /* a global command that succeeds */
    state_cmd_str(&c, "SCARD");
    state_cmd_fmt(&c, "%s:parts", g_st->global);
    assert_int_equal(state_scope_global_run(g_st, &c, "SCARD", &reply, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, N_PARTS);
    freeReplyObject(reply);
    assert_string_equal(vg_state_scope_now(g_st), scope);
    /* one that fails (WRONGTYPE: the registry is a set): still back in the partition's scope,
     * its connection on the partition's primary */
    state_cmd_str(&c, "INCR");
    state_cmd_fmt(&c, "%s:parts", g_st->global);
    assert_int_not_equal(state_scope_global_run(g_st, &c, "INCR", &reply, errstr, sizeof(errstr)),
                         VG_OK);
    assert_non_null(strstr(errstr, "WRONGTYPE"));
    state_cmd_fini(&c);
    assert_string_equal(vg_state_scope_now(g_st), scope);
    assert_string_equal(g_st->prefix, scope_prefix);
    assert_int_equal(vg_test_state_applied(g_st, g_topic, p), 100 + p);
    apply_in(g_st, g_topic, p, 200, "after-global", NULL);
    assert_int_equal(vg_test_state_applied(g_st, g_topic, p), 200);
    free(scope);
    free(scope_prefix);
}

struct owner_wait {
    const char *key;
    int want;
};

static bool key_owner_is(void *arg)
{
    const struct owner_wait *w = arg;

    return vg_test_cluster_key_owner(&g_rc, w->key) == w->want;
}

/* The primary of the current scope dies, its replica takes over: a reconnect goes there. */
static void reconnect_reroutes_the_scope(void **state)
{
    int32_t p = partition_away_from_global();
    int owner = owner_of_scope(g_prefix, g_topic, p);
    int replica = vg_test_cluster_replica_of(&g_rc, (size_t)owner);
    char *key = vg_asprintf("%s:{%s/%d}:offsets", g_prefix, g_topic, (int)p);
    struct owner_wait w = {key, replica};
    char errstr[512] = "";
    int64_t off = -1;
    vg_err_t err;
    (void)state;

    assert_true(replica >= 0);
    enter(g_st, g_topic, p);
    apply_in(g_st, g_topic, p, 300, "before-kill", NULL);
    /* the replica has it before its primary dies */
    {
        redisContext *ctx = vg_test_cluster_connect(&g_rc, (size_t)owner);
        redisReply *r = redisCommand(ctx, "WAIT 1 5000");

        assert_non_null(r);
        freeReplyObject(r);
        redisFree(ctx);
    }
    vg_test_cluster_kill(&g_rc, (size_t)owner);
    assert_true(vg_test_wait_for(key_owner_is, &w, 30000));
    fprintf(stderr, "scope: node %d serves %s/%d now\n", replica, g_topic, (int)p);

    /* the old connection is dead: the command fails, a reconnect re-routes the scope */
    err = vg_state_applied_offset(g_st, g_topic, p, &off, errstr, sizeof(errstr));
    if (err == VG_OK) {
        fail_msg("applied offset through a killed primary: %lld", (long long)off);
    }
    assert_int_equal(vg_state_reconnect(g_st, errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(vg_state_scope_now(g_st), scope_name(g_topic, p));
    apply_in(g_st, g_topic, p, 301, "after-failover", NULL);
    assert_int_equal(vg_test_state_applied(g_st, g_topic, p), 301);
    {
        redisContext *ctx = vg_test_cluster_connect(&g_rc, (size_t)replica);
        redisReply *r = redisCommand(ctx, "HGET %s %s/%d", key, g_topic, (int)p);

        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, "301");
        freeReplyObject(r);
        redisFree(ctx);
    }
    /* and the other scopes still work (their parked connections, or new ones) once every
     * live node agrees the cluster is whole again (a node that has not seen the failover yet
     * answers CLUSTERDOWN: transient, the pipeline retries it the same way) */
    assert_true(vg_test_cluster_wait_ready(&g_rc, 30000));
    for (int32_t q = 0; q < N_PARTS; q++) {
        enter(g_st, g_topic, q);
        err = vg_state_applied_offset(g_st, g_topic, q, &off, errstr, sizeof(errstr));
        if (err != VG_OK) {
            assert_int_equal(vg_state_reconnect(g_st, errstr, sizeof(errstr)), VG_OK);
            assert_true(vg_test_state_applied(g_st, g_topic, q) >= -1);
        }
    }
    free(key);
}

static void replay_swap_on_the_cluster(void **state)
{
    char *topic = vg_test_cluster_topic_spread(&g_rc, "swap", 3, 2);
    (void)state;

    assert_non_null(topic);
    swap_scenario(vg_test_cluster_url(&g_rc, 0), topic);
    free(topic);
}

int main(void)
{
    const struct CMUnitTest one_redis[] = {
        cmocka_unit_test(scopes_on_one_redis),
        cmocka_unit_test(single_layout_has_no_scopes),
        cmocka_unit_test(replay_swap_on_one_redis),
    };
    const struct CMUnitTest cluster[] = {
        cmocka_unit_test(scopes_spread_over_primaries),
        cmocka_unit_test(parked_connections_are_reused),
        cmocka_unit_test(global_commands_from_a_partition_scope),
        cmocka_unit_test(replay_swap_on_the_cluster),
        cmocka_unit_test(reconnect_reroutes_the_scope),
    };
    int failed = cmocka_run_group_tests_name("one redis-server", one_redis, redis_setup,
                                             vg_test_redis_teardown);

    failed +=
        cmocka_run_group_tests_name("redis cluster", cluster, cluster_setup, cluster_teardown);
    return failed;
}
