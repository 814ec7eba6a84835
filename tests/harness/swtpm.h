// File: harness/swtpm.h
// Swtpm: a freshly manufactured software TPM 2.0 for [tpm] tests. swtpm_setup
// creates RSA-2048 and ECC P-384 EKs with certificates from a private local
// CA (root + intermediate) in the fixture's temp dir; `swtpm socket` then
// serves 127.0.0.1 on free ports P (TPM) and P+1 (control). Test-only; the CA
// keys are throwaway. Accessors are const and thread-safe; Stop() is not.
//
//   absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
//   REQUIRE(tpm.ok());
//   Tss2_TctiLdr_Initialize((*tpm)->tcti().c_str(), &tcti);

#ifndef VOUCH_TESTS_HARNESS_SWTPM_H_
#define VOUCH_TESTS_HARNESS_SWTPM_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace vouch::testing {

struct SwtpmOptions {
  // Which of the two EKs ek_cert_nv_index()/ek_handle()/ek_cert_path()
  // describe: false = RSA 2048, true = ECC NIST P-384 (swtpm_setup 0.7.1
  // always makes both; it has no P-256 EK).
  bool ecc_ek = false;
  // PCR banks to activate (swtpm_setup --pcr-banks).
  std::string pcr_banks = "sha1,sha256";
  // Also write a platform certificate at NV index 0x01c08000.
  bool create_platform_cert = true;
  // How long to wait for swtpm to answer on both ports, per attempt.
  std::chrono::milliseconds ready_timeout{10000};
};

class Swtpm {
 public:
  // NV indices and persistent handles as swtpm_setup 0.7.1 provisions them:
  // EK certificate indices from the low (RSA 2048) and high (ECC P-384) NV
  // ranges of the TCG EK Credential Profile for TPM 2.0; the platform
  // certificate index is swtpm's choice.
  static constexpr uint32_t kRsaEkCertIndex = 0x01c00002;
  static constexpr uint32_t kEccP384EkCertIndex = 0x01c00016;
  static constexpr uint32_t kPlatformCertIndex = 0x01c08000;
  static constexpr uint32_t kRsaEkHandle = 0x81010001;
  static constexpr uint32_t kEccP384EkHandle = 0x81010016;

  // Manufactures the TPM state (swtpm_setup, ~2 s) and starts `swtpm socket`
  // in the foreground with PR_SET_PDEATHSIG; retries with new ports up to 3
  // times. Errors carry the setup log / swtpm log tails.
  static absl::StatusOr<std::unique_ptr<Swtpm>> Start(
      const SwtpmOptions& options = {});

  Swtpm(const Swtpm&) = delete;
  Swtpm& operator=(const Swtpm&) = delete;
  // Terminates swtpm and removes the directory (kept with VOUCH_TEST_KEEP=1).
  ~Swtpm();

  // Terminates swtpm (SIGTERM, then SIGKILL after 2 s). Idempotent.
  void Stop();
  // An orderly reboot: TPM2_Shutdown(CLEAR) (as the OS sends at power-off),
  // then swtpm is stopped and started again on the same ports and state.
  // The next Startup(CLEAR) is a TPM Reset: resetCount grows, PCRs start
  // from zero, and clockInfo.safe stays 1 (an unorderly stop clears it).
  absl::Status Restart();

  // "swtpm:host=127.0.0.1,port=P" for Tss2_TctiLdr / tpm2-tools -T.
  std::string tcti() const;
  int port() const { return port_; }  // Control port is port() + 1.
  pid_t pid() const;
  const std::string& dir() const { return dir_.path(); }
  std::string state_dir() const { return dir_.Join("state"); }
  std::string log_path() const { return dir_.Join("swtpm.log"); }

  // The local CA's issuer ("swtpm-localca", intermediate) certificate, PEM;
  // it signed the EK and platform certificates.
  std::string ca_cert_path() const { return dir_.Join("ca/issuercert.pem"); }
  // The self-signed root ("swtpm-localca-rootca"), PEM.
  std::string root_ca_cert_path() const {
    return dir_.Join("ca/swtpm-localca-rootca-cert.pem");
  }
  // {intermediate, root}: together they chain an EK certificate to the root.
  std::vector<std::string> ca_cert_paths() const {
    return {ca_cert_path(), root_ca_cert_path()};
  }

  // The selected EK (SwtpmOptions::ecc_ek): its certificate's NV index, its
  // persistent handle, and a DER copy of its certificate.
  uint32_t ek_cert_nv_index() const;
  uint32_t ek_handle() const;
  std::string ek_cert_path() const;

 private:
  Swtpm(TempDir dir, const SwtpmOptions& options)
      : dir_(std::move(dir)), options_(options) {}

  absl::Status Setup();
  absl::Status StartServer(bool same_port = false);

  TempDir dir_;
  SwtpmOptions options_;
  int port_ = 0;
  std::optional<ChildProcess> process_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_SWTPM_H_
