/*
 * A private redis-server with a vg_state on it, for the tests of state/
 * that drive it directly (no Kafka, no vigil): start and stop, a raw
 * hiredis connection to look at what was written, events built from a
 * few fields, and one event resolved, applied and committed.
 */
#ifndef VIGIL_TEST_STATE_REDIS_H
#define VIGIL_TEST_STATE_REDIS_H

#include <stdint.h>

#include "vigil/event.h"
#include "vigil/state.h"

struct redisContext;
struct vg_redis_config;

struct vg_test_redis {
    char *dir;
    struct vg_redis_child *rc;
    char *prefix;
    struct vg_state *st;      /* on `prefix`; NULL when started without one */
    struct redisContext *raw; /* the test's own hiredis connection */
};

/*
 * Start redis-server in a fresh directory named after `name`, open the raw
 * connection and, with `with_state`, a vg_state on `prefix` (NULL:
 * "<name>-<pid>"). 0, or -1 with the reason printed.
 */
int vg_test_redis_start(struct vg_test_redis *r, const char *name, const char *prefix,
                        bool with_state);
/* Close both connections, stop redis-server, remove the directory. */
void vg_test_redis_stop(struct vg_test_redis *r);
/*
 * A cmocka teardown (of a group or of a test) whose setup pointed *state at the fixture it
 * started: vg_test_redis_stop of it. Returns 0.
 */
int vg_test_redis_teardown(void **state);
/* The URL of the redis-server ("unix://DIR/redis.sock"). */
const char *vg_test_redis_url(const struct vg_test_redis *r);
/*
 * Move the fixture to a prefix of a test's own (a per-test setup): a new r->st on `prefix`
 * (heap, taken over) replaces r->st and r->prefix, which are destroyed and freed. 0, or -1
 * with the reason printed (r->st is NULL then).
 */
int vg_test_redis_use_prefix(struct vg_test_redis *r, char *prefix);
/*
 * Another vg_state on the redis-server (another instance, or this one restarted), on
 * `prefix` (NULL: the fixture's). NULL with the reason printed. vg_state_destroy frees it.
 */
struct vg_state *vg_test_redis_connect(const struct vg_test_redis *r, const char *prefix);
/*
 * vg_state_connect_config of `url` with `rc` (its layout, lanes, waits ...) on `prefix`: the
 * state, or NULL with the reason printed.
 */
struct vg_state *vg_test_state_connect_config(const char *url, const char *prefix,
                                              const struct vg_redis_config *rc);
/*
 * Run a command on the raw connection and check its reply's type (REDIS_REPLY_STATUS, ...):
 * 0, or -1 with the command and the reply printed.
 */
int vg_test_redis_expect(const struct vg_test_redis *r, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * With `on`, make the redis-server refuse every write while it is queued (maxmemory 1, no
 * eviction: VG_TEST_REDIS_OOM_TEXT); without, take writes again. 0, or -1 with the reason printed.
 */
int vg_test_redis_refuse_writes(const struct vg_test_redis *r, bool on);
#define VG_TEST_REDIS_OOM_TEXT "OOM command not allowed when used memory > 'maxmemory'."
#define VG_TEST_REDIS_WRONGTYPE_TEXT                                                               \
    "WRONGTYPE Operation against a key holding the wrong kind of value"
/*
 * Whether `errstr` is what state/ says of a refusal by this redis-server,
 * "redis <its URL, redacted>: <what>: <text>"; false with both printed.
 */
bool vg_test_redis_errstr_is(const struct vg_test_redis *r, const char *errstr, const char *what,
                             const char *text);
/* Calls of `cmd` (lower case: "hgetall") Redis has executed so far, all clients (INFO
 * commandstats); -1 when the reply cannot be read. */
long long vg_test_redis_calls(const struct vg_test_redis *r, const char *cmd);
/* A command on the raw connection read as a number (vg_test_reply_int, support.h). */
long long vg_test_redis_int(const struct vg_test_redis *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The health configuration of most state tests: workflow is the one batch type. */
extern const struct vg_health_config vg_test_hc_workflow;

/* An event's fields; NULL strings: version "v1", owner "", topic "vigil.events", others absent. */
struct vg_test_event {
    const char *type;
    const char *version;
    const char *name;
    const char *workspace;
    const char *owner;
    const char *status;
    const char *runtime;
    int64_t time_ms;
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *message;
};

/* Fill `ev` (vg_event_fini frees it) from `f`; its id is the Resource id of the fields. */
void vg_test_event_make(struct vg_event *ev, const struct vg_test_event *f);
/*
 * vg_test_event_make of what most state tests commit: workflow `name` in `workspace`, status
 * active, runtime `runtime`, at `offset` of topic/partition, event time `time_ms`.
 */
void vg_test_event_workflow(struct vg_event *ev, const char *name, const char *workspace,
                            const char *runtime, const char *topic, int32_t partition,
                            int64_t offset, int64_t time_ms);
/*
 * Resolve, apply (with `hc`) and commit one event with its offset, as the
 * consumer does for a batch of one. Returns what the failing call returned.
 */
vg_err_t vg_test_state_apply_one(struct vg_state *st, const struct vg_health_config *hc,
                                 const struct vg_event *ev, char *errstr, size_t errstr_size);
/*
 * The same under the fence of the event's partition at `epoch` (from
 * vg_state_partition_claim), recording the offset's Kafka cluster id
 * `cluster` (NULL: none); `lost` (may be NULL) is vg_commit.fence_lost.
 */
vg_err_t vg_test_state_apply_one_fenced(struct vg_state *st, const struct vg_health_config *hc,
                                        const struct vg_event *ev, int64_t epoch,
                                        const char *cluster, size_t *lost, char *errstr,
                                        size_t errstr_size);

/*
 * vg_state_partition_claim of topic/partition (which enters its scope in the
 * partitioned layout): the claim's epoch, the applied offset into *offset
 * (may be NULL; -1: none), or -1 with the reason printed.
 */
int64_t vg_test_state_claim(struct vg_state *st, const char *topic, int32_t partition,
                            int64_t *offset);
/*
 * One partition's commit of one event, built in the partition's scope as the
 * pipeline builds a part (vg_test_part_commit_build); cm points into it.
 */
struct vg_test_part_commit {
    struct vg_event ev;
    struct vg_resource *res;
    struct vg_transition trans[3];
    struct vg_offset off;
    struct vg_fence fence;
    size_t fence_lost;
    struct vg_commit cm;
};
/*
 * Enter the scope of f's topic/partition, resolve the event `f` describes, apply it with `hc`
 * and build the commit of it and its offset, fenced at `epoch` (0: no fence). false with the
 * reason printed. The event is pc->ev (vg_event_fini frees it).
 */
bool vg_test_part_commit_build(struct vg_state *st, const struct vg_health_config *hc,
                               struct vg_test_part_commit *pc, const struct vg_test_event *f,
                               int64_t epoch);
/*
 * vg_test_part_commit_build for workflow `name` in workspace "ws", active and running, at
 * `offset` of topic/partition with event time `time_ms`.
 */
bool vg_test_part_commit_workflow(struct vg_state *st, const struct vg_health_config *hc,
                                  struct vg_test_part_commit *pc, const char *topic,
                                  int32_t partition, int64_t offset, const char *name,
                                  int64_t time_ms, int64_t epoch);
/* vg_state_applied_offset of topic/partition: the offset, -1 for none, or -2 with the reason
 * printed. */
int64_t vg_test_state_applied(struct vg_state *st, const char *topic, int32_t partition);
/* vg_state_scope into topic/partition (topic NULL: the global scope); false with the reason
 * printed. */
bool vg_test_state_enter(struct vg_state *st, const char *topic, int32_t partition);

#endif
