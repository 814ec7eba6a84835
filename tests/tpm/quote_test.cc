// [core] tests of quote verification, AIK admission and the tpm2-tools
// formats, on golden files that tpm2-tools wrote on swtpm (data/README.md).
#include "core/tpm/quote.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/rule.h"
#include "core/tpm/pcr_file.h"
#include "core/tpm/tpm_wire.h"
#include "test_util.h"

namespace vouch::core::tpm {
namespace {

using tpmtest::Flip;
using tpmtest::ReadGolden;

using RuleList = std::vector<Rule>;

RuleList Rules(const Verdict& v) {
  RuleList rules;
  for (const Failure& f : v.failures()) rules.push_back(f.rule);
  return rules;
}

struct Golden {
  std::unique_ptr<AikVerifier> aik;
  Bytes msg, sig, nonce;
  Tpm2ToolsPcrs pcrs;
  QuotePolicy policy;
};

Golden Load(const std::string& kind) {
  Golden g;
  auto aik = AikVerifier::Create(ReadGolden("tpm2-tools/ak-" + kind + ".pub"));
  REQUIRE(aik.ok());
  g.aik = *std::move(aik);
  g.msg = ReadGolden("tpm2-tools/quote-" + kind + ".msg");
  g.sig = ReadGolden("tpm2-tools/quote-" + kind + ".sig");
  auto pcrs =
      ParseTpm2ToolsPcrs(ReadGolden("tpm2-tools/quote-" + kind + ".pcrs"));
  REQUIRE(pcrs.ok());
  g.pcrs = *std::move(pcrs);
  g.nonce = *HexDecode(kind == "rsa" ? "0102030405060708" : "0a0b0c0d0e0f1011");
  if (kind == "rsa") g.policy.allowed_hash_algs.push_back(TPM2_ALG_SHA1);
  return g;
}

Verdict Check(const Golden& g, ByteSpan msg, ByteSpan sig, ByteSpan nonce,
              const PcrValues& pcrs, const QuotePolicy& policy,
              std::optional<ClockInfo> previous = std::nullopt) {
  QuoteEvidence ev{msg, sig, nonce, &pcrs, previous};
  auto r = g.aik->VerifyQuote(ev, policy);
  REQUIRE(r.ok());
  return r->verdict;
}

TEST_CASE("golden tpm2-tools quotes verify (RSA and ECDSA)", "[core]") {
  for (const std::string kind : {"rsa", "ecc"}) {
    INFO(kind);
    Golden g = Load(kind);
    Verdict v = Check(g, g.msg, g.sig, g.nonce, g.pcrs.values, g.policy);
    CHECK(Rules(v) == RuleList{});
    CHECK(v.passed());
    CHECK(g.aik->admission().passed());
    CHECK(g.aik->name() == ReadGolden("tpm2-tools/ak-" + kind + ".name"));
  }
}

TEST_CASE("quote rules each fail on their own", "[core]") {
  Golden g = Load("rsa");
  const PcrValues& pcrs = g.pcrs.values;
  SECTION("one flipped bit in the signature") {
    CHECK(Rules(Check(g, g.msg, Flip(g.sig, g.sig.size() - 1), g.nonce, pcrs,
                      g.policy)) == RuleList{Rule::kQuoteSignature});
  }
  SECTION("one flipped bit in the message (firmwareVersion)") {
    CHECK(Rules(Check(g, Flip(g.msg, g.msg.size() - 70), g.sig, g.nonce, pcrs,
                      g.policy)) == RuleList{Rule::kQuoteSignature});
  }
  SECTION("one flipped bit in the nonce") {
    CHECK(Rules(Check(g, g.msg, g.sig, Flip(g.nonce, 3), pcrs, g.policy)) ==
          RuleList{Rule::kQuoteNonce});
  }
  SECTION("no nonce issued") {
    CHECK(Rules(Check(g, g.msg, g.sig, {}, pcrs, g.policy)) ==
          RuleList{Rule::kQuoteNonce});
  }
  SECTION("a PCR value differs") {
    PcrValues other = pcrs;
    other[TPM2_ALG_SHA256][16][0] ^= 1;
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, other, g.policy)) ==
          RuleList{Rule::kQuotePcrDigest});
  }
  SECTION("a quoted PCR is not reported") {
    PcrValues other = pcrs;
    other[TPM2_ALG_SHA256].erase(16);
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, other, g.policy)) ==
          RuleList{Rule::kQuotePcrValues});
  }
  SECTION("a reported PCR is not quoted") {
    PcrValues other = pcrs;
    other[TPM2_ALG_SHA256][7] = Bytes(32, 0);
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, other, g.policy)) ==
          RuleList{Rule::kQuotePcrValues});
  }
  SECTION("a SHA-1 bank when the policy allows only SHA-256") {
    QuotePolicy strict;  // Default: sha256, sha384.
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, strict)) ==
          RuleList{Rule::kQuotePcrBank});
  }
  SECTION("the signature hash must be allowed") {
    QuotePolicy sha1_only;
    sha1_only.allowed_hash_algs = {TPM2_ALG_SHA1};
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, sha1_only)) ==
          RuleList{Rule::kQuoteSignatureAlg, Rule::kQuotePcrBank});
  }
  SECTION("a PCR asked for but not quoted") {
    QuotePolicy want = g.policy;
    auto sel = ParsePcrSelectionText("sha256:0,1,7");
    REQUIRE(sel.ok());
    want.required_selection = *sel;
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, want)) ==
          RuleList{Rule::kQuotePcrSelection});
    want.required_selection = *ParsePcrSelectionText("sha256:0,16+sha1:2");
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, want)) == RuleList{});
  }
  SECTION("clock rules against the previous accepted quote") {
    auto attest = ParseAttest(g.msg);
    REQUIRE(attest.ok());
    const TPMS_CLOCK_INFO& c = attest->clockInfo;
    ClockInfo prev{c.clock - 1, c.resetCount, c.restartCount, true};
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, g.policy, prev)) ==
          RuleList{});
    prev.clock = c.clock;  // Not advancing is going back.
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, g.policy, prev)) ==
          RuleList{Rule::kQuoteClockClock});
    prev = {c.clock + 1000, c.resetCount + 1, c.restartCount, true};
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, g.policy, prev)) ==
          RuleList{Rule::kQuoteClockResetCount});
    prev = {c.clock - 1, c.resetCount, c.restartCount + 1, true};
    CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, g.policy, prev)) ==
          RuleList{Rule::kQuoteClockRestartCount});
    // A new boot (higher resetCount now) may show any clock.
    if (c.resetCount > 0) {
      prev = {c.clock + 1000, c.resetCount - 1, c.restartCount + 5, true};
      CHECK(Rules(Check(g, g.msg, g.sig, g.nonce, pcrs, g.policy, prev)) ==
            RuleList{});
    }
  }
  SECTION("clock safe flag") {
    Verdict v;
    CheckClock({10, 0, 0, false}, std::nullopt, v);
    CHECK(Rules(v) == RuleList{Rule::kQuoteClockSafe});
  }
}

TEST_CASE("one AikVerifier serves several threads at once", "[core]") {
  Golden g = Load("ecc");
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        QuoteEvidence ev{g.msg, g.sig, g.nonce, &g.pcrs.values, std::nullopt};
        auto r = g.aik->VerifyQuote(ev, g.policy);
        if (r.ok() && r->verdict.passed()) ++passed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(passed == 200);
}

TEST_CASE("a quote by another AIK fails the signature", "[core]") {
  Golden rsa = Load("rsa");
  Golden ecc = Load("ecc");
  // The ECC AIK cannot check an RSA signature at all.
  Verdict v =
      Check(ecc, rsa.msg, rsa.sig, rsa.nonce, rsa.pcrs.values, rsa.policy);
  CHECK(Rules(v) == RuleList{Rule::kQuoteSignatureAlg});
}

TEST_CASE("a PEM AIK verifies quotes but is never admitted", "[core]") {
  Golden g = Load("rsa");
  const Bytes pem_bytes = ReadGolden("tpm2-tools/ak-rsa.pem");
  auto pem = AikVerifier::FromPem(std::string(AsString(pem_bytes)));
  REQUIRE(pem.ok());
  QuoteEvidence ev{g.msg, g.sig, g.nonce, &g.pcrs.values, std::nullopt};
  auto r = (*pem)->VerifyQuote(ev, g.policy);
  REQUIRE(r.ok());
  CHECK(r->verdict.passed());
  CHECK(Rules((*pem)->admission()) == RuleList{Rule::kAikAttributes});
  CHECK_FALSE((*pem)->admission().passed());
}

TEST_CASE("AIK admission refuses weak attributes", "[core]") {
  auto area = ParsePublic(ReadGolden("tpm2-tools/ak-rsa.pub"));
  REQUIRE(area.ok());
  TPMT_PUBLIC p = area->public_area;
  CHECK(CheckAikAttributes(p).passed());
  TPMT_PUBLIC weak = p;
  weak.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
  CHECK(Rules(CheckAikAttributes(weak)) == RuleList{Rule::kAikFixedTpm});
  weak = p;
  weak.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
  weak.objectAttributes |= TPMA_OBJECT_DECRYPT;
  CHECK(Rules(CheckAikAttributes(weak)) ==
        RuleList{Rule::kAikRestricted, Rule::kAikDecrypt});
  weak = p;
  weak.objectAttributes &=
      ~(TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN);
  CHECK(Rules(CheckAikAttributes(weak)) ==
        RuleList{Rule::kAikFixedParent, Rule::kAikSensitiveDataOrigin});
  weak = p;
  weak.nameAlg = TPM2_ALG_SHA1;
  weak.parameters.rsaDetail.keyBits = 1024;
  CHECK(Rules(CheckAikAttributes(weak)) ==
        RuleList{Rule::kAikNameAlg, Rule::kAikAlgorithm});
}

TEST_CASE("malformed TPM structures are kInvalidArgument", "[core]") {
  const Bytes msg = ReadGolden("tpm2-tools/quote-rsa.msg");
  const Bytes sig = ReadGolden("tpm2-tools/quote-rsa.sig");
  const Bytes pub = ReadGolden("tpm2-tools/ak-rsa.pub");
  CHECK(ParseAttest(msg).ok());
  CHECK(ParseAttest(ByteSpan(msg).subspan(0, msg.size() - 1)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  Bytes longer = msg;
  longer.push_back(0);
  CHECK(ParseAttest(longer).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // The TPM2B_ATTEST form is accepted too.
  Bytes tpm2b{static_cast<uint8_t>(msg.size() >> 8),
              static_cast<uint8_t>(msg.size())};
  tpm2b.insert(tpm2b.end(), msg.begin(), msg.end());
  CHECK(ParseAttest(tpm2b).ok());
  CHECK_FALSE(ParseSignature(ByteSpan(sig).subspan(0, 10)).ok());
  CHECK_FALSE(ParsePublic(ByteSpan(pub).subspan(0, pub.size() - 1)).ok());
  CHECK_FALSE(ParsePublic(Bytes(5000, 0)).ok());
  CHECK_FALSE(AikVerifier::Create(Bytes{0x00}).ok());
  CHECK_FALSE(AikVerifier::FromPem("not a key").ok());
  // Quote bytes that do not parse cannot be evaluated.
  Golden g = Load("rsa");
  QuoteEvidence ev{ByteSpan(msg).subspan(0, 20), sig, g.nonce, &g.pcrs.values,
                   std::nullopt};
  CHECK(g.aik->VerifyQuote(ev, g.policy).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a TPMS_ATTEST of another type is refused", "[core]") {
  Golden g = Load("rsa");
  Bytes msg = g.msg;
  msg[4] = 0x80;
  msg[5] = 0x17;  // TPM_ST_ATTEST_CERTIFY; the signature breaks too.
  auto r = g.aik->VerifyQuote(
      QuoteEvidence{msg, g.sig, g.nonce, &g.pcrs.values, std::nullopt},
      g.policy);
  // A certify body is parsed by its own union arm; either it parses (and
  // fails type + signature) or it is malformed: never a pass.
  if (r.ok()) {
    const RuleList rules = Rules(r->verdict);
    CHECK(std::find(rules.begin(), rules.end(), Rule::kQuoteType) !=
          rules.end());
    CHECK_FALSE(r->verdict.passed());
  }
}

TEST_CASE("tpm2-tools PCR files", "[core]") {
  const Bytes file = ReadGolden("tpm2-tools/quote-rsa.pcrs");
  auto pcrs = ParseTpm2ToolsPcrs(file);
  REQUIRE(pcrs.ok());
  CHECK(pcrs->selection.count == 2);
  CHECK(pcrs->values.at(TPM2_ALG_SHA256).size() == 3);
  CHECK(pcrs->values.at(TPM2_ALG_SHA1).size() == 1);
  CHECK(pcrs->values.at(TPM2_ALG_SHA1).count(2) == 1);
  CHECK_FALSE(ParseTpm2ToolsPcrs(ByteSpan(file).subspan(0, 100)).ok());
  Bytes bad = file;
  bad[0] = 99;  // 99 banks.
  CHECK_FALSE(ParseTpm2ToolsPcrs(bad).ok());
  bad = file;
  bad[132] = 0;  // Zero digest lists.
  CHECK_FALSE(ParseTpm2ToolsPcrs(bad).ok());
  bad = file;
  bad[136] = 9;  // A digest list of 9.
  CHECK_FALSE(ParseTpm2ToolsPcrs(bad).ok());
  // The values layout takes the selection from elsewhere.
  Bytes values(32 * 3 + 20, 0);
  auto v = ParsePcrValuesForSelection(values, pcrs->selection);
  REQUIRE(v.ok());
  CHECK(v->at(TPM2_ALG_SHA256).size() == 3);
  CHECK(v->at(TPM2_ALG_SHA1).at(2) == Bytes(20, 0));
  values.push_back(0);
  CHECK_FALSE(ParsePcrValuesForSelection(values, pcrs->selection).ok());
}

TEST_CASE("PCR selection text", "[core]") {
  auto sel = ParsePcrSelectionText("sha256:0,1,16+sha1:2");
  REQUIRE(sel.ok());
  CHECK(sel->count == 2);
  CHECK(sel->pcrSelections[0].hash == TPM2_ALG_SHA256);
  CHECK(sel->pcrSelections[0].pcrSelect[0] == 0x03);
  CHECK(sel->pcrSelections[0].pcrSelect[2] == 0x01);
  CHECK(sel->pcrSelections[1].pcrSelect[0] == 0x04);
  CHECK(SelectionText(*sel) == "sha256:0,1,16+sha1:2");
  for (const char* bad : {"", "sha256", "sha256:", "md5:1", "sha256:24",
                          "sha256:x", "sha256:1,,2", "sha1:1+sha1:2"}) {
    INFO(bad);
    CHECK_FALSE(ParsePcrSelectionText(bad).ok());
  }
}

}  // namespace
}  // namespace vouch::core::tpm
