/*
 * vigil.yaml: loaded once by cli/ through vg_config_load_file(); every
 * module receives only its own plain sub-struct. docs/config.md documents
 * each key. Unknown keys and wrong types are errors with file:line:col;
 * ${NAME} in a value is replaced from the environment (unset = error).
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/err.h"
#include "vigil/event.h"
#include "vigil/log.h"

struct vg_kv {
    char *key;
    char *value;
};

struct vg_kafka_config {
    char *brokers; /* NULL: embedded mock cluster */
    char *group;   /* default "vigil" */
    char **topics; /* default ["vigil.events"] */
    size_t n_topics;
    enum vg_event_format *topic_formats; /* parallel to topics: `{name, format}` (default auto) */
    char *dlq_topic;                     /* default "vigil.dlq" */
    struct vg_kv *properties;            /* passed to librdkafka as strings */
    size_t n_properties;
    int partitions; /* topics created in the embedded cluster: default 4 */
    int batch_size; /* max messages per apply batch: default 5000 */
    int batch_ms;   /* max wait to fill a batch: default 50 */
    /* cut a batch into parts each estimated to take about this long to apply: default 0, off */
    int batch_commit_ms;
    /* cut a batch into this many parts and decode each while the one before commits: 0/1 off */
    int batch_overlap_parts;
    int prefetch_mb; /* librdkafka's prefetch budget (docs/config.md): <= 0 means the default */
};

/* kafka.prefetch_mb when unset: what librdkafka may hold fetched ahead of the batch loop. */
#define VG_KAFKA_PREFETCH_MB_DEFAULT 48

struct vg_redis_config {
    char *url;           /* NULL: embedded private redis-server */
    char *prefix;        /* default "vigil" */
    char *data_dir;      /* embedded redis-server's directory: default ".vigil" */
    int cache_resources; /* Resources the pipeline keeps in memory: default below */
    /* A Redis Cluster (docs/redis-cluster.md): `url` names any one node; every key
     * carries one hash tag, the prefix. */
    bool cluster;        /* default false */
    int wait_replicas;   /* commits wait for this many replicas (WAIT): default 0, none */
    int wait_timeout_ms; /* how long a commit waits for them: default 1000 */
    /* redis.layout (docs/state.md "Layouts"): false, "single": every key under the
     * prefix; true, "partitioned": every key a commit writes under its Kafka
     * partition's hash tag, so each partition is its own slot on a cluster. */
    bool partitioned;
    /* redis.commit_connections (docs/config.md): with the partitioned layout, the
     * connections a node's partitions commit on (a partition's lane: partition % this);
     * 1 to 64, default 4. Only the pipeline's state uses them (vg_state_commit_lanes_set);
     * readers keep one connection per node. */
    int commit_connections;
    /* Not a YAML key: redis.layout was given (in the file or $VIGIL_REDIS_LAYOUT). When not,
     * the commands that read (cli/) take the layout of the data they find. */
    bool layout_set;
    /* Not a YAML key: the hash tag on a cluster when the engine writes under a prefix that
     * extends the configured one (`vigil replay`'s <prefix>:replay:<ts>); NULL: the prefix.
     * Borrowed. */
    const char *tag;
};
#define VG_REDIS_WAIT_TIMEOUT_MS_DEFAULT 1000
#define VG_REDIS_COMMIT_CONNECTIONS_DEFAULT 4
#define VG_CACHE_RESOURCES_DEFAULT 50000

struct vg_sink_config {
    char *name;
    char *type; /* webhook, slack, alertmanager, kafka, console, teams, email, pagerduty */
    char *url;  /* webhook, teams: a secret, never logged unredacted; email: smtp(s)://host:port */
    struct vg_kv *headers;
    size_t n_headers;
    int64_t timeout_ms;         /* default 10000 */
    int64_t connect_timeout_ms; /* default 5000 */
    int max_attempts;           /* default 5 */
    /* docs/sinks.md. Secrets (url, webhook_url, token, secrets)
     * may be "${ENV}" or "file:/path" in the YAML; here they hold the value. */
    char **secrets; /* webhook: Standard Webhooks "whsec_..." signing secrets */
    size_t n_secrets;
    char *ca_file;      /* https: CA bundle instead of the system store */
    char *client_cert;  /* https: client certificate (PEM) */
    char *client_key;   /* https: its private key (PEM) */
    char *proxy;        /* proxy URL; NULL: none (the environment is never used) */
    double rate_per_s;  /* token bucket refill; 0: unlimited */
    int burst;          /* token bucket size; 0: default (max(1, rate)) */
    int64_t max_age_ms; /* give up on a page this long after it was written; default 24h */
    char *format;       /* webhook: "vigil" (v1, default) or "alertmanager" */
    char *template;     /* webhook: body template ({{path}} over the v1 body); NULL: v1 JSON */
    char *webhook_url;  /* slack: incoming webhook (a secret) */
    char *token;        /* slack: bot token (a secret) */
    char *channel;      /* slack: channel for chat.postMessage */
    char *api_url;      /* slack: Web API base, default https://slack.com/api */
    char *topic;        /* kafka: topic */
    char *brokers;      /* kafka: bootstrap servers; NULL: the kafka section's cluster */
    struct vg_kv *properties; /* kafka: librdkafka producer properties */
    size_t n_properties;
    char *console_url; /* base URL of the web console, for links; NULL: no links */
    size_t line, col;  /* of its name in the file; 0 for the default sink */
    bool broken;       /* loading it reported an error (vg_config_check goes on) */
    /* email (docs/sinks.md): the envelope and headers, SMTP AUTH, STARTTLS */
    char *from; /* email: From and the envelope sender */
    char **to;  /* email: To recipients (at least one) */
    size_t n_to;
    char **cc; /* email: Cc recipients */
    size_t n_cc;
    char *username;    /* email: SMTP AUTH user (a secret) */
    char *password;    /* email: SMTP AUTH password (a secret) */
    char *starttls;    /* email: "required" (default), "optional" or "never" */
    char *routing_key; /* pagerduty: Events API v2 integration key (a secret) */
};

/*
 * `http:` (docs/config.md, docs/api.md): the API, /metrics and the web
 * console, served by api/ inside `vigil run`, and the limits that keep
 * hostile clients from taking it down.
 */
#define VG_HTTP_DEFAULT_LISTEN "127.0.0.1:8089"
#define VG_HTTP_DEFAULT_MAX_CONNECTIONS 64
#define VG_HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP 16
#define VG_HTTP_DEFAULT_REQUEST_TIMEOUT_MS 10000
struct vg_http_config {
    char *listen;    /* "host:port" ("[v6]:port"); default VG_HTTP_DEFAULT_LISTEN */
    bool listen_set; /* written in the file: a bind failure is then fatal, else a WARN */
    char *token;     /* a secret (${ENV} or file:); NULL: write endpoints are refused */
    bool console;    /* serve the web console at / (default true) */
    /*
     * Host header names accepted (lower case, no port; "[::1]" for IPv6; "*"
     * accepts any). NULL (not written): localhost, 127.0.0.1, [::1] and the
     * host of `listen`.
     */
    char **allowed_hosts;
    size_t n_allowed_hosts;
    int max_connections;        /* requests served at once, besides the health reserve */
    int max_connections_per_ip; /* of those, from one client address */
    int request_timeout_ms;     /* accept to the full request; trickled bytes do not extend it */
};

/*
 * `dispatch:` (docs/config.md, docs/sinks.md): the outbox dispatcher of
 * `vigil run`. An outbox entry read by an instance that died is claimed by
 * another (XAUTOCLAIM) once idle for claim_idle_ms; an instance resets the
 * idle time of the entries it still retries every third of it. Where the
 * outbox read cannot wait in Redis (the partitioned layout on a cluster),
 * an idle dispatcher looks again after 10 ms doubling up to idle_poll_ms;
 * the pages its own instance commits wake it at once.
 */
#define VG_DISPATCH_CLAIM_IDLE_MS_DEFAULT 60000
#define VG_DISPATCH_CLAIM_IDLE_MS_MIN 1000
#define VG_DISPATCH_CLAIM_IDLE_MS_MAX 3600000
#define VG_DISPATCH_IDLE_POLL_MS_DEFAULT 1000
#define VG_DISPATCH_IDLE_POLL_MS_MIN 10
#define VG_DISPATCH_IDLE_POLL_MS_MAX 3600000
struct vg_dispatch_config {
    int64_t claim_idle_ms; /* dispatch.claim_idle: default 60 s, 1 s to 1 h */
    int64_t idle_poll_ms;  /* dispatch.idle_poll_ms: default 1000, 10 to 3600000 */
};

/* `log:` (docs/config.md): applied by cli/ (vg_log_set_level, vg_log_set_json). */
struct vg_log_config {
    bool json;               /* format: json; default text */
    enum vg_log_level level; /* default info */
};

struct vg_config {
    char *path; /* the file loaded, NULL for defaults */
    struct vg_kafka_config kafka;
    struct vg_redis_config redis;
    char **rules; /* files, directories or globs; default ["examples/rules"] */
    size_t n_rules;
    struct vg_sink_config *sinks;
    size_t n_sinks;
    struct vg_health_config health; /* default batch types: workflow, job, cronjob, batch */
    struct vg_decode_config decode; /* `decode:` limits, value sets, kubernetes labels */
    struct vg_http_config http;     /* `http:` */
    struct vg_log_config log;       /* `log:` */
    /* `dispatch:` the outbox dispatcher */
    struct vg_dispatch_config dispatch;
};

/* The format of topic `topic` (VG_FORMAT_AUTO for a topic not in the list). */
enum vg_event_format vg_config_topic_format(const struct vg_kafka_config *k, const char *topic);

/* Fill `cfg` with defaults (embedded Kafka and Redis, console sink named "console"). */
void vg_config_init(struct vg_config *cfg);
/*
 * Load `path` over defaults. Relative `rules` paths are resolved against
 * the config file's directory. Returns VG_ERR_INVALID/PARSE/IO with errstr
 * "file:line:col: message"; `cfg` must still be vg_config_fini'd.
 */
vg_err_t vg_config_load_file(struct vg_config *cfg, const char *path, char *errstr,
                             size_t errstr_size);
/*
 * For commands that only read Redis (`vigil get`, `history`, ...): load
 * `path` over defaults like vg_config_load_file, but only its `redis:`
 * section (${NAME} substituted there). The YAML must still parse and its
 * top-level keys be known (errors as "file:line:col: message"); every
 * other section keeps its defaults, and its ${NAME} references and file:
 * secrets are neither resolved nor checked: a sink secret unset on this
 * machine does not stop someone who only wants to look.
 */
vg_err_t vg_config_load_redis(struct vg_config *cfg, const char *path, char *errstr,
                              size_t errstr_size);
/*
 * Load `path` over defaults (NULL: the defaults alone), then the
 * environment's overrides: VIGIL_ + a key's path upper-cased with '_'
 * for '.' (VIGIL_KAFKA_BROKERS, VIGIL_REDIS_URL, VIGIL_SINKS_OPS_URL for
 * a sink named in the file; lists comma-separated; map entries one
 * variable each: VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD). The environment
 * wins over the file. vg_config_load_file and vg_config_load_redis apply
 * them too. Errors in an override name the variable ("$VIGIL_X: ...").
 */
vg_err_t vg_config_load(struct vg_config *cfg, const char *path, char *errstr, size_t errstr_size);
/*
 * vg_config_load from memory: buf[0..len) (not NUL-terminated) is the text
 * of a file named `name`, which messages name ("name:line:col: ...") and
 * relative paths in it are resolved against. Environment overrides and
 * ${NAME} substitution as for a file. For tests and the fuzz target.
 */
vg_err_t vg_config_load_string(struct vg_config *cfg, const char *name, const char *buf, size_t len,
                               char *errstr, size_t errstr_size);
/*
 * `vigil check`: vg_config_load, but go on after an error: every one
 * ("file:line:col: message") is passed to `on_error`, in the order of the
 * file. A sink with an error has `broken` set. Returns the first error's
 * code, VG_OK when there was none.
 */
vg_err_t vg_config_check(struct vg_config *cfg, const char *path,
                         void (*on_error)(void *ctx, const char *message), void *ctx);
void vg_config_fini(struct vg_config *cfg);

/*
 * The {{paths}} a webhook template may use (NULL-terminated): the fields
 * of the v1 body; a trailing `*` stands for any label name.
 */
const char *const *vg_config_template_paths(void);

const struct vg_sink_config *vg_config_find_sink(const struct vg_config *cfg, const char *name);

#endif
