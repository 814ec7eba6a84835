#include "verifier/policy_cache.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "vouch/v1/admin.pb.h"

namespace vouch::verifier {

template <typename T, typename Parse>
absl::StatusOr<Versioned<T>> PolicyCache::Get(const std::string& tenant,
                                              const std::string& name, int kind,
                                              bool may_block, Parse parse) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<Entry>& e =
        entries_[absl::StrCat(kind, "/", tenant, "/", name)];
    if (e == nullptr) e = std::make_shared<Entry>();
    entry = e;
  }
  const absl::Time now = absl::Now();
  if (!may_block) {
    // Never wait for a loader (it may be querying the database).
    if (!entry->mu.TryLock()) return absl::UnavailableError(kWouldBlock);
  } else {
    entry->mu.Lock();
  }
  // Unlocks entry->mu on every return below.
  std::unique_ptr<absl::Mutex, void (*)(absl::Mutex*)> unlock(
      &entry->mu, [](absl::Mutex* m) { m->Unlock(); });
  if (entry->policy != nullptr && now < entry->checked + ttl_) {
    return Versioned<T>{entry->version,
                        std::static_pointer_cast<const T>(entry->policy)};
  }
  if (!may_block) return absl::UnavailableError(kWouldBlock);
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

absl::StatusOr<Versioned<core::ima::RuntimePolicy>> PolicyCache::Runtime(
    const std::string& tenant, const std::string& name, bool may_block) {
  return Get<core::ima::RuntimePolicy>(
      tenant, name, v1::POLICY_KIND_RUNTIME, may_block,
      [this](const std::string& json) {
        core::ima::PolicyLoadOptions opts;
        opts.path_hash_key = key_;
        return core::ima::RuntimePolicy::FromJson(json, opts);
      });
}

absl::StatusOr<Versioned<core::boot::BootPolicy>> PolicyCache::Boot(
    const std::string& tenant, const std::string& name, bool may_block) {
  return Get<core::boot::BootPolicy>(
      tenant, name, v1::POLICY_KIND_BOOT, may_block,
      [](const std::string& json)
          -> absl::StatusOr<std::shared_ptr<const core::boot::BootPolicy>> {
        VOUCH_ASSIGN_OR_RETURN(core::boot::BootPolicy p,
                               core::boot::BootPolicy::FromJson(json));
        return std::make_shared<const core::boot::BootPolicy>(std::move(p));
      });
}

int PolicyCache::loads() const {
  absl::MutexLock lock(&mu_);
  return loads_;
}

}  // namespace vouch::verifier
