/*
 * Monitors and pagers from a YAML tree (core/yaml.c) into compiled rules.
 * The language is defined by the tables at the top (match keys, watched
 * fields, severities): extend it by adding rows. Every mistake is reported
 * once as "file:line:col: message" and leaves the ruleset untouched (a file
 * loads whole or not at all).
 */
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

static const char *const severities[] = {"info", "low", "medium", "high", "critical", NULL};
static const char *const status_values[] = {"active", "error", "deleted", NULL};
static const char *const runtime_values[] = {"pending", "running", "succeeded", "failed", NULL};
static const char *const health_values[] = {"healthy", "progressing", "unhealthy", NULL};

/* `when: {<field>: {from: ..., to: ...}}`; indexed by enum vg_field. */
static const struct rules_field fields[RULES_N_FIELDS] = {
    {"status", VG_FIELD_STATUS, status_values},
    {"runtime", VG_FIELD_RUNTIME, runtime_values},
    {"health", VG_FIELD_HEALTH, health_values},
};

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static const char *subj_type(const struct rules_subject *s)
{
    return or_empty(s->res->type);
}

static const char *subj_workspace(const struct rules_subject *s)
{
    return or_empty(s->res->workspace);
}

static const char *subj_name(const struct rules_subject *s)
{
    return or_empty(s->res->name);
}

static const char *subj_owner(const struct rules_subject *s)
{
    return or_empty(s->res->owner);
}

static const char *subj_version(const struct rules_subject *s)
{
    return or_empty(s->res->version);
}

static const char *subj_severity(const struct rules_subject *s)
{
    return or_empty(s->severity);
}

static const char *subj_monitor(const struct rules_subject *s)
{
    return or_empty(s->monitor);
}

#define BOTH (RULES_SCOPE_MONITOR | RULES_SCOPE_PAGER)

/* `match:` keys, and where each may be used. */
static const struct rules_match_key match_keys[] = {
    {"type", BOTH, subj_type, NULL},
    {"workspace", BOTH, subj_workspace, NULL},
    {"name", BOTH, subj_name, NULL},
    {"owner", BOTH, subj_owner, NULL},
    {"version", RULES_SCOPE_MONITOR, subj_version, NULL},
    {"severity", RULES_SCOPE_PAGER, subj_severity, severities},
    {"monitor", RULES_SCOPE_PAGER, subj_monitor, NULL},
};

static const char *const top_keys[] = {"monitors", "pagers", NULL};
static const char *const monitor_keys[] = {"name",    "match",       "when", "severity",
                                           "summary", "description", NULL};
static const char *const pager_keys[] = {"name", "match", "sinks", "continue", NULL};
static const char *const cond_keys[] = {"from", "to", NULL};

#define DEFAULT_SUMMARY                                                                            \
    "{{monitor}}: {{resource.type}} {{resource.name}} in {{resource.workspace}}: "                 \
    "{{transition.field}} {{transition.from | default \"(none)\"}} -> {{transition.to}}"

/* A file's rules, parsed but not yet added to the ruleset. */
struct staging {
    struct rules_monitor **monitors;
    size_t n_monitors, cap_monitors;
    struct rules_pager **pagers;
    size_t n_pagers, cap_pagers;
};

static vg_err_t expect_kind(const struct vg_ynode *n, enum vg_ynode_kind kind, const char *what,
                            char *errstr, size_t errstr_size)
{
    if (n->kind == kind) {
        return VG_OK;
    }
    return vg_ynode_error(n, errstr, errstr_size, "\"%s\": expected %s, got %s", what,
                          vg_ynode_kind_name(kind), vg_ynode_kind_name(n->kind));
}

static vg_err_t expect_string(const struct vg_ynode *n, const char *what, const char **out,
                              char *errstr, size_t errstr_size)
{
    if (n->kind != VG_YNODE_SCALAR) {
        return vg_ynode_error(n, errstr, errstr_size, "\"%s\": expected a string, got %s", what,
                              vg_ynode_kind_name(n->kind));
    }
    *out = n->str;
    return VG_OK;
}

/*
 * `key: x` or `key: [x, y]` -> the scalar nodes (a new heap array of
 * borrowed nodes). An empty list is an error: it would match nothing.
 */
static vg_err_t scalar_list(const struct vg_ynode *n, const char *what,
                            const struct vg_ynode ***out, size_t *n_out, char *errstr,
                            size_t errstr_size)
{
    const struct vg_ynode **items;

    if (n->kind == VG_YNODE_SCALAR) {
        items = vg_malloc(sizeof(*items));
        items[0] = n;
        *out = items;
        *n_out = 1;
        return VG_OK;
    }
    if (n->kind != VG_YNODE_SEQ) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "\"%s\": expected a string or a list of strings, got %s", what,
                              vg_ynode_kind_name(n->kind));
    }
    if (n->n == 0) {
        return vg_ynode_error(n, errstr, errstr_size, "\"%s\": empty list", what);
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->items[i]->kind != VG_YNODE_SCALAR) {
            return vg_ynode_error(n->items[i], errstr, errstr_size,
                                  "\"%s\": expected a string, got %s", what,
                                  vg_ynode_kind_name(n->items[i]->kind));
        }
    }
    items = vg_malloc(n->n * sizeof(*items));
    for (size_t i = 0; i < n->n; i++) {
        items[i] = n->items[i];
    }
    *out = items;
    *n_out = n->n;
    return VG_OK;
}

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

/* "a, b, c" for messages. */
static void join(struct vg_buf *b, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        vg_buf_printf(b, "%s%s", i ? ", " : "", list[i]);
    }
}

static vg_err_t bad_value(const struct vg_ynode *n, const char *what, const char *const *valid,
                          bool star, char *errstr, size_t errstr_size)
{
    struct vg_buf b = {0};
    vg_err_t err;

    join(&b, valid);
    err = vg_ynode_error(n, errstr, errstr_size, "invalid %s \"%s\" (expected one of: %s%s)", what,
                         n->str, b.data, star ? ", or \"*\" for any" : "");
    vg_buf_fini(&b);
    return err;
}

static bool valid_name(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static const struct rules_match_key *find_match_key(const char *name)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(match_keys); i++) {
        if (strcmp(match_keys[i].name, name) == 0) {
            return &match_keys[i];
        }
    }
    return NULL;
}

static void match_fini(struct rules_match *m)
{
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->terms[i].n; j++) {
            vg_free(m->terms[i].patterns[j]);
        }
        vg_free(m->terms[i].patterns);
    }
    vg_free(m->terms);
    memset(m, 0, sizeof(*m));
}

static vg_err_t parse_match(struct rules_match *m, const struct vg_ynode *n, unsigned scope,
                            char *errstr, size_t errstr_size)
{
    const char *allowed[VG_ARRAY_LEN(match_keys) + 1];
    size_t n_allowed = 0;
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, "match", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(match_keys); i++) {
        if (match_keys[i].scopes & scope) {
            allowed[n_allowed++] = match_keys[i].name;
        }
    }
    allowed[n_allowed] = NULL;
    err = vg_ynode_check_keys(n, allowed, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ypair *pair = &n->pairs[i];
        const struct rules_match_key *key = find_match_key(pair->key);
        struct rules_match_term *term;
        const struct vg_ynode **items;
        size_t n_items;

        VG_ASSERT(key);
        err = scalar_list(pair->value, pair->key, &items, &n_items, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        for (size_t j = 0; j < n_items && err == VG_OK; j++) {
            const char *s = items[j]->str;

            if (!vg_glob_valid(s)) {
                err = vg_ynode_error(items[j], errstr, errstr_size,
                                     "invalid glob \"%s\" in match.%s (unbalanced brackets?)", s,
                                     key->name);
            } else if (key->values && !vg_is_glob(s) && !in_list(key->values, s)) {
                err = bad_value(items[j], key->name, key->values, false, errstr, errstr_size);
            }
        }
        if (err != VG_OK) {
            vg_free(items);
            return err;
        }
        term = VG_ARRAY_PUSH(m->terms, m->n, m->cap);
        term->key = key;
        term->n = n_items;
        term->patterns = vg_malloc(n_items * sizeof(char *));
        for (size_t j = 0; j < n_items; j++) {
            term->patterns[j] = vg_strdup(items[j]->str);
        }
        vg_free(items);
    }
    return VG_OK;
}

bool rules_match_holds(const struct rules_match *m, const struct rules_subject *s)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct rules_match_term *term = &m->terms[i];
        const char *v = term->key->get(s);
        bool any = false;

        for (size_t j = 0; j < term->n && !any; j++) {
            const char *p = term->patterns[j];

            any = vg_is_glob(p) ? vg_glob_match(p, v) : strcmp(p, v) == 0;
        }
        if (!any) {
            return false;
        }
    }
    return true;
}

bool rules_valueset_has(const struct rules_valueset *vs, const char *v)
{
    if (!vs->given || vs->any) {
        return true;
    }
    for (size_t i = 0; i < vs->n; i++) {
        if (strcmp(vs->values[i], v) == 0) {
            return true;
        }
    }
    return false;
}

static void valueset_fini(struct rules_valueset *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        vg_free(vs->values[i]);
    }
    vg_free(vs->values);
    memset(vs, 0, sizeof(*vs));
}

static vg_err_t parse_valueset(struct rules_valueset *vs, const struct rules_field *field,
                               const struct vg_ynode *n, const char *what, char *errstr,
                               size_t errstr_size)
{
    const struct vg_ynode **items;
    size_t n_items;
    char kind[64];
    vg_err_t err;

    err = scalar_list(n, what, &items, &n_items, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    snprintf(kind, sizeof(kind), "%s value", field->name);
    vs->given = true;
    vs->values = vg_calloc(n_items, sizeof(char *));
    for (size_t i = 0; i < n_items; i++) {
        const char *s = items[i]->str;

        if (strcmp(s, "*") == 0) {
            vs->any = true;
            continue;
        }
        if (!in_list(field->values, s)) {
            err = bad_value(items[i], kind, field->values, true, errstr, errstr_size);
            break;
        }
        vs->values[vs->n++] = vg_strdup(s);
    }
    vg_free(items);
    return err;
}

/* from {x} to {x} (no "*"): a transition always changes the value, so this never fires. */
static bool never_matches(const struct rules_cond *c)
{
    const char *x;

    if (!c->from.given || !c->to.given || c->from.any || c->to.any) {
        return false;
    }
    x = c->from.values[0];
    for (size_t i = 0; i < c->from.n; i++) {
        if (strcmp(c->from.values[i], x) != 0) {
            return false;
        }
    }
    for (size_t i = 0; i < c->to.n; i++) {
        if (strcmp(c->to.values[i], x) != 0) {
            return false;
        }
    }
    return true;
}

static vg_err_t parse_when(struct rules_cond *c, const struct vg_ynode *n, char *errstr,
                           size_t errstr_size)
{
    const char *allowed[RULES_N_FIELDS + 1];
    const struct vg_ynode *body;
    const struct vg_ynode *v;
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, "when", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < RULES_N_FIELDS; i++) {
        allowed[i] = fields[i].name;
    }
    allowed[RULES_N_FIELDS] = NULL;
    err = vg_ynode_check_keys(n, allowed, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (n->n == 0) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "\"when\": needs one of status, runtime, health");
    }
    if (n->n > 1) {
        return vg_ypair_error(n, &n->pairs[1], errstr, errstr_size,
                              "\"when\": watches exactly one field, got \"%s\" and \"%s\" "
                              "(write one monitor per field)",
                              n->pairs[0].key, n->pairs[1].key);
    }
    for (size_t i = 0; i < RULES_N_FIELDS; i++) {
        if (strcmp(fields[i].name, n->pairs[0].key) == 0) {
            c->field = &fields[i];
        }
    }
    VG_ASSERT(c->field);
    body = n->pairs[0].value;
    err = expect_kind(body, VG_YNODE_MAP, c->field->name, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_ynode_check_keys(body, cond_keys, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    if (!vg_ynode_get(body, "from") && !vg_ynode_get(body, "to")) {
        return vg_ynode_error(body, errstr, errstr_size, "\"%s\": needs \"from\" and/or \"to\"",
                              c->field->name);
    }
    v = vg_ynode_get(body, "from");
    if (v) {
        err = parse_valueset(&c->from, c->field, v, "from", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(body, "to");
    if (v) {
        err = parse_valueset(&c->to, c->field, v, "to", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    if (never_matches(c)) {
        return vg_ynode_error(body, errstr, errstr_size,
                              "condition can never match: %s from \"%s\" to \"%s\" is not a "
                              "change",
                              c->field->name, c->from.values[0], c->from.values[0]);
    }
    return VG_OK;
}

void rules_monitor_destroy(struct rules_monitor *m)
{
    if (!m) {
        return;
    }
    vg_free(m->name);
    vg_free(m->loc.file);
    match_fini(&m->match);
    valueset_fini(&m->cond.from);
    valueset_fini(&m->cond.to);
    rules_tpl_fini(&m->summary);
    rules_tpl_fini(&m->description);
    vg_free(m);
}

void rules_pager_destroy(struct rules_pager *p)
{
    if (!p) {
        return;
    }
    vg_free(p->name);
    vg_free(p->loc.file);
    match_fini(&p->match);
    for (size_t i = 0; i < p->n_sinks; i++) {
        vg_free(p->sinks[i].name);
    }
    vg_free(p->sinks);
    vg_free(p);
}

static vg_err_t missing_key(const struct vg_ynode *n, const char *what, const char *name,
                            const char *key, char *errstr, size_t errstr_size)
{
    if (name) {
        return vg_ynode_error(n, errstr, errstr_size, "%s \"%s\": missing required key \"%s\"",
                              what, name, key);
    }
    return vg_ynode_error(n, errstr, errstr_size, "%s: missing required key \"%s\"", what, key);
}

/* The name of a monitor or pager: required and well-formed (callers check uniqueness). */
static vg_err_t parse_name(const struct vg_ynode *n, const char *what,
                           const struct vg_ynode **v_out, const char **out, char *errstr,
                           size_t errstr_size)
{
    const struct vg_ynode *v = vg_ynode_get(n, "name");
    vg_err_t err;

    if (!v) {
        return missing_key(n, what, NULL, "name", errstr, errstr_size);
    }
    err = expect_string(v, "name", out, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (!valid_name(*out)) {
        return vg_ynode_error(v, errstr, errstr_size,
                              "invalid %s name \"%s\" (use letters, digits, '.', '_' and '-')",
                              what, *out);
    }
    *v_out = v;
    return VG_OK;
}

static vg_err_t duplicate_error(const struct vg_ynode *v, const char *what, const char *name,
                                const struct rules_loc *first, char *errstr, size_t errstr_size)
{
    return vg_ynode_error(v, errstr, errstr_size,
                          "duplicate %s name \"%s\" (first defined at %s:%zu:%zu)", what, name,
                          first->file, first->line, first->col);
}

static void set_loc(struct rules_loc *loc, const struct vg_ynode *v)
{
    loc->file = vg_strdup(v->file ? v->file : "");
    loc->line = v->line;
    loc->col = v->col;
}

/* Where a monitor named `name` was defined, in the ruleset or earlier in this file; or NULL. */
static const struct rules_loc *monitor_defined(const struct vg_ruleset *rs,
                                               const struct staging *sg, const char *name)
{
    const struct rules_monitor *m = vg_map_get(rs->monitor_names, name);

    for (size_t i = 0; i < sg->n_monitors && !m; i++) {
        if (strcmp(sg->monitors[i]->name, name) == 0) {
            m = sg->monitors[i];
        }
    }
    return m ? &m->loc : NULL;
}

static const struct rules_loc *pager_defined(const struct vg_ruleset *rs, const struct staging *sg,
                                             const char *name)
{
    const struct rules_pager *p = vg_map_get(rs->pager_names, name);

    for (size_t i = 0; i < sg->n_pagers && !p; i++) {
        if (strcmp(sg->pagers[i]->name, name) == 0) {
            p = sg->pagers[i];
        }
    }
    return p ? &p->loc : NULL;
}

static vg_err_t parse_monitor(struct rules_monitor *m, const struct vg_ruleset *rs,
                              const struct staging *sg, const struct vg_ynode *n, char *errstr,
                              size_t errstr_size)
{
    const struct vg_ynode *v = NULL;
    const char *s = NULL;
    const struct rules_loc *first;
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, "monitors[]", errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_ynode_check_keys(n, monitor_keys, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = parse_name(n, "monitor", &v, &s, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    first = monitor_defined(rs, sg, s);
    if (first) {
        return duplicate_error(v, "monitor", s, first, errstr, errstr_size);
    }
    m->name = vg_strdup(s);
    set_loc(&m->loc, v);

    v = vg_ynode_get(n, "match");
    if (v) {
        err = parse_match(&m->match, v, RULES_SCOPE_MONITOR, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }

    v = vg_ynode_get(n, "when");
    if (!v) {
        return missing_key(n, "monitor", m->name, "when", errstr, errstr_size);
    }
    err = parse_when(&m->cond, v, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }

    v = vg_ynode_get(n, "severity");
    if (!v) {
        return missing_key(n, "monitor", m->name, "severity", errstr, errstr_size);
    }
    err = expect_string(v, "severity", &s, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; severities[i]; i++) {
        if (strcmp(severities[i], s) == 0) {
            m->severity = severities[i];
        }
    }
    if (!m->severity) {
        return bad_value(v, "severity", severities, false, errstr, errstr_size);
    }

    v = vg_ynode_get(n, "summary");
    if (v) {
        err = expect_string(v, "summary", &s, errstr, errstr_size);
        if (err == VG_OK) {
            err = rules_tpl_compile(&m->summary, v, s, errstr, errstr_size);
        }
    } else {
        err = rules_tpl_compile(&m->summary, n, DEFAULT_SUMMARY, errstr, errstr_size);
        VG_ASSERT(err == VG_OK);
    }
    if (err != VG_OK) {
        return err;
    }

    v = vg_ynode_get(n, "description");
    if (v) {
        err = expect_string(v, "description", &s, errstr, errstr_size);
        if (err == VG_OK) {
            err = rules_tpl_compile(&m->description, v, s, errstr, errstr_size);
        }
        m->has_description = err == VG_OK;
    }
    return err;
}

static vg_err_t parse_pager(struct rules_pager *p, const struct vg_ruleset *rs,
                            const struct staging *sg, const struct vg_ynode *n, char *errstr,
                            size_t errstr_size)
{
    const struct vg_ynode **items;
    size_t n_items;
    const struct vg_ynode *v = NULL;
    const char *s = NULL;
    const struct rules_loc *first;
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, "pagers[]", errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_ynode_check_keys(n, pager_keys, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = parse_name(n, "pager", &v, &s, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    first = pager_defined(rs, sg, s);
    if (first) {
        return duplicate_error(v, "pager", s, first, errstr, errstr_size);
    }
    p->name = vg_strdup(s);
    set_loc(&p->loc, v);

    v = vg_ynode_get(n, "match");
    if (v) {
        err = parse_match(&p->match, v, RULES_SCOPE_PAGER, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }

    v = vg_ynode_get(n, "sinks");
    if (!v) {
        return missing_key(n, "pager", p->name, "sinks", errstr, errstr_size);
    }
    err = scalar_list(v, "sinks", &items, &n_items, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    p->sinks = vg_calloc(n_items, sizeof(*p->sinks));
    for (size_t i = 0; i < n_items; i++) {
        if (!items[i]->str[0]) {
            err = vg_ynode_error(items[i], errstr, errstr_size, "\"sinks\": empty sink name");
            break;
        }
        p->sinks[i].name = vg_strdup(items[i]->str);
        p->sinks[i].line = items[i]->line;
        p->sinks[i].col = items[i]->col;
        p->n_sinks++;
    }
    vg_free(items);
    if (err != VG_OK) {
        return err;
    }

    v = vg_ynode_get(n, "continue");
    if (v) {
        err = vg_ynode_bool(v, &p->cont, errstr, errstr_size);
    }
    return err;
}

static void staging_fini(struct staging *sg)
{
    for (size_t i = 0; i < sg->n_monitors; i++) {
        rules_monitor_destroy(sg->monitors[i]);
    }
    vg_free(sg->monitors);
    for (size_t i = 0; i < sg->n_pagers; i++) {
        rules_pager_destroy(sg->pagers[i]);
    }
    vg_free(sg->pagers);
}

static vg_err_t parse_doc(struct staging *sg, const struct vg_ruleset *rs,
                          const struct vg_ynode *root, char *errstr, size_t errstr_size)
{
    const struct vg_ynode *v;
    vg_err_t err;

    if (root->kind != VG_YNODE_MAP) {
        return vg_ynode_error(root, errstr, errstr_size,
                              "expected a mapping with \"monitors\" and/or \"pagers\", got %s",
                              vg_ynode_kind_name(root->kind));
    }
    err = vg_ynode_check_keys(root, top_keys, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    v = vg_ynode_get(root, "monitors");
    if (v && v->kind != VG_YNODE_NULL) {
        err = expect_kind(v, VG_YNODE_SEQ, "monitors", errstr, errstr_size);
        for (size_t i = 0; err == VG_OK && i < v->n; i++) {
            struct rules_monitor *m = vg_calloc(1, sizeof(*m));

            err = parse_monitor(m, rs, sg, v->items[i], errstr, errstr_size);
            if (err != VG_OK) {
                rules_monitor_destroy(m);
                break;
            }
            *VG_ARRAY_PUSH(sg->monitors, sg->n_monitors, sg->cap_monitors) = m;
        }
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(root, "pagers");
    if (v && v->kind != VG_YNODE_NULL) {
        err = expect_kind(v, VG_YNODE_SEQ, "pagers", errstr, errstr_size);
        for (size_t i = 0; err == VG_OK && i < v->n; i++) {
            struct rules_pager *p = vg_calloc(1, sizeof(*p));

            err = parse_pager(p, rs, sg, v->items[i], errstr, errstr_size);
            if (err != VG_OK) {
                rules_pager_destroy(p);
                break;
            }
            *VG_ARRAY_PUSH(sg->pagers, sg->n_pagers, sg->cap_pagers) = p;
        }
    }
    return err;
}

vg_err_t rules_load_doc(struct vg_ruleset *rs, const struct vg_ydoc *doc, char *errstr,
                        size_t errstr_size)
{
    struct staging sg = {0};
    vg_err_t err = VG_OK;

    if (doc->root) {
        err = parse_doc(&sg, rs, doc->root, errstr, errstr_size);
    }
    if (err != VG_OK) {
        staging_fini(&sg);
        return err;
    }
    for (size_t i = 0; i < sg.n_monitors; i++) {
        struct rules_monitor *m = sg.monitors[i];
        enum vg_field f = m->cond.field->field;

        *VG_ARRAY_PUSH(rs->monitors, rs->n_monitors, rs->cap_monitors) = m;
        *VG_ARRAY_PUSH(rs->by_field[f], rs->n_by_field[f], rs->cap_by_field[f]) = m;
        vg_map_put(rs->monitor_names, m->name, m);
    }
    for (size_t i = 0; i < sg.n_pagers; i++) {
        *VG_ARRAY_PUSH(rs->pagers, rs->n_pagers, rs->cap_pagers) = sg.pagers[i];
        vg_map_put(rs->pager_names, sg.pagers[i]->name, sg.pagers[i]);
    }
    vg_free(sg.monitors);
    vg_free(sg.pagers);
    return VG_OK;
}
