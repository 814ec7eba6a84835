#include "verifier/policy_cache.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "vouch/v1/admin.pb.h"

namespace vouch::verifier {

std::shared_ptr<PolicyCache::Entry> PolicyCache::EntryFor(
    const std::string& tenant, const std::string& name, int kind) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Entry>& e =
      entries_[absl::StrCat(kind, "/", tenant, "/", name)];
  if (e == nullptr) e = std::make_shared<Entry>();
  return e;
}

template <typename T>
std::optional<Versioned<T>> PolicyCache::TryGet(const std::string& tenant,
                                                const std::string& name,
                                                int kind, absl::Time now) {
  std::shared_ptr<Entry> entry = EntryFor(tenant, name, kind);
  // Never wait for a loader (it may be querying the database).
  if (!entry->mu.TryLock()) return std::nullopt;
  std::optional<Versioned<T>> out;
  if (entry->policy != nullptr && now < entry->checked + ttl_) {
    out = Versioned<T>{entry->version,
                       std::static_pointer_cast<const T>(entry->policy)};
    hits_.fetch_add(1, std::memory_order_relaxed);
  }
  entry->mu.Unlock();
  return out;
}

template <typename T, typename Parse>
absl::StatusOr<Versioned<T>> PolicyCache::Get(const std::string& tenant,
                                              const std::string& name, int kind,
                                              absl::Time now, Parse parse) {
  std::shared_ptr<Entry> entry = EntryFor(tenant, name, kind);
  absl::MutexLock lock(&entry->mu);  // A version loads once.
  if (entry->policy != nullptr && now < entry->checked + ttl_) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    return Versioned<T>{entry->version,
                        std::static_pointer_cast<const T>(entry->policy)};
  }
  VOUCH_ASSIGN_OR_RETURN(auto newest,
                         store_->NewestPolicyVersion(tenant, name));
  if (newest.second != kind) {
    return absl::FailedPreconditionError(
        absl::StrCat("policy ", name, " is not of the enrolled kind"));
  }
  if (entry->policy == nullptr || entry->version != newest.first) {
    VOUCH_ASSIGN_OR_RETURN(store::PolicyRow row,
                           store_->GetPolicy(tenant, name, newest.first));
    absl::StatusOr<std::shared_ptr<const T>> parsed = parse(row.content);
    if (!parsed.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy ", name, " version ", row.version,
                       " does not load: ", parsed.status().message()));
    }
    entry->policy = *std::move(parsed);
    entry->version = row.version;
    absl::MutexLock count(&mu_);
    ++loads_;
  }
  entry->checked = now;
  return Versioned<T>{entry->version,
                      std::static_pointer_cast<const T>(entry->policy)};
}

std::optional<Versioned<core::ima::RuntimePolicy>> PolicyCache::TryRuntime(
    const std::string& tenant, const std::string& name, absl::Time now) {
  return TryGet<core::ima::RuntimePolicy>(tenant, name, v1::POLICY_KIND_RUNTIME,
                                          now);
}

std::optional<Versioned<core::boot::BootPolicy>> PolicyCache::TryBoot(
    const std::string& tenant, const std::string& name, absl::Time now) {
  return TryGet<core::boot::BootPolicy>(tenant, name, v1::POLICY_KIND_BOOT,
                                        now);
}

absl::StatusOr<Versioned<core::ima::RuntimePolicy>> PolicyCache::Runtime(
    const std::string& tenant, const std::string& name, absl::Time now) {
  return Get<core::ima::RuntimePolicy>(
      tenant, name, v1::POLICY_KIND_RUNTIME, now,
      [this](const std::string& json) {
        core::ima::PolicyLoadOptions opts;
        opts.path_hash_key = key_;
        return core::ima::RuntimePolicy::FromJson(json, opts);
      });
}

absl::StatusOr<Versioned<core::boot::BootPolicy>> PolicyCache::Boot(
    const std::string& tenant, const std::string& name, absl::Time now) {
  return Get<core::boot::BootPolicy>(
      tenant, name, v1::POLICY_KIND_BOOT, now,
      [](const std::string& json)
          -> absl::StatusOr<std::shared_ptr<const core::boot::BootPolicy>> {
        VOUCH_ASSIGN_OR_RETURN(core::boot::BootPolicy p,
                               core::boot::BootPolicy::FromJson(json));
        return std::make_shared<const core::boot::BootPolicy>(std::move(p));
      });
}

std::optional<Versioned<core::boot::PcrPolicy>> PolicyCache::TryPcr(
    const std::string& tenant, const std::string& name, absl::Time now) {
  return TryGet<core::boot::PcrPolicy>(tenant, name, v1::POLICY_KIND_PCR, now);
}

absl::StatusOr<Versioned<core::boot::PcrPolicy>> PolicyCache::Pcr(
    const std::string& tenant, const std::string& name, absl::Time now) {
  return Get<core::boot::PcrPolicy>(
      tenant, name, v1::POLICY_KIND_PCR, now,
      [](const std::string& json)
          -> absl::StatusOr<std::shared_ptr<const core::boot::PcrPolicy>> {
        VOUCH_ASSIGN_OR_RETURN(core::boot::PcrPolicy p,
                               core::boot::PcrPolicy::FromJson(json));
        return std::make_shared<const core::boot::PcrPolicy>(std::move(p));
      });
}

namespace {
// The cache entry kind of a policy's roll-outs (no PolicyKind is negative).
constexpr int kRolloutsKind = -1;
}  // namespace

std::optional<Rollouts> PolicyCache::TryRollouts(const std::string& tenant,
                                                 const std::string& name,
                                                 absl::Time now) {
  std::optional<Versioned<std::vector<store::RolloutRow>>> hit =
      TryGet<std::vector<store::RolloutRow>>(tenant, name, kRolloutsKind, now);
  if (!hit) return std::nullopt;
  return hit->policy;
}

absl::StatusOr<Rollouts> PolicyCache::RolloutsOf(const std::string& tenant,
                                                 const std::string& name,
                                                 absl::Time now) {
  std::shared_ptr<Entry> entry = EntryFor(tenant, name, kRolloutsKind);
  absl::MutexLock lock(&entry->mu);
  if (entry->policy == nullptr || now >= entry->checked + ttl_) {
    VOUCH_ASSIGN_OR_RETURN(std::vector<store::RolloutRow> rows,
                           store_->ListRollouts(tenant, name));
    entry->policy =
        std::make_shared<const std::vector<store::RolloutRow>>(std::move(rows));
    entry->checked = now;
  } else {
    hits_.fetch_add(1, std::memory_order_relaxed);
  }
  return std::static_pointer_cast<const std::vector<store::RolloutRow>>(
      entry->policy);
}

int PolicyCache::loads() const {
  absl::MutexLock lock(&mu_);
  return loads_;
}

}  // namespace vouch::verifier
