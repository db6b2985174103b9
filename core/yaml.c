/*
 * YAML -> struct vg_ynode tree with 1-based positions, via libyaml's event
 * parser. Rejected at load: files over VG_YAML_MAX_BYTES, nesting over
 * VG_YAML_MAX_DEPTH, aliases (no billion-laughs expansion), duplicate
 * keys, non-scalar keys, more than one document. Optional ${NAME}
 * substitution from the environment (unset = error).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "vigil/mem.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

struct loader {
    yaml_parser_t parser;
    const char *file;
    const char *buf; /* the whole input, to explain libyaml's errors */
    size_t len;
    int flags;
    int depth;
    char *errstr;
    size_t errstr_size;
};

static vg_err_t loader_error(struct loader *ld, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static vg_err_t loader_error(struct loader *ld, size_t line, size_t col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ld->errstr, ld->errstr_size, "%s:%zu:%zu: %s", ld->file, line, col, msg);
    return VG_ERR_PARSE;
}

static vg_err_t parser_error(struct loader *ld)
{
    yaml_parser_t *p = &ld->parser;
    if (p->error == YAML_MEMORY_ERROR) {
        vg_oom("yaml parser");
    }
    /* libyaml says "found character that cannot start any token" for a tab */
    if (p->problem_mark.index < ld->len && ld->buf[p->problem_mark.index] == '\t') {
        return loader_error(ld, p->problem_mark.line + 1, p->problem_mark.column + 1,
                            "tab character: YAML indents with spaces, never tabs (replace the "
                            "tab with spaces)");
    }
    return loader_error(ld, p->problem_mark.line + 1, p->problem_mark.column + 1, "%s%s%s",
                        p->problem ? p->problem : "invalid YAML", p->context ? " " : "",
                        p->context ? p->context : "");
}

static void node_free(struct vg_ynode *n)
{
    if (!n) {
        return;
    }
    free(n->str);
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == VG_YNODE_MAP) {
            free(n->pairs[i].key);
            node_free(n->pairs[i].value);
        } else if (n->kind == VG_YNODE_SEQ) {
            node_free(n->items[i]);
        }
    }
    free(n->pairs);
    free(n->items);
    free(n);
}

void vg_ynode_free(struct vg_ynode *n)
{
    node_free(n);
}

struct vg_ynode *vg_ynode_new(enum vg_ynode_kind kind, const char *file, size_t line,
                              const char *str)
{
    struct vg_ynode *n = vg_calloc(1, sizeof(*n));

    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = line ? 1 : 0;
    n->str = vg_strdup(str ? str : "");
    n->quoted = false; /* read like a plain scalar: "true" is a boolean to a boolean key */
    return n;
}

void vg_ynode_set(struct vg_ynode *map, const char *key, struct vg_ynode *value)
{
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->pairs[i].key, key) == 0) {
            node_free(map->pairs[i].value);
            map->pairs[i].value = value;
            return;
        }
    }
    map->pairs = vg_realloc(map->pairs, (map->n + 1) * sizeof(*map->pairs));
    map->pairs[map->n].key = vg_strdup(key);
    map->pairs[map->n].line = value->line;
    map->pairs[map->n].col = value->col;
    map->pairs[map->n].value = value;
    map->n++;
}

/* ${NAME} substitution; "$${" is a literal "${". */
static vg_err_t substitute_env(struct loader *ld, const yaml_event_t *ev, const char *in,
                               char **out)
{
    struct vg_buf b = {0};
    const char *p = in;
    while (*p) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            vg_buf_puts(&b, "${");
            p += 3;
            continue;
        }
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            char name[256];
            const char *val;
            size_t n;
            if (!end) {
                vg_buf_fini(&b);
                return loader_error(ld, ev->start_mark.line + 1, ev->start_mark.column + 1,
                                    "unterminated ${ in value");
            }
            n = (size_t)(end - (p + 2));
            if (n == 0 || n >= sizeof(name)) {
                vg_buf_fini(&b);
                return loader_error(ld, ev->start_mark.line + 1, ev->start_mark.column + 1,
                                    "bad environment variable reference");
            }
            memcpy(name, p + 2, n);
            name[n] = '\0';
            val = getenv(name);
            if (!val) {
                vg_buf_fini(&b);
                return loader_error(ld, ev->start_mark.line + 1, ev->start_mark.column + 1,
                                    "environment variable %s is not set", name);
            }
            vg_buf_puts(&b, val);
            p = end + 1;
            continue;
        }
        vg_buf_putc(&b, *p);
        p++;
    }
    *out = vg_buf_steal(&b);
    return VG_OK;
}

static vg_err_t parse_node(struct loader *ld, yaml_event_t *ev, struct vg_ynode **out);

static vg_err_t next_event(struct loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev)) {
        return parser_error(ld);
    }
    return VG_OK;
}

static vg_err_t parse_mapping(struct loader *ld, struct vg_ynode *n)
{
    size_t cap = 0;
    for (;;) {
        yaml_event_t kev;
        struct vg_ypair *pair;
        vg_err_t err = next_event(ld, &kev);
        if (err) {
            return err;
        }
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return VG_OK;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            err = loader_error(ld, kev.start_mark.line + 1, kev.start_mark.column + 1,
                               "mapping keys must be plain strings");
            yaml_event_delete(&kev);
            return err;
        }
        for (size_t i = 0; i < n->n; i++) {
            if (strcmp(n->pairs[i].key, (const char *)kev.data.scalar.value) == 0) {
                err = loader_error(ld, kev.start_mark.line + 1, kev.start_mark.column + 1,
                                   "duplicate key \"%s\" (first at line %zu)",
                                   (const char *)kev.data.scalar.value, n->pairs[i].line);
                yaml_event_delete(&kev);
                return err;
            }
        }
        pair = VG_ARRAY_PUSH(n->pairs, n->n, cap);
        pair->key = vg_strdup((const char *)kev.data.scalar.value);
        pair->line = kev.start_mark.line + 1;
        pair->col = kev.start_mark.column + 1;
        pair->value = NULL;
        yaml_event_delete(&kev);
        err = next_event(ld, &kev);
        if (err) {
            return err;
        }
        err = parse_node(ld, &kev, &pair->value);
        yaml_event_delete(&kev);
        if (err) {
            return err;
        }
    }
}

static vg_err_t parse_sequence(struct loader *ld, struct vg_ynode *n)
{
    size_t cap = 0;
    for (;;) {
        yaml_event_t iev;
        struct vg_ynode **slot;
        vg_err_t err = next_event(ld, &iev);
        if (err) {
            return err;
        }
        if (iev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&iev);
            return VG_OK;
        }
        slot = VG_ARRAY_PUSH(n->items, n->n, cap);
        *slot = NULL;
        err = parse_node(ld, &iev, slot);
        yaml_event_delete(&iev);
        if (err) {
            return err;
        }
    }
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* Takes an already-read first event `ev` (caller deletes it). */
static vg_err_t parse_node(struct loader *ld, yaml_event_t *ev, struct vg_ynode **out)
{
    struct vg_ynode *n;
    vg_err_t err = VG_OK;

    if (ev->type == YAML_ALIAS_EVENT) {
        return loader_error(ld, ev->start_mark.line + 1, ev->start_mark.column + 1,
                            "aliases (*name) are not supported");
    }
    n = vg_calloc(1, sizeof(*n));
    n->line = ev->start_mark.line + 1;
    n->col = ev->start_mark.column + 1;
    n->file = ld->file;
    *out = n;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (is_null_scalar(ev)) {
            n->kind = VG_YNODE_NULL;
            n->str = vg_strdup("");
        } else {
            n->kind = VG_YNODE_SCALAR;
            if (ld->flags & VG_YAML_ENV) {
                err = substitute_env(ld, ev, (const char *)ev->data.scalar.value, &n->str);
            } else {
                n->str = vg_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
            }
        }
        return err;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if (++ld->depth > VG_YAML_MAX_DEPTH) {
            return loader_error(ld, n->line, n->col, "nesting deeper than %d levels",
                                VG_YAML_MAX_DEPTH);
        }
        if (ev->type == YAML_MAPPING_START_EVENT) {
            n->kind = VG_YNODE_MAP;
            err = parse_mapping(ld, n);
        } else {
            n->kind = VG_YNODE_SEQ;
            err = parse_sequence(ld, n);
        }
        ld->depth--;
        return err;
    default:
        return loader_error(ld, n->line, n->col, "unexpected YAML event");
    }
}

static vg_err_t load(struct vg_ydoc *doc, struct loader *ld)
{
    yaml_event_t ev;
    vg_err_t err;
    bool done = false;

    doc->root = NULL;
    while (!done) {
        err = next_event(ld, &ev);
        if (err) {
            return err;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (doc->root) {
                err = loader_error(ld, ev.start_mark.line + 1, ev.start_mark.column + 1,
                                   "only one YAML document per file");
            }
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            if (doc->root) {
                err = loader_error(ld, ev.start_mark.line + 1, ev.start_mark.column + 1,
                                   "only one YAML document per file");
            } else {
                err = parse_node(ld, &ev, &doc->root);
            }
        }
        yaml_event_delete(&ev);
        if (err) {
            return err;
        }
    }
    return VG_OK;
}

vg_err_t vg_yaml_load_string(struct vg_ydoc *doc, const char *name, const char *buf, size_t len,
                             int flags, char *errstr, size_t errstr_size)
{
    struct loader ld = {.flags = flags, .errstr = errstr, .errstr_size = errstr_size};
    vg_err_t err;

    memset(doc, 0, sizeof(*doc));
    doc->file = vg_strdup(name);
    ld.file = doc->file;
    ld.buf = buf;
    ld.len = len;
    if (len > VG_YAML_MAX_BYTES) {
        snprintf(errstr, errstr_size, "%s: larger than %d bytes", name, VG_YAML_MAX_BYTES);
        return VG_ERR_INVALID;
    }
    if (!yaml_parser_initialize(&ld.parser)) {
        vg_oom("yaml parser");
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)buf, len);
    err = load(doc, &ld);
    yaml_parser_delete(&ld.parser);
    if (err) {
        node_free(doc->root);
        doc->root = NULL;
    }
    return err;
}

vg_err_t vg_yaml_load_file(struct vg_ydoc *doc, const char *path, int flags, char *errstr,
                           size_t errstr_size)
{
    FILE *fp = fopen(path, "rb");
    struct vg_buf b = {0};
    char chunk[65536];
    size_t n;
    vg_err_t err;

    memset(doc, 0, sizeof(*doc));
    if (!fp) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return VG_ERR_IO;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        vg_buf_append(&b, chunk, n);
        if (b.len > VG_YAML_MAX_BYTES) {
            fclose(fp);
            vg_buf_fini(&b);
            snprintf(errstr, errstr_size, "%s: larger than %d bytes", path, VG_YAML_MAX_BYTES);
            return VG_ERR_INVALID;
        }
    }
    if (ferror(fp)) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        fclose(fp);
        vg_buf_fini(&b);
        return VG_ERR_IO;
    }
    fclose(fp);
    err = vg_yaml_load_string(doc, path, b.data ? b.data : "", b.len, flags, errstr, errstr_size);
    vg_buf_fini(&b);
    return err;
}

void vg_ydoc_fini(struct vg_ydoc *doc)
{
    node_free(doc->root);
    free(doc->file);
    doc->root = NULL;
    doc->file = NULL;
}

struct vg_ynode *vg_ynode_get(const struct vg_ynode *map, const char *key)
{
    if (!map || map->kind != VG_YNODE_MAP) {
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->pairs[i].key, key) == 0) {
            return map->pairs[i].value;
        }
    }
    return NULL;
}

const char *vg_ynode_kind_name(enum vg_ynode_kind k)
{
    switch (k) {
    case VG_YNODE_SCALAR:
        return "a scalar";
    case VG_YNODE_MAP:
        return "a mapping";
    case VG_YNODE_SEQ:
        return "a sequence";
    case VG_YNODE_NULL:
        return "null";
    }
    return "?";
}

static vg_err_t verror_at(const char *file, size_t line, size_t col, char *errstr,
                          size_t errstr_size, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static vg_err_t verror_at(const char *file, size_t line, size_t col, char *errstr,
                          size_t errstr_size, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line == 0) { /* a node built by hand (an environment variable): no position */
        snprintf(errstr, errstr_size, "%s: %s", file ? file : "<input>", msg);
        return VG_ERR_INVALID;
    }
    snprintf(errstr, errstr_size, "%s:%zu:%zu: %s", file ? file : "<input>", line, col, msg);
    return VG_ERR_INVALID;
}

vg_err_t vg_ynode_error(const struct vg_ynode *node, char *errstr, size_t errstr_size,
                        const char *fmt, ...)
{
    va_list ap;
    vg_err_t err;
    va_start(ap, fmt);
    err = verror_at(node->file, node->line, node->col, errstr, errstr_size, fmt, ap);
    va_end(ap);
    return err;
}

vg_err_t vg_ypair_error(const struct vg_ynode *map, const struct vg_ypair *pair, char *errstr,
                        size_t errstr_size, const char *fmt, ...)
{
    va_list ap;
    vg_err_t err;
    va_start(ap, fmt);
    err = verror_at(map->file, pair->line, pair->col, errstr, errstr_size, fmt, ap);
    va_end(ap);
    return err;
}

/* Levenshtein distance, bounded to short keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t prev[65];
    size_t cur[65];
    if (la > 64 || lb > 64) {
        return 99;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < best) {
                best = prev[j - 1] + cost;
            }
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

const char *vg_yaml_suggest(const char *word, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 3;

    for (const char *const *a = known; *a; a++) {
        size_t d = edit_distance(*a, word);

        if (d < best_d) {
            best_d = d;
            best = *a;
        }
    }
    return best;
}

vg_err_t vg_ynode_check_keys(const struct vg_ynode *map, const char *const *allowed, char *errstr,
                             size_t errstr_size)
{
    if (map->kind != VG_YNODE_MAP) {
        return vg_ynode_error(map, errstr, errstr_size, "expected a mapping, got %s",
                              vg_ynode_kind_name(map->kind));
    }
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->pairs[i].key;
        const char *best = NULL;
        size_t best_d = 3;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++) {
            size_t d;
            if (strcmp(*a, key) == 0) {
                ok = true;
                break;
            }
            d = edit_distance(*a, key);
            if (d < best_d) {
                best_d = d;
                best = *a;
            }
        }
        if (ok) {
            continue;
        }
        if (best) {
            return vg_ypair_error(map, &map->pairs[i], errstr, errstr_size,
                                  "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
        }
        return vg_ypair_error(map, &map->pairs[i], errstr, errstr_size, "unknown key \"%s\"", key);
    }
    return VG_OK;
}

vg_err_t vg_ynode_string(const struct vg_ynode *n, const char **out, char *errstr,
                         size_t errstr_size)
{
    if (n->kind != VG_YNODE_SCALAR) {
        return vg_ynode_error(n, errstr, errstr_size, "expected a string, got %s",
                              vg_ynode_kind_name(n->kind));
    }
    *out = n->str;
    return VG_OK;
}

vg_err_t vg_ynode_int(const struct vg_ynode *n, int64_t min, int64_t max, int64_t *out,
                      char *errstr, size_t errstr_size)
{
    int64_t v;
    if (n->kind != VG_YNODE_SCALAR || !vg_parse_i64(n->str, &v)) {
        return vg_ynode_error(n, errstr, errstr_size, "expected an integer, got %s%s%s%s",
                              n->kind == VG_YNODE_SCALAR ? "\"" : vg_ynode_kind_name(n->kind),
                              n->kind == VG_YNODE_SCALAR ? n->str : "",
                              n->kind == VG_YNODE_SCALAR ? "\"" : "", "");
    }
    if (v < min || v > max) {
        return vg_ynode_error(n, errstr, errstr_size, "%lld is out of range [%lld, %lld]",
                              (long long)v, (long long)min, (long long)max);
    }
    *out = v;
    return VG_OK;
}

vg_err_t vg_ynode_bool(const struct vg_ynode *n, bool *out, char *errstr, size_t errstr_size)
{
    if (n->kind == VG_YNODE_SCALAR && !n->quoted) {
        if (strcmp(n->str, "true") == 0 || strcmp(n->str, "yes") == 0 ||
            strcmp(n->str, "on") == 0) {
            *out = true;
            return VG_OK;
        }
        if (strcmp(n->str, "false") == 0 || strcmp(n->str, "no") == 0 ||
            strcmp(n->str, "off") == 0) {
            *out = false;
            return VG_OK;
        }
    }
    return vg_ynode_error(n, errstr, errstr_size, "expected true or false");
}

vg_err_t vg_ynode_duration(const struct vg_ynode *n, int64_t *out_ms, char *errstr,
                           size_t errstr_size)
{
    if (n->kind != VG_YNODE_SCALAR || !vg_duration_parse(n->str, out_ms)) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "expected a duration like 500ms, 30s, 10m, 4h or 1h30m, got %s%s%s",
                              n->kind == VG_YNODE_SCALAR ? "\"" : vg_ynode_kind_name(n->kind),
                              n->kind == VG_YNODE_SCALAR ? n->str : "",
                              n->kind == VG_YNODE_SCALAR ? "\"" : "");
    }
    return VG_OK;
}

void vg_strv_free(char **v)
{
    if (!v) {
        return;
    }
    for (char **p = v; *p; p++) {
        free(*p);
    }
    free(v);
}

vg_err_t vg_ynode_strings(const struct vg_ynode *n, char ***out, size_t *n_out, char *errstr,
                          size_t errstr_size)
{
    char **v;
    if (n->kind == VG_YNODE_SCALAR) {
        v = vg_calloc(2, sizeof(*v));
        v[0] = vg_strdup(n->str);
        *out = v;
        *n_out = 1;
        return VG_OK;
    }
    if (n->kind != VG_YNODE_SEQ) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "expected a string or a list of strings, got %s",
                              vg_ynode_kind_name(n->kind));
    }
    v = vg_calloc(n->n + 1, sizeof(*v));
    for (size_t i = 0; i < n->n; i++) {
        if (n->items[i]->kind != VG_YNODE_SCALAR) {
            vg_err_t err =
                vg_ynode_error(n->items[i], errstr, errstr_size, "expected a string, got %s",
                               vg_ynode_kind_name(n->items[i]->kind));
            vg_strv_free(v);
            return err;
        }
        v[i] = vg_strdup(n->items[i]->str);
    }
    *out = v;
    *n_out = n->n;
    return VG_OK;
}
