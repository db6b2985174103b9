# Tests owned by the core module: pure unit tests of core/ (no sockets, no sleeps).
foreach(t core_decode core_health core_transitions core_config core_page core_util core_log
          core_resource_footprint)
  add_executable(test_${t} unit/test_${t}.c)
  target_compile_definitions(test_${t} PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
  target_link_libraries(test_${t} PRIVATE vg_core PkgConfig::CMOCKA vg_build_flags)
  add_test(NAME test_${t} COMMAND test_${t})
  set_tests_properties(test_${t} PROPERTIES LABELS unit TIMEOUT 30)
endforeach()
