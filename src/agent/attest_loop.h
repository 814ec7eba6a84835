// File: agent/attest_loop.h
// The agent's attestation part: after activation it holds one Attest
// stream to a verifier of the pool and answers challenges (quote first, then
// the IMA log from Challenge.ima_from, so the log may run ahead; the boot
// log when asked). It pushes on the challenge's interval and as soon as new
// IMA entries appear (polled every 200 ms, no sooner than min_interval
// after the last push). A broken stream is reopened, with jittered back-off
// (none after ABORTED), to the next verifier in the list; the verifier names
// the entry to resume from, so the log is never resent unless asked.
// The decisions are AttestStateMachine's (attest_state_machine.h); this is
// its driver: the gRPC stream, the clock, the TPM (via EvidenceBuilder) and
// the IMA poll. Runs on the calling thread until SIGINT/SIGTERM. See
// docs/agent.md for the state diagram.
//
//   AttestOptions opts = ...;
//   TpmOpener open_tpm = ...;  // EsysTpm with EK and AIK loaded
//   return RunAttestLoop(open_tpm, opts);
#ifndef VOUCH_AGENT_ATTEST_LOOP_H_
#define VOUCH_AGENT_ATTEST_LOOP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/action_runner.h"
#include "agent/agent_metrics.h"
#include "agent/evidence.h"

namespace vouch::core::ear {
class KeySet;
}  // namespace vouch::core::ear

namespace vouch::agent {

struct AttestOptions {
  std::string agent_id;
  std::string aik_name;  // Binary TPM name of the AIK.
  std::vector<std::string> verifiers;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string ima_log;   // Empty: no IMA.
  std::string boot_log;  // Empty: no boot log.
  std::string agent_version;
  std::string boot_id;
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(5);
  absl::Duration min_push_interval = absl::Seconds(1);
  absl::Duration ima_poll = absl::Milliseconds(200);
  // No reply to an Evidence within this: the verifier is gone; reconnect.
  absl::Duration reply_timeout = absl::Seconds(30);
  absl::Duration keepalive = absl::Seconds(10);
  bool keep_tpm_open = true;
  // After each verdict, give back code pages and free heap until the next
  // push (idle_memory.h).
  bool release_idle_memory = true;
  AgentMetrics* metrics = nullptr;  // nullptr: metrics off.
  // Where the signed attestation result of each verdict is written
  // (atomic replace) for local consumers; empty: not written.
  std::string result_file;
  // Local actions run for verified action notices (docs/actions.md).
  ActionOptions actions;
  // The results keys notices must be signed by; nullptr: notices are
  // ignored (logged) and no action runs.
  std::shared_ptr<const core::ear::KeySet> notice_keys;
};

// Returns the process exit code (0 after a stop signal).
int RunAttestLoop(const TpmOpener& open_tpm, const AttestOptions& options);

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_ATTEST_LOOP_H_
