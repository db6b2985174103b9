/*
 * The outbox against a real redis-server: pages go in through commit,
 * come out of consumer group "dispatch" in order, are acked or
 * dead-lettered; unacked ones come back to a new vg_state with the same
 * consumer name, idle ones are claimed by another consumer, deleted ones
 * are skipped, and the backlog counts what is left.
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

#include "state_redis.h"
#include "support.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define T0 1764323400000LL
#define CLAIM_NEVER_MS 600000

/* fx.st (the writer: consumer thread) and fx.prefix are each test's own; seq numbers its pages. */
static struct vg_test_redis fx;
static int seq;

static void make_page(struct vg_page *pg, int n)
{
    memset(pg, 0, sizeof(*pg));
    pg->id = vg_asprintf("0123456789abcdef-%d", n);
    pg->sink = vg_strdup(n % 2 ? "webhook" : "console");
    pg->pager = vg_strdup("ops");
    pg->status = vg_strdup("firing");
    pg->incident.id = vg_strdup("0123456789abcdef");
    pg->incident.monitor = vg_strdup("failed");
    pg->incident.severity = vg_strdup("critical");
    pg->incident.summary = vg_asprintf("page %d \"quoted\"\n\xc3\xa9", n);
    pg->incident.started_at_ms = T0;
    pg->resource.id = vg_strdup("job:v1:etl:prod");
    pg->resource.type = vg_strdup("job");
    pg->resource.name = vg_strdup("etl");
    pg->resource.workspace = vg_strdup("prod");
    pg->resource.version = vg_strdup("v1");
    pg->resource.owner = vg_strdup("data");
    snprintf(pg->resource.status, sizeof(pg->resource.status), "active");
    snprintf(pg->resource.runtime, sizeof(pg->resource.runtime), "failed");
    snprintf(pg->resource.health, sizeof(pg->resource.health), "unhealthy");
    snprintf(pg->transition.field, sizeof(pg->transition.field), "runtime");
    snprintf(pg->transition.from, sizeof(pg->transition.from), "running");
    snprintf(pg->transition.to, sizeof(pg->transition.to), "failed");
    pg->transition.at_ms = T0 + n;
}

/* Commit `n` new pages; returns the number of the first. */
static int commit_pages(int n)
{
    struct vg_page pages[8];
    struct vg_commit cm = {0};
    char errstr[512];
    int first = seq + 1;

    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        make_page(&pages[i], ++seq);
    }
    cm.pages = pages;
    cm.n_pages = (size_t)n;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    for (int i = 0; i < n; i++) {
        vg_page_fini(&pages[i]);
    }
    return first;
}

static void assert_entry_is_page(const struct vg_outbox_entry *e, int n)
{
    struct vg_page want;
    struct vg_page got;
    char *id = vg_asprintf("0123456789abcdef-%d", n);
    char *json;
    char errstr[256];

    make_page(&want, n);
    json = vg_page_to_json(&want);
    assert_string_equal(e->id, id);
    assert_string_equal(e->sink, want.sink);
    assert_string_equal(e->pager, "ops");
    assert_int_equal(e->body_len, strlen(json));
    assert_memory_equal(e->body, json, e->body_len);
    assert_int_equal(vg_page_from_json(&got, e->body, e->body_len, errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(got.incident.summary, want.incident.summary);
    vg_page_fini(&got);
    vg_page_fini(&want);
    vg_free(json);
    vg_free(id);
}

static struct vg_state *connect_new(void)
{
    struct vg_state *st = vg_test_redis_connect(&fx, fx.prefix);

    assert_non_null(st);
    return st;
}

static int64_t backlog(struct vg_state *st)
{
    int64_t n = -1;
    char errstr[512];

    assert_int_equal(vg_state_outbox_backlog(st, &n, errstr, sizeof(errstr)), VG_OK);
    return n;
}

static void read_n(struct vg_state *st, const char *consumer, int block_ms, int64_t claim_ms,
                   struct vg_outbox_entry **v, size_t *n)
{
    char errstr[512];

    assert_int_equal(
        vg_state_outbox_read(st, consumer, 10, block_ms, claim_ms, v, n, errstr, sizeof(errstr)),
        VG_OK);
}

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "state-outbox", NULL, false);
}

/* Each test gets a prefix of its own (test name and pid) and fx.st on it. */
static int per_test_setup(const char *name)
{
    seq = 0;
    return vg_test_redis_use_prefix(&fx,
                                    vg_asprintf("test_state_outbox-%s-%d", name, (int)getpid()));
}

static int setup_flow(void **state)
{
    (void)state;
    return per_test_setup("flow");
}

static int setup_claim(void **state)
{
    (void)state;
    return per_test_setup("claim");
}

static int setup_deleted(void **state)
{
    (void)state;
    return per_test_setup("deleted");
}

static void test_read_ack_dead(void **state)
{
    struct vg_state *d;
    struct vg_outbox_entry *v = NULL;
    size_t n = 0;
    char errstr[512];
    int first;
    redisReply *r;

    (void)state;
    assert_int_equal(backlog(fx.st), 0);
    first = commit_pages(3);
    assert_int_equal(backlog(fx.st), 3);

    /* The dispatcher has its own vg_state. */
    d = connect_new();
    read_n(d, "d1", 100, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_entry_is_page(&v[i], first + (int)i);
    }
    assert_int_equal(backlog(d), 3); /* read is not done: all three pending */
    assert_int_equal(vg_test_redis_int(&fx, "XPENDING %s:outbox dispatch", fx.prefix), 3);
    assert_int_equal(vg_state_outbox_ack(d, v[0].stream_id, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(backlog(d), 2);
    vg_outbox_entries_free(v, n);

    /* Nothing new; our pending ones are not handed out twice in one session. */
    read_n(d, "d1", 50, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 0);
    vg_outbox_entries_free(v, n);

    /* After a reconnect (Redis failed mid-batch) they are handed out again. */
    assert_int_equal(vg_state_reconnect(d, errstr, sizeof(errstr)), VG_OK);
    read_n(d, "d1", 0, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 2);
    assert_entry_is_page(&v[0], first + 1);
    assert_entry_is_page(&v[1], first + 2);
    vg_outbox_entries_free(v, n);
    vg_state_destroy(d);

    /* A restarted dispatcher with the same consumer name: its pending ones first. */
    commit_pages(1);
    assert_int_equal(backlog(fx.st), 3);
    d = connect_new();
    read_n(d, "d1", 50, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 3);
    assert_entry_is_page(&v[0], first + 1);
    assert_entry_is_page(&v[1], first + 2);
    assert_entry_is_page(&v[2], first + 3);

    /* Dead-letter one: moved with its reason, and acked. */
    assert_int_equal(vg_state_outbox_dead(d, &v[1], "rejected: HTTP 400", errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(backlog(d), 2);
    r = redisCommand(fx.raw, "XRANGE %s:outbox:dead - +", fx.prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    {
        const redisReply *f = r->element[0]->element[1];
        char *want_id = vg_asprintf("0123456789abcdef-%d", first + 2);
        bool seen_reason = false;
        bool seen_body = false;

        for (size_t i = 0; i + 1 < f->elements; i += 2) {
            const char *k = f->element[i]->str;
            const redisReply *val = f->element[i + 1];

            if (strcmp(k, "id") == 0) {
                assert_string_equal(val->str, want_id);
            } else if (strcmp(k, "reason") == 0) {
                assert_string_equal(val->str, "rejected: HTTP 400");
                seen_reason = true;
            } else if (strcmp(k, "body") == 0) {
                assert_int_equal(val->len, v[1].body_len);
                assert_memory_equal(val->str, v[1].body, val->len);
                seen_body = true;
            }
        }
        assert_true(seen_reason);
        assert_true(seen_body);
        vg_free(want_id);
    }
    freeReplyObject(r);

    assert_int_equal(vg_state_outbox_ack(d, v[0].stream_id, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_outbox_ack(d, v[2].stream_id, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(backlog(d), 0);
    assert_int_equal(vg_test_redis_int(&fx, "XPENDING %s:outbox dispatch", fx.prefix), 0);
    /* Acked entries are deleted: the stream is exactly the backlog. */
    assert_int_equal(vg_test_redis_int(&fx, "XLEN %s:outbox", fx.prefix), 0);
    vg_outbox_entries_free(v, n);
    vg_state_destroy(d);
}

struct claim_arg {
    struct vg_state *st;
    size_t got;
    char ids[4][64];
};

static bool claimed_two(void *p)
{
    struct claim_arg *a = p;
    struct vg_outbox_entry *v = NULL;
    size_t n = 0;
    char errstr[512];

    assert_int_equal(vg_state_outbox_read(a->st, "b", 10, 0, 100, &v, &n, errstr, sizeof(errstr)),
                     VG_OK);
    for (size_t i = 0; i < n && a->got < 4; i++) {
        snprintf(a->ids[a->got++], sizeof(a->ids[0]), "%s", v[i].stream_id);
    }
    vg_outbox_entries_free(v, n);
    return a->got >= 2;
}

static void test_autoclaim(void **state)
{
    struct vg_state *a = connect_new();
    struct claim_arg arg = {0};
    struct vg_outbox_entry *v = NULL;
    size_t n = 0;
    char errstr[512];

    (void)state;
    commit_pages(2);
    /* Consumer a takes both and goes silent. */
    read_n(a, "a", 0, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 2);

    /* Consumer b claims them once idle longer than 100 ms. */
    arg.st = connect_new();
    assert_true(vg_test_wait_for(claimed_two, &arg, 5000));
    assert_int_equal(arg.got, 2);
    assert_string_equal(arg.ids[0], v[0].stream_id);
    assert_string_equal(arg.ids[1], v[1].stream_id);
    {
        char *key = vg_asprintf("%s:outbox", fx.prefix);
        redisReply *r = redisCommand(fx.raw, "XPENDING %s dispatch - + 10 b", key);

        assert_non_null(r);
        assert_int_equal(r->elements, 2);
        freeReplyObject(r);
        vg_free(key);
    }
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(vg_state_outbox_ack(arg.st, arg.ids[i], errstr, sizeof(errstr)), VG_OK);
    }
    assert_int_equal(backlog(fx.st), 0);
    vg_outbox_entries_free(v, n);
    vg_state_destroy(a);
    vg_state_destroy(arg.st);
}

static void test_deleted_pending_skipped(void **state)
{
    struct vg_state *d = connect_new();
    struct vg_outbox_entry *v = NULL;
    size_t n = 0;
    redisReply *r;
    int64_t t0;

    (void)state;
    commit_pages(2);
    read_n(d, "x", 0, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 2);
    /* Someone trims the first one away while it is pending. */
    r = redisCommand(fx.raw, "XDEL %s:outbox %s", fx.prefix, v[0].stream_id);
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    vg_outbox_entries_free(v, n);
    vg_state_destroy(d);

    d = connect_new();
    /* Claiming off (-1): XAUTOCLAIM would also drop deleted ids from the PEL. */
    read_n(d, "x", 0, -1, &v, &n);
    assert_int_equal(n, 1);
    assert_entry_is_page(&v[0], 2);
    /* The deleted one was acked on the way. */
    assert_int_equal(vg_test_redis_int(&fx, "XPENDING %s:outbox dispatch", fx.prefix), 1);
    assert_int_equal(backlog(d), 1);
    vg_outbox_entries_free(v, n);

    /* Empty: a bounded block returns nothing, and does not hang. */
    t0 = vg_mono_ms();
    read_n(d, "y", 200, CLAIM_NEVER_MS, &v, &n);
    assert_int_equal(n, 0);
    assert_true(vg_mono_ms() - t0 < 5000);
    vg_outbox_entries_free(v, n);
    vg_state_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_read_ack_dead, setup_flow),
        cmocka_unit_test_setup(test_autoclaim, setup_claim),
        cmocka_unit_test_setup(test_deleted_pending_skipped, setup_deleted),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
