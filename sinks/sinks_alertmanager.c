/*
 * Alertmanager shapes, rendered from the parsed page:
 *  - the API v2 alerts array that the `alertmanager` sink POSTs to
 *    /api/v2/alerts, so Alertmanager's routing, inhibition and silences
 *    apply to vigil's incidents;
 *  - the Alertmanager webhook payload version "4" that a `webhook` sink
 *    with `format: alertmanager` sends, so receivers built for
 *    Alertmanager work unchanged.
 * One alert per incident; its identity (label set) includes the incident
 * id, so the resolved notice ends exactly the alert the firing one began.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/util.h"

#define AM_ZERO_TIME "0001-01-01T00:00:00Z"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Alertmanager label names: [a-zA-Z_][a-zA-Z0-9_]*. */
static char *label_name(const char *s)
{
    char *out = vg_strdup(s[0] ? s : "_");

    for (char *p = out; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                  (p != out && *p >= '0' && *p <= '9');
        if (!ok) {
            *p = '_';
        }
    }
    return out;
}

static void add_label(cJSON *labels, const char *name, const char *value)
{
    char *n;

    if (!value || !value[0]) {
        return;
    }
    n = label_name(name);
    cJSON_DeleteItemFromObjectCaseSensitive(labels, n);
    cJSON_AddStringToObject(labels, n, value);
    vg_free(n);
}

static void add_label_object(cJSON *labels, const cJSON *obj)
{
    const cJSON *it;

    if (!cJSON_IsObject(obj)) {
        return;
    }
    cJSON_ArrayForEach(it, obj)
    {
        if (cJSON_IsString(it) && it->string) {
            add_label(labels, it->string, it->valuestring);
        }
    }
}

static cJSON *item_labels(const struct sinks_notice *nt, const struct sinks_notice_item *it,
                          const char *pager)
{
    cJSON *labels = cJSON_CreateObject();

    /* Labels from the rules first (monitor and pager labels): vigil's own names win on a clash. */
    add_label_object(labels, cJSON_GetObjectItemCaseSensitive(nt->group, "labels"));
    add_label_object(labels, cJSON_GetObjectItemCaseSensitive(it->incident, "labels"));
    add_label(labels, "alertname", sinks_notice_str(it->incident, "monitor"));
    add_label(labels, "severity", sinks_notice_str(it->incident, "severity"));
    add_label(labels, "incident", sinks_notice_str(it->incident, "id"));
    add_label(labels, "incident_type", sinks_notice_str(it->incident, "type"));
    add_label(labels, "resource", sinks_notice_str(it->resource, "id"));
    add_label(labels, "type", sinks_notice_str(it->resource, "type"));
    add_label(labels, "name", sinks_notice_str(it->resource, "name"));
    add_label(labels, "workspace", sinks_notice_str(it->resource, "workspace"));
    add_label(labels, "owner", sinks_notice_str(it->resource, "owner"));
    add_label(labels, "pager", pager ? pager : sinks_notice_str(nt->group, "pager"));
    return labels;
}

static cJSON *item_annotations(const struct sinks_notice_item *it)
{
    cJSON *ann = cJSON_CreateObject();
    const char *summary = sinks_notice_str(it->incident, "summary");
    const char *desc = sinks_notice_str(it->incident, "description");
    const char *from = sinks_notice_str(it->transition, "from");
    struct vg_buf b = {0};

    if (summary[0]) {
        cJSON_AddStringToObject(ann, "summary", summary);
    } else {
        cJSON_AddStringToObject(ann, "summary", sinks_notice_str(it->incident, "monitor"));
    }
    if (!desc[0]) {
        vg_buf_printf(&b, "%s %s: %s -> %s at %s", sinks_notice_str(it->resource, "id"),
                      sinks_notice_str(it->transition, "field"), from[0] ? from : "(none)",
                      sinks_notice_str(it->transition, "to"),
                      sinks_notice_str(it->transition, "at"));
        desc = b.data;
    }
    cJSON_AddStringToObject(ann, "description", desc);
    vg_buf_fini(&b);
    return ann;
}

/* endsAt of a notice that ends the incident: resolved_at, else the transition's time. */
static const char *ends_at(const struct sinks_notice *nt, const struct sinks_notice_item *it)
{
    const char *r = sinks_notice_str(it->incident, "resolved_at");

    (void)nt;
    if (!strcmp(it->status, "firing")) {
        return NULL;
    }
    return r[0] ? r : sinks_notice_str(it->transition, "at");
}

static cJSON *item_alert(const struct sinks_notice *nt, const struct sinks_notice_item *it,
                         const char *pager, const char *console_url, bool webhook_form)
{
    cJSON *a = cJSON_CreateObject();
    cJSON *labels = item_labels(nt, it, pager);
    const char *end = ends_at(nt, it);
    char *link = sinks_console_link(console_url, sinks_notice_str(it->resource, "id"));

    if (webhook_form) {
        cJSON_AddStringToObject(a, "status", end ? "resolved" : "firing");
    }
    cJSON_AddItemToObject(a, "labels", labels);
    cJSON_AddItemToObject(a, "annotations", item_annotations(it));
    cJSON_AddStringToObject(a, "startsAt", sinks_notice_str(it->incident, "started_at"));
    if (end) {
        cJSON_AddStringToObject(a, "endsAt", end);
    } else if (webhook_form) {
        cJSON_AddStringToObject(a, "endsAt", AM_ZERO_TIME);
    }
    if (link) {
        cJSON_AddStringToObject(a, "generatorURL", link);
    } else if (webhook_form) {
        cJSON_AddStringToObject(a, "generatorURL", "");
    }
    if (webhook_form) {
        /* Alertmanager's fingerprint is a hash of the label set; ours too (FNV-1a, sorted). */
        const cJSON *l;
        size_t n = 0;
        char **parts = vg_calloc((size_t)cJSON_GetArraySize(labels) + 1, sizeof(char *));
        char fp[17];

        cJSON_ArrayForEach(l, labels)
        {
            parts[n++] = vg_asprintf("%s=%s", l->string, l->valuestring);
        }
        qsort(parts, n, sizeof(char *), cmp_str);
        vg_fingerprint(fp, (const char *const *)parts, n);
        cJSON_AddStringToObject(a, "fingerprint", fp);
        for (size_t i = 0; i < n; i++) {
            vg_free(parts[i]);
        }
        vg_free(parts);
    }
    vg_free(link);
    return a;
}

static char *print_and_delete(cJSON *root)
{
    char *s = cJSON_PrintUnformatted(root);

    cJSON_Delete(root);
    if (!s) {
        vg_oom("cJSON_PrintUnformatted");
    }
    return s;
}

char *sinks_render_am_alerts(const struct sinks_notice *nt, const char *pager,
                             const char *console_url)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; i < nt->n_items; i++) {
        cJSON_AddItemToArray(arr, item_alert(nt, &nt->items[i], pager, console_url, false));
    }
    return print_and_delete(arr);
}

/* Keys of `a` whose values equal those of every other alert's `key` object. */
static cJSON *common_of(const cJSON *alerts, const char *key)
{
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(alerts, 0), key);
    cJSON *out = cJSON_CreateObject();
    const cJSON *kv;

    cJSON_ArrayForEach(kv, first)
    {
        bool all = true;
        const cJSON *a;

        cJSON_ArrayForEach(a, alerts)
        {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(a, key);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, kv->string);
            if (!cJSON_IsString(v) || strcmp(v->valuestring, kv->valuestring) != 0) {
                all = false;
                break;
            }
        }
        if (all) {
            cJSON_AddStringToObject(out, kv->string, kv->valuestring);
        }
    }
    return out;
}

char *sinks_render_am_webhook(const struct sinks_notice *nt, const char *receiver,
                              const char *pager, const char *console_url)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *alerts = cJSON_CreateArray();
    cJSON *group_labels = cJSON_CreateObject();
    const cJSON *gl = cJSON_GetObjectItemCaseSensitive(nt->group, "labels");
    const cJSON *l;
    struct vg_buf key = {0};
    bool any_firing = false;

    for (size_t i = 0; i < nt->n_items; i++) {
        cJSON *a = item_alert(nt, &nt->items[i], pager, console_url, true);
        any_firing = any_firing || !strcmp(cJSON_GetObjectItem(a, "status")->valuestring, "firing");
        cJSON_AddItemToArray(alerts, a);
    }
    if (cJSON_IsObject(gl) && cJSON_GetArraySize(gl) > 0) {
        add_label_object(group_labels, gl);
    } else {
        add_label(group_labels, "alertname", sinks_notice_str(nt->items[0].incident, "monitor"));
    }
    vg_buf_puts(&key, "{}:{");
    cJSON_ArrayForEach(l, group_labels)
    {
        vg_buf_printf(&key, "%s%s=\"%s\"", l == group_labels->child ? "" : ", ", l->string,
                      l->valuestring);
    }
    vg_buf_puts(&key, "}");
    cJSON_AddStringToObject(root, "version", "4");
    cJSON_AddStringToObject(root, "groupKey", key.data);
    /* the incidents of the group that the grouped page counts but does not list */
    cJSON_AddNumberToObject(root, "truncatedAlerts", (double)nt->truncated);
    cJSON_AddStringToObject(root, "status", any_firing ? "firing" : "resolved");
    cJSON_AddStringToObject(root, "receiver", receiver);
    cJSON_AddItemToObject(root, "groupLabels", group_labels);
    cJSON_AddItemToObject(root, "commonLabels", common_of(alerts, "labels"));
    cJSON_AddItemToObject(root, "commonAnnotations", common_of(alerts, "annotations"));
    cJSON_AddStringToObject(root, "externalURL", console_url ? console_url : "");
    cJSON_AddItemToObject(root, "alerts", alerts);
    vg_buf_fini(&key);
    return print_and_delete(root);
}
