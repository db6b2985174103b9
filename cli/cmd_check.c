/*
 * `vigil check [-c vigil.yaml] [RULES...]`: validate the config, the rule
 * files and the sink names pagers use. Every error as file:line:col;
 * exit 1 on any error (CI for rule repos).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vigil/mem.h"
#include "vigil/rules.h"

int cli_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct vg_config cfg;
    struct vg_ruleset *rs;
    char errstr[1024];
    int rc = CLI_EXIT_OK;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            printf("usage: vigil check [-c vigil.yaml] [RULES-FILE|DIR...]\n");
            return CLI_EXIT_OK;
        default:
            fprintf(stderr, "usage: vigil check [-c vigil.yaml] [RULES-FILE|DIR...]\n");
            return CLI_EXIT_USAGE;
        }
    }
    vg_config_init(&cfg);
    if (config_path && vg_config_load_file(&cfg, config_path, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        vg_config_fini(&cfg);
        return CLI_EXIT_FAILURE;
    }
    rs = vg_ruleset_new();
    if (optind < argc) {
        rc = vg_rules_load_paths(rs, argv + optind, (size_t)(argc - optind), errstr,
                                 sizeof(errstr)) == VG_OK
                 ? CLI_EXIT_OK
                 : CLI_EXIT_FAILURE;
    } else {
        rc = vg_rules_load_paths(rs, cfg.rules, cfg.n_rules, errstr, sizeof(errstr)) == VG_OK
                 ? CLI_EXIT_OK
                 : CLI_EXIT_FAILURE;
    }
    if (rc == CLI_EXIT_OK && (config_path || optind >= argc)) {
        char **names = vg_calloc(cfg.n_sinks + 1, sizeof(*names));
        for (size_t i = 0; i < cfg.n_sinks; i++) {
            names[i] = cfg.sinks[i].name;
        }
        if (vg_rules_check_sinks(rs, names, cfg.n_sinks, errstr, sizeof(errstr)) != VG_OK) {
            rc = CLI_EXIT_FAILURE;
        }
        free(names);
    }
    if (rc == CLI_EXIT_OK) {
        printf("ok: %zu monitors, %zu pagers\n", vg_rules_monitor_count(rs),
               vg_rules_pager_count(rs));
    } else {
        fprintf(stderr, "%s\n", errstr);
    }
    vg_ruleset_destroy(rs);
    vg_config_fini(&cfg);
    return rc;
}
