// File: boot/test_data.h
// Test helpers: the real event logs of tests/data (mb_log.b64 decoded), and
// byte offsets inside a parsed crypto-agile log for making tampered copies.
// Test-only; files are trusted. Not thread-safe (no shared state, though).
#ifndef VOUCH_TESTS_BOOT_TEST_DATA_H_
#define VOUCH_TESTS_BOOT_TEST_DATA_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "core/boot/event_log.h"

namespace vouch::core::boot::testing {

struct NamedLog {
  std::string name;  // Path below tests/data.
  Bytes bytes;
};

// The raw bytes of tests/data/<relative>; mb_log.b64 is base64-decoded.
Bytes ReadTestLog(const std::string& relative);
std::string ReadTestText(const std::string& relative);

// Every event log in tests/data that parses (all but the bogus one).
std::vector<std::string> GoodLogNames();

// Offsets into the log bytes of a crypto-agile event's parts.
size_t DigestOffset(const EventLog& log, const Event& e, uint16_t alg);
size_t DataOffset(const EventLog& log, const Event& e);

// A TCG_PCR_EVENT (SHA-1 log entry) built by hand; the digest is
// SHA-1(data) unless given.
Bytes Sha1Event(uint32_t pcr, uint32_t type, const std::string& data,
                const Bytes& digest = {});
Bytes Concat(std::initializer_list<Bytes> parts);

// Parses, REQUIREs success.
EventLog MustParse(const Bytes& bytes);

}  // namespace vouch::core::boot::testing

#endif  // VOUCH_TESTS_BOOT_TEST_DATA_H_
