/*
 * `vigil incidents [-o table|json] [--all | --since DUR]`: firing incidents
 * and those that ended recently (24 h by default), from the incident
 * records in Redis. `vigil incidents resolve ID` ends an incident by hand
 * (the way out of `resolve: never`): it schedules a resolve timer on the
 * incident's partition, which the `vigil run` owning it applies, pages
 * included. `vigil incidents show ID` is cmd_incidents_show.c.
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

#define RECENT_MS (24LL * 3600 * 1000)

static void usage(FILE *out)
{
    fputs("usage: vigil incidents [-c vigil.yaml | --redis URL [--prefix P]] [-o table|json]\n"
          "                       [--all | --since DURATION]\n"
          "       vigil incidents resolve [-c vigil.yaml | --redis URL] INCIDENT-ID\n"
          "       vigil incidents show [-c vigil.yaml | --redis URL] [-o table|json] INCIDENT-ID\n"
          "\n"
          "Firing and recently ended incidents; end one by hand; one incident's history.\n"
          "\n"
          "  -a, --all              every incident kept, not only firing and recent ones\n"
          "      --since DURATION   ended ones shown for this long (default 24h; 1h, 30m)\n"
          "  -o, --output FORMAT    table (default) or json\n"
          "  resolve INCIDENT-ID    end it now (for monitors with resolve: never)\n"
          "  show INCIDENT-ID       its notifications, per sink (vigil incidents show "
          "-h)\n" CLI_USAGE_REDIS_FLAGS,
          out);
}

static void print_table(FILE *out, const struct vg_incident_record *v, size_t n)
{
    static const char *const headers[] = {"ID",      "STATE", "SEVERITY", "MONITOR", "RESOURCE",
                                          "STARTED", "ENDED", "FLAGS",    "SUMMARY"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * n + 1, sizeof(*cells));
    char(*buf)[3][40] = vg_calloc(n + 1, sizeof(*buf));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];

        cli_format_time(v[i].started_at_ms, buf[i][0], sizeof(buf[i][0]));
        cli_format_time(v[i].ended_at_ms, buf[i][1], sizeof(buf[i][1]));
        snprintf(buf[i][2], sizeof(buf[i][2]), "%s%s%s", v[i].silenced ? "silenced " : "",
                 v[i].inhibited ? "inhibited " : "", v[i].resolve_never ? "manual" : "");
        row[0] = v[i].id;
        row[1] = v[i].state;
        row[2] = v[i].severity;
        row[3] = v[i].monitor;
        row[4] = v[i].resource;
        row[5] = buf[i][0];
        row[6] = v[i].ended_at_ms ? buf[i][1] : "-";
        row[7] = buf[i][2][0] ? buf[i][2] : "-";
        row[8] = v[i].summary;
    }
    cli_print_grid(out, headers, NCOLS, cells, NULL, n);
    vg_free(cells);
    vg_free(buf);
}

static void print_json(FILE *out, const struct vg_incident_record *v, size_t n)
{
    struct vg_buf b = {0};

    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        char *json = vg_incident_record_to_json(&v[i]);

        vg_buf_printf(&b, "%s%s", i ? "," : "", json);
        vg_free(json);
    }
    vg_buf_puts(&b, "]\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

/* The flags of the incident list. */
struct list_flags {
    bool all;
    int64_t since_ms;
};

static int list(struct vg_state *st, const struct cli_readonly *ro, void *flags)
{
    const struct list_flags *lf = flags;
    struct vg_incident_record *v = NULL;
    size_t n = 0;
    size_t k = 0;
    char errstr[512];
    int64_t now = cli_now_ms();
    vg_err_t err = vg_state_incidents_list(st, 0, &v, &n, errstr, sizeof(errstr));

    if (err != VG_OK) {
        return cli_state_error("incidents", err, errstr);
    }
    /* firing ones, and ended ones within the window; newest first */
    for (size_t i = 0; i < n; i++) {
        bool keep = lf->all || strcmp(v[i].state, "firing") == 0 ||
                    (v[i].ended_at_ms && v[i].updated_at_ms >= now - lf->since_ms);

        if (keep) {
            if (k != i) {
                v[k] = v[i];
                memset(&v[i], 0, sizeof(v[i]));
            }
            k++;
        } else {
            vg_incident_record_fini(&v[i]);
        }
    }
    if (strcmp(ro->output, "json") == 0) {
        print_json(stdout, v, k);
    } else if (k == 0) {
        fprintf(stderr, "no incidents\n");
    } else {
        print_table(stdout, v, k);
    }
    vg_incident_records_free(v, n);
    return CLI_EXIT_OK;
}

static int resolve(struct vg_state *st, const struct cli_readonly *ro, void *unused)
{
    const char *id = ro->args[1];
    struct vg_incident_record r;
    struct vg_timer t = {0};
    char errstr[512];
    bool found = false;
    vg_err_t err = vg_state_incident_get(st, id, &r, &found, errstr, sizeof(errstr));

    (void)unused;
    if (err != VG_OK) {
        return cli_state_error("incidents", err, errstr);
    }
    if (!found) {
        fprintf(stderr, "vigil incidents: no incident \"%s\"\n", id);
        return CLI_EXIT_FAILURE;
    }
    if (strcmp(r.state, "firing") != 0) {
        printf("incident %s already ended (%s)\n", id, r.state);
        vg_incident_record_fini(&r);
        return CLI_EXIT_OK;
    }
    /* Applied by the `vigil run` that owns the partition, in its own commit. With
     * redis.layout partitioned the partition's timers are in its scope: written there. */
    t.topic = r.topic;
    t.partition = r.partition;
    t.member = vg_rules_timer_member('x', r.monitor, r.resource);
    t.due_ms = 1;
    err = vg_state_scope(st, r.topic && r.topic[0] ? r.topic : NULL, r.partition, errstr,
                         sizeof(errstr));
    if (err == VG_OK) {
        err = vg_state_timer_set(st, &t, false, errstr, sizeof(errstr));
    }
    vg_free(t.member);
    if (err != VG_OK) {
        vg_incident_record_fini(&r);
        return cli_state_error("incidents", err, errstr);
    }
    printf("resolving incident %s (%s on %s): vigil run applies it within a second\n", id,
           r.monitor, r.resource);
    vg_incident_record_fini(&r);
    return CLI_EXIT_OK;
}

static int incidents_flag(void *ctx, int opt, const char *arg)
{
    struct list_flags *lf = ctx;

    if (opt == 'a') {
        lf->all = true;
        return CLI_CONTINUE;
    }
    if (!vg_duration_parse(arg, &lf->since_ms)) { /* --since */
        fprintf(stderr, "vigil incidents: bad duration \"%s\"\n", arg);
        return CLI_EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

/* `incidents [flags] show [flags] ID`: "show" first, then the rest in order, to its own parser. */
static int show(int argc, char **argv, int pos)
{
    char **sub = vg_calloc((size_t)argc + 1, sizeof(*sub));
    int n = 0;
    int rc;

    sub[n++] = (char *)"vigil incidents show"; /* what getopt_long names in its messages */
    for (int i = 1; i < argc; i++) {
        if (i != pos) {
            sub[n++] = argv[i];
        }
    }
    rc = cli_cmd_incidents_show(n, sub);
    vg_free(sub);
    return rc;
}

/* No operand (the list), or `resolve ID`. */
static int check_incidents_args(const struct cli_readonly *ro)
{
    if (ro->n_args > 0 && strcmp(ro->args[0], "resolve") != 0) {
        fprintf(stderr, "vigil incidents: unknown subcommand \"%s\"\n", ro->args[0]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (ro->n_args > 0 && ro->n_args != 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

int cli_cmd_incidents(int argc, char **argv)
{
    static const char *const outputs[] = {"table", "json", NULL};
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"since", required_argument, NULL, CLI_LONG_ONLY('s')},
                                         {NULL, 0, NULL, 0}};
    struct list_flags lf = {false, RECENT_MS};
    const struct cli_readonly_cmd cmd = {"incidents", outputs,        usage, opts,
                                         NULL,        incidents_flag, &lf};
    struct cli_readonly ro;
    int pos = cli_readonly_first_operand(&cmd, argc, argv);
    int rc;

    if (pos < argc && strcmp(argv[pos], "show") == 0) {
        return show(argc, argv, pos);
    }
    rc = cli_readonly_parse(&cmd, argc, argv, &ro);
    if (rc == CLI_CONTINUE) {
        rc = check_incidents_args(&ro);
    }
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    /* resolve writes a timer: it loads the whole config, like the other writers */
    return ro.n_args > 0 ? cli_readonly_run("incidents", &ro, CLI_CONFIG_ALL, resolve, NULL)
                         : cli_readonly_run("incidents", &ro, CLI_CONFIG_REDIS, list, &lf);
}
