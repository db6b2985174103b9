/*
 * The Resource hash read back (state_resource_from_reply, through the
 * private header), from an HGETALL reply built by hand: no sockets. An
 * incident entry whose numbers are beyond what the codec takes is dropped
 * (found by fuzz_parsers: the conversion was undefined behaviour) while the
 * Resource and its other entries still read; a hash with a topic and no
 * partition reads, and so does what it is written back as.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state_int.h"
#include "vigil/json.h"
#include "vigil/log.h"

static void push(redisReply *arr, const char *s)
{
    redisReply *r = vg_calloc(1, sizeof(*r));

    r->type = REDIS_REPLY_STRING;
    r->str = vg_strdup(s);
    r->len = strlen(s);
    arr->element = vg_realloc(arr->element, (arr->elements + 1) * sizeof(*arr->element));
    arr->element[arr->elements++] = r;
}

/* A field of `len` bytes (it may hold a NUL), NUL-terminated as hiredis leaves it. */
static void push_n(redisReply *arr, const char *s, size_t len)
{
    redisReply *r = vg_calloc(1, sizeof(*r));

    r->type = REDIS_REPLY_STRING;
    r->str = vg_malloc(len + 1);
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
    arr->element = vg_realloc(arr->element, (arr->elements + 1) * sizeof(*arr->element));
    arr->element[arr->elements++] = r;
}

static void reply_free(redisReply *arr)
{
    for (size_t i = 0; i < arr->elements; i++) {
        vg_free(arr->element[i]->str);
        vg_free(arr->element[i]);
    }
    vg_free(arr->element);
}

static void test_incident_numbers(void **state)
{
    static const struct {
        const char *json;
        size_t want; /* incidents read: the good one, plus this one when it reads */
    } cases[] = {
        {"{\"id\":\"b\",\"severity\":\"low\",\"started_at\":1795860000123,\"seq\":2}", 2},
        {"{\"id\":\"b\",\"severity\":\"low\",\"started_at\":-1795860000123,\"seq\":0}", 2},
        {"{\"id\":\"b\",\"severity\":\"low\",\"started_at\":1e300,\"seq\":2}", 1},
        {"{\"id\":\"b\",\"severity\":\"low\",\"started_at\":-1e19,\"seq\":2}", 1},
        {"{\"id\":\"b\",\"severity\":\"low\",\"started_at\":1,\"seq\":1e10}", 1},
    };
    static const char *const base[] = {"id",
                                       "workflow:v1:x:public",
                                       "type",
                                       "workflow",
                                       "name",
                                       "x",
                                       "workspace",
                                       "public",
                                       "version",
                                       "v1",
                                       "inc:a",
                                       "{\"id\":\"a\",\"severity\":\"high\","
                                       "\"started_at\":1795860000000,\"seq\":1}"};
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply arr = {.type = REDIS_REPLY_ARRAY};
        struct vg_resource *res;
        char why[128] = "";

        for (size_t k = 0; k < sizeof(base) / sizeof(base[0]); k++) {
            push(&arr, base[k]);
        }
        push(&arr, "inc:b");
        push(&arr, cases[i].json);
        res = state_resource_from_reply(&arr, why, sizeof(why));
        if (!res || res->n_incidents != cases[i].want ||
            strcmp(res->incidents[0].monitor, "a") != 0 ||
            res->incidents[0].started_at_ms != INT64_C(1795860000000)) {
            print_error("case %zu (%s): %s, %zu incidents\n", i, cases[i].json, res ? "read" : why,
                        res ? res->n_incidents : 0);
            bad++;
        }
        vg_resource_destroy(res);
        reply_free(&arr);
    }
    assert_int_equal(bad, 0);
}

/* A hash with a topic and no partition reads (partition -1) and so does what it is written as. */
static void test_position_written_back(void **state)
{
    static const char *const fields[] = {"id",        "workflow:v1:x:public",
                                         "type",      "workflow",
                                         "name",      "x",
                                         "workspace", "public",
                                         "version",   "v1",
                                         "topic",     "vigil.events"};
    redisReply arr = {.type = REDIS_REPLY_ARRAY};
    redisReply back = {.type = REDIS_REPLY_ARRAY};
    struct state_cmd c = {0};
    struct vg_resource *res;
    struct vg_resource *again;
    char why[128] = "";

    (void)state;
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        push(&arr, fields[k]);
    }
    res = state_resource_from_reply(&arr, why, sizeof(why));
    assert_non_null(res);
    assert_int_equal(res->pos.partition, -1);
    state_resource_fields(&c, res);
    /* the arguments back as a reply: "$<len>\r\n<bytes>\r\n" each, after the head */
    for (size_t i = STATE_CMD_HEAD; i < c.len;) {
        char *end;
        size_t n = (size_t)strtoull(c.buf + i + 1, &end, 10);
        char *s = vg_strndup(end + 2, n);

        push(&back, s);
        vg_free(s);
        i = (size_t)(end + 2 - c.buf) + n + 2;
    }
    again = state_resource_from_reply(&back, why, sizeof(why));
    if (!again) {
        print_error("written back, it does not read: %s\n", why);
    }
    assert_non_null(again);
    assert_int_equal(again->pos.partition, -1);
    vg_resource_destroy(again);
    vg_resource_destroy(res);
    state_cmd_fini(&c);
    reply_free(&back);
    reply_free(&arr);
}

/* A field name holding a NUL is none of ours: no pod named "" (written back as another field). */
static void test_field_name_with_nul(void **state)
{
    static const char pod_json[] =
        "{\"namespace\":\"public\",\"phase\":\"Running\",\"reason\":\"\",\"ready\":true,"
        "\"restarts\":0,\"last_transition\":1795860000000,\"time\":1795860000000,"
        "\"containers\":[]}";
    redisReply arr = {.type = REDIS_REPLY_ARRAY};
    struct vg_resource *res;
    char why[128] = "";

    (void)state;
    push(&arr, "id");
    push(&arr, "workflow:v1:x:public");
    push(&arr, "type");
    push(&arr, "workflow");
    push(&arr, "name");
    push(&arr, "x");
    push(&arr, "workspace");
    push(&arr, "public");
    push(&arr, "version");
    push(&arr, "v1");
    push_n(&arr, "pod:\0x", 6);
    push(&arr, pod_json);
    push_n(&arr, "inc:\0m", 6);
    push(&arr, "{\"id\":\"a\",\"severity\":\"high\",\"started_at\":1,\"seq\":1}");
    push(&arr, "pod:p1");
    push(&arr, pod_json);
    res = state_resource_from_reply(&arr, why, sizeof(why));
    assert_non_null(res);
    assert_int_equal(res->n_pods, 1);
    assert_string_equal(res->pods[0].name, "p1");
    assert_int_equal(res->n_incidents, 0);
    vg_resource_destroy(res);
    reply_free(&arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incident_numbers),
        cmocka_unit_test(test_position_written_back),
        cmocka_unit_test(test_field_name_with_nul),
    };

    vg_json_init();
    vg_log_set_level(VG_LOG_LEVEL_ERROR); /* the dropped entries are warned about */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
