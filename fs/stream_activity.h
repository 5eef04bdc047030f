// SPDX-License-Identifier: Apache-2.0
// StreamActivity: which read streams have been decrypted ahead of lately, so that streams read
// at the same time share the decrypt-ahead budget instead of each taking all of it.
//
// One stream alone gains from a deep window (a cold numpy load of the 2 GiB bench model:
// median 4.40 s with 64 MiB ahead against 4.73 s with 16 MiB, 6 runs each); five shards read
// at once do not (2.60 s against 2.45 s, 5 runs each) and five deep windows held up to 227 MiB
// of plaintext against 117 MiB. A stream is identified by a number its owner picks (PlainFile
// picks the file: out-of-order readahead requests make one reader look like several streams
// of its file); it counts as active for `horizon` after its last Note (a sequential reader
// reads far more often than that), or until it ends: a loader done with one shard must not
// halve the window of its read of the next. Up to kSlots streams are remembered; past that
// the least recently touched is forgotten.
// Thread safety: thread-safe.
#ifndef CTFS_FS_STREAM_ACTIVITY_H_
#define CTFS_FS_STREAM_ACTIVITY_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "base/mutex.h"

namespace ctfs::fs {

class StreamActivity {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kSlots = 32;
  static constexpr std::chrono::milliseconds kDefaultHorizon{250};

  explicit StreamActivity(Clock::duration horizon = kDefaultHorizon) : horizon_(horizon) {}

  // Note records that stream `id` was read at `now`; ignored within the horizon after End.
  void Note(uint64_t id, Clock::time_point now);
  // End: stream `id` has ended at `now` (it read up to the end of its file); it stops counting
  // at once, and Notes of it within the horizon after are ignored.
  void End(uint64_t id, Clock::time_point now);
  // Active counts the streams noted within the horizon before `now` and not ended since.
  size_t Active(Clock::time_point now) const;

  // ShareOf splits `budget_bytes` among `active` streams: budget / active, but never below
  // min(budget, `floor_bytes`) and never above the budget (`active` 0 counts as 1).
  static uint64_t ShareOf(uint64_t budget_bytes, size_t active, uint64_t floor_bytes);

 private:
  struct Slot {
    uint64_t id = 0;
    Clock::time_point last{};  // last Note, or the End
    bool used = false;
    bool ended = false;
  };
  // FindOrClaimLocked returns `id`'s slot, else claims a free or the least recently touched.
  Slot* FindOrClaimLocked(uint64_t id) CTFS_REQUIRES(mu_);
  const Clock::duration horizon_;
  mutable Mutex mu_;
  std::array<Slot, kSlots> slots_ CTFS_GUARDED_BY(mu_){};
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_STREAM_ACTIVITY_H_
