/*
 * The private redis-server's persistence (state/state_child.c), on the real
 * redis-server: the AOF settings it is started with (fsync before every
 * reply, rewrites only past 512 MB, an RDB base), and a start and a restart
 * on a data dir whose AOF takes longer to replay than the ready timeout:
 * waited for while Redis answers LOADING, the state all there afterwards.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

/* ~47 MB of AOF, 2 M sorted-set inserts: about a second of replay on the 2-core test VM. */
#define N_KEYS 100000
#define MEMBERS 20
/* Well above the time redis-server takes to open its socket, well below the replay. */
#define READY_TIMEOUT_MS 250

static redisContext *connect_child(const struct vg_redis_child *rc)
{
    redisContext *c = redisConnectUnix(vg_redis_child_url(rc) + strlen("unix://"));

    assert_non_null(c);
    if (c->err) {
        fail_msg("connect: %s", c->errstr);
    }
    return c;
}

static void assert_config(redisContext *c, const char *name, const char *want)
{
    redisReply *reply = redisCommand(c, "CONFIG GET %s", name);

    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 2);
    if (strcmp(reply->element[1]->str, want) != 0) {
        fail_msg("%s is %s, want %s", name, reply->element[1]->str, want);
    }
    freeReplyObject(reply);
}

static void test_aof_settings(void **state)
{
    struct vg_redis_child *rc = NULL;
    char *dir = vg_test_mkdtemp("child-aof-settings");
    char errstr[512];
    redisContext *c;

    (void)state;
    if (vg_redis_child_start(&rc, dir, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("start: %s", errstr);
    }
    c = connect_child(rc);
    assert_config(c, "appendonly", "yes");
    assert_config(c, "appendfsync", "always");
    assert_config(c, "save", "");
    assert_config(c, "auto-aof-rewrite-min-size", "536870912");
    assert_config(c, "auto-aof-rewrite-percentage", "100");
    assert_config(c, "aof-use-rdb-preamble", "yes");
    redisFree(c);
    vg_redis_child_stop(rc);
    vg_test_rmrf(dir);
    vg_free(dir);
}

/* DIR/appendonlydir holding one incr file of N_KEYS ZADDs of MEMBERS members each. */
static void write_aof(const char *dir)
{
    char *aof_dir = vg_asprintf("%s/appendonlydir", dir);
    char *path = vg_asprintf("%s/appendonly.aof.1.incr.aof", aof_dir);
    char *manifest = vg_asprintf("%s/appendonly.aof.manifest", aof_dir);
    static const char manifest_text[] = "file appendonly.aof.1.incr.aof seq 1 type i\n";
    struct vg_buf b = {0};

    assert_int_equal(mkdir(aof_dir, 0700), 0);
    for (int k = 0; k < N_KEYS; k++) {
        char key[32];
        int key_len = snprintf(key, sizeof(key), "z:%d", k);

        vg_buf_printf(&b, "*%d\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", 2 + 2 * MEMBERS, key_len, key);
        for (int m = 0; m < MEMBERS; m++) {
            char score[16];
            char member[32];
            int score_len = snprintf(score, sizeof(score), "%d", m);
            int member_len = snprintf(member, sizeof(member), "member-%d", m);

            vg_buf_printf(&b, "$%d\r\n%s\r\n$%d\r\n%s\r\n", score_len, score, member_len, member);
        }
    }
    assert_true(vg_test_write_file(path, b.data, b.len));
    assert_true(vg_test_write_file(manifest, manifest_text, sizeof(manifest_text) - 1));
    vg_buf_fini(&b);
    vg_free(manifest);
    vg_free(path);
    vg_free(aof_dir);
}

static void assert_all_loaded(const struct vg_redis_child *rc)
{
    redisContext *c = connect_child(rc);
    redisReply *reply = redisCommand(c, "DBSIZE");

    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, N_KEYS);
    freeReplyObject(reply);
    reply = redisCommand(c, "ZCARD z:%d", N_KEYS - 1);
    assert_non_null(reply);
    assert_int_equal(reply->integer, MEMBERS);
    freeReplyObject(reply);
    redisFree(c);
}

/*
 * The replay must have outlasted the ready timeout, or this test proved
 * nothing: redis-server logs how long it took.
 */
static void assert_replay_outlasted_timeout(const char *dir, int nth)
{
    char *log_path = vg_asprintf("%s/redis.log", dir);
    char *log = vg_test_read_file(log_path, NULL);
    static const char needle[] = "DB loaded from append only file: ";
    const char *p = log;
    double seconds = -1;

    assert_non_null(log);
    for (int i = 0; i < nth && p; i++) {
        p = strstr(i == 0 ? p : p + 1, needle);
    }
    if (!p) {
        fail_msg("redis.log has no replay number %d:\n%s", nth, log);
    }
    seconds = strtod(p + strlen(needle), NULL);
    if (seconds * 1000 <= READY_TIMEOUT_MS) {
        fail_msg("the replay took %.3f s, within the %d ms ready timeout: the test did not wait "
                 "for LOADING (make the AOF larger)",
                 seconds, READY_TIMEOUT_MS);
    }
    vg_free(log);
    vg_free(log_path);
}

static bool child_exited(void *arg)
{
    char how[64];

    return vg_redis_child_exited(arg, how, sizeof(how));
}

static void test_waits_for_aof_replay(void **state)
{
    struct vg_redis_child_opts opts = {.ready_timeout_ms = READY_TIMEOUT_MS};
    struct vg_redis_child *rc = NULL;
    char *dir = vg_test_mkdtemp("child-aof-replay");
    char errstr[512];
    int pid;

    (void)state;
    write_aof(dir);
    if (vg_redis_child_start_opts(&rc, dir, &opts, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("start on a long AOF: %s", errstr);
    }
    assert_all_loaded(rc);
    assert_replay_outlasted_timeout(dir, 1);

    /* The supervisor's path: the child dies, is noticed, and starts again on the same AOF. */
    pid = vg_redis_child_pid(rc);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(vg_test_wait_for(child_exited, rc, 10000));
    if (vg_redis_child_restart(rc, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("restart on a long AOF: %s", errstr);
    }
    assert_all_loaded(rc);
    assert_replay_outlasted_timeout(dir, 2);
    vg_redis_child_stop(rc);
    vg_test_rmrf(dir);
    vg_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aof_settings),
        cmocka_unit_test(test_waits_for_aof_replay),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
