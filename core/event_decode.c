/*
 * Decoding of the native event (docs/events.md) with cJSON. Untrusted
 * input: size, nesting depth, UTF-8 and string lengths are checked
 * before anything is copied. Each failure has one reason
 * (enum vg_decode_reason), which becomes the DLQ reason and metric label.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
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
};

static const char *const status_values[] = {"active", "error", "deleted", NULL};
static const char *const runtime_values[] = {"pending", "running", "succeeded", "failed", NULL};

const char *vg_decode_reason_name(enum vg_decode_reason r)
{
    if ((unsigned)r >= VG_DECODE__COUNT) {
        return "unknown";
    }
    return reason_names[r];
}

static enum vg_decode_reason fail(enum vg_decode_reason r, char *detail, size_t detail_size,
                                  const char *what)
{
    if (detail && detail_size) {
        snprintf(detail, detail_size, "%s", what);
    }
    return r;
}

/*
 * A string member: absent (NULL), or a string of 1..max bytes. `ident`
 * fields must not contain ':' (the id separator) or control characters.
 */
static enum vg_decode_reason get_string(const cJSON *obj, const char *key, bool required,
                                        size_t max, bool ident, const char **out, char *detail,
                                        size_t detail_size, const char *path)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    char what[128];
    size_t len;

    *out = NULL;
    if (!item || cJSON_IsNull(item)) {
        if (required) {
            snprintf(what, sizeof(what), "%s%s: missing", path, key);
            return fail(VG_DECODE_BAD_FIELD, detail, detail_size, what);
        }
        return VG_DECODE_OK;
    }
    if (!cJSON_IsString(item)) {
        snprintf(what, sizeof(what), "%s%s: not a string", path, key);
        return fail(VG_DECODE_BAD_FIELD, detail, detail_size, what);
    }
    len = strlen(item->valuestring);
    if (len == 0 && (required || ident)) {
        snprintf(what, sizeof(what), "%s%s: empty", path, key);
        return fail(VG_DECODE_BAD_FIELD, detail, detail_size, what);
    }
    if (len > max) {
        snprintf(what, sizeof(what), "%s%s: longer than %zu bytes", path, key, max);
        return fail(VG_DECODE_BAD_FIELD, detail, detail_size, what);
    }
    if (ident) {
        for (const char *p = item->valuestring; *p; p++) {
            if (*p == ':' || (unsigned char)*p < 0x20) {
                snprintf(what, sizeof(what), "%s%s: must not contain ':' or control characters",
                         path, key);
                return fail(VG_DECODE_BAD_FIELD, detail, detail_size, what);
            }
        }
    }
    *out = item->valuestring;
    return VG_DECODE_OK;
}

static enum vg_decode_reason get_enum(const cJSON *obj, const char *key,
                                      const char *const *allowed, enum vg_decode_reason bad,
                                      char out[VG_VALUE_MAX], char *detail, size_t detail_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    char what[160];
    out[0] = '\0';
    if (!item || cJSON_IsNull(item)) {
        return VG_DECODE_OK;
    }
    if (cJSON_IsString(item)) {
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, item->valuestring) == 0) {
                snprintf(out, VG_VALUE_MAX, "%s", *a);
                return VG_DECODE_OK;
            }
        }
        snprintf(what, sizeof(what), "%s: unknown value \"%.40s\"", key, item->valuestring);
    } else {
        snprintf(what, sizeof(what), "%s: not a string", key);
    }
    return fail(bad, detail, detail_size, what);
}

/*
 * cJSON decodes "\u0000" into a real NUL, which would silently truncate a
 * string ("a\u0000:b" would become "a"). Such escapes are rewritten to
 * "\u001a" (SUB, the substitute character) before parsing, so identity
 * fields and times reject them as control characters and messages keep a
 * visible placeholder. Returns a patched heap copy, or NULL when there is
 * nothing to patch (the common case: no copy).
 */
static char *patch_nul_escapes(const char *json, size_t len)
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
                    copy = vg_malloc(len);
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

enum vg_decode_reason vg_event_decode(struct vg_event *ev, const char *json, size_t len,
                                      int64_t kafka_ts_ms, char *detail, size_t detail_size)
{
    cJSON *root;
    const cJSON *resource;
    const cJSON *time_item;
    const char *parse_end = NULL;
    const char *type, *name, *workspace, *version, *owner, *message;
    enum vg_decode_reason r;
    int64_t time_ms = kafka_ts_ms;
    char *patched = NULL;

    memset(ev, 0, sizeof(*ev));
    if (detail && detail_size) {
        detail[0] = '\0';
    }
    if (len > VG_MAX_EVENT_BYTES) {
        return fail(VG_DECODE_TOO_LARGE, detail, detail_size, "message larger than 1 MiB");
    }
    if (!json || len == 0) {
        return fail(VG_DECODE_BAD_JSON, detail, detail_size, "empty message");
    }
    if (!vg_utf8_valid(json, len)) {
        return fail(VG_DECODE_NOT_UTF8, detail, detail_size, "not valid UTF-8");
    }
    if (vg_json_depth(json, len, VG_MAX_JSON_DEPTH) > VG_MAX_JSON_DEPTH) {
        return fail(VG_DECODE_TOO_DEEP, detail, detail_size, "JSON nested deeper than 32");
    }
    patched = patch_nul_escapes(json, len);
    if (patched) {
        json = patched;
    }
    root = cJSON_ParseWithLengthOpts(json, len, &parse_end, 0);
    if (!root) {
        free(patched);
        return fail(VG_DECODE_BAD_JSON, detail, detail_size, "invalid JSON");
    }
    if (parse_end) {
        const char *end = json + len;
        while (parse_end < end && (*parse_end == ' ' || *parse_end == '\n' ||
                                   *parse_end == '\r' || *parse_end == '\t')) {
            parse_end++;
        }
        if (parse_end != end) {
            cJSON_Delete(root);
            free(patched);
            return fail(VG_DECODE_BAD_JSON, detail, detail_size, "trailing data after JSON");
        }
    }
    free(patched); /* cJSON copied every string it needs into the tree */
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(VG_DECODE_NOT_OBJECT, detail, detail_size, "not a JSON object");
    }
    resource = cJSON_GetObjectItemCaseSensitive(root, "resource");
    if (!cJSON_IsObject(resource)) {
        cJSON_Delete(root);
        return fail(VG_DECODE_NO_RESOURCE, detail, detail_size,
                    resource ? "resource: not an object" : "resource: missing");
    }
    if ((r = get_string(resource, "type", true, VG_MAX_NAME_BYTES, true, &type, detail,
                        detail_size, "resource.")) ||
        (r = get_string(resource, "name", true, VG_MAX_NAME_BYTES, true, &name, detail,
                        detail_size, "resource.")) ||
        (r = get_string(resource, "workspace", true, VG_MAX_NAME_BYTES, true, &workspace,
                        detail, detail_size, "resource.")) ||
        (r = get_string(resource, "version", false, VG_MAX_NAME_BYTES, true, &version, detail,
                        detail_size, "resource.")) ||
        (r = get_string(resource, "owner", false, VG_MAX_NAME_BYTES, false, &owner, detail,
                        detail_size, "resource.")) ||
        (r = get_string(root, "message", false, VG_MAX_MESSAGE_BYTES, false, &message, detail,
                        detail_size, ""))) {
        cJSON_Delete(root);
        return r;
    }
    if ((r = get_enum(root, "status", status_values, VG_DECODE_BAD_STATUS, ev->status, detail,
                      detail_size)) ||
        (r = get_enum(root, "runtime", runtime_values, VG_DECODE_BAD_RUNTIME, ev->runtime,
                      detail, detail_size))) {
        cJSON_Delete(root);
        memset(ev, 0, sizeof(*ev));
        return r;
    }
    if (!ev->status[0] && !ev->runtime[0]) {
        cJSON_Delete(root);
        memset(ev, 0, sizeof(*ev));
        return fail(VG_DECODE_NO_SIGNAL, detail, detail_size,
                    "neither status nor runtime is present");
    }
    time_item = cJSON_GetObjectItemCaseSensitive(root, "time");
    if (time_item && !cJSON_IsNull(time_item)) {
        if (!cJSON_IsString(time_item) ||
            !vg_time_parse_rfc3339(time_item->valuestring, strlen(time_item->valuestring),
                                   &time_ms)) {
            cJSON_Delete(root);
            memset(ev, 0, sizeof(*ev));
            return fail(VG_DECODE_BAD_TIME, detail, detail_size, "time: not RFC 3339");
        }
    } else if (time_ms < 0) {
        time_ms = vg_now_ms();
    }
    ev->type = vg_strdup(type);
    ev->name = vg_strdup(name);
    ev->workspace = vg_strdup(workspace);
    ev->version = vg_strdup(version ? version : "v1");
    ev->owner = vg_strdup(owner ? owner : "");
    ev->message = message ? vg_strdup(message) : NULL;
    ev->id = vg_resource_id(ev->type, ev->version, ev->name, ev->workspace);
    ev->time_ms = time_ms;
    cJSON_Delete(root);
    return VG_DECODE_OK;
}
