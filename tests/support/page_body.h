/*
 * A v1 page body as the pipeline writes it into the outbox
 * (vg_page_to_json), for tests that deliver pages without rules.
 */
#ifndef VIGIL_TEST_PAGE_BODY_H
#define VIGIL_TEST_PAGE_BODY_H

/*
 * The body for incident `inc` of monitor workflow-failed on the workflow
 * `name` in workspace public: `status` "firing" (runtime running -> failed)
 * or "resolved" (failed -> running). Caller frees.
 */
char *vg_test_page_body(const char *inc, const char *status, const char *name);

#endif
