/*
 * A tiny world for the rules unit tests, header-only: one Resource and a
 * fake clock over rules/' in-memory store (struct vg_rules_mem: timers,
 * group buffers, incident records, every page). Timers fire through
 * vg_rules_timers_fire when the clock advances, as `vigil run` fires them
 * from Redis.
 */
#ifndef TEST_RULES_SIM_H
#define TEST_RULES_SIM_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"
#include "vigil/util.h"

#define T0 INT64_C(1767607200000) /* 2026-01-05T10:00:00Z, a Monday */
#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* Not every test file uses every helper. */
#define SIM_FN __attribute__((unused)) static

static char sim_batch_workflow[] = "workflow";
static char sim_batch_job[] = "job";
static char *sim_batch_types[] = {sim_batch_workflow, sim_batch_job};
static const struct vg_health_config sim_hc = {sim_batch_types, 2};

struct sim {
    struct vg_ruleset *rs;
    struct vg_resource *res; /* the one Resource, kept by `mem` */
    const char *type, *name, *workspace;
    int64_t offset;
    int64_t now;
    struct vg_rules_mem mem; /* mem.timers: scheduled; mem.pages: every page, in order */
    struct vg_silence *silences;
    size_t n_silences;
    struct vg_incident_record *firing; /* cross-resource inhibition input */
    size_t n_firing;
    struct vg_rules_out out;
};

/* YAML that must not load, and its exact "t.yaml:line:col: message". */
struct sim_load_error {
    const char *yaml;
    const char *want;
};

/*
 * Load each case as "t.yaml" into a fresh ruleset: it must fail with
 * VG_ERR_INVALID and exactly `want`, and leave nothing loaded (a file loads
 * whole or not at all). Prints each mismatch by index; returns how many.
 */
SIM_FN int sim_load_errors(const struct sim_load_error *cases, size_t n)
{
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        struct vg_ruleset *rs = vg_ruleset_new();
        char errstr[512] = "";
        vg_err_t err = vg_rules_load_string(rs, "t.yaml", cases[i].yaml, strlen(cases[i].yaml),
                                            errstr, sizeof(errstr));

        if (err != VG_ERR_INVALID || strcmp(errstr, cases[i].want) != 0) {
            print_error("case %zu: got %d \"%s\"\n          want \"%s\"\n", i, err, errstr,
                        cases[i].want);
            failed++;
        }
        if (vg_rules_monitor_count(rs) != 0 || vg_rules_pager_count(rs) != 0) {
            print_error("case %zu: partially loaded\n", i);
            failed++;
        }
        vg_ruleset_destroy(rs);
    }
    return failed;
}

SIM_FN struct vg_ruleset *sim_load(const char *yaml)
{
    struct vg_ruleset *rs = vg_ruleset_new();
    char errstr[512] = "";

    if (vg_rules_load_string(rs, "t.yaml", yaml, strlen(yaml), errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("%s\n%s", errstr, yaml);
    }
    return rs;
}

SIM_FN void sim_init(struct sim *s, const char *yaml, const char *type, const char *name,
                     const char *workspace)
{
    memset(s, 0, sizeof(*s));
    s->rs = sim_load(yaml);
    s->type = type;
    s->name = name;
    s->workspace = workspace;
    s->offset = 100;
    s->now = T0;
}

SIM_FN void sim_fini(struct sim *s)
{
    vg_ruleset_destroy(s->rs);
    vg_rules_mem_fini(&s->mem);
    vg_rules_out_fini(&s->out);
}

/* The test's clock and inputs into the store. */
SIM_FN void sim_sync(struct sim *s)
{
    s->mem.now_ms = s->now;
    s->mem.silences = s->silences;
    s->mem.n_silences = s->n_silences;
    s->mem.firing = s->firing;
    s->mem.n_firing = s->n_firing;
}

SIM_FN void sim_apply_out(struct sim *s)
{
    sim_sync(s);
    vg_rules_mem_apply(&s->mem, &s->out);
    vg_rules_out_clear(&s->out);
}

SIM_FN struct vg_rules_env sim_env(struct sim *s)
{
    sim_sync(s);
    return vg_rules_mem_env(&s->mem);
}

/* Fire timers due up to `until` (absolute ms), moving the clock. */
SIM_FN void sim_advance(struct sim *s, int64_t until)
{
    char errstr[256] = "";

    sim_sync(s);
    if (vg_rules_mem_run_until(&s->mem, s->rs, until, 10000, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("%s", errstr);
    }
    s->now = s->mem.now_ms;
}

/* At T0 + at: status and/or runtime (NULL: absent). Timers due before fire first. */
SIM_FN size_t sim_event(struct sim *s, int64_t at, const char *status, const char *runtime)
{
    struct vg_event ev;
    struct vg_transition tr[3];
    struct vg_rules_env env;
    size_t nt;

    sim_advance(s, T0 + at);
    memset(&ev, 0, sizeof(ev));
    ev.type = vg_strdup(s->type);
    ev.name = vg_strdup(s->name);
    ev.workspace = vg_strdup(s->workspace);
    ev.version = vg_strdup("v1");
    ev.owner = vg_strdup("team-a");
    ev.id = vg_resource_id(s->type, "v1", s->name, s->workspace);
    snprintf(ev.status, sizeof(ev.status), "%s", status ? status : "");
    snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtime ? runtime : "");
    ev.time_ms = T0 + at;
    ev.pos.topic = vg_strdup("vigil.events");
    ev.pos.partition = 1;
    ev.pos.offset = s->offset++;
    if (!s->res) {
        s->res = vg_resource_new_from_event(&ev);
        vg_rules_mem_put_resource(&s->mem, s->res);
    }
    nt = vg_resource_apply(&sim_hc, s->res, &ev, tr);
    env = sim_env(s);
    vg_rules_eval_event(s->rs, &env, s->res, &ev, tr, nt, &s->out);
    sim_apply_out(s);
    vg_event_fini(&ev);
    return nt;
}

/* "status monitor @at" of every page so far, space-separated (at relative to T0, in s). */
SIM_FN char *sim_pages(const struct sim *s)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "");
    for (size_t i = 0; i < s->mem.pages.n; i++) {
        const struct vg_page *pg = &s->mem.pages.items[i];

        vg_buf_printf(&b, "%s%s %s @%lld", i ? ", " : "", pg->status, pg->incident.monitor,
                      (long long)((pg->at_ms - T0) / SEC));
    }
    return vg_buf_steal(&b);
}

SIM_FN void sim_expect_pages(const struct sim *s, const char *want)
{
    char *got = sim_pages(s);

    if (strcmp(got, want) != 0) {
        fail_msg("pages:\n  got  \"%s\"\n  want \"%s\"", got, want);
    }
    vg_free(got);
}

SIM_FN const struct vg_incident_record *sim_record(const struct sim *s, const char *monitor)
{
    const struct vg_incident_record *found = NULL;

    for (size_t i = 0; i < s->mem.records.n; i++) {
        if (strcmp(s->mem.records.items[i].monitor, monitor) == 0) {
            found = &s->mem.records.items[i]; /* the last one: the latest episode */
        }
    }
    return found;
}

#endif
