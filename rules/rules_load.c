/*
 * Monitors, pagers and inhibit rules from a YAML tree (core/yaml.c) into
 * compiled rules. The language is defined by the tables at the top (match
 * keys, watched fields, severities): extend it by adding rows. Every mistake
 * is reported once as "file:line:col: message" and leaves the ruleset
 * untouched (a file loads whole or not at all); in `vigil check` mode
 * (rs->diags) each bad item is reported and loading goes on.
 */
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

const char *const rules_severities[] = {"info", "low", "medium", "high", "critical", NULL};
static const char *const status_values[] = {"active", "error", "deleted", NULL};
static const char *const runtime_values[] = {"pending", "running", "succeeded", "failed", NULL};
static const char *const health_values[] = {"healthy", "progressing", "unhealthy", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

/* `when: {<field>: ...}`; indexed by enum vg_field. */
static const struct rules_field fields[RULES_N_FIELDS] = {
    {"status", VG_FIELD_STATUS, status_values},
    {"runtime", VG_FIELD_RUNTIME, runtime_values},
    {"health", VG_FIELD_HEALTH, health_values},
};

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static const char *subj_type(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->res ? s->res->type : s->type);
}

static const char *subj_workspace(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->res ? s->res->workspace : s->workspace);
}

static const char *subj_name(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->res ? s->res->name : s->name);
}

static const char *subj_owner(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->res ? s->res->owner : s->owner);
}

static const char *subj_version(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->res ? s->res->version : s->version);
}

static const char *subj_resource(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->res ? s->res->id : s->resource_id);
}

static const char *subj_severity(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->severity);
}

static const char *subj_monitor(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->monitor);
}

static const char *subj_incident(const struct rules_subject *s, const char *label)
{
    (void)label;
    return or_empty(s->incident_type);
}

static const char *subj_label(const struct rules_subject *s, const char *label)
{
    return or_empty(vg_labels_get(s->labels, s->n_labels, label));
}

#define BOTH (RULES_SCOPE_MONITOR | RULES_SCOPE_PAGER)

/* `match:` keys, and where each may be used ("labels" stands for labels.<key>). */
static const struct rules_match_key match_keys[] = {
    {"type", BOTH, subj_type, NULL},
    {"workspace", BOTH, subj_workspace, NULL},
    {"name", BOTH, subj_name, NULL},
    {"owner", BOTH, subj_owner, NULL},
    {"version", RULES_SCOPE_MONITOR, subj_version, NULL},
    {"resource", RULES_SCOPE_PAGER, subj_resource, NULL},
    {"severity", RULES_SCOPE_PAGER, subj_severity, rules_severities},
    {"monitor", RULES_SCOPE_PAGER, subj_monitor, NULL},
    {"incident", RULES_SCOPE_PAGER, subj_incident, NULL},
    {"labels", BOTH, subj_label, NULL},
};

static const char *const top_keys[] = {"monitors", "pagers", "inhibit", NULL};
static const char *const monitor_keys[] = {"name",          "match",   "when",        "severity",
                                           "incident",      "labels",  "summary",     "description",
                                           "resolve_after", "resolve", "stale_after", NULL};
static const char *const pager_keys[] = {
    "name",        "match",           "sinks",         "continue", "group_by", "group_wait",
    "group_limit", "repeat_interval", "send_resolved", "mute",     "fallback", NULL};
static const char *const inhibit_keys[] = {"source", "target", "equal", NULL};
static const char *const cond_keys[] = {"from", "to", "is", "for", "count", "within", NULL};
static const char *const mute_keys[] = {"days", "between", "tz", NULL};

#define DEFAULT_SUMMARY                                                                            \
    "{{monitor}}: {{resource.type}} {{resource.name}} in {{resource.workspace}}: "                 \
    "{{transition.field}} {{transition.from | default \"(none)\"}} -> {{transition.to}}"
#define DEFAULT_ABSENCE_SUMMARY                                                                    \
    "{{monitor}}: {{resource.type}} {{resource.name}} in {{resource.workspace}}: "                 \
    "no event for {{duration}}"

const struct rules_match_key *rules_find_match_key(const char *name, const char **label)
{
    *label = NULL;
    if (strncmp(name, "labels.", 7) == 0) {
        if (!name[7]) {
            return NULL;
        }
        *label = name + 7;
        return &match_keys[VG_ARRAY_LEN(match_keys) - 1];
    }
    for (size_t i = 0; i + 1 < VG_ARRAY_LEN(match_keys); i++) {
        if (strcmp(match_keys[i].name, name) == 0) {
            return &match_keys[i];
        }
    }
    return NULL;
}

const char *rules_subject_get(const struct rules_subject *s, const struct rules_match_key *key,
                              const char *label)
{
    return key->get(s, label);
}

/* A file's rules, parsed but not yet added to the ruleset. */
struct staging {
    struct rules_monitor **monitors;
    size_t n_monitors, cap_monitors;
    struct rules_pager **pagers;
    size_t n_pagers, cap_pagers;
    struct rules_inhibit **inhibits;
    size_t n_inhibits, cap_inhibits;
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

/* A positive duration. */
static vg_err_t parse_duration(const struct vg_ynode *n, const char *what, int64_t *out,
                               char *errstr, size_t errstr_size)
{
    if (n->kind != VG_YNODE_SCALAR) {
        return vg_ynode_error(n, errstr, errstr_size, "\"%s\": expected a duration, got %s", what,
                              vg_ynode_kind_name(n->kind));
    }
    if (!vg_duration_parse(n->str, out)) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "\"%s\": bad duration \"%s\" (expected e.g. 500ms, 30s, 10m, 4h, "
                              "1d or 1h30m)",
                              what, n->str);
    }
    if (*out <= 0) {
        return vg_ynode_error(n, errstr, errstr_size, "\"%s\": must be longer than 0", what);
    }
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

static size_t list_len(const char *const *list)
{
    size_t n = 0;

    while (list[n]) {
        n++;
    }
    return n;
}

static vg_err_t bad_value(const struct vg_ynode *n, const char *what, const char *const *valid,
                          bool star, char *errstr, size_t errstr_size)
{
    struct vg_buf b = {0};
    const char *hint = rules_closest(n->str, valid, list_len(valid));
    vg_err_t err;

    join(&b, valid);
    if (hint) {
        err = vg_ynode_error(n, errstr, errstr_size,
                             "invalid %s \"%s\" (did you mean \"%s\"? expected one of: %s%s)", what,
                             n->str, hint, b.data, star ? ", or \"*\" for any" : "");
    } else {
        err = vg_ynode_error(n, errstr, errstr_size, "invalid %s \"%s\" (expected one of: %s%s)",
                             what, n->str, b.data, star ? ", or \"*\" for any" : "");
    }
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

static bool valid_label_key(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/')) {
            return false;
        }
    }
    return true;
}

/* A key of a match block (or group_by/equal entry) for `scope`, with a "did you mean". */
static vg_err_t resolve_key(const char *name, unsigned scope, bool allow_not,
                            const struct vg_ynode *at_map, const struct vg_ypair *at_pair,
                            const struct vg_ynode *at_node, const struct rules_match_key **out,
                            const char **label, char *errstr, size_t errstr_size)
{
    const char *names[VG_ARRAY_LEN(match_keys) + 2];
    size_t n_names = 0;
    const struct rules_match_key *key = rules_find_match_key(name, label);
    const char *hint;
    vg_err_t err;

    if (key && (key->scopes & scope) && (!*label || valid_label_key(*label))) {
        *out = key;
        return VG_OK;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(match_keys); i++) {
        if (match_keys[i].scopes & scope) {
            names[n_names++] =
                strcmp(match_keys[i].name, "labels") == 0 ? "labels.<key>" : match_keys[i].name;
        }
    }
    if (allow_not) {
        names[n_names++] = "not";
    }
    hint = rules_closest(name, names, n_names);
    if (key && !(key->scopes & scope)) {
        const char *where = scope == RULES_SCOPE_MONITOR ? "in a monitor" : "here";

        if (at_pair) {
            return vg_ypair_error(at_map, at_pair, errstr, errstr_size,
                                  "match key \"%s\" cannot be used %s", name, where);
        }
        return vg_ynode_error(at_node, errstr, errstr_size, "key \"%s\" cannot be used %s", name,
                              where);
    }
    {
        struct vg_buf b = {0};

        for (size_t i = 0; i < n_names; i++) {
            vg_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
        }
        if (at_pair) {
            err = hint ? vg_ypair_error(at_map, at_pair, errstr, errstr_size,
                                        "unknown key \"%s\" (did you mean \"%s\"?)", name, hint)
                       : vg_ypair_error(at_map, at_pair, errstr, errstr_size,
                                        "unknown key \"%s\" (expected one of: %s)", name, b.data);
        } else {
            err = hint ? vg_ynode_error(at_node, errstr, errstr_size,
                                        "unknown key \"%s\" (did you mean \"%s\"?)", name, hint)
                       : vg_ynode_error(at_node, errstr, errstr_size,
                                        "unknown key \"%s\" (expected one of: %s)", name, b.data);
        }
        vg_buf_fini(&b);
    }
    return err;
}

static void match_fini(struct rules_match *m)
{
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->terms[i].n; j++) {
            vg_free(m->terms[i].patterns[j]);
        }
        vg_free(m->terms[i].patterns);
        vg_free(m->terms[i].label);
    }
    vg_free(m->terms);
    memset(m, 0, sizeof(*m));
}

static vg_err_t parse_match(struct rules_match *m, const struct vg_ynode *n, unsigned scope,
                            bool negate, const char *what, char *errstr, size_t errstr_size)
{
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, what, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ypair *pair = &n->pairs[i];
        const struct rules_match_key *key = NULL;
        const char *label = NULL;
        struct rules_match_term *term;
        const struct vg_ynode **items;
        size_t n_items;

        if (strcmp(pair->key, "not") == 0 && !negate) {
            err = parse_match(m, pair->value, scope, true, "not", errstr, errstr_size);
            if (err != VG_OK) {
                return err;
            }
            continue;
        }
        err = resolve_key(pair->key, scope, !negate, n, pair, NULL, &key, &label, errstr,
                          errstr_size);
        if (err != VG_OK) {
            return err;
        }
        err = scalar_list(pair->value, pair->key, &items, &n_items, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        for (size_t j = 0; j < n_items && err == VG_OK; j++) {
            const char *s = items[j]->str;

            if (!vg_glob_valid(s)) {
                err = vg_ynode_error(items[j], errstr, errstr_size,
                                     "invalid glob \"%s\" in %s.%s (unbalanced brackets?)", s,
                                     negate ? "match.not" : "match", pair->key);
            } else if (key->values && !vg_is_glob(s) && !in_list(key->values, s)) {
                err = bad_value(items[j], key->name, key->values, false, errstr, errstr_size);
            }
        }
        if (err != VG_OK) {
            vg_free(items);
            return err;
        }
        term = VG_ARRAY_PUSH(m->terms, m->n, m->cap);
        memset(term, 0, sizeof(*term));
        term->key = key;
        term->label = label ? vg_strdup(label) : NULL;
        term->negate = negate;
        term->n = n_items;
        term->patterns = vg_malloc(n_items * sizeof(char *));
        for (size_t j = 0; j < n_items; j++) {
            term->patterns[j] = vg_strdup(items[j]->str);
        }
        vg_free(items);
    }
    return VG_OK;
}

static bool term_any(const struct rules_match_term *term, const char *v)
{
    for (size_t j = 0; j < term->n; j++) {
        const char *p = term->patterns[j];

        if (vg_is_glob(p) ? vg_glob_match(p, v) : strcmp(p, v) == 0) {
            return true;
        }
    }
    return false;
}

bool rules_match_holds(const struct rules_match *m, const struct rules_subject *s)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct rules_match_term *term = &m->terms[i];

        if (term_any(term, term->key->get(s, term->label)) == term->negate) {
            return false;
        }
    }
    return true;
}

/*
 * A match that can never hold: a key whose exact values are all excluded
 * by `not:` (match {type: job}, not {type: job}).
 */
static const struct rules_match_term *match_contradiction(const struct rules_match *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct rules_match_term *pos = &m->terms[i];
        bool all_excluded = true;

        if (pos->negate) {
            continue;
        }
        for (size_t j = 0; j < pos->n && all_excluded; j++) {
            bool excluded = false;

            if (vg_is_glob(pos->patterns[j])) {
                all_excluded = false;
                break;
            }
            for (size_t k = 0; k < m->n && !excluded; k++) {
                const struct rules_match_term *neg = &m->terms[k];

                if (neg->negate && neg->key == pos->key &&
                    strcmp(neg->label ? neg->label : "", pos->label ? pos->label : "") == 0) {
                    excluded = term_any(neg, pos->patterns[j]);
                }
            }
            all_excluded = excluded;
        }
        if (all_excluded) {
            return pos;
        }
    }
    return NULL;
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
                               const struct vg_ynode *n, const char *what, bool star_ok,
                               char *errstr, size_t errstr_size)
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

        if (strcmp(s, "*") == 0 && star_ok) {
            vs->any = true;
            continue;
        }
        if (!in_list(field->values, s)) {
            err = bad_value(items[i], kind, field->values, star_ok, errstr, errstr_size);
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

static vg_err_t parse_field_body(struct rules_cond *c, const struct vg_ynode *body, char *errstr,
                                 size_t errstr_size)
{
    const struct vg_ynode *from = vg_ynode_get(body, "from");
    const struct vg_ynode *to = vg_ynode_get(body, "to");
    const struct vg_ynode *is = vg_ynode_get(body, "is");
    const struct vg_ynode *dur = vg_ynode_get(body, "for");
    const struct vg_ynode *count = vg_ynode_get(body, "count");
    const struct vg_ynode *within = vg_ynode_get(body, "within");
    const char *name = c->field->name;
    vg_err_t err;

    if (is || dur) {
        /* state held: {is, for} */
        if (!is || !dur) {
            return vg_ynode_error(body, errstr, errstr_size,
                                  "\"%s\": a held state needs both \"is\" and \"for\"", name);
        }
        if (from || to || count || within) {
            return vg_ynode_error(body, errstr, errstr_size,
                                  "\"%s\": \"is\"/\"for\" cannot be combined with "
                                  "from/to/count/within (write one monitor per condition)",
                                  name);
        }
        c->kind = RULES_HELD;
        err = parse_valueset(&c->is, c->field, is, "is", false, errstr, errstr_size);
        if (err == VG_OK) {
            err = parse_duration(dur, "for", &c->for_ms, errstr, errstr_size);
        }
        return err;
    }
    if (count || within) {
        int64_t v;

        if (!count || !within || !to) {
            return vg_ynode_error(body, errstr, errstr_size,
                                  "\"%s\": flapping needs \"to\", \"count\" and \"within\"", name);
        }
        if (from) {
            return vg_ynode_error(from, errstr, errstr_size,
                                  "\"%s\": flapping counts arrivals in \"to\"; \"from\" is not "
                                  "allowed",
                                  name);
        }
        c->kind = RULES_FLAPPING;
        err = parse_valueset(&c->to, c->field, to, "to", false, errstr, errstr_size);
        if (err == VG_OK) {
            err = vg_ynode_int(count, 2, RULES_MAX_HITS, &v, errstr, errstr_size);
            if (err != VG_OK) {
                return vg_ynode_error(count, errstr, errstr_size,
                                      "\"count\": expected a whole number from 2 to %d (a single "
                                      "arrival is a transition: {to: ...})",
                                      RULES_MAX_HITS);
            }
            c->count = (int)v;
            err = parse_duration(within, "within", &c->within_ms, errstr, errstr_size);
        }
        return err;
    }
    if (!from && !to) {
        return vg_ynode_error(body, errstr, errstr_size,
                              "\"%s\": needs \"from\" and/or \"to\" (a transition), \"is\" and "
                              "\"for\" (a held state) or \"to\", \"count\" and \"within\" "
                              "(flapping)",
                              name);
    }
    c->kind = RULES_TRANSITION;
    if (from) {
        err = parse_valueset(&c->from, c->field, from, "from", true, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    if (to) {
        err = parse_valueset(&c->to, c->field, to, "to", true, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    if (never_matches(c)) {
        return vg_ynode_error(body, errstr, errstr_size,
                              "condition can never match: %s from \"%s\" to \"%s\" is not a "
                              "change",
                              name, c->from.values[0], c->from.values[0]);
    }
    return VG_OK;
}

static vg_err_t parse_when(struct rules_cond *c, const struct vg_ynode *n, char *errstr,
                           size_t errstr_size)
{
    const char *allowed[RULES_N_FIELDS + 2];
    const struct vg_ynode *body;
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, "when", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (size_t i = 0; i < RULES_N_FIELDS; i++) {
        allowed[i] = fields[i].name;
    }
    allowed[RULES_N_FIELDS] = "silent_for";
    allowed[RULES_N_FIELDS + 1] = NULL;
    err = vg_ynode_check_keys(n, allowed, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    if (n->n == 0) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "\"when\": needs one of status, runtime, health, silent_for");
    }
    if (n->n > 1) {
        return vg_ypair_error(n, &n->pairs[1], errstr, errstr_size,
                              "\"when\": exactly one condition per monitor, got \"%s\" and \"%s\" "
                              "(write one monitor per condition)",
                              n->pairs[0].key, n->pairs[1].key);
    }
    if (strcmp(n->pairs[0].key, "silent_for") == 0) {
        c->kind = RULES_ABSENCE;
        return parse_duration(n->pairs[0].value, "silent_for", &c->silent_ms, errstr, errstr_size);
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
    return parse_field_body(c, body, errstr, errstr_size);
}

static void key_refs_free(struct rules_key_ref *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vg_free(v[i].label);
    }
    vg_free(v);
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
    valueset_fini(&m->cond.is);
    vg_free(m->incident_type);
    for (size_t i = 0; i < m->n_labels; i++) {
        vg_free(m->labels[i].key);
        rules_tpl_fini(&m->labels[i].value);
    }
    vg_free(m->labels);
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
    key_refs_free(p->group_by, p->n_group_by);
    vg_free(p->mute);
    vg_free(p->fallback.name);
    vg_free(p);
}

void rules_inhibit_destroy(struct rules_inhibit *ih)
{
    if (!ih) {
        return;
    }
    vg_free(ih->loc.file);
    match_fini(&ih->source);
    match_fini(&ih->target);
    key_refs_free(ih->equal, ih->n_equal);
    vg_free(ih);
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

static vg_err_t parse_labels(struct rules_monitor *m, const struct vg_ynode *n, char *errstr,
                             size_t errstr_size)
{
    vg_err_t err = expect_kind(n, VG_YNODE_MAP, "labels", errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    m->labels = vg_calloc(n->n ? n->n : 1, sizeof(*m->labels));
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ypair *pair = &n->pairs[i];
        const char *s = NULL;

        if (!valid_label_key(pair->key)) {
            return vg_ypair_error(n, pair, errstr, errstr_size,
                                  "invalid label name \"%s\" (use letters, digits, '.', '_', '-' "
                                  "and '/')",
                                  pair->key);
        }
        err = expect_string(pair->value, pair->key, &s, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        m->labels[m->n_labels].key = vg_strdup(pair->key);
        err = rules_tpl_compile(&m->labels[m->n_labels].value, pair->value, s, errstr, errstr_size);
        if (err != VG_OK) {
            vg_free(m->labels[m->n_labels].key);
            return err;
        }
        m->n_labels++;
    }
    return VG_OK;
}

static vg_err_t parse_template(struct rules_tpl *tpl, const struct vg_ynode *v, const char *what,
                               char *errstr, size_t errstr_size)
{
    const char *s = NULL;
    vg_err_t err = expect_string(v, what, &s, errstr, errstr_size);

    if (err == VG_OK) {
        err = rules_tpl_compile(tpl, v, s, errstr, errstr_size);
    }
    return err;
}

/* A mapping with known keys and a name no other monitor has. */
static vg_err_t monitor_name(struct rules_monitor *m, const struct vg_ruleset *rs,
                             const struct staging *sg, const struct vg_ynode *n, char *errstr,
                             size_t errstr_size)
{
    const struct vg_ynode *v = NULL;
    const char *s = NULL;
    const struct rules_loc *first;
    vg_err_t err = expect_kind(n, VG_YNODE_MAP, "monitors[]", errstr, errstr_size);

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
    return VG_OK;
}

/* `match` (optional, and never a contradiction) and `when`. */
static vg_err_t monitor_condition(struct rules_monitor *m, const struct vg_ynode *n, char *errstr,
                                  size_t errstr_size)
{
    const struct vg_ynode *v = vg_ynode_get(n, "match");
    const struct rules_match_term *contra;
    vg_err_t err;

    if (v) {
        err = parse_match(&m->match, v, RULES_SCOPE_MONITOR, false, "match", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        contra = match_contradiction(&m->match);
        if (contra) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "condition can never match: match.%s%s%s is excluded by "
                                  "match.not",
                                  contra->key->name, contra->label ? "." : "",
                                  contra->label ? contra->label : "");
        }
    }
    v = vg_ynode_get(n, "when");
    if (!v) {
        return missing_key(n, "monitor", m->name, "when", errstr, errstr_size);
    }
    return parse_when(&m->cond, v, errstr, errstr_size);
}

/* `severity` (required) and `incident` (the incident type, optional). */
static vg_err_t monitor_severity(struct rules_monitor *m, const struct vg_ynode *n, char *errstr,
                                 size_t errstr_size)
{
    const struct vg_ynode *v = vg_ynode_get(n, "severity");
    const char *s = NULL;
    vg_err_t err;

    if (!v) {
        return missing_key(n, "monitor", m->name, "severity", errstr, errstr_size);
    }
    err = expect_string(v, "severity", &s, errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    for (int i = 0; rules_severities[i]; i++) {
        if (strcmp(rules_severities[i], s) == 0) {
            m->severity = rules_severities[i];
            m->rank = i;
        }
    }
    if (!m->severity) {
        return bad_value(v, "severity", rules_severities, false, errstr, errstr_size);
    }
    v = vg_ynode_get(n, "incident");
    if (v) {
        err = expect_string(v, "incident", &s, errstr, errstr_size);
        if (err == VG_OK && !valid_name(s)) {
            err = vg_ynode_error(v, errstr, errstr_size,
                                 "invalid incident type \"%s\" (use letters, digits, '.', '_' "
                                 "and '-')",
                                 s);
        }
        if (err != VG_OK) {
            return err;
        }
    }
    m->incident_type = vg_strdup(v ? s : "");
    return VG_OK;
}

/* `labels`, `summary` (or the default for the condition) and `description`: templates. */
static vg_err_t monitor_texts(struct rules_monitor *m, const struct vg_ynode *n, char *errstr,
                              size_t errstr_size)
{
    const struct vg_ynode *v = vg_ynode_get(n, "labels");
    vg_err_t err;

    if (v) {
        err = parse_labels(m, v, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "summary");
    if (v) {
        err = parse_template(&m->summary, v, "summary", errstr, errstr_size);
    } else {
        err = rules_tpl_compile(&m->summary, n,
                                m->cond.kind == RULES_ABSENCE ? DEFAULT_ABSENCE_SUMMARY
                                                              : DEFAULT_SUMMARY,
                                errstr, errstr_size);
        VG_ASSERT(err == VG_OK);
    }
    if (err != VG_OK) {
        return err;
    }
    v = vg_ynode_get(n, "description");
    if (v) {
        err = parse_template(&m->description, v, "description", errstr, errstr_size);
        m->has_description = err == VG_OK;
    }
    return err;
}

/* `resolve: auto|never`. */
static vg_err_t monitor_resolve_mode(struct rules_monitor *m, const struct vg_ynode *v,
                                     char *errstr, size_t errstr_size)
{
    static const char *const modes[] = {"auto", "never", NULL};
    const char *s = NULL;
    vg_err_t err = expect_string(v, "resolve", &s, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    if (strcmp(s, "never") == 0) {
        m->resolve_never = true;
    } else if (strcmp(s, "auto") != 0) {
        return bad_value(v, "resolve mode", modes, false, errstr, errstr_size);
    }
    return VG_OK;
}

/* How incidents end: `resolve`, `resolve_after`, `stale_after`, where they apply. */
static vg_err_t monitor_ending(struct rules_monitor *m, const struct vg_ynode *n, char *errstr,
                               size_t errstr_size)
{
    const struct vg_ynode *v = vg_ynode_get(n, "resolve");
    vg_err_t err;

    if (v) {
        err = monitor_resolve_mode(m, v, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "resolve_after");
    if (v) {
        if (m->resolve_never) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "\"resolve_after\" cannot be combined with \"resolve: never\"");
        }
        if (m->cond.kind == RULES_ABSENCE || m->cond.kind == RULES_FLAPPING) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "\"resolve_after\" applies to transition and held conditions "
                                  "(flapping resolves after \"within\" without arrivals, absence "
                                  "on the next event)");
        }
        err = parse_duration(v, "resolve_after", &m->resolve_after_ms, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "stale_after");
    if (v) {
        err = parse_duration(v, "stale_after", &m->stale_after_ms, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        if (m->cond.kind == RULES_ABSENCE) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "\"stale_after\" makes no sense for an absence condition");
        }
    }
    return VG_OK;
}

/* One monitor, in the order its errors are reported. */
static vg_err_t parse_monitor(struct rules_monitor *m, const struct vg_ruleset *rs,
                              const struct staging *sg, const struct vg_ynode *n, char *errstr,
                              size_t errstr_size)
{
    vg_err_t err = monitor_name(m, rs, sg, n, errstr, errstr_size);

    if (err == VG_OK) {
        err = monitor_condition(m, n, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = monitor_severity(m, n, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = monitor_texts(m, n, errstr, errstr_size);
    }
    if (err == VG_OK) {
        err = monitor_ending(m, n, errstr, errstr_size);
    }
    return err;
}

static vg_err_t parse_key_refs(const struct vg_ynode *n, const char *what,
                               struct rules_key_ref **out, size_t *n_out, char *errstr,
                               size_t errstr_size)
{
    const struct vg_ynode **items;
    size_t n_items;
    vg_err_t err = scalar_list(n, what, &items, &n_items, errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    *out = vg_calloc(n_items, sizeof(**out));
    *n_out = 0;
    for (size_t i = 0; i < n_items && err == VG_OK; i++) {
        const struct rules_match_key *key = NULL;
        const char *label = NULL;

        err = resolve_key(items[i]->str, RULES_SCOPE_PAGER, false, NULL, NULL, items[i], &key,
                          &label, errstr, errstr_size);
        if (err == VG_OK) {
            (*out)[*n_out].key = key;
            (*out)[*n_out].label = label ? vg_strdup(label) : NULL;
            (*n_out)++;
        }
    }
    vg_free(items);
    return err;
}

static int parse_hhmm(const char *s, int *minute)
{
    int h;
    int m;

    if (!(s[0] >= '0' && s[0] <= '2' && s[1] >= '0' && s[1] <= '9' && s[2] == ':' && s[3] >= '0' &&
          s[3] <= '5' && s[4] >= '0' && s[4] <= '9')) {
        return -1;
    }
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || (h == 24 && m != 0)) {
        return -1;
    }
    *minute = h * 60 + m;
    return 5;
}

static vg_err_t parse_mute(struct rules_pager *p, struct vg_ruleset *rs, const struct vg_ynode *n,
                           char *errstr, size_t errstr_size)
{
    vg_err_t err = expect_kind(n, VG_YNODE_SEQ, "mute", errstr, errstr_size);

    if (err != VG_OK) {
        return err;
    }
    p->mute = vg_calloc(n->n ? n->n : 1, sizeof(*p->mute));
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ynode *e = n->items[i];
        struct rules_mute *mu = &p->mute[p->n_mute];
        const struct vg_ynode *v;

        err = expect_kind(e, VG_YNODE_MAP, "mute[]", errstr, errstr_size);
        if (err == VG_OK) {
            err = vg_ynode_check_keys(e, mute_keys, errstr, errstr_size);
        }
        if (err != VG_OK) {
            return err;
        }
        if (!vg_ynode_get(e, "days") && !vg_ynode_get(e, "between")) {
            return vg_ynode_error(e, errstr, errstr_size,
                                  "\"mute\": each entry needs \"days\" and/or \"between\"");
        }
        v = vg_ynode_get(e, "days");
        if (v) {
            const struct vg_ynode **items;
            size_t n_items;

            err = scalar_list(v, "days", &items, &n_items, errstr, errstr_size);
            if (err != VG_OK) {
                return err;
            }
            for (size_t j = 0; j < n_items && err == VG_OK; j++) {
                bool found = false;

                for (unsigned d = 0; day_names[d]; d++) {
                    if (strcmp(day_names[d], items[j]->str) == 0) {
                        mu->days |= 1u << d;
                        found = true;
                    }
                }
                if (!found) {
                    err = bad_value(items[j], "day", day_names, false, errstr, errstr_size);
                }
            }
            vg_free(items);
            if (err != VG_OK) {
                return err;
            }
        }
        v = vg_ynode_get(e, "between");
        if (v) {
            const char *s = NULL;

            err = expect_string(v, "between", &s, errstr, errstr_size);
            if (err != VG_OK) {
                return err;
            }
            if (strlen(s) != 11 || parse_hhmm(s, &mu->from_min) < 0 || s[5] != '-' ||
                parse_hhmm(s + 6, &mu->to_min) < 0 || mu->from_min == mu->to_min) {
                return vg_ynode_error(v, errstr, errstr_size,
                                      "\"between\": expected \"HH:MM-HH:MM\" (24-hour, start != "
                                      "end, e.g. \"22:00-07:00\"), got \"%s\"",
                                      s);
            }
            mu->has_between = true;
        }
        v = vg_ynode_get(e, "tz");
        if (v) {
            const char *s = NULL;
            struct rules_tz *tz;

            err = expect_string(v, "tz", &s, errstr, errstr_size);
            if (err != VG_OK) {
                return err;
            }
            tz = vg_map_get(rs->tzs, s);
            if (!tz) {
                char why[256];

                tz = rules_tz_load(s, why, sizeof(why));
                if (!tz) {
                    return vg_ynode_error(v, errstr, errstr_size, "\"tz\": %s", why);
                }
                vg_map_put(rs->tzs, s, tz);
            }
            mu->tz = tz;
        }
        p->n_mute++;
    }
    return VG_OK;
}

static vg_err_t parse_pager(struct rules_pager *p, struct vg_ruleset *rs, const struct staging *sg,
                            const struct vg_ynode *n, char *errstr, size_t errstr_size)
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
    p->send_resolved = true;

    v = vg_ynode_get(n, "match");
    if (v) {
        err = parse_match(&p->match, v, RULES_SCOPE_PAGER, false, "match", errstr, errstr_size);
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

    v = vg_ynode_get(n, "fallback");
    if (v) {
        err = expect_string(v, "fallback", &s, errstr, errstr_size);
        if (err == VG_OK && !s[0]) {
            err = vg_ynode_error(v, errstr, errstr_size, "\"fallback\": empty sink name");
        }
        if (err != VG_OK) {
            return err;
        }
        p->fallback.name = vg_strdup(s);
        p->fallback.line = v->line;
        p->fallback.col = v->col;
    }

    v = vg_ynode_get(n, "continue");
    if (v) {
        err = vg_ynode_bool(v, &p->cont, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "send_resolved");
    if (v) {
        err = vg_ynode_bool(v, &p->send_resolved, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "group_by");
    if (v) {
        err = parse_key_refs(v, "group_by", &p->group_by, &p->n_group_by, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        p->grouped = true;
        p->group_wait_ms = RULES_DEFAULT_GROUP_WAIT_MS;
        p->group_limit = RULES_DEFAULT_GROUP_LIMIT;
    }
    v = vg_ynode_get(n, "group_wait");
    if (v) {
        if (!p->grouped) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "\"group_wait\" needs \"group_by\" (which incidents to group)");
        }
        err = parse_duration(v, "group_wait", &p->group_wait_ms, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "group_limit");
    if (v) {
        int64_t limit = 0;

        if (!p->grouped) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "\"group_limit\" needs \"group_by\" (which incidents to group)");
        }
        if (v->kind != VG_YNODE_SCALAR || !vg_parse_i64(v->str, &limit) || limit < 1 ||
            limit > RULES_MAX_GROUP_LIMIT) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "\"group_limit\" must be an integer from 1 to %d, got %s%s%s",
                                  RULES_MAX_GROUP_LIMIT, v->kind == VG_YNODE_SCALAR ? "\"" : "",
                                  v->kind == VG_YNODE_SCALAR ? v->str : vg_ynode_kind_name(v->kind),
                                  v->kind == VG_YNODE_SCALAR ? "\"" : "");
        }
        p->group_limit = (size_t)limit;
    }
    v = vg_ynode_get(n, "repeat_interval");
    if (v) {
        err = parse_duration(v, "repeat_interval", &p->repeat_ms, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
    }
    v = vg_ynode_get(n, "mute");
    if (v) {
        err = parse_mute(p, rs, v, errstr, errstr_size);
    }
    return err;
}

static vg_err_t parse_inhibit(struct rules_inhibit *ih, const struct vg_ynode *n, char *errstr,
                              size_t errstr_size)
{
    const struct vg_ynode *v;
    vg_err_t err;

    err = expect_kind(n, VG_YNODE_MAP, "inhibit[]", errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_ynode_check_keys(n, inhibit_keys, errstr, errstr_size);
    }
    if (err != VG_OK) {
        return err;
    }
    set_loc(&ih->loc, n);
    v = vg_ynode_get(n, "source");
    if (!v) {
        return missing_key(n, "inhibit rule", NULL, "source", errstr, errstr_size);
    }
    err = parse_match(&ih->source, v, RULES_SCOPE_PAGER, false, "source", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    v = vg_ynode_get(n, "target");
    if (!v) {
        return missing_key(n, "inhibit rule", NULL, "target", errstr, errstr_size);
    }
    err = parse_match(&ih->target, v, RULES_SCOPE_PAGER, false, "target", errstr, errstr_size);
    if (err != VG_OK) {
        return err;
    }
    v = vg_ynode_get(n, "equal");
    if (v) {
        err = parse_key_refs(v, "equal", &ih->equal, &ih->n_equal, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        for (size_t i = 0; i < ih->n_equal; i++) {
            ih->same_resource =
                ih->same_resource || strcmp(ih->equal[i].key->name, "resource") == 0;
        }
    }
    return VG_OK;
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
    for (size_t i = 0; i < sg->n_inhibits; i++) {
        rules_inhibit_destroy(sg->inhibits[i]);
    }
    vg_free(sg->inhibits);
}

/*
 * One item failed: keep the first message in errstr; in check mode record
 * it and go on (returns VG_OK), else stop.
 */
static vg_err_t item_failed(struct vg_ruleset *rs, vg_err_t err, const char *msg, char *errstr,
                            size_t errstr_size, bool *failed)
{
    if (!*failed) {
        snprintf(errstr, errstr_size, "%s", msg);
    }
    *failed = true;
    if (rs->diags) {
        rules_diag(rs, msg);
        return VG_OK;
    }
    return err;
}

static vg_err_t parse_doc(struct staging *sg, struct vg_ruleset *rs, const struct vg_ynode *root,
                          char *errstr, size_t errstr_size, bool *failed)
{
    const struct vg_ynode *v;
    char msg[1024];
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
        if (err != VG_OK) {
            return err;
        }
        for (size_t i = 0; i < v->n; i++) {
            struct rules_monitor *m = vg_calloc(1, sizeof(*m));

            err = parse_monitor(m, rs, sg, v->items[i], msg, sizeof(msg));
            if (err != VG_OK) {
                rules_monitor_destroy(m);
                err = item_failed(rs, err, msg, errstr, errstr_size, failed);
                if (err != VG_OK) {
                    return err;
                }
                continue;
            }
            *VG_ARRAY_PUSH(sg->monitors, sg->n_monitors, sg->cap_monitors) = m;
        }
    }
    v = vg_ynode_get(root, "pagers");
    if (v && v->kind != VG_YNODE_NULL) {
        err = expect_kind(v, VG_YNODE_SEQ, "pagers", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        for (size_t i = 0; i < v->n; i++) {
            struct rules_pager *p = vg_calloc(1, sizeof(*p));

            err = parse_pager(p, rs, sg, v->items[i], msg, sizeof(msg));
            if (err != VG_OK) {
                rules_pager_destroy(p);
                err = item_failed(rs, err, msg, errstr, errstr_size, failed);
                if (err != VG_OK) {
                    return err;
                }
                continue;
            }
            *VG_ARRAY_PUSH(sg->pagers, sg->n_pagers, sg->cap_pagers) = p;
        }
    }
    v = vg_ynode_get(root, "inhibit");
    if (v && v->kind != VG_YNODE_NULL) {
        err = expect_kind(v, VG_YNODE_SEQ, "inhibit", errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        for (size_t i = 0; i < v->n; i++) {
            struct rules_inhibit *ih = vg_calloc(1, sizeof(*ih));

            err = parse_inhibit(ih, v->items[i], msg, sizeof(msg));
            if (err != VG_OK) {
                rules_inhibit_destroy(ih);
                err = item_failed(rs, err, msg, errstr, errstr_size, failed);
                if (err != VG_OK) {
                    return err;
                }
                continue;
            }
            *VG_ARRAY_PUSH(sg->inhibits, sg->n_inhibits, sg->cap_inhibits) = ih;
        }
    }
    return VG_OK;
}

/* ---- the monitor index ---------------------------------------------------------- */

/* A term that can file a monitor: positive, on the Resource, exact values only. */
static bool term_indexable(const struct rules_match_term *t)
{
    if (t->negate || t->n == 0 || !(t->key->scopes & RULES_SCOPE_MONITOR)) {
        return false;
    }
    for (size_t j = 0; j < t->n; j++) {
        if (vg_is_glob(t->patterns[j])) {
            return false;
        }
    }
    return true;
}

/* The one positive exact `type` term of a monitor, or NULL (none, several, or globs). */
static const struct rules_match_term *exact_types(const struct rules_monitor *m)
{
    const struct rules_match_term *found = NULL;

    for (size_t i = 0; i < m->match.n; i++) {
        const struct rules_match_term *t = &m->match.terms[i];

        if (t->negate || strcmp(t->key->name, "type") != 0) {
            continue;
        }
        if (!term_indexable(t) || found) {
            return NULL;
        }
        found = t;
    }
    return found;
}

/* "<key>.<label>=<value>": what the index counts, to pick the rarest term. */
static char *count_key(const struct rules_match_term *t, const char *value)
{
    return vg_asprintf("%s.%s=%s", t->key->name, t->label ? t->label : "", value);
}

static struct rules_ikey *ikey_of(struct rules_index *ix, const struct rules_match_term *t)
{
    struct rules_ikey *k;

    for (size_t i = 0; i < ix->n_keys; i++) {
        k = &ix->keys[i];
        if (k->key == t->key && strcmp(k->label ? k->label : "", t->label ? t->label : "") == 0) {
            return k;
        }
    }
    k = VG_ARRAY_PUSH(ix->keys, ix->n_keys, ix->cap_keys);
    k->key = t->key;
    k->label = t->label ? vg_strdup(t->label) : NULL;
    k->buckets = vg_map_new();
    return k;
}

static void mlist_push(struct rules_mlist *l, struct rules_monitor *m)
{
    if (l->n == 0 || l->v[l->n - 1] != m) {
        *VG_ARRAY_PUSH(l->v, l->n, l->cap) = m;
    }
}

/* The term of `m` whose values the fewest monitors share (the first on a tie), or NULL. */
static const struct rules_match_term *rarest_term(const struct rules_monitor *m,
                                                  const struct vg_map *counts)
{
    const struct rules_match_term *best = NULL;
    uintptr_t best_score = 0;

    for (size_t i = 0; i < m->match.n; i++) {
        const struct rules_match_term *t = &m->match.terms[i];
        uintptr_t score = 0;

        if (!term_indexable(t)) {
            continue;
        }
        for (size_t j = 0; j < t->n; j++) {
            char *key = count_key(t, t->patterns[j]);

            score += (uintptr_t)vg_map_get(counts, key);
            vg_free(key);
        }
        if (!best || score < best_score) {
            best = t;
            best_score = score;
        }
    }
    return best;
}

static void free_mlist(void *p)
{
    struct rules_mlist *l = p;

    vg_free(l->v);
    vg_free(l);
}

void rules_index_destroy(struct rules_index *ix)
{
    if (!ix) {
        return;
    }
    for (size_t i = 0; i < ix->n_keys; i++) {
        vg_free(ix->keys[i].label);
        vg_map_destroy(ix->keys[i].buckets, free_mlist);
    }
    vg_free(ix->keys);
    vg_free(ix->always.v);
    vg_free(ix->types);
    vg_free(ix);
}

void rules_index_build(struct vg_ruleset *rs)
{
    struct rules_index *ix = vg_calloc(1, sizeof(*ix));
    struct vg_map *counts = vg_map_new();

    ix->linear = rs->idx && rs->idx->linear;
    ix->types = vg_calloc(rs->n_monitors ? rs->n_monitors : 1, sizeof(*ix->types));
    /* How many monitors name each exact value: a value shared by few makes a small bucket. */
    for (size_t i = 0; i < rs->n_monitors; i++) {
        const struct rules_monitor *m = rs->monitors[i];

        for (size_t k = 0; k < m->match.n; k++) {
            const struct rules_match_term *t = &m->match.terms[k];

            if (!term_indexable(t)) {
                continue;
            }
            for (size_t j = 0; j < t->n; j++) {
                char *key = count_key(t, t->patterns[j]);

                vg_map_put(counts, key, (void *)((uintptr_t)vg_map_get(counts, key) + 1));
                vg_free(key);
            }
        }
    }
    for (size_t i = 0; i < rs->n_monitors; i++) {
        struct rules_monitor *m = rs->monitors[i];
        const struct rules_match_term *t = rarest_term(m, counts);
        struct rules_ikey *k;

        VG_ASSERT(m->index == i);
        ix->types[i] = exact_types(m);
        if (!t) {
            mlist_push(&ix->always, m);
            continue;
        }
        k = ikey_of(ix, t);
        for (size_t j = 0; j < t->n; j++) {
            struct rules_mlist *l = vg_map_get(k->buckets, t->patterns[j]);

            if (!l) {
                l = vg_calloc(1, sizeof(*l));
                vg_map_put(k->buckets, t->patterns[j], l);
            }
            mlist_push(l, m);
        }
    }
    vg_map_destroy(counts, NULL);
    rules_index_destroy(rs->idx);
    rs->idx = ix;
}

void rules_index_set_linear(struct vg_ruleset *rs, bool linear)
{
    rs->idx->linear = linear;
}

vg_err_t rules_load_doc(struct vg_ruleset *rs, const struct vg_ydoc *doc, char *errstr,
                        size_t errstr_size)
{
    struct staging sg = {0};
    bool failed = false;
    vg_err_t err = VG_OK;

    if (doc->root) {
        err = parse_doc(&sg, rs, doc->root, errstr, errstr_size, &failed);
    }
    if (err != VG_OK || (failed && !rs->diags)) {
        staging_fini(&sg);
        return err != VG_OK ? err : VG_ERR_INVALID;
    }
    /* Check mode: the bad items are recorded already; keep the good ones. */
    /* In check mode the valid items are kept, so later files see their names. */
    for (size_t i = 0; i < sg.n_monitors; i++) {
        struct rules_monitor *m = sg.monitors[i];

        m->index = rs->n_monitors;
        *VG_ARRAY_PUSH(rs->monitors, rs->n_monitors, rs->cap_monitors) = m;
        vg_map_put(rs->monitor_names, m->name, m);
    }
    rules_index_build(rs);
    for (size_t i = 0; i < sg.n_pagers; i++) {
        *VG_ARRAY_PUSH(rs->pagers, rs->n_pagers, rs->cap_pagers) = sg.pagers[i];
        vg_map_put(rs->pager_names, sg.pagers[i]->name, sg.pagers[i]);
    }
    for (size_t i = 0; i < sg.n_inhibits; i++) {
        *VG_ARRAY_PUSH(rs->inhibits, rs->n_inhibits, rs->cap_inhibits) = sg.inhibits[i];
        rs->cross_inhibit = rs->cross_inhibit || !sg.inhibits[i]->same_resource;
    }
    vg_free(sg.monitors);
    vg_free(sg.pagers);
    vg_free(sg.inhibits);
    return VG_OK;
}
