// Fuzzes what the verifier does with an agent's Evidence
// (core/attest/evidence.h): the protobuf decoding gRPC performs, the shape
// and bound checks against an outstanding Challenge, and — for what passes
// them — the whole evaluation: quote against a fixed RSA AIK, IMA integrity
// and policy from a stored replay position, boot log against a policy.
// Seeds: the golden tpm2-tools RSA quote with IMA chunks from the Keylime
// test log (fuzz/corpus/verifier_evidence).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "common/bytes.h"
#include "core/attest/evidence.h"
#include "core/boot/boot_policy.h"
#include "core/ima/runtime_policy.h"
#include "core/tpm/quote.h"
#include "vouch/v1/attestation.pb.h"

namespace {

// TPM2B_PUBLIC of the golden RSA AIK (tests/tpm/data/tpm2-tools/ak-rsa.pub).
const char kAikHex[] =
#include "fuzz_tpm_quote_aik.inc"
    ;

constexpr char kPolicy[] = R"({"meta": {"version": 1}, "release": 0,
  "digests": {"boot_aggregate": ["0000000000000000000000000000000000000000"],
              "/usr/bin/bash": ["1e4c2e3f2a0e0a9f1b6a4e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"]},
  "excludes": ["^/tmp/"], "keyrings": {}, "ima": {"ignored_keyrings": [],
  "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {},
  "verification-keys": ""})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ct = vouch::core::tpm;
  namespace v = vouch::core::attest;
  static const std::unique_ptr<ct::AikVerifier> aik =
      *ct::AikVerifier::Create(*vouch::HexDecode(kAikHex));
  static const std::shared_ptr<const vouch::core::ima::RuntimePolicy> policy =
      *vouch::core::ima::RuntimePolicy::FromJson(kPolicy);
  static const vouch::core::boot::BootPolicy boot =
      *vouch::core::boot::BootPolicy::FromJson("{}");
  vouch::v1::Evidence ev;
  if (!ev.ParseFromArray(data, static_cast<int>(size))) return 0;
  v::IssuedChallenge ch;
  ch.nonce = {1, 2, 3, 4, 5, 6, 7, 8};
  ch.expires_at = absl::InfiniteFuture();
  ch.selection.count = 1;
  ch.selection.pcrSelections[0].hash = TPM2_ALG_SHA256;
  ch.selection.pcrSelections[0].sizeofSelect = 3;
  ch.selection.pcrSelections[0].pcrSelect[1] = 0x04;  // PCR 10
  ch.ima_from = 0;
  ch.want_boot_log = ev.boot_log().size() % 2 == 0;
  if (!v::ValidateEvidence(ev, ch).ok()) return 0;
  v::EvidenceInput in;
  in.aik = aik.get();
  in.challenge = &ch;
  in.progress.clock = ct::ClockInfo{5, 1, 0, true};
  in.runtime_policy = policy.get();
  in.boot_policy = ch.want_boot_log ? &boot : nullptr;
  in.allow_sha1 = true;
  (void)v::CheckEvidence(ev, in, absl::FromUnixSeconds(1000));
  return 0;
}
