/*
 * `vigil incidents show ID`: the notification history of one
 * incident from its audit stream P:audit:{ID}: every delivery attempt and
 * outcome with the sink, the notification id (the idempotency key), the
 * HTTP status and the latency, oldest first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "render.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define AUDIT_SHOW_MAX 1000

static void show_usage(FILE *out)
{
    fputs("usage: vigil incidents show [-c vigil.yaml | --redis URL [--prefix P]]\n"
          "                            [-o table|json] INCIDENT-ID\n"
          "\n"
          "An incident's notification history: each page, each sink, each attempt.\n"
          "\n"
          "  -o, --output FORMAT  table (default) or json\n" CLI_USAGE_REDIS_FLAGS,
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

static int show(struct vg_state *st, const struct cli_readonly *ro, void *unused)
{
    const char *id = ro->args[0];
    const char *output = ro->output;
    struct vg_audit_record *v = NULL;
    size_t n = 0;
    char errstr[1024];
    vg_err_t err = vg_state_audit_read(st, id, AUDIT_SHOW_MAX, &v, &n, errstr, sizeof(errstr));
    int rc = CLI_EXIT_OK;

    (void)unused;
    if (err != VG_OK) {
        rc = cli_state_error("incidents show", err, errstr);
    } else if (!strcmp(output, "json")) {
        print_json(stdout, id, v, n);
    } else if (n == 0) {
        fprintf(stderr, "No notifications recorded for incident %s.\n", id);
    } else {
        printf("incident %s: %zu notification record%s\n", id, n, n == 1 ? "" : "s");
        print_table(stdout, v, n);
    }
    vg_audit_records_free(v, n);
    return rc;
}

int cli_cmd_incidents_show(int argc, char **argv)
{
    static const char *const outputs[] = {"table", "json", NULL};
    const struct cli_readonly_cmd cmd = {"incidents show", outputs, show_usage, NULL,
                                         "incident ID",    NULL,    NULL};
    struct cli_readonly ro;
    int rc = cli_readonly_parse(&cmd, argc, argv, &ro);

    return rc != CLI_CONTINUE
               ? rc
               : cli_readonly_run("incidents show", &ro, CLI_CONFIG_REDIS, show, NULL);
}
