/*
 * Private to sinks/: the sink registry's data (struct sink), the policy
 * pieces (token bucket, circuit breaker, backoff: pure, unit-tested), the
 * parsed page ("notice": a single or a grouped body), the renderers of
 * each sink type, Standard Webhooks signing, and the libcurl engine.
 * libcurl and librdkafka types stay inside the .c files that use them.
 */
#ifndef VIGIL_SINKS_INT_H
#define VIGIL_SINKS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "vigil/config.h"
#include "vigil/err.h"
#include "vigil/mem.h"
#include "vigil/sinks.h"

#define SINKS_MAX_RESPONSE_BYTES (64 * 1024)
#define SINKS_DEFAULT_TIMEOUT_MS 10000
#define SINKS_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define SINKS_DEFAULT_MAX_ATTEMPTS 5
#define SINKS_DEFAULT_MAX_AGE_MS (24LL * 3600 * 1000)
#define SINKS_MAX_IN_FLIGHT 16     /* concurrent requests per HTTP sink */
#define SINKS_BREAKER_THRESHOLD 5  /* consecutive failures that mark a sink down */
#define SINKS_BREAKER_MIN_MS 1000  /* first probe this long after going down */
#define SINKS_BREAKER_MAX_MS 30000 /* probes at most this far apart */
#define SINKS_RETRY_AFTER_MAX_MS (3600LL * 1000)
#define SINKS_MULTI_BACKOFF_MIN_MS 100  /* after a libcurl multi failure, doubling */
#define SINKS_MULTI_BACKOFF_MAX_MS 1000 /* short: the dispatcher also drains and stops */

/* curl_global_init, once per process (pthread_once). False if it failed. */
bool sinks_global_init(void);

/* ---- policy (sinks_policy.c): no I/O, no clock; `now_ms` is passed in ---- */

struct sinks_bucket {
    double rate_per_s; /* 0: unlimited */
    double burst;
    double tokens;
    int64_t last_ms;
};
void sinks_bucket_init(struct sinks_bucket *b, double rate_per_s, int burst, int64_t now_ms);
/* Take a token: true, or false with *wait_ms until one is there. */
bool sinks_bucket_take(struct sinks_bucket *b, int64_t now_ms, int64_t *wait_ms);

enum sinks_breaker_state { SINKS_BREAKER_CLOSED = 0, SINKS_BREAKER_OPEN, SINKS_BREAKER_HALF_OPEN };
struct sinks_breaker {
    enum sinks_breaker_state state;
    int failures;        /* consecutive */
    int64_t open_until;  /* OPEN: next probe allowed at */
    int64_t cooldown_ms; /* current wait between probes */
    int64_t down_since;  /* when it opened (0: up) */
    bool probing;        /* HALF_OPEN: the probe is in flight */
};
/* May an attempt start? In OPEN past open_until this turns HALF_OPEN and lets one probe through. */
bool sinks_breaker_allow(struct sinks_breaker *br, int64_t now_ms, int64_t *wait_ms);
/* The probe did not start after all (no token...): let another one through. */
void sinks_breaker_cancel(struct sinks_breaker *br);
/* Outcomes. Return true when the state changed (closed <-> open), for the log line. */
bool sinks_breaker_success(struct sinks_breaker *br);
bool sinks_breaker_failure(struct sinks_breaker *br, int64_t now_ms);
const char *sinks_breaker_name(enum sinks_breaker_state s);

/*
 * The wait before attempt `attempt + 1` after `attempt` failed (attempt >= 1):
 * 200 ms doubling up to 10 s, plus up to 25% jitter from `rnd01` in [0, 1).
 */
int64_t sinks_backoff_ms(int attempt, double rnd01);

/* The status-code table: 2xx OK; 3xx and 4xx other than 408/429 REJECTED; the rest BACKEND. */
vg_err_t sinks_classify_status(long status);

/* ---- the parsed page (sinks_notice.c) ---- */

/* One incident of a page: pointers into the notice's JSON tree (cJSON, opaque here). */
struct sinks_notice_item {
    const char *status; /* the item's own status in a grouped body, else the page's */
    const void *incident;
    const void *resource;
    const void *transition;
};

struct sinks_notice {
    void *root;         /* cJSON * */
    const char *status; /* "firing", "resolved", "stale", "deleted", ... */
    bool grouped;       /* body had "group" + "incidents" (a grouped page) */
    const void *group;  /* grouped: the "group" object */
    struct sinks_notice_item *items;
    size_t n_items;
    /*
     * grouped: incidents of the group the body does not list (its
     * "truncated", bounded by the pager's group_limit) and all of them
     * (n_items + truncated); a single page: 0 and 1.
     */
    size_t truncated;
    size_t n_total;
};
/* Parse a single (v1) or grouped body. VG_ERR_PARSE with errstr when it is neither. */
vg_err_t sinks_notice_parse(struct sinks_notice *nt, const char *body, size_t len, char *errstr,
                            size_t errstr_size);
void sinks_notice_fini(struct sinks_notice *nt);
/* A string at a dotted path under `obj` ("incident.summary"); "" when absent or not a string. */
const char *sinks_notice_str(const void *obj, const char *path);
/* A string at a dotted path in the whole body, for templates (grouped: the first incident). */
const char *sinks_notice_lookup(const struct sinks_notice *nt, const char *path, char *scratch,
                                size_t scratch_size);
/* Copy at most `max` bytes of `s` on a UTF-8 boundary, adding "…" when cut. Caller frees. */
char *sinks_truncate_utf8(const char *s, size_t max);

/* ---- body templates (sinks_template.c) ---- */
struct sinks_tpl;
/* Compile `src`; VG_ERR_INVALID with errstr "sink NAME: template: ..." for an unknown path. */
vg_err_t sinks_tpl_compile(struct sinks_tpl **out, const char *sink, const char *src, char *errstr,
                           size_t errstr_size);
/* Render; `json_escape`: values are escaped for a JSON string (without quotes). Caller frees. */
char *sinks_tpl_render(const struct sinks_tpl *tpl, const struct sinks_notice *nt,
                       const char *page_id, const char *sink, bool json_escape);
void sinks_tpl_destroy(struct sinks_tpl *tpl);

/* ---- signing (sinks_sign.c): Standard Webhooks 1.0 ---- */
struct sinks_sign_key {
    unsigned char *key;
    size_t len;
};
/* Decode "whsec_<base64>". VG_ERR_INVALID otherwise (errstr never holds the secret). */
vg_err_t sinks_sign_key_parse(struct sinks_sign_key *k, const char *secret, char *errstr,
                              size_t errstr_size);
void sinks_sign_key_fini(struct sinks_sign_key *k);
/* "v1,<b64> v1,<b64>": one signature of "{id}.{ts}.{body}" per key. Caller frees. */
char *sinks_sign_header(const struct sinks_sign_key *keys, size_t n_keys, const char *id,
                        int64_t ts, const char *body, size_t body_len);

/* ---- renderers: each returns a new heap body (and fills *content_type when it picks one) ---- */
/* Alertmanager API v2 alerts array for POST /api/v2/alerts. */
char *sinks_render_am_alerts(const struct sinks_notice *nt, const char *pager,
                             const char *console_url);
/* Alertmanager webhook payload version 4 (webhook `format: alertmanager`). */
char *sinks_render_am_webhook(const struct sinks_notice *nt, const char *receiver,
                              const char *pager, const char *console_url);
/* The console line for a page; see sinks_console_print. */

/*
 * Print one line for the page in `body` to `out` and flush:
 *   PAGE firing [high] monitor resource-id field from -> to: summary
 * A body that does not parse still prints one line (with page_id).
 */
void sinks_console_print(FILE *out, const char *page_id, const char *body, size_t body_len);

/* ---- one configured sink ---- */

enum sink_type {
    SINK_WEBHOOK,
    SINK_SLACK,
    SINK_ALERTMANAGER,
    SINK_KAFKA,
    SINK_CONSOLE,
    SINK_TEAMS,
    SINK_EMAIL,
    SINK_PAGERDUTY,
};

enum sinks_starttls { SINKS_STARTTLS_REQUIRED = 0, SINKS_STARTTLS_OPTIONAL, SINKS_STARTTLS_NEVER };

struct sink_kafka; /* sinks_kafka.c: a producer and its worker thread */

struct sink {
    char *name;
    enum sink_type type;
    int max_attempts;
    int64_t max_age_ms;
    /* HTTP sinks */
    char *url;      /* webhook/alertmanager endpoint; slack: webhook_url or api base */
    bool slack_bot; /* slack: token + channel (chat.postMessage) */
    char *token;    /* slack bot token */
    char *channel;
    char **hdr_lines; /* "Name: value" sent on every request */
    size_t n_hdr;
    bool json_body; /* the request body is JSON (Content-Type) */
    char **secrets; /* strings that must never reach a message (url parts, token) */
    size_t n_secrets;
    long timeout_ms;
    long connect_ms;
    char *ca_file;
    char *client_cert;
    char *client_key;
    char *proxy;
    char *console_url;
    /* webhook */
    bool fmt_alertmanager;
    struct sinks_tpl *tpl;
    struct sinks_sign_key *keys;
    size_t n_keys;
    /* email: envelope, headers, SMTP AUTH */
    char *mail_from;
    char *mail_domain; /* the From address's domain: the right side of each Message-ID */
    char **mail_to;
    size_t n_mail_to;
    char **mail_cc;
    size_t n_mail_cc;
    void *mail_rcpt; /* struct curl_slist *: "<addr>" for every To and Cc */
    char *username;
    char *password;
    enum sinks_starttls starttls;
    /* pagerduty */
    char *routing_key;
    /* kafka */
    char *topic;
    char *brokers;
    struct vg_kv *props;
    size_t n_props;
    struct sink_kafka *kafka;
    /* the synchronous vg_sinks_deliver path: one reused easy handle */
    void *sync_easy;
    int64_t last_retry_after_ms;

    /* policy and counters: written by the dispatcher thread, read by others under sk->mu */
    struct sinks_bucket bucket;
    struct sinks_breaker breaker;
    int64_t pause_until; /* Retry-After on the whole sink */
    bool disabled;       /* HTTP 410: until vg_sinks_reset */
    int in_flight;
    int64_t delivered, failed, given_up;
    long last_status;
    char last_error[256];
};

struct vg_sinks {
    struct sink *v;
    size_t n;
    FILE *console_out;  /* borrowed */
    pthread_mutex_t mu; /* guards the policy fields for readers on other threads */
    void *multi;        /* CURLM * */
    void *xfers;        /* in-flight transfers (sinks_http.c) */
    /* libcurl's multi interface failed (a CURLMcode, 0: fine): finish what is in flight, rebuild */
    int multi_err;
    const char *multi_call; /* the multi call that failed */
    /* dispatcher thread: a multi failure streak, logged once; the back-off before the next poll */
    bool multi_failing;
    int multi_backoff_ms;
    /* completions not from libcurl (console, kafka), under mu */
    struct vg_sink_result *done;
    size_t n_done;
    size_t cap_done;
    char *kafka_bootstraps; /* default brokers for kafka sinks */
    struct vg_kv *kafka_props;
    size_t n_kafka_props;
};

struct sink *sinks_find(const struct vg_sinks *sk, const char *name);
/* Remember `v` as a secret of `s` (copied); strings under 3 bytes are not secrets. */
void sinks_add_secret(struct sink *s, const char *v);
/* Queue a finished result (console, kafka) for the next vg_sinks_poll; wakes it. */
void sinks_push_done(struct vg_sinks *sk, const struct vg_sink_result *r);

/* ---- HTTP sinks on libcurl (sinks_http.c) ---- */

/* Set up the multi handle. VG_ERR_FATAL when libcurl refuses. */
vg_err_t sinks_http_init(struct vg_sinks *sk);
void sinks_http_fini(struct vg_sinks *sk);
/* Validate an HTTP sink's config (webhook, slack, alertmanager) into `s`. */
vg_err_t sinks_http_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                          size_t errstr_size);
/*
 * An http(s) url with a host, parsed as libcurl will request it; its path,
 * query and credentials become secrets of `s`. `key` names the config key.
 */
vg_err_t sinks_http_check_url(struct sink *s, const char *key, const char *url, char *errstr,
                              size_t errstr_size);
/*
 * Start one attempt. When libcurl's multi handle refuses it, the attempt
 * still counts as started and finishes in the next sinks_http_poll as a
 * retriable failure (VG_ERR_BACKEND), so the dispatcher retries it.
 */
vg_err_t sinks_http_start(struct vg_sinks *sk, struct sink *s, const struct vg_sink_job *job,
                          char *errstr, size_t errstr_size);
/*
 * Run libcurl up to timeout_ms; append finished results to `out` and set
 * *n_out. VG_ERR_BACKEND (errstr says which call and why) when libcurl's
 * multi interface failed: the attempts in flight are then finished as
 * retriable failures in `out` (as many as fit; the rest on the next call)
 * and the multi handle is rebuilt once none is left. The caller logs and
 * backs off.
 */
vg_err_t sinks_http_poll(struct vg_sinks *sk, int timeout_ms, struct vg_sink_result *out,
                         size_t max, size_t *n_out, char *errstr, size_t errstr_size);
void sinks_http_wakeup(struct vg_sinks *sk);
/* One blocking attempt on the sink's own handle (the vg_sinks_deliver contract). */
vg_err_t sinks_http_deliver_sync(struct vg_sinks *sk, struct sink *s, const char *page_id,
                                 const char *body, size_t body_len, char *errstr,
                                 size_t errstr_size);
void sinks_http_sink_fini(struct sink *s);

/* ---- Slack (sinks_slack.c): Block Kit messages, the Web API and incoming webhooks ---- */

/*
 * Slack message JSON. `channel` (bot mode) NULL for an incoming webhook.
 * `update_ts`: chat.update of that message. `thread_ts`: a reply in its thread.
 */
char *sinks_slack_render(const struct sinks_notice *nt, const char *channel, const char *update_ts,
                         const char *thread_ts, const char *console_url);
/* Pick the mode (token + channel: Web API; else webhook_url) and check its url. */
vg_err_t sinks_slack_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                           size_t errstr_size);
/*
 * The url and body (both new heap strings) of request `step` of a notice:
 * chat.postMessage, or with `memo` ("CHANNEL TS" of the incident's first
 * message) and a status other than firing: chat.update (step 0), then a
 * reply in its thread (step 1). An incoming webhook always posts.
 */
void sinks_slack_request(const struct sink *s, const struct sinks_notice *nt, const char *memo,
                         int step, char **url, char **body);
/* After request `step` of the page `src` succeeded: does another request follow? */
bool sinks_slack_has_next(const struct sink *s, const char *src, size_t src_len, const char *memo,
                          int step);

/* ---- answers (sinks_response.c): pure, fuzzed ---- */
/*
 * A Retry-After value (RFC 9110 10.2.3): delta-seconds or an HTTP-date,
 * as milliseconds from `now`, capped at SINKS_RETRY_AFTER_MAX_MS (a date
 * in the past is 0). -1 when malformed.
 */
int64_t sinks_retry_after_ms(const char *value, time_t now);
/*
 * The start of a response body for a dead letter: at most dst_size - 1
 * bytes of resp[0..resp_len) (not NUL-terminated), control characters
 * other than newline and tab as spaces, never ending inside a UTF-8
 * sequence that was cut. `dst` is NUL-terminated; dst_size > 0.
 */
void sinks_response_excerpt(char *dst, size_t dst_size, const char *resp, size_t resp_len);
/* Replace any configured secret in `s` with "<redacted>" (in place). */
void sinks_scrub(const struct sink *s, char *msg, size_t msg_size);
/*
 * A Web API answer with a 2xx status: {"ok": false, "error": ...} still
 * fails `r` (BACKEND for Slack's transient errors, else REJECTED); a first
 * message that worked leaves *new_memo "CHANNEL TS" (when `have_memo` is
 * false). Does nothing for other sinks.
 */
void sinks_slack_answer(const struct sink *s, const char *resp, size_t resp_len, bool have_memo,
                        struct vg_sink_result *r, char **new_memo);
/* A chat.update of a message that is gone or too old: go on with the thread reply. */
bool sinks_slack_update_skippable(const struct sink *s, int step, const char *memo,
                                  const struct vg_sink_result *r);

/* ---- helpers the chat and mail renderers share (sinks_teams.c) ---- */

/* "<console_url>/resources/<resource id, percent-encoded>", or NULL without console_url. */
char *sinks_console_link(const char *console_url, const char *resource_id);
/* "<console_url>/incidents" (the console's incident list), NULL without a console_url. */
char *sinks_console_incidents_link(const char *console_url);
/* "#RRGGBB" of a notice: by severity while firing, else by how it ended (Slack's palette). */
const char *sinks_status_color(const char *status, const char *severity);
/* "2026-11-28 10:00:00 UTC" from an RFC 3339 time; the input as it is when it does not parse. */
void sinks_human_time(char *dst, size_t dst_size, const char *rfc3339);
/* "HIGH", "RESOLVED"...: the severity while firing, else the status, upper case. */
void sinks_status_word(char *dst, size_t dst_size, const char *status, const char *severity);

/* ---- Microsoft Teams (sinks_teams.c): an Adaptive Card to a Workflows webhook ---- */

#define SINKS_TEAMS_MAX_BYTES (28 * 1024) /* Teams refuses messages over 28 KB */

/* Check the url (a secret: every part of it). */
vg_err_t sinks_teams_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                           size_t errstr_size);
/* The message: one Adaptive Card, at most SINKS_TEAMS_MAX_BYTES. New heap string. */
char *sinks_teams_render(const struct sinks_notice *nt, const char *console_url);
/*
 * A 2xx answer from a legacy Office 365 connector may still carry the
 * failure in its body ("... returned HTTP error 429 ..."): classify that
 * into `r` (408/429/5xx: BACKEND, else REJECTED). Does nothing otherwise.
 */
void sinks_teams_answer(const struct sink *s, const char *resp, size_t resp_len,
                        struct vg_sink_result *r);

/* ---- PagerDuty (sinks_pagerduty.c): Events API v2 ---- */

/* routing_key (a secret) and the url (default https://events.pagerduty.com/v2/enqueue). */
vg_err_t sinks_pagerduty_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                               size_t errstr_size);
/*
 * The event of request `step`: the notice's incident number `step` (a
 * grouped page sends one event per incident), "trigger" while firing, else
 * "resolve"; dedup_key is the incident id. New heap string.
 */
char *sinks_pagerduty_render(const struct sink *s, const struct sinks_notice *nt, int step);
/* After request `step` of the page `src` succeeded: does another incident follow? */
bool sinks_pagerduty_has_next(const struct sink *s, const char *src, size_t src_len, int step);

/* ---- email (sinks_email.c): SMTP through libcurl ---- */

/* What libcurl's read callback sends of a message. */
struct sinks_upload {
    const char *data;
    size_t len;
    size_t off;
};
/* url smtp(s)://, from, to, cc, username/password (secrets), starttls. */
vg_err_t sinks_email_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                           size_t errstr_size);
/*
 * The message (RFC 5322, CRLF lines, multipart/alternative text + HTML,
 * quoted-printable) for notification `id`; `now_s` is its Date. Message-ID
 * derives from `id`; a notice after an incident's first one carries
 * In-Reply-To/References to the first's. New heap string.
 */
char *sinks_email_render(const struct sink *s, const struct sinks_notice *nt, const char *id,
                         int64_t now_s);
/* The options every SMTP request of `s` shares (`easy` is a CURL *). False when refused. */
bool sinks_email_setup(void *easy, const struct sink *s);
/* Point `easy` (CURL *) at message `data` for the next transfer; `up` must outlive it. */
void sinks_email_arm(void *easy, struct sinks_upload *up, const char *data, size_t len);
/*
 * Classify a finished SMTP transfer (`code` a CURLcode, `reply` the last
 * SMTP reply code): 4xx and connection trouble BACKEND (TIMEOUT for
 * timeouts), 5xx, refused AUTH and a missing STARTTLS REJECTED.
 */
void sinks_email_classify(const struct sink *s, int code, long reply, const char *errbuf,
                          struct vg_sink_result *r);
void sinks_email_sink_fini(struct sink *s);

/* sinks_kafka.c */
vg_err_t sinks_kafka_start(struct vg_sinks *sk, struct sink *s, const struct vg_sink_job *job,
                           char *errstr, size_t errstr_size);
void sinks_kafka_destroy(struct sink_kafka *k);

/*
 * How a notice looks in the chat sinks (Slack, Teams) and email: by its end
 * (resolved, stale, deleted) or else by severity (unknown: as info).
 */
struct sinks_look {
    const char *severity;
    const char *emoji;      /* Slack */
    const char *color;      /* Slack attachments, email */
    const char *card_style; /* Adaptive Card container style */
};
const struct sinks_look *sinks_look_of(const char *status, const char *severity);

#endif
