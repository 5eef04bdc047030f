// SPDX-License-Identifier: Apache-2.0
// MountStats: what readers did with a live mount, per served inode, for `ctfs status`: opens
// granted, opens refused (by the access policy or the file), plaintext bytes replied. Relaxed
// atomic adds, one per open or read: cheap enough for the read path.
//
// Thread safety: thread-safe; the set of inodes is fixed at construction.
#ifndef CTFS_FS_MOUNT_STATS_H_
#define CTFS_FS_MOUNT_STATS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ctfs::fs {

struct FileCounts {
  uint64_t opens = 0;
  uint64_t denials = 0;
  uint64_t bytes_read = 0;
};

class MountStats {
 public:
  // Counts inodes 1..max_ino (ModelTree inodes are dense from 1).
  explicit MountStats(uint64_t max_ino);

  // Each ignores an inode outside 1..max_ino.
  void CountOpen(uint64_t ino);
  void CountDenial(uint64_t ino);
  void CountRead(uint64_t ino, uint64_t len);

  FileCounts Of(uint64_t ino) const;  // zeros outside 1..max_ino
  uint64_t max_ino() const { return max_ino_; }

 private:
  struct Slot {
    std::atomic<uint64_t> opens{0}, denials{0}, bytes_read{0};
  };
  Slot* SlotOf(uint64_t ino) const;

  uint64_t max_ino_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_MOUNT_STATS_H_
