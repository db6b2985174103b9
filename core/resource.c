/*
 * Applying one decoded event to a Resource's current state: the
 * transitions it causes and the new health, the pod set and the runtime
 * derived from it, and the ordering rule: an event older than
 * what the state reflects does not move it (docs/events.md, "Order").
 * Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/mem.h"

/* Copy `src` cut to VG_VALUE_MAX - 1 bytes (as snprintf would; NULL: ""). On the hot path:
 * several times per event, so no formatting call. */
static void set_value(char dst[VG_VALUE_MAX], const char *src)
{
    size_t n = src ? strnlen(src, VG_VALUE_MAX - 1) : 0;

    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static struct vg_transition *add_transition(struct vg_transition out[3], size_t *n, enum vg_field f,
                                            const char *from, const char *to,
                                            struct vg_resource *res, const struct vg_event *ev)
{
    struct vg_transition *t = &out[(*n)++];
    t->field = f;
    set_value(t->from, from);
    set_value(t->to, to);
    t->at_ms = ev->time_ms;
    t->res = res;
    t->ev = ev;
    t->reason[0] = '\0';
    t->pod[0] = '\0';
    return t;
}

/* ---- what changed ----------------------------------------------------- */

void vg_resource_touch(struct vg_resource *res, uint32_t bits)
{
    res->dirty_mask |= bits;
    res->dirty = true;
}

void vg_resource_touch_named(struct vg_resource *res, enum vg_dirty_kind kind, const char *name)
{
    struct vg_dirty_name *dn;

    res->dirty = true;
    /* A few names per batch at most: a scan beats a set. */
    for (size_t i = 0; i < res->n_dirty_names; i++) {
        if (res->dirty_names[i].kind == kind && strcmp(res->dirty_names[i].name, name) == 0) {
            return;
        }
    }
    dn = VG_ARRAY_PUSH(res->dirty_names, res->n_dirty_names, res->cap_dirty_names);
    dn->kind = kind;
    dn->name = vg_strdup(name);
}

void vg_resource_clean(struct vg_resource *res)
{
    for (size_t i = 0; i < res->n_dirty_names; i++) {
        free(res->dirty_names[i].name);
    }
    res->n_dirty_names = 0;
    res->dirty_mask = 0;
    res->dirty = false;
}

/* ---- the pod set ------------------------------------------------------ */

struct vg_pod *vg_resource_find_pod(struct vg_resource *res, const char *name)
{
    for (size_t i = 0; i < res->n_pods; i++) {
        if (strcmp(res->pods[i].name, name) == 0) {
            return &res->pods[i];
        }
    }
    return NULL;
}

void vg_resource_put_pod(struct vg_resource *res, const struct vg_pod *pod)
{
    struct vg_pod *slot = vg_resource_find_pod(res, pod->name);
    size_t at = 0;

    if (slot) {
        vg_pod_fini(slot);
        vg_pod_copy(slot, pod);
        return;
    }
    while (at < res->n_pods && strcmp(res->pods[at].name, pod->name) < 0) {
        at++;
    }
    VG_ARRAY_PUSH(res->pods, res->n_pods, res->cap_pods);
    memmove(&res->pods[at + 1], &res->pods[at], (res->n_pods - 1 - at) * sizeof(*res->pods));
    vg_pod_copy(&res->pods[at], pod);
}

bool vg_resource_remove_pod(struct vg_resource *res, const char *name)
{
    struct vg_pod *slot = vg_resource_find_pod(res, name);
    size_t at;

    if (!slot) {
        return false;
    }
    at = (size_t)(slot - res->pods);
    vg_pod_fini(slot);
    memmove(&res->pods[at], &res->pods[at + 1], (res->n_pods - at - 1) * sizeof(*res->pods));
    res->n_pods--;
    return true;
}

/* ---- what decided the runtime ------------------------------------------ */

/* Replace *dst by the first `max - 1` bytes of `src` (NULL or "": none); true on change. */
static bool set_opt_str(char **dst, const char *src, size_t max)
{
    size_t len = src ? strnlen(src, max - 1) : 0;

    if (len == 0) {
        if (!*dst) {
            return false;
        }
        free(*dst);
        *dst = NULL;
        return true;
    }
    if (*dst && strncmp(*dst, src, len) == 0 && (*dst)[len] == '\0') {
        return false;
    }
    free(*dst);
    *dst = vg_strndup(src, len);
    return true;
}

bool vg_resource_set_runtime_from(struct vg_resource *res, const char *reason, const char *pod)
{
    bool changed = set_opt_str(&res->runtime_reason, reason, VG_REASON_MAX);

    return set_opt_str(&res->runtime_pod, pod, VG_POD_NAME_MAX) || changed;
}

/* ---- ordering --------------------------------------------------------- */

bool vg_resource_is_late(const struct vg_resource *res, const struct vg_event *ev)
{
    int64_t newest = res->seen_ms > res->event_time_ms ? res->seen_ms : res->event_time_ms;

    if (ev->kind == VG_EVENT_K8S_EVENT || !newest) {
        return false;
    }
    if (ev->time_ms != newest) {
        return ev->time_ms < newest;
    }
    /* Equal times apply, unless the same partition already reflects a later offset. */
    return ev->pos.topic && res->pos.topic && strcmp(ev->pos.topic, res->pos.topic) == 0 &&
           ev->pos.partition == res->pos.partition && ev->pos.offset < res->pos.offset;
}

size_t vg_event_late_values(const struct vg_event *ev, enum vg_field fields[2],
                            char values[2][VG_VALUE_MAX], char reason[VG_REASON_MAX])
{
    size_t n = 0;

    reason[0] = '\0';
    if (ev->kind == VG_EVENT_POD) {
        fields[0] = VG_FIELD_RUNTIME;
        if (ev->pod_deleted) {
            values[0][0] = '\0';
            snprintf(reason, VG_REASON_MAX, "%s", "Deleted");
        } else {
            set_value(values[0], vg_pods_runtime(ev->pod, 1, NULL, reason));
        }
        return 1;
    }
    if (ev->kind != VG_EVENT_NATIVE) {
        return 0;
    }
    if (ev->status[0]) {
        fields[n] = VG_FIELD_STATUS;
        set_value(values[n++], ev->status);
    }
    if (ev->runtime[0]) {
        fields[n] = VG_FIELD_RUNTIME;
        set_value(values[n++], ev->runtime);
    }
    return n;
}

/* ---- apply ------------------------------------------------------------ */

/*
 * A pod event: update the set, then derive the runtime from it. An empty
 * set (the last pod was deleted) keeps the last runtime: a Resource scaled
 * to zero or being replaced is not "pending", and the native `status:
 * deleted` is what says it is gone. Returns the derived runtime or NULL;
 * `*from_changed` says whether the deciding pod or reason changed.
 */
static const char *apply_pod(struct vg_resource *res, const struct vg_event *ev, bool *from_changed)
{
    const struct vg_pod *decider = NULL;
    const char *runtime;
    char reason[VG_REASON_MAX];

    *from_changed = false;
    if (ev->pod_deleted) {
        vg_resource_remove_pod(res, ev->pod->name);
    } else {
        vg_resource_put_pod(res, ev->pod);
    }
    vg_resource_touch_named(res, VG_DIRTY_POD, ev->pod->name);
    if (res->n_pods == 0) {
        return NULL;
    }
    runtime = vg_pods_runtime(res->pods, res->n_pods, &decider, reason);
    *from_changed = vg_resource_set_runtime_from(res, reason, decider ? decider->name : NULL);
    return runtime;
}

size_t vg_resource_apply(const struct vg_health_config *hc, struct vg_resource *res,
                         const struct vg_event *ev, struct vg_transition out[3])
{
    uint32_t position = VG_DIRTY_POSITION;
    size_t n = 0;
    enum vg_health old_health = res->health;
    enum vg_health new_health;
    char old_status[VG_VALUE_MAX];
    char old_runtime[VG_VALUE_MAX];
    const char *runtime = ev->runtime[0] ? ev->runtime : NULL;
    bool from_pods = ev->kind == VG_EVENT_POD;
    bool changed;

    /* Log lines do not touch state; late events are recorded by the caller, not applied. */
    if (ev->kind == VG_EVENT_K8S_EVENT || vg_resource_is_late(res, ev)) {
        return 0;
    }
    set_value(old_status, res->status);
    set_value(old_runtime, res->runtime);

    if (from_pods) {
        bool from_changed;

        runtime = apply_pod(res, ev, &from_changed);
        if (from_changed) {
            res->dirty_mask |= VG_DIRTY_RUNTIME_FROM;
        }
    } else if (runtime && vg_resource_set_runtime_from(res, NULL, NULL)) {
        /* A native runtime says nothing about pods: forget which pod decided
         * (written with the next change, as it always was). */
        res->dirty_mask |= VG_DIRTY_RUNTIME_FROM;
    }
    if (ev->status[0] && strcmp(ev->status, res->status) != 0) {
        add_transition(out, &n, VG_FIELD_STATUS, old_status, ev->status, res, ev);
        set_value(res->status, ev->status);
        res->status_since_ms = ev->time_ms;
        res->dirty_mask |= VG_DIRTY_STATUS;
    }
    if (runtime && strcmp(runtime, res->runtime) != 0) {
        add_transition(out, &n, VG_FIELD_RUNTIME, old_runtime, runtime, res, ev);
        set_value(res->runtime, runtime);
        res->runtime_since_ms = ev->time_ms;
        res->dirty_mask |= VG_DIRTY_RUNTIME;
    }
    new_health = vg_health_compute(hc, res->type, res->status, res->runtime);
    if (new_health != old_health) {
        add_transition(out, &n, VG_FIELD_HEALTH, vg_health_name(old_health),
                       vg_health_name(new_health), res, ev);
        res->health = new_health;
        res->health_since_ms = ev->time_ms; /* `vigil get ID` shows since when */
        res->dirty_mask |= VG_DIRTY_HEALTH;
    }
    if (from_pods) {
        /* The pod and reason that decided the runtime travel with every transition it caused. */
        for (size_t i = 0; i < n; i++) {
            snprintf(out[i].reason, sizeof(out[i].reason), "%s",
                     res->runtime_reason ? res->runtime_reason : "");
            snprintf(out[i].pod, sizeof(out[i].pod), "%s",
                     res->runtime_pod ? res->runtime_pod : "");
        }
    }
    changed = n > 0 || from_pods;
    if (ev->owner && ev->owner[0] && strcmp(ev->owner, res->owner) != 0) {
        free(res->owner);
        res->owner = vg_strdup(ev->owner);
        res->dirty_mask |= VG_DIRTY_OWNER;
        changed = true;
    }
    if (ev->message && (!res->message || strcmp(ev->message, res->message) != 0)) {
        free(res->message);
        res->message = vg_strdup(ev->message);
        res->dirty_mask |= VG_DIRTY_MESSAGE;
        changed = true;
    }
    if (ev->time_ms > res->seen_ms) {
        res->seen_ms = ev->time_ms;
    }
    if (!changed) {
        /*
         * An event that changes nothing (a heartbeat) writes nothing: the
         * stored Resource says when it last changed. Only the cache learns
         * that it was seen, so that an older event arriving later is late.
         */
        return 0;
    }
    res->updated_at_ms = ev->time_ms;
    res->event_time_ms = ev->time_ms;
    if (ev->pos.topic) {
        if (!res->pos.topic || strcmp(res->pos.topic, ev->pos.topic) != 0) {
            free(res->pos.topic);
            res->pos.topic = vg_strdup(ev->pos.topic);
            position |= VG_DIRTY_SOURCE;
        }
    }
    if (res->pos.partition != ev->pos.partition) {
        res->pos.partition = ev->pos.partition;
        position |= VG_DIRTY_SOURCE;
    }
    res->pos.offset = ev->pos.offset;
    vg_resource_touch(res, position);
    return n;
}
