# End-to-end tests: the real vigil binary against real servers.
pkg_check_modules(CJSON_T REQUIRED IMPORTED_TARGET libcjson)

add_executable(test_e2e_page integration/test_e2e_page.c)
target_compile_definitions(test_e2e_page PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
target_link_libraries(test_e2e_page PRIVATE vg_testenv PkgConfig::CMOCKA PkgConfig::CJSON_T
                      vg_build_flags)
add_test(NAME test_e2e_page COMMAND test_e2e_page)
set_tests_properties(test_e2e_page PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# The demo, exactly as `make demo` runs it.
add_test(NAME test_e2e_demo COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_e2e_demo.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_e2e_demo PROPERTIES LABELS integration TIMEOUT 120)

# Source discipline: module DAG, library homes, banned functions.
add_test(NAME test_lint_source COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lint/check_source.sh)
set_tests_properties(test_lint_source PROPERTIES LABELS unit)

# The engine in process: no binary, the same backends.
add_executable(test_engine integration/test_engine.c)
target_link_libraries(test_engine PRIVATE vg_testenv PkgConfig::CMOCKA PkgConfig::CJSON_T
                      vg_build_flags)
add_test(NAME test_engine COMMAND test_engine)
set_tests_properties(test_engine PROPERTIES LABELS integration TIMEOUT 120)

# DEBUG: one line per committed batch with its steps' times and its oldest message's age.
add_executable(test_engine_batch_log integration/test_engine_batch_log.c)
target_link_libraries(test_engine_batch_log PRIVATE vg_testenv PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_engine_batch_log COMMAND test_engine_batch_log)
set_tests_properties(test_engine_batch_log PROPERTIES LABELS integration TIMEOUT 120
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# kafka.batch_commit_ms: a backlog's batch applied in parts, exactly once.
add_executable(test_engine_batch_parts integration/test_engine_batch_parts.c)
target_link_libraries(test_engine_batch_parts PRIVATE vg_testenv PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_engine_batch_parts COMMAND test_engine_batch_parts)
set_tests_properties(test_engine_batch_parts PROPERTIES LABELS integration TIMEOUT 180
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# kafka.batch_overlap_parts: a part decoded while the one before commits; the same outcome, a
# failed part leaves the later ones unapplied until the retry.
add_executable(test_engine_batch_overlap integration/test_engine_batch_overlap.c)
target_link_libraries(test_engine_batch_overlap PRIVATE vg_testenv PkgConfig::CMOCKA
                      PkgConfig::HIREDIS vg_build_flags)
add_test(NAME test_engine_batch_overlap COMMAND test_engine_batch_overlap)
set_tests_properties(test_engine_batch_overlap PROPERTIES LABELS integration TIMEOUT 240
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# Decode workers: the same stream with decode.threads 0 and 4 leaves the same Redis, DLQ, counts.
pkg_check_modules(DECODE_HIREDIS REQUIRED IMPORTED_TARGET hiredis)
add_executable(test_engine_decode_workers integration/test_engine_decode_workers.c)
target_compile_definitions(test_engine_decode_workers
                           PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
target_link_libraries(test_engine_decode_workers PRIVATE vg_testenv PkgConfig::CMOCKA
                      PkgConfig::DECODE_HIREDIS vg_build_flags)
add_test(NAME test_engine_decode_workers COMMAND test_engine_decode_workers)
set_tests_properties(test_engine_decode_workers PROPERTIES LABELS integration TIMEOUT 300)

# The decode workers themselves: every item once, the workers take part, joined at stop.
add_executable(test_engine_decode_pool unit/test_engine_decode_pool.c)
target_include_directories(test_engine_decode_pool PRIVATE ${PROJECT_SOURCE_DIR}/engine)
target_link_libraries(test_engine_decode_pool PRIVATE vg_engine PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_engine_decode_pool COMMAND test_engine_decode_pool)
set_tests_properties(test_engine_decode_pool PROPERTIES LABELS unit TIMEOUT 60)

# `vigil run --debug`: the facilities of the sources, and unknown ones refused.
add_test(NAME test_cli_debug COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_debug.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cli_debug PROPERTIES LABELS integration TIMEOUT 60)

# SIGTERM under load drains within 10 s; a second one exits at once, and nothing is lost.
add_executable(test_engine_sigterm integration/test_engine_sigterm.c)
target_link_libraries(test_engine_sigterm PRIVATE vg_testrefmodel vg_testenv PkgConfig::CMOCKA
                      vg_build_flags)
add_test(NAME test_engine_sigterm COMMAND test_engine_sigterm)
set_tests_properties(test_engine_sigterm PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# Formatting: clang-format finds nothing to change (make format rewrites).
add_test(NAME test_lint_format COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lint/check_format.sh)
set_tests_properties(test_lint_format PROPERTIES LABELS unit)
