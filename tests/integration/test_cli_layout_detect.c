/*
 * The read-only commands find the layout of the data themselves: the
 * engine, with `redis.layout: partitioned`, applies events to a real
 * redis-server (over TCP); then the real `vigil get`, `vigil history` and
 * `vigil incidents`, given only `--redis URL --prefix P` (no config), show
 * what it wrote, as they do with the config. A config that names
 * `layout: single` is obeyed all the same (and then finds nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"

#define FAILED_ID "workflow:v1:ingest-b:public"

static struct vg_test_env E;
static struct vg_test_env_case C = {
    &E, "cli_layout", {.partitions = 2, .layout = "partitioned", .redis_tcp = true}};

/* `vigil ARGS...` (NULL-terminated) with no config: its exit status, stdout in *out. */
static int run_vigil(char **out, const char *const *args)
{
    const char *argv[16];
    char *err = NULL;
    size_t n = 0;
    int rc;

    argv[n++] = vg_test_vigil_bin();
    for (; *args && n + 1 < VG_ARRAY_LEN(argv); args++) {
        argv[n++] = *args;
    }
    argv[n] = NULL;
    rc = vg_test_run((char *const *)argv, out, &err);
    if (rc != 0) {
        fprintf(stderr, "vigil %s: exit %d: %s%s\n", argv[1], rc, *out ? *out : "", err ? err : "");
    }
    free(err);
    return rc;
}

static void expect_in(const char *what, const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle)) {
        fail_msg("%s: \"%s\" not in:\n%s", what, needle, hay ? hay : "(null)");
    }
}

static void test_reads_partitioned_data_without_a_config(void **state)
{
    const char *url;
    char *out = NULL;
    char *cfg_text;
    char *cfg_path;

    (void)state;
    url = E.redis_url;
    assert_non_null(url);
    /* two Resources on two partitions; one fails and opens an incident */
    assert_true(vg_test_env_engine_start(&E));
    vg_test_env_produce_workflow_to(&E, 0, "ingest-a", "running");
    vg_test_env_produce_workflow_to(&E, 1, "ingest-b", "running");
    vg_test_env_produce_workflow_to(&E, 1, "ingest-b", "failed");
    assert_true(vg_test_env_wait_applied(&E, 20000));
    assert_int_equal(vg_test_env_engine_stop(&E), VG_OK);

    /* `vigil get --redis URL` with no config: both Resources */
    assert_int_equal(run_vigil(&out, (const char *const[]){"get", "--redis", url, "--prefix",
                                                           E.prefix, "-o", "json", NULL}),
                     0);
    expect_in("vigil get", out, "\"ingest-a\"");
    expect_in("vigil get", out, "\"ingest-b\"");
    free(out);
    out = NULL;

    /* `vigil history`: ingest-b's transitions, read in its partition's scope */
    assert_int_equal(
        run_vigil(&out, (const char *const[]){"history", "--redis", url, "--prefix", E.prefix, "-o",
                                              "json", FAILED_ID, NULL}),
        0);
    expect_in("vigil history", out, "\"failed\"");
    free(out);
    out = NULL;

    /* `vigil incidents`: the incident ingest-b's failure opened */
    assert_int_equal(run_vigil(&out, (const char *const[]){"incidents", "--redis", url, "--prefix",
                                                           E.prefix, "-o", "json", NULL}),
                     0);
    expect_in("vigil incidents", out, FAILED_ID);
    free(out);
    out = NULL;

    /* an explicit layout wins over what the data looks like: single finds nothing here */
    cfg_text = vg_asprintf("redis:\n  url: %s\n  prefix: %s\n  layout: single\n", url, E.prefix);
    cfg_path = vg_asprintf("%s/single.yaml", E.dir);
    assert_true(vg_test_write_file(cfg_path, cfg_text, strlen(cfg_text)));
    assert_int_equal(
        run_vigil(&out, (const char *const[]){"get", "-c", cfg_path, "-o", "json", NULL}), 0);
    if (strstr(out, "ingest-a") || strstr(out, "ingest-b")) {
        fail_msg("vigil get with layout: single listed partitioned Resources:\n%s", out);
    }
    free(out);
    vg_free(cfg_text);
    vg_free(cfg_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_reads_partitioned_data_without_a_config,
                                                 vg_test_env_setup, vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
