/*
 * Replays never double-apply: committing the same Resources again leaves
 * the same state, and a caller that skips messages at or below the
 * applied offset of their partition (the rule of docs/state.md) adds no
 * history and no pages when a batch is redelivered after a rebalance.
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
#include "vigil/state.h"
#include "vigil/util.h"

#define TOPIC "vigil.events"
#define T0 1764323400000LL
#define N_EV 6

static struct vg_test_redis fx;
static const struct vg_health_config hc = {NULL, 0};

static void make_event(struct vg_event *ev, const char *name, const char *status,
                       const char *runtime, int64_t t, int32_t partition, int64_t offset)
{
    vg_test_event_make(ev, &(struct vg_test_event){.type = "service",
                                                   .name = name,
                                                   .workspace = "prod",
                                                   .owner = "ops",
                                                   .status = status,
                                                   .runtime = runtime,
                                                   .time_ms = t,
                                                   .topic = TOPIC,
                                                   .partition = partition,
                                                   .offset = offset});
}

/* The batch: two partitions, offsets 10..12 on each, two Resources. */
static void make_batch(struct vg_event evs[N_EV])
{
    make_event(&evs[0], "a", "active", "pending", T0, 0, 10);
    make_event(&evs[1], "b", "active", "running", T0 + 1, 1, 10);
    make_event(&evs[2], "a", "active", "running", T0 + 2, 0, 11);
    make_event(&evs[3], "b", "error", "failed", T0 + 3, 1, 11);
    make_event(&evs[4], "a", "active", "failed", T0 + 4, 0, 12);
    make_event(&evs[5], "b", "active", "running", T0 + 5, 1, 12);
}

static void free_batch(struct vg_event evs[N_EV])
{
    for (size_t i = 0; i < N_EV; i++) {
        vg_event_fini(&evs[i]);
    }
}

/*
 * What the consumer does per batch: drop messages at or below the
 * applied offset of their partition, resolve, apply, commit Resources,
 * history, one page per health transition and the new offsets. Returns
 * the number of events applied.
 */
static size_t run_batch(struct vg_event *evs, size_t n)
{
    const struct vg_event *keep[N_EV * 2];
    struct vg_event kept[N_EV * 2];
    struct vg_resource *res[N_EV * 2];
    struct vg_transition trans[N_EV * 2 * 3];
    struct vg_page pages[N_EV * 2 * 3];
    struct vg_offset offs[2];
    size_t n_keep = 0;
    size_t n_trans = 0;
    size_t n_pages = 0;
    size_t n_offs = 0;
    struct vg_commit cm = {0};
    char errstr[512];

    for (size_t i = 0; i < n; i++) {
        int64_t applied;

        assert_int_equal(vg_state_applied_offset(fx.st, evs[i].pos.topic, evs[i].pos.partition,
                                                 &applied, errstr, sizeof(errstr)),
                         VG_OK);
        if (evs[i].pos.offset > applied) {
            keep[n_keep++] = &evs[i];
        }
    }
    if (n_keep == 0) {
        return 0;
    }
    for (size_t i = 0; i < n_keep; i++) {
        kept[i] = *keep[i]; /* shallow: strings stay owned by evs */
    }
    assert_int_equal(vg_state_resolve(fx.st, kept, n_keep, res, errstr, sizeof(errstr)), VG_OK);
    memset(pages, 0, sizeof(pages));
    for (size_t i = 0; i < n_keep; i++) {
        size_t k = vg_resource_apply(&hc, res[i], &kept[i], &trans[n_trans]);

        for (size_t j = n_trans; j < n_trans + k; j++) {
            if (trans[j].field == VG_FIELD_HEALTH) {
                struct vg_page *pg = &pages[n_pages++];

                pg->id = vg_asprintf("%s-%zu", kept[i].id, j);
                pg->sink = vg_strdup("console");
                pg->pager = vg_strdup("ops");
                pg->status = vg_strdup("firing");
                pg->resource.id = vg_strdup(kept[i].id);
                snprintf(pg->transition.to, sizeof(pg->transition.to), "%s", trans[j].to);
            }
        }
        n_trans += k;
        /* Track the highest offset per partition. */
        {
            size_t o = 0;

            while (o < n_offs && offs[o].partition != kept[i].pos.partition) {
                o++;
            }
            if (o == n_offs) {
                offs[n_offs++] = (struct vg_offset){TOPIC, kept[i].pos.partition, -1};
            }
            if (kept[i].pos.offset > offs[o].offset) {
                offs[o].offset = kept[i].pos.offset;
            }
        }
    }
    cm.res = res;
    cm.n_res = n_keep;
    cm.trans = trans;
    cm.n_trans = n_trans;
    cm.pages = pages;
    cm.n_pages = n_pages;
    cm.offsets = offs;
    cm.n_offsets = n_offs;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < n_pages; i++) {
        vg_page_fini(&pages[i]);
    }
    return n_keep;
}

/* XLEN of the stream "<prefix>:<suffix>". */
/* The transitions and log lines of `id`'s history, as vigil reads them. */
static size_t history_len(const char *id)
{
    struct vg_history_entry *h = NULL;
    size_t n = 0;
    char errstr[512];

    assert_int_equal(vg_state_history(fx.st, id, 0, &h, &n, errstr, sizeof(errstr)), VG_OK);
    vg_history_free(h, n);
    return n;
}

static long long stream_len(const char *suffix)
{
    return vg_test_redis_int(&fx, "XLEN %s:%s", fx.prefix, suffix);
}

/* A deep snapshot of one stored hash as sorted "field=value" lines. */
static char *snapshot(const char *id)
{
    char *key = vg_asprintf("%s:res:{%s}", fx.prefix, id);
    redisReply *r = redisCommand(fx.raw, "HGETALL %s", key);
    struct vg_buf b = {0};
    char **lines;
    size_t n;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    n = r->elements / 2;
    lines = vg_calloc(n ? n : 1, sizeof(*lines));
    for (size_t i = 0; i < n; i++) {
        lines[i] = vg_asprintf("%s=%s", r->element[2 * i]->str, r->element[2 * i + 1]->str);
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: a dozen lines */
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];

            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        vg_buf_puts(&b, lines[i]);
        vg_buf_putc(&b, '\n');
        vg_free(lines[i]);
    }
    vg_free(lines);
    freeReplyObject(r);
    vg_free(key);
    return vg_buf_steal(&b);
}

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "test_state_idempotent", NULL, true);
}

static void test_commit_twice_same_state(void **state)
{
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_transition trans[3];
    struct vg_commit cm = {0};
    char errstr[512];
    char *first;
    char *second;

    (void)state;
    make_event(&ev, "twice", "active", "running", T0, 3, 1);
    assert_int_equal(vg_state_resolve(fx.st, &ev, 1, &res, errstr, sizeof(errstr)), VG_OK);
    vg_resource_apply(&hc, res, &ev, trans);
    vg_resource_add_incident(res, "m", "0123456789abcdef", "critical", T0);
    cm.res = &res;
    cm.n_res = 1;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    first = snapshot(ev.id);
    assert_non_null(strstr(first, "inc:m={"));

    /* The same batch again (a redelivery applied without the offset check). */
    vg_state_cache_clear(fx.st);
    assert_int_equal(vg_state_resolve(fx.st, &ev, 1, &res, errstr, sizeof(errstr)), VG_OK);
    vg_resource_apply(&hc, res, &ev, trans);
    /* it changes nothing, so nothing is to be written... */
    assert_false(res->dirty);
    /* ...and writing the whole Resource again leaves Redis as it was */
    res->dirty = true;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    second = snapshot(ev.id);
    assert_string_equal(first, second);

    vg_free(first);
    vg_free(second);
    vg_event_fini(&ev);
}

static void test_replay_skips_applied(void **state)
{
    struct vg_event evs[N_EV];
    struct vg_event late[2];
    int64_t off;
    char errstr[512];
    char *a1;
    char *b1;
    char *a2;
    long long hist_a;
    size_t trans_a;
    long long outbox;
    char *hist_key;

    (void)state;
    make_batch(evs);
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 0, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, -1);
    assert_int_equal(run_batch(evs, N_EV), N_EV);
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 0, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 12);
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 1, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 12);

    hist_key = vg_asprintf("hist:{%s}", evs[0].id);
    a1 = snapshot(evs[0].id);
    b1 = snapshot(evs[1].id);
    hist_a = stream_len(hist_key);
    trans_a = history_len(evs[0].id);
    outbox = stream_len("outbox");
    assert_true(hist_a > 0);
    assert_true(outbox > 0);

    /* Rebalance: cache gone, the whole batch redelivered. Nothing applies. */
    vg_state_cache_clear(fx.st);
    assert_int_equal(run_batch(evs, N_EV), 0);
    a2 = snapshot(evs[0].id);
    assert_string_equal(a1, a2);
    vg_free(a2);
    a2 = snapshot(evs[1].id);
    assert_string_equal(b1, a2);
    vg_free(a2);
    assert_int_equal(stream_len(hist_key), hist_a);
    assert_int_equal(history_len(evs[0].id), trans_a);
    assert_int_equal(stream_len("outbox"), outbox);

    /* A redelivery that overlaps: only what lies above the applied offset counts. */
    vg_state_cache_clear(fx.st);
    make_event(&late[0], "a", "active", "running", T0 + 10, 0, 12); /* already applied */
    make_event(&late[1], "a", "active", "succeeded", T0 + 11, 0, 13);
    assert_int_equal(run_batch(late, 2), 1);
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 0, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 13);
    a2 = snapshot(evs[0].id);
    assert_non_null(strstr(a2, "runtime=succeeded\n"));
    assert_non_null(strstr(a2, "offset=13\n"));
    vg_free(a2);
    /* failed -> succeeded: a runtime and a health transition, in one stream entry. */
    assert_int_equal(history_len(evs[0].id), trans_a + 2);
    assert_int_equal(stream_len(hist_key), hist_a + 1);

    vg_free(hist_key);
    vg_free(a1);
    vg_free(b1);
    vg_event_fini(&late[0]);
    vg_event_fini(&late[1]);
    free_batch(evs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_twice_same_state),
        cmocka_unit_test(test_replay_skips_applied),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
