// The pure parts of webhook delivery (core/webhook): subscription input
// checks, the CloudEvents rendering, the Standard Webhooks signature and
// the back-off ([core][webhooks]).
#include "core/webhook/webhook.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "vouch/v1/attestation.pb.h"

namespace vouch::core::webhook {
namespace {

TEST_CASE("webhooks: signatures follow the Standard Webhooks scheme",
          "[core][webhooks]") {
  // The example of the Standard Webhooks specification (signature scheme
  // section): secret, msg id, timestamp, payload and the signature.
  absl::StatusOr<std::string> key =
      SecretKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  REQUIRE(key.ok());
  CHECK(Sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
             "{\"test\": 2432232314}") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Every part is signed: another id, time, body or key changes it.
  const std::string base = Sign(*key, "a", 1, "body");
  CHECK(Sign(*key, "b", 1, "body") != base);
  CHECK(Sign(*key, "a", 2, "body") != base);
  CHECK(Sign(*key, "a", 1, "bodY") != base);
  CHECK(Sign(std::string(24, 'k'), "a", 1, "body") != base);
}

TEST_CASE("webhooks: secrets are whsec_ and base64 of 24..64 bytes",
          "[core][webhooks]") {
  const std::string generated = SecretFromBytes(std::string(32, '\x07'));
  absl::StatusOr<std::string> key = SecretKey(generated);
  REQUIRE(key.ok());
  CHECK(*key == std::string(32, '\x07'));
  CHECK(!SecretKey("").ok());
  CHECK(!SecretKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok());  // no prefix
  CHECK(!SecretKey("whsec_not base64!").ok());
  CHECK(!SecretKey(SecretFromBytes(std::string(8, 'x'))).ok());   // short
  CHECK(!SecretKey(SecretFromBytes(std::string(65, 'x'))).ok());  // long
  CHECK(!SecretKey("whsec_" + std::string(10000, 'A')).ok());
}

TEST_CASE("webhooks: names, URLs and states are checked", "[core][webhooks]") {
  CHECK(ValidateName("siem-1").ok());
  CHECK(!ValidateName("").ok());
  CHECK(!ValidateName("-x").ok());
  CHECK(!ValidateName("Upper").ok());
  CHECK(!ValidateName("a b").ok());
  CHECK(!ValidateName(std::string(64, 'a')).ok());
  CHECK(ValidateUrl("https://hooks.example:8443/vouch?x=1").ok());
  CHECK(ValidateUrl("https://127.0.0.1:1234/").ok());
  CHECK(!ValidateUrl("http://hooks.example/").ok());
  CHECK(!ValidateUrl("https://").ok());
  CHECK(!ValidateUrl("https:///path").ok());
  CHECK(!ValidateUrl("https://user:pw@hooks.example/").ok());
  CHECK(!ValidateUrl("https://hooks.example/a b").ok());
  CHECK(!ValidateUrl("https://hooks.example/\n").ok());
  CHECK(!ValidateUrl("https://h/" + std::string(3000, 'a')).ok());
  CHECK(!ValidateUrl("file:///etc/passwd").ok());

  absl::StatusOr<std::vector<AgentState>> s = ParseStates("fail,timeout");
  REQUIRE(s.ok());
  CHECK(*s == std::vector<AgentState>{v1::ATTESTATION_STATE_FAIL,
                                      v1::ATTESTATION_STATE_TIMEOUT});
  CHECK(ParseStates("")->empty());
  CHECK(!ParseStates("fail,fail").ok());
  CHECK(!ParseStates("failed").ok());
  CHECK(!ParseStates("unenrolled").ok());
  CHECK(!ParseStates(",").ok());
}

TEST_CASE("webhooks: a state change renders as a CloudEvents 1.0 event",
          "[core][webhooks]") {
  v1::Verdict verdict;
  v1::Failure* f = verdict.add_failures();
  f->set_code(v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY);
  f->set_detail("/usr/bin/evil");
  Event e;
  e.id = EventId(1234, 56);
  e.tenant = "acme";
  e.agent_id = "node-1";
  e.previous_state = v1::ATTESTATION_STATE_PASS;
  e.state = v1::ATTESTATION_STATE_FAIL;
  e.cause = "verdict";
  e.attestation_id = "att-1";
  e.failures = verdict.SerializeAsString();
  e.at = absl::FromUnixMicros(1700000000123456);
  const nlohmann::json j = nlohmann::json::parse(RenderCloudEvent(e));
  CHECK(j["specversion"] == "1.0");
  CHECK(j["id"] == "evt-1234-56");
  CHECK(j["id"] == EventId(1234, 56));  // stable: the same on every retry
  CHECK(j["source"] == "/vouch/tenants/acme");
  CHECK(j["type"] == kEventType);
  CHECK(j["subject"] == "node-1");
  CHECK(j["time"] == "2023-11-14T22:13:20.123456Z");
  CHECK(j["datacontenttype"] == "application/json");
  CHECK(j["data"]["previous_state"] == "pass");
  CHECK(j["data"]["state"] == "fail");
  CHECK(j["data"]["cause"] == "verdict");
  CHECK(j["data"]["attestation_id"] == "att-1");
  REQUIRE(j["data"]["failures"].size() == 1);
  CHECK(j["data"]["failures"][0]["detail"] == "/usr/bin/evil");
  CHECK(!j["data"].contains("failures_truncated"));

  // Bounded: many long failures are cut, and say so.
  for (int i = 0; i < 100; ++i) {
    v1::Failure* g = verdict.add_failures();
    g->set_code(v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY);
    g->set_detail(std::string(4000, 'x'));
  }
  e.failures = verdict.SerializeAsString();
  const std::string big = RenderCloudEvent(e);
  CHECK(big.size() < 24 * 1024);
  const nlohmann::json k = nlohmann::json::parse(big);
  CHECK(k["data"]["failures"].size() == kMaxFailures);
  CHECK(k["data"]["failures_truncated"] == true);
  // Undecodable failures (never from our store) render as none.
  e.failures = "\xff\xff garbage";
  CHECK(nlohmann::json::parse(RenderCloudEvent(e))["data"]["failures"].empty());
}

TEST_CASE("webhooks: back-off doubles to a cap with equal jitter",
          "[core][webhooks]") {
  const absl::Duration base = absl::Seconds(1);
  const absl::Duration cap = absl::Minutes(5);
  CHECK(Backoff(1, base, cap, 0.0) == absl::Milliseconds(500));
  CHECK(Backoff(1, base, cap, 0.999999) < absl::Seconds(1));
  CHECK(Backoff(2, base, cap, 0.0) == absl::Seconds(1));
  CHECK(Backoff(4, base, cap, 0.0) == absl::Seconds(4));
  CHECK(Backoff(4, base, cap, 0.5) == absl::Seconds(6));
  CHECK(Backoff(20, base, cap, 0.0) == absl::Seconds(150));
  CHECK(Backoff(1000000, base, cap, 1.0) == cap);
  CHECK(Backoff(0, base, cap, 0.0) == absl::Milliseconds(500));
  CHECK(Backoff(3, base, cap, -7.0) == absl::Seconds(2));  // clamped
}

}  // namespace
}  // namespace vouch::core::webhook
