#include "core/boot/pcr_policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "core/boot/event_log.h"

namespace vouch::core::boot {

// Allowed values per PCR; kTopLevel holds those of the quoted bank.
struct PcrPolicy::State {
  static constexpr uint16_t kTopLevel = 0;
  std::map<uint16_t, std::map<uint32_t, std::vector<Bytes>>> banks;
};

namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& at, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("PCR policy: ", at, " ", what));
}

bool DigestLength(size_t n) { return n == 20 || n == 32 || n == 48 || n == 64; }

// A list of hex digests (or one string, as Keylime also accepts), all of
// `size` bytes when size is not 0 (then of the first value's size).
absl::Status ReadValues(const Json& v, const std::string& at, size_t& size,
                        std::vector<Bytes>& out) {
  std::vector<const Json*> items;
  if (v.is_string()) {
    items.push_back(&v);
  } else if (v.is_array() && !v.empty() && v.size() <= kMaxPcrPolicyValues) {
    for (const Json& item : v) items.push_back(&item);
  } else {
    return Bad(at, absl::StrCat("is not a hex string or a list of 1..",
                                kMaxPcrPolicyValues, " hex strings"));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = v.is_array() ? absl::StrCat(at, "[", i, "]") : at;
    if (!items[i]->is_string()) return Bad(where, "is not a string");
    absl::string_view text = items[i]->get_ref<const std::string&>();
    if (!absl::ConsumePrefix(&text, "0x")) absl::ConsumePrefix(&text, "0X");
    absl::StatusOr<Bytes> b = HexDecode(text);
    if (!b.ok()) return Bad(where, "is not hex");
    if (!DigestLength(b->size())) {
      return Bad(where, "is not a digest (20, 32, 48 or 64 bytes)");
    }
    if (size == 0) size = b->size();
    if (b->size() != size) {
      return Bad(where, absl::StrCat("has ", b->size(), " bytes, not ", size,
                                     " like the bank's other values"));
    }
    out.push_back(*std::move(b));
  }
  return absl::OkStatus();
}

// PCR index -> values members of `obj` (a bank, or the top level where
// bank names and "mask" are skipped by the caller).
absl::Status ReadPcr(const std::string& key, const Json& values,
                     const std::string& at, size_t& size,
                     std::map<uint32_t, std::vector<Bytes>>& bank) {
  uint32_t pcr = 0;
  if (key.empty() || key.size() > 2 ||
      !std::all_of(key.begin(), key.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(key, &pcr) || pcr > 23) {
    return Bad(at, "is not a PCR index 0-23, a bank name or \"mask\"");
  }
  return ReadValues(values, at, size, bank[pcr]);
}

}  // namespace

absl::StatusOr<PcrPolicy> PcrPolicy::FromJson(absl::string_view json) {
  if (json.size() > kMaxPcrPolicyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR policy of ", json.size(),
                     " bytes exceeds the limit of ", kMaxPcrPolicyBytes));
  }
  Json doc = Json::parse(json.begin(), json.end(), /*cb=*/nullptr,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("PCR policy is not valid JSON");
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("PCR policy is not a JSON object");
  }
  auto state = std::make_shared<State>();
  size_t top_size = 0;
  for (const auto& [key, value] : doc.items()) {
    if (key == "mask") continue;  // Keylime's selection mask: implied here.
    std::optional<uint16_t> alg = HashAlgFromName(key);
    if (alg && *alg != kAlgSha1 && *alg != kAlgSha256 && *alg != kAlgSha384 &&
        *alg != kAlgSha512) {
      alg.reset();  // A bank this format does not name (sm3_256).
    }
    if (alg) {
      if (!value.is_object() || value.empty()) {
        return Bad(key, "is not an object of PCR values");
      }
      size_t size = HashAlgDigestSize(*alg);
      auto& bank = state->banks[*alg];
      for (const auto& [pcr, values] : value.items()) {
        VOUCH_RETURN_IF_ERROR(
            ReadPcr(pcr, values, absl::StrCat(key, ".", pcr), size, bank));
      }
      continue;
    }
    VOUCH_RETURN_IF_ERROR(
        ReadPcr(key, value, key, top_size, state->banks[State::kTopLevel]));
  }
  if (state->banks.empty()) {
    return absl::InvalidArgumentError("PCR policy names no PCR");
  }
  return PcrPolicy(std::move(state));
}

std::map<uint16_t, std::vector<uint32_t>> PcrPolicy::Selection(
    uint16_t alg) const {
  std::map<uint16_t, std::vector<uint32_t>> out;
  for (const auto& [bank, pcrs] : state_->banks) {
    std::vector<uint32_t>& list = out[bank == State::kTopLevel ? alg : bank];
    for (const auto& [pcr, values] : pcrs) list.push_back(pcr);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  return out;
}

std::vector<PcrMismatch> PcrPolicy::Evaluate(uint16_t alg,
                                             const PcrBanks& quoted) const {
  std::vector<PcrMismatch> out;
  for (const auto& [policy_bank, pcrs] : state_->banks) {
    const uint16_t bank = policy_bank == State::kTopLevel ? alg : policy_bank;
    auto values = quoted.find(bank);
    for (const auto& [pcr, allowed] : pcrs) {
      PcrMismatch m{bank, pcr, ""};
      auto v = values == quoted.end() ? PcrValues::const_iterator()
                                      : values->second.find(pcr);
      if (values == quoted.end() || v == values->second.end()) {
        m.reason = absl::StrCat("PCR ", pcr, " (", HashAlgName(bank),
                                ") is not quoted");
      } else if (std::find(allowed.begin(), allowed.end(), v->second) ==
                 allowed.end()) {
        m.reason =
            absl::StrCat("PCR ", pcr, " (", HashAlgName(bank), ") holds ",
                         HexEncode(v->second), ", not an allowed value");
      } else {
        continue;
      }
      out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace vouch::core::boot
