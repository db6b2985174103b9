/*
 * The embedded redis-server dies under a running `vigil run` (no redis.url:
 * vigil starts it itself, on DIR/data with AOF on). The test SIGKILLs that
 * child while events keep arriving on the mock cluster: vigil logs one WARN
 * naming the signal, starts it again on the same directory and applies
 * every event, nothing lost or doubled (read back with `vigil get -o json`
 * and the histories in Redis). Then the data dir is moved away before the
 * next kill, so the restart cannot work: vigil logs why (rate-limited
 * ERROR lines), pauses with a WARN that names the Redis and the reason,
 * keeps running, and recovers once the directory is back.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 8
#define N_EVS 600
#define RESTART_ERROR_EVERY_MS 5000 /* engine/embedded.c: at most one ERROR per 5 s */

struct env {
    char *dir;
    char *data_dir;
    char *away_dir;
    char *sock_url;
    char *topic;
    char *prefix;
    char *config;
    char *log_path;
    char *out_path;
    struct vg_mock_kafka *kafka;
    struct vg_state *st;
    pid_t vigil;
};

static struct env E;

static int setup(void **state)
{
    char errstr[512];
    char *cfg;

    (void)state;
    memset(&E, 0, sizeof(E));
    signal(SIGPIPE, SIG_IGN);
    E.dir = vg_test_mkdtemp("embedded-restart");
    E.data_dir = vg_asprintf("%s/data", E.dir);
    E.away_dir = vg_asprintf("%s/data.away", E.dir);
    E.sock_url = vg_asprintf("unix://%s/redis.sock", E.data_dir);
    E.topic = vg_asprintf("embedded-restart.events.%d", (int)getpid());
    E.prefix = vg_asprintf("embrestart%d", (int)getpid());
    E.log_path = vg_asprintf("%s/vigil.err", E.dir);
    E.out_path = vg_asprintf("%s/vigil.out", E.dir);
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, PARTITIONS, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    /* no redis.url: vigil starts (and must restart) its own redis-server in data_dir */
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: embedded-restart-%d\n"
                      "  topics: [%s]\n"
                      "  batch_size: 50\n"
                      "  batch_ms: 5\n"
                      "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                      "\"500\"}\n"
                      "redis:\n"
                      "  data_dir: %s\n"
                      "  prefix: %s\n"
                      "rules: [%s/e2e/rules.yaml]\n"
                      "sinks:\n"
                      "  ops: {type: console}\n"
                      "http:\n"
                      "  listen: 127.0.0.1:0\n",
                      vg_mock_kafka_bootstraps(E.kafka), (int)getpid(), E.topic, E.data_dir,
                      E.prefix, VG_FIXTURES);
    E.config = vg_asprintf("%s/vigil.yaml", E.dir);
    assert_true(vg_test_write_file(E.config, cfg, strlen(cfg)));
    free(cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (E.vigil > 0) {
        vg_test_stop(E.vigil, SIGKILL, 5000); /* its redis-server gets SIGTERM (PDEATHSIG) */
    }
    vg_state_destroy(E.st);
    vg_mock_kafka_stop(E.kafka);
    vg_test_rmrf(E.dir);
    free(E.dir);
    free(E.data_dir);
    free(E.away_dir);
    free(E.sock_url);
    free(E.topic);
    free(E.prefix);
    free(E.config);
    free(E.log_path);
    free(E.out_path);
    return 0;
}

static void dump_log(void)
{
    char *text = vg_test_read_file(E.log_path, NULL);

    fprintf(stderr, "vigil's log:\n%s\n", text ? text : "(none)");
    free(text);
}

/* Occurrences of `needle` in vigil's log from byte `from` on. */
static int log_count_from(size_t from, const char *needle)
{
    size_t len = 0;
    char *text = vg_test_read_file(E.log_path, &len);
    int n = 0;

    for (const char *p = text && from < len ? text + from : NULL; p && (p = strstr(p, needle));
         p += strlen(needle)) {
        n++;
    }
    free(text);
    return n;
}

static int log_count(const char *needle)
{
    return log_count_from(0, needle);
}

static size_t log_size(void)
{
    size_t len = 0;
    char *text = vg_test_read_file(E.log_path, &len);

    free(text);
    return text ? len : 0;
}

/* The first line containing `needle` at or after byte `from` (heap), or NULL. */
static char *log_line_from(size_t from, const char *needle)
{
    size_t len = 0;
    char *text = vg_test_read_file(E.log_path, &len);
    char *line = NULL;
    char *hit = text && from < len ? strstr(text + from, needle) : NULL;

    if (hit) {
        char *bol = hit;
        char *eol = strchr(hit, '\n');

        while (bol > text && bol[-1] != '\n') {
            bol--;
        }
        line = vg_asprintf("%.*s", (int)(eol ? eol - bol : (ptrdiff_t)strlen(bol)), bol);
    }
    free(text);
    return line;
}

/* The pid in the last "embedded redis-server pid N on ..." line (start or restart), or -1. */
static int logged_redis_pid(void)
{
    static const char needle[] = "embedded redis-server pid ";
    char *text = vg_test_read_file(E.log_path, NULL);
    int pid = -1;

    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) {
        char *end;
        long v = strtol(p + strlen(needle), &end, 10);

        if (end != p + strlen(needle) && strncmp(end, " on ", 4) == 0 && v > 0) {
            pid = (int)v;
        }
    }
    free(text);
    return pid;
}

struct pid_wait {
    int not ; /* wait for a logged pid other than this one */
};

static bool redis_pid_logged(void *arg)
{
    struct pid_wait *w = arg;
    int pid = logged_redis_pid();

    return pid > 0 && pid != w->not ;
}

struct log_wait {
    size_t from;
    const char *needle;
    int want;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;

    return log_count_from(w->from, w->needle) >= w->want;
}

/* Sum of applied offsets + 1 over the partitions, reconnecting to the embedded Redis as needed. */
static int64_t applied_total(void)
{
    char errstr[512];
    int64_t total;

    if (!E.st) {
        if (vg_state_connect(&E.st, E.sock_url, E.prefix, errstr, sizeof(errstr)) != VG_OK) {
            return -1;
        }
    }
    total = vg_ref_applied_total(E.st, E.topic, PARTITIONS);
    if (total < 0) {
        vg_state_reconnect(E.st, errstr, sizeof(errstr)); /* tried again on the next poll */
    }
    return total;
}

static bool applied_at_least(void *arg)
{
    return applied_total() >= *(const int64_t *)arg;
}

static bool vigil_running(void)
{
    int status;

    return waitpid(E.vigil, &status, WNOHANG) == 0;
}

static void wait_applied(int64_t want)
{
    if (!vg_test_wait_for(applied_at_least, &want, 40000)) {
        fprintf(stderr, "applied %lld of %lld\n", (long long)applied_total(), (long long)want);
        dump_log();
        fail();
    }
}

static void wait_log(size_t from, const char *needle, int want)
{
    struct log_wait w = {from, needle, want};

    if (!vg_test_wait_for(log_has, &w, 30000)) {
        fprintf(stderr, "waited for %d x \"%s\" in vigil's log\n", want, needle);
        dump_log();
        fail();
    }
}

/* `vigil get -o json` through the running vigil: every Resource as the reference says. */
static void check_get_json(const struct vg_ref_log *log)
{
    char *argv[] = {(char *)vg_test_vigil_bin(),
                    (char *)"get",
                    (char *)"-c",
                    E.config,
                    (char *)"-o",
                    (char *)"json",
                    NULL};
    char *out = NULL;
    char *err = NULL;
    int rc = vg_test_run(argv, &out, &err);
    cJSON *arr;
    size_t want = 0;

    if (rc != 0) {
        fprintf(stderr, "vigil get exited %d: %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    arr = cJSON_Parse(out);
    assert_non_null(arr);
    for (size_t i = 0; i < log->n_res; i++) {
        const struct vg_ref_res *r = &log->res[i];
        const cJSON *item;
        bool found = false;

        if (r->updated_at == 0) {
            continue;
        }
        want++;
        cJSON_ArrayForEach(item, arr)
        {
            const cJSON *id = cJSON_GetObjectItem(item, "id");

            if (!cJSON_IsString(id) || strcmp(id->valuestring, r->id) != 0) {
                continue;
            }
            found = true;
            assert_string_equal(cJSON_GetObjectItem(item, "status")->valuestring, r->status);
            assert_string_equal(cJSON_GetObjectItem(item, "runtime")->valuestring, r->runtime);
            assert_string_equal(cJSON_GetObjectItem(item, "health")->valuestring,
                                vg_health_name(r->health));
        }
        if (!found) {
            fprintf(stderr, "vigil get has no %s:\n%s\n", r->id, out);
        }
        assert_true(found);
    }
    assert_int_equal((size_t)cJSON_GetArraySize(arr), want);
    cJSON_Delete(arr);
    free(out);
    free(err);
}

static void test_embedded_redis_killed_and_restarted(void **state)
{
    struct vg_ref_log log;
    struct vg_producer *p = NULL;
    struct pid_wait pw = {-1};
    char errstr[512];
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", NULL, NULL};
    char *line;
    char *needle;
    int pid1;
    int pid2;
    size_t mark;
    int64_t outage_start;
    int64_t outage_ms;
    int errors;
    (void)state;

    vg_ref_log_make(&log, N_RES, N_EVS, (unsigned)getpid());
    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(E.kafka), NULL, 0, errstr, sizeof(errstr)),
        VG_OK);
    assert_true(vg_ref_produce(p, E.topic, &log, 0, N_EVS / 3));
    argv[3] = E.config;
    E.vigil = vg_test_spawn(argv, E.out_path, E.log_path);
    assert_true(E.vigil > 0);
    if (!vg_test_wait_for(redis_pid_logged, &pw, 30000)) {
        dump_log();
        fail();
    }
    pid1 = logged_redis_pid();
    wait_applied(N_EVS / 3);

    /* 1. The child is SIGKILLed while events keep coming: one WARN naming the signal, restart. */
    mark = log_size();
    assert_int_equal(kill(pid1, SIGKILL), 0);
    needle =
        vg_asprintf("embedded redis-server pid %d killed by signal %d; restarting", pid1, SIGKILL);
    assert_true(vg_ref_produce(p, E.topic, &log, N_EVS / 3, 2 * N_EVS / 3));
    wait_log(mark, needle, 1);
    pw.not = pid1;
    if (!vg_test_wait_for(redis_pid_logged, &pw, 30000)) {
        dump_log();
        fail();
    }
    pid2 = logged_redis_pid();
    wait_applied(2 * N_EVS / 3);
    assert_int_equal(log_count(needle), 1);
    line = log_line_from(mark, needle);
    assert_non_null(strstr(line, " WARN state: "));
    fprintf(stderr, "%s\n", line);
    free(line);
    free(needle);

    /*
     * 2. The restart cannot work (the data dir is gone): ERROR lines say why,
     * rate-limited; the pause WARN names the Redis and the reason; vigil
     * keeps running and keeps trying.
     */
    mark = log_size();
    assert_int_equal(rename(E.data_dir, E.away_dir), 0);
    outage_start = vg_mono_ms();
    assert_int_equal(kill(pid2, SIGKILL), 0);
    wait_log(mark, "did not restart", 2);
    assert_true(vg_ref_produce(p, E.topic, &log, 2 * N_EVS / 3, N_EVS));
    vg_producer_destroy(p);
    wait_log(mark, "apply failed, pausing", 1);
    assert_true(vigil_running());
    line = log_line_from(mark, "did not restart");
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, " ERROR state: "));
    assert_non_null(strstr(line, "No such file or directory"));
    assert_non_null(strstr(line, E.data_dir));
    free(line);
    line = log_line_from(mark, "apply failed, pausing");
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, "redis unix://"));
    assert_non_null(strstr(line, "No such file or directory"));
    free(line);
    assert_int_equal(rename(E.away_dir, E.data_dir), 0);
    outage_ms = vg_mono_ms() - outage_start;
    wait_applied(N_EVS);
    errors = log_count_from(mark, "did not restart");
    fprintf(stderr, "%d ERROR lines in a %lld ms outage\n", errors, (long long)outage_ms);
    assert_true(errors <= 2 + (int)(outage_ms / RESTART_ERROR_EVERY_MS));

    /* Nothing lost, nothing doubled: `vigil get` and every history equal the reference. */
    check_get_json(&log);
    assert_int_equal(vg_ref_check_redis(E.st, &log), 0);
    assert_int_equal(applied_total(), N_EVS);
    assert_true(vigil_running());
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_embedded_redis_killed_and_restarted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
