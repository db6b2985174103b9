/*
 * vigil: entry point and subcommand dispatch. Each subcommand lives in
 * its own cmd_*.c; exit codes: 0 ok, 1 runtime failure, 2 usage/config.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/log.h"

static void usage(FILE *out)
{
    fputs(
        "usage: vigil <command> [options]\n"
        "\n"
        "commands:\n"
        "  run    [-c vigil.yaml]            consume events, keep state, page (the daemon)\n"
        "  get    [-c vigil.yaml | --redis URL] [-t TYPE] [-w WORKSPACE] [-n NAME-GLOB]\n"
        "         [--owner O] [-a] [-o table|wide|json|yaml]\n"
        "                                    list Resources and their status and runtime\n"
        "  get    [-c vigil.yaml | --redis URL] [-o table|json|yaml] ID\n"
        "                                    one Resource in full\n"
        "  history [-c vigil.yaml | --redis URL] [-n N] [-o table|json|yaml] ID\n"
        "                                    a Resource's transitions and log lines\n"
        "  dlq    [-c vigil.yaml | --redis URL] list|retry ID|drop ID\n"
        "                                    pages given up on (dead letters)\n"
        "  incidents show [-c vigil.yaml | --redis URL] [-o table|json] ID\n"
        "                                    an incident's notification history\n"
        "  check  [-c vigil.yaml] [--format text|json] [RULES...]\n"
        "                                    validate config and rule files (every error)\n"
        "  test   [-v] TEST-FILE...           rule unit tests on a fake clock\n"
        "  incidents [-c vigil.yaml | --redis URL] [-o table|json] [--all | --since DUR]\n"
        "                                    firing and recently ended incidents\n"
        "  incidents resolve ID              end an incident by hand (resolve: never)\n"
        "  silence add --match K=GLOB... --for DUR --comment TEXT\n"
        "  silence list [-o table|json] | silence expire ID\n"
        "  demo                              run the embedded stack on examples/events/demo.jsonl\n"
        "  version\n"
        "\n"
        "Exit codes: 0 ok, 1 runtime failure, 2 usage, config or Redis unreachable.\n"
        "See docs/cli.md, and docs/ for the configuration, event and webhook formats.\n",
        out);
}

/* The subcommands: each gets argv from its own name on. */
static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    {"run", cli_cmd_run},
    {"get", cli_cmd_get},
    {"history", cli_cmd_history},
    {"dlq", cli_cmd_dlq},
    {"incidents", cli_cmd_incidents}, /* `incidents show ID` goes on to cmd_incidents_show.c */
    {"silence", cli_cmd_silence},
    {"check", cli_cmd_check},
    {"test", cli_cmd_test},
    {"demo", cli_cmd_demo},
};

int main(int argc, char **argv)
{
    const char *cmd;

    vg_json_init();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cmd = argv[1];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
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
