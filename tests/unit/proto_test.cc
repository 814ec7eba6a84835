// The generated wire contract: one message of each service survives a
// serialize/parse round trip, the service descriptors hold the methods the
// architecture names, and a generated stub talks to a generated service over
// a real gRPC channel on 127.0.0.1.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "server/proto_time.h"
#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/attestation.grpc.pb.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::v1 {
namespace {

using google::protobuf::util::MessageDifferencer;

template <typename T>
T RoundTrip(const T& in) {
  std::string wire;
  REQUIRE(in.SerializeToString(&wire));
  T out;
  REQUIRE(out.ParseFromString(wire));
  return out;
}

TEST_CASE("Registrar message round-trips", "[core][proto]") {
  RegisterRequest req;
  req.set_agent_id("node-1");
  req.set_ek_public(std::string("\x01\x1a\x00\x01", 4));
  req.set_ek_certificate(std::string(700, '\x30'));
  req.add_ek_intermediates("intermediate-der");
  req.set_aik_public(std::string("\x00\x23", 2));
  req.set_agent_version("0.1.0");
  std::string wire;
  REQUIRE(req.SerializeToString(&wire));
  CHECK(wire.size() > 700);
  const RegisterRequest back = RoundTrip(req);
  CHECK(MessageDifferencer::Equals(req, back));
  CHECK(back.ek_public().size() == 4);  // Embedded NUL bytes survive.
}

TEST_CASE("Attestation message round-trips", "[core][proto]") {
  AgentMessage msg;
  Evidence* ev = msg.mutable_evidence();
  ev->set_quote(
      std::string("\xff"
                  "TCG",
                  4));
  ev->set_signature("sig");
  PcrBankValues* bank = ev->add_pcr_values();
  bank->set_hash_alg(HASH_ALGORITHM_SHA256);
  PcrValue* pcr = bank->add_values();
  pcr->set_index(10);
  pcr->set_digest(std::string(32, '\x0a'));
  ev->mutable_ima_entries()->set_format(IMA_LOG_FORMAT_BINARY);
  ev->mutable_ima_entries()->set_first_index(1234);
  ev->mutable_ima_entries()->set_data("entries");
  const AgentMessage back = RoundTrip(msg);
  CHECK(MessageDifferencer::Equals(msg, back));
  CHECK(back.message_case() == AgentMessage::kEvidence);
  CHECK(back.evidence().ima_entries().first_index() == 1234);

  // A Challenge without ima_from is distinguishable from ima_from = 0
  // (entry 0 after a reboot): the field has presence.
  Challenge c;
  CHECK_FALSE(RoundTrip(c).has_ima_from());
  c.set_ima_from(0);
  CHECK(RoundTrip(c).has_ima_from());
}

TEST_CASE("Admin message round-trips", "[core][proto]") {
  EnrollAgentRequest req;
  req.set_tenant("acme");
  req.set_agent_id("node-1");
  req.mutable_runtime_policy()->set_name("web-servers");
  req.mutable_runtime_policy()->set_version(3);
  req.mutable_interval()->set_seconds(30);
  req.set_hash_alg(HASH_ALGORITHM_SHA256);
  CHECK(MessageDifferencer::Equals(req, RoundTrip(req)));

  WatchEvent event;
  event.set_resume_token("tok-42");
  event.set_agent_id("node-1");
  event.mutable_heartbeat();
  const WatchEvent back = RoundTrip(event);
  CHECK(MessageDifferencer::Equals(event, back));
  CHECK(back.event_case() == WatchEvent::kHeartbeat);
}

TEST_CASE("services declare the methods of the architecture", "[core][proto]") {
  const auto* attestation = Attestation::service_full_name();
  CHECK(std::string(attestation) == "vouch.v1.Attestation");
  const google::protobuf::ServiceDescriptor* att =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "vouch.v1.Attestation");
  REQUIRE(att != nullptr);
  const auto* attest = att->FindMethodByName("Attest");
  REQUIRE(attest != nullptr);
  CHECK(attest->client_streaming());
  CHECK(attest->server_streaming());

  const auto* reg =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "vouch.v1.Registrar");
  REQUIRE(reg != nullptr);
  for (const char* m : {"Register", "Activate", "GetRegisteredAgent",
                        "ListRegisteredAgents", "DeleteRegisteredAgent"}) {
    INFO(m);
    CHECK(reg->FindMethodByName(m) != nullptr);
  }
  const auto* admin =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "vouch.v1.Admin");
  REQUIRE(admin != nullptr);
  for (const char* m :
       {"EnrollAgent", "UnenrollAgent", "GetAgentStatus", "ListAgents", "Watch",
        "AddPolicy", "GetPolicy", "ListPolicies", "UpdatePolicy",
        "RemovePolicy", "ImportPolicy", "GetAttestationHistory"}) {
    INFO(m);
    CHECK(admin->FindMethodByName(m) != nullptr);
  }
  CHECK(admin->FindMethodByName("Watch")->server_streaming());
}

// A generated service and stub over a real channel (port chosen by the OS).
class EchoRegistrar final : public Registrar::Service {
  grpc::Status Register(grpc::ServerContext*, const RegisterRequest* req,
                        RegisterResponse* resp) override {
    if (req->agent_id().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "agent_id is empty");
    }
    resp->set_credential_blob(req->ek_public());
    resp->set_encrypted_secret(req->aik_public());
    return grpc::Status::OK;
  }
};

TEST_CASE("generated stub and service talk over gRPC", "[core][proto]") {
  EchoRegistrar service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  REQUIRE(port > 0);

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  auto stub = Registrar::NewStub(channel);
  RegisterRequest req;
  req.set_agent_id("node-1");
  req.set_ek_public("ek");
  req.set_aik_public("aik");
  RegisterResponse resp;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Status st = stub->Register(&ctx, req, &resp);
    REQUIRE(st.ok());
  }
  CHECK(resp.credential_blob() == "ek");
  CHECK(resp.encrypted_secret() == "aik");
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    RegisterRequest empty;
    grpc::Status st = stub->Register(&ctx, empty, &resp);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  server->Shutdown();
}

}  // namespace
}  // namespace vouch::v1

TEST_CASE("absl times become Timestamp and Duration values", "[core][proto]") {
  google::protobuf::Timestamp ts;
  vouch::server::SetTimestamp(absl::FromUnixMicros(1700000000123456), &ts);
  CHECK(ts.seconds() == 1700000000);
  CHECK(ts.nanos() == 123456000);
  // Before 1970 the nanos stay non-negative, as Timestamp requires.
  vouch::server::SetTimestamp(absl::FromUnixMicros(-1500000), &ts);
  CHECK(ts.seconds() == -2);
  CHECK(ts.nanos() == 500000000);
  google::protobuf::Duration d;
  vouch::server::SetDuration(absl::Milliseconds(61250), &d);
  CHECK(d.seconds() == 61);
  CHECK(d.nanos() == 250000000);
}
