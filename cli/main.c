/*
 * vigil: entry point and subcommand dispatch. Each subcommand lives in
 * its own cmd_*.c; exit codes: 0 ok, 1 runtime failure, 2 usage/config.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vigil/json.h"

static void usage(FILE *out)
{
    fputs("usage: vigil <command> [options]\n"
          "\n"
          "commands:\n"
          "  run    [-c vigil.yaml]            consume events, keep state, page (the daemon)\n"
          "  get    [-c vigil.yaml | --redis URL] [-t TYPE] [-w WORKSPACE] [-n NAME-GLOB]\n"
          "         [--owner O] [-a] [-o table|json]\n"
          "                                    list Resources and their status and runtime\n"
          "  check  [-c vigil.yaml] [RULES...]  validate config and rule files\n"
          "  demo                              run the embedded stack on examples/events/demo.jsonl\n"
          "  version\n"
          "\n"
          "See docs/ for the configuration, event and webhook formats.\n",
          out);
}

int main(int argc, char **argv)
{
    const char *cmd;
    vg_json_init();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "run")) {
        return cli_cmd_run(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "get")) {
        return cli_cmd_get(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "check")) {
        return cli_cmd_check(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "demo")) {
        return cli_cmd_demo(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("vigil %s\n", VIGIL_VERSION);
        return CLI_EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "vigil: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
