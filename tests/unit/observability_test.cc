// Metrics, health endpoints and JSON logs: the HTTP endpoint on a port the
// kernel picks, scraped and probed with a plain socket client; the verifier's
// metric names and labels; JSON log lines read back with nlohmann-json.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "server/metrics.h"
#include "verifier/verifier_metrics.h"

namespace vouch {
namespace {

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:port/path, HTTP/1.0, the whole answer read.
HttpReply HttpGet(int port, const std::string& path,
                  const std::string& method = "GET") {
  HttpReply reply;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  const std::string req =
      absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  REQUIRE(write(fd, req.data(), req.size()) ==
          static_cast<ssize_t>(req.size()));
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) all.append(buf, n);
  close(fd);
  REQUIRE(absl::StartsWith(all, "HTTP/1."));
  reply.status = std::stoi(all.substr(9, 3));
  const size_t body = all.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = all.substr(body + 4);
  return reply;
}

TEST_CASE("metrics endpoint serves /metrics, /healthz and /readyz",
          "[metrics]") {
  auto metrics = std::make_shared<server::Metrics>("vouch-test");
  metrics->Refused(server::Refusal::kHelloRate);
  metrics->Refused(server::Refusal::kStreamCap);
  metrics->Refused(server::Refusal::kStreamCap);
  int scrapes = 0;
  metrics->OnScrape([&scrapes] { ++scrapes; });
  absl::Status ready = absl::UnavailableError("database down");
  absl::StatusOr<std::unique_ptr<server::MetricsServer>> http =
      server::MetricsServer::Start("127.0.0.1:0", metrics,
                                   [&ready] { return ready; });
  REQUIRE(http.ok());
  const int port = (*http)->port();
  REQUIRE(port > 0);

  HttpReply m = HttpGet(port, "/metrics");
  CHECK(m.status == 200);
  CHECK(scrapes == 1);
  CHECK(absl::StrContains(m.body, "vouch_build_info{"));
  CHECK(absl::StrContains(m.body, "component=\"vouch-test\""));
  CHECK(absl::StrContains(
      m.body, "vouch_requests_refused_total{reason=\"hello_rate\"} 1"));
  CHECK(absl::StrContains(
      m.body, "vouch_requests_refused_total{reason=\"overloaded\"} 0"));
  CHECK(absl::StrContains(
      m.body, "vouch_requests_refused_total{reason=\"stream_cap\"} 2"));
  for (const char* reason :
       {"hello_deadline", "ima_budget", "watch_cap", "stream_rate"}) {
    CHECK(absl::StrContains(
        m.body,
        absl::StrCat("vouch_requests_refused_total{reason=\"", reason, "\"}")));
  }

  CHECK(HttpGet(port, "/healthz").status == 200);
  HttpReply r = HttpGet(port, "/readyz");
  CHECK(r.status == 503);
  CHECK(absl::StrContains(r.body, "starting"));
  (*http)->SetServing();
  r = HttpGet(port, "/readyz");
  CHECK(r.status == 503);
  CHECK(absl::StrContains(r.body, "database down"));
  ready = absl::OkStatus();
  CHECK(HttpGet(port, "/readyz").status == 200);
  (*http)->SetDraining();
  r = HttpGet(port, "/readyz");
  CHECK(r.status == 503);
  CHECK(absl::StrContains(r.body, "draining"));
  CHECK(HttpGet(port, "/healthz").status == 200);  // Alive while draining.
  CHECK(HttpGet(port, "/nothing").status == 404);
  CHECK(HttpGet(port, "/metrics", "POST").status == 405);
}

TEST_CASE("metrics endpoint refuses a bad listen address", "[metrics]") {
  auto metrics = std::make_shared<server::Metrics>("vouch-test");
  CHECK_FALSE(server::MetricsServer::Start("9102", metrics, nullptr).ok());
  CHECK_FALSE(
      server::MetricsServer::Start("127.0.0.1:x", metrics, nullptr).ok());
}

TEST_CASE("certificate expiry comes from the PEM's notAfter", "[metrics]") {
  server::Metrics metrics("vouch-test");
  CHECK_FALSE(metrics.SetCertificateExpiry("/nonexistent.pem").ok());
  // A self-signed certificate valid until 2049-12-31T23:59:59Z.
  char name[] = "/tmp/vouch-cert-XXXXXX";
  const int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  close(fd);
  const std::string cmd = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout /dev/null -subj /CN=t -not_before 20240101000000Z "
      "-not_after 20491231235959Z -out ",
      name, " 2>/dev/null");
  if (std::system(cmd.c_str()) != 0) {
    // openssl < 3.2 has no -not_after: use -days from now instead.
    const std::string days = absl::StrCat(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
        "-nodes -keyout /dev/null -subj /CN=t -days 30 -out ",
        name, " 2>/dev/null");
    REQUIRE(std::system(days.c_str()) == 0);
    REQUIRE(metrics.SetCertificateExpiry(name).ok());
    const std::string text = metrics.Scrape();
    CHECK_FALSE(absl::StrContains(
        text, "vouch_tls_certificate_expiry_timestamp_seconds 0\n"));
  } else {
    REQUIRE(metrics.SetCertificateExpiry(name).ok());
    CHECK(absl::StrContains(
        metrics.Scrape(),
        "vouch_tls_certificate_expiry_timestamp_seconds 2524607999"));
  }
  unlink(name);
}

TEST_CASE("verifier metrics: verdicts by result and failure code",
          "[metrics]") {
  server::Metrics metrics("vouch-verifier");
  verifier::VerifierMetrics vm(&metrics);
  v1::Verdict pass;
  pass.set_state(v1::ATTESTATION_STATE_PASS);
  vm.Verdict(pass, absl::Milliseconds(3));
  vm.Verdict(pass, absl::Milliseconds(4));
  v1::Verdict fail;
  fail.set_state(v1::ATTESTATION_STATE_FAIL);
  fail.add_failures()->set_code(v1::FAILURE_CODE_NONCE_MISMATCH);
  fail.add_failures()->set_code(static_cast<v1::FailureCode>(99999));
  vm.Verdict(fail, absl::Milliseconds(20));
  vm.Batch(3, absl::Milliseconds(2));
  vm.SetAgents({{"pass", 5}, {"fail", 1}}, /*pool=*/true);
  vm.SetPolicyTotals(7, 2);
  vm.SetPolicyTotals(9, 2);
  vm.WindowAccepted(3);
  vm.ShadowWouldFail(2);
  vm.ShadowWouldFail(1);
  const std::string text = metrics.Scrape();
  CHECK(absl::StrContains(text, "vouch_ima_window_accepted_total 3"));
  CHECK(absl::StrContains(text, "vouch_shadow_would_fail_total 3"));
  CHECK(absl::StrContains(text, "vouch_verdicts_total{result=\"pass\"} 2"));
  CHECK(absl::StrContains(text, "vouch_verdicts_total{result=\"fail\"} 1"));
  CHECK(absl::StrContains(
      text, "vouch_verdict_failures_total{code=\"nonce_mismatch\"} 1"));
  CHECK(absl::StrContains(text,
                          "vouch_verdict_failures_total{code=\"other\"} 1"));
  CHECK(absl::StrContains(text, "vouch_verdict_latency_seconds_count 3"));
  CHECK(absl::StrContains(
      text, "vouch_verdict_latency_seconds_bucket{le=\"0.005\"} 2"));
  CHECK(absl::StrContains(text, "vouch_commit_verdicts_sum 3"));
  CHECK(
      absl::StrContains(text, "vouch_agents{scope=\"pool\",state=\"pass\"} 5"));
  CHECK(absl::StrContains(text,
                          "vouch_agents{scope=\"pool\",state=\"timeout\"} 0"));
  CHECK(absl::StrContains(text, "vouch_policy_cache_hits_total 9"));
  // Every name follows the conventions: the vouch_ prefix; counters end in
  // _total.
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      REQUIRE(parts.size() == 4);
      CHECK(absl::StartsWith(parts[2], "vouch_"));
      if (parts[3] == "counter") CHECK(absl::EndsWith(parts[2], "_total"));
    }
  }
}

TEST_CASE("JSON log lines parse with a real JSON parser", "[metrics][core]") {
  std::vector<std::string> lines;
  SetLogSinkForTesting([&](absl::string_view l) { lines.emplace_back(l); });
  SetLogFormat(LogFormat::kJson);
  const std::string hostile = std::string("a\"b\\c\nd\te\x01 f\x7f") +
                              "\xc3\xa9" + "\xff\xfe" + "\xe0\x80\x80" + "}{";
  Log(LogLevel::kWarning, "msg with \"quotes\"\n",
      {{"agent_id", hostile}, {"count", 3}, {"bad key!", true}});
  SetLogFormat(LogFormat::kText);
  SetLogSinkForTesting(nullptr);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find('\n') == std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  CHECK(j.at("level") == "warning");
  CHECK(j.at("msg") == "msg with \"quotes\"\n");
  CHECK(j.at("count") == "3");
  CHECK(j.at("bad_key_") == "true");
  CHECK(j.at("ts").get<std::string>().size() ==
        std::string("2026-01-01T00:00:00.000Z").size());
  // Valid UTF-8 survives; other bytes become the text \xHH.
  CHECK(j.at("agent_id") ==
        "a\"b\\c\nd\te\x01 f\x7f\xc3\xa9\\xff\\xfe\\xe0\\x80\\x80}{");
  CHECK(ParseLogFormat("JSON").value() == LogFormat::kJson);
  CHECK(ParseLogFormat("text").value() == LogFormat::kText);
  CHECK_FALSE(ParseLogFormat("xml").ok());
}

TEST_CASE("JSON and text lines carry the same fields", "[metrics][core]") {
  const std::string text =
      FormatLogLine(LogLevel::kInfo, "vouch-verifier", "agent registered",
                    {{"agent_id", "a1"}, {"try", 3}});
  const nlohmann::json j = nlohmann::json::parse(
      FormatJsonLogLine(LogLevel::kInfo, "vouch-verifier", "agent registered",
                        {{"agent_id", "a1"}, {"try", 3}}));
  CHECK(text ==
        "level=info component=vouch-verifier msg=\"agent registered\" "
        "agent_id=a1 try=3");
  CHECK(j == nlohmann::json{{"level", "info"},
                            {"component", "vouch-verifier"},
                            {"msg", "agent registered"},
                            {"agent_id", "a1"},
                            {"try", "3"}});
}

}  // namespace
}  // namespace vouch
