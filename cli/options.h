/*
 * Private to cli/ (options.c): the getopt_long loop of every command, with
 * -h/--help, -c/--config and a refused flag handled alike; and what the
 * commands that work on Redis share (get, history, incidents, incidents
 * show, dlq, silence): their common flags -c/--config, --redis, --prefix,
 * -o/--output and -h/--help, parsed together with each command's own, and
 * the config and Redis connection they run with.
 */
#ifndef VIGIL_CLI_OPTIONS_H
#define VIGIL_CLI_OPTIONS_H

#include <getopt.h>
#include <stdio.h>

#include "vigil/config.h"
#include "vigil/err.h"
#include "vigil/state.h"

/* The shared flags of the commands that read Redis, for their usage texts. */
#define CLI_USAGE_REDIS_FLAGS                                                                      \
    "  -c, --config FILE    read redis.url and redis.prefix from this config\n"                    \
    "      --redis URL      the Redis to use instead: redis://[user:pass@]host[:port][/db]\n"      \
    "                       or unix:///path.sock[?db=N] (overrides the config)\n"                  \
    "      --prefix P       key prefix (overrides the config; default vigil)\n"                    \
    "  -h, --help           this help\n"

/* Returned by the parser and the flag callbacks when the command goes on. */
#define CLI_CONTINUE (-1)
/*
 * The `val` of a long option without a short form (--owner): an option
 * whose val is a character is also that short option (-t).
 */
#define CLI_LONG_ONLY(c) (0x100 + (c))

/* A command's flags as getopt_long takes them, and how the parse ended. */
struct cli_flags {
    const char *shortopts;     /* getopt syntax ("c:h") */
    const struct option *opts; /* {0}-terminated */
    void (*usage)(FILE *out);
    const char **config_path; /* where -c, --config FILE goes; NULL: the command has no -c */
    bool stop;                /* set when the command ends here, with exit_code */
    int exit_code;
};

/*
 * The next of the command's own flags in argv (argv[0] is its name), as
 * getopt_long returns it with optarg; -1 when there are no more (optind
 * at the first operand) or the command ends (f->stop). -c FILE sets
 * *f->config_path; -h prints the usage on stdout and ends with
 * CLI_EXIT_OK; a flag getopt_long refuses (it printed why) prints the
 * usage on stderr and ends with CLI_EXIT_USAGE. Uses getopt_long's globals.
 */
int cli_flags_next(struct cli_flags *f, int argc, char **argv);

/* The shared flags and the operands, after cli_readonly_parse. */
struct cli_readonly {
    const char *config_path; /* -c, --config FILE; NULL: the defaults */
    const char *redis_url;   /* --redis URL; NULL: the config's */
    const char *prefix;      /* --prefix P; NULL: the config's */
    const char *output;      /* -o, --output: one of the command's formats */
    char **args;             /* the operands (what is left of argv after the flags) */
    int n_args;
};

/* A command: how it is named, its output formats and usage, and its own flags (in this order). */
struct cli_readonly_cmd {
    const char *name;           /* "incidents show": messages start "vigil <name>: " */
    const char *const *outputs; /* -o formats, NULL-terminated; the first is the default */
    void (*usage)(FILE *out);
    const struct option *opts; /* its own options ({0}-terminated), or NULL */
    const char *one_operand;   /* "Resource ID": exactly one operand; NULL: the command checks */
    /*
     * One of its own flags: `opt` as getopt_long returns it, `arg` its
     * value (NULL for a flag without one). Returns CLI_CONTINUE, or an exit
     * code after printing why. NULL when the command has no flags.
     */
    int (*on_flag)(void *ctx, int opt, const char *arg);
    void *ctx;
};

/*
 * Parse argv (argv[0] is the command's name): the shared flags into `ro`,
 * the command's own through cmd->on_flag, in order. `-h` prints the usage
 * on stdout and returns CLI_EXIT_OK; an unknown flag or output format
 * (or a count of operands other than cmd->one_operand's) prints why on
 * stderr and returns CLI_EXIT_USAGE; otherwise returns CLI_CONTINUE with
 * ro->args the operands. Uses getopt_long's globals.
 */
int cli_readonly_parse(const struct cli_readonly_cmd *cmd, int argc, char **argv,
                       struct cli_readonly *ro);
/*
 * The index in argv of the first operand, skipping the flags of `cmd`
 * and their values, without acting on any (argc when there is none): for
 * a command that hands a subcommand to another parser (`incidents show`).
 */
int cli_readonly_first_operand(const struct cli_readonly_cmd *cmd, int argc, char **argv);

/* What a command needs of the config. */
enum cli_config_need {
    CLI_CONFIG_REDIS, /* only `redis:` (vg_config_load_redis): commands that only read */
    CLI_CONFIG_ALL,   /* everything, every secret resolved: commands that write or deliver */
};

/*
 * The command's work on Redis: load the config of `ro` (only what `need`
 * says), connect (ro->redis_url and ro->prefix override the config's),
 * call `fn(st, ro, arg)`, disconnect, and return its exit code. A config
 * error prints file:line:col and returns CLI_EXIT_USAGE; so does "cannot
 * reach", printing the redacted URL and the reason.
 */
int cli_readonly_run(const char *cmd, const struct cli_readonly *ro, enum cli_config_need need,
                     int (*fn)(struct vg_state *st, const struct cli_readonly *ro, void *arg),
                     void *arg);
/* Print a state error of `cmd`; BACKEND/TIMEOUT exit 2 ("cannot reach redis"), others 1. */
int cli_state_error(const char *cmd, vg_err_t err, const char *errstr);

#endif
