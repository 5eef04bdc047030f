// SPDX-License-Identifier: Apache-2.0
// The mount daemon: serve a ServedTree at a mountpoint through libfuse3's low-level API with a
// multithreaded loop, read-only, and revoke on the way out.
//
// Lifecycle (RunDaemon):
//   mount ("ro,nodev,nosuid,default_permissions,fsname=<MountSource()>,subtype=ctfs") -> raise
//   the mount's readahead -> report readiness -> loop until unmounted (fusermount3 -u, ctfs umount)
//   or a signal (SIGTERM, SIGINT, SIGQUIT; SIGHUP unless it reloads the policy) -> revoke: deny, invalidate the kernel page
//   cache of every inode handed out (mapped pages included: their next touch gets SIGBUS), wipe
//   keys and cached plaintext -> lazy unmount -> return 0.
// This header has no libfuse types, so cmd/ can call it.
#ifndef CTFS_FS_FUSE_DAEMON_H_
#define CTFS_FS_FUSE_DAEMON_H_

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/status.h"
#include "fs/access_control.h"
#include "fs/key_lease_keeper.h"
#include "fs/mount_stats.h"
#include "fs/served_tree.h"

namespace ctfs::fs {

// What the daemon tells its caller while it serves (DaemonOptions::on_event), e.g. for the
// service manager.
enum class DaemonEvent {
  kRevoking,        // a signal asked to stop: about to deny, invalidate and wipe
  kUnmounted,       // the mount was unmounted from outside (fusermount3 -u, ctfs umount)
  kReloading,       // SIGHUP: re-reading the policy
  kReloaded,        // the new policy is in force
  kReloadRejected,  // the file was invalid; the current policy stays (detail: why)
  kKeyLeaseLost,    // a key lease ended (on_key_loss: deny): encrypted files answer EACCES
  kKeyLeaseRestored,  // the leases were renewed: encrypted files are served again
};

struct DaemonOptions {
  std::string mountpoint;
  bool allow_other = false;     // let other users read (needs user_allow_other if not root)
  size_t fuse_threads = 16;     // max threads of the FUSE loop
  size_t read_ahead_kb = 4096;  // bdi readahead of the mount (0 = leave the kernel default)
  // The access policy and audit log asked at every open (null: none). While the mount runs, a
  // policy thread re-decides live opens when a rule's window opens or closes, and invalidates
  // the page cache of the files taken away (AccessControl::Reevaluate).
  AccessControl* access = nullptr;
  // stats: per-file opens, denials and bytes read are counted here (null: not counted).
  MountStats* stats = nullptr;
  // reload: what SIGHUP does when set: read the policy again; a valid one replaces the current
  // policy at once (same invalidation), an error is logged and audited and the old policy
  // stays. Unset: SIGHUP revokes and unmounts, as a terminal hangup would.
  std::function<Result<std::shared_ptr<const policy::AccessPolicy>>()> reload;
  // leases (null: no leased keys): a lease thread runs its Step() when due, beside the loop;
  // on key loss it invalidates the page cache of every served file (the keeper has suspended
  // the tree), or, with on_key_loss: unmount, revokes and unmounts as SIGTERM does.
  KeyLeaseKeeper* leases = nullptr;
  // on_event (optional): called from the daemon's threads at each DaemonEvent, before the
  // work it announces; `detail` is a message for people. Must be quick and must not throw.
  std::function<void(DaemonEvent, const std::string& detail)> on_event;
};

// MountAndServe mounts `tree` and serves it until unmount or signal, then revokes. `ready`
// is called once the mount is live (OK) or mounting failed (the error); after a failed mount
// MountAndServe returns that error. Returns OK after a clean shutdown.
Status MountAndServe(ServedTree& tree, const DaemonOptions& options,
                     const std::function<void(const Status&)>& ready);

// RequestRevoke asks the running MountAndServe to revoke and unmount, as SIGTERM does (for
// `ctfs revoke` over the control socket). Async-signal-safe; does nothing when no mount runs.
// Returns at once: the revocation happens on the daemon's revoker thread.
void RequestRevoke();

// MountSource: the source the mount shows in the mount table, "ctfs:<pid>@<pidns inode>": this
// process's pid and the inode of its pid namespace, so that a caller in another namespace
// (root on the node of a container) finds this daemon and no other (cmd/daemon_locator.h).
// "ctfs:<pid>" if /proc does not say.
std::string MountSource();

}  // namespace ctfs::fs

#endif  // CTFS_FS_FUSE_DAEMON_H_
