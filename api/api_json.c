/*
 * The JSON of the API (docs/api.md): Resources in the shape of
 * `vigil get -o json` (list) and `vigil get ID -o json` (detail), history
 * entries as `vigil history -o json`, incidents and silences. Times are
 * RFC 3339 or null. The console and the stream use the same renderings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/util.h"

void api_time(int64_t ms, char *out, size_t out_size)
{
    if (ms <= 0) {
        out[0] = '\0';
        return;
    }
    vg_time_format_rfc3339(ms, out, out_size);
}

int64_t api_since_ms(const struct vg_resource *res)
{
    return res->status_since_ms > res->runtime_since_ms ? res->status_since_ms
                                                        : res->runtime_since_ms;
}

const char *api_health_name(enum vg_health h)
{
    return h == VG_HEALTH_UNKNOWN ? "unknown" : vg_health_name(h);
}

void api_json_str(struct vg_buf *b, const char *s)
{
    if (s) {
        vg_json_append_string(b, s);
    } else {
        vg_buf_puts(b, "null");
    }
}

void api_json_kv(struct vg_buf *b, const char *key, const char *value, bool first)
{
    if (!first) {
        vg_buf_puts(b, ", ");
    }
    vg_json_append_string(b, key);
    vg_buf_puts(b, ": ");
    api_json_str(b, value);
}

void api_json_kt(struct vg_buf *b, const char *key, int64_t ms)
{
    char ts[40];

    api_time(ms, ts, sizeof(ts));
    api_json_kv(b, key, ts[0] ? ts : NULL, false);
}

static void resource_fields(struct vg_buf *b, const struct vg_resource *res)
{
    api_json_kv(b, "id", res->id, true);
    api_json_kv(b, "name", res->name, false);
    api_json_kv(b, "version", res->version, false);
    api_json_kv(b, "type", res->type, false);
    api_json_kv(b, "workspace", res->workspace, false);
    api_json_kv(b, "status", res->status, false);
    api_json_kv(b, "runtime", res->runtime, false);
    api_json_kv(b, "owner", res->owner, false);
    api_json_kv(b, "health", vg_health_name(res->health), false);
    api_json_kt(b, "updated_at", res->updated_at_ms);
    api_json_kt(b, "since", api_since_ms(res));
    api_json_kt(b, "status_since", res->status_since_ms);
    api_json_kt(b, "runtime_since", res->runtime_since_ms);
    api_json_kt(b, "health_since", res->health_since_ms);
}

void api_json_resource(struct vg_buf *b, const struct vg_resource *res)
{
    vg_buf_putc(b, '{');
    resource_fields(b, res);
    vg_buf_putc(b, '}');
}

static void pods_json(struct vg_buf *b, const struct vg_resource *res)
{
    vg_buf_puts(b, ", \"pods\": [");
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *pod = &res->pods[i];
        size_t ready = 0;
        size_t regular = 0;

        for (size_t k = 0; k < pod->n_containers; k++) {
            if (!pod->containers[k].init) {
                regular++;
                ready += pod->containers[k].ready;
            }
        }
        vg_buf_puts(b, i ? ", {" : "{");
        api_json_kv(b, "name", pod->name, true);
        api_json_kv(b, "namespace", pod->ns, false);
        api_json_kv(b, "phase", pod->phase, false);
        api_json_kv(b, "reason", pod->reason, false);
        vg_buf_printf(b, ", \"ready\": %s, \"ready_containers\": \"%zu/%zu\", \"restarts\": %d",
                      pod->ready ? "true" : "false", ready, regular, (int)pod->restarts);
        api_json_kt(b, "last_transition", pod->last_transition_ms);
        vg_buf_puts(b, ", \"containers\": [");
        for (size_t k = 0; k < pod->n_containers; k++) {
            const struct vg_container *ct = &pod->containers[k];
            vg_buf_puts(b, k ? ", {" : "{");
            api_json_kv(b, "name", ct->name, true);
            vg_buf_printf(b, ", \"init\": %s, \"ready\": %s, \"restarts\": %d",
                          ct->init ? "true" : "false", ct->ready ? "true" : "false",
                          (int)ct->restarts);
            api_json_kv(b, "state", ct->state, false);
            api_json_kv(b, "reason", ct->reason, false);
            vg_buf_printf(b, ", \"exit_code\": %d}", (int)ct->exit_code);
        }
        vg_buf_puts(b, "]}");
    }
    vg_buf_putc(b, ']');
}

void api_json_resource_detail(struct vg_buf *b, const struct vg_resource *res)
{
    vg_buf_putc(b, '{');
    resource_fields(b, res);
    api_json_kv(b, "message", res->message, false);
    api_json_kv(b, "runtime_reason", res->runtime_reason, false);
    api_json_kv(b, "runtime_pod", res->runtime_pod, false);
    vg_buf_puts(b, ", \"position\": ");
    if (res->pos.topic) {
        vg_buf_puts(b, "{\"topic\": ");
        vg_json_append_string(b, res->pos.topic);
        vg_buf_printf(b, ", \"partition\": %d, \"offset\": %" PRId64 "}", (int)res->pos.partition,
                      res->pos.offset);
    } else {
        vg_buf_puts(b, "null");
    }
    vg_buf_puts(b, ", \"labels\": {");
    for (size_t i = 0; i < res->n_labels; i++) {
        if (i > 0) {
            vg_buf_puts(b, ", ");
        }
        vg_json_append_string(b, res->labels[i].key);
        vg_buf_puts(b, ": ");
        vg_json_append_string(b, res->labels[i].value);
    }
    vg_buf_puts(b, "}, \"incidents\": [");
    for (size_t i = 0, k = 0; i < res->n_incidents; i++) {
        const struct vg_open_incident *inc = &res->incidents[i];
        if (inc->state && strcmp(inc->state, "firing") != 0) {
            continue; /* pending or ended: not an open incident */
        }
        vg_buf_puts(b, k++ ? ", {" : "{");
        api_json_kv(b, "monitor", inc->monitor, true);
        api_json_kv(b, "id", inc->id, false);
        api_json_kv(b, "severity", inc->severity, false);
        api_json_kt(b, "started_at", inc->started_at_ms);
        vg_buf_printf(b, ", \"notifications\": %d}", inc->seq);
    }
    vg_buf_putc(b, ']');
    pods_json(b, res);
    vg_buf_putc(b, '}');
}

void api_json_history_entry(struct vg_buf *b, const struct vg_history_entry *e)
{
    vg_buf_puts(b, "{\"kind\": ");
    vg_json_append_string(b, e->field ? "transition" : "log");
    api_json_kv(b, "field", e->field, false);
    api_json_kv(b, "from", e->from && e->from[0] ? e->from : NULL, false);
    api_json_kv(b, "to", e->to, false);
    api_json_kt(b, "time", e->at_ms);
    api_json_kv(b, "topic", e->pos.topic, false);
    if (e->pos.topic) {
        vg_buf_printf(b, ", \"partition\": %d, \"offset\": %" PRId64, (int)e->pos.partition,
                      e->pos.offset);
    } else {
        vg_buf_puts(b, ", \"partition\": null, \"offset\": null");
    }
    api_json_kv(b, "message", e->message, false);
    api_json_kv(b, "stream_id", e->stream_id, false);
    vg_buf_puts(b, ", \"extra\": {");
    for (size_t k = 0; k < e->n_extra; k++) {
        if (k > 0) {
            vg_buf_puts(b, ", ");
        }
        vg_json_append_string(b, e->extra[2 * k]);
        vg_buf_puts(b, ": ");
        vg_json_append_string(b, e->extra[2 * k + 1]);
    }
    vg_buf_puts(b, "}}");
}

void api_json_incident(struct vg_buf *b, const struct vg_incident_record *r, int64_t now_ms)
{
    int64_t end = r->ended_at_ms > 0 ? r->ended_at_ms : now_ms;

    vg_buf_putc(b, '{');
    api_json_kv(b, "id", r->id, true);
    api_json_kv(b, "monitor", r->monitor, false);
    api_json_kv(b, "resource", r->resource, false);
    api_json_kv(b, "severity", r->severity, false);
    api_json_kv(b, "type", r->incident_type, false);
    api_json_kv(b, "status", r->state, false);
    api_json_kv(b, "summary", r->summary, false);
    api_json_kv(b, "description", r->description, false);
    api_json_kt(b, "started_at", r->started_at_ms);
    api_json_kt(b, "ended_at", r->ended_at_ms);
    api_json_kt(b, "updated_at", r->updated_at_ms);
    vg_buf_printf(b, ", \"duration_s\": %" PRId64,
                  end > r->started_at_ms ? (end - r->started_at_ms) / 1000 : 0);
    vg_buf_printf(b, ", \"notifications\": %d, \"silenced\": %s, \"inhibited\": %s", r->seq,
                  r->silenced ? "true" : "false", r->inhibited ? "true" : "false");
    vg_buf_puts(b, ", \"labels\": {");
    for (size_t i = 0; i < r->n_labels; i++) {
        if (i > 0) {
            vg_buf_puts(b, ", ");
        }
        vg_json_append_string(b, r->labels[i].key);
        vg_buf_puts(b, ": ");
        vg_json_append_string(b, r->labels[i].value);
    }
    vg_buf_puts(b, "}}");
}

void api_json_silence(struct vg_buf *b, const struct vg_silence *s, int64_t now_ms)
{
    const char *state = now_ms < s->starts_at_ms ? "pending"
                        : now_ms < s->ends_at_ms ? "active"
                                                 : "expired";

    vg_buf_putc(b, '{');
    api_json_kv(b, "id", s->id, true);
    vg_buf_puts(b, ", \"matchers\": [");
    for (size_t i = 0; i < s->n_matchers; i++) {
        if (i > 0) {
            vg_buf_puts(b, ", ");
        }
        vg_json_append_string(b, s->matchers[i]);
    }
    vg_buf_putc(b, ']');
    api_json_kt(b, "starts_at", s->starts_at_ms);
    api_json_kt(b, "ends_at", s->ends_at_ms);
    api_json_kv(b, "status", state, false);
    api_json_kv(b, "comment", s->comment, false);
    api_json_kv(b, "created_by", s->created_by, false);
    vg_buf_putc(b, '}');
}
