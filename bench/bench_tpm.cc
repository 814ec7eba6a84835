// Google Benchmark: TPM quote verification as the verifier runs it (one
// cached AikVerifier per agent; parse + signature + PCR digest + rules per
// quote), what a cache saves (AIK decoding), and the registrar's software
// MakeCredential. Inputs are the golden tpm2-tools files (tests/tpm/data).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/bytes.h"
#include "common/file.h"
#include "core/tpm/credential.h"
#include "core/tpm/pcr_file.h"
#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"

namespace {

namespace t = vouch::core::tpm;

vouch::Bytes Golden(const std::string& name) {
  auto text = vouch::ReadFileUpTo(
      std::string(VOUCH_TPM_TEST_DATA_DIR) + "/tpm2-tools/" + name, 1 << 20);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().ToString().c_str());
    std::abort();
  }
  return vouch::ToBytes(*text);
}

struct Quote {
  std::unique_ptr<t::AikVerifier> aik;
  vouch::Bytes ak, msg, sig, nonce;
  t::Tpm2ToolsPcrs pcrs;
  t::QuotePolicy policy;
};

Quote LoadQuote(const std::string& kind) {
  Quote q;
  q.ak = Golden("ak-" + kind + ".pub");
  q.aik = *t::AikVerifier::Create(q.ak);
  q.msg = Golden("quote-" + kind + ".msg");
  q.sig = Golden("quote-" + kind + ".sig");
  q.pcrs = *t::ParseTpm2ToolsPcrs(Golden("quote-" + kind + ".pcrs"));
  q.nonce = *vouch::HexDecode(kind == "rsa" ? "0102030405060708"
                                            : "0a0b0c0d0e0f1011");
  // The golden RSA quote also covers a SHA-1 bank.
  if (kind == "rsa") q.policy.allowed_hash_algs.push_back(TPM2_ALG_SHA1);
  return q;
}

void VerifyCached(benchmark::State& state, const std::string& kind) {
  const Quote q = LoadQuote(kind);
  const t::ClockInfo previous{1, 0, 0, true};
  for (auto _ : state) {
    auto r = q.aik->VerifyQuote(
        {q.msg, q.sig, q.nonce, &q.pcrs.values, previous}, q.policy);
    if (!r.ok() || !r->verdict.passed()) {
      state.SkipWithError("golden quote did not verify");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_VerifyQuoteCachedAik_Rsa2048(benchmark::State& state) {
  VerifyCached(state, "rsa");
}
void BM_VerifyQuoteCachedAik_EcdsaP256(benchmark::State& state) {
  VerifyCached(state, "ecc");
}
BENCHMARK(BM_VerifyQuoteCachedAik_Rsa2048);
BENCHMARK(BM_VerifyQuoteCachedAik_EcdsaP256);

// What the cache saves: parsing and decoding the AIK for each quote.
void ParseAik(benchmark::State& state, const std::string& kind) {
  const vouch::Bytes ak = Golden("ak-" + kind + ".pub");
  for (auto _ : state) {
    auto aik = t::AikVerifier::Create(ak);
    benchmark::DoNotOptimize(aik);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_ParseAik_Rsa2048(benchmark::State& state) { ParseAik(state, "rsa"); }
void BM_ParseAik_EcdsaP256(benchmark::State& state) { ParseAik(state, "ecc"); }
BENCHMARK(BM_ParseAik_Rsa2048);
BENCHMARK(BM_ParseAik_EcdsaP256);

// The registrar's MakeCredential; the golden AIK keys stand in for EKs (same
// key types), given EK attributes and AES-128-CFB.
void MakeCred(benchmark::State& state, const std::string& kind) {
  t::PublicArea ek = *t::ParsePublic(Golden("ak-" + kind + ".pub"));
  TPMT_PUBLIC& p = ek.public_area;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  TPMT_SYM_DEF_OBJECT& sym = p.type == TPM2_ALG_RSA
                                 ? p.parameters.rsaDetail.symmetric
                                 : p.parameters.eccDetail.symmetric;
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
  const vouch::Bytes name(34, 0x0b), secret(32, 0x5a);
  const vouch::Bytes random(t::CredentialRandomBytes(p), 0x42);
  for (auto _ : state) {
    auto c = t::MakeCredential(ek, name, secret, random);
    if (!c.ok()) {
      state.SkipWithError(std::string(c.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_MakeCredential_Rsa2048(benchmark::State& state) {
  MakeCred(state, "rsa");
}
void BM_MakeCredential_EccP256(benchmark::State& state) {
  MakeCred(state, "ecc");
}
BENCHMARK(BM_MakeCredential_Rsa2048);
BENCHMARK(BM_MakeCredential_EccP256);

}  // namespace

BENCHMARK_MAIN();
