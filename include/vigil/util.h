/*
 * Small utilities: time (RFC 3339, clocks), a string-keyed hash map,
 * globs, fingerprints, durations.
 */
#ifndef VIGIL_UTIL_H
#define VIGIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"

/* Wall clock, ms since the epoch. */
int64_t vg_now_ms(void);
/* Monotonic clock, ms. */
int64_t vg_mono_ms(void);

/*
 * Parse RFC 3339 ("2026-11-28T10:00:00Z", "...T10:00:00.123+02:00") into
 * ms since the epoch. Returns false when malformed.
 */
bool vg_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ms);
/* Format as "2026-11-28T10:00:00.123Z" (ms precision; ".000" omitted). Needs 32 bytes. */
void vg_time_format_rfc3339(int64_t ms, char *out, size_t out_size);

/* Days since 1970-01-01 of the date y-m-d (proleptic Gregorian; m 1-12, d 1-31). */
int64_t vg_days_from_civil(int64_t y, int m, int d);

/* "500ms", "30s", "10m", "4h", "1d", "1h30m" -> ms. False when malformed or negative. */
bool vg_duration_parse(const char *s, int64_t *out_ms);

/* Shell glob match (fnmatch without flags). */
bool vg_glob_match(const char *pattern, const char *s);
/* True when `s` contains glob metacharacters. */
bool vg_is_glob(const char *s);
/* Validates a glob (balanced brackets). */
bool vg_glob_valid(const char *pattern);

/* 64-bit FNV-1a over the parts joined by '\n', rendered as 16 lowercase hex chars + NUL. */
void vg_fingerprint(char out[17], const char *const *parts, size_t n);

/* Strict integer parsing: whole string, range checked. */
bool vg_parse_i64(const char *s, int64_t *out);

/* String-keyed hash map with owned keys and borrowed values. */
struct vg_map;
struct vg_map *vg_map_new(void);
/* Frees keys; calls `free_value` (may be NULL) on each value. */
void vg_map_destroy(struct vg_map *m, void (*free_value)(void *));
void *vg_map_get(const struct vg_map *m, const char *key);
/* Insert or replace; returns the previous value or NULL. */
void *vg_map_put(struct vg_map *m, const char *key, void *value);
void *vg_map_remove(struct vg_map *m, const char *key);
size_t vg_map_count(const struct vg_map *m);
void vg_map_clear(struct vg_map *m, void (*free_value)(void *));
/* Iterate: start with *iter = 0; returns false at the end. */
bool vg_map_next(const struct vg_map *m, size_t *iter, const char **key, void **value);

#endif
