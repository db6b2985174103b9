/*
 * What `vigil replay` needs of Redis besides the pipeline's writes: moving
 * every key from one prefix to another (the swap: RENAME in SCAN pages,
 * since Redis has no prefix rename), deleting a prefix, dropping the pages
 * a replay held back, and the counts of its summary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/mem.h"

#define SCAN_PAGE 500

/* "P:*" with the glob characters of P escaped, for SCAN MATCH; P as keys start with
 * it (on a cluster "\\{P\\}:*": the braces escaped too). */
static char *prefix_pattern(const char *prefix)
{
    size_t len = strlen(prefix);
    char *pat = vg_malloc(2 * len + 3);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (strchr("*?[]{}\\", prefix[i])) {
            pat[n++] = '\\';
        }
        pat[n++] = prefix[i];
    }
    pat[n++] = ':';
    pat[n++] = '*';
    pat[n] = '\0';
    return pat;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);

    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* One SCAN page of `pattern` from *cursor: *keys is the reply's key array (caller frees reply). */
static vg_err_t scan_page(struct vg_state *st, const char *pattern, char *cursor,
                          size_t cursor_size, redisReply **reply, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err;
    redisReply *r;

    state_cmd_str(&c, "SCAN");
    state_cmd_str(&c, cursor);
    state_cmd_str(&c, "MATCH");
    state_cmd_str(&c, pattern);
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, SCAN_PAGE);
    err = state_run(st, &c, "SCAN", NULL, &r, errstr, errstr_size);
    state_cmd_fini(&c);
    if (err != VG_OK) {
        return err;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        state_set_err(errstr, errstr_size, "SCAN: unexpected reply");
        return VG_ERR_FATAL;
    }
    snprintf(cursor, cursor_size, "%.*s", (int)r->element[0]->len, r->element[0]->str);
    *reply = r;
    return VG_OK;
}

/*
 * Send the queued commands' replies away: `n` pipelined replies, each OK
 * or the error `tolerated` (a key SCAN returned twice is gone the second
 * time); counts the successes.
 */
static vg_err_t read_batch(struct vg_state *st, size_t n, const char *what, const char *tolerated,
                           long long *done, char *errstr, size_t errstr_size)
{
    redisReply **replies;
    vg_err_t err = VG_OK;

    if (n == 0) {
        return VG_OK;
    }
    replies = vg_calloc(n, sizeof(*replies));
    err = state_read_replies(st, n, replies, what, errstr, errstr_size);
    if (err == VG_OK) {
        for (size_t i = 0; i < n; i++) {
            if (replies[i]->type != REDIS_REPLY_ERROR) {
                (*done)++;
            } else if (!tolerated || !strstr(replies[i]->str, tolerated)) {
                err = state_reply_error(st, what, replies[i], errstr, errstr_size);
                break;
            }
        }
        state_replies_free(replies, n);
    }
    free(replies);
    return err;
}

vg_err_t vg_state_move_prefix(struct vg_state *st, const char *from, const char *to,
                              const char *const *skip, long long *moved, char *errstr,
                              size_t errstr_size)
{
    char *from_keys = state_key_prefix(st, from);
    char *to_keys = state_key_prefix(st, to);
    char *pattern = prefix_pattern(from_keys);
    size_t from_len = strlen(from_keys);
    char cursor[32] = "0";
    vg_err_t err = VG_OK;

    *moved = 0;
    do {
        redisReply *r = NULL;
        redisReply *keys;
        size_t queued = 0;

        err = scan_page(st, pattern, cursor, sizeof(cursor), &r, errstr, errstr_size);
        if (err != VG_OK) {
            break;
        }
        keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *key = keys->element[i]->str;
            size_t len = keys->element[i]->len;
            struct state_cmd c = {0};
            bool skipped = false;

            for (size_t j = 0; skip && skip[j]; j++) {
                char *skip_keys = state_key_prefix(st, skip[j]);

                skipped = skipped || has_prefix(key, len, skip_keys);
                free(skip_keys);
            }
            if (skipped) {
                continue;
            }
            state_cmd_str(&c, "RENAME");
            state_cmd_arg(&c, key, len);
            state_cmd_fmt(&c, "%s%.*s", to_keys, (int)(len - from_len), key + from_len);
            state_cmd_append(st, &c);
            state_cmd_fini(&c);
            queued++;
        }
        freeReplyObject(r);
        err = read_batch(st, queued, "RENAME", "no such key", moved, errstr, errstr_size);
    } while (err == VG_OK && strcmp(cursor, "0") != 0);
    free(pattern);
    free(from_keys);
    free(to_keys);
    return err;
}

vg_err_t vg_state_delete_prefix(struct vg_state *st, const char *prefix, long long *deleted,
                                char *errstr, size_t errstr_size)
{
    char *prefix_keys = state_key_prefix(st, prefix);
    char *pattern = prefix_pattern(prefix_keys);
    char cursor[32] = "0";
    vg_err_t err = VG_OK;

    *deleted = 0;
    do {
        redisReply *r = NULL;
        redisReply *keys;
        struct state_cmd c = {0};

        err = scan_page(st, pattern, cursor, sizeof(cursor), &r, errstr, errstr_size);
        if (err != VG_OK) {
            break;
        }
        keys = r->element[1];
        if (keys->elements > 0) {
            long long n = 0;

            state_cmd_str(&c, "UNLINK");
            for (size_t i = 0; i < keys->elements; i++) {
                state_cmd_arg(&c, keys->element[i]->str, keys->element[i]->len);
            }
            state_cmd_append(st, &c);
            err = read_batch(st, 1, "UNLINK", NULL, &n, errstr, errstr_size);
            *deleted += (long long)keys->elements;
        }
        state_cmd_fini(&c);
        freeReplyObject(r);
    } while (err == VG_OK && strcmp(cursor, "0") != 0);
    free(pattern);
    free(prefix_keys);
    return err;
}

vg_err_t vg_state_drop_pages(struct vg_state *st, long long *dropped, char *errstr,
                             size_t errstr_size)
{
    char *grp = state_key(st, "grp");
    char *grp_idx = state_key(st, "grp:idx");
    long long buffers = 0;
    long long n = 0;
    struct state_cmd c = {0};
    redisReply *r = NULL;
    vg_err_t err;

    *dropped = 0;
    /* the pages themselves: what XLEN counts is what was held back */
    state_cmd_str(&c, "XLEN");
    state_cmd_fmt(&c, "%s:outbox", st->prefix);
    err = state_run(st, &c, "XLEN", NULL, &r, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    *dropped = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    /* group buffers would be flushed into the outbox by the next vigil run;
     * their indexes (grp:idx:) first, so what is counted is the buffers */
    err = vg_state_delete_prefix(st, grp_idx, &buffers, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_state_delete_prefix(st, grp, &buffers, errstr, errstr_size);
    }
    if (err != VG_OK) {
        goto out;
    }
    state_cmd_str(&c, "UNLINK");
    state_cmd_fmt(&c, "%s:outbox", st->prefix);
    state_cmd_fmt(&c, "%s:outbox:dead", st->prefix);
    state_cmd_fmt(&c, "%s:timers:groups", st->prefix);
    state_cmd_append(st, &c);
    err = read_batch(st, 1, "UNLINK", NULL, &n, errstr, errstr_size);
    *dropped += buffers;
out:
    state_cmd_fini(&c);
    free(grp_idx);
    free(grp);
    return err;
}

vg_err_t vg_state_replay_counts(struct vg_state *st, struct vg_state_replay_counts *out,
                                char *errstr, size_t errstr_size)
{
    static const char *const cmds[][2] = {
        {"SCARD", "idx:all"}, {"ZCARD", "incidents:firing"}, {"XLEN", "outbox"}};
    long long *fields[] = {&out->resources, &out->firing, &out->outbox};
    redisReply *replies[VG_ARRAY_LEN(cmds)];
    vg_err_t err;

    memset(out, 0, sizeof(*out));
    err = state_need_ctx(st, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(cmds); i++) {
        struct state_cmd c = {0};

        state_cmd_str(&c, cmds[i][0]);
        state_cmd_fmt(&c, "%s:%s", st->prefix, cmds[i][1]);
        state_cmd_append(st, &c);
        state_cmd_fini(&c);
    }
    err = state_read_checked(st, VG_ARRAY_LEN(cmds), replies, "replay counts", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(cmds); i++) {
        *fields[i] = replies[i]->type == REDIS_REPLY_INTEGER ? replies[i]->integer : 0;
    }
    state_replies_free(replies, VG_ARRAY_LEN(cmds));
    return VG_OK;
}
