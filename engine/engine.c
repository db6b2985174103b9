/*
 * The daemon's lifecycle: start (config -> rules -> sinks -> embedded stack
 * -> Redis -> dispatcher thread -> consumer and dead-letter producer ->
 * HTTP), run (the consumer loop on the caller's thread), drain on a signal
 * or request, reload rules on SIGHUP, and stop in reverse order.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt: tune_malloc */
#endif

#include "engine_int.h"
#include "vigil/log.h"
#include "vigil/mem.h"

/* The engine that owns the process's signals (opt.signals), for the handlers. */
static struct vg_consumer *volatile signal_consumer;
/* SIGHUP asks for a rules reload, done on the consumer thread between batches. */
static volatile sig_atomic_t reload_requested;

/* Set by the first SIGINT/SIGTERM: a second one means "now". */
static volatile sig_atomic_t stop_requested;

/*
 * The first signal drains (the in-flight batch and deliveries finish, the
 * offsets are committed). A second one ends the process at once, as the
 * signal's default action: that is as safe as a SIGKILL, since every
 * batch commits in one MULTI/EXEC before its offsets are stored and pages
 * stay in the outbox until a sink acknowledged them.
 */
static void on_signal(int sig)
{
    if (stop_requested) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_requested = 1;
    if (signal_consumer) {
        vg_consumer_stop(signal_consumer);
    }
}

static void on_sighup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

/* Load the config's rule paths into a new ruleset and check the sinks it names. */
static vg_err_t load_rules(const struct vg_config *cfg, struct vg_ruleset **out, char *errstr,
                           size_t errstr_size)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char **sink_names = vg_calloc(cfg->n_sinks + 1, sizeof(*sink_names));
    vg_err_t err;

    for (size_t i = 0; i < cfg->n_sinks; i++) {
        sink_names[i] = cfg->sinks[i].name;
    }
    err = vg_rules_load_paths(rs, cfg->rules, cfg->n_rules, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_rules_check_sinks(rs, sink_names, cfg->n_sinks, errstr, errstr_size);
    }
    free(sink_names);
    if (err != VG_OK) {
        vg_ruleset_destroy(rs);
        return err;
    }
    *out = rs;
    return VG_OK;
}

/* What a pager's sink gives up on also goes to the pager's fallback sink. */
static void set_fallbacks(struct vg_engine *eng)
{
    char **pagers = NULL;
    char **fb = NULL;
    size_t n_fb;
    struct vg_kv *map;

    if (!eng->dispatch) { /* opt.hold_pages */
        return;
    }
    n_fb = vg_rules_fallbacks(eng->rs, &pagers, &fb);
    map = vg_calloc(n_fb + 1, sizeof(*map));
    for (size_t i = 0; i < n_fb; i++) {
        map[i].key = pagers[i];
        map[i].value = fb[i];
    }
    eng_dispatch_set_fallbacks(eng->dispatch, map, n_fb);
    for (size_t i = 0; i < n_fb; i++) {
        free(pagers[i]);
        free(fb[i]);
    }
    free(pagers);
    free(fb);
    free(map);
}

/*
 * Load the rule paths of the config again, validated like at start (sinks
 * included), and swap them in atomically; on any error the running rules
 * stay and the error is logged with its file:line:col.
 */
static void reload_rules(struct vg_engine *eng)
{
    struct vg_ruleset *rs = NULL;
    const struct vg_ruleset *old;
    char errstr[1024];

    if (load_rules(eng->cfg, &rs, errstr, sizeof(errstr)) != VG_OK) {
        VG_LOG_ERROR("rules", "reload rejected, the previous rules stay active: %s", errstr);
        eng_http_note_reload(eng, false);
        return;
    }
    old = eng_pipeline_set_rules(eng->pl, rs);
    VG_LOG_INFO("rules", "reloaded: %zu monitors and %zu pagers (was %zu and %zu)",
                vg_rules_monitor_count(rs), vg_rules_pager_count(rs), vg_rules_monitor_count(old),
                vg_rules_pager_count(old));
    eng->rs = rs;
    vg_ruleset_destroy((struct vg_ruleset *)old);
    eng_http_rules_changed(eng, rs);
    eng_http_note_reload(eng, true);
    set_fallbacks(eng);
    /* a reload re-enables sinks that an HTTP 410 disabled, and closes their breakers */
    vg_sinks_reset(eng->sk);
}

static void engine_idle(void *opaque)
{
    struct vg_engine *eng = opaque;

    if (eng->opt.signals && reload_requested) {
        reload_requested = 0;
        reload_rules(eng);
    }
    if (eng->opt.idle) {
        eng->opt.idle(eng, eng->opt.idle_arg);
    }
}

/*
 * Properties that only a consumer understands: given to a producer,
 * librdkafka would warn about each at startup.
 */
static bool consumer_only_property(const char *key)
{
    static const char *const prefixes[] = {
        "group.",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "enable.auto.",
        "auto.commit.",
        "auto.offset.reset",
        "partition.assignment.strategy",
        "max.poll.interval.ms",
        "fetch.",
        "queued.",
        "isolation.level",
        "check.crcs",
        "enable.partition.eof",
        "coordinator.query.interval.ms",
        "consume.callback.max.messages",
        "offset.store.",
        "rebalance_cb",
        "offset_commit_cb",
    };
    for (size_t i = 0; i < VG_ARRAY_LEN(prefixes); i++) {
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* The kafka section's properties that a producer understands (array owned, strings borrowed). */
static struct vg_kv *producer_properties(const struct vg_kafka_config *kc, size_t *n_out)
{
    struct vg_kv *props = vg_calloc(kc->n_properties + 1, sizeof(*props));
    size_t n = 0;

    for (size_t i = 0; i < kc->n_properties; i++) {
        if (!consumer_only_property(kc->properties[i].key)) {
            props[n++] = kc->properties[i];
        }
    }
    *n_out = n;
    return props;
}

/* The sinks and rules: errors here are the user's configuration. */
static vg_err_t start_rules_and_sinks(struct vg_engine *eng, char *errstr, size_t errstr_size)
{
    const struct vg_config *cfg = eng->cfg;
    vg_err_t err;

    err = load_rules(cfg, &eng->rs, errstr, errstr_size);
    if (err) {
        return VG_ERR_INVALID;
    }
    VG_LOG_INFO("rules", "loaded %zu monitors and %zu pagers", vg_rules_monitor_count(eng->rs),
                vg_rules_pager_count(eng->rs));
    err =
        vg_sinks_new(&eng->sk, cfg->sinks, cfg->n_sinks, eng->opt.console_out, errstr, errstr_size);
    return err ? VG_ERR_INVALID : VG_OK;
}

/* Kafka: the group consumer and the dead-letter producer. */
static vg_err_t start_kafka(struct vg_engine *eng, char *errstr, size_t errstr_size)
{
    const struct vg_config *cfg = eng->cfg;
    struct vg_kv *props;
    size_t n_props;
    vg_err_t err;
    char why[768];

    err = vg_consumer_new(&eng->consumer, &cfg->kafka, eng->em.bootstraps, errstr, errstr_size);
    if (err) {
        return err;
    }
    props = producer_properties(&cfg->kafka, &n_props);
    err = vg_producer_new_dlq(&eng->dlq, eng->em.bootstraps, props, n_props,
                              cfg->decode.max_message_bytes + ENG_DLQ_HEADROOM_BYTES, why,
                              sizeof(why));
    free(props);
    if (err) {
        snprintf(errstr, errstr_size, "dead-letter producer: %s", why);
    }
    return err;
}

/*
 * glibc's malloc raises its mmap threshold (up to 32 MiB) each time a
 * block above it is freed, and its trim threshold with it: after the first
 * large MULTI/EXEC buffer or Kafka fetch response is freed, every later
 * one comes from the heap or a thread's arena and stays resident when
 * freed. Draining a backlog then holds ~35 MB more than it uses (measured:
 * docs/performance.md, "Memory"). A fixed threshold keeps blocks of
 * 128 KiB and more in their own mappings, returned as soon as freed.
 */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

/*
 * The handlers go in first thing in vg_engine_start: a SIGTERM while
 * vigil starts (connecting, loading rules) stops it cleanly once started,
 * rather than killing it with the signal's default action.
 */
static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_sighup;
    sigaction(SIGHUP, &sa, NULL);
}

vg_err_t vg_engine_start(struct vg_engine **out, struct vg_config *cfg,
                         const struct vg_engine_options *opt, char *errstr, size_t errstr_size)
{
    struct vg_engine *eng = vg_calloc(1, sizeof(*eng));
    struct vg_kv *props;
    size_t n_props;
    vg_err_t err;

    *out = NULL;
    tune_malloc(); /* before any thread of ours or librdkafka's allocates */
    eng->cfg = cfg;
    if (opt) {
        eng->opt = *opt;
    }
    if (eng->opt.signals) {
        install_signals();
    }
    /* a receiver, client or Redis that went away must never kill the daemon: before the
     * dispatcher thread writes to anything */
    signal(SIGPIPE, SIG_IGN);
    /* the metrics registry, counted into from every thread (served by http.c) */
    eng->metrics = vg_metrics_new();
    vg_metrics_declare_vigil(eng->metrics);
    eng->report.metrics = eng->metrics;
    err = start_rules_and_sinks(eng, errstr, errstr_size);
    if (err) {
        goto fail;
    }
    err = eng_embedded_start(&eng->em, cfg, true, errstr, errstr_size);
    if (err) {
        goto fail;
    }
    err = vg_state_connect_config(&eng->st, eng->em.redis_url, cfg->redis.prefix, &cfg->redis,
                                  errstr, errstr_size);
    if (err) {
        goto fail;
    }
    /* the pipeline's commits (and the timers', on the same state) use the commit lanes; the
     * dispatcher and the API connect their own states, one connection per node */
    vg_state_commit_lanes_set(eng->st, (unsigned)cfg->redis.commit_connections);
    vg_state_cache_limit(eng->st, (size_t)cfg->redis.cache_resources);
    /* kafka sinks without brokers produce to this cluster, as a producer */
    props = producer_properties(&cfg->kafka, &n_props);
    vg_sinks_set_kafka_default(eng->sk, eng->em.bootstraps, props, n_props);
    free(props);
    if (!eng->opt.hold_pages) {
        err = eng_dispatch_start(&eng->dispatch, eng->em.redis_url, &cfg->redis, &cfg->dispatch,
                                 eng->sk, &eng->report, errstr, errstr_size);
        if (err) {
            goto fail;
        }
        eng->report.dispatch = eng->dispatch;
        set_fallbacks(eng);
    }
    err = start_kafka(eng, errstr, errstr_size);
    if (err) {
        goto fail;
    }
    eng->pl = eng_pipeline_new(eng->st, eng->rs, &cfg->health, &eng->report);
    eng_pipeline_set_input(eng->pl, &cfg->kafka, &cfg->decode, eng->dlq, eng->consumer);
    if (eng->opt.http) {
        err = eng_http_start(eng, errstr, errstr_size);
        if (err) {
            goto fail;
        }
    }
    *out = eng;
    return VG_OK;
fail:
    vg_engine_destroy(eng);
    return err;
}

vg_err_t vg_engine_run(struct vg_engine *eng)
{
    struct vg_consumer_handler h;
    vg_err_t err;

    if (eng->opt.signals) {
        signal_consumer = eng->consumer;
        if (stop_requested) {
            /* a signal came while starting: stop before the first batch */
            vg_consumer_stop(eng->consumer);
        }
    }
    eng_pipeline_on_idle(eng->pl, engine_idle, eng);
    eng_pipeline_handler(eng->pl, &h);
    VG_LOG_INFO("consumer", "consuming %zu topic(s) as group %s", eng->cfg->kafka.n_topics,
                eng->cfg->kafka.group);
    err = vg_consumer_run(eng->consumer, &h);
    if (eng->opt.signals) {
        signal_consumer = NULL;
    }
    if (err) {
        VG_LOG_ERROR("consumer", "consumer stopped: %s", vg_err_name(err));
    } else {
        VG_LOG_INFO("consumer", "stopping: finishing deliveries in flight, committing offsets");
    }
    return err;
}

void eng_report_pages_queued(const struct eng_report *report, size_t n)
{
    if (n > 0) {
        eng_dispatch_wake(report->dispatch);
    }
}

void vg_engine_request_stop(struct vg_engine *eng)
{
    if (eng->consumer) {
        vg_consumer_stop(eng->consumer);
    }
}

void vg_engine_destroy(struct vg_engine *eng)
{
    if (!eng) {
        return;
    }
    eng_http_stop(eng); /* first: its threads read the consumer and the stats */
    /*
     * The dispatcher's grace for deliveries in flight and the consumer's
     * commit and group leave run side by side, so that a drain ends
     * within 10 s (each is bounded by 5 s).
     */
    eng_dispatch_request_stop(eng->dispatch);
    vg_consumer_destroy(eng->consumer);
    eng->report.dispatch = NULL; /* nothing commits now: the consumer thread is gone */
    eng_dispatch_stop(eng->dispatch);
    eng_pipeline_destroy(eng->pl);
    vg_producer_destroy(eng->dlq);
    vg_state_destroy(eng->st);
    eng_embedded_stop(&eng->em);
    vg_sinks_destroy(eng->sk);
    vg_ruleset_destroy(eng->rs);
    eng->report.metrics = NULL;
    vg_metrics_destroy(eng->metrics);
    free(eng);
}

void vg_engine_stats(const struct vg_engine *eng, struct vg_engine_stats *out)
{
    struct vg_metrics *m = eng->metrics;

    out->consumed = (long long)vg_metrics_sum(m, VG_M_EVENTS_CONSUMED, NULL, NULL);
    out->applied = (long long)vg_metrics_sum(m, VG_M_EVENTS_CONSUMED, "outcome", "applied");
    out->invalid = (long long)vg_metrics_sum(m, VG_M_EVENTS_CONSUMED, "outcome", "invalid");
    out->skipped = (long long)vg_metrics_sum(m, VG_M_EVENTS_CONSUMED, "outcome", "replayed");
    out->late = (long long)vg_metrics_sum(m, VG_M_EVENTS_CONSUMED, "outcome", "late");
    out->transitions = (long long)vg_metrics_sum(m, VG_M_TRANSITIONS, NULL, NULL);
    out->pages = (long long)vg_metrics_sum(m, VG_M_NOTIFICATIONS_QUEUED, NULL, NULL);
    out->delivered = (long long)vg_metrics_sum(m, VG_M_NOTIFICATIONS, "outcome", "delivered");
    out->dead = (long long)vg_metrics_sum(m, VG_M_NOTIFICATIONS, "outcome", "dead");
    out->dead_lettered = (long long)vg_metrics_sum(m, VG_M_DLQ_PRODUCED, NULL, NULL);
}

const char *vg_engine_bootstraps(const struct vg_engine *eng)
{
    return eng->em.bootstraps;
}

const char *vg_engine_redis_url(const struct vg_engine *eng)
{
    return eng->em.redis_url;
}

struct vg_state *vg_engine_state(struct vg_engine *eng)
{
    return eng->st;
}

struct vg_metrics *vg_engine_metrics(struct vg_engine *eng)
{
    return eng->metrics;
}
