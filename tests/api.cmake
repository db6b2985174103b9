# Tests of the HTTP API, /metrics and the web console: each starts the real
# vigil binary on a private redis-server and librdkafka's mock cluster, through
# tests/support/env.h, with every reply and log checked for the config's
# secrets. test_api_console drives /usr/bin/chromium with playwright-core
# (tests/browser, installed by scripts/deps.sh); screenshots land in
# <build>/screenshots. test_api_limits and test_api_input play a hostile
# client: slow and greedy connections, malformed and oversized requests,
# control characters and invalid UTF-8.
pkg_check_modules(API_CJSON REQUIRED IMPORTED_TARGET libcjson)

foreach(t api_endpoints api_metrics api_console api_limits api_input)
  vigil_test(test_${t} SOURCES integration/test_${t}.c
             DEFINITIONS VG_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                         VG_SCREENSHOT_DIR="${PROJECT_BINARY_DIR}/screenshots"
             LIBS vg_testenv PkgConfig::API_CJSON LABELS integration TIMEOUT 120 RUNS_VIGIL)
endforeach()

# The metrics registry and its text format (no sockets).
vigil_test(test_api_registry SOURCES unit/test_api_registry.c LIBS vg_api vg_core
           LABELS unit TIMEOUT 30)

# The request parsers of api/api_parse.c (no sockets).
vigil_test(test_api_parse SOURCES unit/test_api_parse.c INCLUDES ${PROJECT_SOURCE_DIR}/api
           LIBS vg_api vg_core LABELS unit TIMEOUT 30)
