#include "sdk/names.h"

namespace vouch::sdk {
namespace {

struct Name {
  v1::AttestationState state;
  const char* name;
};
constexpr Name kNames[] = {
    {v1::ATTESTATION_STATE_PENDING, "pending"},
    {v1::ATTESTATION_STATE_PASS, "pass"},
    {v1::ATTESTATION_STATE_FAIL, "fail"},
    {v1::ATTESTATION_STATE_TIMEOUT, "timeout"},
    {v1::ATTESTATION_STATE_UNENROLLED, "unenrolled"},
};

}  // namespace

std::string StateName(int state) {
  for (const Name& n : kNames) {
    if (n.state == state) return n.name;
  }
  return "unspecified";
}

v1::AttestationState ParseStateName(absl::string_view name) {
  for (const Name& n : kNames) {
    if (name == n.name) return n.state;
  }
  return v1::ATTESTATION_STATE_UNSPECIFIED;
}

}  // namespace vouch::sdk
