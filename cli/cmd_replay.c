/*
 * `vigil replay --from-beginning | --from TIME`: rebuild the state from the
 * event topics into a fresh Redis prefix with the engine in process (a
 * new consumer group, no HTTP, pages held back unless --page), stop when
 * every partition reached the end it had at the start, then swap the new
 * state in (or, with --dry-run, summarise and delete it). docs/cli.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "vigil/engine.h"
#include "vigil/log.h"
#include "vigil/util.h"

#define PROGRESS_TTY_MS 250
#define PROGRESS_LINES_MS 5000
#define CHECK_MS 100
/* With --page: how long the replay waits for its pages to be delivered before it stops. */
#define PAGE_DRAIN_MS 60000
#define BAR_WIDTH 24

struct replay {
    struct vg_engine *eng;
    struct vg_kafka_range *ranges;
    size_t n;
    int64_t *pos; /* next offset to apply, per range */
    bool page;
    bool tty;
    int64_t interval_ms;
    int64_t start_ms;
    int64_t last_check_ms;
    int64_t last_print_ms;
    int64_t reached_ms; /* when every partition reached its end (0: not yet) */
    int lines_drawn;
    bool reached;
    bool done;
};

static void usage(FILE *out)
{
    fputs("usage: vigil replay [-c vigil.yaml] --from-beginning | --from TIME\n"
          "                    [--topic T] [--dry-run] [--page] [--progress-interval DUR]\n"
          "\n"
          "Rebuild the state from the event topics into a fresh Redis prefix\n"
          "(<prefix>:replay:<ts>), then swap it in for the live state, which is kept\n"
          "under <prefix>:old:<ts>. Stop `vigil run` first, start it again after.\n"
          "\n"
          "      --from-beginning        every message the topics still hold\n"
          "      --from TIME             messages from TIME on: RFC 3339\n"
          "                              (2026-11-28T10:00:00Z) or a duration ago (6h)\n"
          "      --topic T               only this one of kafka.topics\n"
          "      --dry-run               replay, print a summary, swap nothing, delete it\n"
          "      --page                  send the pages through the outbox and sinks\n"
          "                              (default: pages are held back and deleted)\n"
          "      --progress-interval DUR plain progress lines this often when stderr is\n"
          "                              not a terminal (default 5s)\n"
          "  -c, --config FILE           the configuration (kafka.brokers must be set)\n"
          "  -h, --help                  this help\n"
          "\n"
          "Exit: 0 replayed (and swapped), 1 runtime failure or interrupted (nothing\n"
          "swapped), 2 bad usage or config.\n",
          out);
}

static void format_eta(char *buf, size_t size, double secs)
{
    if (secs < 0) {
        snprintf(buf, size, "?");
    } else if (secs < 60) {
        snprintf(buf, size, "%.0fs", secs);
    } else if (secs < 3600) {
        snprintf(buf, size, "%dm%02ds", (int)secs / 60, (int)secs % 60);
    } else {
        snprintf(buf, size, "%dh%02dm", (int)secs / 3600, (int)secs % 3600 / 60);
    }
}

/* Events/s and the ETA of `done` of `total` events after `elapsed_s`. */
static void rate_eta(long long done, long long total, double elapsed_s, double *rate, char *eta,
                     size_t eta_size)
{
    *rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    if (done >= total) {
        snprintf(eta, eta_size, "0s");
    } else {
        format_eta(eta, eta_size, *rate > 0 ? (double)(total - done) / *rate : -1);
    }
}

/* One partition's (or the total's) progress: plain, or with a bar on a terminal. */
static void print_progress_line(const struct replay *r, const char *name, long long done,
                                long long total, double elapsed_s)
{
    double rate;
    char eta[32];
    int pct = total > 0 ? (int)(done * 100 / total) : 100;

    rate_eta(done, total, elapsed_s, &rate, eta, sizeof(eta));
    if (r->tty) {
        char bar[BAR_WIDTH + 1];
        int fill = pct * BAR_WIDTH / 100;

        for (int i = 0; i < BAR_WIDTH; i++) {
            bar[i] = i < fill ? '#' : '-';
        }
        bar[BAR_WIDTH] = '\0';
        fprintf(stderr, "\033[K%-24s [%s] %3d%% %lld/%lld %.0f events/s ETA %s\n", name, bar, pct,
                done, total, rate, eta);
    } else {
        fprintf(stderr, "replay: %s %lld/%lld events %d%% %.0f events/s ETA %s\n", name, done,
                total, pct, rate, eta);
    }
}

static void print_progress(struct replay *r, int64_t now_ms)
{
    double elapsed_s = (double)(now_ms - r->start_ms) / 1000.0;
    long long all_done = 0;
    long long all_total = 0;

    if (r->tty && r->lines_drawn > 0) {
        fprintf(stderr, "\033[%dA", r->lines_drawn);
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct vg_kafka_range *rg = &r->ranges[i];
        long long total = rg->end - rg->start;
        long long done = r->pos[i] - rg->start;
        char name[256];

        if (done > total) { /* applied past the end it had at the start */
            done = total;
        }
        snprintf(name, sizeof(name), "%s[%d]", rg->topic, (int)rg->partition);
        print_progress_line(r, name, done, total, elapsed_s);
        all_done += done;
        all_total += total;
    }
    print_progress_line(r, "total", all_done, all_total, elapsed_s);
    r->lines_drawn = (int)r->n + 1;
    fflush(stderr);
    r->last_print_ms = now_ms;
}

/*
 * Read each partition's applied offset; true when all reached their end.
 * With redis.layout partitioned the offsets are in each partition's scope
 * (docs/state.md "Layouts"): st goes through them and back to the global
 * scope, where the pipeline enters the scope it needs anyway.
 */
static bool check_positions(struct replay *r)
{
    struct vg_state *st = vg_engine_state(r->eng);
    bool all = true;
    bool ok = true;
    char errstr[256];

    for (size_t i = 0; i < r->n && ok; i++) {
        int64_t off = -1;

        if (r->pos[i] >= r->ranges[i].end) {
            continue;
        }
        /* Redis trouble: the pipeline retries and logs it */
        ok = vg_state_scope(st, r->ranges[i].topic, r->ranges[i].partition, errstr,
                            sizeof(errstr)) == VG_OK &&
             vg_state_applied_offset(st, r->ranges[i].topic, r->ranges[i].partition, &off, errstr,
                                     sizeof(errstr)) == VG_OK;
        if (off + 1 > r->pos[i]) {
            r->pos[i] = off + 1;
        }
        all = all && r->pos[i] >= r->ranges[i].end;
    }
    if (vg_state_scope(st, NULL, 0, errstr, sizeof(errstr)) != VG_OK) {
        ok = false;
    }
    return ok && all;
}

/* With --page: the pages written so far are delivered (or given up on). */
static bool pages_settled(struct replay *r)
{
    struct vg_state_replay_counts counts;
    char errstr[256];

    if (vg_state_replay_counts(vg_engine_state(r->eng), &counts, errstr, sizeof(errstr)) != VG_OK) {
        return false;
    }
    return counts.outbox == 0;
}

/* Consumer thread, after every poll round: progress, and the stop at the end. */
static void on_idle(struct vg_engine *eng, void *arg)
{
    struct replay *r = arg;
    int64_t now_ms = vg_mono_ms();

    (void)eng;
    if (r->done || now_ms - r->last_check_ms < CHECK_MS) {
        return;
    }
    r->last_check_ms = now_ms;
    if (!r->reached && check_positions(r)) {
        r->reached = true;
        r->reached_ms = now_ms;
        print_progress(r, now_ms);
    } else if (now_ms - r->last_print_ms >= (r->tty ? PROGRESS_TTY_MS : r->interval_ms)) {
        print_progress(r, now_ms);
    }
    if (r->reached && (!r->page || pages_settled(r) || now_ms - r->reached_ms >= PAGE_DRAIN_MS)) {
        r->done = true;
        vg_engine_request_stop(r->eng);
    }
}

/* --from TIME: RFC 3339, or a duration before now. */
static bool parse_from(const char *s, int64_t *out_ms)
{
    int64_t ago;

    if (vg_time_parse_rfc3339(s, strlen(s), out_ms)) {
        return true;
    }
    if (vg_duration_parse(s, &ago) && ago >= 0) {
        *out_ms = vg_now_ms() - ago;
        return true;
    }
    return false;
}

/* Keep only `topic` of kafka.topics (the arrays are swapped back by restore_topics). */
struct topics_saved {
    char **topics;
    enum vg_event_format *formats;
    size_t n;
};

static bool select_topic(struct vg_kafka_config *kc, char **one, enum vg_event_format *fmt,
                         struct topics_saved *saved)
{
    for (size_t i = 0; i < kc->n_topics; i++) {
        if (strcmp(kc->topics[i], *one) == 0) {
            *saved = (struct topics_saved){kc->topics, kc->topic_formats, kc->n_topics};
            *fmt = kc->topic_formats ? kc->topic_formats[i] : VG_FORMAT_AUTO;
            kc->topics = one;
            kc->topic_formats = fmt;
            kc->n_topics = 1;
            return true;
        }
    }
    return false;
}

struct summary {
    struct vg_engine_stats stats;
    struct vg_state_replay_counts counts;
    long long dropped;
    double secs;
};

static void print_summary(const struct summary *s, const struct replay *r, const char *from,
                          bool page)
{
    long long events = 0;

    for (size_t i = 0; i < r->n; i++) {
        events += r->ranges[i].end - r->ranges[i].start;
    }
    printf("replayed %lld events of %zu partitions (%s) in %.1f s\n", events, r->n, from, s->secs);
    printf("  events applied     %lld (invalid %lld, late %lld)\n", s->stats.applied,
           s->stats.invalid, s->stats.late);
    printf("  Resources          %lld\n", s->counts.resources);
    printf("  transitions        %lld\n", s->stats.transitions);
    printf("  incidents firing   %lld\n", s->counts.firing);
    if (page) {
        printf("  pages              %lld (delivered %lld, given up %lld, left in the outbox "
               "%lld)\n",
               s->stats.pages, s->stats.delivered, s->stats.dead, s->counts.outbox);
    } else {
        printf("  pages              %lld would have been sent (held back, none sent)\n",
               s->stats.pages);
    }
}

/* The engine over the replay prefix until every partition reached its end. */
static int run_engine(struct vg_config *cfg, struct replay *r, struct summary *sum)
{
    struct vg_engine_options eopt = {.signals = true, .hold_pages = !r->page};
    char errstr[1024];
    vg_err_t err;

    eopt.idle = on_idle;
    eopt.idle_arg = r;
    err = vg_engine_start(&r->eng, cfg, &eopt, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "vigil replay: %s\n", errstr);
        return cli_engine_exit_code(err);
    }
    r->start_ms = vg_mono_ms();
    r->last_print_ms = r->start_ms;
    if (!r->tty) {
        print_progress(r, r->start_ms);
    }
    err = vg_engine_run(r->eng);
    vg_engine_stats(r->eng, &sum->stats);
    sum->secs = (double)(vg_mono_ms() - r->start_ms) / 1000.0;
    vg_engine_destroy(r->eng);
    r->eng = NULL;
    if (err) {
        return CLI_EXIT_FAILURE;
    }
    if (!r->done) {
        fputs("vigil replay: interrupted before the end\n", stderr);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

struct names {
    char *live;    /* the configured prefix (borrowed) */
    char *fresh;   /* <live>:replay:<ts> */
    char *old;     /* <live>:old:<ts> */
    char *group;   /* <group>-replay-<ts>-<pid> */
    char *from;    /* what the summary says was replayed */
    int64_t ts_ms; /* wall clock at the start */
};

/* After the engine: count, drop held pages, then delete (dry run, failure) or swap. */
static int finish(const struct vg_config *cfg, const struct names *nm, struct replay *r,
                  struct summary *sum, int rc, bool dry_run)
{
    struct vg_redis_child *child = NULL;
    struct vg_state *st = NULL;
    char *url = NULL;
    char errstr[1024];
    long long n = 0;
    vg_err_t err;

    err = vg_engine_redis_for_reading(cfg, NULL, &url, &child, errstr, sizeof(errstr));
    if (err == VG_OK) {
        err = vg_state_connect_config(&st, url, nm->fresh, &cfg->redis, errstr, sizeof(errstr));
    }
    if (err == VG_OK && rc == CLI_EXIT_OK) {
        err = vg_state_replay_counts(st, &sum->counts, errstr, sizeof(errstr));
        if (err == VG_OK && !r->page) {
            err = vg_state_drop_pages(st, &sum->dropped, errstr, sizeof(errstr));
        }
        if (err == VG_OK) {
            print_summary(sum, r, nm->from, r->page);
        }
    }
    if (err == VG_OK && (dry_run || rc != CLI_EXIT_OK)) {
        err = vg_state_delete_prefix(st, nm->fresh, &n, errstr, sizeof(errstr));
        if (err == VG_OK) {
            printf("%s: nothing swapped, %s deleted (%lld keys)\n",
                   rc == CLI_EXIT_OK ? "dry run" : "failed", nm->fresh, n);
        }
    } else if (err == VG_OK) {
        char *skip_replay = vg_asprintf("%s:replay:", nm->live);
        char *skip_old = vg_asprintf("%s:old:", nm->live);
        const char *const skip[] = {skip_replay, skip_old, NULL};
        long long moved_aside = 0;

        err =
            vg_state_move_prefix(st, nm->live, nm->old, skip, &moved_aside, errstr, sizeof(errstr));
        if (err == VG_OK) {
            err = vg_state_move_prefix(st, nm->fresh, nm->live, NULL, &n, errstr, sizeof(errstr));
        }
        if (err == VG_OK) {
            printf("swapped: %s is now the state under %s (%lld keys); the previous state "
                   "(%lld keys) is kept under %s\n",
                   nm->fresh, nm->live, n, moved_aside, nm->old);
        }
        free(skip_replay);
        free(skip_old);
    }
    if (err != VG_OK) {
        fprintf(stderr, "vigil replay: %s\n", errstr);
        rc = CLI_EXIT_FAILURE;
    }
    vg_state_destroy(st);
    vg_redis_child_stop(child);
    free(url);
    return rc;
}

int cli_cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"from-beginning", no_argument, NULL, 'b'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"page", no_argument, NULL, 'p'},
                                         {"progress-interval", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct cli_flags flags = {
        .shortopts = "c:h", .opts = opts, .usage = usage, .config_path = &config_path};
    const char *from_arg = NULL;
    char *topic = NULL;
    bool from_beginning = false;
    bool dry_run = false;
    struct replay r = {.interval_ms = PROGRESS_LINES_MS};
    struct summary sum = {0};
    struct names nm = {0};
    struct topics_saved saved = {0};
    enum vg_event_format topic_fmt = VG_FORMAT_AUTO;
    char *saved_prefix;
    char *saved_group;
    int64_t from_ms = -1;
    struct vg_config cfg;
    char errstr[1024];
    vg_err_t err;
    int rc;
    int opt;

    while ((opt = cli_flags_next(&flags, argc, argv)) != -1) {
        switch (opt) {
        case 'b':
            from_beginning = true;
            break;
        case 'f':
            from_arg = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'p':
            r.page = true;
            break;
        case 'i':
            if (!vg_duration_parse(optarg, &r.interval_ms) || r.interval_ms <= 0) {
                fprintf(stderr, "vigil replay: --progress-interval: not a duration: %s\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (flags.stop) {
        return flags.exit_code;
    }
    if (optind < argc || from_beginning == (from_arg != NULL)) {
        fputs("vigil replay: give exactly one of --from-beginning and --from TIME\n", stderr);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (from_arg && !parse_from(from_arg, &from_ms)) {
        fprintf(stderr,
                "vigil replay: --from: not an RFC 3339 time or a duration: %s "
                "(2026-11-28T10:00:00Z, 6h)\n",
                from_arg);
        return CLI_EXIT_USAGE;
    }
    rc = cli_load_config(&cfg, config_path);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (!cfg.kafka.brokers) {
        fputs("vigil replay: kafka.brokers is not set: the embedded mock cluster keeps no "
              "events to replay\n",
              stderr);
        vg_config_fini(&cfg);
        return CLI_EXIT_USAGE;
    }
    if (topic && !select_topic(&cfg.kafka, &topic, &topic_fmt, &saved)) {
        fprintf(stderr, "vigil replay: --topic %s is not one of kafka.topics\n", topic);
        vg_config_fini(&cfg);
        return CLI_EXIT_USAGE;
    }
    r.tty = isatty(STDERR_FILENO) == 1;
    if (r.tty && cfg.log.level > VG_LOG_LEVEL_WARN) {
        /* the bars stand for the lifecycle lines; warnings still show */
        vg_log_set_level(VG_LOG_LEVEL_WARN);
    }
    nm.ts_ms = vg_now_ms();
    nm.live = cfg.redis.prefix;
    nm.fresh = vg_asprintf("%s:replay:%lld", nm.live, (long long)nm.ts_ms);
    nm.old = vg_asprintf("%s:old:%lld", nm.live, (long long)nm.ts_ms);
    nm.group =
        vg_asprintf("%s-replay-%lld-%d", cfg.kafka.group, (long long)nm.ts_ms, (int)getpid());
    if (from_ms >= 0) {
        char when[64];

        vg_time_format_rfc3339(from_ms, when, sizeof(when));
        nm.from = vg_asprintf("from %s", when);
    } else {
        nm.from = vg_strdup("from the beginning");
    }

    /* where each partition starts and the end it has now; the new group starts there */
    err = vg_kafka_ranges(&cfg.kafka, cfg.kafka.brokers, from_ms, &r.ranges, &r.n, errstr,
                          sizeof(errstr));
    if (err == VG_OK) {
        err = vg_kafka_group_commit(&cfg.kafka, cfg.kafka.brokers, nm.group, r.ranges, r.n, errstr,
                                    sizeof(errstr));
    }
    if (err != VG_OK) {
        fprintf(stderr, "vigil replay: %s\n", errstr);
        rc = cli_engine_exit_code(err);
        goto out;
    }
    r.pos = vg_calloc(r.n + 1, sizeof(*r.pos));
    for (size_t i = 0; i < r.n; i++) {
        r.pos[i] = r.ranges[i].start;
    }
    VG_LOG_INFO("cli", "replay %s into %s as group %s", nm.from, nm.fresh, nm.group);

    /* the engine sees the replay's prefix and group; the config keeps its own strings */
    saved_prefix = cfg.redis.prefix;
    cfg.redis.tag = saved_prefix; /* on a cluster: the fresh prefix keeps the configured tag */
    saved_group = cfg.kafka.group;
    cfg.redis.prefix = nm.fresh;
    cfg.kafka.group = nm.group;
    rc = run_engine(&cfg, &r, &sum);
    cfg.redis.prefix = saved_prefix;
    cfg.kafka.group = saved_group;
    if (rc != CLI_EXIT_USAGE) { /* a config the engine refused wrote nothing */
        rc = finish(&cfg, &nm, &r, &sum, rc, dry_run);
    }
out:
    if (saved.topics) {
        cfg.kafka.topics = saved.topics;
        cfg.kafka.topic_formats = saved.formats;
        cfg.kafka.n_topics = saved.n;
    }
    vg_kafka_ranges_free(r.ranges, r.n);
    free(r.pos);
    free(nm.fresh);
    free(nm.old);
    free(nm.group);
    free(nm.from);
    vg_config_fini(&cfg);
    return rc;
}
