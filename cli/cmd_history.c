/*
 * `vigil history ID [-n N]`: a Resource's transitions and log lines from
 * its history stream (vg_state_history), newest last, with the event time
 * and the Kafka position of each (docs/cli.md). Table, JSON or YAML.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "render.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define HISTORY_DEFAULT_N 50

static void history_usage(FILE *out)
{
    fputs("usage: vigil history [-c vigil.yaml | --redis URL [--prefix P]] [-n N]\n"
          "                     [-o table|json|yaml] ID\n"
          "\n"
          "A Resource's transitions and log lines, newest first.\n"
          "\n"
          "  -n, --count N        the newest N entries (default 50; 0: all that are kept)\n"
          "  -o, --output FORMAT  table (default), json or yaml\n"
          "  ID                   the Resource id "
          "(type:version:name:workspace)\n" CLI_USAGE_REDIS_FLAGS,
          out);
}

/* "topic/partition@offset", or "" when the entry has no position. */
static void format_pos(const struct vg_history_entry *e, char *out, size_t out_size)
{
    if (!e->pos.topic) {
        snprintf(out, out_size, "%s", "");
        return;
    }
    snprintf(out, out_size, "%s/%d@%" PRId64, e->pos.topic, (int)e->pos.partition, e->pos.offset);
}

/* The MESSAGE cell: the message, then any fields this vigil does not know as k=v. */
static char *message_cell(const struct vg_history_entry *e)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, e->message ? e->message : "");
    for (size_t i = 0; i < e->n_extra; i++) {
        if (b.len > 0) {
            vg_buf_putc(&b, ' ');
        }
        vg_buf_printf(&b, "%s=%s", e->extra[2 * i], e->extra[2 * i + 1]);
    }
    return vg_buf_steal(&b);
}

static void print_table(FILE *out, const struct vg_history_entry *v, size_t n, bool color)
{
    static const char *const headers[] = {"TIME", "FIELD", "FROM", "TO", "KAFKA", "MESSAGE"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * n, sizeof(*cells));
    const char **colors = vg_calloc(NCOLS * n, sizeof(*colors));
    char(*text)[2][600] = vg_calloc(n, sizeof(*text));
    char **msgs = vg_calloc(n, sizeof(*msgs));

    for (size_t i = 0; i < n; i++) {
        const struct vg_history_entry *e = &v[i];
        const char **row = &cells[i * NCOLS];

        cli_format_time(e->at_ms, text[i][0], sizeof(text[i][0]));
        format_pos(e, text[i][1], sizeof(text[i][1]));
        msgs[i] = message_cell(e);
        row[0] = text[i][0];
        row[1] = e->field ? e->field : "log";
        row[2] = e->from && e->from[0] ? e->from : (e->field ? "-" : "");
        row[3] = e->to ? e->to : "";
        row[4] = text[i][1];
        row[5] = msgs[i];
        if (color && e->to) {
            colors[i * NCOLS + 3] = cli_value_color(e->to);
        }
    }
    cli_print_grid(out, headers, NCOLS, cells, colors, n);
    for (size_t i = 0; i < n; i++) {
        vg_free(msgs[i]);
    }
    vg_free(msgs);
    vg_free(text);
    vg_free(cells);
    vg_free(colors);
}

/*
 * [{"kind", "field", "from", "to", "time", "topic", "partition", "offset",
 *   "message", "stream_id", "extra": {...}}], oldest first. "from" is null
 * when the value was unknown before; a log line has kind "log" and null
 * field/from/to.
 */
static void print_json(FILE *out, const struct vg_history_entry *v, size_t n)
{
    struct vg_buf b = {0};

    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        const struct vg_history_entry *e = &v[i];
        char ts[40];

        cli_format_time(e->at_ms, ts, sizeof(ts));
        vg_buf_puts(&b, i ? ",\n  {\"kind\": " : "\n  {\"kind\": ");
        vg_json_append_string(&b, e->field ? "transition" : "log");
        cli_json_member(&b, ", ", "field", e->field);
        cli_json_member(&b, ", ", "from", e->from && e->from[0] ? e->from : NULL);
        cli_json_member(&b, ", ", "to", e->to);
        cli_json_member(&b, ", ", "time", ts[0] ? ts : NULL);
        cli_json_member(&b, ", ", "topic", e->pos.topic);
        if (e->pos.topic) {
            vg_buf_printf(&b, ", \"partition\": %d, \"offset\": %" PRId64, (int)e->pos.partition,
                          e->pos.offset);
        } else {
            vg_buf_puts(&b, ", \"partition\": null, \"offset\": null");
        }
        cli_json_member(&b, ", ", "message", e->message);
        cli_json_member(&b, ", ", "stream_id", e->stream_id);
        vg_buf_puts(&b, ", \"extra\": {");
        for (size_t k = 0; k < e->n_extra; k++) {
            if (k > 0) {
                vg_buf_puts(&b, ", ");
            }
            vg_json_append_string(&b, e->extra[2 * k]);
            vg_buf_puts(&b, ": ");
            vg_json_append_string(&b, e->extra[2 * k + 1]);
        }
        vg_buf_puts(&b, "}}");
    }
    vg_buf_puts(&b, n ? "\n]\n" : "]\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static void print_yaml(FILE *out, const struct vg_history_entry *v, size_t n)
{
    struct vg_buf b = {0};

    if (n == 0) {
        vg_buf_puts(&b, "[]\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct vg_history_entry *e = &v[i];
        char ts[40];

        cli_format_time(e->at_ms, ts, sizeof(ts));
        cli_yaml_field(&b, "- ", "kind", e->field ? "transition" : "log");
        cli_yaml_field(&b, "  ", "field", e->field);
        cli_yaml_field(&b, "  ", "from", e->from && e->from[0] ? e->from : NULL);
        cli_yaml_field(&b, "  ", "to", e->to);
        cli_yaml_field(&b, "  ", "time", ts[0] ? ts : NULL);
        cli_yaml_field(&b, "  ", "topic", e->pos.topic);
        if (e->pos.topic) {
            vg_buf_printf(&b, "  partition: %d\n  offset: %" PRId64 "\n", (int)e->pos.partition,
                          e->pos.offset);
        } else {
            vg_buf_puts(&b, "  partition: null\n  offset: null\n");
        }
        cli_yaml_field(&b, "  ", "message", e->message);
        cli_yaml_field(&b, "  ", "stream_id", e->stream_id);
        if (e->n_extra == 0) {
            vg_buf_puts(&b, "  extra: {}\n");
        } else {
            vg_buf_puts(&b, "  extra:\n");
            for (size_t k = 0; k < e->n_extra; k++) {
                vg_buf_puts(&b, "    ");
                cli_yaml_scalar(&b, e->extra[2 * k]);
                vg_buf_puts(&b, ": ");
                cli_yaml_scalar(&b, e->extra[2 * k + 1]);
                vg_buf_putc(&b, '\n');
            }
        }
    }
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static int show(struct vg_state *st, const struct cli_readonly *ro, void *count)
{
    const char *id = ro->args[0];
    const char *output = ro->output;
    size_t max = (size_t) * (int64_t *)count;
    struct vg_history_entry *v = NULL;
    struct vg_resource *res = NULL;
    char errstr[1024];
    size_t n = 0;
    vg_err_t err;

    err = vg_state_history(st, id, max, &v, &n, errstr, sizeof(errstr));
    if (err != VG_OK) {
        return cli_state_error("history", err, errstr);
    }
    if (n == 0) {
        /* An empty history: a Resource with no transition yet, or no such Resource. */
        err = vg_state_get(st, id, &res, errstr, sizeof(errstr));
        if (err != VG_OK) {
            return cli_state_error("history", err, errstr);
        }
        if (!res) {
            fprintf(stderr, "vigil history: resource \"%s\" not found\n", id);
            return CLI_EXIT_FAILURE;
        }
        vg_resource_destroy(res);
    }
    if (!strcmp(output, "json")) {
        print_json(stdout, v, n);
    } else if (!strcmp(output, "yaml")) {
        print_yaml(stdout, v, n);
    } else if (n > 0) {
        print_table(stdout, v, n, cli_use_color(stdout));
    }
    if (n == 0) {
        fprintf(stderr, "No history for %s.\n", id);
    }
    vg_history_free(v, n);
    return CLI_EXIT_OK;
}

/* history's own flag: -n N, the newest N entries. */
static int history_flag(void *ctx, int opt, const char *arg)
{
    int64_t *max = ctx;

    (void)opt; /* 'n' */
    if (!vg_parse_i64(arg, max) || *max < 0 || *max > 1000000) {
        fprintf(stderr, "vigil history: -n wants a count (0 for all), not \"%s\"\n", arg);
        return CLI_EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

int cli_cmd_history(int argc, char **argv)
{
    static const char *const outputs[] = {"table", "json", "yaml", NULL};
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int64_t max = HISTORY_DEFAULT_N;
    const struct cli_readonly_cmd cmd = {"history",     outputs,      history_usage, opts,
                                         "Resource ID", history_flag, &max};
    struct cli_readonly ro;
    int rc = cli_readonly_parse(&cmd, argc, argv, &ro);

    return rc != CLI_CONTINUE ? rc : cli_readonly_run("history", &ro, CLI_CONFIG_REDIS, show, &max);
}
