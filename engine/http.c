/*
 * The HTTP server inside `vigil run` (api/) wired to the daemon:
 * readiness (partitions assigned, rules loaded), the metrics only the
 * daemon can read (consumer lag, the sinks' state), the rules
 * listing, and the secrets no response may contain. The server reads the
 * daemon only through this file's hooks, which are safe from its threads.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "vigil/api.h"
#include "vigil/log.h"
#include "vigil/mem.h"

/* What the hooks read, guarded: the ruleset may be swapped by a reload on the consumer thread. */
struct eng_http {
    pthread_mutex_t lock;
    char *rules_json;
    size_t n_monitors;
    size_t n_pagers;
};

static struct eng_http *http_of(struct vg_engine *d)
{
    return d->http_state;
}

static bool hook_ready(void *opaque, char *reason, size_t reason_size)
{
    struct vg_engine *d = opaque;
    struct eng_http *h = http_of(d);
    bool rules;

    pthread_mutex_lock(&h->lock);
    rules = h->rules_json != NULL;
    pthread_mutex_unlock(&h->lock);
    if (!rules) {
        snprintf(reason, reason_size, "rules: not loaded");
        return false;
    }
    if (!d->consumer || vg_consumer_assigned_count(d->consumer) == 0) {
        snprintf(reason, reason_size, "kafka: no partition assigned yet");
        return false;
    }
    return true;
}

static void lag_one(void *arg, const char *topic, int32_t partition, int64_t lag)
{
    char p[16];

    snprintf(p, sizeof(p), "%d", (int)partition);
    if (lag >= 0) {
        vg_metrics_set(arg, VG_M_CONSUMER_LAG, (const char *const[]){topic, p}, (double)lag);
    }
}

static void hook_collect(void *opaque, struct vg_metrics *m)
{
    struct vg_engine *d = opaque;
    struct eng_http *h = http_of(d);

    vg_metrics_clear(m, VG_M_CONSUMER_LAG);
    if (d->consumer) {
        vg_consumer_lag_each(d->consumer, lag_one, m);
    }
    pthread_mutex_lock(&h->lock);
    vg_metrics_set(m, VG_M_RULES_LOADED, (const char *const[]){"monitor"}, (double)h->n_monitors);
    vg_metrics_set(m, VG_M_RULES_LOADED, (const char *const[]){"pager"}, (double)h->n_pagers);
    pthread_mutex_unlock(&h->lock);
    if (d->sk) {
        struct vg_sink_status st[64];
        size_t n = vg_sinks_status(d->sk, st, VG_ARRAY_LEN(st));
        vg_metrics_clear(m, VG_M_SINK_UP);
        for (size_t i = 0; i < n && i < VG_ARRAY_LEN(st); i++) {
            vg_metrics_set(m, VG_M_SINK_UP, (const char *const[]){st[i].name, st[i].state},
                           strcmp(st[i].state, "up") == 0 ? 1.0 : 0.0);
        }
    }
}

/* Sinks down (breaker open) or disabled (HTTP 410): ready, but degraded. */
static bool hook_healthy(void *opaque, char *detail, size_t detail_size)
{
    struct vg_engine *d = opaque;
    struct vg_sink_status st[64];
    struct vg_buf b = {0};
    size_t n;

    if (!d->sk || vg_sinks_all_up(d->sk)) {
        return true;
    }
    n = vg_sinks_status(d->sk, st, VG_ARRAY_LEN(st));
    for (size_t i = 0; i < n && i < VG_ARRAY_LEN(st); i++) {
        if (strcmp(st[i].state, "up") != 0) {
            vg_buf_printf(&b, "%ssink %s: %s%s%s", b.len ? "; " : "", st[i].name, st[i].state,
                          st[i].last_error[0] ? " (" : "", st[i].last_error);
            if (st[i].last_error[0]) {
                vg_buf_putc(&b, ')');
            }
        }
    }
    snprintf(detail, detail_size, "%s", b.data ? b.data : "a sink is down");
    vg_buf_fini(&b);
    return false;
}

static char *hook_rules_json(void *opaque)
{
    struct eng_http *h = http_of(opaque);
    char *json;

    pthread_mutex_lock(&h->lock);
    json = h->rules_json ? vg_strdup(h->rules_json) : NULL;
    pthread_mutex_unlock(&h->lock);
    return json;
}

void eng_http_rules_changed(struct vg_engine *d, const struct vg_ruleset *rs)
{
    struct eng_http *h = http_of(d);
    char *json;

    if (!h) {
        return;
    }
    json = rs ? vg_rules_describe_json(rs) : NULL;
    pthread_mutex_lock(&h->lock);
    free(h->rules_json);
    h->rules_json = json;
    h->n_monitors = rs ? vg_rules_monitor_count(rs) : 0;
    h->n_pagers = rs ? vg_rules_pager_count(rs) : 0;
    pthread_mutex_unlock(&h->lock);
}

void eng_http_note_reload(struct vg_engine *d, bool ok)
{
    vg_metrics_add(d->metrics, VG_M_RULES_RELOADS, (const char *const[]){ok ? "ok" : "error"}, 1);
}

/* A URL's secret parts: the whole URL, its userinfo password, and path+query when long. */
static void add_url(const char ***v, size_t *n, size_t *cap, char ***owned, size_t *n_owned,
                    size_t *cap_owned, const char *url)
{
    const char *scheme;
    const char *rest;

    if (!url || !url[0]) {
        return;
    }
    *VG_ARRAY_PUSH(*v, *n, *cap) = url;
    scheme = strstr(url, "://");
    rest = scheme ? scheme + 3 : url;
    {
        const char *at = strchr(rest, '@');
        const char *slash = strchr(rest, '/');
        if (at && (!slash || at < slash)) {
            const char *colon = memchr(rest, ':', (size_t)(at - rest));
            if (colon && at - colon > 1) {
                char *pw = vg_strndup(colon + 1, (size_t)(at - colon - 1));
                *VG_ARRAY_PUSH(*owned, *n_owned, *cap_owned) = pw;
                *VG_ARRAY_PUSH(*v, *n, *cap) = pw;
            }
        }
        if (slash && strlen(slash) >= 8) {
            *VG_ARRAY_PUSH(*v, *n, *cap) = slash;
        }
    }
    {
        const char *pw = strstr(url, "password=");
        if (pw) {
            char *val = vg_strndup(pw + 9, strcspn(pw + 9, "&"));
            *VG_ARRAY_PUSH(*owned, *n_owned, *cap_owned) = val;
            *VG_ARRAY_PUSH(*v, *n, *cap) = val;
        }
    }
}

vg_err_t eng_http_start(struct vg_engine *d, char *errstr, size_t errstr_size)
{
    const struct vg_config *cfg = d->cfg;
    struct eng_http *h = vg_calloc(1, sizeof(*h));
    struct vg_api_options opts;
    const char **secrets = NULL;
    char **owned = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t n_owned = 0;
    size_t cap_owned = 0;
    char why[512];
    vg_err_t err;

    pthread_mutex_init(&h->lock, NULL);
    d->http_state = h;
    eng_http_rules_changed(d, d->rs);

    add_url(&secrets, &n, &cap, &owned, &n_owned, &cap_owned, cfg->redis.url);
    add_url(&secrets, &n, &cap, &owned, &n_owned, &cap_owned, d->em.redis_url);
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        const struct vg_sink_config *s = &cfg->sinks[i];
        add_url(&secrets, &n, &cap, &owned, &n_owned, &cap_owned, s->url);
        add_url(&secrets, &n, &cap, &owned, &n_owned, &cap_owned, s->webhook_url);
        add_url(&secrets, &n, &cap, &owned, &n_owned, &cap_owned, s->proxy);
        if (s->token) {
            *VG_ARRAY_PUSH(secrets, n, cap) = s->token;
        }
        for (size_t k = 0; k < s->n_secrets; k++) {
            *VG_ARRAY_PUSH(secrets, n, cap) = s->secrets[k];
        }
        for (size_t k = 0; k < s->n_headers; k++) {
            *VG_ARRAY_PUSH(secrets, n, cap) = s->headers[k].value;
        }
    }
    memset(&opts, 0, sizeof(opts));
    opts.http = &cfg->http;
    opts.redis_url = d->em.redis_url;
    opts.prefix = cfg->redis.prefix;
    opts.redis = &cfg->redis;
    opts.metrics = d->metrics;
    opts.hooks.opaque = d;
    opts.hooks.ready = hook_ready;
    opts.hooks.collect = hook_collect;
    opts.hooks.rules_json = hook_rules_json;
    opts.hooks.healthy = hook_healthy;
    opts.secrets = secrets;
    opts.n_secrets = n;
    err = vg_api_start(&d->api, &opts, why, sizeof(why));
    free(secrets);
    for (size_t i = 0; i < n_owned; i++) {
        free(owned[i]);
    }
    free(owned);
    if (err) {
        if (cfg->http.listen_set || err == VG_ERR_INVALID) {
            snprintf(errstr, errstr_size, "%s", why);
            return err;
        }
        /* The default address is a convenience: another vigil may hold it. */
        VG_LOG_WARN("api",
                    "%s: the HTTP API, /metrics and the console are off (set "
                    "http.listen to choose an address)",
                    why);
        return VG_OK;
    }
    d->report.api = d->api;
    return VG_OK;
}

void eng_http_stop(struct vg_engine *d)
{
    struct eng_http *h = http_of(d);

    d->report.api = NULL;
    vg_api_stop(d->api);
    d->api = NULL;
    if (h) {
        free(h->rules_json);
        pthread_mutex_destroy(&h->lock);
        free(h);
        d->http_state = NULL;
    }
}
