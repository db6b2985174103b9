/*
 * JSON helpers shared by every module. cJSON itself is linked privately
 * where it is used; vg_json_init() routes its allocations through
 * vg_malloc, or through the calling thread's scratch arena while that is
 * open (call once at start, before threads).
 */
#ifndef VIGIL_JSON_H
#define VIGIL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/mem.h"

void vg_json_init(void);

/*
 * Open the calling thread's JSON scratch (made on first use, freed when
 * the thread exits): until vg_json_scratch_end, this thread's cJSON
 * allocations are bumps in the returned arena and cJSON's frees of them
 * do nothing, so a parse costs no malloc per node and the tree needs no
 * cJSON_Delete. The caller may take its own scratch from the arena too.
 * `*trees_in_arena` is false when vg_json_init has not installed the
 * hooks: cJSON then allocates on the heap and trees must be deleted as
 * usual. Nothing allocated in between may be used after the end.
 * Not nestable. Thread: any; the scratch is the thread's own.
 */
struct vg_arena *vg_json_scratch_begin(bool *trees_in_arena);
/* Close the scratch: everything allocated in it since begin is gone. */
void vg_json_scratch_end(void);

/* Append `s` as a quoted JSON string (escaped) to `b`. */
void vg_json_append_string(struct vg_buf *b, const char *s);

/* Depth of nesting of `json` (counting [ and { outside strings); stops counting at `limit`+1. */
int vg_json_depth(const char *json, size_t len, int limit);

/* True when `s` (len bytes) is valid UTF-8. */
bool vg_utf8_valid(const char *s, size_t len);

/* The first problem vg_json_scan met, in byte order. */
enum vg_json_scan_result {
    VG_JSON_SCAN_OK = 0,
    VG_JSON_SCAN_NOT_UTF8,     /* as vg_utf8_valid, anywhere in the input */
    VG_JSON_SCAN_TOO_DEEP,     /* [ and { (outside strings) nested deeper than max_depth */
    VG_JSON_SCAN_CONTROL_CHAR, /* a raw byte < 0x20 (NUL included) inside a string */
};

struct vg_json_scan {
    size_t at;       /* offset of the offending byte (not OK) */
    int depth;       /* deepest nesting seen (up to max_depth + 1) */
    bool nul_escape; /* a string holds the escape \u0000 */
};

/*
 * Check untrusted JSON (`len` bytes, not NUL-terminated) in one pass
 * before parsing it: UTF-8, nesting depth and raw control characters in
 * strings. Not a parser: malformed JSON is cJSON's to reject, and the
 * string state of garbage is a guess. Fills `out`.
 */
enum vg_json_scan_result vg_json_scan(const char *json, size_t len, int max_depth,
                                      struct vg_json_scan *out);

#endif
