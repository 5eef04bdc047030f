// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon_status.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>

#include "policy/access_policy.h"

namespace ctfs::cmd {
namespace {

int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ResidentBytes: this process's resident set (/proc/self/statm), 0 if unreadable.
uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (!(in >> size_pages >> resident_pages)) return 0;
  return resident_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

const char* KindOf(fs::TreeNode::Kind k) {
  switch (k) {
    case fs::TreeNode::Kind::kEncrypted:
      return "encrypted";
    case fs::TreeNode::Kind::kPassthrough:
      return "plain";
    case fs::TreeNode::Kind::kRefused:
      return "refused";
    case fs::TreeNode::Kind::kDirectory:
      break;
  }
  return "directory";
}

}  // namespace

DaemonStatus::DaemonStatus(const fs::ServedTree& tree, const fs::MountStats& stats,
                           const fs::AccessControl* access, std::string source,
                           std::string mountpoint, uint64_t cache_capacity_bytes,
                           uint64_t prefetch_budget_bytes, const fs::KeyLeaseKeeper* leases)
    : tree_(tree),
      stats_(stats),
      access_(access),
      leases_(leases),
      source_(std::move(source)),
      mountpoint_(std::move(mountpoint)),
      cache_capacity_bytes_(cache_capacity_bytes),
      prefetch_budget_bytes_(prefetch_budget_bytes),
      started_unix_(static_cast<int64_t>(std::time(nullptr))),
      started_mono_ns_(MonotonicNs()),
      policy_loaded_unix_(started_unix_) {}

void DaemonStatus::PolicyReloaded() {
  MutexLock lock(mu_);
  policy_loaded_unix_ = static_cast<int64_t>(std::time(nullptr));
  ++policy_reloads_;
  policy_last_error_.clear();
}

void DaemonStatus::PolicyReloadRejected(const std::string& why) {
  MutexLock lock(mu_);
  policy_last_error_ = why;
}

format::MountStatus DaemonStatus::Collect() const {
  format::MountStatus s;
  s.pid = ::getpid();
  s.uid = ::getuid();
  s.source = source_;
  s.mountpoint = mountpoint_;
  s.started_unix = started_unix_;
  s.uptime_s = static_cast<double>(MonotonicNs() - started_mono_ns_) / 1e9;
  s.rss_bytes = ResidentBytes();
  s.revoked = tree_.revoked();
  for (const fs::TreeNode& n : tree_.tree().nodes()) {
    if (n.kind == fs::TreeNode::Kind::kDirectory) continue;
    const fs::FileCounts c = stats_.Of(n.ino);
    s.files.push_back({n.rel_path, KindOf(n.kind), c.opens, c.denials, c.bytes_read,
                       tree_.DecryptedBytes(n.ino)});
  }
  const fs::ChunkCache& cache = tree_.cache();
  s.cache_capacity_bytes = cache_capacity_bytes_;
  s.cache_cached_bytes = cache.cached_bytes();
  s.cache_peak_bytes = cache.peak_cached_bytes();
  s.cache_hits = cache.hits();
  s.cache_misses = cache.misses();
  s.cache_waits = cache.waits();
  s.cache_wait_ms = cache.wait_ns() / 1000000;
  s.prefetch_budget_bytes = prefetch_budget_bytes_;
  s.prefetch_jobs = tree_.prefetched();
  if (access_ != nullptr) {
    if (auto policy = access_->policy()) {
      s.policy_mode = policy->permissive() ? "permissive" : "enforce";
      s.policy_rules = policy->rule_count();
    }
  }
  if (leases_ != nullptr) {
    for (const fs::KeyLeaseInfo& l : leases_->Leases()) {
      s.keys.push_back({l.kids, l.provider, l.exp_unix, l.state});
    }
  }
  MutexLock lock(mu_);
  s.policy_loaded_unix = policy_loaded_unix_;
  s.policy_reloads = policy_reloads_;
  s.policy_last_reload_error = policy_last_error_;
  return s;
}

std::string DaemonStatus::Answer(const std::string& request) const {
  if (request == "status") return format::MountStatusToJson(Collect()) + "\n";
  return "error: unknown request (this daemon answers: status, revoke)\n";
}

}  // namespace ctfs::cmd
