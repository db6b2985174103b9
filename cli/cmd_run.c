/*
 * `vigil run`: load the config and run the engine (engine/) until a signal.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vigil/engine.h"
#include "vigil/log.h"

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

int cli_engine_exit_code(vg_err_t err)
{
    if (err == VG_OK) {
        return CLI_EXIT_OK;
    }
    return err == VG_ERR_INVALID || err == VG_ERR_PARSE ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
}

int cli_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"debug", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct vg_engine_options eopt = {.http = true, .signals = true};
    const char *config_path = NULL;
    struct vg_engine *eng = NULL;
    struct vg_config cfg;
    char errstr[1024];
    vg_err_t err;
    int rc;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            /* a typo would otherwise switch nothing on, silently */
            if (vg_log_check_debug(optarg, errstr, sizeof(errstr)) != VG_OK) {
                fprintf(stderr, "vigil run: %s\n", errstr);
                return CLI_EXIT_USAGE;
            }
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
