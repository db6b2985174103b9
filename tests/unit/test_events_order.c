/*
 * The ordering rule (docs/events.md, "Order"): an event older than what
 * the state reflects (by event time, then Kafka offset on the same
 * partition) is late: it moves nothing, and vg_event_late_values says
 * what its history entry records. Equal times apply; offsets of other
 * partitions or topics are never compared. A native runtime after a
 * pod-derived one forgets the deciding pod.
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

static const char *const batch_types[] = {"workflow"};

static struct vg_event native(const char *status, const char *runtime, int64_t time_ms,
                              const char *topic, int32_t partition, int64_t offset)
{
    struct vg_event ev;
    char detail[128];
    char *json =
        vg_asprintf("{\"resource\":{\"type\":\"workflow\",\"name\":\"a\",\"workspace\":"
                    "\"w\"}%s%s%s%s%s%s}",
                    status ? ",\"status\":\"" : "", status ? status : "", status ? "\"" : "",
                    runtime ? ",\"runtime\":\"" : "", runtime ? runtime : "", runtime ? "\"" : "");

    assert_int_equal(vg_event_decode(&ev, json, strlen(json), time_ms, detail, sizeof(detail)),
                     VG_DECODE_OK);
    ev.pos.topic = vg_strdup(topic);
    ev.pos.partition = partition;
    ev.pos.offset = offset;
    free(json);
    return ev;
}

static void test_rule(void **state)
{
    /* state after: time 1000 at t/0 offset 10 */
    static const struct {
        int64_t time_ms;
        const char *topic;
        int32_t partition;
        int64_t offset;
        bool late;
    } cases[] = {
        {999, "t", 0, 11, true}, /* older time: late, whatever the offset */
        {999, "u", 3, 99, true},
        {1000, "t", 0, 9, true},   /* equal time, lower offset, same partition */
        {1000, "t", 0, 11, false}, /* equal time, later offset */
        {1000, "t", 1, 9, false},  /* equal time, another partition: not comparable */
        {1000, "u", 0, 9, false},  /* another topic */
        {1001, "t", 0, 1, false},  /* newer time, whatever the offset */
    };
    struct vg_health_config hc = {(char **)batch_types, 1};
    struct vg_transition tr[3];
    int bad = 0;
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event first = native("active", "running", 1000, "t", 0, 10);
        struct vg_event ev = native(NULL, "failed", cases[i].time_ms, cases[i].topic,
                                    cases[i].partition, cases[i].offset);
        struct vg_resource *res = vg_resource_new_from_event(&first);
        size_t n;

        vg_resource_apply(&hc, res, &first, tr);
        if (vg_resource_is_late(res, &ev) != cases[i].late) {
            fprintf(stderr, "case %zu: vg_resource_is_late says %d\n", i, (int)!cases[i].late);
            bad++;
        }
        n = vg_resource_apply(&hc, res, &ev, tr);
        if ((n == 0) != cases[i].late ||
            strcmp(res->runtime, cases[i].late ? "running" : "failed") != 0) {
            fprintf(stderr, "case %zu: n=%zu runtime=%s want late=%d\n", i, n, res->runtime,
                    (int)cases[i].late);
            bad++;
        }
        vg_resource_destroy(res);
        vg_event_fini(&first);
        vg_event_fini(&ev);
    }
    assert_int_equal(bad, 0);
}

/* A late event changes nothing at all: not the message, owner, times or position. */
static void test_late_moves_nothing(void **state)
{
    struct vg_health_config hc = {(char **)batch_types, 1};
    struct vg_transition tr[3];
    struct vg_event first = native("active", "running", 5000, "t", 0, 10);
    struct vg_event late = native("error", "failed", 4000, "t", 0, 11);
    struct vg_resource *res = vg_resource_new_from_event(&first);
    enum vg_field fields[2];
    char values[2][VG_VALUE_MAX];
    char reason[VG_REASON_MAX];
    (void)state;

    vg_resource_apply(&hc, res, &first, tr);
    res->dirty = false;
    free(late.message);
    late.message = vg_strdup("late news");
    assert_true(vg_resource_is_late(res, &late));
    assert_int_equal(vg_resource_apply(&hc, res, &late, tr), 0);
    assert_false(res->dirty);
    assert_string_equal(res->status, "active");
    assert_string_equal(res->runtime, "running");
    assert_null(res->message);
    assert_int_equal(res->event_time_ms, 5000);
    assert_int_equal(res->pos.offset, 10);
    assert_int_equal(vg_event_late_values(&late, fields, values, reason), 2);
    assert_int_equal(fields[0], VG_FIELD_STATUS);
    assert_string_equal(values[0], "error");
    assert_int_equal(fields[1], VG_FIELD_RUNTIME);
    assert_string_equal(values[1], "failed");
    assert_string_equal(reason, "");
    /* replaying the applied event itself is not late (equal time, equal offset) */
    assert_false(vg_resource_is_late(res, &first));
    vg_resource_destroy(res);
    vg_event_fini(&first);
    vg_event_fini(&late);
}

static void test_late_pod_values(void **state)
{
    struct vg_event ev;
    enum vg_field fields[2];
    char values[2][VG_VALUE_MAX];
    char reason[VG_REASON_MAX];
    static const char *pod = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"namespace\":"
                             "\"w\",\"labels\":{\"app.kubernetes.io/name\":\"a\"}},\"status\":{"
                             "\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"m\","
                             "\"state\":{\"terminated\":{\"reason\":\"OOMKilled\",\"exitCode\":"
                             "137}}}]}}";
    (void)state;

    assert_int_equal(vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, pod, strlen(pod), 7, NULL, 0),
                     VG_DECODE_OK);
    assert_int_equal(vg_event_late_values(&ev, fields, values, reason), 1);
    assert_int_equal(fields[0], VG_FIELD_RUNTIME);
    assert_string_equal(values[0], "failed");
    assert_string_equal(reason, "OOMKilled");
    ev.pod_deleted = true;
    assert_int_equal(vg_event_late_values(&ev, fields, values, reason), 1);
    assert_string_equal(values[0], "");
    assert_string_equal(reason, "Deleted");
    vg_event_fini(&ev);
}

/* Log lines are never late and never touch state. */
static void test_log_lines(void **state)
{
    struct vg_health_config hc = {(char **)batch_types, 1};
    struct vg_transition tr[3];
    struct vg_event first = native("active", "running", 5000, "t", 0, 10);
    struct vg_resource *res = vg_resource_new_from_event(&first);
    struct vg_event log;
    static const char *json = "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":"
                              "\"p\"},\"reason\":\"BackOff\",\"lastTimestamp\":"
                              "\"2020-01-01T00:00:00Z\"}";
    (void)state;

    vg_resource_apply(&hc, res, &first, tr);
    res->dirty = false;
    assert_int_equal(vg_event_decode_ex(&log, NULL, VG_FORMAT_AUTO, json, strlen(json), 1, NULL, 0),
                     VG_DECODE_OK);
    assert_false(vg_resource_is_late(res, &log));
    assert_int_equal(vg_resource_apply(&hc, res, &log, tr), 0);
    assert_false(res->dirty);
    assert_string_equal(log.log_ns, "default");
    vg_event_fini(&log);
    vg_resource_destroy(res);
    vg_event_fini(&first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule),
        cmocka_unit_test(test_late_moves_nothing),
        cmocka_unit_test(test_late_pod_values),
        cmocka_unit_test(test_log_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
