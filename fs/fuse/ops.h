// SPDX-License-Identifier: Apache-2.0
// The FUSE low-level operations table over a ServedTree. Every handler replies exactly once;
// exceptions never unwind into libfuse (a catch-all replies EIO and logs). Mutating
// operations reply EROFS; opens for writing reply EROFS.
#ifndef CTFS_FS_FUSE_OPS_H_
#define CTFS_FS_FUSE_OPS_H_

#include "fs/fuse/fuse_api.h"
#include "fs/mount_stats.h"
#include "fs/served_tree.h"

namespace ctfs::fs {

// OpsContext is the userdata of the session.
struct OpsContext {
  ServedTree* tree = nullptr;
  AccessControl* access = nullptr;  // null: no policy, no audit (file modes decide)
  MountStats* stats = nullptr;      // null: nothing counted
};

// MakeOperations returns the operations table (the AssignOperations of the style guide).
fuse_lowlevel_ops MakeOperations();

}  // namespace ctfs::fs

#endif  // CTFS_FS_FUSE_OPS_H_
