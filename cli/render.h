/*
 * Private to cli/ (render.c): how the commands print. The grid and its
 * cells, colour badges, durations and times, JSON and YAML scalars. What
 * each command prints stays in its cmd_*.c.
 */
#ifndef VIGIL_CLI_RENDER_H
#define VIGIL_CLI_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/mem.h"

#define CLI_COLOR_RESET "\033[0m"

/*
 * The dataos-ctl table: centred headers, '|' between columns, cells
 * row-major (`nrows` x `ncols`, NULL = ""), optional ANSI colour per cell.
 * Control characters in cells print as '?'.
 */
void cli_print_grid(FILE *out, const char *const *headers, size_t ncols, const char *const *cells,
                    const char *const *colors, size_t nrows);
/* Terminal columns of UTF-8 text (East Asian wide characters count 2). */
size_t cli_display_width(const char *s);
/*
 * `s` with control characters (C0, DEL, C1) replaced by '?': a Resource
 * name or message must not move the cursor or recolour the terminal.
 * Returns `s` itself when it is clean, else a heap copy in *tmp (NULL
 * otherwise; the caller frees it).
 */
const char *cli_printable(const char *s, char **tmp);
/* `n` spaces. */
void cli_pad(FILE *out, size_t n);
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
/* "<indent><key>: <scalar>\n" (cli_yaml_scalar). */
void cli_yaml_field(struct vg_buf *b, const char *indent, const char *key, const char *value);
/* "<sep>"key": "value"", or `null` for a NULL value. */
void cli_json_member(struct vg_buf *b, const char *sep, const char *key, const char *value);

#endif
