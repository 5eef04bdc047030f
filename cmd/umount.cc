// SPDX-License-Identifier: Apache-2.0
// ctfs umount MNT [--force]: end a ctfs mount and wait until its daemon has wiped its keys and
// exited.
//   plain   : like `fusermount3 -u`; refused while a process has a file open or mapped.
//   --force : revocation. The daemon (found from the mount's source "ctfs:<pid>") gets SIGTERM:
//             it denies further reads, drops the kernel page cache of every file (mapped pages
//             too: their next touch raises SIGBUS), wipes keys and cached plaintext, detaches
//             the mount and exits. Copies a process already made are not recalled.
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/subcommands.h"

namespace ctfs::cmd {
namespace {

struct CtfsMount {
  std::string mountpoint;
  pid_t daemon_pid = 0;
};

// Mount points in mountinfo escape space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// FindMount returns the ctfs mount at `path` from /proc/self/mountinfo, if any.
std::optional<CtfsMount> FindMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt, field;
    ls >> id >> parent >> dev >> root >> mnt;
    while (ls >> field && field != "-") {
    }
    std::string fstype, source;
    ls >> fstype >> source;
    if (fstype != "fuse.ctfs" || Unescape(mnt) != path) continue;
    CtfsMount m;
    m.mountpoint = path;
    if (source.rfind("ctfs:", 0) == 0) m.daemon_pid = std::atoi(source.c_str() + 5);
    return m;
  }
  return std::nullopt;
}

bool Alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// WaitGone waits until the mount is gone and the daemon has exited.
bool WaitGone(const CtfsMount& m, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!FindMount(m.mountpoint) && !Alive(m.daemon_pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// RunFusermount runs `fusermount3 -u [-z] path`, returning its exit status and stderr.
int RunFusermount(const std::string& path, bool lazy, std::string* err) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    if (lazy) {
      ::execlp("fusermount3", "fusermount3", "-u", "-z", path.c_str(), nullptr);
    } else {
      ::execlp("fusermount3", "fusermount3", "-u", path.c_str(), nullptr);
    }
    _exit(127);
  }
  ::close(pipefd[1]);
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) err->append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Status Umount(const UmountArgs& args) {
  char* real = ::realpath(args.mountpoint.c_str(), nullptr);
  if (real == nullptr) return ErrnoError(errno, args.mountpoint);
  std::string path = real;
  std::free(real);
  std::optional<CtfsMount> m = FindMount(path);
  if (!m) return NotFoundError(path + ": not a ctfs mount");

  if (args.force) {
    if (Alive(m->daemon_pid)) {
      if (::kill(m->daemon_pid, SIGTERM) != 0) {
        return ErrnoError(errno,
                          "signal the ctfs daemon (pid " + std::to_string(m->daemon_pid) + ")");
      }
      if (WaitGone(*m, args.timeout_s)) return Status::Ok();
      return UnavailableError("the ctfs daemon (pid " + std::to_string(m->daemon_pid) +
                              ") did not finish revocation within " +
                              std::to_string(args.timeout_s) + " s");
    }
    // The daemon is gone (killed): nothing is left to revoke in memory; detach the mount.
    std::string err;
    if (RunFusermount(path, true, &err) != 0 && ::umount2(path.c_str(), MNT_DETACH) != 0) {
      return ErrnoError(errno, "detach " + path);
    }
    return Status::Ok();
  }

  std::string err;
  int rc = RunFusermount(path, false, &err);
  if (rc != 0) {
    if (err.find("busy") != std::string::npos) {
      return FailedPreconditionError(
          path + " is busy (a process has a file open or mapped); `ctfs umount --force " + path +
          "` revokes access anyway");
    }
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return UnavailableError("fusermount3 -u " + path + " failed: " + err);
  }
  if (!WaitGone(*m, args.timeout_s)) {
    return UnavailableError("the ctfs daemon (pid " + std::to_string(m->daemon_pid) +
                            ") did not exit within " + std::to_string(args.timeout_s) + " s");
  }
  return Status::Ok();
}

}  // namespace

CLI::App* AddUmount(CLI::App& app, UmountArgs& args) {
  CLI::App* c = app.add_subcommand(
      "umount",
      "Unmount a ctfs mount and wait until its daemon has wiped its keys. --force revokes "
      "access even while files are open or mapped");
  app.add_subcommand("revoke", "Same as `umount --force`")
      ->callback([&args]() {
        args.force = true;
        args.via_revoke = true;
      })
      ->add_option("MNT", args.mountpoint, "Mountpoint")
      ->required();
  c->add_option("MNT", args.mountpoint, "Mountpoint")->required();
  c->add_flag("--force", args.force,
              "Revoke: invalidate cached plaintext (mapped pages too), wipe keys, detach");
  c->add_option("--timeout", args.timeout_s, "Seconds to wait for the daemon (default 10)");
  return c;
}

int RunUmount(const UmountArgs& args) { return ExitWith(Umount(args)); }

}  // namespace ctfs::cmd
