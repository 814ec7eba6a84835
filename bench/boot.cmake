# Benchmarks for vouch::core_boot (included by bench/CMakeLists.txt).
# Goal (issue #5): parse + replay of a ~50 KB event log in <= 1 ms.
# Full run: build/release/bench/bench_boot
# A bigger synthetic log: VOUCH_BENCH_BOOT_LOG_KB=4096 build/release/bench/bench_boot
add_executable(bench_boot bench_boot.cc)
target_compile_options(bench_boot PRIVATE ${VOUCH_WARNINGS})
target_link_libraries(bench_boot PRIVATE vouch::core_boot benchmark::benchmark)
target_compile_definitions(bench_boot PRIVATE
  VOUCH_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
add_test(NAME bench_boot_runs COMMAND bench_boot --benchmark_min_time=0.01)
