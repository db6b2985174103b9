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
    return rs;
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
    for (size_t f = 0; f < RULES_N_FIELDS; f++) {
        vg_free(rs->by_field[f]);
    }
    vg_map_destroy(rs->monitor_names, NULL);
    vg_map_destroy(rs->pager_names, NULL);
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

vg_err_t vg_rules_check_sinks(const struct vg_ruleset *rs, char *const *sink_names, size_t n_sinks,
                              char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *pg = rs->pagers[i];

        for (size_t j = 0; j < pg->n_sinks; j++) {
            const struct rules_sink_ref *ref = &pg->sinks[j];
            struct vg_buf known = {0};
            bool found = false;

            for (size_t k = 0; k < n_sinks && !found; k++) {
                found = strcmp(sink_names[k], ref->name) == 0;
            }
            if (found) {
                continue;
            }
            for (size_t k = 0; k < n_sinks; k++) {
                vg_buf_printf(&known, "%s%s", k ? ", " : "", sink_names[k]);
            }
            snprintf(errstr, errstr_size,
                     "%s:%zu:%zu: pager \"%s\": unknown sink \"%s\" (configured sinks: %s)",
                     pg->loc.file, ref->line, ref->col, pg->name, ref->name,
                     n_sinks ? known.data : "none");
            vg_buf_fini(&known);
            return VG_ERR_INVALID;
        }
    }
    return VG_OK;
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

/* Levenshtein distance, capped: words longer than 63 bytes never match. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t row[64];

    if (la >= VG_ARRAY_LEN(row) || lb >= VG_ARRAY_LEN(row)) {
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];

            row[j] = min3(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1]));
            diag = up;
        }
    }
    return row[lb];
}

const char *rules_closest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;

    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, names[i]);

        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}
