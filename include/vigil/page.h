/*
 * A page: one notification about one incident, addressed to one sink.
 * Its canonical serialisation is the webhook payload version "1"
 * (docs/webhook.md); the outbox stores that JSON and every sink renders
 * its own format from the parsed struct.
 */
#ifndef VIGIL_PAGE_H
#define VIGIL_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"
#include "vigil/event.h"

struct vg_page {
    char *id;   /* notification id: "<incident id>-<seq>", the idempotency key */
    char *sink; /* target sink name */
    char *pager;
    char *status; /* "firing" or "resolved" */
    struct {
        char *id;
        char *monitor;
        char *severity;
        char *summary;
        int64_t started_at_ms;
        int64_t resolved_at_ms; /* 0: null */
    } incident;
    struct {
        char *id;
        char *type;
        char *name;
        char *workspace;
        char *version;
        char *owner;
        char status[VG_VALUE_MAX];
        char runtime[VG_VALUE_MAX];
        char health[VG_VALUE_MAX];
    } resource;
    struct {
        char field[VG_VALUE_MAX];
        char from[VG_VALUE_MAX]; /* "" is rendered as null */
        char to[VG_VALUE_MAX];
        int64_t at_ms;
    } transition;
};

void vg_page_fini(struct vg_page *pg);

/* Render the webhook v1 JSON body (compact, keys in documented order). Caller frees. */
char *vg_page_to_json(const struct vg_page *pg);

/*
 * Parse a v1 body back (as stored in the outbox). `id`, `sink` and `pager`
 * are not part of the body and are left NULL. Returns VG_ERR_PARSE with
 * `errstr` on malformed input.
 */
vg_err_t vg_page_from_json(struct vg_page *pg, const char *json, size_t len, char *errstr,
                           size_t errstr_size);

/* A growable list of pages; owns them. */
struct vg_pages {
    struct vg_page *items;
    size_t n;
    size_t cap;
};
struct vg_page *vg_pages_push(struct vg_pages *pl); /* zeroed slot */
void vg_pages_clear(struct vg_pages *pl);           /* fini each, keep capacity */
void vg_pages_fini(struct vg_pages *pl);

#endif
