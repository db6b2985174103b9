/*
 * The real Redis Cluster fixture (redis_cluster.h): redis-server processes
 * in cluster mode on loopback TCP ports, created with redis-cli.
 */
#include "redis_cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define NODE_TIMEOUT_MS "2000"

/* Full path of `prog` on $PATH (heap), or NULL. */
static char *which(const char *prog)
{
    const char *path = getenv("PATH");
    const char *p = path && *path ? path : "/usr/bin:/bin";

    while (*p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = vg_asprintf("%.*s/%s", len ? (int)len : 1, len ? p : ".", prog);

        if (access(cand, X_OK) == 0) {
            return cand;
        }
        vg_free(cand);
        if (!colon) {
            break;
        }
        p = colon + 1;
    }
    return NULL;
}

static redisContext *connect_port(int port)
{
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (!ctx || ctx->err) {
        if (ctx) {
            redisFree(ctx);
        }
        return NULL;
    }
    redisSetTimeout(ctx, (struct timeval){.tv_sec = 5, .tv_usec = 0});
    return ctx;
}

redisContext *vg_test_cluster_connect(const struct vg_test_cluster *c, size_t i)
{
    if (i >= c->n || c->nodes[i].pid == 0) {
        return NULL;
    }
    return connect_port(c->nodes[i].port);
}

const char *vg_test_cluster_url(const struct vg_test_cluster *c, size_t i)
{
    static char url[64];

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", c->nodes[i].port);
    return url;
}

static bool node_pings(void *arg)
{
    const struct vg_test_cluster_node *nd = arg;
    redisContext *ctx = connect_port(nd->port);
    redisReply *r;
    bool ok;

    if (!ctx) {
        return false;
    }
    r = redisCommand(ctx, "PING");
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return ok;
}

static int node_spawn(struct vg_test_cluster_node *nd)
{
    char *bin = which("redis-server");
    char port[16];
    char bus[16];
    char *conf = vg_asprintf("%s/nodes.conf", nd->dir);
    char *log = vg_asprintf("%s/redis.log", nd->dir);
    const char *argv[] = {bin,
                          "--port",
                          port,
                          "--cluster-port",
                          bus,
                          "--bind",
                          "127.0.0.1",
                          "--protected-mode",
                          "no",
                          "--cluster-enabled",
                          "yes",
                          "--cluster-config-file",
                          conf,
                          "--cluster-node-timeout",
                          NODE_TIMEOUT_MS,
                          "--appendonly",
                          "yes",
                          "--save",
                          "",
                          "--dir",
                          nd->dir,
                          "--logfile",
                          log,
                          "--daemonize",
                          "no",
                          NULL};
    int rc = 0;

    if (!bin) {
        fprintf(stderr, "redis-server is not on PATH\n");
        rc = -1;
        goto out;
    }
    snprintf(port, sizeof(port), "%d", nd->port);
    snprintf(bus, sizeof(bus), "%d", nd->bus_port);
    nd->pid = vg_test_spawn((char *const *)argv, NULL, NULL);
    if (nd->pid < 0) {
        nd->pid = 0;
        fprintf(stderr, "spawn redis-server: %s\n", strerror(errno));
        rc = -1;
        goto out;
    }
    if (!vg_test_wait_for(node_pings, nd, 10000)) {
        fprintf(stderr, "redis-server on port %d did not answer PING (see %s)\n", nd->port, log);
        rc = -1;
    }
out:
    vg_free(bin);
    vg_free(conf);
    vg_free(log);
    return rc;
}

/* A loopback port not in use and not already given to another node of `c`. */
static int pick_port(const struct vg_test_cluster *c, size_t upto)
{
    for (int tries = 0; tries < 100; tries++) {
        int p = vg_test_free_port();
        bool taken = p <= 0;

        for (size_t i = 0; i < upto && !taken; i++) {
            taken = c->nodes[i].port == p || c->nodes[i].bus_port == p;
        }
        if (!taken) {
            return p;
        }
    }
    return -1;
}

int vg_test_cluster_cli(const char *const argv[], char **out)
{
    char *bin = which("redis-cli");
    const char *full[64];
    size_t n = 0;
    int rc;

    if (!bin) {
        fprintf(stderr, "redis-cli is not on PATH\n");
        return -1;
    }
    full[n++] = bin;
    while (argv[n - 1] && n < VG_ARRAY_LEN(full) - 1) {
        full[n] = argv[n - 1];
        n++;
    }
    full[n] = NULL;
    rc = vg_test_run((char *const *)full, out, NULL);
    vg_free(bin);
    return rc;
}

pid_t vg_test_cluster_cli_spawn(const struct vg_test_cluster *c, const char *const argv[],
                                const char *log)
{
    char *bin = which("redis-cli");
    char *path = vg_asprintf("%s/%s", c->dir, log);
    const char *full[64];
    size_t n = 0;
    pid_t pid = -1;

    if (bin) {
        full[n++] = bin;
        while (argv[n - 1] && n < VG_ARRAY_LEN(full) - 1) {
            full[n] = argv[n - 1];
            n++;
        }
        full[n] = NULL;
        pid = vg_test_spawn((char *const *)full, path, path);
    }
    vg_free(bin);
    vg_free(path);
    return pid;
}

static redisReply *command(redisContext *ctx, const char *fmt, const char *arg)
{
    return arg ? redisCommand(ctx, fmt, arg) : redisCommand(ctx, fmt);
}

/* Owner (by port) of every slot as node `i` sees it; false when it does not answer. */
static bool slot_owners(const struct vg_test_cluster *c, size_t i, int *owners)
{
    redisContext *ctx = vg_test_cluster_connect(c, i);
    redisReply *r;
    bool ok;

    if (!ctx) {
        return false;
    }
    r = command(ctx, "CLUSTER SLOTS", NULL);
    ok = r && r->type == REDIS_REPLY_ARRAY;
    for (int s = 0; s < 16384; s++) {
        owners[s] = -1;
    }
    for (size_t k = 0; ok && k < r->elements; k++) {
        const redisReply *e = r->element[k];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) {
            ok = false;
            break;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++) {
            owners[s] = (int)e->element[2]->element[1]->integer;
        }
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return ok;
}

static int index_of_port(const struct vg_test_cluster *c, int port)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->nodes[i].port == port) {
            return (int)i;
        }
    }
    return -1;
}

int vg_test_cluster_owner(const struct vg_test_cluster *c, size_t asked, int slot)
{
    int *owners = vg_malloc(16384 * sizeof(*owners));
    int idx = -1;

    if (slot_owners(c, asked, owners)) {
        idx = index_of_port(c, owners[slot]);
    }
    vg_free(owners);
    return idx;
}

static bool info_has(redisContext *ctx, const char *cmd, const char *want)
{
    redisReply *r = command(ctx, cmd, NULL);
    bool ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want);

    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

/* Node i's CLUSTER NODES text (heap) or NULL. */
static char *cluster_nodes(const struct vg_test_cluster *c, size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(c, i);
    redisReply *r;
    char *s = NULL;

    if (!ctx) {
        return NULL;
    }
    r = command(ctx, "CLUSTER NODES", NULL);
    if (r && r->type == REDIS_REPLY_STRING) {
        s = vg_strdup(r->str);
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return s;
}

/* The line of CLUSTER NODES about the node on `port` (heap) or NULL. */
static char *nodes_line(const char *nodes, int port)
{
    char needle[32];
    const char *p;

    snprintf(needle, sizeof(needle), ":%d@", port);
    p = strstr(nodes, needle);
    if (!p) {
        return NULL;
    }
    while (p > nodes && p[-1] != '\n') {
        p--;
    }
    return vg_strndup(p, strcspn(p, "\n"));
}

static bool ready(void *arg)
{
    struct vg_test_cluster *c = arg;
    int *first = vg_malloc(16384 * sizeof(*first));
    int *owners = vg_malloc(16384 * sizeof(*owners));
    bool have_first = false;
    bool ok = true;
    char want_known[48];

    /* A node that was killed is still known to the others (flagged fail). */
    snprintf(want_known, sizeof(want_known), "cluster_known_nodes:%zu\r", c->n);
    for (size_t i = 0; ok && i < c->n; i++) {
        redisContext *ctx;

        if (c->nodes[i].pid == 0) {
            continue;
        }
        ctx = vg_test_cluster_connect(c, i);
        ok = ctx && info_has(ctx, "CLUSTER INFO", "cluster_state:ok") &&
             info_has(ctx, "CLUSTER INFO", want_known);
        if (ctx) {
            redisFree(ctx);
        }
        if (ok) {
            ok = slot_owners(c, i, owners);
        }
        if (ok && have_first) {
            ok = memcmp(first, owners, 16384 * sizeof(*owners)) == 0;
        } else if (ok) {
            memcpy(first, owners, 16384 * sizeof(*owners));
            have_first = true;
        }
    }
    vg_free(first);
    vg_free(owners);
    return ok;
}

struct replicas_arg {
    const struct vg_test_cluster *c;
    size_t primary;
};

static bool replicas_online(void *arg)
{
    const struct replicas_arg *ra = arg;
    redisContext *ctx = vg_test_cluster_connect(ra->c, ra->primary);
    redisReply *r = ctx ? command(ctx, "INFO replication", NULL) : NULL;
    size_t online = 0;
    bool ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:master");

    for (const char *p = ok ? r->str : ""; (p = strstr(p, ",state=online,")) != NULL; p++) {
        online++;
    }
    ok = ok && online >= ra->c->replicas;
    if (r) {
        freeReplyObject(r);
    }
    if (ctx) {
        redisFree(ctx);
    }
    return ok;
}

bool vg_test_cluster_wait_replicas(const struct vg_test_cluster *c, size_t primary, int timeout_ms)
{
    struct replicas_arg ra = {.c = c, .primary = primary};

    return vg_test_wait_for(replicas_online, &ra, timeout_ms);
}

bool vg_test_cluster_wait_ready(struct vg_test_cluster *c, int timeout_ms)
{
    return vg_test_wait_for(ready, c, timeout_ms);
}

int vg_test_cluster_start(struct vg_test_cluster *c, const char *name, size_t primaries,
                          size_t replicas)
{
    const char *argv[VG_TEST_CLUSTER_MAX_NODES + 8];
    char *addrs[VG_TEST_CLUSTER_MAX_NODES];
    char repl[16];
    char *out = NULL;
    int *owners;
    size_t a = 0;
    int rc;

    memset(c, 0, sizeof(*c));
    signal(SIGPIPE, SIG_IGN);
    c->replicas = replicas;
    c->n = primaries * (1 + replicas);
    VG_ASSERT(c->n > 0 && c->n <= VG_TEST_CLUSTER_MAX_NODES);
    c->dir = vg_test_mkdtemp(name);
    for (size_t i = 0; i < c->n; i++) {
        struct vg_test_cluster_node *nd = &c->nodes[i];

        nd->dir = vg_asprintf("%s/node%zu", c->dir, i);
        if (mkdir(nd->dir, 0700) != 0) {
            fprintf(stderr, "mkdir %s: %s\n", nd->dir, strerror(errno));
            goto fail;
        }
        nd->port = pick_port(c, i);
        nd->bus_port = nd->port > 0 ? pick_port(c, i + 1) : -1;
        if (nd->port <= 0 || nd->bus_port <= 0 || nd->bus_port == nd->port) {
            fprintf(stderr, "no free loopback port\n");
            goto fail;
        }
        if (node_spawn(nd) != 0) {
            goto fail;
        }
    }
    argv[a++] = "--cluster";
    argv[a++] = "create";
    for (size_t i = 0; i < c->n; i++) {
        addrs[i] = vg_asprintf("127.0.0.1:%d", c->nodes[i].port);
        argv[a++] = addrs[i];
    }
    snprintf(repl, sizeof(repl), "%zu", replicas);
    argv[a++] = "--cluster-replicas";
    argv[a++] = repl;
    argv[a++] = "--cluster-yes";
    argv[a] = NULL;
    rc = vg_test_cluster_cli(argv, &out);
    for (size_t i = 0; i < c->n; i++) {
        vg_free(addrs[i]);
    }
    if (rc != 0) {
        fprintf(stderr, "redis-cli --cluster create exited %d:\n%s\n", rc, out ? out : "");
        vg_free(out);
        goto fail;
    }
    vg_free(out);
    if (!vg_test_cluster_wait_ready(c, 30000)) {
        fprintf(stderr, "the cluster in %s was not ready within 30 s\n", c->dir);
        goto fail;
    }
    owners = vg_malloc(16384 * sizeof(*owners));
    if (!slot_owners(c, 0, owners)) {
        fprintf(stderr, "CLUSTER SLOTS failed on node 0\n");
        vg_free(owners);
        goto fail;
    }
    for (size_t i = 0; replicas > 0 && i < c->n; i++) {
        bool primary = false;

        for (int s = 0; s < 16384 && !primary; s++) {
            primary = owners[s] == c->nodes[i].port;
        }
        if (primary && !vg_test_cluster_wait_replicas(c, i, 30000)) {
            vg_free(owners);
            fprintf(stderr, "the replicas of node %zu in %s were not online within 30 s\n", i,
                    c->dir);
            goto fail;
        }
    }
    vg_free(owners);
    return 0;
fail:
    vg_test_cluster_stop(c);
    return -1;
}

void vg_test_cluster_kill(struct vg_test_cluster *c, size_t i)
{
    if (c->nodes[i].pid > 0) {
        vg_test_stop(c->nodes[i].pid, SIGKILL, 5000);
        c->nodes[i].pid = 0;
    }
}

int vg_test_cluster_restart(struct vg_test_cluster *c, size_t i)
{
    vg_test_cluster_kill(c, i);
    return node_spawn(&c->nodes[i]);
}

void vg_test_cluster_stop(struct vg_test_cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        vg_test_cluster_kill(c, i);
        vg_free(c->nodes[i].dir);
    }
    if (c->dir) {
        if (!getenv("VIGIL_TEST_KEEP")) {
            vg_test_rmrf(c->dir);
        }
        vg_free(c->dir);
    }
    memset(c, 0, sizeof(*c));
}

char *vg_test_cluster_id(const struct vg_test_cluster *c, size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(c, i);
    redisReply *r = ctx ? command(ctx, "CLUSTER MYID", NULL) : NULL;
    char *id = vg_strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");

    if (r) {
        freeReplyObject(r);
    }
    if (ctx) {
        redisFree(ctx);
    }
    return id;
}

static int running_node(const struct vg_test_cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->nodes[i].pid != 0) {
            return (int)i;
        }
    }
    return -1;
}

int vg_test_cluster_other_primary(const struct vg_test_cluster *c, int not_this)
{
    int asked = running_node(c);
    int *owners = vg_malloc(16384 * sizeof(*owners));
    int idx = -1;

    if (asked >= 0 && slot_owners(c, (size_t)asked, owners)) {
        for (int s = 0; s < 16384 && idx < 0; s++) {
            int o = index_of_port(c, owners[s]);

            if (o >= 0 && o != not_this) {
                idx = o;
            }
        }
    }
    vg_free(owners);
    return idx;
}

int vg_test_cluster_replica_of(const struct vg_test_cluster *c, size_t primary)
{
    int asked = running_node(c);
    char *id = vg_test_cluster_id(c, primary);
    char *nodes = asked >= 0 ? cluster_nodes(c, (size_t)asked) : NULL;
    int idx = -1;

    for (size_t i = 0; nodes && id[0] && i < c->n && idx < 0; i++) {
        char *line = nodes_line(nodes, c->nodes[i].port);

        /* "<id> <addr> <flags> <primary id> ...": a replica names its primary's id */
        if (line && strstr(line, "slave") && strstr(line, id)) {
            idx = (int)i;
        }
        vg_free(line);
    }
    vg_free(nodes);
    vg_free(id);
    return idx;
}

char *vg_test_cluster_get(const struct vg_test_cluster *c, const char *key)
{
    char *value = NULL;

    for (int asking = 0; asking < 2 && !value; asking++) {
        for (size_t i = 0; i < c->n && !value; i++) {
            redisContext *ctx = vg_test_cluster_connect(c, i);
            redisReply *r = NULL;

            if (!ctx) {
                continue;
            }
            if (asking) {
                r = command(ctx, "ASKING", NULL);
                if (r) {
                    freeReplyObject(r);
                }
            }
            r = command(ctx, "GET %s", key);
            if (r && r->type == REDIS_REPLY_STRING) {
                value = vg_strndup(r->str, r->len);
            }
            if (r) {
                freeReplyObject(r);
            }
            redisFree(ctx);
        }
    }
    return value;
}

int vg_test_cluster_key_owner(const struct vg_test_cluster *c, const char *key)
{
    int asked = running_node(c);
    redisContext *ctx = asked >= 0 ? vg_test_cluster_connect(c, (size_t)asked) : NULL;
    redisReply *r;
    int slot = -1;

    if (!ctx) {
        return -1;
    }
    r = redisCommand(ctx, "CLUSTER KEYSLOT %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        slot = (int)r->integer;
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return slot < 0 ? -1 : vg_test_cluster_owner(c, (size_t)asked, slot);
}

char *vg_test_cluster_topic_spread(const struct vg_test_cluster *c, const char *base, int n,
                                   size_t want)
{
    for (int k = 0; k < 10000; k++) {
        char *topic = vg_asprintf("%s-%d-%d", base, (int)getpid(), k);
        bool seen[VG_TEST_CLUSTER_MAX_NODES] = {false};
        size_t distinct = 0;

        for (int p = 0; p < n; p++) {
            char *tag = vg_asprintf("{%s/%d}", topic, p);
            int owner = vg_test_cluster_key_owner(c, tag);

            vg_free(tag);
            if (owner < 0) {
                fprintf(stderr, "topic spread: no owner of {%s/%d}\n", topic, p);
                vg_free(topic);
                return NULL;
            }
            distinct += seen[owner] ? 0 : 1;
            seen[owner] = true;
        }
        if (distinct >= want) {
            return topic;
        }
        vg_free(topic);
    }
    fprintf(stderr, "topic spread: no %s-%d-K has %d partitions on %zu primaries\n", base,
            (int)getpid(), n, want);
    return NULL;
}

redisContext *vg_test_cluster_connect_key(const struct vg_test_cluster *c, const char *key)
{
    int owner = vg_test_cluster_key_owner(c, key);

    return owner < 0 ? NULL : vg_test_cluster_connect(c, (size_t)owner);
}

bool vg_test_cluster_is_primary(const struct vg_test_cluster *c, size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(c, i);
    redisReply *r;
    bool primary;

    if (!ctx) {
        return false;
    }
    r = redisCommand(ctx, "ROLE");
    primary = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "master") == 0;
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return primary;
}

long long vg_test_cluster_scan_count(const struct vg_test_cluster *c, size_t i, const char *pattern)
{
    redisContext *ctx = vg_test_cluster_connect(c, i);
    char cursor[32] = "0";
    long long n = 0;

    if (!ctx) {
        return -1;
    }
    do {
        redisReply *r = redisCommand(ctx, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) {
                freeReplyObject(r);
            }
            n = -1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(ctx);
    return n;
}

long long vg_test_cluster_count_everywhere(const struct vg_test_cluster *c, const char *pattern,
                                           size_t *primaries_with)
{
    long long total = 0;

    if (primaries_with) {
        *primaries_with = 0;
    }
    for (size_t i = 0; i < c->n; i++) {
        long long n;

        if (c->nodes[i].pid == 0 || !vg_test_cluster_is_primary(c, i)) {
            continue;
        }
        n = vg_test_cluster_scan_count(c, i, pattern);
        if (n < 0) {
            return -1;
        }
        total += n;
        if (n > 0 && primaries_with) {
            (*primaries_with)++;
        }
    }
    return total;
}

int vg_test_cluster_slots_below(const struct vg_test_cluster *c, size_t owner, int slot)
{
    int asked = running_node(c);
    int *owners = vg_malloc(16384 * sizeof(*owners));
    int n = -1;

    if (asked >= 0 && slot_owners(c, (size_t)asked, owners)) {
        n = 0;
        for (int s = 0; s < slot; s++) {
            n += index_of_port(c, owners[s]) == (int)owner;
        }
    }
    vg_free(owners);
    return n;
}
