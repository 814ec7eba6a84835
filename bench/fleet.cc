// fleet: a fleet of simulated agents against a pool of real verifiers.
//
// One process simulates N agents on gRPC's callback API (no thread per
// agent): each agent has its own agent certificate (mTLS, its own
// connection) and its own software AIK (an RSA-2048 key with a TPM AIK's
// attributes, harness/soft_aik.h). Keys and certificates are generated once
// and cached on disk (--cache DIR), so later runs start at once. Agents are
// registered and enrolled in bulk in a throw-away PostgreSQL (the test
// harness); V vouch-verifier processes serve them over mTLS. Each agent says
// Hello to its verifier (agent i to verifier i mod V), then pushes a signed
// quote every --interval (+-10 % jitter, the first push spread over one
// interval); every --ima-every-th push (5; 0: never) it has measured one to
// three files of the runtime policy "fleet" since the last, so the push
// carries those IMA entries (ASCII, ima-ng) and PCR 10 moves with them. A
// stream that ends reconnects to the next verifier after a
// jittered back-off (at least the server's retry hint when it sent one).
//
// --kill-verifier-at T SIGKILLs verifier 0 T seconds into the run; its
// agents move to the survivors, which take them over with the epoch fence.
//
// Measured (--json prints one object, last):
//   streams_peak              most agents with a live stream at once;
//   verifier_rss_bytes_per_stream  (RSS of all verifiers at the peak - RSS
//                             before any agent connected) / streams_peak;
//   verifier_cpu_seconds      utime + stime of all verifiers (the killed one
//                             up to its kill);
//   verdict_lag_p99_ms        from the moment a quote is due to its verdict;
//   verdict_lag_p99_steady_ms the same for the verdicts after the first two
//                             intervals (without the start-up backlog);
//   takeover_seconds          after the kill, until every agent the killed
//                             verifier held has a PASS committed by a
//                             survivor (from the database); -1 when some
//                             agent had none by the end, 0 without a kill;
//   duplicates                (agent, nonce) stored more than once;
//   lost                      verdicts an agent received whose attestation
//                             is not stored, plus agents whose stored
//                             ima_next_entry is behind the IMA entries their
//                             last verdict proved or past those they sent;
//   stale_pass                agents a ListAgents read (every second, from
//                             the last verifier) showed PASS although their
//                             last verdict was older than the lease allows
//                             (timeout_intervals x interval);
//   attestations, db_commits_per_attestation,
//   db_rows_written_per_attestation (pg_stat_database over the run),
//   db_wal_bytes_per_attestation, db_table_bytes_per_attestation (growth of
//   the attestation tables, indexes included),
//   verifier_cpu_ms_per_attestation.
// Exits 1 when duplicates, lost or stale_pass is not 0, a verdict was not
// PASS, no verdict came at all, a kill was not fully taken over, or an
// abusive stream outlived --abuse-seconds.
//
// Usage: fleet --agents N --verifiers V --interval DURATION --seconds S
//              [--kill-verifier-at SECONDS] [--cache DIR] [--json]
//              [--aik-keys K] [--threads T] [--verifier-arg ARG]...
//              [--ima-every N]
//              [--abuse-at T [--abuse-streams N] [--abuse-watch M]
//               [--abuse-seconds S]]
// --threads T runs T scheduler threads (default 2) that set up channels and
// sign quotes; the streams themselves hold no thread.
// --aik-keys K lets agent i use cached AIK key i mod K (each agent is still
// registered with its AIK and verified with it; only key generation, about
// 0.1-1 s of CPU per RSA-2048 key, is saved on a first large run).
// --verifier-arg passes ARG on to every vouch-verifier (repeatable).
// --abuse-at T: T seconds into the run, one agent's certificate opens
// --abuse-streams N (10,000) Attest streams that never send a Hello, and
// the admin client certificate --abuse-watch M (200) Watch streams, all to
// the last verifier, for --abuse-seconds S (30; longer than the verifier's
// Hello deadline) (fleet_abuse.h). Measured: how each abusive stream ended
// (refused RESOURCE_EXHAUSTED, closed DEADLINE_EXCEEDED at the Hello
// deadline) and the longest it lived, those still open after S seconds,
// the verifier's RSS growth, and the largest verdict lag of the real agents
// during the abuse (abuse_* in --json). An Attest stream still open after
// S seconds fails the run.
#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/file.h"
#include "core/attest/limits.h"
#include "core/ima/ima_log_writer.h"
#include "core/tpm/tpm_wire.h"
#include "fleet_abuse.h"
#include "harness/pg_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/soft_aik.h"
#include "load_util.h"
#include "sdk/ca.h"
#include "sdk/channel.h"
#include "sdk/client.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch {
namespace {

using Clock = std::chrono::steady_clock;
using testing::SoftAik;

using bench::CpuSeconds;
using bench::Die;
using bench::Must;
using bench::MustOk;
using bench::Percentile;

// Resident set size of a process in bytes (0 once it is gone).
int64_t RssBytes(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/statm"));
  int64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * sysconf(_SC_PAGESIZE);
}

// An RSA-2048 key as PKCS#8 PEM, read from `path` or generated and written
// there.
std::string CachedKeyPem(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileUpTo(path, 1 << 16);
  if (pem.ok() && !pem->empty()) return *pem;
  EVP_PKEY* key = EVP_RSA_gen(2048);
  if (key == nullptr) Die("RSA key generation");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  std::ofstream(path) << out;
  return out;
}

struct Options {
  int agents = 100;
  int verifiers = 2;
  absl::Duration interval = absl::Seconds(10);
  int seconds = 30;
  double kill_at = -1;  // Seconds into the run; < 0: no kill.
  std::string cache;
  int aik_keys = 0;  // Distinct AIK keys; 0: one per agent.
  int threads = 2;   // Scheduler threads (channel set-up, signing).
  bool json = false;
  std::vector<std::string> verifier_args;
  double abuse_at = -1;  // Seconds into the run; < 0: no abuse.
  int abuse_streams = 10000;
  int abuse_watch = 200;
  double abuse_seconds = 30;  // Then what is still open is cancelled.
  int ima_every = 5;          // Every n-th push measures new files; 0: never.
};

Options ParseFlags(int argc, char** argv) {
  Options o;
  if (const char* tmp = std::getenv("TMPDIR")) {
    o.cache = absl::StrCat(tmp, "/vouch-fleet-cache-", getuid());
  } else {
    o.cache = absl::StrCat("/tmp/vouch-fleet-cache-", getuid());
  }
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 >= argc) Die(absl::StrCat(flag, ": value missing"));
    const std::string v = argv[++i];
    bool ok = true;
    if (flag == "--agents") {
      ok = absl::SimpleAtoi(v, &o.agents) && o.agents > 0;
    } else if (flag == "--verifiers") {
      ok = absl::SimpleAtoi(v, &o.verifiers) && o.verifiers > 0;
    } else if (flag == "--interval") {
      ok = absl::ParseDuration(v, &o.interval) &&
           o.interval >= absl::Milliseconds(100);
    } else if (flag == "--seconds") {
      ok = absl::SimpleAtoi(v, &o.seconds) && o.seconds > 0;
    } else if (flag == "--kill-verifier-at") {
      ok = absl::SimpleAtod(v, &o.kill_at) && o.kill_at >= 0;
    } else if (flag == "--cache") {
      o.cache = v;
    } else if (flag == "--threads") {
      ok = absl::SimpleAtoi(v, &o.threads) && o.threads > 0 && o.threads <= 64;
    } else if (flag == "--aik-keys") {
      ok = absl::SimpleAtoi(v, &o.aik_keys) && o.aik_keys > 0;
    } else if (flag == "--verifier-arg") {
      o.verifier_args.push_back(v);
    } else if (flag == "--abuse-at") {
      ok = absl::SimpleAtod(v, &o.abuse_at) && o.abuse_at >= 0;
    } else if (flag == "--abuse-streams") {
      ok = absl::SimpleAtoi(v, &o.abuse_streams) && o.abuse_streams >= 0;
    } else if (flag == "--ima-every") {
      ok = absl::SimpleAtoi(v, &o.ima_every) && o.ima_every >= 0;
    } else if (flag == "--abuse-seconds") {
      ok = absl::SimpleAtod(v, &o.abuse_seconds) && o.abuse_seconds > 0;
    } else if (flag == "--abuse-watch") {
      ok = absl::SimpleAtoi(v, &o.abuse_watch) && o.abuse_watch >= 0;
    } else {
      Die(absl::StrCat("unknown flag ", flag));
    }
    if (!ok) Die(absl::StrCat(flag, ": bad value ", v));
  }
  if (o.kill_at >= 0 && o.verifiers < 2) Die("a kill needs --verifiers >= 2");
  return o;
}

// ---------------------------------------------------------------------------
// The simulated agents.

class Fleet;

struct Agent {
  int index = 0;
  std::string id;
  std::unique_ptr<SoftAik> aik;
  std::mutex mu;
  class Conn* conn = nullptr;  // Live stream, guarded by mu.
  int verifier = 0;            // Verifier of the current or last stream.
  bool streaming = false;      // A challenge arrived on the current stream.
  v1::Challenge challenge;
  Clock::time_point due;  // When the pending quote is due.
  uint64_t clock = 1000;
  int failures_in_row = 0;
  // The agent's IMA log (one ASCII line per entry) and its SHA-256 PCR 10.
  std::vector<const std::string*> ima_lines;
  std::string pcr10 = std::string(32, '\0');
  uint64_t pushes = 0;
  uint64_t ima_sent = 0;   // Entries the outstanding push covers.
  uint64_t ima_acked = 0;  // Entries the last verdict proved.
};

// A file the simulated agents measure: its ASCII IMA line (ima-ng, SHA-256
// file digest) and the SHA-256 template hash PCR 10 is extended with. The
// runtime policy "fleet" lists every one.
struct FleetFile {
  std::string path;
  std::string digest;  // SHA-256 of the file, raw.
  std::string line;
  std::string template_sha256;
};

constexpr int kFleetFiles = 64;

std::vector<FleetFile> MakeFleetFiles() {
  std::vector<FleetFile> files;
  core::ima::ImaLogWriter writer;
  for (int k = 0; k < kFleetFiles; ++k) {
    FleetFile f;
    f.path = absl::StrCat("/usr/lib/vouch-fleet/file-", k);
    f.digest = Sha256(absl::StrCat("vouch fleet file ", k));
    core::ima::ImaRecord r;
    r.digest = Bytes(f.digest.begin(), f.digest.end());
    r.path = f.path;
    writer.Append(r, &f.line, core::ima::LogFormat::kAscii);
    f.template_sha256 = Sha256(core::ima::BuildTemplateData(r));
    files.push_back(std::move(f));
  }
  return files;
}

// The runtime policy "fleet" of tenant "default": the fleet's files.
store::PolicyRow FleetRuntimePolicy(const std::vector<FleetFile>& files) {
  std::string digests;
  for (const FleetFile& f : files) {
    absl::StrAppend(&digests, digests.empty() ? "" : ", ", "\"", f.path,
                    "\": [\"", HexEncode(f.digest), "\"]");
  }
  store::PolicyRow policy = bench::EmptyRuntimePolicy();
  policy.name = "fleet";
  policy.content = absl::StrCat(
      R"({"meta": {"version": 1}, "release": 0, "digests": {)", digests,
      R"(}, "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [],
      "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {},
      "verification-keys": ""})");
  return policy;
}

// The client options of agent `id` (its certificate, as Provision issued
// it) for the verifier at `address`.
sdk::ClientOptions AgentClient(const std::string& ca_dir, const std::string& id,
                               const std::string& address) {
  const std::string dir = absl::StrCat(ca_dir, "/agents/", id);
  sdk::ClientOptions o;
  o.server = address;
  o.ca_file = dir + "/ca.pem";
  o.cert_file = dir + "/agent.pem";
  o.key_file = dir + "/agent.key";
  return o;
}

// What happens next, run by the scheduler thread.
struct Event {
  Clock::time_point at;
  int agent;
  enum Kind { kConnect, kPush } kind;
  uint64_t generation;  // kPush: the stream it belongs to.
  bool operator>(const Event& o) const { return at > o.at; }
};

class Fleet {
 public:
  Fleet(const Options& options, std::vector<std::string> addresses,
        std::string ca_dir)
      : options_(options),
        addresses_(std::move(addresses)),
        ca_dir_(std::move(ca_dir)) {}

  std::vector<std::unique_ptr<Agent>>& agents() { return agents_; }
  // IMA entries the agents' logs hold in all.
  uint64_t ima_entries() {
    uint64_t n = 0;
    for (const auto& a : agents_) {
      std::lock_guard<std::mutex> lock(a->mu);
      n += a->ima_lines.size();
    }
    return n;
  }

  void Schedule(Event e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push(e);
    cv_.notify_one();
  }

  // A scheduler thread (run by --threads of them): connects agents and
  // signs and sends their quotes when due, until Stop().
  void Run();
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

  void Connect(Agent& a);
  void Push(Agent& a, uint64_t generation);
  // Cancels every stream (no reconnect after) and waits until all are gone.
  void CloseAll();
  // A finished stream, deleted by the next Sweep (never in a callback).
  void Bury(class Conn* conn) {
    std::lock_guard<std::mutex> lock(dead_mu_);
    dead_.push_back(conn);
  }
  void Sweep();

  // Called by a stream's callbacks.
  void OnChallenge(Agent& a, const v1::Challenge& c, bool first,
                   uint64_t generation);
  void OnVerdict(Agent& a, const v1::Verdict& v, uint64_t generation);
  void OnStreamEnd(Agent& a, const grpc::Status& status,
                   absl::Duration retry_hint);

  int streams() const { return streams_.load(); }
  int streams_peak() const { return streams_peak_.load(); }
  uint64_t verdicts() const { return verdicts_.load(); }
  uint64_t not_pass() const { return not_pass_.load(); }
  uint64_t stream_ends() const { return stream_ends_.load(); }

  std::vector<double> TakeLags() {
    std::lock_guard<std::mutex> lock(data_mu_);
    return lags_ms_;
  }
  // The lags of the verdicts received in [from, to).
  std::vector<double> LagsBetween(Clock::time_point from,
                                  Clock::time_point to) {
    std::lock_guard<std::mutex> lock(data_mu_);
    std::vector<double> out;
    for (size_t i = 0; i < lags_ms_.size(); ++i) {
      if (verdict_at_[i] >= from && verdict_at_[i] < to) {
        out.push_back(lags_ms_[i]);
      }
    }
    return out;
  }
  // Hex nonces of every verdict an agent received.
  std::vector<std::string> acked() {
    std::lock_guard<std::mutex> lock(data_mu_);
    return acked_;
  }
  double Jitter(double lo, double hi) {
    std::lock_guard<std::mutex> lock(rng_mu_);
    return std::uniform_real_distribution<double>(lo, hi)(rng_);
  }

 private:
  const Options& options_;
  const std::vector<std::string> addresses_;
  const std::string ca_dir_;
  const std::vector<FleetFile> files_ = MakeFleetFiles();
  std::vector<std::unique_ptr<Agent>> agents_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  bool stop_ = false;

  std::atomic<int> streams_{0};
  std::atomic<int> streams_peak_{0};
  std::atomic<uint64_t> verdicts_{0};
  std::atomic<uint64_t> not_pass_{0};
  std::atomic<uint64_t> stream_ends_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> live_conns_{0};
  std::mutex dead_mu_;
  std::vector<class Conn*> dead_;
  std::atomic<bool> closing_{false};

  std::mutex data_mu_;
  std::vector<double> lags_ms_;
  std::vector<Clock::time_point> verdict_at_;  // Parallel to lags_ms_.
  std::vector<std::string> acked_;

  std::mutex rng_mu_;
  std::mt19937_64 rng_{std::random_device{}()};
};

// One Attest stream of one agent. A hold keeps the call from completing
// until the stream's read side has ended and the agent no longer points
// here, so the scheduler never writes to a finished call. Buried in OnDone
// and deleted by Fleet::Sweep.
class Conn final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  Conn(Fleet* fleet, Agent* agent, std::shared_ptr<grpc::Channel> channel,
       uint64_t generation)
      : fleet_(fleet),
        agent_(agent),
        stub_(v1::Attestation::NewStub(std::move(channel))),
        generation_(generation) {}

  void Start() {
    v1::Hello* h = hello_.mutable_hello();
    h->set_agent_id(agent_->id);
    h->set_aik_name(std::string(AsString(agent_->aik->name())));
    h->mutable_capabilities()->add_pcr_banks(v1::HASH_ALGORITHM_SHA256);
    h->mutable_capabilities()->add_ima_formats(v1::IMA_LOG_FORMAT_ASCII);
    stub_->async()->Attest(&ctx_, this);
    AddHold();
    StartRead(&in_);
    Write(hello_);
    StartCall();
  }

  // Agent mutex held (the scheduler) or before StartCall. A message that
  // comes while another is being written goes out after it.
  void Write(const v1::AgentMessage& m) {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (writing_) {
      pending_ = m;
      return;
    }
    writing_ = true;
    out_ = m;
    StartWrite(&out_);
  }
  uint64_t generation() const { return generation_; }
  void Cancel() { ctx_.TryCancel(); }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(write_mu_);
    writing_ = false;
    if (ok && pending_) {
      writing_ = true;
      out_ = *std::move(pending_);
      pending_.reset();
      StartWrite(&out_);
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard<std::mutex> lock(agent_->mu);
        if (agent_->conn == this) agent_->conn = nullptr;
      }
      RemoveHold();
      return;
    }
    if (in_.has_challenge()) {
      fleet_->OnChallenge(*agent_, in_.challenge(), !got_challenge_,
                          generation_);
      got_challenge_ = true;
    } else if (in_.has_verdict()) {
      fleet_->OnVerdict(*agent_, in_.verdict(), generation_);
    }
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& status) override {
    absl::Duration hint;
    const auto& trailers = ctx_.GetServerTrailingMetadata();
    auto it = trailers.find(core::attest::kRetryAfterMetadata);
    int64_t ms = 0;
    if (it != trailers.end() &&
        absl::SimpleAtoi(
            absl::string_view(it->second.data(), it->second.size()), &ms)) {
      hint = absl::Milliseconds(std::clamp<int64_t>(ms, 0, 600000));
    }
    fleet_->OnStreamEnd(*agent_, status, hint);
    // Deleted later on another thread: the stub holds the last reference
    // to the channel, which must not be destroyed inside its own callback.
    fleet_->Bury(this);
  }

 private:
  Fleet* fleet_;
  Agent* agent_;
  std::unique_ptr<v1::Attestation::Stub> stub_;
  const uint64_t generation_;
  grpc::ClientContext ctx_;
  v1::AgentMessage hello_;
  v1::AgentMessage out_;
  v1::VerifierMessage in_;
  std::mutex write_mu_;
  bool writing_ = false;
  std::optional<v1::AgentMessage> pending_;
  bool got_challenge_ = false;  // Only the read side touches it.
};

void Fleet::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (events_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const Event e = events_.top();
    if (e.at > Clock::now()) {
      cv_.wait_until(lock, e.at);
      continue;
    }
    events_.pop();
    lock.unlock();
    Agent& a = *agents_[e.agent];
    if (e.kind == Event::kConnect) {
      Connect(a);
    } else {
      Push(a, e.generation);
    }
    lock.lock();
  }
}

void Fleet::Connect(Agent& a) {
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.conn != nullptr) return;
  auto channel = Must(
      sdk::CreateChannel(AgentClient(ca_dir_, a.id, addresses_[a.verifier])),
      "channel");
  if (closing_) return;
  a.streaming = false;
  ++live_conns_;
  a.conn = new Conn(this, &a, std::move(channel), ++generation_);
  a.conn->Start();
}

void Fleet::Sweep() {
  std::vector<Conn*> dead;
  {
    std::lock_guard<std::mutex> lock(dead_mu_);
    dead.swap(dead_);
  }
  for (Conn* c : dead) delete c;
  live_conns_ -= static_cast<int>(dead.size());
}

void Fleet::CloseAll() {
  closing_ = true;
  for (const auto& a : agents_) {
    std::lock_guard<std::mutex> lock(a->mu);
    if (a->conn != nullptr) a->conn->Cancel();
  }
  for (int i = 0; i < 300 && live_conns_ > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Sweep();
  }
  if (live_conns_ > 0) Die("streams did not close");
}

void Fleet::Push(Agent& a, uint64_t generation) {
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.conn == nullptr || a.conn->generation() != generation) return;
  // Every --ima-every-th push, 1-3 files were measured since the last.
  if (options_.ima_every > 0 && ++a.pushes % options_.ima_every == 0) {
    for (uint64_t i = 0; i <= a.pushes % 3; ++i) {
      const FleetFile& f =
          files_[static_cast<size_t>(Jitter(0, kFleetFiles - 0.001))];
      a.ima_lines.push_back(&f.line);
      a.pcr10 = Sha256(a.pcr10 + f.template_sha256);
    }
  }
  TPML_PCR_SELECTION sel{};
  (void)core::tpm::SelectPcr(sel, TPM2_ALG_SHA256, 10);
  core::tpm::PcrValues values;
  values[TPM2_ALG_SHA256][10] = Bytes(a.pcr10.begin(), a.pcr10.end());
  auto [attest, sig] =
      a.aik->Quote(sel, values, a.challenge.nonce(),
                   core::tpm::ClockInfo{a.clock += 10, 1, 0, true});
  v1::AgentMessage ev;
  v1::Evidence* e = ev.mutable_evidence();
  e->set_quote(attest);
  e->set_signature(sig);
  v1::PcrBankValues* bank = e->add_pcr_values();
  bank->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  v1::PcrValue* pcr10 = bank->add_values();
  pcr10->set_index(10);
  pcr10->set_digest(a.pcr10);
  v1::ImaLogChunk* chunk = e->mutable_ima_entries();
  chunk->set_format(v1::IMA_LOG_FORMAT_ASCII);
  chunk->set_first_index(a.challenge.ima_from());
  // The entries past what the verifier has committed (all of them after
  // a takeover by another verifier, if it had committed none).
  std::string* data = chunk->mutable_data();
  for (uint64_t i = a.challenge.ima_from(); i < a.ima_lines.size(); ++i) {
    data->append(*a.ima_lines[i]);
  }
  a.ima_sent = a.ima_lines.size();
  a.conn->Write(ev);
}

void Fleet::OnChallenge(Agent& a, const v1::Challenge& c, bool first,
                        uint64_t generation) {
  Clock::time_point due;
  {
    std::lock_guard<std::mutex> lock(a.mu);
    a.challenge = c;
    a.failures_in_row = 0;
    if (first && !a.streaming) {
      a.streaming = true;
      const int now = ++streams_;
      int peak = streams_peak_.load();
      while (now > peak && !streams_peak_.compare_exchange_weak(peak, now)) {
      }
    }
    // The first quote at once (a reconnecting agent proves itself), later
    // ones on the interval.
    a.due = Clock::now();
    due = a.due;
  }
  Schedule(Event{due, a.index, Event::kPush, generation});
}

void Fleet::OnVerdict(Agent& a, const v1::Verdict& v, uint64_t generation) {
  const auto now = Clock::now();
  Clock::time_point due;
  std::string nonce_hex;
  {
    std::lock_guard<std::mutex> lock(a.mu);
    nonce_hex = HexEncode(AsBytes(a.challenge.nonce()));
    const double lag =
        std::chrono::duration<double, std::milli>(now - a.due).count();
    {
      std::lock_guard<std::mutex> data(data_mu_);
      lags_ms_.push_back(lag);
      verdict_at_.push_back(now);
      acked_.push_back(std::move(nonce_hex));
    }
    if (v.state() == v1::ATTESTATION_STATE_PASS) a.ima_acked = a.ima_sent;
    a.challenge = v.next_challenge();
    const double scale = Jitter(0.9, 1.1);
    a.due = a.due + std::chrono::microseconds(static_cast<int64_t>(
                        scale * absl::ToDoubleMicroseconds(options_.interval)));
    if (a.due < now) a.due = now;
    due = a.due;
  }
  ++verdicts_;
  if (v.state() != v1::ATTESTATION_STATE_PASS) ++not_pass_;
  Schedule(Event{due, a.index, Event::kPush, generation});
}

void Fleet::OnStreamEnd(Agent& a, const grpc::Status& status,
                        absl::Duration hint) {
  ++stream_ends_;
  absl::Duration wait;
  {
    std::lock_guard<std::mutex> lock(a.mu);
    if (a.streaming) {
      a.streaming = false;
      --streams_;
    }
    // Jittered exponential back-off from 0.2 s, capped at 5 s, and never
    // shorter than the server's hint; the next verifier of the list.
    const int n = std::min(a.failures_in_row++, 5);
    wait = std::max(hint, absl::Milliseconds(200) * (1 << n) / 2);
    wait = std::min(wait, std::max(hint, absl::Seconds(5)));
    a.verifier = (a.verifier + 1) % static_cast<int>(addresses_.size());
  }
  (void)status;
  wait = wait * Jitter(0.5, 1.5);
  Schedule(Event{
      Clock::now() + std::chrono::microseconds(absl::ToInt64Microseconds(wait)),
      a.index, Event::kConnect, 0});
}

// ---------------------------------------------------------------------------
// Setup and measurement.

// Row `row`, column `col` of a result as text ("" for NULL or none).
std::string Cell(const store::PgRows& r, size_t row, size_t col) {
  if (row >= r.rows.size() || col >= r.rows[row].size()) return "";
  return r.rows[row][col].value_or("");
}

struct DbCounters {
  int64_t commits = 0;
  int64_t rows = 0;  // Inserted + updated + deleted.
  double wal_bytes = 0;
  double table_bytes = 0;  // attestations (all partitions) + nonces.
};

DbCounters ReadDbCounters(store::PgPool& pool) {
  auto db = Must(pool.Acquire(), "db");
  (void)db->Exec("SELECT pg_stat_clear_snapshot()");
  store::PgRows r = Must(
      db->Query("SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                "FROM pg_stat_database WHERE datname = current_database()"),
      "pg_stat_database");
  DbCounters c;
  if (r.rows.size() == 1) {
    (void)absl::SimpleAtoi(Cell(r, 0, 0), &c.commits);
    (void)absl::SimpleAtoi(Cell(r, 0, 1), &c.rows);
  }
  store::PgRows sizes = Must(
      db->Query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'), "
                "(SELECT COALESCE(sum(pg_total_relation_size(i.inhrelid)), 0) "
                "FROM pg_inherits i WHERE i.inhparent = "
                "'attestations'::regclass) + "
                "pg_total_relation_size('attestation_nonces')"),
      "sizes");
  (void)absl::SimpleAtod(Cell(sizes, 0, 0), &c.wal_bytes);
  (void)absl::SimpleAtod(Cell(sizes, 0, 1), &c.table_bytes);
  return c;
}

int64_t CountQuery(store::PgPool& pool, const std::string& sql,
                   const std::vector<store::PgParam>& params = {}) {
  auto db = Must(pool.Acquire(), "db");
  store::PgRows r = Must(db->Query(sql, params), sql);
  int64_t n = 0;
  (void)absl::SimpleAtoi(Cell(r, 0, 0), &n);
  return n;
}

// Registers and enrolls the agents in the database in one transaction per
// 500, and issues each its certificate and AIK (cached).
void Provision(const Options& o, store::PgPool& pool,
               store::PgVerifierStore& store, const std::string& ca,
               std::vector<std::unique_ptr<Agent>>& agents) {
  std::filesystem::create_directories(o.cache + "/aik");
  for (int i = 0; i < o.agents; ++i) {
    auto a = std::make_unique<Agent>();
    a->index = i;
    a->id = absl::StrCat("fleet-agent-", i);
    const int key = o.aik_keys > 0 ? i % o.aik_keys : i;
    a->aik = std::make_unique<SoftAik>(
        SoftAik::FromPem(CachedKeyPem(absl::StrCat(o.cache, "/aik/", key))));
    a->verifier = i % o.verifiers;
    if (!std::filesystem::exists(
            absl::StrCat(ca, "/agents/", a->id, "/agent.pem"))) {
      sdk::IssueOptions io;
      io.ca_dir = ca;
      io.kind = sdk::CertKind::kAgent;
      io.name = a->id;
      MustOk(sdk::IssueCertificate(io), "agent cert");
    }
    agents.push_back(std::move(a));
  }
  for (int from = 0; from < o.agents; from += 500) {
    auto db = Must(pool.Acquire(), "db");
    MustOk(db->Exec("BEGIN").status(), "begin");
    for (int i = from; i < std::min(o.agents, from + 500); ++i) {
      const Agent& a = *agents[i];
      MustOk(bench::RegisterAgent(*db, a.id, AsString(a.aik->tpm2b_public()),
                                  AsString(a.aik->name())),
             "register");
    }
    MustOk(db->Exec("COMMIT").status(), "commit");
  }
  for (const auto& a : agents) {
    store::Enrollment e;
    e.tenant = "default";
    e.agent_id = a->id;
    e.runtime_policy = "fleet";
    e.interval = o.interval;
    e.hash_alg = 11;
    Must(store.Enroll(e), "enroll");
  }
}

// The CA, the verifiers' server certificate and an admin client, cached.
std::string CachedCa(const Options& o) {
  const std::string ca = o.cache + "/ca";
  if (!std::filesystem::exists(ca + "/ca.pem")) {
    std::filesystem::remove_all(ca);
    sdk::CaInitOptions init;
    init.dir = ca;
    MustOk(sdk::InitCa(init), "ca init");
    sdk::IssueOptions server;
    server.ca_dir = ca;
    server.kind = sdk::CertKind::kServer;
    server.name = "localhost";
    server.sans = {"127.0.0.1"};
    MustOk(sdk::IssueCertificate(server), "server cert");
    sdk::IssueOptions admin;
    admin.ca_dir = ca;
    admin.kind = sdk::CertKind::kClient;
    admin.name = "fleet-admin";
    MustOk(sdk::IssueCertificate(admin), "admin cert");
  }
  return ca;
}

// Verdicts agents received whose attestation is not stored.
int64_t LostAcks(store::PgPool& pool, const std::vector<std::string>& acked) {
  int64_t lost = 0;
  for (size_t from = 0; from < acked.size(); from += 5000) {
    const size_t to = std::min(acked.size(), from + 5000);
    const std::string array = store::ToTextArray(std::vector<std::string>(
        acked.begin() + static_cast<std::ptrdiff_t>(from),
        acked.begin() + static_cast<std::ptrdiff_t>(to)));
    lost += CountQuery(
        pool,
        "SELECT count(*) FROM unnest($1::text[]) AS n(hex) WHERE NOT EXISTS "
        "(SELECT 1 FROM attestations a WHERE a.nonce = decode(n.hex, 'hex'))",
        {array});
  }
  return lost;
}

// Agents whose stored IMA position is behind what their last verdict proved,
// or past what they ever sent (the last push's verdict may have been cut off
// by the end of the run: then the position is that push's).
int64_t LostImaPositions(store::PgPool& pool,
                         std::vector<std::unique_ptr<Agent>>& agents) {
  std::map<std::string, int64_t> stored;
  auto db = Must(pool.Acquire(), "db");
  store::PgRows r = Must(
      db->Query("SELECT agent_id, ima_next_entry FROM agent_state"), "state");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    int64_t n = 0;
    (void)absl::SimpleAtoi(Cell(r, i, 1), &n);
    stored[Cell(r, i, 0)] = n;
  }
  int64_t lost = 0;
  for (const auto& a : agents) {
    std::lock_guard<std::mutex> lock(a->mu);
    auto it = stored.find(a->id);
    const int64_t at = it == stored.end() ? 0 : it->second;
    if (at < static_cast<int64_t>(a->ima_acked) ||
        at > static_cast<int64_t>(a->ima_sent)) {
      ++lost;
    }
  }
  return lost;
}

// Reads every agent's state through the Admin API every second (from the
// last verifier, never killed) and counts PASS shown for an agent whose last
// verdict is older than its lease allows.
class StaleReader {
 public:
  StaleReader(const std::string& address, const std::string& ca,
              absl::Duration lease)
      : lease_(lease) {
    sdk::ClientOptions o;
    o.server = address;
    o.tls_dir = ca + "/clients/fleet-admin";
    client_ = Must(sdk::Client::Connect(o), "admin client");
    thread_ = std::thread([this] { Loop(); });
  }
  ~StaleReader() {
    stop_ = true;
    thread_.join();
  }
  int64_t stale() const { return stale_; }
  int64_t reads() const { return reads_; }

 private:
  void Loop() {
    while (!stop_) {
      const absl::Time asked = absl::Now();
      auto agents = client_->ListAgents({v1::ATTESTATION_STATE_PASS});
      if (agents.ok()) {
        ++reads_;
        for (const v1::AgentStatus& s : *agents) {
          if (s.state() != v1::ATTESTATION_STATE_PASS) continue;
          const absl::Time last =
              absl::FromUnixSeconds(s.last_verdict_at().seconds()) +
              absl::Nanoseconds(s.last_verdict_at().nanos());
          if (last + lease_ < asked) ++stale_;
        }
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

  const absl::Duration lease_;
  std::unique_ptr<sdk::Client> client_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> stale_{0};
  std::atomic<int64_t> reads_{0};
  std::thread thread_;
};

constexpr int kTimeoutIntervals = 3;

// What --abuse-at measured.
struct AbuseFigures {
  int64_t rss_before = 0;   // The target verifier's, when the abuse began.
  int64_t rss_peak = 0;     // Its largest during the abuse.
  int64_t open_attest = 0;  // Streams still open when the window ended.
  int64_t open_watch = 0;
  bool stopped = true;    // Every abusive stream ended after the cancel.
  double lag_max_ms = 0;  // The real agents' verdicts during the abuse.
  int64_t window_verdicts = 0;
};

// One agent's certificate opens o.abuse_streams Attest streams that never
// say Hello, and the admin client certificate o.abuse_watch Watch streams,
// all to `address`. One connection per 100 streams: the verifier allows 100
// per connection (grpc.max_concurrent_streams), so an abuser opens more.
std::unique_ptr<bench::AbuseRun> StartAbuse(const Options& o,
                                            const std::string& address,
                                            const std::string& ca,
                                            const std::string& agent_id) {
  const sdk::ClientOptions agent = AgentClient(ca, agent_id, address);
  sdk::ClientOptions viewer;
  viewer.server = address;
  viewer.tls_dir = ca + "/clients/fleet-admin";
  // Each CreateChannel makes new credentials, so a connection of its own.
  std::vector<std::shared_ptr<grpc::Channel>> attest;
  std::vector<std::shared_ptr<grpc::Channel>> watch;
  for (int i = 0; i < (o.abuse_streams + 99) / 100; ++i) {
    attest.push_back(Must(sdk::CreateChannel(agent), "abuse channel"));
  }
  for (int i = 0; i < (o.abuse_watch + 99) / 100; ++i) {
    watch.push_back(Must(sdk::CreateChannel(viewer), "abuse channel"));
  }
  auto run = std::make_unique<bench::AbuseRun>(
      std::move(attest), std::move(watch), o.abuse_streams, o.abuse_watch);
  std::cerr << "fleet: abuse: " << o.abuse_streams
            << " Attest streams without a Hello, " << o.abuse_watch
            << " Watch streams\n";
  run->Start();
  return run;
}

int Main(int argc, char** argv) {
  const Options o = ParseFlags(argc, argv);
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
  std::filesystem::create_directories(o.cache);
  const std::string ca = CachedCa(o);
  std::unique_ptr<testing::PgCluster> pg =
      Must(testing::PgCluster::Start(), "PostgreSQL");
  store::PgPool pool(pg->conninfo(), 2);
  MustOk(store::PrepareDatabase(pool, absl::Seconds(30)), "migrate");
  store::PgVerifierStore store(&pool, kTimeoutIntervals);
  Must(store.AddPolicy(FleetRuntimePolicy(MakeFleetFiles())), "policy");

  std::vector<std::string> addresses;
  std::vector<testing::ChildProcess> verifiers;
  std::vector<pid_t> pids;
  const std::string run_dir = o.cache + "/run";
  std::filesystem::remove_all(run_dir);
  std::filesystem::create_directories(run_dir);
  for (int v = 0; v < o.verifiers; ++v) {
    const int port = Must(testing::PickFreePort(), "port");
    addresses.push_back(absl::StrCat("127.0.0.1:", port));
    testing::ProcessOptions popts;
    popts.stdout_path = popts.stderr_path =
        absl::StrCat(run_dir, "/verifier-", v, ".log");
    popts.env = {{"VOUCH_DATABASE_URL", pg->conninfo()}};
    std::vector<std::string> command = {VOUCH_VERIFIER_BIN,
                                        "--verifier-listen",
                                        addresses.back(),
                                        "--verifier-port-file",
                                        absl::StrCat(run_dir, "/port-", v),
                                        "--verifier-id",
                                        absl::StrCat("fleet-v", v),
                                        "--verifier-min-interval",
                                        "0s",
                                        "--verifier-timeout-intervals",
                                        absl::StrCat(kTimeoutIntervals),
                                        "--tls-ca-file",
                                        ca + "/ca.pem",
                                        "--tls-cert-file",
                                        ca + "/servers/localhost/server.pem",
                                        "--tls-key-file",
                                        ca + "/servers/localhost/server.key",
                                        "--log-level",
                                        "warning",
                                        "--verifier-sweep-interval",
                                        "1s"};
    command.insert(command.end(), o.verifier_args.begin(),
                   o.verifier_args.end());
    verifiers.push_back(
        Must(testing::ChildProcess::Start(command, popts), "start verifier"));
    pids.push_back(verifiers.back().pid());
  }
  for (int v = 0; v < o.verifiers; ++v) {
    for (int i = 0; i < 300; ++i) {
      if (!ReadFileUpTo(absl::StrCat(run_dir, "/port-", v), 64)
               .value_or("")
               .empty()) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  Fleet fleet(o, addresses, ca);
  const auto setup_start = Clock::now();
  std::cerr << "fleet: provisioning " << o.agents << " agents\n";
  Provision(o, pool, store, ca, fleet.agents());
  const double setup_s =
      std::chrono::duration<double>(Clock::now() - setup_start).count();
  std::cerr << "fleet: provisioned in " << setup_s << " s\n";
  int64_t rss_base = 0;
  for (pid_t p : pids) rss_base += RssBytes(p);
  const DbCounters db0 = ReadDbCounters(pool);
  const int64_t attest0 = CountQuery(pool, "SELECT count(*) FROM attestations");
  std::vector<std::thread> schedulers;
  for (int i = 0; i < o.threads; ++i) {
    schedulers.emplace_back([&fleet] { fleet.Run(); });
  }
  // Connections spread over the first interval (or 5 s at most).
  const double spread = std::min(5.0, absl::ToDoubleSeconds(o.interval));
  for (int i = 0; i < o.agents; ++i) {
    fleet.Schedule(Event{
        Clock::now() + std::chrono::microseconds(
                           static_cast<int64_t>(fleet.Jitter(0, spread) * 1e6)),
        i, Event::kConnect, 0});
  }
  StaleReader stale(addresses.back(), ca, kTimeoutIntervals * o.interval);

  // --abuse-at (fleet_abuse.h), aimed at the last verifier (never killed).
  // The per-stream memory figure is not sampled while it lasts.
  std::unique_ptr<bench::AbuseRun> abuse;
  AbuseFigures abuse_figures;
  Clock::time_point abuse_start;
  bool abuse_over = false;
  auto end_abuse = [&] {
    abuse_figures.open_attest = abuse->open_attest();
    abuse_figures.open_watch = abuse->open_watch();
    abuse_figures.stopped = abuse->Stop();
    const std::vector<double> lags =
        fleet.LagsBetween(abuse_start, Clock::now());
    abuse_figures.window_verdicts = static_cast<int64_t>(lags.size());
    abuse_figures.lag_max_ms =
        lags.empty() ? 0 : *std::max_element(lags.begin(), lags.end());
    abuse_over = true;
  };

  const auto start = Clock::now();
  double cpu_killed = 0;
  int64_t rss_peak = 0;
  int streams_at_rss_peak = 0;
  std::string kill_ts;
  std::vector<std::string> held_by_killed;
  bool killed = false;
  while (Clock::now() - start < std::chrono::seconds(o.seconds)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    fleet.Sweep();
    const double t =
        std::chrono::duration<double>(Clock::now() - start).count();
    if (abuse != nullptr && !abuse_over) {
      abuse_figures.rss_peak =
          std::max(abuse_figures.rss_peak, RssBytes(pids.back()));
      if (t >= o.abuse_at + o.abuse_seconds) end_abuse();
    } else if (abuse == nullptr && o.abuse_at >= 0 && t >= o.abuse_at) {
      abuse_figures.rss_before = RssBytes(pids.back());
      abuse_start = Clock::now();
      abuse = StartAbuse(o, addresses.back(), ca, fleet.agents()[0]->id);
    } else if (!killed && abuse == nullptr) {
      int64_t rss = 0;
      for (pid_t p : pids) rss += RssBytes(p);
      if (fleet.streams() >= streams_at_rss_peak) {
        streams_at_rss_peak = fleet.streams();
        rss_peak = rss;
      }
    }
    if (!killed && o.kill_at >= 0 && t >= o.kill_at) {
      killed = true;
      for (const auto& a : fleet.agents()) {
        std::lock_guard<std::mutex> lock(a->mu);
        if (a->streaming && a->verifier == 0) held_by_killed.push_back(a->id);
      }
      store::PgRows now = Must(
          Must(pool.Acquire(), "db")->Query("SELECT clock_timestamp()::text"),
          "now");
      kill_ts = Cell(now, 0, 0);
      cpu_killed = CpuSeconds(pids[0]);
      ::kill(pids[0], SIGKILL);
      std::cerr << "fleet: killed verifier 0 at " << t << " s, holding "
                << held_by_killed.size() << " agents\n";
    }
  }
  if (abuse != nullptr && !abuse_over) end_abuse();
  // Stop the agents before the verifiers so no stream is cut mid-commit.
  fleet.Stop();
  for (std::thread& t : schedulers) t.join();
  fleet.CloseAll();
  std::cerr << "fleet: agents stopped\n";
  double cpu = cpu_killed;
  for (size_t v = killed ? 1 : 0; v < pids.size(); ++v) {
    cpu += CpuSeconds(pids[v]);
  }
  const int64_t stale_pass = stale.stale();
  const int64_t stale_reads = stale.reads();
  for (auto& v : verifiers) v.Terminate();

  // From the database.
  const int64_t attestations =
      CountQuery(pool, "SELECT count(*) FROM attestations") - attest0;
  const DbCounters db1 = ReadDbCounters(pool);
  const int64_t duplicates = CountQuery(
      pool,
      "SELECT count(*) FROM (SELECT agent_id, nonce FROM attestations "
      "GROUP BY 1, 2 HAVING count(*) > 1) d");
  const int64_t lost_acks = LostAcks(pool, fleet.acked());
  const int64_t lost_ima = LostImaPositions(pool, fleet.agents());
  double takeover = 0;
  int64_t taken = 0;
  if (killed) {
    const std::string ids = store::ToTextArray(held_by_killed);
    auto db = Must(pool.Acquire(), "db");
    store::PgRows r = Must(
        db->Query("SELECT count(*), extract(epoch FROM max(first) - "
                  "$2::timestamptz) FROM (SELECT agent_id, min(at) AS first "
                  "FROM attestations WHERE agent_id = ANY($1::text[]) AND "
                  "verifier <> 'fleet-v0' AND state = 'pass' AND at > "
                  "$2::timestamptz GROUP BY agent_id) t",
                  {ids, kill_ts}),
        "takeover");
    (void)absl::SimpleAtoi(Cell(r, 0, 0), &taken);
    (void)absl::SimpleAtod(Cell(r, 0, 1), &takeover);
    if (taken < static_cast<int64_t>(held_by_killed.size())) takeover = -1;
  }
  const std::vector<double> lags = fleet.TakeLags();
  // Once every agent has had two intervals to get its stream and first
  // verdicts (a large fleet's start-up backlog excluded).
  const std::vector<double> steady = fleet.LagsBetween(
      start +
          std::chrono::microseconds(absl::ToInt64Microseconds(2 * o.interval)),
      Clock::now());
  const int64_t per_stream =
      streams_at_rss_peak > 0 ? (rss_peak - rss_base) / streams_at_rss_peak : 0;
  const double att = static_cast<double>(std::max<int64_t>(attestations, 1));
  std::printf(
      "fleet: %d agents, %d verifiers, interval %s, %d s (setup %.1f s)\n",
      o.agents, o.verifiers, absl::FormatDuration(o.interval).c_str(),
      o.seconds, setup_s);
  std::printf(
      "  streams peak %d; verifier RSS %.1f MiB before, %.1f MiB at "
      "peak = %ld bytes per stream\n",
      fleet.streams_peak(), rss_base / 1048576.0, rss_peak / 1048576.0,
      static_cast<long>(per_stream));
  std::printf(
      "  %ld attestations stored, %lu verdicts received (%lu not PASS), "
      "%lu stream ends; verifier CPU %.2f s = %.3f ms per attestation\n",
      static_cast<long>(attestations),
      static_cast<unsigned long>(fleet.verdicts()),
      static_cast<unsigned long>(fleet.not_pass()),
      static_cast<unsigned long>(fleet.stream_ends()), cpu, 1000 * cpu / att);
  std::printf(
      "  verdict lag p50 %.1f ms, p99 %.1f ms, max %.1f ms; after two "
      "intervals (%zu verdicts) p50 %.1f ms, p99 %.1f ms\n",
      Percentile(lags, 0.5), Percentile(lags, 0.99), Percentile(lags, 1.0),
      steady.size(), Percentile(steady, 0.5), Percentile(steady, 0.99));
  std::printf(
      "  database: %.2f commits, %.2f rows written, %.0f WAL bytes, %.0f "
      "bytes of attestation tables per attestation\n",
      (db1.commits - db0.commits) / att, (db1.rows - db0.rows) / att,
      (db1.wal_bytes - db0.wal_bytes) / att,
      (db1.table_bytes - db0.table_bytes) / att);
  if (killed) {
    std::printf(
        "  kill: %zu agents held, %ld taken over with a PASS, "
        "takeover %.2f s\n",
        held_by_killed.size(), static_cast<long>(taken), takeover);
  }
  const uint64_t ima_entries = fleet.ima_entries();
  std::printf("  %lu IMA entries in the agents' logs\n",
              static_cast<unsigned long>(ima_entries));
  std::printf(
      "  duplicates %ld, lost %ld (+%ld IMA), stale_pass %ld in %ld "
      "reads\n",
      static_cast<long>(duplicates), static_cast<long>(lost_acks),
      static_cast<long>(lost_ima), static_cast<long>(stale_pass),
      static_cast<long>(stale_reads));
  bench::AbuseTally::Summary abuse_attest;
  bench::AbuseTally::Summary abuse_watch;
  if (abuse != nullptr) {
    abuse_attest = abuse->attest().Summarize();
    abuse_watch = abuse->watch().Summarize();
    std::printf(
        "  abuse: %ld Attest streams without a Hello: %ld refused, %ld "
        "closed at the Hello deadline, %ld other, longest %.1f s, %ld open "
        "after %.0f s; %ld Watch streams: %ld refused, longest refusal "
        "%.1f s, %ld open after %.0f s; verifier RSS %.1f -> %.1f MiB; "
        "real agents' verdict lag max %.1f ms over %ld verdicts%s\n",
        static_cast<long>(abuse_attest.opened),
        static_cast<long>(abuse_attest.refused),
        static_cast<long>(abuse_attest.deadline),
        static_cast<long>(abuse_attest.other), abuse_attest.max_seconds,
        static_cast<long>(abuse_figures.open_attest), o.abuse_seconds,
        static_cast<long>(abuse_watch.opened),
        static_cast<long>(abuse_watch.refused), abuse_watch.max_seconds,
        static_cast<long>(abuse_figures.open_watch), o.abuse_seconds,
        abuse_figures.rss_before / 1048576.0,
        abuse_figures.rss_peak / 1048576.0, abuse_figures.lag_max_ms,
        static_cast<long>(abuse_figures.window_verdicts),
        abuse_figures.stopped ? "" : " (some streams never ended)");
  }
  if (o.json) {
    std::printf(
        "{\"agents\": %d, \"verifiers\": %d, \"interval_s\": %.3f, "
        "\"seconds\": %d, \"streams_peak\": %d, "
        "\"verifier_rss_bytes_per_stream\": %ld, "
        "\"verifier_cpu_seconds\": %.3f, "
        "\"verifier_cpu_ms_per_attestation\": %.3f, "
        "\"verdict_lag_p50_ms\": %.1f, \"verdict_lag_p99_ms\": %.1f, "
        "\"verdict_lag_p99_steady_ms\": %.1f, "
        "\"takeover_seconds\": %.2f, \"taken_over\": %ld, "
        "\"held_by_killed\": %zu, \"duplicates\": %ld, \"lost\": %ld, "
        "\"stale_pass\": %ld, \"stale_reads\": %ld, \"attestations\": %ld, "
        "\"verdicts\": %lu, \"not_pass\": %lu, "
        "\"db_commits_per_attestation\": %.3f, "
        "\"db_rows_written_per_attestation\": %.3f, "
        "\"db_wal_bytes_per_attestation\": %.0f, "
        "\"db_table_bytes_per_attestation\": %.0f, ",
        o.agents, o.verifiers, absl::ToDoubleSeconds(o.interval), o.seconds,
        fleet.streams_peak(), static_cast<long>(per_stream), cpu,
        1000 * cpu / att, Percentile(lags, 0.5), Percentile(lags, 0.99),
        Percentile(steady, 0.99), takeover, static_cast<long>(taken),
        held_by_killed.size(), static_cast<long>(duplicates),
        static_cast<long>(lost_acks + lost_ima), static_cast<long>(stale_pass),
        static_cast<long>(stale_reads), static_cast<long>(attestations),
        static_cast<unsigned long>(fleet.verdicts()),
        static_cast<unsigned long>(fleet.not_pass()),
        (db1.commits - db0.commits) / att, (db1.rows - db0.rows) / att,
        (db1.wal_bytes - db0.wal_bytes) / att,
        (db1.table_bytes - db0.table_bytes) / att);
    std::printf(
        "\"ima_entries\": %lu, "
        "\"abuse_streams\": %ld, \"abuse_streams_refused\": %ld, "
        "\"abuse_streams_deadline\": %ld, \"abuse_streams_other\": %ld, "
        "\"abuse_streams_end_max_s\": %.2f, "
        "\"abuse_streams_open_after_window\": %ld, "
        "\"abuse_watch\": %ld, \"abuse_watch_refused\": %ld, "
        "\"abuse_watch_end_max_s\": %.2f, "
        "\"abuse_watch_open_after_window\": %ld, "
        "\"abuse_rss_growth_bytes\": %ld, "
        "\"abuse_verdict_lag_max_ms\": %.1f, "
        "\"abuse_window_verdicts\": %ld}\n",
        static_cast<unsigned long>(ima_entries),
        static_cast<long>(abuse_attest.opened),
        static_cast<long>(abuse_attest.refused),
        static_cast<long>(abuse_attest.deadline),
        static_cast<long>(abuse_attest.other), abuse_attest.max_seconds,
        static_cast<long>(abuse_figures.open_attest),
        static_cast<long>(abuse_watch.opened),
        static_cast<long>(abuse_watch.refused), abuse_watch.max_seconds,
        static_cast<long>(abuse_figures.open_watch),
        static_cast<long>(abuse == nullptr ? 0
                                           : abuse_figures.rss_peak -
                                                 abuse_figures.rss_before),
        abuse_figures.lag_max_ms,
        static_cast<long>(abuse_figures.window_verdicts));
  }
  // The invariants: any breach fails the run (the CTest smoke relies on it).
  const bool broken = duplicates > 0 || lost_acks + lost_ima > 0 ||
                      stale_pass > 0 || fleet.not_pass() > 0 ||
                      (killed && takeover < 0) || fleet.verdicts() == 0 ||
                      (abuse != nullptr && (abuse_figures.open_attest > 0 ||
                                            !abuse_figures.stopped));
  if (broken) std::fprintf(stderr, "fleet: an invariant was broken\n");
  std::fflush(stdout);
  std::cerr << "fleet: done\n";
  return broken ? 1 : 0;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) { return vouch::Main(argc, argv); }
