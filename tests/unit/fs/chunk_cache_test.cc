// SPDX-License-Identifier: Apache-2.0
#include "fs/chunk_cache.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <span>
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

// Consume loads a 10-byte chunk and serves it whole (so the cache drops it as consumed).
void Consume(ChunkCache& cache, const ChunkCache::Key& key, std::atomic<int>* calls) {
  ASSERT_TRUE(cache.GetOrLoad(key, 10, Fill(1, calls)).ok());
  cache.NoteServed(key, 10);
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
  EXPECT_EQ(cache.waits(), 0u) << "the chunk was ready: no hit waited";
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

// A loader that signals when it starts and then waits to be released.
struct GatedLoader {
  std::promise<void> started, release;
  std::shared_future<void> release_f = release.get_future().share();
  std::atomic<int> calls{0};
  ChunkCache::Loader loader(uint8_t value) {
    return [this, value](MutableByteSpan out) {
      if (calls++ == 0) started.set_value();
      release_f.wait();
      for (auto& b : out) b = value;
      return Status::Ok();
    };
  }
};

TEST(ChunkCache, HitOnALoadInFlightCountsAsAWait) {
  ChunkCache cache(1 << 20);
  const ChunkCache::Key key{3, 0, 0};
  GatedLoader gate;
  std::thread loader([&] { EXPECT_TRUE(cache.GetOrLoad(key, 100, gate.loader(1)).ok()); });
  gate.started.get_future().wait();
  std::thread waiter([&] { EXPECT_TRUE(cache.GetOrLoad(key, 100, gate.loader(2)).ok()); });
  while (cache.hits() < 1) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the waiter blocks meanwhile
  gate.release.set_value();
  loader.join();
  waiter.join();
  EXPECT_EQ(cache.waits(), 1u);
  EXPECT_GE(cache.wait_ns(), 1000000u) << "it waited for most of the 200 ms";
  EXPECT_EQ(gate.calls.load(), 1);
}

TEST(ChunkCache, ChunkServedWholeIsDroppedAndNotBefore) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  const ChunkCache::Key key{1, 0, 0};
  {
    auto c = cache.GetOrLoad(key, 1000, Fill(4, &calls));
    ASSERT_TRUE(c.ok());
  }
  EXPECT_EQ(cache.cached_bytes(), 1000u);
  cache.NoteServed(key, 400);
  cache.NoteServed(key, 599);
  EXPECT_EQ(cache.cached_bytes(), 1000u) << "one byte not served yet";
  ASSERT_TRUE(cache.GetOrLoad(key, 1000, Fill(4, &calls)).ok());
  EXPECT_EQ(calls.load(), 1) << "still cached: a hit";
  cache.NoteServed({1, 0, 1}, 1000);  // another key: no effect on this one
  cache.NoteServed({2, 0, 0}, 1000);
  EXPECT_EQ(cache.cached_bytes(), 1000u);
  cache.NoteServed(key, 1);
  EXPECT_EQ(cache.cached_bytes(), 0u);
  auto again = cache.GetOrLoad(key, 1000, Fill(5, &calls));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(calls.load(), 2) << "dropped once served whole: loads again";
  EXPECT_EQ((*again)->span()[999], 5);
  EXPECT_EQ(cache.cached_bytes(), 1000u);
  // The served count starts afresh with the new load; serving more than the chunk drops it.
  cache.NoteServed(key, 999);
  EXPECT_EQ(cache.cached_bytes(), 1000u);
  cache.NoteServed(key, 5000);
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_EQ((*again)->span()[0], 5) << "a reader's chunk stays valid after the drop";
  EXPECT_EQ(cache.peak_cached_bytes(), 1000u);
}

TEST(ChunkCache, DroppingServedChunksKeepsOthers) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  for (uint64_t u = 0; u < 4; ++u)
    ASSERT_TRUE(cache.GetOrLoad({1, 0, u}, 100, Fill(1, &calls)).ok());
  EXPECT_EQ(cache.cached_bytes(), 400u);
  EXPECT_EQ(cache.peak_cached_bytes(), 400u);
  cache.NoteServed({1, 0, 1}, 100);
  cache.NoteServed({1, 0, 2}, 50);
  EXPECT_EQ(cache.cached_bytes(), 300u);
  for (uint64_t u : {0u, 2u, 3u})
    ASSERT_TRUE(cache.GetOrLoad({1, 0, u}, 100, Fill(1, &calls)).ok());
  EXPECT_EQ(calls.load(), 4) << "the chunks not served whole are still cached";
  EXPECT_EQ(cache.peak_cached_bytes(), 400u) << "the peak is remembered";
}

TEST(ChunkCache, WantsPrefetch) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  const ChunkCache::Key cached{1, 0, 0}, loading{1, 0, 1}, consumed{1, 0, 2}, fresh{1, 0, 3};
  ASSERT_TRUE(cache.GetOrLoad(cached, 100, Fill(1, &calls)).ok());
  ASSERT_TRUE(cache.GetOrLoad(consumed, 100, Fill(1, &calls)).ok());
  cache.NoteServed(consumed, 100);
  ASSERT_EQ(cache.cached_bytes(), 100u);
  GatedLoader gate;
  std::thread loader_thread(
      [&] { EXPECT_TRUE(cache.GetOrLoad(loading, 100, gate.loader(2)).ok()); });
  gate.started.get_future().wait();
  EXPECT_FALSE(cache.WantsPrefetch(cached));
  EXPECT_FALSE(cache.WantsPrefetch(loading));
  EXPECT_FALSE(cache.WantsPrefetch(consumed));
  EXPECT_TRUE(cache.WantsPrefetch(fresh));
  EXPECT_TRUE(cache.WantsPrefetch({2, 0, 0}));
  gate.release.set_value();
  loader_thread.join();
  EXPECT_FALSE(cache.WantsPrefetch(loading)) << "now cached";
  const uint64_t hits = cache.hits(), misses = cache.misses();
  (void)cache.WantsPrefetch(cached);
  EXPECT_EQ(cache.hits(), hits) << "asking is not a use";
  EXPECT_EQ(cache.misses(), misses);
  // A failed load leaves the key wanted again.
  EXPECT_FALSE(
      cache.GetOrLoad(fresh, 100, [](MutableByteSpan) { return DataLossError("x"); }).ok());
  EXPECT_TRUE(cache.WantsPrefetch(fresh));
  // Clear forgets the consumed keys too.
  cache.Clear();
  EXPECT_TRUE(cache.WantsPrefetch(consumed));
  EXPECT_TRUE(cache.WantsPrefetch(cached));

  ChunkCache none(0);
  EXPECT_FALSE(none.WantsPrefetch(fresh)) << "nothing to prefetch into";
  const int before = calls.load();
  none.Prefetch(fresh, 100, Fill(1, &calls));
  EXPECT_EQ(calls.load(), before) << "a cache of capacity 0 never prefetches";
}

TEST(ChunkCache, ConsumedKeysAreForgottenAfterKConsumedMemory) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  auto consume = [&](const ChunkCache::Key& k) { Consume(cache, k, &calls); };
  consume({7, 0, 0});
  EXPECT_FALSE(cache.WantsPrefetch({7, 0, 0}));
  for (uint64_t u = 1; u < ChunkCache::kConsumedMemory; ++u) consume({7, 1, u});
  EXPECT_FALSE(cache.WantsPrefetch({7, 0, 0})) << "still among the last kConsumedMemory";
  consume({7, 1, ChunkCache::kConsumedMemory});
  EXPECT_TRUE(cache.WantsPrefetch({7, 0, 0})) << "the oldest consumed key is forgotten";
  EXPECT_FALSE(cache.WantsPrefetch({7, 1, 1}));
  EXPECT_EQ(cache.cached_bytes(), 0u);
}

TEST(ChunkCache, ReadingAConsumedChunkAgainForgetsTheConsumedKeys) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  auto consume = [&](const ChunkCache::Key& k) { Consume(cache, k, &calls); };
  for (uint64_t u = 0; u < 3; ++u) consume({7, 0, u});
  EXPECT_FALSE(cache.WantsPrefetch({7, 0, 1})) << "consumed: the page cache has it";
  EXPECT_FALSE(cache.WantsPrefetch({7, 0, 2}));
  // The kernel asks for unit 0 again: its pages were dropped, and likely the others' too.
  ASSERT_TRUE(cache.GetOrLoad({7, 0, 0}, 10, Fill(1, &calls)).ok());
  EXPECT_EQ(calls.load(), 4) << "a consumed chunk read again is loaded again";
  EXPECT_TRUE(cache.WantsPrefetch({7, 0, 1})) << "decrypt-ahead may load the others again";
  EXPECT_TRUE(cache.WantsPrefetch({7, 0, 2}));
  EXPECT_FALSE(cache.WantsPrefetch({7, 0, 0})) << "cached now";
}

TEST(ChunkCache, PrefetchLoadsWantedKeysOnly) {
  ChunkCache cache(1 << 20);
  std::atomic<int> calls{0};
  const ChunkCache::Key key{3, 1, 4};
  cache.Prefetch(key, 500, Fill(8, &calls));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cache.cached_bytes(), 500u) << "the prefetched chunk waits in the cache";
  auto c = cache.GetOrLoad(key, 500, Fill(9, &calls));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(calls.load(), 1) << "the reader finds the prefetched chunk";
  EXPECT_EQ((*c)->span()[499], 8);
  cache.Prefetch(key, 500, Fill(9, &calls));
  EXPECT_EQ(calls.load(), 1) << "already cached: no load";
  cache.NoteServed(key, 500);
  EXPECT_EQ(cache.cached_bytes(), 0u);
  cache.Prefetch(key, 500, Fill(9, &calls));
  EXPECT_EQ(calls.load(), 1) << "consumed: a prefetch must not load it again";
  EXPECT_EQ(cache.cached_bytes(), 0u);
  // A failing prefetch leaves nothing behind and reports nothing.
  cache.Prefetch({3, 1, 5}, 500, [](MutableByteSpan) { return DataLossError("bad tag"); });
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_TRUE(cache.WantsPrefetch({3, 1, 5}));
}

TEST(ChunkCache, PrefetchWhileLoadingDoesNotLoadTwice) {
  ChunkCache cache(1 << 20);
  GatedLoader gate;
  const ChunkCache::Key key{1, 1, 1};
  std::thread reader([&] { EXPECT_TRUE(cache.GetOrLoad(key, 64, gate.loader(3)).ok()); });
  gate.started.get_future().wait();
  std::atomic<int> calls{0};
  // Must neither duplicate the load nor wait for it (a prefetch thread must not block on a
  // reader's load); a bug here would deadlock, so the call runs on its own thread.
  auto prefetch = std::async(std::launch::async, [&] { cache.Prefetch(key, 64, Fill(4, &calls)); });
  EXPECT_EQ(prefetch.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "Prefetch waited for the load under way";
  EXPECT_EQ(calls.load(), 0);
  gate.release.set_value();
  prefetch.wait();
  reader.join();
  EXPECT_EQ(gate.calls.load(), 1);
  EXPECT_EQ(cache.cached_bytes(), 64u);
}

// Regression: the loader used to account the chunk only after waking the waiters, so the
// NoteServed() of a waiter that got the chunk first was lost and the chunk stayed cached.
TEST(ChunkCache, WaitersNoteServedCountsTowardsDropping) {
  constexpr int kThreads = 8;
  constexpr size_t kLen = 8 * 4096;
  for (int round = 0; round < 5; ++round) {
    ChunkCache cache(1 << 20);
    std::atomic<int> calls{0};
    auto slow = [&](MutableByteSpan out) {
      ++calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      for (auto& b : out) b = 6;
      return Status::Ok();
    };
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    const ChunkCache::Key key{9, 0, static_cast<uint64_t>(round)};
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        auto c = cache.GetOrLoad(key, kLen, slow);
        if (c.ok() && (*c)->size() == kLen && (*c)->span()[kLen - 1] == 6) ++ok;
        cache.NoteServed(key, kLen / kThreads);
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), kThreads);
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(cache.cached_bytes(), 0u) << "every byte was served: the chunk must be dropped";
    EXPECT_FALSE(cache.WantsPrefetch(key)) << "and remembered as consumed";
  }
}

// The same race made deterministic with the scheduler: every thread runs on one CPU and the
// loading thread has SCHED_IDLE priority, so the waiters it wakes preempt it at once and call
// NoteServed() before the loading thread runs another instruction. If the loader woke the
// waiters before accounting for the chunk, their NoteServed() would find it still "loading"
// and be lost.
TEST(ChunkCache, WaitersNoteServedCountsEvenWhenTheyRunBeforeTheLoader) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &allowed)) ++cpu;
  ASSERT_LT(cpu, CPU_SETSIZE);
  auto pin = [cpu] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0;  // 0: the calling thread
  };
  constexpr int kWaiters = 4;
  constexpr size_t kLen = 5 * 4096;  // the loader serves 1/5, each waiter 1/5
  for (int round = 0; round < 5; ++round) {
    ChunkCache cache(1 << 20);
    const ChunkCache::Key key{9, 1, static_cast<uint64_t>(round)};
    GatedLoader gate;
    std::atomic<bool> setup_ok{true};
    std::thread loader([&] {
      sched_param idle{};
      if (!pin() || sched_setscheduler(0, SCHED_IDLE, &idle) != 0) setup_ok = false;
      auto c = cache.GetOrLoad(key, kLen, gate.loader(6));
      EXPECT_TRUE(c.ok());
      cache.NoteServed(key, kLen / (kWaiters + 1));
    });
    gate.started.get_future().wait();
    std::vector<std::thread> waiters;
    std::atomic<int> ok{0};
    for (int i = 0; i < kWaiters; ++i) {
      waiters.emplace_back([&] {
        if (!pin()) setup_ok = false;
        auto c = cache.GetOrLoad(key, kLen, gate.loader(7));
        if (c.ok() && (*c)->span()[kLen - 1] == 6) ++ok;
        cache.NoteServed(key, kLen / (kWaiters + 1));
      });
    }
    // The waiters count as hits before they block on the load under way.
    while (cache.hits() < static_cast<uint64_t>(kWaiters)) std::this_thread::yield();
    gate.release.set_value();
    loader.join();
    for (auto& t : waiters) t.join();
    EXPECT_TRUE(setup_ok.load()) << "could not pin threads or lower the loader's priority";
    EXPECT_EQ(ok.load(), kWaiters);
    EXPECT_EQ(gate.calls.load(), 1);
    EXPECT_EQ(cache.cached_bytes(), 0u)
        << "round " << round << ": every byte was served, the chunk must be dropped";
  }
}

TEST(ChunkCache, ClearDrainsThePool) {
  ChunkCache cache(1 << 20, 64u << 20);
  std::atomic<int> calls{0};
  for (uint64_t u = 0; u < 3; ++u) {
    ASSERT_TRUE(cache.GetOrLoad({1, 0, u}, 1000, Fill(1, &calls)).ok());
    cache.NoteServed({1, 0, u}, 1000);
  }
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_GT(cache.pool().idle_bytes(), 0u) << "dropped chunks' buffers went back to the pool";
  EXPECT_EQ(cache.pool().mapped_count(), 1u) << "and were reused for the next chunk";
  auto held = cache.GetOrLoad({1, 0, 9}, 1000, Fill(2, &calls));
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(cache.GetOrLoad({1, 0, 10}, 1000, Fill(2, &calls)).ok());
  cache.Clear();
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_EQ(cache.pool().idle_bytes(), 0u);
  EXPECT_EQ((*held)->span()[999], 2);
  held->reset();
  EXPECT_EQ(cache.pool().idle_bytes(), 0u) << "buffers released after Clear are not kept";
}

TEST(ChunkCache, EvictedChunksReturnTheirBuffersOnceReleased) {
  ChunkCache cache(1000, 64u << 20);
  std::atomic<int> calls{0};
  auto held = cache.GetOrLoad({1, 0, 0}, 1000, Fill(1, &calls));
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(cache.GetOrLoad({1, 0, 1}, 1000, Fill(2, &calls)).ok());  // evicts unit 0
  EXPECT_EQ(cache.cached_bytes(), 1000u);
  EXPECT_EQ(cache.pool().idle_bytes(), 0u) << "unit 0 is still held by a reader";
  EXPECT_EQ((*held)->span()[0], 1);
  held->reset();
  EXPECT_EQ(cache.pool().idle_bytes(), ChunkBufferPool::kGranule);
  // The idle cap of the cache's pool is the second constructor argument.
  ChunkCache no_idle(1000, 0);
  ASSERT_TRUE(no_idle.GetOrLoad({1, 0, 0}, 1000, Fill(1, &calls)).ok());
  no_idle.NoteServed({1, 0, 0}, 1000);
  EXPECT_EQ(no_idle.pool().idle_bytes(), 0u);
}

TEST(ChunkCache, FailedLoadsLeaveNothingAndWipeTheirBuffer) {
  ChunkCache cache(1 << 20);
  const ChunkCache::Key key{4, 0, 0};
  auto partial_then_fail = [](MutableByteSpan out) {
    for (size_t i = 0; i < out.size() / 2; ++i) out[i] = 0xAB;  // half-written "plaintext"
    return DataLossError("tag mismatch");
  };
  EXPECT_EQ(cache.GetOrLoad(key, 4096, partial_then_fail).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_EQ(cache.peak_cached_bytes(), 0u);
  EXPECT_TRUE(cache.WantsPrefetch(key)) << "neither cached, loading nor consumed";
  EXPECT_EQ(cache.pool().mapped_count(), 1u);
  // The next load gets the same (pooled) buffer: what the failed loader left must be gone.
  size_t nonzero = 0;
  auto c = cache.GetOrLoad(key, 4096, [&](MutableByteSpan out) {
    for (uint8_t b : out) nonzero += b != 0;
    for (auto& b : out) b = 1;
    return Status::Ok();
  });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(cache.pool().mapped_count(), 1u) << "guards the test: the buffer was reused";
  EXPECT_EQ(nonzero, 0u) << "a failed load's partial plaintext survived in the pool";
  // The same without caching (capacity 0).
  ChunkCache none(0);
  EXPECT_FALSE(none.GetOrLoad(key, 4096, partial_then_fail).ok());
  nonzero = 0;
  ASSERT_TRUE(none.GetOrLoad(key, 4096,
                             [&](MutableByteSpan out) {
                               for (uint8_t b : out) nonzero += b != 0;
                               return Status::Ok();
                             })
                  .ok());
  EXPECT_EQ(none.pool().mapped_count(), 1u);
  EXPECT_EQ(nonzero, 0u);
}

// A load that was under way when Clear() ran must not adopt (and account for) the entry of a
// newer load of the same key.
TEST(ChunkCache, LoadOverlappingClearKeepsAccountingExact) {
  ChunkCache cache(1 << 20);
  const ChunkCache::Key key{5, 0, 0};
  GatedLoader first, second;
  std::thread a([&] { EXPECT_TRUE(cache.GetOrLoad(key, 100, first.loader(1)).ok()); });
  first.started.get_future().wait();
  cache.Clear();
  std::thread b([&] { EXPECT_TRUE(cache.GetOrLoad(key, 100, second.loader(2)).ok()); });
  second.started.get_future().wait();
  first.release.set_value();
  a.join();
  second.release.set_value();
  b.join();
  EXPECT_EQ(cache.cached_bytes(), 100u) << "one entry of 100 bytes";
  cache.NoteServed(key, 100);
  EXPECT_EQ(cache.cached_bytes(), 0u);
}

// A chunk whose lead takes its buffer past a granule counts that granule against the
// capacity (the memory is mapped), but is dropped once its own bytes are served.
TEST(ChunkCache, LeadsPlaceChunksAndCountWhatTheyCost) {
  constexpr size_t kG = ChunkBufferPool::kGranule;
  ChunkCache cache(4 * kG);
  std::atomic<int> calls{0};
  auto led = cache.GetOrLoad({1, 0, 0}, kG, Fill(3, &calls), /*lead=*/16);
  ASSERT_TRUE(led.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*led)->span().data()) % 4096, 16u);
  EXPECT_EQ((*led)->size(), kG);
  EXPECT_EQ((*led)->span()[kG - 1], 3);
  EXPECT_EQ(cache.cached_bytes(), 2 * kG) << "a full chunk with a lead maps two granules";
  auto short_led = cache.GetOrLoad({1, 0, 1}, kG - 100, Fill(4, &calls), /*lead=*/16);
  ASSERT_TRUE(short_led.ok());
  EXPECT_EQ(cache.cached_bytes(), 3 * kG - 100) << "a short chunk's lead fits its granule";
  ASSERT_TRUE(cache.GetOrLoad({1, 0, 2}, kG, Fill(5, &calls)).ok());
  EXPECT_EQ(cache.cached_bytes(), 4 * kG - 100);
  // One more led chunk does not fit: the least recently used (the first) is evicted.
  ASSERT_TRUE(cache.GetOrLoad({1, 0, 3}, kG, Fill(6, &calls), /*lead=*/40).ok());
  EXPECT_LE(cache.cached_bytes(), 4 * kG);
  EXPECT_EQ(cache.cached_bytes(), 4 * kG - 100) << "the first led chunk made room";
  // Served whole by its own length, a led chunk is dropped with all it counted.
  cache.NoteServed({1, 0, 3}, kG);
  EXPECT_EQ(cache.cached_bytes(), 2 * kG - 100);
  EXPECT_EQ(calls.load(), 4);
}

// PrefetchRun gives each key the lead asked for it.
TEST(ChunkCache, PrefetchRunPlacesChunksAtTheirLeads) {
  constexpr size_t kG = ChunkBufferPool::kGranule;
  ChunkCache cache(16 * kG);
  const std::vector<ChunkCache::Key> keys = {{1, 0, 0}, {1, 0, 1}, {1, 0, 2}};
  const std::vector<size_t> lens = {kG, kG, 1000};
  const std::vector<size_t> leads = {0, 63, 4095};
  cache.PrefetchRun(
      keys, lens,
      [](std::span<ChunkCache::RunSlot> slots, const auto&) {
        for (auto& s : slots) {
          for (auto& b : s.buf) b = static_cast<uint8_t>(s.index + 1);
          s.status = Status::Ok();
        }
      },
      leads);
  EXPECT_EQ(cache.cached_bytes(), kG + 2 * kG + 1000)
      << "only the full chunk with a lead costs a granule more; 1000 + 4095 fits one";
  std::atomic<int> calls{0};
  for (size_t i = 0; i < keys.size(); ++i) {
    auto c = cache.GetOrLoad(keys[i], lens[i], Fill(9, &calls), leads[i]);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(reinterpret_cast<uintptr_t>((*c)->span().data()) % 4096, leads[i]) << i;
    EXPECT_EQ((*c)->span()[lens[i] - 1], i + 1) << i;
  }
  EXPECT_EQ(calls.load(), 0) << "all three were prefetched";
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
