/*
 * The shared part of the tests of vigil on a Redis Cluster
 * (cluster_common.h): starting the cluster and the environment, and the
 * checks of pages and key slots.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cluster_common.h"
#include "http_receiver.h"
#include "state_cluster.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static int start(struct cluster_test *t, const char *name, int partitions, bool partitioned)
{
    struct vg_test_env_opts o = {
        .partitions = partitions,
        .kafka_tuning = VG_REF_KAFKA_SMALL_BATCHES,
        .http = true,
    };
    char *url;
    char *prefix = NULL;

    memset(t, 0, sizeof(*t));
    t->held = -1;
    t->partitioned = partitioned;
    /* the one-slot layout is asked for by name: a cluster's default is partitioned */
    o.layout = partitioned ? "partitioned" : "single";
    if (vg_test_cluster_start(&t->rc, name, 3, 1) != 0) {
        return -1;
    }
    t->owner = vg_test_cluster_owner(&t->rc, 0, 0);
    t->replica = t->owner >= 0 ? vg_test_cluster_replica_of(&t->rc, (size_t)t->owner) : -1;
    if (t->replica < 0) {
        fprintf(stderr, "cluster: no replica of the owner of slot 0\n");
        vg_test_cluster_stop(&t->rc);
        return -1;
    }
    /* A replica's address: vigil must discover the primaries itself. */
    url = vg_strdup(vg_test_cluster_url(&t->rc, (size_t)t->replica));
    o.redis_cluster_url = url;
    if (vg_test_env_start(&t->e, name, &o) != 0) {
        cluster_test_stop(t);
        return -1;
    }
    /* A prefix whose slot redis-cli --cluster reshard moves first (the owner's lowest). */
    for (int i = 0; !prefix; i++) {
        char *p = vg_asprintf("%s%d-%d", name, (int)getpid(), i);
        int slot = state_cluster_keyslot(p, strlen(p));

        if (slot < CLUSTER_TEST_SLOT_MAX) {
            prefix = p;
            t->slot = slot;
        } else {
            free(p);
        }
    }
    free(t->e.prefix);
    t->e.prefix = prefix;
    /* the test's own connection under that prefix, in the layout vigil is given */
    vg_state_destroy(t->e.st);
    t->e.st = NULL;
    vg_test_env_write_config(&t->e);
    if (!vg_test_env_state(&t->e)) {
        fprintf(stderr, "cluster: the test's connection to the cluster failed\n");
        return -1;
    }
    if (vg_test_cluster_owner(&t->rc, 0, t->slot) != t->owner) {
        fprintf(stderr, "cluster: slot %d is not owned by node %d\n", t->slot, t->owner);
        return -1;
    }
    fprintf(stderr, "cluster: prefix %s in slot %d of node %d, vigil given node %d\n", prefix,
            t->slot, t->owner, t->replica);
    return 0;
}

int cluster_test_start(struct cluster_test *t, const char *name, int partitions)
{
    return start(t, name, partitions, false);
}

int cluster_test_start_partitioned(struct cluster_test *t, const char *name, int partitions)
{
    return start(t, name, partitions, true);
}

int cluster_test_stop(struct cluster_test *t)
{
    const char *url = t->e.opts.redis_cluster_url;
    int rc;

    /* a failed assertion may leave a node stopped */
    if (t->held >= 0 && t->rc.nodes[t->held].pid > 0) {
        kill(t->rc.nodes[t->held].pid, SIGCONT);
    }
    rc = vg_test_env_stop(&t->e);

    free((char *)url);
    vg_test_cluster_stop(&t->rc);
    return rc;
}

int cluster_test_setup(void **state)
{
    const struct cluster_test_case *c = *state;

    return start(c->t, c->name, c->partitions, false);
}

int cluster_test_setup_partitioned(void **state)
{
    const struct cluster_test_case *c = *state;

    return start(c->t, c->name, c->partitions, true);
}

int cluster_test_teardown(void **state)
{
    const struct cluster_test_case *c = *state;

    return cluster_test_stop(c->t);
}

/* ---- pages ---- */

/* Count what the receiver saw against `want`; returns the problems, *lost the pages missing. */
static int tally_pages(struct vg_test_env *e, struct vg_map *want, bool print, size_t *lost)
{
    size_t n_req = vg_http_receiver_count(e->rcv);
    size_t iter = 0;
    const char *key;
    void *v;
    int problems = 0;

    while (vg_map_next(want, &iter, &key, &v)) {
        struct vg_ref_page *s = v;

        s->delivered = 0;
        free(s->idem);
        s->idem = NULL;
    }
    for (size_t i = 0; i < n_req; i++) {
        struct vg_http_request *req = vg_http_receiver_request(e->rcv, i);
        const char *idem = vg_http_request_header(req, "Idempotency-Key");
        char *k = vg_ref_page_key(req);
        struct vg_ref_page *s = k ? vg_map_get(want, k) : NULL;

        if (!s) {
            if (print) {
                fprintf(stderr, "cluster: unexpected page %s\n", k ? k : req->body);
            }
            problems++;
        } else {
            if (!idem || (s->idem && strcmp(s->idem, idem) != 0)) {
                if (print) {
                    fprintf(stderr, "cluster: page %s repeated under another id: %s, first %s\n", k,
                            idem ? idem : "-", s->idem ? s->idem : "-");
                }
                problems++;
            }
            vg_ref_page_answered(s, idem, req->answer_status);
        }
        free(k);
        vg_http_request_free(req);
    }
    *lost = 0;
    iter = 0;
    while (vg_map_next(want, &iter, &key, &v)) {
        const struct vg_ref_page *s = v;

        if (s->delivered == 0) {
            if (print) {
                fprintf(stderr, "cluster: page never delivered: %s\n", key);
            }
            (*lost)++;
        }
    }
    return problems + (int)*lost;
}

struct pages_wait {
    struct vg_test_env *e;
    struct vg_map *want;
};

static bool pages_all_there(void *arg)
{
    struct pages_wait *w = arg;
    size_t lost;

    (void)tally_pages(w->e, w->want, false, &lost);
    return lost == 0;
}

int cluster_check_pages(struct vg_test_env *e, const struct vg_ref_log *log, size_t *expected,
                        int timeout_ms)
{
    struct pages_wait w = {e, vg_ref_expected_pages(log)};
    size_t lost;
    int problems;

    *expected = vg_map_count(w.want);
    (void)vg_test_wait_for(pages_all_there, &w, timeout_ms);
    problems = tally_pages(e, w.want, true, &lost);
    fprintf(stderr, "cluster: %zu pages expected, %zu requests, %zu lost\n", *expected,
            vg_http_receiver_count(e->rcv), lost);
    vg_map_destroy(w.want, vg_ref_page_free);
    return problems;
}

bool cluster_finish_moved(struct cluster_test *t, const struct vg_ref_log *log, size_t from)
{
    size_t expected = 0;
    int bad;
    int status;

    if (!vg_ref_produce_env(&t->e, log, from, log->n_evs) ||
        !cluster_wait_applied(t, (int64_t)log->n_evs, 60000) ||
        !vg_test_env_wait_log(&t->e, "is now served by", 10000)) {
        return false;
    }
    bad = vg_ref_check_redis(vg_test_env_state(&t->e), log);
    if (bad != 0) {
        fprintf(stderr, "cluster: %d mismatches with the reference model\n", bad);
        return false;
    }
    if (cluster_check_pages(&t->e, log, &expected, 30000) != 0) {
        return false;
    }
    if (expected == 0) {
        fprintf(stderr, "cluster: the log expects no page: nothing was tested\n");
        return false;
    }
    status = vg_test_env_kill(&t->e, SIGTERM);
    if (status != 0) {
        fprintf(stderr, "cluster: vigil exited with %d after SIGTERM\n", status);
        return false;
    }
    return true;
}

/* ---- moving vigil's slots while it runs ---- */

long long cluster_applied_on(struct cluster_test *t, size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(&t->rc, i);
    redisReply *r;
    long long sum = -1;

    if (!ctx) {
        return -1;
    }
    if (!t->partitioned) {
        r = redisCommand(ctx, "HVALS {%s}:offsets", t->e.prefix);
        if (r && r->type == REDIS_REPLY_ARRAY) {
            sum = 0;
            for (size_t k = 0; k < r->elements; k++) {
                sum += strtoll(r->element[k]->str, NULL, 10) + 1;
            }
        }
        if (r) {
            freeReplyObject(r);
        }
        redisFree(ctx);
        return sum;
    }
    sum = 0;
    for (int p = 0; p < t->e.opts.partitions && sum >= 0; p++) {
        r = redisCommand(ctx, "HGET %s:{%s/%d}:offsets %s/%d", t->e.prefix, t->e.topic, p,
                         t->e.topic, p);
        if (!r) {
            sum = -1;
        } else if (r->type == REDIS_REPLY_STRING) {
            sum += strtoll(r->str, NULL, 10) + 1;
        }
        /* MOVED: another primary's partition */
        if (r) {
            freeReplyObject(r);
        }
    }
    redisFree(ctx);
    return sum;
}

/* CLIENT KILL TYPE replica on node i: its replicas lose the replication link. */
static bool cut_replicas(struct cluster_test *t, size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(&t->rc, i);
    redisReply *r;
    bool ok;

    if (!ctx) {
        return false;
    }
    r = redisCommand(ctx, "CLIENT KILL TYPE replica");
    ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return ok;
}

struct node_wait {
    struct cluster_test *t;
    const struct cluster_failover *f;
    long long want; /* applied_reached */
};

static bool victim_applied(void *arg)
{
    const struct node_wait *w = arg;

    return cluster_applied_on(w->t, (size_t)w->f->victim) >= w->want;
}

/* The promoted replica serves vigil's slot (as it sees the map), or the partition's. */
static bool replica_serves(void *arg)
{
    const struct node_wait *w = arg;

    if (w->t->partitioned) {
        return cluster_partition_owner(w->t, w->f->part) == w->f->replica;
    }
    return vg_test_cluster_owner(&w->t->rc, (size_t)w->f->replica, w->t->slot) == w->f->replica;
}

/* A step of a run: when cond does not hold, say which step failed and return false. */
#define STEP(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "cluster: %s failed\n", what);                                         \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

bool cluster_failover_run(struct cluster_test *t, const struct vg_ref_log *log,
                          const struct cluster_failover *f)
{
    size_t n = log->n_evs;
    struct node_wait w = {t, f, 0};
    pid_t replica_pid = t->rc.nodes[f->replica].pid;
    long long before;

    STEP(vg_test_env_spawn(&t->e), "spawn vigil");
    STEP(vg_ref_produce_env(&t->e, log, 0, n / 3), "produce");
    STEP(cluster_wait_applied(t, (int64_t)(n / 3), 60000), "the first third applied");

    /* The replica falls behind: the primary acknowledges what it will never get. */
    before = cluster_applied_on(t, (size_t)f->victim);
    if (before < f->min_before) {
        fprintf(stderr, "cluster: node %d holds %lld applied, expected at least %lld\n", f->victim,
                before, f->min_before);
        return false;
    }
    STEP(kill(replica_pid, SIGSTOP) == 0, "SIGSTOP the replica");
    t->held = f->replica;
    /* What the primary already sent sits in the stopped replica's socket buffer and would
     * still arrive: cut the link, so that nothing written from now on reaches it. */
    STEP(cut_replicas(t, (size_t)f->victim), "cut the replication link");
    STEP(vg_ref_produce_env(&t->e, log, n / 3, 2 * n / 3), "produce");
    /* vigil had the chance: the primary holds batches written after its replica stopped */
    w.want = before + 1;
    STEP(vg_test_wait_for(victim_applied, &w, 20000), "batches applied on the primary alone");

    /* The primary dies; the replica, let go, is promoted; the old primary comes back as its
     * replica (a WAIT 1 needs one). */
    vg_test_cluster_kill(&t->rc, (size_t)f->victim);
    STEP(kill(replica_pid, SIGCONT) == 0, "SIGCONT the replica");
    t->held = -1;
    STEP(vg_test_wait_for(replica_serves, &w, 30000), "the replica promoted");
    fprintf(stderr, "failover: node %d serves what node %d served now\n", f->replica, f->victim);
    STEP(vg_test_cluster_restart(&t->rc, (size_t)f->victim) == 0, "restart the old primary");
    STEP(vg_test_cluster_wait_replicas(&t->rc, (size_t)f->replica, 30000),
         "the old primary a replica");

    /* vigil recovers within a deadline and applies the rest: nothing lost, nothing twice;
     * every page delivered */
    return cluster_finish_moved(t, log, 2 * n / 3);
}

static bool reshard_exited(void *arg)
{
    struct cluster_reshard *rs = arg;

    if (!rs->done && waitpid(rs->pid, &rs->status, WNOHANG) == rs->pid) {
        rs->done = true;
    }
    return rs->done;
}

bool cluster_reshard_start(struct cluster_test *t, int from, int to, int n_slots,
                           struct cluster_reshard *rs)
{
    char *from_id = vg_test_cluster_id(&t->rc, (size_t)from);
    char *to_id = vg_test_cluster_id(&t->rc, (size_t)to);
    char addr[64];
    char slots[16];
    const char *argv[] = {"--cluster", "reshard",       addr,  "--cluster-from",
                          from_id,     "--cluster-to",  to_id, "--cluster-slots",
                          slots,       "--cluster-yes", NULL};

    memset(rs, 0, sizeof(*rs));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", t->rc.nodes[from].port);
    snprintf(slots, sizeof(slots), "%d", n_slots);
    rs->pid = vg_test_cluster_cli_spawn(&t->rc, argv, "reshard.log");
    free(from_id);
    free(to_id);
    if (rs->pid <= 0) {
        fprintf(stderr, "cluster: cannot start redis-cli --cluster reshard\n");
        return false;
    }
    return true;
}

bool cluster_reshard_poll(struct cluster_reshard *rs)
{
    return reshard_exited(rs);
}

bool cluster_reshard_wait(struct cluster_reshard *rs, int timeout_ms)
{
    if (!vg_test_wait_for(reshard_exited, rs, timeout_ms)) {
        fprintf(stderr, "cluster: redis-cli --cluster reshard still runs\n");
        return false;
    }
    if (!WIFEXITED(rs->status) || WEXITSTATUS(rs->status) != 0) {
        fprintf(stderr, "cluster: redis-cli --cluster reshard failed (status %d)\n", rs->status);
        return false;
    }
    return true;
}

/* Events produced at a time while the slots move. */
#define RESHARD_CHUNK 25

bool cluster_reshard_run(struct cluster_test *t, const struct vg_ref_log *log, int from, int to,
                         int n_slots, int timeout_ms, size_t *produced)
{
    size_t n = log->n_evs;
    struct cluster_reshard rs;

    *produced = 0;
    STEP(vg_test_env_spawn(&t->e), "spawn vigil");
    STEP(vg_ref_produce_env(&t->e, log, 0, n / 3), "produce");
    STEP(cluster_wait_applied(t, (int64_t)(n / 3), 60000), "the first third applied");
    *produced = n / 3;
    /* redis-cli moves the source's lowest slots first */
    STEP(cluster_reshard_start(t, from, to, n_slots, &rs), "reshard");
    /* events flow while the slots move: a chunk at a time until redis-cli is done */
    while (*produced < 2 * n / 3) {
        STEP(vg_ref_produce_env(&t->e, log, *produced, *produced + RESHARD_CHUNK), "produce");
        *produced += RESHARD_CHUNK;
        (void)cluster_reshard_poll(&rs);
    }
    return cluster_reshard_wait(&rs, timeout_ms);
}

/* ---- keys ---- */

static long long integer_reply(redisContext *ctx, const char *fmt, ...)
{
    long long n = -1;
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "cluster: %s: %s\n", fmt, r->str);
    }
    if (r) {
        freeReplyObject(r);
    }
    return n;
}

bool cluster_count_keys(struct cluster_test *t, long long *in_slot, long long *total)
{
    size_t asked = 0;
    int owner;
    redisContext *ctx;

    while (asked + 1 < t->rc.n && t->rc.nodes[asked].pid == 0) {
        asked++;
    }
    owner = vg_test_cluster_owner(&t->rc, asked, t->slot);

    *in_slot = -1;
    *total = 0;
    for (size_t i = 0; i < t->rc.n; i++) {
        if (t->rc.nodes[i].pid == 0) {
            continue;
        }
        ctx = vg_test_cluster_connect(&t->rc, i);
        if (!ctx) {
            return false;
        }
        if (vg_test_cluster_is_primary(&t->rc, i)) {
            long long n = integer_reply(ctx, "DBSIZE");

            if (n < 0) {
                redisFree(ctx);
                return false;
            }
            *total += n;
        }
        if ((int)i == owner) {
            *in_slot = integer_reply(ctx, "CLUSTER COUNTKEYSINSLOT %d", t->slot);
        }
        redisFree(ctx);
    }
    return *in_slot >= 0;
}

/* ---- the partitioned layout ---- */

/* Sum over the event topic's partitions of (applied offset + 1); -1 on trouble. */
static int64_t applied_total(struct cluster_test *t)
{
    struct vg_state *st = vg_test_env_state(&t->e);
    char errstr[512];
    int64_t total = 0;

    if (!st) {
        return -1;
    }
    for (int p = 0; p < t->e.opts.partitions; p++) {
        int64_t off = -1;

        if (vg_state_scope(st, t->e.topic, p, errstr, sizeof(errstr)) != VG_OK ||
            vg_state_applied_offset(st, t->e.topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            (void)vg_state_scope(st, NULL, 0, errstr, sizeof(errstr));
            return -1;
        }
        total += off + 1;
    }
    (void)vg_state_scope(st, NULL, 0, errstr, sizeof(errstr));
    return total;
}

struct applied_wait {
    struct cluster_test *t;
    int64_t want;
};

static bool applied_reached(void *arg)
{
    const struct applied_wait *w = arg;

    return applied_total(w->t) >= w->want;
}

bool cluster_wait_applied(struct cluster_test *t, int64_t want, int timeout_ms)
{
    struct applied_wait w = {t, want};

    if (!t->partitioned) {
        return vg_ref_wait_applied(&t->e, want, timeout_ms);
    }
    if (vg_test_wait_for(applied_reached, &w, timeout_ms)) {
        return true;
    }
    fprintf(stderr, "cluster: applied %lld of %lld\n", (long long)applied_total(t),
            (long long)want);
    vg_test_env_dump_logs(&t->e);
    return false;
}

long long cluster_scope_keys(struct cluster_test *t, size_t *primaries_with)
{
    char *pattern = vg_asprintf("%s:{*", t->e.prefix);
    long long n = vg_test_cluster_count_everywhere(&t->rc, pattern, primaries_with);

    free(pattern);
    return n;
}

int cluster_partition_owner(struct cluster_test *t, int p)
{
    char *key = vg_asprintf("%s:{%s/%d}:offsets", t->e.prefix, t->e.topic, p);
    int owner = vg_test_cluster_key_owner(&t->rc, key);

    free(key);
    return owner;
}
