/*
 * Commit lanes belong to the pipeline (docs/state.md "Commit lanes"): the
 * real `vigil run` with redis.layout partitioned and commit_connections 4
 * on an 8-partition topic. Once every partition's batch is applied and the
 * dispatcher has acknowledged a page in every partition's scope, vigil
 * holds four connections for its pipeline and one for its dispatcher, not
 * four for each; and a CLI reader that walks every partition's scope
 * (`vigil dlq list`) opens one connection. The HTTP API's lists
 * (/api/v1/dlq, /api/v1/resources) walk every scope too, on at most one
 * connection of its pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"

#define PARTITIONS 8
#define LANES 4

static struct vg_test_env E;

static struct vg_test_env_case C = {&E,
                                    "engine-commit-lanes",
                                    {.partitions = PARTITIONS,
                                     .layout = "partitioned",
                                     .redis_extra = "  commit_connections: 4\n"}};

static struct vg_test_env_case C_API = {&E,
                                        "engine-commit-lanes-api",
                                        {.partitions = PARTITIONS,
                                         .layout = "partitioned",
                                         .http = true,
                                         .redis_extra = "  commit_connections: 4\n"}};

/* An integer field of an INFO section ("connected_clients:"). */
static long long info_field(const char *section, const char *field)
{
    redisReply *r = vg_test_env_redis(&E, "INFO %s", section);
    const char *at;
    long long v;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    at = strstr(r->str, field);
    assert_non_null(at);
    v = strtoll(at + strlen(field), NULL, 10);
    freeReplyObject(r);
    return v;
}

/* The clients connected now whose id is above `above` (ids only grow). */
static long long clients_above(long long above)
{
    redisReply *r = vg_test_env_redis(&E, "CLIENT LIST");
    long long n = 0;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    for (const char *line = r->str; line && *line; line = strchr(line, '\n')) {
        line += *line == '\n' ? 1 : 0;
        if (strncmp(line, "id=", 3) == 0 && strtoll(line + 3, NULL, 10) > above) {
            n++;
        }
    }
    freeReplyObject(r);
    return n;
}

/* The highest client id so far: this connection's own, made last. */
static long long last_client_id(void)
{
    long long id = vg_test_env_int(&E, "CLIENT ID");

    assert_true(id > 0);
    return id;
}

static long long stream_field(redisReply *r, const char *name)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1]->integer;
        }
    }
    return -1;
}

/* Every partition's outbox got its page and the dispatcher acknowledged it there (XDEL). */
static bool every_scope_acked(void *arg)
{
    (void)arg;
    for (int p = 0; p < PARTITIONS; p++) {
        redisReply *r =
            vg_test_env_redis(&E, "XINFO STREAM %s:{%s/%d}:outbox", E.prefix, E.topic, p);
        bool ok = r && r->type == REDIS_REPLY_ARRAY && stream_field(r, "entries-added") >= 1 &&
                  stream_field(r, "length") == 0;

        if (r) {
            freeReplyObject(r);
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void test_only_the_pipeline_opens_lanes(void **state)
{
    long long before_vigil;
    long long accepted;
    char *out = NULL;
    char *err = NULL;
    int rc;

    (void)state;
    /* the test's own connections are made before vigil's */
    before_vigil = last_client_id();
    assert_true(vg_test_env_spawn(&E));
    /* per partition: a workflow that fails, so a page goes through that partition's outbox */
    for (int p = 0; p < PARTITIONS; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-lane-%d", p);
        vg_test_env_produce_workflow_to(&E, p, name, "running");
        vg_test_env_produce_workflow_to(&E, p, name, "failed");
    }
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_requests(&E, PARTITIONS, 60000));
    if (!vg_test_wait_for(every_scope_acked, NULL, 30000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("the dispatcher did not acknowledge a page in every partition's scope");
    }
    /* the pipeline committed in all eight scopes (lanes 0..3), the dispatcher acknowledged in
     * all eight: four connections and one, not four and four */
    assert_int_equal(clients_above(before_vigil), LANES + 1);

    /* a reader walking every partition's scope: one connection */
    accepted = info_field("stats", "total_connections_received:");
    rc = vg_test_env_run_cli(&E, &out, &err, "dlq", "list", NULL);
    if (rc != 0) {
        fail_msg("vigil dlq list: exit %d: %s", rc, err ? err : "");
    }
    assert_int_equal(info_field("stats", "total_connections_received:") - accepted, 1);
    assert_int_equal(clients_above(before_vigil), LANES + 1);
    free(out);
    free(err);
}

/* A Resource in every partition, applied. */
static void apply_one_per_partition(const char *runtime)
{
    for (int p = 0; p < PARTITIONS; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-lane-%d", p);
        vg_test_env_produce_workflow_to(&E, p, name, runtime);
    }
    assert_true(vg_test_env_wait_applied(&E, 60000));
}

static void test_api_lists_on_one_connection(void **state)
{
    long long accepted;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    apply_one_per_partition("running");
    /* each list walks all eight scopes; sequential requests share the pool's connection */
    accepted = info_field("stats", "total_connections_received:");
    for (int i = 0; i < 3; i++) {
        struct vg_test_http_reply d = vg_test_env_http(&E, "GET", "/api/v1/dlq", NULL, NULL);

        assert_int_equal(d.status, 200);
        vg_test_http_reply_free(&d);
    }
    for (int i = 0; i < 3; i++) {
        struct vg_test_http_reply r = vg_test_env_http(&E, "GET", "/api/v1/resources", NULL, NULL);

        assert_int_equal(r.status, 200);
        for (int p = 0; p < PARTITIONS; p++) {
            char name[32];

            snprintf(name, sizeof(name), "\"wf-lane-%d\"", p);
            if (!r.body || !strstr(r.body, name)) {
                fail_msg("GET /api/v1/resources lacks %s: %s", name, r.body ? r.body : "");
            }
        }
        vg_test_http_reply_free(&r);
    }
    /* the pool's one connection (none if /readyz already opened it), never a lane per scope */
    assert_in_range(info_field("stats", "total_connections_received:") - accepted, 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_only_the_pipeline_opens_lanes,
                                                 vg_test_env_setup, vg_test_env_teardown, &C),
        cmocka_unit_test_prestate_setup_teardown(test_api_lists_on_one_connection,
                                                 vg_test_env_setup, vg_test_env_teardown, &C_API),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
