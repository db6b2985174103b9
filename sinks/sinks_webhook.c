/*
 * The webhook sink: one libcurl easy handle per sink, reused for every
 * delivery so its connection cache keeps the TCP/TLS connection alive.
 * Classifies the outcome into vg_err_t (docs/webhook.md). The url is a
 * secret (tokens live in paths): it never reaches errstr or the log unredacted.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sinks_int.h"
#include "vigil/log.h"
#include "vigil/mem.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif

#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

struct vg_webhook {
    char *name;
    CURL *curl;
    char **headers; /* "Name: value" lines sent with every delivery */
    size_t n_headers;
    char *secrets[5]; /* url parts that must never appear in errstr */
    size_t n_secrets;
    size_t resp_bytes;
    bool resp_overflow;
    int64_t retry_after_ms;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool vg_sinks_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK;
}

/* The headers vigil owns: configuring them would break idempotency or framing. */
static const char *const reserved_headers[] = {
    "Idempotency-Key",   "webhook-id", "Content-Length", "Host",
    "Transfer-Encoding", "Connection", "Expect",         NULL,
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

static bool has_header(const struct vg_sink_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_headers; i++) {
        if (strcasecmp(cfg->headers[i].key, name) == 0) {
            return true;
        }
    }
    return false;
}

static void add_header_line(struct vg_webhook *wh, char *line)
{
    wh->headers = vg_realloc(wh->headers, (wh->n_headers + 1) * sizeof(char *));
    wh->headers[wh->n_headers++] = line;
}

static vg_err_t build_headers(struct vg_webhook *wh, const struct vg_sink_config *cfg, char *errstr,
                              size_t errstr_size)
{
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
        /* libcurl: "Name:" would delete the header, "Name;" sends it empty. */
        add_header_line(wh, kv->value[0] ? vg_asprintf("%s: %s", kv->key, kv->value)
                                         : vg_asprintf("%s;", kv->key));
    }
    if (!has_header(cfg, "Content-Type")) {
        add_header_line(wh, vg_strdup("Content-Type: application/json"));
    }
    /* No 100-continue round trip (a second of stall with receivers that ignore it). */
    add_header_line(wh, vg_strdup("Expect:"));
    return VG_OK;
}

/*
 * Parse the url with libcurl's own parser (so we accept exactly what it
 * will request), require http(s) and a host, and remember the parts
 * that may carry secrets so errstr can be scrubbed of them.
 */
static vg_err_t check_url(struct vg_webhook *wh, const struct vg_sink_config *cfg, char *errstr,
                          size_t errstr_size)
{
    static const CURLUPart secret_parts[] = {CURLUPART_PATH, CURLUPART_QUERY, CURLUPART_USER,
                                             CURLUPART_PASSWORD, CURLUPART_FRAGMENT};
    char redacted[512];
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    vg_err_t err = VG_OK;

    if (!u) {
        vg_oom("curl_url");
    }
    vg_redact_url(cfg->url, redacted, sizeof(redacted));
    /* libcurl reads "https:///x" as host "x"; a url that odd is a typo, not a webhook. */
    const char *sep = strstr(cfg->url, "://");
    if (!sep || sep[3] == '/' || sep[3] == '\0' ||
        curl_url_set(u, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(errstr, errstr_size, "sink %s: url \"%s\" is not a valid http(s) url", cfg->name,
                 redacted);
        err = VG_ERR_INVALID;
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(errstr, errstr_size, "sink %s: url \"%s\" must use http or https", cfg->name,
                 redacted);
        err = VG_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(secret_parts); i++) {
        char *part = NULL;
        if (curl_url_get(u, secret_parts[i], &part, 0) == CURLUE_OK && part) {
            if (strcmp(part, "/") != 0 && part[0]) {
                wh->secrets[wh->n_secrets++] = vg_strdup(part);
            }
            curl_free(part);
        }
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return err;
}

/* Drain the response body, but stop a receiver that streams more than we will ever read. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct vg_webhook *wh = opaque;
    size_t n = size * nmemb;

    (void)ptr;
    if (wh->resp_bytes + n > VG_WEBHOOK_MAX_RESPONSE_BYTES) {
        wh->resp_overflow = true;
        return 0; /* CURLE_WRITE_ERROR; the status line has been read by now */
    }
    wh->resp_bytes += n;
    return n;
}

#define SETOPT(wh, opt, val)                                                                       \
    do {                                                                                           \
        if (curl_easy_setopt((wh)->curl, (opt), (val)) != CURLE_OK) {                              \
            snprintf(errstr, errstr_size, "sink %s: libcurl rejected %s", (wh)->name, #opt);       \
            err = VG_ERR_INVALID;                                                                  \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

vg_err_t vg_webhook_new(struct vg_webhook **out, const struct vg_sink_config *cfg, char *errstr,
                        size_t errstr_size)
{
    struct vg_webhook *wh;
    vg_err_t err;
    long timeout_ms = (long)cfg->timeout_ms;
    long connect_ms = (long)cfg->connect_timeout_ms;

    *out = NULL;
    if (!cfg->url || !cfg->url[0]) {
        snprintf(errstr, errstr_size, "sink %s: webhook needs a url", cfg->name);
        return VG_ERR_INVALID;
    }
    if (cfg->timeout_ms < 0 || cfg->connect_timeout_ms < 0 || cfg->timeout_ms > 3600000 ||
        cfg->connect_timeout_ms > 3600000) {
        snprintf(errstr, errstr_size, "sink %s: timeouts must be between 0 and 1h", cfg->name);
        return VG_ERR_INVALID;
    }
    if (!vg_sinks_global_init()) {
        snprintf(errstr, errstr_size, "sink %s: curl_global_init failed", cfg->name);
        return VG_ERR_FATAL;
    }
    timeout_ms = timeout_ms > 0 ? timeout_ms : VG_WEBHOOK_DEFAULT_TIMEOUT_MS;
    connect_ms = connect_ms > 0 ? connect_ms : VG_WEBHOOK_DEFAULT_CONNECT_TIMEOUT_MS;

    wh = vg_calloc(1, sizeof(*wh));
    wh->name = vg_strdup(cfg->name);
    wh->retry_after_ms = -1;
    err = check_url(wh, cfg, errstr, errstr_size);
    if (err != VG_OK) {
        goto fail;
    }
    err = build_headers(wh, cfg, errstr, errstr_size);
    if (err != VG_OK) {
        goto fail;
    }
    wh->curl = curl_easy_init();
    if (!wh->curl) {
        vg_oom("curl_easy_init");
    }
    SETOPT(wh, CURLOPT_URL, cfg->url);
    SETOPT(wh, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(wh, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* A redirect is a misconfigured url: following it would POST our body somewhere unreviewed. */
    SETOPT(wh, CURLOPT_FOLLOWLOCATION, 0L);
    /* We run in a threaded daemon: no SIGALRM-based DNS timeouts. */
    SETOPT(wh, CURLOPT_NOSIGNAL, 1L);
    /* Proxies come from config only (issue 6), never from http_proxy in the environment. */
    SETOPT(wh, CURLOPT_PROXY, "");
    SETOPT(wh, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(wh, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SETOPT(wh, CURLOPT_ERRORBUFFER, wh->errbuf);
    SETOPT(wh, CURLOPT_USERAGENT, "vigil/" VIGIL_VERSION);
    SETOPT(wh, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(wh, CURLOPT_POST, 1L);
    SETOPT(wh, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(wh, CURLOPT_WRITEDATA, wh);
    *out = wh;
    return VG_OK;

fail:
    vg_webhook_destroy(wh);
    return err;
}

void vg_webhook_destroy(struct vg_webhook *wh)
{
    if (!wh) {
        return;
    }
    if (wh->curl) {
        curl_easy_cleanup(wh->curl);
    }
    for (size_t i = 0; i < wh->n_headers; i++) {
        vg_free(wh->headers[i]);
    }
    vg_free(wh->headers);
    for (size_t i = 0; i < wh->n_secrets; i++) {
        vg_free(wh->secrets[i]);
    }
    vg_free(wh->name);
    vg_free(wh);
}

vg_err_t vg_webhook_classify_status(long status)
{
    if (status >= 200 && status < 300) {
        return VG_OK;
    }
    if (status == 408 || status == 429 || (status >= 500 && status < 600)) {
        return VG_ERR_BACKEND;
    }
    if ((status >= 300 && status < 500)) {
        return VG_ERR_REJECTED;
    }
    return VG_ERR_BACKEND; /* 1xx as final, 6xx, 0: a broken peer, maybe a transient one */
}

int64_t vg_webhook_retry_after_ms(const struct vg_webhook *wh)
{
    return wh->retry_after_ms;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3); -1 when absent or malformed. */
static int64_t read_retry_after(struct vg_webhook *wh)
{
    struct curl_header *h = NULL;
    char *end = NULL;
    long long secs;

    if (curl_easy_header(wh->curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h ||
        !h->value) {
        return -1;
    }
    errno = 0;
    secs = strtoll(h->value, &end, 10);
    if (end != h->value && *end == '\0' && errno == 0 && secs >= 0) {
        return secs > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : secs * 1000;
    }
    time_t when = curl_getdate(h->value, NULL);
    if (when < 0) {
        return -1;
    }
    time_t now = time(NULL);
    int64_t ms = when > now ? ((int64_t)when - (int64_t)now) * 1000 : 0;
    return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}

/* If libcurl's message quotes any secret url part, fall back to its generic text. */
static void scrub(const struct vg_webhook *wh, CURLcode code, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < wh->n_secrets; i++) {
        if (strstr(errstr, wh->secrets[i])) {
            snprintf(errstr, errstr_size, "sink %s: %s", wh->name, curl_easy_strerror(code));
            return;
        }
    }
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

static bool valid_page_id(const char *id)
{
    if (!id[0]) {
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

vg_err_t vg_webhook_deliver(struct vg_webhook *wh, const char *page_id, const char *body,
                            size_t body_len, char *errstr, size_t errstr_size)
{
    struct curl_slist *hdrs = NULL;
    char *line;
    CURLcode code;
    long status = 0;
    vg_err_t err;

    if (!valid_page_id(page_id)) {
        snprintf(errstr, errstr_size, "sink %s: page id is empty or has control characters",
                 wh->name);
        return VG_ERR_INVALID;
    }
    for (size_t i = 0; i < wh->n_headers; i++) {
        hdrs = slist_add(hdrs, wh->headers[i]);
    }
    /* Idempotency-Key (IETF draft) and webhook-id (Standard Webhooks): the same on every retry. */
    line = vg_asprintf("Idempotency-Key: %s", page_id);
    hdrs = slist_add(hdrs, line);
    vg_free(line);
    line = vg_asprintf("webhook-id: %s", page_id);
    hdrs = slist_add(hdrs, line);
    vg_free(line);

    wh->errbuf[0] = '\0';
    wh->resp_bytes = 0;
    wh->resp_overflow = false;
    wh->retry_after_ms = -1;
    curl_easy_setopt(wh->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    /* Never NULL: with POST and no POSTFIELDS libcurl would read the body from stdin. */
    curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDS, body ? body : "");

    code = curl_easy_perform(wh->curl);

    /* The handle outlives both: leave it no dangling pointers. */
    curl_easy_setopt(wh->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);

    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && wh->resp_overflow)) {
        curl_easy_getinfo(wh->curl, CURLINFO_RESPONSE_CODE, &status);
        wh->retry_after_ms = read_retry_after(wh);
        err = vg_webhook_classify_status(status);
        if (err == VG_OK) {
            /* errstr untouched: nothing failed */
        } else if (status >= 300 && status < 400) {
            snprintf(errstr, errstr_size, "sink %s: HTTP %ld: redirect not followed", wh->name,
                     status);
        } else if (wh->retry_after_ms >= 0) {
            snprintf(errstr, errstr_size, "sink %s: HTTP %ld (Retry-After %lld s)", wh->name,
                     status, (long long)(wh->retry_after_ms / 1000));
        } else {
            snprintf(errstr, errstr_size, "sink %s: HTTP %ld", wh->name, status);
        }
    } else {
        err = code == CURLE_OPERATION_TIMEDOUT ? VG_ERR_TIMEOUT : VG_ERR_BACKEND;
        snprintf(errstr, errstr_size, "sink %s: %s", wh->name,
                 wh->errbuf[0] ? wh->errbuf : curl_easy_strerror(code));
        scrub(wh, code, errstr, errstr_size);
    }
    VG_LOG_DEBUG("sinks", "sink=%s page=%s status=%ld result=%s", wh->name, page_id, status,
                 vg_err_name(err));
    return err;
}
