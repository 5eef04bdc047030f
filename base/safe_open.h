// SPDX-License-Identifier: Apache-2.0
// Opening files of a source tree that someone else may change while we serve it. A path is
// resolved inside a directory held open (never above it), no symlink is followed at any
// component, and nothing is opened in a way that can block (a FIFO) or act (a device): the
// entry is first opened O_PATH, checked with fstat, and only a regular file is reopened for
// reading, through its O_PATH descriptor (the same inode, whatever the path names by then).
#ifndef CTFS_BASE_SAFE_OPEN_H_
#define CTFS_BASE_SAFE_OPEN_H_

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace ctfs {

// FileIdentity: what a snapshot remembers of a regular file to recognise it later.
struct FileIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  struct timespec mtime = {};

  static FileIdentity Of(const struct stat& st);
};

// DescribeChange returns "" if `now` is still the file `was` describes (same device, inode,
// size and modification time, still a regular file), else what changed, e.g.
// "it is a FIFO now", "it was replaced (another inode)", "its size changed from 10 to 12".
std::string DescribeChange(const FileIdentity& was, const struct stat& now);

// OpenBeneath opens `rel_path` inside directory `root_fd` with `flags` (O_PATH, O_RDONLY,
// O_DIRECTORY...), plus O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC, refusing ("..", absolute
// paths, symlinks at any component) anything that would leave the tree or follow a link:
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS), or, where the kernel
// lacks openat2, a walk of the components with openat(O_NOFOLLOW). A symlink is
// FailedPrecondition naming it.
Result<UniqueFd> OpenBeneath(int root_fd, const std::string& rel_path, int flags);

// OpenedFile: a regular file opened for reading, with the fstat of the open descriptor.
struct OpenedFile {
  UniqueFd fd;
  struct stat st = {};
};

// OpenRegularAt opens entry `name` of directory `dir_fd` (no symlink followed) for reading if
// it is a regular file; FailedPrecondition naming `path_for_errors` if it is anything else.
Result<OpenedFile> OpenRegularAt(int dir_fd, const std::string& name,
                                 const std::string& path_for_errors);

// OpenSnapshotFile opens `rel_path` beneath `root_fd` for reading only if it is still the
// regular file `identity` describes; DataLoss naming `path_for_errors` and the change
// otherwise (NotFound if it is gone). Never blocks on a FIFO, never opens a device.
Result<UniqueFd> OpenSnapshotFile(int root_fd, const std::string& rel_path,
                                  const FileIdentity& identity,
                                  const std::string& path_for_errors);

// ReopenFd opens the file of descriptor `fd` (e.g. O_PATH) again with `flags` | O_CLOEXEC,
// through /proc/self/fd: the same inode, whatever its path names now.
Result<UniqueFd> ReopenFd(int fd, int flags, const std::string& path_for_errors);

}  // namespace ctfs

#endif  // CTFS_BASE_SAFE_OPEN_H_
