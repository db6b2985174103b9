/*
 * Decoding of one Kafka message (docs/events.md) with cJSON: the native
 * event here, Kubernetes Pods and Events in k8s.c. Untrusted input: size,
 * nesting depth, UTF-8, raw control characters, duplicate keys and string
 * lengths are checked (against the `decode:` limits) before anything is
 * copied; the bound on event times is vg_event_check_time, apart because
 * it needs the wall clock. The tree and the decoders' scratch live in a
 * per-thread arena (vg_json_scratch_begin); a decoded event is one heap
 * block. Each failure has one
 * reason (enum vg_decode_reason), which becomes the DLQ reason and metric
 * label; SKIP reasons are counted and skipped, never dead-lettered.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_int.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static const char *const reason_names[VG_DECODE__COUNT] = {
    [VG_DECODE_OK] = "ok",
    [VG_DECODE_TOO_LARGE] = "too_large",
    [VG_DECODE_BAD_JSON] = "bad_json",
    [VG_DECODE_TOO_DEEP] = "too_deep",
    [VG_DECODE_NOT_OBJECT] = "not_object",
    [VG_DECODE_NO_RESOURCE] = "no_resource",
    [VG_DECODE_BAD_FIELD] = "bad_field",
    [VG_DECODE_NO_SIGNAL] = "no_signal",
    [VG_DECODE_BAD_STATUS] = "bad_status",
    [VG_DECODE_BAD_RUNTIME] = "bad_runtime",
    [VG_DECODE_BAD_TIME] = "bad_time",
    [VG_DECODE_NOT_UTF8] = "not_utf8",
    [VG_DECODE_BAD_KIND] = "bad_kind",
    [VG_DECODE_TOO_MANY_LABELS] = "too_many_labels",
    [VG_DECODE_CONTROL_CHAR] = "control_char",
    [VG_DECODE_DUPLICATE_KEY] = "duplicate_key",
    [VG_DECODE_FUTURE_TIME] = "future_time",
    [VG_DECODE_SKIP_NO_NAME_LABEL] = "no_name_label",
    [VG_DECODE_SKIP_IGNORED] = "ignored",
    [VG_DECODE_SKIP_UNKNOWN_POD] = "unknown_pod",
};

static const char *const default_status_values[] = {"active", "error", "deleted"};
static const char *const default_runtime_values[] = {"pending", "running", "succeeded", "failed"};

static const char *const format_names[] = {
    [VG_FORMAT_AUTO] = "auto",
    [VG_FORMAT_NATIVE] = "native",
    [VG_FORMAT_K8S_POD] = "k8s-pod",
    [VG_FORMAT_K8S_EVENT] = "k8s-event",
};

/* The defaults as static data, so decoding without a config needs no init (and no lock). */
static char v_active[] = "active", v_error[] = "error", v_deleted[] = "deleted";
static char v_pending[] = "pending", v_running[] = "running", v_succeeded[] = "succeeded",
            v_failed[] = "failed";
static char *static_status[] = {v_active, v_error, v_deleted};
static char *static_runtime[] = {v_pending, v_running, v_succeeded, v_failed};
static char l_type[] = "app.kubernetes.io/component", l_name[] = "app.kubernetes.io/name",
            l_version[] = "app.kubernetes.io/version", l_owner[] = "app.kubernetes.io/managed-by",
            l_ws[] = "namespace", l_default_type[] = "service";
static const struct vg_decode_config static_defaults = {
    .max_message_bytes = VG_MAX_EVENT_BYTES,
    .max_depth = VG_MAX_JSON_DEPTH,
    .max_name_bytes = VG_MAX_NAME_BYTES,
    .max_message_text_bytes = VG_MAX_MESSAGE_BYTES,
    .max_labels = VG_MAX_LABELS,
    .max_clock_skew_ms = VG_MAX_CLOCK_SKEW_MS,
    .status_values = static_status,
    .n_status_values = VG_ARRAY_LEN(static_status),
    .runtime_values = static_runtime,
    .n_runtime_values = VG_ARRAY_LEN(static_runtime),
    .label_type = l_type,
    .label_name = l_name,
    .label_version = l_version,
    .label_owner = l_owner,
    .workspace_from = l_ws,
    .default_type = l_default_type,
};

const char *vg_decode_reason_name(enum vg_decode_reason r)
{
    if ((unsigned)r >= VG_DECODE__COUNT) {
        return "unknown";
    }
    return reason_names[r];
}

bool vg_decode_reason_is_skip(enum vg_decode_reason r)
{
    return r == VG_DECODE_SKIP_NO_NAME_LABEL || r == VG_DECODE_SKIP_IGNORED ||
           r == VG_DECODE_SKIP_UNKNOWN_POD;
}

const char *vg_event_format_name(enum vg_event_format f)
{
    if ((unsigned)f >= VG_ARRAY_LEN(format_names)) {
        return "?";
    }
    return format_names[f];
}

bool vg_event_format_parse(const char *s, enum vg_event_format *out)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(format_names); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (enum vg_event_format)i;
            return true;
        }
    }
    return false;
}

void vg_decode_config_set_values(char ***dst, size_t *n_dst, const char *const *v, size_t n)
{
    char **copy = vg_calloc(n + 1, sizeof(*copy));

    for (size_t i = 0; i < n; i++) {
        copy[i] = vg_strdup(v[i]);
    }
    if (*dst) {
        for (size_t i = 0; i < *n_dst; i++) {
            free((*dst)[i]);
        }
        free(*dst);
    }
    *dst = copy;
    *n_dst = n;
}

void vg_decode_config_init(struct vg_decode_config *dc)
{
    memset(dc, 0, sizeof(*dc));
    dc->max_message_bytes = VG_MAX_EVENT_BYTES;
    dc->max_depth = VG_MAX_JSON_DEPTH;
    dc->max_name_bytes = VG_MAX_NAME_BYTES;
    dc->max_message_text_bytes = VG_MAX_MESSAGE_BYTES;
    dc->max_labels = VG_MAX_LABELS;
    dc->max_clock_skew_ms = VG_MAX_CLOCK_SKEW_MS;
    vg_decode_config_set_values(&dc->status_values, &dc->n_status_values, default_status_values,
                                VG_ARRAY_LEN(default_status_values));
    vg_decode_config_set_values(&dc->runtime_values, &dc->n_runtime_values, default_runtime_values,
                                VG_ARRAY_LEN(default_runtime_values));
    dc->label_type = vg_strdup(static_defaults.label_type);
    dc->label_name = vg_strdup(static_defaults.label_name);
    dc->label_version = vg_strdup(static_defaults.label_version);
    dc->label_owner = vg_strdup(static_defaults.label_owner);
    dc->workspace_from = vg_strdup(static_defaults.workspace_from);
    dc->default_type = vg_strdup(static_defaults.default_type);
}

void vg_decode_config_fini(struct vg_decode_config *dc)
{
    for (size_t i = 0; i < dc->n_status_values; i++) {
        free(dc->status_values[i]);
    }
    free(dc->status_values);
    for (size_t i = 0; i < dc->n_runtime_values; i++) {
        free(dc->runtime_values[i]);
    }
    free(dc->runtime_values);
    free(dc->label_type);
    free(dc->label_name);
    free(dc->label_version);
    free(dc->label_owner);
    free(dc->workspace_from);
    free(dc->default_type);
    memset(dc, 0, sizeof(*dc));
}

enum vg_decode_reason decode_fail(const struct decode_ctx *dx, enum vg_decode_reason r,
                                  const char *fmt, ...)
{
    va_list ap;

    if (dx->detail && dx->detail_size) {
        va_start(ap, fmt);
        vsnprintf(dx->detail, dx->detail_size, fmt, ap);
        va_end(ap);
    }
    return r;
}

/*
 * cJSON's type tests, inline: they are library calls otherwise, and decode
 * asks a dozen of them per event. Same meaning as cJSON_IsString & co.
 */
static inline bool json_is(const cJSON *item, int type)
{
    return item && (item->type & 0xFF) == type;
}

const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *it = json_get(obj, key);
    return json_is(it, cJSON_String) ? it->valuestring : NULL;
}

/* Whether an identity field has a ':' (the id's separator) or a control character. */
static bool bad_ident(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == ':') {
            return true;
        }
    }
    return false;
}

enum vg_decode_reason decode_string(const struct decode_ctx *dx, const cJSON *obj, const char *key,
                                    bool required, size_t max, bool ident, const char **out,
                                    const char *path)
{
    const cJSON *item = json_get(obj, key);
    size_t len;

    *out = NULL;
    if (!item || json_is(item, cJSON_NULL)) {
        if (required) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s%s: missing", path, key);
        }
        return VG_DECODE_OK;
    }
    if (!json_is(item, cJSON_String)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s%s: not a string", path, key);
    }
    len = strlen(item->valuestring);
    if (len == 0 && (required || ident)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s%s: empty", path, key);
    }
    if (len > max) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s%s: longer than %zu bytes", path, key, max);
    }
    if (ident && bad_ident(item->valuestring, len)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD,
                           "%s%s: must not contain ':' or control characters", path, key);
    }
    *out = item->valuestring;
    return VG_DECODE_OK;
}

enum vg_decode_reason decode_time(const struct decode_ctx *dx, const cJSON *obj, const char *key,
                                  const char *path, int64_t *out, bool *found)
{
    const cJSON *item = json_get(obj, key);

    if (found) {
        *found = false;
    }
    if (!item || json_is(item, cJSON_NULL)) {
        return VG_DECODE_OK;
    }
    if (!json_is(item, cJSON_String) ||
        !vg_time_parse_rfc3339(item->valuestring, strlen(item->valuestring), out)) {
        return decode_fail(dx, VG_DECODE_BAD_TIME, "%s%s: not RFC 3339", path, key);
    }
    if (found) {
        *found = true;
    }
    return VG_DECODE_OK;
}

static enum vg_decode_reason get_enum(const struct decode_ctx *dx, const cJSON *obj,
                                      const char *key, char *const *allowed, size_t n_allowed,
                                      enum vg_decode_reason bad, char out[VG_VALUE_MAX])
{
    const cJSON *item = json_get(obj, key);

    out[0] = '\0';
    if (!item || json_is(item, cJSON_NULL)) {
        return VG_DECODE_OK;
    }
    if (!json_is(item, cJSON_String)) {
        return decode_fail(dx, bad, "%s: not a string", key);
    }
    for (size_t i = 0; i < n_allowed; i++) {
        if (strcmp(allowed[i], item->valuestring) == 0) {
            size_t len = strlen(allowed[i]);
            if (len >= VG_VALUE_MAX) {
                len = VG_VALUE_MAX - 1;
            }
            memcpy(out, allowed[i], len);
            out[len] = '\0';
            return VG_DECODE_OK;
        }
    }
    return decode_fail(dx, bad, "%s: unknown value \"%.40s\"", key, item->valuestring);
}

/*
 * cJSON decodes "\u0000" into a real NUL, which would silently truncate a
 * string ("a\u0000:b" would become "a"). Such escapes are rewritten to
 * "\u001a" (SUB, the substitute character) before parsing, so identity
 * fields and times reject them as control characters and messages keep a
 * visible placeholder. Returns a patched copy in `scratch`, or NULL when
 * there was nothing to patch (called only when vg_json_scan saw such an
 * escape: the common case makes no copy).
 */
static char *patch_nul_escapes(struct vg_arena *scratch, const char *json, size_t len)
{
    char *copy = NULL;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_str) {
            in_str = json[i] == '"';
            continue;
        }
        if (json[i] == '"') {
            in_str = false;
        } else if (json[i] == '\\' && i + 1 < len) {
            if (json[i + 1] == 'u' && i + 5 < len && json[i + 2] == '0' && json[i + 3] == '0' &&
                json[i + 4] == '0' && json[i + 5] == '0') {
                if (!copy) {
                    copy = vg_arena_alloc(scratch, len);
                    memcpy(copy, json, len);
                }
                copy[i + 4] = '1';
                copy[i + 5] = 'a';
            }
            i++;
        }
    }
    return copy;
}

/* strcmp's order, deciding most pairs on the first byte without a call. */
static int key_cmp(const cJSON *a, const cJSON *b)
{
    unsigned char ca = (unsigned char)a->string[0];
    unsigned char cb = (unsigned char)b->string[0];

    if (ca != cb) {
        return ca < cb ? -1 : 1;
    }
    return strcmp(a->string, b->string);
}

static int cmp_key(const void *a, const void *b)
{
    return key_cmp(*(const cJSON *const *)a, *(const cJSON *const *)b);
}

/* Room for pointers to one object's members, reused across the objects of a message. */
struct key_scratch {
    struct vg_arena *arena;
    const cJSON **v;
    size_t cap;
};

/* Sort v[0..n): insertion sort for the usual small objects, qsort beyond. */
static void sort_keys(const cJSON **v, size_t n)
{
    if (n > 32) {
        qsort(v, n, sizeof(*v), cmp_key);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        const cJSON *x = v[i];
        size_t j = i;

        while (j > 0 && key_cmp(v[j - 1], x) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/*
 * The second member of the first object (pre-order) that has a key
 * twice, or NULL. cJSON keeps both and lookups return the first, so a
 * duplicate would let two readers of one message (vigil and anyone else)
 * see different events. Small objects compare pairwise; larger ones sort
 * pointers to their members (no copy of keys; O(n log n) also for hostile
 * key sets, where an unkeyed hash table could be flooded).
 */
static const cJSON *duplicate_in(const cJSON *node, struct key_scratch *ks)
{
    const cJSON *it;
    const cJSON *found;
    size_t n = 0;

    if (!json_is(node, cJSON_Object) && !json_is(node, cJSON_Array)) {
        return NULL;
    }
    if (json_is(node, cJSON_Object)) {
        cJSON_ArrayForEach(it, node)
        {
            n++;
        }
    }
    if (n > 1 && n <= 8) {
        for (const cJSON *a = node->child; a; a = a->next) {
            for (const cJSON *b = a->next; b; b = b->next) {
                if (a->string[0] == b->string[0] && strcmp(a->string, b->string) == 0) {
                    return b;
                }
            }
        }
    } else if (n > 8) {
        size_t i = 0;

        if (n > ks->cap) {
            ks->cap = n > 2 * ks->cap ? n : 2 * ks->cap;
            ks->v = vg_arena_alloc(ks->arena, ks->cap * sizeof(*ks->v));
        }
        cJSON_ArrayForEach(it, node)
        {
            ks->v[i++] = it;
        }
        sort_keys(ks->v, n);
        for (i = 1; i < n; i++) {
            if (strcmp(ks->v[i - 1]->string, ks->v[i]->string) == 0) {
                return ks->v[i];
            }
        }
    }
    cJSON_ArrayForEach(it, node)
    {
        if (it->child) { /* only objects and arrays have children */
            found = duplicate_in(it, ks);
            if (found) {
                return found;
            }
        }
    }
    return NULL;
}

static const cJSON *find_duplicate_key(struct vg_arena *scratch, const cJSON *root)
{
    struct key_scratch ks = {scratch, NULL, 0};

    return duplicate_in(root, &ks);
}

static enum vg_decode_reason decode_native(struct vg_event *ev, const struct decode_ctx *dx,
                                           const cJSON *root)
{
    const struct vg_decode_config *dc = dx->dc;
    const cJSON *resource;
    const char *type, *name, *workspace, *version, *owner, *message;
    enum vg_decode_reason r;
    int64_t time_ms = dx->kafka_ts_ms;
    bool found = false;

    resource = json_get(root, "resource");
    if (!json_is(resource, cJSON_Object)) {
        return decode_fail(dx, VG_DECODE_NO_RESOURCE, "%s",
                           resource ? "resource: not an object" : "resource: missing");
    }
    if ((r = decode_string(dx, resource, "type", true, dc->max_name_bytes, true, &type,
                           "resource.")) ||
        (r = decode_string(dx, resource, "name", true, dc->max_name_bytes, true, &name,
                           "resource.")) ||
        (r = decode_string(dx, resource, "workspace", true, dc->max_name_bytes, true, &workspace,
                           "resource.")) ||
        (r = decode_string(dx, resource, "version", false, dc->max_name_bytes, true, &version,
                           "resource.")) ||
        (r = decode_string(dx, resource, "owner", false, dc->max_name_bytes, false, &owner,
                           "resource.")) ||
        (r = decode_string(dx, root, "message", false, dc->max_message_text_bytes, false, &message,
                           ""))) {
        return r;
    }
    if ((r = get_enum(dx, root, "status", dc->status_values, dc->n_status_values,
                      VG_DECODE_BAD_STATUS, ev->status)) ||
        (r = get_enum(dx, root, "runtime", dc->runtime_values, dc->n_runtime_values,
                      VG_DECODE_BAD_RUNTIME, ev->runtime))) {
        return r;
    }
    if (!ev->status[0] && !ev->runtime[0]) {
        return decode_fail(dx, VG_DECODE_NO_SIGNAL, "neither status nor runtime is present");
    }
    r = decode_time(dx, root, "time", "", &time_ms, &found);
    if (r) {
        return r;
    }
    if (!found && time_ms < 0) {
        time_ms = vg_now_ms();
    }
    ev->kind = VG_EVENT_NATIVE;
    ev->type = borrow(type);
    ev->name = borrow(name);
    ev->workspace = borrow(workspace);
    ev->version = borrow(version ? version : "v1");
    ev->owner = borrow(owner ? owner : "");
    ev->message = borrow(message);
    ev->time_ms = time_ms; /* the id is built by own_event */
    return VG_DECODE_OK;
}

/* AUTO: what the object looks like. */
static enum vg_event_format sniff(const cJSON *root)
{
    const char *kind = json_str(root, "kind");
    const cJSON *object = json_get(root, "object");

    if (kind && strcmp(kind, "Pod") == 0) {
        return VG_FORMAT_K8S_POD;
    }
    if (kind && strcmp(kind, "Event") == 0) {
        return VG_FORMAT_K8S_EVENT;
    }
    if (json_is(object, cJSON_Object)) {
        const char *okind = json_str(object, "kind");
        return okind && strcmp(okind, "Event") == 0 ? VG_FORMAT_K8S_EVENT : VG_FORMAT_K8S_POD;
    }
    return VG_FORMAT_NATIVE;
}

/*
 * A Kubernetes object, bare or wrapped in a watch event {"type", "object"}:
 * the object and the watch type (NULL when bare).
 */
static enum vg_decode_reason unwrap(const struct decode_ctx *dx, const cJSON *root,
                                    const cJSON **obj, const char **watch)
{
    const cJSON *object = json_get(root, "object");
    const cJSON *type;

    *obj = root;
    *watch = NULL;
    if (!object) {
        return VG_DECODE_OK;
    }
    if (!json_is(object, cJSON_Object)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "object: not an object");
    }
    type = json_get(root, "type");
    if (!json_is(type, cJSON_String)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "type: %s",
                           type ? "not a string" : "missing (a watch event needs one)");
    }
    *obj = object;
    *watch = type->valuestring;
    return VG_DECODE_OK;
}

static enum vg_decode_reason decode_root(struct vg_event *ev, const struct decode_ctx *dx,
                                         enum vg_event_format fmt, const cJSON *root)
{
    const cJSON *obj;
    const char *watch;
    enum vg_decode_reason r;

    if (fmt == VG_FORMAT_AUTO) {
        fmt = sniff(root);
    }
    if (fmt == VG_FORMAT_NATIVE) {
        return decode_native(ev, dx, root);
    }
    r = unwrap(dx, root, &obj, &watch);
    if (r) {
        return r;
    }
    if (watch && (strcmp(watch, "BOOKMARK") == 0 || strcmp(watch, "ERROR") == 0)) {
        return decode_fail(dx, VG_DECODE_SKIP_IGNORED, "watch event %s", watch);
    }
    if (watch && strcmp(watch, "ADDED") != 0 && strcmp(watch, "MODIFIED") != 0 &&
        strcmp(watch, "DELETED") != 0) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "type: unknown watch event type \"%.40s\"",
                           watch);
    }
    if (fmt == VG_FORMAT_K8S_POD) {
        return k8s_decode_pod(ev, dx, obj, watch);
    }
    return k8s_decode_event(ev, dx, obj, watch);
}

/* Copy `s` (len bytes and its NUL) to *p; returns the copy and moves *p past it. */
static char *put_string(char **p, const char *s, size_t len)
{
    char *copy = *p;

    memcpy(copy, s, len + 1);
    *p += len + 1;
    return copy;
}

/*
 * Move what a successful decode borrowed (struct decode_ctx) into one
 * heap block: the pod and its containers first (aligned: the block is
 * fresh from malloc and both sizes keep pointer alignment), then every
 * string, and the id "type:version:name:workspace" built in place. One
 * malloc per event instead of one per field. Labels become separate heap
 * copies: vg_labels_free is their contract.
 */
static void own_event(struct vg_event *ev)
{
    char **strs[] = {&ev->type,    &ev->version, &ev->name,   &ev->workspace,  &ev->owner,
                     &ev->message, &ev->log_pod, &ev->log_ns, &ev->log_reason, &ev->log_type};
    size_t lens[VG_ARRAY_LEN(strs)];
    size_t size = 0;
    const struct vg_pod *src = ev->pod;
    size_t pod_name_len = 0, pod_ns_len = 0;
    char *p;

    for (size_t i = 0; i < VG_ARRAY_LEN(strs); i++) {
        lens[i] = *strs[i] ? strlen(*strs[i]) : 0;
        size += *strs[i] ? lens[i] + 1 : 0;
    }
    if (ev->type) {
        VG_ASSERT(ev->version && ev->name && ev->workspace);
        size += lens[0] + lens[1] + lens[2] + lens[3] + 4; /* the id: three ':' and the NUL */
    }
    if (src) {
        size += sizeof(*src) + src->n_containers * sizeof(*src->containers);
        pod_name_len = strlen(src->name);
        pod_ns_len = strlen(src->ns);
        size += pod_name_len + 1 + pod_ns_len + 1;
        for (size_t i = 0; i < src->n_containers; i++) {
            size += strlen(src->containers[i].name) + 1;
        }
    }
    if (size == 0) {
        return;
    }
    ev->block = vg_malloc(size);
    ev->block_size = size;
    p = ev->block;
    if (src) {
        struct vg_pod *pod = (struct vg_pod *)(void *)p;

        p += sizeof(*pod);
        *pod = *src;
        if (src->n_containers > 0) {
            pod->containers = (struct vg_container *)(void *)p;
            memcpy(pod->containers, src->containers, src->n_containers * sizeof(*src->containers));
            p += src->n_containers * sizeof(*src->containers);
        } else {
            pod->containers = NULL;
        }
        pod->name = put_string(&p, src->name, pod_name_len);
        pod->ns = put_string(&p, src->ns, pod_ns_len);
        for (size_t i = 0; i < src->n_containers; i++) {
            pod->containers[i].name =
                put_string(&p, src->containers[i].name, strlen(src->containers[i].name));
        }
        ev->pod = pod;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(strs); i++) {
        if (*strs[i]) {
            *strs[i] = put_string(&p, *strs[i], lens[i]);
        }
    }
    if (ev->type) {
        ev->id = p;
        for (size_t i = 0; i < 4; i++) { /* type, version, name, workspace: strs[0..3] */
            memcpy(p, *strs[i], lens[i]);
            p += lens[i];
            *p++ = i < 3 ? ':' : '\0';
        }
    }
    VG_ASSERT((size_t)(p - ev->block) == size);
    if (ev->labels) {
        struct vg_label *labels = vg_calloc(ev->n_labels ? ev->n_labels : 1, sizeof(*labels));

        for (size_t i = 0; i < ev->n_labels; i++) {
            labels[i].key = vg_strdup(ev->labels[i].key);
            labels[i].value = vg_strdup(ev->labels[i].value);
        }
        ev->labels = labels;
    }
}

/* Parse (the tree goes to the scratch) and decode; on success own_event, before the tree goes. */
static enum vg_decode_reason parse_and_decode(struct vg_event *ev, const struct decode_ctx *dx,
                                              enum vg_event_format fmt, const char *json,
                                              size_t len, bool nul_escape, bool trees_in_arena)
{
    cJSON *root;
    const char *parse_end = NULL;
    enum vg_decode_reason r;
    const cJSON *dup;

    if (nul_escape) {
        json = patch_nul_escapes(dx->scratch, json, len);
    }
    root = cJSON_ParseWithLengthOpts(json, len, &parse_end, 0);
    if (!root) {
        return decode_fail(dx, VG_DECODE_BAD_JSON, "invalid JSON");
    }
    if (parse_end) {
        const char *end = json + len;
        while (parse_end < end && (*parse_end == ' ' || *parse_end == '\n' || *parse_end == '\r' ||
                                   *parse_end == '\t')) {
            parse_end++;
        }
        if (parse_end != end) {
            r = decode_fail(dx, VG_DECODE_BAD_JSON, "trailing data after JSON");
            goto out;
        }
    }
    if (!json_is(root, cJSON_Object)) {
        r = decode_fail(dx, VG_DECODE_NOT_OBJECT, "not a JSON object");
        goto out;
    }
    dup = find_duplicate_key(dx->scratch, root);
    if (dup) {
        r = decode_fail(dx, VG_DECODE_DUPLICATE_KEY, "duplicate key \"%.60s\"", dup->string);
        goto out;
    }
    r = decode_root(ev, dx, fmt, root);
    if (r == VG_DECODE_OK) {
        own_event(ev);
    }
out:
    if (!trees_in_arena) {
        cJSON_Delete(root);
    }
    return r;
}

enum vg_decode_reason vg_event_decode_ex(struct vg_event *ev, const struct vg_decode_config *dc,
                                         enum vg_event_format fmt, const char *json, size_t len,
                                         int64_t kafka_ts_ms, char *detail, size_t detail_size)
{
    struct decode_ctx dx = {dc, detail, detail_size, kafka_ts_ms, NULL};
    enum vg_decode_reason r;
    int depth_limit;
    struct vg_json_scan scan;
    bool trees_in_arena;

    memset(ev, 0, sizeof(*ev));
    if (!dc) {
        dx.dc = dc = &static_defaults;
    }
    if (detail && detail_size) {
        detail[0] = '\0';
    }
    if (len > dc->max_message_bytes) {
        if (dc->max_message_bytes % (1024 * 1024) == 0) {
            return decode_fail(&dx, VG_DECODE_TOO_LARGE, "message larger than %zu MiB",
                               dc->max_message_bytes / (1024 * 1024));
        }
        return decode_fail(&dx, VG_DECODE_TOO_LARGE, "message of %zu bytes, larger than %zu", len,
                           dc->max_message_bytes);
    }
    if (!json || len == 0) {
        return decode_fail(&dx, VG_DECODE_BAD_JSON, "empty message");
    }
    /* cJSON recurses per level and has its own hard limit of 1000: cap ours below it. */
    depth_limit = dc->max_depth > 0 && dc->max_depth < 1000 ? dc->max_depth : 999;
    switch (vg_json_scan(json, len, depth_limit, &scan)) {
    case VG_JSON_SCAN_OK:
        break;
    case VG_JSON_SCAN_NOT_UTF8:
        return decode_fail(&dx, VG_DECODE_NOT_UTF8, "not valid UTF-8 at byte %zu", scan.at);
    case VG_JSON_SCAN_TOO_DEEP:
        return decode_fail(&dx, VG_DECODE_TOO_DEEP, "JSON nested deeper than %d", depth_limit);
    case VG_JSON_SCAN_CONTROL_CHAR:
        /* cJSON would keep the byte, and a NUL would cut the string short there */
        return decode_fail(&dx, VG_DECODE_CONTROL_CHAR,
                           "raw control character 0x%02x in a string at byte %zu",
                           (unsigned char)json[scan.at], scan.at);
    }
    dx.scratch = vg_json_scratch_begin(&trees_in_arena);
    r = parse_and_decode(ev, &dx, fmt, json, len, scan.nul_escape, trees_in_arena);
    if (r != VG_DECODE_OK) {
        memset(ev, 0, sizeof(*ev)); /* a decoder may fail after borrowing some fields */
    }
    vg_json_scratch_end();
    return r;
}

enum vg_decode_reason vg_event_decode(struct vg_event *ev, const char *json, size_t len,
                                      int64_t kafka_ts_ms, char *detail, size_t detail_size)
{
    return vg_event_decode_ex(ev, NULL, VG_FORMAT_NATIVE, json, len, kafka_ts_ms, detail,
                              detail_size);
}

enum vg_decode_reason vg_event_check_time(const struct vg_event *ev,
                                          const struct vg_decode_config *dc, int64_t now_ms,
                                          char *detail, size_t detail_size)
{
    struct decode_ctx dx = {dc, detail, detail_size, -1, NULL};
    char when[40];
    /* 9999-12-31T23:59:59.999Z: a Kafka timestamp (the producer's choice) may lie far beyond */
    const int64_t last_rfc3339_ms = INT64_C(253402300799999);

    if (!dc) {
        dc = &static_defaults;
    }
    if (dc->max_clock_skew_ms <= 0 || ev->time_ms <= now_ms ||
        ev->time_ms - now_ms <= dc->max_clock_skew_ms) {
        return VG_DECODE_OK;
    }
    if (ev->time_ms <= last_rfc3339_ms) {
        vg_time_format_rfc3339(ev->time_ms, when, sizeof(when));
    } else {
        snprintf(when, sizeof(when), "%" PRId64 " ms", ev->time_ms);
    }
    return decode_fail(&dx, VG_DECODE_FUTURE_TIME,
                       "event time %s is %" PRId64 " s ahead of the clock (more than "
                       "decode.limits.max_clock_skew_ms %" PRId64 ")",
                       when, (ev->time_ms - now_ms) / 1000, dc->max_clock_skew_ms);
}
