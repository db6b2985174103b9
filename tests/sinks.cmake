# Tests owned by the sinks module. Unit tests reach into sinks/sinks_int.h; the delivery tests
# run the real vigil binary on the env (tests/support/env.h, outbox.h: pages put straight into
# its Redis outbox) against real HTTP receivers on 127.0.0.1, a real Alertmanager, a TLS
# endpoint (socat) and the reference standardwebhooks npm package.
pkg_check_modules(SINKS_CJSON REQUIRED IMPORTED_TARGET libcjson)

vigil_test(test_sinks_units SOURCES unit/test_sinks_units.c INCLUDES ${PROJECT_SOURCE_DIR}/sinks
           LIBS vg_sinks vg_core PkgConfig::SINKS_CJSON LABELS unit TIMEOUT 30)

vigil_test(test_sinks_response SOURCES unit/test_sinks_response.c
           INCLUDES ${PROJECT_SOURCE_DIR}/sinks LIBS vg_sinks vg_core LABELS unit TIMEOUT 30)

foreach(t dispatch signing alertmanager slack tls partitioned)
  vigil_test(test_sinks_${t} SOURCES integration/test_sinks_${t}.c
             DEFINITIONS VG_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                         VG_WEBHOOK_SCHEMA="${PROJECT_SOURCE_DIR}/docs/webhook.schema.json"
             LIBS vg_testenv PkgConfig::SINKS_CJSON PkgConfig::HIREDIS
             LABELS integration TIMEOUT 240 RUNS_VIGIL)
endforeach()

vigil_test(test_sinks_console SOURCES unit/test_sinks_console.c LIBS vg_sinks
           LABELS unit TIMEOUT 30)

# Reaches into sinks/sinks_int.h for the status-code table.
vigil_test(test_sinks_config SOURCES unit/test_sinks_config.c INCLUDES ${PROJECT_SOURCE_DIR}/sinks
           LIBS vg_sinks LABELS unit TIMEOUT 30)

# Reads the schema and the docs from the source tree: they are the contract under test.
vigil_test(test_sinks_schema SOURCES unit/test_sinks_schema.c
           DEFINITIONS VIGIL_WEBHOOK_SCHEMA="${PROJECT_SOURCE_DIR}/docs/webhook.schema.json"
                       VIGIL_WEBHOOK_DOC="${PROJECT_SOURCE_DIR}/docs/webhook.md"
           LIBS vg_core PkgConfig::CJSON LABELS unit TIMEOUT 30)

vigil_test(test_sinks_webhook SOURCES integration/test_sinks_webhook.c
           LIBS vg_sinks vg_testsupport LABELS integration TIMEOUT 30)

# libcurl's multi calls are wrapped at link time so the test can make them fail.
vigil_test(test_sinks_multi_errors SOURCES integration/test_sinks_multi_errors.c
           LIBS vg_sinks vg_testsupport PkgConfig::CURL LABELS integration TIMEOUT 120)
target_link_options(test_sinks_multi_errors PRIVATE
                    -Wl,--wrap=curl_multi_perform,--wrap=curl_multi_poll,--wrap=curl_multi_add_handle)
