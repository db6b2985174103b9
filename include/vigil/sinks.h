/*
 * Sinks (libcurl lives only in sinks/): render and deliver pages to named
 * sinks: webhook, slack, alertmanager, kafka, console, teams, email (SMTP),
 * pagerduty (docs/sinks.md, docs/webhook.md). vg_sinks_deliver is one
 * blocking attempt; the
 * dispatcher (engine/dispatch.c) uses the asynchronous API below (many
 * attempts in flight, per-sink policy) and owns the outbox, retries,
 * ordering and dead letters.
 */
#ifndef VIGIL_SINKS_H
#define VIGIL_SINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/config.h"
#include "vigil/err.h"

struct vg_sinks;

/*
 * Build sinks from config (copied). `console_out` is where the console
 * sink prints (stdout when NULL). Returns VG_ERR_INVALID for an unknown
 * type, a webhook or teams sink without url, an email sink without an
 * smtp(s) url, from and to, a pagerduty sink without routing_key.
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

/* ---- asynchronous delivery (libcurl multi), policy, health ---- */

/*
 * One attempt to start. All strings are borrowed for the call (copied).
 * `memo`: what an earlier notification of the same incident left for this
 * sink (Slack with a bot token: "CHANNEL TS" of the first message), or NULL.
 * `step`: 0, or the `next_step` of a previous failed result (a Slack
 * resolved notice is chat.update then a reply in the thread: a retry
 * resumes where it failed).
 */
struct vg_sink_job {
    uint64_t tag; /* the caller's handle, returned in the result */
    const char *sink;
    const char *id;    /* notification id: Idempotency-Key, webhook-id */
    const char *pager; /* the pager that routed it (Alertmanager label), may be NULL */
    const char *body;
    size_t body_len;
    const char *memo;
    int step;
};

#define VG_SINK_DETAIL_MAX 512
#define VG_SINK_RESPONSE_MAX 1024

struct vg_sink_result {
    uint64_t tag;
    char sink[64];
    vg_err_t err; /* OK; BACKEND/TIMEOUT: retry; REJECTED: give up; INVALID: give up */
    long status;  /* HTTP status, 0 when none */
    int64_t latency_ms;
    int64_t retry_after_ms; /* -1: none */
    int next_step;          /* on failure: the step to resume at */
    bool disabled;          /* this answer (HTTP 410) disabled the sink */
    char *memo;             /* owned (vg_sink_result_fini): keep for this incident's next notices */
    char detail[VG_SINK_DETAIL_MAX];     /* "sink ops: HTTP 503", never a secret */
    char response[VG_SINK_RESPONSE_MAX]; /* the response body, truncated and made printable */
};
void vg_sink_result_fini(struct vg_sink_result *r);

enum vg_sink_gate {
    VG_SINK_GO = 0,   /* start now: a token and a slot were taken */
    VG_SINK_WAIT,     /* not now: *wait_ms (or -1: until a completion) */
    VG_SINK_DISABLED, /* HTTP 410 disabled it until vg_sinks_reset: give up */
    VG_SINK_UNKNOWN,  /* no such sink: give up */
};
/*
 * May an attempt to `sink` start at `now_ms` (vg_mono_ms)? Checks the
 * disabled flag, a Retry-After pause, the circuit breaker (while down only
 * one probe at a time, after a growing cooldown), the concurrency limit
 * and the token bucket (`rate`, `burst`). VG_SINK_GO reserves the slot:
 * call vg_sinks_start next. Thread: the dispatcher thread.
 */
enum vg_sink_gate vg_sinks_acquire(struct vg_sinks *sk, const char *sink, int64_t now_ms,
                                   int64_t *wait_ms);
/*
 * Start one attempt (after VG_SINK_GO). Non-blocking: the outcome comes
 * from vg_sinks_poll. VG_ERR_INVALID when the page cannot be rendered for
 * this sink (errstr says why; nothing started, the slot is released). An
 * attempt libcurl's multi handle refuses is started all the same and
 * comes back from vg_sinks_poll as a retriable failure.
 */
vg_err_t vg_sinks_start(struct vg_sinks *sk, const struct vg_sink_job *job, char *errstr,
                        size_t errstr_size);
/*
 * Drive transfers for up to `timeout_ms` (returns early when one finishes
 * or vg_sinks_wakeup is called) and move up to `max` finished attempts
 * into `out` (each to be vg_sink_result_fini'd). Updates each sink's
 * breaker, counters and Retry-After pause; an HTTP 410 disables the sink.
 * Logs sink state changes (down, up, disabled) once. Returns the count.
 * When libcurl's multi interface fails, the attempts in flight finish as
 * retriable failures (VG_ERR_BACKEND, detail "sink NAME: libcurl CALL:
 * ..."); the failure is logged once per streak, and a call that returns
 * nothing then waits (100 ms doubling up to 1 s) so the caller's loop does
 * not spin on it.
 */
size_t vg_sinks_poll(struct vg_sinks *sk, int timeout_ms, struct vg_sink_result *out, size_t max);
/* Make a vg_sinks_poll in progress return. Thread-safe. */
void vg_sinks_wakeup(struct vg_sinks *sk);
/* Attempts in flight (all sinks). */
size_t vg_sinks_in_flight(const struct vg_sinks *sk);

/*
 * The wait before the next attempt after attempt number `attempt` (>= 1)
 * failed: 200 ms doubling up to 10 s, plus up to 25% jitter from `rnd01`
 * in [0, 1). A Retry-After longer than this wins.
 */
int64_t vg_sinks_backoff_ms(int attempt, double rnd01);
/*
 * The incident ids a page body is about (a single page: one; a grouped
 * page: each of "incidents", at most `max`), as a new heap array of heap
 * strings in *out. Returns the count (0 when the body does not parse).
 */
size_t vg_sinks_page_incidents(const char *body, size_t len, char ***out, size_t max);

/* max_age of `sink` in ms (24 h by default). */
int64_t vg_sinks_max_age_ms(const struct vg_sinks *sk, const char *sink);
/* True when `sink` keeps a memo per incident (Slack with a bot token). */
bool vg_sinks_wants_memo(const struct vg_sinks *sk, const char *sink);
/* Count a page given up on (for the status counters). */
void vg_sinks_note_given_up(struct vg_sinks *sk, const char *sink);
/*
 * Kafka sinks without `brokers` produce to this cluster (the `kafka`
 * section's, or the embedded one), with these producer properties. Call
 * before the first delivery. Strings are copied.
 */
void vg_sinks_set_kafka_default(struct vg_sinks *sk, const char *bootstraps,
                                const struct vg_kv *props, size_t n_props);
/* Re-enable sinks disabled by HTTP 410 and close every breaker (on reload). */
void vg_sinks_reset(struct vg_sinks *sk);

/* One sink's health, for /readyz and /metrics. */
struct vg_sink_status {
    char name[64];
    char type[16];
    const char *state; /* "up", "down" (breaker open), "probing", "disabled" (HTTP 410) */
    int consecutive_failures;
    int in_flight;
    int64_t down_since_ms; /* vg_mono_ms when it went down; 0 when up */
    int64_t delivered;     /* attempts that succeeded */
    int64_t failed;        /* attempts that failed */
    int64_t given_up;      /* pages given up on (dead-lettered) */
    long last_status;
    char last_error[256]; /* never a secret */
};
/* Fill up to `max` entries (config order); returns the number of sinks. Thread-safe. */
size_t vg_sinks_status(struct vg_sinks *sk, struct vg_sink_status *out, size_t max);
/* False when any sink is down or disabled (for a /readyz "degraded" detail). Thread-safe. */
bool vg_sinks_all_up(struct vg_sinks *sk);

#endif
