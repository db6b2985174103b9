/*
 * The page as sinks see it: a v1 body, either single (incident, resource,
 * transition) or grouped ("group" + "incidents": [{incident,
 * resource, transition}, ...]), parsed once with cJSON so every renderer
 * (Slack, Alertmanager, templates, console) reads the same fields. Unknown
 * keys are kept in the tree: renderers use the optional ones (labels,
 * description, reason, pod) when they are there.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "sinks_int.h"

static const cJSON *obj_get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

vg_err_t sinks_notice_parse(struct sinks_notice *nt, const char *body, size_t len, char *errstr,
                            size_t errstr_size)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *status;
    const cJSON *incidents;

    memset(nt, 0, sizeof(*nt));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        snprintf(errstr, errstr_size, "page body is not a JSON object");
        return VG_ERR_PARSE;
    }
    nt->root = root;
    status = obj_get(root, "status");
    nt->status = cJSON_IsString(status) ? status->valuestring : "";
    incidents = obj_get(root, "incidents");
    if (cJSON_IsArray(incidents)) {
        const cJSON *it;
        size_t n = (size_t)cJSON_GetArraySize(incidents);

        nt->grouped = true;
        nt->group = obj_get(root, "group");
        nt->items = vg_calloc(n ? n : 1, sizeof(*nt->items));
        cJSON_ArrayForEach(it, incidents)
        {
            if (!cJSON_IsObject(obj_get(it, "incident"))) {
                continue;
            }
            {
                const cJSON *st = obj_get(it, "status");
                nt->items[nt->n_items].status = cJSON_IsString(st) ? st->valuestring : nt->status;
            }
            nt->items[nt->n_items].incident = obj_get(it, "incident");
            nt->items[nt->n_items].resource = obj_get(it, "resource");
            nt->items[nt->n_items].transition = obj_get(it, "transition");
            nt->n_items++;
        }
    } else if (cJSON_IsObject(obj_get(root, "incident"))) {
        nt->items = vg_calloc(1, sizeof(*nt->items));
        nt->items[0].status = nt->status;
        nt->items[0].incident = obj_get(root, "incident");
        nt->items[0].resource = obj_get(root, "resource");
        nt->items[0].transition = obj_get(root, "transition");
        nt->n_items = 1;
    }
    if (nt->grouped) {
        const cJSON *truncated = obj_get(root, "truncated");

        /* absent from bodies written before group_limit: nothing left out */
        if (cJSON_IsNumber(truncated) && truncated->valuedouble >= 1 &&
            truncated->valuedouble < 1e15) {
            nt->truncated = (size_t)truncated->valuedouble;
        }
    }
    nt->n_total = nt->n_items + nt->truncated;
    if (nt->n_items == 0 || !nt->status[0]) {
        sinks_notice_fini(nt);
        snprintf(errstr, errstr_size, "page body has no status or no incident");
        return VG_ERR_PARSE;
    }
    return VG_OK;
}

void sinks_notice_fini(struct sinks_notice *nt)
{
    cJSON_Delete(nt->root);
    vg_free(nt->items);
    memset(nt, 0, sizeof(*nt));
}

const char *sinks_notice_str(const void *obj, const char *path)
{
    const cJSON *cur = obj;
    char part[64];

    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);

        if (n >= sizeof(part)) {
            return "";
        }
        memcpy(part, path, n);
        part[n] = '\0';
        cur = obj_get(cur, part);
        path = dot ? dot + 1 : path + n;
    }
    return cJSON_IsString(cur) ? cur->valuestring : "";
}

const char *sinks_notice_lookup(const struct sinks_notice *nt, const char *path, char *scratch,
                                size_t scratch_size)
{
    const struct sinks_notice_item *first = &nt->items[0];
    const cJSON *v;

    if (!strcmp(path, "count")) {
        snprintf(scratch, scratch_size, "%zu", nt->n_items);
        return scratch;
    }
    if (!strncmp(path, "incident.", 9)) {
        return sinks_notice_str(first->incident, path + 9);
    }
    if (!strncmp(path, "resource.", 9)) {
        return sinks_notice_str(first->resource, path + 9);
    }
    if (!strncmp(path, "transition.", 11)) {
        return sinks_notice_str(first->transition, path + 11);
    }
    if (!strncmp(path, "group.", 6)) {
        return sinks_notice_str(nt->group, path + 6);
    }
    v = obj_get(nt->root, path);
    if (cJSON_IsString(v)) {
        return v->valuestring;
    }
    return "";
}

char *sinks_truncate_utf8(const char *s, size_t max)
{
    static const char ell[] = "\xe2\x80\xa6"; /* … */
    size_t len = strlen(s);
    size_t cut;
    char *out;

    if (len <= max) {
        return vg_strdup(s);
    }
    cut = max >= 3 ? max - 3 : 0;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut--; /* never split a multi-byte character */
    }
    out = vg_malloc(cut + sizeof(ell));
    memcpy(out, s, cut);
    memcpy(out + cut, ell, sizeof(ell));
    return out;
}

size_t vg_sinks_page_incidents(const char *body, size_t len, char ***out, size_t max)
{
    struct sinks_notice nt;
    char why[64];
    size_t n = 0;

    *out = NULL;
    if (!body || sinks_notice_parse(&nt, body, len, why, sizeof(why)) != VG_OK) {
        return 0;
    }
    *out = vg_calloc(nt.n_items + 1, sizeof(char *));
    for (size_t i = 0; i < nt.n_items && n < max; i++) {
        const char *id = sinks_notice_str(nt.items[i].incident, "id");
        if (id[0]) {
            (*out)[n++] = vg_strdup(id);
        }
    }
    sinks_notice_fini(&nt);
    if (n == 0) {
        vg_free(*out);
        *out = NULL;
    }
    return n;
}

/* ---- how a notice looks in chat sinks ------------------------------------ */

static const struct sinks_look severity_looks[] = {
    {"critical", ":red_circle:", "#D00000", "attention"},
    {"high", ":large_orange_circle:", "#E8590C", "attention"},
    {"medium", ":large_yellow_circle:", "#F2C744", "warning"},
    {"low", ":large_blue_circle:", "#439FE0", "accent"},
    {"info", ":white_circle:", "#9E9E9E", "emphasis"},
};

const struct sinks_look *sinks_look_of(const char *status, const char *severity)
{
    static const struct sinks_look resolved = {"", ":white_check_mark:", "#2EB67D", "good"};
    static const struct sinks_look stale = {"", ":grey_question:", "#9E9E9E", "emphasis"};
    static const struct sinks_look deleted = {"", ":wastebasket:", "#616161", "emphasis"};

    if (!strcmp(status, "resolved")) {
        return &resolved;
    }
    if (!strcmp(status, "stale")) {
        return &stale;
    }
    if (!strcmp(status, "deleted")) {
        return &deleted;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(severity_looks); i++) {
        if (!strcmp(severity_looks[i].severity, severity)) {
            return &severity_looks[i];
        }
    }
    return &severity_looks[VG_ARRAY_LEN(severity_looks) - 1];
}
