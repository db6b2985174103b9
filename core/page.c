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
    free(pg->incident_type);
    vg_labels_free(pg->labels, pg->n_labels);
    free(pg->description);
    free(pg->group);
    vg_labels_free(pg->group_labels, pg->n_group_labels);
    memset(pg, 0, sizeof(*pg));
}

static char *dup_opt(const char *s)
{
    return s ? vg_strdup(s) : NULL;
}

void vg_page_copy(struct vg_page *dst, const struct vg_page *src)
{
    *dst = *src;
    dst->id = dup_opt(src->id);
    dst->sink = dup_opt(src->sink);
    dst->pager = dup_opt(src->pager);
    dst->status = dup_opt(src->status);
    dst->incident.id = dup_opt(src->incident.id);
    dst->incident.monitor = dup_opt(src->incident.monitor);
    dst->incident.severity = dup_opt(src->incident.severity);
    dst->incident.summary = dup_opt(src->incident.summary);
    dst->resource.id = dup_opt(src->resource.id);
    dst->resource.type = dup_opt(src->resource.type);
    dst->resource.name = dup_opt(src->resource.name);
    dst->resource.workspace = dup_opt(src->resource.workspace);
    dst->resource.version = dup_opt(src->resource.version);
    dst->resource.owner = dup_opt(src->resource.owner);
    dst->incident_type = dup_opt(src->incident_type);
    dst->labels = vg_labels_copy(src->labels, src->n_labels);
    dst->description = dup_opt(src->description);
    dst->group = dup_opt(src->group);
    dst->group_labels = vg_labels_copy(src->group_labels, src->n_group_labels);
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

static void put_labels(struct vg_buf *b, const struct vg_label *v, size_t n)
{
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) {
            vg_buf_putc(b, ',');
        }
        put_key(b, v[i].key);
        vg_json_append_string(b, v[i].value ? v[i].value : "");
    }
    vg_buf_putc(b, '}');
}

static void put_str_or_null(struct vg_buf *b, const char *v)
{
    if (v && v[0]) {
        vg_json_append_string(b, v);
    } else {
        vg_buf_puts(b, "null");
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
    put_time(&b, "resolved_at", pg->incident.resolved_at_ms, true, false);
    /* Added within v1 (receivers ignore keys they do not know). */
    put_str(&b, "type", pg->incident_type, false);
    put_key(&b, "labels");
    put_labels(&b, pg->labels, pg->n_labels);
    vg_buf_putc(&b, ',');
    put_str(&b, "description", pg->description, true);
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
    put_time(&b, "at", pg->transition.at_ms, false, false);
    /* Why and in which pod (runtime from pods); null otherwise */
    put_key(&b, "reason");
    put_str_or_null(&b, pg->reason);
    vg_buf_putc(&b, ',');
    put_key(&b, "pod");
    put_str_or_null(&b, pg->pod);
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

static bool labels_from_json(const cJSON *obj, struct vg_label **out, size_t *n_out)
{
    const cJSON *it;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (!cJSON_IsObject(obj)) {
        return obj == NULL || cJSON_IsNull(obj);
    }
    cJSON_ArrayForEach(it, obj)
    {
        n += cJSON_IsString(it) ? 1 : 0;
    }
    if (n == 0) {
        return true;
    }
    *out = vg_calloc(n, sizeof(**out));
    cJSON_ArrayForEach(it, obj)
    {
        if (cJSON_IsString(it) && it->string) {
            (*out)[*n_out].key = vg_strdup(it->string);
            (*out)[*n_out].value = vg_strdup(it->valuestring);
            (*n_out)++;
        }
    }
    return true;
}

/* The keys added within v1 after its first release; absent in bodies written before. */
static void parse_added(struct vg_page *pg, const cJSON *inc, const cJSON *tr)
{
    const char *s;

    s = obj_str(inc, "type");
    pg->incident_type = vg_strdup(s ? s : "");
    s = obj_str(inc, "description");
    pg->description = vg_strdup(s ? s : "");
    labels_from_json(cJSON_GetObjectItemCaseSensitive(inc, "labels"), &pg->labels, &pg->n_labels);
    s = obj_str(tr, "reason");
    snprintf(pg->reason, sizeof(pg->reason), "%s", s ? s : "");
    s = obj_str(tr, "pod");
    snprintf(pg->pod, sizeof(pg->pod), "%s", s ? s : "");
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
    parse_added(pg, inc, tr);
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

/* ---- Grouped bodies ------------------------------------------ */

struct group_item {
    cJSON *root;
    const char *started;
    const char *id;
    int64_t rank;
    bool firing;
};

/* The listing order: incident.started_at, then incident.id. */
static int cmp_group_item(const void *a, const void *b)
{
    const struct group_item *x = a;
    const struct group_item *y = b;
    int d = strcmp(x->started, y->started);

    return d != 0 ? d : strcmp(x->id, y->id);
}

/* The choosing order of a bounded page: highest rank first, then incident.id. */
static int cmp_group_rank(const void *a, const void *b)
{
    const struct group_item *x = a;
    const struct group_item *y = b;

    if (x->rank != y->rank) {
        return x->rank > y->rank ? -1 : 1;
    }
    return strcmp(x->id, y->id);
}

int64_t vg_page_group_rank(bool firing, int64_t transition_at_ms)
{
    int64_t at = transition_at_ms;

    if (at < 0) {
        at = 0;
    } else if (at >= VG_GROUP_RANK_FIRING) {
        at = VG_GROUP_RANK_FIRING - 1;
    }
    return (firing ? VG_GROUP_RANK_FIRING : 0) + at;
}

static void put_raw(struct vg_buf *b, const cJSON *item)
{
    char *s = cJSON_PrintUnformatted(item);

    if (!s) {
        vg_oom("page JSON");
    }
    vg_buf_puts(b, s);
    cJSON_free(s);
}

/* Parse one stored single-form body into `it`; false when vigil did not write it. */
static bool group_item_parse(struct group_item *it, const char *body)
{
    cJSON *root = cJSON_Parse(body);
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(root, "incident");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "transition");
    const char *status = obj_str(root, "status");
    int64_t at = 0;

    if (!root || !status || !cJSON_IsObject(inc) || !obj_str(inc, "id") ||
        !obj_str(inc, "started_at") ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "resource")) ||
        !cJSON_IsObject(tr)) {
        cJSON_Delete(root);
        return false;
    }
    (void)obj_time(tr, "at", &at);
    it->root = root;
    it->started = obj_str(inc, "started_at");
    it->id = obj_str(inc, "id");
    it->firing = strcmp(status, "firing") == 0;
    it->rank = vg_page_group_rank(it->firing, at);
    return true;
}

char *vg_page_group_build(const char *pager, const struct vg_label *labels, size_t n_labels,
                          const char *const *bodies, size_t n, size_t limit,
                          struct vg_group_counts *counts)
{
    struct group_item *items = vg_calloc(n ? n : 1, sizeof(*items));
    struct vg_buf b = {0};
    size_t firing = 0;
    size_t listed;
    char *out = NULL;
    size_t ok = 0;

    for (size_t i = 0; i < n; i++) {
        if (!group_item_parse(&items[ok], bodies[i])) {
            goto out;
        }
        firing += items[ok].firing ? 1 : 0;
        ok++;
    }
    /* The store's totals count the incidents it did not return too; never fewer than given. */
    if (counts->firing < firing) {
        counts->firing = firing;
    }
    if (counts->ended < ok - firing) {
        counts->ended = ok - firing;
    }
    listed = limit > 0 && ok > limit ? limit : ok;
    if (listed < ok) {
        qsort(items, ok, sizeof(*items), cmp_group_rank);
    }
    qsort(items, listed, sizeof(*items), cmp_group_item);
    counts->listed = listed;
    vg_buf_puts(&b, "{\"version\":\"1\",");
    put_str(&b, "status", counts->firing > 0 ? "firing" : "resolved", false);
    vg_buf_puts(&b, "\"group\":{");
    put_str(&b, "pager", pager, false);
    put_key(&b, "labels");
    put_labels(&b, labels, n_labels);
    vg_buf_printf(&b, "},\"counts\":{\"firing\":%zu,\"resolved\":%zu},\"truncated\":%zu,",
                  counts->firing, counts->ended, counts->firing + counts->ended - listed);
    vg_buf_puts(&b, "\"incidents\":[");
    for (size_t i = 0; i < listed; i++) {
        static const char *const keys[] = {"incident", "resource", "transition"};

        vg_buf_puts(&b, i ? ",{" : "{");
        put_str(&b, "status", obj_str(items[i].root, "status"), false);
        for (size_t k = 0; k < 3; k++) {
            put_key(&b, keys[k]);
            put_raw(&b, cJSON_GetObjectItemCaseSensitive(items[i].root, keys[k]));
            vg_buf_putc(&b, k < 2 ? ',' : '}');
        }
    }
    vg_buf_puts(&b, "]}");
    out = vg_buf_steal(&b);
out:
    for (size_t i = 0; i < ok; i++) {
        cJSON_Delete(items[i].root);
    }
    vg_free(items);
    vg_buf_fini(&b);
    return out;
}

char *vg_page_group_to_json(const char *pager, const struct vg_label *labels, size_t n_labels,
                            const char *const *bodies, size_t n)
{
    struct vg_group_counts counts = {0};

    return vg_page_group_build(pager, labels, n_labels, bodies, n, 0, &counts);
}

bool vg_page_json_is_group(const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    bool is = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "group"));

    cJSON_Delete(root);
    return is;
}

vg_err_t vg_page_group_from_json(struct vg_pages *out, const char *json, size_t len, char *errstr,
                                 size_t errstr_size)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(root, "group");
    const cJSON *incs = cJSON_GetObjectItemCaseSensitive(root, "incidents");
    const cJSON *it;
    struct vg_label *labels = NULL;
    size_t n_labels = 0;
    struct vg_buf key = {0};
    vg_err_t err = VG_OK;

    if (!cJSON_IsObject(group) || !cJSON_IsArray(incs) || !obj_str(group, "pager") ||
        !labels_from_json(cJSON_GetObjectItemCaseSensitive(group, "labels"), &labels, &n_labels)) {
        cJSON_Delete(root);
        snprintf(errstr, errstr_size, "grouped page: missing group or incidents");
        return VG_ERR_PARSE;
    }
    for (size_t i = 0; i < n_labels; i++) {
        vg_buf_printf(&key, "%s%s=%s", i ? "," : "", labels[i].key, labels[i].value);
    }
    cJSON_ArrayForEach(it, incs)
    {
        struct vg_buf one = {0};
        struct vg_page *pg;

        /* each part is copied whole below: a missing one is not an empty one */
        if (!cJSON_IsObject(it) || !obj_str(it, "status") ||
            !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(it, "incident")) ||
            !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(it, "resource")) ||
            !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(it, "transition"))) {
            snprintf(errstr, errstr_size, "grouped page: bad incident entry");
            err = VG_ERR_PARSE;
            break;
        }
        vg_buf_puts(&one, "{\"version\":\"1\",");
        put_str(&one, "status", obj_str(it, "status"), false);
        put_key(&one, "incident");
        put_raw(&one, cJSON_GetObjectItemCaseSensitive(it, "incident"));
        vg_buf_putc(&one, ',');
        put_key(&one, "resource");
        put_raw(&one, cJSON_GetObjectItemCaseSensitive(it, "resource"));
        vg_buf_putc(&one, ',');
        put_key(&one, "transition");
        put_raw(&one, cJSON_GetObjectItemCaseSensitive(it, "transition"));
        vg_buf_putc(&one, '}');
        pg = vg_pages_push(out);
        err = vg_page_from_json(pg, one.data, one.len, errstr, errstr_size);
        vg_buf_fini(&one);
        if (err != VG_OK) {
            out->n--;
            break;
        }
        pg->pager = vg_strdup(obj_str(group, "pager"));
        pg->group = vg_strdup(key.data ? key.data : "");
        pg->group_labels = vg_labels_copy(labels, n_labels);
        pg->n_group_labels = n_labels;
    }
    vg_labels_free(labels, n_labels);
    vg_buf_fini(&key);
    cJSON_Delete(root);
    return err;
}

/* ---- Incident records ---------------------------------------- */

void vg_incident_record_fini(struct vg_incident_record *r)
{
    free(r->id);
    free(r->monitor);
    free(r->resource);
    free(r->severity);
    free(r->incident_type);
    free(r->state);
    vg_labels_free(r->labels, r->n_labels);
    free(r->summary);
    free(r->description);
    free(r->topic);
    memset(r, 0, sizeof(*r));
}

void vg_incident_record_copy(struct vg_incident_record *dst, const struct vg_incident_record *src)
{
    *dst = *src;
    dst->id = dup_opt(src->id);
    dst->monitor = dup_opt(src->monitor);
    dst->resource = dup_opt(src->resource);
    dst->severity = dup_opt(src->severity);
    dst->incident_type = dup_opt(src->incident_type);
    dst->state = dup_opt(src->state);
    dst->labels = vg_labels_copy(src->labels, src->n_labels);
    dst->summary = dup_opt(src->summary);
    dst->description = dup_opt(src->description);
    dst->topic = dup_opt(src->topic);
}

static void put_bool(struct vg_buf *b, const char *key, bool v, bool last)
{
    put_key(b, key);
    vg_buf_puts(b, v ? "true" : "false");
    if (!last) {
        vg_buf_putc(b, ',');
    }
}

char *vg_incident_record_to_json(const struct vg_incident_record *r)
{
    struct vg_buf b = {0};

    vg_buf_putc(&b, '{');
    put_str(&b, "id", r->id, false);
    put_str(&b, "monitor", r->monitor, false);
    put_str(&b, "incident", r->incident_type, false);
    put_str(&b, "resource", r->resource, false);
    put_str(&b, "severity", r->severity, false);
    put_str(&b, "state", r->state, false);
    put_key(&b, "labels");
    put_labels(&b, r->labels, r->n_labels);
    vg_buf_putc(&b, ',');
    put_str(&b, "summary", r->summary, false);
    put_str(&b, "description", r->description, false);
    put_time(&b, "started_at", r->started_at_ms, false, false);
    put_time(&b, "ended_at", r->ended_at_ms, true, false);
    put_time(&b, "updated_at", r->updated_at_ms, false, false);
    vg_buf_printf(&b, "\"seq\":%d,", r->seq);
    put_bool(&b, "silenced", r->silenced, false);
    put_bool(&b, "inhibited", r->inhibited, false);
    put_bool(&b, "resolve_never", r->resolve_never, false);
    put_str(&b, "topic", r->topic, false);
    vg_buf_printf(&b, "\"partition\":%d}", (int)r->partition);
    return vg_buf_steal(&b);
}

static bool obj_bool(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* An optional integer in [min, max] (0 when absent or not a number); false when out of range:
 * converting such a double to int is undefined behaviour. */
static bool obj_int(const cJSON *obj, const char *key, double min, double max, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    *out = 0;
    if (!cJSON_IsNumber(it)) {
        return true;
    }
    if (!(it->valuedouble >= min && it->valuedouble <= max)) {
        return false; /* NaN too */
    }
    *out = (int64_t)it->valuedouble;
    return true;
}

bool vg_incident_record_from_json(struct vg_incident_record *r, const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    int64_t seq = 0;
    int64_t part = -1;
    bool ok;

    memset(r, 0, sizeof(*r));
    if (!cJSON_IsObject(root) || !obj_str(root, "id") || !obj_str(root, "monitor") ||
        !obj_str(root, "resource") || !obj_str(root, "state")) {
        cJSON_Delete(root);
        return false;
    }
    r->id = dup_str(root, "id");
    r->monitor = dup_str(root, "monitor");
    r->incident_type = dup_str(root, "incident");
    r->resource = dup_str(root, "resource");
    r->severity = dup_str(root, "severity");
    r->state = dup_str(root, "state");
    r->summary = dup_str(root, "summary");
    r->description = dup_str(root, "description");
    r->topic = dup_str(root, "topic");
    r->silenced = obj_bool(root, "silenced");
    r->inhibited = obj_bool(root, "inhibited");
    r->resolve_never = obj_bool(root, "resolve_never");
    ok = obj_int(root, "seq", 0, INT32_MAX, &seq) &&
         obj_int(root, "partition", INT32_MIN, INT32_MAX, &part) &&
         labels_from_json(cJSON_GetObjectItemCaseSensitive(root, "labels"), &r->labels,
                          &r->n_labels) &&
         obj_time(root, "started_at", &r->started_at_ms) &&
         obj_time(root, "ended_at", &r->ended_at_ms) &&
         obj_time(root, "updated_at", &r->updated_at_ms);
    r->seq = (int)seq;
    r->partition = (int32_t)part;
    cJSON_Delete(root);
    if (!ok) {
        vg_incident_record_fini(r);
    }
    return ok;
}

void vg_incident_records_put(struct vg_incident_records *l, const struct vg_incident_record *r)
{
    struct vg_incident_record *slot = NULL;

    for (size_t i = 0; i < l->n && !slot; i++) {
        if (strcmp(l->items[i].id, r->id) == 0) {
            slot = &l->items[i];
            vg_incident_record_fini(slot);
        }
    }
    if (!slot) {
        slot = VG_ARRAY_PUSH(l->items, l->n, l->cap);
    }
    vg_incident_record_copy(slot, r);
}

void vg_incident_records_clear(struct vg_incident_records *l)
{
    for (size_t i = 0; i < l->n; i++) {
        vg_incident_record_fini(&l->items[i]);
    }
    l->n = 0;
}

void vg_incident_records_fini(struct vg_incident_records *l)
{
    vg_incident_records_clear(l);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ---- Timers --------------------------------------------------- */

void vg_timers_add(struct vg_timers *l, const char *topic, int32_t partition, const char *member,
                   int64_t due_ms, bool nx)
{
    struct vg_timer *t = VG_ARRAY_PUSH(l->items, l->n, l->cap);

    t->topic = dup_opt(topic);
    t->partition = partition;
    t->member = vg_strdup(member);
    t->due_ms = due_ms;
    t->nx = nx;
}

void vg_timers_clear(struct vg_timers *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].topic);
        free(l->items[i].member);
    }
    l->n = 0;
}

void vg_timers_fini(struct vg_timers *l)
{
    vg_timers_clear(l);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ---- Silences ------------------------------------------------- */

void vg_silence_fini(struct vg_silence *s)
{
    free(s->id);
    for (size_t i = 0; i < s->n_matchers; i++) {
        free(s->matchers[i]);
    }
    free(s->matchers);
    free(s->comment);
    free(s->created_by);
    memset(s, 0, sizeof(*s));
}

void vg_silences_free(struct vg_silence *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_silence_fini(&v[i]);
    }
    free(v);
}

char *vg_silence_to_json(const struct vg_silence *s)
{
    struct vg_buf b = {0};

    vg_buf_putc(&b, '{');
    put_str(&b, "id", s->id, false);
    put_key(&b, "matchers");
    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < s->n_matchers; i++) {
        if (i) {
            vg_buf_putc(&b, ',');
        }
        vg_json_append_string(&b, s->matchers[i]);
    }
    vg_buf_puts(&b, "],");
    put_time(&b, "starts_at", s->starts_at_ms, false, false);
    put_time(&b, "ends_at", s->ends_at_ms, false, false);
    put_str(&b, "comment", s->comment, false);
    put_str(&b, "created_by", s->created_by, true);
    vg_buf_putc(&b, '}');
    return vg_buf_steal(&b);
}

bool vg_silence_from_json(struct vg_silence *s, const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "matchers");
    const cJSON *it;
    bool ok = true;

    memset(s, 0, sizeof(*s));
    if (!cJSON_IsObject(root) || !obj_str(root, "id") || !cJSON_IsArray(m)) {
        cJSON_Delete(root);
        return false;
    }
    s->id = dup_str(root, "id");
    s->comment = dup_str(root, "comment");
    s->created_by = dup_str(root, "created_by");
    s->matchers = vg_calloc((size_t)cJSON_GetArraySize(m) + 1, sizeof(char *));
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it)) {
            ok = false;
            break;
        }
        s->matchers[s->n_matchers++] = vg_strdup(it->valuestring);
    }
    ok = ok && obj_time(root, "starts_at", &s->starts_at_ms) &&
         obj_time(root, "ends_at", &s->ends_at_ms);
    cJSON_Delete(root);
    if (!ok) {
        vg_silence_fini(s);
    }
    return ok;
}
