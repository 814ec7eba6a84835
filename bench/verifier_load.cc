// verifier_load: a load generator for one vouch-verifier process.
//
// It starts a throw-away PostgreSQL (the test harness), a real
// vouch-verifier (mTLS, group commit), registers and enrolls N software
// agents directly in the database — each with an in-process RSA-2048 key
// acting as its AIK (restricted signing key attributes, so the verifier
// admits it like a TPM's) — and opens one Attest stream per agent. Each
// agent answers every challenge at once with a freshly signed TPMS_ATTEST
// quote (PCR 10 and an empty IMA chunk against an empty runtime policy), so
// the verifier does the whole path per quote: decode, RSA signature and
// quote rules, IMA replay, fenced commit, verdict.
//
// Phase 1 (saturation) starts 2 s after every agent's stream is open (its
// first challenge received; stream set-up is not counted as quote work) and
// reports verified quotes per second of wall time and
// per CPU-second the verifier process used (utime + stime from /proc): the
// second is "per verifier core". Phase 2 offers half the phase-1 rate and
// reports the round trip evidence-sent -> verdict-received (p50/p99), an
// upper bound of the verifier's evidence-to-verdict time.
//
// Usage: verifier_load [--agents N] [--seconds S] [--verifier-cpu C]
//                      [--verifier-cpu-quota F] [--verifier-log FILE]
//                      [--transport-floor 1] [--json]
//                      [--verifier-arg ARG]... [--pg-cpu C]
//                      [--verifier-bin PATH] [--pg-setting NAME=VALUE]...
// --verifier-cpu pins the verifier and PostgreSQL to CPU C and the agents to
// the others. --verifier-cpu-quota caps the verifier at F CPUs (a CFS quota,
// cgroup v1 or v2; needs root) during phase 1, so that on a small machine
// the verifier, not the agents' RSA signing, is what saturates: the
// per-CPU-second figure is then the verifier's efficiency when saturated.
// Phase 2 runs without the cap. --transport-floor runs transport_floor (an
// Attestation server that checks and stores nothing) in place of
// vouch-verifier: the same load then measures gRPC + mTLS alone.
// --verifier-bin runs another vouch-verifier build (to compare two
// versions under the same load). --verifier-arg passes ARG on to
// vouch-verifier (repeatable; for
// experiments such as --verifier-arg --verifier-commit-threads=1).
// --json prints one JSON object of the figures last (quotes_per_cpu_second,
// context_switches_per_quote, verdicts_per_commit at saturation,
// p99_ms_worst_window at half load, ...), so runs can be compared.
// --pg-setting sets a server setting of the throw-away PostgreSQL
// (ALTER SYSTEM, then a reload; repeatable), for experiments such as
// --pg-setting autovacuum=off.
// VOUCH_LOAD_PRELOAD, if set, becomes the
// verifier's LD_PRELOAD (to try another allocator).
#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <sched.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/principal.h"
#include "core/tpm/tpm_wire.h"
#include "harness/pg_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/soft_aik.h"
#include "harness/temp_dir.h"
#include "load_util.h"
#include "sdk/ca.h"
#include "sdk/channel.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch {
namespace {

using Clock = std::chrono::steady_clock;

using bench::CpuSeconds;
using bench::Die;
using bench::Must;

using testing::SoftAik;

// TPM2_Quote as a TPM would answer it for PCR 10 (SHA-256) = all zero.
std::pair<std::string, std::string> SignQuote(const SoftAik& aik,
                                              const std::string& nonce,
                                              uint64_t clock) {
  TPML_PCR_SELECTION sel{};
  (void)core::tpm::SelectPcr(sel, TPM2_ALG_SHA256, 10);
  core::tpm::PcrValues values;
  values[TPM2_ALG_SHA256][10] = Bytes(32, 0);
  return aik.Quote(sel, values, nonce, core::tpm::ClockInfo{clock, 1, 0, true});
}

// Each thread name's share of `cpu` between two ThreadCpuSeconds readings,
// largest first, as JSON members: "vouch-commit": 0.123, ...
std::string ThreadShares(const std::map<std::string, double>& before,
                         const std::map<std::string, double>& after,
                         double cpu) {
  std::vector<std::pair<double, std::string>> shares;
  for (const auto& [name, seconds] : after) {
    auto it = before.find(name);
    const double used = seconds - (it == before.end() ? 0 : it->second);
    if (used > 0 && cpu > 0) shares.emplace_back(used / cpu, name);
  }
  std::sort(shares.rbegin(), shares.rend());
  std::vector<std::string> out;
  for (const auto& [share, name] : shares) {
    out.push_back(absl::StrFormat("\"%s\": %.4f", absl::CEscape(name), share));
  }
  return absl::StrJoin(out, ", ");
}

// Context switches (voluntary and not) of every thread of a process so far.
uint64_t ContextSwitches(pid_t pid) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream f(task.path() / "status");
    std::string line;
    while (std::getline(f, line)) {
      if (!absl::StartsWith(line, "voluntary_ctxt_switches:") &&
          !absl::StartsWith(line, "nonvoluntary_ctxt_switches:")) {
        continue;
      }
      uint64_t n = 0;
      if (absl::SimpleAtoi(
              absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)),
              &n)) {
        total += n;
      }
    }
  }
  return total;
}

// The verifier's "attestation latency" log lines (one per sweep interval)
// between two offsets of its log.
struct LatencyLog {
  double p50_ms = 0;        // Median of the windows' p50.
  double worst_p99_ms = 0;  // Worst 1 s window.
  double worst_max_ms = 0;
  double worst_commit_p99_ms = 0;
  double verdicts_per_commit = 0;
};

LatencyLog ReadLatencyLog(absl::string_view log) {
  int64_t worst_p99 = 0, worst_max = 0, worst_commit_p99 = 0;
  int64_t batches = 0, batched = 0;
  std::vector<int64_t> p50s;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, "attestation latency")) continue;
    auto field = [&](absl::string_view key) -> int64_t {
      const size_t at = line.find(key);
      if (at == absl::string_view::npos) return 0;
      int64_t v = 0;
      absl::string_view rest = line.substr(at + key.size());
      (void)absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &v);
      return v;
    };
    p50s.push_back(field(" p50_us="));
    worst_p99 = std::max(worst_p99, field(" p99_us="));
    worst_max = std::max(worst_max, field(" max_us="));
    worst_commit_p99 = std::max(worst_commit_p99, field("commit_p99_us="));
    batches += field(" batches=");
    batched += field("batched_verdicts=");
  }
  std::sort(p50s.begin(), p50s.end());
  LatencyLog out;
  out.p50_ms = p50s.empty() ? 0.0 : p50s[p50s.size() / 2] / 1000.0;
  out.worst_p99_ms = worst_p99 / 1000.0;
  out.worst_max_ms = worst_max / 1000.0;
  out.worst_commit_p99_ms = worst_commit_p99 / 1000.0;
  out.verdicts_per_commit =
      batches > 0 ? static_cast<double>(batched) / batches : 0.0;
  return out;
}

// Pins a process and its current children (PostgreSQL's postmaster and
// its auxiliary processes; later backends inherit it) to one CPU.
void PinProcessTree(pid_t root, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  std::vector<pid_t> pids = bench::ChildPids(root);
  pids.push_back(root);
  for (pid_t pid : pids) sched_setaffinity(pid, sizeof set, &set);
}

// A CFS CPU quota on one process (all its threads), cgroup v1 or v2.
class CpuQuota {
 public:
  static std::unique_ptr<CpuQuota> Apply(pid_t pid, double cpus) {
    const std::string name = absl::StrCat("vouch-verifier-load-", getpid());
    constexpr int kPeriodUs = 10000;
    const int quota_us = std::max(1000, static_cast<int>(cpus * kPeriodUs));
    auto q = std::unique_ptr<CpuQuota>(new CpuQuota());
    const std::string v1 = "/sys/fs/cgroup/cpu/" + name;
    const std::string v2 = "/sys/fs/cgroup/" + name;
    if (std::filesystem::exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") &&
        std::filesystem::create_directory(v1)) {
      q->dir_ = v1;
      q->limit_file_ = v1 + "/cpu.cfs_quota_us";
      q->unlimited_ = "-1";
      if (!Write(v1 + "/cpu.cfs_period_us", absl::StrCat(kPeriodUs)) ||
          !Write(q->limit_file_, absl::StrCat(quota_us))) {
        return nullptr;
      }
    } else if (std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers") &&
               std::filesystem::create_directory(v2)) {
      q->dir_ = v2;
      q->limit_file_ = v2 + "/cpu.max";
      q->unlimited_ = absl::StrCat("max ", kPeriodUs);
      if (!Write(q->limit_file_, absl::StrCat(quota_us, " ", kPeriodUs))) {
        return nullptr;
      }
    } else {
      return nullptr;
    }
    if (!Write(q->dir_ + "/cgroup.procs", absl::StrCat(pid))) return nullptr;
    return q;
  }
  void Lift() { (void)Write(limit_file_, unlimited_); }
  ~CpuQuota() {
    // The group can be removed once the verifier has exited.
    for (int i = 0; i < 50 && ::rmdir(dir_.c_str()) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  CpuQuota() = default;
  static bool Write(const std::string& path, const std::string& value) {
    std::ofstream f(path);
    f << value;
    f.flush();
    return static_cast<bool>(f);
  }
  std::string dir_;
  std::string limit_file_;
  std::string unlimited_;
};

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> verdicts{0};
  std::atomic<uint64_t> failures{0};
  // Phase 2: at most this many pushes per second per agent (0: no limit).
  std::atomic<double> per_agent_rate{0};
  std::mutex mu;
  std::vector<double> rtt_ms;
  std::atomic<bool> record{false};
  // Agents whose stream is open (admitted, taken over: first challenge in).
  std::atomic<int> streams_open{0};
};

void RunAgent(const std::string& address, const std::string& agent_dir,
              const std::string& agent_id, const SoftAik& aik, Shared* shared) {
  sdk::ClientOptions o;
  o.server = address;
  o.ca_file = agent_dir + "/ca.pem";
  o.cert_file = agent_dir + "/agent.pem";
  o.key_file = agent_dir + "/agent.key";
  auto stub = v1::Attestation::NewStub(Must(sdk::CreateChannel(o), "channel"));
  grpc::ClientContext ctx;
  auto stream = stub->Attest(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_id(agent_id);
  hello.mutable_hello()->set_aik_name(std::string(AsString(aik.name())));
  hello.mutable_hello()->mutable_capabilities()->add_pcr_banks(
      v1::HASH_ALGORITHM_SHA256);
  if (!stream->Write(hello)) Die("hello");
  v1::VerifierMessage m;
  if (!stream->Read(&m) || !m.has_challenge()) Die("no challenge");
  shared->streams_open++;
  v1::Challenge c = m.challenge();
  uint64_t clock = 1000;
  Clock::time_point next = Clock::now();
  v1::AgentMessage ev;
  v1::PcrBankValues* bank = ev.mutable_evidence()->add_pcr_values();
  bank->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  v1::PcrValue* pcr10 = bank->add_values();
  pcr10->set_index(10);
  pcr10->set_digest(std::string(32, '\0'));
  v1::ImaLogChunk* chunk = ev.mutable_evidence()->mutable_ima_entries();
  chunk->set_format(v1::IMA_LOG_FORMAT_ASCII);
  while (!shared->stop) {
    const double rate = shared->per_agent_rate;
    if (rate > 0) {
      next += std::chrono::microseconds(static_cast<int64_t>(1e6 / rate));
      std::this_thread::sleep_until(next);
    } else {
      next = Clock::now();
    }
    auto [attest, sig] = SignQuote(aik, c.nonce(), clock += 10);
    ev.mutable_evidence()->set_quote(attest);
    ev.mutable_evidence()->set_signature(sig);
    chunk->set_first_index(c.ima_from());
    const auto sent = Clock::now();
    if (!stream->Write(ev) || !stream->Read(&m)) break;
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
    if (m.has_error()) Die(absl::StrCat("stream error: ", m.error().message()));
    if (!m.has_verdict()) {
      if (m.has_challenge()) c = m.challenge();
      continue;
    }
    if (shared->record) {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->rtt_ms.push_back(ms);
    }
    shared->verdicts++;
    if (m.verdict().state() != v1::ATTESTATION_STATE_PASS) shared->failures++;
    c = m.verdict().next_challenge();
  }
  ctx.TryCancel();
  (void)stream->Finish();
}

// Each NAME=VALUE by ALTER SYSTEM (its own statement: not in a transaction
// block; PostgreSQL refuses an unknown name or a bad value), then one
// reload. NAME must be a plain identifier; VALUE is quoted. A setting that
// takes effect only at a restart is refused before it is written, rather
// than ignored.
void SetPgSettings(const testing::PgCluster& pg,
                   const std::vector<std::string>& settings) {
  for (const std::string& s : settings) {
    const size_t eq = s.find('=');
    const std::string name = s.substr(0, eq);
    if (eq == std::string::npos || name.empty() ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789.") !=
            std::string::npos) {
      Die(absl::StrCat("--pg-setting wants NAME=VALUE: ", s));
    }
    std::string value;
    for (char c : s.substr(eq + 1)) {
      value.push_back(c);
      if (c == '\'') value.push_back(c);
    }
    const std::string context =
        Must(pg.Psql(absl::StrCat(
                 "SELECT context FROM pg_settings WHERE name = '", name, "'")),
             "--pg-setting");
    if (absl::StrContains(context, "postmaster")) {
      Die(absl::StrCat("--pg-setting ", name, " needs a server restart"));
    }
    Must(pg.Psql(absl::StrCat("ALTER SYSTEM SET ", name, " = '", value, "'")),
         "--pg-setting");
    std::cerr << "verifier_load: PostgreSQL " << s << "\n";
  }
  if (!settings.empty()) {
    Must(pg.Psql("SELECT pg_reload_conf()"), "reload");
  }
}

int Main(int argc, char** argv) {
  int agents = 64;
  int seconds = 10;
  int verifier_cpu = -1;
  int pg_cpu = -1;
  std::string other_bin;
  bool sched_batch = false;
  double quota = 0;
  std::string log_path;
  bool floor = false;
  bool json = false;
  std::vector<std::string> extra_verifier_args;
  std::vector<std::string> pg_settings;
  std::vector<char*> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--json") {
      json = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--agents") agents = std::atoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (flag == "--verifier-cpu") verifier_cpu = std::atoi(argv[i + 1]);
    if (flag == "--verifier-cpu-quota") quota = std::atof(argv[i + 1]);
    if (flag == "--verifier-log") log_path = argv[i + 1];
    if (flag == "--transport-floor") floor = std::atoi(argv[i + 1]) != 0;
    if (flag == "--verifier-arg") extra_verifier_args.push_back(argv[i + 1]);
    if (flag == "--pg-setting") pg_settings.push_back(argv[i + 1]);
    if (flag == "--pg-cpu") pg_cpu = std::atoi(argv[i + 1]);
    if (flag == "--verifier-bin") other_bin = argv[i + 1];
    if (flag == "--sched-batch") sched_batch = std::atoi(argv[i + 1]) != 0;
  }
  const std::string verifier_bin = floor ? VOUCH_TRANSPORT_FLOOR_BIN
                                   : other_bin.empty() ? VOUCH_VERIFIER_BIN
                                                       : other_bin;
  testing::TempDir dir = Must(testing::TempDir::Create("load"), "temp dir");
  std::unique_ptr<testing::PgCluster> pg =
      Must(testing::PgCluster::Start(), "PostgreSQL");
  SetPgSettings(*pg, pg_settings);
  if (verifier_cpu >= 0) {
    // PostgreSQL does the verifier's commits (on another host in a real
    // pool). By default it shares the verifier's CPU, off the agents' CPU
    // where RSA signing would delay it; --pg-cpu puts it elsewhere.
    PinProcessTree(Must(pg->postmaster_pid(), "postmaster pid"),
                   pg_cpu >= 0 ? pg_cpu : verifier_cpu);
  }
  const std::string ca = dir.Join("ca");
  sdk::CaInitOptions init;
  init.dir = ca;
  if (!sdk::InitCa(init).ok()) Die("ca init");
  sdk::IssueOptions server;
  server.ca_dir = ca;
  server.kind = sdk::CertKind::kServer;
  server.name = "localhost";
  server.sans = {"127.0.0.1"};
  if (!sdk::IssueCertificate(server).ok()) Die("server cert");

  store::PgPool pool(pg->conninfo(), 2);
  if (!store::PrepareDatabase(pool, absl::Seconds(30)).ok()) Die("migrate");
  store::PgVerifierStore store(&pool, 3);
  Must(store.AddPolicy(bench::EmptyRuntimePolicy()), "policy");
  std::vector<SoftAik> aiks;
  std::vector<std::string> ids;
  std::cerr << "verifier_load: registering " << agents << " agents\n";
  for (int i = 0; i < agents; ++i) {
    aiks.push_back(SoftAik::Create());
    ids.push_back(absl::StrCat("load-agent-", i));
    auto db = Must(pool.Acquire(), "db");
    bench::MustOk(
        bench::RegisterAgent(*db, ids[i], AsString(aiks[i].tpm2b_public()),
                             AsString(aiks[i].name())),
        "register");
    store::Enrollment e;
    e.tenant = "default";
    e.agent_id = ids[i];
    e.runtime_policy = "empty";
    e.interval = absl::Seconds(60);
    e.hash_alg = 11;
    Must(store.Enroll(e), "enroll");
    sdk::IssueOptions a;
    a.ca_dir = ca;
    a.kind = sdk::CertKind::kAgent;
    a.name = ids[i];
    if (!sdk::IssueCertificate(a).ok()) Die("agent cert");
  }
  const int port = Must(testing::PickFreePort(), "port");
  const std::string address = absl::StrCat("127.0.0.1:", port);
  testing::ProcessOptions popts;
  if (log_path.empty()) log_path = dir.Join("verifier.log");
  popts.stdout_path = popts.stderr_path = log_path;
  popts.env = {{"VOUCH_DATABASE_URL", pg->conninfo()}};
  if (const char* p = std::getenv("VOUCH_LOAD_PRELOAD"))
    popts.env.push_back({"LD_PRELOAD", p});
  std::vector<std::string> prefix;
  if (verifier_cpu >= 0) {
    // The verifier alone on one CPU, the agents (and PostgreSQL) elsewhere,
    // so the agents' RSA signing does not preempt it.
    prefix = {"taskset", "-c", absl::StrCat(verifier_cpu)};
    cpu_set_t others;
    CPU_ZERO(&others);
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < n; ++c) {
      if (c != verifier_cpu) CPU_SET(c, &others);
    }
    if (n > 1) sched_setaffinity(0, sizeof others, &others);
  }
  std::vector<std::string> command = {verifier_bin,
                                      "--verifier-listen",
                                      address,
                                      "--verifier-port-file",
                                      dir.Join("port"),
                                      "--verifier-min-interval",
                                      "0s",
                                      "--verifier-workers",
                                      "2",
                                      "--tls-ca-file",
                                      ca + "/ca.pem",
                                      "--tls-cert-file",
                                      ca + "/servers/localhost/server.pem",
                                      "--tls-key-file",
                                      ca + "/servers/localhost/server.key",
                                      "--log-level",
                                      "info",
                                      "--verifier-sweep-interval",
                                      "1s"};
  if (!floor) {
    command.insert(command.end(), extra_verifier_args.begin(),
                   extra_verifier_args.end());
  }
  if (sched_batch) prefix.insert(prefix.begin(), {"chrt", "-b", "0"});
  command.insert(command.begin(), prefix.begin(), prefix.end());
  testing::ChildProcess verifier =
      Must(testing::ChildProcess::Start(command, popts), "start verifier");
  for (int i = 0; i < 300; ++i) {
    if (!ReadFileUpTo(dir.Join("port"), 64).value_or("").empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::unique_ptr<CpuQuota> cap;
  if (quota > 0) {
    cap = CpuQuota::Apply(verifier.pid(), quota);
    if (cap == nullptr) Die("cannot set a CPU quota (root and cgroups needed)");
  }
  Shared shared;
  std::vector<std::thread> threads;
  for (int i = 0; i < agents; ++i) {
    threads.emplace_back(RunAgent, address, ca + "/agents/" + ids[i], ids[i],
                         std::cref(aiks[i]), &shared);
  }
  // Warm up until every stream is open (under the quota, opening 64
  // streams — TLS handshakes, admission, take-over — takes seconds of wall
  // time; phase 1 measures quotes, not stream set-up), then 2 s more; then
  // phase 1: saturation. The marker on stderr lets a profiler attach to
  // phase 1 alone.
  const auto warm = Clock::now();
  while (shared.streams_open < agents &&
         Clock::now() - warm < std::chrono::seconds(120)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::fprintf(stderr,
               "verifier_load: phase 1 starts (%d streams open after %.1f s)\n",
               shared.streams_open.load(),
               std::chrono::duration<double>(Clock::now() - warm).count());
  uint64_t v0 = shared.verdicts;
  double c0 = CpuSeconds(verifier.pid());
  const uint64_t cs0 = ContextSwitches(verifier.pid());
  const std::map<std::string, double> threads0 =
      bench::ThreadCpuSeconds(verifier.pid());
  const size_t log_phase1 =
      ReadFileUpTo(log_path, 64 << 20).value_or("").size();
  const pid_t postmaster = Must(pg->postmaster_pid(), "postmaster pid");
  const double pg0 = bench::ProcessTreeCpuSeconds(postmaster);
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const uint64_t n1 = shared.verdicts - v0;
  const double cpu = CpuSeconds(verifier.pid()) - c0;
  // PostgreSQL's CPU per verified quote (the verifier's commits; the
  // transport floor commits nothing).
  const double pg_us_per_quote =
      1e6 * (bench::ProcessTreeCpuSeconds(postmaster) - pg0) /
      static_cast<double>(std::max<uint64_t>(n1, 1));
  const std::string thread_shares =
      ThreadShares(threads0, bench::ThreadCpuSeconds(verifier.pid()), cpu);
  const double cs_per_quote =
      static_cast<double>(ContextSwitches(verifier.pid()) - cs0) /
      static_cast<double>(std::max<uint64_t>(n1, 1));
  const std::string log1 = ReadFileUpTo(log_path, 64 << 20).value_or("");
  const LatencyLog saturated = ReadLatencyLog(
      absl::string_view(log1).substr(std::min(log_phase1, log1.size())));
  const double rate = static_cast<double>(n1) / wall;
  if (quota > 0) {
    std::printf(
        "phase 1 (saturation, %d agents, %d s, verifier capped at "
        "%.2f CPU):\n",
        agents, seconds, quota);
  } else {
    std::printf("phase 1 (saturation, %d agents, %d s):\n", agents, seconds);
  }
  std::printf("  verified quotes: %lu in %.1f s = %.0f/s (wall)\n",
              static_cast<unsigned long>(n1), wall, rate);
  std::printf(
      "  verifier CPU: %.2f s = %.0f verified quotes per CPU-second "
      "(per core); %.2f context switches per quote\n",
      cpu, static_cast<double>(n1) / cpu, cs_per_quote);
  std::printf("  verifier CPU by thread: %s\n", thread_shares.c_str());
  std::printf("  PostgreSQL CPU: %.1f us per verified quote\n",
              pg_us_per_quote);
  // Phase 2: half that rate, round-trip latency, without the cap.
  if (cap) cap->Lift();
  shared.per_agent_rate = rate / 2 / agents;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  shared.record = true;
  const size_t log_from = ReadFileUpTo(log_path, 64 << 20).value_or("").size();
  v0 = shared.verdicts;
  c0 = CpuSeconds(verifier.pid());
  t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  shared.record = false;
  const std::string log = ReadFileUpTo(log_path, 64 << 20).value_or("");
  const double wall2 = std::chrono::duration<double>(Clock::now() - t0).count();
  const uint64_t n2 = shared.verdicts - v0;
  const double cpu2 = CpuSeconds(verifier.pid()) - c0;
  std::vector<double> rtt;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    rtt = shared.rtt_ms;
  }
  std::sort(rtt.begin(), rtt.end());
  auto pct = [&](double p) {
    return rtt.empty() ? 0.0
                       : rtt[std::min(rtt.size() - 1,
                                      static_cast<size_t>(p * rtt.size()))];
  };
  std::printf("phase 2 (half load, %.0f/s offered):\n", rate / 2);
  std::printf("  verified quotes: %.0f/s, verifier CPU %.0f%%\n",
              static_cast<double>(n2) / wall2, 100 * cpu2 / wall2);
  std::printf(
      "  evidence sent -> verdict received: p50 %.2f ms, p99 %.2f ms, "
      "max %.2f ms (%zu samples)\n",
      pct(0.50), pct(0.99), rtt.empty() ? 0.0 : rtt.back(), rtt.size());
  const LatencyLog half = floor ? LatencyLog{}
                                : ReadLatencyLog(absl::string_view(log).substr(
                                      std::min(log_from, log.size())));
  if (floor) {
    // transport_floor keeps no latency log: only the round trip applies.
    std::printf("  (transport floor: no verifier-side latency)\n");
  } else {
    std::printf(
        "  verifier evidence received -> verdict sent: p50 %.2f ms, "
        "worst 1 s window p99 %.2f ms, max %.2f ms\n",
        half.p50_ms, half.worst_p99_ms, half.worst_max_ms);
    std::printf(
        "  of which committing: worst 1 s window p99 %.2f ms; %.2f verdicts "
        "per group commit (%.2f at saturation)\n",
        half.worst_commit_p99_ms, half.verdicts_per_commit,
        saturated.verdicts_per_commit);
  }
  std::printf("  verdicts that were not PASS: %lu\n",
              static_cast<unsigned long>(shared.failures.load()));
  shared.stop = true;
  verifier.Terminate();
  for (std::thread& t : threads) t.join();
  if (json) {
    // One object, last, so runs can be compared by machine.
    std::printf(
        "{\"mode\": \"%s\", \"agents\": %d, \"seconds\": %d, "
        "\"cpu_quota\": %.3f, \"quotes_per_second_wall\": %.1f, "
        "\"quotes_per_cpu_second\": %.1f, "
        "\"context_switches_per_quote\": %.3f, "
        "\"verdicts_per_commit\": %.2f, "
        "\"verdicts_per_commit_half_load\": %.2f, "
        "\"p50_ms\": %.3f, \"p99_ms_worst_window\": %.3f, "
        "\"commit_p99_ms_worst_window\": %.3f, "
        "\"rtt_p50_ms\": %.3f, \"rtt_p99_ms\": %.3f, "
        "\"failures\": %lu, \"pg_cpu_us_per_quote\": %.1f, "
        "\"thread_cpu_share\": {%s}}\n",
        floor ? "transport_floor" : "verifier", agents, seconds, quota, rate,
        static_cast<double>(n1) / cpu, cs_per_quote,
        saturated.verdicts_per_commit, half.verdicts_per_commit, half.p50_ms,
        half.worst_p99_ms, half.worst_commit_p99_ms, pct(0.50), pct(0.99),
        static_cast<unsigned long>(shared.failures.load()), pg_us_per_quote,
        thread_shares.c_str());
  }
  return shared.failures > 0 ? 1 : 0;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) { return vouch::Main(argc, argv); }
