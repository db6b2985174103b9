# Tests of issue 6 (sinks: durable delivery). Unit tests reach into sinks/sinks_int.h;
# integration tests run the real vigil binary against a private redis-server, real HTTP
# receivers on 127.0.0.1, a real Alertmanager and the reference standardwebhooks npm package.
pkg_check_modules(CJSON_S6 REQUIRED IMPORTED_TARGET libcjson)

add_executable(test_sinks6_units ${CMAKE_CURRENT_LIST_DIR}/unit/test_sinks_units.c)
target_include_directories(test_sinks6_units PRIVATE ${PROJECT_SOURCE_DIR}/sinks)
target_link_libraries(test_sinks6_units PRIVATE vg_sinks vg_core PkgConfig::CJSON_S6
                      PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_sinks6_units COMMAND test_sinks6_units)
set_tests_properties(test_sinks6_units PROPERTIES LABELS unit TIMEOUT 30)

foreach(t dispatch signing alertmanager slack tls)
  add_executable(test_sinks6_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_sinks6_${t}.c
                 ${CMAKE_CURRENT_LIST_DIR}/integration/sinks6_common.c)
  target_include_directories(test_sinks6_${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/integration)
  target_compile_definitions(test_sinks6_${t} PRIVATE
    VG_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    VG_WEBHOOK_SCHEMA="${PROJECT_SOURCE_DIR}/docs/webhook.schema.json")
  target_link_libraries(test_sinks6_${t} PRIVATE vg_testsupport vg_state vg_consumer vg_core
                        PkgConfig::CJSON_S6 PkgConfig::HIREDIS PkgConfig::CMOCKA vg_build_flags)
  add_test(NAME test_sinks6_${t} COMMAND test_sinks6_${t})
  set_tests_properties(test_sinks6_${t} PROPERTIES LABELS integration TIMEOUT 240
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()
