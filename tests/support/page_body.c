/*
 * A v1 page body for tests (page_body.h).
 */
#include "page_body.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vigil/mem.h"
#include "vigil/page.h"

char *vg_test_page_body(const char *inc, const char *status, const char *name)
{
    struct vg_page pg;
    bool firing = !strcmp(status, "firing");
    char *json;

    memset(&pg, 0, sizeof(pg));
    pg.status = vg_strdup(status);
    pg.incident.id = vg_strdup(inc);
    pg.incident.monitor = vg_strdup("workflow-failed");
    pg.incident.severity = vg_strdup("high");
    pg.incident.summary = vg_asprintf("%s failed in public", name);
    pg.incident.started_at_ms = 1795860000123;
    pg.incident.resolved_at_ms = firing ? 0 : 1795860300000;
    pg.resource.id = vg_asprintf("workflow:v1:%s:public", name);
    pg.resource.type = vg_strdup("workflow");
    pg.resource.name = vg_strdup(name);
    pg.resource.workspace = vg_strdup("public");
    pg.resource.version = vg_strdup("v1");
    pg.resource.owner = vg_strdup("iamgroot");
    snprintf(pg.resource.status, sizeof(pg.resource.status), "active");
    snprintf(pg.resource.runtime, sizeof(pg.resource.runtime), firing ? "failed" : "running");
    snprintf(pg.resource.health, sizeof(pg.resource.health), firing ? "unhealthy" : "progressing");
    snprintf(pg.transition.field, sizeof(pg.transition.field), "runtime");
    snprintf(pg.transition.from, sizeof(pg.transition.from), firing ? "running" : "failed");
    snprintf(pg.transition.to, sizeof(pg.transition.to), firing ? "failed" : "running");
    pg.transition.at_ms = firing ? 1795860000123 : 1795860300000;
    json = vg_page_to_json(&pg);
    vg_page_fini(&pg);
    return json;
}
