# End-to-end tests: the real vigil binary against real servers.
pkg_check_modules(CJSON_T REQUIRED IMPORTED_TARGET libcjson)

vigil_test(test_e2e_page SOURCES integration/test_e2e_page.c
           DEFINITIONS VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures"
           LIBS vg_testenv PkgConfig::CJSON_T LABELS integration TIMEOUT 300 RUNS_VIGIL)

# The demo, exactly as `make demo` runs it.
add_test(NAME test_e2e_demo COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_e2e_demo.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_e2e_demo PROPERTIES LABELS integration TIMEOUT 120)

# Source discipline: module DAG, library homes, banned functions.
add_test(NAME test_lint_source COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lint/check_source.sh)
set_tests_properties(test_lint_source PROPERTIES LABELS unit)

# The engine in process: no binary, the same backends.
vigil_test(test_engine SOURCES integration/test_engine.c LIBS vg_testenv PkgConfig::CJSON_T
           LABELS integration TIMEOUT 120)

# DEBUG: one line per committed batch with its steps' times and its oldest message's age.
vigil_test(test_engine_batch_log SOURCES integration/test_engine_batch_log.c LIBS vg_testenv
           LABELS integration TIMEOUT 120 RUNS_VIGIL)

# kafka.batch_commit_ms: a backlog's batch applied in parts, exactly once.
vigil_test(test_engine_batch_parts SOURCES integration/test_engine_batch_parts.c LIBS vg_testenv
           LABELS integration TIMEOUT 180 RUNS_VIGIL)

# kafka.batch_overlap_parts: a part decoded while the one before commits; the same outcome, a
# failed part leaves the later ones unapplied until the retry.
vigil_test(test_engine_batch_overlap SOURCES integration/test_engine_batch_overlap.c
           LIBS vg_testenv PkgConfig::HIREDIS LABELS integration TIMEOUT 240 RUNS_VIGIL)

# Decode workers: the same stream with decode.threads 0 and 4 leaves the same Redis, DLQ, counts.
pkg_check_modules(DECODE_HIREDIS REQUIRED IMPORTED_TARGET hiredis)
vigil_test(test_engine_decode_workers SOURCES integration/test_engine_decode_workers.c
           DEFINITIONS VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures"
           LIBS vg_testenv PkgConfig::DECODE_HIREDIS LABELS integration TIMEOUT 300)

# The decode workers themselves: every item once, the workers take part, joined at stop.
vigil_test(test_engine_decode_pool SOURCES unit/test_engine_decode_pool.c
           INCLUDES ${PROJECT_SOURCE_DIR}/engine LIBS vg_engine LABELS unit TIMEOUT 60)

# `vigil run --debug`: the facilities of the sources, and unknown ones refused.
add_test(NAME test_cli_debug COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_debug.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cli_debug PROPERTIES LABELS integration TIMEOUT 60)

# SIGTERM under load drains within 10 s; a second one exits at once, and nothing is lost.
vigil_test(test_engine_sigterm SOURCES integration/test_engine_sigterm.c
           LIBS vg_testrefmodel vg_testenv LABELS integration TIMEOUT 300 RUNS_VIGIL)

# Formatting: clang-format finds nothing to change (make format rewrites).
add_test(NAME test_lint_format COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lint/check_format.sh)
set_tests_properties(test_lint_format PROPERTIES LABELS unit)
