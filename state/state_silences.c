/*
 * Silences (`vigil silence`): P:silences maps a silence id to its
 * JSON; P:silences:version counts changes so `vigil run` reloads them only
 * when something changed. Silences that ended more than a day ago are
 * dropped when a new one is added. They are global: with redis.layout
 * partitioned they stay in the global scope whatever scope st is in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define SILENCE_KEEP_MS (24LL * 3600 * 1000)

static int cmp_silence(const void *a, const void *b)
{
    const struct vg_silence *x = a;
    const struct vg_silence *y = b;

    if (x->starts_at_ms != y->starts_at_ms) {
        return x->starts_at_ms < y->starts_at_ms ? -1 : 1;
    }
    return strcmp(x->id, y->id);
}

/* `cmd` of P:<key> (then `field`, unless NULL) run in the scope st is in: *reply (state_run). */
static vg_err_t silences_read(struct vg_state *st, const char *cmd, const char *key,
                              const char *field, const char *what, redisReply **reply, char *errstr,
                              size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    state_cmd_str(&c, cmd);
    state_cmd_fmt(&c, "%s:%s", st->prefix, key);
    if (field) {
        state_cmd_str(&c, field);
    }
    err = state_run(st, &c, what, NULL, reply, errstr, errstr_size);
    state_cmd_fini(&c);
    return err;
}

static vg_err_t silences_list(struct vg_state *st, struct vg_silence **out, size_t *n_out,
                              char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    struct vg_silence *v = NULL;
    size_t n = 0;
    vg_err_t err;

    *out = NULL;
    *n_out = 0;
    err = silences_read(st, "HGETALL", "silences", NULL, "HGETALL silences", &reply, errstr,
                        errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        v = vg_calloc(reply->elements / 2 + 1, sizeof(*v));
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *val = reply->element[i + 1];

            if (val->type == REDIS_REPLY_STRING &&
                vg_silence_from_json(&v[n], val->str, val->len)) {
                n++;
            } else {
                VG_LOG_WARN("state", "unreadable silence skipped");
            }
        }
        qsort(v, n, sizeof(*v), cmp_silence);
    }
    freeReplyObject(reply);
    *out = v;
    *n_out = n;
    return VG_OK;
}

/* HSET the silence and bump the version, atomically. */
static vg_err_t write_silence(struct vg_state *st, const struct vg_silence *s,
                              const char *const *drop, size_t n_drop, char *errstr,
                              size_t errstr_size)
{
    struct state_cmd c = {0};
    char *json = vg_silence_to_json(s);
    size_t n = 4;

    state_cmd_str(&c, "MULTI");
    state_cmd_append(st, &c);
    state_cmd_str(&c, "HSET");
    state_cmd_fmt(&c, "%s:silences", st->prefix);
    state_cmd_str(&c, s->id);
    state_cmd_str(&c, json);
    state_cmd_append(st, &c);
    state_cmd_str(&c, "INCR");
    state_cmd_fmt(&c, "%s:silences:version", st->prefix);
    state_cmd_append(st, &c);
    if (n_drop > 0) {
        state_cmd_str(&c, "HDEL");
        state_cmd_fmt(&c, "%s:silences", st->prefix);
        for (size_t i = 0; i < n_drop; i++) {
            state_cmd_str(&c, drop[i]);
        }
        state_cmd_append(st, &c);
        n++;
    }
    state_cmd_str(&c, "EXEC");
    state_cmd_append(st, &c);
    state_cmd_fini(&c);
    vg_free(json);
    return state_read_exec(st, n, "silence", errstr, errstr_size);
}

static vg_err_t silence_add(struct vg_state *st, const struct vg_silence *s, char *errstr,
                            size_t errstr_size)
{
    struct vg_silence *all = NULL;
    size_t n = 0;
    const char **drop;
    size_t n_drop = 0;
    vg_err_t err = silences_list(st, &all, &n, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    drop = vg_calloc(n + 1, sizeof(*drop));
    for (size_t i = 0; i < n; i++) {
        if (all[i].ends_at_ms + SILENCE_KEEP_MS < s->starts_at_ms) {
            drop[n_drop++] = all[i].id;
        }
    }
    err = write_silence(st, s, drop, n_drop, errstr, errstr_size);
    vg_free(drop);
    vg_silences_free(all, n);
    return err;
}

static vg_err_t silence_expire(struct vg_state *st, const char *id, int64_t now_ms, bool *found,
                               char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    struct vg_silence s;
    vg_err_t err;

    *found = false;
    err = silences_read(st, "HGET", "silences", id, "HGET silence", &reply, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type != REDIS_REPLY_STRING || !vg_silence_from_json(&s, reply->str, reply->len)) {
        freeReplyObject(reply);
        return VG_OK;
    }
    freeReplyObject(reply);
    *found = true;
    if (s.ends_at_ms > now_ms) {
        s.ends_at_ms = now_ms;
        if (s.starts_at_ms > now_ms) {
            s.starts_at_ms = now_ms;
        }
        err = write_silence(st, &s, NULL, 0, errstr, errstr_size);
    }
    vg_silence_fini(&s);
    return err;
}

static vg_err_t silences_version(struct vg_state *st, int64_t *out, char *errstr,
                                 size_t errstr_size)
{
    redisReply *reply = NULL;
    vg_err_t err;

    *out = 0;
    err = silences_read(st, "GET", "silences:version", NULL, "GET silences:version", &reply, errstr,
                        errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (reply->type == REDIS_REPLY_STRING && !vg_parse_i64(reply->str, out)) {
        *out = 0;
    }
    freeReplyObject(reply);
    return err;
}

/* ---- in the global scope, whatever scope st is in -------------------------------- */

/*
 * Silences are not a partition's: with redis.layout partitioned they live in
 * the global scope, and the pipeline asks for their version while it is in
 * a partition's scope. Each call enters the global scope (on a cluster, the
 * node of its slot), does its work there and returns st to where it was.
 */
static vg_err_t enter_global(struct vg_state *st, char **m, char *errstr, size_t errstr_size)
{
    *m = state_scope_save(st);
    if (!*m) {
        return VG_OK;
    }
    return vg_state_scope(st, NULL, 0, errstr, errstr_size);
}

vg_err_t vg_state_silences_list(struct vg_state *st, struct vg_silence **out, size_t *n_out,
                                char *errstr, size_t errstr_size)
{
    char *m;
    vg_err_t err = enter_global(st, &m, errstr, errstr_size);

    *out = NULL;
    *n_out = 0;
    if (err == VG_OK) {
        err = silences_list(st, out, n_out, errstr, errstr_size);
    }
    return state_scope_restore(st, m, err, errstr, errstr_size);
}

vg_err_t vg_state_silence_add(struct vg_state *st, const struct vg_silence *s, char *errstr,
                              size_t errstr_size)
{
    char *m;
    vg_err_t err = enter_global(st, &m, errstr, errstr_size);

    if (err == VG_OK) {
        err = silence_add(st, s, errstr, errstr_size);
    }
    return state_scope_restore(st, m, err, errstr, errstr_size);
}

vg_err_t vg_state_silence_expire(struct vg_state *st, const char *id, int64_t now_ms, bool *found,
                                 char *errstr, size_t errstr_size)
{
    char *m;
    vg_err_t err = enter_global(st, &m, errstr, errstr_size);

    *found = false;
    if (err == VG_OK) {
        err = silence_expire(st, id, now_ms, found, errstr, errstr_size);
    }
    return state_scope_restore(st, m, err, errstr, errstr_size);
}

vg_err_t vg_state_silences_version(struct vg_state *st, int64_t *out, char *errstr,
                                   size_t errstr_size)
{
    char *m;
    vg_err_t err = enter_global(st, &m, errstr, errstr_size);

    *out = 0;
    if (err == VG_OK) {
        err = silences_version(st, out, errstr, errstr_size);
    }
    return state_scope_restore(st, m, err, errstr, errstr_size);
}
