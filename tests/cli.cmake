# The vigil command line in everyday use: check, help, config, sink test, replay,
# logging, and the example rule repository.
pkg_check_modules(CJSON_CLI REQUIRED IMPORTED_TARGET libcjson)

vigil_test(test_core_config_check SOURCES unit/test_core_config_check.c
           LIBS vg_testsupport vg_core PkgConfig::CJSON_CLI LABELS unit TIMEOUT 30)

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
vigil_test(test_cli_sink SOURCES integration/test_cli_sink.c LIBS vg_testenv
           LABELS integration TIMEOUT 120 RUNS_VIGIL)

# INFO lines of `vigil run` (one per page delivered, one per rebalance) and log.format: json.
vigil_test(test_cli_logging SOURCES integration/test_cli_logging.c
           LIBS vg_testenv PkgConfig::CJSON_CLI LABELS integration TIMEOUT 180 RUNS_VIGIL)

# examples/rule-repo: its CI steps pass, and a typo fails them with an annotation.
add_test(NAME test_cli_rule_repo COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli_rule_repo.sh
         $<TARGET_FILE:vigil> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cli_rule_repo PROPERTIES LABELS integration TIMEOUT 60)

# `vigil get`, `history` and `incidents` given only --redis: the layout is the data's.
vigil_test(test_cli_layout_detect SOURCES integration/test_cli_layout_detect.c LIBS vg_testenv
           LABELS integration TIMEOUT 120 RUNS_VIGIL)
