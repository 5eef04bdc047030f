// SPDX-License-Identifier: Apache-2.0
// Service-manager notifications (systemd Type=notify, sd_notify(3)): READY=1 once reads through
// the mount work, STATUS= lines, RELOADING=1 while SIGHUP re-reads the policy, STOPPING=1 when
// the daemon revokes or stops. Only this unit includes <systemd/sd-daemon.h> (tests/lint.sh).
// Without $NOTIFY_SOCKET every call is a no-op, so ctfs runs the same outside systemd.
#ifndef CTFS_CMD_SERVICE_NOTIFY_H_
#define CTFS_CMD_SERVICE_NOTIFY_H_

#include <string>

namespace ctfs::cmd {

// NotifyService sends `state` (newline-separated "KEY=VALUE" assignments, sd_notify(3)) to the
// service manager if $NOTIFY_SOCKET is set. Best effort: a failure is logged at debug level.
void NotifyService(const std::string& state);

// NotifyReady: READY=1 with this process's pid as MAINPID (a background daemon is not the
// process systemd started) and a STATUS= line.
void NotifyReady(const std::string& status);

// NotifyStatus: a STATUS= line only.
void NotifyStatus(const std::string& status);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_SERVICE_NOTIFY_H_
