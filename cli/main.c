/*
 * vigil: entry point and subcommand dispatch. Each subcommand lives in
 * its own cmd_*.c; exit codes: 0 ok, 1 runtime failure, 2 usage/config.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/yaml.h"

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
        "  check  [-c vigil.yaml] [--format text|json|github] [RULES...]\n"
        "                                    validate config and rule files (every error)\n"
        "  test   [-v] TEST-FILE...           rule unit tests on a fake clock\n"
        "  incidents [-c vigil.yaml | --redis URL] [-o table|json] [--all | --since DUR]\n"
        "                                    firing and recently ended incidents\n"
        "  incidents resolve ID              end an incident by hand (resolve: never)\n"
        "  silence add --match K=GLOB... --for DUR --comment TEXT\n"
        "  silence list [-o table|json] | silence expire ID\n"
        "  demo                              run the embedded stack on examples/events/demo.jsonl\n"
        "  config print [-c vigil.yaml]      the effective config (file + VIGIL_* env), redacted\n"
        "  replay [-c vigil.yaml] --from-beginning | --from TIME [--topic T] [--dry-run] [--page]\n"
        "                                    rebuild the state from the topics, then swap it in\n"
        "  sink test [-c vigil.yaml] [--severity SEV] NAME | --all\n"
        "                                    send a test notification, print status and latency\n"
        "  version\n"
        "  help [COMMAND]                    this list, or one command's flags (also COMMAND "
        "--help)\n"
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
    {"config", cli_cmd_config},
    {"sink", cli_cmd_sink},
    {"replay", cli_cmd_replay},
};

/* "unknown command "X" (did you mean "Y"?)" on stderr, then the list. */
static int unknown_command(const char *cmd)
{
    const char *names[VG_ARRAY_LEN(commands) + 3];
    const char *hint;
    size_t n = 0;

    for (size_t i = 0; i < VG_ARRAY_LEN(commands); i++) {
        names[n++] = commands[i].name;
    }
    names[n++] = "version";
    names[n++] = "help";
    names[n] = NULL;
    hint = vg_yaml_suggest(cmd, names);
    if (hint) {
        fprintf(stderr, "vigil: unknown command \"%s\" (did you mean \"%s\"?)\n", cmd, hint);
    } else {
        fprintf(stderr, "vigil: unknown command \"%s\"\n", cmd);
    }
    fputs("Run `vigil help` for the list of commands.\n", stderr);
    return CLI_EXIT_USAGE;
}

/* `vigil help CMD`: the command's own usage, as `vigil CMD --help` prints it. */
static int help(const char *cmd)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(commands); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            char *args[] = {(char *)commands[i].name, (char *)"--help", NULL};

            return commands[i].fn(2, args);
        }
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    return unknown_command(cmd);
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
    for (size_t i = 0; i < VG_ARRAY_LEN(commands); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            /* getopt_long names argv[0] in what it prints: "vigil get: unrecognized option" */
            char prog[64];

            snprintf(prog, sizeof(prog), "vigil %s", commands[i].name);
            argv[1] = prog;
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("vigil %s\n", VIGIL_VERSION);
        return CLI_EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            return help(argv[2]);
        }
        usage(stdout);
        return CLI_EXIT_OK;
    }
    return unknown_command(cmd);
}
