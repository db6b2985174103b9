/*
 * The loaded rules as JSON, for GET /api/v1/rules (docs/api.md):
 * each monitor (name, severity, condition kind and field, where it is
 * written) and each pager (name, sinks, continue, grouping). Names only:
 * no sink settings, so nothing secret.
 */
#include <stdio.h>

#include "rules_int.h"
#include "vigil/json.h"

static void put_loc(struct vg_buf *b, const struct rules_loc *loc)
{
    vg_buf_puts(b, ", \"file\": ");
    vg_json_append_string(b, loc->file ? loc->file : "");
    vg_buf_printf(b, ", \"line\": %zu", loc->line);
}

char *vg_rules_describe_json(const struct vg_ruleset *rs)
{
    static const char *const kinds[] = {"transition", "held", "flapping", "absence"};
    struct vg_buf b = {0};

    vg_buf_puts(&b, "{\"monitors\": [");
    for (size_t i = 0; i < rs->n_monitors; i++) {
        const struct rules_monitor *m = rs->monitors[i];
        vg_buf_puts(&b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        vg_json_append_string(&b, m->name);
        vg_buf_puts(&b, ", \"severity\": ");
        vg_json_append_string(&b, m->severity ? m->severity : "");
        vg_buf_puts(&b, ", \"kind\": ");
        vg_json_append_string(&b, (size_t)m->cond.kind < VG_ARRAY_LEN(kinds) ? kinds[m->cond.kind]
                                                                             : "unknown");
        vg_buf_puts(&b, ", \"field\": ");
        if (m->cond.field) {
            vg_json_append_string(&b, m->cond.field->name);
        } else {
            vg_buf_puts(&b, "null");
        }
        vg_buf_puts(&b, ", \"incident_type\": ");
        vg_json_append_string(&b, m->incident_type ? m->incident_type : "");
        put_loc(&b, &m->loc);
        vg_buf_putc(&b, '}');
    }
    vg_buf_puts(&b, rs->n_monitors ? "\n], \"pagers\": [" : "], \"pagers\": [");
    for (size_t i = 0; i < rs->n_pagers; i++) {
        const struct rules_pager *p = rs->pagers[i];
        vg_buf_puts(&b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        vg_json_append_string(&b, p->name);
        vg_buf_puts(&b, ", \"sinks\": [");
        for (size_t k = 0; k < p->n_sinks; k++) {
            if (k > 0) {
                vg_buf_puts(&b, ", ");
            }
            vg_json_append_string(&b, p->sinks[k].name);
        }
        vg_buf_printf(&b, "], \"continue\": %s, \"grouped\": %s", p->cont ? "true" : "false",
                      p->grouped ? "true" : "false");
        put_loc(&b, &p->loc);
        vg_buf_putc(&b, '}');
    }
    vg_buf_printf(
        &b, "%s], \"counts\": {\"monitors\": %zu, \"pagers\": %zu, \"inhibit_rules\": %zu}}\n",
        rs->n_pagers ? "\n" : "", rs->n_monitors, rs->n_pagers, rs->n_inhibits);
    return vg_buf_steal(&b);
}
