#include "common/http_client.h"

#include <curl/curl.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/c_handle.h"

namespace vouch {
namespace {

struct Transfer {
  size_t max_bytes = 0;
  bool oversized = false;
  HttpResponse response;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t->response.body.size() + len > t->max_bytes) {
    t->oversized = true;
    return 0;  // Aborts the transfer (CURLE_WRITE_ERROR).
  }
  t->response.body.append(data, len);
  return len;
}

// Keeps the ETag of the final response (a redirect's headers come first).
size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) t->response.etag.clear();
  constexpr absl::string_view kEtag = "etag:";
  if (line.size() > kEtag.size() && line.size() <= 1024 &&
      absl::StartsWithIgnoreCase(line, kEtag)) {
    t->response.etag =
        std::string(absl::StripAsciiWhitespace(line.substr(kEtag.size())));
  }
  return size * n;
}

using CurlHandle = CHandle<CURL, curl_easy_cleanup>;
using CurlList = CHandle<curl_slist, curl_slist_free_all>;

}  // namespace

absl::StatusOr<HttpResponse> HttpGet(absl::string_view url,
                                     const HttpGetOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CurlHandle curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  Transfer t;
  t.max_bytes = options.max_bytes;
  const std::string address(url);
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, address.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(
      h, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
  curl_easy_setopt(
      h, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "vouch");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  CurlList headers;
  if (!options.if_none_match.empty() && options.if_none_match.size() <= 1024 &&
      !absl::StrContains(options.if_none_match, '\n') &&
      !absl::StrContains(options.if_none_match, '\r')) {
    headers.reset(curl_slist_append(
        nullptr,
        absl::StrCat("If-None-Match: ", options.if_none_match).c_str()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(h);
  if (t.oversized || rc == CURLE_FILESIZE_EXCEEDED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the document is larger than ", options.max_bytes, " bytes"));
  }
  if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return absl::InvalidArgumentError(
        "only https:// is fetched (also on redirects)");
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        "fetch failed: ", error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &t.response.status);
  if (t.response.status != 200 && t.response.status != 304) {
    return absl::UnavailableError(
        absl::StrCat("fetch failed: HTTP status ", t.response.status));
  }
  return std::move(t.response);
}

}  // namespace vouch
