// SPDX-License-Identifier: Apache-2.0
#include "fs/mount_stats.h"

namespace ctfs::fs {

MountStats::MountStats(uint64_t max_ino)
    : max_ino_(max_ino), slots_(std::make_unique<Slot[]>(static_cast<size_t>(max_ino))) {}

MountStats::Slot* MountStats::SlotOf(uint64_t ino) const {
  if (ino == 0 || ino > max_ino_) return nullptr;
  return &slots_[static_cast<size_t>(ino - 1)];
}

void MountStats::CountOpen(uint64_t ino) {
  if (Slot* s = SlotOf(ino)) s->opens.fetch_add(1, std::memory_order_relaxed);
}

void MountStats::CountDenial(uint64_t ino) {
  if (Slot* s = SlotOf(ino)) s->denials.fetch_add(1, std::memory_order_relaxed);
}

void MountStats::CountRead(uint64_t ino, uint64_t len) {
  if (Slot* s = SlotOf(ino)) s->bytes_read.fetch_add(len, std::memory_order_relaxed);
}

FileCounts MountStats::Of(uint64_t ino) const {
  const Slot* s = SlotOf(ino);
  if (s == nullptr) return {};
  return {s->opens.load(std::memory_order_relaxed), s->denials.load(std::memory_order_relaxed),
          s->bytes_read.load(std::memory_order_relaxed)};
}

}  // namespace ctfs::fs
