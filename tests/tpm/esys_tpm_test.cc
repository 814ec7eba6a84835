// [tpm] round trips on a real swtpm: EsysTpm quotes and core verifies;
// software MakeCredential <-> TPM ActivateCredential for RSA and ECC EKs;
// swtpm's EK certificate chains to the harness CA with the EK's own key;
// transient objects left in the TPM are flushed on open;
// keys made by tpm2-tools that must be refused; `vouchctl quote verify` on
// tpm2-tools output.
#include "tpm/esys_tpm.h"

#include <openssl/rand.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/rule.h"
#include "core/tpm/credential.h"
#include "core/tpm/ek_cert.h"
#include "core/tpm/pcr_file.h"
#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"
#include "harness/process.h"
#include "harness/swtpm.h"
#include "harness/temp_dir.h"
#include "test_util.h"

namespace vouch::tpm {
namespace {

namespace ctpm = core::tpm;
using testing::RunCommand;
using testing::Swtpm;
using testing::TempDir;

// The negative tests make the TPM refuse on purpose; keep tpm2-tss from
// logging each refusal (TSS2_LOG set by the caller wins).
[[maybe_unused]] const bool kQuietEsys = [] {
  setenv("TSS2_LOG", "all+NONE", /*overwrite=*/0);
  return true;
}();

using core::Rule;
using RuleList = std::vector<Rule>;

RuleList Rules(const core::Verdict& v) {
  RuleList rules;
  for (const core::Failure& f : v.failures()) rules.push_back(f.rule);
  return rules;
}

std::unique_ptr<Swtpm> StartSwtpm() {
  auto swtpm = Swtpm::Start();
  REQUIRE(swtpm.ok());
  return *std::move(swtpm);
}

std::unique_ptr<EsysTpm> Open(const Swtpm& swtpm) {
  auto tpm = EsysTpm::Open(swtpm.tcti());
  REQUIRE(tpm.ok());
  return *std::move(tpm);
}

TPML_PCR_SELECTION Sel(const char* text) {
  auto sel = ctpm::ParsePcrSelectionText(text);
  REQUIRE(sel.ok());
  return *sel;
}

struct Quoted {
  ctpm::QuoteResult result;
  ctpm::PcrValues pcrs;
  QuoteBlob blob;
  Bytes nonce;
};

Quoted QuoteAndVerify(EsysTpm& tpm, const ctpm::AikVerifier& aik,
                      const char* selection,
                      const ctpm::QuotePolicy& policy = {},
                      std::optional<ctpm::ClockInfo> previous = {}) {
  Quoted q;
  auto nonce = tpm.GetRandom(20);
  REQUIRE(nonce.ok());
  q.nonce = *nonce;
  auto blob = tpm.Quote(q.nonce, Sel(selection));
  REQUIRE(blob.ok());
  q.blob = *blob;
  auto pcrs = tpm.PcrRead(Sel(selection));
  REQUIRE(pcrs.ok());
  q.pcrs = *pcrs;
  auto r = aik.VerifyQuote(
      {q.blob.attest, q.blob.signature, q.nonce, &q.pcrs, previous}, policy);
  REQUIRE(r.ok());
  q.result = *r;
  return q;
}

TEST_CASE("EsysTpm quotes, core verifies, the AIK outlives a restart",
          "[tpm]") {
  auto swtpm = StartSwtpm();
  auto state = TempDir::Create("aik-");
  REQUIRE(state.ok());
  auto tpm = Open(*swtpm);
  REQUIRE(tpm->LoadEk(EkType::kRsa2048).ok());
  CHECK(tpm->Quote(Bytes(8, 1), Sel("sha256:0")).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  auto aik_pub = tpm->LoadOrCreateAik(state->path(), AikType::kRsa2048);
  REQUIRE(aik_pub.ok());
  auto aik = ctpm::AikVerifier::Create(*aik_pub);
  REQUIRE(aik.ok());
  CHECK(Rules((*aik)->admission()) == RuleList{});
  CHECK((*aik)->admission().passed());

  REQUIRE(tpm->PcrExtend(16, TPM2_ALG_SHA256, Bytes(32, 0xab)).ok());
  Quoted first = QuoteAndVerify(*tpm, **aik, "sha256:0,1,16");
  CHECK(Rules(first.result.verdict) == RuleList{});
  CHECK(first.result.verdict.passed());
  CHECK(first.pcrs.at(TPM2_ALG_SHA256).at(16) != Bytes(32, 0));

  // The next quote is checked against the first's clock; replaying the first
  // after the second is a clock going back.
  Quoted second =
      QuoteAndVerify(*tpm, **aik, "sha256:0,1,16", {}, first.result.clock);
  CHECK(second.result.verdict.passed());
  auto replay =
      (*aik)->VerifyQuote({first.blob.attest, first.blob.signature, first.nonce,
                           &first.pcrs, second.result.clock},
                          {});
  REQUIRE(replay.ok());
  CHECK(Rules(replay->verdict) == RuleList{Rule::kQuoteClockClock});

  SECTION("PCR values that changed after the quote") {
    REQUIRE(tpm->PcrExtend(16, TPM2_ALG_SHA256, Bytes(32, 0xcd)).ok());
    auto now = tpm->PcrRead(Sel("sha256:0,1,16"));
    REQUIRE(now.ok());
    auto r = (*aik)->VerifyQuote(
        {first.blob.attest, first.blob.signature, first.nonce, &*now, {}}, {});
    REQUIRE(r.ok());
    CHECK(Rules(r->verdict) == RuleList{Rule::kQuotePcrDigest});
  }
  SECTION("a SHA-1-only quote when SHA-256 is required") {
    ctpm::QuotePolicy policy;
    policy.required_selection = Sel("sha256:0,1");
    Quoted q = QuoteAndVerify(*tpm, **aik, "sha1:0,1", policy);
    CHECK(Rules(q.result.verdict) == RuleList{Rule::kQuotePcrBank,
                                              Rule::kQuotePcrSelection,
                                              Rule::kQuotePcrSelection});
  }
  SECTION("a quote by another AIK") {
    auto other_state = TempDir::Create("aik2-");
    REQUIRE(other_state.ok());
    auto other_pub =
        tpm->LoadOrCreateAik(other_state->path(), AikType::kRsa2048);
    REQUIRE(other_pub.ok());
    CHECK(*other_pub != *aik_pub);
    auto nonce = tpm->GetRandom(16);
    REQUIRE(nonce.ok());
    auto blob = tpm->Quote(*nonce, Sel("sha256:0"));
    REQUIRE(blob.ok());
    auto pcrs = tpm->PcrRead(Sel("sha256:0"));
    REQUIRE(pcrs.ok());
    auto r = (*aik)->VerifyQuote(
        {blob->attest, blob->signature, *nonce, &*pcrs, {}}, {});
    REQUIRE(r.ok());
    CHECK(Rules(r->verdict) == RuleList{Rule::kQuoteSignature});
  }
  SECTION("ECDSA P-256 AIK") {
    auto ecc_pub = tpm->LoadOrCreateAik(state->path(), AikType::kEccP256);
    REQUIRE(ecc_pub.ok());
    auto ecc = ctpm::AikVerifier::Create(*ecc_pub);
    REQUIRE(ecc.ok());
    CHECK((*ecc)->admission().passed());
    Quoted q = QuoteAndVerify(*tpm, **ecc, "sha256:0,16");
    CHECK(Rules(q.result.verdict) == RuleList{});
    // The RSA AIK does not verify an ECDSA quote.
    auto r = (*aik)->VerifyQuote(
        {q.blob.attest, q.blob.signature, q.nonce, &q.pcrs, {}}, {});
    REQUIRE(r.ok());
    CHECK(Rules(r->verdict) == RuleList{Rule::kQuoteSignatureAlg});
  }
  SECTION("the AIK survives a restart of the agent") {
    tpm.reset();  // Flushes the EK and AIK.
    auto again = Open(*swtpm);
    REQUIRE(again->LoadEk(EkType::kRsa2048).ok());
    auto same = again->LoadOrCreateAik(state->path(), AikType::kRsa2048);
    REQUIRE(same.ok());
    CHECK(*same == *aik_pub);
    Quoted q = QuoteAndVerify(*again, **aik, "sha256:0");
    CHECK(q.result.verdict.passed());
    // A creation cut short before the public blob was saved starts over.
    REQUIRE(std::remove((state->path() + "/aik-rsa2048.pub").c_str()) == 0);
    auto fresh = again->LoadOrCreateAik(state->path(), AikType::kRsa2048);
    REQUIRE(fresh.ok());
    CHECK(*fresh != *aik_pub);
    // A public blob without its private blob is refused.
    REQUIRE(std::remove((state->path() + "/aik-rsa2048.priv").c_str()) == 0);
    CHECK(again->LoadOrCreateAik(state->path(), AikType::kRsa2048)
              .status()
              .code() == absl::StatusCode::kFailedPrecondition);
  }
}

void CredentialRoundTrip(EkType ek_type) {
  auto swtpm = StartSwtpm();
  auto state = TempDir::Create("cred-");
  REQUIRE(state.ok());
  auto tpm = Open(*swtpm);
  auto ek_pub = tpm->LoadEk(ek_type);
  REQUIRE(ek_pub.ok());
  auto ek = ctpm::ParsePublic(*ek_pub);
  REQUIRE(ek.ok());
  auto aik_pub = tpm->LoadOrCreateAik(state->path(), AikType::kRsa2048);
  REQUIRE(aik_pub.ok());
  auto aik = ctpm::AikVerifier::Create(*aik_pub);
  REQUIRE(aik.ok());

  auto make = [&](ByteSpan name, ByteSpan secret) {
    Bytes random(ctpm::CredentialRandomBytes(ek->public_area));
    REQUIRE(!random.empty());
    REQUIRE(RAND_bytes(random.data(), static_cast<int>(random.size())) == 1);
    auto c = ctpm::MakeCredential(*ek, name, secret, random);
    REQUIRE(c.ok());
    return *c;
  };
  Bytes secret(32);
  REQUIRE(RAND_bytes(secret.data(), 32) == 1);
  ctpm::Credential c = make((*aik)->name(), secret);
  auto got = tpm->ActivateCredential(c.credential_blob, c.encrypted_secret);
  REQUIRE(got.ok());
  CHECK(*got == secret);

  // Sealed to another AIK's Name: the TPM refuses (integrity check).
  Bytes other_name = (*aik)->name();
  other_name.back() ^= 1;
  ctpm::Credential wrong = make(other_name, secret);
  CHECK_FALSE(
      tpm->ActivateCredential(wrong.credential_blob, wrong.encrypted_secret)
          .ok());
  // One flipped bit in the encrypted credential.
  ctpm::Credential tampered = make((*aik)->name(), secret);
  tampered.credential_blob.back() ^= 1;
  CHECK_FALSE(tpm->ActivateCredential(tampered.credential_blob,
                                      tampered.encrypted_secret)
                  .ok());
  // And the TPM still works afterwards (no leaked transient objects).
  ctpm::Credential again = make((*aik)->name(), Bytes(16, 7));
  auto got2 =
      tpm->ActivateCredential(again.credential_blob, again.encrypted_secret);
  REQUIRE(got2.ok());
  CHECK(*got2 == Bytes(16, 7));
}

TEST_CASE("software MakeCredential <-> ActivateCredential, RSA-2048 EK",
          "[tpm]") {
  CredentialRoundTrip(EkType::kRsa2048);
}

TEST_CASE("software MakeCredential <-> ActivateCredential, ECC P-256 EK",
          "[tpm]") {
  CredentialRoundTrip(EkType::kEccP256);
}

std::vector<std::string> ReadAll(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    auto text = ReadFileUpTo(p, 1 << 20);
    REQUIRE(text.ok());
    out.push_back(*text);
  }
  return out;
}

TEST_CASE("swtpm's EK certificate chains to the harness CA with the EK's key",
          "[tpm]") {
  auto a = StartSwtpm();
  auto b = StartSwtpm();
  Bytes cert_a, cert_b, ek_a, ek_b;
  for (auto [swtpm, cert, ek] : {std::tuple{a.get(), &cert_a, &ek_a},
                                 std::tuple{b.get(), &cert_b, &ek_b}}) {
    auto tpm = Open(*swtpm);
    auto c = tpm->ReadEkCertificate(EkType::kRsa2048);
    REQUIRE(c.ok());
    *cert = *c;
    auto e = tpm->LoadEk(EkType::kRsa2048);
    REQUIRE(e.ok());
    *ek = *e;
  }
  CHECK(Open(*a)->ReadEkCertificate(EkType::kEccP256).status().code() ==
        absl::StatusCode::kNotFound);  // swtpm 0.7.1 makes no P-256 EK.
  auto area_a = ctpm::ParsePublic(ek_a);
  auto area_b = ctpm::ParsePublic(ek_b);
  REQUIRE(area_a.ok());
  REQUIRE(area_b.ok());
  // Trust the root only; the agent supplies the intermediate.
  auto cas = ctpm::EkCertVerifier::Create(ReadAll({a->root_ca_cert_path()}));
  REQUIRE(cas.ok());
  const std::vector<std::string> intermediates = ReadAll({a->ca_cert_path()});
  const absl::Time now = absl::Now();

  CHECK(Rules((*cas)->Verify(cert_a, intermediates, area_a->public_area,
                             now)) == RuleList{});
  CHECK(
      (*cas)->Verify(cert_a, intermediates, area_a->public_area, now).passed());
  SECTION("without the intermediate there is no chain") {
    CHECK(Rules((*cas)->Verify(cert_a, {}, area_a->public_area, now)) ==
          RuleList{Rule::kEkCertChain});
  }
  SECTION("an EK certificate from another swtpm (another CA)") {
    CHECK(Rules((*cas)->Verify(cert_b, ReadAll({b->ca_cert_path()}),
                               area_b->public_area, now)) ==
          RuleList{Rule::kEkCertChain});
  }
  SECTION("a certificate whose key differs from the EK public") {
    CHECK(Rules((*cas)->Verify(cert_a, intermediates, area_b->public_area,
                               now)) == RuleList{Rule::kEkCertKey});
  }
  SECTION("one flipped bit in the CA's signature") {
    Bytes tampered = cert_a;
    tampered[tampered.size() - 10] ^= 1;
    CHECK(Rules((*cas)->Verify(tampered, intermediates, area_a->public_area,
                               now)) == RuleList{Rule::kEkCertChain});
  }
  SECTION("outside the validity period") {
    CHECK(Rules((*cas)->Verify(cert_a, intermediates, area_a->public_area,
                               absl::FromUnixSeconds(0))) ==
          RuleList{Rule::kEkCertChain});
  }
  SECTION("NV padding after the DER is tolerated") {
    Bytes padded = cert_a;
    padded.resize(padded.size() + 64, 0xff);
    CHECK((*cas)
              ->Verify(padded, intermediates, area_a->public_area, now)
              .passed());
  }
}

TEST_CASE("transient objects a stopped process left are flushed on open",
          "[tpm]") {
  auto swtpm = StartSwtpm();
  auto state = TempDir::Create("leftover-");
  REQUIRE(state.ok());
  // tpm2-tools without a resource manager leaves each primary loaded, as a
  // process killed mid-command would; swtpm has room for three.
  testing::ProcessOptions options;
  options.env = {{"TPM2TOOLS_TCTI", swtpm->tcti()}};
  options.working_dir = state->path();
  for (int i = 0; i < 3; ++i) {
    auto made = RunCommand({"tpm2_createprimary", "-C", "n", "-G", "ecc256",
                            "-c", absl::StrCat("p", i, ".ctx")},
                           options);
    REQUIRE(made.ok());
  }
  {
    auto tpm = Open(*swtpm);
    // The TPM is full: without the flush nothing can be loaded.
    auto ek = tpm->LoadEk(EkType::kRsa2048);
    REQUIRE_FALSE(ek.ok());
    CHECK_THAT(std::string(ek.status().message()),
               Catch::Contains("0x00000902"));  // TPM_RC_OBJECT_MEMORY
    auto flushed = tpm->FlushTransientObjects();
    REQUIRE(flushed.ok());
    CHECK(*flushed == 3);
    REQUIRE(tpm->LoadEk(EkType::kRsa2048).ok());
    REQUIRE(tpm->LoadOrCreateAik(state->path(), AikType::kRsa2048).ok());
  }
  // EsysTpm flushes its own EK and AIK when it goes.
  auto tpm = Open(*swtpm);
  auto flushed = tpm->FlushTransientObjects();
  REQUIRE(flushed.ok());
  CHECK(*flushed == 0);
}

// tpm2-tools on the swtpm; no resource manager, so transients are flushed
// after each command. No EsysTpm may be connected meanwhile (one client).
std::string Tools(const Swtpm& swtpm, const std::string& dir,
                  std::vector<std::string> argv) {
  testing::ProcessOptions options;
  options.env = {{"TPM2TOOLS_TCTI", swtpm.tcti()}};
  options.working_dir = dir;
  auto out = RunCommand(argv, options);
  INFO(absl::StrJoin(argv, " "));
  if (!out.ok()) FAIL(out.status().ToString());
  auto flushed = RunCommand({"tpm2_flushcontext", "-t"}, options);
  REQUIRE(flushed.ok());
  return *out;
}

TEST_CASE("keys and attestations made by tpm2-tools that must be refused",
          "[tpm]") {
  auto swtpm = StartSwtpm();
  auto dir = TempDir::Create("tools-");
  REQUIRE(dir.ok());
  const std::string d = dir->path();
  Tools(*swtpm, d, {"tpm2_createek", "-c", "ek.ctx", "-G", "rsa"});
  Tools(*swtpm, d,
        {"tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", "rsa", "-g",
         "sha256", "-s", "rsassa", "-u", "ak.pub"});

  SECTION("an AIK that is neither restricted nor fixedTPM") {
    Tools(*swtpm, d, {"tpm2_createprimary", "-C", "o", "-c", "prim.ctx"});
    Tools(*swtpm, d,
          {"tpm2_create", "-C", "prim.ctx", "-G", "rsa2048", "-a",
           "sign|sensitivedataorigin|userwithauth", "-u", "weak.pub", "-r",
           "weak.priv"});
    auto weak = ctpm::AikVerifier::Create(tpmtest::ReadBytes(d + "/weak.pub"));
    REQUIRE(weak.ok());
    CHECK(Rules((*weak)->admission()) == RuleList{Rule::kAikRestricted,
                                                  Rule::kAikFixedTpm,
                                                  Rule::kAikFixedParent});
  }
  SECTION("a certify attestation is not a quote") {
    Tools(*swtpm, d,
          {"tpm2_certify", "-c", "ak.ctx", "-C", "ak.ctx", "-g", "sha256", "-o",
           "attest", "-s", "sig"});
    auto aik = ctpm::AikVerifier::Create(tpmtest::ReadBytes(d + "/ak.pub"));
    REQUIRE(aik.ok());
    const Bytes attest = tpmtest::ReadBytes(d + "/attest");
    const Bytes sig = tpmtest::ReadBytes(d + "/sig");
    const ctpm::PcrValues none;
    auto r = (*aik)->VerifyQuote({attest, sig, Bytes(8, 1), &none, {}}, {});
    REQUIRE(r.ok());
    // The signature is genuine; the type and the (absent) nonce are not.
    CHECK(Rules(r->verdict) == RuleList{Rule::kQuoteNonce, Rule::kQuoteType});
  }
  SECTION("an RSAPSS AIK signing with SHA-384") {
    Tools(*swtpm, d,
          {"tpm2_createak", "-C", "ek.ctx", "-c", "pss.ctx", "-G", "rsa", "-g",
           "sha384", "-s", "rsapss", "-u", "pss.pub"});
    Tools(*swtpm, d,
          {"tpm2_quote", "-c", "pss.ctx", "-l", "sha256:0,1", "-q", "abcdef",
           "-m", "msg", "-s", "sig", "-o", "pcrs", "-g", "sha384", "--scheme",
           "rsapss"});
    auto aik = ctpm::AikVerifier::Create(tpmtest::ReadBytes(d + "/pss.pub"));
    REQUIRE(aik.ok());
    auto sig = ctpm::ParseSignature(tpmtest::ReadBytes(d + "/sig"));
    REQUIRE(sig.ok());
    CHECK(sig->sigAlg == TPM2_ALG_RSAPSS);
    auto pcrs = ctpm::ParseTpm2ToolsPcrs(tpmtest::ReadBytes(d + "/pcrs"));
    REQUIRE(pcrs.ok());
    const Bytes msg = tpmtest::ReadBytes(d + "/msg");
    const Bytes sig_bytes = tpmtest::ReadBytes(d + "/sig");
    const Bytes nonce = {0xab, 0xcd, 0xef};
    auto r =
        (*aik)->VerifyQuote({msg, sig_bytes, nonce, &pcrs->values, {}}, {});
    REQUIRE(r.ok());
    CHECK(Rules(r->verdict) == RuleList{});
    ctpm::QuotePolicy sha256_only;
    sha256_only.allowed_hash_algs = {TPM2_ALG_SHA256};
    r = (*aik)->VerifyQuote({msg, sig_bytes, nonce, &pcrs->values, {}},
                            sha256_only);
    REQUIRE(r.ok());
    CHECK(Rules(r->verdict) == RuleList{Rule::kQuoteSignatureAlg});
  }
  SECTION("vouchctl quote verify on tpm2_quote output") {
    Tools(*swtpm, d,
          {"tpm2_pcrextend", absl::StrCat("16:sha256=", std::string(64, 'e'))});
    Tools(*swtpm, d,
          {"tpm2_quote", "-c", "ak.ctx", "-l", "sha256:0,16", "-q",
           "00112233445566778899", "-m", "msg", "-s", "sig", "-o", "pcrs", "-g",
           "sha256"});
    Tools(*swtpm, d,
          {"tpm2_readpublic", "-c", "ak.ctx", "-f", "pem", "-o", "ak.pem"});
    // tpm2_pcrread -o writes raw values by default, the serialized layout
    // with -F serialized.
    Tools(*swtpm, d, {"tpm2_pcrread", "-o", "values", "sha256:0,16"});
    Tools(*swtpm, d,
          {"tpm2_pcrread", "-F", "serialized", "-o", "serialized",
           "sha256:0,16"});
    auto quoted = ctpm::ParseTpm2ToolsPcrs(tpmtest::ReadBytes(d + "/pcrs"));
    REQUIRE(quoted.ok());
    auto serialized =
        ctpm::ParseTpm2ToolsPcrs(tpmtest::ReadBytes(d + "/serialized"));
    INFO(serialized.status().ToString());
    REQUIRE(serialized.ok());
    CHECK(serialized->values == quoted->values);
    auto values = ctpm::ParsePcrValuesForSelection(
        tpmtest::ReadBytes(d + "/values"), quoted->selection);
    REQUIRE(values.ok());
    CHECK(*values == quoted->values);
    auto run = [&](std::vector<std::string> extra) {
      std::vector<std::string> argv = {VOUCHCTL_BIN, "quote", "verify",
                                       "--message",  "msg",   "--signature",
                                       "sig"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      testing::ProcessOptions options;
      options.working_dir = d;
      options.env = {{"HOME", d}, {"XDG_CONFIG_HOME", d}};
      auto child = testing::ChildProcess::Start(argv, [&] {
        auto o = options;
        o.stdout_path = d + "/out.txt";
        o.stderr_path = d + "/out.txt";
        return o;
      }());
      REQUIRE(child.ok());
      auto status = child->WaitFor(std::chrono::seconds(30));
      REQUIRE(status.ok());
      REQUIRE(status->exited);
      return status->code;
    };
    const std::vector<std::string> good = {
        "--ak", "ak.pub", "--nonce", "00112233445566778899", "--pcrs", "pcrs"};
    CHECK(run(good) == 0);
    CHECK(run({"--ak", "ak.pem", "--nonce", "00112233445566778899", "--pcrs",
               "pcrs"}) == 0);
    CHECK(run({"--ak", "ak.pub", "--nonce", "00112233445566778899", "--pcrs",
               "values", "--pcrs-format", "values"}) == 0);
    CHECK(run({"--ak", "ak.pub", "--nonce", "00112233445566778898", "--pcrs",
               "pcrs", "--json"}) == 1);
    auto out = ReadFileUpTo(d + "/out.txt", 1 << 20);
    REQUIRE(out.ok());
    CHECK(out->find("\"rule\": \"quote.nonce\"") != std::string::npos);
    CHECK(run({"--ak", "ak.pub", "--nonce", "00112233445566778899", "--pcrs",
               "pcrs", "--require-pcrs", "sha256:0,7"}) == 1);
    CHECK(run({"--ak", "missing.pub", "--nonce", "00", "--pcrs", "pcrs"}) == 2);
    CHECK(run({"--ak", "msg", "--nonce", "00", "--pcrs", "pcrs"}) == 2);
  }
}

}  // namespace
}  // namespace vouch::tpm
