/*
 * Shared by tests/integration/test_sinks6_*.c (issue 6): a private
 * redis-server, the real `vigil run` as a child process whose outbox the
 * test fills directly (XADD P:outbox, as the pipeline's MULTI/EXEC would),
 * and helpers to read back what vigil did.
 */
#ifndef VIGIL_TEST_SINKS6_COMMON_H
#define VIGIL_TEST_SINKS6_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http_receiver.h"
#include "vigil/state.h"

struct s6_env {
    char *dir;
    char *prefix;
    char *config;
    struct vg_redis_child *redis;
    struct vg_state *st;
    void *raw; /* redisContext * for XADD */
    pid_t vigil;
    int runs;
};

extern struct s6_env S6;

/* Start redis (fresh dir, prefix "s6<pid>"). Returns 0 or -1. */
int s6_setup(const char *name);
void s6_teardown(void);
/* The YAML every test config starts with (redis section, no Kafka brokers: embedded). */
char *s6_config_head(void);
/* Write `yaml` as the config and spawn `vigil run -c` (extra env: none). */
void s6_start_vigil(const char *yaml);
/* Stop it: SIGTERM (bounded) or SIGKILL. */
void s6_stop_vigil(int sig);
/* Path of run `i`'s stderr log; caller frees. */
char *s6_log_path(int run);
/* Concatenated stderr of all runs so far (heap). */
char *s6_all_logs(void);
/* A v1 body (vg_page_to_json) for incident `inc` on resource name `name`. Caller frees. */
char *s6_body(const char *inc, const char *status, const char *name);
/* XADD one page to P:outbox; returns the stream id (heap). */
char *s6_put(const char *id, const char *sink, const char *pager, const char *body);
/* Wait until the outbox is empty (everything acknowledged or dead-lettered). */
bool s6_wait_drained(int timeout_ms);
/* Wait until `r` recorded at least n requests. */
bool s6_wait_requests(struct vg_http_receiver *r, size_t n, int timeout_ms);
/* Run `vigil ARGS... -c config`: exit code, stdout and stderr (heap). */
int s6_vigil(char **out, char **err, const char *a1, const char *a2, const char *a3,
             const char *a4);
/* Number of requests to `r` whose idempotency-key header is `id`. */
size_t s6_count_id(struct vg_http_receiver *r, const char *id);
/* Milliseconds since the epoch at which request i was recorded (from the receiver clock). */
/* Dump the vigil logs to stderr (on a failure). */
void s6_dump_logs(void);

#endif
