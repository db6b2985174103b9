/*
 * `vigil silence add --match K=GLOB... --for DUR [--start RFC3339]
 * --comment TEXT [--author NAME]`, `vigil silence list [-o table|json]
 * [--all]`, `vigil silence expire ID`: silences in Redis. A silenced
 * incident is still recorded, but not paged; `vigil run` pages it when the
 * silence ends (or is expired) if it is still firing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "render.h"
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
          "\n"
          "Mute incidents for a while: matching incidents are recorded but not paged.\n"
          "\n"
          "  -m, --match KEY=GLOB  what to silence (repeatable; all must match). Keys:\n"
          "                        monitor, resource (a Resource id), severity, incident,\n"
          "                        type, workspace, name, owner, version, labels.<key>\n"
          "      --for DURATION    how long (30m, 4h, 2d)\n"
          "      --start RFC3339   when it starts (default now)\n"
          "      --comment TEXT    why (required)\n"
          "      --author NAME     who (default: $USER)\n"
          "  -a, --all             list: expired silences too\n"
          "  -o, --output FORMAT   list: table (default) or json\n"
          "  expire SILENCE-ID     end it now\n" CLI_USAGE_REDIS_FLAGS,
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

/* What `silence` was given: the flags of add and list, and the silence add builds. */
struct silence_args {
    struct vg_silence s; /* its matchers: the --match flags */
    int64_t for_ms;
    int64_t start_ms; /* 0: now */
    const char *comment;
    const char *author;
    bool all; /* list: the expired ones too */
};

static int silence_flag(void *ctx, int opt, const char *arg)
{
    struct silence_args *a = ctx;
    char errstr[512];

    switch (opt) {
    case 'm':
        if (!vg_rules_matcher_valid(arg, errstr, sizeof(errstr))) {
            fprintf(stderr, "vigil silence: %s\n", errstr);
            return CLI_EXIT_USAGE;
        }
        a->s.matchers[a->s.n_matchers++] = vg_strdup(arg);
        break;
    case CLI_LONG_ONLY('f'):
        if (!vg_duration_parse(arg, &a->for_ms) || a->for_ms <= 0) {
            fprintf(stderr, "vigil silence: --for: bad duration \"%s\" (e.g. 30m, 2h, 1d)\n", arg);
            return CLI_EXIT_USAGE;
        }
        break;
    case CLI_LONG_ONLY('s'):
        if (!vg_time_parse_rfc3339(arg, strlen(arg), &a->start_ms)) {
            fprintf(stderr, "vigil silence: --start: expected RFC 3339, got \"%s\"\n", arg);
            return CLI_EXIT_USAGE;
        }
        break;
    case CLI_LONG_ONLY('C'):
        a->comment = arg;
        break;
    case CLI_LONG_ONLY('A'):
        a->author = arg;
        break;
    default: /* 'a' */
        a->all = true;
        break;
    }
    return CLI_CONTINUE;
}

/* The operands and what each subcommand needs: `add` (with its flags), `list`, `expire ID`. */
static int check_silence_args(const struct cli_readonly *ro, const struct silence_args *a)
{
    const char *sub = ro->n_args > 0 ? ro->args[0] : "";

    if (strcmp(sub, "add") == 0) {
        if (a->s.n_matchers == 0 || a->for_ms == 0 || !a->comment || ro->n_args != 1) {
            fprintf(stderr, "vigil silence add: needs --match (one or more), --for and "
                            "--comment\n");
            return CLI_EXIT_USAGE;
        }
        return CLI_CONTINUE;
    }
    if ((strcmp(sub, "expire") == 0 && ro->n_args == 2) ||
        (strcmp(sub, "list") == 0 && ro->n_args == 1)) {
        return CLI_CONTINUE;
    }
    usage(stderr);
    return CLI_EXIT_USAGE;
}

/* The silence `add` writes: its time range, comment, author and a fresh id. */
static void silence_fill(struct silence_args *a)
{
    struct vg_silence *s = &a->s;
    const char *user = getenv("USER");
    char pid[16];
    char at[24];
    const char *parts[4];
    char id[17];

    s->starts_at_ms = a->start_ms ? a->start_ms : cli_now_ms();
    s->ends_at_ms = s->starts_at_ms + a->for_ms;
    s->comment = vg_strdup(a->comment);
    s->created_by = vg_strdup(a->author ? a->author : (user && *user ? user : "unknown"));
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(at, sizeof(at), "%lld", (long long)vg_now_ms());
    parts[0] = at;
    parts[1] = pid;
    parts[2] = s->matchers[0];
    parts[3] = a->comment;
    vg_fingerprint(id, parts, VG_ARRAY_LEN(parts));
    s->id = vg_strdup(id);
}

static int run_silence(struct vg_state *st, const struct cli_readonly *ro, void *args)
{
    struct silence_args *a = args;

    if (strcmp(ro->args[0], "add") == 0) {
        silence_fill(a);
        return cmd_add(st, &a->s);
    }
    if (strcmp(ro->args[0], "expire") == 0) {
        return cmd_expire(st, ro->args[1]);
    }
    return cmd_list(st, ro->output, a->all);
}

int cli_cmd_silence(int argc, char **argv)
{
    static const char *const outputs[] = {"table", "json", NULL};
    static const struct option opts[] = {{"match", required_argument, NULL, 'm'},
                                         {"for", required_argument, NULL, CLI_LONG_ONLY('f')},
                                         {"start", required_argument, NULL, CLI_LONG_ONLY('s')},
                                         {"comment", required_argument, NULL, CLI_LONG_ONLY('C')},
                                         {"author", required_argument, NULL, CLI_LONG_ONLY('A')},
                                         {"all", no_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    struct silence_args a = {0};
    const struct cli_readonly_cmd cmd = {"silence", outputs, usage, opts, NULL, silence_flag, &a};
    struct cli_readonly ro;
    int rc;

    a.s.matchers = vg_calloc((size_t)argc + 1, sizeof(char *));
    rc = cli_readonly_parse(&cmd, argc, argv, &ro);
    if (rc == CLI_CONTINUE) {
        rc = check_silence_args(&ro, &a);
    }
    if (rc == CLI_CONTINUE) {
        /* add and expire change what is paged: they load the whole config */
        rc = cli_readonly_run("silence", &ro,
                              strcmp(ro.args[0], "list") == 0 ? CLI_CONFIG_REDIS : CLI_CONFIG_ALL,
                              run_silence, &a);
    }
    vg_silence_fini(&a.s);
    return rc;
}
