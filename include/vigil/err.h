/*
 * vg_err_t: the one error type of vigil. Every module translates its
 * library's failures into these codes once, in its home module.
 */
#ifndef VIGIL_ERR_H
#define VIGIL_ERR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    VG_OK = 0,
    VG_ERR_INVALID = -1, /* bad input or config: fix it, retrying won't help */
    VG_ERR_PARSE = -2,   /* malformed JSON or YAML; errstr says where */
    VG_ERR_IO = -3,      /* local file or socket */
    VG_ERR_BACKEND = -4, /* Redis, Kafka or a receiver is unavailable: retry with backoff */
    VG_ERR_TIMEOUT = -5,
    VG_ERR_REJECTED = -6, /* the peer refused for good (e.g. HTTP 400): dead-letter it */
    VG_ERR_FATAL = -7,    /* stop cleanly */
    /*
     * Another writer holds what this one built on (a Kafka partition taken
     * by another instance): nothing was written; claim again and retry.
     */
    VG_ERR_CONFLICT = -8,
} vg_err_t;

/* "OK", "INVALID", ...: a static string. */
const char *vg_err_name(vg_err_t err);

/* True for VG_ERR_BACKEND, VG_ERR_TIMEOUT and VG_ERR_CONFLICT. */
bool vg_err_is_retriable(vg_err_t err);

#endif
