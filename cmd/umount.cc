// SPDX-License-Identifier: Apache-2.0
// ctfs umount MNT [--force]: end a ctfs mount and wait until its daemon has exited.
//   plain   : like `fusermount3 -u`; refused (exit 7) while a process has a file open or mapped.
//   --force : revocation (also `ctfs revoke MNT`). The daemon (found from the mount's source
//             "ctfs:<pid>") is asked over its control socket (SIGTERM if it has none):
//             it denies further reads, drops the kernel page cache of every file (mapped pages
//             too: their next touch raises SIGBUS), wipes keys and cached plaintext, detaches
//             the mount and exits. Copies a process already made are not recalled.
// A daemon that is no longer running (killed, possibly a zombie its parent never reaps, or a
// pid that now names another program: cmd/daemon_process.h) cannot revoke anything and is not
// waited for or signalled: --force detaches the mount at once, a plain umount unmounts it if
// nothing uses it, and both say on stderr that nothing was revoked. One line on stdout tells
// what was done, unless --quiet.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "cmd/common.h"
#include "cmd/control_socket.h"
#include "cmd/daemon_locator.h"
#include "cmd/daemon_process.h"
#include "cmd/exit_codes.h"
#include "cmd/mount_table.h"
#include "cmd/subcommands.h"

namespace ctfs::cmd {
namespace {

namespace stdfs = std::filesystem;

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

// ResolveMountpoint returns MNT as the mount table writes it (absolute, symlinks resolved).
// realpath() of a FUSE mount whose daemon died fails with ENOTCONN; then the parent directory
// is resolved and the last component kept.
Result<std::string> ResolveMountpoint(const std::string& arg) {
  if (char* real = ::realpath(arg.c_str(), nullptr)) {
    std::string out = real;
    std::free(real);
    return out;
  }
  const int err = errno;
  if (err != ENOTCONN) return ErrnoError(err, arg);
  stdfs::path p = stdfs::absolute(arg).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "dir/" -> "dir"
  std::error_code ec;
  stdfs::path parent = stdfs::canonical(p.parent_path(), ec);
  return ((ec ? p.parent_path() : parent) / p.filename()).string();
}

// RunFusermount runs `fusermount3 -u [-z] path`, returning its exit status (127: could not
// run it) and its stderr.
int RunFusermount(const std::string& path, bool lazy, std::string* err) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return 127;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return 127;
  }
  if (pid == 0) {
    ::dup2(pipefd[1], 2);
    if (lazy) {
      ::execlp("fusermount3", "fusermount3", "-u", "-z", path.c_str(), nullptr);
    } else {
      ::execlp("fusermount3", "fusermount3", "-u", path.c_str(), nullptr);
    }
    _exit(127);
  }
  ::close(pipefd[1]);
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR);) {
    if (n > 0) err->append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

// Unmount unmounts `path` (lazily: detaches it, even while in use) with fusermount3, which
// also works for mounts of other users; without fusermount3, or if a lazy detach through it
// fails, with umount2(). Busy while in use (not lazy).
Status Unmount(const std::string& path, bool lazy) {
  std::string err;
  int rc = RunFusermount(path, lazy, &err);
  if (rc == 0) return Status::Ok();
  if (rc == 127 || lazy) {
    if (::umount2(path.c_str(), lazy ? MNT_DETACH : 0) == 0) return Status::Ok();
    if (rc == 127) return ErrnoError(errno, "unmount " + path);
  }
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (err.find("busy") != std::string::npos) return BusyError(path + ": " + err);
  return UnavailableError("fusermount3 -u " + std::string(lazy ? "-z " : "") + path +
                          " failed: " + err);
}

bool WaitMountGone(const std::string& path, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    std::optional<MountEntry> m = FindMountAt(path);
    if (!m || m->fstype != kCtfsFsType) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string DaemonName(const DaemonProcess& d) {
  return "its daemon (pid " + std::to_string(d.pid()) + ")";
}

// NotRunningNote says why the daemon of a mount is not running, and what that means.
std::string NotRunningNote(const DaemonProcess& d) {
  std::string why;
  switch (d.state()) {
    case DaemonProcess::State::kExited:
      why = d.Ending().empty() ? "has terminated" : d.Ending();
      why += " (its parent has not reaped it)";
      break;
    case DaemonProcess::State::kOther:
      why =
          "is gone: the pid now belongs to another process, " + d.what() + ", which was left alone";
      break;
    default:
      why = d.pid() > 0 ? "is not running (killed?)" : "is unknown (the mount names no pid)";
      break;
  }
  return DaemonName(d) + " " + why +
         ": nothing revoked access, so pages already read stay readable through existing "
         "mappings until the kernel evicts them";
}

// UnmountOrphan ends a mount whose daemon is not running.
Status UnmountOrphan(const UmountArgs& args, const std::string& path, const DaemonProcess& d) {
  Status st = Unmount(path, /*lazy=*/args.force);
  if (!st.ok()) {
    if (st.code() == StatusCode::kBusy) {
      return BusyError(path + " is busy (a process has a file open or mapped) and " +
                       NotRunningNote(d) + "; `ctfs umount --force " + path + "` detaches it");
    }
    return st;
  }
  std::fprintf(stderr, "ctfs: warning: %s: %s\n", path.c_str(), NotRunningNote(d).c_str());
  if (!args.quiet) std::printf("%s %s\n", args.force ? "detached" : "unmounted", path.c_str());
  return Status::Ok();
}

// ExitNote: "wiped its keys and exited" (a clean exit, which the daemon makes only after its
// wipe), otherwise what is known.
std::string ExitNote(const DaemonProcess& d) {
  const std::string ending = d.Ending();
  if (ending == "exited with status 0") return "wiped its keys and exited";
  return ending.empty() ? "exited" : ending;
}

void WarnIfUnclean(const std::string& path, const DaemonProcess& d) {
  const std::string ending = d.Ending();
  if (!ending.empty() && ending != "exited with status 0") {
    std::fprintf(stderr, "ctfs: warning: %s: %s %s; it may not have wiped everything\n",
                 path.c_str(), DaemonName(d).c_str(), ending.c_str());
  }
}

// AskToRevoke asks the daemon over its control socket (cmd/control_socket.h), which checks
// the caller's credentials; a daemon without a socket (it could not create one) gets SIGTERM,
// which does the same.
Status AskToRevoke(const std::string& path, const LocatedDaemon& where, DaemonProcess& d) {
  struct stat proc_st;
  const std::string proc = "/proc/" + std::to_string(d.pid());
  if (::stat(proc.c_str(), &proc_st) == 0) {
    Result<std::string> answer = AskDaemon(where.ControlPath(proc_st.st_uid), "revoke");
    if (answer.ok()) {
      if (*answer == "revoking\n") return Status::Ok();
      return UnavailableError(path + ": " + DaemonName(d) + " refused to revoke: " + *answer);
    }
    if (answer.status().code() != StatusCode::kNotFound) return answer.status().WithContext(path);
  }
  return d.Signal(SIGTERM);
}

Status Revoke(const UmountArgs& args, const std::string& path, const LocatedDaemon& where,
              DaemonProcess& d) {
  CTFS_RETURN_IF_ERROR(AskToRevoke(path, where, d));
  if (!d.WaitExit(args.timeout_s)) {
    return UnavailableError(DaemonName(d) + " of " + path + " did not finish revocation within " +
                            Seconds(args.timeout_s) + "; it is still running and " + path +
                            " is still mounted (--timeout waits longer)");
  }
  WarnIfUnclean(path, d);
  // The daemon detaches the mount before it exits; one that died midway leaves it behind.
  if (!WaitMountGone(path, 1.0)) {
    CTFS_RETURN_IF_ERROR(Unmount(path, /*lazy=*/true));
    std::fprintf(stderr, "ctfs: warning: %s: %s ended without detaching the mount; detached it\n",
                 path.c_str(), DaemonName(d).c_str());
  }
  if (!args.quiet) {
    std::printf("revoked and unmounted %s (daemon pid %d %s)\n", path.c_str(),
                static_cast<int>(d.pid()), ExitNote(d).c_str());
  }
  return Status::Ok();
}

Status UnmountLive(const UmountArgs& args, const std::string& path, DaemonProcess& d) {
  Status st = Unmount(path, /*lazy=*/false);
  if (!st.ok()) {
    if (st.code() == StatusCode::kBusy) {
      return BusyError(path + " is busy (a process has a file open or mapped); `ctfs umount " +
                       "--force " + path + "` revokes access anyway");
    }
    return st;
  }
  if (!d.WaitExit(args.timeout_s)) {
    return UnavailableError("unmounted " + path + ", but " + DaemonName(d) +
                            " did not exit within " + Seconds(args.timeout_s) +
                            " (--timeout waits longer)");
  }
  WarnIfUnclean(path, d);
  if (!args.quiet) {
    std::printf("unmounted %s (daemon pid %d %s)\n", path.c_str(), static_cast<int>(d.pid()),
                ExitNote(d).c_str());
  }
  return Status::Ok();
}

Status Umount(const UmountArgs& args) {
  CTFS_ASSIGN_OR_RETURN(std::string path, ResolveMountpoint(args.mountpoint));
  std::optional<MountEntry> m = FindMountAt(path);
  if (!m) return NotFoundError(path + ": not a ctfs mount (nothing is mounted there)");
  if (m->fstype != kCtfsFsType) {
    return NotFoundError(path + ": not a ctfs mount (" + m->fstype + " is mounted there)");
  }
  const LocatedDaemon where = LocateDaemon(*m);
  if (where.unseen_namespace) {
    // Whether it runs cannot be told from here, and detaching would revoke nothing.
    return UnavailableError(path + ": its daemon (" + where.where +
                            ") runs in a pid namespace this process cannot see: run `ctfs " +
                            (args.via_revoke ? "revoke" : "umount") +
                            "` where it runs (e.g. kubectl exec or podman exec)");
  }
  DaemonProcess d = DaemonProcess::Inspect(where.pid);
  if (d.state() != DaemonProcess::State::kRunning) return UnmountOrphan(args, path, d);
  return args.force ? Revoke(args, path, where, d) : UnmountLive(args, path, d);
}

void AddCommonOptions(CLI::App* c, UmountArgs& args) {
  c->add_option("MNT", args.mountpoint, "Mountpoint")->required();
  c->add_option("--timeout", args.timeout_s, "Seconds to wait for the daemon to exit (default 10)")
      ->check(CLI::Range(0.0, 86400.0));
  c->add_flag("-q,--quiet", args.quiet, "Print nothing on success (warnings still go to stderr)");
}

}  // namespace

CLI::App* AddUmount(CLI::App& app, UmountArgs& args) {
  CLI::App* c = app.add_subcommand(
      "umount",
      "Unmount a ctfs mount and wait until its daemon has wiped its keys and exited. --force "
      "revokes access even while files are open or mapped");
  CLI::App* revoke = app.add_subcommand("revoke", "Same as `umount --force`");
  revoke->callback([&args]() {
    args.force = true;
    args.via_revoke = true;
  });
  AddCommonOptions(c, args);
  AddCommonOptions(revoke, args);
  c->add_flag("--force", args.force,
              "Revoke: invalidate cached plaintext (mapped pages too), wipe keys, detach; a "
              "mount whose daemon is not running is detached at once");
  return c;
}

int RunUmount(const UmountArgs& args) { return ExitWith(Umount(args)); }

}  // namespace ctfs::cmd
