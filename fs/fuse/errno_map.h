// SPDX-License-Identifier: Apache-2.0
// The single Status -> errno table of the FUSE layer.
#ifndef CTFS_FS_FUSE_ERRNO_MAP_H_
#define CTFS_FS_FUSE_ERRNO_MAP_H_

#include <cerrno>

#include "base/status.h"

namespace ctfs::fs {

// ErrnoFor: NotFound -> ENOENT, PermissionDenied -> EACCES, DataLoss (bad tag, bad signature,
// corruption) -> EIO, InvalidArgument -> EINVAL, anything else -> EIO.
inline int ErrnoFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kNotFound:
      return ENOENT;
    case StatusCode::kPermissionDenied:
      return EACCES;
    case StatusCode::kInvalidArgument:
      return EINVAL;
    default:
      return EIO;
  }
}

}  // namespace ctfs::fs

#endif  // CTFS_FS_FUSE_ERRNO_MAP_H_
