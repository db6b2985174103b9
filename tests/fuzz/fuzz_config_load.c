/*
 * libFuzzer target for the config loader (core/config.c): any bytes as
 * vigil.yaml, through vg_config_load_string, the loader the file path uses.
 * The first byte picks which VIGIL_* overrides are set for the run (lists,
 * map entries, a sink's keys, values that are themselves broken); the rest
 * is the file. ${VIGIL_FUZZ_*} references resolve to the values set at
 * start (one empty, one with "${" in it, one long), any other name is unset.
 * Loading must never crash, leak or read out of bounds, and what loads is
 * read back (topic formats, sink lookup) as cli/ does.
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/fuzz.cmake).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/config.h"
#include "vigil/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The overrides a run may set: bit i of the first byte sets overrides[i]. */
static const struct {
    const char *name;
    const char *value;
} overrides[] = {
    {"VIGIL_KAFKA_TOPICS", " a , ,b,,  "},
    {"VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD", "p=w"},
    {"VIGIL_REDIS_URL", "redis://:secret@127.0.0.1:1/0"},
    {"VIGIL_DECODE_LIMITS_MAX_DEPTH", "99999999999999999999"},
    {"VIGIL_SINKS_OPS_URL", "http://127.0.0.1:1/${x}"},
    {"VIGIL_SINKS_OPS_HEADERS_X_TOKEN", "t\x01"},
    {"VIGIL_SINKS_OPS_SECRET", "whsec_AAAA, ,whsec_"},
    {"VIGIL_HTTP_ALLOWED_HOSTS", ",,*,"},
};

static void init_once(void)
{
    static int ready;
    char longval[5000];
    int fd;

    if (ready) {
        return;
    }
    vg_json_init();
    memset(longval, 'x', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    setenv("VIGIL_FUZZ_A", "127.0.0.1:9092", 1);
    setenv("VIGIL_FUZZ_EMPTY", "", 1);
    setenv("VIGIL_FUZZ_NESTED", "${VIGIL_FUZZ_A}$${", 1);
    setenv("VIGIL_FUZZ_LONG", longval, 1);
    /* a "file:/dev/stdin" secret must not wait for a terminal */
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 0);
        close(fd);
    }
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_config cfg;
    char errstr[1024];
    char *copy;

    init_once();
    if (size < 1) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        if (data[0] & (1u << i)) {
            setenv(overrides[i].name, overrides[i].value, 1);
        } else {
            unsetenv(overrides[i].name);
        }
    }
    copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any over-read */
    memcpy(copy, data + 1, size - 1);
    vg_config_init(&cfg);
    if (vg_config_load_string(&cfg, "/nonexistent/fuzz/vigil.yaml", copy, size - 1, errstr,
                              sizeof(errstr)) == VG_OK) {
        for (size_t i = 0; i < cfg.kafka.n_topics; i++) {
            (void)vg_config_topic_format(&cfg.kafka, cfg.kafka.topics[i]);
        }
        for (size_t i = 0; i < cfg.n_sinks; i++) {
            if (vg_config_find_sink(&cfg, cfg.sinks[i].name) == NULL) {
                abort(); /* a loaded sink is found by its name */
            }
        }
    } else if (!errstr[0]) {
        abort(); /* every failure says why */
    }
    vg_config_fini(&cfg);
    free(copy);
    return 0;
}
