# Scale-out: several `vigil run` instances in one consumer group hand partitions, timers and
# outbox entries over (docs/scaling.md), and the Resource cache keeps memory bounded under a
# backlog. Real binaries against the environment of tests/support/env.h.
pkg_check_modules(SCALEOUT_CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(SCALEOUT_HIREDIS REQUIRED IMPORTED_TARGET hiredis)

foreach(t scaleout_timers scaleout_outbox scaleout_revoke scaleout_memory engine_rebalance_cache)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vg_testrefmodel vg_testenv vg_testsupport vg_state
                        vg_consumer vg_core PkgConfig::CMOCKA PkgConfig::SCALEOUT_CJSON PkgConfig::SCALEOUT_HIREDIS
                        vg_build_flags)
  add_dependencies(test_${t} vigil)
  add_test(NAME ${t} COMMAND test_${t})
  # Above the tests' own deadlines, so a slow run fails with the test's message.
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 240
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()

# redis.layout partitioned: the pipeline's parts of a batch in flight together (through its batch
# handler and the fence hook of state/'s private header), a middle part fenced out and retried.
add_executable(test_engine_commit_inflight
               ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_commit_inflight.c)
target_include_directories(test_engine_commit_inflight PRIVATE ${PROJECT_SOURCE_DIR}/engine
                           ${PROJECT_SOURCE_DIR}/state)
target_link_libraries(test_engine_commit_inflight PRIVATE vg_engine vg_teststate vg_testsupport
                      vg_state vg_core PkgConfig::CMOCKA PkgConfig::SCALEOUT_HIREDIS
                      vg_build_flags)
add_test(NAME engine_commit_inflight COMMAND test_engine_commit_inflight)
set_tests_properties(engine_commit_inflight PROPERTIES LABELS integration TIMEOUT 60)

# Commit lanes belong to the pipeline: the real `vigil run` on 8 partitions and 4 lanes holds 4
# connections for its pipeline and 1 for its dispatcher; a CLI reader walking every scope opens 1.
add_executable(test_engine_commit_lanes ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_commit_lanes.c)
target_link_libraries(test_engine_commit_lanes PRIVATE vg_testenv vg_testsupport vg_state vg_core
                      PkgConfig::CMOCKA PkgConfig::SCALEOUT_HIREDIS vg_build_flags)
add_dependencies(test_engine_commit_lanes vigil)
add_test(NAME engine_commit_lanes COMMAND test_engine_commit_lanes)
set_tests_properties(engine_commit_lanes PROPERTIES LABELS integration TIMEOUT 240
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# redis.layout partitioned on one redis-server: each partition's part of a batch in its scope,
# timers and group buffers per partition, nothing applied twice after a restart.
add_executable(test_engine_partitioned ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_partitioned.c)
target_link_libraries(test_engine_partitioned PRIVATE vg_testenv vg_testsupport vg_state vg_core
                      PkgConfig::CMOCKA PkgConfig::SCALEOUT_CJSON PkgConfig::SCALEOUT_HIREDIS
                      vg_build_flags)
add_dependencies(test_engine_partitioned vigil)
target_compile_definitions(test_engine_partitioned
                           PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
add_test(NAME engine_partitioned COMMAND test_engine_partitioned)
set_tests_properties(engine_partitioned PROPERTIES LABELS integration TIMEOUT 240
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
