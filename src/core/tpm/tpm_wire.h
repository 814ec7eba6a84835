// File: core/tpm/tpm_wire.h
// TPM 2.0 wire structures as the agent sends them (TPMS_ATTEST, TPMT_SIGNATURE,
// TPM2B_PUBLIC, TPML_PCR_SELECTION), unmarshalled with tss2-mu, plus object
// Names and the hash algorithms Vouch accepts. Inputs are untrusted: every
// parser is bounded by the TPM 2.0 Part 2 maximum sizes, rejects trailing
// bytes, and answers kInvalidArgument. Pure functions; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(TPMS_ATTEST attest, ParseAttest(quote_bytes));
#ifndef VOUCH_CORE_TPM_TPM_WIRE_H_
#define VOUCH_CORE_TPM_TPM_WIRE_H_

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/bytes.h"

namespace vouch::core::tpm {

// Upper bound on any single TPM structure we accept (a TPMS_ATTEST or
// TPM2B_PUBLIC is well under 1 KiB; TPM 2.0 Part 2 caps TPM2B buffers far
// lower than this).
inline constexpr size_t kMaxTpmStructBytes = 4096;

// TPM 2.0 Part 2, 10.12.8 TPMS_ATTEST, from its marshalled bytes (what
// TPM2_Quote returns inside TPM2B_ATTEST, and what `tpm2_quote -m` writes).
// Also accepts the TPM2B_ATTEST form (a UINT16 size, then the structure).
absl::StatusOr<TPMS_ATTEST> ParseAttest(ByteSpan bytes);
// The TPMS_ATTEST bytes inside `bytes` (the signed message): `bytes` itself,
// or without the size prefix when it is a TPM2B_ATTEST.
ByteSpan AttestBody(ByteSpan bytes);

// TPM 2.0 Part 2, 11.3.4 TPMT_SIGNATURE (what `tpm2_quote -s` writes).
absl::StatusOr<TPMT_SIGNATURE> ParseSignature(ByteSpan bytes);

// A public area together with the exact bytes of its TPMT_PUBLIC (the Name is
// the hash of those bytes, TPM 2.0 Part 1, 16 "Names").
struct PublicArea {
  TPMT_PUBLIC public_area;
  Bytes tpmt_bytes;
};

// TPM 2.0 Part 2, 12.2.5 TPM2B_PUBLIC (`tpm2_createak -u`, `tpm2_readpublic
// -o`). Only RSA and ECC keys are accepted.
absl::StatusOr<PublicArea> ParsePublic(ByteSpan tpm2b_public);
// The same from a TPMT_PUBLIC without the size prefix.
absl::StatusOr<PublicArea> ParseTpmtPublic(ByteSpan tpmt_public);
// TPM2B_PUBLIC bytes of a public area (marshalled with tss2-mu).
absl::StatusOr<Bytes> MarshalPublic(const TPMT_PUBLIC& public_area);

// TPM 2.0 Part 2, 10.9.7 TPML_PCR_SELECTION.
absl::StatusOr<TPML_PCR_SELECTION> ParsePcrSelection(ByteSpan bytes);
Bytes MarshalPcrSelection(const TPML_PCR_SELECTION& selection);
// Adds PCR `pcr` (0..23) of bank `alg` to `selection`, appending the bank
// (sizeofSelect 3, TCG PC Client PTP) when it is not there yet: the one
// way Vouch builds a selection. kInvalidArgument for a PCR over 23 or a
// ninth bank.
absl::Status SelectPcr(TPML_PCR_SELECTION& selection, TPMI_ALG_HASH alg,
                       uint32_t pcr);
// True when PCR `pcr` of bank `alg` is in `selection`.
bool IsPcrSelected(const TPML_PCR_SELECTION& selection, TPMI_ALG_HASH alg,
                   uint32_t pcr);

// Calls fn(alg, pcr), which returns absl::Status, for every selected PCR in
// the order a TPM concatenates them (TPM 2.0 Part 3, 18.4: banks in list
// order, PCR numbers ascending); stops at the first error and returns it.
// Counts are clamped to TPM2_NUM_PCR_BANKS banks of TPM2_PCR_SELECT_MAX bytes.
template <typename Fn>
absl::Status ForEachSelectedPcr(const TPML_PCR_SELECTION& selection, Fn fn) {
  const uint32_t banks = selection.count < TPM2_NUM_PCR_BANKS
                             ? selection.count
                             : TPM2_NUM_PCR_BANKS;
  for (uint32_t b = 0; b < banks; ++b) {
    const TPMS_PCR_SELECTION& s = selection.pcrSelections[b];
    const uint32_t bytes = s.sizeofSelect < TPM2_PCR_SELECT_MAX
                               ? s.sizeofSelect
                               : TPM2_PCR_SELECT_MAX;
    for (uint32_t pcr = 0; pcr < 8 * bytes; ++pcr) {
      if (((s.pcrSelect[pcr / 8] >> (pcr % 8)) & 1) == 0) continue;
      absl::Status status = fn(s.hash, pcr);
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// tpm2-tools' PCR list syntax: "sha256:0,1,16+sha1:2" (banks in order, PCRs
// 0..23, each bank once). kInvalidArgument naming the bad part.
absl::StatusOr<TPML_PCR_SELECTION> ParsePcrSelectionText(
    absl::string_view text);
// The same syntax back ("sha256:0,1,16+sha1:2"); "" for an empty selection.
std::string SelectionText(const TPML_PCR_SELECTION& selection);

// TPM 2.0 Part 1, 16: Name = nameAlg (UINT16, big-endian) || H_nameAlg(
// TPMT_PUBLIC). kInvalidArgument for a nameAlg Vouch does not hash.
absl::StatusOr<Bytes> ObjectName(const PublicArea& public_area);

// The hash algorithms Vouch knows (TPM_ALG_SHA1/SHA256/SHA384/SHA512).
// nullptr for any other; the EVP_MD is fetched once and shared.
const EVP_MD* HashMd(TPMI_ALG_HASH alg);
// Digest size in bytes; 0 for an unknown algorithm.
size_t HashSize(TPMI_ALG_HASH alg);
// "sha256", or "0x000b" for an unknown algorithm.
std::string HashName(TPMI_ALG_HASH alg);
// Parses "sha1", "sha256", "sha384", "sha512" (as in tpm2-tools).
absl::StatusOr<TPMI_ALG_HASH> HashFromName(const std::string& name);

// One-shot digest with a known algorithm; kInvalidArgument otherwise.
absl::StatusOr<Bytes> Digest(TPMI_ALG_HASH alg, ByteSpan data);

}  // namespace vouch::core::tpm

#endif  // VOUCH_CORE_TPM_TPM_WIRE_H_
