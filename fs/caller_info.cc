// SPDX-License-Identifier: Apache-2.0
#include "fs/caller_info.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"
#include "crypto/sha256.h"

namespace ctfs::fs {

struct CallerReader::Cached {
  UniqueFd task_dir;  // keeps the entry bound to the task it describes
  policy::Subject proc_part;  // groups, exe, exe_sha256 (if hashed), comm, cgroup
  bool hashed = false;
  std::chrono::steady_clock::time_point read_at;
};

namespace {

constexpr size_t kMaxProcFileLen = 64 << 10;

// ReadSmallFile reads a /proc file below `dir_fd` (at most kMaxProcFileLen bytes).
Result<std::string> ReadSmallFile(int dir_fd, const char* name, const std::string& what) {
  UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return PermissionDeniedError(what + "/" + name + ": " + std::strerror(errno));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PermissionDeniedError(what + "/" + name + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxProcFileLen) {
      return PermissionDeniedError(what + "/" + name + ": unexpectedly long");
    }
  }
  return out;
}

// ParseGroups reads the "Groups:" line of /proc/PID/status.
Result<std::vector<uint32_t>> ParseGroups(const std::string& status, const std::string& what) {
  size_t at = status.find("\nGroups:");
  if (at == std::string::npos) return PermissionDeniedError(what + "/status: no Groups line");
  size_t end = status.find('\n', at + 1);
  std::string line = status.substr(at + 8, end == std::string::npos ? end : end - at - 8);
  std::vector<uint32_t> groups;
  uint64_t v = 0;
  bool in_num = false;
  for (char c : line + " ") {
    if (c >= '0' && c <= '9') {
      v = v * 10 + static_cast<uint64_t>(c - '0');
      if (v > UINT32_MAX) return PermissionDeniedError(what + "/status: bad Groups line");
      in_num = true;
    } else if (c == ' ' || c == '\t') {
      if (in_num) groups.push_back(static_cast<uint32_t>(v));
      v = 0;
      in_num = false;
    } else {
      return PermissionDeniedError(what + "/status: bad Groups line");
    }
  }
  return groups;
}

// ParseCgroupV2 returns the path of the "0::" line of /proc/PID/cgroup.
Result<std::string> ParseCgroupV2(const std::string& text, const std::string& what) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.rfind("0::", 0) == 0) return std::string(line.substr(3));
    pos = end + 1;
  }
  return PermissionDeniedError(what + "/cgroup: no cgroup v2 entry");
}

}  // namespace

CallerReader::CallerReader(Options options) : options_(std::move(options)) {}
CallerReader::~CallerReader() = default;

size_t CallerReader::exe_hashes() const {
  MutexLock lock(mu_);
  return hashed_;
}

Result<std::string> CallerReader::ExeSha256(int task_dir_fd, int32_t pid) const {
  const std::string what = "caller pid " + std::to_string(pid) + ": executable";
  // The running image, even if its path was replaced or deleted since it started.
  UniqueFd fd(::openat(task_dir_fd, "exe", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return PermissionDeniedError(what + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return PermissionDeniedError(what + ": " + std::strerror(errno));
  const auto key = std::make_tuple(static_cast<uint64_t>(st.st_dev),
                                   static_cast<uint64_t>(st.st_ino),
                                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                                       st.st_mtim.tv_nsec,
                                   static_cast<int64_t>(st.st_size));
  {
    MutexLock lock(mu_);
    auto it = exe_hashes_.find(key);
    if (it != exe_hashes_.end()) return it->second;
  }
  std::string hex;
  if (st.st_size == 0) {
    hex = crypto::Sha256Hex(ByteSpan());
  } else {
    void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE,
                       fd.get(), 0);
    if (map == MAP_FAILED) return PermissionDeniedError(what + ": mmap: " + std::strerror(errno));
    hex = crypto::Sha256Hex(ByteSpan(static_cast<const uint8_t*>(map),
                                     static_cast<size_t>(st.st_size)));
    ::munmap(map, static_cast<size_t>(st.st_size));
  }
  MutexLock lock(mu_);
  if (exe_hashes_.size() >= options_.cache_entries) exe_hashes_.clear();
  exe_hashes_.emplace(key, hex);
  ++hashed_;
  return hex;
}

Result<policy::Subject> CallerReader::Read(const CallerId& caller, bool hash_exe) const {
  const std::string what = "caller pid " + std::to_string(caller.pid) + ": " +
                           options_.proc_root + "/" + std::to_string(caller.pid);
  if (caller.pid <= 0) {
    return PermissionDeniedError("caller pid " + std::to_string(caller.pid) +
                                 ": not visible (another pid namespace?)");
  }
  policy::Subject s;
  const auto now = std::chrono::steady_clock::now();
  std::shared_ptr<const Cached> cached;
  {
    MutexLock lock(mu_);
    auto it = subjects_.find(caller.pid);
    if (it != subjects_.end()) cached = it->second;
  }
  if (cached != nullptr && now - cached->read_at < options_.cache_ttl &&
      (!hash_exe || cached->hashed) &&
      ::faccessat(cached->task_dir.get(), "stat", F_OK, 0) == 0) {
    s = cached->proc_part;
  } else {
    auto fresh = std::make_shared<Cached>();
    fresh->task_dir = UniqueFd(::open(
        (options_.proc_root + "/" + std::to_string(caller.pid)).c_str(),
        O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fresh->task_dir.valid()) {
      return PermissionDeniedError(what + ": " + std::strerror(errno) +
                                   " (exited, or hidden by hidepid=)");
    }
    const int dir = fresh->task_dir.get();
    CTFS_ASSIGN_OR_RETURN(std::string status, ReadSmallFile(dir, "status", what));
    CTFS_ASSIGN_OR_RETURN(fresh->proc_part.groups, ParseGroups(status, what));
    char exe[4096];
    ssize_t n = ::readlinkat(dir, "exe", exe, sizeof exe - 1);
    if (n < 0) return PermissionDeniedError(what + "/exe: " + std::strerror(errno));
    fresh->proc_part.exe.assign(exe, static_cast<size_t>(n));
    CTFS_ASSIGN_OR_RETURN(std::string comm, ReadSmallFile(dir, "comm", what));
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    fresh->proc_part.comm = std::move(comm);
    CTFS_ASSIGN_OR_RETURN(std::string cgroup, ReadSmallFile(dir, "cgroup", what));
    CTFS_ASSIGN_OR_RETURN(fresh->proc_part.cgroup, ParseCgroupV2(cgroup, what));
    if (hash_exe) {
      CTFS_ASSIGN_OR_RETURN(fresh->proc_part.exe_sha256, ExeSha256(dir, caller.pid));
      fresh->hashed = true;
    }
    // Still the same task: everything above describes it, not a successor with its id.
    if (::faccessat(dir, "stat", F_OK, 0) != 0) {
      return PermissionDeniedError(what + ": exited while being read");
    }
    fresh->read_at = now;
    s = fresh->proc_part;
    MutexLock lock(mu_);
    if (subjects_.size() >= options_.cache_entries) subjects_.clear();
    subjects_[caller.pid] = std::move(fresh);
  }
  s.uid = caller.uid;
  s.gid = caller.gid;
  s.pid = caller.pid;
  s.machine_id = options_.machine_id;
  return s;
}

Result<std::string> ReadMachineId(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, path);
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) return ErrnoError(errno, path);
  std::string id(buf, static_cast<size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  bool hex = id.size() == 32;
  for (char c : id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) return InvalidArgumentError(path + ": not a machine id (32 lowercase hex digits)");
  return id;
}

}  // namespace ctfs::fs
