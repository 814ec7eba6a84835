#include "core/tpm/pcr_file.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vouch::core::tpm {
namespace {

constexpr size_t kSelectionBytes = 4 + 16 * 8;
constexpr size_t kDigestListBytes = 4 + 8 * (2 + 64);
constexpr uint32_t kMaxDigestLists = 16;

uint32_t Le32(ByteSpan b, size_t at) {
  return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 |
         uint32_t{b[at + 2]} << 16 | uint32_t{b[at + 3]} << 24;
}
uint16_t Le16(ByteSpan b, size_t at) {
  return static_cast<uint16_t>(b[at] | b[at + 1] << 8);
}

absl::Status CheckSelection(const TPML_PCR_SELECTION& sel) {
  if (sel.count > TPM2_NUM_PCR_BANKS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PCR selection: ", sel.count, " banks; at most ", TPM2_NUM_PCR_BANKS));
  }
  for (uint32_t b = 0; b < sel.count; ++b) {
    const TPMS_PCR_SELECTION& s = sel.pcrSelections[b];
    if (HashSize(s.hash) == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "PCR selection bank %d: unknown hash 0x%04x", b, s.hash));
    }
    if (s.sizeofSelect > TPM2_PCR_SELECT_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PCR selection bank ", b, ": sizeofSelect ", s.sizeofSelect));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tpm2ToolsPcrs> ParseTpm2ToolsPcrs(ByteSpan bytes) {
  if (bytes.size() < kSelectionBytes + 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file: ", bytes.size(),
                     " bytes is shorter than a selection and a count"));
  }
  Tpm2ToolsPcrs out;
  out.selection.count = Le32(bytes, 0);
  for (uint32_t b = 0; b < TPM2_NUM_PCR_BANKS && b < out.selection.count; ++b) {
    const size_t at = 4 + 8 * b;
    TPMS_PCR_SELECTION& s = out.selection.pcrSelections[b];
    s.hash = Le16(bytes, at);
    s.sizeofSelect = bytes[at + 2];
    for (int i = 0; i < 4; ++i) s.pcrSelect[i] = bytes[at + 3 + i];
  }
  if (absl::Status st = CheckSelection(out.selection); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file at byte 0: ", st.message()));
  }
  const uint32_t lists = Le32(bytes, kSelectionBytes);
  if (lists == 0 || lists > kMaxDigestLists) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file at byte ", kSelectionBytes, ": ", lists,
                     " digest lists (expected 1..", kMaxDigestLists, ")"));
  }
  const size_t want = kSelectionBytes + 4 + size_t{lists} * kDigestListBytes;
  if (bytes.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCR file: ", bytes.size(), " bytes; ", lists,
                     " digest lists make ", want));
  }
  // Flatten the digests, then hand them out in selection order.
  std::vector<ByteSpan> digests;
  for (uint32_t l = 0; l < lists; ++l) {
    const size_t at = kSelectionBytes + 4 + l * kDigestListBytes;
    const uint32_t count = Le32(bytes, at);
    if (count > 8) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PCR file at byte ", at, ": digest list of ", count, " (max 8)"));
    }
    for (uint32_t d = 0; d < count; ++d) {
      const size_t dat = at + 4 + d * 66;
      const uint16_t size = Le16(bytes, dat);
      if (size > 64) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PCR file at byte ", dat, ": digest size ", size, " (max 64)"));
      }
      digests.push_back(bytes.subspan(dat + 2, size));
    }
  }
  size_t next = 0;
  absl::Status st = ForEachSelectedPcr(out.selection, [&](TPMI_ALG_HASH alg,
                                                          uint32_t pcr) {
    if (next >= digests.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PCR file: fewer digests (", digests.size(), ") than selected PCRs"));
    }
    const ByteSpan d = digests[next++];
    if (d.size() != HashSize(alg)) {
      return absl::InvalidArgumentError(
          absl::StrCat("PCR file: value for ", HashName(alg), ":", pcr, " has ",
                       d.size(), " bytes"));
    }
    out.values[alg][pcr] = Bytes(d.begin(), d.end());
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (next != digests.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PCR file: ", digests.size(), " digests for ", next, " selected PCRs"));
  }
  return out;
}

absl::StatusOr<PcrValues> ParsePcrValuesForSelection(
    ByteSpan bytes, const TPML_PCR_SELECTION& selection) {
  if (absl::Status st = CheckSelection(selection); !st.ok()) return st;
  PcrValues out;
  size_t at = 0;
  absl::Status st =
      ForEachSelectedPcr(selection, [&](TPMI_ALG_HASH alg, uint32_t pcr) {
        const size_t size = HashSize(alg);
        if (bytes.size() - at < size) {
          return absl::InvalidArgumentError(
              absl::StrCat("PCR values: file ends at byte ", bytes.size(),
                           " before ", HashName(alg), ":", pcr));
        }
        out[alg][pcr] = Bytes(bytes.begin() + at, bytes.begin() + at + size);
        at += size;
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  if (at != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PCR values: ", bytes.size() - at, " bytes after the selected PCRs"));
  }
  return out;
}

}  // namespace vouch::core::tpm
