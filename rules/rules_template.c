/*
 * Summary and description templates: "{{ path }}" and "{{ path | default "x" }}".
 * Compiled once at load into literal and path parts, so every mistake (unknown
 * path, unterminated "{{", unknown filter) is a load error at the scalar's
 * file:line:col; rendering at eval only concatenates and never fails.
 */
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

static const char *get_monitor(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return c->monitor;
}

static const char *get_severity(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return c->severity;
}

static const char *get_incident_id(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return c->incident_id;
}

#define RES_STRING_GETTER(fn, member)                                                              \
    static const char *fn(const struct rules_tpl_ctx *c, char *scratch, size_t size)               \
    {                                                                                              \
        (void)scratch;                                                                             \
        (void)size;                                                                                \
        return c->res->member;                                                                     \
    }

RES_STRING_GETTER(get_res_id, id)
RES_STRING_GETTER(get_res_type, type)
RES_STRING_GETTER(get_res_name, name)
RES_STRING_GETTER(get_res_workspace, workspace)
RES_STRING_GETTER(get_res_version, version)
RES_STRING_GETTER(get_res_owner, owner)
RES_STRING_GETTER(get_res_status, status)
RES_STRING_GETTER(get_res_runtime, runtime)

static const char *get_res_health(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return vg_health_name(c->res->health);
}

static const char *get_tr_field(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return vg_field_name(c->t->field);
}

static const char *get_tr_from(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return c->t->from;
}

static const char *get_tr_to(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    (void)scratch;
    (void)size;
    return c->t->to;
}

static const char *get_tr_at(const struct rules_tpl_ctx *c, char *scratch, size_t size)
{
    vg_time_format_rfc3339(c->t->at_ms, scratch, size);
    return scratch;
}

/* The paths a template may name; add a row to extend the language. */
static const struct rules_tpl_path tpl_paths[] = {
    {"monitor", get_monitor},
    {"severity", get_severity},
    {"incident.id", get_incident_id},
    {"resource.id", get_res_id},
    {"resource.type", get_res_type},
    {"resource.name", get_res_name},
    {"resource.workspace", get_res_workspace},
    {"resource.version", get_res_version},
    {"resource.owner", get_res_owner},
    {"resource.status", get_res_status},
    {"resource.runtime", get_res_runtime},
    {"resource.health", get_res_health},
    {"transition.field", get_tr_field},
    {"transition.from", get_tr_from},
    {"transition.to", get_tr_to},
    {"transition.at", get_tr_at},
};

static const struct rules_tpl_path *find_path(const char *name, size_t len)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(tpl_paths); i++) {
        if (strlen(tpl_paths[i].name) == len && memcmp(tpl_paths[i].name, name, len) == 0) {
            return &tpl_paths[i];
        }
    }
    return NULL;
}

static void add_part(struct rules_tpl *tpl, const struct rules_tpl_path *path, char *text)
{
    struct rules_tpl_part *part = VG_ARRAY_PUSH(tpl->parts, tpl->n, tpl->cap);

    part->path = path;
    part->text = text;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_';
}

/*
 * The end of the expression that starts at `p` (just after "{{"): the
 * first "}}" outside a double-quoted string, or NULL.
 */
static const char *find_close(const char *p)
{
    bool quoted = false;

    for (; *p; p++) {
        if (quoted && *p == '\\' && p[1]) {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (!quoted && p[0] == '}' && p[1] == '}') {
            return p;
        }
    }
    return NULL;
}

static vg_err_t unknown_path_error(const struct vg_ynode *node, const char *name, size_t len,
                                   char *errstr, size_t errstr_size)
{
    const char *names[VG_ARRAY_LEN(tpl_paths)];
    char *word = vg_strndup(name, len);
    const char *hint;
    vg_err_t err;

    for (size_t i = 0; i < VG_ARRAY_LEN(tpl_paths); i++) {
        names[i] = tpl_paths[i].name;
    }
    hint = rules_closest(word, names, VG_ARRAY_LEN(names));
    if (hint) {
        err = vg_ynode_error(node, errstr, errstr_size,
                             "unknown template path \"%s\" (did you mean \"%s\"?)", word, hint);
    } else {
        err = vg_ynode_error(node, errstr, errstr_size, "unknown template path \"%s\"", word);
    }
    vg_free(word);
    return err;
}

/* Parse the expression [p, end) of one "{{ ... }}" and append its part. */
static vg_err_t compile_expr(struct rules_tpl *tpl, const struct vg_ynode *node, const char *p,
                             const char *end, char *errstr, size_t errstr_size)
{
    const struct rules_tpl_path *path;
    const char *name;
    size_t name_len;
    struct vg_buf dflt = {0};
    const char *expr = p;
    int expr_len = (int)(end - p);

    while (p < end && is_space(*p)) {
        p++;
    }
    name = p;
    while (p < end && is_path_char(*p)) {
        p++;
    }
    name_len = (size_t)(p - name);
    while (p < end && is_space(*p)) {
        p++;
    }
    if (name_len == 0 || (p < end && *p != '|')) {
        return vg_ynode_error(node, errstr, errstr_size,
                              "bad template expression \"{{%.*s}}\" (expected {{ path }} or "
                              "{{ path | default \"text\" }})",
                              expr_len, expr);
    }
    path = find_path(name, name_len);
    if (!path) {
        return unknown_path_error(node, name, name_len, errstr, errstr_size);
    }
    if (p == end) {
        add_part(tpl, path, NULL);
        return VG_OK;
    }
    p++; /* '|' */
    while (p < end && is_space(*p)) {
        p++;
    }
    if ((size_t)(end - p) < 7 || memcmp(p, "default", 7) != 0 ||
        (p + 7 < end && !is_space(p[7]) && p[7] != '"')) {
        const char *f = p;

        while (p < end && !is_space(*p)) {
            p++;
        }
        return vg_ynode_error(node, errstr, errstr_size,
                              "unknown template filter \"%.*s\" (expected default \"text\")",
                              (int)(p - f), f);
    }
    p += 7;
    while (p < end && is_space(*p)) {
        p++;
    }
    if (p == end || *p != '"') {
        return vg_ynode_error(node, errstr, errstr_size,
                              "template filter default needs a quoted text: "
                              "{{ %.*s | default \"text\" }}",
                              (int)name_len, name);
    }
    /* find_close() guarantees the quote is closed before `end`. */
    for (p++; *p != '"'; p++) {
        if (*p == '\\') {
            p++;
        }
        vg_buf_putc(&dflt, *p);
    }
    p++;
    while (p < end && is_space(*p)) {
        p++;
    }
    if (p != end) {
        vg_buf_fini(&dflt);
        return vg_ynode_error(node, errstr, errstr_size,
                              "bad template expression \"{{%.*s}}\": unexpected text after the "
                              "default value",
                              expr_len, expr);
    }
    add_part(tpl, path, vg_buf_steal(&dflt));
    return VG_OK;
}

vg_err_t rules_tpl_compile(struct rules_tpl *tpl, const struct vg_ynode *node, const char *src,
                           char *errstr, size_t errstr_size)
{
    const char *p = src;

    while (*p) {
        const char *open = strstr(p, "{{");
        const char *close;
        vg_err_t err;

        if (!open) {
            add_part(tpl, NULL, vg_strdup(p));
            break;
        }
        if (open > p) {
            add_part(tpl, NULL, vg_strndup(p, (size_t)(open - p)));
        }
        close = find_close(open + 2);
        if (!close) {
            rules_tpl_fini(tpl);
            return vg_ynode_error(node, errstr, errstr_size,
                                  "unterminated \"{{\" in template (missing \"}}\")");
        }
        err = compile_expr(tpl, node, open + 2, close, errstr, errstr_size);
        if (err != VG_OK) {
            rules_tpl_fini(tpl);
            return err;
        }
        p = close + 2;
    }
    return VG_OK;
}

char *rules_tpl_render(const struct rules_tpl *tpl, const struct rules_tpl_ctx *c)
{
    struct vg_buf b = {0};
    char scratch[64];

    for (size_t i = 0; i < tpl->n; i++) {
        const struct rules_tpl_part *part = &tpl->parts[i];
        const char *v;

        if (!part->path) {
            vg_buf_puts(&b, part->text);
            continue;
        }
        v = part->path->get(c, scratch, sizeof(scratch));
        if ((!v || !*v) && part->text) {
            v = part->text;
        }
        if (v) {
            vg_buf_puts(&b, v);
        }
    }
    return vg_buf_steal(&b);
}

void rules_tpl_fini(struct rules_tpl *tpl)
{
    for (size_t i = 0; i < tpl->n; i++) {
        vg_free(tpl->parts[i].text);
    }
    vg_free(tpl->parts);
    memset(tpl, 0, sizeof(*tpl));
}
