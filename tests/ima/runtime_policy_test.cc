// Keylime runtime policies: the real test policies, every schema error, the
// path-hash table, SipHash against OpenSSL, allowlist conversion, DSSE.
#include "core/ima/runtime_policy.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/ima/dsse.h"
#include "core/ima/hash_alg.h"
#include "core/ima/path_hash.h"
#include "ima_test_util.h"

namespace vouch::core::ima {
namespace {

using testing::DataFile;
using testing::PolicyJson;

std::shared_ptr<const RuntimePolicy> Load(absl::string_view json) {
  auto p = RuntimePolicy::FromJson(json);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return *p;
}

absl::Status LoadError(absl::string_view json) {
  return RuntimePolicy::FromJson(json).status();
}

DigestMatch LookupHex(const RuntimePolicy& p, absl::string_view path,
                      HashAlg alg, absl::string_view hex) {
  Bytes d = *HexDecode(hex);
  return p.digests().Lookup(p.HashPath(path), alg, d.data(), d.size());
}

TEST_CASE("ima: Keylime's test policies load with their contents", "[core]") {
  auto p = Load(DataFile("keylime/runtime-policy-test.json"));
  CHECK(p->digests().size() == 21);
  CHECK(p->log_hash_alg() == HashAlg::kSha1);
  CHECK(LookupHex(*p, "/boot/grub2/i386-pc/tr.mod", HashAlg::kSha1,
                  "e295d64734757d946dbbf294d72edf62a36ab157") ==
        DigestMatch::kMatch);
  CHECK(LookupHex(*p, "/boot/grub2/i386-pc/tr.mod", HashAlg::kSha1,
                  "e295d64734757d946dbbf294d72edf62a36ab158") ==
        DigestMatch::kMismatch);
  CHECK(LookupHex(*p, "/boot/grub2/i386-pc/nope.mod", HashAlg::kSha1,
                  "e295d64734757d946dbbf294d72edf62a36ab157") ==
        DigestMatch::kNotListed);
  // "sha256:<hex>" entries only match sha256 digests.
  const char* agg =
      "4309217e9709def327c3409407f4d52907aeba46ef1b4f46529fd095f2ef9fb2";
  CHECK(LookupHex(*p, "boot_aggregate", HashAlg::kSha256, agg) ==
        DigestMatch::kMatch);
  CHECK(p->keyrings().Contains(p->HashPath(".ima")));
  for (const char* name : {"policy-sha1", "policy-sha256"}) {
    auto q = Load(DataFile(std::string("keylime/") + name));
    CHECK(q->digests().size() == 1);
    CHECK(q->digests().Contains(q->HashPath("/base_policy_data")));
  }
}

TEST_CASE("ima: excludes match at the start of the path, like Python re.match",
          "[core]") {
  auto p = Load(PolicyJson({}, {"/tmp/.*", "boot_aggregate", R"(.*\\.log)"}));
  CHECK(p->IsExcluded("/tmp/x"));
  CHECK(p->IsExcluded("boot_aggregate_and_more"));  // Prefix match.
  CHECK(p->IsExcluded("/var/log/a.log"));
  CHECK_FALSE(p->IsExcluded("/var/tmp/x"));  // Not a search.
  CHECK_FALSE(p->IsExcluded("/usr/bin/tmp"));
  auto none = Load(PolicyJson({}));
  CHECK_FALSE(none->IsExcluded("/tmp/x"));
}

TEST_CASE("ima: every schema violation is a clear error", "[core]") {
  struct Case {
    std::string json;
    const char* want;
  };
  const std::string d40(40, 'a');
  std::vector<Case> cases = {
      {"", "not valid JSON"},
      {R"({"meta": {"version": 1}} x)", "not valid JSON"},
      {R"({"meta": {"version": 1}}})", "not valid JSON"},
      {R"({"meta": {"version": 1})", "not valid JSON"},
      {R"({"meta": {"version": 1}, "excludes": [1,]})", "not valid JSON"},
      {R"({"meta": {"version": 1}, "digests": {"/a": ["x" "y"]}})",
       "not valid JSON"},
      {R"({"meta": {"version": 1}, "digests": {"/a": []},})", "not valid JSON"},
      {"{\"meta\": {\"version\": 1}, \"excludes\": [\"\xff\"]}",
       "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"meta": {"version": 2}})", "meta.version must be 1"},
      {R"({"release": 0})", "\"meta\""},
      {R"({"meta": {"version": 1}, "bogus": 1})", "unknown key 'bogus'"},
      {R"({"meta": {"version": 1}, "digests": []})", "digests"},
      {R"({"meta": {"version": 1}, "digests": {"/a": "x"}})",
       "expected a list of digests"},
      {R"({"meta": {"version": 1}, "digests": {"/a": [1]}})",
       "digests[\"/a\"][0]"},
      {R"({"meta": {"version": 1}, "digests": {"/a": ["zz"]}})",
       "digests[\"/a\"][0]"},
      {R"({"meta": {"version": 1}, "digests": {"/a": ["md5:)" + d40 + "\"]}}",
       "algorithm"},
      {R"({"meta": {"version": 1}, "digests": {"/a": [")" + d40 +
           "\"], \"/a\": [\"" + d40 + "\"]}}",
       "listed twice"},
      {R"({"meta": {"version": 1}, "excludes": ["ok", "(unclosed"]})",
       "excludes[1]: invalid regex"},
      {R"j({"meta": {"version": 1}, "excludes": ["(?!lookahead)"]})j",
       "excludes[0]"},
      {R"({"meta": {"version": 1}, "excludes": [3]})", "excludes[0]"},
      {R"({"meta": {"version": 1}, "ima": {"log_hash_alg": "md5"}})",
       "log_hash_alg"},
      {R"({"meta": {"version": 1}, "ima": {"dm_policy": {}}})", "dm_policy"},
      {R"({"meta": {"version": 1}, "ima": {"nope": 1}})", "ima: unknown key"},
      {R"({"meta": {"version": 1}, "ima": {"ignored_keyrings": "x"}})",
       "ignored_keyrings"},
      {R"({"meta": {"version": 1}, "release": "x"})", "release"},
      {R"({"meta": {"version": 1}, "verification-keys": 5})",
       "verification-keys"},
      {R"({"meta": {"version": 1}, "verification-keys": "{\"r\": 1}"})",
       "verification-keys"},
      {R"({"meta": {"version": 1}, "meta": {"version": 1}})", "twice"},
      {R"({"meta": {"version": 1}, "reject": []})", "reject: expected"},
      {R"({"meta": {"version": 1}, "reject": {"digests": "x"}})",
       "reject.digests"},
      {R"({"meta": {"version": 1}, "reject": {"digests": ["zz"]}})",
       "reject.digests[0]"},
      {R"({"meta": {"version": 1}, "reject": {"paths": [1]}})",
       "reject.paths[0]"},
      {R"({"meta": {"version": 1}, "reject": {"files": []}})",
       "reject: unknown key 'files'"},
  };
  for (const Case& c : cases) {
    INFO(c.json);
    absl::Status s = LoadError(c.json);
    REQUIRE(absl::IsInvalidArgument(s));
    CHECK(absl::StrContains(s.message(), c.want));
  }
}

TEST_CASE(
    "ima: paths and digests read in place or unescaped mean the same, "
    "padded or not",
    "[core]") {
  const std::string d40(40, 'a');
  // Python's json.dumps (Keylime's tools) escapes every non-ASCII character;
  // a digest may be escaped too, a path may hold an escaped quote.
  const std::string escaped = R"({"meta": {"version": 1}, "digests": {
      "/usr/bin/caf\u00e9": ["\u0061)" +
                              d40.substr(1) + R"("],
      "/opt/a\"b": ["sha1:)" + d40 +
                              R"("],
      "/opt/tab\tname": [")" + d40 +
                              R"("],
      "/plain": [")" + d40 + R"("]}})";
  std::string padded = escaped + std::string(64, '\0');
  PolicyLoadOptions in_place;
  in_place.readable_padding = 64;
  auto copied = Load(escaped);
  auto mapped = RuntimePolicy::FromJson(
      absl::string_view(padded.data(), escaped.size()), in_place);
  REQUIRE(mapped.ok());
  for (const RuntimePolicy* p : {copied.get(), mapped->get()}) {
    CHECK(p->digests().size() == 4);
    for (const char* path :
         {"/usr/bin/caf\xc3\xa9", "/opt/a\"b", "/opt/tab\tname", "/plain"}) {
      INFO(path);
      CHECK(LookupHex(*p, path, HashAlg::kSha1, d40) == DigestMatch::kMatch);
    }
    CHECK(LookupHex(*p, "/opt/a\\\"b", HashAlg::kSha1, d40) ==
          DigestMatch::kNotListed);
  }
  // Syntax errors are reported as such even where a value before them would
  // fail first, in place or copied.
  for (const std::string& bad :
       {std::string(R"({"meta": {"version": 1}, "digests": {"/a": ["zz" 1]}})"),
        std::string(R"({"meta": {"version": 1}, "digests": {"/a": [1 "x"]}})"),
        std::string(R"({"digests": {"/a": ["x"]}, "meta": {"version": 1}} {})"),
        std::string(R"({"meta": {"version": 1}, "digests": {"/\q": []}})"),
        std::string(R"({"meta": {"version": 1}, "release": tru})"),
        std::string(R"({"meta": {"version": 1}, "release": 01})")}) {
    INFO(bad);
    absl::Status s = LoadError(bad);
    CHECK(absl::StrContains(s.message(), "not valid JSON"));
    std::string pad = bad + std::string(64, ' ');
    absl::Status t = RuntimePolicy::FromJson(
                         absl::string_view(pad.data(), bad.size()), in_place)
                         .status();
    CHECK(absl::StrContains(t.message(), "not valid JSON"));
  }
}

TEST_CASE("ima: Digester agrees with OpenSSL's EVP_Digest at every split",
          "[core]") {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (HashAlg alg :
       {HashAlg::kSha1, HashAlg::kSha256, HashAlg::kSha384, HashAlg::kSha512}) {
    const EVP_MD* md = alg == HashAlg::kSha1     ? EVP_sha1()
                       : alg == HashAlg::kSha256 ? EVP_sha256()
                       : alg == HashAlg::kSha384 ? EVP_sha384()
                                                 : EVP_sha512();
    Digester d(alg);
    // Every length around the block and padding boundaries, split anywhere.
    for (size_t len = 0; len <= 300; ++len) {
      uint8_t want[64];
      unsigned int want_len = 0;
      REQUIRE(EVP_Digest(p, len, want, &want_len, md, nullptr) == 1);
      REQUIRE(want_len == d.size());
      for (size_t split : {size_t{0}, len / 3, len / 2, len}) {
        uint8_t got[64] = {};
        REQUIRE(d.Digest2(p, split, p + split, len - split, got));
        INFO("alg " << HashAlgName(alg) << " length " << len << " split "
                    << split);
        CHECK(std::memcmp(got, want, want_len) == 0);
      }
    }
    uint8_t empty[64] = {};
    uint8_t want[64];
    REQUIRE(EVP_Digest("", 0, want, nullptr, md, nullptr) == 1);
    REQUIRE(d.Digest(absl::string_view(), empty));
    CHECK(std::memcmp(empty, want, d.size()) == 0);
  }
}

TEST_CASE("ima: SipHash-1-3-128 agrees with OpenSSL's SIPHASH MAC", "[core]") {
  PathHashKey key;
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  REQUIRE(mac != nullptr);
  for (size_t len = 0; len < 70; ++len) {
    std::string msg;
    for (size_t i = 0; i < len; ++i) msg.push_back(static_cast<char>(i));
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    size_t size = 16;
    unsigned int c_rounds = 1;
    unsigned int d_rounds = 3;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
        OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &c_rounds),
        OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &d_rounds),
        OSSL_PARAM_construct_end()};
    REQUIRE(EVP_MAC_init(ctx, key.data(), key.size(), params) == 1);
    REQUIRE(EVP_MAC_update(ctx, reinterpret_cast<const uint8_t*>(msg.data()),
                           msg.size()) == 1);
    uint8_t out[16];
    size_t out_len = 0;
    REQUIRE(EVP_MAC_final(ctx, out, &out_len, sizeof out) == 1);
    EVP_MAC_CTX_free(ctx);
    PathHash h = SipHash128(key, msg);
    uint64_t h0 = 0;
    uint64_t h1 = 0;
    for (int i = 7; i >= 0; --i) {
      h0 = (h0 << 8) | out[i];
      h1 = (h1 << 8) | out[8 + i];
    }
    INFO("length " << len);
    CHECK(h.h0 == h0);
    CHECK(h.h1 == h1);
  }
  EVP_MAC_free(mac);
}

TEST_CASE("ima: the path table stays under 100 bytes per SHA-256 entry",
          "[core]") {
  std::string json = R"({"meta": {"version": 1}, "digests": {)";
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&json, i ? "," : "", "\"/usr/lib/file-", i, "\": [\"",
                    HexEncode(testing::FileDigest(i)), "\"]");
  }
  json += "}}";
  PolicyLoadOptions o;
  o.path_hash_key[0] = 42;
  auto p = RuntimePolicy::FromJson(json, o);
  REQUIRE(p.ok());
  CHECK((*p)->digests().size() == n);
  CHECK((*p)->MemoryBytes() / n <= 100);
  for (int i = 0; i < n; i += 997) {
    Bytes d = testing::FileDigest(i);
    CHECK((*p)->digests().Lookup(
              (*p)->HashPath(absl::StrCat("/usr/lib/file-", i)),
              HashAlg::kSha256, d.data(), d.size()) == DigestMatch::kMatch);
  }
  o.max_digest_entries = 10;
  CHECK(absl::StrContains(RuntimePolicy::FromJson(json, o).status().message(),
                          "more than 10 paths"));
}

TEST_CASE("ima: a legacy allowlist converts to a policy Keylime's way",
          "[core]") {
  auto draft = ConvertAllowlist(DataFile("keylime/allowlist-sha256"),
                                "# comment\n/tmp/.*\n\n");
  REQUIRE(draft.ok());
  REQUIRE(draft->digests.count("data") == 1);
  CHECK(draft->digests["data"][0] ==
        "96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754");
  CHECK(draft->excludes == std::vector<std::string>{"/tmp/.*"});
  auto json = WriteRuntimePolicy(*draft);
  REQUIRE(json.ok());
  auto p = Load(*json);
  CHECK(p->digests().Contains(p->HashPath("data")));
  CHECK(p->IsExcluded("/tmp/a"));

  auto spaces = ConvertAllowlist(std::string(64, 'a') + "  /a b\n", "");
  REQUIRE(spaces.ok());
  CHECK(spaces->digests.count("/a_b") == 1);
  CHECK(absl::StrContains(ConvertAllowlist("zz /a\n", "").status().message(),
                          "line 1"));
  CHECK(absl::StrContains(
      ConvertAllowlist(std::string(64, 'a') + "\n", "").status().message(),
      "line 1"));
  CHECK(absl::StrContains(ConvertAllowlist("", "ok\n(bad\n").status().message(),
                          "line 2"));
  PolicyDraft bad;
  bad.digests["/\xff"] = {std::string(40, 'a')};
  CHECK(absl::IsInvalidArgument(WriteRuntimePolicy(bad).status()));
}

TEST_CASE("ima: DSSE-signed policies: Keylime's good and bad signatures",
          "[core]") {
  std::string key = DataFile("keylime/runtime-policy-pubkey.pub");
  std::string good = DataFile("keylime/runtime-policy-test-signed.json");
  std::string bad = DataFile("keylime/runtime-policy-test-signed-bad.json");
  CHECK(IsDsseEnvelope(good));
  CHECK_FALSE(IsDsseEnvelope(DataFile("keylime/runtime-policy-test.json")));
  auto v = VerifyDsseEnvelope(good, key);
  REQUIRE(v.ok());
  CHECK(v->valid);
  CHECK(v->payload_type == "application/vnd.keylime+json");
  auto p = Load(v->payload);
  CHECK(p->digests().size() == 21);

  auto b = VerifyDsseEnvelope(bad, key);
  REQUIRE(b.ok());
  CHECK_FALSE(b->valid);

  // A payload changed after signing.
  std::string tampered = good;
  size_t at = tampered.find("\"payload\": \"") + 20;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  auto t = VerifyDsseEnvelope(tampered, key);
  REQUIRE(t.ok());
  CHECK_FALSE(t->valid);

  // Another key.
  auto other = VerifyDsseEnvelope(good, DataFile("keylime/rsa2048pub.pem"));
  REQUIRE(other.ok());
  CHECK_FALSE(other->valid);

  CHECK(absl::IsInvalidArgument(VerifyDsseEnvelope("{}", key).status()));
  CHECK(absl::IsInvalidArgument(VerifyDsseEnvelope(good, "junk").status()));
  CHECK(DssePae("t", "body") == "DSSEv1 1 t 4 body");
}

}  // namespace
}  // namespace vouch::core::ima
