#include "server/service_notify.h"

#include <systemd/sd-daemon.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace vouch::server {
namespace {

// Status text is one line: a newline would start another assignment.
std::string OneLine(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

absl::Status Send(const std::string& state) {
  // sd_notify: > 0 sent, 0 no NOTIFY_SOCKET (not under systemd), < 0 -errno.
  const int rc = sd_notify(/*unset_environment=*/0, state.c_str());
  if (rc >= 0) return absl::OkStatus();
  Log(LogLevel::kWarning, "sd_notify failed",
      {{"state", state}, {"errno", -rc}});
  return absl::UnavailableError(absl::StrCat("sd_notify failed: errno ", -rc));
}

}  // namespace

absl::Status NotifyReady(absl::string_view status) {
  return Send(absl::StrCat("READY=1\nSTATUS=", OneLine(status)));
}

absl::Status NotifyStatus(absl::string_view status) {
  return Send(absl::StrCat("STATUS=", OneLine(status)));
}

absl::Status NotifyStopping() { return Send("STOPPING=1\nSTATUS=draining"); }

}  // namespace vouch::server
