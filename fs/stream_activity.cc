// SPDX-License-Identifier: Apache-2.0
#include "fs/stream_activity.h"

#include <algorithm>

namespace ctfs::fs {

StreamActivity::Slot* StreamActivity::FindOrClaimLocked(uint64_t id) {
  for (Slot& s : slots_) {
    if (s.used && s.id == id) return &s;
  }
  // A free slot, else the least recently touched one.
  Slot* slot = &*std::min_element(slots_.begin(), slots_.end(), [](const Slot& a, const Slot& b) {
    if (a.used != b.used) return !a.used;
    return a.last < b.last;
  });
  *slot = Slot{.id = id, .used = true};
  return slot;
}

void StreamActivity::Note(uint64_t id, Clock::time_point now) {
  MutexLock lock(mu_);
  Slot* s = FindOrClaimLocked(id);
  // Reads of an ended stream that were sent before its last one arrive late: they do not
  // bring it back within the horizon.
  if (s->ended && s->last + horizon_ >= now) return;
  s->ended = false;
  s->last = std::max(s->last, now);
}

void StreamActivity::End(uint64_t id, Clock::time_point now) {
  MutexLock lock(mu_);
  Slot* s = FindOrClaimLocked(id);
  s->ended = true;
  s->last = std::max(s->last, now);
}

size_t StreamActivity::Active(Clock::time_point now) const {
  MutexLock lock(mu_);
  return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [&](const Slot& s) {
    return s.used && !s.ended && s.last + horizon_ >= now;  // noted after `now` counts too
  }));
}

uint64_t StreamActivity::ShareOf(uint64_t budget_bytes, size_t active, uint64_t floor_bytes) {
  const uint64_t share = budget_bytes / std::max<size_t>(active, 1);
  return std::max(share, std::min(budget_bytes, floor_bytes));
}

}  // namespace ctfs::fs
