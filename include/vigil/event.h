/*
 * The event model: a decoded event (native, a Kubernetes pod or a
 * Kubernetes Event: docs/events.md), the current state of a
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
#define VG_MAX_CLOCK_SKEW_MS (5 * 60 * 1000)

enum vg_health {
    VG_HEALTH_UNKNOWN = 0,
    VG_HEALTH_HEALTHY,
    VG_HEALTH_PROGRESSING,
    VG_HEALTH_UNHEALTHY
};

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

/* What a decoded message is. NATIVE is the zero value. */
enum vg_event_kind {
    VG_EVENT_NATIVE = 0, /* status/runtime of a Resource (docs/events.md) */
    VG_EVENT_POD,        /* a Kubernetes Pod (watch event or bare object): runtime from pods */
    VG_EVENT_K8S_EVENT,  /* a core/v1 Event about a Pod: a log line in the Resource's history */
};

/* How a topic's messages are read (kafka.topics[].format). AUTO is the zero value. */
enum vg_event_format {
    VG_FORMAT_AUTO = 0, /* sniff: "kind":"Pod" / "object" / "kind":"Event" / else native */
    VG_FORMAT_NATIVE,
    VG_FORMAT_K8S_POD,
    VG_FORMAT_K8S_EVENT,
};
/* "auto", "native", "k8s-pod", "k8s-event". */
const char *vg_event_format_name(enum vg_event_format f);
/* Inverse of vg_event_format_name; false for anything else. */
bool vg_event_format_parse(const char *s, enum vg_event_format *out);

#define VG_REASON_MAX 64     /* a Kubernetes reason (CrashLoopBackOff), NUL included */
#define VG_POD_NAME_MAX 254  /* a pod name (DNS subdomain, 253 bytes), NUL included */
#define VG_MAX_CONTAINERS 64 /* containers kept per pod (init + regular); more are dropped */

/* One container of a pod, as tracked (init containers included). */
struct vg_container {
    char *name;
    bool init;
    bool ready;
    int32_t restarts;
    char state[16];             /* "waiting", "running", "terminated" or "" */
    char reason[VG_REASON_MAX]; /* the waiting/terminated reason, "" when none */
    int32_t exit_code;          /* terminated only */
};

/* One pod of a Resource, as tracked in its state (hash field "pod:<name>"). Owns its strings. */
struct vg_pod {
    char *name;
    char *ns;
    char phase[VG_VALUE_MAX];   /* Pending Running Succeeded Failed Unknown ("" when absent) */
    char reason[VG_REASON_MAX]; /* status.reason, e.g. "Evicted"; "" when none */
    bool ready;                 /* the Ready condition is True */
    int32_t restarts;           /* sum over containers */
    int64_t last_transition_ms; /* newest condition/container transition time; 0 unknown */
    int64_t time_ms;            /* event time of the event that last updated it */
    struct vg_container *containers;
    size_t n_containers;
};
void vg_pod_fini(struct vg_pod *pod);
/* Deep copy of `src` into `dst` (dst uninitialised). */
void vg_pod_copy(struct vg_pod *dst, const struct vg_pod *src);
/* The pod as compact JSON (without its name: that is the hash field). Caller frees. */
char *vg_pod_to_json(const struct vg_pod *pod);
/* Parse vg_pod_to_json output into `pod` named `name`; false (pod zeroed) when unreadable. */
bool vg_pod_from_json(struct vg_pod *pod, const char *name, const char *json, size_t len);

/*
 * Runtime from pods (docs/events.md, "Runtime from pods"): any pod Failed
 * or Evicted, or a container waiting in CrashLoopBackOff, ImagePullBackOff,
 * ErrImagePull, CreateContainerConfigError or terminated OOMKilled ->
 * "failed"; else any pod Running and ready -> "running"; else all
 * Succeeded -> "succeeded"; else "pending". Pods are looked at in the
 * order given (the Resource keeps them sorted by name), the first that
 * decides wins. `*pod` (may be NULL) gets the deciding pod and `reason`
 * (VG_REASON_MAX bytes) the reason ("" when none). `n` must be > 0.
 */
const char *vg_pods_runtime(const struct vg_pod *pods, size_t n, const struct vg_pod **pod,
                            char reason[VG_REASON_MAX]);

/*
 * What a decoder accepts (config `decode:`). Every pointer member is
 * owned (vg_decode_config_fini). vg_decode_config_init fills the defaults.
 */
struct vg_decode_config {
    size_t max_message_bytes;      /* default VG_MAX_EVENT_BYTES (1 MiB) */
    int max_depth;                 /* default VG_MAX_JSON_DEPTH (32) */
    size_t max_name_bytes;         /* default VG_MAX_NAME_BYTES (4 KiB) */
    size_t max_message_text_bytes; /* default VG_MAX_MESSAGE_BYTES (64 KiB) */
    size_t max_labels;             /* default 64 */
    int64_t max_clock_skew_ms;     /* default VG_MAX_CLOCK_SKEW_MS (5 min); 0: no check */
    char **status_values;          /* default active, error, deleted */
    size_t n_status_values;
    char **runtime_values; /* default pending, running, succeeded, failed */
    size_t n_runtime_values;
    /* decode.kubernetes */
    char *label_type;     /* default app.kubernetes.io/component */
    char *label_name;     /* default app.kubernetes.io/name */
    char *label_version;  /* default app.kubernetes.io/version */
    char *label_owner;    /* default app.kubernetes.io/managed-by */
    char *workspace_from; /* "namespace" (default) or a label key */
    char *default_type;   /* type when the pod has no type label: default "service" */
    /*
     * decode.threads: threads that decode a batch beside the pipeline
     * thread (engine/; decoders ignore it). 0: the pipeline thread alone;
     * VG_DECODE_THREADS_AUTO (vg_config_init's default): sized to the machine.
     */
    int threads;
};
#define VG_DECODE_THREADS_AUTO (-1)
#define VG_DECODE_THREADS_MAX 64
#define VG_MAX_LABELS 64
void vg_decode_config_init(struct vg_decode_config *dc);
void vg_decode_config_fini(struct vg_decode_config *dc);
/* Replace dc's value list (status or runtime) with a copy of `v`. */
void vg_decode_config_set_values(char ***dst, size_t *n_dst, const char *const *v, size_t n);

struct vg_label;

/*
 * A decoded event. Owns all its strings (vg_event_fini frees them):
 * decoding puts them, and the pod with its containers, in one heap block;
 * a string or pod set later by anyone else is a heap allocation of its
 * own (vg_event_fini tells them apart). Labels are always separate heap
 * copies (vg_labels_free).
 */
struct vg_event {
    char *id; /* type:version:name:workspace */
    char *type;
    char *name;
    char *workspace;
    char *version;              /* "v1" when absent */
    char *owner;                /* "" when absent */
    char status[VG_VALUE_MAX];  /* "" when absent */
    char runtime[VG_VALUE_MAX]; /* "" when absent */
    int64_t time_ms;            /* event time; Kafka timestamp when absent */
    char *message;              /* NULL when absent */
    struct vg_kafka_pos pos;
    /* Kubernetes inputs (zero for native events) */
    enum vg_event_kind kind;
    struct vg_pod *pod; /* VG_EVENT_POD: the pod's new state (owned) */
    bool pod_deleted;   /* VG_EVENT_POD: a watch DELETED: the pod leaves the set */
    /* VG_EVENT_K8S_EVENT: the log line, about pod `log_pod` in namespace `log_ns`.
     * `id` (and the identity) is NULL until the pod is mapped to its Resource
     * (vg_event_set_identity) unless the Event carried the pod's labels. */
    char *log_pod;
    char *log_ns;
    char *log_reason;  /* "" when absent */
    char *log_type;    /* "Normal", "Warning", "" when absent */
    int64_t log_count; /* 1 when absent */
    /*
     * Labels the event gives its Resource (a pod's labels; a
     * native event's "labels"), sorted by key; NULL/0 when it gives none.
     * Filled by decoding; vg_resource_set_labels copies them over.
     */
    struct vg_label *labels;
    size_t n_labels;
    /* Private to decoding: the block holding the decoded strings and pod (NULL: none). */
    char *block;
    size_t block_size;
};

/* Give a K8S_EVENT the identity of Resource `id` (type:version:name:workspace); false if malformed.
 */
bool vg_event_set_identity(struct vg_event *ev, const char *id);

enum vg_decode_reason {
    VG_DECODE_OK = 0,
    VG_DECODE_TOO_LARGE,
    VG_DECODE_BAD_JSON,
    VG_DECODE_TOO_DEEP,
    VG_DECODE_NOT_OBJECT,
    VG_DECODE_NO_RESOURCE, /* resource missing or not an object */
    VG_DECODE_BAD_FIELD,   /* a required identity field missing, wrong type, empty or too long */
    VG_DECODE_NO_SIGNAL,   /* neither status nor runtime */
    VG_DECODE_BAD_STATUS,
    VG_DECODE_BAD_RUNTIME,
    VG_DECODE_BAD_TIME,
    VG_DECODE_NOT_UTF8,
    /* Kubernetes inputs */
    VG_DECODE_BAD_KIND,        /* a Kubernetes object of the wrong kind for the topic's format */
    VG_DECODE_TOO_MANY_LABELS, /* more pod labels than decode.limits.max_labels */
    /* hostile input */
    VG_DECODE_CONTROL_CHAR,  /* a raw byte < 0x20 (NUL included) inside a JSON string */
    VG_DECODE_DUPLICATE_KEY, /* the same key twice in one JSON object, at any depth */
    VG_DECODE_FUTURE_TIME,   /* event time beyond the clock plus max_clock_skew_ms */
    /* Not dead-lettered: counted and skipped (vg_decode_reason_is_skip). */
    VG_DECODE_SKIP_NO_NAME_LABEL, /* a pod without the configured name label */
    VG_DECODE_SKIP_IGNORED,       /* a watch BOOKMARK/ERROR, an Event not about a Pod */
    VG_DECODE_SKIP_UNKNOWN_POD,   /* an Event about a pod vigil never mapped (set by cli/) */
    VG_DECODE__COUNT
};

/* "bad_json", "no_resource", ...: stable names used as DLQ reasons and metric labels. */
const char *vg_decode_reason_name(enum vg_decode_reason r);
/* True for the SKIP reasons: counted and skipped, never dead-lettered. */
bool vg_decode_reason_is_skip(enum vg_decode_reason r);

/*
 * Decode one message of format `fmt` (AUTO sniffs) under `dc` (NULL: the
 * defaults). As vg_event_decode otherwise; a SKIP reason leaves `ev`
 * zeroed too. On VG_DECODE_OK, ev->kind says what it is.
 */
enum vg_decode_reason vg_event_decode_ex(struct vg_event *ev, const struct vg_decode_config *dc,
                                         enum vg_event_format fmt, const char *json, size_t len,
                                         int64_t kafka_ts_ms, char *detail, size_t detail_size);

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

/*
 * The bound on event times, kept out of decoding so that decoding stays
 * pure: VG_DECODE_FUTURE_TIME when ev->time_ms (whatever time the event
 * is ordered by: native `time`, a pod's newest timestamp, an Event's
 * timestamp, else the Kafka timestamp) lies more than
 * dc->max_clock_skew_ms after `now_ms` (wall clock), else VG_DECODE_OK.
 * An applied event from the future would make every later real event
 * late. `dc` NULL: the defaults; max_clock_skew_ms 0: no check. `detail`
 * (may be NULL) as for decoding. `ev` is left as it is: on failure the
 * caller finishes it.
 */
enum vg_decode_reason vg_event_check_time(const struct vg_event *ev,
                                          const struct vg_decode_config *dc, int64_t now_ms,
                                          char *detail, size_t detail_size);

/* Build "type:version:name:workspace" into a new heap string. */
char *vg_resource_id(const char *type, const char *version, const char *name,
                     const char *workspace);

/* An incident open on a Resource, kept inside the Resource's state. */
struct vg_open_incident {
    char *monitor;
    char *id; /* stable fingerprint, 16 hex chars */
    char *severity;
    int64_t started_at_ms;
    int seq; /* notifications sent so far for this incident */
    /*
     * What the entry is (rules/): "pending" (a `for`, flapping or
     * absence condition is being watched: not an incident yet), "firing",
     * or "resolved"/"stale"/"deleted" (ended, a notification still owed).
     * NULL means "firing" (older data). Only "firing" is an open incident.
     * `data` is rules/' private state (JSON, opaque elsewhere; NULL: none).
     * Both are stored with the entry and freed with the Resource.
     */
    char *state;
    char *data;
};

/* A key/value label (pod labels, incident labels). Owns its strings. */
struct vg_label {
    char *key;
    char *value;
};
void vg_labels_free(struct vg_label *v, size_t n);
/* A deep copy of v[0..n) (NULL when n is 0). */
struct vg_label *vg_labels_copy(const struct vg_label *v, size_t n);
/* Sort by key (in place). */
void vg_labels_sort(struct vg_label *v, size_t n);
/* The value of `key` or NULL. */
const char *vg_labels_get(const struct vg_label *v, size_t n, const char *key);

/*
 * What changed in a Resource since it was loaded or committed: one bit per
 * group of hash fields (docs/state.md), so a commit writes only those.
 */
enum {
    VG_DIRTY_OWNER = 1u << 0,
    VG_DIRTY_STATUS = 1u << 1,       /* status, status_since */
    VG_DIRTY_RUNTIME = 1u << 2,      /* runtime, runtime_since */
    VG_DIRTY_HEALTH = 1u << 3,       /* health, health_since */
    VG_DIRTY_MESSAGE = 1u << 4,      /* message */
    VG_DIRTY_POSITION = 1u << 5,     /* updated_at, event_time, offset */
    VG_DIRTY_LABELS = 1u << 6,       /* labels */
    VG_DIRTY_RUNTIME_FROM = 1u << 7, /* runtime_reason, runtime_pod */
    VG_DIRTY_WHOLE = 1u << 8,        /* every field: Redis holds no hash yet */
    VG_DIRTY_REPLACE = 1u << 9,      /* delete, then every field: what Redis holds is unknown */
    VG_DIRTY_SOURCE = 1u << 10,      /* topic, partition */
};

/* A changed field of which a Resource has many: an incident entry or a pod. */
enum vg_dirty_kind { VG_DIRTY_INCIDENT = 0, VG_DIRTY_POD };
struct vg_dirty_name {
    enum vg_dirty_kind kind;
    char *name; /* the monitor or the pod, owned */
};

/*
 * The current state of a Resource, as stored in Redis. Owns its strings;
 * `id`'s allocation also holds type, name, workspace and version
 * (vg_resource_set_identity), so only `id` is freed.
 */
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
    int64_t health_since_ms; /* when the current health began (0: not known) */
    int64_t updated_at_ms;   /* event time of the last event that changed it */
    int64_t event_time_ms;   /* the same (stored as event_time) */
    /*
     * Newest event time seen, changing or not (events that change nothing
     * are not written): kept in the cache only, for late detection.
     */
    int64_t seen_ms;
    char *message;           /* last message, NULL if none */
    struct vg_kafka_pos pos; /* the Kafka position that last changed it */
    struct vg_open_incident *incidents;
    size_t n_incidents;
    size_t cap_incidents;
    bool dirty; /* changed since loaded/committed: set by vg_resource_apply */
    /* state/'s cache: Redis holds its index entries (loaded from a hash, or committed) */
    bool indexed;
    /*
     * Which fields changed (VG_DIRTY_* bits) and which incident entries
     * and pods changed or went away (each once): a commit writes those
     * and deletes the ones gone. `dirty` with no bit and no name means
     * "changed, not saying how": the commit rewrites the hash whole.
     * Bits may be set while `dirty` is false (a change too small to write
     * on its own goes with the next write). Cleared by vg_resource_clean.
     */
    uint32_t dirty_mask;
    struct vg_dirty_name *dirty_names;
    size_t n_dirty_names;
    size_t cap_dirty_names;
    uint64_t cache_use; /* state/'s cache: the resolve call that last lent it */
    /* the pods of the Resource (sorted by name), and what decided the runtime */
    struct vg_pod *pods;
    size_t n_pods;
    size_t cap_pods;
    /*
     * Owned heap strings, NULL when none (never ""): a cached Resource
     * carries no fixed buffers for what most Resources never have
     * (vg_resource_set_runtime_from sets them).
     */
    char *runtime_reason; /* at most VG_REASON_MAX - 1 bytes */
    char *runtime_pod;    /* at most VG_POD_NAME_MAX - 1 bytes */
    /*
     * The Resource's labels (pod labels, filled by Kubernetes
     * decoding; matched by rules as labels.<key>), sorted by key. Stored
     * as the hash field "labels" (a JSON object).
     */
    struct vg_label *labels;
    size_t n_labels;
};

/* Mark `res` dirty with the VG_DIRTY_* `bits`. */
void vg_resource_touch(struct vg_resource *res, uint32_t bits);
/* Mark `res` dirty: the incident entry of monitor `name`, or the pod `name`, changed or went. */
void vg_resource_touch_named(struct vg_resource *res, enum vg_dirty_kind kind, const char *name);
/* Forget what changed (after a commit wrote it, or after loading): `dirty` false, no bits, no
 * names. */
void vg_resource_clean(struct vg_resource *res);

/*
 * Set what decided the runtime (copies; "" or NULL clears, longer values
 * are cut to VG_REASON_MAX - 1 / VG_POD_NAME_MAX - 1 bytes). Returns true
 * when either changed. Marks nothing dirty: the caller knows why.
 */
bool vg_resource_set_runtime_from(struct vg_resource *res, const char *reason, const char *pod);

/* Insert or replace (a copy of) `pod`, keeping the set sorted by name. */
void vg_resource_put_pod(struct vg_resource *res, const struct vg_pod *pod);
/* Remove the pod named `name`; false when absent. */
bool vg_resource_remove_pod(struct vg_resource *res, const char *name);
struct vg_pod *vg_resource_find_pod(struct vg_resource *res, const char *name);

/*
 * Set the identity: copies of the five strings in one allocation owned
 * through `id` (the previous one, if any, is freed; the others point into it).
 */
void vg_resource_set_identity(struct vg_resource *res, const char *id, const char *type,
                              const char *version, const char *name, const char *workspace);
/* A new empty Resource with identity copied from `ev`. */
struct vg_resource *vg_resource_new_from_event(const struct vg_event *ev);
void vg_resource_destroy(struct vg_resource *res);
struct vg_open_incident *vg_resource_find_incident(struct vg_resource *res, const char *monitor);
/* Adds a copy; the caller's strings stay theirs. */
struct vg_open_incident *vg_resource_add_incident(struct vg_resource *res, const char *monitor,
                                                  const char *id, const char *severity,
                                                  int64_t started_at_ms);
void vg_resource_remove_incident(struct vg_resource *res, const char *monitor);
/*
 * Replace the Resource's labels with a copy of ev's when the event
 * carries any (marks `res` dirty when they differ). Returns true on change.
 */
bool vg_resource_set_labels(struct vg_resource *res, const struct vg_event *ev);

enum vg_field { VG_FIELD_STATUS = 0, VG_FIELD_RUNTIME, VG_FIELD_HEALTH };
const char *vg_field_name(enum vg_field f); /* "status", "runtime", "health" */

/* A change of one field of one Resource. Owns nothing: `res` is borrowed. */
struct vg_transition {
    enum vg_field field;
    char from[VG_VALUE_MAX]; /* "" when previously unknown */
    char to[VG_VALUE_MAX];
    int64_t at_ms;
    struct vg_resource *res;    /* the Resource after the change */
    const struct vg_event *ev;  /* the event that caused it */
    char reason[VG_REASON_MAX]; /* runtime from pods: why (OOMKilled); "" otherwise */
    char pod[VG_POD_NAME_MAX];  /* runtime from pods: the deciding pod; "" otherwise */
};

/*
 * Apply `ev` to `res`: update status/runtime/health, since-times, message,
 * owner, position, and append up to three transitions (status, runtime,
 * health, in that order) to `out` (room for 3 needed). Returns the number
 * of transitions. Marks `res` dirty, with what changed (VG_DIRTY_*), when
 * anything changed; an event that changes nothing leaves it clean.
 */
size_t vg_resource_apply(const struct vg_health_config *hc, struct vg_resource *res,
                         const struct vg_event *ev, struct vg_transition out[3]);

/*
 * The ordering rule (docs/events.md, "Order"): `ev` is late when its time
 * is older than the newest event time applied to `res`, or equal to it
 * and at a lower offset of the same topic/partition. A late event moves
 * nothing (vg_resource_apply returns 0 for it); the caller records it in
 * history marked late. K8S_EVENT log lines are never late.
 */
bool vg_resource_is_late(const struct vg_resource *res, const struct vg_event *ev);

/*
 * What a late event would have said, for its history entry: up to two
 * (field, value) pairs (status, runtime; a pod event: the runtime of that
 * pod alone, with its reason). Returns the count.
 */
size_t vg_event_late_values(const struct vg_event *ev, enum vg_field fields[2],
                            char values[2][VG_VALUE_MAX], char reason[VG_REASON_MAX]);

#endif
