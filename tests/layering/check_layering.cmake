# Checks the include rules of ARCHITECTURE.md on a source tree:
#   cmake -DROOT=<repo> -P check_layering.cmake
# Fails (non-zero exit) listing every violation. The linker enforces what a
# library may *call*; this enforces what it may *see*.
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<repo> -P check_layering.cmake")
endif()

# folder -> regexes of includes it must not have
set(any_but_tpm "tss2_esys\\.h|tss2_tctildr\\.h|tss2_sys\\.h")
set(any_but_store "libpq-fe\\.h")
set(upper "\"(agent|verifier|registrar|tenant)/")
set(rules_common "\"(core|tpm|store|sdk|server|agent|verifier|registrar|tenant)/|grpcpp/|\\.grpc\\.pb\\.h")
set(rules_core "\"(tpm|store|sdk|server|agent|verifier|registrar|tenant)/|grpcpp/|\\.grpc\\.pb\\.h|toml\\+\\+|CLI/|<(thread|mutex|condition_variable|future|fstream|random|chrono)>|sys/socket\\.h|absl/time/clock\\.h|absl/synchronization/|absl/random/")
set(rules_tpm "\"(store|sdk|server)/|${upper}")
set(rules_store "\"(tpm|sdk|server)/|${upper}")
set(rules_server "\"(tpm|store|sdk)/|${upper}")
# The servers' shared start-up sees the server helpers and the store.
set(rules_startup "\"(tpm|sdk)/|${upper}")
# The SDK sees core's shared tables (state names, limits), never its
# verification areas.
set(rules_sdk "\"(tpm|store|server)/|\"core/(tpm|ima|boot)/|\"core/attest/(evidence|hello|register|wire)|${upper}")
set(rules_verifier "\"(tpm|agent|registrar|tenant)/")
set(rules_registrar "\"(tpm|agent|verifier|tenant)/")
set(rules_agent "\"(store|verifier|registrar|tenant)/")
set(rules_tenant "\"(store|server|agent|verifier|registrar)/")

# The verifier's session (a pure state machine), what it reads policies
# through and its admission bookkeeping: no gRPC, no PostgreSQL
# implementation, no clock.
set(pure_session_files "^src/verifier/(attestation_session|policy_cache|admission)\\.")
set(rules_pure_session "grpcpp/|\\.grpc\\.pb\\.h|\"store/pg_|absl/time/clock\\.h")

set(violations "")
file(GLOB_RECURSE sources RELATIVE ${ROOT} ${ROOT}/src/*.h ${ROOT}/src/*.cc)
foreach(rel IN LISTS sources)
  string(REGEX MATCH "^src/([a-z_]+)/" _ ${rel})
  set(folder ${CMAKE_MATCH_1})
  file(STRINGS ${ROOT}/${rel} includes REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS includes)
    set(bad "")
    if(NOT folder STREQUAL "tpm" AND line MATCHES "${any_but_tpm}")
      set(bad "only src/tpm includes tpm2-tss ESAPI/TCTI headers")
    elseif(NOT folder STREQUAL "store" AND line MATCHES "${any_but_store}")
      set(bad "only src/store includes libpq-fe.h")
    elseif(DEFINED rules_${folder} AND line MATCHES "${rules_${folder}}")
      set(bad "src/${folder} may not include this (see its README.md)")
    elseif(rel MATCHES "${pure_session_files}" AND
           line MATCHES "${rules_pure_session}")
      set(bad "the attestation session is pure: no gRPC, libpq or clock")
    endif()
    if(bad)
      string(STRIP "${line}" line)
      list(APPEND violations "${rel}: ${line}  -- ${bad}")
    endif()
  endforeach()
endforeach()

list(LENGTH sources count)
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "layering violations:\n  ${text}")
endif()
message(STATUS "layering: ${count} files follow the include rules")
