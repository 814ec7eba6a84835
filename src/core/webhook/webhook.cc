#include "core/webhook/webhook.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/failure_code.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::core::webhook {

absl::Status ValidateName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("name: 1..63 characters");
  }
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
      return absl::InvalidArgumentError(
          "name: only lower-case letters, digits and '-'");
    }
  }
  if (name[0] == '-') {
    return absl::InvalidArgumentError("name: starts with a letter or digit");
  }
  return absl::OkStatus();
}

absl::Status ValidateUrl(absl::string_view url) {
  if (url.size() > kMaxUrlBytes) {
    return absl::InvalidArgumentError("url: at most 2048 bytes");
  }
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError("url: must start with https://");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 ||
        static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError(
          "url: no spaces, control or non-ASCII characters");
    }
  }
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority[0] == ':') {
    return absl::InvalidArgumentError("url: no host");
  }
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError(
        "url: no user or password part (sign with the secret instead)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AgentState>> ParseStates(absl::string_view csv) {
  std::vector<AgentState> out;
  if (csv.empty()) return out;
  for (absl::string_view name : absl::StrSplit(csv, ',')) {
    const AgentState s = ParseAgentState(absl::StripAsciiWhitespace(name));
    if (s != v1::ATTESTATION_STATE_PENDING && s != v1::ATTESTATION_STATE_PASS &&
        s != v1::ATTESTATION_STATE_FAIL && s != v1::ATTESTATION_STATE_TIMEOUT) {
      return absl::InvalidArgumentError(
          "states: comma-separated pending, pass, fail, timeout");
    }
    if (std::find(out.begin(), out.end(), s) != out.end()) {
      return absl::InvalidArgumentError("states: a state is repeated");
    }
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<std::string> SecretKey(absl::string_view secret) {
  absl::string_view b64 = secret;
  std::string key;
  // The longest valid secret: the prefix and base64 of kMaxSecretKeyBytes.
  if (secret.size() > 128 || !absl::ConsumePrefix(&b64, kSecretPrefix) ||
      !absl::Base64Unescape(b64, &key) || key.size() < kMinSecretKeyBytes ||
      key.size() > kMaxSecretKeyBytes) {
    return absl::InvalidArgumentError(
        "secret: \"whsec_\" followed by base64 of 24..64 random bytes");
  }
  return key;
}

std::string SecretFromBytes(absl::string_view random) {
  return absl::StrCat(kSecretPrefix, absl::Base64Escape(random));
}

std::string EventId(uint64_t xid, int64_t seq) {
  return absl::StrCat("evt-", xid, "-", seq);
}

std::string RenderCloudEvent(const Event& event) {
  nlohmann::json failures = nlohmann::json::array();
  bool truncated = false;
  if (!event.failures.empty()) {
    v1::Verdict holder;
    if (holder.ParseFromString(event.failures)) {
      for (const v1::Failure& f : holder.failures()) {
        if (failures.size() == kMaxFailures) {
          truncated = true;
          break;
        }
        failures.push_back({{"code", FailureCodeName(f.code())},
                            {"detail", f.detail().substr(0, 512)}});
      }
    }
  }
  nlohmann::json data = {
      {"tenant", event.tenant},
      {"agent_id", event.agent_id},
      {"previous_state", std::string(AgentStateName(event.previous_state))},
      {"state", std::string(AgentStateName(event.state))},
      {"cause", event.cause},
      {"attestation_id", event.attestation_id},
      {"failures", std::move(failures)},
  };
  if (truncated) data["failures_truncated"] = true;
  nlohmann::json ce = {
      {"specversion", "1.0"},
      {"id", event.id},
      {"source", absl::StrCat("/vouch/tenants/", event.tenant)},
      {"type", kEventType},
      {"subject", event.agent_id},
      {"time",
       absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", event.at, absl::UTCTimeZone())},
      {"datacontenttype", "application/json"},
      {"data", std::move(data)},
  };
  // Failure details are UTF-8 by contract; replace anything else rather
  // than throw.
  return ce.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Sign(absl::string_view key, absl::string_view id, int64_t timestamp,
                 absl::string_view body) {
  const std::string content = absl::StrCat(id, ".", timestamp, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(),
       mac, &len);
  return absl::StrCat("v1,", absl::Base64Escape(absl::string_view(
                                 reinterpret_cast<const char*>(mac), len)));
}

absl::Duration Backoff(int attempt, absl::Duration base, absl::Duration cap,
                       double rand01) {
  if (attempt < 1) attempt = 1;
  absl::Duration wait = cap;
  if (attempt <= 40) {
    wait = std::min(cap, base * std::ldexp(1.0, attempt - 1));
  }
  rand01 = std::clamp(rand01, 0.0, 1.0);
  return wait / 2 + (wait / 2) * rand01;
}

}  // namespace vouch::core::webhook
