// File: verifier/kept_records.h
// The Admin calls on kept attestation records (docs/audit.md), as plain
// functions the AdminService's handlers call once the caller's tenant is
// resolved: GetAttestation (a record with its kept evidence),
// ReverifyAttestation (core/audit's Reverify on it, against its own policy
// versions or named ones) and ExportAudit (the offline audit bundle of an
// agent at a moment). Requests are untrusted (bounded, kInvalidArgument);
// the store is trusted. Thread-safe; they block on the store.
//
//   VOUCH_RETURN_IF_ERROR(GetKeptAttestation(*agents_, tenant, *req, resp));
#ifndef VOUCH_VERIFIER_KEPT_RECORDS_H_
#define VOUCH_VERIFIER_KEPT_RECORDS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "store/pg_translog.h"
#include "store/verifier_store.h"
#include "vouch/v1/admin.pb.h"

namespace vouch::verifier {

// A record's failures from their committed encoding (a serialized
// vouch.v1.Verdict); none when it does not parse.
void SetFailures(const std::string& encoded, v1::AttestationRecord* rec);

absl::Status GetKeptAttestation(store::AgentStore& agents,
                                const std::string& tenant,
                                const v1::GetAttestationRequest& req,
                                v1::AttestationRecord* out);

absl::Status ReverifyKeptAttestation(store::AgentStore& agents,
                                     store::PolicyStore& policies,
                                     const std::string& tenant,
                                     const v1::ReverifyAttestationRequest& req,
                                     absl::Time now,
                                     v1::ReverifyAttestationResponse* out);

// `translog` (null: the log is off) fills the bundle's log section; a
// record or binding still queued for the log answers kUnavailable.
absl::Status ExportAuditBundle(store::AgentStore& agents,
                               store::PolicyStore& policies,
                               store::PgTranslog* translog,
                               const std::string& tenant,
                               const v1::ExportAuditRequest& req,
                               v1::AuditBundle* out);

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_KEPT_RECORDS_H_
