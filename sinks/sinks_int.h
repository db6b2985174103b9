/*
 * Private to sinks/: the per-type sink implementations that sinks.c
 * dispatches to. libcurl types stay inside sinks_webhook.c.
 */
#ifndef VIGIL_SINKS_INT_H
#define VIGIL_SINKS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/config.h"
#include "vigil/err.h"

#define VG_WEBHOOK_MAX_RESPONSE_BYTES (64 * 1024)
#define VG_WEBHOOK_DEFAULT_TIMEOUT_MS 10000
#define VG_WEBHOOK_DEFAULT_CONNECT_TIMEOUT_MS 5000

/* curl_global_init, once per process (pthread_once). False if it failed. */
bool vg_sinks_global_init(void);

/* One webhook sink: its CURL easy handle (and so its connection cache). */
struct vg_webhook;

/*
 * Validate `cfg` (http/https url with a host, header names and values,
 * timeouts) and build the handle. `cfg` is copied. VG_ERR_INVALID with
 * errstr "sink NAME: ..." (never the unredacted url).
 */
vg_err_t vg_webhook_new(struct vg_webhook **out, const struct vg_sink_config *cfg, char *errstr,
                        size_t errstr_size);
void vg_webhook_destroy(struct vg_webhook *wh);

/* One POST; see vg_sinks_deliver for the classification. */
vg_err_t vg_webhook_deliver(struct vg_webhook *wh, const char *page_id, const char *body,
                            size_t body_len, char *errstr, size_t errstr_size);

/* Retry-After of the last delivery in ms (delta-seconds form only); -1 when absent. */
int64_t vg_webhook_retry_after_ms(const struct vg_webhook *wh);

/*
 * The status-code table: 2xx VG_OK; 3xx, and 4xx other than 408/429
 * VG_ERR_REJECTED; 408, 429, 5xx and anything else VG_ERR_BACKEND.
 */
vg_err_t vg_webhook_classify_status(long status);

/*
 * Print one line for the page in `body` to `out` and flush:
 *   PAGE firing [high] monitor resource-id field from -> to: summary
 * A body that does not parse still prints one line (with page_id).
 */
void vg_console_print(FILE *out, const char *page_id, const char *body, size_t body_len);

#endif
