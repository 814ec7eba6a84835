// transport_floor: the cheapest possible Attestation server, to measure
// what gRPC + mTLS alone cost per quote on this machine.
//
// It serves Attestation.Attest like vouch-verifier does (callback API, one
// reactor per stream, one write in flight, the same TLS credentials and
// channel arguments) but checks nothing and stores nothing: Hello gets a
// Challenge, each Evidence gets a PASS Verdict of the verifier's shape
// (attestation id, timestamps, the next Challenge with a fresh 32-byte
// nonce), sent straight from OnReadDone. `verifier_load --transport-floor`
// runs it in place of vouch-verifier; its quotes per CPU-second are an upper
// bound for any verifier on the same transport, before the RSA signature
// check, the quote rules and the commit are added.
//
// Usage (what verifier_load passes; other flags are ignored):
//   transport_floor --verifier-listen ADDR --verifier-port-file FILE
//       --tls-ca-file F --tls-cert-file F --tls-key-file F
#include <grpcpp/grpcpp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/app.h"
#include "common/file.h"
#include "server/proto_time.h"
#include "server/tls.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch {
namespace {

v1::Challenge NextChallenge() {
  v1::Challenge c;
  std::string nonce(32, '\0');
  // The real verifier draws nonces from a per-thread RAND_bytes buffer; one
  // call per challenge here costs a little more, which errs high.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), 32) != 1) {
    std::abort();
  }
  c.set_nonce(std::move(nonce));
  server::SetTimestamp(absl::Now() + absl::Minutes(2), c.mutable_expires_at());
  c.set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  v1::PcrBankSelection* bank = c.mutable_pcr_selection()->add_banks();
  bank->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  bank->add_pcr_indices(10);
  c.set_ima_from(0);
  server::SetDuration(absl::Seconds(60), c.mutable_interval());
  server::SetDuration(absl::ZeroDuration(), c.mutable_min_interval());
  return c;
}

class FloorReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  FloorReactor() { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    out_.Clear();
    if (in_.has_evidence()) {
      v1::Verdict* v = out_.mutable_verdict();
      unsigned char id[16];
      if (RAND_bytes(id, sizeof id) != 1) std::abort();
      v->set_attestation_id(absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(id), sizeof id)));
      v->set_state(v1::ATTESTATION_STATE_PASS);
      v->set_agent_state(v1::ATTESTATION_STATE_PASS);
      server::SetTimestamp(absl::Now(), v->mutable_verified_at());
      v->set_ima_next_entry(in_.evidence().ima_entries().first_index());
      *v->mutable_next_challenge() = NextChallenge();
    } else {
      *out_.mutable_challenge() = NextChallenge();
    }
    in_.Clear();
    StartWrite(&out_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    StartRead(&in_);
  }

  void OnDone() override { delete this; }

 private:
  v1::AgentMessage in_;
  v1::VerifierMessage out_;
};

class FloorService final : public v1::Attestation::CallbackService {
  grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>* Attest(
      grpc::CallbackServerContext*) override {
    return new FloorReactor();
  }
};

int Main(int argc, char** argv) {
  // As vouch-verifier does (RunApp, verifier_app.cc): stop signals blocked
  // before gRPC starts its threads, deadlock detection off.
  BlockShutdownSignals();
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  // vouch-verifier's TLS (server/tls.cc): mTLS, client certificate required.
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> ca = ReadPemFile(flags["--tls-ca-file"]);
  absl::StatusOr<std::string> cert = ReadPemFile(flags["--tls-cert-file"]);
  absl::StatusOr<std::string> key = ReadPemFile(flags["--tls-key-file"]);
  if (!ca.ok() || !cert.ok() || !key.ok()) {
    std::cerr << "transport_floor: unreadable TLS files\n";
    return 2;
  }
  ssl.pem_root_certs = *ca;
  pair.cert_chain = *cert;
  pair.private_key = *key;
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::SslServerCredentials(ssl);
  const std::string listen = flags["--verifier-listen"];
  FloorService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, creds, &port);
  // The same channel arguments as vouch-verifier (verifier_app.cc).
  builder.SetMaxReceiveMessageSize(6 << 20);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = server::StartServing(
      builder, port, listen, flags["--verifier-port-file"], "transport_floor");
  if (server == nullptr) return 1;
  WaitForShutdown();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  return 0;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) { return vouch::Main(argc, argv); }
