// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon_locator.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cmd/control_socket.h"

namespace ctfs::cmd {
namespace {

// The inode of the initial pid namespace (the kernel's PROC_PID_INIT_INO), from which every
// process is visible.
constexpr uint64_t kInitialPidNamespace = 0xEFFFFFFCu;

// PidNamespaceOf: the inode in the link text "pid:[4026531836]" of PROC/<pid>/ns/pid; 0 if
// unreadable.
uint64_t PidNamespaceOf(const std::string& proc, const std::string& pid) {
  char target[64];
  const std::string link = proc + "/" + pid + "/ns/pid";
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  const std::string t(target);
  if (t.rfind("pid:[", 0) != 0 || t.back() != ']') return 0;
  char* end = nullptr;
  const unsigned long long ino = std::strtoull(t.c_str() + 5, &end, 10);
  return end == t.c_str() + t.size() - 1 ? ino : 0;
}

// InnermostPid: the last pid of the NSpid line of PROC/<pid>/status (the pid the process has in
// its own namespace); 0 if absent.
pid_t InnermostPid(const std::string& proc, const std::string& pid) {
  std::ifstream in(proc + "/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    long last = 0;
    for (long v; fields >> v;) last = v;
    return last > 0 ? static_cast<pid_t>(last) : 0;
  }
  return 0;
}

bool IsPidName(const char* name) {
  if (*name == '\0') return false;
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return false;
  }
  return true;
}

}  // namespace

std::string LocatedDaemon::ControlPath(uid_t uid) const {
  return root + ControlSocketPath(own_pid, uid);
}

LocatedDaemon LocateDaemon(const MountEntry& e) {
  const std::string proc = "/proc";
  LocatedDaemon d;
  d.own_pid = e.daemon_pid();
  if (d.own_pid <= 0) return d;
  const uint64_t ns = e.daemon_pidns();
  d.where = "pid " + std::to_string(d.own_pid);
  const uint64_t own_ns = PidNamespaceOf(proc, "self");
  if (ns == 0 || ns == own_ns) {
    d.pid = d.own_pid;
    return d;
  }
  d.where += " in pid namespace " + std::to_string(ns);
  DIR* dir = ::opendir(proc.c_str());
  if (dir == nullptr) {
    d.unseen_namespace = own_ns != kInitialPidNamespace;
    return d;
  }
  bool seen = false;
  while (dirent* ent = ::readdir(dir)) {
    if (!IsPidName(ent->d_name) || PidNamespaceOf(proc, ent->d_name) != ns) continue;
    seen = true;
    if (InnermostPid(proc, ent->d_name) == d.own_pid) {
      d.pid = static_cast<pid_t>(std::atol(ent->d_name));
      d.root = proc + "/" + ent->d_name + "/root";
      d.where += " (pid " + std::to_string(d.pid) + " here)";
      break;
    }
  }
  ::closedir(dir);
  // Processes of the namespace are visible but none is the daemon: it is gone. None visible:
  // the namespace is not below ours, or it has no process left at all (the daemon is gone);
  // the initial namespace sees every other one, so there it is the latter.
  d.unseen_namespace = !seen && own_ns != kInitialPidNamespace;
  return d;
}

}  // namespace ctfs::cmd
