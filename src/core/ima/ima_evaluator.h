// File: core/ima/ima_evaluator.h
// Verifies IMA log entries: integrity first (each template hash recomputed
// from its template data, then PCR 10 replayed per bank from the stored
// state and matched against the quoted value), then content against a
// RuntimePolicy, only for the proven prefix. Log bytes are untrusted; the
// policy and quoted PCR values are trusted (the quote was verified before).
// Stateless and thread-safe: the replay state is a plain value the caller
// persists between rounds.
//
//   ImaEvaluation r = *EvaluateImaLog(state, new_entries, quoted,
//   policy.get()); store(r.state);            // next_entry_index + running PCR
//   10 per bank keep(new_entries.substr(r.bytes_accepted));  // log ran ahead
//   of the quote
#ifndef VOUCH_CORE_IMA_IMA_EVALUATOR_H_
#define VOUCH_CORE_IMA_IMA_EVALUATOR_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ima/ima_log.h"
#include "core/ima/ima_signature.h"
#include "core/ima/learned_keys.h"
#include "core/ima/runtime_policy.h"
#include "core/rule.h"
#include "core/verdict.h"

namespace vouch::core::ima {

inline constexpr uint32_t kImaPcr = 10;

// Where replay stands: how many entries are proven, PCR 10 per bank after
// them, and the keys those entries put on keyrings (learned_keys.h).
// Zero-initialised = a fresh boot (PCR 10 starts all-zero, no keys).
struct ImaReplayState {
  uint64_t next_entry_index = 0;
  std::array<uint8_t, 20> pcr_sha1{};
  std::array<uint8_t, 32> pcr_sha256{};
  std::vector<LearnedKey> learned_keys;
  bool operator==(const ImaReplayState& o) const {
    return next_entry_index == o.next_entry_index && pcr_sha1 == o.pcr_sha1 &&
           pcr_sha256 == o.pcr_sha256 && learned_keys == o.learned_keys;
  }
};

// PCR 10 as quoted (verified by the quote check). Every bank given must
// match; at least one must be given.
struct QuotedPcr10 {
  std::optional<std::array<uint8_t, 20>> sha1;
  std::optional<std::array<uint8_t, 32>> sha256;
};

// Runtime policies judged next to the active one while a new version rolls
// out (docs/ima.md "Shadow versions and update windows"). Both must be
// loaded with the active policy's path-hash key.
struct ImaRollout {
  // Update window: a file entry (ima-ng, ima-sig) that the active policy
  // fails as not_in_policy, digest_mismatch or bad_signature passes when
  // this candidate accepts it (counted in ImaEvaluation::window_accepted).
  // Never rescued: the active policy's reject list, violations, wrong PCR,
  // ima-buf and keyring entries.
  const RuntimePolicy* window = nullptr;
  // Shadow: every proven entry is also checked against it (with its own
  // copy of the learned keys); its failures go to
  // ImaEvaluation::shadow_failures and never into the verdict.
  const RuntimePolicy* shadow = nullptr;
};

struct ImaEvalOptions {
  // Banks to replay. Replaying a bank costs one more hash per entry. A bank
  // that is not replayed keeps its value in the state, so keep the choice
  // fixed for an agent (or reset the state when it changes).
  bool replay_sha1 = true;
  bool replay_sha256 = true;
  // Violation entries (all-zero template hash) fail unless allowed; allowed
  // ones are still checked against the policy like any entry.
  bool allow_violations = false;
  // Extra accepted boot_aggregate digests (hex), e.g. from measured boot.
  std::vector<std::string> boot_aggregates;
  // At most this many failures are listed (all are counted).
  size_t max_listed_failures = 1000;
  ImaRollout rollout;
};

// A failure's reason is one of the IMA rules of core/rule.h
// (Rule::kImaBadTemplateHash, kImaPcrMismatch, kImaWrongPcr, kImaViolation,
// kImaNotInPolicy, kImaDigestMismatch, kImaBadSignature,
// kImaKeyringNotAllowed, kImaRejected). ImaReasonName is its stable short name,
// the `reason` vouchctl ima check prints: RuleName without "ima."
// ("not_in_policy" for Rule::kImaNotInPolicy).
absl::string_view ImaReasonName(Rule reason);

struct ImaFailure {
  uint64_t index = 0;  // 0-based entry index in the whole log.
  std::string path;    // Raw bytes of the entry's path (may not be UTF-8).
  Rule reason = Rule::kImaNotInPolicy;  // One of the Rule::kIma* rules.
  std::string detail;
};

struct ImaEvaluation {
  Verdict verdict;                   // The same rules as `failures`.
  std::vector<ImaFailure> failures;  // The first max_listed_failures.
  uint64_t failure_count = 0;
  ImaReplayState state;           // After the accepted prefix.
  uint64_t entries_parsed = 0;    // Entries read from the chunk.
  uint64_t entries_accepted = 0;  // Entries proven (state advanced by these).
  size_t bytes_accepted = 0;      // Bytes of the chunk they took.
  bool pcr_checked = false;       // A quoted value was given ...
  bool pcr_matched = false;       // ... and a prefix matched it.
  LogFormat format = LogFormat::kAscii;
  // Entries the active policy failed and the update window's candidate
  // accepted (ImaRollout::window): they passed.
  uint64_t window_accepted = 0;
  // The shadow policy's would-be failures (ImaRollout::shadow), the first
  // max_listed_failures; shadow_checked when it judged the proven entries.
  bool shadow_checked = false;
  std::vector<ImaFailure> shadow_failures;
  uint64_t shadow_failure_count = 0;
};

// Evaluates `chunk` (ASCII or binary entries starting at entry
// state.next_entry_index). With `quoted`, accepts the shortest prefix whose
// replay equals the quoted PCR 10 (possibly empty) and leaves the rest for
// the next round; no prefix → a pcr_mismatch failure and an unchanged
// state. Without `quoted` (offline check) the whole chunk is accepted on
// its template hashes alone. A bad template hash anywhere in the chunk
// fails the verdict and no content is checked. `policy` null: integrity
// only. Malformed entries are kInvalidArgument naming index and offset.
absl::StatusOr<ImaEvaluation> EvaluateImaLog(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const RuntimePolicy* policy,
    const ImaEvalOptions& options = {});

// The same evaluation with the policy awaited only after the integrity pass,
// so a caller can load a large policy on another thread while the log is
// parsed and replayed (what `vouchctl ima check` does). `await_policy` is
// called at most once, and only when content is to be checked; its error is
// returned as is. `key` must be the path-hash key the policy is loaded with
// (PolicyLoadOptions::path_hash_key); a policy with another key is
// kInvalidArgument.
absl::StatusOr<ImaEvaluation> EvaluateImaLogAwaitingPolicy(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const PathHashKey& key,
    absl::FunctionRef<absl::StatusOr<const RuntimePolicy*>()> await_policy,
    const ImaEvalOptions& options = {});

// EvaluateImaLog's two passes apart, for a caller that runs them on two
// threads (vouchctl's whole-log check, tenant/ima_parallel.h). Core starts
// no thread: the caller hands the progress over.
//
// Pass 1: template hashes, replay and the accepted prefix, with no content
// or violation checks. `progress(n, alg)` is told now and then that the
// chunk's first n entries are proven (`alg`: the binary template-hash
// algorithm, once known). `proven` false: the chunk failed and `evaluation`
// is final.
struct ImaReplayOutcome {
  ImaEvaluation evaluation;
  bool proven = false;
  std::optional<HashAlg> binary_hash_alg;
};
absl::StatusOr<ImaReplayOutcome> ReplayImaLog(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const ImaEvalOptions& options,
    absl::FunctionRef<void(uint64_t, std::optional<HashAlg>)> progress);

// Pass 2: the content checks of the chunk's entries, in log order, read with
// its own parser (content-only mode) a range at a time, each range once pass
// 1 has proven it; nothing is kept per entry. `chunk`, the policy and the
// roll-out policies of `options` must outlive it.
class ImaContentChecks {
 public:
  // kInvalidArgument if a policy was loaded with another path-hash key.
  static absl::StatusOr<std::unique_ptr<ImaContentChecks>> Start(
      const ImaReplayState& state, absl::string_view chunk,
      const RuntimePolicy* policy, const PathHashKey& key,
      const ImaEvalOptions& options);
  ~ImaContentChecks();
  ImaContentChecks(const ImaContentChecks&) = delete;
  ImaContentChecks& operator=(const ImaContentChecks&) = delete;

  // Checks entries [checked(), end).
  absl::Status CheckUpTo(uint64_t end, std::optional<HashAlg> binary_hash_alg);
  uint64_t checked() const;
  // Pass 1's outcome completed with these checks: EvaluateImaLog's result
  // with this policy. Checks past pass 1's accepted entries (a quote matched
  // before the end of the chunk) are not used: they are redone on the prefix.
  absl::StatusOr<ImaEvaluation> Complete(ImaReplayOutcome pass1);

 private:
  ImaContentChecks();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Evaluates integrity-proven entries, in log order, against the policy
// (Keylime's _validate_ima_ng / _validate_ima_sig / _validate_ima_buf).
// A keyring entry the policy accepts adds its key to `*learned`, and
// ima-sig signatures verify with the policy's verification-keys and the
// learned keys. Exposed for tests.
class ContentChecker {
 public:
  ContentChecker(const RuntimePolicy& policy, const ImaEvalOptions& options,
                 std::vector<LearnedKey>* learned);
  // nullopt: the entry passes; else (reason, detail).
  // `path_hash` is policy.HashPath(e.path).
  std::optional<std::pair<Rule, std::string>> Check(const ImaEntry& e,
                                                    const PathHash& path_hash);

 private:
  // Adds the key of an accepted keyring entry; a failure past the cap.
  std::optional<std::pair<Rule, std::string>> Learn(LearnedKey key);
  SignatureCheck VerifySignature(const ImaEntry& e);
  const std::vector<VerificationKey>& LearnedVerificationKeys();

  const RuntimePolicy& policy_;
  const ImaEvalOptions& options_;
  std::vector<PolicyDigest> boot_aggregates_;
  std::vector<LearnedKey>* learned_;
  // (*learned_)[0, decoded_), decoded for signature checks.
  std::vector<VerificationKey> learned_keys_;
  size_t decoded_ = 0;
};

// Human-readable form of a raw path for messages: bytes that are not
// printable ASCII or valid UTF-8 become \xNN.
std::string DisplayPath(absl::string_view raw);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_IMA_EVALUATOR_H_
