// SPDX-License-Identifier: Apache-2.0
// Reading the mount table (/proc/self/mountinfo): which file system is mounted at a path, and
// the daemon a ctfs mount names in its source ("ctfs:<pid>@<pidns inode>", set by
// fs/fuse/daemon.cc; cmd/daemon_locator.h finds that daemon).
#ifndef CTFS_CMD_MOUNT_TABLE_H_
#define CTFS_CMD_MOUNT_TABLE_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ctfs::cmd {

inline constexpr char kCtfsFsType[] = "fuse.ctfs";

struct MountEntry {
  std::string mountpoint;  // unescaped
  std::string fstype;      // e.g. "fuse.ctfs"
  std::string source;      // e.g. "ctfs:1234@4026531836"
  // The daemon pid, as the daemon sees it, from a "ctfs:<pid>[@<pidns inode>]" source; 0 if
  // the source has another form.
  pid_t daemon_pid() const;
  // The inode of the daemon's pid namespace; 0 if the source names none (an older daemon).
  uint64_t daemon_pidns() const;
};

// FindMountAt returns the topmost mount whose mount point is exactly `path` (absolute, no
// trailing slash, symlinks resolved), or nothing if `path` is not a mount point.
std::optional<MountEntry> FindMountAt(const std::string& path);

// ParseMountinfoLine parses one line of /proc/<pid>/mountinfo (exposed for tests).
std::optional<MountEntry> ParseMountinfoLine(const std::string& line);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_MOUNT_TABLE_H_
