/*
 * vg_state_commit in two halves (vg_state_commit_send, then
 * vg_state_commit_finish), against a real private redis-server: the send
 * alone puts the transaction in Redis (seen on another connection before
 * the replies are read), the finish reads and judges the replies with the
 * same vg_err_t and errstr as vg_state_commit (an error inside EXEC, a
 * refused transaction), and a commit with nothing to write sends nothing.
 * The connection stays in step after each: the next commit succeeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "state_redis.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/state.h"

#define TOPIC "vigil.events"
#define T0 1764323400000LL

static struct vg_test_redis fx;

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "test_state_commit_split", NULL, true);
}

static void make_event(struct vg_event *ev, const char *name, const char *runtime, int64_t offset)
{
    vg_test_event_workflow(ev, name, "ws", runtime, TOPIC, 0, offset, T0 + offset);
}

/* One event's commit, built (resolved and applied) but not sent. */
struct one_commit {
    struct vg_resource *res;
    struct vg_transition trans[3];
    struct vg_offset off;
    struct vg_commit cm;
};

static void build_commit(struct one_commit *oc, const struct vg_event *ev)
{
    char errstr[512] = "";

    memset(oc, 0, sizeof(*oc));
    assert_int_equal(vg_state_resolve(fx.st, ev, 1, &oc->res, errstr, sizeof(errstr)), VG_OK);
    oc->off = (struct vg_offset){ev->pos.topic, ev->pos.partition, ev->pos.offset};
    oc->cm.res = &oc->res;
    oc->cm.n_res = 1;
    oc->cm.trans = oc->trans;
    oc->cm.n_trans = vg_resource_apply(&vg_test_hc_workflow, oc->res, ev, oc->trans);
    oc->cm.offsets = &oc->off;
    oc->cm.n_offsets = 1;
}

/* The Resource's runtime as Redis holds it, read on the test's own connection. */
struct runtime_is {
    const char *id;
    const char *want;
};

static bool runtime_is(void *arg)
{
    const struct runtime_is *w = arg;
    redisReply *r = redisCommand(fx.raw, "HGET %s:res:{%s} runtime", fx.prefix, w->id);
    bool ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, w->want) == 0;

    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

/*
 * Send alone: the transaction runs in Redis while its replies are unread
 * (another connection sees the write); finish then reads them, VG_OK, and
 * the Resource is clean. The next commit on the connection succeeds.
 */
static void test_send_then_finish(void **state)
{
    struct one_commit oc;
    struct vg_event ev;
    char errstr[512] = "";
    struct runtime_is w;

    (void)state;
    make_event(&ev, "split", "running", 10);
    build_commit(&oc, &ev);
    assert_true(oc.res->dirty);
    assert_int_equal(vg_state_commit_send(fx.st, &oc.cm, errstr, sizeof(errstr)), VG_OK);
    w = (struct runtime_is){ev.id, "running"};
    assert_true(vg_test_wait_for(runtime_is, &w, 10000));
    assert_true(oc.res->dirty); /* marked clean only once the replies say so */
    assert_int_equal(vg_state_commit_finish(fx.st, errstr, sizeof(errstr)), VG_OK);
    assert_false(oc.res->dirty);
    vg_event_fini(&ev);

    make_event(&ev, "split", "succeeded", 11);
    assert_int_equal(
        vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr)), VG_OK);
    w = (struct runtime_is){ev.id, "succeeded"};
    assert_true(runtime_is(&w));
    vg_event_fini(&ev);
}

/* Nothing to write: the send sends nothing and the finish is VG_OK. */
static void test_nothing_to_send(void **state)
{
    struct vg_commit cm = {0};
    char errstr[512] = "";
    long long before = vg_test_redis_calls(&fx, "exec");

    (void)state;
    assert_int_equal(vg_state_commit_send(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_commit_finish(fx.st, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_test_redis_calls(&fx, "exec"), before);
    assert_string_equal(errstr, "");
}

/*
 * An error inside EXEC, seen by the finish: VG_ERR_INVALID with the errstr
 * of vg_state_commit, and the Resource is to be written whole next time.
 */
static void test_error_inside_exec_at_finish(void **state)
{
    struct one_commit oc;
    struct vg_event ev;
    char errstr[512] = "";
    char key[256];

    (void)state;
    snprintf(key, sizeof(key), "%s:idx:all", fx.prefix);
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS, "SET %s not-a-set", key), 0);
    make_event(&ev, "split-wrongtype", "running", 20);
    build_commit(&oc, &ev);
    assert_int_equal(vg_state_commit_send(fx.st, &oc.cm, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_commit_finish(fx.st, errstr, sizeof(errstr)), VG_ERR_INVALID);
    assert_true(vg_test_redis_errstr_is(&fx, errstr, "EXEC", VG_TEST_REDIS_WRONGTYPE_TEXT));
    assert_true((oc.res->dirty_mask & VG_DIRTY_REPLACE) != 0);
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "DEL %s", key), 0);
    vg_event_fini(&ev);

    make_event(&ev, "split-wrongtype", "succeeded", 21);
    errstr[0] = '\0';
    assert_int_equal(
        vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr)), VG_OK);
    vg_event_fini(&ev);
}

/* A transaction Redis refuses (OOM while queueing): VG_ERR_BACKEND at the finish, nothing ran. */
static void test_refused_at_finish(void **state)
{
    struct one_commit oc;
    struct vg_event ev;
    char errstr[512] = "";
    struct runtime_is w;

    (void)state;
    make_event(&ev, "split-oom", "running", 30);
    build_commit(&oc, &ev);
    assert_int_equal(vg_test_redis_refuse_writes(&fx, true), 0);
    assert_int_equal(vg_state_commit_send(fx.st, &oc.cm, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_commit_finish(fx.st, errstr, sizeof(errstr)), VG_ERR_BACKEND);
    assert_int_equal(vg_test_redis_refuse_writes(&fx, false), 0);
    assert_true(vg_test_redis_errstr_is(&fx, errstr, "commit aborted", VG_TEST_REDIS_OOM_TEXT));
    w = (struct runtime_is){ev.id, "running"};
    assert_false(runtime_is(&w));
    vg_event_fini(&ev);

    make_event(&ev, "split-oom", "running", 31);
    errstr[0] = '\0';
    assert_int_equal(
        vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr)), VG_OK);
    w = (struct runtime_is){ev.id, "running"};
    assert_true(runtime_is(&w));
    vg_event_fini(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_then_finish),
        cmocka_unit_test(test_nothing_to_send),
        cmocka_unit_test(test_error_inside_exec_at_finish),
        cmocka_unit_test(test_refused_at_finish),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
