// SPDX-License-Identifier: Apache-2.0
// AccessControl: the one interface through which the mount asks "may this caller open this
// file?". It reads the caller (fs/caller_info.h), asks the operator's policy
// (policy/access_policy.h), audits the decision (fs/audit_log.h), and remembers what it
// granted so that a later change can take it back:
//   * time: when a rule's window opens or closes (NextTransition), Reevaluate re-decides every
//     live grant with the subject it was granted to;
//   * reload: Replace installs a new policy and re-decides the same way.
// A grant the new decision denies is withdrawn: reads through that open fail (EACCES), and the
// caller (the FUSE layer) invalidates the page cache of the inodes Reevaluate returns, so pages
// mapped before the change fault into a read that is refused (SIGBUS). In permissive mode
// nothing is withdrawn; what would have been is audited.
//
// Without a policy (no `policy:` section) every open is allowed, as without a config, and
// still audited if an audit log is configured.
// Thread safety: thread-safe.
#ifndef CTFS_FS_ACCESS_CONTROL_H_
#define CTFS_FS_ACCESS_CONTROL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "fs/audit_log.h"
#include "fs/caller_info.h"
#include "policy/access_policy.h"

namespace ctfs::fs {

// AccessGrant: what one open holds. Withdrawn when a later decision denies its subject.
class AccessGrant {
 public:
  bool withdrawn() const { return withdrawn_.load(std::memory_order_acquire); }

 private:
  friend class AccessControl;
  std::atomic<bool> withdrawn_{false};
  policy::Subject subject_;
  size_t file_index_ = 0;
  uint64_t ino_ = 0;
  std::string rel_path_;
};

// PolicyFile: a served file as the policy sees it, with the inode the mount gives it.
struct PolicyFile {
  uint64_t ino = 0;
  policy::FileObject object;
};

class AccessControl {
 public:
  struct Options {
    std::string mount;  // for log lines
    CallerReader::Options caller;
  };
  // `policy` may be null (no policy). `audit` may be null (no audit log).
  AccessControl(Options options, std::vector<PolicyFile> files,
                std::shared_ptr<const policy::AccessPolicy> policy,
                std::unique_ptr<AuditLog> audit);
  ~AccessControl();

  // CheckOpen decides an open of `ino` by `caller` now. OK: the grant to keep with the open;
  // PermissionDenied (reason) otherwise. Every decision is audited.
  Result<std::shared_ptr<const AccessGrant>> CheckOpen(const CallerId& caller, uint64_t ino);

  // Hides: the current policy hides files from some callers (AccessPolicy::HidesFiles), so
  // lookups and listings must be decided per caller (and the kernel must not cache entries).
  bool Hides() const;

  // VisibilityFor returns, when the policy hides files, a predicate telling whether `caller`
  // may see inode `ino` in lookups and listings: false only where a deny rule with hide: true
  // decides (directories are always visible). A caller that cannot be read sees no files.
  // Without hiding it returns an empty function.
  std::function<bool(uint64_t)> VisibilityFor(const CallerId& caller);

  // AuditRefusal records an open that the policy allowed but the file refused (e.g. a locked
  // shard without its key: `why` is the file's error).
  void AuditRefusal(const CallerId& caller, uint64_t ino, const std::string& why);

  // NextTransition: the next time (Unix seconds) a rule's window opens or closes.
  std::optional<int64_t> NextTransition() const;

  // Reevaluate re-decides every live grant at `now_unix` and withdraws those now denied;
  // returns the inodes to invalidate. `event` names the cause in the audit log ("window",
  // "reload").
  std::vector<uint64_t> Reevaluate(int64_t now_unix, const std::string& event);

  // Replace installs `policy` (may be null: no policy) and re-decides (Reevaluate "reload").
  std::vector<uint64_t> Replace(std::shared_ptr<const policy::AccessPolicy> policy);

  // Audit writes a non-decision event (revocation, rejected reload) to the audit log.
  void Audit(const std::string& event, const std::string& reason);

  // Flush writes pending coalesced audit counts (call about once a second).
  void Flush();

  const std::vector<PolicyFile>& files() const { return files_; }
  std::shared_ptr<const policy::AccessPolicy> policy() const;

 private:
  AuditEvent EventFor(const policy::Subject* s, const PolicyFile* file,
                      const policy::Decision& d, bool permissive) const;
  const PolicyFile* FileOf(uint64_t ino, size_t* index) const;

  Options options_;
  std::vector<PolicyFile> files_;      // immutable
  std::vector<int64_t> index_of_ino_;  // ino -> index into files_, -1 = not a policy file
  CallerReader callers_;
  std::unique_ptr<AuditLog> audit_;
  mutable Mutex mu_;
  std::shared_ptr<const policy::AccessPolicy> policy_ CTFS_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<AccessGrant>> grants_ CTFS_GUARDED_BY(mu_);
  // Counts re-decisions (Reevaluate): an open decided under an older count is decided again
  // before its grant is registered, so no grant escapes a reload or a window end.
  uint64_t generation_ CTFS_GUARDED_BY(mu_) = 0;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_ACCESS_CONTROL_H_
