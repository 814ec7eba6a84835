#include "core/attest/wire.h"

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/status_macros.h"
#include "core/attest/limits.h"
#include "core/tpm/tpm_wire.h"

namespace vouch::core::attest {

std::optional<TPMI_ALG_HASH> TpmHashAlg(v1::HashAlgorithm alg) {
  switch (alg) {
    case v1::HASH_ALGORITHM_SHA1:
      return TPM2_ALG_SHA1;
    case v1::HASH_ALGORITHM_SHA256:
      return TPM2_ALG_SHA256;
    case v1::HASH_ALGORITHM_SHA384:
      return TPM2_ALG_SHA384;
    case v1::HASH_ALGORITHM_SHA512:
      return TPM2_ALG_SHA512;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<TPML_PCR_SELECTION> PcrSelectionFromProto(
    const v1::PcrSelection& selection) {
  if (selection.banks_size() > kMaxPcrBanks) {
    return absl::InvalidArgumentError("pcr_selection: at most 8 banks");
  }
  TPML_PCR_SELECTION out{};
  for (const v1::PcrBankSelection& bank : selection.banks()) {
    std::optional<TPMI_ALG_HASH> alg = TpmHashAlg(bank.hash_alg());
    if (!alg) return absl::InvalidArgumentError("pcr_selection: unknown bank");
    for (uint32_t b = 0; b < out.count; ++b) {
      if (out.pcrSelections[b].hash == *alg) {
        return absl::InvalidArgumentError("pcr_selection: bank listed twice");
      }
    }
    if (out.count >= TPM2_NUM_PCR_BANKS) {
      return absl::InvalidArgumentError("pcr_selection: too many banks");
    }
    // The bank is listed even when it selects no PCR.
    TPMS_PCR_SELECTION& listed = out.pcrSelections[out.count++];
    listed.hash = *alg;
    listed.sizeofSelect = 3;
    if (bank.pcr_indices_size() > kMaxPcrIndex + 1) {
      return absl::InvalidArgumentError("pcr_selection: more than 24 PCRs");
    }
    for (uint32_t pcr : bank.pcr_indices()) {
      VOUCH_RETURN_IF_ERROR(tpm::SelectPcr(out, *alg, pcr));
    }
  }
  return out;
}

v1::PcrSelection PcrSelectionToProto(const TPML_PCR_SELECTION& selection) {
  v1::PcrSelection out;
  for (uint32_t b = 0; b < selection.count && b < TPM2_NUM_PCR_BANKS; ++b) {
    v1::PcrBankSelection* bank = out.add_banks();
    bank->set_hash_alg(
        static_cast<v1::HashAlgorithm>(selection.pcrSelections[b].hash));
    TPML_PCR_SELECTION one{};
    one.count = 1;
    one.pcrSelections[0] = selection.pcrSelections[b];
    (void)tpm::ForEachSelectedPcr(one, [&](TPMI_ALG_HASH, uint32_t pcr) {
      if (pcr <= static_cast<uint32_t>(kMaxPcrIndex)) {
        bank->add_pcr_indices(pcr);
      }
      return absl::OkStatus();
    });
  }
  return out;
}

absl::StatusOr<tpm::PcrValues> PcrValuesFromProto(
    const google::protobuf::RepeatedPtrField<v1::PcrBankValues>& banks) {
  if (banks.size() > kMaxPcrBanks) {
    return absl::InvalidArgumentError("pcr_values: at most 8 banks");
  }
  tpm::PcrValues out;
  for (const v1::PcrBankValues& bank : banks) {
    std::optional<TPMI_ALG_HASH> alg = TpmHashAlg(bank.hash_alg());
    if (!alg || tpm::HashSize(*alg) == 0) {
      return absl::InvalidArgumentError("pcr_values: unsupported bank");
    }
    if (out.count(*alg) != 0) {
      return absl::InvalidArgumentError("pcr_values: bank listed twice");
    }
    tpm::PcrBank& values = out[*alg];
    if (bank.values_size() > kMaxPcrIndex + 1) {
      return absl::InvalidArgumentError("pcr_values: more than 24 PCRs");
    }
    for (const v1::PcrValue& v : bank.values()) {
      if (v.index() > static_cast<uint32_t>(kMaxPcrIndex) ||
          values.count(v.index()) != 0 ||
          v.digest().size() != tpm::HashSize(*alg)) {
        return absl::InvalidArgumentError(
            "pcr_values: bad index, repeated index or wrong digest size");
      }
      values[v.index()] = ToBytes(v.digest());
    }
  }
  return out;
}

void PcrValuesToProto(
    const tpm::PcrValues& values,
    google::protobuf::RepeatedPtrField<v1::PcrBankValues>* banks) {
  for (const auto& [alg, bank] : values) {
    v1::PcrBankValues* b = banks->Add();
    b->set_hash_alg(static_cast<v1::HashAlgorithm>(alg));
    for (const auto& [index, digest] : bank) {
      v1::PcrValue* v = b->add_values();
      v->set_index(index);
      v->set_digest(std::string(AsString(digest)));
    }
  }
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t us = absl::ToUnixMicros(t);
  int64_t seconds = us / 1000000;
  int64_t micros = us % 1000000;
  if (micros < 0) {  // Floor, so nanos stay non-negative.
    micros += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(micros * 1000));
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

std::string EncodeFailures(const std::vector<v1::Failure>& failures,
                           bool truncated) {
  if (failures.empty()) return "";
  v1::Verdict holder;
  for (const v1::Failure& f : failures) *holder.add_failures() = f;
  holder.set_failures_truncated(truncated);
  return holder.SerializeAsString();
}

v1::Verdict DecodeFailures(const std::string& stored) {
  v1::Verdict holder;
  if (!stored.empty() && !holder.ParseFromString(stored)) holder.Clear();
  return holder;
}

}  // namespace vouch::core::attest
