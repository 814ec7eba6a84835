#!/usr/bin/env bash
# The self-contained agent ([package][agent], built with VOUCH_STATIC_AGENT):
#   static_agent_test.sh AGENT_BIN
# The binary's own shared libraries (DT_NEEDED) are exactly the allowed ones
# of docs/agent.md ("A self-contained binary"), and nothing it loads at run
# time - directly or through those libraries - is a library that was to be
# linked in (gRPC, protobuf, Abseil, RE2, c-ares). The e2e tests run
# this same binary ($<TARGET_FILE:vouch-agent>) through real attestations.
set -euo pipefail
bin="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "$bin is not an executable"

# What stays shared, and why (docs/agent.md): glibc and the loader; the C++
# runtime (prometheus-cpp is a C++ shared library); tpm2-tss (no static
# archives in Debian 12, and its TCTI modules are dlopened); OpenSSL (libtss2-esys
# loads libcrypto.so.3, so a second static copy would run beside it);
# prometheus-cpp, civetweb and libsystemd (no static archives in Debian 12);
# zlib (Debian policy forbids embedding it: lintian's embedded-library).
allowed=(
  ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libstdc++.so.6
  libtss2-esys.so.0 libtss2-mu.so.0 libtss2-rc.so.0 libtss2-tctildr.so.0
  libcrypto.so.3 libssl.so.3
  libprometheus-cpp-core.so.1.0 libcivetweb.so.1 libsystemd.so.0 libz.so.1
)
mapfile -t needed < <(readelf -d --wide "$bin" |
  sed -nE 's/.*\(NEEDED\)[[:space:]]+Shared library: \[([^]]+)\].*/\1/p')
[ "${#needed[@]}" -gt 0 ] || fail "no NEEDED entries: is $bin an ELF executable?"
echo "NEEDED: ${needed[*]}"
for lib in "${needed[@]}"; do
  ok=0
  for a in "${allowed[@]}"; do [ "$lib" = "$a" ] && ok=1; done
  [ "$ok" = 1 ] || fail "$bin needs $lib, which is not on the allowed list"
done

# The whole run-time closure, as the dynamic loader resolves it.
loaded="$(ldd "$bin")" || fail "ldd $bin failed"
grep -q 'not found' <<<"$loaded" && fail "unresolved libraries: $loaded"
static_re='lib(grpc|grpc\+\+|gpr|upb|address_sorting|protobuf|absl_[a-z0-9_]+|re2|cares)\.so'
if grep -E "$static_re" <<<"$loaded"; then
  fail "$bin loads the shared libraries above, which should be linked in"
fi
echo "loaded at run time: $(awk '{print $1}' <<<"$loaded" | tr '\n' ' ')"

# Linked in, not merely absent: the binary carries gRPC and protobuf.
"$bin" --version >/dev/null || fail "$bin --version failed"
# (gRPC's user agent string; stripped binaries keep it too.)
strings "$bin" | grep 'grpc-c++/' >/dev/null || fail "no gRPC in $bin"
echo "static agent: ok ($(stat -c %s "$bin") bytes)"
