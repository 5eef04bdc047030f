// SPDX-License-Identifier: Apache-2.0
// MountStatus: the document a mount daemon answers on its control socket (`ctfs status`), and
// its JSON form. Plain data: the daemon fills it (cmd/), this file only writes and reads it.
//
// JSON (version 1), every count since the daemon started:
//   {"version":1, "pid", "uid", "source", "mountpoint", "started_unix", "uptime_s",
//    "rss_bytes", "revoked", "files_served",
//    "totals": {"opens","denials","bytes_read","bytes_decrypted"},
//    "files": [{"path","kind" (encrypted|plain|refused),"opens","denials","bytes_read",
//               "bytes_decrypted"}],
//    "cache": {"capacity_bytes","cached_bytes","peak_cached_bytes","hits","misses","waits",
//              "wait_ms"},
//    "prefetch": {"budget_bytes","jobs_completed"},
//    "policy": {"mode" (none|enforce|permissive),"rules","loaded_unix","reloads",
//               "last_reload_error"},
//    "keys": [{"kid","provider","exp_unix","state" (valid|refreshing|lost)}]}  (key leases;
//    [] without any)
// Paths that are not valid UTF-8 are written with U+FFFD in place of the bad bytes.
#ifndef CTFS_FORMAT_MOUNT_STATUS_H_
#define CTFS_FORMAT_MOUNT_STATUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ctfs::format {

struct FileStatus {
  std::string path;  // relative to the mount
  std::string kind;  // "encrypted", "plain" or "refused"
  uint64_t opens = 0;
  uint64_t denials = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_decrypted = 0;
};

// One key lease (README "Key leases").
struct KeyLeaseStatus {
  std::string kid;  // the provider's key ids, comma-separated
  std::string provider;
  int64_t exp_unix = 0;
  std::string state;  // "valid", "refreshing" or "lost"
};

struct MountStatus {
  int64_t pid = 0;
  int64_t uid = 0;
  std::string source;
  std::string mountpoint;
  int64_t started_unix = 0;
  double uptime_s = 0;
  uint64_t rss_bytes = 0;
  bool revoked = false;
  std::vector<FileStatus> files;
  // cache
  uint64_t cache_capacity_bytes = 0, cache_cached_bytes = 0, cache_peak_bytes = 0;
  uint64_t cache_hits = 0, cache_misses = 0, cache_waits = 0, cache_wait_ms = 0;
  // prefetch
  uint64_t prefetch_budget_bytes = 0, prefetch_jobs = 0;
  // policy
  std::string policy_mode = "none";
  uint64_t policy_rules = 0;
  int64_t policy_loaded_unix = 0;
  uint64_t policy_reloads = 0;
  std::string policy_last_reload_error;
  std::vector<KeyLeaseStatus> keys;
};

// MountStatusToJson: the document above, one line.
std::string MountStatusToJson(const MountStatus& s);

// ParseMountStatus reads a document MountStatusToJson wrote (missing fields keep their
// defaults); InvalidArgument if it is not such a JSON object.
Result<MountStatus> ParseMountStatus(std::string_view json);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_MOUNT_STATUS_H_
