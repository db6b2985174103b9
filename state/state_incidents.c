/*
 * Incident records: the public view of every incident, written in the same
 * MULTI/EXEC as the Resource state that changed it, read by `vigil
 * incidents` and the HTTP API. P:incident:<id> holds the record (JSON,
 * updated in place); sorted sets index it by last update (all, firing,
 * ended, per Resource) and P:incidents:counts counts the firing ones by
 * (monitor, severity), so a page or a /metrics scrape costs the same with
 * ten records or a million. Ended records expire after
 * VG_INCIDENT_RETENTION_MS and leave the indexes then. With redis.layout
 * partitioned each partition's scope has its own records, indexes and counts:
 * readers go through every scope (state_scopes_read) and merge, a scrape sums.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

/* Expired ended records one write takes out of the indexes: each ended write
 * adds one, so the indexes shrink back whatever the backlog. */
#define TRIM_PER_WRITE "64"
/* Records per MGET when a page or the rebuild reads them. */
#define READ_CHUNK 1000
/* WATCH rounds of a rebuild before giving up (a commit got in between each time). */
#define REINDEX_ATTEMPTS 5

/*
 * One record write, queued inside the commit's MULTI, is plain commands for
 * what the record's state decides (SET of the record, ZADD to P:incidents
 * and the Resource's index, ZADD to the firing or ended index and ZREM from
 * the other) plus one script call for what only Redis knows at EXEC: a
 * record is rewritten many times while it fires (each notification, each
 * silence change), so whether this write opens or ends the firing, and so
 * moves P:incidents:counts, is decided by comparing with what
 * P:incidents:counted says was counted for the id (which also follows a
 * severity changed by a rules reload). The same script trims expired ended
 * records out of the indexes.
 *
 * The script runs as a Redis function (FCALL) where the server has them
 * (Redis 7: FUNCTION LOAD once per connection, before its first commit with
 * records), else as EVAL. Not EVALSHA: after a redis-server restart the
 * script cache is empty, and a NOSCRIPT inside EXEC would leave the rest of
 * the commit applied. EVAL hashes its body twice per call (SHA1, once to
 * look up its flags, once to run it): that, not the work, was half of a
 * record write's cost inside Redis (docs/performance.md). The library and
 * function names carry a fingerprint of the body, so vigil versions with
 * different bodies never replace each other's functions.
 *
 * Ended members are "<id> <Resource id>" so the trim knows which Resource
 * index to clean as well; those keys are not in KEYS, which a single Redis
 * primary (what vigil needs, docs/state.md) allows.
 *
 * KEYS: counted, counts, ended, all
 * ARGV: id, class ("f" firing, else not), counts field, prefix,
 *       "(" + trim cutoff or ""
 */
static const char COUNT_LUA[] =
    "local id = ARGV[1]\n"
    "local old = redis.call('HGET', KEYS[1], id)\n"
    "local new = ARGV[2] == 'f' and ARGV[3]\n"
    "if old ~= new then\n"
    "  if old and redis.call('HINCRBY', KEYS[2], old, -1) <= 0 then\n"
    "    redis.call('HDEL', KEYS[2], old)\n"
    "  end\n"
    "  if new then\n"
    "    redis.call('HSET', KEYS[1], id, new)\n"
    "    redis.call('HINCRBY', KEYS[2], new, 1)\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[1], id)\n"
    "  end\n"
    "end\n"
    "if ARGV[5] ~= '' then\n"
    "  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[5], 'LIMIT', "
    "0, " TRIM_PER_WRITE ")\n"
    "  for _, m in ipairs(gone) do\n"
    "    local sp = string.find(m, ' ', 1, true)\n"
    "    if sp then\n"
    "      local gid = string.sub(m, 1, sp - 1)\n"
    "      redis.call('ZREM', KEYS[4], gid)\n"
    "      redis.call('ZREM', ARGV[4] .. ':incidents:res:{' .. string.sub(m, sp + 1) .. '}', "
    "gid)\n"
    "    end\n"
    "    redis.call('ZREM', KEYS[3], m)\n"
    "  end\n"
    "end\n"
    "return 0\n";

/* The error FCALL answers when the function is not on the server (flushed, another node). */
#define NO_FUNCTION "Function not found"

static bool is_firing(const char *state)
{
    return state && strcmp(state, "firing") == 0;
}

static bool is_ended(const char *state)
{
    return !is_firing(state) && !(state && strcmp(state, "pending") == 0);
}

/* The P:incidents:counts field of a record: "<monitor>\0<severity>" (names may hold anything else).
 */
static void count_field(struct state_cmd *c, const struct vg_incident_record *r)
{
    const char *monitor = r->monitor ? r->monitor : "";
    const char *severity = r->severity ? r->severity : "";
    size_t lm = strlen(monitor);
    size_t ls = strlen(severity);
    char *field = vg_malloc(lm + ls + 1);

    memcpy(field, monitor, lm);
    field[lm] = '\0';
    memcpy(field + lm + 1, severity, ls);
    state_cmd_arg(c, field, lm + ls + 1);
    vg_free(field);
}

/* The function's name (its body's fingerprint) into st->incident_fn; `fp` gets the fingerprint. */
static void fn_name(struct vg_state *st, char fp[17])
{
    const char *parts[1] = {COUNT_LUA};

    vg_fingerprint(fp, parts, 1);
    snprintf(st->incident_fn, sizeof(st->incident_fn), "vigil_incident_count_%s", fp);
}

void state_incidents_conn_restore(struct vg_state *st, bool asked, bool eval)
{
    char fp[17];

    st->incident_fn_asked = asked;
    if (!asked) {
        return;
    }
    if (eval) {
        st->incident_fn[0] = '\0';
    } else {
        fn_name(st, fp);
    }
}

/*
 * Whether st->ctx's server has the function, asked once per connection: on a
 * cluster st talks to several nodes (a scope's connection is parked while
 * another node serves st, the flag with it: state_incidents_conn_restore),
 * and each must have it before a commit there calls it.
 */
vg_err_t state_incidents_prepare(struct vg_state *st, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    char fp[17];
    char *library;
    vg_err_t err;

    if (st->incident_fn_asked) {
        return VG_OK;
    }
    fn_name(st, fp);
    library = vg_asprintf("#!lua name=vigil_incidents_%s\n"
                          "redis.register_function('%s', function(KEYS, ARGV)\n%send)\n",
                          fp, st->incident_fn, COUNT_LUA);
    state_cmd_str(&c, "FUNCTION");
    state_cmd_str(&c, "LOAD");
    state_cmd_str(&c, library);
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
    vg_free(library);
    err = state_read_replies(st, 1, &reply, "FUNCTION LOAD", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR && !strstr(reply->str, "already exists")) {
        if (state_error_class(reply->str, reply->len) == VG_ERR_BACKEND) {
            /* LOADING, BUSY, READONLY ...: the commit would fail as well; ask again then */
            err = state_reply_error(st, "FUNCTION LOAD", reply, errstr, errstr_size);
            freeReplyObject(reply);
            return err;
        }
        /* Redis 6 (unknown command), an ACL without FUNCTION: the script goes by EVAL */
        VG_LOG_DEBUG("state", "redis %s: incident counts by EVAL: FUNCTION LOAD: %s", st->redacted,
                     reply->str);
        st->incident_fn[0] = '\0';
    }
    freeReplyObject(reply);
    st->incident_fn_asked = true;
    return VG_OK;
}

bool state_incidents_no_function(const char *err, size_t len)
{
    size_t lf = strlen(NO_FUNCTION);

    for (size_t i = 0; err && i + lf <= len; i++) {
        if (memcmp(err + i, NO_FUNCTION, lf) == 0) {
            return true;
        }
    }
    return false;
}

void state_incidents_recount(struct vg_state *st)
{
    struct state_cmd c = {0};
    char errstr[256];
    vg_err_t err;

    state_cmd_str(&c, "DEL");
    state_cmd_fmt(&c, "%s:incidents:indexed", st->prefix);
    err = state_run(st, &c, "DEL incidents:indexed", NULL, NULL, errstr, sizeof(errstr));
    state_cmd_fini(&c);
    VG_LOG_WARN("state",
                "redis %s: the incident counts function was gone from the server (FUNCTION "
                "FLUSH?): a commit wrote incident records without counting them; %s",
                st->redacted,
                err == VG_OK ? "the counts will be rebuilt from the records"
                             : "could not mark the counts for a rebuild");
}

size_t state_append_incidents(struct vg_state *st, struct state_cmd *c,
                              const struct vg_incident_record *v, size_t n)
{
    size_t cmds = 0;
    char *all;
    char *firing;
    char *ended;
    char *counted;
    char *counts;

    if (n == 0) {
        return 0;
    }
    all = state_key(st, "incidents");
    firing = state_key(st, "incidents:firing");
    ended = state_key(st, "incidents:ended");
    counted = state_key(st, "incidents:counted");
    counts = state_key(st, "incidents:counts");
    for (size_t i = 0; i < n; i++) {
        const struct vg_incident_record *r = &v[i];
        const char *resource = r->resource ? r->resource : "";
        char *json = vg_incident_record_to_json(r);
        bool is_f = is_firing(r->state);
        bool ended_now = is_ended(r->state);

        state_cmd_str(c, "SET");
        state_cmd_fmt(c, "%s:incident:%s", st->prefix, r->id);
        state_cmd_str(c, json);
        if (ended_now) {
            state_cmd_str(c, "PX");
            state_cmd_i64(c, VG_INCIDENT_RETENTION_MS);
        }
        state_cmd_append(st, c);
        state_cmd_str(c, "ZADD");
        state_cmd_str(c, all);
        state_cmd_i64(c, r->updated_at_ms);
        state_cmd_str(c, r->id);
        state_cmd_append(st, c);
        state_cmd_str(c, "ZADD");
        state_cmd_fmt(c, "%s:incidents:res:{%s}", st->prefix, resource);
        state_cmd_i64(c, r->updated_at_ms);
        state_cmd_str(c, r->id);
        state_cmd_append(st, c);
        /* firing: in the firing index only; ended: in the ended one only; pending: neither */
        state_cmd_str(c, is_f ? "ZADD" : "ZREM");
        state_cmd_str(c, firing);
        if (is_f) {
            state_cmd_i64(c, r->updated_at_ms);
        }
        state_cmd_str(c, r->id);
        state_cmd_append(st, c);
        state_cmd_str(c, ended_now ? "ZADD" : "ZREM");
        state_cmd_str(c, ended);
        if (ended_now) {
            state_cmd_i64(c, r->updated_at_ms);
        }
        state_cmd_fmt(c, "%s %s", r->id, resource);
        state_cmd_append(st, c);
        cmds += 5;

        if (st->incident_fn[0] != '\0') {
            state_cmd_str(c, "FCALL");
            state_cmd_str(c, st->incident_fn);
        } else {
            state_cmd_str(c, "EVAL");
            state_cmd_str(c, COUNT_LUA);
        }
        state_cmd_str(c, "4");
        state_cmd_str(c, counted);
        state_cmd_str(c, counts);
        state_cmd_str(c, ended);
        state_cmd_str(c, all);
        state_cmd_str(c, r->id);
        state_cmd_str(c, is_f ? "f" : "");
        count_field(c, r);
        state_cmd_str(c, st->prefix);
        if (ended_now && r->updated_at_ms > VG_INCIDENT_RETENTION_MS) {
            /* Ended records updated before this cutoff have expired by now. */
            state_cmd_fmt(c, "(%lld", (long long)(r->updated_at_ms - VG_INCIDENT_RETENTION_MS));
        } else {
            state_cmd_str(c, "");
        }
        state_cmd_append(st, c);
        cmds++;
        vg_free(json);
    }
    vg_free(all);
    vg_free(firing);
    vg_free(ended);
    vg_free(counted);
    vg_free(counts);
    return cmds;
}

void vg_incident_records_free(struct vg_incident_record *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_incident_record_fini(&v[i]);
    }
    vg_free(v);
}

static vg_err_t incidents_list(struct vg_state *st, int64_t since_ms,
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

static vg_err_t incident_get(struct vg_state *st, const char *id, struct vg_incident_record *out,
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

/* ---- indexes and counts: rebuilding, reading --------------------------------- */

static char *marker_key(const struct vg_state *st)
{
    return state_key(st, "incidents:indexed");
}

/* The first of n replies that is a server error, classified (errstr names `what`); else VG_OK. */
static vg_err_t replies_error(struct vg_state *st, const char *what, redisReply *const *replies,
                              size_t n, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            return state_reply_error(st, what, replies[i], errstr, errstr_size);
        }
    }
    return VG_OK;
}

/* Run one queued command; *out is its reply (errors classified). */
static vg_err_t run1(struct vg_state *st, struct state_cmd *c, const char *what, redisReply **out,
                     char *errstr, size_t errstr_size)
{
    vg_err_t err;

    state_cmd_append(st, c);
    err = state_read_replies(st, 1, out, what, errstr, errstr_size);
    if (err == VG_OK && (*out)->type == REDIS_REPLY_ERROR) {
        err = state_reply_error(st, what, *out, errstr, errstr_size);
        freeReplyObject(*out);
        *out = NULL;
    }
    return err;
}

static void unwatch(struct vg_state *st)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    char errstr[64];

    if (!st->ctx) {
        return;
    }
    state_cmd_str(&c, "UNWATCH");
    if (run1(st, &c, "UNWATCH", &reply, errstr, sizeof(errstr)) == VG_OK) {
        freeReplyObject(reply);
    }
    state_cmd_fini(&c);
}

/*
 * GET every key of `keys` (n replies of one ZRANGE) with MGET, READ_CHUNK at
 * a time, pipelined: one round trip. `ended_members`: the members are
 * "<id> <Resource id>". *records gets n replies (nil for a gone record).
 */
/* Queue the MGETs of mget_records; returns how many (one per READ_CHUNK members). */
static size_t mget_queue(struct vg_state *st, redisReply *const *members, size_t n,
                         bool ended_members)
{
    struct state_cmd c = {0};
    size_t n_chunks = (n + READ_CHUNK - 1) / READ_CHUNK;

    for (size_t k = 0; k < n_chunks; k++) {
        state_cmd_str(&c, "MGET");
        for (size_t i = k * READ_CHUNK; i < n && i < (k + 1) * READ_CHUNK; i++) {
            size_t len = members[i]->len;
            const char *sp = ended_members ? memchr(members[i]->str, ' ', len) : NULL;

            if (sp) {
                len = (size_t)(sp - members[i]->str);
            }
            state_cmd_fmt(&c, "%s:incident:%.*s", st->prefix, (int)len, members[i]->str);
        }
        state_cmd_append(st, &c);
    }
    state_cmd_fini(&c);
    return n_chunks;
}

static vg_err_t mget_records(struct vg_state *st, redisReply *const *members, size_t n,
                             bool ended_members, redisReply ***records, char *errstr,
                             size_t errstr_size)
{
    size_t n_chunks = (n + READ_CHUNK - 1) / READ_CHUNK;
    redisReply **chunks = vg_calloc(n_chunks ? n_chunks : 1, sizeof(*chunks));
    bool read = false;
    vg_err_t err = VG_OK;

    *records = vg_calloc(n ? n : 1, sizeof(**records));
    mget_queue(st, members, n, ended_members);
    if (n_chunks > 0) {
        err = state_read_replies(st, n_chunks, chunks, "MGET incidents", errstr, errstr_size);
        read = err == VG_OK;
    }
    for (size_t k = 0; err == VG_OK && k < n_chunks; k++) {
        if (chunks[k]->type == REDIS_REPLY_ERROR) {
            err = state_reply_error(st, "MGET incidents", chunks[k], errstr, errstr_size);
        } else if (chunks[k]->type != REDIS_REPLY_ARRAY) {
            snprintf(errstr, errstr_size, "redis %s: MGET incidents: unexpected reply",
                     st->redacted);
            err = VG_ERR_INVALID;
        }
    }
    for (size_t k = 0; err == VG_OK && k < n_chunks; k++) {
        for (size_t j = 0; j < chunks[k]->elements && k * READ_CHUNK + j < n; j++) {
            /* Move the element out of the chunk: the chunk is freed below. */
            (*records)[k * READ_CHUNK + j] = chunks[k]->element[j];
            chunks[k]->element[j] = NULL;
        }
    }
    if (read) {
        for (size_t k = 0; k < n_chunks; k++) {
            freeReplyObject(chunks[k]);
        }
    }
    vg_free(chunks);
    if (err != VG_OK) {
        vg_free(*records);
        *records = NULL;
    }
    return err;
}

static void records_free(redisReply **records, size_t n)
{
    for (size_t i = 0; records && i < n; i++) {
        if (records[i]) {
            freeReplyObject(records[i]);
        }
    }
    vg_free(records);
}

/* The MULTI ... EXEC that replaces the indexes and counts; returns the number of replies. */
static size_t queue_rebuild(struct vg_state *st, redisReply *const *ids, size_t n,
                            redisReply *const *records, size_t *n_read)
{
    struct state_cmd c = {0};
    char *all = state_key(st, "incidents");
    char *firing = state_key(st, "incidents:firing");
    char *ended = state_key(st, "incidents:ended");
    char *counted = state_key(st, "incidents:counted");
    char *counts = state_key(st, "incidents:counts");
    char *marker = marker_key(st);
    size_t cmds = 0;

    *n_read = 0;
    state_cmd_str(&c, "MULTI");
    state_cmd_append(st, &c);
    state_cmd_str(&c, "DEL");
    state_cmd_str(&c, firing);
    state_cmd_str(&c, ended);
    state_cmd_str(&c, counted);
    state_cmd_str(&c, counts);
    state_cmd_append(st, &c);
    cmds += 2;
    for (size_t i = 0; i < n; i++) {
        /* ZRANGE ... WITHSCORES: member, score, member, score ... */
        const redisReply *id = ids[2 * i];
        const redisReply *score = ids[2 * i + 1];
        const redisReply *rec = records[i];
        struct vg_incident_record r;

        if (!rec || rec->type != REDIS_REPLY_STRING ||
            !vg_incident_record_from_json(&r, rec->str, rec->len)) {
            /* Expired (or unreadable): it leaves the index. */
            state_cmd_str(&c, "ZREM");
            state_cmd_str(&c, all);
            state_cmd_arg(&c, id->str, id->len);
            state_cmd_append(st, &c);
            cmds++;
            continue;
        }
        (*n_read)++;
        state_cmd_str(&c, "ZADD");
        state_cmd_fmt(&c, "%s:incidents:res:{%s}", st->prefix, r.resource ? r.resource : "");
        state_cmd_arg(&c, score->str, score->len);
        state_cmd_arg(&c, id->str, id->len);
        state_cmd_append(st, &c);
        cmds++;
        if (is_firing(r.state)) {
            state_cmd_str(&c, "ZADD");
            state_cmd_str(&c, firing);
            state_cmd_arg(&c, score->str, score->len);
            state_cmd_arg(&c, id->str, id->len);
            state_cmd_append(st, &c);
            state_cmd_str(&c, "HSET");
            state_cmd_str(&c, counted);
            state_cmd_arg(&c, id->str, id->len);
            count_field(&c, &r);
            state_cmd_append(st, &c);
            state_cmd_str(&c, "HINCRBY");
            state_cmd_str(&c, counts);
            count_field(&c, &r);
            state_cmd_str(&c, "1");
            state_cmd_append(st, &c);
            cmds += 3;
        } else if (is_ended(r.state)) {
            state_cmd_str(&c, "ZADD");
            state_cmd_str(&c, ended);
            state_cmd_arg(&c, score->str, score->len);
            state_cmd_fmt(&c, "%.*s %s", (int)id->len, id->str, r.resource ? r.resource : "");
            state_cmd_append(st, &c);
            cmds++;
        }
        vg_incident_record_fini(&r);
    }
    state_cmd_str(&c, "SET");
    state_cmd_str(&c, marker);
    state_cmd_str(&c, "1");
    state_cmd_append(st, &c);
    state_cmd_str(&c, "EXEC");
    state_cmd_append(st, &c);
    cmds += 2;
    state_cmd_fini(&c);
    vg_free(all);
    vg_free(firing);
    vg_free(ended);
    vg_free(counted);
    vg_free(counts);
    vg_free(marker);
    return cmds;
}

/* One WATCH round: *done false when a commit got in between (nothing written). */
static vg_err_t reindex_once(struct vg_state *st, bool *done, bool *already, size_t *n_read,
                             char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *reply = NULL;
    redisReply *ids = NULL;
    redisReply **records = NULL;
    redisReply **replies = NULL;
    size_t n = 0;
    size_t cmds;
    vg_err_t err;

    *done = false;
    *already = false;
    state_cmd_str(&c, "WATCH");
    state_cmd_fmt(&c, "%s:incidents", st->prefix);
    state_cmd_fmt(&c, "%s:incidents:firing", st->prefix);
    state_cmd_fmt(&c, "%s:incidents:ended", st->prefix);
    state_cmd_fmt(&c, "%s:incidents:counted", st->prefix);
    state_cmd_fmt(&c, "%s:incidents:counts", st->prefix);
    state_cmd_fmt(&c, "%s:incidents:indexed", st->prefix);
    err = run1(st, &c, "WATCH incidents", &reply, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    freeReplyObject(reply);
    reply = NULL;
    state_cmd_str(&c, "EXISTS");
    state_cmd_fmt(&c, "%s:incidents:indexed", st->prefix);
    err = run1(st, &c, "EXISTS incidents:indexed", &reply, errstr, errstr_size);
    if (err != VG_OK) {
        goto out_unwatch;
    }
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        /* Another reader rebuilt them meanwhile. */
        *done = true;
        *already = true;
        goto out_unwatch;
    }
    state_cmd_str(&c, "ZRANGE");
    state_cmd_fmt(&c, "%s:incidents", st->prefix);
    state_cmd_str(&c, "0");
    state_cmd_str(&c, "-1");
    state_cmd_str(&c, "WITHSCORES");
    err = run1(st, &c, "ZRANGE incidents", &ids, errstr, errstr_size);
    if (err != VG_OK) {
        goto out_unwatch;
    }
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements % 2 != 0) {
        snprintf(errstr, errstr_size, "redis %s: ZRANGE incidents: unexpected reply", st->redacted);
        err = VG_ERR_INVALID;
        goto out_unwatch;
    }
    n = ids->elements / 2;
    {
        /* The members alone, for MGET. */
        redisReply **members = vg_calloc(n ? n : 1, sizeof(*members));

        for (size_t i = 0; i < n; i++) {
            members[i] = ids->element[2 * i];
        }
        err = mget_records(st, members, n, false, &records, errstr, errstr_size);
        vg_free(members);
    }
    if (err != VG_OK) {
        goto out_unwatch;
    }
    cmds = queue_rebuild(st, ids->element, n, records, n_read);
    replies = vg_calloc(cmds, sizeof(*replies));
    err = state_read_replies(st, cmds, replies, "rebuild incident indexes", errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    if (replies[cmds - 1]->type == REDIS_REPLY_NIL) {
        /* EXEC aborted by the WATCH: a commit changed them; read again. */
    } else if (replies[cmds - 1]->type == REDIS_REPLY_ARRAY) {
        *done = true;
        for (size_t i = 0; i < replies[cmds - 1]->elements; i++) {
            const redisReply *e = replies[cmds - 1]->element[i];
            if (e->type == REDIS_REPLY_ERROR) {
                err = state_reply_error(st, "rebuild incident indexes", e, errstr, errstr_size);
                break;
            }
        }
    } else {
        const redisReply *bad = replies[cmds - 1];
        for (size_t i = 0; i + 1 < cmds; i++) {
            if (replies[i]->type == REDIS_REPLY_ERROR) {
                bad = replies[i];
                break;
            }
        }
        err = bad->type == REDIS_REPLY_ERROR
                  ? state_reply_error(st, "rebuild incident indexes", bad, errstr, errstr_size)
                  : VG_ERR_BACKEND;
        if (bad->type != REDIS_REPLY_ERROR) {
            snprintf(errstr, errstr_size, "redis %s: rebuild incident indexes: EXEC failed",
                     st->redacted);
        }
    }
    state_replies_free(replies, cmds);
    goto out;
out_unwatch:
    unwatch(st);
out:
    if (reply) {
        freeReplyObject(reply);
    }
    if (ids) {
        freeReplyObject(ids);
    }
    records_free(records, n);
    vg_free(replies);
    state_cmd_fini(&c);
    return err;
}

static vg_err_t incidents_reindex(struct vg_state *st, size_t *n_records, char *errstr,
                                  size_t errstr_size)
{
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);
    bool done = false;
    bool already = false;
    size_t n_read = 0;

    for (int attempt = 0; err == VG_OK && !done && attempt < REINDEX_ATTEMPTS; attempt++) {
        err = reindex_once(st, &done, &already, &n_read, errstr, errstr_size);
    }
    if (err == VG_OK && !done) {
        snprintf(errstr, errstr_size,
                 "redis %s: rebuild incident indexes: changed by a commit %d times in a row",
                 st->redacted, REINDEX_ATTEMPTS);
        err = VG_ERR_BACKEND;
    }
    if (err == VG_OK && !already) {
        VG_LOG_INFO("state",
                    "incident indexes and firing counts were missing (written by an older vigil "
                    "or a new Redis): rebuilt from %zu incident records%s%s",
                    n_read, st->scope ? " of partition " : "", st->scope ? st->scope : "");
    }
    if (n_records) {
        *n_records = n_read;
    }
    return err;
}

void vg_incident_counts_free(struct vg_incident_count *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_free(v[i].monitor);
        vg_free(v[i].severity);
    }
    vg_free(v);
}

/*
 * Queue EXISTS P:incidents:indexed (in the scope st is in), then the command
 * built in `c`: returns the 2 replies due.
 */
static size_t queue_indexed(struct vg_state *st, struct state_cmd *c)
{
    struct state_cmd exists = {0};

    state_cmd_str(&exists, "EXISTS");
    state_cmd_fmt(&exists, "%s:incidents:indexed", st->prefix);
    state_cmd_append(st, &exists);
    state_cmd_fini(&exists);
    state_cmd_append(st, c);
    return 2;
}

/*
 * The 2 replies of queue_indexed: the first server error (errstr names
 * `what`), else VG_OK; *indexed either way.
 */
static vg_err_t take_indexed(struct vg_state *st, const char *what, redisReply *const *replies,
                             bool *indexed, char *errstr, size_t errstr_size)
{
    *indexed = replies[0]->type == REDIS_REPLY_INTEGER && replies[0]->integer > 0;
    return replies_error(st, what, replies, 2, errstr, errstr_size);
}

/* EXISTS P:incidents:indexed, then one more command already built in `c`: its reply in *out. */
static vg_err_t read_indexed(struct vg_state *st, struct state_cmd *c, const char *what,
                             bool *indexed, redisReply **out, char *errstr, size_t errstr_size)
{
    redisReply *replies[2] = {NULL, NULL};
    vg_err_t err;

    err = state_read_replies(st, queue_indexed(st, c), replies, what, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    err = take_indexed(st, what, replies, indexed, errstr, errstr_size);
    freeReplyObject(replies[0]);
    if (err != VG_OK) {
        freeReplyObject(replies[1]);
        return err;
    }
    *out = replies[1];
    return VG_OK;
}

/*
 * Add the fields of an HGETALL P:incidents:counts reply to the pairs in
 * (*v, *n), summed by (monitor, severity): `at` maps a pair to its index + 1.
 */
static vg_err_t counts_add(struct vg_state *st, const redisReply *all, struct vg_map *at,
                           struct vg_incident_count **v, size_t *n, size_t *cap, char *errstr,
                           size_t errstr_size)
{
    if (all->type != REDIS_REPLY_ARRAY || all->elements % 2 != 0) {
        snprintf(errstr, errstr_size, "redis %s: HGETALL incidents:counts: unexpected reply",
                 st->redacted);
        return VG_ERR_INVALID;
    }
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        const redisReply *f = all->element[i];
        const redisReply *val = all->element[i + 1];
        const char *nul = f->type == REDIS_REPLY_STRING ? memchr(f->str, '\0', f->len) : NULL;
        char *end = NULL;
        long long count;
        char *key;
        void *k;

        if (!nul || val->type != REDIS_REPLY_STRING) {
            continue; /* not a field vigil wrote */
        }
        count = strtoll(val->str, &end, 10);
        if (end == val->str || *end != '\0' || count <= 0) {
            continue;
        }
        /* the monitor's length first: names may hold anything but a NUL */
        key =
            vg_asprintf("%zu:%.*s%s", (size_t)(nul - f->str), (int)(nul - f->str), f->str, nul + 1);
        k = vg_map_get(at, key);
        if (k) {
            (*v)[(uintptr_t)k - 1].firing += count;
        } else {
            struct vg_incident_count *c = VG_ARRAY_PUSH(*v, *n, *cap);

            c->monitor = vg_strndup(f->str, (size_t)(nul - f->str));
            c->severity = vg_strndup(nul + 1, f->len - (size_t)(nul - f->str) - 1);
            c->firing = count;
            vg_map_put(at, key, (void *)(uintptr_t)*n);
        }
        vg_free(key);
    }
    return VG_OK;
}

/* The counts of st's scope (rebuilt first when not indexed), added to (*v, *n). */
static vg_err_t counts_one(struct vg_state *st, struct vg_map *at, struct vg_incident_count **v,
                           size_t *n, size_t *cap, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply *all = NULL;
    bool indexed = true;
    vg_err_t err = VG_OK;

    for (int round = 0; err == VG_OK && round < 2; round++) {
        state_cmd_str(&c, "HGETALL");
        state_cmd_fmt(&c, "%s:incidents:counts", st->prefix);
        err = read_indexed(st, &c, "HGETALL incidents:counts", &indexed, &all, errstr, errstr_size);
        if (err != VG_OK || indexed || round > 0) {
            break;
        }
        freeReplyObject(all);
        all = NULL;
        err = incidents_reindex(st, NULL, errstr, errstr_size);
    }
    state_cmd_fini(&c);
    if (err == VG_OK) {
        err = counts_add(st, all, at, v, n, cap, errstr, errstr_size);
    }
    if (all) {
        freeReplyObject(all);
    }
    return err;
}

/* The counts of every scope in one round trip (per node); scopes not indexed noted in redo. */
struct counts_read {
    struct vg_map *at;
    struct vg_incident_count *v;
    size_t n;
    size_t cap;
    bool *redo;
};

static size_t counts_queue_scope(struct vg_state *st, size_t k, void *arg)
{
    struct state_cmd c = {0};
    size_t n;

    (void)k;
    (void)arg;
    state_cmd_str(&c, "HGETALL");
    state_cmd_fmt(&c, "%s:incidents:counts", st->prefix);
    n = queue_indexed(st, &c);
    state_cmd_fini(&c);
    return n;
}

static vg_err_t counts_take_scope(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                  void *arg, char *errstr, size_t errstr_size)
{
    struct counts_read *cr = arg;
    bool indexed;
    vg_err_t err =
        take_indexed(st, "HGETALL incidents:counts", replies, &indexed, errstr, errstr_size);

    (void)n;
    if (err != VG_OK) {
        return err;
    }
    if (!indexed) {
        cr->redo[k] = true; /* rebuilt and read again on its own */
        return VG_OK;
    }
    return counts_add(st, replies[1], cr->at, &cr->v, &cr->n, &cr->cap, errstr, errstr_size);
}

vg_err_t vg_state_incidents_firing_counts(struct vg_state *st, struct vg_incident_count **out,
                                          size_t *n_out, char *errstr, size_t errstr_size)
{
    struct counts_read cr = {0};
    struct vg_offset *scopes = NULL;
    size_t n_scopes = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    cr.at = vg_map_new();
    if (!st->partitioned) {
        err = counts_one(st, cr.at, &cr.v, &cr.n, &cr.cap, errstr, errstr_size);
    } else {
        /* A scrape costs one round trip per node, whatever the number of incidents. */
        struct state_scopes_read rd = {"HGETALL incidents:counts", counts_queue_scope,
                                       counts_take_scope, &cr};

        err = vg_state_scopes(st, &scopes, &n_scopes, errstr, errstr_size);
        cr.redo = vg_calloc(n_scopes ? n_scopes : 1, sizeof(*cr.redo));
        if (err == VG_OK) {
            err = state_scopes_read(st, scopes, n_scopes, &rd, errstr, errstr_size);
        }
        for (size_t k = 0; k < n_scopes && err == VG_OK; k++) {
            char *m;

            if (!cr.redo[k]) {
                continue;
            }
            m = state_scope_save(st);
            err = vg_state_scope(st, scopes[k].topic, scopes[k].partition, errstr, errstr_size);
            if (err == VG_OK) {
                err = counts_one(st, cr.at, &cr.v, &cr.n, &cr.cap, errstr, errstr_size);
            }
            err = state_scope_restore(st, m, err, errstr, errstr_size);
        }
        vg_free(cr.redo);
        vg_state_scopes_free(scopes, n_scopes);
    }
    vg_map_destroy(cr.at, NULL);
    if (err != VG_OK) {
        vg_incident_counts_free(cr.v, cr.n);
        return err;
    }
    *out = cr.v ? cr.v : vg_calloc(1, sizeof(*cr.v));
    *n_out = cr.n;
    return VG_OK;
}

static bool query_wants(const struct vg_incident_query *q, const struct vg_incident_record *r)
{
    const char *status = q->status ? q->status : "all";

    if (q->resource && (!r->resource || strcmp(r->resource, q->resource) != 0)) {
        return false;
    }
    if (!strcmp(status, "all")) {
        return true;
    }
    if (!strcmp(status, "firing")) {
        return is_firing(r->state);
    }
    if (!strcmp(status, "resolved")) {
        return is_ended(r->state);
    }
    return r->state && !strcmp(r->state, status);
}

/*
 * The narrowest index of st's scope that holds every match of `q` (heap);
 * *exact when it holds nothing else, *ended_members when its members are
 * "<id> <Resource id>".
 */
static char *page_index(const struct vg_state *st, const struct vg_incident_query *q, bool *exact,
                        bool *ended_members)
{
    const char *status = q->status ? q->status : "all";

    *ended_members = false;
    if (q->resource) {
        *exact = !strcmp(status, "all");
        return vg_asprintf("%s:incidents:res:{%s}", st->prefix, q->resource);
    }
    if (!strcmp(status, "firing")) {
        *exact = true;
        return state_key(st, "incidents:firing");
    }
    if (!strcmp(status, "all") || !strcmp(status, "pending")) {
        *exact = !strcmp(status, "all");
        return state_key(st, "incidents");
    }
    *ended_members = true;
    *exact = !strcmp(status, "resolved");
    return state_key(st, "incidents:ended");
}

/* Members read per round: an exact index needs one chunk (more only past expired records). */
static size_t page_chunk(const struct vg_incident_query *q, bool exact)
{
    size_t chunk = exact ? q->limit : (q->limit < 256 ? 256 : q->limit);

    return chunk == 0 || chunk > READ_CHUNK ? READ_CHUNK : chunk;
}

/* Build ZREVRANGEBYSCORE of `index` from `start`, `chunk` members, in `c` (not queued). */
static void page_range(struct state_cmd *c, const char *index, const struct vg_incident_query *q,
                       size_t start, size_t chunk)
{
    state_cmd_str(c, "ZREVRANGEBYSCORE");
    state_cmd_str(c, index);
    state_cmd_str(c, "+inf");
    if (q->since_ms > 0) {
        state_cmd_i64(c, q->since_ms);
    } else {
        state_cmd_str(c, "-inf");
    }
    state_cmd_str(c, "LIMIT");
    state_cmd_i64(c, (int64_t)start);
    state_cmd_i64(c, (int64_t)chunk);
}

/* The records among `records` (GET replies, NULL or nil: gone) that `q` wants, up to its limit. */
static void page_take(const struct vg_incident_query *q, redisReply *const *records, size_t got,
                      size_t chunk, struct vg_incident_record **v, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < got && (q->limit == 0 || *n < q->limit); i++) {
        const redisReply *r = records[i];

        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : chunk;
            *v = vg_realloc(*v, *cap * sizeof(**v));
        }
        if (r && r->type == REDIS_REPLY_STRING &&
            vg_incident_record_from_json(&(*v)[*n], r->str, r->len)) {
            if (query_wants(q, &(*v)[*n])) {
                (*n)++;
            } else {
                vg_incident_record_fini(&(*v)[*n]);
                memset(&(*v)[*n], 0, sizeof((*v)[*n]));
            }
        }
    }
}

static vg_err_t incidents_page(struct vg_state *st, const struct vg_incident_query *q,
                               struct vg_incident_record **out, size_t *n_out, char *errstr,
                               size_t errstr_size)
{
    struct state_cmd c = {0};
    struct vg_incident_record *v = NULL;
    char *index;
    bool ended_members = false;
    bool exact = false;
    bool reindexed = false;
    size_t chunk;
    size_t n = 0;
    size_t cap = 0;
    size_t start = 0;
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err != VG_OK) {
        return err;
    }
    index = page_index(st, q, &exact, &ended_members);
    chunk = page_chunk(q, exact);
    for (;;) {
        redisReply *members = NULL;
        redisReply **records = NULL;
        bool indexed = true;
        size_t got;

        page_range(&c, index, q, start, chunk);
        err = read_indexed(st, &c, "ZREVRANGEBYSCORE incidents", &indexed, &members, errstr,
                           errstr_size);
        if (err != VG_OK) {
            break;
        }
        if (!indexed && !reindexed) {
            freeReplyObject(members);
            reindexed = true;
            err = incidents_reindex(st, NULL, errstr, errstr_size);
            if (err != VG_OK) {
                break;
            }
            continue;
        }
        if (members->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(members);
            snprintf(errstr, errstr_size, "redis %s: ZREVRANGEBYSCORE incidents: unexpected reply",
                     st->redacted);
            err = VG_ERR_INVALID;
            break;
        }
        got = members->elements;
        err = mget_records(st, members->element, got, ended_members, &records, errstr, errstr_size);
        freeReplyObject(members);
        if (err != VG_OK) {
            break;
        }
        page_take(q, records, got, chunk, &v, &n, &cap);
        records_free(records, got);
        if (got < chunk || (q->limit > 0 && n >= q->limit)) {
            break;
        }
        start += chunk;
    }
    state_cmd_fini(&c);
    vg_free(index);
    if (err != VG_OK) {
        vg_incident_records_free(v, n);
        return err;
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}

/* ---- the partitioned layout: every scope read, then merged ------------------------- */

/* Newest first; equal times by id, descending, as ZREVRANGEBYSCORE orders them. */
static int cmp_record_newest(const void *a, const void *b)
{
    const struct vg_incident_record *x = a;
    const struct vg_incident_record *y = b;

    if (x->updated_at_ms != y->updated_at_ms) {
        return x->updated_at_ms > y->updated_at_ms ? -1 : 1;
    }
    return strcmp(y->id ? y->id : "", x->id ? x->id : "");
}

/*
 * Run `one` (a list or a page: newest first, at most `limit` when > 0) in
 * every scope and merge: newest first, at most `limit`. Each scope gives at
 * most `limit`, so the merged page is exactly the newest `limit` of all.
 */
/*
 * The first chunk of every scope's page, in two round trips per node (the
 * index ranges, then the records): parts[k] is scope k's page, or again[k]
 * when that scope needs its own reads (not indexed yet, or a chunk that was
 * full and the page is not).
 */
struct page_read {
    const struct vg_incident_query *q;
    size_t chunk;
    bool ended_members;
    bool *indexed;
    redisReply **members; /* per scope: the ZREVRANGEBYSCORE reply, taken from the pipeline */
    redisReply **records; /* per scope: the MGET reply */
};

static size_t page_queue_first(struct vg_state *st, size_t k, void *arg)
{
    const struct page_read *pr = arg;
    struct state_cmd c = {0};
    bool exact;
    bool ended;
    char *index = page_index(st, pr->q, &exact, &ended);
    size_t n;

    (void)k;
    page_range(&c, index, pr->q, 0, pr->chunk);
    n = queue_indexed(st, &c);
    state_cmd_fini(&c);
    vg_free(index);
    return n;
}

static vg_err_t page_take_first(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                void *arg, char *errstr, size_t errstr_size)
{
    struct page_read *pr = arg;
    bool indexed;
    vg_err_t err =
        take_indexed(st, "ZREVRANGEBYSCORE incidents", replies, &indexed, errstr, errstr_size);

    (void)n;
    if (err != VG_OK) {
        return err;
    }
    if (replies[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "redis %s: ZREVRANGEBYSCORE incidents: unexpected reply",
                 st->redacted);
        return VG_ERR_INVALID;
    }
    pr->indexed[k] = indexed;
    pr->members[k] = replies[1];
    replies[1] = NULL; /* kept for the second round */
    return VG_OK;
}

static size_t page_queue_records(struct vg_state *st, size_t k, void *arg)
{
    const struct page_read *pr = arg;

    if (!pr->indexed[k] || pr->members[k]->elements == 0) {
        return 0;
    }
    return mget_queue(st, pr->members[k]->element, pr->members[k]->elements, pr->ended_members);
}

static vg_err_t page_take_records(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                  void *arg, char *errstr, size_t errstr_size)
{
    struct page_read *pr = arg;

    if (n == 0) {
        return VG_OK;
    }
    if (replies[0]->type == REDIS_REPLY_ERROR) {
        return state_reply_error(st, "MGET incidents", replies[0], errstr, errstr_size);
    }
    if (replies[0]->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "redis %s: MGET incidents: unexpected reply", st->redacted);
        return VG_ERR_INVALID;
    }
    pr->records[k] = replies[0];
    replies[0] = NULL;
    return VG_OK;
}

static vg_err_t pages_first(struct vg_state *st, const struct vg_incident_query *q,
                            const struct vg_offset *scopes, size_t n_scopes,
                            struct vg_incident_record **parts, size_t *n_parts, bool *again,
                            char *errstr, size_t errstr_size)
{
    struct page_read pr = {.q = q};
    struct state_scopes_read first = {"ZREVRANGEBYSCORE incidents", page_queue_first,
                                      page_take_first, &pr};
    struct state_scopes_read records = {"MGET incidents", page_queue_records, page_take_records,
                                        &pr};
    bool exact;
    vg_err_t err;

    vg_free(page_index(st, q, &exact, &pr.ended_members));
    pr.chunk = page_chunk(q, exact);
    pr.indexed = vg_calloc(n_scopes, sizeof(*pr.indexed));
    pr.members = vg_calloc(n_scopes, sizeof(*pr.members));
    pr.records = vg_calloc(n_scopes, sizeof(*pr.records));
    err = state_scopes_read(st, scopes, n_scopes, &first, errstr, errstr_size);
    if (err == VG_OK) {
        err = state_scopes_read(st, scopes, n_scopes, &records, errstr, errstr_size);
    }
    for (size_t k = 0; k < n_scopes; k++) {
        size_t cap = 0;
        size_t got = pr.members[k] ? pr.members[k]->elements : 0;

        again[k] = !pr.indexed[k];
        if (err == VG_OK && !again[k] && pr.records[k]) {
            page_take(q, pr.records[k]->element,
                      got < pr.records[k]->elements ? got : pr.records[k]->elements, pr.chunk,
                      &parts[k], &n_parts[k], &cap);
        }
        if (err == VG_OK && !again[k] && got == pr.chunk &&
            (q->limit == 0 || n_parts[k] < q->limit)) {
            /* more of the index may match: this scope reads on by itself */
            vg_incident_records_free(parts[k], n_parts[k]);
            parts[k] = NULL;
            n_parts[k] = 0;
            again[k] = true;
        }
        if (pr.members[k]) {
            freeReplyObject(pr.members[k]);
        }
        if (pr.records[k]) {
            freeReplyObject(pr.records[k]);
        }
    }
    vg_free(pr.indexed);
    vg_free(pr.members);
    vg_free(pr.records);
    return err;
}

/* Every record of every scope updated at or after since_ms: ids, then records, per node. */
struct list_read {
    int64_t since_ms;
    redisReply **ids;      /* per scope: the ZREVRANGEBYSCORE reply */
    redisReply ***records; /* per scope: its MGET replies */
    size_t *n_records;
};

static size_t list_queue_ids(struct vg_state *st, size_t k, void *arg)
{
    const struct list_read *lr = arg;
    struct state_cmd c = {0};

    (void)k;
    state_cmd_str(&c, "ZREVRANGEBYSCORE");
    state_cmd_fmt(&c, "%s:incidents", st->prefix);
    state_cmd_str(&c, "+inf");
    state_cmd_i64(&c, lr->since_ms);
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
    return 1;
}

static vg_err_t list_take_ids(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                              void *arg, char *errstr, size_t errstr_size)
{
    struct list_read *lr = arg;

    (void)n;
    if (replies[0]->type == REDIS_REPLY_ERROR) {
        return state_reply_error(st, "ZREVRANGEBYSCORE incidents", replies[0], errstr, errstr_size);
    }
    if (replies[0]->type == REDIS_REPLY_ARRAY) {
        lr->ids[k] = replies[0];
        replies[0] = NULL;
    }
    return VG_OK;
}

static size_t list_queue_records(struct vg_state *st, size_t k, void *arg)
{
    const struct list_read *lr = arg;

    if (!lr->ids[k] || lr->ids[k]->elements == 0) {
        return 0;
    }
    return mget_queue(st, lr->ids[k]->element, lr->ids[k]->elements, false);
}

static vg_err_t list_take_records(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                                  void *arg, char *errstr, size_t errstr_size)
{
    struct list_read *lr = arg;
    vg_err_t err = replies_error(st, "MGET incidents", replies, n, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    lr->records[k] = vg_calloc(n ? n : 1, sizeof(**lr->records));
    for (size_t i = 0; i < n; i++) {
        lr->records[k][i] = replies[i];
        replies[i] = NULL;
    }
    lr->n_records[k] = n;
    return VG_OK;
}

static vg_err_t lists_all(struct vg_state *st, int64_t since_ms, const struct vg_offset *scopes,
                          size_t n_scopes, struct vg_incident_record **parts, size_t *n_parts,
                          char *errstr, size_t errstr_size)
{
    struct list_read lr = {.since_ms = since_ms};
    struct state_scopes_read ids = {"ZREVRANGEBYSCORE incidents", list_queue_ids, list_take_ids,
                                    &lr};
    struct state_scopes_read records = {"MGET incidents", list_queue_records, list_take_records,
                                        &lr};
    vg_err_t err;

    lr.ids = vg_calloc(n_scopes, sizeof(*lr.ids));
    lr.records = vg_calloc(n_scopes, sizeof(*lr.records));
    lr.n_records = vg_calloc(n_scopes, sizeof(*lr.n_records));
    err = state_scopes_read(st, scopes, n_scopes, &ids, errstr, errstr_size);
    if (err == VG_OK) {
        err = state_scopes_read(st, scopes, n_scopes, &records, errstr, errstr_size);
    }
    for (size_t k = 0; k < n_scopes; k++) {
        for (size_t j = 0; err == VG_OK && j < lr.n_records[k]; j++) {
            const redisReply *chunk = lr.records[k][j];

            if (chunk->type != REDIS_REPLY_ARRAY) {
                continue;
            }
            parts[k] = vg_realloc(parts[k], (n_parts[k] + chunk->elements + 1) * sizeof(**parts));
            for (size_t i = 0; i < chunk->elements; i++) {
                const redisReply *r = chunk->element[i];

                if (r->type == REDIS_REPLY_STRING &&
                    vg_incident_record_from_json(&parts[k][n_parts[k]], r->str, r->len)) {
                    n_parts[k]++;
                }
            }
        }
        if (lr.ids[k]) {
            freeReplyObject(lr.ids[k]);
        }
        if (lr.records[k]) {
            state_replies_free(lr.records[k], lr.n_records[k]);
            vg_free(lr.records[k]);
        }
    }
    vg_free(lr.ids);
    vg_free(lr.records);
    vg_free(lr.n_records);
    return err;
}

static vg_err_t records_all_scopes(struct vg_state *st, const struct vg_incident_query *q,
                                   int64_t since_ms, size_t limit, struct vg_incident_record **out,
                                   size_t *n_out, char *errstr, size_t errstr_size)
{
    char *m;
    struct vg_offset *scopes = NULL;
    size_t n_scopes = 0;
    struct vg_incident_record *v = NULL;
    struct vg_incident_record **parts = NULL;
    size_t *n_parts = NULL;
    bool *again = NULL;
    size_t n = 0;
    size_t cap = 0;
    vg_err_t err = vg_state_scopes(st, &scopes, &n_scopes, errstr, errstr_size);

    m = state_scope_save(st);
    parts = vg_calloc(n_scopes ? n_scopes : 1, sizeof(*parts));
    n_parts = vg_calloc(n_scopes ? n_scopes : 1, sizeof(*n_parts));
    again = vg_calloc(n_scopes ? n_scopes : 1, sizeof(*again));
    if (err == VG_OK && q) {
        /* a page: the first chunk of every scope together, then each that needs more alone */
        err = pages_first(st, q, scopes, n_scopes, parts, n_parts, again, errstr, errstr_size);
    } else if (err == VG_OK) {
        err = lists_all(st, since_ms, scopes, n_scopes, parts, n_parts, errstr, errstr_size);
    }
    for (size_t k = 0; k < n_scopes && err == VG_OK; k++) {
        if (q && again[k]) {
            err = vg_state_scope(st, scopes[k].topic, scopes[k].partition, errstr, errstr_size);
            if (err == VG_OK) {
                err = incidents_page(st, q, &parts[k], &n_parts[k], errstr, errstr_size);
            }
        }
    }
    for (size_t k = 0; k < n_scopes; k++) {
        if (err == VG_OK && n_parts[k] > 0) {
            vg_array_grow((void **)&v, &cap, n + n_parts[k], sizeof(*v));
            memcpy(v + n, parts[k], n_parts[k] * sizeof(*v));
            n += n_parts[k];
            vg_free(parts[k]);
        } else {
            vg_incident_records_free(parts[k], n_parts[k]);
        }
    }
    vg_free(parts);
    vg_free(n_parts);
    vg_free(again);
    vg_state_scopes_free(scopes, n_scopes);
    err = state_scope_restore(st, m, err, errstr, errstr_size);
    if (err != VG_OK) {
        vg_incident_records_free(v, n);
        return err;
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_record_newest);
    }
    while (limit > 0 && n > limit) {
        vg_incident_record_fini(&v[--n]);
    }
    *out = v;
    *n_out = n;
    return VG_OK;
}

vg_err_t vg_state_incidents_list(struct vg_state *st, int64_t since_ms,
                                 struct vg_incident_record **out, size_t *n_out, char *errstr,
                                 size_t errstr_size)
{
    if (!st->partitioned) {
        return incidents_list(st, since_ms, out, n_out, errstr, errstr_size);
    }
    *out = NULL;
    *n_out = 0;
    return records_all_scopes(st, NULL, since_ms, 0, out, n_out, errstr, errstr_size);
}

vg_err_t vg_state_incidents_page(struct vg_state *st, const struct vg_incident_query *q,
                                 struct vg_incident_record **out, size_t *n_out, char *errstr,
                                 size_t errstr_size)
{
    if (!st->partitioned) {
        return incidents_page(st, q, out, n_out, errstr, errstr_size);
    }
    *out = NULL;
    *n_out = 0;
    return records_all_scopes(st, q, 0, q->limit, out, n_out, errstr, errstr_size);
}

/* GET P:incident:<id> in every scope (one round trip per node): the newest record found. */
struct get_read {
    const char *id;
    struct vg_incident_record *out;
    bool *found;
};

static size_t get_queue_scope(struct vg_state *st, size_t k, void *arg)
{
    const struct get_read *gr = arg;
    struct state_cmd c = {0};

    (void)k;
    state_cmd_str(&c, "GET");
    state_cmd_fmt(&c, "%s:incident:%s", st->prefix, gr->id);
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
    return 1;
}

static vg_err_t get_take_scope(struct vg_state *st, size_t k, redisReply **replies, size_t n,
                               void *arg, char *errstr, size_t errstr_size)
{
    struct get_read *gr = arg;
    const redisReply *reply = replies[0];
    struct vg_incident_record r;

    (void)k;
    (void)n;
    if (reply->type == REDIS_REPLY_ERROR) {
        return state_reply_error(st, "GET incident", reply, errstr, errstr_size);
    }
    if (reply->type != REDIS_REPLY_STRING) {
        return VG_OK;
    }
    memset(&r, 0, sizeof(r));
    if (!vg_incident_record_from_json(&r, reply->str, reply->len)) {
        VG_LOG_WARN("state", "incident %s: unreadable record in %s", gr->id,
                    st->scope ? st->scope : "global");
        return VG_OK;
    }
    if (*gr->found && gr->out->updated_at_ms >= r.updated_at_ms) {
        vg_incident_record_fini(&r);
        return VG_OK;
    }
    if (*gr->found) {
        vg_incident_record_fini(gr->out);
    }
    *gr->out = r;
    *gr->found = true;
    return VG_OK;
}

vg_err_t vg_state_incident_get(struct vg_state *st, const char *id, struct vg_incident_record *out,
                               bool *found, char *errstr, size_t errstr_size)
{
    struct get_read gr = {id, out, found};
    struct state_scopes_read rd = {"GET incident", get_queue_scope, get_take_scope, &gr};
    struct vg_offset *scopes = NULL;
    size_t n_scopes = 0;
    vg_err_t err;

    if (!st->partitioned) {
        return incident_get(st, id, out, found, errstr, errstr_size);
    }
    *found = false;
    memset(out, 0, sizeof(*out));
    err = state_need_ctx(st, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_state_scopes(st, &scopes, &n_scopes, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = state_scopes_read(st, scopes, n_scopes, &rd, errstr, errstr_size);
    }
    vg_state_scopes_free(scopes, n_scopes);
    if (err != VG_OK && *found) {
        vg_incident_record_fini(out);
        memset(out, 0, sizeof(*out));
        *found = false;
    }
    return err;
}

static vg_err_t reindex_scope(struct vg_state *st, const char *scope, void *arg, char *errstr,
                              size_t errstr_size)
{
    size_t *total = arg;
    size_t one = 0;
    vg_err_t err = incidents_reindex(st, &one, errstr, errstr_size);

    (void)scope;
    *total += one;
    return err;
}

vg_err_t vg_state_incidents_reindex(struct vg_state *st, size_t *n_records, char *errstr,
                                    size_t errstr_size)
{
    size_t total = 0;
    /* Each partition's indexes and counts are its own: rebuilt scope by scope. */
    vg_err_t err = state_scopes_each(st, false, reindex_scope, &total, errstr, errstr_size);

    if (n_records) {
        *n_records = total;
    }
    return err;
}
