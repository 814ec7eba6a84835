// File: common/http_client.h
// A small HTTPS client on libcurl for fetching documents the server then
// checks itself (runtime policies from a URL): GET only, https:// only
// (redirects too, at most 3), the peer verified against a CA bundle (the
// system's or a configured one), a response-size cap enforced while
// reading, connect and total timeouts, and conditional requests (ETag /
// If-None-Match). The response is untrusted. Thread-safe (each call has
// its own handle); blocking: call it off any event loop.
//
//   HttpGetOptions o;
//   o.max_bytes = 16 << 20;
//   o.if_none_match = last_etag;
//   VOUCH_ASSIGN_OR_RETURN(HttpResponse r, HttpGet(url, o));
//   if (r.status == 304) ...  // unchanged
#ifndef VOUCH_COMMON_HTTP_CLIENT_H_
#define VOUCH_COMMON_HTTP_CLIENT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vouch {

struct HttpGetOptions {
  std::string ca_file;  // PEM CA bundle; empty: the system's.
  size_t max_bytes = 16 << 20;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(60);  // The whole transfer.
  std::string if_none_match;                   // Empty: unconditional.
};

struct HttpResponse {
  long status = 0;  // 200, or 304 for a matching If-None-Match.
  std::string body;
  std::string etag;  // The ETag header, verbatim; empty when absent.
};

// GETs `url`. kUnavailable for a transport or TLS failure, a timeout or an
// HTTP status other than 200/304 (the message names it); kInvalidArgument
// for a body over max_bytes or a non-https URL or redirect.
absl::StatusOr<HttpResponse> HttpGet(absl::string_view url,
                                     const HttpGetOptions& options);

}  // namespace vouch

#endif  // VOUCH_COMMON_HTTP_CLIENT_H_
