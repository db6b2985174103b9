/*
 * Summary and description templates: "{{ path }}" and "{{ path | default "x" }}".
 * Compiled once at load into literal and path parts, so every mistake (unknown
 * path, unterminated "{{", unknown filter) is a load error at the scalar's
 * file:line:col; rendering at eval only concatenates and never fails.
 */
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

#define CTX_GETTER(fn, expr)                                                                       \
    static const char *fn(const struct rules_tpl_ctx *c, const char *arg, char *scratch,           \
                          size_t size)                                                             \
    {                                                                                              \
        (void)arg;                                                                                 \
        (void)scratch;                                                                             \
        (void)size;                                                                                \
        return (expr);                                                                             \
    }

CTX_GETTER(get_monitor, c->monitor)
CTX_GETTER(get_severity, c->severity)
CTX_GETTER(get_incident_id, c->incident_id)
CTX_GETTER(get_incident_type, c->incident_type)
CTX_GETTER(get_state, c->state)
CTX_GETTER(get_res_id, c->res->id)
CTX_GETTER(get_res_type, c->res->type)
CTX_GETTER(get_res_name, c->res->name)
CTX_GETTER(get_res_workspace, c->res->workspace)
CTX_GETTER(get_res_version, c->res->version)
CTX_GETTER(get_res_owner, c->res->owner)
CTX_GETTER(get_res_status, c->res->status)
CTX_GETTER(get_res_runtime, c->res->runtime)
CTX_GETTER(get_res_message, c->res->message)
CTX_GETTER(get_res_health, vg_health_name(c->res->health))
CTX_GETTER(get_tr_field, c->t ? vg_field_name(c->t->field) : "")
CTX_GETTER(get_tr_from, c->t ? c->t->from : "")
CTX_GETTER(get_tr_to, c->t ? c->t->to : "")
CTX_GETTER(get_label, vg_labels_get(c->labels, c->n_labels, arg))

static const char *get_tr_at(const struct rules_tpl_ctx *c, const char *arg, char *scratch,
                             size_t size)
{
    (void)arg;
    if (!c->t) {
        return "";
    }
    vg_time_format_rfc3339(c->t->at_ms, scratch, size);
    return scratch;
}

/* The transition's reason/pod (runtime from pods), else the Resource's last ones. */
static const char *get_reason(const struct rules_tpl_ctx *c, const char *arg, char *scratch,
                              size_t size)
{
    (void)arg;
    (void)scratch;
    (void)size;
    if (c->t && c->t->reason[0]) {
        return c->t->reason;
    }
    return c->res->runtime_reason;
}

static const char *get_pod(const struct rules_tpl_ctx *c, const char *arg, char *scratch,
                           size_t size)
{
    (void)arg;
    (void)scratch;
    (void)size;
    if (c->t && c->t->pod[0]) {
        return c->t->pod;
    }
    return c->res->runtime_pod;
}

static const char *get_duration(const struct rules_tpl_ctx *c, const char *arg, char *scratch,
                                size_t size)
{
    (void)arg;
    rules_format_duration(c->duration_ms, scratch, size);
    return scratch;
}

void rules_format_duration(int64_t ms, char *out, size_t out_size)
{
    static const struct {
        int64_t ms;
        char unit;
    } units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
    size_t len = 0;

    out[0] = '\0';
    if (ms < 1000) {
        snprintf(out, out_size, ms > 0 ? "%lldms" : "0s", (long long)ms);
        return;
    }
    /* At most the two largest units: "1d3h", "2h5m", "45s". */
    for (size_t i = 0, used = 0; i < VG_ARRAY_LEN(units) && used < 2; i++) {
        int64_t q = ms / units[i].ms;

        if (q == 0 && used == 0) {
            continue;
        }
        if (q > 0) {
            int w = snprintf(out + len, out_size - len, "%lld%c", (long long)q, units[i].unit);

            if (w < 0 || (size_t)w >= out_size - len) {
                return;
            }
            len += (size_t)w;
        }
        ms -= q * units[i].ms;
        used++;
    }
}

/* The paths a template may name; add a row to extend the language. */
static const struct rules_tpl_path tpl_paths[] = {
    {"monitor", get_monitor},
    {"severity", get_severity},
    {"incident.id", get_incident_id},
    {"incident.type", get_incident_type},
    {"incident.state", get_state},
    {"resource.id", get_res_id},
    {"resource.type", get_res_type},
    {"resource.name", get_res_name},
    {"resource.workspace", get_res_workspace},
    {"resource.version", get_res_version},
    {"resource.owner", get_res_owner},
    {"resource.status", get_res_status},
    {"resource.runtime", get_res_runtime},
    {"resource.health", get_res_health},
    {"resource.message", get_res_message},
    {"transition.field", get_tr_field},
    {"transition.from", get_tr_from},
    {"transition.to", get_tr_to},
    {"transition.at", get_tr_at},
    {"transition.reason", get_reason},
    {"transition.pod", get_pod},
    {"reason", get_reason},
    {"pod", get_pod},
    {"duration", get_duration},
    {"labels.", get_label}, /* labels.<key> */
};

static const struct rules_tpl_path *find_path(const char *name, size_t len, char **arg)
{
    *arg = NULL;
    if (len > 7 && memcmp(name, "labels.", 7) == 0) {
        *arg = vg_strndup(name + 7, len - 7);
        return &tpl_paths[VG_ARRAY_LEN(tpl_paths) - 1];
    }
    for (size_t i = 0; i + 1 < VG_ARRAY_LEN(tpl_paths); i++) {
        if (strlen(tpl_paths[i].name) == len && memcmp(tpl_paths[i].name, name, len) == 0) {
            return &tpl_paths[i];
        }
    }
    return NULL;
}

static void add_part(struct rules_tpl *tpl, const struct rules_tpl_path *path, char *arg,
                     char *text)
{
    struct rules_tpl_part *part = VG_ARRAY_PUSH(tpl->parts, tpl->n, tpl->cap);

    part->path = path;
    part->arg = arg;
    part->text = text;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_path_char(char c)
{
    /* '-' and '/' for label keys such as labels.app.kubernetes.io/name */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/';
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
    hint = rules_closest(word, names, VG_ARRAY_LEN(names) - 1);
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
    char *arg = NULL;
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
    path = find_path(name, name_len, &arg);
    if (!path) {
        return unknown_path_error(node, name, name_len, errstr, errstr_size);
    }
    if (p == end) {
        add_part(tpl, path, arg, NULL);
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
        vg_free(arg);
        return vg_ynode_error(node, errstr, errstr_size,
                              "unknown template filter \"%.*s\" (expected default \"text\")",
                              (int)(p - f), f);
    }
    p += 7;
    while (p < end && is_space(*p)) {
        p++;
    }
    if (p == end || *p != '"') {
        vg_free(arg);
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
        vg_free(arg);
        return vg_ynode_error(node, errstr, errstr_size,
                              "bad template expression \"{{%.*s}}\": unexpected text after the "
                              "default value",
                              expr_len, expr);
    }
    add_part(tpl, path, arg, vg_buf_steal(&dflt));
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
            add_part(tpl, NULL, NULL, vg_strdup(p));
            break;
        }
        if (open > p) {
            add_part(tpl, NULL, NULL, vg_strndup(p, (size_t)(open - p)));
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
        v = part->path->get(c, part->arg, scratch, sizeof(scratch));
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
        vg_free(tpl->parts[i].arg);
    }
    vg_free(tpl->parts);
    memset(tpl, 0, sizeof(*tpl));
}
