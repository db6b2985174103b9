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
    json = cJSON_PrintUnformatted(obj);
    if (!json) {
        vg_oom("incident JSON");
    }
    vg_cmd_fmt(c, INC_FIELD_PREFIX "%s", inc->monitor);
    vg_cmd_str(c, json);
    cJSON_free(json);
    cJSON_Delete(obj);
}

/* HSET key <every field of res>. */
static void append_hset_resource(struct vg_state *st, struct vg_cmd *c, const char *key,
                                 const struct vg_resource *res)
{
    vg_cmd_str(c, "HSET");
    vg_cmd_str(c, key);
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
    vg_cmd_append(st, c);
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
        inc = vg_resource_add_incident(res, monitor, id->valuestring, sev->valuestring,
                                       (int64_t)started->valuedouble);
        inc->seq = (int)seq->valuedouble;
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
            if (!res) {
                res = vg_resource_new_from_event(miss[j]);
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
    vg_cmd_append(st, c);
    vg_free(key);
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

/* Queue MULTI ... EXEC for `cm`; returns the number of commands queued. */
static size_t append_commit(struct vg_state *st, struct vg_cmd *c, const struct vg_commit *cm)
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
        /* DEL first so fields that disappeared (closed incidents, a cleared
         * message) do not survive the rewrite. */
        vg_cmd_str(c, "DEL");
        vg_cmd_str(c, key);
        vg_cmd_append(st, c);
        append_hset_resource(st, c, key, res);
        append_sadd(st, c, idx_all, res->id);
        idx = vg_asprintf("%s:idx:type:%s", st->prefix, res->type);
        append_sadd(st, c, idx, res->id);
        vg_free(idx);
        idx = vg_asprintf("%s:idx:ws:%s", st->prefix, res->workspace);
        append_sadd(st, c, idx, res->id);
        vg_free(idx);
        vg_free(key);
        n += 5;
    }
    for (size_t i = 0; i < cm->n_trans; i++) {
        append_history(st, c, &cm->trans[i]);
        n++;
    }
    if (cm->n_pages > 0) {
        char *outbox = vg_state_key(st, "outbox");

        for (size_t i = 0; i < cm->n_pages; i++) {
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
    }
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
    size_t n_dirty = 0;
    size_t n;
    vg_err_t err;

    for (size_t i = 0; i < cm->n_res; i++) {
        n_dirty += cm->res[i]->dirty ? 1 : 0;
    }
    if (n_dirty == 0 && cm->n_trans == 0 && cm->n_pages == 0 && cm->n_offsets == 0) {
        return VG_OK;
    }
    err = vg_state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    n = append_commit(st, &c, cm);
    vg_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = vg_state_read_replies(st, n, replies, "commit", errstr, errstr_size);
    if (err == VG_OK) {
        err = check_commit_replies(st, replies, n, errstr, errstr_size);
        vg_redis_replies_free(replies, n);
    }
    vg_free(replies);
    if (err == VG_OK) {
        for (size_t i = 0; i < cm->n_res; i++) {
            cm->res[i]->dirty = false;
        }
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

vg_err_t vg_state_list(struct vg_state *st, const struct vg_state_filter *f,
                       struct vg_resource ***out, size_t *n_out, char *errstr, size_t errstr_size)
{
    const char *type = f ? f->type : NULL;
    const char *ws = f ? f->workspace : NULL;
    struct vg_cmd c = {0};
    redisReply *reply = NULL;
    const char **ids = NULL;
    struct vg_resource **res = NULL;
    size_t n_ids = 0;
    size_t n = 0;
    vg_err_t err = vg_state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    if (type && ws) {
        vg_cmd_str(&c, "SINTER");
        vg_cmd_fmt(&c, "%s:idx:type:%s", st->prefix, type);
        vg_cmd_fmt(&c, "%s:idx:ws:%s", st->prefix, ws);
    } else if (type) {
        vg_cmd_str(&c, "SMEMBERS");
        vg_cmd_fmt(&c, "%s:idx:type:%s", st->prefix, type);
    } else if (ws) {
        vg_cmd_str(&c, "SMEMBERS");
        vg_cmd_fmt(&c, "%s:idx:ws:%s", st->prefix, ws);
    } else {
        vg_cmd_str(&c, "SMEMBERS");
        vg_cmd_fmt(&c, "%s:idx:all", st->prefix);
    }
    vg_cmd_append(st, &c);
    vg_cmd_fini(&c);
    err = vg_state_read_replies(st, 1, &reply, "index", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        err = vg_state_reply_error(st, "index", reply, errstr, errstr_size);
        goto out_reply;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        set_err(errstr, errstr_size, "redis %s: index: unexpected reply type %d", st->redacted,
                reply->type);
        err = VG_ERR_INVALID;
        goto out_reply;
    }
    n_ids = reply->elements;
    ids = vg_calloc(n_ids ? n_ids : 1, sizeof(*ids));
    for (size_t i = 0; i < n_ids; i++) {
        ids[i] = reply->element[i]->str; /* set members are strings */
    }
    res = vg_calloc(n_ids ? n_ids : 1, sizeof(*res));
    err = load_many(st, ids, n_ids, false, res, errstr, errstr_size);
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
    vg_free(ids);
out_reply:
    freeReplyObject(reply);
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
