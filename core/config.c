/*
 * vigil.yaml -> struct vg_config (docs/config.md). Every key is checked:
 * unknown keys ("did you mean") and wrong types are errors with
 * file:line:col. Relative paths in the file are relative to the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

static const char *const default_batch_types[] = {"workflow", "job", "cronjob", "batch"};

static char **strv_new(const char *const *src, size_t n)
{
    char **v = vg_calloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = vg_strdup(src[i]);
    }
    return v;
}

void vg_config_init(struct vg_config *cfg)
{
    static const char *const topics[] = {"vigil.events"};
    static const char *const rules[] = {"examples/rules"};
    memset(cfg, 0, sizeof(*cfg));
    cfg->kafka.group = vg_strdup("vigil");
    cfg->kafka.topics = strv_new(topics, 1);
    cfg->kafka.n_topics = 1;
    cfg->kafka.dlq_topic = vg_strdup("vigil.dlq");
    cfg->kafka.partitions = 4;
    cfg->kafka.batch_size = 5000;
    cfg->kafka.batch_ms = 50;
    cfg->redis.prefix = vg_strdup("vigil");
    cfg->redis.data_dir = vg_strdup(".vigil");
    cfg->rules = strv_new(rules, 1);
    cfg->n_rules = 1;
    cfg->sinks = vg_calloc(1, sizeof(*cfg->sinks));
    cfg->sinks[0].name = vg_strdup("console");
    cfg->sinks[0].type = vg_strdup("console");
    cfg->sinks[0].timeout_ms = 10000;
    cfg->sinks[0].connect_timeout_ms = 5000;
    cfg->sinks[0].max_attempts = 1;
    cfg->n_sinks = 1;
    cfg->health.batch_types = strv_new(default_batch_types, VG_ARRAY_LEN(default_batch_types));
    cfg->health.n_batch_types = VG_ARRAY_LEN(default_batch_types);
}

static void kv_free(struct vg_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void sink_fini(struct vg_sink_config *s)
{
    free(s->name);
    free(s->type);
    free(s->url);
    kv_free(s->headers, s->n_headers);
}

static void sinks_free(struct vg_sink_config *sinks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sink_fini(&sinks[i]);
    }
    free(sinks);
}

void vg_config_fini(struct vg_config *cfg)
{
    free(cfg->path);
    free(cfg->kafka.brokers);
    free(cfg->kafka.group);
    vg_strv_free(cfg->kafka.topics);
    free(cfg->kafka.dlq_topic);
    kv_free(cfg->kafka.properties, cfg->kafka.n_properties);
    free(cfg->redis.url);
    free(cfg->redis.prefix);
    free(cfg->redis.data_dir);
    vg_strv_free(cfg->rules);
    sinks_free(cfg->sinks, cfg->n_sinks);
    vg_strv_free(cfg->health.batch_types);
    memset(cfg, 0, sizeof(*cfg));
}

const struct vg_sink_config *vg_config_find_sink(const struct vg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        if (strcmp(cfg->sinks[i].name, name) == 0) {
            return &cfg->sinks[i];
        }
    }
    return NULL;
}

/* Replace *dst with a copy of the scalar `n` (a non-empty string). */
static vg_err_t set_string(char **dst, const struct vg_ynode *n, char *errstr, size_t errstr_size)
{
    const char *s;
    vg_err_t err = vg_ynode_string(n, &s, errstr, errstr_size);
    if (err) {
        return err;
    }
    if (!*s) {
        return vg_ynode_error(n, errstr, errstr_size, "must not be empty");
    }
    free(*dst);
    *dst = vg_strdup(s);
    return VG_OK;
}

/* Like set_string, but "embedded" (or an empty value) means NULL. */
static vg_err_t set_endpoint(char **dst, const struct vg_ynode *n, char *errstr,
                             size_t errstr_size)
{
    free(*dst);
    *dst = NULL;
    if (n->kind == VG_YNODE_NULL || (n->kind == VG_YNODE_SCALAR && (!n->str[0] ||
                                                                   !strcmp(n->str, "embedded")))) {
        return VG_OK;
    }
    return set_string(dst, n, errstr, errstr_size);
}

static vg_err_t set_int(int *dst, const struct vg_ynode *n, int64_t min, int64_t max,
                        char *errstr, size_t errstr_size)
{
    int64_t v;
    vg_err_t err = vg_ynode_int(n, min, max, &v, errstr, errstr_size);
    if (!err) {
        *dst = (int)v;
    }
    return err;
}

static vg_err_t set_strv(char ***dst, size_t *n_dst, const struct vg_ynode *n, char *errstr,
                         size_t errstr_size)
{
    char **v;
    size_t count;
    vg_err_t err = vg_ynode_strings(n, &v, &count, errstr, errstr_size);
    if (err) {
        return err;
    }
    for (size_t i = 0; i < count; i++) {
        if (!v[i][0]) {
            vg_strv_free(v);
            return vg_ynode_error(n, errstr, errstr_size, "list entries must not be empty");
        }
    }
    vg_strv_free(*dst);
    *dst = v;
    *n_dst = count;
    return VG_OK;
}

static vg_err_t set_kv(struct vg_kv **dst, size_t *n_dst, const struct vg_ynode *n, char *errstr,
                       size_t errstr_size)
{
    struct vg_kv *kv;
    if (n->kind == VG_YNODE_NULL) {
        kv_free(*dst, *n_dst);
        *dst = NULL;
        *n_dst = 0;
        return VG_OK;
    }
    if (n->kind != VG_YNODE_MAP) {
        return vg_ynode_error(n, errstr, errstr_size, "expected a mapping, got %s",
                              vg_ynode_kind_name(n->kind));
    }
    kv = vg_calloc(n->n + 1, sizeof(*kv));
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ynode *v = n->pairs[i].value;
        if (v->kind != VG_YNODE_SCALAR) {
            kv_free(kv, i);
            return vg_ynode_error(v, errstr, errstr_size, "expected a string, got %s",
                                  vg_ynode_kind_name(v->kind));
        }
        kv[i].key = vg_strdup(n->pairs[i].key);
        kv[i].value = vg_strdup(v->str);
    }
    kv_free(*dst, *n_dst);
    *dst = kv;
    *n_dst = n->n;
    return VG_OK;
}

static vg_err_t load_kafka(struct vg_kafka_config *k, const struct vg_ynode *n, char *errstr,
                           size_t errstr_size)
{
    static const char *const keys[] = {"brokers",    "group",      "topics",   "dlq_topic",
                                       "properties", "partitions", "batch_size", "batch_ms",
                                       NULL};
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    for (size_t i = 0; !err && i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        if (!strcmp(key, "brokers")) {
            err = set_endpoint(&k->brokers, v, errstr, errstr_size);
        } else if (!strcmp(key, "group")) {
            err = set_string(&k->group, v, errstr, errstr_size);
        } else if (!strcmp(key, "topics")) {
            err = set_strv(&k->topics, &k->n_topics, v, errstr, errstr_size);
            if (!err && k->n_topics == 0) {
                err = vg_ynode_error(v, errstr, errstr_size, "at least one topic is needed");
            }
        } else if (!strcmp(key, "dlq_topic")) {
            err = set_string(&k->dlq_topic, v, errstr, errstr_size);
        } else if (!strcmp(key, "properties")) {
            err = set_kv(&k->properties, &k->n_properties, v, errstr, errstr_size);
        } else if (!strcmp(key, "partitions")) {
            err = set_int(&k->partitions, v, 1, 1000, errstr, errstr_size);
        } else if (!strcmp(key, "batch_size")) {
            err = set_int(&k->batch_size, v, 1, 1000000, errstr, errstr_size);
        } else if (!strcmp(key, "batch_ms")) {
            err = set_int(&k->batch_ms, v, 0, 60000, errstr, errstr_size);
        }
    }
    return err;
}

static vg_err_t load_redis(struct vg_redis_config *r, const struct vg_ynode *n,
                           const char *base_dir, char *errstr, size_t errstr_size)
{
    static const char *const keys[] = {"url", "prefix", "data_dir", NULL};
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    for (size_t i = 0; !err && i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        if (!strcmp(key, "url")) {
            err = set_endpoint(&r->url, v, errstr, errstr_size);
            if (!err && r->url && strncmp(r->url, "redis://", 8) != 0 &&
                strncmp(r->url, "unix://", 7) != 0) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "expected redis://host:port/db, unix:///path or embedded");
            }
        } else if (!strcmp(key, "prefix")) {
            err = set_string(&r->prefix, v, errstr, errstr_size);
        } else if (!strcmp(key, "data_dir")) {
            err = set_string(&r->data_dir, v, errstr, errstr_size);
            if (!err && r->data_dir[0] != '/' && base_dir) {
                char *abs = vg_asprintf("%s/%s", base_dir, r->data_dir);
                free(r->data_dir);
                r->data_dir = abs;
            }
        }
    }
    return err;
}

static vg_err_t load_sink(struct vg_sink_config *s, const char *name, const struct vg_ynode *n,
                          char *errstr, size_t errstr_size)
{
    static const char *const keys[] = {"type",    "url",          "headers", "timeout",
                                       "connect_timeout", "max_attempts", NULL};
    const struct vg_ynode *type = vg_ynode_get(n, "type");
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);

    s->name = vg_strdup(name);
    s->timeout_ms = 10000;
    s->connect_timeout_ms = 5000;
    s->max_attempts = 5;
    if (err) {
        return err;
    }
    if (!type) {
        return vg_ynode_error(n, errstr, errstr_size, "sink %s: missing key \"type\"", name);
    }
    for (size_t i = 0; !err && i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        if (!strcmp(key, "type")) {
            err = set_string(&s->type, v, errstr, errstr_size);
            if (!err && strcmp(s->type, "webhook") != 0 && strcmp(s->type, "console") != 0) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "unknown sink type \"%s\" (expected webhook or console)",
                                     s->type);
            }
        } else if (!strcmp(key, "url")) {
            /* The URL is a secret: never echo it in an error. */
            err = set_string(&s->url, v, errstr, errstr_size);
            if (!err && strncmp(s->url, "http://", 7) != 0 &&
                strncmp(s->url, "https://", 8) != 0) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "sink %s: url must start with http:// or https://", name);
            }
        } else if (!strcmp(key, "headers")) {
            err = set_kv(&s->headers, &s->n_headers, v, errstr, errstr_size);
        } else if (!strcmp(key, "timeout")) {
            err = vg_ynode_duration(v, &s->timeout_ms, errstr, errstr_size);
        } else if (!strcmp(key, "connect_timeout")) {
            err = vg_ynode_duration(v, &s->connect_timeout_ms, errstr, errstr_size);
        } else if (!strcmp(key, "max_attempts")) {
            err = set_int(&s->max_attempts, v, 1, 1000, errstr, errstr_size);
        }
    }
    if (!err && !strcmp(s->type, "webhook") && !s->url) {
        err = vg_ynode_error(n, errstr, errstr_size, "sink %s: a webhook needs \"url\"", name);
    }
    if (!err && !strcmp(s->type, "console")) {
        s->max_attempts = 1;
    }
    return err;
}

static vg_err_t load_sinks(struct vg_config *cfg, const struct vg_ynode *n, char *errstr,
                           size_t errstr_size)
{
    vg_err_t err = VG_OK;
    if (n->kind != VG_YNODE_MAP) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "expected a mapping of sink name to sink, got %s",
                              vg_ynode_kind_name(n->kind));
    }
    sinks_free(cfg->sinks, cfg->n_sinks);
    cfg->sinks = vg_calloc(n->n + 1, sizeof(*cfg->sinks));
    cfg->n_sinks = 0;
    for (size_t i = 0; !err && i < n->n; i++) {
        const struct vg_ynode *v = n->pairs[i].value;
        if (v->kind != VG_YNODE_MAP) {
            return vg_ynode_error(v, errstr, errstr_size, "sink %s: expected a mapping, got %s",
                                  n->pairs[i].key, vg_ynode_kind_name(v->kind));
        }
        err = load_sink(&cfg->sinks[cfg->n_sinks++], n->pairs[i].key, v, errstr, errstr_size);
    }
    return err;
}

static vg_err_t load_health(struct vg_health_config *h, const struct vg_ynode *n, char *errstr,
                            size_t errstr_size)
{
    static const char *const keys[] = {"batch_types", NULL};
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    const struct vg_ynode *bt = vg_ynode_get(n, "batch_types");
    if (!err && bt) {
        if (bt->kind == VG_YNODE_NULL) {
            vg_strv_free(h->batch_types);
            h->batch_types = vg_calloc(1, sizeof(char *));
            h->n_batch_types = 0;
        } else {
            err = set_strv(&h->batch_types, &h->n_batch_types, bt, errstr, errstr_size);
        }
    }
    return err;
}

static vg_err_t load_root(struct vg_config *cfg, const struct vg_ynode *root,
                          const char *base_dir, char *errstr, size_t errstr_size)
{
    static const char *const keys[] = {"kafka", "redis", "rules", "sinks", "health", NULL};
    vg_err_t err = vg_ynode_check_keys(root, keys, errstr, errstr_size);
    for (size_t i = 0; !err && i < root->n; i++) {
        const char *key = root->pairs[i].key;
        const struct vg_ynode *v = root->pairs[i].value;
        if (v->kind == VG_YNODE_NULL && strcmp(key, "rules") != 0) {
            continue; /* "kafka:" with nothing under it: all defaults */
        }
        if (!strcmp(key, "kafka")) {
            err = load_kafka(&cfg->kafka, v, errstr, errstr_size);
        } else if (!strcmp(key, "redis")) {
            err = load_redis(&cfg->redis, v, base_dir, errstr, errstr_size);
        } else if (!strcmp(key, "rules")) {
            if (v->kind == VG_YNODE_NULL) {
                vg_strv_free(cfg->rules);
                cfg->rules = vg_calloc(1, sizeof(char *));
                cfg->n_rules = 0;
                continue;
            }
            err = set_strv(&cfg->rules, &cfg->n_rules, v, errstr, errstr_size);
            for (size_t r = 0; !err && r < cfg->n_rules; r++) {
                if (cfg->rules[r][0] != '/' && base_dir) {
                    char *abs = vg_asprintf("%s/%s", base_dir, cfg->rules[r]);
                    free(cfg->rules[r]);
                    cfg->rules[r] = abs;
                }
            }
        } else if (!strcmp(key, "sinks")) {
            err = load_sinks(cfg, v, errstr, errstr_size);
        } else if (!strcmp(key, "health")) {
            err = load_health(&cfg->health, v, errstr, errstr_size);
        }
    }
    return err;
}

vg_err_t vg_config_load_file(struct vg_config *cfg, const char *path, char *errstr,
                             size_t errstr_size)
{
    struct vg_ydoc doc;
    vg_err_t err;
    char *base_dir = NULL;
    const char *slash;

    err = vg_yaml_load_file(&doc, path, VG_YAML_ENV, errstr, errstr_size);
    if (err) {
        vg_ydoc_fini(&doc);
        return err;
    }
    free(cfg->path);
    cfg->path = vg_strdup(path);
    slash = strrchr(path, '/');
    if (slash) {
        base_dir = vg_strndup(path, (size_t)(slash - path) + (slash == path ? 1 : 0));
    }
    if (!doc.root || doc.root->kind == VG_YNODE_NULL) {
        err = VG_OK; /* an empty file: all defaults */
    } else if (doc.root->kind != VG_YNODE_MAP) {
        err = vg_ynode_error(doc.root, errstr, errstr_size, "expected a mapping, got %s",
                             vg_ynode_kind_name(doc.root->kind));
    } else {
        err = load_root(cfg, doc.root, base_dir, errstr, errstr_size);
    }
    free(base_dir);
    vg_ydoc_fini(&doc);
    return err;
}
