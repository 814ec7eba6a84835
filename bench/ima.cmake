# IMA: full check (template hash + PCR 10 extend + excludes + policy lookup)
# and policy loading. Size: VOUCH_BENCH_IMA_ENTRIES (default 20000 so the
# CTest run is quick; the goals are measured with 1000000, see README.md).
add_executable(bench_ima bench_ima.cc)
target_compile_options(bench_ima PRIVATE ${VOUCH_WARNINGS})
target_link_libraries(bench_ima PRIVATE vouch::core_ima benchmark::benchmark)
add_test(NAME bench_ima_runs COMMAND bench_ima --benchmark_min_time=0.01)
