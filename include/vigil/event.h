/*
 * The event model: a decoded native event, the current state of a
 * Resource, the transitions between states, and health. Pure functions,
 * no I/O: decoding uses cJSON through core/json.c.
 */
#ifndef VIGIL_EVENT_H
#define VIGIL_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"

#define VG_VALUE_MAX 32 /* longest status/runtime/health value, NUL included */
#define VG_MAX_EVENT_BYTES (1024 * 1024)
#define VG_MAX_JSON_DEPTH 32
#define VG_MAX_NAME_BYTES 4096
#define VG_MAX_MESSAGE_BYTES (64 * 1024)

enum vg_health { VG_HEALTH_UNKNOWN = 0, VG_HEALTH_HEALTHY, VG_HEALTH_PROGRESSING, VG_HEALTH_UNHEALTHY };

/* "healthy", "progressing", "unhealthy", "" for UNKNOWN. */
const char *vg_health_name(enum vg_health h);
/* Inverse of vg_health_name; UNKNOWN for anything else. */
enum vg_health vg_health_parse(const char *s);

/* Which types are batch (workflow, job, ...): their healthy runtime is `succeeded`. */
struct vg_health_config {
    char **batch_types;
    size_t n_batch_types;
};

/*
 * healthy: status active and runtime running (long-running types) or
 * succeeded (batch types); unhealthy: status error/deleted or runtime
 * failed; otherwise progressing. Empty strings mean "not known yet".
 */
enum vg_health vg_health_compute(const struct vg_health_config *hc, const char *type,
                                 const char *status, const char *runtime);

/* Where a message came from in Kafka. `topic` is owned by whoever owns the struct. */
struct vg_kafka_pos {
    char *topic;
    int32_t partition;
    int64_t offset;
};

/* A decoded native event. Owns all its strings (vg_event_fini frees them). */
struct vg_event {
    char *id; /* type:version:name:workspace */
    char *type;
    char *name;
    char *workspace;
    char *version; /* "v1" when absent */
    char *owner;   /* "" when absent */
    char status[VG_VALUE_MAX];  /* "" when absent */
    char runtime[VG_VALUE_MAX]; /* "" when absent */
    int64_t time_ms;            /* event time; Kafka timestamp when absent */
    char *message;              /* NULL when absent */
    struct vg_kafka_pos pos;
};

enum vg_decode_reason {
    VG_DECODE_OK = 0,
    VG_DECODE_TOO_LARGE,
    VG_DECODE_BAD_JSON,
    VG_DECODE_TOO_DEEP,
    VG_DECODE_NOT_OBJECT,
    VG_DECODE_NO_RESOURCE,   /* resource missing or not an object */
    VG_DECODE_BAD_FIELD,     /* a required identity field missing, wrong type, empty or too long */
    VG_DECODE_NO_SIGNAL,     /* neither status nor runtime */
    VG_DECODE_BAD_STATUS,
    VG_DECODE_BAD_RUNTIME,
    VG_DECODE_BAD_TIME,
    VG_DECODE_NOT_UTF8,
    VG_DECODE__COUNT
};

/* "bad_json", "no_resource", ...: stable names used as DLQ reasons and metric labels. */
const char *vg_decode_reason_name(enum vg_decode_reason r);

/*
 * Decode one native event from `json` (`len` bytes, not NUL-terminated).
 * `kafka_ts_ms` is used when the event has no `time`. On success fills
 * `ev` (caller must vg_event_fini it) and returns VG_DECODE_OK; on failure
 * `ev` is left zeroed and `detail` (may be NULL) gets a short human
 * explanation such as `resource.name: missing`.
 * ev->pos is left zero: the caller fills it.
 */
enum vg_decode_reason vg_event_decode(struct vg_event *ev, const char *json, size_t len,
                                      int64_t kafka_ts_ms, char *detail, size_t detail_size);
void vg_event_fini(struct vg_event *ev);

/* Build "type:version:name:workspace" into a new heap string. */
char *vg_resource_id(const char *type, const char *version, const char *name,
                     const char *workspace);

/* An incident open on a Resource, kept inside the Resource's state. */
struct vg_open_incident {
    char *monitor;
    char *id;              /* stable fingerprint, 16 hex chars */
    char *severity;
    int64_t started_at_ms;
    int seq;               /* notifications sent so far for this incident */
};

/* The current state of a Resource, as stored in Redis. Owns its strings. */
struct vg_resource {
    char *id;
    char *type;
    char *name;
    char *workspace;
    char *version;
    char *owner;
    char status[VG_VALUE_MAX];
    char runtime[VG_VALUE_MAX];
    enum vg_health health;
    int64_t status_since_ms;
    int64_t runtime_since_ms;
    int64_t updated_at_ms; /* event time of the last applied event */
    int64_t event_time_ms; /* newest event time applied */
    char *message;         /* last message, NULL if none */
    struct vg_kafka_pos pos; /* the Kafka position that last changed it */
    struct vg_open_incident *incidents;
    size_t n_incidents;
    size_t cap_incidents;
    bool dirty; /* changed since loaded/committed: set by vg_resource_apply */
};

/* A new empty Resource with identity copied from `ev`. */
struct vg_resource *vg_resource_new_from_event(const struct vg_event *ev);
void vg_resource_destroy(struct vg_resource *res);
struct vg_open_incident *vg_resource_find_incident(struct vg_resource *res, const char *monitor);
/* Adds a copy; the caller's strings stay theirs. */
struct vg_open_incident *vg_resource_add_incident(struct vg_resource *res, const char *monitor,
                                                  const char *id, const char *severity,
                                                  int64_t started_at_ms);
void vg_resource_remove_incident(struct vg_resource *res, const char *monitor);

enum vg_field { VG_FIELD_STATUS = 0, VG_FIELD_RUNTIME, VG_FIELD_HEALTH };
const char *vg_field_name(enum vg_field f); /* "status", "runtime", "health" */

/* A change of one field of one Resource. Owns nothing: `res` is borrowed. */
struct vg_transition {
    enum vg_field field;
    char from[VG_VALUE_MAX]; /* "" when previously unknown */
    char to[VG_VALUE_MAX];
    int64_t at_ms;
    struct vg_resource *res; /* the Resource after the change */
    const struct vg_event *ev; /* the event that caused it */
};

/*
 * Apply `ev` to `res`: update status/runtime/health, since-times, message,
 * owner, position, and append up to three transitions (status, runtime,
 * health, in that order) to `out` (room for 3 needed). Returns the number
 * of transitions. Marks `res` dirty when anything was recorded (an event
 * with no change still updates updated_at and position).
 */
size_t vg_resource_apply(const struct vg_health_config *hc, struct vg_resource *res,
                         const struct vg_event *ev, struct vg_transition out[3]);

#endif
