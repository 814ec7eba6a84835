#include "store/pg_pool.h"

#include <utility>

namespace vouch::store {

PgOptions PgOptionsFromConfig(const Config& cfg) {
  PgOptions o;
  o.connect_timeout = cfg.GetDuration("database", "connect_timeout");
  o.statement_timeout = cfg.GetDuration("database", "statement_timeout");
  o.keepalives_idle = cfg.GetDuration("database", "keepalives_idle");
  o.keepalives_interval = cfg.GetDuration("database", "keepalives_interval");
  o.keepalives_count =
      static_cast<int>(cfg.GetInt("database", "keepalives_count"));
  o.tcp_user_timeout = cfg.GetDuration("database", "tcp_user_timeout");
  return o;
}

PgPool::PgPool(std::string conninfo, int max_connections, PgOptions options)
    : conninfo_(std::move(conninfo)),
      max_(max_connections < 1 ? 1 : max_connections),
      options_(options) {}

PgPool::Lease::~Lease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_));
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire(absl::Duration wait) {
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < max_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&available), wait)) {
      return absl::UnavailableError("no database connection free");
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
  }
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(conninfo_, options_);
  if (!conn.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return conn.status();
  }
  return Lease(this, *std::move(conn));
}

void PgPool::Release(std::unique_ptr<PgConnection> conn) {
  absl::MutexLock lock(&mu_);
  if (conn->Healthy()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;  // Dropped; the next Acquire reconnects.
  }
}

}  // namespace vouch::store
