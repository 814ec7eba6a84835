#include "core/ima/ima_log_writer.h"

#include "absl/strings/str_cat.h"

namespace vouch::core::ima {
namespace {
void PutU32(std::string* s, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
               static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  s->append(b, 4);
}
}  // namespace

std::string BuildTemplateData(const ImaRecord& r) {
  std::string td;
  if (r.tmpl == ImaTemplate::kIma) {
    td.append(reinterpret_cast<const char*>(r.digest.data()), r.digest.size());
    td.append(r.path);
    if (r.path.size() <= kImaLegacyNameMax) {
      td.append(kImaLegacyNameMax + 1 - r.path.size(), '\0');
    }
    return td;
  }
  absl::string_view alg = HashAlgName(r.digest_alg);
  PutU32(&td, static_cast<uint32_t>(alg.size() + 2 + r.digest.size()));
  td.append(alg.data(), alg.size());
  td.push_back(':');
  td.push_back('\0');
  td.append(reinterpret_cast<const char*>(r.digest.data()), r.digest.size());
  PutU32(&td, static_cast<uint32_t>(r.path.size() + 1));
  td.append(r.path);
  td.push_back('\0');
  if (r.tmpl == ImaTemplate::kImaSig || r.tmpl == ImaTemplate::kImaBuf) {
    PutU32(&td, static_cast<uint32_t>(r.extra.size()));
    td.append(r.extra);
  }
  return td;
}

ImaLogWriter::ImaLogWriter(HashAlg template_hash_alg)
    : alg_(template_hash_alg), digester_(template_hash_alg) {}

void ImaLogWriter::Append(const ImaRecord& r, std::string* out,
                          LogFormat format) {
  std::string td = BuildTemplateData(r);
  uint8_t th[kMaxDigestSize] = {};
  if (!r.violation) digester_.Digest(td, th);
  absl::string_view hash(reinterpret_cast<const char*>(th), DigestSize(alg_));
  absl::string_view name = TemplateName(r.tmpl);
  if (format == LogFormat::kAscii) {
    absl::StrAppend(out, r.pcr, " ", HexEncode(hash), " ", name, " ");
    if (r.tmpl == ImaTemplate::kIma) {
      absl::StrAppend(out, HexEncode(r.digest));
    } else {
      absl::StrAppend(out, HashAlgName(r.digest_alg), ":", HexEncode(r.digest));
    }
    absl::StrAppend(out, " ", r.path);
    if (r.tmpl == ImaTemplate::kImaSig || r.tmpl == ImaTemplate::kImaBuf) {
      absl::StrAppend(out, " ", HexEncode(r.extra));
    }
    out->push_back('\n');
    return;
  }
  PutU32(out, r.pcr);
  out->append(hash.data(), hash.size());
  PutU32(out, static_cast<uint32_t>(name.size()));
  out->append(name.data(), name.size());
  if (r.tmpl == ImaTemplate::kIma) {
    out->append(reinterpret_cast<const char*>(r.digest.data()),
                r.digest.size());
    PutU32(out, static_cast<uint32_t>(r.path.size()));
    out->append(r.path);
    return;
  }
  PutU32(out, static_cast<uint32_t>(td.size()));
  out->append(td);
}

}  // namespace vouch::core::ima
