/*
 * The flags the commands that work on Redis share, parsed once (getopt_long
 * over the shared options plus each command's own), and what they run
 * with: the config (only `redis:` for those that only read) and the Redis
 * connection (--redis, redis.url, or the embedded one) in the layout of
 * the data there when the config does not name one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "vigil/engine.h"
#include "vigil/mem.h"

static const struct option common_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"redis", required_argument, NULL, CLI_LONG_ONLY('r')},
    {"prefix", required_argument, NULL, CLI_LONG_ONLY('P')},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
};

/* The shared long options, then the command's own; {0}-terminated (caller frees). */
static struct option *all_options(const struct cli_readonly_cmd *cmd)
{
    size_t n_own = 0;
    struct option *v;

    while (cmd->opts && cmd->opts[n_own].name) {
        n_own++;
    }
    v = vg_calloc(VG_ARRAY_LEN(common_opts) + n_own + 1, sizeof(*v));
    memcpy(v, common_opts, sizeof(common_opts));
    if (n_own > 0) {
        memcpy(v + VG_ARRAY_LEN(common_opts), cmd->opts, n_own * sizeof(*v));
    }
    return v;
}

/* The short options of `opts` in getopt syntax ("c:o:ht:a"; caller frees). */
static char *all_shortopts(const struct option *opts)
{
    struct vg_buf b = {0};

    for (const struct option *o = opts; o->name; o++) {
        if (o->val < 0x100) {
            vg_buf_putc(&b, (char)o->val);
            vg_buf_puts(&b, o->has_arg == required_argument ? ":" : "");
        }
    }
    return vg_buf_steal(&b);
}

int cli_flags_next(struct cli_flags *f, int argc, char **argv)
{
    int opt;

    while ((opt = getopt_long(argc, argv, f->shortopts, f->opts, NULL)) != -1) {
        if (opt == 'c' && f->config_path) {
            *f->config_path = optarg;
            continue;
        }
        if (opt == 'h') {
            f->usage(stdout);
            f->exit_code = CLI_EXIT_OK;
        } else if (opt == '?') { /* getopt_long printed what was wrong */
            f->usage(stderr);
            f->exit_code = CLI_EXIT_USAGE;
        } else {
            return opt;
        }
        f->stop = true;
        return -1;
    }
    return -1;
}

static int on_flag(const struct cli_readonly_cmd *cmd, struct cli_readonly *ro, int opt,
                   const char *arg)
{
    switch (opt) {
    case CLI_LONG_ONLY('r'):
        ro->redis_url = arg;
        return CLI_CONTINUE;
    case CLI_LONG_ONLY('P'):
        ro->prefix = arg;
        return CLI_CONTINUE;
    case 'o':
        ro->output = arg;
        return CLI_CONTINUE;
    default:
        return cmd->on_flag(cmd->ctx, opt, arg);
    }
}

/* CLI_CONTINUE when `output` is one of the command's formats; else says which are. */
static int check_output(const struct cli_readonly_cmd *cmd, const char *output)
{
    struct vg_buf known = {0};
    size_t n = 0;

    for (const char *const *f = cmd->outputs; *f; f++, n++) {
        if (strcmp(*f, output) == 0) {
            return CLI_CONTINUE;
        }
    }
    for (size_t i = 0; i < n; i++) {
        vg_buf_printf(&known, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", cmd->outputs[i]);
    }
    fprintf(stderr, "vigil %s: unknown output format \"%s\" (%s)\n", cmd->name, output, known.data);
    vg_buf_fini(&known);
    return CLI_EXIT_USAGE;
}

int cli_readonly_parse(const struct cli_readonly_cmd *cmd, int argc, char **argv,
                       struct cli_readonly *ro)
{
    struct option *opts = all_options(cmd);
    char *shortopts = all_shortopts(opts);
    struct cli_flags flags = {
        .shortopts = shortopts, .opts = opts, .usage = cmd->usage, .config_path = &ro->config_path};
    int rc = CLI_CONTINUE;
    int opt;

    memset(ro, 0, sizeof(*ro));
    ro->output = cmd->outputs[0];
    /* 0, not 1: glibc then starts afresh (a second parse in one process: `incidents show`) */
    optind = 0;
    while (rc == CLI_CONTINUE && (opt = cli_flags_next(&flags, argc, argv)) != -1) {
        rc = on_flag(cmd, ro, opt, optarg);
    }
    if (flags.stop) {
        rc = flags.exit_code;
    }
    if (rc == CLI_CONTINUE) {
        rc = check_output(cmd, ro->output);
    }
    ro->args = argv + optind;
    ro->n_args = argc - optind;
    if (rc == CLI_CONTINUE && cmd->one_operand && ro->n_args != 1) {
        fprintf(stderr, "vigil %s: want exactly one %s\n", cmd->name, cmd->one_operand);
        cmd->usage(stderr);
        rc = CLI_EXIT_USAGE;
    }
    free(shortopts);
    free(opts);
    return rc;
}

/* Whether the flag `arg` ("--name", "-x", "-abx") takes the next argument as its value. */
static bool takes_value(const char *arg, const struct option *opts, const char *shortopts)
{
    if (arg[1] == '-') {
        size_t len = strlen(arg + 2);

        if (strchr(arg, '=')) {
            return false;
        }
        /* getopt_long also takes an unambiguous prefix ("--conf") */
        for (const struct option *o = opts; o->name; o++) {
            if (strncmp(o->name, arg + 2, len) == 0) {
                return o->has_arg == required_argument;
            }
        }
        return false;
    }
    for (const char *p = arg + 1; *p; p++) {
        const char *s = strchr(shortopts, *p);

        if (s && s[1] == ':') {
            return p[1] == '\0'; /* "-ojson" carries its value */
        }
    }
    return false;
}

int cli_readonly_first_operand(const struct cli_readonly_cmd *cmd, int argc, char **argv)
{
    struct option *opts = all_options(cmd);
    char *shortopts = all_shortopts(opts);
    int i = 1;

    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        i += takes_value(argv[i], opts, shortopts) ? 2 : 1;
    }
    free(shortopts);
    free(opts);
    return i < argc ? i : argc;
}

/* The config at `path` (NULL: the defaults): all of it, or only `redis:`. Returns an exit code. */
static int load_config(struct vg_config *cfg, const char *path, enum cli_config_need need)
{
    char errstr[1024];
    vg_err_t err = VG_OK;

    vg_config_init(cfg);
    if (path && need == CLI_CONFIG_REDIS) {
        err = vg_config_load_redis(cfg, path, errstr, sizeof(errstr));
    } else {
        err = vg_config_load(cfg, path, errstr, sizeof(errstr)); /* the VIGIL_* overrides too */
    }
    if (err != VG_OK) {
        fprintf(stderr, "vigil: %s\n", errstr);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/*
 * Connect as `rc` says. Without a redis.layout of its own (`--redis URL`
 * and no config, or a config that leaves it out) the layout is the data's:
 * partitioned when the partitioned layout's registry of partitions
 * (<prefix>:parts, docs/state.md "Layouts") holds some, else rc's default
 * (single on one Redis; a cluster's default is partitioned already). A
 * layout that is given is used as given, whatever the data.
 */
static vg_err_t connect_in_layout(struct vg_state **st, const char *url, const char *prefix,
                                  const struct vg_redis_config *rc, char *errstr,
                                  size_t errstr_size)
{
    struct vg_redis_config probe = *rc;
    struct vg_offset *parts = NULL;
    size_t n = 0;
    vg_err_t err;

    if (rc->layout_set || rc->partitioned) {
        return vg_state_connect_config(st, url, prefix, rc, errstr, errstr_size);
    }
    probe.partitioned = true;
    err = vg_state_connect_config(st, url, prefix, &probe, errstr, errstr_size);
    if (err == VG_OK) {
        err = vg_state_scopes(*st, &parts, &n, errstr, errstr_size);
        vg_state_scopes_free(parts, n);
    }
    if (err == VG_OK && n > 0) {
        return VG_OK;
    }
    vg_state_destroy(*st);
    *st = NULL;
    if (err != VG_OK) {
        return err;
    }
    return vg_state_connect_config(st, url, prefix, rc, errstr, errstr_size);
}

int cli_readonly_run(const char *cmd, const struct cli_readonly *ro, enum cli_config_need need,
                     int (*fn)(struct vg_state *st, const struct cli_readonly *ro, void *arg),
                     void *arg)
{
    struct vg_config cfg;
    struct vg_state *st = NULL;
    struct vg_redis_child *child = NULL;
    char errstr[1024];
    char *url = NULL;
    int rc = load_config(&cfg, ro->config_path, need);

    if (rc == CLI_EXIT_OK) {
        const char *prefix = ro->prefix ? ro->prefix : cfg.redis.prefix;

        if (vg_engine_redis_for_reading(&cfg, ro->redis_url, &url, &child, errstr,
                                        sizeof(errstr)) != VG_OK ||
            connect_in_layout(&st, url, prefix, &cfg.redis, errstr, sizeof(errstr)) != VG_OK) {
            /* errstr names the URL with the password redacted, and the reason */
            fprintf(stderr, "vigil %s: cannot reach redis: %s\n", cmd, errstr);
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK) {
        rc = fn(st, ro, arg);
    }
    free(url);
    vg_state_destroy(st);
    vg_redis_child_stop(child);
    vg_config_fini(&cfg);
    return rc;
}

int cli_state_error(const char *cmd, vg_err_t err, const char *errstr)
{
    if (err == VG_ERR_BACKEND || err == VG_ERR_TIMEOUT) {
        fprintf(stderr, "vigil %s: cannot reach redis: %s\n", cmd, errstr);
        return CLI_EXIT_USAGE;
    }
    fprintf(stderr, "vigil %s: %s\n", cmd, errstr);
    return CLI_EXIT_FAILURE;
}
