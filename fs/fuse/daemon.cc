// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/daemon.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <optional>
#include <utility>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "fs/fuse/ops.h"

namespace ctfs::fs {
namespace {

// Self-pipe: the signal handler only writes a byte; the revoker thread does the work. The
// handler reads the descriptor, so it is a lock-free atomic (a plain int read in a handler
// while another thread writes it is a data race).
std::atomic<int> g_signal_pipe_write{-1};
static_assert(std::atomic<int>::is_always_lock_free);

// WriteSignalByte: async-signal-safe; 't' revokes (a signal), 'r' revokes (RequestRevoke),
// 'k' revokes for a lost key lease, 'h' reloads the policy.
void WriteSignalByte(char c) {
  const int fd = g_signal_pipe_write.load();
  if (fd >= 0) {
    const int saved_errno = errno;
    (void)!::write(fd, &c, 1);
    errno = saved_errno;
  }
}

void OnTerminate(int) { WriteSignalByte('t'); }

// SIGHUP when it reloads the policy: the revoker thread passes it on.
void OnHangup(int) { WriteSignalByte('h'); }

void OnWake(int) {}  // only interrupts the loop's sem_wait

struct SignalSetup {
  struct sigaction old_term = {}, old_int = {}, old_hup = {}, old_quit = {}, old_usr2 = {};
  void Install(bool hup_reloads) {
    struct sigaction sa = {};
    sa.sa_handler = OnTerminate;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    struct sigaction hup = sa;
    if (hup_reloads) hup.sa_handler = OnHangup;
    sigaction(SIGHUP, &hup, &old_hup);
    sigaction(SIGQUIT, &sa, &old_quit);  // its default would end the daemon without revoking
    struct sigaction wake = {};
    wake.sa_handler = OnWake;  // no SA_RESTART: interrupts sem_wait
    sigemptyset(&wake.sa_mask);
    sigaction(SIGUSR2, &wake, &old_usr2);
    struct sigaction ign = {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, nullptr);
  }
  void Restore() {
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    sigaction(SIGUSR2, &old_usr2, nullptr);
  }
};

// MountDevice returns "major:minor" of the mount at `mountpoint` from /proc/self/mountinfo.
// (stat() on the mountpoint would ask this very daemon, which may not be serving yet.)
std::string MountDevice(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    if (mnt == mountpoint) found = dev;  // the last match is the topmost mount
  }
  return found;
}

// Raises the mount's readahead window so buffered and mmap reads reach the daemon as 1 MiB
// requests with several in flight (fuse-notes.md §4.2). Best effort (needs root).
void RaiseReadahead(const std::string& mountpoint, size_t kb) {
  if (kb == 0) return;
  const std::string dev = MountDevice(mountpoint);
  if (dev.empty()) {
    spdlog::warn("readahead: mount {} not found in mountinfo", mountpoint);
    return;
  }
  const std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  std::ofstream f(path);
  f << kb << "\n";
  f.flush();
  if (!f) {
    spdlog::warn("could not set {} to {} (readahead stays at the kernel default)", path, kb);
  } else {
    spdlog::debug("readahead {} KiB ({})", kb, path);
  }
}

// Drops the kernel's cached pages of every inode we serve, mapped pages included: their next
// touch becomes a READ that the (revoked) tree refuses, or, once the connection is closed, a
// SIGBUS. Must run while the loop still answers requests (a page locked by a pending READ
// would otherwise block the invalidation).
void InvalidateAll(fuse_session* se, const ModelTree& tree) {
  size_t done = 0;
  for (const TreeNode& n : tree.nodes()) {
    if (n.kind == TreeNode::Kind::kDirectory) continue;
    int rc = fuse_lowlevel_notify_inval_inode(se, n.ino, 0, 0);
    if (rc == 0) ++done;
  }
  spdlog::info("revocation: invalidated the page cache of {} file(s)", done);
}

// PolicyThread: while the mount runs, re-decides the live opens when a rule's window opens or
// closes and on SIGHUP (reload), invalidating the page cache of every inode taken away; also
// flushes the audit log's coalesced counts once a second. Runs beside the FUSE loop (an
// invalidation waits for reads of that inode in flight, which the loop must answer).
class PolicyThread {
 public:
  PolicyThread(fuse_session* se, const ModelTree& tree, const DaemonOptions& options)
      : se_(se), tree_(tree), options_(options) {
    if (options_.access != nullptr) thread_ = std::thread([this] { Run(); });
  }
  ~PolicyThread() { Stop(); }
  void RequestReload() {
    MutexLock lock(mu_);
    reload_ = true;
    cv_.SignalAll();
  }
  void Stop() {
    {
      MutexLock lock(mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    AccessControl& access = *options_.access;
    std::optional<int64_t> next = access.NextTransition();
    for (;;) {
      bool reload = false;
      {
        MutexLock lock(mu_);
        // Wake once a second (audit counts), or at the next transition if sooner.
        auto wait = std::chrono::milliseconds(1000);
        if (next) {
          const auto until = std::chrono::system_clock::from_time_t(static_cast<time_t>(*next));
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              until - std::chrono::system_clock::now());
          wait = std::clamp(left, std::chrono::milliseconds(0), wait);
        }
        while (!stop_ && !reload_) {
          if (!cv_.WaitFor(mu_, wait)) break;
        }
        if (stop_) return;
        reload = std::exchange(reload_, false);
      }
      std::vector<uint64_t> inos;
      const int64_t now = static_cast<int64_t>(std::time(nullptr));
      if (reload) {
        Announce(DaemonEvent::kReloading, "SIGHUP: re-reading the policy");
        auto fresh = options_.reload();
        if (fresh.ok()) {
          spdlog::info("SIGHUP: policy reloaded");
          inos = access.Replace(std::move(*fresh));
          Announce(DaemonEvent::kReloaded, "policy reloaded");
          // Entries the kernel cached under the old policy would show hidden names.
          if (access.Hides()) InvalidateEntries();
        } else {
          spdlog::error("SIGHUP: reload rejected, the current policy stays: {}",
                        fresh.status().message());
          access.Audit("reload", "rejected, the current policy stays: " + fresh.status().message());
          Announce(DaemonEvent::kReloadRejected, fresh.status().message());
        }
        next = access.NextTransition();
      } else if (next && *next <= now) {
        inos = access.Reevaluate(now, "window");
        next = access.NextTransition();
      }
      if (!inos.empty()) {
        spdlog::info("policy {}: invalidating the page cache of {} file(s)",
                     reload ? "reload" : "window", inos.size());
      }
      for (uint64_t ino : inos) (void)fuse_lowlevel_notify_inval_inode(se_, ino, 0, 0);
      access.Flush();
    }
  }

  void Announce(DaemonEvent e, const std::string& detail) {
    if (options_.on_event) options_.on_event(e, detail);
  }

  void InvalidateEntries() {
    for (const TreeNode& n : tree_.nodes()) {
      if (n.ino == n.parent_ino || n.name.empty()) continue;  // the root
      (void)fuse_lowlevel_notify_inval_entry(se_, n.parent_ino, n.name.c_str(), n.name.size());
    }
  }

  fuse_session* se_;
  const ModelTree& tree_;
  const DaemonOptions& options_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ CTFS_GUARDED_BY(mu_) = false;
  bool reload_ CTFS_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// LeaseThread: runs the key lease keeper's steps when due, beside the FUSE loop (the
// invalidation after a loss waits for reads in flight, which the loop must answer).
class LeaseThread {
 public:
  LeaseThread(fuse_session* se, const ModelTree& tree, const DaemonOptions& options)
      : se_(se), tree_(tree), leases_(options.leases), on_event_(options.on_event) {
    if (leases_ != nullptr) thread_ = std::thread([this] { Run(); });
  }
  ~LeaseThread() { Stop(); }
  void Stop() {
    {
      MutexLock lock(mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    for (;;) {
      {
        MutexLock lock(mu_);
        const int64_t now = static_cast<int64_t>(std::time(nullptr));
        const int64_t next = leases_->NextStepAt();
        if (next > now) {
          // Whole seconds: wait until the next second starts, at most a minute at a time.
          const auto until = std::chrono::system_clock::from_time_t(
              static_cast<time_t>(std::min(next, now + 60)));
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              until - std::chrono::system_clock::now());
          if (left.count() > 0) (void)cv_.WaitFor(mu_, left);
        }
        if (stop_) return;
      }
      const int64_t now = static_cast<int64_t>(std::time(nullptr));
      if (leases_->NextStepAt() > now) continue;
      switch (leases_->Step(now)) {
        case KeyLeaseKeeper::Action::kNone:
          break;
        case KeyLeaseKeeper::Action::kInvalidate:
          if (on_event_) on_event_(DaemonEvent::kKeyLeaseLost, "key lease lost");
          InvalidateAll(se_, tree_);
          break;
        case KeyLeaseKeeper::Action::kRestored:
          if (on_event_) on_event_(DaemonEvent::kKeyLeaseRestored, "key lease restored");
          break;
        case KeyLeaseKeeper::Action::kUnmount:
          WriteSignalByte('k');  // the revoker does what SIGTERM does
          return;
      }
    }
  }

  fuse_session* se_;
  const ModelTree& tree_;
  KeyLeaseKeeper* leases_;
  const std::function<void(DaemonEvent, const std::string&)>& on_event_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ CTFS_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

void RequestRevoke() { WriteSignalByte('r'); }

std::string MountSource() {
  std::string source = "ctfs:" + std::to_string(::getpid());
  struct stat ns;
  if (::stat("/proc/self/ns/pid", &ns) == 0 && ns.st_ino != 0) {
    source += "@" + std::to_string(static_cast<unsigned long long>(ns.st_ino));
  }
  return source;
}

Status MountAndServe(ServedTree& tree, const DaemonOptions& options,
                     const std::function<void(const Status&)>& ready) {
  std::string mount_opts =
      "ro,nodev,nosuid,default_permissions,fsname=" + MountSource() + ",subtype=ctfs";
  if (options.allow_other) mount_opts += ",allow_other";
  std::vector<std::string> arg_strings = {"ctfs", "-o", mount_opts};
  std::vector<char*> argv;
  for (std::string& s : arg_strings) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  OpsContext ctx{&tree, options.access, options.stats};
  fuse_lowlevel_ops ops = MakeOperations();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &ctx);
  fuse_opt_free_args(&args);
  if (se == nullptr) {
    Status st = InternalError("could not create the FUSE session");
    ready(st);
    return st;
  }
  if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    Status st = UnavailableError(
        "mounting " + options.mountpoint +
        " failed (is /dev/fuse present and usable, and are you root or is fusermount3 setuid?)");
    ready(st);
    return st;
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    Status st = ErrnoError(errno, "pipe");
    ready(st);
    return st;
  }
  g_signal_pipe_write.store(pipe_fds[1]);
  SignalSetup signals;
  signals.Install(static_cast<bool>(options.reload) && options.access != nullptr);
  // The kernel sets the mount's readahead from our INIT reply, so it can only be raised once
  // INIT is done: a statvfs() of the mountpoint returns only after that (and after the loop
  // answered it), and only then is the mount reported ready.
  std::once_flag ready_once;
  auto report_ready = [&](const Status& st) { std::call_once(ready_once, [&] { ready(st); }); };
  std::thread starter([&] {
    struct statvfs sv;
    if (::statvfs(options.mountpoint.c_str(), &sv) != 0) {
      report_ready(ErrnoError(errno, options.mountpoint + ": the new mount does not answer"));
      return;
    }
    RaiseReadahead(options.mountpoint, options.read_ahead_kb);
    spdlog::info("mounted at {} ({} files)", options.mountpoint, tree.tree().FileCount());
    report_ready(Status::Ok());
  });

  std::atomic<bool> loop_done{false};
  std::atomic<bool> revoking{false};
  const pthread_t loop_thread = pthread_self();
  PolicyThread policy_thread(se, tree.tree(), options);
  LeaseThread lease_thread(se, tree.tree(), options);
  std::thread revoker([&] {
    char c = 0;
    for (;;) {
      ssize_t n = ::read(pipe_fds[0], &c, 1);
      if (n == 1 && c == 'h') {  // SIGHUP with a reloadable policy
        policy_thread.RequestReload();
        continue;
      }
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    if (c != 't' && c != 'k' && c != 'r') return;  // 'q': the loop ended by itself (unmounted)
    revoking.store(true);
    // No lease step may invalidate after the loop is gone (a page locked by an unanswered READ
    // would block it, and the unmount behind it): stop the lease thread while the loop runs.
    lease_thread.Stop();
    const std::string why = c == 'k'   ? "key lease lost (on_key_loss: unmount)"
                            : c == 'r' ? "revoke requested (ctfs revoke)"
                                       : "signal received";
    if (options.on_event) options.on_event(DaemonEvent::kRevoking, why);
    spdlog::info("{}: revoking access", why);
    if (options.access != nullptr) options.access->Audit("revoke", why + ": revoking access");
    tree.Revoke();
    InvalidateAll(se, tree.tree());
    fuse_session_exit(se);
    // Wake the loop's main thread (it waits in sem_wait); repeat in case the first signal
    // lands before it waits.
    while (!loop_done.load()) {
      pthread_kill(loop_thread, SIGUSR2);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(options.fuse_threads));
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  loop_done.store(true);
  const char q = 'q';
  (void)!::write(pipe_fds[1], &q, 1);
  revoker.join();
  policy_thread.Stop();
  lease_thread.Stop();
  if (!revoking.load() && options.on_event) {
    options.on_event(DaemonEvent::kUnmounted, "unmounted");
  }

  const ChunkCache& cache = tree.cache();
  spdlog::info(
      "chunk cache: {} hits ({} waited for a load in flight, {} ms in all), {} misses, {} "
      "prefetch jobs, peak {} MiB cached, {} buffers mapped",
      cache.hits(), cache.waits(), cache.wait_ns() / 1000000, cache.misses(), tree.prefetched(),
      cache.peak_cached_bytes() >> 20, cache.pool().mapped_count());
  tree.Revoke();  // idempotent: wipe keys and cached plaintext in every exit path
  if (options.access != nullptr) {
    options.access->Audit("unmount", "the mount ended; keys and cached plaintext wiped");
  }
  signals.Restore();
  g_signal_pipe_write.store(-1);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  fuse_session_unmount(se);  // closes the connection, then detaches the mount
  starter.join();            // its statvfs() has an answer now (or failed with the mount)
  report_ready(UnavailableError(options.mountpoint + ": the mount ended before it was ready"));
  fuse_session_destroy(se);
  spdlog::info("unmounted {}; data keys and cached plaintext wiped", options.mountpoint);
  if (rc != 0 && rc != SIGTERM && rc != SIGINT && rc != SIGHUP && rc != SIGQUIT) {
    return UnavailableError("FUSE loop ended with error " + std::to_string(rc));
  }
  return Status::Ok();
}

}  // namespace ctfs::fs
