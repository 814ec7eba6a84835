// File: core/attest/wire.h
// Conversions between the protocol's messages (proto/vouch/v1) and the TPM
// structures core verifies with. Everything converted from a peer's message
// is untrusted: out-of-range values are kInvalidArgument, never clamped in
// silence. Pure functions; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(core::tpm::PcrValues pcrs,
//                          PcrValuesFromProto(evidence.pcr_values()));
//   *challenge.mutable_pcr_selection() = PcrSelectionToProto(selection);
#ifndef VOUCH_CORE_ATTEST_WIRE_H_
#define VOUCH_CORE_ATTEST_WIRE_H_

#include <tss2/tss2_tpm2_types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/tpm/quote.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "vouch/v1/attestation.pb.h"
#include "vouch/v1/common.pb.h"

namespace vouch::core::attest {

// The v1 hash enum <-> TPM_ALG_ID (common.proto: same numbers); nullopt for
// an algorithm Vouch does not hash with.
std::optional<TPMI_ALG_HASH> TpmHashAlg(v1::HashAlgorithm alg);

// A Challenge's selection as a TPML_PCR_SELECTION: known banks only,
// PCRs 0..23, each bank once, at most 8 banks.
absl::StatusOr<TPML_PCR_SELECTION> PcrSelectionFromProto(
    const v1::PcrSelection& selection);
v1::PcrSelection PcrSelectionToProto(const TPML_PCR_SELECTION& selection);

// Evidence.pcr_values: known banks, each once; PCRs 0..23, each once, with
// digests of the bank's size; at most 8 banks of 24.
absl::StatusOr<tpm::PcrValues> PcrValuesFromProto(
    const google::protobuf::RepeatedPtrField<v1::PcrBankValues>& banks);
void PcrValuesToProto(
    const tpm::PcrValues& values,
    google::protobuf::RepeatedPtrField<v1::PcrBankValues>* banks);

// google.protobuf Timestamp / Duration (nanos kept non-negative before
// 1970). FromProto clamps nothing: the caller bounds what it accepts.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
void SetDuration(absl::Duration d, google::protobuf::Duration* out);
absl::Time FromProto(const google::protobuf::Timestamp& t);
absl::Duration FromProto(const google::protobuf::Duration& d);

// A verdict's failures as the stores keep them (agent rows, records,
// events, shadow reports): a serialized vouch.v1.Verdict holding only
// failures and failures_truncated; "" for none. DecodeFailures gives an
// empty Verdict for "" and for bytes that do not parse (the store wrote
// them; nothing is made up).
std::string EncodeFailures(const std::vector<v1::Failure>& failures,
                           bool truncated);
v1::Verdict DecodeFailures(const std::string& stored);

}  // namespace vouch::core::attest

#endif  // VOUCH_CORE_ATTEST_WIRE_H_
