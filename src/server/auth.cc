#include "server/auth.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace vouch::server {

absl::StatusOr<Principal> CallerPrincipal(const grpc::AuthContext& context) {
  std::vector<grpc::string_ref> pem =
      context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) {
    return absl::UnauthenticatedError("a client certificate is required");
  }
  return PrincipalFromPem(absl::string_view(pem[0].data(), pem[0].size()));
}

absl::Time ReplyBy(const grpc::ServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  const absl::Time end = absl::FromChrono(deadline);
  const absl::Time now = absl::Now();
  return end - std::min(kReplyMargin, (end - now) / 2);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

std::string PeerHost(absl::string_view peer) {
  absl::string_view rest = peer;
  if (absl::ConsumePrefix(&rest, "ipv4:")) {
    return std::string(rest.substr(0, rest.rfind(':')));
  }
  if (absl::ConsumePrefix(&rest, "ipv6:")) {
    const size_t close = rest.find(']');
    if (absl::StartsWith(rest, "[") && close != absl::string_view::npos) {
      return std::string(rest.substr(1, close - 1));
    }
  }
  return std::string(peer);
}

}  // namespace vouch::server
