/*
 * `vigil check [-c vigil.yaml] [--format json] [RULES...]`: validate the
 * config, the rule files and the sink names pagers use. Every error (not
 * only the first) as file:line:col: message, or as JSON for CI
 * annotations; exit 1 on any error (CI for rule repos).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/rules.h"

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
    fputs("usage: vigil check [-c vigil.yaml] [--format text|json] [RULES-FILE|DIR|GLOB...]\n"
          "  every error as file:line:col: message; exit 1 on any error\n",
          out);
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

int cli_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    bool json = false;
    struct vg_config cfg;
    struct vg_ruleset *rs;
    struct vg_rules_diags diags = {0};
    char **names = NULL;
    char errstr[1024];
    int rc;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:f:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "vigil check: --format must be text or json\n");
                return CLI_EXIT_USAGE;
            }
            json = strcmp(optarg, "json") == 0;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    vg_config_init(&cfg);
    if (config_path && vg_config_load_file(&cfg, config_path, errstr, sizeof(errstr)) != VG_OK) {
        vg_rules_diags_add_text(&diags, errstr);
        if (json) {
            print_json(&diags, NULL);
        } else {
            print_text(&diags);
        }
        vg_rules_diags_fini(&diags);
        vg_config_fini(&cfg);
        return CLI_EXIT_FAILURE;
    }
    config_warnings(&cfg);
    /* what only the sinks can judge (whsec_ secrets, templates, URLs, headers) */
    if (config_path) {
        struct vg_sinks *sk = NULL;

        if (vg_sinks_new(&sk, cfg.sinks, cfg.n_sinks, NULL, errstr, sizeof(errstr)) != VG_OK) {
            char *line = vg_asprintf("%s: %s", config_path, errstr);
            vg_rules_diags_add_text(&diags, line);
            free(line);
        }
        vg_sinks_destroy(sk);
    }
    rs = vg_ruleset_new();
    /* Sink names are known from a config: the one given, or the defaults when no rules are. */
    if (config_path || optind >= argc) {
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
    if (json) {
        print_json(&diags, rs);
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
