// SPDX-License-Identifier: Apache-2.0
// Key lease timing (README "Key leases"): pure functions of the clock, so that the schedule
// can be tested without a mount. A lease is a key set a provider yielded with an "exp" (Unix
// time): the mount asks the provider again before exp, and loses the key if no refresh has
// succeeded by exp + grace.
#ifndef CTFS_KEYS_KEY_LEASE_H_
#define CTFS_KEYS_KEY_LEASE_H_

#include <algorithm>
#include <cstdint>

namespace ctfs::keys {

enum class LeasePhase {
  kValid,       // before the refresh point: nothing to do
  kRefreshing,  // refresh point passed (or exp passed, within grace): ask the provider
  kLost,        // exp + grace passed with no successful refresh: revoke
};

// LeaseTimes: `granted_at` is when the current exp was obtained (the last successful load).
struct LeaseTimes {
  int64_t granted_at = 0;
  int64_t exp = 0;
  int64_t grace_s = 30;
};

// RefreshAt: when to start refreshing: once 2/3 of the lifetime the provider granted has
// passed, and never later than exp - 1 (so a lease of a few seconds is refreshed before it
// ends). A lease already past exp is due at once.
inline int64_t RefreshAt(const LeaseTimes& t) {
  const int64_t life = std::max<int64_t>(t.exp - t.granted_at, 0);
  return std::min(t.granted_at + life * 2 / 3, t.exp - 1);
}

// PhaseAt: where the lease stands at `now`.
inline LeasePhase PhaseAt(const LeaseTimes& t, int64_t now) {
  if (now > t.exp + t.grace_s) return LeasePhase::kLost;
  if (now >= RefreshAt(t)) return LeasePhase::kRefreshing;
  return LeasePhase::kValid;
}

// NextAttemptAt: when to ask the provider next, after an attempt at `last_try` (nullopt-like:
// pass INT64_MIN for none): at the refresh point, then at most once a second while refreshing
// or lost (a lost key comes back with the first good answer).
inline int64_t NextAttemptAt(const LeaseTimes& t, int64_t last_try) {
  const int64_t due = RefreshAt(t);
  if (last_try < due) return due;
  return last_try + 1;
}

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_KEY_LEASE_H_
