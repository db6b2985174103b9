/*
 * kafka.batch_overlap_parts: a batch cut into parts, each part decoded
 * while the part before it commits. The real binary with --debug consumer,
 * a real redis-server and the mock cluster. Asserted on what Redis and the
 * receiver hold (the same with and without the overlap; every event
 * applied once, every page sent once), on the per-batch DEBUG lines
 * (counts of messages, the decode ahead), and, when a part's commit fails,
 * on the parts after it being left unapplied until the retry applies
 * them: never on time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"

#define RESOURCES 300
#define ROUNDS 4
#define FAILED_EVERY 10
/* a page when a workflow fails, another when it runs again (the incident resolved) */
#define PAGES (2 * RESOURCES / FAILED_EVERY)

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One key's content, as text: a hash's fields by name, a stream's transitions in order. */
static void append_key(struct vg_test_env *e, const char *key, char **out, size_t *len)
{
    redisReply *type = vg_test_env_redis(e, "TYPE %s", key);
    redisReply *r;
    FILE *fp;
    char *text = NULL;
    size_t n = 0;
    char **names;

    assert_non_null(type);
    fp = open_memstream(&text, &n);
    assert_non_null(fp);
    fprintf(fp, "%s %s\n", key, type->str);
    if (strcmp(type->str, "hash") == 0) {
        /* in field order: a hash written whole and one written in steps order them apart */
        r = vg_test_env_redis(e, "HKEYS %s", key);
        assert_non_null(r);
        names = calloc(r->elements + 1, sizeof(*names));
        assert_non_null(names);
        for (size_t i = 0; i < r->elements; i++) {
            names[i] = r->element[i]->str;
        }
        qsort(names, r->elements, sizeof(*names), cmp_str);
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *v = vg_test_env_redis(e, "HGET %s %s", key, names[i]);

            assert_non_null(v);
            fprintf(fp, "  %s=%s\n", names[i], v->str);
            freeReplyObject(v);
        }
        free(names);
        freeReplyObject(r);
    } else if (strcmp(type->str, "stream") == 0) {
        r = vg_test_env_redis(e, "XRANGE %s - +", key);
        assert_non_null(r);
        /* the transitions in order, not their entries: a commit writes a Resource's
         * transitions of its part in one entry, so parts cut the entries apart */
        fprintf(fp, "  transitions");
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *kv = r->element[i]->element[1];

            for (size_t j = 0; j < kv->elements; j++) {
                fprintf(fp, " %s", kv->element[j]->str);
            }
        }
        fprintf(fp, "\n");
        freeReplyObject(r);
    }
    freeReplyObject(type);
    fclose(fp);
    *out = realloc(*out, *len + n + 1);
    assert_non_null(*out);
    memcpy(*out + *len, text, n + 1);
    *len += n;
    free(text);
}

/* Every Resource hash and history stream under the prefix, sorted by key, as text. */
static char *state_digest(struct vg_test_env *e)
{
    const char *kinds[] = {"res", "hist"};
    char *out = NULL;
    size_t len = 0;

    for (size_t k = 0; k < 2; k++) {
        redisReply *r = vg_test_env_redis(e, "KEYS %s:%s:*", e->prefix, kinds[k]);
        char **keys;

        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, RESOURCES);
        keys = calloc(r->elements, sizeof(*keys));
        assert_non_null(keys);
        for (size_t i = 0; i < r->elements; i++) {
            keys[i] = r->element[i]->str;
        }
        qsort(keys, r->elements, sizeof(*keys), cmp_str);
        for (size_t i = 0; i < r->elements; i++) {
            append_key(e, keys[i], &out, &len);
        }
        free(keys);
        freeReplyObject(r);
    }
    return out;
}

/*
 * RESOURCES workflows, ROUNDS events each (pending, running, then failed
 * for one in FAILED_EVERY and succeeded for the others, then running
 * again), round by round: every part of the backlog's batch holds one
 * round, so each Resource is changed by every part. In the topic before
 * vigil starts, so the first batch holds the whole backlog.
 */
static void produce_rounds(struct vg_test_env *e)
{
    static const char *const runtimes[ROUNDS] = {"pending", "running", NULL, "running"};
    char name[32];
    char when[64];

    for (int r = 0; r < ROUNDS; r++) {
        snprintf(when, sizeof(when), "2026-11-28T10:0%d:00Z", r);
        for (int i = 0; i < RESOURCES; i++) {
            const char *rt = runtimes[r];

            if (!rt) {
                rt = i % FAILED_EVERY == 0 ? "failed" : "succeeded";
            }
            snprintf(name, sizeof(name), "wf-%04d", i);
            vg_test_env_produce(e, "workflow", name, "public", "active", rt, when, NULL);
        }
    }
}

/*
 * The backlog leaves the test's producer as one batch (it lingers until the
 * flush), so that the mock broker hands it over in one fetch and vigil's
 * first batch is all of it, however loaded the machine: produced in small
 * batches, it could reach the consumer's queue in several fetches, and a
 * first batch taken while only some had arrived would be cut into other
 * parts than the tests expect.
 */
static char linger_key[] = "linger.ms";
static char linger_value[] = "10000";
static const struct vg_kv one_batch[] = {{linger_key, linger_value}};

/* Apply the rounds with kafka_extra; the digest of Redis afterwards (heap). */
static char *run_rounds(const char *kafka_extra, bool overlap)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.partitions = 1,
                                 .kafka_extra = kafka_extra,
                                 .debug = "consumer",
                                 .producer_props = one_batch,
                                 .n_producer_props = VG_ARRAY_LEN(one_batch)};
    char *digest;

    assert_int_equal(vg_test_env_start(&e, "engine_batch_overlap", &o), 0);
    produce_rounds(&e);
    assert_true(vg_test_env_flush(&e));
    assert_true(vg_test_env_spawn(&e));
    assert_true(vg_test_env_wait_applied_exact(&e, 60000));
    assert_true(vg_test_env_wait_requests(&e, PAGES, 60000));
    /* the last page is in Redis's outbox record before the receiver sees it: no page twice */
    assert_true(vg_test_env_wait_quiet(&e, 30000));
    assert_int_equal(vg_http_receiver_count(e.rcv), PAGES);
    if (overlap) {
        if (!vg_test_env_log_has(&e, "DEBUG consumer: batch of 300 message(s) (part 1 of a batch "
                                     "of 1200)") ||
            !vg_test_env_log_has(&e, "ms of it decoding the next part while in flight)")) {
            vg_test_env_dump_logs(&e);
            fail_msg("the backlog's batch was not applied in overlapped parts");
        }
    } else if (vg_test_env_log_has(&e, "(part 1 of a batch")) {
        vg_test_env_dump_logs(&e);
        fail_msg("without the overlap the batch was cut into parts");
    }
    digest = state_digest(&e);
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);
    assert_int_equal(vg_test_env_stop(&e), 0);
    return digest;
}

/*
 * The same backlog with and without the overlap leaves the same Resources
 * and histories in Redis (every transition once, in order) and sends
 * every page once.
 */
static void test_overlap_same_outcome(void **state)
{
    char *plain;
    char *overlapped;

    (void)state;
    plain = run_rounds(NULL, false);
    overlapped = run_rounds("  batch_overlap_parts: 4\n", true);
    if (strcmp(plain, overlapped) != 0) {
        fprintf(stderr, "--- without the overlap\n%s\n--- with it\n%s\n", plain, overlapped);
        fail_msg("the overlap changed what Redis holds");
    }
    free(plain);
    free(overlapped);
}

/* Whether Redis holds the Resource of workflow `name` in workspace `ws`. */
static bool res_exists(struct vg_test_env *e, const char *name, const char *ws)
{
    redisReply *r = vg_test_env_redis(e, "EXISTS %s:res:{workflow:v1:%s:%s}", e->prefix, name, ws);
    bool yes;

    assert_non_null(r);
    yes = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return yes;
}

/* The number of entries in the history of workflow `name` in `ws`. */
static long long hist_len(struct vg_test_env *e, const char *name, const char *ws)
{
    return vg_test_env_int(e, "XLEN %s:hist:{workflow:v1:%s:%s}", e->prefix, name, ws);
}

struct applied_is {
    struct vg_test_env *e;
    long long want;
};

static bool applied_is(void *arg)
{
    struct applied_is *a = arg;
    redisReply *r = vg_test_env_redis(a->e, "HGET %s:offsets %s/0", a->e->prefix, a->e->topic);
    bool yes = r && r->type == REDIS_REPLY_STRING && strtoll(r->str, NULL, 10) == a->want;

    if (r) {
        freeReplyObject(r);
    }
    return yes;
}

#define BACKLOG 1200
#define PART (BACKLOG / 4)
#define BLOCKED 450 /* in the second part (300..599) */

/*
 * The commit of the second part of four is refused (Redis denies a write
 * to a key of that part's one Resource in workspace "blockz": the
 * transaction aborts, nothing of it applied). The first part stays
 * applied, the second and the ones after it (the third was decoded ahead
 * meanwhile) are not; once Redis takes the writes again, the retry skips
 * the first part as replays and applies the others: every event once,
 * every page once.
 */
static void test_failed_part_rolls_back_later_parts(void **state)
{
    struct vg_test_env e;
    struct vg_test_env_opts o = {.partitions = 1,
                                 .kafka_extra = "  batch_overlap_parts: 4\n",
                                 .debug = "consumer",
                                 .producer_props = one_batch,
                                 .n_producer_props = VG_ARRAY_LEN(one_batch)};
    struct applied_is first_part = {.e = &e, .want = PART - 1};
    char name[32];
    redisReply *r;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "engine_batch_overlap_fail", &o), 0);
    for (int i = 0; i < BACKLOG; i++) {
        snprintf(name, sizeof(name), "wf-%04d", i);
        vg_test_env_produce(&e, "workflow", name, i == BLOCKED ? "blockz" : "public", "active",
                            i % FAILED_EVERY == 0 ? "failed" : "running", "2026-11-28T10:00:00Z",
                            NULL);
    }
    assert_true(vg_test_env_flush(&e));
    /* writes to keys ending in 'z' (the index of workspace "blockz") refused; reads allowed */
    r = vg_test_env_redis(&e, "ACL SETUSER default resetkeys %%R~* ~*[^z]");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_true(vg_test_env_spawn(&e));
    if (!vg_test_wait_for(applied_is, &first_part, 60000)) {
        vg_test_env_dump_logs(&e);
        fail_msg("the first part was not applied");
    }
    assert_true(vg_test_env_wait_log(&e, "apply failed, pausing", 60000));
    if (!vg_test_env_log_has(&e, "DEBUG consumer: batch of 300 message(s) (part 1 of a batch of "
                                 "1200), ") ||
        !vg_test_env_log_has(&e, "commit aborted: NOPERM")) {
        vg_test_env_dump_logs(&e);
        fail_msg("the second part's commit did not fail as set up");
    }
    /* the first part is in Redis; nothing of the second and later parts is */
    assert_true(res_exists(&e, "wf-0000", "public"));
    assert_true(res_exists(&e, "wf-0299", "public"));
    assert_false(res_exists(&e, "wf-0300", "public"));
    assert_false(res_exists(&e, "wf-0450", "blockz"));
    assert_false(res_exists(&e, "wf-0600", "public"));
    assert_false(res_exists(&e, "wf-1199", "public"));
    assert_true(applied_is(&first_part));

    r = vg_test_env_redis(&e, "ACL SETUSER default resetkeys ~*");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_true(vg_test_env_wait_applied_exact(&e, 60000));
    assert_true(vg_test_env_wait_requests(&e, BACKLOG / FAILED_EVERY, 60000));
    assert_true(vg_test_env_wait_quiet(&e, 30000));
    assert_int_equal(vg_http_receiver_count(e.rcv), BACKLOG / FAILED_EVERY);
    /* every event once: one history entry each, before, in and after the failed part */
    assert_int_equal(hist_len(&e, "wf-0000", "public"), 1);
    assert_int_equal(hist_len(&e, "wf-0300", "public"), 1);
    assert_int_equal(hist_len(&e, "wf-0450", "blockz"), 1);
    assert_int_equal(hist_len(&e, "wf-0600", "public"), 1);
    assert_int_equal(hist_len(&e, "wf-1199", "public"), 1);
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlap_same_outcome),
        cmocka_unit_test(test_failed_part_rolls_back_later_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
