# Tests of the state in Redis (the state module, `vigil get`, `vigil history`).
# The integration tests of state/ alone get a redis-server with a vg_state on
# it from tests/support/state_redis.h; the end-to-end ones get redis-server,
# librdkafka's mock cluster and the real vigil binary (VIGIL_BIN) from the one
# environment, tests/support/env.h.
foreach(t state_commit state_commit_errors state_commit_split state_idempotent state_outbox state_redis_down state_child_aof
          state_cache_index state_group_buffer)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vg_teststate vg_state vg_core vg_testsupport
                        PkgConfig::CMOCKA PkgConfig::HIREDIS vg_build_flags)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 60)
endforeach()

# The per-partition fence (claims, refused commits): through state/'s private header for the
# hook that moves an epoch between a commit's WATCH and its EXEC.
add_executable(test_state_fence ${CMAKE_CURRENT_LIST_DIR}/integration/test_state_fence.c)
target_include_directories(test_state_fence PRIVATE ${PROJECT_SOURCE_DIR}/state)
target_link_libraries(test_state_fence PRIVATE vg_teststate vg_state vg_core vg_testsupport
                      PkgConfig::CMOCKA PkgConfig::HIREDIS vg_build_flags)
add_test(NAME state_fence COMMAND test_state_fence)
set_tests_properties(state_fence PROPERTIES LABELS integration TIMEOUT 60)

# The Resource cache partition by partition (a rebalance drops only the moved partitions').
add_executable(test_state_cache_partitions
               ${CMAKE_CURRENT_LIST_DIR}/integration/test_state_cache_partitions.c)
target_link_libraries(test_state_cache_partitions PRIVATE vg_teststate vg_state vg_core
                      vg_testsupport PkgConfig::CMOCKA PkgConfig::HIREDIS vg_build_flags)
add_test(NAME state_cache_partitions COMMAND test_state_cache_partitions)
set_tests_properties(state_cache_partitions PROPERTIES LABELS integration TIMEOUT 60)

pkg_check_modules(STATE_CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(STATE_HIREDIS REQUIRED IMPORTED_TARGET hiredis)

foreach(t state_golden state_auth state_replay state_crash state_redis_restart
          embedded_redis_restart engine_fence)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_${t}.c)
  target_compile_definitions(test_${t} PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
  target_link_libraries(test_${t} PRIVATE vg_testrefmodel vg_teststate vg_state vg_consumer vg_core vg_testsupport PkgConfig::CMOCKA
                        PkgConfig::STATE_CJSON PkgConfig::STATE_HIREDIS vg_build_flags)
  add_dependencies(test_${t} vigil)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 60
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()
# waits out at least one 5 s ERROR interval and the consumer's 5 s retry backoff
set_tests_properties(embedded_redis_restart PROPERTIES TIMEOUT 120)
# Several vigil runs (each rejoining the group) of a few thousand events under ASan: ~25 s on an
# idle machine, far more on a loaded one. Above the tests' own deadlines, so a slow run fails
# with the test's message, not ctest's.
set_tests_properties(state_crash state_redis_restart PROPERTIES TIMEOUT 300)

# Through state/'s private header, no sockets: the redis URL parser; the RESP argument writer
# (strings, integers, name/value pairs); the Resource hash codec, from HGETALL replies built by
# hand.
foreach(t state_url state_cmd state_hash)
  vigil_test(test_${t} NAME ${t} SOURCES unit/test_${t}.c INCLUDES ${PROJECT_SOURCE_DIR}/state
             LIBS vg_state vg_core PkgConfig::HIREDIS LABELS unit TIMEOUT 30)
endforeach()

# The pure rendering of `vigil get` (ages, widths, YAML scalars, the grid):
# cli/render.c and cli/cmd_get.c compiled in (with cli/options.c), with stubs
# for what they call in the rest of cli/.
vigil_test(test_get_format NAME get_format
           SOURCES unit/test_get_format.c ${PROJECT_SOURCE_DIR}/cli/cmd_get.c
                   ${PROJECT_SOURCE_DIR}/cli/render.c ${PROJECT_SOURCE_DIR}/cli/options.c
                   support/cli_engine_stub.c
           INCLUDES ${PROJECT_SOURCE_DIR}/cli LIBS vg_state vg_core LABELS unit TIMEOUT 30)

# The flags the read-only commands share (cli/options.c): parsed once, with each command's own.
vigil_test(test_cli_options NAME cli_options
           SOURCES unit/test_cli_options.c ${PROJECT_SOURCE_DIR}/cli/options.c
                   support/cli_engine_stub.c
           INCLUDES ${PROJECT_SOURCE_DIR}/cli LIBS vg_state vg_core LABELS unit TIMEOUT 30)

# The partitioned key layout read back whole: the state readers, the real `vigil get`,
# `vigil history`, `vigil incidents` and the HTTP API, on one redis-server and on a real
# Redis Cluster with the partitions' scopes on several primaries.
pkg_check_modules(PARTREAD_CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(PARTREAD_HIREDIS REQUIRED IMPORTED_TARGET hiredis)
add_executable(test_state_partitioned_read
               ${CMAKE_CURRENT_LIST_DIR}/integration/test_state_partitioned_read.c
               ${CMAKE_CURRENT_LIST_DIR}/integration/cluster_common.c
               ${CMAKE_CURRENT_LIST_DIR}/support/redis_cluster.c)
target_include_directories(test_state_partitioned_read PRIVATE ${PROJECT_SOURCE_DIR}/state
                           ${CMAKE_CURRENT_LIST_DIR}/support ${CMAKE_CURRENT_LIST_DIR}/integration)
target_link_libraries(test_state_partitioned_read PRIVATE vg_testrefmodel vg_testenv vg_teststate
                      vg_state vg_core vg_testsupport PkgConfig::CMOCKA PkgConfig::PARTREAD_CJSON
                      PkgConfig::PARTREAD_HIREDIS vg_build_flags)
add_dependencies(test_state_partitioned_read vigil)
add_test(NAME state_partitioned_read COMMAND test_state_partitioned_read)
set_tests_properties(state_partitioned_read PROPERTIES LABELS "integration;cluster" TIMEOUT 240
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
