#include "verifier/result_issuer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/app.h"
#include "common/status_macros.h"
#include "core/agent_state.h"

namespace vouch::verifier {

absl::StatusOr<std::unique_ptr<ResultIssuer>> ResultIssuer::Create(
    const std::string& key_pem, const std::vector<std::string>& old_public_pems,
    absl::Duration ttl, const std::string& verifier_id) {
  VOUCH_ASSIGN_OR_RETURN(core::ear::Signer signer,
                         core::ear::Signer::FromPem(key_pem));
  std::vector<core::ear::PublicKey> keys = {signer.public_key()};
  for (const std::string& pem : old_public_pems) {
    VOUCH_ASSIGN_OR_RETURN(core::ear::PublicKey key,
                           core::ear::PublicKeyFromPem(pem));
    if (core::ear::KeySet(keys).Find(key.kid) == nullptr) {
      keys.push_back(std::move(key));
    }
  }
  if (keys.size() > core::ear::kMaxJwksKeys) {
    return absl::InvalidArgumentError("more than 16 results keys");
  }
  std::string jwks = core::ear::KeySet(std::move(keys)).ToJwks();
  return std::unique_ptr<ResultIssuer>(new ResultIssuer(
      std::move(signer), std::move(jwks), ttl,
      absl::StrCat("vouch-verifier ", BuildVersion(), " ", verifier_id)));
}

absl::StatusOr<ResultIssuer::Issued> ResultIssuer::Issue(
    const Subject& subject, const std::string& nonce, absl::Time now) const {
  if (!nonce.empty()) VOUCH_RETURN_IF_ERROR(core::ear::ValidateNonce(nonce));
  core::ear::Result r;
  r.agent_id = subject.agent_id;
  r.tenant = subject.tenant;
  r.appraisal =
      core::ear::Appraise(subject.state, subject.failure_codes,
                          subject.runtime_policy, subject.boot_policy);
  r.state = std::string(core::AgentStateName(subject.state));
  r.verifier_build = build_;
  r.verdict_at = subject.verdict_at;
  r.attestation_id = subject.attestation_id;
  r.issued_at = now;
  r.expires_at = now + ttl_;
  r.nonce = nonce;
  VOUCH_ASSIGN_OR_RETURN(std::string token, signer_.Sign(r));
  return Issued{std::move(token), core::ear::ClaimsJson(r), r.expires_at};
}

}  // namespace vouch::verifier
