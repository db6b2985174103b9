/*
 * Shared by the fuzz targets that evaluate rules: fire the first timer an
 * evaluation scheduled, at its due time, so the fired path runs too.
 */
#ifndef VIGIL_FUZZ_RULES_FIRE_H
#define VIGIL_FUZZ_RULES_FIRE_H

#include "vigil/mem.h"
#include "vigil/rules.h"

static inline void fuzz_fire_first_timer(const struct vg_ruleset *rs, struct vg_resource *res,
                                         struct vg_rules_out *out)
{
    for (size_t k = 0; k < out->timers.n; k++) {
        if (out->timers.items[k].due_ms > 0 && out->timers.items[k].topic) {
            struct vg_rules_env later = {.now_ms = out->timers.items[k].due_ms};
            char *member = vg_strdup(out->timers.items[k].member);

            vg_rules_fire(rs, &later, res, member, out);
            vg_free(member);
            return;
        }
    }
}

#endif
