/*
 * `vigil silence add --match K=GLOB... --for DUR [--start RFC3339]
 * --comment TEXT [--author NAME]`, `vigil silence list [-o table|json]
 * [--all]`, `vigil silence expire ID`: silences in Redis. A silenced
 * incident is still recorded, but not paged; `vigil run` pages it when the
 * silence ends (or is expired) if it is still firing.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static void usage(FILE *out)
{
    fputs("usage: vigil silence add [-c vigil.yaml | --redis URL [--prefix P]]\n"
          "                         --match KEY=GLOB [--match ...] --for DURATION\n"
          "                         [--start RFC3339] --comment TEXT [--author NAME]\n"
          "       vigil silence list [-c vigil.yaml | --redis URL] [-o table|json] [--all]\n"
          "       vigil silence expire [-c vigil.yaml | --redis URL] SILENCE-ID\n"
          "keys: monitor, resource (a Resource id), severity, incident, type, workspace,\n"
          "      name, owner, version, labels.<key>\n",
          out);
}

static const char *silence_state(const struct vg_silence *s, int64_t now)
{
    if (now < s->starts_at_ms) {
        return "pending";
    }
    return now < s->ends_at_ms ? "active" : "expired";
}

static void print_json(FILE *out, const struct vg_silence *v, size_t n, int64_t now)
{
    struct vg_buf b = {0};

    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        char *json = vg_silence_to_json(&v[i]);

        /* the stored object plus "state" */
        json[strlen(json) - 1] = '\0';
        vg_buf_printf(&b, "%s%s,\"state\":", i ? "," : "", json);
        vg_json_append_string(&b, silence_state(&v[i], now));
        vg_buf_putc(&b, '}');
        vg_free(json);
    }
    vg_buf_puts(&b, "]\n");
    fputs(b.data, out);
    vg_buf_fini(&b);
}

static void print_table(FILE *out, const struct vg_silence *v, size_t n, int64_t now)
{
    static const char *const headers[] = {"ID",   "STATE",      "MATCHERS", "STARTS",
                                          "ENDS", "CREATED BY", "COMMENT"};
    enum { NCOLS = VG_ARRAY_LEN(headers) };
    const char **cells = vg_calloc(NCOLS * n + 1, sizeof(*cells));
    char(*t)[2][40] = vg_calloc(n + 1, sizeof(*t));
    struct vg_buf *m = vg_calloc(n + 1, sizeof(*m));

    for (size_t i = 0; i < n; i++) {
        const char **row = &cells[i * NCOLS];

        for (size_t j = 0; j < v[i].n_matchers; j++) {
            vg_buf_printf(&m[i], "%s%s", j ? " " : "", v[i].matchers[j]);
        }
        cli_format_time(v[i].starts_at_ms, t[i][0], sizeof(t[i][0]));
        cli_format_time(v[i].ends_at_ms, t[i][1], sizeof(t[i][1]));
        row[0] = v[i].id;
        row[1] = silence_state(&v[i], now);
        row[2] = m[i].data ? m[i].data : "";
        row[3] = t[i][0];
        row[4] = t[i][1];
        row[5] = v[i].created_by;
        row[6] = v[i].comment;
    }
    cli_print_grid(out, headers, NCOLS, cells, NULL, n);
    for (size_t i = 0; i < n; i++) {
        vg_buf_fini(&m[i]);
    }
    vg_free(m);
    vg_free(cells);
    vg_free(t);
}

static int cmd_list(struct vg_state *st, const char *output, bool all)
{
    struct vg_silence *v = NULL;
    size_t n = 0;
    size_t k = 0;
    char errstr[512];
    int64_t now = cli_now_ms();
    vg_err_t err = vg_state_silences_list(st, &v, &n, errstr, sizeof(errstr));

    if (err != VG_OK) {
        return cli_state_error("silence", err, errstr);
    }
    for (size_t i = 0; i < n; i++) {
        if (all || v[i].ends_at_ms > now) {
            if (k != i) {
                v[k] = v[i];
                memset(&v[i], 0, sizeof(v[i]));
            }
            k++;
        } else {
            vg_silence_fini(&v[i]);
        }
    }
    if (strcmp(output, "json") == 0) {
        print_json(stdout, v, k, now);
    } else if (k == 0) {
        fprintf(stderr, "no silences\n");
    } else {
        print_table(stdout, v, k, now);
    }
    vg_silences_free(v, n);
    return CLI_EXIT_OK;
}

static int cmd_add(struct vg_state *st, struct vg_silence *s)
{
    char errstr[512];
    vg_err_t err = vg_state_silence_add(st, s, errstr, sizeof(errstr));

    if (err != VG_OK) {
        return cli_state_error("silence", err, errstr);
    }
    printf("%s\n", s->id);
    return CLI_EXIT_OK;
}

static int cmd_expire(struct vg_state *st, const char *id)
{
    char errstr[512];
    bool found = false;
    vg_err_t err = vg_state_silence_expire(st, id, cli_now_ms(), &found, errstr, sizeof(errstr));

    if (err != VG_OK) {
        return cli_state_error("silence", err, errstr);
    }
    if (!found) {
        fprintf(stderr, "vigil silence: no silence \"%s\"\n", id);
        return CLI_EXIT_FAILURE;
    }
    printf("expired %s\n", id);
    return CLI_EXIT_OK;
}

int cli_cmd_silence(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"redis", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'P'}, {"output", required_argument, NULL, 'o'},
        {"match", required_argument, NULL, 'm'},  {"for", required_argument, NULL, 'f'},
        {"start", required_argument, NULL, 's'},  {"comment", required_argument, NULL, 'C'},
        {"author", required_argument, NULL, 'A'}, {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    const char *redis_url = NULL;
    const char *prefix = NULL;
    const char *output = "table";
    const char *comment = NULL;
    const char *author = NULL;
    const char *sub;
    int64_t for_ms = 0;
    int64_t start_ms = 0;
    bool all = false;
    struct vg_silence s;
    struct vg_config cfg;
    struct vg_redis_child *child = NULL;
    struct vg_state *st = NULL;
    char errstr[512];
    int rc;
    int opt;

    memset(&s, 0, sizeof(s));
    s.matchers = vg_calloc((size_t)argc + 1, sizeof(char *));
    while ((opt = getopt_long(argc, argv, "c:o:m:ah", opts, NULL)) != -1) {
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
        case 'm':
            if (!vg_rules_matcher_valid(optarg, errstr, sizeof(errstr))) {
                fprintf(stderr, "vigil silence: %s\n", errstr);
                vg_silence_fini(&s);
                return CLI_EXIT_USAGE;
            }
            s.matchers[s.n_matchers++] = vg_strdup(optarg);
            break;
        case 'f':
            if (!vg_duration_parse(optarg, &for_ms) || for_ms <= 0) {
                fprintf(stderr, "vigil silence: --for: bad duration \"%s\" (e.g. 30m, 2h, 1d)\n",
                        optarg);
                vg_silence_fini(&s);
                return CLI_EXIT_USAGE;
            }
            break;
        case 's':
            if (!vg_time_parse_rfc3339(optarg, strlen(optarg), &start_ms)) {
                fprintf(stderr, "vigil silence: --start: expected RFC 3339, got \"%s\"\n", optarg);
                vg_silence_fini(&s);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'C':
            comment = optarg;
            break;
        case 'A':
            author = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'h':
            usage(stdout);
            vg_silence_fini(&s);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            vg_silence_fini(&s);
            return CLI_EXIT_USAGE;
        }
    }
    sub = optind < argc ? argv[optind] : "";
    rc = CLI_EXIT_OK;
    if (strcmp(sub, "add") == 0) {
        if (s.n_matchers == 0 || for_ms == 0 || !comment || optind + 1 != argc) {
            fprintf(stderr, "vigil silence add: needs --match (one or more), --for and "
                            "--comment\n");
            rc = CLI_EXIT_USAGE;
        }
    } else if (strcmp(sub, "expire") == 0) {
        if (optind + 2 != argc) {
            usage(stderr);
            rc = CLI_EXIT_USAGE;
        }
    } else if (strcmp(sub, "list") != 0 || optind + 1 != argc) {
        usage(stderr);
        rc = CLI_EXIT_USAGE;
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "vigil silence: -o must be table or json\n");
        rc = CLI_EXIT_USAGE;
    }
    if (rc != CLI_EXIT_OK) {
        vg_silence_fini(&s);
        return rc;
    }
    rc = cli_open_state("silence", config_path, strcmp(sub, "list") != 0, redis_url, prefix, &cfg,
                        &st, &child);
    if (rc == CLI_EXIT_OK) {
        if (strcmp(sub, "add") == 0) {
            int64_t now = cli_now_ms();
            const char *user = getenv("USER");
            char pid[16];
            char at[24];
            const char *parts[4];
            char id[17];

            s.starts_at_ms = start_ms ? start_ms : now;
            s.ends_at_ms = s.starts_at_ms + for_ms;
            s.comment = vg_strdup(comment);
            s.created_by = vg_strdup(author ? author : (user && *user ? user : "unknown"));
            snprintf(pid, sizeof(pid), "%d", (int)getpid());
            snprintf(at, sizeof(at), "%lld", (long long)vg_now_ms());
            parts[0] = at;
            parts[1] = pid;
            parts[2] = s.matchers[0];
            parts[3] = comment;
            vg_fingerprint(id, parts, VG_ARRAY_LEN(parts));
            s.id = vg_strdup(id);
            rc = cmd_add(st, &s);
        } else if (strcmp(sub, "expire") == 0) {
            rc = cmd_expire(st, argv[optind + 1]);
        } else {
            rc = cmd_list(st, output, all);
        }
    }
    vg_silence_fini(&s);
    cli_close_state(st, child);
    vg_config_fini(&cfg);
    return rc;
}
