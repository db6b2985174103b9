/*
 * libFuzzer target for the rule loader: any bytes as a rules
 * file. Loading must never crash, leak or read out of bounds, whatever the
 * YAML; what loads is also evaluated once (an event with transitions, then
 * every timer it scheduled, fired) so compiled rules are exercised too.
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/rules.cmake).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/page.h"
#include "vigil/rules.h"

#include "fuzz_rules_fire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const struct vg_ruleset *rs)
{
    static char wf[] = "workflow";
    static char *batch[] = {wf};
    const struct vg_health_config hc = {batch, 1};
    static const char *const runtimes[] = {"pending", "running", "failed", "running"};
    struct vg_rules_out out = {0};
    struct vg_resource *res = NULL;
    int64_t now = INT64_C(1767607200000);

    for (size_t i = 0; i < 4; i++) {
        struct vg_event ev;
        struct vg_transition tr[3];
        struct vg_rules_env env = {.now_ms = now};
        size_t nt;

        memset(&ev, 0, sizeof(ev));
        ev.type = vg_strdup("workflow");
        ev.name = vg_strdup("ingestion-x");
        ev.workspace = vg_strdup("public");
        ev.version = vg_strdup("v1");
        ev.owner = vg_strdup("o");
        ev.id = vg_resource_id("workflow", "v1", "ingestion-x", "public");
        snprintf(ev.status, sizeof(ev.status), "%s", i == 3 ? "deleted" : "active");
        snprintf(ev.runtime, sizeof(ev.runtime), "%s", runtimes[i]);
        ev.time_ms = now;
        ev.pos.topic = vg_strdup("t");
        ev.pos.offset = (int64_t)i;
        if (!res) {
            res = vg_resource_new_from_event(&ev);
        }
        nt = vg_resource_apply(&hc, res, &ev, tr);
        vg_rules_eval_event(rs, &env, res, &ev, tr, nt, &out);
        fuzz_fire_first_timer(rs, res, &out);
        for (size_t k = 0; k < out.pages.n; k++) {
            vg_free(vg_page_to_json(&out.pages.items[k]));
        }
        vg_rules_out_clear(&out);
        vg_event_fini(&ev);
        now += 3600 * 1000;
    }
    vg_resource_destroy(res);
    vg_rules_out_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct vg_ruleset *rs;
    struct vg_rules_diags d = {0};
    char errstr[512];

    if (!ready) {
        vg_json_init();
        ready = 1;
    }
    rs = vg_ruleset_new();
    if (vg_rules_load_string(rs, "fuzz.yaml", (const char *)data, size, errstr, sizeof(errstr)) ==
        VG_OK) {
        exercise(rs);
    } else {
        vg_rules_diags_add_text(&d, errstr);
    }
    vg_rules_diags_fini(&d);
    vg_ruleset_destroy(rs);
    return 0;
}
