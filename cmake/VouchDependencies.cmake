# Finds every third-party dependency once, from the distribution's packages.
# Nothing is downloaded at configure or build time.

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# protobuf 3.21 on Debian ships no CMake config: use CMake's FindProtobuf
# (module mode), which provides protobuf::libprotobuf and protobuf_generate().
find_package(Protobuf REQUIRED MODULE)
# gRPC ships a CMake config (gRPC::grpc++, gRPC::grpc_cpp_plugin).
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(tomlplusplus CONFIG REQUIRED)  # Headers only; see src/common.
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
# simdjson: runtime policies (tens of MB of JSON) parse at GB/s; see docs/ima.md.
find_package(simdjson CONFIG REQUIRED)
# prometheus-cpp: metric types and the text format; civetweb (its HTTP
# server, a dependency of Debian's prometheus-cpp-dev) serves /metrics,
# /healthz and /readyz; see docs/observability.md.
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(civetweb CONFIG REQUIRED)

pkg_check_modules(TSS2 REQUIRED IMPORTED_TARGET tss2-esys tss2-mu tss2-tctildr tss2-rc)
pkg_check_modules(TSS2_MU REQUIRED IMPORTED_TARGET tss2-mu)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
# sd_notify(3) for Type=notify readiness (src/server/service_notify.h).
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
# HTTPS clients (src/common/https_client.h: webhook deliveries).
find_package(CURL REQUIRED)

if(VOUCH_BUILD_TESTS)
  find_package(Catch2 2.13 CONFIG REQUIRED)
  include(Catch)
endif()
if(VOUCH_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)
endif()
