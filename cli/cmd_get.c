/*
 * `vigil get`: the seed's table of Resources, read from Redis.
 *   NAME | VERSION | TYPE | WORKSPACE | STATUS | RUNTIME | OWNER
 * -o json prints an array of {id, name, version, type, workspace, status,
 * runtime, owner, health, updated_at}. Colour badges only on a TTY.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define NCOLS 7

/* Display width: code points, so unicode names line up (wide CJK is not special-cased). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xc0) != 0x80) {
            w++;
        }
    }
    return w;
}

static const char *color_of(const char *value)
{
    if (!strcmp(value, "active") || !strcmp(value, "running") || !strcmp(value, "succeeded")) {
        return "\033[32m";
    }
    if (!strcmp(value, "error") || !strcmp(value, "deleted") || !strcmp(value, "failed")) {
        return "\033[31m";
    }
    if (!strcmp(value, "pending")) {
        return "\033[33m";
    }
    return NULL;
}

static void pad(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc(' ', out);
    }
}

void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color)
{
    static const char *const headers[NCOLS] = {"NAME",   "VERSION", "TYPE", "WORKSPACE",
                                               "STATUS", "RUNTIME", "OWNER"};
    size_t width[NCOLS];
    for (size_t c = 0; c < NCOLS; c++) {
        width[c] = strlen(headers[c]);
    }
    for (size_t i = 0; i < n; i++) {
        const char *cells[NCOLS] = {v[i]->name,   v[i]->version, v[i]->type,  v[i]->workspace,
                                    v[i]->status, v[i]->runtime, v[i]->owner};
        for (size_t c = 0; c < NCOLS; c++) {
            size_t w = display_width(cells[c]);
            if (w > width[c]) {
                width[c] = w;
            }
        }
    }
    /* header: centred, as dataos-ctl prints it */
    for (size_t c = 0; c < NCOLS; c++) {
        size_t total = width[c] + 2;
        size_t left = (total - strlen(headers[c])) / 2;
        if (c > 0) {
            fputc('|', out);
        }
        pad(out, left);
        fputs(headers[c], out);
        if (c < NCOLS - 1) {
            pad(out, total - left - strlen(headers[c]));
        }
    }
    fputc('\n', out);
    for (size_t c = 0; c < NCOLS; c++) {
        if (c > 0) {
            fputc('|', out);
        }
        for (size_t k = 0; k < width[c] + 2; k++) {
            fputc('-', out);
        }
    }
    fputc('\n', out);
    for (size_t i = 0; i < n; i++) {
        const char *cells[NCOLS] = {v[i]->name,   v[i]->version, v[i]->type,  v[i]->workspace,
                                    v[i]->status, v[i]->runtime, v[i]->owner};
        for (size_t c = 0; c < NCOLS; c++) {
            const char *col = color && (c == 4 || c == 5) ? color_of(cells[c]) : NULL;
            if (c > 0) {
                fputc('|', out);
            }
            fputc(' ', out);
            if (col) {
                fputs(col, out);
            }
            fputs(cells[c], out);
            if (col) {
                fputs("\033[0m", out);
            }
            if (c < NCOLS - 1) {
                pad(out, width[c] + 1 - display_width(cells[c]));
            }
        }
        fputc('\n', out);
    }
}

static void json_field(struct vg_buf *b, const char *key, const char *value, bool first)
{
    if (!first) {
        vg_buf_putc(b, ',');
    }
    vg_json_append_string(b, key);
    vg_buf_putc(b, ':');
    vg_json_append_string(b, value);
}

void cli_print_json(FILE *out, struct vg_resource **v, size_t n)
{
    struct vg_buf b = {0};
    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        char ts[40];
        vg_buf_puts(&b, i ? ",\n  {" : "\n  {");
        json_field(&b, "id", v[i]->id, true);
        json_field(&b, "name", v[i]->name, false);
        json_field(&b, "version", v[i]->version, false);
        json_field(&b, "type", v[i]->type, false);
        json_field(&b, "workspace", v[i]->workspace, false);
        json_field(&b, "status", v[i]->status, false);
        json_field(&b, "runtime", v[i]->runtime, false);
        json_field(&b, "owner", v[i]->owner, false);
        json_field(&b, "health", vg_health_name(v[i]->health), false);
        if (v[i]->updated_at_ms) {
            vg_time_format_rfc3339(v[i]->updated_at_ms, ts, sizeof(ts));
            json_field(&b, "updated_at", ts, false);
        } else {
            vg_buf_puts(&b, ",\"updated_at\":null");
        }
        vg_buf_putc(&b, '}');
    }
    vg_buf_puts(&b, n ? "\n]\n" : "]\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static void get_usage(FILE *out)
{
    fputs("usage: vigil get [-c vigil.yaml | --redis URL] [-t TYPE] [-w WORKSPACE]\n"
          "                 [-n NAME-GLOB] [--owner OWNER] [-a] [-o table|json]\n",
          out);
}

int cli_cmd_get(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"redis", required_argument, NULL, 'r'},
        {"type", required_argument, NULL, 't'},      {"workspace", required_argument, NULL, 'w'},
        {"name", required_argument, NULL, 'n'},      {"owner", required_argument, NULL, 'O'},
        {"all", no_argument, NULL, 'a'},             {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    const char *redis_url = NULL;
    const char *output = "table";
    struct vg_state_filter f = {0};
    struct vg_config cfg;
    struct vg_redis_child *child = NULL;
    struct vg_state *st = NULL;
    struct vg_resource **v = NULL;
    char errstr[1024];
    char *url = NULL;
    size_t n = 0;
    int rc;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:t:w:n:ao:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 't':
            f.type = optarg;
            break;
        case 'w':
            f.workspace = optarg;
            break;
        case 'n':
            f.name_glob = optarg;
            break;
        case 'O':
            f.owner = optarg;
            break;
        case 'a':
            break; /* all owners: also the default (dataos-ctl habit) */
        case 'o':
            output = optarg;
            break;
        case 'h':
            get_usage(stdout);
            return CLI_EXIT_OK;
        default:
            get_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "vigil get: unknown output format \"%s\" (table or json)\n", output);
        return CLI_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "vigil get: unexpected argument \"%s\"\n", argv[optind]);
        get_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    rc = cli_load_config(&cfg, config_path);
    if (rc) {
        vg_config_fini(&cfg);
        return rc;
    }
    if (cli_redis_for_reading(&cfg, redis_url, &url, &child, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(&st, url, cfg.redis.prefix, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil get: cannot reach redis: %s\n", errstr);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (vg_state_list(st, &f, &v, &n, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil get: %s\n", errstr);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (!strcmp(output, "json")) {
        cli_print_json(stdout, v, n);
    } else if (n == 0) {
        fprintf(stderr, "No resources found.\n");
    } else {
        cli_print_table(stdout, v, n, isatty(STDOUT_FILENO) && !getenv("NO_COLOR"));
    }
    if (n == 0 && !strcmp(output, "json")) {
        fprintf(stderr, "No resources found.\n");
    }
out:
    vg_resources_free(v, n);
    vg_state_destroy(st);
    vg_redis_child_stop(child);
    free(url);
    vg_config_fini(&cfg);
    return rc;
}
