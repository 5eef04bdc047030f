// SPDX-License-Identifier: Apache-2.0
// StreamActivity: streams count within the horizon of their last Note, once each; End stops
// a stream at once and ignores its late Notes for a horizon; the least recently touched slot
// is reused past kSlots streams; ShareOf splits a budget with a floor. Time is given, not
// read from the clock.
#include "fs/stream_activity.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace ctfs::fs {
namespace {

using std::chrono::milliseconds;
using Clock = StreamActivity::Clock;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

TEST(StreamActivity, CountsStreamsWithinTheHorizonOnce) {
  StreamActivity a(milliseconds(100));
  EXPECT_EQ(a.Active(kT0), 0u);
  a.Note(7, kT0);
  a.Note(7, kT0 + milliseconds(10));
  a.Note(9, kT0 + milliseconds(20));
  EXPECT_EQ(a.Active(kT0 + milliseconds(20)), 2u) << "two streams, stream 7 noted twice";
  EXPECT_EQ(a.Active(kT0 + milliseconds(110)), 2u) << "7 was last noted at +10: still active";
  EXPECT_EQ(a.Active(kT0 + milliseconds(111)), 1u) << "7 is past the horizon";
  EXPECT_EQ(a.Active(kT0 + milliseconds(121)), 0u);
  a.Note(7, kT0 + milliseconds(200));
  EXPECT_EQ(a.Active(kT0 + milliseconds(200)), 1u) << "a stream that went quiet comes back";
  // A Note stamped later than the question (another thread's clock read) still counts.
  EXPECT_EQ(a.Active(kT0 + milliseconds(150)), 1u);
}

TEST(StreamActivity, EndStopsAStreamAndIgnoresItsLateReads) {
  StreamActivity a(milliseconds(100));
  a.Note(1, kT0);
  a.Note(2, kT0);
  a.End(1, kT0 + milliseconds(5));
  EXPECT_EQ(a.Active(kT0 + milliseconds(5)), 1u) << "an ended stream stops counting at once";
  a.Note(1, kT0 + milliseconds(50));  // a read sent before the last one, answered late
  EXPECT_EQ(a.Active(kT0 + milliseconds(50)), 1u) << "a late read does not revive it";
  a.Note(2, kT0 + milliseconds(60));
  a.Note(1, kT0 + milliseconds(106));  // past the horizon after End: a new read of the file
  EXPECT_EQ(a.Active(kT0 + milliseconds(106)), 2u);
  a.End(3, kT0);  // ending a stream never noted is harmless
  EXPECT_EQ(a.Active(kT0 + milliseconds(106)), 2u);
}

TEST(StreamActivity, ReusesTheLeastRecentlyTouchedSlot) {
  StreamActivity a(milliseconds(1000));
  for (uint64_t id = 0; id < StreamActivity::kSlots; ++id) a.Note(id, kT0 + milliseconds(id));
  const Clock::time_point t = kT0 + milliseconds(StreamActivity::kSlots);
  EXPECT_EQ(a.Active(t), StreamActivity::kSlots);
  a.Note(1000, t);  // takes the slot of stream 0, the least recently noted
  EXPECT_EQ(a.Active(t), StreamActivity::kSlots);
  a.Note(1, t);  // still known: refreshed, no slot taken
  a.Note(0, t);  // forgotten: takes the slot of stream 2 now
  EXPECT_EQ(a.Active(t), StreamActivity::kSlots);
  // Streams 0, 1 and 1000 were noted at t, the rest (3 .. kSlots-1) before it.
  EXPECT_EQ(a.Active(t + milliseconds(1000)), 3u);
}

TEST(StreamActivity, ShareOfSplitsTheBudgetWithAFloor) {
  constexpr uint64_t kMiB = 1u << 20;
  EXPECT_EQ(StreamActivity::ShareOf(64 * kMiB, 0, 4 * kMiB), 64 * kMiB) << "nobody: all of it";
  EXPECT_EQ(StreamActivity::ShareOf(64 * kMiB, 1, 4 * kMiB), 64 * kMiB);
  EXPECT_EQ(StreamActivity::ShareOf(64 * kMiB, 4, 4 * kMiB), 16 * kMiB);
  EXPECT_EQ(StreamActivity::ShareOf(64 * kMiB, 5, 4 * kMiB), 64 * kMiB / 5);
  EXPECT_EQ(StreamActivity::ShareOf(64 * kMiB, 32, 4 * kMiB), 4 * kMiB) << "the floor";
  EXPECT_EQ(StreamActivity::ShareOf(2 * kMiB, 3, 4 * kMiB), 2 * kMiB)
      << "a floor above the budget is the budget";
  EXPECT_EQ(StreamActivity::ShareOf(0, 3, 4 * kMiB), 0u) << "no budget, no share";
}

}  // namespace
}  // namespace ctfs::fs
