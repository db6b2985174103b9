/*
 * Private to cli/: the subcommands and the rendering of their output.
 * The daemon they start lives in engine/ (include/vigil/engine.h).
 */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/api.h"
#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/err.h"
#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/sinks.h"
#include "vigil/state.h"

/* Exit codes. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

int cli_cmd_run(int argc, char **argv);
int cli_cmd_get(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_demo(int argc, char **argv);

/* Load `path` (NULL: defaults) into cfg, printing the error. Returns an exit code. */
int cli_load_config(struct vg_config *cfg, const char *path);
/* The exit code for an engine error: configuration 2, anything else 1. */
int cli_engine_exit_code(vg_err_t err);

/* `vigil test`, `vigil incidents`, `vigil silence`. */
int cli_cmd_test(int argc, char **argv);
int cli_cmd_incidents(int argc, char **argv);
int cli_cmd_silence(int argc, char **argv);
/* `vigil dlq list|retry ID|drop ID` and `vigil incidents show ID`. */
int cli_cmd_dlq(int argc, char **argv);
int cli_cmd_incidents_show(int argc, char **argv);

/* Rendering of Resources for `get` (table and JSON). */
void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color);
void cli_print_json(FILE *out, struct vg_resource **v, size_t n);

/*
 * The read-only commands (cmd_get.c, cmd_history.c; issue 3). `get -o wide`
 * adds HEALTH | SINCE | UPDATED, SINCE measured against `now_ms`.
 */
int cli_cmd_history(int argc, char **argv);
void cli_print_wide(FILE *out, struct vg_resource **v, size_t n, bool color, int64_t now_ms);
void cli_print_yaml(FILE *out, struct vg_resource **v, size_t n);
/* `vigil get ID`: one Resource in full (text, JSON object, YAML mapping). */
void cli_print_detail(FILE *out, const struct vg_resource *res, int64_t now_ms, bool color);
void cli_print_detail_json(FILE *out, const struct vg_resource *res, int64_t now_ms);
void cli_print_detail_yaml(FILE *out, const struct vg_resource *res, int64_t now_ms);
/*
 * The dataos-ctl table: centred headers, '|' between columns, cells
 * row-major (`nrows` x `ncols`, NULL = ""), optional ANSI colour per cell.
 * Control characters in cells print as '?'.
 */
void cli_print_grid(FILE *out, const char *const *headers, size_t ncols, const char *const *cells,
                    const char *const *colors, size_t nrows);
/* Terminal columns of UTF-8 text (East Asian wide characters count 2). */
size_t cli_display_width(const char *s);
/* The colour badge of a status, runtime or health value, or NULL. */
const char *cli_value_color(const char *value);
/* True when `out` is a TTY and neither NO_COLOR (non-empty) nor TERM=dumb is set. */
bool cli_use_color(FILE *out);
/* Now, or $VIGIL_NOW_MS (ms since the epoch) when set: tests pin it for stable output. */
int64_t cli_now_ms(void);
/* kubectl's AGE: "45s", "5m30s", "12m", "3h5m", "2d3h", "400d"; "0s" for small negatives. */
void cli_format_age(int64_t ms, char *out, size_t out_size);
/* RFC 3339 (ms precision, ".000" omitted), "" for 0 (unknown). Needs 32 bytes. */
void cli_format_time(int64_t ms, char *out, size_t out_size);
/* A YAML scalar: plain when unambiguous, else double-quoted; NULL is `null`. */
void cli_yaml_scalar(struct vg_buf *b, const char *s);
/*
 * Load config and connect to Redis for a read-only command (`redis_url`
 * and `prefix` override the config's when non-NULL). Returns an exit
 * code; on "cannot reach" prints the redacted URL and the reason and
 * returns CLI_EXIT_USAGE (2). `cfg` must be vg_config_fini'd either way.
 */
int cli_open_state(const char *cmd, const char *config_path, const char *redis_url,
                   const char *prefix, struct vg_config *cfg, struct vg_state **st,
                   struct vg_redis_child **child);
void cli_close_state(struct vg_state *st, struct vg_redis_child *child);
/* Print a state error of `cmd`; BACKEND/TIMEOUT exit 2 ("cannot reach redis"), others 1. */
int cli_state_error(const char *cmd, vg_err_t err, const char *errstr);

#endif
