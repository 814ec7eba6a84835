// File: verifier/policy_cache.h
// Policies as the verifier uses them: loaded once per (tenant, name,
// version) and shared, immutable, by every agent enrolled with them. The
// newest version number of a name is re-read from the database at most once
// per `ttl`, so an update reaches running agents within ttl without a query
// per quote. Policy content was validated when it was stored, but is parsed
// again here (a bad row is kFailedPrecondition, never a pass). The
// attestation session sees it as a PolicySource: TryRuntime/TryBoot/TryPcr
// never block and miss when a load is due. Thread-safe.
//
//   PolicyCache cache(&store, absl::Seconds(1), key);
//   VOUCH_ASSIGN_OR_RETURN(auto p, cache.Runtime(tenant, "web", now));  //
//   blocks std::optional<Versioned<RuntimePolicy>> q = cache.TryRuntime(t,
//   "web", now);
#ifndef VOUCH_VERIFIER_POLICY_CACHE_H_
#define VOUCH_VERIFIER_POLICY_CACHE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/boot/boot_policy.h"
#include "core/boot/pcr_policy.h"
#include "core/ima/runtime_policy.h"
#include "store/verifier_store.h"

namespace vouch::verifier {

template <typename T>
struct Versioned {
  uint64_t version = 0;
  std::shared_ptr<const T> policy;  // Null: none enrolled.
};

using Rollouts = std::shared_ptr<const std::vector<store::RolloutRow>>;

// Policies without waiting: a hit, or nullopt when the policy must be
// loaded (missing, older than the cache's ttl, or being loaded now).
class PolicySource {
 public:
  virtual ~PolicySource() = default;
  virtual std::optional<Versioned<core::ima::RuntimePolicy>> TryRuntime(
      const std::string& tenant, const std::string& name, absl::Time now) = 0;
  virtual std::optional<Versioned<core::boot::BootPolicy>> TryBoot(
      const std::string& tenant, const std::string& name, absl::Time now) = 0;
  virtual std::optional<Versioned<core::boot::PcrPolicy>> TryPcr(
      const std::string& tenant, const std::string& name, absl::Time now) = 0;
  // The roll-outs of runtime policy `name` (store::RolloutRow), re-read
  // like a policy version; never null when set.
  virtual std::optional<Rollouts> TryRollouts(const std::string& tenant,
                                              const std::string& name,
                                              absl::Time now) = 0;
};

class PolicyCache final : public PolicySource {
 public:
  PolicyCache(store::PolicyStore* store, absl::Duration ttl,
              core::ima::PathHashKey path_hash_key)
      : store_(store), ttl_(ttl), key_(path_hash_key) {}

  // Blocking (database): the newest version, loaded once. kNotFound when
  // the policy is gone, kFailedPrecondition when it is of another kind or
  // does not load, kUnavailable when the database is down.
  absl::StatusOr<Versioned<core::ima::RuntimePolicy>> Runtime(
      const std::string& tenant, const std::string& name, absl::Time now);
  absl::StatusOr<Versioned<core::boot::BootPolicy>> Boot(
      const std::string& tenant, const std::string& name, absl::Time now);
  absl::StatusOr<Versioned<core::boot::PcrPolicy>> Pcr(
      const std::string& tenant, const std::string& name, absl::Time now);
  // Blocking: the roll-outs of runtime policy `name`, re-read at most once
  // per ttl; kUnavailable when the database is down.
  absl::StatusOr<Rollouts> RolloutsOf(const std::string& tenant,
                                      const std::string& name, absl::Time now);

  // PolicySource.
  std::optional<Versioned<core::ima::RuntimePolicy>> TryRuntime(
      const std::string& tenant, const std::string& name,
      absl::Time now) override;
  std::optional<Versioned<core::boot::BootPolicy>> TryBoot(
      const std::string& tenant, const std::string& name,
      absl::Time now) override;
  std::optional<Versioned<core::boot::PcrPolicy>> TryPcr(
      const std::string& tenant, const std::string& name,
      absl::Time now) override;
  std::optional<Rollouts> TryRollouts(const std::string& tenant,
                                      const std::string& name,
                                      absl::Time now) override;

  // Distinct policy versions loaded so far (for tests and metrics).
  int loads() const;
  // Lookups answered from the cache so far (for metrics).
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    absl::Mutex mu;  // Held while loading, so a version loads once.
    uint64_t version ABSL_GUARDED_BY(mu) = 0;
    absl::Time checked ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    std::shared_ptr<const void> policy ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Entry> EntryFor(const std::string& tenant,
                                  const std::string& name, int kind);
  // Locks the entry conditionally (TryLock), which the analysis cannot
  // follow.
  template <typename T>
  std::optional<Versioned<T>> TryGet(
      const std::string& tenant, const std::string& name, int kind,
      absl::Time now) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  template <typename T, typename Parse>
  absl::StatusOr<Versioned<T>> Get(const std::string& tenant,
                                   const std::string& name, int kind,
                                   absl::Time now, Parse parse);

  store::PolicyStore* store_;
  const absl::Duration ttl_;
  const core::ima::PathHashKey key_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> hits_{0};
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_POLICY_CACHE_H_
