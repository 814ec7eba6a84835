// Runtime policies fetched from a URL, end to end: a real vouch-verifier
// and vouch-registrar on a throw-away PostgreSQL, a real vouch-agent on
// swtpm, and a local HTTPS server (python3 http.server + ssl with a
// certificate of the test's CA, on 127.0.0.1 and a free port) serving
// policies signed with `vouchctl policy-file sign`. Checks: a signed import
// from the URL passes and an agent enrolled on it passes; a wrong-key
// signature, a downgrade, an unsigned, malformed or oversized document and
// an HTTP error are refused with their reason while the active version
// stays (also for a TLS failure); the scheduled refresh stores a new signed
// release within seconds and an unchanged document stores nothing; another
// tenant's key does not validate a tenant's import. Roll-outs: a shadow
// reports a would-be failure while the agent passes, promote makes the
// shadow the active version (`agents reverify` with the candidate judges
// the whole boot), an update window accepts an upgraded file only while it
// is open.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "e2e/e2e_util.h"

namespace vouch {
namespace {

// Serves DIR over HTTPS with CERT/KEY on 127.0.0.1:PORT; prints "ready"
// once listening.
constexpr char kHttpsServer[] = R"(
import functools, http.server, ssl, sys
port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                            directory=root)
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print("ready", flush=True)
httpd.serve_forever()
)";

testing::RunResult Run(std::vector<std::string> argv) {
  return testing::RunCapture(argv);
}

// Writes `text` to `path` through a rename, so the server never serves a
// half-written file.
void Publish(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
  REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
}

struct World {
  TempDir dir;
  Tls tls;
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<Swtpm> tpm;
  std::optional<Registrar> registrar;
  std::optional<ServerProcess> verifier;
  std::optional<ChildProcess> https;
  std::optional<ChildProcess> agent;
  std::string www;
  std::string base_url;
  std::string ima_log;
  std::string agent_id;

  static TempDir NewDir() {
    absl::StatusOr<TempDir> d = TempDir::Create("policy-import");
    REQUIRE(d.ok());
    return *std::move(d);
  }

  World() : dir(NewDir()), tls(dir.path()) {
    absl::StatusOr<std::unique_ptr<PgCluster>> p = PgCluster::Start();
    REQUIRE(p.ok());
    pg = *std::move(p);
    absl::StatusOr<std::unique_ptr<Swtpm>> t = Swtpm::Start();
    REQUIRE(t.ok());
    tpm = *std::move(t);
    registrar.emplace(dir, *pg, tls, CaDir(dir, "ek-ca", {tpm.get()}));
    // No pool-wide signing key: each tenant trusts only its own.
    verifier.emplace(
        dir, *pg, tls, VOUCH_VERIFIER_BIN, "verifier", "v1",
        PoolVerifierArgs("v1",
                         {"--verifier-policy-fetch-ca-file", tls.ca + "/ca.pem",
                          "--verifier-policy-fetch-timeout", "10s"}));
    www = dir.Join("www");
    mkdir(www.c_str(), 0700);
    StartHttps();
    ima_log = dir.Join("ima.log");
    std::ofstream(ima_log).flush();
    mkdir(dir.Join("state").c_str(), 0700);
    testing::RunResult id =
        Run({VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti", tpm->tcti(),
             "--agent-state-dir", dir.Join("state")});
    INFO(id.err);
    REQUIRE(id.status.Success());
    agent_id = std::string(absl::StripAsciiWhitespace(id.out));
  }

  void StartHttps() {
    absl::StatusOr<int> port = testing::PickFreePort();
    REQUIRE(port.ok());
    const std::string log = dir.Join("https.log");
    ProcessOptions o;
    o.stdout_path = o.stderr_path = log;
    absl::StatusOr<ChildProcess> p = ChildProcess::Start(
        {"python3", "-c", kHttpsServer, absl::StrCat(*port), www,
         tls.server_dir() + "/server.pem", tls.server_dir() + "/server.key"},
        o);
    REQUIRE(p.ok());
    https.emplace(*std::move(p));
    INFO(Slurp(log));
    REQUIRE(Eventually(
        [&] { return LinesWith(log, "ready") > 0 || !https->Running(); }));
    REQUIRE(https->Running());
    base_url = absl::StrCat("https://127.0.0.1:", *port, "/");
  }

  // vouchctl as `client` (a client of the test CA).
  testing::RunResult Ctl(std::vector<std::string> args,
                         const std::string& client = "admin") {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "--server",
                                     verifier->address(), "--tls-dir",
                                     tls.client_dir(client)};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv);
  }
  nlohmann::json Json(std::vector<std::string> args,
                      const std::string& client = "admin") {
    args.insert(args.begin(), {"-o", "json"});
    testing::RunResult r = Ctl(args, client);
    INFO(r.err);
    REQUIRE(r.status.Success());
    return nlohmann::json::parse(r.out);
  }

  // An EC P-256 key pair: NAME.key (private), NAME.pub (public).
  std::string Key(const std::string& name) {
    const std::string key = dir.Join(name + ".key");
    REQUIRE(Run({"openssl", "ecparam", "-name", "prime256v1", "-genkey",
                 "-noout", "-out", key})
                .status.Success());
    REQUIRE(Run({"openssl", "pkey", "-in", key, "-pubout", "-out",
                 dir.Join(name + ".pub")})
                .status.Success());
    return key;
  }

  // `policy` with its release set, DSSE-signed with `key`.
  std::string Signed(const nlohmann::json& policy, int release,
                     const std::string& key) {
    nlohmann::json p = policy;
    p["release"] = release;
    const std::string in = dir.Join("unsigned.json");
    const std::string out = dir.Join("signed.json");
    std::ofstream(in, std::ios::trunc) << p.dump();
    testing::RunResult r = Run({VOUCHCTL_BIN, "policy-file", "sign", "--policy",
                                in, "--key", key, "-f", out});
    INFO(r.err);
    REQUIRE(r.status.Success());
    return Slurp(out);
  }

  std::string State() {
    testing::RunResult r = Ctl({"agents", "get", agent_id, "-o", "json"});
    if (!r.status.Success()) return "";
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("state", "") : "";
  }
};

TEST_CASE(
    "policies from a URL: signed by the tenant's key, refreshed on a "
    "schedule, refused when wrong, and an agent attests on them",
    "[e2e][policy]") {
  World w;
  const std::string k1 = w.Key("k1");  // trusted by the default tenant
  const std::string k2 = w.Key("k2");  // trusted by tenant "other" only
  REQUIRE(w.Ctl({"policy-keys", "add", "k1", "-f", w.dir.Join("k1.pub")})
              .status.Success());
  nlohmann::json keys = w.Json({"policy-keys", "list"});
  REQUIRE(keys["keys"].size() == 1);
  CHECK(keys["keys"][0]["name"] == "k1");

  // Known-good files measured, and a policy learned from them.
  std::vector<std::string> files;
  for (int i = 0; i < 2; ++i) {
    files.push_back(w.dir.Join(absl::StrCat("good", i)));
    std::ofstream(files.back()) << "good file " << i;
  }
  std::vector<std::string> append = {VOUCHCTL_BIN, "dev",         "ima-append",
                                     "--tcti",     w.tpm->tcti(), "--log",
                                     w.ima_log};
  append.insert(append.end(), files.begin(), files.end());
  REQUIRE(Run(append).status.Success());
  const std::string learned = w.dir.Join("learned.json");
  REQUIRE(Run({VOUCHCTL_BIN, "policy-file", "create", "--from-ima-log",
               w.ima_log, "-f", learned})
              .status.Success());
  const nlohmann::json policy = nlohmann::json::parse(Slurp(learned));

  // 1. A signed import from the URL, refreshed every second.
  const std::string url = w.base_url + "policy.json";
  Publish(w.www + "/policy.json", w.Signed(policy, 1, k1));
  testing::RunResult imported =
      w.Ctl({"policies", "import", "web", "--url", url, "--refresh", "1s",
             "--require-signature"});
  INFO(imported.err);
  REQUIRE(imported.status.Success());
  nlohmann::json got = w.Json({"policies", "get", "web"});
  CHECK(got["version"] == 1);
  CHECK(got["release"] == 1);
  CHECK(got["origin"] == "url:" + url);
  CHECK(!got["signer_key_id"].get<std::string>().empty());
  CHECK(got["source"]["url"] == url);
  CHECK(got["source"]["refresh_seconds"] == 1);
  CHECK(got["source"]["require_signature"] == true);
  CHECK(got["source"]["last_result"] == "stored");

  // An agent enrolled on it passes.
  const std::string agent_dir = w.tls.Agent(w.agent_id);
  AgentProcessOptions o;
  o.tcti = w.tpm->tcti();
  o.state_dir = w.dir.Join("state");
  o.registrars = w.registrar->address();
  o.verifiers = w.verifier->address();
  o.ima_log = w.ima_log;
  o.tls_dir = agent_dir;
  o.log = w.dir.Join("agent.log");
  w.agent.emplace(StartAgentProcess(o));
  REQUIRE(w.Ctl({"agents", "enroll", w.agent_id, "--runtime-policy", "web",
                 "--interval", "5s"})
              .status.Success());
  REQUIRE(Within(60, [&] { return w.State() == "pass"; }));

  // 2. Refusals on refresh: each is recorded with its reason, and the
  //    active version stays.
  auto refused_with = [&](const std::string& reason) {
    return Within(20, [&] {
      nlohmann::json s = w.Json({"policies", "get", "web"});
      return s["source"]["last_result"] == "refused" &&
             absl::StrContains(s["source"]["last_error"].get<std::string>(),
                               reason);
    });
  };
  struct Case {
    const char* what;
    std::string document;
    const char* reason;
  };
  nlohmann::json unsigned_doc = policy;
  unsigned_doc["release"] = 9;
  const std::vector<Case> cases = {
      {"wrong key", w.Signed(policy, 5, k2), "does not verify"},
      {"downgrade", w.Signed(policy, 0, k1), "downgrade"},
      {"unsigned", unsigned_doc.dump(), "not signed"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    Publish(w.www + "/policy.json", c.document);
    CHECK(refused_with(c.reason));
    nlohmann::json now = w.Json({"policies", "get", "web"});
    CHECK(now["version"] == 1);
    CHECK(now["release"] == 1);
  }
  CHECK(w.State() == "pass");

  // One-shot imports of a malformed, an oversized and a missing document
  // into the same policy: refused, the active version stays.
  std::ofstream(w.www + "/junk.json") << "{\"meta\": {\"version\": 1}, ";
  {
    std::ofstream big(w.www + "/big.json");
    big << std::string((16 << 20) + 1, ' ');
  }
  const std::vector<std::pair<std::string, std::string>> one_shot = {
      {"junk.json", "not a valid runtime policy"},
      {"big.json", "larger than"},
      {"missing.json", "HTTP status 404"},
  };
  for (const auto& [file, reason] : one_shot) {
    testing::RunResult r = w.Ctl(
        {"policies", "import", "web", "--update", "--url", w.base_url + file});
    INFO(file << ": " << r.err);
    CHECK(r.status.code == 1);
    CHECK(absl::StrContains(r.err, reason));
  }
  // A TLS failure: PostgreSQL's port answers a ClientHello with no TLS.
  testing::RunResult tls_fail =
      w.Ctl({"policies", "import", "web", "--update", "--url",
             absl::StrCat("https://127.0.0.1:", w.pg->port(), "/p.json")});
  INFO(tls_fail.err);
  CHECK(tls_fail.status.code == 1);
  CHECK(absl::StrContains(tls_fail.err, "fetch failed"));
  // Plain http is refused before anything is fetched.
  testing::RunResult http = w.Ctl(
      {"policies", "import", "plain", "--url", "http://127.0.0.1:1/p.json"});
  CHECK(http.status.code == 1);
  CHECK(absl::StrContains(http.err, "https"));
  CHECK(w.Json({"policies", "get", "web"})["version"] == 1);

  // 3. A new signed release is picked up by the schedule; then an
  //    unchanged document stores nothing.
  Publish(w.www + "/policy.json", w.Signed(policy, 2, k1));
  REQUIRE(Within(20, [&] {
    return w.Json({"policies", "get", "web"})["version"] == 2;
  }));
  nlohmann::json v2 = w.Json({"policies", "get", "web"});
  CHECK(v2["release"] == 2);
  REQUIRE(Within(20, [&] {
    return w.Json({"policies", "get", "web"})["source"]["last_result"] ==
           "unchanged";
  }));
  CHECK(w.Json({"policies", "get", "web"})["version"] == 2);
  nlohmann::json history = w.Json({"policies", "history", "web"});
  REQUIRE(history["versions"].size() == 2);
  CHECK(history["versions"][0]["version"] == 2);
  CHECK(history["versions"][0]["release"] == 2);
  CHECK(history["versions"][1]["release"] == 1);
  CHECK(history["versions"][1]["origin"] == "url:" + url);
  // The agent keeps passing on the new version.
  REQUIRE(Within(30, [&] {
    testing::RunResult r = w.Ctl({"agents", "get", w.agent_id, "-o", "json"});
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() && j.value("state", "") == "pass" &&
           j.value("runtime_policy_version", 0) == 2;
  }));

  // 4. Another tenant: the default tenant's key does not validate its
  //    import; its own key does, and that key does not validate the
  //    default tenant's (the wrong-key case above).
  sdk::IssueOptions other;
  other.ca_dir = w.tls.ca;
  other.kind = sdk::CertKind::kClient;
  other.name = "other-admin";
  other.tenant = "other";
  other.roles = {Role::kAdmin};
  REQUIRE(sdk::IssueCertificate(other).ok());
  Publish(w.www + "/k1.json", w.Signed(policy, 1, k1));
  testing::RunResult foreign =
      w.Ctl({"policies", "import", "web", "--url", w.base_url + "k1.json"},
            "other-admin");
  INFO(foreign.err);
  CHECK(foreign.status.code == 1);
  CHECK(absl::StrContains(foreign.err, "no policy-signing key is trusted"));
  REQUIRE(w.Ctl({"policy-keys", "add", "k2", "-f", w.dir.Join("k2.pub")},
                "other-admin")
              .status.Success());
  CHECK(w.Json({"policy-keys", "list"}, "other-admin")["keys"].size() == 1);
  testing::RunResult still =
      w.Ctl({"policies", "import", "web", "--url", w.base_url + "k1.json"},
            "other-admin");
  CHECK(still.status.code == 1);
  CHECK(absl::StrContains(still.err, "does not verify"));
  Publish(w.www + "/k2.json", w.Signed(policy, 1, k2));
  testing::RunResult own =
      w.Ctl({"policies", "import", "web", "--url", w.base_url + "k2.json"},
            "other-admin");
  INFO(own.err);
  CHECK(own.status.Success());
  // A viewer may list keys but not add them.
  CHECK(w.Json({"policy-keys", "list"}, "viewer")["keys"].size() == 1);
  CHECK(
      w.Ctl({"policy-keys", "add", "k3", "-f", w.dir.Join("k2.pub")}, "viewer")
          .status.code == 1);
  CHECK(w.Ctl({"policy-keys", "delete", "k2"}, "other-admin").status.Success());
  CHECK(w.Json({"policy-keys", "list"}, "other-admin")["keys"].empty());
}

TEST_CASE(
    "policy roll-outs: a shadow reports without failing the agent, promote "
    "makes it active, an update window accepts an upgrade only while open",
    "[e2e][policy]") {
  World w;
  std::vector<std::string> files;
  for (int i = 0; i < 3; ++i) {
    files.push_back(w.dir.Join(absl::StrCat("file", i)));
    std::ofstream(files.back()) << "file " << i;
  }
  auto append = [&](const std::string& file) {
    REQUIRE(Run({VOUCHCTL_BIN, "dev", "ima-append", "--tcti", w.tpm->tcti(),
                 "--log", w.ima_log, file})
                .status.Success());
  };
  auto next_entry = [&]() -> int64_t {
    testing::RunResult r = w.Ctl({"agents", "get", w.agent_id, "-o", "json"});
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("ima_next_entry", int64_t{-1}) : -1;
  };
  auto write_policy = [&](const std::string& name, nlohmann::json policy) {
    const std::string path = w.dir.Join(name + ".json");
    std::ofstream(path) << policy.dump();
    return path;
  };
  append(files[0]);
  append(files[1]);
  const std::string learned = w.dir.Join("learned.json");
  REQUIRE(Run({VOUCHCTL_BIN, "policy-file", "create", "--from-ima-log",
               w.ima_log, "-f", learned})
              .status.Success());
  const nlohmann::json web = nlohmann::json::parse(Slurp(learned));
  REQUIRE(web["digests"].contains(files[1]));
  nlohmann::json without1 = web;
  without1["digests"].erase(files[1]);
  REQUIRE(w.Ctl({"policies", "add", "web", "-f", write_policy("web", web)})
              .status.Success());
  REQUIRE(w.Ctl({"policies", "add", "web-next", "-f",
                 write_policy("web-next", without1)})
              .status.Success());
  AgentProcessOptions o;
  o.tcti = w.tpm->tcti();
  o.state_dir = w.dir.Join("state");
  o.registrars = w.registrar->address();
  o.verifiers = w.verifier->address();
  o.ima_log = w.ima_log;
  o.tls_dir = w.tls.Agent(w.agent_id);
  o.log = w.dir.Join("agent.log");
  w.agent.emplace(StartAgentProcess(o));
  REQUIRE(w.Ctl({"agents", "enroll", w.agent_id, "--runtime-policy", "web",
                 "--interval", "2s"})
              .status.Success());
  REQUIRE(Within(60, [&] { return w.State() == "pass"; }));

  // 1. A shadow without file1: its next measurement is a would-be failure,
  //    reported; the agent stays pass.
  testing::RunResult set =
      w.Ctl({"policies", "shadow", "web", "--candidate", "web-next"});
  INFO(set.err);
  REQUIRE(set.status.Success());
  nlohmann::json rollouts = w.Json({"policies", "rollouts"});
  REQUIRE(rollouts["rollouts"].size() == 1);
  CHECK(rollouts["rollouts"][0]["kind"] == "shadow");
  CHECK(rollouts["rollouts"][0]["all_agents"] == true);
  append(files[1]);
  nlohmann::json report;
  REQUIRE(Within(30, [&] {
    report = w.Json({"policies", "shadow-report", "web"});
    return report["agents_failing"] == 1;
  }));
  INFO(report.dump());
  REQUIRE(report["agents"].size() == 1);
  CHECK(report["agents"][0]["agent_id"] == w.agent_id);
  CHECK(report["agents"][0]["candidate"] == "web-next");
  CHECK(report["agents"][0]["failure_count"] == 1);
  REQUIRE(report["agents"][0]["failures"].size() == 1);
  CHECK(report["agents"][0]["failures"][0]["path"] == files[1]);
  CHECK(report["agents"][0]["failures"][0]["code"] == "ima.file_not_in_policy");
  CHECK(w.State() == "pass");
  // The whole boot against the candidate: the agent's newest record
  // re-verified with it fails on both measurements of file1; with its own
  // version it passes, as recorded.
  testing::RunResult whole =
      w.Ctl({"agents", "reverify", w.agent_id, "--runtime-policy", "web-next",
             "-o", "json"});
  INFO(whole.out << whole.err);
  CHECK(whole.status.code == 1);
  nlohmann::json rj = nlohmann::json::parse(whole.out, nullptr, false);
  REQUIRE(rj.is_object());
  CHECK(rj["state"] == "fail");
  CHECK(rj["runtime_policy"] == "web-next@1");
  REQUIRE(rj["failures"].size() == 2);
  CHECK(rj["failures"][0]["path"] == files[1]);
  CHECK(rj["failures"][1]["path"] == files[1]);
  testing::RunResult own =
      w.Ctl({"agents", "reverify", w.agent_id, "-o", "json"});
  INFO(own.out << own.err);
  CHECK(own.status.code == 0);
  nlohmann::json oj = nlohmann::json::parse(own.out, nullptr, false);
  REQUIRE(oj.is_object());
  CHECK(oj["state"] == "pass");
  CHECK(oj["matches_record"] == true);

  // 2. Promote: web-next's content is web's version 2; the shadow ends.
  testing::RunResult promoted = w.Ctl({"policies", "promote", "web"});
  INFO(promoted.err);
  REQUIRE(promoted.status.Success());
  nlohmann::json history = w.Json({"policies", "history", "web"});
  REQUIRE(history["versions"].size() == 2);
  CHECK(history["versions"][0]["origin"] == "promote:web-next@1");
  CHECK(w.Json({"policies", "rollouts"})["rollouts"].empty());
  CHECK(w.Json({"policies", "shadow-report", "web"})["agents"].empty());

  // 3. An upgrade brings file2, known to web-up only: accepted while the
  //    window is open, a failure once it is closed.
  // The file's digest in the algorithm the log uses (as learned above).
  const size_t hex = web["digests"][files[0]][0].get<std::string>().size();
  testing::RunResult sum = Run({hex == 40 ? "sha1sum" : "sha256sum", files[2]});
  REQUIRE(sum.status.Success());
  nlohmann::json up = without1;
  up["digests"][files[2]] = nlohmann::json::array({sum.out.substr(0, hex)});
  REQUIRE(w.Ctl({"policies", "add", "web-up", "-f", write_policy("web-up", up)})
              .status.Success());
  testing::RunResult too_long = w.Ctl(
      {"policies", "window", "web", "--candidate", "web-up", "--for", "1000h"});
  CHECK(too_long.status.code == 1);  // At most 31 days.
  CHECK(absl::StrContains(too_long.err, "31 days"));
  REQUIRE(w.Ctl({"policies", "window", "web", "--candidate", "web-up", "--for",
                 "1h"})
              .status.Success());
  const int64_t before = next_entry();
  REQUIRE(before > 0);
  append(files[2]);
  REQUIRE(Within(30, [&] { return next_entry() > before; }));
  CHECK(w.State() == "pass");
  REQUIRE(w.Ctl({"policies", "end-rollout", "web", "--kind", "window"})
              .status.Success());
  CHECK(w.Json({"policies", "rollouts"})["rollouts"].empty());
  // Roll-outs are re-read within a second.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  append(files[2]);
  REQUIRE(Within(30, [&] { return w.State() == "fail"; }));
}

}  // namespace
}  // namespace vouch
