// SPDX-License-Identifier: Apache-2.0
// Exception safety of the concurrent pieces: a chunk loader that throws (std::bad_alloc) must
// end its load with an error for every waiter and leave nothing behind (a later read loads
// again); a run loader that throws fails only the chunks it had not handed over; ParallelFor
// rethrows only after every call has returned; a prefetch job that throws does not kill its
// thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "fs/chunk_cache.h"
#include "fs/prefetcher.h"
#include "fs/worker_pool.h"
#include "tests/testing/wait_for.h"

namespace ctfs::fs {
namespace {

ChunkCache::Loader FillWith(uint8_t value) {
  return [value](MutableByteSpan out) {
    for (auto& b : out) b = value;
    return Status::Ok();
  };
}

TEST(ExceptionSafety, ThrowingLoaderFailsTheLoadAndItsWaiters) {
  ChunkCache cache(1 << 20);
  const ChunkCache::Key key{1, 0, 0};
  std::promise<void> entered, release;
  std::shared_future<void> go = release.get_future().share();
  std::thread loader([&] {
    auto r = cache.GetOrLoad(key, 64, [&](MutableByteSpan) -> Status {
      entered.set_value();
      go.wait();
      throw std::bad_alloc();
    });
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  });
  entered.get_future().wait();
  // A reader of the same chunk waits for that load; it must get an error, not hang and not
  // see a broken promise.
  auto waiter = std::async(std::launch::async, [&] { return cache.GetOrLoad(key, 64, FillWith(1)); });
  ASSERT_TRUE(ctfs::testing::WaitFor([&] { return cache.hits() >= 1; }));
  release.set_value();
  loader.join();
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "hung";
  auto w = waiter.get();
  EXPECT_FALSE(w.ok());
  // Nothing is left loading: the next read loads again and succeeds.
  auto again = cache.GetOrLoad(key, 64, FillWith(7));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->span()[0], 7);
  auto thrown = cache.GetOrLoad({1, 0, 1}, 64, [](MutableByteSpan) -> Status {
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(thrown.status().code(), StatusCode::kInternal);
  EXPECT_NE(thrown.status().message().find("boom"), std::string::npos);
}

TEST(ExceptionSafety, ThrowingRunLoaderFailsWhatItDidNotHandOver) {
  ChunkCache cache(1 << 20);
  const std::vector<ChunkCache::Key> keys = {{1, 0, 0}, {1, 0, 1}, {1, 0, 2}};
  const std::vector<size_t> lens = {32, 32, 32};
  cache.PrefetchRun(keys, lens, [](std::span<ChunkCache::RunSlot> slots, const auto& ready) {
    for (auto& b : slots[0].buf) b = 5;
    slots[0].status = Status::Ok();
    ready(0);
    for (auto& b : slots[1].buf) b = 6;  // filled, but thrown before it was handed over
    slots[1].status = Status::Ok();
    throw std::bad_alloc();
  });
  EXPECT_EQ(cache.cached_bytes(), 32u) << "only the chunk handed over is cached";
  std::atomic<int> loads{0};
  for (size_t i = 0; i < keys.size(); ++i) {
    auto c = cache.GetOrLoad(keys[i], 32, [&](MutableByteSpan out) {
      ++loads;
      for (auto& b : out) b = 9;
      return Status::Ok();
    });
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ((*c)->span()[0], i == 0 ? 5 : 9) << i;
  }
  EXPECT_EQ(loads.load(), 2) << "the failed chunks load again, the published one does not";
}

TEST(ExceptionSafety, ParallelForRethrowsAfterEveryCallReturned) {
  WorkerPool pool(3);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> finished{0};
    auto fn = [&](size_t i) {
      std::this_thread::sleep_for(std::chrono::microseconds(100 * (i % 3)));
      if (i == 2 || i == 5) throw std::runtime_error("call " + std::to_string(i));
      finished.fetch_add(1);
    };
    try {
      pool.ParallelFor(8, fn);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(std::string(e.what()) == "call 2" || std::string(e.what()) == "call 5");
    }
    // Every other call ran to its end before ParallelFor threw: nothing uses fn any more.
    EXPECT_EQ(finished.load(), 6);
  }
}

TEST(ExceptionSafety, ThrowingPrefetchJobDoesNotKillItsThread) {
  Prefetcher prefetcher(1, 8);
  ASSERT_TRUE(prefetcher.Submit({1, 0, 0}, [] { throw std::bad_alloc(); }));
  std::atomic<bool> ran{false};
  ASSERT_TRUE(ctfs::testing::WaitFor([&] { return prefetcher.completed() >= 1; }));
  ASSERT_TRUE(prefetcher.Submit({1, 0, 1}, [&] { ran = true; }));
  EXPECT_TRUE(ctfs::testing::WaitFor([&] { return ran.load(); }));
}

}  // namespace
}  // namespace ctfs::fs
