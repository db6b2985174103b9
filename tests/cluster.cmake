# Tests of state/'s Redis Cluster client on a real cluster: six redis-server processes in
# cluster mode on 127.0.0.1 (tests/support/redis_cluster.h), created with redis-cli.
pkg_check_modules(CLUSTER_HIREDIS REQUIRED IMPORTED_TARGET hiredis)

# Starting the cluster takes a few seconds, a failover about three (cluster-node-timeout 2000);
# the tests' own deadlines are below this, so a slow run fails with the test's message.
vigil_test(test_state_cluster NAME state_cluster
           SOURCES integration/test_state_cluster.c support/redis_cluster.c
           INCLUDES ${PROJECT_SOURCE_DIR}/state ${CMAKE_CURRENT_LIST_DIR}/support
           LIBS vg_state vg_core vg_testsupport PkgConfig::CLUSTER_HIREDIS
           LABELS integration TIMEOUT 180)

# vigil on a Redis Cluster: the real binary given one node's address with `cluster: true`, the
# end-to-end scenario, a reshard and a failover of the primary that holds vigil's slot.
pkg_check_modules(CLUSTER_CJSON REQUIRED IMPORTED_TARGET libcjson)
foreach(t cluster_e2e cluster_reshard cluster_failover cluster_readyz cluster_outbox
          cluster_partitioned_e2e cluster_partitioned_reshard cluster_partitioned_failover
          cluster_dispatch_idle)
  # The cluster starts in a few seconds, the scenario takes well under a minute; above the
  # tests' own deadlines, so a slow run fails with the test's message.
  vigil_test(test_${t} NAME ${t}
             SOURCES integration/test_${t}.c integration/cluster_common.c support/redis_cluster.c
             INCLUDES ${PROJECT_SOURCE_DIR}/state ${CMAKE_CURRENT_LIST_DIR}/support
             LIBS vg_testrefmodel vg_testenv vg_state vg_core vg_testsupport
                  PkgConfig::CLUSTER_CJSON PkgConfig::CLUSTER_HIREDIS
             LABELS integration cluster TIMEOUT 180 RUNS_VIGIL)
endforeach()

# The redis section's cluster keys as vigil.yaml loads them: no sockets.
vigil_test(test_core_config_cluster SOURCES unit/test_core_config_cluster.c
           LIBS vg_testsupport vg_core LABELS unit TIMEOUT 30)

# The partitioned layout's scopes on one redis-server and on a real cluster (three primaries,
# one replica each), and the replay's swap of a partitioned state on both.
# the cluster starts in a few seconds, the failover takes about three
vigil_test(test_state_scope NAME state_scope
           SOURCES integration/test_state_scope.c support/redis_cluster.c
           INCLUDES ${PROJECT_SOURCE_DIR}/state ${CMAKE_CURRENT_LIST_DIR}/support
           LIBS vg_teststate vg_state vg_core vg_testsupport PkgConfig::CLUSTER_HIREDIS
           LABELS integration cluster TIMEOUT 180)
# Commits in flight together (the partitioned layout's parts of a batch): on one redis-server
# (a read between them, a fenced-out one, a killed connection) and on a real cluster.
add_executable(test_state_commit_inflight
               ${CMAKE_CURRENT_LIST_DIR}/integration/test_state_commit_inflight.c
               ${CMAKE_CURRENT_LIST_DIR}/support/redis_cluster.c)
target_include_directories(test_state_commit_inflight PRIVATE ${PROJECT_SOURCE_DIR}/state
                           ${CMAKE_CURRENT_LIST_DIR}/support)
target_link_libraries(test_state_commit_inflight PRIVATE vg_teststate vg_state vg_core
                      vg_testsupport PkgConfig::CMOCKA PkgConfig::CLUSTER_HIREDIS vg_build_flags)
add_test(NAME state_commit_inflight COMMAND test_state_commit_inflight)
set_tests_properties(state_commit_inflight PROPERTIES LABELS "integration;cluster" TIMEOUT 120)
# redis.wait_replicas: a WAIT that fell short is owed by the node that took the commit, through
# a lost connection: on one redis-server with a replica, and on a cluster with replicas.
add_executable(test_state_wait_owed ${CMAKE_CURRENT_LIST_DIR}/integration/test_state_wait_owed.c
               ${CMAKE_CURRENT_LIST_DIR}/support/redis_cluster.c)
target_include_directories(test_state_wait_owed PRIVATE ${PROJECT_SOURCE_DIR}/state
                           ${CMAKE_CURRENT_LIST_DIR}/support)
target_link_libraries(test_state_wait_owed PRIVATE vg_teststate vg_state vg_core vg_testsupport
                      PkgConfig::CMOCKA PkgConfig::CLUSTER_HIREDIS vg_build_flags)
add_test(NAME state_wait_owed COMMAND test_state_wait_owed)
set_tests_properties(state_wait_owed PROPERTIES LABELS "integration;cluster" TIMEOUT 180)
# redis.layout partitioned on the cluster: a batch over 12 partitions committed one single-slot
# MULTI/EXEC per partition, on more than one primary.
add_executable(test_cluster_partitioned_pipeline
               ${CMAKE_CURRENT_LIST_DIR}/integration/test_cluster_partitioned_pipeline.c
               ${CMAKE_CURRENT_LIST_DIR}/integration/cluster_common.c
               ${CMAKE_CURRENT_LIST_DIR}/support/redis_cluster.c)
target_include_directories(test_cluster_partitioned_pipeline PRIVATE ${PROJECT_SOURCE_DIR}/state
                           ${CMAKE_CURRENT_LIST_DIR}/support)
target_link_libraries(test_cluster_partitioned_pipeline PRIVATE vg_testrefmodel vg_testenv vg_state
                      vg_core vg_testsupport PkgConfig::CMOCKA PkgConfig::CLUSTER_CJSON
                      PkgConfig::CLUSTER_HIREDIS vg_build_flags)
add_dependencies(test_cluster_partitioned_pipeline vigil)
add_test(NAME cluster_partitioned_pipeline COMMAND test_cluster_partitioned_pipeline)
set_tests_properties(cluster_partitioned_pipeline PROPERTIES LABELS "integration;cluster" TIMEOUT 180
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
