/*
 * GET /metrics: the registry (core/metrics.c) in the Prometheus text
 * format 0.0.4, what `promtool check metrics` reads.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vigil/api.h"
#include "vigil/mem.h"
#include "vigil/metrics.h"

/* A sample value: integers without a fraction, others with full precision. */
static void put_number(struct vg_buf *b, double v)
{
    if (isnan(v)) {
        vg_buf_puts(b, "NaN");
    } else if (isinf(v)) {
        vg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        vg_buf_printf(b, "%.0f", v);
    } else {
        vg_buf_printf(b, "%.17g", v);
    }
}

/* Label values escape backslash, double quote and newline; HELP text backslash and newline. */
static void put_escaped(struct vg_buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\') {
            vg_buf_puts(b, "\\\\");
        } else if (*s == '\n') {
            vg_buf_puts(b, "\\n");
        } else if (*s == '"' && quote) {
            vg_buf_puts(b, "\\\"");
        } else {
            vg_buf_putc(b, *s);
        }
    }
}

/* {a="x",b="y"[,le="..."]} or nothing. */
static void put_labels(struct vg_buf *b, const struct vg_metric_family_view *f,
                       const struct vg_metric_series_view *s, const char *le)
{
    if (f->n_labels == 0 && !le) {
        return;
    }
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < f->n_labels; i++) {
        vg_buf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_escaped(b, s->values[i], true);
        vg_buf_putc(b, '"');
    }
    if (le) {
        vg_buf_printf(b, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    }
    vg_buf_putc(b, '}');
}

static void render_family(const struct vg_metric_family_view *f, void *arg)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    struct vg_buf *b = arg;

    vg_buf_printf(b, "# HELP %s ", f->name);
    put_escaped(b, f->help, false);
    vg_buf_printf(b, "\n# TYPE %s %s\n", f->name, types[f->type]);
    for (size_t i = 0; i < f->n_series; i++) {
        const struct vg_metric_series_view *s = &f->series[i];
        if (f->type != VG_METRIC_HISTOGRAM) {
            vg_buf_puts(b, f->name);
            put_labels(b, f, s, NULL);
            vg_buf_putc(b, ' ');
            put_number(b, s->value);
            vg_buf_putc(b, '\n');
            continue;
        }
        {
            uint64_t cum = 0;
            for (size_t k = 0; k <= f->n_bounds; k++) {
                char le[40];
                cum += s->buckets[k];
                if (k < f->n_bounds) {
                    snprintf(le, sizeof(le), "%g", f->bounds[k]);
                } else {
                    snprintf(le, sizeof(le), "+Inf");
                }
                vg_buf_printf(b, "%s_bucket", f->name);
                put_labels(b, f, s, le);
                vg_buf_printf(b, " %llu\n", (unsigned long long)cum);
            }
            vg_buf_printf(b, "%s_sum", f->name);
            put_labels(b, f, s, NULL);
            vg_buf_putc(b, ' ');
            put_number(b, s->sum);
            vg_buf_printf(b, "\n%s_count", f->name);
            put_labels(b, f, s, NULL);
            vg_buf_printf(b, " %llu\n", (unsigned long long)s->count);
        }
    }
}

void vg_metrics_render(struct vg_metrics *m, struct vg_buf *out)
{
    vg_metrics_visit(m, render_family, out);
}
