#include "agent/attest_loop.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/ima_source.h"
#include "agent/registration.h"
#include "common/app.h"
#include "common/file.h"
#include "common/logging.h"
#include "core/tpm/quote.h"
#include "sdk/channel.h"
#include "sdk/names.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch::agent {
namespace {

constexpr size_t kMaxChunkBytes = 4 << 20;  // attestation.proto
constexpr size_t kMaxChunkEntries = 100000;
constexpr size_t kMaxBootLogBytes = 1 << 20;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

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

TPML_PCR_SELECTION ToSelection(const v1::PcrSelection& s) {
  TPML_PCR_SELECTION out{};
  for (const v1::PcrBankSelection& b : s.banks()) {
    if (out.count >= TPM2_NUM_PCR_BANKS) break;
    TPMS_PCR_SELECTION& sel = out.pcrSelections[out.count++];
    sel.hash = static_cast<TPMI_ALG_HASH>(b.hash_alg());
    sel.sizeofSelect = 3;
    for (uint32_t pcr : b.pcr_indices()) {
      if (pcr < 24)
        sel.pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
    }
  }
  return out;
}

class Session {
 public:
  Session(const TpmOpener& open_tpm, const AttestOptions& options,
          ImaSource* ima, std::unique_ptr<tpm::Tpm>* held_tpm)
      : open_tpm_(open_tpm), o_(options), ima_(ima), held_tpm_(held_tpm) {}

  // Runs one stream to `address`. Returns the status it ended with, or
  // nullopt after a stop signal (sets *signal).
  struct End {
    grpc::Status status;
    bool had_verdict = false;
    std::optional<int> signal;
  };
  End Run(const std::string& address) {
    End end;
    sdk::ClientOptions copts;
    copts.server = address;
    copts.ca_file = o_.ca_file;
    copts.cert_file = o_.cert_file;
    copts.key_file = o_.key_file;
    copts.round_robin = true;  // A DNS name of the whole pool.
    copts.keepalive_ms =
        static_cast<int>(absl::ToInt64Milliseconds(o_.keepalive));
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        sdk::CreateChannel(copts);
    if (!channel.ok()) {
      end.status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                std::string(channel.status().message()));
      return end;
    }
    auto stub = v1::Attestation::NewStub(*channel);
    grpc::ClientContext ctx;
    std::unique_ptr<
        grpc::ClientReaderWriter<v1::AgentMessage, v1::VerifierMessage>>
        stream = stub->Attest(&ctx);
    Inbox inbox;
    std::thread reader([&] {
      v1::VerifierMessage m;
      while (stream->Read(&m)) {
        inbox.Push(std::move(m));
        m.Clear();
      }
      inbox.Close();
    });
    auto finish = [&](End e) {
      // The server may have ended the stream already: keep its status.
      if (!inbox.closed()) ctx.TryCancel();
      reader.join();
      grpc::Status s = stream->Finish();
      if (e.status.ok() && !e.signal) e.status = s;
      return e;
    };

    v1::AgentMessage hello_msg;
    v1::Hello* hello = hello_msg.mutable_hello();
    hello->set_agent_id(o_.agent_id);
    hello->set_boot_id(o_.boot_id.substr(0, 64));
    hello->set_agent_version(o_.agent_version.substr(0, 64));
    hello->set_aik_name(o_.aik_name);
    v1::Capabilities* caps = hello->mutable_capabilities();
    caps->add_hash_algs(v1::HASH_ALGORITHM_SHA1);
    caps->add_hash_algs(v1::HASH_ALGORITHM_SHA256);
    caps->add_sign_schemes(v1::SIGN_SCHEME_RSASSA);
    caps->add_sign_schemes(v1::SIGN_SCHEME_ECDSA);
    caps->add_pcr_banks(v1::HASH_ALGORITHM_SHA1);
    caps->add_pcr_banks(v1::HASH_ALGORITHM_SHA256);
    caps->set_has_ima(!o_.ima_log.empty());
    caps->set_has_boot_log(!o_.boot_log.empty());
    if (!o_.ima_log.empty()) {
      caps->add_ima_formats(v1::IMA_LOG_FORMAT_BINARY);
      caps->add_ima_formats(v1::IMA_LOG_FORMAT_ASCII);
    }
    if (!stream->Write(hello_msg)) return finish(end);

    std::optional<v1::Challenge> challenge;
    absl::Time next_push = absl::InfiniteFuture();
    absl::Time earliest_push = absl::InfinitePast();
    absl::Time reply_deadline = absl::InfiniteFuture();
    absl::Duration min_interval = o_.min_push_interval;
    uint64_t sent_until = 0;  // Entry index after the last entry sent.
    absl::Duration error_backoff = absl::ZeroDuration();
    while (true) {
      if (std::optional<int> sig = WaitForShutdownFor(absl::ZeroDuration())) {
        end.signal = sig;
        return finish(end);
      }
      std::optional<v1::VerifierMessage> m = inbox.Pop(o_.ima_poll);
      const absl::Time now = absl::Now();
      if (m) {
        reply_deadline = absl::InfiniteFuture();
        switch (m->message_case()) {
          case v1::VerifierMessage::kChallenge:
            challenge = m->challenge();
            // Answer a bare challenge at once, unless it follows our own
            // error report: then back off so a failing TPM is not hammered.
            next_push = now + error_backoff;
            break;
          case v1::VerifierMessage::kVerdict: {
            const v1::Verdict& v = m->verdict();
            end.had_verdict = true;
            error_backoff = absl::ZeroDuration();
            std::string first;
            if (v.failures_size() > 0) {
              first = absl::StrCat(v.failures(0).path(), " ",
                                   v.failures(0).detail());
            }
            Log(v.state() == v1::ATTESTATION_STATE_PASS ? LogLevel::kInfo
                                                        : LogLevel::kWarning,
                "verdict",
                {{"verifier", address},
                 {"attestation_id", v.attestation_id()},
                 {"state", sdk::StateName(v.state())},
                 {"agent_state", sdk::StateName(v.agent_state())},
                 {"ima_next_entry",
                  v.has_ima_next_entry()
                      ? static_cast<int64_t>(v.ima_next_entry())
                      : -1},
                 {"failures", v.failures_size()},
                 {"first_failure", first}});
            challenge = v.next_challenge();
            const absl::Duration interval = FromProto(challenge->interval());
            min_interval = std::max(o_.min_push_interval,
                                    FromProto(challenge->min_interval()));
            next_push =
                now + (interval > absl::ZeroDuration() ? interval
                                                       : absl::Seconds(60));
            earliest_push = now + min_interval;
            break;
          }
          case v1::VerifierMessage::kError: {
            const v1::StreamError& e = m->error();
            Log(LogLevel::kWarning, "verifier rejected a message",
                {{"code", e.code()}, {"message", e.message()}});
            absl::Duration wait = FromProto(e.retry_after());
            if (wait < absl::Seconds(1)) wait = absl::Seconds(1);
            next_push = now + wait;
            earliest_push = next_push;
            break;
          }
          case v1::VerifierMessage::kStateNotice:
            Log(LogLevel::kWarning, "state notice",
                {{"state", sdk::StateName(m->state_notice().state())}});
            break;
          default:
            break;  // A newer verifier's message kind.
        }
      } else if (inbox.closed()) {
        return finish(end);
      }
      if (now > reply_deadline) {
        Log(LogLevel::kWarning, "no reply from the verifier; reconnecting",
            {{"verifier", address}});
        end.status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                  "no reply to evidence");
        return finish(end);
      }
      if (!challenge || reply_deadline != absl::InfiniteFuture()) continue;
      bool due = now >= next_push;
      if (!due && now >= earliest_push && challenge->has_ima_from() &&
          !o_.ima_log.empty() && ima_->MayHaveEntriesFrom(sent_until)) {
        due = true;  // New measurements: push early.
      }
      if (!due) continue;
      absl::StatusOr<v1::AgentMessage> evidence = BuildEvidence(*challenge);
      if (!evidence.ok()) {
        Log(LogLevel::kWarning, "cannot answer the challenge",
            {{"error", evidence.status().message()}});
        v1::AgentMessage err;
        err.mutable_agent_error()->set_code(
            static_cast<int32_t>(evidence.status().code()));
        err.mutable_agent_error()->set_message(
            std::string(evidence.status().message()).substr(0, 256));
        error_backoff = std::min(std::max(absl::Seconds(1), 2 * error_backoff),
                                 absl::Seconds(60));
        if (!stream->Write(err)) return finish(end);
      } else {
        if (evidence->evidence().has_ima_entries()) {
          const v1::ImaLogChunk& c = evidence->evidence().ima_entries();
          sent_until = c.first_index() + last_entries_;
        }
        if (!stream->Write(*evidence)) return finish(end);
      }
      challenge.reset();
      reply_deadline = absl::Now() + o_.reply_timeout;
    }
  }

 private:
  absl::StatusOr<tpm::Tpm*> Tpm() {
    if (*held_tpm_ == nullptr) {
      absl::StatusOr<std::unique_ptr<tpm::Tpm>> t = open_tpm_();
      if (!t.ok()) return t.status();
      *held_tpm_ = *std::move(t);
    }
    return held_tpm_->get();
  }

  absl::StatusOr<v1::AgentMessage> BuildEvidence(const v1::Challenge& ch) {
    absl::StatusOr<v1::AgentMessage> out = BuildEvidenceWithTpm(ch);
    if (!o_.keep_tpm_open || !out.ok()) held_tpm_->reset();
    return out;
  }

  absl::StatusOr<v1::AgentMessage> BuildEvidenceWithTpm(
      const v1::Challenge& ch) {
    absl::StatusOr<tpm::Tpm*> t = Tpm();
    if (!t.ok()) return t.status();
    const TPML_PCR_SELECTION sel = ToSelection(ch.pcr_selection());
    // The PCRs may change between reading them and quoting (PCR 10 with
    // every measurement): read, quote, read again, and retry until both
    // reads agree, so the values sent are the quoted ones.
    std::optional<tpm::QuoteBlob> quote;
    core::tpm::PcrValues values;
    for (int attempt = 0; attempt < 5 && !quote; ++attempt) {
      absl::StatusOr<core::tpm::PcrValues> before = (*t)->PcrRead(sel);
      if (!before.ok()) return before.status();
      absl::StatusOr<tpm::QuoteBlob> q = (*t)->Quote(AsBytes(ch.nonce()), sel);
      if (!q.ok()) return q.status();
      absl::StatusOr<core::tpm::PcrValues> after = (*t)->PcrRead(sel);
      if (!after.ok()) return after.status();
      if (*before == *after) {
        quote = *std::move(q);
        values = *std::move(after);
      }
    }
    if (!quote) {
      return absl::UnavailableError("PCRs kept changing while quoting");
    }
    v1::AgentMessage msg;
    v1::Evidence* ev = msg.mutable_evidence();
    ev->set_quote(std::string(AsString(quote->attest)));
    ev->set_signature(std::string(AsString(quote->signature)));
    for (const auto& [alg, bank] : values) {
      v1::PcrBankValues* b = ev->add_pcr_values();
      b->set_hash_alg(static_cast<v1::HashAlgorithm>(alg));
      for (const auto& [index, digest] : bank) {
        v1::PcrValue* v = b->add_values();
        v->set_index(index);
        v->set_digest(std::string(AsString(digest)));
      }
    }
    // The log is read after the quote: it may run ahead of PCR 10, never
    // behind (the kernel appends before it extends).
    last_entries_ = 0;
    if (ch.has_ima_from()) {
      v1::ImaLogChunk* chunk = ev->mutable_ima_entries();
      chunk->set_first_index(ch.ima_from());
      chunk->set_template_hash_alg(v1::HASH_ALGORITHM_SHA1);
      chunk->set_format(v1::IMA_LOG_FORMAT_BINARY);
      if (!o_.ima_log.empty()) {
        absl::StatusOr<ImaChunk> c =
            ima_->Read(ch.ima_from(), kMaxChunkBytes, kMaxChunkEntries);
        if (!c.ok() && !absl::IsNotFound(c.status())) return c.status();
        if (c.ok()) {
          chunk->set_format(c->binary ? v1::IMA_LOG_FORMAT_BINARY
                                      : v1::IMA_LOG_FORMAT_ASCII);
          chunk->set_data(std::move(c->data));
          chunk->set_truncated(c->truncated);
          last_entries_ = c->entries;
        }
      }
    }
    if (ch.want_boot_log() && !o_.boot_log.empty()) {
      absl::StatusOr<std::string> log =
          ReadFileUpTo(o_.boot_log, kMaxBootLogBytes);
      if (log.ok()) {
        ev->set_boot_log(*std::move(log));
      } else {
        Log(LogLevel::kWarning, "boot log unreadable",
            {{"path", o_.boot_log}, {"error", log.status().message()}});
      }
    }
    return msg;
  }

  const TpmOpener& open_tpm_;
  const AttestOptions& o_;
  ImaSource* ima_;
  std::unique_ptr<tpm::Tpm>* held_tpm_;
  uint64_t last_entries_ = 0;
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
  ImaSource ima(options.ima_log);
  std::unique_ptr<tpm::Tpm> held_tpm;
  Backoff backoff(options.retry_initial, options.retry_max,
                  std::random_device{}());
  size_t next = 0;
  while (true) {
    const std::string& address =
        options.verifiers[next % options.verifiers.size()];
    ++next;
    Log(LogLevel::kInfo, "opening attestation stream", {{"verifier", address}});
    Session session(open_tpm, options, &ima, &held_tpm);
    Session::End end = session.Run(address);
    if (end.signal) {
      Log(LogLevel::kInfo, "agent stopping", {{"signal", *end.signal}});
      return 0;
    }
    if (end.had_verdict) backoff.Reset();
    absl::Duration wait = absl::ZeroDuration();
    if (end.status.error_code() != grpc::StatusCode::ABORTED) {
      wait = backoff.Next();
    }
    const bool operator_must_act =
        end.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        end.status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
    Log(operator_must_act ? LogLevel::kError : LogLevel::kWarning,
        "attestation stream ended",
        {{"verifier", address},
         {"code", static_cast<int>(end.status.error_code())},
         {"message", end.status.error_message()},
         {"retry_in", absl::FormatDuration(wait)}});
    if (wait > absl::ZeroDuration()) {
      if (std::optional<int> sig = WaitForShutdownFor(wait)) {
        Log(LogLevel::kInfo, "agent stopping", {{"signal", *sig}});
        return 0;
      }
    }
  }
}

}  // namespace vouch::agent
