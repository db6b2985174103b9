# Events in: Kubernetes pods and Events, runtime from pods, ordering, the DLQ.
foreach(t events_k8s events_runtime events_order events_invalid)
  vigil_test(test_${t} SOURCES unit/test_${t}.c
             DEFINITIONS VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures"
             LIBS vg_testsupport vg_core LABELS unit TIMEOUT 30)
endforeach()

# Integration: the real vigil binary on the env (tests/support/env.h), with the DLQ read back.
pkg_check_modules(EVENTS_CJSON REQUIRED IMPORTED_TARGET libcjson)
# Bad input never stops vigil: poison messages of every class, too large for the DLQ, events
# from the future, and offsets that start again (a new cluster, a recreated topic).
foreach(t events_dlq events_dlq_large events_offsets_reset)
  vigil_test(test_${t} SOURCES integration/test_${t}.c
             DEFINITIONS VG_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures"
             LIBS vg_testenv PkgConfig::EVENTS_CJSON LABELS integration TIMEOUT 180 RUNS_VIGIL)
endforeach()
# Removes the recorded cluster ids with a raw command, as state written before they existed.
target_link_libraries(test_events_offsets_reset PRIVATE PkgConfig::HIREDIS)

# libFuzzer target for the decoders, built by clang on the side (a custom command: the gcc
# ASan build and its flags are untouched) when clang is installed; a 30 s run is a test.
find_program(VIGIL_CLANG NAMES clang clang-14)
if(VIGIL_CLANG)
  set(events_fuzz_sources
      ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_decode.c
      ${PROJECT_SOURCE_DIR}/core/err.c ${PROJECT_SOURCE_DIR}/core/log.c
      ${PROJECT_SOURCE_DIR}/core/mem.c ${PROJECT_SOURCE_DIR}/core/util.c
      ${PROJECT_SOURCE_DIR}/core/map.c ${PROJECT_SOURCE_DIR}/core/json.c
      ${PROJECT_SOURCE_DIR}/core/event.c ${PROJECT_SOURCE_DIR}/core/event_decode.c
      ${PROJECT_SOURCE_DIR}/core/k8s.c ${PROJECT_SOURCE_DIR}/core/resource.c)
  set(events_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz_decode)
  add_custom_command(
    OUTPUT ${events_fuzz_bin}
    COMMAND ${VIGIL_CLANG} -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
            -fno-omit-frame-pointer -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/core
            ${CJSON_CFLAGS} ${events_fuzz_sources} -o ${events_fuzz_bin} ${CJSON_LDFLAGS} -lpthread -lm
    DEPENDS ${events_fuzz_sources}
    COMMENT "libFuzzer: fuzz_decode (clang)"
    VERBATIM)
  add_custom_target(fuzz_decode ALL DEPENDS ${events_fuzz_bin})
  add_test(NAME test_events_fuzz
           COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run.sh ${events_fuzz_bin}
                   ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus 30)
  set_tests_properties(test_events_fuzz PROPERTIES LABELS "integration;fuzz" TIMEOUT 120)
else()
  message(STATUS "clang not found: the decoder fuzz target and its test are skipped")
endif()

