// SPDX-License-Identifier: Apache-2.0
// ChunkCache::PrefetchRun: several chunks reserved and loaded by one loader call (decrypt-ahead
// reads a run of consecutive chunks from disk at once).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "fs/chunk_cache.h"

namespace ctfs::fs {
namespace {

using Key = ChunkCache::Key;

std::vector<Key> RunKeys(uint64_t tensor, uint64_t first, uint64_t n) {
  std::vector<Key> keys;
  for (uint64_t u = first; u < first + n; ++u) keys.push_back(Key{1, tensor, u});
  return keys;
}

// FillAll fills slot k with byte (index + 1) and marks it OK; records which indices it saw.
ChunkCache::RunLoader FillAll(std::vector<size_t>* seen, int* calls) {
  return [seen, calls](std::span<ChunkCache::RunSlot> slots, const auto&) {
    ++*calls;
    for (ChunkCache::RunSlot& s : slots) {
      seen->push_back(s.index);
      for (auto& b : s.buf) b = static_cast<uint8_t>(s.index + 1);
      s.status = Status::Ok();
    }
  };
}

TEST(ChunkCacheRun, LoadsOnlyTheWantedKeysWithOneCall) {
  ChunkCache cache(1 << 20);
  const std::vector<Key> keys = RunKeys(0, 0, 4);
  const std::vector<size_t> lens = {100, 100, 100, 40};
  // keys[1] is cached already, keys[2] was served whole (consumed): neither is loaded again.
  std::atomic<int> single{0};
  auto fill9 = [&](MutableByteSpan out) {
    ++single;
    for (auto& b : out) b = 9;
    return Status::Ok();
  };
  ASSERT_TRUE(cache.GetOrLoad(keys[1], 100, fill9).ok());
  ASSERT_TRUE(cache.GetOrLoad(keys[2], 100, fill9).ok());
  cache.NoteServed(keys[2], 100);
  std::vector<size_t> seen;
  int calls = 0;
  cache.PrefetchRun(keys, lens, FillAll(&seen, &calls));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (std::vector<size_t>{0, 3}));
  EXPECT_EQ(cache.cached_bytes(), 100u + 100u + 40u);
  auto c3 = cache.GetOrLoad(keys[3], 40, fill9);
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ((*c3)->size(), 40u);
  EXPECT_EQ((*c3)->span()[39], 4) << "filled by the run loader";
  auto c1 = cache.GetOrLoad(keys[1], 100, fill9);
  EXPECT_EQ((*c1)->span()[0], 9) << "the cached chunk was left alone";
  EXPECT_EQ(single.load(), 2);
  // Nothing wanted: the loader is not called at all.
  calls = 0;
  cache.PrefetchRun(keys, lens, FillAll(&seen, &calls));
  EXPECT_EQ(calls, 0);
  ChunkCache none(0);
  none.PrefetchRun(keys, lens, FillAll(&seen, &calls));
  EXPECT_EQ(calls, 0) << "a cache of capacity 0 never prefetches";
}

TEST(ChunkCacheRun, FailedAndUnfilledSlotsAreDroppedAndWiped) {
  ChunkCache cache(1 << 20);
  const std::vector<Key> keys = RunKeys(2, 0, 3);
  const std::vector<size_t> lens = {64, 64, 64};
  std::vector<uint8_t*> bufs;
  cache.PrefetchRun(keys, lens, [&](std::span<ChunkCache::RunSlot> slots, const auto&) {
    for (ChunkCache::RunSlot& s : slots) {
      bufs.push_back(s.buf.data());
      for (auto& b : s.buf) b = 0xAB;  // "partial plaintext"
    }
    slots[0].status = Status::Ok();
    slots[1].status = DataLossError("bad tag");
    // slots[2]: left as handed over; it must not be published.
  });
  EXPECT_EQ(cache.cached_bytes(), 64u) << "only the chunk the loader vouched for";
  EXPECT_FALSE(cache.WantsPrefetch(keys[0]));
  EXPECT_TRUE(cache.WantsPrefetch(keys[1]));
  EXPECT_TRUE(cache.WantsPrefetch(keys[2]));
  // The rejected buffers went back to the pool wiped (reuse shows their contents).
  ASSERT_EQ(bufs.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    auto buf = cache.GetOrLoad(keys[1 + i], 64, [&](MutableByteSpan out) {
      for (uint8_t b : out) EXPECT_NE(b, 0xAB) << "a rejected chunk buffer was not wiped";
      for (auto& b : out) b = 1;
      return Status::Ok();
    });
    ASSERT_TRUE(buf.ok());
  }
}

TEST(ChunkCacheRun, ReadyHandsAChunkToWaitersBeforeTheRunEnds) {
  ChunkCache cache(1 << 20);
  const std::vector<Key> keys = RunKeys(3, 0, 2);
  const std::vector<size_t> lens = {32, 32};
  std::promise<void> first_ready, finish;
  std::shared_future<void> finish_f = finish.get_future().share();
  std::thread run([&] {
    cache.PrefetchRun(keys, lens, [&](std::span<ChunkCache::RunSlot> slots, const auto& ready) {
      for (auto& b : slots[0].buf) b = 5;
      slots[0].status = Status::Ok();
      ready(0);
      first_ready.set_value();
      finish_f.wait();  // the second chunk is still "being read"
      for (auto& b : slots[1].buf) b = 6;
      slots[1].status = Status::Ok();
    });
  });
  first_ready.get_future().wait();
  // A reader of keys[0] gets it now, without its own load, while keys[1] is still reserved.
  auto waited = std::async(std::launch::async, [&] {
    return cache.GetOrLoad(keys[0], 32, [](MutableByteSpan) { return InternalError("loaded"); });
  });
  ASSERT_EQ(waited.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto c0 = waited.get();
  ASSERT_TRUE(c0.ok()) << c0.status().ToString();
  EXPECT_EQ((*c0)->span()[31], 5);
  // A reader of keys[1] waits for the run instead of loading it again.
  auto second = std::async(std::launch::async, [&] {
    return cache.GetOrLoad(keys[1], 32, [](MutableByteSpan) { return InternalError("loaded"); });
  });
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  finish.set_value();
  run.join();
  auto c1 = second.get();
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  EXPECT_EQ((*c1)->span()[0], 6);
}

TEST(ChunkCacheRun, ClearDuringARunLeavesNothingCached) {
  ChunkCache cache(1 << 20);
  const std::vector<Key> keys = RunKeys(4, 0, 2);
  const std::vector<size_t> lens = {16, 16};
  cache.PrefetchRun(keys, lens, [&](std::span<ChunkCache::RunSlot> slots, const auto&) {
    cache.Clear();  // revocation while the run reads
    for (ChunkCache::RunSlot& s : slots) {
      for (auto& b : s.buf) b = 1;
      s.status = Status::Ok();
    }
  });
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_TRUE(cache.WantsPrefetch(keys[0]));
}

}  // namespace
}  // namespace ctfs::fs
