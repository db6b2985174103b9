/*
 * include/vigil/state.h: Resources in Redis hashes, the per-connection
 * Resource cache, the batch commit (one MULTI/EXEC round trip: hashes,
 * index sets, history streams, outbox pages, applied offsets), and the
 * read side used by `vigil get`. The outbox reader is in state_outbox.c,
 * the redis-server child in state_child.c, hiredis plumbing in state_redis.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define INC_FIELD_PREFIX "inc:"
#define POD_FIELD_PREFIX "pod:" /* issue 4: one per tracked pod, JSON (vg_pod_to_json) */

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (!errstr || errstr_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static void free_resource(void *p)
{
    vg_resource_destroy(p);
}

/* ---- lifecycle -------------------------------------------------------- */

vg_err_t vg_state_connect(struct vg_state **stp, const char *url, const char *prefix, char *errstr,
                          size_t errstr_size)
{
    struct vg_state *st;
    vg_err_t err;

    *stp = NULL;
    if (!prefix || prefix[0] == '\0') {
        prefix = "vigil";
    }
    if (strpbrk(prefix, "{} \t\r\n")) {
        set_err(errstr, errstr_size, "redis prefix \"%s\": must not contain braces or whitespace",
                prefix);
        return VG_ERR_INVALID;
    }
    st = vg_calloc(1, sizeof(*st));
    err = vg_redis_url_parse(url, &st->url, errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(st);
        return err;
    }
    vg_redact_url(url, st->redacted, sizeof(st->redacted));
    st->prefix = vg_strdup(prefix);
    st->cache = vg_map_new();
    st->indexed = vg_map_new();
    st->shadow = vg_map_new();
    st->pending_cursor = vg_strdup("0");
    st->claim_cursor = vg_strdup("0-0");
    err = vg_state_redis_open(st, errstr, errstr_size);
    if (err != VG_OK) {
        vg_state_destroy(st);
        return err;
    }
    *stp = st;
    return VG_OK;
}

void vg_state_destroy(struct vg_state *st)
{
    if (!st) {
        return;
    }
    vg_state_redis_close(st);
    vg_map_destroy(st->cache, free_resource);
    vg_map_destroy(st->indexed, NULL);
    vg_map_destroy(st->shadow, vg_free);
    vg_redis_url_fini(&st->url);
    vg_free(st->prefix);
    vg_free(st->pending_consumer);
    vg_free(st->pending_cursor);
    vg_free(st->claim_cursor);
    vg_free(st);
}

vg_err_t vg_state_reconnect(struct vg_state *st, char *errstr, size_t errstr_size)
{
    /* The server may be a different one now (restarted, failed over):
     * re-check the consumer group on the next outbox read, and hand out
     * this consumer's pending entries again (a batch cut short by the
     * failure is still pending for us). */
    st->group_ready = false;
    st->pending_done = false;
    vg_free(st->pending_cursor);
    st->pending_cursor = vg_strdup("0");
    return vg_state_redis_open(st, errstr, errstr_size);
}

vg_err_t vg_state_ping(struct vg_state *st)
{
    struct vg_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err = vg_state_need_ctx(st, NULL, 0);

    if (err != VG_OK) {
        return err;
    }
    vg_cmd_str(&c, "PING");
    vg_cmd_append(st, &c);
    vg_cmd_fini(&c);
    err = vg_state_read_replies(st, 1, &reply, "PING", NULL, 0);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        err = vg_redis_error_class(reply->str, reply->len);
    }
    freeReplyObject(reply);
    return err;
}

void vg_state_cache_clear(struct vg_state *st)
{
    vg_map_clear(st->cache, free_resource);
    vg_map_clear(st->indexed, NULL);
    vg_map_clear(st->shadow, vg_free);
}

/* ---- Resource <-> hash ------------------------------------------------ */

static void field_str(struct vg_cmd *c, const char *name, const char *value)
{
    vg_cmd_str(c, name);
    vg_cmd_str(c, value);
}

static void field_i64(struct vg_cmd *c, const char *name, int64_t value)
{
    vg_cmd_str(c, name);
    vg_cmd_i64(c, value);
}

static void field_incident(struct vg_cmd *c, const struct vg_open_incident *inc)
{
    cJSON *obj = cJSON_CreateObject();
    char *json;

    if (!obj || !cJSON_AddStringToObject(obj, "id", inc->id ? inc->id : "") ||
        !cJSON_AddStringToObject(obj, "severity", inc->severity ? inc->severity : "") ||
        !cJSON_AddNumberToObject(obj, "started_at", (double)inc->started_at_ms) ||
        !cJSON_AddNumberToObject(obj, "seq", (double)inc->seq)) {
        vg_oom("incident JSON");
    }
    /* issue 5: the entry's phase and rules/' private state (opaque here) */
    if ((inc->state && !cJSON_AddStringToObject(obj, "state", inc->state)) ||
        (inc->data && !cJSON_AddStringToObject(obj, "data", inc->data))) {
        vg_oom("incident JSON");
    }
    json = cJSON_PrintUnformatted(obj);
    if (!json) {
        vg_oom("incident JSON");
    }
    vg_cmd_fmt(c, INC_FIELD_PREFIX "%s", inc->monitor);
    vg_cmd_str(c, json);
    cJSON_free(json);
    cJSON_Delete(obj);
}

static void field_labels(struct vg_cmd *c, const struct vg_resource *res)
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
    field_str(c, "labels", json);
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

/* HSET key <every field of res>. */

/* ---- shadows: write only what changed --------------------------------- */

/*
 * What Redis holds of one Resource hash: its field names and a hash of each
 * value, in one allocation. Most events change a few fields (runtime, times,
 * offset), so a commit HSETs those instead of DEL + rewriting ~20 fields:
 * Redis, not vigil, is the bottleneck of apply.
 */
struct vg_res_shadow {
    size_t n;
    uint64_t *value_hash;
    uint32_t *name_off; /* into names */
    char *names;        /* NUL-separated */
};

static uint64_t hash_bytes(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Build a shadow from `n` name/value pairs given as (ptr, len) arrays. */
static struct vg_res_shadow *shadow_new(size_t n, const char *const *names,
                                        const size_t *name_lens, const char *const *values,
                                        const size_t *value_lens)
{
    size_t names_bytes = 0;
    struct vg_res_shadow *sh;
    char *p;

    for (size_t i = 0; i < n; i++) {
        names_bytes += name_lens[i] + 1;
    }
    sh = vg_malloc(sizeof(*sh) + n * (sizeof(uint64_t) + sizeof(uint32_t)) + names_bytes + 1);
    sh->n = n;
    sh->value_hash = (uint64_t *)(sh + 1);
    sh->name_off = (uint32_t *)(sh->value_hash + n);
    sh->names = (char *)(sh->name_off + n);
    p = sh->names;
    for (size_t i = 0; i < n; i++) {
        sh->name_off[i] = (uint32_t)(p - sh->names);
        memcpy(p, names[i], name_lens[i]);
        p[name_lens[i]] = '\0';
        p += name_lens[i] + 1;
        sh->value_hash[i] = hash_bytes(values[i], value_lens[i]);
    }
    *p = '\0';
    return sh;
}

/* From an HGETALL reply (name, value, name, value ...). */
static struct vg_res_shadow *shadow_from_reply(const redisReply *r)
{
    size_t n = r->elements / 2;
    const char **names = vg_malloc((n + 1) * sizeof(*names));
    const char **values = vg_malloc((n + 1) * sizeof(*values));
    size_t *nl = vg_malloc((n + 1) * sizeof(*nl));
    size_t *vl = vg_malloc((n + 1) * sizeof(*vl));
    struct vg_res_shadow *sh;

    for (size_t i = 0; i < n; i++) {
        names[i] = r->element[2 * i]->str;
        nl[i] = r->element[2 * i]->len;
        values[i] = r->element[2 * i + 1]->str;
        vl[i] = r->element[2 * i + 1]->len;
    }
    sh = shadow_new(n, names, nl, values, vl);
    vg_free(names);
    vg_free(values);
    vg_free(nl);
    vg_free(vl);
    return sh;
}

static void shadow_put(struct vg_state *st, const char *id, struct vg_res_shadow *sh)
{
    vg_free(vg_map_put(st->shadow, id, sh));
}

/*
 * Index of field `name` in `sh`, or -1. `hint` is where it was serialised:
 * shadows are built from the same serialisation (or from a hash written by
 * it), so the hint is almost always right and the scan rare.
 */
static long shadow_find(const struct vg_res_shadow *sh, const char *name, size_t len, size_t hint)
{
    if (hint < sh->n) {
        const char *s = sh->names + sh->name_off[hint];
        if (strncmp(s, name, len) == 0 && s[len] == '\0') {
            return (long)hint;
        }
    }
    for (size_t i = 0; i < sh->n; i++) {
        const char *s = sh->names + sh->name_off[i];
        if (strncmp(s, name, len) == 0 && s[len] == '\0') {
            return (long)i;
        }
    }
    return -1;
}

/* Every field of `res` as name/value argument pairs (no command, no key). */
static void serialize_resource(struct vg_cmd *c, const struct vg_resource *res)
{
    field_str(c, "id", res->id);
    field_str(c, "type", res->type);
    field_str(c, "name", res->name);
    field_str(c, "workspace", res->workspace);
    field_str(c, "version", res->version);
    field_str(c, "owner", res->owner);
    field_str(c, "status", res->status);
    field_str(c, "runtime", res->runtime);
    field_str(c, "health", vg_health_name(res->health));
    field_i64(c, "status_since", res->status_since_ms);
    field_i64(c, "runtime_since", res->runtime_since_ms);
    if (res->health_since_ms) {
        field_i64(c, "health_since", res->health_since_ms);
    }
    field_i64(c, "updated_at", res->updated_at_ms);
    field_i64(c, "event_time", res->event_time_ms);
    if (res->message) {
        field_str(c, "message", res->message);
    }
    if (res->pos.topic) {
        field_str(c, "topic", res->pos.topic);
        field_i64(c, "partition", res->pos.partition);
        field_i64(c, "offset", res->pos.offset);
    }
    for (size_t i = 0; i < res->n_incidents; i++) {
        field_incident(c, &res->incidents[i]);
    }
    /* issue 5: the Resource's labels, one JSON object */
    if (res->n_labels > 0) {
        field_labels(c, res);
    }
    /* issue 4: what decided the runtime, and one field per tracked pod */
    if (res->runtime_reason[0]) {
        field_str(c, "runtime_reason", res->runtime_reason);
    }
    if (res->runtime_pod[0]) {
        field_str(c, "runtime_pod", res->runtime_pod);
    }
    for (size_t i = 0; i < res->n_pods; i++) {
        char *json = vg_pod_to_json(&res->pods[i]);

        vg_cmd_fmt(c, POD_FIELD_PREFIX "%s", res->pods[i].name);
        vg_cmd_str(c, json);
        vg_free(json);
    }
}

/*
 * Queue the write of `res`'s hash: against its shadow, HSET only the fields
 * whose value changed and HDEL those that disappeared (closed incidents,
 * deleted pods); without a shadow, DEL and write everything. The new shadow
 * goes to `pending` (installed only after EXEC succeeded). Returns the
 * number of commands queued.
 */
static size_t append_resource_write(struct vg_state *st, struct vg_cmd *c, const char *key,
                                    const struct vg_resource *res, struct vg_map *pending)
{
    struct vg_cmd f = {0};
    const struct vg_res_shadow *old = vg_map_get(st->shadow, res->id);
    size_t n_pairs;
    const char **names;
    const char **values;
    size_t *nl;
    size_t *vl;
    size_t queued = 0;
    size_t n_changed = 0;

    serialize_resource(&f, res);
    n_pairs = f.n / 2;
    names = vg_malloc((n_pairs + 1) * sizeof(*names));
    values = vg_malloc((n_pairs + 1) * sizeof(*values));
    nl = vg_malloc((n_pairs + 1) * sizeof(*nl));
    vl = vg_malloc((n_pairs + 1) * sizeof(*vl));
    for (size_t i = 0; i < n_pairs; i++) {
        names[i] = f.data.data + f.pos[2 * i].off;
        nl[i] = f.pos[2 * i].len;
        values[i] = f.data.data + f.pos[2 * i + 1].off;
        vl[i] = f.pos[2 * i + 1].len;
    }
    if (!old) {
        vg_cmd_str(c, "DEL");
        vg_cmd_str(c, key);
        vg_cmd_append(st, c);
        queued++;
    }
    for (size_t i = 0; i < n_pairs; i++) {
        long j = old ? shadow_find(old, names[i], nl[i], i) : -1;
        if (j >= 0 && old->value_hash[j] == hash_bytes(values[i], vl[i])) {
            continue;
        }
        if (n_changed++ == 0) {
            vg_cmd_str(c, "HSET");
            vg_cmd_str(c, key);
        }
        vg_cmd_arg(c, names[i], nl[i]);
        vg_cmd_arg(c, values[i], vl[i]);
    }
    if (n_changed > 0) {
        vg_cmd_append(st, c);
        queued++;
    }
    if (old) {
        size_t n_gone = 0;
        for (size_t j = 0; j < old->n; j++) {
            const char *name = old->names + old->name_off[j];
            size_t len = strlen(name);
            bool kept = j < n_pairs && nl[j] == len && memcmp(names[j], name, len) == 0;
            for (size_t i = 0; i < n_pairs && !kept; i++) {
                kept = nl[i] == len && memcmp(names[i], name, len) == 0;
            }
            if (kept) {
                continue;
            }
            if (n_gone++ == 0) {
                vg_cmd_str(c, "HDEL");
                vg_cmd_str(c, key);
            }
            vg_cmd_str(c, name);
        }
        if (n_gone > 0) {
            vg_cmd_append(st, c);
            queued++;
        }
    }
    vg_free(vg_map_put(pending, res->id, shadow_new(n_pairs, names, nl, values, vl)));
    vg_free(names);
    vg_free(values);
    vg_free(nl);
    vg_free(vl);
    vg_cmd_fini(&f);
    return queued;
}

static bool reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);

    return r->len == n && memcmp(r->str, s, n) == 0;
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
    if (cJSON_IsString(id) && cJSON_IsString(sev) && cJSON_IsNumber(started) &&
        cJSON_IsNumber(seq) && monitor[0] != '\0' && seq->valuedouble >= 0 &&
        seq->valuedouble <= 2147483647.0) {
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

/*
 * Build a Resource from an HGETALL reply (non-empty array). NULL when the
 * hash is not one of ours (`why` says which field).
 */
static struct vg_resource *resource_from_reply(const redisReply *r, char *why, size_t why_size)
{
    struct vg_resource *res = vg_calloc(1, sizeof(*res));
    const char *bad = NULL;
    int64_t v;

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
        } else if (reply_is(k, "id")) {
            set_str(&res->id, val);
        } else if (reply_is(k, "type")) {
            set_str(&res->type, val);
        } else if (reply_is(k, "name")) {
            set_str(&res->name, val);
        } else if (reply_is(k, "workspace")) {
            set_str(&res->workspace, val);
        } else if (reply_is(k, "version")) {
            set_str(&res->version, val);
        } else if (reply_is(k, "owner")) {
            set_str(&res->owner, val);
        } else if (reply_is(k, "labels")) {
            if (!parse_labels(res, val)) {
                VG_LOG_WARN("state", "resource %s: dropping unreadable labels field",
                            res->id ? res->id : "?");
            }
        } else if (reply_is(k, "message")) {
            set_str(&res->message, val);
        } else if (reply_is(k, "topic")) {
            set_str(&res->pos.topic, val);
        } else if (reply_is(k, "status")) {
            bad = copy_value(res->status, val) ? NULL : "status";
        } else if (reply_is(k, "runtime")) {
            bad = copy_value(res->runtime, val) ? NULL : "runtime";
        } else if (reply_is(k, "health")) {
            res->health = vg_health_parse(val->str);
        } else if (reply_is(k, "status_since")) {
            bad = vg_parse_i64(val->str, &res->status_since_ms) ? NULL : "status_since";
        } else if (reply_is(k, "runtime_since")) {
            bad = vg_parse_i64(val->str, &res->runtime_since_ms) ? NULL : "runtime_since";
        } else if (reply_is(k, "health_since")) {
            bad = vg_parse_i64(val->str, &res->health_since_ms) ? NULL : "health_since";
        } else if (reply_is(k, "updated_at")) {
            bad = vg_parse_i64(val->str, &res->updated_at_ms) ? NULL : "updated_at";
        } else if (reply_is(k, "event_time")) {
            bad = vg_parse_i64(val->str, &res->event_time_ms) ? NULL : "event_time";
        } else if (reply_is(k, "offset")) {
            bad = vg_parse_i64(val->str, &res->pos.offset) ? NULL : "offset";
        } else if (reply_is(k, "partition")) {
            if (vg_parse_i64(val->str, &v) && v >= 0 && v <= INT32_MAX) {
                res->pos.partition = (int32_t)v;
            } else {
                bad = "partition";
            }
        } else if (reply_is(k, "runtime_reason")) {
            snprintf(res->runtime_reason, sizeof(res->runtime_reason), "%.*s", (int)val->len,
                     val->str);
        } else if (reply_is(k, "runtime_pod")) {
            snprintf(res->runtime_pod, sizeof(res->runtime_pod), "%.*s", (int)val->len,
                     val->str);
        } else if (k->len > strlen(POD_FIELD_PREFIX) &&
                   memcmp(k->str, POD_FIELD_PREFIX, strlen(POD_FIELD_PREFIX)) == 0) {
            struct vg_pod pod;

            /* issue 4. An unreadable pod is dropped: its next event brings it back. */
            if (vg_pod_from_json(&pod, k->str + strlen(POD_FIELD_PREFIX), val->str, val->len)) {
                vg_resource_put_pod(res, &pod);
                vg_pod_fini(&pod);
            } else {
                VG_LOG_WARN("state", "resource %s: dropping unreadable pod field %s",
                            res->id ? res->id : "?", k->str);
            }
        } else if (k->len > strlen(INC_FIELD_PREFIX) &&
                   memcmp(k->str, INC_FIELD_PREFIX, strlen(INC_FIELD_PREFIX)) == 0) {
            if (!parse_incident(res, k->str + strlen(INC_FIELD_PREFIX), val)) {
                /* One unreadable incident must not hide the Resource: drop it
                 * (its monitor reopens it if the condition still holds). */
                VG_LOG_WARN("state", "resource %s: dropping unreadable incident field %s",
                            res->id ? res->id : "?", k->str);
            }
        }
        /* Unknown fields are ignored: written by a newer vigil. */
    }
    if (!bad) {
        bad = !res->id          ? "id missing"
              : !res->type      ? "type missing"
              : !res->name      ? "name missing"
              : !res->workspace ? "workspace missing"
              : !res->version   ? "version missing"
                                : NULL;
    }
    if (bad) {
        goto fail;
    }
    if (!res->owner) {
        res->owner = vg_strdup("");
    }
    /* Hash field order is arbitrary: give incidents a stable order. */
    if (res->n_incidents > 1) {
        qsort(res->incidents, res->n_incidents, sizeof(*res->incidents), cmp_incident);
    }
    res->dirty = false;
    return res;
fail:
    set_err(why, why_size, "%s", bad);
    vg_resource_destroy(res);
    return NULL;
}

/* ---- resolve ---------------------------------------------------------- */

vg_err_t vg_state_resolve(struct vg_state *st, const struct vg_event *evs, size_t n,
                          struct vg_resource **out, char *errstr, size_t errstr_size)
{
    struct vg_map *seen = NULL;
    const struct vg_event **miss = NULL;
    redisReply **replies = NULL;
    size_t n_miss = 0;
    size_t cap_miss = 0;
    struct vg_cmd c = {0};
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        if (vg_map_get(st->cache, evs[i].id)) {
            continue;
        }
        if (!seen) {
            seen = vg_map_new();
        }
        if (!vg_map_get(seen, evs[i].id)) {
            vg_map_put(seen, evs[i].id, (void *)&evs[i]);
            *VG_ARRAY_PUSH(miss, n_miss, cap_miss) = &evs[i];
        }
    }
    if (n_miss > 0) {
        err = vg_state_need_ctx(st, errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        /* Every miss in one pipelined round trip. */
        for (size_t j = 0; j < n_miss; j++) {
            char *key = vg_state_key_res(st, "res", miss[j]->id);

            vg_cmd_str(&c, "HGETALL");
            vg_cmd_str(&c, key);
            vg_cmd_append(st, &c);
            vg_free(key);
        }
        replies = vg_calloc(n_miss, sizeof(*replies));
        err = vg_state_read_replies(st, n_miss, replies, "HGETALL", errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        for (size_t j = 0; j < n_miss; j++) {
            const redisReply *r = replies[j];
            struct vg_resource *res = NULL;
            char why[128];

            if (r->type == REDIS_REPLY_ERROR) {
                err = vg_state_reply_error(st, "HGETALL", r, errstr, errstr_size);
                break;
            }
            if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
                res = resource_from_reply(r, why, sizeof(why));
                if (res && strcmp(res->id, miss[j]->id) != 0) {
                    vg_resource_destroy(res);
                    res = NULL;
                    snprintf(why, sizeof(why), "id field differs from the key");
                }
                if (!res) {
                    VG_LOG_WARN("state",
                                "resource %s: stored hash unreadable (%s), starting "
                                "from the event",
                                miss[j]->id, why);
                }
            }
            if (res) {
                vg_map_put(st->indexed, miss[j]->id, (void *)1);
                shadow_put(st, miss[j]->id, shadow_from_reply(r));
            } else {
                res = vg_resource_new_from_event(miss[j]);
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
                    /* not in Redis: nothing to delete, every field is new */
                    shadow_put(st, miss[j]->id, shadow_new(0, NULL, NULL, NULL, NULL));
                }
            }
            vg_map_put(st->cache, miss[j]->id, res);
        }
        vg_redis_replies_free(replies, n_miss);
    }
out:
    if (err == VG_OK) {
        for (size_t i = 0; i < n; i++) {
            out[i] = vg_map_get(st->cache, evs[i].id);
        }
    }
    vg_cmd_fini(&c);
    vg_free(replies);
    vg_free(miss);
    vg_map_destroy(seen, NULL);
    return err;
}

/*
 * Issue 5: Resources by id for fired timers. Like vg_state_resolve, but an
 * unknown (or unreadable) id stays NULL instead of being created.
 */
vg_err_t vg_state_resolve_ids(struct vg_state *st, const char *const *ids, size_t n,
                              struct vg_resource **out, char *errstr, size_t errstr_size)
{
    const char **miss = NULL;
    redisReply **replies = NULL;
    size_t n_miss = 0;
    size_t cap_miss = 0;
    struct vg_cmd c = {0};
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        if (vg_map_get(st->cache, ids[i])) {
            continue;
        }
        for (size_t j = 0; j < n_miss && !dup; j++) {
            dup = strcmp(miss[j], ids[i]) == 0;
        }
        if (!dup) {
            *VG_ARRAY_PUSH(miss, n_miss, cap_miss) = ids[i];
        }
    }
    if (n_miss > 0) {
        err = vg_state_need_ctx(st, errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        for (size_t j = 0; j < n_miss; j++) {
            char *key = vg_state_key_res(st, "res", miss[j]);

            vg_cmd_str(&c, "HGETALL");
            vg_cmd_str(&c, key);
            vg_cmd_append(st, &c);
            vg_free(key);
        }
        replies = vg_calloc(n_miss, sizeof(*replies));
        err = vg_state_read_replies(st, n_miss, replies, "HGETALL", errstr, errstr_size);
        if (err != VG_OK) {
            goto out;
        }
        for (size_t j = 0; j < n_miss && err == VG_OK; j++) {
            const redisReply *r = replies[j];
            struct vg_resource *res = NULL;
            char why[128];

            if (r->type == REDIS_REPLY_ERROR) {
                err = vg_state_reply_error(st, "HGETALL", r, errstr, errstr_size);
            } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
                res = resource_from_reply(r, why, sizeof(why));
                if (res && strcmp(res->id, miss[j]) != 0) {
                    vg_resource_destroy(res);
                    res = NULL;
                }
                if (res) {
                    vg_map_put(st->cache, miss[j], res);
                }
            }
        }
        vg_redis_replies_free(replies, n_miss);
    }
out:
    for (size_t i = 0; i < n; i++) {
        out[i] = err == VG_OK ? vg_map_get(st->cache, ids[i]) : NULL;
    }
    vg_cmd_fini(&c);
    vg_free(replies);
    vg_free(miss);
    return err;
}

/* ---- commit ----------------------------------------------------------- */

static void append_sadd(struct vg_state *st, struct vg_cmd *c, const char *key, const char *member)
{
    vg_cmd_str(c, "SADD");
    vg_cmd_str(c, key);
    vg_cmd_str(c, member);
    vg_cmd_append(st, c);
}

static void append_history(struct vg_state *st, struct vg_cmd *c, const struct vg_transition *t)
{
    const struct vg_kafka_pos *pos = t->ev ? &t->ev->pos : &t->res->pos;
    const char *message = t->ev ? t->ev->message : t->res->message;
    char *key = vg_state_key_res(st, "hist", t->res->id);

    vg_cmd_str(c, "XADD");
    vg_cmd_str(c, key);
    vg_cmd_str(c, "MAXLEN");
    vg_cmd_str(c, "~");
    vg_cmd_str(c, VG_HISTORY_MAXLEN);
    vg_cmd_str(c, "*");
    field_str(c, "field", vg_field_name(t->field));
    field_str(c, "from", t->from);
    field_str(c, "to", t->to);
    field_i64(c, "at", t->at_ms);
    field_str(c, "topic", pos->topic ? pos->topic : "");
    field_i64(c, "partition", pos->partition);
    field_i64(c, "offset", pos->offset);
    if (message) {
        field_str(c, "message", message);
    }
    /* issue 4: runtime from pods says why, and which pod */
    if (t->reason[0]) {
        field_str(c, "reason", t->reason);
    }
    if (t->pod[0]) {
        field_str(c, "pod", t->pod);
    }
    vg_cmd_append(st, c);
    vg_free(key);
}

/* Issue 4: a late event or a Kubernetes Event's log line (struct vg_history_note). */
static void append_note(struct vg_state *st, struct vg_cmd *c, const struct vg_history_note *nt)
{
    const struct vg_event *ev = nt->ev;
    char *key = vg_state_key_res(st, "hist", nt->id);

    vg_cmd_str(c, "XADD");
    vg_cmd_str(c, key);
    vg_cmd_str(c, "MAXLEN");
    vg_cmd_str(c, "~");
    vg_cmd_str(c, VG_HISTORY_MAXLEN);
    vg_cmd_str(c, "*");
    if (nt->late) {
        field_str(c, "field", vg_field_name(nt->field));
        field_str(c, "from", nt->from);
        field_str(c, "to", nt->to);
    }
    field_i64(c, "at", ev->time_ms);
    field_str(c, "topic", ev->pos.topic ? ev->pos.topic : "");
    field_i64(c, "partition", ev->pos.partition);
    field_i64(c, "offset", ev->pos.offset);
    if (ev->message) {
        field_str(c, "message", ev->message);
    }
    if (nt->late) {
        field_str(c, "late", "1");
        if (nt->reason[0]) {
            field_str(c, "reason", nt->reason);
        }
        if (ev->pod) {
            field_str(c, "pod", ev->pod->name);
        }
    } else {
        field_str(c, "reason", ev->log_reason ? ev->log_reason : "");
        field_i64(c, "count", ev->log_count);
        field_str(c, "type", ev->log_type ? ev->log_type : "");
        field_str(c, "pod", ev->log_pod ? ev->log_pod : "");
        field_str(c, "namespace", ev->log_ns ? ev->log_ns : "");
    }
    vg_cmd_append(st, c);
    vg_free(key);
}

static void append_pod_link(struct vg_state *st, struct vg_cmd *c, const struct vg_pod_link *l)
{
    vg_cmd_str(c, "SET");
    vg_cmd_fmt(c, "%s:pod:%s/%s", st->prefix, l->ns, l->pod);
    vg_cmd_str(c, l->id);
    if (l->deleted) {
        vg_cmd_str(c, "EX");
        vg_cmd_i64(c, VG_POD_LINK_TTL_S);
    }
    vg_cmd_append(st, c);
}

vg_err_t vg_state_pod_lookup(struct vg_state *st, const char *const *ns, const char *const *pods,
                             size_t n, char **out, char *errstr, size_t errstr_size)
{
    struct vg_cmd c = {0};
    redisReply **replies;
    vg_err_t err;

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    if (n == 0) {
        return VG_OK;
    }
    err = vg_state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        vg_cmd_str(&c, "GET");
        vg_cmd_fmt(&c, "%s:pod:%s/%s", st->prefix, ns[i], pods[i]);
        vg_cmd_append(st, &c);
    }
    vg_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = vg_state_read_replies(st, n, replies, "GET pod", errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(replies); /* none left allocated */
        return err;
    }
    for (size_t i = 0; err == VG_OK && i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            err = vg_state_reply_error(st, "GET pod", replies[i], errstr, errstr_size);
        } else if (replies[i]->type == REDIS_REPLY_STRING) {
            out[i] = vg_strndup(replies[i]->str, replies[i]->len);
        }
    }
    if (err != VG_OK) {
        for (size_t i = 0; i < n; i++) {
            vg_free(out[i]);
            out[i] = NULL;
        }
    }
    vg_redis_replies_free(replies, n);
    vg_free(replies);
    return err;
}

static void append_page(struct vg_state *st, struct vg_cmd *c, const char *outbox_key,
                        const struct vg_page *pg)
{
    char *body = vg_page_to_json(pg);

    vg_cmd_str(c, "XADD");
    vg_cmd_str(c, outbox_key);
    vg_cmd_str(c, "*");
    field_str(c, "id", pg->id);
    field_str(c, "sink", pg->sink);
    field_str(c, "pager", pg->pager);
    field_str(c, "body", body);
    vg_cmd_append(st, c);
    vg_free(body);
}

/*
 * ZADD P:idx:name 0 "<name>\0<id>" (issue 3): lexicographic order is name
 * then id, the order `vigil get` prints, and a glob's literal prefix is a
 * ZRANGEBYLEX range. Names never contain NUL (the decoder rejects it), and
 * a Resource's name is part of its id, so a member never goes stale.
 */
static void append_name_index(struct vg_state *st, struct vg_cmd *c, const struct vg_resource *res)
{
    size_t name_len = strlen(res->name);
    size_t id_len = strlen(res->id);
    char *member = vg_malloc(name_len + 1 + id_len);

    memcpy(member, res->name, name_len);
    member[name_len] = '\0';
    memcpy(member + name_len + 1, res->id, id_len);
    vg_cmd_str(c, "ZADD");
    vg_cmd_fmt(c, "%s:idx:name", st->prefix);
    vg_cmd_str(c, "0");
    vg_cmd_arg(c, member, name_len + 1 + id_len);
    vg_cmd_append(st, c);
    vg_free(member);
}

/* Queue MULTI ... EXEC for `cm`; returns the number of commands queued. */
/*
 * HSET P:offsets:cluster for the offsets that carry a cluster id (only
 * when it changed: the pipeline sends it once per partition and load).
 * Returns the number of commands appended (0 or 1).
 */
static size_t append_offset_clusters(struct vg_state *st, struct vg_cmd *c,
                                     const struct vg_offset *offsets, const char *const *clusters,
                                     size_t n)
{
    char *key;
    bool any = false;

    for (size_t i = 0; clusters && i < n && !any; i++) {
        any = clusters[i] != NULL;
    }
    if (!any) {
        return 0;
    }
    key = vg_state_key(st, "offsets:cluster");
    vg_cmd_str(c, "HSET");
    vg_cmd_str(c, key);
    for (size_t i = 0; i < n; i++) {
        if (clusters[i]) {
            vg_cmd_fmt(c, "%s/%d", offsets[i].topic, (int)offsets[i].partition);
            vg_cmd_str(c, clusters[i]);
        }
    }
    vg_cmd_append(st, c);
    vg_free(key);
    return 1;
}

static size_t append_commit(struct vg_state *st, struct vg_cmd *c, const struct vg_commit *cm,
                            struct vg_map *pending)
{
    char *idx_all = vg_state_key(st, "idx:all");
    size_t n = 0;

    vg_cmd_str(c, "MULTI");
    vg_cmd_append(st, c);
    n++;
    for (size_t i = 0; i < cm->n_res; i++) {
        const struct vg_resource *res = cm->res[i];
        char *key;
        char *idx;

        if (!res->dirty) {
            continue;
        }
        key = vg_state_key_res(st, "res", res->id);
        n += append_resource_write(st, c, key, res, pending);
        vg_free(key);
        if (vg_map_get(st->indexed, res->id)) {
            continue; /* a known Resource: its index entries are there already */
        }
        append_sadd(st, c, idx_all, res->id);
        idx = vg_asprintf("%s:idx:type:%s", st->prefix, res->type);
        append_sadd(st, c, idx, res->id);
        vg_free(idx);
        idx = vg_asprintf("%s:idx:ws:%s", st->prefix, res->workspace);
        append_sadd(st, c, idx, res->id);
        vg_free(idx);
        append_name_index(st, c, res);
        n += 4;
    }
    for (size_t i = 0, note = 0; i <= cm->n_trans; i++) {
        /* issue 4: late events and log lines, in Kafka order among the transitions */
        while (note < cm->n_notes && (cm->notes[note].before_trans <= i || i == cm->n_trans)) {
            append_note(st, c, &cm->notes[note++]);
            n++;
        }
        if (i < cm->n_trans) {
            append_history(st, c, &cm->trans[i]);
            n++;
        }
    }
    for (size_t i = 0; i < cm->n_pod_links; i++) {
        append_pod_link(st, c, &cm->pod_links[i]);
        n++;
    }
    if (cm->n_pages > 0) {
        char *outbox = vg_state_key(st, "outbox");

        for (size_t i = 0; i < cm->n_pages; i++) {
            if (cm->pages[i].group) {
                /* issue 5: a grouped pager's page waits in its group buffer */
                n += vg_state_append_group_page(st, c, &cm->pages[i]);
                continue;
            }
            append_page(st, c, outbox, &cm->pages[i]);
            n++;
        }
        vg_free(outbox);
    }
    if (cm->n_offsets > 0) {
        char *key = vg_state_key(st, "offsets");

        vg_cmd_str(c, "HSET");
        vg_cmd_str(c, key);
        for (size_t i = 0; i < cm->n_offsets; i++) {
            vg_cmd_fmt(c, "%s/%d", cm->offsets[i].topic, (int)cm->offsets[i].partition);
            vg_cmd_i64(c, cm->offsets[i].offset);
        }
        vg_cmd_append(st, c);
        vg_free(key);
        n++;
        n += append_offset_clusters(st, c, cm->offsets, cm->offset_clusters, cm->n_offsets);
    }
    /* issue 5: incident records, then timers (a fired one is removed before it is re-set) */
    n += vg_state_append_incidents(st, c, cm->incidents, cm->n_incidents);
    n += vg_state_append_timers(st, c, cm->timers, cm->n_timers);
    vg_cmd_str(c, "EXEC");
    vg_cmd_append(st, c);
    n++;
    vg_free(idx_all);
    return n;
}

/* Judge the replies of MULTI, the queued commands and EXEC (last). */
static vg_err_t check_commit_replies(const struct vg_state *st, redisReply **replies, size_t n,
                                     char *errstr, size_t errstr_size)
{
    const redisReply *exec = replies[n - 1];

    if (replies[0]->type == REDIS_REPLY_ERROR) {
        return vg_state_reply_error(st, "MULTI", replies[0], errstr, errstr_size);
    }
    if (exec->type == REDIS_REPLY_ARRAY) {
        /* Errors inside EXEC (WRONGTYPE: a foreign key under our prefix)
         * mean the other commands did run: report, never mark clean. */
        for (size_t i = 0; i < exec->elements; i++) {
            if (exec->element[i]->type == REDIS_REPLY_ERROR) {
                return vg_state_reply_error(st, "EXEC", exec->element[i], errstr, errstr_size);
            }
        }
        return VG_OK;
    }
    /* EXEC refused (EXECABORT after a queueing error such as OOM) or nil:
     * nothing was applied. Name the first queueing error if any. */
    for (size_t i = 1; i + 1 < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            set_err(errstr, errstr_size, "redis %s: commit aborted: %.*s", st->redacted,
                    (int)replies[i]->len, replies[i]->str);
            return VG_ERR_BACKEND;
        }
    }
    if (exec->type == REDIS_REPLY_ERROR) {
        set_err(errstr, errstr_size, "redis %s: commit aborted: %.*s", st->redacted, (int)exec->len,
                exec->str);
    } else {
        set_err(errstr, errstr_size, "redis %s: commit aborted: EXEC returned nil", st->redacted);
    }
    return VG_ERR_BACKEND;
}

vg_err_t vg_state_commit(struct vg_state *st, const struct vg_commit *cm, char *errstr,
                         size_t errstr_size)
{
    struct vg_cmd c = {0};
    redisReply **replies;
    struct vg_map *pending;
    size_t n_dirty = 0;
    size_t n;
    vg_err_t err;

    for (size_t i = 0; i < cm->n_res; i++) {
        n_dirty += cm->res[i]->dirty ? 1 : 0;
    }
    if (n_dirty == 0 && cm->n_trans == 0 && cm->n_pages == 0 && cm->n_offsets == 0 &&
        cm->n_notes == 0 && cm->n_pod_links == 0 && cm->n_timers == 0 && cm->n_incidents == 0) {
        return VG_OK;
    }
    err = vg_state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    pending = vg_map_new();
    n = append_commit(st, &c, cm, pending);
    vg_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = vg_state_read_replies(st, n, replies, "commit", errstr, errstr_size);
    if (err == VG_OK) {
        err = check_commit_replies(st, replies, n, errstr, errstr_size);
        vg_redis_replies_free(replies, n);
    }
    vg_free(replies);
    if (err == VG_OK) {
        size_t iter = 0;
        const char *id;
        void *sh;
        for (size_t i = 0; i < cm->n_res; i++) {
            if (cm->res[i]->dirty) {
                vg_map_put(st->indexed, cm->res[i]->id, (void *)1);
            }
            cm->res[i]->dirty = false;
        }
        while (vg_map_next(pending, &iter, &id, &sh)) {
            shadow_put(st, id, sh);
        }
        vg_map_destroy(pending, NULL);
    } else {
        /* Unknown what Redis holds now: the next write of each Resource is whole. */
        vg_map_destroy(pending, vg_free);
        vg_map_clear(st->shadow, vg_free);
    }
    return err;
}

vg_err_t vg_state_applied_position(struct vg_state *st, const char *topic, int32_t partition,
                                   int64_t *offset, char **cluster, char *errstr,
                                   size_t errstr_size)
{
    struct vg_cmd c = {0};
    redisReply *replies[2] = {NULL, NULL};
    char *key;
    vg_err_t err = vg_state_need_ctx(st, errstr, errstr_size);

    *offset = -1;
    *cluster = NULL;
    if (err != VG_OK) {
        return err;
    }
    for (int i = 0; i < 2; i++) {
        key = vg_state_key(st, i == 0 ? "offsets" : "offsets:cluster");
        vg_cmd_str(&c, "HGET");
        vg_cmd_str(&c, key);
        vg_cmd_fmt(&c, "%s/%d", topic, (int)partition);
        vg_cmd_append(st, &c);
        vg_free(key);
    }
    vg_cmd_fini(&c);
    err = vg_state_read_replies(st, 2, replies, "HGET offsets", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (replies[0]->type == REDIS_REPLY_ERROR) {
        err = vg_state_reply_error(st, "HGET offsets", replies[0], errstr, errstr_size);
    } else if (replies[1]->type == REDIS_REPLY_ERROR) {
        err = vg_state_reply_error(st, "HGET offsets:cluster", replies[1], errstr, errstr_size);
    } else if (replies[0]->type == REDIS_REPLY_STRING && !vg_parse_i64(replies[0]->str, offset)) {
        set_err(errstr, errstr_size, "redis %s: offset of %s/%d is not a number: %.*s",
                st->redacted, topic, (int)partition, (int)replies[0]->len, replies[0]->str);
        err = VG_ERR_INVALID;
    } else if (replies[1]->type == REDIS_REPLY_STRING) {
        *cluster = vg_strndup(replies[1]->str, replies[1]->len);
    }
    vg_redis_replies_free(replies, 2);
    if (err != VG_OK) {
        *offset = -1;
    }
    return err;
}

vg_err_t vg_state_applied_offset(struct vg_state *st, const char *topic, int32_t partition,
                                 int64_t *out, char *errstr, size_t errstr_size)
{
    struct vg_cmd c = {0};
    redisReply *reply = NULL;
    char *key;
    vg_err_t err = vg_state_need_ctx(st, errstr, errstr_size);

    *out = -1;
    if (err != VG_OK) {
        return err;
    }
    key = vg_state_key(st, "offsets");
    vg_cmd_str(&c, "HGET");
    vg_cmd_str(&c, key);
    vg_cmd_fmt(&c, "%s/%d", topic, (int)partition);
    vg_cmd_append(st, &c);
    vg_cmd_fini(&c);
    vg_free(key);
    err = vg_state_read_replies(st, 1, &reply, "HGET offsets", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        err = vg_state_reply_error(st, "HGET offsets", reply, errstr, errstr_size);
    } else if (reply->type == REDIS_REPLY_STRING) {
        if (!vg_parse_i64(reply->str, out)) {
            set_err(errstr, errstr_size, "redis %s: offset of %s/%d is not a number: %.*s",
                    st->redacted, topic, (int)partition, (int)reply->len, reply->str);
            err = VG_ERR_INVALID;
        }
    }
    freeReplyObject(reply);
    return err;
}

/* ---- read side -------------------------------------------------------- */

/*
 * HGETALL each of `ids` in one round trip. out[i] is NULL for a missing
 * or unreadable hash (`strict`: unreadable is VG_ERR_INVALID instead).
 */
static vg_err_t load_many(struct vg_state *st, const char *const *ids, size_t n, bool strict,
                          struct vg_resource **out, char *errstr, size_t errstr_size)
{
    struct vg_cmd c = {0};
    redisReply **replies;
    vg_err_t err;

    if (n == 0) {
        return VG_OK;
    }
    for (size_t i = 0; i < n; i++) {
        char *key = vg_state_key_res(st, "res", ids[i]);

        vg_cmd_str(&c, "HGETALL");
        vg_cmd_str(&c, key);
        vg_cmd_append(st, &c);
        vg_free(key);
    }
    vg_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = vg_state_read_replies(st, n, replies, "HGETALL", errstr, errstr_size);
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    for (size_t i = 0; i < n && err == VG_OK; i++) {
        const redisReply *r = replies[i];
        char why[128];

        if (r->type == REDIS_REPLY_ERROR) {
            err = vg_state_reply_error(st, "HGETALL", r, errstr, errstr_size);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            out[i] = resource_from_reply(r, why, sizeof(why));
            if (!out[i] && strict) {
                set_err(errstr, errstr_size, "redis %s: resource %s: unreadable hash: %s",
                        st->redacted, ids[i], why);
                err = VG_ERR_INVALID;
            } else if (!out[i]) {
                VG_LOG_WARN("state", "resource %s: unreadable hash skipped: %s", ids[i], why);
            }
        }
    }
    if (err != VG_OK) {
        for (size_t i = 0; i < n; i++) {
            vg_resource_destroy(out[i]);
            out[i] = NULL;
        }
    }
    vg_redis_replies_free(replies, n);
    vg_free(replies);
    return err;
}

static int cmp_resource(const void *a, const void *b)
{
    const struct vg_resource *ra = *(const struct vg_resource *const *)a;
    const struct vg_resource *rb = *(const struct vg_resource *const *)b;
    int d = strcmp(ra->name, rb->name);

    return d != 0 ? d : strcmp(ra->id, rb->id);
}

static bool filter_match(const struct vg_state_filter *f, const struct vg_resource *res)
{
    if (!f) {
        return true;
    }
    return (!f->type || strcmp(f->type, res->type) == 0) &&
           (!f->workspace || strcmp(f->workspace, res->workspace) == 0) &&
           (!f->owner || strcmp(f->owner, res->owner) == 0) &&
           (!f->name_glob || vg_glob_match(f->name_glob, res->name));
}

/* Queue the index-set query for `f`'s type/workspace (SMEMBERS P:idx:all when neither). */
static void append_set_query(struct vg_state *st, struct vg_cmd *c, const char *type,
                             const char *ws)
{
    if (type && ws) {
        vg_cmd_str(c, "SINTER");
        vg_cmd_fmt(c, "%s:idx:type:%s", st->prefix, type);
        vg_cmd_fmt(c, "%s:idx:ws:%s", st->prefix, ws);
    } else if (type) {
        vg_cmd_str(c, "SMEMBERS");
        vg_cmd_fmt(c, "%s:idx:type:%s", st->prefix, type);
    } else if (ws) {
        vg_cmd_str(c, "SMEMBERS");
        vg_cmd_fmt(c, "%s:idx:ws:%s", st->prefix, ws);
    } else {
        vg_cmd_str(c, "SMEMBERS");
        vg_cmd_fmt(c, "%s:idx:all", st->prefix);
    }
    vg_cmd_append(st, c);
}

/* ZRANGEBYLEX P:idx:name over the members whose name starts with the glob's literal prefix. */
static void append_name_query(struct vg_state *st, struct vg_cmd *c, const char *glob)
{
    size_t lit = strcspn(glob, "*?[\\");

    vg_cmd_str(c, "ZRANGEBYLEX");
    vg_cmd_fmt(c, "%s:idx:name", st->prefix);
    if (lit == 0) {
        vg_cmd_str(c, "-");
        vg_cmd_str(c, "+");
    } else {
        /* [prefix .. (prefix\xff: UTF-8 text never holds a 0xff byte, so every
         * member starting with the prefix sorts below prefix\xff. */
        vg_cmd_fmt(c, "[%.*s", (int)lit, glob);
        vg_cmd_fmt(c, "(%.*s\xff", (int)lit, glob);
    }
    vg_cmd_append(st, c);
}

static bool reply_is_array(const struct vg_state *st, const redisReply *r, const char *what,
                           vg_err_t *err, char *errstr, size_t errstr_size)
{
    if (r->type == REDIS_REPLY_ERROR) {
        *err = vg_state_reply_error(st, what, r, errstr, errstr_size);
        return false;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        set_err(errstr, errstr_size, "redis %s: %s: unexpected reply type %d", st->redacted, what,
                r->type);
        *err = VG_ERR_INVALID;
        return false;
    }
    return true;
}

/*
 * The candidate ids of `f`, from the indexes alone (never SCAN): the
 * type/workspace sets, and for a name glob the name index P:idx:name
 * narrowed by the glob's literal prefix and matched on the name part.
 * If the name index holds fewer members than P:idx:all (Resources written
 * by a vigil before the index existed), the sets are used alone and the
 * name is matched after loading. Each id appears once in *ids (owned
 * strings, freed by the caller).
 */
static vg_err_t list_ids(struct vg_state *st, const struct vg_state_filter *f, char ***ids_out,
                         size_t *n_out, char *errstr, size_t errstr_size)
{
    const char *type = f ? f->type : NULL;
    const char *ws = f ? f->workspace : NULL;
    const char *glob = f ? f->name_glob : NULL;
    bool by_set = type || ws || !glob;
    struct vg_cmd c = {0};
    redisReply *replies[4] = {NULL, NULL, NULL, NULL};
    size_t n_replies = 0;
    struct vg_map *in_set = NULL;
    char **ids = NULL;
    size_t n = 0;
    size_t cap = 0;
    vg_err_t err = VG_OK;

    if (by_set) {
        append_set_query(st, &c, type, ws);
        n_replies++;
    }
    if (glob) {
        append_name_query(st, &c, glob);
        vg_cmd_str(&c, "ZCARD");
        vg_cmd_fmt(&c, "%s:idx:name", st->prefix);
        vg_cmd_append(st, &c);
        vg_cmd_str(&c, "SCARD");
        vg_cmd_fmt(&c, "%s:idx:all", st->prefix);
        vg_cmd_append(st, &c);
        n_replies += 3;
    }
    vg_cmd_fini(&c);
    err = vg_state_read_replies(st, n_replies, replies, "index", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (glob) {
        const redisReply *zcard = replies[n_replies - 2];
        const redisReply *scard = replies[n_replies - 1];

        if (zcard->type == REDIS_REPLY_INTEGER && scard->type == REDIS_REPLY_INTEGER &&
            zcard->integer < scard->integer) {
            /* An index older than this vigil: fall back to the sets. */
            if (!by_set) {
                vg_redis_replies_free(replies, n_replies);
                append_set_query(st, &c, NULL, NULL);
                vg_cmd_fini(&c);
                n_replies = 1;
                err = vg_state_read_replies(st, 1, replies, "index", errstr, errstr_size);
                if (err != VG_OK) {
                    return err;
                }
                by_set = true;
            }
            glob = NULL;
        }
    }
    if (by_set) {
        const redisReply *r = replies[0];

        if (!reply_is_array(st, r, "index", &err, errstr, errstr_size)) {
            goto out;
        }
        if (glob) {
            in_set = vg_map_new();
        }
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }
            if (in_set) {
                vg_map_put(in_set, r->element[i]->str, (void *)1);
            } else {
                *VG_ARRAY_PUSH(ids, n, cap) = vg_strndup(r->element[i]->str, r->element[i]->len);
            }
        }
    }
    if (glob) {
        const redisReply *r = replies[by_set ? 1 : 0];

        if (!reply_is_array(st, r, "name index", &err, errstr, errstr_size)) {
            goto out;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *m = r->element[i];
            const char *nul;
            char *name;
            bool match;

            if (m->type != REDIS_REPLY_STRING) {
                continue;
            }
            nul = memchr(m->str, '\0', m->len);
            if (!nul || nul == m->str + m->len - 1) {
                continue; /* not one of ours */
            }
            name = vg_strndup(m->str, (size_t)(nul - m->str));
            match = vg_glob_match(glob, name);
            vg_free(name);
            if (match && (!in_set || vg_map_get(in_set, nul + 1))) {
                *VG_ARRAY_PUSH(ids, n, cap) =
                    vg_strndup(nul + 1, m->len - (size_t)(nul + 1 - m->str));
            }
        }
    }
out:
    vg_map_destroy(in_set, NULL);
    vg_redis_replies_free(replies, n_replies);
    if (err != VG_OK) {
        for (size_t i = 0; i < n; i++) {
            vg_free(ids[i]);
        }
        vg_free(ids);
        return err;
    }
    *ids_out = ids;
    *n_out = n;
    return VG_OK;
}

vg_err_t vg_state_list(struct vg_state *st, const struct vg_state_filter *f,
                       struct vg_resource ***out, size_t *n_out, char *errstr, size_t errstr_size)
{
    char **ids = NULL;
    struct vg_resource **res = NULL;
    size_t n_ids = 0;
    size_t n = 0;
    vg_err_t err = vg_state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    err = list_ids(st, f, &ids, &n_ids, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    res = vg_calloc(n_ids ? n_ids : 1, sizeof(*res));
    err = load_many(st, (const char *const *)ids, n_ids, false, res, errstr, errstr_size);
    if (err != VG_OK) {
        vg_free(res);
        goto out_ids;
    }
    for (size_t i = 0; i < n_ids; i++) {
        if (res[i] && filter_match(f, res[i])) {
            res[n++] = res[i];
        } else {
            vg_resource_destroy(res[i]);
        }
    }
    qsort(res, n, sizeof(*res), cmp_resource);
    *out = res;
    *n_out = n;
out_ids:
    for (size_t i = 0; i < n_ids; i++) {
        vg_free(ids[i]);
    }
    vg_free(ids);
    return err;
}

vg_err_t vg_state_get(struct vg_state *st, const char *id, struct vg_resource **out, char *errstr,
                      size_t errstr_size)
{
    vg_err_t err = vg_state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    if (err != VG_OK) {
        return err;
    }
    return load_many(st, &id, 1, true, out, errstr, errstr_size);
}

void vg_resources_free(struct vg_resource **v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        vg_resource_destroy(v[i]);
    }
    vg_free(v);
}
