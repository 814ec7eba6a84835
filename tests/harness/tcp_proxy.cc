#include "harness/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <list>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vouch::testing {

struct TcpProxy::Pair {
  int client = -1;
  int server = -1;       // -1: accepted while blackholed, never connected.
  std::string up;        // client -> server, not yet written
  std::string down;      // server -> client, not yet written
  bool dropped = false;  // Bytes were dropped: the stream is corrupt.
};

namespace {

constexpr size_t kMaxBuffered = 1 << 20;

void CloseFd(int& fd, bool reset) {
  if (fd < 0) return;
  if (reset) {
    linger l{1, 0};  // close() sends RST instead of FIN.
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(fd);
  fd = -1;
}

// Writes what the socket takes now; false when the peer is gone.
bool WriteSome(int fd, std::string& buf) {
  while (!buf.empty()) {
    const ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n > 0) {
      buf.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

// Reads what is there into `buf` (or nowhere, when `discard`); false on end
// of stream or error.
bool ReadSome(int fd, std::string& buf, bool discard) {
  char chunk[16384];
  const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
  if (n > 0) {
    if (!discard) buf.append(chunk, static_cast<size_t>(n));
    return true;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return true;
  }
  return false;
}

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(
    const std::string& target_host, int target_port) {
  in_addr target{};
  if (inet_pton(AF_INET, target_host.c_str(), &target) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TcpProxy: not an IPv4 address: ", target_host));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("TcpProxy: socket failed");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("TcpProxy: bind/listen on 127.0.0.1 failed");
  }
  SetNonBlocking(fd);
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(fd);
    return absl::InternalError("TcpProxy: pipe failed");
  }
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(
      fd, wake[0], wake[1], ntohs(addr.sin_port), target.s_addr, target_port));
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  return proxy;
}

TcpProxy::TcpProxy(int listen_fd, int wake_read, int wake_write, int port,
                   uint32_t target_addr, int target_port)
    : listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      port_(port),
      target_addr_(target_addr),
      target_port_(target_port) {}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  const char b = 's';
  (void)!write(wake_write_, &b, 1);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
}

void TcpProxy::Command(bool blackhole, bool reset) {
  absl::MutexLock lock(&mu_);
  blackhole_ = blackhole;
  reset_requested_ = reset_requested_ || reset;
  const uint64_t mine = ++requested_;
  const char b = 'c';
  (void)!write(wake_write_, &b, 1);
  auto done = [this, mine]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return applied_ >= mine || stop_;
  };
  mu_.Await(absl::Condition(&done));
}

void TcpProxy::Blackhole() { Command(/*blackhole=*/true, /*reset=*/false); }
void TcpProxy::Heal() { Command(/*blackhole=*/false, /*reset=*/false); }
void TcpProxy::ResetAll() {
  bool blackhole;
  {
    absl::MutexLock lock(&mu_);
    blackhole = blackhole_;
  }
  Command(blackhole, /*reset=*/true);
}

int TcpProxy::open_connections() {
  absl::MutexLock lock(&mu_);
  return open_;
}

int64_t TcpProxy::accepted() {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

void TcpProxy::Run() {
  std::list<Pair> pairs;
  bool blackhole = false;
  auto close_pair = [&](std::list<Pair>::iterator it, bool reset) {
    CloseFd(it->client, reset);
    CloseFd(it->server, reset);
    return pairs.erase(it);
  };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      if (applied_ != requested_) {
        const bool healing = blackhole && !blackhole_;
        for (auto it = pairs.begin(); it != pairs.end();) {
          it = (reset_requested_ || (healing && it->dropped))
                   ? close_pair(it, /*reset=*/true)
                   : std::next(it);
        }
        reset_requested_ = false;
        blackhole = blackhole_;
        if (blackhole) {
          for (Pair& p : pairs) {
            p.dropped = p.dropped || !p.up.empty() || !p.down.empty();
            p.up.clear();
            p.down.clear();
          }
        }
        applied_ = requested_;
      }
      open_ = static_cast<int>(pairs.size());
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_read_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Pair& p : pairs) {
      short ce = 0, se = 0;
      if (blackhole || p.up.size() < kMaxBuffered) ce |= POLLIN;
      if (!blackhole && !p.down.empty()) ce |= POLLOUT;
      if (blackhole || p.down.size() < kMaxBuffered) se |= POLLIN;
      if (!blackhole && !p.up.empty()) se |= POLLOUT;
      fds.push_back({p.client, ce, 0});
      fds.push_back({p.server, se, 0});  // fd -1 is ignored by poll.
    }
    if (poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      char drain[64];
      while (read(wake_read_, drain, sizeof(drain)) > 0) {
      }
    }
    // Existing pairs first (their pollfd slots match the list order).
    size_t slot = 2;
    for (auto it = pairs.begin(); it != pairs.end(); slot += 2) {
      const short cr = fds[slot].revents;
      const short sr = fds[slot + 1].revents;
      bool alive = true;
      if (cr & (POLLIN | POLLHUP | POLLERR)) {
        const bool drop = blackhole || it->server < 0;
        alive = ReadSome(it->client, it->up, drop);
        if (drop && alive && !it->up.empty()) it->up.clear();
        if (drop) it->dropped = true;
      }
      if (alive && it->server >= 0 && (sr & (POLLIN | POLLHUP | POLLERR))) {
        alive = ReadSome(it->server, it->down, blackhole);
        if (blackhole) it->dropped = true;
      }
      if (alive && !blackhole && it->server >= 0) {
        alive =
            WriteSome(it->server, it->up) && WriteSome(it->client, it->down);
      }
      it = alive ? std::next(it) : close_pair(it, /*reset=*/false);
    }
    if (fds[1].revents & POLLIN) {
      while (true) {
        const int c =
            accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) break;
        Pair p;
        p.client = c;
        if (blackhole) {
          p.dropped = true;
        } else {
          p.server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in to{};
          to.sin_family = AF_INET;
          to.sin_addr.s_addr = target_addr_;
          to.sin_port = htons(static_cast<uint16_t>(target_port_));
          // Blocking connect: the target is local.
          if (p.server < 0 ||
              connect(p.server, reinterpret_cast<sockaddr*>(&to), sizeof(to)) !=
                  0) {
            CloseFd(p.server, false);
            CloseFd(p.client, /*reset=*/true);
            continue;
          }
          SetNonBlocking(p.server);
        }
        pairs.push_back(std::move(p));
        absl::MutexLock lock(&mu_);
        ++accepted_;
      }
    }
  }
  for (auto it = pairs.begin(); it != pairs.end();) {
    it = close_pair(it, /*reset=*/false);
  }
  absl::MutexLock lock(&mu_);
  open_ = 0;
  applied_ = requested_;
}

}  // namespace vouch::testing
