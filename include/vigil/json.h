/*
 * JSON helpers shared by every module. cJSON itself is linked privately
 * where it is used; vg_json_init() routes its allocations through
 * vg_malloc (call once at start, before threads).
 */
#ifndef VIGIL_JSON_H
#define VIGIL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/mem.h"

void vg_json_init(void);

/* Append `s` as a quoted JSON string (escaped) to `b`. */
void vg_json_append_string(struct vg_buf *b, const char *s);

/* Depth of nesting of `json` (counting [ and { outside strings); stops counting at `limit`+1. */
int vg_json_depth(const char *json, size_t len, int limit);

/* True when `s` (len bytes) is valid UTF-8. */
bool vg_utf8_valid(const char *s, size_t len);

#endif
