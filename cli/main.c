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

/*
 * `vigil run --debug FACILITY,...`: every --debug list (`--debug L` or
 * `--debug=L`) must name known facilities, checked before the command
 * starts anything: a typo would otherwise switch nothing on, silently.
 * Returns an exit code.
 */
static int check_debug_lists(const char *cmd, int argc, char **argv)
{
    char errstr[512];

    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *list = NULL;

        if (strcmp(argv[i], "--debug") == 0 && i + 1 < argc) {
            list = argv[++i];
        } else if (strncmp(argv[i], "--debug=", 8) == 0) {
            list = argv[i] + 8;
        }
        if (list && vg_log_check_debug(list, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "vigil %s: %s\n", cmd, errstr);
            return CLI_EXIT_USAGE;
        }
    }
    return CLI_EXIT_OK;
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
        int rc = check_debug_lists(cmd, argc - 2, argv + 2);

        return rc != CLI_EXIT_OK ? rc : cli_cmd_run(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "get")) {
        return cli_cmd_get(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "dlq")) {
        return cli_cmd_dlq(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "incidents")) {
        /* `incidents show ID` goes on to cmd_incidents_show.c */
        return cli_cmd_incidents(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "silence")) {
        return cli_cmd_silence(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "test")) {
        return cli_cmd_test(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "history")) {
        return cli_cmd_history(argc - 1, argv + 1);
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
