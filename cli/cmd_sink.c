/*
 * `vigil sink test [-c vigil.yaml] [--severity SEV] NAME | --all`: send
 * one clearly marked test notification through configured sinks, the way
 * the dispatcher does (the v1 body, the sink's format, signing, headers,
 * rate limit, retries with backoff and Retry-After), and print the HTTP
 * status and latency of each attempt. Nothing is written to Redis.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "options.h"
#include "vigil/log.h"
#include "vigil/page.h"
#include "vigil/util.h"

static void usage(FILE *out)
{
    fputs("usage: vigil sink test [-c vigil.yaml] [--severity SEVERITY] NAME\n"
          "       vigil sink test [-c vigil.yaml] [--severity SEVERITY] --all\n"
          "\n"
          "Send a test notification (marked TEST: monitor vigil-sink-test, incident type\n"
          "vigil-sink-test) through a configured sink, as vigil run would: the same body,\n"
          "format, signing, headers and retries. Prints each attempt's HTTP status and\n"
          "latency.\n"
          "\n"
          "  test NAME            the sink to try\n"
          "  -a, --all            try every configured sink, one after the other\n"
          "  -s, --severity SEV   the incident's severity: info, low, medium, high or\n"
          "                       critical (default info)\n"
          "  -c, --config FILE    the config that defines the sinks (default: the built-in\n"
          "                       defaults, a console sink)\n"
          "  -h, --help           this help\n"
          "\n"
          "Exit: 0 every sink accepted it, 1 a sink failed, 2 bad usage, config or sink name.\n",
          out);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The test notification for `sink`: a firing page, marked as a test everywhere a human looks. */
static char *test_body(const char *sink, const char *severity, int64_t now_ms, char **id_out)
{
    struct vg_page pg = {0};
    char *body;

    pg.id = vg_asprintf("vigil-sink-test-%lld-%s", (long long)now_ms, sink);
    pg.sink = vg_strdup(sink);
    pg.status = vg_strdup("firing");
    pg.incident.id = vg_asprintf("vigil-sink-test-%lld", (long long)now_ms);
    pg.incident.monitor = vg_strdup("vigil-sink-test");
    pg.incident.severity = vg_strdup(severity);
    pg.incident.summary =
        vg_asprintf("TEST notification from `vigil sink test` to sink %s: no action needed", sink);
    pg.incident.started_at_ms = now_ms;
    pg.incident_type = vg_strdup("vigil-sink-test");
    pg.description = vg_strdup("This is a test sent by `vigil sink test` to check that the sink "
                               "delivers. It is not about a real Resource.");
    pg.resource.type = vg_strdup("vigil");
    pg.resource.name = vg_strdup("sink-test");
    pg.resource.workspace = vg_strdup("test");
    pg.resource.version = vg_strdup("v1");
    pg.resource.owner = vg_strdup("vigil");
    pg.resource.id = vg_asprintf("vigil:v1:sink-test:test");
    snprintf(pg.resource.status, sizeof(pg.resource.status), "active");
    snprintf(pg.transition.field, sizeof(pg.transition.field), "status");
    snprintf(pg.transition.to, sizeof(pg.transition.to), "active");
    pg.transition.at_ms = now_ms;
    pg.at_ms = now_ms;
    body = vg_page_to_json(&pg);
    *id_out = vg_strdup(pg.id);
    vg_page_fini(&pg);
    return body;
}

/* Try `sink` until it accepts, gives up or runs out of attempts. Returns an exit code. */
static int test_sink(struct vg_sinks *sk, const char *sink, const char *severity)
{
    int max = vg_sinks_max_attempts(sk, sink);
    char *id = NULL;
    char *body = test_body(sink, severity, vg_now_ms(), &id);
    int rc = CLI_EXIT_FAILURE;

    for (int attempt = 1; attempt <= max;) {
        struct vg_sink_job job = {0};
        struct vg_sink_result res = {0};
        char errstr[512];
        int64_t wait_ms = 0;
        enum vg_sink_gate gate = vg_sinks_acquire(sk, sink, vg_mono_ms(), &wait_ms);
        int64_t delay;

        if (gate == VG_SINK_WAIT) { /* the sink's rate limit or Retry-After pause */
            sleep_ms(wait_ms > 0 && wait_ms < 1000 ? wait_ms : 100);
            continue;
        }
        if (gate != VG_SINK_GO) {
            printf("sink %s: %s\n", sink,
                   gate == VG_SINK_DISABLED ? "disabled (HTTP 410 Gone)" : "unknown sink");
            break;
        }
        job.tag = 1;
        job.sink = sink;
        job.id = id;
        job.body = body;
        job.body_len = strlen(body);
        if (vg_sinks_start(sk, &job, errstr, sizeof(errstr)) != VG_OK) {
            printf("sink %s: cannot send: %s\n", sink, errstr);
            break;
        }
        while (vg_sinks_poll(sk, 1000, &res, 1) == 0) {
        }
        if (res.err == VG_OK && res.status) {
            printf("sink %s: ok: HTTP %ld in %lld ms (attempt %d of %d)\n", sink, res.status,
                   (long long)res.latency_ms, attempt, max);
        } else if (res.err == VG_OK) { /* console, kafka: no HTTP */
            printf("sink %s: ok: delivered in %lld ms (attempt %d of %d)\n", sink,
                   (long long)res.latency_ms, attempt, max);
        }
        if (res.err == VG_OK) {
            rc = CLI_EXIT_OK;
            vg_sink_result_fini(&res);
            break;
        }
        printf("sink %s: attempt %d of %d failed: %s (HTTP %ld, %lld ms)%s%s\n", sink, attempt, max,
               res.detail, res.status, (long long)res.latency_ms, res.response[0] ? ": " : "",
               res.response);
        if (!vg_err_is_retriable(res.err) || attempt == max) {
            printf("sink %s: failed: %s\n", sink,
                   vg_err_is_retriable(res.err) ? "no attempts left" : "rejected, not retried");
            vg_sink_result_fini(&res);
            break;
        }
        delay = vg_sinks_backoff_ms(attempt, (double)(vg_mono_ms() % 1000) / 1000.0);
        if (res.retry_after_ms > delay) {
            delay = res.retry_after_ms;
        }
        vg_sink_result_fini(&res);
        sleep_ms(delay);
        attempt++;
    }
    free(body);
    free(id);
    return rc;
}

static bool severity_known(const char *s)
{
    static const char *const known[] = {"info", "low", "medium", "high", "critical"};

    for (size_t i = 0; i < VG_ARRAY_LEN(known); i++) {
        if (!strcmp(s, known[i])) {
            return true;
        }
    }
    return false;
}

int cli_cmd_sink(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"severity", required_argument, NULL, 's'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct cli_flags flags = {
        .shortopts = "c:s:ah", .opts = opts, .usage = usage, .config_path = &config_path};
    const char *severity = "info";
    const char *name = NULL;
    bool all = false;
    struct vg_config cfg;
    struct vg_sinks *sk = NULL;
    char errstr[1024];
    int rc;
    int opt;

    while ((opt = cli_flags_next(&flags, argc, argv)) != -1) {
        switch (opt) {
        case 's':
            severity = optarg;
            break;
        case 'a':
            all = true;
            break;
        }
    }
    if (flags.stop) {
        return flags.exit_code;
    }
    if (optind >= argc || strcmp(argv[optind], "test") != 0) {
        if (optind < argc) {
            fprintf(stderr, "vigil sink: unknown subcommand \"%s\"\n", argv[optind]);
        }
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    name = optind + 1 < argc ? argv[optind + 1] : NULL;
    if ((name != NULL) == all || optind + 2 < argc) {
        fprintf(stderr, "vigil sink test: name one sink, or --all\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!severity_known(severity)) {
        fprintf(stderr,
                "vigil sink test: unknown severity \"%s\" (info, low, medium, high or critical)\n",
                severity);
        return CLI_EXIT_USAGE;
    }
    rc = cli_load_config(&cfg, config_path);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (name && !vg_config_find_sink(&cfg, name)) {
        struct vg_buf known = {0};

        for (size_t i = 0; i < cfg.n_sinks; i++) {
            vg_buf_printf(&known, "%s%s", i ? ", " : "", cfg.sinks[i].name);
        }
        fprintf(stderr, "vigil sink test: unknown sink \"%s\" (configured: %s)\n", name,
                known.data ? known.data : "none");
        vg_buf_fini(&known);
        vg_config_fini(&cfg);
        return CLI_EXIT_USAGE;
    }
    if (vg_sinks_new(&sk, cfg.sinks, cfg.n_sinks, NULL, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil sink test: %s\n", errstr);
        vg_config_fini(&cfg);
        return CLI_EXIT_USAGE;
    }
    if (cfg.kafka.brokers) {
        /* kafka sinks without brokers of their own produce to the kafka section's cluster */
        vg_sinks_set_kafka_default(sk, cfg.kafka.brokers, cfg.kafka.properties,
                                   cfg.kafka.n_properties);
    }
    for (size_t i = 0; i < cfg.n_sinks; i++) {
        if (all || !strcmp(cfg.sinks[i].name, name)) {
            if (test_sink(sk, cfg.sinks[i].name, severity) != CLI_EXIT_OK) {
                rc = CLI_EXIT_FAILURE;
            }
        }
    }
    vg_sinks_destroy(sk);
    vg_config_fini(&cfg);
    return rc;
}
