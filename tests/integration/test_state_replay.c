/*
 * Apply idempotence through the whole binary. `vigil run`
 * consumes a topic (group A) and pages a real HTTP receiver. Then the
 * same messages are replayed into the same prefix: by a second consumer
 * group (B) that starts from offset 0, and by group A again after its
 * committed offsets were reset to the beginning. Each replay is skipped
 * by the applied-offset rule: the history keeps exactly one entry per
 * transition (the same stream ids), the outbox was written once per page
 * (XINFO STREAM entries-added), and the receiver got each page once.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include "http_receiver.h"
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
#define N_RES 6
#define N_EVS 400

static struct vg_test_env E;

static void stop_vigil(void)
{
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
}

static bool caught_up(void *arg)
{
    int64_t backlog = -1;
    char errstr[256];

    (void)arg;
    return vg_ref_applied_total(E.st, E.topic, PARTITIONS) == E.produced &&
           vg_state_outbox_backlog(E.st, &backlog, errstr, sizeof(errstr)) == VG_OK && backlog == 0;
}

static void wait_caught_up(void)
{
    if (!vg_test_wait_for(caught_up, NULL, 40000)) {
        fprintf(stderr, "vigil did not catch up (%lld of %lld)\n",
                (long long)vg_ref_applied_total(E.st, E.topic, PARTITIONS), (long long)E.produced);
        vg_test_env_dump_logs(&E);
        fail();
    }
}

/*
 * One event per partition for Resources outside the log: once Redis has
 * applied them, every earlier message of every partition went through
 * the pipeline of the running vigil (skipped or applied).
 */
static void produce_sentinels(int round)
{
    char errstr[256];

    for (int p = 0; p < PARTITIONS; p++) {
        char *json = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"sentinel-%d\","
                                 "\"workspace\":\"ws\"},\"status\":\"active\",\"runtime\":"
                                 "\"running\",\"time\":\"2026-11-29T00:00:%02dZ\"}",
                                 p, round);

        vg_test_env_produce_raw(&E, p, NULL, json, strlen(json));
        free(json);
    }
    assert_int_equal(vg_producer_flush(E.producer, vg_test_timeout(10000), errstr, sizeof(errstr)),
                     VG_OK);
}

/* XINFO STREAM P:outbox entries-added: every XADD ever, acked (deleted) or not. */
static long long outbox_entries_added(void)
{
    char *sock = strstr(vg_redis_child_url(E.redis), "unix://") + 7;
    redisContext *raw = redisConnectUnix(sock);
    redisReply *reply;
    long long added = -1;

    assert_non_null(raw);
    assert_int_equal(raw->err, 0);
    reply = redisCommand(raw, "XINFO STREAM %s:outbox", E.prefix);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        if (reply->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(reply->element[i]->str, "entries-added") == 0) {
            added = reply->element[i + 1]->integer;
        }
    }
    freeReplyObject(reply);
    redisFree(raw);
    assert_true(added >= 0);
    return added;
}

/* Every history stream id of the log's Resources, joined: any change shows. */
static char *history_fingerprint(const struct vg_ref_log *log)
{
    struct vg_buf b = {0};
    char errstr[256];

    for (size_t i = 0; i < log->n_res; i++) {
        struct vg_history_entry *h = NULL;
        size_t n = 0;

        assert_int_equal(vg_state_history(E.st, log->res[i].id, 0, &h, &n, errstr, sizeof(errstr)),
                         VG_OK);
        vg_buf_printf(&b, "%s:%zu", log->res[i].id, n);
        for (size_t k = 0; k < n; k++) {
            vg_buf_printf(&b, ",%s", h[k].stream_id);
        }
        vg_buf_putc(&b, '\n');
        vg_history_free(h, n);
    }
    return vg_buf_steal(&b);
}

/* Distinct page ids (Idempotency-Key) the receiver got, and the total count. */
static size_t distinct_pages(size_t *total)
{
    size_t n = vg_http_receiver_count(E.rcv);
    struct vg_map *seen = vg_map_new();
    size_t distinct;

    for (size_t i = 0; i < n; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
        const char *key = vg_http_request_header(req, "idempotency-key");

        assert_non_null(key);
        vg_map_put(seen, key, (void *)1);
        vg_http_request_free(req);
    }
    distinct = vg_map_count(seen);
    vg_map_destroy(seen, NULL);
    *total = n;
    return distinct;
}

static int setup(void **state)
{
    (void)state;
    return vg_ref_env_start(&E, "state-replay", PARTITIONS, VG_FIXTURES "/e2e/rules.yaml", NULL,
                            "  batch_size: 64\n"
                            "  batch_ms: 10\n"
                            "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                            "\"500\"}\n");
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

static void test_replays_change_nothing(void **state)
{
    struct vg_ref_log log;
    char *fp1;
    char *fp2;
    long long added;
    size_t total;
    (void)state;

    vg_ref_log_make(&log, N_RES, N_EVS, 4242u);
    assert_true(vg_ref_produce_env(&E, &log, 0, N_EVS));

    /* The first pass: group A applies everything and pages. */
    vg_test_env_set_group(&E, "a");
    assert_true(vg_test_env_spawn(&E));
    wait_caught_up();
    stop_vigil();
    assert_int_equal(vg_ref_check_redis(E.st, &log), 0);
    fp1 = history_fingerprint(&log);
    added = outbox_entries_added();
    assert_true(added > 0);
    assert_int_equal(distinct_pages(&total), (size_t)added);

    /* Replay 1: a second group reads the topic from offset 0 into the same prefix. */
    vg_test_env_set_group(&E, "b");
    assert_true(vg_test_env_spawn(&E));
    produce_sentinels(1);
    wait_caught_up();
    stop_vigil();

    /* Replay 2: offsets reset to the beginning (a new group id is the mock
     * cluster's way to start over; A's committed offsets stay behind). */
    vg_test_env_set_group(&E, "c");
    assert_true(vg_test_env_spawn(&E));
    produce_sentinels(2);
    wait_caught_up();
    stop_vigil();

    /* One history entry per transition (the very same entries), one outbox
     * entry per page, each page received once (clean stops: exactly once). */
    fp2 = history_fingerprint(&log);
    assert_string_equal(fp1, fp2);
    assert_int_equal(outbox_entries_added(), added);
    assert_int_equal(vg_ref_check_redis(E.st, &log), 0);
    assert_int_equal(distinct_pages(&total), (size_t)added);
    assert_int_equal(total, (size_t)added);

    free(fp1);
    free(fp2);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replays_change_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
