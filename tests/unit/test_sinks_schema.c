/*
 * The webhook v1 body that vg_page_to_json emits against
 * docs/webhook.schema.json, with a minimal JSON Schema validator for the
 * subset the schema uses (type with null unions, required, properties,
 * enum, const, pattern, minLength, local $ref). Unknown keywords fail
 * the test, so the schema cannot grow a constraint nobody checks. Also:
 * every key emitted is documented in the schema and in docs/webhook.md.
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/page.h"

#ifndef VIGIL_WEBHOOK_SCHEMA
#error "VIGIL_WEBHOOK_SCHEMA (path of docs/webhook.schema.json) must be defined"
#endif
#ifndef VIGIL_WEBHOOK_DOC
#error "VIGIL_WEBHOOK_DOC (path of docs/webhook.md) must be defined"
#endif

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (!fp) {
        fail_msg("cannot open %s", path);
    }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = vg_malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fail_msg("cannot read %s", path);
    }
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static cJSON *load_schema(void)
{
    char *text = slurp(VIGIL_WEBHOOK_SCHEMA);
    cJSON *schema = cJSON_Parse(text);

    vg_free(text);
    if (!schema) {
        fail_msg("%s: not valid JSON", VIGIL_WEBHOOK_SCHEMA);
    }
    return schema;
}

/* ---- the validator ---- */

struct validator {
    const cJSON *root;
    char first_error[512];
    int errors;
};

static void verror(struct validator *v, const char *path, const char *what)
{
    if (v->errors++ == 0) {
        snprintf(v->first_error, sizeof(v->first_error), "%s: %s", path[0] ? path : "(root)", what);
    }
}

static bool type_matches(const char *type, const cJSON *inst)
{
    if (strcmp(type, "object") == 0) {
        return cJSON_IsObject(inst);
    }
    if (strcmp(type, "array") == 0) {
        return cJSON_IsArray(inst);
    }
    if (strcmp(type, "string") == 0) {
        return cJSON_IsString(inst);
    }
    if (strcmp(type, "null") == 0) {
        return cJSON_IsNull(inst);
    }
    if (strcmp(type, "boolean") == 0) {
        return cJSON_IsBool(inst);
    }
    if (strcmp(type, "number") == 0) {
        return cJSON_IsNumber(inst);
    }
    if (strcmp(type, "integer") == 0) {
        return cJSON_IsNumber(inst) && inst->valuedouble == (double)(int64_t)inst->valuedouble;
    }
    fail_msg("schema: unknown type \"%s\"", type);
    return false;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

static const cJSON *resolve_ref(const struct validator *v, const char *ref)
{
    static const char prefix[] = "#/$defs/";
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(v->root, "$defs");
    const cJSON *target;

    if (strncmp(ref, prefix, sizeof(prefix) - 1) != 0 || !defs) {
        fail_msg("schema: unsupported $ref \"%s\"", ref);
    }
    target = cJSON_GetObjectItemCaseSensitive(defs, ref + sizeof(prefix) - 1);
    if (!target) {
        fail_msg("schema: dangling $ref \"%s\"", ref);
    }
    return target;
}

static void validate(struct validator *v, const cJSON *schema, const cJSON *inst, const char *path)
{
    static const char *const annotations[] = {
        "$schema", "$id", "$defs", "title", "description", "$comment", "format", "examples", NULL};
    const cJSON *kw;

    if (!cJSON_IsObject(schema)) {
        fail_msg("schema at %s is not an object", path);
    }
    cJSON_ArrayForEach(kw, schema)
    {
        const char *k = kw->string;
        bool annotation = false;

        for (const char *const *a = annotations; *a; a++) {
            annotation = annotation || strcmp(k, *a) == 0;
        }
        if (annotation) {
            continue;
        }
        if (strcmp(k, "$ref") == 0) {
            validate(v, resolve_ref(v, kw->valuestring), inst, path);
        } else if (strcmp(k, "type") == 0) {
            bool ok = false;
            if (cJSON_IsString(kw)) {
                ok = type_matches(kw->valuestring, inst);
            } else {
                const cJSON *t;
                cJSON_ArrayForEach(t, kw)
                {
                    ok = ok || type_matches(t->valuestring, inst);
                }
            }
            if (!ok) {
                verror(v, path, "wrong type");
            }
        } else if (strcmp(k, "const") == 0) {
            if (!cJSON_Compare(kw, inst, true)) {
                verror(v, path, "not the const value");
            }
        } else if (strcmp(k, "enum") == 0) {
            bool ok = false;
            const cJSON *e;
            cJSON_ArrayForEach(e, kw)
            {
                ok = ok || cJSON_Compare(e, inst, true);
            }
            if (!ok) {
                verror(v, path, "not one of the enum values");
            }
        } else if (strcmp(k, "required") == 0) {
            const cJSON *r;
            if (!cJSON_IsObject(inst)) {
                continue;
            }
            cJSON_ArrayForEach(r, kw)
            {
                if (!cJSON_GetObjectItemCaseSensitive(inst, r->valuestring)) {
                    char what[128];
                    snprintf(what, sizeof(what), "missing required key \"%s\"", r->valuestring);
                    verror(v, path, what);
                }
            }
        } else if (strcmp(k, "properties") == 0) {
            const cJSON *p;
            if (!cJSON_IsObject(inst)) {
                continue;
            }
            cJSON_ArrayForEach(p, kw)
            {
                const cJSON *child = cJSON_GetObjectItemCaseSensitive(inst, p->string);
                if (child) {
                    char sub[256];
                    snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", p->string);
                    validate(v, p, child, sub);
                }
            }
        } else if (strcmp(k, "pattern") == 0) {
            regex_t re;
            if (!cJSON_IsString(inst)) {
                continue;
            }
            /* The schema's patterns stay within what ERE and ECMA-262 read alike. */
            if (regcomp(&re, kw->valuestring, REG_EXTENDED | REG_NOSUB) != 0) {
                fail_msg("schema: pattern \"%s\" does not compile", kw->valuestring);
            }
            if (regexec(&re, inst->valuestring, 0, NULL, 0) != 0) {
                verror(v, path, "does not match the pattern");
            }
            regfree(&re);
        } else if (strcmp(k, "minLength") == 0) {
            if (cJSON_IsString(inst) && utf8_chars(inst->valuestring) < (size_t)kw->valueint) {
                verror(v, path, "shorter than minLength");
            }
        } else {
            fail_msg("schema at %s: keyword \"%s\" is not supported by this validator", path, k);
        }
    }
}

static int check(const cJSON *schema, const cJSON *inst, char *first_error, size_t size)
{
    struct validator v = {.root = schema};

    validate(&v, schema, inst, "");
    snprintf(first_error, size, "%s", v.first_error);
    return v.errors;
}

/* ---- bodies ---- */

/* The fields of one page; NULL or 0: left unset (as vg_page_fini allows). */
struct body_spec {
    const char *status;
    struct {
        const char *id, *monitor, *severity, *summary;
        int64_t started_at_ms, resolved_at_ms;
    } inc;
    struct {
        const char *id, *type, *name, *workspace, *version, *owner, *status, *runtime, *health;
    } res;
    struct {
        const char *field, *from, *to;
        int64_t at_ms;
    } tr;
};

enum { BODY_FIRING, BODY_RESOLVED };

/*
 * Firing; and resolved, first-seen (from null), status not known yet, no
 * owner, whole seconds.
 */
static const struct body_spec page_specs[] = {
    [BODY_FIRING] = {"firing",
                     {"8c0f6a1e2b3d4c5f", "workflow-failed", "high",
                      "workflow \"ingestion-x\" in public failed\n(exit 1)", 1795860000123, 0},
                     {"workflow:v1:ingestion-x:public", "workflow", "ingestion-x", "public", "v1",
                      "iamgroot", "active", "failed", "unhealthy"},
                     {"runtime", "running", "failed", 1795860000123}},
    [BODY_RESOLVED] = {"resolved",
                       {"0000000000000001", "m", "critical", "", 1795860000000, 1795860060000},
                       {"job:v1beta:nightly:sandbox", "job", "nightly", "sandbox", "v1beta", "",
                        NULL, "running", "progressing"},
                       {"runtime", NULL, "running", 1795860060000}},
};

static char *dup_or_null(const char *s)
{
    return s ? vg_strdup(s) : NULL;
}

static void copy_or_empty(char *dst, size_t size, const char *s)
{
    snprintf(dst, size, "%s", s ? s : "");
}

/* The JSON body vigil sends for the page `b` describes. */
static char *page_body(const struct body_spec *b)
{
    struct vg_page pg = {0};
    char *json;

    pg.status = dup_or_null(b->status);
    pg.incident.id = dup_or_null(b->inc.id);
    pg.incident.monitor = dup_or_null(b->inc.monitor);
    pg.incident.severity = dup_or_null(b->inc.severity);
    pg.incident.summary = dup_or_null(b->inc.summary);
    pg.incident.started_at_ms = b->inc.started_at_ms;
    pg.incident.resolved_at_ms = b->inc.resolved_at_ms;
    pg.resource.id = dup_or_null(b->res.id);
    pg.resource.type = dup_or_null(b->res.type);
    pg.resource.name = dup_or_null(b->res.name);
    pg.resource.workspace = dup_or_null(b->res.workspace);
    pg.resource.version = dup_or_null(b->res.version);
    pg.resource.owner = dup_or_null(b->res.owner);
    copy_or_empty(pg.resource.status, sizeof(pg.resource.status), b->res.status);
    copy_or_empty(pg.resource.runtime, sizeof(pg.resource.runtime), b->res.runtime);
    copy_or_empty(pg.resource.health, sizeof(pg.resource.health), b->res.health);
    copy_or_empty(pg.transition.field, sizeof(pg.transition.field), b->tr.field);
    copy_or_empty(pg.transition.from, sizeof(pg.transition.from), b->tr.from);
    copy_or_empty(pg.transition.to, sizeof(pg.transition.to), b->tr.to);
    pg.transition.at_ms = b->tr.at_ms;
    json = vg_page_to_json(&pg);
    vg_page_fini(&pg);
    return json;
}

static char *firing_body(void)
{
    return page_body(&page_specs[BODY_FIRING]);
}

static char *resolved_body(void)
{
    return page_body(&page_specs[BODY_RESOLVED]);
}

static void assert_valid(const cJSON *schema, const char *json)
{
    cJSON *inst = cJSON_Parse(json);
    char err[512];

    if (!inst) {
        fail_msg("vg_page_to_json emitted invalid JSON: %s", json);
    }
    if (check(schema, inst, err, sizeof(err)) != 0) {
        fail_msg("body does not match the schema: %s\nbody: %s", err, json);
    }
    cJSON_Delete(inst);
}

static void test_bodies_match_schema(void **state)
{
    cJSON *schema = load_schema();
    char *firing = firing_body();
    char *resolved = resolved_body();

    (void)state;
    assert_non_null(
        strstr(cJSON_GetObjectItemCaseSensitive(schema, "$schema")->valuestring, "2020-12"));
    assert_valid(schema, firing);
    assert_valid(schema, resolved);
    vg_free(firing);
    vg_free(resolved);
    cJSON_Delete(schema);
}

/* Walk the body: every key must be a property of the matching schema object. */
static void check_documented(const cJSON *root, const cJSON *schema, const cJSON *inst,
                             const char *path, const char *doc, size_t *failures)
{
    const cJSON *props;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(schema, "$ref");
    const cJSON *item;

    if (ref) {
        schema = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "$defs"),
                                                  ref->valuestring + strlen("#/$defs/"));
    }
    if (!cJSON_IsObject(inst)) {
        return;
    }
    props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    cJSON_ArrayForEach(item, inst)
    {
        const cJSON *sub = props ? cJSON_GetObjectItemCaseSensitive(props, item->string) : NULL;
        char full[256];
        char dotted[128];
        char bare[128];

        snprintf(full, sizeof(full), "`%s%s%s`", path, path[0] ? "." : "", item->string);
        snprintf(dotted, sizeof(dotted), "`.%s`", item->string);
        snprintf(bare, sizeof(bare), "`%s`", item->string);
        if (!sub) {
            print_error("%s is emitted but not in the schema\n", full);
            (*failures)++;
            continue;
        }
        /* The docs table names it as `incident.id`, or `.name` in a grouped row, or bare at the
         * top. */
        if (!strstr(doc, full) && !strstr(doc, dotted) && !(path[0] == '\0' && strstr(doc, bare))) {
            print_error("%s is emitted but not documented in docs/webhook.md\n", full);
            (*failures)++;
        }
        char sub_path[256];
        snprintf(sub_path, sizeof(sub_path), "%s%s%s", path, path[0] ? "." : "", item->string);
        check_documented(root, sub, item, sub_path, doc, failures);
    }
}

/* We promise every key is always present: each object's properties are all required. */
static void check_all_required(const cJSON *schema, const char *path, size_t *failures)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *p;

    if (!props) {
        return;
    }
    cJSON_ArrayForEach(p, props)
    {
        bool found = false;
        const cJSON *r;
        cJSON_ArrayForEach(r, req)
        {
            found = found || strcmp(r->valuestring, p->string) == 0;
        }
        if (!found) {
            print_error("%s.%s is a property but not required\n", path, p->string);
            (*failures)++;
        }
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.%s", path, p->string);
        check_all_required(p, sub, failures);
    }
}

static void test_every_key_documented(void **state)
{
    cJSON *schema = load_schema();
    char *doc = slurp(VIGIL_WEBHOOK_DOC);
    char *bodies[] = {firing_body(), resolved_body()};
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(bodies); i++) {
        cJSON *inst = cJSON_Parse(bodies[i]);
        assert_non_null(inst);
        check_documented(schema, schema, inst, "", doc, &failures);
        cJSON_Delete(inst);
        vg_free(bodies[i]);
    }
    check_all_required(schema, "", &failures);
    assert_int_equal(failures, 0);
    vg_free(doc);
    cJSON_Delete(schema);
}

/* Each mutation breaks the contract: the validator must notice (so it can fail at all). */
static void test_schema_rejects_broken_bodies(void **state)
{
    static const struct {
        const char *object; /* NULL: the root */
        const char *key;
        const char *replacement; /* NULL: delete the key */
    } cases[] = {
        {NULL, "version", "1"},
        {NULL, "version", "\"2\""},
        {NULL, "status", "\"open\""},
        {NULL, "incident", NULL},
        {NULL, "transition", "[]"},
        {"incident", "id", NULL},
        {"incident", "id", "\"not-hex-at-all!\""},
        {"incident", "severity", "\"urgent\""},
        {"incident", "summary", "null"},
        {"incident", "started_at", "\"yesterday\""},
        {"incident", "started_at", "\"2026-11-28T10:00:00+02:00\""},
        {"incident", "resolved_at", "5"},
        {"incident", "resolved_at", NULL},
        {"resource", "name", "\"\""},
        {"resource", "owner", "null"},
        {"resource", "runtime", "\"exploded\""},
        {"resource", "health", "null"},
        {"transition", "field", "\"owner\""},
        {"transition", "from", "\"\""},
        {"transition", "to", "null"},
        {"transition", "at", "1795860000123"},
    };
    cJSON *schema = load_schema();
    char *good = firing_body();
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        cJSON *inst = cJSON_Parse(good);
        cJSON *obj =
            cases[i].object ? cJSON_GetObjectItemCaseSensitive(inst, cases[i].object) : inst;
        char err[512];

        assert_non_null(obj);
        if (cases[i].replacement) {
            cJSON *value = cJSON_Parse(cases[i].replacement);
            assert_non_null(value);
            assert_true(cJSON_ReplaceItemInObjectCaseSensitive(obj, cases[i].key, value));
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(obj, cases[i].key);
        }
        if (check(schema, inst, err, sizeof(err)) == 0) {
            print_error("case %zu (%s.%s = %s) was accepted\n", i,
                        cases[i].object ? cases[i].object : "", cases[i].key,
                        cases[i].replacement ? cases[i].replacement : "(deleted)");
            failures++;
        }
        cJSON_Delete(inst);
    }
    assert_int_equal(failures, 0);
    vg_free(good);
    cJSON_Delete(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies_match_schema),
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_schema_rejects_broken_bodies),
    };

    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
