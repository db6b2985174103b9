# Tests owned by the rules module.
foreach(t rules_load rules_eval rules_timers)
  add_executable(test_${t} unit/test_${t}.c)
  target_compile_definitions(test_${t} PRIVATE VIGIL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(test_${t} PRIVATE vg_rules vg_testsupport PkgConfig::CMOCKA
                        vg_build_flags)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS unit TIMEOUT 30)
endforeach()

# `vigil test` fires timers and flushes group buffers with the daemon's code (rules_timers.c).
add_test(NAME rules_test_timers
         COMMAND $<TARGET_FILE:vigil> test
                 ${PROJECT_SOURCE_DIR}/tests/fixtures/rules/timers/same-instant.test.yaml)
set_tests_properties(rules_test_timers PROPERTIES LABELS unit TIMEOUT 30)

# `vigil test` on a group beyond group_limit: `incidents` counts the whole group.
add_test(NAME rules_test_group_limit
         COMMAND $<TARGET_FILE:vigil> test
                 ${PROJECT_SOURCE_DIR}/tests/fixtures/rules/timers/group-limit.test.yaml)
set_tests_properties(rules_test_group_limit PROPERTIES LABELS unit TIMEOUT 30)

# Rules over time: conditions over time, timers, incidents, pagers, silences,
# `vigil check`, `vigil test`.
pkg_check_modules(RULES_CJSON REQUIRED IMPORTED_TARGET libcjson)

foreach(t rules_conditions rules_pagers rules_language rules_tz)
  add_executable(test_${t} unit/test_${t}.c)
  target_include_directories(test_${t} PRIVATE ${PROJECT_SOURCE_DIR}/rules)
  target_compile_definitions(test_${t} PRIVATE VIGIL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(test_${t} PRIVATE vg_rules vg_testsupport PkgConfig::CMOCKA
                        vg_build_flags)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS unit TIMEOUT 60)
endforeach()

# `vigil test` on every example's tests, and `vigil check`/`vigil test` on broken fixtures.
add_test(NAME rules_examples_test
         COMMAND $<TARGET_FILE:vigil> test ${PROJECT_SOURCE_DIR}/examples/rules/tests/conditions.test.yaml
                 ${PROJECT_SOURCE_DIR}/examples/rules/tests/lifecycle.test.yaml
                 ${PROJECT_SOURCE_DIR}/examples/rules/tests/pagers.test.yaml
                 ${PROJECT_SOURCE_DIR}/examples/rules/tests/resources.test.yaml
                 ${PROJECT_SOURCE_DIR}/examples/rules-extra/tests/oncall.test.yaml)
set_tests_properties(rules_examples_test PROPERTIES LABELS unit TIMEOUT 60)
add_test(NAME rules_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rules_cli.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(rules_cli PROPERTIES LABELS unit TIMEOUT 60)

foreach(t rules_timer_restart rules_group_burst rules_incidents rules_reload)
  add_executable(test_${t} integration/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vg_testenv vg_testsupport vg_state vg_consumer vg_core
                        PkgConfig::CMOCKA PkgConfig::RULES_CJSON vg_build_flags)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 120
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()

# libFuzzer targets for the rule loader and the template renderer, built by clang on the
# side (as the event decoding fuzz targets are) when clang is installed; a short run is a test.
find_program(VIGIL_CLANG_RULES NAMES clang clang-14)
if(VIGIL_CLANG_RULES)
  set(rules_fuzz_common
      ${PROJECT_SOURCE_DIR}/core/err.c ${PROJECT_SOURCE_DIR}/core/log.c
      ${PROJECT_SOURCE_DIR}/core/mem.c ${PROJECT_SOURCE_DIR}/core/util.c
      ${PROJECT_SOURCE_DIR}/core/map.c ${PROJECT_SOURCE_DIR}/core/json.c
      ${PROJECT_SOURCE_DIR}/core/yaml.c ${PROJECT_SOURCE_DIR}/core/page.c
      ${PROJECT_SOURCE_DIR}/core/event.c ${PROJECT_SOURCE_DIR}/core/event_decode.c
      ${PROJECT_SOURCE_DIR}/core/k8s.c ${PROJECT_SOURCE_DIR}/core/resource.c
      ${PROJECT_SOURCE_DIR}/rules/rules.c ${PROJECT_SOURCE_DIR}/rules/rules_load.c
      ${PROJECT_SOURCE_DIR}/rules/rules_eval.c ${PROJECT_SOURCE_DIR}/rules/rules_template.c
      ${PROJECT_SOURCE_DIR}/rules/rules_tz.c)
  foreach(f rules_load rules_template)
    set(rules_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz_${f})
    add_custom_command(
      OUTPUT ${rules_fuzz_bin}
      COMMAND ${VIGIL_CLANG_RULES} -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
              -fno-omit-frame-pointer -I${PROJECT_SOURCE_DIR}/include
              -I${PROJECT_SOURCE_DIR}/core -I${PROJECT_SOURCE_DIR}/rules
              ${CJSON_CFLAGS} ${YAML_CFLAGS} ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${f}.c
              ${rules_fuzz_common} -o ${rules_fuzz_bin} ${CJSON_LDFLAGS} ${YAML_LDFLAGS} -lpthread -lm
      DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${f}.c ${rules_fuzz_common}
      COMMENT "libFuzzer: fuzz_${f} (clang)"
      VERBATIM)
    add_custom_target(fuzz_${f} ALL DEPENDS ${rules_fuzz_bin})
  endforeach()
  add_test(NAME rules_fuzz_load
           COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run.sh ${CMAKE_CURRENT_BINARY_DIR}/fuzz_rules_load
                   ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus-rules 20)
  add_test(NAME rules_fuzz_template
           COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run.sh
                   ${CMAKE_CURRENT_BINARY_DIR}/fuzz_rules_template
                   ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus-template 20)
  set_tests_properties(rules_fuzz_load rules_fuzz_template PROPERTIES
                       LABELS "integration;fuzz" TIMEOUT 90)
else()
  message(STATUS "clang not found: the rules fuzz targets and their tests are skipped")
endif()

# The monitor index against a linear scan (reads rules/rules_int.h for the switch).
add_executable(test_rules_index unit/test_rules_index.c)
target_include_directories(test_rules_index PRIVATE ${PROJECT_SOURCE_DIR}/rules)
target_link_libraries(test_rules_index PRIVATE vg_rules vg_testsupport PkgConfig::CMOCKA
                      vg_build_flags)
add_test(NAME rules_index COMMAND test_rules_index)
set_tests_properties(rules_index PROPERTIES LABELS unit TIMEOUT 120)
