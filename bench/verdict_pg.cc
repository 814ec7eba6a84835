// PostgreSQL's cost of a verdict (a program, not Google Benchmark): a
// throw-away cluster, the real schema (store::PrepareDatabase), N
// registered, enrolled and taken-over agents, then verdicts committed
// through store::PgVerifierStore::CommitVerdicts in batches, as the
// verifier's group commit sends them: the same statement, the same
// parameters (a passing quote with kept evidence, the AIK already kept, no
// new IMA entries unless --ima-entries), the epoch fence and the nonce rule.
// It reports the database's CPU per verdict (the postmaster and all its
// processes, from /proc) and this process's (libpq and building the
// statements), with the batch's round-trip time. Every verdict must apply
// (not fenced, no error), or the run fails.
//
//   build/release/bench/verdict_pg --agents 64 --verdicts 40000 --batch 16
//       [--ima-entries 2] [--translog 1] [--sql STATEMENT]... [--json]
//
// --sql runs a statement after the schema is in place (repeatable), to
// measure a schema change before writing its migration.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "harness/pg_cluster.h"
#include "load_util.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"

namespace vouch {
namespace {

using bench::Die;
using bench::Must;
using bench::MustOk;
using Clock = std::chrono::steady_clock;

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// `n` bytes that differ for each `i` (ids, nonces, digests).
std::string Bytes(uint64_t i, size_t n, char salt) {
  std::string s(n, salt);
  for (size_t b = 0; b < 8 && b < n; ++b) {
    s[b] = static_cast<char>(i >> (8 * b));
  }
  return s;
}

struct Agent {
  std::string id;
  int64_t epoch = 0;
  std::string aik_name;
  uint64_t ima_next = 0;
};

int Run(int argc, char** argv) {
  int agents = 64;
  int verdicts = 40000;
  int batch = 16;
  int ima_entries = 0;
  bool translog = false;
  bool json = false;
  std::vector<std::string> setup_sql;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) Die("usage: see the header of bench/verdict_pg.cc");
    if (flag == "--sql") {
      setup_sql.push_back(argv[++i]);
      continue;
    }
    const int value = std::atoi(argv[++i]);
    if (flag == "--agents") {
      agents = value;
    } else if (flag == "--verdicts") {
      verdicts = value;
    } else if (flag == "--batch") {
      batch = value;
    } else if (flag == "--ima-entries") {
      ima_entries = value;
    } else if (flag == "--translog") {
      translog = value != 0;
    } else {
      Die("unknown flag " + flag);
    }
  }
  if (agents < 1 || verdicts < 1 || batch < 1 || batch > agents ||
      ima_entries < 0) {
    Die("need agents >= batch >= 1, verdicts >= 1, ima-entries >= 0");
  }

  auto pg = Must(testing::PgCluster::Start(), "PostgreSQL");
  store::PgPool pool(pg->conninfo(), 2);
  MustOk(store::PrepareDatabase(pool, absl::Seconds(60)), "schema");
  store::PgVerifierStore store(&pool, 2);
  store.SetTranslog(translog);
  MustOk(store.AddPolicy(bench::EmptyRuntimePolicy()).status(), "policy");
  for (const std::string& sql : setup_sql) {
    store::PgPool::Lease db = Must(pool.Acquire(), "connection");
    MustOk(db->Exec(sql, {}).status(), sql);
  }

  std::vector<Agent> fleet(agents);
  {
    store::PgPool::Lease db = Must(pool.Acquire(), "connection");
    for (int i = 0; i < agents; ++i) {
      Agent& a = fleet[i];
      a.id = absl::StrCat("bench-agent-", i);
      MustOk(bench::RegisterAgent(*db, a.id, "\x01", Bytes(i, 34, 'n')),
             "registration");
      store::Enrollment e;
      e.tenant = "default";
      e.agent_id = a.id;
      e.runtime_policy = bench::EmptyRuntimePolicy().name;
      e.interval = absl::Seconds(1);
      MustOk(store.Enroll(e).status(), "enroll");
      store::Takeover t = Must(
          store.TakeOver("default", a.id, "bench", "bench", absl::Minutes(5)),
          "takeover");
      a.epoch = t.agent.epoch;
      a.aik_name = t.aik_name;
    }
  }

  // What a kept record carries (sizes as a swtpm quote of PCR 10 gives).
  const std::string quote(420, 'q');
  const std::string aik_public(280, 'p');
  std::string ima_line(96, 'i');
  ima_line.back() = '\n';

  uint64_t serial = 0;
  auto make = [&](Agent& a) {
    store::VerdictCommit c;
    c.tenant = "default";
    c.agent_id = a.id;
    c.owner = "bench";
    c.epoch = a.epoch;
    c.aik_name = a.aik_name;
    c.attestation_id = absl::StrCat("bench-", serial);
    c.nonce = Bytes(serial, 32, 'N');
    c.passed = true;
    c.evidence_sha256 = Bytes(serial, 32, 'E');
    ++serial;
    c.lease = absl::Minutes(5);
    c.reset_count = 1;
    c.clock = serial;
    c.ima_from = a.ima_next;
    a.ima_next += ima_entries;
    c.ima_next_entry = a.ima_next;
    c.ima_entries_received = ima_entries;
    c.pcr10_sha1 = std::string(20, 'a');
    c.pcr10_sha256 = std::string(32, 'b');
    c.runtime_policy_version = 1;
    store::KeptEvidence k;
    k.quote = quote;
    k.aik_public = aik_public;
    if (ima_entries > 0) {
      k.ima_first = *c.ima_from;
      k.ima_format = 1;
      k.ima_template_hash_alg = 2;
      for (int e = 0; e < ima_entries; ++e) k.ima_data += ima_line;
    }
    k.runtime_policy = bench::EmptyRuntimePolicy().name;
    k.runtime_policy_version = 1;
    c.kept = std::move(k);
    return c;
  };

  auto commit = [&](int n, size_t& next_agent, std::vector<double>* rtts) {
    std::vector<store::VerdictCommit> commits;
    commits.reserve(n);
    for (int i = 0; i < n; ++i) {
      commits.push_back(make(fleet[next_agent]));
      next_agent = (next_agent + 1) % fleet.size();
    }
    std::vector<const store::VerdictCommit*> ptrs;
    for (const store::VerdictCommit& c : commits) ptrs.push_back(&c);
    const Clock::time_point t0 = Clock::now();
    std::vector<absl::StatusOr<store::VerdictApplied>> r =
        store.CommitVerdicts(ptrs);
    if (rtts != nullptr) {
      rtts->push_back(1e3 * bench::SecondsSince(t0));
    }
    for (const absl::StatusOr<store::VerdictApplied>& v : r) {
      MustOk(v.status(), "verdict");
      if (v->fenced) Die("a verdict was fenced");
    }
  };

  // Warm up: every agent's AIK kept, plans cached, pages in memory.
  size_t next_agent = 0;
  for (int i = 0; i < std::max(agents, 5 * batch); i += batch) {
    commit(batch, next_agent, nullptr);
  }

  const pid_t postmaster = Must(pg->postmaster_pid(), "postmaster pid");
  const double pg0 = bench::ProcessTreeCpuSeconds(postmaster);
  const double self0 = SelfCpuSeconds();
  const Clock::time_point t0 = Clock::now();
  std::vector<double> rtts;
  int done = 0;
  while (done < verdicts) {
    const int n = std::min(batch, verdicts - done);
    commit(n, next_agent, &rtts);
    done += n;
  }
  const double wall = bench::SecondsSince(t0);
  const double pg_us =
      1e6 * (bench::ProcessTreeCpuSeconds(postmaster) - pg0) / done;
  const double self_us = 1e6 * (SelfCpuSeconds() - self0) / done;

  std::printf(
      "%d verdicts in batches of %d (%d agents, %d IMA entries each, log "
      "%s): %.0f verdicts/s\n",
      done, batch, agents, ima_entries, translog ? "on" : "off", done / wall);
  std::printf("  PostgreSQL CPU: %.1f us per verdict\n", pg_us);
  std::printf("  this process (statements, libpq): %.1f us per verdict\n",
              self_us);
  std::printf("  batch round trip: p50 %.2f ms, p99 %.2f ms\n",
              bench::Percentile(rtts, 0.5), bench::Percentile(rtts, 0.99));
  if (json) {
    std::printf(
        "{\"agents\": %d, \"verdicts\": %d, \"batch\": %d, \"ima_entries\": "
        "%d, \"translog\": %s, \"verdicts_per_second\": %.1f, "
        "\"pg_cpu_us_per_verdict\": %.1f, \"client_cpu_us_per_verdict\": "
        "%.1f, \"batch_p50_ms\": %.3f, \"batch_p99_ms\": %.3f}\n",
        agents, done, batch, ima_entries, translog ? "true" : "false",
        done / wall, pg_us, self_us, bench::Percentile(rtts, 0.5),
        bench::Percentile(rtts, 0.99));
  }
  return 0;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) { return vouch::Run(argc, argv); }
