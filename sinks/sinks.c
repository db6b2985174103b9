/*
 * The sink registry behind include/vigil/sinks.h: validates the sink
 * configs, builds one implementation per sink (sinks_webhook.c,
 * sinks_console.c) and routes each delivery by sink name. Retrying and
 * the outbox are the dispatcher's (cli/dispatch.c), not ours.
 */
#include <stdlib.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/mem.h"
#include "vigil/sinks.h"

#define DEFAULT_MAX_ATTEMPTS 5

enum sink_type { SINK_WEBHOOK, SINK_CONSOLE };

struct sink {
    char *name;
    enum sink_type type;
    int max_attempts;
    struct vg_webhook *wh; /* SINK_WEBHOOK */
};

struct vg_sinks {
    struct sink *v;
    size_t n;
    FILE *console_out; /* borrowed */
};

static const struct sink *find_sink(const struct vg_sinks *sk, const char *name)
{
    for (size_t i = 0; i < sk->n; i++) {
        if (strcmp(sk->v[i].name, name) == 0) {
            return &sk->v[i];
        }
    }
    return NULL;
}

static vg_err_t sink_init(struct sink *s, const struct vg_sink_config *cfg, char *errstr,
                          size_t errstr_size)
{
    if (cfg->max_attempts < 0) {
        snprintf(errstr, errstr_size, "sink %s: max_attempts must not be negative", cfg->name);
        return VG_ERR_INVALID;
    }
    if (!cfg->type) {
        snprintf(errstr, errstr_size, "sink %s: missing type (webhook or console)", cfg->name);
        return VG_ERR_INVALID;
    }
    if (strcmp(cfg->type, "console") == 0) {
        s->type = SINK_CONSOLE;
        s->max_attempts = 1; /* printing cannot fail in a way a retry would fix */
    } else if (strcmp(cfg->type, "webhook") == 0) {
        vg_err_t err = vg_webhook_new(&s->wh, cfg, errstr, errstr_size);
        if (err != VG_OK) {
            return err;
        }
        s->type = SINK_WEBHOOK;
        s->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : DEFAULT_MAX_ATTEMPTS;
    } else {
        snprintf(errstr, errstr_size, "sink %s: unknown type \"%s\" (want webhook or console)",
                 cfg->name, cfg->type);
        return VG_ERR_INVALID;
    }
    s->name = vg_strdup(cfg->name);
    return VG_OK;
}

vg_err_t vg_sinks_new(struct vg_sinks **out, const struct vg_sink_config *cfgs, size_t n,
                      FILE *console_out, char *errstr, size_t errstr_size)
{
    struct vg_sinks *sk;
    vg_err_t err = VG_OK;

    *out = NULL;
    /* Here, at setup and before the dispatcher thread exists, as libcurl prefers. */
    if (!vg_sinks_global_init()) {
        snprintf(errstr, errstr_size, "sinks: curl_global_init failed");
        return VG_ERR_FATAL;
    }
    sk = vg_calloc(1, sizeof(*sk));
    sk->console_out = console_out ? console_out : stdout;
    sk->v = vg_calloc(n ? n : 1, sizeof(*sk->v));
    for (size_t i = 0; i < n; i++) {
        const struct vg_sink_config *cfg = &cfgs[i];
        if (!cfg->name || !cfg->name[0]) {
            snprintf(errstr, errstr_size, "sinks[%zu]: missing name", i);
            err = VG_ERR_INVALID;
            goto fail;
        }
        if (find_sink(sk, cfg->name)) {
            snprintf(errstr, errstr_size, "sink %s: duplicate name", cfg->name);
            err = VG_ERR_INVALID;
            goto fail;
        }
        err = sink_init(&sk->v[sk->n], cfg, errstr, errstr_size);
        if (err != VG_OK) {
            goto fail;
        }
        sk->n++;
    }
    *out = sk;
    return VG_OK;

fail:
    vg_sinks_destroy(sk);
    return err;
}

void vg_sinks_destroy(struct vg_sinks *sk)
{
    if (!sk) {
        return;
    }
    for (size_t i = 0; i < sk->n; i++) {
        vg_webhook_destroy(sk->v[i].wh);
        vg_free(sk->v[i].name);
    }
    vg_free(sk->v);
    vg_free(sk);
}

vg_err_t vg_sinks_deliver(struct vg_sinks *sk, const char *sink, const char *page_id,
                          const char *body, size_t body_len, char *errstr, size_t errstr_size)
{
    const struct sink *s = find_sink(sk, sink);

    if (!s) {
        snprintf(errstr, errstr_size, "unknown sink \"%s\"", sink);
        return VG_ERR_INVALID;
    }
    switch (s->type) {
    case SINK_WEBHOOK:
        return vg_webhook_deliver(s->wh, page_id, body, body_len, errstr, errstr_size);
    case SINK_CONSOLE:
        vg_console_print(sk->console_out, page_id, body, body_len);
        return VG_OK;
    }
    VG_ASSERT(!"unreachable sink type");
    return VG_ERR_FATAL;
}

int vg_sinks_max_attempts(const struct vg_sinks *sk, const char *sink)
{
    const struct sink *s = find_sink(sk, sink);

    return s ? s->max_attempts : 1;
}

int64_t vg_sinks_retry_after_ms(const struct vg_sinks *sk, const char *sink)
{
    const struct sink *s = find_sink(sk, sink);

    if (!s || s->type != SINK_WEBHOOK) {
        return -1;
    }
    return vg_webhook_retry_after_ms(s->wh);
}
