/*
 * What `vigil replay` needs of Redis besides the pipeline's writes: moving
 * every key from one prefix to another (the swap: RENAME in SCAN pages,
 * since Redis has no prefix rename), deleting a prefix, dropping the pages
 * a replay held back, and the counts of its summary. With redis.layout
 * partitioned each works through every partition's scope, and on a cluster
 * scans every primary (docs/state.md "Layouts").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_cluster.h"
#include "state_int.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define SCAN_PAGE 500

/*
 * The global keys of the partitioned layout that a replay rebuilds and
 * swaps: the registry of partitions and the group timers (and the pod
 * links, P:pod:*, and the group buffers, P:grp:*, moved with the
 * partitions' keys). The rest of the global scope
 * (silences) is the operators', not derived from the topics: it stays
 * where it is (docs/state.md "Layouts").
 */
static const char *const swapped_globals[] = {"parts", "timers:groups", NULL};

/* "<P><tail>" with the glob characters of P escaped, for SCAN MATCH (`tail` is a glob
 * already: ":*", or ":\\{*" for the partition scopes "P:{<topic>/<partition>}:..."). */
static char *prefix_pattern(const char *prefix, const char *tail)
{
    size_t len = strlen(prefix);
    char *pat = vg_malloc(2 * len + strlen(tail) + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (strchr("*?[]{}\\", prefix[i])) {
            pat[n++] = '\\';
        }
        pat[n++] = prefix[i];
    }
    memcpy(pat + n, tail, strlen(tail) + 1);
    return pat;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);

    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/*
 * Where a SCAN runs: st's connection (one Redis, or on a cluster the slot
 * that holds every key of the single layout or of st's scope), or with
 * `cluster` the primary that owns `slot`, through the cluster client.
 */
struct scan_at {
    struct vg_state *st;
    bool cluster;
    uint16_t slot;
};

/* Run the command of `c` where `at` says, one reply into *reply (an error reply is judged). */
static vg_err_t run_at(const struct scan_at *at, struct state_cmd *c, const char *what,
                       redisReply **reply, char *errstr, size_t errstr_size)
{
    struct state_cluster_batch b = {0};
    vg_err_t err;

    if (!at->cluster) {
        return state_run(at->st, c, what, NULL, reply, errstr, errstr_size);
    }
    state_cluster_batch_add_cmd(&b, c);
    err = state_cluster_pipeline(at->st->cluster, at->slot, &b, STATE_CLUSTER_IDEMPOTENT, reply,
                                 errstr, errstr_size);
    state_cluster_batch_fini(&b);
    if (err == VG_OK && (*reply)->type == REDIS_REPLY_ERROR) {
        err = state_reply_error(at->st, what, *reply, errstr, errstr_size);
        freeReplyObject(*reply);
        *reply = NULL;
    }
    return err;
}

/* One SCAN page of `pattern` from *cursor: *keys is the reply's key array (caller frees reply). */
static vg_err_t scan_page(const struct scan_at *at, const char *pattern, char *cursor,
                          size_t cursor_size, redisReply **reply, char *errstr, size_t errstr_size)
{
    struct state_cmd c = {0};
    vg_err_t err;
    redisReply *r = NULL;

    state_cmd_str(&c, "SCAN");
    state_cmd_str(&c, cursor);
    state_cmd_str(&c, "MATCH");
    state_cmd_str(&c, pattern);
    state_cmd_str(&c, "COUNT");
    state_cmd_i64(&c, SCAN_PAGE);
    err = run_at(at, &c, "SCAN", &r, errstr, errstr_size);
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
 * Judge `n` replies: each OK (an integer reply counts as that many, anything
 * else as one) or the error `tolerated` (a key SCAN returned twice is gone
 * the second time); counts the successes into *done.
 */
static vg_err_t judge_replies(const struct vg_state *st, redisReply **replies, size_t n,
                              const char *what, const char *tolerated, long long *done,
                              char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_INTEGER) {
            *done += replies[i]->integer;
        } else if (replies[i]->type != REDIS_REPLY_ERROR) {
            (*done)++;
        } else if (!tolerated || !strstr(replies[i]->str, tolerated)) {
            return state_reply_error(st, what, replies[i], errstr, errstr_size);
        }
    }
    return VG_OK;
}

/* Read the `n` replies of the commands queued on st's connection and judge them. */
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
        err = judge_replies(st, replies, n, what, tolerated, done, errstr, errstr_size);
        state_replies_free(replies, n);
    }
    free(replies);
    return err;
}

/*
 * What a scan does to each key it finds: build the key's command into `c`
 * (RENAME, UNLINK), or leave `c` empty to leave the key alone.
 */
struct key_op {
    void (*build)(const struct key_op *op, const char *key, size_t len, struct state_cmd *c);
    const char *what;
    const char *tolerated; /* an error reply that is no error here (NULL: none) */
    /* RENAME: keys starting with one of `skip` stay; "<from><rest>" becomes "<to><rest>" */
    const char *const *skip;
    const char *from;
    const char *to;
};

static void build_rename(const struct key_op *op, const char *key, size_t len, struct state_cmd *c)
{
    size_t from_len = strlen(op->from);

    for (size_t j = 0; op->skip && op->skip[j]; j++) {
        if (has_prefix(key, len, op->skip[j])) {
            return;
        }
    }
    if (!has_prefix(key, len, op->from)) {
        return; /* SCAN MATCH said it is; a glob cannot be more exact than this */
    }
    state_cmd_str(c, "RENAME");
    state_cmd_arg(c, key, len);
    state_cmd_fmt(c, "%s%.*s", op->to, (int)(len - from_len), key + from_len);
}

static void build_unlink(const struct key_op *op, const char *key, size_t len, struct state_cmd *c)
{
    (void)op;
    state_cmd_str(c, "UNLINK");
    state_cmd_arg(c, key, len);
}

struct slot_key {
    uint16_t slot;
    size_t i;
};

static int cmp_slot_key(const void *a, const void *b)
{
    const struct slot_key *x = a;
    const struct slot_key *y = b;

    if (x->slot != y->slot) {
        return x->slot < y->slot ? -1 : 1;
    }
    return (x->i > y->i) - (x->i < y->i);
}

/*
 * The op on each of `keys` on a cluster: pipelined per slot (a SCAN page of
 * one node holds the keys of many slots), each run to its slot's primary
 * through the cluster client.
 */
static vg_err_t apply_on_cluster(struct vg_state *st, const redisReply *keys,
                                 const struct key_op *op, long long *done, char *errstr,
                                 size_t errstr_size)
{
    size_t n = keys->elements;
    struct slot_key *v = vg_malloc((n ? n : 1) * sizeof(*v));
    struct state_cluster_batch b = {0};
    vg_err_t err = VG_OK;

    for (size_t i = 0; i < n; i++) {
        v[i].slot = state_cluster_keyslot(keys->element[i]->str, keys->element[i]->len);
        v[i].i = i;
    }
    qsort(v, n, sizeof(*v), cmp_slot_key);
    for (size_t i = 0; i < n && err == VG_OK;) {
        size_t j = i;
        redisReply **replies;

        state_cluster_batch_reset(&b);
        for (; j < n && v[j].slot == v[i].slot; j++) {
            const redisReply *k = keys->element[v[j].i];
            struct state_cmd c = {0};

            op->build(op, k->str, k->len, &c);
            if (c.n > 0) {
                state_cluster_batch_add_cmd(&b, &c);
            }
            state_cmd_fini(&c);
        }
        if (b.n > 0) {
            replies = vg_calloc(b.n, sizeof(*replies));
            err = state_cluster_pipeline(st->cluster, v[i].slot, &b, STATE_CLUSTER_IDEMPOTENT,
                                         replies, errstr, errstr_size);
            if (err == VG_OK) {
                err = judge_replies(st, replies, b.n, op->what, op->tolerated, done, errstr,
                                    errstr_size);
                state_replies_free(replies, b.n);
            }
            free(replies);
        }
        i = j;
    }
    state_cluster_batch_fini(&b);
    free(v);
    return err;
}

/* The op on each of `keys` on st's connection, pipelined. */
static vg_err_t apply_on_ctx(struct vg_state *st, const redisReply *keys, const struct key_op *op,
                             long long *done, char *errstr, size_t errstr_size)
{
    size_t queued = 0;

    for (size_t i = 0; i < keys->elements; i++) {
        struct state_cmd c = {0};

        op->build(op, keys->element[i]->str, keys->element[i]->len, &c);
        if (c.n > 0) {
            state_cmd_append(st, &c);
            queued++;
        }
        state_cmd_fini(&c);
    }
    return read_batch(st, queued, op->what, op->tolerated, done, errstr, errstr_size);
}

/* Every key matching `pattern` where `at` says, SCAN page by SCAN page, through `op`. */
static vg_err_t scan_apply(const struct scan_at *at, const char *pattern, const struct key_op *op,
                           long long *done, char *errstr, size_t errstr_size)
{
    char cursor[32] = "0";
    vg_err_t err;

    do {
        redisReply *r = NULL;

        err = scan_page(at, pattern, cursor, sizeof(cursor), &r, errstr, errstr_size);
        if (err != VG_OK) {
            break;
        }
        if (at->cluster) {
            err = apply_on_cluster(at->st, r->element[1], op, done, errstr, errstr_size);
        } else {
            err = apply_on_ctx(at->st, r->element[1], op, done, errstr, errstr_size);
        }
        freeReplyObject(r);
    } while (err == VG_OK && strcmp(cursor, "0") != 0);
    return err;
}

struct primary_scan {
    struct vg_state *st;
    const char *pattern;
    const struct key_op *op;
    long long *done;
    char *errstr;
    size_t errstr_size;
};

static vg_err_t scan_primary(void *arg, uint16_t slot, const char *addr)
{
    const struct primary_scan *ps = arg;
    struct scan_at at = {ps->st, true, slot};

    (void)addr;
    return scan_apply(&at, ps->pattern, ps->op, ps->done, ps->errstr, ps->errstr_size);
}

/*
 * Every key matching `pattern` in the whole keyspace: on one Redis through
 * st's connection; on a cluster on every primary (the partitions' slots
 * are spread over all of them). Slots must not move meanwhile: a replay
 * runs with no reshard (docs/state.md "Layouts").
 */
static vg_err_t scan_everywhere(struct vg_state *st, const char *pattern, const struct key_op *op,
                                long long *done, char *errstr, size_t errstr_size)
{
    struct primary_scan ps = {st, pattern, op, done, errstr, errstr_size};
    struct scan_at at = {st, false, 0};

    if (!st->cluster) {
        return scan_apply(&at, pattern, op, done, errstr, errstr_size);
    }
    return state_cluster_each_primary(st->cluster, scan_primary, &ps, errstr, errstr_size);
}

/*
 * The partitioned layout's move: the partitions' keys "<from>:{t/p}:..." on
 * every primary (each RENAME within its partition's slot: the hash tag is
 * the same on both sides), then the global keys a replay rebuilds
 * (swapped_globals), each within the global tag's slot.
 */
static vg_err_t move_partitioned(struct vg_state *st, const char *from, const char *to,
                                 const char *const *skip, long long *moved, char *errstr,
                                 size_t errstr_size)
{
    static const char *const moved_globals[] = {":pod:*", ":grp:*"};
    char *from_name = vg_asprintf("%s:", from);
    char *to_name = vg_asprintf("%s:", to);
    char *pattern = prefix_pattern(from, ":\\{*");
    char *from_global = state_key_prefix(st, from);
    char *to_global = state_key_prefix(st, to);
    struct key_op op = {build_rename, "RENAME", "no such key", skip, from_name, to_name};
    vg_err_t err;

    err = scan_everywhere(st, pattern, &op, moved, errstr, errstr_size);
    for (size_t i = 0; err == VG_OK && i < VG_ARRAY_LEN(moved_globals); i++) {
        /* the pod links and the group buffers (with their indexes), in the global
         * scope (within the global tag's slot on both sides) */
        char *from_keys = vg_asprintf("%s:", from_global);
        char *to_keys = vg_asprintf("%s:", to_global);
        char *keys = prefix_pattern(from_global, moved_globals[i]);
        struct key_op key_op = {build_rename, "RENAME", "no such key", skip, from_keys, to_keys};

        err = scan_everywhere(st, keys, &key_op, moved, errstr, errstr_size);
        free(keys);
        free(to_keys);
        free(from_keys);
    }
    for (size_t i = 0; err == VG_OK && swapped_globals[i]; i++) {
        struct state_cmd c = {0};
        redisReply *r = NULL;

        state_cmd_str(&c, "RENAME");
        state_cmd_fmt(&c, "%s:%s", from_global, swapped_globals[i]);
        state_cmd_fmt(&c, "%s:%s", to_global, swapped_globals[i]);
        err = state_scope_global_run(st, &c, "RENAME", &r, errstr, errstr_size);
        if (err != VG_OK && strstr(errstr, "no such key")) {
            err = VG_OK; /* no such global key on this side */
        } else if (err == VG_OK) {
            (*moved)++;
            freeReplyObject(r);
        }
        state_cmd_fini(&c);
    }
    free(to_global);
    free(from_global);
    free(pattern);
    free(to_name);
    free(from_name);
    return err;
}

vg_err_t vg_state_move_prefix(struct vg_state *st, const char *from, const char *to,
                              const char *const *skip, long long *moved, char *errstr,
                              size_t errstr_size)
{
    char *from_keys;
    char *to_keys;
    char *pattern;
    char **skip_keys = NULL;
    size_t n_skip = 0;
    struct key_op op = {build_rename, "RENAME", "no such key", NULL, NULL, NULL};
    struct scan_at at = {st, false, 0};
    vg_err_t err;

    *moved = 0;
    if (st->partitioned) {
        return move_partitioned(st, from, to, skip, moved, errstr, errstr_size);
    }
    /* the single layout: every key in the one slot of the prefix's tag, on st's connection */
    from_keys = state_key_prefix(st, from);
    to_keys = state_key_prefix(st, to);
    pattern = prefix_pattern(from_keys, ":*");
    while (skip && skip[n_skip]) {
        n_skip++;
    }
    skip_keys = vg_calloc(n_skip + 1, sizeof(*skip_keys));
    for (size_t j = 0; j < n_skip; j++) {
        skip_keys[j] = state_key_prefix(st, skip[j]);
    }
    op.skip = (const char *const *)skip_keys;
    op.from = from_keys;
    op.to = to_keys;
    err = scan_apply(&at, pattern, &op, moved, errstr, errstr_size);
    for (size_t j = 0; j < n_skip; j++) {
        free(skip_keys[j]);
    }
    free(skip_keys);
    free(pattern);
    free(from_keys);
    free(to_keys);
    return err;
}

/* Every key starting with `keys_prefix` (a full key prefix) on st's connection. */
static vg_err_t delete_on_ctx(struct vg_state *st, const char *keys_prefix, long long *deleted,
                              char *errstr, size_t errstr_size)
{
    char *pattern = prefix_pattern(keys_prefix, ":*");
    struct key_op op = {build_unlink, "UNLINK", NULL, NULL, NULL, NULL};
    struct scan_at at = {st, false, 0};
    vg_err_t err = scan_apply(&at, pattern, &op, deleted, errstr, errstr_size);

    free(pattern);
    return err;
}

vg_err_t vg_state_delete_prefix(struct vg_state *st, const char *prefix, long long *deleted,
                                char *errstr, size_t errstr_size)
{
    char *prefix_keys = state_key_prefix(st, prefix);
    struct key_op op = {build_unlink, "UNLINK", NULL, NULL, NULL, NULL};
    vg_err_t err;

    *deleted = 0;
    if (!st->partitioned) {
        err = delete_on_ctx(st, prefix_keys, deleted, errstr, errstr_size);
    } else {
        /* the global keys ("{P}:..." on a cluster; on one Redis "P:..." is all of them) */
        char *pattern = prefix_pattern(prefix_keys, ":*");

        err = scan_everywhere(st, pattern, &op, deleted, errstr, errstr_size);
        free(pattern);
        if (err == VG_OK && strcmp(prefix_keys, prefix) != 0) {
            /* on a cluster the partitions' "P:{t/p}:..." as well, on every primary */
            pattern = prefix_pattern(prefix, ":\\{*");
            err = scan_everywhere(st, pattern, &op, deleted, errstr, errstr_size);
            free(pattern);
        }
    }
    free(prefix_keys);
    return err;
}

/* vg_state_drop_pages in the scope st is in (the prefix's own, or one partition's). */
static vg_err_t drop_pages_here(struct vg_state *st, long long *dropped, char *errstr,
                                size_t errstr_size)
{
    char *grp = state_key(st, "grp");
    char *grp_idx = state_key(st, "grp:idx");
    long long buffers = 0;
    long long n = 0;
    struct state_cmd c = {0};
    redisReply *r = NULL;
    vg_err_t err;

    /* the pages themselves: what XLEN counts is what was held back */
    state_cmd_str(&c, "XLEN");
    state_cmd_fmt(&c, "%s:outbox", st->prefix);
    err = state_run(st, &c, "XLEN", NULL, &r, errstr, errstr_size);
    if (err != VG_OK) {
        goto out;
    }
    *dropped += r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    /* group buffers would be flushed into the outbox by the next vigil run;
     * their indexes (grp:idx:) first, so what is counted is the buffers.
     * Every key of the scope is in its slot: st's connection holds them all. */
    err = delete_on_ctx(st, grp_idx, &buffers, errstr, errstr_size);
    if (err == VG_OK) {
        buffers = 0;
        err = delete_on_ctx(st, grp, &buffers, errstr, errstr_size);
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

static vg_err_t drop_pages_fn(struct vg_state *st, const char *scope, void *arg, char *errstr,
                              size_t errstr_size)
{
    (void)scope;
    return drop_pages_here(st, arg, errstr, errstr_size);
}

vg_err_t vg_state_drop_pages(struct vg_state *st, long long *dropped, char *errstr,
                             size_t errstr_size)
{
    *dropped = 0;
    /* the global scope too: the partitioned layout's group buffers (and its outbox) */
    return state_scopes_each(st, true, drop_pages_fn, dropped, errstr, errstr_size);
}

/* vg_state_replay_counts in the scope st is in, added to `arg` (struct vg_state_replay_counts). */
static vg_err_t counts_fn(struct vg_state *st, const char *scope, void *arg, char *errstr,
                          size_t errstr_size)
{
    static const char *const cmds[][2] = {
        {"SCARD", "idx:all"}, {"ZCARD", "incidents:firing"}, {"XLEN", "outbox"}};
    struct vg_state_replay_counts *out = arg;
    long long *fields[] = {&out->resources, &out->firing, &out->outbox};
    redisReply *replies[VG_ARRAY_LEN(cmds)];
    vg_err_t err;

    (void)scope;
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
        *fields[i] += replies[i]->type == REDIS_REPLY_INTEGER ? replies[i]->integer : 0;
    }
    state_replies_free(replies, VG_ARRAY_LEN(cmds));
    return VG_OK;
}

vg_err_t vg_state_replay_counts(struct vg_state *st, struct vg_state_replay_counts *out,
                                char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    return state_scopes_each(st, false, counts_fn, out, errstr, errstr_size);
}
