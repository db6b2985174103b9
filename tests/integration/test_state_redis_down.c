/*
 * Redis going away: with the child stopped mid-way, commit fails fast
 * with VG_ERR_BACKEND; a new child on the same directory brings back the
 * committed state (AOF) and vg_state_reconnect carries on. Also the
 * child launcher's own failures: a second server on a busy directory, a
 * stale socket file, a missing redis-server, one that exits at once.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "state_redis.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define TOPIC "vigil.events"
#define T0 1764323400000LL

static const struct vg_health_config hc = {NULL, 0};

static void make_event(struct vg_event *ev, const char *name, const char *runtime, int64_t t,
                       int64_t offset)
{
    vg_test_event_make(ev, &(struct vg_test_event){.type = "service",
                                                   .name = name,
                                                   .workspace = "prod",
                                                   .status = "active",
                                                   .runtime = runtime,
                                                   .time_ms = t,
                                                   .topic = TOPIC,
                                                   .offset = offset});
}

static void test_redis_down_and_back(void **state)
{
    struct vg_test_redis r;
    struct vg_state *st;
    struct vg_event a;
    struct vg_event b;
    struct vg_resource *got = NULL;
    char errstr[512];
    int64_t off;
    int64_t t0;

    (void)state;
    assert_int_equal(vg_test_redis_start(&r, "state-redis-down", NULL, true), 0);
    st = r.st;
    make_event(&a, "a", "running", T0, 1);
    make_event(&b, "b", "failed", T0 + 1, 2);
    assert_int_equal(vg_test_state_apply_one(st, &hc, &a, errstr, sizeof(errstr)), VG_OK);

    /* Redis goes away mid-way. */
    vg_redis_child_stop(r.rc);
    r.rc = NULL;
    t0 = vg_mono_ms();
    assert_int_equal(vg_test_state_apply_one(st, &hc, &b, errstr, sizeof(errstr)), VG_ERR_BACKEND);
    assert_true(vg_mono_ms() - t0 < 3000);
    assert_non_null(strstr(errstr, "redis.sock"));
    /* Dead until reconnected: fast failures, and reconnect fails while down. */
    assert_int_equal(vg_state_ping(st), VG_ERR_BACKEND);
    assert_int_equal(vg_state_applied_offset(st, TOPIC, 0, &off, errstr, sizeof(errstr)),
                     VG_ERR_BACKEND);
    assert_int_equal(vg_state_reconnect(st, errstr, sizeof(errstr)), VG_ERR_BACKEND);
    vg_state_cache_clear(st); /* the failed batch's Resources are not in Redis */

    /* Back on the same directory: the AOF brings the committed state back. */
    assert_int_equal(vg_redis_child_start(&r.rc, r.dir, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_reconnect(st, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_ping(st), VG_OK);
    assert_int_equal(vg_state_get(st, a.id, &got, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(got);
    assert_string_equal(got->runtime, "running");
    assert_int_equal(got->health, VG_HEALTH_HEALTHY);
    vg_resource_destroy(got);
    assert_int_equal(vg_state_get(st, b.id, &got, errstr, sizeof(errstr)), VG_OK);
    assert_null(got);
    assert_int_equal(vg_state_applied_offset(st, TOPIC, 0, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 1);

    /* The retried batch goes through. */
    assert_int_equal(vg_test_state_apply_one(st, &hc, &b, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_get(st, b.id, &got, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(got);
    assert_string_equal(got->runtime, "failed");
    vg_resource_destroy(got);
    assert_int_equal(vg_state_applied_offset(st, TOPIC, 0, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 2);

    vg_event_fini(&a);
    vg_event_fini(&b);
    vg_test_redis_stop(&r);
}

static void test_child_busy_dir_and_stale_socket(void **state)
{
    char *dir = vg_test_mkdtemp("state-redis-busy");
    struct vg_redis_child *rc = NULL;
    struct vg_redis_child *rc2 = NULL;
    char errstr[512];
    char *sock;
    struct sockaddr_un sun;
    int fd;

    (void)state;
    assert_int_equal(vg_redis_child_start(&rc, dir, errstr, sizeof(errstr)), VG_OK);
    assert_true(vg_redis_child_pid(rc) > 0);
    assert_int_equal(vg_redis_child_start(&rc2, dir, errstr, sizeof(errstr)), VG_ERR_IO);
    assert_null(rc2);
    assert_non_null(strstr(errstr, "another redis-server already serves"));
    vg_redis_child_stop(rc);

    /* A socket file nobody listens on (left by a SIGKILLed server) is removed. */
    sock = vg_asprintf("%s/redis.sock", dir);
    unlink(sock);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    assert_int_equal(access(sock, F_OK), 0);
    assert_int_equal(vg_redis_child_start(&rc, dir, errstr, sizeof(errstr)), VG_OK);
    vg_redis_child_stop(rc);

    vg_free(sock);
    vg_test_rmrf(dir);
    vg_free(dir);
}

static void test_child_missing_or_failing_binary(void **state)
{
    char *dir = vg_test_mkdtemp("state-redis-nobin");
    char *bindir = vg_asprintf("%s/bin", dir);
    char *fake = vg_asprintf("%s/redis-server", bindir);
    char *old_path = vg_strdup(getenv("PATH") ? getenv("PATH") : "");
    struct vg_redis_child *rc = NULL;
    char errstr[1024];
    static const char script[] = "#!/bin/sh\necho 'fatal: cannot start (test)' >&2\nexit 3\n";

    (void)state;
    assert_int_equal(mkdir(bindir, 0700), 0);

    /* No redis-server anywhere on PATH: a clear error, never a skip. */
    setenv("PATH", bindir, 1);
    assert_int_equal(vg_redis_child_start(&rc, dir, errstr, sizeof(errstr)), VG_ERR_IO);
    assert_null(rc);
    assert_string_equal(errstr, "redis-server not found on PATH: install redis-server");

    /* One that exits at once: its status and the tail of redis.log. */
    assert_true(vg_test_write_file(fake, script, sizeof(script) - 1));
    assert_int_equal(chmod(fake, 0700), 0);
    assert_int_equal(vg_redis_child_start(&rc, dir, errstr, sizeof(errstr)), VG_ERR_IO);
    assert_null(rc);
    assert_non_null(strstr(errstr, "exit status 3"));
    assert_non_null(strstr(errstr, "fatal: cannot start (test)"));

    setenv("PATH", old_path, 1);
    vg_free(old_path);
    vg_free(fake);
    vg_free(bindir);
    vg_test_rmrf(dir);
    vg_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_down_and_back),
        cmocka_unit_test(test_child_busy_dir_and_stale_socket),
        cmocka_unit_test(test_child_missing_or_failing_binary),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
