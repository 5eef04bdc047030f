// SPDX-License-Identifier: Apache-2.0
// Pins the libfuse API version (Debian 12 ships 3.14; we use the 3.12 API, as libfuse's
// passthrough_hp does) and includes the low-level header. Include this, never <fuse*.h>.
#ifndef CTFS_FS_FUSE_FUSE_API_H_
#define CTFS_FS_FUSE_FUSE_API_H_

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#endif  // CTFS_FS_FUSE_FUSE_API_H_
