#include "store/pg_pool.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

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
  o.idle_check = cfg.GetDuration("database", "idle_check");
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
  wait = std::min(wait, CallDeadline::Current() - absl::Now());
  const absl::Time give_up = absl::Now() + wait;
  while (true) {
    Idle idle;
    {
      absl::MutexLock lock(&mu_);
      auto available = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !idle_.empty() || open_ < max_;
      };
      const absl::Time start = absl::Now();
      const bool got =
          mu_.AwaitWithTimeout(absl::Condition(&available),
                               std::max(absl::ZeroDuration(), give_up - start));
      waited_ += absl::Now() - start;
      if (!got) {
        ++failed_;
        return absl::UnavailableError("no database connection free");
      }
      if (idle_.empty()) {
        ++open_;
        break;  // Open a new one below.
      }
      idle = std::move(idle_.back());
      idle_.pop_back();
    }
    if (StillAlive(*idle.conn, idle.since)) {
      absl::MutexLock lock(&mu_);
      ++acquired_;
      return Lease(this, std::move(idle.conn));
    }
    // Dead while idle: drop it; the next round takes another idle one or
    // opens a fresh connection in its place.
    idle.conn.reset();
    absl::MutexLock lock(&mu_);
    --open_;
    ++stale_;
  }
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(conninfo_, options_);
  absl::MutexLock lock(&mu_);
  if (!conn.ok()) {
    --open_;
    ++failed_;
    return conn.status();
  }
  ++acquired_;
  return Lease(this, *std::move(conn));
}

bool PgPool::StillAlive(PgConnection& conn, absl::Time since) const {
  if (!conn.Healthy()) return false;
  const absl::Time now = absl::Now();
  if (now - since < options_.idle_check) return true;
  const CallDeadline bound(now + kIdleCheckTimeout);
  return conn.Query("SELECT 1").ok() && conn.Healthy();
}

PgPool::Stats PgPool::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s;
  s.max = max_;
  s.open = open_;
  s.in_use = open_ - static_cast<int>(idle_.size());
  s.acquired = acquired_;
  s.failed = failed_;
  s.stale = stale_;
  s.wait_seconds = absl::ToDoubleSeconds(waited_);
  return s;
}

void PgPool::Release(std::unique_ptr<PgConnection> conn) {
  absl::MutexLock lock(&mu_);
  if (conn->Healthy()) {
    idle_.push_back(Idle{std::move(conn), absl::Now()});
  } else {
    --open_;  // Dropped; the next Acquire reconnects.
  }
}

}  // namespace vouch::store
