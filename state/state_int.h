/*
 * Private to state/: struct vg_state (shared by every state_*.c file), the
 * redis URL parser (unit tested on its own), the translation of hiredis
 * failures into vg_err_t (state_redis.c, done there once), the one way to
 * run a command and judge its reply, the binary-safe command builder, keys,
 * the Resource <-> hash codec, and the pieces other files queue inside
 * vg_state_commit's MULTI/EXEC.
 */
#ifndef VIGIL_STATE_INT_H
#define VIGIL_STATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "vigil/mem.h"
#include "vigil/state.h"

#define STATE_REDIS_DEFAULT_PORT 6379
#define STATE_CONNECT_TIMEOUT_MS 2000
#define STATE_COMMAND_TIMEOUT_MS 10000
#define STATE_URL_REDACTED_MAX 512
#define STATE_OUTBOX_GROUP "dispatch"
#define STATE_HISTORY_MAXLEN "1000"

/* ---- the redis URL (state_redis.c) ------------------------------------------ */

/* A parsed redis URL. Strings are owned (state_url_fini). */
struct state_url {
    bool is_unix;
    char *host; /* TCP: hostname or IP literal (IPv6 without brackets) */
    int port;   /* TCP */
    char *path; /* unix: absolute socket path */
    char *user; /* NULL when absent (AUTH pass) */
    char *pass; /* NULL: no AUTH */
    int db;
};

/*
 * Parse "redis://[user[:pass]@]host[:port][/db]" or
 * "unix:///abs/path.sock[?db=N]". User and password may be %XX-encoded.
 * Returns VG_OK, or VG_ERR_INVALID with errstr naming the redacted URL.
 * On failure `out` is left zeroed (nothing to free).
 */
vg_err_t state_url_parse(const char *url, struct state_url *out, char *errstr, size_t errstr_size);
void state_url_fini(struct state_url *u);

/* ---- the connection --------------------------------------------------------- */

struct state_cluster;

/* One Redis connection plus the Resource cache; one thread uses it. */
struct vg_state {
    redisContext *ctx; /* NULL once dead (NULL reply) until vg_state_reconnect */
    struct state_url url;
    char redacted[STATE_URL_REDACTED_MAX]; /* the URL for messages: never the password */
    /* The prefix of the keys of the scope now (docs/state.md "Layouts"): the global
     * one, or with redis.layout partitioned, a Kafka partition's
     * "<name>:{<topic>/<partition>}" (vg_state_scope). */
    char *prefix;
    char *name;   /* the configured prefix, without braces */
    char *global; /* the global scope's prefix: name, or "{name}" on a cluster */
    bool partitioned;
    char *scope;          /* "<topic>/<partition>" of the scope now; NULL: the global one */
    struct vg_map *cache; /* id -> struct cache_entry *, owned (state.c) */
    size_t cache_max;     /* vg_state_cache_trim keeps at most this many; 0: no bound */
    uint64_t cache_use;   /* resolve calls so far: each lent Resource records it */
    /* Whether a Resource's index entries (P:idx:*) are known to be in Redis
     * (loaded from a hash, written with them atomically, or committed by us;
     * a commit then skips their SADD) is its own `indexed` flag: it goes
     * with the Resource when the cache drops it, costing no second map. */
    /* topic -> its name, owned: the cache entries' partitions point at these */
    struct vg_map *cache_topics;

    /* Outbox reader state (state_outbox.c). */
    bool group_ready;       /* XGROUP CREATE done (or BUSYGROUP) on this server */
    char *pending_consumer; /* whose own pending entries are being drained */
    char *pending_cursor;   /* last own pending id returned; "0" at start */
    bool pending_done;      /* own pending entries of pending_consumer all returned */
    char *claim_cursor;     /* XAUTOCLAIM start id for the next call */
    /* With the partitioned layout the reader goes through one stream per scope
     * (state_outbox.c): the global one first, then every registered partition's.
     * group_ready false (a reconnect, a NOGROUP) re-checks every stream's group,
     * pending_done false hands out every stream's own pending entries again. */
    struct state_outbox_stream *streams;
    size_t n_streams;
    size_t cap_streams;
    int64_t streams_listed_ms;  /* mono: the registry was last read then */
    int64_t streams_claimed_ms; /* mono: the last XAUTOCLAIM pass over the streams */

    /* On a Redis Cluster (docs/redis-cluster.md); NULL on one Redis. ctx then
     * goes to the primary of the tag's slot, url names that node. */
    struct state_cluster *cluster;
    char *tag;         /* the hash tag of the scope's keys: the prefix, or "<topic>/<partition>" */
    uint16_t tag_slot; /* its slot */
    char *global_tag;  /* the global scope's tag */
    uint16_t node_idx; /* the node ctx is connected to (STATE_CLUSTER_NO_NODE: none yet) */
    /* Connections to other nodes kept while ctx serves another scope, by node index,
     * and what each was asked about the incident counts function (incident_fn_asked,
     * and whether it answered "EVAL"), restored with it. */
    redisContext **parked; /* by (node, lane): node * n_lanes + lane */
    size_t n_parked;
    /* Commit lanes (redis.commit_connections, docs/state.md "Commit lanes"): with the
     * partitioned layout a partition's scope commits on connection `partition % n_lanes`
     * of its node, the global scope on lane 0; 1 with the single layout. `lane` is the
     * lane of st->ctx, `scope_lane` the one the scope now wants. */
    uint16_t n_lanes;
    uint16_t lane;
    uint16_t scope_lane;
    /* Scopes change keys only, not the lane (a reader pipelining several scopes of one
     * node on one connection, state_scopes_read): any connection to the node reads. */
    bool keep_lane;
    struct state_parked_fn {
        bool asked;
        bool eval;
    } * parked_fn;
    char *seed_redacted; /* the configured URL for messages (redacted) */
    int wait_replicas;   /* > 0: a commit ends with WAIT (replicas, timeout) */
    int wait_timeout_ms;
    /* The nodes whose replicas owe the proof that they hold a commit (its WAIT fell short, or
     * its connection went with the WAIT unanswered), by the scope it was written in: a retry
     * of that batch may find only replays, and an empty commit sends no WAIT. Settled by
     * state_wait_settle before vg_state_reconnect or a claim succeeds. */
    struct state_wait_owed *owed;
    size_t n_owed;
    size_t cap_owed;

    /* How a commit runs the incident counts script (state_incidents.c): asked once per
     * connection, before its first commit with records; incident_fn is the Redis function's
     * name, or empty: EVAL. */
    bool incident_fn_asked;
    char incident_fn[48];
    /* The commits written by vg_state_commit_send and not finished yet, oldest first
     * (inflight[inflight_head .. n_inflight)): docs/state.md "Commits in flight". */
    struct state_inflight *inflight;
    size_t inflight_head;
    size_t n_inflight;
    size_t cap_inflight;
    /* Resources the cache let go of while commits were in flight (a copy of another scope
     * read in their place): their commits and the batch may still point at them, so they are
     * freed by the next vg_state_cache_trim or vg_state_cache_clear, not at once. */
    struct vg_resource **aside;
    size_t n_aside;
    size_t cap_aside;
};

struct state_exec_reply;

/*
 * A commit in flight: written on `ctx`, its replies unread until a read on that
 * connection drains them (state_commits_drain) or vg_state_commit_finish takes it.
 * What finishing needs is copied: the pipeline reuses its arrays for the next part.
 */
struct state_inflight {
    redisContext *ctx; /* NULL once its connection is gone (the verdict is then set) */
    size_t n;          /* replies: MULTI, the commands, EXEC; 0: nothing was sent */
    size_t n_wait;     /* 1: a WAIT reply follows */
    bool read;         /* judged: err and errstr are the verdict */
    vg_err_t err;
    char *errstr;             /* the verdict's message; NULL: none */
    bool fenced_out;          /* EXEC returned nil under the fences: explained when finished */
    bool exec_ran;            /* EXEC's reply was an array: the commands ran (errors inside it) */
    bool incidents;           /* the commit had incident records */
    struct vg_resource **res; /* the Resources dirty when it was written */
    size_t n_res;
    struct vg_fence *fences; /* topics owned */
    size_t n_fences;
    size_t *fence_lost;
    char *scope;                           /* the scope it was written in; NULL: the global one */
    char redacted[STATE_URL_REDACTED_MAX]; /* the node it went to, for messages */
    /* A fence sent ahead (vg_state_fence_ahead): n is 3 (UNWATCH, WATCH, MGET), `fences`
     * what was watched; once read, fence_moved is the index of the first epoch that moved
     * (n_fences: none) and fence_now its value. fence_used: a commit took its verdict. */
    bool fence_ahead;
    bool fence_used;
    size_t fence_moved;
    int64_t fence_now;
};

/*
 * Before any other read on st->ctx: read and judge the replies of every commit in
 * flight on it, in order, keeping each verdict for vg_state_commit_finish. VG_OK, or
 * VG_ERR_BACKEND when the connection failed meanwhile (errstr names `what`; the
 * connection is closed and every commit in flight on it failed).
 */
vg_err_t state_commits_drain(struct vg_state *st, const char *what, char *errstr,
                             size_t errstr_size);
static inline bool state_commits_pending(const struct vg_state *st)
{
    return st->inflight_head < st->n_inflight;
}
/*
 * `ctx` (st->ctx or a parked one) is about to be freed: every commit in flight on it
 * fails (VG_ERR_BACKEND, "connection lost with the commit in flight") unread.
 */
void state_commits_conn_lost(struct vg_state *st, const redisContext *ctx);
/*
 * Read `n` replies of a pipeline ending in EXEC on `ctx` into `er`, without draining
 * and without closing anything: VG_OK, or VG_ERR_BACKEND with ctx->errstr set (`er`
 * then needs no fini).
 */
vg_err_t state_conn_read_exec(redisContext *ctx, size_t n, struct state_exec_reply *er);
/* ---- the FIFO itself (state_inflight.c), for vg_state_commit_send/_finish ---- */
/* A new entry at its end, zeroed. */
struct state_inflight *state_inflight_push(struct vg_state *st);
/* An entry for `cm`, just written on st->ctx as n replies (and n_wait WAIT replies). */
void state_inflight_record(struct vg_state *st, const struct vg_commit *cm, size_t n,
                           size_t n_wait);
/* Judge the entries on `ctx` in order, up to `upto` (NULL: all); a connection failure goes
 * into *why (the connection is then closed and its entries failed). */
vg_err_t state_inflight_drain(struct vg_state *st, const redisContext *ctx,
                              const struct state_inflight *upto, char *why, size_t why_size);
bool state_inflight_unread_on(const struct vg_state *st, const redisContext *ctx);
/* The fence sent ahead `e` forgotten: its connection's replies read, then UNWATCH there (a
 * failure closes the connection: VG_ERR_BACKEND). */
vg_err_t state_inflight_unwatch(struct vg_state *st, struct state_inflight *e, char *errstr,
                                size_t errstr_size);
/* The first of `fences` whose epoch in `mget` (an MGET reply) is not the one expected, with
 * the epoch now in *now (0: the key is gone, -1: unreadable); n when all hold. */
size_t state_fence_moved(const struct vg_fence *fences, size_t n, const redisReply *mget,
                         int64_t *now);
/* A commit failed on `ctx` (NULL: gone): that server is asked about the counts function again. */
void state_inflight_forget_function(struct vg_state *st, const redisContext *ctx);
void state_inflight_fini(struct state_inflight *e);
/* The WAIT reply after a commit (redis.wait_replicas), judged: too few replicas is
 * VG_ERR_BACKEND, an error reply its class. Owes nothing by itself (state_wait_owe). */
vg_err_t state_judge_wait(const struct vg_state *st, const char *redacted, const redisReply *reply,
                          char *errstr, size_t errstr_size);

/*
 * What a node owes (redis.wait_replicas): a commit written in `scope` (NULL: the
 * global one) on `ctx` ran, or may have, without its replicas proving they have it.
 * One entry per scope; `ctx` is the connection whose WAIT alone would prove it, NULL
 * once closed (then only a write of its own on a connection to the slot's primary
 * now, followed by WAIT, does: replication is one ordered stream per primary).
 */
struct state_wait_owed {
    char *scope;
    const redisContext *ctx;
};
/* Owe the WAIT of a commit written in `scope` on `ctx` (on one Redis every scope is the one
 * server: recorded as the global scope). */
void state_wait_owe(struct vg_state *st, const redisContext *ctx, const char *scope);
/* Forget st->owed[i] (its node proved it). */
void state_wait_paid(struct vg_state *st, size_t i);
/*
 * For every node that owes (st->owed), on a connection to the primary that serves the
 * scope's slot now: WAIT (on the connection that wrote it) or SET P:wait-mark then WAIT
 * (any other). VG_OK once every one had enough replicas (nothing owed: at once, no round
 * trip); else VG_ERR_BACKEND naming the node, and what is left stays owed. st goes back
 * to the scope it was in.
 */
vg_err_t state_wait_settle(struct vg_state *st, char *errstr, size_t errstr_size);

/* state_error_text with the node's redacted URL given. */
vg_err_t state_error_text_at(const char *redacted, const char *what, const char *msg, size_t len,
                             char *errstr, size_t errstr_size);

/* One scope's outbox stream, as the partitioned layout's reader keeps it. */
struct state_outbox_stream {
    char *scope; /* "<topic>/<partition>"; NULL: the global scope */
    char *key;   /* its outbox stream */
    bool group_ready;
    bool pending_done;
    char *pending_cursor;
    char *claim_cursor;
};
/* Free st's outbox streams (vg_state_destroy). */
void state_outbox_streams_free(struct vg_state *st);
/* The scope st is in, to go back to: state_scope_restore enters it again and frees it; the
 * result is `err` unless that is VG_OK and going back failed. */
char *state_scope_save(const struct vg_state *st);
vg_err_t state_scope_restore(struct vg_state *st, char *saved, vg_err_t err, char *errstr,
                             size_t errstr_size);
/*
 * fn in every scope, one after another: with `global` the global scope first
 * (scope NULL), then each registered partition ("<topic>/<partition>", in
 * vg_state_scopes order; borrowed, valid during the call). Stops at the first
 * error; st goes back to the scope it was in. The single layout: fn(st, NULL)
 * once, where st is. One scope at a time: a reader that can pipeline its
 * scopes per node uses state_scopes_read instead.
 */
vg_err_t state_scopes_each(struct vg_state *st, bool global,
                           vg_err_t (*fn)(struct vg_state *st, const char *scope, void *arg,
                                          char *errstr, size_t errstr_size),
                           void *arg, char *errstr, size_t errstr_size);
/*
 * st->ctx was taken back from the parked ones: what that connection was asked
 * about the incident counts function (state_incidents.c) holds again.
 */
void state_incidents_conn_restore(struct vg_state *st, bool asked, bool eval);

/* Open st->ctx from st->url: connect, timeouts, AUTH, SELECT, PING. */
vg_err_t state_redis_open(struct vg_state *st, char *errstr, size_t errstr_size);
/* Free st->ctx (the context is dead or we are done). */
void state_redis_close(struct vg_state *st);

/* ---- errors: hiredis failures become vg_err_t here, once --------------------- */

/* snprintf into errstr, which may be NULL (size 0) when the caller only wants the class. */
void state_set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* VG_ERR_BACKEND "redis URL: not connected" unless st->ctx is alive. */
vg_err_t state_need_ctx(struct vg_state *st, char *errstr, size_t errstr_size);

/*
 * The context failed (NULL reply, REDIS_ERR): fill errstr with the
 * redacted URL, `what` and ctx->errstr, close the context and return
 * VG_ERR_BACKEND. Out of memory inside hiredis aborts.
 */
vg_err_t state_ctx_failed(struct vg_state *st, const char *what, char *errstr, size_t errstr_size);

/*
 * A REDIS_REPLY_ERROR reply: VG_ERR_BACKEND for transient server states
 * (LOADING, MASTERDOWN, BUSY, TRYAGAIN, CLUSTERDOWN, READONLY, MISCONF,
 * OOM, NOREPLICAS, EXECABORT), VG_ERR_INVALID for everything else
 * (NOAUTH, WRONGPASS, NOPERM, WRONGTYPE, ERR ...).
 */
vg_err_t state_error_class(const char *msg, size_t len);
/* Classify and describe a server error reply ("redis URL: what: message"); returns the class. */
vg_err_t state_error_text(const struct vg_state *st, const char *what, const char *msg, size_t len,
                          char *errstr, size_t errstr_size);
/* state_error_text of an error reply. */
vg_err_t state_reply_error(const struct vg_state *st, const char *what, const redisReply *reply,
                           char *errstr, size_t errstr_size);
/* True when `reply` is an error whose first word is `code` ("BUSYGROUP", "NOGROUP"). */
bool state_error_is(const redisReply *reply, const char *code);

/* ---- commands --------------------------------------------------------------- */

/*
 * A binary-safe command under construction, written as RESP while the
 * arguments arrive (each copied once): STATE_CMD_HEAD bytes kept free for
 * the "*<argc>\r\n" header, which only state_cmd_append knows, then each
 * argument as "$<len>\r\n<bytes>\r\n". Zero-initialise.
 */
#define STATE_CMD_HEAD 24
struct state_cmd {
    char *buf;
    size_t len; /* 0 while empty, else STATE_CMD_HEAD + the arguments */
    size_t cap;
    size_t n; /* arguments so far */
};
void state_cmd_arg(struct state_cmd *c, const char *s, size_t len);
/* One argument made of two pieces back to back ("inc:" and a monitor name). */
void state_cmd_arg2(struct state_cmd *c, const char *a, size_t alen, const char *b, size_t blen);
/* The key "P:<kind>:{ID}" (state_key_res) as one argument, without a heap copy. */
void state_cmd_key_res(struct state_cmd *c, const struct vg_state *st, const char *kind,
                       const char *id);
void state_cmd_i64(struct state_cmd *c, int64_t v);
void state_cmd_fmt(struct state_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A name/value argument pair (a NULL value is ""); name_len is strlen(name). */
void state_cmd_field_n(struct state_cmd *c, const char *name, size_t name_len, const char *value);
void state_cmd_field_i64_n(struct state_cmd *c, const char *name, size_t name_len, int64_t value);
/*
 * A name and one value made of pieces joined by STATE_PIECE_SEP: a history
 * entry's transition and source (docs/state.md, "P:hist:{ID} entries"). A piece is a
 * string (s, len) or, with s NULL, the integer i.
 */
#define STATE_PIECE_SEP '\x1f'
struct state_piece {
    const char *s;
    size_t len;
    int64_t i;
};
void state_cmd_field_pieces(struct state_cmd *c, const char *name, size_t name_len,
                            const struct state_piece *pieces, size_t n);
/*
 * A history entry's pairs (state_history_entry.c; docs/state.md,
 * "P:hist:{ID} entries"): a transition `t` (field, from, to), its event's
 * source `s` (at, partition, offset, topic) followed by its message.
 */
void state_history_transition(struct state_cmd *c, const char *field, const char *from,
                              const char *to);
void state_history_source(struct state_cmd *c, int64_t at_ms, const struct vg_kafka_pos *pos,
                          const char *message);
/*
 * One XRANGE entry, [id, [name, value, ...]], appended to v[*n..] as one
 * history entry per transition it holds (a log line: one). False (with
 * `why`) when it is not one of ours; then nothing is appended.
 */
bool state_history_entry_read(const redisReply *r, struct vg_history_entry **v, size_t *n,
                              size_t *cap, const char **why);
void state_history_entry_fini(struct vg_history_entry *e);
/*
 * A string argument (NULL is ""), and the pairs above by name alone. Inline
 * so that the length of a literal (most names, "HSET") is known when compiled.
 */
static inline void state_cmd_str(struct state_cmd *c, const char *s)
{
    state_cmd_arg(c, s ? s : "", s ? strlen(s) : 0);
}
static inline void state_cmd_field(struct state_cmd *c, const char *name, const char *value)
{
    state_cmd_field_n(c, name, strlen(name), value);
}
static inline void state_cmd_field_i64(struct state_cmd *c, const char *name, int64_t value)
{
    state_cmd_field_i64_n(c, name, strlen(name), value);
}
/* Queue the command on st->ctx (pre-formatted RESP) and reset `c` for the next one. */
void state_cmd_append(struct vg_state *st, struct state_cmd *c);
/* Forget the arguments gathered so far (the buffers are kept). */
void state_cmd_reset(struct state_cmd *c);
void state_cmd_fini(struct state_cmd *c);

/*
 * Run the one command built in `c` and read its reply; `c` is left empty
 * for the next command. The one place a single command's reply is judged:
 *  - not connected, or the context failed: VG_ERR_BACKEND (the context is
 *    closed, as state_ctx_failed);
 *  - a server error reply: its class (state_reply_error: errstr names
 *    `what`), and the reply is freed; except an error whose first word is
 *    `allow` (e.g. "BUSYGROUP"; NULL: none), which is handed back as the
 *    reply. A NOGROUP also marks the outbox group for re-creation;
 *  - VG_OK: *out is the reply, owned by the caller (freeReplyObject);
 *    with `out` NULL the reply is freed (only success mattered).
 */
vg_err_t state_run(struct vg_state *st, struct state_cmd *c, const char *what, const char *allow,
                   redisReply **out, char *errstr, size_t errstr_size);

/*
 * Read `n` pipelined replies into `replies` (all or nothing: on failure
 * none are left allocated and the context is closed).
 */
vg_err_t state_read_replies(struct vg_state *st, size_t n, redisReply **replies, const char *what,
                            char *errstr, size_t errstr_size);
/*
 * state_read_replies, then the first server error reply among them, if
 * any, is the result (as state_reply_error; then all replies are freed).
 */
vg_err_t state_read_checked(struct vg_state *st, size_t n, redisReply **replies, const char *what,
                            char *errstr, size_t errstr_size);
void state_replies_free(redisReply **replies, size_t n);
/*
 * Read the `n` replies of the commands queued (GET, HGET ...) into out[i]: a
 * copy of each string reply, NULL for any other (owned by the caller).
 * `checked`: a server error reply fails the read as state_read_checked;
 * else it reads as NULL. On failure out is untouched.
 */
vg_err_t state_read_strings(struct vg_state *st, size_t n, bool checked, char **out,
                            const char *what, char *errstr, size_t errstr_size);
/*
 * A stream entry's [name, value, ...] array (XRANGE, XREADGROUP) read by
 * name: vals[j] is the value of the field names[j], NULL when the entry has
 * none (a name given twice: the last). The values are borrowed from `fields`.
 */
void state_stream_fields(const redisReply *fields, const char *const *names, size_t n,
                         const redisReply **vals);
/* Whether `r` is the string `s`. */
static inline bool state_reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);

    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}
/*
 * A copy of a string reply (a field's value, a stream id); for any other,
 * or NULL (absent), a copy of `absent`, or NULL when that is NULL.
 */
char *state_reply_str(const redisReply *v, const char *absent);
/* The integer a string reply holds into *out; false (out untouched) for anything else. */
bool state_reply_i64(const redisReply *v, int64_t *out);
/*
 * What the `n` replies of a pipeline ending in EXEC (MULTI, the queued
 * commands' replies, EXEC) said, noted while they are read: no reply
 * object is built. The error texts are owned (state_exec_reply_fini).
 */
struct state_exec_reply {
    size_t n;      /* replies in the pipeline; the last is EXEC's */
    size_t n_read; /* read so far */
    size_t err_at; /* the first error reply among the n; n when none */
    char *err;     /* its text */
    size_t err_len;
    int exec_type;  /* REDIS_REPLY_* of EXEC's reply (NIL: a WATCHed key moved) */
    char *elem_err; /* the first error among EXEC's elements; NULL none */
    size_t elem_err_len;
};
/*
 * Read the `n` replies into `er` (on failure nothing is left to free and
 * the context is closed, as state_read_replies).
 */
vg_err_t state_read_exec_reply(struct vg_state *st, size_t n, struct state_exec_reply *er,
                               const char *what, char *errstr, size_t errstr_size);
void state_exec_reply_fini(struct state_exec_reply *er);
/*
 * Read the `n` replies of a pipeline ending in EXEC and check them all:
 * a queueing error, a nil EXEC (VG_ERR_BACKEND) or an error inside EXEC.
 */
vg_err_t state_read_exec(struct vg_state *st, size_t n, const char *what, char *errstr,
                         size_t errstr_size);

/* ---- keys ------------------------------------------------------------------- */

/*
 * `prefix` as keys start with it: itself on one Redis; on a cluster "{T}"
 * plus what follows the tag T ("vigil:replay:1" -> "{vigil}:replay:1"), a
 * prefix that does not extend T gets its own tag, and one that starts with
 * '{' is taken as it is. A new heap string.
 */
char *state_key_prefix(const struct vg_state *st, const char *prefix);

/*
 * Run `c` (state_run, no error allowed) on the global scope's keys
 * (P:parts, silences, ...), whatever scope st is in: on a cluster the
 * global slot may be served by another node. *reply may be NULL.
 */
struct state_cmd;
vg_err_t state_scope_global_run(struct vg_state *st, struct state_cmd *c, const char *what,
                                redisReply **reply, char *errstr, size_t errstr_size);
/*
 * One read over many scopes: queue(st, k, arg) queues scope k's commands
 * (st is in scope k) and returns how many; take(st, k, replies, n, arg,
 * ...) judges its `n` replies (borrowed). Scopes whose slots one node
 * serves share one round trip (on one Redis: all of them); on a cluster,
 * one round trip per node. st goes back to the scope it was in.
 */
struct state_scopes_read {
    const char *what;
    size_t (*queue)(struct vg_state *st, size_t k, void *arg);
    vg_err_t (*take)(struct vg_state *st, size_t k, redisReply **replies, size_t n, void *arg,
                     char *errstr, size_t errstr_size);
    void *arg;
};
vg_err_t state_scopes_read(struct vg_state *st, const struct vg_offset *scopes, size_t n,
                           const struct state_scopes_read *rd, char *errstr, size_t errstr_size);
/*
 * Each of `ids` (distinct) looked up in every scope into out[i]: the newest
 * copy, NULL when none (or unreadable); owned by the caller. One round trip
 * per node whatever n (the partitioned layout, no partition known).
 */
vg_err_t state_read_ids(struct vg_state *st, const char *const *ids, size_t n,
                        struct vg_resource **out, char *errstr, size_t errstr_size);
/* Which of `a` and `b` (both non-NULL, same id) readers take: the newest updated_at. */
bool state_resource_newer(const struct vg_resource *a, const struct vg_resource *b);

/* Keys under the prefix; each returns a new heap string. */
char *state_key(const struct vg_state *st, const char *suffix);
/* "P:<kind>:{ID}": kind "res", "hist", "audit" or "notif". */
char *state_key_res(const struct vg_state *st, const char *kind, const char *id);
/* "P:timers:<topic>/<partition>", or "P:timers:groups" when topic is NULL. */
char *state_timer_key(const struct vg_state *st, const char *topic, int32_t partition);

/* ---- Resource hashes (state_resource.c) ------------------------------------- */

/* Every field of `res` as name/value argument pairs (no command, no key). */
void state_resource_fields(struct state_cmd *c, const struct vg_resource *res);
/*
 * Queue the write of dirty `res`'s hash: HSET of what changed (its
 * dirty bits and names) and HDEL of the fields that went away; the whole
 * hash when the bits say so (VG_DIRTY_WHOLE; VG_DIRTY_REPLACE or no bits
 * at all: DEL first). Returns the number of commands queued.
 */
size_t state_resource_write(struct vg_state *st, struct state_cmd *c,
                            const struct vg_resource *res);
/* Queue HGETALL of Resource `id`'s hash (P:res:{id}): one reply. */
void state_resource_queue_read(struct vg_state *st, struct state_cmd *c, const char *id);
/*
 * Build a Resource from an HGETALL reply (non-empty array). NULL when the
 * hash is not one of ours (`why` says which field).
 */
struct vg_resource *state_resource_from_reply(const redisReply *r, char *why, size_t why_size);

/*
 * Tests only: `fn(arg)` runs inside every fenced vg_state_commit after its
 * fence check (WATCH + MGET) passed and before MULTI is sent, to move an
 * epoch in that window. NULL: none. Not thread-safe.
 */
void state_test_on_fenced(void (*fn)(void *arg), void *arg);

/* ---- queued inside vg_state_commit's MULTI ---------------------------------- */

/*
 * Each returns the number of commands queued: a grouped page into its
 * buffer plus the group timer (state_timers.c), incident records
 * (state_incidents.c), timer changes (state_timers.c).
 */
size_t state_append_group_page(struct vg_state *st, struct state_cmd *c, const struct vg_page *pg);
size_t state_append_incidents(struct vg_state *st, struct state_cmd *c,
                              const struct vg_incident_record *v, size_t n);
/*
 * Before the first commit with incident records on a connection: FUNCTION
 * LOAD the counts script (one round trip), or settle on EVAL where the
 * server has no functions. VG_OK, or the connection's failure.
 */
vg_err_t state_incidents_prepare(struct vg_state *st, char *errstr, size_t errstr_size);
/* Whether an error inside EXEC says the counts function is not on the server. */
bool state_incidents_no_function(const char *err, size_t len);
/*
 * A commit ran without its counts function (flushed from the server under
 * us): its records and indexes were written, their counts were not. Drop
 * P:incidents:indexed so that the next reader rebuilds the counts from the
 * records. Best effort; logs a WARN.
 */
void state_incidents_recount(struct vg_state *st);
size_t state_append_timers(struct vg_state *st, struct state_cmd *c, const struct vg_timer *v,
                           size_t n);
/*
 * Queue XADD P:outbox * with one outbox entry's fields, the ones the reader
 * takes (state_outbox.c): id, sink, pager, body (body_len bytes; NULL: ""),
 * then origin unless NULL. One command.
 */
void state_append_outbox_entry(struct vg_state *st, struct state_cmd *c, const char *id,
                               const char *sink, const char *pager, const char *body,
                               size_t body_len, const char *origin);

#endif
