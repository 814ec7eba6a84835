// The agent's local actions (agent/action_runner.h): executables of a
// directory in name order with the event on stdin, refusal of unsafe files
// and directories, the timeout, and the runner's queue.
#include "agent/action_runner.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "absl/time/clock.h"
#include "common/file.h"
#include "harness/temp_dir.h"

namespace vouch::agent {
namespace {

using testing::TempDir;

void Script(const TempDir& dir, const std::string& name,
            const std::string& body, mode_t mode = 0755) {
  const std::string path = dir.Join(name);
  REQUIRE(WriteFileAtomic(path, "#!/bin/sh\n" + body + "\n", 0600).ok());
  REQUIRE(chmod(path.c_str(), mode) == 0);
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileUpTo(path, 1 << 20);
  return s.ok() ? *s : std::string();
}

TEST_CASE("actions run in name order with the event on stdin",
          "[agent][actions]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("actions-");
  REQUIRE(dir.ok());
  absl::StatusOr<TempDir> out = TempDir::Create("actions-out-");
  REQUIRE(out.ok());
  const std::string order = out->Join("order");
  Script(*dir, "20-second",
         "cat > " + out->Join("second") + "; echo 20 >> " + order);
  Script(*dir, "10-first",
         "cat > " + out->Join("first") + "; echo 10 >> " + order);
  Script(*dir, "30-fails", "echo 30 >> " + order + "; exit 3");
  Script(*dir, ".hidden", "echo hidden >> " + order);
  Script(*dir, "40-backup~", "echo backup >> " + order);
  Script(*dir, "50-not-executable", "echo noexec >> " + order, 0644);
  Script(*dir, "60-world-writable", "echo ww >> " + order, 0777);

  absl::StatusOr<std::vector<std::string>> listed =
      ListActions(dir->path(), geteuid());
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<std::string>{dir->Join("10-first"),
                                            dir->Join("20-second"),
                                            dir->Join("30-fails")});

  ActionRunner runner({dir->path(), absl::Seconds(30)});
  runner.Submit(R"({"vouch.kind":"own-failure"})");
  while (runner.handled() < 1) absl::SleepFor(absl::Milliseconds(20));
  CHECK(Read(order) == "10\n20\n30\n");
  CHECK(Read(out->Join("first")) == R"({"vouch.kind":"own-failure"})");
  CHECK(Read(out->Join("second")) == R"({"vouch.kind":"own-failure"})");
}

TEST_CASE("an unsafe actions directory runs nothing", "[agent][actions]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("actions-");
  REQUIRE(dir.ok());
  Script(*dir, "10-any", "exit 0");
  REQUIRE(chmod(dir->path().c_str(), 0777) == 0);
  CHECK(
      absl::IsFailedPrecondition(ListActions(dir->path(), geteuid()).status()));
  REQUIRE(chmod(dir->path().c_str(), 0700) == 0);
  // Owned by root or the agent's user only.
  if (geteuid() == 0) {
    CHECK(ListActions(dir->path(), 12345).ok());
  } else {
    CHECK(absl::IsFailedPrecondition(
        ListActions(dir->path(), geteuid() + 1).status()));
  }
  CHECK_FALSE(ListActions(dir->Join("missing"), geteuid()).ok());
  CHECK(absl::IsFailedPrecondition(
      ListActions(dir->Join("10-any"), geteuid()).status()));
}

TEST_CASE("an action past its timeout is killed", "[agent][actions]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("actions-");
  REQUIRE(dir.ok());
  // A child of the action too: the whole process group goes.
  Script(*dir, "slow", "sleep 600 & sleep 600");
  absl::StatusOr<ActionOutcome> o =
      RunAction(dir->Join("slow"), "{}", absl::Milliseconds(300));
  REQUIRE(o.ok());
  CHECK(o->timed_out);
  CHECK(o->signal == SIGKILL);

  Script(*dir, "quick", "read line; [ \"$line\" = '{\"a\":1}' ] && exit 7");
  o = RunAction(dir->Join("quick"), "{\"a\":1}\n", absl::Seconds(30));
  REQUIRE(o.ok());
  CHECK_FALSE(o->timed_out);
  CHECK(o->exit_code == 7);

  Script(*dir, "closes-stdin", "exec 0<&-; exit 0");
  o = RunAction(dir->Join("closes-stdin"), std::string(1 << 20, 'x'),
                absl::Seconds(30));
  REQUIRE(o.ok());
  CHECK(o->exit_code == 0);
}

TEST_CASE("the runner's queue is bounded", "[agent][actions]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("actions-");
  REQUIRE(dir.ok());
  absl::StatusOr<TempDir> out = TempDir::Create("actions-out-");
  REQUIRE(out.ok());
  Script(*dir, "10-count",
         "cat >/dev/null; sleep 0.05; echo x >> " + out->Join("ran"));
  ActionRunner runner({dir->path(), absl::Seconds(30)});
  for (size_t i = 0; i < kMaxQueuedEvents * 2; ++i) runner.Submit("{}");
  while (runner.handled() < kMaxQueuedEvents * 2) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  CHECK(runner.handled() == kMaxQueuedEvents * 2);
  // Submitted at once: the queue held kMaxQueuedEvents, one more may have
  // been running; the oldest of the rest were dropped.
  const std::string ran = Read(out->Join("ran"));
  const size_t runs =
      static_cast<size_t>(std::count(ran.begin(), ran.end(), 'x'));
  CHECK(runs >= 1);
  CHECK(runs <= kMaxQueuedEvents + 1);
}

}  // namespace
}  // namespace vouch::agent
