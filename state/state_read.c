/*
 * The read side of Resources, for `vigil get` and the HTTP API: one
 * Resource by id, and lists filtered by type, workspace, owner and name
 * glob, found through the index sets and the name index (never SCAN).
 * Nothing here touches the pipeline's cache; history reads are in
 * state_history.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

/*
 * HGETALL each of `ids` in one round trip. out[i] is NULL for a missing
 * or unreadable hash (`strict`: unreadable is VG_ERR_INVALID instead).
 */
static vg_err_t load_many(struct vg_state *st, const char *const *ids, size_t n, bool strict,
                          struct vg_resource **out, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    redisReply **replies;
    vg_err_t err;

    if (n == 0) {
        return VG_OK;
    }
    for (size_t i = 0; i < n; i++) {
        char *key = state_key_res(st, "res", ids[i]);

        state_cmd_str(&c, "HGETALL");
        state_cmd_str(&c, key);
        state_cmd_append(st, &c);
        vg_free(key);
    }
    state_cmd_fini(&c);
    replies = vg_calloc(n, sizeof(*replies));
    err = state_read_checked(st, n, replies, "HGETALL", errstr, errstr_size);
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
    }
    for (size_t i = 0; i < n && err == VG_OK; i++) {
        const redisReply *r = replies[i];
        char why[128];

        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            out[i] = state_resource_from_reply(r, why, sizeof(why));
            if (!out[i] && strict) {
                state_set_err(errstr, errstr_size, "redis %s: resource %s: unreadable hash: %s",
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
    state_replies_free(replies, n);
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
static void append_set_query(struct vg_state *st, struct state_cmd *c, const char *type,
                             const char *ws)
{
    if (type && ws) {
        state_cmd_str(c, "SINTER");
        state_cmd_fmt(c, "%s:idx:type:%s", st->prefix, type);
        state_cmd_fmt(c, "%s:idx:ws:%s", st->prefix, ws);
    } else if (type) {
        state_cmd_str(c, "SMEMBERS");
        state_cmd_fmt(c, "%s:idx:type:%s", st->prefix, type);
    } else if (ws) {
        state_cmd_str(c, "SMEMBERS");
        state_cmd_fmt(c, "%s:idx:ws:%s", st->prefix, ws);
    } else {
        state_cmd_str(c, "SMEMBERS");
        state_cmd_fmt(c, "%s:idx:all", st->prefix);
    }
    state_cmd_append(st, c);
}

/* ZRANGEBYLEX P:idx:name over the members whose name starts with the glob's literal prefix. */
static void append_name_query(struct vg_state *st, struct state_cmd *c, const char *glob)
{
    size_t lit = strcspn(glob, "*?[\\");

    state_cmd_str(c, "ZRANGEBYLEX");
    state_cmd_fmt(c, "%s:idx:name", st->prefix);
    if (lit == 0) {
        state_cmd_str(c, "-");
        state_cmd_str(c, "+");
    } else {
        /* [prefix .. (prefix\xff: UTF-8 text never holds a 0xff byte, so every
         * member starting with the prefix sorts below prefix\xff. */
        state_cmd_fmt(c, "[%.*s", (int)lit, glob);
        state_cmd_fmt(c, "(%.*s\xff", (int)lit, glob);
    }
    state_cmd_append(st, c);
}

static bool reply_is_array(const struct vg_state *st, const redisReply *r, const char *what,
                           vg_err_t *err, char *errstr, size_t errstr_size)
{
    if (r->type == REDIS_REPLY_ERROR) {
        *err = state_reply_error(st, what, r, errstr, errstr_size);
        return false;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        state_set_err(errstr, errstr_size, "redis %s: %s: unexpected reply type %d", st->redacted,
                      what, r->type);
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
    struct state_cmd c = {0};
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
        state_cmd_str(&c, "ZCARD");
        state_cmd_fmt(&c, "%s:idx:name", st->prefix);
        state_cmd_append(st, &c);
        state_cmd_str(&c, "SCARD");
        state_cmd_fmt(&c, "%s:idx:all", st->prefix);
        state_cmd_append(st, &c);
        n_replies += 3;
    }
    state_cmd_fini(&c);
    err = state_read_replies(st, n_replies, replies, "index", errstr, errstr_size);
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
                state_replies_free(replies, n_replies);
                append_set_query(st, &c, NULL, NULL);
                state_cmd_fini(&c);
                n_replies = 1;
                err = state_read_replies(st, 1, replies, "index", errstr, errstr_size);
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
    state_replies_free(replies, n_replies);
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
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

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
    vg_err_t err = state_need_ctx(st, errstr, errstr_size);

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
