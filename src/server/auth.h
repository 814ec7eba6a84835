// File: server/auth.h
// The boundary between a gRPC call and the service code: who the caller is
// (from its verified client certificate), where it connects from, and how an
// absl::Status becomes the short grpc::Status a remote peer sees. Thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(Principal caller,
//                          CallerPrincipal(*context->auth_context()));
//   return ToGrpcStatus(status);
#ifndef VOUCH_SERVER_AUTH_H_
#define VOUCH_SERVER_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/principal.h"

namespace vouch::server {

// The principal of the peer's certificate (gRPC property x509_pem_cert).
// kUnauthenticated when the peer presented no certificate;
// kPermissionDenied when it names no valid vouch:// identity.
absl::StatusOr<Principal> CallerPrincipal(const grpc::AuthContext& context);

// Maps the code one to one and keeps the message (which callers keep short
// and free of expected secret values).
grpc::Status ToGrpcStatus(const absl::Status& status);

// When a unary handler must have its answer ready so that it still reaches
// the caller: the call's deadline less kReplyMargin (or less half the time
// left, when that is shorter); InfiniteFuture() when the caller set none.
// Handlers bound their database waits with it (store::CallDeadline), so a
// hung database yields UNAVAILABLE rather than the caller's own timeout.
inline constexpr absl::Duration kReplyMargin = absl::Seconds(1);
absl::Time ReplyBy(const grpc::ServerContext& context);

// The host part of a gRPC peer string ("ipv4:10.0.0.1:5000" -> "10.0.0.1",
// "ipv6:[::1]:5000" -> "::1"); the whole string if it has another form.
std::string PeerHost(absl::string_view grpc_peer);

}  // namespace vouch::server

#endif  // VOUCH_SERVER_AUTH_H_
