# Tests owned by the sinks module. Unit tests reach into sinks/sinks_int.h; the delivery tests
# run the real vigil binary on the env (tests/support/env.h, outbox.h: pages put straight into
# its Redis outbox) against real HTTP receivers on 127.0.0.1, a real Alertmanager, a TLS
# endpoint (socat) and the reference standardwebhooks npm package.
pkg_check_modules(SINKS_CJSON REQUIRED IMPORTED_TARGET libcjson)

add_executable(test_sinks_units ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sinks_units.c)
target_include_directories(test_sinks_units PRIVATE ${PROJECT_SOURCE_DIR}/sinks)
target_link_libraries(test_sinks_units PRIVATE vg_sinks vg_core PkgConfig::SINKS_CJSON
                      PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_sinks_units COMMAND test_sinks_units)
set_tests_properties(test_sinks_units PROPERTIES LABELS unit TIMEOUT 30)

add_executable(test_sinks_response ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sinks_response.c)
target_include_directories(test_sinks_response PRIVATE ${PROJECT_SOURCE_DIR}/sinks)
target_link_libraries(test_sinks_response PRIVATE vg_sinks vg_core PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_sinks_response COMMAND test_sinks_response)
set_tests_properties(test_sinks_response PROPERTIES LABELS unit TIMEOUT 30)

foreach(t dispatch signing alertmanager slack tls partitioned)
  add_executable(test_sinks_${t} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sinks_${t}.c)
  target_compile_definitions(test_sinks_${t} PRIVATE
    VG_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    VG_WEBHOOK_SCHEMA="${PROJECT_SOURCE_DIR}/docs/webhook.schema.json")
  target_link_libraries(test_sinks_${t} PRIVATE vg_testenv PkgConfig::SINKS_CJSON
                        PkgConfig::HIREDIS PkgConfig::CMOCKA vg_build_flags)
  add_dependencies(test_sinks_${t} vigil)
  add_test(NAME test_sinks_${t} COMMAND test_sinks_${t})
  set_tests_properties(test_sinks_${t} PROPERTIES LABELS integration TIMEOUT 240
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()

add_executable(test_sinks_console ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sinks_console.c)
target_link_libraries(test_sinks_console PRIVATE vg_sinks PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_sinks_console COMMAND test_sinks_console)
set_tests_properties(test_sinks_console PROPERTIES LABELS unit TIMEOUT 30)

# Reaches into sinks/sinks_int.h for the status-code table.
add_executable(test_sinks_config ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sinks_config.c)
target_include_directories(test_sinks_config PRIVATE ${PROJECT_SOURCE_DIR}/sinks)
target_link_libraries(test_sinks_config PRIVATE vg_sinks PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_sinks_config COMMAND test_sinks_config)
set_tests_properties(test_sinks_config PROPERTIES LABELS unit TIMEOUT 30)

# Reads the schema and the docs from the source tree: they are the contract under test.
add_executable(test_sinks_schema ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sinks_schema.c)
target_compile_definitions(test_sinks_schema PRIVATE
  VIGIL_WEBHOOK_SCHEMA="${PROJECT_SOURCE_DIR}/docs/webhook.schema.json"
  VIGIL_WEBHOOK_DOC="${PROJECT_SOURCE_DIR}/docs/webhook.md")
target_link_libraries(test_sinks_schema PRIVATE vg_core PkgConfig::CJSON PkgConfig::CMOCKA
                      vg_build_flags)
add_test(NAME test_sinks_schema COMMAND test_sinks_schema)
set_tests_properties(test_sinks_schema PROPERTIES LABELS unit TIMEOUT 30)

add_executable(test_sinks_webhook ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sinks_webhook.c)
target_link_libraries(test_sinks_webhook PRIVATE vg_sinks vg_testsupport PkgConfig::CMOCKA
                      vg_build_flags)
add_test(NAME test_sinks_webhook COMMAND test_sinks_webhook)
set_tests_properties(test_sinks_webhook PROPERTIES LABELS integration TIMEOUT 30)

# libcurl's multi calls are wrapped at link time so the test can make them fail.
add_executable(test_sinks_multi_errors ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sinks_multi_errors.c)
target_link_libraries(test_sinks_multi_errors PRIVATE vg_sinks vg_testsupport PkgConfig::CURL
                      PkgConfig::CMOCKA vg_build_flags)
target_link_options(test_sinks_multi_errors PRIVATE
                    -Wl,--wrap=curl_multi_perform,--wrap=curl_multi_poll,--wrap=curl_multi_add_handle)
add_test(NAME test_sinks_multi_errors COMMAND test_sinks_multi_errors)
set_tests_properties(test_sinks_multi_errors PROPERTIES LABELS integration TIMEOUT 120)
