// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon_process.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace ctfs::cmd {
namespace {

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::optional<std::string> text = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  return ParseProcStat(*text);
}

const std::string& OwnComm() {
  static const std::string comm = [] {
    std::string c = ReadSmallFile("/proc/self/comm").value_or("ctfs");
    while (!c.empty() && c.back() == '\n') c.pop_back();
    return c;
  }();
  return comm;
}

bool IsCtfsName(const std::string& comm) { return comm == "ctfs" || comm == OwnComm(); }

// HoldsDevFuse: whether `pid` has /dev/fuse open; nothing if its descriptors are not readable.
std::optional<bool> HoldsDevFuse(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return std::nullopt;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[64];
    ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == "/dev/fuse") {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

bool IsDeadState(char state) { return state == 'Z' || state == 'X'; }

}  // namespace

std::optional<ProcStat> ParseProcStat(const std::string& text) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so it ends at the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return std::nullopt;
  }
  ProcStat st;
  st.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> f;  // f[k] is field k + 3
  for (std::string w; rest >> w;) f.push_back(w);
  if (f.size() < 2 || f[0].size() != 1) return std::nullopt;
  st.state = f[0][0];
  char* end = nullptr;
  st.ppid = static_cast<pid_t>(std::strtol(f[1].c_str(), &end, 10));
  if (*end != '\0') return std::nullopt;
  if (f.size() > 49) {
    long code = std::strtol(f[49].c_str(), &end, 10);
    if (*end == '\0' && code >= 0 && code <= 0xffff) st.exit_code = static_cast<int>(code);
  }
  return st;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return "was killed by " +
           (abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig));
  }
  return "ended (wait status " + std::to_string(status) + ")";
}

DaemonProcess DaemonProcess::Inspect(pid_t pid) {
  DaemonProcess d;
  d.pid_ = pid;
  if (pid <= 0) return d;
  d.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (d.pidfd_ < 0 && errno == ESRCH) return d;  // no such process
  std::optional<ProcStat> st = ReadProcStat(pid);
  if (!st) return d;
  d.what_ = st->comm + " (state " + std::string(1, st->state) + ")";
  if (!IsCtfsName(st->comm)) {
    d.state_ = State::kOther;
  } else if (IsDeadState(st->state)) {
    d.state_ = State::kExited;
    d.exit_code_ = st->exit_code;
  } else if (HoldsDevFuse(pid).value_or(true)) {
    d.state_ = State::kRunning;
  } else {
    d.what_ = st->comm + " without /dev/fuse open";
    d.state_ = State::kOther;
  }
  // The pidfd names the process that had `pid` when it was opened. If that one has exited by
  // now, what /proc showed may already be a newer process with the same pid: look again.
  if (d.state_ == State::kRunning && d.pidfd_ >= 0) {
    pollfd p = {d.pidfd_, POLLIN, 0};
    if (::poll(&p, 1, 0) == 1) d.Refresh();
  }
  return d;
}

DaemonProcess::DaemonProcess(DaemonProcess&& o) noexcept
    : pid_(o.pid_),
      pidfd_(o.pidfd_),
      state_(o.state_),
      what_(std::move(o.what_)),
      exit_code_(o.exit_code_) {
  o.pidfd_ = -1;
}

DaemonProcess::~DaemonProcess() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

// Refresh: the daemon is known to have terminated (pidfd readable) or may have (no pidfd).
void DaemonProcess::Refresh() {
  std::optional<ProcStat> st = ReadProcStat(pid_);
  if (!st) {
    state_ = State::kGone;
  } else if (IsCtfsName(st->comm) && IsDeadState(st->state)) {
    state_ = State::kExited;
    exit_code_ = st->exit_code;
  } else if (pidfd_ >= 0 || !IsCtfsName(st->comm)) {
    state_ = State::kGone;  // the pid was reaped and reused
  }
}

Status DaemonProcess::Signal(int signo) {
  long rc = pidfd_ >= 0 ? ::syscall(SYS_pidfd_send_signal, pidfd_, signo, nullptr, 0)
                        : ::kill(pid_, signo);
  if (rc == 0 || errno == ESRCH) return Status::Ok();  // ESRCH: it exited meanwhile
  return ErrnoError(errno, "signal the ctfs daemon (pid " + std::to_string(pid_) + ")");
}

bool DaemonProcess::WaitExit(double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    if (state_ != State::kRunning) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (pidfd_ >= 0) {
      // Readable once the process has terminated, whether or not it has been reaped.
      pollfd p = {pidfd_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::clamp<long>(left.count(), 0, 100)));
      if (n == 1) Refresh();
    } else {
      Refresh();
      if (state_ == State::kRunning) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (state_ != State::kRunning) return true;
    if (left.count() <= 0) return false;
  }
}

std::string DaemonProcess::Ending() const {
  if (state_ != State::kExited || exit_code_ < 0) return "";
  return DescribeWaitStatus(exit_code_);
}

}  // namespace ctfs::cmd
