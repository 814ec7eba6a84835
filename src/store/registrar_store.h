// File: store/registrar_store.h
// The registrar's tables (migrations/0001_registrar.sql, 0005): registrations,
// the pending credential challenge of each agent, and the append-only EK/AIK
// binding log. Every change is one transaction; a restart between Register
// and Activate loses nothing (the challenge is stored). Lifecycle: an EK is
// reserved only by an activated registration; a registration that never
// activated blocks nobody and expires after `pending_ttl`; a registration
// cannot be deleted while the agent is enrolled. Values come from the
// registrar after it validated them; queries are parameterised. Thread-safe
// (each call leases its own connection).
//
//   PgRegistrarStore store(pool, /*pending_ttl=*/absl::Minutes(10));
//   VOUCH_ASSIGN_OR_RETURN(auto reg, store.Get(tenant, agent_id));
#ifndef VOUCH_STORE_REGISTRAR_STORE_H_
#define VOUCH_STORE_REGISTRAR_STORE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/pg_pool.h"

namespace vouch::store {

struct Registration {
  std::string agent_id;
  std::string tenant;
  std::string ek_public;  // TPM2B_PUBLIC
  std::string ek_sha256;  // 32 bytes
  std::string ek_certificate;
  std::vector<std::string> ek_intermediates;
  std::string ek_certificate_issuer;
  std::string aik_public;  // empty until activated
  std::string aik_name;
  std::string pending_aik_name;  // empty unless a challenge is pending
  std::string agent_version;
  absl::Time registered_at;
  std::optional<absl::Time> activated_at;
  // Register: the agent's own labels, as JSON (core::attest::LabelsJson).
  // Read back: the merged labels (agent's overlaid by the operator's).
  std::string labels_json = "{}";
  std::map<std::string, std::string> labels;
};

// An enrollment rule (migrations/0012).
struct EnrollmentRuleRecord {
  std::string tenant;
  std::string name;
  std::map<std::string, std::string> selector;
  std::string runtime_policy;
  std::string boot_policy;
  absl::Duration interval = absl::Seconds(60);
  absl::Time created_at;
};

// What Register stores alongside the registration.
struct PendingChallenge {
  std::string secret;
  std::string aik_public;
  std::string aik_name;
  absl::Duration ttl;
  // Onboarding (migrations/0012): the DER SubjectPublicKeyInfo a certificate
  // is to be issued for, and the SHA-256 of the join token the successful
  // Activate consumes; empty when none.
  std::string csr_spki = {};
  std::string join_token_sha256 = {};
  // Joined without a token, by the registrar's EK-CA -> tenant mapping
  // (migrations/0015): it may Activate without a certificate, as a token's.
  bool ek_ca_join = false;
};

// A join token as stored: never the token, only its SHA-256.
struct JoinTokenRecord {
  std::string id;  // the first 16 hex characters of sha256
  std::string tenant;
  int uses = 1;
  int used = 0;
  std::optional<absl::Time> expires_at;
  absl::Time created_at;
  std::string description;
  bool revoked = false;
};

// What a successful Activate found besides its outcome.
struct ActivateDetails {
  std::string csr_spki;           // the challenge's requested key, or empty
  bool first_activation = false;  // the registration had never activated
};

// Why a join token admits no join.
enum class JoinTokenState { kUsable, kUnknown, kRevoked, kExpired, kUsedUp };

enum class ActivateOutcome {
  kActivated,
  kNoChallenge,
  kExpired,
  kBadProof,
  // The challenge went to another TPM than the one this agent_id's
  // activated registration is bound to.
  kOtherTpm,
  // The challenge's join token was revoked, expired or used up meanwhile.
  kTokenRefused,
};

class PgRegistrarStore {
 public:
  PgRegistrarStore(PgPool* pool, absl::Duration pending_ttl)
      : pool_(pool), pending_ttl_(pending_ttl) {}

  // Replaces any pending challenge of agent_id and logs a "registered"
  // binding, then by the registration it finds:
  //  - none, or one that never activated (of any EK or tenant): (re)creates
  //    it as pending, registered now, for this EK and tenant;
  //  - activated with this EK in this tenant (the same TPM again): updates
  //    its metadata; the active AIK stays until the next Activate;
  //  - activated with another EK in this tenant: leaves it untouched; the
  //    challenge is for the other TPM and its Activate is refused
  //    (kOtherTpm), so the registration shows a pending activation only.
  // kAlreadyExists when agent_id is activated in another tenant, or this EK
  // is activated under another agent_id. Pending registrations of this EK
  // under other agent_ids do not block. Returns the challenge's expiry
  // (database clock).
  absl::StatusOr<absl::Time> Register(const Registration& registration,
                                      const PendingChallenge& challenge);

  // Takes the agent's pending challenge (deleting it whatever happens, so
  // each challenge allows one attempt) and, when neither it nor a pending
  // registration has expired and proof_ok(secret) holds, makes its AIK the
  // active one (which ends the streams of the previous AIK: verdicts and
  // leases require the current one), reserves the EK, deletes other
  // pending registrations of the same EK and logs an "activated" binding.
  // kAlreadyExists when the EK was activated under another agent_id
  // meanwhile.
  // When the challenge carries a certificate request, proof_ok receives its
  // SubjectPublicKeyInfo too (empty otherwise); `details`, when given, says
  // which key and whether this was the registration's first activation. A
  // join token on the challenge is consumed in the same transaction
  // (kTokenRefused when it no longer admits a join; the challenge is gone
  // either way).
  absl::StatusOr<ActivateOutcome> Activate(
      const std::string& tenant, const std::string& agent_id,
      const std::function<bool(const std::string& secret,
                               const std::string& csr_spki)>& proof_ok,
      ActivateDetails* details = nullptr);

  // Join tokens (migrations/0012). Create stores `sha256` of a new token;
  // uses >= 1; ttl zero = never expires.
  absl::StatusOr<JoinTokenRecord> CreateJoinToken(
      const std::string& tenant, const std::string& sha256, int uses,
      absl::Duration ttl, const std::string& description);
  absl::StatusOr<std::vector<JoinTokenRecord>> ListJoinTokens(
      const std::string& tenant);
  // Revokes: the row stays (so a join with it reads as revoked). kNotFound
  // when absent, already revoked, or of another tenant.
  absl::Status DeleteJoinToken(const std::string& tenant,
                               const std::string& id);
  // Replaces the operator labels (`labels_json`, valid JSON from
  // core::attest::LabelsJson). kNotFound when absent.
  absl::Status SetOperatorLabels(const std::string& tenant,
                                 const std::string& agent_id,
                                 const std::string& labels_json);

  // Enrollment rules. Create: kAlreadyExists for a taken name; the selector
  // as JSON (LabelsJson).
  absl::StatusOr<EnrollmentRuleRecord> CreateRule(
      const EnrollmentRuleRecord& rule, const std::string& selector_json);
  absl::StatusOr<std::vector<EnrollmentRuleRecord>> ListRules(
      const std::string& tenant);
  absl::Status DeleteRule(const std::string& tenant, const std::string& name);
  // The first rule by name whose selector the agent's merged labels
  // contain; nullopt when none does.
  absl::StatusOr<std::optional<EnrollmentRuleRecord>> MatchingRule(
      const std::string& tenant, const std::string& agent_id);

  // The tenant of agent_id's pending challenge when that challenge was
  // issued to a join (it carries a join token, or the EK-CA mapping chose
  // the tenant); kNotFound otherwise.
  absl::StatusOr<std::string> JoinChallengeTenant(const std::string& agent_id);
  // Whether the token with this SHA-256 admits a join now, and its tenant.
  absl::StatusOr<std::pair<JoinTokenState, std::string>> CheckJoinToken(
      const std::string& sha256);

  // kNotFound when absent, of another tenant, or pending and expired.
  absl::StatusOr<Registration> Get(const std::string& tenant,
                                   const std::string& agent_id);

  // Registrations of `tenant` with agent_id > after, ascending, at most
  // `limit`; `active` filters on activation.
  absl::StatusOr<std::vector<Registration>> List(const std::string& tenant,
                                                 const std::string& after,
                                                 std::optional<bool> active,
                                                 int limit);

  // kNotFound when absent; kFailedPrecondition while the agent is enrolled
  // at the verifier (checked in the deleting transaction, and by a foreign
  // key against concurrent enrollments). The binding log keeps its rows.
  absl::Status Delete(const std::string& tenant, const std::string& agent_id);

  // Deletes pending registrations older than pending_ttl (and their
  // challenges); returns how many. Safe to run in every registrar at once.
  absl::StatusOr<int64_t> DeleteExpired();

  // The prune rule (registrar.prune_unseen_after): removes at most `limit`
  // activated registrations whose agent was last seen (its last Register,
  // Activate or verdict, whichever is newest) before now - `unseen` by the
  // database's clock. An enrolled one is unenrolled in the same
  // transaction (an `unenrolled` event, as UnenrollAgent writes); each
  // removal is logged like Delete's. Each agent is checked again under its
  // row locks, so one that attests meanwhile stays. Returns the removed
  // (tenant, agent_id) pairs. Safe to run in every registrar at once.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> PruneUnseen(
      absl::Duration unseen, int limit);

  // The binding log of one agent, oldest first: (event, aik_name).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Bindings(
      const std::string& agent_id);

 private:
  PgPool* pool_;
  absl::Duration pending_ttl_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_REGISTRAR_STORE_H_
