/*
 * A real Redis Cluster for tests: redis-server processes in cluster mode on
 * 127.0.0.1 (each in its own directory with its nodes.conf and AOF), joined
 * by `redis-cli --cluster create`, ready when every node says
 * cluster_state:ok and agrees on the slots. Nodes can be killed, restarted,
 * and looked at through raw hiredis connections.
 */
#ifndef VIGIL_TEST_REDIS_CLUSTER_H
#define VIGIL_TEST_REDIS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct redisContext;

#define VG_TEST_CLUSTER_MAX_NODES 9

struct vg_test_cluster_node {
    int port;
    int bus_port;
    pid_t pid; /* 0 while stopped */
    char *dir;
};

struct vg_test_cluster {
    char *dir;
    size_t n;        /* nodes started */
    size_t replicas; /* per primary */
    struct vg_test_cluster_node nodes[VG_TEST_CLUSTER_MAX_NODES];
};

/*
 * Start `primaries * (1 + replicas)` nodes (cluster-node-timeout 2000,
 * appendonly yes) in a fresh directory named after `name`, create the
 * cluster and wait until it is ready. 0, or -1 with the reason printed
 * (what was started is stopped again).
 */
int vg_test_cluster_start(struct vg_test_cluster *c, const char *name, size_t primaries,
                          size_t replicas);
/* Kill every node and remove the directory. */
void vg_test_cluster_stop(struct vg_test_cluster *c);
/* "redis://127.0.0.1:<port of node i>" (static buffer, valid until the next call). */
const char *vg_test_cluster_url(const struct vg_test_cluster *c, size_t i);

/*
 * Every running node says cluster_state:ok, knows every node, and has the
 * same owner for every slot. Waits up to timeout_ms.
 */
bool vg_test_cluster_wait_ready(struct vg_test_cluster *c, int timeout_ms);
/* Node `primary` is a primary with `replicas` replicas online. Waits up to timeout_ms. */
bool vg_test_cluster_wait_replicas(const struct vg_test_cluster *c, size_t primary, int timeout_ms);

/* A new raw connection to node i (NULL when it does not answer). The caller redisFree()s it. */
struct redisContext *vg_test_cluster_connect(const struct vg_test_cluster *c, size_t i);
/* The node id of node i ("" when it does not answer): heap, caller frees. */
char *vg_test_cluster_id(const struct vg_test_cluster *c, size_t i);
/* The index of the node that owns `slot` according to node `asked` (-1: none, no answer). */
int vg_test_cluster_owner(const struct vg_test_cluster *c, size_t asked, int slot);
/* Index of a primary other than `not_this` (-1: none). Asks a running node. */
int vg_test_cluster_other_primary(const struct vg_test_cluster *c, int not_this);
/* The index of a replica of primary `primary` (-1: none). */
int vg_test_cluster_replica_of(const struct vg_test_cluster *c, size_t primary);

/*
 * GET `key` from whichever running node owns it (asking each one; a
 * migrating key is found with ASKING on the importing node). Returns a
 * heap string, or NULL when no node holds the key.
 */
char *vg_test_cluster_get(const struct vg_test_cluster *c, const char *key);

/* The index of the primary that owns `key`'s slot (CLUSTER KEYSLOT; -1: no answer). */
int vg_test_cluster_key_owner(const struct vg_test_cluster *c, const char *key);
/*
 * A topic name, "<base>-<pid>-<k>" for the first k that fits, whose partitions 0..n-1 have
 * their slots ({<topic>/<partition>}) on `want` primaries at least. Heap, the caller frees it;
 * NULL with the reason printed when no node answers or no k below 10000 fits.
 */
char *vg_test_cluster_topic_spread(const struct vg_test_cluster *c, const char *base, int n,
                                   size_t want);
/* A new raw connection to the primary of `key` (NULL: none answers). The caller redisFree()s it. */
struct redisContext *vg_test_cluster_connect_key(const struct vg_test_cluster *c, const char *key);
/* Node i answers ROLE with "master". */
bool vg_test_cluster_is_primary(const struct vg_test_cluster *c, size_t i);
/* Keys matching the glob `pattern` on node i (SCAN; -1: no answer). */
long long vg_test_cluster_scan_count(const struct vg_test_cluster *c, size_t i,
                                     const char *pattern);
/* The same summed over every running primary; *primaries_with (may be NULL): how many of them
 * hold at least one. -1: a primary did not answer. */
long long vg_test_cluster_count_everywhere(const struct vg_test_cluster *c, const char *pattern,
                                           size_t *primaries_with);

/* How many slots below `slot` node `owner` owns (redis-cli --cluster reshard moves a source's
 * lowest slots first); -1: no answer. */
int vg_test_cluster_slots_below(const struct vg_test_cluster *c, size_t owner, int slot);

/* SIGKILL node i (and reap it). */
void vg_test_cluster_kill(struct vg_test_cluster *c, size_t i);
/* Start node i again on its directory (nodes.conf, AOF) and wait for PING. 0 or -1. */
int vg_test_cluster_restart(struct vg_test_cluster *c, size_t i);

/* Run redis-cli with `argv` (NULL-terminated, without the program) to completion; its exit
 * status, output into *out (heap, may be NULL). */
int vg_test_cluster_cli(const char *const argv[], char **out);
/* Start redis-cli with `argv` (as above) as a child; its pid or -1. Output into DIR/<log>. */
pid_t vg_test_cluster_cli_spawn(const struct vg_test_cluster *c, const char *const argv[],
                                const char *log);

#endif
