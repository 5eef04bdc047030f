// SPDX-License-Identifier: Apache-2.0
// DaemonStatus: what a running mount daemon answers on its control socket (`ctfs status`),
// gathered from the tree, its counters and the policy when asked.
#ifndef CTFS_CMD_DAEMON_STATUS_H_
#define CTFS_CMD_DAEMON_STATUS_H_

#include <cstdint>
#include <string>

#include "base/mutex.h"
#include "fs/access_control.h"
#include "fs/key_lease_keeper.h"
#include "fs/mount_stats.h"
#include "fs/served_tree.h"
#include "format/mount_status.h"

namespace ctfs::cmd {

class DaemonStatus {
 public:
  DaemonStatus(const fs::ServedTree& tree, const fs::MountStats& stats,
               const fs::AccessControl* access, std::string source, std::string mountpoint,
               uint64_t cache_capacity_bytes, uint64_t prefetch_budget_bytes,
               const fs::KeyLeaseKeeper* leases = nullptr);

  // Policy events (SIGHUP), from the daemon's policy thread.
  void PolicyReloaded();
  void PolicyReloadRejected(const std::string& why);

  format::MountStatus Collect() const;
  // Answer: the control socket's handler ("status" -> the JSON document).
  std::string Answer(const std::string& request) const;

 private:
  const fs::ServedTree& tree_;
  const fs::MountStats& stats_;
  const fs::AccessControl* access_;
  const fs::KeyLeaseKeeper* leases_;  // null: no key leases
  const std::string source_, mountpoint_;
  const uint64_t cache_capacity_bytes_, prefetch_budget_bytes_;
  const int64_t started_unix_;
  const int64_t started_mono_ns_;
  mutable Mutex mu_;
  int64_t policy_loaded_unix_ CTFS_GUARDED_BY(mu_);
  uint64_t policy_reloads_ CTFS_GUARDED_BY(mu_) = 0;
  std::string policy_last_error_ CTFS_GUARDED_BY(mu_);
};

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_DAEMON_STATUS_H_
