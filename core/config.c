/*
 * vigil.yaml -> struct vg_config (docs/config.md). Every key is checked:
 * unknown keys ("did you mean") and wrong types are errors with
 * file:line:col. Relative paths in the file are relative to the file.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/util.h"
#include "vigil/yaml.h"

/*
 * One load and where its errors go. Section loaders keep going after an
 * error (the next key, the next sink), so `vigil check` hears of every
 * one; the setters below them write one message into `msg`, keep() hands
 * it on and remembers the first for vg_config_load_file's errstr.
 */
struct cfg_load {
    struct vg_config *cfg; /* what it loads into */
    const char *base_dir;  /* of the config file; NULL for the working directory */
    vg_err_t err;          /* the first error */
    char *errstr;          /* its message */
    size_t errstr_size;
    void (*on_error)(void *ctx, const char *message);
    void *ctx;
    char **env_names; /* "$VIGIL_..." of the overrides applied: their nodes' file names */
    size_t n_env_names;
    char msg[1024];
};

/* Record `err` (msg holds its message) and return it. */
static vg_err_t keep(struct cfg_load *ld, vg_err_t err)
{
    if (err == VG_OK) {
        return VG_OK;
    }
    if (ld->on_error) {
        ld->on_error(ld->ctx, ld->msg);
    }
    if (ld->err == VG_OK) {
        ld->err = err;
        snprintf(ld->errstr, ld->errstr_size, "%s", ld->msg);
    }
    return err;
}

/* False (and the error recorded) when `n` is not a mapping. */
static bool want_map(struct cfg_load *ld, const struct vg_ynode *n)
{
    if (n->kind == VG_YNODE_MAP) {
        return true;
    }
    keep(ld, vg_ynode_error(n, ld->msg, sizeof(ld->msg), "expected a mapping, got %s",
                            vg_ynode_kind_name(n->kind)));
    return false;
}

/* Whether key `i` of `map` is one of `keys`; an unknown one is recorded (with did-you-mean). */
static bool key_ok(struct cfg_load *ld, const struct vg_ynode *map, size_t i,
                   const char *const *keys)
{
    struct vg_ynode one = *map;

    one.pairs = &map->pairs[i];
    one.n = 1;
    return keep(ld, vg_ynode_check_keys(&one, keys, ld->msg, sizeof(ld->msg))) == VG_OK;
}

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
    cfg->kafka.topic_formats = vg_calloc(1, sizeof(*cfg->kafka.topic_formats));
    cfg->kafka.dlq_topic = vg_strdup("vigil.dlq");
    cfg->kafka.partitions = 4;
    cfg->kafka.batch_size = 5000;
    cfg->kafka.batch_ms = 50;
    cfg->kafka.prefetch_mb = VG_KAFKA_PREFETCH_MB_DEFAULT;
    cfg->redis.prefix = vg_strdup("vigil");
    cfg->redis.data_dir = vg_strdup(".vigil");
    cfg->redis.cache_resources = VG_CACHE_RESOURCES_DEFAULT;
    cfg->redis.wait_timeout_ms = VG_REDIS_WAIT_TIMEOUT_MS_DEFAULT;
    cfg->redis.commit_connections = VG_REDIS_COMMIT_CONNECTIONS_DEFAULT;
    cfg->dispatch.claim_idle_ms = VG_DISPATCH_CLAIM_IDLE_MS_DEFAULT;
    cfg->dispatch.idle_poll_ms = VG_DISPATCH_IDLE_POLL_MS_DEFAULT;
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
    vg_decode_config_init(&cfg->decode);
    cfg->decode.threads = VG_DECODE_THREADS_AUTO;
    cfg->http.listen = vg_strdup(VG_HTTP_DEFAULT_LISTEN);
    cfg->http.console = true;
    cfg->http.max_connections = VG_HTTP_DEFAULT_MAX_CONNECTIONS;
    cfg->http.max_connections_per_ip = VG_HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP;
    cfg->http.request_timeout_ms = VG_HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    cfg->log.level = VG_LOG_LEVEL_INFO;
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
    vg_strv_free(s->secrets);
    free(s->ca_file);
    free(s->client_cert);
    free(s->client_key);
    free(s->proxy);
    free(s->format);
    free(s->template);
    free(s->webhook_url);
    free(s->token);
    free(s->channel);
    free(s->api_url);
    free(s->topic);
    free(s->brokers);
    kv_free(s->properties, s->n_properties);
    free(s->console_url);
    free(s->from);
    vg_strv_free(s->to);
    vg_strv_free(s->cc);
    free(s->username);
    free(s->password);
    free(s->starttls);
    free(s->routing_key);
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
    free(cfg->kafka.topic_formats);
    free(cfg->kafka.dlq_topic);
    kv_free(cfg->kafka.properties, cfg->kafka.n_properties);
    free(cfg->redis.url);
    free(cfg->redis.prefix);
    free(cfg->redis.data_dir);
    vg_strv_free(cfg->rules);
    sinks_free(cfg->sinks, cfg->n_sinks);
    vg_strv_free(cfg->health.batch_types);
    vg_decode_config_fini(&cfg->decode);
    free(cfg->http.listen);
    free(cfg->http.token);
    vg_strv_free(cfg->http.allowed_hosts);
    memset(cfg, 0, sizeof(*cfg));
}

enum vg_event_format vg_config_topic_format(const struct vg_kafka_config *k, const char *topic)
{
    for (size_t i = 0; i < k->n_topics && k->topic_formats; i++) {
        if (strcmp(k->topics[i], topic) == 0) {
            return k->topic_formats[i];
        }
    }
    return VG_FORMAT_AUTO;
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
static vg_err_t set_endpoint(char **dst, const struct vg_ynode *n, char *errstr, size_t errstr_size)
{
    free(*dst);
    *dst = NULL;
    if (n->kind == VG_YNODE_NULL ||
        (n->kind == VG_YNODE_SCALAR && (!n->str[0] || !strcmp(n->str, "embedded")))) {
        return VG_OK;
    }
    return set_string(dst, n, errstr, errstr_size);
}

static vg_err_t set_int(int *dst, const struct vg_ynode *n, int64_t min, int64_t max, char *errstr,
                        size_t errstr_size)
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

/* One entry of kafka.topics: "name" or {name, format}. */
static vg_err_t load_topic(const struct vg_ynode *n, char **name, enum vg_event_format *fmt,
                           char *errstr, size_t errstr_size)
{
    static const char *const keys[] = {"name", "format", NULL};
    const struct vg_ynode *nm;
    const struct vg_ynode *f;
    vg_err_t err;

    *fmt = VG_FORMAT_AUTO;
    if (n->kind == VG_YNODE_SCALAR) {
        return set_string(name, n, errstr, errstr_size);
    }
    if (n->kind != VG_YNODE_MAP) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "expected a topic name or {name, format}, got %s",
                              vg_ynode_kind_name(n->kind));
    }
    err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    if (err) {
        return err;
    }
    nm = vg_ynode_get(n, "name");
    if (!nm) {
        return vg_ynode_error(n, errstr, errstr_size, "a topic needs \"name\"");
    }
    err = set_string(name, nm, errstr, errstr_size);
    f = vg_ynode_get(n, "format");
    if (!err && f) {
        const char *s;
        err = vg_ynode_string(f, &s, errstr, errstr_size);
        if (!err && !vg_event_format_parse(s, fmt)) {
            err = vg_ynode_error(f, errstr, errstr_size,
                                 "unknown format \"%s\" (expected native, k8s-pod, k8s-event "
                                 "or auto)",
                                 s);
        }
    }
    return err;
}

static vg_err_t load_topics(struct vg_kafka_config *k, const struct vg_ynode *n, char *errstr,
                            size_t errstr_size)
{
    size_t count = n->kind == VG_YNODE_SEQ ? n->n : 1;
    char **names;
    enum vg_event_format *fmts;
    vg_err_t err = VG_OK;

    if (n->kind != VG_YNODE_SEQ && n->kind != VG_YNODE_SCALAR) {
        return vg_ynode_error(n, errstr, errstr_size,
                              "expected a string or a list of strings, got %s",
                              vg_ynode_kind_name(n->kind));
    }
    if (count == 0) {
        return vg_ynode_error(n, errstr, errstr_size, "at least one topic is needed");
    }
    names = vg_calloc(count + 1, sizeof(*names));
    fmts = vg_calloc(count, sizeof(*fmts));
    for (size_t i = 0; !err && i < count; i++) {
        const struct vg_ynode *item = n->kind == VG_YNODE_SEQ ? n->items[i] : n;
        err = load_topic(item, &names[i], &fmts[i], errstr, errstr_size);
        for (size_t j = 0; !err && j < i; j++) {
            if (strcmp(names[j], names[i]) == 0) {
                err = vg_ynode_error(item, errstr, errstr_size, "topic \"%s\" listed twice",
                                     names[i]);
            }
        }
    }
    if (err) {
        vg_strv_free(names);
        free(fmts);
        return err;
    }
    vg_strv_free(k->topics);
    free(k->topic_formats);
    k->topics = names;
    k->topic_formats = fmts;
    k->n_topics = count;
    return VG_OK;
}

/* The keys whose value is a whole number in [min, max]: section, key, the int in struct vg_config.
 */
static const struct {
    const char *section;
    const char *key;
    size_t offset;
    int64_t min;
    int64_t max;
} int_keys[] = {
    {"kafka", "partitions", offsetof(struct vg_config, kafka.partitions), 1, 1000},
    {"kafka", "batch_size", offsetof(struct vg_config, kafka.batch_size), 1, 1000000},
    {"kafka", "batch_ms", offsetof(struct vg_config, kafka.batch_ms), 0, 60000},
    {"kafka", "batch_commit_ms", offsetof(struct vg_config, kafka.batch_commit_ms), 0, 60000},
    {"kafka", "batch_overlap_parts", offsetof(struct vg_config, kafka.batch_overlap_parts), 0, 64},
    {"kafka", "prefetch_mb", offsetof(struct vg_config, kafka.prefetch_mb), 4, 2048},
    {"redis", "cache_resources", offsetof(struct vg_config, redis.cache_resources), 100, 100000000},
    {"redis", "wait_replicas", offsetof(struct vg_config, redis.wait_replicas), 0, 100},
    {"redis", "commit_connections", offsetof(struct vg_config, redis.commit_connections), 1, 64},
    /* below the 10 s command timeout: a WAIT must answer before hiredis gives up */
    {"redis", "wait_timeout_ms", offsetof(struct vg_config, redis.wait_timeout_ms), 1, 5000},
    {"http", "max_connections", offsetof(struct vg_config, http.max_connections), 1, 4096},
    {"http", "max_connections_per_ip", offsetof(struct vg_config, http.max_connections_per_ip), 1,
     4096},
    {"http", "request_timeout_ms", offsetof(struct vg_config, http.request_timeout_ms), 100,
     600000},
};

/* Set `section`.`key` when it is one of int_keys (err its result); false when it is not. */
static bool set_int_key(struct cfg_load *ld, const char *section, const char *key,
                        const struct vg_ynode *v, vg_err_t *err)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(int_keys); i++) {
        if (!strcmp(int_keys[i].section, section) && !strcmp(int_keys[i].key, key)) {
            *err = set_int((int *)((char *)ld->cfg + int_keys[i].offset), v, int_keys[i].min,
                           int_keys[i].max, ld->msg, sizeof(ld->msg));
            return true;
        }
    }
    return false;
}

/*
 * The mapping `n` of `section`: each of its keys that is one of `keys`,
 * an int of int_keys or any other through load_key(dst, key, value,
 * base_dir, errstr, errstr_size). An unknown key or
 * one that fails is recorded and the next goes on.
 */
static void load_keys(struct cfg_load *ld, const char *section, const struct vg_ynode *n,
                      const char *const *keys,
                      vg_err_t (*load_key)(void *dst, const char *key, const struct vg_ynode *v,
                                           const char *base_dir, char *errstr, size_t errstr_size),
                      void *dst)
{
    if (!want_map(ld, n)) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        vg_err_t err;

        if (!key_ok(ld, n, i, keys)) {
            continue;
        }
        if (!set_int_key(ld, section, key, v, &err)) {
            err = load_key(dst, key, v, ld->base_dir, ld->msg, sizeof(ld->msg));
        }
        keep(ld, err);
    }
}

static const char *const kafka_keys[] = {
    "brokers",    "group",    "topics",          "dlq_topic",           "properties",  "partitions",
    "batch_size", "batch_ms", "batch_commit_ms", "batch_overlap_parts", "prefetch_mb", NULL};

static vg_err_t load_kafka_key(void *dst, const char *key, const struct vg_ynode *v,
                               const char *base_dir, char *errstr, size_t errstr_size)
{
    struct vg_kafka_config *k = dst;
    vg_err_t err = VG_OK;

    (void)base_dir; /* no paths here */
    if (!strcmp(key, "brokers")) {
        err = set_endpoint(&k->brokers, v, errstr, errstr_size);
    } else if (!strcmp(key, "group")) {
        err = set_string(&k->group, v, errstr, errstr_size);
    } else if (!strcmp(key, "topics")) {
        err = load_topics(k, v, errstr, errstr_size);
    } else if (!strcmp(key, "dlq_topic")) {
        err = set_string(&k->dlq_topic, v, errstr, errstr_size);
    } else if (!strcmp(key, "properties")) {
        err = set_kv(&k->properties, &k->n_properties, v, errstr, errstr_size);
    }
    return err;
}

static void load_kafka(struct vg_kafka_config *k, const struct vg_ynode *n, struct cfg_load *ld)
{
    load_keys(ld, "kafka", n, kafka_keys, load_kafka_key, k);
}

static const char *const redis_keys[] = {
    "url",           "prefix",          "data_dir", "cache_resources",    "cluster",
    "wait_replicas", "wait_timeout_ms", "layout",   "commit_connections", NULL};

/*
 * `cluster: true` wants a redis:// URL of one node, db 0: a cluster has no
 * other databases, and the embedded Redis and unix sockets are no cluster.
 */
static vg_err_t check_cluster_url(const struct vg_redis_config *r, const struct vg_ynode *at,
                                  char *errstr, size_t errstr_size)
{
    const char *rest;
    const char *slash;

    if (!r->url) {
        return vg_ynode_error(at, errstr, errstr_size,
                              "redis.cluster: needs redis.url naming a node of the cluster "
                              "(the embedded Redis is no cluster)");
    }
    if (strncmp(r->url, "redis://", 8) != 0) {
        return vg_ynode_error(at, errstr, errstr_size,
                              "redis.cluster: needs a redis://host:port URL (a unix socket or "
                              "rediss:// cannot reach a cluster)");
    }
    rest = r->url + 8;
    slash = strchr(rest, '/');
    if (slash && slash[1] != '\0' && strcmp(slash + 1, "0") != 0) {
        return vg_ynode_error(at, errstr, errstr_size,
                              "redis.cluster: a cluster has only db 0; drop the db from redis.url");
    }
    return VG_OK;
}

/* `redis:` being loaded: what the keys after the loop still need to see. */
struct redis_load {
    struct vg_redis_config *r;
    const struct vg_ynode *cluster_at; /* `cluster:`, when given */
    bool layout_given;
};

static vg_err_t load_redis_key(void *dst, const char *key, const struct vg_ynode *v,
                               const char *base_dir, char *errstr, size_t errstr_size)
{
    struct redis_load *rl = dst;
    struct vg_redis_config *r = rl->r;
    vg_err_t err = VG_OK;

    if (!strcmp(key, "url")) {
        err = set_endpoint(&r->url, v, errstr, errstr_size);
        /* rediss:// loads so that `vigil check` can explain the TLS sidecar
         * (a warning); connecting with it fails with the same advice. */
        if (!err && r->url && strncmp(r->url, "redis://", 8) != 0 &&
            strncmp(r->url, "rediss://", 9) != 0 && strncmp(r->url, "unix://", 7) != 0) {
            err = vg_ynode_error(v, errstr, errstr_size,
                                 "expected redis://host:port/db, unix:///path or embedded");
        }
    } else if (!strcmp(key, "prefix")) {
        err = set_string(&r->prefix, v, errstr, errstr_size);
    } else if (!strcmp(key, "cluster")) {
        err = vg_ynode_bool(v, &r->cluster, errstr, errstr_size);
        rl->cluster_at = v;
    } else if (!strcmp(key, "layout")) {
        if (v->kind != VG_YNODE_SCALAR ||
            (strcmp(v->str, "single") != 0 && strcmp(v->str, "partitioned") != 0)) {
            err = vg_ynode_error(v, errstr, errstr_size,
                                 "redis.layout: expected single or partitioned");
        } else {
            r->partitioned = strcmp(v->str, "partitioned") == 0;
            rl->layout_given = true;
            r->layout_set = true;
        }
    } else if (!strcmp(key, "data_dir")) {
        err = set_string(&r->data_dir, v, errstr, errstr_size);
        if (!err && r->data_dir[0] != '/' && base_dir) {
            char *abs = vg_asprintf("%s/%s", base_dir, r->data_dir);
            free(r->data_dir);
            r->data_dir = abs;
        }
    }
    return err;
}

static void load_redis(struct vg_redis_config *r, const struct vg_ynode *n, struct cfg_load *ld)
{
    struct redis_load rl = {.r = r};

    load_keys(ld, "redis", n, redis_keys, load_redis_key, &rl);
    if (r->cluster && rl.cluster_at) {
        keep(ld, check_cluster_url(r, rl.cluster_at, ld->msg, sizeof(ld->msg)));
    }
    if (r->cluster && !rl.layout_given) {
        /* a cluster spreads the partitions over its primaries unless told `single` */
        r->partitioned = true;
    }
}

/*
 * A secret value: "file:/path" reads the file (relative paths are
 * relative to the config file; trailing whitespace and newlines dropped).
 * Messages name the key and the path, never the value.
 */
static vg_err_t read_secret(char **value, const struct vg_ynode *n, const char *what,
                            const char *base_dir, char *errstr, size_t errstr_size);

static vg_err_t resolve_secret(char **value, const struct vg_ynode *n, const char *sink,
                               const char *key, const char *base_dir, char *errstr,
                               size_t errstr_size)
{
    char *what = vg_asprintf("sink %s: %s", sink, key);
    vg_err_t err = read_secret(value, n, what, base_dir, errstr, errstr_size);
    free(what);
    return err;
}

/* resolve_secret for any key: messages start with `what` ("http.token"). */
static vg_err_t read_secret(char **value, const struct vg_ynode *n, const char *what,
                            const char *base_dir, char *errstr, size_t errstr_size)
{
    const char *path;
    char *abs = NULL;
    FILE *fp;
    struct vg_buf b = {0};
    char chunk[4096];
    size_t got;

    if (strncmp(*value, "file:", 5) != 0) {
        return VG_OK;
    }
    path = *value + 5;
    if (!path[0]) {
        return vg_ynode_error(n, errstr, errstr_size, "%s: empty file: path", what);
    }
    if (path[0] != '/' && base_dir) {
        abs = vg_asprintf("%s/%s", base_dir, path);
        path = abs;
    }
    fp = fopen(path, "rb");
    if (!fp) {
        vg_err_t err = vg_ynode_error(n, errstr, errstr_size, "%s: cannot read %s: %s", what, path,
                                      strerror(errno));
        free(abs);
        return err;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0 && b.len < 65536) {
        vg_buf_append(&b, chunk, got);
    }
    fclose(fp);
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
                         b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t')) {
        b.data[--b.len] = '\0';
    }
    if (b.len == 0 || b.len >= 65536 || memchr(b.data, '\0', b.len)) {
        vg_err_t err = vg_ynode_error(n, errstr, errstr_size,
                                      "%s: %s is empty, too large or binary", what, path);
        vg_buf_fini(&b);
        free(abs);
        return err;
    }
    free(abs);
    free(*value);
    *value = vg_buf_steal(&b);
    return VG_OK;
}

static vg_err_t set_secret(char **dst, const struct vg_ynode *n, const char *sink, const char *key,
                           const char *base_dir, char *errstr, size_t errstr_size)
{
    vg_err_t err = set_string(dst, n, errstr, errstr_size);
    if (!err) {
        err = resolve_secret(dst, n, sink, key, base_dir, errstr, errstr_size);
    }
    return err;
}

static bool is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* "1/s", "30/m", "100/h", "0.5/s" or a bare number (per second). */
static vg_err_t set_rate(double *dst, const struct vg_ynode *n, char *errstr, size_t errstr_size)
{
    const char *s;
    char *end = NULL;
    double v;
    double per = 1.0;
    vg_err_t err = vg_ynode_string(n, &s, errstr, errstr_size);

    if (err) {
        return err;
    }
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno || !(v >= 0) || v > 1e6) {
        return vg_ynode_error(n, errstr, errstr_size, "rate: expected N/s, N/m or N/h");
    }
    if (*end == '/') {
        if (!strcmp(end, "/s")) {
            per = 1.0;
        } else if (!strcmp(end, "/m")) {
            per = 60.0;
        } else if (!strcmp(end, "/h")) {
            per = 3600.0;
        } else {
            return vg_ynode_error(n, errstr, errstr_size, "rate: expected N/s, N/m or N/h");
        }
    } else if (*end) {
        return vg_ynode_error(n, errstr, errstr_size, "rate: expected N/s, N/m or N/h");
    }
    *dst = v / per;
    return VG_OK;
}

static const char *const sink_keys[] = {
    "type",        "url",     "headers",     "timeout",    "connect_timeout", "max_attempts",
    "secret",      "ca_file", "client_cert", "client_key", "proxy",           "rate",
    "burst",       "max_age", "format",      "template",   "webhook_url",     "token",
    "channel",     "api_url", "topic",       "brokers",    "properties",      "console_url",
    "from",        "to",      "cc",          "username",   "password",        "starttls",
    "routing_key", NULL};
static const char *const sink_types[] = {"webhook", "slack", "alertmanager", "kafka", "console",
                                         "teams",   "email", "pagerduty",    NULL};

/*
 * The paths a webhook template may use: the fields of the v1 body
 * (docs/webhook.md, docs/webhook.schema.json); `*` ends a path whose
 * last part is any label name. tests/unit/test_core_config.c renders a
 * page and checks that this list and the body agree.
 */
static const char *const template_paths[] = {"id",
                                             "sink",
                                             "version",
                                             "status",
                                             "count",
                                             "incident.id",
                                             "incident.monitor",
                                             "incident.severity",
                                             "incident.summary",
                                             "incident.started_at",
                                             "incident.resolved_at",
                                             "incident.type",
                                             "incident.labels.*",
                                             "incident.description",
                                             "resource.id",
                                             "resource.type",
                                             "resource.name",
                                             "resource.workspace",
                                             "resource.version",
                                             "resource.owner",
                                             "resource.status",
                                             "resource.runtime",
                                             "resource.health",
                                             "transition.field",
                                             "transition.from",
                                             "transition.to",
                                             "transition.at",
                                             "transition.reason",
                                             "transition.pod",
                                             "group.pager",
                                             "group.labels.*",
                                             NULL};

const char *const *vg_config_template_paths(void)
{
    return template_paths;
}

static bool template_path_known(const char *path)
{
    for (const char *const *t = template_paths; *t; t++) {
        size_t n = strlen(*t);

        if ((*t)[n - 1] == '*' ? strncmp(path, *t, n - 1) == 0 && path[n - 1] != '\0'
                               : strcmp(path, *t) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Every {{path}} of a webhook template names a field of the v1 body:
 * sinks/ would render an unknown one as "" on every page, silently.
 */
static vg_err_t check_template(const char *tpl, const char *sink, const struct vg_ynode *v,
                               char *errstr, size_t errstr_size)
{
    for (const char *p = strstr(tpl, "{{"); p; p = strstr(p, "{{")) {
        const char *end = strstr(p + 2, "}}");
        const char *a = p + 2;
        const char *b = end;
        char *path;
        const char *hint;
        vg_err_t err = VG_OK;

        if (!end) {
            return vg_ynode_error(v, errstr, errstr_size, "sink %s: template: unterminated {{",
                                  sink);
        }
        while (a < b && *a == ' ') {
            a++;
        }
        while (b > a && b[-1] == ' ') {
            b--;
        }
        path = vg_strndup(a, (size_t)(b - a));
        if (!template_path_known(path)) {
            hint = vg_yaml_suggest(path, template_paths);
            err = vg_ynode_error(v, errstr, errstr_size,
                                 "sink %s: template: unknown path \"%.60s\"%s%s%s; use id, sink, "
                                 "version, status, count or a field of incident, resource, "
                                 "transition or group (docs/webhook.md)",
                                 sink, path, hint ? " (did you mean \"" : "", hint ? hint : "",
                                 hint ? "\"?)" : "");
        }
        free(path);
        if (err) {
            return err;
        }
        p = end + 2;
    }
    return VG_OK;
}

/* "local@domain": one @, both sides present, no spaces, brackets or control characters. */
static bool valid_address(const char *a)
{
    const char *at = strchr(a, '@');

    if (!at || at == a || !at[1] || strchr(at + 1, '@')) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)a; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == ',' || *p == ';' ||
            *p == '"') {
            return false;
        }
    }
    return true;
}

/*
 * The keys of one sink type must not appear on another: an email `to` on a
 * webhook is a mistake that would otherwise pass silently.
 */
static vg_err_t check_type_keys(const struct vg_sink_config *s, const struct vg_ynode *n,
                                const char *name, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *key;
        const char *type;
    } owned[] = {{"from", "email"},           {"to", "email"},       {"cc", "email"},
                 {"username", "email"},       {"password", "email"}, {"starttls", "email"},
                 {"routing_key", "pagerduty"}};

    for (size_t i = 0; i < VG_ARRAY_LEN(owned); i++) {
        const struct vg_ynode *v = vg_ynode_get(n, owned[i].key);
        if (v && strcmp(s->type, owned[i].type) != 0) {
            return vg_ynode_error(v, errstr, errstr_size,
                                  "sink %s: %s applies to %s sinks only, not %s", name,
                                  owned[i].key, owned[i].type, s->type);
        }
    }
    return VG_OK;
}

/* One sink; every error recorded. s->broken when there was any. */
static void load_sink(struct vg_sink_config *s, const char *name, const struct vg_ynode *n,
                      struct cfg_load *ld)
{
    const char *const *types = sink_types;
    const struct vg_ynode *type = vg_ynode_get(n, "type");
    /* The type decides what `url` may be, wherever it stands in the mapping. */
    bool email = type && type->kind == VG_YNODE_SCALAR && !strcmp(type->str, "email");
    const char *base_dir = ld->base_dir;
    char *errstr = ld->msg;
    size_t errstr_size = sizeof(ld->msg);
    vg_err_t first = VG_OK;
    vg_err_t err;

    s->name = vg_strdup(name);
    s->timeout_ms = 10000;
    s->connect_timeout_ms = 5000;
    s->max_attempts = 5;
    s->max_age_ms = 24LL * 3600 * 1000;
    if (!type) {
        first =
            keep(ld, vg_ynode_error(n, errstr, errstr_size, "sink %s: missing key \"type\"", name));
    }
    for (size_t i = 0; i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;

        err = VG_OK;
        if (!key_ok(ld, n, i, sink_keys)) {
            first = VG_ERR_INVALID;
            continue;
        }
        if (!strcmp(key, "type")) {
            bool known = false;
            err = set_string(&s->type, v, errstr, errstr_size);
            for (size_t t = 0; !err && types[t]; t++) {
                known = known || !strcmp(s->type, types[t]);
            }
            if (!err && !known) {
                const char *hint = vg_yaml_suggest(s->type, types);

                err = vg_ynode_error(v, errstr, errstr_size,
                                     "unknown sink type \"%s\" (%s%s%sexpected webhook, slack, "
                                     "alertmanager, kafka, console, teams, email or "
                                     "pagerduty)",
                                     s->type, hint ? "did you mean \"" : "", hint ? hint : "",
                                     hint ? "\"? " : "");
                free(s->type);
                s->type = NULL;
            }
        } else if (!strcmp(key, "url") || !strcmp(key, "webhook_url")) {
            /* A secret: never echo it in an error. */
            char **dst = !strcmp(key, "url") ? &s->url : &s->webhook_url;
            err = set_secret(dst, v, name, key, base_dir, errstr, errstr_size);
            if (!err && email && !strcmp(key, "url")) {
                if (strncmp(*dst, "smtp://", 7) != 0 && strncmp(*dst, "smtps://", 8) != 0) {
                    err = vg_ynode_error(v, errstr, errstr_size,
                                         "sink %s: url must start with smtp:// or smtps://", name);
                }
            } else if (!err && !is_http_url(*dst)) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "sink %s: %s must start with http:// or https://", name, key);
            }
        } else if (!strcmp(key, "token") || !strcmp(key, "username") || !strcmp(key, "password") ||
                   !strcmp(key, "routing_key")) {
            char **dst = !strcmp(key, "token")      ? &s->token
                         : !strcmp(key, "username") ? &s->username
                         : !strcmp(key, "password") ? &s->password
                                                    : &s->routing_key;
            err = set_secret(dst, v, name, key, base_dir, errstr, errstr_size);
        } else if (!strcmp(key, "from")) {
            err = set_string(&s->from, v, errstr, errstr_size);
            if (!err && !valid_address(s->from)) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "sink %s: from: expected an address like vigil@example.com",
                                     name);
            }
        } else if (!strcmp(key, "to") || !strcmp(key, "cc")) {
            char ***dst = !strcmp(key, "to") ? &s->to : &s->cc;
            size_t *n_dst = !strcmp(key, "to") ? &s->n_to : &s->n_cc;
            err = set_strv(dst, n_dst, v, errstr, errstr_size);
            for (size_t k = 0; !err && k < *n_dst; k++) {
                if (!valid_address((*dst)[k])) {
                    const struct vg_ynode *at = v->kind == VG_YNODE_SEQ ? v->items[k] : v;
                    err = vg_ynode_error(at, errstr, errstr_size,
                                         "sink %s: %s: \"%s\" is not an address like "
                                         "oncall@example.com",
                                         name, key, (*dst)[k]);
                }
            }
        } else if (!strcmp(key, "starttls")) {
            err = set_string(&s->starttls, v, errstr, errstr_size);
            if (!err && strcmp(s->starttls, "required") != 0 &&
                strcmp(s->starttls, "optional") != 0 && strcmp(s->starttls, "never") != 0) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "sink %s: starttls must be required, optional or never", name);
            }
        } else if (!strcmp(key, "secret")) {
            err = set_strv(&s->secrets, &s->n_secrets, v, errstr, errstr_size);
            for (size_t k = 0; !err && k < s->n_secrets; k++) {
                err = resolve_secret(&s->secrets[k], v, name, key, base_dir, errstr, errstr_size);
            }
        } else if (!strcmp(key, "headers")) {
            err = set_kv(&s->headers, &s->n_headers, v, errstr, errstr_size);
        } else if (!strcmp(key, "properties")) {
            err = set_kv(&s->properties, &s->n_properties, v, errstr, errstr_size);
        } else if (!strcmp(key, "timeout")) {
            err = vg_ynode_duration(v, &s->timeout_ms, errstr, errstr_size);
        } else if (!strcmp(key, "connect_timeout")) {
            err = vg_ynode_duration(v, &s->connect_timeout_ms, errstr, errstr_size);
        } else if (!strcmp(key, "max_age")) {
            err = vg_ynode_duration(v, &s->max_age_ms, errstr, errstr_size);
            if (!err && s->max_age_ms <= 0) {
                err = vg_ynode_error(v, errstr, errstr_size, "max_age must be positive");
            }
        } else if (!strcmp(key, "max_attempts")) {
            err = set_int(&s->max_attempts, v, 1, 1000, errstr, errstr_size);
        } else if (!strcmp(key, "burst")) {
            err = set_int(&s->burst, v, 1, 100000, errstr, errstr_size);
        } else if (!strcmp(key, "rate")) {
            err = set_rate(&s->rate_per_s, v, errstr, errstr_size);
        } else if (!strcmp(key, "ca_file") || !strcmp(key, "client_cert") ||
                   !strcmp(key, "client_key")) {
            char **dst = !strcmp(key, "ca_file")       ? &s->ca_file
                         : !strcmp(key, "client_cert") ? &s->client_cert
                                                       : &s->client_key;
            err = set_string(dst, v, errstr, errstr_size);
            if (!err && (*dst)[0] != '/' && base_dir) {
                char *abs = vg_asprintf("%s/%s", base_dir, *dst);
                free(*dst);
                *dst = abs;
            }
        } else if (!strcmp(key, "proxy")) {
            err = set_secret(&s->proxy, v, name, key, base_dir, errstr, errstr_size);
        } else if (!strcmp(key, "format")) {
            err = set_string(&s->format, v, errstr, errstr_size);
            if (!err && strcmp(s->format, "vigil") != 0 && strcmp(s->format, "alertmanager") != 0) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "sink %s: format must be vigil or alertmanager", name);
            }
        } else if (!strcmp(key, "template")) {
            err = set_string(&s->template, v, errstr, errstr_size);
            if (!err) {
                err = check_template(s->template, name, v, errstr, errstr_size);
            }
        } else if (!strcmp(key, "channel")) {
            err = set_string(&s->channel, v, errstr, errstr_size);
        } else if (!strcmp(key, "api_url") || !strcmp(key, "console_url")) {
            char **dst = !strcmp(key, "api_url") ? &s->api_url : &s->console_url;
            err = set_string(dst, v, errstr, errstr_size);
            if (!err && !is_http_url(*dst)) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "sink %s: %s must start with http:// or https://", name, key);
            }
        } else if (!strcmp(key, "topic")) {
            err = set_string(&s->topic, v, errstr, errstr_size);
        } else if (!strcmp(key, "brokers")) {
            err = set_string(&s->brokers, v, errstr, errstr_size);
        }
        if (keep(ld, err) != VG_OK) {
            first = err;
        }
    }
    err = VG_OK;
    if (!s->type) {
        /* already reported: missing or unknown */
    } else if ((!strcmp(s->type, "webhook") || !strcmp(s->type, "alertmanager")) && !s->url) {
        err = vg_ynode_error(n, errstr, errstr_size, "sink %s: a%s %s needs \"url\"", name,
                             s->type[0] == 'a' ? "n" : "", s->type);
    } else if (!strcmp(s->type, "slack") && !s->webhook_url && !(s->token && s->channel)) {
        err = vg_ynode_error(n, errstr, errstr_size,
                             "sink %s: slack needs \"webhook_url\", or \"token\" and \"channel\"",
                             name);
    } else if (!strcmp(s->type, "teams") && !s->url) {
        err = vg_ynode_error(n, errstr, errstr_size,
                             "sink %s: teams needs \"url\" (the channel's Workflows webhook URL)",
                             name);
    } else if (email && (!s->url || !s->from || s->n_to == 0)) {
        err =
            vg_ynode_error(n, errstr, errstr_size,
                           "sink %s: email needs \"url\", \"from\" and at least one \"to\"", name);
    } else if (email && (s->username != NULL) != (s->password != NULL)) {
        err = vg_ynode_error(n, errstr, errstr_size, "sink %s: username and password go together",
                             name);
    } else if (!strcmp(s->type, "pagerduty") && !s->routing_key) {
        err = vg_ynode_error(n, errstr, errstr_size, "sink %s: pagerduty needs \"routing_key\"",
                             name);
    } else if (!strcmp(s->type, "kafka") && !s->topic) {
        err = vg_ynode_error(n, errstr, errstr_size, "sink %s: kafka needs \"topic\"", name);
    } else if (!strcmp(s->type, "console")) {
        s->max_attempts = 1;
    }
    if (!err && s->type) {
        err = check_type_keys(s, n, name, errstr, errstr_size);
    }
    if (keep(ld, err) != VG_OK) {
        first = err;
    }
    s->broken = first != VG_OK;
}

static void load_sinks(struct vg_config *cfg, const struct vg_ynode *n, struct cfg_load *ld)
{
    if (n->kind != VG_YNODE_MAP) {
        keep(ld, vg_ynode_error(n, ld->msg, sizeof(ld->msg),
                                "expected a mapping of sink name to sink, got %s",
                                vg_ynode_kind_name(n->kind)));
        return;
    }
    sinks_free(cfg->sinks, cfg->n_sinks);
    cfg->sinks = vg_calloc(n->n + 1, sizeof(*cfg->sinks));
    cfg->n_sinks = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct vg_ynode *v = n->pairs[i].value;
        struct vg_sink_config *s = &cfg->sinks[cfg->n_sinks++];

        s->line = n->pairs[i].line;
        s->col = n->pairs[i].col;
        if (v->kind != VG_YNODE_MAP) {
            keep(ld,
                 vg_ynode_error(v, ld->msg, sizeof(ld->msg), "sink %s: expected a mapping, got %s",
                                n->pairs[i].key, vg_ynode_kind_name(v->kind)));
            s->name = vg_strdup(n->pairs[i].key);
            s->broken = true;
            continue;
        }
        load_sink(s, n->pairs[i].key, v, ld);
    }
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

/* No control character in v: a history entry joins values with one (docs/state.md). */
static bool value_printable(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

/* decode.status_values / decode.runtime_values: non-empty printable values that fit VG_VALUE_MAX.
 */
static vg_err_t load_values(char ***dst, size_t *n_dst, const struct vg_ynode *n, char *errstr,
                            size_t errstr_size)
{
    char **v;
    size_t count;
    vg_err_t err = vg_ynode_strings(n, &v, &count, errstr, errstr_size);

    if (err) {
        return err;
    }
    for (size_t i = 0; !err && i < count; i++) {
        if (!v[i][0] || strlen(v[i]) >= VG_VALUE_MAX) {
            err = vg_ynode_error(n, errstr, errstr_size, "values must be 1..%d bytes long",
                                 VG_VALUE_MAX - 1);
        } else if (!value_printable(v[i])) {
            err = vg_ynode_error(n, errstr, errstr_size,
                                 "values must be printable: no control characters");
        }
    }
    if (!err && count == 0) {
        err = vg_ynode_error(n, errstr, errstr_size, "at least one value is needed");
    }
    if (!err) {
        vg_decode_config_set_values(dst, n_dst, (const char *const *)v, count);
    }
    vg_strv_free(v);
    return err;
}

static vg_err_t set_size(size_t *dst, const struct vg_ynode *n, int64_t min, int64_t max,
                         char *errstr, size_t errstr_size)
{
    int64_t v;
    vg_err_t err = vg_ynode_int(n, min, max, &v, errstr, errstr_size);
    if (!err) {
        *dst = (size_t)v;
    }
    return err;
}

static vg_err_t load_decode_limits(struct vg_decode_config *d, const struct vg_ynode *n,
                                   char *errstr, size_t errstr_size)
{
    static const char *const keys[] = {
        "max_message_bytes", "max_depth", "max_name_bytes", "max_message_text_bytes", "max_labels",
        "max_clock_skew_ms", NULL};
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    for (size_t i = 0; !err && i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        if (!strcmp(key, "max_message_bytes")) {
            err = set_size(&d->max_message_bytes, v, 64, 64 * 1024 * 1024, errstr, errstr_size);
        } else if (!strcmp(key, "max_depth")) {
            err = set_int(&d->max_depth, v, 2, 512, errstr, errstr_size);
        } else if (!strcmp(key, "max_name_bytes")) {
            err = set_size(&d->max_name_bytes, v, 16, 1024 * 1024, errstr, errstr_size);
        } else if (!strcmp(key, "max_message_text_bytes")) {
            err =
                set_size(&d->max_message_text_bytes, v, 16, 16 * 1024 * 1024, errstr, errstr_size);
        } else if (!strcmp(key, "max_labels")) {
            err = set_size(&d->max_labels, v, 1, 100000, errstr, errstr_size);
        } else if (!strcmp(key, "max_clock_skew_ms")) {
            /* 0 turns the future-time check off; at most a year */
            err = vg_ynode_int(v, 0, INT64_C(365) * 24 * 3600 * 1000, &d->max_clock_skew_ms, errstr,
                               errstr_size);
        }
    }
    return err;
}

static vg_err_t load_decode_k8s(struct vg_decode_config *d, const struct vg_ynode *n, char *errstr,
                                size_t errstr_size)
{
    static const char *const keys[] = {"labels", "workspace_from", "default_type", NULL};
    static const char *const label_keys[] = {"type", "name", "version", "owner", NULL};
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    for (size_t i = 0; !err && i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        if (!strcmp(key, "workspace_from")) {
            err = set_string(&d->workspace_from, v, errstr, errstr_size);
        } else if (!strcmp(key, "default_type")) {
            err = set_string(&d->default_type, v, errstr, errstr_size);
            if (!err && strchr(d->default_type, ':')) {
                err = vg_ynode_error(v, errstr, errstr_size, "must not contain ':'");
            }
        } else if (!strcmp(key, "labels") && v->kind != VG_YNODE_NULL) {
            if (v->kind != VG_YNODE_MAP) {
                err = vg_ynode_error(v, errstr, errstr_size, "expected a mapping, got %s",
                                     vg_ynode_kind_name(v->kind));
                break;
            }
            err = vg_ynode_check_keys(v, label_keys, errstr, errstr_size);
            for (size_t j = 0; !err && j < v->n; j++) {
                const char *lk = v->pairs[j].key;
                char **dst = !strcmp(lk, "type")      ? &d->label_type
                             : !strcmp(lk, "name")    ? &d->label_name
                             : !strcmp(lk, "version") ? &d->label_version
                                                      : &d->label_owner;
                err = set_string(dst, v->pairs[j].value, errstr, errstr_size);
            }
        }
    }
    return err;
}

static vg_err_t load_decode(struct vg_decode_config *d, const struct vg_ynode *n, char *errstr,
                            size_t errstr_size)
{
    static const char *const keys[] = {"limits",     "status_values", "runtime_values",
                                       "kubernetes", "threads",       NULL};
    vg_err_t err = vg_ynode_check_keys(n, keys, errstr, errstr_size);
    for (size_t i = 0; !err && i < n->n; i++) {
        const char *key = n->pairs[i].key;
        const struct vg_ynode *v = n->pairs[i].value;
        if (v->kind == VG_YNODE_NULL) {
            continue;
        }
        if (!strcmp(key, "threads")) {
            /* 0: decode on the pipeline thread alone; absent: sized to the machine (engine/) */
            err = set_int(&d->threads, v, 0, VG_DECODE_THREADS_MAX, errstr, errstr_size);
        } else if (!strcmp(key, "status_values")) {
            err = load_values(&d->status_values, &d->n_status_values, v, errstr, errstr_size);
        } else if (!strcmp(key, "runtime_values")) {
            err = load_values(&d->runtime_values, &d->n_runtime_values, v, errstr, errstr_size);
        } else if (v->kind != VG_YNODE_MAP) {
            err = vg_ynode_error(v, errstr, errstr_size, "expected a mapping, got %s",
                                 vg_ynode_kind_name(v->kind));
        } else if (!strcmp(key, "limits")) {
            err = load_decode_limits(d, v, errstr, errstr_size);
        } else if (!strcmp(key, "kubernetes")) {
            err = load_decode_k8s(d, v, errstr, errstr_size);
        }
    }
    return err;
}

/* http.allowed_hosts: names without a port, stored lower case ("*" alone accepts any). */
static vg_err_t set_allowed_hosts(struct vg_http_config *h, const struct vg_ynode *n, char *errstr,
                                  size_t errstr_size)
{
    vg_err_t err = set_strv(&h->allowed_hosts, &h->n_allowed_hosts, n, errstr, errstr_size);

    for (size_t i = 0; !err && i < h->n_allowed_hosts; i++) {
        char *name = h->allowed_hosts[i];
        bool v6 = name[0] == '[' && name[strlen(name) - 1] == ']';
        for (char *p = name; *p; p++) {
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        }
        if ((!v6 && strchr(name, ':')) || strpbrk(name, " /\\@?#")) {
            err = vg_ynode_error(n, errstr, errstr_size,
                                 "\"%s\": expected a host name without a port (localhost, "
                                 "vigil.example.com, 10.0.0.5, [::1]) or \"*\"",
                                 name);
        }
    }
    if (!err && h->n_allowed_hosts == 0) {
        err = vg_ynode_error(n, errstr, errstr_size,
                             "at least one name is needed (\"*\" accepts any Host)");
    }
    return err;
}

/*
 * `http:`: listen "host:port", token (a secret), console on/off, the Host
 * names accepted and the connection limits.
 */
static vg_err_t load_http_key(void *dst, const char *key, const struct vg_ynode *v,
                              const char *base_dir, char *errstr, size_t errstr_size)
{
    struct vg_http_config *h = dst;
    vg_err_t err = VG_OK;

    if (!strcmp(key, "listen")) {
        const char *colon;
        err = set_string(&h->listen, v, errstr, errstr_size);
        colon = err ? NULL : strrchr(h->listen, ':');
        if (!err) {
            int64_t port;
            if (!colon || !vg_parse_i64(colon + 1, &port) || port < 0 || port > 65535 ||
                (h->listen[0] == '[' && (colon == h->listen || colon[-1] != ']'))) {
                err = vg_ynode_error(v, errstr, errstr_size,
                                     "expected host:port (e.g. 127.0.0.1:8089, [::1]:8089, "
                                     "0.0.0.0:8089)");
            }
        }
        h->listen_set = true;
    } else if (!strcmp(key, "token")) {
        /* A secret: never echo it in an error. */
        err = set_string(&h->token, v, errstr, errstr_size);
        if (!err) {
            err = read_secret(&h->token, v, "http.token", base_dir, errstr, errstr_size);
        }
    } else if (!strcmp(key, "console")) {
        err = vg_ynode_bool(v, &h->console, errstr, errstr_size);
    } else if (!strcmp(key, "allowed_hosts")) {
        err = set_allowed_hosts(h, v, errstr, errstr_size);
    }
    return err;
}

static void load_http(struct vg_http_config *h, const struct vg_ynode *n, struct cfg_load *ld)
{
    static const char *const keys[] = {"listen",
                                       "token",
                                       "console",
                                       "allowed_hosts",
                                       "max_connections",
                                       "max_connections_per_ip",
                                       "request_timeout_ms",
                                       NULL};

    load_keys(ld, "http", n, keys, load_http_key, h);
}

static const char *const root_keys[] = {"kafka",  "redis", "rules", "sinks",    "health",
                                        "decode", "http",  "log",   "dispatch", NULL};

static vg_err_t load_dispatch_key(void *dst, const char *key, const struct vg_ynode *v,
                                  const char *base_dir, char *errstr, size_t errstr_size)
{
    struct vg_dispatch_config *dc = dst;
    int64_t ms = 0;
    vg_err_t err;

    (void)base_dir; /* no paths here */
    if (!strcmp(key, "idle_poll_ms")) {
        err = vg_ynode_int(v, VG_DISPATCH_IDLE_POLL_MS_MIN, VG_DISPATCH_IDLE_POLL_MS_MAX, &ms,
                           errstr, errstr_size);
        if (err == VG_OK) {
            dc->idle_poll_ms = ms;
        }
        return err;
    }
    err = vg_ynode_duration(v, &ms, errstr, errstr_size);
    if (!err && (ms < VG_DISPATCH_CLAIM_IDLE_MS_MIN || ms > VG_DISPATCH_CLAIM_IDLE_MS_MAX)) {
        err = vg_ynode_error(v, errstr, errstr_size,
                             "dispatch.claim_idle: %s is out of range [1s, 1h]", v->str);
    }
    if (err == VG_OK) {
        dc->claim_idle_ms = ms;
    }
    return err;
}

/* `dispatch:` claim_idle, a duration from 1s to 1h; idle_poll_ms, milliseconds from 10 to 1h. */
static void load_dispatch(struct vg_dispatch_config *dc, const struct vg_ynode *n,
                          struct cfg_load *ld)
{
    static const char *const keys[] = {"claim_idle", "idle_poll_ms", NULL};

    load_keys(ld, "dispatch", n, keys, load_dispatch_key, dc);
}

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static vg_err_t load_log_key(void *dst, const char *key, const struct vg_ynode *v,
                             const char *base_dir, char *errstr, size_t errstr_size)
{
    struct vg_log_config *l = dst;
    const char *const *allowed = !strcmp(key, "format") ? log_formats : log_levels;
    const char *str;
    vg_err_t err;
    size_t k;

    (void)base_dir; /* no paths here */
    err = vg_ynode_string(v, &str, errstr, errstr_size);
    for (k = 0; !err && allowed[k] && strcmp(allowed[k], str) != 0; k++) {
    }
    if (!err && !allowed[k]) {
        const char *hint = vg_yaml_suggest(str, allowed);

        err = vg_ynode_error(
            v, errstr, errstr_size, "log.%s: unknown value \"%s\"%s%s%s; expected %s", key, str,
            hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "",
            allowed == log_formats ? "text or json" : "error, warn, info or debug");
    }
    if (err != VG_OK) {
        return err;
    }
    if (allowed == log_formats) {
        l->json = k == 1;
    } else {
        l->level = (enum vg_log_level)k;
    }
    return VG_OK;
}

/* `log:` format text|json, level error|warn|info|debug. */
static void load_log(struct vg_log_config *l, const struct vg_ynode *n, struct cfg_load *ld)
{
    static const char *const keys[] = {"format", "level", NULL};

    load_keys(ld, "log", n, keys, load_log_key, l);
}

static void load_root(struct vg_config *cfg, const struct vg_ynode *root, struct cfg_load *ld)
{
    char *errstr = ld->msg;
    size_t errstr_size = sizeof(ld->msg);

    for (size_t i = 0; i < root->n; i++) {
        const char *key = root->pairs[i].key;
        const struct vg_ynode *v = root->pairs[i].value;
        vg_err_t err = VG_OK;

        if (!key_ok(ld, root, i, root_keys)) {
            continue;
        }
        if (v->kind == VG_YNODE_NULL && strcmp(key, "rules") != 0) {
            continue; /* "kafka:" with nothing under it: all defaults */
        }
        if (!strcmp(key, "kafka")) {
            load_kafka(&cfg->kafka, v, ld);
        } else if (!strcmp(key, "redis")) {
            load_redis(&cfg->redis, v, ld);
        } else if (!strcmp(key, "rules")) {
            if (v->kind == VG_YNODE_NULL) {
                vg_strv_free(cfg->rules);
                cfg->rules = vg_calloc(1, sizeof(char *));
                cfg->n_rules = 0;
                continue;
            }
            err = set_strv(&cfg->rules, &cfg->n_rules, v, errstr, errstr_size);
            if (err) {
                /* not the default rules in their place: `vigil check` would check those */
                vg_strv_free(cfg->rules);
                cfg->rules = vg_calloc(1, sizeof(char *));
                cfg->n_rules = 0;
            }
            for (size_t r = 0; !err && r < cfg->n_rules; r++) {
                if (cfg->rules[r][0] != '/' && ld->base_dir) {
                    char *abs = vg_asprintf("%s/%s", ld->base_dir, cfg->rules[r]);
                    free(cfg->rules[r]);
                    cfg->rules[r] = abs;
                }
            }
        } else if (!strcmp(key, "sinks")) {
            load_sinks(cfg, v, ld);
        } else if (!strcmp(key, "health")) {
            err = load_health(&cfg->health, v, errstr, errstr_size);
        } else if (!strcmp(key, "decode")) {
            err = load_decode(&cfg->decode, v, errstr, errstr_size);
        } else if (!strcmp(key, "http")) {
            load_http(&cfg->http, v, ld);
        } else if (!strcmp(key, "log")) {
            load_log(&cfg->log, v, ld);
        } else if (!strcmp(key, "dispatch")) {
            load_dispatch(&cfg->dispatch, v, ld);
        }
        keep(ld, err);
    }
}

/*
 * ${NAME} in the scalars under `n`, a subtree loaded without substitution:
 * the rules of core/yaml.c's VG_YAML_ENV ("$${" is a literal "${"; an
 * unset NAME is an error at the value, naming NAME, never a value).
 */
static vg_err_t substitute_env(struct vg_ynode *n, char *errstr, size_t errstr_size)
{
    struct vg_buf b = {0};
    const char *p;

    for (size_t i = 0; i < n->n; i++) {
        struct vg_ynode *child = n->kind == VG_YNODE_MAP ? n->pairs[i].value : n->items[i];
        vg_err_t err = substitute_env(child, errstr, errstr_size);

        if (err) {
            return err;
        }
    }
    if (n->kind != VG_YNODE_SCALAR || !strchr(n->str, '$')) {
        return VG_OK;
    }
    for (p = n->str; *p;) {
        const char *end = p[0] == '$' && p[1] == '{' ? strchr(p + 2, '}') : NULL;
        char *name;
        const char *val;

        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            vg_buf_puts(&b, "${");
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            vg_buf_putc(&b, *p++);
            continue;
        }
        if (!end || end == p + 2 || end - (p + 2) >= 256) {
            vg_buf_fini(&b);
            vg_ynode_error(n, errstr, errstr_size, "%s",
                           end ? "bad environment variable reference" : "unterminated ${ in value");
            return VG_ERR_PARSE;
        }
        name = vg_strndup(p + 2, (size_t)(end - (p + 2)));
        val = getenv(name);
        if (!val) {
            vg_buf_fini(&b);
            vg_ynode_error(n, errstr, errstr_size, "environment variable %s is not set", name);
            free(name);
            return VG_ERR_PARSE;
        }
        free(name);
        vg_buf_puts(&b, val);
        p = end + 1;
    }
    free(n->str);
    n->str = vg_buf_steal(&b);
    return VG_OK;
}

/*
 * Only `redis:` out of a document loaded without ${NAME} substitution:
 * the top-level keys are still checked, the other sections are not read.
 */
static void load_root_redis(struct vg_config *cfg, struct vg_ynode *root, struct cfg_load *ld)
{
    struct vg_ynode *redis = vg_ynode_get(root, "redis");

    for (size_t i = 0; i < root->n; i++) {
        key_ok(ld, root, i, root_keys);
    }
    if (redis && redis->kind != VG_YNODE_NULL) {
        if (keep(ld, substitute_env(redis, ld->msg, sizeof(ld->msg))) == VG_OK) {
            load_redis(&cfg->redis, redis, ld);
        }
    }
}

/* ---- environment overrides: VIGIL_<KEY PATH> ------------------------------ */

enum env_kind { ENV_SCALAR, ENV_LIST, ENV_MAP };

/*
 * The keys an environment variable can set (besides those of each sink
 * named in the file): VIGIL_ + the path upper-cased, '.' as '_'. A list
 * is comma-separated; a map (kafka.properties) takes one variable per
 * entry, VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD -> sasl.password.
 */
static const struct {
    const char *path;
    enum env_kind kind;
} env_keys[] = {
    {"kafka.brokers", ENV_SCALAR},
    {"kafka.group", ENV_SCALAR},
    {"kafka.topics", ENV_LIST},
    {"kafka.dlq_topic", ENV_SCALAR},
    {"kafka.properties", ENV_MAP},
    {"kafka.partitions", ENV_SCALAR},
    {"kafka.batch_size", ENV_SCALAR},
    {"kafka.batch_ms", ENV_SCALAR},
    {"kafka.batch_commit_ms", ENV_SCALAR},
    {"kafka.batch_overlap_parts", ENV_SCALAR},
    {"kafka.prefetch_mb", ENV_SCALAR},
    {"redis.url", ENV_SCALAR},
    {"redis.prefix", ENV_SCALAR},
    {"redis.layout", ENV_SCALAR},
    {"redis.data_dir", ENV_SCALAR},
    {"redis.cluster", ENV_SCALAR},
    {"redis.wait_replicas", ENV_SCALAR},
    {"redis.wait_timeout_ms", ENV_SCALAR},
    {"redis.commit_connections", ENV_SCALAR},
    {"rules", ENV_LIST},
    {"health.batch_types", ENV_LIST},
    {"decode.limits.max_message_bytes", ENV_SCALAR},
    {"decode.limits.max_depth", ENV_SCALAR},
    {"decode.limits.max_name_bytes", ENV_SCALAR},
    {"decode.limits.max_message_text_bytes", ENV_SCALAR},
    {"decode.limits.max_labels", ENV_SCALAR},
    {"decode.limits.max_clock_skew_ms", ENV_SCALAR},
    {"decode.threads", ENV_SCALAR},
    {"decode.status_values", ENV_LIST},
    {"decode.runtime_values", ENV_LIST},
    {"decode.kubernetes.workspace_from", ENV_SCALAR},
    {"decode.kubernetes.default_type", ENV_SCALAR},
    {"decode.kubernetes.labels.type", ENV_SCALAR},
    {"decode.kubernetes.labels.name", ENV_SCALAR},
    {"decode.kubernetes.labels.version", ENV_SCALAR},
    {"decode.kubernetes.labels.owner", ENV_SCALAR},
    {"http.listen", ENV_SCALAR},
    {"http.token", ENV_SCALAR},
    {"http.console", ENV_SCALAR},
    {"http.allowed_hosts", ENV_LIST},
    {"http.max_connections", ENV_SCALAR},
    {"http.max_connections_per_ip", ENV_SCALAR},
    {"http.request_timeout_ms", ENV_SCALAR},
    {"log.format", ENV_SCALAR},
    {"log.level", ENV_SCALAR},
    {"dispatch.claim_idle", ENV_SCALAR},
    {"dispatch.idle_poll_ms", ENV_SCALAR},
};

/* "VIGIL_" + `path` upper-cased, every other character than a letter or digit as '_'. */
static char *env_name(const char *path)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "VIGIL_");
    for (const char *p = path; *p; p++) {
        char c = *p;

        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 32);
        } else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            c = '_';
        }
        vg_buf_putc(&b, c);
    }
    return vg_buf_steal(&b);
}

/* The node file name of an override, kept until the load ends. */
static const char *env_file(struct cfg_load *ld, const char *var)
{
    ld->env_names = vg_realloc(ld->env_names, (ld->n_env_names + 1) * sizeof(char *));
    ld->env_names[ld->n_env_names] = vg_asprintf("$%s", var);
    return ld->env_names[ld->n_env_names++];
}

/* The mapping at `path` under `root` ("a.b": root.a.b), made where missing or null. NULL when
 * something else is in the way (the loader reports that). */
static struct vg_ynode *env_map_at(struct vg_ynode *root, const char *path, size_t len)
{
    struct vg_ynode *cur = root;
    const char *p = path;

    while (p < path + len) {
        size_t n = strcspn(p, ".");
        char *key;
        struct vg_ynode *next;

        if (p + n > path + len) {
            n = (size_t)(path + len - p);
        }
        key = vg_strndup(p, n);
        next = vg_ynode_get(cur, key);
        if (!next || next->kind == VG_YNODE_NULL) {
            next = vg_ynode_new(VG_YNODE_MAP, cur->file, 0, NULL);
            vg_ynode_set(cur, key, next);
        }
        free(key);
        if (next->kind != VG_YNODE_MAP) {
            return NULL;
        }
        cur = next;
        p += n + 1;
    }
    return cur;
}

/* A SCALAR, or for a list a SEQ of the comma-separated (trimmed) values. */
static struct vg_ynode *env_value(enum env_kind kind, const char *file, const char *val)
{
    struct vg_ynode *seq;
    const char *p = val;

    if (kind != ENV_LIST) {
        return vg_ynode_new(VG_YNODE_SCALAR, file, 0, val);
    }
    seq = vg_ynode_new(VG_YNODE_SEQ, file, 0, NULL);
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *a = p;
        const char *b = p + n;
        char *item;

        while (a < b && (*a == ' ' || *a == '\t')) {
            a++;
        }
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) {
            b--;
        }
        item = vg_strndup(a, (size_t)(b - a));
        if (*item) {
            seq->items = vg_realloc(seq->items, (seq->n + 1) * sizeof(*seq->items));
            seq->items[seq->n++] = vg_ynode_new(VG_YNODE_SCALAR, file, 0, item);
        }
        free(item);
        p += n + (p[n] == ',' ? 1 : 0);
    }
    return seq;
}

/* Set `path` (its last part a key of the map before it) from variable `var`'s value. */
static void env_set(struct cfg_load *ld, struct vg_ynode *root, const char *path,
                    enum env_kind kind, const char *var, const char *val)
{
    const char *dot = strrchr(path, '.');
    struct vg_ynode *map = dot ? env_map_at(root, path, (size_t)(dot - path)) : root;

    if (map) {
        vg_ynode_set(map, dot ? dot + 1 : path, env_value(kind, env_file(ld, var), val));
    }
}

/*
 * Entries of a map from VIGIL_<PATH>_<NAME> variables: NAME matches an
 * entry already there when it is its env form; a new one is lower-cased
 * with `sep` for '_' ('.' for librdkafka properties, '-' for headers).
 */
static void env_set_map(struct cfg_load *ld, struct vg_ynode *root, const char *path, char sep)
{
    extern char **environ;
    char *prefix = env_name(path);
    size_t plen = strlen(prefix);

    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        char *var;
        char *key = NULL;
        struct vg_ynode *map;

        if (!eq || strncmp(*e, prefix, plen) != 0 || (*e)[plen] != '_' || eq == *e + plen + 1) {
            continue;
        }
        var = vg_strndup(*e, (size_t)(eq - *e));
        map = env_map_at(root, path, strlen(path));
        for (size_t i = 0; map && !key && i < map->n; i++) {
            char *form = env_name(map->pairs[i].key);

            if (!strcmp(form + 6, var + plen + 1)) {
                key = vg_strdup(map->pairs[i].key);
            }
            free(form);
        }
        if (!key) {
            key = vg_strdup(var + plen + 1);
            for (char *k = key; *k; k++) {
                *k = *k == '_' ? sep : (char)(*k >= 'A' && *k <= 'Z' ? *k + 32 : *k);
            }
        }
        if (map) {
            vg_ynode_set(map, key, vg_ynode_new(VG_YNODE_SCALAR, env_file(ld, var), 0, eq + 1));
        }
        free(key);
        free(var);
    }
    free(prefix);
}

/* Every VIGIL_* override set in the environment, into the tree (env over file). */
static void apply_env(struct cfg_load *ld, struct vg_ynode *root)
{
    struct vg_ynode *sinks = vg_ynode_get(root, "sinks");

    for (size_t i = 0; i < VG_ARRAY_LEN(env_keys); i++) {
        char *var = env_name(env_keys[i].path);
        const char *val = getenv(var);

        if (env_keys[i].kind == ENV_MAP) {
            env_set_map(ld, root, env_keys[i].path, '.');
        } else if (val) {
            env_set(ld, root, env_keys[i].path, env_keys[i].kind, var, val);
        }
        free(var);
    }
    /* the sinks named in the file: VIGIL_SINKS_<NAME>_<KEY> */
    for (size_t i = 0; sinks && sinks->kind == VG_YNODE_MAP && i < sinks->n; i++) {
        if (sinks->pairs[i].value->kind != VG_YNODE_MAP) {
            continue;
        }
        for (const char *const *k = sink_keys; *k; k++) {
            char *path = vg_asprintf("sinks.%s.%s", sinks->pairs[i].key, *k);
            char *var = env_name(path);
            const char *val = getenv(var);

            if (!strcmp(*k, "headers") || !strcmp(*k, "properties")) {
                env_set_map(ld, root, path, !strcmp(*k, "headers") ? '-' : '.');
            } else if (val) {
                struct vg_ynode *sink = sinks->pairs[i].value;

                vg_ynode_set(sink, *k,
                             env_value(!strcmp(*k, "secret") ? ENV_LIST : ENV_SCALAR,
                                       env_file(ld, var), val));
            }
            free(var);
            free(path);
        }
    }
}

/*
 * vg_config_load_file (`path` NULL: the defaults), or with `redis_only`
 * vg_config_load_redis; with `buf` the text of `path` is buf[0..len)
 * rather than read from it (vg_config_load_string). The environment's
 * overrides on top; `ld` says where errors go.
 */
static vg_err_t load_file(struct vg_config *cfg, const char *path, const char *buf, size_t len,
                          bool redis_only, struct cfg_load *ld)
{
    struct vg_ydoc doc;
    vg_err_t err;
    char *base_dir = NULL;
    const char *slash;
    int flags = redis_only ? 0 : VG_YAML_ENV;

    if (path && buf) {
        err = vg_yaml_load_string(&doc, path, buf, len, flags, ld->msg, sizeof(ld->msg));
    } else if (path) {
        err = vg_yaml_load_file(&doc, path, flags, ld->msg, sizeof(ld->msg));
    } else {
        err = vg_yaml_load_string(&doc, "(defaults)", "", 0, 0, ld->msg, sizeof(ld->msg));
    }
    if (err) {
        vg_ydoc_fini(&doc);
        return keep(ld, err);
    }
    if (path) {
        free(cfg->path);
        cfg->path = vg_strdup(path);
        slash = strrchr(path, '/');
        if (slash) {
            base_dir = vg_strndup(path, (size_t)(slash - path) + (slash == path ? 1 : 0));
        }
    }
    ld->cfg = cfg;
    ld->base_dir = base_dir;
    if (!doc.root || doc.root->kind == VG_YNODE_NULL) {
        /* an empty file: all defaults (and the environment's overrides) */
        vg_ynode_free(doc.root);
        doc.root = vg_ynode_new(VG_YNODE_MAP, doc.file, 1, NULL);
    }
    if (doc.root->kind != VG_YNODE_MAP) {
        keep(ld, vg_ynode_error(doc.root, ld->msg, sizeof(ld->msg), "expected a mapping, got %s",
                                vg_ynode_kind_name(doc.root->kind)));
    } else {
        apply_env(ld, doc.root);
        if (redis_only) {
            load_root_redis(cfg, doc.root, ld);
        } else {
            load_root(cfg, doc.root, ld);
        }
    }
    ld->base_dir = NULL;
    free(base_dir);
    vg_ydoc_fini(&doc);
    for (size_t i = 0; i < ld->n_env_names; i++) {
        free(ld->env_names[i]);
    }
    free(ld->env_names);
    ld->env_names = NULL;
    ld->n_env_names = 0;
    return ld->err;
}

vg_err_t vg_config_load_file(struct vg_config *cfg, const char *path, char *errstr,
                             size_t errstr_size)
{
    struct cfg_load ld = {.errstr = errstr, .errstr_size = errstr_size};

    return load_file(cfg, path, NULL, 0, false, &ld);
}

vg_err_t vg_config_load_redis(struct vg_config *cfg, const char *path, char *errstr,
                              size_t errstr_size)
{
    struct cfg_load ld = {.errstr = errstr, .errstr_size = errstr_size};

    return load_file(cfg, path, NULL, 0, true, &ld);
}

vg_err_t vg_config_check(struct vg_config *cfg, const char *path,
                         void (*on_error)(void *ctx, const char *message), void *ctx)
{
    char first[1024];
    struct cfg_load ld = {
        .errstr = first, .errstr_size = sizeof(first), .on_error = on_error, .ctx = ctx};

    return load_file(cfg, path, NULL, 0, false, &ld);
}

vg_err_t vg_config_load(struct vg_config *cfg, const char *path, char *errstr, size_t errstr_size)
{
    struct cfg_load ld = {.errstr = errstr, .errstr_size = errstr_size};

    return load_file(cfg, path, NULL, 0, false, &ld);
}

vg_err_t vg_config_load_string(struct vg_config *cfg, const char *name, const char *buf, size_t len,
                               char *errstr, size_t errstr_size)
{
    struct cfg_load ld = {.errstr = errstr, .errstr_size = errstr_size};

    return load_file(cfg, name, buf, len, false, &ld);
}
