// File: agent/fake_tpm.h
// FakeTpm: a tpm::Tpm in memory for agent unit tests (no swtpm). PCRs 0-23
// of the SHA-1 and SHA-256 banks start at zero and are extended as a TPM
// does; Quote returns a real TPMS_ATTEST signed with a software ECDSA P-256
// AIK made per FakeTpm, so it verifies with core::tpm::AikVerifier against
// aik_public(). Failures can be injected per operation, and a hook runs
// inside Quote (to extend a PCR or grow an IMA log mid-quote, as the kernel
// may). Test-only; not thread-safe.
//
//   std::unique_ptr<FakeTpm> tpm = FakeTpm::Create().value();
//   tpm->SetFailure(FakeTpm::Op::kQuote, absl::UnavailableError("busy"));
//   TpmOpener open = [&] { return tpm->NewHandle(); };
#ifndef VOUCH_TESTS_AGENT_FAKE_TPM_H_
#define VOUCH_TESTS_AGENT_FAKE_TPM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/openssl_handle.h"
#include "tpm/tpm.h"

namespace vouch::agenttest {

class FakeTpm : public tpm::Tpm {
 public:
  enum class Op { kPcrRead, kQuote, kPcrExtend };

  // Makes the AIK (ECDSA P-256, restricted signing key attributes).
  static absl::StatusOr<std::unique_ptr<FakeTpm>> Create();

  // tpm::Tpm.
  absl::StatusOr<Bytes> GetRandom(size_t count) override;
  absl::StatusOr<Bytes> ReadNv(uint32_t nv_index) override;  // kNotFound
  absl::StatusOr<Bytes> LoadEk(tpm::EkType type) override;   // kUnimplemented
  absl::StatusOr<Bytes> ReadEkCertificate(tpm::EkType type) override;
  // Returns aik_public(); touches no file.
  absl::StatusOr<Bytes> LoadOrCreateAik(const std::string& state_dir,
                                        tpm::AikType type) override;
  absl::StatusOr<Bytes> ActivateCredential(ByteSpan credential_blob,
                                           ByteSpan encrypted_secret) override;
  absl::StatusOr<tpm::QuoteBlob> Quote(
      ByteSpan nonce, const TPML_PCR_SELECTION& selection) override;
  absl::StatusOr<core::tpm::PcrValues> PcrRead(
      const TPML_PCR_SELECTION& selection) override;
  absl::Status PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                         ByteSpan digest) override;

  // Every later call of `op` fails with `status` (OkStatus clears it).
  void SetFailure(Op op, absl::Status status) { failures_[op] = status; }
  // Runs inside every Quote, after the PCR values were taken for it.
  void set_on_quote(std::function<void()> hook) { on_quote_ = std::move(hook); }
  // Names of the calls made so far, in order ("PcrRead", "Quote", ...).
  const std::vector<std::string>& calls() const { return calls_; }
  void clear_calls() { calls_.clear(); }

  // The AIK as TPM2B_PUBLIC, for core::tpm::AikVerifier::Create.
  const Bytes& aik_public() const { return aik_public_; }
  // A tpm::Tpm that forwards to this fake and does not own it (what a
  // TpmOpener hands out); it must not outlive the fake.
  std::unique_ptr<tpm::Tpm> NewHandle();

 private:
  FakeTpm() = default;
  absl::Status Failure(Op op) const;
  // The selected PCRs' values (zero until extended).
  absl::StatusOr<core::tpm::PcrValues> Values(
      const TPML_PCR_SELECTION& selection);
  absl::StatusOr<Bytes> Sign(ByteSpan data) const;

  EvpPkeyPtr key_;
  Bytes aik_public_;
  Bytes aik_name_;
  std::map<TPMI_ALG_HASH, std::map<uint32_t, Bytes>> pcrs_;
  std::map<Op, absl::Status> failures_;
  std::function<void()> on_quote_;
  std::vector<std::string> calls_;
  uint64_t clock_ms_ = 1000;
  uint8_t random_ = 0;
};

}  // namespace vouch::agenttest

#endif  // VOUCH_TESTS_AGENT_FAKE_TPM_H_
