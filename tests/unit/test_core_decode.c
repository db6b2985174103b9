/*
 * vg_event_decode: valid native events (full, minimal, null fields,
 * unicode, unknown keys) and one or more cases of every invalid class of
 * enum vg_decode_reason, checking the reason, that `detail` names the
 * field, and that `ev` is left zeroed. Payloads are copied into heap
 * buffers of exactly `len` bytes with no NUL, so ASan catches over-reads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define T0 INT64_C(1795860000123) /* 2026-11-28T10:00:00.123Z */
#define KTS INT64_C(1700000000000)

static enum vg_decode_reason decode_n(struct vg_event *ev, const char *json, size_t len,
                                      int64_t kafka_ts_ms, char *detail, size_t detail_size)
{
    char *buf = malloc(len ? len : 1);
    enum vg_decode_reason r;
    assert_non_null(buf);
    memcpy(buf, json, len);
    r = vg_event_decode(ev, buf, len, kafka_ts_ms, detail, detail_size);
    free(buf);
    return r;
}

static bool is_zeroed(const struct vg_event *ev)
{
    static const struct vg_event zero;
    return memcmp(ev, &zero, sizeof(zero)) == 0;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

#define RES_JSON                                                                                   \
    "\"resource\":{\"type\":\"workflow\",\"name\":\"ingestion-x\",\"workspace\":\"public\"}"

static void test_valid(void **state)
{
    static const struct {
        const char *json;
        int64_t kafka_ts;
        const char *id, *type, *name, *workspace, *version, *owner;
        const char *status, *runtime;
        int64_t time_ms;
        const char *message; /* NULL: absent */
    } cases[] = {
        /* full */
        {"{\"resource\":{\"type\":\"workflow\",\"name\":\"ingestion-x\",\"workspace\":\"public\","
         "\"version\":\"v2\",\"owner\":\"iamgroot\"},\"status\":\"active\",\"runtime\":\"failed\","
         "\"time\":\"2026-11-28T10:00:00.123Z\",\"message\":\"exit code 1\"}",
         KTS, "workflow:v2:ingestion-x:public", "workflow", "ingestion-x", "public", "v2",
         "iamgroot", "active", "failed", T0, "exit code 1"},
        /* minimal: version v1, owner "", time from Kafka, no runtime, no message */
        {"{" RES_JSON ",\"status\":\"active\"}", KTS, "workflow:v1:ingestion-x:public", "workflow",
         "ingestion-x", "public", "v1", "", "active", "", KTS, NULL},
        /* only runtime */
        {"{" RES_JSON ",\"runtime\":\"pending\"}", KTS, "workflow:v1:ingestion-x:public",
         "workflow", "ingestion-x", "public", "v1", "", "", "pending", KTS, NULL},
        /* every status and runtime value */
        {"{" RES_JSON ",\"status\":\"error\",\"runtime\":\"running\"}", 5, NULL, NULL, NULL, NULL,
         NULL, NULL, "error", "running", 5, NULL},
        {"{" RES_JSON ",\"status\":\"deleted\",\"runtime\":\"succeeded\"}", 5, NULL, NULL, NULL,
         NULL, NULL, NULL, "deleted", "succeeded", 5, NULL},
        /* nulls are treated as absent */
        {"{\"resource\":{\"type\":\"job\",\"name\":\"n\",\"workspace\":\"w\",\"version\":null,"
         "\"owner\":null},\"status\":\"active\",\"runtime\":null,\"time\":null,\"message\":null}",
         KTS, "job:v1:n:w", "job", "n", "w", "v1", "", "active", "", KTS, NULL},
        {"{" RES_JSON ",\"status\":null,\"runtime\":\"failed\"}", KTS, NULL, NULL, NULL, NULL, NULL,
         NULL, "", "failed", KTS, NULL},
        /* unicode names, raw and escaped */
        {"{\"resource\":{\"type\":\"service\",\"name\":\"donn\xc3\xa9"
         "es-\xe6\x97\xa5\xe6\x9c\xac"
         "-\xf0\x9f\x98\x80\",\"workspace\":\"caf\\u00e9\",\"owner\":\"\\u65e5\"},"
         "\"status\":\"active\",\"message\":\"\\ud83d\\ude00 ok\"}",
         KTS,
         "service:v1:donn\xc3\xa9"
         "es-\xe6\x97\xa5\xe6\x9c\xac-\xf0\x9f\x98\x80:caf\xc3\xa9",
         "service",
         "donn\xc3\xa9"
         "es-\xe6\x97\xa5\xe6\x9c\xac-\xf0\x9f\x98\x80",
         "caf\xc3\xa9", "v1", "\xe6\x97\xa5", "active", "", KTS, "\xf0\x9f\x98\x80 ok"},
        /* unknown keys ignored, at the top and inside resource; key order free */
        {"{\"extra\":{\"a\":[1,2,{\"b\":null}]},\"status\":\"active\",\"resource\":{\"labels\":"
         "{\"x\":\"y\"},\"workspace\":\"w\",\"name\":\"n\",\"type\":\"t\",\"uid\":42},\"v\":1.5}",
         KTS, "t:v1:n:w", "t", "n", "w", "v1", "", "active", "", KTS, NULL},
        /* owner may contain ':' (it is not part of the id); an empty message is a message */
        {"{" RES_JSON ",\"status\":\"active\",\"message\":\"\"}", KTS, NULL, NULL, NULL, NULL, NULL,
         NULL, "active", "", KTS, ""},
        {"{\"resource\":{\"type\":\"job\",\"name\":\"n\",\"workspace\":\"w\",\"owner\":"
         "\"team:data\"},\"status\":\"active\"}",
         KTS, "job:v1:n:w", NULL, NULL, NULL, NULL, "team:data", "active", "", KTS, NULL},
        /* time with an offset wins over the Kafka timestamp */
        {"{" RES_JSON ",\"status\":\"active\",\"time\":\"2026-11-28T12:00:00.123+02:00\"}", KTS,
         NULL, NULL, NULL, NULL, NULL, NULL, "active", "", T0, NULL},
        /* a Kafka timestamp of 0 is a timestamp */
        {"{" RES_JSON ",\"status\":\"active\"}", 0, NULL, NULL, NULL, NULL, NULL, NULL, "active",
         "", 0, NULL},
        /* whitespace around the document */
        {" \r\n\t{" RES_JSON ",\"status\":\"active\"} \n\t\r ", KTS,
         "workflow:v1:ingestion-x:public", NULL, NULL, NULL, NULL, NULL, "active", "", KTS, NULL},
        /* brackets inside strings do not count as nesting */
        {"{" RES_JSON ",\"status\":\"active\",\"message\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}",
         KTS, NULL, NULL, NULL, NULL, NULL, NULL, "active", "", KTS,
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event ev;
        char detail[256] = "untouched";
        enum vg_decode_reason r = decode_n(&ev, cases[i].json, strlen(cases[i].json),
                                           cases[i].kafka_ts, detail, sizeof(detail));
        if (r != VG_DECODE_OK) {
            print_error("case %zu: want ok, got %s (%s)\n", i, vg_decode_reason_name(r), detail);
            failed++;
            continue;
        }
        if ((cases[i].id && !str_eq(ev.id, cases[i].id)) ||
            (cases[i].type && !str_eq(ev.type, cases[i].type)) ||
            (cases[i].name && !str_eq(ev.name, cases[i].name)) ||
            (cases[i].workspace && !str_eq(ev.workspace, cases[i].workspace)) ||
            (cases[i].version && !str_eq(ev.version, cases[i].version)) ||
            (cases[i].owner && !str_eq(ev.owner, cases[i].owner)) ||
            strcmp(ev.status, cases[i].status) != 0 || strcmp(ev.runtime, cases[i].runtime) != 0 ||
            ev.time_ms != cases[i].time_ms || !str_eq(ev.message, cases[i].message) || !ev.id ||
            !ev.version || !ev.owner || ev.pos.topic || ev.pos.partition || ev.pos.offset ||
            detail[0] != '\0') {
            print_error("case %zu: got id \"%s\" version \"%s\" owner \"%s\" status \"%s\" "
                        "runtime \"%s\" time %lld message \"%s\" detail \"%s\"\n",
                        i, ev.id ? ev.id : "(null)", ev.version ? ev.version : "(null)",
                        ev.owner ? ev.owner : "(null)", ev.status, ev.runtime,
                        (long long)ev.time_ms, ev.message ? ev.message : "(null)", detail);
            failed++;
        }
        /* the id is always type:version:name:workspace */
        if (ev.id) {
            char *want_id = vg_asprintf("%s:%s:%s:%s", ev.type, ev.version, ev.name, ev.workspace);
            if (strcmp(ev.id, want_id) != 0) {
                print_error("case %zu: id \"%s\", want \"%s\"\n", i, ev.id, want_id);
                failed++;
            }
            free(want_id);
        }
        vg_event_fini(&ev);
        if (!is_zeroed(&ev)) {
            print_error("case %zu: vg_event_fini left the event non-zero\n", i);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* No `time` and no Kafka timestamp (-1): decode time. */
static void test_time_now_when_no_timestamp(void **state)
{
    static const char json[] = "{" RES_JSON ",\"status\":\"active\"}";
    struct vg_event ev;
    int64_t before = vg_now_ms();
    int64_t after;

    (void)state;
    assert_int_equal(decode_n(&ev, json, strlen(json), -1, NULL, 0), VG_DECODE_OK);
    after = vg_now_ms();
    assert_true(ev.time_ms >= before && ev.time_ms <= after);
    vg_event_fini(&ev);
}

/*
 * Invalid and valid events built from one template: the resource fields
 * type/name/workspace (present), version/owner (absent), and top-level
 * status "active" (runtime, time, message absent). A case replaces one
 * field's raw JSON value (NULL: remove it). "@LONGn" means a string of n
 * 'a's.
 */
struct field_case {
    const char *field;
    const char *raw;
    enum vg_decode_reason want;
    const char *detail; /* substring the detail must contain (failures only) */
};

static void append_raw(struct vg_buf *b, const char *raw)
{
    if (strncmp(raw, "@LONG", 5) == 0) {
        long n = strtol(raw + 5, NULL, 10);
        vg_buf_putc(b, '"');
        for (long i = 0; i < n; i++) {
            vg_buf_putc(b, 'a');
        }
        vg_buf_putc(b, '"');
    } else {
        vg_buf_puts(b, raw);
    }
}

static char *build_event(const char *field, const char *raw)
{
    static const struct {
        const char *name;
        const char *base;
        bool in_resource;
    } fields[] = {
        {"type", "\"workflow\"", true},
        {"name", "\"ingestion-x\"", true},
        {"workspace", "\"public\"", true},
        {"version", NULL, true},
        {"owner", NULL, true},
        {"status", "\"active\"", false},
        {"runtime", NULL, false},
        {"time", NULL, false},
        {"message", NULL, false},
    };
    struct vg_buf b = {0};
    bool first = true;
    bool found = false;

    vg_buf_puts(&b, "{\"resource\":{");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            vg_buf_putc(&b, '}');
            first = false;
        }
        for (size_t i = 0; i < VG_ARRAY_LEN(fields); i++) {
            const char *v = fields[i].base;
            if (fields[i].in_resource != (pass == 0)) {
                continue;
            }
            if (strcmp(fields[i].name, field) == 0) {
                v = raw;
                found = true;
            }
            if (!v) {
                continue;
            }
            if (!first) {
                vg_buf_putc(&b, ',');
            }
            first = false;
            vg_buf_printf(&b, "\"%s\":", fields[i].name);
            append_raw(&b, v);
        }
    }
    vg_buf_putc(&b, '}');
    VG_ASSERT(found);
    return vg_buf_steal(&b);
}

static int run_field_cases(const struct field_case *cases, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct vg_event ev;
        char detail[256] = "untouched";
        char *json = build_event(cases[i].field, cases[i].raw);
        enum vg_decode_reason r = decode_n(&ev, json, strlen(json), KTS, detail, sizeof(detail));
        bool ok = r == cases[i].want;
        if (ok && r == VG_DECODE_OK) {
            ok = detail[0] == '\0';
            vg_event_fini(&ev);
        } else if (ok) {
            ok = is_zeroed(&ev) && cases[i].detail && strstr(detail, cases[i].detail);
        }
        if (!ok) {
            print_error("case %zu (%s = %.60s): want %s detail ~\"%s\", got %s detail \"%s\" "
                        "ev %s\n  json: %.200s\n",
                        i, cases[i].field, cases[i].raw ? cases[i].raw : "(absent)",
                        vg_decode_reason_name(cases[i].want),
                        cases[i].detail ? cases[i].detail : "", vg_decode_reason_name(r), detail,
                        is_zeroed(&ev) ? "zeroed" : "NOT zeroed", json);
            failed++;
            if (r == VG_DECODE_OK) {
                vg_event_fini(&ev);
            }
        }
        free(json);
    }
    return failed;
}

static void test_bad_fields(void **state)
{
    static const struct field_case cases[] = {
        /* required identity fields: missing, null, wrong type, empty, too long, ':' */
        {"type", NULL, VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "null", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "42", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "true", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "{}", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "[\"workflow\"]", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "\"\"", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "@LONG4097", VG_DECODE_BAD_FIELD, "resource.type"},
        {"type", "\"work:flow\"", VG_DECODE_BAD_FIELD, "resource.type"},
        {"name", NULL, VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "null", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "1.5", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "false", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "[]", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\"\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "@LONG4097", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\"a:b\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\":\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\"a\\u0001b\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\"a\\nb\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\"a\\tb\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"workspace", NULL, VG_DECODE_BAD_FIELD, "resource.workspace"},
        {"workspace", "null", VG_DECODE_BAD_FIELD, "resource.workspace"},
        {"workspace", "7", VG_DECODE_BAD_FIELD, "resource.workspace"},
        {"workspace", "{\"a\":1}", VG_DECODE_BAD_FIELD, "resource.workspace"},
        {"workspace", "\"\"", VG_DECODE_BAD_FIELD, "resource.workspace"},
        {"workspace", "@LONG4097", VG_DECODE_BAD_FIELD, "resource.workspace"},
        {"workspace", "\"pub:lic\"", VG_DECODE_BAD_FIELD, "resource.workspace"},
        /* optional identity field: version (part of the id, so no ':' and not empty) */
        {"version", "2", VG_DECODE_BAD_FIELD, "resource.version"},
        {"version", "\"\"", VG_DECODE_BAD_FIELD, "resource.version"},
        {"version", "@LONG4097", VG_DECODE_BAD_FIELD, "resource.version"},
        {"version", "\"v1:x\"", VG_DECODE_BAD_FIELD, "resource.version"},
        /* owner and message: wrong type or too long */
        {"owner", "42", VG_DECODE_BAD_FIELD, "resource.owner"},
        {"owner", "[\"a\"]", VG_DECODE_BAD_FIELD, "resource.owner"},
        {"owner", "@LONG4097", VG_DECODE_BAD_FIELD, "resource.owner"},
        {"message", "42", VG_DECODE_BAD_FIELD, "message"},
        {"message", "{\"text\":\"x\"}", VG_DECODE_BAD_FIELD, "message"},
        {"message", "@LONG65537", VG_DECODE_BAD_FIELD, "message"},
        /* boundaries that are fine */
        {"type", "@LONG4096", VG_DECODE_OK, NULL},
        {"name", "@LONG4096", VG_DECODE_OK, NULL},
        {"workspace", "@LONG4096", VG_DECODE_OK, NULL},
        {"version", "@LONG4096", VG_DECODE_OK, NULL},
        {"owner", "@LONG4096", VG_DECODE_OK, NULL},
        {"owner", "\"\"", VG_DECODE_OK, NULL},
        {"message", "@LONG65536", VG_DECODE_OK, NULL},
        {"name", "\"a b/c.d_e-f@g\"", VG_DECODE_OK, NULL},
    };

    (void)state;
    assert_int_equal(run_field_cases(cases, VG_ARRAY_LEN(cases)), 0);
}

static void test_bad_signal(void **state)
{
    static const struct field_case cases[] = {
        /* no signal: neither status nor runtime (absent or null) */
        {"status", NULL, VG_DECODE_NO_SIGNAL, "status"},
        {"status", "null", VG_DECODE_NO_SIGNAL, "status"},
        /* bad status */
        {"status", "\"bogus\"", VG_DECODE_BAD_STATUS, "status"},
        {"status", "\"Active\"", VG_DECODE_BAD_STATUS, "status"},
        {"status", "\"active \"", VG_DECODE_BAD_STATUS, "status"},
        {"status", "\"running\"", VG_DECODE_BAD_STATUS, "status"},
        {"status", "\"\"", VG_DECODE_BAD_STATUS, "status"},
        {"status", "1", VG_DECODE_BAD_STATUS, "status"},
        {"status", "true", VG_DECODE_BAD_STATUS, "status"},
        {"status", "[\"active\"]", VG_DECODE_BAD_STATUS, "status"},
        {"status", "{\"value\":\"active\"}", VG_DECODE_BAD_STATUS, "status"},
        {"status", "@LONG100", VG_DECODE_BAD_STATUS, "status"},
        /* bad runtime (status stays "active") */
        {"runtime", "\"bogus\"", VG_DECODE_BAD_RUNTIME, "runtime"},
        {"runtime", "\"Running\"", VG_DECODE_BAD_RUNTIME, "runtime"},
        {"runtime", "\"active\"", VG_DECODE_BAD_RUNTIME, "runtime"},
        {"runtime", "\"\"", VG_DECODE_BAD_RUNTIME, "runtime"},
        {"runtime", "0", VG_DECODE_BAD_RUNTIME, "runtime"},
        {"runtime", "false", VG_DECODE_BAD_RUNTIME, "runtime"},
        {"runtime", "[]", VG_DECODE_BAD_RUNTIME, "runtime"},
        /* bad time */
        {"time", "\"yesterday\"", VG_DECODE_BAD_TIME, "time"},
        {"time", "1795860000123", VG_DECODE_BAD_TIME, "time"},
        {"time", "\"1795860000123\"", VG_DECODE_BAD_TIME, "time"},
        {"time", "\"\"", VG_DECODE_BAD_TIME, "time"},
        {"time", "\"2026-02-30T00:00:00Z\"", VG_DECODE_BAD_TIME, "time"},
        {"time", "\"2026-11-28T10:00:00\"", VG_DECODE_BAD_TIME, "time"},
        {"time", "\"2026-11-28\"", VG_DECODE_BAD_TIME, "time"},
        {"time", "true", VG_DECODE_BAD_TIME, "time"},
        {"time", "{}", VG_DECODE_BAD_TIME, "time"},
        /* fine */
        {"time", "\"2026-11-28T10:00:00Z\"", VG_DECODE_OK, NULL},
        {"time", "null", VG_DECODE_OK, NULL},
        {"runtime", "null", VG_DECODE_OK, NULL},
        {"runtime", "\"succeeded\"", VG_DECODE_OK, NULL},
    };

    (void)state;
    assert_int_equal(run_field_cases(cases, VG_ARRAY_LEN(cases)), 0);
}

/* Whole-document failures: explicit lengths, so embedded NULs and truncation are possible. */
static void test_bad_documents(void **state)
{
#define EV "{" RES_JSON ",\"status\":\"active\"}"
#define C(s, r, d)                                                                                 \
    {                                                                                              \
        s, sizeof(s) - 1, r, d                                                                     \
    }
    static const struct {
        const char *json;
        size_t len;
        enum vg_decode_reason want;
        const char *detail;
    } cases[] = {
        /* bad JSON */
        C("", VG_DECODE_BAD_JSON, "empty"),
        C("{", VG_DECODE_BAD_JSON, "JSON"),
        C("}", VG_DECODE_BAD_JSON, "JSON"),
        C("nul", VG_DECODE_BAD_JSON, "JSON"),
        C("{\"resource\":}", VG_DECODE_BAD_JSON, "JSON"),
        C("{'resource':{}}", VG_DECODE_BAD_JSON, "JSON"),
        C("{\"a\":1,}", VG_DECODE_BAD_JSON, "JSON"),
        C("[1,]", VG_DECODE_BAD_JSON, "JSON"),
        C("\"unterminated", VG_DECODE_BAD_JSON, "JSON"),
        C("{" RES_JSON ",\"status\":\"active\"", VG_DECODE_BAD_JSON, "JSON"),
        C("{" RES_JSON ",\"status\":\"active\",}", VG_DECODE_BAD_JSON, "JSON"),
        C("{" RES_JSON ",\"status\":\"active\" \"runtime\":\"running\"}", VG_DECODE_BAD_JSON,
          "JSON"),
        C("{\"name\":\"\\x41\"}", VG_DECODE_BAD_JSON, "JSON"),
        C("   ", VG_DECODE_BAD_JSON, "JSON"),
        /* trailing garbage */
        C(EV "x", VG_DECODE_BAD_JSON, "trailing"),
        C(EV "{}", VG_DECODE_BAD_JSON, "trailing"),
        C(EV EV, VG_DECODE_BAD_JSON, "trailing"),
        C(EV "\n" EV, VG_DECODE_BAD_JSON, "trailing"),
        C(EV " ,", VG_DECODE_BAD_JSON, "trailing"),
        C(EV "\0", VG_DECODE_BAD_JSON, "trailing"),
        C(EV "\0garbage", VG_DECODE_BAD_JSON, "trailing"),
        /* not an object */
        C("[]", VG_DECODE_NOT_OBJECT, "object"),
        C("[" EV "]", VG_DECODE_NOT_OBJECT, "object"),
        C("\"resource\"", VG_DECODE_NOT_OBJECT, "object"),
        C("42", VG_DECODE_NOT_OBJECT, "object"),
        C("null", VG_DECODE_NOT_OBJECT, "object"),
        C("true", VG_DECODE_NOT_OBJECT, "object"),
        /* no resource, or not an object */
        C("{}", VG_DECODE_NO_RESOURCE, "resource"),
        C("{\"status\":\"active\"}", VG_DECODE_NO_RESOURCE, "resource"),
        C("{\"Resource\":{\"type\":\"t\",\"name\":\"n\",\"workspace\":\"w\"},\"status\":"
          "\"active\"}",
          VG_DECODE_NO_RESOURCE, "resource"),
        C("{\"resource\":\"workflow:v1:a:b\",\"status\":\"active\"}", VG_DECODE_NO_RESOURCE,
          "resource"),
        C("{\"resource\":[],\"status\":\"active\"}", VG_DECODE_NO_RESOURCE, "resource"),
        C("{\"resource\":null,\"status\":\"active\"}", VG_DECODE_NO_RESOURCE, "resource"),
        C("{\"resource\":42,\"status\":\"active\"}", VG_DECODE_NO_RESOURCE, "resource"),
        /* not UTF-8: overlong, lone continuation byte, surrogate, truncated, bad lead byte */
        C("{\"resource\":{\"type\":\"t\",\"name\":\"a\xc0\xaf\",\"workspace\":\"w\"},"
          "\"status\":\"active\"}",
          VG_DECODE_NOT_UTF8, "UTF-8"),
        C("{\"resource\":{\"type\":\"t\",\"name\":\"a\xe0\x80\xaf\",\"workspace\":\"w\"},"
          "\"status\":\"active\"}",
          VG_DECODE_NOT_UTF8, "UTF-8"),
        C("{" RES_JSON ",\"status\":\"active\",\"message\":\"\x80\"}", VG_DECODE_NOT_UTF8, "UTF-8"),
        C("{\"resource\":{\"type\":\"t\",\"name\":\"\xed\xa0\x80\",\"workspace\":\"w\"},"
          "\"status\":\"active\"}",
          VG_DECODE_NOT_UTF8, "UTF-8"),
        C("{\"resource\":{\"type\":\"t\",\"name\":\"n\",\"workspace\":\"w\",\"owner\":\"\xff\"},"
          "\"status\":\"active\"}",
          VG_DECODE_NOT_UTF8, "UTF-8"),
        C("{" RES_JSON ",\"status\":\"active\",\"message\":\"caf\xc3\"}", VG_DECODE_NOT_UTF8,
          "UTF-8"),
        C(EV "\xc3", VG_DECODE_NOT_UTF8, "UTF-8"),
        /* escaped lone surrogates cannot become UTF-8: cJSON refuses them */
        C("{\"resource\":{\"type\":\"t\",\"name\":\"\\ud800\",\"workspace\":\"w\"},"
          "\"status\":\"active\"}",
          VG_DECODE_BAD_JSON, "JSON"),
        C("{\"resource\":{\"type\":\"t\",\"name\":\"\\udc00x\",\"workspace\":\"w\"},"
          "\"status\":\"active\"}",
          VG_DECODE_BAD_JSON, "JSON"),
    };
#undef C
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event ev;
        char detail[256] = "untouched";
        enum vg_decode_reason r =
            decode_n(&ev, cases[i].json, cases[i].len, KTS, detail, sizeof(detail));
        if (r != cases[i].want || !is_zeroed(&ev) || !strstr(detail, cases[i].detail)) {
            print_error("case %zu (%.80s): want %s detail ~\"%s\", got %s detail \"%s\"%s\n", i,
                        cases[i].json, vg_decode_reason_name(cases[i].want), cases[i].detail,
                        vg_decode_reason_name(r), detail, is_zeroed(&ev) ? "" : " ev NOT zeroed");
            failed++;
            if (r == VG_DECODE_OK) {
                vg_event_fini(&ev);
            }
        }
    }
    assert_int_equal(failed, 0);
}

/* A valid event padded with trailing spaces to exactly `len` bytes. */
static char *padded_event(size_t len)
{
    static const char json[] = EV;
    char *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, ' ', len);
    memcpy(buf, json, sizeof(json) - 1);
    return buf;
}

static void test_too_large(void **state)
{
    struct vg_event ev;
    char detail[128] = "";
    char *buf;

    (void)state;
    /* exactly the limit: fine */
    buf = padded_event(VG_MAX_EVENT_BYTES);
    assert_int_equal(vg_event_decode(&ev, buf, VG_MAX_EVENT_BYTES, KTS, detail, sizeof(detail)),
                     VG_DECODE_OK);
    assert_string_equal(ev.id, "workflow:v1:ingestion-x:public");
    vg_event_fini(&ev);
    free(buf);

    /* one byte over */
    buf = padded_event(VG_MAX_EVENT_BYTES + 1);
    assert_int_equal(vg_event_decode(&ev, buf, VG_MAX_EVENT_BYTES + 1, KTS, detail, sizeof(detail)),
                     VG_DECODE_TOO_LARGE);
    assert_true(is_zeroed(&ev));
    assert_non_null(strstr(detail, "1 MiB"));
    free(buf);
}

/* An event whose "x" member holds `arrays` nested arrays: depth arrays + 1. */
static char *nested_event(int arrays)
{
    struct vg_buf b = {0};
    vg_buf_puts(&b, "{" RES_JSON ",\"status\":\"active\",\"x\":");
    for (int i = 0; i < arrays; i++) {
        vg_buf_putc(&b, '[');
    }
    for (int i = 0; i < arrays; i++) {
        vg_buf_putc(&b, ']');
    }
    vg_buf_putc(&b, '}');
    return vg_buf_steal(&b);
}

static void test_too_deep(void **state)
{
    static const struct {
        const char *json; /* NULL: nested_event(arrays) */
        int arrays;
        enum vg_decode_reason want;
    } cases[] = {
        {NULL, 31, VG_DECODE_OK},       /* 32 levels */
        {NULL, 32, VG_DECODE_TOO_DEEP}, /* 33 levels */
        {NULL, 1000, VG_DECODE_TOO_DEEP},
        /* 33 levels of objects in resource */
        {"{\"resource\":{\"type\":\"t\",\"name\":\"n\",\"workspace\":\"w\",\"l\":"
         "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
         "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
         "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}"
         "}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}},\"status\":\"active\"}",
         0, VG_DECODE_TOO_DEEP},
        /* the deep part is not even valid JSON: the depth check comes first */
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 0, VG_DECODE_TOO_DEEP},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_event ev;
        char detail[128] = "";
        char *json = cases[i].json ? vg_strdup(cases[i].json) : nested_event(cases[i].arrays);
        enum vg_decode_reason r = decode_n(&ev, json, strlen(json), KTS, detail, sizeof(detail));
        if (r != cases[i].want ||
            (r != VG_DECODE_OK && (!is_zeroed(&ev) || !strstr(detail, "32")))) {
            print_error("case %zu: want %s, got %s (%s)\n", i, vg_decode_reason_name(cases[i].want),
                        vg_decode_reason_name(r), detail);
            failed++;
        }
        if (r == VG_DECODE_OK) {
            vg_event_fini(&ev);
        }
        free(json);
    }
    assert_int_equal(failed, 0);
}

static void test_detail_optional_and_truncated(void **state)
{
    static const char bad[] =
        "{\"resource\":{\"type\":\"t\",\"workspace\":\"w\"},\"status\":\"a\"}";
    static const char good[] = EV;
    struct vg_event ev;
    char small[8];

    (void)state;
    assert_int_equal(decode_n(&ev, bad, strlen(bad), KTS, NULL, 0), VG_DECODE_BAD_FIELD);
    assert_int_equal(decode_n(&ev, bad, strlen(bad), KTS, NULL, 64), VG_DECODE_BAD_FIELD);
    memset(small, 'x', sizeof(small));
    assert_int_equal(decode_n(&ev, bad, strlen(bad), KTS, small, 0), VG_DECODE_BAD_FIELD);
    assert_int_equal(small[0], 'x'); /* size 0: not written */
    assert_int_equal(decode_n(&ev, bad, strlen(bad), KTS, small, sizeof(small)),
                     VG_DECODE_BAD_FIELD);
    assert_non_null(memchr(small, '\0', sizeof(small)));
    assert_string_equal(small, "resourc");
    assert_int_equal(decode_n(&ev, good, strlen(good), KTS, NULL, 0), VG_DECODE_OK);
    vg_event_fini(&ev);
}

/* An event struct reused after a successful decode is overwritten, not leaked into. */
static void test_decode_into_used_struct(void **state)
{
    static const char good[] = EV;
    static const char bad[] = "[]";
    struct vg_event ev;

    (void)state;
    assert_int_equal(decode_n(&ev, good, strlen(good), KTS, NULL, 0), VG_DECODE_OK);
    vg_event_fini(&ev);
    assert_int_equal(decode_n(&ev, bad, strlen(bad), KTS, NULL, 0), VG_DECODE_NOT_OBJECT);
    assert_true(is_zeroed(&ev));
    vg_event_fini(&ev); /* fini of a zeroed event is fine */
}

/*
 * Regression (core/event_decode.c, get_string): identity fields are checked
 * with a NUL-terminated scan of cJSON's valuestring, but a JSON string
 * may contain an escaped NUL ("\u0000"), which cJSON decodes into the
 * buffer. "name":"a\u0000:b" is accepted and silently becomes name "a"
 * (id "workflow:v1:a:public"), so two different resources collide.
 * Expected VG_DECODE_BAD_FIELD ("resource.name: must not contain ':' or
 * control characters"); got VG_DECODE_OK with name "a". Likewise
 * "time":"2026-11-28T10:00:00Z\u0000junk" is accepted (want BAD_TIME).
 */
static void test_escaped_nul_in_identity_regression(void **state)
{
    static const struct field_case cases[] = {
        {"name", "\"a\\u0000:b\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"name", "\"a\\u0000\"", VG_DECODE_BAD_FIELD, "resource.name"},
        {"type", "\"workflow\\u0000x\"", VG_DECODE_BAD_FIELD, "resource.type"},
        {"workspace", "\"\\u0000\"", VG_DECODE_BAD_FIELD, "resource.workspace"},
        /* the same truncation lets junk after a valid time through */
        {"time", "\"2026-11-28T10:00:00Z\\u0000junk\"", VG_DECODE_BAD_TIME, "time"},
    };

    (void)state;
    assert_int_equal(run_field_cases(cases, VG_ARRAY_LEN(cases)), 0);
}

/* One case of a whole message (explicit length: it may hold NULs) and the reason it gets. */
struct doc_case {
    const char *json;
    size_t len;
    enum vg_decode_reason want;
    const char *detail; /* substring of the detail (failures only) */
};
#define D(s, r, d)                                                                                 \
    {                                                                                              \
        s, sizeof(s) - 1, r, d                                                                     \
    }

static int run_doc_cases(const struct doc_case *cases, size_t n)
{
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        struct vg_event ev;
        char detail[256] = "untouched";
        enum vg_decode_reason r =
            decode_n(&ev, cases[i].json, cases[i].len, KTS, detail, sizeof(detail));
        bool ok = r == cases[i].want;

        if (ok && r == VG_DECODE_OK) {
            ok = detail[0] == '\0';
        } else if (ok) {
            ok = is_zeroed(&ev) && strstr(detail, cases[i].detail) != NULL;
        }
        if (!ok) {
            print_error("case %zu (%.100s): want %s detail ~\"%s\", got %s detail \"%s\"\n", i,
                        cases[i].json, vg_decode_reason_name(cases[i].want),
                        cases[i].detail ? cases[i].detail : "", vg_decode_reason_name(r), detail);
            failed++;
        }
        if (r == VG_DECODE_OK) {
            vg_event_fini(&ev);
        }
    }
    return failed;
}

/*
 * A raw byte below 0x20 inside a JSON string is not JSON (RFC 8259 wants
 * it escaped) and cJSON keeps it: a raw NUL cut "api<NUL>evil" down to
 * Resource "api". Every one is dead-lettered as control_char, wherever the
 * string is (value, key, a member vigil ignores); whitespace between
 * tokens stays fine.
 */
static void test_control_chars(void **state)
{
#define RES_API "\"resource\":{\"type\":\"service\",\"workspace\":\"w\",\"name\":"
    static const struct doc_case cases[] = {
        D("{" RES_API "\"api\0evil\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x00"),
        D("{" RES_API "\"api\0\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x00"),
        D("{" RES_API "\"\0\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "control"),
        D("{" RES_API "\"api\x01\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x01"),
        D("{" RES_API "\"api\x1f\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x1f"),
        D("{" RES_API "\"a\tb\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x09"),
        D("{" RES_API "\"a\nb\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x0a"),
        D("{" RES_API "\"a\rb\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "0x0d"),
        /* in the status value, the time, the message, a key, a member nobody reads */
        D("{" RES_API "\"api\"},\"status\":\"active\0\"}", VG_DECODE_CONTROL_CHAR, "control"),
        D("{" RES_API "\"api\"},\"status\":\"active\",\"time\":\"2026-11-28T10:00:00Z\0x\"}",
          VG_DECODE_CONTROL_CHAR, "control"),
        D("{" RES_API "\"api\"},\"status\":\"active\",\"message\":\"line 1\nline 2\"}",
          VG_DECODE_CONTROL_CHAR, "control"),
        D("{" RES_API "\"api\"},\"stat\0us\":\"x\",\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR,
          "control"),
        D("{" RES_API "\"api\"},\"status\":\"active\",\"x\":[{\"y\":\"\x7f\x1b[31m\"}]}",
          VG_DECODE_CONTROL_CHAR, "0x1b"),
        /* a raw control byte right after a backslash is still one */
        D("{" RES_API "\"api\\\0\"},\"status\":\"active\"}", VG_DECODE_CONTROL_CHAR, "control"),
        /* after an escaped quote the scan is still inside the string */
        D("{" RES_API "\"api\"},\"status\":\"active\",\"message\":\"say \\\"hi\x02\\\"\"}",
          VG_DECODE_CONTROL_CHAR, "0x02"),
        /* fine: escaped forms, DEL (0x7f), whitespace between tokens */
        D("{" RES_API "\"api\"},\"status\":\"active\",\"message\":\"a\\tb\\nc\\u0001\x7f\"}",
          VG_DECODE_OK, NULL),
        D("{\t" RES_API "\r\n\"api\"\t},\n\"status\" : \"active\"\n}\n", VG_DECODE_OK, NULL),
        /* a NUL outside any string: trailing data after the object, as before */
        D("{" RES_API "\"api\"},\"status\":\"active\"}\0", VG_DECODE_BAD_JSON, "trailing"),
    };
#undef RES_API

    (void)state;
    assert_int_equal(run_doc_cases(cases, VG_ARRAY_LEN(cases)), 0);
}

/*
 * An escaped NUL never truncates: in identity fields and times it is
 * rejected (above, as a control character of the decoded value), in a
 * message it stays a visible U+001A, and the rest of the string is kept.
 */
static void test_escaped_nul_never_truncates(void **state)
{
    static const char json[] =
        "{" RES_JSON ",\"status\":\"active\",\"message\":\"api\\u0000evil\"}";
    static const char key[] = "{\"resource\":{\"type\":\"t\",\"name\":\"n\",\"workspace\":\"w\","
                              "\"na\\u0000me\":\"x\"},\"status\":\"active\"}";
    struct vg_event ev;

    (void)state;
    assert_int_equal(decode_n(&ev, json, strlen(json), KTS, NULL, 0), VG_DECODE_OK);
    assert_string_equal(ev.message, "api\x1a"
                                    "evil");
    vg_event_fini(&ev);
    /* a key "na\u0000me" is not "na" nor "name" */
    assert_int_equal(decode_n(&ev, key, strlen(key), KTS, NULL, 0), VG_DECODE_OK);
    assert_string_equal(ev.name, "n");
    vg_event_fini(&ev);
}

/*
 * The same key twice in one object: cJSON keeps both and vigil read the
 * first, another consumer may read the last. Dead-lettered as
 * duplicate_key at any depth, also when escapes spell the same key, and
 * in objects with many keys (sorted, not compared pairwise).
 */
static void test_duplicate_keys(void **state)
{
    static const struct doc_case cases[] = {
        D("{" RES_JSON ",\"status\":\"active\",\"status\":\"error\"}", VG_DECODE_DUPLICATE_KEY,
          "\"status\""),
        D("{\"status\":\"active\"," RES_JSON ",\"status\":\"active\"}", VG_DECODE_DUPLICATE_KEY,
          "status"),
        D("{" RES_JSON "," RES_JSON ",\"status\":\"active\"}", VG_DECODE_DUPLICATE_KEY, "resource"),
        D("{\"resource\":{\"type\":\"t\",\"name\":\"api\",\"workspace\":\"w\",\"name\":"
          "\"evil\"},\"status\":\"active\"}",
          VG_DECODE_DUPLICATE_KEY, "\"name\""),
        /* escapes that spell the same key */
        D("{\"resource\":{\"type\":\"t\",\"name\":\"api\",\"workspace\":\"w\",\"n\\u0061me\":"
          "\"evil\"},\"status\":\"active\"}",
          VG_DECODE_DUPLICATE_KEY, "name"),
        /* deep inside members vigil ignores, in arrays too */
        D("{" RES_JSON ",\"status\":\"active\",\"x\":{\"y\":[1,{\"z\":1,\"z\":2}]}}",
          VG_DECODE_DUPLICATE_KEY, "\"z\""),
        D("{" RES_JSON ",\"status\":\"active\",\"x\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,"
          "\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"e\":11}}",
          VG_DECODE_DUPLICATE_KEY, "\"e\""),
        D("{" RES_JSON ",\"status\":\"active\",\"\":1,\"\":2}", VG_DECODE_DUPLICATE_KEY, "\"\""),
        /* fine: keys differ in case, the same key in sibling objects, in different levels */
        D("{" RES_JSON ",\"status\":\"active\",\"Status\":\"error\"}", VG_DECODE_OK, NULL),
        D("{" RES_JSON ",\"status\":\"active\",\"x\":[{\"a\":1},{\"a\":2}],\"y\":{\"x\":{\"x\":1}"
          "}}",
          VG_DECODE_OK, NULL),
        D("{" RES_JSON ",\"status\":\"active\",\"x\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,"
          "\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11}}",
          VG_DECODE_OK, NULL),
    };
    struct vg_buf b = {0};
    struct vg_event ev;
    char detail[256];
    char *json;

    (void)state;
    assert_int_equal(run_doc_cases(cases, VG_ARRAY_LEN(cases)), 0);

    /* many keys: 20000 distinct ones are fine; then the first one again */
    vg_buf_puts(&b, "{" RES_JSON ",\"status\":\"active\",\"many\":{");
    for (int i = 0; i < 20000; i++) {
        vg_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    }
    vg_buf_puts(&b, "}}");
    json = vg_buf_steal(&b);
    assert_int_equal(decode_n(&ev, json, strlen(json), KTS, detail, sizeof(detail)), VG_DECODE_OK);
    vg_event_fini(&ev);
    json[strlen(json) - 2] = '\0';
    vg_buf_puts(&b, json);
    vg_buf_puts(&b, ",\"k0\":0}}");
    free(json);
    json = vg_buf_steal(&b);
    assert_int_equal(decode_n(&ev, json, strlen(json), KTS, detail, sizeof(detail)),
                     VG_DECODE_DUPLICATE_KEY);
    assert_true(is_zeroed(&ev));
    assert_non_null(strstr(detail, "\"k0\""));
    free(json);
}

/*
 * What a hostile producer tries next, beyond the classes above: nesting
 * far past the limit, numbers cJSON cannot hold (in members vigil does
 * not read they are harmless), invalid UTF-8 in keys, overlong and
 * surrogate encodings, escaped surrogates.
 */
static void test_hostile_documents(void **state)
{
    static const struct doc_case cases[] = {
        /* numbers in members vigil ignores */
        D("{" RES_JSON ",\"status\":\"active\",\"n\":[1e999,-1e999,-0,18446744073709551616,"
          "-9223372036854775809,1e-999,123456789012345678901234567890]}",
          VG_DECODE_OK, NULL),
        /* numbers where vigil wants a string */
        D("{" RES_JSON ",\"status\":\"active\",\"time\":1e999}", VG_DECODE_BAD_TIME, "time"),
        D("{\"resource\":{\"type\":\"t\",\"name\":-0,\"workspace\":\"w\"},\"status\":"
          "\"active\"}",
          VG_DECODE_BAD_FIELD, "resource.name"),
        D("{" RES_JSON ",\"status\":18446744073709551616}", VG_DECODE_BAD_STATUS, "status"),
        /* not numbers at all */
        D("{" RES_JSON ",\"status\":\"active\",\"n\":NaN}", VG_DECODE_BAD_JSON, "JSON"),
        D("{" RES_JSON ",\"status\":\"active\",\"n\":Infinity}", VG_DECODE_BAD_JSON, "JSON"),
        /* invalid UTF-8 in a key, overlong '/' (C0 AF), overlong NUL (C0 80), UTF-8 surrogate
         * (ED A0 80), beyond U+10FFFF (F4 90 80 80), a lone continuation byte */
        D("{" RES_JSON ",\"status\":\"active\",\"\xff\":1}", VG_DECODE_NOT_UTF8, "UTF-8"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"..\xc0\xaf..\"}", VG_DECODE_NOT_UTF8,
          "UTF-8"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"a\xc0\x80\"}", VG_DECODE_NOT_UTF8,
          "UTF-8"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\xed\xa0\x80\"}", VG_DECODE_NOT_UTF8,
          "UTF-8"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\xf4\x90\x80\x80\"}",
          VG_DECODE_NOT_UTF8, "UTF-8"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\xbf\"}", VG_DECODE_NOT_UTF8, "UTF-8"),
        /* escaped surrogates: a lone high, a lone low, reversed; a proper pair is fine */
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\\ud800\"}", VG_DECODE_BAD_JSON,
          "JSON"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\\udfff\"}", VG_DECODE_BAD_JSON,
          "JSON"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\\udc00\\ud800\"}", VG_DECODE_BAD_JSON,
          "JSON"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\\ud800\\u0041\"}", VG_DECODE_BAD_JSON,
          "JSON"),
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\\ud83d\\ude00\"}", VG_DECODE_OK,
          NULL),
        /* the largest code point, raw */
        D("{" RES_JSON ",\"status\":\"active\",\"message\":\"\xf4\x8f\xbf\xbf\"}", VG_DECODE_OK,
          NULL),
    };
    struct vg_event ev;
    char detail[128];
    char *json;
    size_t n = 200000;

    (void)state;
    assert_int_equal(run_doc_cases(cases, VG_ARRAY_LEN(cases)), 0);

    /* 200000 levels of nesting: refused before cJSON recurses into it */
    json = vg_malloc(2 * n);
    memset(json, '[', n);
    memset(json + n, ']', n);
    assert_int_equal(decode_n(&ev, json, 2 * n, KTS, detail, sizeof(detail)), VG_DECODE_TOO_DEEP);
    memset(json, '{', n);
    assert_int_equal(decode_n(&ev, json, n, KTS, detail, sizeof(detail)), VG_DECODE_TOO_DEEP);
    free(json);
}

/*
 * The bound on event times (vg_event_check_time, the wall clock passed
 * in): at most max_clock_skew_ms ahead of `now`. A native event dated
 * 2999 would otherwise make every later real event late.
 */
static void test_future_time(void **state)
{
    static const struct {
        const char *time; /* NULL: no `time`, the Kafka timestamp */
        int64_t kafka_ts;
        int64_t skew_ms; /* -1: dc NULL (the defaults) */
        enum vg_decode_reason want;
    } cases[] = {
        {"2999-01-01T00:00:00Z", KTS, -1, VG_DECODE_FUTURE_TIME},
        {"9999-12-31T23:59:59.999Z", KTS, -1, VG_DECODE_FUTURE_TIME},
        {"2026-11-28T10:05:00.123Z", KTS, -1, VG_DECODE_OK},          /* exactly 5 min ahead */
        {"2026-11-28T10:05:00.124Z", KTS, -1, VG_DECODE_FUTURE_TIME}, /* 1 ms more */
        {"2026-11-28T10:05:00.124Z", KTS, 300000, VG_DECODE_FUTURE_TIME},
        {"2026-11-28T10:05:00.124Z", KTS, 300001, VG_DECODE_OK},
        {"2026-11-28T10:00:01.123Z", KTS, 1000, VG_DECODE_OK},
        {"2026-11-28T10:00:01.124Z", KTS, 1000, VG_DECODE_FUTURE_TIME},
        {"2999-01-01T00:00:00Z", KTS, 0, VG_DECODE_OK}, /* 0: no check */
        {"2026-11-28T10:00:00.123Z", KTS, -1, VG_DECODE_OK},
        {"1970-01-01T00:00:00Z", KTS, -1, VG_DECODE_OK}, /* the past is late, not refused */
        {"0001-01-01T00:00:00Z", KTS, -1, VG_DECODE_OK},
        /* an offset that puts it in the future */
        {"2026-11-28T11:04:00.123+01:00", KTS, -1, VG_DECODE_OK},
        {"2026-11-28T11:06:00.123+01:00", KTS, -1, VG_DECODE_FUTURE_TIME},
        /* without `time`, the Kafka timestamp is the event time, and is bounded the same */
        {NULL, T0 + 300000, -1, VG_DECODE_OK},
        {NULL, T0 + 300001, -1, VG_DECODE_FUTURE_TIME},
        {NULL, T0 + 3600000, 0, VG_DECODE_OK},
        /* a producer may set any Kafka timestamp, far beyond what RFC 3339 can write */
        {NULL, INT64_MAX, -1, VG_DECODE_FUTURE_TIME},
        {NULL, INT64_C(253402300800000), -1, VG_DECODE_FUTURE_TIME},
    };
    int failed = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        struct vg_decode_config dc;
        struct vg_event ev;
        char detail[256] = "untouched";
        char *json = cases[i].time ? vg_asprintf("{" RES_JSON ",\"status\":\"active\",\"time\":"
                                                 "\"%s\"}",
                                                 cases[i].time)
                                   : vg_strdup("{" RES_JSON ",\"status\":\"active\"}");
        enum vg_decode_reason r;

        vg_decode_config_init(&dc);
        dc.max_clock_skew_ms = cases[i].skew_ms;
        r = decode_n(&ev, json, strlen(json), cases[i].kafka_ts, NULL, 0);
        if (r != VG_DECODE_OK) {
            print_error("case %zu: decode: %s\n", i, vg_decode_reason_name(r));
            failed++;
        } else {
            r = vg_event_check_time(&ev, cases[i].skew_ms < 0 ? NULL : &dc, T0, detail,
                                    sizeof(detail));
            if (r != cases[i].want || (r == VG_DECODE_OK ? strcmp(detail, "untouched") != 0
                                                         : !strstr(detail, "max_clock_skew_ms"))) {
                print_error("case %zu (%s): want %s, got %s (%s)\n", i,
                            cases[i].time ? cases[i].time : "kafka ts",
                            vg_decode_reason_name(cases[i].want), vg_decode_reason_name(r), detail);
                failed++;
            }
            vg_event_fini(&ev);
        }
        vg_decode_config_fini(&dc);
        free(json);
    }
    assert_int_equal(failed, 0);
    assert_int_equal(VG_MAX_CLOCK_SKEW_MS, 300000);

    /* the detail names the time, also one gmtime cannot convert (no garbage date) */
    {
        static const char json[] = "{" RES_JSON ",\"status\":\"active\"}";
        struct vg_event ev;
        char detail[256] = "";

        assert_int_equal(decode_n(&ev, json, strlen(json), INT64_MAX, NULL, 0), VG_DECODE_OK);
        assert_int_equal(vg_event_check_time(&ev, NULL, T0, detail, sizeof(detail)),
                         VG_DECODE_FUTURE_TIME);
        assert_non_null(strstr(detail, "event time 9223372036854775807 ms is"));
        vg_event_fini(&ev);
        assert_int_equal(decode_n(&ev, json, strlen(json), T0 + 3600000, NULL, 0), VG_DECODE_OK);
        assert_int_equal(vg_event_check_time(&ev, NULL, T0, detail, sizeof(detail)),
                         VG_DECODE_FUTURE_TIME);
        assert_non_null(strstr(detail, "event time 2026-11-28T11:00:00.123Z is 3600 s ahead"));
        vg_event_fini(&ev);
    }
}

static void test_reason_names(void **state)
{
    static const char *const want[VG_DECODE__COUNT] = {
        [VG_DECODE_OK] = "ok",
        [VG_DECODE_TOO_LARGE] = "too_large",
        [VG_DECODE_BAD_JSON] = "bad_json",
        [VG_DECODE_TOO_DEEP] = "too_deep",
        [VG_DECODE_NOT_OBJECT] = "not_object",
        [VG_DECODE_NO_RESOURCE] = "no_resource",
        [VG_DECODE_BAD_FIELD] = "bad_field",
        [VG_DECODE_NO_SIGNAL] = "no_signal",
        [VG_DECODE_BAD_STATUS] = "bad_status",
        [VG_DECODE_BAD_RUNTIME] = "bad_runtime",
        [VG_DECODE_BAD_TIME] = "bad_time",
        [VG_DECODE_NOT_UTF8] = "not_utf8",
        /* Kubernetes inputs */
        [VG_DECODE_BAD_KIND] = "bad_kind",
        [VG_DECODE_TOO_MANY_LABELS] = "too_many_labels",
        /* hostile input */
        [VG_DECODE_CONTROL_CHAR] = "control_char",
        [VG_DECODE_DUPLICATE_KEY] = "duplicate_key",
        [VG_DECODE_FUTURE_TIME] = "future_time",
        [VG_DECODE_SKIP_NO_NAME_LABEL] = "no_name_label",
        [VG_DECODE_SKIP_IGNORED] = "ignored",
        [VG_DECODE_SKIP_UNKNOWN_POD] = "unknown_pod",
    };

    (void)state;
    for (int r = 0; r < VG_DECODE__COUNT; r++) {
        assert_non_null(want[r]);
        assert_string_equal(vg_decode_reason_name((enum vg_decode_reason)r), want[r]);
    }
    assert_string_equal(vg_decode_reason_name(VG_DECODE__COUNT), "unknown");
}

static void test_resource_id(void **state)
{
    char *id;

    (void)state;
    id = vg_resource_id("workflow", "v1", "ingestion-x", "public");
    assert_string_equal(id, "workflow:v1:ingestion-x:public");
    free(id);
    id = vg_resource_id("a", "b", "c", "d");
    assert_string_equal(id, "a:b:c:d");
    free(id);
}

/* ---- decoding cheaply: the scan, the scratch arena, one block per event ---- */

/* The scan as it was, one byte at a time: the fast scan must agree with it on every input. */
static enum vg_json_scan_result reference_scan(const char *json, size_t len, int max_depth,
                                               struct vg_json_scan *out)
{
    const unsigned char *p = (const unsigned char *)json;
    int depth = 0;
    bool in_str = false;
    size_t i = 0;

    out->at = 0;
    out->depth = 0;
    out->nul_escape = false;
    while (i < len) {
        unsigned char c = p[i];

        if (c >= 0x80) {
            /* valid UTF-8 as vg_utf8_valid judges it, one sequence at a time */
            size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            if (n == 0 || i + n > len || !vg_utf8_valid(json + i, n)) {
                out->at = i;
                return VG_JSON_SCAN_NOT_UTF8;
            }
            i += n;
            continue;
        }
        if (in_str) {
            if (c == '"') {
                in_str = false;
            } else if (c < 0x20) {
                out->at = i;
                return VG_JSON_SCAN_CONTROL_CHAR;
            } else if (c == '\\' && i + 1 < len) {
                if (p[i + 1] == '"' || p[i + 1] == '\\') {
                    i++;
                } else if (p[i + 1] == 'u' && i + 5 < len && memcmp(p + i + 2, "0000", 4) == 0) {
                    out->nul_escape = true;
                }
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > out->depth) {
                out->depth = depth;
                if (depth > max_depth) {
                    out->at = i;
                    return VG_JSON_SCAN_TOO_DEEP;
                }
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
        i++;
    }
    return VG_JSON_SCAN_OK;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * Random inputs over an alphabet of every byte the scan treats specially
 * (and UTF-8 pieces, valid and not), at every alignment, in heap buffers
 * of exactly their length: result, offset, depth and the \u0000 flag must
 * match the byte-at-a-time scan.
 */
static void test_scan_matches_byte_at_a_time(void **state)
{
    static const char *const pieces[] = {"\"",
                                         "\\",
                                         "\\\"",
                                         "\\\\",
                                         "\\u0000",
                                         "\\u00",
                                         "{",
                                         "}",
                                         "[",
                                         "]",
                                         ":",
                                         ",",
                                         "a",
                                         "plain text",
                                         "abcdefghijklmnop",
                                         " ",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xc3",
                                         "\x80",
                                         "\xed\xa0\x80",
                                         "\xc0\xaf",
                                         "\xff",
                                         "0000",
                                         "u"};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int mismatches = 0;

    (void)state;
    for (int n = 0; n < 100000; n++) {
        char text[256];
        size_t len = 0;
        size_t parts = rng_next(&seed) % 24;
        int max_depth = 1 + (int)(rng_next(&seed) % 4);
        struct vg_json_scan got, want;
        enum vg_json_scan_result rg, rw;
        char *buf;

        for (size_t k = 0; k < parts; k++) {
            const char *piece = pieces[rng_next(&seed) % VG_ARRAY_LEN(pieces)];
            size_t pl = strlen(piece);

            if (len + pl > sizeof(text)) {
                break;
            }
            memcpy(text + len, piece, pl);
            len += pl;
        }
        buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, text, len);
        rg = vg_json_scan(buf, len, max_depth, &got);
        rw = reference_scan(buf, len, max_depth, &want);
        if (rg != rw || got.at != want.at || got.depth != want.depth ||
            got.nul_escape != want.nul_escape) {
            if (mismatches++ < 5) {
                fprintf(stderr,
                        "case %d (%zu bytes): got %d at %zu depth %d nul %d, want %d at %zu "
                        "depth %d nul %d\n",
                        n, len, rg, got.at, got.depth, got.nul_escape, rw, want.at, want.depth,
                        want.nul_escape);
            }
        }
        free(buf);
    }
    assert_int_equal(mismatches, 0);
}

static void test_arena(void **state)
{
    struct vg_arena *a = vg_arena_new(256);
    char *p[64];
    char *big;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(p); i++) {
        p[i] = vg_arena_alloc(a, i % 5); /* zero bytes too: still distinct pointers */
        assert_int_equal((uintptr_t)p[i] % _Alignof(max_align_t), 0);
        assert_true(vg_arena_owns(a, p[i]));
        memset(p[i], (int)i, i % 5);
        for (size_t j = 0; j < i; j++) {
            assert_ptr_not_equal(p[i], p[j]);
        }
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(p); i++) {
        for (size_t k = 0; k < i % 5; k++) {
            assert_int_equal((unsigned char)p[i][k], i); /* nothing overlapped */
        }
    }
    big = vg_arena_alloc(a, 100000); /* larger than any chunk so far */
    memset(big, 1, 100000);
    assert_true(vg_arena_owns(a, big));
    assert_true(vg_arena_owns(a, big + 99999));
    assert_false(vg_arena_owns(a, &big));
    vg_arena_reset(a);
    assert_false(vg_arena_owns(a, big)); /* back to the heap */
    assert_true(vg_arena_owns(a, p[0])); /* the first chunk stays, and is reused */
    assert_ptr_equal(vg_arena_alloc(a, 8), p[0]);
    vg_arena_destroy(a);
    vg_arena_destroy(NULL);
}

static bool in_block(const struct vg_event *ev, const void *p)
{
    return p && (const char *)p >= ev->block && (const char *)p < ev->block + ev->block_size;
}

static char *read_fixture(const char *name, size_t *len)
{
    char *path = vg_asprintf("%s/k8s/%s", VG_FIXTURES, name);
    FILE *fp = fopen(path, "rb");
    struct vg_buf b = {0};
    char chunk[4096];
    size_t n;

    assert_non_null(fp);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        vg_buf_append(&b, chunk, n);
    }
    fclose(fp);
    free(path);
    *len = b.len;
    return vg_buf_steal(&b);
}

/*
 * A decoded event is one heap block: every string, the pod and its
 * containers. Labels stay separate heap copies (vg_labels_free on them
 * must work), a string set afterwards is the caller's own heap string,
 * and cJSON used outside decoding (the pod's JSON form) still works on
 * the heap between decodes.
 */
static void test_event_is_one_block(void **state)
{
    const char *native = "{\"resource\":{\"type\":\"workflow\",\"name\":\"ingestion-x\","
                         "\"workspace\":\"public\",\"owner\":\"iamgroot\"},\"status\":\"active\","
                         "\"message\":\"exit code 1\"}";
    struct vg_event ev;
    struct vg_pod back;
    char *json;
    size_t len;
    char *pod = read_fixture("watch-modified-crashloop.json", &len);
    char *k8s_event;

    (void)state;
    assert_int_equal(decode_n(&ev, native, strlen(native), KTS, NULL, 0), VG_DECODE_OK);
    assert_non_null(ev.block);
    assert_true(in_block(&ev, ev.id) && in_block(&ev, ev.type) && in_block(&ev, ev.name) &&
                in_block(&ev, ev.workspace) && in_block(&ev, ev.version) &&
                in_block(&ev, ev.owner) && in_block(&ev, ev.message));
    assert_string_equal(ev.id, "workflow:v1:ingestion-x:public");
    assert_string_equal(ev.version, "v1");
    assert_string_equal(ev.message, "exit code 1");
    ev.pos.topic = vg_strdup("events"); /* the caller's, freed by vg_event_fini too */
    vg_event_fini(&ev);
    assert_true(is_zeroed(&ev));

    assert_int_equal(vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, pod, len, KTS, NULL, 0),
                     VG_DECODE_OK);
    assert_true(in_block(&ev, ev.pod) && in_block(&ev, ev.pod->name) && in_block(&ev, ev.pod->ns) &&
                in_block(&ev, ev.id));
    assert_true(ev.pod->n_containers > 0);
    for (size_t i = 0; i < ev.pod->n_containers; i++) {
        assert_true(in_block(&ev, &ev.pod->containers[i]));
        assert_true(in_block(&ev, ev.pod->containers[i].name));
    }
    assert_true(ev.n_labels > 0 && !in_block(&ev, ev.labels) && !in_block(&ev, ev.labels[0].key));
    json = vg_pod_to_json(ev.pod);
    assert_true(vg_pod_from_json(&back, ev.pod->name, json, strlen(json)));
    assert_string_equal(back.ns, ev.pod->ns);
    assert_int_equal(back.n_containers, ev.pod->n_containers);
    vg_pod_fini(&back);
    free(json);
    /* what `vigil test` does: replace the labels */
    vg_labels_free(ev.labels, ev.n_labels);
    ev.labels = vg_calloc(1, sizeof(*ev.labels));
    ev.labels[0].key = vg_strdup("team");
    ev.labels[0].value = vg_strdup("data");
    ev.n_labels = 1;
    vg_event_fini(&ev);
    free(pod);

    /* a log line about a pod, mapped afterwards: the block's identity is replaced */
    k8s_event = read_fixture("event-backoff.json", &len);
    assert_int_equal(vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, k8s_event, len, KTS, NULL, 0),
                     VG_DECODE_OK);
    assert_int_equal(ev.kind, VG_EVENT_K8S_EVENT);
    assert_null(ev.id);
    assert_true(in_block(&ev, ev.log_pod) && in_block(&ev, ev.log_ns));
    assert_true(vg_event_set_identity(&ev, "workflow:v1:mapped:public"));
    assert_false(in_block(&ev, ev.id));
    assert_string_equal(ev.name, "mapped");
    vg_event_fini(&ev);
    free(k8s_event);
}

/* A message whose tree outgrows the scratch's first chunk, then a small one again. */
static void test_large_tree_then_small(void **state)
{
    struct vg_buf b = {0};
    struct vg_event ev;
    char *json;

    (void)state;
    vg_buf_puts(&b, "{" RES_JSON ",\"status\":\"active\",\"big\":[");
    for (int i = 0; i < 30000; i++) {
        vg_buf_printf(&b, "%s{\"k\":\"v%d\"}", i ? "," : "", i);
    }
    vg_buf_puts(&b, "],\"message\":\"last\"}");
    json = vg_buf_steal(&b);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(decode_n(&ev, json, strlen(json), KTS, NULL, 0), VG_DECODE_OK);
        assert_string_equal(ev.message, "last");
        vg_event_fini(&ev);
        assert_int_equal(decode_n(&ev, "{" RES_JSON ",\"runtime\":\"failed\"}",
                                  strlen("{" RES_JSON ",\"runtime\":\"failed\"}"), KTS, NULL, 0),
                         VG_DECODE_OK);
        assert_string_equal(ev.runtime, "failed");
        vg_event_fini(&ev);
    }
    free(json);
}

struct decode_thread {
    pthread_t tid;
    const char *pod;
    size_t pod_len;
    int failures;
};

static void *decode_thread_main(void *arg)
{
    struct decode_thread *t = arg;

    for (int i = 0; i < 300; i++) {
        struct vg_event ev;
        char native[256];
        char detail[128];
        int n = snprintf(native, sizeof(native),
                         "{\"resource\":{\"type\":\"job\",\"name\":\"j%d\",\"workspace\":\"w%p\"},"
                         "\"runtime\":\"running\"}",
                         i, (void *)t);
        char want[128];

        snprintf(want, sizeof(want), "job:v1:j%d:w%p", i, (void *)t);
        if (vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, native, (size_t)n, KTS, detail,
                               sizeof(detail)) != VG_DECODE_OK ||
            strcmp(ev.id, want) != 0) {
            t->failures++;
        }
        vg_event_fini(&ev);
        if (vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, t->pod, t->pod_len, KTS, detail,
                               sizeof(detail)) != VG_DECODE_OK ||
            ev.kind != VG_EVENT_POD || !ev.pod || ev.pod->n_containers == 0) {
            t->failures++;
        }
        vg_event_fini(&ev);
        if (vg_event_decode_ex(&ev, NULL, VG_FORMAT_AUTO, "{\"a\":1,\"a\":2}", 13, KTS, detail,
                               sizeof(detail)) != VG_DECODE_DUPLICATE_KEY ||
            strcmp(detail, "duplicate key \"a\"") != 0) {
            t->failures++;
        }
    }
    return NULL;
}

/*
 * Decoding on several threads at once, each with its own scratch; the
 * threads then exit, and their scratch goes with them (LeakSanitizer
 * would report it at exit otherwise).
 */
static void test_decode_on_threads(void **state)
{
    struct decode_thread t[4];
    size_t len;
    char *pod = read_fixture("pod-running-multi.json", &len);

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(t); i++) {
        t[i] = (struct decode_thread){.pod = pod, .pod_len = len};
        assert_int_equal(pthread_create(&t[i].tid, NULL, decode_thread_main, &t[i]), 0);
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(t); i++) {
        assert_int_equal(pthread_join(t[i].tid, NULL), 0);
        assert_int_equal(t[i].failures, 0);
    }
    free(pod);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_time_now_when_no_timestamp),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_bad_signal),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_detail_optional_and_truncated),
        cmocka_unit_test(test_decode_into_used_struct),
        cmocka_unit_test(test_escaped_nul_in_identity_regression),
        cmocka_unit_test(test_control_chars),
        cmocka_unit_test(test_escaped_nul_never_truncates),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_hostile_documents),
        cmocka_unit_test(test_future_time),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_resource_id),
        cmocka_unit_test(test_scan_matches_byte_at_a_time),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_event_is_one_block),
        cmocka_unit_test(test_large_tree_then_small),
        cmocka_unit_test(test_decode_on_threads),
    };
    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
