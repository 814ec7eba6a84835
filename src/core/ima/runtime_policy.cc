#include "core/ima/runtime_policy.h"

#include <re2/re2.h>
#include <re2/set.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/bytes.h"
#include "common/huge_pages.h"
#include "common/status_macros.h"
#include "core/ima/hex.h"
#include "core/ima/ima_signature.h"

namespace vouch::core::ima {

using Json = nlohmann::json;

// ---------------------------------------------------------------- DigestTable

namespace {
inline uint64_t Reduce(uint64_t h, size_t n) {
  // Lemire's multiply-shift range reduction: maps h onto [0, n).
  return static_cast<uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);
}
}  // namespace

void DigestTable::Begin(const PathHash& h) {
  pending_.push_back(
      {h.h0 == 0 ? 1 : h.h0, h.h1, static_cast<uint32_t>(pool_.size()), 0});
}

void DigestTable::Add(std::optional<HashAlg> alg, const uint8_t* digest,
                      size_t size) {
  pool_.push_back(alg ? static_cast<uint8_t>(*alg) : 0);
  pool_.push_back(static_cast<uint8_t>(size));
  pool_.insert(pool_.end(), digest, digest + size);
  ++pending_.back().count;
}

void DigestTable::End() {}

void DigestTable::Reserve(size_t paths) {
  ReserveHuge(pending_, pending_.size() + paths);
  // One SHA-256 digest per path is the common case; Build() trims.
  ReserveHuge(pool_, pool_.size() + paths * 34);
}

absl::Status DigestTable::Build() {
  if (pool_.size() > UINT32_MAX) {
    return absl::InvalidArgumentError("policy digests exceed 4 GiB");
  }
  size_t n = pending_.size();
  size_t cap = n + n * 3 / 7 + 8;  // Load factor <= 0.7.
  ReserveHuge(slots_, cap);        // Also fewer TLB misses on every lookup.
  slots_.assign(cap, Slot{0, 0, 0, 0});
  for (size_t i = 0; i < n; ++i) {
    const Slot& p = pending_[i];
    size_t idx = Reduce(p.h0, cap);
    while (slots_[idx].h0 != 0) {
      if (slots_[idx].h0 == p.h0 && slots_[idx].h1 == p.h1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the same path is listed twice (path number ", i, ")"));
      }
      if (++idx == cap) idx = 0;
    }
    slots_[idx] = p;
  }
  count_ = n;
  std::vector<Slot>().swap(pending_);
  pool_.shrink_to_fit();
  return absl::OkStatus();
}

const DigestTable::Slot* DigestTable::Find(const PathHash& h) const {
  if (slots_.empty()) return nullptr;
  uint64_t h0 = h.h0 == 0 ? 1 : h.h0;
  size_t cap = slots_.size();
  size_t idx = Reduce(h0, cap);
  while (true) {
    const Slot& s = slots_[idx];
    if (s.h0 == 0) return nullptr;
    if (s.h0 == h0 && s.h1 == h.h1) return &s;
    if (++idx == cap) idx = 0;
  }
}

void DigestTable::PrefetchSlot(const PathHash& h) const {
  if (slots_.empty()) return;
  __builtin_prefetch(&slots_[Reduce(h.h0 == 0 ? 1 : h.h0, slots_.size())]);
}

void DigestTable::PrefetchDigests(const PathHash& h) const {
  if (const Slot* s = Find(h)) __builtin_prefetch(pool_.data() + s->offset);
}

DigestMatch DigestTable::Lookup(const PathHash& h, HashAlg alg,
                                const uint8_t* digest, size_t size) const {
  const Slot* s = Find(h);
  if (s == nullptr) return DigestMatch::kNotListed;
  const uint8_t* p = pool_.data() + s->offset;
  for (uint32_t i = 0; i < s->count; ++i) {
    uint8_t a = p[0];
    uint8_t len = p[1];
    if (len == size && (a == 0 || a == static_cast<uint8_t>(alg)) &&
        std::memcmp(p + 2, digest, size) == 0) {
      return DigestMatch::kMatch;
    }
    p += 2 + len;
  }
  return DigestMatch::kMismatch;
}

std::vector<std::string> DigestTable::HexDigests(const PathHash& h) const {
  std::vector<std::string> out;
  const Slot* s = Find(h);
  if (s == nullptr) return out;
  const uint8_t* p = pool_.data() + s->offset;
  for (uint32_t i = 0; i < s->count; ++i) {
    std::string hex = HexEncode(ByteSpan(p + 2, p[1]));
    if (p[0] != 0) {
      hex = absl::StrCat(HashAlgName(static_cast<HashAlg>(p[0])), ":", hex);
    }
    out.push_back(std::move(hex));
    p += 2 + p[1];
  }
  return out;
}

size_t DigestTable::MemoryBytes() const {
  return slots_.capacity() * sizeof(Slot) + pool_.capacity() +
         pending_.capacity() * sizeof(Slot);
}

// ---------------------------------------------------------------- digests

absl::StatusOr<PolicyDigest> ParsePolicyDigest(absl::string_view text) {
  PolicyDigest d;
  absl::string_view hex = text;
  if (size_t colon = text.find(':'); colon != absl::string_view::npos) {
    d.alg = HashAlgFromName(text.substr(0, colon));
    if (!d.alg) {
      return absl::InvalidArgumentError(
          absl::StrCat("digest '", text.substr(0, 80),
                       "': algorithm is not sha1/sha256/sha384/sha512"));
    }
    hex = text.substr(colon + 1);
  }
  if (hex.size() % 2 != 0 || !HashAlgFromSize(hex.size() / 2)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest '", text.substr(0, 80),
                     "': want 40, 64, 96 or 128 hex digits"));
  }
  if (d.alg && DigestSize(*d.alg) != hex.size() / 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest '", text.substr(0, 80),
                     "': length does not fit its algorithm"));
  }
  if (!DecodeHex(hex, d.bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest '", text.substr(0, 80), "' is not hex"));
  }
  d.size = hex.size() / 2;
  return d;
}

// ---------------------------------------------------------------- excludes

class ExcludeSet {
 public:
  ExcludeSet() : set_(Options(), RE2::ANCHOR_START) {}
  static RE2::Options Options() {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(int64_t{64} << 20);
    return o;
  }
  re2::RE2::Set set_;
};

// ---------------------------------------------------------------- loader

namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("runtime policy: ", what));
}

absl::string_view View(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// OK for SUCCESS; otherwise the text is not JSON, in simdjson's words.
absl::Status NotJson(simdjson::error_code err) {
  if (err == simdjson::SUCCESS) return absl::OkStatus();
  return Bad(absl::StrCat("not valid JSON: ", simdjson::error_message(err)));
}

}  // namespace

// Walks the text with simdjson's On-Demand parser: its first stage checks
// the whole text (string boundaries, UTF-8, control characters) at GB/s and
// indexes it; the walk below then reads every value in place, so a large
// policy never becomes a parsed tree: "digests", "keyrings" and "ima-buf"
// go straight into their tables (paths and digests read from the text,
// copied only when they hold escapes), and the other, small sections become
// nlohmann values checked afterwards. Every value is visited and the end of
// the text is checked, so nothing goes unchecked; where the walk fails,
// FromJson reports a syntax error before anything else (SyntaxErrorFirst).
class PolicyLoader {
 public:
  PolicyLoader(RuntimePolicy* policy, const PolicyLoadOptions& options)
      : policy_(policy), options_(options) {}

  absl::Status Load(simdjson::ondemand::document& doc) {
    simdjson::ondemand::object top;
    if (doc.get_object().get(top) != simdjson::SUCCESS) {
      return Bad("a runtime policy is a JSON object");
    }
    absl::flat_hash_set<std::string> seen;
    for (auto member : top) {
      simdjson::ondemand::field kv;
      VOUCH_RETURN_IF_ERROR(NotJson(std::move(member).get(kv)));
      std::string_view name;
      VOUCH_RETURN_IF_ERROR(NotJson(kv.unescaped_key().get(name)));
      const std::string key(name);
      if (!seen.insert(key).second) {
        return Bad(absl::StrCat("key '", key.substr(0, 80), "' appears twice"));
      }
      if (key == "digests" || key == "keyrings" || key == "ima-buf") {
        DigestTable* table = key == "digests"    ? &policy_->digests_
                             : key == "keyrings" ? &policy_->keyrings_
                                                 : &policy_->ima_buf_;
        VOUCH_RETURN_IF_ERROR(LoadTable(key, kv.value(), table));
        continue;
      }
      static const char* const kKnown[] = {
          "meta", "release", "excludes", "ima", "verification-keys", "reject"};
      if (std::find_if(std::begin(kKnown), std::end(kKnown),
                       [&](const char* n) { return key == n; }) ==
          std::end(kKnown)) {
        return Bad(absl::StrCat(
            "unknown key '", key.substr(0, 80),
            "' (meta.version 1 keys: meta, release, digests, excludes, "
            "keyrings, ima, ima-buf, verification-keys; and Vouch's "
            "reject)"));
      }
      VOUCH_ASSIGN_OR_RETURN(sections_[key], ToJson(key, kv.value(), 1));
    }
    // Nothing may follow the object (current_location is out of bounds
    // exactly when every token was read).
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
      return NotJson(simdjson::TRAILING_CONTENT);
    }
    return absl::OkStatus();
  }

  std::map<std::string, Json>& sections() { return sections_; }

 private:
  // The text of a string whose opening quote is just before `p`, read in
  // place; false if it holds an escape (the caller then lets simdjson
  // unescape it). The first stage has checked that a closing quote follows
  // and that no control character comes before it.
  static bool InPlace(const char* p, std::string_view* out) {
    // An escaped quote ends the search early, but with a backslash before
    // it, which sends the string to simdjson.
    const char* q = static_cast<const char*>(::rawmemchr(p, '"'));
    std::string_view s(p, static_cast<size_t>(q - p));
    if (s.find('\\') != std::string_view::npos) return false;
    *out = s;
    return true;
  }

  static std::string Where(const std::string& section, std::string_view path,
                           std::optional<size_t> item) {
    std::string w = absl::StrCat(
        section, "[\"", absl::CEscape(View(path.substr(0, 120))), "\"]");
    if (item) absl::StrAppend(&w, "[", *item, "]");
    return w;
  }

  // {"<path>": ["<digest>", ...], ...}
  absl::Status LoadTable(const std::string& section,
                         simdjson::ondemand::value value, DigestTable* table) {
    simdjson::ondemand::json_type type{};
    VOUCH_RETURN_IF_ERROR(NotJson(value.type().get(type)));
    simdjson::ondemand::object paths;
    if (type != simdjson::ondemand::json_type::object ||
        value.get_object().get(paths) != simdjson::SUCCESS) {
      return Bad(
          absl::StrCat(section, ": expected an object of path -> digest list"));
    }
    // Counting is a walk over the index (it rewinds); it sizes the table
    // once, so no path is stored twice.
    size_t count = 0;
    VOUCH_RETURN_IF_ERROR(NotJson(paths.count_fields().get(count)));
    table->Reserve(std::min<size_t>(count, options_.max_digest_entries));
    for (auto member : paths) {
      simdjson::ondemand::field kv;
      VOUCH_RETURN_IF_ERROR(NotJson(std::move(member).get(kv)));
      if (++entries_ > options_.max_digest_entries) {
        return Bad(
            absl::StrCat("more than ", options_.max_digest_entries, " paths"));
      }
      std::string_view path;
      if (!InPlace(kv.key().raw(), &path)) {
        // Unescaped into the parser's string buffer, which only grows
        // while this document is read: the view stays valid.
        VOUCH_RETURN_IF_ERROR(NotJson(kv.unescaped_key().get(path)));
      }
      const PathHash hash = policy_->HashPath(View(path));
      simdjson::ondemand::value list = kv.value();
      VOUCH_RETURN_IF_ERROR(NotJson(list.type().get(type)));
      simdjson::ondemand::array digests;
      if (type != simdjson::ondemand::json_type::array ||
          list.get_array().get(digests) != simdjson::SUCCESS) {
        return Bad(
            absl::StrCat(Where(section, path, std::nullopt),
                         type == simdjson::ondemand::json_type::object
                             ? ": expected a list of digests, got an object"
                             : ": expected a list of digests"));
      }
      table->Begin(hash);
      size_t item = 0;
      for (auto element : digests) {
        simdjson::ondemand::value d;
        VOUCH_RETURN_IF_ERROR(NotJson(std::move(element).get(d)));
        const std::string_view token = d.raw_json_token();
        std::string_view text;
        if (token.empty() || token[0] != '"') {
          return Bad(absl::StrCat(Where(section, path, item),
                                  ": expected a digest string"));
        }
        if (!InPlace(token.data() + 1, &text)) {
          VOUCH_RETURN_IF_ERROR(NotJson(d.get_string().get(text)));
        }
        absl::StatusOr<PolicyDigest> digest = ParsePolicyDigest(View(text));
        if (!digest.ok()) {
          return Bad(absl::StrCat(Where(section, path, item), ": ",
                                  digest.status().message()));
        }
        table->Add(digest->alg, digest->bytes, digest->size);
        ++item;
      }
      table->End();
    }
    return absl::OkStatus();
  }

  // A small section as an nlohmann value (non-negative integers unsigned,
  // duplicate object keys: the last wins, as nlohmann's parser does).
  absl::StatusOr<Json> ToJson(const std::string& section,
                              simdjson::ondemand::value v, int depth) {
    if (depth > 32) return Bad(absl::StrCat(section, ": nested too deeply"));
    simdjson::ondemand::json_type type{};
    VOUCH_RETURN_IF_ERROR(NotJson(v.type().get(type)));
    switch (type) {
      case simdjson::ondemand::json_type::object: {
        Json out = Json::object();
        simdjson::ondemand::object object;
        VOUCH_RETURN_IF_ERROR(NotJson(v.get_object().get(object)));
        for (auto member : object) {
          simdjson::ondemand::field kv;
          VOUCH_RETURN_IF_ERROR(NotJson(std::move(member).get(kv)));
          std::string_view key;
          VOUCH_RETURN_IF_ERROR(NotJson(kv.unescaped_key().get(key)));
          std::string k(key);
          VOUCH_ASSIGN_OR_RETURN(out[k],
                                 ToJson(section, kv.value(), depth + 1));
        }
        return out;
      }
      case simdjson::ondemand::json_type::array: {
        Json out = Json::array();
        simdjson::ondemand::array array;
        VOUCH_RETURN_IF_ERROR(NotJson(v.get_array().get(array)));
        for (auto element : array) {
          simdjson::ondemand::value e;
          VOUCH_RETURN_IF_ERROR(NotJson(std::move(element).get(e)));
          VOUCH_ASSIGN_OR_RETURN(Json item, ToJson(section, e, depth + 1));
          out.push_back(std::move(item));
        }
        return out;
      }
      case simdjson::ondemand::json_type::number: {
        simdjson::ondemand::number number;
        VOUCH_RETURN_IF_ERROR(NotJson(v.get_number().get(number)));
        if (number.is_int64()) {
          const int64_t i = number.get_int64();
          return i >= 0 ? Json(static_cast<uint64_t>(i)) : Json(i);
        }
        if (number.is_uint64()) return Json(number.get_uint64());
        return Json(number.get_double());
      }
      case simdjson::ondemand::json_type::string: {
        std::string_view s;
        VOUCH_RETURN_IF_ERROR(NotJson(v.get_string().get(s)));
        return Json(std::string(s));
      }
      case simdjson::ondemand::json_type::boolean: {
        bool b = false;
        VOUCH_RETURN_IF_ERROR(NotJson(v.get_bool().get(b)));
        return Json(b);
      }
      case simdjson::ondemand::json_type::null: {
        bool null = false;
        VOUCH_RETURN_IF_ERROR(NotJson(v.is_null().get(null)));
        if (!null) return NotJson(simdjson::N_ATOM_ERROR);
        return Json(nullptr);
      }
    }
    return Bad(absl::StrCat(section, ": unsupported JSON value"));
  }

  RuntimePolicy* policy_;
  const PolicyLoadOptions& options_;
  size_t entries_ = 0;
  std::map<std::string, Json> sections_;
};

namespace {

absl::StatusOr<std::vector<std::string>> StringList(const Json& v,
                                                    absl::string_view where) {
  if (!v.is_array()) return Bad(absl::StrCat(where, ": expected a list"));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      return Bad(absl::StrCat(where, "[", i, "]: expected a string"));
    }
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

// "verification-keys": a string holding Keylime's ImaKeyrings JSON:
// {"<keyring>": "<json {\"pubkeys\": [base64 DER], \"keyids\": [int]}>"}.
absl::StatusOr<std::vector<VerificationKey>> ParseVerificationKeys(
    const Json& v) {
  std::vector<VerificationKey> out;
  if (!v.is_string()) return Bad("verification-keys: expected a string");
  const std::string& text = v.get_ref<const std::string&>();
  if (text.empty()) return out;
  Json rings = Json::parse(text, nullptr, false);
  if (rings.is_string()) {
    rings = Json::parse(rings.get<std::string>(), nullptr, false);
  }
  if (!rings.is_object()) {
    return Bad("verification-keys: expected a JSON object of keyrings");
  }
  for (auto& [name, ring_value] : rings.items()) {
    Json ring = ring_value;
    if (ring.is_string())
      ring = Json::parse(ring.get<std::string>(), nullptr, false);
    std::string where = absl::StrCat("verification-keys[\"", name, "\"]");
    if (!ring.is_object() || !ring.contains("pubkeys")) {
      return Bad(where + ": expected an object with \"pubkeys\"");
    }
    VOUCH_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                           StringList(ring["pubkeys"], where + ".pubkeys"));
    Json ids = ring.value("keyids", Json::array());
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string der;
      if (!absl::Base64Unescape(keys[i], &der)) {
        return Bad(absl::StrCat(where, ".pubkeys[", i, "]: not base64"));
      }
      const auto* p = reinterpret_cast<const unsigned char*>(der.data());
      EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
      if (!key) {
        DrainOpenSslErrors();
        return Bad(absl::StrCat(where, ".pubkeys[", i,
                                "]: not a DER SubjectPublicKeyInfo"));
      }
      VerificationKey vk;
      vk.keyring = name;
      if (ids.is_array() && i < ids.size() && ids[i].is_number_unsigned()) {
        vk.key_id = ids[i].get<uint32_t>();
      } else {
        VOUCH_ASSIGN_OR_RETURN(vk.key_id, ImaKeyIdV2(key.get()));
      }
      vk.key = std::move(key);
      out.push_back(std::move(vk));
    }
  }
  return out;
}

std::string RejectKey(std::optional<HashAlg> alg, const uint8_t* digest,
                      size_t size) {
  std::string key(1, static_cast<char>(alg ? static_cast<uint8_t>(*alg) : 0));
  key.append(reinterpret_cast<const char*>(digest), size);
  return key;
}

}  // namespace

// "reject": {"digests": ["<hex>" | "<alg>:<hex>", ...], "paths": [...]}.
class RejectListLoader {
 public:
  static absl::Status Load(const Json& v, RuntimePolicy* policy);
};

absl::Status RejectListLoader::Load(const Json& v, RuntimePolicy* policy) {
  if (!v.is_object()) {
    return Bad("reject: expected an object with \"digests\" and \"paths\"");
  }
  for (auto& [k, list] : v.items()) {
    if (k == "digests") {
      VOUCH_ASSIGN_OR_RETURN(policy->reject_digest_texts_,
                             StringList(list, "reject.digests"));
      for (size_t i = 0; i < policy->reject_digest_texts_.size(); ++i) {
        absl::StatusOr<PolicyDigest> d =
            ParsePolicyDigest(policy->reject_digest_texts_[i]);
        if (!d.ok()) {
          return Bad(
              absl::StrCat("reject.digests[", i, "]: ", d.status().message()));
        }
        policy->reject_digests_.insert(RejectKey(d->alg, d->bytes, d->size));
      }
    } else if (k == "paths") {
      VOUCH_ASSIGN_OR_RETURN(policy->reject_path_texts_,
                             StringList(list, "reject.paths"));
      for (const std::string& path : policy->reject_path_texts_) {
        PathHash h = policy->HashPath(path);
        policy->reject_paths_.insert({h.h0, h.h1});
      }
    } else {
      return Bad(absl::StrCat("reject: unknown key '", k.substr(0, 80),
                              "' (keys: digests, paths)"));
    }
  }
  return absl::OkStatus();
}

RuntimePolicy::RuntimePolicy() = default;
RuntimePolicy::~RuntimePolicy() = default;

PathHash RuntimePolicy::HashPath(absl::string_view path) const {
  return SipHash128(key_, path);
}

bool RuntimePolicy::IsExcluded(absl::string_view path) const {
  return excludes_ != nullptr &&
         excludes_->set_.Match(re2::StringPiece(path.data(), path.size()),
                               nullptr);
}

RejectMatch RuntimePolicy::Rejects(const PathHash& path_hash, HashAlg alg,
                                   const uint8_t* digest, size_t size) const {
  if (!reject_digests_.empty() &&
      (reject_digests_.contains(RejectKey(alg, digest, size)) ||
       reject_digests_.contains(RejectKey(std::nullopt, digest, size)))) {
    return RejectMatch::kDigest;
  }
  if (!reject_paths_.empty() &&
      reject_paths_.contains({path_hash.h0, path_hash.h1})) {
    return RejectMatch::kPath;
  }
  return RejectMatch::kNone;
}

bool RuntimePolicy::IsKeyringIgnored(absl::string_view keyring) const {
  return ignore_all_keyrings_ || ignored_keyrings_.contains(keyring);
}

size_t RuntimePolicy::MemoryBytes() const {
  return digests_.MemoryBytes() + keyrings_.MemoryBytes() +
         ima_buf_.MemoryBytes();
}

namespace {

// The walk stops at the first thing it cannot use, which in a broken text
// can be a value before the broken syntax. Only then, the whole text is
// parsed once more into a tree: a text that is not JSON is reported as such,
// whatever the walk stumbled on first.
absl::Status SyntaxErrorFirst(absl::string_view json, absl::Status walked) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  absl::Status syntax =
      NotJson(parser.parse(json.data(), json.size(), true).get(root));
  return syntax.ok() ? walked : syntax;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RuntimePolicy>> RuntimePolicy::FromJson(
    absl::string_view json, const PolicyLoadOptions& options) {
  if (json.size() > options.max_json_bytes) {
    return Bad(absl::StrCat("larger than ", options.max_json_bytes, " bytes"));
  }
  std::shared_ptr<RuntimePolicy> policy(new RuntimePolicy());
  policy->key_ = options.path_hash_key;
  // One parser per load: loads may run concurrently. simdjson reads up to
  // SIMDJSON_PADDING bytes past the end; unless the caller vouches for them
  // the input is copied once into a padded buffer.
  simdjson::ondemand::parser parser;
  simdjson::padded_string copy;
  simdjson::padded_string_view text;
  if (options.readable_padding >= simdjson::SIMDJSON_PADDING) {
    text = simdjson::padded_string_view(json.data(), json.size(),
                                        json.size() + options.readable_padding);
  } else {
    copy = simdjson::padded_string(json.data(), json.size());
    text = copy;
  }
  PolicyLoader loader(policy.get(), options);
  simdjson::ondemand::document doc;
  absl::Status loaded = NotJson(parser.iterate(text).get(doc));
  if (loaded.ok()) loaded = loader.Load(doc);
  if (!loaded.ok()) return SyntaxErrorFirst(json, std::move(loaded));
  for (DigestTable* t :
       {&policy->digests_, &policy->keyrings_, &policy->ima_buf_}) {
    if (absl::Status s = t->Build(); !s.ok()) return Bad(s.message());
  }
  auto& sec = loader.sections();

  // meta.version must be 1 (keylime/ima/ima.py RUNTIME_POLICY_CURRENT_VERSION).
  auto meta = sec.find("meta");
  if (meta == sec.end() || !meta->second.is_object()) {
    return Bad("\"meta\" object with \"version\": 1 is missing");
  }
  auto version = meta->second.find("version");
  if (version == meta->second.end() || !version->is_number_integer() ||
      version->get<int64_t>() != 1) {
    return Bad("meta.version must be 1");
  }
  if (auto it = sec.find("release"); it != sec.end()) {
    if (!it->second.is_number_integer()) {
      return Bad("release: expected an integer");
    }
    policy->release_ = it->second.get<int64_t>();
  }
  if (auto it = sec.find("excludes"); it != sec.end()) {
    VOUCH_ASSIGN_OR_RETURN(policy->exclude_patterns_,
                           StringList(it->second, "excludes"));
    if (!policy->exclude_patterns_.empty()) {
      auto set = std::make_unique<ExcludeSet>();
      for (size_t i = 0; i < policy->exclude_patterns_.size(); ++i) {
        std::string err;
        if (set->set_.Add(policy->exclude_patterns_[i], &err) < 0) {
          return Bad(absl::StrCat("excludes[", i, "]: invalid regex '",
                                  policy->exclude_patterns_[i].substr(0, 120),
                                  "': ", err));
        }
      }
      if (!set->set_.Compile()) {
        return Bad("excludes: the regexes need more than 64 MiB to compile");
      }
      policy->excludes_ = std::move(set);
    }
  }
  if (auto it = sec.find("ima"); it != sec.end()) {
    const Json& ima = it->second;
    if (!ima.is_object()) return Bad("ima: expected an object");
    for (auto& [k, v] : ima.items()) {
      if (k == "ignored_keyrings") {
        VOUCH_ASSIGN_OR_RETURN(std::vector<std::string> rings,
                               StringList(v, "ima.ignored_keyrings"));
        for (std::string& r : rings) {
          if (r == "*") policy->ignore_all_keyrings_ = true;
          policy->ignored_keyrings_.insert(std::move(r));
        }
      } else if (k == "log_hash_alg") {
        std::optional<HashAlg> alg = v.is_string()
                                         ? HashAlgFromName(v.get<std::string>())
                                         : std::nullopt;
        if (!alg) {
          return Bad(
              "ima.log_hash_alg: expected sha1, sha256, sha384 or "
              "sha512");
        }
        policy->log_hash_alg_ = *alg;
      } else if (k == "dm_policy") {
        if (!v.is_null()) {
          return Bad(
              "ima.dm_policy: device-mapper policies are not "
              "supported (must be null)");
        }
      } else {
        return Bad(absl::StrCat("ima: unknown key '", k.substr(0, 80), "'"));
      }
    }
  }
  if (auto it = sec.find("verification-keys"); it != sec.end()) {
    VOUCH_ASSIGN_OR_RETURN(policy->verification_keys_,
                           ParseVerificationKeys(it->second));
  }
  if (auto it = sec.find("reject"); it != sec.end()) {
    VOUCH_RETURN_IF_ERROR(RejectListLoader::Load(it->second, policy.get()));
  }
  return std::shared_ptr<const RuntimePolicy>(std::move(policy));
}

// ---------------------------------------------------------------- writing

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::StatusOr<std::string> WriteRuntimePolicy(const PolicyDraft& draft) {
  Json j;
  j["meta"] = {{"version", 1}, {"generator", 0}};
  j["release"] = 0;
  Json digests = Json::object();
  for (const auto& [path, list] : draft.digests) {
    if (!IsValidUtf8(path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("path '", absl::CEscape(path.substr(0, 120)),
                       "' is not UTF-8 and cannot be written to JSON"));
    }
    digests[path] = list;
  }
  j["digests"] = std::move(digests);
  j["excludes"] = draft.excludes;
  Json keyrings = Json::object();
  for (const auto& [name, list] : draft.keyrings) keyrings[name] = list;
  j["keyrings"] = std::move(keyrings);
  j["ima"] = {{"ignored_keyrings", Json::array()},
              {"log_hash_alg", draft.log_hash_alg},
              {"dm_policy", nullptr}};
  j["ima-buf"] = Json::object();
  j["verification-keys"] = "";
  if (!draft.reject_digests.empty() || !draft.reject_paths.empty()) {
    j["reject"] = {{"digests", draft.reject_digests},
                   {"paths", draft.reject_paths}};
  }
  try {
    return j.dump(1) + "\n";
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
}

absl::StatusOr<PolicyDraft> ConvertAllowlist(absl::string_view allowlist,
                                             absl::string_view excludelist) {
  PolicyDraft draft;
  size_t lineno = 0;
  for (absl::string_view line : absl::StrSplit(allowlist, '\n')) {
    ++lineno;
    absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty() || t[0] == '#') continue;
    // "<hex digest><whitespace><path>"; the path keeps inner spaces.
    size_t sp = t.find_first_of(" \t");
    if (sp == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "allowlist line ", lineno, ": expected '<digest> <path>'"));
    }
    absl::string_view digest = t.substr(0, sp);
    absl::string_view path = absl::StripLeadingAsciiWhitespace(t.substr(sp));
    absl::StatusOr<PolicyDigest> d = ParsePolicyDigest(digest);
    if (!d.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("allowlist line ", lineno, ": ", d.status().message()));
    }
    std::string hex = HexEncode(ByteSpan(d->bytes, d->size));
    // As Keylime's process_flat_allowlist: the path is kept as written,
    // with spaces turned into '_' because IMA does so when it measures
    // (ima_write_template_field_data in ima_template_lib.c).
    std::string p(path);
    std::replace(p.begin(), p.end(), ' ', '_');
    auto& list = draft.digests[p];
    if (std::find(list.begin(), list.end(), hex) == list.end()) {
      list.push_back(hex);
    }
  }
  lineno = 0;
  for (absl::string_view line : absl::StrSplit(excludelist, '\n')) {
    ++lineno;
    absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty() || t[0] == '#') continue;
    RE2 re(re2::StringPiece(t.data(), t.size()), ExcludeSet::Options());
    if (!re.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "exclude list line ", lineno, ": invalid regex: ", re.error()));
    }
    draft.excludes.emplace_back(t);
  }
  return draft;
}

}  // namespace vouch::core::ima
