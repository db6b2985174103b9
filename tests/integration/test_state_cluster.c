/*
 * The Redis Cluster client of state/ (state_cluster.c) on a real cluster:
 * six redis-server processes (three primaries, one replica each) created
 * with redis-cli. Key slots against CLUSTER KEYSLOT, routing to every
 * primary, a single-slot MULTI/EXEC (and one whose EXEC reply is lost),
 * ASK during a hand-made migration, a reshard and a primary killed while a
 * writer runs.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "redis_cluster.h"
#include "state_cluster.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static struct vg_test_cluster g_rc;

static int group_setup(void **state)
{
    (void)state;
    return vg_test_cluster_start(&g_rc, "state-cluster", 3, 1);
}

static int group_teardown(void **state)
{
    (void)state;
    vg_test_cluster_stop(&g_rc);
    return 0;
}

static struct state_cluster *client(size_t node)
{
    struct state_cluster *cl = NULL;
    char errstr[512] = "";
    vg_err_t err = state_cluster_new(&cl, vg_test_cluster_url(&g_rc, node), errstr, sizeof(errstr));

    if (err != VG_OK) {
        fail_msg("state_cluster_new: %s: %s", vg_err_name(err), errstr);
    }
    return cl;
}

static uint16_t slot_of(const char *key)
{
    return state_cluster_keyslot(key, strlen(key));
}

/* One command on the key's slot; the reply is freed. */
static vg_err_t run(struct state_cluster *cl, enum state_cluster_mode mode, const char *key,
                    int argc, const char **argv, long long *integer)
{
    size_t lens[8];
    redisReply *r = NULL;
    char errstr[512] = "";
    vg_err_t err;

    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    err = state_cluster_run(cl, slot_of(key), mode, argc, argv, lens, &r, errstr, sizeof(errstr));
    if (err != VG_OK) {
        print_message("%s %s: %s: %s\n", argv[0], key, vg_err_name(err), errstr);
        return err;
    }
    if (integer) {
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        *integer = r->integer;
    }
    freeReplyObject(r);
    return VG_OK;
}

static vg_err_t incr(struct state_cluster *cl, const char *key, long long *out)
{
    const char *argv[] = {"INCR", key};

    return run(cl, STATE_CLUSTER_ONCE, key, 2, argv, out);
}

static long long value_of(const char *key)
{
    char *v = vg_test_cluster_get(&g_rc, key);
    int64_t n = -1;

    if (v && !vg_parse_i64(v, &n)) {
        fail_msg("%s holds \"%s\"", key, v);
    }
    vg_free(v);
    return v ? n : -1;
}

/* A raw command to node i; the reply is checked against `want` (a status or bulk text, or NULL). */
static void raw(size_t i, const char *want, const char *fmt, ...)
{
    redisContext *ctx = vg_test_cluster_connect(&g_rc, i);
    redisReply *r;
    va_list ap;

    assert_non_null(ctx);
    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR || (want && strcmp(r->str ? r->str : "", want) != 0)) {
        fail_msg("node %zu: %s: %s", i, fmt, r->str ? r->str : "(no text)");
    }
    freeReplyObject(r);
    redisFree(ctx);
}

/* The fixture's index of the client's node `nd` (by port). */
static int fixture_index(const struct state_cluster *cl, size_t nd)
{
    for (size_t i = 0; i < g_rc.n; i++) {
        if (g_rc.nodes[i].port == cl->nodes[nd].conn.url.port) {
            return (int)i;
        }
    }
    fail_msg("node %s is not one of the fixture's", cl->nodes[nd].addr);
    return -1;
}

/* ---- key slots ---------------------------------------------------------- */

static void test_keyslot(void **state)
{
    static const struct {
        const char *key;
        int want; /* -1: only CLUSTER KEYSLOT */
    } cases[] = {
        {"foo", 12182},
        {"123456789", 12739}, /* CRC16-XMODEM check value 0x31C3, mod 16384 */
        {"{user1000}.following", -1},
        {"{user1000}.followers", -1},
        {"{}foo", -1},
        {"foo{}{bar}", -1},
        {"foo{{bar}}zap", -1},
        {"foo{bar}{zap}", -1},
        {"{a", -1},
        {"a}", -1},
        {"", 0},
        {"vigil:res:{workflow/prod/nightly}", -1},
    };
    redisContext *ctx = vg_test_cluster_connect(&g_rc, 0);
    int bad = 0;

    (void)state;
    assert_non_null(ctx);
    for (size_t i = 0; i < VG_ARRAY_LEN(cases) + 2000; i++) {
        char gen[64];
        const char *key = gen;
        int want = -1;
        redisReply *r;
        uint16_t got;

        if (i < VG_ARRAY_LEN(cases)) {
            key = cases[i].key;
            want = cases[i].want;
        } else if (i % 2) {
            snprintf(gen, sizeof(gen), "key:%zu", i);
        } else {
            snprintf(gen, sizeof(gen), "p:%zu:{t%zu}:x", i, i / 7);
        }
        got = slot_of(key);
        r = redisCommand(ctx, "CLUSTER KEYSLOT %b", key, strlen(key));
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        if (got != r->integer || (want >= 0 && got != want)) {
            print_message("case %zu \"%s\": got %u, CLUSTER KEYSLOT %lld, want %d\n", i, key, got,
                          r->integer, want);
            bad++;
        }
        freeReplyObject(r);
    }
    redisFree(ctx);
    assert_int_equal(bad, 0);
    assert_int_equal(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
    assert_int_not_equal(slot_of("{}foo"), slot_of("foo"));
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
}

/* ---- routing ------------------------------------------------------------ */

struct primaries {
    size_t n;
    char addr[4][64];
};

static vg_err_t note_primary(void *arg, uint16_t slot, const char *addr)
{
    struct primaries *p = arg;

    (void)slot;
    if (p->n < VG_ARRAY_LEN(p->addr)) {
        snprintf(p->addr[p->n], sizeof(p->addr[0]), "%s", addr);
    }
    p->n++;
    return VG_OK;
}

static void test_routing_to_every_primary(void **state)
{
    /* Seeded with a replica's address: the map names the primaries all the same. */
    struct state_cluster *cl = client(g_rc.n - 1);
    struct primaries seen = {0};
    bool owner_used[VG_TEST_CLUSTER_MAX_NODES] = {false};
    size_t owners = 0;
    char errstr[512] = "";

    (void)state;
    for (int i = 0; i < 300; i++) {
        char key[32];
        char value[32];
        const char *argv[] = {"SET", key, value};
        int owner;

        snprintf(key, sizeof(key), "route:%d", i);
        snprintf(value, sizeof(value), "%d", i * 7);
        assert_int_equal(run(cl, STATE_CLUSTER_ONCE, key, 3, argv, NULL), VG_OK);
        /* where the client sent it is where the cluster says the slot lives */
        owner = vg_test_cluster_owner(&g_rc, 0, slot_of(key));
        assert_int_equal(fixture_index(cl, cl->slots[slot_of(key)]), owner);
        if (!owner_used[owner]) {
            owner_used[owner] = true;
            owners++;
        }
        assert_int_equal(value_of(key), i * 7);
    }
    assert_int_equal(owners, 3);
    assert_int_equal(cl->stats.moved, 0);
    assert_int_equal(state_cluster_each_primary(cl, note_primary, &seen, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(seen.n, 3);
    assert_string_not_equal(seen.addr[0], seen.addr[1]);
    assert_string_not_equal(seen.addr[1], seen.addr[2]);
    assert_string_not_equal(seen.addr[0], seen.addr[2]);
    state_cluster_destroy(cl);
}

static void test_not_a_cluster_or_bad_url(void **state)
{
    struct state_cluster *cl = NULL;
    char errstr[512] = "";

    (void)state;
    assert_int_equal(state_cluster_new(&cl, "redis://127.0.0.1:6379/3", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_non_null(strstr(errstr, "db 0"));
    assert_int_equal(state_cluster_new(&cl, "unix:///tmp/x.sock", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_null(cl);
}

/* ---- transactions ------------------------------------------------------- */

static void tx_add(struct state_cluster_batch *b, int argc, const char **argv)
{
    size_t lens[8];

    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    state_cluster_batch_add(b, argc, argv, lens);
}

/* MULTI, INCR of each key, EXEC, on the slot of keys[0]. */
static vg_err_t tx_incr(struct state_cluster *cl, const char *const *keys, size_t n)
{
    struct state_cluster_batch b = {0};
    redisReply **replies = vg_calloc(n + 2, sizeof(*replies));
    const char *multi[] = {"MULTI"};
    const char *exec[] = {"EXEC"};
    char errstr[512] = "";
    vg_err_t err;

    tx_add(&b, 1, multi);
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"INCR", keys[i]};

        tx_add(&b, 2, argv);
    }
    tx_add(&b, 1, exec);
    err = state_cluster_pipeline(cl, slot_of(keys[0]), &b, STATE_CLUSTER_TX, replies, errstr,
                                 sizeof(errstr));
    if (err == VG_OK) {
        assert_int_equal(replies[n + 1]->type, REDIS_REPLY_ARRAY);
        assert_int_equal(replies[n + 1]->elements, n);
        state_replies_free(replies, n + 2);
    } else {
        print_message("transaction on %s: %s: %s\n", keys[0], vg_err_name(err), errstr);
    }
    vg_free(replies);
    state_cluster_batch_fini(&b);
    return err;
}

static void test_single_slot_transaction(void **state)
{
    struct state_cluster *cl = client(0);
    struct state_cluster_batch b = {0};
    size_t n = 202;
    redisReply **replies = vg_calloc(n, sizeof(*replies));
    char errstr[512] = "";
    const char *multi[] = {"MULTI"};
    const char *exec[] = {"EXEC"};
    const char *bad[] = {"SET", "{tx-bad}a"};
    const char *good[] = {"SET", "{tx-bad}b", "1"};

    (void)state;
    tx_add(&b, 1, multi);
    for (int i = 0; i < 200; i++) {
        char key[32];
        char value[16];
        const char *argv[] = {"SET", key, value};

        snprintf(key, sizeof(key), "{tx}k%d", i);
        snprintf(value, sizeof(value), "%d", i);
        tx_add(&b, 3, argv);
    }
    tx_add(&b, 1, exec);
    assert_int_equal(b.n, n);
    assert_int_equal(state_cluster_pipeline(cl, slot_of("{tx}"), &b, STATE_CLUSTER_TX, replies,
                                            errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(replies[n - 1]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(replies[n - 1]->elements, 200);
    state_replies_free(replies, n);
    for (int i = 0; i < 200; i++) {
        char key[32];

        snprintf(key, sizeof(key), "{tx}k%d", i);
        assert_int_equal(value_of(key), i);
    }

    /* A command the server refuses to queue aborts the whole transaction: judged here, nothing
     * applied. */
    state_cluster_batch_reset(&b);
    tx_add(&b, 1, multi);
    tx_add(&b, 3, good);
    tx_add(&b, 2, bad);
    tx_add(&b, 1, exec);
    assert_int_equal(state_cluster_pipeline(cl, slot_of("{tx-bad}"), &b, STATE_CLUSTER_TX, replies,
                                            errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_non_null(strstr(errstr, "wrong number of arguments"));
    assert_int_equal(value_of("{tx-bad}b"), -1);
    assert_int_equal(cl->stats.tx_retries, 0);
    vg_free(replies);
    state_cluster_batch_fini(&b);
    state_cluster_destroy(cl);
}

/*
 * The reply to EXEC lost (here: the node is busy in a script longer than the connection's read
 * timeout): the transaction may have run, so it is not sent again; the caller hears
 * VG_ERR_BACKEND "outcome unknown".
 */
static void test_lost_exec_reply_is_not_resent(void **state)
{
    static const char busy[] = "local t0 = redis.call('TIME') "
                               "repeat local t = redis.call('TIME') "
                               "until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 300000 "
                               "return 1";
    struct state_cluster *cl = client(0);
    struct state_cluster_batch b = {0};
    redisReply *replies[4];
    char errstr[512] = "";
    const char *multi[] = {"MULTI"};
    const char *incr_cmd[] = {"INCR", "{lost}n"};
    const char *eval[] = {"EVAL", busy, "1", "{lost}n"};
    const char *exec[] = {"EXEC"};
    redisContext *ctx;
    long long v = 0;

    (void)state;
    assert_int_equal(incr(cl, "{lost}m", &v), VG_OK); /* connects the slot's node */
    ctx = cl->nodes[cl->slots[slot_of("{lost}n")]].conn.ctx;
    assert_non_null(ctx);
    assert_int_equal(redisSetTimeout(ctx, (struct timeval){.tv_sec = 0, .tv_usec = 100000}),
                     REDIS_OK);
    tx_add(&b, 1, multi);
    tx_add(&b, 2, incr_cmd);
    tx_add(&b, 4, eval);
    tx_add(&b, 1, exec);
    assert_int_equal(state_cluster_pipeline(cl, slot_of("{lost}n"), &b, STATE_CLUSTER_TX, replies,
                                            errstr, sizeof(errstr)),
                     VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "outcome unknown"));
    assert_int_equal(value_of("{lost}n"), 1); /* it did run, once */
    assert_int_equal(cl->stats.tx_retries, 0);
    /* the client carries on with a new connection */
    assert_int_equal(incr(cl, "{lost}n", &v), VG_OK);
    assert_int_equal(v, 2);
    state_cluster_batch_fini(&b);
    state_cluster_destroy(cl);
}

/* ---- a migration by hand: ASK ------------------------------------------- */

static void test_ask_during_migration(void **state)
{
    struct state_cluster *cl = client(0);
    uint16_t slot = slot_of("{ask}");
    int from = fixture_index(cl, cl->slots[slot]);
    int to = vg_test_cluster_other_primary(&g_rc, from);
    char *from_id = vg_test_cluster_id(&g_rc, (size_t)from);
    char *to_id = vg_test_cluster_id(&g_rc, (size_t)to);
    const char *both[] = {"{ask}x1", "{ask}x2"};
    const char *x1 = both[0];
    const char *x2 = both[1];
    struct state_cluster_batch b = {0};
    redisReply *replies[2];
    char errstr[512] = "";
    long long v = 0;

    (void)state;
    assert_true(to >= 0 && to != from);
    assert_int_equal(incr(cl, x1, &v), VG_OK);
    assert_int_equal(incr(cl, x2, &v), VG_OK);

    /* The slot half moved: x1 on the importing node, x2 still on the migrating one. */
    raw((size_t)to, "OK", "CLUSTER SETSLOT %d IMPORTING %s", slot, from_id);
    raw((size_t)from, "OK", "CLUSTER SETSLOT %d MIGRATING %s", slot, to_id);
    raw((size_t)from, "OK", "MIGRATE 127.0.0.1 %d %b 0 5000 KEYS %s", g_rc.nodes[to].port, "",
        (size_t)0, x1);

    assert_int_equal(incr(cl, x1, &v), VG_OK); /* ASK: ASKING + INCR on the importing node */
    assert_int_equal(v, 2);
    assert_int_equal(cl->stats.ask, 1);
    assert_int_equal(incr(cl, x2, &v), VG_OK); /* still served where it is */
    assert_int_equal(v, 2);
    assert_int_equal(cl->stats.ask, 1);

    /* A read pipeline: each command is answered where its key is. */
    {
        const char *g1[] = {"GET", x1};
        const char *g2[] = {"GET", x2};

        tx_add(&b, 2, g1);
        tx_add(&b, 2, g2);
        assert_int_equal(state_cluster_pipeline(cl, slot, &b, STATE_CLUSTER_IDEMPOTENT, replies,
                                                errstr, sizeof(errstr)),
                         VG_OK);
        assert_string_equal(replies[0]->str, "2");
        assert_string_equal(replies[1]->str, "2");
        state_replies_free(replies, 2);
        state_cluster_batch_fini(&b);
        assert_int_equal(cl->stats.ask, 2);
    }

    /* A transaction over both keys cannot run on either node while the slot is split: it
     * is refused unapplied and retried until the (short) deadline. */
    cl->deadline_ms = 300;
    assert_int_equal(tx_incr(cl, both, 2), VG_ERR_BACKEND);
    assert_true(cl->stats.tx_retries > 0);
    assert_int_equal(value_of(x1), 2);
    assert_int_equal(value_of(x2), 2);

    /* The migration ends: the slot belongs to `to` on every node. */
    raw((size_t)from, "OK", "MIGRATE 127.0.0.1 %d %b 0 5000 KEYS %s", g_rc.nodes[to].port, "",
        (size_t)0, x2);
    raw((size_t)to, "OK", "CLUSTER SETSLOT %d NODE %s", slot, to_id);
    raw((size_t)from, "OK", "CLUSTER SETSLOT %d NODE %s", slot, to_id);
    for (size_t i = 0; i < g_rc.n; i++) {
        redisContext *ctx =
            (int)i == from || (int)i == to ? NULL : vg_test_cluster_connect(&g_rc, i);
        redisReply *r = ctx ? redisCommand(ctx, "CLUSTER SETSLOT %d NODE %s", slot, to_id) : NULL;

        /* the other primary takes it now; replicas refuse and learn it from their primary */
        if (r) {
            freeReplyObject(r);
        }
        if (ctx) {
            redisFree(ctx);
        }
    }
    cl->deadline_ms = STATE_CLUSTER_DEADLINE_MS;
    assert_int_equal(tx_incr(cl, both, 2), VG_OK); /* MOVED to `to`, then applied whole */
    assert_true(cl->stats.moved >= 1);
    assert_int_equal(fixture_index(cl, cl->slots[slot]), to);
    assert_int_equal(value_of(x1), 3);
    assert_int_equal(value_of(x2), 3);
    assert_true(vg_test_cluster_wait_ready(&g_rc, 10000));
    vg_free(from_id);
    vg_free(to_id);
    state_cluster_destroy(cl);
}

/* ---- a reshard while a writer runs -------------------------------------- */

#define RESHARD_SLOTS 500
#define RESHARD_KEYS 40
#define RESHARD_TAGS 10

static bool child_exited(pid_t pid, int *status)
{
    pid_t r = waitpid(pid, status, WNOHANG);

    return r == pid;
}

static void test_reshard_while_writing(void **state)
{
    struct state_cluster *cl = client(0);
    size_t src = cl->slots[0];
    int from = fixture_index(cl, src);
    int to = vg_test_cluster_other_primary(&g_rc, from);
    char *from_id = vg_test_cluster_id(&g_rc, (size_t)from);
    char *to_id = vg_test_cluster_id(&g_rc, (size_t)to);
    bool *moving = vg_calloc(STATE_CLUSTER_SLOTS, sizeof(*moving));
    char keys[RESHARD_KEYS][32];
    char tags[RESHARD_TAGS][2][40];
    long long acked[RESHARD_KEYS] = {0};
    long long tx_acked[RESHARD_TAGS] = {0};
    char addr[64];
    const char *argv[] = {"--cluster", "reshard",       addr,  "--cluster-from",
                          from_id,     "--cluster-to",  to_id, "--cluster-slots",
                          "500",       "--cluster-yes", NULL};
    size_t n_moving = 0;
    int64_t deadline;
    pid_t pid;
    int status = -1;
    int rounds_after = 0;
    bool exited = false;

    (void)state;
    /* redis-cli moves the source's lowest-numbered slots: the writer's keys live there. */
    for (int s = 0; s < STATE_CLUSTER_SLOTS && n_moving < RESHARD_SLOTS; s++) {
        if (cl->slots[s] == src) {
            moving[s] = true;
            n_moving++;
        }
    }
    for (int i = 0, k = 0, t = 0; k < RESHARD_KEYS || t < RESHARD_TAGS; i++) {
        char key[32];

        snprintf(key, sizeof(key), "rs:%d", i);
        if (!moving[slot_of(key)]) {
            continue;
        }
        if (k < RESHARD_KEYS) {
            snprintf(keys[k++], sizeof(keys[0]), "%s", key);
        } else {
            snprintf(tags[t][0], sizeof(tags[0][0]), "{%s}a", key);
            snprintf(tags[t][1], sizeof(tags[0][1]), "{%s}b", key);
            t++;
        }
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g_rc.nodes[from].port);

    pid = -1;
    deadline = vg_mono_ms() + vg_test_timeout(60000);
    for (int round = 0; !exited || rounds_after < 2; round++) {
        for (int k = 0; k < RESHARD_KEYS; k++) {
            long long v;

            assert_int_equal(incr(cl, keys[k], &v), VG_OK);
            acked[k]++;
            assert_int_equal(v, acked[k]);
        }
        for (int t = 0; t < RESHARD_TAGS; t++) {
            const char *both[] = {tags[t][0], tags[t][1]};

            assert_int_equal(tx_incr(cl, both, 2), VG_OK);
            tx_acked[t]++;
        }
        if (round == 0) {
            pid = vg_test_cluster_cli_spawn(&g_rc, argv, "reshard.log");
            assert_true(pid > 0);
        } else if (!exited) {
            exited = child_exited(pid, &status);
        } else {
            rounds_after++;
        }
        assert_true(vg_mono_ms() < deadline);
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    print_message("reshard of %d slots while writing: moved=%llu ask=%llu tryagain=%llu "
                  "tx_retries=%llu refreshes=%llu\n",
                  RESHARD_SLOTS, (unsigned long long)cl->stats.moved,
                  (unsigned long long)cl->stats.ask, (unsigned long long)cl->stats.tryagain,
                  (unsigned long long)cl->stats.tx_retries,
                  (unsigned long long)cl->stats.refreshes);
    assert_true(cl->stats.moved > 0);
    /* every acknowledged write is there, once */
    for (int k = 0; k < RESHARD_KEYS; k++) {
        assert_int_equal(value_of(keys[k]), acked[k]);
        assert_int_equal(vg_test_cluster_owner(&g_rc, 0, slot_of(keys[k])), to);
    }
    for (int t = 0; t < RESHARD_TAGS; t++) {
        assert_int_equal(value_of(tags[t][0]), tx_acked[t]);
        assert_int_equal(value_of(tags[t][1]), tx_acked[t]);
    }
    assert_true(vg_test_cluster_wait_ready(&g_rc, 10000));
    vg_free(moving);
    vg_free(from_id);
    vg_free(to_id);
    state_cluster_destroy(cl);
}

/* ---- a primary killed while a writer runs ------------------------------- */

#define FAILOVER_KEYS 24

/* SET key value, then WAIT for one replica: acknowledged only once a replica has it. */
static vg_err_t set_replicated(struct state_cluster *cl, const char *key, long long value,
                               bool *replicated)
{
    struct state_cluster_batch b = {0};
    redisReply *replies[2];
    char v[32];
    const char *set[] = {"SET", key, v};
    const char *wait[] = {"WAIT", "1", "200"};
    char errstr[512] = "";
    vg_err_t err;

    snprintf(v, sizeof(v), "%lld", value);
    tx_add(&b, 3, set);
    tx_add(&b, 3, wait);
    /* Setting a value is idempotent: sent again after a lost connection. */
    err = state_cluster_pipeline(cl, slot_of(key), &b, STATE_CLUSTER_IDEMPOTENT, replies, errstr,
                                 sizeof(errstr));
    state_cluster_batch_fini(&b);
    if (err != VG_OK) {
        print_message("SET %s: %s: %s\n", key, vg_err_name(err), errstr);
        return err;
    }
    assert_int_equal(replies[0]->type, REDIS_REPLY_STATUS);
    assert_int_equal(replies[1]->type, REDIS_REPLY_INTEGER);
    *replicated = replies[1]->integer >= 1;
    state_replies_free(replies, 2);
    return VG_OK;
}

static void test_failover_while_writing(void **state)
{
    struct state_cluster *cl = client(0);
    char keys[FAILOVER_KEYS][32];
    bool on_victim[FAILOVER_KEYS];
    long long acked[FAILOVER_KEYS] = {0};
    long long sent[FAILOVER_KEYS] = {0};
    int victim;
    int replica;
    int64_t killed_ms = 0;
    int64_t recovered_ms = 0;
    int64_t deadline = vg_mono_ms() + vg_test_timeout(60000);
    bool restarted = false;
    int all_acked_rounds = 0;

    (void)state;
    for (int k = 0; k < FAILOVER_KEYS; k++) {
        snprintf(keys[k], sizeof(keys[0]), "fo:%d", k);
    }
    victim = fixture_index(cl, cl->slots[slot_of(keys[0])]);
    replica = vg_test_cluster_replica_of(&g_rc, (size_t)victim);
    assert_true(replica >= 0);
    assert_true(vg_test_cluster_wait_replicas(&g_rc, (size_t)victim, 20000));
    for (int k = 0; k < FAILOVER_KEYS; k++) {
        on_victim[k] = fixture_index(cl, cl->slots[slot_of(keys[k])]) == victim;
    }

    for (long long round = 1; all_acked_rounds < 2; round++) {
        bool all_acked = true;

        for (int k = 0; k < FAILOVER_KEYS; k++) {
            bool replicated = false;

            assert_int_equal(set_replicated(cl, keys[k], round, &replicated), VG_OK);
            sent[k] = round;
            if (replicated) {
                acked[k] = round;
            }
            all_acked &= replicated;
            if (killed_ms && !recovered_ms && on_victim[k]) {
                recovered_ms = vg_mono_ms();
            }
        }
        if (round == 3) {
            assert_true(all_acked);
            vg_test_cluster_kill(&g_rc, (size_t)victim);
            killed_ms = vg_mono_ms();
        }
        /* The old primary comes back as a replica of the promoted one, so that writes are
         * replicated (acknowledged) again. */
        if (recovered_ms && !restarted) {
            assert_int_equal(vg_test_cluster_restart(&g_rc, (size_t)victim), 0);
            restarted = true;
            assert_true(vg_test_cluster_wait_replicas(&g_rc, (size_t)replica, 30000));
        }
        all_acked_rounds = restarted && all_acked ? all_acked_rounds + 1 : 0;
        assert_true(vg_mono_ms() < deadline);
    }
    print_message("primary killed: writes on its slots again after %lld ms; conn_errors=%llu "
                  "moved=%llu clusterdown=%llu refreshes=%llu\n",
                  (long long)(recovered_ms - killed_ms), (unsigned long long)cl->stats.conn_errors,
                  (unsigned long long)cl->stats.moved, (unsigned long long)cl->stats.clusterdown,
                  (unsigned long long)cl->stats.refreshes);
    assert_true(cl->stats.conn_errors > 0);
    assert_int_equal(fixture_index(cl, cl->slots[slot_of(keys[0])]), replica);
    assert_true(vg_test_cluster_wait_ready(&g_rc, 20000));
    for (int k = 0; k < FAILOVER_KEYS; k++) {
        long long v = value_of(keys[k]);

        /* nothing acknowledged was lost; nothing never sent appeared */
        if (v < acked[k] || v > sent[k]) {
            fail_msg("%s = %lld, acknowledged %lld, sent %lld", keys[k], v, acked[k], sent[k]);
        }
    }
    state_cluster_destroy(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyslot),
        cmocka_unit_test(test_not_a_cluster_or_bad_url),
        cmocka_unit_test(test_routing_to_every_primary),
        cmocka_unit_test(test_single_slot_transaction),
        cmocka_unit_test(test_lost_exec_reply_is_not_resent),
        cmocka_unit_test(test_ask_during_migration),
        cmocka_unit_test(test_reshard_while_writing),
        cmocka_unit_test(test_failover_while_writing),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
