/*
 * The dead-letter topic read back (on top of env.h): every message of
 * vigil.dlq on the env's mock cluster, with its key and headers, through a
 * plain librdkafka consumer that reads from the beginning to the end.
 */
#ifndef VIGIL_TEST_DLQ_READER_H
#define VIGIL_TEST_DLQ_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "env.h"

#define VG_TEST_DEAD_LETTER_HEADERS 16

struct vg_test_dead_letter {
    char *payload; /* NUL-terminated copy of len bytes */
    size_t len;
    char *key; /* NULL: none */
    size_t n_headers;
    char *header_names[VG_TEST_DEAD_LETTER_HEADERS];
    char *header_values[VG_TEST_DEAD_LETTER_HEADERS];
};

/* Read all of vigil.dlq (bounded). False on an error or a timeout (printed). */
bool vg_test_env_read_dlq(struct vg_test_env *e, struct vg_test_dead_letter **out, size_t *n_out);
void vg_test_dead_letters_free(struct vg_test_dead_letter *v, size_t n);
/* The last value of header `name` of `d`, NULL when it has none. */
const char *vg_test_dead_letter_header(const struct vg_test_dead_letter *d, const char *name);
/* True when `d` has header `name` and its value is `value`. */
bool vg_test_dead_letter_header_is(const struct vg_test_dead_letter *d, const char *name,
                                   const char *value);

#endif
