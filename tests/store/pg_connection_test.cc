// PgConnection's limits against a real PostgreSQL behind harness/tcp_proxy:
// a database that accepts bytes but never answers ends each call with
// kUnavailable (and the connection is marked broken) instead of hanging; a
// new connection into the black hole fails the same way; statement_timeout
// is set on every connection; after healing, the pool reconnects; an idle
// pooled connection that died is checked and replaced before use.
#include "store/pg_connection.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness/pg_cluster.h"
#include "harness/tcp_proxy.h"
#include "store/pg_pool.h"

namespace vouch {
namespace {

using testing::PgCluster;
using testing::TcpProxy;

// Short limits, so the test takes seconds.
store::PgOptions Quick() {
  store::PgOptions o;
  o.connect_timeout = absl::Seconds(2);
  o.statement_timeout = absl::Seconds(1);
  return o;
}

// PostgreSQL behind a TCP proxy the test can blackhole, and the URL through
// the proxy.
struct Proxied {
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<TcpProxy> proxy;
  std::string url;
};

Proxied StartProxied() {
  Proxied p;
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  p.pg = *std::move(pg);
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start("127.0.0.1", p.pg->port());
  REQUIRE(proxy.ok());
  p.proxy = *std::move(proxy);
  p.url = absl::StrCat("host=127.0.0.1 port=", p.proxy->port(),
                       " user=", PgCluster::kUser, " dbname=postgres");
  return p;
}

TEST_CASE(
    "PgConnection: a blackholed database is UNAVAILABLE, never a hang, and "
    "the pool reconnects after it heals",
    "[pg][store][fault]") {
  Proxied db_behind = StartProxied();
  std::unique_ptr<TcpProxy>& proxy = db_behind.proxy;
  const std::string& url = db_behind.url;

  absl::StatusOr<std::unique_ptr<store::PgConnection>> db =
      store::PgConnection::Connect(url, Quick());
  REQUIRE(db.ok());
  absl::StatusOr<store::PgRows> shown = (*db)->Query("SHOW statement_timeout");
  REQUIRE(shown.ok());
  CHECK(shown->rows.at(0).at(0) == std::optional<std::string>("1s"));
  // The server enforces it.
  absl::StatusOr<store::PgRows> slow = (*db)->Query("SELECT pg_sleep(3)");
  CHECK(absl::IsUnavailable(slow.status()));  // 57014 query_canceled
  CHECK((*db)->Healthy());

  proxy->Blackhole();
  absl::StatusOr<store::PgRows> lost = (*db)->Query("SELECT 1");
  INFO(lost.status().message());
  CHECK(absl::IsUnavailable(lost.status()));
  CHECK(!(*db)->Healthy());
  // Once broken, every call fails at once (a ROLLBACK after the failure
  // does not wait again).
  CHECK(absl::IsUnavailable((*db)->Exec("ROLLBACK").status()));
  CHECK(absl::IsUnavailable(
      (*db)->QueryPipelined({{"SELECT 1", {}, {}}}).status()));
  absl::StatusOr<std::unique_ptr<store::PgConnection>> fresh =
      store::PgConnection::Connect(url, Quick());
  CHECK(absl::IsUnavailable(fresh.status()));

  store::PgPool pool(url, 2, Quick());
  CHECK(absl::IsUnavailable(pool.Acquire().status()));
  proxy->Heal();
  absl::StatusOr<store::PgPool::Lease> lease = pool.Acquire();
  REQUIRE(lease.ok());
  CHECK((*lease)->Query("SELECT 1").ok());
}

TEST_CASE(
    "PgConnection: binary bytea parameters carry any bytes, prepared or not, "
    "and a statement that uses one as another type does not run",
    "[pg][store]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  absl::StatusOr<std::unique_ptr<store::PgConnection>> db =
      store::PgConnection::Connect(
          absl::StrCat("host=127.0.0.1 port=", (*pg)->port(),
                       " user=", PgCluster::kUser, " dbname=postgres"));
  REQUIRE(db.ok());
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  const std::string with_nul("a\0b\xff\\x", 6);
  // $1 binary bytea, $2 text, $3 binary bytea (NULL), $4 binary (empty).
  const uint64_t binary = 1 | 4 | 8;
  for (const char* name : {"", "bytea_round_trip"}) {
    INFO("prepared as '" << name << "'");
    absl::StatusOr<std::vector<store::PgRows>> rows = (*db)->QueryPipelined(
        {{"SELECT encode($1, 'hex'), $2::text, $3 IS NULL, length($4)",
          {all_bytes, "\\x00", std::nullopt, ""},
          name,
          binary},
         {"SELECT encode($1, 'hex')", {with_nul}, name[0] ? "second" : "", 1}});
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 2);
    REQUIRE((*rows)[0].rows.size() == 1);
    const auto& r = (*rows)[0].rows[0];
    std::string hex;
    for (int i = 0; i < 256; ++i) {
      absl::StrAppend(&hex, absl::Hex(i, absl::kZeroPad2));
    }
    CHECK(r[0] == hex);
    CHECK(r[1] == "\\x00");  // Text stays text.
    CHECK(r[2] == "t");
    CHECK(r[3] == "0");
    CHECK((*rows)[1].rows[0][0] == "610062ff5c78");
  }
  // Declared bytea: PostgreSQL refuses it where an integer is needed
  // instead of reading the bytes as something else.
  absl::StatusOr<std::vector<store::PgRows>> wrong =
      (*db)->QueryPipelined({{"SELECT $1::integer + 1",
                              {std::string("\x01\x00\x00\x00", 4)},
                              {},
                              1}});
  CHECK(!wrong.ok());
}

TEST_CASE(
    "PgConnection: a CallDeadline cuts database waits short on its thread "
    "only, and the cut connection is dropped",
    "[pg][store][fault]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  const std::string url =
      absl::StrCat("host=127.0.0.1 port=", (*pg)->port(),
                   " user=", PgCluster::kUser, " dbname=postgres");
  store::PgOptions o;  // statement_timeout 10 s
  store::PgPool pool(url, 1, o);
  CHECK(store::CallDeadline::Current() == absl::InfiniteFuture());
  {
    absl::StatusOr<store::PgPool::Lease> db = pool.Acquire();
    REQUIRE(db.ok());
    // Without the bound this statement succeeds after 3 s.
    const store::CallDeadline bound(absl::Now() + absl::Milliseconds(500));
    {
      const store::CallDeadline looser(absl::Now() + absl::Hours(1));
      CHECK(store::CallDeadline::Current() < absl::Now() + absl::Seconds(1));
    }
    absl::StatusOr<store::PgRows> slow = (*db)->Query("SELECT pg_sleep(3)");
    INFO(slow.status().message());
    CHECK(absl::IsUnavailable(slow.status()));
    CHECK(!(*db)->Healthy());  // Its late reply must not reach a next caller.
  }
  CHECK(store::CallDeadline::Current() == absl::InfiniteFuture());

  // The pool's one connection is held for 3 s by another thread: a bounded
  // Acquire gives up, an unbounded one gets it when it is released.
  absl::StatusOr<store::PgPool::Lease> held = pool.Acquire();
  REQUIRE(held.ok());
  std::thread holder([lease = std::move(*held)]() mutable {
    absl::SleepFor(absl::Seconds(3));
    (void)lease->Query("SELECT 1");
  });
  {
    const store::CallDeadline bound(absl::Now() + absl::Milliseconds(200));
    CHECK(absl::IsUnavailable(pool.Acquire().status()));
  }
  absl::StatusOr<store::PgPool::Lease> later = pool.Acquire();
  holder.join();
  REQUIRE(later.ok());
  CHECK((*later)->Query("SELECT 1").ok());
}

TEST_CASE(
    "PgPool: an idle connection that died (server restart, a blackholing "
    "proxy) is checked and replaced, never handed out dead",
    "[pg][store][fault]") {
  Proxied db_behind = StartProxied();
  std::unique_ptr<PgCluster>& pg = db_behind.pg;
  std::unique_ptr<TcpProxy>& proxy = db_behind.proxy;
  const std::string& url = db_behind.url;
  store::PgOptions o = Quick();
  o.idle_check = absl::ZeroDuration();  // Check every idle connection.
  store::PgPool pool(url, 2, o);
  auto backend = [&pool]() -> std::string {
    absl::StatusOr<store::PgPool::Lease> db = pool.Acquire();
    REQUIRE(db.ok());
    absl::StatusOr<store::PgRows> r = (*db)->Query("SELECT pg_backend_pid()");
    REQUIRE(r.ok());
    return r->rows.at(0).at(0).value_or("");
  };
  const std::string first = backend();
  CHECK(backend() == first);  // Reused while alive.
  CHECK(pool.stats().stale == 0);

  // The server ends the idle connection (as a restart would).
  {
    absl::StatusOr<std::unique_ptr<store::PgConnection>> admin =
        store::PgConnection::Connect(
            absl::StrCat("host=127.0.0.1 port=", pg->port(),
                         " user=", PgCluster::kUser, " dbname=postgres"),
            Quick());
    REQUIRE(admin.ok());
    REQUIRE(
        (*admin)->Query("SELECT pg_terminate_backend($1::int)", {first}).ok());
  }
  const std::string second = backend();
  CHECK(second != first);
  CHECK(pool.stats().stale == 1);

  // A proxy that swallows everything: the check gives up within its bound
  // and the pool reports the database unreachable instead of handing the
  // dead connection out; after healing it connects again.
  proxy->Blackhole();
  absl::StatusOr<store::PgPool::Lease> dead = pool.Acquire(absl::Seconds(5));
  CHECK(absl::IsUnavailable(dead.status()));
  CHECK(pool.stats().stale == 2);
  proxy->Heal();
  absl::StatusOr<store::PgPool::Lease> healed = pool.Acquire();
  REQUIRE(healed.ok());
  CHECK((*healed)->Query("SELECT 1").ok());

  // Without the check a recently used connection is handed out as is.
  store::PgOptions lazy = Quick();
  lazy.idle_check = absl::Hours(1);
  store::PgPool trusting(url, 1, lazy);
  { REQUIRE(trusting.Acquire().ok()); }
  { REQUIRE(trusting.Acquire().ok()); }
  CHECK(trusting.stats().stale == 0);
}

}  // namespace
}  // namespace vouch
