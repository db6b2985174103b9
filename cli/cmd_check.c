/*
 * `vigil check [-c vigil.yaml] [--format text|json|github] [RULES...]`:
 * validate the config, each sink as sinks/ would build it, the rule files
 * and the sink names pagers use. Every error (a config error hides
 * nothing after it) as file:line:col: message, as JSON, or as GitHub
 * workflow annotations; exit 1 on any error, 2 when a file named on the
 * command line cannot be read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "options.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

/*
 * True when a Redis URL asks for TLS: the rediss:// scheme, or a tls= /
 * ssl= parameter that is not false/0/no. hiredis 0.14 cannot.
 */
static bool redis_url_wants_tls(const char *url)
{
    const char *q = strchr(url, '?');

    if (strncmp(url, "rediss://", 9) == 0 || strncmp(url, "redis+tls://", 12) == 0) {
        return true;
    }
    while (q && *q) {
        const char *p = q + 1;
        size_t len = strcspn(p, "&");

        if ((len >= 4 && strncmp(p, "tls=", 4) == 0) || (len >= 4 && strncmp(p, "ssl=", 4) == 0)) {
            const char *v = p + 4;
            size_t vlen = len - 4;

            if (!((vlen == 5 && strncmp(v, "false", 5) == 0) || (vlen == 1 && v[0] == '0') ||
                  (vlen == 2 && strncmp(v, "no", 2) == 0))) {
                return true;
            }
        }
        q = strchr(p, '&');
    }
    return false;
}

/* Config warnings: printed, never an error (the exit code is the errors'). */
static void config_warnings(const struct vg_config *cfg)
{
    if (cfg->redis.url && redis_url_wants_tls(cfg->redis.url)) {
        char redacted[512];

        vg_redact_url(cfg->redis.url, redacted, sizeof(redacted));
        fprintf(stderr,
                "%s: warning: redis.url %s asks for TLS, which vigil cannot speak (hiredis 0.14 "
                "has no TLS): run stunnel or a TLS sidecar next to vigil and point redis.url at "
                "its plain redis:// or unix:// address (docs/state.md, \"TLS\")\n",
                cfg->path ? cfg->path : "vigil.yaml", redacted);
    }
}

static void usage(FILE *out)
{
    fputs(
        "usage: vigil check [-c vigil.yaml] [--format text|json|github] [RULES-FILE|DIR|GLOB...]\n"
        "\n"
        "Validate the configuration, every sink, the rule files and the sinks pagers name.\n"
        "Every error is printed (not only the first) as file:line:col: message.\n"
        "\n"
        "  -c, --config FILE    the config to check; its `rules` are checked unless RULES\n"
        "                       are given (default: the built-in defaults)\n"
        "  -f, --format FORMAT  text (default), json (one object), or github (workflow\n"
        "                       annotations: ::error file=F,line=L,col=C::message)\n"
        "  -h, --help           this help\n"
        "  RULES...             rule files, directories or globs instead of the config's\n"
        "\n"
        "Exit: 0 no error, 1 errors found, 2 bad usage or a file that cannot be read.\n",
        out);
}

enum format { FORMAT_TEXT, FORMAT_JSON, FORMAT_GITHUB };

static void add_diag(void *ctx, const char *message)
{
    vg_rules_diags_add_text(ctx, message);
}

/* A GitHub workflow command's value: %, CR, LF escaped (and ':' ',' in a property). */
static void put_github(struct vg_buf *b, const char *s, bool property)
{
    for (; *s; s++) {
        if (*s == '%') {
            vg_buf_puts(b, "%25");
        } else if (*s == '\r') {
            vg_buf_puts(b, "%0D");
        } else if (*s == '\n') {
            vg_buf_puts(b, "%0A");
        } else if (property && *s == ':') {
            vg_buf_puts(b, "%3A");
        } else if (property && *s == ',') {
            vg_buf_puts(b, "%2C");
        } else {
            vg_buf_putc(b, *s);
        }
    }
}

/* ::error file=F,line=L,col=C::message, one per finding, on stdout. */
static void print_github(const struct vg_rules_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct vg_rules_diag *g = &d->items[i];
        struct vg_buf b = {0};

        vg_buf_puts(&b, "::error");
        if (g->file[0]) {
            vg_buf_puts(&b, " file=");
            put_github(&b, g->file, true);
            if (g->line) {
                vg_buf_printf(&b, ",line=%zu,col=%zu", g->line, g->col);
            }
        }
        vg_buf_puts(&b, "::");
        put_github(&b, g->message, false);
        vg_buf_putc(&b, '\n');
        fputs(b.data, stdout);
        vg_buf_fini(&b);
    }
}

static void print_json(const struct vg_rules_diags *d, const struct vg_ruleset *rs)
{
    struct vg_buf b = {0};

    vg_buf_printf(&b, "{\"ok\":%s,\"monitors\":%zu,\"pagers\":%zu,\"errors\":[",
                  d->n ? "false" : "true", rs ? vg_rules_monitor_count(rs) : 0,
                  rs ? vg_rules_pager_count(rs) : 0);
    for (size_t i = 0; i < d->n; i++) {
        vg_buf_puts(&b, i ? ",{\"file\":" : "{\"file\":");
        vg_json_append_string(&b, d->items[i].file);
        vg_buf_printf(&b, ",\"line\":%zu,\"col\":%zu,\"message\":", d->items[i].line,
                      d->items[i].col);
        vg_json_append_string(&b, d->items[i].message);
        vg_buf_puts(&b, ",\"severity\":\"error\"}");
    }
    vg_buf_puts(&b, "]}\n");
    fputs(b.data, stdout);
    vg_buf_fini(&b);
}

static void print_text(const struct vg_rules_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct vg_rules_diag *g = &d->items[i];

        if (g->line) {
            fprintf(stderr, "%s:%zu:%zu: %s\n", g->file, g->line, g->col, g->message);
        } else if (g->file[0]) {
            fprintf(stderr, "%s: %s\n", g->file, g->message);
        } else {
            fprintf(stderr, "%s\n", g->message);
        }
    }
}

/*
 * Where a sinks/ error about sink `s` points: the key its message names
 * after "sink NAME: " ("header X-Y ..." -> that header under `headers`,
 * "template: ..." -> `template`), else the sink's name.
 */
static void sink_position(const struct vg_ydoc *doc, const struct vg_sink_config *s,
                          const char *message, size_t *line, size_t *col)
{
    const struct vg_ynode *node = vg_ynode_get(vg_ynode_get(doc->root, "sinks"), s->name);
    const char *p = strstr(message, ": ");
    size_t wlen;

    *line = s->line;
    *col = s->col;
    if (!node || node->kind != VG_YNODE_MAP || !p) {
        return;
    }
    p += 2;
    wlen = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
    for (size_t i = 0; wlen > 0 && i < node->n; i++) {
        const struct vg_ypair *kp = &node->pairs[i];
        size_t klen = strlen(kp->key);

        /* "header" names `headers`, "timeouts" names `timeout` */
        if (strncmp(kp->key, p, wlen < klen ? wlen : klen) != 0 || (wlen > klen + 1) ||
            (klen > wlen + 1)) {
            continue;
        }
        *line = kp->line;
        *col = kp->col;
        if (!strcmp(kp->key, "headers") && kp->value->kind == VG_YNODE_MAP) {
            const char *h = p + wlen + (p[wlen] == ' ' ? 1 : 0);

            for (size_t j = 0; j < kp->value->n; j++) {
                const char *hk = kp->value->pairs[j].key;
                size_t hlen = strlen(hk);

                if (!strncmp(h, hk, hlen) || (h[0] == '"' && !strncmp(h + 1, hk, hlen))) {
                    *line = kp->value->pairs[j].line;
                    *col = kp->value->pairs[j].col;
                }
            }
        }
        return;
    }
}

/* Each sink as sinks/ builds it (whsec_ secrets, URLs, headers), one diagnostic per sink. */
static void check_sinks(const struct vg_config *cfg, struct vg_rules_diags *diags)
{
    struct vg_ydoc doc = {0};
    char errstr[1024];
    bool have_doc = vg_yaml_load_file(&doc, cfg->path, 0, errstr, sizeof(errstr)) == VG_OK;

    for (size_t i = 0; i < cfg->n_sinks; i++) {
        const struct vg_sink_config *s = &cfg->sinks[i];
        struct vg_sinks *sk = NULL;

        if (s->broken) {
            continue; /* its errors are reported already */
        }
        if (vg_sinks_new(&sk, s, 1, NULL, errstr, sizeof(errstr)) != VG_OK) {
            size_t line = s->line;
            size_t col = s->col;
            char *text;

            if (have_doc) {
                sink_position(&doc, s, errstr, &line, &col);
            }
            text = line ? vg_asprintf("%s:%zu:%zu: %s", cfg->path, line, col, errstr)
                        : vg_asprintf("%s: %s", cfg->path, errstr);
            vg_rules_diags_add_text(diags, text);
            free(text);
        }
        vg_sinks_destroy(sk);
    }
    vg_ydoc_fini(&doc);
}

/* Operands that name no file (and are no glob) are usage errors: say so, return how many. */
static int missing_operands(char *const *paths, size_t n)
{
    int missing = 0;

    for (size_t i = 0; i < n; i++) {
        struct stat sb;

        if (stat(paths[i], &sb) != 0 && !vg_is_glob(paths[i])) {
            fprintf(stderr, "vigil check: %s: %s\n", paths[i], strerror(errno));
            missing++;
        }
    }
    return missing;
}

int cli_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct cli_flags flags = {
        .shortopts = "c:f:h", .opts = opts, .usage = usage, .config_path = &config_path};
    enum format format = FORMAT_TEXT;
    struct vg_config cfg;
    struct vg_ruleset *rs;
    struct vg_rules_diags diags = {0};
    char **names = NULL;
    int rc;
    int opt;

    while ((opt = cli_flags_next(&flags, argc, argv)) != -1) {
        switch (opt) {
        case 'f':
            if (!strcmp(optarg, "text")) {
                format = FORMAT_TEXT;
            } else if (!strcmp(optarg, "json")) {
                format = FORMAT_JSON;
            } else if (!strcmp(optarg, "github")) {
                format = FORMAT_GITHUB;
            } else {
                fprintf(stderr, "vigil check: --format must be text, json or github\n");
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (flags.stop) {
        return flags.exit_code;
    }
    if (missing_operands(argv + optind, (size_t)(argc - optind)) > 0) {
        return CLI_EXIT_USAGE;
    }
    vg_config_init(&cfg);
    if (!config_path) {
        /* the defaults and the VIGIL_* overrides */
        vg_config_check(&cfg, NULL, add_diag, &diags);
    } else {
        vg_err_t err = vg_config_check(&cfg, config_path, add_diag, &diags);

        if (err == VG_ERR_IO) { /* the file itself cannot be read */
            fprintf(stderr, "vigil check: %s: %s\n", config_path,
                    diags.n ? diags.items[0].message : "cannot read");
            vg_rules_diags_fini(&diags);
            vg_config_fini(&cfg);
            return CLI_EXIT_USAGE;
        }
        if (format == FORMAT_TEXT) {
            config_warnings(&cfg);
        }
        if (cfg.path) {
            check_sinks(&cfg, &diags);
        } else {
            /* not even YAML: neither its rules nor its sinks are known */
            vg_strv_free(cfg.rules);
            cfg.rules = vg_calloc(1, sizeof(char *));
            cfg.n_rules = 0;
        }
    }
    rs = vg_ruleset_new();
    /* Sink names are known from a config: the one given, or the defaults when no rules are. */
    if ((config_path && cfg.path) || (!config_path && optind >= argc)) {
        names = vg_calloc(cfg.n_sinks + 1, sizeof(*names));
        for (size_t i = 0; i < cfg.n_sinks; i++) {
            names[i] = cfg.sinks[i].name;
        }
    }
    if (optind < argc) {
        vg_rules_check_paths(rs, argv + optind, (size_t)(argc - optind), names, cfg.n_sinks,
                             &diags);
    } else {
        vg_rules_check_paths(rs, cfg.rules, cfg.n_rules, names, cfg.n_sinks, &diags);
    }
    rc = diags.n ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    if (format == FORMAT_JSON) {
        print_json(&diags, rs);
    } else if (format == FORMAT_GITHUB) {
        print_github(&diags);
    } else if (rc == CLI_EXIT_OK) {
        printf("ok: %zu monitors, %zu pagers\n", vg_rules_monitor_count(rs),
               vg_rules_pager_count(rs));
    } else {
        print_text(&diags);
        fprintf(stderr, "%zu error%s\n", diags.n, diags.n == 1 ? "" : "s");
    }
    free(names);
    vg_rules_diags_fini(&diags);
    vg_ruleset_destroy(rs);
    vg_config_fini(&cfg);
    return rc;
}
