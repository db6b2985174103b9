/*
 * The Resource cache against a real redis-server, partition by partition:
 * dropping the cache of some partitions (a cooperative rebalance) keeps
 * the Resources lent only for the others, which the next event then takes
 * without an HGETALL; a Resource lent for a dropped partition and a kept
 * one goes; one loaded for a timer (no partition known) goes on any drop;
 * and a cached Resource never lent for an event's partition is read again,
 * so what another instance wrote through that partition is not lost.
 * HGETALLs are counted with INFO commandstats (the test's own connections
 * are the only clients).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "state_redis.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"

#define TOPIC "vigil.events"
#define T0 1764323400000LL

static struct vg_test_redis fx;

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "test_state_cache_partitions", NULL, true);
}

/* HGETALL commands Redis has executed so far (all clients). */
static long long hgetall_calls(void)
{
    long long n = vg_test_redis_calls(&fx, "hgetall");

    assert_true(n >= 0);
    return n;
}

static void make_event(struct vg_event *ev, const char *name, const char *runtime,
                       int32_t partition, int64_t offset)
{
    vg_test_event_workflow(ev, name, "w1", runtime, TOPIC, partition, offset, T0 + offset);
}

/* Resolve, apply and commit one event of `name` on `st` (as a batch of one). */
static void apply(struct vg_state *st, const char *name, const char *runtime, int32_t partition,
                  int64_t offset)
{
    struct vg_event ev;
    char errstr[512];

    make_event(&ev, name, runtime, partition, offset);
    assert_int_equal(vg_test_state_apply_one(st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr)),
                     VG_OK);
    vg_event_fini(&ev);
}

/*
 * How many HGETALLs resolving one event of `name` on `partition` cost, and
 * the runtime it found (before the event is applied) into `runtime`.
 */
static long long resolve_cost(const char *name, int32_t partition, int64_t offset, char *runtime,
                              size_t runtime_size)
{
    struct vg_event ev;
    struct vg_resource *res = NULL;
    char errstr[512];
    long long before = hgetall_calls();

    make_event(&ev, name, "running", partition, offset);
    assert_int_equal(vg_state_resolve(fx.st, &ev, 1, &res, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(res);
    snprintf(runtime, runtime_size, "%s", res->runtime);
    vg_event_fini(&ev);
    return hgetall_calls() - before;
}

static size_t drop(const char *topic, int32_t partition)
{
    const char *topics[] = {topic};
    const int32_t partitions[] = {partition};

    return vg_state_cache_drop_partitions(fx.st, topics, partitions, 1);
}

static void test_drop_keeps_the_other_partitions(void **state)
{
    char runtime[64];

    (void)state;
    apply(fx.st, "kept", "pending", 0, 10);
    apply(fx.st, "moved", "pending", 1, 10);
    /* events of one Resource on two partitions (not keyed by id) */
    apply(fx.st, "both", "pending", 0, 11);
    apply(fx.st, "both", "running", 1, 11);
    /* cached: no HGETALL */
    assert_int_equal(resolve_cost("kept", 0, 12, runtime, sizeof(runtime)), 0);
    assert_int_equal(resolve_cost("both", 1, 12, runtime, sizeof(runtime)), 0);

    /* partition 1 moves away: "moved" and "both" go, "kept" stays */
    assert_int_equal(drop(TOPIC, 1), 2);
    assert_int_equal(resolve_cost("kept", 0, 13, runtime, sizeof(runtime)), 0);
    assert_string_equal(runtime, "pending");
    assert_int_equal(resolve_cost("both", 0, 13, runtime, sizeof(runtime)), 1);
    assert_string_equal(runtime, "running");
    /* another topic's partition 0 is not this one's */
    assert_int_equal(drop("other.events", 0), 0);
    assert_int_equal(resolve_cost("kept", 0, 14, runtime, sizeof(runtime)), 0);
    /* nothing to drop: nothing dropped */
    assert_int_equal(vg_state_cache_drop_partitions(fx.st, NULL, NULL, 0), 0);
}

static void test_event_from_a_new_partition_reads_again(void **state)
{
    struct vg_state *other = NULL;
    char runtime[64];

    (void)state;
    apply(fx.st, "wander", "pending", 0, 20);
    /* another instance writes it through partition 2 (which this one does not hold) */
    other = vg_test_redis_connect(&fx, NULL);
    assert_non_null(other);
    apply(other, "wander", "failed", 2, 21);
    vg_state_destroy(other);

    /* partition 0, lent for it before: the cache (it cannot know) */
    assert_int_equal(resolve_cost("wander", 0, 22, runtime, sizeof(runtime)), 0);
    assert_string_equal(runtime, "pending");
    /* partition 2 is now this instance's: its first event reads Redis, and sees the write */
    assert_int_equal(resolve_cost("wander", 2, 23, runtime, sizeof(runtime)), 1);
    assert_string_equal(runtime, "failed");
    /* from then on both partitions take the cache */
    assert_int_equal(resolve_cost("wander", 2, 24, runtime, sizeof(runtime)), 0);
    assert_int_equal(resolve_cost("wander", 0, 25, runtime, sizeof(runtime)), 0);
}

static void test_timer_loads_go_with_any_drop(void **state)
{
    struct vg_event ev;
    struct vg_resource *res = NULL;
    char errstr[512];
    char runtime[64];
    const char *id;
    long long before;

    (void)state;
    apply(fx.st, "timed", "pending", 3, 30);
    make_event(&ev, "timed", "pending", 3, 30);
    id = ev.id;
    vg_state_cache_clear(fx.st);
    /* loaded for a timer: no partition known */
    before = hgetall_calls();
    assert_int_equal(vg_state_resolve_ids(fx.st, &id, 1, &res, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(res);
    assert_int_equal(hgetall_calls() - before, 1);
    vg_event_fini(&ev);
    /* any partition's drop takes it */
    assert_int_equal(drop(TOPIC, 5), 1);
    assert_int_equal(resolve_cost("timed", 3, 31, runtime, sizeof(runtime)), 1);
    assert_string_equal(runtime, "pending");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drop_keeps_the_other_partitions, setup,
                                        vg_test_redis_teardown),
        cmocka_unit_test_setup_teardown(test_event_from_a_new_partition_reads_again, setup,
                                        vg_test_redis_teardown),
        cmocka_unit_test_setup_teardown(test_timer_loads_go_with_any_drop, setup,
                                        vg_test_redis_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
