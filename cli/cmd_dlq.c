/*
 * `vigil dlq list|retry ID|drop ID`: the pages the dispatcher
 * gave up on (P:outbox:dead), with the last status and the reason. Retry
 * puts an entry back into the outbox with the same notification id (the
 * same idempotency key); drop deletes it. ID is a dead-letter id from
 * `list` or a notification id (all of its dead entries).
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

#define DLQ_LIST_MAX 100000

static void dlq_usage(FILE *out)
{
    fputs("usage: vigil dlq [-c vigil.yaml | --redis URL [--prefix P]] list [-o table|json]\n"
          "       vigil dlq [-c vigil.yaml | --redis URL [--prefix P]] retry ID\n"
          "       vigil dlq [-c vigil.yaml | --redis URL [--prefix P]] drop ID\n"
          "\n"
          "Pages given up on (dead letters): list them, send one again, or drop it.\n"
          "\n"
          "  list                 the dead letters, oldest first\n"
          "  retry ID             put it back into the outbox (delivered again)\n"
          "  drop ID              delete it\n"
          "  ID                   a dead-letter id from `dlq list`, or a notification id\n"
          "                       (all its entries)\n"
          "  -o, --output FORMAT  list: table (default) or json\n" CLI_USAGE_REDIS_FLAGS,
          out);
}

static void print_json(FILE *out, const struct vg_dead_entry *v, size_t n)
{
    struct vg_buf b = {0};
    char t[40];

    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        cli_format_time(v[i].failed_at_ms, t, sizeof(t));
        vg_buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        vg_json_append_string(&b, v[i].stream_id);
        vg_buf_puts(&b, ",\"notification\":");
        vg_json_append_string(&b, v[i].id);
        vg_buf_puts(&b, ",\"sink\":");
        vg_json_append_string(&b, v[i].sink);
        vg_buf_puts(&b, ",\"pager\":");
        vg_json_append_string(&b, v[i].pager);
        vg_buf_printf(&b, ",\"status\":%ld,\"attempts\":%d,\"failed_at\":", v[i].status,
                      v[i].attempts);
        vg_json_append_string(&b, t);
        vg_buf_puts(&b, ",\"reason\":");
        vg_json_append_string(&b, v[i].reason);
        vg_buf_puts(&b, ",\"response\":");
        vg_json_append_string(&b, v[i].response);
        vg_buf_puts(&b, ",\"origin\":");
        if (v[i].origin) {
            vg_json_append_string(&b, v[i].origin);
        } else {
            vg_buf_puts(&b, "null");
        }
        vg_buf_puts(&b, ",\"body\":");
        vg_json_append_string(&b, v[i].body);
        vg_buf_putc(&b, '}');
    }
    vg_buf_puts(&b, "]\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static void print_table(FILE *out, const struct vg_dead_entry *v, size_t n)
{
    static const char *const headers[] = {"ID",     "NOTIFICATION", "SINK",   "PAGER",
                                          "STATUS", "ATTEMPTS",     "FAILED", "REASON"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * n + 1, sizeof(*cells));
    char(*num)[3][40] = vg_calloc(n + 1, sizeof(*num));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];

        snprintf(num[i][0], sizeof(num[i][0]), "%ld", v[i].status);
        snprintf(num[i][1], sizeof(num[i][1]), "%d", v[i].attempts);
        cli_format_time(v[i].failed_at_ms, num[i][2], sizeof(num[i][2]));
        row[0] = v[i].stream_id;
        row[1] = v[i].id;
        row[2] = v[i].sink;
        row[3] = v[i].pager;
        row[4] = v[i].status ? num[i][0] : "-";
        row[5] = num[i][1];
        row[6] = num[i][2];
        row[7] = v[i].reason;
    }
    cli_print_grid(out, headers, NCOLS, cells, NULL, n);
    vg_free(cells);
    vg_free(num);
}

static int run_dlq(struct vg_state *st, const struct cli_readonly *ro, void *unused)
{
    const char *verb = ro->args[0];
    const char *id = ro->n_args > 1 ? ro->args[1] : NULL;
    const char *output = ro->output;
    char errstr[1024];
    vg_err_t err;

    (void)unused;
    if (!strcmp(verb, "list")) {
        struct vg_dead_entry *v = NULL;
        size_t n = 0;

        err = vg_state_dlq_list(st, DLQ_LIST_MAX, &v, &n, errstr, sizeof(errstr));
        if (err != VG_OK) {
            return cli_state_error("dlq", err, errstr);
        }
        if (!strcmp(output, "json")) {
            print_json(stdout, v, n);
        } else if (n == 0) {
            fprintf(stderr, "The dead-letter stream is empty.\n");
        } else {
            print_table(stdout, v, n);
        }
        vg_dead_entries_free(v, n);
        return CLI_EXIT_OK;
    }
    {
        size_t done = 0;
        bool retry = !strcmp(verb, "retry");

        err = retry ? vg_state_dlq_retry(st, id, &done, errstr, sizeof(errstr))
                    : vg_state_dlq_drop(st, id, &done, errstr, sizeof(errstr));
        if (err != VG_OK) {
            return cli_state_error("dlq", err, errstr);
        }
        if (done == 0) {
            fprintf(stderr, "vigil dlq: no dead letter %s\n", id);
            return CLI_EXIT_FAILURE;
        }
        printf("%s %zu dead letter%s (%s)\n", retry ? "requeued" : "dropped", done,
               done == 1 ? "" : "s", id);
        return CLI_EXIT_OK;
    }
}

/* The operands: `list`, or `retry ID` / `drop ID`. */
static int check_dlq_args(const struct cli_readonly *ro)
{
    const char *verb = ro->n_args > 0 ? ro->args[0] : NULL;

    if (!verb || (!strcmp(verb, "list") && ro->n_args != 1)) {
        dlq_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(verb, "list") != 0 && strcmp(verb, "retry") != 0 && strcmp(verb, "drop") != 0) {
        fprintf(stderr, "vigil dlq: unknown action \"%s\" (list, retry or drop)\n", verb);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(verb, "list") != 0 && ro->n_args != 2) {
        fprintf(stderr, "vigil dlq %s: want exactly one ID\n", verb);
        return CLI_EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

int cli_cmd_dlq(int argc, char **argv)
{
    static const char *const outputs[] = {"table", "json", NULL};
    const struct cli_readonly_cmd cmd = {"dlq", outputs, dlq_usage, NULL, NULL, NULL, NULL};
    struct cli_readonly ro;
    int rc = cli_readonly_parse(&cmd, argc, argv, &ro);

    if (rc == CLI_CONTINUE) {
        rc = check_dlq_args(&ro);
    }
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    /* retry and drop change what the dispatcher delivers: they load the whole config */
    return cli_readonly_run("dlq", &ro,
                            strcmp(ro.args[0], "list") == 0 ? CLI_CONFIG_REDIS : CLI_CONFIG_ALL,
                            run_dlq, NULL);
}
