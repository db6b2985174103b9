/*
 * How a commit that Redis refuses fails, against a real private
 * redis-server: an error inside EXEC (the other commands ran), a queueing
 * error that aborts the transaction (nothing ran), first or after other
 * commands were queued, and the same for the smaller MULTI/EXECs read by
 * state_read_exec (silences). Each names the same vg_err_t and errstr as
 * ever, and the connection stays in step: the next commit on it succeeds.
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
#include "vigil/page.h"
#include "vigil/state.h"

#define TOPIC "vigil.events"
#define T0 1764323400000LL

static struct vg_test_redis fx;

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "test_state_commit_errors", NULL, true);
}

static void make_event(struct vg_event *ev, const char *name, const char *runtime, int64_t offset)
{
    vg_test_event_workflow(ev, name, "ws", runtime, TOPIC, 0, offset, T0 + offset);
}

/* After a commit of `ev` that Redis aborted: nothing of it is written, and the same commit
 * passes now. */
static void assert_aborted_then_passes(const struct vg_event *ev)
{
    char errstr[512] = "";

    assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:res:{%s}", fx.prefix, ev->id), 0);
    assert_int_equal(
        vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, ev, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:res:{%s}", fx.prefix, ev->id), 1);
}

/*
 * An error inside EXEC (an index key under the prefix that is not a set):
 * VG_ERR_INVALID naming it, the other commands of the transaction ran, and
 * the Resource is written again whole, index entries included, next time.
 */
static void test_error_inside_exec(void **state)
{
    struct vg_event ev;
    char errstr[512] = "";
    char key[256];
    vg_err_t err;

    (void)state;
    snprintf(key, sizeof(key), "%s:idx:all", fx.prefix);
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS, "SET %s not-a-set", key), 0);
    make_event(&ev, "wrongtype", "running", 10);
    err = vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_INVALID);
    assert_true(vg_test_redis_errstr_is(&fx, errstr, "EXEC", VG_TEST_REDIS_WRONGTYPE_TEXT));
    /* the Resource's hash was written beside the failing SADD */
    assert_int_equal(vg_test_redis_int(&fx, "HEXISTS %s:res:{%s} runtime", fx.prefix, ev.id), 1);

    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "DEL %s", key), 0);
    vg_event_fini(&ev);
    make_event(&ev, "wrongtype", "succeeded", 11);
    errstr[0] = '\0';
    err = vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr));
    assert_int_equal(err, VG_OK);
    assert_int_equal(vg_test_redis_int(&fx, "SISMEMBER %s %s", key, ev.id), 1);
    vg_event_fini(&ev);
}

/*
 * A command refused while queued (OOM): EXEC aborts, VG_ERR_BACKEND naming
 * the first refusal, nothing written; the same commit passes once Redis
 * takes writes again.
 */
static void test_queueing_error_aborts(void **state)
{
    struct vg_event ev;
    char errstr[512] = "";
    vg_err_t err;

    (void)state;
    make_event(&ev, "oom", "running", 20);
    assert_int_equal(vg_test_redis_refuse_writes(&fx, true), 0);
    err = vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr));
    assert_int_equal(vg_test_redis_refuse_writes(&fx, false), 0);
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_true(vg_test_redis_errstr_is(&fx, errstr, "commit aborted", VG_TEST_REDIS_OOM_TEXT));
    assert_aborted_then_passes(&ev);
    vg_event_fini(&ev);
}

/*
 * A command refused while queued after others were queued (SADD denied by
 * an ACL, after the Resource's HSET): EXEC aborts, VG_ERR_BACKEND naming
 * that refusal, nothing written; the next commit passes.
 */
static void test_queueing_error_after_queued(void **state)
{
    struct vg_event ev;
    char errstr[512] = "";
    vg_err_t err;

    (void)state;
    make_event(&ev, "noperm", "running", 30);
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS, "ACL SETUSER default -sadd"), 0);
    err = vg_test_state_apply_one(fx.st, &vg_test_hc_workflow, &ev, errstr, sizeof(errstr));
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS, "ACL SETUSER default +@all"), 0);
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_true(
        vg_test_redis_errstr_is(&fx, errstr, "commit aborted",
                                "NOPERM this user has no permissions to run the 'sadd' command"));
    assert_aborted_then_passes(&ev);
    vg_event_fini(&ev);
}

static void make_silence(struct vg_silence *s, const char *id)
{
    static char *matchers[] = {(char *)"monitor=m1"};

    *s = (struct vg_silence){.id = (char *)id,
                             .matchers = matchers,
                             .n_matchers = 1,
                             .starts_at_ms = T0,
                             .ends_at_ms = T0 + 3600000,
                             .comment = (char *)"test",
                             .created_by = (char *)"test"};
}

/*
 * A silence's MULTI/EXEC: an error inside EXEC (a version counter that is
 * not a number) is VG_ERR_INVALID, a queueing error VG_ERR_BACKEND; each
 * named after "silence".
 */
static void test_silence_errors(void **state)
{
    struct vg_silence s;
    char errstr[512] = "";
    vg_err_t err;

    (void)state;
    make_silence(&s, "s1");
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS,
                                          "SET %s:silences:version not-a-number", fx.prefix),
                     0);
    err = vg_state_silence_add(fx.st, &s, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_INVALID);
    assert_true(vg_test_redis_errstr_is(&fx, errstr, "silence",
                                        "ERR value is not an integer or out of range"));
    assert_int_equal(
        vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "DEL %s:silences:version", fx.prefix), 0);

    make_silence(&s, "s2");
    assert_int_equal(vg_test_redis_refuse_writes(&fx, true), 0);
    errstr[0] = '\0';
    err = vg_state_silence_add(fx.st, &s, errstr, sizeof(errstr));
    assert_int_equal(vg_test_redis_refuse_writes(&fx, false), 0);
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_true(vg_test_redis_errstr_is(&fx, errstr, "silence", VG_TEST_REDIS_OOM_TEXT));
    assert_int_equal(vg_test_redis_int(&fx, "HEXISTS %s:silences %s", fx.prefix, "s2"), 0);

    errstr[0] = '\0';
    err = vg_state_silence_add(fx.st, &s, errstr, sizeof(errstr));
    assert_int_equal(err, VG_OK);
    assert_int_equal(vg_test_redis_int(&fx, "HEXISTS %s:silences %s", fx.prefix, "s2"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_inside_exec),
        cmocka_unit_test(test_queueing_error_aborts),
        cmocka_unit_test(test_queueing_error_after_queued),
        cmocka_unit_test(test_silence_errors),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
