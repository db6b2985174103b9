/*
 * Shared by the integration tests of the teams, email and pagerduty sinks
 * (tests/integration/test_sinks_{teams,email,pagerduty}.c): rules that
 * route a failing workflow to one sink, the dead letters as JSON, and the
 * check that a secret appears nowhere vigil writes (its log, `vigil check`,
 * `vigil dlq list`, the HTTP API and /metrics).
 */
#ifndef VIGIL_TEST_SINKS_MORE_COMMON_H
#define VIGIL_TEST_SINKS_MORE_COMMON_H

#include <stdbool.h>

#include "env.h"

struct cJSON;

/* Rules: workflow-failed (severity high) paged through pager "oncall" to sink `sink`. */
char *sm_rules(const char *sink);
/* The same, grouped by workspace with a 1 s group_wait. */
char *sm_rules_grouped(const char *sink);
/* `vigil dlq list -o json`, parsed (cJSON_Delete it). */
struct cJSON *sm_dlq(struct vg_test_env *e);
/* Wait until the dead-letter stream holds `n` entries. */
bool sm_wait_dlq(struct vg_test_env *e, int n, int timeout_ms);
/*
 * Fail the test when `secret` appears in vigil's log, the output of
 * `vigil check` and `vigil dlq list -o json`, or (with opts.http) in
 * /metrics, /readyz and /api/v1/dlq.
 */
void sm_assert_hidden(struct vg_test_env *e, const char *secret);

#endif
