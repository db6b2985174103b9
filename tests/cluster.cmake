# Tests of state/'s Redis Cluster client on a real cluster: six redis-server processes in
# cluster mode on 127.0.0.1 (tests/support/redis_cluster.h), created with redis-cli.
pkg_check_modules(CLUSTER_HIREDIS REQUIRED IMPORTED_TARGET hiredis)

add_executable(test_state_cluster ${CMAKE_CURRENT_LIST_DIR}/integration/test_state_cluster.c
               ${CMAKE_CURRENT_LIST_DIR}/support/redis_cluster.c)
target_include_directories(test_state_cluster PRIVATE ${PROJECT_SOURCE_DIR}/state
                           ${CMAKE_CURRENT_LIST_DIR}/support)
target_link_libraries(test_state_cluster PRIVATE vg_state vg_core vg_testsupport PkgConfig::CMOCKA
                      PkgConfig::CLUSTER_HIREDIS vg_build_flags)
add_test(NAME state_cluster COMMAND test_state_cluster)
# Starting the cluster takes a few seconds, a failover about three (cluster-node-timeout 2000);
# the tests' own deadlines are below this, so a slow run fails with the test's message.
set_tests_properties(state_cluster PROPERTIES LABELS integration TIMEOUT 180)
