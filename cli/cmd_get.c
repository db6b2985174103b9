/*
 * `vigil get`: Resources read from Redis (docs/cli.md).
 *   table  NAME | VERSION | TYPE | WORKSPACE | STATUS | RUNTIME | OWNER (the seed's)
 *   wide   the table plus HEALTH | SINCE | UPDATED
 *   json   an array of {id, name, version, type, workspace, status, runtime,
 *          owner, health, updated_at}; yaml the same fields
 * `vigil get ID` shows one Resource in full (text, JSON, YAML). How a grid,
 * a time or a scalar prints is render.c's; the shared flags are options.c's.
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

/* ---- the list: table, wide, json, yaml -------------------------------- */

void cli_print_table(FILE *out, struct vg_resource **v, size_t n, bool color)
{
    static const char *const headers[] = {"NAME",   "VERSION", "TYPE", "WORKSPACE",
                                          "STATUS", "RUNTIME", "OWNER"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * (n ? n : 1), sizeof(*cells));
    const char **colors = vg_calloc(NCOLS * (n ? n : 1), sizeof(*colors));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];

        row[0] = v[i]->name;
        row[1] = v[i]->version;
        row[2] = v[i]->type;
        row[3] = v[i]->workspace;
        row[4] = v[i]->status;
        row[5] = v[i]->runtime;
        row[6] = v[i]->owner;
        if (color) {
            colors[i * NCOLS + 4] = cli_value_color(v[i]->status);
            colors[i * NCOLS + 5] = cli_value_color(v[i]->runtime);
        }
    }
    cli_print_grid(out, headers, NCOLS, cells, colors, n);
    vg_free(cells);
    vg_free(colors);
}

/* When the current status/runtime pair began: the later of the two since-times. */
static int64_t since_ms(const struct vg_resource *res)
{
    return res->status_since_ms > res->runtime_since_ms ? res->status_since_ms
                                                        : res->runtime_since_ms;
}

void cli_print_wide(FILE *out, struct vg_resource **v, size_t n, bool color, int64_t now_ms)
{
    static const char *const headers[] = {"NAME",    "VERSION", "TYPE",   "WORKSPACE", "STATUS",
                                          "RUNTIME", "OWNER",   "HEALTH", "SINCE",     "UPDATED"};
    enum { NCOLS = VG_ARRAY_LEN(headers), TEXT = 40 };
    const char **cells = vg_calloc(NCOLS * (n ? n : 1), sizeof(*cells));
    const char **colors = vg_calloc(NCOLS * (n ? n : 1), sizeof(*colors));
    char(*text)[2][TEXT] = vg_calloc(n ? n : 1, sizeof(*text));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];
        int64_t since = since_ms(v[i]);

        if (since) {
            cli_format_age(now_ms - since, text[i][0], TEXT);
        }
        cli_format_time(v[i]->updated_at_ms, text[i][1], TEXT);
        row[0] = v[i]->name;
        row[1] = v[i]->version;
        row[2] = v[i]->type;
        row[3] = v[i]->workspace;
        row[4] = v[i]->status;
        row[5] = v[i]->runtime;
        row[6] = v[i]->owner;
        row[7] = vg_health_name(v[i]->health);
        row[8] = text[i][0];
        row[9] = text[i][1];
        if (color) {
            colors[i * NCOLS + 4] = cli_value_color(v[i]->status);
            colors[i * NCOLS + 5] = cli_value_color(v[i]->runtime);
            colors[i * NCOLS + 7] = cli_value_color(row[7]);
        }
    }
    cli_print_grid(out, headers, NCOLS, cells, colors, n);
    vg_free(cells);
    vg_free(colors);
    vg_free(text);
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

void cli_print_yaml(FILE *out, struct vg_resource **v, size_t n)
{
    struct vg_buf b = {0};

    if (n == 0) {
        vg_buf_puts(&b, "[]\n");
    }
    for (size_t i = 0; i < n; i++) {
        char ts[40];

        vg_time_format_rfc3339(v[i]->updated_at_ms, ts, sizeof(ts));
        cli_yaml_field(&b, "- ", "id", v[i]->id);
        cli_yaml_field(&b, "  ", "name", v[i]->name);
        cli_yaml_field(&b, "  ", "version", v[i]->version);
        cli_yaml_field(&b, "  ", "type", v[i]->type);
        cli_yaml_field(&b, "  ", "workspace", v[i]->workspace);
        cli_yaml_field(&b, "  ", "status", v[i]->status);
        cli_yaml_field(&b, "  ", "runtime", v[i]->runtime);
        cli_yaml_field(&b, "  ", "owner", v[i]->owner);
        cli_yaml_field(&b, "  ", "health", vg_health_name(v[i]->health));
        cli_yaml_field(&b, "  ", "updated_at", v[i]->updated_at_ms ? ts : NULL);
    }
    fputs(b.data, out);
    vg_buf_fini(&b);
}

/* ---- one Resource in full --------------------------------------------- */

/*
 * The detail view's fields in display order, shared by the text, JSON and
 * YAML renderings so the three always agree.
 */
struct detail {
    const struct vg_resource *res;
    int64_t now_ms;
    char status_since[40];
    char runtime_since[40];
    char health_since[40];
    char updated_at[40];
};

static void detail_init(struct detail *d, const struct vg_resource *res, int64_t now_ms)
{
    memset(d, 0, sizeof(*d));
    d->res = res;
    d->now_ms = now_ms;
    cli_format_time(res->status_since_ms, d->status_since, sizeof(d->status_since));
    cli_format_time(res->runtime_since_ms, d->runtime_since, sizeof(d->runtime_since));
    cli_format_time(res->health_since_ms, d->health_since, sizeof(d->health_since));
    cli_format_time(res->updated_at_ms, d->updated_at, sizeof(d->updated_at));
}

/* A pod's READY column: regular containers ready / regular containers, as kubectl prints it. */
static void pod_ready_text(const struct vg_pod *p, char *out, size_t out_size)
{
    size_t ready = 0;
    size_t total = 0;

    for (size_t i = 0; i < p->n_containers; i++) {
        if (!p->containers[i].init) {
            total++;
            ready += p->containers[i].ready ? 1 : 0;
        }
    }
    snprintf(out, out_size, "%zu/%zu", ready, total);
}

/* What a pod is waiting on or died of: status.reason, else the first container's reason. */
static const char *pod_reason(const struct vg_pod *p)
{
    if (p->reason[0]) {
        return p->reason;
    }
    for (size_t i = 0; i < p->n_containers; i++) {
        const struct vg_container *c = &p->containers[i];
        if (c->reason[0] && strcmp(c->reason, "Completed") != 0) {
            return c->reason;
        }
    }
    return "";
}

/*
 * Pods of the Resource: NAME | PHASE | READY | RESTARTS | REASON |
 * LAST TRANSITION, after a line naming the pod and reason that decided the
 * runtime.
 */
static void detail_pods_text(FILE *out, const struct vg_resource *res)
{
    static const char *const headers[] = {"NAME",     "PHASE",  "READY",
                                          "RESTARTS", "REASON", "LAST TRANSITION"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells;
    char(*text)[3][40];

    if (res->n_pods == 0) {
        fprintf(out, "%-12s %s\n", "Pods:", "none");
        return;
    }
    if (res->runtime_pod) {
        fprintf(out, "%-12s %zu (runtime %s from pod %s%s%s)\n", "Pods:", res->n_pods, res->runtime,
                res->runtime_pod, res->runtime_reason ? ": " : "",
                res->runtime_reason ? res->runtime_reason : "");
    } else {
        fprintf(out, "%-12s %zu\n", "Pods:", res->n_pods);
    }
    cells = vg_calloc(NCOLS * res->n_pods, sizeof(*cells));
    text = vg_calloc(res->n_pods, sizeof(*text));
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *p = &res->pods[i];

        pod_ready_text(p, text[i][0], sizeof(text[i][0]));
        snprintf(text[i][1], sizeof(text[i][1]), "%d", (int)p->restarts);
        cli_format_time(p->last_transition_ms, text[i][2], sizeof(text[i][2]));
        cells[i * NCOLS + 0] = p->name;
        cells[i * NCOLS + 1] = p->phase;
        cells[i * NCOLS + 2] = text[i][0];
        cells[i * NCOLS + 3] = text[i][1];
        cells[i * NCOLS + 4] = pod_reason(p);
        cells[i * NCOLS + 5] = text[i][2];
    }
    cli_print_grid(out, headers, NCOLS, cells, NULL, res->n_pods);
    vg_free(cells);
    vg_free(text);
}

/* The pods as a JSON array, then runtime_reason and runtime_pod (null when none). */
static void detail_pods_json(struct vg_buf *b, const struct vg_resource *res)
{
    vg_buf_puts(b, ",\n  \"pods\": [");
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *p = &res->pods[i];
        char ts[40];

        vg_buf_puts(b, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        vg_json_append_string(b, p->name);
        vg_buf_puts(b, ", \"namespace\": ");
        vg_json_append_string(b, p->ns ? p->ns : "");
        vg_buf_puts(b, ", \"phase\": ");
        vg_json_append_string(b, p->phase);
        vg_buf_puts(b, ", \"reason\": ");
        vg_json_append_string(b, pod_reason(p));
        vg_buf_printf(b, ", \"ready\": %s, \"restarts\": %d, \"last_transition\": ",
                      p->ready ? "true" : "false", (int)p->restarts);
        cli_format_time(p->last_transition_ms, ts, sizeof(ts));
        if (ts[0]) {
            vg_json_append_string(b, ts);
        } else {
            vg_buf_puts(b, "null");
        }
        vg_buf_puts(b, ", \"containers\": [");
        for (size_t j = 0; j < p->n_containers; j++) {
            const struct vg_container *c = &p->containers[j];

            vg_buf_puts(b, j ? ", {\"name\": " : "{\"name\": ");
            vg_json_append_string(b, c->name);
            vg_buf_printf(b, ", \"init\": %s, \"ready\": %s, \"restarts\": %d, \"state\": ",
                          c->init ? "true" : "false", c->ready ? "true" : "false",
                          (int)c->restarts);
            vg_json_append_string(b, c->state);
            vg_buf_puts(b, ", \"reason\": ");
            vg_json_append_string(b, c->reason);
            vg_buf_printf(b, ", \"exit_code\": %d}", (int)c->exit_code);
        }
        vg_buf_puts(b, "]}");
    }
    vg_buf_puts(b, res->n_pods ? "\n  ]" : "]");
    vg_buf_puts(b, ",\n  \"runtime_reason\": ");
    if (res->runtime_reason) {
        vg_json_append_string(b, res->runtime_reason);
    } else {
        vg_buf_puts(b, "null");
    }
    vg_buf_puts(b, ",\n  \"runtime_pod\": ");
    if (res->runtime_pod) {
        vg_json_append_string(b, res->runtime_pod);
    } else {
        vg_buf_puts(b, "null");
    }
}

/* The pods as a YAML sequence, then runtime_reason and runtime_pod. */
static void detail_pods_yaml(struct vg_buf *b, const struct vg_resource *res)
{
    if (res->n_pods == 0) {
        vg_buf_puts(b, "pods: []\n");
    } else {
        vg_buf_puts(b, "pods:\n");
    }
    for (size_t i = 0; i < res->n_pods; i++) {
        const struct vg_pod *p = &res->pods[i];
        char ts[40];

        cli_format_time(p->last_transition_ms, ts, sizeof(ts));
        vg_buf_puts(b, "  - name: ");
        cli_yaml_scalar(b, p->name);
        vg_buf_puts(b, "\n    namespace: ");
        cli_yaml_scalar(b, p->ns ? p->ns : "");
        vg_buf_puts(b, "\n    phase: ");
        cli_yaml_scalar(b, p->phase);
        vg_buf_puts(b, "\n    reason: ");
        cli_yaml_scalar(b, pod_reason(p));
        vg_buf_printf(b, "\n    ready: %s\n    restarts: %d\n    last_transition: ",
                      p->ready ? "true" : "false", (int)p->restarts);
        cli_yaml_scalar(b, ts[0] ? ts : NULL);
        vg_buf_puts(b, "\n");
    }
    vg_buf_puts(b, "runtime_reason: ");
    cli_yaml_scalar(b, res->runtime_reason);
    vg_buf_puts(b, "\nruntime_pod: ");
    cli_yaml_scalar(b, res->runtime_pod);
    vg_buf_puts(b, "\n");
}

static void text_line(FILE *out, const char *label, const char *value)
{
    char *tmp;

    fprintf(out, "%-12s %s\n", label, cli_printable(value, &tmp));
    vg_free(tmp);
}

/* "active       since 2026-11-28T10:00:00Z (3h)" */
static void text_since_line(FILE *out, const char *label, const char *value, int64_t since_ms,
                            const char *since_text, int64_t now_ms, bool color)
{
    const char *col = color ? cli_value_color(value) : NULL;
    char *tmp;
    const char *shown = cli_printable(value, &tmp);
    size_t w = cli_display_width(shown);

    fprintf(out, "%-12s %s%s%s", label, col ? col : "", shown, col ? CLI_COLOR_RESET : "");
    vg_free(tmp);
    if (since_ms) {
        char age[40];

        cli_format_age(now_ms - since_ms, age, sizeof(age));
        cli_pad(out, w < 12 ? 12 - w : 1);
        fprintf(out, "since %s (%s)", since_text, age);
    }
    fputc('\n', out);
}

/*
 * The incidents of `res` that are open (firing): rules/ also keeps entries
 * it is only watching ("pending") or that owe an end notice; those are not
 * incidents to show. Returns a heap array of pointers (caller frees).
 */
static const struct vg_open_incident **open_incidents(const struct vg_resource *res, size_t *n_out)
{
    const struct vg_open_incident **v = vg_calloc(res->n_incidents + 1, sizeof(*v));
    size_t n = 0;

    for (size_t i = 0; i < res->n_incidents; i++) {
        const struct vg_open_incident *inc = &res->incidents[i];
        if (!inc->state || strcmp(inc->state, "firing") == 0) {
            v[n++] = inc;
        }
    }
    *n_out = n;
    return v;
}

void cli_print_detail(FILE *out, const struct vg_resource *res, int64_t now_ms, bool color)
{
    size_t n_open = 0;
    const struct vg_open_incident **open = open_incidents(res, &n_open);
    struct detail d;
    char *tmp;

    detail_init(&d, res, now_ms);
    text_line(out, "Id:", res->id);
    text_line(out, "Name:", res->name);
    text_line(out, "Version:", res->version);
    text_line(out, "Type:", res->type);
    text_line(out, "Workspace:", res->workspace);
    text_line(out, "Owner:", res->owner);
    text_since_line(out, "Status:", res->status, res->status_since_ms, d.status_since, now_ms,
                    color);
    text_since_line(out, "Runtime:", res->runtime, res->runtime_since_ms, d.runtime_since, now_ms,
                    color);
    text_since_line(out, "Health:", vg_health_name(res->health), res->health_since_ms,
                    d.health_since, now_ms, color);
    text_line(out, "Updated:", d.updated_at);
    text_line(out, "Message:", res->message ? res->message : "");
    if (res->pos.topic) {
        fprintf(out, "%-12s topic=%s partition=%d offset=%" PRId64 "\n",
                "Kafka:", cli_printable(res->pos.topic, &tmp), (int)res->pos.partition,
                res->pos.offset);
        vg_free(tmp);
    } else {
        text_line(out, "Kafka:", "");
    }
    if (n_open == 0) {
        fprintf(out, "%-12s %s\n", "Incidents:", "none");
    } else {
        static const char *const headers[] = {"MONITOR", "SEVERITY", "ID", "STARTED",
                                              "NOTIFICATIONS"};
        enum { NCOLS = VG_ARRAY_LEN(headers) };
        const char **cells = vg_calloc(NCOLS * n_open, sizeof(*cells));
        char(*text)[2][40] = vg_calloc(n_open, sizeof(*text));

        fprintf(out, "%-12s %zu open\n", "Incidents:", n_open);
        for (size_t i = 0; i < n_open; i++) {
            const struct vg_open_incident *inc = open[i];

            cli_format_time(inc->started_at_ms, text[i][0], sizeof(text[i][0]));
            snprintf(text[i][1], sizeof(text[i][1]), "%d", inc->seq);
            cells[i * NCOLS + 0] = inc->monitor;
            cells[i * NCOLS + 1] = inc->severity;
            cells[i * NCOLS + 2] = inc->id;
            cells[i * NCOLS + 3] = text[i][0];
            cells[i * NCOLS + 4] = text[i][1];
        }
        cli_print_grid(out, headers, NCOLS, cells, NULL, n_open);
        vg_free(cells);
        vg_free(text);
    }
    detail_pods_text(out, res);
    vg_free(open);
}

static void json_time(struct vg_buf *b, const char *key, const char *text)
{
    vg_buf_puts(b, ",\n  ");
    vg_json_append_string(b, key);
    vg_buf_puts(b, ": ");
    if (text[0]) {
        vg_json_append_string(b, text);
    } else {
        vg_buf_puts(b, "null");
    }
}

void cli_print_detail_json(FILE *out, const struct vg_resource *res, int64_t now_ms)
{
    size_t n_open = 0;
    const struct vg_open_incident **open = open_incidents(res, &n_open);
    struct detail d;
    struct vg_buf b = {0};

    detail_init(&d, res, now_ms);
    vg_buf_putc(&b, '{');
    cli_json_member(&b, "\n  ", "id", res->id);
    cli_json_member(&b, ",\n  ", "name", res->name);
    cli_json_member(&b, ",\n  ", "version", res->version);
    cli_json_member(&b, ",\n  ", "type", res->type);
    cli_json_member(&b, ",\n  ", "workspace", res->workspace);
    cli_json_member(&b, ",\n  ", "status", res->status);
    cli_json_member(&b, ",\n  ", "runtime", res->runtime);
    cli_json_member(&b, ",\n  ", "owner", res->owner);
    cli_json_member(&b, ",\n  ", "health", vg_health_name(res->health));
    json_time(&b, "updated_at", d.updated_at);
    json_time(&b, "status_since", d.status_since);
    json_time(&b, "runtime_since", d.runtime_since);
    json_time(&b, "health_since", d.health_since);
    cli_json_member(&b, ",\n  ", "message", res->message);
    vg_buf_puts(&b, ",\n  \"position\": ");
    if (res->pos.topic) {
        vg_buf_puts(&b, "{\"topic\": ");
        vg_json_append_string(&b, res->pos.topic);
        vg_buf_printf(&b, ", \"partition\": %d, \"offset\": %" PRId64 "}", (int)res->pos.partition,
                      res->pos.offset);
    } else {
        vg_buf_puts(&b, "null");
    }
    vg_buf_puts(&b, ",\n  \"incidents\": [");
    for (size_t i = 0; i < n_open; i++) {
        const struct vg_open_incident *inc = open[i];
        char ts[40];

        cli_format_time(inc->started_at_ms, ts, sizeof(ts));
        vg_buf_puts(&b, i ? ",\n    {\"monitor\": " : "\n    {\"monitor\": ");
        vg_json_append_string(&b, inc->monitor);
        vg_buf_puts(&b, ", \"id\": ");
        vg_json_append_string(&b, inc->id);
        vg_buf_puts(&b, ", \"severity\": ");
        vg_json_append_string(&b, inc->severity);
        vg_buf_puts(&b, ", \"started_at\": ");
        if (ts[0]) {
            vg_json_append_string(&b, ts);
        } else {
            vg_buf_puts(&b, "null");
        }
        vg_buf_printf(&b, ", \"notifications\": %d}", inc->seq);
    }
    vg_buf_puts(&b, n_open ? "\n  ]" : "]");
    detail_pods_json(&b, res);
    vg_buf_puts(&b, "\n}\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
    vg_free(open);
}

void cli_print_detail_yaml(FILE *out, const struct vg_resource *res, int64_t now_ms)
{
    size_t n_open = 0;
    const struct vg_open_incident **open = open_incidents(res, &n_open);
    struct detail d;
    struct vg_buf b = {0};

    detail_init(&d, res, now_ms);
    cli_yaml_field(&b, "", "id", res->id);
    cli_yaml_field(&b, "", "name", res->name);
    cli_yaml_field(&b, "", "version", res->version);
    cli_yaml_field(&b, "", "type", res->type);
    cli_yaml_field(&b, "", "workspace", res->workspace);
    cli_yaml_field(&b, "", "status", res->status);
    cli_yaml_field(&b, "", "runtime", res->runtime);
    cli_yaml_field(&b, "", "owner", res->owner);
    cli_yaml_field(&b, "", "health", vg_health_name(res->health));
    cli_yaml_field(&b, "", "updated_at", d.updated_at[0] ? d.updated_at : NULL);
    cli_yaml_field(&b, "", "status_since", d.status_since[0] ? d.status_since : NULL);
    cli_yaml_field(&b, "", "runtime_since", d.runtime_since[0] ? d.runtime_since : NULL);
    cli_yaml_field(&b, "", "health_since", d.health_since[0] ? d.health_since : NULL);
    cli_yaml_field(&b, "", "message", res->message);
    if (res->pos.topic) {
        vg_buf_puts(&b, "position:\n");
        cli_yaml_field(&b, "  ", "topic", res->pos.topic);
        vg_buf_printf(&b, "  partition: %d\n  offset: %" PRId64 "\n", (int)res->pos.partition,
                      res->pos.offset);
    } else {
        vg_buf_puts(&b, "position: null\n");
    }
    if (n_open == 0) {
        vg_buf_puts(&b, "incidents: []\n");
    } else {
        vg_buf_puts(&b, "incidents:\n");
    }
    for (size_t i = 0; i < n_open; i++) {
        const struct vg_open_incident *inc = open[i];
        char ts[40];

        cli_format_time(inc->started_at_ms, ts, sizeof(ts));
        cli_yaml_field(&b, "  - ", "monitor", inc->monitor);
        cli_yaml_field(&b, "    ", "id", inc->id);
        cli_yaml_field(&b, "    ", "severity", inc->severity);
        cli_yaml_field(&b, "    ", "started_at", ts[0] ? ts : NULL);
        vg_buf_printf(&b, "    notifications: %d\n", inc->seq);
    }
    detail_pods_yaml(&b, res);
    fputs(b.data, out);
    vg_buf_fini(&b);
    vg_free(open);
}

/* ---- the command ------------------------------------------------------ */

static void get_usage(FILE *out)
{
    fputs("usage: vigil get [-c vigil.yaml | --redis URL [--prefix P]] [-t TYPE] [-w WORKSPACE]\n"
          "                 [-n NAME-GLOB] [--owner OWNER] [-a] [-o table|wide|json|yaml]\n"
          "       vigil get [-c vigil.yaml | --redis URL [--prefix P]] [-o table|json|yaml] ID\n"
          "\n"
          "List Resources with their status and runtime, or show one (ID) in full.\n"
          "\n"
          "  -t, --type TYPE          only this type\n"
          "  -w, --workspace WS       only this workspace\n"
          "  -n, --name NAME-GLOB     names matching a shell glob (*, ?, [a-z])\n"
          "      --owner OWNER        only this owner (exact)\n"
          "  -a, --all                all owners (the default; for dataos-ctl habits)\n"
          "  -o, --output FORMAT      table (default), wide, json or yaml\n"
          "  ID                       type:version:name:workspace: one Resource in "
          "full\n" CLI_USAGE_REDIS_FLAGS,
          out);
}

static int get_one(struct vg_state *st, const char *id, const char *output)
{
    struct vg_resource *res = NULL;
    char errstr[1024];
    vg_err_t err = vg_state_get(st, id, &res, errstr, sizeof(errstr));
    int64_t now = cli_now_ms();

    if (err != VG_OK) {
        return cli_state_error("get", err, errstr);
    }
    if (!res) {
        fprintf(stderr, "vigil get: resource \"%s\" not found\n", id);
        return CLI_EXIT_FAILURE;
    }
    if (!strcmp(output, "json")) {
        cli_print_detail_json(stdout, res, now);
    } else if (!strcmp(output, "yaml")) {
        cli_print_detail_yaml(stdout, res, now);
    } else {
        cli_print_detail(stdout, res, now, cli_use_color(stdout));
    }
    vg_resource_destroy(res);
    return CLI_EXIT_OK;
}

static int get_list(struct vg_state *st, const struct vg_state_filter *f, const char *output)
{
    struct vg_resource **v = NULL;
    char errstr[1024];
    size_t n = 0;
    vg_err_t err = vg_state_list(st, f, &v, &n, errstr, sizeof(errstr));

    if (err != VG_OK) {
        return cli_state_error("get", err, errstr);
    }
    if (!strcmp(output, "json")) {
        cli_print_json(stdout, v, n);
    } else if (!strcmp(output, "yaml")) {
        cli_print_yaml(stdout, v, n);
    } else if (n > 0 && !strcmp(output, "wide")) {
        cli_print_wide(stdout, v, n, cli_use_color(stdout), cli_now_ms());
    } else if (n > 0) {
        cli_print_table(stdout, v, n, cli_use_color(stdout));
    }
    if (n == 0) {
        fprintf(stderr, "No resources found.\n");
    }
    vg_resources_free(v, n);
    return CLI_EXIT_OK;
}

/* get's own flags: the list's filters. */
static int get_flag(void *ctx, int opt, const char *arg)
{
    struct vg_state_filter *f = ctx;

    switch (opt) {
    case 't':
        f->type = arg;
        break;
    case 'w':
        f->workspace = arg;
        break;
    case 'n':
        f->name_glob = arg;
        break;
    case CLI_LONG_ONLY('O'):
        f->owner = arg;
        break;
    default: /* 'a': all owners, also the default (dataos-ctl habit) */
        break;
    }
    return CLI_CONTINUE;
}

/* The operand: at most one Resource ID (which takes no filter), or a valid name glob. */
static int check_get_args(const struct cli_readonly *ro, const struct vg_state_filter *f)
{
    const char *id = ro->n_args > 0 ? ro->args[0] : NULL;

    if (id && !strchr(id, ':')) {
        fprintf(stderr,
                "vigil get: \"%s\" is not a Resource id (type:version:name:workspace); "
                "use -n NAME-GLOB to search by name\n",
                id);
        return CLI_EXIT_USAGE;
    }
    if (id && (f->type || f->workspace || f->name_glob || f->owner)) {
        fprintf(stderr, "vigil get: an ID cannot be combined with -t, -w, -n or --owner\n");
        return CLI_EXIT_USAGE;
    }
    if (ro->n_args > 1) {
        fprintf(stderr, "vigil get: unexpected argument \"%s\"\n", ro->args[1]);
        get_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (f->name_glob && !vg_glob_valid(f->name_glob)) {
        fprintf(stderr, "vigil get: bad name glob \"%s\" (unbalanced [ ])\n", f->name_glob);
        return CLI_EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

static int run_get(struct vg_state *st, const struct cli_readonly *ro, void *filter)
{
    return ro->n_args > 0 ? get_one(st, ro->args[0], ro->output) : get_list(st, filter, ro->output);
}

int cli_cmd_get(int argc, char **argv)
{
    static const char *const outputs[] = {"table", "wide", "json", "yaml", NULL};
    static const struct option opts[] = {{"type", required_argument, NULL, 't'},
                                         {"workspace", required_argument, NULL, 'w'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"owner", required_argument, NULL, CLI_LONG_ONLY('O')},
                                         {"all", no_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    struct vg_state_filter f = {0};
    const struct cli_readonly_cmd cmd = {"get", outputs, get_usage, opts, NULL, get_flag, &f};
    struct cli_readonly ro;
    int rc = cli_readonly_parse(&cmd, argc, argv, &ro);

    if (rc == CLI_CONTINUE) {
        rc = check_get_args(&ro, &f);
    }
    return rc != CLI_CONTINUE ? rc : cli_readonly_run("get", &ro, CLI_CONFIG_REDIS, run_get, &f);
}
