/*
 * Sinks (libcurl lives only in sinks/): deliver one page to one named
 * sink. The outbox and retry loop that call this are in cli/dispatch.c;
 * docs/webhook.md documents the webhook payload.
 */
#ifndef VIGIL_SINKS_H
#define VIGIL_SINKS_H

#include <stddef.h>
#include <stdio.h>

#include "vigil/config.h"
#include "vigil/err.h"

struct vg_sinks;

/*
 * Build sinks from config (copied). `console_out` is where the console
 * sink prints (stdout when NULL). Returns VG_ERR_INVALID for an unknown
 * type or a webhook without url.
 */
vg_err_t vg_sinks_new(struct vg_sinks **out, const struct vg_sink_config *cfgs, size_t n,
                      FILE *console_out, char *errstr, size_t errstr_size);
void vg_sinks_destroy(struct vg_sinks *sk);

/*
 * One delivery attempt of page `page_id` with v1 JSON `body` to sink
 * `sink`. VG_OK on success (2xx); VG_ERR_BACKEND for connection errors,
 * timeouts, 408, 429 and 5xx (retry); VG_ERR_REJECTED for other 4xx or a
 * redirect (give up); VG_ERR_INVALID for an unknown sink. errstr gets the
 * status and reason, never the URL unredacted.
 * Thread: the dispatcher thread.
 */
vg_err_t vg_sinks_deliver(struct vg_sinks *sk, const char *sink, const char *page_id,
                          const char *body, size_t body_len, char *errstr, size_t errstr_size);

/* Max attempts configured for `sink` (5 by default; 1 for console). */
int vg_sinks_max_attempts(const struct vg_sinks *sk, const char *sink);

#endif
