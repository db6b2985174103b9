/*
 * struct vg_page and its canonical serialisation: the webhook payload
 * version "1" (docs/webhook.md). Rendered by hand into a vg_buf (fixed
 * key order, no tree), parsed back with cJSON.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/json.h"
#include "vigil/page.h"
#include "vigil/util.h"

void vg_page_fini(struct vg_page *pg)
{
    free(pg->id);
    free(pg->sink);
    free(pg->pager);
    free(pg->status);
    free(pg->incident.id);
    free(pg->incident.monitor);
    free(pg->incident.severity);
    free(pg->incident.summary);
    free(pg->resource.id);
    free(pg->resource.type);
    free(pg->resource.name);
    free(pg->resource.workspace);
    free(pg->resource.version);
    free(pg->resource.owner);
    memset(pg, 0, sizeof(*pg));
}

static void put_key(struct vg_buf *b, const char *key)
{
    vg_json_append_string(b, key);
    vg_buf_putc(b, ':');
}

static void put_str(struct vg_buf *b, const char *key, const char *v, bool last)
{
    put_key(b, key);
    vg_json_append_string(b, v ? v : "");
    if (!last) {
        vg_buf_putc(b, ',');
    }
}

static void put_time(struct vg_buf *b, const char *key, int64_t ms, bool null_if_zero, bool last)
{
    char ts[40];
    put_key(b, key);
    if (null_if_zero && ms == 0) {
        vg_buf_puts(b, "null");
    } else {
        vg_time_format_rfc3339(ms, ts, sizeof(ts));
        vg_json_append_string(b, ts);
    }
    if (!last) {
        vg_buf_putc(b, ',');
    }
}

char *vg_page_to_json(const struct vg_page *pg)
{
    struct vg_buf b = {0};
    vg_buf_puts(&b, "{\"version\":\"1\",");
    put_str(&b, "status", pg->status, false);
    vg_buf_puts(&b, "\"incident\":{");
    put_str(&b, "id", pg->incident.id, false);
    put_str(&b, "monitor", pg->incident.monitor, false);
    put_str(&b, "severity", pg->incident.severity, false);
    put_str(&b, "summary", pg->incident.summary, false);
    put_time(&b, "started_at", pg->incident.started_at_ms, false, false);
    put_time(&b, "resolved_at", pg->incident.resolved_at_ms, true, true);
    vg_buf_puts(&b, "},\"resource\":{");
    put_str(&b, "id", pg->resource.id, false);
    put_str(&b, "type", pg->resource.type, false);
    put_str(&b, "name", pg->resource.name, false);
    put_str(&b, "workspace", pg->resource.workspace, false);
    put_str(&b, "version", pg->resource.version, false);
    put_str(&b, "owner", pg->resource.owner, false);
    put_str(&b, "status", pg->resource.status, false);
    put_str(&b, "runtime", pg->resource.runtime, false);
    put_str(&b, "health", pg->resource.health, true);
    vg_buf_puts(&b, "},\"transition\":{");
    put_str(&b, "field", pg->transition.field, false);
    put_key(&b, "from");
    if (pg->transition.from[0]) {
        vg_json_append_string(&b, pg->transition.from);
    } else {
        vg_buf_puts(&b, "null");
    }
    vg_buf_putc(&b, ',');
    put_str(&b, "to", pg->transition.to, false);
    put_time(&b, "at", pg->transition.at_ms, false, true);
    vg_buf_puts(&b, "}}");
    return vg_buf_steal(&b);
}

static const char *obj_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static char *dup_str(const cJSON *obj, const char *key)
{
    const char *s = obj_str(obj, key);
    return vg_strdup(s ? s : "");
}

static void copy_value(char dst[VG_VALUE_MAX], const cJSON *obj, const char *key)
{
    const char *s = obj_str(obj, key);
    snprintf(dst, VG_VALUE_MAX, "%s", s ? s : "");
}

static bool obj_time(const cJSON *obj, const char *key, int64_t *out)
{
    const char *s = obj_str(obj, key);
    *out = 0;
    if (!s) {
        return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key)) ||
               !cJSON_GetObjectItemCaseSensitive(obj, key);
    }
    return vg_time_parse_rfc3339(s, strlen(s), out);
}

vg_err_t vg_page_from_json(struct vg_page *pg, const char *json, size_t len, char *errstr,
                           size_t errstr_size)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    const cJSON *inc;
    const cJSON *res;
    const cJSON *tr;

    memset(pg, 0, sizeof(*pg));
    if (root && end) {
        while (end < json + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')) {
            end++;
        }
        if (end != json + len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (!root) {
        snprintf(errstr, errstr_size, "page: invalid JSON");
        return VG_ERR_PARSE;
    }
    inc = cJSON_GetObjectItemCaseSensitive(root, "incident");
    res = cJSON_GetObjectItemCaseSensitive(root, "resource");
    tr = cJSON_GetObjectItemCaseSensitive(root, "transition");
    if (!obj_str(root, "status") || !cJSON_IsObject(inc) || !cJSON_IsObject(res) ||
        !cJSON_IsObject(tr)) {
        cJSON_Delete(root);
        snprintf(errstr, errstr_size, "page: missing status, incident, resource or transition");
        return VG_ERR_PARSE;
    }
    pg->status = dup_str(root, "status");
    pg->incident.id = dup_str(inc, "id");
    pg->incident.monitor = dup_str(inc, "monitor");
    pg->incident.severity = dup_str(inc, "severity");
    pg->incident.summary = dup_str(inc, "summary");
    pg->resource.id = dup_str(res, "id");
    pg->resource.type = dup_str(res, "type");
    pg->resource.name = dup_str(res, "name");
    pg->resource.workspace = dup_str(res, "workspace");
    pg->resource.version = dup_str(res, "version");
    pg->resource.owner = dup_str(res, "owner");
    copy_value(pg->resource.status, res, "status");
    copy_value(pg->resource.runtime, res, "runtime");
    copy_value(pg->resource.health, res, "health");
    copy_value(pg->transition.field, tr, "field");
    copy_value(pg->transition.from, tr, "from");
    copy_value(pg->transition.to, tr, "to");
    if (!obj_time(inc, "started_at", &pg->incident.started_at_ms) ||
        !obj_time(inc, "resolved_at", &pg->incident.resolved_at_ms) ||
        !obj_time(tr, "at", &pg->transition.at_ms)) {
        cJSON_Delete(root);
        vg_page_fini(pg);
        snprintf(errstr, errstr_size, "page: bad timestamp");
        return VG_ERR_PARSE;
    }
    cJSON_Delete(root);
    return VG_OK;
}

struct vg_page *vg_pages_push(struct vg_pages *pl)
{
    struct vg_page *pg = VG_ARRAY_PUSH(pl->items, pl->n, pl->cap);
    memset(pg, 0, sizeof(*pg));
    return pg;
}

void vg_pages_clear(struct vg_pages *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        vg_page_fini(&pl->items[i]);
    }
    pl->n = 0;
}

void vg_pages_fini(struct vg_pages *pl)
{
    vg_pages_clear(pl);
    free(pl->items);
    pl->items = NULL;
    pl->cap = 0;
}
