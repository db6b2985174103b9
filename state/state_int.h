/*
 * Private to state/: the redis URL parser (unit tested on its own), the
 * struct vg_state shared by state.c and state_outbox.c, a binary-safe
 * argv builder for pipelined commands, and the translation of hiredis
 * failures into vg_err_t (done here once, nowhere else).
 */
#ifndef VIGIL_STATE_INT_H
#define VIGIL_STATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "vigil/mem.h"
#include "vigil/state.h"

#define VG_REDIS_DEFAULT_PORT 6379
#define VG_REDIS_CONNECT_TIMEOUT_MS 2000
#define VG_REDIS_COMMAND_TIMEOUT_MS 10000
#define VG_REDIS_URL_REDACTED_MAX 512
#define VG_OUTBOX_GROUP "dispatch"
#define VG_HISTORY_MAXLEN "1000"

/* A parsed redis URL. Strings are owned (vg_redis_url_fini). */
struct vg_redis_url {
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
vg_err_t vg_redis_url_parse(const char *url, struct vg_redis_url *out, char *errstr,
                            size_t errstr_size);
void vg_redis_url_fini(struct vg_redis_url *u);

/*
 * One Redis connection plus the Resource cache. Defined here (not in
 * state.c) because state_outbox.c works on the same connection.
 */
struct vg_state {
    redisContext *ctx; /* NULL once dead (NULL reply) until vg_state_reconnect */
    struct vg_redis_url url;
    char redacted[VG_REDIS_URL_REDACTED_MAX]; /* the URL for messages: never the password */
    char *prefix;
    struct vg_map *cache; /* id -> struct vg_resource *, owned */
    /* ids whose index entries (P:idx:*) are known to be in Redis: loaded from
     * a hash (written with them, atomically) or committed by us. A commit
     * skips their SADD/ZADD (issue 3). Cleared with the cache. */
    struct vg_map *indexed;
    /* id -> struct vg_res_shadow *: the field names and value hashes Redis holds
     * for a cached Resource, so a commit writes only the fields that changed
     * and HDELs the ones that went away. No shadow: unknown, DEL and rewrite. */
    struct vg_map *shadow;

    /* Outbox reader state (state_outbox.c). */
    bool group_ready;       /* XGROUP CREATE done (or BUSYGROUP) on this server */
    char *pending_consumer; /* whose own pending entries are being drained */
    char *pending_cursor;   /* last own pending id returned; "0" at start */
    bool pending_done;      /* own pending entries of pending_consumer all returned */
    char *claim_cursor;     /* XAUTOCLAIM start id for the next call */
};

/* Open st->ctx from st->url: connect, AUTH, SELECT, PING. */
vg_err_t vg_state_redis_open(struct vg_state *st, char *errstr, size_t errstr_size);
/* Free st->ctx (the context is dead or we are done). */
void vg_state_redis_close(struct vg_state *st);

/*
 * VG_ERR_BACKEND "redis URL: not connected" unless st->ctx is alive.
 */
vg_err_t vg_state_need_ctx(struct vg_state *st, char *errstr, size_t errstr_size);

/*
 * The context failed (NULL reply, REDIS_ERR): fill errstr with the
 * redacted URL, `what` and ctx->errstr, close the context and return
 * VG_ERR_BACKEND. Out of memory inside hiredis aborts.
 */
vg_err_t vg_state_ctx_failed(struct vg_state *st, const char *what, char *errstr,
                             size_t errstr_size);

/*
 * A REDIS_REPLY_ERROR reply: VG_ERR_BACKEND for transient server states
 * (LOADING, MASTERDOWN, BUSY, TRYAGAIN, CLUSTERDOWN, READONLY, MISCONF,
 * OOM, NOREPLICAS, EXECABORT), VG_ERR_INVALID for everything else
 * (NOAUTH, WRONGPASS, NOPERM, WRONGTYPE, ERR ...).
 */
vg_err_t vg_redis_error_class(const char *msg, size_t len);
/* Classify and describe a server error reply; returns the class. */
vg_err_t vg_state_reply_error(const struct vg_state *st, const char *what, const redisReply *reply,
                              char *errstr, size_t errstr_size);
/* True when `reply` is an error whose first word is `code` ("BUSYGROUP", "NOGROUP"). */
bool vg_redis_error_is(const redisReply *reply, const char *code);

/*
 * Read `n` pipelined replies into `replies` (all or nothing: on failure
 * none are left allocated and the context is closed).
 */
vg_err_t vg_state_read_replies(struct vg_state *st, size_t n, redisReply **replies,
                               const char *what, char *errstr, size_t errstr_size);
void vg_redis_replies_free(redisReply **replies, size_t n);
/*
 * Read the `n` replies of a pipeline ending in EXEC and check them all:
 * a queueing error, a nil EXEC (VG_ERR_BACKEND) or an error inside EXEC.
 */
vg_err_t vg_state_read_exec(struct vg_state *st, size_t n, const char *what, char *errstr,
                            size_t errstr_size);

/* A binary-safe command under construction (arguments are copied). */
struct vg_cmd_pos {
    size_t off;
    size_t len;
};
struct vg_cmd {
    struct vg_buf data; /* the arguments back to back */
    struct vg_cmd_pos *pos;
    size_t n;
    size_t cap;
    struct vg_buf resp; /* the command in RESP, built by vg_cmd_append */
};
void vg_cmd_arg(struct vg_cmd *c, const char *s, size_t len);
void vg_cmd_str(struct vg_cmd *c, const char *s);
void vg_cmd_i64(struct vg_cmd *c, int64_t v);
void vg_cmd_fmt(struct vg_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queue the command on st->ctx (redisAppendCommandArgv) and reset `c` for the next one. */
void vg_cmd_append(struct vg_state *st, struct vg_cmd *c);
void vg_cmd_fini(struct vg_cmd *c);

/* Keys under the prefix; each returns a new heap string. */
char *vg_state_key(const struct vg_state *st, const char *suffix);
/* "P:<kind>:{ID}": kind "res" or "hist". */
char *vg_state_key_res(const struct vg_state *st, const char *kind, const char *id);

/*
 * Issue 5, queued inside vg_state_commit's MULTI (each returns the number
 * of commands queued): a grouped page into its buffer plus the group
 * timer (state_timers.c), incident records (state_incidents.c), timer
 * changes (state_timers.c).
 */
size_t vg_state_append_group_page(struct vg_state *st, struct vg_cmd *c, const struct vg_page *pg);
size_t vg_state_append_incidents(struct vg_state *st, struct vg_cmd *c,
                                 const struct vg_incident_record *v, size_t n);
size_t vg_state_append_timers(struct vg_state *st, struct vg_cmd *c, const struct vg_timer *v,
                              size_t n);
/* "P:timers:<topic>/<partition>", or "P:timers:groups" when topic is NULL. */
char *vg_state_timer_key(const struct vg_state *st, const char *topic, int32_t partition);

#endif
