/*
 * The monitor index against a linear scan: random rulesets (exact, list,
 * glob and `not:` matches on every Resource key and on labels; transition,
 * held, flapping and absence conditions; resolve_after, resolve: never,
 * stale_after; grouped, repeating and continuing pagers; an inhibit rule)
 * and thousands of random events and timer rounds on Resources whose
 * labels change, evaluated once through the index and once against every
 * monitor. Each event's pages, incident records and timer changes must be
 * identical, in the same order; so must the stores (open incidents, timers,
 * records, the outbox, after the timer rounds) every 50 steps and at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rules_int.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"
#include "vigil/util.h"

#define T0 INT64_C(1767607200000) /* 2026-01-05T10:00:00Z */
#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define N_RES 40
#define N_WIDE 20 /* label keys k0..k19: more non-empty buckets than one merge takes */

static char batch_workflow[] = "workflow";
static char batch_job[] = "job";
static char *batch_types[] = {batch_workflow, batch_job};
static const struct vg_health_config hc = {batch_types, 2};

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

#define PICK(arr) ((arr)[pick(VG_ARRAY_LEN(arr))])

static const char *const types[] = {"workflow", "job", "service"};
static const char *const statuses[] = {"active", "error", "deleted"};
static const char *const runtimes[] = {"pending", "running", "succeeded", "failed"};
static const char *const healths[] = {"healthy", "progressing", "unhealthy"};

/* ---- random rules --------------------------------------------------------------- */

/* One random `key: value` match term (exact, list or glob) into b; the key into *key. */
static void random_term(struct vg_buf *b, const char **key)
{
    switch (pick(8)) {
    case 0:
        *key = "type";
        switch (pick(3)) {
        case 0:
            vg_buf_printf(b, "type: %s", PICK(types));
            break;
        case 1:
            vg_buf_printf(b, "type: [%s, %s]", PICK(types), PICK(types));
            break;
        default:
            vg_buf_puts(b, "type: \"*o*\"");
            break;
        }
        break;
    case 1:
    case 2:
        *key = "workspace";
        switch (pick(3)) {
        case 0:
            vg_buf_printf(b, "workspace: ws-%zu", pick(4));
            break;
        case 1:
            vg_buf_printf(b, "workspace: [ws-%zu, ws-%zu]", pick(4), pick(4));
            break;
        default:
            vg_buf_printf(b, "workspace: [ws-%zu, \"ws-[12]\"]", pick(4));
            break;
        }
        break;
    case 3:
        *key = "name";
        if (pick(2)) {
            vg_buf_printf(b, "name: r%zu", pick(10));
        } else {
            vg_buf_printf(b, "name: \"r%zu*\"", pick(4));
        }
        break;
    case 4:
        *key = "owner";
        vg_buf_printf(b, "owner: team-%c", "ab"[pick(2)]);
        break;
    case 5:
        *key = "version";
        vg_buf_printf(b, "version: v%zu", 1 + pick(2));
        break;
    case 6:
        *key = "labels.team";
        if (pick(2)) {
            vg_buf_printf(b, "labels.team: %c", "abc"[pick(3)]);
        } else {
            vg_buf_printf(b, "labels.team: [%c, %c]", "abc"[pick(3)], "abc"[pick(3)]);
        }
        break;
    default: {
        static char wide[16];

        snprintf(wide, sizeof(wide), "labels.k%zu", pick(N_WIDE));
        *key = wide;
        vg_buf_printf(b, "%s: x", wide);
        break;
    }
    }
}

/* A random value (or "*", or a list) of `field`. */
static void random_values(struct vg_buf *b, const char *const *values, size_t n, bool list_ok)
{
    size_t r = pick(8);

    if (r == 0) {
        vg_buf_puts(b, "\"*\"");
    } else if (r == 1 && list_ok) {
        vg_buf_printf(b, "[%s, %s]", values[pick(n)], values[pick(n)]);
    } else {
        vg_buf_puts(b, values[pick(n)]);
    }
}

static void random_when(struct vg_buf *b)
{
    const char *field;
    const char *const *values;
    size_t n;

    switch (pick(3)) {
    case 0:
        field = "status";
        values = statuses;
        n = VG_ARRAY_LEN(statuses);
        break;
    case 1:
        field = "runtime";
        values = runtimes;
        n = VG_ARRAY_LEN(runtimes);
        break;
    default:
        field = "health";
        values = healths;
        n = VG_ARRAY_LEN(healths);
        break;
    }
    switch (pick(6)) {
    case 0:
    case 1:
        vg_buf_printf(b, "{%s: {to: ", field);
        random_values(b, values, n, true);
        vg_buf_puts(b, "}}");
        break;
    case 2:
        vg_buf_printf(b, "{%s: {from: ", field);
        random_values(b, values, n, true);
        vg_buf_puts(b, ", to: ");
        random_values(b, values, n, true);
        vg_buf_puts(b, "}}");
        break;
    case 3:
        vg_buf_printf(b, "{%s: {is: ", field);
        random_values(b, values, n, true);
        vg_buf_printf(b, ", for: %zum}}", 1 + pick(20));
        break;
    case 4:
        vg_buf_printf(b, "{%s: {to: ", field);
        random_values(b, values, n, true);
        vg_buf_printf(b, ", count: %zu, within: %zum}}", 2 + pick(2), 10 + pick(50));
        break;
    default:
        vg_buf_printf(b, "{silent_for: %zum}", 5 + pick(30));
        break;
    }
}

/* One random monitor named m<i> (maybe invalid: the caller checks). */
static char *random_monitor(size_t i)
{
    struct vg_buf b = {0};
    size_t n_terms = pick(10) == 0 ? 0 : 1 + pick(3);
    const char *used[4];
    size_t n_used = 0;

    vg_buf_printf(&b, "  - name: m%zu\n", i);
    if (n_terms || pick(4) == 0) {
        vg_buf_puts(&b, "    match: {");
        for (size_t k = 0; k < n_terms; k++) {
            struct vg_buf term = {0};
            const char *key;
            bool dup = false;

            random_term(&term, &key);
            for (size_t u = 0; u < n_used; u++) {
                dup = dup || strcmp(used[u], key) == 0;
            }
            if (!dup) {
                used[n_used++] = key[0] == 'l' && key[7] == 'k' ? "labels.k" : key;
                vg_buf_printf(&b, "%s%s", n_used > 1 ? ", " : "", term.data);
            }
            vg_buf_fini(&term);
        }
        if (pick(4) == 0) {
            struct vg_buf term = {0};
            const char *key;

            random_term(&term, &key);
            vg_buf_printf(&b, "%snot: {%s}", n_used ? ", " : "", term.data);
            vg_buf_fini(&term);
        }
        vg_buf_puts(&b, "}\n");
    }
    vg_buf_puts(&b, "    when: ");
    random_when(&b);
    vg_buf_printf(&b, "\n    severity: %s\n", rules_severities[pick(5)]);
    if (pick(3) == 0) {
        vg_buf_printf(&b, "    labels: {team: %c}\n", "abc"[pick(3)]);
    }
    switch (pick(6)) {
    case 0:
        vg_buf_printf(&b, "    resolve_after: %zum\n", 1 + pick(10));
        break;
    case 1:
        vg_buf_puts(&b, "    resolve: never\n");
        break;
    case 2:
        vg_buf_printf(&b, "    stale_after: %zum\n", 20 + pick(60));
        break;
    default:
        break;
    }
    return vg_buf_steal(&b);
}

#define PAGERS                                                                                     \
    "pagers:\n"                                                                                    \
    "  - name: crit\n    match: {severity: critical}\n    sinks: [a, b]\n    continue: true\n"     \
    "  - name: team-a\n    match: {labels.team: a}\n    group_by: [workspace]\n"                   \
    "    group_wait: 1m\n    sinks: [b]\n"                                                         \
    "  - name: rest\n    repeat_interval: 2h\n    sinks: [a]\n"                                    \
    "inhibit:\n"                                                                                   \
    "  - source: {severity: critical}\n    target: {severity: low}\n    equal: [resource]\n"

/* `n` random valid monitors as two documents (the second with the pagers). */
static void random_rules(size_t n, char **doc1, char **doc2)
{
    struct vg_buf a = {0};
    struct vg_buf b = {0};

    vg_buf_puts(&a, "monitors:\n");
    vg_buf_puts(&b, "monitors:\n");
    for (size_t i = 0; i < n; i++) {
        char *m = NULL;

        for (;;) {
            struct vg_ruleset *scratch = vg_ruleset_new();
            char *yaml;
            char errstr[512];
            vg_err_t err;

            m = random_monitor(i);
            yaml = vg_asprintf("monitors:\n%s", m);
            err =
                vg_rules_load_string(scratch, "m.yaml", yaml, strlen(yaml), errstr, sizeof(errstr));
            vg_free(yaml);
            vg_ruleset_destroy(scratch);
            if (err == VG_OK) {
                break;
            }
            vg_free(m);
        }
        vg_buf_puts(i < n / 2 ? &a : &b, m);
        vg_free(m);
    }
    vg_buf_puts(&b, PAGERS);
    *doc1 = vg_buf_steal(&a);
    *doc2 = vg_buf_steal(&b);
}

/* ---- two worlds: one evaluates through the index, one linearly ------------------ */

struct world {
    struct vg_ruleset *rs;
    struct vg_rules_mem mem;
    struct vg_rules_out out;
};

static void world_init(struct world *w, const char *doc1, const char *doc2, bool linear)
{
    char errstr[512] = "";

    memset(w, 0, sizeof(*w));
    w->rs = vg_ruleset_new();
    if (vg_rules_load_string(w->rs, "a.yaml", doc1, strlen(doc1), errstr, sizeof(errstr)) !=
        VG_OK) {
        fail_msg("%s", errstr);
    }
    /* set between the documents: the flag must survive the rebuild of the second load */
    rules_index_set_linear(w->rs, linear);
    if (vg_rules_load_string(w->rs, "b.yaml", doc2, strlen(doc2), errstr, sizeof(errstr)) !=
        VG_OK) {
        fail_msg("%s", errstr);
    }
    w->mem.now_ms = T0;
}

static void world_fini(struct world *w)
{
    vg_ruleset_destroy(w->rs);
    vg_rules_mem_fini(&w->mem);
    vg_rules_out_fini(&w->out);
}

/* Everything observable of one evaluation's output, as text. */
static char *out_text(const struct vg_rules_out *o)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "");
    for (size_t i = 0; i < o->pages.n; i++) {
        char *j = vg_page_to_json(&o->pages.items[i]);

        vg_buf_printf(&b, "page %s group=%s\n", j,
                      o->pages.items[i].group ? o->pages.items[i].group : "");
        vg_free(j);
    }
    for (size_t i = 0; i < o->records.n; i++) {
        char *j = vg_incident_record_to_json(&o->records.items[i]);

        vg_buf_printf(&b, "record %s\n", j);
        vg_free(j);
    }
    for (size_t i = 0; i < o->timers.n; i++) {
        const struct vg_timer *t = &o->timers.items[i];

        vg_buf_printf(&b, "timer %s/%d %s %" PRId64 " %d\n", t->topic ? t->topic : "(groups)",
                      (int)t->partition, t->member, t->due_ms, (int)t->nx);
    }
    return vg_buf_steal(&b);
}

/* The store: open incidents of every Resource, timers, records, outbox. */
static char *mem_text(const struct vg_rules_mem *m)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "");
    {
        size_t iter = 0;
        const char *key;
        void *value;
        char **ids = NULL;
        size_t n_ids = 0;
        size_t cap_ids = 0;

        while (vg_map_next(m->res, &iter, &key, &value)) {
            *VG_ARRAY_PUSH(ids, n_ids, cap_ids) = (char *)key;
        }
        for (size_t i = 0; i < n_ids; i++) {
            for (size_t j = i + 1; j < n_ids; j++) {
                if (strcmp(ids[j], ids[i]) < 0) {
                    char *t = ids[i];

                    ids[i] = ids[j];
                    ids[j] = t;
                }
            }
        }
        for (size_t i = 0; i < n_ids; i++) {
            const struct vg_resource *res = vg_map_get(m->res, ids[i]);

            for (size_t k = 0; k < res->n_incidents; k++) {
                const struct vg_open_incident *inc = &res->incidents[k];

                vg_buf_printf(&b, "inc %s %s %s %s %d %" PRId64 " %s\n", res->id, inc->monitor,
                              inc->id ? inc->id : "", inc->state ? inc->state : "", inc->seq,
                              inc->started_at_ms, inc->data ? inc->data : "");
            }
        }
        vg_free(ids);
    }
    for (size_t i = 0; i < m->timers.n; i++) {
        const struct vg_timer *t = &m->timers.items[i];

        vg_buf_printf(&b, "timer %s/%d %s %" PRId64 "\n", t->topic ? t->topic : "(groups)",
                      (int)t->partition, t->member, t->due_ms);
    }
    for (size_t i = 0; i < m->records.n; i++) {
        char *j = vg_incident_record_to_json(&m->records.items[i]);

        vg_buf_printf(&b, "record %s\n", j);
        vg_free(j);
    }
    for (size_t i = 0; i < m->n_sent; i++) {
        const struct vg_rules_sent *e = &m->sent[i];

        vg_buf_printf(&b, "sent %" PRId64 " %s %s %s\n", e->at_ms, e->pg.id ? e->pg.id : "",
                      e->pg.sink ? e->pg.sink : "", e->group_body ? e->group_body : "");
    }
    return vg_buf_steal(&b);
}

/* A Resource of the pool: identity fixed by `r`, labels varying by event. */
struct pool_res {
    const char *type;
    char name[8];
    char workspace[8];
    const char *owner;
    const char *version;
};

/* Labels an event may carry: none (keep), a team, a team and env, all the wide keys. */
static size_t random_labels(struct vg_label **out)
{
    size_t r = pick(6);
    struct vg_label *v;

    *out = NULL;
    if (r < 2) {
        return 0;
    }
    if (r == 5) {
        v = vg_calloc(N_WIDE + 1, sizeof(*v));
        for (int k = 0; k < N_WIDE; k++) {
            v[k].key = vg_asprintf("k%d", k);
            v[k].value = vg_strdup("x");
        }
        v[N_WIDE].key = vg_strdup("team");
        v[N_WIDE].value = vg_strdup("a");
        vg_labels_sort(v, N_WIDE + 1);
        *out = v;
        return N_WIDE + 1;
    }
    v = vg_calloc(2, sizeof(*v));
    v[0].key = vg_strdup("team");
    v[0].value = vg_asprintf("%c", "abc"[pick(3)]);
    if (r == 4) {
        v[1].key = vg_strdup("env");
        v[1].value = vg_strdup(pick(2) ? "prod" : "dev");
        vg_labels_sort(v, 2);
        *out = v;
        return 2;
    }
    *out = v;
    return 1;
}

/* The same event into both worlds; the outputs compared. */
static void step_event(struct world *w, const struct pool_res *p, int64_t now, int64_t offset,
                       size_t step, size_t *n_pages)
{
    const char *status = pick(3) ? "" : statuses[pick(10) == 0 ? 2 : pick(2)];
    const char *runtime = pick(4) ? runtimes[pick(4)] : "";
    struct vg_label *labels;
    size_t n_labels = random_labels(&labels);
    char *text[2];

    for (int k = 0; k < 2; k++) {
        struct vg_event ev;
        struct vg_transition tr[3];
        struct vg_rules_env env;
        struct vg_resource *res;
        size_t nt;

        memset(&ev, 0, sizeof(ev));
        ev.type = vg_strdup(p->type);
        ev.name = vg_strdup(p->name);
        ev.workspace = vg_strdup(p->workspace);
        ev.version = vg_strdup(p->version);
        ev.owner = vg_strdup(p->owner);
        ev.id = vg_resource_id(p->type, p->version, p->name, p->workspace);
        snprintf(ev.status, sizeof(ev.status), "%s", status);
        snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtime);
        ev.time_ms = now;
        ev.pos.topic = vg_strdup("events");
        ev.pos.partition = (int32_t)(offset % 3);
        ev.pos.offset = offset;
        ev.labels = vg_labels_copy(labels, n_labels);
        ev.n_labels = n_labels;
        res = vg_rules_mem_resource(&w[k].mem, ev.id);
        if (!res) {
            res = vg_resource_new_from_event(&ev);
            vg_rules_mem_put_resource(&w[k].mem, res);
        }
        vg_resource_set_labels(res, &ev);
        nt = vg_resource_apply(&hc, res, &ev, tr);
        env = vg_rules_mem_env(&w[k].mem);
        vg_rules_eval_event(w[k].rs, &env, res, &ev, tr, nt, &w[k].out);
        text[k] = out_text(&w[k].out);
        if (k == 0) {
            *n_pages += w[k].out.pages.n;
        }
        vg_rules_mem_apply(&w[k].mem, &w[k].out);
        vg_rules_out_clear(&w[k].out);
        res->dirty = false;
        vg_event_fini(&ev);
    }
    if (strcmp(text[0], text[1]) != 0) {
        fail_msg("step %zu: event on %s/%s differs\nindexed:\n%s\nlinear:\n%s", step, p->type,
                 p->name, text[0], text[1]);
    }
    vg_free(text[0]);
    vg_free(text[1]);
    vg_labels_free(labels, n_labels);
}

static void run_seed(uint64_t seed, size_t n_monitors, size_t n_steps)
{
    struct world w[2];
    struct pool_res pool[N_RES];
    char *doc1;
    char *doc2;
    int64_t now = T0;
    size_t n_pages = 0;

    rng = seed;
    random_rules(n_monitors, &doc1, &doc2);
    world_init(&w[0], doc1, doc2, false);
    world_init(&w[1], doc1, doc2, true);
    assert_int_equal(vg_rules_monitor_count(w[0].rs), n_monitors);
    for (int r = 0; r < N_RES; r++) {
        pool[r].type = PICK(types);
        snprintf(pool[r].name, sizeof(pool[r].name), "r%d", r % 10);
        snprintf(pool[r].workspace, sizeof(pool[r].workspace), "ws-%d", r / 10);
        pool[r].owner = pick(3) ? (pick(2) ? "team-a" : "team-b") : "";
        pool[r].version = pick(2) ? "v1" : "v2";
    }
    for (size_t step = 0; step < n_steps; step++) {
        char errstr[256] = "";
        char *text[2];

        now += (int64_t)pick(5) == 0 ? (int64_t)pick(20) * MIN : (int64_t)pick(30) * SEC;
        for (int k = 0; k < 2; k++) {
            assert_int_equal(
                vg_rules_mem_run_until(&w[k].mem, w[k].rs, now, 100000, errstr, sizeof(errstr)),
                VG_OK);
        }
        step_event(w, &pool[pick(N_RES)], now, (int64_t)step + 1, step, &n_pages);
        if (step % 50 != 49 && step + 1 != n_steps) {
            continue;
        }
        text[0] = mem_text(&w[0].mem);
        text[1] = mem_text(&w[1].mem);
        if (strcmp(text[0], text[1]) != 0) {
            fail_msg("seed %" PRIu64 " step %zu: stores differ\nindexed:\n%s\nlinear:\n%s", seed,
                     step, text[0], text[1]);
        }
        vg_free(text[0]);
        vg_free(text[1]);
    }
    /* the walk must have opened incidents and paged, or it compared nothing */
    if (n_pages < n_steps / 20 || w[0].mem.n_sent == 0 || w[0].mem.records.n == 0) {
        fail_msg("seed %" PRIu64 ": too little happened: %zu pages, %zu sent, %zu records", seed,
                 n_pages, w[0].mem.n_sent, w[0].mem.records.n);
    }
    world_fini(&w[0]);
    world_fini(&w[1]);
    vg_free(doc1);
    vg_free(doc2);
}

static void index_equals_linear(void **state)
{
    static const uint64_t seeds[] = {UINT64_C(0x9e3779b97f4a7c15), UINT64_C(0x2545f4914f6cdd1d),
                                     UINT64_C(0xd1b54a32d192ed03)};

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(seeds); i++) {
        run_seed(seeds[i], 60, 700);
    }
}

/* Many monitors, few of which match: the index must still find each one. */
static void index_equals_linear_many_monitors(void **state)
{
    (void)state;
    run_seed(UINT64_C(0x6a09e667f3bcc909), 300, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_equals_linear),
        cmocka_unit_test(index_equals_linear_many_monitors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
