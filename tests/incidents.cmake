# Incident counts and pages from indexes: a real redis-server, the HTTP API in
# process (to count the Redis commands a request costs) and the real vigil binary.
pkg_check_modules(CJSON_INC REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(HIREDIS_INC REQUIRED IMPORTED_TARGET hiredis)

add_executable(test_incidents_index integration/test_incidents_index.c)
target_link_libraries(test_incidents_index PRIVATE vg_testenv vg_api PkgConfig::CMOCKA
                      PkgConfig::CJSON_INC PkgConfig::HIREDIS_INC vg_build_flags)
add_dependencies(test_incidents_index vigil)
add_test(NAME incidents_index COMMAND test_incidents_index)
set_tests_properties(incidents_index PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# The firing counts kept by the commit's counts script, run as a Redis function and as EVAL.
add_executable(test_incidents_counts_function integration/test_incidents_counts_function.c)
target_link_libraries(test_incidents_counts_function PRIVATE vg_teststate vg_state vg_core
                      vg_testsupport PkgConfig::CMOCKA PkgConfig::HIREDIS_INC vg_build_flags)
add_test(NAME incidents_counts_function COMMAND test_incidents_counts_function)
set_tests_properties(incidents_counts_function PROPERTIES LABELS integration TIMEOUT 60)
