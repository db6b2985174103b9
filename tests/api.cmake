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
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_${t}.c)
  target_compile_definitions(test_${t} PRIVATE VG_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                             VG_SCREENSHOT_DIR="${PROJECT_BINARY_DIR}/screenshots")
  target_link_libraries(test_${t} PRIVATE vg_testenv PkgConfig::CMOCKA PkgConfig::API_CJSON
                        vg_build_flags)
  add_dependencies(test_${t} vigil)
  add_test(NAME test_${t} COMMAND test_${t})
  set_tests_properties(test_${t} PROPERTIES LABELS integration TIMEOUT 120
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()

# The metrics registry and its text format (no sockets).
add_executable(test_api_registry ${CMAKE_CURRENT_LIST_DIR}/unit/test_api_registry.c)
target_link_libraries(test_api_registry PRIVATE vg_api vg_core PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_api_registry COMMAND test_api_registry)
set_tests_properties(test_api_registry PROPERTIES LABELS unit TIMEOUT 30)

# The request parsers of api/api_parse.c (no sockets).
add_executable(test_api_parse ${CMAKE_CURRENT_LIST_DIR}/unit/test_api_parse.c)
target_include_directories(test_api_parse PRIVATE ${PROJECT_SOURCE_DIR}/api)
target_link_libraries(test_api_parse PRIVATE vg_api vg_core PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_api_parse COMMAND test_api_parse)
set_tests_properties(test_api_parse PROPERTIES LABELS unit TIMEOUT 30)
