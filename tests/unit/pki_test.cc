// The identities in client certificates (common/principal.h), the install's
// CA (sdk/ca.h) and the shared server pieces (server/*.h): URI parsing,
// tenant resolution, issued certificates that verify, and real mTLS
// handshakes that refuse what they must.
#include <grpcpp/grpcpp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "common/config.h"
#include "common/file.h"
#include "common/openssl_handle.h"
#include "common/principal.h"
#include "harness/temp_dir.h"
#include "sdk/ca.h"
#include "sdk/channel.h"
#include "server/auth.h"
#include "server/rate_limiter.h"
#include "server/tls.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch {
namespace {

using testing::TempDir;

X509Ptr LoadPem(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileUpTo(path, 1 << 16);
  REQUIRE(pem.ok());
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert);
  return cert;
}

bool Verifies(const std::string& ca_path, const std::string& cert_path) {
  X509Ptr ca = LoadPem(ca_path);
  X509Ptr cert = LoadPem(cert_path);
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  const bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

absl::Status InitCa(const std::string& dir) {
  sdk::CaInitOptions opts;
  opts.dir = dir;
  return sdk::InitCa(opts);
}

sdk::IssueOptions Opts(const std::string& ca, sdk::CertKind kind,
                       const std::string& name,
                       const std::string& tenant = "default") {
  sdk::IssueOptions opts;
  opts.ca_dir = ca;
  opts.kind = kind;
  opts.name = name;
  opts.tenant = tenant;
  return opts;
}

absl::Status Issue(const std::string& ca, sdk::CertKind kind,
                   const std::string& name,
                   const std::string& tenant = "default") {
  return sdk::IssueCertificate(Opts(ca, kind, name, tenant));
}

TEST_CASE("identity URIs parse and refuse what is malformed", "[core][pki]") {
  absl::StatusOr<Grant> g = ParseGrantUri("vouch://acme/agent/node-1.example");
  REQUIRE(g.ok());
  CHECK(g->tenant == "acme");
  CHECK(g->role == Role::kAgent);
  CHECK(g->name == "node-1.example");
  CHECK(GrantUri(*g) == "vouch://acme/agent/node-1.example");
  CHECK(ParseGrantUri("vouch://acme/admin/alice@example.org").ok());
  for (const char* bad :
       {"vouch://acme/agent/", "vouch://Acme/agent/x", "vouch://-a/agent/x",
        "vouch://acme/root/x", "vouch://acme/agent/x/y", "https://acme/agent/x",
        "vouch://acme/agent/.x", "vouch://acme/agent/a@b", "vouch:///agent/x",
        "vouch://acme/agent/a b"}) {
    INFO(bad);
    CHECK(absl::IsInvalidArgument(ParseGrantUri(bad).status()));
  }
  CHECK_FALSE(
      ParseGrantUri("vouch://acme/agent/" + std::string(129, 'a')).ok());
  CHECK_FALSE(
      ParseGrantUri("vouch://" + std::string(64, 'a') + "/agent/x").ok());
}

TEST_CASE("tenant resolution follows common.proto", "[core][pki]") {
  Principal one{{{"acme", Role::kOperator, "bob"}}};
  CHECK(*one.ResolveTenant("", Role::kViewer) == "acme");
  CHECK(*one.ResolveTenant("acme", Role::kOperator) == "acme");
  CHECK(absl::IsPermissionDenied(
      one.ResolveTenant("acme", Role::kAdmin).status()));
  CHECK(absl::IsPermissionDenied(
      one.ResolveTenant("other", Role::kViewer).status()));
  CHECK_FALSE(one.Agent().has_value());

  Principal two{
      {{"acme", Role::kAdmin, "bob"}, {"beta", Role::kViewer, "bob"}}};
  CHECK(absl::IsInvalidArgument(two.ResolveTenant("", Role::kViewer).status()));
  // Only one tenant grants admin, so it is unambiguous for admin calls.
  CHECK(*two.ResolveTenant("", Role::kAdmin) == "acme");
  CHECK(*two.ResolveTenant("beta", Role::kViewer) == "beta");

  Principal agent{{{"acme", Role::kAgent, "node-1"}}};
  REQUIRE(agent.Agent().has_value());
  CHECK(agent.Agent()->name == "node-1");
  // An agent holds no operator role anywhere.
  CHECK(absl::IsPermissionDenied(
      agent.ResolveTenant("", Role::kViewer).status()));
  CHECK(absl::IsPermissionDenied(
      agent.ResolveTenant("acme", Role::kViewer).status()));
}

TEST_CASE("the CA issues certificates that verify and carry identities",
          "[core][pki]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("ca-");
  REQUIRE(dir.ok());
  const std::string ca = dir->Join("ca");
  REQUIRE(InitCa(ca).ok());
  CHECK(absl::IsAlreadyExists(InitCa(ca)));

  sdk::IssueOptions agent = Opts(ca, sdk::CertKind::kAgent, "node-1", "acme");
  REQUIRE(sdk::IssueCertificate(agent).ok());
  const std::string agent_pem = ca + "/agents/node-1/agent.pem";
  CHECK(Verifies(ca + "/ca.pem", agent_pem));
  absl::StatusOr<Principal> p =
      PrincipalFromCertificate(LoadPem(agent_pem).get());
  REQUIRE(p.ok());
  REQUIRE(p->Agent().has_value());
  CHECK(p->Agent()->tenant == "acme");
  // Never overwrites a key.
  CHECK(absl::IsAlreadyExists(sdk::IssueCertificate(agent)));

  sdk::IssueOptions client = Opts(ca, sdk::CertKind::kClient, "alice");
  client.roles = {Role::kViewer, Role::kAdmin};
  REQUIRE(sdk::IssueCertificate(client).ok());
  p = PrincipalFromCertificate(LoadPem(ca + "/clients/alice/client.pem").get());
  REQUIRE(p.ok());
  CHECK(p->grants.size() == 2);
  CHECK(*p->ResolveTenant("", Role::kAdmin) == "default");

  sdk::IssueOptions server = Opts(ca, sdk::CertKind::kServer, "localhost");
  server.sans = {"127.0.0.1", "::1"};
  REQUIRE(sdk::IssueCertificate(server).ok());
  CHECK(Verifies(ca + "/ca.pem", ca + "/servers/localhost/server.pem"));
  // A server certificate names no identity.
  CHECK(absl::IsPermissionDenied(
      PrincipalFromCertificate(
          LoadPem(ca + "/servers/localhost/server.pem").get())
          .status()));

  // Bad input is refused before anything is written.
  CHECK(absl::IsInvalidArgument(Issue(ca, sdk::CertKind::kAgent, "bad name")));
  CHECK(absl::IsInvalidArgument(Issue(ca, sdk::CertKind::kServer, "a b")));
  CHECK(absl::IsInvalidArgument(
      Issue(dir->Join("nope"), sdk::CertKind::kAgent, "x")));

  // A certificate from another CA does not verify against this one.
  const std::string other = dir->Join("other");
  REQUIRE(InitCa(other).ok());
  REQUIRE(Issue(other, sdk::CertKind::kAgent, "node-1").ok());
  CHECK_FALSE(Verifies(ca + "/ca.pem", other + "/agents/node-1/agent.pem"));
}

TEST_CASE("rate limiter: per key, refills, bounded memory", "[core][pki]") {
  server::RateLimiter limiter(/*per_minute=*/2, /*max_keys=*/2);
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  CHECK(limiter.Allow("a", t0));
  CHECK(limiter.Allow("a", t0));
  CHECK_FALSE(limiter.Allow("a", t0));
  CHECK(limiter.Allow("b", t0));
  // Full and nobody idle: a third key is refused (fail closed).
  CHECK_FALSE(limiter.Allow("c", t0));
  // Half a minute refills one token of "a".
  CHECK(limiter.Allow("a", t0 + absl::Seconds(30)));
  CHECK_FALSE(limiter.Allow("a", t0 + absl::Seconds(30)));
  // After a minute every bucket is full again, so idle keys are dropped.
  CHECK(limiter.Allow("c", t0 + absl::Minutes(2)));
}

TEST_CASE("token bucket: burst, refill, retry hint, unlimited", "[core][pki]") {
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  server::TokenBucket bucket(/*per_second=*/10, /*burst=*/3);
  CHECK(bucket.RetryAfter(t0) == absl::ZeroDuration());
  CHECK(bucket.Take(t0));
  CHECK(bucket.Take(t0));
  CHECK(bucket.Take(t0));
  CHECK_FALSE(bucket.Take(t0));
  // Empty: one token comes after 1/10 s.
  auto near = [](absl::Duration a, absl::Duration b) {
    return absl::AbsDuration(a - b) < absl::Microseconds(1);
  };
  CHECK(near(bucket.RetryAfter(t0), absl::Milliseconds(100)));
  CHECK(near(bucket.RetryAfter(t0 + absl::Milliseconds(40)),
             absl::Milliseconds(60)));
  CHECK_FALSE(bucket.Take(t0 + absl::Milliseconds(50)));
  CHECK(bucket.Take(t0 + absl::Milliseconds(101)));
  CHECK_FALSE(bucket.Take(t0 + absl::Milliseconds(101)));
  // A clock that goes back refills nothing.
  CHECK_FALSE(bucket.Take(t0));
  // A long pause refills at most the burst.
  const absl::Time t1 = t0 + absl::Hours(1);
  for (int i = 0; i < 3; ++i) CHECK(bucket.Take(t1));
  CHECK_FALSE(bucket.Take(t1));

  server::TokenBucket unlimited(/*per_second=*/0, /*burst=*/0);
  for (int i = 0; i < 1000; ++i) CHECK(unlimited.Take(t0));
  CHECK(unlimited.RetryAfter(t0) == absl::ZeroDuration());
}

TEST_CASE("peer host from gRPC peer strings", "[core][pki]") {
  CHECK(server::PeerHost("ipv4:10.1.2.3:5000") == "10.1.2.3");
  CHECK(server::PeerHost("ipv6:[::1]:5000") == "::1");
  CHECK(server::PeerHost("unix:/tmp/s") == "unix:/tmp/s");
}

// Answers GetRegisteredAgent with the caller's identity, so the test sees
// what the server saw.
class WhoAmI final : public v1::Registrar::Service {
  grpc::Status GetRegisteredAgent(grpc::ServerContext* ctx,
                                  const v1::GetRegisteredAgentRequest*,
                                  v1::RegisteredAgent* out) override {
    absl::StatusOr<Principal> p = server::CallerPrincipal(*ctx->auth_context());
    if (!p.ok()) return server::ToGrpcStatus(p.status());
    out->set_agent_id(p->grants[0].name);
    out->set_tenant(p->grants[0].tenant);
    return grpc::Status::OK;
  }
};

grpc::Status Call(const std::string& address, const sdk::ClientOptions& base,
                  v1::RegisteredAgent* out) {
  sdk::ClientOptions opts = base;
  opts.server = address;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      sdk::CreateChannel(opts);
  REQUIRE(channel.ok());
  auto stub = v1::Registrar::NewStub(*channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return stub->GetRegisteredAgent(&ctx, {}, out);
}

TEST_CASE("mTLS servers refuse missing, foreign and expired client certs",
          "[core][pki]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("mtls-");
  REQUIRE(dir.ok());
  const std::string ca = dir->Join("ca");
  REQUIRE(InitCa(ca).ok());
  sdk::IssueOptions server_cert = Opts(ca, sdk::CertKind::kServer, "localhost");
  server_cert.sans = {"127.0.0.1"};
  REQUIRE(sdk::IssueCertificate(server_cert).ok());
  REQUIRE(Issue(ca, sdk::CertKind::kAgent, "node-1", "acme").ok());
  sdk::IssueOptions expired = Opts(ca, sdk::CertKind::kAgent, "old");
  expired.validity = absl::Hours(1);
  expired.not_before = absl::Now() - absl::Hours(48);
  REQUIRE(sdk::IssueCertificate(expired).ok());
  const std::string other = dir->Join("other");
  REQUIRE(InitCa(other).ok());
  REQUIRE(Issue(other, sdk::CertKind::kAgent, "node-1", "acme").ok());

  ConfigSchema schema;
  schema.String("tls", "ca_file", "", "")
      .String("tls", "cert_file", "", "")
      .String("tls", "key_file", "", "");
  const std::string srv = ca + "/servers/localhost/";
  absl::StatusOr<Config> cfg = ParseConfigText(
      schema,
      "[tls]\nca_file = \"" + ca + "/ca.pem\"\ncert_file = \"" + srv +
          "server.pem\"\nkey_file = \"" + srv + "server.key\"\n",
      "test.toml");
  REQUIRE(cfg.ok());
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      server::ServerCredentialsFromConfig(*cfg);
  REQUIRE(creds.ok());

  WhoAmI service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", *creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  const std::string address = "127.0.0.1:" + std::to_string(port);

  auto agent_dir = [](const std::string& c, const std::string& name) {
    const std::string d = c + "/agents/" + name + "/";
    sdk::ClientOptions opts;
    opts.ca_file = d + "ca.pem";
    opts.cert_file = d + "agent.pem";
    opts.key_file = d + "agent.key";
    return opts;
  };
  v1::RegisteredAgent who;
  grpc::Status st = Call(address, agent_dir(ca, "node-1"), &who);
  REQUIRE(st.ok());
  CHECK(who.agent_id() == "node-1");
  CHECK(who.tenant() == "acme");

  // Another CA's certificate, an expired one: the handshake fails.
  sdk::ClientOptions foreign = agent_dir(other, "node-1");
  foreign.ca_file = ca + "/ca.pem";  // trusts our server, presents theirs
  CHECK_FALSE(Call(address, foreign, &who).ok());
  CHECK_FALSE(Call(address, agent_dir(ca, "old"), &who).ok());
  // No client certificate at all.
  {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> root = ReadFileUpTo(ca + "/ca.pem", 1 << 16);
    REQUIRE(root.ok());
    ssl.pem_root_certs = *root;
    auto stub = v1::Registrar::NewStub(
        grpc::CreateChannel(address, grpc::SslCredentials(ssl)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    CHECK_FALSE(stub->GetRegisteredAgent(&ctx, {}, &who).ok());
  }
  // The server still serves good clients.
  CHECK(Call(address, agent_dir(ca, "node-1"), &who).ok());
  server->Shutdown();
}

TEST_CASE("port file is written whole", "[core][pki]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("port-");
  REQUIRE(dir.ok());
  REQUIRE(server::WritePortFile(dir->Join("port"), 4242).ok());
  CHECK(*ReadFileUpTo(dir->Join("port"), 64) == "4242\n");
  CHECK(server::WritePortFile("", 1).ok());
  CHECK_FALSE(server::WritePortFile(dir->Join("no/such/port"), 1).ok());
}

}  // namespace
}  // namespace vouch
