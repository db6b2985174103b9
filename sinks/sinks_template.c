/*
 * Webhook body templates: literal text with {{path}} holes
 * filled from the page, e.g. {"text": "{{incident.summary}}"}. Paths:
 * id, sink, version, status, count, incident.*, resource.*, transition.*,
 * group.* (a grouped page fills incident/resource/transition from its
 * first incident). A template never chooses where a request goes: URLs
 * come from config only.
 */
#include <string.h>

#include "sinks_int.h"
#include "vigil/json.h"

struct tpl_part {
    char *text; /* literal, or the path of a hole */
    bool hole;
};

struct sinks_tpl {
    struct tpl_part *parts;
    size_t n;
    size_t cap;
};

static bool path_known(const char *p)
{
    static const char *const exact[] = {"id", "sink", "version", "status", "count"};
    static const char *const prefixes[] = {"incident.", "resource.", "transition.", "group."};

    for (size_t i = 0; i < VG_ARRAY_LEN(exact); i++) {
        if (!strcmp(p, exact[i])) {
            return true;
        }
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(p, prefixes[i], n) && p[n]) {
            for (const char *c = p + n; *c; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                      *c == '.')) {
                    return false;
                }
            }
            return true;
        }
    }
    return false;
}

static void add_part(struct sinks_tpl *t, const char *s, size_t n, bool hole)
{
    struct tpl_part *p;

    if (n == 0 && !hole) {
        return;
    }
    p = VG_ARRAY_PUSH(t->parts, t->n, t->cap);
    p->text = vg_strndup(s, n);
    p->hole = hole;
}

vg_err_t sinks_tpl_compile(struct sinks_tpl **out, const char *sink, const char *src, char *errstr,
                           size_t errstr_size)
{
    struct sinks_tpl *t = vg_calloc(1, sizeof(*t));
    const char *p = src;

    *out = NULL;
    while (*p) {
        const char *open = strstr(p, "{{");
        const char *close;
        const char *a;
        const char *b;
        char *path;

        if (!open) {
            add_part(t, p, strlen(p), false);
            break;
        }
        add_part(t, p, (size_t)(open - p), false);
        close = strstr(open + 2, "}}");
        if (!close) {
            snprintf(errstr, errstr_size, "sink %s: template: unterminated {{ at offset %zu", sink,
                     (size_t)(open - src));
            sinks_tpl_destroy(t);
            return VG_ERR_INVALID;
        }
        a = open + 2;
        b = close;
        while (a < b && *a == ' ') {
            a++;
        }
        while (b > a && b[-1] == ' ') {
            b--;
        }
        path = vg_strndup(a, (size_t)(b - a));
        if (!path_known(path)) {
            snprintf(errstr, errstr_size,
                     "sink %s: template: unknown path \"%.60s\" (use id, sink, status, count, "
                     "incident.*, resource.*, transition.* or group.*)",
                     sink, path);
            vg_free(path);
            sinks_tpl_destroy(t);
            return VG_ERR_INVALID;
        }
        add_part(t, path, strlen(path), true);
        vg_free(path);
        p = close + 2;
    }
    *out = t;
    return VG_OK;
}

/* The value of a JSON string, escaped, without the quotes. */
static void put_escaped(struct vg_buf *b, const char *v)
{
    struct vg_buf q = {0};

    vg_json_append_string(&q, v);
    if (q.len >= 2) {
        vg_buf_append(b, q.data + 1, q.len - 2);
    }
    vg_buf_fini(&q);
}

char *sinks_tpl_render(const struct sinks_tpl *tpl, const struct sinks_notice *nt,
                       const char *page_id, const char *sink, bool json_escape)
{
    struct vg_buf b = {0};
    char scratch[32];

    for (size_t i = 0; i < tpl->n; i++) {
        const char *v;

        if (!tpl->parts[i].hole) {
            vg_buf_puts(&b, tpl->parts[i].text);
            continue;
        }
        if (!strcmp(tpl->parts[i].text, "id")) {
            v = page_id;
        } else if (!strcmp(tpl->parts[i].text, "sink")) {
            v = sink;
        } else {
            v = sinks_notice_lookup(nt, tpl->parts[i].text, scratch, sizeof(scratch));
        }
        if (json_escape) {
            put_escaped(&b, v);
        } else {
            vg_buf_puts(&b, v);
        }
    }
    return vg_buf_steal(&b);
}

void sinks_tpl_destroy(struct sinks_tpl *tpl)
{
    if (!tpl) {
        return;
    }
    for (size_t i = 0; i < tpl->n; i++) {
        vg_free(tpl->parts[i].text);
    }
    vg_free(tpl->parts);
    vg_free(tpl);
}
