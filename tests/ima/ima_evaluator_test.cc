// Integrity (template hashes, PCR 10 replay, incremental prefixes) and
// content (policy, excludes, violations) checks of EvaluateImaLog.
#include "core/ima/ima_evaluator.h"

#include <catch2/catch.hpp>
#include <random>

#include "absl/strings/match.h"
#include "ima_test_util.h"
#include "tenant/ima_parallel.h"

namespace vouch::core::ima {
namespace {

using testing::DataFile;
using testing::FileDigest;
using testing::Ng;
using testing::PolicyJson;
using testing::QuoteAt;
using testing::ReplayPrefixes;
using testing::WriteLog;

std::vector<ImaRecord> SampleRecords(int n) {
  std::vector<ImaRecord> r;
  r.push_back(Ng("boot_aggregate", FileDigest(-1)));
  for (int i = 1; i < n; ++i) {
    r.push_back(Ng(absl::StrCat("/usr/bin/prog", i), FileDigest(i)));
  }
  return r;
}

std::string PolicyFor(const std::vector<ImaRecord>& records,
                      const std::vector<std::string>& excludes = {}) {
  std::vector<std::pair<std::string, std::vector<std::string>>> d;
  for (const ImaRecord& r : records) {
    d.push_back({r.path, {HexEncode(r.digest)}});
  }
  return PolicyJson(d, excludes);
}

std::shared_ptr<const RuntimePolicy> Load(const std::string& json) {
  auto p = RuntimePolicy::FromJson(json);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return *p;
}

ImaEvaluation Eval(absl::string_view log, const RuntimePolicy* policy,
                   std::optional<QuotedPcr10> quoted = std::nullopt,
                   const ImaReplayState& state = {},
                   const ImaEvalOptions& options = {}) {
  auto r = EvaluateImaLog(state, log, quoted, policy, options);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *std::move(r);
}

std::vector<std::pair<uint64_t, Rule>> Reasons(const ImaEvaluation& r) {
  std::vector<std::pair<uint64_t, Rule>> out;
  for (const ImaFailure& f : r.failures) out.push_back({f.index, f.reason});
  return out;
}

TEST_CASE("ima: reasons print as they always have", "[core]") {
  // vouchctl ima check prints these (text and JSON `reason`).
  const std::vector<std::pair<Rule, std::string>> want = {
      {Rule::kImaBadTemplateHash, "bad_template_hash"},
      {Rule::kImaPcrMismatch, "pcr_mismatch"},
      {Rule::kImaWrongPcr, "wrong_pcr"},
      {Rule::kImaViolation, "violation"},
      {Rule::kImaNotInPolicy, "not_in_policy"},
      {Rule::kImaDigestMismatch, "digest_mismatch"},
      {Rule::kImaBadSignature, "bad_signature"},
      {Rule::kImaKeyringNotAllowed, "keyring_not_allowed"},
      {Rule::kImaRejected, "rejected"}};
  for (const auto& [rule, name] : want) {
    CHECK(ImaReasonName(rule) == name);
    CHECK(RuleName(rule) == "ima." + name);
  }
}

TEST_CASE(
    "ima: real Keylime logs: template hashes hold, content follows policy",
    "[core]") {
  std::string log = DataFile("keylime/ima-log-sha256");
  auto learned = R"({"meta": {"version": 1}, "digests": {
      "boot_aggregate": ["f4845392eca429a4c941a6a07fc32faf843a88c5c3dfa3b9329ab8f4171d9ce3"],
      "/data": ["sha256:96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754"]}})";
  auto p = Load(learned);
  ImaEvaluation r = Eval(log, p.get());
  CHECK(r.verdict.passed());
  CHECK(r.entries_parsed == 2);
  CHECK(HexEncode(ByteSpan(r.state.pcr_sha1)) ==
        "8adcb4304b78ee782bbba3733b191591e75dc83d");

  // Keylime's own policy for this log lists another file.
  auto keylime = Load(DataFile("keylime/policy-sha256"));
  ImaEvaluation k = Eval(log, keylime.get());
  CHECK_FALSE(k.verdict.passed());
  CHECK(Reasons(k) ==
        std::vector<std::pair<uint64_t, Rule>>{{0, Rule::kImaNotInPolicy},
                                               {1, Rule::kImaNotInPolicy}});
  // runtime-policy-test.json has another boot_aggregate.
  auto test = Load(DataFile("keylime/runtime-policy-test.json"));
  ImaEvaluation t = Eval(log, test.get());
  CHECK(Reasons(t) ==
        std::vector<std::pair<uint64_t, Rule>>{{0, Rule::kImaDigestMismatch},
                                               {1, Rule::kImaNotInPolicy}});
  // ...unless measured boot vouches for this one.
  ImaEvalOptions o;
  o.boot_aggregates = {
      "sha256:"
      "f4845392eca429a4c941a6a07fc32faf843a88c5c3dfa3b9329ab8f4171d9ce3"};
  ImaEvaluation t2 = Eval(log, test.get(), std::nullopt, {}, o);
  CHECK(Reasons(t2) ==
        std::vector<std::pair<uint64_t, Rule>>{{1, Rule::kImaNotInPolicy}});

  // The sha1 log's boot_aggregate line has an all-zero template hash.
  ImaEvaluation v = Eval(DataFile("keylime/ima-log-sha1"), nullptr);
  CHECK(Reasons(v) ==
        std::vector<std::pair<uint64_t, Rule>>{{0, Rule::kImaViolation}});
}

TEST_CASE(
    "ima: ASCII, binary and per-bank SHA-256 logs replay to the same PCRs",
    "[core]") {
  auto records = SampleRecords(50);
  records[7].violation = true;
  testing::Pcrs want = ReplayPrefixes(records);
  ImaEvalOptions o;
  o.allow_violations = true;
  for (HashAlg th : {HashAlg::kSha1, HashAlg::kSha256}) {
    for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
      std::string log = WriteLog(records, f, th);
      ImaEvaluation r =
          Eval(log, nullptr, QuoteAt(want, records.size()), {}, o);
      CHECK(r.verdict.passed());
      CHECK(r.pcr_matched);
      CHECK(r.entries_accepted == records.size());
      CHECK(r.bytes_accepted == log.size());
      CHECK(r.state.pcr_sha1 == want.sha1.back());
      CHECK(r.state.pcr_sha256 == want.sha256.back());
      CHECK(r.state.next_entry_index == records.size());
    }
  }
}

TEST_CASE("ima: integrity failures: tampering, reordering, injection",
          "[core]") {
  auto records = SampleRecords(10);
  testing::Pcrs want = ReplayPrefixes(records);
  auto policy = Load(PolicyFor(records));
  const std::string log = WriteLog(records, LogFormat::kAscii);

  SECTION("a tampered file digest breaks the template hash") {
    std::string bad = log;
    std::string hex = HexEncode(records[4].digest);
    size_t at = bad.find(hex);
    bad[at] = bad[at] == '0' ? '1' : '0';
    ImaEvaluation r = Eval(bad, policy.get(), QuoteAt(want, 10));
    CHECK(Reasons(r) == std::vector<std::pair<uint64_t, Rule>>{
                            {4, Rule::kImaBadTemplateHash}});
    CHECK(r.entries_accepted == 0);
    CHECK(r.state == ImaReplayState{});
  }
  SECTION("a tampered template hash") {
    std::string bad = log;
    size_t line = 0;
    for (int i = 0; i < 6; ++i) line = bad.find('\n', line) + 1;
    bad[line + 3] = bad[line + 3] == 'a' ? 'b' : 'a';
    ImaEvaluation r = Eval(bad, policy.get());
    CHECK(Reasons(r) == std::vector<std::pair<uint64_t, Rule>>{
                            {6, Rule::kImaBadTemplateHash}});
  }
  SECTION("a tampered path in a binary log") {
    std::string bad = WriteLog(records, LogFormat::kBinary);
    bad[bad.find("prog3") + 4] = '9';
    ImaEvaluation r = Eval(bad, policy.get());
    CHECK(Reasons(r) == std::vector<std::pair<uint64_t, Rule>>{
                            {3, Rule::kImaBadTemplateHash}});
  }
  SECTION("reordered entries do not replay to the quote") {
    auto swapped = records;
    std::swap(swapped[2], swapped[3]);
    ImaEvaluation r = Eval(WriteLog(swapped, LogFormat::kAscii), policy.get(),
                           QuoteAt(want, 10));
    CHECK(Reasons(r) ==
          std::vector<std::pair<uint64_t, Rule>>{{10, Rule::kImaPcrMismatch}});
    CHECK(r.entries_accepted == 0);
    CHECK(r.state == ImaReplayState{});
  }
  SECTION("an injected entry does not replay to the quote") {
    auto injected = records;
    injected.insert(injected.begin() + 5, Ng("/evil", FileDigest(99)));
    ImaEvaluation r = Eval(WriteLog(injected, LogFormat::kAscii), policy.get(),
                           QuoteAt(want, 10));
    CHECK(Reasons(r) ==
          std::vector<std::pair<uint64_t, Rule>>{{11, Rule::kImaPcrMismatch}});
  }
  SECTION("a dropped entry does not replay to the quote") {
    auto dropped = records;
    dropped.erase(dropped.begin() + 5);
    ImaEvaluation r = Eval(WriteLog(dropped, LogFormat::kAscii), policy.get(),
                           QuoteAt(want, 10));
    CHECK_FALSE(r.verdict.passed());
    CHECK(r.failures.at(0).reason == Rule::kImaPcrMismatch);
  }
  SECTION("one bank right and the other wrong still fails") {
    QuotedPcr10 q = QuoteAt(want, 10);
    (*q.sha256)[0] ^= 1;
    ImaEvaluation r = Eval(log, policy.get(), q);
    CHECK(r.failures.at(0).reason == Rule::kImaPcrMismatch);
  }
  SECTION("a malformed entry is an error, not a verdict") {
    auto r = EvaluateImaLog({}, log + "10 zz\n", std::nullopt, policy.get());
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK(absl::StrContains(r.status().message(), "entry 10"));
  }
}

TEST_CASE("ima: content failures carry index, path and reason", "[core]") {
  auto records = SampleRecords(8);
  records[2].digest = FileDigest(1000);  // digest_mismatch
  records[3].path = "/opt/unknown";      // not_in_policy
  records[4].path = "/tmp/scratch";      // excluded
  records[5].pcr = 11;                   // wrong_pcr
  records[6].violation = true;           // violation
  records[6].digest = Bytes(32, 0);
  records[7].path = std::string("/bin/\xff\xfe", 7);  // non-UTF-8
  auto policy = Load(PolicyFor(SampleRecords(8), {"/tmp/"}));
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    std::string log = WriteLog(records, f);
    ImaEvaluation r =
        Eval(log, policy.get(), QuoteAt(ReplayPrefixes(records), 8));
    CHECK(Reasons(r) ==
          std::vector<std::pair<uint64_t, Rule>>{{2, Rule::kImaDigestMismatch},
                                                 {3, Rule::kImaNotInPolicy},
                                                 {5, Rule::kImaWrongPcr},
                                                 {6, Rule::kImaViolation},
                                                 {7, Rule::kImaNotInPolicy}});
    CHECK(r.failures[1].path == "/opt/unknown");
    CHECK(r.failures[4].path == records[7].path);
    CHECK(DisplayPath(r.failures[4].path) == "/bin/\\xff\\xfe");
    CHECK(r.state.next_entry_index == 8);
  }
  SECTION("without the exclude the scratch file fails too") {
    auto strict = Load(PolicyFor(SampleRecords(8)));
    ImaEvaluation r = Eval(WriteLog(records, LogFormat::kAscii), strict.get());
    CHECK(Reasons(r).at(2) ==
          std::pair<uint64_t, Rule>{4, Rule::kImaNotInPolicy});
  }
  SECTION("allowed violations are still checked against the policy") {
    ImaEvalOptions o;
    o.allow_violations = true;
    ImaEvaluation r =
        Eval(WriteLog(records, LogFormat::kAscii), policy.get(), {}, {}, o);
    CHECK(Reasons(r).at(3) ==
          std::pair<uint64_t, Rule>{6, Rule::kImaDigestMismatch});
  }
  SECTION("failures listed are capped, all are counted") {
    ImaEvalOptions o;
    o.max_listed_failures = 2;
    ImaEvaluation r =
        Eval(WriteLog(records, LogFormat::kAscii), policy.get(), {}, {}, o);
    CHECK(r.failures.size() == 2);
    CHECK(r.failure_count == 5);
    CHECK_FALSE(r.verdict.passed());
  }
}

TEST_CASE(
    "ima: device-mapper measurements are ima-buf entries judged by the "
    "policy's ima-buf digests, as Keylime judges them without a dm_policy",
    "[core]") {
  const std::string table =
      "dm_version=4.45.0;name=root,uuid=CRYPT-VERITY-1,major=253,minor=0,"
      "minor_count=1,num_targets=1;target_index=0,target_begin=0,"
      "target_len=1953125,target_name=verity,target_version=1.8.0,"
      "hash_failed=V,verity_version=1,data_device_name=7:1,hash_device_name="
      "7:0,verity_algorithm=sha256,root_digest=00ff,salt=-,"
      "ignore_zero_blocks=n,check_at_most_once=n;";
  std::string forged = table;
  forged.replace(forged.find("00ff"), 4, "11ee");
  const ImaRecord load = testing::KeyringEntry("dm_table_load", table);
  std::vector<ImaRecord> records = SampleRecords(3);
  records.push_back(load);
  records.push_back(testing::KeyringEntry("dm_table_load", forged));
  records.push_back(testing::KeyringEntry("dm_device_remove",
                                          "dm_version=4.45.0;remove_all=n;"));
  std::vector<std::pair<std::string, std::vector<std::string>>> d;
  for (const ImaRecord& r : SampleRecords(3)) {
    d.push_back({r.path, {HexEncode(r.digest)}});
  }
  auto policy =
      Load(PolicyJson(d, {},
                      absl::StrCat(R"(, "ima-buf": {"dm_table_load": [")",
                                   HexEncode(load.digest), R"("]})")));
  ImaEvaluation r = Eval(WriteLog(records, LogFormat::kBinary), policy.get(),
                         QuoteAt(ReplayPrefixes(records), 6));
  CHECK(Reasons(r) ==
        std::vector<std::pair<uint64_t, Rule>>{{4, Rule::kImaDigestMismatch},
                                               {5, Rule::kImaNotInPolicy}});
  // A device-mapper policy is refused, as Keylime's schema refuses it.
  absl::StatusOr<std::shared_ptr<const RuntimePolicy>> dm =
      RuntimePolicy::FromJson(
          R"({"meta": {"version": 1}, "release": 0, "digests": {},
              "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [],
              "log_hash_alg": "sha1", "dm_policy": {"match_on": "name",
              "rules": {}}}, "ima-buf": {}, "verification-keys": ""})");
  REQUIRE_FALSE(dm.ok());
  CHECK(absl::IsInvalidArgument(dm.status()));
  CHECK(absl::StrContains(dm.status().message(), "dm_policy"));
}

TEST_CASE("ima: an update window accepts what its candidate allows", "[core]") {
  // An upgrade: prog2 has a new digest, prog3 is a new file. The active
  // policy knows neither; the candidate (the next version) knows both.
  auto records = SampleRecords(8);
  records[2].digest = FileDigest(2002);
  records[3].path = "/usr/bin/new-tool";
  records[5].pcr = 11;  // No window rescues a wrong PCR.
  auto active = Load(PolicyFor(SampleRecords(8)));
  std::vector<ImaRecord> next = SampleRecords(8);
  next[2].digest = FileDigest(2002);
  next.push_back(Ng("/usr/bin/new-tool", records[3].digest));
  auto candidate = Load(PolicyFor(next));
  const std::string log = WriteLog(records, LogFormat::kBinary);
  const auto quoted = QuoteAt(ReplayPrefixes(records), 8);

  ImaEvaluation plain = Eval(log, active.get(), quoted);
  CHECK(Reasons(plain) ==
        std::vector<std::pair<uint64_t, Rule>>{{2, Rule::kImaDigestMismatch},
                                               {3, Rule::kImaNotInPolicy},
                                               {5, Rule::kImaWrongPcr}});
  CHECK(plain.window_accepted == 0);

  ImaEvalOptions o;
  o.rollout.window = candidate.get();
  ImaEvaluation r = Eval(log, active.get(), quoted, {}, o);
  CHECK(Reasons(r) ==
        std::vector<std::pair<uint64_t, Rule>>{{5, Rule::kImaWrongPcr}});
  CHECK(r.window_accepted == 2);
  CHECK(r.state == plain.state);
  CHECK_FALSE(r.shadow_checked);

  SECTION("the active policy's reject list holds inside a window") {
    std::vector<std::pair<std::string, std::vector<std::string>>> d;
    for (const ImaRecord& e : SampleRecords(8)) {
      d.push_back({e.path, {HexEncode(e.digest)}});
    }
    auto rejecting =
        Load(PolicyJson(d, {},
                        absl::StrCat(R"(, "reject": {"digests": [")",
                                     HexEncode(records[2].digest), R"("]})")));
    ImaEvaluation w = Eval(log, rejecting.get(), quoted, {}, o);
    CHECK(Reasons(w) == std::vector<std::pair<uint64_t, Rule>>{
                            {2, Rule::kImaRejected}, {5, Rule::kImaWrongPcr}});
    CHECK(w.window_accepted == 1);
  }
  SECTION("a candidate that does not know the file rescues nothing") {
    auto same = Load(PolicyFor(SampleRecords(8)));
    o.rollout.window = same.get();
    ImaEvaluation w = Eval(log, active.get(), quoted, {}, o);
    CHECK(Reasons(w) == Reasons(plain));
    CHECK(w.window_accepted == 0);
  }
  SECTION("a candidate loaded with another path-hash key is refused") {
    PolicyLoadOptions other;
    other.path_hash_key[0] = 1;
    auto keyed = RuntimePolicy::FromJson(PolicyFor(next), other);
    REQUIRE(keyed.ok());
    o.rollout.window = keyed->get();
    CHECK(absl::IsInvalidArgument(
        EvaluateImaLog({}, log, quoted, active.get(), o).status()));
  }
}

TEST_CASE("ima: a shadow policy's failures never reach the verdict", "[core]") {
  auto records = SampleRecords(8);
  auto active = Load(PolicyFor(records));
  // The shadow version dropped prog4 and changed prog6's digest.
  std::vector<ImaRecord> next = SampleRecords(8);
  next.erase(next.begin() + 4);
  next[5].digest = FileDigest(6006);
  auto shadow = Load(PolicyFor(next));
  const std::string log = WriteLog(records, LogFormat::kAscii);
  const auto quoted = QuoteAt(ReplayPrefixes(records), 8);
  ImaEvalOptions o;
  o.rollout.shadow = shadow.get();
  ImaEvaluation r = Eval(log, active.get(), quoted, {}, o);
  CHECK(r.verdict.passed());
  CHECK(r.failures.empty());
  CHECK(r.shadow_checked);
  REQUIRE(r.shadow_failures.size() == 2);
  CHECK(r.shadow_failure_count == 2);
  CHECK(r.shadow_failures[0].index == 4);
  CHECK(r.shadow_failures[0].reason == Rule::kImaNotInPolicy);
  CHECK(r.shadow_failures[1].index == 6);
  CHECK(r.shadow_failures[1].reason == Rule::kImaDigestMismatch);

  SECTION("the shadow judges only the proven prefix, as the active does") {
    ImaEvaluation half =
        Eval(log, active.get(), QuoteAt(ReplayPrefixes(records), 5), {}, o);
    CHECK(half.state.next_entry_index == 5);
    REQUIRE(half.shadow_failures.size() == 1);
    CHECK(half.shadow_failures[0].index == 4);
  }
  SECTION("the active policy failing does not hide the shadow's view") {
    ImaEvaluation both = Eval(log, shadow.get(), quoted, {}, [&] {
      ImaEvalOptions s;
      s.rollout.shadow = active.get();
      return s;
    }());
    CHECK(both.failure_count == 2);
    CHECK(both.shadow_checked);
    CHECK(both.shadow_failure_count == 0);
  }
}

TEST_CASE("ima: the reject list fails entries every other rule accepts",
          "[core]") {
  auto records = SampleRecords(8);
  records[4].path = "/tmp/scratch";  // Excluded, and its digest rejected.
  const std::string bad = HexEncode(records[2].digest);  // Allowed, rejected.
  const std::string bad_sha256 = "sha256:" + HexEncode(records[4].digest);
  const std::string reject =
      absl::StrCat(R"(, "reject": {"digests": [")", bad, R"(", ")", bad_sha256,
                   R"("], "paths": ["/usr/bin/prog6"]})");
  std::vector<std::pair<std::string, std::vector<std::string>>> d;
  for (const ImaRecord& r : SampleRecords(8)) {
    d.push_back({r.path, {HexEncode(r.digest)}});
  }
  auto policy = Load(PolicyJson(d, {"/tmp/"}, reject));
  CHECK(policy->has_reject());
  CHECK(policy->reject_digest_texts() ==
        std::vector<std::string>{bad, bad_sha256});
  CHECK(policy->reject_path_texts() ==
        std::vector<std::string>{"/usr/bin/prog6"});
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    ImaEvaluation r = Eval(WriteLog(records, f), policy.get(),
                           QuoteAt(ReplayPrefixes(records), 8));
    CHECK(Reasons(r) ==
          std::vector<std::pair<uint64_t, Rule>>{{2, Rule::kImaRejected},
                                                 {4, Rule::kImaRejected},
                                                 {6, Rule::kImaRejected}});
    REQUIRE(r.failures.size() == 3);
    CHECK(absl::StrContains(r.failures[0].detail, "reject list"));
    CHECK(absl::StrContains(r.failures[0].detail, bad));
    CHECK(r.failures[2].detail == "path is on the policy's reject list");
    CHECK(r.state.next_entry_index == 8);  // Integrity held: state advances.
  }
  SECTION("the same policy without the reject list passes the log") {
    auto plain = Load(PolicyJson(d, {"/tmp/"}));
    CHECK_FALSE(plain->has_reject());
    CHECK(Eval(WriteLog(records, LogFormat::kAscii), plain.get())
              .verdict.passed());
  }
  SECTION("the failure code is IMA_REJECTED in the verdict") {
    ImaEvaluation r = Eval(WriteLog(records, LogFormat::kAscii), policy.get());
    REQUIRE(!r.verdict.failures().empty());
    CHECK(r.verdict.failures().front().rule == Rule::kImaRejected);
  }
}

TEST_CASE(
    "ima: a policy awaited after the integrity pass gives the same result",
    "[core]") {
  auto records = SampleRecords(8);
  records[3].path = "/opt/unknown";
  PathHashKey key{};
  key[0] = 7;
  PolicyLoadOptions lo;
  lo.path_hash_key = key;
  auto policy = RuntimePolicy::FromJson(PolicyFor(SampleRecords(8)), lo);
  REQUIRE(policy.ok());
  const std::string log = WriteLog(records, LogFormat::kAscii);
  int awaited = 0;
  auto await = [&]() -> absl::StatusOr<const RuntimePolicy*> {
    ++awaited;
    return policy->get();
  };
  auto r = EvaluateImaLogAwaitingPolicy({}, log, std::nullopt, key, await);
  REQUIRE(r.ok());
  CHECK(awaited == 1);
  CHECK(Reasons(*r) == Reasons(Eval(log, policy->get())));
  CHECK(Reasons(*r).size() == 1);

  SECTION("a bad template hash fails without waiting for the policy") {
    std::string bad = log;
    char& c = bad[bad.find(' ') + 1];  // First template hash.
    c = c == '0' ? '1' : '0';
    awaited = 0;
    auto b = EvaluateImaLogAwaitingPolicy({}, bad, std::nullopt, key, await);
    REQUIRE(b.ok());
    CHECK(awaited == 0);
    CHECK(Reasons(*b) == std::vector<std::pair<uint64_t, Rule>>{
                             {0, Rule::kImaBadTemplateHash}});
  }
  SECTION("the policy's load error is the result") {
    auto failing = []() -> absl::StatusOr<const RuntimePolicy*> {
      return absl::InvalidArgumentError("policy: bad regex");
    };
    auto e = EvaluateImaLogAwaitingPolicy({}, log, std::nullopt, key, failing);
    CHECK(e.status() == absl::InvalidArgumentError("policy: bad regex"));
  }
  SECTION("a policy loaded with another key is refused") {
    PathHashKey other = key;
    other[0] = 8;
    auto e = EvaluateImaLogAwaitingPolicy({}, log, std::nullopt, other, await);
    CHECK(absl::IsInvalidArgument(e.status()));
  }
}

TEST_CASE(
    "ima: content checked on a second thread while the log is read gives "
    "EvaluateImaLog's result",
    "[core]") {
  // Enough entries for several hand-overs between the threads (one per
  // 1,024 entries), failures in different hand-overs, and entries the
  // content pass reads again (ima-sig, ima-buf).
  auto records = SampleRecords(5000);
  for (int i : {3, 1500, 2100, 4999}) records[i].path = absl::StrCat("/bad", i);
  records[2500].violation = true;
  records[700] =
      testing::SignedEntry("/usr/bin/prog700", 700, std::string(8, 'x'));
  records[3300] = testing::KeyringEntry(".ima", "not a certificate");
  testing::Pcrs want = ReplayPrefixes(records);
  PathHashKey key{};
  key[0] = 7;
  PolicyLoadOptions lo;
  lo.path_hash_key = key;
  auto policy = RuntimePolicy::FromJson(PolicyFor(SampleRecords(5000)), lo);
  REQUIRE(policy.ok());
  auto shadow = RuntimePolicy::FromJson(PolicyFor(SampleRecords(4000)), lo);
  REQUIRE(shadow.ok());
  const ImaEvalOptions plain;
  ImaEvalOptions with_shadow;
  with_shadow.rollout.shadow = shadow->get();
  int loads = 0;
  auto load = [&]() -> absl::StatusOr<const RuntimePolicy*> {
    ++loads;
    return policy->get();
  };
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    const std::string log = WriteLog(records, f);
    // The whole log; quotes matched at the end, in a later hand-over than
    // the first, and right at the start (the second thread may have checked
    // entries past them: those results are not used).
    for (std::optional<QuotedPcr10> quoted :
         {std::optional<QuotedPcr10>(), std::optional(QuoteAt(want, 5000)),
          std::optional(QuoteAt(want, 1800)),
          std::optional(QuoteAt(want, 2))}) {
      for (const ImaEvalOptions* o :
           {&plain, static_cast<const ImaEvalOptions*>(&with_shadow)}) {
        ImaEvaluation seq = Eval(log, policy->get(), quoted, {}, *o);
        loads = 0;
        auto par =
            tenant::EvaluateImaLogWhileLoading({}, log, quoted, key, load, *o);
        INFO(par.status().ToString());
        REQUIRE(par.ok());
        CHECK(loads == 1);
        CHECK(Reasons(*par) == Reasons(seq));
        CHECK(par->failure_count == seq.failure_count);
        CHECK(par->verdict.complete());
        CHECK(par->verdict.failures().size() == seq.verdict.failures().size());
        CHECK(par->state == seq.state);
        CHECK(par->entries_parsed == seq.entries_parsed);
        CHECK(par->entries_accepted == seq.entries_accepted);
        CHECK(par->bytes_accepted == seq.bytes_accepted);
        CHECK(par->shadow_checked == seq.shadow_checked);
        CHECK(par->shadow_failure_count == seq.shadow_failure_count);
        CHECK(par->shadow_failures.size() == seq.shadow_failures.size());
      }
    }
    const ImaEvaluation all = Eval(log, policy->get());
    CHECK(all.failure_count >= 6);
  }
  const std::string log = WriteLog(records, LogFormat::kAscii);

  SECTION("a bad template hash is the result; the policy still loads") {
    std::string bad = log;
    size_t line = 0;
    for (int i = 0; i < 3000; ++i) line = bad.find('\n', line) + 1;
    char& c = bad[bad.find(' ', line) + 1];  // Entry 3000's template hash.
    c = c == '0' ? '1' : '0';
    loads = 0;
    auto b =
        tenant::EvaluateImaLogWhileLoading({}, bad, std::nullopt, key, load);
    REQUIRE(b.ok());
    CHECK(loads == 1);
    CHECK(Reasons(*b) == std::vector<std::pair<uint64_t, Rule>>{
                             {3000, Rule::kImaBadTemplateHash}});
    CHECK(b->state == ImaReplayState{});
  }
  SECTION("the policy's load error is the result") {
    auto failing = []() -> absl::StatusOr<const RuntimePolicy*> {
      return absl::InvalidArgumentError("policy: bad regex");
    };
    auto e =
        tenant::EvaluateImaLogWhileLoading({}, log, std::nullopt, key, failing);
    CHECK(e.status() == absl::InvalidArgumentError("policy: bad regex"));
  }
  SECTION("a policy loaded with another key is refused") {
    PathHashKey other = key;
    other[0] = 8;
    auto e =
        tenant::EvaluateImaLogWhileLoading({}, log, std::nullopt, other, load);
    CHECK(absl::IsInvalidArgument(e.status()));
  }
  SECTION("a malformed log is an error, whatever the second thread did") {
    std::string broken = log.substr(0, log.size() / 2) + "garbage\n";
    auto e =
        tenant::EvaluateImaLogWhileLoading({}, broken, std::nullopt, key, load);
    CHECK(absl::IsInvalidArgument(e.status()));
  }
}

TEST_CASE(
    "ima: the two passes apart: content checked in ranges, and past an early "
    "quote, gives EvaluateImaLog's result",
    "[core]") {
  auto records = SampleRecords(3000);
  for (int i : {1, 900, 2500}) records[i].path = absl::StrCat("/bad", i);
  testing::Pcrs want = ReplayPrefixes(records);
  auto policy = Load(PolicyFor(SampleRecords(3000)));
  const PathHashKey key = policy->path_hash_key();
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    const std::string log = WriteLog(records, f);
    for (size_t at : {size_t{3000}, size_t{1000}, size_t{2}}) {
      INFO("quote after entry " << at);
      const QuotedPcr10 quoted = QuoteAt(want, at);
      ImaEvaluation seq = Eval(log, policy.get(), quoted);
      std::vector<uint64_t> progress;
      auto pass1 = ReplayImaLog(
          {}, log, quoted, {},
          [&](uint64_t n, std::optional<HashAlg>) { progress.push_back(n); });
      REQUIRE(pass1.ok());
      REQUIRE(pass1->proven);
      CHECK(progress == std::vector<uint64_t>{1024, 2048});
      CHECK(pass1->evaluation.failures.empty());
      auto checks =
          ImaContentChecks::Start({}, log, policy.get(), key, ImaEvalOptions{});
      REQUIRE(checks.ok());
      // In ranges, as pass 1 hands them over, then past the accepted prefix.
      REQUIRE((*checks)->CheckUpTo(1024, pass1->binary_hash_alg).ok());
      REQUIRE((*checks)->CheckUpTo(2048, pass1->binary_hash_alg).ok());
      REQUIRE((*checks)->CheckUpTo(3000, pass1->binary_hash_alg).ok());
      CHECK((*checks)->checked() == 3000);
      auto r = (*checks)->Complete(*std::move(pass1));
      REQUIRE(r.ok());
      CHECK(Reasons(*r) == Reasons(seq));
      CHECK(r->verdict.complete());
      CHECK(r->verdict.passed() == seq.verdict.passed());
      CHECK(r->state == seq.state);
      CHECK(r->entries_accepted == seq.entries_accepted);
    }
  }
}

TEST_CASE(
    "ima: the log may run ahead of the quote: the shortest prefix is taken",
    "[core]") {
  auto records = SampleRecords(20);
  records[15].path = "/not/allowed";  // After the quote: not checked yet.
  testing::Pcrs want = ReplayPrefixes(records);
  auto policy = Load(PolicyFor(SampleRecords(20)));
  std::string log = WriteLog(records, LogFormat::kAscii);
  ImaEvaluation r = Eval(log, policy.get(), QuoteAt(want, 12));
  CHECK(r.verdict.passed());
  CHECK(r.entries_parsed == 20);
  CHECK(r.entries_accepted == 12);
  CHECK(r.state.next_entry_index == 12);
  CHECK(r.state.pcr_sha1 == want.sha1[12]);
  // The rest is the next round's input.
  std::string rest = log.substr(r.bytes_accepted);
  ImaEvaluation r2 = Eval(rest, policy.get(), QuoteAt(want, 20), r.state);
  CHECK(Reasons(r2) ==
        std::vector<std::pair<uint64_t, Rule>>{{15, Rule::kImaNotInPolicy}});
  CHECK(r2.state.next_entry_index == 20);
  // A quote equal to the stored state accepts nothing.
  ImaEvaluation r3 = Eval(rest, policy.get(), QuoteAt(want, 12), r.state);
  CHECK(r3.verdict.passed());
  CHECK(r3.entries_accepted == 0);
  CHECK(r3.state == r.state);
  // A quote for one bank only.
  ImaEvaluation r4 = Eval(log, policy.get(), QuoteAt(want, 5, false, true));
  CHECK(r4.entries_accepted == 5);
  ImaEvalOptions sha256_only;
  sha256_only.replay_sha1 = false;
  CHECK(absl::IsInvalidArgument(
      EvaluateImaLog({}, log, QuoteAt(want, 5), policy.get(), sha256_only)
          .status()));
}

TEST_CASE("ima: incremental replay in random chunks equals one pass",
          "[core]") {
  std::mt19937 rng(12345);
  auto records = SampleRecords(300);
  for (int i : {17, 123, 250}) records[i].path = absl::StrCat("/bad", i);
  records[200].violation = true;
  testing::Pcrs want = ReplayPrefixes(records);
  auto policy = Load(PolicyFor(SampleRecords(300)));
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    // Byte offset of each entry so chunks can start anywhere.
    std::vector<std::string> lines;
    for (const ImaRecord& r : records) lines.push_back(WriteLog({r}, f));
    ImaEvaluation whole =
        Eval(WriteLog(records, f), policy.get(), QuoteAt(want, 300));
    for (int trial = 0; trial < 20; ++trial) {
      ImaReplayState state;
      std::vector<std::pair<uint64_t, Rule>> failures;
      while (state.next_entry_index < records.size()) {
        size_t from = state.next_entry_index;
        size_t quote =
            std::uniform_int_distribution<size_t>(from, records.size())(rng);
        size_t to =
            std::uniform_int_distribution<size_t>(quote, records.size())(rng);
        std::string chunk;
        for (size_t i = from; i < to; ++i) chunk += lines[i];
        bool both = rng() % 2 == 0;
        ImaEvaluation r =
            Eval(chunk, policy.get(), QuoteAt(want, quote, both, true), state);
        REQUIRE(r.pcr_matched);
        REQUIRE(r.entries_accepted == quote - from);
        auto got = Reasons(r);
        failures.insert(failures.end(), got.begin(), got.end());
        state = r.state;
      }
      CHECK(state == whole.state);
      CHECK(failures == Reasons(whole));
    }
  }
}

}  // namespace
}  // namespace vouch::core::ima
