/*
 * The PagerDuty sink: Events API v2 (POST /v2/enqueue). A firing notice
 * triggers an alert and any other (resolved, stale, deleted) resolves it;
 * dedup_key is the incident id, so PagerDuty folds repeats into one alert
 * and the resolve finds it. A grouped page sends one event per incident,
 * one request after the other (a retry resumes at the incident that
 * failed). The routing key is a secret. Sending and classifying the answer
 * (202 ok, 400 rejected, 429 and 5xx retried) are sinks_http.c's.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/util.h"

#define DEFAULT_URL "https://events.pagerduty.com/v2/enqueue"
#define SUMMARY_MAX 1024 /* the API's limit on payload.summary */
#define SOURCE_MAX 255
#define DEDUP_MAX 255

/* vigil's severities onto the four PagerDuty knows. */
static const char *pd_severity(const char *severity)
{
    static const struct {
        const char *vigil;
        const char *pd;
    } map[] = {{"critical", "critical"},
               {"high", "error"},
               {"medium", "warning"},
               {"low", "info"},
               {"info", "info"}};

    for (size_t i = 0; i < VG_ARRAY_LEN(map); i++) {
        if (!strcmp(map[i].vigil, severity)) {
            return map[i].pd;
        }
    }
    return "error"; /* an unknown severity still pages: err on the loud side */
}

static void add_cut(cJSON *o, const char *key, const char *value, size_t max)
{
    char *cut = sinks_truncate_utf8(value, max);

    cJSON_AddStringToObject(o, key, cut);
    vg_free(cut);
}

/* A copy of `obj` (a part of the notice) under `key`, when it is there. */
static void add_copy(cJSON *o, const char *key, const void *obj)
{
    if (obj) {
        cJSON *dup = cJSON_Duplicate((const cJSON *)obj, true);
        if (!dup) {
            vg_oom("cJSON_Duplicate");
        }
        cJSON_AddItemToObject(o, key, dup);
    }
}

char *sinks_pagerduty_render(const struct sink *s, const struct sinks_notice *nt, int step)
{
    size_t i = step > 0 ? (size_t)step : 0;
    const struct sinks_notice_item *it;
    cJSON *root = cJSON_CreateObject();
    const char *inc_id;
    char *out;

    if (i >= nt->n_items) {
        i = nt->n_items - 1;
    }
    it = &nt->items[i];
    inc_id = sinks_notice_str(it->incident, "id");
    cJSON_AddStringToObject(root, "routing_key", s->routing_key);
    cJSON_AddStringToObject(root, "event_action",
                            !strcmp(it->status, "firing") ? "trigger" : "resolve");
    add_cut(root, "dedup_key", inc_id, DEDUP_MAX);
    if (!strcmp(it->status, "firing")) {
        const char *severity = sinks_notice_str(it->incident, "severity");
        const char *summary = sinks_notice_str(it->incident, "summary");
        const char *res_id = sinks_notice_str(it->resource, "id");
        const char *started = sinks_notice_str(it->incident, "started_at");
        cJSON *payload = cJSON_CreateObject();
        cJSON *details = cJSON_CreateObject();
        char *link = sinks_console_link(s->console_url, res_id);
        struct vg_buf b = {0};
        char word[32];

        sinks_status_word(word, sizeof(word), "firing", severity);
        vg_buf_printf(&b, "[%s] %s: %s", word, sinks_notice_str(it->incident, "monitor"),
                      summary[0] ? summary : res_id);
        add_cut(payload, "summary", b.data, SUMMARY_MAX);
        add_cut(payload, "source", res_id[0] ? res_id : "vigil", SOURCE_MAX);
        cJSON_AddStringToObject(payload, "severity", pd_severity(severity));
        if (started[0]) {
            cJSON_AddStringToObject(payload, "timestamp", started);
        }
        add_cut(payload, "component", sinks_notice_str(it->resource, "name"), SOURCE_MAX);
        add_cut(payload, "group", sinks_notice_str(it->resource, "workspace"), SOURCE_MAX);
        add_cut(payload, "class", sinks_notice_str(it->incident, "monitor"), SOURCE_MAX);
        add_copy(details, "resource", it->resource);
        add_copy(details, "transition", it->transition);
        add_copy(details, "incident", it->incident);
        if (nt->grouped) {
            add_copy(details, "group", nt->group);
            if (nt->truncated > 0) {
                char *more = sinks_console_incidents_link(s->console_url);

                /* no event is sent for an incident the grouped page does not list */
                vg_buf_reset(&b);
                vg_buf_printf(&b, "and %zu more in this group%s%s", nt->truncated, more ? ": " : "",
                              more ? more : "");
                cJSON_AddStringToObject(details, "group_more", b.data);
                vg_free(more);
            }
        }
        cJSON_AddItemToObject(payload, "custom_details", details);
        cJSON_AddItemToObject(root, "payload", payload);
        cJSON_AddStringToObject(root, "client", "vigil");
        if (link) {
            cJSON *links = cJSON_CreateArray();
            cJSON *l = cJSON_CreateObject();

            cJSON_AddStringToObject(root, "client_url", link);
            cJSON_AddStringToObject(l, "href", link);
            cJSON_AddStringToObject(l, "text", "Open in the vigil console");
            cJSON_AddItemToArray(links, l);
            cJSON_AddItemToObject(root, "links", links);
            vg_free(link);
        }
        vg_buf_fini(&b);
    }
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!out) {
        vg_oom("cJSON_PrintUnformatted");
    }
    return out;
}

bool sinks_pagerduty_has_next(const struct sink *s, const char *src, size_t src_len, int step)
{
    struct sinks_notice nt;
    char why[128];
    bool more;

    if (s->type != SINK_PAGERDUTY) {
        return false;
    }
    if (sinks_notice_parse(&nt, src, src_len, why, sizeof(why)) != VG_OK) {
        return false;
    }
    more = nt.grouped && step >= 0 && (size_t)step + 1 < nt.n_items;
    sinks_notice_fini(&nt);
    return more;
}

vg_err_t sinks_pagerduty_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                               size_t errstr_size)
{
    const char *url = cfg->url ? cfg->url : DEFAULT_URL;
    vg_err_t err;

    if (!cfg->routing_key || !cfg->routing_key[0]) {
        snprintf(errstr, errstr_size, "sink %s: pagerduty needs a routing_key", cfg->name);
        return VG_ERR_INVALID;
    }
    sinks_add_secret(s, cfg->routing_key);
    err = sinks_http_check_url(s, "url", url, errstr, errstr_size);
    if (err) {
        return err;
    }
    s->routing_key = vg_strdup(cfg->routing_key);
    s->url = vg_strdup(url);
    return VG_OK;
}
