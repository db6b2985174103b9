/*
 * What the tests of vigil on a Redis Cluster share (test_cluster_*.c): a
 * real cluster (three primaries, one replica each), the environment whose
 * vigil reaches it through a replica's address with `cluster: true`, a
 * prefix whose hash-tag slot is among the lowest (so a reshard can move
 * it quickly), and the checks: pages against the reference model, every
 * key in one slot.
 */
#ifndef VIGIL_TEST_CLUSTER_COMMON_H
#define VIGIL_TEST_CLUSTER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "env.h"
#include "redis_cluster.h"
#include "refmodel.h"

/* The prefix's slot is below this: redis-cli --cluster reshard moves the lowest slots first. */
#define CLUSTER_TEST_SLOT_MAX 64

struct cluster_test {
    struct vg_test_cluster rc;
    struct vg_test_env e;
    int slot;    /* of the prefix (its hash tag) */
    int owner;   /* fixture index of the primary that owned it at the start */
    int replica; /* a replica of that primary: the address vigil is given */
    /* redis.layout partitioned (docs/state.md "Layouts"): every partition's keys under
     * "<prefix>:{<topic>/<partition>}", spread over the primaries; slot and owner are then
     * the global scope's (the registry of partitions) */
    bool partitioned;
    /* a node held with SIGSTOP (cluster_failover_run): let go by cluster_test_stop; -1: none */
    int held;
};

/*
 * Start the cluster and the environment (`partitions` partitions, small
 * batches, the HTTP API, the default rules and webhook sink), with a prefix
 * whose slot is below CLUSTER_TEST_SLOT_MAX. 0 or -1 (printed).
 */
int cluster_test_start(struct cluster_test *t, const char *name, int partitions);
/* The same with `layout: partitioned` in vigil.yaml, and the test's own connection
 * (vg_test_env_state) on that layout. */
int cluster_test_start_partitioned(struct cluster_test *t, const char *name, int partitions);
/* Stop the environment, then the cluster; -1 when vg_test_env_stop failed. */
int cluster_test_stop(struct cluster_test *t);

/*
 * A test's cluster_test, name and partitions. Pass its address as the
 * initial state of cmocka_unit_test_prestate_setup_teardown(test,
 * cluster_test_setup, cluster_test_teardown, &c): setup is
 * cluster_test_start, teardown cluster_test_stop.
 */
struct cluster_test_case {
    struct cluster_test *t;
    const char *name;
    int partitions;
};
int cluster_test_setup(void **state);
/* The same with cluster_test_start_partitioned. */
int cluster_test_setup_partitioned(void **state);
int cluster_test_teardown(void **state);

/*
 * The receiver got every page the reference model expects (a workflow's
 * runtime to failed: firing; from failed: resolved), each at least once,
 * repeats only with the same idempotency id, nothing else. Waits up to
 * timeout_ms for the expected pages; returns the number of problems
 * (printed); *expected is how many pages were expected.
 */
int cluster_check_pages(struct vg_test_env *e, const struct vg_ref_log *log, size_t *expected,
                        int timeout_ms);

/*
 * The end of a run during which vigil's slot moved to another primary:
 * events [from, end) of `log` produced and the whole log applied, vigil
 * said it follows its slot ("is now served by"), Redis equals the
 * reference model (nothing lost, nothing twice), every expected page was
 * delivered (and some were expected); then vigil, sent SIGTERM, exits 0.
 * false at the first that does not hold (printed).
 */
bool cluster_finish_moved(struct cluster_test *t, const struct vg_ref_log *log, size_t from);

/* ---- moving vigil's slots while it runs (the failover and reshard tests) ---- */

/*
 * Sum of (applied offset + 1) that node i holds: its copy of the offsets hash, or with the
 * partitioned layout the offsets of the partitions whose scope it serves. -1: no answer.
 */
long long cluster_applied_on(struct cluster_test *t, size_t i);

/*
 * A primary that dies while vigil (wait_replicas: 1) applies `log`: vigil spawned, the
 * first third applied; the replica held (SIGSTOP, its replication link cut) while the
 * second third is produced, until the primary holds batches its replica never got (it
 * held at least min_before before); then the primary is killed, the replica let go and
 * promoted (it serves vigil's slot, or with the partitioned layout partition `part`), and
 * the old primary comes back as its replica; cluster_finish_moved with the rest. false at
 * the first step that fails (printed).
 */
struct cluster_failover {
    int victim;           /* the primary that dies */
    int replica;          /* its replica, promoted */
    int part;             /* partitioned: a partition the victim serves; else unused */
    long long min_before; /* applied on the victim before its replica is held, at least */
};
bool cluster_failover_run(struct cluster_test *t, const struct vg_ref_log *log,
                          const struct cluster_failover *f);

/*
 * `redis-cli --cluster reshard` (logging to reshard.log) moving the n_slots lowest slots of
 * primary `from` to `to`: started (false: it could not be, printed); polled without waiting
 * (true once it has exited); waited for up to timeout_ms (true: it exited 0, else printed).
 */
struct cluster_reshard {
    pid_t pid;
    int status;
    bool done;
};
bool cluster_reshard_start(struct cluster_test *t, int from, int to, int n_slots,
                           struct cluster_reshard *rs);
bool cluster_reshard_poll(struct cluster_reshard *rs);
bool cluster_reshard_wait(struct cluster_reshard *rs, int timeout_ms);

/*
 * Slots that move while vigil applies `log`: vigil spawned, the first third applied;
 * `redis-cli --cluster reshard` moves the n_slots lowest slots of primary `from` to `to`
 * while the second third is produced a chunk at a time; redis-cli exits 0 within
 * timeout_ms. *produced: the events produced so far (for cluster_finish_moved). false at
 * the first step that fails (printed).
 */
bool cluster_reshard_run(struct cluster_test *t, const struct vg_ref_log *log, int from, int to,
                         int n_slots, int timeout_ms, size_t *produced);

/* Keys in the prefix's slot, and in all primaries together (-1: no answer). */
bool cluster_count_keys(struct cluster_test *t, long long *in_slot, long long *total);

/*
 * Every partition of the event topic has applied offsets summing to `want`
 * messages (each read in its partition's scope with the partitioned
 * layout). Waits up to timeout_ms; dumps vigil's logs when it does not.
 */
bool cluster_wait_applied(struct cluster_test *t, int64_t want, int timeout_ms);
/* The partitioned layout: the keys of every partition scope "<prefix>:{...", on all primaries
 * together; *primaries_with: how many primaries hold some. -1: no answer. */
long long cluster_scope_keys(struct cluster_test *t, size_t *primaries_with);
/* The fixture index of the primary that owns partition p's scope (-1: no answer). */
int cluster_partition_owner(struct cluster_test *t, int p);

#endif
