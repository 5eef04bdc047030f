// SPDX-License-Identifier: Apache-2.0
// Tests of the per-inode mount counters: each count lands on its inode only, inodes outside
// the range are ignored, and concurrent adds are not lost.
#include "fs/mount_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ctfs::fs {
namespace {

TEST(MountStatsTest, CountsPerInode) {
  MountStats s(3);
  s.CountOpen(1);
  s.CountOpen(1);
  s.CountDenial(2);
  s.CountRead(1, 100);
  s.CountRead(3, 7);
  EXPECT_EQ(s.Of(1).opens, 2u);
  EXPECT_EQ(s.Of(1).bytes_read, 100u);
  EXPECT_EQ(s.Of(1).denials, 0u);
  EXPECT_EQ(s.Of(2).denials, 1u);
  EXPECT_EQ(s.Of(2).opens, 0u);
  EXPECT_EQ(s.Of(3).bytes_read, 7u);
}

TEST(MountStatsTest, IgnoresInodesOutOfRange) {
  MountStats s(2);
  s.CountOpen(0);
  s.CountOpen(3);
  s.CountRead(99, 5);
  EXPECT_EQ(s.Of(0).opens, 0u);
  EXPECT_EQ(s.Of(3).opens, 0u);
  EXPECT_EQ(s.Of(1).opens + s.Of(2).opens, 0u);
}

TEST(MountStatsTest, ConcurrentAddsAreNotLost) {
  MountStats s(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&s] {
      for (int i = 0; i < 10000; ++i) {
        s.CountOpen(1);
        s.CountRead(1, 3);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(s.Of(1).opens, 40000u);
  EXPECT_EQ(s.Of(1).bytes_read, 120000u);
}

}  // namespace
}  // namespace ctfs::fs
