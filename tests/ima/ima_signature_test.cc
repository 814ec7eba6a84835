// ima-sig signatures made here with OpenSSL (RSA and ECDSA), ima-buf
// keyrings, and DSSE policies signed by an X.509 certificate's key.
#include "core/ima/ima_signature.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/openssl_handle.h"
#include "core/ima/dsse.h"
#include "core/ima/ima_evaluator.h"
#include "ima_test_util.h"

namespace vouch::core::ima {
namespace {

using testing::CertDer;
using testing::FileDigest;
using testing::ImaSign;
using testing::KeyringEntry;
using testing::NewKey;
using testing::Ng;
using testing::SignedEntry;
using testing::WriteLog;

std::string SpkiBase64(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  std::string out =
      absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  return out;
}

// Keylime's form: "verification-keys" holds a JSON string of
// {"<keyring>": "<JSON string of {\"pubkeys\": [...]}>"}.
std::string KeysJson(const std::vector<EVP_PKEY*>& keys) {
  nlohmann::json ring;
  ring["pubkeys"] = nlohmann::json::array();
  for (EVP_PKEY* k : keys) ring["pubkeys"].push_back(SpkiBase64(k));
  nlohmann::json rings;
  rings["tenant"] = ring.dump();
  return ", \"verification-keys\": " + nlohmann::json(rings.dump()).dump();
}

TEST_CASE("ima: ima-sig: valid RSA and ECDSA signatures pass without digests",
          "[core]") {
  EvpPkeyPtr rsa = NewKey(true);
  EvpPkeyPtr ec = NewKey(false);
  EvpPkeyPtr stranger = NewKey(false);
  REQUIRE(rsa);
  REQUIRE(ec);
  uint32_t rsa_id = *ImaKeyIdV2(rsa.get());
  uint32_t ec_id = *ImaKeyIdV2(ec.get());
  uint32_t stranger_id = *ImaKeyIdV2(stranger.get());

  std::vector<ImaRecord> records;
  auto add = [&](const std::string& path, int n, std::string sig) {
    records.push_back(SignedEntry(path, n, std::move(sig)));
  };
  add("/rsa", 1, ImaSign(rsa.get(), FileDigest(1), 4, rsa_id));
  add("/ec", 2, ImaSign(ec.get(), FileDigest(2), 4, ec_id));
  std::string wrong = ImaSign(ec.get(), FileDigest(99), 4, ec_id);
  add("/forged", 3, wrong);  // 2
  add("/stranger", 4, ImaSign(stranger.get(), FileDigest(4), 4, stranger_id));
  add("/badhdr", 5, "\x03\x02");  // 4
  add("/unsigned", 6, "");        // 5
  add("/listed", 7, wrong);       // Bad signature, but the digest is allowed.
  add("/alg", 8, ImaSign(ec.get(), FileDigest(8), 2, ec_id));  // 7

  std::string policy_json =
      testing::PolicyJson({{"/listed", {HexEncode(FileDigest(7))}}}, {},
                          KeysJson({rsa.get(), ec.get()}));
  auto policy = RuntimePolicy::FromJson(policy_json);
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  REQUIRE((*policy)->verification_keys().size() == 2);
  CHECK((*policy)->verification_keys()[0].key_id == rsa_id);

  for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
    auto r =
        EvaluateImaLog({}, WriteLog(records, f), std::nullopt, policy->get());
    REQUIRE(r.ok());
    std::vector<std::pair<uint64_t, Rule>> got;
    for (const ImaFailure& fl : r->failures) {
      got.push_back({fl.index, fl.reason});
      INFO(fl.detail);
    }
    CHECK(got ==
          std::vector<std::pair<uint64_t, Rule>>{{2, Rule::kImaBadSignature},
                                                 {3, Rule::kImaBadSignature},
                                                 {4, Rule::kImaBadSignature},
                                                 {5, Rule::kImaNotInPolicy},
                                                 {7, Rule::kImaBadSignature}});
    CHECK(absl::StrContains(r->failures[1].detail, "no verification key"));
  }
  // Without verification keys a signed entry is judged by its digest alone.
  auto no_keys = RuntimePolicy::FromJson(
      testing::PolicyJson({{"/listed", {HexEncode(FileDigest(7))}}}));
  REQUIRE(no_keys.ok());
  auto r = EvaluateImaLog({}, WriteLog(records, LogFormat::kAscii),
                          std::nullopt, no_keys->get());
  REQUIRE(r.ok());
  CHECK(r->failure_count == 7);
  for (const ImaFailure& fl : r->failures) {
    CHECK(fl.reason == Rule::kImaNotInPolicy);
  }
}

TEST_CASE("ima: ima-sig header checks", "[core]") {
  EvpPkeyPtr ec = NewKey(false);
  std::vector<VerificationKey> keys(1);
  keys[0].key_id = *ImaKeyIdV2(ec.get());
  keys[0].key.reset(EVP_PKEY_dup(ec.get()));
  Bytes d = FileDigest(1);
  std::string sig = ImaSign(ec.get(), d, 4, keys[0].key_id);
  CHECK(VerifyImaSignature(keys, sig, HashAlg::kSha256, d.data(), d.size()) ==
        SignatureCheck::kValid);
  std::string v1 = sig;
  v1[1] = 1;
  CHECK(VerifyImaSignature(keys, v1, HashAlg::kSha256, d.data(), d.size()) ==
        SignatureCheck::kMalformed);
  CHECK(VerifyImaSignature(keys, sig.substr(0, sig.size() - 1),
                           HashAlg::kSha256, d.data(),
                           d.size()) == SignatureCheck::kMalformed);
  std::string flipped = sig;
  flipped.back() ^= 1;
  CHECK(VerifyImaSignature(keys, flipped, HashAlg::kSha256, d.data(),
                           d.size()) == SignatureCheck::kInvalid);
  Bytes d1 = FileDigest(1, HashAlg::kSha1);
  CHECK(VerifyImaSignature(keys, sig, HashAlg::kSha1, d1.data(), d1.size()) ==
        SignatureCheck::kAlgMismatch);
}

TEST_CASE(
    "ima: ima-buf keyring measurements follow keyrings and ignored_keyrings",
    "[core]") {
  EvpPkeyPtr key = NewKey(false);
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key.get(), &der);
  std::string key_der(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  Bytes key_digest = testing::Hash(HashAlg::kSha256, key_der);
  // ima-buf entries: keys added to keyrings, and plain buffers.
  auto buf = KeyringEntry;
  std::vector<ImaRecord> records = {
      buf(".ima", key_der),                   // allowed keyring digest
      buf(".evm", key_der),                   // keyring not listed
      buf(".builtin_trusted_keys", key_der),  // ignored
      buf("kexec-cmdline", "root=/dev/sda"),  // plain ima-buf, listed
      buf("other-buffer", "x"),               // plain ima-buf, not listed
  };
  std::string json =
      std::string(R"({"meta": {"version": 1},
      "keyrings": {".ima": [")") +
      HexEncode(key_digest) + R"("]},
      "ima": {"ignored_keyrings": [".builtin_trusted_keys"], "log_hash_alg": "sha1", "dm_policy": null},
      "ima-buf": {"kexec-cmdline": [")" +
      HexEncode(testing::Hash(HashAlg::kSha256, "root=/dev/sda")) + R"("]}})";
  auto policy = RuntimePolicy::FromJson(json);
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  auto r = EvaluateImaLog({}, WriteLog(records, LogFormat::kAscii),
                          std::nullopt, policy->get());
  REQUIRE(r.ok());
  std::vector<std::pair<uint64_t, Rule>> got;
  for (const ImaFailure& f : r->failures) got.push_back({f.index, f.reason});
  CHECK(got ==
        std::vector<std::pair<uint64_t, Rule>>{{1, Rule::kImaKeyringNotAllowed},
                                               {4, Rule::kImaNotInPolicy}});
  auto all = RuntimePolicy::FromJson(
      R"({"meta": {"version": 1}, "ima": {"ignored_keyrings": ["*"]}})");
  REQUIRE(all.ok());
  CHECK((*all)->IsKeyringIgnored(".anything"));
}

TEST_CASE(
    "ima: a key measured into an allowed keyring verifies the boot's "
    "later signatures",
    "[core]") {
  EvpPkeyPtr taught = NewKey(false);
  EvpPkeyPtr unlisted = NewKey(false);
  EvpPkeyPtr ignored = NewKey(true);
  // The kernel and Keylime name a certificate's key by the last 4 bytes of
  // its Subject Key Identifier: signatures below use 0x0badc0de.
  const std::string taught_cert =
      CertDer(taught.get(), std::string("\x01\x02\x03\x04\x0b\xad\xc0\xde", 8));
  const uint32_t taught_id = 0x0badc0de;
  REQUIRE(taught_id != *ImaKeyIdV2(taught.get()));
  const std::string unlisted_cert = CertDer(unlisted.get());
  const std::string ignored_der = [&] {
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(ignored.get(), &der);
    std::string out(reinterpret_cast<char*>(der), len);
    OPENSSL_free(der);
    return out;
  }();
  auto sign = [](EVP_PKEY* k, int n, uint32_t id) {
    return ImaSign(k, FileDigest(n), 4, id);
  };
  const std::vector<ImaRecord> records = {
      SignedEntry("/before", 1, sign(taught.get(), 1, taught_id)),   // 0
      KeyringEntry(".ima", taught_cert),                             // 1
      SignedEntry("/signed", 2, sign(taught.get(), 2, taught_id)),   // 2
      SignedEntry("/forged", 3, sign(taught.get(), 99, taught_id)),  // 3
      KeyringEntry(".evm", unlisted_cert),                           // 4
      SignedEntry("/unlisted-key", 5,
                  sign(unlisted.get(), 5, *ImaKeyIdV2(unlisted.get()))),  // 5
      KeyringEntry(".builtin_trusted_keys", ignored_der),                 // 6
      SignedEntry("/ignored-key", 7,
                  sign(ignored.get(), 7, *ImaKeyIdV2(ignored.get()))),  // 7
      KeyringEntry(".ima", taught_cert),  // 8: the same key again
  };
  const std::string json =
      std::string(R"({"meta": {"version": 1}, "keyrings": {".ima": [")") +
      HexEncode(testing::Hash(HashAlg::kSha256, taught_cert)) + R"("]},
      "ima": {"ignored_keyrings": [".builtin_trusted_keys"],
              "log_hash_alg": "sha1", "dm_policy": null}})";
  auto policy = RuntimePolicy::FromJson(json);
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  using Got = std::vector<std::pair<uint64_t, Rule>>;
  auto failures = [](const ImaEvaluation& r) {
    Got got;
    for (const ImaFailure& f : r.failures) got.push_back({f.index, f.reason});
    return got;
  };
  // Before the key is on a keyring there is no key at all, so /before is
  // judged by its digest; after it, only the taught key's good signature
  // passes.
  const Got expected = {{0, Rule::kImaNotInPolicy},
                        {3, Rule::kImaBadSignature},
                        {4, Rule::kImaKeyringNotAllowed},
                        {5, Rule::kImaBadSignature},
                        {7, Rule::kImaBadSignature}};

  SECTION("one pass over the whole log") {
    for (LogFormat f : {LogFormat::kAscii, LogFormat::kBinary}) {
      auto r =
          EvaluateImaLog({}, WriteLog(records, f), std::nullopt, policy->get());
      REQUIRE(r.ok());
      CHECK(failures(*r) == expected);
      CHECK(absl::StrContains(r->failures[1].detail, "does not verify"));
      CHECK(absl::StrContains(r->failures[3].detail, "no verification key"));
      REQUIRE(r->state.learned_keys.size() == 1);  // Learned once.
      CHECK(r->state.learned_keys[0].key_id == taught_id);
    }
  }

  SECTION("the key travels in the replay state to the next round") {
    std::vector<ImaRecord> first(records.begin(), records.begin() + 2);
    std::vector<ImaRecord> rest(records.begin() + 2, records.end());
    auto r1 = EvaluateImaLog({}, WriteLog(first, LogFormat::kAscii),
                             std::nullopt, policy->get());
    REQUIRE(r1.ok());
    CHECK(failures(*r1) == Got{{0, Rule::kImaNotInPolicy}});
    REQUIRE(r1->state.learned_keys.size() == 1);
    // Stored and read back as the verifier does between rounds.
    ImaReplayState stored = r1->state;
    auto decoded = DecodeLearnedKeys(EncodeLearnedKeys(r1->state.learned_keys));
    REQUIRE(decoded.ok());
    stored.learned_keys = *decoded;
    CHECK(stored == r1->state);
    auto r2 = EvaluateImaLog(stored, WriteLog(rest, LogFormat::kAscii),
                             std::nullopt, policy->get());
    REQUIRE(r2.ok());
    Got tail(expected.begin() + 1, expected.end());
    CHECK(failures(*r2) == tail);
    // Without the stored keys the same round fails the signed file.
    ImaReplayState forgot = r1->state;
    forgot.learned_keys.clear();
    auto r3 = EvaluateImaLog(forgot, WriteLog(rest, LogFormat::kAscii),
                             std::nullopt, policy->get());
    REQUIRE(r3.ok());
    REQUIRE(!r3->failures.empty());
    CHECK(r3->failures[0].index == 2);
  }

  SECTION("a key on the reject list's path is not learned") {
    const std::string rejecting =
        json.substr(0, json.size() - 1) + R"(, "reject": {"paths": [".ima"]}})";
    auto p = RuntimePolicy::FromJson(rejecting);
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    auto r = EvaluateImaLog({}, WriteLog(records, LogFormat::kAscii),
                            std::nullopt, p->get());
    REQUIRE(r.ok());
    CHECK(r->state.learned_keys.empty());
    CHECK(failures(*r)[1] == std::pair<uint64_t, Rule>{1, Rule::kImaRejected});
  }
}

TEST_CASE("ima: learned keys are capped and stored in a checked form",
          "[core]") {
  std::vector<ImaRecord> records;
  std::string keyrings;
  for (size_t i = 0; i <= kMaxLearnedKeys; ++i) {
    EvpPkeyPtr k = NewKey(false);
    std::string cert = CertDer(k.get());
    records.push_back(KeyringEntry(".ima", cert));
    absl::StrAppend(&keyrings, i ? ", \"" : "\"",
                    HexEncode(testing::Hash(HashAlg::kSha256, cert)), "\"");
  }
  auto policy = RuntimePolicy::FromJson(
      R"({"meta": {"version": 1}, "keyrings": {".ima": [)" + keyrings + "]}}");
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  auto r = EvaluateImaLog({}, WriteLog(records, LogFormat::kAscii),
                          std::nullopt, policy->get());
  REQUIRE(r.ok());
  REQUIRE(r->failures.size() == 1);
  CHECK(r->failures[0].index == kMaxLearnedKeys);
  CHECK(r->failures[0].reason == Rule::kImaKeyringNotAllowed);
  REQUIRE(r->state.learned_keys.size() == kMaxLearnedKeys);

  const std::string stored = EncodeLearnedKeys(r->state.learned_keys);
  auto back = DecodeLearnedKeys(stored);
  REQUIRE(back.ok());
  CHECK(*back == r->state.learned_keys);
  CHECK(DecodeLearnedKeys("")->empty());
  // Damaged rows are refused, not half-read.
  CHECK(!DecodeLearnedKeys(stored.substr(0, stored.size() - 1)).ok());
  CHECK(!DecodeLearnedKeys(stored + stored.substr(0, 10)).ok());  // 65th
  CHECK(!DecodeLearnedKeys(std::string("\0\0\0\1\0\3abc", 9)).ok());
  CHECK(!DecodeLearnedKeys(std::string("\0\0\0\1\0\0", 6)).ok());
  // A buffer that is not a whole key is no key.
  const std::string one = r->state.learned_keys[0].spki;
  CHECK(ParseKeyringBuffer(one).key.has_value());
  CHECK_FALSE(ParseKeyringBuffer(one + "x").is_key);
  CHECK_FALSE(ParseKeyringBuffer("root=/dev/sda").is_key);
}

TEST_CASE("ima: DSSE policy signed with an X.509 certificate's EC key",
          "[core]") {
  EvpPkeyPtr key = NewKey(false);
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("signer"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert.get());
  char* pem_data = nullptr;
  long pem_len = BIO_get_mem_data(bio.get(), &pem_data);
  std::string pem(pem_data, pem_len);

  std::string payload = R"({"meta": {"version": 1}})";
  std::string type = "application/vnd.keylime+json";
  std::string pae = DssePae(type, payload);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                             key.get()) == 1);
  size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len,
                         reinterpret_cast<const unsigned char*>(pae.data()),
                         pae.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(),
                         reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(pae.data()),
                         pae.size()) == 1);
  sig.resize(len);
  std::string envelope = R"({"payload": ")" + absl::Base64Escape(payload) +
                         R"(", "payloadType": ")" + type +
                         R"(", "signatures": [{"keyid": "x", "sig": ")" +
                         absl::Base64Escape(sig) + R"("}]})";
  auto v = VerifyDsseEnvelope(envelope, pem);
  REQUIRE(v.ok());
  CHECK(v->valid);
  CHECK(v->payload == payload);
  std::string other_type =
      absl::StrReplaceAll(envelope, {{"keylime+json", "x"}});
  auto w = VerifyDsseEnvelope(other_type, pem);
  REQUIRE(w.ok());
  CHECK_FALSE(w->valid);  // The type is signed too.
}

}  // namespace
}  // namespace vouch::core::ima
