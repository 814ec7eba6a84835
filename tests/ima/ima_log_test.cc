// IMA measurement list parsing: real Keylime logs, generated ASCII and
// binary logs of every template, and malformed input.
#include "core/ima/ima_log.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <cstring>

#include "absl/strings/match.h"
#include "ima_test_util.h"

namespace vouch::core::ima {
namespace {

using testing::DataFile;
using testing::FileDigest;
using testing::Ng;
using testing::WriteLog;

std::vector<ImaEntry> ParseAll(absl::string_view data,
                               absl::Status* status = nullptr) {
  ImaLogParser p(data);
  std::vector<ImaEntry> out;
  ImaEntry e;
  while (true) {
    absl::StatusOr<bool> more = p.Next(&e);
    if (!more.ok()) {
      if (status) *status = more.status();
      return out;
    }
    if (!*more) break;
    out.push_back(e);
    out.back().path = {};  // Views die with the next call.
  }
  if (status) *status = absl::OkStatus();
  return out;
}

absl::Status ParseStatus(absl::string_view data) {
  absl::Status s;
  ParseAll(data, &s);
  return s;
}

TEST_CASE("ima: real Keylime ASCII logs parse with every file-digest algorithm",
          "[core]") {
  for (const char* alg : {"sha1", "sha256", "sha384", "sha512"}) {
    INFO(alg);
    std::string log = DataFile(std::string("keylime/ima-log-") + alg);
    REQUIRE(!log.empty());
    ImaLogParser p(log);
    CHECK(p.format() == LogFormat::kAscii);
    ImaEntry e;
    REQUIRE(*p.Next(&e));
    CHECK(e.index == 0);
    CHECK(e.pcr == 10);
    CHECK(e.tmpl == ImaTemplate::kImaNg);
    CHECK(e.path == "boot_aggregate");
    CHECK(HashAlgName(e.digest_alg) == alg);
    REQUIRE(*p.Next(&e));
    CHECK(e.index == 1);
    CHECK(e.path == "/data");
    CHECK(e.template_hash_alg == HashAlg::kSha1);
    CHECK_FALSE(e.violation);
    CHECK_FALSE(*p.Next(&e));
    CHECK(p.offset() == log.size());
  }
}

TEST_CASE("ima: ASCII and binary forms of every template give the same entries",
          "[core]") {
  std::vector<ImaRecord> records;
  records.push_back(
      Ng("boot_aggregate", FileDigest(0, HashAlg::kSha1), HashAlg::kSha1));
  records.push_back(Ng("/usr/bin/bash", FileDigest(1)));
  records.push_back(
      Ng("/etc/with space", FileDigest(2, HashAlg::kSha512), HashAlg::kSha512));
  ImaRecord legacy =
      Ng("/legacy", FileDigest(3, HashAlg::kSha1), HashAlg::kSha1);
  legacy.tmpl = ImaTemplate::kIma;
  records.push_back(legacy);
  ImaRecord sig = Ng("/sbin/init", FileDigest(4));
  sig.tmpl = ImaTemplate::kImaSig;
  sig.extra = std::string("\x03\x02\x04\x01\x02\x03\x04\x00\x02\xaa\xbb", 11);
  records.push_back(sig);
  ImaRecord nosig = Ng("/sbin/nosig", FileDigest(5));
  nosig.tmpl = ImaTemplate::kImaSig;
  records.push_back(nosig);
  ImaRecord buf = Ng(".ima", FileDigest(6));
  buf.tmpl = ImaTemplate::kImaBuf;
  buf.extra = "some buffer";
  records.push_back(buf);
  ImaRecord violation = Ng("/tmp/raced", Bytes(32, 0));
  violation.violation = true;
  records.push_back(violation);

  for (HashAlg th : {HashAlg::kSha1, HashAlg::kSha256}) {
    std::string ascii = WriteLog(records, LogFormat::kAscii, th);
    std::string binary = WriteLog(records, LogFormat::kBinary, th);
    ImaLogParser pa(ascii);
    ImaLogParser pb(binary);
    CHECK(pa.format() == LogFormat::kAscii);
    CHECK(pb.format() == LogFormat::kBinary);
    for (size_t i = 0; i < records.size(); ++i) {
      INFO("entry " << i);
      ImaEntry a;
      ImaEntry b;
      REQUIRE(*pa.Next(&a));
      REQUIRE(*pb.Next(&b));
      CHECK(a.index == i);
      CHECK(b.index == i);
      CHECK(a.tmpl == records[i].tmpl);
      CHECK(b.tmpl == records[i].tmpl);
      CHECK(a.path == records[i].path);
      CHECK(b.path == records[i].path);
      CHECK(a.extra == records[i].extra);
      CHECK(b.extra == records[i].extra);
      CHECK(a.template_data == b.template_data);
      CHECK(a.template_data == BuildTemplateData(records[i]));
      CHECK(a.template_hash_alg == th);
      CHECK(b.template_hash_alg == th);
      CHECK(std::memcmp(a.template_hash, b.template_hash, DigestSize(th)) == 0);
      CHECK(a.violation == records[i].violation);
      CHECK(b.violation == records[i].violation);
      CHECK(Bytes(a.digest, a.digest + a.digest_size) == records[i].digest);
      CHECK(Bytes(b.digest, b.digest + b.digest_size) == records[i].digest);
    }
    ImaEntry e;
    CHECK_FALSE(*pa.Next(&e));
    CHECK_FALSE(*pb.Next(&e));
  }
}

TEST_CASE("ima: paths keep any bytes: non-UTF-8, control characters",
          "[core]") {
  std::string weird = std::string("/tmp/\xff\xfe\x01name\xc3(", 14);
  std::vector<ImaRecord> records = {Ng(weird, FileDigest(1))};
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    std::string log = WriteLog(records, f);
    ImaLogParser p(log);
    ImaEntry e;
    REQUIRE(*p.Next(&e));
    CHECK(e.path == weird);
  }
}

TEST_CASE("ima: an entry of 1 MiB parses in both formats", "[core]") {
  ImaRecord big = Ng("kexec-cmdline", FileDigest(7));
  big.tmpl = ImaTemplate::kImaBuf;
  big.extra.assign(1 << 20, 'x');
  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    std::string log = WriteLog({big, Ng("/after", FileDigest(8))}, f);
    ImaLogParser p(log);
    ImaEntry e;
    REQUIRE(*p.Next(&e));
    CHECK(e.extra.size() == (1u << 20));
    REQUIRE(*p.Next(&e));
    CHECK(e.path == "/after");
  }
}

TEST_CASE("ima: malformed ASCII lines name the entry index and the problem",
          "[core]") {
  std::string good = WriteLog(
      {Ng("/a", FileDigest(1)), Ng("/b", FileDigest(2))}, LogFormat::kAscii);
  struct Case {
    std::string line;
    const char* want;
  };
  const std::string th(40, 'a');
  const std::string d = "sha256:" + std::string(64, 'b');
  std::vector<Case> cases = {
      {"10 " + th + " ima-modsig " + d + " /x", "template 'ima-modsig'"},
      {"10 " + th + " bogus " + d + " /x", "template 'bogus'"},
      {"10 " + std::string(39, 'a') + " ima-ng " + d + " /x", "template hash"},
      {"10 " + std::string(40, 'g') + " ima-ng " + d + " /x", "not hex"},
      {"x10 " + th + " ima-ng " + d + " /x", "PCR index"},
      {"10 " + th + " ima-ng sm3:" + std::string(64, 'b') + " /x",
       "'sm3' is not supported"},
      {"10 " + th + " ima-ng sha256:abcd /x", "hex digits"},
      {"10 " + th + " ima-ng " + d, "path field missing"},
      {"10 " + th + " ima-sig " + d + " /x 0", "odd"},
      {"10 " + th + " ima-buf " + d + " /x zz", "not hex"},
      {"10 " + th, "fields missing"},
      {"10", "PCR index"},
  };
  for (const Case& c : cases) {
    INFO(c.line);
    absl::Status s = ParseStatus(good + c.line + "\n");
    REQUIRE(absl::IsInvalidArgument(s));
    CHECK(absl::StrContains(s.message(), "entry 2"));
    CHECK(absl::StrContains(s.message(), c.want));
  }
  CHECK(absl::IsInvalidArgument(ParseStatus(good + "\n" + good)));
  CHECK(ParseStatus(good + "\n").ok());  // One trailing empty line is fine.
  CHECK(ParseStatus("").ok());
}

TEST_CASE("ima: a truncated binary log is an error naming the entry",
          "[core]") {
  std::string log = WriteLog({Ng("/a", FileDigest(1)), Ng("/b", FileDigest(2))},
                             LogFormat::kBinary);
  for (size_t cut = log.size() / 2 + 1; cut < log.size(); ++cut) {
    INFO("cut at " << cut);
    absl::Status s = ParseStatus(absl::string_view(log).substr(0, cut));
    REQUIRE(absl::IsInvalidArgument(s));
    CHECK(absl::StrContains(s.message(), "entry 1"));
  }
}

TEST_CASE("ima: hostile binary length fields never allocate or overrun",
          "[core]") {
  std::string log = WriteLog({Ng("/a", FileDigest(1))}, LogFormat::kBinary);
  auto put32 = [](std::string* s, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
  };
  const size_t name_len_at = 4 + 20;
  const size_t data_len_at = name_len_at + 4 + 6;
  SECTION("a 10-million-byte template data length") {
    std::string bad = log;
    put32(&bad, data_len_at, 10'000'000);
    absl::Status s = ParseStatus(bad);
    REQUIRE(absl::IsInvalidArgument(s));
    CHECK(absl::StrContains(s.message(), "10000000"));
  }
  SECTION("a template data length over the limit") {
    std::string bad = log;
    put32(&bad, data_len_at, 0xffffffff);
    CHECK(absl::StrContains(ParseStatus(bad).message(), "exceeds the limit"));
  }
  SECTION("a huge template name length") {
    std::string bad = log;
    put32(&bad, name_len_at, 10'000'000);
    CHECK(absl::IsInvalidArgument(ParseStatus(bad)));
  }
  SECTION("a field length running past the entry") {
    std::string bad = log;
    put32(&bad, data_len_at + 4, 1000);
    CHECK(absl::StrContains(ParseStatus(bad).message(), "runs past"));
  }
  SECTION("an unknown template name") {
    std::string bad = log;
    bad.replace(name_len_at + 4, 6, "ima-xx");
    CHECK(absl::StrContains(ParseStatus(bad).message(), "'ima-xx'"));
  }
}

}  // namespace
}  // namespace vouch::core::ima

namespace vouch::core::ima {
namespace {

TEST_CASE("ima: hex fields accept either case and reject any bad character",
          "[core]") {
  std::string good = testing::WriteLog(
      {testing::Ng("/a", testing::FileDigest(1))}, LogFormat::kAscii);
  const std::string hex = HexEncode(testing::FileDigest(1));
  const size_t at = good.find(hex);
  std::string upper = good;
  for (size_t i = at; i < at + hex.size(); ++i) {
    upper[i] = static_cast<char>(std::toupper(upper[i]));
  }
  ImaLogParser p(upper);
  ImaEntry e;
  REQUIRE(*p.Next(&e));
  CHECK(Bytes(e.digest, e.digest + 32) == testing::FileDigest(1));
  for (size_t i = 0; i < hex.size(); ++i) {
    for (char bad : {'g', '/', ':', '@', 'G', '`', '\x80', '\xff'}) {
      std::string s = good;
      s[at + i] = bad;
      INFO("position " << i << " char " << int(bad));
      CHECK(absl::IsInvalidArgument(ParseStatus(s)));
    }
  }
}

}  // namespace
}  // namespace vouch::core::ima
