// File: e2e/registrar_client.h
// The end-to-end tests' own registrar client: a gRPC stub with a given
// certificate, and a test agent driving EsysTpm on a swtpm directly (for
// the cases an honest vouch-agent never produces, and to activate another
// AIK of the same TPM). Test-only; not thread-safe.
#ifndef VOUCH_TESTS_E2E_REGISTRAR_CLIENT_H_
#define VOUCH_TESTS_E2E_REGISTRAR_CLIENT_H_

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "agent/registration.h"
#include "common/bytes.h"
#include "core/tpm/credential.h"
#include "harness/swtpm.h"
#include "sdk/channel.h"
#include "tpm/esys_tpm.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch {

// `stem`.pem / `stem`.key in `dir` ("agent" or "client").
inline std::unique_ptr<v1::Registrar::Stub> Stub(const std::string& address,
                                                 const std::string& dir,
                                                 const std::string& stem) {
  sdk::ClientOptions o;
  o.server = address;
  o.ca_file = dir + "/ca.pem";
  o.cert_file = dir + "/" + stem + ".pem";
  o.key_file = dir + "/" + stem + ".key";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = sdk::CreateChannel(o);
  REQUIRE(ch.ok());
  return v1::Registrar::NewStub(*ch);
}

template <typename Req, typename Resp, typename Method>
inline grpc::Status Call(v1::Registrar::Stub& stub, Method method,
                         const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return (stub.*method)(&ctx, req, resp);
}

// The test's own agent: EsysTpm on a swtpm, talking gRPC directly.
struct TestAgent {
  std::unique_ptr<tpm::EsysTpm> tpm;
  agent::Identity id;
  TestAgent(const testing::Swtpm& swtpm, const std::string& agent_id,
            const std::string& state_dir) {
    absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> t =
        tpm::EsysTpm::Open(swtpm.tcti());
    REQUIRE(t.ok());
    tpm = *std::move(t);
    agent::IdentityOptions o;
    o.configured_agent_id = agent_id;
    o.state_dir = state_dir;
    mkdir(state_dir.c_str(), 0700);
    absl::StatusOr<agent::Identity> i = agent::LoadIdentity(*tpm, o);
    REQUIRE(i.ok());
    id = *i;
  }
  v1::RegisterRequest Request() const {
    v1::RegisterRequest r;
    r.set_agent_id(id.agent_id);
    r.set_ek_public(std::string(AsString(id.ek_public)));
    r.set_ek_certificate(std::string(AsString(id.ek_certificate)));
    r.set_aik_public(std::string(AsString(id.aik_public)));
    r.set_agent_version("test");
    return r;
  }
  std::string Proof(const v1::RegisterResponse& c) {
    absl::StatusOr<Bytes> secret = tpm->ActivateCredential(
        AsBytes(c.credential_blob()), AsBytes(c.encrypted_secret()));
    REQUIRE(secret.ok());
    absl::StatusOr<Bytes> mac =
        core::tpm::ActivationProof(*secret, id.agent_id);
    REQUIRE(mac.ok());
    return std::string(AsString(*mac));
  }
  // Register, then Activate with the TPM's proof: OK, or the status of
  // the call that failed.
  grpc::Status RegisterAndActivate(v1::Registrar::Stub& stub) {
    v1::RegisterResponse challenge;
    grpc::Status s =
        Call(stub, &v1::Registrar::Stub::Register, Request(), &challenge);
    if (!s.ok()) return s;
    v1::ActivateRequest activate;
    activate.set_agent_id(id.agent_id);
    activate.set_hmac(Proof(challenge));
    v1::ActivateResponse resp;
    return Call(stub, &v1::Registrar::Stub::Activate, activate, &resp);
  }
};

}  // namespace vouch

#endif  // VOUCH_TESTS_E2E_REGISTRAR_CLIENT_H_
