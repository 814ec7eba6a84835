#include "agent/attest_loop.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/attest_state_machine.h"
#include "agent/idle_memory.h"
#include "agent/ima_source.h"
#include "common/app.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/thread_name.h"
#include "core/attest/limits.h"
#include "core/ear/notice.h"
#include "sdk/channel.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch::agent {
namespace {

// Verdict.ear_token bound (attestation.proto).
constexpr size_t kMaxResultTokenBytes = 16 * 1024;

using Actions = std::vector<AttestAction>;
using Kind = AttestAction::Kind;

// Messages from the stream, filled by a reader thread.
class Inbox {
 public:
  void Push(v1::VerifierMessage m) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(m));
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  // Waits up to `timeout` for a message; nullopt on timeout or when closed
  // and empty (closed() tells which).
  std::optional<v1::VerifierMessage> Pop(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](Inbox* in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(in->mu_) {
              return in->closed_ || !in->queue_.empty();
            },
            this),
        timeout);
    if (queue_.empty()) return std::nullopt;
    v1::VerifierMessage m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }
  bool closed() {
    absl::MutexLock lock(&mu_);
    return closed_ && queue_.empty();
  }

 private:
  absl::Mutex mu_;
  std::deque<v1::VerifierMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// core::attest::kRetryAfterMetadata from a verifier's trailers, bounded
// (the verifier is a network peer); zero when absent or not a number.
absl::Duration RetryAfter(
    const std::multimap<grpc::string_ref, grpc::string_ref>& trailers) {
  auto it = trailers.find(core::attest::kRetryAfterMetadata);
  int64_t ms = 0;
  if (it == trailers.end() ||
      !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()),
                        &ms) ||
      ms <= 0) {
    return absl::ZeroDuration();
  }
  return absl::Milliseconds(std::min(ms, core::attest::kMaxRetryAfterMs));
}

// One Attest call: the gRPC stream and a reader thread filling an Inbox.
class Stream {
 public:
  using ReaderWriter =
      grpc::ClientReaderWriter<v1::AgentMessage, v1::VerifierMessage>;

  static absl::StatusOr<std::unique_ptr<Stream>> Open(
      const std::string& address, const AttestOptions& o) {
    sdk::ClientOptions copts;
    copts.server = address;
    copts.ca_file = o.ca_file;
    copts.cert_file = o.cert_file;
    copts.key_file = o.key_file;
    copts.round_robin = true;  // A DNS name of the whole pool.
    copts.bdp_probe = false;   // Messages of a few KB; the window suffices.
    copts.keepalive_ms =
        static_cast<int>(absl::ToInt64Milliseconds(o.keepalive));
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        sdk::CreateChannel(copts);
    if (!channel.ok()) {
      return absl::InvalidArgumentError(channel.status().message());
    }
    auto stream = std::unique_ptr<Stream>(new Stream(*std::move(channel)));
    stream->Start();
    return stream;
  }
  ~Stream() { Close(); }

  bool Write(const v1::AgentMessage& m) { return rw_->Write(m); }
  Inbox& inbox() { return inbox_; }

  // Cancels the call unless the server ended it already (then its status
  // is kept), waits for the reader, and returns the status it ended with.
  grpc::Status Close() {
    if (!rw_) return grpc::Status::CANCELLED;
    if (!inbox_.closed()) ctx_.TryCancel();
    reader_.join();
    grpc::Status s = rw_->Finish();
    rw_.reset();
    retry_after_ = RetryAfter(ctx_.GetServerTrailingMetadata());
    return s;
  }
  // The verifier's retry hint with the status Close returned; zero if none.
  absl::Duration retry_after() const { return retry_after_; }

 private:
  explicit Stream(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)),
        stub_(v1::Attestation::NewStub(channel_)) {}

  void Start() {
    rw_ = stub_->Attest(&ctx_);
    reader_ = std::thread([this] {
      SetThreadName("vouch-reader");
      v1::VerifierMessage m;
      while (rw_->Read(&m)) {
        inbox_.Push(std::move(m));
        m.Clear();
      }
      inbox_.Close();
    });
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Attestation::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<ReaderWriter> rw_;
  absl::Duration retry_after_;
  Inbox inbox_;
  std::thread reader_;
};

absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

AttestStateMachine::Options MachineOptions(const AttestOptions& o) {
  AttestStateMachine::Options m;
  m.verifiers = o.verifiers;
  m.has_ima = !o.ima_log.empty();
  m.retry_initial = o.retry_initial;
  m.retry_max = o.retry_max;
  m.min_push_interval = o.min_push_interval;
  m.reply_timeout = o.reply_timeout;
  return m;
}

EvidenceOptions BuilderOptions(const AttestOptions& o) {
  EvidenceOptions e;
  e.boot_log = o.boot_log;
  e.keep_tpm_open = o.keep_tpm_open;
  e.max_ima_chunk_bytes = core::attest::kMaxImaChunkBytes;
  e.max_ima_chunk_entries = core::attest::kMaxImaChunkEntries;
  e.max_boot_log_bytes = core::attest::kMaxBootLogBytes;
  return e;
}

v1::AgentMessage HelloMessage(const AttestOptions& o) {
  v1::AgentMessage hello_msg;
  v1::Hello* hello = hello_msg.mutable_hello();
  hello->set_agent_id(o.agent_id);
  hello->set_boot_id(o.boot_id.substr(0, 64));
  hello->set_agent_version(o.agent_version.substr(0, 64));
  hello->set_aik_name(o.aik_name);
  v1::Capabilities* caps = hello->mutable_capabilities();
  caps->add_hash_algs(v1::HASH_ALGORITHM_SHA1);
  caps->add_hash_algs(v1::HASH_ALGORITHM_SHA256);
  caps->add_sign_schemes(v1::SIGN_SCHEME_RSASSA);
  caps->add_sign_schemes(v1::SIGN_SCHEME_ECDSA);
  caps->add_pcr_banks(v1::HASH_ALGORITHM_SHA1);
  caps->add_pcr_banks(v1::HASH_ALGORITHM_SHA256);
  caps->set_has_ima(!o.ima_log.empty());
  caps->set_has_boot_log(!o.boot_log.empty());
  if (!o.ima_log.empty()) {
    caps->add_ima_formats(v1::IMA_LOG_FORMAT_BINARY);
    caps->add_ima_formats(v1::IMA_LOG_FORMAT_ASCII);
  }
  return hello_msg;
}

// Carries out the state machine's actions and feeds it their outcomes.
class Driver {
 public:
  Driver(const TpmOpener& open_tpm, const AttestOptions& options)
      : o_(options),
        ima_(options.ima_log.empty()
                 ? nullptr
                 : std::make_unique<ImaSource>(options.ima_log)),
        evidence_(open_tpm, BuilderOptions(options), ima_.get()),
        machine_(MachineOptions(options), std::random_device{}()),
        actions_(options.actions) {}

  int Run() {
    Actions actions = machine_.Start(absl::Now());
    while (true) {
      Actions next;
      for (const AttestAction& a : actions) {
        if (a.kind == Kind::kExit) return a.exit_code;
        std::optional<Actions> follow = Execute(a);
        if (follow) {
          next = *std::move(follow);
          break;
        }
      }
      if (next.empty()) {  // A bug: the machine always ends with a blocking
                           // one.
        Log(LogLevel::kError, "attestation state machine stalled",
            {{"state", AttestStateName(machine_.state())}});
        return 1;
      }
      actions = std::move(next);
    }
  }

 private:
  // Runs one action; the actions that follow from its outcome, or nullopt
  // when it has none to report.
  std::optional<Actions> Execute(const AttestAction& a) {
    switch (a.kind) {
      case Kind::kOpenStream:
        return OpenStream(a.verifier);
      case Kind::kSendHello:
        if (!stream_->Write(HelloMessage(o_))) return Ended();
        return machine_.OnHelloSent(absl::Now());
      case Kind::kSendEvidence:
        return SendEvidence(a.challenge);
      case Kind::kSendAgentError: {
        v1::AgentMessage err;
        err.mutable_agent_error()->set_code(a.error_code);
        err.mutable_agent_error()->set_message(a.error_message);
        if (!stream_->Write(err)) return Ended();
        return std::nullopt;
      }
      case Kind::kCloseStream:
        stream_.reset();  // Cancels; the status is not asked for.
        if (o_.metrics != nullptr) o_.metrics->StreamClosed();
        return std::nullopt;
      case Kind::kWait:
        return Wait(a);
      case Kind::kExit:
        break;  // Run returns.
    }
    return std::nullopt;
  }

  Actions OpenStream(const std::string& address) {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Open(address, o_);
    if (o_.metrics != nullptr) o_.metrics->Connected(s.ok());
    if (!s.ok()) return machine_.OnStreamEnded(absl::Now(), s.status());
    stream_ = *std::move(s);
    return machine_.OnStreamOpened(absl::Now());
  }

  Actions SendEvidence(const v1::Challenge& challenge) {
    const absl::Time start = absl::Now();
    absl::StatusOr<BuiltEvidence> built = evidence_.Build(challenge);
    const bool sent = built.ok() && stream_->Write(built->message);
    if (o_.metrics != nullptr) o_.metrics->Pushed(sent, absl::Now() - start);
    if (!built.ok()) {
      return machine_.OnEvidenceFailed(absl::Now(), built.status());
    }
    if (!sent) return Ended();
    return machine_.OnEvidenceSent(absl::Now(), built->ima_sent_until);
  }

  // The stream broke or the server ended it: report how.
  Actions Ended() {
    const absl::Status status = ToAbsl(stream_->Close());
    const absl::Duration retry_after = stream_->retry_after();
    stream_.reset();
    if (o_.metrics != nullptr) o_.metrics->StreamClosed();
    return machine_.OnStreamEnded(absl::Now(), status, retry_after);
  }

  Actions Wait(const AttestAction& a) {
    if (stream_ == nullptr) {  // Back-off: only a signal can interrupt.
      const absl::Duration left =
          std::max(a.until - absl::Now(), absl::ZeroDuration());
      if (std::optional<int> sig = WaitForShutdownFor(left)) {
        return machine_.OnStop(*sig);
      }
      return machine_.OnTick(absl::Now());
    }
    if (std::optional<int> sig = WaitForShutdownFor(absl::ZeroDuration())) {
      return machine_.OnStop(*sig);
    }
    // Wake at least every ima_poll: for signals and the IMA poll.
    const absl::Duration left =
        std::clamp(a.until - absl::Now(), absl::ZeroDuration(), o_.ima_poll);
    std::optional<v1::VerifierMessage> m = stream_->inbox().Pop(left);
    const absl::Time now = absl::Now();
    if (m && m->has_verdict() && o_.metrics != nullptr) {
      o_.metrics->Verdict(m->verdict().state(), now);
    }
    if (m && m->has_verdict()) {
      WriteResult(m->verdict().ear_token());
      if (o_.release_idle_memory) ReleaseMemory();
    }
    if (m && m->has_action_notice()) {
      OnActionNotice(m->action_notice(), now);
      return machine_.OnTick(now);  // Not a reply: the wait goes on.
    }
    if (m) return machine_.OnMessage(now, *m);
    if (stream_->inbox().closed()) return Ended();
    if (a.ima_from && ima_ && ima_->MayHaveEntriesFrom(*a.ima_from)) {
      return machine_.OnImaGrew(now);  // New measurements: push early.
    }
    return machine_.OnTick(now);
  }

  // The push is answered: nothing but the wait runs until the next one.
  // The resident size is read only for the debug log.
  static void ReleaseMemory() {
    const bool debug = GetLogLevel() <= LogLevel::kDebug;
    const IdleMemoryReleased r = ReleaseIdleMemory(debug);
    if (!debug) return;
    Log(LogLevel::kDebug, "released idle memory",
        {{"objects", r.objects},
         {"read_only_bytes", r.bytes},
         {"resident_before", r.rss_before},
         {"resident_after", r.rss_after}});
  }

  // Replaces the result file with the verdict's token (docs/agent.md). The
  // token is the verifier's: only its size and alphabet are checked here,
  // so nothing but a compact JWS lands in the file.
  void WriteResult(const std::string& token) {
    if (o_.result_file.empty() || token.empty()) return;
    const bool jws =
        token.size() <= kMaxResultTokenBytes &&
        std::all_of(token.begin(), token.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                 c == '-' || c == '_' || c == '.';
        });
    if (!jws) {
      Log(LogLevel::kWarning, "verdict carries a malformed result token");
      return;
    }
    if (absl::Status st = WriteFileAtomic(o_.result_file, token + "\n", 0644);
        !st.ok()) {
      Log(LogLevel::kWarning, "attestation result not written",
          {{"file", o_.result_file}, {"error", st.message()}});
    }
  }

  // Checks a notice (signature by a configured results key, addressed to
  // this agent, not expired) before its event goes to the actions; a
  // notice that fails is logged and nothing runs.
  void OnActionNotice(const v1::ActionNotice& notice, absl::Time now) {
    if (o_.notice_keys == nullptr) {
      Log(LogLevel::kWarning,
          "action notice ignored: agent.results_jwks is not set");
      return;
    }
    absl::StatusOr<core::ear::Notice> n = core::ear::VerifyNotice(
        notice.token(), *o_.notice_keys, o_.agent_id, now);
    if (!n.ok()) {
      Log(LogLevel::kWarning, "action notice refused",
          {{"error", n.status().message()}});
      return;
    }
    Log(LogLevel::kInfo, "action notice",
        {{"kind", core::ear::NoticeKindName(n->kind)},
         {"subject", n->subject},
         {"state", n->state}});
    actions_.Submit(core::ear::NoticeClaimsJson(*n));
  }

  const AttestOptions& o_;
  std::unique_ptr<ImaSource> ima_;  // Null: no IMA log configured.
  EvidenceBuilder evidence_;
  AttestStateMachine machine_;
  ActionRunner actions_;
  std::unique_ptr<Stream> stream_;
};

}  // namespace

int RunAttestLoop(const TpmOpener& open_tpm, const AttestOptions& options) {
  if (options.verifiers.empty()) {
    // Registered, but nothing to attest to: say so and stay up (a restart
    // loop would not fix the configuration).
    Log(LogLevel::kError,
        "agent.verifiers is empty: registered, not attesting; waiting for a "
        "stop signal");
    const int sig = WaitForShutdown();
    Log(LogLevel::kInfo, "agent stopping", {{"signal", sig}});
    return 0;
  }
  Driver driver(open_tpm, options);
  return driver.Run();
}

}  // namespace vouch::agent
