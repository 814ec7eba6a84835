// The authorization matrix: every RPC of every service the verifier and the
// registrar serve, enumerated from the protobuf service descriptors, is
// called by every kind of caller against real servers (vouch-verifier,
// vouch-registrar, PostgreSQL, mTLS certificates from the SDK's CA code, two
// real agents on swtpm in two tenants). A method missing from the table
// below fails the test until someone decides who may call it.
//
// For each call: a certificate-less, expired or foreign-CA client is refused
// at the TLS handshake (UNAVAILABLE); an agent certificate gets
// PERMISSION_DENIED on operator calls; a viewer gets PERMISSION_DENIED on
// every call needing more; the other tenant's admin gets PERMISSION_DENIED
// naming tenant A and NOT_FOUND (or an empty answer) for A's objects in its
// own tenant; no answer to anyone but tenant A carries A's identifiers;
// tenant A's own callers get real answers (the control that makes the
// refusals mean something).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "authz/world.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/attestation.grpc.pb.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::authz {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;
using google::protobuf::Reflection;
using google::protobuf::ServiceDescriptor;

constexpr char kTenantA[] = "tenant-a";
constexpr char kTenantB[] = "tenant-b";
constexpr char kPolicyA[] = "policy-of-a";
constexpr char kPolicyB[] = "policy-of-b";

// Who may call a method.
enum class Access {
  kAgent,          // agent-facing: the caller's own agent_id only
  kViewer,         // reads
  kOperator,       // changes
  kAdmin,          // destructive registrar changes
  kAnyPrincipal,   // any authenticated caller, agents too (server info)
  kUnimplemented,  // declared, not served yet: UNIMPLEMENTED to everyone
};

// What a method acts on, which decides what another tenant must see.
enum class Scope {
  kObject,  // one named object of tenant A: NOT_FOUND in another tenant
  kList,    // a list or stream of the caller's tenant: nothing of A
  kCreate,  // a new object: lands in the caller's own tenant
  kAgent,   // the calling agent itself
  kPublic,  // nothing of any tenant (the results JWKS): any operator
            // principal, of any tenant, gets the same answer
};

enum class Server { kVerifier, kRegistrar };

// Tenant A's objects that requests aim at.
struct Target {
  std::string agent_id;
  std::string policy;
  std::string policy_content;
  std::string attestation_id;  // A kept record of the agent.
};

struct Rule {
  Server server;
  Access access;
  Scope scope;
  // Fills the method's own fields (beyond tenant, agent_id and name, which
  // the runner sets when the request has them).
  std::function<void(Message&, const Target&)> fill;
};

void SetString(Message& m, const char* field, const std::string& value) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(field);
  REQUIRE(f != nullptr);
  m.GetReflection()->SetString(&m, f, value);
}

Message* Sub(Message& m, const char* field) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(field);
  REQUIRE(f != nullptr);
  return m.GetReflection()->MutableMessage(&m, f);
}

void SetEnum(Message& m, const char* field, int value) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(field);
  REQUIRE(f != nullptr);
  m.GetReflection()->SetEnumValue(&m, f, value);
}

void None(Message&, const Target&) {}

// The id of a join token of tenant A (made before the matrix runs).
std::string& JoinTokenIdOfA() {
  static std::string* id = new std::string();
  return *id;
}

// Tenant A's enrollment rule (made before the matrix runs), and the one
// CreateEnrollmentRule makes (in whichever tenant calls it).
constexpr char kRuleOfA[] = "rule-made-first";

// An enrollment rule named "onboard-rule" (never a name of A's objects).
void EnrollmentRule(Message& m, const Target&) {
  SetString(m, "name", "onboard-rule");
  if (m.GetDescriptor()->FindFieldByName("selector") == nullptr) return;
  SetString(m, "runtime_policy", "rule-policy");
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("selector");
  Message* entry = m.GetReflection()->AddMessage(&m, f);
  SetString(*entry, "key", "role");
  SetString(*entry, "value", "web");
}

// A trusted policy-signing key (tests/data/keylime/runtime-policy-pubkey.pub)
// named "added-key": tenant A adds it before the matrix runs, tenant B's
// admin in the AddPolicySigningKey row.
void SigningKey(Message& m, const Target&) {
  SetString(m, "name", "added-key");
  SetString(m, "pem",
            "-----BEGIN PUBLIC KEY-----\n"
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXIgsNuIpHj5ogMLDd+u/lxsAyKjv\n"
            "toXL1efXBUQ/MbCHlqnhUnn4I31sp6zBFrSYQJ1Bzz5OHLf1UqsOgy0Cpw==\n"
            "-----END PUBLIC KEY-----\n");
}

// A webhook subscription named "added-webhook" (never a name of A's
// objects) to a receiver nobody runs.
// A runtime policy of tenant A besides its enrolled one.
constexpr char kRolloutCandidate[] = "rollout-candidate";

// Aims at the shadow of A's policy (the fields each request has).
void Rollout(Message& m, const Target& t) {
  const Descriptor* d = m.GetDescriptor();
  SetString(m, "policy", t.policy);
  if (d->FindFieldByName("kind") != nullptr) {
    SetEnum(m, "kind", v1::ROLLOUT_KIND_SHADOW);
  }
  if (d->FindFieldByName("candidate") != nullptr) {
    SetString(m, "candidate", kRolloutCandidate);
  }
}

void Webhook(Message& m, const Target&) {
  SetString(m, "name", "added-webhook");
  SetString(m, "url", "https://127.0.0.1:9/hook");
}

// The table. Every method of the served services must be here (and nothing
// else): the first test case checks both directions.
std::map<std::string, Rule> Matrix() {
  auto policy_content = [](Message& m, const Target& t) {
    SetString(m, "content", t.policy_content);
  };
  return {
      // Admin (verifier).
      {"vouch.v1.Admin.EnrollAgent",
       {Server::kVerifier, Access::kOperator, Scope::kObject,
        [](Message& m, const Target& t) {
          SetString(*Sub(m, "runtime_policy"), "name", t.policy);
        }}},
      {"vouch.v1.Admin.UnenrollAgent",
       {Server::kVerifier, Access::kOperator, Scope::kObject, None}},
      {"vouch.v1.Admin.GetAgentStatus",
       {Server::kVerifier, Access::kViewer, Scope::kObject, None}},
      {"vouch.v1.Admin.ListAgents",
       {Server::kVerifier, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Admin.Watch",
       {Server::kVerifier, Access::kViewer, Scope::kList,
        [](Message& m, const Target&) {
          SetString(m, "resume_token", "w1:0:0");  // all history
          const FieldDescriptor* f =
              m.GetDescriptor()->FindFieldByName("include_verdicts");
          m.GetReflection()->SetBool(&m, f, true);
        }}},
      {"vouch.v1.Admin.AddPolicy",
       {Server::kVerifier, Access::kOperator, Scope::kCreate,
        [=](Message& m, const Target& t) {
          SetString(m, "name", "added-policy");
          SetEnum(m, "kind", v1::POLICY_KIND_RUNTIME);
          policy_content(m, t);
        }}},
      {"vouch.v1.Admin.GetPolicy",
       {Server::kVerifier, Access::kViewer, Scope::kObject, None}},
      {"vouch.v1.Admin.ListPolicies",
       {Server::kVerifier, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Admin.UpdatePolicy",
       {Server::kVerifier, Access::kOperator, Scope::kObject, policy_content}},
      {"vouch.v1.Admin.RemovePolicy",
       {Server::kVerifier, Access::kOperator, Scope::kObject, None}},
      {"vouch.v1.Admin.ImportPolicy",
       {Server::kVerifier, Access::kOperator, Scope::kCreate,
        [=](Message& m, const Target& t) {
          SetString(m, "name", "imported-policy");
          SetEnum(m, "format", v1::POLICY_FORMAT_KEYLIME_RUNTIME_POLICY_JSON);
          policy_content(m, t);
        }}},
      // A policy's versions; a tenant's trusted policy-signing keys (a
      // tenant admin's business; viewers list them).
      {"vouch.v1.Admin.GetPolicyHistory",
       {Server::kVerifier, Access::kViewer, Scope::kObject, None}},
      // Roll-outs of a runtime policy: set up in tenant A (a shadow of A's
      // policy by kRolloutCandidate) before the matrix runs.
      {"vouch.v1.Admin.SetPolicyRollout",
       {Server::kVerifier, Access::kOperator, Scope::kObject, Rollout}},
      {"vouch.v1.Admin.ListPolicyRollouts",
       {Server::kVerifier, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Admin.DeletePolicyRollout",
       {Server::kVerifier, Access::kOperator, Scope::kObject, Rollout}},
      {"vouch.v1.Admin.GetShadowReport",
       {Server::kVerifier, Access::kViewer, Scope::kObject, Rollout}},
      {"vouch.v1.Admin.PromotePolicy",
       {Server::kVerifier, Access::kOperator, Scope::kObject, Rollout}},
      // A tenant's settings: its own are read (viewer) and changed (admin);
      // another tenant's answer names only that tenant.
      {"vouch.v1.Admin.GetTenantSettings",
       {Server::kVerifier, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Admin.SetTenantSettings",
       {Server::kVerifier, Access::kAdmin, Scope::kCreate,
        [](Message& m, const Target&) {
          const FieldDescriptor* f =
              m.GetDescriptor()->FindFieldByName("peer_notices");
          REQUIRE(f != nullptr);
          m.GetReflection()->SetBool(&m, f, false);
        }}},
      {"vouch.v1.Admin.AddPolicySigningKey",
       {Server::kVerifier, Access::kAdmin, Scope::kCreate, SigningKey}},
      {"vouch.v1.Admin.ListPolicySigningKeys",
       {Server::kVerifier, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Admin.DeletePolicySigningKey",
       {Server::kVerifier, Access::kAdmin, Scope::kObject, None}},
      // History of one agent: another tenant's query is answered from its
      // own (empty) history.
      {"vouch.v1.Admin.GetAttestationHistory",
       {Server::kVerifier, Access::kViewer, Scope::kList, None}},
      // A signed result of one agent, and the pool's public results keys.
      {"vouch.v1.Admin.GetAttestationResult",
       {Server::kVerifier, Access::kViewer, Scope::kObject, None}},
      {"vouch.v1.Admin.GetResultKeys",
       {Server::kVerifier, Access::kViewer, Scope::kPublic, None}},
      // The transparency log: hashes and the pool's log key, no tenant's
      // objects (the default inclusion request is leaf 0 of the newest head).
      {"vouch.v1.Admin.GetTreeHead",
       {Server::kVerifier, Access::kViewer, Scope::kPublic, None}},
      {"vouch.v1.Admin.GetInclusionProof",
       {Server::kVerifier, Access::kViewer, Scope::kPublic, None}},
      {"vouch.v1.Admin.GetConsistencyProof",
       {Server::kVerifier, Access::kViewer, Scope::kPublic, None}},
      {"vouch.v1.Admin.GetLogKey",
       {Server::kVerifier, Access::kViewer, Scope::kPublic, None}},
      // Kept records and the audit bundle of tenant A's agent.
      {"vouch.v1.Admin.GetAttestation",
       {Server::kVerifier, Access::kViewer, Scope::kObject,
        [](Message& m, const Target& t) {
          SetString(m, "attestation_id", t.attestation_id);
        }}},
      {"vouch.v1.Admin.ReverifyAttestation",
       {Server::kVerifier, Access::kOperator, Scope::kObject,
        [](Message& m, const Target& t) {
          SetString(m, "attestation_id", t.attestation_id);
        }}},
      {"vouch.v1.Admin.ExportAudit",
       {Server::kVerifier, Access::kViewer, Scope::kObject,
        [](Message& m, const Target&) {
          Message* at = Sub(m, "at");
          const FieldDescriptor* f =
              at->GetDescriptor()->FindFieldByName("seconds");
          REQUIRE(f != nullptr);
          at->GetReflection()->SetInt64(at, f, int64_t{4102444800});  // 2100
        }}},
      // Fleet operations: tenant A's agent by id, onto A's own policy.
      {"vouch.v1.Admin.UpdateAgents",
       {Server::kVerifier, Access::kOperator, Scope::kObject,
        [](Message& m, const Target& t) {
          const FieldDescriptor* f =
              m.GetDescriptor()->FindFieldByName("agent_ids");
          REQUIRE(f != nullptr);
          m.GetReflection()->AddString(&m, f, t.agent_id);
          SetString(m, "runtime_policy", t.policy);
        }}},
      // Version and build: nothing of any tenant.
      {"vouch.v1.Admin.GetServerInfo",
       {Server::kVerifier, Access::kAnyPrincipal, Scope::kPublic, None}},
      {"vouch.v1.Registrar.GetServerInfo",
       {Server::kRegistrar, Access::kAnyPrincipal, Scope::kPublic, None}},
      // Webhook subscriptions: tenant admin business (tenant A's is named
      // like its policy, so the runner's `name` aims at it).
      {"vouch.v1.Admin.AddWebhook",
       {Server::kVerifier, Access::kAdmin, Scope::kCreate, Webhook}},
      {"vouch.v1.Admin.GetWebhook",
       {Server::kVerifier, Access::kAdmin, Scope::kObject, None}},
      {"vouch.v1.Admin.ListWebhooks",
       {Server::kVerifier, Access::kAdmin, Scope::kList, None}},
      {"vouch.v1.Admin.DeleteWebhook",
       {Server::kVerifier, Access::kAdmin, Scope::kObject, None}},
      // Attestation (verifier, agent-facing).
      {"vouch.v1.Attestation.Attest",
       {Server::kVerifier, Access::kAgent, Scope::kAgent, None}},
      // Registrar.
      {"vouch.v1.Registrar.Register",
       {Server::kRegistrar, Access::kAgent, Scope::kAgent, None}},
      {"vouch.v1.Registrar.Activate",
       {Server::kRegistrar, Access::kAgent, Scope::kAgent,
        [](Message& m, const Target&) {
          SetString(m, "hmac", std::string(32, '\0'));
        }}},
      {"vouch.v1.Registrar.GetRegisteredAgent",
       {Server::kRegistrar, Access::kViewer, Scope::kObject, None}},
      {"vouch.v1.Registrar.ListRegisteredAgents",
       {Server::kRegistrar, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Registrar.DeleteRegisteredAgent",
       {Server::kRegistrar, Access::kAdmin, Scope::kObject, None}},
      // Onboarding: join tokens and enrollment rules are tenant admin
      // business; labels an operator's.
      {"vouch.v1.Registrar.CreateJoinToken",
       {Server::kRegistrar, Access::kAdmin, Scope::kCreate, None}},
      {"vouch.v1.Registrar.ListJoinTokens",
       {Server::kRegistrar, Access::kAdmin, Scope::kList, None}},
      {"vouch.v1.Registrar.DeleteJoinToken",
       {Server::kRegistrar, Access::kAdmin, Scope::kObject,
        [](Message& m, const Target&) {
          SetString(m, "id", JoinTokenIdOfA());
        }}},
      {"vouch.v1.Registrar.SetAgentLabels",
       {Server::kRegistrar, Access::kOperator, Scope::kObject, None}},
      {"vouch.v1.Registrar.CreateEnrollmentRule",
       {Server::kRegistrar, Access::kAdmin, Scope::kCreate, EnrollmentRule}},
      {"vouch.v1.Registrar.ListEnrollmentRules",
       {Server::kRegistrar, Access::kViewer, Scope::kList, None}},
      {"vouch.v1.Registrar.DeleteEnrollmentRule",
       {Server::kRegistrar, Access::kAdmin, Scope::kObject,
        [](Message& m, const Target&) { SetString(m, "name", kRuleOfA); }}},
  };
}

// The services the two servers register (verifier_app.cc, registrar_app.cc).
// (Through a message of each file: that links the file's descriptor in.)
std::vector<const ServiceDescriptor*> ServedServices() {
  return {
      v1::EnrollAgentRequest::descriptor()->file()->FindServiceByName("Admin"),
      v1::AgentMessage::descriptor()->file()->FindServiceByName("Attestation"),
      v1::RegisterRequest::descriptor()->file()->FindServiceByName(
          "Registrar")};
}

// One call's outcome: the status and every response message.
struct Outcome {
  grpc::Status status;
  std::vector<std::unique_ptr<Message>> responses;
};

std::string Path(const MethodDescriptor& m) {
  return absl::StrCat("/", m.service()->full_name(), "/", m.name());
}

std::unique_ptr<Message> NewMessage(const Descriptor* d) {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(d)
          ->New());
}

grpc::ByteBuffer Serialize(const Message& m) {
  grpc::Slice slice(m.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

std::unique_ptr<Message> Parse(grpc::ByteBuffer& buffer, const Descriptor* d) {
  std::vector<grpc::Slice> slices;
  REQUIRE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  std::unique_ptr<Message> m = NewMessage(d);
  REQUIRE(m->ParseFromString(bytes));
  return m;
}

// Calls `method` over `channel` as a generic stream, so one runner serves
// unary calls, server streams (read until they end or for 3 s: a Watch from
// the start of history replays it at once) and Attest, which gets a Hello
// naming `hello_agent` instead of `request`.
Outcome Call(const std::shared_ptr<grpc::Channel>& channel,
             const MethodDescriptor& method, const Message& request,
             const std::string& hello_agent) {
  v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_id(hello_agent);
  hello.mutable_hello()->set_aik_name(std::string(34, '\x0b'));
  hello.mutable_hello()->mutable_capabilities()->add_pcr_banks(
      v1::HASH_ALGORITHM_SHA256);
  const Message& first = method.client_streaming() ? hello : request;

  Outcome out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(method.server_streaming() ? 3 : 20));
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  // One operation at a time: each Next() is its completion.
  auto next = [&] {
    REQUIRE(cq.Next(&tag, &ok));
    return ok;
  };
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&ctx, Path(method), &cq);
  call->StartCall(nullptr);
  if (next()) {
    grpc::ByteBuffer request_bytes = Serialize(first);
    call->Write(request_bytes, nullptr);
    next();
    call->WritesDone(nullptr);
    next();
    while (true) {
      grpc::ByteBuffer buffer;
      call->Read(&buffer, nullptr);
      if (!next()) break;
      out.responses.push_back(Parse(buffer, method.output_type()));
    }
  }
  call->Finish(&out.status, nullptr);
  next();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  // A server stream cut by our deadline after answering is a success.
  if (method.server_streaming() &&
      out.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      !out.responses.empty()) {
    out.status = grpc::Status::OK;
  }
  return out;
}

// Every string and bytes value in `m`, recursively, as "field=value".
void Strings(const Message& m, std::vector<std::string>* out) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const bool repeated = f->is_repeated();
    const int n = repeated ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        out->push_back(absl::StrCat(
            f->name(), "=",
            repeated ? r->GetRepeatedString(m, f, i) : r->GetString(m, f)));
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        Strings(repeated ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f),
                out);
      }
    }
  }
}

// The first trace of tenant A in `out`'s answers, or "".
std::string LeakOfA(const Outcome& out, const Target& a) {
  for (const auto& m : out.responses) {
    std::vector<std::string> values;
    Strings(*m, &values);
    for (const std::string& v : values) {
      if (absl::StrContains(v, kTenantA) || absl::StrContains(v, a.agent_id) ||
          absl::StrContains(v, a.policy)) {
        return v;
      }
    }
  }
  return "";
}

// A caller: a name for messages and a channel to each server.
struct Caller {
  std::string name;
  std::shared_ptr<grpc::Channel> verifier;
  std::shared_ptr<grpc::Channel> registrar;
  const std::shared_ptr<grpc::Channel>& To(Server s) const {
    return s == Server::kVerifier ? verifier : registrar;
  }
};

// The request for `method` aimed at `a`'s objects, in `tenant`.
std::unique_ptr<Message> Request(const MethodDescriptor& method,
                                 const Rule& rule, const Target& a,
                                 const std::string& tenant) {
  std::unique_ptr<Message> req = NewMessage(method.input_type());
  const Descriptor* d = req->GetDescriptor();
  if (d->FindFieldByName("tenant") != nullptr) {
    SetString(*req, "tenant", tenant);
  }
  if (d->FindFieldByName("agent_id") != nullptr) {
    SetString(*req, "agent_id", a.agent_id);
  }
  if (d->FindFieldByName("name") != nullptr) SetString(*req, "name", a.policy);
  rule.fill(*req, a);
  return req;
}

const char* Code(const grpc::Status& s) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int c = static_cast<int>(s.error_code());
  return c >= 0 && c <= 16 ? kNames[c] : "?";
}

TEST_CASE("authz: the matrix classifies every RPC the servers serve",
          "[authz]") {
  const std::map<std::string, Rule> matrix = Matrix();
  std::set<std::string> declared;
  for (const ServiceDescriptor* s : ServedServices()) {
    REQUIRE(s != nullptr);
    for (int i = 0; i < s->method_count(); ++i) {
      const std::string name = s->method(i)->full_name();
      declared.insert(name);
      INFO(name << " is not in the authorization matrix: decide who may call "
                   "it and add it to Matrix() in tests/authz/authz_test.cc");
      CHECK(matrix.count(name) == 1);
    }
  }
  for (const auto& [name, rule] : matrix) {
    INFO(name << " is in the matrix but no served service declares it");
    CHECK(declared.count(name) == 1);
  }
}

// The id of the agent's newest attestation record.
std::string LastAttestation(World& world, const std::string& tls_dir,
                            const AgentOnTpm& agent) {
  testing::RunResult r =
      world.Ctl(tls_dir, {"-o", "json", "agents", "get", agent.id});
  if (!r.status.Success()) return "";
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() ? j.value("last_attestation_id", "") : "";
}

// Runs the matrix against real servers.
TEST_CASE(
    "authz: every caller gets exactly what its tenant and role allow, on "
    "every call",
    "[authz][e2e][pg][tpm]") {
  // The verifier signs results (GetAttestationResult answers).
  absl::StatusOr<TempDir> keys = TempDir::Create("authz-results");
  REQUIRE(keys.ok());
  REQUIRE(sdk::CreateResultsKey(keys->Join("results.key"),
                                keys->Join("results.pub"))
              .ok());
  World world(/*tpms=*/2,
              {"--verifier-results-key", keys->Join("results.key")});
  const std::string ca = world.tls().ca;
  const std::string a_admin = world.Client("a-admin", kTenantA, Role::kAdmin);
  const std::string a_operator =
      world.Client("a-operator", kTenantA, Role::kOperator);
  const std::string a_viewer =
      world.Client("a-viewer", kTenantA, Role::kViewer);
  const std::string b_admin = world.Client("b-admin", kTenantB, Role::kAdmin);
  const std::string expired =
      world.Client("a-expired", kTenantA, Role::kAdmin, /*expired=*/true);
  // A second CA nobody configured, issuing a perfectly formed admin of A.
  const std::string foreign_ca = world.dir().Join("foreign-ca");
  sdk::CaInitOptions init;
  init.dir = foreign_ca;
  REQUIRE(sdk::InitCa(init).ok());
  const std::string foreign =
      IssueClient(foreign_ca, world.dir().Join("foreign-admin"), "a-admin",
                  kTenantA, Role::kAdmin);

  AgentOnTpm& agent_a = world.AddAgent(kTenantA, a_admin, kPolicyA);
  AgentOnTpm& agent_b = world.AddAgent(kTenantB, b_admin, kPolicyB);
  // Both attest, so every table (registrations, enrollments, policies,
  // history, events) holds objects of both tenants.
  REQUIRE(Eventually([&] {
    return world.State(a_admin, agent_a) == "pass" &&
           world.State(b_admin, agent_b) == "pass";
  }));
  const Target a{agent_a.id, kPolicyA, Slurp(agent_a.policy_file),
                 LastAttestation(world, a_admin, agent_a)};
  REQUIRE(!a.attestation_id.empty());

  auto caller = [&](const std::string& name, const std::string& dir,
                    const std::string& stem) {
    return Caller{
        name, ChannelTo(world.verifier().address(), ca + "/ca.pem", dir, stem),
        ChannelTo(world.registrar().address(), ca + "/ca.pem", dir, stem)};
  };
  const Caller owner_admin = caller("tenant A admin", a_admin, "client");
  const Caller owner_operator =
      caller("tenant A operator", a_operator, "client");
  const Caller owner_viewer = caller("tenant A viewer", a_viewer, "client");
  const Caller other_admin = caller("tenant B admin", b_admin, "client");
  const Caller owner_agent =
      caller("tenant A's agent", agent_a.cert_dir, "agent");
  const Caller other_agent =
      caller("tenant B's agent", agent_b.cert_dir, "agent");
  const std::vector<Caller> refused = {
      caller("no client certificate", "", ""),
      caller("expired certificate", expired, "client"),
      caller("certificate of a foreign CA", foreign, "client")};

  const std::map<std::string, Rule> matrix = Matrix();
  int calls = 0;
  auto run = [&](const Caller& who, const std::string& method_name,
                 const std::string& tenant) {
    const MethodDescriptor* m =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            method_name);
    REQUIRE(m != nullptr);
    const Rule& rule = matrix.at(method_name);
    ++calls;
    return Call(who.To(rule.server), *m, *Request(*m, rule, a, tenant),
                a.agent_id);
  };
  auto code_of = [](const Outcome& o) { return o.status.error_code(); };
  using grpc::StatusCode;

  REQUIRE(ServedServices().size() == 3);  // Loads the descriptors.
  // Tenant A's policy-signing keys: "added-key" (so its viewer's list shows
  // one, and adding it again is ALREADY_EXISTS) and one named like A's
  // policy (what DeletePolicySigningKey aims at).
  REQUIRE(
      run(owner_admin, "vouch.v1.Admin.AddPolicySigningKey", "").status.ok());
  {
    const MethodDescriptor* add =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            "vouch.v1.Admin.AddPolicySigningKey");
    REQUIRE(add != nullptr);
    std::unique_ptr<Message> key_of_a =
        Request(*add, matrix.at(add->full_name()), a, "");
    SetString(*key_of_a, "name", a.policy);
    REQUIRE(
        Call(owner_admin.verifier, *add, *key_of_a, a.agent_id).status.ok());
  }
  // Tenant A's onboarding objects: a join token and an enrollment rule.
  {
    const Outcome t =
        run(owner_admin, "vouch.v1.Registrar.CreateJoinToken", "");
    REQUIRE(t.status.ok());
    std::vector<std::string> values;
    Strings(*t.responses.at(0), &values);
    for (const std::string& v : values) {
      if (absl::StartsWith(v, "id=")) JoinTokenIdOfA() = v.substr(3);
    }
    REQUIRE(!JoinTokenIdOfA().empty());
    const MethodDescriptor* create =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            "vouch.v1.Registrar.CreateEnrollmentRule");
    REQUIRE(create != nullptr);
    std::unique_ptr<Message> rule_of_a =
        Request(*create, matrix.at(create->full_name()), a, "");
    SetString(*rule_of_a, "name", kRuleOfA);
    REQUIRE(Call(owner_admin.registrar, *create, *rule_of_a, a.agent_id)
                .status.ok());
    // ...and a webhook subscription.
    const MethodDescriptor* add =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            "vouch.v1.Admin.AddWebhook");
    REQUIRE(add != nullptr);
    std::unique_ptr<Message> hook_of_a =
        Request(*add, matrix.at(add->full_name()), a, "");
    SetString(*hook_of_a, "name", kPolicyA);
    REQUIRE(
        Call(owner_admin.verifier, *add, *hook_of_a, a.agent_id).status.ok());
  }
  // Tenant A's roll-out: a shadow of its policy.
  {
    const MethodDescriptor* add =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            "vouch.v1.Admin.AddPolicy");
    REQUIRE(add != nullptr);
    std::unique_ptr<Message> candidate =
        Request(*add, matrix.at(add->full_name()), a, "");
    SetString(*candidate, "name", kRolloutCandidate);
    REQUIRE(
        Call(owner_admin.verifier, *add, *candidate, a.agent_id).status.ok());
    REQUIRE(
        run(owner_admin, "vouch.v1.Admin.SetPolicyRollout", "").status.ok());
  }
  for (const auto& [name, rule] : matrix) {
    INFO(name);
    // 1. Refused at the handshake, whatever the method.
    for (const Caller& who : refused) {
      INFO(who.name);
      const Outcome o = run(who, name, kTenantA);
      CHECK(code_of(o) == StatusCode::UNAVAILABLE);
      CHECK(o.responses.empty());
    }
    if (rule.access == Access::kUnimplemented) {
      for (const Caller* who :
           {&owner_admin, &owner_viewer, &other_admin, &owner_agent}) {
        INFO(who->name << " got " << Code(run(*who, name, "").status));
        CHECK(code_of(run(*who, name, "")) == StatusCode::UNIMPLEMENTED);
      }
      continue;
    }
    if (rule.access == Access::kAnyPrincipal) {
      // Every authenticated caller, operator of any tenant or agent, gets
      // the same answer, naming no tenant's objects.
      for (const Caller* who : {&owner_admin, &owner_viewer, &other_admin,
                                &owner_agent, &other_agent}) {
        const Outcome o = run(*who, name, "");
        INFO(who->name << " got " << Code(o.status) << " "
                       << o.status.error_message());
        CHECK(code_of(o) == StatusCode::OK);
        CHECK(o.responses.size() == 1);
        CHECK(LeakOfA(o, a).empty());
      }
      continue;
    }
    if (rule.access == Access::kAgent) {
      // Operators are not agents, and an agent is only itself: tenant B's
      // agent naming A's agent_id is refused.
      for (const Caller* who :
           {&owner_admin, &owner_viewer, &other_admin, &other_agent}) {
        const Outcome o = run(*who, name, "");
        INFO(who->name << " got " << Code(o.status) << " "
                       << o.status.error_message());
        CHECK(code_of(o) == StatusCode::PERMISSION_DENIED);
        CHECK(LeakOfA(o, a).empty());
      }
      continue;
    }
    // 2. An agent certificate is no operator, in its own tenant or any.
    for (const std::string& tenant : {std::string(), std::string(kTenantA)}) {
      const Outcome o = run(owner_agent, name, tenant);
      INFO("agent, tenant '" << tenant << "': " << Code(o.status));
      CHECK(code_of(o) == StatusCode::PERMISSION_DENIED);
      CHECK(o.responses.empty());
    }
    // 2b. Public answers: every operator principal, whatever its tenant,
    //     gets one, and it names no tenant's objects.
    if (rule.scope == Scope::kPublic) {
      for (const Caller* who : {&owner_viewer, &other_admin}) {
        const Outcome o = run(*who, name, "");
        INFO(who->name << " got " << Code(o.status));
        CHECK(code_of(o) == StatusCode::OK);
        CHECK(LeakOfA(o, a).empty());
      }
      continue;
    }
    // 3. Roles: a viewer only reads; an operator does not delete
    //    registrations.
    if (rule.access != Access::kViewer) {
      const Outcome o = run(owner_viewer, name, "");
      INFO("viewer: " << Code(o.status));
      CHECK(code_of(o) == StatusCode::PERMISSION_DENIED);
    }
    if (rule.access == Access::kAdmin) {
      const Outcome o = run(owner_operator, name, "");
      INFO("operator: " << Code(o.status));
      CHECK(code_of(o) == StatusCode::PERMISSION_DENIED);
    }
    // 4. Tenant B's admin: tenant A by name is refused...
    {
      const Outcome o = run(other_admin, name, kTenantA);
      INFO("tenant B admin naming tenant A: " << Code(o.status));
      CHECK(code_of(o) == StatusCode::PERMISSION_DENIED);
      CHECK(o.responses.empty());
    }
    // ...and in its own tenant A's objects do not exist.
    {
      const Outcome o = run(other_admin, name, "");
      INFO("tenant B admin in its own tenant: " << Code(o.status) << " "
                                                << o.status.error_message());
      switch (rule.scope) {
        case Scope::kObject:
          CHECK((code_of(o) == StatusCode::NOT_FOUND ||
                 code_of(o) == StatusCode::PERMISSION_DENIED));
          break;
        case Scope::kList:
          CHECK(code_of(o) == StatusCode::OK);
          break;
        case Scope::kCreate:
          CHECK(code_of(o) == StatusCode::OK);
          for (const auto& r : o.responses) {
            std::vector<std::string> values;
            Strings(*r, &values);
            CHECK(std::count(values.begin(), values.end(),
                             absl::StrCat("tenant=", kTenantB)) == 1);
          }
          break;
        case Scope::kAgent:
        case Scope::kPublic:
          break;
      }
      INFO("leaked: " << LeakOfA(o, a));
      CHECK(LeakOfA(o, a).empty());
    }
    // 5. The control: tenant A's viewer reads what B could not.
    if (rule.access == Access::kViewer) {
      const Outcome o = run(owner_viewer, name, "");
      INFO("tenant A viewer: " << Code(o.status) << " "
                               << o.status.error_message());
      CHECK(code_of(o) == StatusCode::OK);
      CHECK(!LeakOfA(o, a).empty());
    }
  }

  // Lists and streams of tenant B show B's own objects (so "nothing of A"
  // above is not an empty answer of a broken call).
  for (const char* list :
       {"vouch.v1.Admin.ListAgents", "vouch.v1.Admin.ListPolicies",
        "vouch.v1.Admin.Watch", "vouch.v1.Registrar.ListRegisteredAgents"}) {
    const Outcome o = run(other_admin, list, "");
    INFO(list << ": " << Code(o.status));
    REQUIRE(o.status.ok());
    std::vector<std::string> values;
    for (const auto& r : o.responses) Strings(*r, &values);
    const bool agent_b_seen =
        std::find(values.begin(), values.end(),
                  absl::StrCat("agent_id=", agent_b.id)) != values.end();
    const bool policy_b_seen =
        std::find(values.begin(), values.end(),
                  absl::StrCat("name=", kPolicyB)) != values.end();
    CHECK((agent_b_seen || policy_b_seen));
  }

  // 6. Tenant A's own operator and admin may change what B could not; in
  //    an order that leaves each call something to act on.
  struct Change {
    const Caller* who;
    const char* method;
    StatusCode want;
  };
  const std::vector<Change> changes = {
      {&owner_operator, "vouch.v1.Admin.ReverifyAttestation", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.UpdatePolicy", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.SetPolicyRollout", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.DeletePolicyRollout", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.SetPolicyRollout", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.PromotePolicy", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.AddPolicy", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.ImportPolicy", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.UpdateAgents", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.EnrollAgent",
       StatusCode::ALREADY_EXISTS},
      {&owner_operator, "vouch.v1.Admin.UnenrollAgent", StatusCode::OK},
      {&owner_operator, "vouch.v1.Admin.RemovePolicy", StatusCode::OK},
      {&owner_admin, "vouch.v1.Admin.AddPolicySigningKey",
       StatusCode::ALREADY_EXISTS},
      {&owner_admin, "vouch.v1.Admin.DeletePolicySigningKey", StatusCode::OK},
      {&owner_admin, "vouch.v1.Registrar.CreateJoinToken", StatusCode::OK},
      {&owner_admin, "vouch.v1.Registrar.ListJoinTokens", StatusCode::OK},
      {&owner_admin, "vouch.v1.Registrar.DeleteJoinToken", StatusCode::OK},
      {&owner_operator, "vouch.v1.Registrar.SetAgentLabels", StatusCode::OK},
      {&owner_admin, "vouch.v1.Registrar.CreateEnrollmentRule", StatusCode::OK},
      {&owner_admin, "vouch.v1.Registrar.DeleteEnrollmentRule", StatusCode::OK},
      {&owner_admin, "vouch.v1.Admin.SetTenantSettings", StatusCode::OK},
      {&owner_admin, "vouch.v1.Admin.AddWebhook", StatusCode::OK},
      {&owner_admin, "vouch.v1.Admin.GetWebhook", StatusCode::OK},
      {&owner_admin, "vouch.v1.Admin.ListWebhooks", StatusCode::OK},
      {&owner_admin, "vouch.v1.Admin.DeleteWebhook", StatusCode::OK},
      {&owner_admin, "vouch.v1.Registrar.DeleteRegisteredAgent",
       StatusCode::OK},
  };
  std::set<std::string> changed;
  for (const Change& c : changes) {
    const Outcome o = run(*c.who, c.method, "");
    INFO(c.method << ": " << Code(o.status) << " " << o.status.error_message());
    CHECK(code_of(o) == c.want);
    changed.insert(c.method);
  }
  for (const auto& [name, rule] : matrix) {
    if (rule.access == Access::kOperator || rule.access == Access::kAdmin) {
      INFO(name << " has no positive control in `changes`");
      CHECK(changed.count(name) == 1);
    }
  }
  // Tenant B's agent still attests: nothing done to A touched it.
  CHECK(world.State(b_admin, agent_b) == "pass");
  WARN("authorization matrix: " << calls << " calls");
}

}  // namespace
}  // namespace vouch::authz
