/*
 * A Resource's index entries (idx:all, idx:type, idx:ws: SADD; idx:name:
 * ZADD) are written by the commit that creates it and never again while
 * vigil knows they are there: later commits from the cache, a Resource
 * read back from Redis after the cache dropped it (a trim over
 * redis.cache_resources, or a cleared cache) or after a restart, all skip
 * them. What the cache remembers about it goes with the cached Resource,
 * so the bound on the cache bounds it too. The new Resources of one commit
 * share their index commands, and every listing finds them. Counted with
 * INFO commandstats against a real redis-server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state_redis.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"

#define TOPIC "vigil.events"
#define T0 1764323400000LL

static struct vg_test_redis fx;
static const struct vg_health_config hc = {0};

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "test_state_cache_index", NULL, true);
}

/* calls of `cmd` (lower case) so far, from INFO commandstats */
static long long calls_of(const char *cmd)
{
    long long n = vg_test_redis_calls(&fx, cmd);

    assert_true(n >= 0);
    return n;
}

static long long index_writes(void)
{
    return calls_of("sadd") + calls_of("zadd");
}

/* One event about workflow `name` (runtime `runtime`), resolved, applied and committed. */
static void commit_one(struct vg_state *st, const char *name, const char *runtime, int64_t offset)
{
    struct vg_event ev;
    struct vg_resource *res = NULL;
    struct vg_transition trans[3];
    struct vg_commit cm = {0};
    char errstr[512];

    vg_test_event_workflow(&ev, name, "w1", runtime, TOPIC, 0, offset, T0 + offset);
    assert_int_equal(vg_state_resolve(st, &ev, 1, &res, errstr, sizeof(errstr)), VG_OK);
    cm.res = &res;
    cm.n_res = 1;
    cm.trans = trans;
    cm.n_trans = vg_resource_apply(&hc, res, &ev, trans);
    assert_true(res->dirty);
    if (vg_state_commit(st, &cm, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("commit %s: %s", name, errstr);
    }
    vg_event_fini(&ev);
}

static void expect_members(const char *key, long long want)
{
    assert_int_equal(vg_test_redis_int(&fx, "SCARD %s:%s", fx.prefix, key), want);
}

static void test_index_entries_written_once(void **state)
{
    static const char *const runtimes[] = {"pending", "running", "succeeded", "failed"};
    long long before;
    long long after_new;
    struct vg_state *st2 = NULL;
    (void)state;

    /* a new Resource: its four index entries, once */
    before = index_writes();
    commit_one(fx.st, "a", "pending", 1);
    after_new = index_writes();
    assert_int_equal(after_new - before, 4);

    /* from the cache: none */
    commit_one(fx.st, "a", "running", 2);
    assert_int_equal(index_writes(), after_new);

    /* the cache cleared (as after a failed batch), read back from Redis: none */
    vg_state_cache_clear(fx.st);
    commit_one(fx.st, "a", "succeeded", 3);
    assert_int_equal(index_writes(), after_new);

    /* dropped by a trim over the bound, then read back: none for it, four per new one */
    vg_state_cache_limit(fx.st, 8);
    for (int i = 0; i < 16; i++) {
        char name[16];

        snprintf(name, sizeof(name), "b%02d", i);
        commit_one(fx.st, name, "pending", 10 + i);
        assert_true(vg_state_cache_trim(fx.st) <= 16);
    }
    assert_int_equal(index_writes(), after_new + 16 * 4);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 16; i++) {
            char name[16];

            snprintf(name, sizeof(name), "b%02d", i);
            commit_one(fx.st, name, runtimes[(round + 1) % 4], 100 + round * 16 + i);
            vg_state_cache_trim(fx.st);
        }
    }
    assert_int_equal(index_writes(), after_new + 16 * 4);
    commit_one(fx.st, "a", "failed", 200);
    assert_int_equal(index_writes(), after_new + 16 * 4);

    /* another connection (a restart): what Redis holds is indexed already */
    st2 = vg_test_redis_connect(&fx, NULL);
    assert_non_null(st2);
    commit_one(st2, "b03", "running", 300);
    assert_int_equal(index_writes(), after_new + 16 * 4);
    vg_state_destroy(st2);

    expect_members("idx:all", 17);
    expect_members("idx:type:workflow", 17);
    expect_members("idx:ws:w1", 17);
}

/*
 * The new Resources of one commit share their index commands: one SADD
 * idx:all and one ZADD idx:name for all of them, one SADD per distinct
 * type and per distinct workspace (a command per Resource and index
 * before), and every listing finds each of them.
 */
static void test_new_resources_indexed_together(void **state)
{
    static const struct {
        const char *type;
        const char *name;
        const char *ws;
    } v[] = {
        {"service", "n-api", "wa"}, {"job", "n-etl", "wb"},    {"service", "n-web", "wb"},
        {"job", "n-backup", "wc"},  {"service", "n-db", "wa"}, {"job", "n-report", "wa"},
    };
    enum { N = sizeof(v) / sizeof(v[0]) };
    static const struct {
        struct vg_state_filter f;
        size_t want;
    } lists[] = {
        {{0}, N},
        {{.type = "job"}, 3},
        {{.workspace = "wa"}, 3},
        {{.type = "service", .workspace = "wb"}, 1},
        {{.name_glob = "n-*"}, N},
        {{.name_glob = "n-[a-e]*", .type = "job"}, 2},
    };
    struct vg_event ev[N];
    struct vg_resource *res[N];
    struct vg_transition trans[3 * N];
    struct vg_commit cm = {0};
    char errstr[512];
    size_t n_trans = 0;
    long long before = index_writes();
    (void)state;

    for (size_t i = 0; i < N; i++) {
        vg_test_event_make(&ev[i], &(struct vg_test_event){.type = v[i].type,
                                                           .name = v[i].name,
                                                           .workspace = v[i].ws,
                                                           .status = "active",
                                                           .runtime = "pending",
                                                           .time_ms = T0 + (int64_t)i,
                                                           .topic = TOPIC,
                                                           .partition = 1,
                                                           .offset = (int64_t)i});
    }
    assert_int_equal(vg_state_resolve(fx.st, ev, N, res, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < N; i++) {
        n_trans += vg_resource_apply(&hc, res[i], &ev[i], trans + n_trans);
    }
    cm.res = res;
    cm.n_res = N;
    cm.trans = trans;
    cm.n_trans = n_trans;
    if (vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("commit: %s", errstr);
    }
    /* idx:all + idx:name + 2 types + 3 workspaces */
    assert_int_equal(index_writes() - before, 2 + 2 + 3);
    expect_members("idx:type:service", 3);
    expect_members("idx:type:job", 3);
    expect_members("idx:ws:wa", 3);
    expect_members("idx:ws:wb", 2);
    expect_members("idx:ws:wc", 1);
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        struct vg_resource **got = NULL;
        size_t n_got = 0;

        assert_int_equal(vg_state_list(fx.st, &lists[k].f, &got, &n_got, errstr, sizeof(errstr)),
                         VG_OK);
        if (lists[k].f.type || lists[k].f.workspace || lists[k].f.name_glob) {
            if (n_got != lists[k].want) {
                fail_msg("listing %zu: %zu Resources, want %zu", k, n_got, lists[k].want);
            }
        } else {
            /* everything: these six and what the other test left */
            size_t ours = 0;

            for (size_t i = 0; i < n_got; i++) {
                ours += strncmp(got[i]->name, "n-", 2) == 0;
            }
            assert_int_equal(ours, lists[k].want);
        }
        vg_resources_free(got, n_got);
    }
    for (size_t i = 0; i < N; i++) {
        vg_event_fini(&ev[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_entries_written_once),
        cmocka_unit_test(test_new_resources_indexed_together),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
