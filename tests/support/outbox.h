/*
 * The outbox from the test's side (on top of env.h): put a page straight
 * into P:outbox as the pipeline's MULTI/EXEC would, wait until the
 * dispatcher drained it or holds an entry, count what a receiver got per
 * notification id.
 */
#ifndef VIGIL_TEST_OUTBOX_H
#define VIGIL_TEST_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "env.h"

/* XADD one page (notification `id` to `sink` for `pager`); returns its stream id (heap). */
char *vg_test_outbox_put(struct vg_test_env *e, const char *id, const char *sink, const char *pager,
                         const char *body);
/* Wait until the outbox is empty (everything acknowledged or dead-lettered); logs on a timeout. */
bool vg_test_outbox_wait_drained(struct vg_test_env *e, int timeout_ms);
/* Wait until stream entry `stream_id` is pending (read, unacknowledged) for `consumer`. */
bool vg_test_outbox_wait_pending(struct vg_test_env *e, const char *stream_id, const char *consumer,
                                 int timeout_ms);
/* Requests `r` recorded whose Idempotency-Key is `id`. */
size_t vg_test_requests_with_key(struct vg_http_receiver *r, const char *id);

#endif
