/*
 * The webhook v1 body (docs/webhook.md): exact bytes of vg_page_to_json
 * for a firing page (the docs example) and a resolved one, JSON escaping
 * of the summary, the vg_page_from_json round trip, malformed input ->
 * VG_ERR_PARSE, the vg_pages list, grouped bodies missing a part and an
 * incident record's numbers out of range (both found by fuzz_parsers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/page.h"

#define T0 INT64_C(1795860000123) /* 2026-11-28T10:00:00.123Z */
#define T1 INT64_C(1795860300000) /* 2026-11-28T10:05:00Z */

/* The example of docs/webhook.md, compacted (keys in documented order). */
static const char firing_json[] =
    "{\"version\":\"1\",\"status\":\"firing\",\"incident\":{\"id\":\"8c0f6a1e2b3d4c5f\","
    "\"monitor\":\"workflow-failed\",\"severity\":\"high\",\"summary\":\"workflow ingestion-x "
    "in public failed\",\"started_at\":\"2026-11-28T10:00:00.123Z\",\"resolved_at\":null,"
    "\"type\":\"\",\"labels\":{},\"description\":\"\"},"
    "\"resource\":{\"id\":\"workflow:v1:ingestion-x:public\",\"type\":\"workflow\",\"name\":"
    "\"ingestion-x\",\"workspace\":\"public\",\"version\":\"v1\",\"owner\":\"iamgroot\","
    "\"status\":\"active\",\"runtime\":\"failed\",\"health\":\"unhealthy\"},\"transition\":"
    "{\"field\":\"runtime\",\"from\":\"running\",\"to\":\"failed\",\"at\":"
    "\"2026-11-28T10:00:00.123Z\",\"reason\":null,\"pod\":null}}";

static const char resolved_json[] =
    "{\"version\":\"1\",\"status\":\"resolved\",\"incident\":{\"id\":\"8c0f6a1e2b3d4c5f\","
    "\"monitor\":\"workflow-failed\",\"severity\":\"high\",\"summary\":\"workflow ingestion-x "
    "in public failed\",\"started_at\":\"2026-11-28T10:00:00.123Z\",\"resolved_at\":"
    "\"2026-11-28T10:05:00Z\","
    "\"type\":\"\",\"labels\":{},\"description\":\"\"},"
    "\"resource\":{\"id\":\"workflow:v1:ingestion-x:public\",\"type\":\"workflow\",\"name\":"
    "\"ingestion-x\",\"workspace\":\"public\",\"version\":\"v1\",\"owner\":\"iamgroot\","
    "\"status\":\"active\",\"runtime\":\"running\",\"health\":\"progressing\"},\"transition\":"
    "{\"field\":\"runtime\",\"from\":\"failed\",\"to\":\"running\",\"at\":"
    "\"2026-11-28T10:05:00Z\",\"reason\":null,\"pod\":null}}";

/* A first-event page: owner unknown, "from" null, unknown runtime. */
static const char first_json[] =
    "{\"version\":\"1\",\"status\":\"firing\",\"incident\":{\"id\":\"0000000000000001\","
    "\"monitor\":\"svc-error\",\"severity\":\"critical\",\"summary\":\"\","
    "\"started_at\":\"1970-01-01T00:00:00Z\",\"resolved_at\":null,"
    "\"type\":\"\",\"labels\":{},\"description\":\"\"},"
    "\"resource\":{\"id\":\"service:v1:api:prod\",\"type\":\"service\",\"name\":\"api\","
    "\"workspace\":\"prod\",\"version\":\"v1\",\"owner\":\"\",\"status\":\"error\","
    "\"runtime\":\"\",\"health\":\"unhealthy\"},\"transition\":{\"field\":\"status\","
    "\"from\":null,\"to\":\"error\",\"at\":\"1970-01-01T00:00:00Z\","
    "\"reason\":null,\"pod\":null}}";

static void fill(struct vg_page *pg, const char *status, const char *inc_id, const char *monitor,
                 const char *severity, const char *summary, int64_t started, int64_t resolved,
                 const char *type, const char *name, const char *ws, const char *owner,
                 const char *rstatus, const char *runtime, const char *health, const char *field,
                 const char *from, const char *to, int64_t at)
{
    memset(pg, 0, sizeof(*pg));
    pg->id = vg_asprintf("%s-%d", inc_id, resolved ? 2 : 1);
    pg->sink = vg_strdup("ops");
    pg->pager = vg_strdup("oncall");
    pg->status = vg_strdup(status);
    pg->incident.id = vg_strdup(inc_id);
    pg->incident.monitor = vg_strdup(monitor);
    pg->incident.severity = vg_strdup(severity);
    pg->incident.summary = vg_strdup(summary);
    pg->incident.started_at_ms = started;
    pg->incident.resolved_at_ms = resolved;
    pg->resource.type = vg_strdup(type);
    pg->resource.name = vg_strdup(name);
    pg->resource.workspace = vg_strdup(ws);
    pg->resource.version = vg_strdup("v1");
    pg->resource.id = vg_resource_id(type, "v1", name, ws);
    pg->resource.owner = vg_strdup(owner);
    snprintf(pg->resource.status, VG_VALUE_MAX, "%s", rstatus);
    snprintf(pg->resource.runtime, VG_VALUE_MAX, "%s", runtime);
    snprintf(pg->resource.health, VG_VALUE_MAX, "%s", health);
    snprintf(pg->transition.field, VG_VALUE_MAX, "%s", field);
    snprintf(pg->transition.from, VG_VALUE_MAX, "%s", from);
    snprintf(pg->transition.to, VG_VALUE_MAX, "%s", to);
    pg->transition.at_ms = at;
}

static void fill_firing(struct vg_page *pg)
{
    fill(pg, "firing", "8c0f6a1e2b3d4c5f", "workflow-failed", "high",
         "workflow ingestion-x in public failed", T0, 0, "workflow", "ingestion-x", "public",
         "iamgroot", "active", "failed", "unhealthy", "runtime", "running", "failed", T0);
}

static void fill_resolved(struct vg_page *pg)
{
    fill(pg, "resolved", "8c0f6a1e2b3d4c5f", "workflow-failed", "high",
         "workflow ingestion-x in public failed", T0, T1, "workflow", "ingestion-x", "public",
         "iamgroot", "active", "running", "progressing", "runtime", "failed", "running", T1);
}

static void fill_first(struct vg_page *pg)
{
    fill(pg, "firing", "0000000000000001", "svc-error", "critical", "", 0, 0, "service", "api",
         "prod", "", "error", "", "unhealthy", "status", "", "error", 0);
}

static const struct {
    const char *name;
    void (*fill)(struct vg_page *);
    const char *json;
} pages[] = {
    {"firing (docs example)", fill_firing, firing_json},
    {"resolved", fill_resolved, resolved_json},
    {"first event", fill_first, first_json},
};

static void test_to_json_exact(void **state)
{
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(pages); i++) {
        struct vg_page pg;
        char *json;
        pages[i].fill(&pg);
        json = vg_page_to_json(&pg);
        if (strcmp(json, pages[i].json) != 0) {
            print_error("%s:\n want %s\n got  %s\n", pages[i].name, pages[i].json, json);
            failed++;
        }
        free(json);
        vg_page_fini(&pg);
    }
    assert_int_equal(failed, 0);
}

/* Compare every field that the body carries. */
static int page_diff(const char *what, const struct vg_page *a, const struct vg_page *b)
{
#define S(f)                                                                                       \
    do {                                                                                           \
        if (strcmp(a->f, b->f) != 0) {                                                             \
            print_error("%s: " #f " \"%s\" != \"%s\"\n", what, a->f, b->f);                        \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)
#define I(f)                                                                                       \
    do {                                                                                           \
        if (a->f != b->f) {                                                                        \
            print_error("%s: " #f " %lld != %lld\n", what, (long long)a->f, (long long)b->f);      \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)
    int failed = 0;
    S(status);
    S(incident.id);
    S(incident.monitor);
    S(incident.severity);
    S(incident.summary);
    I(incident.started_at_ms);
    I(incident.resolved_at_ms);
    S(resource.id);
    S(resource.type);
    S(resource.name);
    S(resource.workspace);
    S(resource.version);
    S(resource.owner);
    S(resource.status);
    S(resource.runtime);
    S(resource.health);
    S(transition.field);
    S(transition.from);
    S(transition.to);
    I(transition.at_ms);
    return failed;
#undef S
#undef I
}

static vg_err_t from_json_exact(struct vg_page *pg, const char *json, size_t len, char *errstr,
                                size_t errstr_size)
{
    char *buf = malloc(len ? len : 1);
    vg_err_t err;
    assert_non_null(buf);
    memcpy(buf, json, len);
    err = vg_page_from_json(pg, buf, len, errstr, errstr_size);
    free(buf);
    return err;
}

static void test_round_trip(void **state)
{
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(pages); i++) {
        struct vg_page want;
        struct vg_page got;
        char errstr[256] = "";
        char *json;
        char *again;
        vg_err_t err;

        pages[i].fill(&want);
        json = vg_page_to_json(&want);
        err = from_json_exact(&got, json, strlen(json), errstr, sizeof(errstr));
        if (err != VG_OK) {
            print_error("%s: from_json: %s (%s)\n", pages[i].name, vg_err_name(err), errstr);
            failed++;
        } else {
            failed += page_diff(pages[i].name, &want, &got);
            /* not part of the body */
            if (got.id || got.sink || got.pager) {
                print_error("%s: id/sink/pager set by from_json\n", pages[i].name);
                failed++;
            }
            again = vg_page_to_json(&got);
            if (strcmp(again, json) != 0) {
                print_error("%s: re-rendered body differs:\n %s\n %s\n", pages[i].name, json,
                            again);
                failed++;
            }
            free(again);
            vg_page_fini(&got);
        }
        free(json);
        vg_page_fini(&want);
    }
    assert_int_equal(failed, 0);
}

/* Whitespace and a different key order are fine on input (the outbox may be read by humans). */
static void test_from_json_pretty(void **state)
{
    static const char pretty[] =
        "{\n  \"transition\": {\"at\": \"2026-11-28T10:00:00.123Z\", \"to\": \"failed\",\n"
        "    \"from\": \"running\", \"field\": \"runtime\"},\n"
        "  \"resource\": {\"health\": \"unhealthy\", \"runtime\": \"failed\", \"status\": "
        "\"active\", \"owner\": \"iamgroot\", \"version\": \"v1\", \"workspace\": \"public\", "
        "\"name\": \"ingestion-x\", \"type\": \"workflow\", \"id\": "
        "\"workflow:v1:ingestion-x:public\"},\n"
        "  \"incident\": {\"resolved_at\": null, \"started_at\": \"2026-11-28T12:00:00.123+02:00\","
        " \"summary\": \"workflow ingestion-x in public failed\", \"severity\": \"high\", "
        "\"monitor\": \"workflow-failed\", \"id\": \"8c0f6a1e2b3d4c5f\", \"extra\": [1]},\n"
        "  \"status\": \"firing\", \"version\": \"1\", \"future_key\": {}\n}\n";
    struct vg_page want;
    struct vg_page got;
    char errstr[256] = "";

    (void)state;
    fill_firing(&want);
    assert_int_equal(from_json_exact(&got, pretty, strlen(pretty), errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(page_diff("pretty", &want, &got), 0);
    vg_page_fini(&got);
    vg_page_fini(&want);
}

static void test_escaping(void **state)
{
    static const struct {
        const char *summary;
        const char *want; /* as it appears between the quotes */
    } cases[] = {
        {"say \"hi\"", "say \\\"hi\\\""},
        {"back\\slash", "back\\\\slash"},
        {"line1\nline2", "line1\\nline2"},
        {"a\tb\rc", "a\\tb\\rc"},
        {"\x01\x02\x1f", "\\u0001\\u0002\\u001f"},
        {"\b\f", "\\u0008\\u000c"},
        {"slash / is fine", "slash / is fine"},
        {"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
         "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"},
        {"</script>", "</script>"},
        {"", ""},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_page pg;
        struct vg_page back;
        char errstr[256] = "";
        char *json;
        char *want_frag = vg_asprintf("\"summary\":\"%s\",\"started_at\"", cases[i].want);

        fill_firing(&pg);
        free(pg.incident.summary);
        pg.incident.summary = vg_strdup(cases[i].summary);
        json = vg_page_to_json(&pg);
        if (!strstr(json, want_frag)) {
            print_error("case %zu: want fragment %s in\n %s\n", i, want_frag, json);
            failed++;
        }
        /* and it parses back to the same bytes */
        if (from_json_exact(&back, json, strlen(json), errstr, sizeof(errstr)) != VG_OK) {
            print_error("case %zu: does not parse back: %s\n", i, errstr);
            failed++;
        } else {
            if (strcmp(back.incident.summary, cases[i].summary) != 0) {
                print_error("case %zu: summary back \"%s\"\n", i, back.incident.summary);
                failed++;
            }
            vg_page_fini(&back);
        }
        free(want_frag);
        free(json);
        vg_page_fini(&pg);
    }
    assert_int_equal(failed, 0);
}

/* Escaping applies to every string, not only the summary. */
static void test_escaping_other_fields(void **state)
{
    struct vg_page pg;
    struct vg_page back;
    char errstr[256] = "";
    char *json;

    (void)state;
    fill_firing(&pg);
    free(pg.resource.owner);
    pg.resource.owner = vg_strdup("o\"w\\n\ner");
    free(pg.incident.monitor);
    pg.incident.monitor = vg_strdup("m\x01");
    json = vg_page_to_json(&pg);
    assert_non_null(strstr(json, "\"owner\":\"o\\\"w\\\\n\\ner\""));
    assert_non_null(strstr(json, "\"monitor\":\"m\\u0001\""));
    assert_int_equal(from_json_exact(&back, json, strlen(json), errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(page_diff("escaped", &pg, &back), 0);
    vg_page_fini(&back);
    free(json);
    vg_page_fini(&pg);
}

static void test_malformed(void **state)
{
#define C(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct {
        const char *json;
        size_t len;
    } cases[] = {
        C(""),
        C("{"),
        C("not json"),
        C("[]"),
        C("{}"),
        C("null"),
        C("\"firing\""),
        /* status missing or not a string */
        C("{\"version\":\"1\",\"incident\":{},\"resource\":{},\"transition\":{}}"),
        C("{\"status\":1,\"incident\":{},\"resource\":{},\"transition\":{}}"),
        C("{\"status\":null,\"incident\":{},\"resource\":{},\"transition\":{}}"),
        /* a section missing or not an object */
        C("{\"status\":\"firing\",\"resource\":{},\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{},\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{},\"resource\":{}}"),
        C("{\"status\":\"firing\",\"incident\":[],\"resource\":{},\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{},\"resource\":\"x\",\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{},\"resource\":{},\"transition\":null}"),
        /* bad timestamps */
        C("{\"status\":\"firing\",\"incident\":{\"started_at\":\"yesterday\"},\"resource\":{},"
          "\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{\"started_at\":1795860000123},\"resource\":{},"
          "\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{\"resolved_at\":\"2026-02-30T00:00:00Z\"},"
          "\"resource\":{},\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{\"resolved_at\":true},\"resource\":{},"
          "\"transition\":{}}"),
        C("{\"status\":\"firing\",\"incident\":{},\"resource\":{},\"transition\":"
          "{\"at\":\"2026-11-28T10:00:00\"}}"),
        /* the documented body, cut short */
        {firing_json, sizeof(firing_json) - 2},
        {firing_json, 40},
    };
#undef C
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_page pg;
        char errstr[256] = "";
        vg_err_t err = from_json_exact(&pg, cases[i].json, cases[i].len, errstr, sizeof(errstr));
        if (err != VG_ERR_PARSE || !errstr[0] || pg.status || pg.incident.id || pg.resource.id) {
            print_error("case %zu (%.*s): want PARSE with errstr and an empty page, got %s "
                        "\"%s\"\n",
                        i, (int)(cases[i].len > 80 ? 80 : cases[i].len), cases[i].json,
                        vg_err_name(err), errstr);
            failed++;
        }
        vg_page_fini(&pg);
    }
    assert_int_equal(failed, 0);
}

/*
 * Regression (core/page.c, vg_page_from_json): parses with cJSON_ParseWithLength,
 * which ignores whatever follows the first JSON value, so a body with
 * trailing garbage ("{...}garbage", or two bodies back to back) is
 * accepted as VG_OK. Expected VG_ERR_PARSE for malformed input (as the
 * contract in page.h says, and as vg_event_decode does for events).
 */
static void test_malformed_trailing_regression(void **state)
{
    static const char *const suffixes[] = {"garbage", "}", "{}", ",\"x\":1}"};
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(suffixes); i++) {
        struct vg_page pg;
        char errstr[256] = "";
        char *json = vg_asprintf("%s%s", firing_json, suffixes[i]);
        vg_err_t err = from_json_exact(&pg, json, strlen(json), errstr, sizeof(errstr));
        if (err != VG_ERR_PARSE) {
            print_error("case %zu (body + \"%s\"): want PARSE, got %s\n", i, suffixes[i],
                        vg_err_name(err));
            failed++;
        }
        vg_page_fini(&pg);
        free(json);
    }
    assert_int_equal(failed, 0);
}

/*
 * A grouped body whose incident entry lacks its resource or transition (or
 * whose single bodies do) is malformed: VG_ERR_PARSE and NULL, never the
 * "out of memory" abort of printing a part that is not there.
 */
static void test_group_missing_part(void **state)
{
    static const char *const entries[] = {
        "{\"status\":\"firing\",\"incident\":{\"id\":\"a\"},\"transition\":{}}",
        "{\"status\":\"firing\",\"incident\":{\"id\":\"a\"},\"resource\":{}}",
        "{\"status\":\"firing\",\"resource\":{},\"transition\":{}}",
        "{\"status\":\"firing\",\"incident\":{},\"resource\":7,\"transition\":{}}",
    };
    static const char body[] = "{\"status\":\"firing\",\"incident\":{\"id\":\"a\","
                               "\"started_at\":\"2026-11-28T10:00:00Z\"},\"transition\":{}}";
    const char *bodies[] = {body};
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(entries); i++) {
        struct vg_pages out = {0};
        char errstr[256] = "";
        char *json = vg_asprintf("{\"version\":\"1\",\"status\":\"firing\",\"group\":{\"pager\":"
                                 "\"p\",\"labels\":{}},\"incidents\":[%s]}",
                                 entries[i]);

        if (vg_page_group_from_json(&out, json, strlen(json), errstr, sizeof(errstr)) !=
                VG_ERR_PARSE ||
            out.n != 0) {
            print_error("case %zu: want PARSE and no page\n", i);
            failed++;
        }
        vg_pages_fini(&out);
        free(json);
    }
    assert_int_equal(failed, 0);
    assert_null(vg_page_group_to_json("p", NULL, 0, bodies, 1));
}

/*
 * An incident record's seq and partition are ints: a number beyond them
 * makes the record unreadable (converting it was undefined behaviour);
 * in range, or absent (0), it reads.
 */
static void test_incident_record_numbers(void **state)
{
    static const struct {
        const char *numbers;
        bool ok;
        int seq;
        int32_t partition;
    } cases[] = {
        {"\"seq\":2,\"partition\":3", true, 2, 3},
        {"\"seq\":2", true, 2, 0},
        {"\"seq\":\"2\",\"partition\":3", true, 0, 3},
        {"\"seq\":2,\"partition\":7.7e34", false, 0, 0},
        {"\"seq\":1e300,\"partition\":3", false, 0, 0},
        {"\"seq\":-1,\"partition\":3", false, 0, 0},
        {"\"seq\":2,\"partition\":-2147483649", false, 0, 0},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_incident_record r;
        char *json = vg_asprintf("{\"id\":\"a\",\"monitor\":\"m\",\"resource\":\"w:v:n:p\","
                                 "\"state\":\"firing\",\"started_at\":\"2026-11-28T10:00:00Z\","
                                 "\"ended_at\":null,\"updated_at\":\"2026-11-28T10:00:00Z\",%s}",
                                 cases[i].numbers);
        bool ok = vg_incident_record_from_json(&r, json, strlen(json));

        if (ok != cases[i].ok ||
            (ok && (r.seq != cases[i].seq || r.partition != cases[i].partition))) {
            print_error("case %zu (%s): ok=%d seq=%d partition=%d\n", i, cases[i].numbers, ok,
                        r.seq, (int)r.partition);
            failed++;
        }
        vg_incident_record_fini(&r);
        free(json);
    }
    assert_int_equal(failed, 0);
}

static void test_pages_list(void **state)
{
    struct vg_pages pl = {0};

    (void)state;
    for (int i = 0; i < 20; i++) {
        struct vg_page *pg = vg_pages_push(&pl);
        assert_null(pg->status);
        assert_null(pg->incident.id);
        fill_firing(pg);
    }
    assert_int_equal(pl.n, 20);
    assert_string_equal(pl.items[19].incident.id, "8c0f6a1e2b3d4c5f");
    vg_pages_clear(&pl);
    assert_int_equal(pl.n, 0);
    assert_true(pl.cap >= 20);
    fill_resolved(vg_pages_push(&pl));
    assert_string_equal(pl.items[0].status, "resolved");
    vg_pages_fini(&pl);
    assert_int_equal(pl.n, 0);
    assert_null(pl.items);
    vg_pages_fini(&pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_json_exact),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_from_json_pretty),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_escaping_other_fields),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_malformed_trailing_regression),
        cmocka_unit_test(test_pages_list),
        cmocka_unit_test(test_group_missing_part),
        cmocka_unit_test(test_incident_record_numbers),
    };
    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
