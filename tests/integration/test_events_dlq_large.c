/*
 * Poison messages too large for the dead-letter topic, end to end: the real
 * `vigil run` on a private redis-server and librdkafka's mock cluster.
 * An invalid event of about 1 MB (under the decode limit, its message over
 * the text limit) is dead-lettered whole; a 2 MB message (over the decode
 * limit and the consumer's fetch.message.max.bytes) is dead-lettered cut,
 * with vigil.truncated and vigil.original_bytes. When the broker refuses a
 * dead letter for its size it is sent again cut; refused again, it is
 * skipped with an ERROR line and vigil_dead_letter_failures_total. Valid
 * events after each are applied and page, and vigil keeps running.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dlq_reader.h"
#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define CUT_BYTES 1024 /* ENG_DLQ_CUT_BYTES */
#define ONE_MB_BYTES 1040000
#define TWO_MB_BYTES (2 * 1024 * 1024)

static struct vg_test_env E; /* one partition; offsets count from 0 */

/* Produce to partition 0 and wait until the cluster has it. */
static void produce(const char *key, const char *payload, size_t len)
{
    long long before = E.produced;

    vg_test_env_produce_raw(&E, 0, key, payload, len);
    if (E.produced != before + 1 || !vg_test_env_flush(&E)) {
        fprintf(stderr, "producing %zu bytes failed\n", len);
        fail();
    }
}

/* A native event of Resource service `name` whose runtime is `runtime` (pages on "failed"). */
static void produce_event(const char *name, const char *runtime)
{
    char *json = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"%s\",\"workspace\":"
                             "\"w\"},\"runtime\":\"%s\",\"time\":\"2026-11-28T10:00:00Z\"}",
                             name, runtime);
    produce(name, json, strlen(json));
    free(json);
}

static bool vigil_alive(void)
{
    int status;
    return waitpid(E.vigil, &status, WNOHANG) == 0;
}

static void wait_caught_up(void)
{
    if (!vg_test_env_wait_applied_exact(&E, 60000)) {
        fprintf(stderr, "vigil did not apply offset %lld (%s)\n", E.produced - 1,
                vigil_alive() ? "still running" : "exited");
        fail();
    }
    assert_true(vigil_alive());
}

/* The page `i` received is about Resource service `name`. */
static void assert_page(size_t i, const char *name)
{
    char *id = vg_asprintf("service:v1:%s:w", name);

    assert_true(vg_test_env_page_is(&E, i, "resource", "id", id, 30000));
    free(id);
}

/* The dead letter of topic offset `offset` (exactly one), or a test failure. */
static const struct vg_test_dead_letter *find_dead(const struct vg_test_dead_letter *dead, size_t n,
                                                   int64_t offset)
{
    const struct vg_test_dead_letter *found = NULL;
    char off[24];

    snprintf(off, sizeof(off), "%lld", (long long)offset);
    for (size_t i = 0; i < n; i++) {
        if (vg_test_dead_letter_header_is(&dead[i], "vigil.topic", E.topic) &&
            vg_test_dead_letter_header_is(&dead[i], "vigil.offset", off)) {
            assert_null(found);
            found = &dead[i];
        }
    }
    if (!found) {
        fprintf(stderr, "offset %s is not in the DLQ (%zu entries)\n", off, n);
    }
    assert_non_null(found);
    assert_true(vg_test_dead_letter_header_is(found, "vigil.partition", "0"));
    return found;
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    static char max_key[] = "message.max.bytes";
    static char max_value[] = "4000000";
    static const struct vg_kv big[] = {{max_key, max_value}};
    /* Default decode limits (1 MiB) and fetch sizes (fetch.message.max.bytes 1 MiB). */
    struct vg_test_env_opts o = {.partitions = 1,
                                 .http = true,
                                 .rules_file = VG_FIXTURES "/k8s/rules.yaml",
                                 .producer_props = big,
                                 .n_producer_props = 1};

    (void)state;
    return vg_test_env_up(&E, "dlq-large", &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/* ---- the test --------------------------------------------------------------- */

/*
 * A poison message `payload` and after it a failing event of `name`, with
 * the broker set to refuse the next `times` dead letters for their size.
 * The refusal is armed while vigil is stopped, so that it meets vigil's DLQ
 * producer and not this test's.
 */
static void refused(int times, const char *key, const char *payload, const char *name)
{
    assert_int_equal(kill(E.vigil, SIGSTOP), 0);
    produce(key, payload, strlen(payload));
    produce_event(name, "failed");
    vg_mock_kafka_refuse_size(E.kafka, times);
    assert_int_equal(kill(E.vigil, SIGCONT), 0);
    wait_caught_up();
}

/* An invalid native event of `bytes` bytes: its message is over the 64 KiB text limit. */
static char *long_message_event(size_t bytes)
{
    static const char head[] = "{\"resource\":{\"type\":\"service\",\"name\":\"big\",\"workspace\":"
                               "\"w\"},\"runtime\":\"failed\",\"message\":\"";
    char *p = vg_malloc(bytes + 1);

    memcpy(p, head, strlen(head));
    memset(p + strlen(head), 'x', bytes - strlen(head) - 2);
    memcpy(p + bytes - 2, "\"}", 2);
    p[bytes] = '\0';
    return p;
}

static void test_too_large_for_the_dlq(void **state)
{
    char *one_mb = long_message_event(ONE_MB_BYTES);
    char *two_mb = vg_malloc(TWO_MB_BYTES);
    struct vg_test_dead_letter *dead;
    const struct vg_test_dead_letter *d;
    size_t n;
    char want[24];
    char *log;
    (void)state;

    memset(two_mb, ' ', TWO_MB_BYTES);
    memcpy(two_mb, "{\"x\":1}", 7);

    /* 1. about 1 MB, under the decode limit: whole in the DLQ; then a valid event pages */
    produce("big", one_mb, ONE_MB_BYTES); /* offset 0 */
    produce_event("after-1mb", "failed"); /* offset 1 */
    wait_caught_up();
    assert_page(0, "after-1mb");

    /* 2. 2 MB, over the decode limit and fetch.message.max.bytes: cut in the DLQ */
    produce("huge", two_mb, TWO_MB_BYTES); /* offset 2 */
    produce_event("after-2mb", "failed");  /* offset 3 */
    wait_caught_up();
    assert_page(1, "after-2mb");

    /* 3. the broker refuses a dead letter for its size once: sent again cut, arrives */
    refused(1, "k3", "{\"refused\": once", "after-refusal"); /* offsets 4, 5 */
    assert_page(2, "after-refusal");

    /* 4. refused whole and cut: skipped, counted, an ERROR line; the partition goes on */
    refused(2, "k4", "{\"refused\": twice", "after-drop"); /* offsets 6, 7 */
    assert_page(3, "after-drop");

    assert_true(vg_test_env_read_dlq(&E, &dead, &n));
    d = find_dead(dead, n, 0);
    assert_true(vg_test_dead_letter_header_is(d, "vigil.error", "bad_field"));
    assert_int_equal(d->len, ONE_MB_BYTES);
    assert_memory_equal(d->payload, one_mb, ONE_MB_BYTES);
    assert_null(vg_test_dead_letter_header(d, "vigil.truncated")); /* whole */

    d = find_dead(dead, n, 2);
    assert_true(vg_test_dead_letter_header_is(d, "vigil.error", "too_large"));
    assert_non_null(vg_test_dead_letter_header(d, "vigil.detail"));
    assert_true(vg_test_dead_letter_header_is(d, "vigil.truncated", "true"));
    snprintf(want, sizeof(want), "%d", TWO_MB_BYTES);
    assert_true(vg_test_dead_letter_header_is(d, "vigil.original_bytes", want));
    assert_int_equal(d->len, CUT_BYTES);
    assert_memory_equal(d->payload, two_mb, CUT_BYTES);

    d = find_dead(dead, n, 4);
    assert_true(vg_test_dead_letter_header_is(d, "vigil.error", "bad_json"));
    /* sent again, but short enough to be whole */
    assert_true(vg_test_dead_letter_header_is(d, "vigil.truncated", "false"));
    assert_true(vg_test_dead_letter_header_is(d, "vigil.original_bytes", "16"));
    assert_int_equal(d->len, 16);

    for (size_t i = 0; i < n; i++) {
        assert_false(vg_test_dead_letter_header_is(&dead[i], "vigil.offset", "6")); /* dropped */
    }
    vg_test_dead_letters_free(dead, n);

    log = vg_test_env_run_log(&E);
    assert_non_null(strstr(log, " ERROR consumer: poison message skipped topic="));
    assert_non_null(strstr(log, " offset=6 reason=bad_json"));
    free(log);
    if (vg_test_env_metric(&E, "vigil_dead_letter_failures_total{reason=\"too_large\"}") != 1) {
        fprintf(stderr, "vigil_dead_letter_failures_total{reason=\"too_large\"} is not 1\n");
        fail();
    }
    assert_true(vigil_alive());
    free(one_mb);
    free(two_mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_too_large_for_the_dlq, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
