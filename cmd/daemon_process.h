// SPDX-License-Identifier: Apache-2.0
// The daemon behind a ctfs mount, as `ctfs umount` sees it: the pid from the mount's source
// ("ctfs:<pid>") may name a running daemon, a zombie (it exited or was killed and its parent has
// not reaped it, e.g. in a container without an init), nothing, or, after pid reuse, some other
// process. DaemonProcess tells these apart and signals and waits race-free through a pidfd.
//
// Identity: a process is taken for the mount's daemon only if its command name (/proc/PID/comm)
// is "ctfs" or that of this binary, and, where /proc/PID/fd is readable, it holds /dev/fuse open
// (a live daemon serving a mount always does). The pidfd is opened before these checks and
// stays valid, so a pid reused after the checks cannot be signalled by mistake.
#ifndef CTFS_CMD_DAEMON_PROCESS_H_
#define CTFS_CMD_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/status.h"

namespace ctfs::cmd {

// ProcStat: the fields of /proc/PID/stat that umount needs.
struct ProcStat {
  std::string comm;    // field 2, without the parentheses (may contain spaces and ')')
  char state = '?';    // field 3: R, S, D, Z (zombie), X (dead), ...
  pid_t ppid = 0;      // field 4
  int exit_code = -1;  // field 52 (Linux 3.5+): waitpid() status of a zombie; -1 if absent
};

// ParseProcStat parses the text of /proc/PID/stat; nothing if it is malformed.
std::optional<ProcStat> ParseProcStat(const std::string& text);

// DescribeWaitStatus: "exited with status 0", "was killed by SIGKILL".
std::string DescribeWaitStatus(int status);

class DaemonProcess {
 public:
  enum class State {
    kRunning,  // the mount's daemon, alive
    kExited,   // the mount's daemon, terminated but not reaped (a zombie)
    kGone,     // no process has this pid any more (exited and reaped)
    kOther,    // the pid now belongs to another program (the daemon is gone, pid reused)
  };

  // Inspect looks at `pid` now (0 = the mount named no pid: kGone).
  static DaemonProcess Inspect(pid_t pid);
  DaemonProcess(DaemonProcess&& o) noexcept;
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  ~DaemonProcess();

  pid_t pid() const { return pid_; }
  State state() const { return state_; }
  // What the pid is now, for messages: "ctfs", or e.g. "sleep (state S)".
  const std::string& what() const { return what_; }

  // Signal sends `signo` to the daemon. REQUIRES state() == kRunning.
  Status Signal(int signo);
  // WaitExit waits up to `timeout_s` for a running daemon to terminate (zombie or reaped) and
  // updates state(); true once it is no longer running.
  bool WaitExit(double timeout_s);
  // Ending: how the daemon ended, when known ("exited with status 0", "was killed by SIGKILL":
  // only while it is a zombie); empty otherwise.
  std::string Ending() const;

 private:
  DaemonProcess() = default;
  void Refresh();
  pid_t pid_ = 0;
  int pidfd_ = -1;
  State state_ = State::kGone;
  std::string what_;
  int exit_code_ = -1;
};

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_DAEMON_PROCESS_H_
