// Unit tests for the pure parts of the tpm, store-free and sdk layers: how
// TSS2 return codes become statuses, and what CreateChannel refuses.
#include <tss2/tss2_common.h>
#include <tss2/tss2_tpm2_types.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "sdk/channel.h"
#include "tpm/tss_status.h"

namespace vouch {
namespace {

TEST_CASE("TSS2 return codes map to what a caller can do", "[core][tpm]") {
  CHECK(tpm::TssStatus(TSS2_RC_SUCCESS, "x").ok());
  // TPM format-zero warnings: try again.
  CHECK(tpm::TssStatus(TPM2_RC_RETRY, "x").code() ==
        absl::StatusCode::kUnavailable);
  CHECK(tpm::TssStatus(TPM2_RC_YIELDED, "x").code() ==
        absl::StatusCode::kUnavailable);
  // TCTI layer (transport): unavailable.
  CHECK(tpm::TssStatus(TSS2_TCTI_RC_IO_ERROR, "x").code() ==
        absl::StatusCode::kUnavailable);
  // A format-one TPM_RC_HANDLE for handle 1 (bits 8..11 carry the number).
  const TSS2_RC handle_error = TPM2_RC_HANDLE | TPM2_RC_1;
  CHECK(tpm::TssStatus(handle_error, "NV index").code() ==
        absl::StatusCode::kNotFound);
  // Anything else is a bug or a refusal: internal, with the decoded text.
  const absl::Status st = tpm::TssStatus(
      TPM2_RC_SIGNATURE | TPM2_RC_P | TPM2_RC_1, "TPM2_VerifySignature");
  CHECK(st.code() == absl::StatusCode::kInternal);
  CHECK(absl::StartsWith(st.message(), "TPM2_VerifySignature: "));
  CHECK(absl::StrContains(st.message(), "0x000001db"));
}

TEST_CASE("CreateChannel refuses what would be insecure or broken",
          "[core][sdk]") {
  sdk::ClientOptions none;
  CHECK(sdk::CreateChannel(none).status().code() ==
        absl::StatusCode::kInvalidArgument);

  sdk::ClientOptions plaintext;
  plaintext.server = "verifier.example:8991";
  plaintext.insecure_loopback_for_testing = true;
  auto remote = sdk::CreateChannel(plaintext);
  CHECK(remote.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(remote.status().message(), "loopback"));
  for (const char* loopback :
       {"127.0.0.1:1", "localhost:2", "[::1]:3", "127.1.2.3:4"}) {
    INFO(loopback);
    plaintext.server = loopback;
    CHECK(sdk::CreateChannel(plaintext).ok());
  }
  // "127.example.com" is not loopback.
  plaintext.server = "127.example.com:1";
  CHECK_FALSE(sdk::CreateChannel(plaintext).ok());

  sdk::ClientOptions tls;
  tls.server = "verifier.example:8991";
  auto no_dir = sdk::CreateChannel(tls);
  CHECK(absl::StrContains(no_dir.status().message(), "--tls-dir"));
  tls.tls_dir = "/nonexistent-vouch-tls";
  auto missing = sdk::CreateChannel(tls);
  CHECK(missing.status().message() ==
        "cannot read /nonexistent-vouch-tls/ca.pem");
}

}  // namespace
}  // namespace vouch
