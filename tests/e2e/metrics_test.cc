// Observability end to end: a real Prometheus server (Debian's prometheus,
// on 127.0.0.1, a free port, a temp dir, a 1 s scrape interval) scrapes a
// real vouch-verifier and vouch-registrar on PostgreSQL while a real
// vouch-agent on swtpm attests; the test asks Prometheus' HTTP API for the
// verdict series, tampers with a file, and sees the failure series rise.
// It also evaluates every query of the Grafana dashboard against that
// Prometheus, and probes /healthz and /readyz and the gRPC health service.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "common/file.h"
#include "e2e/e2e_util.h"
#include "sdk/channel.h"

namespace vouch {
namespace {

// The port a server logged as `msg="metrics serving" ... port=N`; 0 until
// it has.
int MetricsPort(const std::string& log) {
  for (absl::string_view line : absl::StrSplit(Slurp(log), '\n')) {
    const size_t msg = line.find("msg=\"metrics serving\"");
    if (msg == absl::string_view::npos) continue;
    const size_t at = line.find(" port=", msg);
    if (at == absl::string_view::npos) continue;
    absl::string_view digits = line.substr(at + 6);
    digits = digits.substr(0, digits.find_first_not_of("0123456789"));
    int port = 0;
    if (!digits.empty() && absl::SimpleAtoi(digits, &port)) return port;
  }
  return 0;
}

// curl's output for `url` (empty when it failed), with the HTTP status.
testing::RunResult Curl(const std::string& url) {
  return testing::RunCapture(
      {"curl", "-s", "-g", "-o", "-", "-w", "\n%{http_code}", url});
}

int HttpStatus(const std::string& url) {
  testing::RunResult r = Curl(url);
  const size_t nl = r.out.rfind('\n');
  int code = 0;
  if (nl == std::string::npos ||
      !absl::SimpleAtoi(r.out.substr(nl + 1), &code)) {
    return 0;
  }
  return code;
}

// Prometheus instant query: the summed value, or -1 when there is none.
double Query(int prom_port, const std::string& promql,
             nlohmann::json* raw = nullptr) {
  testing::RunResult r = testing::RunCapture(
      {"curl", "-s", "-G",
       absl::StrCat("http://127.0.0.1:", prom_port, "/api/v1/query"),
       "--data-urlencode", absl::StrCat("query=", promql)});
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  if (raw != nullptr) *raw = j;
  if (!j.is_object() || j.value("status", "") != "success") return -1;
  const nlohmann::json& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return -1;
  double sum = 0;
  for (const nlohmann::json& s : result) {
    double v = 0;
    if (absl::SimpleAtod(s["value"][1].get<std::string>(), &v)) sum += v;
  }
  return sum;
}

class Prometheus {
 public:
  Prometheus(const TempDir& dir, const std::vector<std::string>& verifiers,
             const std::vector<std::string>& registrars) {
    absl::StatusOr<int> port = testing::PickFreePort();
    REQUIRE(port.ok());
    port_ = *port;
    const std::string config = dir.Join("prometheus.yml");
    std::ofstream out(config);
    out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n";
    auto job = [&](const char* name, const std::vector<std::string>& targets) {
      out << "  - job_name: " << name << "\n    static_configs:\n"
          << "      - targets: [";
      for (size_t i = 0; i < targets.size(); ++i) {
        out << (i ? ", " : "") << "'" << targets[i] << "'";
      }
      out << "]\n";
    };
    job("vouch-verifier", verifiers);
    job("vouch-registrar", registrars);
    out.close();
    mkdir(dir.Join("prom-data").c_str(), 0700);
    ProcessOptions opts;
    opts.stdout_path = opts.stderr_path = dir.Join("prometheus.log");
    absl::StatusOr<ChildProcess> p = ChildProcess::Start(
        {"prometheus", "--config.file=" + config,
         "--storage.tsdb.path=" + dir.Join("prom-data"),
         absl::StrCat("--web.listen-address=127.0.0.1:", port_),
         "--web.enable-lifecycle"},
        opts);
    REQUIRE(p.ok());
    process_.emplace(*std::move(p));
    log_ = dir.Join("prometheus.log");
    REQUIRE(Eventually([&] {
      return HttpStatus(absl::StrCat("http://127.0.0.1:", port_, "/-/ready")) ==
                 200 ||
             !process_->Running();
    }));
    INFO(Slurp(log_));
    REQUIRE(process_->Running());
  }
  int port() const { return port_; }

 private:
  int port_ = 0;
  std::string log_;
  std::optional<ChildProcess> process_;
};

TEST_CASE(
    "metrics: Prometheus scrapes the verifier and registrar, and a tampered "
    "file raises the failure series",
    "[e2e][metrics][pg][tpm]") {
  absl::StatusOr<TempDir> made = TempDir::Create("metrics");
  REQUIRE(made.ok());
  TempDir dir = *std::move(made);
  Tls tls(dir.path());
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
  REQUIRE(tpm.ok());
  ServerProcess registrar(
      dir, **pg, tls, VOUCH_REGISTRAR_BIN, "registrar", "registrar",
      {"--registrar-ek-ca-dir", CaDir(dir, "ek-ca", {tpm->get()}),
       "--metrics-listen", "127.0.0.1:0", "--log-format", "json"});
  ServerProcess verifier(
      dir, **pg, tls, VOUCH_VERIFIER_BIN, "verifier", "v1",
      {"--verifier-id", "v1", "--verifier-sweep-interval", "1s",
       "--verifier-workers", "2", "--metrics-listen", "127.0.0.1:0"});
  // The registrar logs JSON; its port is in a JSON object.
  int registrar_port = 0;
  REQUIRE(Eventually([&] {
    for (absl::string_view line :
         absl::StrSplit(Slurp(registrar.log()), '\n')) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("msg", "") == "metrics serving") {
        return absl::SimpleAtoi(j.value("port", ""), &registrar_port);
      }
    }
    return false;
  }));
  int verifier_port = 0;
  REQUIRE(Eventually(
      [&] { return (verifier_port = MetricsPort(verifier.log())) > 0; }));
  const std::string vurl = absl::StrCat("http://127.0.0.1:", verifier_port);
  const std::string rurl = absl::StrCat("http://127.0.0.1:", registrar_port);

  // Health: alive, ready (database reachable, schema current, serving).
  CHECK(HttpStatus(vurl + "/healthz") == 200);
  REQUIRE(Eventually([&] { return HttpStatus(vurl + "/readyz") == 200; }));
  REQUIRE(Eventually([&] { return HttpStatus(rurl + "/readyz") == 200; }));
  // The standard gRPC health service (grpc.health.v1.Health/Check) answers
  // SERVING: an empty HealthCheckRequest, and the response's field 1
  // (status) is 1, encoded as the bytes 08 01.
  {
    sdk::ClientOptions o;
    o.server = verifier.address();
    o.tls_dir = tls.client_dir("viewer");
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        sdk::CreateChannel(o);
    REQUIRE(channel.ok());
    grpc::GenericStub stub(*channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    INFO(status.error_message());
    REQUIRE(status.ok());
    std::vector<grpc::Slice> slices;
    REQUIRE(response.Dump(&slices).ok());
    std::string bytes;
    for (const grpc::Slice& sl : slices) {
      bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    CHECK(bytes == std::string("\x08\x01", 2));
  }

  Prometheus prom(dir, {absl::StrCat("127.0.0.1:", verifier_port)},
                  {absl::StrCat("127.0.0.1:", registrar_port)});

  // An agent with an IMA log and a policy learned from known-good files.
  const std::string ima_log = dir.Join("ima.log");
  std::ofstream(ima_log).flush();
  mkdir(dir.Join("state").c_str(), 0700);
  testing::RunResult id = testing::RunCapture(
      {VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti", (*tpm)->tcti(),
       "--agent-state-dir", dir.Join("state")});
  REQUIRE(id.status.Success());
  const std::string agent_id(absl::StripAsciiWhitespace(id.out));
  const std::string agent_dir = tls.Agent(agent_id);
  auto append = [&](const std::vector<std::string>& paths) {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "dev",          "ima-append",
                                     "--tcti",     (*tpm)->tcti(), "--log",
                                     ima_log};
    argv.insert(argv.end(), paths.begin(), paths.end());
    REQUIRE(testing::RunCapture(argv).status.Success());
  };
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "--server",
                                     verifier.address(), "--tls-dir",
                                     tls.client_dir("admin")};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv);
  };
  const std::string good = dir.Join("good");
  std::ofstream(good) << "good file";
  append({good});
  const std::string policy = dir.Join("policy.json");
  REQUIRE(testing::RunCapture({VOUCHCTL_BIN, "policy-file", "create",
                               "--from-ima-log", ima_log, "-f", policy})
              .status.Success());
  REQUIRE(ctl({"policies", "add", "web", "-f", policy}).status.Success());
  AgentProcessOptions agent_options;
  agent_options.tcti = (*tpm)->tcti();
  agent_options.state_dir = dir.Join("state");
  agent_options.registrars = registrar.address();
  agent_options.verifiers = verifier.address();
  agent_options.ima_log = ima_log;
  agent_options.tls_dir = agent_dir;
  agent_options.log = dir.Join("agent.log");
  agent_options.extra = {"--metrics-listen", "127.0.0.1:0"};
  ChildProcess agent = StartAgentProcess(agent_options);
  testing::RunResult enrolled =
      ctl({"agents", "enroll", agent_id, "--runtime-policy", "web",
           "--interval", "5s"});
  INFO(enrolled.err);
  REQUIRE(enrolled.status.Success());

  // Prometheus sees passes, the registration and the activation.
  REQUIRE(Eventually([&] {
    return Query(prom.port(), "vouch_verdicts_total{result=\"pass\"}") > 0;
  }));
  // The registrar's counters, from a scrape after the activation.
  INFO(Curl(rurl + "/metrics").out);
  CHECK(Eventually([&] {
    return Query(prom.port(), "vouch_registrations_total{result=\"ok\"}") >=
               1 &&
           Query(prom.port(), "vouch_activations_total{result=\"ok\"}") >= 1;
  }));
  CHECK(Query(prom.port(), "up{job=\"vouch-verifier\"}") == 1);
  CHECK(Query(prom.port(), "vouch_tls_certificate_expiry_timestamp_seconds") >
        0);
  REQUIRE(Eventually([&] {
    return Query(prom.port(), "vouch_agents{scope=\"pool\",state=\"pass\"}") ==
           1;
  }));
  CHECK(Query(prom.port(), "vouch_attest_streams") == 1);
  const double failures_before =
      std::max(0.0, Query(prom.port(), "sum(vouch_verdict_failures_total)"));
  CHECK(failures_before == 0);

  // A file not in the policy: the failure series rises.
  const std::string evil = dir.Join("evil.sh");
  std::ofstream(evil) << "#!/bin/sh\necho pwned\n";
  append({evil});
  REQUIRE(Eventually([&] {
    return Query(prom.port(),
                 "vouch_verdict_failures_total{code=\"ima_file_not_in_"
                 "policy\"}") > 0;
  }));
  CHECK(Query(prom.port(), "vouch_verdicts_total{result=\"fail\"}") > 0);
  REQUIRE(Eventually([&] {
    return Query(prom.port(), "vouch_agents{scope=\"pool\",state=\"fail\"}") ==
           1;
  }));

  // The agent's own endpoint: pushes and the last verdict.
  int agent_port = 0;
  REQUIRE(Eventually(
      [&] { return (agent_port = MetricsPort(dir.Join("agent.log"))) > 0; }));
  const std::string text =
      Curl(absl::StrCat("http://127.0.0.1:", agent_port, "/metrics")).out;
  CHECK(absl::StrContains(text, "vouch_agent_pushes_total{result=\"sent\"}"));
  CHECK(absl::StrContains(text, "vouch_agent_last_verdict{result=\"fail\"} 1"));

  // Every query of the Grafana dashboard is valid PromQL here.
  absl::StatusOr<std::string> dash = ReadFileUpTo(
      VOUCH_SOURCE_DIR "/deploy/grafana/vouch-dashboard.json", 1 << 20);
  REQUIRE(dash.ok());
  const nlohmann::json dashboard = nlohmann::json::parse(*dash);
  int queries = 0;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const nlohmann::json& target : panel["targets"]) {
      std::string expr = target["expr"];
      expr = absl::StrReplaceAll(expr, {{"$__rate_interval", "1m"}});
      nlohmann::json raw;
      Query(prom.port(), expr, &raw);
      INFO(expr << " -> " << raw.dump());
      CHECK(raw.value("status", "") == "success");
      ++queries;
    }
  }
  CHECK(queries > 15);

  CHECK(agent.Terminate().Success());
}

}  // namespace
}  // namespace vouch
