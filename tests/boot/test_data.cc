#include "boot/test_data.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace vouch::core::boot::testing {

std::string ReadTestText(const std::string& relative) {
  std::ifstream in(std::string(VOUCH_TEST_DATA_DIR) + "/" + relative,
                   std::ios::binary);
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Bytes ReadTestLog(const std::string& relative) {
  std::string raw = ReadTestText(relative);
  if (!absl::EndsWith(relative, ".b64")) return ToBytes(raw);
  std::string b64 = absl::StrReplaceAll(raw, {{"\n", ""}, {"\r", ""}});
  Bytes out(b64.size() / 4 * 3 + 3);
  int n = EVP_DecodeBlock(out.data(),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  REQUIRE(n >= 0);
  // EVP_DecodeBlock counts '=' padding as zero bytes.
  size_t pad = 0;
  for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::vector<std::string> GoodLogNames() {
  return {"keylime/binary_bios_measurements",
          "keylime/binary_bios_measurements-secureboot",
          "keylime/mb_log.b64",
          "go-attestation/crypto_agile_eventlog",
          "go-attestation/ubuntu_2104_shielded_vm_no_secure_boot_eventlog",
          "go-attestation/short_no_action_eventlog"};
}

size_t DigestOffset(const EventLog& log, const Event& e, uint16_t alg) {
  size_t at = e.offset + 12;  // pcrIndex, eventType, count.
  for (const EventDigest& d : e.digests) {
    if (d.alg == alg) return at + 2;
    at += 2 + d.value.size();
  }
  (void)log;
  FAIL("event has no such digest");
  return 0;
}

size_t DataOffset(const EventLog& log, const Event& e) {
  if (log.format == LogFormat::kSha1 || e.number == 0) {
    return e.offset + 32;  // pcrIndex, eventType, SHA-1, eventSize.
  }
  size_t at = e.offset + 12;
  for (const EventDigest& d : e.digests) at += 2 + d.value.size();
  return at + 4;
}

Bytes Sha1Event(uint32_t pcr, uint32_t type, const std::string& data,
                const Bytes& digest) {
  Bytes out;
  auto u32 = [&out](uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
  };
  u32(pcr);
  u32(type);
  Bytes d = digest;
  if (d.empty()) {
    d.resize(SHA_DIGEST_LENGTH);
    SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         d.data());
  }
  out.insert(out.end(), d.begin(), d.end());
  u32(static_cast<uint32_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

EventLog MustParse(const Bytes& bytes) {
  absl::StatusOr<EventLog> log = ParseEventLog(bytes);
  INFO(log.status().ToString());
  REQUIRE(log.ok());
  return *std::move(log);
}

}  // namespace vouch::core::boot::testing
