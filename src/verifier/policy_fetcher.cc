#include "verifier/policy_fetcher.h"

#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/http_client.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "core/ima/dsse.h"
#include "vouch/v1/admin.pb.h"

namespace vouch::verifier {
namespace {

// How long a verifier holds a claimed source: the fetch's own bound and
// the database writes after it.
absl::Duration FetchLease(const PolicyFetchOptions& o) {
  return o.connect_timeout + o.timeout + absl::Seconds(30);
}

}  // namespace

absl::StatusOr<std::vector<core::ima::TrustedPolicyKey>> PolicyFetcher::KeysFor(
    const std::string& tenant) const {
  std::vector<core::ima::TrustedPolicyKey> keys;
  if (sources_ != nullptr) {
    VOUCH_ASSIGN_OR_RETURN(std::vector<store::PolicySigningKeyRow> own,
                           sources_->ListKeys(tenant));
    for (store::PolicySigningKeyRow& k : own) {
      keys.push_back({std::move(k.key_id), std::move(k.pem)});
    }
  }
  for (const std::string& pem : pool_keys_) {
    absl::StatusOr<std::string> id = core::ima::DssePemKeyId(pem);
    keys.push_back({id.ok() ? *id : std::string(), pem});
  }
  return keys;
}

absl::StatusOr<PolicyFetcher::Outcome> PolicyFetcher::Fetch(
    const store::PolicySourceRow& source, const std::string& description,
    bool create, bool* download_failed) {
  VOUCH_RETURN_IF_ERROR(core::ima::ValidatePolicyUrl(source.url));
  absl::StatusOr<store::PolicyRow> current =
      policies_->GetPolicy(source.tenant, source.name, 0);
  if (!current.ok() && !(create && absl::IsNotFound(current.status()))) {
    return current.status();
  }
  if (current.ok() && current->kind != v1::POLICY_KIND_RUNTIME) {
    return absl::FailedPreconditionError(
        absl::StrCat("policy ", source.name,
                     " is not a runtime policy: only runtime policies are "
                     "fetched from a URL"));
  }
  HttpGetOptions get;
  get.ca_file = options_.ca_file;
  get.max_bytes = kMaxPolicyBytes;
  get.connect_timeout = options_.connect_timeout;
  get.timeout = options_.timeout;
  // A conditional request only when the newest version came from this URL.
  const std::string origin = absl::StrCat("url:", source.url);
  if (current.ok() && current->origin == origin) {
    get.if_none_match = source.etag;
  }
  absl::StatusOr<HttpResponse> got = HttpGet(source.url, get);
  if (!got.ok()) {
    if (download_failed != nullptr) *download_failed = true;
    return got.status();
  }
  HttpResponse& r = *got;
  Outcome out;
  out.etag = r.etag;
  if (r.status == 304) {
    if (!current.ok()) {
      return absl::UnavailableError("fetch failed: 304 without a version");
    }
    out.row = *std::move(current);
    return out;
  }
  const std::string digest = Sha256(r.body);
  if (current.ok() && current->origin == origin &&
      current->source_sha256 == digest) {
    out.row = *std::move(current);
    return out;
  }
  VOUCH_ASSIGN_OR_RETURN(std::vector<core::ima::TrustedPolicyKey> keys,
                         KeysFor(source.tenant));
  VOUCH_ASSIGN_OR_RETURN(
      core::ima::FetchedPolicy fetched,
      core::ima::ReadFetchedPolicy(r.body, keys, source.require_signature,
                                   kMaxPolicyBytes));
  if (current.ok()) {
    VOUCH_RETURN_IF_ERROR(
        core::ima::CheckRelease(fetched.release, current->release));
  }
  store::PolicyRow row;
  row.tenant = source.tenant;
  row.name = source.name;
  row.kind = v1::POLICY_KIND_RUNTIME;
  row.sha256 = Sha256(fetched.policy);
  row.content = std::move(fetched.policy);
  row.description = description;
  row.created_by = source.created_by;
  row.release = fetched.release;
  row.origin = origin;
  row.source_sha256 = digest;
  row.signer_key_id = fetched.key_id;
  // Fenced on the version read above: a version stored meanwhile (whose
  // release this one was not compared with) makes this fetch fail.
  absl::StatusOr<store::PolicyRow> stored =
      current.ok() ? policies_->UpdatePolicy(row, current->version)
                   : policies_->AddPolicy(row);
  if (!stored.ok()) return stored.status();
  out.result = Result::kStored;
  out.row = *std::move(stored);
  return out;
}

int PolicyFetcher::RefreshDue(const std::string& holder) {
  if (sources_ == nullptr) return 0;
  int fetched = 0;
  // Bounded per round, so a stop request is seen between rounds.
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::optional<store::PolicySourceRow>> due =
        sources_->ClaimDue(holder, FetchLease(options_));
    if (!due.ok()) {
      Log(LogLevel::kWarning, "policy refresh: claim failed",
          {{"error", due.status().message()}});
      break;
    }
    if (!due->has_value()) break;
    const store::PolicySourceRow& s = **due;
    ++fetched;
    absl::StatusOr<Outcome> o = Fetch(s, "scheduled refresh", false);
    absl::Status recorded;
    if (!o.ok() && absl::IsNotFound(o.status())) {
      // The policy was removed: its source goes with it.
      recorded = sources_->DeleteSource(s.tenant, s.name);
      Log(LogLevel::kInfo, "policy refresh: policy removed, source dropped",
          {{"tenant", s.tenant}, {"policy", s.name}});
    } else if (!o.ok()) {
      Log(LogLevel::kWarning, "policy refresh refused",
          {{"tenant", s.tenant},
           {"policy", s.name},
           {"url", s.url},
           {"error", o.status().message()}});
      recorded = sources_->RecordFetch(s, holder, "refused",
                                       std::string(o.status().message()), "");
    } else {
      const bool stored = o->result == Result::kStored;
      if (stored) {
        Log(LogLevel::kInfo, "policy refreshed: new version stored",
            {{"tenant", s.tenant},
             {"policy", s.name},
             {"version", o->row.version},
             {"release", o->row.release}});
      }
      recorded = sources_->RecordFetch(
          s, holder, stored ? "stored" : "unchanged", "", o->etag);
    }
    if (!recorded.ok()) {
      Log(LogLevel::kWarning, "policy refresh: outcome not recorded",
          {{"policy", s.name}, {"error", recorded.message()}});
    }
  }
  return fetched;
}

}  // namespace vouch::verifier
