/*
 * `vigil demo`: the whole pipeline on the embedded stack. Starts the mock
 * Kafka cluster and a private redis-server in a temp dir, replays
 * examples/events/demo.jsonl into Kafka, lets `vigil run`'s machinery
 * consume it (pages print through the console sink), waits until every
 * event is applied and every page delivered, prints the `get` table, exits.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "vigil/engine.h"
#include "vigil/log.h"
#include "vigil/mem.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

#define DEMO_TIMEOUT_MS 60000

struct demo {
    long long produced;
    int64_t deadline;
    bool timed_out;
    int64_t next_check;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A path relative to the working directory, else to the source tree. */
static char *find_path(const char *rel)
{
    struct stat sb;
    if (stat(rel, &sb) == 0) {
        return vg_strdup(rel);
    }
#ifdef VIGIL_SOURCE_DIR
    {
        char *p = vg_asprintf("%s/%s", VIGIL_SOURCE_DIR, rel);
        if (stat(p, &sb) == 0) {
            return p;
        }
        free(p);
    }
#endif
    return NULL;
}

static int produce_file(const char *bootstraps, const char *topic, const char *path,
                        long long *count)
{
    FILE *fp = fopen(path, "r");
    struct vg_producer *p = NULL;
    char errstr[512];
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    if (!fp) {
        fprintf(stderr, "vigil demo: cannot open %s\n", path);
        return CLI_EXIT_FAILURE;
    }
    if (vg_producer_new(&p, bootstraps, NULL, 0, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil demo: %s\n", errstr);
        fclose(fp);
        return CLI_EXIT_FAILURE;
    }
    while ((len = getline(&line, &cap, fp)) > 0) {
        struct vg_event ev;
        const char *key = NULL;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0 || line[0] == '#') {
            continue;
        }
        /* Key by resource id, as producers should, so one Resource stays on one partition. */
        if (vg_event_decode(&ev, line, (size_t)len, -1, NULL, 0) == VG_DECODE_OK) {
            key = ev.id;
        }
        if (vg_producer_send(p, topic, -1, key, key ? strlen(key) : 0, line, (size_t)len, errstr,
                             sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "vigil demo: produce: %s\n", errstr);
            vg_event_fini(&ev);
            break;
        }
        vg_event_fini(&ev);
        (*count)++;
    }
    free(line);
    fclose(fp);
    if (vg_producer_flush(p, 10000, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "vigil demo: produce: %s\n", errstr);
        vg_producer_destroy(p);
        return CLI_EXIT_FAILURE;
    }
    vg_producer_destroy(p);
    return CLI_EXIT_OK;
}

/* Consumer thread: stop once every event is consumed and every page delivered. */
static void demo_idle(struct vg_engine *eng, void *arg)
{
    struct demo *dm = arg;
    struct vg_engine_stats stats;
    char errstr[256];
    int64_t backlog = -1;
    int64_t now = vg_mono_ms();

    if (now < dm->next_check) {
        return;
    }
    dm->next_check = now + 100;
    if (now > dm->deadline) {
        dm->timed_out = true;
        vg_engine_request_stop(eng);
        return;
    }
    vg_engine_stats(eng, &stats);
    if (stats.consumed < dm->produced) {
        return;
    }
    if (vg_state_outbox_backlog(vg_engine_state(eng), &backlog, errstr, sizeof(errstr)) == VG_OK &&
        backlog == 0) {
        vg_engine_request_stop(eng);
    }
}

static void usage(FILE *out)
{
    fputs("usage: vigil demo [--events FILE.jsonl] [--verbose]\n"
          "\n"
          "Run the whole pipeline on the embedded stack (mock Kafka, a private\n"
          "redis-server in a temporary directory): replay the events, print the pages\n"
          "through the console sink and the `get` table.\n"
          "\n"
          "  -e, --events FILE.jsonl  the events to replay, one JSON event per line\n"
          "                           (default examples/events/demo.jsonl)\n"
          "  -v, --verbose            INFO log lines on stderr\n"
          "  -h, --help               this help\n",
          out);
}

int cli_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"events", required_argument, NULL, 'e'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_flags flags = {.shortopts = "e:vh", .opts = opts, .usage = usage};
    const char *events_arg = "examples/events/demo.jsonl";
    char *events_path = NULL;
    char *rules_path = NULL;
    char *tmp = NULL;
    struct vg_config cfg;
    struct vg_engine_options eopt = {0};
    struct vg_engine *eng = NULL;
    struct vg_engine_stats stats;
    struct demo dm = {0};
    struct vg_resource **v = NULL;
    size_t n = 0;
    char errstr[512];
    vg_err_t err;
    int rc;
    int opt;
    bool verbose = false;

    while ((opt = cli_flags_next(&flags, argc, argv)) != -1) {
        switch (opt) {
        case 'e':
            events_arg = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        }
    }
    if (flags.stop) {
        return flags.exit_code;
    }
    if (!verbose) {
        vg_log_set_level(VG_LOG_LEVEL_WARN);
    }
    events_path = find_path(events_arg);
    rules_path = find_path("examples/rules");
    if (!events_path || !rules_path) {
        fprintf(stderr,
                "vigil demo: cannot find %s and examples/rules (run it from the "
                "source tree)\n",
                events_path ? "" : events_arg);
        free(events_path);
        free(rules_path);
        return CLI_EXIT_USAGE;
    }
    vg_config_init(&cfg);
    tmp = vg_asprintf("%s/vigil-demo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "vigil demo: cannot create a temp dir\n");
        rc = CLI_EXIT_FAILURE;
        goto out_cfg;
    }
    free(cfg.redis.data_dir);
    cfg.redis.data_dir = vg_strdup(tmp);
    vg_strv_free(cfg.rules);
    cfg.rules = vg_calloc(2, sizeof(char *));
    cfg.rules[0] = vg_strdup(rules_path);
    cfg.n_rules = 1;

    printf("vigil demo: embedded Kafka + private redis-server, rules from %s\n", rules_path);
    printf("replaying %s\n\n", events_path);
    fflush(stdout);
    eopt.idle = demo_idle;
    eopt.idle_arg = &dm;
    eopt.signals = true;
    err = vg_engine_start(&eng, &cfg, &eopt, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil demo: %s\n", errstr);
    }
    rc = cli_engine_exit_code(err);
    if (rc == CLI_EXIT_OK) {
        rc =
            produce_file(vg_engine_bootstraps(eng), cfg.kafka.topics[0], events_path, &dm.produced);
    }
    if (rc == CLI_EXIT_OK) {
        dm.deadline = vg_mono_ms() + DEMO_TIMEOUT_MS;
        rc = cli_engine_exit_code(vg_engine_run(eng));
        if (dm.timed_out) {
            vg_engine_stats(eng, &stats);
            fprintf(stderr, "vigil demo: timed out after %d s (consumed %lld of %lld)\n",
                    DEMO_TIMEOUT_MS / 1000, stats.consumed, dm.produced);
            rc = CLI_EXIT_FAILURE;
        }
    }
    if (rc == CLI_EXIT_OK) {
        struct vg_state_filter f = {0};
        vg_engine_stats(eng, &stats);
        if (vg_state_list(vg_engine_state(eng), &f, &v, &n, errstr, sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "vigil demo: %s\n", errstr);
            rc = CLI_EXIT_FAILURE;
        } else {
            printf("\n%lld events consumed, %lld invalid, %lld pages delivered\n\n", stats.consumed,
                   stats.invalid, stats.delivered);
            printf("$ vigil get\n");
            cli_print_table(stdout, v, n, isatty(STDOUT_FILENO) && !getenv("NO_COLOR"));
        }
    }
    fflush(stdout);
    vg_resources_free(v, n);
    vg_engine_destroy(eng);
out_cfg:
    if (tmp) {
        /* the redis-server child is stopped: the demo leaves nothing behind */
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(tmp);
    free(events_path);
    free(rules_path);
    vg_config_fini(&cfg);
    return rc;
}
