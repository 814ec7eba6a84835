# Project-wide compile flags and small helpers so every target is declared the
# same way (library and its test side by side).

set(VOUCH_WARNINGS -Wall -Wextra -Wnon-virtual-dtor)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND VOUCH_WARNINGS -Wshadow=local)  # clang has no =local form.
endif()
if(VOUCH_WERROR)
  list(APPEND VOUCH_WARNINGS -Werror)
endif()

if(VOUCH_FUZZ)
  # Coverage instrumentation for everything; -fsanitize=fuzzer (libFuzzer's
  # main) is added to the fuzz executables only (fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VOUCH_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# vouch_library(NAME <name> SRCS ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Declares static library vouch_<name> with alias vouch::<name>.
function(vouch_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(vouch_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(vouch::${ARG_NAME} ALIAS vouch_${ARG_NAME})
  target_include_directories(vouch_${ARG_NAME} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
    $<INSTALL_INTERFACE:include/vouch>)
  set_target_properties(vouch_${ARG_NAME} PROPERTIES EXPORT_NAME ${ARG_NAME})
  target_compile_options(vouch_${ARG_NAME} PRIVATE ${VOUCH_WARNINGS})
  target_link_libraries(vouch_${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS}
                        PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# vouch_binary(NAME <exe> SRCS ... DEPS ...)
function(vouch_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${VOUCH_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  # All programs land in build/<preset>/bin.
  set_target_properties(${ARG_NAME} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()

# vouch_test(NAME <name> SRCS ... DEPS ... [LABEL <label>])
# A Catch2 test executable; each TEST_CASE becomes one CTest test. Each
# test's Catch2 tags become its CTest labels ([pg] -> `ctest -L pg`; see
# VouchCatchLabels.cmake), and LABEL, if given, is added to every test of
# the binary.
function(vouch_test)
  cmake_parse_arguments(ARG "" "NAME;LABEL" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${VOUCH_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} Catch2::Catch2WithMain)
  set(properties TIMEOUT 300)
  if(ARG_LABEL)
    list(APPEND properties LABELS ${ARG_LABEL})
  endif()
  # --warn NoTests: a CTest entry whose name matches no test case fails
  # instead of passing empty (a ';' in a test name once split one in two).
  catch_discover_tests(${ARG_NAME}
    PROPERTIES ${properties}
    REPORTER compact
    EXTRA_ARGS --durations no --warn NoTests)
  # After catch's own include file (which adds the tests): tags -> labels.
  set(labels ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}_labels.cmake)
  file(GENERATE OUTPUT ${labels} CONTENT
    "include(${PROJECT_SOURCE_DIR}/cmake/VouchCatchLabels.cmake)\nvouch_label_catch_tests(\"$<TARGET_FILE:${ARG_NAME}>\" \"${ARG_LABEL}\")\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${labels})
endfunction()

# vouch_link_static(TARGET <exe> LIBS <pattern>...)
# Links the shared libraries named by the patterns (libNAME.so, NAME may use
# shell wildcards: absl_*) into <exe> as their static archives, with the
# libraries they need (cmake/static_link.py, run as the link launcher, so
# the libraries the project's targets use stay the same imported targets for
# every other binary). Fails the link if a matching archive is missing.
function(vouch_link_static)
  cmake_parse_arguments(ARG "" "TARGET" "LIBS" ${ARGN})
  find_program(VOUCH_PYTHON3 NAMES python3 REQUIRED)
  set(script ${PROJECT_SOURCE_DIR}/cmake/static_link.py)
  list(JOIN ARG_LIBS "," libs)
  set_target_properties(${ARG_TARGET} PROPERTIES
    CXX_LINKER_LAUNCHER "${VOUCH_PYTHON3};${script};--static;${libs};--"
    LINK_DEPENDS ${script})
endfunction()
