// SPDX-License-Identifier: Apache-2.0
#include "base/safe_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <vector>

namespace ctfs {
namespace {

// Flags O_PATH may be combined with (openat2 refuses any other).
constexpr int kPathFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

int SafeFlags(int flags) {
  if ((flags & O_PATH) != 0) return (flags & kPathFlags) | O_NOFOLLOW | O_CLOEXEC;
  return flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
}

// WalkBeneath resolves `rel_path` one component at a time with openat(O_NOFOLLOW); returns a
// descriptor or -errno. A symlinked directory fails with ENOTDIR, a final symlink with ELOOP
// (or, for O_PATH, opens the link itself, which the caller's fstat then sees).
int WalkBeneath(int root_fd, const std::string& rel_path, int flags) {
  std::vector<std::string_view> parts;
  std::string_view rest = rel_path;
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") return -EXDEV;
    parts.push_back(part);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (parts.empty()) return -EINVAL;
  UniqueFd dir;
  int cur = root_fd;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string name(parts[i]);
    int fd = ::openat(cur, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    dir = UniqueFd(fd);
    cur = dir.get();
  }
  const std::string last(parts.back());
  int fd = ::openat(cur, last.c_str(), flags);
  return fd < 0 ? -errno : fd;
}

// OpenBeneathRaw is OpenBeneath returning a descriptor or -errno.
int OpenBeneathRaw(int root_fd, const std::string& rel_path, int flags) {
  flags = SafeFlags(flags);
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd, rel_path.c_str(), &how, sizeof how);
  if (fd >= 0) return static_cast<int>(fd);
  if (errno != ENOSYS) return -errno;
  return WalkBeneath(root_fd, rel_path, flags);
}

const char* TypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFLNK:
      return "a symlink";
    case S_IFIFO:
      return "a FIFO";
    case S_IFSOCK:
      return "a socket";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    default:
      return "of an unknown type";
  }
}

}  // namespace

FileIdentity FileIdentity::Of(const struct stat& st) {
  FileIdentity id;
  id.dev = static_cast<uint64_t>(st.st_dev);
  id.ino = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime = st.st_mtim;
  return id;
}

std::string DescribeChange(const FileIdentity& was, const struct stat& now) {
  if (!S_ISREG(now.st_mode)) return std::string("it is ") + TypeName(now.st_mode) + " now";
  if (static_cast<uint64_t>(now.st_dev) != was.dev || static_cast<uint64_t>(now.st_ino) != was.ino) {
    return "it was replaced (another file is at its path now)";
  }
  if (static_cast<uint64_t>(now.st_size) != was.size) {
    return "its size changed from " + std::to_string(was.size) + " to " +
           std::to_string(now.st_size) + " bytes";
  }
  if (now.st_mtim.tv_sec != was.mtime.tv_sec || now.st_mtim.tv_nsec != was.mtime.tv_nsec) {
    return "it was modified (its modification time changed)";
  }
  return "";
}

Result<UniqueFd> OpenBeneath(int root_fd, const std::string& rel_path, int flags) {
  const int fd = OpenBeneathRaw(root_fd, rel_path, flags);
  if (fd >= 0) return UniqueFd(fd);
  if (fd == -ELOOP || fd == -ENOTDIR) {
    return FailedPreconditionError(rel_path + ": a symlink (or a non-directory) is in its path");
  }
  if (fd == -EXDEV) return FailedPreconditionError(rel_path + ": leads outside the directory");
  return ErrnoError(-fd, "open " + rel_path);
}

Result<UniqueFd> ReopenFd(int fd, int flags, const std::string& path_for_errors) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  int reopened = ::open(proc.c_str(), flags | O_CLOEXEC);
  if (reopened < 0) return ErrnoError(errno, "reopen " + path_for_errors + " (via " + proc + ")");
  return UniqueFd(reopened);
}

Result<OpenedFile> OpenRegularAt(int dir_fd, const std::string& name,
                                 const std::string& path_for_errors) {
  int path_fd = ::openat(dir_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (path_fd < 0) return ErrnoError(errno, "open " + path_for_errors);
  UniqueFd path_owned(path_fd);
  struct stat st;
  if (::fstat(path_fd, &st) != 0) return ErrnoError(errno, "stat " + path_for_errors);
  if (!S_ISREG(st.st_mode)) {
    return FailedPreconditionError(path_for_errors + ": not a regular file (" +
                                   TypeName(st.st_mode) + ")");
  }
  OpenedFile out;
  CTFS_ASSIGN_OR_RETURN(out.fd, ReopenFd(path_fd, O_RDONLY | O_NOCTTY, path_for_errors));
  if (::fstat(out.fd.get(), &out.st) != 0) return ErrnoError(errno, "stat " + path_for_errors);
  return out;
}

Result<UniqueFd> OpenSnapshotFile(int root_fd, const std::string& rel_path,
                                  const FileIdentity& identity,
                                  const std::string& path_for_errors) {
  const std::string changed = path_for_errors + ": changed since the mount: ";
  const int path_fd = OpenBeneathRaw(root_fd, rel_path, O_PATH);
  if (path_fd == -ENOENT) {
    return NotFoundError(path_for_errors + ": no longer exists (deleted or moved since the mount)");
  }
  if (path_fd == -ELOOP || path_fd == -ENOTDIR || path_fd == -EXDEV) {
    return DataLossError(changed + "a symlink or a non-directory is in its path now");
  }
  if (path_fd < 0) return ErrnoError(-path_fd, "open " + path_for_errors);
  UniqueFd path_owned(path_fd);
  struct stat st;
  if (::fstat(path_fd, &st) != 0) return ErrnoError(errno, "stat " + path_for_errors);
  if (std::string change = DescribeChange(identity, st); !change.empty()) {
    return DataLossError(changed + change + " (remount to serve the new version)");
  }
  CTFS_ASSIGN_OR_RETURN(UniqueFd fd, ReopenFd(path_fd, O_RDONLY | O_NOCTTY, path_for_errors));
  return fd;
}

}  // namespace ctfs
