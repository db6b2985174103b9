# Tests owned by the consumer module. Each starts librdkafka's mock cluster
# in process (vg_mock_kafka_start) on 127.0.0.1; topics and groups carry the pid.
foreach(t consumer_batches consumer_retry consumer_restart consumer_rebalance consumer_fatal
          consumer_bad_props consumer_mock consumer_mock_broker_down consumer_mock_produce_retry
          consumer_prefetch)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vg_testkafka vg_consumer vg_core vg_testsupport PkgConfig::CMOCKA
                        vg_build_flags)
endforeach()
# Reaches into consumer/consumer_int.h for a fabricated fatal error (rd_kafka_test_fatal_error).
target_include_directories(test_consumer_fatal PRIVATE ${PROJECT_SOURCE_DIR}/consumer)
# And for librdkafka's statistics of its prefetch queue (consumer_test_prefetch_peak).
target_include_directories(test_consumer_prefetch PRIVATE ${PROJECT_SOURCE_DIR}/consumer)

foreach(t consumer_batches consumer_retry consumer_restart consumer_fatal consumer_bad_props
          consumer_mock consumer_mock_broker_down consumer_mock_produce_retry consumer_prefetch)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 60)
endforeach()

# Two ~10 s rebalances (eager, cooperative): separate ctest entries so they run in parallel.
foreach(mode eager cooperative)
  add_test(NAME consumer_rebalance_${mode} COMMAND test_consumer_rebalance test_rebalance_${mode})
  # Above the test's own 60 s deadline, so a slow run fails with the test's message.
  set_tests_properties(consumer_rebalance_${mode} PROPERTIES LABELS integration TIMEOUT 180)
endforeach()

# Unit: how kafka.prefetch_mb is split into librdkafka's settings (consumer/consumer_int.h).
add_executable(test_consumer_prefetch_split ${CMAKE_CURRENT_LIST_DIR}/unit/test_consumer_prefetch_split.c)
target_include_directories(test_consumer_prefetch_split PRIVATE ${PROJECT_SOURCE_DIR}/consumer)
target_link_libraries(test_consumer_prefetch_split PRIVATE vg_consumer vg_core PkgConfig::CMOCKA
                      vg_build_flags)
add_test(NAME test_consumer_prefetch_split COMMAND test_consumer_prefetch_split)
set_tests_properties(test_consumer_prefetch_split PROPERTIES LABELS unit TIMEOUT 30)
