/*
 * `vigil incidents [-o table|json] [--all | --since DUR]`: firing incidents
 * and those that ended recently (24 h by default), from the incident
 * records in Redis. `vigil incidents resolve ID` ends an incident by hand
 * (the way out of `resolve: never`): it schedules a resolve timer on the
 * incident's partition, which the `vigil run` owning it applies, pages
 * included. `vigil incidents show ID` is cmd_incidents_show.c (issue 6).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define RECENT_MS (24LL * 3600 * 1000)

static void usage(FILE *out)
{
    fputs("usage: vigil incidents [-c vigil.yaml | --redis URL [--prefix P]] [-o table|json]\n"
          "                       [--all | --since DURATION]\n"
          "       vigil incidents resolve [-c vigil.yaml | --redis URL] INCIDENT-ID\n"
          "       vigil incidents show [-c vigil.yaml | --redis URL] [-o table|json] INCIDENT-ID\n",
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

static int list(struct vg_state *st, const char *output, bool all, int64_t since_ms)
{
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
        bool keep = all || strcmp(v[i].state, "firing") == 0 ||
                    (v[i].ended_at_ms && v[i].updated_at_ms >= now - since_ms);

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
    if (strcmp(output, "json") == 0) {
        print_json(stdout, v, k);
    } else if (k == 0) {
        fprintf(stderr, "no incidents\n");
    } else {
        print_table(stdout, v, k);
    }
    vg_incident_records_free(v, n);
    return CLI_EXIT_OK;
}

static int resolve(struct vg_state *st, const char *id)
{
    struct vg_incident_record r;
    struct vg_timer t = {0};
    char errstr[512];
    bool found = false;
    vg_err_t err = vg_state_incident_get(st, id, &r, &found, errstr, sizeof(errstr));

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
    /* Applied by the `vigil run` that owns the partition, in its own commit. */
    t.topic = r.topic;
    t.partition = r.partition;
    t.member = vg_rules_timer_member('x', r.monitor, r.resource);
    t.due_ms = 1;
    err = vg_state_timer_set(st, &t, false, errstr, sizeof(errstr));
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

/* Index of the first positional argument (skipping our options and their values), or argc. */
static int first_positional(int argc, char **argv)
{
    static const char *const with_value[] = {"-c", "--config", "--redis", "--prefix",
                                             "-o", "--output", "--since"};

    for (int i = 1; i < argc; i++) {
        bool takes = false;

        if (argv[i][0] != '-') {
            return i;
        }
        if (strcmp(argv[i], "--") == 0) {
            return i + 1;
        }
        for (size_t k = 0; k < VG_ARRAY_LEN(with_value); k++) {
            takes = takes || strcmp(argv[i], with_value[k]) == 0;
        }
        if (takes) {
            i++;
        }
    }
    return argc;
}

int cli_cmd_incidents(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"redis", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'P'}, {"output", required_argument, NULL, 'o'},
        {"all", no_argument, NULL, 'a'},          {"since", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    const char *redis_url = NULL;
    const char *prefix = NULL;
    const char *output = "table";
    int64_t since_ms = RECENT_MS;
    bool all = false;
    struct vg_config cfg;
    struct vg_redis_child *child = NULL;
    struct vg_state *st = NULL;
    int pos = first_positional(argc, argv);
    int rc;
    int opt;

    if (pos < argc && strcmp(argv[pos], "show") == 0) {
        /* "show" first, then everything else in order: cmd_incidents_show.c parses it */
        char **sub = vg_calloc((size_t)argc + 1, sizeof(*sub));
        int n = 0;

        sub[n++] = argv[pos];
        for (int i = 1; i < argc; i++) {
            if (i != pos) {
                sub[n++] = argv[i];
            }
        }
        rc = cli_cmd_incidents_show(n, sub);
        vg_free(sub);
        return rc;
    }
    while ((opt = getopt_long(argc, argv, "c:o:ah", opts, NULL)) != -1) {
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
        case 'a':
            all = true;
            break;
        case 's':
            if (!vg_duration_parse(optarg, &since_ms)) {
                fprintf(stderr, "vigil incidents: bad duration \"%s\"\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "vigil incidents: -o must be table or json\n");
        return CLI_EXIT_USAGE;
    }
    if (optind < argc && strcmp(argv[optind], "resolve") != 0) {
        fprintf(stderr, "vigil incidents: unknown subcommand \"%s\"\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (optind < argc && optind + 2 != argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    rc = cli_open_state("incidents", config_path, optind < argc, redis_url, prefix, &cfg, &st,
                        &child);
    if (rc == CLI_EXIT_OK) {
        rc = optind < argc ? resolve(st, argv[optind + 1]) : list(st, output, all, since_ms);
    }
    cli_close_state(st, child);
    vg_config_fini(&cfg);
    return rc;
}
