# libFuzzer targets for the config loader, the HTTP API's request parsing, the sinks'
# response parsing and the small parsers (fuzz_parsers). Each is built by clang on the side (a custom command: the gcc ASan build and
# its flags are untouched) when clang is installed, from the sources of the parser it drives;
# a 20 s run on its seed corpus (tests/fuzz/corpus-<name>) is a test. `make fuzz` runs every
# target longer. The decoder and rules targets are in events.cmake and rules.cmake.
find_program(VIGIL_CLANG_FUZZ NAMES clang clang-14)
if(NOT VIGIL_CLANG_FUZZ)
  message(STATUS "clang not found: the config, HTTP request, sink response and parsers fuzz targets are skipped")
  return()
endif()

set(fuzz_core
    ${PROJECT_SOURCE_DIR}/core/err.c ${PROJECT_SOURCE_DIR}/core/log.c
    ${PROJECT_SOURCE_DIR}/core/mem.c ${PROJECT_SOURCE_DIR}/core/util.c
    ${PROJECT_SOURCE_DIR}/core/map.c ${PROJECT_SOURCE_DIR}/core/json.c
    ${PROJECT_SOURCE_DIR}/core/event.c ${PROJECT_SOURCE_DIR}/core/event_decode.c
    ${PROJECT_SOURCE_DIR}/core/k8s.c ${PROJECT_SOURCE_DIR}/core/resource.c)

# vigil_fuzz(NAME SOURCES <files> [INCLUDES <dirs>] [FLAGS <cflags>] [LIBS <ldflags>])
# builds tests/fuzz/NAME.c with SOURCES into ${CMAKE_CURRENT_BINARY_DIR}/NAME and registers
# the 20 s run of it on tests/fuzz/corpus-<NAME without "fuzz_"> as the test NAME.
function(vigil_fuzz name)
  cmake_parse_arguments(F "" "" "SOURCES;INCLUDES;FLAGS;LIBS" ${ARGN})
  set(bin ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set(srcs ${PROJECT_SOURCE_DIR}/tests/fuzz/${name}.c ${F_SOURCES})
  set(incs -I${PROJECT_SOURCE_DIR}/include)
  foreach(d ${F_INCLUDES})
    list(APPEND incs -I${d})
  endforeach()
  add_custom_command(
    OUTPUT ${bin}
    COMMAND ${VIGIL_CLANG_FUZZ} -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
            -fno-omit-frame-pointer ${incs} ${F_FLAGS} ${srcs} -o ${bin} ${F_LIBS} -lpthread -lm
    DEPENDS ${srcs}
    COMMENT "libFuzzer: ${name} (clang)"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${bin})
  string(REPLACE "fuzz_" "" corpus ${name})
  string(REPLACE "_" "-" corpus ${corpus})
  add_test(NAME ${name}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run.sh ${bin}
                   ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus-${corpus} 20)
  set_tests_properties(${name} PROPERTIES LABELS "integration;fuzz" TIMEOUT 90)
endfunction()

vigil_fuzz(fuzz_config_load
  SOURCES ${fuzz_core} ${PROJECT_SOURCE_DIR}/core/yaml.c ${PROJECT_SOURCE_DIR}/core/config.c
  FLAGS ${CJSON_CFLAGS} ${YAML_CFLAGS}
  LIBS ${CJSON_LDFLAGS} ${YAML_LDFLAGS})

vigil_fuzz(fuzz_sink_response
  SOURCES ${PROJECT_SOURCE_DIR}/sinks/sinks_response.c ${PROJECT_SOURCE_DIR}/sinks/sinks_policy.c
          ${PROJECT_SOURCE_DIR}/core/err.c ${PROJECT_SOURCE_DIR}/core/log.c
          ${PROJECT_SOURCE_DIR}/core/mem.c ${PROJECT_SOURCE_DIR}/core/util.c
          ${PROJECT_SOURCE_DIR}/core/map.c ${PROJECT_SOURCE_DIR}/core/json.c
  INCLUDES ${PROJECT_SOURCE_DIR}/sinks
  FLAGS ${CJSON_CFLAGS} ${CURL_CFLAGS}
  LIBS ${CJSON_LDFLAGS} ${CURL_LDFLAGS})

vigil_fuzz(fuzz_http_request
  SOURCES ${fuzz_core} ${PROJECT_SOURCE_DIR}/core/page.c ${PROJECT_SOURCE_DIR}/api/api_parse.c
  INCLUDES ${PROJECT_SOURCE_DIR}/api
  FLAGS ${CJSON_CFLAGS} ${MICROHTTPD_CFLAGS}
  LIBS ${CJSON_LDFLAGS} ${MICROHTTPD_LDFLAGS})

# The small parsers with no target of their own, one target dispatching on the first byte: the
# redis URL (state/state_redis.c) and its redaction, silence matchers (the CLI's and the API's
# checks, then applied by a ruleset), the `vigil get -n` name glob, core/json.c's helpers against
# references, the JSON vigil reads back from Redis (silences, pages, grouped pages, incident
# records, the rules' incident state), RFC 3339 times and durations, the Resource hash codec, the
# history entry codec.
vigil_fuzz(fuzz_parsers
  SOURCES ${fuzz_core} ${PROJECT_SOURCE_DIR}/core/yaml.c ${PROJECT_SOURCE_DIR}/core/page.c
          ${PROJECT_SOURCE_DIR}/rules/rules.c ${PROJECT_SOURCE_DIR}/rules/rules_load.c
          ${PROJECT_SOURCE_DIR}/rules/rules_eval.c ${PROJECT_SOURCE_DIR}/rules/rules_template.c
          ${PROJECT_SOURCE_DIR}/rules/rules_tz.c ${PROJECT_SOURCE_DIR}/api/api_parse.c
          ${PROJECT_SOURCE_DIR}/state/state_redis.c ${PROJECT_SOURCE_DIR}/state/state_resource.c
          ${PROJECT_SOURCE_DIR}/state/state_inflight.c ${PROJECT_SOURCE_DIR}/state/state_history_entry.c
  INCLUDES ${PROJECT_SOURCE_DIR}/api ${PROJECT_SOURCE_DIR}/state ${PROJECT_SOURCE_DIR}/rules
  FLAGS ${CJSON_CFLAGS} ${YAML_CFLAGS} ${MICROHTTPD_CFLAGS} ${HIREDIS_CFLAGS}
  LIBS ${CJSON_LDFLAGS} ${YAML_LDFLAGS} ${MICROHTTPD_LDFLAGS} ${HIREDIS_LDFLAGS})
