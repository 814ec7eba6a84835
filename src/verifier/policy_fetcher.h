// File: verifier/policy_fetcher.h
// Runtime policies from a URL (docs/ima.md "Policy lifecycle"): downloads a
// policy source over HTTPS (common/http_client.h), reads it with the pure
// rules of core/ima/policy_source.h against the tenant's trusted keys (its
// own, then the pool-wide verifier.policy_signing_keys), refuses a
// downgrade, and only then stores a new version; an unchanged document
// (same ETag or same SHA-256 as the newest version's) stores nothing. The
// scheduled refresh claims due sources through a lease in the database, so
// one verifier of the pool fetches each source at a time. Documents are
// untrusted. Thread-safe; blocking (HTTP and libpq): never call it inside a
// gRPC reaction.
//
//   PolicyFetcher fetcher(&store, &sources, pool_keys, options);
//   VOUCH_ASSIGN_OR_RETURN(PolicyFetcher::Outcome o, fetcher.Fetch(src, ""));
//   fetcher.RefreshDue("verifier-1");  // from a background thread
#ifndef VOUCH_VERIFIER_POLICY_FETCHER_H_
#define VOUCH_VERIFIER_POLICY_FETCHER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/ima/policy_source.h"
#include "store/pg_policy_sources.h"
#include "store/verifier_store.h"

namespace vouch::verifier {

inline constexpr size_t kMaxPolicyBytes = 16 << 20;  // admin.proto

struct PolicyFetchOptions {
  std::string ca_file;  // Empty: the system's CA bundle.
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(60);
};

class PolicyFetcher {
 public:
  // `sources` may be nullptr (no database sources: only `pool_keys`).
  PolicyFetcher(store::PolicyStore* policies, store::PgPolicySources* sources,
                std::vector<std::string> pool_keys, PolicyFetchOptions options)
      : policies_(policies),
        sources_(sources),
        pool_keys_(std::move(pool_keys)),
        options_(std::move(options)) {}

  // The keys a DSSE-signed policy of `tenant` may verify with: the tenant's
  // own, then the pool-wide ones.
  absl::StatusOr<std::vector<core::ima::TrustedPolicyKey>> KeysFor(
      const std::string& tenant) const;

  enum class Result { kStored, kUnchanged };
  struct Outcome {
    Result result = Result::kUnchanged;
    store::PolicyRow row;  // The newest version after the fetch.
    std::string etag;
  };
  // Fetches `source` and stores a new version of policy (tenant, name) when
  // the document changed and passes every check; `create`: the policy may
  // be new. Errors as ImportPolicyRequest.url documents them; the newest
  // version is unchanged on any error. `download_failed` (optional) is set
  // when the error is the download's (HTTP, TLS, timeout), not the store's.
  absl::StatusOr<Outcome> Fetch(const store::PolicySourceRow& source,
                                const std::string& description, bool create,
                                bool* download_failed = nullptr);

  // One round of the scheduled refresh: fetches every due source this
  // verifier can claim (as `holder`) and records each outcome. Returns how
  // many it fetched.
  int RefreshDue(const std::string& holder);

 private:
  store::PolicyStore* policies_;
  store::PgPolicySources* sources_;
  std::vector<std::string> pool_keys_;
  PolicyFetchOptions options_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_POLICY_FETCHER_H_
