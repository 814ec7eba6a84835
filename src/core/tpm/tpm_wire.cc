#include "core/tpm/tpm_wire.h"

#include <tss2/tss2_mu.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"

namespace vouch::core::tpm {
namespace {

// Runs a tss2-mu unmarshaller over the whole of `bytes`: any error, or bytes
// left over, is kInvalidArgument naming `what` and the offset reached.
template <typename T, typename Fn>
absl::StatusOr<T> UnmarshalAll(ByteSpan bytes, Fn unmarshal, const char* what) {
  if (bytes.size() > kMaxTpmStructBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", bytes.size(), " bytes is more than the ",
                     kMaxTpmStructBytes, " accepted"));
  }
  T out{};
  size_t offset = 0;
  const TSS2_RC rc = unmarshal(bytes.data(), bytes.size(), &offset, &out);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: malformed at or after byte %d of %d (tss2-mu rc 0x%x)", what,
        offset, bytes.size(), rc));
  }
  if (offset != bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d trailing bytes after the structure at byte %d",
                        what, bytes.size() - offset, offset));
  }
  return out;
}

uint16_t ReadBe16(ByteSpan b) {
  return static_cast<uint16_t>(b[0] << 8 | b[1]);
}

struct HashInfo {
  TPMI_ALG_HASH alg;
  const char* name;
  size_t size;
};
constexpr std::array<HashInfo, 4> kHashes{{
    {TPM2_ALG_SHA1, "sha1", 20},
    {TPM2_ALG_SHA256, "sha256", 32},
    {TPM2_ALG_SHA384, "sha384", 48},
    {TPM2_ALG_SHA512, "sha512", 64},
}};

const HashInfo* FindHash(TPMI_ALG_HASH alg) {
  for (const HashInfo& h : kHashes) {
    if (h.alg == alg) return &h;
  }
  return nullptr;
}

// EVP_MD_fetch once per algorithm; the objects live for the process (OpenSSL
// reference-counts them; a fetched EVP_MD is safe to share across threads).
struct FetchedMds {
  std::array<EVP_MD*, kHashes.size()> mds{};
  FetchedMds() {
    for (size_t i = 0; i < kHashes.size(); ++i) {
      mds[i] = EVP_MD_fetch(nullptr, kHashes[i].name, nullptr);
    }
  }
  ~FetchedMds() {
    for (EVP_MD* md : mds) EVP_MD_free(md);
  }
};

}  // namespace

ByteSpan AttestBody(ByteSpan bytes) {
  // A TPMS_ATTEST starts with TPM_GENERATED_VALUE (0xff544347); a TPM2B_ATTEST
  // starts with its size, which is then the rest of the buffer (and never
  // 0xff54, as we accept at most kMaxTpmStructBytes).
  if (bytes.size() >= 2 && ReadBe16(bytes) == bytes.size() - 2) {
    bytes.remove_prefix(2);
  }
  return bytes;
}

absl::StatusOr<TPMS_ATTEST> ParseAttest(ByteSpan bytes) {
  return UnmarshalAll<TPMS_ATTEST>(
      AttestBody(bytes), Tss2_MU_TPMS_ATTEST_Unmarshal, "TPMS_ATTEST");
}

absl::StatusOr<TPMT_SIGNATURE> ParseSignature(ByteSpan bytes) {
  return UnmarshalAll<TPMT_SIGNATURE>(bytes, Tss2_MU_TPMT_SIGNATURE_Unmarshal,
                                      "TPMT_SIGNATURE");
}

absl::StatusOr<PublicArea> ParseTpmtPublic(ByteSpan tpmt_public) {
  VOUCH_ASSIGN_OR_RETURN(
      TPMT_PUBLIC area,
      UnmarshalAll<TPMT_PUBLIC>(tpmt_public, Tss2_MU_TPMT_PUBLIC_Unmarshal,
                                "TPMT_PUBLIC"));
  if (area.type != TPM2_ALG_RSA && area.type != TPM2_ALG_ECC) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "TPMT_PUBLIC: type 0x%04x is not RSA or ECC", area.type));
  }
  return PublicArea{area, Bytes(tpmt_public.begin(), tpmt_public.end())};
}

absl::StatusOr<PublicArea> ParsePublic(ByteSpan tpm2b_public) {
  if (tpm2b_public.size() < 2) {
    return absl::InvalidArgumentError("TPM2B_PUBLIC: shorter than its size");
  }
  const size_t size = ReadBe16(tpm2b_public);
  if (size != tpm2b_public.size() - 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("TPM2B_PUBLIC: size field says %d bytes but %d follow",
                        size, tpm2b_public.size() - 2));
  }
  return ParseTpmtPublic(tpm2b_public.subspan(2));
}

absl::StatusOr<Bytes> MarshalPublic(const TPMT_PUBLIC& public_area) {
  TPM2B_PUBLIC wrapped{};
  wrapped.publicArea = public_area;
  Bytes out(sizeof(TPM2B_PUBLIC));
  size_t offset = 0;
  const TSS2_RC rc =
      Tss2_MU_TPM2B_PUBLIC_Marshal(&wrapped, out.data(), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrFormat("TPM2B_PUBLIC: cannot marshal (rc 0x%x)", rc));
  }
  out.resize(offset);
  return out;
}

absl::StatusOr<TPML_PCR_SELECTION> ParsePcrSelection(ByteSpan bytes) {
  return UnmarshalAll<TPML_PCR_SELECTION>(
      bytes, Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION");
}

Bytes MarshalPcrSelection(const TPML_PCR_SELECTION& selection) {
  Bytes out(sizeof(TPML_PCR_SELECTION));
  size_t offset = 0;
  if (Tss2_MU_TPML_PCR_SELECTION_Marshal(&selection, out.data(), out.size(),
                                         &offset) != TSS2_RC_SUCCESS) {
    return {};
  }
  out.resize(offset);
  return out;
}

absl::StatusOr<Bytes> ObjectName(const PublicArea& public_area) {
  const TPMI_ALG_HASH alg = public_area.public_area.nameAlg;
  VOUCH_ASSIGN_OR_RETURN(Bytes digest, Digest(alg, public_area.tpmt_bytes));
  Bytes name{static_cast<uint8_t>(alg >> 8), static_cast<uint8_t>(alg & 0xff)};
  name.insert(name.end(), digest.begin(), digest.end());
  return name;
}

const EVP_MD* HashMd(TPMI_ALG_HASH alg) {
  static const FetchedMds* const fetched = new FetchedMds();
  for (size_t i = 0; i < kHashes.size(); ++i) {
    if (kHashes[i].alg == alg) return fetched->mds[i];
  }
  return nullptr;
}

size_t HashSize(TPMI_ALG_HASH alg) {
  const HashInfo* h = FindHash(alg);
  return h == nullptr ? 0 : h->size;
}

std::string HashName(TPMI_ALG_HASH alg) {
  const HashInfo* h = FindHash(alg);
  return h == nullptr ? absl::StrFormat("0x%04x", alg) : std::string(h->name);
}

absl::StatusOr<TPMI_ALG_HASH> HashFromName(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const HashInfo& h : kHashes) {
    if (lower == h.name) return h.alg;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown hash algorithm '", name,
                   "' (expected sha1, sha256, sha384 or sha512)"));
}

absl::StatusOr<Bytes> Digest(TPMI_ALG_HASH alg, ByteSpan data) {
  const EVP_MD* md = HashMd(alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash algorithm ", HashName(alg), " is not supported"));
  }
  Bytes out(EVP_MD_get_size(md));
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) !=
      1) {
    return absl::InternalError(
        absl::StrCat("EVP_Digest failed: ", DrainOpenSslErrors()));
  }
  out.resize(len);
  return out;
}

absl::Status SelectPcr(TPML_PCR_SELECTION& selection, TPMI_ALG_HASH alg,
                       uint32_t pcr) {
  if (pcr > 23) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR ", pcr, " is not a PCR 0..23"));
  }
  uint32_t b = 0;
  while (b < selection.count && b < TPM2_NUM_PCR_BANKS &&
         selection.pcrSelections[b].hash != alg) {
    ++b;
  }
  if (b == selection.count) {
    if (selection.count >= TPM2_NUM_PCR_BANKS) {
      return absl::InvalidArgumentError("PCR selection: too many banks");
    }
    TPMS_PCR_SELECTION& s = selection.pcrSelections[selection.count++];
    s = TPMS_PCR_SELECTION{};
    s.hash = alg;
    s.sizeofSelect = 3;  // PCRs 0..23 (TCG PC Client PTP).
  }
  TPMS_PCR_SELECTION& s = selection.pcrSelections[b];
  if (s.sizeofSelect < 3) s.sizeofSelect = 3;
  s.pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  return absl::OkStatus();
}

bool IsPcrSelected(const TPML_PCR_SELECTION& selection, TPMI_ALG_HASH alg,
                   uint32_t pcr) {
  for (uint32_t b = 0; b < selection.count && b < TPM2_NUM_PCR_BANKS; ++b) {
    const TPMS_PCR_SELECTION& s = selection.pcrSelections[b];
    if (s.hash == alg && pcr / 8 < s.sizeofSelect &&
        pcr / 8 < TPM2_PCR_SELECT_MAX &&
        ((s.pcrSelect[pcr / 8] >> (pcr % 8)) & 1)) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<TPML_PCR_SELECTION> ParsePcrSelectionText(
    absl::string_view text) {
  TPML_PCR_SELECTION out{};
  if (text.empty()) {
    return absl::InvalidArgumentError("PCR selection: empty");
  }
  for (absl::string_view bank : absl::StrSplit(text, '+')) {
    const size_t colon = bank.find(':');
    if (colon == absl::string_view::npos || colon + 1 == bank.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PCR selection '", bank, "': expected <hash>:<pcr>[,<pcr>...]"));
    }
    VOUCH_ASSIGN_OR_RETURN(TPMI_ALG_HASH alg,
                           HashFromName(std::string(bank.substr(0, colon))));
    if (out.count == TPM2_NUM_PCR_BANKS) {
      return absl::InvalidArgumentError("PCR selection: too many banks");
    }
    for (uint32_t b = 0; b < out.count; ++b) {
      if (out.pcrSelections[b].hash == alg) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PCR selection: bank ", HashName(alg), " given twice"));
      }
    }
    TPMS_PCR_SELECTION& s = out.pcrSelections[out.count++];
    s.hash = alg;
    s.sizeofSelect = 3;  // An empty bank is still listed.
    for (absl::string_view item : absl::StrSplit(bank.substr(colon + 1), ',')) {
      uint32_t pcr = 0;
      if (!absl::SimpleAtoi(item, &pcr) || pcr > 23) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PCR selection '", bank, "': '", item, "' is not a PCR 0..23"));
      }
      VOUCH_RETURN_IF_ERROR(SelectPcr(out, alg, pcr));
    }
  }
  return out;
}

std::string SelectionText(const TPML_PCR_SELECTION& selection) {
  std::vector<std::string> banks;
  TPMI_ALG_HASH current = TPM2_ALG_NULL;
  std::vector<std::string> pcrs;
  auto flush = [&] {
    if (current != TPM2_ALG_NULL) {
      banks.push_back(
          absl::StrCat(HashName(current), ":", absl::StrJoin(pcrs, ",")));
    }
    pcrs.clear();
  };
  for (uint32_t b = 0; b < selection.count && b < TPM2_NUM_PCR_BANKS; ++b) {
    flush();
    current = selection.pcrSelections[b].hash;
    TPML_PCR_SELECTION one{};
    one.count = 1;
    one.pcrSelections[0] = selection.pcrSelections[b];
    (void)ForEachSelectedPcr(one, [&](TPMI_ALG_HASH, uint32_t pcr) {
      pcrs.push_back(absl::StrCat(pcr));
      return absl::OkStatus();
    });
  }
  flush();
  return absl::StrJoin(banks, "+");
}

}  // namespace vouch::core::tpm
