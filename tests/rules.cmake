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

# The monitor index against a linear scan (reads rules/rules_int.h for the switch).
add_executable(test_rules_index unit/test_rules_index.c)
target_include_directories(test_rules_index PRIVATE ${PROJECT_SOURCE_DIR}/rules)
target_link_libraries(test_rules_index PRIVATE vg_rules vg_testsupport PkgConfig::CMOCKA
                      vg_build_flags)
add_test(NAME rules_index COMMAND test_rules_index)
set_tests_properties(rules_index PROPERTIES LABELS unit TIMEOUT 120)
