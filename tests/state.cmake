# Tests owned by the state module. Integration tests start their own
# redis-server (vg_redis_child_start) on a unix socket in a temp dir.
foreach(t state_commit state_idempotent state_outbox state_redis_down)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/integration/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vg_state vg_core vg_testsupport PkgConfig::CMOCKA
                        PkgConfig::HIREDIS vg_build_flags)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 60)
endforeach()

# The redis URL parser, through the private header: no sockets.
add_executable(test_state_url ${CMAKE_CURRENT_LIST_DIR}/unit/test_state_url.c)
target_include_directories(test_state_url PRIVATE ${PROJECT_SOURCE_DIR}/state)
target_link_libraries(test_state_url PRIVATE vg_state vg_core PkgConfig::CMOCKA
                      PkgConfig::HIREDIS vg_build_flags)
add_test(NAME state_url COMMAND test_state_url)
set_tests_properties(state_url PROPERTIES LABELS unit TIMEOUT 30)
