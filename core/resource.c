/*
 * Applying one decoded event to a Resource's current state: the
 * transitions it causes and the new health. Pure; ordering against
 * older events (event time) is decided here too: an event older than
 * what the state reflects does not move state backwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/mem.h"

static void set_value(char dst[VG_VALUE_MAX], const char *src)
{
    snprintf(dst, VG_VALUE_MAX, "%s", src);
}

static struct vg_transition *add_transition(struct vg_transition out[3], size_t *n,
                                            enum vg_field f, const char *from, const char *to,
                                            struct vg_resource *res, const struct vg_event *ev)
{
    struct vg_transition *t = &out[(*n)++];
    t->field = f;
    set_value(t->from, from);
    set_value(t->to, to);
    t->at_ms = ev->time_ms;
    t->res = res;
    t->ev = ev;
    return t;
}

size_t vg_resource_apply(const struct vg_health_config *hc, struct vg_resource *res,
                         const struct vg_event *ev, struct vg_transition out[3])
{
    size_t n = 0;
    enum vg_health old_health = res->health;
    enum vg_health new_health;
    char old_status[VG_VALUE_MAX];
    char old_runtime[VG_VALUE_MAX];

    /*
     * An event older than the newest one applied must not move state back
     * (issue 4 records such events in history as late; here they only
     * leave the state untouched).
     */
    if (res->event_time_ms && ev->time_ms < res->event_time_ms) {
        return 0;
    }
    set_value(old_status, res->status);
    set_value(old_runtime, res->runtime);

    if (ev->status[0] && strcmp(ev->status, res->status) != 0) {
        add_transition(out, &n, VG_FIELD_STATUS, old_status, ev->status, res, ev);
        set_value(res->status, ev->status);
        res->status_since_ms = ev->time_ms;
    }
    if (ev->runtime[0] && strcmp(ev->runtime, res->runtime) != 0) {
        add_transition(out, &n, VG_FIELD_RUNTIME, old_runtime, ev->runtime, res, ev);
        set_value(res->runtime, ev->runtime);
        res->runtime_since_ms = ev->time_ms;
    }
    new_health = vg_health_compute(hc, res->type, res->status, res->runtime);
    if (new_health != old_health) {
        add_transition(out, &n, VG_FIELD_HEALTH, vg_health_name(old_health),
                       vg_health_name(new_health), res, ev);
        res->health = new_health;
    }
    if (ev->owner && ev->owner[0] && strcmp(ev->owner, res->owner) != 0) {
        free(res->owner);
        res->owner = vg_strdup(ev->owner);
    }
    if (ev->message) {
        free(res->message);
        res->message = vg_strdup(ev->message);
    }
    res->updated_at_ms = ev->time_ms;
    res->event_time_ms = ev->time_ms;
    if (ev->pos.topic) {
        if (!res->pos.topic || strcmp(res->pos.topic, ev->pos.topic) != 0) {
            free(res->pos.topic);
            res->pos.topic = vg_strdup(ev->pos.topic);
        }
    }
    res->pos.partition = ev->pos.partition;
    res->pos.offset = ev->pos.offset;
    res->dirty = true;
    return n;
}
