/*
 * Rules (libyaml lives here and in core/config.c): monitors say what is
 * wrong, pagers say who is told. Loading reports `file:line:col: message`;
 * evaluation is pure (no I/O, no clock): it opens and closes incidents
 * inside the Resource's state and emits pages. docs/rules.md.
 */
#ifndef VIGIL_RULES_H
#define VIGIL_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/err.h"
#include "vigil/event.h"
#include "vigil/page.h"

struct vg_ruleset;

struct vg_ruleset *vg_ruleset_new(void);
void vg_ruleset_destroy(struct vg_ruleset *rs);

/*
 * Load monitors and pagers from each of `paths` (files, directories: every
 * *.yaml / *.yml inside, sorted; or globs) into `rs`. Stops at the first
 * error: errstr "file:line:col: message". A monitor name must be unique
 * across all files.
 */
vg_err_t vg_rules_load_paths(struct vg_ruleset *rs, char *const *paths, size_t n_paths,
                             char *errstr, size_t errstr_size);
/* Load one file. */
vg_err_t vg_rules_load_file(struct vg_ruleset *rs, const char *path, char *errstr,
                            size_t errstr_size);
/* Load from memory (`name` used in messages); for tests and fuzzing. */
vg_err_t vg_rules_load_string(struct vg_ruleset *rs, const char *name, const char *buf,
                              size_t len, char *errstr, size_t errstr_size);

/*
 * Cross-checks against the config: every pager sink in `sink_names` exists.
 * errstr names the file:line:col of the offending sink reference.
 */
vg_err_t vg_rules_check_sinks(const struct vg_ruleset *rs, char *const *sink_names,
                              size_t n_sinks, char *errstr, size_t errstr_size);

size_t vg_rules_monitor_count(const struct vg_ruleset *rs);
size_t vg_rules_pager_count(const struct vg_ruleset *rs);

/*
 * Evaluate the transitions of one Resource from one event (`trans[0..n)`,
 * all with the same `res`). For each monitor whose match and condition
 * hold and that has no open incident on `res`: open one (added to
 * res->incidents, id = fingerprint of monitor, resource id and the Kafka
 * position of the triggering event, so a replay yields the same id) and
 * emit a "firing" page per (routed pager, sink). For each open incident
 * whose condition no longer holds (the watched field left the `to`
 * values): close it and emit "resolved" pages. Appends to `out`.
 * Returns the number of pages appended. Marks `res` dirty on any change.
 */
size_t vg_rules_eval(const struct vg_ruleset *rs, struct vg_resource *res,
                     const struct vg_transition *trans, size_t n, struct vg_pages *out);

#endif
