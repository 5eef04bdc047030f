// SPDX-License-Identifier: Apache-2.0
// Tests for keys/key_lease.h: when a lease is refreshed and when it is lost.
#include "keys/key_lease.h"

#include <gtest/gtest.h>

#include <climits>

namespace ctfs::keys {
namespace {

TEST(KeyLease, RefreshesAfterTwoThirdsOfTheLifetime) {
  const LeaseTimes t{.granted_at = 1000, .exp = 1300, .grace_s = 30};
  EXPECT_EQ(RefreshAt(t), 1200);
  EXPECT_EQ(PhaseAt(t, 1000), LeasePhase::kValid);
  EXPECT_EQ(PhaseAt(t, 1199), LeasePhase::kValid);
  EXPECT_EQ(PhaseAt(t, 1200), LeasePhase::kRefreshing);
  EXPECT_EQ(PhaseAt(t, 1300), LeasePhase::kRefreshing);  // expired, within grace
  EXPECT_EQ(PhaseAt(t, 1330), LeasePhase::kRefreshing);  // the last second of grace
  EXPECT_EQ(PhaseAt(t, 1331), LeasePhase::kLost);
}

TEST(KeyLease, ShortLeasesAreRefreshedBeforeTheyEnd) {
  // 3 s: 2/3 is 2 s, which is exp - 1.
  EXPECT_EQ(RefreshAt({.granted_at = 100, .exp = 103, .grace_s = 2}), 102);
  // 1 s: at once (exp - 1 = granted_at).
  EXPECT_EQ(RefreshAt({.granted_at = 100, .exp = 101, .grace_s = 2}), 100);
  // Already expired when granted: due at once, lost after grace.
  const LeaseTimes old{.granted_at = 100, .exp = 90, .grace_s = 5};
  EXPECT_LE(RefreshAt(old), 100);
  EXPECT_EQ(PhaseAt(old, 100), LeasePhase::kLost);
  EXPECT_EQ(PhaseAt({.granted_at = 100, .exp = 90, .grace_s = 10}, 100), LeasePhase::kRefreshing);
}

TEST(KeyLease, ZeroGraceIsLostRightAfterExp) {
  const LeaseTimes t{.granted_at = 0, .exp = 30, .grace_s = 0};
  EXPECT_EQ(PhaseAt(t, 30), LeasePhase::kRefreshing);
  EXPECT_EQ(PhaseAt(t, 31), LeasePhase::kLost);
}

TEST(KeyLease, RetriesOncePerSecond) {
  const LeaseTimes t{.granted_at = 1000, .exp = 1300, .grace_s = 30};
  EXPECT_EQ(NextAttemptAt(t, INT64_MIN), 1200);  // never tried: the refresh point
  EXPECT_EQ(NextAttemptAt(t, 1100), 1200);       // tried before (the grant itself)
  EXPECT_EQ(NextAttemptAt(t, 1200), 1201);       // a failed try: again a second later
  EXPECT_EQ(NextAttemptAt(t, 1400), 1401);       // lost: keep trying, the key may come back
}

}  // namespace
}  // namespace ctfs::keys
