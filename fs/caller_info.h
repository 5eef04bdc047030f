// SPDX-License-Identifier: Apache-2.0
// CallerReader: who is calling, for the access policy (policy/access_policy.h). The FUSE
// request gives uid, gid and the calling thread's id; everything else is read from
// /proc/<tid> (policy-and-ops-notes.md): supplementary groups (status), the executable (the
// exe link; its SHA-256 from the running image opened through that link, hashed once per
// (device, inode, mtime, size)), comm, and the cgroup v2 path (the "0::" line of cgroup).
//
// Fail closed: a caller whose /proc entry cannot be read (it exited, pid 0 from another pid
// namespace, a hidepid= mount) is an error, and the caller denies. The reads go through one
// directory fd of /proc/<tid>, which stays bound to that task: if the task exits and its id
// is reused while the reads run, they fail instead of describing the new process; the last
// read re-checks that the task is still there. The request's thread is blocked in open(2)
// while this runs, so its id can only go away if it is killed (and then the open is moot).
//
// Cache: the /proc part of a subject is kept for `cache_ttl` per task id and reused only
// while that task still exists (one faccessat), so a loader opening many shards costs one
// read. Within the ttl a change of groups, cgroup or comm is not seen yet.
// Thread safety: thread-safe.
#ifndef CTFS_FS_CALLER_INFO_H_
#define CTFS_FS_CALLER_INFO_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "base/mutex.h"
#include "base/result.h"
#include "policy/access_policy.h"

namespace ctfs::fs {

// CallerId: what the FUSE request says about the caller.
struct CallerId {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;  // the calling thread's id (a thread of a multi-threaded loader)
};

class CallerReader {
 public:
  struct Options {
    std::string proc_root = "/proc";
    std::string machine_id;  // the host's, copied into every subject
    std::chrono::milliseconds cache_ttl{1000};
    size_t cache_entries = 4096;
  };
  explicit CallerReader(Options options);
  ~CallerReader();

  // Read describes the caller. `hash_exe`: also compute exe_sha256. Errors
  // (PermissionDenied) say what could not be read, e.g. "caller pid 123: /proc/123: No such
  // file or directory (exited, or hidden by hidepid=)".
  Result<policy::Subject> Read(const CallerId& caller, bool hash_exe) const;

  // exe_hashes: how many executables were hashed (the cache's misses), for tests.
  size_t exe_hashes() const;

 private:
  struct Cached;
  Result<std::string> ExeSha256(int task_dir_fd, int32_t pid) const;
  Options options_;
  mutable Mutex mu_;
  mutable std::map<int32_t, std::shared_ptr<const Cached>> subjects_ CTFS_GUARDED_BY(mu_);
  // (st_dev, st_ino, mtime ns, st_size) -> hex digest.
  mutable std::map<std::tuple<uint64_t, uint64_t, int64_t, int64_t>, std::string> exe_hashes_
      CTFS_GUARDED_BY(mu_);
  mutable size_t hashed_ CTFS_GUARDED_BY(mu_) = 0;
};

// ReadMachineId returns the 32 hex digits of `path` (normally /etc/machine-id).
Result<std::string> ReadMachineId(const std::string& path = "/etc/machine-id");

}  // namespace ctfs::fs

#endif  // CTFS_FS_CALLER_INFO_H_
