/*
 * Private to core/: the decoding helpers shared by the native decoder
 * (event_decode.c) and the Kubernetes decoders (k8s.c). cJSON stays
 * inside core/; no other module includes this.
 */
#ifndef VIGIL_EVENT_INT_H
#define VIGIL_EVENT_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/event.h"

/* Where the failure detail goes, and the limits in force. */
struct decode_ctx {
    const struct vg_decode_config *dc;
    char *detail;
    size_t detail_size;
    int64_t kafka_ts_ms;
};

/* Fill the detail ("path: what") and return `r`. */
enum vg_decode_reason decode_fail(const struct decode_ctx *dx, enum vg_decode_reason r,
                                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * A string member `key` of `obj`: absent/null (NULL, unless `required`),
 * or a string of 1..max bytes. `ident` strings must not contain ':' or
 * control characters. Failures are VG_DECODE_BAD_FIELD naming `path``key`.
 */
enum vg_decode_reason decode_string(const struct decode_ctx *dx, const cJSON *obj, const char *key,
                                    bool required, size_t max, bool ident, const char **out,
                                    const char *path);

/* An optional RFC 3339 member: absent/null leaves *out; malformed is VG_DECODE_BAD_TIME. */
enum vg_decode_reason decode_time(const struct decode_ctx *dx, const cJSON *obj, const char *key,
                                  const char *path, int64_t *out, bool *found);

/* The string member `key` when it is a string, else NULL. */
const char *json_str(const cJSON *obj, const char *key);

/* k8s.c: `obj` is the Pod (bare, or a watch event's object); `watch` the watch type or NULL. */
enum vg_decode_reason k8s_decode_pod(struct vg_event *ev, const struct decode_ctx *dx,
                                     const cJSON *obj, const char *watch);
/* k8s.c: `obj` is the core/v1 Event. */
enum vg_decode_reason k8s_decode_event(struct vg_event *ev, const struct decode_ctx *dx,
                                       const cJSON *obj, const char *watch);

#endif
