// EvidenceBuilder against FakeTpm and an IMA log in a temp file: the order
// of reads (quote first, IMA after), the PCR retry, TPM failures and
// reopening, the IMA chunk bounds and the boot log. FakeTpm's quotes are
// checked with the verifier's own AikVerifier, tampered ones too.
#include "agent/evidence.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "agent/fake_tpm.h"
#include "core/attest/wire.h"
#include "core/tpm/quote.h"
#include "harness/temp_dir.h"

namespace vouch::agent {
namespace {

using agenttest::FakeTpm;

std::unique_ptr<FakeTpm> NewTpm() {
  absl::StatusOr<std::unique_ptr<FakeTpm>> tpm = FakeTpm::Create();
  REQUIRE(tpm.ok());
  return *std::move(tpm);
}

testing::TempDir NewDir() {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("agent-");
  REQUIRE(dir.ok());
  return *std::move(dir);
}

// One ASCII IMA line per name (the agent detects the format; the content
// of a line does not matter to it).
void AppendIma(const std::string& path,
               std::initializer_list<std::string> names) {
  std::ofstream out(path, std::ios::app);
  for (const std::string& n : names) {
    out << "10 0000000000000000000000000000000000000000 ima-ng sha256:00 " << n
        << "\n";
  }
}

EvidenceOptions Options() {
  EvidenceOptions o;
  o.max_ima_chunk_bytes = 1 << 20;
  o.max_ima_chunk_entries = 1000;
  o.max_boot_log_bytes = 1 << 16;
  return o;
}

v1::Challenge MakeChallenge(std::optional<uint64_t> ima_from) {
  v1::Challenge c;
  c.set_nonce("0123456789abcdef0123456789abcdef");
  v1::PcrBankSelection* b = c.mutable_pcr_selection()->add_banks();
  b->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  for (uint32_t pcr : {0u, 7u, 10u}) b->add_pcr_indices(pcr);
  if (ima_from) c.set_ima_from(*ima_from);
  return c;
}

// A TpmOpener handing out views of `tpm`, counting the opens.
TpmOpener CountingOpener(FakeTpm* tpm, int* opens) {
  return [tpm, opens]() -> absl::StatusOr<std::unique_ptr<tpm::Tpm>> {
    ++*opens;
    return tpm->NewHandle();
  };
}

core::tpm::PcrValues Reported(const v1::Evidence& ev) {
  core::tpm::PcrValues out;
  for (const v1::PcrBankValues& b : ev.pcr_values()) {
    for (const v1::PcrValue& v : b.values()) {
      out[static_cast<TPMI_ALG_HASH>(b.hash_alg())][v.index()] =
          ToBytes(v.digest());
    }
  }
  return out;
}

TEST_CASE("evidence: quote first, then the IMA log from ima_from", "[agent]") {
  testing::TempDir dir = NewDir();
  const std::string log = dir.Join("ima.log");
  AppendIma(log, {"/a", "/b", "/c"});
  ImaSource ima(log);
  std::unique_ptr<FakeTpm> tpm = NewTpm();
  // The kernel appends to the log during the quote: the entry must be in
  // the chunk, read after the quote (the log may run ahead, never behind).
  tpm->set_on_quote([&] { AppendIma(log, {"/during-quote"}); });
  int opens = 0;
  EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), Options(), &ima);
  absl::StatusOr<BuiltEvidence> built = builder.Build(MakeChallenge(1));
  REQUIRE(built.ok());
  CHECK(tpm->calls() ==
        std::vector<std::string>{"PcrRead", "Quote", "PcrRead"});
  const v1::Evidence& ev = built->message.evidence();
  CHECK(!ev.quote().empty());
  CHECK(!ev.signature().empty());
  const v1::ImaLogChunk& chunk = ev.ima_entries();
  CHECK(chunk.first_index() == 1);
  CHECK(chunk.format() == v1::IMA_LOG_FORMAT_ASCII);
  CHECK(!chunk.truncated());
  CHECK(chunk.data().find("/a") == std::string::npos);
  CHECK(chunk.data().find("/b") != std::string::npos);
  CHECK(chunk.data().find("/during-quote") != std::string::npos);
  CHECK(built->ima_sent_until == std::optional<uint64_t>(4));
  CHECK(ev.boot_log().empty());
  CHECK(opens == 1);
}

TEST_CASE(
    "evidence: FakeTpm's quote verifies with AikVerifier, a tampered "
    "one does not",
    "[agent]") {
  std::unique_ptr<FakeTpm> tpm = NewTpm();
  REQUIRE(tpm->PcrExtend(10, TPM2_ALG_SHA256, Bytes(32, 0xab)).ok());
  int opens = 0;
  EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), Options(),
                          nullptr);
  const v1::Challenge challenge = MakeChallenge(std::nullopt);
  absl::StatusOr<BuiltEvidence> built = builder.Build(challenge);
  REQUIRE(built.ok());
  const v1::Evidence& ev = built->message.evidence();
  const core::tpm::PcrValues values = Reported(ev);
  REQUIRE(values.at(TPM2_ALG_SHA256).size() == 3);
  CHECK(values.at(TPM2_ALG_SHA256).at(10) != Bytes(32, 0));

  absl::StatusOr<std::unique_ptr<core::tpm::AikVerifier>> aik =
      core::tpm::AikVerifier::Create(tpm->aik_public());
  REQUIRE(aik.ok());
  CHECK((*aik)->admission().passed());
  core::tpm::QuotePolicy policy;
  policy.required_selection =
      *core::attest::PcrSelectionFromProto(challenge.pcr_selection());
  const Bytes attest = ToBytes(ev.quote());
  const Bytes signature = ToBytes(ev.signature());
  const Bytes nonce = ToBytes(challenge.nonce());
  core::tpm::QuoteEvidence qe{attest, signature, nonce, &values, std::nullopt};
  absl::StatusOr<core::tpm::QuoteResult> result =
      (*aik)->VerifyQuote(qe, policy);
  REQUIRE(result.ok());
  INFO(result->verdict.failures().size());
  CHECK(result->verdict.passed());

  SECTION("another nonce") {
    const Bytes other = ToBytes("another nonce");
    qe.nonce = other;
    absl::StatusOr<core::tpm::QuoteResult> r = (*aik)->VerifyQuote(qe, policy);
    REQUIRE(r.ok());
    CHECK(!r->verdict.passed());
  }
  SECTION("a changed PCR value") {
    core::tpm::PcrValues changed = values;
    changed[TPM2_ALG_SHA256][10][0] ^= 1;
    qe.pcr_values = &changed;
    absl::StatusOr<core::tpm::QuoteResult> r = (*aik)->VerifyQuote(qe, policy);
    REQUIRE(r.ok());
    CHECK(!r->verdict.passed());
  }
  SECTION("a flipped bit in the signed attest") {
    Bytes flipped = attest;
    flipped.back() ^= 1;
    qe.attest = flipped;
    absl::StatusOr<core::tpm::QuoteResult> r = (*aik)->VerifyQuote(qe, policy);
    CHECK((!r.ok() || !r->verdict.passed()));
  }
}

TEST_CASE("evidence: PCRs that change during the quote are read again",
          "[agent]") {
  std::unique_ptr<FakeTpm> tpm = NewTpm();
  int opens = 0;
  EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), Options(),
                          nullptr);
  SECTION("once: the second round is sent") {
    int quotes = 0;
    tpm->set_on_quote([&] {
      if (++quotes == 1) {
        REQUIRE(tpm->PcrExtend(10, TPM2_ALG_SHA256, Bytes(32, 1)).ok());
      }
    });
    absl::StatusOr<BuiltEvidence> built =
        builder.Build(MakeChallenge(std::nullopt));
    REQUIRE(built.ok());
    CHECK(quotes == 2);
    CHECK(Reported(built->message.evidence()).at(TPM2_ALG_SHA256).at(10) !=
          Bytes(32, 0));
  }
  SECTION("always: given up after 5 rounds, the TPM closed") {
    tpm->set_on_quote([&] {
      REQUIRE(tpm->PcrExtend(10, TPM2_ALG_SHA256, Bytes(32, 1)).ok());
    });
    absl::StatusOr<BuiltEvidence> built =
        builder.Build(MakeChallenge(std::nullopt));
    CHECK(absl::IsUnavailable(built.status()));
    size_t quotes = 0;
    for (const std::string& c : tpm->calls()) quotes += c == "Quote";
    CHECK(quotes == 5);
    tpm->set_on_quote(nullptr);
    REQUIRE(builder.Build(MakeChallenge(std::nullopt)).ok());
    CHECK(opens == 2);
  }
}

TEST_CASE("evidence: TPM failures are returned and the TPM is reopened",
          "[agent]") {
  std::unique_ptr<FakeTpm> tpm = NewTpm();
  int opens = 0;
  EvidenceOptions o = Options();
  SECTION("keep_tpm_open: opened once while it works") {
    o.keep_tpm_open = true;
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, nullptr);
    REQUIRE(builder.Build(MakeChallenge(std::nullopt)).ok());
    REQUIRE(builder.Build(MakeChallenge(std::nullopt)).ok());
    CHECK(opens == 1);
    tpm->SetFailure(FakeTpm::Op::kQuote, absl::UnavailableError("TPM busy"));
    absl::StatusOr<BuiltEvidence> failed =
        builder.Build(MakeChallenge(std::nullopt));
    CHECK(failed.status() == absl::UnavailableError("TPM busy"));
    tpm->SetFailure(FakeTpm::Op::kQuote, absl::OkStatus());
    REQUIRE(builder.Build(MakeChallenge(std::nullopt)).ok());
    CHECK(opens == 2);
  }
  SECTION("not keep_tpm_open: opened for every push") {
    o.keep_tpm_open = false;
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, nullptr);
    REQUIRE(builder.Build(MakeChallenge(std::nullopt)).ok());
    REQUIRE(builder.Build(MakeChallenge(std::nullopt)).ok());
    CHECK(opens == 2);
  }
  SECTION("a PCR read failure") {
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, nullptr);
    tpm->SetFailure(FakeTpm::Op::kPcrRead, absl::InternalError("PCR read"));
    CHECK(
        absl::IsInternal(builder.Build(MakeChallenge(std::nullopt)).status()));
    CHECK(tpm->calls() == std::vector<std::string>{"PcrRead"});
  }
  SECTION("the TPM cannot be opened") {
    EvidenceBuilder builder(
        []() -> absl::StatusOr<std::unique_ptr<tpm::Tpm>> {
          return absl::UnavailableError("no TPM");
        },
        o, nullptr);
    CHECK(absl::IsUnavailable(
        builder.Build(MakeChallenge(std::nullopt)).status()));
  }
}

TEST_CASE("evidence: the IMA chunk", "[agent]") {
  testing::TempDir dir = NewDir();
  const std::string log = dir.Join("ima.log");
  std::unique_ptr<FakeTpm> tpm = NewTpm();
  int opens = 0;
  EvidenceOptions o = Options();
  SECTION("bounded by entries, marked truncated") {
    AppendIma(log, {"/0", "/1", "/2", "/3", "/4"});
    ImaSource ima(log);
    o.max_ima_chunk_entries = 2;
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, &ima);
    absl::StatusOr<BuiltEvidence> built = builder.Build(MakeChallenge(1));
    REQUIRE(built.ok());
    const v1::ImaLogChunk& chunk = built->message.evidence().ima_entries();
    CHECK(chunk.truncated());
    CHECK(chunk.data().find("/2") != std::string::npos);
    CHECK(chunk.data().find("/3") == std::string::npos);
    CHECK(built->ima_sent_until == std::optional<uint64_t>(3));
  }
  SECTION("no ima_from: no chunk") {
    AppendIma(log, {"/0"});
    ImaSource ima(log);
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, &ima);
    absl::StatusOr<BuiltEvidence> built =
        builder.Build(MakeChallenge(std::nullopt));
    REQUIRE(built.ok());
    CHECK(!built->message.evidence().has_ima_entries());
    CHECK(!built->ima_sent_until);
  }
  SECTION("no IMA log configured, or none yet: an empty chunk") {
    ImaSource missing(dir.Join("absent"));
    for (ImaSource* ima : {static_cast<ImaSource*>(nullptr), &missing}) {
      EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, ima);
      absl::StatusOr<BuiltEvidence> built = builder.Build(MakeChallenge(7));
      REQUIRE(built.ok());
      const v1::ImaLogChunk& chunk = built->message.evidence().ima_entries();
      CHECK(chunk.first_index() == 7);
      CHECK(chunk.data().empty());
      CHECK(built->ima_sent_until == std::optional<uint64_t>(7));
    }
  }
  SECTION("a malformed log is an error") {
    // Binary (PCR 10 as u32 LE), SHA-1 template hash, template name length
    // 0: no such record.
    std::string record(28, '\0');
    record[0] = 10;
    std::ofstream(log, std::ios::binary) << record;
    ImaSource ima(log);
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, &ima);
    CHECK(absl::IsInvalidArgument(builder.Build(MakeChallenge(0)).status()));
  }
}

TEST_CASE("evidence: the boot log when asked", "[agent]") {
  testing::TempDir dir = NewDir();
  std::unique_ptr<FakeTpm> tpm = NewTpm();
  int opens = 0;
  EvidenceOptions o = Options();
  o.boot_log = dir.Join("binary_bios_measurements");
  std::ofstream(o.boot_log) << "boot events";
  v1::Challenge challenge = MakeChallenge(std::nullopt);
  {
    EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, nullptr);
    absl::StatusOr<BuiltEvidence> built = builder.Build(challenge);
    REQUIRE(built.ok());
    CHECK(built->message.evidence().boot_log().empty());
    challenge.set_want_boot_log(true);
    built = builder.Build(challenge);
    REQUIRE(built.ok());
    CHECK(built->message.evidence().boot_log() == "boot events");
  }
  // Unreadable: left out, the quote still goes.
  o.boot_log = dir.Join("absent");
  EvidenceBuilder builder(CountingOpener(tpm.get(), &opens), o, nullptr);
  absl::StatusOr<BuiltEvidence> built = builder.Build(challenge);
  REQUIRE(built.ok());
  CHECK(built->message.evidence().boot_log().empty());
  CHECK(!built->message.evidence().quote().empty());
}

TEST_CASE("evidence: the PCR selection of an untrusted Challenge", "[agent]") {
  // The agent reads the selection with core's one helper, which refuses
  // what a TPM could not quote instead of clamping it.
  v1::PcrSelection s;
  v1::PcrBankSelection* b = s.add_banks();
  b->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  for (uint32_t pcr : {0u, 10u, 23u}) b->add_pcr_indices(pcr);
  absl::StatusOr<TPML_PCR_SELECTION> sel =
      core::attest::PcrSelectionFromProto(s);
  REQUIRE(sel.ok());
  CHECK(sel->count == 1);
  CHECK(sel->pcrSelections[0].hash == TPM2_ALG_SHA256);
  CHECK(sel->pcrSelections[0].sizeofSelect == 3);
  CHECK(sel->pcrSelections[0].pcrSelect[0] == 0x01);
  CHECK(sel->pcrSelections[0].pcrSelect[1] == 0x04);
  CHECK(sel->pcrSelections[0].pcrSelect[2] == 0x80);
  CHECK(sel->pcrSelections[0].pcrSelect[3] == 0);
  v1::PcrSelection high = s;
  high.mutable_banks(0)->add_pcr_indices(24);
  CHECK(absl::IsInvalidArgument(
      core::attest::PcrSelectionFromProto(high).status()));
  v1::PcrSelection many = s;
  for (int i = 0; i < 40; ++i)
    many.add_banks()->set_hash_alg(v1::HASH_ALGORITHM_SHA1);
  CHECK(absl::IsInvalidArgument(
      core::attest::PcrSelectionFromProto(many).status()));
  v1::PcrSelection twice = s;
  twice.add_banks()->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  CHECK(absl::IsInvalidArgument(
      core::attest::PcrSelectionFromProto(twice).status()));
  v1::PcrSelection unknown;
  unknown.add_banks()->set_hash_alg(static_cast<v1::HashAlgorithm>(99));
  CHECK(absl::IsInvalidArgument(
      core::attest::PcrSelectionFromProto(unknown).status()));
}

}  // namespace
}  // namespace vouch::agent
