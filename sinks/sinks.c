/*
 * The sink registry behind include/vigil/sinks.h: validates sink configs,
 * builds one implementation per sink (HTTP ones in sinks_http.c, kafka,
 * console), and applies each sink's policy around the attempts the
 * dispatcher starts: concurrency, token bucket, Retry-After pauses, the
 * circuit breaker and the HTTP 410 switch-off. Retrying a page, its
 * ordering and the outbox are the dispatcher's (engine/dispatch.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks_int.h"
#include "vigil/log.h"
#include "vigil/util.h"

static int max_in_flight(const struct sink *s)
{
    switch (s->type) {
    case SINK_SLACK:
    case SINK_TEAMS:
        return 4; /* Slack and Teams rate-limit per channel: more in flight only earns 429s */
    case SINK_EMAIL:
        return 4; /* one SMTP connection each: mail servers cap connections per client */
    case SINK_KAFKA:
        return 1024;
    case SINK_CONSOLE:
        return 1 << 20;
    default:
        return SINKS_MAX_IN_FLIGHT;
    }
}

struct sink *sinks_find(const struct vg_sinks *sk, const char *name)
{
    for (size_t i = 0; i < sk->n; i++) {
        if (strcmp(sk->v[i].name, name) == 0) {
            return &sk->v[i];
        }
    }
    return NULL;
}

void sinks_add_secret(struct sink *s, const char *v)
{
    if (!v || strlen(v) < 3) {
        return; /* "/" or "" are not secrets, and would scrub everything */
    }
    s->secrets = vg_realloc(s->secrets, (s->n_secrets + 1) * sizeof(char *));
    s->secrets[s->n_secrets++] = vg_strdup(v);
}

static enum sink_type type_of(const char *t, bool *ok)
{
    static const struct {
        const char *name;
        enum sink_type type;
    } types[] = {{"webhook", SINK_WEBHOOK},
                 {"slack", SINK_SLACK},
                 {"alertmanager", SINK_ALERTMANAGER},
                 {"kafka", SINK_KAFKA},
                 {"console", SINK_CONSOLE},
                 {"teams", SINK_TEAMS},
                 {"email", SINK_EMAIL},
                 {"pagerduty", SINK_PAGERDUTY}};

    for (size_t i = 0; i < VG_ARRAY_LEN(types); i++) {
        if (!strcmp(t, types[i].name)) {
            *ok = true;
            return types[i].type;
        }
    }
    *ok = false;
    return SINK_CONSOLE;
}

static const char *type_name(enum sink_type t)
{
    static const char *const names[] = {"webhook", "slack", "alertmanager", "kafka",
                                        "console", "teams", "email",        "pagerduty"};
    return names[t];
}

static vg_err_t sink_init(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                          size_t errstr_size)
{
    bool known;
    vg_err_t err = VG_OK;

    s->name = vg_strdup(cfg->name);
    s->last_retry_after_ms = -1;
    if (cfg->max_attempts < 0) {
        snprintf(errstr, errstr_size, "sink %s: max_attempts must not be negative", cfg->name);
        return VG_ERR_INVALID;
    }
    if (cfg->max_age_ms < 0 || cfg->rate_per_s < 0 || cfg->burst < 0) {
        snprintf(errstr, errstr_size, "sink %s: max_age, rate and burst must not be negative",
                 cfg->name);
        return VG_ERR_INVALID;
    }
    if (!cfg->type) {
        snprintf(errstr, errstr_size,
                 "sink %s: missing type (webhook, slack, alertmanager, kafka, console, teams, "
                 "email or pagerduty)",
                 cfg->name);
        return VG_ERR_INVALID;
    }
    s->type = type_of(cfg->type, &known);
    if (!known) {
        snprintf(errstr, errstr_size,
                 "sink %s: unknown type \"%s\" (want webhook, slack, alertmanager, kafka, "
                 "console, teams, email or pagerduty)",
                 cfg->name, cfg->type);
        return VG_ERR_INVALID;
    }
    s->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : SINKS_DEFAULT_MAX_ATTEMPTS;
    s->max_age_ms = cfg->max_age_ms > 0 ? cfg->max_age_ms : SINKS_DEFAULT_MAX_AGE_MS;
    s->timeout_ms = cfg->timeout_ms > 0 ? (long)cfg->timeout_ms : SINKS_DEFAULT_TIMEOUT_MS;
    switch (s->type) {
    case SINK_CONSOLE:
        s->max_attempts = 1; /* printing cannot fail in a way a retry would fix */
        break;
    case SINK_KAFKA:
        if (!cfg->topic || !cfg->topic[0]) {
            snprintf(errstr, errstr_size, "sink %s: kafka needs a topic", cfg->name);
            return VG_ERR_INVALID;
        }
        s->topic = vg_strdup(cfg->topic);
        s->brokers = cfg->brokers ? vg_strdup(cfg->brokers) : NULL;
        if (cfg->n_properties > 0) {
            s->props = vg_calloc(cfg->n_properties, sizeof(*s->props));
            for (size_t i = 0; i < cfg->n_properties; i++) {
                s->props[i].key = vg_strdup(cfg->properties[i].key);
                s->props[i].value = vg_strdup(cfg->properties[i].value);
                if (strlen(cfg->properties[i].value) >= 8) {
                    s->secrets = vg_realloc(s->secrets, (s->n_secrets + 1) * sizeof(char *));
                    s->secrets[s->n_secrets++] = vg_strdup(cfg->properties[i].value);
                }
            }
            s->n_props = cfg->n_properties;
        }
        break;
    default:
        err = sinks_http_check(s, cfg, errstr, errstr_size);
        break;
    }
    if (err) {
        return err;
    }
    /* Slack documents about one message per second per channel: that is the default. */
    if (s->type == SINK_SLACK && cfg->rate_per_s <= 0) {
        sinks_bucket_init(&s->bucket, 1.0, cfg->burst > 0 ? cfg->burst : 3, vg_mono_ms());
    } else if (s->type == SINK_TEAMS && cfg->rate_per_s <= 0) {
        /* Teams throttles a webhook past four requests in a second. */
        sinks_bucket_init(&s->bucket, 4.0, cfg->burst > 0 ? cfg->burst : 4, vg_mono_ms());
    } else {
        sinks_bucket_init(&s->bucket, cfg->rate_per_s, cfg->burst, vg_mono_ms());
    }
    return VG_OK;
}

static void sink_fini(struct sink *s)
{
    sinks_kafka_destroy(s->kafka);
    s->kafka = NULL;
    if (s->type == SINK_KAFKA) {
        for (size_t i = 0; i < s->n_secrets; i++) {
            vg_free(s->secrets[i]);
        }
        vg_free(s->secrets);
        s->secrets = NULL;
        s->n_secrets = 0;
    } else {
        sinks_http_sink_fini(s);
    }
    for (size_t i = 0; i < s->n_props; i++) {
        vg_free(s->props[i].key);
        vg_free(s->props[i].value);
    }
    vg_free(s->props);
    vg_free(s->topic);
    vg_free(s->brokers);
    vg_free(s->name);
}

vg_err_t vg_sinks_new(struct vg_sinks **out, const struct vg_sink_config *cfgs, size_t n,
                      FILE *console_out, char *errstr, size_t errstr_size)
{
    struct vg_sinks *sk;
    vg_err_t err = VG_OK;

    *out = NULL;
    /* Here, at setup and before the dispatcher thread exists, as libcurl prefers. */
    if (!sinks_global_init()) {
        snprintf(errstr, errstr_size, "sinks: curl_global_init failed");
        return VG_ERR_FATAL;
    }
    sk = vg_calloc(1, sizeof(*sk));
    pthread_mutex_init(&sk->mu, NULL);
    sk->console_out = console_out ? console_out : stdout;
    sk->v = vg_calloc(n ? n : 1, sizeof(*sk->v));
    if (sinks_http_init(sk) != VG_OK) {
        snprintf(errstr, errstr_size, "sinks: libcurl's multi interface could not be set up");
        err = VG_ERR_FATAL;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const struct vg_sink_config *cfg = &cfgs[i];
        if (!cfg->name || !cfg->name[0]) {
            snprintf(errstr, errstr_size, "sinks[%zu]: missing name", i);
            err = VG_ERR_INVALID;
            goto fail;
        }
        if (sinks_find(sk, cfg->name)) {
            snprintf(errstr, errstr_size, "sink %s: duplicate name", cfg->name);
            err = VG_ERR_INVALID;
            goto fail;
        }
        err = sink_init(&sk->v[sk->n], cfg, errstr, errstr_size);
        sk->n++; /* even half-built: sink_fini frees what it has */
        if (err != VG_OK) {
            goto fail;
        }
    }
    *out = sk;
    return VG_OK;

fail:
    vg_sinks_destroy(sk);
    return err;
}

void vg_sinks_destroy(struct vg_sinks *sk)
{
    if (!sk) {
        return;
    }
    /* Kafka workers first: they push results under sk->mu and wake the multi handle. */
    for (size_t i = 0; i < sk->n; i++) {
        sinks_kafka_destroy(sk->v[i].kafka);
        sk->v[i].kafka = NULL;
    }
    sinks_http_fini(sk);
    for (size_t i = 0; i < sk->n; i++) {
        sink_fini(&sk->v[i]);
    }
    for (size_t i = 0; i < sk->n_done; i++) {
        vg_sink_result_fini(&sk->done[i]);
    }
    vg_free(sk->done);
    vg_free(sk->kafka_bootstraps);
    for (size_t i = 0; i < sk->n_kafka_props; i++) {
        vg_free(sk->kafka_props[i].key);
        vg_free(sk->kafka_props[i].value);
    }
    vg_free(sk->kafka_props);
    pthread_mutex_destroy(&sk->mu);
    vg_free(sk->v);
    vg_free(sk);
}

vg_err_t vg_sinks_deliver(struct vg_sinks *sk, const char *sink, const char *page_id,
                          const char *body, size_t body_len, char *errstr, size_t errstr_size)
{
    struct sink *s = sinks_find(sk, sink);

    if (!s) {
        snprintf(errstr, errstr_size, "unknown sink \"%s\"", sink);
        return VG_ERR_INVALID;
    }
    switch (s->type) {
    case SINK_CONSOLE:
        sinks_console_print(sk->console_out, page_id, body, body_len);
        return VG_OK;
    case SINK_KAFKA:
        snprintf(errstr, errstr_size, "sink %s: kafka sinks deliver through vg_sinks_start only",
                 sink);
        return VG_ERR_INVALID;
    default:
        return sinks_http_deliver_sync(sk, s, page_id, body, body_len, errstr, errstr_size);
    }
}

int vg_sinks_max_attempts(const struct vg_sinks *sk, const char *sink)
{
    const struct sink *s = sinks_find(sk, sink);

    return s ? s->max_attempts : 1;
}

int64_t vg_sinks_retry_after_ms(const struct vg_sinks *sk, const char *sink)
{
    const struct sink *s = sinks_find(sk, sink);

    if (!s || s->type == SINK_CONSOLE || s->type == SINK_KAFKA) {
        return -1;
    }
    return s->last_retry_after_ms;
}

int64_t vg_sinks_max_age_ms(const struct vg_sinks *sk, const char *sink)
{
    const struct sink *s = sinks_find(sk, sink);

    return s ? s->max_age_ms : SINKS_DEFAULT_MAX_AGE_MS;
}

bool vg_sinks_wants_memo(const struct vg_sinks *sk, const char *sink)
{
    const struct sink *s = sinks_find(sk, sink);

    return s && s->type == SINK_SLACK && s->slack_bot;
}

void vg_sink_result_fini(struct vg_sink_result *r)
{
    vg_free(r->memo);
    r->memo = NULL;
}

void sinks_push_done(struct vg_sinks *sk, const struct vg_sink_result *r)
{
    pthread_mutex_lock(&sk->mu);
    *VG_ARRAY_PUSH(sk->done, sk->n_done, sk->cap_done) = *r;
    pthread_mutex_unlock(&sk->mu);
    sinks_http_wakeup(sk);
}

enum vg_sink_gate vg_sinks_acquire(struct vg_sinks *sk, const char *sink, int64_t now_ms,
                                   int64_t *wait_ms)
{
    struct sink *s = sinks_find(sk, sink);
    enum vg_sink_gate gate = VG_SINK_GO;

    *wait_ms = -1;
    if (!s) {
        return VG_SINK_UNKNOWN;
    }
    pthread_mutex_lock(&sk->mu);
    if (s->disabled) {
        gate = VG_SINK_DISABLED;
    } else if (now_ms < s->pause_until) {
        *wait_ms = s->pause_until - now_ms;
        gate = VG_SINK_WAIT;
    } else if (s->in_flight >= max_in_flight(s)) {
        gate = VG_SINK_WAIT;
    } else if (!sinks_breaker_allow(&s->breaker, now_ms, wait_ms)) {
        gate = VG_SINK_WAIT;
    } else if (!sinks_bucket_take(&s->bucket, now_ms, wait_ms)) {
        sinks_breaker_cancel(&s->breaker);
        gate = VG_SINK_WAIT;
    } else {
        s->in_flight++;
    }
    pthread_mutex_unlock(&sk->mu);
    return gate;
}

vg_err_t vg_sinks_start(struct vg_sinks *sk, const struct vg_sink_job *job, char *errstr,
                        size_t errstr_size)
{
    struct sink *s = sinks_find(sk, job->sink);
    vg_err_t err;

    if (!s) {
        snprintf(errstr, errstr_size, "unknown sink \"%s\"", job->sink);
        return VG_ERR_INVALID;
    }
    switch (s->type) {
    case SINK_CONSOLE: {
        struct vg_sink_result r;
        memset(&r, 0, sizeof(r));
        sinks_console_print(sk->console_out, job->id, job->body, job->body_len);
        r.tag = job->tag;
        snprintf(r.sink, sizeof(r.sink), "%s", s->name);
        r.retry_after_ms = -1;
        sinks_push_done(sk, &r);
        err = VG_OK;
        break;
    }
    case SINK_KAFKA:
        err = sinks_kafka_start(sk, s, job, errstr, errstr_size);
        break;
    default:
        err = sinks_http_start(sk, s, job, errstr, errstr_size);
        break;
    }
    if (err != VG_OK) {
        pthread_mutex_lock(&sk->mu);
        s->in_flight--;
        sinks_breaker_cancel(&s->breaker);
        pthread_mutex_unlock(&sk->mu);
    }
    return err;
}

/* Account one finished attempt against its sink; log state changes once. */
static void apply_policy(struct vg_sinks *sk, struct vg_sink_result *r, int64_t now)
{
    struct sink *s = sinks_find(sk, r->sink);
    bool opened = false;
    bool closed = false;
    bool disabled = false;
    int failures;
    int64_t cooldown;

    if (!s) {
        return;
    }
    pthread_mutex_lock(&sk->mu);
    s->in_flight--;
    s->last_status = r->status;
    if (r->err == VG_OK) {
        s->delivered++;
        closed = sinks_breaker_success(&s->breaker);
    } else {
        s->failed++;
        snprintf(s->last_error, sizeof(s->last_error), "%.255s", r->detail);
        if (r->status == 410 && s->type != SINK_KAFKA && s->type != SINK_CONSOLE) {
            disabled = !s->disabled;
            s->disabled = true;
            r->disabled = true;
        }
        if (r->retry_after_ms > 0) {
            int64_t until = now + r->retry_after_ms;
            s->pause_until = until > s->pause_until ? until : s->pause_until;
        }
        if (vg_err_is_retriable(r->err) && r->status != 429) {
            opened = sinks_breaker_failure(&s->breaker, now);
        } else if (r->status == 429) {
            sinks_breaker_cancel(&s->breaker); /* it answered: up, only busy */
        } else {
            closed = sinks_breaker_success(&s->breaker); /* it answered: up */
        }
    }
    failures = s->breaker.failures;
    cooldown = s->breaker.cooldown_ms;
    pthread_mutex_unlock(&sk->mu);
    if (opened) {
        VG_LOG_WARN("sinks",
                    "sink %s marked down after %d consecutive failures (%s); probing "
                    "every %lld ms at first",
                    s->name, failures, r->detail, (long long)cooldown);
    }
    if (closed) {
        VG_LOG_INFO("sinks", "sink %s is up again", s->name);
    }
    if (disabled) {
        VG_LOG_ERROR("sinks",
                     "sink %s disabled: the endpoint answered HTTP 410 Gone; its pages "
                     "are dead-lettered until vigil is reloaded or restarted",
                     s->name);
    }
}

/*
 * libcurl's multi interface failed (sinks_http_poll finished the attempts
 * in flight as retriable failures): say so once per failure streak, and
 * when nothing came back, wait before the caller's next poll instead of
 * letting its loop spin on the same failure. The streak ends when a
 * transfer completes again.
 */
static void multi_outcome(struct vg_sinks *sk, vg_err_t err, const char *why, size_t n_http,
                          size_t n_total)
{
    struct timespec ts;

    if (err == VG_OK) {
        if (sk->multi_failing && n_http > 0) {
            VG_LOG_INFO("sinks", "libcurl's multi interface works again");
            sk->multi_failing = false;
            sk->multi_backoff_ms = 0;
        }
        return;
    }
    if (!sk->multi_failing) {
        VG_LOG_WARN("sinks",
                    "libcurl's multi interface failed (%s): %zu attempt(s) in flight will be "
                    "retried; backing off",
                    why, n_http);
        sk->multi_failing = true;
    } else {
        VG_LOG_DEBUG("sinks", "libcurl's multi interface failed again (%s), %zu attempt(s)", why,
                     n_http);
    }
    sk->multi_backoff_ms =
        sk->multi_backoff_ms > 0 ? sk->multi_backoff_ms * 2 : SINKS_MULTI_BACKOFF_MIN_MS;
    if (sk->multi_backoff_ms > SINKS_MULTI_BACKOFF_MAX_MS) {
        sk->multi_backoff_ms = SINKS_MULTI_BACKOFF_MAX_MS;
    }
    if (n_total == 0) {
        ts.tv_sec = sk->multi_backoff_ms / 1000;
        ts.tv_nsec = (long)(sk->multi_backoff_ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
}

size_t vg_sinks_poll(struct vg_sinks *sk, int timeout_ms, struct vg_sink_result *out, size_t max)
{
    size_t n = 0;
    size_t take;
    int64_t now;

    pthread_mutex_lock(&sk->mu);
    take = sk->n_done < max ? sk->n_done : max;
    if (take > 0) {
        memcpy(out, sk->done, take * sizeof(*out));
        memmove(sk->done, sk->done + take, (sk->n_done - take) * sizeof(*out));
        sk->n_done -= take;
    }
    pthread_mutex_unlock(&sk->mu);
    n = take;
    if (n < max) {
        char why[256] = "";
        size_t got = 0;
        vg_err_t err =
            sinks_http_poll(sk, n > 0 ? 0 : timeout_ms, out + n, max - n, &got, why, sizeof(why));

        n += got;
        multi_outcome(sk, err, why, got, n);
    }
    now = vg_mono_ms();
    for (size_t i = 0; i < n; i++) {
        apply_policy(sk, &out[i], now);
    }
    return n;
}

void vg_sinks_wakeup(struct vg_sinks *sk)
{
    sinks_http_wakeup(sk);
}

size_t vg_sinks_in_flight(const struct vg_sinks *sk)
{
    size_t n = 0;

    for (size_t i = 0; i < sk->n; i++) {
        n += (size_t)(sk->v[i].in_flight > 0 ? sk->v[i].in_flight : 0);
    }
    return n;
}

void vg_sinks_note_given_up(struct vg_sinks *sk, const char *sink)
{
    struct sink *s = sinks_find(sk, sink);

    if (s) {
        pthread_mutex_lock(&sk->mu);
        s->given_up++;
        pthread_mutex_unlock(&sk->mu);
    }
}

void vg_sinks_set_kafka_default(struct vg_sinks *sk, const char *bootstraps,
                                const struct vg_kv *props, size_t n_props)
{
    vg_free(sk->kafka_bootstraps);
    sk->kafka_bootstraps = bootstraps ? vg_strdup(bootstraps) : NULL;
    for (size_t i = 0; i < sk->n_kafka_props; i++) {
        vg_free(sk->kafka_props[i].key);
        vg_free(sk->kafka_props[i].value);
    }
    vg_free(sk->kafka_props);
    sk->kafka_props = n_props ? vg_calloc(n_props, sizeof(*sk->kafka_props)) : NULL;
    for (size_t i = 0; i < n_props; i++) {
        sk->kafka_props[i].key = vg_strdup(props[i].key);
        sk->kafka_props[i].value = vg_strdup(props[i].value);
    }
    sk->n_kafka_props = n_props;
}

void vg_sinks_reset(struct vg_sinks *sk)
{
    pthread_mutex_lock(&sk->mu);
    for (size_t i = 0; i < sk->n; i++) {
        sk->v[i].disabled = false;
        sk->v[i].pause_until = 0;
        sinks_breaker_success(&sk->v[i].breaker);
    }
    pthread_mutex_unlock(&sk->mu);
}

size_t vg_sinks_status(struct vg_sinks *sk, struct vg_sink_status *out, size_t max)
{
    pthread_mutex_lock(&sk->mu);
    for (size_t i = 0; i < sk->n && i < max; i++) {
        const struct sink *s = &sk->v[i];
        struct vg_sink_status *o = &out[i];

        memset(o, 0, sizeof(*o));
        snprintf(o->name, sizeof(o->name), "%s", s->name);
        snprintf(o->type, sizeof(o->type), "%s", type_name(s->type));
        o->state = s->disabled ? "disabled" : sinks_breaker_name(s->breaker.state);
        o->consecutive_failures = s->breaker.failures;
        o->in_flight = s->in_flight;
        o->down_since_ms = s->breaker.down_since;
        o->delivered = s->delivered;
        o->failed = s->failed;
        o->given_up = s->given_up;
        o->last_status = s->last_status;
        memcpy(o->last_error, s->last_error, sizeof(o->last_error));
    }
    pthread_mutex_unlock(&sk->mu);
    return sk->n;
}

bool vg_sinks_all_up(struct vg_sinks *sk)
{
    bool up = true;

    pthread_mutex_lock(&sk->mu);
    for (size_t i = 0; i < sk->n; i++) {
        up = up && !sk->v[i].disabled && sk->v[i].breaker.state == SINKS_BREAKER_CLOSED;
    }
    pthread_mutex_unlock(&sk->mu);
    return up;
}
