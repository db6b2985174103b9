/*
 * `vigil run`: the daemon. The only place that wires the modules together
 * and owns signals and shutdown: config -> rules -> embedded stack ->
 * sinks -> state -> dispatcher thread -> consumer loop (this thread).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vigil/log.h"
#include "vigil/mem.h"

static struct vg_consumer *volatile signal_consumer;

static void on_signal(int sig)
{
    (void)sig;
    if (signal_consumer) {
        vg_consumer_stop(signal_consumer);
    }
}

int cli_load_config(struct vg_config *cfg, const char *path)
{
    char errstr[1024];
    vg_config_init(cfg);
    if (path && vg_config_load_file(cfg, path, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Issue 5: SIGHUP asks for a rules reload, done on the consumer thread between batches. */
static volatile sig_atomic_t reload_requested;

static void on_sighup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

/*
 * Load the rule paths of the config again into a new ruleset, validated
 * like at start (sinks included), and swap it in atomically; on any error
 * the running rules stay and the error is logged with its file:line:col.
 */
static void reload_rules(struct cli_daemon *d)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char **sink_names = vg_calloc(d->cfg->n_sinks + 1, sizeof(*sink_names));
    char errstr[1024];
    const struct vg_ruleset *old;
    vg_err_t err;

    for (size_t i = 0; i < d->cfg->n_sinks; i++) {
        sink_names[i] = d->cfg->sinks[i].name;
    }
    err = vg_rules_load_paths(rs, d->cfg->rules, d->cfg->n_rules, errstr, sizeof(errstr));
    if (err == VG_OK) {
        err = vg_rules_check_sinks(rs, sink_names, d->cfg->n_sinks, errstr, sizeof(errstr));
    }
    free(sink_names);
    if (err != VG_OK) {
        VG_LOG_ERROR("rules", "reload rejected, the previous rules stay active: %s", errstr);
        vg_ruleset_destroy(rs);
        cli_http_note_reload(d, false);
        return;
    }
    old = cli_pipeline_set_rules(d->pl, rs);
    VG_LOG_INFO("rules", "reloaded: %zu monitors and %zu pagers (was %zu and %zu)",
                vg_rules_monitor_count(rs), vg_rules_pager_count(rs),
                vg_rules_monitor_count(old), vg_rules_pager_count(old));
    d->rs = rs;
    vg_ruleset_destroy((struct vg_ruleset *)old);
    cli_http_rules_changed(d, rs);
    cli_http_note_reload(d, true);
    /* issue 6: the fallback sinks follow the pagers */
    {
        char **pagers = NULL;
        char **fb = NULL;
        size_t n_fb = vg_rules_fallbacks(d->rs, &pagers, &fb);
        struct vg_kv *map = vg_calloc(n_fb + 1, sizeof(*map));

        for (size_t i = 0; i < n_fb; i++) {
            map[i].key = pagers[i];
            map[i].value = fb[i];
        }
        cli_dispatch_set_fallbacks(d->dispatch, map, n_fb);
        for (size_t i = 0; i < n_fb; i++) {
            free(pagers[i]);
            free(fb[i]);
        }
        free(pagers);
        free(fb);
        free(map);
    }
    /* issue 6: a reload re-enables sinks that an HTTP 410 disabled, and closes their breakers */
    vg_sinks_reset(d->sk);
}

static void daemon_idle(void *opaque)
{
    struct cli_daemon *d = opaque;
    if (reload_requested) {
        reload_requested = 0;
        reload_rules(d);
    }
    if (d->idle) {
        d->idle(d);
    }
}

/*
 * Properties that only a consumer understands: given to the dead-letter
 * producer, librdkafka would warn about each at startup (issue 4).
 */
static bool consumer_only_property(const char *key)
{
    static const char *const prefixes[] = {
        "group.",           "session.timeout.ms",   "heartbeat.interval.ms",
        "enable.auto.",     "auto.commit.",         "auto.offset.reset",
        "partition.assignment.strategy", "max.poll.interval.ms", "fetch.",
        "queued.",          "isolation.level",      "check.crcs",
        "enable.partition.eof", "coordinator.query.interval.ms", "consume.callback.max.messages",
        "offset.store.",    "rebalance_cb",         "offset_commit_cb",
    };
    for (size_t i = 0; i < VG_ARRAY_LEN(prefixes); i++) {
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

int cli_daemon_start(struct cli_daemon *d, struct vg_config *cfg)
{
    char errstr[1024];
    char **sink_names;
    vg_err_t err;

    d->cfg = cfg;
    /* issue 7: the metrics registry, counted into from every thread (served by cli/http.c) */
    d->metrics = vg_metrics_new();
    vg_metrics_declare_vigil(d->metrics);
    d->stats.metrics = d->metrics;
    d->rs = vg_ruleset_new();
    err = vg_rules_load_paths(d->rs, cfg->rules, cfg->n_rules, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_USAGE;
    }
    sink_names = vg_calloc(cfg->n_sinks + 1, sizeof(*sink_names));
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        sink_names[i] = cfg->sinks[i].name;
    }
    err = vg_rules_check_sinks(d->rs, sink_names, cfg->n_sinks, errstr, sizeof(errstr));
    free(sink_names);
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_USAGE;
    }
    VG_LOG_INFO("rules", "loaded %zu monitors and %zu pagers", vg_rules_monitor_count(d->rs),
                vg_rules_pager_count(d->rs));
    err = vg_sinks_new(&d->sk, cfg->sinks, cfg->n_sinks, d->console_out, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_USAGE;
    }
    err = cli_embedded_start(&d->em, cfg, true, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_FAILURE;
    }
    err = vg_state_connect(&d->st, d->em.redis_url, cfg->redis.prefix, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_FAILURE;
    }
    /* issue 6: kafka sinks without brokers produce to this cluster, as a producer */
    {
        struct vg_kv *props = vg_calloc(cfg->kafka.n_properties + 1, sizeof(*props));
        size_t n_props = 0;

        for (size_t i = 0; i < cfg->kafka.n_properties; i++) {
            if (!consumer_only_property(cfg->kafka.properties[i].key)) {
                props[n_props++] = cfg->kafka.properties[i];
            }
        }
        vg_sinks_set_kafka_default(d->sk, d->em.bootstraps, props, n_props);
        free(props);
    }
    err = cli_dispatch_start(&d->dispatch, d->em.redis_url, cfg->redis.prefix, d->sk, &d->stats,
                             errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_FAILURE;
    }
    /* issue 6: what a pager's sink gives up on also goes to the pager's fallback sink */
    {
        char **pagers = NULL;
        char **fb = NULL;
        size_t n_fb = vg_rules_fallbacks(d->rs, &pagers, &fb);
        struct vg_kv *map = vg_calloc(n_fb + 1, sizeof(*map));

        for (size_t i = 0; i < n_fb; i++) {
            map[i].key = pagers[i];
            map[i].value = fb[i];
        }
        cli_dispatch_set_fallbacks(d->dispatch, map, n_fb);
        for (size_t i = 0; i < n_fb; i++) {
            free(pagers[i]);
            free(fb[i]);
        }
        free(pagers);
        free(fb);
        free(map);
    }
    err = vg_consumer_new(&d->consumer, &cfg->kafka, d->em.bootstraps, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return err == VG_ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    /* issue 4: the dead-letter producer, with the consumer's properties minus consumer-only ones */
    {
        struct vg_kv *props = vg_calloc(cfg->kafka.n_properties + 1, sizeof(*props));
        size_t n_props = 0;

        for (size_t i = 0; i < cfg->kafka.n_properties; i++) {
            if (!consumer_only_property(cfg->kafka.properties[i].key)) {
                props[n_props++] = cfg->kafka.properties[i];
            }
        }
        err = vg_producer_new(&d->dlq, d->em.bootstraps, props, n_props, errstr,
                              sizeof(errstr));
        free(props);
    }
    if (err) {
        fprintf(stderr, "vigil: dead-letter producer: %s\n", errstr);
        return err == VG_ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    d->pl = cli_pipeline_new(d->st, d->rs, &cfg->health, &d->stats);
    cli_pipeline_set_input(d->pl, &cfg->kafka, &cfg->decode, d->dlq);
    if (d->http) { /* issue 7: the HTTP API, /metrics and the console */
        return cli_http_start(d);
    }
    return CLI_EXIT_OK;
}

int cli_daemon_run(struct cli_daemon *d)
{
    struct vg_consumer_handler h;
    struct sigaction sa;
    vg_err_t err;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_sighup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal_consumer = d->consumer;

    cli_pipeline_on_idle(d->pl, daemon_idle, d);
    cli_pipeline_handler(d->pl, &h);
    VG_LOG_INFO("consumer", "consuming %zu topic(s) as group %s", d->cfg->kafka.n_topics,
                d->cfg->kafka.group);
    err = vg_consumer_run(d->consumer, &h);
    signal_consumer = NULL;
    if (err) {
        VG_LOG_ERROR("consumer", "consumer stopped: %s", vg_err_name(err));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

void cli_daemon_request_stop(struct cli_daemon *d)
{
    if (d->consumer) {
        vg_consumer_stop(d->consumer);
    }
}

void cli_daemon_stop(struct cli_daemon *d)
{
    cli_http_stop(d); /* first: its threads read the consumer and the stats */
    cli_dispatch_stop(d->dispatch);
    d->dispatch = NULL;
    vg_consumer_destroy(d->consumer);
    d->consumer = NULL;
    cli_pipeline_destroy(d->pl);
    d->pl = NULL;
    vg_producer_destroy(d->dlq);
    d->dlq = NULL;
    vg_state_destroy(d->st);
    d->st = NULL;
    cli_embedded_stop(&d->em);
    vg_sinks_destroy(d->sk);
    d->sk = NULL;
    vg_ruleset_destroy(d->rs);
    d->rs = NULL;
    d->stats.metrics = NULL;
    vg_metrics_destroy(d->metrics);
    d->metrics = NULL;
}

int cli_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"debug", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct vg_config cfg;
    struct cli_daemon d;
    int rc;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            vg_log_enable_debug(optarg);
            break;
        case 'h':
            printf("usage: vigil run [-c vigil.yaml] [--debug FACILITY,...]\n");
            return CLI_EXIT_OK;
        default:
            fprintf(stderr, "usage: vigil run [-c vigil.yaml] [--debug FACILITY,...]\n");
            return CLI_EXIT_USAGE;
        }
    }
    rc = cli_load_config(&cfg, config_path);
    if (rc) {
        vg_config_fini(&cfg);
        return rc;
    }
    memset(&d, 0, sizeof(d));
    d.http = true;
    rc = cli_daemon_start(&d, &cfg);
    if (rc == CLI_EXIT_OK) {
        rc = cli_daemon_run(&d);
    }
    cli_daemon_stop(&d);
    vg_config_fini(&cfg);
    VG_LOG_INFO("cli", "stopped");
    return rc;
}
