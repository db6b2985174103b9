/*
 * The engine in process (include/vigil/engine.h), no binary spawned:
 * events produced to the mock cluster become state in a real
 * redis-server and pages at a real HTTP receiver; a drained stop and a
 * restart apply nothing twice and page nothing twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "env.h"
#include "outbox.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/metrics.h"
#include "vigil/state.h"

static const char *runtime_of(struct vg_test_env *e, const char *id, char *buf, size_t size)
{
    struct vg_resource *res = NULL;
    char errstr[256];

    buf[0] = '\0';
    if (vg_state_get(e->st, id, &res, errstr, sizeof(errstr)) == VG_OK && res) {
        snprintf(buf, size, "%s", res->runtime);
    }
    vg_resource_destroy(res);
    return buf;
}

/* The incident id of request i's v1 body (heap), NULL when it is not one. */
static char *page_incident(struct vg_test_env *e, size_t i)
{
    return vg_test_env_page_string(e, i, "incident", "id", 30000);
}

static bool counted_pages(void *arg)
{
    struct vg_test_env *e = arg;
    struct vg_engine_stats stats;

    vg_engine_stats(e->engine, &stats);
    return stats.pages >= 1;
}

static void engine_applies_and_pages(void **state)
{
    struct vg_test_env e;
    struct vg_engine_stats stats;
    char rt[32];
    char *first;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "engine", NULL), 0);
    assert_true(vg_test_env_engine_start(&e));

    vg_test_env_produce(&e, "workflow", "ingest", "public", "active", "pending",
                        "2026-11-28T10:00:00Z", NULL);
    vg_test_env_produce(&e, "workflow", "ingest", "public", NULL, "running", "2026-11-28T10:00:01Z",
                        NULL);
    vg_test_env_produce(&e, "service", "api", "public", "active", "running", "2026-11-28T10:00:01Z",
                        NULL);
    vg_test_env_produce(&e, "workflow", "ingest", "public", NULL, "failed", "2026-11-28T10:00:02Z",
                        "OOMKilled");
    assert_true(vg_test_env_wait_applied(&e, 30000));
    assert_string_equal(runtime_of(&e, "workflow:v1:ingest:public", rt, sizeof(rt)), "failed");
    assert_string_equal(runtime_of(&e, "service:v1:api:public", rt, sizeof(rt)), "running");
    assert_true(vg_test_env_wait_requests(&e, 1, 30000));
    first = page_incident(&e, 0);
    assert_non_null(first);

    /* the counts follow the commit that Redis already shows */
    assert_true(vg_test_wait_for(counted_pages, &e, 30000));
    vg_engine_stats(e.engine, &stats);
    assert_int_equal(stats.consumed, 4);
    assert_int_equal(stats.applied, 4);
    assert_int_equal(stats.pages, 1);
    assert_int_equal(vg_test_env_engine_stop(&e), VG_OK);

    /* Restarted on the same Redis and group: the applied events are not applied again. */
    assert_true(vg_test_env_engine_start(&e));
    vg_test_env_produce(&e, "workflow", "nightly", "public", "active", "failed",
                        "2026-11-28T10:00:03Z", NULL);
    assert_true(vg_test_env_wait_applied(&e, 30000));
    assert_true(vg_test_env_wait_requests(&e, 2, 30000));
    assert_true(vg_test_wait_for(counted_pages, &e, 30000));
    vg_engine_stats(e.engine, &stats);
    assert_int_equal(stats.applied, 1);
    assert_int_equal(stats.pages, 1);
    {
        char *second = page_incident(&e, 1);

        assert_non_null(second);
        assert_string_not_equal(first, second);
        free(second);
    }
    /* Everything acknowledged: the first page was not sent again. */
    assert_true(vg_test_outbox_wait_drained(&e, 30000));
    assert_int_equal(vg_http_receiver_count(e.rcv), 2);
    free(first);
    assert_int_equal(vg_test_env_engine_stop(&e), VG_OK);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

/* The metric's value in the engine's registry. */
static double metric(struct vg_test_env *e, const char *name)
{
    return vg_metrics_sum(vg_engine_metrics(e->engine), name, NULL, NULL);
}

static bool evicted_most(void *arg)
{
    return metric(arg, VG_M_CACHE_EVICTIONS) >= 500;
}

static bool all_transitions(void *arg)
{
    return metric(arg, VG_M_TRANSITIONS) >= 600 * 3 + 20 * 2;
}

/*
 * A cache of 100 Resources over 600: the pipeline drops the least recently
 * seen ones and reads them again from Redis when they come back, and the
 * state is the same as with everything cached.
 */
static void engine_cache_is_bounded(void **state)
{
    struct vg_test_env_opts o = {.redis_extra = "  cache_resources: 100\n"};
    struct vg_test_env e;
    char rt[32];
    char name[32];

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "engcache", &o), 0);
    assert_true(vg_test_env_engine_start(&e));
    for (int i = 0; i < 600; i++) {
        snprintf(name, sizeof(name), "wf-%03d", i);
        vg_test_env_produce(&e, "workflow", name, "ws", "active", "running", "2026-11-28T10:00:00Z",
                            NULL);
    }
    assert_true(vg_test_env_wait_applied(&e, 60000));
    /* the trim follows the commit that Redis already shows */
    assert_true(vg_test_wait_for(evicted_most, &e, 30000));
    /* the first ones were dropped long ago: they come back from Redis, and fail once */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "wf-%03d", i);
        vg_test_env_produce(&e, "workflow", name, "ws", NULL, "failed", "2026-11-28T10:00:05Z",
                            NULL);
    }
    assert_true(vg_test_env_wait_applied(&e, 60000));
    assert_true(vg_test_env_wait_requests(&e, 20, 30000));
    for (int i = 0; i < 600; i += 37) {
        char id[64];

        snprintf(id, sizeof(id), "workflow:v1:wf-%03d:ws", i);
        assert_string_equal(runtime_of(&e, id, rt, sizeof(rt)), i < 20 ? "failed" : "running");
    }
    /* the transitions: 3 first ones each, and 2 per failure; never more (none twice) */
    assert_true(vg_test_wait_for(all_transitions, &e, 30000));
    assert_int_equal((long long)metric(&e, VG_M_TRANSITIONS), 600 * 3 + 20 * 2);
    assert_int_equal(vg_test_env_engine_stop(&e), VG_OK);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(engine_applies_and_pages),
        cmocka_unit_test(engine_cache_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
