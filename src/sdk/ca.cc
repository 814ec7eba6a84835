#include "sdk/ca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"

namespace vouch::sdk {
namespace {

constexpr size_t kMaxPemBytes = size_t{256} * 1024;

absl::Status OpenSslError(absl::string_view what) {
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("OpenSSL: ", what, " failed"));
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// mkdir -p with `mode` for the directories it creates.
absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create ", part, ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Writes `text` to a new file; kAlreadyExists if it is there (keys are
// never overwritten), unless `replace`.
absl::Status WriteNewFile(const std::string& path, const std::string& text,
                          mode_t mode, bool replace) {
  const int flags =
      O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC : O_EXCL);
  const int fd = open(path.c_str(), flags, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " exists; remove it first to replace it"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  const bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (close(fd) != 0 || !ok) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslError("PEM_write_bio_X509");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                       nullptr, nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<EvpPkeyPtr> NewP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("EVP_EC_gen(P-256)");
  return key;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid,
                          const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  using ExtPtr = CHandle<X509_EXTENSION, X509_EXTENSION_free>;
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

// A certificate for `key` named `cn`, valid [not_before, +validity), issued
// by `issuer` (nullptr: self-issued); Sign() signs it afterwards.
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* key, const std::string& cn,
                                       absl::Time not_before,
                                       absl::Duration validity, X509* issuer) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return OpenSslError("X509_new");
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpenSslError("RAND");
  serial[0] &= 0x7f;  // RFC 5280 4.1.2.2: a positive integer.
  BignumPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) {
    return OpenSslError("serial");
  }
  const time_t nb = absl::ToTimeT(not_before);
  const time_t na = absl::ToTimeT(not_before + validity);
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), nb) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), na)) {
    return OpenSslError("validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1) {
    return OpenSslError("subject");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError("issuer");
  }
  VOUCH_RETURN_IF_ERROR(
      AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  if (issuer != nullptr) {
    VOUCH_RETURN_IF_ERROR(AddExtension(
        cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  return cert;
}

absl::Status Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return OpenSslError("X509_sign");
  return absl::OkStatus();
}

absl::StatusOr<std::pair<X509Ptr, EvpPkeyPtr>> LoadCa(const std::string& dir) {
  absl::StatusOr<std::string> cert_text =
      ReadFileUpTo(dir + "/ca.pem", kMaxPemBytes);
  absl::StatusOr<std::string> key_text =
      ReadFileUpTo(dir + "/ca.key", kMaxPemBytes);
  const std::string cert_pem = cert_text.ok() ? *cert_text : "";
  const std::string key_pem = key_text.ok() ? *key_text : "";
  BioPtr cbio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  BioPtr kbio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr));
  EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
  if (!cert || !key || X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        dir, " holds no CA (ca.pem + ca.key); run `vouchctl ca init ", dir,
        "`"));
  }
  return std::make_pair(std::move(cert), std::move(key));
}

// An end-entity certificate for `key` (serverAuth or clientAuth) with the
// SubjectAltNames `sans` ("URI:...", "DNS:..."), signed by the CA.
absl::StatusOr<X509Ptr> SignLeaf(EVP_PKEY* key, const std::string& cn,
                                 const std::vector<std::string>& sans,
                                 bool server, absl::Time not_before,
                                 absl::Duration validity, X509* ca_cert,
                                 EVP_PKEY* ca_key) {
  VOUCH_ASSIGN_OR_RETURN(
      X509Ptr cert, NewCertificate(key, cn, not_before, validity, ca_cert));
  VOUCH_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert, NID_basic_constraints,
                                     "critical,CA:FALSE"));
  VOUCH_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert, NID_key_usage,
                                     "critical,digitalSignature"));
  VOUCH_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert, NID_ext_key_usage,
                                     server ? "serverAuth" : "clientAuth"));
  VOUCH_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert, NID_subject_alt_name,
                                     absl::StrJoin(sans, ",")));
  VOUCH_RETURN_IF_ERROR(Sign(cert.get(), ca_key));
  return cert;
}

bool IsIpAddress(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool IsDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '*')) {
      return false;
    }
  }
  return true;
}

}  // namespace

const char* CertFileStem(CertKind kind) {
  switch (kind) {
    case CertKind::kServer:
      return "server";
    case CertKind::kClient:
      return "client";
    case CertKind::kAgent:
      return "agent";
  }
  return "client";
}

std::string IssuedDir(const IssueOptions& options) {
  if (!options.out_dir.empty()) return options.out_dir;
  const char* sub = options.kind == CertKind::kServer   ? "servers"
                    : options.kind == CertKind::kClient ? "clients"
                                                        : "agents";
  return absl::StrCat(options.ca_dir, "/", sub, "/", options.name);
}

absl::Status InitCa(const CaInitOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no CA directory");
  VOUCH_RETURN_IF_ERROR(MakeDirs(options.dir, 0700));
  const std::string key_path = options.dir + "/ca.key";
  if (Exists(key_path)) {
    return absl::AlreadyExistsError(
        absl::StrCat(key_path, " exists: this directory already holds a CA"));
  }
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  const absl::Time now = options.now.value_or(absl::Now());
  VOUCH_ASSIGN_OR_RETURN(
      X509Ptr cert,
      NewCertificate(key.get(), options.common_name, now - absl::Minutes(5),
                     options.validity, nullptr));
  VOUCH_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(),
                                     NID_basic_constraints,
                                     "critical,CA:TRUE,pathlen:0"));
  VOUCH_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_key_usage,
                                     "critical,keyCertSign,cRLSign"));
  VOUCH_RETURN_IF_ERROR(Sign(cert.get(), key.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string cert_pem, ToPem(cert.get()));
  VOUCH_RETURN_IF_ERROR(WriteNewFile(key_path, key_pem, 0600, false));
  return WriteNewFile(options.dir + "/ca.pem", cert_pem, 0644, true);
}

absl::Status IssueCertificate(const IssueOptions& options) {
  VOUCH_ASSIGN_OR_RETURN(auto ca, LoadCa(options.ca_dir));
  std::vector<std::string> sans;
  std::string cn = options.name;
  if (options.kind == CertKind::kServer) {
    if (!IsDnsName(options.name) && !IsIpAddress(options.name)) {
      return absl::InvalidArgumentError(
          "server name must be a DNS name or an IP address");
    }
    std::vector<std::string> names = options.sans;
    names.insert(names.begin(), options.name);
    for (const std::string& n : names) {
      if (IsIpAddress(n)) {
        sans.push_back(absl::StrCat("IP:", n));
      } else if (IsDnsName(n)) {
        sans.push_back(absl::StrCat("DNS:", n));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--san ", n, " is neither a DNS name nor an IP"));
      }
    }
  } else {
    std::vector<Role> roles = options.roles;
    if (options.kind == CertKind::kAgent) {
      roles = {Role::kAgent};
    } else if (roles.empty()) {
      roles = {Role::kAdmin};
    }
    for (Role role : roles) {
      if (options.kind == CertKind::kClient && role == Role::kAgent) {
        return absl::InvalidArgumentError(
            "use --agent to issue an agent certificate");
      }
      const std::string uri =
          GrantUri(Grant{options.tenant, role, options.name});
      // Round-trip through the parser: it is the one that will read it.
      absl::StatusOr<Grant> parsed = ParseGrantUri(uri);
      if (!parsed.ok()) return parsed.status();
      sans.push_back(absl::StrCat("URI:", uri));
    }
    // The identity is the URI; the CN is only a label (RFC 5280 bounds it
    // to 64 characters, and a derived agent_id alone takes 64).
    cn = absl::StrCat(options.name, "@", options.tenant).substr(0, 64);
  }
  const std::string out_dir = IssuedDir(options);
  VOUCH_RETURN_IF_ERROR(MakeDirs(out_dir, 0700));
  const std::string stem = CertFileStem(options.kind);
  const std::string key_path = absl::StrCat(out_dir, "/", stem, ".key");
  if (Exists(key_path)) {
    return absl::AlreadyExistsError(
        absl::StrCat(key_path, " exists; remove it first to re-issue"));
  }
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  const absl::Time not_before =
      options.not_before.value_or(absl::Now() - absl::Minutes(5));
  VOUCH_ASSIGN_OR_RETURN(
      X509Ptr cert,
      SignLeaf(key.get(), cn, sans, options.kind == CertKind::kServer,
               not_before, options.validity, ca.first.get(), ca.second.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string cert_pem, ToPem(cert.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string ca_pem, ToPem(ca.first.get()));
  VOUCH_RETURN_IF_ERROR(WriteNewFile(key_path, key_pem, 0600, false));
  VOUCH_RETURN_IF_ERROR(WriteNewFile(absl::StrCat(out_dir, "/", stem, ".pem"),
                                     cert_pem, 0644, true));
  return WriteNewFile(out_dir + "/ca.pem", ca_pem, 0644, true);
}

absl::StatusOr<std::unique_ptr<AgentIssuer>> AgentIssuer::Load(
    const std::string& ca_dir) {
  VOUCH_ASSIGN_OR_RETURN(auto ca, LoadCa(ca_dir));
  VOUCH_ASSIGN_OR_RETURN(std::string pem, ToPem(ca.first.get()));
  return std::unique_ptr<AgentIssuer>(new AgentIssuer(
      std::move(ca.first), std::move(ca.second), std::move(pem)));
}

AgentIssuer::AgentIssuer(X509Ptr cert, EvpPkeyPtr key, std::string cert_pem)
    : cert_(std::move(cert)),
      key_(std::move(key)),
      cert_pem_(std::move(cert_pem)) {}

AgentIssuer::~AgentIssuer() = default;

absl::StatusOr<IssuedCertificate> AgentIssuer::Issue(
    const std::string& spki_der, const std::string& tenant,
    const std::string& agent_id, absl::Duration validity,
    absl::Time now) const {
  const unsigned char* p =
      reinterpret_cast<const unsigned char*>(spki_der.data());
  EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!key) return OpenSslError("d2i_PUBKEY");
  const std::string uri = GrantUri(Grant{tenant, Role::kAgent, agent_id});
  VOUCH_RETURN_IF_ERROR(ParseGrantUri(uri).status());
  // Backdated a little for clock skew; the lifetime counts from now.
  VOUCH_ASSIGN_OR_RETURN(
      X509Ptr cert,
      SignLeaf(key.get(), absl::StrCat(agent_id, "@", tenant).substr(0, 64),
               {absl::StrCat("URI:", uri)}, /*server=*/false,
               now - absl::Minutes(1), validity + absl::Minutes(1), cert_.get(),
               key_.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string pem, ToPem(cert.get()));
  IssuedCertificate out;
  out.chain_pem = absl::StrCat(pem, cert_pem_);
  out.not_after = now + validity;
  return out;
}

absl::StatusOr<KeyAndCsr> NewKeyAndCsr() {
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  using X509ReqPtr = CHandle<X509_REQ, X509_REQ_free>;
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return OpenSslError("X509_REQ_sign");
  }
  KeyAndCsr out;
  VOUCH_ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  if (len <= 0) return OpenSslError("i2d_X509_REQ");
  out.csr_der.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  der = nullptr;
  len = i2d_PUBKEY(key.get(), &der);
  if (len <= 0) return OpenSslError("i2d_PUBKEY");
  out.spki_der.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::pair<absl::Time, absl::Time>> CertificateValidity(
    const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  struct tm nb {};
  struct tm na {};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(cert.get()), &nb) != 1 ||
      ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &na) != 1) {
    return absl::InvalidArgumentError("unreadable validity");
  }
  return std::make_pair(absl::FromTM(nb, absl::UTCTimeZone()),
                        absl::FromTM(na, absl::UTCTimeZone()));
}

absl::Status CreateResultsKey(const std::string& key_path,
                              const std::string& public_path) {
  if (Exists(key_path)) {
    return absl::AlreadyExistsError(absl::StrCat(key_path, " exists"));
  }
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  VOUCH_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return OpenSslError("PEM_write_bio_PUBKEY");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  VOUCH_RETURN_IF_ERROR(WriteNewFile(key_path, key_pem, 0600, false));
  return WriteNewFile(public_path, std::string(data, static_cast<size_t>(len)),
                      0644, true);
}

}  // namespace vouch::sdk
