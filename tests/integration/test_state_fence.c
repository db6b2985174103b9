/*
 * The per-partition fence against a real redis-server: two vg_state
 * connections (two instances) claim the same partition in turn; a commit
 * built on the older claim is refused with VG_ERR_CONFLICT and writes
 * nothing (Resource hash, history stream, applied offset unchanged), both
 * when the claim moved before the commit's check and when it moved
 * between its WATCH and EXEC; the newer claim's commit goes through.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "state_int.h"
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
    return vg_test_redis_start(&fx, "test_state_fence", NULL, true);
}

/* A second instance: its own connection on the same prefix. */
static struct vg_state *connect_other(void)
{
    struct vg_state *st = vg_test_redis_connect(&fx, NULL);

    assert_non_null(st);
    return st;
}

static int64_t claim(struct vg_state *st, int32_t partition, int64_t *offset)
{
    int64_t epoch = vg_test_state_claim(st, TOPIC, partition, offset);

    assert_true(epoch > 0);
    return epoch;
}

/*
 * Resolve, apply and commit one event of Resource `name` at `offset` of
 * `partition` under the claim `epoch`, as the pipeline does for a batch of
 * one. Returns vg_state_commit's result; errstr and *lost get its detail.
 */
static vg_err_t commit_one(struct vg_state *st, const char *name, const char *runtime,
                           int32_t partition, int64_t offset, int64_t epoch, char *errstr,
                           size_t errstr_size, size_t *lost)
{
    struct vg_event ev;
    vg_err_t err;

    vg_test_event_workflow(&ev, name, "w1", runtime, TOPIC, partition, offset, T0 + offset);
    /* a commit that failed may have left the cache ahead of Redis: start from Redis */
    vg_state_cache_clear(st);
    err = vg_test_state_apply_one_fenced(st, &vg_test_hc_workflow, &ev, epoch, NULL, lost, errstr,
                                         errstr_size);
    vg_event_fini(&ev);
    return err;
}

/* What Redis holds for Resource `name` on partition 0: its hash, history length, offset. */
struct snapshot {
    redisReply *hash; /* HGETALL */
    long long hist;   /* XLEN */
    int64_t applied;
};

static void snapshot_take(struct snapshot *s, const char *name, int32_t partition)
{
    char errstr[512];

    s->hash = redisCommand(fx.raw, "HGETALL %s:res:{workflow:v1:%s:w1}", fx.prefix, name);
    assert_non_null(s->hash);
    s->hist = vg_test_redis_int(&fx, "XLEN %s:hist:{workflow:v1:%s:w1}", fx.prefix, name);
    assert_true(s->hist >= 0);
    assert_int_equal(
        vg_state_applied_offset(fx.st, TOPIC, partition, &s->applied, errstr, sizeof(errstr)),
        VG_OK);
}

static void snapshot_assert_same(struct snapshot *before, const char *name, int32_t partition)
{
    struct snapshot now;

    snapshot_take(&now, name, partition);
    assert_int_equal(now.hist, before->hist);
    assert_int_equal(now.applied, before->applied);
    assert_int_equal(now.hash->elements, before->hash->elements);
    for (size_t i = 0; i < now.hash->elements; i++) {
        assert_string_equal(now.hash->element[i]->str, before->hash->element[i]->str);
    }
    freeReplyObject(now.hash);
    freeReplyObject(before->hash);
}

static void test_claim_counts_and_reads(void **state)
{
    struct vg_state *b = connect_other();
    char errstr[512];
    int64_t off = -2;
    size_t lost = 99;
    redisReply *r;

    (void)state;
    /* a Redis without the key starts at 1; every claim (any instance) bumps it */
    assert_int_equal(claim(fx.st, 3, &off), 1);
    assert_int_equal(off, -1);
    assert_int_equal(claim(b, 3, NULL), 2);
    assert_int_equal(claim(fx.st, 3, NULL), 3);
    r = redisCommand(fx.raw, "GET %s:epoch:{%s/3}", fx.prefix, TOPIC);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "3");
    freeReplyObject(r);
    /* the claim reads the applied offset its epoch's commits wrote */
    assert_int_equal(commit_one(fx.st, "gamma", "running", 3, 41, 3, errstr, sizeof(errstr), &lost),
                     VG_OK);
    assert_int_equal(claim(b, 3, &off), 4);
    assert_int_equal(off, 41);
    vg_state_destroy(b);
}

static void test_stale_claim_refused(void **state)
{
    struct vg_state *b = connect_other();
    struct snapshot before;
    char errstr[512];
    size_t lost = 99;
    int64_t epoch_a;
    int64_t epoch_b;
    int64_t off = -2;
    long long hist;

    (void)state;
    /* A owns partition 0 and commits */
    epoch_a = claim(fx.st, 0, &off);
    assert_int_equal(off, -1);
    assert_int_equal(
        commit_one(fx.st, "alpha", "running", 0, 10, epoch_a, errstr, sizeof(errstr), &lost),
        VG_OK);
    /* the group gives partition 0 to B, which claims it and reads A's offset */
    epoch_b = claim(b, 0, &off);
    assert_int_equal(epoch_b, epoch_a + 1);
    assert_int_equal(off, 10);
    snapshot_take(&before, "alpha", 0);
    assert_true(before.hist > 0);
    assert_int_equal(before.applied, 10);
    hist = before.hist;

    /* A's batch still in flight, built on its claim: refused, nothing written */
    assert_int_equal(
        commit_one(fx.st, "alpha", "failed", 0, 11, epoch_a, errstr, sizeof(errstr), &lost),
        VG_ERR_CONFLICT);
    assert_int_equal(lost, 0);
    {
        char *want = vg_asprintf("partition %s/0 was taken by another instance (epoch now %lld, "
                                 "this batch was built on %lld)",
                                 TOPIC, (long long)epoch_b, (long long)epoch_a);

        assert_string_equal(errstr, want);
        vg_free(want);
    }
    snapshot_assert_same(&before, "alpha", 0);

    /* B's commit of the same message goes through */
    assert_int_equal(
        commit_one(b, "alpha", "failed", 0, 11, epoch_b, errstr, sizeof(errstr), &lost), VG_OK);
    snapshot_take(&before, "alpha", 0);
    assert_true(before.hist > hist); /* the runtime change into failed */
    assert_int_equal(before.applied, 11);
    freeReplyObject(before.hash);

    /* A claims again (its WATCH of the refused commit is gone) and commits on top */
    epoch_a = claim(fx.st, 0, &off);
    assert_int_equal(off, 11);
    assert_int_equal(
        commit_one(fx.st, "alpha", "succeeded", 0, 12, epoch_a, errstr, sizeof(errstr), &lost),
        VG_OK);
    vg_state_destroy(b);
}

/* The claim taken by instance `b` between A's fence check and its MULTI/EXEC. */
static void claim_in_window(void *arg)
{
    struct vg_state *b = arg;

    (void)claim(b, 1, NULL);
}

static void test_claim_between_watch_and_exec(void **state)
{
    struct vg_state *b = connect_other();
    struct snapshot before;
    char errstr[512];
    size_t lost = 99;
    int64_t epoch_a;
    int64_t off = -2;

    (void)state;
    epoch_a = claim(fx.st, 1, &off);
    assert_int_equal(
        commit_one(fx.st, "beta", "running", 1, 20, epoch_a, errstr, sizeof(errstr), &lost), VG_OK);
    snapshot_take(&before, "beta", 1);
    assert_int_equal(before.applied, 20);

    /* A's check passes, then B claims before A's EXEC: EXEC is refused */
    state_test_on_fenced(claim_in_window, b);
    assert_int_equal(
        commit_one(fx.st, "beta", "failed", 1, 21, epoch_a, errstr, sizeof(errstr), &lost),
        VG_ERR_CONFLICT);
    state_test_on_fenced(NULL, NULL);
    assert_int_equal(lost, 0);
    {
        char *want = vg_asprintf("partition %s/1 was taken by another instance (epoch now %lld, "
                                 "this batch was built on %lld)",
                                 TOPIC, (long long)epoch_a + 1, (long long)epoch_a);

        assert_string_equal(errstr, want);
        vg_free(want);
    }
    snapshot_assert_same(&before, "beta", 1);

    /* the connection is usable: a fresh claim commits */
    epoch_a = claim(fx.st, 1, &off);
    assert_int_equal(off, 20);
    assert_int_equal(
        commit_one(fx.st, "beta", "failed", 1, 21, epoch_a, errstr, sizeof(errstr), &lost), VG_OK);
    snapshot_take(&before, "beta", 1);
    assert_int_equal(before.applied, 21);
    freeReplyObject(before.hash);
    vg_state_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_counts_and_reads),
        cmocka_unit_test(test_stale_claim_refused),
        cmocka_unit_test(test_claim_between_watch_and_exec),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
