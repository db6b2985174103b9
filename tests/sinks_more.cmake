# Integration tests of the teams, email and pagerduty sinks: the real vigil binary
# against receivers on 127.0.0.1 (tests/support/http_receiver.h, and the SMTP test
# server tests/support/smtp_receiver.c, compiled in here).
pkg_check_modules(CJSON_MORE REQUIRED IMPORTED_TARGET libcjson)

foreach(t teams email pagerduty)
  add_executable(test_sinks_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_sinks_${t}.c
                 ${CMAKE_CURRENT_LIST_DIR}/integration/sinks_more_common.c
                 ${CMAKE_CURRENT_LIST_DIR}/support/smtp_receiver.c)
  target_include_directories(test_sinks_${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/integration
                             ${CMAKE_CURRENT_LIST_DIR}/support)
  target_link_libraries(test_sinks_${t} PRIVATE vg_testenv vg_testsupport vg_state vg_consumer
                        vg_core PkgConfig::CJSON_MORE PkgConfig::CMOCKA vg_build_flags)
  add_test(NAME test_sinks_${t} COMMAND test_sinks_${t})
  set_tests_properties(test_sinks_${t} PROPERTIES LABELS integration TIMEOUT 240
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()

# The renderers at their edges (size limits, header injection, encodings): reaches into
# sinks/sinks_int.h.
add_executable(test_sinks_render_more ${CMAKE_CURRENT_LIST_DIR}/unit/test_sinks_render_more.c)
target_include_directories(test_sinks_render_more PRIVATE ${PROJECT_SOURCE_DIR}/sinks)
target_link_libraries(test_sinks_render_more PRIVATE vg_sinks vg_core PkgConfig::CJSON_MORE
                      PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_sinks_render_more COMMAND test_sinks_render_more)
set_tests_properties(test_sinks_render_more PROPERTIES LABELS unit TIMEOUT 30)
