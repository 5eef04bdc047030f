// SPDX-License-Identifier: Apache-2.0
// Progress reporting for long operations: a callback receiving the number of data bytes just
// processed. May be empty. Called from the worker thread(s) under the operation's own lock.
#ifndef CTFS_FS_PROGRESS_H_
#define CTFS_FS_PROGRESS_H_

#include <cstdint>
#include <functional>

namespace ctfs::fs {

using ProgressFn = std::function<void(uint64_t bytes_done_delta)>;

}  // namespace ctfs::fs

#endif  // CTFS_FS_PROGRESS_H_
