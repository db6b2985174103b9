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

struct vg_kv {
    char *key;
    char *value;
};

struct vg_kafka_config {
    char *brokers; /* NULL: embedded mock cluster */
    char *group;   /* default "vigil" */
    char **topics; /* default ["vigil.events"] */
    size_t n_topics;
    char *dlq_topic; /* default "vigil.dlq" */
    struct vg_kv *properties; /* passed to librdkafka as strings */
    size_t n_properties;
    int partitions;   /* topics created in the embedded cluster: default 4 */
    int batch_size;   /* max messages per apply batch: default 5000 */
    int batch_ms;     /* max wait to fill a batch: default 50 */
};

struct vg_redis_config {
    char *url;      /* NULL: embedded private redis-server */
    char *prefix;   /* default "vigil" */
    char *data_dir; /* embedded redis-server's directory: default ".vigil" */
};

struct vg_sink_config {
    char *name;
    char *type; /* "webhook" | "console" */
    char *url;  /* webhook: a secret, never logged unredacted */
    struct vg_kv *headers;
    size_t n_headers;
    int64_t timeout_ms;         /* default 10000 */
    int64_t connect_timeout_ms; /* default 5000 */
    int max_attempts;           /* default 5 */
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
};

/* Fill `cfg` with defaults (embedded Kafka and Redis, console sink named "console"). */
void vg_config_init(struct vg_config *cfg);
/*
 * Load `path` over defaults. Relative `rules` paths are resolved against
 * the config file's directory. Returns VG_ERR_INVALID/PARSE/IO with errstr
 * "file:line:col: message"; `cfg` must still be vg_config_fini'd.
 */
vg_err_t vg_config_load_file(struct vg_config *cfg, const char *path, char *errstr,
                             size_t errstr_size);
void vg_config_fini(struct vg_config *cfg);

const struct vg_sink_config *vg_config_find_sink(const struct vg_config *cfg, const char *name);

#endif
