# Tests of issue 4 (events in: Kubernetes pods and Events, runtime from pods, ordering, DLQ).
foreach(t events_k8s events_runtime events_order events_invalid)
  add_executable(test_${t} unit/test_${t}.c)
  target_compile_definitions(test_${t} PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
  target_link_libraries(test_${t} PRIVATE vg_testsupport vg_core PkgConfig::CMOCKA vg_build_flags)
  add_test(NAME test_${t} COMMAND test_${t})
  set_tests_properties(test_${t} PROPERTIES LABELS unit TIMEOUT 30)
endforeach()

# Integration: the real vigil binary, a private redis-server, the mock cluster, a DLQ reader.
pkg_check_modules(CJSON_EV4 REQUIRED IMPORTED_TARGET libcjson)
add_executable(test_events_dlq integration/test_events_dlq.c)
target_compile_definitions(test_events_dlq PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
target_link_libraries(test_events_dlq PRIVATE vg_testsupport vg_state vg_consumer vg_core
                      PkgConfig::CMOCKA PkgConfig::CJSON_EV4 PkgConfig::RDKAFKA vg_build_flags)
add_test(NAME test_events_dlq COMMAND test_events_dlq)
set_tests_properties(test_events_dlq PROPERTIES LABELS integration TIMEOUT 180
                     ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")

# libFuzzer target for the decoders, built by clang on the side (a custom command: the gcc
# ASan build and its flags are untouched) when clang is installed; a 30 s run is a test.
find_program(VIGIL_CLANG NAMES clang clang-14)
if(VIGIL_CLANG)
  set(ev4_fuzz_sources
      ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_decode.c
      ${PROJECT_SOURCE_DIR}/core/err.c ${PROJECT_SOURCE_DIR}/core/log.c
      ${PROJECT_SOURCE_DIR}/core/mem.c ${PROJECT_SOURCE_DIR}/core/util.c
      ${PROJECT_SOURCE_DIR}/core/map.c ${PROJECT_SOURCE_DIR}/core/json.c
      ${PROJECT_SOURCE_DIR}/core/event.c ${PROJECT_SOURCE_DIR}/core/event_decode.c
      ${PROJECT_SOURCE_DIR}/core/k8s.c ${PROJECT_SOURCE_DIR}/core/resource.c)
  set(ev4_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz_decode)
  add_custom_command(
    OUTPUT ${ev4_fuzz_bin}
    COMMAND ${VIGIL_CLANG} -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
            -fno-omit-frame-pointer -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/core
            ${CJSON_CFLAGS} ${ev4_fuzz_sources} -o ${ev4_fuzz_bin} ${CJSON_LDFLAGS} -lpthread -lm
    DEPENDS ${ev4_fuzz_sources}
    COMMENT "libFuzzer: fuzz_decode (clang)"
    VERBATIM)
  add_custom_target(fuzz_decode ALL DEPENDS ${ev4_fuzz_bin})
  add_test(NAME test_events_fuzz
           COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run.sh ${ev4_fuzz_bin}
                   ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus 30)
  set_tests_properties(test_events_fuzz PROPERTIES LABELS "integration;fuzz" TIMEOUT 120)
else()
  message(STATUS "clang not found: the decoder fuzz target and its test are skipped")
endif()

# Bad input never stops vigil: poison messages too large for the DLQ, and offsets that start
# again (a new cluster, a recreated topic). The real vigil binary, redis-server, the mock cluster.
foreach(t events_dlq_large events_offsets_reset)
  add_executable(test_${t} integration/test_${t}.c)
  target_compile_definitions(test_${t} PRIVATE VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures")
  target_link_libraries(test_${t} PRIVATE vg_testsupport vg_state vg_consumer vg_core
                        PkgConfig::CMOCKA PkgConfig::CJSON_EV4 PkgConfig::RDKAFKA vg_build_flags)
  add_test(NAME test_${t} COMMAND test_${t})
  set_tests_properties(test_${t} PROPERTIES LABELS integration TIMEOUT 180
                       ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
endforeach()
# Removes the recorded cluster ids with a raw command, as state written before they existed.
pkg_check_modules(HIREDIS_EV REQUIRED IMPORTED_TARGET hiredis)
target_link_libraries(test_events_offsets_reset PRIVATE PkgConfig::HIREDIS_EV)
