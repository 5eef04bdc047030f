// SPDX-License-Identifier: Apache-2.0
#include "cmd/interrupt.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <vector>

namespace ctfs::cmd {
namespace {

std::mutex g_output_mu;
std::atomic<bool> g_interrupted{false};

std::vector<std::string>& Partials() {  // GUARDED_BY(g_output_mu)
  static std::vector<std::string> partials;
  return partials;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// RemoveTree removes `path`; a worker may still create a file in it for a moment (until its
// directory is gone, creating anything there fails), so it retries until the path is gone.
bool RemoveTree(const std::string& path) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (!Exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

const char* SignalName(int signo) {
  switch (signo) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

[[noreturn]] void HandleSignal(int signo) {
  g_interrupted.store(true);
  g_output_mu.lock();  // never released: the process ends here
  std::string removed, left;
  for (const std::string& p : Partials()) {
    std::string& list = RemoveTree(p) ? removed : left;
    list += (list.empty() ? "" : ", ") + p;
  }
  std::string msg = ::isatty(STDERR_FILENO) == 1 ? "\r\033[K" : "";
  msg += std::string("ctfs: interrupted by ") + SignalName(signo);
  if (removed.empty() && left.empty()) msg += "; no partial output was left";
  if (!removed.empty()) msg += ": removed the partial output " + removed;
  if (!left.empty()) msg += "; could not remove " + left;
  msg += "\n";
  (void)!::write(STDERR_FILENO, msg.data(), msg.size());
  ::_exit(128 + signo);
}

void WatchLoop(int signal_fd, int stop_fd) {
  pollfd fds[2] = {{stop_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;  // Stop(): the command finished first
    if ((fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo si = {};
      if (::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        HandleSignal(static_cast<int>(si.ssi_signo));
      }
    }
  }
}

}  // namespace

std::mutex& OutputLock() { return g_output_mu; }

void RegisterPartialOutput(const std::string& path) { Partials().push_back(path); }

void UnregisterPartialOutput(const std::string& path) {
  std::vector<std::string>& v = Partials();
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (*it == path) {
      v.erase(it);
      return;
    }
  }
}

bool InterruptRequested() { return g_interrupted.load(std::memory_order_relaxed); }

Result<InterruptWatch> InterruptWatch::Start() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : {SIGINT, SIGTERM, SIGHUP}) {
    // A blocked signal is queued even when ignored: keep what the caller ignores ignored.
    struct sigaction cur = {};
    if (::sigaction(signo, nullptr, &cur) == 0 && cur.sa_handler == SIG_IGN) continue;
    sigaddset(&set, signo);
  }
  InterruptWatch w;
  int rc = ::pthread_sigmask(SIG_BLOCK, &set, &w.old_mask_);
  if (rc != 0) return ErrnoError(rc, "block signals");
  w.signal_fd_ = ::signalfd(-1, &set, SFD_CLOEXEC);
  int err = errno;
  if (w.signal_fd_ >= 0) {
    w.stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    err = errno;
  }
  if (w.signal_fd_ < 0 || w.stop_fd_ < 0) {
    if (w.signal_fd_ >= 0) ::close(w.signal_fd_);
    ::pthread_sigmask(SIG_SETMASK, &w.old_mask_, nullptr);
    return ErrnoError(err, "watch for interrupting signals");
  }
  w.watcher_ = std::thread(WatchLoop, w.signal_fd_, w.stop_fd_);
  w.active_ = true;
  return w;
}

InterruptWatch::InterruptWatch(InterruptWatch&& o) noexcept
    : signal_fd_(o.signal_fd_),
      stop_fd_(o.stop_fd_),
      watcher_(std::move(o.watcher_)),
      active_(o.active_),
      old_mask_(o.old_mask_) {
  o.active_ = false;
  o.signal_fd_ = o.stop_fd_ = -1;
}

void InterruptWatch::Stop() {
  if (!active_) return;
  active_ = false;
  const uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  watcher_.join();  // never returns if the watcher is handling a signal: it exits the process
  ::close(signal_fd_);
  ::close(stop_fd_);
  signal_fd_ = stop_fd_ = -1;
  ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace ctfs::cmd
