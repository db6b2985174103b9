/*
 * Private to state/: a Redis Cluster client on hiredis 0.14 (which has no
 * cluster support): the slot map from CLUSTER SLOTS, CRC16 key slots, one
 * lazily connected hiredis context per node, and commands, read pipelines
 * and single-slot MULTI/EXEC transactions routed to a slot's primary with
 * MOVED, ASK, TRYAGAIN, CLUSTERDOWN and lost nodes handled within a
 * deadline (docs/redis-cluster.md). Nothing here knows about vigil's keys.
 */
#ifndef VIGIL_STATE_CLUSTER_H
#define VIGIL_STATE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "state_int.h"
#include "vigil/mem.h"

#define STATE_CLUSTER_SLOTS 16384
/* How long one call keeps retrying redirections, a cluster that is down and lost nodes
 * before it gives up with VG_ERR_BACKEND: above a failover with the default
 * cluster-node-timeout (15 s) plus an election. */
#define STATE_CLUSTER_DEADLINE_MS 20000
#define STATE_CLUSTER_BACKOFF_MIN_MS 10
#define STATE_CLUSTER_BACKOFF_MAX_MS 500

/* What the client met, counted since state_cluster_new (for tests and, later, /metrics). */
struct state_cluster_stats {
    uint64_t moved;       /* -MOVED replies followed */
    uint64_t ask;         /* -ASK replies met (followed by single commands and reads) */
    uint64_t tryagain;    /* -TRYAGAIN replies (multi-key operation during a migration) */
    uint64_t clusterdown; /* -CLUSTERDOWN replies, or slots without an owner in the map */
    uint64_t conn_errors; /* connections to a node that failed (connect, write or read) */
    uint64_t refreshes;   /* slot maps loaded with CLUSTER SLOTS */
    uint64_t tx_retries;  /* transactions sent again whole after they were refused unapplied */
};

/* One cluster node: its address and, once used, its connection. */
struct state_cluster_node {
    char *addr; /* "host:port", also its name in messages (never a password) */
    /* The connection, through state_redis.c's open/read/translate: only ctx,
     * url and redacted are used. */
    struct vg_state conn;
};

/* The client. One thread uses it (like struct vg_state). */
struct state_cluster {
    struct state_url seed; /* the configured URL: host, port, user, password */
    char seed_redacted[STATE_URL_REDACTED_MAX];
    struct state_cluster_node *nodes; /* every node seen in a map or a redirection */
    size_t n_nodes;
    size_t cap_nodes;
    uint16_t slots[STATE_CLUSTER_SLOTS]; /* slot -> index in nodes (its primary), or NO_NODE */
    bool map_stale;                      /* a redirection or failure said the map is old */
    int64_t refreshed_ms;                /* vg_mono_ms of the last CLUSTER SLOTS */
    int deadline_ms;                     /* per call; STATE_CLUSTER_DEADLINE_MS by default */
    struct state_cluster_stats stats;
};
#define STATE_CLUSTER_NO_NODE UINT16_MAX

/*
 * Connect to the cluster that `url` ("redis://[user:pass@]host:port", db 0)
 * names one node of, and load the slot map from it. The user and password
 * are used on every node. Returns VG_OK; VG_ERR_INVALID for a bad URL, a
 * db other than 0, a unix socket, or a node that is not in cluster mode;
 * VG_ERR_BACKEND when the node cannot be reached or has no complete map.
 */
vg_err_t state_cluster_new(struct state_cluster **out, const char *url, char *errstr,
                           size_t errstr_size);
/* Close every connection and free. Accepts NULL. */
void state_cluster_destroy(struct state_cluster *cl);

/* The cluster slot of a key: CRC16-XMODEM mod 16384 of its hash tag ({...}) or the whole key. */
uint16_t state_cluster_keyslot(const char *key, size_t len);

/* Load the slot map again (CLUSTER SLOTS from any node that answers). */
vg_err_t state_cluster_refresh(struct state_cluster *cl, char *errstr, size_t errstr_size);

/* Commands to send together, in RESP; each command is kept apart to resend it alone. */
struct state_cluster_batch {
    struct vg_buf resp;
    size_t *ends; /* ends[i]: end of command i in resp (command i starts at ends[i-1] or 0) */
    size_t n;
    size_t cap;
};
void state_cluster_batch_add(struct state_cluster_batch *b, int argc, const char *const *argv,
                             const size_t *argvlen);
/* Add the command built in `c` (state_int.h's builder) and reset `c`. */
void state_cluster_batch_add_cmd(struct state_cluster_batch *b, struct state_cmd *c);
void state_cluster_batch_reset(struct state_cluster_batch *b);
void state_cluster_batch_fini(struct state_cluster_batch *b);

/* What may be done again when a command's outcome is not known (docs/redis-cluster.md). */
enum state_cluster_mode {
    /* Reads, or writes that set a value: sent again after a lost connection. */
    STATE_CLUSTER_IDEMPOTENT,
    /* Sent again only when it is known not to have run (a redirection, a failed
     * write); once written and its reply lost: VG_ERR_BACKEND, outcome unknown. */
    STATE_CLUSTER_ONCE,
    /* The batch is MULTI, commands, EXEC on one slot: sent whole, to the primary
     * only; sent again whole when it was refused unapplied (a redirection or
     * TRYAGAIN/CLUSTERDOWN made EXEC abort); a reply lost after EXEC was written
     * is VG_ERR_BACKEND, outcome unknown. */
    STATE_CLUSTER_TX,
};

/*
 * Send the batch's `b->n` commands, whose keys are all in `slot`, to the
 * slot's primary in one write and read their replies into `replies`
 * (b->n entries), following MOVED and ASK (except in a transaction, see
 * `mode`), retrying TRYAGAIN, CLUSTERDOWN and lost connections with
 * backoff until the client's deadline. Outside a transaction a redirected
 * command is resent on its own, after the rest: a pipeline whose order
 * matters belongs in a transaction.
 *
 * Returns VG_OK with every reply filled and owned by the caller
 * (state_replies_free); server error replies other than the cluster's are
 * handed back as replies to judge (in a transaction: inside EXEC's array;
 * a queueing error is judged here). Otherwise no reply is left allocated:
 * VG_ERR_BACKEND (deadline passed, or outcome unknown: errstr says which),
 * VG_ERR_INVALID (a queueing error such as a wrong argument count).
 */
vg_err_t state_cluster_pipeline(struct state_cluster *cl, uint16_t slot,
                                const struct state_cluster_batch *b, enum state_cluster_mode mode,
                                redisReply **replies, char *errstr, size_t errstr_size);

/*
 * One command on `slot`, as state_cluster_pipeline (mode IDEMPOTENT or
 * ONCE), but a server error reply is judged here like state_run does:
 * its class is returned and errstr names `argv[0]` and the node.
 * On VG_OK *reply (when `reply` is non-NULL) is the caller's.
 */
vg_err_t state_cluster_run(struct state_cluster *cl, uint16_t slot, enum state_cluster_mode mode,
                           int argc, const char *const *argv, const size_t *argvlen,
                           redisReply **reply, char *errstr, size_t errstr_size);

/*
 * Call fn(arg, slot) once per primary of the current map, with the first
 * slot it owns, so that fn's commands (state_cluster_run with that slot)
 * reach that primary. A snapshot: if slots move meanwhile, fn's commands
 * follow them and a primary may be seen twice or not at all; a read that
 * must be complete reads by slot. Stops at fn's first error and returns it.
 */
vg_err_t state_cluster_each_primary(struct state_cluster *cl,
                                    vg_err_t (*fn)(void *arg, uint16_t slot, const char *addr),
                                    void *arg, char *errstr, size_t errstr_size);

#endif
