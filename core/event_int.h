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
#include <string.h>

#include "vigil/event.h"
#include "vigil/mem.h"

/*
 * Where the failure detail goes, the limits in force, and the scratch
 * arena of this decode. Decoders fill `ev` with borrowed pointers: into
 * the cJSON tree, into `scratch` (the pod, its containers, the labels'
 * array) or to string literals; vg_event_decode_ex copies what a
 * successful decode borrowed into one heap block before the tree and the
 * scratch go (a failed decode just zeroes `ev`). So a decoder never
 * allocates on the heap.
 */
struct decode_ctx {
    const struct vg_decode_config *dc;
    char *detail;
    size_t detail_size;
    int64_t kafka_ts_ms;
    struct vg_arena *scratch;
};

/* A borrowed string for a field of `ev` (see struct decode_ctx); never written through. */
static inline char *borrow(const char *s)
{
    return (char *)s;
}

/* Free a string field of `ev` unless it lives in the block decoding made (event.c). */
void event_free_string(const struct vg_event *ev, char *s);

/*
 * cJSON_GetObjectItemCaseSensitive, for the lookups decoding makes on
 * every message: the first member named `key` (NULL when `obj` is NULL,
 * not an object, or has none), comparing the first byte before strcmp.
 */
static inline const cJSON *json_get(const cJSON *obj, const char *key)
{
    if (!obj) {
        return NULL;
    }
    for (const cJSON *it = obj->child; it && it->string; it = it->next) {
        if (it->string[0] == key[0] && strcmp(it->string, key) == 0) {
            return it;
        }
    }
    return NULL;
}

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
