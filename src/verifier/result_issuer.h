// File: verifier/result_issuer.h
// Issues the pool's signed attestation results (EAR tokens, core/ear) from
// an agent's committed state, with the results key from configuration, and
// publishes the public keys (the current one first, then older keys kept
// for rotation) as a JWKS. Immutable after construction: thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(auto issuer,
//       ResultIssuer::Create(key_pem, old_pems, absl::Minutes(5), "v-1"));
//   ResultIssuer::Subject s{tenant, agent_id, state, failure_codes, ...};
//   VOUCH_ASSIGN_OR_RETURN(auto issued, issuer->Issue(s, nonce, now));
#ifndef VOUCH_VERIFIER_RESULT_ISSUER_H_
#define VOUCH_VERIFIER_RESULT_ISSUER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/ear/ear.h"
#include "core/ear/notice.h"

namespace vouch::verifier {

class ResultIssuer {
 public:
  // `key_pem`: the P-256 private results key; `old_public_pems`: public
  // keys (or certificates) of earlier results keys, still listed. `ttl`:
  // how long a token is valid (exp - iat).
  static absl::StatusOr<std::unique_ptr<ResultIssuer>> Create(
      const std::string& key_pem,
      const std::vector<std::string>& old_public_pems, absl::Duration ttl,
      const std::string& verifier_id);

  // What a token is about: an agent's committed state.
  struct Subject {
    std::string tenant;
    std::string agent_id;
    int state = 0;                   // v1::AttestationState
    std::vector<int> failure_codes;  // of the verdict that failed
    bool runtime_policy = false;
    bool boot_policy = false;
    std::optional<absl::Time> verdict_at;
    std::string attestation_id;
  };
  struct Issued {
    std::string token;
    std::string claims_json;
    absl::Time expires_at;
  };
  // `nonce` must be valid (core::ear::ValidateNonce) or empty.
  absl::StatusOr<Issued> Issue(const Subject& subject, const std::string& nonce,
                               absl::Time now) const;

  // The action notice `n` signed with the results key (core/ear/notice.h).
  absl::StatusOr<std::string> SignNotice(const core::ear::Notice& n) const {
    return core::ear::SignNotice(signer_, n);
  }

  // {"keys":[current, older...]}.
  const std::string& jwks() const { return jwks_; }

 private:
  ResultIssuer(core::ear::Signer signer, std::string jwks, absl::Duration ttl,
               std::string build)
      : signer_(std::move(signer)),
        jwks_(std::move(jwks)),
        ttl_(ttl),
        build_(std::move(build)) {}

  core::ear::Signer signer_;
  std::string jwks_;
  absl::Duration ttl_;
  std::string build_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_RESULT_ISSUER_H_
