/*
 * Apply idempotence through the whole binary (issue 3). `vigil run`
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
#include "test_state3_common.h"

#define PARTITIONS 4
#define N_RES 6
#define N_EVS 400

struct env {
    char *dir;
    char *topic;
    char *prefix;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_http_receiver *rcv;
    struct vg_producer *producer;
    struct vg_state *st;
    pid_t vigil;
    int runs;
    int64_t produced;
};

static struct env E;

static char *write_config(const char *group)
{
    char *url = vg_http_receiver_url(E.rcv, "/hook");
    char *path = vg_asprintf("%s/vigil-%s.yaml", E.dir, group);
    char *cfg = vg_asprintf("kafka:\n"
                            "  brokers: %s\n"
                            "  group: %s-%d\n"
                            "  topics: [%s]\n"
                            "  batch_size: 64\n"
                            "  batch_ms: 10\n"
                            "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                            "\"500\"}\n"
                            "redis:\n"
                            "  url: %s\n"
                            "  prefix: %s\n"
                            "rules: [%s/e2e/rules.yaml]\n"
                            "sinks:\n"
                            "  ops: {type: webhook, url: \"%s\", max_attempts: 20}\n",
                            vg_mock_kafka_bootstraps(E.kafka), group, (int)getpid(), E.topic,
                            vg_redis_child_url(E.redis), E.prefix, VG_FIXTURES, url);

    assert_true(vg_test_write_file(path, cfg, strlen(cfg)));
    free(cfg);
    free(url);
    return path;
}

static void start_vigil(const char *config)
{
    char *out = vg_asprintf("%s/vigil-%d.out", E.dir, E.runs);
    char *err = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs);
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", (char *)config, NULL};

    E.vigil = vg_test_spawn(argv, out, err);
    assert_true(E.vigil > 0);
    E.runs++;
    free(out);
    free(err);
}

static void stop_vigil(void)
{
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
}

static bool caught_up(void *arg)
{
    int64_t backlog = -1;
    char errstr[256];

    (void)arg;
    return s3_applied_total(E.st, E.topic, PARTITIONS) == E.produced &&
           vg_state_outbox_backlog(E.st, &backlog, errstr, sizeof(errstr)) == VG_OK && backlog == 0;
}

static void wait_caught_up(void)
{
    if (!vg_test_wait_for(caught_up, NULL, 40000)) {
        char *log = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs - 1);
        char *text = vg_test_read_file(log, NULL);

        fprintf(stderr, "vigil did not catch up (%lld of %lld); its log:\n%s\n",
                (long long)s3_applied_total(E.st, E.topic, PARTITIONS), (long long)E.produced,
                text ? text : "(none)");
        free(text);
        free(log);
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

        assert_int_equal(vg_producer_send(E.producer, E.topic, p, NULL, 0, json, strlen(json),
                                          errstr, sizeof(errstr)),
                         VG_OK);
        free(json);
    }
    assert_int_equal(vg_producer_flush(E.producer, 10000, errstr, sizeof(errstr)), VG_OK);
    E.produced += PARTITIONS;
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
static char *history_fingerprint(const struct s3_log *log)
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
    char errstr[512];

    (void)state;
    memset(&E, 0, sizeof(E));
    signal(SIGPIPE, SIG_IGN);
    E.dir = vg_test_mkdtemp("state3-replay");
    E.topic = vg_asprintf("replay.events.%d", (int)getpid());
    E.prefix = vg_asprintf("replay%d", (int)getpid());
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(&E.st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, PARTITIONS, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_producer_new(&E.producer, vg_mock_kafka_bootstraps(E.kafka), NULL, 0, errstr,
                        sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    E.rcv = vg_http_receiver_start();
    return E.rcv ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (E.vigil > 0) {
        vg_test_stop(E.vigil, SIGKILL, 5000);
    }
    vg_producer_destroy(E.producer);
    vg_http_receiver_stop(E.rcv);
    vg_state_destroy(E.st);
    vg_mock_kafka_stop(E.kafka);
    vg_redis_child_stop(E.redis);
    vg_test_rmrf(E.dir);
    free(E.dir);
    free(E.topic);
    free(E.prefix);
    return 0;
}

static void test_replays_change_nothing(void **state)
{
    struct s3_log log;
    char *cfg_a;
    char *cfg_b;
    char *cfg_c;
    char *fp1;
    char *fp2;
    long long added;
    size_t total;
    (void)state;

    s3_log_make(&log, N_RES, N_EVS, 4242u);
    s3_produce(E.producer, E.topic, &log, 0, N_EVS);
    E.produced = N_EVS;
    cfg_a = write_config("a");
    cfg_b = write_config("b");

    /* The first pass: group A applies everything and pages. */
    start_vigil(cfg_a);
    wait_caught_up();
    stop_vigil();
    assert_int_equal(s3_check_redis(E.st, &log), 0);
    fp1 = history_fingerprint(&log);
    added = outbox_entries_added();
    assert_true(added > 0);
    assert_int_equal(distinct_pages(&total), (size_t)added);

    /* Replay 1: a second group reads the topic from offset 0 into the same prefix. */
    start_vigil(cfg_b);
    produce_sentinels(1);
    wait_caught_up();
    stop_vigil();

    /* Replay 2: offsets reset to the beginning (a new group id is the mock
     * cluster's way to start over; A's committed offsets stay behind). */
    cfg_c = write_config("c");
    start_vigil(cfg_c);
    produce_sentinels(2);
    wait_caught_up();
    stop_vigil();

    /* One history entry per transition (the very same entries), one outbox
     * entry per page, each page received once (clean stops: exactly once). */
    fp2 = history_fingerprint(&log);
    assert_string_equal(fp1, fp2);
    assert_int_equal(outbox_entries_added(), added);
    assert_int_equal(s3_check_redis(E.st, &log), 0);
    assert_int_equal(distinct_pages(&total), (size_t)added);
    assert_int_equal(total, (size_t)added);

    free(fp1);
    free(fp2);
    free(cfg_a);
    free(cfg_b);
    free(cfg_c);
    s3_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replays_change_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
