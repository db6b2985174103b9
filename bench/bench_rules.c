/*
 * Rules evaluation throughput: events/s through apply + rules
 * with 10, 1,000 and 10,000 monitors. Monitor i watches type "t<i>"
 * (transition, held or flapping on a runtime value) and the events are
 * about Resources of the first 10 types, so the same few monitors can
 * match whatever the total: with the (field, value, type) index the cost
 * per event should stay nearly flat as monitors are added. A second run
 * ("all types") spreads the events over every monitor's type. Pure CPU:
 * no Redis.
 *   bench_rules [EVENTS]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"
#include "vigil/util.h"

#define N_RESOURCES 2000

static const char *const runtimes[] = {"pending", "running", "succeeded", "failed"};

static struct vg_ruleset *make_rules(int n)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    struct vg_buf y = {0};
    char errstr[512];

    vg_buf_puts(&y, "monitors:\n");
    for (int i = 0; i < n; i++) {
        int type = i;
        const char *rt = runtimes[i % 4];

        vg_buf_printf(&y, "  - name: m%d\n    match: {type: t%d, name: \"r*\"}\n", i, type);
        switch (i % 3) {
        case 0:
            vg_buf_printf(&y, "    when: {runtime: {to: %s}}\n", rt);
            break;
        case 1:
            vg_buf_printf(&y, "    when: {runtime: {is: %s, for: 10m}}\n", rt);
            break;
        default:
            vg_buf_printf(&y, "    when: {runtime: {to: %s, count: 3, within: 1h}}\n", rt);
            break;
        }
        vg_buf_printf(&y, "    severity: %s\n", i % 2 ? "high" : "low");
    }
    vg_buf_puts(&y, "pagers:\n  - name: ops\n    match: {severity: high}\n    sinks: [a]\n");
    if (vg_rules_load_string(rs, "bench.yaml", y.data, y.len, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "bench_rules: %s\n", errstr);
        exit(1);
    }
    vg_buf_fini(&y);
    return rs;
}

static double run(int n_monitors, int n_types, long n_events, size_t *pages, size_t *timers)
{
    static char wf[] = "workflow";
    static char *batch[] = {wf};
    const struct vg_health_config hc = {batch, 1};
    struct vg_ruleset *rs = make_rules(n_monitors);
    struct vg_resource **res = vg_calloc(N_RESOURCES, sizeof(*res));
    struct vg_rules_out out = {0};
    int64_t t0 = vg_mono_ms();
    int64_t clock = INT64_C(1767607200000);
    double secs;

    *pages = 0;
    *timers = 0;
    for (long i = 0; i < n_events; i++) {
        int r = (int)(i % N_RESOURCES);
        struct vg_event ev;
        struct vg_transition tr[3];
        struct vg_rules_env env = {.now_ms = clock};
        char type[16];
        char name[16];
        size_t nt;

        memset(&ev, 0, sizeof(ev));
        snprintf(type, sizeof(type), "t%d", r % n_types);
        snprintf(name, sizeof(name), "r%d", r);
        ev.type = vg_strdup(type);
        ev.name = vg_strdup(name);
        ev.workspace = vg_strdup("w");
        ev.version = vg_strdup("v1");
        ev.owner = vg_strdup("");
        ev.id = vg_resource_id(type, "v1", name, "w");
        snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtimes[(i / N_RESOURCES + r) % 4]);
        ev.time_ms = clock;
        ev.pos.topic = vg_strdup("bench");
        ev.pos.offset = i;
        if (!res[r]) {
            res[r] = vg_resource_new_from_event(&ev);
        }
        nt = vg_resource_apply(&hc, res[r], &ev, tr);
        vg_rules_eval_event(rs, &env, res[r], &ev, tr, nt, &out);
        *pages += out.pages.n;
        *timers += out.timers.n;
        vg_rules_out_clear(&out);
        vg_event_fini(&ev);
        clock += 10;
    }
    secs = (double)(vg_mono_ms() - t0) / 1000.0;
    for (int r = 0; r < N_RESOURCES; r++) {
        vg_resource_destroy(res[r]);
    }
    vg_free(res);
    vg_rules_out_fini(&out);
    vg_ruleset_destroy(rs);
    return secs > 0 ? (double)n_events / secs : 0;
}

int main(int argc, char **argv)
{
    static const int sizes[] = {10, 1000, 10000};
    long n_events = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;

    if (n_events <= 0) {
        fprintf(stderr, "usage: bench_rules [EVENTS]\n");
        return 2;
    }
    printf("%-10s %-10s %12s %12s %12s\n", "monitors", "types", "events/s", "pages", "timer ops");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int all = 0; all < 2; all++) {
            int n_types = all ? (sizes[i] < N_RESOURCES ? sizes[i] : N_RESOURCES) : 10;
            size_t pages;
            size_t timers;
            double rate = run(sizes[i], n_types, n_events, &pages, &timers);

            printf("%-10d %-10s %12.0f %12zu %12zu\n", sizes[i], all ? "all" : "10", rate, pages,
                   timers);
        }
    }
    return 0;
}
