// File: harness/tcp_proxy.h
// TcpProxy: a TCP forwarder on 127.0.0.1 for fault-injection tests, put
// between a client (a verifier) and a server (PostgreSQL). It passes
// traffic, blackholes it (connections are accepted and kept open, whatever
// arrives is read and dropped, nothing is forwarded: a partition where the
// peer's kernel still acknowledges), resets every connection, and heals.
// Test-only. Thread-safe: one internal thread moves the bytes; the control
// calls return once the new behaviour is in force.
//
//   auto proxy = TcpProxy::Start("127.0.0.1", pg->port());
//   REQUIRE(proxy.ok());
//   // conninfo: host=127.0.0.1 port=(*proxy)->port() ...
//   (*proxy)->Blackhole();  // the database stops answering
//   (*proxy)->Heal();       // and comes back
#ifndef VOUCH_TESTS_HARNESS_TCP_PROXY_H_
#define VOUCH_TESTS_HARNESS_TCP_PROXY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace vouch::testing {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 on a free port (bind 0) and forwards each accepted
  // connection to target_host:target_port (IPv4 address).
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(
      const std::string& target_host, int target_port);
  // Stops the thread and closes every socket.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }

  // From now on: accept, read and drop, forward nothing, close nothing.
  void Blackhole();
  // Forwards again. Connections that were blackholed lost bytes (their
  // protocol state is broken), so they are reset; new ones pass.
  void Heal();
  // Resets (RST) every open connection now; the mode stays as it is.
  void ResetAll();

  // Connections open now (client side), and accepted so far.
  int open_connections();
  int64_t accepted();

 private:
  struct Pair;
  TcpProxy(int listen_fd, int wake_read, int wake_write, int port,
           uint32_t target_addr, int target_port);
  void Run();
  // Asks the thread to apply `change` and waits until it has.
  void Command(bool blackhole, bool reset);

  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  const int port_;
  const uint32_t target_addr_;  // Network byte order.
  const int target_port_;

  absl::Mutex mu_;
  bool blackhole_ ABSL_GUARDED_BY(mu_) = false;
  bool reset_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t requested_ ABSL_GUARDED_BY(mu_) = 0;  // Commands asked,
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;    // and applied.
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_TCP_PROXY_H_
