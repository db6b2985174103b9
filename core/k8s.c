/*
 * Kubernetes inputs (docs/events.md): Pod objects (bare or in a
 * watch event) become VG_EVENT_POD events carrying the pod's tracked
 * state, core/v1 Events about pods become VG_EVENT_K8S_EVENT log lines;
 * the owning Resource comes from the pod's labels (decode.kubernetes).
 * Also here: the runtime-from-pods table and the pod's JSON form in the
 * Resource hash. Pure: no I/O.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_int.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define K8S_NAME_MAX 253 /* DNS subdomain: pod names, namespaces */

/* As snprintf(dst, size, "%s", src) (truncating), without a format on the per-event path. */
static void copy_bounded(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size - 1);

    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void copy_reason(char dst[VG_REASON_MAX], const char *src)
{
    copy_bounded(dst, VG_REASON_MAX, src ? src : "");
}

static void bump(int64_t *newest, int64_t t)
{
    if (t > *newest) {
        *newest = t;
    }
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- pods: memory and JSON ------------------------------------------- */

void vg_pod_fini(struct vg_pod *pod)
{
    free(pod->name);
    free(pod->ns);
    for (size_t i = 0; i < pod->n_containers; i++) {
        free(pod->containers[i].name);
    }
    free(pod->containers);
    memset(pod, 0, sizeof(*pod));
}

void vg_pod_copy(struct vg_pod *dst, const struct vg_pod *src)
{
    *dst = *src;
    dst->name = vg_strdup(src->name);
    dst->ns = vg_strdup(src->ns ? src->ns : "");
    dst->containers = NULL;
    if (src->n_containers > 0) {
        dst->containers = vg_calloc(src->n_containers, sizeof(*dst->containers));
        for (size_t i = 0; i < src->n_containers; i++) {
            dst->containers[i] = src->containers[i];
            dst->containers[i].name = vg_strdup(src->containers[i].name);
        }
    }
}

static void check_oom(const void *p)
{
    if (!p) {
        vg_oom("pod JSON");
    }
}

char *vg_pod_to_json(const struct vg_pod *pod)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *arr;
    char *json;

    check_oom(obj);
    check_oom(cJSON_AddStringToObject(obj, "namespace", pod->ns ? pod->ns : ""));
    check_oom(cJSON_AddStringToObject(obj, "phase", pod->phase));
    check_oom(cJSON_AddStringToObject(obj, "reason", pod->reason));
    check_oom(cJSON_AddBoolToObject(obj, "ready", pod->ready));
    check_oom(cJSON_AddNumberToObject(obj, "restarts", pod->restarts));
    check_oom(cJSON_AddNumberToObject(obj, "last_transition", (double)pod->last_transition_ms));
    check_oom(cJSON_AddNumberToObject(obj, "time", (double)pod->time_ms));
    arr = cJSON_AddArrayToObject(obj, "containers");
    check_oom(arr);
    for (size_t i = 0; i < pod->n_containers; i++) {
        const struct vg_container *c = &pod->containers[i];
        cJSON *co = cJSON_CreateObject();

        check_oom(co);
        cJSON_AddItemToArray(arr, co);
        check_oom(cJSON_AddStringToObject(co, "name", c->name ? c->name : ""));
        check_oom(cJSON_AddBoolToObject(co, "init", c->init));
        check_oom(cJSON_AddBoolToObject(co, "ready", c->ready));
        check_oom(cJSON_AddNumberToObject(co, "restarts", c->restarts));
        check_oom(cJSON_AddStringToObject(co, "state", c->state));
        check_oom(cJSON_AddStringToObject(co, "reason", c->reason));
        check_oom(cJSON_AddNumberToObject(co, "exit_code", c->exit_code));
    }
    json = cJSON_PrintUnformatted(obj);
    check_oom(json);
    cJSON_Delete(obj);
    return json;
}

static bool num_i64(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *it = json_get(obj, key);

    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < -9.0e15 ||
        it->valuedouble > 9.0e15) {
        return false;
    }
    *out = (int64_t)it->valuedouble;
    return true;
}

static bool num_i32(const cJSON *obj, const char *key, int32_t *out)
{
    int64_t v;

    if (!num_i64(obj, key, &v) || v < INT32_MIN || v > INT32_MAX) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

bool vg_pod_from_json(struct vg_pod *pod, const char *name, const char *json, size_t len)
{
    cJSON *obj = cJSON_ParseWithLength(json, len);
    const cJSON *arr;
    const cJSON *co;
    const char *s;
    bool ok = false;

    memset(pod, 0, sizeof(*pod));
    if (!cJSON_IsObject(obj)) {
        goto out;
    }
    pod->name = vg_strdup(name);
    s = json_str(obj, "namespace");
    pod->ns = vg_strdup(s ? s : "");
    s = json_str(obj, "phase");
    snprintf(pod->phase, sizeof(pod->phase), "%s", s ? s : "");
    copy_reason(pod->reason, json_str(obj, "reason"));
    pod->ready = cJSON_IsTrue(json_get(obj, "ready"));
    if (!num_i32(obj, "restarts", &pod->restarts) ||
        !num_i64(obj, "last_transition", &pod->last_transition_ms) ||
        !num_i64(obj, "time", &pod->time_ms)) {
        goto out;
    }
    arr = json_get(obj, "containers");
    if (arr && !cJSON_IsArray(arr)) {
        goto out;
    }
    cJSON_ArrayForEach(co, arr)
    {
        struct vg_container *c;

        if (!cJSON_IsObject(co) || pod->n_containers >= VG_MAX_CONTAINERS) {
            goto out;
        }
        if (!pod->containers) {
            pod->containers = vg_calloc(VG_MAX_CONTAINERS, sizeof(*pod->containers));
        }
        c = &pod->containers[pod->n_containers++];
        s = json_str(co, "name");
        c->name = vg_strdup(s ? s : "");
        c->init = cJSON_IsTrue(json_get(co, "init"));
        c->ready = cJSON_IsTrue(json_get(co, "ready"));
        s = json_str(co, "state");
        snprintf(c->state, sizeof(c->state), "%s", s ? s : "");
        copy_reason(c->reason, json_str(co, "reason"));
        if (!num_i32(co, "restarts", &c->restarts) || !num_i32(co, "exit_code", &c->exit_code)) {
            goto out;
        }
    }
    ok = true;
out:
    cJSON_Delete(obj);
    if (!ok) {
        vg_pod_fini(pod);
    }
    return ok;
}

/* ---- runtime from pods ------------------------------------------------ */

static bool waiting_fails(const char *reason)
{
    static const char *const failing[] = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                                          "CreateContainerConfigError"};
    for (size_t i = 0; i < VG_ARRAY_LEN(failing); i++) {
        if (strcmp(reason, failing[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* The container state that makes the pod failed, or NULL. */
static const struct vg_container *failing_container(const struct vg_pod *p)
{
    for (size_t i = 0; i < p->n_containers; i++) {
        const struct vg_container *c = &p->containers[i];

        if ((strcmp(c->state, "waiting") == 0 && waiting_fails(c->reason)) ||
            (strcmp(c->state, "terminated") == 0 && strcmp(c->reason, "OOMKilled") == 0)) {
            return c;
        }
    }
    return NULL;
}

static bool pod_failed(const struct vg_pod *p)
{
    return strcmp(p->phase, "Failed") == 0 || strcmp(p->reason, "Evicted") == 0;
}

/* Why a Failed pod failed: status.reason, else a container's terminated reason, else "Failed". */
static const char *failed_reason(const struct vg_pod *p)
{
    if (p->reason[0]) {
        return p->reason;
    }
    for (size_t i = 0; i < p->n_containers; i++) {
        const struct vg_container *c = &p->containers[i];
        if (strcmp(c->state, "terminated") == 0 && c->reason[0] &&
            strcmp(c->reason, "Completed") != 0) {
            return c->reason;
        }
    }
    return "Failed";
}

const char *vg_pods_runtime(const struct vg_pod *pods, size_t n, const struct vg_pod **pod,
                            char reason[VG_REASON_MAX])
{
    const struct vg_pod *dummy;
    bool all_succeeded = n > 0;

    if (!pod) {
        pod = &dummy;
    }
    *pod = NULL;
    reason[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct vg_container *c;

        if (pod_failed(&pods[i])) {
            *pod = &pods[i];
            copy_reason(reason, failed_reason(&pods[i]));
            return "failed";
        }
        c = failing_container(&pods[i]);
        if (c) {
            *pod = &pods[i];
            copy_reason(reason, c->reason);
            return "failed";
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pods[i].phase, "Running") == 0 && pods[i].ready) {
            *pod = &pods[i];
            return "running";
        }
        all_succeeded = all_succeeded && strcmp(pods[i].phase, "Succeeded") == 0;
    }
    if (all_succeeded) {
        *pod = &pods[n - 1];
        return "succeeded";
    }
    /* pending: name the first pod that says why it waits (ContainerCreating, ...) */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < pods[i].n_containers; j++) {
            const struct vg_container *c = &pods[i].containers[j];
            if (strcmp(c->state, "waiting") == 0 && c->reason[0]) {
                *pod = &pods[i];
                copy_reason(reason, c->reason);
                return "pending";
            }
        }
    }
    *pod = n > 0 ? &pods[0] : NULL;
    return "pending";
}

/* ---- identity from labels --------------------------------------------- */

/* metadata.labels: absent, or an object of at most max_labels strings. */
static enum vg_decode_reason check_labels(const struct decode_ctx *dx, const cJSON *meta,
                                          const cJSON **out)
{
    const cJSON *labels = json_get(meta, "labels");
    const cJSON *it;
    size_t n = 0;

    *out = NULL;
    if (!labels || cJSON_IsNull(labels)) {
        return VG_DECODE_OK;
    }
    if (!cJSON_IsObject(labels)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "metadata.labels: not an object");
    }
    cJSON_ArrayForEach(it, labels)
    {
        if (++n > dx->dc->max_labels) {
            return decode_fail(dx, VG_DECODE_TOO_MANY_LABELS, "metadata.labels: more than %zu",
                               dx->dc->max_labels);
        }
        if (!cJSON_IsString(it)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "metadata.labels.%.100s: not a string",
                               it->string);
        }
        if (strlen(it->string) > dx->dc->max_name_bytes ||
            strlen(it->valuestring) > dx->dc->max_name_bytes) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "metadata.labels.%.100s: longer than %zu",
                               it->string, dx->dc->max_name_bytes);
        }
    }
    *out = labels;
    return VG_DECODE_OK;
}

/*
 * The Resource of a pod from its labels (decode.kubernetes). No name
 * label (or an empty one): VG_DECODE_SKIP_NO_NAME_LABEL.
 */
static enum vg_decode_reason identity_from_labels(struct vg_event *ev, const struct decode_ctx *dx,
                                                  const cJSON *labels, const char *ns)
{
    const struct vg_decode_config *dc = dx->dc;
    const char *name_v = labels ? json_str(labels, dc->label_name) : NULL;
    const char *type, *name, *version, *owner, *ws = NULL;
    enum vg_decode_reason r;
    size_t max = dc->max_name_bytes;

    if (!name_v || !name_v[0]) {
        return decode_fail(dx, VG_DECODE_SKIP_NO_NAME_LABEL, "no label %.200s", dc->label_name);
    }
    if ((r = decode_string(dx, labels, dc->label_name, true, max, true, &name,
                           "metadata.labels.")) ||
        (r = decode_string(dx, labels, dc->label_type, false, max, true, &type,
                           "metadata.labels.")) ||
        (r = decode_string(dx, labels, dc->label_version, false, max, true, &version,
                           "metadata.labels.")) ||
        (r = decode_string(dx, labels, dc->label_owner, false, max, false, &owner,
                           "metadata.labels."))) {
        return r;
    }
    if (strcmp(dc->workspace_from, "namespace") != 0) {
        r = decode_string(dx, labels, dc->workspace_from, false, max, true, &ws,
                          "metadata.labels.");
        if (r) {
            return r;
        }
    }
    ev->type = borrow(type ? type : dc->default_type);
    ev->name = borrow(name);
    ev->workspace = borrow(ws ? ws : ns);
    ev->version = borrow(version ? version : "v1");
    ev->owner = borrow(owner ? owner : "");
    return VG_DECODE_OK; /* the id is built when the event takes its strings */
}

bool vg_event_set_identity(struct vg_event *ev, const char *id)
{
    const char *p[4];
    const char *c = id;

    for (int i = 0; i < 4; i++) {
        p[i] = c;
        c = strchr(c, ':');
        if ((i < 3) != (c != NULL)) {
            return false;
        }
        if (c) {
            c++;
        }
    }
    event_free_string(ev, ev->id);
    event_free_string(ev, ev->type);
    event_free_string(ev, ev->version);
    event_free_string(ev, ev->name);
    event_free_string(ev, ev->workspace);
    ev->id = vg_strdup(id);
    ev->type = vg_strndup(p[0], (size_t)(p[1] - p[0] - 1));
    ev->version = vg_strndup(p[1], (size_t)(p[2] - p[1] - 1));
    ev->name = vg_strndup(p[2], (size_t)(p[3] - p[2] - 1));
    ev->workspace = vg_strdup(p[3]);
    if (!ev->owner) {
        ev->owner = vg_strdup("");
    }
    return true;
}

/* metadata.namespace, or "default" (as kubectl assumes). */
static enum vg_decode_reason get_namespace(const struct decode_ctx *dx, const cJSON *obj,
                                           const char *path, const char **ns)
{
    enum vg_decode_reason r =
        decode_string(dx, obj, "namespace", false, min_size(K8S_NAME_MAX, dx->dc->max_name_bytes),
                      true, ns, path);
    if (!r && !*ns) {
        *ns = "default";
    }
    return r;
}

static enum vg_decode_reason check_kind(const struct decode_ctx *dx, const cJSON *obj,
                                        const char *want)
{
    const cJSON *kind = json_get(obj, "kind");

    if (kind && !cJSON_IsNull(kind) &&
        (!cJSON_IsString(kind) || strcmp(kind->valuestring, want) != 0)) {
        return decode_fail(dx, VG_DECODE_BAD_KIND, "kind: %.60s, expected %s",
                           cJSON_IsString(kind) ? kind->valuestring : "not a string", want);
    }
    return VG_DECODE_OK;
}

/* ---- Pod -------------------------------------------------------------- */

static enum vg_decode_reason get_container_state(const struct decode_ctx *dx, const cJSON *st,
                                                 const char *path, struct vg_container *c,
                                                 int64_t *newest)
{
    static const char *const states[] = {"waiting", "running", "terminated"};
    enum vg_decode_reason r;
    int64_t t;
    bool found;

    if (!st || cJSON_IsNull(st)) {
        return VG_DECODE_OK;
    }
    if (!cJSON_IsObject(st)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s: not an object", path);
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(states); i++) {
        const cJSON *s = json_get(st, states[i]);
        const char *reason;
        int32_t code = 0;

        if (!s || cJSON_IsNull(s)) {
            continue;
        }
        if (!cJSON_IsObject(s)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s.%s: not an object", path, states[i]);
        }
        r = decode_string(dx, s, "reason", false, dx->dc->max_name_bytes, false, &reason, "");
        if (r) {
            return r;
        }
        if (json_get(s, "exitCode") && !num_i32(s, "exitCode", &code)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "%s.%s.exitCode: not an integer", path,
                               states[i]);
        }
        if ((r = decode_time(dx, s, "startedAt", "", &t, &found))) {
            return r;
        }
        if (found) {
            bump(newest, t);
        }
        if ((r = decode_time(dx, s, "finishedAt", "", &t, &found))) {
            return r;
        }
        if (found) {
            bump(newest, t);
        }
        if (c) {
            copy_bounded(c->state, sizeof(c->state), states[i]);
            copy_reason(c->reason, reason);
            c->exit_code = code;
        }
    }
    return VG_DECODE_OK;
}

static enum vg_decode_reason get_containers(const struct decode_ctx *dx, const cJSON *status,
                                            bool init, struct vg_pod *pod, int64_t *newest)
{
    /* the paths for details, as literals: no formatting per container */
    const char *key = init ? "initContainerStatuses" : "containerStatuses";
    const char *path_item =
        init ? "status.initContainerStatuses[]." : "status.containerStatuses[].";
    const char *path_state =
        init ? "status.initContainerStatuses[].state" : "status.containerStatuses[].state";
    const char *path_last =
        init ? "status.initContainerStatuses[].lastState" : "status.containerStatuses[].lastState";
    const cJSON *arr = json_get(status, key);
    const cJSON *co;
    enum vg_decode_reason r;

    if (!arr || cJSON_IsNull(arr)) {
        return VG_DECODE_OK;
    }
    if (!cJSON_IsArray(arr)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.%s: not an array", key);
    }
    cJSON_ArrayForEach(co, arr)
    {
        struct vg_container tmp;
        struct vg_container *c = &tmp;
        const char *name;
        int32_t restarts = 0;
        const cJSON *ready;

        memset(&tmp, 0, sizeof(tmp));
        if (!cJSON_IsObject(co)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.%s[]: not an object", key);
        }
        r = decode_string(dx, co, "name", true, dx->dc->max_name_bytes, false, &name, path_item);
        if (r) {
            return r;
        }
        if (json_get(co, "restartCount") &&
            (!num_i32(co, "restartCount", &restarts) || restarts < 0)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.%s[].restartCount: not a count",
                               key);
        }
        ready = json_get(co, "ready");
        if (ready && !cJSON_IsBool(ready)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.%s[].ready: not a boolean", key);
        }
        if (pod->n_containers < VG_MAX_CONTAINERS) {
            if (!pod->containers) {
                pod->containers =
                    vg_arena_alloc(dx->scratch, VG_MAX_CONTAINERS * sizeof(*pod->containers));
            }
            c = &pod->containers[pod->n_containers++];
            memset(c, 0, sizeof(*c));
            c->name = borrow(name);
        }
        c->init = init;
        c->ready = cJSON_IsTrue(ready);
        c->restarts = restarts;
        if (pod->restarts <= INT32_MAX - restarts) {
            pod->restarts += restarts;
        }
        r = get_container_state(dx, json_get(co, "state"), path_state, c, newest);
        if (r) {
            return r;
        }
        r = get_container_state(dx, json_get(co, "lastState"), path_last, NULL, newest);
        if (r) {
            return r;
        }
    }
    return VG_DECODE_OK;
}

static enum vg_decode_reason get_pod_status(const struct decode_ctx *dx, const cJSON *status,
                                            struct vg_pod *pod, int64_t *newest)
{
    static const char *const phases[] = {"Pending", "Running", "Succeeded", "Failed", "Unknown"};
    const cJSON *conds;
    const cJSON *cond;
    const char *phase;
    const char *reason;
    enum vg_decode_reason r;
    bool have_ready = false;
    bool all_ready = true;
    size_t n_regular = 0;
    int64_t t;
    bool found;

    if (!status || cJSON_IsNull(status)) {
        return VG_DECODE_OK; /* a pod just created: pending */
    }
    if (!cJSON_IsObject(status)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "status: not an object");
    }
    if ((r = decode_string(dx, status, "phase", false, VG_VALUE_MAX - 1, true, &phase,
                           "status.")) ||
        (r = decode_string(dx, status, "reason", false, dx->dc->max_name_bytes, false, &reason,
                           "status."))) {
        return r;
    }
    if (phase) {
        bool known = false;
        for (size_t i = 0; i < VG_ARRAY_LEN(phases) && !known; i++) {
            known = strcmp(phase, phases[i]) == 0;
        }
        if (!known) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.phase: unknown value \"%.40s\"",
                               phase);
        }
        copy_bounded(pod->phase, sizeof(pod->phase), phase);
    }
    copy_reason(pod->reason, reason);
    if ((r = decode_time(dx, status, "startTime", "status.", &t, &found))) {
        return r;
    }
    if (found) {
        bump(newest, t);
    }
    conds = json_get(status, "conditions");
    if (conds && !cJSON_IsNull(conds) && !cJSON_IsArray(conds)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.conditions: not an array");
    }
    cJSON_ArrayForEach(cond, conds)
    {
        const char *type;
        if (!cJSON_IsObject(cond)) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "status.conditions[]: not an object");
        }
        if ((r = decode_time(dx, cond, "lastTransitionTime", "status.conditions[].", &t, &found))) {
            return r;
        }
        if (found) {
            bump(newest, t);
            bump(&pod->last_transition_ms, t);
        }
        type = json_str(cond, "type");
        if (type && strcmp(type, "Ready") == 0) {
            const char *s = json_str(cond, "status");
            have_ready = true;
            pod->ready = s && strcmp(s, "True") == 0;
        }
    }
    if ((r = get_containers(dx, status, true, pod, newest)) ||
        (r = get_containers(dx, status, false, pod, newest))) {
        return r;
    }
    bump(&pod->last_transition_ms, *newest);
    if (!have_ready) {
        /* No Ready condition (a hand-made object): ready when every container is. */
        for (size_t i = 0; i < pod->n_containers; i++) {
            if (!pod->containers[i].init) {
                n_regular++;
                all_ready = all_ready && pod->containers[i].ready;
            }
        }
        pod->ready = strcmp(pod->phase, "Running") == 0 && n_regular > 0 && all_ready;
    }
    return VG_DECODE_OK;
}

enum vg_decode_reason k8s_decode_pod(struct vg_event *ev, const struct decode_ctx *dx,
                                     const cJSON *obj, const char *watch)
{
    const cJSON *meta;
    const cJSON *labels;
    const char *name;
    const char *ns;
    struct vg_pod *pod;
    enum vg_decode_reason r;
    int64_t newest = 0;
    int64_t t;
    bool found;

    if ((r = check_kind(dx, obj, "Pod"))) {
        return r;
    }
    meta = json_get(obj, "metadata");
    if (!cJSON_IsObject(meta)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "metadata: %s",
                           meta ? "not an object" : "missing");
    }
    if ((r = decode_string(dx, meta, "name", true, min_size(K8S_NAME_MAX, dx->dc->max_name_bytes),
                           true, &name, "metadata.")) ||
        (r = get_namespace(dx, meta, "metadata.", &ns)) || (r = check_labels(dx, meta, &labels))) {
        return r;
    }
    if ((r = decode_time(dx, meta, "creationTimestamp", "metadata.", &t, &found))) {
        return r;
    }
    if (found) {
        bump(&newest, t);
    }
    pod = vg_arena_alloc(dx->scratch, sizeof(*pod));
    memset(pod, 0, sizeof(*pod));
    ev->pod = pod; /* borrowed like the strings: the event's block gets a copy */
    pod->name = borrow(name);
    pod->ns = borrow(ns);
    r = get_pod_status(dx, json_get(obj, "status"), pod, &newest);
    if (r) {
        return r;
    }
    r = identity_from_labels(ev, dx, labels, ns);
    if (r) {
        return r;
    }
    /* the pod's labels become the Resource's (rules match them as labels.<key>) */
    if (cJSON_IsObject(labels)) {
        const cJSON *it;
        size_t n = 0;

        cJSON_ArrayForEach(it, labels)
        {
            n++;
        }
        ev->labels = vg_arena_alloc(dx->scratch, (n ? n : 1) * sizeof(*ev->labels));
        cJSON_ArrayForEach(it, labels)
        {
            /* check_labels: every value is a string within the limits */
            ev->labels[ev->n_labels].key = it->string;
            ev->labels[ev->n_labels].value = it->valuestring;
            ev->n_labels++;
        }
        vg_labels_sort(ev->labels, ev->n_labels);
    }
    /*
     * A pod carries no event time of its own: its newest transition
     * (conditions, container starts and finishes, creation) is the time of
     * what it reports; without any, the Kafka timestamp.
     */
    if (newest > 0) {
        ev->time_ms = newest;
    } else {
        ev->time_ms = dx->kafka_ts_ms >= 0 ? dx->kafka_ts_ms : vg_now_ms();
    }
    pod->time_ms = ev->time_ms;
    ev->kind = VG_EVENT_POD;
    ev->pod_deleted = watch && strcmp(watch, "DELETED") == 0;
    return VG_DECODE_OK;
}

/* ---- Event ------------------------------------------------------------ */

enum vg_decode_reason k8s_decode_event(struct vg_event *ev, const struct decode_ctx *dx,
                                       const cJSON *obj, const char *watch)
{
    static const char *const time_keys[] = {"lastTimestamp", "eventTime", "firstTimestamp"};
    const cJSON *meta;
    const cJSON *involved;
    const cJSON *labels = NULL;
    const cJSON *count;
    const char *ikind;
    const char *pod_name;
    const char *ns;
    const char *reason;
    const char *message;
    const char *type;
    enum vg_decode_reason r;
    int64_t t = 0;
    bool found = false;

    if ((r = check_kind(dx, obj, "Event"))) {
        return r;
    }
    if (watch && strcmp(watch, "DELETED") == 0) {
        /* Events expire: their deletion is not a new log line. */
        return decode_fail(dx, VG_DECODE_SKIP_IGNORED, "watch event DELETED of an Event");
    }
    meta = json_get(obj, "metadata");
    if (meta && !cJSON_IsNull(meta) && !cJSON_IsObject(meta)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "metadata: not an object");
    }
    involved = json_get(obj, "involvedObject");
    if (!involved) {
        involved = json_get(obj, "regarding"); /* events.k8s.io/v1 */
    }
    if (!cJSON_IsObject(involved)) {
        return decode_fail(dx, VG_DECODE_BAD_FIELD, "involvedObject: %s",
                           involved ? "not an object" : "missing");
    }
    ikind = json_str(involved, "kind");
    if (!ikind || strcmp(ikind, "Pod") != 0) {
        return decode_fail(dx, VG_DECODE_SKIP_IGNORED, "involvedObject.kind: %.60s, not a Pod",
                           ikind ? ikind : "missing");
    }
    if ((r = decode_string(dx, involved, "name", true,
                           min_size(K8S_NAME_MAX, dx->dc->max_name_bytes), true, &pod_name,
                           "involvedObject.")) ||
        (r = decode_string(dx, involved, "namespace", false,
                           min_size(K8S_NAME_MAX, dx->dc->max_name_bytes), true, &ns,
                           "involvedObject."))) {
        return r;
    }
    if (!ns && meta) {
        r = get_namespace(dx, meta, "metadata.", &ns);
        if (r) {
            return r;
        }
    }
    if (!ns) {
        ns = "default";
    }
    if (meta && (r = check_labels(dx, meta, &labels))) {
        return r;
    }
    if ((r = decode_string(dx, obj, "reason", false, dx->dc->max_name_bytes, false, &reason, "")) ||
        (r = decode_string(dx, obj, "type", false, dx->dc->max_name_bytes, false, &type, "")) ||
        (r = decode_string(dx, obj, "message", false, dx->dc->max_message_text_bytes, false,
                           &message, ""))) {
        return r;
    }
    if (!message && (r = decode_string(dx, obj, "note", false, dx->dc->max_message_text_bytes,
                                       false, &message, ""))) {
        return r;
    }
    ev->log_count = 1;
    count = json_get(obj, "count");
    if (count && !cJSON_IsNull(count)) {
        if (!num_i64(obj, "count", &ev->log_count) || ev->log_count < 0 ||
            ev->log_count > INT32_MAX) {
            return decode_fail(dx, VG_DECODE_BAD_FIELD, "count: not a count");
        }
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(time_keys) && !found; i++) {
        if ((r = decode_time(dx, obj, time_keys[i], "", &t, &found))) {
            return r;
        }
    }
    if (!found && meta &&
        (r = decode_time(dx, meta, "creationTimestamp", "metadata.", &t, &found))) {
        return r;
    }
    if (labels) {
        r = identity_from_labels(ev, dx, labels, ns);
        if (r && r != VG_DECODE_SKIP_NO_NAME_LABEL) {
            return r;
        }
        if (r) {
            /* not the pod's labels: map through the pod instead (cli/) */
            if (dx->detail && dx->detail_size) {
                dx->detail[0] = '\0';
            }
        }
    }
    ev->kind = VG_EVENT_K8S_EVENT;
    ev->time_ms = found ? t : (dx->kafka_ts_ms >= 0 ? dx->kafka_ts_ms : vg_now_ms());
    ev->log_pod = borrow(pod_name);
    ev->log_ns = borrow(ns);
    ev->log_reason = borrow(reason ? reason : "");
    ev->log_type = borrow(type ? type : "");
    ev->message = borrow(message);
    return VG_DECODE_OK;
}
