/*
 * `vigil config print [-c vigil.yaml]`: the effective configuration (the
 * defaults, the file, then the VIGIL_* environment overrides) as YAML
 * that `vigil run -c` would accept, with every secret redacted: sink URLs
 * and proxies through vg_redact_url, tokens, signing secrets, secret-like
 * headers and Kafka properties as "<redacted>".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "vigil/json.h"
#include "vigil/log.h"
#include "vigil/mem.h"

#define REDACTED "<redacted>"

static void usage(FILE *out)
{
    fputs("usage: vigil config print [-c vigil.yaml]\n"
          "\n"
          "Print the effective configuration as YAML: the defaults, then the file, then\n"
          "the VIGIL_* environment variables (VIGIL_KAFKA_BROKERS, VIGIL_REDIS_URL, ...),\n"
          "each over the one before. Secrets are redacted.\n"
          "\n"
          "  print              print it (the only subcommand)\n"
          "  -c, --config FILE  the config file (default: the built-in defaults)\n"
          "  -h, --help         this help\n",
          out);
}

/* A YAML scalar: always a double-quoted string (JSON escaping is valid YAML). */
static void put_str(struct vg_buf *b, const char *s)
{
    vg_json_append_string(b, s ? s : "");
}

static void put_key_str(struct vg_buf *b, int indent, const char *key, const char *v)
{
    vg_buf_printf(b, "%*s%s: ", indent, "", key);
    if (v) {
        put_str(b, v);
    } else {
        vg_buf_puts(b, "null");
    }
    vg_buf_putc(b, '\n');
}

static void put_key_url(struct vg_buf *b, int indent, const char *key, const char *url)
{
    char redacted[1024];

    if (!url) {
        return;
    }
    vg_redact_url(url, redacted, sizeof(redacted));
    put_key_str(b, indent, key, redacted);
}

static void put_list(struct vg_buf *b, int indent, const char *key, char *const *v, size_t n)
{
    vg_buf_printf(b, "%*s%s: [", indent, "", key);
    for (size_t i = 0; i < n; i++) {
        vg_buf_puts(b, i ? ", " : "");
        put_str(b, v[i]);
    }
    vg_buf_puts(b, "]\n");
}

/* A Kafka property or HTTP header name that holds a secret. */
static bool secret_name(const char *name)
{
    static const char *const words[] = {"password", "secret",        "token",  "key",
                                        "jaas",     "authorization", "cookie", "credential"};
    char lower[256];
    size_t i;

    for (i = 0; name[i] && i + 1 < sizeof(lower); i++) {
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    }
    lower[i] = '\0';
    for (size_t w = 0; w < VG_ARRAY_LEN(words); w++) {
        if (strstr(lower, words[w])) {
            return true;
        }
    }
    return false;
}

static void put_kv(struct vg_buf *b, int indent, const char *key, const struct vg_kv *kv, size_t n)
{
    if (n == 0) {
        vg_buf_printf(b, "%*s%s: {}\n", indent, "", key);
        return;
    }
    vg_buf_printf(b, "%*s%s:\n", indent, "", key);
    for (size_t i = 0; i < n; i++) {
        vg_buf_printf(b, "%*s", indent + 2, "");
        put_str(b, kv[i].key);
        vg_buf_puts(b, ": ");
        put_str(b, secret_name(kv[i].key) ? REDACTED : kv[i].value);
        vg_buf_putc(b, '\n');
    }
}

static void put_kafka(struct vg_buf *b, const struct vg_kafka_config *k)
{
    vg_buf_puts(b, "kafka:\n");
    put_key_str(b, 2, "brokers", k->brokers ? k->brokers : "embedded");
    put_key_str(b, 2, "group", k->group);
    vg_buf_puts(b, "  topics:\n");
    for (size_t i = 0; i < k->n_topics; i++) {
        vg_buf_puts(b, "    - {name: ");
        put_str(b, k->topics[i]);
        vg_buf_printf(
            b, ", format: %s}\n",
            vg_event_format_name(k->topic_formats ? k->topic_formats[i] : VG_FORMAT_AUTO));
    }
    put_key_str(b, 2, "dlq_topic", k->dlq_topic);
    put_kv(b, 2, "properties", k->properties, k->n_properties);
    vg_buf_printf(b, "  partitions: %d\n  batch_size: %d\n  batch_ms: %d\n  prefetch_mb: %d\n",
                  k->partitions, k->batch_size, k->batch_ms,
                  k->prefetch_mb > 0 ? k->prefetch_mb : VG_KAFKA_PREFETCH_MB_DEFAULT);
}

static void put_sink(struct vg_buf *b, const struct vg_sink_config *s)
{
    vg_buf_puts(b, "  ");
    put_str(b, s->name);
    vg_buf_puts(b, ":\n");
    put_key_str(b, 4, "type", s->type);
    put_key_url(b, 4, "url", s->url);
    put_key_url(b, 4, "webhook_url", s->webhook_url);
    if (s->token) {
        put_key_str(b, 4, "token", REDACTED);
    }
    if (s->n_secrets) {
        vg_buf_puts(b, "    secret: [");
        for (size_t i = 0; i < s->n_secrets; i++) {
            vg_buf_printf(b, "%s\"" REDACTED "\"", i ? ", " : "");
        }
        vg_buf_puts(b, "]\n");
    }
    if (s->n_headers) {
        put_kv(b, 4, "headers", s->headers, s->n_headers);
    }
    vg_buf_printf(b, "    timeout: %lldms\n    connect_timeout: %lldms\n    max_attempts: %d\n",
                  (long long)s->timeout_ms, (long long)s->connect_timeout_ms, s->max_attempts);
    vg_buf_printf(b, "    max_age: %lldms\n", (long long)s->max_age_ms);
    if (s->rate_per_s > 0) {
        vg_buf_printf(b, "    rate: %g/s\n", s->rate_per_s);
    }
    if (s->burst > 0) {
        vg_buf_printf(b, "    burst: %d\n", s->burst);
    }
    if (s->ca_file) {
        put_key_str(b, 4, "ca_file", s->ca_file);
    }
    if (s->client_cert) {
        put_key_str(b, 4, "client_cert", s->client_cert);
    }
    if (s->client_key) {
        put_key_str(b, 4, "client_key", s->client_key);
    }
    put_key_url(b, 4, "proxy", s->proxy);
    if (s->format) {
        put_key_str(b, 4, "format", s->format);
    }
    if (s->template) {
        put_key_str(b, 4, "template", s->template);
    }
    if (s->channel) {
        put_key_str(b, 4, "channel", s->channel);
    }
    if (s->api_url) {
        put_key_str(b, 4, "api_url", s->api_url);
    }
    if (s->topic) {
        put_key_str(b, 4, "topic", s->topic);
    }
    if (s->brokers) {
        put_key_str(b, 4, "brokers", s->brokers);
    }
    if (s->n_properties) {
        put_kv(b, 4, "properties", s->properties, s->n_properties);
    }
    if (s->console_url) {
        put_key_str(b, 4, "console_url", s->console_url);
    }
}

static void put_decode(struct vg_buf *b, const struct vg_decode_config *d)
{
    vg_buf_puts(b, "decode:\n");
    if (d->threads != VG_DECODE_THREADS_AUTO) {
        vg_buf_printf(b, "  threads: %d\n", d->threads); /* unset: sized to the machine */
    }
    vg_buf_puts(b, "  limits:\n");
    vg_buf_printf(b,
                  "    max_message_bytes: %zu\n    max_depth: %d\n    max_name_bytes: %zu\n"
                  "    max_message_text_bytes: %zu\n    max_labels: %zu\n"
                  "    max_clock_skew_ms: %lld\n",
                  d->max_message_bytes, d->max_depth, d->max_name_bytes, d->max_message_text_bytes,
                  d->max_labels, (long long)d->max_clock_skew_ms);
    put_list(b, 2, "status_values", d->status_values, d->n_status_values);
    put_list(b, 2, "runtime_values", d->runtime_values, d->n_runtime_values);
    vg_buf_puts(b, "  kubernetes:\n    labels:\n");
    put_key_str(b, 6, "type", d->label_type);
    put_key_str(b, 6, "name", d->label_name);
    put_key_str(b, 6, "version", d->label_version);
    put_key_str(b, 6, "owner", d->label_owner);
    put_key_str(b, 4, "workspace_from", d->workspace_from);
    put_key_str(b, 4, "default_type", d->default_type);
}

static void put_http(struct vg_buf *b, const struct vg_http_config *h)
{
    vg_buf_puts(b, "http:\n");
    put_key_str(b, 2, "listen", h->listen);
    if (h->token) {
        put_key_str(b, 2, "token", REDACTED);
    }
    vg_buf_printf(b, "  console: %s\n", h->console ? "true" : "false");
    if (h->allowed_hosts) {
        put_list(b, 2, "allowed_hosts", h->allowed_hosts, h->n_allowed_hosts);
    }
    vg_buf_printf(b,
                  "  max_connections: %d\n  max_connections_per_ip: %d\n"
                  "  request_timeout_ms: %d\n",
                  h->max_connections, h->max_connections_per_ip, h->request_timeout_ms);
}

/* The whole config as YAML (caller frees). */
static char *config_yaml(const struct vg_config *cfg)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    struct vg_buf b = {0};

    vg_buf_printf(&b, "# effective configuration: %s, then VIGIL_* environment variables\n",
                  cfg->path ? cfg->path : "defaults");
    put_kafka(&b, &cfg->kafka);
    vg_buf_puts(&b, "redis:\n");
    if (cfg->redis.url) {
        put_key_url(&b, 2, "url", cfg->redis.url);
    } else {
        put_key_str(&b, 2, "url", "embedded");
    }
    put_key_str(&b, 2, "prefix", cfg->redis.prefix);
    put_key_str(&b, 2, "data_dir", cfg->redis.data_dir);
    vg_buf_printf(&b, "  cache_resources: %d\n  cluster: %s\n", cfg->redis.cache_resources,
                  cfg->redis.cluster ? "true" : "false");
    vg_buf_printf(&b, "  wait_replicas: %d\n  wait_timeout_ms: %d\n", cfg->redis.wait_replicas,
                  cfg->redis.wait_timeout_ms);
    if (cfg->redis.layout_set) {
        /* only when given: left out, the read-only commands take the data's layout */
        vg_buf_printf(&b, "  layout: %s\n", cfg->redis.partitioned ? "partitioned" : "single");
    }
    vg_buf_printf(&b, "  commit_connections: %d\n", cfg->redis.commit_connections);
    put_list(&b, 0, "rules", cfg->rules, cfg->n_rules);
    vg_buf_puts(&b, "sinks:\n");
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        put_sink(&b, &cfg->sinks[i]);
    }
    vg_buf_puts(&b, "health:\n");
    put_list(&b, 2, "batch_types", cfg->health.batch_types, cfg->health.n_batch_types);
    put_decode(&b, &cfg->decode);
    put_http(&b, &cfg->http);
    vg_buf_printf(&b, "dispatch:\n  claim_idle: %lldms\n  idle_poll_ms: %lld\n",
                  (long long)cfg->dispatch.claim_idle_ms, (long long)cfg->dispatch.idle_poll_ms);
    vg_buf_printf(&b, "log:\n  format: %s\n  level: %s\n", cfg->log.json ? "json" : "text",
                  levels[cfg->log.level]);
    return vg_buf_steal(&b);
}

int cli_cmd_config(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct cli_flags flags = {
        .shortopts = "c:h", .opts = opts, .usage = usage, .config_path = &config_path};
    struct vg_config cfg;
    char *yaml;
    int rc;

    cli_flags_next(&flags, argc, argv); /* -c and -h only */
    if (flags.stop) {
        return flags.exit_code;
    }
    if (optind + 1 != argc || strcmp(argv[optind], "print") != 0) {
        if (optind < argc) {
            fprintf(stderr, "vigil config: unknown subcommand \"%s\"\n", argv[optind]);
        }
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    rc = cli_load_config(&cfg, config_path);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    yaml = config_yaml(&cfg);
    fputs(yaml, stdout);
    free(yaml);
    vg_config_fini(&cfg);
    return CLI_EXIT_OK;
}
