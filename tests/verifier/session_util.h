// Drives an AttestationSession without gRPC or PostgreSQL: the in-memory
// store twin with a clock the test moves, the real PolicyCache over it, a
// deterministic SessionEnv, and a software agent (SoftAik quotes, a
// generated IMA log with an independent PCR 10 replay).
#ifndef VOUCH_TESTS_VERIFIER_SESSION_UTIL_H_
#define VOUCH_TESTS_VERIFIER_SESSION_UTIL_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/attest/wire.h"
#include "core/ima/ima_log_writer.h"
#include "harness/soft_aik.h"
#include "ima/ima_test_util.h"
#include "store/in_memory_verifier_store.h"
#include "verifier/attestation_session.h"
#include "verifier/policy_cache.h"

namespace vouch::verifier::testing {

class FakeEnv final : public SessionEnv {
 public:
  Bytes Random(size_t n) override {
    Bytes out(n);
    ++counter_;
    for (size_t i = 0; i < n; ++i) {
      out[i] = static_cast<uint8_t>((counter_ >> (8 * (i % 8))) + i);
    }
    return out;
  }
  bool AllowHello(const std::string&, absl::Time) override {
    return hellos_allowed_-- > 0;
  }
  bool HoldImaBytes(int64_t delta) override {
    if (delta > 0 && held_ima_bytes_ + delta > ima_budget_) return false;
    held_ima_bytes_ += delta;
    return true;
  }
  int hellos_allowed_ = 1000;
  int64_t ima_budget_ = int64_t{1} << 40;
  int64_t held_ima_bytes_ = 0;

 private:
  uint64_t counter_ = 0;
};

// What the session did in answer to one input, run to the end of its chain.
struct Reply {
  std::vector<v1::VerifierMessage> sent;
  std::optional<absl::Status> ended;  // kEnd
  bool read_next = false;             // kReadNext
  int commits = 0;
  uint64_t window_accepted = 0;  // Summed over the commits.
  int policy_loads = 0;
  int takeovers = 0;
  std::vector<int64_t> holds;  // kHold epochs

  const v1::VerifierMessage& last() const { return sent.back(); }
  bool verdict() const { return !sent.empty() && sent.back().has_verdict(); }
  bool challenge() const {
    return !sent.empty() && sent.back().has_challenge();
  }
  bool error() const { return !sent.empty() && sent.back().has_error(); }
};

// A machine: its AIK, IMA log and TPM clock, answering challenges as
// vouch-agent does (quote first; IMA entries from ima_from).
class SoftAgent {
 public:
  explicit SoftAgent(std::string id);
  const std::string& id() const { return id_; }
  // One RSA key for every agent of a test run (generating one is slow).
  static const ::vouch::testing::SoftAik& aik();

  // The machine measures another file.
  void Measure(const std::string& path, int content);
  // The machine logs this entry (any template).
  void Append(core::ima::ImaRecord r) { records_.push_back(std::move(r)); }
  // A reboot: PCR 10 and the IMA log start over, resetCount goes up.
  void Reboot();
  // The firmware measured `log` (a TCG event log): the SHA-256 PCRs it
  // replays to are quoted, and the log is sent when a Challenge asks.
  void BootWith(const Bytes& log);
  // tpm2_pcrextend of one SHA-256 PCR with `digest`.
  void Extend(uint32_t pcr, const Bytes& digest);
  const Bytes& boot_log() const { return boot_log_; }
  size_t entries() const { return records_.size(); }
  const std::vector<core::ima::ImaRecord>& records() const { return records_; }

  v1::AgentMessage Hello() const;
  // Evidence for `c`: a quote of the challenge's PCRs with PCR 10 after
  // `quoted` entries (all by default), then entries [first, last) of the
  // log (from c.ima_from() to the end by default).
  struct Options {
    std::optional<size_t> quoted;
    std::optional<uint64_t> first;
    std::optional<uint64_t> last;
    bool truncated = false;
    std::optional<std::string> nonce;  // Quote this nonce instead.
    // Sent instead of the machine's boot log; unset: the machine's when
    // the Challenge asks for it.
    std::optional<std::string> boot_log;
  };
  v1::AgentMessage Evidence(const v1::Challenge& c, Options o);
  v1::AgentMessage Evidence(const v1::Challenge& c) { return Evidence(c, {}); }

 private:
  std::string id_;
  std::vector<core::ima::ImaRecord> records_;
  uint32_t reset_count_ = 1;
  Bytes boot_log_;
  core::tpm::PcrBank pcrs_;  // SHA-256, all but PCR 10; zero when absent.
  uint64_t clock_ = 1000;
};

class SessionTest {
 public:
  // ttl: the policy cache's; zero makes every evidence load its policies.
  explicit SessionTest(absl::Duration policy_ttl = absl::Hours(1));

  absl::Time now = absl::FromUnixSeconds(1800000000);
  store::InMemoryVerifierStore store;
  PolicyCache policies;
  FakeEnv env;
  SessionOptions options;

  // Registers (activated) and enrolls `agent` with a runtime policy named
  // `policy` allowing every file it measured, and `boot_policy` if given.
  void Enroll(SoftAgent& agent, const std::string& policy = "web",
              const std::string& boot_policy = "",
              absl::Duration interval = absl::Seconds(10));
  // A runtime policy allowing `agent`'s files (or none).
  std::string PolicyFor(const SoftAgent& agent) const;
  void PutPolicy(const std::string& name, const std::string& json,
                 int kind = 1);

  std::unique_ptr<AttestationSession> Open(
      const std::string& agent_id, const std::string& tenant = "default");
  Reply Send(AttestationSession& s, const v1::AgentMessage& m);
  // Runs actions (and what their results ask for) to the end of the chain.
  Reply Run(AttestationSession& s, SessionActions actions);
  // Opens a session, says Hello, returns it with the first Challenge.
  std::unique_ptr<AttestationSession> Connect(SoftAgent& agent,
                                              v1::Challenge* challenge);
};

}  // namespace vouch::verifier::testing

#endif  // VOUCH_TESTS_VERIFIER_SESSION_UTIL_H_
