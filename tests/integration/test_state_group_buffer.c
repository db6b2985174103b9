/*
 * Group buffers against a real redis-server: a flush reads the counts and
 * only the bodies of the incidents its grouped page lists (firing first,
 * latest transition first), never the whole buffer; the commit removes the
 * buffer and its index; a buffer written without an index (an older vigil)
 * is still read whole; dropping pages drops the indexes too and counts
 * buffers.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "state_redis.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define T0 1764323400000LL
#define MEMBER "ops|hook|workspace=prod"
#define N_PAGES 300 /* every third one resolved */
#define LIMIT 20

static struct vg_test_redis fx;

static bool page_firing(int n)
{
    return n % 3 != 0;
}

static void make_page(struct vg_page *pg, int n)
{
    static struct vg_label gl = {(char *)"workspace", (char *)"prod"};

    memset(pg, 0, sizeof(*pg));
    pg->id = vg_asprintf("%016x-1", n);
    pg->sink = vg_strdup("hook");
    pg->pager = vg_strdup("ops");
    pg->status = vg_strdup(page_firing(n) ? "firing" : "resolved");
    pg->incident.id = vg_asprintf("%016x", n);
    pg->incident.monitor = vg_strdup("failed");
    pg->incident.severity = vg_strdup("high");
    pg->incident.summary = vg_asprintf("page %d", n);
    pg->incident.started_at_ms = T0;
    pg->resource.id = vg_asprintf("job:v1:etl-%d:prod", n);
    pg->resource.type = vg_strdup("job");
    pg->resource.name = vg_asprintf("etl-%d", n);
    pg->resource.workspace = vg_strdup("prod");
    pg->resource.version = vg_strdup("v1");
    pg->resource.owner = vg_strdup("data");
    snprintf(pg->transition.field, sizeof(pg->transition.field), "runtime");
    snprintf(pg->transition.from, sizeof(pg->transition.from), "running");
    snprintf(pg->transition.to, sizeof(pg->transition.to), "failed");
    pg->transition.at_ms = T0 + n * 1000;
    pg->at_ms = T0 + n * 1000;
    pg->group = vg_strdup("workspace=prod");
    pg->group_labels = vg_labels_copy(&gl, 1);
    pg->n_group_labels = 1;
    pg->group_wait_ms = 30000;
}

/* Pages 1..N_PAGES into the buffer, 50 per commit. */
static void fill_buffer(void)
{
    char errstr[512];

    for (int first = 1; first <= N_PAGES; first += 50) {
        struct vg_page pages[50];
        struct vg_commit cm = {0};

        for (int i = 0; i < 50; i++) {
            make_page(&pages[i], first + i);
        }
        cm.pages = pages;
        cm.n_pages = 50;
        assert_int_equal(vg_state_commit(fx.st, &cm, errstr, sizeof(errstr)), VG_OK);
        for (int i = 0; i < 50; i++) {
            vg_page_fini(&pages[i]);
        }
    }
}

/* The page number of a stored body ("page N" summary). */
static int body_page(const char *body)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "incident"), "summary");
    int n = -1;

    assert_true(cJSON_IsString(s));
    assert_int_equal(sscanf(s->valuestring, "page %d", &n), 1);
    cJSON_Delete(j);
    return n;
}

static void test_flush_reads_only_the_listed(void **state)
{
    struct vg_group_buffer b;
    struct vg_group_page gp = {.id = "x-g", .sink = "hook", .pager = "ops", .body = "{}"};
    char errstr[512];
    long long hgetall;
    bool seen[N_PAGES + 1] = {false};
    bool done = false;

    (void)state;
    fill_buffer();
    assert_int_equal(vg_test_redis_int(&fx, "HLEN %s:grp:" MEMBER, fx.prefix), N_PAGES + 3);
    assert_int_equal(vg_test_redis_int(&fx, "ZCARD %s:grp:idx:" MEMBER, fx.prefix), N_PAGES);
    hgetall = vg_test_redis_calls(&fx, "hgetall");
    assert_int_equal(vg_state_group_read(fx.st, MEMBER, LIMIT, &b, errstr, sizeof(errstr)), VG_OK);
    /* the whole buffer was never read */
    assert_int_equal(vg_test_redis_calls(&fx, "hgetall"), hgetall);
    assert_string_equal(b.pager, "ops");
    assert_string_equal(b.sink, "hook");
    assert_int_equal(b.n_labels, 1);
    assert_int_equal(b.n_firing, 200);
    assert_int_equal(b.n_ended, 100);
    assert_int_equal(b.n_bodies, LIMIT);
    for (size_t i = 0; i < b.n_bodies; i++) {
        int n = body_page(b.bodies[i]);

        assert_true(n > 0 && n <= N_PAGES);
        assert_true(page_firing(n));
        seen[n] = true;
    }
    /* the LIMIT latest firing ones: 299, 298, 296, 295, ... */
    for (int n = N_PAGES, k = 0; k < LIMIT; n--) {
        if (page_firing(n)) {
            if (!seen[n]) {
                fail_msg("page %d (firing, among the %d latest) not read", n, LIMIT);
            }
            k++;
        }
    }
    assert_int_equal(vg_state_group_commit(fx.st, MEMBER, &gp, &done, errstr, sizeof(errstr)),
                     VG_OK);
    assert_true(done);
    assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:grp:" MEMBER, fx.prefix), 0);
    assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:grp:idx:" MEMBER, fx.prefix), 0);
    assert_int_equal(vg_test_redis_int(&fx, "XLEN %s:outbox", fx.prefix), 1);
    vg_group_buffer_fini(&b);
}

/* A buffer written before the index existed: read whole, rules/ chooses and counts. */
static void test_buffer_without_index(void **state)
{
    struct vg_page pg;
    struct vg_group_buffer b;
    char *key = vg_asprintf("%s:grp:%s", fx.prefix, MEMBER);
    char errstr[512];

    (void)state;
    for (int n = 1; n <= 3; n++) {
        char *body;
        redisReply *r;

        make_page(&pg, n);
        body = vg_page_to_json(&pg);
        r = redisCommand(fx.raw, "HSET %s %s %s _pager ops _sink hook _labels %s", key,
                         pg.incident.id, body, "{\"workspace\":\"prod\"}");
        assert_non_null(r);
        freeReplyObject(r);
        vg_free(body);
        vg_page_fini(&pg);
    }
    assert_int_equal(vg_state_group_read(fx.st, MEMBER, 2, &b, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(b.n_bodies, 3);
    assert_int_equal(b.n_firing + b.n_ended, 0);
    assert_string_equal(b.pager, "ops");
    vg_group_buffer_fini(&b);
    vg_free(key);
}

/* `vigil replay` without --page: buffers and their indexes go, the count is of buffers. */
static void test_drop_pages_counts_buffers(void **state)
{
    long long dropped = -1;
    char errstr[512];

    (void)state;
    fill_buffer();
    assert_int_equal(vg_state_drop_pages(fx.st, &dropped, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:grp:" MEMBER, fx.prefix), 0);
    assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:grp:idx:" MEMBER, fx.prefix), 0);
}

static int setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "state-group-buffer", NULL, false);
}

/* Each test gets a prefix of its own (a number and the pid) and fx.st on it. */
static int per_test_setup(void **state)
{
    static int seq;

    (void)state;
    return vg_test_redis_use_prefix(
        &fx, vg_asprintf("test_state_group_buffer-%d-%d", ++seq, (int)getpid()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_flush_reads_only_the_listed, per_test_setup),
        cmocka_unit_test_setup(test_buffer_without_index, per_test_setup),
        cmocka_unit_test_setup(test_drop_pages_counts_buffers, per_test_setup),
    };

    return cmocka_run_group_tests(tests, setup, vg_test_redis_teardown);
}
