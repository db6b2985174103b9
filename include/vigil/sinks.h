/*
 * Sinks (libcurl lives only in sinks/): deliver one page to one named
 * sink. The outbox and retry loop that call this are in cli/dispatch.c;
 * docs/webhook.md documents the webhook payload.
 */
#ifndef VIGIL_SINKS_H
#define VIGIL_SINKS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/config.h"
#include "vigil/err.h"

struct vg_sinks;

/*
 * Build sinks from config (copied). `console_out` is where the console
 * sink prints (stdout when NULL). Returns VG_ERR_INVALID for an unknown
 * type or a webhook without url.
 * Also VG_ERR_INVALID for: a missing or duplicate name, a url that is not
 * http(s)://host..., a header name that is not an HTTP token or a value
 * with CR/LF, a header vigil sets itself (Idempotency-Key, webhook-id,
 * Content-Length, Host, Transfer-Encoding, Connection, Expect; a
 * configured Content-Type or User-Agent replaces vigil's), negative
 * timeouts or attempts. 0 timeouts/attempts mean the defaults (10 s,
 * 5 s, 5). errstr never holds a url unredacted. Calls curl_global_init
 * once per process.
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
 * Precisely: a connect or total timeout is VG_ERR_TIMEOUT (retriable
 * too); a page id with control characters is VG_ERR_INVALID. errstr
 * looks like "sink ops: HTTP 503" or "sink ops: <libcurl error>". The
 * console sink always returns VG_OK.
 * Thread: the dispatcher thread.
 */
vg_err_t vg_sinks_deliver(struct vg_sinks *sk, const char *sink, const char *page_id,
                          const char *body, size_t body_len, char *errstr, size_t errstr_size);

/* Max attempts configured for `sink` (5 by default; 1 for console). */
int vg_sinks_max_attempts(const struct vg_sinks *sk, const char *sink);

/*
 * The Retry-After (delta-seconds, in ms) of the last vg_sinks_deliver to
 * `sink`, typically with a 429 or 503; -1 when that response had none,
 * the sink is unknown or not a webhook. The dispatcher may wait at least
 * this long (capped) before the next attempt.
 */
int64_t vg_sinks_retry_after_ms(const struct vg_sinks *sk, const char *sink);

#endif
