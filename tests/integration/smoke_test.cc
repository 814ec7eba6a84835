// [pg][tpm] smoke test: the harness's real PostgreSQL and swtpm, reached
// through Vouch's own store (libpq) and tpm (tpm2-tss ESAPI) layers, and
// nothing left running afterwards.
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "harness/pg_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/swtpm.h"
#include "store/pg_connection.h"
#include "tpm/esys_tpm.h"

namespace vouch {
namespace {

using testing::PgCluster;
using testing::ProcessAlive;
using testing::ProcessesWithArgContaining;
using testing::Swtpm;

X509Ptr LoadPem(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Verifies `der` against the swtpm CA files: the last is the root (trusted),
// the others intermediates. Returns OpenSSL's error text or "" when valid.
std::string VerifyChain(const Bytes& der,
                        const std::vector<std::string>& ca_paths) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return "EK certificate is not DER X.509";
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  std::vector<X509Ptr> keep;
  for (size_t i = 0; i < ca_paths.size(); ++i) {
    X509Ptr ca = LoadPem(ca_paths[i]);
    if (!ca) return "cannot load " + ca_paths[i];
    if (i + 1 == ca_paths.size()) {
      X509_STORE_add_cert(store.get(), ca.get());
    } else {
      sk_X509_push(untrusted.get(), ca.get());
    }
    keep.push_back(std::move(ca));
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), untrusted.get());
  if (X509_verify_cert(ctx.get()) == 1) return "";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

TEST_CASE("smoke: SQL round trip, TPM random and EK certificate, no leftovers",
          "[pg][tpm]") {
  pid_t postmaster = -1;
  pid_t swtpm_pid = -1;
  std::string pg_dir;
  std::string tpm_dir;
  {
    auto pg = PgCluster::Start();
    REQUIRE(pg.ok());
    auto swtpm = Swtpm::Start();
    REQUIRE(swtpm.ok());
    pg_dir = (*pg)->dir();
    tpm_dir = (*swtpm)->dir();
    swtpm_pid = (*swtpm)->pid();
    auto pm = (*pg)->postmaster_pid();
    REQUIRE(pm.ok());
    postmaster = *pm;
    REQUIRE(ProcessAlive(postmaster));
    REQUIRE(ProcessAlive(swtpm_pid));

    // --- PostgreSQL through vouch::store (libpq) ---
    auto db = store::PgConnection::Connect((*pg)->conninfo());
    REQUIRE(db.ok());
    CHECK((*db)->ServerVersion() >= 150000);
    REQUIRE(
        (*db)->Exec("CREATE TABLE smoke (id int PRIMARY KEY, note text)").ok());
    // A hostile-looking value is data, never SQL: parameters only.
    const std::string note = "x'); DROP TABLE smoke; --\n\xe2\x9c\x93";
    auto inserted = (*db)->Exec("INSERT INTO smoke VALUES ($1, $2)",
                                {std::string("7"), note});
    REQUIRE(inserted.ok());
    CHECK(*inserted == 1);
    auto dup = (*db)->Exec("INSERT INTO smoke VALUES ($1, $2)",
                           {std::string("7"), std::nullopt});
    CHECK(dup.status().code() == absl::StatusCode::kAlreadyExists);
    auto rows = (*db)->Query("SELECT id, note FROM smoke WHERE id = $1",
                             {std::string("7")});
    REQUIRE(rows.ok());
    REQUIRE(rows->rows.size() == 1);
    CHECK(rows->columns == std::vector<std::string>{"id", "note"});
    CHECK(rows->rows[0][0] == std::optional<std::string>("7"));
    CHECK(rows->rows[0][1] == std::optional<std::string>(note));
    CHECK((*db)->Query("SELEC nonsense").status().code() ==
          absl::StatusCode::kInternal);

    // --- TPM through vouch::tpm (tpm2-tss ESAPI over the swtpm TCTI) ---
    auto tpm = tpm::EsysTpm::Open((*swtpm)->tcti());
    REQUIRE(tpm.ok());
    auto r1 = (*tpm)->GetRandom(48);
    auto r2 = (*tpm)->GetRandom(48);
    REQUIRE(r1.ok());
    REQUIRE(r2.ok());
    CHECK(r1->size() == 48);
    CHECK(*r1 != *r2);
    CHECK(*r1 != Bytes(48, 0));

    auto ek_cert = (*tpm)->ReadNv(tpm::kEkCertNvIndexRsa2048);
    REQUIRE(ek_cert.ok());
    CHECK(ek_cert->size() > 500);
    CHECK(VerifyChain(*ek_cert, (*swtpm)->ca_cert_paths()) == "");
    // One flipped bit in the CA's signature must not verify.
    Bytes tampered = *ek_cert;
    tampered[tampered.size() - 10] ^= 0x01;  // Inside the signature.
    CHECK(VerifyChain(tampered, (*swtpm)->ca_cert_paths()) != "");

    auto missing = (*tpm)->ReadNv(0x01c0fff0);
    CHECK(missing.status().code() == absl::StatusCode::kNotFound);
    CHECK((*tpm)->GetRandom(4096).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }  // Everything is torn down here.

  CHECK_FALSE(ProcessAlive(postmaster));
  CHECK_FALSE(ProcessAlive(swtpm_pid));
  CHECK(ProcessesWithArgContaining(pg_dir).empty());
  CHECK(ProcessesWithArgContaining(tpm_dir).empty());
}

TEST_CASE("a TCTI that points nowhere is unavailable, not a crash", "[tpm]") {
  auto port = testing::PickFreePort();
  REQUIRE(port.ok());
  auto tpm =
      tpm::EsysTpm::Open("swtpm:host=127.0.0.1,port=" + std::to_string(*port));
  if (tpm.ok()) {
    // Some TCTIs connect lazily; then the first command must fail cleanly.
    CHECK_FALSE((*tpm)->GetRandom(8).ok());
  } else {
    CHECK(tpm.status().code() == absl::StatusCode::kUnavailable);
  }
}

TEST_CASE("a database that is not there is unavailable", "[pg]") {
  auto port = testing::PickFreePort();
  REQUIRE(port.ok());
  auto db = store::PgConnection::Connect(
      "host=127.0.0.1 port=" + std::to_string(*port) +
      " user=nobody dbname=x connect_timeout=2 password=s3cr3t");
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(db.status().message()).find("s3cr3t") == std::string::npos);
}

}  // namespace
}  // namespace vouch
