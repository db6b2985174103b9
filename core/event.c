/*
 * The Resource model: health, names, Resource lifetime and its open
 * incidents. Applying events lives in resource.c, decoding in
 * event_decode.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event_int.h"
#include "vigil/event.h"
#include "vigil/mem.h"

const char *vg_health_name(enum vg_health h)
{
    switch (h) {
    case VG_HEALTH_HEALTHY:
        return "healthy";
    case VG_HEALTH_PROGRESSING:
        return "progressing";
    case VG_HEALTH_UNHEALTHY:
        return "unhealthy";
    case VG_HEALTH_UNKNOWN:
        break;
    }
    return "";
}

enum vg_health vg_health_parse(const char *s)
{
    if (strcmp(s, "healthy") == 0) {
        return VG_HEALTH_HEALTHY;
    }
    if (strcmp(s, "progressing") == 0) {
        return VG_HEALTH_PROGRESSING;
    }
    if (strcmp(s, "unhealthy") == 0) {
        return VG_HEALTH_UNHEALTHY;
    }
    return VG_HEALTH_UNKNOWN;
}

static bool is_batch_type(const struct vg_health_config *hc, const char *type)
{
    for (size_t i = 0; i < hc->n_batch_types; i++) {
        if (strcmp(hc->batch_types[i], type) == 0) {
            return true;
        }
    }
    return false;
}

enum vg_health vg_health_compute(const struct vg_health_config *hc, const char *type,
                                 const char *status, const char *runtime)
{
    if (strcmp(status, "error") == 0 || strcmp(status, "deleted") == 0 ||
        strcmp(runtime, "failed") == 0) {
        return VG_HEALTH_UNHEALTHY;
    }
    if (strcmp(status, "active") == 0) {
        const char *want = is_batch_type(hc, type) ? "succeeded" : "running";
        if (strcmp(runtime, want) == 0) {
            return VG_HEALTH_HEALTHY;
        }
    }
    return VG_HEALTH_PROGRESSING;
}

const char *vg_field_name(enum vg_field f)
{
    switch (f) {
    case VG_FIELD_STATUS:
        return "status";
    case VG_FIELD_RUNTIME:
        return "runtime";
    case VG_FIELD_HEALTH:
        return "health";
    }
    return "?";
}

char *vg_resource_id(const char *type, const char *version, const char *name, const char *workspace)
{
    /* Per event: plain copies, no printf. */
    const char *parts[4] = {type, version, name, workspace};
    size_t len[4];
    size_t total = 4;
    char *id;
    char *p;

    for (size_t i = 0; i < 4; i++) {
        len[i] = strlen(parts[i]);
        total += len[i];
    }
    id = vg_malloc(total);
    p = id;
    for (size_t i = 0; i < 4; i++) {
        memcpy(p, parts[i], len[i]);
        p += len[i];
        *p++ = i < 3 ? ':' : '\0';
    }
    return id;
}

/* Whether `p` points into the block decoding allocated for `ev`. */
static bool in_block(const struct vg_event *ev, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    uintptr_t start = (uintptr_t)ev->block;

    return ev->block && u >= start && u - start < ev->block_size;
}

void event_free_string(const struct vg_event *ev, char *s)
{
    if (!in_block(ev, s)) {
        free(s);
    }
}

void vg_event_fini(struct vg_event *ev)
{
    event_free_string(ev, ev->id);
    event_free_string(ev, ev->type);
    event_free_string(ev, ev->name);
    event_free_string(ev, ev->workspace);
    event_free_string(ev, ev->version);
    event_free_string(ev, ev->owner);
    event_free_string(ev, ev->message);
    free(ev->pos.topic); /* set by the caller, never in the block */
    if (ev->pod && !in_block(ev, ev->pod)) {
        vg_pod_fini(ev->pod);
        free(ev->pod);
    }
    event_free_string(ev, ev->log_pod);
    event_free_string(ev, ev->log_ns);
    event_free_string(ev, ev->log_reason);
    event_free_string(ev, ev->log_type);
    vg_labels_free(ev->labels, ev->n_labels);
    free(ev->block);
    memset(ev, 0, sizeof(*ev));
}

void vg_resource_set_identity(struct vg_resource *res, const char *id, const char *type,
                              const char *version, const char *name, const char *workspace)
{
    /* One block instead of five: a cached Resource pays one malloc header and one rounding. */
    const char *part[5] = {id, type, name, workspace, version};
    size_t len[5];
    size_t total = 0;
    char *block;
    char *p;

    for (size_t i = 0; i < 5; i++) {
        len[i] = strlen(part[i]);
        total += len[i] + 1;
    }
    block = vg_malloc(total);
    p = block;
    for (size_t i = 0; i < 5; i++) {
        memcpy(p, part[i], len[i] + 1);
        p += len[i] + 1;
    }
    free(res->id);
    res->id = block;
    res->type = block + len[0] + 1;
    res->name = res->type + len[1] + 1;
    res->workspace = res->name + len[2] + 1;
    res->version = res->workspace + len[3] + 1;
}

struct vg_resource *vg_resource_new_from_event(const struct vg_event *ev)
{
    struct vg_resource *res = vg_calloc(1, sizeof(*res));

    vg_resource_set_identity(res, ev->id, ev->type, ev->version, ev->name, ev->workspace);
    res->owner = vg_strdup(ev->owner ? ev->owner : "");
    res->pos.partition = -1;
    res->pos.offset = -1;
    /* Not known to be in Redis: its first write is whole (state/ may know better). */
    res->dirty_mask = VG_DIRTY_REPLACE;
    return res;
}

static void incident_fini(struct vg_open_incident *inc)
{
    free(inc->monitor);
    free(inc->id);
    free(inc->severity);
    free(inc->state);
    free(inc->data);
    memset(inc, 0, sizeof(*inc));
}

void vg_labels_free(struct vg_label *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

struct vg_label *vg_labels_copy(const struct vg_label *v, size_t n)
{
    struct vg_label *out;

    if (n == 0) {
        return NULL;
    }
    out = vg_calloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        out[i].key = vg_strdup(v[i].key);
        out[i].value = vg_strdup(v[i].value);
    }
    return out;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct vg_label *)a)->key, ((const struct vg_label *)b)->key);
}

void vg_labels_sort(struct vg_label *v, size_t n)
{
    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_label);
    }
}

bool vg_resource_set_labels(struct vg_resource *res, const struct vg_event *ev)
{
    bool same = ev->n_labels == res->n_labels;

    if (ev->n_labels == 0) {
        return false;
    }
    for (size_t i = 0; i < ev->n_labels && same; i++) {
        same = strcmp(ev->labels[i].key, res->labels[i].key) == 0 &&
               strcmp(ev->labels[i].value, res->labels[i].value) == 0;
    }
    if (same) {
        return false;
    }
    vg_labels_free(res->labels, res->n_labels);
    res->labels = vg_labels_copy(ev->labels, ev->n_labels);
    res->n_labels = ev->n_labels;
    vg_labels_sort(res->labels, res->n_labels);
    vg_resource_touch(res, VG_DIRTY_LABELS);
    return true;
}

const char *vg_labels_get(const struct vg_label *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].key, key) == 0) {
            return v[i].value;
        }
    }
    return NULL;
}

void vg_resource_destroy(struct vg_resource *res)
{
    if (!res) {
        return;
    }
    free(res->id); /* and type, name, workspace, version: one block */
    free(res->owner);
    free(res->message);
    free(res->pos.topic);
    free(res->runtime_reason);
    free(res->runtime_pod);
    for (size_t i = 0; i < res->n_incidents; i++) {
        incident_fini(&res->incidents[i]);
    }
    free(res->incidents);
    vg_labels_free(res->labels, res->n_labels);
    for (size_t i = 0; i < res->n_pods; i++) {
        vg_pod_fini(&res->pods[i]);
    }
    free(res->pods);
    vg_resource_clean(res);
    free(res->dirty_names);
    free(res);
}

struct vg_open_incident *vg_resource_find_incident(struct vg_resource *res, const char *monitor)
{
    for (size_t i = 0; i < res->n_incidents; i++) {
        if (strcmp(res->incidents[i].monitor, monitor) == 0) {
            return &res->incidents[i];
        }
    }
    return NULL;
}

struct vg_open_incident *vg_resource_add_incident(struct vg_resource *res, const char *monitor,
                                                  const char *id, const char *severity,
                                                  int64_t started_at_ms)
{
    struct vg_open_incident *inc = vg_resource_find_incident(res, monitor);
    if (inc) {
        incident_fini(inc);
    } else {
        inc = VG_ARRAY_PUSH(res->incidents, res->n_incidents, res->cap_incidents);
        memset(inc, 0, sizeof(*inc));
    }
    inc->monitor = vg_strdup(monitor);
    inc->id = vg_strdup(id);
    inc->severity = vg_strdup(severity);
    inc->started_at_ms = started_at_ms;
    inc->seq = 0;
    vg_resource_touch_named(res, VG_DIRTY_INCIDENT, monitor);
    return inc;
}

void vg_resource_remove_incident(struct vg_resource *res, const char *monitor)
{
    for (size_t i = 0; i < res->n_incidents; i++) {
        if (strcmp(res->incidents[i].monitor, monitor) == 0) {
            vg_resource_touch_named(res, VG_DIRTY_INCIDENT, monitor);
            incident_fini(&res->incidents[i]);
            memmove(&res->incidents[i], &res->incidents[i + 1],
                    (res->n_incidents - i - 1) * sizeof(res->incidents[0]));
            res->n_incidents--;
            return;
        }
    }
}
