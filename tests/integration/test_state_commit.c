/*
 * State against a real private redis-server: resolve (miss -> new), apply,
 * commit, reload from Redis with every field and open incident, the
 * offsets hash, history streams, list filters, get, and connect errors.
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

static struct vg_test_redis fx;

static void make_event(struct vg_event *ev, const char *type, const char *name, const char *ws,
                       const char *owner, const char *status, const char *runtime, int64_t t,
                       int32_t partition, int64_t offset, const char *message)
{
    vg_test_event_make(ev, &(struct vg_test_event){.type = type,
                                                   .name = name,
                                                   .workspace = ws,
                                                   .owner = owner,
                                                   .status = status,
                                                   .runtime = runtime,
                                                   .time_ms = t,
                                                   .topic = TOPIC,
                                                   .partition = partition,
                                                   .offset = offset,
                                                   .message = message});
}

static void assert_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_string_equal(a, b);
}

static void assert_resource_equal(const struct vg_resource *a, const struct vg_resource *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->type, b->type);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->workspace, b->workspace);
    assert_string_equal(a->version, b->version);
    assert_string_equal(a->owner, b->owner);
    assert_string_equal(a->status, b->status);
    assert_string_equal(a->runtime, b->runtime);
    assert_int_equal(a->health, b->health);
    assert_int_equal(a->status_since_ms, b->status_since_ms);
    assert_int_equal(a->runtime_since_ms, b->runtime_since_ms);
    assert_int_equal(a->updated_at_ms, b->updated_at_ms);
    assert_int_equal(a->event_time_ms, b->event_time_ms);
    assert_str_eq(a->message, b->message);
    assert_str_eq(a->pos.topic, b->pos.topic);
    assert_int_equal(a->pos.partition, b->pos.partition);
    assert_int_equal(a->pos.offset, b->pos.offset);
    assert_int_equal(a->n_incidents, b->n_incidents);
    for (size_t i = 0; i < a->n_incidents; i++) {
        const struct vg_open_incident *ia = &a->incidents[i];
        const struct vg_open_incident *ib =
            vg_resource_find_incident((struct vg_resource *)b, ia->monitor);

        assert_non_null(ib);
        assert_string_equal(ia->id, ib->id);
        assert_string_equal(ia->severity, ib->severity);
        assert_int_equal(ia->started_at_ms, ib->started_at_ms);
        assert_int_equal(ia->seq, ib->seq);
    }
}

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "test_state_commit", NULL, true);
}

/* XRANGE of a Resource's history stream. Caller frees. */
static redisReply *history(const char *id)
{
    redisReply *r = redisCommand(fx.raw, "XRANGE %s:hist:{%s} - +", fx.prefix, id);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r;
}

static void test_commit_roundtrip(void **state)
{
    struct vg_event evs[3];
    struct vg_resource *res[3];
    struct vg_resource *stored[2];
    struct vg_resource *again[3];
    struct vg_transition trans[9];
    size_t n_trans = 0;
    size_t n_hist_alpha = 0;
    struct vg_offset offs[2] = {{TOPIC, 0, 12}, {TOPIC, 1, 7}};
    struct vg_commit cm = {0};
    char errstr[512];
    int64_t off;
    redisReply *h;
    struct vg_history_entry *hist = NULL;
    size_t n_hist = 0;
    const char *msg = "line1\nline2 \"quoted\" \xc3\xbcnicode\ttab";

    (void)state;
    make_event(&evs[0], "workflow", "alpha", "w1", "alice", "active", "running", T0, 0, 10, NULL);
    make_event(&evs[1], "service", "beta", "w2", "bob", "active", "running", T0 + 5, 1, 7,
               "deployed");
    make_event(&evs[2], "workflow", "alpha", "w1", "alice", "active", "failed", T0 + 100, 0, 12,
               msg);

    assert_int_equal(vg_state_resolve(fx.st, evs, 3, res, errstr, sizeof(errstr)), VG_OK);
    assert_ptr_equal(res[0], res[2]);
    assert_ptr_not_equal(res[0], res[1]);
    assert_string_equal(res[0]->status, "");
    assert_int_equal(res[0]->n_incidents, 0);
    assert_string_equal(res[1]->owner, "bob");

    for (size_t i = 0; i < 3; i++) {
        n_trans += vg_resource_apply(&vg_test_hc_workflow, res[i], &evs[i], &trans[n_trans]);
    }
    assert_true(n_trans >= 5);
    vg_resource_add_incident(res[0], "mon-fail", "0123456789abcdef", "critical", T0 + 100)->seq = 2;
    vg_resource_add_incident(res[0], "mon-stuck", "fedcba9876543210", "warning", T0 + 50)->seq = 1;

    cm.res = res;
    cm.n_res = 2;
    cm.trans = trans;
    cm.n_trans = n_trans;
    cm.offsets = offs;
    cm.n_offsets = 2;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    assert_false(res[0]->dirty);
    assert_false(res[1]->dirty);
    for (size_t i = 0; i < n_trans; i++) {
        n_hist_alpha += trans[i].res == res[0];
    }

    /* Loaded back independently of the cache: equal, and the values we expect. */
    assert_int_equal(vg_state_get(fx.st, evs[0].id, &stored[0], errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_get(fx.st, evs[1].id, &stored[1], errstr, sizeof(errstr)), VG_OK);
    assert_non_null(stored[0]);
    assert_non_null(stored[1]);
    assert_resource_equal(res[0], stored[0]);
    assert_resource_equal(res[1], stored[1]);
    assert_string_equal(stored[0]->runtime, "failed");
    assert_int_equal(stored[0]->health, VG_HEALTH_UNHEALTHY);
    assert_int_equal(stored[0]->runtime_since_ms, T0 + 100);
    assert_int_equal(stored[0]->status_since_ms, T0);
    assert_string_equal(stored[0]->message, msg);
    assert_int_equal(stored[0]->pos.offset, 12);
    assert_int_equal(stored[0]->n_incidents, 2);
    assert_int_equal(vg_resource_find_incident(stored[0], "mon-fail")->seq, 2);
    assert_int_equal(vg_resource_find_incident(stored[0], "mon-stuck")->started_at_ms, T0 + 50);
    assert_string_equal(stored[1]->message, "deployed");

    /* Clear the cache: resolve loads from Redis, with the same contents. */
    vg_state_cache_clear(fx.st);
    assert_int_equal(vg_state_resolve(fx.st, evs, 3, again, errstr, sizeof(errstr)), VG_OK);
    assert_ptr_equal(again[0], again[2]);
    assert_resource_equal(stored[0], again[0]);
    assert_resource_equal(stored[1], again[1]);
    assert_false(again[0]->dirty);

    /* Offsets hash. */
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 0, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 12);
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 1, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, 7);
    assert_int_equal(vg_state_applied_offset(fx.st, TOPIC, 5, &off, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(off, -1);
    assert_int_equal(vg_state_applied_offset(fx.st, "other", 0, &off, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(off, -1);

    /* History: one stream entry for the batch, read back as one entry per
     * transition, oldest first, each with its event's time, position and message. */
    h = history(evs[0].id);
    assert_int_equal(h->elements, 1);
    freeReplyObject(h);
    assert_int_equal(vg_state_history(fx.st, evs[0].id, 0, &hist, &n_hist, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(n_hist, n_hist_alpha);
    for (size_t i = 0, k = 0; i < n_trans; i++) {
        if (trans[i].res != res[0]) {
            continue;
        }
        assert_string_equal(hist[k].field, vg_field_name(trans[i].field));
        assert_string_equal(hist[k].from, trans[i].from);
        assert_string_equal(hist[k].to, trans[i].to);
        assert_int_equal(hist[k].at_ms, trans[i].at_ms);
        assert_string_equal(hist[k].pos.topic, TOPIC);
        assert_int_equal(hist[k].pos.partition, 0);
        assert_int_equal(hist[k].pos.offset, trans[i].ev->pos.offset);
        assert_str_eq(hist[k].message, trans[i].ev->message);
        assert_int_equal(hist[k].n_extra, 0);
        k++;
    }
    assert_string_equal(hist[0].field, "status");
    assert_string_equal(hist[0].from, "");
    assert_string_equal(hist[0].to, "active");
    assert_int_equal(hist[0].pos.offset, 10);
    assert_null(hist[0].message);
    assert_int_equal(hist[n_hist - 1].pos.offset, 12);
    assert_string_equal(hist[n_hist - 1].message, msg);
    assert_int_equal(hist[n_hist - 1].at_ms, T0 + 100);
    vg_history_free(hist, n_hist);
    /* the newest two only: the entry is cut to what was asked for */
    assert_int_equal(vg_state_history(fx.st, evs[0].id, 2, &hist, &n_hist, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(n_hist, 2);
    assert_int_equal(hist[0].pos.offset, 12);
    assert_string_equal(hist[1].message, msg);
    vg_history_free(hist, n_hist);

    /* A closed incident and a new event: the rewrite drops the stale field. */
    vg_resource_remove_incident(again[0], "mon-stuck");
    cm = (struct vg_commit){0};
    cm.res = again;
    cm.n_res = 2;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    vg_resource_destroy(stored[0]);
    assert_int_equal(vg_state_get(fx.st, evs[0].id, &stored[0], errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(stored[0]->n_incidents, 1);
    assert_null(vg_resource_find_incident(stored[0], "mon-stuck"));
    assert_non_null(vg_resource_find_incident(stored[0], "mon-fail"));

    vg_resource_destroy(stored[0]);
    vg_resource_destroy(stored[1]);
    for (size_t i = 0; i < 3; i++) {
        vg_event_fini(&evs[i]);
    }
}

/* One field of a Resource hash through the raw connection, or NULL. Caller frees. */
static char *hget(const char *id, const char *field)
{
    redisReply *r = redisCommand(fx.raw, "HGET %s:res:{%s} %s", fx.prefix, id, field);
    char *v;

    assert_non_null(r);
    v = r->type == REDIS_REPLY_STRING ? vg_strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    return v;
}

static void expect_field(const char *id, const char *field, const char *want)
{
    char *got = hget(id, field);

    if (want == NULL || got == NULL) {
        if (got != want) {
            fprintf(stderr, "%s: want %s, got \"%s\"\n", field, want ? want : "(absent)",
                    got ? got : "(absent)");
        }
        assert_ptr_equal(got, want);
    } else {
        assert_string_equal(got, want);
    }
    vg_free(got);
}

static void expect_contains(const char *id, const char *field, const char *needle)
{
    char *got = hget(id, field);

    assert_non_null(got);
    assert_non_null(strstr(got, needle));
    vg_free(got);
}

static void raw_ok(redisReply *r)
{
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* A pod event about Resource service:v1:delta-pods:w1 (pod Running and ready unless deleted). */
static void pod_event(struct vg_event *ev, const char *pod, bool deleted, int64_t t, int64_t off)
{
    make_event(ev, "service", "delta-pods", "w1", "", "", "", t, 0, off, NULL);
    ev->kind = VG_EVENT_POD;
    ev->pod = vg_calloc(1, sizeof(*ev->pod));
    ev->pod->name = vg_strdup(pod);
    ev->pod->ns = vg_strdup("w1");
    snprintf(ev->pod->phase, sizeof(ev->pod->phase), "%s", "Running");
    ev->pod->ready = true;
    ev->pod->time_ms = t;
    ev->pod_deleted = deleted;
}

/* Resolve, apply and commit one event (its transitions with it); returns the commit's result. */
static vg_err_t apply_commit(struct vg_event *ev, struct vg_resource **res)
{
    struct vg_transition trans[3];
    struct vg_commit cm = {0};
    char errstr[512];
    size_t n;

    assert_int_equal(vg_state_resolve(fx.st, ev, 1, res, errstr, sizeof(errstr)), VG_OK);
    n = vg_resource_apply(&vg_test_hc_workflow, *res, ev, trans);
    cm.res = res;
    cm.n_res = 1;
    cm.trans = trans;
    cm.n_trans = n;
    return vg_state_commit(fx.st, &cm, errstr, sizeof(errstr));
}

/*
 * A commit writes what changed and deletes what went, nothing else (two
 * fields changed behind vigil's back stay as they are); after a commit
 * that failed, the next write of its Resource is whole.
 */
static void test_commit_writes_changes(void **state)
{
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_commit cm = {0};
    char errstr[512];
    char *since;
    const char *id = "workflow:v1:delta:w1";
    const char *pods_id = "service:v1:delta-pods:w1";

    (void)state;
    make_event(&ev, "workflow", "delta", "w1", "alice", "active", "pending", T0, 0, 100, "first");
    assert_int_equal(apply_commit(&ev, &res), VG_OK);
    vg_event_fini(&ev);
    vg_resource_add_incident(res, "m-a", "000000000000000a", "low", T0);
    vg_resource_add_incident(res, "m-b", "000000000000000b", "low", T0);
    cm.res = &res;
    cm.n_res = 1;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    assert_false(res->dirty);

    /* behind vigil's back: the next event changes neither field */
    raw_ok(redisCommand(fx.raw, "HSET %s:res:{%s} owner tampered status_since 1 partition 99",
                        fx.prefix, id));
    make_event(&ev, "workflow", "delta", "w1", "alice", "active", "running", T0 + 10, 0, 101, NULL);
    assert_int_equal(vg_state_resolve(fx.st, &ev, 1, &res, errstr, sizeof(errstr)), VG_OK);
    vg_resource_remove_incident(res, "m-a");
    assert_int_equal(apply_commit(&ev, &res), VG_OK);
    vg_event_fini(&ev);
    expect_field(id, "owner", "tampered");
    expect_field(id, "status_since", "1");
    expect_field(id, "partition", "99");
    expect_field(id, "runtime", "running");
    since = vg_asprintf("%lld", (long long)(T0 + 10));
    expect_field(id, "runtime_since", since);
    expect_field(id, "updated_at", since);
    vg_free(since);
    expect_field(id, "offset", "101");
    expect_field(id, "message", "first");
    expect_field(id, "inc:m-a", NULL);
    expect_contains(id, "inc:m-b", "000000000000000b");

    /* a commit that fails inside EXEC (the history key is not a stream) */
    raw_ok(redisCommand(fx.raw, "SET %s:hist:{%s} not-a-stream", fx.prefix, id));
    make_event(&ev, "workflow", "delta", "w1", "alice", "active", "succeeded", T0 + 20, 0, 102,
               NULL);
    assert_int_not_equal(apply_commit(&ev, &res), VG_OK);
    assert_true(res->dirty);
    raw_ok(redisCommand(fx.raw, "DEL %s:hist:{%s}", fx.prefix, id));
    raw_ok(redisCommand(fx.raw, "HSET %s:res:{%s} junk 1", fx.prefix, id));
    cm = (struct vg_commit){.res = &res, .n_res = 1};
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    vg_event_fini(&ev);
    /* whole: the junk is gone and the tampered fields say what vigil holds */
    expect_field(id, "junk", NULL);
    expect_field(id, "owner", "alice");
    since = vg_asprintf("%lld", (long long)T0);
    expect_field(id, "status_since", since);
    vg_free(since);
    expect_field(id, "runtime", "succeeded");
    expect_field(id, "partition", "0");
    expect_contains(id, "inc:m-b", "000000000000000b");

    /* pods: one field each, a deleted pod's field goes, the other stays */
    pod_event(&ev, "delta-pods-1", false, T0, 200);
    assert_int_equal(apply_commit(&ev, &res), VG_OK);
    vg_event_fini(&ev);
    pod_event(&ev, "delta-pods-2", false, T0 + 1, 201);
    assert_int_equal(apply_commit(&ev, &res), VG_OK);
    vg_event_fini(&ev);
    raw_ok(redisCommand(fx.raw, "HSET %s:res:{%s} pod:delta-pods-2 untouched", fx.prefix, pods_id));
    pod_event(&ev, "delta-pods-1", true, T0 + 2, 202);
    assert_int_equal(apply_commit(&ev, &res), VG_OK);
    vg_event_fini(&ev);
    expect_field(pods_id, "pod:delta-pods-1", NULL);
    expect_field(pods_id, "pod:delta-pods-2", "untouched");
    expect_field(pods_id, "runtime", "running");
    expect_field(pods_id, "offset", "202");
}

/*
 * A commit writes one history entry per Resource holding its transitions
 * (each event's time, position and message once); read back, it is one
 * entry per transition, after the entries already there (written one per
 * transition by an older vigil). A Resource with a log line in the batch
 * keeps one entry per transition, the log line in its Kafka place.
 */
static void test_history_entries(void **state)
{
    struct vg_event evs[4];
    struct vg_event log;
    struct vg_resource *res[4];
    struct vg_transition trans[12];
    struct vg_history_note note = {0};
    struct vg_commit cm = {0};
    struct vg_history_entry *h = NULL;
    size_t n_h = 0;
    size_t n_trans = 0;
    size_t n_x = 0;
    size_t n_y = 0;
    size_t first_e2 = 0;
    char errstr[512];
    redisReply *r;
    const char *x = "workflow:v1:hist-x:w1";
    const char *y = "service:v1:hist-y:w1";

    (void)state;
    make_event(&evs[0], "workflow", "hist-x", "w1", "", "active", "pending", T0, 0, 20, NULL);
    make_event(&evs[1], "service", "hist-y", "w1", "", "active", "running", T0 + 1, 0, 21, "m1");
    make_event(&evs[2], "workflow", "hist-x", "w1", "", "active", "running", T0 + 2, 0, 22, NULL);
    make_event(&evs[3], "service", "hist-y", "w1", "", "active", "failed", T0 + 3, 0, 23, NULL);
    make_event(&log, "workflow", "hist-x", "w1", "", "", "", T0 + 1, 0, 30, "Back-off");
    log.kind = VG_EVENT_K8S_EVENT;
    log.log_reason = vg_strdup("BackOff");
    /* an entry an older vigil wrote: one transition */
    r = redisCommand(fx.raw,
                     "XADD %s:hist:{%s} * field status from %s to active at 5 topic old "
                     "partition 0 offset 5",
                     fx.prefix, y, "");
    assert_non_null(r);
    freeReplyObject(r);

    assert_int_equal(vg_state_resolve(fx.st, evs, 4, res, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < 4; i++) {
        if (i == 2) {
            first_e2 = n_trans;
        }
        n_trans += vg_resource_apply(&vg_test_hc_workflow, res[i], &evs[i], &trans[n_trans]);
    }
    for (size_t i = 0; i < n_trans; i++) {
        n_x += trans[i].res == res[0];
        n_y += trans[i].res == res[1];
    }
    note.id = x;
    note.ev = &log;
    note.before_trans = first_e2; /* the log line came before evs[2] */
    cm.res = res;
    cm.n_res = 2;
    cm.trans = trans;
    cm.n_trans = n_trans;
    cm.notes = &note;
    cm.n_notes = 1;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);

    /* X: one entry per transition and the log line between its events */
    r = history(x);
    assert_int_equal(r->elements, n_x + 1);
    freeReplyObject(r);
    assert_int_equal(vg_state_history(fx.st, x, 0, &h, &n_h, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n_h, n_x + 1);
    for (size_t i = 0, k = 0; i < n_trans; i++) {
        if (i == first_e2) {
            assert_null(h[k].field);
            assert_int_equal(h[k].pos.offset, 30);
            assert_string_equal(h[k].message, "Back-off");
            k++;
        }
        if (trans[i].res != res[0]) {
            continue;
        }
        assert_string_equal(h[k].field, vg_field_name(trans[i].field));
        assert_string_equal(h[k].to, trans[i].to);
        assert_int_equal(h[k].pos.offset, trans[i].ev->pos.offset);
        k++;
    }
    vg_history_free(h, n_h);

    /* Y: the old entry, then one entry for the batch holding both events' transitions */
    r = history(y);
    assert_int_equal(r->elements, 2);
    freeReplyObject(r);
    assert_true(n_y >= 3);
    assert_int_equal(vg_state_history(fx.st, y, 0, &h, &n_h, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n_h, n_y + 1);
    assert_string_equal(h[0].pos.topic, "old");
    assert_int_equal(h[0].pos.offset, 5);
    assert_string_equal(h[0].from, "");
    for (size_t i = 0, k = 1; i < n_trans; i++) {
        if (trans[i].res != res[1]) {
            continue;
        }
        assert_string_equal(h[k].field, vg_field_name(trans[i].field));
        assert_string_equal(h[k].from, trans[i].from);
        assert_string_equal(h[k].to, trans[i].to);
        assert_int_equal(h[k].at_ms, trans[i].at_ms);
        assert_string_equal(h[k].pos.topic, TOPIC);
        assert_int_equal(h[k].pos.offset, trans[i].ev->pos.offset);
        /* evs[1] had a message, evs[3] none: each transition says its own */
        assert_str_eq(h[k].message, trans[i].ev->message);
        assert_string_equal(h[k].stream_id, h[1].stream_id);
        k++;
    }
    vg_history_free(h, n_h);

    for (size_t i = 0; i < 4; i++) {
        vg_event_fini(&evs[i]);
    }
    vg_event_fini(&log);
}

/* The pairs of a stream entry (XRANGE item) as "name=value;" text, 0x1F shown as '|'. */
static char *entry_pairs(const redisReply *item)
{
    struct vg_buf b = {0};
    const redisReply *f = item->element[1];

    for (size_t j = 0; j + 1 < f->elements; j += 2) {
        vg_buf_printf(&b, "%s=", f->element[j]->str);
        for (const char *c = f->element[j + 1]->str; *c; c++) {
            vg_buf_putc(&b, *c == '\x1f' ? '|' : *c);
        }
        vg_buf_puts(&b, ";");
    }
    return vg_buf_steal(&b);
}

/* XADD P:hist:{id} * with the given name/value arguments (NULL-terminated), as written. */
static void xadd_raw(const char *id, const char *const *pairs)
{
    const char *argv[32];
    size_t argc = 0;
    char *key = vg_asprintf("%s:hist:{%s}", fx.prefix, id);
    redisReply *r;

    argv[argc++] = "XADD";
    argv[argc++] = key;
    argv[argc++] = "*";
    for (size_t i = 0; pairs[i]; i++) {
        assert_true(argc < VG_ARRAY_LEN(argv));
        argv[argc++] = pairs[i];
    }
    r = redisCommandArgv(fx.raw, (int)argc, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    vg_free(key);
}

/*
 * The packed layout of a history entry: a transition is one pair `t`
 * ("<field>␟<from>␟<to>"), its event's source one pair `s`
 * ("<at>␟<partition>␟<offset>␟<topic>") then `message`. The reader takes
 * entries of several transitions written one pair per item (an older
 * vigil) the same way, and skips an entry whose `t` or `s` has the wrong
 * number of pieces, reading the ones around it.
 */
static void test_history_packed_layout(void **state)
{
    struct vg_event evs[2];
    struct vg_resource *res[2];
    struct vg_transition trans[6];
    struct vg_commit cm = {0};
    struct vg_history_entry *h = NULL;
    size_t n_h = 0;
    size_t n_trans = 0;
    char errstr[512];
    char *pairs;
    char *want;
    redisReply *r;
    const char *z = "workflow:v1:hist-z:w1";
    const char *o = "workflow:v1:hist-old:w1";

    (void)state;
    make_event(&evs[0], "workflow", "hist-z", "w1", "", "active", "pending", T0, 2, 40, "queued");
    make_event(&evs[1], "workflow", "hist-z", "w1", "", "active", "succeeded", T0 + 9, 2, 41, NULL);
    assert_int_equal(vg_state_resolve(fx.st, evs, 2, res, errstr, sizeof(errstr)), VG_OK);
    assert_ptr_equal(res[0], res[1]);
    n_trans += vg_resource_apply(&vg_test_hc_workflow, res[0], &evs[0], &trans[n_trans]);
    n_trans += vg_resource_apply(&vg_test_hc_workflow, res[1], &evs[1], &trans[n_trans]);
    cm.res = res;
    cm.n_res = 1;
    cm.trans = trans;
    cm.n_trans = n_trans;
    assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
    r = history(z);
    assert_int_equal(r->elements, 1);
    pairs = entry_pairs(r->element[0]);
    want = vg_asprintf("t=status||active;s=%lld|2|40|%s;message=queued;t=runtime||pending;"
                       "t=health||progressing;t=runtime|pending|succeeded;s=%lld|2|41|%s;"
                       "t=health|progressing|healthy;",
                       T0, TOPIC, T0 + 9, TOPIC);
    assert_string_equal(pairs, want);
    vg_free(pairs);
    vg_free(want);
    freeReplyObject(r);
    assert_int_equal(vg_state_history(fx.st, z, 0, &h, &n_h, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n_h, 5);
    assert_string_equal(h[3].field, "runtime");
    assert_string_equal(h[3].from, "pending");
    assert_string_equal(h[3].to, "succeeded");
    assert_int_equal(h[3].at_ms, T0 + 9);
    assert_int_equal(h[3].pos.partition, 2);
    assert_int_equal(h[3].pos.offset, 41);
    assert_null(h[3].message);
    assert_string_equal(h[4].field, "health"); /* shares the event before it */
    assert_int_equal(h[4].pos.offset, 41);
    assert_string_equal(h[1].message, "queued");
    assert_int_equal(h[2].at_ms, T0);
    vg_history_free(h, n_h);

    /* older entries of two transitions, malformed packed ones between good ones */
    xadd_raw(o,
             (const char *[]){"field",  "runtime",     "from",    "pending", "to",        "running",
                              "at",     "7",           "topic",   "t1",      "partition", "1",
                              "offset", "3",           "message", "m",       "field",     "health",
                              "from",   "progressing", "to",      "healthy", NULL});
    xadd_raw(o, (const char *[]){"t", "runtime\x1frunning", NULL});
    xadd_raw(o, (const char *[]){"t",
                                 "runtime\x1frunning\x1f\x1f"
                                 "failed",
                                 NULL});
    xadd_raw(o, (const char *[]){"t", "runtime\x1frunning\x1f", "s",
                                 "8\x1fone\x1f"
                                 "4\x1ft1",
                                 NULL});
    xadd_raw(o, (const char *[]){"t", "runtime\x1frunning\x1f", "s",
                                 "8\x1f"
                                 "1\x1f"
                                 "4",
                                 NULL});
    xadd_raw(o, (const char *[]){"t",
                                 "runtime\x1frunning\x1f"
                                 "failed",
                                 "s",
                                 "8\x1f"
                                 "1\x1f"
                                 "4\x1ft1",
                                 "reason", "OOMKilled", NULL});
    assert_int_equal(vg_state_history(fx.st, o, 0, &h, &n_h, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n_h, 3);
    assert_string_equal(h[0].to, "running");
    assert_string_equal(h[0].pos.topic, "t1");
    assert_string_equal(h[1].field, "health");
    assert_int_equal(h[1].at_ms, 7);
    assert_int_equal(h[1].pos.offset, 3);
    assert_string_equal(h[1].message, "m");
    assert_string_equal(h[2].from, "running");
    assert_string_equal(h[2].to, "failed");
    assert_int_equal(h[2].at_ms, 8);
    assert_int_equal(h[2].pos.partition, 1);
    assert_int_equal(h[2].pos.offset, 4);
    assert_string_equal(h[2].pos.topic, "t1");
    assert_int_equal(h[2].n_extra, 1);
    assert_string_equal(h[2].extra[0], "reason");
    assert_string_equal(h[2].extra[1], "OOMKilled");
    vg_history_free(h, n_h);
    vg_event_fini(&evs[0]);
    vg_event_fini(&evs[1]);
}

static void expect_list(const struct vg_state_filter *f, const char *const *names, size_t n)
{
    struct vg_resource **v = NULL;
    size_t nv = 0;
    char errstr[512];

    assert_int_equal(vg_state_list(fx.st, f, &v, &nv, errstr, sizeof(errstr)), VG_OK);
    if (nv != n) {
        fprintf(stderr, "want %zu resources, got %zu:", n, nv);
        for (size_t i = 0; i < nv; i++) {
            fprintf(stderr, " %s", v[i]->id);
        }
        fprintf(stderr, "\n");
    }
    assert_int_equal(nv, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i]->id, names[i]);
    }
    vg_resources_free(v, nv);
}

static void test_list_and_get(void **state)
{
    static const struct {
        const char *type, *name, *ws, *owner;
    } rows[] = {
        {"job", "zeta", "prod", "ops"},      {"job", "eta", "dev", "ops"},
        {"service", "eta", "prod", "web"},   {"service", "api", "prod", "web"},
        {"workflow", "etl", "prod", "data"},
    };
    struct vg_event evs[VG_ARRAY_LEN(rows)];
    struct vg_resource *res[VG_ARRAY_LEN(rows)];
    struct vg_transition trans[3];
    struct vg_commit cm = {0};
    struct vg_resource *got = NULL;
    struct vg_state *st2 = NULL;
    char errstr[512];
    char *prefix2 = vg_asprintf("test_state_commit-list-%d", (int)getpid());

    (void)state;
    /* A prefix of its own, so test_commit_roundtrip's Resources stay out. */
    st2 = vg_test_redis_connect(&fx, prefix2);
    assert_non_null(st2);
    for (size_t i = 0; i < VG_ARRAY_LEN(rows); i++) {
        make_event(&evs[i], rows[i].type, rows[i].name, rows[i].ws, rows[i].owner, "active",
                   "running", T0 + (int64_t)i, 2, 100 + (int64_t)i, NULL);
    }
    assert_int_equal(vg_state_resolve(st2, evs, VG_ARRAY_LEN(rows), res, errstr, sizeof(errstr)),
                     VG_OK);
    for (size_t i = 0; i < VG_ARRAY_LEN(rows); i++) {
        vg_resource_apply(&vg_test_hc_workflow, res[i], &evs[i], trans);
    }
    cm.res = res;
    cm.n_res = VG_ARRAY_LEN(rows);
    assert_int_equal(vg_state_commit(st2, &cm, errstr, sizeof(errstr)), VG_OK);

    {
        struct vg_state *saved = fx.st;
        const struct vg_state_filter all = {0};
        const struct vg_state_filter jobs = {.type = "job"};
        const struct vg_state_filter prod = {.workspace = "prod"};
        const struct vg_state_filter svc_prod = {.type = "service", .workspace = "prod"};
        const struct vg_state_filter glob = {.name_glob = "et*"};
        const struct vg_state_filter owner = {.owner = "web"};
        const struct vg_state_filter glob_owner = {.name_glob = "e?a", .owner = "ops"};
        const struct vg_state_filter none = {.type = "job", .workspace = "nowhere"};
        const char *const all_ids[] = {"service:v1:api:prod", "job:v1:eta:dev",
                                       "service:v1:eta:prod", "workflow:v1:etl:prod",
                                       "job:v1:zeta:prod"};
        const char *const job_ids[] = {"job:v1:eta:dev", "job:v1:zeta:prod"};
        const char *const prod_ids[] = {"service:v1:api:prod", "service:v1:eta:prod",
                                        "workflow:v1:etl:prod", "job:v1:zeta:prod"};
        const char *const svc_prod_ids[] = {"service:v1:api:prod", "service:v1:eta:prod"};
        const char *const glob_ids[] = {"job:v1:eta:dev", "service:v1:eta:prod",
                                        "workflow:v1:etl:prod"};
        const char *const owner_ids[] = {"service:v1:api:prod", "service:v1:eta:prod"};
        const char *const glob_owner_ids[] = {"job:v1:eta:dev"};

        fx.st = st2;
        expect_list(NULL, all_ids, VG_ARRAY_LEN(all_ids));
        expect_list(&all, all_ids, VG_ARRAY_LEN(all_ids));
        expect_list(&jobs, job_ids, VG_ARRAY_LEN(job_ids));
        expect_list(&prod, prod_ids, VG_ARRAY_LEN(prod_ids));
        expect_list(&svc_prod, svc_prod_ids, VG_ARRAY_LEN(svc_prod_ids));
        expect_list(&glob, glob_ids, VG_ARRAY_LEN(glob_ids));
        expect_list(&owner, owner_ids, VG_ARRAY_LEN(owner_ids));
        expect_list(&glob_owner, glob_owner_ids, VG_ARRAY_LEN(glob_owner_ids));
        expect_list(&none, NULL, 0);
        fx.st = saved;
    }

    assert_int_equal(vg_state_get(st2, "job:v1:nope:prod", &got, errstr, sizeof(errstr)), VG_OK);
    assert_null(got);
    assert_int_equal(vg_state_get(st2, "job:v1:zeta:prod", &got, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(got);
    assert_string_equal(got->owner, "ops");
    vg_resource_destroy(got);

    for (size_t i = 0; i < VG_ARRAY_LEN(rows); i++) {
        vg_event_fini(&evs[i]);
    }
    vg_state_destroy(st2);
    vg_free(prefix2);
}

static void test_connect_errors(void **state)
{
    struct vg_state *st = NULL;
    char errstr[512];
    char *url;
    vg_err_t err;

    (void)state;
    /* Malformed. */
    assert_int_equal(vg_state_connect(&st, "http://x", "p", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_null(st);

    /* Nothing listening: BACKEND, URL named, password never shown. */
    url = vg_asprintf("unix://%s/none.sock?password=s3cret", fx.dir);
    err = vg_state_connect(&st, url, "p", errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_null(st);
    assert_non_null(strstr(errstr, "none.sock"));
    assert_null(strstr(errstr, "s3cret"));
    vg_free(url);

    assert_int_equal(vg_state_connect(&st, "redis://127.0.0.1:1/0", "p", errstr, sizeof(errstr)),
                     VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "127.0.0.1"));

    /* AUTH against a server without a password is a configuration error. */
    url = vg_asprintf("%s?password=s3cret", vg_redis_child_url(fx.rc));
    err = vg_state_connect(&st, url, "p", errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_INVALID);
    assert_null(strstr(errstr, "s3cret"));
    assert_non_null(strstr(errstr, "AUTH"));
    vg_free(url);

    /* SELECT of a database that does not exist. */
    url = vg_asprintf("%s?db=999", vg_redis_child_url(fx.rc));
    assert_int_equal(vg_state_connect(&st, url, "p", errstr, sizeof(errstr)), VG_ERR_INVALID);
    assert_non_null(strstr(errstr, "SELECT"));
    vg_free(url);

    /* A valid db works, and keys land there. */
    url = vg_asprintf("%s?db=3", vg_redis_child_url(fx.rc));
    assert_int_equal(vg_state_connect(&st, url, "p", errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_ping(st), VG_OK);
    vg_state_destroy(st);
    vg_free(url);

    /* A prefix that would break the hash tags. */
    assert_int_equal(
        vg_state_connect(&st, vg_redis_child_url(fx.rc), "a{b", errstr, sizeof(errstr)),
        VG_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_roundtrip),      cmocka_unit_test(test_list_and_get),
        cmocka_unit_test(test_commit_writes_changes), cmocka_unit_test(test_history_entries),
        cmocka_unit_test(test_history_packed_layout), cmocka_unit_test(test_connect_errors),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
