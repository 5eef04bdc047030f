// SPDX-License-Identifier: Apache-2.0
#include "fs/copy_alignment.h"

#include "base/check.h"

namespace ctfs::fs {

bool SlowCopyDistance(uint64_t dst_minus_src) {
  const uint64_t d = dst_minus_src % kCopyPageLen;
  return d != 0 && d < kSlowCopyWindow;
}

size_t ChunkLead(uint64_t served_off, std::optional<uint64_t> pread_off) {
  // Each constraint rules out kSlowCopyWindow - 1 leads, so one of the first
  // 2 * kSlowCopyWindow - 1 leads is free; the loop is that short.
  for (uint64_t lead = 0; lead < 2 * kSlowCopyWindow; ++lead) {
    // Unsigned wrap-around is modulo 2^64, a multiple of the page: the remainders stay right.
    const bool reply_slow = SlowCopyDistance(served_off - lead);  // page cache <- buffer
    const bool pread_slow = pread_off && SlowCopyDistance(lead - *pread_off);  // buffer <- cache
    if (!reply_slow && !pread_slow) return static_cast<size_t>(lead);
  }
  CTFS_CHECK(false && "no copy-friendly chunk lead");
  return 0;
}

}  // namespace ctfs::fs
