/*
 * libFuzzer target for the event decoders: native events,
 * Kubernetes Pods (bare and watch events) and Events. The first byte picks
 * the topic format and a decode config (defaults, or tight limits and
 * extra value sets); the rest is the Kafka payload, never NUL-terminated.
 * Bit 4 of the first byte sets the Kafka timestamp to INT64_MAX (else it
 * is the wall clock). A decoded event goes through the bound on event
 * times, and is then applied to a Resource twice (in order, then as a
 * replay; with the wall-clock timestamp whatever its own time: apply must
 * be safe for any time a message can spell), and its pod is round-tripped
 * through the hash's JSON form.
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/events.cmake).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/json.h"
#include "vigil/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS 1795860000000 /* the wall clock, and the Kafka timestamp unless bit 4 */

static struct vg_decode_config tight;
static int ready;

static void init_once(void)
{
    static const char *const status[] = {"active", "paused"};
    static const char *const runtime[] = {"running", "failed", "hibernating"};

    if (ready) {
        return;
    }
    vg_json_init();
    vg_decode_config_init(&tight);
    tight.max_message_bytes = 4096;
    tight.max_depth = 8;
    tight.max_name_bytes = 32;
    tight.max_message_text_bytes = 64;
    tight.max_labels = 4;
    tight.max_clock_skew_ms = 1000;
    vg_decode_config_set_values(&tight.status_values, &tight.n_status_values, status, 2);
    vg_decode_config_set_values(&tight.runtime_values, &tight.n_runtime_values, runtime, 3);
    free(tight.workspace_from);
    tight.workspace_from = vg_strdup("team");
    ready = 1;
}

static void exercise(const struct vg_event *ev)
{
    static const char *const batch[] = {"workflow"};
    struct vg_health_config hc = {(char **)batch, 1};
    struct vg_transition tr[3];
    enum vg_field fields[2];
    char values[2][VG_VALUE_MAX];
    char reason[VG_REASON_MAX];
    struct vg_resource *res;

    vg_event_late_values(ev, fields, values, reason);
    if (!ev->id) {
        return; /* a K8S_EVENT still to be mapped */
    }
    res = vg_resource_new_from_event(ev);
    vg_resource_apply(&hc, res, ev, tr);
    (void)vg_resource_is_late(res, ev);
    vg_resource_apply(&hc, res, ev, tr);
    for (size_t i = 0; i < res->n_pods; i++) {
        struct vg_pod back;
        char *json = vg_pod_to_json(&res->pods[i]);

        if (!vg_pod_from_json(&back, res->pods[i].name, json, strlen(json))) {
            abort(); /* what we write we must read */
        }
        vg_pod_fini(&back);
        free(json);
    }
    vg_resource_destroy(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_event ev;
    char detail[256];
    enum vg_event_format fmt;
    const struct vg_decode_config *dc;
    int64_t kafka_ts;
    char *copy;

    init_once();
    if (size < 1) {
        return 0;
    }
    fmt = (enum vg_event_format)(data[0] & 3);
    dc = (data[0] & 4) ? &tight : NULL;
    copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any over-read */
    memcpy(copy, data + 1, size - 1);
    kafka_ts = (data[0] & 16) ? INT64_MAX : NOW_MS; /* a producer picks the timestamp */
    if (vg_event_decode_ex(&ev, dc, fmt, copy, size - 1, kafka_ts, detail, sizeof(detail)) ==
        VG_DECODE_OK) {
        enum vg_decode_reason r = vg_event_check_time(&ev, dc, NOW_MS, detail, sizeof(detail));

        if (r != VG_DECODE_OK && r != VG_DECODE_FUTURE_TIME) {
            abort();
        }
        if (ev.kind == VG_EVENT_K8S_EVENT && !ev.id && (data[0] & 8)) {
            vg_event_set_identity(&ev, "workflow:v1:mapped:public");
        }
        /* the pipeline applies nothing from beyond the bound (its times need not round-trip) */
        if (r == VG_DECODE_OK || kafka_ts == NOW_MS) {
            exercise(&ev);
        }
        vg_event_fini(&ev);
    }
    free(copy);
    return 0;
}
