/*
 * libFuzzer target for the template language: any bytes as a
 * summary template. Compiling must never crash; a compiled template is
 * rendered against a Resource and transition with labels, and its output
 * must be a NUL-terminated string. Built with clang (tests/rules.cmake).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rules_int.h"
#include "vigil/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char k1[] = "team";
    static char v1[] = "data";
    static char k2[] = "app.kubernetes.io/name";
    static char v2[] = "";
    struct vg_label labels[] = {{k1, v1}, {k2, v2}};
    struct vg_resource res;
    struct vg_transition t;
    struct rules_tpl tpl = {0};
    struct vg_ynode node;
    char errstr[512];
    char *src;

    if (memchr(data, '\0', size)) {
        return 0; /* YAML scalars never hold NUL */
    }
    src = vg_strndup((const char *)data, size);
    memset(&node, 0, sizeof(node));
    node.kind = VG_YNODE_SCALAR;
    node.file = "fuzz.yaml";
    node.line = 1;
    node.col = 1;
    node.str = src;
    if (rules_tpl_compile(&tpl, &node, src, errstr, sizeof(errstr)) == VG_OK) {
        struct rules_tpl_ctx ctx;
        char *out;

        memset(&res, 0, sizeof(res));
        res.id = k1;
        res.type = k1;
        res.name = v1;
        res.workspace = v1;
        res.version = v1;
        res.owner = v2;
        res.labels = labels;
        res.n_labels = 2;
        memset(&t, 0, sizeof(t));
        t.field = VG_FIELD_RUNTIME;
        memcpy(t.to, "failed", 7);
        t.at_ms = INT64_C(1767607200123);
        t.res = &res;
        ctx = (struct rules_tpl_ctx){.monitor = "m",
                                     .severity = "high",
                                     .incident_id = "0123456789abcdef",
                                     .incident_type = "",
                                     .state = "firing",
                                     .res = &res,
                                     .t = (size & 1) ? &t : NULL,
                                     .duration_ms = (int64_t)size * 997,
                                     .labels = labels,
                                     .n_labels = 2};
        out = rules_tpl_render(&tpl, &ctx);
        (void)strlen(out);
        vg_free(out);
        rules_tpl_fini(&tpl);
    }
    vg_free(src);
    return 0;
}
