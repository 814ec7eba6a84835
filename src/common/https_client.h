// File: common/https_client.h
// One HTTPS POST with libcurl: HTTPS only (no plain http, no redirects),
// the peer's certificate and host name verified against a CA bundle (or
// the system store), bounded by a whole-request timeout and a cap on the
// response body kept. The remote end is untrusted: its answer is read up
// to the cap and never interpreted here. Thread-safe (each call uses its
// own curl handle; curl_global_init runs once).
//
//   HttpsRequest req;
//   req.url = "https://hooks.example/vouch";
//   req.headers = {{"Content-Type", "application/json"}};
//   req.body = "{}";
//   VOUCH_ASSIGN_OR_RETURN(HttpsResponse r, HttpsPost(req));
#ifndef VOUCH_COMMON_HTTPS_CLIENT_H_
#define VOUCH_COMMON_HTTPS_CLIENT_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vouch {

struct HttpsRequest {
  std::string url;  // https:// only
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // PEM CA bundle the server's certificate must chain to; empty: the
  // system store.
  std::string ca_file;
  absl::Duration timeout = absl::Seconds(10);  // Connect + send + answer.
  size_t max_response_bytes = 64 * 1024;       // The rest is dropped.
};

struct HttpsResponse {
  long status = 0;   // HTTP status code.
  std::string body;  // At most max_response_bytes.
};

// kUnavailable when the request could not be completed (DNS, connect, TLS,
// certificate, timeout) with curl's reason; kInvalidArgument for a URL that
// is not https. Any HTTP status is a response, not an error.
absl::StatusOr<HttpsResponse> HttpsPost(const HttpsRequest& request);

}  // namespace vouch

#endif  // VOUCH_COMMON_HTTPS_CLIENT_H_
