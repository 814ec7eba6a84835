// File: store/registrar_store.h
// The registrar's tables (migrations/0001_registrar.sql): registrations, the
// pending credential challenge of each agent, and the append-only EK/AIK
// binding log. Every change is one transaction; a restart between Register
// and Activate loses nothing (the challenge is stored). Values come from the
// registrar after it validated them; queries are parameterised. Thread-safe
// (each call leases its own connection).
//
//   PgRegistrarStore store(pool);
//   VOUCH_ASSIGN_OR_RETURN(auto reg, store.Get(tenant, agent_id));
#ifndef VOUCH_STORE_REGISTRAR_STORE_H_
#define VOUCH_STORE_REGISTRAR_STORE_H_

#include <functional>
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
};

// What Register stores alongside the registration.
struct PendingChallenge {
  std::string secret;
  std::string aik_public;
  std::string aik_name;
  absl::Duration ttl;
};

enum class ActivateOutcome { kActivated, kNoChallenge, kExpired, kBadProof };

class PgRegistrarStore {
 public:
  explicit PgRegistrarStore(PgPool* pool) : pool_(pool) {}

  // Creates the registration or updates it for the same EK (re-registration
  // of the same TPM), replaces any pending challenge, and logs a
  // "registered" binding. kAlreadyExists when agent_id is registered with
  // another EK or tenant, or this EK under another agent_id. Returns the
  // challenge's expiry (database clock).
  absl::StatusOr<absl::Time> Register(const Registration& registration,
                                      const PendingChallenge& challenge);

  // Takes the agent's pending challenge (deleting it whatever happens, so
  // each challenge allows one attempt) and, when it has not expired and
  // proof_ok(secret) holds, makes its AIK the active one and logs an
  // "activated" binding.
  absl::StatusOr<ActivateOutcome> Activate(
      const std::string& tenant, const std::string& agent_id,
      const std::function<bool(const std::string& secret)>& proof_ok);

  // kNotFound when absent or of another tenant.
  absl::StatusOr<Registration> Get(const std::string& tenant,
                                   const std::string& agent_id);

  // Registrations of `tenant` with agent_id > after, ascending, at most
  // `limit`; `active` filters on activation.
  absl::StatusOr<std::vector<Registration>> List(const std::string& tenant,
                                                 const std::string& after,
                                                 std::optional<bool> active,
                                                 int limit);

  // kNotFound when absent. The binding log keeps its rows.
  absl::Status Delete(const std::string& tenant, const std::string& agent_id);

  // The binding log of one agent, oldest first: (event, aik_name).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Bindings(
      const std::string& agent_id);

 private:
  PgPool* pool_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_REGISTRAR_STORE_H_
