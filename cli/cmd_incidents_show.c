/*
 * `vigil incidents show ID` (issue 6): the notification history of one
 * incident from its audit stream P:audit:{ID}: every delivery attempt and
 * outcome with the sink, the notification id (the idempotency key), the
 * HTTP status and the latency, oldest first.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define AUDIT_SHOW_MAX 1000

static void show_usage(FILE *out)
{
    fputs("usage: vigil incidents show [-c vigil.yaml | --redis URL [--prefix P]]\n"
          "                            [-o table|json] INCIDENT-ID\n",
          out);
}

static void print_json(FILE *out, const char *incident, const struct vg_audit_record *v, size_t n)
{
    struct vg_buf b = {0};
    char t[40];

    vg_buf_puts(&b, "{\"incident\":");
    vg_json_append_string(&b, incident);
    vg_buf_puts(&b, ",\"notifications\":[");
    for (size_t i = 0; i < n; i++) {
        cli_format_time(v[i].at_ms, t, sizeof(t));
        vg_buf_puts(&b, i ? ",{\"at\":" : "{\"at\":");
        vg_json_append_string(&b, t);
        vg_buf_puts(&b, ",\"sink\":");
        vg_json_append_string(&b, v[i].sink);
        vg_buf_puts(&b, ",\"notification\":");
        vg_json_append_string(&b, v[i].id);
        vg_buf_printf(&b, ",\"attempt\":%d,\"outcome\":", v[i].attempt);
        vg_json_append_string(&b, v[i].outcome);
        vg_buf_printf(&b, ",\"status\":%ld,\"latency_ms\":%lld,\"detail\":", v[i].status,
                      (long long)v[i].latency_ms);
        vg_json_append_string(&b, v[i].detail);
        vg_buf_putc(&b, '}');
    }
    vg_buf_puts(&b, "]}\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static void print_table(FILE *out, const struct vg_audit_record *v, size_t n)
{
    static const char *const headers[] = {"TIME",    "SINK",   "NOTIFICATION", "ATTEMPT",
                                          "OUTCOME", "STATUS", "LATENCY",      "DETAIL"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * n + 1, sizeof(*cells));
    char(*num)[4][40] = vg_calloc(n + 1, sizeof(*num));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];

        cli_format_time(v[i].at_ms, num[i][0], sizeof(num[i][0]));
        snprintf(num[i][1], sizeof(num[i][1]), "%d", v[i].attempt);
        snprintf(num[i][2], sizeof(num[i][2]), "%ld", v[i].status);
        snprintf(num[i][3], sizeof(num[i][3]), "%lldms", (long long)v[i].latency_ms);
        row[0] = num[i][0];
        row[1] = v[i].sink;
        row[2] = v[i].id;
        row[3] = v[i].attempt ? num[i][1] : "-";
        row[4] = v[i].outcome;
        row[5] = v[i].status ? num[i][2] : "-";
        row[6] = v[i].attempt ? num[i][3] : "-";
        row[7] = v[i].detail;
    }
    cli_print_grid(out, headers, NCOLS, cells, NULL, n);
    vg_free(cells);
    vg_free(num);
}

int cli_cmd_incidents_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"redis", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'P'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    const char *redis_url = NULL;
    const char *prefix = NULL;
    const char *output = "table";
    struct vg_config cfg;
    struct vg_redis_child *child = NULL;
    struct vg_state *st = NULL;
    int rc;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 'P':
            prefix = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            show_usage(stdout);
            return CLI_EXIT_OK;
        default:
            show_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "vigil incidents show: want exactly one incident ID\n");
        show_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "vigil incidents show: unknown output format \"%s\" (table or json)\n",
                output);
        return CLI_EXIT_USAGE;
    }
    rc = cli_open_state("incidents show", config_path, false, redis_url, prefix, &cfg, &st, &child);
    if (rc == CLI_EXIT_OK) {
        struct vg_audit_record *v = NULL;
        size_t n = 0;
        char errstr[1024];
        vg_err_t err =
            vg_state_audit_read(st, argv[optind], AUDIT_SHOW_MAX, &v, &n, errstr, sizeof(errstr));
        if (err != VG_OK) {
            rc = cli_state_error("incidents show", err, errstr);
        } else if (!strcmp(output, "json")) {
            print_json(stdout, argv[optind], v, n);
        } else if (n == 0) {
            fprintf(stderr, "No notifications recorded for incident %s.\n", argv[optind]);
        } else {
            printf("incident %s: %zu notification record%s\n", argv[optind], n, n == 1 ? "" : "s");
            print_table(stdout, v, n);
        }
        vg_audit_records_free(v, n);
    }
    cli_close_state(st, child);
    vg_config_fini(&cfg);
    return rc;
}
