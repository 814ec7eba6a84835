// File: agent/evidence.h
// Builds the agent's answer to a Challenge: the quote first (PCRs read,
// quoted and read again until both reads agree, so the values sent are the
// quoted ones), then the IMA log from Challenge.ima_from (it may run ahead
// of the quote, never behind), then the boot log when asked. The Challenge
// is untrusted: PCR indices past 23 and banks past TPM2_NUM_PCR_BANKS are
// dropped. Not thread-safe; the agent's attestation thread owns it.
//
//   EvidenceBuilder builder(open_tpm, options, &ima);
//   VOUCH_ASSIGN_OR_RETURN(BuiltEvidence e, builder.Build(challenge));
//   stream->Write(e.message);
#ifndef VOUCH_AGENT_EVIDENCE_H_
#define VOUCH_AGENT_EVIDENCE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/ima_source.h"
#include "tpm/tpm.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::agent {

// Opens the TPM with the AIK loaded; the builder drops it between pushes
// when the TPM must be shared (swtpm serves one connection at a time).
using TpmOpener = std::function<absl::StatusOr<std::unique_ptr<tpm::Tpm>>()>;

struct EvidenceOptions {
  std::string boot_log;  // Empty: no boot log.
  // Keep the TPM open between pushes; else open it for each push.
  bool keep_tpm_open = true;
  // Bounds of one IMA chunk and of the boot log (set by the caller from the
  // protocol's limits).
  size_t max_ima_chunk_bytes = 0;
  size_t max_ima_chunk_entries = 0;
  size_t max_boot_log_bytes = 0;
};

struct BuiltEvidence {
  v1::AgentMessage message;  // Its `evidence` is set.
  // The entry index after the last IMA entry sent, when the Evidence holds
  // an IMA chunk (first_index + entries).
  std::optional<uint64_t> ima_sent_until;
};

class EvidenceBuilder {
 public:
  // `ima` may be null (no IMA log configured); it must outlive the builder.
  EvidenceBuilder(TpmOpener open_tpm, EvidenceOptions options, ImaSource* ima);

  // The Evidence for `challenge`. Errors from the TPM or the IMA log are
  // returned (the caller reports them as an AgentError); the TPM is then
  // closed and reopened for the next try. An unreadable boot log is logged
  // and left out.
  absl::StatusOr<BuiltEvidence> Build(const v1::Challenge& challenge);

 private:
  absl::StatusOr<tpm::Tpm*> Tpm();
  absl::StatusOr<BuiltEvidence> BuildWithTpm(const v1::Challenge& challenge);
  absl::Status AddQuote(const v1::Challenge& challenge, v1::Evidence& ev);
  absl::Status AddIma(const v1::Challenge& challenge, BuiltEvidence& out);
  void AddBootLog(v1::Evidence& ev);

  TpmOpener open_tpm_;
  EvidenceOptions options_;
  ImaSource* ima_;
  std::unique_ptr<tpm::Tpm> tpm_;
};

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_EVIDENCE_H_
