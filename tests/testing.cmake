# vigil_test: one test executable registered as one ctest test, the shape most tests share.
#
#   vigil_test(<executable> [NAME <ctest name>] SOURCES <file>... [INCLUDES <dir>...]
#              [DEFINITIONS <definition>...] LIBS <library>... LABELS <label>... TIMEOUT <s>
#              [RUNS_VIGIL])
#
# NAME defaults to the executable's name. Every test links cmocka and vg_build_flags.
# RUNS_VIGIL: the test runs the real binary, so vigil is built first and $VIGIL_BIN names it.
# Anything else (more properties, link options) goes on the target or test after the call.
function(vigil_test exe)
  cmake_parse_arguments(PARSE_ARGV 1 T "RUNS_VIGIL" "NAME;TIMEOUT"
                        "SOURCES;INCLUDES;DEFINITIONS;LIBS;LABELS")
  if(T_UNPARSED_ARGUMENTS OR NOT T_SOURCES OR NOT T_LABELS OR NOT T_TIMEOUT)
    message(FATAL_ERROR "vigil_test(${exe}): SOURCES, LABELS and TIMEOUT are required; "
                        "not understood: ${T_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT T_NAME)
    set(T_NAME ${exe})
  endif()
  add_executable(${exe} ${T_SOURCES})
  if(T_INCLUDES)
    target_include_directories(${exe} PRIVATE ${T_INCLUDES})
  endif()
  if(T_DEFINITIONS)
    target_compile_definitions(${exe} PRIVATE ${T_DEFINITIONS})
  endif()
  target_link_libraries(${exe} PRIVATE ${T_LIBS} PkgConfig::CMOCKA vg_build_flags)
  add_test(NAME ${T_NAME} COMMAND ${exe})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(T_RUNS_VIGIL)
    add_dependencies(${exe} vigil)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "VIGIL_BIN=$<TARGET_FILE:vigil>")
  endif()
endfunction()
