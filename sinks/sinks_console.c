/*
 * The console sink: one line per page on a FILE* (stdout by default),
 * rendered from the parsed v1 body, for demos and local runs:
 *   PAGE firing [high] workflow-failed workflow:v1:x:public runtime running -> failed: summary
 * Control characters in any value become spaces so a page is always one line.
 */
#include <string.h>

#include "sinks_int.h"
#include "vigil/mem.h"
#include "vigil/page.h"

static void put_clean(struct vg_buf *b, const char *s, const char *if_empty)
{
    if (!s || !s[0]) {
        vg_buf_puts(b, if_empty);
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        vg_buf_putc(b, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
    }
}

/* A grouped body is one line per incident, each tagged with its group. */
static void print_group(FILE *out, const char *page_id, const char *body, size_t body_len)
{
    struct vg_pages pages = {0};
    struct vg_buf line = {0};
    char err[256];

    if (vg_page_group_from_json(&pages, body, body_len, err, sizeof(err)) != VG_OK) {
        vg_buf_puts(&line, "PAGE ? ");
        put_clean(&line, page_id, "(no id)");
        vg_buf_puts(&line, ": unreadable grouped body: ");
        put_clean(&line, err, "?");
        vg_buf_putc(&line, '\n');
    }
    for (size_t i = 0; i < pages.n; i++) {
        const struct vg_page *pg = &pages.items[i];

        vg_buf_puts(&line, "PAGE ");
        put_clean(&line, pg->status, "?");
        vg_buf_puts(&line, " [");
        put_clean(&line, pg->incident.severity, "?");
        vg_buf_puts(&line, "] ");
        put_clean(&line, pg->incident.monitor, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg->resource.id, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg->transition.field, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg->transition.from, "(none)");
        vg_buf_puts(&line, " -> ");
        put_clean(&line, pg->transition.to, "(none)");
        vg_buf_puts(&line, ": ");
        put_clean(&line, pg->incident.summary, "");
        vg_buf_puts(&line, " (group ");
        put_clean(&line, pg->pager, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg->group, "");
        vg_buf_puts(&line, ")\n");
    }
    if (pages.n > 0) {
        struct sinks_notice nt;

        /* the incidents of the group beyond its pager's group_limit: counted, not listed */
        if (sinks_notice_parse(&nt, body, body_len, err, sizeof(err)) == VG_OK) {
            if (nt.truncated > 0) {
                vg_buf_printf(&line, "PAGE and %zu more (group ", nt.truncated);
                put_clean(&line, pages.items[0].pager, "?");
                vg_buf_putc(&line, ' ');
                put_clean(&line, pages.items[0].group, "");
                vg_buf_puts(&line, ")\n");
            }
            sinks_notice_fini(&nt);
        }
    }
    if (line.data) {
        fputs(line.data, out);
        fflush(out);
    }
    vg_buf_fini(&line);
    vg_pages_fini(&pages);
}

void sinks_console_print(FILE *out, const char *page_id, const char *body, size_t body_len)
{
    struct vg_page pg;
    struct vg_buf line = {0};
    char err[256];

    if (vg_page_json_is_group(body, body_len)) {
        print_group(out, page_id, body, body_len);
        return;
    }
    if (vg_page_from_json(&pg, body, body_len, err, sizeof(err)) != VG_OK) {
        vg_buf_puts(&line, "PAGE ? ");
        put_clean(&line, page_id, "(no id)");
        vg_buf_puts(&line, ": unreadable body: ");
        put_clean(&line, err, "?");
    } else {
        vg_buf_puts(&line, "PAGE ");
        put_clean(&line, pg.status, "?");
        vg_buf_puts(&line, " [");
        put_clean(&line, pg.incident.severity, "?");
        vg_buf_puts(&line, "] ");
        put_clean(&line, pg.incident.monitor, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg.resource.id, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg.transition.field, "?");
        vg_buf_putc(&line, ' ');
        put_clean(&line, pg.transition.from, "(none)");
        vg_buf_puts(&line, " -> ");
        put_clean(&line, pg.transition.to, "(none)");
        vg_buf_puts(&line, ": ");
        put_clean(&line, pg.incident.summary, "");
        vg_page_fini(&pg);
    }
    vg_buf_putc(&line, '\n');
    /* One fputs: lines from other writers of the same FILE never interleave with ours. */
    fputs(line.data, out);
    fflush(out);
    vg_buf_fini(&line);
}
