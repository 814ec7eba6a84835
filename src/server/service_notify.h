// File: service_notify.h — tells the service manager (systemd, Type=notify)
// that a daemon is ready or stopping, through sd_notify(3) from libsystemd.
// Outside systemd (NOTIFY_SOCKET unset: tests, containers, a shell) every call
// is a no-op that returns OK. Thread-safe (sd_notify opens a socket per call).
//
//   server::NotifyReady("serving on 0.0.0.0:8443");   // after the server
//   listens
//   ...WaitForShutdown()...
//   server::NotifyStopping();                        // before draining
#ifndef VOUCH_SERVER_SERVICE_NOTIFY_H_
#define VOUCH_SERVER_SERVICE_NOTIFY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vouch::server {

// READY=1 plus STATUS=<status>. Call once the daemon does its job: the gRPC
// server listens and the database answered. A failure to notify is logged
// and returned; the daemon keeps running (systemd then times the start out).
absl::Status NotifyReady(absl::string_view status);

// STATUS=<status> alone (progress while starting, e.g. "registering").
absl::Status NotifyStatus(absl::string_view status);

// STOPPING=1: SIGTERM arrived and the daemon drains.
absl::Status NotifyStopping();

}  // namespace vouch::server

#endif  // VOUCH_SERVER_SERVICE_NOTIFY_H_
