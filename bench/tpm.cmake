# Quote verification with a cached AIK, AIK decoding, software MakeCredential
# (vouch::core_tpm), on the golden tpm2-tools files in tests/tpm/data.
# Full run: build/release/bench/bench_tpm --benchmark_min_time=1
add_executable(bench_tpm bench_tpm.cc)
target_compile_options(bench_tpm PRIVATE ${VOUCH_WARNINGS})
target_link_libraries(bench_tpm PRIVATE vouch::core_tpm benchmark::benchmark)
target_compile_definitions(bench_tpm PRIVATE
  VOUCH_TPM_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/tpm/data")
add_test(NAME bench_tpm_runs COMMAND bench_tpm --benchmark_min_time=0.01)
