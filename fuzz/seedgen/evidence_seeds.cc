#include "seedgen/evidence_seeds.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file.h"
#include "common/openssl_handle.h"
#include "core/attest/wire.h"
#include "core/boot/replay.h"
#include "core/ima/ima_log_writer.h"
#include "core/ima/ima_signature.h"
#include "harness/soft_aik.h"
#include "ima/ima_test_util.h"

namespace vouch::fuzzing {
namespace {

namespace cboot = ::vouch::core::boot;
namespace cima = ::vouch::core::ima;
namespace ctpm = ::vouch::core::tpm;
using Kind = core::attest::EvidenceOutcome::Kind;

constexpr size_t kMaxFileBytes = 4u << 20;

Bytes Digest(const EVP_MD* md, absl::string_view data) {
  Bytes out(EVP_MD_get_size(md));
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  return out;
}

Bytes FileDigest(int i, const EVP_MD* md = EVP_sha256()) {
  return Digest(md, absl::StrCat("contents of file ", i));
}

absl::StatusOr<std::string> SpkiDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return absl::InternalError("i2d_PUBKEY");
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

// An ima-sig field: RSASSA-PKCS1-v1_5 over the SHA-256 file digest (kernel
// hash_algo 4 = SHA-256).
absl::StatusOr<std::string> ImaSign(EVP_PKEY* key, const Bytes& digest,
                                    uint32_t key_id) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) !=
          1) {
    return absl::InternalError("ima-sig signing setup");
  }
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                    &len, digest.data(), digest.size()) != 1) {
    return absl::InternalError("ima-sig signing");
  }
  sig.resize(len);
  return cima::testing::ImaSigField(4, key_id, sig);
}

cima::ImaRecord Record(cima::ImaTemplate tmpl, std::string path, Bytes digest,
                       cima::HashAlg alg = cima::HashAlg::kSha256) {
  cima::ImaRecord r;
  r.tmpl = tmpl;
  r.path = std::move(path);
  r.digest = std::move(digest);
  r.digest_alg = alg;
  return r;
}

cima::ImaRecord Buffer(std::string name, std::string buffer) {
  cima::ImaRecord r = Record(cima::ImaTemplate::kImaBuf, std::move(name),
                             Digest(EVP_sha256(), buffer));
  r.extra = std::move(buffer);
  return r;
}

// PCR 10 (SHA-256 bank) after the first `n` records, computed here rather
// than by core: SHA-256 of each template's data (0xFF.. for a violation)
// extended from zero.
Bytes Pcr10(const std::vector<cima::ImaRecord>& records, size_t n) {
  Bytes pcr(32, 0);
  for (size_t i = 0; i < n && i < records.size(); ++i) {
    const Bytes h =
        records[i].violation
            ? Bytes(32, 0xff)
            : Digest(EVP_sha256(), cima::BuildTemplateData(records[i]));
    pcr = Digest(EVP_sha256(), absl::StrCat(AsString(pcr), AsString(h)));
  }
  return pcr;
}

// PCRs 0-9 and 14 of the SHA-256 bank as `log` replays them.
absl::StatusOr<ctpm::PcrBank> BootPcrs(absl::string_view log_bytes) {
  VOUCH_ASSIGN_OR_RETURN(cboot::EventLog log,
                         cboot::ParseEventLog(AsBytes(log_bytes)));
  VOUCH_ASSIGN_OR_RETURN(cboot::PcrBanks banks, cboot::Replay(log));
  const cboot::PcrValues& sha256 = banks[cboot::kAlgSha256];
  ctpm::PcrBank out;
  for (uint32_t pcr : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 14u}) {
    auto it = sha256.find(pcr);
    out[pcr] =
        it != sha256.end() ? it->second : cboot::InitialPcrValue(log, pcr, 32);
  }
  return out;
}

struct Spec {
  std::string name;
  std::vector<cima::ImaRecord> records;  // The machine's log.
  size_t quoted = 0;                     // PCR 10 after this many.
  size_t sent = 0;                       // The chunk: entries [0, sent).
  cima::LogFormat format = cima::LogFormat::kAscii;
  bool truncated = false;
  std::string boot_log;     // Sent as Evidence.boot_log.
  ctpm::PcrBank boot_pcrs;  // Quoted PCRs 0-9 and 14.
  ctpm::ClockInfo clock{1000, 1, 0, true};
  std::optional<Bytes> pcr10;  // Quoted instead of the replayed value.
  SeedExpectation want;
};

std::string BuildEvidence(const testing::SoftAik& aik, const Spec& s) {
  ctpm::PcrValues values;
  values[TPM2_ALG_SHA256] = s.boot_pcrs;
  values[TPM2_ALG_SHA256][cima::kImaPcr] =
      s.pcr10.value_or(Pcr10(s.records, s.quoted));
  auto [attest, signature] =
      aik.Quote(EvidenceSelection(), values,
                std::string(AsString(EvidenceNonce())), s.clock);
  v1::Evidence ev;
  ev.set_quote(attest);
  ev.set_signature(signature);
  core::attest::PcrValuesToProto(values, ev.mutable_pcr_values());
  v1::ImaLogChunk* chunk = ev.mutable_ima_entries();
  chunk->set_first_index(0);
  chunk->set_format(s.format == cima::LogFormat::kAscii
                        ? v1::IMA_LOG_FORMAT_ASCII
                        : v1::IMA_LOG_FORMAT_BINARY);
  chunk->set_template_hash_alg(v1::HASH_ALGORITHM_SHA1);
  chunk->set_truncated(s.truncated);
  cima::ImaLogWriter writer;
  std::string data;
  for (size_t i = 0; i < s.sent && i < s.records.size(); ++i) {
    writer.Append(s.records[i], &data, s.format);
  }
  chunk->set_data(data);
  ev.set_boot_log(s.boot_log);
  std::string out;
  ev.SerializeToString(&out);
  return out;
}

std::string CEscapeLines(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); i += 72) {
    absl::StrAppend(&out, "    \"", absl::CEscape(text.substr(i, 72)), "\"\n");
  }
  return out;
}

std::string InputsInc(const Bytes& aik_public, const std::string& policy) {
  return absl::StrCat(
      "// Generated by vouch-fuzz-seeds (fuzz/seedgen): do not edit; run\n"
      "// build/release/bin/vouch-fuzz-seeds to remake it with the seeds.\n"
      "// TPM2B_PUBLIC of the software AIK in fuzz/seedgen/aik-key.pem.\n"
      "inline constexpr char kEvidenceAikPublicHex[] =\n",
      CEscapeLines(HexEncode(aik_public)),
      "    ;\n"
      "// The runtime policy the seeds' IMA logs were written for.\n"
      "inline constexpr char kEvidenceRuntimePolicy[] =\n",
      CEscapeLines(policy), "    ;\n");
}

}  // namespace

absl::Status CheckSeedOutcome(
    const std::optional<core::attest::EvidenceOutcome>& outcome,
    const SeedExpectation& want) {
  if (!outcome.has_value()) {
    return absl::FailedPreconditionError("refused by ValidateEvidence");
  }
  std::vector<std::string> got;
  std::set<v1::FailureCode> codes;
  for (const v1::Failure& f : outcome->failures) {
    codes.insert(f.code());
    got.push_back(
        absl::StrCat(v1::FailureCode_Name(f.code()), " (", f.detail(), ")"));
  }
  const std::string what =
      absl::StrCat("kind ", static_cast<int>(outcome->kind), ", passed ",
                   outcome->passed, ", IMA at ", outcome->ima.next_entry_index,
                   ", failures: ", absl::StrJoin(got, "; "));
  if (outcome->kind != want.kind || outcome->passed != want.passed ||
      (want.kind == Kind::kVerdict &&
       outcome->ima.next_entry_index != want.ima_next_entry)) {
    return absl::FailedPreconditionError(what);
  }
  for (v1::FailureCode c : want.codes) {
    if (codes.count(c) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no ", v1::FailureCode_Name(c), " among the failures; ", what));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EvidenceSeeds> MakeEvidenceSeeds(const std::string& keys_dir,
                                                const std::string& data_dir) {
  VOUCH_ASSIGN_OR_RETURN(std::string aik_pem,
                         ReadFileUpTo(keys_dir + "/aik-key.pem", 1 << 16));
  VOUCH_ASSIGN_OR_RETURN(std::string ima_pem,
                         ReadFileUpTo(keys_dir + "/ima-key.pem", 1 << 16));
  const testing::SoftAik aik = testing::SoftAik::FromPem(aik_pem);
  BioPtr bio(BIO_new_mem_buf(ima_pem.data(), static_cast<int>(ima_pem.size())));
  EvpPkeyPtr ima_key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
          : nullptr);
  if (!ima_key) return absl::InvalidArgumentError("ima-key.pem: no key");
  VOUCH_ASSIGN_OR_RETURN(uint32_t key_id, cima::ImaKeyIdV2(ima_key.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string spki, SpkiDer(ima_key.get()));

  std::map<std::string, std::string> logs;
  for (const char* name :
       {kEvidenceReferenceLog, "keylime/binary_bios_measurements",
        "go-attestation/crypto_agile_eventlog"}) {
    VOUCH_ASSIGN_OR_RETURN(logs[name],
                           ReadFileUpTo(data_dir + "/" + name, kMaxFileBytes));
  }
  const std::string& reference_log = logs[kEvidenceReferenceLog];
  VOUCH_ASSIGN_OR_RETURN(ctpm::PcrBank machine, BootPcrs(reference_log));

  // The machine's IMA log: every kind of entry the policy allows.
  std::string pcrs0_9;
  for (uint32_t pcr = 0; pcr <= 9; ++pcr)
    absl::StrAppend(&pcrs0_9, AsString(machine[pcr]));
  const Bytes boot_aggregate = Digest(EVP_sha256(), pcrs0_9);
  const std::string dm_table = "dm-0 verity 0 2048 table (generated seed)";
  VOUCH_ASSIGN_OR_RETURN(std::string good_sig,
                         ImaSign(ima_key.get(), FileDigest(4), key_id));
  VOUCH_ASSIGN_OR_RETURN(std::string forged_sig,
                         ImaSign(ima_key.get(), FileDigest(99), key_id));
  VOUCH_ASSIGN_OR_RETURN(std::string stranger_sig,
                         ImaSign(ima_key.get(), FileDigest(12), key_id ^ 1));
  std::vector<cima::ImaRecord> base = {
      Record(cima::ImaTemplate::kImaNg, "boot_aggregate", boot_aggregate),
      Record(cima::ImaTemplate::kImaNg, "/usr/bin/bash", FileDigest(1)),
      Record(cima::ImaTemplate::kImaNg, "/usr/lib/x86_64-linux-gnu/libc.so.6",
             FileDigest(2)),
      Record(cima::ImaTemplate::kIma, "/etc/ld.so.cache",
             FileDigest(3, EVP_sha1()), cima::HashAlg::kSha1),
      Record(cima::ImaTemplate::kImaSig, "/usr/bin/signed-tool", FileDigest(4)),
      Buffer(".ima", spki),
      Buffer("dm_table_load", dm_table),
      Record(cima::ImaTemplate::kImaNg, "/tmp/scratch", FileDigest(7)),
      Record(cima::ImaTemplate::kImaNg, "/usr/bin/python3",
             FileDigest(8, EVP_sha512()), cima::HashAlg::kSha512),
  };
  base[4].extra = good_sig;
  // What a compromised machine adds: one entry per IMA failure kind.
  std::vector<cima::ImaRecord> bad = base;
  auto add_bad = [&](cima::ImaRecord r) { bad.push_back(std::move(r)); };
  add_bad(Record(cima::ImaTemplate::kImaNg, "/usr/bin/evil", FileDigest(9)));
  add_bad(Record(cima::ImaTemplate::kImaNg, "/usr/bin/bash", FileDigest(10)));
  add_bad(
      Record(cima::ImaTemplate::kImaSig, "/usr/bin/forged", FileDigest(11)));
  bad.back().extra = forged_sig;
  add_bad(
      Record(cima::ImaTemplate::kImaSig, "/usr/bin/stranger", FileDigest(12)));
  bad.back().extra = stranger_sig;
  add_bad(
      Record(cima::ImaTemplate::kImaSig, "/usr/bin/badhdr", FileDigest(13)));
  bad.back().extra = std::string("\x03\x02", 2);
  add_bad(Buffer(".builtin_trusted_keys", spki));  // Ignored keyring.
  add_bad(Buffer(".evm", spki));                   // Keyring not allowed.
  add_bad(Record(cima::ImaTemplate::kImaNg, "/var/lib/open-writers",
                 FileDigest(16)));
  bad.back().violation = true;
  add_bad(
      Record(cima::ImaTemplate::kImaNg, "/usr/bin/on-pcr-11", FileDigest(17)));
  bad.back().pcr = 11;

  // The policy those logs were written for.
  nlohmann::json ring;
  ring["pubkeys"] = {absl::Base64Escape(spki)};
  nlohmann::json rings;
  rings["tenant"] = ring.dump();
  nlohmann::json p;
  p["meta"]["version"] = 1;
  p["release"] = 0;
  p["digests"] = {
      {"boot_aggregate", {HexEncode(boot_aggregate)}},
      {"/usr/bin/bash", {HexEncode(FileDigest(1))}},
      {"/usr/lib/x86_64-linux-gnu/libc.so.6", {HexEncode(FileDigest(2))}},
      {"/etc/ld.so.cache", {HexEncode(FileDigest(3, EVP_sha1()))}},
      {"/usr/bin/python3",
       {"sha512:" + HexEncode(FileDigest(8, EVP_sha512()))}},
  };
  p["excludes"] = {"^/tmp/", "^/var/log/.*\\.log$"};
  p["keyrings"] = {{".ima", {HexEncode(Digest(EVP_sha256(), spki))}}};
  p["ima"] = {{"ignored_keyrings", {".builtin_trusted_keys"}},
              {"log_hash_alg", "sha1"},
              {"dm_policy", nullptr}};
  p["ima-buf"] = {
      {"dm_table_load", {HexEncode(Digest(EVP_sha256(), dm_table))}}};
  p["verification-keys"] = rings.dump();
  const std::string policy = p.dump(1);

  EvidenceSeeds out;
  out.inputs_inc = InputsInc(aik.tpm2b_public(), policy);
  VOUCH_ASSIGN_OR_RETURN(std::unique_ptr<EvidenceFixture> fixture,
                         EvidenceFixture::Create(aik.tpm2b_public(), policy,
                                                 AsBytes(reference_log)));

  const size_t n = base.size();
  std::vector<Spec> specs;
  auto spec = [&](std::string name, const std::vector<cima::ImaRecord>& recs,
                  SeedExpectation want) -> Spec& {
    Spec s;
    s.name = std::move(name);
    s.records = recs;
    s.quoted = recs.size();
    s.sent = recs.size();
    s.boot_pcrs = machine;
    s.want = std::move(want);
    specs.push_back(std::move(s));
    return specs.back();
  };
  spec("ima-pass-ascii", base, {Kind::kVerdict, true, {}, n});
  spec("ima-pass-binary", base, {Kind::kVerdict, true, {}, n}).format =
      cima::LogFormat::kBinary;
  spec("ima-failures", bad,
       {Kind::kVerdict,
        false,
        {v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY,
         v1::FAILURE_CODE_IMA_DIGEST_NOT_ALLOWED,
         v1::FAILURE_CODE_IMA_SIGNATURE_INVALID,
         v1::FAILURE_CODE_IMA_BUFFER_NOT_ALLOWED,
         v1::FAILURE_CODE_IMA_LOG_MALFORMED},
        bad.size()});
  spec("ima-failures-binary", bad,
       {Kind::kVerdict,
        false,
        {v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY,
         v1::FAILURE_CODE_IMA_SIGNATURE_INVALID},
        bad.size()})
      .format = cima::LogFormat::kBinary;
  // The agent quotes first and reads the log after: the log runs ahead.
  spec("ima-log-ahead", bad, {Kind::kVerdict, true, {}, 5}).quoted = 5;
  // A chunk cut short of the quoted PCR 10: the verifier asks for more.
  Spec& cut = spec("ima-truncated", base, {Kind::kNeedMore, false, {}, 0});
  cut.sent = 4;
  cut.truncated = true;
  spec("ima-replay-mismatch", base,
       {Kind::kVerdict, false, {v1::FAILURE_CODE_IMA_REPLAY_MISMATCH}, 0})
      .pcr10 = Digest(EVP_sha256(), "no prefix of the log replays to this");
  Spec& reboot = spec("reboot", base, {Kind::kVerdict, true, {}, n});
  reboot.clock = ctpm::ClockInfo{20, 2, 0, true};
  spec("clock-rollback", base,
       {Kind::kVerdict, false, {v1::FAILURE_CODE_CLOCK_ROLLBACK}, 0})
      .clock = ctpm::ClockInfo{3, 1, 0, true};
  // Measured boot: the log the reference state was learned from, then
  // logs of other machines quoted with their own PCRs (policy failures),
  // then the reference log with another machine's PCRs (replay mismatch).
  spec("boot-pass", base, {Kind::kVerdict, true, {}, n}).boot_log =
      reference_log;
  struct Other {
    const char* seed;
    const char* log;
  };
  for (Other o :
       {Other{"boot-other-machine", "keylime/binary_bios_measurements"},
        Other{"boot-crypto-agile", "go-attestation/crypto_agile_eventlog"}}) {
    VOUCH_ASSIGN_OR_RETURN(ctpm::PcrBank pcrs, BootPcrs(logs[o.log]));
    Spec& s = spec(
        o.seed, base,
        {Kind::kVerdict, false, {v1::FAILURE_CODE_BOOT_POLICY_VIOLATION}, n});
    s.boot_log = logs[o.log];
    s.boot_pcrs = pcrs;
  }
  VOUCH_ASSIGN_OR_RETURN(ctpm::PcrBank other,
                         BootPcrs(logs["keylime/binary_bios_measurements"]));
  Spec& mismatch = spec(
      "boot-replay-mismatch", base,
      {Kind::kVerdict, false, {v1::FAILURE_CODE_BOOT_LOG_REPLAY_MISMATCH}, n});
  mismatch.boot_log = reference_log;
  mismatch.boot_pcrs = other;

  for (const Spec& s : specs) {
    std::string bytes = BuildEvidence(aik, s);
    v1::Evidence ev;
    if (!ev.ParseFromString(bytes)) return absl::InternalError("reparse");
    absl::Status ok = CheckSeedOutcome(fixture->Run(ev), s.want);
    if (!ok.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("seed ", s.name, ": ", ok.message()));
    }
    out.corpus[s.name] = std::move(bytes);
    out.expected[s.name] = s.want;
  }
  return out;
}

}  // namespace vouch::fuzzing
