// vouchctl quote verify: checks a TPM quote from files (as tpm2-tools writes
// them) with vouch::core_tpm. Exit 0 valid, 1 invalid (reasons listed), 2
// could not evaluate (unreadable or malformed input, usage).
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/bytes.h"
#include "common/file.h"
#include "core/rule.h"
#include "core/tpm/pcr_file.h"
#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"
#include "tenant/offline_commands.h"

namespace vouch::tenant {
namespace {

namespace ctpm = ::vouch::core::tpm;

// Bound on each input file: TPM structures are < 4 KiB, PCR files < 10 KiB.
constexpr size_t kMaxInputBytes = 64 * 1024;

struct QuoteVerifyArgs {
  std::string ak;
  std::string message;
  std::string signature;
  std::string nonce;
  std::string pcrs;
  std::string pcrs_format = "serialized";
  std::string hash_algs = "sha256,sha384";
  std::string require;
  bool json = false;
};

QuoteVerifyArgs& ParsedQuoteVerifyArgs() {
  static QuoteVerifyArgs* args = new QuoteVerifyArgs();
  return *args;
}

CLI::App* quote_verify_cmd = nullptr;

int QuoteCannotEvaluate(const std::string& what) {
  std::cerr << "vouchctl quote verify: " << what << "\n";
  return 2;
}

struct Outcome {
  core::Verdict verdict;
  ctpm::QuoteResult result;
  std::vector<std::string> notes;
  std::string aik_name;
  ctpm::PcrValues pcrs;
};

void QuotePrint(const Outcome& o, bool json) {
  const bool valid = o.verdict.passed();
  if (json) {
    nlohmann::json j;
    j["valid"] = valid;
    j["failures"] = nlohmann::json::array();
    for (const core::Failure& f : o.verdict.failures()) {
      j["failures"].push_back({{"rule", std::string(core::RuleName(f.rule))},
                               {"detail", f.detail}});
    }
    j["notes"] = o.notes;
    j["aik_name"] = o.aik_name;
    j["clock"] = {{"clock", o.result.clock.clock},
                  {"reset_count", o.result.clock.reset_count},
                  {"restart_count", o.result.clock.restart_count},
                  {"safe", o.result.clock.safe}};
    j["pcr_selection"] = ctpm::SelectionText(o.result.selection);
    nlohmann::json pcrs = nlohmann::json::object();
    for (const auto& [alg, bank] : o.pcrs) {
      for (const auto& [pcr, value] : bank) {
        pcrs[ctpm::HashName(alg)][std::to_string(pcr)] = HexEncode(value);
      }
    }
    j["pcrs"] = pcrs;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "quote: " << (valid ? "VALID" : "INVALID") << "\n";
  for (const core::Failure& f : o.verdict.failures()) {
    std::cout << "  FAIL " << core::RuleName(f.rule) << ": " << f.detail
              << "\n";
  }
  for (const std::string& n : o.notes) std::cout << "  note: " << n << "\n";
  std::cout << "  pcr selection: " << ctpm::SelectionText(o.result.selection)
            << "\n  clock: " << o.result.clock.clock
            << " reset_count: " << o.result.clock.reset_count
            << " restart_count: " << o.result.clock.restart_count
            << " safe: " << (o.result.clock.safe ? 1 : 0) << "\n";
  if (!o.aik_name.empty()) std::cout << "  aik name: " << o.aik_name << "\n";
}

absl::StatusOr<std::string> ReadInput(const std::string& path,
                                      const char* what) {
  absl::StatusOr<std::string> text = ReadFileUpTo(path, kMaxInputBytes);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(what, ": ", text.status().message()));
  }
  return text;
}

int QuoteRunVerify(bool json) {
  const QuoteVerifyArgs& a = ParsedQuoteVerifyArgs();
  Outcome o;
  absl::StatusOr<std::string> ak = ReadInput(a.ak, "--ak");
  absl::StatusOr<std::string> msg = ReadInput(a.message, "--message");
  absl::StatusOr<std::string> sig = ReadInput(a.signature, "--signature");
  for (const auto* s : {&ak, &msg, &sig}) {
    if (!s->ok())
      return QuoteCannotEvaluate(std::string(s->status().message()));
  }
  absl::StatusOr<Bytes> nonce = HexDecode(a.nonce);
  if (!nonce.ok()) {
    return QuoteCannotEvaluate(
        absl::StrCat("--nonce: ", nonce.status().message()));
  }
  ctpm::QuotePolicy policy;
  policy.allowed_hash_algs.clear();
  for (absl::string_view name : absl::StrSplit(a.hash_algs, ',')) {
    absl::StatusOr<TPMI_ALG_HASH> alg = ctpm::HashFromName(std::string(name));
    if (!alg.ok()) {
      return QuoteCannotEvaluate(
          absl::StrCat("--hash-algs: ", alg.status().message()));
    }
    policy.allowed_hash_algs.push_back(*alg);
  }
  if (!a.require.empty()) {
    absl::StatusOr<TPML_PCR_SELECTION> want =
        ctpm::ParsePcrSelectionText(a.require);
    if (!want.ok()) {
      return QuoteCannotEvaluate(
          absl::StrCat("--require-pcrs: ", want.status().message()));
    }
    policy.required_selection = *want;
  }

  // The AIK: PEM (SubjectPublicKeyInfo) or TPM2B_PUBLIC.
  const bool pem = absl::StrContains(*ak, "-----BEGIN");
  absl::StatusOr<std::unique_ptr<ctpm::AikVerifier>> aik =
      pem ? ctpm::AikVerifier::FromPem(*ak)
          : ctpm::AikVerifier::Create(AsBytes(*ak));
  if (!aik.ok()) {
    return QuoteCannotEvaluate(absl::StrCat("--ak: ", aik.status().message()));
  }
  if (pem) {
    o.notes.push_back(
        "AIK given as PEM: its TPM attributes (restricted, fixedTPM...) "
        "are not known and were not checked");
  } else {
    o.aik_name = HexEncode((*aik)->name());
    o.verdict = (*aik)->admission();  // Complete: all rules ran.
  }

  // PCR values: tpm2-tools' serialized file, or raw values in the quote's
  // selection order.
  const ctpm::PcrValues* values = nullptr;
  if (!a.pcrs.empty()) {
    absl::StatusOr<std::string> file = ReadInput(a.pcrs, "--pcrs");
    if (!file.ok())
      return QuoteCannotEvaluate(std::string(file.status().message()));
    if (a.pcrs_format == "serialized") {
      absl::StatusOr<ctpm::Tpm2ToolsPcrs> parsed =
          ctpm::ParseTpm2ToolsPcrs(AsBytes(*file));
      if (!parsed.ok()) {
        return QuoteCannotEvaluate(
            absl::StrCat("--pcrs: ", parsed.status().message()));
      }
      o.pcrs = std::move(parsed->values);
    } else {
      absl::StatusOr<TPMS_ATTEST> attest = ctpm::ParseAttest(AsBytes(*msg));
      if (!attest.ok()) {
        return QuoteCannotEvaluate(
            absl::StrCat("--message: ", attest.status().message()));
      }
      absl::StatusOr<ctpm::PcrValues> parsed = ctpm::ParsePcrValuesForSelection(
          AsBytes(*file), attest->attested.quote.pcrSelect);
      if (attest->type != TPM2_ST_ATTEST_QUOTE || !parsed.ok()) {
        return QuoteCannotEvaluate(
            absl::StrCat("--pcrs: ", parsed.ok() ? "the message is not a quote"
                                                 : parsed.status().message()));
      }
      o.pcrs = *std::move(parsed);
    }
    values = &o.pcrs;
  }

  ctpm::QuoteEvidence evidence{AsBytes(*msg), AsBytes(*sig), *nonce, values,
                               std::nullopt};
  absl::StatusOr<ctpm::QuoteResult> result =
      (*aik)->VerifyQuote(evidence, policy);
  if (!result.ok())
    return QuoteCannotEvaluate(std::string(result.status().message()));
  o.result = *result;
  core::Verdict quote_verdict;
  for (const core::Failure& f : result->verdict.failures()) {
    // Without --pcrs there are no values to compare with pcrDigest (as with
    // tpm2_checkquote): that one rule is reported as not checked.
    if (values == nullptr && f.rule == core::Rule::kQuotePcrValues) continue;
    quote_verdict.AddFailure(f.rule, f.detail);
  }
  if (values == nullptr) {
    o.notes.push_back("no --pcrs given: pcrDigest was not checked");
  }
  quote_verdict.MarkComplete();
  if (pem) {
    o.verdict = quote_verdict;
  } else {
    o.verdict.Merge(quote_verdict);
  }
  QuotePrint(o, json);
  return o.verdict.passed() ? 0 : 1;
}

}  // namespace

void AddQuoteCommands(CLI::App& cli) {
  CLI::App* quote = cli.add_subcommand("quote", "Offline TPM quote tools");
  quote->require_subcommand(1);
  quote_verify_cmd = quote->add_subcommand(
      "verify",
      "Verify a TPM2_Quote from files (tpm2_quote -m -s -o); exit 0 valid, "
      "1 invalid, 2 could not evaluate");
  QuoteVerifyArgs& a = ParsedQuoteVerifyArgs();
  quote_verify_cmd
      ->add_option("--ak", a.ak,
                   "AIK public key: TPM2B_PUBLIC (tpm2_createak -u, "
                   "tpm2_readpublic -o) or PEM")
      ->required();
  quote_verify_cmd
      ->add_option("--message", a.message, "TPMS_ATTEST (tpm2_quote -m)")
      ->required();
  quote_verify_cmd
      ->add_option("--signature", a.signature,
                   "TPMT_SIGNATURE (tpm2_quote -s, default tss format)")
      ->required();
  quote_verify_cmd->add_option("--nonce", a.nonce, "The issued nonce, hex")
      ->required();
  quote_verify_cmd->add_option("--pcrs", a.pcrs, "PCR values (tpm2_quote -o)");
  quote_verify_cmd
      ->add_option("--pcrs-format", a.pcrs_format,
                   "serialized (tpm2-tools default) or values (-F values)")
      ->check(CLI::IsMember({"serialized", "values"}));
  quote_verify_cmd
      ->add_option("--hash-algs", a.hash_algs,
                   "Allowed hash algorithms (signature and PCR banks); "
                   "SHA-1 only when listed")
      ->capture_default_str();
  quote_verify_cmd->add_option("--require-pcrs", a.require,
                               "PCRs the quote must cover, e.g. sha256:0,1,7");
  quote_verify_cmd->add_flag("--json", a.json, "JSON output");
}

std::optional<int> RunQuoteCommands(AppContext& ctx) {
  if (quote_verify_cmd == nullptr || !quote_verify_cmd->parsed())
    return std::nullopt;
  const bool json = ParsedQuoteVerifyArgs().json ||
                    ctx.config.GetString("client", "output") == "json";
  return QuoteRunVerify(json);
}

}  // namespace vouch::tenant
