/*
 * The ruleset: lifecycle, counts, cross-checks against configured sinks,
 * and turning paths (files, directories, globs) into files to load.
 * Parsing lives in rules_load.c, templates in rules_template.c and
 * evaluation in rules_eval.c.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rules_int.h"

struct vg_ruleset *vg_ruleset_new(void)
{
    struct vg_ruleset *rs = vg_calloc(1, sizeof(*rs));

    rs->monitor_names = vg_map_new();
    rs->pager_names = vg_map_new();
    rs->tzs = vg_map_new();
    rules_index_build(rs);
    return rs;
}

static void free_tz(void *p)
{
    rules_tz_destroy(p);
}

void vg_ruleset_destroy(struct vg_ruleset *rs)
{
    if (!rs) {
        return;
    }
    for (size_t i = 0; i < rs->n_monitors; i++) {
        rules_monitor_destroy(rs->monitors[i]);
    }
    vg_free(rs->monitors);
    for (size_t i = 0; i < rs->n_pagers; i++) {
        rules_pager_destroy(rs->pagers[i]);
    }
    vg_free(rs->pagers);
    for (size_t i = 0; i < rs->n_inhibits; i++) {
        rules_inhibit_destroy(rs->inhibits[i]);
    }
    vg_free(rs->inhibits);
    vg_map_destroy(rs->monitor_names, NULL);
    vg_map_destroy(rs->pager_names, NULL);
    vg_map_destroy(rs->tzs, free_tz);
    rules_index_destroy(rs->idx);
    vg_free(rs);
}

size_t vg_rules_monitor_count(const struct vg_ruleset *rs)
{
    return rs->n_monitors;
}

size_t vg_rules_pager_count(const struct vg_ruleset *rs)
{
    return rs->n_pagers;
}

/* One sink reference against the configured names: VG_OK, or the message in errstr. */
static vg_err_t check_sink_ref(const struct rules_pager *pg, const struct rules_sink_ref *ref,
                               const char *what, char *const *sink_names, size_t n_sinks,
                               char *errstr, size_t errstr_size)
{
    struct vg_buf known = {0};
    const char *hint;

    for (size_t k = 0; k < n_sinks; k++) {
        if (strcmp(sink_names[k], ref->name) == 0) {
            return VG_OK;
        }
    }
    for (size_t k = 0; k < n_sinks; k++) {
        vg_buf_printf(&known, "%s%s", k ? ", " : "", sink_names[k]);
    }
    hint = rules_closest(ref->name, (const char *const *)sink_names, n_sinks);
    if (hint) {
        snprintf(errstr, errstr_size,
                 "%s:%zu:%zu: pager \"%s\": unknown %s \"%s\" (did you mean \"%s\"? configured "
                 "sinks: %s)",
                 pg->loc.file, ref->line, ref->col, pg->name, what, ref->name, hint, known.data);
    } else {
        snprintf(errstr, errstr_size,
                 "%s:%zu:%zu: pager \"%s\": unknown %s \"%s\" (configured sinks: %s)", pg->loc.file,
                 ref->line, ref->col, pg->name, what, ref->name, n_sinks ? known.data : "none");
    }
    vg_buf_fini(&known);
    return VG_ERR_INVALID;
}

/* Every bad reference into `diags` (NULL: stop at the first, in errstr). */
static vg_err_t check_sinks(const struct vg_ruleset *rs, char *const *sink_names, size_t n_sinks,
                            struct vg_rules_diags *diags, char *errstr, size_t errstr_size)
{
    vg_err_t first = VG_OK;

    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *pg = rs->pagers[i];

        for (size_t j = 0; j <= pg->n_sinks; j++) {
            const struct rules_sink_ref *ref = j < pg->n_sinks ? &pg->sinks[j] : &pg->fallback;
            char msg[1024];

            if (!ref->name) {
                continue;
            }
            if (check_sink_ref(pg, ref, j < pg->n_sinks ? "sink" : "fallback sink", sink_names,
                               n_sinks, msg, sizeof(msg)) == VG_OK) {
                continue;
            }
            if (first == VG_OK) {
                snprintf(errstr, errstr_size, "%s", msg);
                first = VG_ERR_INVALID;
            }
            if (!diags) {
                return first;
            }
            vg_rules_diags_add_text(diags, msg);
        }
    }
    return first;
}

vg_err_t vg_rules_check_sinks(const struct vg_ruleset *rs, char *const *sink_names, size_t n_sinks,
                              char *errstr, size_t errstr_size)
{
    return check_sinks(rs, sink_names, n_sinks, NULL, errstr, errstr_size);
}

bool vg_rules_needs_firing(const struct vg_ruleset *rs)
{
    return rs->cross_inhibit;
}

/* ---- diagnostics (`vigil check`) ------------------------------------------ */

void vg_rules_diags_add_text(struct vg_rules_diags *d, const char *text)
{
    struct vg_rules_diag *g = VG_ARRAY_PUSH(d->items, d->n, d->cap);
    const char *p;

    memset(g, 0, sizeof(*g));
    /* "file:line:col: message": find the first ":<digits>:<digits>: ". */
    for (p = strchr(text, ':'); p; p = strchr(p + 1, ':')) {
        const char *q = p + 1;
        size_t line = 0;
        size_t col = 0;

        if (*q < '0' || *q > '9') {
            continue;
        }
        while (*q >= '0' && *q <= '9') {
            line = line * 10 + (size_t)(*q++ - '0');
        }
        if (*q++ != ':' || *q < '0' || *q > '9') {
            continue;
        }
        while (*q >= '0' && *q <= '9') {
            col = col * 10 + (size_t)(*q++ - '0');
        }
        if (q[0] != ':' || q[1] != ' ') {
            continue;
        }
        g->file = vg_strndup(text, (size_t)(p - text));
        g->line = line;
        g->col = col;
        g->message = vg_strdup(q + 2);
        return;
    }
    /* "path: message" (I/O errors) or no position at all. */
    p = strstr(text, ": ");
    if (p) {
        g->file = vg_strndup(text, (size_t)(p - text));
        g->message = vg_strdup(p + 2);
    } else {
        g->file = vg_strdup("");
        g->message = vg_strdup(text);
    }
}

void vg_rules_diags_fini(struct vg_rules_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        vg_free(d->items[i].file);
        vg_free(d->items[i].message);
    }
    vg_free(d->items);
    memset(d, 0, sizeof(*d));
}

void rules_diag(struct vg_ruleset *rs, const char *errstr)
{
    if (rs->diags) {
        vg_rules_diags_add_text(rs->diags, errstr);
    }
}

bool vg_rules_matcher_valid(const char *matcher, char *errstr, size_t errstr_size)
{
    static const char *const keys[] = {"monitor", "resource",    "severity", "incident",
                                       "type",    "workspace",   "name",     "owner",
                                       "version", "labels.<key>"};
    const char *eq = strchr(matcher, '=');
    const struct rules_match_key *key;
    const char *label = NULL;
    char name[256];

    if (!eq || eq == matcher || (size_t)(eq - matcher) >= sizeof(name)) {
        snprintf(errstr, errstr_size, "matcher \"%s\": expected key=pattern", matcher);
        return false;
    }
    memcpy(name, matcher, (size_t)(eq - matcher));
    name[eq - matcher] = '\0';
    key = rules_find_match_key(name, &label);
    /* A silence may match what a pager may, and the Resource's version too (docs/rules.md):
     * evaluation reads it from the incident's Resource like type or name. */
    if (!key || (!(key->scopes & RULES_SCOPE_PAGER) && strcmp(name, "version") != 0)) {
        const char *hint = rules_closest(name, keys, VG_ARRAY_LEN(keys));

        if (hint) {
            snprintf(errstr, errstr_size,
                     "matcher \"%s\": unknown key \"%s\" (did you mean "
                     "\"%s\"?)",
                     matcher, name, hint);
        } else {
            snprintf(errstr, errstr_size,
                     "matcher \"%s\": unknown key \"%s\" (expected monitor, resource, severity, "
                     "incident, type, workspace, name, owner, version or labels.<key>)",
                     matcher, name);
        }
        return false;
    }
    if (!eq[1]) {
        /* as POST /api/v1/silences refuses it: it would hold only for an empty value */
        snprintf(errstr, errstr_size, "matcher \"%s\": empty pattern (want key=glob)", matcher);
        return false;
    }
    if (!vg_glob_valid(eq + 1)) {
        snprintf(errstr, errstr_size, "matcher \"%s\": invalid glob", matcher);
        return false;
    }
    return true;
}

/* ---- timer members --------------------------------------------------------- */

char *vg_rules_timer_member(char kind, const char *monitor, const char *resource_id)
{
    return vg_asprintf("%c|%s|%s", kind, monitor, resource_id);
}

bool vg_rules_timer_resource(const char *member, char **id)
{
    const char *bar;

    *id = NULL;
    if ((member[0] != 'm' && member[0] != 'x') || member[1] != '|') {
        return false;
    }
    /* Monitor names never contain '|'; the Resource id is everything after. */
    bar = strchr(member + 2, '|');
    if (!bar || bar == member + 2 || !bar[1]) {
        return false;
    }
    *id = vg_strdup(bar + 1);
    return true;
}

vg_err_t vg_rules_load_string(struct vg_ruleset *rs, const char *name, const char *buf, size_t len,
                              char *errstr, size_t errstr_size)
{
    struct vg_ydoc doc = {0};
    vg_err_t err;

    err = vg_yaml_load_string(&doc, name, buf, len, 0, errstr, errstr_size);
    if (err == VG_OK) {
        err = rules_load_doc(rs, &doc, errstr, errstr_size);
    }
    vg_ydoc_fini(&doc);
    if (err != VG_OK && rs->diags) {
        rules_diag(rs, errstr);
        return VG_OK;
    }
    return err;
}

vg_err_t vg_rules_load_file(struct vg_ruleset *rs, const char *path, char *errstr,
                            size_t errstr_size)
{
    struct vg_ydoc doc = {0};
    vg_err_t err;

    err = vg_yaml_load_file(&doc, path, 0, errstr, errstr_size);
    if (err == VG_OK) {
        err = rules_load_doc(rs, &doc, errstr, errstr_size);
    }
    vg_ydoc_fini(&doc);
    if (err != VG_OK && rs->diags) {
        rules_diag(rs, errstr); /* check mode: recorded, go on with the next file */
        return VG_OK;
    }
    return err;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* scandir filter: *.yaml and *.yml, skipping hidden files (editor leftovers). */
static int yaml_entry(const struct dirent *de)
{
    return de->d_name[0] != '.' &&
           (has_suffix(de->d_name, ".yaml") || has_suffix(de->d_name, ".yml"));
}

static vg_err_t load_dir(struct vg_ruleset *rs, const char *dir, char *errstr, size_t errstr_size)
{
    struct dirent **ents = NULL;
    vg_err_t err = VG_OK;
    int n = scandir(dir, &ents, yaml_entry, alphasort);

    if (n < 0) {
        snprintf(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        return VG_ERR_IO;
    }
    for (int i = 0; i < n; i++) {
        size_t dlen = strlen(dir);
        char *path =
            vg_asprintf("%s%s%s", dir, dlen && dir[dlen - 1] == '/' ? "" : "/", ents[i]->d_name);
        struct stat sb;

        /* Not recursive: a directory named x.yaml is skipped like any other. */
        if (err == VG_OK && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            err = vg_rules_load_file(rs, path, errstr, errstr_size);
        }
        vg_free(path);
        free(ents[i]); /* allocated by scandir with malloc */
    }
    free(ents);
    return err;
}

/* A file or a directory (never re-globbed: a file name may contain '*'). */
static vg_err_t load_existing(struct vg_ruleset *rs, const char *path, const struct stat *sb,
                              char *errstr, size_t errstr_size)
{
    if (S_ISDIR(sb->st_mode)) {
        return load_dir(rs, path, errstr, errstr_size);
    }
    return vg_rules_load_file(rs, path, errstr, errstr_size);
}

static vg_err_t load_glob(struct vg_ruleset *rs, const char *pattern, char *errstr,
                          size_t errstr_size)
{
    glob_t g;
    vg_err_t err = VG_OK;
    int rc = glob(pattern, 0, NULL, &g);

    if (rc == GLOB_NOMATCH) {
        snprintf(errstr, errstr_size, "%s: no files match", pattern);
        return VG_ERR_IO;
    }
    if (rc == GLOB_NOSPACE) {
        vg_oom("glob");
    }
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s: cannot expand the pattern (read error)", pattern);
        return VG_ERR_IO;
    }
    for (size_t i = 0; i < g.gl_pathc && err == VG_OK; i++) {
        struct stat sb;

        if (stat(g.gl_pathv[i], &sb) != 0) {
            snprintf(errstr, errstr_size, "%s: %s", g.gl_pathv[i], strerror(errno));
            err = VG_ERR_IO;
            break;
        }
        err = load_existing(rs, g.gl_pathv[i], &sb, errstr, errstr_size);
    }
    globfree(&g);
    return err;
}

vg_err_t vg_rules_check_paths(struct vg_ruleset *rs, char *const *paths, size_t n_paths,
                              char *const *sink_names, size_t n_sinks, struct vg_rules_diags *out)
{
    char errstr[1024];

    rs->diags = out;
    for (size_t i = 0; i < n_paths; i++) {
        struct stat sb;
        vg_err_t err = VG_OK;

        if (stat(paths[i], &sb) == 0) {
            err = load_existing(rs, paths[i], &sb, errstr, sizeof(errstr));
        } else if (errno == ENOENT && vg_is_glob(paths[i])) {
            err = load_glob(rs, paths[i], errstr, sizeof(errstr));
        } else {
            snprintf(errstr, sizeof(errstr), "%s: %s", paths[i], strerror(errno));
            err = VG_ERR_IO;
        }
        if (err != VG_OK) {
            /* Files record their own errors in check mode: this is a path-level one. */
            vg_rules_diags_add_text(out, errstr);
        }
    }
    if (sink_names) {
        check_sinks(rs, sink_names, n_sinks, out, errstr, sizeof(errstr));
    }
    rs->diags = NULL;
    return out->n ? VG_ERR_INVALID : VG_OK;
}

vg_err_t vg_rules_load_paths(struct vg_ruleset *rs, char *const *paths, size_t n_paths,
                             char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n_paths; i++) {
        struct stat sb;
        vg_err_t err;

        if (stat(paths[i], &sb) == 0) {
            err = load_existing(rs, paths[i], &sb, errstr, errstr_size);
        } else if (errno == ENOENT && vg_is_glob(paths[i])) {
            err = load_glob(rs, paths[i], errstr, errstr_size);
        } else {
            snprintf(errstr, errstr_size, "%s: %s", paths[i], strerror(errno));
            err = VG_ERR_IO;
        }
        if (err != VG_OK) {
            return err;
        }
    }
    return VG_OK;
}

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;

    return m < c ? m : c;
}

/*
 * Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions, so "tpye" is one edit from "type"), capped: words
 * longer than 63 bytes never match.
 */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t d[64][64];

    if (la >= 64 || lb >= 64) {
        return (size_t)-1;
    }
    for (size_t i = 0; i <= la; i++) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= lb; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];

            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j]) {
                d[i][j] = d[i - 2][j - 2] + 1;
            }
        }
    }
    return d[la][lb];
}

const char *rules_closest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    /* Short words get one edit: "foo" is not a typo of "pod". */
    size_t best_d = strlen(word) <= 3 ? 2 : 3;

    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, names[i]);

        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

size_t vg_rules_fallbacks(const struct vg_ruleset *rs, char ***pagers, char ***sinks)
{
    size_t n = 0;

    *pagers = vg_calloc(rs->n_pagers + 1, sizeof(char *));
    *sinks = vg_calloc(rs->n_pagers + 1, sizeof(char *));
    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *p = rs->pagers[i];

        if (p->fallback.name) {
            (*pagers)[n] = vg_strdup(p->name);
            (*sinks)[n] = vg_strdup(p->fallback.name);
            n++;
        }
    }
    return n;
}
