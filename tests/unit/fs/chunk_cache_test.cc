// SPDX-License-Identifier: Apache-2.0
#include "fs/chunk_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "fs/worker_pool.h"

namespace ctfs::fs {
namespace {

ChunkCache::Loader Fill(uint8_t value, std::atomic<int>* calls) {
  return [value, calls](MutableByteSpan out) {
    ++*calls;
    for (auto& b : out) b = value;
    return Status::Ok();
  };
}

TEST(ChunkCache, HitsAfterFirstLoadAndEvictsByBytes) {
  ChunkCache cache(300);
  std::atomic<int> calls{0};
  for (int round = 0; round < 3; ++round) {
    auto c = cache.GetOrLoad({1, 0, 0}, 100, Fill(7, &calls));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->size(), 100u);
    EXPECT_EQ((*c)->span()[99], 7);
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cache.hits(), 2u);
  // Three more distinct chunks of 100 bytes: the least recently used one is evicted.
  for (uint64_t unit = 1; unit <= 3; ++unit) {
    ASSERT_TRUE(cache.GetOrLoad({1, 0, unit}, 100, Fill(1, &calls)).ok());
  }
  EXPECT_LE(cache.cached_bytes(), 300u);
  const int before = calls.load();
  ASSERT_TRUE(cache.GetOrLoad({1, 0, 0}, 100, Fill(7, &calls)).ok());
  EXPECT_EQ(calls.load(), before + 1) << "unit 0 was the LRU victim and must reload";
}

TEST(ChunkCache, FailedLoadsAreNotCached) {
  ChunkCache cache(1000);
  int calls = 0;
  auto bad = [&](MutableByteSpan) {
    ++calls;
    return DataLossError("tag mismatch");
  };
  EXPECT_EQ(cache.GetOrLoad({1, 2, 3}, 10, bad).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(cache.GetOrLoad({1, 2, 3}, 10, bad).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(cache.cached_bytes(), 0u);
}

TEST(ChunkCache, ConcurrentMissesLoadOnce) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  auto slow = [&](MutableByteSpan out) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (auto& b : out) b = 9;
    return Status::Ok();
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto c = cache.GetOrLoad({5, 0, 0}, 4096, slow);
      if (c.ok() && (*c)->span()[4095] == 9) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(calls.load(), 1);
}

TEST(ChunkCache, ClearDropsEverythingAndZeroCapacityNeverCaches) {
  ChunkCache cache(1000);
  std::atomic<int> calls{0};
  auto held = cache.GetOrLoad({1, 0, 0}, 10, Fill(3, &calls));
  ASSERT_TRUE(held.ok());
  cache.Clear();
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_EQ((*held)->span()[0], 3) << "a reader's chunk stays valid until it lets go";
  ASSERT_TRUE(cache.GetOrLoad({1, 0, 0}, 10, Fill(3, &calls)).ok());
  EXPECT_EQ(calls.load(), 2);
  ChunkCache none(0);
  ASSERT_TRUE(none.GetOrLoad({1, 0, 0}, 10, Fill(3, &calls)).ok());
  ASSERT_TRUE(none.GetOrLoad({1, 0, 0}, 10, Fill(3, &calls)).ok());
  EXPECT_EQ(calls.load(), 4);
}

TEST(WorkerPool, ParallelForRunsEveryIndexOnce) {
  WorkerPool pool(3);
  for (size_t n : {0u, 1u, 2u, 7u, 1000u}) {
    std::vector<std::atomic<int>> seen(n);
    pool.ParallelFor(n, [&](size_t i) { ++seen[i]; });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << n << " " << i;
  }
  // Many callers at once.
  std::vector<std::thread> callers;
  std::atomic<int> total{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] { pool.ParallelFor(100, [&](size_t) { ++total; }); });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 400);
  WorkerPool inline_pool(0);
  int count = 0;
  inline_pool.ParallelFor(5, [&](size_t) { ++count; });
  EXPECT_EQ(count, 5);
}

}  // namespace
}  // namespace ctfs::fs
