/*
 * Shared by the HTTP API tests (test_api_*.c): a running `vigil run` on a
 * private redis-server (with a password), librdkafka's mock cluster, a
 * webhook receiver whose URL holds a secret, and an HTTP API on
 * 127.0.0.1:<port from vigil's log>. Plus a small HTTP/1.0 client that
 * fails the test when any response contains one of the secrets.
 */
#ifndef VIGIL_TEST_API_HARNESS_H
#define VIGIL_TEST_API_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http_receiver.h"
#include "vigil/consumer.h"
#include "vigil/state.h"

/* Secrets of the test config: none may appear in any response. */
#define API_TEST_TOKEN "tok-7f3a9c2e41d8b6"
#define API_TEST_HOOK_PATH "/hook/s3cr3t-h00k-p4th"
#define API_TEST_REDIS_PASSWORD "r3dis-pa55w0rd-x9"

struct api_env {
    char *dir;
    char *topic;
    char *prefix;
    char *config;
    char *rules;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_http_receiver *rcv;
    struct vg_producer *producer;
    struct vg_state *st;
    pid_t vigil;
    int port;
    char base[64]; /* "http://127.0.0.1:<port>" */
    long long produced;
    int partitions;
    bool unclean_exit_ok; /* the test broke something on purpose (stopped Redis) */
};

/* Start everything (vigil included) and wait until /readyz says ready. 0 on success. */
int api_env_setup(struct api_env *e, const char *name);
/* The same with more lines under `http:` ("  max_connections: 4\n"); NULL: none. */
int api_env_setup_with(struct api_env *e, const char *name, const char *http_extra);
/* True when vigil's log (stderr) contains `needle`. */
bool api_env_log_has(struct api_env *e, const char *needle);
/* The value of the /metrics sample `series` (name{labels} exactly); -1 when absent. */
double api_env_metric(struct api_env *e, const char *series);
/* Stop and clean up; -1 when vigil reported a sanitizer error or did not exit 0. */
int api_env_teardown(struct api_env *e);
/* Produce a native event keyed by the Resource id (NULL status/runtime: absent). */
void api_env_produce(struct api_env *e, const char *type, const char *name, const char *ws,
                     const char *status, const char *runtime, const char *time,
                     const char *message);
void api_env_produce_raw(struct api_env *e, const char *payload);
/* Flush and wait until Redis has applied everything produced (fails the test otherwise). */
void api_env_wait_applied(struct api_env *e);
/* Print vigil's stderr (on failure). */
void api_env_dump_log(struct api_env *e);

struct api_reply {
    int status;
    char *headers; /* raw, lower-cased names */
    char *body;
};
/*
 * One request (HTTP/1.0, so the body ends at close). `extra` are header
 * lines ("Authorization: Bearer x\r\n") or NULL; `body` NULL for none.
 * Asserts the reply contains no secret. Free with api_reply_free.
 */
struct api_reply api_http(struct api_env *e, const char *method, const char *path,
                          const char *extra, const char *body);
void api_reply_free(struct api_reply *r);
/* The value of a response header (name lower-case), in a static buffer; NULL when absent. */
const char *api_reply_header(const struct api_reply *r, const char *name);

#endif
