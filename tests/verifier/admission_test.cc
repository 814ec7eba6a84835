// The Attest service's admission bookkeeping (verifier/admission.h) without
// gRPC or a clock: the stream cap, the Hello deadline, the held-IMA budget
// and the retry hint.
#include "verifier/admission.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace vouch::verifier {
namespace {

struct FakeStream {
  int id = 0;
  bool ended = false;
};

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

TEST_CASE("admission: the stream cap refuses once full and frees on close",
          "[core][session]") {
  StreamAdmission<FakeStream> admission(2);
  FakeStream a{1}, b{2}, c{3};
  int made = 0;
  auto make = [&](FakeStream* s) {
    return [&made, s] {
      ++made;
      return s;
    };
  };
  CHECK(admission.Open(kT0, make(&a)) == &a);
  CHECK(admission.Open(kT0, make(&b)) == &b);
  CHECK(admission.open() == 2);
  // At the cap: refused, and no stream object is made.
  CHECK(admission.Open(kT0, make(&c)) == nullptr);
  CHECK(made == 2);
  CHECK(admission.open() == 2);
  admission.Closed(&a);
  CHECK(admission.open() == 1);
  CHECK(admission.Open(kT0, make(&c)) == &c);
  CHECK(admission.open() == 2);
}

TEST_CASE("admission: streams without a first message by their deadline end",
          "[core][session]") {
  StreamAdmission<FakeStream> admission(10);
  FakeStream early{1}, late{2}, spoke{3}, gone{4};
  admission.Open(kT0 + absl::Seconds(10), [&] { return &early; });
  admission.Open(kT0 + absl::Seconds(20), [&] { return &late; });
  admission.Open(kT0 + absl::Seconds(10), [&] { return &spoke; });
  admission.Open(kT0 + absl::Seconds(10), [&] { return &gone; });
  admission.HelloReceived(&spoke);
  admission.Closed(&gone);  // A closed stream is never named again.

  auto expire = [](FakeStream* s) { s->ended = true; };
  CHECK(admission.ExpireHellos(kT0 + absl::Seconds(9), expire) == 0);
  CHECK_FALSE(early.ended);
  // The deadline itself is late.
  CHECK(admission.ExpireHellos(kT0 + absl::Seconds(10), expire) == 1);
  CHECK(early.ended);
  CHECK_FALSE(late.ended);
  CHECK_FALSE(spoke.ended);
  CHECK_FALSE(gone.ended);
  // Each stream is expired once.
  early.ended = false;
  CHECK(admission.ExpireHellos(kT0 + absl::Seconds(30), expire) == 1);
  CHECK_FALSE(early.ended);
  CHECK(late.ended);
  // Expiring ends a stream; only Closed frees its slot.
  CHECK(admission.open() == 3);
}

TEST_CASE("admission: the held-IMA budget is never exceeded",
          "[core][session]") {
  ImaBudget budget(100);
  CHECK(budget.Hold(60));
  CHECK_FALSE(budget.Hold(41));  // Refused whole: nothing taken.
  CHECK(budget.held() == 60);
  CHECK(budget.Hold(40));  // Exactly full.
  CHECK_FALSE(budget.Hold(1));
  CHECK(budget.Hold(-70));  // Giving back always succeeds.
  CHECK(budget.held() == 30);
  CHECK(budget.Hold(0));
  CHECK_FALSE(budget.Hold(INT64_MAX));  // No overflow past the bound.
  CHECK(budget.held() == 30);

  // Concurrent holders: at most the budget is ever granted.
  ImaBudget shared(1000);
  std::vector<std::thread> threads;
  std::vector<int> granted(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&shared, &granted, t] {
      for (int i = 0; i < 1000; ++i) {
        if (shared.Hold(1)) ++granted[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(granted[0] + granted[1] + granted[2] + granted[3] == 1000);
  CHECK(shared.held() == 1000);
}

TEST_CASE("admission: the retry hint and the deadline check period",
          "[core][session]") {
  CHECK(RetryAfterValue(absl::Seconds(30)) == "30000");
  CHECK(RetryAfterValue(absl::Milliseconds(1500)) == "1500");
  CHECK(HelloCheckPeriod(absl::Seconds(10)) == absl::Seconds(1));
  CHECK(HelloCheckPeriod(absl::Seconds(2)) == absl::Milliseconds(500));
  CHECK(HelloCheckPeriod(absl::Milliseconds(8)) == absl::Milliseconds(10));
}

}  // namespace
}  // namespace vouch::verifier
