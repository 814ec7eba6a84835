#include "agent/evidence.h"

#include <utility>

#include "common/file.h"
#include "common/logging.h"
#include "core/attest/wire.h"

namespace vouch::agent {
namespace {

// Read, quote, read again: this many tries for the PCRs to hold still.
constexpr int kQuoteAttempts = 5;

}  // namespace

EvidenceBuilder::EvidenceBuilder(TpmOpener open_tpm, EvidenceOptions options,
                                 ImaSource* ima)
    : open_tpm_(std::move(open_tpm)), options_(std::move(options)), ima_(ima) {}

absl::StatusOr<tpm::Tpm*> EvidenceBuilder::Tpm() {
  if (tpm_ == nullptr) {
    absl::StatusOr<std::unique_ptr<tpm::Tpm>> t = open_tpm_();
    if (!t.ok()) return t.status();
    tpm_ = *std::move(t);
  }
  return tpm_.get();
}

absl::StatusOr<BuiltEvidence> EvidenceBuilder::Build(
    const v1::Challenge& challenge) {
  absl::StatusOr<BuiltEvidence> out = BuildWithTpm(challenge);
  if (!options_.keep_tpm_open || !out.ok()) tpm_.reset();
  return out;
}

absl::StatusOr<BuiltEvidence> EvidenceBuilder::BuildWithTpm(
    const v1::Challenge& challenge) {
  BuiltEvidence out;
  v1::Evidence* ev = out.message.mutable_evidence();
  if (absl::Status s = AddQuote(challenge, *ev); !s.ok()) return s;
  // The log is read after the quote: it may run ahead of PCR 10, never
  // behind (the kernel appends before it extends).
  if (absl::Status s = AddIma(challenge, out); !s.ok()) return s;
  if (challenge.want_boot_log()) AddBootLog(*ev);
  return out;
}

absl::Status EvidenceBuilder::AddQuote(const v1::Challenge& ch,
                                       v1::Evidence& ev) {
  absl::StatusOr<tpm::Tpm*> t = Tpm();
  if (!t.ok()) return t.status();
  absl::StatusOr<TPML_PCR_SELECTION> selection =
      core::attest::PcrSelectionFromProto(ch.pcr_selection());
  if (!selection.ok()) return selection.status();
  const TPML_PCR_SELECTION& sel = *selection;
  // The PCRs may change between reading them and quoting (PCR 10 with
  // every measurement): read, quote, read again, and retry until both
  // reads agree, so the values sent are the quoted ones.
  std::optional<tpm::QuoteBlob> quote;
  core::tpm::PcrValues values;
  for (int attempt = 0; attempt < kQuoteAttempts && !quote; ++attempt) {
    absl::StatusOr<core::tpm::PcrValues> before = (*t)->PcrRead(sel);
    if (!before.ok()) return before.status();
    absl::StatusOr<tpm::QuoteBlob> q = (*t)->Quote(AsBytes(ch.nonce()), sel);
    if (!q.ok()) return q.status();
    absl::StatusOr<core::tpm::PcrValues> after = (*t)->PcrRead(sel);
    if (!after.ok()) return after.status();
    if (*before == *after) {
      quote = *std::move(q);
      values = *std::move(after);
    }
  }
  if (!quote) {
    return absl::UnavailableError("PCRs kept changing while quoting");
  }
  ev.set_quote(std::string(AsString(quote->attest)));
  ev.set_signature(std::string(AsString(quote->signature)));
  core::attest::PcrValuesToProto(values, ev.mutable_pcr_values());
  return absl::OkStatus();
}

absl::Status EvidenceBuilder::AddIma(const v1::Challenge& ch,
                                     BuiltEvidence& out) {
  if (!ch.has_ima_from()) return absl::OkStatus();
  v1::ImaLogChunk* chunk =
      out.message.mutable_evidence()->mutable_ima_entries();
  chunk->set_first_index(ch.ima_from());
  chunk->set_template_hash_alg(v1::HASH_ALGORITHM_SHA1);
  chunk->set_format(v1::IMA_LOG_FORMAT_BINARY);
  out.ima_sent_until = ch.ima_from();
  if (ima_ == nullptr) return absl::OkStatus();
  absl::StatusOr<ImaChunk> c =
      ima_->Read(ch.ima_from(), options_.max_ima_chunk_bytes,
                 options_.max_ima_chunk_entries);
  if (absl::IsNotFound(c.status())) return absl::OkStatus();  // No log yet.
  if (!c.ok()) return c.status();
  chunk->set_format(c->binary ? v1::IMA_LOG_FORMAT_BINARY
                              : v1::IMA_LOG_FORMAT_ASCII);
  chunk->set_data(std::move(c->data));
  chunk->set_truncated(c->truncated);
  out.ima_sent_until = ch.ima_from() + c->entries;
  return absl::OkStatus();
}

void EvidenceBuilder::AddBootLog(v1::Evidence& ev) {
  if (options_.boot_log.empty()) return;
  absl::StatusOr<std::string> log =
      ReadFileUpTo(options_.boot_log, options_.max_boot_log_bytes);
  if (log.ok()) {
    ev.set_boot_log(*std::move(log));
  } else {
    Log(LogLevel::kWarning, "boot log unreadable",
        {{"path", options_.boot_log}, {"error", log.status().message()}});
  }
}

}  // namespace vouch::agent
