# The vigil command line in everyday use: check, help, config, sink test, replay,
# logging, and the example rule repository.
pkg_check_modules(CJSON_CLI REQUIRED IMPORTED_TARGET libcjson)

add_executable(test_core_config_check unit/test_core_config_check.c)
target_link_libraries(test_core_config_check PRIVATE vg_testsupport vg_core PkgConfig::CMOCKA
                      PkgConfig::CJSON_CLI vg_build_flags)
add_test(NAME test_core_config_check COMMAND test_core_config_check)
set_tests_properties(test_core_config_check PROPERTIES LABELS unit TIMEOUT 30)

# `vigil check`: every error in one run, positions, did-you-mean, exit codes, --format github.
add_test(NAME test_cli_check COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_check.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cli_check PROPERTIES LABELS integration TIMEOUT 60)

# `vigil help CMD` = `vigil CMD --help`, describing every flag; did-you-mean for commands.
add_test(NAME test_cli_help COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_help.sh
         $<TARGET_FILE:vigil>)
set_tests_properties(test_cli_help PROPERTIES LABELS integration TIMEOUT 60)

# VIGIL_* environment overrides and `vigil config print` (redacted, loadable).
add_test(NAME test_cli_config COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_config.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cli_config PROPERTIES LABELS integration TIMEOUT 60)

# `vigil sink test` against a real receiver.
add_executable(test_cli_sink integration/test_cli_sink.c)
target_link_libraries(test_cli_sink PRIVATE vg_testenv PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_cli_sink COMMAND test_cli_sink)
set_tests_properties(test_cli_sink PROPERTIES LABELS integration TIMEOUT 120
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# INFO lines of `vigil run` (one per page delivered, one per rebalance) and log.format: json.
add_executable(test_cli_logging integration/test_cli_logging.c)
target_link_libraries(test_cli_logging PRIVATE vg_testenv PkgConfig::CMOCKA PkgConfig::CJSON_CLI
                      vg_build_flags)
add_test(NAME test_cli_logging COMMAND test_cli_logging)
set_tests_properties(test_cli_logging PROPERTIES LABELS integration TIMEOUT 180
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# examples/rule-repo: its CI steps pass, and a typo fails them with an annotation.
add_test(NAME test_cli_rule_repo COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_rule_repo.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cli_rule_repo PROPERTIES LABELS integration TIMEOUT 60)

# `vigil get`, `history` and `incidents` given only --redis: the layout is the data's.
add_executable(test_cli_layout_detect integration/test_cli_layout_detect.c)
target_link_libraries(test_cli_layout_detect PRIVATE vg_testenv PkgConfig::CMOCKA vg_build_flags)
add_test(NAME test_cli_layout_detect COMMAND test_cli_layout_detect)
set_tests_properties(test_cli_layout_detect PROPERTIES LABELS integration TIMEOUT 120
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
