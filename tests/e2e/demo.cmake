# Included from tests/e2e/CMakeLists.txt, and from tests/CMakeLists.txt when
# only the shipped build's tests are built (VOUCH_SHIPPED_TESTS_ONLY).
# scripts/demo --detach end to end with the built programs ([e2e][pg][tpm]):
# contexts, -o formats, describe, and the new-user defects.
vouch_test(NAME e2e_demo_tests
  SRCS ${CMAKE_CURRENT_LIST_DIR}/demo_test.cc
  DEPS vouch::test_harness nlohmann_json::nlohmann_json
  LABEL e2e)
target_include_directories(e2e_demo_tests PRIVATE
  ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
target_compile_definitions(e2e_demo_tests PRIVATE
  VOUCH_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  VOUCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(e2e_demo_tests vouch-agent vouch-registrar vouch-verifier
                 vouchctl vouch-testenv)
