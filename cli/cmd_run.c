/*
 * `vigil run`: load the config and run the engine (engine/) until a signal.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "vigil/engine.h"
#include "vigil/log.h"

static void print_config_error(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "vigil: %s\n", message);
}

int cli_load_config(struct vg_config *cfg, const char *path)
{
    vg_config_init(cfg);
    /* every error, not only the first; the VIGIL_* overrides apply without a file too */
    if (vg_config_check(cfg, path, print_config_error, NULL) != VG_OK) {
        vg_config_fini(cfg);
        return CLI_EXIT_USAGE;
    }
    cli_apply_log_config(&cfg->log);
    return CLI_EXIT_OK;
}

void cli_apply_log_config(const struct vg_log_config *log)
{
    vg_log_set_level(log->level);
    vg_log_set_json(log->json);
}

int cli_engine_exit_code(vg_err_t err)
{
    if (err == VG_OK) {
        return CLI_EXIT_OK;
    }
    return err == VG_ERR_INVALID || err == VG_ERR_PARSE ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
}

static void usage(FILE *out)
{
    fputs("usage: vigil run [-c vigil.yaml] [--debug FACILITY,...]\n"
          "\n"
          "The daemon: consume the event topics, keep each Resource's state in Redis,\n"
          "evaluate the monitors and page through the sinks. SIGINT/SIGTERM stop it\n"
          "cleanly, SIGHUP reloads the rules.\n"
          "\n"
          "  -c, --config FILE       the configuration (docs/config.md); without it the\n"
          "                          embedded defaults: mock Kafka, private redis-server\n"
          "      --debug FACILITIES  DEBUG log lines for these facilities, comma-separated:\n"
          "                          api, cli, consumer, kafka, rules, sinks, state, or all\n"
          "  -h, --help              this help\n"
          "\n"
          "Every config key can also be set by an environment variable (VIGIL_KAFKA_BROKERS,\n"
          "VIGIL_REDIS_URL, ...; docs/config.md).\n",
          out);
}

int cli_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"debug", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct vg_engine_options eopt = {.http = true, .signals = true};
    const char *config_path = NULL;
    struct cli_flags flags = {
        .shortopts = "c:h", .opts = opts, .usage = usage, .config_path = &config_path};
    struct vg_engine *eng = NULL;
    struct vg_config cfg;
    char errstr[1024];
    vg_err_t err;
    int rc;
    int opt;

    while ((opt = cli_flags_next(&flags, argc, argv)) != -1) {
        switch (opt) {
        case 'd':
            /* a typo would otherwise switch nothing on, silently */
            if (vg_log_check_debug(optarg, errstr, sizeof(errstr)) != VG_OK) {
                fprintf(stderr, "vigil run: %s\n", errstr);
                return CLI_EXIT_USAGE;
            }
            vg_log_enable_debug(optarg);
            break;
        }
    }
    if (flags.stop) {
        return flags.exit_code;
    }
    rc = cli_load_config(&cfg, config_path);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    /* The built-in rules path only exists in a checkout: outside one, name the flag. */
    for (size_t i = 0; !config_path && i < cfg.n_rules; i++) {
        if (!strpbrk(cfg.rules[i], "*?[") && access(cfg.rules[i], F_OK) != 0) {
            fprintf(stderr,
                    "vigil run: no -c given, and the default rules path %s is not in the current "
                    "directory (the defaults suit a checkout of vigil): pass -c vigil.yaml "
                    "(e.g. -c examples/vigil.yaml in the repository, docs/config.md)\n",
                    cfg.rules[i]);
            vg_config_fini(&cfg);
            return CLI_EXIT_USAGE;
        }
    }
    err = vg_engine_start(&eng, &cfg, &eopt, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil: %s\n", errstr);
    } else {
        err = vg_engine_run(eng);
    }
    vg_engine_destroy(eng);
    vg_config_fini(&cfg);
    VG_LOG_INFO("cli", "stopped");
    return cli_engine_exit_code(err);
}
