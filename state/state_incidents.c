/*
 * Incident records: the public view of every incident, written in
 * the same MULTI/EXEC as the Resource state that changed it, read by
 * `vigil incidents`. P:incident:<id> holds the record (JSON, updated in
 * place); P:incidents indexes ids by last update. Ended records expire
 * after VG_INCIDENT_RETENTION_MS and leave the index then.
 */
#include <stdio.h>
#include <string.h>

#include "state_int.h"
#include "vigil/log.h"

size_t state_append_incidents(struct vg_state *st, struct state_cmd *c,
                              const struct vg_incident_record *v, size_t n)
{
    size_t cmds = 0;
    char *index = NULL;

    if (n == 0) {
        return 0;
    }
    index = state_key(st, "incidents");
    for (size_t i = 0; i < n; i++) {
        const struct vg_incident_record *r = &v[i];
        char *json = vg_incident_record_to_json(r);
        bool ended = strcmp(r->state ? r->state : "", "firing") != 0;

        state_cmd_str(c, "SET");
        state_cmd_fmt(c, "%s:incident:%s", st->prefix, r->id);
        state_cmd_str(c, json);
        if (ended) {
            state_cmd_str(c, "PX");
            state_cmd_i64(c, VG_INCIDENT_RETENTION_MS);
        }
        state_cmd_append(st, c);
        state_cmd_str(c, "ZADD");
        state_cmd_str(c, index);
        state_cmd_i64(c, r->updated_at_ms);
        state_cmd_str(c, r->id);
        state_cmd_append(st, c);
        cmds += 2;
        vg_free(json);
        if (ended && r->updated_at_ms > VG_INCIDENT_RETENTION_MS) {
            /* Trim the index of records that have expired by now. */
            state_cmd_str(c, "ZREMRANGEBYSCORE");
            state_cmd_str(c, index);
            state_cmd_str(c, "-inf");
            state_cmd_fmt(c, "(%lld", (long long)(r->updated_at_ms - VG_INCIDENT_RETENTION_MS));
            state_cmd_append(st, c);
            cmds++;
        }
    }
    vg_free(index);
    return cmds;
}

void vg_incident_records_free(struct vg_incident_record *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_incident_record_fini(&v[i]);
    }
    vg_free(v);
}

vg_err_t vg_state_incidents_list(struct vg_state *st, int64_t since_ms,
                                 struct vg_incident_record **out, size_t *n_out, char *errstr,
                                 size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *ids = NULL;
    redisReply **replies = NULL;
    struct vg_incident_record *v = NULL;
    size_t n = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    state_cmd_str(&c, "ZREVRANGEBYSCORE");
    state_cmd_fmt(&c, "%s:incidents", st->prefix);
    state_cmd_str(&c, "+inf");
    state_cmd_i64(&c, since_ms);
    state_cmd_append(st, &c);
    err = state_read_replies(st, 1, &ids, "ZREVRANGEBYSCORE incidents", errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    if (ids->type == REDIS_REPLY_ERROR) {
        err = state_reply_error(st, "ZREVRANGEBYSCORE incidents", ids, errstr, errstr_size);
        goto out;
    }
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements == 0) {
        goto out;
    }
    for (size_t i = 0; i < ids->elements; i++) {
        state_cmd_str(&c, "GET");
        state_cmd_fmt(&c, "%s:incident:%.*s", st->prefix, (int)ids->element[i]->len,
                      ids->element[i]->str);
        state_cmd_append(st, &c);
    }
    replies = vg_calloc(ids->elements, sizeof(*replies));
    err = state_read_replies(st, ids->elements, replies, "GET incident", errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    v = vg_calloc(ids->elements, sizeof(*v));
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *r = replies[i];

        if (r->type == REDIS_REPLY_STRING && vg_incident_record_from_json(&v[n], r->str, r->len)) {
            n++;
        }
    }
    state_replies_free(replies, ids->elements);
out:
    if (ids) {
        freeReplyObject(ids);
    }
    state_cmd_fini(&c);
    vg_free(replies);
    if (err != VG_OK) {
        vg_incident_records_free(v, n);
        return err;
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}

vg_err_t vg_state_incident_get(struct vg_state *st, const char *id, struct vg_incident_record *out,
                               bool *found, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *found = false;
    memset(out, 0, sizeof(*out));
    if (err != VG_OK) {
        return err;
    }
    state_cmd_str(&c, "GET");
    state_cmd_fmt(&c, "%s:incident:%s", st->prefix, id);
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
    err = state_read_replies(st, 1, &reply, "GET incident", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        err = state_reply_error(st, "GET incident", reply, errstr, errstr_size);
    } else if (reply->type == REDIS_REPLY_STRING) {
        *found = vg_incident_record_from_json(out, reply->str, reply->len);
        if (!*found) {
            VG_LOG_WARN("state", "incident %s: unreadable record", id);
        }
    }
    freeReplyObject(reply);
    return err;
}
