/*
 * State in Redis (hiredis lives only in state/): the current state of each
 * Resource and its history, applied Kafka offsets, the notification outbox
 * with its dead letters and audit trail, durable timers and group buffers,
 * incident records, silences, and the private redis-server child used by
 * the embedded default and the tests. Sections below follow those topics;
 * each names the keys it adds.
 *
 * Core key layout under the configured prefix P (docs/state.md):
 *   P:res:{ID}       hash: identity, status, runtime, health, since-times,
 *                    message, position, and one field "inc:<monitor>" per
 *                    open incident (JSON)
 *   P:hist:{ID}      stream of transitions (MAXLEN ~ 1000)
 *   P:idx:all        set of every Resource id
 *   P:idx:type:<t>   set of Resource ids by type; P:idx:ws:<w> by workspace
 *   P:idx:name       sorted set, all scores 0, members "<name>\0<id>": name
 *                    search by glob reads this index, never the keyspace
 *   P:offsets        hash "topic/partition" -> last applied offset
 *   P:offsets:cluster hash "topic/partition" -> Kafka cluster id the
 *                    applied offset belongs to (offsets that start again
 *                    on another cluster are noticed, docs/state.md)
 *   P:epoch:{<topic>/<partition>}  string counter: the partition's fencing
 *                    token, bumped by every claim (docs/state.md "Fencing")
 *   P:outbox         stream of pages (fields: id, sink, pager, body)
 *   P:outbox:dead    stream of pages given up on (fields + reason)
 *
 * A struct vg_state is one Redis connection plus a cache of Resources;
 * it belongs to one thread.
 *
 * hiredis writes with plain write(2): a Redis that went away raises
 * SIGPIPE, so the process must ignore SIGPIPE (vg_engine_run does; tests
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
vg_err_t vg_state_connect(struct vg_state **stp, const char *url, const char *prefix, char *errstr,
                          size_t errstr_size);
/*
 * vg_state_connect with the redis section's options (`rc`: cluster,
 * wait_replicas, wait_timeout_ms, tag; borrowed, only read here; NULL:
 * one Redis, no WAIT). `prefix` is the key prefix, which may differ from
 * rc->prefix (`vigil replay` writes under <prefix>:replay:<ts>).
 *
 * With rc->cluster, `url` names any node of a Redis Cluster: the slot map
 * is loaded from it, and the connection goes to the primary that owns the
 * slot of the hash tag. Every key then carries that one tag, the
 * configured prefix (rc->tag, else rc->prefix): "{vigil}:res:{ID}", and a
 * prefix that extends it keeps it ("{vigil}:replay:<ts>:res:{ID}"), so
 * all of vigil's keys are in one slot (docs/redis-cluster.md). A MOVED,
 * ASK, TRYAGAIN or CLUSTERDOWN reply is VG_ERR_BACKEND like a lost
 * connection; vg_state_reconnect then loads the slot map again and
 * connects to the slot's current primary.
 *
 * With rc->wait_replicas > 0, vg_state_commit waits until that many
 * replicas have the batch (WAIT, at most rc->wait_timeout_ms), else it
 * returns VG_ERR_BACKEND.
 */
struct vg_redis_config;
vg_err_t vg_state_connect_config(struct vg_state **stp, const char *url, const char *prefix,
                                 const struct vg_redis_config *rc, char *errstr,
                                 size_t errstr_size);
void vg_state_destroy(struct vg_state *st);
/* Reconnect after a VG_ERR_BACKEND; keeps the cache. On a cluster: to the slot's current
 * primary, after loading the slot map again. */
vg_err_t vg_state_reconnect(struct vg_state *st, char *errstr, size_t errstr_size);
/* Readiness: PING; on a cluster EXISTS of a key in the prefix's slot, so a node that no longer
 * serves the slot (MOVED/ASK) is VG_ERR_BACKEND until vg_state_reconnect. */
vg_err_t vg_state_ping(struct vg_state *st);

/*
 * Resolve the Resource for each of `n` events into `out[i]`: from the
 * cache, else from Redis (all misses in one pipelined round trip), else a
 * new Resource built from the event's identity. Pointers are owned by the
 * cache and valid until the cache drops them (vg_state_cache_clear,
 * _drop_partitions, _trim) or the next vg_state_resolve. Events with the
 * same id get the same pointer.
 *
 * The cache remembers for which Kafka partitions (ev->pos) it lent each
 * Resource since loading it. A cached Resource never lent for this
 * event's partition is read again (another instance may have written it
 * through that partition), unless it has changes not yet committed.
 * Events without a position (pos.topic NULL) take what is cached.
 */
vg_err_t vg_state_resolve(struct vg_state *st, const struct vg_event *evs, size_t n,
                          struct vg_resource **out, char *errstr, size_t errstr_size);
/* Drop every cached Resource (after a failed commit or a reconnect). */
void vg_state_cache_clear(struct vg_state *st);
/*
 * A rebalance moved partitions (topics[i], partitions[i]), i < n: drop
 * every cached Resource lent for one of them since it was loaded, and
 * every one loaded without a partition (vg_state_resolve_ids, for
 * timers); the rest stay. Returns how many were dropped. Call between
 * batches: the pointers of the dropped ones are invalid after.
 */
size_t vg_state_cache_drop_partitions(struct vg_state *st, const char *const *topics,
                                      const int32_t *partitions, size_t n);
/*
 * Bound the cache to `max_resources` (0: no bound, the default). Trimming
 * happens only in vg_state_cache_trim, so pointers lent by a resolve stay
 * valid until the caller trims.
 */
void vg_state_cache_limit(struct vg_state *st, size_t max_resources);
/*
 * Over the bound: drop the least recently resolved Resources that are not
 * dirty, down to 7/8 of it. Call between batches (after the commit).
 * Returns how many were dropped.
 */
size_t vg_state_cache_trim(struct vg_state *st);

struct vg_offset {
    const char *topic;
    int32_t partition;
    int64_t offset; /* last applied */
};

/*
 * A history entry of Resource `id` that is not a transition, in
 * P:hist:{ID} (docs/events.md): a late event (`late`: field/from/to plus
 * late=1, reason and pod when known) or a Kubernetes Event's log line
 * (!late: no field; at, message, reason, count, type, pod, namespace).
 * Written just before trans[before_trans] (n_trans: after all), so history
 * keeps Kafka order. All borrowed.
 */
struct vg_history_note {
    const char *id;
    const struct vg_event *ev;
    size_t before_trans;
    bool late;
    enum vg_field field;
    char from[VG_VALUE_MAX];
    char to[VG_VALUE_MAX];
    char reason[VG_REASON_MAX];
};

/*
 * Pod `ns`/`pod` belongs to Resource `id`: SET P:pod:<ns>/<pod> ID,
 * so that Kubernetes Events (which name only the pod) find their Resource.
 * A deleted pod's link expires after VG_POD_LINK_TTL_S (late Events still map).
 */
#define VG_POD_LINK_TTL_S 3600
struct vg_pod_link {
    const char *ns;
    const char *pod;
    const char *id;
    bool deleted;
};

/*
 * The Resource ids of `n` pods (ns[i]/pods[i]) in one round trip: out[i]
 * is a heap string, or NULL when vigil never saw the pod (or its link
 * expired). Caller frees each. Thread: st's.
 */
vg_err_t vg_state_pod_lookup(struct vg_state *st, const char *const *ns, const char *const *pods,
                             size_t n, char **out, char *errstr, size_t errstr_size);

/*
 * A partition's fencing token as the writer claimed it
 * (vg_state_partition_claim): a commit carrying it is written only while
 * P:epoch:{<topic>/<partition>} still holds `epoch`.
 */
struct vg_fence {
    const char *topic;
    int32_t partition;
    int64_t epoch;
};

/*
 * Layouts (docs/state.md "Layouts"). With redis.layout `single` every key is
 * under the prefix and the functions below do nothing. With `partitioned`
 * every key a commit writes (a Resource's hash and history, the indexes, the
 * applied offsets and epoch, pod links, the outbox, timers, group buffers,
 * incidents) lives in its Kafka partition's scope,
 * "<prefix>:{<topic>/<partition>}:...": one hash tag, so one slot on a
 * Redis Cluster. The global scope keeps what is not a partition's (silences,
 * the registry of partitions "P:parts"). `st` works in one scope at a time:
 * every key it builds is the scope's, and on a cluster its connection goes
 * to the primary of the scope's slot.
 */
bool vg_state_partitioned(const struct vg_state *st);
/*
 * Work in (topic, partition)'s scope, or with topic NULL the global one.
 * Cheap when unchanged. vg_state_partition_claim enters the partition's
 * scope itself (and records the partition in the registry); a commit is
 * written in the scope st is in, so it must hold that partition's writes
 * only. VG_ERR_BACKEND: no route to the slot (reconnect and retry).
 */
vg_err_t vg_state_scope(struct vg_state *st, const char *topic, int32_t partition, char *errstr,
                        size_t errstr_size);
/* "<topic>/<partition>" of the scope now, or NULL (global, or the single layout). */
const char *vg_state_scope_now(const struct vg_state *st);
/*
 * vg_state_scope by name: `scope` as vg_state_scope_now and the outbox's
 * entries give it ("<topic>/<partition>"), NULL the global scope. Does
 * nothing with the single layout. VG_ERR_INVALID: not such a name.
 */
vg_err_t vg_state_scope_set(struct vg_state *st, const char *scope, char *errstr,
                            size_t errstr_size);
/*
 * Every partition ever claimed (P:parts), sorted by topic then partition;
 * offset is -1. Readers go through these scopes in turn. Empty with the
 * single layout. Free with vg_state_scopes_free.
 */
vg_err_t vg_state_scopes(struct vg_state *st, struct vg_offset **out, size_t *n, char *errstr,
                         size_t errstr_size);
void vg_state_scopes_free(struct vg_offset *v, size_t n);

/* What one batch changes, written in one MULTI/EXEC round trip. All borrowed. */
struct vg_commit {
    struct vg_resource **res; /* dirty Resources: what changed is written, then marked clean */
    size_t n_res;
    const struct vg_transition *trans; /* for history */
    size_t n_trans;
    const struct vg_page *pages; /* appended to the outbox */
    size_t n_pages;
    const struct vg_offset *offsets;
    size_t n_offsets;
    /*
     * The Kafka cluster id to record with offsets[i] (P:offsets:cluster),
     * parallel to `offsets`; NULL (or a NULL entry): leave it as is.
     */
    const char *const *offset_clusters;
    /*
     * Rules: timer changes (ZADD/ZREM, in order, after everything
     * else), incident records (SET P:incident:<id>, the indexes and the
     * firing counts, one script per record; ended ones expire after
     * VG_INCIDENT_RETENTION_MS). Pages with
     * page->group set go to their group buffer (HSET P:grp:... + ZADD NX of
     * the group timer) instead of the outbox.
     */
    const struct vg_timer *timers;
    size_t n_timers;
    const struct vg_incident_record *incidents;
    size_t n_incidents;
    /* History entries that are not transitions, and pod -> Resource links. */
    const struct vg_history_note *notes;
    size_t n_notes;
    const struct vg_pod_link *pod_links;
    size_t n_pod_links;
    /*
     * The claims this commit was built on: one per partition whose
     * offsets, Resources, timers or incidents it writes. Checked before
     * MULTI (WATCH + MGET) and held through EXEC by the WATCH.
     */
    const struct vg_fence *fences;
    size_t n_fences;
    /* Out, may be NULL: on VG_ERR_CONFLICT, the index in `fences` of a partition taken. */
    size_t *fence_lost;
};

/*
 * Write `c` atomically. VG_OK: everything is in Redis. VG_ERR_BACKEND:
 * nothing was applied (the cache must be cleared and the batch retried).
 * VG_ERR_CONFLICT: a fence no longer holds (another instance claimed the
 * partition since; errstr names it and both epochs): nothing was
 * applied, claim again before retrying. (VG_ERR_INVALID: a command inside
 * EXEC failed, e.g. WRONGTYPE because a foreign key sits under our
 * prefix; the rest did run. Fix the prefix.)
 * With fences, one more round trip before MULTI (WATCH + MGET). A commit
 * with nothing dirty and no transitions, pages or offsets makes no round
 * trip.
 */
vg_err_t vg_state_commit(struct vg_state *st, const struct vg_commit *c, char *errstr,
                         size_t errstr_size);

/*
 * vg_state_commit in two halves, so the caller can work while Redis runs
 * the transaction: _send does the fence check's round trip and writes
 * MULTI..EXEC (and WAIT) without reading the replies (a commit in
 * flight); _finish judges the replies of the OLDEST commit in flight, with
 * the same results and errstr as vg_state_commit, and marks its Resources
 * clean (or to be written whole). Every _send that returns VG_OK is
 * matched by one _finish, in order; an error from _send: that commit is
 * not in flight (no _finish for it). A commit with nothing to write sends
 * nothing and its _finish is VG_OK.
 *
 * Several commits may be in flight at once (the partitioned layout's
 * parts of a batch, each in its scope): st may be used meanwhile, and
 * every read on a connection first reads the replies of the commits in
 * flight on it, keeping their verdicts for _finish. What _finish needs is
 * copied at _send (the dirty Resources, the fences), so `c`'s arrays may
 * be reused once _send returns; the Resources themselves must stay alive
 * and untouched until their _finish, and `c->fence_lost` must stay valid.
 * A connection lost or closed fails every commit in flight on it
 * (VG_ERR_BACKEND, "connection lost with the commit in flight").
 */
vg_err_t vg_state_commit_send(struct vg_state *st, const struct vg_commit *c, char *errstr,
                              size_t errstr_size);
vg_err_t vg_state_commit_finish(struct vg_state *st, char *errstr, size_t errstr_size);

/*
 * Fences checked ahead (docs/state.md "Fences checked ahead"): in the scope
 * now, on its commit lane (redis.commit_connections), UNWATCH, WATCH the
 * epochs of `fences` and MGET them, written and not read: an entry in the
 * FIFO of commits in flight whose verdict a drain keeps. The next
 * vg_state_commit_send on that lane with the same fences takes it instead
 * of a round trip of its own (a moved epoch: VG_ERR_CONFLICT as usual).
 * Between the two nothing may claim these partitions or run MULTI/EXEC on
 * the lane. `fences` is copied. Nothing to send (n 0): VG_OK.
 */
vg_err_t vg_state_fence_ahead(struct vg_state *st, const struct vg_fence *fences, size_t n,
                              char *errstr, size_t errstr_size);
/*
 * Forget the fences sent ahead that no commit took (UNWATCH on their
 * lanes). With `head_only`, only those before the oldest commit in flight
 * (vg_state_commit_finish does this); else all: once every commit in
 * flight is finished, nothing is left in flight.
 */
void vg_state_fences_ahead_drop(struct vg_state *st, bool head_only);
/*
 * Commit lanes (docs/state.md "Commit lanes"): with the partitioned layout,
 * `n` connections per Redis node (redis.commit_connections, at most
 * VG_STATE_MAX_COMMIT_LANES), a partition's scope on lane partition % n, the
 * global scope on lane 0. Only the pipeline's state asks for them (the
 * engine, right after connecting): every other vg_state (the dispatcher's,
 * the API's, the CLI's) keeps one connection per node, whatever it walks.
 * With the single layout, or n <= 1: one lane. Call before entering a
 * partition's scope, with nothing in flight (asserted).
 */
#define VG_STATE_MAX_COMMIT_LANES 64
void vg_state_commit_lanes_set(struct vg_state *st, unsigned n);
/* The commit lanes per node (vg_state_commit_lanes_set; 1 unless set): a partition's scope
 * commits on lane partition % this. */
unsigned vg_state_commit_lanes(const struct vg_state *st);

/*
 * Last applied offset of topic/partition into *out (-1 when none), read
 * only (the CLI, the tests). The pipeline claims instead. With the
 * partitioned layout read in the partition's scope; st returns to the
 * scope it was in.
 */
vg_err_t vg_state_applied_offset(struct vg_state *st, const char *topic, int32_t partition,
                                 int64_t *out, char *errstr, size_t errstr_size);
/*
 * Take topic/partition for writing: INCR its fencing token
 * P:epoch:{<topic>/<partition>} into *epoch (1 on a Redis that never saw
 * one) and then, in the same pipelined round trip, read its applied
 * offset (*offset, -1 when none) and the Kafka cluster id recorded with
 * it (*cluster: heap string, caller frees; NULL when none). A commit of
 * an earlier claim (another instance's) either landed before this read
 * or is refused (VG_ERR_CONFLICT). Thread: st's.
 */
vg_err_t vg_state_partition_claim(struct vg_state *st, const char *topic, int32_t partition,
                                  int64_t *epoch, int64_t *offset, char **cluster, char *errstr,
                                  size_t errstr_size);

/*
 * Read side (vigil get). With redis.layout partitioned the readers here and
 * the incident readers below (and vg_state_resolve_ids with st in the global
 * scope) go through every scope of vg_state_scopes and merge: one Resource
 * per id, the most recently updated when an id is in several scopes;
 * incidents newest first across scopes. They leave st in the scope they
 * found it in. Silences are always the global scope's.
 */
struct vg_state_filter {
    const char *type;      /* NULL: any */
    const char *workspace; /* NULL: any */
    const char *name_glob; /* NULL: any */
    const char *owner;     /* NULL: any */
};
/* All matching Resources sorted by name then id; caller frees with vg_resources_free. */
vg_err_t vg_state_list(struct vg_state *st, const struct vg_state_filter *f,
                       struct vg_resource ***out, size_t *n_out, char *errstr, size_t errstr_size);
/* One Resource by id; *out NULL when unknown. Caller destroys. */
vg_err_t vg_state_get(struct vg_state *st, const char *id, struct vg_resource **out, char *errstr,
                      size_t errstr_size);
void vg_resources_free(struct vg_resource **v, size_t n);

/*
 * One transition or log line of a Resource's history stream P:hist:{ID}
 * (state_history.c; a stream entry holds one or more). A transition has `field` ("status",
 * "runtime", "health"), `from` ("" when previously unknown) and `to`; an entry without a `field` (a
 * log line, e.g. an attached Kubernetes Event) has field, from and to NULL. Fields this vigil does
 * not know are kept, in stream order, as name/value pairs in `extra`.
 */
struct vg_history_entry {
    char *stream_id; /* "<ms>-<seq>": when Redis appended the entry holding it */
    char *field;     /* NULL for a log line */
    char *from;
    char *to;
    int64_t at_ms;           /* event time; 0 when absent */
    struct vg_kafka_pos pos; /* topic NULL, partition and offset -1 when absent */
    char *message;           /* NULL when none */
    char **extra;            /* name0, value0, name1, value1, ... */
    size_t n_extra;          /* number of pairs */
};
/*
 * The newest `max` entries of `id`'s history (all of them when max is 0),
 * oldest first: XREVRANGE P:hist:{ID} + - COUNT max, then reversed and
 * split into one vg_history_entry per transition. An
 * unknown id has an empty history (*n_out 0, *out NULL). An entry that is
 * not one of ours (odd field count, non-string values) is skipped with a
 * WARN. Caller frees with vg_history_free. Thread: st's.
 */
vg_err_t vg_state_history(struct vg_state *st, const char *id, size_t max,
                          struct vg_history_entry **out, size_t *n_out, char *errstr,
                          size_t errstr_size);
void vg_history_free(struct vg_history_entry *v, size_t n);

/* ---- Timers, group buffers, incidents, silences (state_timers.c,
 * state_incidents.c, state_silences.c; docs/state.md) ----
 *
 *   P:timers:<topic>/<partition>  sorted set: member = what to fire, score = due ms
 *   P:timers:groups               sorted set of group buffers to flush
 *   P:grp:<pager>|<sink>|<group>  hash: incident id -> single-form page body,
 *                                 plus "_labels" (JSON), "_pager" and "_sink"
 *   P:grp:idx:<pager>|<sink>|<group>  sorted set: the buffer's incident ids
 *                                 by vg_page_group_rank (firing, latest first)
 *   P:incident:<id>               string: the incident record (JSON)
 *   P:incidents                   sorted set: incident ids by updated_at
 *   P:incidents:firing            sorted set: firing incident ids by updated_at
 *   P:incidents:ended             sorted set: "<id> <Resource id>" of ended ones
 *   P:incidents:res:{ID}          sorted set: a Resource's incident ids by updated_at
 *   P:incidents:counts            hash: "<monitor>\0<severity>" -> firing incidents
 *   P:incidents:counted           hash: firing id -> its field in the counts
 *   P:incidents:indexed           string: the indexes and counts above are complete
 *   P:silences                    hash: silence id -> silence (JSON)
 *   P:silences:version            counter bumped on every silence change
 */
#define VG_INCIDENT_RETENTION_MS (7LL * 24 * 3600 * 1000)

/* One due timer of a partition (or topic NULL: a group buffer). Owns its strings. */
struct vg_due_timer {
    char *topic;
    int32_t partition;
    char *member;
    int64_t due_ms;
    /* redis.layout partitioned: the partition whose scope holds it; NULL with the
     * single layout, and for the group timers (global whatever the layout) */
    char *scope_topic;
    int32_t scope_partition;
};
void vg_due_timers_free(struct vg_due_timer *v, size_t n);

/*
 * The timers due at `now_ms` (score <= now) of each of `parts` (one
 * pipelined round trip), at most `max` per partition, earliest first;
 * `groups`: also the global group timers (one set whatever the layout,
 * listed last). With the partitioned layout each partition's timers are
 * read in its scope and the group timers in the global scope, whatever
 * scope st is in (one round trip per scope on a cluster; st returns to its
 * scope), and each partition's due timer names its scope. Caller frees.
 */
vg_err_t vg_state_timers_due(struct vg_state *st, const struct vg_offset *parts, size_t n_parts,
                             bool groups, int64_t now_ms, size_t max, struct vg_due_timer **out,
                             size_t *n_out, char *errstr, size_t errstr_size);
/* A group buffer as stored (P:grp:<member>). Owns its strings. */
struct vg_group_buffer {
    char *pager; /* NULL when the hash has none (not a buffer vigil wrote) */
    char *sink;
    struct vg_label *labels; /* "_labels", in group_by order */
    size_t n_labels;
    char **bodies; /* the latest single-form body of the listed incidents */
    size_t n_bodies;
    size_t n_firing; /* all incidents of the buffer by their latest page (0, 0: count bodies) */
    size_t n_ended;
};
void vg_group_buffer_fini(struct vg_group_buffer *b);

/*
 * Start flushing the group buffer named by group timer `member`: WATCH it
 * and read into *b its counts and the latest bodies of its `limit` (> 0)
 * highest ranked incidents (vg_page_group_rank), never the whole buffer
 * (no buffer: empty). A buffer with bodies its index does not name (written
 * by an older vigil) is read whole, with counts 0. On VG_OK vg_state_group_commit of the
 * same member must follow (the WATCH stays open until then).
 */
vg_err_t vg_state_group_read(struct vg_state *st, const char *member, size_t limit,
                             struct vg_group_buffer *b, char *errstr, size_t errstr_size);

/* The grouped page a flushed buffer sends (built by rules/: vg_rules_timers_fire). */
struct vg_group_page {
    const char *id; /* the outbox page id */
    const char *sink;
    const char *pager;
    const char *body;
};

/*
 * Finish the flush begun by vg_state_group_read, in one MULTI/EXEC: append
 * `gp` to the outbox (unless NULL), delete the buffer and its index, remove its timer.
 * *done = false (VG_OK) when another writer changed the buffer since the
 * read: nothing happened, a later round flushes it.
 */
vg_err_t vg_state_group_commit(struct vg_state *st, const char *member,
                               const struct vg_group_page *gp, bool *done, char *errstr,
                               size_t errstr_size);
/* ZADD (due_ms > 0, XX LT when `only_earlier`) or ZREM one timer, outside a batch (CLI). */
vg_err_t vg_state_timer_set(struct vg_state *st, const struct vg_timer *t, bool only_earlier,
                            char *errstr, size_t errstr_size);
/*
 * Resources by id, from the cache or (misses, one round trip) Redis, into
 * out[i] (NULL when unknown). Owned by the cache, as vg_state_resolve.
 */
vg_err_t vg_state_resolve_ids(struct vg_state *st, const char *const *ids, size_t n,
                              struct vg_resource **out, char *errstr, size_t errstr_size);

/* Incident records updated at or after `since_ms` (0: all kept), newest first. Caller frees. */
vg_err_t vg_state_incidents_list(struct vg_state *st, int64_t since_ms,
                                 struct vg_incident_record **out, size_t *n_out, char *errstr,
                                 size_t errstr_size);
/* One record; *found false when unknown. Caller finis `out` when found. */
vg_err_t vg_state_incident_get(struct vg_state *st, const char *id, struct vg_incident_record *out,
                               bool *found, char *errstr, size_t errstr_size);
void vg_incident_records_free(struct vg_incident_record *v, size_t n);

/* Which incident records a page holds (vg_state_incidents_page). Borrowed strings. */
struct vg_incident_query {
    /*
     * NULL or "all"; "firing"; "resolved" (every way of ending: resolved,
     * stale, deleted); or one state by name ("stale", "deleted", "pending").
     */
    const char *status;
    const char *resource; /* NULL: any Resource */
    int64_t since_ms;     /* only records updated at or after this; 0: any */
    size_t limit;         /* at most this many records; 0: all that match */
};

/*
 * The most recently updated records matching `q`, newest first, read from
 * the indexes (P:incidents, :firing, :ended, :res:{ID}) a chunk at a time:
 * the cost follows `limit`, not the number of incidents kept (a filter
 * no index answers, "stale" or "deleted", reads the ended index until the
 * page is full). Rebuilds the indexes first when P:incidents:indexed is
 * missing (vg_state_incidents_reindex). Caller frees with
 * vg_incident_records_free.
 */
vg_err_t vg_state_incidents_page(struct vg_state *st, const struct vg_incident_query *q,
                                 struct vg_incident_record **out, size_t *n_out, char *errstr,
                                 size_t errstr_size);

/* Firing incidents of one (monitor, severity). Owns its strings. */
struct vg_incident_count {
    char *monitor;
    char *severity;
    int64_t firing;
};
void vg_incident_counts_free(struct vg_incident_count *v, size_t n);

/*
 * The firing incidents by (monitor, severity), from P:incidents:counts,
 * which every commit that opens or ends an incident updates in its
 * MULTI/EXEC: one round trip whatever the number of incidents. Pairs with
 * nothing firing are left out. Rebuilds first when P:incidents:indexed is
 * missing. Caller frees with vg_incident_counts_free.
 */
vg_err_t vg_state_incidents_firing_counts(struct vg_state *st, struct vg_incident_count **out,
                                          size_t *n_out, char *errstr, size_t errstr_size);

/*
 * Rebuild the incident indexes and counts from the records listed in
 * P:incidents (data written by a vigil that kept no counts), atomically
 * (WATCH; retried when a commit got in between), then set
 * P:incidents:indexed. Logs one INFO line with the number of records.
 * *n_records (may be NULL): the records read. The readers above call it
 * when needed; exposed for tests and tools.
 */
vg_err_t vg_state_incidents_reindex(struct vg_state *st, size_t *n_records, char *errstr,
                                    size_t errstr_size);

/* Silences. add: s->id must be set (unique). */
vg_err_t vg_state_silence_add(struct vg_state *st, const struct vg_silence *s, char *errstr,
                              size_t errstr_size);
/* All silences (expired ones too, until cleaned up a day after they end), by start time. */
vg_err_t vg_state_silences_list(struct vg_state *st, struct vg_silence **out, size_t *n_out,
                                char *errstr, size_t errstr_size);
/* End silence `id` at `now_ms`; *found false when unknown. */
vg_err_t vg_state_silence_expire(struct vg_state *st, const char *id, int64_t now_ms, bool *found,
                                 char *errstr, size_t errstr_size);
/* The silence change counter (0 when never changed): reload silences only when it moved. */
vg_err_t vg_state_silences_version(struct vg_state *st, int64_t *out, char *errstr,
                                   size_t errstr_size);

/* Outbox, read by the dispatcher with its own vg_state (consumer group "dispatch"). */
struct vg_outbox_entry {
    char *stream_id; /* Redis stream entry id */
    char *id;        /* page id */
    char *sink;
    char *pager;
    char *body; /* webhook v1 JSON */
    size_t body_len;
    char *origin; /* the primary sink when this is a fallback copy, else NULL */
    /* The scope whose outbox holds it ("<topic>/<partition>"); NULL: the global scope
     * (always with the single layout). Finish it in that scope (vg_state_scope_set). */
    char *scope;
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
 *
 * With the partitioned layout every scope's outbox is read (the global
 * one and each registered partition's, the registry read again about once
 * a second) and each entry carries its scope. On one Redis new entries of
 * all streams come in one XREADGROUP (BLOCK as above); on a cluster each
 * stream is read without BLOCK and, when none had anything, the call
 * waits at most 10 ms instead of block_ms. A read may then return up to
 * 16 entries per stream more than `max`. Dead instances' entries are
 * claimed in a pass over the streams at most once a second. st is left
 * in any scope.
 */
vg_err_t vg_state_outbox_read(struct vg_state *st, const char *consumer, size_t max, int block_ms,
                              int64_t claim_idle_ms, struct vg_outbox_entry **out, size_t *n_out,
                              char *errstr, size_t errstr_size);
/* XACK and XDEL in one MULTI: P:outbox only holds what is not yet acknowledged.
 * This and the functions below up to vg_state_outbox_touch work on the outbox of the
 * scope st is in: enter the entries' scope first (vg_state_scope_set). */
vg_err_t vg_state_outbox_ack(struct vg_state *st, const char *stream_id, char *errstr,
                             size_t errstr_size);
/* Move to P:outbox:dead with `reason` and ack, atomically. */
vg_err_t vg_state_outbox_dead(struct vg_state *st, const struct vg_outbox_entry *e,
                              const char *reason, char *errstr, size_t errstr_size);
/* Entries not yet acknowledged (pending + never read): XLEN of P:outbox, since acks delete.
 * This and vg_state_dead_depth sum over every scope with the partitioned layout and leave st
 * in the scope they found it in. */
vg_err_t vg_state_outbox_backlog(struct vg_state *st, int64_t *out, char *errstr,
                                 size_t errstr_size);
/* For /metrics: entries in the dead-letter stream P:outbox:dead (XLEN). */
vg_err_t vg_state_dead_depth(struct vg_state *st, int64_t *out, char *errstr, size_t errstr_size);
void vg_outbox_entries_free(struct vg_outbox_entry *v, size_t n);

/*
 * The dispatcher's side of the outbox (state_outbox.c,
 * state_audit.c; docs/sinks.md). Keys:
 *   P:outbox:dead    fields id, sink, pager, body, reason, status,
 *                    response (truncated), attempts, failed_at (ms),
 *                    origin (fallback copies)
 *   P:audit:{INC}    stream: one entry per delivery attempt and outcome of
 *                    incident INC (MAXLEN ~ 200, expires 30 days after the last)
 *   P:notif:{KEY}    hash sink -> memo (Slack "CHANNEL TS"), same expiry
 */
struct vg_outbox_audit {
    const char *incident; /* the audit stream's incident id */
    const char *id;       /* notification id (the idempotency key) */
    const char *sink;
    int attempt;         /* 1, 2, ...; 0 for an outcome that made no request */
    const char *outcome; /* delivered, retry, dead, fallback, ... */
    long status;         /* HTTP status, 0 when none */
    int64_t latency_ms;
    const char *detail; /* may be NULL */
    int64_t at_ms;      /* wall clock */
};

/* How the dispatcher is done with one entry. All borrowed. */
struct vg_outbox_finish {
    const struct vg_outbox_entry *e;
    bool dead; /* given up: copied to P:outbox:dead with the fields below */
    const char *reason;
    long status;
    const char *response; /* may be NULL */
    int attempts;
    const char *fallback_sink; /* dead: also queue a copy for this sink (origin = e->sink) */
    const char *memo_key;      /* non-NULL: HSET P:notif:{memo_key} e->sink memo */
    const char *memo;
};
/*
 * One MULTI/EXEC: for each finish, [XADD dead] [XADD outbox fallback copy]
 * [HSET memo] XACK XDEL; then every audit record. VG_ERR_BACKEND: nothing
 * happened (retry the same call). Thread: st's.
 */
vg_err_t vg_state_outbox_commit(struct vg_state *st, const struct vg_outbox_finish *f, size_t n_f,
                                const struct vg_outbox_audit *a, size_t n_a, char *errstr,
                                size_t errstr_size);
/* out[i] = the memo of (keys[i], sinks[i]) or NULL; one round trip. Caller frees each. */
vg_err_t vg_state_outbox_memos(struct vg_state *st, const char *const *keys,
                               const char *const *sinks, size_t n, char **out, char *errstr,
                               size_t errstr_size);
/*
 * Entries pending for consumers other than `consumer` (at most 1000),
 * with id, sink and pager but no body: the dispatcher holds back a later
 * notice of the same incident while another instance still owns an
 * earlier one. Caller frees with vg_outbox_entries_free.
 */
vg_err_t vg_state_outbox_foreign(struct vg_state *st, const char *consumer,
                                 struct vg_outbox_entry **out, size_t *n_out, char *errstr,
                                 size_t errstr_size);
/*
 * Reset the idle time of entries `consumer` still works on (XCLAIM ...
 * JUSTID with min idle `min_idle_ms`), so no other instance claims a page
 * that is only waiting for its retry. kept[i] false: another consumer
 * took stream_ids[i] meanwhile (drop it).
 */
vg_err_t vg_state_outbox_touch(struct vg_state *st, const char *consumer, char *const *stream_ids,
                               size_t n, int64_t min_idle_ms, bool *kept, char *errstr,
                               size_t errstr_size);

/* The dead-letter stream (vigil dlq). */
struct vg_dead_entry {
    char *stream_id;
    char *id;
    char *sink;
    char *pager;
    char *reason;
    char *response;
    char *origin;
    char *body;
    size_t body_len;
    long status;
    int attempts;
    int64_t failed_at_ms;
    char *scope; /* the scope whose dead-letter stream holds it; NULL: the global one */
};
/*
 * Oldest first, at most `max`. Caller frees with vg_dead_entries_free.
 * With the partitioned layout this and retry/drop go through every scope
 * (the oldest of all of them first; an id found in several scopes acts
 * on each, a retry in the entry's own scope, atomically there) and leave
 * st in the scope they found it in.
 */
vg_err_t vg_state_dlq_list(struct vg_state *st, size_t max, struct vg_dead_entry **out,
                           size_t *n_out, char *errstr, size_t errstr_size);
/*
 * `id` is a dead-letter entry id ("1764324000000-0") or a notification id
 * (every dead entry with that id). Retry: back into P:outbox (the same
 * fields, so the same idempotency key) and out of the dead stream,
 * atomically. Drop: delete. *n_done: how many. VG_OK with 0: not found.
 */
vg_err_t vg_state_dlq_retry(struct vg_state *st, const char *id, size_t *n_done, char *errstr,
                            size_t errstr_size);
vg_err_t vg_state_dlq_drop(struct vg_state *st, const char *id, size_t *n_done, char *errstr,
                           size_t errstr_size);
void vg_dead_entries_free(struct vg_dead_entry *v, size_t n);

/* The notification history of one incident (vigil incidents show). */
struct vg_audit_record {
    char *stream_id;
    int64_t at_ms;
    char *id;
    char *sink;
    char *outcome;
    char *detail;
    int attempt;
    long status;
    int64_t latency_ms;
};
/* Oldest first, at most `max`. Caller frees with vg_audit_records_free. With the partitioned
 * layout: merged from every scope's stream of the incident; st is left as it was found. */
vg_err_t vg_state_audit_read(struct vg_state *st, const char *incident, size_t max,
                             struct vg_audit_record **out, size_t *n_out, char *errstr,
                             size_t errstr_size);
void vg_audit_records_free(struct vg_audit_record *v, size_t n);

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
/*
 * Replay (state_replay.c, `vigil replay`, docs/state.md "Replay and the
 * swap"). These work on any prefix through st's connection (st's own
 * prefix is not used unless said). Thread: st's.
 *
 * Move every key "<from>:<rest>" to "<to>:<rest>" with RENAME, in
 * pipelined SCAN pages of 500, leaving keys that start with one of `skip`
 * (full key prefixes, NULL-terminated; may be NULL) where they are. A
 * target key that exists is overwritten. *moved counts the keys moved.
 */
vg_err_t vg_state_move_prefix(struct vg_state *st, const char *from, const char *to,
                              const char *const *skip, long long *moved, char *errstr,
                              size_t errstr_size);
/* Delete every key "<prefix>:..." (SCAN + UNLINK); *deleted counts them. */
vg_err_t vg_state_delete_prefix(struct vg_state *st, const char *prefix, long long *deleted,
                                char *errstr, size_t errstr_size);
/*
 * Delete the pages waiting under st's prefix so that no later run sends
 * them: P:outbox, P:outbox:dead, the group buffers P:grp:* and
 * P:timers:groups. *dropped: outbox entries plus group buffers.
 */
vg_err_t vg_state_drop_pages(struct vg_state *st, long long *dropped, char *errstr,
                             size_t errstr_size);
/* What a replay summary counts under st's prefix. */
struct vg_state_replay_counts {
    long long resources; /* SCARD P:idx:all */
    long long firing;    /* ZCARD P:incidents:firing */
    long long outbox;    /* XLEN P:outbox: pages not delivered */
};
vg_err_t vg_state_replay_counts(struct vg_state *st, struct vg_state_replay_counts *out,
                                char *errstr, size_t errstr_size);

struct vg_redis_child;
vg_err_t vg_redis_child_start(struct vg_redis_child **out, const char *dir, char *errstr,
                              size_t errstr_size);
/*
 * Options of vg_redis_child_start_opts (vg_redis_child_start is this with
 * every option zero).
 */
struct vg_redis_child_opts {
    /* requirepass: clients must AUTH. The child's URL then carries it as
     * "unix:///abs/dir/redis.sock?password=..." (readiness PING AUTHs too). */
    const char *password;
    /* Also listen on 127.0.0.1:tcp_port (bind 127.0.0.1 only); 0: unix socket only. */
    int tcp_port;
    /*
     * How long a start or restart waits for the first PONG; 0: 10 s. While
     * the server answers LOADING (replaying its AOF) it is waited for
     * (up to 30 min), this timeout counting from its last such answer.
     */
    int ready_timeout_ms;
};
vg_err_t vg_redis_child_start_opts(struct vg_redis_child **out, const char *dir,
                                   const struct vg_redis_child_opts *opts, char *errstr,
                                   size_t errstr_size);
/* "unix:///abs/dir/redis.sock" (with "?password=..." when one was set) */
const char *vg_redis_child_url(const struct vg_redis_child *rc);
/* The child's pid; -1 while it is not running (after it exited or a restart failed). */
int vg_redis_child_pid(const struct vg_redis_child *rc);
/*
 * Whether the child is no longer running, without blocking: true when it
 * exited since the last call (reaped here; `how` then says how, e.g.
 * "killed by signal 9" or "exit status 1") or no process runs since a
 * failed restart ("not running"). False while it runs.
 * Thread: one at a time per `rc` (the owner, or the thread supervising it).
 */
bool vg_redis_child_exited(struct vg_redis_child *rc, char *how, size_t how_size);
/*
 * Start the child again after vg_redis_child_exited said it is gone: same
 * directory, socket, options and AOF (the state comes back), ready when
 * this returns VG_OK. The directory is never created here: one removed
 * while vigil ran held the state, and an empty one would silently start
 * over (VG_ERR_IO "redis data dir DIR: No such file or directory").
 * Otherwise the errors of vg_redis_child_start; on failure no process is
 * left and it may be called again. The new child gets SIGTERM when the
 * calling thread exits (PR_SET_PDEATHSIG): a supervising thread must stop
 * only once the child is no longer wanted.
 */
vg_err_t vg_redis_child_restart(struct vg_redis_child *rc, char *errstr, size_t errstr_size);
/* SIGTERM, wait (up to 5 s, then SIGKILL). Accepts NULL. */
void vg_redis_child_stop(struct vg_redis_child *rc);

#endif
