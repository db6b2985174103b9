/*
 * The console sink: exactly one flushed line per page on its FILE*,
 * rendered from the v1 body (captured here with open_memstream).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/sinks.h"

struct page_spec {
    const char *status;
    const char *severity;
    const char *monitor;
    const char *summary;
    const char *field;
    const char *from;
    const char *to;
    int64_t resolved_at_ms;
};

static char *body_for(const struct page_spec *s)
{
    struct vg_page pg = {0};
    char *json;

    pg.status = vg_strdup(s->status);
    pg.incident.id = vg_strdup("0123456789abcdef");
    pg.incident.monitor = vg_strdup(s->monitor);
    pg.incident.severity = vg_strdup(s->severity);
    pg.incident.summary = vg_strdup(s->summary);
    pg.incident.started_at_ms = 1795860000000;
    pg.incident.resolved_at_ms = s->resolved_at_ms;
    pg.resource.id = vg_strdup("workflow:v1:ingestion-x:public");
    pg.resource.type = vg_strdup("workflow");
    pg.resource.name = vg_strdup("ingestion-x");
    pg.resource.workspace = vg_strdup("public");
    pg.resource.version = vg_strdup("v1");
    pg.resource.owner = vg_strdup("");
    snprintf(pg.resource.runtime, sizeof(pg.resource.runtime), "%s", s->to);
    snprintf(pg.resource.health, sizeof(pg.resource.health), "progressing");
    snprintf(pg.transition.field, sizeof(pg.transition.field), "%s", s->field);
    snprintf(pg.transition.from, sizeof(pg.transition.from), "%s", s->from);
    snprintf(pg.transition.to, sizeof(pg.transition.to), "%s", s->to);
    pg.transition.at_ms = 1795860000000;
    json = vg_page_to_json(&pg);
    vg_page_fini(&pg);
    return json;
}

struct capture {
    FILE *fp;
    char *buf;
    size_t len;
    struct vg_sinks *sk;
};

static int setup(void **state)
{
    struct capture *c = vg_calloc(1, sizeof(*c));
    struct vg_sink_config cfg = {.name = (char *)"console", .type = (char *)"console"};
    char errstr[256];

    c->fp = open_memstream(&c->buf, &c->len);
    assert_non_null(c->fp);
    if (vg_sinks_new(&c->sk, &cfg, 1, c->fp, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("vg_sinks_new: %s", errstr);
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct capture *c = *state;

    vg_sinks_destroy(c->sk);
    fclose(c->fp);
    free(c->buf); /* open_memstream's buffer comes from malloc */
    vg_free(c);
    return 0;
}

static void test_lines(void **state)
{
    static const struct {
        struct page_spec page;
        const char *want;
    } cases[] = {
        {{"firing", "high", "workflow-failed", "ingestion-x failed", "runtime", "running", "failed",
          0},
         "PAGE firing [high] workflow-failed workflow:v1:ingestion-x:public runtime running -> "
         "failed: ingestion-x failed\n"},
        {{"resolved", "high", "workflow-failed", "ingestion-x recovered", "runtime", "failed",
          "running", 1795860060000},
         "PAGE resolved [high] workflow-failed workflow:v1:ingestion-x:public runtime failed -> "
         "running: ingestion-x recovered\n"},
        {{"firing", "critical", "first-seen-failed", "new and failing", "runtime", "", "failed", 0},
         "PAGE firing [critical] first-seen-failed workflow:v1:ingestion-x:public runtime "
         "(none) -> failed: new and failing\n"},
        /* A summary can hold line breaks (templates): the page stays on one line. */
        {{"firing", "low", "m", "two\nlines\r\tand a tab", "status", "active", "error", 0},
         "PAGE firing [low] m workflow:v1:ingestion-x:public status active -> error: two lines  "
         "and a tab\n"},
    };
    struct capture *c = *state;
    char errstr[256];
    size_t failures = 0;

    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char *body = body_for(&cases[i].page);
        size_t before = c->len;
        vg_err_t err = vg_sinks_deliver(c->sk, "console", "0123456789abcdef-1", body, strlen(body),
                                        errstr, sizeof(errstr));
        vg_free(body);
        assert_int_equal(err, VG_OK);
        /* No fflush here: the sink must have flushed, or len would not have moved. */
        const char *got = c->buf + before;
        if (c->len - before != strlen(cases[i].want) || strcmp(got, cases[i].want) != 0) {
            print_error("case %zu:\n got: \"%.*s\"\nwant: \"%s\"\n", i, (int)(c->len - before), got,
                        cases[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_unreadable_body_still_one_line(void **state)
{
    struct capture *c = *state;
    char errstr[256];
    static const char junk[] = "{\"status\": \"firing\", \"incident\": ";

    assert_int_equal(
        vg_sinks_deliver(c->sk, "console", "abc-1", junk, strlen(junk), errstr, sizeof(errstr)),
        VG_OK);
    assert_true(c->len > 0);
    assert_int_equal(strncmp(c->buf, "PAGE ? abc-1: ", 14), 0);
    assert_non_null(strchr(c->buf, '\n'));
    assert_ptr_equal(strchr(c->buf, '\n'), c->buf + c->len - 1);
}

/* A grouped page beyond its pager's group_limit: one line per listed incident, then the rest. */
static void test_group_says_how_many_more(void **state)
{
    static const struct page_spec spec = {"firing",  "high",    "workflow-failed", "broke",
                                          "runtime", "running", "failed",          0};
    struct vg_label gl = {(char *)"workspace", (char *)"public"};
    struct capture *c = *state;
    char *one = body_for(&spec);
    const char *bodies[] = {one};
    struct vg_group_counts counts = {.firing = 500};
    char *group = vg_page_group_build("oncall", &gl, 1, bodies, 1, 20, &counts);
    char errstr[256];

    assert_non_null(group);
    assert_int_equal(vg_sinks_deliver(c->sk, "console", "0123456789abcdef-g", group, strlen(group),
                                      errstr, sizeof(errstr)),
                     VG_OK);
    assert_non_null(strstr(c->buf, "PAGE firing [high] workflow-failed "));
    assert_non_null(strstr(c->buf, ")\nPAGE and 499 more (group oncall workspace=public)\n"));
    vg_free(group);
    vg_free(one);
}

static void test_console_attempts(void **state)
{
    struct capture *c = *state;

    assert_int_equal(vg_sinks_max_attempts(c->sk, "console"), 1);
    assert_int_equal(vg_sinks_retry_after_ms(c->sk, "console"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_body_still_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_says_how_many_more, setup, teardown),
    };

    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
