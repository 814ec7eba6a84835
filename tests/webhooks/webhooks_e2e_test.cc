// Webhooks end to end ([e2e][webhooks]): real verifiers on a throw-away
// PostgreSQL, a real agent on swtpm, and receiver.py — an HTTPS receiver
// with a certificate of the test CA that checks every delivery's signature
// itself. A pass -> fail reaches it within 2 s signed; a wrong secret fails
// its check; a receiver that was down gets every event in order; a verifier
// killed mid-delivery leaves the event to another verifier (same id).
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "authz/world.h"

namespace vouch::authz {
namespace {

constexpr char kTenant[] = "tenant-w";
constexpr char kPython[] = "/usr/bin/python3";

// Short leases, polls and back-off so each case takes seconds.
std::vector<std::string> WebhookFlags(const std::string& ca_file) {
  return {"--webhooks-ca-file",    ca_file, "--webhooks-poll-interval", "100ms",
          "--webhooks-timeout",    "5s",    "--webhooks-lease",         "6s",
          "--webhooks-retry-base", "200ms", "--webhooks-retry-max",     "1s"};
}

// receiver.py on a port of its own; Start/Stop as often as needed (the port
// stays the same, so the subscription's URL does).
class Receiver {
 public:
  Receiver(const World& world, std::string name) : name_(std::move(name)) {
    absl::StatusOr<int> port = testing::PickFreePort();
    REQUIRE(port.ok());
    port_ = *port;
    log_ = world.dir().Join(name_ + "-deliveries.jsonl");
    cert_ = world.tls().server_dir() + "/server.pem";
    key_ = world.tls().server_dir() + "/server.key";
  }
  ~Receiver() { Stop(); }

  void Start(const std::string& secret, double hang_first = 0) {
    const std::string out = absl::StrCat(log_, ".out");
    std::remove(out.c_str());
    ProcessOptions o;
    o.stdout_path = o.stderr_path = out;
    absl::StatusOr<testing::ChildProcess> p = testing::ChildProcess::Start(
        {kPython, VOUCH_WEBHOOK_RECEIVER, "--port", absl::StrCat(port_),
         "--cert", cert_, "--key", key_, "--secret", secret, "--log", log_,
         "--hang-first", absl::StrCat(hang_first)},
        o);
    REQUIRE(p.ok());
    process_.emplace(*std::move(p));
    INFO(Slurp(out));
    REQUIRE(Eventually([&] {
      return absl::StrContains(Slurp(out), "listening") || !process_->Running();
    }));
    REQUIRE(process_->Running());
  }
  void Stop() {
    if (process_) process_->Terminate();
    process_.reset();
  }

  std::string url() const {
    return absl::StrCat("https://127.0.0.1:", port_, "/hooks/", name_);
  }
  // Every request received so far, oldest first.
  std::vector<nlohmann::json> Deliveries() const {
    std::vector<nlohmann::json> out;
    for (absl::string_view line :
         absl::StrSplit(Slurp(log_), '\n', absl::SkipEmpty())) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) out.push_back(std::move(j));
    }
    return out;
  }

 private:
  std::string name_;
  int port_ = 0;
  std::string log_, cert_, key_;
  std::optional<testing::ChildProcess> process_;
};

std::string WriteSecret(const World& world, const std::string& name,
                        const std::string& secret) {
  const std::string path = world.dir().Join(name + ".secret");
  std::ofstream(path) << secret << "\n";
  return path;
}

// A fixed secret for the tests that choose theirs (whsec_ + 32 bytes).
const char kSecret[] = "whsec_dm91Y2gtd2ViaG9va3MtdGVzdC1zZWNyZXQtMzI=";
const char kOtherSecret[] = "whsec_b3RoZXItd2ViaG9va3MtdGVzdC1zZWNyZXQtMzI=";

void Tamper(AgentOnTpm& a) {
  const std::string evil = a.dir + "/evil";
  std::ofstream(evil) << "not in the policy";
  testing::RunResult r =
      testing::RunCapture({VOUCHCTL_BIN, "dev", "ima-append", "--tcti",
                           a.tpm->tcti(), "--log", a.ima_log, evil});
  INFO(r.err);
  REQUIRE(r.status.Success());
}

nlohmann::json GetWebhook(World& world, const std::string& admin,
                          const std::string& name) {
  testing::RunResult r =
      world.Ctl(admin, {"-o", "json", "webhooks", "get", name});
  INFO(r.err);
  REQUIRE(r.status.Success());
  return nlohmann::json::parse(r.out);
}

// GetWebhook through another verifier of the pool.
struct WebhookWorld;
nlohmann::json GetWebhookVia(WebhookWorld& w, ServerProcess& verifier,
                             const std::string& name);

// The tenant's committed state changes (agent, state) in (xid, seq) order.
std::vector<std::pair<std::string, std::string>> CommittedEvents(
    World& world, const std::string& states_sql = "") {
  absl::StatusOr<std::string> out = world.pg().Psql(absl::StrCat(
      "SELECT agent_id || ' ' || state FROM agent_events WHERE tenant = '",
      kTenant, "'", states_sql, " ORDER BY xid, seq"));
  REQUIRE(out.ok());
  std::vector<std::pair<std::string, std::string>> events;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    REQUIRE(f.size() == 2);
    events.emplace_back(f[0], f[1]);
  }
  return events;
}

// A World whose verifier trusts the test CA for deliveries: the verifier
// starts before the World's CA exists, so its webhooks.ca_file names a path
// the CA certificate is copied to once it does (read at each delivery).
struct WebhookWorld {
  explicit WebhookWorld(int tpms)
      : keys(NewDir()),
        world(tpms, WebhookFlags(keys.Join("receiver-ca.pem"))) {
    std::ofstream(keys.Join("receiver-ca.pem")) << Slurp(world.ca_file());
    admin = world.Client("w-admin", kTenant, Role::kAdmin);
  }
  static TempDir NewDir() {
    absl::StatusOr<TempDir> d = TempDir::Create("webhooks");
    REQUIRE(d.ok());
    return *std::move(d);
  }
  // vouchctl webhooks add; returns its JSON answer.
  nlohmann::json Add(const std::string& name, const Receiver& receiver,
                     std::vector<std::string> extra) {
    std::vector<std::string> args = {"-o", "json",  "webhooks",    "add",
                                     name, "--url", receiver.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::RunResult r = world.Ctl(admin, args);
    INFO(r.err);
    REQUIRE(r.status.Success());
    return nlohmann::json::parse(r.out);
  }
  TempDir keys;
  World world;
  std::string admin;
};

nlohmann::json GetWebhookVia(WebhookWorld& w, ServerProcess& verifier,
                             const std::string& name) {
  testing::RunResult r = testing::RunCapture(
      {VOUCHCTL_BIN, "--server", verifier.address(), "--tls-dir", w.admin, "-o",
       "json", "webhooks", "get", name});
  INFO(r.err);
  REQUIRE(r.status.Success());
  return nlohmann::json::parse(r.out);
}

// Seconds from the event's commit (its CloudEvent time) to its receipt.
double DeliveryDelay(const nlohmann::json& delivery) {
  absl::Time at;
  std::string err;
  REQUIRE(absl::ParseTime(absl::RFC3339_full,
                          delivery["event"]["time"].get<std::string>(), &at,
                          &err));
  return delivery["received_at"].get<double>() - absl::ToUnixMicros(at) / 1e6;
}

TEST_CASE(
    "webhooks: a pass -> fail reaches the receiver signed within 2 s, and a "
    "wrong secret fails the receiver's check",
    "[e2e][pg][tpm][webhooks]") {
  WebhookWorld w(/*tpms=*/1);
  Receiver good(w.world, "good");
  Receiver wrong(w.world, "wrong");
  // A generated secret, printed once by add.
  const nlohmann::json added = w.Add("siem", good, {"--states", "fail"});
  REQUIRE(added.contains("secret"));
  const std::string secret = added["secret"];
  CHECK(secret.rfind("whsec_", 0) == 0);
  CHECK(added["states"] == nlohmann::json::array({"fail"}));
  // ... and never again.
  CHECK(!GetWebhook(w.world, w.admin, "siem").contains("secret"));
  good.Start(secret);
  // The second receiver expects another secret than the subscription's.
  w.Add("wrong", wrong,
        {"--secret-file", WriteSecret(w.world, "wrong", kSecret)});
  wrong.Start(kOtherSecret);

  const std::string viewer = w.world.Client("w-viewer", kTenant, Role::kViewer);
  AgentOnTpm& a = w.world.AddAgent(kTenant, w.admin, "webhook-policy");
  REQUIRE(Eventually([&] { return w.world.State(viewer, a) == "pass"; }));
  Tamper(a);
  REQUIRE(Eventually([&] { return !good.Deliveries().empty(); }));
  const std::vector<nlohmann::json> got = good.Deliveries();
  REQUIRE(got.size() == 1);  // --states fail: the pending -> pass is not sent
  const nlohmann::json& d = got[0];
  INFO(d.dump());
  CHECK(d["valid"] == true);
  CHECK(d["content_type"] == "application/cloudevents+json");
  CHECK(d["event"]["specversion"] == "1.0");
  CHECK(d["event"]["type"] == "dev.vouch.agent.state_changed.v1");
  CHECK(d["event"]["subject"] == a.id);
  CHECK(d["id"] == d["event"]["id"]);
  CHECK(d["event"]["data"]["previous_state"] == "pass");
  CHECK(d["event"]["data"]["state"] == "fail");
  CHECK(d["event"]["data"]["tenant"] == kTenant);
  CHECK(!d["event"]["data"]["failures"].empty());
  CHECK(DeliveryDelay(d) < 2.0);

  // The receiver with the other secret refuses every delivery (401): the
  // verifier keeps the event and retries; get shows it.
  REQUIRE(Eventually([&] { return wrong.Deliveries().size() >= 2; }));
  for (const nlohmann::json& x : wrong.Deliveries()) CHECK(x["valid"] == false);
  const nlohmann::json state = GetWebhook(w.world, w.admin, "wrong");
  INFO(state.dump());
  CHECK(state["delivered"] == 0);
  CHECK(state["attempts"].get<int>() >= 1);
  CHECK(state["last_error"] == "HTTP 401");
  CHECK(!state["failing_since"].is_null());
  const nlohmann::json ok = GetWebhook(w.world, w.admin, "siem");
  CHECK(ok["delivered"] == 1);
  CHECK(ok["attempts"] == 0);
}

TEST_CASE(
    "webhooks: a receiver that was down gets every event, in order, none "
    "missing",
    "[e2e][pg][tpm][webhooks]") {
  WebhookWorld w(/*tpms=*/2);
  Receiver receiver(w.world, "late");
  w.Add("late", receiver,
        {"--secret-file", WriteSecret(w.world, "late", kSecret)});
  const std::string viewer = w.world.Client("w-viewer", kTenant, Role::kViewer);
  // Down while two agents enroll and pass, and one of them fails.
  const auto down_since = std::chrono::steady_clock::now();
  AgentOnTpm& a = w.world.AddAgent(kTenant, w.admin, "policy-a");
  AgentOnTpm& b = w.world.AddAgent(kTenant, w.admin, "policy-b");
  REQUIRE(Eventually([&] { return w.world.State(viewer, a) == "pass"; }));
  REQUIRE(Eventually([&] { return w.world.State(viewer, b) == "pass"; }));
  Tamper(a);
  REQUIRE(Eventually([&] { return w.world.State(viewer, a) == "fail"; }));
  const nlohmann::json blocked = GetWebhook(w.world, w.admin, "late");
  INFO(blocked.dump());
  CHECK(blocked["delivered"] == 0);
  CHECK(blocked["attempts"].get<int>() >= 1);
  CHECK(!blocked["last_error"].get<std::string>().empty());
  // Down for at least 30 s in all (retries back off to retry_max meanwhile).
  const double left = 30 - SecondsSince(down_since);
  if (left > 0) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<int>(left * 1000)));
  }
  receiver.Start(kSecret);

  const auto committed = CommittedEvents(w.world);
  REQUIRE(committed.size() >= 3);  // pending -> pass twice, pass -> fail
  REQUIRE(Eventually(
      [&] { return receiver.Deliveries().size() >= committed.size(); }));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // Every committed event once, in the log's order (so in order per agent).
  const std::vector<nlohmann::json> got = receiver.Deliveries();
  std::vector<std::pair<std::string, std::string>> delivered;
  std::set<std::string> ids;
  for (const nlohmann::json& d : got) {
    CHECK(d["valid"] == true);
    ids.insert(d["id"].get<std::string>());
    delivered.emplace_back(d["event"]["subject"], d["event"]["data"]["state"]);
  }
  CHECK(ids.size() == got.size());
  CHECK(delivered == CommittedEvents(w.world));
  std::map<std::string, std::vector<std::string>> per_agent;
  for (const auto& [agent, st] : delivered) per_agent[agent].push_back(st);
  CHECK(per_agent[a.id].back() == "fail");
  const nlohmann::json after = GetWebhook(w.world, w.admin, "late");
  CHECK(after["delivered"].get<size_t>() == got.size());
  CHECK(after["attempts"] == 0);
  CHECK(after["dead_lettered"] == 0);
  CHECK(after["failed_attempts"].get<int>() >= 1);
}

TEST_CASE(
    "webhooks: a verifier killed mid-delivery leaves the event to another "
    "verifier, with the same id",
    "[e2e][pg][tpm][webhooks]") {
  WebhookWorld w(/*tpms=*/1);
  Receiver receiver(w.world, "kill");
  w.Add("kill", receiver,
        {"--states", "fail", "--secret-file",
         WriteSecret(w.world, "kill", kSecret)});
  // The first request is held unanswered for 60 s.
  receiver.Start(kSecret, /*hang_first=*/60);
  const std::string viewer = w.world.Client("w-viewer", kTenant, Role::kViewer);
  AgentOnTpm& a = w.world.AddAgent(kTenant, w.admin, "kill-policy");
  REQUIRE(Eventually([&] { return w.world.State(viewer, a) == "pass"; }));
  Tamper(a);
  REQUIRE(Eventually([&] { return !receiver.Deliveries().empty(); }));
  // Mid-delivery: the verifier waits for the receiver's answer.
  w.world.verifier().Kill();
  const nlohmann::json first = receiver.Deliveries().at(0);
  CHECK(first["hung"] == true);
  CHECK(first["valid"] == true);

  // Another verifier of the pool takes the subscription once the dead
  // one's lease runs out, and delivers the event again.
  std::vector<std::string> flags = WebhookFlags(w.keys.Join("receiver-ca.pem"));
  flags.insert(flags.end(), {"--verifier-id", "v2"});
  ServerProcess v2(w.world.dir(), w.world.pg(), w.world.tls(),
                   VOUCH_VERIFIER_BIN, "verifier", "v2", flags);
  REQUIRE(Eventually([&] { return receiver.Deliveries().size() >= 2; }));
  const nlohmann::json again = receiver.Deliveries().at(1);
  CHECK(again["hung"] == false);
  CHECK(again["valid"] == true);
  CHECK(again["id"] == first["id"]);
  CHECK(again["event"] == first["event"]);
  CHECK(again["event"]["data"]["state"] == "fail");
  const nlohmann::json state = GetWebhookVia(w, v2, "kill");
  CHECK(state["owner"] == "v2");
  CHECK(state["delivered"] == 1);
}

}  // namespace
}  // namespace vouch::authz
