/*
 * The libcurl sinks (webhook, slack, alertmanager, teams, pagerduty over
 * HTTP; email over SMTP, its specifics in sinks_email.c). One multi
 * handle runs every attempt concurrently and keeps the connections alive
 * between them; each sink also owns one easy handle for the blocking
 * vg_sinks_deliver path. Here: validating a sink's URL and headers,
 * rendering each request (webhook body, template or Alertmanager format,
 * Standard Webhooks headers; the Alertmanager alerts API; Slack's requests
 * come from sinks_slack.c), and turning each answer into a vg_sink_result.
 * A failure of libcurl's multi interface finishes the attempts in flight
 * as retriable failures and rebuilds the handle. URLs come from config
 * only. Redirects are never followed. Secrets (URL paths, tokens) never
 * reach a message.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sinks_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif

struct xfer {
    CURL *easy;
    struct sink *s;
    uint64_t tag;
    int step; /* index in the sink's steps for this notice */
    char *id;
    char *pager;
    char *src; /* the page body as stored */
    size_t src_len;
    char *memo; /* "CHANNEL TS" */
    char *url;  /* this request's URL (owned) */
    char *body; /* this request's body (owned) */
    size_t body_len;
    struct curl_slist *hdrs;
    struct vg_buf resp;
    struct sinks_upload up; /* email: the message libcurl reads */
    bool overflow;
    int64_t t0;
    char *new_memo;
    char errbuf[CURL_ERROR_SIZE];
    bool added; /* in the multi handle */
    struct xfer *next;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool sinks_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK;
}

/* ---------------------------------------------------------------- setup */

/* The headers vigil owns: configuring them would break idempotency, signing or framing. */
static const char *const reserved_headers[] = {
    "Idempotency-Key", "webhook-id", "webhook-timestamp", "webhook-signature",
    "Content-Length",  "Host",       "Transfer-Encoding", "Connection",
    "Expect",          NULL,
};

static bool is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s)) {
            return false;
        }
    }
    return true;
}

static bool is_field_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static void add_line(struct sink *s, char *line)
{
    s->hdr_lines = vg_realloc(s->hdr_lines, (s->n_hdr + 1) * sizeof(char *));
    s->hdr_lines[s->n_hdr++] = line;
}

/*
 * Parse `url` with libcurl's own parser (so we accept exactly what it will
 * request): http(s) with a host. Remember the parts that may carry secrets.
 */
vg_err_t sinks_http_check_url(struct sink *s, const char *key, const char *url, char *errstr,
                              size_t errstr_size)
{
    static const CURLUPart secret_parts[] = {CURLUPART_PATH, CURLUPART_QUERY, CURLUPART_USER,
                                             CURLUPART_PASSWORD, CURLUPART_FRAGMENT};
    char redacted[512];
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    const char *sep = strstr(url, "://");
    vg_err_t err = VG_OK;

    if (!u) {
        vg_oom("curl_url");
    }
    vg_redact_url(url, redacted, sizeof(redacted));
    /* libcurl reads "https:///x" as host "x"; a url that odd is a typo, not a webhook. */
    if (!sep || sep[3] == '/' || sep[3] == '\0' ||
        curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(errstr, errstr_size, "sink %s: %s \"%s\" is not a valid http(s) url", s->name, key,
                 redacted);
        err = VG_ERR_INVALID;
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(errstr, errstr_size, "sink %s: %s \"%s\" must use http or https", s->name, key,
                 redacted);
        err = VG_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(secret_parts); i++) {
        char *part = NULL;
        if (curl_url_get(u, secret_parts[i], &part, 0) == CURLUE_OK && part) {
            sinks_add_secret(s, part);
            curl_free(part);
        }
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return err;
}

static vg_err_t build_headers(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                              size_t errstr_size)
{
    bool have_ct = false;

    for (size_t i = 0; i < cfg->n_headers; i++) {
        const struct vg_kv *kv = &cfg->headers[i];
        if (!kv->key || !is_token(kv->key)) {
            snprintf(errstr, errstr_size, "sink %s: header name \"%s\" is not an HTTP token",
                     cfg->name, kv->key ? kv->key : "");
            return VG_ERR_INVALID;
        }
        for (const char *const *r = reserved_headers; *r; r++) {
            if (strcasecmp(kv->key, *r) == 0) {
                snprintf(errstr, errstr_size, "sink %s: header %s is set by vigil", cfg->name,
                         kv->key);
                return VG_ERR_INVALID;
            }
        }
        /* The value may hold a token: say which header, never what is in it. */
        if (!kv->value || !is_field_value(kv->value)) {
            snprintf(errstr, errstr_size, "sink %s: header %s: value has control characters",
                     cfg->name, kv->key);
            return VG_ERR_INVALID;
        }
        if (strcasecmp(kv->key, "Content-Type") == 0) {
            have_ct = true;
            s->json_body = strstr(kv->value, "json") != NULL;
        }
        /* libcurl: "Name:" would delete the header, "Name;" sends it empty. */
        add_line(s, kv->value[0] ? vg_asprintf("%s: %s", kv->key, kv->value)
                                 : vg_asprintf("%s;", kv->key));
        if (strlen(kv->value) >= 8) {
            sinks_add_secret(s, kv->value); /* an Authorization value is a secret too */
        }
    }
    if (!have_ct) {
        add_line(s,
                 vg_strdup(s->type == SINK_SLACK ? "Content-Type: application/json; charset=utf-8"
                                                 : "Content-Type: application/json"));
        s->json_body = true;
    }
    /* No 100-continue round trip (a second of stall with receivers that ignore it). */
    add_line(s, vg_strdup("Expect:"));
    return VG_OK;
}

vg_err_t sinks_http_check(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                          size_t errstr_size)
{
    vg_err_t err;

    if (cfg->timeout_ms < 0 || cfg->connect_timeout_ms < 0 || cfg->timeout_ms > 3600000 ||
        cfg->connect_timeout_ms > 3600000) {
        snprintf(errstr, errstr_size, "sink %s: timeouts must be between 0 and 1h", cfg->name);
        return VG_ERR_INVALID;
    }
    s->timeout_ms = cfg->timeout_ms > 0 ? (long)cfg->timeout_ms : SINKS_DEFAULT_TIMEOUT_MS;
    s->connect_ms = cfg->connect_timeout_ms > 0 ? (long)cfg->connect_timeout_ms
                                                : SINKS_DEFAULT_CONNECT_TIMEOUT_MS;
    s->ca_file = cfg->ca_file ? vg_strdup(cfg->ca_file) : NULL;
    s->client_cert = cfg->client_cert ? vg_strdup(cfg->client_cert) : NULL;
    s->client_key = cfg->client_key ? vg_strdup(cfg->client_key) : NULL;
    s->proxy = cfg->proxy ? vg_strdup(cfg->proxy) : NULL;
    s->console_url = cfg->console_url ? vg_strdup(cfg->console_url) : NULL;
    if (s->proxy) {
        sinks_add_secret(s, s->proxy);
    }
    switch (s->type) {
    case SINK_WEBHOOK:
    case SINK_ALERTMANAGER:
        if (!cfg->url || !cfg->url[0]) {
            snprintf(errstr, errstr_size, "sink %s: %s needs a url", cfg->name,
                     s->type == SINK_WEBHOOK ? "webhook" : "alertmanager");
            return VG_ERR_INVALID;
        }
        err = sinks_http_check_url(s, "url", cfg->url, errstr, errstr_size);
        if (err) {
            return err;
        }
        if (s->type == SINK_ALERTMANAGER) {
            size_t n = strlen(cfg->url);
            const char *api = "/api/v2/alerts";
            if (n >= strlen(api) && !strcmp(cfg->url + n - strlen(api), api)) {
                s->url = vg_strdup(cfg->url);
            } else {
                s->url = vg_asprintf("%.*s%s", (int)(n && cfg->url[n - 1] == '/' ? n - 1 : n),
                                     cfg->url, api);
            }
        } else {
            s->url = vg_strdup(cfg->url);
        }
        break;
    case SINK_SLACK:
        err = sinks_slack_check(s, cfg, errstr, errstr_size);
        if (err) {
            return err;
        }
        break;
    case SINK_TEAMS:
        err = sinks_teams_check(s, cfg, errstr, errstr_size);
        if (err) {
            return err;
        }
        break;
    case SINK_PAGERDUTY:
        err = sinks_pagerduty_check(s, cfg, errstr, errstr_size);
        if (err) {
            return err;
        }
        break;
    case SINK_EMAIL:
        if (cfg->n_headers > 0 || cfg->n_secrets > 0 || cfg->template || cfg->format) {
            snprintf(errstr, errstr_size,
                     "sink %s: headers, secret, template and format do not apply to email",
                     cfg->name);
            return VG_ERR_INVALID;
        }
        return sinks_email_check(s, cfg, errstr, errstr_size);
    default:
        break;
    }
    err = build_headers(s, cfg, errstr, errstr_size);
    if (err) {
        return err;
    }
    if (s->slack_bot) {
        char *auth = vg_asprintf("Authorization: Bearer %s", s->token);
        if (!is_field_value(s->token)) {
            vg_free(auth);
            snprintf(errstr, errstr_size, "sink %s: token has control characters", cfg->name);
            return VG_ERR_INVALID;
        }
        add_line(s, auth);
    }
    if (s->type == SINK_WEBHOOK) {
        if (cfg->format && !strcmp(cfg->format, "alertmanager")) {
            s->fmt_alertmanager = true;
        }
        if (cfg->template) {
            if (s->fmt_alertmanager) {
                snprintf(errstr, errstr_size,
                         "sink %s: template and format: alertmanager "
                         "exclude each other",
                         cfg->name);
                return VG_ERR_INVALID;
            }
            err = sinks_tpl_compile(&s->tpl, cfg->name, cfg->template, errstr, errstr_size);
            if (err) {
                return err;
            }
        }
        if (cfg->n_secrets > 0) {
            s->keys = vg_calloc(cfg->n_secrets, sizeof(*s->keys));
            for (size_t i = 0; i < cfg->n_secrets; i++) {
                char why[128];
                sinks_add_secret(s, cfg->secrets[i]);
                if (sinks_sign_key_parse(&s->keys[i], cfg->secrets[i], why, sizeof(why)) != VG_OK) {
                    snprintf(errstr, errstr_size, "sink %s: %s", cfg->name, why);
                    return VG_ERR_INVALID;
                }
                s->n_keys++;
            }
        }
    } else if (cfg->n_secrets > 0 || cfg->template || cfg->format) {
        snprintf(errstr, errstr_size, "sink %s: secret, template and format apply to webhooks only",
                 cfg->name);
        return VG_ERR_INVALID;
    }
    return VG_OK;
}

void sinks_http_sink_fini(struct sink *s)
{
    if (s->sync_easy) {
        curl_easy_cleanup(s->sync_easy);
        s->sync_easy = NULL;
    }
    for (size_t i = 0; i < s->n_hdr; i++) {
        vg_free(s->hdr_lines[i]);
    }
    vg_free(s->hdr_lines);
    for (size_t i = 0; i < s->n_secrets; i++) {
        vg_free(s->secrets[i]);
    }
    vg_free(s->secrets);
    for (size_t i = 0; i < s->n_keys; i++) {
        sinks_sign_key_fini(&s->keys[i]);
    }
    vg_free(s->keys);
    sinks_tpl_destroy(s->tpl);
    vg_free(s->url);
    vg_free(s->token);
    vg_free(s->channel);
    vg_free(s->ca_file);
    vg_free(s->client_cert);
    vg_free(s->client_key);
    vg_free(s->proxy);
    vg_free(s->console_url);
    sinks_email_sink_fini(s);
    vg_free(s->routing_key);
}

/* ---------------------------------------------------------------- requests */

static bool valid_page_id(const char *id)
{
    if (!id || !id[0] || strlen(id) > 256) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* libcurl copies the string; NULL means it could not allocate. */
static struct curl_slist *slist_add(struct curl_slist *list, const char *line)
{
    struct curl_slist *next = curl_slist_append(list, line);

    if (!next) {
        vg_oom("curl_slist_append");
    }
    return next;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct xfer *x = opaque;
    size_t n = size * nmemb;

    if (x->resp.len + n > SINKS_MAX_RESPONSE_BYTES) {
        x->overflow = true;
        return 0; /* CURLE_WRITE_ERROR; the status line has been read by now */
    }
    vg_buf_append(&x->resp, ptr, n);
    return n;
}

/*
 * Render the request of `x` at x->step: x->url, x->body, x->hdrs.
 * VG_ERR_INVALID when the page cannot be rendered for this sink.
 */
static vg_err_t render(struct xfer *x, char *errstr, size_t errstr_size)
{
    struct sink *s = x->s;
    struct sinks_notice nt;
    char why[128];
    bool need_notice = s->type != SINK_WEBHOOK || s->tpl || s->fmt_alertmanager;
    vg_err_t err = VG_OK;

    vg_free(x->url);
    vg_free(x->body);
    x->url = NULL;
    x->body = NULL;
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    memset(&nt, 0, sizeof(nt));
    if (need_notice && sinks_notice_parse(&nt, x->src, x->src_len, why, sizeof(why)) != VG_OK) {
        snprintf(errstr, errstr_size, "sink %s: %s", s->name, why);
        return VG_ERR_INVALID;
    }
    for (size_t i = 0; i < s->n_hdr; i++) {
        x->hdrs = slist_add(x->hdrs, s->hdr_lines[i]);
    }
    switch (s->type) {
    case SINK_WEBHOOK: {
        char *line;
        int64_t ts = (int64_t)time(NULL);

        if (s->fmt_alertmanager) {
            x->body = sinks_render_am_webhook(&nt, s->name, x->pager, s->console_url);
        } else if (s->tpl) {
            x->body = sinks_tpl_render(s->tpl, &nt, x->id, s->name, s->json_body);
        } else {
            x->body = vg_strndup(x->src, x->src_len);
        }
        x->body_len = strlen(x->body);
        if (!s->tpl && !s->fmt_alertmanager) {
            x->body_len = x->src_len; /* byte for byte what the outbox holds */
        }
        x->url = vg_strdup(s->url);
        /* Idempotency-Key (IETF draft) and webhook-id (Standard Webhooks): the same on every retry.
         */
        line = vg_asprintf("Idempotency-Key: %s", x->id);
        x->hdrs = slist_add(x->hdrs, line);
        vg_free(line);
        line = vg_asprintf("webhook-id: %s", x->id);
        x->hdrs = slist_add(x->hdrs, line);
        vg_free(line);
        /* webhook-timestamp: per attempt, so receivers can reject replays. */
        line = vg_asprintf("webhook-timestamp: %lld", (long long)ts);
        x->hdrs = slist_add(x->hdrs, line);
        vg_free(line);
        if (s->n_keys > 0) {
            char *sig = sinks_sign_header(s->keys, s->n_keys, x->id, ts, x->body, x->body_len);
            line = vg_asprintf("webhook-signature: %s", sig);
            x->hdrs = slist_add(x->hdrs, line);
            vg_free(line);
            vg_free(sig);
        }
        break;
    }
    case SINK_ALERTMANAGER: {
        char *line = vg_asprintf("Idempotency-Key: %s", x->id);
        x->hdrs = slist_add(x->hdrs, line);
        vg_free(line);
        x->body = sinks_render_am_alerts(&nt, x->pager, s->console_url);
        x->body_len = strlen(x->body);
        x->url = vg_strdup(s->url);
        break;
    }
    case SINK_SLACK:
        sinks_slack_request(s, &nt, x->memo, x->step, &x->url, &x->body);
        x->body_len = strlen(x->body);
        break;
    case SINK_TEAMS:
        x->body = sinks_teams_render(&nt, s->console_url);
        x->body_len = strlen(x->body);
        x->url = vg_strdup(s->url);
        break;
    case SINK_PAGERDUTY:
        x->body = sinks_pagerduty_render(s, &nt, x->step);
        x->body_len = strlen(x->body);
        x->url = vg_strdup(s->url);
        break;
    case SINK_EMAIL:
        x->body = sinks_email_render(s, &nt, x->id, (int64_t)time(NULL));
        x->body_len = strlen(x->body);
        x->url = vg_strdup(s->url);
        break;
    default:
        err = VG_ERR_INVALID;
        snprintf(errstr, errstr_size, "sink %s: not an HTTP sink", s->name);
        break;
    }
    if (need_notice) {
        sinks_notice_fini(&nt);
    }
    return err;
}

/* Options every request of `s` shares. */
static bool setup_easy(CURL *e, const struct sink *s)
{
    bool ok = true;

    if (s->type == SINK_EMAIL) {
        return sinks_email_setup(e, s);
    }
    ok = ok && curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK;
    /* A redirect is a misconfigured url: following it would POST our body somewhere unreviewed. */
    ok = ok && curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    /* A threaded daemon: no SIGALRM-based DNS timeouts. */
    ok = ok && curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    /* Proxies come from config only, never from http_proxy in the environment. */
    ok = ok && curl_easy_setopt(e, CURLOPT_PROXY, s->proxy ? s->proxy : "") == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_USERAGENT, "vigil/" VIGIL_VERSION) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    if (s->ca_file) {
        ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file) == CURLE_OK;
    }
    if (s->client_cert) {
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLCERT, s->client_cert) == CURLE_OK;
    }
    if (s->client_key) {
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLKEY, s->client_key) == CURLE_OK;
    }
    return ok;
}

static void arm(struct xfer *x)
{
    CURL *e = x->easy;

    x->errbuf[0] = '\0';
    vg_buf_reset(&x->resp);
    x->overflow = false;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (x->s->type == SINK_EMAIL) {
        sinks_email_arm(e, &x->up, x->body, x->body_len);
        return;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    /* Never NULL: with POST and no POSTFIELDS libcurl would read the body from stdin. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
}

static void xfer_free(struct xfer *x)
{
    if (!x) {
        return;
    }
    vg_free(x->id);
    vg_free(x->pager);
    vg_free(x->src);
    vg_free(x->memo);
    vg_free(x->url);
    vg_free(x->body);
    vg_free(x->new_memo);
    curl_slist_free_all(x->hdrs);
    vg_buf_fini(&x->resp);
    vg_free(x);
}

static struct xfer *xfer_new(struct sink *s, const char *id, const char *pager, const char *body,
                             size_t body_len, const char *memo)
{
    struct xfer *x = vg_calloc(1, sizeof(*x));

    x->s = s;
    x->id = vg_strdup(id);
    x->pager = pager ? vg_strdup(pager) : NULL;
    x->src = vg_malloc(body_len + 1);
    memcpy(x->src, body ? body : "", body_len);
    x->src[body_len] = '\0';
    x->src_len = body_len;
    x->memo = memo ? vg_strdup(memo) : NULL;
    return x;
}

/* ---------------------------------------------------------------- outcomes */

/* The Retry-After header of the answer on `e`: sinks_retry_after_ms; -1 when absent. */
static int64_t read_retry_after(CURL *e)
{
    struct curl_header *h = NULL;

    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h ||
        !h->value) {
        return -1;
    }
    return sinks_retry_after_ms(h->value, time(NULL));
}

/*
 * Classify a finished request into r. For Slack's Web API an HTTP 200 may
 * still be a failure (sinks_slack_answer), and a first message that worked
 * yields the memo "CHANNEL TS".
 */
static void classify(struct xfer *x, CURLcode code, struct vg_sink_result *r)
{
    struct sink *s = x->s;
    long status = 0;

    r->retry_after_ms = -1;
    if (s->type == SINK_EMAIL) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        sinks_email_classify(s, (int)code, status, x->errbuf, r);
        return;
    }
    if (!(code == CURLE_OK || (code == CURLE_WRITE_ERROR && x->overflow))) {
        r->err = code == CURLE_OPERATION_TIMEDOUT ? VG_ERR_TIMEOUT : VG_ERR_BACKEND;
        snprintf(r->detail, sizeof(r->detail), "sink %s: %s", s->name,
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
        sinks_scrub(s, r->detail, sizeof(r->detail));
        return;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    r->retry_after_ms = read_retry_after(x->easy);
    r->err = sinks_classify_status(status);
    sinks_response_excerpt(r->response, sizeof(r->response), x->resp.data, x->resp.len);
    sinks_scrub(s, r->response, sizeof(r->response));
    if (r->err == VG_OK) {
        sinks_slack_answer(s, x->resp.data, x->resp.len, x->memo != NULL, r, &x->new_memo);
        sinks_teams_answer(s, x->resp.data, x->resp.len, r);
        return;
    }
    if (status >= 300 && status < 400) {
        snprintf(r->detail, sizeof(r->detail), "sink %s: HTTP %ld: redirect not followed", s->name,
                 status);
    } else if (r->retry_after_ms >= 0) {
        snprintf(r->detail, sizeof(r->detail), "sink %s: HTTP %ld (Retry-After %lld s)", s->name,
                 status, (long long)(r->retry_after_ms / 1000));
    } else if (s->type == SINK_SLACK && r->response[0] && strlen(r->response) < 100) {
        /* Slack's incoming webhooks answer a reason word: invalid_payload, channel_not_found... */
        snprintf(r->detail, sizeof(r->detail), "sink %s: HTTP %ld: %.100s", s->name, status,
                 r->response);
    } else {
        snprintf(r->detail, sizeof(r->detail), "sink %s: HTTP %ld", s->name, status);
    }
}

/* ---------------------------------------------------------------- the multi engine */

/*
 * libcurl's multi interface failed: remember the first failure. The next
 * sinks_http_poll finishes what is in flight as retriable failures and
 * rebuilds the handle; until then nothing new is added to it.
 */
static void multi_failed(struct vg_sinks *sk, const char *call, CURLMcode mc)
{
    if (sk->multi_err == CURLM_OK) {
        sk->multi_err = (int)mc;
        sk->multi_call = call;
    }
}

static CURLMcode multi_open(CURLM **out)
{
    CURLM *m = curl_multi_init();
    CURLMcode mc;

    if (!m) {
        vg_oom("curl_multi_init");
    }
    /* Per host as many connections as attempts may be in flight to one sink. */
    mc = curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)SINKS_MAX_IN_FLIGHT);
    if (mc != CURLM_OK) {
        curl_multi_cleanup(m);
        return mc;
    }
    *out = m;
    return CURLM_OK;
}

static void attach(struct vg_sinks *sk, struct xfer *x)
{
    CURLMcode mc;

    if (sk->multi_err != CURLM_OK) {
        return; /* not added: finished as a failure by the next poll */
    }
    mc = curl_multi_add_handle(sk->multi, x->easy);
    if (mc != CURLM_OK) {
        multi_failed(sk, "curl_multi_add_handle", mc);
        return;
    }
    x->added = true;
}

static void detach(struct vg_sinks *sk, struct xfer *x)
{
    CURLMcode mc;

    if (!x->added) {
        return;
    }
    x->added = false;
    mc = curl_multi_remove_handle(sk->multi, x->easy);
    if (mc != CURLM_OK) {
        multi_failed(sk, "curl_multi_remove_handle", mc);
    }
}

vg_err_t sinks_http_init(struct vg_sinks *sk)
{
    CURLM *m = NULL;

    sk->multi = NULL;
    sk->xfers = NULL;
    sk->multi_err = CURLM_OK;
    if (multi_open(&m) != CURLM_OK) {
        return VG_ERR_FATAL;
    }
    sk->multi = m;
    return VG_OK;
}

static void unlink_xfer(struct vg_sinks *sk, struct xfer *x)
{
    for (struct xfer **pp = (struct xfer **)&sk->xfers; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            return;
        }
    }
}

static void xfer_destroy(struct vg_sinks *sk, struct xfer *x)
{
    detach(sk, x);
    curl_easy_cleanup(x->easy);
    unlink_xfer(sk, x);
    xfer_free(x);
}

void sinks_http_fini(struct vg_sinks *sk)
{
    while (sk->xfers) {
        xfer_destroy(sk, sk->xfers);
    }
    if (sk->multi) {
        curl_multi_cleanup(sk->multi);
        sk->multi = NULL;
    }
}

vg_err_t sinks_http_start(struct vg_sinks *sk, struct sink *s, const struct vg_sink_job *job,
                          char *errstr, size_t errstr_size)
{
    struct xfer *x;
    vg_err_t err;

    if (!valid_page_id(job->id)) {
        snprintf(errstr, errstr_size, "sink %s: page id is empty or has control characters",
                 s->name);
        return VG_ERR_INVALID;
    }
    x = xfer_new(s, job->id, job->pager, job->body, job->body_len, job->memo);
    x->tag = job->tag;
    x->step = job->step;
    err = render(x, errstr, errstr_size);
    if (err) {
        xfer_free(x);
        return err;
    }
    x->easy = curl_easy_init();
    if (!x->easy) {
        vg_oom("curl_easy_init");
    }
    if (!setup_easy(x->easy, s)) {
        snprintf(errstr, errstr_size, "sink %s: libcurl rejected an option", s->name);
        curl_easy_cleanup(x->easy);
        xfer_free(x);
        return VG_ERR_INVALID;
    }
    arm(x);
    x->t0 = vg_mono_ms();
    x->next = sk->xfers;
    sk->xfers = x;
    /* Refused by the multi handle: not the page's fault, so a failed attempt (retried), not an
     * error here (the dispatcher gives up on those). */
    attach(sk, x);
    return VG_OK;
}

/*
 * A Slack notice that takes two requests (chat.update, then the reply in
 * the thread): after the first succeeds, start the second on the same
 * transfer. Returns true when the transfer goes on (if the multi handle
 * refuses it, it finishes as a failure at that step).
 */
static bool next_request(struct vg_sinks *sk, struct xfer *x)
{
    char why[128];

    if (!sinks_slack_has_next(x->s, x->src, x->src_len, x->memo, x->step) &&
        !sinks_pagerduty_has_next(x->s, x->src, x->src_len, x->step)) {
        return false;
    }
    x->step++;
    if (render(x, why, sizeof(why)) != VG_OK) {
        return false;
    }
    detach(sk, x);
    arm(x);
    attach(sk, x);
    return true;
}

/* Hand the finished transfer's result to the caller and free the transfer. */
static void finish(struct vg_sinks *sk, struct xfer *x, struct vg_sink_result *r)
{
    r->tag = x->tag;
    snprintf(r->sink, sizeof(r->sink), "%s", x->s->name);
    r->latency_ms = vg_mono_ms() - x->t0;
    r->next_step = r->err == VG_OK ? 0 : x->step;
    r->memo = x->new_memo;
    x->new_memo = NULL;
    VG_LOG_DEBUG("sinks", "sink=%s page=%s status=%ld result=%s latency_ms=%lld", x->s->name, x->id,
                 r->status, vg_err_name(r->err), (long long)r->latency_ms);
    xfer_destroy(sk, x);
}

/* Finish `x` as a retriable failure that libcurl's multi interface caused. */
static void finish_failed(struct vg_sinks *sk, struct xfer *x, const char *why,
                          struct vg_sink_result *r)
{
    memset(r, 0, sizeof(*r));
    r->err = VG_ERR_BACKEND;
    r->retry_after_ms = -1;
    snprintf(r->detail, sizeof(r->detail), "sink %s: libcurl %s", x->s->name, why);
    finish(sk, x, r);
}

/* The transfers libcurl reports done, while the multi handle works. */
static size_t collect(struct vg_sinks *sk, struct vg_sink_result *out, size_t max)
{
    size_t n = 0;
    int left = 0;
    CURLMsg *msg;

    while (n < max && sk->multi_err == CURLM_OK &&
           (msg = curl_multi_info_read(sk->multi, &left)) != NULL) {
        struct xfer *x = NULL;
        struct vg_sink_result *r = &out[n];
        CURLcode rc;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        rc = curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        VG_ASSERT(rc == CURLE_OK && x); /* every handle we add carries its transfer */
        memset(r, 0, sizeof(*r));
        classify(x, msg->data.result, r);
        if ((r->err == VG_OK || sinks_slack_update_skippable(x->s, x->step, x->memo, r)) &&
            next_request(sk, x)) {
            continue; /* the second request of this notice is under way */
        }
        finish(sk, x, r);
        n++;
    }
    return n;
}

/* After a multi failure, rebuild the handle once nothing is attached to the old one. */
static void multi_rebuild(struct vg_sinks *sk)
{
    CURLM *m = NULL;

    if (sk->xfers || multi_open(&m) != CURLM_OK) {
        return; /* still failed: the next poll tries again */
    }
    /* Under mu: other threads wake the handle (sinks_http_wakeup). */
    pthread_mutex_lock(&sk->mu);
    curl_multi_cleanup(sk->multi);
    sk->multi = m;
    pthread_mutex_unlock(&sk->mu);
    sk->multi_err = CURLM_OK;
    sk->multi_call = NULL;
}

vg_err_t sinks_http_poll(struct vg_sinks *sk, int timeout_ms, struct vg_sink_result *out,
                         size_t max, size_t *n_out, char *errstr, size_t errstr_size)
{
    int running = 0;
    size_t n = 0;
    CURLMcode mc;

    if (sk->multi_err == CURLM_OK && timeout_ms > 0) {
        mc = curl_multi_poll(sk->multi, NULL, 0, timeout_ms, NULL);
        if (mc != CURLM_OK) {
            multi_failed(sk, "curl_multi_poll", mc);
        }
    }
    if (sk->multi_err == CURLM_OK) {
        mc = curl_multi_perform(sk->multi, &running);
        if (mc != CURLM_OK) {
            multi_failed(sk, "curl_multi_perform", mc);
        }
    }
    n = collect(sk, out, max);
    if (sk->multi_err == CURLM_OK) {
        *n_out = n;
        return VG_OK;
    }
    snprintf(errstr, errstr_size, "%s: %s", sk->multi_call,
             curl_multi_strerror((CURLMcode)sk->multi_err));
    while (sk->xfers && n < max) {
        finish_failed(sk, sk->xfers, errstr, &out[n]);
        n++;
    }
    multi_rebuild(sk);
    *n_out = n;
    return VG_ERR_BACKEND;
}

void sinks_http_wakeup(struct vg_sinks *sk)
{
    CURLMcode mc = CURLM_OK;

    pthread_mutex_lock(&sk->mu);
    if (sk->multi) {
        mc = curl_multi_wakeup(sk->multi);
    }
    pthread_mutex_unlock(&sk->mu);
    if (mc != CURLM_OK) {
        /* The poll then returns at its timeout instead: late, not lost. */
        VG_LOG_DEBUG("sinks", "curl_multi_wakeup: %s", curl_multi_strerror(mc));
    }
}

vg_err_t sinks_http_deliver_sync(struct vg_sinks *sk, struct sink *s, const char *page_id,
                                 const char *body, size_t body_len, char *errstr,
                                 size_t errstr_size)
{
    struct xfer *x;
    struct vg_sink_result r;
    CURLcode code;
    vg_err_t err;

    (void)sk;
    if (!valid_page_id(page_id)) {
        snprintf(errstr, errstr_size, "sink %s: page id is empty or has control characters",
                 s->name);
        return VG_ERR_INVALID;
    }
    if (!s->sync_easy) {
        s->sync_easy = curl_easy_init();
        if (!s->sync_easy) {
            vg_oom("curl_easy_init");
        }
        if (!setup_easy(s->sync_easy, s)) {
            snprintf(errstr, errstr_size, "sink %s: libcurl rejected an option", s->name);
            return VG_ERR_INVALID;
        }
    }
    x = xfer_new(s, page_id, NULL, body, body_len, NULL);
    x->easy = s->sync_easy;
    err = render(x, errstr, errstr_size);
    if (err) {
        x->easy = NULL;
        xfer_free(x);
        return err;
    }
    arm(x);
    code = curl_easy_perform(x->easy);
    memset(&r, 0, sizeof(r));
    classify(x, code, &r);
    /* The handle outlives the transfer: leave it no dangling pointers. */
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(x->easy, CURLOPT_READDATA, NULL);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, NULL);
    s->last_retry_after_ms = r.retry_after_ms;
    if (r.err != VG_OK) {
        snprintf(errstr, errstr_size, "%s", r.detail);
    }
    x->easy = NULL;
    xfer_free(x);
    vg_sink_result_fini(&r);
    return r.err;
}
