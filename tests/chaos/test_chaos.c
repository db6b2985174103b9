/*
 * The chaos suite: three `vigil run` instances in one group on a
 * 12-partition topic of librdkafka's mock cluster, while instances are
 * SIGKILLed and restarted, the redis-server is killed and restarted, the
 * webhook receiver fails or hangs and the mock cluster loses requests,
 * brokers and its coordinator. At the end, with everything healthy:
 * Redis equals the reference model of the produced log, every expected
 * page was delivered (repeats only under the same idempotency id), every
 * poison message is in the dead-letter topic. docs/chaos.md describes it.
 *
 * Sizes come from the environment (make chaos sets bigger ones):
 * VIGIL_CHAOS_EVENTS, VIGIL_CHAOS_RESOURCES, VIGIL_CHAOS_SECONDS,
 * VIGIL_CHAOS_SEED; VIGIL_CHAOS_BROKER_DOWN=0 leaves out the broker-down
 * fault. VIGIL_CHAOS_REDIS=cluster runs it on a real Redis Cluster (three
 * primaries, a replica each, `redis.layout: partitioned`), where the Redis
 * fault is a primary SIGKILLed and failed over to its replica instead of
 * the one redis-server restarted. VIGIL_CHAOS_REDIS=partitioned keeps the one
 * redis-server (restarted as with single) with `redis.layout: partitioned`, so
 * every instance commits its partitions on its commit lanes
 * (redis.commit_connections, default 4) of that one server.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos_topic.h"
#include "dlq_reader.h"
#include "env.h"
#include "kafka.h"
#include "redis_cluster.h"
#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define N_INSTANCES 3
#define N_PARTITIONS 12
#define N_BROKERS 3
#define POISON_EVERY 97 /* one poison message after every 97 events */

struct params {
    size_t events;
    size_t resources;
    int seconds;
    unsigned seed;
    bool broker_down; /* take brokers down and up (VIGIL_CHAOS_BROKER_DOWN, default 1) */
    bool cluster;     /* on a Redis Cluster (VIGIL_CHAOS_REDIS=cluster) */
    bool partitioned; /* redis.layout partitioned (cluster, or VIGIL_CHAOS_REDIS=partitioned) */
};

struct counts {
    size_t events;
    size_t poison;
    int kills;
    int redis_restarts;
    int failovers; /* Redis Cluster primaries SIGKILLed and replaced by their replica */
    int faults;
    int crashes; /* instances that died without being killed */
    size_t expected;
    size_t delivered; /* 2xx answers to expected pages */
    size_t duplicates;
    size_t lost;
    size_t unexpected;
    size_t id_mismatches;
    size_t dlq_missing;
    int state_mismatches;
};

struct chaos {
    struct params p;
    struct vg_test_env e;
    struct vg_ref_log log;
    struct vg_test_cluster rc; /* p.cluster: the Redis Cluster */
    pid_t pid[N_INSTANCES];
    unsigned rnd;
    struct counts n;
    /* the generator thread */
    pthread_t gen;
    bool gen_ok;
    bool gen_done;
    pthread_mutex_t mu;
};

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    char *end = NULL;
    long x;

    if (!v || !*v) {
        return dflt;
    }
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || *end || x <= 0) {
        fprintf(stderr, "chaos: %s=%s is not a positive number, using %ld\n", name, v, dflt);
        return dflt;
    }
    return x;
}

/* A 0/1 switch from the environment (unset or empty: dflt). */
static bool env_flag(const char *name, bool dflt)
{
    const char *v = getenv(name);

    if (!v || !*v) {
        return dflt;
    }
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
        fprintf(stderr, "chaos: %s=%s is not 0 or 1, using %d\n", name, v, (int)dflt);
        return dflt;
    }
    return v[0] == '1';
}

static uint32_t rnd(struct chaos *c, uint32_t n)
{
    return vg_ref_rand(&c->rnd) % n;
}

/* ---- The generator: the log (and poison messages) produced over the run ---- */

static void *generate(void *arg)
{
    struct chaos *c = arg;
    struct vg_test_env *e = &c->e;
    /* spread over 2/3 of the chaos phase, so that faults hit consumption */
    int64_t span_ms = (int64_t)c->p.seconds * 1000 * 2 / 3;
    int64_t t0 = vg_mono_ms();
    size_t poison = 0;
    char errstr[256];
    bool ok = true;

    for (size_t i = 0; i < c->log.n_evs && ok; i++) {
        const struct vg_ref_event *ev = &c->log.evs[i];
        const char *key = c->log.res[ev->res].id;
        char *json = vg_ref_event_json(&c->log, ev);
        int64_t due = t0 + span_ms * (int64_t)i / (int64_t)c->log.n_evs;

        if (vg_producer_send(e->producer, e->topic, -1, key, strlen(key), json, strlen(json),
                             errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "chaos: produce: %s\n", errstr);
            ok = false;
        }
        free(json);
        if (ok && i % POISON_EVERY == POISON_EVERY - 1) {
            char *bad = vg_asprintf("{\"chaos-poison\": %zu, not json", poison);
            char *bkey = vg_asprintf("poison-%zu", poison);

            if (vg_producer_send(e->producer, e->topic, -1, bkey, strlen(bkey), bad, strlen(bad),
                                 errstr, sizeof(errstr)) != VG_OK) {
                fprintf(stderr, "chaos: produce: %s\n", errstr);
                ok = false;
            }
            poison++;
            free(bad);
            free(bkey);
        }
        while (ok && vg_mono_ms() < due) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    /* a broker may be down for a few seconds: the producer retries, one request at a time */
    if (ok &&
        vg_producer_flush(e->producer, vg_test_timeout(120000), errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "chaos: flush: %s\n", errstr);
        ok = false;
    }
    pthread_mutex_lock(&c->mu);
    c->gen_ok = ok;
    c->gen_done = true;
    c->n.events = c->log.n_evs;
    c->n.poison = poison;
    e->produced = (long long)(c->log.n_evs + poison);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- The instances ---- */

static bool spawn_instance(struct chaos *c, int i)
{
    struct vg_test_env *e = &c->e;
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", e->config, NULL};
    char name[32];
    char *out;
    char *err;

    /* a stable name: a restarted instance re-reads its own unacknowledged pages at once */
    snprintf(name, sizeof(name), "chaos-%d", i);
    setenv("VIGIL_INSTANCE", name, 1);
    e->runs++;
    out = vg_asprintf("%s/vigil-%d.out", e->dir, e->runs);
    err = vg_test_env_log_path(e, e->runs);
    c->pid[i] = vg_test_spawn(argv, out, err);
    free(out);
    free(err);
    if (c->pid[i] <= 0) {
        fprintf(stderr, "chaos: cannot spawn instance %d\n", i);
        return false;
    }
    return true;
}

/* An instance that died on its own is a bug: count it and start it again. */
static void reap_crashed(struct chaos *c)
{
    for (int i = 0; i < N_INSTANCES; i++) {
        int status;

        if (c->pid[i] > 0 && waitpid(c->pid[i], &status, WNOHANG) == c->pid[i]) {
            fprintf(stderr, "chaos: instance %d (pid %d) died on its own: status %d\n", i,
                    (int)c->pid[i], status);
            c->n.crashes++;
            c->pid[i] = 0;
            spawn_instance(c, i);
        }
    }
}

static void kill_one(struct chaos *c)
{
    int i = (int)rnd(c, N_INSTANCES);

    if (c->pid[i] <= 0) {
        return;
    }
    kill(c->pid[i], SIGKILL);
    waitpid(c->pid[i], NULL, 0);
    c->pid[i] = 0;
    c->n.kills++;
    spawn_instance(c, i);
}

/* ---- Redis: killed, and started again on its AOF (appendfsync always) ---- */

static bool restart_redis(struct chaos *c)
{
    struct vg_test_env *e = &c->e;
    int pid = vg_redis_child_pid(e->redis);
    char how[128];
    char errstr[512];
    int64_t deadline = vg_mono_ms() + vg_test_timeout(10000);

    if (pid <= 0) {
        return false;
    }
    kill(pid, SIGKILL);
    while (!vg_redis_child_exited(e->redis, how, sizeof(how))) {
        if (vg_mono_ms() > deadline) {
            fprintf(stderr, "chaos: redis-server did not die\n");
            return false;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* down for a while: vigil must notice, pause, retry, and lose nothing */
    struct timespec down = {3, 0};
    nanosleep(&down, NULL);
    if (vg_redis_child_restart(e->redis, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "chaos: redis-server restart: %s\n", errstr);
        return false;
    }
    c->n.redis_restarts++;
    return true;
}

/*
 * ---- A Redis Cluster primary: SIGKILLed, its replica promoted, the old
 * primary back as the new one's replica ----
 *
 * vigil is configured with `wait_replicas: 1` on a cluster (tests/support/env.c):
 * a commit counts only once the replica has it, so the failover loses no
 * acknowledged write. Until the old primary is back as a replica, commits to
 * the promoted node's slots fall short of their WAIT and are retried.
 */
static bool failover_primary(struct chaos *c)
{
    struct vg_test_cluster *rc = &c->rc;
    size_t from = rnd(c, (uint32_t)rc->n);
    int victim = -1;
    int replica = -1;
    int64_t deadline;

    for (size_t k = 0; k < rc->n && victim < 0; k++) {
        size_t i = (from + k) % rc->n;

        if (rc->nodes[i].pid > 0 && vg_test_cluster_is_primary(rc, i)) {
            replica = vg_test_cluster_replica_of(rc, i);
            victim = replica >= 0 ? (int)i : -1;
        }
    }
    if (victim < 0) {
        fprintf(stderr, "chaos: no primary with a replica to fail over\n");
        return false;
    }
    vg_test_cluster_kill(rc, (size_t)victim);
    deadline = vg_mono_ms() + vg_test_timeout(30000);
    while (!vg_test_cluster_is_primary(rc, (size_t)replica)) {
        if (vg_mono_ms() > deadline) {
            fprintf(stderr, "chaos: node %d was not promoted\n", replica);
            return false;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (vg_test_cluster_restart(rc, (size_t)victim) != 0 ||
        !vg_test_cluster_wait_replicas(rc, (size_t)replica, 30000) ||
        !vg_test_cluster_wait_ready(rc, 30000)) {
        fprintf(stderr, "chaos: node %d did not come back as the replica of node %d\n", victim,
                replica);
        return false;
    }
    fprintf(stderr, "chaos: primary node %d failed over to node %d\n", victim, replica);
    c->n.failovers++;
    return true;
}

/* The test's own connections after Redis restarted. */
static void reconnect_test_redis(struct chaos *c)
{
    char errstr[256];

    vg_test_env_redis_close(&c->e);
    if (vg_state_reconnect(c->e.st, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "chaos: reconnect: %s\n", errstr);
    }
}

/* ---- The receiver: 200, 500, 429 with Retry-After, or hanging ---- */

static void receiver_mode(struct chaos *c, bool healthy)
{
    struct vg_http_behaviour b = {.action = VG_HTTP_ANSWER, .status = 200};
    uint32_t roll = healthy ? 0 : rnd(c, 100);

    if (roll >= 85) {
        b.action = VG_HTTP_HANG; /* the sink's timeout (2 s) ends each attempt */
    } else if (roll >= 70) {
        b.status = 429;
        b.retry_after_s = 1;
    } else if (roll >= 55) {
        b.status = 500;
    }
    if (roll >= 55) {
        c->n.faults++;
    }
    vg_http_receiver_set_default(c->e.rcv, &b);
}

/* ---- The mock cluster's faults ---- */

enum kafka_fault_kind {
    FAULT_FETCH,       /* failed Fetch requests */
    FAULT_COMMIT,      /* failed OffsetCommit requests */
    FAULT_JOIN,        /* failed JoinGroup requests */
    FAULT_BROKER_DOWN, /* a broker down for 2 to 4 s, its partitions' leaders moved */
    FAULT_COORDINATOR, /* the group's coordinator moved */
    N_FAULT_KINDS
};

struct kafka_faults {
    /* the kinds come in rounds, each kind once per round in a random order */
    int order[N_FAULT_KINDS];
    int next;
    int count[N_FAULT_KINDS];
    bool down_pending; /* a broker goes down right after the next restart of an instance */
    int down_broker;   /* 0: none */
    int64_t up_at_ms;
};

static enum kafka_fault_kind next_kind(struct chaos *c, struct kafka_faults *kf)
{
    int k;

    if (kf->next == 0) {
        for (int i = 0; i < N_FAULT_KINDS; i++) {
            kf->order[i] = i;
        }
        for (int i = N_FAULT_KINDS - 1; i > 0; i--) {
            int j = (int)rnd(c, (uint32_t)i + 1);
            int t = kf->order[i];

            kf->order[i] = kf->order[j];
            kf->order[j] = t;
        }
    }
    k = kf->order[kf->next];
    kf->next = (kf->next + 1) % N_FAULT_KINDS;
    return (enum kafka_fault_kind)k;
}

static void kafka_fault(struct chaos *c, struct kafka_faults *kf)
{
    struct vg_mock_kafka *mk = c->e.kafka;
    enum kafka_fault_kind kind = next_kind(c, kf);
    char errstr[256];

    if (kind == FAULT_BROKER_DOWN && (kf->down_pending || kf->down_broker || !c->p.broker_down)) {
        kind = next_kind(c, kf); /* the round goes on without it */
    }
    switch (kind) {
    case FAULT_FETCH:
        vg_mock_kafka_fail_requests(mk, VG_MOCK_KAFKA_FETCH, 10);
        break;
    case FAULT_COMMIT:
        vg_mock_kafka_fail_requests(mk, VG_MOCK_KAFKA_OFFSET_COMMIT, 5);
        break;
    case FAULT_JOIN:
        vg_mock_kafka_fail_requests(mk, VG_MOCK_KAFKA_JOIN_GROUP, 2);
        break;
    case FAULT_BROKER_DOWN:
        if (!kf->down_pending && !kf->down_broker && c->p.broker_down) {
            kf->down_pending = true; /* counted when it happens (broker_down) */
        }
        return;
    case FAULT_COORDINATOR:
    case N_FAULT_KINDS:
        kind = FAULT_COORDINATOR;
        if (vg_mock_kafka_move_coordinator(mk, c->e.group, 1 + (int32_t)rnd(c, N_BROKERS), errstr,
                                           sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "chaos: %s\n", errstr);
            return;
        }
        break;
    }
    kf->count[kind]++;
    c->n.faults++;
}

/*
 * Right after an instance was restarted: its process may still be between
 * fork and exec, holding copies of the test process's sockets, the mock
 * brokers' listeners among them. librdkafka's mock re-binds a downed
 * broker's port and used to abort the whole run exactly then; the mock's
 * fork guard (consumer/mock.c) is what makes this safe.
 */
static void broker_down(struct chaos *c, struct kafka_faults *kf)
{
    kf->down_pending = false;
    kf->down_broker = 1 + (int)rnd(c, N_BROKERS);
    kf->up_at_ms = vg_mono_ms() + 2000 + rnd(c, 2000);
    vg_mock_kafka_broker_set_down(c->e.kafka, kf->down_broker, true);
    kf->count[FAULT_BROKER_DOWN]++;
    c->n.faults++;
}

static void kafka_heal(struct chaos *c, struct kafka_faults *kf, bool now)
{
    if (kf->down_broker && (now || vg_mono_ms() >= kf->up_at_ms)) {
        vg_mock_kafka_broker_set_down(c->e.kafka, kf->down_broker, false);
        kf->down_broker = 0;
    }
}

/* ---- The run ---- */

static void run_chaos(struct chaos *c, struct kafka_faults *kfp)
{
    struct kafka_faults kf = {0};
    int64_t start = vg_mono_ms();
    int64_t end = start + (int64_t)c->p.seconds * 1000;
    int64_t next_kill = start + 3000;
    int64_t next_receiver = start;
    int64_t next_kafka = start + 1500;
    /* Redis restarts at a third and two thirds of the run */
    int64_t redis_at[2] = {start + (end - start) / 3, start + (end - start) * 2 / 3};
    int redis_done = 0;

    while (vg_mono_ms() < end) {
        int64_t now = vg_mono_ms();
        struct timespec ts = {0, 50 * 1000 * 1000};

        reap_crashed(c);
        if (now >= next_kill && redis_done < 2 && redis_at[redis_done] - now < 3000) {
            /*
             * vigil refuses to start while Redis is unreachable (exit 1, and
             * the supervisor restarts it: docs/deploy.md); an instance
             * restarted just before Redis goes down would count as a crash.
             * The kill waits until Redis is back.
             */
            next_kill = redis_at[redis_done];
        } else if (now >= next_kill) {
            kill_one(c);
            if (kf.down_pending) {
                broker_down(c, &kf);
            }
            /* 6 s of session timeout hold each rejoin: the group must also get to work between
             * kills */
            next_kill = now + 6000 + rnd(c, 4000);
        }
        if (now >= next_receiver) {
            receiver_mode(c, false);
            next_receiver = now + 1000 + rnd(c, 2000);
        }
        if (now >= next_kafka) {
            kafka_fault(c, &kf);
            next_kafka = now + 2000 + rnd(c, 2000);
        }
        kafka_heal(c, &kf, false);
        if (redis_done < 2 && now >= redis_at[redis_done]) {
            if (!(c->p.cluster ? failover_primary(c) : restart_redis(c))) {
                c->n.crashes++; /* counted as a failure of the run */
            }
            redis_done++;
        }
        nanosleep(&ts, NULL);
    }
    /* everything healthy again */
    kafka_heal(c, &kf, true);
    receiver_mode(c, true);
    reap_crashed(c);
    reconnect_test_redis(c);
    *kfp = kf;
}

/* ---- The checks ---- */

static void check_pages(struct chaos *c)
{
    struct vg_map *want = vg_ref_expected_pages(&c->log);
    size_t n_req = vg_http_receiver_count(c->e.rcv);
    size_t iter = 0;
    const char *key;
    void *v;

    c->n.expected = vg_map_count(want);
    for (size_t i = 0; i < n_req; i++) {
        struct vg_http_request *req = vg_http_receiver_request(c->e.rcv, i);
        const char *idem = vg_http_request_header(req, "Idempotency-Key");
        const char *wid = vg_http_request_header(req, "webhook-id");
        char *k = vg_ref_page_key(req);
        struct vg_ref_page *s = k ? vg_map_get(want, k) : NULL;

        if (!s) {
            if (req->answer_status >= 200 && req->answer_status < 300) {
                if (c->n.unexpected < 10) {
                    fprintf(stderr, "chaos: unexpected page %s\n", k ? k : req->body);
                }
                c->n.unexpected++;
            }
        } else {
            if (!idem || !wid || strcmp(idem, wid) != 0 || (s->idem && strcmp(s->idem, idem))) {
                if (c->n.id_mismatches < 10) {
                    fprintf(stderr, "chaos: page %s: idempotency id %s / %s, first %s\n", k,
                            idem ? idem : "-", wid ? wid : "-", s->idem ? s->idem : "-");
                }
                c->n.id_mismatches++;
            }
            vg_ref_page_answered(s, idem, req->answer_status);
        }
        free(k);
        vg_http_request_free(req);
    }
    iter = 0;
    while (vg_map_next(want, &iter, &key, &v)) {
        struct vg_ref_page *s = v;

        if (s->delivered == 0) {
            if (c->n.lost < 10) {
                fprintf(stderr, "chaos: page never delivered: %s\n", key);
            }
            c->n.lost++;
        } else {
            c->n.delivered++;
            c->n.duplicates += s->delivered - 1;
        }
    }
    vg_map_destroy(want, vg_ref_page_free);
}

static void check_dlq(struct chaos *c)
{
    struct vg_test_dead_letter *dl = NULL;
    size_t n_dl = 0;
    unsigned char *got = vg_calloc(c->n.poison + 1, 1);

    if (!vg_test_env_read_dlq(&c->e, &dl, &n_dl)) {
        c->n.dlq_missing = c->n.poison;
        free(got);
        return;
    }
    for (size_t i = 0; i < n_dl; i++) {
        const char *p = strstr(dl[i].payload, "\"chaos-poison\": ");
        char *end = NULL;
        unsigned long x;

        if (!p) {
            continue;
        }
        errno = 0;
        x = strtoul(p + strlen("\"chaos-poison\": "), &end, 10);
        if (!errno && end && *end == ',' && x < c->n.poison) {
            got[x] = 1;
        }
    }
    for (size_t i = 0; i < c->n.poison; i++) {
        if (!got[i]) {
            if (c->n.dlq_missing < 10) {
                fprintf(stderr, "chaos: poison message %zu is not in the DLQ\n", i);
            }
            c->n.dlq_missing++;
        }
    }
    vg_test_dead_letters_free(dl, n_dl);
    free(got);
}

struct exits {
    struct chaos *c;
    int status[N_INSTANCES];
};

/* Every instance exited (reaped here, status recorded). */
static bool all_exited(void *arg)
{
    struct exits *x = arg;
    bool all = true;

    for (int i = 0; i < N_INSTANCES; i++) {
        int status;

        if (x->c->pid[i] <= 0) {
            continue;
        }
        if (waitpid(x->c->pid[i], &status, WNOHANG) == x->c->pid[i]) {
            x->status[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            x->c->pid[i] = 0;
        } else {
            all = false;
        }
    }
    return all;
}

/* One SIGTERM to each instance: all exit 0 within 10 s (the drain's bound), else counted. */
static int stop_instances(struct chaos *c)
{
    struct exits x = {.c = c};
    int bad = 0;

    for (int i = 0; i < N_INSTANCES; i++) {
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGTERM);
        }
    }
    if (!vg_test_wait_for(all_exited, &x, 10000)) {
        for (int i = 0; i < N_INSTANCES; i++) {
            if (c->pid[i] > 0) {
                fprintf(stderr, "chaos: instance %d still runs 10 s after SIGTERM\n", i);
                kill(c->pid[i], SIGKILL);
                waitpid(c->pid[i], NULL, 0);
                c->pid[i] = 0;
                bad++;
            }
        }
    }
    for (int i = 0; i < N_INSTANCES; i++) {
        if (x.status[i] != 0) {
            fprintf(stderr, "chaos: instance %d: SIGTERM gave exit status %d\n", i, x.status[i]);
            bad++;
        }
    }
    return bad;
}

/* ---- What the topic holds, and what vigil applied of it ---- */

/* One message the generator produced: its event (-1: a poison message), and how often it is in
 * the topic. */
struct produced {
    long ev;
    size_t held;
};

static char *message_key(const char *key, const char *payload)
{
    return vg_asprintf("%s\n%s", key, payload);
}

/* Every message produced, by key and payload. */
static struct vg_map *produced_map(struct chaos *c)
{
    struct vg_map *m = vg_map_new();

    for (size_t i = 0; i < c->log.n_evs; i++) {
        const struct vg_ref_event *ev = &c->log.evs[i];
        char *json = vg_ref_event_json(&c->log, ev);
        char *k = message_key(c->log.res[ev->res].id, json);
        struct produced *pm = vg_calloc(1, sizeof(*pm));

        pm->ev = (long)i;
        free(vg_map_put(m, k, pm)); /* the same event twice is the same message */
        free(k);
        free(json);
    }
    for (size_t i = 0; i < c->n.poison; i++) {
        char *bad = vg_asprintf("{\"chaos-poison\": %zu, not json", i);
        char *bkey = vg_asprintf("poison-%zu", i);
        char *k = message_key(bkey, bad);
        struct produced *pm = vg_calloc(1, sizeof(*pm));

        pm->ev = -1;
        free(vg_map_put(m, k, pm));
        free(k);
        free(bad);
        free(bkey);
    }
    return m;
}

/*
 * The topic against the produced log. librdkafka 2.0.2's mock checks
 * producer sequence numbers only for transactional producers: when a
 * broker goes down after it appended a produce request but before its
 * answer left, the idempotent producer sends the request again and the
 * mock appends it a second time (its copies). A copy of an event that
 * comes before any later event of its Resource is a no-op for vigil (equal
 * time, later offset: the same values again, nothing written;
 * docs/state.md) and for the model alike, so the model of the produced
 * log is the model of the topic as long as no event is late; a late one
 * (a copy behind a newer event of its Resource) would be recorded as late
 * by vigil and is counted here. Nothing may be missing: the generator
 * keeps one produce request in flight, so a batch that failed is sent
 * again rather than taken for written because a later one succeeded
 * (kafka.h). Returns the number of failures: a message produced but
 * missing, one never produced, a late one, a partition whose old data the
 * mock dropped (first offset above 0).
 */
static int check_topic(struct chaos *c, const struct chaos_topic *t)
{
    struct vg_map *m = produced_map(c);
    int64_t *newest = vg_calloc(c->log.n_res ? c->log.n_res : 1, sizeof(*newest));
    size_t held = 0;
    size_t copies = 0;
    size_t late = 0;
    size_t missing = 0;
    size_t unknown = 0;
    int truncated = 0;
    size_t iter = 0;
    const char *key;
    void *v;

    for (int p = 0; p < t->partitions; p++) {
        const struct chaos_partition *cp = &t->part[p];

        if (cp->low != 0) {
            fprintf(stderr,
                    "chaos: partition %d starts at offset %lld: the mock dropped its "
                    "oldest messages\n",
                    p, (long long)cp->low);
            truncated++;
        }
        for (size_t i = 0; i < cp->n; i++) {
            const struct chaos_msg *msg = &cp->msgs[i];
            char *k = message_key(msg->key, msg->payload);
            struct produced *pm = vg_map_get(m, k);

            free(k);
            held++;
            if (!pm) {
                if (unknown++ < 10) {
                    fprintf(stderr, "chaos: %d/%lld was never produced: %s\n", p,
                            (long long)msg->offset, msg->payload);
                }
                continue;
            }
            if (pm->held++ > 0 && copies++ < 10) {
                fprintf(stderr,
                        "chaos: %d/%lld is a copy of a message already at an earlier "
                        "offset (the mock appended a retried produce request again)\n",
                        p, (long long)msg->offset);
            }
            if (pm->ev >= 0) {
                const struct vg_ref_event *ev = &c->log.evs[pm->ev];

                if (ev->time_ms < newest[ev->res]) {
                    if (late++ < 10) {
                        fprintf(stderr, "chaos: %d/%lld is late (behind a newer event of %s)\n", p,
                                (long long)msg->offset, c->log.res[ev->res].id);
                    }
                } else {
                    newest[ev->res] = ev->time_ms;
                }
            }
        }
    }
    while (vg_map_next(m, &iter, &key, &v)) {
        const struct produced *pm = v;

        if (pm->held == 0 && missing++ < 10) {
            fprintf(stderr, "chaos: produced but not in the topic: %s\n", key);
        }
    }
    printf("chaos: topic: %zu messages produced, %zu held (copies %zu, late %zu, missing %zu, "
           "never produced %zu)\n",
           vg_map_count(m), held, copies, late, missing, unknown);
    vg_map_destroy(m, free);
    free(newest);
    return truncated + (int)(late + missing + unknown);
}

struct applied_ends {
    struct chaos *c;
    const struct chaos_topic *t;
};

/* Every partition's applied offset is its last offset (none in Redis for an empty partition). */
static bool applied_to_ends(void *arg)
{
    struct applied_ends *ae = arg;
    char errstr[256];

    for (int p = 0; p < ae->t->partitions; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(ae->c->e.st, ae->c->e.topic, p, &off, errstr, sizeof(errstr)) !=
                VG_OK ||
            off != ae->t->part[p].high - 1) {
            return false;
        }
    }
    return true;
}

/* Each partition's end offset and applied offset, after they did not match. */
static void print_offsets(struct chaos *c, const struct chaos_topic *t)
{
    char errstr[256];

    fprintf(stderr, "chaos: last offset / applied offset:");
    for (int p = 0; p < t->partitions; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(c->e.st, c->e.topic, p, &off, errstr, sizeof(errstr)) !=
            VG_OK) {
            fprintf(stderr, " [%d] %lld/?", p, (long long)t->part[p].high - 1);
        } else {
            fprintf(stderr, " [%d] %lld/%lld%s", p, (long long)t->part[p].high - 1, (long long)off,
                    off == t->part[p].high - 1 ? "" : " (!)");
        }
    }
    fprintf(stderr, "\n");
}

/*
 * Exactly what the topic holds is applied: each partition's applied
 * offset in Redis reaches its last offset and not beyond. Returns the
 * number of failures (0 or 1).
 */
static int check_applied(struct chaos *c)
{
    struct chaos_topic t;
    struct applied_ends ae = {.c = c, .t = &t};
    int failures = 0;

    if (!chaos_topic_read(vg_mock_kafka_bootstraps(c->e.kafka), c->e.topic, N_PARTITIONS, 60000,
                          &t)) {
        chaos_topic_fini(&t);
        return 1;
    }
    failures += check_topic(c, &t);
    if (!vg_test_wait_for(applied_to_ends, &ae, 240000)) {
        fprintf(stderr, "chaos: the applied offsets did not reach the end of every partition\n");
        print_offsets(c, &t);
        failures++;
    }
    chaos_topic_fini(&t);
    return failures;
}

static bool gen_done(void *arg)
{
    struct chaos *c = arg;
    bool done;

    pthread_mutex_lock(&c->mu);
    done = c->gen_done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

int main(void)
{
    static struct chaos C;
    struct chaos *c = &C;
    struct vg_test_env_opts o = {
        .partitions = N_PARTITIONS,
        .brokers = N_BROKERS,
        .http = true, /* on 127.0.0.1:0: the instances never compete for a port */
        .sinks = "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", max_attempts: 1000, "
                 "timeout: 2s}\n",
        /*
         * The generator streams while brokers go down and leaders move: with
         * several requests in flight, librdkafka reported a batch that failed
         * (and the mock never wrote) delivered when a later one succeeded, and
         * an event was missing from the topic (kafka.h, the stream properties).
         */
        .producer_props = vg_test_kafka_stream_props,
        .n_producer_props = VG_TEST_KAFKA_N_STREAM_PROPS,
    };
    int failures = 0;
    int stop_bad;
    int paused = 0;
    int refused = 0;
    int resets = 0;
    struct kafka_faults kf = {0};
    char *cluster_url = NULL;

    vg_test_no_proxy();
    c->p.events = (size_t)env_long("VIGIL_CHAOS_EVENTS", 3000);
    c->p.resources = (size_t)env_long("VIGIL_CHAOS_RESOURCES", 500);
    c->p.seconds = (int)env_long("VIGIL_CHAOS_SECONDS", 45);
    c->p.seed = (unsigned)env_long("VIGIL_CHAOS_SEED", (long)getpid());
    c->p.broker_down = env_flag("VIGIL_CHAOS_BROKER_DOWN", true);
    {
        const char *redis = getenv("VIGIL_CHAOS_REDIS");

        c->p.cluster = redis && strcmp(redis, "cluster") == 0;
        c->p.partitioned = c->p.cluster || (redis && strcmp(redis, "partitioned") == 0);
        if (redis && *redis && !c->p.partitioned && strcmp(redis, "single") != 0) {
            fprintf(stderr, "chaos: VIGIL_CHAOS_REDIS=%s is not single, partitioned or cluster\n",
                    redis);
            return 1;
        }
    }
    c->rnd = c->p.seed * 7919u + 1;
    pthread_mutex_init(&c->mu, NULL);
    printf("chaos: seed %u, %zu events over %zu resources, %d s of faults%s%s\n", c->p.seed,
           c->p.events, c->p.resources, c->p.seconds, c->p.broker_down ? "" : " (no broker down)",
           c->p.cluster       ? ", on a Redis Cluster"
           : c->p.partitioned ? ", layout partitioned on one Redis"
                              : "");
    fflush(stdout);
    /* failures, recoveries, stuck pendings, status flips */
    vg_ref_log_make_runtimes(&c->log, "chaos", c->p.resources, c->p.events, c->p.seed, 10);
    if (c->p.cluster) {
        /* three primaries, one replica each; vigil is given a replica's address and finds the
         * primaries itself */
        if (vg_test_cluster_start(&c->rc, "chaos", 3, 1) != 0) {
            return 1;
        }
        int replica = vg_test_cluster_replica_of(&c->rc, 0);

        if (replica < 0) {
            fprintf(stderr, "chaos: node 0 has no replica\n");
            vg_test_cluster_stop(&c->rc);
            return 1;
        }
        cluster_url = vg_strdup(vg_test_cluster_url(&c->rc, (size_t)replica));
        o.redis_cluster_url = cluster_url;
    }
    if (c->p.partitioned) {
        o.layout = "partitioned";
    }
    if (vg_test_env_start(&c->e, "chaos", &o) != 0) {
        fprintf(stderr, "chaos: environment did not start\n");
        if (c->p.cluster) {
            vg_test_cluster_stop(&c->rc);
        }
        return 1;
    }
    for (int i = 0; i < N_INSTANCES; i++) {
        if (!spawn_instance(c, i)) {
            vg_test_env_stop(&c->e);
            return 1;
        }
    }
    if (pthread_create(&c->gen, NULL, generate, c) != 0) {
        fprintf(stderr, "chaos: cannot start the generator\n");
        return 1;
    }
    run_chaos(c, &kf);
    /* healthy from here on: everything produced must be applied, and every page delivered */
    if (!vg_test_wait_for(gen_done, c, 180000)) {
        fprintf(stderr, "chaos: the generator did not finish\n");
        failures++;
    }
    pthread_join(c->gen, NULL);
    if (!c->gen_ok) {
        failures++;
    }
    failures += check_applied(c);
    if (!vg_test_env_wait_quiet(&c->e, 180000)) {
        failures++;
    }
    reap_crashed(c);
    check_pages(c);
    check_dlq(c);
    c->n.state_mismatches = vg_ref_check_redis(c->e.st, &c->log);
    stop_bad = stop_instances(c);
    printf("chaos: events %zu, poison %zu, kills %d, redis restarts %d, primary failovers %d, "
           "faults %d, crashes %d\n"
           "chaos: expected %zu, delivered %zu, duplicates %zu, lost %zu, unexpected %zu, "
           "id mismatches %zu\n"
           "chaos: dlq missing %zu, state mismatches %d, unclean stops %d\n",
           c->n.events, c->n.poison, c->n.kills, c->n.redis_restarts, c->n.failovers, c->n.faults,
           c->n.crashes, c->n.expected, c->n.delivered, c->n.duplicates, c->n.lost, c->n.unexpected,
           c->n.id_mismatches, c->n.dlq_missing, c->n.state_mismatches, stop_bad);
    failures += c->n.crashes + (int)c->n.lost + (int)c->n.unexpected + (int)c->n.id_mismatches +
                (int)c->n.dlq_missing + c->n.state_mismatches + stop_bad;
    printf("chaos: kafka faults: fetch errors %d, commit errors %d, join errors %d, "
           "broker downs %d, coordinator moves %d\n",
           kf.count[FAULT_FETCH], kf.count[FAULT_COMMIT], kf.count[FAULT_JOIN],
           kf.count[FAULT_BROKER_DOWN], kf.count[FAULT_COORDINATOR]);
    if (c->n.expected == 0 || c->n.kills == 0) {
        fprintf(stderr, "chaos: nothing was tested (no expected page or no kill)\n");
        failures++;
    }
    if (c->p.cluster ? c->n.failovers == 0 : c->n.redis_restarts == 0) {
        fprintf(stderr, "chaos: Redis never failed (the run is too short)\n");
        failures++;
    }
    if (c->p.broker_down && kf.count[FAULT_BROKER_DOWN] == 0) {
        fprintf(stderr, "chaos: no broker was taken down (the run is too short)\n");
        failures++;
    }
    {
        /* SIGKILLed runs are no failure, a sanitizer report in any run is */
        char *logs = vg_test_env_logs(&c->e);

        if (logs && (strstr(logs, "runtime error:") || strstr(logs, "Sanitizer"))) {
            fprintf(stderr, "chaos: a sanitizer report in the logs of vigil\n");
            failures++;
        }
        /* how often the faults made a batch fail and wait (proof that they hit) */
        for (const char *p = logs; p && (p = strstr(p, "apply failed, pausing")); p++) {
            paused++;
        }
        /* commits the partition fence refused (logged at most once per partition per 10 s) */
        for (const char *p = logs; p && (p = strstr(p, "commit refused topic=")); p++) {
            refused++;
        }
        /*
         * Offsets never start again here (one cluster, the topic never created
         * again): a reset means vigil took replays for new messages.
         */
        for (const char *p = logs; p && (p = strstr(p, "offsets started again")); p++) {
            resets++;
        }
        free(logs);
    }
    printf("chaos: batches paused on a failure %d, commits refused by the fence (logged) %d, "
           "offsets started again (logged) %d\n",
           paused, refused, resets);
    if (resets > 0) {
        fprintf(stderr, "chaos: vigil took replayed messages for new ones\n");
        failures++;
    }
    if (failures) {
        vg_test_env_dump_logs(&c->e);
    }
    c->e.unclean_exit_ok = true; /* the SIGKILLs; sanitizer reports still fail the stop */
    if (vg_test_env_stop(&c->e) != 0) {
        failures++;
    }
    if (c->p.cluster) {
        vg_test_cluster_stop(&c->rc);
    }
    vg_free(cluster_url);
    vg_ref_log_fini(&c->log);
    pthread_mutex_destroy(&c->mu);
    printf("chaos: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
