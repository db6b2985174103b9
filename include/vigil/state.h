/*
 * State in Redis (hiredis lives only in state/): the current state of each
 * Resource, applied Kafka offsets, the notification outbox, and the
 * private redis-server child used by the embedded default and the tests.
 *
 * Key layout under the configured prefix P (docs/state.md):
 *   P:res:{ID}       hash: identity, status, runtime, health, since-times,
 *                    message, position, and one field "inc:<monitor>" per
 *                    open incident (JSON)
 *   P:hist:{ID}      stream of transitions (MAXLEN ~ 1000)
 *   P:idx:all        set of every Resource id
 *   P:idx:type:<t>   set of Resource ids by type; P:idx:ws:<w> by workspace
 *   P:offsets        hash "topic/partition" -> last applied offset
 *   P:outbox         stream of pages (fields: id, sink, pager, body)
 *   P:outbox:dead    stream of pages given up on (fields + reason)
 *
 * A struct vg_state is one Redis connection plus a cache of Resources;
 * it belongs to one thread.
 *
 * hiredis writes with plain write(2): a Redis that went away raises
 * SIGPIPE, so the process must ignore SIGPIPE (cli/cmd_run.c does; tests
 * call signal(SIGPIPE, SIG_IGN)). After any VG_ERR_BACKEND from a NULL
 * reply the connection is closed and every call fails fast with
 * VG_ERR_BACKEND until vg_state_reconnect() succeeds. Timeouts: connect
 * 2 s, each command 10 s.
 */
#ifndef VIGIL_STATE_H
#define VIGIL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"
#include "vigil/event.h"
#include "vigil/page.h"

struct vg_state;

/*
 * Connect to `url` ("redis://[user:pass@]host:port[/db]", "unix:///path.sock[?db=N]").
 * (Also accepted: "unix:///path.sock?db=N&user=U&password=P", %XX-encoded
 * user/password in redis:// URLs. "rediss://" is VG_ERR_INVALID: hiredis
 * 0.14 has no TLS.) `prefix` NULL or "" means "vigil"; braces or
 * whitespace in it are VG_ERR_INVALID (they would break the hash tags).
 * A server error while authenticating or selecting the db (NOAUTH,
 * WRONGPASS, bad db) is VG_ERR_INVALID; LOADING and the like are
 * VG_ERR_BACKEND.
 * Returns VG_ERR_BACKEND when unreachable (errstr has the redacted URL and reason),
 * VG_ERR_INVALID for a malformed URL.
 */
vg_err_t vg_state_connect(struct vg_state **stp, const char *url, const char *prefix,
                          char *errstr, size_t errstr_size);
void vg_state_destroy(struct vg_state *st);
/* Reconnect after a VG_ERR_BACKEND; keeps the cache. */
vg_err_t vg_state_reconnect(struct vg_state *st, char *errstr, size_t errstr_size);
vg_err_t vg_state_ping(struct vg_state *st);

/*
 * Resolve the Resource for each of `n` events into `out[i]`: from the
 * cache, else from Redis (all misses in one pipelined round trip), else a
 * new Resource built from the event's identity. Pointers are owned by the
 * cache and valid until vg_state_cache_clear(). Events with the same id get
 * the same pointer.
 */
vg_err_t vg_state_resolve(struct vg_state *st, const struct vg_event *evs, size_t n,
                          struct vg_resource **out, char *errstr, size_t errstr_size);
/* Drop every cached Resource (on partition revoke/assign, or after a failed commit). */
void vg_state_cache_clear(struct vg_state *st);

struct vg_offset {
    const char *topic;
    int32_t partition;
    int64_t offset; /* last applied */
};

/* What one batch changes, written in one MULTI/EXEC round trip. All borrowed. */
struct vg_commit {
    struct vg_resource **res; /* dirty Resources: rewritten whole, then marked clean */
    size_t n_res;
    const struct vg_transition *trans; /* for history (issue 3) */
    size_t n_trans;
    const struct vg_page *pages; /* appended to the outbox */
    size_t n_pages;
    const struct vg_offset *offsets;
    size_t n_offsets;
};

/*
 * Write `c` atomically. VG_OK: everything is in Redis. VG_ERR_BACKEND:
 * nothing was applied (the cache must be cleared and the batch retried).
 * (VG_ERR_INVALID: a command inside EXEC failed, e.g. WRONGTYPE because a
 * foreign key sits under our prefix; the rest did run. Fix the prefix.)
 * A commit with nothing dirty and no transitions, pages or offsets makes
 * no round trip.
 */
vg_err_t vg_state_commit(struct vg_state *st, const struct vg_commit *c, char *errstr,
                         size_t errstr_size);

/* Last applied offset of topic/partition into *out (-1 when none). */
vg_err_t vg_state_applied_offset(struct vg_state *st, const char *topic, int32_t partition,
                                 int64_t *out, char *errstr, size_t errstr_size);

/* Read side (vigil get). */
struct vg_state_filter {
    const char *type;      /* NULL: any */
    const char *workspace; /* NULL: any */
    const char *name_glob; /* NULL: any */
    const char *owner;     /* NULL: any */
};
/* All matching Resources sorted by name then id; caller frees with vg_resources_free. */
vg_err_t vg_state_list(struct vg_state *st, const struct vg_state_filter *f,
                       struct vg_resource ***out, size_t *n_out, char *errstr,
                       size_t errstr_size);
/* One Resource by id; *out NULL when unknown. Caller destroys. */
vg_err_t vg_state_get(struct vg_state *st, const char *id, struct vg_resource **out,
                      char *errstr, size_t errstr_size);
void vg_resources_free(struct vg_resource **v, size_t n);

/* Outbox, read by the dispatcher with its own vg_state (consumer group "dispatch"). */
struct vg_outbox_entry {
    char *stream_id; /* Redis stream entry id */
    char *id;        /* page id */
    char *sink;
    char *pager;
    char *body;      /* webhook v1 JSON */
    size_t body_len;
};
/*
 * Read up to `max` entries for consumer `consumer`: first entries pending
 * for it (left by a previous run of the same consumer name) or idle
 * longer than `claim_idle_ms` for any consumer (XAUTOCLAIM), then new
 * ones, blocking up to `block_ms`. Caller frees with vg_outbox_entries_free.
 * (Own pending entries are handed out once per consumer name per vg_state,
 * and again after vg_state_reconnect; later, an entry left unacked comes
 * back through XAUTOCLAIM once idle for claim_idle_ms. claim_idle_ms < 0
 * disables claiming. block_ms <= 0 does not block; it only blocks when
 * nothing else was found. Entries deleted while pending are acked and
 * skipped.)
 */
vg_err_t vg_state_outbox_read(struct vg_state *st, const char *consumer, size_t max,
                              int block_ms, int64_t claim_idle_ms,
                              struct vg_outbox_entry **out, size_t *n_out, char *errstr,
                              size_t errstr_size);
/* XACK and XDEL in one MULTI: P:outbox only holds what is not yet acknowledged. */
vg_err_t vg_state_outbox_ack(struct vg_state *st, const char *stream_id, char *errstr,
                             size_t errstr_size);
/* Move to P:outbox:dead with `reason` and ack, atomically. */
vg_err_t vg_state_outbox_dead(struct vg_state *st, const struct vg_outbox_entry *e,
                              const char *reason, char *errstr, size_t errstr_size);
/* Entries not yet acknowledged (pending + never read): XLEN of P:outbox, since acks delete. */
vg_err_t vg_state_outbox_backlog(struct vg_state *st, int64_t *out, char *errstr,
                                 size_t errstr_size);
void vg_outbox_entries_free(struct vg_outbox_entry *v, size_t n);

/*
 * A private redis-server child on a unix socket in `dir` (created if
 * needed), with appendonly yes (state survives a crash), no RDB
 * snapshots, no TCP port. Ready (answers PING) when this returns VG_OK.
 * Errors: VG_ERR_IO when redis-server is not on PATH, another server
 * already answers on DIR/redis.sock, or the child exits early (errstr has
 * its exit status and the tail of DIR/redis.log); VG_ERR_TIMEOUT when not
 * ready within 10 s; VG_ERR_INVALID when DIR/redis.sock is too long for a
 * unix socket path. The child gets SIGTERM when the *thread* that called
 * this exits (PR_SET_PDEATHSIG): call it from the main thread.
 */
struct vg_redis_child;
vg_err_t vg_redis_child_start(struct vg_redis_child **out, const char *dir, char *errstr,
                              size_t errstr_size);
/* "unix:///abs/dir/redis.sock" */
const char *vg_redis_child_url(const struct vg_redis_child *rc);
int vg_redis_child_pid(const struct vg_redis_child *rc);
/* SIGTERM, wait (up to 5 s, then SIGKILL). Accepts NULL. */
void vg_redis_child_stop(struct vg_redis_child *rc);

#endif
