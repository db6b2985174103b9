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
/* `vigil config print`: the effective configuration, secrets redacted. */
int cli_cmd_config(int argc, char **argv);
/* `vigil sink test NAME | --all`: a test notification through configured sinks. */
int cli_cmd_sink(int argc, char **argv);
/* `vigil replay`: rebuild the state from the topics into a fresh prefix, then swap it in. */
int cli_cmd_replay(int argc, char **argv);

/*
 * Load `path` (NULL: defaults) and the VIGIL_* environment overrides into
 * cfg, printing every error, and apply its `log:` section. Returns an exit
 * code; on CLI_EXIT_OK the caller finalises cfg, on failure it holds nothing.
 */
int cli_load_config(struct vg_config *cfg, const char *path);
/* Set the log level and format from `log:`. */
void cli_apply_log_config(const struct vg_log_config *log);
/* The exit code for an engine error: configuration 2, anything else 1. */
int cli_engine_exit_code(vg_err_t err);

/* `vigil test`, `vigil incidents`, `vigil silence`. */
int cli_cmd_test(int argc, char **argv);
int cli_cmd_incidents(int argc, char **argv);
int cli_cmd_silence(int argc, char **argv);
/* `vigil dlq list|retry ID|drop ID` and `vigil incidents show ID`. */
int cli_cmd_dlq(int argc, char **argv);
int cli_cmd_incidents_show(int argc, char **argv);

/*
 * The read-only commands (cmd_history.c), and the views of Resources that
 * `get` prints (cmd_get.c; `demo` prints the table too): table, JSON,
 * YAML, and `-o wide` with HEALTH | SINCE | UPDATED, SINCE measured
 * against `now_ms`. Their shared flags and session are in options.h, how
 * they print in render.h.
 */
int cli_cmd_history(int argc, char **argv);
void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color);
void cli_print_json(FILE *out, struct vg_resource **v, size_t n);
void cli_print_wide(FILE *out, struct vg_resource **v, size_t n, bool color, int64_t now_ms);
void cli_print_yaml(FILE *out, struct vg_resource **v, size_t n);
/* `vigil get ID`: one Resource in full (text, JSON object, YAML mapping). */
void cli_print_detail(FILE *out, const struct vg_resource *res, int64_t now_ms, bool color);
void cli_print_detail_json(FILE *out, const struct vg_resource *res, int64_t now_ms);
void cli_print_detail_yaml(FILE *out, const struct vg_resource *res, int64_t now_ms);

#endif
