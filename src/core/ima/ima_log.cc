#include "core/ima/ima_log.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/ima/hex.h"

namespace vouch::core::ima {

absl::string_view TemplateName(ImaTemplate t) {
  switch (t) {
    case ImaTemplate::kIma:
      return "ima";
    case ImaTemplate::kImaNg:
      return "ima-ng";
    case ImaTemplate::kImaSig:
      return "ima-sig";
    case ImaTemplate::kImaBuf:
      return "ima-buf";
  }
  return "?";
}

namespace {

std::optional<ImaTemplate> TemplateFromName(absl::string_view name) {
  if (name == "ima-ng") return ImaTemplate::kImaNg;
  if (name == "ima-sig") return ImaTemplate::kImaSig;
  if (name == "ima-buf") return ImaTemplate::kImaBuf;
  if (name == "ima") return ImaTemplate::kIma;
  return std::nullopt;
}

// Printable form of untrusted bytes for error messages (bounded length).
std::string Shown(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (s.size() > 40) out += "...";
  return out;
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) |
         (static_cast<uint32_t>(u[3]) << 24);
}

bool AllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

absl::Status EntryError(uint64_t index, size_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "IMA log entry ", index, " (byte offset ", offset, "): ", what));
}

// Parses the d-ng field's data "<alg>:\0<digest>" (ima_template_lib.c,
// ima_eventdigest_ng_init) into the entry.
absl::Status ParseDigestNgData(absl::string_view d, ImaEntry* e) {
  size_t colon = d.find(':');
  if (colon == absl::string_view::npos || colon + 1 >= d.size() ||
      d[colon + 1] != '\0') {
    return absl::InvalidArgumentError("d-ng field is not '<alg>:\\0<digest>'");
  }
  absl::string_view alg_name = d.substr(0, colon);
  std::optional<HashAlg> alg = HashAlgFromName(alg_name);
  if (!alg) {
    return absl::InvalidArgumentError(absl::StrCat(
        "file digest algorithm '", Shown(alg_name), "' is not supported"));
  }
  absl::string_view digest = d.substr(colon + 2);
  if (digest.size() != DigestSize(*alg)) {
    return absl::InvalidArgumentError(
        absl::StrCat(HashAlgName(*alg), " file digest has ", digest.size(),
                     " bytes, want ", DigestSize(*alg)));
  }
  e->digest_alg = *alg;
  e->digest_size = digest.size();
  std::memcpy(e->digest, digest.data(), digest.size());
  return absl::OkStatus();
}

}  // namespace

LogFormat DetectLogFormat(absl::string_view data) {
  if (data.empty()) return LogFormat::kAscii;
  unsigned char c = static_cast<unsigned char>(data[0]);
  return (c >= '0' && c <= '9') ? LogFormat::kAscii : LogFormat::kBinary;
}

ImaLogParser::ImaLogParser(absl::string_view data, uint64_t first_index,
                           std::optional<HashAlg> binary_hash_alg,
                           ParseMode mode)
    : data_(data),
      index_(first_index),
      format_(DetectLogFormat(data)),
      binary_hash_alg_(binary_hash_alg),
      mode_(mode) {}

absl::StatusOr<bool> ImaLogParser::Next(ImaEntry* entry) {
  if (pos_ >= data_.size()) return false;
  return format_ == LogFormat::kAscii ? NextAscii(entry) : NextBinary(entry);
}

// ASCII: "<pcr> <template-hash hex> <template> <fields...>\n" as printed by
// ima_ascii_measurements_show (security/integrity/ima/ima_fs.c). Fields are
// separated by one space; the path may itself hold spaces, so for ima-sig
// and ima-buf the last space-separated field is the signature/buffer (which
// may be empty: the line then ends in a space).
namespace {

// The end of the field that starts at `from`: the space right after `a` or
// `b` bytes (its lengths in a well-formed line), else the next space.
inline size_t FieldEnd(absl::string_view line, size_t from, size_t a,
                       size_t b) {
  if (from + a < line.size() && line[from + a] == ' ') return from + a;
  if (from + b < line.size() && line[from + b] == ' ') return from + b;
  return line.find(' ', from);
}

}  // namespace

absl::StatusOr<bool> ImaLogParser::NextAscii(ImaEntry* e) {
  size_t start = pos_;
  const char* base = data_.data() + start;
  size_t avail = data_.size() - start;
  const void* nl = std::memchr(base, '\n', avail);
  size_t line_len =
      nl ? static_cast<size_t>(static_cast<const char*>(nl) - base) : avail;
  absl::string_view line(base, line_len);
  size_t next_pos = start + line_len + (nl ? 1 : 0);
  if (line.empty()) {
    // An empty line is only allowed as trailing garbage at the very end.
    if (next_pos == data_.size()) {
      pos_ = next_pos;
      return false;
    }
    return EntryError(index_, start, "empty line");
  }
  e->index = index_;
  e->offset = start;
  auto fail = [&](absl::string_view what) {
    return EntryError(index_, start, what);
  };

  // PCR index: at most 4 digits, so a short loop instead of a search (the
  // fields below are found from their known lengths for the same reason; a
  // field that is not where a well-formed line has it is searched for, and
  // the hex decoding rejects a space inside a digest).
  size_t sp1 = 0;
  uint32_t pcr = 0;
  for (; sp1 < line.size() && sp1 < 5 && line[sp1] != ' '; ++sp1) {
    char c = line[sp1];
    if (c < '0' || c > '9') {
      sp1 = line.find(' ');
      if (sp1 == absl::string_view::npos || sp1 == 0 || sp1 > 4) break;
      return fail("PCR index is not a decimal number");
    }
    pcr = pcr * 10 + static_cast<uint32_t>(c - '0');
  }
  if (sp1 >= line.size() || line[sp1] != ' ' || sp1 == 0 || sp1 > 4) {
    return fail("PCR index field missing or too long");
  }
  e->pcr = pcr;

  // Template hash: 40 hex digits (SHA-1) in almost every log, 64 in per-bank
  // SHA-256 logs.
  size_t sp2 = FieldEnd(line, sp1 + 1, 40, 64);
  if (sp2 == absl::string_view::npos) {
    return fail("template hash, name and fields missing");
  }
  absl::string_view th = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::optional<HashAlg> th_alg =
      th.size() % 2 == 0 ? HashAlgFromSize(th.size() / 2) : std::nullopt;
  if (!th_alg) {
    return fail(absl::StrCat("template hash has ", th.size(),
                             " hex digits, want 40, 64, 96 or 128"));
  }
  e->template_hash_alg = *th_alg;
  if (mode_ == ParseMode::kFull) {
    if (!DecodeHex(th, e->template_hash)) return fail("template hash not hex");
    e->violation = AllZero(e->template_hash, th.size() / 2);
  } else {
    e->violation = th.find_first_not_of('0') == absl::string_view::npos;
  }

  // Template name.
  size_t sp3 = line.find(' ', sp2 + 1);
  if (sp3 == absl::string_view::npos) return fail("template fields missing");
  absl::string_view tname = line.substr(sp2 + 1, sp3 - sp2 - 1);
  std::optional<ImaTemplate> tmpl = TemplateFromName(tname);
  if (!tmpl) {
    return fail(absl::StrCat("template '", Shown(tname), "' is not supported",
                             " (ima, ima-ng, ima-sig, ima-buf)"));
  }
  e->tmpl = *tmpl;
  absl::string_view rest = line.substr(sp3 + 1);

  // Digest field.
  size_t sp4 = absl::string_view::npos;
  absl::string_view hexdigest;
  if (e->tmpl == ImaTemplate::kIma) {
    // Legacy 'd' field: a bare 20-byte SHA-1 digest.
    e->digest_alg = HashAlg::kSha1;
    sp4 = FieldEnd(rest, 0, 40, 40);
    if (sp4 == absl::string_view::npos) return fail("path field missing");
    hexdigest = rest.substr(0, sp4);
  } else {
    // '<alg>:<hex>': the name is short, its digest size fixes the rest.
    size_t colon = 0;
    while (colon < rest.size() && rest[colon] != ':' && rest[colon] != ' ') {
      ++colon;
    }
    if (colon >= rest.size() || rest[colon] != ':') {
      sp4 = rest.find(' ');
      if (sp4 == absl::string_view::npos) return fail("path field missing");
      return fail("file digest is not '<alg>:<hex>'");
    }
    absl::string_view alg_name = rest.substr(0, colon);
    std::optional<HashAlg> alg = HashAlgFromName(alg_name);
    if (!alg) {
      return fail(absl::StrCat("file digest algorithm '", Shown(alg_name),
                               "' is not supported"));
    }
    e->digest_alg = *alg;
    const size_t hex_len = 2 * DigestSize(*alg);
    sp4 = FieldEnd(rest, colon + 1, hex_len, hex_len);
    if (sp4 == absl::string_view::npos) return fail("path field missing");
    hexdigest = rest.substr(colon + 1, sp4 - colon - 1);
  }
  absl::string_view after = rest.substr(sp4 + 1);
  if (hexdigest.size() != 2 * DigestSize(e->digest_alg)) {
    return fail(absl::StrCat(HashAlgName(e->digest_alg), " file digest has ",
                             hexdigest.size(), " hex digits, want ",
                             2 * DigestSize(e->digest_alg)));
  }
  if (!DecodeHex(hexdigest, e->digest)) return fail("file digest not hex");
  e->digest_size = hexdigest.size() / 2;

  // Path and the optional last field.
  absl::string_view extra_hex;
  if (e->tmpl == ImaTemplate::kImaSig || e->tmpl == ImaTemplate::kImaBuf) {
    size_t last = after.rfind(' ');
    if (last == absl::string_view::npos) {
      return fail(absl::StrCat(TemplateName(e->tmpl),
                               " entry needs a path and a last field"));
    }
    e->path = after.substr(0, last);
    extra_hex = after.substr(last + 1);
  } else {
    e->path = after;
  }
  if (extra_hex.size() % 2 != 0 ||
      extra_hex.size() / 2 > kMaxTemplateDataSize) {
    return fail("signature/buffer field has an odd or excessive length");
  }
  if (e->path.size() > kMaxTemplateDataSize) return fail("path too long");

  if (e->tmpl == ImaTemplate::kImaSig || e->tmpl == ImaTemplate::kImaBuf) {
    extra_.resize(extra_hex.size() / 2);
    if (!DecodeHex(extra_hex, reinterpret_cast<uint8_t*>(extra_.data()))) {
      return fail("signature/buffer field is not hex");
    }
    e->extra = extra_;
  } else {
    e->extra = {};
  }
  if (e->tmpl == ImaTemplate::kIma && e->path.size() > kImaLegacyNameMax) {
    return fail("legacy ima name longer than 255 bytes");
  }
  e->template_data = {};
  if (mode_ == ParseMode::kContentOnly) {
    pos_ = next_pos;
    ++index_;
    return true;
  }

  // Rebuild the template data the kernel hashed, in place.
  absl::string_view alg_name = HashAlgName(e->digest_alg);
  size_t total =
      e->tmpl == ImaTemplate::kIma
          ? 20 + kImaLegacyNameMax + 1
          : 4 + alg_name.size() + 2 + e->digest_size + 4 + e->path.size() + 1 +
                (e->tmpl == ImaTemplate::kImaNg ? 0 : 4 + e->extra.size());
  if (scratch_.size() < total) scratch_.resize(total);
  char* w = scratch_.data();
  auto put = [&w](const void* p, size_t n) {
    std::memcpy(w, p, n);
    w += n;
  };
  auto put32 = [&w](uint32_t v) {
    // Little-endian, as the kernel writes on the hosts Vouch supports
    // (x86-64, aarch64) unless booted with ima_canonical_fmt.
    w[0] = static_cast<char>(v);
    w[1] = static_cast<char>(v >> 8);
    w[2] = static_cast<char>(v >> 16);
    w[3] = static_cast<char>(v >> 24);
    w += 4;
  };
  if (e->tmpl == ImaTemplate::kIma) {
    put(e->digest, 20);
    put(e->path.data(), e->path.size());
    std::memset(w, 0, kImaLegacyNameMax + 1 - e->path.size());
    w += kImaLegacyNameMax + 1 - e->path.size();
  } else {
    put32(static_cast<uint32_t>(alg_name.size() + 2 + e->digest_size));
    put(alg_name.data(), alg_name.size());
    *w++ = ':';
    *w++ = '\0';
    put(e->digest, e->digest_size);
    put32(static_cast<uint32_t>(e->path.size() + 1));
    put(e->path.data(), e->path.size());
    *w++ = '\0';
    if (e->tmpl != ImaTemplate::kImaNg) {
      put32(static_cast<uint32_t>(e->extra.size()));
      put(e->extra.data(), e->extra.size());
    }
  }
  e->template_data = absl::string_view(scratch_.data(), total);
  pos_ = next_pos;
  ++index_;
  return true;
}

// Binary: per entry <u32 pcr><template hash><u32 name len><name>
// [<u32 template data len>]<template data> (ima_measurements_show in
// security/integrity/ima/ima_fs.c); the legacy `ima` template has no data
// length and writes its name field as <u32 len><name> without padding.
absl::StatusOr<bool> ImaLogParser::NextBinary(ImaEntry* e) {
  size_t start = pos_;
  absl::string_view in = data_.substr(start);
  e->index = index_;
  e->offset = start;
  auto fail = [&](absl::string_view what) {
    return EntryError(index_, start, what);
  };
  if (!binary_hash_alg_) {
    // The template name follows the hash: find the size for which it does.
    for (size_t size : {20, 32, 48, 64}) {
      if (in.size() < 4 + size + 4) break;
      uint32_t nlen = GetU32(in.data() + 4 + size);
      if (nlen >= 3 && nlen <= kMaxTemplateNameSize &&
          in.size() >= 8 + size + nlen && in.substr(8 + size, 3) == "ima") {
        binary_hash_alg_ = HashAlgFromSize(size);
        break;
      }
    }
    if (!binary_hash_alg_) {
      return fail(
          "not an IMA binary measurement list (no template name "
          "after a 20/32/48/64-byte template hash)");
    }
  }
  size_t hsize = DigestSize(*binary_hash_alg_);
  if (in.size() < 4 + hsize + 4) return fail("truncated entry header");
  e->pcr = GetU32(in.data());
  e->template_hash_alg = *binary_hash_alg_;
  std::memcpy(e->template_hash, in.data() + 4, hsize);
  e->violation = AllZero(e->template_hash, hsize);
  size_t p = 4 + hsize;
  uint32_t nlen = GetU32(in.data() + p);
  p += 4;
  if (nlen == 0 || nlen > kMaxTemplateNameSize) {
    return fail(absl::StrCat("template name length ", nlen, " out of range 1..",
                             kMaxTemplateNameSize));
  }
  if (in.size() - p < nlen) return fail("truncated template name");
  absl::string_view tname = in.substr(p, nlen);
  p += nlen;
  std::optional<ImaTemplate> tmpl = TemplateFromName(tname);
  if (!tmpl) {
    return fail(absl::StrCat("template '", Shown(tname), "' is not supported",
                             " (ima, ima-ng, ima-sig, ima-buf)"));
  }
  e->tmpl = *tmpl;
  e->extra = {};

  if (e->tmpl == ImaTemplate::kIma) {
    if (in.size() - p < 24) return fail("truncated legacy ima data");
    e->digest_alg = HashAlg::kSha1;
    e->digest_size = 20;
    std::memcpy(e->digest, in.data() + p, 20);
    uint32_t len = GetU32(in.data() + p + 20);
    p += 24;
    if (len > kImaLegacyNameMax) {
      return fail("legacy ima name longer than 255 bytes");
    }
    if (in.size() - p < len) return fail("truncated legacy ima name");
    e->path = in.substr(p, len);
    p += len;
    scratch_.assign(reinterpret_cast<const char*>(e->digest), 20);
    scratch_.append(e->path.data(), e->path.size());
    scratch_.append(kImaLegacyNameMax + 1 - e->path.size(), '\0');
    e->template_data = scratch_;
  } else {
    if (in.size() - p < 4) return fail("truncated template data length");
    uint32_t tlen = GetU32(in.data() + p);
    p += 4;
    if (tlen > kMaxTemplateDataSize) {
      return fail(absl::StrCat("template data length ", tlen,
                               " exceeds the limit of ", kMaxTemplateDataSize));
    }
    if (in.size() - p < tlen) {
      return fail(absl::StrCat("truncated: template data length ", tlen,
                               " but only ", in.size() - p, " bytes left"));
    }
    absl::string_view td = in.substr(p, tlen);
    e->template_data = td;
    p += tlen;
    // Split the fields: <u32 len><data> each.
    absl::string_view fields[3];
    int want = e->tmpl == ImaTemplate::kImaNg ? 2 : 3;
    size_t q = 0;
    for (int i = 0; i < want; ++i) {
      if (td.size() - q < 4) return fail("template data: truncated field");
      uint32_t flen = GetU32(td.data() + q);
      q += 4;
      if (td.size() - q < flen) {
        return fail(absl::StrCat("template data: field ", i, " length ", flen,
                                 " runs past the entry"));
      }
      fields[i] = td.substr(q, flen);
      q += flen;
    }
    if (q != td.size()) {
      return fail(absl::StrCat("template data: ", td.size() - q,
                               " bytes after the last field"));
    }
    if (absl::Status s = ParseDigestNgData(fields[0], e); !s.ok()) {
      return fail(s.message());
    }
    // n-ng: the name with its terminating NUL (ima_eventname_ng_init).
    if (fields[1].empty() || fields[1].back() != '\0') {
      return fail("n-ng field is not NUL-terminated");
    }
    e->path = fields[1].substr(0, fields[1].size() - 1);
    if (want == 3) e->extra = fields[2];
  }
  pos_ = start + p;
  ++index_;
  return true;
}

}  // namespace vouch::core::ima
