# `vigil replay`: the real binary against real servers (state rebuilt, no pages, progress).
pkg_check_modules(REPLAY_HIREDIS REQUIRED IMPORTED_TARGET hiredis)
add_executable(test_replay integration/test_replay.c)
target_link_libraries(test_replay PRIVATE vg_testenv PkgConfig::CMOCKA PkgConfig::CJSON_T
                      PkgConfig::REPLAY_HIREDIS vg_build_flags)
add_test(NAME test_replay COMMAND test_replay)
set_tests_properties(test_replay PROPERTIES LABELS integration TIMEOUT 300
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
