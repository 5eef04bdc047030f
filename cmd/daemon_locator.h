// SPDX-License-Identifier: Apache-2.0
// Finding the daemon of a ctfs mount from the mount table, also when it runs in another pid
// namespace (a container, a Kubernetes pod) than the caller.
//
// The daemon names itself in the mount's source as "ctfs:<pid>@<pidns inode>" (fs/fuse/daemon.cc):
// its pid as it sees it and the inode of its pid namespace (/proc/self/ns/pid). A caller in the
// same namespace uses the pid as it is. A caller in an ancestor namespace (root on the node)
// cannot: that number may name any process there, even another ctfs daemon serving another
// mount. It looks for the process in that namespace whose innermost pid (the last NSpid of
// /proc/PID/status) is the one named, and reaches its control socket through /proc/PID/root.
// A caller that cannot see the namespace (the daemon runs outside the caller's container) gets
// nothing it could signal. A source without "@" (a daemon of an older version) is taken as
// naming a pid in the caller's namespace.
#ifndef CTFS_CMD_DAEMON_LOCATOR_H_
#define CTFS_CMD_DAEMON_LOCATOR_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "cmd/mount_table.h"

namespace ctfs::cmd {

struct LocatedDaemon {
  pid_t pid = 0;                  // in the caller's pid namespace; 0: not found
  pid_t own_pid = 0;              // in its own: its control socket's name and status "pid"
  std::string root;               // "" or "/proc/<pid>/root": its files, seen from here
  bool unseen_namespace = false;  // in a pid namespace of which the caller sees no process
  std::string where;              // for messages: "pid 1 in pid namespace 4026532712 (...)"

  // ControlPath: the daemon's control socket (cmd/control_socket.h) as the caller reaches it.
  std::string ControlPath(uid_t uid) const;
};

// LocateDaemon finds the daemon that `e`'s source names.
LocatedDaemon LocateDaemon(const MountEntry& e);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_DAEMON_LOCATOR_H_
