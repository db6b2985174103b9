/*
 * vg_resource_apply: transitions (status, runtime, health, in that
 * order) from a first event, status-only and runtime-only changes,
 * events that change nothing, since-times, owner/message/position
 * updates, and ordering by event time (older: ignored; equal: applied).
 * Also the open-incident helpers on a Resource, and the dirty bits that
 * tell a commit which hash fields to write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/mem.h"

static char *batch_types[] = {(char *)"workflow", (char *)"job"};
static const struct vg_health_config hc = {batch_types, 2};

/* An event as decode would produce it; NULL status/runtime mean "". */
static void make_event(struct vg_event *ev, const char *type, const char *status,
                       const char *runtime, int64_t time_ms, const char *owner, const char *message,
                       int64_t offset)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = vg_strdup(type);
    ev->name = vg_strdup("ingestion-x");
    ev->workspace = vg_strdup("public");
    ev->version = vg_strdup("v1");
    ev->owner = vg_strdup(owner ? owner : "");
    ev->id = vg_resource_id(ev->type, ev->version, ev->name, ev->workspace);
    snprintf(ev->status, sizeof(ev->status), "%s", status ? status : "");
    snprintf(ev->runtime, sizeof(ev->runtime), "%s", runtime ? runtime : "");
    ev->time_ms = time_ms;
    ev->message = message ? vg_strdup(message) : NULL;
    ev->pos.topic = vg_strdup("vigil.events");
    ev->pos.partition = 3;
    ev->pos.offset = offset;
}

struct want_tr {
    enum vg_field field;
    const char *from, *to;
};

/* Compare `n` transitions with `want`; print each mismatch. Returns the number of mismatches. */
static int check_transitions(const char *what, const struct vg_transition *got, size_t n,
                             const struct want_tr *want, size_t n_want,
                             const struct vg_resource *res, const struct vg_event *ev)
{
    int failed = 0;
    if (n != n_want) {
        print_error("%s: want %zu transitions, got %zu\n", what, n_want, n);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (got[i].field != want[i].field || strcmp(got[i].from, want[i].from) != 0 ||
            strcmp(got[i].to, want[i].to) != 0 || got[i].at_ms != ev->time_ms ||
            got[i].res != res || got[i].ev != ev) {
            print_error("%s: transition %zu: want %s \"%s\" -> \"%s\" at %lld, got %s \"%s\" -> "
                        "\"%s\" at %lld\n",
                        what, i, vg_field_name(want[i].field), want[i].from, want[i].to,
                        (long long)ev->time_ms, vg_field_name(got[i].field), got[i].from, got[i].to,
                        (long long)got[i].at_ms);
            failed++;
        }
    }
    return failed;
}

/*
 * A sequence of events applied to one Resource, each with the transitions
 * it must produce and the state after it. A row reads: event status,
 * runtime, time; transitions and their count; then status, runtime,
 * health, status_since, runtime_since, updated_at afterwards.
 */
struct step {
    const char *status, *runtime;
    int64_t time_ms;
    struct want_tr want[3];
    size_t n_want;
    const char *after_status, *after_runtime;
    enum vg_health after_health;
    int64_t status_since_ms, runtime_since_ms;
    int64_t updated_at_ms;
};

static int run_steps(const char *type, const struct step *steps, size_t n_steps)
{
    struct vg_event first;
    struct vg_resource *res;
    int failed = 0;

    make_event(&first, type, NULL, NULL, 0, NULL, NULL, 0);
    res = vg_resource_new_from_event(&first);
    vg_event_fini(&first);
    for (size_t i = 0, changed_at = 0; i < n_steps; i++) {
        const struct step *st = &steps[i];
        struct vg_event ev;
        struct vg_transition out[3];
        char what[64];
        size_t n;

        snprintf(what, sizeof(what), "%s step %zu", type, i);
        make_event(&ev, type, st->status, st->runtime, st->time_ms, NULL, NULL, (int64_t)i);
        res->dirty = false;
        memset(out, 0, sizeof(out));
        n = vg_resource_apply(&hc, res, &ev, out);
        failed += check_transitions(what, out, n, st->want, st->n_want, res, &ev);
        /* an event that changes nothing leaves the stored Resource (and its position) as is */
        if (st->n_want > 0) {
            changed_at = i;
        }
        if (strcmp(res->status, st->after_status) != 0 ||
            strcmp(res->runtime, st->after_runtime) != 0 || res->health != st->after_health ||
            res->status_since_ms != st->status_since_ms ||
            res->runtime_since_ms != st->runtime_since_ms ||
            res->updated_at_ms != st->updated_at_ms || res->dirty != (st->n_want > 0) ||
            res->pos.offset != (int64_t)changed_at) {
            print_error("%s: want \"%s\"/\"%s\"/%s since %lld/%lld updated %lld offset %zu, "
                        "got \"%s\"/\"%s\"/%s since %lld/%lld updated %lld offset %lld dirty %d\n",
                        what, st->after_status, st->after_runtime, vg_health_name(st->after_health),
                        (long long)st->status_since_ms, (long long)st->runtime_since_ms,
                        (long long)st->updated_at_ms, changed_at, res->status, res->runtime,
                        vg_health_name(res->health), (long long)res->status_since_ms,
                        (long long)res->runtime_since_ms, (long long)res->updated_at_ms,
                        (long long)res->pos.offset, res->dirty);
            failed++;
        }
        vg_event_fini(&ev);
    }
    vg_resource_destroy(res);
    return failed;
}

/* clang-format off */
#define ST(a, b) {VG_FIELD_STATUS, a, b}
#define RT(a, b) {VG_FIELD_RUNTIME, a, b}
#define HT(a, b) {VG_FIELD_HEALTH, a, b}
/* clang-format on */

static void test_service_lifecycle(void **state)
{
    /* clang-format off */
    static const struct step steps[] = {
        /* first event, status only: status "" -> active, health "" -> progressing */
        {"active", NULL, 1000,
         {ST("", "active"), HT("", "progressing")}, 2,
         "active", "", VG_HEALTH_PROGRESSING, 1000, 0, 1000},
        /* runtime only: "" -> pending, health unchanged */
        {NULL, "pending", 2000,
         {RT("", "pending")}, 1,
         "active", "pending", VG_HEALTH_PROGRESSING, 1000, 2000, 2000},
        /* runtime only: pending -> running, health -> healthy */
        {NULL, "running", 3000,
         {RT("pending", "running"), HT("progressing", "healthy")}, 2,
         "active", "running", VG_HEALTH_HEALTHY, 1000, 3000, 3000},
        /* no change (both repeated): 0 transitions, nothing to write, updated_at kept */
        {"active", "running", 4000,
         {{0}}, 0,
         "active", "running", VG_HEALTH_HEALTHY, 1000, 3000, 3000},
        /* equal time is accepted */
        {NULL, "failed", 4000,
         {RT("running", "failed"), HT("healthy", "unhealthy")}, 2,
         "active", "failed", VG_HEALTH_UNHEALTHY, 1000, 4000, 4000},
        /* status only: active -> error, health stays unhealthy */
        {"error", NULL, 5000,
         {ST("active", "error")}, 1,
         "error", "failed", VG_HEALTH_UNHEALTHY, 5000, 4000, 5000},
        /* both change at once: order is status, runtime, health */
        {"active", "running", 6000,
         {ST("error", "active"), RT("failed", "running"), HT("unhealthy", "healthy")}, 3,
         "active", "running", VG_HEALTH_HEALTHY, 6000, 6000, 6000},
        /* deleted: status and health */
        {"deleted", NULL, 7000,
         {ST("active", "deleted"), HT("healthy", "unhealthy")}, 2,
         "deleted", "running", VG_HEALTH_UNHEALTHY, 7000, 6000, 7000},
    };
    /* clang-format on */

    (void)state;
    assert_int_equal(run_steps("service", steps, VG_ARRAY_LEN(steps)), 0);
}

static void test_batch_lifecycle(void **state)
{
    /* clang-format off */
    static const struct step steps[] = {
        /* first event with both: three transitions from "" */
        {"active", "running", 1000,
         {ST("", "active"), RT("", "running"), HT("", "progressing")}, 3,
         "active", "running", VG_HEALTH_PROGRESSING, 1000, 1000, 1000},
        {NULL, "succeeded", 2000,
         {RT("running", "succeeded"), HT("progressing", "healthy")}, 2,
         "active", "succeeded", VG_HEALTH_HEALTHY, 1000, 2000, 2000},
        {NULL, "running", 3000,
         {RT("succeeded", "running"), HT("healthy", "progressing")}, 2,
         "active", "running", VG_HEALTH_PROGRESSING, 1000, 3000, 3000},
        {NULL, "running", 3500,
         {{0}}, 0,
         "active", "running", VG_HEALTH_PROGRESSING, 1000, 3000, 3000},
    };
    /* clang-format on */

    (void)state;
    assert_int_equal(run_steps("workflow", steps, VG_ARRAY_LEN(steps)), 0);
}

/* The first event for a long-running type with a healthy pair goes "" -> healthy at once. */
static void test_first_event_healthy(void **state)
{
    /* clang-format off */
    static const struct step steps[] = {
        {"active", "running", 1000,
         {ST("", "active"), RT("", "running"), HT("", "healthy")}, 3,
         "active", "running", VG_HEALTH_HEALTHY, 1000, 1000, 1000},
    };
    /* clang-format on */

    (void)state;
    assert_int_equal(run_steps("worker", steps, VG_ARRAY_LEN(steps)), 0);
}

static void test_first_event_fields(void **state)
{
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_transition out[3];

    (void)state;
    make_event(&ev, "job", "active", NULL, 1795860000123, "iamgroot", "started", 42);
    res = vg_resource_new_from_event(&ev);
    assert_string_equal(res->id, "job:v1:ingestion-x:public");
    assert_string_equal(res->type, "job");
    assert_string_equal(res->name, "ingestion-x");
    assert_string_equal(res->workspace, "public");
    assert_string_equal(res->version, "v1");
    assert_string_equal(res->owner, "iamgroot");
    assert_string_equal(res->status, "");
    assert_string_equal(res->runtime, "");
    assert_int_equal(res->health, VG_HEALTH_UNKNOWN);
    assert_null(res->message);
    assert_false(res->dirty);
    assert_int_equal(res->n_incidents, 0);
    /* identity is copied, not borrowed */
    assert_ptr_not_equal(res->id, ev.id);

    assert_int_equal(vg_resource_apply(&hc, res, &ev, out), 2);
    assert_true(res->dirty);
    assert_string_equal(res->message, "started");
    assert_ptr_not_equal(res->message, ev.message);
    assert_int_equal(res->updated_at_ms, 1795860000123);
    assert_int_equal(res->event_time_ms, 1795860000123);
    assert_int_equal(res->status_since_ms, 1795860000123);
    assert_non_null(res->pos.topic);
    assert_ptr_not_equal(res->pos.topic, ev.pos.topic);
    assert_string_equal(res->pos.topic, "vigil.events");
    assert_int_equal(res->pos.partition, 3);
    assert_int_equal(res->pos.offset, 42);
    vg_event_fini(&ev);
    /* the resource outlives the event */
    assert_string_equal(res->pos.topic, "vigil.events");
    assert_string_equal(res->message, "started");
    vg_resource_destroy(res);
    vg_resource_destroy(NULL);
}

static void test_no_change_event(void **state)
{
    struct vg_event ev;
    struct vg_event ev2;
    struct vg_resource *res;
    struct vg_transition out[3];

    (void)state;
    make_event(&ev, "service", "active", "running", 1000, NULL, NULL, 10);
    res = vg_resource_new_from_event(&ev);
    assert_int_equal(vg_resource_apply(&hc, res, &ev, out), 3);
    vg_event_fini(&ev);

    res->dirty = false;
    make_event(&ev, "service", "active", "running", 2000, NULL, NULL, 11);
    ev.pos.partition = 1;
    memset(out, 0, sizeof(out));
    assert_int_equal(vg_resource_apply(&hc, res, &ev, out), 0);
    /* nothing to write: the stored Resource says when it last changed, and where */
    assert_false(res->dirty);
    assert_int_equal(res->updated_at_ms, 1000);
    assert_int_equal(res->event_time_ms, 1000);
    assert_int_equal(res->status_since_ms, 1000);
    assert_int_equal(res->runtime_since_ms, 1000);
    assert_int_equal(res->pos.partition, 3);
    assert_int_equal(res->pos.offset, 10);
    /* the cache knows it was seen: an event older than that is late */
    assert_int_equal(res->seen_ms, 2000);
    make_event(&ev2, "service", "active", "failed", 1500, NULL, NULL, 12);
    assert_true(vg_resource_is_late(res, &ev2));
    vg_event_fini(&ev2);
    assert_string_equal(res->status, "active");
    assert_int_equal(res->health, VG_HEALTH_HEALTHY);
    vg_event_fini(&ev);
    vg_resource_destroy(res);
}

static void test_older_event_ignored(void **state)
{
    struct vg_event ev;
    struct vg_event old;
    struct vg_resource *res;
    struct vg_transition out[3];

    (void)state;
    make_event(&ev, "service", "active", "running", 5000, "alice", "new", 20);
    res = vg_resource_new_from_event(&ev);
    assert_int_equal(vg_resource_apply(&hc, res, &ev, out), 3);
    vg_event_fini(&ev);
    res->dirty = false;

    make_event(&old, "service", "error", "failed", 4999, "bob", "old", 19);
    memset(out, 0, sizeof(out));
    assert_int_equal(vg_resource_apply(&hc, res, &old, out), 0);
    assert_false(res->dirty);
    assert_string_equal(res->status, "active");
    assert_string_equal(res->runtime, "running");
    assert_int_equal(res->health, VG_HEALTH_HEALTHY);
    assert_int_equal(res->updated_at_ms, 5000);
    assert_int_equal(res->event_time_ms, 5000);
    assert_int_equal(res->status_since_ms, 5000);
    assert_int_equal(res->pos.offset, 20);
    assert_string_equal(res->owner, "alice");
    assert_string_equal(res->message, "new");
    vg_event_fini(&old);

    /* equal time is accepted */
    make_event(&ev, "service", "error", NULL, 5000, NULL, NULL, 21);
    assert_int_equal(vg_resource_apply(&hc, res, &ev, out), 2);
    assert_string_equal(res->status, "error");
    assert_int_equal(res->pos.offset, 21);
    vg_event_fini(&ev);
    vg_resource_destroy(res);
}

static void test_owner_and_message(void **state)
{
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_transition out[3];
    static const struct {
        const char *owner;   /* on the event ("" = absent) */
        const char *message; /* on the event (NULL = absent) */
        const char *want_owner;
        const char *want_message; /* NULL: none */
    } steps[] = {
        {"", NULL, "", NULL},
        {"alice", NULL, "alice", NULL},
        {"", "first", "alice", "first"}, /* an absent owner does not clear it */
        {"bob", NULL, "bob", "first"},   /* an absent message keeps the last one */
        {"bob", "second", "bob", "second"},
        {"", "", "bob", ""}, /* an empty message replaces it */
    };
    int failed = 0;

    (void)state;
    make_event(&ev, "service", "active", NULL, 0, NULL, NULL, 0);
    res = vg_resource_new_from_event(&ev);
    vg_event_fini(&ev);
    for (size_t i = 0; i < VG_ARRAY_LEN(steps); i++) {
        make_event(&ev, "service", "active", NULL, 1000 + (int64_t)i, steps[i].owner,
                   steps[i].message, 0);
        vg_resource_apply(&hc, res, &ev, out);
        vg_event_fini(&ev);
        if (strcmp(res->owner, steps[i].want_owner) != 0 ||
            (steps[i].want_message == NULL) != (res->message == NULL) ||
            (res->message && strcmp(res->message, steps[i].want_message) != 0)) {
            print_error("step %zu: want owner \"%s\" message \"%s\", got \"%s\" \"%s\"\n", i,
                        steps[i].want_owner,
                        steps[i].want_message ? steps[i].want_message : "(null)", res->owner,
                        res->message ? res->message : "(null)");
            failed++;
        }
    }
    vg_resource_destroy(res);
    assert_int_equal(failed, 0);
}

static void test_incidents(void **state)
{
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_open_incident *inc;
    char monitor[32];
    char id[32];

    (void)state;
    make_event(&ev, "workflow", "active", NULL, 0, NULL, NULL, 0);
    res = vg_resource_new_from_event(&ev);
    vg_event_fini(&ev);

    assert_null(vg_resource_find_incident(res, "workflow-failed"));
    vg_resource_remove_incident(res, "workflow-failed"); /* absent: no-op */
    assert_false(res->dirty);

    /* the caller's strings stay theirs: add copies them */
    snprintf(monitor, sizeof(monitor), "%s", "workflow-failed");
    snprintf(id, sizeof(id), "%s", "8c0f6a1e2b3d4c5f");
    inc = vg_resource_add_incident(res, monitor, id, "high", 1000);
    assert_non_null(inc);
    assert_true(res->dirty);
    monitor[0] = 'X';
    id[0] = 'X';
    inc = vg_resource_find_incident(res, "workflow-failed");
    assert_non_null(inc);
    assert_string_equal(inc->monitor, "workflow-failed");
    assert_string_equal(inc->id, "8c0f6a1e2b3d4c5f");
    assert_string_equal(inc->severity, "high");
    assert_int_equal(inc->started_at_ms, 1000);
    assert_int_equal(inc->seq, 0);
    inc->seq = 1;

    vg_resource_add_incident(res, "stuck-pending", "0000000000000001", "low", 2000);
    assert_int_equal(res->n_incidents, 2);

    /* adding the same monitor again replaces it */
    vg_resource_add_incident(res, "workflow-failed", "aaaaaaaaaaaaaaaa", "critical", 3000);
    assert_int_equal(res->n_incidents, 2);
    inc = vg_resource_find_incident(res, "workflow-failed");
    assert_string_equal(inc->id, "aaaaaaaaaaaaaaaa");
    assert_string_equal(inc->severity, "critical");
    assert_int_equal(inc->started_at_ms, 3000);
    assert_int_equal(inc->seq, 0);

    /* grow past the initial capacity, then remove from the middle */
    for (int i = 0; i < 20; i++) {
        snprintf(monitor, sizeof(monitor), "m%02d", i);
        vg_resource_add_incident(res, monitor, "ffffffffffffffff", "info", i);
    }
    assert_int_equal(res->n_incidents, 22);
    res->dirty = false;
    vg_resource_remove_incident(res, "m05");
    assert_true(res->dirty);
    assert_int_equal(res->n_incidents, 21);
    assert_null(vg_resource_find_incident(res, "m05"));
    for (int i = 0; i < 20; i++) {
        snprintf(monitor, sizeof(monitor), "m%02d", i);
        inc = vg_resource_find_incident(res, monitor);
        if (i == 5) {
            assert_null(inc);
        } else {
            assert_non_null(inc);
            assert_int_equal(inc->started_at_ms, i);
        }
    }
    /* order is kept */
    assert_string_equal(res->incidents[0].monitor, "workflow-failed");
    assert_string_equal(res->incidents[1].monitor, "stuck-pending");
    assert_string_equal(res->incidents[7].monitor, "m06");

    vg_resource_remove_incident(res, "workflow-failed");
    vg_resource_remove_incident(res, "m19"); /* the last one */
    assert_int_equal(res->n_incidents, 19);
    assert_string_equal(res->incidents[0].monitor, "stuck-pending");
    assert_string_equal(res->incidents[18].monitor, "m18");
    vg_resource_destroy(res); /* frees the incidents (ASan checks) */
}

/*
 * What a commit must write: each event's changes as dirty bits (and the
 * incident entries by name), starting from a clean Resource each time.
 */
static void test_dirty_bits(void **state)
{
    static const struct {
        const char *status, *runtime, *owner, *message;
        int64_t time_ms;
        uint32_t want;
    } cases[] = {
        /* first event: status, runtime, health, owner, message and the position */
        {"active", "pending", "alice", "hello", 1000,
         VG_DIRTY_STATUS | VG_DIRTY_RUNTIME | VG_DIRTY_HEALTH | VG_DIRTY_OWNER | VG_DIRTY_MESSAGE |
             VG_DIRTY_POSITION | VG_DIRTY_SOURCE},
        /* a heartbeat: nothing */
        {"active", "pending", "alice", "hello", 2000, 0},
        /* a runtime step that keeps the health (pending -> running: progressing) */
        {"active", "running", NULL, NULL, 3000, VG_DIRTY_RUNTIME | VG_DIRTY_POSITION},
        /* a runtime step that changes the health */
        {NULL, "succeeded", NULL, NULL, 4000,
         VG_DIRTY_RUNTIME | VG_DIRTY_HEALTH | VG_DIRTY_POSITION},
        /* a status flip */
        {"error", NULL, NULL, NULL, 5000, VG_DIRTY_STATUS | VG_DIRTY_HEALTH | VG_DIRTY_POSITION},
        /* only the message */
        {NULL, "succeeded", NULL, "bye", 6000, VG_DIRTY_MESSAGE | VG_DIRTY_POSITION},
        /* only the owner */
        {NULL, "succeeded", "bob", NULL, 7000, VG_DIRTY_OWNER | VG_DIRTY_POSITION},
        /* a late event: nothing */
        {"active", "failed", "carol", "late", 100, 0},
    };
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_transition out[3];
    int failed = 0;

    (void)state;
    make_event(&ev, "workflow", "active", NULL, 0, NULL, NULL, 0);
    res = vg_resource_new_from_event(&ev);
    vg_event_fini(&ev);
    /* a Resource nobody has seen stored is written whole, with a DEL first */
    assert_int_equal(res->dirty_mask, VG_DIRTY_REPLACE);
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        vg_resource_clean(res);
        make_event(&ev, "workflow", cases[i].status, cases[i].runtime, cases[i].time_ms,
                   cases[i].owner, cases[i].message, (int64_t)i);
        vg_resource_apply(&hc, res, &ev, out);
        if (res->dirty_mask != cases[i].want || res->dirty != (cases[i].want != 0) ||
            res->n_dirty_names != 0) {
            print_error("case %zu: want bits 0x%x, got 0x%x (dirty %d, %zu names)\n", i,
                        (unsigned)cases[i].want, (unsigned)res->dirty_mask, res->dirty,
                        res->n_dirty_names);
            failed++;
        }
        vg_event_fini(&ev);
    }
    assert_int_equal(failed, 0);

    /* incident entries by name, each once, removed ones too */
    vg_resource_clean(res);
    vg_resource_add_incident(res, "m1", "0000000000000001", "low", 1);
    vg_resource_add_incident(res, "m2", "0000000000000002", "low", 1);
    vg_resource_add_incident(res, "m1", "0000000000000003", "low", 2);
    assert_true(res->dirty);
    assert_int_equal(res->dirty_mask, 0);
    assert_int_equal(res->n_dirty_names, 2);
    vg_resource_clean(res);
    vg_resource_remove_incident(res, "m2");
    assert_int_equal(res->n_dirty_names, 1);
    assert_int_equal(res->dirty_names[0].kind, VG_DIRTY_INCIDENT);
    assert_string_equal(res->dirty_names[0].name, "m2");
    vg_resource_clean(res);
    assert_false(res->dirty);
    assert_int_equal(res->n_dirty_names, 0);
    vg_resource_destroy(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_lifecycle),   cmocka_unit_test(test_batch_lifecycle),
        cmocka_unit_test(test_first_event_healthy), cmocka_unit_test(test_first_event_fields),
        cmocka_unit_test(test_no_change_event),     cmocka_unit_test(test_older_event_ignored),
        cmocka_unit_test(test_owner_and_message),   cmocka_unit_test(test_incidents),
        cmocka_unit_test(test_dirty_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
