/*
 * A Resource as its Redis hash P:res:{ID}: the fields a commit writes
 * (all of them, or only those the Resource's dirty bits and names say
 * changed: state_resource_write) and the Resource read back from an
 * HGETALL (state_resource_from_reply), used by both the pipeline's
 * resolve and the read side. Commands are only queued here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define INC_FIELD_PREFIX "inc:"
#define POD_FIELD_PREFIX "pod:" /* one per tracked pod, JSON (vg_pod_to_json) */
#define FIELD_PREFIX_LEN 4      /* both of them */

static void field_incident(struct state_cmd *c, const struct vg_open_incident *inc)
{
    cJSON *obj = cJSON_CreateObject();
    char *json;

    if (!obj || !cJSON_AddStringToObject(obj, "id", inc->id ? inc->id : "") ||
        !cJSON_AddStringToObject(obj, "severity", inc->severity ? inc->severity : "") ||
        !cJSON_AddNumberToObject(obj, "started_at", (double)inc->started_at_ms) ||
        !cJSON_AddNumberToObject(obj, "seq", (double)inc->seq)) {
        vg_oom("incident JSON");
    }
    /* the entry's phase and rules/' private state (opaque here) */
    if ((inc->state && !cJSON_AddStringToObject(obj, "state", inc->state)) ||
        (inc->data && !cJSON_AddStringToObject(obj, "data", inc->data))) {
        vg_oom("incident JSON");
    }
    json = cJSON_PrintUnformatted(obj);
    if (!json) {
        vg_oom("incident JSON");
    }
    state_cmd_arg2(c, INC_FIELD_PREFIX, FIELD_PREFIX_LEN, inc->monitor, strlen(inc->monitor));
    state_cmd_str(c, json);
    cJSON_free(json);
    cJSON_Delete(obj);
}

static void field_pod(struct state_cmd *c, const struct vg_pod *pod)
{
    char *json = vg_pod_to_json(pod);

    state_cmd_arg2(c, POD_FIELD_PREFIX, FIELD_PREFIX_LEN, pod->name, strlen(pod->name));
    state_cmd_str(c, json);
    vg_free(json);
}

static void field_labels(struct state_cmd *c, const struct vg_resource *res)
{
    cJSON *obj = cJSON_CreateObject();
    char *json;

    if (!obj) {
        vg_oom("labels JSON");
    }
    for (size_t i = 0; i < res->n_labels; i++) {
        if (!cJSON_AddStringToObject(obj, res->labels[i].key, res->labels[i].value)) {
            vg_oom("labels JSON");
        }
    }
    json = cJSON_PrintUnformatted(obj);
    if (!json) {
        vg_oom("labels JSON");
    }
    state_cmd_field(c, "labels", json);
    cJSON_free(json);
    cJSON_Delete(obj);
}

/* The "labels" field back (sorted by key); false when unreadable. */
static bool parse_labels(struct vg_resource *res, const redisReply *v)
{
    cJSON *obj = cJSON_ParseWithLength(v->str, v->len);
    const cJSON *it;
    size_t n = 0;

    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return false;
    }
    cJSON_ArrayForEach(it, obj)
    {
        n += cJSON_IsString(it) ? 1 : 0;
    }
    vg_labels_free(res->labels, res->n_labels);
    res->labels = vg_calloc(n ? n : 1, sizeof(*res->labels));
    res->n_labels = 0;
    cJSON_ArrayForEach(it, obj)
    {
        if (cJSON_IsString(it)) {
            res->labels[res->n_labels].key = vg_strdup(it->string);
            res->labels[res->n_labels].value = vg_strdup(it->valuestring);
            res->n_labels++;
        }
    }
    cJSON_Delete(obj);
    return true;
}

void state_resource_fields(struct state_cmd *c, const struct vg_resource *res)
{
    state_cmd_field(c, "id", res->id);
    state_cmd_field(c, "type", res->type);
    state_cmd_field(c, "name", res->name);
    state_cmd_field(c, "workspace", res->workspace);
    state_cmd_field(c, "version", res->version);
    state_cmd_field(c, "owner", res->owner);
    state_cmd_field(c, "status", res->status);
    state_cmd_field(c, "runtime", res->runtime);
    state_cmd_field(c, "health", vg_health_name(res->health));
    state_cmd_field_i64(c, "status_since", res->status_since_ms);
    state_cmd_field_i64(c, "runtime_since", res->runtime_since_ms);
    if (res->health_since_ms) {
        state_cmd_field_i64(c, "health_since", res->health_since_ms);
    }
    state_cmd_field_i64(c, "updated_at", res->updated_at_ms);
    state_cmd_field_i64(c, "event_time", res->event_time_ms);
    if (res->message) {
        state_cmd_field(c, "message", res->message);
    }
    if (res->pos.topic) {
        state_cmd_field(c, "topic", res->pos.topic);
        state_cmd_field_i64(c, "partition", res->pos.partition);
        state_cmd_field_i64(c, "offset", res->pos.offset);
    }
    for (size_t i = 0; i < res->n_incidents; i++) {
        field_incident(c, &res->incidents[i]);
    }
    /* the Resource's labels, one JSON object */
    if (res->n_labels > 0) {
        field_labels(c, res);
    }
    /* what decided the runtime, and one field per tracked pod */
    if (res->runtime_reason) {
        state_cmd_field(c, "runtime_reason", res->runtime_reason);
    }
    if (res->runtime_pod) {
        state_cmd_field(c, "runtime_pod", res->runtime_pod);
    }
    for (size_t i = 0; i < res->n_pods; i++) {
        field_pod(c, &res->pods[i]);
    }
}

/* The fields of the parts in `mask` that have a value (name/value pairs). */
static void fields_of(struct state_cmd *c, const struct vg_resource *res, uint32_t mask)
{
    if (mask & VG_DIRTY_OWNER) {
        state_cmd_field(c, "owner", res->owner);
    }
    if (mask & VG_DIRTY_STATUS) {
        state_cmd_field(c, "status", res->status);
        state_cmd_field_i64(c, "status_since", res->status_since_ms);
    }
    if (mask & VG_DIRTY_RUNTIME) {
        state_cmd_field(c, "runtime", res->runtime);
        state_cmd_field_i64(c, "runtime_since", res->runtime_since_ms);
    }
    if (mask & VG_DIRTY_HEALTH) {
        state_cmd_field(c, "health", vg_health_name(res->health));
        if (res->health_since_ms) {
            state_cmd_field_i64(c, "health_since", res->health_since_ms);
        }
    }
    if ((mask & VG_DIRTY_MESSAGE) && res->message) {
        state_cmd_field(c, "message", res->message);
    }
    if (mask & VG_DIRTY_POSITION) {
        state_cmd_field_i64(c, "updated_at", res->updated_at_ms);
        state_cmd_field_i64(c, "event_time", res->event_time_ms);
        if (res->pos.topic) {
            state_cmd_field_i64(c, "offset", res->pos.offset);
        }
    }
    if ((mask & VG_DIRTY_SOURCE) && res->pos.topic) {
        state_cmd_field(c, "topic", res->pos.topic);
        state_cmd_field_i64(c, "partition", res->pos.partition);
    }
    if ((mask & VG_DIRTY_LABELS) && res->n_labels > 0) {
        field_labels(c, res);
    }
    if (mask & VG_DIRTY_RUNTIME_FROM) {
        if (res->runtime_reason) {
            state_cmd_field(c, "runtime_reason", res->runtime_reason);
        }
        if (res->runtime_pod) {
            state_cmd_field(c, "runtime_pod", res->runtime_pod);
        }
    }
}

/* The names of the fields of the parts in `mask` that have no value now (HDEL arguments). */
static void fields_gone(struct state_cmd *c, const struct vg_resource *res, uint32_t mask)
{
    if ((mask & VG_DIRTY_HEALTH) && !res->health_since_ms) {
        state_cmd_str(c, "health_since");
    }
    if ((mask & VG_DIRTY_MESSAGE) && !res->message) {
        state_cmd_str(c, "message");
    }
    if ((mask & VG_DIRTY_POSITION) && !res->pos.topic) {
        state_cmd_str(c, "offset");
    }
    if ((mask & VG_DIRTY_SOURCE) && !res->pos.topic) {
        state_cmd_str(c, "topic");
        state_cmd_str(c, "partition");
    }
    if ((mask & VG_DIRTY_LABELS) && res->n_labels == 0) {
        state_cmd_str(c, "labels");
    }
    if (mask & VG_DIRTY_RUNTIME_FROM) {
        if (!res->runtime_reason) {
            state_cmd_str(c, "runtime_reason");
        }
        if (!res->runtime_pod) {
            state_cmd_str(c, "runtime_pod");
        }
    }
}

static const char *dirty_prefix(const struct vg_dirty_name *dn)
{
    return dn->kind == VG_DIRTY_INCIDENT ? INC_FIELD_PREFIX : POD_FIELD_PREFIX;
}

/* The changed incident entry or pod `dn` as a field, if it is still there; false when gone. */
static bool field_named(struct state_cmd *c, const struct vg_resource *res,
                        const struct vg_dirty_name *dn)
{
    struct vg_resource *r = (struct vg_resource *)res; /* the finders take a mutable one */

    if (dn->kind == VG_DIRTY_INCIDENT) {
        const struct vg_open_incident *inc = vg_resource_find_incident(r, dn->name);

        if (inc) {
            field_incident(c, inc);
        }
        return inc != NULL;
    }
    {
        const struct vg_pod *pod = vg_resource_find_pod(r, dn->name);

        if (pod) {
            field_pod(c, pod);
        }
        return pod != NULL;
    }
}

void state_resource_queue_read(struct vg_state *st, struct state_cmd *c, const char *id)
{
    state_cmd_str(c, "HGETALL");
    state_cmd_key_res(c, st, "res", id);
    state_cmd_append(st, c);
}

size_t state_resource_write(struct vg_state *st, struct state_cmd *c, const struct vg_resource *res)
{
    uint32_t mask = res->dirty_mask;
    size_t queued = 0;
    size_t n_gone = 0;

    /* No bits and no names: changed, not saying how. Rewrite it. */
    if ((mask == 0 && res->n_dirty_names == 0) || (mask & VG_DIRTY_REPLACE)) {
        state_cmd_str(c, "DEL");
        state_cmd_key_res(c, st, "res", res->id);
        state_cmd_append(st, c);
        queued++;
        mask |= VG_DIRTY_WHOLE;
    }
    state_cmd_str(c, "HSET");
    state_cmd_key_res(c, st, "res", res->id);
    if (mask & VG_DIRTY_WHOLE) {
        /* nothing (left) in Redis: every field, nothing to delete */
        state_resource_fields(c, res);
        state_cmd_append(st, c);
        return queued + 1;
    }
    fields_of(c, res, mask);
    for (size_t i = 0; i < res->n_dirty_names; i++) {
        if (!field_named(c, res, &res->dirty_names[i])) {
            n_gone++;
        }
    }
    if (c->n > 2) {
        state_cmd_append(st, c);
        queued++;
    } else {
        state_cmd_reset(c);
    }
    state_cmd_str(c, "HDEL");
    state_cmd_key_res(c, st, "res", res->id);
    fields_gone(c, res, mask);
    for (size_t i = 0; n_gone > 0 && i < res->n_dirty_names; i++) {
        const struct vg_dirty_name *dn = &res->dirty_names[i];
        bool there = dn->kind == VG_DIRTY_INCIDENT
                         ? vg_resource_find_incident((struct vg_resource *)res, dn->name) != NULL
                         : vg_resource_find_pod((struct vg_resource *)res, dn->name) != NULL;

        if (!there) {
            state_cmd_arg2(c, dirty_prefix(dn), FIELD_PREFIX_LEN, dn->name, strlen(dn->name));
        }
    }
    if (c->n > 2) {
        state_cmd_append(st, c);
        queued++;
    } else {
        state_cmd_reset(c);
    }
    return queued;
}

static bool copy_value(char dst[VG_VALUE_MAX], const redisReply *v)
{
    if (v->len >= VG_VALUE_MAX || memchr(v->str, '\0', v->len)) {
        return false;
    }
    memcpy(dst, v->str, v->len);
    dst[v->len] = '\0';
    return true;
}

static void set_str(char **dst, const redisReply *v)
{
    vg_free(*dst);
    *dst = vg_strndup(v->str, v->len);
}

static bool parse_incident(struct vg_resource *res, const char *monitor, const redisReply *v)
{
    cJSON *obj = cJSON_ParseWithLength(v->str, v->len);
    const cJSON *id;
    const cJSON *sev;
    const cJSON *started;
    const cJSON *seq;
    struct vg_open_incident *inc;
    bool ok = false;

    if (!obj) {
        return false;
    }
    id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    sev = cJSON_GetObjectItemCaseSensitive(obj, "severity");
    started = cJSON_GetObjectItemCaseSensitive(obj, "started_at");
    seq = cJSON_GetObjectItemCaseSensitive(obj, "seq");
    /* started_at within what a double holds exactly (converting beyond int64 is undefined) */
    if (cJSON_IsString(id) && cJSON_IsString(sev) && cJSON_IsNumber(started) &&
        started->valuedouble >= -9.0e15 && started->valuedouble <= 9.0e15 && cJSON_IsNumber(seq) &&
        monitor[0] != '\0' && seq->valuedouble >= 0 && seq->valuedouble <= 2147483647.0) {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(obj, "state");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");

        inc = vg_resource_add_incident(res, monitor, id->valuestring, sev->valuestring,
                                       (int64_t)started->valuedouble);
        inc->seq = (int)seq->valuedouble;
        inc->state = cJSON_IsString(state) ? vg_strdup(state->valuestring) : NULL;
        inc->data = cJSON_IsString(data) ? vg_strdup(data->valuestring) : NULL;
        ok = true;
    }
    cJSON_Delete(obj);
    return ok;
}

static int cmp_incident(const void *a, const void *b)
{
    const struct vg_open_incident *ia = a;
    const struct vg_open_incident *ib = b;

    return strcmp(ia->monitor, ib->monitor);
}

struct vg_resource *state_resource_from_reply(const redisReply *r, char *why, size_t why_size)
{
    struct vg_resource *res = vg_calloc(1, sizeof(*res));
    const char *bad = NULL;
    /* id, type, name, workspace, version: read apart, kept in one block */
    enum { ID, TYPE, NAME, WORKSPACE, VERSION, N_IDENT };
    char *ident[N_IDENT] = {NULL};
    int64_t v;
    /* fields dropped as unreadable: deleted by the next write, as they always were */
    struct vg_dirty_name *drops = NULL;
    size_t n_drops = 0;
    size_t cap_drops = 0;
    bool labels_dropped = false;

    /* As vg_resource_new_from_event: no Kafka position yet. */
    res->pos.partition = -1;
    res->pos.offset = -1;

    if (r->elements % 2 != 0) {
        bad = "odd number of elements";
        goto fail;
    }
    for (size_t i = 0; i + 1 < r->elements && !bad; i += 2) {
        const redisReply *k = r->element[i];
        const redisReply *val = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING) {
            bad = "non-string element";
        } else if (memchr(k->str, '\0', k->len)) {
            /* None of ours (pod and monitor names are C strings): "pod:\0x" would read as a
             * pod named "" that is written back as another field. Ignored, as unknown ones. */
        } else if (state_reply_is(k, "id")) {
            set_str(&ident[ID], val);
        } else if (state_reply_is(k, "type")) {
            set_str(&ident[TYPE], val);
        } else if (state_reply_is(k, "name")) {
            set_str(&ident[NAME], val);
        } else if (state_reply_is(k, "workspace")) {
            set_str(&ident[WORKSPACE], val);
        } else if (state_reply_is(k, "version")) {
            set_str(&ident[VERSION], val);
        } else if (state_reply_is(k, "owner")) {
            set_str(&res->owner, val);
        } else if (state_reply_is(k, "labels")) {
            if (!parse_labels(res, val)) {
                labels_dropped = true;
                VG_LOG_WARN("state", "resource %s: dropping unreadable labels field",
                            ident[ID] ? ident[ID] : "?");
            }
        } else if (state_reply_is(k, "message")) {
            set_str(&res->message, val);
        } else if (state_reply_is(k, "topic")) {
            set_str(&res->pos.topic, val);
        } else if (state_reply_is(k, "status")) {
            bad = copy_value(res->status, val) ? NULL : "status";
        } else if (state_reply_is(k, "runtime")) {
            bad = copy_value(res->runtime, val) ? NULL : "runtime";
        } else if (state_reply_is(k, "health")) {
            res->health = vg_health_parse(val->str);
        } else if (state_reply_is(k, "status_since")) {
            bad = vg_parse_i64(val->str, &res->status_since_ms) ? NULL : "status_since";
        } else if (state_reply_is(k, "runtime_since")) {
            bad = vg_parse_i64(val->str, &res->runtime_since_ms) ? NULL : "runtime_since";
        } else if (state_reply_is(k, "health_since")) {
            bad = vg_parse_i64(val->str, &res->health_since_ms) ? NULL : "health_since";
        } else if (state_reply_is(k, "updated_at")) {
            bad = vg_parse_i64(val->str, &res->updated_at_ms) ? NULL : "updated_at";
        } else if (state_reply_is(k, "event_time")) {
            bad = vg_parse_i64(val->str, &res->event_time_ms) ? NULL : "event_time";
        } else if (state_reply_is(k, "offset")) {
            bad = vg_parse_i64(val->str, &res->pos.offset) ? NULL : "offset";
        } else if (state_reply_is(k, "partition")) {
            /* -1: no position, what a hash with a topic and no partition reads as (and is
             * then written back as) */
            if (vg_parse_i64(val->str, &v) && v >= -1 && v <= INT32_MAX) {
                res->pos.partition = (int32_t)v;
            } else {
                bad = "partition";
            }
        } else if (state_reply_is(k, "runtime_reason")) {
            vg_resource_set_runtime_from(res, val->str, res->runtime_pod);
        } else if (state_reply_is(k, "runtime_pod")) {
            vg_resource_set_runtime_from(res, res->runtime_reason, val->str);
        } else if (k->len > strlen(POD_FIELD_PREFIX) &&
                   memcmp(k->str, POD_FIELD_PREFIX, strlen(POD_FIELD_PREFIX)) == 0) {
            struct vg_pod pod;

            /* An unreadable pod is dropped: its next event brings it back. */
            if (vg_pod_from_json(&pod, k->str + strlen(POD_FIELD_PREFIX), val->str, val->len)) {
                vg_resource_put_pod(res, &pod);
                vg_pod_fini(&pod);
            } else {
                struct vg_dirty_name *dn = VG_ARRAY_PUSH(drops, n_drops, cap_drops);

                dn->kind = VG_DIRTY_POD;
                dn->name = vg_strdup(k->str + strlen(POD_FIELD_PREFIX));
                VG_LOG_WARN("state", "resource %s: dropping unreadable pod field %s",
                            ident[ID] ? ident[ID] : "?", k->str);
            }
        } else if (k->len > strlen(INC_FIELD_PREFIX) &&
                   memcmp(k->str, INC_FIELD_PREFIX, strlen(INC_FIELD_PREFIX)) == 0) {
            if (!parse_incident(res, k->str + strlen(INC_FIELD_PREFIX), val)) {
                struct vg_dirty_name *dn = VG_ARRAY_PUSH(drops, n_drops, cap_drops);

                /* One unreadable incident must not hide the Resource: drop it
                 * (its monitor reopens it if the condition still holds). */
                dn->kind = VG_DIRTY_INCIDENT;
                dn->name = vg_strdup(k->str + strlen(INC_FIELD_PREFIX));
                VG_LOG_WARN("state", "resource %s: dropping unreadable incident field %s",
                            ident[ID] ? ident[ID] : "?", k->str);
            }
        }
        /* Unknown fields are ignored: written by a newer vigil. */
    }
    if (!bad) {
        bad = !ident[ID]          ? "id missing"
              : !ident[TYPE]      ? "type missing"
              : !ident[NAME]      ? "name missing"
              : !ident[WORKSPACE] ? "workspace missing"
              : !ident[VERSION]   ? "version missing"
                                  : NULL;
    }
    if (bad) {
        goto fail;
    }
    vg_resource_set_identity(res, ident[ID], ident[TYPE], ident[VERSION], ident[NAME],
                             ident[WORKSPACE]);
    for (size_t i = 0; i < N_IDENT; i++) {
        vg_free(ident[i]);
    }
    if (!res->owner) {
        res->owner = vg_strdup("");
    }
    /* Hash field order is arbitrary: give incidents a stable order. */
    if (res->n_incidents > 1) {
        qsort(res->incidents, res->n_incidents, sizeof(*res->incidents), cmp_incident);
    }
    /* What was just read is what Redis holds, apart from what was dropped. */
    vg_resource_clean(res);
    if (labels_dropped) {
        res->dirty_mask |= VG_DIRTY_LABELS;
    }
    for (size_t i = 0; i < n_drops; i++) {
        vg_resource_touch_named(res, drops[i].kind, drops[i].name);
        vg_free(drops[i].name);
    }
    res->dirty = false; /* the drops go with the next write */
    vg_free(drops);
    return res;
fail:
    state_set_err(why, why_size, "%s", bad);
    for (size_t i = 0; i < N_IDENT; i++) {
        vg_free(ident[i]);
    }
    vg_resource_destroy(res);
    for (size_t i = 0; i < n_drops; i++) {
        vg_free(drops[i].name);
    }
    vg_free(drops);
    return NULL;
}
